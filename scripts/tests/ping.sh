#!/usr/bin/env bash
# The kernel pings the userspace stack over a TUN device, IPv4 and IPv6,
# including an echo request large enough to be fragmented both ways, and
# the USTACK_PCAP capture of it reads back with tcpdump.
source "$(dirname "$0")/../netns.sh"
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/need.sh
need ip ping tcpdump
source scripts/lib.sh

pcap="$tmp/ping.pcap"
start_server "$pcap"
ping -c 3 -i 0.2 -W 2 10.77.0.2
ping -6 -c 3 -i 0.2 -W 2 fd77::2
# 4000 bytes of data on a 1500-byte link: fragments in both directions.
ping -c 2 -i 0.2 -W 2 -s 4000 10.77.0.2
ping -6 -c 2 -i 0.2 -W 2 -s 4000 fd77::2
stop_server

replies=$(tcpdump -n -r "$pcap" 2>/dev/null | grep -c 'echo reply' || true)
requests=$(tcpdump -n -r "$pcap" 2>/dev/null | grep -c 'echo request' || true)
echo "capture: $requests echo requests, $replies echo replies"
[[ $requests -eq 10 && $replies -eq 10 ]]
