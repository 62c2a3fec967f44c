# shellcheck shell=bash
# Helpers for scripts/tests/shim-*.sh (sourced after scripts/netns.sh, so
# everything here runs inside the calling test's private namespace).

shim_lib="$PWD/target/release/libustack.so"
[[ -f "$shim_lib" ]] || { echo "missing $shim_lib: cargo build --release" >&2; exit 1; }
shim_tmp=$(mktemp -d)
shim_pids=()

shim_cleanup() {
    local p
    for p in "${shim_pids[@]}"; do
        # The job and what it started (a function runs in a subshell).
        kill $(ps -o pid= --ppid "$p") "$p" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    rm -rf "$shim_tmp"
}
trap shim_cleanup EXIT

# under_shim CMD...: runs CMD with the shim preloaded.
under_shim() {
    env LD_PRELOAD="$shim_lib" "$@"
}

# shim_device: creates the persistent TUN device with both addresses (as
# `scripts/ustack --setup` does), so kernel-side servers can bind to
# 10.77.0.1 / fd77::1 before any program under the shim runs.
shim_device() {
    scripts/ustack --setup >/dev/null
    # The IPv6 peer route is dropped while the device has no carrier (no
    # program attached yet); put it back so fd77::2 is reachable.
    ip -6 route replace fd77::2 dev ustack0
    local i
    for i in $(seq 100); do
        if ip -4 addr show dev ustack0 | grep -q 'inet ' &&
            ! ip -6 addr show dev ustack0 | grep -q tentative; then
            return 0
        fi
        sleep 0.05
    done
    echo "device not ready" >&2
    return 1
}

# wait_listen PORT: waits until a kernel socket listens on PORT.
wait_listen() {
    local i
    for i in $(seq 100); do
        ss -Hltn "sport = :$1" | grep -q . && return 0
        sleep 0.05
    done
    echo "nothing listens on $1" >&2
    return 1
}

# wait_udp PORT: waits until a kernel UDP socket is bound to PORT.
wait_udp() {
    local i
    for i in $(seq 100); do
        ss -Hlun "sport = :$1" | grep -q . && return 0
        sleep 0.05
    done
    echo "no UDP socket on $1" >&2
    return 1
}

# bg CMD...: starts CMD in the background and remembers it for cleanup.
bg() {
    "$@" &
    shim_pids+=($!)
}

# stop_bg: stops the most recent bg job (one process at a time can attach
# to the device) and waits until the device is free again.
stop_bg() {
    local p=${shim_pids[-1]}
    kill $(ps -o pid= --ppid "$p") "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
    unset 'shim_pids[-1]'
}

check() {
    if [[ "$2" == "$3" ]]; then
        echo "ok: $1"
    else
        echo "FAIL: $1: expected '$3', got '$2'" >&2
        return 1
    fi
}
