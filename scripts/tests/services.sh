#!/usr/bin/env bash
# The example server's TCP and UDP services, reached by the kernel's own
# netcat and socat over the TUN link, IPv4 and IPv6.
source "$(dirname "$0")/../netns.sh"
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/need.sh
need ip nc socat tcpdump
source scripts/lib.sh

start_server "$tmp/services.pcap"
fail() { echo "FAIL: $*"; stop_server || true; exit 1; }

# TCP echo, IPv4 and IPv6: what goes in comes back, byte for byte.
head -c 1000000 /dev/urandom > "$tmp/in"
for addr in TCP4:10.77.0.2:7 TCP6:[fd77::2]:7; do
    timeout 20 socat -t 5 - "$addr" < "$tmp/in" > "$tmp/out" ||
        fail "echo round trip at $addr"
    cmp "$tmp/in" "$tmp/out" || fail "echo at $addr returned different bytes"
done
# Discard swallows; chargen produces RFC 864 lines.
timeout 20 socat -u "FILE:$tmp/in" TCP4:10.77.0.2:9 || fail "discard"
timeout 10 nc -N 10.77.0.2 19 < /dev/null | head -c 7400 > "$tmp/chargen" || true
[[ $(wc -c < "$tmp/chargen") -eq 7400 ]] || fail "chargen gave $(wc -c < "$tmp/chargen") bytes"
head -1 "$tmp/chargen" | grep -q '^!"#\$%&' || fail "chargen line"
# UDP echo, IPv4 and IPv6.
for addr in UDP4:10.77.0.2:7 UDP6:[fd77::2]:7; do
    reply=$(echo "udp to $addr" | timeout 5 socat -t 2 - "$addr") || fail "udp echo at $addr"
    [[ $reply == "udp to $addr" ]] || fail "udp echo at $addr returned '$reply'"
done
# A datagram to a closed UDP port: the stack answers with ICMP port
# unreachable, which makes the kernel's connected nc fail its next write
# (ECONNREFUSED) and exit non-zero.
if (echo one; sleep 0.5; echo two) | timeout 5 nc -u -w 2 10.77.0.2 9999; then
    fail "nc -u to a closed port succeeded"
fi
stop_server
tcpdump -n -r "$tmp/services.pcap" 2>/dev/null | grep -q "10.77.0.2 > 10.77.0.1: ICMP 10.77.0.2 udp port 9999 unreachable" ||
    fail "no ICMP port unreachable in the capture"
echo "services: ok"
