"""Kernel-side TCP sink: accepts one connection on (host, port), reads to
EOF, prints the byte count and sha256, and replies nothing. A slow
reader with a small receive buffer, so the sender's data takes a while
to drain (the exit-linger test depends on that)."""
import hashlib
import socket
import sys
import time

host, port = sys.argv[1], int(sys.argv[2])
fam = socket.AF_INET6 if ":" in host else socket.AF_INET
s = socket.socket(fam)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
s.bind((host, port))
s.listen()
s.settimeout(30)
c, _ = s.accept()
c.settimeout(30)
h = hashlib.sha256()
n = 0
while True:
    d = c.recv(16384)
    time.sleep(0.002)
    if not d:
        break
    h.update(d)
    n += len(d)
print(n, h.hexdigest(), flush=True)
