# shellcheck shell=bash
# Helpers for scripts that run the example server inside their private
# network namespace (source scripts/netns.sh first).

server_bin=${USTACK_SERVER_BIN:-target/release/examples/server}
tmp=$(mktemp -d)
server_log="$tmp/server.log"
# Background processes to kill at exit (add with: bg_pids+=($!)).
bg_pids=()
cleanup() {
    local p
    for p in "${server_pid:-}" "${bg_pids[@]}"; do
        if [[ -n "$p" ]]; then kill "$p" 2>/dev/null || true; fi
    done
    rm -rf "$tmp"
}
trap cleanup EXIT

# start_server [PCAP]: starts the example server with the default addresses
# and waits until the kernel side of the link answers.
start_server() {
    [[ -x "$server_bin" ]] || { echo "missing $server_bin: cargo build --release --example server" >&2; return 1; }
    USTACK_PCAP="${1:-}" USTACK_LOG="${USTACK_LOG:-info}" "$server_bin" >"$server_log" 2>&1 &
    server_pid=$!
    for _ in $(seq 100); do
        if ip -4 addr show dev "${USTACK_IFNAME:-ustack0}" 2>/dev/null | grep -q 'inet ' &&
            ! ip -6 addr show dev "${USTACK_IFNAME:-ustack0}" 2>/dev/null | grep -q tentative; then
            return 0
        fi
        if ! kill -0 "$server_pid" 2>/dev/null; then
            echo "server exited:" >&2; cat "$server_log" >&2; return 1
        fi
        sleep 0.05
    done
    echo "server did not bring up the device in 5 s:" >&2; cat "$server_log" >&2
    return 1
}

# stop_server: SIGTERM, wait, and show the server's log on failure.
stop_server() {
    kill -TERM "$server_pid" 2>/dev/null || true
    local rc=0
    wait "$server_pid" || rc=$?
    if [[ $rc -ne 0 ]]; then
        echo "server exited with status $rc:" >&2; cat "$server_log" >&2
        return 1
    fi
}
