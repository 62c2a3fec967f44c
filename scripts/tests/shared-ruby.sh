#!/usr/bin/env bash
# Ruby on the shared stack, unmodified: WEBrick (Ruby's HTTP server; it
# wraps each accepted fd with IO.for_fd, whose fstat must see a socket:
# before, "not a socket") serving 8 MiB to a kernel curl, 8 at once,
# hashing an upload, and naming both ends of the connection; and Ruby's
# Net::HTTP on the stack fetching from and posting to a kernel WEBrick.
source "$(dirname "$0")/../netns.sh"
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/need.sh
need python3 ip ss ruby curl
ruby -rwebrick -e 1 2>/dev/null || { echo "shared-ruby: FAIL: Ruby's webrick library not installed (Debian package ruby-webrick): run scripts/setup.sh --test" >&2; exit 1; }
source scripts/compat/lib.sh
source scripts/compat/shared.sh

mkdir -p "$WORK/www"
random_file "$WORK/www/big.bin" 8
want=$(sha256sum <"$WORK/www/big.bin" | cut -d' ' -f1)

bg timeout 120 "${STACK[@]}" ruby scripts/compat/webrick.rb serve "$ADDR" 8080 "$WORK/www" >"$WORK/stack.log" 2>&1
srv=$bg_pid
if wait_line "$WORK/stack.log" "listening on" && retry 10 curl -sf -o /dev/null "http://$ADDR:8080/peer"; then
    timeout 60 curl -sf -o "$WORK/got.bin" "http://$ADDR:8080/big.bin" || fail "curl GET: exit $?"
    same_file "kernel curl GETs 8 MiB from WEBrick on the stack" "$WORK/www/big.bin" "$WORK/got.bin"
    same_text "WEBrick on the stack hashes an 8 MiB POST" "$want" \
        "$(timeout 60 curl -sf --data-binary @"$WORK/www/big.bin" "http://$ADDR:8080/sha256")"
    same_text "WEBrick sees both ends" "$PEER $ADDR" "$(timeout 10 curl -sf "http://$ADDR:8080/peer")"
    for i in $(seq 8); do
        timeout 60 curl -sf -o "$WORK/par$i.bin" "http://$ADDR:8080/big.bin" &
    done
    wait_ok=0
    for i in $(seq 8); do wait -n || wait_ok=1; done
    bad=0
    for i in $(seq 8); do
        [[ $(sha256sum <"$WORK/par$i.bin" | cut -d' ' -f1) == "$want" ]] || bad=$((bad + 1))
    done
    if [[ $wait_ok -eq 0 && $bad -eq 0 ]]; then pass "8 kernel curls at once, 8 MiB each, all verified"; else fail "8 at once: $bad of 8 wrong"; fi
else
    fail "WEBrick on the stack never served: $(tail -3 "$WORK/stack.log")"
fi
stop "$srv"
if grep -qiE "error|not a socket" "$WORK/stack.log"; then
    fail "WEBrick logged: $(grep -iE "error|not a socket" "$WORK/stack.log" | head -3)"
fi

bg timeout 120 ruby scripts/compat/webrick.rb serve "$PEER" 8081 "$WORK/www" >"$WORK/kernel.log" 2>&1
ksrv=$bg_pid
wait_tcp_kernel "$PEER" 8081
same_text "Net::HTTP on the stack GETs 8 MiB and POSTs it back to a kernel WEBrick" "$want" \
    "$(timeout 60 "${STACK[@]}" ruby scripts/compat/webrick.rb fetch "http://$PEER:8081/big.bin" "$WORK/rb.bin" 2>"$WORK/rb.err" || tail -2 "$WORK/rb.err")"
same_file "the file Net::HTTP wrote" "$WORK/www/big.bin" "$WORK/rb.bin"
if [[ $COMPAT_MODE == shim ]]; then
    saw_client "the kernel WEBrick saw the client come from $ADDR" "$WORK/kernel.log" "$ADDR GET /big.bin 200"
fi
stop "$ksrv"
no_leak
compat_done
