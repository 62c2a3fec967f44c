#!/usr/bin/env bash
# The shared stack (USTACK_SHARED=on): prefork servers. A listener, then 3
# forked workers that each accept on the inherited listener, in python3
# and in C (compiled here with gcc). 30 kernel-side connections in
# batches of 3: the clients of a batch keep their connections open until
# all three have their replies, and a worker keeps its connection until
# the client closes it, so every batch needs all three workers at once.
# Each reply carries the worker's pid and the sha256 (python) or byte
# count (C) of the 256 KiB sent; every one must match, and the pids must
# be exactly the three workers'.
source "$(dirname "$0")/../netns.sh"
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/need.sh
need python3 ip ss gcc
source scripts/compat/lib.sh
source scripts/compat/shared.sh

gcc -O2 -Wall -o "$WORK/prefork" scripts/compat/prefork.c

# run_prefork NAME PORT MODE SERVER...
run_prefork() {
    local name=$1 port=$2 mode=$3 log="$WORK/$1.log" workers got
    shift 3
    bg timeout 120 "${STACK[@]}" "$@" >"$log" 2>&1
    local srv=$bg_pid
    if ! wait_line "$log" "listening" || ! wait_line "$log" "worker .*" 10; then
        fail "$name: never listening"
        return
    fi
    # All three workers have announced themselves before the clients start.
    local end=$((SECONDS + 10))
    while [[ $(grep -c '^worker [0-9]*$' "$log") -lt 3 && $SECONDS -lt $end ]]; do sleep 0.05; done
    workers=$(awk '/^worker [0-9]+$/ {print $2}' "$log" | sort -n | paste -sd,)
    if timeout 90 "$PY" scripts/compat/shared_clients.py "$ADDR" "$port" 30 $((256 * 1024)) --batch 3 --mode "$mode" >"$WORK/$name.cli" 2>&1; then
        pass "$name: 30 connections in batches of 3, all verified ($mode)"
    else
        fail "$name: clients exit $?"
        tail -n 20 "$WORK/$name.cli" | sed 's/^/         /'
        tail -n 10 "$log" | sed 's/^/         server: /'
    fi
    got=$(tail -n 1 "$WORK/$name.cli" | awk '{print $4}' | tr ',' '\n' | grep -v '^$' | sort -n | paste -sd, || true)
    same_text "$name: served by the 3 workers ($workers)" "$workers" "$got"
    stop "$srv"
}

run_prefork python 7210 sha "$PY" -u scripts/compat/shared_servers.py prefork "$ADDR" 7210 3
run_prefork c 7211 count "$WORK/prefork" "$ADDR" 7211 3
no_leak
compat_done
