//! The core's TCP sockets: a type of their own, reached as
//! [`Core::tcp`] (looking) and [`Core::tcp_mut`] (acting), over the
//! socket table the core shares with UDP.
//!
//! Owns which connection a segment belongs to, which sockets the
//! application holds, listeners and their SYN and accept queues, and
//! connections the application closed but that still run (FIN handshakes,
//! TIME-WAIT): those are "orphans", reaped when they reach CLOSED. By
//! concern:
//!
//! - `mod.rs` (here): the socket and its roles (fresh, listening,
//!   connected), the demultiplexing tables and timer index, the views, and
//!   what every part shares (a connection's configuration, readiness,
//!   releasing a slot).
//! - `app.rs`: the application's calls (open, options, listen, accept,
//!   connect, send, receive, shutdown, close, queries).
//! - `ports.rs`: binding, port choice and bind conflicts (Linux's rules).
//! - `input.rs`: arriving segments by 4-tuple to their connection, SYNs to
//!   listeners (SYN cookies when the SYN queue is full), RSTs for segments
//!   that match nothing, ICMP errors to the connection they concern.
//! - `poll.rs`: running touched and due connections, moving finished
//!   handshakes to accept queues, re-indexing deadlines, and building the
//!   segments' IP datagrams.
//!
//! Must not touch the inside of a connection (the engine in `crate::tcp`
//! owns everything in a TCB, the SYN-cookie format and the SYN-ACK built
//! from one), nor UDP's sockets, nor clocks and devices.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::io;
use std::net::SocketAddr;

use super::socket::{BindAddr, PortTable};
use super::{Core, Socket, SocketHandle, errno};
use crate::tcp::{Connection, IsnGenerator, State, SynCookies, TcpConfig, TcpError};
use crate::time::Instant;

mod app;
mod input;
mod poll;
mod ports;

#[cfg(test)]
mod tests;

/// Options a TCP socket carries before and after it connects.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpOptionsSet {
    /// SO_REUSEADDR: lets two sockets bind the same address and port while
    /// neither listens.
    pub reuse_addr: bool,
    /// IPV6_V6ONLY: an IPv6 socket refuses IPv4-mapped peers and its `::`
    /// bind leaves IPv4 free; ignored on IPv4 sockets.
    pub v6only: bool,
    /// TCP_NODELAY: send small segments at once instead of coalescing them
    /// (Nagle's algorithm, RFC 9293 section 3.7.4).
    pub nodelay: bool,
    /// `SO_RCVBUF` / `SO_SNDBUF` as the application set them (bytes): a
    /// set size is fixed, as in Linux; `None` lets the buffer auto-tune.
    pub recv_buf: Option<usize>,
    /// `SO_SNDBUF` in bytes, as for `recv_buf`.
    pub send_buf: Option<usize>,
    /// SO_KEEPALIVE with its TCP_KEEPIDLE/KEEPINTVL/KEEPCNT parameters;
    /// `None` sends no probes.
    pub keepalive: Option<crate::tcp::Keepalive>,
    /// SO_LINGER with a zero timeout: close sends RST instead of FIN.
    pub linger_abort: bool,
    /// TCP_CONGESTION: `None` uses the stack's default (CUBIC).
    pub congestion: Option<crate::tcp::CongestionAlgorithm>,
    /// TCP_CORK: partial segments wait until the cork is removed (which
    /// sends them), a full segment accumulates, or one RTO passes with
    /// nothing in flight.
    pub cork: bool,
    /// TCP_MAXSEG set before connecting or listening: the MSS advertised
    /// and sent with is at most this (RFC 9293 section 3.7.1 lets the
    /// sender pick a smaller segment size); `None` uses the link's.
    pub maxseg: Option<u16>,
    /// TCP_USER_TIMEOUT (RFC 5482): how long sent data may stay
    /// unacknowledged (or zero-window probes unanswered) before the
    /// connection fails with `ETIMEDOUT`; `None` counts retransmissions.
    pub user_timeout: Option<std::time::Duration>,
    /// TCP_NOTSENT_LOWAT (see `TcpConfig::notsent_lowat`); `None` uses
    /// the stack's (`TcpMut::set_notsent_lowat`, Linux's sysctl).
    pub notsent_lowat: Option<u32>,
}

pub(crate) struct TcpSocket {
    v6: bool,
    /// The bound address, once bound (explicitly or by connect/listen).
    local: Option<SocketAddr>,
    opts: TcpOptionsSet,
    state: Role,
    /// The application closed its handle; the connection runs on until
    /// CLOSED, then the slot is freed.
    orphan: bool,
    /// The listener that accepted this connection and has not handed it to
    /// the application yet.
    parent: Option<SocketHandle>,
    /// The connection's next deadline, as last seen after a poll.
    deadline: Option<Instant>,
    /// The instant of this socket's live entry in the timer index (at
    /// most one is live; others are stale and skipped when popped). A
    /// deadline that moves later keeps the earlier entry, which re-indexes
    /// the socket when it pops: an RTO re-armed by every ACK costs no heap
    /// push.
    indexed: Option<Instant>,
    /// Readiness as last reported, to notify waiters only on change.
    last_ready: Readiness,
    /// `shutdown(SHUT_RD)`: reads return what is buffered, then 0.
    read_shut: bool,
}

impl TcpSocket {
    pub(crate) fn is_orphan(&self) -> bool {
        self.orphan
    }

    /// What the socket's bind claims, once bound.
    fn bind_addr(&self) -> Option<BindAddr> {
        self.local.map(|l| BindAddr {
            ip: l.ip(),
            v6: self.v6,
            v6only: self.opts.v6only,
        })
    }
}

enum Role {
    Fresh,
    Listening(Listener),
    Conn(Box<Connection>),
}

struct Listener {
    backlog: usize,
    /// When this listener last answered with a SYN cookie: ACKs that
    /// match no connection are checked as cookies only for a while after.
    cookies_at: Option<Instant>,
    /// Children still in SYN-RECEIVED.
    pending: Vec<SocketHandle>,
    /// Children established and waiting for `accept`.
    ready: VecDeque<SocketHandle>,
}

/// What a waiter may care about; compared before and after each event.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Readiness {
    /// `recv`/`accept` would not block.
    pub readable: bool,
    /// `send` would not block (or a connect finished).
    pub writable: bool,
    /// The peer closed its side (EPOLLRDHUP).
    pub read_closed: bool,
    /// Both directions are finished (POLLHUP).
    pub hangup: bool,
    /// An error is pending (POLLERR).
    pub error: bool,
}

/// Demultiplexing tables and the timer index.
pub(crate) struct TcpTables {
    conns: HashMap<(SocketAddr, SocketAddr), SocketHandle>,
    /// Port -> listeners and bound-but-unconnected sockets on it.
    bound: PortTable,
    timers: BinaryHeap<Reverse<(Instant, SocketHandle)>>,
    /// Connections to poll on the next `poll_transmit`.
    touched: Vec<SocketHandle>,
    isn: IsnGenerator,
    cookies: SynCookies,
    /// Counters of connections already released.
    retired: crate::tcp::Counters,
}

impl TcpTables {
    pub(crate) fn new(isn_secret: u128, cookie_secret: u128) -> TcpTables {
        TcpTables {
            conns: HashMap::new(),
            bound: PortTable::default(),
            timers: BinaryHeap::new(),
            touched: Vec::new(),
            isn: IsnGenerator::with_secret(isn_secret),
            cookies: SynCookies::new(cookie_secret),
            retired: crate::tcp::Counters::default(),
        }
    }
}

/// ECN codepoints of the IP header (RFC 3168 section 5).
const ECN_ECT0: u8 = 2;
const ECN_CE: u8 = 3;

fn map_tcp_error(e: TcpError) -> io::Error {
    errno(match e {
        TcpError::ConnectionRefused => libc::ECONNREFUSED,
        TcpError::ConnectionReset => libc::ECONNRESET,
        TcpError::TimedOut => libc::ETIMEDOUT,
        TcpError::HostUnreachable => libc::EHOSTUNREACH,
        TcpError::NetUnreachable => libc::ENETUNREACH,
        TcpError::WouldBlock => libc::EAGAIN,
        TcpError::NotConnected => libc::ENOTCONN,
    })
}

/// How to shut a connection down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shutdown {
    /// No more receiving: reads return what is buffered, then end of
    /// stream (0) instead of waiting. Nothing is sent to the peer.
    Read,
    /// No more sending: a FIN follows the data already written.
    Write,
    /// Both.
    Both,
}

/// A snapshot of a connection for `TCP_INFO`-like queries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpInfo {
    /// The RFC 9293 state.
    pub state: State,
    /// The sender MSS in bytes (payload of a full segment).
    pub mss: u32,
    /// The congestion window in bytes.
    pub cwnd: u32,
    /// Smoothed round-trip time, once measured.
    pub srtt: Option<std::time::Duration>,
    /// The retransmission timeout now in force.
    pub rto: std::time::Duration,
    /// The congestion control algorithm in use.
    pub congestion: crate::tcp::CongestionAlgorithm,
    /// Bytes queued and not yet acknowledged (SIOCOUTQ).
    pub send_queue: usize,
    /// Bytes received and not yet read (FIONREAD).
    pub recv_queue: usize,
    /// Segment, byte, retransmission and RST counts.
    pub counters: crate::tcp::Counters,
    /// When data last arrived (the handshake's completion if none has).
    pub last_data_in: Option<Instant>,
    /// When the peer last sent an ACK.
    pub last_ack_in: Instant,
    /// RTTVAR, once measured.
    pub rttvar: Option<std::time::Duration>,
    /// The sender's state in Linux's terms (`tcpi_ca_state`).
    pub ca_state: crate::tcp::CaState,
    /// What is outstanding, in segments (`tcpi_unacked`, `tcpi_sacked`,
    /// `tcpi_lost`, `tcpi_retrans`).
    pub outstanding: crate::tcp::Outstanding,
    /// The options agreed in the handshake (timestamps, SACK, window
    /// scaling, ECN).
    pub options: crate::tcp::OptionsInUse,
    /// Send-time accounting (TCP_INFO's tcpi_busy_time, tcpi_rwnd_limited).
    pub chrono: crate::tcp::Chrono,
}

/// The core's TCP sockets, for looking ([`Core::tcp`]).
pub struct Tcp<'a> {
    core: &'a Core,
}

/// The core's TCP sockets, for acting ([`Core::tcp_mut`]).
pub struct TcpMut<'a> {
    core: &'a mut Core,
}

impl Core {
    /// The TCP sockets, for queries that change nothing.
    pub fn tcp(&self) -> Tcp<'_> {
        Tcp { core: self }
    }

    /// The TCP sockets, for the calls that act on them.
    pub fn tcp_mut(&mut self) -> TcpMut<'_> {
        TcpMut { core: self }
    }
}

impl<'a> Tcp<'a> {
    /// A socket the application holds (`EBADF` for anything else).
    fn get(&self, h: SocketHandle) -> io::Result<&'a TcpSocket> {
        match self.core.sockets.get(h) {
            Some(Socket::Tcp(s)) if !s.orphan => Ok(s),
            _ => Err(errno(libc::EBADF)),
        }
    }

    /// A held socket's connection (`ENOTCONN` if it has none).
    fn conn(&self, h: SocketHandle) -> io::Result<&'a Connection> {
        match &self.get(h)?.state {
            Role::Conn(c) => Ok(c),
            _ => Err(errno(libc::ENOTCONN)),
        }
    }

    /// The configuration of a new connection: the core's template, the
    /// MSS for the link and family, and the socket's options.
    fn config_from(&self, opts: TcpOptionsSet, ipv6: bool) -> TcpConfig {
        let mtu = u16::try_from(self.core.cfg.mtu).unwrap_or(u16::MAX);
        let for_link = TcpConfig::for_mtu(mtu, ipv6);
        let mut cfg = TcpConfig {
            mss: opts.maxseg.map_or(for_link.mss, |m| m.min(for_link.mss)),
            ipv6,
            nodelay: opts.nodelay,
            cork: opts.cork,
            user_timeout: opts.user_timeout.filter(|t| !t.is_zero()),
            keepalive: opts.keepalive,
            notsent_lowat: opts.notsent_lowat.or(self.core.cfg.tcp.notsent_lowat),
            ..self.core.cfg.tcp.clone()
        };
        if let Some(cc) = opts.congestion {
            cfg.congestion = cc;
        }
        if let Some(n) = opts.recv_buf {
            cfg.recv_buf = n;
            cfg.recv_buf_max = 0;
        }
        if let Some(n) = opts.send_buf {
            cfg.send_buf = n;
            cfg.send_buf_max = 0;
        }
        cfg
    }
}

impl TcpMut<'_> {
    /// The same sockets, for looking.
    pub fn view(&self) -> Tcp<'_> {
        Tcp { core: self.core }
    }

    /// A socket the application holds (`EBADF` for anything else).
    fn get_mut(&mut self, h: SocketHandle) -> io::Result<&mut TcpSocket> {
        match self.core.sockets.get_mut(h) {
            Some(Socket::Tcp(s)) if !s.orphan => Ok(s),
            _ => Err(errno(libc::EBADF)),
        }
    }

    /// A held socket's connection (`ENOTCONN` if it has none).
    fn conn_mut(&mut self, h: SocketHandle) -> io::Result<&mut Connection> {
        match &mut self.get_mut(h)?.state {
            Role::Conn(c) => Ok(c),
            _ => Err(errno(libc::ENOTCONN)),
        }
    }

    /// Marks a socket to be polled on the next `poll_transmit`.
    pub(in crate::stack) fn touch(&mut self, h: SocketHandle) {
        self.core.tcp_tables.touched.push(h);
    }

    /// Frees a socket's slot and its table entries.
    fn release(&mut self, h: SocketHandle) {
        let core = &mut *self.core;
        if let Some(Socket::Tcp(s)) = core.sockets.remove(h) {
            if let Some(local) = s.local {
                core.tcp_tables.bound.remove(local.port(), h);
            }
            if let Role::Conn(c) = &s.state {
                core.tcp_tables.retired += c.counters();
                let key = (c.local(), c.remote());
                if core.tcp_tables.conns.get(&key) == Some(&h) {
                    core.tcp_tables.conns.remove(&key);
                }
            }
            if let Some(p) = s.parent
                && let Some(Socket::Tcp(ps)) = core.sockets.get_mut(p)
                && let Role::Listening(l) = &mut ps.state
            {
                l.pending.retain(|x| *x != h);
                l.ready.retain(|x| *x != h);
            }
        }
    }
}

fn readiness_of(s: &TcpSocket) -> Readiness {
    match &s.state {
        Role::Fresh => Readiness {
            writable: false,
            hangup: true,
            ..Readiness::default()
        },
        Role::Listening(l) => Readiness {
            readable: !l.ready.is_empty(),
            ..Readiness::default()
        },
        Role::Conn(c) => {
            let state = c.state();
            let connecting = matches!(state, State::SynSent | State::SynReceived);
            // As Linux's tcp_poll: RDHUP once reading is shut (our SHUT_RD
            // or the peer's FIN), HUP once both directions are.
            let read_closed = c.recv_closed() || s.read_shut;
            Readiness {
                readable: c.can_recv() || read_closed || (!connecting && c.is_closed()),
                // Linux reports a connecting socket unwritable until the
                // handshake completes; that is how connect's end is seen.
                writable: (!connecting && (c.can_send() || c.is_closed())) || c.has_error(),
                read_closed,
                hangup: c.is_closed() || (read_closed && c.send_closed()),
                error: c.has_error(),
            }
        }
    }
}
