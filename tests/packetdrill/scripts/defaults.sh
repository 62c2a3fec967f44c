#!/bin/bash
# The settings ustack's own packetdrill scripts assume, run by each script
# in the throwaway namespace of its run (scripts/packetdrill.sh): Linux's
# defaults for a fresh namespace plus a plain FIFO on tun0, so the kernel
# does not pace (fq would cut its bursts into small pieces).
sysctl -q net.ipv4.tcp_timestamps=1
sysctl -q net.ipv4.tcp_sack=1
sysctl -q net.ipv4.tcp_window_scaling=1
sysctl -q net.ipv4.tcp_congestion_control=cubic
sysctl -q net.ipv4.tcp_slow_start_after_idle=0
sysctl -q net.ipv4.tcp_notsent_lowat=4294967295
tc qdisc add dev tun0 root pfifo
