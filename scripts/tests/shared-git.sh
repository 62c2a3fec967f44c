#!/usr/bin/env bash
# git over git:// on the shared stack, unmodified, both ways round:
#  - git daemon on the stack (it forks and execs upload-pack and
#    receive-pack with the connection on their stdin and stdout); a kernel
#    git clones a repository of 300 commits and pushes 50 more back
#    (before: "fatal: read error: Invalid argument");
#  - git on the stack cloning from a kernel git daemon and pushing to it
#    (the exec'd pack-objects writes the pack straight into the socket,
#    its stdout: before, "sha1 file '<stdout>' write error: Invalid
#    argument").
# Each end's history is compared commit for commit and checked by git fsck.
source "$(dirname "$0")/../netns.sh"
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/need.sh
need python3 ip ss git
source scripts/compat/lib.sh
source scripts/compat/shared.sh

export GIT_AUTHOR_NAME=ustack GIT_AUTHOR_EMAIL=ustack@test GIT_COMMITTER_NAME=ustack GIT_COMMITTER_EMAIL=ustack@test
export GIT_CONFIG_NOSYSTEM=1 HOME=$WORK
git config --global init.defaultBranch main
git config --global protocol.version 2

# commits REPO N TAG: N commits, each changing a few files (one binary).
commits() {
    local i
    for i in $(seq "$2"); do
        head -c $((4096 + i * 37)) /dev/urandom >"$1/blob-$3-$((i % 17)).bin"
        echo "$3 $i" >>"$1/log.txt"
        git -C "$1" add -A
        git -C "$1" commit -qm "$3 commit $i"
    done
}
same_history() { # NAME REPO_A REPO_B
    local a b
    a=$(git -C "$2" rev-parse main 2>&1)
    b=$(git -C "$3" rev-parse main 2>&1)
    if [[ $a == "$b" ]] && git -C "$3" fsck --strict >"$WORK/fsck.log" 2>&1; then
        pass "$1 ($(git -C "$3" rev-list --count main) commits, head ${b:0:12}, fsck clean)"
    else
        fail "$1: heads $a vs $b; $(tail -2 "$WORK/fsck.log")"
    fi
}
daemon_args=(--export-all --enable=receive-pack --reuseaddr --informative-errors)

# 1. git daemon on the stack, a kernel client.
mkdir -p "$WORK/stack-root" && git init -q "$WORK/work" && commits "$WORK/work" 300 base
git clone -q --bare "$WORK/work" "$WORK/stack-root/repo.git"
bg timeout 180 "${STACK[@]}" git daemon "${daemon_args[@]}" --listen="$ADDR" --port=9418 \
    --base-path="$WORK/stack-root" "$WORK/stack-root" 2>"$WORK/stack-daemon.log"
srv=$bg_pid
if retry 10 timeout 5 git ls-remote "git://$ADDR:9418/repo.git" >/dev/null 2>&1; then
    if timeout 120 git clone -q "git://$ADDR:9418/repo.git" "$WORK/clone" 2>"$WORK/cli.err"; then
        same_history "kernel git clones from git daemon on the stack" "$WORK/work" "$WORK/clone"
        commits "$WORK/clone" 50 pushed
        if timeout 120 git -C "$WORK/clone" push -q origin main 2>"$WORK/cli.err"; then
            same_history "kernel git pushes to git daemon on the stack" "$WORK/clone" "$WORK/stack-root/repo.git"
        else
            fail "push to git daemon on the stack: exit $? $(tail -2 "$WORK/cli.err")"
        fi
    else
        fail "clone from git daemon on the stack: exit $? $(tail -2 "$WORK/cli.err")"
    fi
else
    fail "git daemon on the stack never answered: $(tail -3 "$WORK/stack-daemon.log")"
fi
stop "$srv"
if grep -qi "fatal\|error" "$WORK/stack-daemon.log"; then
    fail "git daemon on the stack logged: $(grep -i "fatal\|error" "$WORK/stack-daemon.log" | head -3)"
fi

# 2. A kernel git daemon, git on the stack.
mkdir -p "$WORK/kernel-root"
git clone -q --bare "$WORK/work" "$WORK/kernel-root/repo.git"
bg timeout 180 git daemon "${daemon_args[@]}" --listen="$PEER" --port=9419 \
    --base-path="$WORK/kernel-root" "$WORK/kernel-root" 2>"$WORK/kernel-daemon.log"
ksrv=$bg_pid
wait_tcp_kernel "$PEER" 9419
if timeout 120 "${STACK[@]}" git clone -q "git://$PEER:9419/repo.git" "$WORK/kclone" 2>"$WORK/cli.err"; then
    same_history "git on the stack clones from a kernel git daemon" "$WORK/work" "$WORK/kclone"
    commits "$WORK/kclone" 50 kpushed
    if timeout 120 "${STACK[@]}" git -C "$WORK/kclone" push -q origin main 2>"$WORK/cli.err"; then
        same_history "git on the stack pushes to a kernel git daemon" "$WORK/kclone" "$WORK/kernel-root/repo.git"
    else
        fail "push by git on the stack: exit $? $(tail -2 "$WORK/cli.err")"
    fi
else
    fail "clone by git on the stack: exit $? $(tail -2 "$WORK/cli.err")"
fi
stop "$ksrv"
no_leak
compat_done
