#!/usr/bin/env bash
# netcat-openbsd on the userspace stack, TCP client and server, UDP server,
# IPv4 and IPv6, against kernel-side nc: `echo hi | nc` (with -N, and with
# -q 0 so nc exits right after writing: the data must still arrive), a
# 10 MiB file each way checked by sha256, and a server that sends a file
# and exits.
source "$(dirname "$0")/../netns.sh"
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/need.sh
need python3 ip ss nc
source scripts/compat/lib.sh

random_file "$WORK/file.bin" 10

# wait_exit PID SECONDS: waits for a background process to end by itself.
wait_exit() {
    timeout "$2" tail --pid="$1" -f /dev/null 2>/dev/null || { echo "pid $1 still running after $2 s" >&2; return 1; }
}
# wait_content FILE TEXT: waits (10 s) until FILE holds TEXT.
wait_content() {
    local i
    for i in $(seq 200); do
        [[ "$(cat "$1" 2>/dev/null)" == "$2" ]] && return 0
        sleep 0.05
    done
    return 1
}

# TCP client on the stack, kernel server.
bg timeout 20 nc -n -v -d -l "$PEER" 7000 >"$WORK/t1.out" 2>"$WORK/t1.log"
wait_tcp_kernel "$PEER" 7000
check "tcp client: echo hi | nc -n -N exits 0" bash -c 'echo hi | timeout 10 "$@" nc -n -N '"$PEER"' 7000' _ "${STACK[@]}"
wait_exit "$bg_pid" 10 || true
same_text "tcp client: server got 'hi'" hi "$(cat "$WORK/t1.out")"
saw_client "tcp client: came from $ADDR" "$WORK/t1.log" "Connection received on $ADDR "

bg timeout 20 nc -n -d -l "$PEER" 7001 >"$WORK/t2.out"
wait_tcp_kernel "$PEER" 7001
check "tcp client: echo hi | nc -n -q 0 exits 0" bash -c 'echo hi | timeout 10 "$@" nc -n -q 0 '"$PEER"' 7001' _ "${STACK[@]}"
wait_exit "$bg_pid" 10 || true
same_text "tcp client: 'hi' delivered although nc exited at once" hi "$(cat "$WORK/t2.out")"

bg timeout 30 nc -n -v -6 -d -l "$PEER6" 7002 >"$WORK/t3.out" 2>"$WORK/t3.log"
wait_tcp_kernel "$PEER6" 7002
check "tcp client v6: 10 MiB, nc -n -N exits 0" timeout 30 "${STACK[@]}" nc -n -6 -N "$PEER6" 7002 <"$WORK/file.bin"
wait_exit "$bg_pid" 10 || true
same_file "tcp client v6: 10 MiB delivered" "$WORK/file.bin" "$WORK/t3.out"
saw_client "tcp client v6: came from $ADDR6" "$WORK/t3.log" "Connection received on $ADDR6 "

# TCP server on the stack, kernel client.
bg timeout 30 "${STACK[@]}" nc -n -d -l -v "$ADDR" 7003 >"$WORK/t4.out" 2>"$WORK/t4.log"
srv=$bg_pid
wait_line "$WORK/t4.log" "Listening on" || fail "tcp server: never listening"
check "tcp server: kernel client sends 10 MiB" timeout 30 nc -n -N "$ADDR" 7003 <"$WORK/file.bin"
if wait_exit "$srv" 10; then pass "tcp server: nc -n -l exits after EOF"; else fail "tcp server: nc -n -l did not exit"; fi
same_file "tcp server: 10 MiB received" "$WORK/file.bin" "$WORK/t4.out"

bg timeout 30 "${STACK[@]}" nc -n -6 -N -l -v "$ADDR6" 7004 <"$WORK/file.bin" 2>"$WORK/t5.log"
srv=$bg_pid
wait_line "$WORK/t5.log" "Listening on" || fail "tcp server v6: never listening"
check "tcp server v6: kernel client reads to EOF" bash -c "timeout 30 nc -n -6 -d '$ADDR6' 7004 >'$WORK/t5.out'"
wait_exit "$srv" 10 || fail "tcp server v6: nc -n -l did not exit"
same_file "tcp server v6: 10 MiB sent by a server that then exits" "$WORK/file.bin" "$WORK/t5.out"

# (The UDP client, which sends and exits at once, is in
# scripts/compat-pending/compat-nc-udp-client.sh.)

# UDP server on the stack, kernel client.
bg timeout 20 "${STACK[@]}" nc -n -u -d -l -v "$ADDR" 7006 >"$WORK/u2.out" 2>"$WORK/u2.log"
wait_line "$WORK/u2.log" "Bound on" || fail "udp server: never bound"
check "udp server: kernel client sends" bash -c "echo hello | timeout 10 nc -n -u -q 0 '$ADDR' 7006"
if wait_content "$WORK/u2.out" hello; then pass "udp server: datagram arrived"; else fail "udp server: got '$(cat "$WORK/u2.out")'"; fi
stop "$bg_pid"

bg timeout 20 "${STACK[@]}" nc -n -6 -u -d -l -v "$ADDR6" 7007 >"$WORK/u3.out" 2>"$WORK/u3.log"
wait_line "$WORK/u3.log" "Bound on" || fail "udp server v6: never bound"
check "udp server v6: kernel client sends" bash -c "echo hello6 | timeout 10 nc -n -6 -u -q 0 '$ADDR6' 7007"
if wait_content "$WORK/u3.out" hello6; then pass "udp server v6: datagram arrived"; else fail "udp server v6: got '$(cat "$WORK/u3.out")'"; fi
stop "$bg_pid"

compat_done
