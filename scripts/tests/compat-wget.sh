#!/usr/bin/env bash
# wget on the userspace stack against a kernel-side HTTP server: a small
# file (v4 and v6), a 50 MiB file checked by sha256, and a 404's exit code.
source "$(dirname "$0")/../netns.sh"
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/need.sh
need python3 ip ss wget
source scripts/compat/lib.sh

mkdir -p "$WORK/www"
echo "wget was here" >"$WORK/www/small.txt"
random_file "$WORK/www/big.bin" 50
bg "$PY" -m http.server --bind "$PEER" --directory "$WORK/www" 8000 >"$WORK/http.log" 2>&1
bg "$PY" -m http.server --bind "$PEER6" --directory "$WORK/www" 8001 >"$WORK/http6.log" 2>&1
wait_tcp_kernel "$PEER" 8000
wait_tcp_kernel "$PEER6" 8001

w=(wget -q --tries=1 --timeout=20)
got=$(timeout 30 "${STACK[@]}" "${w[@]}" -O - "http://$PEER:8000/small.txt" || echo "wget exit $?")
same_text "small file v4" "wget was here" "$got"
got=$(timeout 30 "${STACK[@]}" "${w[@]}" -O - "http://[$PEER6]:8001/small.txt" || echo "wget exit $?")
same_text "small file v6" "wget was here" "$got"
if timeout 90 "${STACK[@]}" "${w[@]}" -O "$WORK/big.out" "http://$PEER:8000/big.bin"; then
    same_file "50 MiB file" "$WORK/www/big.bin" "$WORK/big.out"
else
    fail "50 MiB file: wget exit $?"
fi
# A 404 is wget's exit status 8 (server error response).
rc=0
timeout 30 "${STACK[@]}" "${w[@]}" -O /dev/null "http://$PEER:8000/missing" || rc=$?
same_text "404: wget exit code" 8 "$rc"

saw_client "the v4 server saw the client as $ADDR" "$WORK/http.log" "$ADDR - -"
saw_client "the v6 server saw the client as $ADDR6" "$WORK/http6.log" "$ADDR6 - -"

compat_done
