#!/usr/bin/env bash
# The shared stack (USTACK_SHARED=on): a reset after the peer's FIN while
# the program on the stack keeps writing. The server (python3, on the
# stack) streams zeros on its connection until a send fails. The kernel
# client shuts down writing (FIN: the stack side is in CLOSE-WAIT), reads
# 64 KiB, then closes with data unread (RST). The server's send must fail
# (EPIPE or ECONNRESET) within 10 s and the server must go on: a second
# connection gets its first line. Before the fix the daemon took the
# program's bytes and dropped them forever, so the write never failed
# (the shared-worker-kill stall, when a client's close happened to send a
# FIN before the RST).
source "$(dirname "$0")/../netns.sh"
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/need.sh
need python3 ip ss
source scripts/compat/lib.sh
source scripts/compat/shared.sh

cat >"$WORK/srv.py" <<'PYEOF'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(8)
print("listening", flush=True)
zeros = bytes(1 << 16)
while True:
    c, _ = s.accept()
    try:
        c.sendall(b"hello\n")
        while True:
            c.sendall(zeros)
    except OSError as e:
        print("send error", type(e).__name__, flush=True)
    c.close()
PYEOF
bg timeout 60 "${STACK[@]}" "$PY" -u "$WORK/srv.py" "$ADDR" 7270 >"$WORK/srv.log" 2>&1
srv=$bg_pid
wait_line "$WORK/srv.log" "listening" || { fail "server never listening"; compat_done; }

cat >"$WORK/cli.py" <<'PYEOF'
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
s.shutdown(socket.SHUT_WR)
got = 0
while got < 1 << 16:
    got += len(s.recv(1 << 16))
s.close()
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
line = s.recv(6)
print(line.decode().strip(), flush=True)
PYEOF
if got=$(timeout 30 "$PY" "$WORK/cli.py" "$ADDR" 7270 2>&1); then
    same_text "a second connection served after the first was reset" "hello" "$got"
else
    fail "client: exit $?: $got"
fi
if wait_line "$WORK/srv.log" "^send error " 10; then
    pass "the server's send failed after the reset in CLOSE-WAIT: $(grep -m1 '^send error' "$WORK/srv.log")"
else
    fail "the server's send never failed after the reset"
    tail -n 5 "$WORK/srv.log" | sed "s/^/         server: /"
fi
stop "$srv"
no_leak
compat_done
