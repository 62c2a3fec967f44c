#!/usr/bin/env bash
# iperf3 on the userspace stack: as client of a kernel iperf3 server
# (upload, -R download, -u UDP, and IPv6), and as server for a kernel
# client. Each run must exit 0 and its JSON report must show the bytes
# moved (and, for UDP, the datagrams received).
source "$(dirname "$0")/../netns.sh"
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/need.sh
need python3 ip ss iperf3
source scripts/compat/lib.sh

# report FILE NAME MIN_BYTES [udp|tcp [CLIENT]]: checks an iperf3 -J report
# (and, given CLIENT, that the kernel server's report FILE.server names
# CLIENT as the client: in shim mode, proof that the client ran on the
# stack).
report() {
    local out
    if ! out=$("$PY" - "$1" "$3" "${4:-tcp}" "${5:-}" 2>&1 <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
if "error" in r:
    sys.exit(f"iperf3 error: {r['error']}")
if sys.argv[4]:
    s = json.load(open(sys.argv[1] + ".server"))
    remote = s["start"]["connected"][0]["remote_host"]
    if remote != sys.argv[4]:
        sys.exit(f"the server saw the client as {remote}, want {sys.argv[4]}")
end = r["end"]
if sys.argv[3] == "udp":
    s = end["sum"]
    got = s["bytes"] * (100 - s.get("lost_percent", 0)) / 100
    print(f"{s['bytes']} bytes, {s.get('lost_percent', 0):.1f}% lost")
else:
    got = end["sum_received"]["bytes"]
    print(f"{got} bytes received, {end['sum_received']['bits_per_second'] / 1e6:.0f} Mbit/s")
if got < int(sys.argv[2]):
    sys.exit(f"only {got} bytes")
PY
    ); then
        fail "$2: ${out:-bad report} ($(head -c 300 "$1"))"
        return
    fi
    pass "$2: $out"
}

# kserver ADDR PORT JSON: a one-off kernel server (-1) writing its report
# to JSON; it exits after the test.
kserver() {
    bg timeout 30 iperf3 -s -1 -J -B "$1" -p "$2" >"$3" 2>&1
    wait_tcp_kernel "$1" "$2"
}
# kdone: waits for the last kernel server to finish its report.
kdone() { timeout 10 tail --pid="$bg_pid" -f /dev/null || true; }
ic=(iperf3 -t 1 -J --connect-timeout 5000)

kserver "$PEER" 5201 "$WORK/up.json.server"
timeout 30 "${STACK[@]}" "${ic[@]}" -c "$PEER" -p 5201 >"$WORK/up.json" || true
kdone
report "$WORK/up.json" "upload (client on the stack)" 1000000 tcp "$ADDR"

kserver "$PEER" 5202 "$WORK/down.json.server"
timeout 30 "${STACK[@]}" "${ic[@]}" -c "$PEER" -p 5202 -R >"$WORK/down.json" || true
kdone
report "$WORK/down.json" "download -R (client on the stack)" 1000000 tcp "$ADDR"

kserver "$PEER" 5203 "$WORK/udp.json.server"
timeout 30 "${STACK[@]}" "${ic[@]}" -c "$PEER" -p 5203 -u -b 20M >"$WORK/udp.json" || true
kdone
report "$WORK/udp.json" "UDP -u -b 20M (client on the stack)" 1000000 udp "$ADDR"

kserver "$PEER6" 5204 "$WORK/up6.json.server"
timeout 30 "${STACK[@]}" "${ic[@]}" -6 -c "$PEER6" -p 5204 >"$WORK/up6.json" || true
kdone
report "$WORK/up6.json" "upload v6 (client on the stack)" 1000000 tcp "$ADDR6"

# Server on the stack, kernel client: TCP, -R, and UDP.
for dir in fwd rev udp; do
    bg timeout 30 "${STACK[@]}" iperf3 -s -1 --forceflush -B "$ADDR" -p 5205 >"$WORK/ss-$dir.log" 2>&1
    srv=$bg_pid
    wait_line "$WORK/ss-$dir.log" "Server listening" || fail "server on the stack never listening"
    flags=()
    [[ $dir == rev ]] && flags=(-R)
    [[ $dir == udp ]] && flags=(-u -b 20M)
    timeout 30 "${ic[@]}" -c "$ADDR" -p 5205 "${flags[@]}" >"$WORK/ss-$dir.json" || true
    kind=tcp
    [[ $dir == udp ]] && kind=udp
    report "$WORK/ss-$dir.json" "kernel client $dir, server on the stack" 1000000 "$kind"
    if timeout 10 tail --pid="$srv" -f /dev/null && wait "$srv"; then pass "server on the stack ($dir) exits 0"; else fail "server on the stack ($dir) exit status"; fi
    stop "$srv"
done

compat_done
