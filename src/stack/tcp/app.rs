//! The application's calls on TCP sockets: opening, options, listening,
//! accepting, connecting, sending, receiving, shutting down, closing, and
//! the queries (addresses, readiness, errors, `TCP_INFO`, counters).
//!
//! Each call acts on the socket and the connection it holds, and marks the
//! socket touched so the next poll transmits what the call made due; it
//! sends nothing itself. Must not touch the demultiplexing of arrivals
//! (`input.rs`) or the timer index (`poll.rs`).

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::{
    Listener, Readiness, Role, Shutdown, Tcp, TcpInfo, TcpMut, TcpOptionsSet, TcpSocket,
    map_tcp_error, readiness_of,
};
use crate::stack::socket::{canonical, canonical_addr, present};
use crate::stack::{Socket, SocketHandle, errno};
use crate::tcp::{Connection, State, TcpError};
use crate::time::Instant;

impl Tcp<'_> {
    /// The socket's options.
    pub fn options(&self, h: SocketHandle) -> io::Result<TcpOptionsSet> {
        Ok(self.get(h)?.opts)
    }

    /// The local address (bound address before connecting; the exact
    /// address after) and the peer, as the socket's family shows them.
    pub fn addrs(&self, h: SocketHandle) -> io::Result<(Option<SocketAddr>, Option<SocketAddr>)> {
        let s = self.get(h)?;
        let v6 = s.v6;
        Ok(match &s.state {
            Role::Conn(c) => (Some(present(v6, c.local())), Some(present(v6, c.remote()))),
            _ => (s.local, None),
        })
    }

    /// A snapshot of the connection.
    pub fn info(&self, h: SocketHandle) -> io::Result<TcpInfo> {
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
            chrono: c.chrono(),
        })
    }

    /// TCP_CM_INQ's count (see [`Connection::inq`]); 0 for a socket that
    /// is no connection.
    pub fn inq(&self, h: SocketHandle) -> io::Result<usize> {
        Ok(match &self.get(h)?.state {
            Role::Conn(c) => c.inq(),
            _ => 0,
        })
    }

    /// Whether the socket is listening.
    pub fn is_listening(&self, h: SocketHandle) -> io::Result<bool> {
        Ok(matches!(self.get(h)?.state, Role::Listening(_)))
    }

    /// TCP counters over every connection the stack has had (segments,
    /// retransmits, fast retransmits, RTO expiries, SACK recoveries, RSTs).
    pub fn counters(&self) -> crate::tcp::Counters {
        let mut total = self.core.tcp_tables.retired;
        for s in self.core.sockets.values() {
            if let Socket::Tcp(t) = s
                && let Role::Conn(c) = &t.state
            {
                total += c.counters();
            }
        }
        total
    }

    /// How many TCP connections are in each state (listeners and sockets
    /// never connected are not connections), in the order of [`State`]:
    /// for status output and for tests that check nothing is left behind.
    pub fn states(&self) -> Vec<(State, usize)> {
        let mut counts: Vec<(State, usize)> = Vec::new();
        for s in self.core.sockets.values() {
            if let Socket::Tcp(t) = s
                && let Role::Conn(c) = &t.state
            {
                match counts.iter_mut().find(|(st, _)| *st == c.state()) {
                    Some((_, n)) => *n += 1,
                    None => counts.push((c.state(), 1)),
                }
            }
        }
        counts.sort_by_key(|(st, _)| *st as u8);
        counts
    }

    /// How many closed (orphaned) connections still have data or a FIN
    /// the peer has not acknowledged: the shim keeps the stack running at
    /// process exit until this reaches zero (or `USTACK_LINGER` passes).
    pub fn lingering(&self) -> usize {
        self.core
            .sockets
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
}

impl TcpMut<'_> {
    /// Opens an unbound TCP socket of the given family.
    pub fn socket(&mut self, v6: bool) -> io::Result<SocketHandle> {
        self.core
            .sockets
            .insert(Socket::Tcp(TcpSocket {
                v6,
                local: None,
                opts: TcpOptionsSet::default(),
                state: Role::Fresh,
                orphan: false,
                parent: None,
                deadline: None,
                indexed: None,
                last_ready: Readiness::default(),
                read_shut: false,
            }))
            .ok_or_else(|| errno(libc::EMFILE))
    }

    /// The ECN mode of connections made from now on (what Linux's
    /// `net.ipv4.tcp_ecn` sets for a host).
    pub fn set_ecn(&mut self, ecn: crate::tcp::Ecn) {
        self.core.cfg.tcp.ecn = ecn;
    }

    /// Which options SYNs offer from now on: timestamps (RFC 7323 section
    /// 3), SACK (RFC 2018) and window scaling (RFC 7323 section 2), as
    /// Linux's `net.ipv4.tcp_timestamps`, `tcp_sack` and
    /// `tcp_window_scaling` set them for a host.
    pub fn set_syn_options(&mut self, timestamps: bool, sack: bool, window_scaling: bool) {
        let t = &mut self.core.cfg.tcp;
        t.timestamps = timestamps;
        t.sack = sack;
        t.window_scaling = window_scaling;
    }

    /// The TCP_NOTSENT_LOWAT of sockets that set none, from now on (what
    /// Linux's `net.ipv4.tcp_notsent_lowat` sets for a host; `None` is
    /// its default, no limit).
    pub fn set_notsent_lowat(&mut self, lowat: Option<u32>) {
        self.core.cfg.tcp.notsent_lowat = lowat;
    }

    /// Sets options. Buffer sizes apply to connections made afterwards;
    /// `nodelay` and keepalive also to the current connection.
    pub fn set_options(&mut self, h: SocketHandle, opts: TcpOptionsSet) -> io::Result<()> {
        if opts.recv_buf == Some(0) || opts.send_buf == Some(0) {
            return Err(errno(libc::EINVAL));
        }
        let default_lowat = self.core.cfg.tcp.notsent_lowat;
        let s = self.get_mut(h)?;
        s.opts = opts;
        if !s.v6 {
            s.opts.v6only = false;
        }
        if let Role::Conn(c) = &mut s.state {
            c.set_nodelay(opts.nodelay);
            c.set_cork(opts.cork);
            c.set_user_timeout(opts.user_timeout);
            c.set_keepalive(opts.keepalive);
            c.set_notsent_lowat(opts.notsent_lowat.or(default_lowat));
        }
        self.touch(h);
        Ok(())
    }

    /// Sends what the connection holds back (Nagle, a cork, MSG_MORE) at
    /// once, as setting TCP_NODELAY does on Linux; nothing on a socket
    /// that is not connected.
    pub fn push(&mut self, h: SocketHandle) -> io::Result<()> {
        if let Role::Conn(c) = &mut self.get_mut(h)?.state {
            c.push_pending();
        }
        self.touch(h);
        Ok(())
    }

    /// Starts listening, with an accept backlog (at least 1; Linux caps
    /// `somaxconn` at 4096).
    pub fn listen(&mut self, h: SocketHandle, backlog: usize) -> io::Result<()> {
        let bound = self.get_mut(h)?.local.is_some();
        if !bound {
            let any = if self.get_mut(h)?.v6 {
                SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), 0)
            } else {
                SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 0)
            };
            self.bind(h, any)?;
        }
        let backlog = backlog.clamp(1, 4096);
        if matches!(self.get_mut(h)?.state, Role::Fresh) && self.view().listener_conflict(h) {
            // SO_REUSEADDR lets sockets share a bound port, never a
            // listening one (Linux's inet_csk_get_port at listen time).
            return Err(errno(libc::EADDRINUSE));
        }
        let s = self.get_mut(h)?;
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

    /// Takes an established connection from a listener's queue: `EAGAIN`
    /// when none is waiting, `EINVAL` if not listening.
    pub fn accept(&mut self, h: SocketHandle) -> io::Result<(SocketHandle, SocketAddr)> {
        let v6 = self.get_mut(h)?.v6;
        let child = match &mut self.get_mut(h)?.state {
            Role::Listening(l) => l.ready.pop_front().ok_or_else(|| errno(libc::EAGAIN))?,
            _ => return Err(errno(libc::EINVAL)),
        };
        self.core.mark_changed(h);
        let s = self.get_mut(child)?;
        s.parent = None;
        let remote = match &s.state {
            Role::Conn(c) => c.remote(),
            _ => return Err(errno(libc::ECONNABORTED)),
        };
        Ok((child, present(v6, remote)))
    }

    /// Starts an active open. The connection completes (or fails) later:
    /// watch [`TcpMut::readiness`] for writable or error, as a
    /// non-blocking `connect` does. `EISCONN` if already connected,
    /// `EALREADY` while a connect is in progress.
    pub fn connect(&mut self, now: Instant, h: SocketHandle, remote: SocketAddr) -> io::Result<()> {
        let s = self.get_mut(h)?;
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
        let remote = canonical_addr(remote);
        if remote.port() == 0 || remote.ip().is_unspecified() {
            return Err(errno(libc::ECONNREFUSED));
        }
        if v6 && remote.is_ipv4() && s.opts.v6only {
            return Err(errno(libc::ENETUNREACH));
        }
        if !self.core.cfg.routes.has_route(remote.ip()) {
            return Err(errno(libc::ENETUNREACH));
        }
        let local_ip: IpAddr = match remote.ip() {
            IpAddr::V4(_) => self.core.cfg.addr.into(),
            IpAddr::V6(_) => self.core.cfg.addr6.into(),
        };
        let local = match self.get_mut(h)?.local {
            Some(l) => SocketAddr::new(
                if canonical(l.ip()).is_unspecified() {
                    local_ip
                } else {
                    canonical(l.ip())
                },
                l.port(),
            ),
            None => {
                let port = self.pick_connect_port(local_ip, remote)?;
                let bind = if v6 {
                    SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), port)
                } else {
                    SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port)
                };
                self.get_mut(h)?.local = Some(bind);
                self.core.tcp_tables.bound.insert(port, h);
                SocketAddr::new(local_ip, port)
            }
        };
        if local.ip().is_ipv4() != remote.ip().is_ipv4() {
            return Err(errno(libc::ENETUNREACH));
        }
        if self.core.tcp_tables.conns.contains_key(&(local, remote)) {
            return Err(errno(libc::EADDRNOTAVAIL));
        }
        let opts = self.get_mut(h)?.opts;
        let cfg = self.view().config_from(opts, remote.is_ipv6());
        let iss = self.core.tcp_tables.isn.isn(local, remote, now);
        let conn = Connection::connect(cfg, local, remote, iss, now);
        self.get_mut(h)?.state = Role::Conn(Box::new(conn));
        self.core.tcp_tables.conns.insert((local, remote), h);
        self.touch(h);
        Ok(())
    }

    /// Queues bytes to send: how many were taken (`EAGAIN` when the buffer
    /// is full; `EPIPE` after shutdown; the connection's error if it failed).
    pub fn send(&mut self, h: SocketHandle, data: &[u8]) -> io::Result<usize> {
        self.send_more(h, data, false)
    }

    /// [`TcpMut::send`] with MSG_MORE when `more`: a partial segment at the
    /// end of `data` waits for more (see [`Connection::send_more`]).
    pub fn send_more(&mut self, h: SocketHandle, data: &[u8], more: bool) -> io::Result<usize> {
        self.send_with(h, data, more, false)
    }

    /// [`TcpMut::send_more`], and with `eor` (MSG_EOR) the data ends a
    /// record no segment joins with later data (see
    /// [`Connection::send_with`]).
    pub fn send_with(
        &mut self,
        h: SocketHandle,
        data: &[u8],
        more: bool,
        eor: bool,
    ) -> io::Result<usize> {
        // Linux (tcp_sendmsg / sk_stream_wait_connect): a socket that never
        // connected, or listens, gives EPIPE; one still connecting waits
        // (EAGAIN) rather than queueing.
        if !matches!(self.get_mut(h)?.state, Role::Conn(_)) {
            return Err(errno(libc::EPIPE));
        }
        let c = self.conn_mut(h)?;
        if let Some(e) = c.take_error() {
            return Err(map_tcp_error(e));
        }
        if matches!(c.state(), State::SynSent | State::SynReceived) {
            return Err(errno(libc::EAGAIN));
        }
        let r = match c.send_with(data, more, eor) {
            Ok(0) if !data.is_empty() => Err(errno(libc::EAGAIN)),
            Ok(n) => Ok(n),
            Err(TcpError::NotConnected) if c.state() == State::SynSent => Err(errno(libc::EAGAIN)),
            Err(TcpError::NotConnected) => Err(errno(libc::EPIPE)),
            Err(e) => Err(map_tcp_error(e)),
        };
        self.touch(h);
        r
    }

    /// Reads (or with `peek`, copies) received bytes: 0 at end of stream,
    /// `EAGAIN` when nothing is there yet.
    pub fn recv(&mut self, h: SocketHandle, buf: &mut [u8], peek: bool) -> io::Result<usize> {
        let read_shut = self.get_mut(h)?.read_shut;
        let c = self.conn_mut(h)?;
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
            self.touch(h);
        }
        r
    }

    /// Shuts down one or both directions.
    pub fn shutdown(&mut self, h: SocketHandle, how: Shutdown) -> io::Result<()> {
        self.conn_mut(h)?;
        let s = self.get_mut(h)?;
        if matches!(how, Shutdown::Read | Shutdown::Both) {
            s.read_shut = true;
        }
        if matches!(how, Shutdown::Write | Shutdown::Both)
            && let Role::Conn(c) = &mut s.state
        {
            c.shutdown_write();
        }
        self.touch(h);
        Ok(())
    }

    /// Sends RST and drops the connection (SO_LINGER with zero timeout).
    pub fn abort(&mut self, h: SocketHandle) -> io::Result<()> {
        if let Role::Conn(c) = &mut self.get_mut(h)?.state {
            c.abort();
        }
        self.touch(h);
        Ok(())
    }

    /// Readiness for poll/epoll and blocking waits. Whoever looked is
    /// notified of the next change from what it saw: the reported state
    /// becomes the baseline for change detection, so a change that happens
    /// before the runtime's next turn cannot hide behind a stale baseline.
    pub fn readiness(&mut self, h: SocketHandle) -> io::Result<Readiness> {
        let s = self.get_mut(h)?;
        let r = readiness_of(s);
        s.last_ready = r;
        Ok(r)
    }

    /// A pending error, taken (SO_ERROR).
    pub fn take_error(&mut self, h: SocketHandle) -> io::Result<Option<io::Error>> {
        match &mut self.get_mut(h)?.state {
            Role::Conn(c) => Ok(c.take_error().map(map_tcp_error)),
            _ => Ok(None),
        }
    }

    /// Closes the application's handle: a connection shuts down gracefully
    /// (or aborts, if unread data remains) and lives on as an orphan until
    /// CLOSED; a listener resets its queued children.
    pub(in crate::stack) fn close(&mut self, h: SocketHandle) {
        let Some(Socket::Tcp(s)) = self.core.sockets.get_mut(h) else {
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
                self.touch(h);
            }
            Role::Listening(l) => {
                let children: Vec<SocketHandle> =
                    l.pending.drain(..).chain(l.ready.drain(..)).collect();
                for child in children {
                    if let Some(Socket::Tcp(cs)) = self.core.sockets.get_mut(child) {
                        cs.orphan = true;
                        cs.parent = None;
                        if let Role::Conn(c) = &mut cs.state {
                            c.abort();
                        }
                        self.touch(child);
                    }
                }
                self.release(h);
            }
            Role::Fresh => self.release(h),
        }
    }
}
