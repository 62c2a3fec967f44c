"""A program that runs out of fds with sockets, as in `ulimit -n 64`.

    fd_exhaustion.py LISTEN_ADDR PEER_ADDR ECHO_PORT

1. listens on LISTEN_ADDR and has a client (a child on kernel sockets:
   LD_PRELOAD removed) connect and send b"queued";
2. opens TCP sockets until socket() fails, which must be EMFILE;
3. accept() then fails with EMFILE, as on Linux, and the connection
   stays queued;
4. the sockets it already has still connect to PEER_ADDR:ECHO_PORT (a
   kernel echo server) and carry data both ways;
5. with one socket closed, accept() gives the queued connection, whose
   bytes are intact.

Prints `sockets N` (how many socket() calls succeeded) and one line per
check; exits 1 if any check fails.
"""

import errno
import os
import select
import socket
import subprocess
import sys

CLIENT = r"""
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=20)
c.sendall(b"queued")
got = b""
while not got.endswith(b"bye"):
    b = c.recv(16)
    if not b:
        break
    got += b
sys.exit(0 if got == b"bye" else 1)
"""

failed = False


def check(ok, what):
    global failed
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    failed |= not ok


def main():
    listen_addr, peer, echo_port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    fam = socket.AF_INET6 if ":" in listen_addr else socket.AF_INET
    lst = socket.socket(fam)
    lst.bind((listen_addr, 0))
    lst.listen(8)
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    client = subprocess.Popen(
        [sys.executable, "-c", CLIENT, listen_addr, str(lst.getsockname()[1])],
        env=env,
    )
    r, _, _ = select.select([lst], [], [], 20)
    check(bool(r), "a connection is queued on the listener")

    socks = []
    err = None
    while len(socks) < 100000:
        try:
            socks.append(socket.socket(fam))
        except OSError as e:
            err = e.errno
            break
    print(f"sockets {len(socks)}", flush=True)
    check(err == errno.EMFILE, f"socket() stops with EMFILE (got {errno.errorcode.get(err, err)})")

    try:
        c, _ = lst.accept()
        c.close()
        check(False, "accept() at the limit fails")
    except OSError as e:
        check(e.errno == errno.EMFILE, f"accept() at the limit fails with EMFILE (got {errno.errorcode.get(e.errno)})")

    for i, s in enumerate(socks[:3]):
        try:
            s.settimeout(20)
            s.connect((peer, echo_port))
            msg = b"socket %d " % i * 100
            s.sendall(msg)
            got = b""
            while len(got) < len(msg):
                b = s.recv(65536)
                if not b:
                    break
                got += b
            check(got == msg, f"socket {i} made before the limit connects and echoes {len(msg)} bytes")
        except OSError as e:
            check(False, f"socket {i} connect/echo: {e}")

    socks.pop().close()
    try:
        lst.settimeout(20)
        c, _ = lst.accept()
        c.settimeout(20)
        got = b""
        while len(got) < 6:
            b = c.recv(16)
            if not b:
                break
            got += b
        check(got == b"queued", f"with one fd free, accept() gives the queued connection ({got!r})")
        c.sendall(b"bye")
        c.close()
    except OSError as e:
        check(False, f"accept after freeing an fd: {e}")
    check(client.wait(timeout=20) == 0, "the client got its answer")
    sys.exit(1 if failed else 0)


main()
