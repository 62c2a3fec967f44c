//! UDP sockets: binding, demultiplexing, bounded receive queues, sending,
//! and ICMP errors surfacing on connected sockets.
//!
//! Addressing follows Linux: an IPv6 socket bound to `::` also receives
//! IPv4 datagrams (seen as IPv4-mapped addresses) unless it is v6-only; an
//! IPv4 datagram to a v6 socket's mapped address works the same way. Those
//! rules, the port table and the ephemeral range are `socket.rs`'s, shared
//! with TCP. Must not touch TCP sockets or the ICMP wire format (an error
//! arrives as `icmp::ReceivedError`).

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::icmp::{ErrorKind, ReceivedError, Unreachable};
use super::socket::{BindAddr, canonical, present};
use super::{Arrival, Core, Socket, SocketHandle, errno};
use crate::time::Instant;
use crate::wire::{IpProtocol, UdpRepr};

/// The largest UDP payload: 65,535 minus the IPv4 and UDP headers. IPv6
/// could carry 8 bytes more without a jumbogram; Linux allows 65,527 there.
const MAX_PAYLOAD_V4: usize = 65_507;
const MAX_PAYLOAD_V6: usize = 65_527;

/// One received datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UdpDatagram {
    /// The sender.
    pub from: SocketAddr,
    /// The address it was sent to (one of the stack's).
    pub to: IpAddr,
    /// The payload, whole (the core never truncates; the caller's buffer may).
    pub data: Vec<u8>,
}

pub(crate) struct UdpSocket {
    /// The socket's family: an IPv6 socket sees IPv4 peers as mapped
    /// addresses.
    v6: bool,
    /// The bound address (unspecified until bound to something specific;
    /// port 0 until bound).
    local: SocketAddr,
    remote: Option<SocketAddr>,
    v6only: bool,
    reuse: bool,
    broadcast: bool,
    rx: VecDeque<UdpDatagram>,
    rx_bytes: usize,
    rx_cap: usize,
    /// A pending asynchronous error for the next call, as Linux reports
    /// ICMP errors on connected sockets; its errno is made when reported.
    error: Option<Unreachable>,
}

impl UdpSocket {
    pub(crate) fn local_port(&self) -> u16 {
        self.local.port()
    }

    /// What the socket's bind claims.
    fn bind_addr(&self) -> BindAddr {
        BindAddr {
            ip: self.local.ip(),
            v6: self.v6,
            v6only: self.v6only,
        }
    }

    /// Whether a datagram to `dst` (a local address, in the datagram's own
    /// family) is for this socket's bound address.
    fn accepts(&self, dst: IpAddr) -> bool {
        self.bind_addr().accepts(dst)
    }

    /// Whether a connected socket takes datagrams from `from`.
    fn accepts_from(&self, from: SocketAddr) -> bool {
        self.remote.is_none_or(|r| r == from)
    }

    fn new(v6: bool, rx_cap: usize) -> UdpSocket {
        let unspecified: IpAddr = if v6 {
            Ipv6Addr::UNSPECIFIED.into()
        } else {
            Ipv4Addr::UNSPECIFIED.into()
        };
        UdpSocket {
            v6,
            local: SocketAddr::new(unspecified, 0),
            remote: None,
            v6only: false,
            reuse: false,
            broadcast: false,
            rx: VecDeque::new(),
            rx_bytes: 0,
            rx_cap,
            error: None,
        }
    }
}

/// Socket options of a UDP socket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UdpOptions {
    /// SO_REUSEADDR: two sockets that both set it may bind the same address
    /// and port.
    pub reuse_addr: bool,
    /// IPV6_V6ONLY: an IPv6 socket bound to `::` receives no IPv4
    /// datagrams and leaves the IPv4 port free; ignored on IPv4 sockets.
    pub v6only: bool,
    /// SO_BROADCAST: stored and reported, with no other effect (the link is
    /// point to point).
    pub broadcast: bool,
}

impl Core {
    /// Opens an unbound UDP socket of the given family.
    pub fn udp_socket(&mut self, v6: bool) -> io::Result<SocketHandle> {
        self.sockets
            .insert(Socket::Udp(UdpSocket::new(v6, self.cfg.udp_recv_buf)))
            .ok_or_else(|| errno(libc::EMFILE))
    }

    fn udp(&mut self, h: SocketHandle) -> io::Result<&mut UdpSocket> {
        match self.sockets.get_mut(h) {
            Some(Socket::Udp(s)) => Ok(s),
            _ => Err(errno(libc::EBADF)),
        }
    }

    /// Sets options (before bind for `reuse_addr` and `v6only` to matter).
    pub fn udp_set_options(&mut self, h: SocketHandle, opts: UdpOptions) -> io::Result<()> {
        let s = self.udp(h)?;
        s.reuse = opts.reuse_addr;
        s.broadcast = opts.broadcast;
        if s.v6 {
            s.v6only = opts.v6only;
        }
        Ok(())
    }

    /// The options as set.
    pub fn udp_options(&mut self, h: SocketHandle) -> io::Result<UdpOptions> {
        let s = self.udp(h)?;
        Ok(UdpOptions {
            reuse_addr: s.reuse,
            v6only: s.v6only,
            broadcast: s.broadcast,
        })
    }

    /// Binds to `addr`: the unspecified address or one of the stack's
    /// (else `EADDRNOTAVAIL`), port 0 for an ephemeral port. `EADDRINUSE`
    /// if another socket claims the same datagrams, unless both set
    /// `reuse_addr`; `EINVAL` if already bound or of the wrong family.
    pub fn udp_bind(&mut self, h: SocketHandle, addr: SocketAddr) -> io::Result<()> {
        let (v6, v6only, reuse, bound) = {
            let s = self.udp(h)?;
            (s.v6, s.v6only, s.reuse, s.local.port() != 0)
        };
        if bound {
            return Err(errno(libc::EINVAL));
        }
        self.check_bind_addr(v6, addr)?;
        let port = if addr.port() == 0 {
            self.udp_pick_port(addr.ip(), v6, v6only, reuse)?
        } else if self.udp_port_free(addr.port(), addr.ip(), v6, v6only, reuse) {
            addr.port()
        } else {
            return Err(errno(libc::EADDRINUSE));
        };
        let s = self.udp(h)?;
        s.local = SocketAddr::new(addr.ip(), port);
        self.udp_ports.insert(port, h);
        Ok(())
    }

    fn udp_port_free(&self, port: u16, ip: IpAddr, v6: bool, v6only: bool, reuse: bool) -> bool {
        let Some(list) = self.udp_ports.get(port) else {
            return true;
        };
        list.iter().all(|&other| match self.sockets.get(other) {
            Some(Socket::Udp(o)) => {
                (reuse && o.reuse) || !o.bind_addr().overlaps(BindAddr { ip, v6, v6only })
            }
            _ => true,
        })
    }

    /// An ephemeral port free for this bind (RFC 6056 algorithm 1: a
    /// random start, then the next free one).
    fn udp_pick_port(
        &mut self,
        ip: IpAddr,
        v6: bool,
        v6only: bool,
        reuse: bool,
    ) -> io::Result<u16> {
        // Linux says EADDRINUSE for bind and EAGAIN for an implicit bind;
        // EAGAIN would make a blocking send wait for a port forever.
        self.ephemeral_ports()
            .find(|&port| self.udp_port_free(port, ip, v6, v6only, reuse))
            .ok_or_else(|| errno(libc::EADDRINUSE))
    }

    /// Binds to an ephemeral port if not bound yet (as sending or connecting
    /// an unbound socket does).
    fn udp_autobind(&mut self, h: SocketHandle) -> io::Result<()> {
        let s = self.udp(h)?;
        if s.local.port() == 0 {
            let any = s.local;
            self.udp_bind(h, any)?;
        }
        Ok(())
    }

    /// Sets the default destination and the only source datagrams are
    /// accepted from. An `AF_UNSPEC`-style disconnect is `udp_disconnect`.
    pub fn udp_connect(&mut self, h: SocketHandle, remote: SocketAddr) -> io::Result<()> {
        let (v6, v6only) = {
            let s = self.udp(h)?;
            (s.v6, s.v6only)
        };
        let remote = normalize_dst(v6, v6only, remote)?;
        if remote.port() == 0 {
            return Err(errno(libc::EINVAL));
        }
        if !self.cfg.routes.has_route(remote.ip()) {
            return Err(errno(libc::ENETUNREACH));
        }
        self.udp_autobind(h)?;
        // As Linux: connecting picks the source address, which getsockname
        // then reports (a wildcard bind becomes the stack's own address).
        let ours: IpAddr = match remote.ip() {
            IpAddr::V4(_) => self.cfg.addr.into(),
            IpAddr::V6(_) => self.cfg.addr6.into(),
        };
        let s = self.udp(h)?;
        if s.local.ip().is_unspecified() {
            let ip = match (s.v6, ours) {
                (true, IpAddr::V4(a)) => IpAddr::V6(a.to_ipv6_mapped()),
                (_, ip) => ip,
            };
            s.local = SocketAddr::new(ip, s.local.port());
        }
        s.remote = Some(remote);
        s.error = None;
        Ok(())
    }

    /// Forgets the connected peer.
    pub fn udp_disconnect(&mut self, h: SocketHandle) -> io::Result<()> {
        self.udp(h)?.remote = None;
        Ok(())
    }

    /// Sends one datagram to `dst`, or to the connected peer when `None`.
    /// Errors: `EDESTADDRREQ` (no destination), `EMSGSIZE` (too large),
    /// a pending ICMP error (`ECONNREFUSED`...) once, `ENOBUFS` when the
    /// transmit queue is full.
    pub fn udp_send_to(
        &mut self,
        _now: Instant,
        h: SocketHandle,
        data: &[u8],
        dst: Option<SocketAddr>,
    ) -> io::Result<usize> {
        let (v6, v6only, remote) = {
            let s = self.udp(h)?;
            if let Some(e) = s.error.take() {
                return Err(errno(e.errno()));
            }
            (s.v6, s.v6only, s.remote)
        };
        let dst = match dst {
            Some(d) => normalize_dst(v6, v6only, d)?,
            None => remote.ok_or_else(|| errno(libc::EDESTADDRREQ))?,
        };
        if dst.port() == 0 {
            return Err(errno(libc::EINVAL));
        }
        if !self.cfg.routes.has_route(dst.ip()) {
            return Err(errno(libc::ENETUNREACH));
        }
        let limit = if dst.is_ipv4() {
            MAX_PAYLOAD_V4
        } else {
            MAX_PAYLOAD_V6
        };
        if data.len() > limit {
            return Err(errno(libc::EMSGSIZE));
        }
        self.udp_autobind(h)?;
        let local = self.udp(h)?.local;
        let src: IpAddr = match (canonical(local.ip()), dst.ip()) {
            (IpAddr::V4(a), IpAddr::V4(_)) if !a.is_unspecified() => a.into(),
            (IpAddr::V6(a), IpAddr::V6(_)) if !a.is_unspecified() => a.into(),
            (_, IpAddr::V4(_)) => self.cfg.addr.into(),
            (_, IpAddr::V6(_)) => self.cfg.addr6.into(),
        };
        let repr = UdpRepr {
            src_port: local.port(),
            dst_port: dst.port(),
        };
        let mut msg = vec![0u8; repr.buffer_len(data.len())];
        repr.emit(&mut msg, src, dst.ip(), data)
            .map_err(|_| errno(libc::EINVAL))?;
        self.send_datagram(src, dst.ip(), IpProtocol::Udp, &msg)?;
        Ok(data.len())
    }

    /// Takes (or with `peek`, copies) the next datagram. `EAGAIN` when none
    /// is queued; a pending ICMP error is returned once first.
    pub fn udp_recv(&mut self, h: SocketHandle, peek: bool) -> io::Result<UdpDatagram> {
        let s = self.udp(h)?;
        if let Some(e) = s.error.take() {
            return Err(errno(e.errno()));
        }
        let d = if peek {
            s.rx.front().cloned()
        } else {
            s.rx.pop_front()
        };
        let d = d.ok_or_else(|| errno(libc::EAGAIN))?;
        if !peek {
            s.rx_bytes -= d.data.len();
        }
        Ok(d)
    }

    /// Takes the pending error, if any (SO_ERROR).
    pub fn udp_take_error(&mut self, h: SocketHandle) -> io::Result<Option<io::Error>> {
        Ok(self.udp(h)?.error.take().map(|e| errno(e.errno())))
    }

    /// Readiness of a UDP socket: (readable, pending error).
    pub fn udp_readiness(&mut self, h: SocketHandle) -> io::Result<(bool, bool)> {
        let s = self.udp(h)?;
        Ok((!s.rx.is_empty(), s.error.is_some()))
    }

    /// The bound address (port 0 if unbound) and the connected peer.
    pub fn udp_addrs(&mut self, h: SocketHandle) -> io::Result<(SocketAddr, Option<SocketAddr>)> {
        let s = self.udp(h)?;
        Ok((s.local, s.remote))
    }

    pub(super) fn udp_input(&mut self, now: Instant, arrival: &Arrival<'_>) {
        let parsed = if arrival.verified {
            UdpRepr::parse_datagram_verified(arrival.payload)
        } else {
            UdpRepr::parse_datagram(arrival.payload, arrival.src, arrival.dst)
        };
        let Ok((repr, data)) = parsed else {
            self.counters.udp_malformed += 1;
            return;
        };
        let from = SocketAddr::new(arrival.src, repr.src_port);
        let target = self.udp_ports.get(repr.dst_port).and_then(|list| {
            // The most recently bound socket wins among equals; a connected
            // socket whose peer matches, or a specific bind address, beats
            // a wildcard.
            list.iter()
                .rev()
                .filter_map(|&h| match self.sockets.get(h) {
                    Some(Socket::Udp(s)) if s.accepts(arrival.dst) && s.accepts_from(from) => {
                        let score = u8::from(s.remote.is_some()) * 2
                            + u8::from(!s.local.ip().is_unspecified());
                        Some((score, h))
                    }
                    _ => None,
                })
                .max_by_key(|(score, _)| *score)
                .map(|(_, h)| h)
        });
        let Some(h) = target else {
            self.counters.udp_no_port += 1;
            self.send_icmp_error(now, ErrorKind::PortUnreachable, arrival);
            return;
        };
        let Some(Socket::Udp(s)) = self.sockets.get_mut(h) else {
            return;
        };
        if s.rx_bytes + data.len() > s.rx_cap {
            self.counters.udp_rcvbuf_drops += 1;
            return;
        }
        s.rx_bytes += data.len();
        let d = UdpDatagram {
            from: present(s.v6, from),
            to: arrival.dst,
            data: data.to_vec(),
        };
        s.rx.push_back(d);
        self.mark_changed(h);
    }

    /// An ICMP error about a datagram we sent from `src_port` to
    /// `dst:dst_port`: a connected socket records it for its next call
    /// (Linux reports errors only on connected UDP sockets, since an
    /// unconnected one cannot tell which send caused it).
    pub(super) fn udp_icmp_error(
        &mut self,
        err: ReceivedError,
        dst: IpAddr,
        src_port: u16,
        dst_port: u16,
    ) -> bool {
        let ReceivedError::Unreachable(what) = err else {
            return false;
        };
        let Some(list) = self.udp_ports.get(src_port) else {
            return false;
        };
        let peer = SocketAddr::new(canonical(dst), dst_port);
        let mut hit = Vec::new();
        for &h in list {
            if let Some(Socket::Udp(s)) = self.sockets.get_mut(h)
                && s.remote
                    .is_some_and(|r| SocketAddr::new(canonical(r.ip()), r.port()) == peer)
            {
                s.error = Some(what);
                hit.push(h);
            }
        }
        for h in &hit {
            self.mark_changed(*h);
        }
        !hit.is_empty()
    }
}

/// A destination as the wire sees it. As Linux: an IPv6 socket reaches
/// IPv4 peers through mapped addresses (or plain IPv4 ones, as
/// `udpv6_sendmsg` accepts), unless it is v6-only (`ENETUNREACH`); an IPv4
/// socket cannot send to IPv6 (`EAFNOSUPPORT`).
fn normalize_dst(v6: bool, v6only: bool, dst: SocketAddr) -> io::Result<SocketAddr> {
    let v4 = match (v6, dst.ip()) {
        (true, IpAddr::V6(a)) => match a.to_ipv4_mapped() {
            Some(v4) => v4,
            None => return Ok(dst),
        },
        (true, IpAddr::V4(a)) => a,
        (false, IpAddr::V4(_)) => return Ok(dst),
        (false, IpAddr::V6(_)) => return Err(errno(libc::EAFNOSUPPORT)),
    };
    if v6only {
        return Err(errno(libc::ENETUNREACH));
    }
    Ok(SocketAddr::new(v4.into(), dst.port()))
}
