//! TCP sockets in the core: binding, listening, the accept queue,
//! demultiplexing segments by 4-tuple to their [`Connection`], RSTs for
//! segments that match nothing, and the timer index that tells the core
//! which connections are due.
//!
//! The engine in `crate::tcp` owns everything inside a connection; this
//! file owns only which connection a segment belongs to, which sockets the
//! application holds, and connections it closed but that still run (FIN
//! handshakes, TIME-WAIT): those are "orphans", reaped when they reach
//! CLOSED.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::icmp::ReceivedError;
use super::{Arrival, Core, Socket, SocketHandle, errno};
use crate::device::Packet;
use crate::tcp::{
    Connection, IcmpError, IsnGenerator, State, SynCookies, TcpConfig, TcpError, TcpFlags, TcpRepr,
    cookie_syn_ack_options, rst_for_unmatched,
};
use crate::time::Instant;
use crate::wire::{IpHeader, IpProtocol};

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
    /// The deadline last put in the timer index for this socket.
    deadline: Option<Instant>,
    /// Readiness as last reported, to notify waiters only on change.
    last_ready: Readiness,
    /// `shutdown(SHUT_RD)`: reads return what is buffered, then 0.
    read_shut: bool,
}

impl TcpSocket {
    pub(crate) fn is_orphan(&self) -> bool {
        self.orphan
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
    bound: HashMap<u16, Vec<SocketHandle>>,
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
            bound: HashMap::new(),
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

fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), addr.port()),
            None => addr,
        },
        IpAddr::V4(_) => addr,
    }
}

fn map_tcp_error(e: TcpError) -> io::Error {
    errno(match e {
        TcpError::ConnectionRefused => libc::ECONNREFUSED,
        TcpError::ConnectionReset => libc::ECONNRESET,
        TcpError::TimedOut => libc::ETIMEDOUT,
        TcpError::HostUnreachable => libc::EHOSTUNREACH,
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
}

impl Core {
    fn tcp(&mut self, h: SocketHandle) -> io::Result<&mut TcpSocket> {
        match self.sockets.get_mut(h) {
            Some(Socket::Tcp(s)) if !s.orphan => Ok(s),
            _ => Err(errno(libc::EBADF)),
        }
    }

    fn conn(&mut self, h: SocketHandle) -> io::Result<&mut Connection> {
        match &mut self.tcp(h)?.state {
            Role::Conn(c) => Ok(c),
            _ => Err(errno(libc::ENOTCONN)),
        }
    }

    /// Opens an unbound TCP socket of the given family.
    pub fn tcp_socket(&mut self, v6: bool) -> io::Result<SocketHandle> {
        self.sockets
            .insert(Socket::Tcp(TcpSocket {
                v6,
                local: None,
                opts: TcpOptionsSet::default(),
                state: Role::Fresh,
                orphan: false,
                parent: None,
                deadline: None,
                last_ready: Readiness::default(),
                read_shut: false,
            }))
            .ok_or_else(|| errno(libc::EMFILE))
    }

    /// The socket's options.
    pub fn tcp_options(&mut self, h: SocketHandle) -> io::Result<TcpOptionsSet> {
        Ok(self.tcp(h)?.opts)
    }

    /// Sets options. Buffer sizes apply to connections made afterwards;
    /// `nodelay` and keepalive also to the current connection.
    pub fn tcp_set_options(&mut self, h: SocketHandle, opts: TcpOptionsSet) -> io::Result<()> {
        if opts.recv_buf == Some(0) || opts.send_buf == Some(0) {
            return Err(errno(libc::EINVAL));
        }
        let s = self.tcp(h)?;
        s.opts = opts;
        if !s.v6 {
            s.opts.v6only = false;
        }
        if let Role::Conn(c) = &mut s.state {
            c.set_nodelay(opts.nodelay);
            c.set_cork(opts.cork);
            c.set_user_timeout(opts.user_timeout);
            c.set_keepalive(opts.keepalive);
        }
        self.tcp_touch(h);
        Ok(())
    }

    /// Sends what the connection holds back (Nagle, a cork, MSG_MORE) at
    /// once, as setting TCP_NODELAY does on Linux; nothing on a socket
    /// that is not connected.
    pub fn tcp_push(&mut self, h: SocketHandle) -> io::Result<()> {
        if let Role::Conn(c) = &mut self.tcp(h)?.state {
            c.push_pending();
        }
        self.tcp_touch(h);
        Ok(())
    }

    /// Binds to `addr` (the unspecified address or one of the stack's; port
    /// 0 picks an ephemeral port).
    pub fn tcp_bind(&mut self, h: SocketHandle, addr: SocketAddr) -> io::Result<()> {
        let (v6, bound, opts) = {
            let s = self.tcp(h)?;
            (s.v6, s.local.is_some(), s.opts)
        };
        if bound {
            return Err(errno(libc::EINVAL));
        }
        self.check_bind_addr(v6, addr)?;
        let port = if addr.port() == 0 {
            self.tcp_pick_port(addr.ip(), v6, opts)?
        } else if self.tcp_port_free(addr.port(), addr.ip(), v6, opts) {
            addr.port()
        } else {
            return Err(errno(libc::EADDRINUSE));
        };
        self.tcp(h)?.local = Some(SocketAddr::new(addr.ip(), port));
        self.tcp_tables.bound.entry(port).or_default().push(h);
        Ok(())
    }

    /// Whether binding `ip:port` conflicts with no bound socket. As Linux:
    /// SO_REUSEADDR on both sides allows it unless one is listening; a
    /// dual-stack `::` overlaps every IPv4 address.
    fn tcp_port_free(&self, port: u16, ip: IpAddr, v6: bool, opts: TcpOptionsSet) -> bool {
        // Connections on the port (accepted ones and TIME-WAIT included)
        // count too, unless SO_REUSEADDR is set (Linux's bind conflict).
        if !opts.reuse_addr
            && self.tcp_tables.conns.keys().any(|(local, _)| {
                local.port() == port
                    && addresses_overlap((ip, v6, opts.v6only), (local.ip(), false, false))
            })
        {
            return false;
        }
        let Some(list) = self.tcp_tables.bound.get(&port) else {
            return true;
        };
        list.iter().all(|&other| {
            let Some(Socket::Tcp(o)) = self.sockets.get(other) else {
                return true;
            };
            let Some(olocal) = o.local else { return true };
            let listening = matches!(o.state, Role::Listening(_));
            if opts.reuse_addr && o.opts.reuse_addr && !listening {
                return true;
            }
            !addresses_overlap((ip, v6, opts.v6only), (olocal.ip(), o.v6, o.opts.v6only))
        })
    }

    fn tcp_pick_port(&mut self, ip: IpAddr, v6: bool, opts: TcpOptionsSet) -> io::Result<u16> {
        self.ephemeral_ports()
            .find(|&port| self.tcp_port_free(port, ip, v6, opts))
            .ok_or_else(|| errno(libc::EADDRNOTAVAIL))
    }

    /// Starts listening, with an accept backlog (at least 1; Linux caps
    /// `somaxconn` at 4096).
    pub fn tcp_listen(&mut self, h: SocketHandle, backlog: usize) -> io::Result<()> {
        let bound = self.tcp(h)?.local.is_some();
        if !bound {
            let any = if self.tcp(h)?.v6 {
                SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), 0)
            } else {
                SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 0)
            };
            self.tcp_bind(h, any)?;
        }
        let backlog = backlog.clamp(1, 4096);
        if matches!(self.tcp(h)?.state, Role::Fresh) && self.tcp_listener_conflict(h) {
            // SO_REUSEADDR lets sockets share a bound port, never a
            // listening one (Linux's inet_csk_get_port at listen time).
            return Err(errno(libc::EADDRINUSE));
        }
        let s = self.tcp(h)?;
        match &mut s.state {
            Role::Fresh => {
                s.state = Role::Listening(Listener {
                    backlog,
                    cookies_at: None,
                    pending: Vec::new(),
                    ready: VecDeque::new(),
                });
                Ok(())
            }
            Role::Listening(l) => {
                l.backlog = backlog;
                Ok(())
            }
            Role::Conn(_) => Err(errno(libc::EINVAL)),
        }
    }

    /// Whether another socket listens on an address `h`'s bind overlaps.
    fn tcp_listener_conflict(&self, h: SocketHandle) -> bool {
        let Some(Socket::Tcp(me)) = self.sockets.get(h) else {
            return false;
        };
        let Some(local) = me.local else { return false };
        let Some(list) = self.tcp_tables.bound.get(&local.port()) else {
            return false;
        };
        list.iter().any(|&other| {
            other != h
                && matches!(self.sockets.get(other), Some(Socket::Tcp(o))
                if !o.orphan
                    && matches!(o.state, Role::Listening(_))
                    && o.local.is_some_and(|ol| addresses_overlap(
                        (local.ip(), me.v6, me.opts.v6only),
                        (ol.ip(), o.v6, o.opts.v6only),
                    )))
        })
    }

    /// Takes an established connection from a listener's queue: `EAGAIN`
    /// when none is waiting, `EINVAL` if not listening.
    pub fn tcp_accept(&mut self, h: SocketHandle) -> io::Result<(SocketHandle, SocketAddr)> {
        let v6 = self.tcp(h)?.v6;
        let child = match &mut self.tcp(h)?.state {
            Role::Listening(l) => l.ready.pop_front().ok_or_else(|| errno(libc::EAGAIN))?,
            _ => return Err(errno(libc::EINVAL)),
        };
        self.mark_tcp_changed(h);
        let s = self.tcp(child)?;
        s.parent = None;
        let remote = match &s.state {
            Role::Conn(c) => c.remote(),
            _ => return Err(errno(libc::ECONNABORTED)),
        };
        Ok((child, present(v6, remote)))
    }

    /// Starts an active open. The connection completes (or fails) later:
    /// watch [`Core::tcp_readiness`] for writable or error, as a
    /// non-blocking `connect` does. `EISCONN` if already connected,
    /// `EALREADY` while a connect is in progress.
    pub fn tcp_connect(
        &mut self,
        now: Instant,
        h: SocketHandle,
        remote: SocketAddr,
    ) -> io::Result<()> {
        let s = self.tcp(h)?;
        let v6 = s.v6;
        match &s.state {
            Role::Conn(c) if c.state() == State::SynSent => return Err(errno(libc::EALREADY)),
            Role::Conn(_) => return Err(errno(libc::EISCONN)),
            Role::Listening(_) => return Err(errno(libc::EINVAL)),
            Role::Fresh => {}
        }
        if remote.is_ipv6() != v6 {
            return Err(errno(libc::EAFNOSUPPORT));
        }
        let remote = canonical(remote);
        if remote.port() == 0 || remote.ip().is_unspecified() {
            return Err(errno(libc::ECONNREFUSED));
        }
        if v6 && remote.is_ipv4() && s.opts.v6only {
            return Err(errno(libc::ENETUNREACH));
        }
        let local_ip: IpAddr = match remote.ip() {
            IpAddr::V4(_) => self.cfg.addr.into(),
            IpAddr::V6(_) => self.cfg.addr6.into(),
        };
        let local = match self.tcp(h)?.local {
            Some(l) => SocketAddr::new(
                if canonical(l).ip().is_unspecified() {
                    local_ip
                } else {
                    canonical(l).ip()
                },
                l.port(),
            ),
            None => {
                let port = self.tcp_pick_connect_port(local_ip, remote)?;
                let bind = if v6 {
                    SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), port)
                } else {
                    SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port)
                };
                self.tcp(h)?.local = Some(bind);
                self.tcp_tables.bound.entry(port).or_default().push(h);
                SocketAddr::new(local_ip, port)
            }
        };
        if local.ip().is_ipv4() != remote.ip().is_ipv4() {
            return Err(errno(libc::ENETUNREACH));
        }
        if self.tcp_tables.conns.contains_key(&(local, remote)) {
            return Err(errno(libc::EADDRNOTAVAIL));
        }
        let opts = self.tcp(h)?.opts;
        let cfg = self.tcp_config_from(opts, remote.is_ipv6());
        let iss = self.tcp_tables.isn.isn(local, remote, now);
        let conn = Connection::connect(cfg, local, remote, iss, now);
        self.tcp(h)?.state = Role::Conn(Box::new(conn));
        self.tcp_tables.conns.insert((local, remote), h);
        self.tcp_touch(h);
        Ok(())
    }

    /// A local port for a connect to `remote` whose 4-tuple is unused (RFC
    /// 6056 algorithm 1 over the whole range).
    fn tcp_pick_connect_port(&mut self, local_ip: IpAddr, remote: SocketAddr) -> io::Result<u16> {
        self.ephemeral_ports()
            .find(|&port| {
                !self
                    .tcp_tables
                    .conns
                    .contains_key(&(SocketAddr::new(local_ip, port), remote))
                    && !self.tcp_tables.bound.contains_key(&port)
            })
            .ok_or_else(|| errno(libc::EADDRNOTAVAIL))
    }

    /// Queues bytes to send: how many were taken (`EAGAIN` when the buffer
    /// is full; `EPIPE` after shutdown; the connection's error if it failed).
    pub fn tcp_send(&mut self, h: SocketHandle, data: &[u8]) -> io::Result<usize> {
        self.tcp_send_more(h, data, false)
    }

    /// `tcp_send` with MSG_MORE when `more`: a partial segment at the end
    /// of `data` waits for more (see [`Connection::send_more`]).
    pub fn tcp_send_more(&mut self, h: SocketHandle, data: &[u8], more: bool) -> io::Result<usize> {
        // Linux (tcp_sendmsg / sk_stream_wait_connect): a socket that never
        // connected, or listens, gives EPIPE; one still connecting waits
        // (EAGAIN) rather than queueing.
        if !matches!(self.tcp(h)?.state, Role::Conn(_)) {
            return Err(errno(libc::EPIPE));
        }
        let c = self.conn(h)?;
        if let Some(e) = c.take_error() {
            return Err(map_tcp_error(e));
        }
        if matches!(c.state(), State::SynSent | State::SynReceived) {
            return Err(errno(libc::EAGAIN));
        }
        let r = match c.send_more(data, more) {
            Ok(0) if !data.is_empty() => Err(errno(libc::EAGAIN)),
            Ok(n) => Ok(n),
            Err(TcpError::NotConnected) if c.state() == State::SynSent => Err(errno(libc::EAGAIN)),
            Err(TcpError::NotConnected) => Err(errno(libc::EPIPE)),
            Err(e) => Err(map_tcp_error(e)),
        };
        self.tcp_touch(h);
        r
    }

    /// Reads (or with `peek`, copies) received bytes: 0 at end of stream,
    /// `EAGAIN` when nothing is there yet.
    pub fn tcp_recv(&mut self, h: SocketHandle, buf: &mut [u8], peek: bool) -> io::Result<usize> {
        let read_shut = self.tcp(h)?.read_shut;
        let c = self.conn(h)?;
        let r = if peek { c.peek(buf) } else { c.recv(buf) };
        let r = match r {
            Ok(n) => Ok(n),
            Err(TcpError::WouldBlock) if c.recv_closed() || read_shut => Ok(0),
            Err(TcpError::WouldBlock) => Err(errno(libc::EAGAIN)),
            Err(e) => {
                // An error is reported once (Linux's sock_error clears
                // sk_err); later reads see the closed connection's EOF.
                if !peek {
                    c.take_error();
                }
                Err(map_tcp_error(e))
            }
        };
        if !peek {
            self.tcp_touch(h);
        }
        r
    }

    /// Shuts down one or both directions.
    pub fn tcp_shutdown(&mut self, h: SocketHandle, how: Shutdown) -> io::Result<()> {
        self.conn(h)?;
        let s = self.tcp(h)?;
        if matches!(how, Shutdown::Read | Shutdown::Both) {
            s.read_shut = true;
        }
        if matches!(how, Shutdown::Write | Shutdown::Both)
            && let Role::Conn(c) = &mut s.state
        {
            c.shutdown_write();
        }
        self.tcp_touch(h);
        Ok(())
    }

    /// Sends RST and drops the connection (SO_LINGER with zero timeout).
    pub fn tcp_abort(&mut self, h: SocketHandle) -> io::Result<()> {
        if let Role::Conn(c) = &mut self.tcp(h)?.state {
            c.abort();
        }
        self.tcp_touch(h);
        Ok(())
    }

    /// Readiness for poll/epoll and blocking waits. Whoever looked is
    /// notified of the next change from what it saw: the reported state
    /// becomes the baseline for change detection, so a change that happens
    /// before the runtime's next turn cannot hide behind a stale baseline.
    pub fn tcp_readiness(&mut self, h: SocketHandle) -> io::Result<Readiness> {
        let s = self.tcp(h)?;
        let r = readiness_of(s);
        s.last_ready = r;
        Ok(r)
    }

    /// A pending error, taken (SO_ERROR).
    pub fn tcp_take_error(&mut self, h: SocketHandle) -> io::Result<Option<io::Error>> {
        match &mut self.tcp(h)?.state {
            Role::Conn(c) => Ok(c.take_error().map(map_tcp_error)),
            _ => Ok(None),
        }
    }

    /// The local address (bound address before connecting; the exact
    /// address after) and the peer, as the socket's family shows them.
    pub fn tcp_addrs(
        &mut self,
        h: SocketHandle,
    ) -> io::Result<(Option<SocketAddr>, Option<SocketAddr>)> {
        let s = self.tcp(h)?;
        let v6 = s.v6;
        Ok(match &s.state {
            Role::Conn(c) => (Some(present(v6, c.local())), Some(present(v6, c.remote()))),
            _ => (s.local, None),
        })
    }

    /// A snapshot of the connection.
    pub fn tcp_info(&mut self, h: SocketHandle) -> io::Result<TcpInfo> {
        let c = self.conn(h)?;
        Ok(TcpInfo {
            state: c.state(),
            mss: c.mss(),
            cwnd: c.cwnd(),
            srtt: c.srtt(),
            rto: c.rto(),
            congestion: c.congestion(),
            send_queue: c.send_queue(),
            recv_queue: c.recv_queue(),
            counters: *c.counters(),
            last_data_in: c.last_data_in(),
            last_ack_in: c.last_ack_in(),
            rttvar: c.rttvar(),
            ca_state: c.ca_state(),
            outstanding: c.outstanding(),
            options: c.options_in_use(),
        })
    }

    /// TCP counters over every connection the stack has had (segments,
    /// retransmits, fast retransmits, RTO expiries, SACK recoveries, RSTs).
    pub fn tcp_counters(&self) -> crate::tcp::Counters {
        let mut total = self.tcp_tables.retired;
        for s in self.sockets.values() {
            if let Socket::Tcp(t) = s
                && let Role::Conn(c) = &t.state
            {
                total += c.counters();
            }
        }
        total
    }

    /// How many closed (orphaned) connections still have data or a FIN
    /// the peer has not acknowledged: the shim keeps the stack running at
    /// process exit until this reaches zero (or `USTACK_LINGER` passes).
    pub fn tcp_lingering(&self) -> usize {
        self.sockets
            .values()
            .filter(|s| match s {
                Socket::Tcp(t) => {
                    t.orphan
                        && matches!(&t.state, Role::Conn(c) if !matches!(
                            c.state(),
                            State::FinWait2 | State::TimeWait | State::Closed
                        ))
                }
                _ => false,
            })
            .count()
    }

    /// Whether the socket is listening.
    pub fn tcp_is_listening(&mut self, h: SocketHandle) -> io::Result<bool> {
        Ok(matches!(self.tcp(h)?.state, Role::Listening(_)))
    }

    /// Closes the application's handle: a connection shuts down gracefully
    /// (or aborts, if unread data remains) and lives on as an orphan until
    /// CLOSED; a listener resets its queued children.
    pub(super) fn tcp_close(&mut self, h: SocketHandle) {
        let Some(Socket::Tcp(s)) = self.sockets.get_mut(h) else {
            return;
        };
        s.orphan = true;
        let abort = s.opts.linger_abort;
        match &mut s.state {
            Role::Conn(c) => {
                if abort {
                    c.abort();
                } else {
                    c.close();
                }
                self.tcp_touch(h);
            }
            Role::Listening(l) => {
                let children: Vec<SocketHandle> =
                    l.pending.drain(..).chain(l.ready.drain(..)).collect();
                for child in children {
                    if let Some(Socket::Tcp(cs)) = self.sockets.get_mut(child) {
                        cs.orphan = true;
                        cs.parent = None;
                        if let Role::Conn(c) = &mut cs.state {
                            c.abort();
                        }
                        self.tcp_touch(child);
                    }
                }
                self.tcp_release(h);
            }
            Role::Fresh => self.tcp_release(h),
        }
    }

    /// Frees a socket's slot and its table entries.
    fn tcp_release(&mut self, h: SocketHandle) {
        if let Some(Socket::Tcp(s)) = self.sockets.remove(h) {
            if let Some(local) = s.local {
                remove_from(&mut self.tcp_tables.bound, local.port(), h);
            }
            if let Role::Conn(c) = &s.state {
                self.tcp_tables.retired += c.counters();
                let key = (c.local(), c.remote());
                if self.tcp_tables.conns.get(&key) == Some(&h) {
                    self.tcp_tables.conns.remove(&key);
                }
            }
            if let Some(p) = s.parent
                && let Some(Socket::Tcp(ps)) = self.sockets.get_mut(p)
                && let Role::Listening(l) = &mut ps.state
            {
                l.pending.retain(|x| *x != h);
                l.ready.retain(|x| *x != h);
            }
        }
    }

    pub(super) fn tcp_touch(&mut self, h: SocketHandle) {
        self.tcp_tables.touched.push(h);
    }

    fn mark_tcp_changed(&mut self, h: SocketHandle) {
        self.mark_changed(h);
    }

    /// A segment arrived.
    pub(super) fn tcp_input(&mut self, now: Instant, arrival: &Arrival<'_>) {
        let parsed = if arrival.verified {
            TcpRepr::parse_segment_verified(arrival.payload)
        } else {
            TcpRepr::parse_segment(arrival.payload, arrival.src, arrival.dst)
        };
        let Ok((repr, payload)) = parsed else {
            self.counters.tcp_malformed += 1;
            return;
        };
        let local = SocketAddr::new(arrival.dst, repr.dst_port);
        let remote = SocketAddr::new(arrival.src, repr.src_port);
        if let Some(&h) = self.tcp_tables.conns.get(&(local, remote)) {
            let reuse = self.tcp_time_wait_reuse(h, &repr);
            if !reuse {
                let mut ack = None;
                if let Some(Socket::Tcp(s)) = self.sockets.get_mut(h)
                    && let Role::Conn(c) = &mut s.state
                {
                    c.on_segment_ce(now, &repr, payload, arrival.ecn == ECN_CE);
                    c.poll_urgent_ack(now, |r, _| ack = Some(*r));
                }
                if let Some(ack) = ack {
                    self.send_tcp_segment(local.ip(), remote.ip(), &ack, &[]);
                }
                self.tcp_touch(h);
                return;
            }
            // RFC 6191: a new SYN may take over a TIME-WAIT 4-tuple.
            self.tcp_release(h);
        }
        if repr.flags.contains(TcpFlags::SYN)
            && !repr.flags.intersects(TcpFlags::ACK | TcpFlags::RST)
            && let Some(l) = self.tcp_find_listener(local)
        {
            self.tcp_syn_to_listener(now, l, local, remote, &repr);
            return;
        }
        if repr.flags.contains(TcpFlags::ACK)
            && !repr.flags.intersects(TcpFlags::SYN | TcpFlags::RST)
            && let Some(l) = self.tcp_find_listener(local)
            && self.tcp_cookie_ack(now, l, local, remote, &repr, payload)
        {
            return;
        }
        self.counters.tcp_no_socket += 1;
        if let Some(rst) = rst_for_unmatched(&repr, payload.len()) {
            self.send_tcp_segment(local.ip(), remote.ip(), &rst, &[]);
        }
    }

    /// Whether a SYN for a 4-tuple in TIME-WAIT may start a new connection:
    /// its sequence number is above what the old connection received (RFC
    /// 6191 without timestamps; RFC 9293 section 3.10.7.4 note).
    fn tcp_time_wait_reuse(&mut self, h: SocketHandle, repr: &TcpRepr) -> bool {
        if !repr.flags.contains(TcpFlags::SYN)
            || repr.flags.intersects(TcpFlags::ACK | TcpFlags::RST)
        {
            return false;
        }
        match self.sockets.get(h) {
            Some(Socket::Tcp(s)) => match &s.state {
                Role::Conn(c) => c.accepts_new_syn(repr),
                _ => false,
            },
            _ => false,
        }
    }

    fn tcp_find_listener(&self, local: SocketAddr) -> Option<SocketHandle> {
        let list = self.tcp_tables.bound.get(&local.port())?;
        let mut best: Option<(u8, SocketHandle)> = None;
        for &h in list {
            let Some(Socket::Tcp(s)) = self.sockets.get(h) else {
                continue;
            };
            if s.orphan || !matches!(s.state, Role::Listening(_)) {
                continue;
            }
            let Some(bound) = s.local else { continue };
            let ok = match (bound.ip(), local.ip()) {
                (IpAddr::V4(b), IpAddr::V4(d)) => b.is_unspecified() || b == d,
                (IpAddr::V6(b), IpAddr::V6(d)) => b.is_unspecified() || b == d,
                (IpAddr::V6(b), IpAddr::V4(d)) => {
                    (b.is_unspecified() && !s.opts.v6only) || b.to_ipv4_mapped() == Some(d)
                }
                _ => false,
            };
            if ok {
                let score = u8::from(!bound.ip().is_unspecified());
                if best.is_none_or(|(s0, _)| score > s0) {
                    best = Some((score, h));
                }
            }
        }
        best.map(|(_, h)| h)
    }

    fn tcp_syn_to_listener(
        &mut self,
        now: Instant,
        l: SocketHandle,
        local: SocketAddr,
        remote: SocketAddr,
        syn: &TcpRepr,
    ) {
        // As Linux: both queues are bounded by the backlog.
        let (v6, opts, accept_full, syn_full) = match self.sockets.get(l) {
            Some(Socket::Tcp(s)) => match &s.state {
                Role::Listening(li) => (
                    s.v6,
                    s.opts,
                    li.ready.len() >= li.backlog,
                    li.pending.len() >= li.backlog,
                ),
                _ => return,
            },
            _ => return,
        };
        if accept_full {
            // Dropping the SYN makes the peer retry, as Linux does when the
            // accept queue overflows.
            self.counters.tcp_listen_overflows += 1;
            return;
        }
        if syn_full {
            self.tcp_send_cookie(now, l, local, remote, syn, opts);
            return;
        }
        let Ok(child) = self.tcp_socket(v6) else {
            self.counters.tcp_listen_overflows += 1;
            return;
        };
        let cfg = self.tcp_config_from(opts, remote.is_ipv6());
        let iss = self.tcp_tables.isn.isn(local, remote, now);
        let conn = Connection::accept(cfg, local, remote, syn, iss, now);
        self.tcp_adopt_child(l, child, opts, conn);
    }

    /// Files a new connection under its listener's SYN queue.
    fn tcp_adopt_child(
        &mut self,
        l: SocketHandle,
        child: SocketHandle,
        opts: TcpOptionsSet,
        conn: Connection,
    ) {
        let key = (conn.local(), conn.remote());
        if let Some(Socket::Tcp(cs)) = self.sockets.get_mut(child) {
            cs.opts = opts;
            cs.parent = Some(l);
            cs.state = Role::Conn(Box::new(conn));
        }
        self.tcp_tables.conns.insert(key, child);
        if let Some(Socket::Tcp(s)) = self.sockets.get_mut(l)
            && let Role::Listening(li) = &mut s.state
        {
            li.pending.push(child);
        }
        self.tcp_touch(child);
    }

    /// Answers a SYN with a stateless SYN-ACK whose sequence number is a
    /// cookie (RFC 4987 section 3.6): the SYN queue is full.
    fn tcp_send_cookie(
        &mut self,
        now: Instant,
        l: SocketHandle,
        local: SocketAddr,
        remote: SocketAddr,
        syn: &TcpRepr,
        opts: TcpOptionsSet,
    ) {
        let cfg = self.tcp_config_from(opts, remote.is_ipv6());
        let cookie = self
            .tcp_tables
            .cookies
            .make(local, remote, syn.seq, syn.options.mss, now);
        let reply = TcpRepr {
            src_port: local.port(),
            dst_port: remote.port(),
            seq: cookie,
            ack: syn.seq.wrapping_add(1),
            flags: TcpFlags::SYN | TcpFlags::ACK,
            window: cfg.recv_buf.min(0xffff) as u16,
            urgent: 0,
            options: cookie_syn_ack_options(&cfg, syn, cookie, now),
        };
        self.send_tcp_segment(local.ip(), remote.ip(), &reply, &[]);
        self.counters.tcp_syncookies_sent += 1;
        if let Some(Socket::Tcp(s)) = self.sockets.get_mut(l)
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
    fn tcp_cookie_ack(
        &mut self,
        now: Instant,
        l: SocketHandle,
        local: SocketAddr,
        remote: SocketAddr,
        ack: &TcpRepr,
        payload: &[u8],
    ) -> bool {
        let (v6, opts, recent, accept_full) = match self.sockets.get(l) {
            Some(Socket::Tcp(s)) => match &s.state {
                Role::Listening(li) => (
                    s.v6,
                    s.opts,
                    li.cookies_at
                        .is_some_and(|t| now - t <= std::time::Duration::from_secs(128)),
                    li.ready.len() >= li.backlog,
                ),
                _ => return false,
            },
            _ => return false,
        };
        if !recent {
            return false;
        }
        let Some(mss) = self.tcp_tables.cookies.check(local, remote, ack, now) else {
            self.counters.tcp_syncookies_failed += 1;
            return false;
        };
        if accept_full {
            self.counters.tcp_listen_overflows += 1;
            return true;
        }
        let Ok(child) = self.tcp_socket(v6) else {
            return true;
        };
        let cfg = self.tcp_config_from(opts, remote.is_ipv6());
        let mut conn = Connection::accept_cookie(cfg, local, remote, ack, mss, now);
        conn.on_segment(now, ack, payload);
        self.counters.tcp_syncookies_ok += 1;
        self.tcp_adopt_child(l, child, opts, conn);
        true
    }

    /// The ECN mode of connections made from now on (what Linux's
    /// `net.ipv4.tcp_ecn` sets for a host).
    pub fn set_tcp_ecn(&mut self, ecn: crate::tcp::Ecn) {
        self.cfg.tcp.ecn = ecn;
    }

    /// The configuration of a new connection: the core's template, the
    /// MSS for the link and family, and the socket's options.
    fn tcp_config_from(&self, opts: TcpOptionsSet, ipv6: bool) -> TcpConfig {
        let mtu = u16::try_from(self.cfg.mtu).unwrap_or(u16::MAX);
        let for_link = TcpConfig::for_mtu(mtu, ipv6);
        let mut cfg = TcpConfig {
            mss: opts.maxseg.map_or(for_link.mss, |m| m.min(for_link.mss)),
            ipv6,
            nodelay: opts.nodelay,
            cork: opts.cork,
            user_timeout: opts.user_timeout.filter(|t| !t.is_zero()),
            keepalive: opts.keepalive,
            ..self.cfg.tcp.clone()
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

    /// An ICMP error about a segment we sent from `local` to `remote`.
    pub(super) fn tcp_icmp_error(
        &mut self,
        now: Instant,
        err: ReceivedError,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> bool {
        let Some(&h) = self.tcp_tables.conns.get(&(local, remote)) else {
            return false;
        };
        let e = match err {
            ReceivedError::Unreachable { errno } if errno == libc::ECONNREFUSED => {
                IcmpError::PortUnreachable
            }
            ReceivedError::Unreachable { .. } => IcmpError::HostUnreachable,
            ReceivedError::PacketTooBig { mtu } => IcmpError::PacketTooBig {
                mtu: u16::try_from(mtu).unwrap_or(u16::MAX),
            },
        };
        if let Some(Socket::Tcp(s)) = self.sockets.get_mut(h)
            && let Role::Conn(c) = &mut s.state
        {
            c.on_icmp(now, e);
        }
        self.tcp_touch(h);
        true
    }

    /// Runs every touched or due connection: transmits, moves finished
    /// handshakes to accept queues, reaps closed orphans, re-indexes
    /// deadlines and records readiness changes.
    pub(super) fn tcp_poll(&mut self, now: Instant) {
        while let Some(Reverse((at, h))) = self.tcp_tables.timers.peek().copied() {
            if at > now {
                break;
            }
            self.tcp_tables.timers.pop();
            if let Some(Socket::Tcp(s)) = self.sockets.get_mut(h)
                && s.deadline == Some(at)
            {
                // Forget the popped deadline, so the next one is indexed
                // even if it is the same instant.
                s.deadline = None;
                self.tcp_tables.touched.push(h);
            }
        }
        let mut touched = std::mem::take(&mut self.tcp_tables.touched);
        touched.sort_unstable();
        touched.dedup();
        let mut segments: Vec<(IpAddr, IpAddr, TcpRepr, Vec<u8>, bool)> = Vec::new();
        for &h in &touched {
            let Some(Socket::Tcp(s)) = self.sockets.get_mut(h) else {
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
            self.send_tcp_segment_ecn(src, dst, &repr, &payload, ecn);
        }
        for &h in &touched {
            self.tcp_after_poll(h);
        }
        touched.clear();
        // Keep the allocation for the next turn.
        if self.tcp_tables.touched.is_empty() {
            self.tcp_tables.touched = touched;
        }
    }

    fn tcp_after_poll(&mut self, h: SocketHandle) {
        let Some(Socket::Tcp(s)) = self.sockets.get_mut(h) else {
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
                self.tcp_release(h);
                return;
            }
            if established
                && let Some(Socket::Tcp(ps)) = self.sockets.get_mut(p)
                && let Role::Listening(l) = &mut ps.state
                && let Some(i) = l.pending.iter().position(|x| *x == h)
            {
                l.pending.remove(i);
                l.ready.push_back(h);
                self.mark_changed(p);
            }
        }
        if closed && orphan {
            self.tcp_release(h);
            return;
        }
        let Some(Socket::Tcp(s)) = self.sockets.get_mut(h) else {
            return;
        };
        if s.deadline != deadline {
            s.deadline = deadline;
            if let Some(at) = deadline {
                self.tcp_tables.timers.push(Reverse((at, h)));
            }
        }
        let ready = readiness_of(s);
        if ready != s.last_ready {
            s.last_ready = ready;
            self.mark_changed(h);
        }
    }

    /// The earliest TCP deadline (possibly stale: an early wake-up only).
    pub(super) fn tcp_poll_at(&self) -> Option<Instant> {
        if !self.tcp_tables.touched.is_empty() {
            return Some(Instant::ZERO);
        }
        self.tcp_tables.timers.peek().map(|Reverse((at, _))| *at)
    }

    /// Builds and queues one segment. TCP sets DF on IPv4 (RFC 1191 path
    /// MTU discovery), so its segments are never fragmented.
    pub(super) fn send_tcp_segment(
        &mut self,
        src: IpAddr,
        dst: IpAddr,
        repr: &TcpRepr,
        payload: &[u8],
    ) {
        self.send_tcp_segment_ecn(src, dst, repr, payload, 0);
    }

    /// [`Core::send_tcp_segment`] with the IP header's ECN field.
    fn send_tcp_segment_ecn(
        &mut self,
        src: IpAddr,
        dst: IpAddr,
        repr: &TcpRepr,
        payload: &[u8],
        ecn: u8,
    ) {
        let tcp_len = repr.buffer_len(payload.len());
        let header = IpHeader {
            src,
            dst,
            protocol: IpProtocol::Tcp,
            payload_len: tcp_len,
            hop_limit: self.cfg.hop_limit,
            ident: 0,
            dont_frag: true,
            ecn,
        };
        if self.tx.len() >= self.cfg.max_tx_queue {
            self.counters.tx_dropped += 1;
            return;
        }
        // The payload is copied in last, over whatever the buffer held.
        let mut packet: Packet = self.new_packet(header.buffer_len(), payload.len());
        let Ok(n) = header.emit(&mut packet) else {
            return;
        };
        // With TSO (`tcp.tso_max`) a segment beyond the MTU goes to a link
        // that has it cut and checksummed per piece. Without, a data
        // segment carrying SACK blocks can also exceed the MTU (the MSS
        // allows for timestamps only), and must carry its full checksum.
        let emitted = if self.cfg.tcp.tso_max > 0 && packet.len() > self.cfg.mtu {
            repr.emit_partial(&mut packet[n..], src, dst, payload)
        } else {
            repr.emit(&mut packet[n..], src, dst, payload)
        };
        if emitted.is_err() {
            return;
        }
        self.tx.push_back(packet);
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

/// An address as a socket of the given family shows it.
fn present(v6: bool, addr: SocketAddr) -> SocketAddr {
    match (v6, addr.ip()) {
        (true, IpAddr::V4(a)) => SocketAddr::new(a.to_ipv6_mapped().into(), addr.port()),
        _ => addr,
    }
}

fn remove_from(map: &mut HashMap<u16, Vec<SocketHandle>>, port: u16, h: SocketHandle) {
    if let Some(list) = map.get_mut(&port) {
        list.retain(|x| *x != h);
        if list.is_empty() {
            map.remove(&port);
        }
    }
}

/// Whether two bind addresses (ip, socket is v6, v6only) claim a common
/// destination.
fn addresses_overlap(a: (IpAddr, bool, bool), b: (IpAddr, bool, bool)) -> bool {
    fn covers_v4(ip: IpAddr, v6: bool, v6only: bool) -> bool {
        !v6 || (!v6only && ip.is_unspecified())
            || matches!(ip, IpAddr::V6(x) if x.to_ipv4_mapped().is_some())
    }
    fn covers_v6(ip: IpAddr, v6: bool) -> bool {
        v6 && !matches!(ip, IpAddr::V6(x) if x.to_ipv4_mapped().is_some())
    }
    let both_v4 = covers_v4(a.0, a.1, a.2) && covers_v4(b.0, b.1, b.2);
    let both_v6 = covers_v6(a.0, a.1) && covers_v6(b.0, b.1);
    if !(both_v4 || both_v6) {
        return false;
    }
    let ca = canonical(SocketAddr::new(a.0, 0)).ip();
    let cb = canonical(SocketAddr::new(b.0, 0)).ip();
    ca.is_unspecified() || cb.is_unspecified() || ca == cb
}
