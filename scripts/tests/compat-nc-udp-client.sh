#!/usr/bin/env bash
# A UDP datagram sent just before the process exits is delivered: the
# shim's exit path flushes the stack's transmit queue (it once lost one
# datagram in ten).
#
# netcat-openbsd as a UDP client on the userspace stack: 20 times, one
# line sent by an nc that exits at once; the kernel-side nc must get every
# one, from the stack's address.
source "$(dirname "$0")/../netns.sh"
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/need.sh
need python3 ip ss nc
source scripts/compat/lib.sh

lost=0
for i in $(seq 20); do
    port=$((7300 + i))
    bg timeout 20 nc -n -v -u -d -l "$PEER" "$port" >"$WORK/u$i.out" 2>"$WORK/u$i.log"
    srv=$bg_pid
    wait_udp_kernel "$PEER" "$port"
    if ! echo "hi $i" | timeout 10 "${STACK[@]}" nc -n -u -q 0 "$PEER" "$port"; then
        fail "run $i: nc exit status"
    fi
    for _ in $(seq 40); do
        [[ -s $WORK/u$i.out ]] && break
        sleep 0.025
    done
    [[ "$(cat "$WORK/u$i.out")" == "hi $i" ]] || lost=$((lost + 1))
    stop "$srv"
done
same_text "datagrams lost of 20" 0 "$lost"
saw_client "the datagrams came from $ADDR" "$WORK/u1.log" "Connection received on $ADDR "

compat_done
