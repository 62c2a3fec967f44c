#!/usr/bin/env bash
# The shared stack (USTACK_SHARED=on): a shim client of a shim server, two
# separate programs on one stack. python3 http.server on the stack
# (10.77.0.2) and curl under the shim fetching a 5 MiB file from it,
# sha256 checked.
#
source "$(dirname "$0")/../netns.sh"
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/need.sh
need python3 ip ss curl
source scripts/compat/lib.sh
source scripts/compat/shared.sh

mkdir -p "$WORK/www"
random_file "$WORK/www/five.bin" 5
c=(curl -sS -f --max-time 30)

# Shim server, shim client.
bg timeout 120 "${STACK[@]}" "$PY" -u -m http.server --bind "$ADDR" --directory "$WORK/www" 7240 >"$WORK/stack-srv.log" 2>&1
ssrv=$bg_pid
if wait_line "$WORK/stack-srv.log" "Serving HTTP"; then
    if timeout 60 "${STACK[@]}" "${c[@]}" -o "$WORK/s2s.out" "http://$ADDR:7240/five.bin"; then
        same_file "shim curl from shim http.server (5 MiB)" "$WORK/www/five.bin" "$WORK/s2s.out"
    else
        fail "shim curl from shim http.server: curl exit $?"
        tail -n 5 "$WORK/stack-srv.log" | sed 's/^/         server: /'
    fi
    saw_client "the stack's http.server saw the stack's own address" "$WORK/stack-srv.log" "$ADDR - -"
else
    fail "http.server on the stack never serving"
fi
stop "$ssrv"

no_leak
compat_done
