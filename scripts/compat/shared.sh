# shellcheck shell=bash
# Helpers for the shared-stack scripts (scripts/tests/shared-*.sh and
# scripts/compat-pending/shared-*.sh). Source scripts/netns.sh and
# scripts/compat/lib.sh first.
#
# In shim mode every program on the stack side runs with USTACK_SHARED=on:
# its sockets are AF_UNIX fds served by the stack daemon, ustackd (beside
# libustack.so; the first such program starts it, and it exits about 2 s
# after its last socket closes). The daemon's control socket is an
# abstract Unix address, which belongs to the network namespace, so each
# script has a daemon of its own.
#
# Provides: $USTACKD, daemon_status (its "sockets N connections N ..."
# line), daemon_up, daemon_pids (the daemons in this namespace), and no_leak (the
# final check: the daemon reports "sockets 0" or has exited). At exit any
# daemon left in this namespace is stopped after the programs.

USTACKD=${USTACKD:-$(dirname "$USTACK_LIB")/ustackd}
if [[ $COMPAT_MODE == shim ]]; then
    [[ -x $USTACKD ]] || { echo "$compat_name: $USTACKD missing (cargo build --release)"; exit 1; }
    STACK+=(USTACK_SHARED=on)
fi

# daemon_pids: the ustackd processes in this network namespace (pgrep
# sees every namespace's; compare each one's netns with ours).
daemon_pids() {
    local me p
    me=$(readlink /proc/self/ns/net)
    for p in $(pgrep -x ustackd 2>/dev/null || true); do
        [[ $(readlink "/proc/$p/ns/net" 2>/dev/null) == "$me" ]] && echo "$p"
    done
    return 0
}

# daemon_status: the daemon's counts, or "no daemon".
daemon_status() {
    timeout 5 "$USTACKD" --status 2>/dev/null | tr '\n' ' ' | sed 's/ *$//' || true
}

# daemon_up: whether a daemon answers in this namespace (for `retry`,
# after starting one by hand).
daemon_up() { [[ -n $(daemon_status) ]]; }

# no_leak: waits (at most 20 s: the daemon's linger, 5 s, plus its grace,
# 2 s, with room) until the daemon reports "sockets 0" or is gone; pass or
# fail with what it last reported.
no_leak() {
    [[ $COMPAT_MODE == shim ]] || { pass "no leak check in kernel mode"; return 0; }
    local end=$((SECONDS + 20)) st
    while :; do
        st=$(daemon_status)
        if [[ -z $st || -z $(daemon_pids) ]]; then
            pass "nothing leaked: the daemon has exited"
            return 0
        fi
        if [[ $st == *"sockets 0 "* ]]; then
            pass "nothing leaked: daemon reports '$st'"
            return 0
        fi
        if [[ $SECONDS -ge $end ]]; then
            fail "leak: after 20 s the daemon still reports '$st'"
            return 1
        fi
        sleep 0.2
    done
}

# At exit: the programs first, then the daemon (before compat_cleanup
# deletes the device under it, which it would report as an error).
shared_cleanup() {
    local p
    for p in "${compat_pids[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    for p in "${compat_pids[@]}"; do
        timeout 5 tail --pid="$p" -f /dev/null 2>/dev/null || kill -9 "$p" 2>/dev/null || true
    done
    for p in $(daemon_pids); do
        kill "$p" 2>/dev/null || true
    done
    for p in $(daemon_pids); do
        timeout 5 tail --pid="$p" -f /dev/null 2>/dev/null || kill -9 "$p" 2>/dev/null || true
    done
    compat_cleanup
}
trap shared_cleanup EXIT
