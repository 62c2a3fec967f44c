#!/usr/bin/env bash
# netcat and short-lived programs under the shim against kernel peers:
# `echo | nc` delivers before exit, nc as a server under the shim, UDP
# both ways, and a client that writes 2 MiB and exits without closing
# (the exit linger must deliver every byte and the FIN).
source "$(dirname "$0")/../netns.sh"
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/need.sh
need ip ss ps nc python3
source shim/tests/lib.sh

shim_device

# echo hi | nc (shim) -> kernel nc -l
nc -l 10.77.0.1 9001 >"$shim_tmp/got1" &
srv=$!
wait_listen 9001
echo "hi from the shim" | under_shim nc -N 10.77.0.1 9001
wait "$srv"
check "echo | nc (shim) delivered to kernel nc -l" "$(cat "$shim_tmp/got1")" "hi from the shim"

# nc -l under the shim <- kernel nc
bg under_shim nc -l 9002 >"$shim_tmp/got2"
for _ in $(seq 100); do
    echo "hi from the kernel" | nc -N 10.77.0.2 9002 2>/dev/null && break
    sleep 0.1
done
for _ in $(seq 50); do [[ -s "$shim_tmp/got2" ]] && break; sleep 0.1; done
check "kernel nc delivered to nc -l under the shim" "$(cat "$shim_tmp/got2")" "hi from the kernel"

# UDP: nc -u under the shim -> kernel python receiver
python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("10.77.0.1", 9003))
s.settimeout(10)
d, a = s.recvfrom(2048)
s.sendto(d.upper(), a)
print(d.decode().strip(), flush=True)
' >"$shim_tmp/got3" &
srv=$!
wait_udp 9003
got=$(echo "datagram" | under_shim timeout 5 nc -u -w 2 10.77.0.1 9003 || true)
wait "$srv"
check "nc -u (shim) datagram reached the kernel" "$(cat "$shim_tmp/got3")" "datagram"
check "the reply came back to nc -u (shim)" "$got" "DATAGRAM"

# Exit linger: 2 MiB written, exit without close.
for host in 10.77.0.1 fd77::1; do
    python3 shim/tests/sink.py "$host" 9004 >"$shim_tmp/sink" &
    srv=$!
    wait_listen 9004
    sent=$(under_shim python3 shim/tests/blast.py "$host" 9004 $((2 << 20)))
    wait "$srv"
    check "2 MiB then exit without close ($host): all delivered" "$(cat "$shim_tmp/sink")" "$sent"
done
