#!/usr/bin/env bash
# The shared stack (USTACK_SHARED=on): a forked worker killed with SIGKILL
# mid-transfer. A python3 prefork server (2 workers on an inherited
# listener) streams data on each connection, beginning with the worker's
# pid. A kernel client reads 1 MiB, the test SIGKILLs the worker serving
# it, and the client must then see EOF or a reset (hang guard: 10 s) while
# still reading. The other worker must go on serving: 10 connections in
# turn each read their worker's pid and 1 MiB, all from the survivor.
#
# (It stalled after a few connections until a send failing after the
# peer's FIN let go of the daemon's pair: now 10 runs in a row pass.)
source "$(dirname "$0")/../netns.sh"
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/need.sh
need python3 ip ss
source scripts/compat/lib.sh
source scripts/compat/shared.sh

bg timeout 120 "${STACK[@]}" "$PY" -u scripts/compat/shared_servers.py stream "$ADDR" 7260 2 >"$WORK/srv.log" 2>&1
srv=$bg_pid
wait_line "$WORK/srv.log" "listening" || { fail "server never listening"; compat_done; }
end=$((SECONDS + 10))
while [[ $(grep -c '^worker [0-9]*$' "$WORK/srv.log") -lt 2 && $SECONDS -lt $end ]]; do sleep 0.05; done

# The client: prints "pid PID" once it has 1 MiB, then waits for the
# test's "go" on stdin (the worker killed), then reads until EOF or an
# error, printing "eof" or "reset ERRNAME"; "hang" if nothing within 10 s.
cat >"$WORK/victim.py" <<'PYEOF'
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
buf = b""
while b"\n" not in buf:
    buf += s.recv(4096)
pid, rest = buf.split(b"\n", 1)
got = len(rest)
while got < 1 << 20:
    got += len(s.recv(1 << 16))
print("pid", pid.decode(), flush=True)
sys.stdin.readline()
try:
    while True:
        b = s.recv(1 << 16)
        if not b:
            print("eof", flush=True)
            break
except socket.timeout:
    print("hang: nothing for 10 s", flush=True)
except OSError as e:
    print("reset", type(e).__name__, e, flush=True)
PYEOF
mkfifo "$WORK/go"
timeout 60 "$PY" -u "$WORK/victim.py" "$ADDR" 7260 <"$WORK/go" >"$WORK/victim.out" 2>&1 &
victim=$!
exec 7>"$WORK/go"
if wait_line "$WORK/victim.out" "^pid " 20; then
    wpid=$(awk '/^pid/ {print $2}' "$WORK/victim.out")
    kill -KILL "$wpid"
    echo go >&7
    exec 7>&-
    wait "$victim" || true
    res=$(tail -n 1 "$WORK/victim.out")
    case $res in
        eof | reset*) pass "worker $wpid killed mid-transfer: the client saw '$res'" ;;
        *) fail "worker $wpid killed mid-transfer: the client saw '$res'" ;;
    esac
    if grep -q "worker $wpid ended: status 9" "$WORK/srv.log"; then pass "the server reaped worker $wpid (SIGKILL)"; else fail "worker $wpid's end not seen by the server"; fi
else
    exec 7>&-
    fail "the client never got 1 MiB"
    cat "$WORK/victim.out" | sed 's/^/         /'
    wpid=none
fi

# The survivor goes on serving.
cat >"$WORK/after.py" <<'PYEOF'
import socket, sys
pids = set()
for i in range(10):
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
    buf = b""
    while b"\n" not in buf:
        buf += s.recv(4096)
    pid, rest = buf.split(b"\n", 1)
    got = len(rest)
    while got < 1 << 20:
        b = s.recv(1 << 16)
        if not b:
            sys.exit(f"connection {i}: EOF after {got} bytes")
        got += len(b)
    s.close()
    pids.add(pid.decode())
print(",".join(sorted(pids)))
PYEOF
if got=$(timeout 60 "$PY" "$WORK/after.py" "$ADDR" 7260 2>&1); then
    survivor=$(awk '/^worker [0-9]+$/ {print $2}' "$WORK/srv.log" | grep -vx "$wpid" | paste -sd, || true)
    same_text "10 connections after the kill, 1 MiB each, all from the surviving worker" "$survivor" "$got"
else
    fail "connections after the kill: exit $?: $got"
    tail -n 5 "$WORK/srv.log" | sed "s/^/         server: /"
fi
stop "$srv"
no_leak
compat_done
