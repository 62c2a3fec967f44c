#!/usr/bin/env bash
# The shared stack as an Ethernet host (USTACK_LINK=tap): programs under
# the shim on a TAP device in a bridge with the kernel, set up as the
# README's "stack on a bridge". Two shimmed curl at once (IPv4 and IPv6)
# fetch a 5 MiB file from a kernel python3 http.server on the bridge,
# sha256 checked; a shimmed http.server on the stack serves a kernel curl;
# the kernel's neighbour table shows one MAC for both of the stack's
# addresses (every program on the device shares one daemon: one L2
# identity, one neighbour cache); nothing is left in the daemon at the end.
COMPAT_LINK=tap
source "$(dirname "$0")/../netns.sh"
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/need.sh
need python3 ip curl
source scripts/compat/lib.sh
source scripts/compat/shared.sh
[[ $COMPAT_MODE == shim ]] || { echo "shared-tap: shim mode only (the kernel side of a bridge)"; exit 2; }

mkdir -p "$WORK/www"
random_file "$WORK/www/five.bin" 5
sum=$(sha256sum <"$WORK/www/five.bin" | cut -c1-16)
c=(curl -sS -f --max-time 60)

bg timeout 150 "$PY" -u -m http.server --bind :: --directory "$WORK/www" 7251 >"$WORK/kern-srv.log" 2>&1
wait_tcp_kernel :: 7251 || fail "kernel http.server never listening"

# Two programs at once, one per family, through one daemon on the TAP.
timeout 90 "${STACK[@]}" "${c[@]}" -o "$WORK/v4.out" "http://$PEER:7251/five.bin" 2>"$WORK/v4.err" & p4=$!
timeout 90 "${STACK[@]}" "${c[@]}" -o "$WORK/v6.out" "http://[$PEER6]:7251/five.bin" 2>"$WORK/v6.err" & p6=$!
for v in 4 6; do
    pid=$p4
    [[ $v == 6 ]] && pid=$p6
    rc=0
    wait "$pid" || rc=$?
    if [[ $rc -eq 0 ]] && cmp -s "$WORK/www/five.bin" "$WORK/v$v.out"; then
        pass "shimmed curl over IPv$v on the TAP, 5 MiB, sha256 $sum"
    else
        fail "shimmed curl over IPv$v on the TAP: exit $rc, $(stat -c %s "$WORK/v$v.out" 2>/dev/null || echo no) bytes: $(head -c 300 "$WORK/v$v.err")"
    fi
done
same_text "the kernel server saw the IPv4 request from $ADDR" 1 \
    "$(grep -c "^::ffff:$ADDR - - .*GET /five.bin\|^$ADDR - - .*GET /five.bin" "$WORK/kern-srv.log" || true)"

# A server on the stack, a kernel client on the bridge.
bg timeout 120 "${STACK[@]}" "$PY" -u -m http.server --bind :: --directory "$WORK/www" 7252 >"$WORK/stack-srv.log" 2>&1
retry 50 curl -s -o /dev/null "http://$ADDR:7252/" || fail "shimmed http.server never answered on the TAP"
if "${c[@]}" -o "$WORK/back.out" "http://$ADDR:7252/five.bin" && cmp -s "$WORK/www/five.bin" "$WORK/back.out"; then
    pass "kernel curl from a shimmed http.server on the TAP, 5 MiB, sha256 $sum"
else
    fail "kernel curl from the shimmed http.server: $(stat -c %s "$WORK/back.out" 2>/dev/null || echo no) bytes"
fi

# One L2 identity: the kernel resolved both addresses to the same MAC.
ip -6 neigh flush dev br0 >/dev/null 2>&1 || true
"${c[@]}" -o /dev/null "http://[$ADDR6]:7252/five.bin" || fail "kernel curl over IPv6 to the shimmed server"
mac4=$(ip neigh show "$ADDR" dev br0 | awk '/lladdr/ {print $3}')
mac6=$(ip -6 neigh show "$ADDR6" dev br0 | awk '/lladdr/ {print $3}')
if [[ -n $mac4 && $mac4 == "$mac6" ]]; then
    pass "one MAC for $ADDR and $ADDR6 in the kernel's neighbour table ($mac4)"
else
    fail "the stack's addresses resolved to '$mac4' and '$mac6'"
fi
same_text "one daemon serves the TAP" 1 "$(daemon_pids | wc -l)"
kill "$bg_pid" 2>/dev/null || true
no_leak
compat_done
