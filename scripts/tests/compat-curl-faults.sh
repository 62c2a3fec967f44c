#!/usr/bin/env bash
# curl on the userspace stack over an impaired link (USTACK_FAULT: loss,
# duplication, reordering, corruption and delay, seeded): a 20 MiB download
# and a 5 MiB POST must still arrive intact (sha256). In kernel mode the
# link is loopback and unimpaired: it only checks the script.
source "$(dirname "$0")/../netns.sh"
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/need.sh
need python3 ip ss curl
source scripts/compat/lib.sh

mkdir -p "$WORK/www"
random_file "$WORK/www/big.bin" 20
random_file "$WORK/post.bin" 5
bg "$PY" -m http.server --bind "$PEER" --directory "$WORK/www" 8000 >"$WORK/http.log" 2>&1
bg "$PY" scripts/compat/upload_server.py "$PEER" 8001 "$WORK/www" >"$WORK/upload.log" 2>&1
wait_tcp_kernel "$PEER" 8000
wait_tcp_kernel "$PEER" 8001

for spec in "loss=0.02,seed=1" "dup=0.02,reorder=0.02,seed=2" "loss=0.01,corrupt=0.01,delay=2ms,seed=3"; do
    rm -f "$WORK/big.out"
    if timeout 120 env USTACK_FAULT="$spec" "${STACK[@]}" curl -sS -f --max-time 100 \
        -o "$WORK/big.out" "http://$PEER:8000/big.bin"; then
        same_file "20 MiB download with $spec" "$WORK/www/big.bin" "$WORK/big.out"
    else
        fail "20 MiB download with $spec: curl exit $?"
    fi
    want="$(sha256sum <"$WORK/post.bin" | cut -d' ' -f1) $((5 * 1024 * 1024))"
    got=$(timeout 120 env USTACK_FAULT="$spec" "${STACK[@]}" curl -sS -f --max-time 100 -H 'Expect:' \
        --data-binary "@$WORK/post.bin" "http://$PEER:8001/upload" || echo "curl exit $?")
    same_text "5 MiB POST with $spec" "$want" "$got"
done
saw_client "the server saw the client as $ADDR" "$WORK/http.log" "$ADDR - -"
# The impairment was real: the kernel side had to retransmit (this
# namespace's counters; nothing else here sends TCP).
if [[ $COMPAT_MODE == shim ]]; then
    retrans=$(nstat -az TcpRetransSegs | awk '/TcpRetransSegs/ {print $2}')
    if [[ ${retrans:-0} -gt 0 ]]; then pass "the kernel side retransmitted $retrans segments"; else fail "no kernel retransmissions: was USTACK_FAULT applied?"; fi
fi

compat_done
