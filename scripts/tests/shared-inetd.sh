#!/usr/bin/env bash
# The shared stack (USTACK_SHARED=on), inetd-style: the connection itself
# handed to an exec'd program on fds 0 and 1.
#  - a python3 server on the stack accepts, forks, puts the connection on
#    fds 0 and 1 and execs sha256sum (which, under the shim too, adopts the
#    inherited socket); 5 kernel clients in turn and 5 at once each send
#    1 MiB and must read back its sha256;
#  - socat TCP-LISTEN:...,fork EXEC:cat,nofork on the stack (the child
#    execs cat with the TCP socket as stdin and stdout); a kernel client
#    sends 4 MiB and must read back the same bytes, 5 in turn and 5 at once.
source "$(dirname "$0")/../netns.sh"
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/need.sh
need python3 ip ss socat sha256sum
source scripts/compat/lib.sh
source scripts/compat/shared.sh

clients() { # NAME PORT N BATCH BYTES MODE
    if timeout 90 "$PY" scripts/compat/shared_clients.py "$ADDR" "$2" "$3" "$5" --batch "$4" --mode "$6" >"$WORK/cli.log" 2>&1; then
        pass "$1: $(tail -n 1 "$WORK/cli.log" | cut -d' ' -f1-2) verified"
    else
        fail "$1: clients exit $?"
        tail -n 12 "$WORK/cli.log" | sed 's/^/         /'
    fi
}

bg timeout 120 "${STACK[@]}" "$PY" -u scripts/compat/shared_servers.py inetd "$ADDR" 7220 sha256sum >"$WORK/inetd.log" 2>&1
srv=$bg_pid
if wait_line "$WORK/inetd.log" "listening"; then
    clients "fork+exec sha256sum, 5 in turn" 7220 5 1 $((1024 * 1024)) sha
    clients "fork+exec sha256sum, 5 at once" 7220 5 5 $((1024 * 1024)) sha
else
    fail "inetd-style server never listening"
fi
stop "$srv"
[[ ! -s $WORK/inetd.log ]] || grep -v '^listening' "$WORK/inetd.log" | sed 's/^/         server: /' || true

bg timeout 120 "${STACK[@]}" socat -d -d TCP4-LISTEN:7221,bind="$ADDR",reuseaddr,fork EXEC:cat,nofork 2>"$WORK/socat.log"
srv=$bg_pid
if wait_line "$WORK/socat.log" "listening on"; then
    clients "socat fork EXEC:cat,nofork, 5 in turn" 7221 5 1 $((4 * 1024 * 1024)) echo
    clients "socat fork EXEC:cat,nofork, 5 at once" 7221 5 5 $((4 * 1024 * 1024)) echo
else
    fail "socat never listening"
fi
stop "$srv"
if grep -E ' E ' "$WORK/socat.log"; then fail "socat logged errors"; fi
no_leak
compat_done
