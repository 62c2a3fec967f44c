#!/usr/bin/env bash
# The main job: builds ustack, then, inside a private network namespace,
# starts the example server on a TUN device and shows the kernel reaching it:
# ping over IPv4 and IPv6, and a pcap capture of the exchange read back with
# tcpdump. Needs root or unprivileged user namespaces, and iproute2,
# iputils-ping and tcpdump.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z "${USTACK_NETNS_OF:-}" ]]; then
    cargo build --release --example server
fi
source scripts/netns.sh
source scripts/lib.sh

pcap="$tmp/demo.pcap"
start_server "$pcap"
echo "== kernel -> ustack: ping 10.77.0.2"
ping -c 3 -i 0.2 -W 2 10.77.0.2
echo "== kernel -> ustack: ping -6 fd77::2"
ping -6 -c 3 -i 0.2 -W 2 fd77::2
stop_server
echo "== the capture (USTACK_PCAP), read back with tcpdump"
tcpdump -n -r "$pcap" 2>/dev/null
