#!/usr/bin/env bash
# USTACK_ADDR=dhcp under the shim: a program on its own in-process stack
# (USTACK_SHARED=off) on a TAP device in a bridge gets its address from
# dnsmasq (inside this namespace, bound to the bridge), and its name
# lookups go to the DNS server the lease names, not to resolv.conf's:
# resolv.conf (this test's own, bind-mounted in a private mount
# namespace) names 10.99.0.77, where nothing answers. getent resolves a
# name only dnsmasq knows; dnsmasq's log shows the lease to the stack's
# MAC, the query from the leased address, and the release at exit.
source "$(dirname "$0")/../netns.sh"
if [[ ${USTACK_MNTNS_OF:-} != "$0" ]]; then
    exec unshare -m -- env USTACK_MNTNS_OF="$0" bash "$0" "$@"
fi
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/need.sh
need ip ss dnsmasq getent
lib=${USTACK_LIB:-target/release/libustack.so}
[[ -f $lib ]] || { echo "dhcp-dns: $lib missing (cargo build --release)"; exit 1; }
WORK=$(mktemp -d)
pid=
cleanup() {
    [[ -z $pid ]] || { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; }
    rm -rf "$WORK"
}
trap cleanup EXIT

printf 'nameserver 10.99.0.77\noptions timeout:1 attempts:1\n' >"$WORK/resolv.conf"
printf '127.0.0.1 localhost\n' >"$WORK/hosts"
printf 'hosts: files dns\n' >"$WORK/nsswitch.conf"
for f in resolv.conf hosts nsswitch.conf; do
    mount --bind "$WORK/$f" "/etc/$f"
done

ip link add br0 type bridge
ip addr add 10.99.0.1/24 dev br0
ip link set br0 up
ip tuntap add ustap0 mode tap
ip link set ustap0 master br0
ip link set ustap0 up

dnsmasq --keep-in-foreground --conf-file=/dev/null --interface=br0 --bind-interfaces \
    --except-interface=lo --user=root --pid-file="$WORK/dnsmasq.pid" \
    --dhcp-range=10.99.0.50,10.99.0.99,255.255.255.0,2m \
    --dhcp-leasefile="$WORK/leases" --dhcp-option=option:dns-server,10.99.0.1 \
    --port=53 --no-resolv --no-hosts --local=/lab.test/ \
    --host-record=web.lab.test,10.99.0.42 \
    --log-queries --log-facility="$WORK/dns.log" &
pid=$!
for _ in $(seq 500); do
    ss -H -uln 'sport = :67' | grep -q :67 && ss -H -uln 'sport = :53' | grep -q :53 && break
    sleep 0.02
done

mac=02:00:00:99:00:05
out=$(USTACK_LINK=tap USTACK_IFNAME=ustap0 USTACK_ADDR=dhcp USTACK_MAC=$mac USTACK_SHARED=off \
    LD_PRELOAD="$PWD/$lib" getent ahostsv4 web.lab.test 2>"$WORK/err") || true
failed=0
if grep -q '^10\.99\.0\.42 ' <<<"$out"; then
    echo "  ok   getent under the shim resolved web.lab.test to 10.99.0.42"
else
    echo "  FAIL getent under the shim: '$out' $(cat "$WORK/err")"
    failed=1
fi
if grep -q "DHCPACK(br0) 10\.99\.0\.[0-9]* $mac" "$WORK/dns.log"; then
    echo "  ok   dnsmasq leased an address to $mac"
else
    echo "  FAIL no lease for $mac: $(cat "$WORK/dns.log")"
    failed=1
fi
if grep -q "DHCPRELEASE(br0) 10\.99\.0\.[0-9]* $mac" "$WORK/dns.log"; then
    echo "  ok   the lease was released at the program's exit"
else
    echo "  FAIL no DHCPRELEASE from $mac"
    failed=1
fi
from=$(grep -o 'query\[A\] web.lab.test from [0-9.]*' "$WORK/dns.log" | head -1 | awk '{print $NF}')
if [[ $from == 10.99.0.* && $from != 10.99.0.1 ]]; then
    echo "  ok   the query came from the leased address $from"
else
    echo "  FAIL the query came from '${from}': $(cat "$WORK/dns.log")"
    failed=1
fi
exit $failed
