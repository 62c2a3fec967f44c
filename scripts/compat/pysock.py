"""Python socket programs for the compatibility tests.

usage:
  pysock.py tcp-server ADDRESS PORT COUNT  threaded echo server; serves COUNT
                                           connections (each echoes until
                                           EOF), then exits 0
  pysock.py tcp-client ADDRESS PORT N      N connections one after another,
                                           plus N at once from threads; each
                                           sends 20 messages (1 B .. 64 kB)
                                           and checks every echo
  pysock.py udp-server ADDRESS PORT COUNT  echoes COUNT datagrams, exits 0
                                           (servers print "ready" once bound)
  pysock.py udp-client ADDRESS PORT COUNT  sends COUNT datagrams (up to
                                           8000 B), checks every echo

Exit status 0 on success; a failure prints one line and exits 1.
"""
import hashlib
import socket
import socketserver
import sys
import threading

TIMEOUT = 10


def family(address):
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def payload(i, size):
    seed = hashlib.sha256(f"{i}:{size}".encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


def recv_exact(sock, n):
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise RuntimeError(f"EOF after {len(data)} of {n} bytes")
        data += chunk
    return bytes(data)


def tcp_session(address, port, tag):
    with socket.create_connection((address, port), timeout=TIMEOUT) as s:
        for i in range(20):
            size = [1, 10, 100, 1000, 1460, 5000, 65536][i % 7]
            msg = payload(f"{tag}-{i}", size)
            s.sendall(msg)
            got = recv_exact(s, size)
            if got != msg:
                raise RuntimeError(f"connection {tag}: echo {i} ({size} B) differs")
        s.shutdown(socket.SHUT_WR)
        if s.recv(1) != b"":
            raise RuntimeError(f"connection {tag}: no EOF after shutdown")


def tcp_client(address, port, n):
    for k in range(n):
        tcp_session(address, port, f"seq{k}")
    errors = []

    def run(k):
        try:
            tcp_session(address, port, f"thr{k}")
        except Exception as e:  # reported below
            errors.append(f"thread {k}: {e!r}")

    threads = [threading.Thread(target=run, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT * 3)
    if errors or any(t.is_alive() for t in threads):
        raise RuntimeError("; ".join(errors) or "a client thread hung")


class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        print(f"client {self.client_address[0]}", flush=True)
        self.request.settimeout(TIMEOUT)
        while True:
            data = self.request.recv(65536)
            if not data:
                break
            self.request.sendall(data)


def tcp_server(address, port, count):
    class Server(socketserver.ThreadingTCPServer):
        allow_reuse_address = True
        address_family = family(address)
        daemon_threads = True
        served = 0

    done = threading.Semaphore(0)

    class Handler(Echo):
        def finish(self):
            done.release()

    with Server((address, port), Handler) as server:
        t = threading.Thread(target=server.serve_forever, daemon=True)
        t.start()
        print("ready", flush=True)
        for k in range(count):
            if not done.acquire(timeout=TIMEOUT * 3):
                raise RuntimeError(f"served only {k} of {count} connections")
        server.shutdown()


def udp_server(address, port, count):
    with socket.socket(family(address), socket.SOCK_DGRAM) as s:
        s.bind((address, port))
        s.settimeout(TIMEOUT * 2)
        print("ready", flush=True)
        for _ in range(count):
            data, peer = s.recvfrom(65536)
            print(f"client {peer[0]}", flush=True)
            s.sendto(data, peer)


def udp_client(address, port, count):
    with socket.socket(family(address), socket.SOCK_DGRAM) as s:
        s.settimeout(2)
        for i in range(count):
            msg = payload(f"udp{i}", [1, 100, 1400, 3000, 8000][i % 5])
            s.sendto(msg, (address, port))
            data, peer = s.recvfrom(65536)
            if data != msg:
                raise RuntimeError(f"datagram {i} ({len(msg)} B): echo differs ({len(data)} B)")
            if peer[1] != port:
                raise RuntimeError(f"datagram {i}: echo from port {peer[1]}")


def main():
    mode, address, port, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    try:
        {"tcp-server": tcp_server, "tcp-client": tcp_client,
         "udp-server": udp_server, "udp-client": udp_client}[mode](address, port, n)
    except Exception as e:
        print(f"pysock {mode} {address} {port}: FAIL: {e!r}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
