#!/usr/bin/env bash
# nginx on the userspace stack (epoll, accept4, sendfile), its own config
# in a scratch directory, listening on v4 and v6. Kernel-side curl fetches
# a small file and a 20 MiB file checked by sha256 over both families,
# gets a 404, ab runs 2000 requests 20 at a time (every one must complete,
# none may fail), and nginx as a reverse proxy on the stack forwards to a
# kernel-side python http.server (nginx as a client on the stack).
#
# nginx runs with `master_process off` (one process, no fork): with a
# master, the workers are forked children that inherit the master's
# listening sockets, and the shim's documented fork limit is that a forked
# child cannot use its parent's virtual sockets (EBADFD). Tried: with
# `master_process on` the worker's epoll_wait fails with EBADFD ("[alert]
# epoll_wait() failed (77: File descriptor in bad state)", in a loop) and
# no request is ever answered.
source "$(dirname "$0")/../netns.sh"
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/need.sh
need python3 ip ss nginx ab curl
source scripts/compat/lib.sh


mkdir -p "$WORK/www" "$WORK/tmp" "$WORK/logs"
echo "nginx on the userspace stack" >"$WORK/www/index.txt"
random_file "$WORK/www/big.bin" 20
# nginx drops privileges only with a master process; still, let any user
# read the document root.
chmod 755 "$WORK" "$WORK/www"
chmod 644 "$WORK/www/"*

# The backend for the proxy test: a kernel-side python http.server.
mkdir -p "$WORK/backend"
echo "from the kernel-side backend" >"$WORK/backend/be.txt"

cat >"$WORK/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/logs/error.log warn;
events {
    use epoll;
    worker_connections 256;
}
http {
    access_log $WORK/logs/access.log;
    client_body_temp_path $WORK/tmp/body;
    proxy_temp_path $WORK/tmp/proxy;
    fastcgi_temp_path $WORK/tmp/fastcgi;
    uwsgi_temp_path $WORK/tmp/uwsgi;
    scgi_temp_path $WORK/tmp/scgi;
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 10;
    server {
        listen $ADDR:8080;
        listen [$ADDR6]:8080;
        root $WORK/www;
        location /be/ {
            proxy_pass http://$PEER:8090/;
            proxy_connect_timeout 5s;
            proxy_read_timeout 10s;
        }
    }
}
EOF

bg timeout 120 "$PY" -u -m http.server --bind "$PEER" --directory "$WORK/backend" 8090 >"$WORK/backend.log" 2>&1
wait_tcp_kernel "$PEER" 8090 || fail "kernel-side backend never listening"

bg timeout 150 "${STACK[@]}" nginx -p "$WORK" -e "$WORK/logs/error.log" -c "$WORK/nginx.conf" >"$WORK/nginx.out" 2>&1
srv=$bg_pid

c=(curl -sS -f --max-time 60)
# nginx on the stack cannot be seen by ss: poll it until it answers.
if ! retry 15 timeout 5 "${c[@]}" -o /dev/null "http://$ADDR:8080/index.txt"; then
    fail "nginx never answered on $ADDR:8080"
    cat "$WORK/nginx.out" "$WORK/logs/error.log" 2>/dev/null | tail -n 20
    compat_done
fi

got=$(timeout 30 "${c[@]}" "http://$ADDR:8080/index.txt" || echo "curl exit $?")
same_text "GET v4" "nginx on the userspace stack" "$got"
got=$(timeout 30 "${c[@]}" -g "http://[$ADDR6]:8080/index.txt" || echo "curl exit $?")
same_text "GET v6" "nginx on the userspace stack" "$got"
for fam in 4 6; do
    if [[ $fam == 4 ]]; then url="http://$ADDR:8080/big.bin"; else url="http://[$ADDR6]:8080/big.bin"; fi
    rm -f "$WORK/big.out"
    if timeout 90 "${c[@]}" -g -o "$WORK/big.out" "$url"; then
        same_file "v$fam 20 MiB download (sendfile)" "$WORK/www/big.bin" "$WORK/big.out"
    else
        fail "v$fam 20 MiB download: curl exit $?"
    fi
done
code=$(timeout 30 curl -sS -o /dev/null -w '%{http_code}' --max-time 20 "http://$ADDR:8080/missing" || true)
same_text "404" 404 "$code"

# Five requests on one keep-alive connection: curl reuses it.
got=$(timeout 30 "${c[@]}" -w '%{num_connects}\n' -o /dev/null -o /dev/null -o /dev/null -o /dev/null -o /dev/null \
    "http://$ADDR:8080/index.txt" "http://$ADDR:8080/index.txt" "http://$ADDR:8080/index.txt" \
    "http://$ADDR:8080/index.txt" "http://$ADDR:8080/index.txt" | paste -sd' ' || true)
same_text "5 requests over one keep-alive connection (connects per request)" "1 0 0 0 0" "$got"

# ab: 2000 requests, 20 concurrent; every one completes, none fails.
# abcheck NAME LOG [MIN_RPS]: parses ab's summary.
abcheck() {
    local complete failed non2xx rps
    complete=$(awk '/^Complete requests:/ {print $3}' "$2")
    failed=$(awk '/^Failed requests:/ {print $3}' "$2")
    non2xx=$(awk '/^Non-2xx responses:/ {print $3}' "$2")
    rps=$(awk '/^Requests per second:/ {print $4}' "$2")
    if [[ $complete == 2000 && $failed == 0 && -z $non2xx ]]; then
        if awk -v r="$rps" -v m="${3:-0}" 'BEGIN { exit !(r >= m) }'; then
            pass "$1: 2000/2000 complete, 0 failed, $rps requests/s"
        else
            fail "$1: $rps requests/s, want at least $3"
        fi
    else
        fail "$1: complete '$complete' failed '$failed' non-2xx '$non2xx'"
        tail -n 30 "$2" | sed 's/^/         /'
    fi
}
timeout 120 ab -q -n 2000 -c 20 -s 20 "http://$ADDR:8080/index.txt" >"$WORK/ab4.log" 2>&1 || true
abcheck "ab -n 2000 -c 20 v4" "$WORK/ab4.log"
# Keep-alive: nginx (tcp_nopush on) clears TCP_NODELAY, corks, writes the
# header and the body, and uncorks. Unless uncorking pushes the body out,
# Nagle holds it for the kernel's delayed ACK, 40 ms per response: about
# 500 requests/s. Ask for four times that (unimpaired, tens of thousands).
timeout 120 ab -q -k -n 2000 -c 20 -s 20 "http://[$ADDR6]:8080/index.txt" >"$WORK/ab6.log" 2>&1 || true
abcheck "ab -k -n 2000 -c 20 v6 (keep-alive)" "$WORK/ab6.log" 2000

# nginx as a client on the stack: reverse proxy to the kernel backend.
got=$(timeout 30 "${c[@]}" "http://$ADDR:8080/be/be.txt" || echo "curl exit $?")
same_text "reverse proxy to a kernel backend" "from the kernel-side backend" "$got"
saw_client "the backend saw nginx's connection from $ADDR" "$WORK/backend.log" "$ADDR - -"

# The access log: every request above, from the kernel's address.
n=$(grep -c "^$PEER " "$WORK/logs/access.log" || true)
if [[ $n -ge 2000 ]]; then pass "access log: $n requests from $PEER"; else fail "access log: $n requests from $PEER"; fi

if [[ -s $WORK/logs/error.log ]] && grep -E '\[(alert|crit|emerg)\]' "$WORK/logs/error.log"; then
    fail "nginx logged alerts"
fi
stop "$srv"
compat_done
