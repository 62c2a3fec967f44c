#!/usr/bin/env bash
# The part of scripts/test.sh that runs inside a private network namespace.
source "$(dirname "$0")/netns.sh"
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "cargo test (private network namespace)"
cargo test --workspace --offline --all-features

failed=0
passed=0
for t in scripts/tests/*.sh; do
    [[ -e "$t" ]] || continue
    step "$t"
    if bash "$t"; then
        passed=$((passed + 1))
    else
        echo "FAILED: $t"
        failed=$((failed + 1))
    fi
done
echo
echo "script tests: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
