#!/usr/bin/env bash
# The library examples against kernel peers over the TUN link: http_get
# fetching from a kernel-side python http.server (IPv4 and IPv6, checked by
# sha256), and bulk sending to and receiving from kernel socat.
source "$(dirname "$0")/../netns.sh"
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/need.sh
need ip ss socat python3
source scripts/lib.sh
ex=target/release/examples
fail() { echo "FAIL: $*"; exit 1; }

mkdir "$tmp/www"
head -c 5000000 /dev/urandom > "$tmp/www/blob"
(cd "$tmp/www" && exec python3 -m http.server --bind :: 8000 > "$tmp/http.log" 2>&1) &
bg_pids+=($!)
for _ in $(seq 50); do ss -ltn | grep -q ':8000 ' && break; sleep 0.1; done
for url in http://10.77.0.1:8000/blob "http://[fd77::1]:8000/blob"; do
    timeout 30 "$ex/http_get" "$url" > "$tmp/got" 2> "$tmp/headers" || fail "http_get $url: $(cat "$tmp/headers")"
    [[ $(sha256sum < "$tmp/got") == $(sha256sum < "$tmp/www/blob") ]] || fail "http_get $url: body differs"
    grep -q '^HTTP/1.0 200' "$tmp/headers" || fail "http_get $url: status"
done
timeout 10 "$ex/http_get" http://10.77.0.1:8000/missing > /dev/null 2> "$tmp/headers" || true
grep -q ' 404 ' "$tmp/headers" || fail "http_get of a missing file did not show 404"

# ustack sends 64 MiB to kernel socat, which counts it.
timeout 30 socat -u TCP4-LISTEN:5001,reuseaddr "SYSTEM:wc -c > $tmp/count" &
sleep 0.2
timeout 30 "$ex/bulk" send 10.77.0.1 5001 64 || fail "bulk send"
wait $! || fail "socat receiver"
[[ $(cat "$tmp/count") -eq $((64 << 20)) ]] || fail "kernel received $(cat "$tmp/count") bytes"

# The kernel sends 64 MiB to ustack's bulk receiver.
timeout 30 "$ex/bulk" recv 5002 > "$tmp/recv" &
recv_pid=$!
for _ in $(seq 50); do ip -4 addr show dev ustack0 2>/dev/null | grep -q 'inet ' && break; sleep 0.1; done
sleep 0.2
head -c $((64 << 20)) /dev/zero | timeout 30 socat -u - TCP4:10.77.0.2:5002 || fail "socat sender"
wait "$recv_pid" || fail "bulk recv"
grep -q "^$((64 << 20)) bytes" "$tmp/recv" || fail "bulk recv: $(cat "$tmp/recv")"
echo "examples: ok ($(cat "$tmp/recv"))"
