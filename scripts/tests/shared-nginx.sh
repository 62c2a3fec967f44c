#!/usr/bin/env bash
# The shared stack (USTACK_SHARED=on): nginx as it is usually run, a master
# process and 2 forked workers (master_process on, worker_processes 2)
# that inherit the master's listening socket, on 10.77.0.2:8080. The
# kernel's curl fetches a 20 MiB file (sha256), and `ab -n 5000 -c 50`
# must complete every request with none failed. Both workers must have
# served (the access log records each request's worker pid).
source "$(dirname "$0")/../netns.sh"
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/need.sh
need python3 ip ss nginx ab curl
source scripts/compat/lib.sh
source scripts/compat/shared.sh

mkdir -p "$WORK/www" "$WORK/tmp" "$WORK/logs"
echo "nginx master and workers on the shared stack" >"$WORK/www/index.txt"
random_file "$WORK/www/big.bin" 20
chmod 755 "$WORK" "$WORK/www"
chmod 644 "$WORK/www/"*

cat >"$WORK/nginx.conf" <<CONF
daemon off;
master_process on;
worker_processes 2;
user $(id -un) $(id -gn);
pid $WORK/nginx.pid;
error_log $WORK/logs/error.log warn;
events {
    use epoll;
    worker_connections 256;
}
http {
    log_format withpid '\$remote_addr \$pid "\$request" \$status \$body_bytes_sent';
    access_log $WORK/logs/access.log withpid;
    client_body_temp_path $WORK/tmp/body;
    proxy_temp_path $WORK/tmp/proxy;
    fastcgi_temp_path $WORK/tmp/fastcgi;
    uwsgi_temp_path $WORK/tmp/uwsgi;
    scgi_temp_path $WORK/tmp/scgi;
    default_type application/octet-stream;
    sendfile on;
    keepalive_timeout 10;
    server {
        listen $ADDR:8080;
        root $WORK/www;
    }
}
CONF

bg timeout 200 "${STACK[@]}" nginx -p "$WORK" -e "$WORK/logs/error.log" -c "$WORK/nginx.conf" >"$WORK/nginx.out" 2>&1
srv=$bg_pid
c=(curl -sS -f --max-time 60)
# nginx on the stack cannot be seen by ss: poll it until it answers.
if ! retry 15 timeout 5 "${c[@]}" -o /dev/null "http://$ADDR:8080/index.txt"; then
    fail "nginx never answered on $ADDR:8080"
    cat "$WORK/nginx.out" "$WORK/logs/error.log" 2>/dev/null | tail -n 20 | sed 's/^/         /'
    compat_done
fi
workers=$(pgrep -P "$(cat "$WORK/nginx.pid")" | sort -n | paste -sd, || true)
n=$(tr ',' '\n' <<<"$workers" | grep -c . || true)
same_text "nginx: a master and 2 workers (workers $workers)" 2 "$n"

got=$(timeout 30 "${c[@]}" "http://$ADDR:8080/index.txt" || echo "curl exit $?")
same_text "GET" "nginx master and workers on the shared stack" "$got"
if timeout 90 "${c[@]}" -o "$WORK/big.out" "http://$ADDR:8080/big.bin"; then
    same_file "20 MiB download (sendfile)" "$WORK/www/big.bin" "$WORK/big.out"
else
    fail "20 MiB download: curl exit $?"
fi

timeout 120 ab -q -n 5000 -c 50 -s 20 "http://$ADDR:8080/index.txt" >"$WORK/ab.log" 2>&1 || true
complete=$(awk '/^Complete requests:/ {print $3}' "$WORK/ab.log")
failed=$(awk '/^Failed requests:/ {print $3}' "$WORK/ab.log")
non2xx=$(awk '/^Non-2xx responses:/ {print $3}' "$WORK/ab.log")
if [[ $complete == 5000 && $failed == 0 && -z $non2xx ]]; then
    pass "ab -n 5000 -c 50: 5000/5000 complete, 0 failed ($(awk '/^Requests per second:/ {print $4}' "$WORK/ab.log") requests/s)"
else
    fail "ab -n 5000 -c 50: complete '$complete' failed '$failed' non-2xx '$non2xx'"
    tail -n 30 "$WORK/ab.log" | sed 's/^/         /'
fi

served=$(awk -v a="$PEER" '$1 == a {print $2}' "$WORK/logs/access.log" | sort -u | paste -sd, || true)
k=$(tr ',' '\n' <<<"$served" | grep -c . || true)
if [[ $k -ge 2 ]]; then pass "both workers served ($served)"; else fail "requests served by worker pids '$served' only"; fi
if grep -E '\[(alert|crit|emerg)\]' "$WORK/logs/error.log"; then
    fail "nginx logged alerts"
fi
stop "$srv"
no_leak
compat_done
