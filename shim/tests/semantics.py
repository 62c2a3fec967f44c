"""Socket semantics under the shim, against kernel peers started by
scripts/tests/shim-semantics.sh: an echo server on 10.77.0.1:9100 and
nothing on port 9199. Each check prints "ok: ..." or raises."""
import errno
import os
import select
import signal
import socket
import struct
import sys
import time

PEER = ("10.77.0.1", 9100)
CLOSED = ("10.77.0.1", 9199)


def ok(what):
    print("ok:", what, flush=True)


def expect_errno(code, f, *args):
    try:
        f(*args)
    except OSError as e:
        assert e.errno == code, f"{f.__name__}: errno {e.errno}, wanted {code}"
        return
    raise AssertionError(f"{f.__name__}: no error, wanted errno {code}")


def fd_is_eventfd(fd):
    return os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:[eventfd]"


# A virtual socket is an eventfd underneath; AF_UNIX stays a real socket.
s = socket.socket()
assert fd_is_eventfd(s.fileno()), os.readlink(f"/proc/self/fd/{s.fileno()}")
u = socket.socket(socket.AF_UNIX)
assert not fd_is_eventfd(u.fileno())
u.close()
ok("AF_INET is virtual (eventfd-backed), AF_UNIX passes through")

# Options: types, doubled buffers, nodelay, keepalive, timeouts, linger.
assert s.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE) == socket.SOCK_STREAM
assert s.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN) == socket.AF_INET
assert s.getsockopt(socket.SOL_SOCKET, socket.SO_PROTOCOL) == socket.IPPROTO_TCP
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
assert s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) == 131072
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
assert s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
s.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 30)
assert s.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
assert s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 30
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
assert s.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 1
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 3))
assert struct.unpack("ii", s.getsockopt(socket.SOL_SOCKET, socket.SO_LINGER, 8)) == (1, 3)
tv = struct.pack("ll", 0, 300000)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, tv)
assert s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, 16) == tv
s.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, 0x10)  # unknown: accepted
expect_errno(errno.ENOPROTOOPT, s.getsockopt, socket.SOL_SOCKET, socket.SO_PEERCRED)
ok("socket options (SO_RCVBUF doubled, nodelay, keepalive, linger, timeouts)")

# Blocking connect, names, echo, SO_RCVTIMEO expiry.
s.connect(PEER)
assert s.getpeername() == PEER
local = s.getsockname()
assert local[0] == "10.77.0.2" and local[1] > 0
s.sendall(b"ping")
assert s.recv(100) == b"ping"
t0 = time.monotonic()
expect_errno(errno.EAGAIN, s.recv, 100)
assert 0.25 < time.monotonic() - t0 < 2, time.monotonic() - t0
ok("blocking connect, getsockname/getpeername, echo, SO_RCVTIMEO gives EAGAIN")
expect_errno(errno.EISCONN, s.connect, PEER)
ok("connect again: EISCONN")

# TCP_INFO: established, with an MSS.
info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
state, mss = info[0], struct.unpack_from("I", info, 16)[0]
assert state == 1 and 500 < mss <= 1460, (state, mss)
ok("TCP_INFO reports ESTABLISHED and the MSS")

# MSG_PEEK, MSG_WAITALL, FIONREAD.
import fcntl, termios, array
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 5, 0))
s.sendall(b"abcdef")
assert s.recv(3, socket.MSG_PEEK | socket.MSG_WAITALL) in (b"abc", b"a", b"ab")
time.sleep(0.2)
n = array.array("i", [0])
fcntl.ioctl(s.fileno(), termios.FIONREAD, n)
assert n[0] == 6, n[0]
assert s.recv(6, socket.MSG_WAITALL) == b"abcdef"
ok("MSG_PEEK, MSG_WAITALL, FIONREAD")

# dup shares the connection; closing one keeps it open.
d = os.dup(s.fileno())
s2 = socket.socket(fileno=d)
s2.sendall(b"via dup")
assert s.recv(100) == b"via dup"
s2.close()
s.sendall(b"still open")
assert s.recv(100) == b"still open"
ok("dup shares the connection; closing the dup keeps it")

# Scatter/gather: sendmsg, writev, recvmsg_into, readv; sendfile.
s.sendmsg([b"ab", b"cd"])
os.writev(s.fileno(), [b"ef", b"gh"])
time.sleep(0.2)
b1, b2 = bytearray(3), bytearray(3)
n = s.recvmsg_into([b1, b2])[0]
assert (n, bytes(b1), bytes(b2)) == (6, b"abc", b"def"), (n, b1, b2)
b3 = bytearray(1)
assert os.readv(s.fileno(), [b3, bytearray(0)]) == 1 and b3 == b"g"
assert s.recv(10) == b"h"
import tempfile
with tempfile.TemporaryFile() as f:
    blob = os.urandom(300000)
    f.write(blob)
    f.flush()
    off = 1000
    sent = 0
    while sent < len(blob) - off:
        sent += os.sendfile(s.fileno(), f.fileno(), off + sent, len(blob) - off - sent)
    got = b""
    while len(got) < len(blob) - off:
        got += s.recv(65536)
    assert got == blob[off:]
ok("sendmsg/writev gather, recvmsg_into/readv scatter, sendfile from a file")

# A signal interrupts a blocked recv with EINTR.
class Alarm(Exception):
    pass


def on_alarm(*_):
    raise Alarm()


signal.signal(signal.SIGALRM, on_alarm)
signal.setitimer(signal.ITIMER_REAL, 0.2)
t0 = time.monotonic()
try:
    s.recv(100)
    raise AssertionError("recv returned")
except Alarm:
    pass
assert time.monotonic() - t0 < 2
ok("SIGALRM interrupts a blocked recv")

# With SA_RESTART (siginterrupt False) a blocked recv resumes instead of
# failing with EINTR, as on Linux. Called through ctypes: Python itself
# would retry EINTR and hide the difference.
import ctypes
import threading

libc = ctypes.CDLL(None, use_errno=True)
hits = []
signal.signal(signal.SIGALRM, lambda *_: hits.append(1))
signal.siginterrupt(signal.SIGALRM, False)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 0, 0))
threading.Timer(0.5, lambda: s.send(b"late")).start()
signal.setitimer(signal.ITIMER_REAL, 0.2)
buf = ctypes.create_string_buffer(16)
n = libc.recv(s.fileno(), buf, 16, 0)
assert n == 4 and buf.raw[:4] == b"late", (n, ctypes.get_errno())
assert hits, "the handler ran"
ok("SA_RESTART: a blocked recv resumes after the handler")

# shutdown(SHUT_WR): the echo server sees EOF and closes; we read EOF.
s.shutdown(socket.SHUT_WR)
assert s.recv(100) == b""
piped = []
signal.signal(signal.SIGPIPE, lambda *_: piped.append(1))
expect_errno(errno.EPIPE, s.send, b"x", socket.MSG_NOSIGNAL)
time.sleep(0.05)
assert not piped, "MSG_NOSIGNAL: no SIGPIPE"
expect_errno(errno.EPIPE, s.send, b"x")
time.sleep(0.05)  # Python runs handlers between bytecodes; give it one
assert piped, "EPIPE without MSG_NOSIGNAL raises SIGPIPE"
signal.signal(signal.SIGPIPE, signal.SIG_IGN)
s.close()
ok("shutdown(SHUT_WR) -> EOF back; send after it: EPIPE, SIGPIPE unless MSG_NOSIGNAL")

# Non-blocking connect: EINPROGRESS, then writable in select, SO_ERROR 0.
c = socket.socket()
c.setblocking(False)
assert c.connect_ex(PEER) == errno.EINPROGRESS
r, w, _ = select.select([], [c], [], 5)
assert w == [c]
assert c.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
ok("non-blocking connect: EINPROGRESS, select writable, SO_ERROR 0")

# Refused: poll reports it, SO_ERROR says ECONNREFUSED.
r = socket.socket()
r.setblocking(False)
assert r.connect_ex(CLOSED) == errno.EINPROGRESS
p = select.poll()
p.register(r, select.POLLOUT)
ev = p.poll(5000)
assert ev and ev[0][1] & (select.POLLOUT | select.POLLERR), ev
assert r.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == errno.ECONNREFUSED
r.close()
b = socket.socket()
expect_errno(errno.ECONNREFUSED, b.connect, CLOSED)
b.close()
ok("refused: poll POLLERR/POLLOUT and SO_ERROR, blocking connect ECONNREFUSED")

# epoll with a kernel pipe and a virtual socket; data returned as set.
rp, wp = os.pipe()
ep = select.epoll()
ep.register(rp, select.EPOLLIN)
ep.register(c.fileno(), select.EPOLLIN | select.EPOLLET)
assert ep.poll(0.1) == []
os.write(wp, b"x")
assert ep.poll(1) == [(rp, select.EPOLLIN)]
os.read(rp, 1)
c.send(b"echo me")
ev = ep.poll(5)
assert ev == [(c.fileno(), select.EPOLLIN)], ev
assert ep.poll(0.1) == [], "edge-triggered: reported once"
assert c.recv(100) == b"echo me"
ep.modify(c.fileno(), select.EPOLLOUT | select.EPOLLONESHOT)
assert ep.poll(1) == [(c.fileno(), select.EPOLLOUT)]
assert ep.poll(0.1) == [], "one-shot: disarmed"
ep.unregister(c.fileno())
ok("epoll: kernel and virtual fds, edge-triggered, one-shot")

# poll on a mix of a pipe and the socket, level-triggered.
p = select.poll()
p.register(rp, select.POLLIN)
p.register(c, select.POLLIN)
c.send(b"again")
ev = dict(p.poll(5000))
assert ev.get(c.fileno(), 0) & select.POLLIN and rp not in ev, ev
c.recv(100)
c.close()
ok("poll on mixed kernel and virtual fds")

# Loopback stays on kernel sockets.
l = socket.socket()
l.bind(("127.0.0.1", 0))
assert not fd_is_eventfd(l.fileno())
l.listen()
k = socket.create_connection(l.getsockname())
assert not fd_is_eventfd(k.fileno())
a, _ = l.accept()
k.sendall(b"local")
assert a.recv(10) == b"local"
ok("loopback bind/connect becomes a kernel socket and works")

# UDP: connected send/recv through the echo server, MSG_TRUNC.
q = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
q.settimeout(5)
q.sendto(b"0123456789", ("10.77.0.1", 9101))
data, _, flags, src = q.recvmsg(4)
assert data == b"0123" and flags & socket.MSG_TRUNC, (data, flags)
assert src == ("10.77.0.1", 9101), src
q.sendto(b"0123456789", ("10.77.0.1", 9101))
assert q.recv_into(bytearray(4), 4, socket.MSG_TRUNC) == 10
ok("UDP: truncated datagram flags MSG_TRUNC; recv with MSG_TRUNC gives the full length")

# Listener semantics: accept on a non-listening socket is EINVAL.
x = socket.socket()
x.bind(("0.0.0.0", 0))
x.setblocking(False)
expect_errno(errno.EINVAL, x.accept)
x.listen()
assert x.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
expect_errno(errno.EAGAIN, x.accept)
y = socket.socket()
expect_errno(errno.EADDRINUSE, y.bind, ("0.0.0.0", x.getsockname()[1]))
ok("accept: EINVAL before listen, EAGAIN when none pending; EADDRINUSE")

# fork: the child cannot use the parent's virtual socket; the parent can.
z = socket.create_connection(PEER)
pid = os.fork()
if pid == 0:
    try:
        z.send(b"from child")
        os._exit(1)
    except OSError as e:
        os._exit(0 if e.errno == errno.EBADFD else 2)
_, status = os.waitpid(pid, 0)
assert os.waitstatus_to_exitcode(status) == 0, status
z.sendall(b"parent")
assert z.recv(100) == b"parent"
ok("fork: child gets EBADFD, parent keeps working")
# The shim's own fds (the TUN device) cannot be closed or overwritten.
def link(f):
    try:
        return os.readlink(f"/proc/self/fd/{f}")
    except OSError:
        return None  # the directory's own fd, closed since


tun = [int(f) for f in os.listdir("/proc/self/fd") if link(f) == "/dev/net/tun"]
assert len(tun) == 1, tun
expect_errno(errno.EBADF, os.close, tun[0])
expect_errno(errno.EBUSY, os.dup2, 0, tun[0])
os.closerange(tun[0], tun[0] + 1)
z.sendall(b"after closerange")
assert z.recv(100) == b"after closerange"
ok("the shim's TUN fd survives close, dup2 and a close_range over it")
print("all semantics checks passed")
