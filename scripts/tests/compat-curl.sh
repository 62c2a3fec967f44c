#!/usr/bin/env bash
# curl on the userspace stack against kernel-side HTTP servers: a small
# GET (v4 and v6), a 100 MiB download checked by sha256, a 10 MiB POST
# whose sha256 the server reports back, and a refused connection's exit
# code. COMPAT_MODE=kernel runs it over loopback to check the script.
source "$(dirname "$0")/../netns.sh"
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/need.sh
need python3 ip ss curl
source scripts/compat/lib.sh

mkdir -p "$WORK/www"
echo "hello from the kernel side" >"$WORK/www/index.txt"
random_file "$WORK/www/big.bin" 100
random_file "$WORK/post.bin" 10

bg "$PY" -m http.server --bind "$PEER" --directory "$WORK/www" 8000 >"$WORK/http.log" 2>&1
bg "$PY" scripts/compat/upload_server.py "$PEER6" 8001 "$WORK/www" >"$WORK/upload.log" 2>&1
bg "$PY" -m http.server --bind "$PEER6" --directory "$WORK/www" 8002 >"$WORK/http6.log" 2>&1
wait_tcp_kernel "$PEER" 8000
wait_tcp_kernel "$PEER6" 8001
wait_tcp_kernel "$PEER6" 8002

c=(curl -sS -f --max-time 60)
got=$(timeout 30 "${STACK[@]}" "${c[@]}" "http://$PEER:8000/index.txt" || echo "curl exit $?")
same_text "GET v4" "hello from the kernel side" "$got"
got=$(timeout 30 "${STACK[@]}" "${c[@]}" -g "http://[$PEER6]:8002/index.txt" || echo "curl exit $?")
same_text "GET v6" "hello from the kernel side" "$got"

rm -f "$WORK/big.out"
if timeout 90 "${STACK[@]}" "${c[@]}" -o "$WORK/big.out" "http://$PEER:8000/big.bin"; then
    same_file "100 MiB download" "$WORK/www/big.bin" "$WORK/big.out"
else
    fail "100 MiB download: curl exit $?"
fi

want="$(sha256sum <"$WORK/post.bin" | cut -d' ' -f1) $((10 * 1024 * 1024))"
got=$(timeout 60 "${STACK[@]}" "${c[@]}" -g -H 'Expect:' --data-binary "@$WORK/post.bin" \
    "http://[$PEER6]:8001/upload" || echo "curl exit $?")
same_text "10 MiB POST (v6)" "$want" "$got"

# Nothing listens on 8009: curl exits 7 (couldn't connect).
rc=0
timeout 30 "${STACK[@]}" curl -sS --max-time 10 "http://$PEER:8009/" >/dev/null 2>&1 || rc=$?
same_text "refused: curl exit code" 7 "$rc"

saw_client "the v4 server saw the client as $ADDR" "$WORK/http.log" "$ADDR - -"
saw_client "the v6 server saw the client as $ADDR6" "$WORK/http6.log" "$ADDR6 - -"
saw_client "the upload server saw the client as $ADDR6" "$WORK/upload.log" "$ADDR6 - -"

compat_done
