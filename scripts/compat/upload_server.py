"""A small HTTP server for the compatibility tests: GET serves files from a
directory; POST reads the body (Content-Length) and answers with
"<sha256 hex> <length>\n" of what it received.

usage: upload_server.py ADDRESS PORT DIRECTORY
"""
import hashlib
import http.server
import socket
import sys


class Handler(http.server.SimpleHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        digest = hashlib.sha256()
        left = length
        while left > 0:
            chunk = self.rfile.read(min(left, 1 << 16))
            if not chunk:
                break
            digest.update(chunk)
            left -= len(chunk)
        body = f"{digest.hexdigest()} {length - left}\n".encode()
        self.send_response(200 if left == 0 else 400)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Server(http.server.ThreadingHTTPServer):
    allow_reuse_address = True


def main():
    address, port, directory = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    Server.address_family = socket.AF_INET6 if ":" in address else socket.AF_INET

    def handler(*args, **kwargs):
        return Handler(*args, directory=directory, **kwargs)

    with Server((address, port), handler) as server:
        server.serve_forever()


if __name__ == "__main__":
    main()
