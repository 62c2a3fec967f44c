#!/usr/bin/env bash
# Event loops on epoll: an asyncio echo server under the shim serving 20
# concurrent kernel-side asyncio clients (IPv4 and IPv6, 256 KiB each), a
# thread-per-connection blocking server under the shim serving 50, and
# asyncio clients under the shim against a kernel asyncio server.
source "$(dirname "$0")/../netns.sh"
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/need.sh
need ip ss ps python3
source shim/tests/lib.sh

shim_device
bg under_shim python3 shim/tests/aio.py server 9200
for _ in $(seq 100); do
    python3 -c 'import socket; socket.create_connection(("10.77.0.2", 9200), 0.5).close()' 2>/dev/null && break
    sleep 0.1
done
got=$(timeout 90 python3 shim/tests/aio.py client 10.77.0.2 9200 20 262144)
check "asyncio server (shim) echoed 20 x 256 KiB to kernel clients over IPv4" "$got" "20 ok"
got=$(timeout 90 python3 shim/tests/aio.py client fd77::2 9200 20 262144)
check "the same over IPv6" "$got" "20 ok"

stop_bg

bg under_shim python3 -c '
import socketserver
class Echo(socketserver.StreamRequestHandler):
    def handle(self):
        while d := self.request.recv(65536):
            self.request.sendall(d)
socketserver.ThreadingTCPServer.allow_reuse_address = True
# A backlog for the 50 clients that connect at once: with the socketserver
# default of 5, a server slow to accept (a loaded machine) overflows its
# accept queue, the stack drops the handshake ACKs of SYN-cookie
# connections as Linux does, and the next segments of those clients meet a RST
# (as they would from Linux): a test of accept speed, not of the stack.
socketserver.ThreadingTCPServer.request_queue_size = 64
socketserver.ThreadingTCPServer(("0.0.0.0", 9300), Echo).serve_forever()
'
for _ in $(seq 100); do
    python3 -c 'import socket; socket.create_connection(("10.77.0.2", 9300), 0.5).close()' 2>/dev/null && break
    sleep 0.1
done
got=$(timeout 90 python3 shim/tests/aio.py client 10.77.0.2 9300 50 131072)
check "threaded blocking server (shim) echoed 50 concurrent connections" "$got" "50 ok"
stop_bg

bg python3 shim/tests/aio.py server 9201
wait_listen 9201
got=$(timeout 90 env LD_PRELOAD="$shim_lib" python3 shim/tests/aio.py client 10.77.0.1 9201 20 262144)
check "asyncio clients (shim) against a kernel asyncio server" "$got" "20 ok"
