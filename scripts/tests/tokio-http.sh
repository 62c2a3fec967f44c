#!/usr/bin/env bash
# The tokio examples (built with --features tokio) against kernel clients:
# the kernel's curl fetching from hyper_http on the stack (GET v4 and v6,
# two requests on one kept-alive connection, a 1 MiB POST echoed back and
# checked by sha256), then kernel python clients against tokio_echo (8
# concurrent TCP connections v4/v6 echoed byte for byte, a UDP round trip).
source "$(dirname "$0")/../netns.sh"
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh
ex=target/release/examples
fail() { echo "FAIL: $*"; [[ -f "${log:-}" ]] && cat "$log"; exit 1; }

for b in hyper_http tokio_echo; do
    [[ -x "$ex/$b" ]] || fail "missing $ex/$b: cargo build --release --features tokio --example $b"
done

# start NAME ARGS...: starts an example in the background and waits for its
# "listening" line (printed once its sockets are bound, after the stack
# brought the device up) and for the IPv6 address to leave tentative.
start() {
    log="$tmp/$1.log"
    "$ex/$1" "${@:2}" 2> "$log" &
    pid=$!
    bg_pids+=("$pid")
    for _ in $(seq 100); do
        if grep -q listening "$log" && ip -6 addr show dev ustack0 | grep -q 'fd77::1' &&
            ! ip -6 addr show dev ustack0 | grep -q tentative; then
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || fail "$1 exited"
        sleep 0.05
    done
    fail "$1 did not start in 5 s"
}

# stop: ends the example started last (the device goes with it).
stop() {
    kill "$pid"
    wait "$pid" || true
    for _ in $(seq 100); do ip link show ustack0 > /dev/null 2>&1 || return 0; sleep 0.05; done
    fail "ustack0 still exists"
}

start hyper_http 8080
c=(curl -sS -f --max-time 30)
want="hello from hyper on ustack"
got=$("${c[@]}" http://10.77.0.2:8080/) || fail "GET v4: curl exit $?"
[[ "$got" == "$want" ]] || fail "GET v4 body: '$got'"
got=$("${c[@]}" -g "http://[fd77::2]:8080/index.html") || fail "GET v6: curl exit $?"
[[ "$got" == "$want" ]] || fail "GET v6 body: '$got'"
"${c[@]}" -v http://10.77.0.2:8080/a http://10.77.0.2:8080/b > "$tmp/two" 2> "$tmp/two.err" ||
    fail "two GETs: $(cat "$tmp/two.err")"
[[ $(grep -c "^$want\$" "$tmp/two") -eq 2 ]] || fail "two GETs: $(cat "$tmp/two")"
grep -qi 're-using existing connection\|reusing existing' "$tmp/two.err" ||
    fail "the second GET did not reuse the connection: $(cat "$tmp/two.err")"
head -c $((1 << 20)) /dev/urandom > "$tmp/post.in"
"${c[@]}" --data-binary "@$tmp/post.in" -o "$tmp/post.out" http://10.77.0.2:8080/echo ||
    fail "1 MiB POST: curl exit $?"
[[ $(sha256sum < "$tmp/post.out") == $(sha256sum < "$tmp/post.in") ]] ||
    fail "1 MiB POST: echoed body differs ($(wc -c < "$tmp/post.out") bytes back)"
code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 30 -X DELETE http://10.77.0.2:8080/) || true
[[ "$code" == 405 ]] || fail "DELETE: status $code"
stop
echo "tokio-http: hyper GET v4/v6, keep-alive, 1 MiB POST echo, 405"

start tokio_echo 7008
timeout 60 python3 - <<'PY' || fail "echo clients"
import os, socket, sys, threading

def tcp_client(family, addr, size, results, i):
    data = os.urandom(size)
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect((addr, 7008))
    def send():
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
    t = threading.Thread(target=send)
    t.start()
    back = bytearray()
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        back += chunk
    t.join()
    s.close()
    results[i] = bytes(back) == data

results = [False] * 8
threads = []
for i in range(8):
    fam, addr = (socket.AF_INET, "10.77.0.2") if i % 2 == 0 else (socket.AF_INET6, "fd77::2")
    threads.append(threading.Thread(target=tcp_client, args=(fam, addr, 300000 + i * 1111, results, i)))
for t in threads:
    t.start()
for t in threads:
    t.join()
if not all(results):
    sys.exit(f"TCP echo differed for clients {[i for i, ok in enumerate(results) if not ok]}")

u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.settimeout(10)
u.sendto(b"datagram over tokio", ("10.77.0.2", 7008))
back, src = u.recvfrom(2048)
if back != b"datagram over tokio" or src != ("10.77.0.2", 7008):
    sys.exit(f"UDP echo: {back!r} from {src}")
PY
stop
echo "tokio-http: tokio_echo 8 TCP clients v4/v6 and UDP echoed"
