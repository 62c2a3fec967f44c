# shellcheck shell=bash
# Helpers for the compatibility scripts (scripts/tests/compat-*.sh and
# scripts/compat-pending/compat-*.sh). Source scripts/netns.sh first: every
# compat script runs in a private network namespace of its own.
#
# COMPAT_MODE=shim (default): the program under test runs under libustack.so
#   as 10.77.0.2 / fd77::2; its peer is a kernel program at 10.77.0.1 /
#   fd77::1 on a persistent TUN device (created here, so the kernel side can
#   bind its address before the stack attaches).
# COMPAT_MODE=kernel: the same script with both ends on kernel sockets over
#   loopback. It proves the script itself: run it so after every change.
# COMPAT_LINK=tap (set by the script before sourcing; shim mode): the stack
#   is an Ethernet host instead, on a TAP device ustap0 in a bridge br0 that
#   holds the kernel side's addresses (10.77.0.1/24, fd77::1/64), as the
#   README's "stack on a bridge"; USTACK_LINK and USTACK_IFNAME are exported.
#
# Provides: $ADDR $PEER $ADDR6 $PEER6 (the stack side's and the kernel
# side's addresses), $WORK (a scratch directory), $PY (the real python3),
# on_stack CMD... and the prefix ${STACK[@]} (run CMD on the stack side),
# bg CMD... (a background process, killed at exit), pass/fail, and the
# helpers below.

compat_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
compat_name=$(basename "$0" .sh)
COMPAT_MODE=${COMPAT_MODE:-shim}
USTACK_LIB=${USTACK_LIB:-$compat_root/target/release/libustack.so}
WORK=$(mktemp -d)
PY=$(python3 -c 'import sys; print(sys.executable)')
compat_pids=()
compat_failed=0

compat_cleanup() {
    local pid
    for pid in "${compat_pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${compat_pids[@]}"; do
        timeout 5 tail --pid="$pid" -f /dev/null 2>/dev/null || kill -9 "$pid" 2>/dev/null || true
    done
    if [[ $COMPAT_MODE == shim ]] && ip link show ustack0 >/dev/null 2>&1; then
        ip link del ustack0 2>/dev/null || true
    fi
    if [[ ${COMPAT_LINK:-tun} == tap ]]; then
        ip link del ustap0 2>/dev/null || true
        ip link del br0 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap compat_cleanup EXIT

case "$COMPAT_MODE" in
    shim)
        ADDR=10.77.0.2 PEER=10.77.0.1 ADDR6=fd77::2 PEER6=fd77::1
        [[ -f $USTACK_LIB ]] || { echo "$compat_name: $USTACK_LIB missing (cargo build --release)"; exit 1; }
        if [[ ${COMPAT_LINK:-tun} == tap ]]; then
            ip link add br0 type bridge
            ip addr add 10.77.0.1/24 dev br0
            ip addr add fd77::1/64 dev br0 nodad
            ip link set br0 up
            ip tuntap add ustap0 mode tap
            ip link set ustap0 master br0
            ip link set ustap0 up
            export USTACK_LINK=tap USTACK_IFNAME=ustap0
        else
            USTACK_IFNAME=ustack0 bash "$compat_root/scripts/ustack" --setup >/dev/null
            # The IPv6 peer route is dropped while the device has no carrier
            # (no process attached yet); put it back so the kernel can reach
            # fd77::2.
            ip -6 route replace fd77::2 dev ustack0
        fi
        ;;
    kernel)
        ADDR=127.0.0.1 PEER=127.0.0.1 ADDR6=::1 PEER6=::1
        ;;
    *) echo "$compat_name: COMPAT_MODE must be shim or kernel" >&2; exit 2 ;;
esac
echo "$compat_name: mode $COMPAT_MODE (stack side $ADDR/$ADDR6, kernel side $PEER/$PEER6)"

# on_stack CMD...: runs CMD as the program on the userspace stack (in
# kernel mode, plainly). For a background one: bg "${STACK[@]}" CMD...
if [[ $COMPAT_MODE == shim ]]; then
    STACK=(env LD_PRELOAD="$USTACK_LIB" USTACK_LOG="${USTACK_LOG:-warn}")
else
    STACK=(env)
fi
on_stack() { "${STACK[@]}" "$@"; }

# bg CMD...: starts CMD in the background (killed at exit); sets $bg_pid.
# (stdin is passed on explicitly: a plain `&` would give it /dev/null).
bg() {
    "$@" <&0 &
    bg_pid=$!
    compat_pids+=("$bg_pid")
}

# pass MSG / fail MSG: one line each; fail marks the script failed.
pass() { echo "  ok   $*"; }
fail() { echo "  FAIL $*"; compat_failed=1; }

# check NAME CMD...: runs CMD (bounded by the caller), pass or fail.
check() {
    local name=$1
    shift
    if "$@"; then pass "$name"; else fail "$name (exit $?)"; fi
}

# same_file NAME A B: pass if the two files have the same sha256.
same_file() {
    local a b
    a=$(sha256sum <"$2" | cut -d' ' -f1)
    b=$(sha256sum <"$3" 2>/dev/null | cut -d' ' -f1)
    if [[ -n $a && $a == "$b" ]]; then pass "$1 (sha256 ${a:0:16})"; else fail "$1: sha256 ${a:0:16} vs ${b:0:16}"; fi
}

# same_text NAME WANT GOT
same_text() {
    if [[ "$2" == "$3" ]]; then pass "$1"; else fail "$1: want '$2', got '$3'"; fi
}

# wait_tcp_kernel HOST PORT: waits (5 s) until a kernel listener on
# HOST:PORT exists (ss sees kernel sockets only).
wait_tcp_kernel() {
    local i
    for i in $(seq 100); do
        if ss -Htln "src [$1]:$2" 2>/dev/null | grep -q . || ss -Htln "src $1:$2" 2>/dev/null | grep -q .; then
            return 0
        fi
        sleep 0.05
    done
    echo "nothing listening on $1:$2 after 5 s" >&2
    return 1
}

# wait_udp_kernel HOST PORT
wait_udp_kernel() {
    local i
    for i in $(seq 100); do
        if ss -Huln "src [$1]:$2" 2>/dev/null | grep -q . || ss -Huln "src $1:$2" 2>/dev/null | grep -q .; then
            return 0
        fi
        sleep 0.05
    done
    echo "no UDP socket on $1:$2 after 5 s" >&2
    return 1
}

# retry SECONDS CMD...: runs CMD until it succeeds or SECONDS pass (for
# clients of a server on the stack side, which ss cannot see).
retry() {
    local end=$((SECONDS + $1))
    shift
    until "$@"; do
        [[ $SECONDS -lt $end ]] || return 1
        sleep 0.1
    done
}

# random_file PATH MIB
random_file() { head -c "$(($2 * 1024 * 1024))" /dev/urandom >"$1"; }

# compat_done: the final line and exit status.
compat_done() {
    if [[ $compat_failed -eq 0 ]]; then
        echo "$compat_name: passed"
        exit 0
    fi
    echo "$compat_name: FAILED"
    exit 1
}

# wait_line FILE TEXT [SECONDS]: waits until FILE contains TEXT (a server
# on the stack side announcing it is ready; ss cannot see its sockets).
wait_line() {
    local end=$((SECONDS + ${3:-10}))
    until grep -q -- "$2" "$1" 2>/dev/null; do
        if [[ $SECONDS -ge $end ]]; then
            echo "'$2' never appeared in $1:" >&2
            cat "$1" >&2 2>/dev/null || true
            return 1
        fi
        sleep 0.05
    done
}

# stop PID: SIGTERM, then waits (10 s) until it is gone. In shim mode only
# one process at a time can hold the TUN device, so a stack-side process
# is stopped this way before the next one starts.
stop() {
    kill "$1" 2>/dev/null || true
    timeout 10 tail --pid="$1" -f /dev/null 2>/dev/null || kill -9 "$1" 2>/dev/null || true
}

# saw_client NAME FILE TEXT: pass if a kernel-side server's log FILE holds
# TEXT (the client address it logged). In shim mode that is what proves a
# client ran on the stack: on kernel sockets it would come from 10.77.0.1.
saw_client() {
    if grep -qF -- "$3" "$2" 2>/dev/null; then
        pass "$1"
    else
        fail "$1: '$3' not in the server's log:"
        tail -n 5 "$2" 2>/dev/null | sed 's/^/         /'
    fi
}

# exploded ADDRESS: an IPv6 address written out in full (as socat logs it).
exploded() { "$PY" -c 'import ipaddress, sys; print(ipaddress.ip_address(sys.argv[1]).exploded)' "$1"; }
