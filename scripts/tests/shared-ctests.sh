#!/usr/bin/env bash
# The shared stack (USTACK_SHARED=on: ustackd owns ustack0 and serves every
# program's sockets) against kernel peers, with the C tests c-tests/shared.c
# and c-tests/shared_multi.c. Each subtest runs as its own subject/peer pair:
# first in kernel mode (both on loopback kernel sockets: proves the test),
# then in shared mode (the subject under libustack.so with USTACK_SHARED=on,
# as 10.77.0.2 / fd77::2; the peer on kernel sockets at 10.77.0.1 / fd77::1).
# shared_multi runs two subjects at once, started separately by this script.
# After every shared-mode run the daemon must report "sockets 0" (or be
# gone), and at the end it must exit by itself. Any failure fails the script
# and says which subtest, with the command that reproduces it.
#
# usage: scripts/tests/shared-ctests.sh [SUBTEST...]
#   SUBTEST: fork exec scm stat accept refuse pollerr udp multi (default: all)
# Environment: CTESTS_TIMEOUT (seconds per program, default 30),
# CTESTS_VERBOSE=1 prints every program's output.
source "$(dirname "$0")/../netns.sh"
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/need.sh
need ip gcc make

all=(fork exec scm stat accept refuse pollerr udp multi)
if [[ $# -gt 0 ]]; then
    for t in "$@"; do
        [[ " ${all[*]} " == *" $t "* ]] || { echo "shared-ctests: no subtest $t (one of: ${all[*]})" >&2; exit 2; }
    done
    tests=("$@")
else
    tests=("${all[@]}")
fi

timeout_s=${CTESTS_TIMEOUT:-30}
lib=$PWD/target/release/libustack.so
daemon=$PWD/target/release/ustackd
work=$(mktemp -d)
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    if ip link show ustack0 >/dev/null 2>&1; then ip link del ustack0 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

for f in "$lib" "$daemon"; do
    [[ -f $f ]] || { echo "FAIL: $f is missing (cargo build --release)"; exit 1; }
done
make -s -C c-tests build/shared build/shared_multi

# A persistent device, so the kernel-side peer can bind 10.77.0.1 before
# the daemon attaches; the IPv6 peer route is dropped while the device has
# no carrier, so put it back.
USTACK_IFNAME=ustack0 bash scripts/ustack --setup >/dev/null
ip -6 route replace fd77::2 dev ustack0

shared_env=(USTACK_SHARED=on USTACK_LOG="${USTACK_LOG:-warn}")

# status: the daemon's counts line, or "none" when no daemon serves ustack0.
status() {
    env "${shared_env[@]}" "$daemon" --status 2>/dev/null || echo none
}

# no_leak: after a shared-mode run every program socket must be gone from
# the daemon (it may take a moment to see the programs' ends close: polled,
# with a hang guard of 10 s).
no_leak() {
    local s end=$((SECONDS + 10))
    while :; do
        s=$(status)
        if [[ $s == none || $s == "sockets 0 "* ]]; then return 0; fi
        if [[ $SECONDS -ge $end ]]; then
            echo "  leak: ustackd --status after the run: $s"
            return 1
        fi
        sleep 0.1
    done
}

passed=0
failed=0
failures=()
next_port=23000

# run MODE TEST
run() {
    local mode=$1 t=$2 sync="$work/$2.$1"
    mkdir -p "$sync"
    local -a envv=(CT_SYNC="$sync" CT_PORT=$next_port CT_TIMEOUT="$timeout_s")
    next_port=$((next_port + 50))
    local -a sub_env=()
    if [[ $mode == shared ]]; then
        envv+=(CT_ADDR=10.77.0.2 CT_PEER=10.77.0.1 CT_ADDR6=fd77::2 CT_PEER6=fd77::1)
        sub_env=("${shared_env[@]}" LD_PRELOAD="$lib" CT_EXPECT_UNIX=1)
    else
        envv+=(CT_ADDR=127.0.0.1 CT_PEER=127.0.0.1 CT_ADDR6=::1 CT_PEER6=::1)
    fi
    local prog=c-tests/build/shared n=1
    if [[ $t == multi ]]; then
        prog=c-tests/build/shared_multi n=2
        envv+=(CT_INSTANCES=2)
    else
        envv+=(CT_SHARED_ONLY="$t")
    fi
    local start=$SECONDS
    env "${envv[@]}" timeout -k 2 $((timeout_s + 5)) "$prog" peer >"$sync/peer.log" 2>&1 &
    local peer_pid=$!
    pids=("$peer_pid")
    local -a spids=()
    local i
    for ((i = 0; i < n; i++)); do
        env "${envv[@]}" CT_ID=$i "${sub_env[@]}" timeout -k 2 $((timeout_s + 5)) \
            "$prog" subject >"$sync/subject$i.log" 2>&1 &
        spids+=($!)
        pids+=($!)
    done
    local rc=0 r prc=0 rcs=""
    for i in "${!spids[@]}"; do
        r=0
        wait "${spids[$i]}" || r=$?
        rcs+=" $r"
        [[ $r -eq 0 ]] || rc=$r
    done
    if [[ $rc -ne 0 ]]; then kill "$peer_pid" 2>/dev/null || true; fi
    wait "$peer_pid" || prc=$?
    pids=()
    local leak=0
    if [[ $mode == shared ]] && ! no_leak; then leak=1; fi
    local took=$((SECONDS - start))
    if [[ $rc -eq 0 && $prc -eq 0 && $leak -eq 0 ]]; then
        echo "PASS $mode $t (${took}s)"
        if [[ ${CTESTS_VERBOSE:-0} == 1 ]]; then sed 's/^/    /' "$sync"/*.log; fi
        return 0
    fi
    echo "FAIL $mode $t (subject exit${rcs}, peer exit $prc, leak $leak, ${took}s)"
    for f in "$sync"/subject*.log "$sync/peer.log"; do
        echo "  $(basename "$f" .log) output:"
        tail -n 20 "$f" | sed 's/^/    /'
    done
    echo "  reproduce: bash scripts/tests/shared-ctests.sh $t"
    return 1
}

echo "== kernel mode (loopback: proves the tests)"
for t in "${tests[@]}"; do
    if run kernel "$t"; then passed=$((passed + 1)); else failed=$((failed + 1)); failures+=("kernel $t"); fi
done
echo "== shared mode (USTACK_SHARED=on, subjects under $lib, peers on the kernel side of ustack0)"
for t in "${tests[@]}"; do
    if run shared "$t"; then passed=$((passed + 1)); else failed=$((failed + 1)); failures+=("shared $t"); fi
done

# The daemon ends by itself ~2 s after its last socket, control
# connection and lingering connection (at most USTACK_LINGER, 5 s) are
# gone; 20 s is a hang guard. Watched through its abstract control address
# in /proc/net/unix: a --status query is a control connection, and would
# restart the grace period.
daemon_listening() { grep -q '@ustack/ustack0$' /proc/net/unix; }
end=$((SECONDS + 20))
while daemon_listening; do
    if [[ $SECONDS -ge $end ]]; then
        echo "FAIL: ustackd still serves ustack0 20 s after the last program: $(status)"
        failed=$((failed + 1))
        failures+=("daemon exit")
        break
    fi
    sleep 0.2
done
if [[ ${#failures[@]} -gt 0 ]]; then echo "failed: ${failures[*]}"; fi
echo "shared-ctests: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
