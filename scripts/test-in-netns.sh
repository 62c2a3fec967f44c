#!/usr/bin/env bash
# The part of scripts/test.sh that runs inside a private network namespace.
#
# Each scripts/tests/*.sh passes (exit 0), fails, or skips: exit 77 after a
# "skipped: ..." line (scripts/need.sh's `want`, for an optional tool that
# is not installed). Skips are counted in the last line,
#   script tests: N passed, N failed, N skipped
# and with USTACK_NO_SKIP=1 (as .ci/run runs it) count as failures.
source "$(dirname "$0")/netns.sh"
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/need.sh

step() { printf '\n==> %s\n' "$*"; }

step "cargo test (private network namespace)"
# The TUN and pcap tests would skip (on stderr, hidden by cargo) without
# these: fail here instead.
[[ -c /dev/net/tun ]] || { echo "FAIL: /dev/net/tun is missing (modprobe tun)" >&2; exit 1; }
need tcpdump
cargo test --workspace --offline --all-features

failed=0
passed=0
skipped=0
for t in scripts/tests/*.sh; do
    [[ -e "$t" ]] || continue
    step "$t"
    rc=0
    bash "$t" || rc=$?
    if [[ $rc -eq 0 ]]; then
        passed=$((passed + 1))
    elif [[ $rc -eq 77 && ${USTACK_NO_SKIP:-0} != 1 ]]; then
        echo "SKIPPED: $t"
        skipped=$((skipped + 1))
    else
        if [[ $rc -eq 77 ]]; then echo "(a skip, counted as a failure: USTACK_NO_SKIP=1)"; fi
        echo "FAILED: $t"
        failed=$((failed + 1))
    fi
done
echo
echo "script tests: $passed passed, $failed failed, $skipped skipped"
[[ $failed -eq 0 ]]
