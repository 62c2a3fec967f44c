#!/usr/bin/env bash
# Name resolution through the stack: glibc's getaddrinfo, gethostbyname,
# gethostbyname_ex and res_query/res_search under the shim resolve over
# the stack, and a kernel-side dnsmasq (inside this namespace, bound to
# the link's kernel address) logs every query as coming from the stack's
# address, none from the kernel's. glibc's own resolver, on kernel
# sockets, is the oracle: scripts/compat/resolve_cases.py prints the
# same lines under both (search list, ndots, CNAME chains, AAAA before A,
# AI_CANONNAME, AI_V4MAPPED, NXDOMAIN, no-data, /etc/hosts and its
# aliases, bad services, numeric hosts, a truncated answer retried over
# TCP, h_errno values). Then curl fetches a file by name, dig and host
# (libuv: UDP by syscall(__NR_sendmmsg)) ask dnsmasq directly, and
# USTACK_DNS=kernel hands lookups back to glibc. resolv.conf, hosts and
# nsswitch.conf are this test's own, bind-mounted in a private mount
# namespace. Both stack models.
source "$(dirname "$0")/../netns.sh"
if [[ ${USTACK_MNTNS_OF:-} != "$0" ]]; then
    exec unshare -m -- env USTACK_MNTNS_OF="$0" bash "$0" "$@"
fi
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/need.sh
need python3 ip curl dnsmasq dig host
source scripts/compat/lib.sh
source scripts/compat/shared.sh
[[ $COMPAT_MODE == shim ]] || { echo "$compat_name: shim mode only (it runs the kernel case itself)"; exit 2; }

printf 'nameserver %s\nsearch lab.test\noptions timeout:2 attempts:2\n' "$PEER" >"$WORK/resolv.conf"
printf '127.0.0.1 localhost\n10.77.0.5 filehost filealias\n' >"$WORK/hosts"
printf 'hosts: files dns\n' >"$WORK/nsswitch.conf"
for f in resolv.conf hosts nsswitch.conf; do
    mount --bind "$WORK/$f" "/etc/$f"
done
big=()
for i in $(seq 1 40); do big+=("--host-record=big.lab.test,10.77.1.$i"); done
bg dnsmasq --keep-in-foreground --listen-address="$PEER" --bind-interfaces --port=53 \
    --no-resolv --no-hosts --local=/lab.test/ --user=root --pid-file="$WORK/dnsmasq.pid" \
    --host-record=web.lab.test,"$PEER",fd77::1 --cname=www.lab.test,web.lab.test \
    --host-record=v4only.lab.test,10.77.0.7 "${big[@]}" \
    --log-queries --log-facility="$WORK/dns.log"
wait_udp_kernel "$PEER" 53 || fail "dnsmasq never listening"

"$PY" scripts/compat/resolve_cases.py >"$WORK/kernel.out" 2>&1 || fail "the cases failed on kernel sockets"
[[ -z ${SHOW_CASES:-} ]] || cat "$WORK/kernel.out"
kernel_queries=$(grep -c "query\[" "$WORK/dns.log" || true)
[[ $kernel_queries -gt 0 ]] && grep -q "from $PEER" "$WORK/dns.log" \
    && pass "glibc's own resolver: $kernel_queries queries, from $PEER" \
    || fail "glibc's resolver sent no query to dnsmasq"
n=$(grep '^truncated' "$WORK/kernel.out" | grep -o '10\.77\.1\.' | wc -l)
[[ $n -eq 40 ]] && pass "glibc's resolver: all 40 addresses of the truncated answer" \
    || fail "glibc's resolver: $n of the 40 addresses of big.lab.test"

mkdir -p "$WORK/www"
random_file "$WORK/www/f.bin" 1
bg timeout 120 "$PY" -m http.server --bind "$PEER" --directory "$WORK/www" 7270 >/dev/null 2>&1
wait_tcp_kernel "$PEER" 7270 || fail "kernel http.server never listening"

for model in on off; do
    : >"$WORK/dns.log"
    # The log is reopened by dnsmasq on SIGUSR2.
    kill -USR2 "$(cat "$WORK/dnsmasq.pid")"
    rc=0
    timeout 60 env LD_PRELOAD="$USTACK_LIB" USTACK_SHARED=$model "$PY" scripts/compat/resolve_cases.py \
        >"$WORK/shim.out" 2>&1 || rc=$?
    if [[ $rc -eq 0 ]] && diff -u "$WORK/kernel.out" "$WORK/shim.out" >"$WORK/diff"; then
        pass "USTACK_SHARED=$model: all $(wc -l <"$WORK/shim.out") cases as glibc's resolver gives them"
    else
        fail "USTACK_SHARED=$model: the cases differ from glibc's (exit $rc):"
        sed 's/^/      /' "$WORK/diff"
    fi
    rc=0
    timeout 60 env LD_PRELOAD="$USTACK_LIB" USTACK_SHARED=$model curl -sS -f --max-time 30 \
        -o "$WORK/f.out" "http://www:7270/f.bin" || rc=$?
    [[ $rc -eq 0 ]] && same_file "USTACK_SHARED=$model: curl http://www:7270/ by name" "$WORK/www/f.bin" "$WORK/f.out" \
        || fail "USTACK_SHARED=$model: curl by name exit $rc"
    # dig and host: bind's own resolver over libuv, which sends and
    # receives UDP with syscall(__NR_sendmmsg/recvmmsg): the shim's
    # syscall hook (ENOTSOCK or a timeout without it).
    out=$(timeout 30 env LD_PRELOAD="$USTACK_LIB" USTACK_SHARED=$model dig +short +tries=1 +time=5 @"$PEER" web.lab.test 2>&1) || true
    same_text "USTACK_SHARED=$model: dig @$PEER web.lab.test" "$PEER" "$out"
    out=$(timeout 30 env LD_PRELOAD="$USTACK_LIB" USTACK_SHARED=$model host -W 5 www.lab.test "$PEER" 2>&1) || true
    grep -q "web.lab.test has IPv6 address fd77::1" <<<"$out" && grep -q "www.lab.test is an alias for web.lab.test" <<<"$out" \
        && pass "USTACK_SHARED=$model: host www.lab.test $PEER (alias, A and AAAA)" \
        || fail "USTACK_SHARED=$model: host: $out"
    sleep 0.3
    from=$(sed -n 's/.*query\[[A-Z]*\] .* from //p' "$WORK/dns.log" | sort | uniq -c | tr -s ' ' | tr '\n' ',')
    if grep -q "from $ADDR" "$WORK/dns.log" && ! grep -q "from $PEER" "$WORK/dns.log"; then
        pass "USTACK_SHARED=$model: dnsmasq saw every query from the stack's address ($from)"
    else
        fail "USTACK_SHARED=$model: query sources:$from"
    fi
    grep -q "query\[A\] big.lab.test" "$WORK/dns.log" && [[ $(grep -c "query\[A\] big.lab.test" "$WORK/dns.log") -ge 2 ]] \
        && pass "USTACK_SHARED=$model: the truncated answer was asked again (TCP)" \
        || fail "USTACK_SHARED=$model: big.lab.test asked $(grep -c "query\[A\] big.lab.test" "$WORK/dns.log" || true) times"
    for _ in $(seq 50); do [[ -z $(daemon_pids) ]] && break; sleep 0.1; done
done

# USTACK_DNS=kernel: glibc's own resolver, from the kernel's address.
: >"$WORK/dns.log"
kill -USR2 "$(cat "$WORK/dnsmasq.pid")"
out=$(timeout 30 env LD_PRELOAD="$USTACK_LIB" USTACK_DNS=kernel "$PY" -c '
import socket; print(socket.gethostbyname("web.lab.test"))' 2>&1) || true
sleep 0.3
[[ $out == "$PEER" ]] && grep -q "from $PEER" "$WORK/dns.log" && ! grep -q "from $ADDR" "$WORK/dns.log" \
    && pass "USTACK_DNS=kernel: glibc resolves on kernel sockets" \
    || fail "USTACK_DNS=kernel: '$out', log: $(cat "$WORK/dns.log")"
out=$(timeout 30 env LD_PRELOAD="$USTACK_LIB" USTACK_DNS=udp "$PY" -c '
import socket; print(socket.gethostbyname("web.lab.test"))' 2>&1) || true
grep -q "USTACK_DNS" <<<"$out" && pass "a bad USTACK_DNS is named: $(head -1 <<<"$out")" \
    || fail "a bad USTACK_DNS: $out"
no_leak
compat_done
