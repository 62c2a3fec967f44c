#!/usr/bin/env bash
# `python3 -m http.server` on the userspace stack (v4 and v6), fetched by
# kernel-side curl: a small file, a 50 MiB file checked by sha256, a
# directory listing, a 404, and eight fetches at once.
source "$(dirname "$0")/../netns.sh"
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/need.sh
need python3 ip ss curl
source scripts/compat/lib.sh

mkdir -p "$WORK/www"
echo "served from the userspace stack" >"$WORK/www/index.txt"
random_file "$WORK/www/big.bin" 50

bg timeout 120 "${STACK[@]}" "$PY" -u -m http.server --bind "$ADDR" --directory "$WORK/www" 8000 >"$WORK/http.log" 2>&1
wait_line "$WORK/http.log" "Serving HTTP" || fail "v4 server never started"
srv=$bg_pid

c=(curl -sS -f --max-time 60)
got=$(timeout 30 "${c[@]}" "http://$ADDR:8000/index.txt" || echo "curl exit $?")
same_text "GET v4" "served from the userspace stack" "$got"
if timeout 90 "${c[@]}" -o "$WORK/big.out" "http://$ADDR:8000/big.bin"; then
    same_file "50 MiB download" "$WORK/www/big.bin" "$WORK/big.out"
else
    fail "50 MiB download: curl exit $?"
fi
got=$(timeout 30 "${c[@]}" "http://$ADDR:8000/" | grep -c 'big.bin' || true)
same_text "directory listing names big.bin" 1 "$got"
code=$(timeout 30 curl -sS -o /dev/null -w '%{http_code}' --max-time 20 "http://$ADDR:8000/missing" || true)
same_text "404" 404 "$code"
pids=()
for i in $(seq 8); do
    timeout 60 "${c[@]}" -o "$WORK/par$i.out" "http://$ADDR:8000/index.txt" &
    pids+=($!)
done
ok=1
for i in $(seq 8); do
    wait "${pids[$((i - 1))]}" || ok=0
    cmp -s "$WORK/www/index.txt" "$WORK/par$i.out" || ok=0
done
if [[ $ok -eq 1 ]]; then pass "8 parallel fetches"; else fail "8 parallel fetches"; fi

stop "$srv"
saw_client "the server on the stack saw kernel curl as $PEER" "$WORK/http.log" "$PEER - -"

# One stack-side process at a time (it owns the TUN device): now v6.
bg timeout 60 "${STACK[@]}" "$PY" -u -m http.server --bind "$ADDR6" --directory "$WORK/www" 8001 >"$WORK/http6.log" 2>&1
wait_line "$WORK/http6.log" "Serving HTTP" || fail "v6 server never started"
got=$(timeout 30 "${c[@]}" -g "http://[$ADDR6]:8001/index.txt" || echo "curl exit $?")
same_text "GET v6" "served from the userspace stack" "$got"

compat_done
