//! Polling the TCP sockets: the connections that were touched (by an
//! arrival or a call) or whose deadline passed transmit what is due;
//! finished handshakes move to their listener's accept queue; closed
//! orphans are reaped; deadlines are re-indexed and readiness changes
//! recorded. Also builds a segment's IP datagram in the core's output
//! queue.
//!
//! Must not interpret arrivals (`input.rs`) or the application's calls
//! (`app.rs`); what a connection sends is the engine's to decide.

use std::cmp::Reverse;
use std::net::IpAddr;

use super::{ECN_ECT0, Role, Tcp, TcpMut, readiness_of};
use crate::device::Packet;
use crate::stack::{Socket, SocketHandle};
use crate::tcp::{State, TcpRepr};
use crate::time::Instant;
use crate::wire::{IpHeader, IpProtocol};

impl Tcp<'_> {
    /// The earliest TCP deadline (possibly stale: an early wake-up only).
    pub(in crate::stack) fn poll_at(&self) -> Option<Instant> {
        let tables = &self.core.tcp_tables;
        if !tables.touched.is_empty() {
            return Some(Instant::ZERO);
        }
        tables.timers.peek().map(|Reverse((at, _))| *at)
    }
}

impl TcpMut<'_> {
    /// Runs every touched or due connection: transmits, moves finished
    /// handshakes to accept queues, reaps closed orphans, re-indexes
    /// deadlines and records readiness changes.
    pub(in crate::stack) fn poll(&mut self, now: Instant) {
        let core = &mut *self.core;
        while let Some(Reverse((at, h))) = core.tcp_tables.timers.peek().copied() {
            if at > now {
                break;
            }
            core.tcp_tables.timers.pop();
            let Some(Socket::Tcp(s)) = core.sockets.get_mut(h) else {
                continue;
            };
            if s.indexed != Some(at) {
                continue; // stale: a later entry replaced it
            }
            s.indexed = None;
            match s.deadline {
                // Due: forget it, so the next one is indexed even if it is
                // the same instant.
                Some(d) if d <= now => {
                    s.deadline = None;
                    core.tcp_tables.touched.push(h);
                }
                // It moved later since it was indexed: index it now.
                Some(d) => {
                    s.indexed = Some(d);
                    core.tcp_tables.timers.push(Reverse((d, h)));
                }
                None => {}
            }
        }
        let mut touched = std::mem::take(&mut core.tcp_tables.touched);
        touched.sort_unstable();
        touched.dedup();
        let mut segments: Vec<(IpAddr, IpAddr, TcpRepr, Vec<u8>, bool)> = Vec::new();
        for &h in &touched {
            let Some(Socket::Tcp(s)) = core.sockets.get_mut(h) else {
                continue;
            };
            let Role::Conn(c) = &mut s.state else {
                continue;
            };
            let (lip, rip) = (c.local().ip(), c.remote().ip());
            c.poll_transmit_ect(now, |repr, payload, ect| {
                segments.push((lip, rip, *repr, payload.to_vec(), ect));
            });
        }
        for (src, dst, repr, payload, ect) in segments {
            let ecn = if ect { ECN_ECT0 } else { 0 };
            self.send_segment_ecn(src, dst, &repr, &payload, ecn);
        }
        for &h in &touched {
            self.after_poll(h);
        }
        touched.clear();
        // Keep the allocation for the next turn.
        if self.core.tcp_tables.touched.is_empty() {
            self.core.tcp_tables.touched = touched;
        }
    }

    fn after_poll(&mut self, h: SocketHandle) {
        let Some(Socket::Tcp(s)) = self.core.sockets.get_mut(h) else {
            return;
        };
        let Role::Conn(c) = &s.state else { return };
        let closed = c.is_closed();
        let established = c.is_established() || c.state() == State::CloseWait;
        let deadline = c.poll_at();
        let orphan = s.orphan;
        let parent = s.parent;
        // A child of a listener: queue it for accept once established; drop
        // it if its handshake failed.
        if let Some(p) = parent {
            if closed {
                self.release(h);
                return;
            }
            if established
                && let Some(Socket::Tcp(ps)) = self.core.sockets.get_mut(p)
                && let Role::Listening(l) = &mut ps.state
                && let Some(i) = l.pending.iter().position(|x| *x == h)
            {
                l.pending.remove(i);
                l.ready.push_back(h);
                self.core.mark_changed(p);
            }
        }
        if closed && orphan {
            self.release(h);
            return;
        }
        let core = &mut *self.core;
        let Some(Socket::Tcp(s)) = core.sockets.get_mut(h) else {
            return;
        };
        if s.deadline != deadline {
            s.deadline = deadline;
            // Only an earlier deadline needs an entry now; a later one is
            // re-indexed when the live entry pops.
            if let Some(at) = deadline
                && s.indexed.is_none_or(|i| at < i)
            {
                s.indexed = Some(at);
                core.tcp_tables.timers.push(Reverse((at, h)));
            }
        }
        let ready = readiness_of(s);
        if ready != s.last_ready {
            s.last_ready = ready;
            core.mark_changed(h);
        }
    }

    /// Builds and queues one segment. TCP sets DF on IPv4 (RFC 1191 path
    /// MTU discovery), so its segments are never fragmented.
    pub(super) fn send_segment(
        &mut self,
        src: IpAddr,
        dst: IpAddr,
        repr: &TcpRepr,
        payload: &[u8],
    ) {
        self.send_segment_ecn(src, dst, repr, payload, 0);
    }

    /// [`TcpMut::send_segment`] with the IP header's ECN field.
    fn send_segment_ecn(
        &mut self,
        src: IpAddr,
        dst: IpAddr,
        repr: &TcpRepr,
        payload: &[u8],
        ecn: u8,
    ) {
        let core = &mut *self.core;
        let tcp_len = repr.buffer_len(payload.len());
        let header = IpHeader {
            src,
            dst,
            protocol: IpProtocol::Tcp,
            payload_len: tcp_len,
            hop_limit: core.cfg.hop_limit,
            ident: 0,
            dont_frag: true,
            ecn,
        };
        if core.tx.len() >= core.cfg.max_tx_queue {
            core.counters.tx_dropped += 1;
            return;
        }
        // The payload is copied in last, over whatever the buffer held.
        let mut packet: Packet = core.new_packet(header.buffer_len(), payload.len());
        let Ok(n) = header.emit(&mut packet) else {
            return;
        };
        // With TSO (`tcp.tso_max`) a segment beyond the MTU goes to a link
        // that has it cut and checksummed per piece. Without, a data
        // segment carrying SACK blocks can also exceed the MTU (the MSS
        // allows for timestamps only), and must carry its full checksum.
        let emitted = if core.cfg.tcp.tso_max > 0 && packet.len() > core.cfg.mtu {
            repr.emit_partial(&mut packet[n..], src, dst, payload)
        } else {
            repr.emit(&mut packet[n..], src, dst, payload)
        };
        if emitted.is_err() {
            return;
        }
        core.tx.push_back(packet);
    }
}
