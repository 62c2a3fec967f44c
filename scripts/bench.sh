#!/usr/bin/env bash
# The side-by-side benchmark (issue 6): one table, every row measured in this
# run on this machine, written to target/bench/results.md, and drawn as a bar
# chart in target/bench/results.svg (scripts/bench/plot.py).
#
#   scripts/bench.sh            as root (or with unshare -r available)
#
# Rows: the kernel to the kernel over a veth pair between two namespaces; the
# ustack library to the kernel over TUN; iperf3 under the ustack shim; smoltcp
# to the kernel over TUN. In every row the stack under test runs the same
# services (examples/netbench.rs `serve`, or benches/smoltcp-peer) and the
# same kernel-socket client (`netbench client`) measures against it.
#
# Everything runs in network namespaces this script makes: its own (A, the
# kernel side) and, for the veth row, a second one (B) held by a `sleep` and
# killed at exit. They hold only the addresses below, no default route.
#
# Variables: BENCH_SECS (length of one run, default 2), BENCH_RUNS (runs per
# figure, median taken, default 3), BENCH_ROWS (which rows, default
# `kernel ustack shim smoltcp passthrough`).
#
# BENCH_MTU (default 1500) is the link MTU of the kernel (veth), ustack and
# shim rows (USTACK_MTU, 1280 to 65535); the smoltcp row keeps 1500.
#
# The `passthrough` row is the shim's cost on calls that are not on its
# sockets: `dd bs=1` (one read and one write system call per byte) plain
# and under the shim, alternating, BENCH_PT_RUNS times each (default 11);
# the medians and their ratio go under the table.
set -euo pipefail

root=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
self="$root/scripts/bench.sh"
cd "$root"
secs=${BENCH_SECS:-2}
mtu=${BENCH_MTU:-1500}
runs=${BENCH_RUNS:-3}
out_dir="$root/target/bench"
smol_target="$root/target/smoltcp-peer"
netbench="$root/target/release/examples/netbench"
smol="$smol_target/release/smoltcp-peer"

if [[ "${USTACK_BENCH_NS:-}" != "$self" ]]; then
    # Build first, outside the namespace (crates.io may be needed once).
    echo "bench: building (release)" >&2
    cargo build --release --quiet
    cargo build --release --quiet --examples
    cargo build --release --quiet --manifest-path benches/smoltcp-peer/Cargo.toml \
        --target-dir "$smol_target"
    if [[ $(id -u) -eq 0 ]]; then ns_flags=(-n); else ns_flags=(-r -n); fi
    exec unshare "${ns_flags[@]}" -- env USTACK_BENCH_NS="$self" bash "$self" "$@"
fi

# --- inside namespace A from here on -------------------------------------
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
ip link set lo up
# Connections per second leave TIME_WAIT sockets on the client: let it reuse
# them and use the whole port range.
sysctl -qw net.ipv4.tcp_tw_reuse=1 2>/dev/null || true
sysctl -qw net.ipv4.ip_local_port_range="1024 65535" 2>/dev/null || true

mkdir -p "$out_dir"
tmp=$(mktemp -d)
raw="$out_dir/raw.txt"
: >"$raw"
bg_pids=()
cleanup() {
    local p
    for p in "${bg_pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

ticks_per_s=$(getconf CLK_TCK)
# cpu_ticks PID: user+system clock ticks of a whole process (threads that
# already exited included), from /proc/PID/stat fields 14 and 15.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# wait_port ADDR PORT PID: until a TCP connect to ADDR:PORT succeeds.
wait_port() {
    local i
    for i in $(seq 100); do
        if timeout 1 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; then return 0; fi
        kill -0 "$3" 2>/dev/null || { echo "bench: server exited" >&2; return 1; }
        sleep 0.1
    done
    echo "bench: $1:$2 never answered" >&2
    return 1
}

# client ROW MODE ADDR [SIZE]: one `netbench client` run; appends its
# figure to the raw file (and bytes/cpu for bulk runs, the server's CPU
# from /proc, the client's from its own getrusage).
client() {
    local row=$1 mode=$2 addr=$3 size=${4:-} before after line key
    before=$(cpu_ticks "$server_pid")
    if ! line=$(timeout $((${secs%.*} + 15)) "$netbench" client "$mode" "$addr" "$secs" ${size:+"$size"}); then
        echo "bench: $row $mode $addr $size failed" >&2
        return 0
    fi
    after=$(cpu_ticks "$server_pid")
    echo "  $row: $line" >&2
    local -A f=()
    for kv in $line; do [[ $kv == *=* ]] && f[${kv%%=*}]=${kv#*=}; done
    case $mode in
        source) key=send ;;
        sink) key=recv ;;
        udp) key=udp$size ;;
        *) key=$mode ;;
    esac
    if [[ $mode == source || $mode == sink ]]; then
        echo "$row $key ${f[gbps]}" >>"$raw"
        echo "$row bytes ${f[bytes]}" >>"$raw"
        echo "$row cpu $(awk -v a="$before" -v b="$after" -v t="$ticks_per_s" -v c="${f[cpu]}" \
            'BEGIN {print (b - a) / t + c}')" >>"$raw"
    else
        echo "$row $key ${f[rate]}" >>"$raw"
    fi
}

# measure ROW ADDR: every figure of one row against the server at ADDR.
measure() {
    local row=$1 addr=$2 i mode size
    for mode in source sink; do
        for i in $(seq "$runs"); do client "$row" "$mode" "$addr"; done
    done
    for i in $(seq "$runs"); do client "$row" rr "$addr"; done
    # Each connections-per-second run has a server port of its own.
    for i in $(seq "$runs"); do client "$row" crr "$addr" "$i"; done
    for size in 64 1400; do
        for i in $(seq "$runs"); do client "$row" udp "$addr" "$size"; done
    done
}

stop_server() {
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
}

# --- row 1: kernel to kernel over veth -----------------------------------
row_kernel() {
    echo "bench: kernel <-> kernel over veth" >&2
    unshare -n sleep 600 &
    ns_b=$!
    bg_pids+=("$ns_b")
    for _ in $(seq 50); do
        [[ $(readlink "/proc/$ns_b/ns/net") != $(readlink /proc/self/ns/net) ]] && break
        sleep 0.02
    done
    ip link add bench0 type veth peer name bench1 netns "$ns_b"
    ip addr add 10.79.0.1/24 dev bench0
    ip link set bench0 mtu "$mtu" up
    nsenter -t "$ns_b" -n sh -c \
        "ip link set lo up && ip addr add 10.79.0.2/24 dev bench1 && ip link set bench1 mtu $mtu up"
    nsenter -t "$ns_b" -n "$netbench" serve --kernel 2>"$out_dir/kernel.log" &
    server_pid=$!
    bg_pids+=("$server_pid")
    wait_port 10.79.0.2 5003 "$server_pid"
    measure kernel 10.79.0.2
    stop_server
    kill "$ns_b" 2>/dev/null || true
}

# --- row 2: the ustack library over TUN ----------------------------------
row_ustack() {
    echo "bench: ustack library <-> kernel over TUN" >&2
    USTACK_IFNAME=ustack0 USTACK_MTU=$mtu USTACK_LOG=warn "$netbench" serve 2>"$out_dir/ustack.log" &
    server_pid=$!
    bg_pids+=("$server_pid")
    wait_port 10.77.0.2 5003 "$server_pid"
    measure ustack 10.77.0.2
    stop_server
}

# --- row 3: iperf3 under the shim ----------------------------------------
row_shim() {
    echo "bench: iperf3 under the shim" >&2
    shim_ok=false
    if [[ -f target/release/libustack.so ]] && command -v iperf3 >/dev/null; then
        # The kernel's address appears only when the shim brings the
        # device up, so the server listens on every address.
        timeout 20 iperf3 -s -1 >/dev/null 2>&1 &
        bg_pids+=("$!")
        if USTACK_SHARED=off USTACK_MTU=$mtu timeout 20 scripts/ustack -- iperf3 -c 10.77.0.1 -t "$secs" -J \
            >"$tmp/iperf.json" 2>"$tmp/iperf.err"; then
            gbps=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["end"]["sum_received"]["bits_per_second"]/1e9)' \
                "$tmp/iperf.json" 2>/dev/null || true)
            if [[ -n $gbps ]]; then
                echo "shim send $gbps" >>"$raw"
                shim_ok=true
            fi
        fi
    fi
    if ! $shim_ok; then
        why=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("error", ""))' \
            "$tmp/iperf.json" 2>/dev/null || tail -n 1 "$tmp/iperf.err" 2>/dev/null || true)
        echo "  shim: iperf3 under the shim did not run: ${why:-no libustack.so or iperf3}" >&2
        echo "shim note n/a (shim not ready)" >>"$raw"
    fi
}

# --- row 4: smoltcp over TUN ---------------------------------------------
row_smoltcp() {
    echo "bench: smoltcp <-> kernel over TUN" >&2
    ip tuntap add dev smol0 mode tun
    ip addr add 10.78.0.1 peer 10.78.0.2 dev smol0
    ip link set smol0 up
    "$smol" smol0 10.78.0.2/24 2>"$out_dir/smoltcp.log" &
    server_pid=$!
    bg_pids+=("$server_pid")
    wait_port 10.78.0.2 5003 "$server_pid"
    measure smoltcp 10.78.0.2
    stop_server
}

# --- pass-through: the shim on non-socket calls ----------------------------
row_passthrough() {
    echo "bench: shim pass-through (dd bs=1, plain and under the shim)" >&2
    local so="$root/target/release/libustack.so" n=500000 i t0 t1 v
    if [[ ! -f $so ]]; then
        echo "passthrough note n/a (no libustack.so)" >>"$raw"
        return 0
    fi
    for i in $(seq "${BENCH_PT_RUNS:-11}"); do
        for v in plain shim; do
            t0=$(date +%s%N)
            if [[ $v == plain ]]; then
                env dd if=/dev/zero of=/dev/null bs=1 count=$n 2>/dev/null
            else
                env LD_PRELOAD="$so" dd if=/dev/zero of=/dev/null bs=1 count=$n 2>/dev/null
            fi
            t1=$(date +%s%N)
            echo "passthrough pt_$v $(((t1 - t0) / 1000))" >>"$raw"
        done
    done
    echo "passthrough pt_calls $((2 * n))" >>"$raw"
}

for row in ${BENCH_ROWS:-kernel ustack shim smoltcp passthrough}; do
    "row_$row"
done

# --- the table -------------------------------------------------------------
smol_version=$(awk '/^name = "smoltcp"$/ {getline; gsub(/"/, "", $3); print $3}' \
    benches/smoltcp-peer/Cargo.lock)
{
    echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') on $(nproc) cores," \
        "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')," \
        "Linux $(uname -r); load average before/after: $load_before / $(cut -d' ' -f1-3 /proc/loadavg);" \
        "link MTU $mtu (smoltcp 1500)."
    echo
    python3 scripts/bench/table.py "$raw" "$tmp/table.md" "$smol_version" >/dev/null
    cat "$tmp/table.md"
} >"$out_dir/results.md"
cat "$out_dir/results.md"
python3 scripts/bench/plot.py "$out_dir/results.md" "$out_dir/results.svg"
echo "bench: written to target/bench/results.md and its plot target/bench/results.svg" >&2
