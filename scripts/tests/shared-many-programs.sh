#!/usr/bin/env bash
# The shared stack (USTACK_SHARED=on): several programs on one stack at
# once. 2 and then 8 curl programs under the shim at once, each fetching a
# 5 MiB file from a kernel-side python3 http.server (10.77.0.1), every
# copy sha256 checked, and the server's log showing all 10 requests coming
# from the stack's address. (A shim client of a shim server, both ends on
# the stack, is scripts/compat-pending/shared-shim-to-shim.sh.)
source "$(dirname "$0")/../netns.sh"
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/need.sh
need python3 ip ss curl
source scripts/compat/lib.sh
source scripts/compat/shared.sh

mkdir -p "$WORK/www"
random_file "$WORK/www/five.bin" 5
c=(curl -sS -f --max-time 60)

# Kernel server, N shim clients at once.
bg timeout 150 "$PY" -u -m http.server --bind "$PEER" --directory "$WORK/www" 7241 >"$WORK/kern-srv.log" 2>&1
wait_tcp_kernel "$PEER" 7241 || fail "kernel http.server never listening"
for n in 2 8; do
    pids=()
    for i in $(seq "$n"); do
        timeout 90 "${STACK[@]}" "${c[@]}" -o "$WORK/c$n-$i.out" "http://$PEER:7241/five.bin" 2>"$WORK/c$n-$i.err" &
        pids+=($!)
    done
    bad=0
    for i in $(seq "$n"); do
        rc=0
        wait "${pids[$((i - 1))]}" || rc=$?
        if [[ $rc -ne 0 ]] || ! cmp -s "$WORK/www/five.bin" "$WORK/c$n-$i.out"; then
            bad=$((bad + 1))
            echo "         curl $i of $n: exit $rc, $(stat -c %s "$WORK/c$n-$i.out" 2>/dev/null || echo no) bytes: $(head -c 200 "$WORK/c$n-$i.err")"
        fi
    done
    if [[ $bad -eq 0 ]]; then
        pass "$n shimmed curl at once, 5 MiB each, all sha256 $(sha256sum <"$WORK/www/five.bin" | cut -c1-16)"
    else
        fail "$n shimmed curl at once: $bad of $n failed"
    fi
done
got=$(grep -c "^$ADDR - - .*GET /five.bin" "$WORK/kern-srv.log" || true)
same_text "the kernel server served 10 requests from $ADDR" 10 "$got"
no_leak
compat_done
