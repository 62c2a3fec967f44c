#!/usr/bin/env bash
# Soak: mixed traffic through the stack and its fault injector for MINUTES
# (default 30), one line of figures per minute (examples/soak.rs: bulk both
# ways with every round checked, request/response, connect/close churn
# both ways, UDP, and a spoofed SYN flood the first 10 s of every minute).
# Not part of the test suite. Exits non-zero if a byte was lost or
# corrupted, a TCP call failed, or a socket was left behind at the end.
#
#   scripts/soak.sh [MINUTES]
#
# USTACK_FAULT sets the impairment (default
# loss=0.01,dup=0.005,reorder=0.01,seed=1). Everything runs in a private
# network namespace made here (scripts/netns.sh); the example then moves
# into one more of its own.
set -euo pipefail
minutes="${1:-30}"
[[ "$minutes" =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 [MINUTES]" >&2; exit 2; }
# Built before entering the namespace (cargo may need crates.io).
if [[ -z "${USTACK_NETNS_OF:-}" ]]; then
    (cd "$(dirname "$0")/.." && cargo build --release --quiet --example soak)
fi
source "$(dirname "$0")/netns.sh"
cd "$(dirname "$0")/.."
exec target/release/examples/soak "$minutes"
