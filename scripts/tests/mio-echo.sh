#!/usr/bin/env bash
# The mio event-loop example (readiness fds) serving several kernel clients
# at once, each echoed back byte for byte.
source "$(dirname "$0")/../netns.sh"
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/need.sh
need ip socat
source scripts/lib.sh
fail() { echo "FAIL: $*"; exit 1; }

target/release/examples/mio_echo 7007 2> "$tmp/mio.log" &
bg_pids+=($!)
for _ in $(seq 50); do ip -4 addr show dev ustack0 2>/dev/null | grep -q 'inet ' && break; sleep 0.1; done
sleep 0.2
pids=()
for i in 1 2 3 4 5 6 7 8; do
    head -c $((200000 + i * 1000)) /dev/urandom > "$tmp/in$i"
    (timeout 20 socat -t 5 - TCP4:10.77.0.2:7007 < "$tmp/in$i" > "$tmp/out$i") &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "a client failed"; done
for i in 1 2 3 4 5 6 7 8; do
    cmp "$tmp/in$i" "$tmp/out$i" || fail "client $i got different bytes back"
done
echo "mio-echo: 8 clients echoed"
