//! Arriving TCP segments and ICMP errors, demultiplexed: a segment goes to
//! the connection of its 4-tuple (a SYN may take over a TIME-WAIT one, RFC
//! 6191), a SYN to the listener of its destination (a SYN cookie when the
//! SYN queue is full, RFC 4987), an ACK that returns a valid cookie to a
//! connection rebuilt from it, anything else gets an RST. The accept
//! queue holds at most the backlog: an ACK that would complete a handshake
//! beyond it is dropped (the child waits in SYN-RECEIVED), as Linux does.
//!
//! Hands each segment to its connection and files new ones; the only
//! segments sent from here are the answers due at once (the connection's
//! urgent ACK, a cookie SYN-ACK, an RST). Must not touch the inside of a
//! connection, the cookie format, or the timer index (`poll.rs`).

use std::net::SocketAddr;

use super::{ECN_CE, Role, TcpMut, TcpOptionsSet};
use crate::stack::icmp::{ReceivedError, Unreachable};
use crate::stack::{Arrival, Socket, SocketHandle};
use crate::tcp::{Connection, IcmpError, TcpFlags, TcpRepr, rst_for_unmatched};
use crate::time::Instant;

impl TcpMut<'_> {
    /// A segment arrived.
    pub(in crate::stack) fn input(&mut self, now: Instant, arrival: &Arrival<'_>) {
        let parsed = if arrival.verified {
            TcpRepr::parse_segment_verified(arrival.payload)
        } else {
            TcpRepr::parse_segment(arrival.payload, arrival.src, arrival.dst)
        };
        let Ok((repr, payload)) = parsed else {
            self.core.counters.tcp_malformed += 1;
            return;
        };
        let local = SocketAddr::new(arrival.dst, repr.dst_port);
        let remote = SocketAddr::new(arrival.src, repr.src_port);
        if let Some(&h) = self.core.tcp_tables.conns.get(&(local, remote)) {
            let reuse = self.time_wait_reuse(h, &repr);
            if !reuse && self.completes_into_full_accept_queue(h, &repr) {
                // As Linux (inet_csk_complete_hashdance, LISTENOVERFLOWS):
                // the handshake's ACK is dropped and the child stays in
                // SYN-RECEIVED, its SYN-ACK retransmitted, until accept
                // makes room; the accept queue never exceeds the backlog.
                self.core.counters.tcp_listen_overflows += 1;
                return;
            }
            if !reuse {
                let mut ack = None;
                if let Some(Socket::Tcp(s)) = self.core.sockets.get_mut(h)
                    && let Role::Conn(c) = &mut s.state
                {
                    c.on_segment_ce(now, &repr, payload, arrival.ecn == ECN_CE);
                    c.poll_urgent_ack(now, |r, _| ack = Some(*r));
                }
                if let Some(ack) = ack {
                    self.send_segment(local.ip(), remote.ip(), &ack, &[]);
                }
                self.touch(h);
                return;
            }
            // RFC 6191: a new SYN may take over a TIME-WAIT 4-tuple.
            self.release(h);
        }
        if repr.flags.contains(TcpFlags::SYN)
            && !repr.flags.intersects(TcpFlags::ACK | TcpFlags::RST)
            && let Some(l) = self.view().find_listener(local)
        {
            self.syn_to_listener(now, l, local, remote, &repr);
            return;
        }
        if repr.flags.contains(TcpFlags::ACK)
            && !repr.flags.intersects(TcpFlags::SYN | TcpFlags::RST)
            && let Some(l) = self.view().find_listener(local)
            && self.cookie_ack(now, l, local, remote, &repr, payload)
        {
            return;
        }
        self.core.counters.tcp_no_socket += 1;
        if let Some(rst) = rst_for_unmatched(&repr, payload.len()) {
            self.send_segment(local.ip(), remote.ip(), &rst, &[]);
        }
    }

    /// Whether `repr` is an ACK that would complete the handshake of a
    /// listener's child while that listener's accept queue is full.
    fn completes_into_full_accept_queue(&self, h: SocketHandle, repr: &TcpRepr) -> bool {
        if !repr.flags.contains(TcpFlags::ACK)
            || repr.flags.intersects(TcpFlags::SYN | TcpFlags::RST)
        {
            return false;
        }
        let Some(Socket::Tcp(s)) = self.core.sockets.get(h) else {
            return false;
        };
        let (Role::Conn(c), Some(p)) = (&s.state, s.parent) else {
            return false;
        };
        if c.state() != crate::tcp::State::SynReceived {
            return false;
        }
        self.accept_queue_full(p)
    }

    /// Whether listener `l` has `backlog` connections waiting for accept.
    /// Children established in this batch are still in `pending` until the
    /// poll moves them to `ready`: they count as queued.
    fn accept_queue_full(&self, l: SocketHandle) -> bool {
        let Some(Socket::Tcp(ls)) = self.core.sockets.get(l) else {
            return false;
        };
        let Role::Listening(li) = &ls.state else {
            return false;
        };
        // As `poll.rs` decides what moves to `ready`.
        let established = |h: &SocketHandle| {
            matches!(self.core.sockets.get(*h),
                Some(Socket::Tcp(cs)) if matches!(&cs.state,
                    Role::Conn(c) if c.is_established() || c.state() == crate::tcp::State::CloseWait))
        };
        li.ready.len() + li.pending.iter().filter(|h| established(h)).count() >= li.backlog
    }

    /// Whether a SYN for a 4-tuple in TIME-WAIT may start a new connection:
    /// its sequence number is above what the old connection received (RFC
    /// 6191 without timestamps; RFC 9293 section 3.10.7.4 note).
    fn time_wait_reuse(&mut self, h: SocketHandle, repr: &TcpRepr) -> bool {
        if !repr.flags.contains(TcpFlags::SYN)
            || repr.flags.intersects(TcpFlags::ACK | TcpFlags::RST)
        {
            return false;
        }
        match self.core.sockets.get(h) {
            Some(Socket::Tcp(s)) => match &s.state {
                Role::Conn(c) => c.accepts_new_syn(repr),
                _ => false,
            },
            _ => false,
        }
    }

    fn syn_to_listener(
        &mut self,
        now: Instant,
        l: SocketHandle,
        local: SocketAddr,
        remote: SocketAddr,
        syn: &TcpRepr,
    ) {
        // As Linux: both queues are bounded by the backlog.
        let accept_full = self.accept_queue_full(l);
        let (v6, opts, syn_full) = match self.core.sockets.get(l) {
            Some(Socket::Tcp(s)) => match &s.state {
                Role::Listening(li) => (s.v6, s.opts, li.pending.len() >= li.backlog),
                _ => return,
            },
            _ => return,
        };
        if accept_full {
            // Dropping the SYN makes the peer retry, as Linux does when the
            // accept queue overflows.
            self.core.counters.tcp_listen_overflows += 1;
            return;
        }
        if syn_full {
            self.send_cookie(now, l, local, remote, syn, opts);
            return;
        }
        let Ok(child) = self.socket(v6) else {
            self.core.counters.tcp_listen_overflows += 1;
            return;
        };
        let cfg = self.view().config_from(opts, remote.is_ipv6());
        let iss = self.core.tcp_tables.isn.isn(local, remote, now);
        let conn = Connection::accept(cfg, local, remote, syn, iss, now);
        self.adopt_child(l, child, opts, conn);
    }

    /// Files a new connection under its listener's SYN queue.
    fn adopt_child(
        &mut self,
        l: SocketHandle,
        child: SocketHandle,
        opts: TcpOptionsSet,
        conn: Connection,
    ) {
        let key = (conn.local(), conn.remote());
        if let Some(Socket::Tcp(cs)) = self.core.sockets.get_mut(child) {
            cs.opts = opts;
            cs.parent = Some(l);
            cs.state = Role::Conn(Box::new(conn));
        }
        self.core.tcp_tables.conns.insert(key, child);
        if let Some(Socket::Tcp(s)) = self.core.sockets.get_mut(l)
            && let Role::Listening(li) = &mut s.state
        {
            li.pending.push(child);
        }
        self.touch(child);
    }

    /// Answers a SYN with a stateless SYN-ACK whose sequence number is a
    /// cookie (RFC 4987 section 3.6): the SYN queue is full.
    fn send_cookie(
        &mut self,
        now: Instant,
        l: SocketHandle,
        local: SocketAddr,
        remote: SocketAddr,
        syn: &TcpRepr,
        opts: TcpOptionsSet,
    ) {
        let cfg = self.view().config_from(opts, remote.is_ipv6());
        let reply = self
            .core
            .tcp_tables
            .cookies
            .syn_ack(&cfg, local, remote, syn, now);
        self.send_segment(local.ip(), remote.ip(), &reply, &[]);
        self.core.counters.tcp_syncookies_sent += 1;
        if let Some(Socket::Tcp(s)) = self.core.sockets.get_mut(l)
            && let Role::Listening(li) = &mut s.state
        {
            li.cookies_at = Some(now);
        }
    }

    /// An ACK that matches no connection, to a listener that recently sent
    /// cookies: if it returns a valid cookie, the connection is rebuilt
    /// from it; if the accept queue is full, the ACK is dropped (the
    /// client's retransmission or first data tries again), as Linux does.
    /// Returns whether the ACK was taken (no RST is due).
    fn cookie_ack(
        &mut self,
        now: Instant,
        l: SocketHandle,
        local: SocketAddr,
        remote: SocketAddr,
        ack: &TcpRepr,
        payload: &[u8],
    ) -> bool {
        let accept_full = self.accept_queue_full(l);
        let (v6, opts, recent) = match self.core.sockets.get(l) {
            Some(Socket::Tcp(s)) => match &s.state {
                Role::Listening(li) => (
                    s.v6,
                    s.opts,
                    li.cookies_at
                        .is_some_and(|t| now - t <= std::time::Duration::from_secs(128)),
                ),
                _ => return false,
            },
            _ => return false,
        };
        if !recent {
            return false;
        }
        let Some(mss) = self.core.tcp_tables.cookies.check(local, remote, ack, now) else {
            self.core.counters.tcp_syncookies_failed += 1;
            return false;
        };
        if accept_full {
            self.core.counters.tcp_listen_overflows += 1;
            return true;
        }
        let Ok(child) = self.socket(v6) else {
            return true;
        };
        let cfg = self.view().config_from(opts, remote.is_ipv6());
        let mut conn = Connection::accept_cookie(cfg, local, remote, ack, mss, now);
        conn.on_segment(now, ack, payload);
        self.core.counters.tcp_syncookies_ok += 1;
        self.adopt_child(l, child, opts, conn);
        true
    }

    /// An ICMP error about a segment we sent from `local` to `remote`
    /// with sequence number `seq`; ignored unless `seq` is in flight.
    pub(in crate::stack) fn icmp_error(
        &mut self,
        now: Instant,
        err: ReceivedError,
        local: SocketAddr,
        remote: SocketAddr,
        seq: u32,
    ) -> bool {
        let Some(&h) = self.core.tcp_tables.conns.get(&(local, remote)) else {
            return false;
        };
        if let Some(Socket::Tcp(s)) = self.core.sockets.get(h)
            && let Role::Conn(c) = &s.state
            && !c.quotes_in_flight(seq)
        {
            // Linux's OutOfWindowIcmps: forged or stale, ignored.
            self.core.counters.icmp_out_of_window += 1;
            return false;
        }
        let e = match err {
            ReceivedError::Unreachable(Unreachable::Port | Unreachable::Protocol) => {
                IcmpError::PortUnreachable
            }
            ReceivedError::Unreachable(Unreachable::Net) => IcmpError::NetUnreachable,
            ReceivedError::Unreachable(_) => IcmpError::HostUnreachable,
            ReceivedError::PacketTooBig { mtu } => IcmpError::PacketTooBig {
                mtu: u16::try_from(mtu).unwrap_or(u16::MAX),
            },
        };
        if let Some(Socket::Tcp(s)) = self.core.sockets.get_mut(h)
            && let Role::Conn(c) = &mut s.state
        {
            c.on_icmp(now, e);
        }
        self.touch(h);
        true
    }
}
