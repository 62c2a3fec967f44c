#!/usr/bin/env bash
# socat on the userspace stack: as a TCP client of a kernel echo server
# (v4 and v6, 10 MiB checked by sha256), as a TCP server (its EXEC:cat
# child talks to it over a socketpair) for a kernel client, and as a UDP
# client of a kernel UDP echo server.
source "$(dirname "$0")/../netns.sh"
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/need.sh
need python3 ip ss socat
source scripts/compat/lib.sh

random_file "$WORK/file.bin" 10

# Kernel-side echo servers.
bg timeout 60 socat -d -d TCP4-LISTEN:7100,bind="$PEER",reuseaddr,fork EXEC:cat 2>"$WORK/k1.log"
bg timeout 60 socat -d -d TCP6-LISTEN:7101,bind="[$PEER6]",reuseaddr,fork EXEC:cat 2>"$WORK/k2.log"
bg timeout 60 socat -d -d UDP4-RECVFROM:7102,bind="$PEER",fork EXEC:cat 2>"$WORK/k3.log"
wait_tcp_kernel "$PEER" 7100
wait_tcp_kernel "$PEER6" 7101
wait_udp_kernel "$PEER" 7102

got=$(echo "hello socat" | timeout 10 "${STACK[@]}" socat -t 5 - TCP4:"$PEER":7100 || echo "socat exit $?")
same_text "tcp client v4: echo" "hello socat" "$got"
if timeout 60 "${STACK[@]}" socat -t 10 - TCP6:"[$PEER6]":7101 <"$WORK/file.bin" >"$WORK/echo6.out"; then
    same_file "tcp client v6: 10 MiB echoed" "$WORK/file.bin" "$WORK/echo6.out"
else
    fail "tcp client v6: socat exit $?"
fi
got=$(echo "hello udp" | timeout 10 "${STACK[@]}" socat -t 2 - UDP4:"$PEER":7102 || echo "socat exit $?")
same_text "udp client: echo" "hello udp" "$got"

saw_client "tcp client v4 came from $ADDR" "$WORK/k1.log" "connection from AF=2 $ADDR:"
saw_client "tcp client v6 came from $ADDR6" "$WORK/k2.log" "connection from AF=10 [$(exploded "$ADDR6")]:"
saw_client "udp client came from $ADDR" "$WORK/k3.log" "packet from AF=2 $ADDR:"

# socat as the server on the stack; its cat child gets a socketpair.
bg timeout 60 "${STACK[@]}" socat -d -d TCP4-LISTEN:7103,bind="$ADDR",reuseaddr EXEC:cat 2>"$WORK/srv.log"
srv=$bg_pid
wait_line "$WORK/srv.log" "listening on" || fail "tcp server: never listening"
if timeout 60 socat -t 10 - TCP4:"$ADDR":7103 <"$WORK/file.bin" >"$WORK/srv.out"; then
    same_file "tcp server: 10 MiB echoed by socat on the stack" "$WORK/file.bin" "$WORK/srv.out"
else
    fail "tcp server: kernel socat exit $?"
fi
if timeout 10 tail --pid="$srv" -f /dev/null; then pass "tcp server: socat exits after the session"; else fail "tcp server: socat still running"; fi

compat_done
