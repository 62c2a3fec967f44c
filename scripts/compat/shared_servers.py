"""Servers for the shared-stack scripts, run on the stack side.

    shared_servers.py forking HOST PORT
        socketserver.ForkingTCPServer: a child per connection reads to
        EOF and replies "PID SHA256HEX\\n".
    shared_servers.py prefork HOST PORT WORKERS
        listens, then forks WORKERS children that each accept on the
        inherited listener; each connection: read to EOF, reply
        "PID SHA256HEX\\n", then keep it until the client closes it.
    shared_servers.py stream HOST PORT WORKERS
        the same prefork shape; each connection: send "PID\\n", then
        stream zeros until the peer goes away.
    shared_servers.py inetd HOST PORT PROGRAM [ARGS...]
        accepts; per connection forks a child that puts the connection
        on fds 0 and 1 and execs PROGRAM.
Prints "listening PID" once listening, and "worker PID" for each worker.
"""
import hashlib
import os
import signal
import socket
import socketserver
import sys


def say(line):
    # One write per line: the workers share stdout, and print() writes the
    # text and its newline separately, which interleaves ("worker 1worker
    # 2\n\n") when two forked workers announce themselves at once.
    os.write(1, (line + "\n").encode())


def sha_reply(conn):
    h = hashlib.sha256()
    while True:
        b = conn.recv(1 << 16)
        if not b:
            break
        h.update(b)
    conn.sendall(f"{os.getpid()} {h.hexdigest()}\n".encode())


def listener(host, port):
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port))
    s.listen(64)
    return s


def forking(host, port):
    class H(socketserver.BaseRequestHandler):
        def handle(self):
            sha_reply(self.request)

    class S(socketserver.ForkingTCPServer):
        allow_reuse_address = True
        request_queue_size = 64

    with S((host, port), H) as srv:
        say(f"listening {os.getpid()}")
        srv.serve_forever()


def prefork(host, port, workers, serve):
    s = listener(host, port)
    say(f"listening {os.getpid()}")
    kids = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:
            say(f"worker {os.getpid()}")
            while True:
                conn, _ = s.accept()
                try:
                    serve(conn)
                except OSError as e:
                    say(f"worker {os.getpid()}: {e}")
                finally:
                    conn.close()
        kids.append(pid)
    s.close()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while kids:
            pid, st = os.wait()
            say(f"worker {pid} ended: status {st}")
            kids.remove(pid)
    finally:
        for k in kids:
            try:
                os.kill(k, signal.SIGTERM)
            except ProcessLookupError:
                pass


def hold(conn):
    sha_reply(conn)
    while conn.recv(1 << 16):
        pass


def stream(conn):
    conn.sendall(f"{os.getpid()}\n".encode())
    zeros = bytes(1 << 16)
    while True:
        conn.sendall(zeros)


def inetd(host, port, argv):
    s = listener(host, port)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # no zombies
    say(f"listening {os.getpid()}")
    while True:
        conn, _ = s.accept()
        if os.fork() == 0:
            s.close()
            os.dup2(conn.fileno(), 0)
            os.dup2(conn.fileno(), 1)
            conn.close()
            os.execvp(argv[0], argv)
        conn.close()


def main():
    kind, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if kind == "forking":
        forking(host, port)
    elif kind == "prefork":
        prefork(host, port, int(sys.argv[4]), hold)
    elif kind == "stream":
        prefork(host, port, int(sys.argv[4]), stream)
    elif kind == "inetd":
        inetd(host, port, sys.argv[4:])
    else:
        sys.exit(f"unknown server {kind}")


main()
