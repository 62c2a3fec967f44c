#!/usr/bin/env bash
# Installs what ustack needs on a fresh Debian machine (Rust already
# installed), with apt-get update and then apt-get install -y:
#
#   scripts/setup.sh          the packages scripts/demo.sh needs
#   scripts/setup.sh --test   also everything scripts/test.sh needs: a C
#                             compiler and make for c-tests, the programs
#                             the compat tests run (Node.js included), and
#                             rustfmt and clippy (rustup components when
#                             rustup manages the toolchain, else Debian's)
#   scripts/setup.sh --list [--test]   prints the packages, installs nothing
#
# Runs as root, or through sudo when not root. The package of each command
# is in scripts/need.sh; after installing, every command is checked.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/need.sh

test=0
list=0
for a in "$@"; do
    case "$a" in
        --test) test=1 ;;
        --list) list=1 ;;
        -h | --help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "setup.sh: unknown argument $a (see --help)" >&2; exit 2 ;;
    esac
done

cmds=("${ustack_demo_cmds[@]}")
if [[ $test -eq 1 ]]; then cmds+=("${ustack_test_cmds[@]}"); fi
pkgs=()
for c in "${cmds[@]}"; do pkgs+=("${ustack_pkg[$c]}"); done
if [[ $test -eq 1 ]]; then pkgs+=("${ustack_test_pkgs[@]}"); fi
# Rust's formatter and linter for scripts/test.sh, from Debian only when
# no rustup manages the toolchain.
rustup_components=()
if [[ $test -eq 1 ]]; then
    if command -v rustup >/dev/null; then
        rustup_components=(rustfmt clippy)
    else
        cargo fmt --version >/dev/null 2>&1 || pkgs+=(rustfmt)
        cargo clippy --version >/dev/null 2>&1 || pkgs+=(rust-clippy)
    fi
fi
mapfile -t pkgs < <(printf '%s\n' "${pkgs[@]}" | sort -u)

if [[ $list -eq 1 ]]; then
    echo "${pkgs[*]}"
    exit 0
fi

if [[ $(id -u) -eq 0 ]]; then
    as_root=()
elif command -v sudo >/dev/null; then
    as_root=(sudo)
else
    echo "setup.sh: not root and no sudo: run it as root" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update
"${as_root[@]}" apt-get install -y --no-install-recommends "${pkgs[@]}"
if [[ ${#rustup_components[@]} -gt 0 ]]; then
    rustup component add "${rustup_components[@]}"
fi

if ! missing=$(ustack_missing "${cmds[@]}"); then
    echo "setup.sh: still missing after installing: $missing" >&2
    exit 1
fi
if [[ $test -eq 1 ]]; then
    cargo fmt --version >/dev/null && cargo clippy --version >/dev/null
fi
echo "setup.sh: installed ${pkgs[*]}"
