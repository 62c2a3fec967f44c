#!/usr/bin/env bash
# The C tests (c-tests/): builds them into c-tests/build/, runs every one in
# kernel mode (both ends on kernel sockets over loopback, which proves the
# test itself), then runs in shim mode those listed in
# c-tests/shim-supported.txt: the subject under libustack.so as 10.77.0.2 /
# fd77::2, its peer on kernel sockets at 10.77.0.1 / fd77::1 on a persistent
# TUN device; and in shim-loopback mode those listed in
# c-tests/shim-loopback-supported.txt: the subject under libustack.so but
# on loopback addresses, which the shim hands to kernel sockets (this
# proves the pass-through); and in shared mode those listed in
# c-tests/shared-supported.txt: as shim mode, but on the shared stack
# (USTACK_SHARED=on: the subject's sockets served by ustackd). Any failure
# of a listed test fails the script.
#
# usage: scripts/tests/ctests.sh [--shim-all] [--kernel-only] [TEST...]
#   TEST...       run only these tests (kernel mode, and shim mode if listed)
#   --shim-all    run every selected test in both shim modes, listed or not
#                 (to see what the shim can do; failures of unlisted tests
#                 are reported but do not fail the script)
#   --kernel-only skip shim mode
# Environment: CTESTS_TIMEOUT (seconds per program, default 30),
# CTESTS_VERBOSE=1 prints every program's output.
source "$(dirname "$0")/../netns.sh"
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/need.sh
need ip gcc make

shim_all=0
kernel_only=0
only=()
for a in "$@"; do
    case "$a" in
        --shim-all) shim_all=1 ;;
        --kernel-only) kernel_only=1 ;;
        -*) echo "ctests: unknown option $a" >&2; exit 2 ;;
        *) only+=("$a") ;;
    esac
done

timeout_s=${CTESTS_TIMEOUT:-30}
lib=${USTACK_LIB:-target/release/libustack.so}
manifest=c-tests/shim-supported.txt
manifest_lo=c-tests/shim-loopback-supported.txt
manifest_shared=c-tests/shared-supported.txt
work=$(mktemp -d)
peer_pid=
cleanup() {
    if [[ -n "$peer_pid" ]]; then kill "$peer_pid" 2>/dev/null || true; fi
    if ip link show ustack0 >/dev/null 2>&1; then ip link del ustack0 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

make -s -C c-tests
read -r -a all_tests <<<"$(make -s -C c-tests list)"
if [[ ${#only[@]} -gt 0 ]]; then
    for t in "${only[@]}"; do
        [[ -x c-tests/build/$t ]] || { echo "ctests: no test named $t" >&2; exit 2; }
    done
    tests=("${only[@]}")
else
    tests=("${all_tests[@]}")
fi

# read_manifest FILE: the test names it lists (one a line; '#' comments).
read_manifest() {
    [[ -f $1 ]] || return 0
    local line
    while read -r line; do
        line=${line%%#*}
        line=${line//[[:space:]]/}
        [[ -n $line ]] || continue
        [[ -x c-tests/build/$line ]] || { echo "ctests: $1 names unknown test '$line'" >&2; exit 2; }
        echo "$line"
    done <"$1"
}
mapfile -t listed < <(read_manifest "$manifest")
mapfile -t listed_lo < <(read_manifest "$manifest_lo")
mapfile -t listed_shared < <(read_manifest "$manifest_shared")
# is_listed MODE TEST
is_listed() {
    local t
    case $1 in
        shim) for t in "${listed[@]}"; do [[ $t == "$2" ]] && return 0; done ;;
        shared) for t in "${listed_shared[@]}"; do [[ $t == "$2" ]] && return 0; done ;;
        *) for t in "${listed_lo[@]}"; do [[ $t == "$2" ]] && return 0; done ;;
    esac
    return 1
}

passed=0
failed=0
xfailed=0
# Every run gets its own 50 ports, so TIME-WAIT from one run never meets
# the next.
next_port=21000

# run MODE TEST: runs the peer and the subject together; both must exit 0.
run() {
    local mode=$1 t=$2 sync="$work/$2.$1"
    mkdir -p "$sync"
    # shim and shim-loopback are the in-process stack; shared the daemon's.
    local shared=off
    [[ $mode == shared ]] && shared=on
    local -a envv=(USTACK_SHARED=$shared CT_SYNC="$sync" CT_PORT=$next_port CT_TIMEOUT="$timeout_s")
    next_port=$((next_port + 50))
    if [[ $mode == shim || $mode == shared ]]; then
        envv+=(CT_ADDR=10.77.0.2 CT_PEER=10.77.0.1 CT_ADDR6=fd77::2 CT_PEER6=fd77::1)
    else # kernel, shim-loopback
        envv+=(CT_ADDR=127.0.0.1 CT_PEER=127.0.0.1 CT_ADDR6=::1 CT_PEER6=::1)
    fi
    local start=$SECONDS
    env "${envv[@]}" timeout -k 2 $((timeout_s + 5)) "c-tests/build/$t" peer >"$sync/peer.log" 2>&1 &
    peer_pid=$!
    local rc=0 prc=0
    if [[ $mode != kernel ]]; then
        env "${envv[@]}" USTACK_LOG="${USTACK_LOG:-warn}" LD_PRELOAD="$PWD/$lib" \
            timeout -k 2 $((timeout_s + 5)) "c-tests/build/$t" subject >"$sync/subject.log" 2>&1 || rc=$?
    else
        env "${envv[@]}" timeout -k 2 $((timeout_s + 5)) "c-tests/build/$t" subject >"$sync/subject.log" 2>&1 || rc=$?
    fi
    # A failed subject leaves the peer waiting for nothing: stop it now.
    if [[ $rc -ne 0 ]]; then kill "$peer_pid" 2>/dev/null || true; fi
    wait "$peer_pid" || prc=$?
    peer_pid=
    local took=$((SECONDS - start))
    if [[ $rc -eq 0 && $prc -eq 0 ]]; then
        echo "PASS $mode $t (${took}s)"
        [[ ${CTESTS_VERBOSE:-0} == 1 ]] && sed 's/^/    /' "$sync/subject.log" "$sync/peer.log"
        return 0
    fi
    echo "FAIL $mode $t (subject exit $rc, peer exit $prc, ${took}s)"
    echo "  subject output:"; tail -n 20 "$sync/subject.log" | sed 's/^/    /'
    echo "  peer output:"; tail -n 20 "$sync/peer.log" | sed 's/^/    /'
    return 1
}

echo "== kernel mode (loopback)"
for t in "${tests[@]}"; do
    if run kernel "$t"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done

shim_tests=()
lo_tests=()
shared_tests=()
if [[ $kernel_only -eq 0 ]]; then
    for t in "${tests[@]}"; do
        if [[ $shim_all -eq 1 ]] || is_listed shim "$t"; then shim_tests+=("$t"); fi
        if [[ $shim_all -eq 1 ]] || is_listed shim-loopback "$t"; then lo_tests+=("$t"); fi
        if [[ $shim_all -eq 1 ]] || is_listed shared "$t"; then shared_tests+=("$t"); fi
    done
fi
# run_shim MODE TEST: a shim-mode run; only a listed test's failure counts.
run_shim() {
    if run "$1" "$2"; then
        passed=$((passed + 1))
    elif is_listed "$1" "$2"; then
        failed=$((failed + 1))
    else
        echo "  (not listed for $1 mode: not counted as a failure)"
        xfailed=$((xfailed + 1))
    fi
}
if [[ $((${#shim_tests[@]} + ${#lo_tests[@]} + ${#shared_tests[@]})) -gt 0 && ! -f $lib ]]; then
    echo "FAIL: $lib is missing (cargo build --release)"
    failed=$((failed + ${#shim_tests[@]} + ${#lo_tests[@]} + ${#shared_tests[@]}))
    shim_tests=()
    lo_tests=()
    shared_tests=()
fi
if [[ ${#lo_tests[@]} -gt 0 ]]; then
    echo "== shim-loopback mode (subject under $lib on 127.0.0.1 / ::1: kernel sockets through the shim)"
    for t in "${lo_tests[@]}"; do run_shim shim-loopback "$t"; done
fi
if [[ ${#shim_tests[@]} -gt 0 ]]; then
    echo "== shim mode (subject under $lib, peer on the kernel side of ustack0)"
    # A persistent device, so the kernel-side peer can bind 10.77.0.1
    # before the subject's stack attaches to the device.
    USTACK_IFNAME=ustack0 bash scripts/ustack --setup >/dev/null
    # The IPv6 peer route is dropped while the device has no carrier (no
    # process attached yet); put it back so the kernel can reach fd77::2.
    ip -6 route replace fd77::2 dev ustack0
    for t in "${shim_tests[@]}"; do run_shim shim "$t"; done
fi
if [[ ${#shared_tests[@]} -gt 0 ]]; then
    echo "== shared mode (subject under $lib with USTACK_SHARED=on: its sockets served by ustackd on ustack0)"
    if ! ip link show ustack0 >/dev/null 2>&1; then
        USTACK_IFNAME=ustack0 bash scripts/ustack --setup >/dev/null
        ip -6 route replace fd77::2 dev ustack0
    fi
    for t in "${shared_tests[@]}"; do run_shim shared "$t"; done
    # The daemon ends about 2 s after the last subject's last socket; the
    # device is deleted only after it has gone.
    daemon=$(dirname "$lib")/ustackd
    for _ in $(seq 100); do
        timeout 5 "$daemon" --status >/dev/null 2>&1 || break
        sleep 0.1
    done
fi

if [[ $xfailed -gt 0 ]]; then echo "($xfailed unlisted shim-mode runs failed)"; fi
echo "ctests: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
