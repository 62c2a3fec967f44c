#!/usr/bin/env bash
# rsync on the shared stack, unmodified, both ways round:
#  - an rsync daemon on the stack (it forks a child per connection, and
#    the child forks rsync's generator/receiver pair over the socket); a
#    kernel rsync client pulls a tree of 200 files (plus one of 8 MiB)
#    and pushes one back, each verified by diff -r; rsync's own log names
#    the kernel side as its peer (getpeername on the inherited socket:
#    before, "getpeername on fd8 failed");
#  - an rsync client on the stack pulling from a kernel rsyncd (before:
#    the forked receiver spun at 98% CPU and nothing was printed, for
#    ever), then pushing to it.
source "$(dirname "$0")/../netns.sh"
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/need.sh
need python3 ip ss rsync
source scripts/compat/lib.sh
source scripts/compat/shared.sh

# make_tree DIR: 200 small files in 10 directories, one of 8 MiB, a symlink.
make_tree() {
    local d i
    mkdir -p "$1"
    for d in $(seq 10); do
        mkdir -p "$1/d$d"
        for i in $(seq 20); do
            head -c $((RANDOM * 3 + i)) /dev/urandom >"$1/d$d/f$i"
        done
    done
    random_file "$1/big.bin" 8
    ln -s d1/f1 "$1/link"
}
same_tree() { # NAME A B
    if diff -r --no-dereference "$2" "$3" >"$WORK/diff.log" 2>&1; then
        pass "$1 ($(find "$3" -type f | wc -l) files, $(du -sm "$3" | cut -f1) MiB, diff -r clean)"
    else
        fail "$1: $(head -3 "$WORK/diff.log")"
    fi
}
conf() { # FILE ADDR PORT ROOT LOG
    cat >"$1" <<EOF
address = $2
port = $3
use chroot = no
munge symlinks = no
reverse lookup = no
log file = $5
pid file = $1.pid
[data]
    path = $4
    read only = no
    uid = root
    gid = root
EOF
}

# 1. rsyncd on the stack, a kernel client.
make_tree "$WORK/src"
mkdir -p "$WORK/served" "$WORK/pulled"
cp -a "$WORK/src/." "$WORK/served/"
conf "$WORK/stack.conf" "$ADDR" 8730 "$WORK/served" "$WORK/stack-rsyncd.log"
bg timeout 180 "${STACK[@]}" rsync --daemon --no-detach --config="$WORK/stack.conf" 2>"$WORK/stack-rsyncd.err"
srv=$bg_pid
if retry 10 timeout 5 rsync "rsync://$ADDR:8730/" >/dev/null 2>&1; then
    if timeout 120 rsync -a "rsync://$ADDR:8730/data/" "$WORK/pulled/" 2>"$WORK/cli.err"; then
        same_tree "kernel rsync pulls from rsyncd on the stack" "$WORK/src" "$WORK/pulled"
    else
        fail "pull from rsyncd on the stack: exit $? $(tail -2 "$WORK/cli.err")"
    fi
    make_tree "$WORK/up"
    if timeout 120 rsync -a "$WORK/up/" "rsync://$ADDR:8730/data/up/" 2>"$WORK/cli.err"; then
        same_tree "kernel rsync pushes to rsyncd on the stack" "$WORK/up" "$WORK/served/up"
    else
        fail "push to rsyncd on the stack: exit $? $(tail -2 "$WORK/cli.err")"
    fi
    if grep -q "connect from .*($PEER)" "$WORK/stack-rsyncd.log"; then
        pass "rsyncd on the stack logs its peer as $PEER"
    else
        fail "rsyncd's log does not name $PEER: $(tail -3 "$WORK/stack-rsyncd.log")"
    fi
    if grep -qi "failed\|error" "$WORK/stack-rsyncd.log"; then
        fail "rsyncd logged: $(grep -i "failed\|error" "$WORK/stack-rsyncd.log" | head -3)"
    fi
else
    fail "rsyncd on the stack never answered: $(tail -3 "$WORK/stack-rsyncd.err" "$WORK/stack-rsyncd.log" 2>/dev/null)"
fi
stop "$srv"

# 2. A kernel rsyncd, the client on the stack.
mkdir -p "$WORK/kserved" "$WORK/kpulled"
cp -a "$WORK/src/." "$WORK/kserved/"
conf "$WORK/kernel.conf" "$PEER" 8731 "$WORK/kserved" "$WORK/kernel-rsyncd.log"
bg timeout 180 rsync --daemon --no-detach --config="$WORK/kernel.conf"
ksrv=$bg_pid
wait_tcp_kernel "$PEER" 8731
if timeout 120 "${STACK[@]}" rsync -a "rsync://$PEER:8731/data/" "$WORK/kpulled/" 2>"$WORK/cli.err"; then
    same_tree "rsync on the stack pulls from a kernel rsyncd" "$WORK/src" "$WORK/kpulled"
else
    fail "pull by rsync on the stack: exit $? (124: it hung) $(tail -2 "$WORK/cli.err")"
fi
make_tree "$WORK/kup"
if timeout 120 "${STACK[@]}" rsync -a "$WORK/kup/" "rsync://$PEER:8731/data/up/" 2>"$WORK/cli.err"; then
    same_tree "rsync on the stack pushes to a kernel rsyncd" "$WORK/kup" "$WORK/kserved/up"
else
    fail "push by rsync on the stack: exit $? $(tail -2 "$WORK/cli.err")"
fi
if [[ $COMPAT_MODE == shim ]]; then
    if grep -q "connect from .*($ADDR)" "$WORK/kernel-rsyncd.log"; then
        pass "the kernel rsyncd saw the client come from $ADDR"
    else
        fail "the kernel rsyncd's log does not name $ADDR: $(tail -3 "$WORK/kernel-rsyncd.log")"
    fi
fi
stop "$ksrv"
no_leak
compat_done
