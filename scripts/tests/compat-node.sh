#!/usr/bin/env bash
# A Node.js HTTP server (libuv: epoll, accept4, non-blocking I/O, threads)
# on the userspace stack, listening on v4 and v6, fetched by kernel-side
# curl: a small body naming the client address the server saw, a 16 MiB
# body checked by sha256, a 4 MiB POST whose sha256 the server computes,
# and 20 requests at once. Without node it is skipped (counted as such;
# see scripts/need.sh).
source "$(dirname "$0")/../netns.sh"
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/need.sh
need python3 ip ss curl
want node

source scripts/compat/lib.sh

random_file "$WORK/big.bin" 16
random_file "$WORK/post.bin" 4
cat >"$WORK/server.js" <<'JS'
const http = require('http');
const crypto = require('crypto');
const fs = require('fs');
const [addr4, addr6, port, bigPath] = process.argv.slice(2);
const big = fs.readFileSync(bigPath);
const handler = (req, res) => {
  if (req.method === 'POST') {
    const h = crypto.createHash('sha256');
    let n = 0;
    req.on('data', (c) => { h.update(c); n += c.length; });
    req.on('end', () => res.end(`${n} ${h.digest('hex')}\n`));
  } else if (req.url === '/big') {
    res.setHeader('Content-Length', big.length);
    res.end(big);
  } else if (req.url === '/hello') {
    res.end(`hello from node, client ${req.socket.remoteAddress}\n`);
  } else {
    res.statusCode = 404;
    res.end('not found\n');
  }
};
let up = 0;
for (const a of [addr4, addr6]) {
  http.createServer(handler).listen({ host: a, port: Number(port), ipv6Only: a.includes(':') }, () => {
    if (++up === 2) console.log('listening');
  });
}
JS

bg timeout 120 "${STACK[@]}" node "$WORK/server.js" "$ADDR" "$ADDR6" 8080 "$WORK/big.bin" >"$WORK/node.log" 2>&1
srv=$bg_pid
wait_line "$WORK/node.log" listening 20 || fail "node server never listening"

c=(curl -sS -f --max-time 60)
got=$(timeout 30 "${c[@]}" "http://$ADDR:8080/hello" || echo "curl exit $?")
same_text "GET v4 (names the kernel client)" "hello from node, client $PEER" "$got"
got=$(timeout 30 "${c[@]}" -g "http://[$ADDR6]:8080/hello" || echo "curl exit $?")
same_text "GET v6 (names the kernel client)" "hello from node, client $PEER6" "$got"
for fam in 4 6; do
    if [[ $fam == 4 ]]; then base="http://$ADDR:8080"; else base="http://[$ADDR6]:8080"; fi
    rm -f "$WORK/big.out"
    if timeout 90 "${c[@]}" -g -o "$WORK/big.out" "$base/big"; then
        same_file "v$fam 16 MiB download" "$WORK/big.bin" "$WORK/big.out"
    else
        fail "v$fam 16 MiB download: curl exit $?"
    fi
    want="$(stat -c %s "$WORK/post.bin") $(sha256sum <"$WORK/post.bin" | cut -d' ' -f1)"
    got=$(timeout 60 "${c[@]}" -g --data-binary @"$WORK/post.bin" "$base/upload" || echo "curl exit $?")
    same_text "v$fam 4 MiB POST (server's byte count and sha256)" "$want" "$got"
done
code=$(timeout 30 curl -sS -o /dev/null -w '%{http_code}' --max-time 20 "http://$ADDR:8080/missing" || true)
same_text "404" 404 "$code"

pids=()
for i in $(seq 20); do
    timeout 60 "${c[@]}" -o "$WORK/par$i.out" "http://$ADDR:8080/hello" &
    pids+=($!)
done
ok=0
for i in $(seq 20); do
    if wait "${pids[$((i - 1))]}" && [[ $(cat "$WORK/par$i.out") == "hello from node, client $PEER" ]]; then
        ok=$((ok + 1))
    fi
done
same_text "20 requests at once" 20 "$ok"

stop "$srv"
compat_done
