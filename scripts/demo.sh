#!/usr/bin/env bash
# The main job: builds ustack, then, inside a private network namespace:
#  1. the example server on a TUN device, reached from the kernel side by
#     ping (IPv4 and IPv6), with the USTACK_PCAP capture read back;
#  2. unmodified curl on the userspace stack (LD_PRELOAD=libustack.so via
#     scripts/ustack) fetching from a kernel-side python http.server;
#  3. kernel curl fetching from an unmodified python http.server running on
#     the userspace stack.
# Needs root (or unprivileged user namespaces) and iproute2, iputils-ping,
# tcpdump, curl and python3: scripts/setup.sh installs them.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/need.sh
need_hint=scripts/setup.sh need "${ustack_demo_cmds[@]}"
if [[ -z "${USTACK_NETNS_OF:-}" ]]; then
    cargo build --release --workspace --examples
fi
source scripts/netns.sh
source scripts/lib.sh

echo "== 1. the example server; the kernel pings it"
start_server "$tmp/demo.pcap"
ping -c 3 -i 0.2 -W 2 10.77.0.2
ping -6 -c 3 -i 0.2 -W 2 fd77::2
stop_server
echo "-- the capture (USTACK_PCAP), read back with tcpdump:"
tcpdump -n -r "$tmp/demo.pcap" 2>/dev/null

echo
echo "== 2. curl on the userspace stack, fetching from the kernel"
# A persistent device, so the kernel-side server can bind 10.77.0.1 before
# any program on the stack runs (programs under the shim attach to it).
scripts/ustack --setup > /dev/null
mkdir "$tmp/www"
echo "hello from the kernel's python http.server" > "$tmp/www/hello.txt"
python3 -m http.server --bind 10.77.0.1 --directory "$tmp/www" 8000 > /dev/null 2>&1 &
bg_pids+=($!)
for _ in $(seq 50); do ss -Hltn 'sport = :8000' | grep -q . && break; sleep 0.1; done
echo "\$ scripts/ustack --pcap demo2.pcap curl -sS http://10.77.0.1:8000/hello.txt"
scripts/ustack --pcap "$tmp/demo2.pcap" curl -sS --max-time 20 http://10.77.0.1:8000/hello.txt
echo "-- the same exchange as the stack saw it:"
tcpdump -n -r "$tmp/demo2.pcap" 2>/dev/null | head -12

echo
echo "== 3. python http.server on the userspace stack, fetched by the kernel's curl"
LD_PRELOAD="$PWD/target/release/libustack.so" \
    python3 -m http.server --bind :: --directory "$tmp/www" 8080 > /dev/null 2>&1 &
bg_pids+=($!)
for _ in $(seq 100); do curl -s -o /dev/null --max-time 1 http://10.77.0.2:8080/ && break; sleep 0.1; done
echo "\$ curl -sS http://10.77.0.2:8080/hello.txt"
curl -sS --max-time 20 http://10.77.0.2:8080/hello.txt
echo "\$ curl -sS 'http://[fd77::2]:8080/hello.txt'"
curl -sS --max-time 20 'http://[fd77::2]:8080/hello.txt'
