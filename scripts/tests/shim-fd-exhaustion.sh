#!/usr/bin/env bash
# A program out of fds under the shim degrades as on kernel sockets
# (scripts/compat/fd_exhaustion.py, under `ulimit -n 64`): socket() and
# accept() fail with EMFILE, the queued connection waits, the sockets it
# already has still connect and carry data, and it loses at most a
# documented constant of fds to the shim (shim/README.md: 1 on the shared
# stack, the control connection; 3 in-process: the TUN device, the
# stack's eventfd and the thread's waker). Before: in-process, connect()
# failed with EMFILE (the thread's waker, made on first block, could not
# be had and its failure was kept); shared, the daemon inherited the
# program's limit (50 sockets of 59), an accept() at the limit lost its
# connection, and every socket() cost a second control connection.
# The same program runs on kernel sockets first, proving the checks.
source "$(dirname "$0")/../netns.sh"
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/need.sh
need python3 ip
source scripts/compat/lib.sh
source scripts/compat/shared.sh
[[ $COMPAT_MODE == shim ]] || { echo "$compat_name: shim mode only (it runs the kernel case itself)"; exit 2; }

prog=scripts/compat/fd_exhaustion.py
bg "$PY" -c '
import socket, sys, threading
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind((sys.argv[1], 7260)); l.listen(64)
def serve(c):
    while (b := c.recv(65536)):
        c.sendall(b)
    c.close()
while True:
    c, _ = l.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()' "$PEER"
wait_tcp_kernel "$PEER" 7260 || fail "kernel echo server never listening"

# run NAME LIMIT CMD...: runs the program under `ulimit LIMIT 64`; passes
# if every check in it does; sets $count to its socket count.
run() {
    local name=$1 limit=$2 out rc=0
    shift 2
    out=$(ulimit "$limit" 64; timeout 90 "$@" "$prog" "$ADDR_USED" "$PEER" 7260 2>&1) || rc=$?
    count=$(sed -n 's/^sockets //p' <<<"$out")
    if [[ $rc -eq 0 && -n $count ]]; then
        pass "$name: every check holds with $count sockets"
    else
        fail "$name: exit $rc"
        sed 's/^/      /' <<<"$out"
    fi
}

# within NAME GOT WANT SLACK: GOT is at least WANT - SLACK.
within() {
    if [[ -n $2 && $2 -ge $(($3 - $4)) ]]; then
        pass "$1: $2 sockets, the kernel's $3 less at most $4"
    else
        fail "$1: ${2:-no} sockets where the kernel has $3 (the shim may take $4)"
    fi
}

wait_no_daemon() {
    for _ in $(seq 100); do [[ -z $(daemon_pids) ]] && return 0; sleep 0.1; done
    fail "a daemon still runs: $(daemon_pids)"
}

ADDR_USED=$PEER run "kernel sockets" -Sn env "$PY"
kernel=$count

# The shared stack, the daemon spawned by the program under a soft limit
# (the daemon raises its own to the hard limit).
ADDR_USED=$ADDR run "shared, daemon spawned at soft limit 64" -Sn "${STACK[@]}" "$PY"
within "shared, daemon spawned" "$count" "$kernel" 1
wait_no_daemon

# A daemon started first (`scripts/ustack --daemon`), the program under
# a hard limit of 64.
bg scripts/ustack --daemon
for _ in $(seq 100); do [[ -n $(daemon_pids) ]] && break; sleep 0.05; done
ADDR_USED=$ADDR run "shared, persistent daemon, hard limit 64" -n "${STACK[@]}" "$PY"
within "shared, persistent daemon" "$count" "$kernel" 1
kill "$bg_pid"
wait_no_daemon

# The daemon spawned by a program under a hard limit of 64: without
# CAP_SYS_RESOURCE it cannot raise the limit it inherits, so the program
# gets EMFILE early, and the daemon says why and what to do.
out=$(ulimit -n 64; timeout 60 "${STACK[@]}" "$PY" -c '
import errno, socket
s = []
try:
    while len(s) < 1000:
        s.append(socket.socket())
except OSError as e:
    print("stopped", len(s), errno.errorcode[e.errno])
else:
    print("stopped", len(s), "never")' 2>&1) || true
cap=$(sed -n 's/^CapEff:\s*//p' /proc/self/status)
if (( (0x$cap >> 24) & 1 )); then
    grep -q "^stopped $((kernel - 1)) EMFILE\|^stopped $kernel EMFILE" <<<"$out" \
        && pass "daemon spawned at hard limit 64 raised its own (CAP_SYS_RESOURCE): $(grep ^stopped <<<"$out")" \
        || fail "daemon spawned at hard limit 64: $out"
else
    grep -q "^stopped [0-9]* EMFILE" <<<"$out" && pass "daemon spawned at hard limit 64 (no CAP_SYS_RESOURCE here): $(grep ^stopped <<<"$out")" \
        || fail "daemon spawned at hard limit 64: $out"
    grep -q "out of file descriptors.*ulimit -Hn.*scripts/ustack --daemon" <<<"$out" \
        && pass "the daemon names the limit and the fix" \
        || fail "no warning naming the fix: $out"
fi
wait_no_daemon

# The in-process stack.
ADDR_USED=$ADDR run "in-process (USTACK_SHARED=off)" -Sn env LD_PRELOAD="$USTACK_LIB" USTACK_SHARED=off "$PY"
within "in-process" "$count" "$kernel" 3
compat_done
