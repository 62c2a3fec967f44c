#!/usr/bin/env bash
# redis-server on the userspace stack (v4 and v6, no persistence, its own
# scratch directory): kernel-side redis-cli SET/GET/INCR and a 512 KiB value
# read back by sha256, then redis-benchmark (-n 10000 -c 20 -t set,get,incr)
# with non-zero throughput for each test and the INCR counter at exactly
# 10000. The reverse: redis-cli and redis-benchmark on the stack against a
# kernel-side redis-server, which must see the client as the stack's
# address.
source "$(dirname "$0")/../netns.sh"
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/need.sh
need python3 ip ss redis-server redis-cli redis-benchmark
source scripts/compat/lib.sh

# 1. The server on the stack.
bg timeout 120 "${STACK[@]}" redis-server --bind "$ADDR $ADDR6" --port 6379 --dir "$WORK" \
    --save '' --appendonly no --daemonize no --protected-mode no --logfile '' >"$WORK/srv.log" 2>&1
srv=$bg_pid
wait_line "$WORK/srv.log" "Ready to accept connections" || fail "redis-server on the stack never ready"

cli() { timeout 20 redis-cli "$@"; }
got=$(cli -h "$ADDR" -p 6379 PING 2>&1 || true)
if [[ $got != PONG ]]; then
    # The log line comes before the event loop runs: give it a moment.
    retry 10 sh -c "timeout 5 redis-cli -h $ADDR -p 6379 PING | grep -qx PONG" || true
    got=$(cli -h "$ADDR" -p 6379 PING 2>&1 || true)
fi
same_text "PING v4" PONG "$got"
same_text "SET v4" OK "$(cli -h "$ADDR" SET greeting "hello from the stack" 2>&1 || true)"
same_text "GET v6" "hello from the stack" "$(cli -h "$ADDR6" GET greeting 2>&1 || true)"
for i in 1 2 3; do
    got=$(cli -h "$ADDR" INCR hits 2>&1 || true)
done
same_text "INCR x3 v4" 3 "$got"
same_text "INCR v6" 4 "$(cli -h "$ADDR6" INCR hits 2>&1 || true)"

# A 512 KiB value: many segments each way.
head -c 262144 /dev/urandom | od -An -tx1 -v | tr -d ' \n' >"$WORK/big.txt"
same_text "SET 512 KiB value" OK "$(cli -h "$ADDR" -x SET big <"$WORK/big.txt" 2>&1 || true)"
{ cat "$WORK/big.txt"; echo; } >"$WORK/big.want"
cli -h "$ADDR6" --raw GET big >"$WORK/big.got" 2>&1 || true
same_file "GET 512 KiB value v6" "$WORK/big.want" "$WORK/big.got"

# bench NAME LOG: every test reported a non-zero rate.
bench() {
    local t line rate summary=""
    for t in SET GET INCR; do
        line=$(tr '\r' '\n' <"$2" | grep -E "^$t: [0-9.]+ requests per second" | tail -n 1 || true)
        rate=$(awk '{print $2}' <<<"$line")
        if [[ -n $rate ]] && awk -v r="$rate" 'BEGIN { exit !(r > 0) }'; then
            summary+=" $t $rate/s"
        else
            fail "$1: no $t rate"
            tr '\r' '\n' <"$2" | tail -n 5 | sed 's/^/         /'
            return
        fi
    done
    pass "$1:$summary"
}
rb=(redis-benchmark -n 10000 -c 20 -t set,get,incr -q)
timeout 120 "${rb[@]}" -h "$ADDR" -p 6379 >"$WORK/bench.log" 2>&1 || fail "redis-benchmark exit $?"
bench "redis-benchmark against the stack (v4)" "$WORK/bench.log"
# Without -r every INCR hits the one key "counter:__rand_int__".
same_text "benchmark INCR counter" 10000 "$(cli -h "$ADDR" GET 'counter:__rand_int__' 2>&1 || true)"
clients=$(cli -h "$ADDR" INFO stats | tr -d '\r' | awk -F: '$1 == "total_connections_received" {print $2}')
if [[ ${clients:-0} -ge 60 ]]; then pass "server counted $clients connections"; else fail "server counted '$clients' connections"; fi
stop "$srv"

# 2. Clients on the stack, a kernel-side server.
bg timeout 120 redis-server --bind "$PEER $PEER6" --port 6380 --dir "$WORK" \
    --save '' --appendonly no --daemonize no --protected-mode no --logfile '' >"$WORK/ksrv.log" 2>&1
wait_tcp_kernel "$PEER" 6380 || fail "kernel redis-server never listening"
scli() { timeout 20 "${STACK[@]}" redis-cli "$@"; }
same_text "SET from the stack" OK "$(scli -h "$PEER" -p 6380 SET k "set on the stack" 2>&1 || true)"
same_text "GET from the stack v6" "set on the stack" "$(scli -h "$PEER6" -p 6380 GET k 2>&1 || true)"
same_text "INCR from the stack" 1 "$(scli -h "$PEER" -p 6380 INCR n 2>&1 || true)"
# CLIENT INFO names the client's own address as the server saw it.
got=$(scli -h "$PEER" -p 6380 CLIENT INFO 2>&1 || true)
if grep -q "addr=$ADDR:" <<<"$got"; then pass "the kernel server saw the client as $ADDR"; else fail "CLIENT INFO: $got"; fi
got=$(scli -h "$PEER6" -p 6380 CLIENT INFO 2>&1 || true)
if grep -qF "addr=[$ADDR6]:" <<<"$got"; then pass "the kernel server saw the v6 client as $ADDR6"; else fail "CLIENT INFO v6: $got"; fi
timeout 120 "${STACK[@]}" "${rb[@]}" -h "$PEER" -p 6380 >"$WORK/sbench.log" 2>&1 || fail "redis-benchmark on the stack exit $?"
bench "redis-benchmark on the stack against the kernel" "$WORK/sbench.log"
same_text "benchmark INCR counter (kernel server)" 10000 "$(cli -h "$PEER" -p 6380 GET 'counter:__rand_int__' 2>&1 || true)"

compat_done
