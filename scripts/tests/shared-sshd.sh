#!/usr/bin/env bash
# OpenSSH's sshd on the shared stack, unmodified, with a kernel ssh client:
# sshd forks and re-executes itself per connection (the socket crosses
# fork and exec), and its pre-authentication child drops to the sshd user
# inside a chroot, with RLIMIT_NOFILE 1 and a seccomp filter that kills
# any system call it does not expect. 20 MiB each way, verified by
# sha256, and a command's output naming both ends. Before: the child died
# of SIGSYS at its first write, which the shim made as sendto (and an
# inherited socket cost a request to the daemon at its first read).
source "$(dirname "$0")/../netns.sh"
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/need.sh
need python3 ip ssh ssh-keygen sshd
source scripts/compat/lib.sh
source scripts/compat/shared.sh

ssh-keygen -q -t ed25519 -N '' -f "$WORK/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$WORK/client_key"
cp "$WORK/client_key.pub" "$WORK/authorized_keys"
chmod 600 "$WORK/authorized_keys"
cat >"$WORK/sshd_config" <<EOF
ListenAddress $ADDR:2222
HostKey $WORK/host_key
AuthorizedKeysFile $WORK/authorized_keys
PermitRootLogin yes
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PidFile $WORK/sshd.pid
EOF
mkdir -p /run/sshd
bg "${STACK[@]}" "$(command -v sshd)" -D -e -f "$WORK/sshd_config" 2>"$WORK/sshd.log"
ssh_to() {
    timeout 60 ssh -i "$WORK/client_key" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
        -o BatchMode=yes -o ConnectTimeout=10 -o LogLevel=ERROR -p 2222 "root@$ADDR" "$@"
}
retry 10 ssh_to true || fail "sshd never answered: $(tail -5 "$WORK/sshd.log")"

random_file "$WORK/up.bin" 20
start=$(date +%s.%N)
ssh_to "cat > $WORK/up.out" <"$WORK/up.bin" || fail "upload: ssh exit $?"
up=$(python3 -c "import sys; print(f'{20 / (float(sys.argv[2]) - float(sys.argv[1])):.0f}')" "$start" "$(date +%s.%N)")
same_file "20 MiB to sshd on the stack ($up MiB/s)" "$WORK/up.bin" "$WORK/up.out"
start=$(date +%s.%N)
ssh_to "cat $WORK/up.bin" >"$WORK/down.out" || fail "download: ssh exit $?"
down=$(python3 -c "import sys; print(f'{20 / (float(sys.argv[2]) - float(sys.argv[1])):.0f}')" "$start" "$(date +%s.%N)")
same_file "20 MiB from sshd on the stack ($down MiB/s)" "$WORK/up.bin" "$WORK/down.out"
same_text "the session sees both ends" "$PEER $ADDR 2222" "$(ssh_to 'echo $SSH_CONNECTION' | cut -d' ' -f1,3,4)"
if grep -q "SIGSYS\|fatal" "$WORK/sshd.log"; then
    fail "sshd logged: $(grep "SIGSYS\|fatal" "$WORK/sshd.log" | head -3)"
else
    pass "sshd logged no fatal error"
fi
kill "$bg_pid" 2>/dev/null || true
wait "$bg_pid" 2>/dev/null || true
no_leak
compat_done
