#!/usr/bin/env bash
# The README's runnable blocks, run in order as a reader would paste them
# into a fresh network namespace; fails if any command in them fails, or if
# the README has no such block (a README without them proves nothing).
#
# Marker: a line `<!-- readme-test -->` (an HTML comment, invisible when the
# Markdown is rendered), then, after nothing but blank lines, a fenced block
# whose info string is `sh` or `bash`:
#
#     <!-- readme-test -->
#     ```sh
#     scripts/ustack --setup
#     ```
#
# A marker followed by anything else, or a block never closed, fails the
# test. Unmarked blocks are not run.
#
# What a marked block may assume (and nothing more: it is what a reader has
# after the README's setup, build and "namespace of your own" steps):
#   - the current directory is the repository's root;
#   - scripts/setup.sh --test has run and the release build is done
#     (target/release/libustack.so, target/release/examples/*); cargo runs
#     offline (CARGO_NET_OFFLINE=true), so `cargo build --release` or
#     `cargo run --release --example X` only checks what is built;
#   - a fresh private network namespace with only `lo` (up), root in it;
#     no TUN device, no server: a block makes the device
#     (`scripts/ustack --setup`, or a program on the stack) and starts any
#     kernel-side server itself, as the reader must;
#   - all marked blocks run in one bash shell, in README order, with
#     `set -e -o pipefail` and stdin from /dev/null: variables, the working
#     directory and background jobs carry from one block to the next, and
#     every command must succeed (`|| echo ...` for one expected to fail);
#   - each block must end on its own: start servers with `&` (and stop them
#     with `kill $!; wait`); whatever is still running in the namespace
#     when the blocks end is killed; all blocks together get
#     README_TEST_TIMEOUT seconds (default 600).
#
# Environment: README_TEST_FILE, the Markdown file (default README.md).
source "$(dirname "$0")/../netns.sh"
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/need.sh
need ip python3 curl

readme=${README_TEST_FILE:-README.md}
[[ -f $readme ]] || { echo "readme-blocks: FAIL: $readme does not exist"; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Extraction: $work/body.sh holds the blocks, each after one `__blk=N`
# line; $work/map.sh maps body lines to README lines for the error report.
n=0
state=out
line_no=0
body_line=0
marker_at=0
: >"$work/body.sh"
echo "declare -A __at=()" >"$work/map.sh"
while IFS= read -r line || [[ -n $line ]]; do
    line_no=$((line_no + 1))
    case $state in
        out)
            if [[ $line =~ ^[[:space:]]*'<!--'[[:space:]]*readme-test[[:space:]]*'-->'[[:space:]]*$ ]]; then
                state=marker
                marker_at=$line_no
            fi
            ;;
        marker)
            if [[ $line =~ ^[[:space:]]*$ ]]; then
                continue
            elif [[ $line =~ ^'```'(sh|bash)[[:space:]]*$ ]]; then
                n=$((n + 1))
                state=in
                echo "__blk=$n; echo \"== block $n ($readme:$((line_no + 1)))\"" >>"$work/body.sh"
                body_line=$((body_line + 1))
            else
                echo "readme-blocks: FAIL: $readme:$marker_at: the readme-test marker is not followed by a \`\`\`sh block"
                exit 1
            fi
            ;;
        in)
            if [[ $line =~ ^'```'[[:space:]]*$ ]]; then
                state=out
            else
                printf '%s\n' "$line" >>"$work/body.sh"
                body_line=$((body_line + 1))
                echo "__at[$body_line]=$line_no" >>"$work/map.sh"
            fi
            ;;
    esac
done <"$readme"
case $state in
    in) echo "readme-blocks: FAIL: $readme: the last marked block is never closed"; exit 1 ;;
    marker) echo "readme-blocks: FAIL: $readme:$marker_at: the readme-test marker is followed by no block"; exit 1 ;;
esac
if [[ $n -eq 0 ]]; then
    echo "readme-blocks: FAIL: $readme has no block marked <!-- readme-test --> (see $0)"
    exit 1
fi
echo "readme-blocks: $n marked blocks in $readme"

[[ -f target/release/libustack.so ]] || { echo "readme-blocks: FAIL: no release build (cargo build --release --workspace --all-targets)"; exit 1; }

cat >"$work/run.sh" <<EOF
source "$work/map.sh"
set -eE -o pipefail
trap 'echo "readme-blocks: FAIL: block \$__blk, $readme:\${__at[\$LINENO]:-?}: \$BASH_COMMAND (exit \$?)"' ERR
source "$work/body.sh"
EOF
rc=0
CARGO_NET_OFFLINE=true timeout -k 5 "${README_TEST_TIMEOUT:-600}" bash --noprofile --norc "$work/run.sh" </dev/null 2>&1 || rc=$?
if [[ $rc -eq 124 ]]; then echo "readme-blocks: FAIL: the blocks did not end within ${README_TEST_TIMEOUT:-600} s"; fi

# Whatever the blocks left running in this namespace (it is ours alone).
me=$(readlink /proc/self/ns/net)
for p in /proc/[0-9]*; do
    pid=${p#/proc/}
    [[ $pid != "$$" && $(readlink "$p/ns/net" 2>/dev/null) == "$me" ]] || continue
    echo "readme-blocks: still running at the end, killed: $(tr '\0' ' ' <"$p/cmdline" 2>/dev/null)"
    kill "$pid" 2>/dev/null || true
done

if [[ $rc -ne 0 ]]; then
    echo "readme-blocks: FAIL (exit $rc)"
    exit 1
fi
echo "readme-blocks: passed ($n blocks)"
