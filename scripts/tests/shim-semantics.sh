#!/usr/bin/env bash
# Socket semantics under the shim (shim/tests/semantics.py: options,
# blocking and non-blocking connect, refusals, timeouts, signals, dup,
# shutdown, MSG_PEEK/WAITALL, poll/select/epoll with mixed fds, loopback
# pass-through, UDP, fork), then start-up failures: bad configuration and
# an unusable device, with USTACK_FALLBACK=fail and =kernel; last, a
# never-connected TCP socket on the shared stack (ENOTCONN, EPIPE).
source "$(dirname "$0")/../netns.sh"
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/need.sh
need ip ss ps python3 gcc readelf
source shim/tests/lib.sh

shim_device
bg python3 -c '
import socket, threading
def serve(c):
    while True:
        d = c.recv(65536)
        if not d:
            break
        c.sendall(d)
    c.close()
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.77.0.1", 9100))
s.listen()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("10.77.0.1", 9101))
def udp():
    while True:
        d, a = u.recvfrom(65536)
        u.sendto(d, a)
threading.Thread(target=udp, daemon=True).start()
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
'
wait_listen 9100
# These are the in-process shim's semantics (eventfd-backed fds, EBADFD
# after fork): pin that model.
timeout 60 env USTACK_SHARED=off LD_PRELOAD="$shim_lib" python3 shim/tests/semantics.py

# Start-up failures. A malformed variable: one line naming it, EINVAL.
out=$(USTACK_MTU=lots under_shim python3 -c '
import socket
try:
    socket.socket()
    print("created")
except OSError as e:
    print(e.errno)
' 2>"$shim_tmp/err")
check "bad USTACK_MTU: socket() fails with EINVAL" "$out" "22"
grep -q "USTACK_MTU" "$shim_tmp/err" && echo "ok: the message names USTACK_MTU"
check "one line on stderr" "$(wc -l <"$shim_tmp/err")" "1"

# A device that cannot be a TUN device (lo): fail (EACCES) or kernel.
out=$(USTACK_IFNAME=lo under_shim python3 -c '
import socket
try:
    socket.socket()
    print("created")
except OSError as e:
    print(e.errno)
' 2>"$shim_tmp/err")
check "no device, USTACK_FALLBACK=fail: EACCES" "$out" "13"
check "one line on stderr" "$(wc -l <"$shim_tmp/err")" "1"
out=$(USTACK_IFNAME=lo USTACK_FALLBACK=kernel under_shim python3 -c '
import socket
s = socket.create_connection(("10.77.0.1", 9100))
s.sendall(b"kernel path")
print(s.recv(100).decode())
' 2>"$shim_tmp/err")
check "no device, USTACK_FALLBACK=kernel: a kernel socket that works" "$out" "kernel path"
grep -q "USTACK_FALLBACK=kernel" "$shim_tmp/err" && echo "ok: the message says so"

# The shared stack (the default): a TCP socket that never connected reads
# ENOTCONN and sends EPIPE, as Linux, instead of blocking on its pair.
out=$(USTACK_SHARED=on timeout 20 env LD_PRELOAD="$shim_lib" python3 -c '
import errno, socket
s = socket.socket()
r = []
for f in (lambda: s.recv(1), lambda: s.send(b"x", socket.MSG_NOSIGNAL)):
    try:
        f()
        r.append("no error")
    except OSError as e:
        r.append(errno.errorcode[e.errno])
print(" ".join(r))
' 2>&1 || true)
check "shared stack, never connected: recv ENOTCONN, send EPIPE" "$out" "ENOTCONN EPIPE"

# The launcher on a statically linked program (which LD_PRELOAD cannot
# reach): one warning naming it; a dynamic one gets none.
printf 'int main(void) { return 0; }\n' >"$shim_tmp/static.c"
gcc -static -o "$shim_tmp/static" "$shim_tmp/static.c"
err=$(scripts/ustack "$shim_tmp/static" 2>&1 >/dev/null)
check "launcher warns of a static program" "$(grep -c "statically linked: the shim cannot load into it" <<<"$err")" "1"
err=$(scripts/ustack /bin/echo 2>&1 >/dev/null)
check "launcher does not warn of a dynamic one" "$err" ""
