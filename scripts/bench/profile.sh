#!/usr/bin/env bash
# Profiles the ustack bulk path: the ustack `netbench serve` process under
# `perf record` (cpu-clock, the only event a VM without PMU passthrough has)
# while the kernel client of scripts/bench.sh sends to it (sink) and reads
# from it (source). Reports go to target/bench/profile-{sink,source}.txt.
# Run scripts/bench.sh first (it builds); as root.
set -eu
root=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
self="$root/scripts/bench/profile.sh"
cd "$root"
if [[ "${USTACK_BENCH_NS:-}" != "$self" ]]; then
    exec unshare -n -- env USTACK_BENCH_NS="$self" bash "$self" "$@"
fi
secs=${BENCH_SECS:-4}
out="$root/target/bench"
netbench="$root/target/release/examples/netbench"
mkdir -p "$out"
ip link set lo up
USTACK_LOG=warn "$netbench" serve 2>"$out/profile-ustack.log" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    timeout 1 bash -c 'exec 3<>/dev/tcp/10.77.0.2/5003' 2>/dev/null && break
    sleep 0.1
done
for mode in sink source; do
    perf record -q -e cpu-clock -F 1999 ${PERF_CALLGRAPH:+--call-graph "$PERF_CALLGRAPH"} \
        -o "$out/perf-$mode.data" -p "$server" -- sleep "$((secs + 1))" 2>/dev/null &
    rec=$!
    sleep 0.3
    before=$(awk '{print $14 + $15}' "/proc/$server/stat")
    "$netbench" client "$mode" 10.77.0.2 "$secs"
    after=$(awk '{print $14 + $15}' "/proc/$server/stat")
    wait "$rec" || true
    # Per-thread CPU of the server: is one thread the bottleneck?
    echo "$mode: ustack process CPU $(awk -v a="$before" -v b="$after" -v t="$(getconf CLK_TCK)" \
        'BEGIN {printf "%.2f", (b - a) / t}') s over $secs s; threads (s, total so far):" >&2
    for t in /proc/"$server"/task/*; do
        echo "  $(cat "$t/comm") $(awk -v t="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / t}' "$t/stat")" >&2
    done
    perf report -i "$out/perf-$mode.data" --no-children --sort dso,symbol --stdio 2>/dev/null |
        grep -v '^#' | grep -v '^$' | head -60 >"$out/profile-$mode.txt"
    perf report -i "$out/perf-$mode.data" --no-children --sort comm --stdio 2>/dev/null |
        grep -v '^#' | grep -v '^$' | head -10 >>"$out/profile-$mode.txt"
done
echo "profile: target/bench/profile-{sink,source}.txt" >&2
