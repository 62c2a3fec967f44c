"""Client under the shim: connects, sends N random bytes (seeded), prints
their sha256, then exits without closing: the shim's exit linger must
deliver the tail and the FIN."""
import ctypes
import hashlib
import random
import socket
import sys

host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
data = random.Random(7).randbytes(n)
fam = socket.AF_INET6 if ":" in host else socket.AF_INET
s = socket.socket(fam)
s.connect((host, port))
s.sendall(data)
print(n, hashlib.sha256(data).hexdigest(), flush=True)
# No close, and straight to C's exit(): no interpreter shutdown gives the
# stack time; only the shim's exit linger can deliver the tail and FIN.
ctypes.CDLL(None).exit(0)
