#!/usr/bin/env bash
# Runs packetdrill's TCP scripts against ustack through packetdrill's
# shared-object interface (tests/packetdrill, libustack_packetdrill.so).
#
#   scripts/packetdrill.sh PACKETDRILL_BINARY TCP_SCRIPTS_DIR [SCRIPT...]
#
# PACKETDRILL_BINARY is a packetdrill you built yourself from
# github.com/google/packetdrill (gtests/net/packetdrill: ./configure && make);
# TCP_SCRIPTS_DIR is that checkout's gtests/net/tcp. This script never
# builds packetdrill. The two may also come from $PACKETDRILL and
# $PACKETDRILL_TCP. With no SCRIPT arguments it runs every script listed in
# tests/packetdrill/kernel-passing.txt (those Linux itself passes).
#
# packetdrill runs with the adapter preloaded as well as loaded through
# --so_filename (one library, one stack): the calls packetdrill makes
# itself rather than through the interface, getsockopt(TCP_INFO) for its
# `%{ }%` code events and sendfile, then reach the stack as they would
# under the shim. The adapter takes itself out of LD_PRELOAD at start, so
# the commands a script runs do not inherit it.
#
# Each script runs in this private network namespace (the scripts run shell
# commands such as `sysctl -q net.ipv4...`, which must only ever touch a
# throwaway namespace), with a time limit of $PD_TIMEOUT seconds (default
# 60). $PD_IP=ipv6 runs the IPv6 variant (default ipv4, the list's).
# $PD_REPEAT (default 1) runs each script that many times; it passes
# only if every run does. $PD_LIB uses that adapter instead of building
# target/release/libustack_packetdrill.so. Prints PASS/FAIL per script (and
# the failing run's error lines) and `packetdrill: N/M passed`.
#
# $PD_OWN=1 runs ustack's own scripts instead, tests/packetdrill/scripts
# (every *.pkt there, or the SCRIPTs named); TCP_SCRIPTS_DIR may then be
# left out; a script named NAME-ipv4.pkt or NAME-ipv6.pkt runs only in
# that IP version. $PD_KERNEL=1 runs the scripts against this machine's kernel,
# without the adapter: the oracle a script is proven on before ustack.
#
#   PD_OWN=1 scripts/packetdrill.sh PACKETDRILL_BINARY
#   PD_OWN=1 PD_KERNEL=1 PD_IP=ipv6 scripts/packetdrill.sh PACKETDRILL_BINARY
source "$(dirname "$0")/netns.sh"
set -uo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"

pd="${1:-${PACKETDRILL:-}}"
if [[ "${PD_OWN:-0}" == 1 ]]; then
    # The scripts directory argument is optional here: drop it if given.
    [[ $# -ge 2 && -d "$2" ]] && set -- "$1" "${@:3}"
    set -- "$1" "$repo/tests/packetdrill/scripts" "${@:2}"
fi
tcp="${2:-${PACKETDRILL_TCP:-}}"
if [[ -z "$pd" || -z "$tcp" || ! -x "$pd" || ! -d "$tcp" ]]; then
    echo "usage: $0 PACKETDRILL_BINARY TCP_SCRIPTS_DIR [SCRIPT...]" >&2
    echo "(build packetdrill yourself from github.com/google/packetdrill)" >&2
    exit 2
fi
pd="$(cd "$(dirname "$pd")" && pwd)/$(basename "$pd")"
tcp="$(cd "$tcp" && pwd)"
shift 2 || true

kernel="${PD_KERNEL:-0}"
lib="${PD_LIB:-}"
if [[ "$kernel" == 1 ]]; then
    lib=/dev/null
elif [[ -z "$lib" ]]; then
    (cd "$repo" && cargo build --release --offline -p ustack-packetdrill) || exit 1
    lib="$repo/target/release/libustack_packetdrill.so"
fi
lib="$(cd "$(dirname "$lib")" && pwd)/$(basename "$lib")"

if [[ $# -gt 0 ]]; then
    scripts=("$@")
elif [[ "${PD_OWN:-0}" == 1 ]]; then
    # NAME-ipv4.pkt / NAME-ipv6.pkt expect one IP version's packets.
    other=ipv6
    [[ "${PD_IP:-ipv4}" == ipv6 ]] && other=ipv4
    mapfile -t scripts < <(cd "$tcp" && ls -- *.pkt | grep -v -- "-$other\.pkt\$")
else
    mapfile -t scripts < <(grep -v '^\s*\(#\|$\)' "$repo/tests/packetdrill/kernel-passing.txt")
fi

# The scripts' common defaults end with `tc qdisc add dev tun0 ...`: the
# device packetdrill makes when it tests the kernel. Give each script a
# fresh one here (in this namespace) so the defaults apply as they do for
# the kernel.
# Against the kernel packetdrill makes tun0 itself. For the adapter tun0
# has the link's MTU, which the adapter follows if a script changes it.
fresh_tun0() {
    ip link del tun0 2>/dev/null
    [[ "$kernel" == 1 ]] && return
    ip tuntap add dev tun0 mode tun
    ip link set dev tun0 mtu "$link_mtu"
}

# The addresses and options packetdrill's own run_all.py uses; the stack
# takes the same addresses through --so_flags.
case "${PD_IP:-ipv4}" in
ipv4)
    so_flags="addr=192.168.0.1"
    link_mtu=1500
    ip_args=(--ip_version=ipv4
        --local_ip=192.168.0.1 --remote_ip=192.0.2.1
        --gateway_ip=192.168.0.1 --netmask_ip=255.255.0.0)
    ;;
ipv6)
    so_flags="addr6=fd3d:a0b:17d6::1,mtu=1520"
    link_mtu=1520
    ip_args=(--ip_version=ipv6 --mtu=1520
        --local_ip=fd3d:0a0b:17d6::1 --remote_ip=fd3d:fa7b:d17d::1
        --gateway_ip=fd3d:0a0b:17d6:8888::1)
    ;;
*)
    echo "PD_IP must be ipv4 or ipv6" >&2
    exit 2
    ;;
esac

timeout_s="${PD_TIMEOUT:-60}"
repeat="${PD_REPEAT:-1}"
passed=0
total=0
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
for s in "${scripts[@]}"; do
    total=$((total + 1))
    ok=1
    for ((i = 1; i <= repeat; i++)); do
        fresh_tun0
        (
            cd "$tcp/$(dirname "$s")" || exit 1
            if [[ "$kernel" == 1 ]]; then
                timeout "$timeout_s" "$pd" "${ip_args[@]}" "$(basename "$s")"
            else
                timeout "$timeout_s" env LD_PRELOAD="$lib" USTACK_PD_FLAGS="$so_flags" "$pd" \
                    --so_filename="$lib" --so_flags="$so_flags" "${ip_args[@]}" \
                    --send_omit_free "$(basename "$s")"
            fi
        ) >"$out" 2>&1
        rc=$?
        if [[ $rc -ne 0 ]]; then
            ok=0
            [[ $rc -eq 124 ]] && echo "(timed out after ${timeout_s}s)" >>"$out"
            break
        fi
    done
    if [[ $ok -eq 1 ]]; then
        passed=$((passed + 1))
        echo "PASS $s"
    else
        echo "FAIL $s (run $i)"
        grep -v '^sysctl: ' "$out" | head -n 12 | sed 's/^/    /'
    fi
done
echo "packetdrill: $passed/$total passed"
