# shellcheck shell=bash
# Sourced by every script that needs a TUN device: re-executes the calling
# script inside a network namespace of its own, so nothing it configures or
# sends can reach the machine's own network or another test's. Root uses
# `unshare -n`; anyone else `unshare -rn` (a user namespace owning the new
# network namespace). The namespace starts with only `lo`, and no default
# route is ever added. USTACK_NETNS_OF names the script the current
# namespace was made for; only processes inside it inherit the variable.
if [[ "${USTACK_NETNS_OF:-}" != "$0" ]]; then
    if [[ $(id -u) -eq 0 ]]; then ns_flags=(-n); else ns_flags=(-r -n); fi
    exec unshare "${ns_flags[@]}" -- env USTACK_NETNS_OF="$0" bash "$0" "$@"
fi
ip link set lo up
