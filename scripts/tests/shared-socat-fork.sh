#!/usr/bin/env bash
# The shared stack (USTACK_SHARED=on): socat TCP-LISTEN:...,fork as a
# server on the stack, each connection served by a forked socat child on
# the socket it inherited (EXEC:cat: an echo; not PIPE, with which socat
# can block for ever writing 8 KiB into its own full pipe, as it did here
# about once in ten runs). Over v4 and v6, 10 kernel clients in turn and
# 10 at once each send 2 MiB and must read back the same bytes (sha256).
source "$(dirname "$0")/../netns.sh"
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/need.sh
need python3 ip ss socat
source scripts/compat/lib.sh
source scripts/compat/shared.sh

clients() { # NAME HOST PORT N BATCH
    if timeout 90 "$PY" scripts/compat/shared_clients.py "$2" "$3" "$4" $((2 * 1024 * 1024)) --batch "$5" --mode echo >"$WORK/cli.log" 2>&1; then
        pass "$1: $(tail -n 1 "$WORK/cli.log" | cut -d' ' -f1-2) echoed intact"
    else
        fail "$1: clients exit $?"
        tail -n 12 "$WORK/cli.log" | sed 's/^/         /'
    fi
}

bg timeout 150 "${STACK[@]}" socat -d -d TCP4-LISTEN:7230,bind="$ADDR",reuseaddr,fork EXEC:cat 2>"$WORK/s4.log"
s4=$bg_pid
bg timeout 150 "${STACK[@]}" socat -d -d TCP6-LISTEN:7231,bind="[$ADDR6]",reuseaddr,fork EXEC:cat 2>"$WORK/s6.log"
s6=$bg_pid
wait_line "$WORK/s4.log" "listening on" || fail "v4 socat never listening"
wait_line "$WORK/s6.log" "listening on" || fail "v6 socat never listening"

clients "v4, 10 in turn" "$ADDR" 7230 10 1
clients "v4, 10 at once" "$ADDR" 7230 10 10
clients "v6, 10 in turn" "$ADDR6" 7231 10 1
clients "v6, 10 at once" "$ADDR6" 7231 10 10

# Each connection was accepted by the listening socat, which forked a
# child for it; the children (distinct pids) logged the transfers' ends.
n=$(cat "$WORK/s4.log" "$WORK/s6.log" | grep -c 'accepting connection from' || true)
kids=$(cat "$WORK/s4.log" "$WORK/s6.log" | grep 'exiting with status 0' | awk '{print $3}' | sort -u | grep -c . || true)
if [[ $n -eq 40 && $kids -eq 40 ]]; then pass "40 connections accepted, $kids socat children exited cleanly"; else fail "socat accepted $n connections, $kids children exited with status 0"; fi
stop "$s4"
stop "$s6"
if grep -E ' E ' "$WORK/s4.log" "$WORK/s6.log"; then fail "socat logged errors"; fi
no_leak
compat_done
