#!/usr/bin/env bash
# The shared stack against the in-process one, side by side in one run, from
# the same build: iperf3 under the shim both ways, 1-byte request/response
# and connections per second (scripts/bench/rr.c), each with
# USTACK_SHARED=off (in-process) and on (ustackd); then eight programs under
# the shared stack at once (iperf3 each to its own kernel-side server):
# total and per-program throughput. Prints one table. Runs in a private
# network namespace of its own; kernel side 10.77.0.1, stack 10.77.0.2.
#
#   scripts/bench/shared.sh [SECONDS]     (default 5 per figure)
source "$(dirname "$0")/../netns.sh"
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/need.sh
need iperf3
need gcc
secs=${1:-5}
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
gcc -O2 -o "$tmp/rr" scripts/bench/rr.c
lib=$PWD/target/release/libustack.so
[[ -f $lib && -x target/release/ustackd ]] || { echo "build first: cargo build --release" >&2; exit 1; }
scripts/ustack --setup >/dev/null
"$tmp/rr" server 7001 & sleep 0.2

# The in-process stack needs the device free: wait until a daemon from a
# shared run has ended (it does 2 s after its last socket).
settle() {
    for _ in $(seq 100); do
        grep -q '@ustack/' /proc/net/unix || return 0
        sleep 0.1
    done
    echo "bench: the stack daemon did not end" >&2
    return 1
}

shim() { # MODE PROGRAM...
    local mode=$1; shift
    settle
    USTACK_SHARED=$mode LD_PRELOAD=$lib "$@"
}

iperf() { # MODE reverse?  -> Gbit/s
    local port=$((5300 + RANDOM % 500))
    iperf3 -s -1 -B 10.77.0.1 -p "$port" >/dev/null 2>&1 & local srv=$!
    sleep 0.3
    shim "$1" timeout $((secs + 20)) iperf3 -c 10.77.0.1 -p "$port" -t "$secs" -J $2 >"$tmp/i.json" 2>/dev/null || true
    kill "$srv" 2>/dev/null || true
    wait "$srv" 2>/dev/null || true
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("%.2f" % (d["end"]["sum_received"]["bits_per_second"]/1e9))' "$tmp/i.json" 2>/dev/null || echo n/a
}

printf '%-26s %12s %12s %7s\n' figure in-process shared ratio
row() { # NAME in shared
    local r=n/a
    if [[ -n $2 && -n $3 && $2 != n/a && $3 != n/a ]]; then r=$(python3 -c "print('%.2f' % ($3/$2))"); fi
    printf '%-26s %12s %12s %7s\n' "$1" "$2" "$3" "$r"
}
row "iperf3 send (Gbit/s)" "$(iperf off "")" "$(iperf on "")"
row "iperf3 receive (Gbit/s)" "$(iperf off -R)" "$(iperf on -R)"
rr() { shim "$1" timeout $((secs + 20)) "$tmp/rr" "$2" 10.77.0.1 7001 "$secs" | awk '{print $3}'; }
row "1-byte RR (per s)" "$(rr off rr)" "$(rr on rr)"
# Two seconds: each closed connection holds its port in TIME-WAIT for 60 s,
# and the ephemeral range (28,232 ports) would run out at full rate.
crr() { shim "$1" timeout 30 "$tmp/rr" crr 10.77.0.1 7001 2 | awk '{print $3}'; }
row "connections (per s)" "$(crr off)" "$(crr on)"

# Eight programs at once on the shared stack.
for i in $(seq 8); do iperf3 -s -1 -B 10.77.0.1 -p $((6000 + i)) >/dev/null 2>&1 & done
sleep 0.3
settle
for i in $(seq 8); do
    USTACK_SHARED=on LD_PRELOAD=$lib timeout $((secs + 20)) iperf3 -c 10.77.0.1 -p $((6000 + i)) -t "$secs" -J >"$tmp/p$i.json" 2>/dev/null &
done
wait $(jobs -p | tail -n 8) 2>/dev/null || true
python3 - "$tmp" <<'PY'
import json, sys, glob
v = []
for f in sorted(glob.glob(sys.argv[1] + "/p*.json")):
    try:
        v.append(json.load(open(f))["end"]["sum_received"]["bits_per_second"] / 1e9)
    except Exception:
        v.append(0.0)
print("8 programs at once (Gbit/s): total %.2f, each %s" % (sum(v), " ".join("%.2f" % x for x in v)))
PY
