"""Client under the shim: connects, sends N random bytes (seeded), prints
their sha256, then exits without closing: the shim's exit linger must
deliver the tail and the FIN."""
import hashlib
import os
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
# No close: exit() must still deliver everything.
sys.exit(0)
