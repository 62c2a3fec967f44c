#!/usr/bin/env bash
# The shared stack (USTACK_SHARED=on): python3's
# socketserver.ForkingTCPServer on the stack (10.77.0.2), a forked child
# per connection serving the socket it inherited. 20 kernel-side clients
# at once each send 1 MiB and read back "PID SHA256"; every hash must
# match, and the replies come from forked children (not the server).
source "$(dirname "$0")/../netns.sh"
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/need.sh
need python3 ip ss
source scripts/compat/lib.sh
source scripts/compat/shared.sh

bg timeout 120 "${STACK[@]}" "$PY" -u scripts/compat/shared_servers.py forking "$ADDR" 7200 >"$WORK/srv.log" 2>&1
srv=$bg_pid
wait_line "$WORK/srv.log" "listening" || { fail "ForkingTCPServer never listening"; compat_done; }
parent=$(awk '/^listening/ {print $2}' "$WORK/srv.log")

if timeout 90 "$PY" scripts/compat/shared_clients.py "$ADDR" 7200 20 $((1024 * 1024)) >"$WORK/cli.log" 2>&1; then
    pass "20 parallel clients, 1 MiB each: $(tail -n 1 "$WORK/cli.log" | cut -d' ' -f1-2) sha256 verified"
else
    fail "20 parallel clients: exit $?"
    sed 's/^/         /' "$WORK/cli.log" | tail -n 25
fi
pids=$(tail -n 1 "$WORK/cli.log" | awk '{print $4}' | tr ',' '\n' | grep -v '^$' || true)
n=$(grep -c . <<<"$pids" || true)
if [[ $n -ge 2 ]] && ! grep -qx "$parent" <<<"$pids"; then
    pass "served by $n forked children (not the server, pid $parent)"
else
    fail "served by pids '$(tr '\n' ' ' <<<"$pids")' (server $parent)"
fi
stop "$srv"
no_leak
compat_done
