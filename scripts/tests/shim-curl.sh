#!/usr/bin/env bash
# curl under the shim fetches from a kernel-side `python3 -m http.server`
# (IPv4 and IPv6, a 4 MiB file checked by sha256), and a kernel-side curl
# fetches from a python http.server running under the shim.
source "$(dirname "$0")/../netns.sh"
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/need.sh
need ip ss ps curl python3 tcpdump
source shim/tests/lib.sh

shim_device
mkdir "$shim_tmp/www"
head -c $((4 << 20)) /dev/urandom >"$shim_tmp/www/blob"
echo "hello from the kernel" >"$shim_tmp/www/hello.txt"
want=$(sha256sum <"$shim_tmp/www/blob" | cut -d' ' -f1)

bg python3 -m http.server --bind 10.77.0.1 --directory "$shim_tmp/www" 8000 2>/dev/null
bg python3 -m http.server --bind fd77::1 --directory "$shim_tmp/www" 8006 2>/dev/null
wait_listen 8000
wait_listen 8006

got=$(under_shim curl -sS --max-time 20 http://10.77.0.1:8000/hello.txt)
check "curl (shim) GET over IPv4" "$got" "hello from the kernel"
got=$(under_shim curl -sS --max-time 20 http://10.77.0.1:8000/blob | sha256sum | cut -d' ' -f1)
check "curl (shim) 4 MiB download sha256" "$got" "$want"
got=$(under_shim curl -sS --max-time 20 'http://[fd77::1]:8006/blob' | sha256sum | cut -d' ' -f1)
check "curl (shim) 4 MiB download over IPv6" "$got" "$want"
got=$(scripts/ustack --pcap "$shim_tmp/l.pcap" -- curl -sS --max-time 20 http://10.77.0.1:8000/hello.txt)
check "the launcher runs curl" "$got" "hello from the kernel"
# On the stack: its capture holds the connection (SYN to FIN, > 8 packets).
pkts=$(tcpdump -n -r "$shim_tmp/l.pcap" 2>/dev/null | wc -l)
check "the launcher's curl went over the userspace stack" "$((pkts > 8))" "1"
code=$(under_shim curl -s -o /dev/null -w '%{http_code}' --max-time 20 http://10.77.0.1:8000/missing)
check "curl (shim) sees a 404" "$code" "404"
# A port nobody listens on: refused, promptly.
rc=0
under_shim curl -sS --max-time 10 http://10.77.0.1:8009/ 2>"$shim_tmp/err" || rc=$?
check "curl (shim) to a closed port is refused (exit 7)" "$rc" "7"


# The reverse: the server on the userspace stack (dual-stack ::), kernel
# curl as client.
bg under_shim python3 -m http.server --bind :: --directory "$shim_tmp/www" 8080 2>/dev/null
for _ in $(seq 100); do
    curl -s -o /dev/null --max-time 1 http://10.77.0.2:8080/ && break
    sleep 0.1
done
got=$(curl -sS --max-time 20 http://10.77.0.2:8080/blob | sha256sum | cut -d' ' -f1)
check "kernel curl from python http.server under the shim" "$got" "$want"
got=$(curl -sS --max-time 20 'http://[fd77::2]:8080/hello.txt')
check "kernel curl over IPv6 from the shim server" "$got" "hello from the kernel"
