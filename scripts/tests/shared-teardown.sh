#!/usr/bin/env bash
# The shared stack and the device's lifetime: `scripts/ustack --teardown`
# while a daemon still serves the device (a persistent one, with a
# program's socket open on it) stops that daemon at once, and after a
# new `--setup` the next program starts a daemon of its own on the new
# device and reaches a kernel server through it (before this, the old
# daemon kept its control socket and served a deleted device: the next
# curl timed out after 127 s). Shim mode only: it is about the daemon.
source "$(dirname "$0")/../netns.sh"
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/need.sh
need python3 ip ss curl
source scripts/compat/lib.sh
source scripts/compat/shared.sh
[[ $COMPAT_MODE == shim ]] || { echo "$compat_name: shim mode only"; exit 2; }

# A persistent daemon (it would never end by itself) and a program on it
# that keeps a listening socket open.
bg scripts/ustack --daemon
for _ in $(seq 100); do [[ -n $(daemon_pids) ]] && break; sleep 0.05; done
old=$(daemon_pids)
[[ -n $old ]] && pass "a persistent daemon serves the device (pid $old)" || fail "no daemon from --daemon"
bg "${STACK[@]}" "$PY" -c '
import socket, time
s = socket.socket(); s.bind(("", 7250)); s.listen(); time.sleep(60)'
for _ in $(seq 100); do [[ $(daemon_status) == *"sockets 1 "* ]] && break; sleep 0.05; done
same_text "a program holds a socket on it" "sockets 1" "$(daemon_status | cut -d' ' -f1-2)"
start=$SECONDS
scripts/ustack --teardown || fail "--teardown failed"
[[ -z $(daemon_pids) ]] && pass "--teardown stopped it ($((SECONDS - start)) s)" \
    || fail "a daemon still runs after --teardown: $(daemon_pids)"
ss -Hxl | grep -qF "@ustack/ustack0 " && fail "its control socket is still bound" \
    || pass "its control socket is gone"

scripts/ustack --setup >/dev/null
ip -6 route replace fd77::2 dev ustack0
mkdir -p "$WORK/www"
random_file "$WORK/www/one.bin" 1
bg timeout 60 "$PY" -m http.server --bind "$PEER" --directory "$WORK/www" 7251 >/dev/null 2>&1
wait_tcp_kernel "$PEER" 7251 || fail "kernel http.server never listening"
rc=0
timeout 20 "${STACK[@]}" curl -sS -f --max-time 15 -o "$WORK/one.out" "http://$PEER:7251/one.bin" || rc=$?
[[ $rc -eq 0 ]] && cmp -s "$WORK/www/one.bin" "$WORK/one.out" \
    && pass "a new program after --setup: 1 MiB fetched through a new daemon" \
    || fail "a new program after --setup: curl exit $rc"
new=$(daemon_pids)
[[ -n $new && $new != "$old" ]] && pass "the new daemon is another process (pid $new)" \
    || fail "daemon after --setup: '$new' (old: $old)"
no_leak
compat_done
