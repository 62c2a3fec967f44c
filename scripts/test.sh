#!/usr/bin/env bash
# Runs every test: formatting, lints, the Rust unit and integration tests,
# the C tests and the script-level tests. Installs nothing: scripts/setup.sh
# --test installs what the tests need (.ci/run runs both); a test whose tool
# is missing fails naming it (scripts/need.sh).
#
# Builds outside any namespace (cargo may need crates.io), then runs the
# tests inside a private network namespace (see scripts/netns.sh), so tests
# that create TUN devices never touch the machine's own network.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check
step "cargo clippy"
cargo clippy --workspace --all-targets --all-features -- -D warnings
step "build (release: examples and libustack.so; test targets)"
cargo build --release --workspace --all-targets --all-features
cargo test --workspace --all-features --no-run --quiet

exec bash scripts/test-in-netns.sh "$@"
