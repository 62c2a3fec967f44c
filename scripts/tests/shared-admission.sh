#!/usr/bin/env bash
# Who may attach to a shared stack: a daemon run by root admits root and
# the group it is told to (scripts/ustack --daemon --group), nobody else.
#  - root's daemon, no group: a program of another uid (nobody) gets
#    EACCES from socket() and one line naming the daemon's rule and the
#    fix (before: socket() worked and connect() failed with ENETDOWN, with
#    nothing said); the daemon logs the refusal;
#  - the same with USTACK_SHARED=auto: the same refusal (an in-process
#    stack could not have the device either);
#  - root's daemon with --group of nobody's group: the same program is
#    admitted and echoes 1 MiB through a kernel server.
source "$(dirname "$0")/../netns.sh"
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/need.sh
need python3 ip ss socat
[[ $(id -u) -eq 0 ]] || { echo "shared-admission: FAIL: needs root (it runs a program as nobody)" >&2; exit 1; }
source scripts/compat/lib.sh
[[ $COMPAT_MODE == shim ]] || { echo "shared-admission: only meaningful in shim mode (COMPAT_MODE=$COMPAT_MODE): nothing to check"; exit 0; }
source scripts/compat/shared.sh
chmod 755 "$WORK"

probe='
import socket, sys
try:
    s = socket.create_connection((sys.argv[1], 7300), timeout=10)
    data = bytes(range(256)) * 4096
    s.sendall(data); s.shutdown(socket.SHUT_WR)
    got = b""
    while True:
        b = s.recv(65536)
        if not b: break
        got += b
    print("echoed", len(got), got == data)
except OSError as e:
    print("error", e.errno)
'
bg socat TCP4-LISTEN:7300,bind="$PEER",reuseaddr,fork EXEC:cat
wait_tcp_kernel "$PEER" 7300
# Debian's python3 (the one on PATH may be under root's home).
syspy=/usr/bin/python3
[[ -x $syspy ]] || { echo "shared-admission: FAIL: $syspy missing (Debian package python3)" >&2; exit 1; }
as_nobody() { timeout 30 runuser -u nobody -- "${STACK[@]}" USTACK_LOG=warn "$@" "$syspy" -c "$probe" "$PEER" 2>"$WORK/nobody.err"; }
gid=$(id -g nobody)

bg "$USTACKD" --persistent 2>"$WORK/daemon1.log"
d1=$bg_pid
retry 10 daemon_up || fail "root's daemon never answered: $(tail -3 "$WORK/daemon1.log")"
same_text "nobody, root's daemon: socket() fails with EACCES" "error 13" "$(as_nobody)"
if grep -q "the stack daemon admits only root, not uid $(id -u nobody) gid $gid.*--daemon --group $gid" "$WORK/nobody.err"; then
    pass "the program is told why and how to fix it"
else
    fail "no refusal line naming the fix: $(cat "$WORK/nobody.err")"
fi
same_text "with USTACK_SHARED=auto, the same refusal" "error 13" "$(as_nobody USTACK_SHARED=auto)"
grep -q "admits only root" "$WORK/nobody.err" || fail "auto: no refusal line: $(cat "$WORK/nobody.err")"
if grep -q "refused a program .*not uid $(id -u nobody)" "$WORK/daemon1.log"; then
    pass "the daemon logs the refusal"
else
    fail "the daemon did not log the refusal: $(tail -3 "$WORK/daemon1.log")"
fi
same_text "root on the same daemon still works" "echoed 1048576 True" "$(timeout 30 "${STACK[@]}" "$PY" -c "$probe" "$PEER")"
stop "$d1"

bg "$USTACKD" --persistent --group "$gid" 2>"$WORK/daemon2.log"
retry 10 daemon_up || fail "the second daemon never answered: $(tail -3 "$WORK/daemon2.log")"
same_text "nobody, root's daemon with --group $gid: admitted, 1 MiB echoed" "echoed 1048576 True" "$(as_nobody)"
no_leak
compat_done
