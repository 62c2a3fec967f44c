#!/usr/bin/env bash
# Python socket programs (scripts/compat/pysock.py) on the userspace stack:
# TCP and UDP, IPv4 and IPv6, client and server; the TCP server is
# socketserver.ThreadingTCPServer serving eight clients at once.
source "$(dirname "$0")/../netns.sh"
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/need.sh
need python3 ip ss
source scripts/compat/lib.sh

ps=scripts/compat/pysock.py
for fam in 4 6; do
    if [[ $fam == 4 ]]; then addr=$ADDR peer=$PEER; else addr=$ADDR6 peer=$PEER6; fi

    # Clients on the stack, kernel servers. 4 sequential + 4 threaded.
    bg timeout 60 "$PY" "$ps" tcp-server "$peer" 7200 8 >"$WORK/ks$fam.log" 2>&1
    srv=$bg_pid
    wait_line "$WORK/ks$fam.log" ready || fail "v$fam: kernel TCP server never ready"
    check "v$fam tcp client (4 sequential, 4 threads)" timeout 60 "${STACK[@]}" "$PY" "$ps" tcp-client "$peer" 7200 4
    if timeout 20 tail --pid="$srv" -f /dev/null && wait "$srv"; then pass "v$fam kernel server saw all 8"; else fail "v$fam kernel server"; fi
    saw_client "v$fam tcp clients came from $addr" "$WORK/ks$fam.log" "client $addr"

    bg timeout 60 "$PY" "$ps" udp-server "$peer" 7201 20 >"$WORK/ku$fam.log" 2>&1
    srv=$bg_pid
    wait_line "$WORK/ku$fam.log" ready || fail "v$fam: kernel UDP server never ready"
    check "v$fam udp client (20 datagrams up to 8000 B)" timeout 60 "${STACK[@]}" "$PY" "$ps" udp-client "$peer" 7201 20
    if timeout 20 tail --pid="$srv" -f /dev/null && wait "$srv"; then pass "v$fam kernel UDP server saw all 20"; else fail "v$fam kernel UDP server"; fi
    saw_client "v$fam datagrams came from $addr" "$WORK/ku$fam.log" "client $addr"

    # Servers on the stack, kernel clients.
    bg timeout 60 "${STACK[@]}" "$PY" "$ps" tcp-server "$addr" 7202 8 >"$WORK/ss$fam.log" 2>&1
    srv=$bg_pid
    wait_line "$WORK/ss$fam.log" ready || fail "v$fam: threaded server on the stack never ready"
    check "v$fam threaded tcp server on the stack (4 sequential, 4 at once)" timeout 60 "$PY" "$ps" tcp-client "$addr" 7202 4
    if timeout 20 tail --pid="$srv" -f /dev/null && wait "$srv"; then pass "v$fam server on the stack exits 0"; else fail "v$fam server on the stack"; cat "$WORK/ss$fam.log"; fi
    stop "$srv"

    bg timeout 60 "${STACK[@]}" "$PY" "$ps" udp-server "$addr" 7203 20 >"$WORK/su$fam.log" 2>&1
    srv=$bg_pid
    wait_line "$WORK/su$fam.log" ready || fail "v$fam: UDP server on the stack never ready"
    check "v$fam udp server on the stack" timeout 60 "$PY" "$ps" udp-client "$addr" 7203 20
    if timeout 20 tail --pid="$srv" -f /dev/null && wait "$srv"; then pass "v$fam UDP server on the stack exits 0"; else fail "v$fam UDP server on the stack"; cat "$WORK/su$fam.log"; fi
    stop "$srv"
done

# A signal interrupts a Python program blocked in accept() on the stack:
# its handler runs and raises (the way Ctrl-C reaches KeyboardInterrupt).
bg timeout 30 "${STACK[@]}" "$PY" -c '
import os, signal, socket, sys
class Stop(Exception):
    pass
def handler(sig, frame):
    raise Stop()
signal.signal(signal.SIGUSR1, handler)
s = socket.socket()
s.bind((sys.argv[1], 7210))
s.listen()
print("ready", os.getpid(), flush=True)
try:
    s.accept()
except Stop:
    print("interrupted", flush=True)
    sys.exit(0)
sys.exit(1)
' "$ADDR" >"$WORK/sig.log" 2>&1
srv=$bg_pid
if wait_line "$WORK/sig.log" ready; then
    sleep 0.3
    kill -USR1 "$(awk '/^ready/ {print $2}' "$WORK/sig.log")"
    if wait_line "$WORK/sig.log" interrupted 5 && wait "$srv"; then
        pass "SIGUSR1 interrupts accept() in Python (handler ran, exit 0)"
    else
        fail "SIGUSR1 did not interrupt accept() in Python"
    fi
else
    fail "the accept() program never started"
fi
stop "$srv"

compat_done
