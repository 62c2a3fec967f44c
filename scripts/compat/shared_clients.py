"""Kernel-side TCP clients for the shared-stack scripts.

    shared_clients.py HOST PORT N BYTES [--batch K] [--mode sha|echo]

Opens N connections to HOST:PORT, K at a time (default N: all at once),
each on its own thread. On each it sends BYTES random bytes, shuts down
its write side, and reads the reply:
  --mode sha  (default): the reply is a line "PID SHA256HEX\n" (or
               "SHA256HEX  -" from sha256sum), read up to its newline; the
               hash must be the sent data's;
  --mode count: the same with the byte count instead of the hash;
  --mode echo: the reply must be the sent data itself.
--batch K: all K connections of a batch are open, and each has its whole
reply, before any of them is closed (so against a server that keeps each
connection until the client closes it, K servers must serve at once).
Prints one line per connection ("ok PID" / "FAIL ...") and a summary
"served N/N pids P1,P2,..."; exit 0 only if every connection passed.
"""
import argparse
import hashlib
import os
import socket
import sys
import threading

ap = argparse.ArgumentParser()
ap.add_argument("host")
ap.add_argument("port", type=int)
ap.add_argument("n", type=int)
ap.add_argument("nbytes", type=int)
ap.add_argument("--batch", type=int, default=0)
ap.add_argument("--mode", choices=["sha", "count", "echo"], default="sha")
ap.add_argument("--timeout", type=float, default=60)
a = ap.parse_args()

lock = threading.Lock()
results = []


def one(i, barrier):
    data = os.urandom(a.nbytes)
    want = hashlib.sha256(data).hexdigest()
    s = None
    try:
        s = socket.create_connection((a.host, a.port), timeout=a.timeout)
        # Send and receive at once: an echo server's reply would otherwise
        # fill both buffers and stall the sender.
        got = bytearray()
        rerr = []

        def reader():
            try:
                while True:
                    b = s.recv(1 << 16)
                    if not b:
                        return
                    got.extend(b)
                    if a.mode != "echo" and b"\n" in got:
                        return
            except Exception as e:  # noqa: BLE001
                rerr.append(e)

        t = threading.Thread(target=reader)
        t.start()
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except Exception as e:
            # Let the reader see what the server sent before failing.
            t.join(a.timeout)
            raise OSError(f"sending: {type(e).__name__}: {e}; "
                          f"received {len(got)} bytes, reader {rerr}") from e
        t.join(a.timeout)
        if t.is_alive():
            raise TimeoutError(f"no EOF from the server after {len(got)} bytes")
        if rerr:
            raise OSError(f"receiving after {len(got)} bytes: "
                          f"{type(rerr[0]).__name__}: {rerr[0]}")
        if a.mode == "echo":
            ok = hashlib.sha256(got).hexdigest() == want
            pid = "-"
            why = f"echo of {len(got)} bytes, want {a.nbytes}, sha256 differs"
        elif a.mode == "count":
            words = got.decode(errors="replace").split()
            ok = len(words) == 2 and words[1] == str(a.nbytes)
            pid = words[0] if words else "?"
            why = f"reply {bytes(got[:100])!r}, want a count of {a.nbytes}"
        else:
            words = got.decode(errors="replace").split()
            if len(words) >= 2 and words[1] == "-":  # sha256sum's "HEX  -"
                words = ["-", words[0]]
            ok = len(words) == 2 and words[1] == want
            pid = words[0] if words else "?"
            why = f"reply {bytes(got[:100])!r}, want sha256 {want[:16]}"
        if barrier is not None:
            barrier.wait(a.timeout)
        with lock:
            results.append((i, ok, pid, "" if ok else why))
    except Exception as e:  # noqa: BLE001
        if barrier is not None:
            barrier.abort()
        with lock:
            results.append((i, False, "?", f"{type(e).__name__}: {e}"))
    finally:
        if s is not None:
            s.close()


k = a.batch or a.n
for start in range(0, a.n, k):
    idx = range(start, min(a.n, start + k))
    barrier = threading.Barrier(len(idx)) if a.batch else None
    ts = [threading.Thread(target=one, args=(i, barrier)) for i in idx]
    for t in ts:
        t.start()
    for t in ts:
        t.join()

ok = 0
pids = []
for i, good, pid, why in sorted(results):
    if good:
        ok += 1
        print(f"ok {i} pid {pid}")
        if pid not in pids:
            pids.append(pid)
    else:
        print(f"FAIL {i}: {why}")
print(f"served {ok}/{a.n} pids {','.join(pids)}")
sys.exit(0 if ok == a.n else 1)
