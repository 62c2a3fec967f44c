"""Name lookups through glibc's entry points, one line per case, so that a
run on kernel sockets (glibc's own resolver) and a run under the shim
(the stack's) can be compared line for line. Used by
scripts/tests/shim-dns.sh against a dnsmasq serving lab.test."""

import ctypes
import socket

AI = socket.AddressInfo


def gai(*args, **kw):
    try:
        out = []
        for fam, ty, proto, canon, addr in socket.getaddrinfo(*args, **kw):
            out.append(f"{fam.name}/{ty.name}/{proto} {canon!r} {addr[0]} {addr[1]}")
        return "; ".join(out)
    except socket.gaierror as e:
        return f"gaierror {e.errno}"


def sorted_addrs(name):
    try:
        return " ".join(sorted({a[4][0] for a in socket.getaddrinfo(name, 1, socket.AF_INET, socket.SOCK_STREAM)}))
    except socket.gaierror as e:
        return f"gaierror {e.errno}"


def ghbn(name):
    try:
        return socket.gethostbyname(name)
    except socket.gaierror as e:
        return f"gaierror {e.errno}"
    except OSError as e:
        return f"herror {e.errno}"


def ghbn_ex(name):
    try:
        return repr(socket.gethostbyname_ex(name))
    except OSError as e:
        return f"herror {e.errno}"


libc = ctypes.CDLL(None)
h_errno = libc.__h_errno_location
h_errno.restype = ctypes.POINTER(ctypes.c_int)


def res(fn, name, qtype):
    buf = ctypes.create_string_buffer(4096)
    n = getattr(libc, fn)(name.encode(), 1, qtype, buf, len(buf))
    if n < 0:
        return f"-1 h_errno {h_errno().contents.value}"
    raw = buf.raw[:n]
    return f"{n} bytes, rcode {raw[3] & 15}, {int.from_bytes(raw[6:8], 'big')} answers"


cases = [
    ("search list and CNAME", lambda: gai("www", 80, type=socket.SOCK_STREAM)),
    ("canonical name, IPv4", lambda: gai("web.lab.test", "http", socket.AF_INET, flags=AI.AI_CANONNAME)),
    ("IPv6 only", lambda: gai("web.lab.test", 80, socket.AF_INET6, socket.SOCK_STREAM)),
    ("no AAAA", lambda: gai("v4only.lab.test", 80, socket.AF_INET6)),
    ("no AAAA, V4MAPPED", lambda: gai("v4only.lab.test", 80, socket.AF_INET6, socket.SOCK_STREAM, flags=AI.AI_V4MAPPED)),
    ("NXDOMAIN", lambda: gai("nothere.lab.test", 80)),
    ("hosts file", lambda: gai("filehost", 7, type=socket.SOCK_DGRAM)),
    ("hosts alias, any type", lambda: gai("fileALIAS", 7)),
    ("bad service", lambda: gai("web.lab.test", "no-such-service")),
    ("numeric", lambda: gai("10.77.0.1", 9, type=socket.SOCK_STREAM)),
    ("truncated over UDP, then TCP", lambda: sorted_addrs("big.lab.test")),
    ("gethostbyname", lambda: ghbn("www")),
    ("gethostbyname NXDOMAIN", lambda: ghbn("nothere.lab.test")),
    ("gethostbyname_ex", lambda: ghbn_ex("www.lab.test")),
    ("res_query A", lambda: res("res_query", "web.lab.test", 1)),
    ("res_query NXDOMAIN", lambda: res("res_query", "nothere.lab.test", 1)),
    ("res_search through the search list", lambda: res("res_search", "web", 28)),
]
for name, f in cases:
    print(f"{name}: {f()}", flush=True)
