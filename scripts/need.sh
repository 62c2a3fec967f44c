# shellcheck shell=bash
# The commands the demo and the tests run, the Debian package each comes
# from, and the checks a test makes for them. Sourced by scripts/setup.sh
# (which installs the packages) and by every script test:
#
#   need CMD...  fails the test (exit 1) unless every CMD is installed,
#                naming its package and scripts/setup.sh --test (or
#                $need_hint);
#   want CMD...  for an optional tool: a missing one skips the test, which
#                prints "skipped: CMD not installed (...)" and exits 77;
#                scripts/test-in-netns.sh counts it as skipped, or as failed
#                when USTACK_NO_SKIP=1 (.ci/run sets it).
#
# Commands every Debian system has (bash, coreutils, util-linux's unshare,
# diffutils, grep, sed) are not listed.

declare -A ustack_pkg=(
    [ip]=iproute2 [ss]=iproute2 [ping]=iputils-ping [tcpdump]=tcpdump
    [curl]=curl [python3]=python3 [cc]=gcc [gcc]=gcc [make]=make
    [nc]=netcat-openbsd [socat]=socat [iperf3]=iperf3 [wget]=wget
    [nginx]=nginx [ab]=apache2-utils [redis-server]=redis-server
    [redis-cli]=redis-tools [redis-benchmark]=redis-tools [node]=nodejs
    [ps]=procps [dnsmasq]=dnsmasq-base
    [dig]=bind9-dnsutils [host]=bind9-host [readelf]=binutils
    [rsync]=rsync [ruby]=ruby [git]=git
    [ssh]=openssh-client [ssh-keygen]=openssh-client [sshd]=openssh-server
)
# What scripts/demo.sh runs (cc: the linker cargo calls).
ustack_demo_cmds=(ip ss ping tcpdump curl python3 cc)
# What scripts/test.sh runs besides those.
# Packages no command on PATH stands for: Ruby's WEBrick library and the
# PostgreSQL server (shared-ruby.sh and shared-postgres.sh check them).
ustack_test_pkgs=(ruby-webrick postgresql)
ustack_test_cmds=(gcc make ps nc socat iperf3 wget nginx ab redis-server redis-cli redis-benchmark node dnsmasq dig host readelf ssh ssh-keygen sshd rsync ruby git)

# ustack_missing CMD...: prints each CMD that is not installed, as
# "CMD (Debian package PKG)"; status 1 if any is missing.
ustack_missing() {
    local c rc=0
    for c in "$@"; do
        if ! command -v "$c" >/dev/null 2>&1; then
            echo "$c (Debian package ${ustack_pkg[$c]:-unknown})"
            rc=1
        fi
    done
    return $rc
}

need() {
    local m
    if ! m=$(ustack_missing "$@"); then
        while read -r line; do
            echo "$(basename "$0" .sh): FAIL: $line not installed: run ${need_hint:-scripts/setup.sh --test}" >&2
        done <<<"$m"
        exit 1
    fi
}

want() {
    local m
    if ! m=$(ustack_missing "$@"); then
        while read -r line; do
            echo "$(basename "$0" .sh): skipped: $line not installed: run ${need_hint:-scripts/setup.sh --test}"
        done <<<"$m"
        exit 77
    fi
}
