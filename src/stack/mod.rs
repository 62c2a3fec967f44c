//! The sans-IO stack core.
//!
//! Owns the host's view of the link: its addresses, the demultiplexing of
//! arriving datagrams to ICMP (`icmp.rs`), UDP (`udp.rs`) and TCP
//! (`tcp/`, reached as [`Core::tcp`] and [`Core::tcp_mut`]), fragment
//! reassembly state, what TCP and UDP sockets share (`socket.rs`: the
//! socket table, port tables, dual-stack address rules) and the queue of
//! datagrams to send (`output.rs`). Takes time as an argument; never reads
//! a clock, never touches a device; the inside of a TCP connection is the
//! engine's (`crate::tcp`).
//!
//! Errors returned to socket callers are `io::Error`s made from the errno
//! the kernel would give (`EADDRINUSE`, `EAGAIN`...), so the library maps
//! them to `ErrorKind`s and the shim passes the errno through unchanged.
//! Inside the core a reason travels typed (an ICMP error is an
//! `icmp::Unreachable`, a connection's failure a `tcp::TcpError`) and
//! becomes an errno only in the socket call that reports it.

mod icmp;
mod output;
mod route;
mod socket;
mod tcp;
mod udp;

#[cfg(test)]
mod tests;

pub use route::Routes;
pub use socket::SocketHandle;
pub(crate) use socket::present;
pub use tcp::{Readiness, Shutdown, Tcp, TcpInfo, TcpMut, TcpOptionsSet};
pub use udp::{UdpDatagram, UdpOptions};

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::device::Packet;
use crate::ip::{IdGenerator, Reassembler, ReassemblyConfig, TokenBucket};
use crate::rand::Rng;
use crate::time::Instant;
use crate::wire::{self, IpProtocol, IpView};

use socket::{EPHEMERAL, PortTable, Slab};

/// How a [`Core`] is set up.
#[derive(Clone, Debug)]
pub struct CoreConfig {
    /// The stack's IPv4 address.
    pub addr: Ipv4Addr,
    /// The stack's IPv6 address.
    pub addr6: Ipv6Addr,
    /// The link MTU.
    pub mtu: usize,
    /// TTL / hop limit of datagrams the stack sends (Linux's default 64).
    pub hop_limit: u8,
    /// Fragment reassembly bounds.
    pub reassembly: ReassemblyConfig,
    /// The most sockets open at once.
    pub max_sockets: usize,
    /// A UDP socket's receive queue, in payload bytes (Linux's default
    /// `rmem_default`, 212,992).
    pub udp_recv_buf: usize,
    /// The most datagrams waiting in the transmit queue; beyond it new
    /// datagrams are dropped and counted (a link that stopped draining must
    /// not grow memory without bound).
    pub max_tx_queue: usize,
    /// The template for new TCP connections (timers, congestion control,
    /// TIME-WAIT); MSS, buffers and per-socket options are set per
    /// connection.
    pub tcp: crate::tcp::TcpConfig,
    /// Which destinations have a route ([`Routes`]): on a LAN, sockets get
    /// `ENETUNREACH` at once for the others, as Linux.
    pub routes: Routes,
    /// Seeds port choice, fragment identification, the ISN and SYN-cookie
    /// secrets. The default draws it from the OS (RFC 6528 and 6056 want
    /// them unpredictable); simulations set it to replay exactly.
    pub seed: u64,
}

impl Default for CoreConfig {
    fn default() -> Self {
        CoreConfig {
            addr: Ipv4Addr::new(10, 77, 0, 2),
            addr6: Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 2),
            mtu: 1500,
            hop_limit: 64,
            reassembly: ReassemblyConfig::default(),
            max_sockets: 65536,
            udp_recv_buf: 212_992,
            max_tx_queue: 16384,
            routes: Routes::PointToPoint,
            tcp: crate::tcp::TcpConfig::default(),
            seed: Rng::from_os().next_u64(),
        }
    }
}

/// Counters of what the core saw and did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Datagrams handed to [`Core::input`].
    pub ip_in: u64,
    /// Datagrams that did not parse (bad version, length, checksum).
    pub ip_malformed: u64,
    /// Datagrams addressed to someone else.
    pub ip_not_ours: u64,
    /// Fragments rejected by reassembly (overlap, oversize, misaligned...).
    pub frag_errors: u64,
    /// Datagrams completed from fragments.
    pub reassembled: u64,
    /// Datagrams produced by [`Core::poll_transmit`].
    pub ip_out: u64,
    /// Of those, datagrams to the stack's own address, delivered without
    /// leaving it.
    pub ip_local: u64,
    /// Datagrams dropped because the transmit queue was full.
    pub tx_dropped: u64,
    /// Datagrams sent as fragments.
    pub fragmented: u64,
    /// ICMP / ICMPv6 messages that did not parse or verify.
    pub icmp_malformed: u64,
    /// Echo requests answered.
    pub echo_replies: u64,
    /// ICMP errors sent.
    pub icmp_errors_out: u64,
    /// ICMP errors not sent because of the rate limit.
    pub icmp_errors_limited: u64,
    /// ICMP errors received and matched to a socket.
    pub icmp_errors_in: u64,
    /// ICMP errors about a TCP connection quoting a sequence number it
    /// does not have in flight, ignored (Linux's OutOfWindowIcmps).
    pub icmp_out_of_window: u64,
    /// UDP datagrams that did not parse or verify.
    pub udp_malformed: u64,
    /// UDP datagrams to a port no socket is bound to.
    pub udp_no_port: u64,
    /// UDP datagrams dropped because the receive queue was full.
    pub udp_rcvbuf_drops: u64,
    /// TCP segments that did not parse or verify.
    pub tcp_malformed: u64,
    /// TCP segments that matched no connection or listener (answered with
    /// RST).
    pub tcp_no_socket: u64,
    /// SYNs (and cookie ACKs) dropped because a listener's accept queue
    /// was full.
    pub tcp_listen_overflows: u64,
    /// SYN-ACKs sent as cookies because a SYN queue was full.
    pub tcp_syncookies_sent: u64,
    /// Connections rebuilt from a valid cookie.
    pub tcp_syncookies_ok: u64,
    /// ACKs to a cookie-sending listener whose cookie did not check.
    pub tcp_syncookies_failed: u64,
    /// Datagrams of a protocol the stack does not speak.
    pub unknown_protocol: u64,
}

pub(crate) enum Socket {
    Udp(udp::UdpSocket),
    Tcp(tcp::TcpSocket),
}

/// The sans-IO core of one host on one link.
///
/// Datagrams go in through [`Core::input`] and come out of
/// [`Core::poll_transmit`]; here the core answers a ping built with the
/// `wire` types:
///
/// ```
/// use ustack::Instant;
/// use ustack::stack::{Core, CoreConfig};
/// use ustack::wire::{Icmpv4Repr, IpHeader, IpProtocol, parse_ip};
///
/// let mut core = Core::new(CoreConfig::default()); // 10.77.0.2
/// let ping = Icmpv4Repr::EchoRequest { ident: 9, seq_no: 1, data: b"abcd" };
/// let ip = IpHeader {
///     src: "10.77.0.1".parse().unwrap(),
///     dst: "10.77.0.2".parse().unwrap(),
///     protocol: IpProtocol::Icmp,
///     payload_len: ping.buffer_len(),
///     hop_limit: 64,
///     ident: 1,
///     dont_frag: false,
///     ecn: 0,
/// };
/// let mut packet = vec![0; ip.buffer_len()];
/// let n = ip.emit(&mut packet)?;
/// ping.emit(&mut packet[n..])?;
///
/// let now = Instant::from_millis(10);
/// core.input(now, &packet);
/// let mut out = Vec::new();
/// core.poll_transmit(now, &mut out);
/// assert_eq!(out.len(), 1);
/// let reply = parse_ip(&out[0])?;
/// assert_eq!(reply.dst, ip.src);
/// assert_eq!(
///     Icmpv4Repr::parse_bytes(reply.payload)?,
///     Icmpv4Repr::EchoReply { ident: 9, seq_no: 1, data: b"abcd" }
/// );
/// assert_eq!(core.counters().echo_replies, 1);
/// # Ok::<(), ustack::wire::Error>(())
/// ```
pub struct Core {
    cfg: CoreConfig,
    counters: Counters,
    reassembler: Reassembler,
    ids: IdGenerator,
    icmp_limit: TokenBucket,
    rng: Rng,
    tx: VecDeque<Packet>,
    /// Buffers of sent datagrams ([`Core::recycle`]), built into next.
    spare: Vec<Packet>,
    sockets: Slab<Socket>,
    udp_ports: PortTable,
    tcp_tables: tcp::TcpTables,
    /// Sockets whose readiness may have changed since the last
    /// [`Core::take_changed`].
    changed: Vec<SocketHandle>,
}

/// What `input` learned about an arriving datagram, handed up to the
/// protocol handlers.
pub(crate) struct Arrival<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// The upper-layer message (reassembled if it came in fragments).
    pub payload: &'a [u8],
    /// The datagram as received (the first fragment, for a reassembled
    /// one), for quoting in an ICMP error.
    pub original: &'a [u8],
    /// Whether `original` is the whole datagram. ICMP errors are only sent
    /// for datagrams seen from their first byte (RFC 1122 section 3.2.2).
    pub first_fragment: bool,
    /// The link vouched for the TCP or UDP checksum (see
    /// [`Core::input_verified`]): the transport parsers skip summing it.
    pub verified: bool,
    /// The IP header's ECN field (3: congestion experienced).
    pub ecn: u8,
}

impl Core {
    /// A core with no sockets.
    pub fn new(cfg: CoreConfig) -> Core {
        let mut rng = Rng::new(cfg.seed);
        let secret = u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64());
        let isn_secret = u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64());
        let cookie_secret = u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64());
        Core {
            reassembler: Reassembler::new(cfg.reassembly.clone()),
            ids: IdGenerator::new(secret),
            icmp_limit: TokenBucket::icmp_errors(),
            rng,
            tx: VecDeque::new(),
            spare: Vec::new(),
            sockets: Slab::new(cfg.max_sockets),
            udp_ports: PortTable::default(),
            tcp_tables: tcp::TcpTables::new(isn_secret, cookie_secret),
            changed: Vec::new(),
            counters: Counters::default(),
            cfg,
        }
    }

    /// The configuration the core runs with.
    pub fn config(&self) -> &CoreConfig {
        &self.cfg
    }

    /// The link's MTU changed (an administrator set it, as `ip link set
    /// mtu`): connections made from now on take their MSS from it, and
    /// datagrams are fragmented to it. Connections already made keep
    /// their MSS, as in Linux. IPv4's minimum, 68, is the floor.
    pub fn set_mtu(&mut self, mtu: usize) {
        self.cfg.mtu = mtu.max(68);
    }

    /// What the core counted so far.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Fragment reassembly: its counters, and what it holds now (bytes
    /// charged against its limit, datagrams in progress).
    pub fn reassembly(&self) -> (crate::ip::ReassemblyStats, usize, usize) {
        let r = &self.reassembler;
        (r.stats(), r.bytes_held(), r.datagrams_in_progress())
    }

    /// How many sockets hold a slot: open ones, and closed TCP connections
    /// still finishing (FIN handshake, TIME-WAIT).
    pub fn sockets_in_use(&self) -> usize {
        self.sockets.len()
    }

    /// Whether `addr` is one of the stack's own addresses (0.0.0.0 and ::,
    /// the addresses of a stack that has none yet, never are).
    pub fn is_local(&self, addr: IpAddr) -> bool {
        let v4 = |a: Ipv4Addr| a == self.cfg.addr && !a.is_unspecified();
        match addr {
            IpAddr::V4(a) => v4(a),
            IpAddr::V6(a) => {
                (a == self.cfg.addr6 && !a.is_unspecified()) || a.to_ipv4_mapped().is_some_and(v4)
            }
        }
    }

    /// [`Core::set_ipv4`] for IPv6 (SLAAC's address, `None` while there
    /// is none or after its valid lifetime).
    pub fn set_ipv6(&mut self, addr: Option<wire::Prefix<Ipv6Addr>>, gateway: bool) {
        self.cfg.addr6 = addr.map_or(Ipv6Addr::UNSPECIFIED, |p| p.addr);
        if let Routes::Lan { v6, gateway6, .. } = &mut self.cfg.routes {
            *v6 = addr;
            *gateway6 = gateway;
        }
    }

    /// The IPv4 address changed (a DHCP lease bound, renewed with another
    /// address, or lost: `None`). New sockets take the new address as
    /// their source; without one, nothing of IPv4 has a route, so connect
    /// and sendto fail with `ENETUNREACH` as on Linux. Connections made on
    /// an old address keep it: their segments no longer leave the link
    /// layer and, unanswered, they time out, as Linux's do when their
    /// address is deleted. Only a LAN's routes change; on a
    /// point-to-point link the address alone does.
    pub fn set_ipv4(&mut self, addr: Option<wire::Prefix<Ipv4Addr>>, gateway: bool) {
        self.cfg.addr = addr.map_or(Ipv4Addr::UNSPECIFIED, |p| p.addr);
        if let Routes::Lan { v4, gateway4, .. } = &mut self.cfg.routes {
            *v4 = addr;
            *gateway4 = gateway;
        }
    }

    /// Processes one datagram that arrived from the link.
    pub fn input(&mut self, now: Instant, packet: &[u8]) {
        self.input_verified(now, packet, false);
    }

    /// [`Core::input`] for a datagram whose TCP or UDP checksum the link
    /// vouches for (`verified`): a TUN device with offloads, for a packet
    /// the kernel marked as already verified or left for us to complete
    /// and we did (see `device::vnet`). On a 64 KiB super-packet that one
    /// sum is a quarter of the receive path's work, so it is not done
    /// twice. Only the transport checksum is skipped, only for an
    /// unfragmented datagram; every other link passes false.
    pub fn input_verified(&mut self, now: Instant, packet: &[u8], verified: bool) {
        self.counters.ip_in += 1;
        let view = match wire::parse_ip(packet) {
            Ok(v) => v,
            Err(_) => {
                self.counters.ip_malformed += 1;
                return;
            }
        };
        if !self.is_local(view.dst) || view.dst.is_ipv6() != view.src.is_ipv6() {
            self.counters.ip_not_ours += 1;
            return;
        }
        match view.fragment {
            None => self.deliver(
                now,
                view.protocol,
                Arrival {
                    src: view.src,
                    dst: view.dst,
                    payload: view.payload,
                    original: packet,
                    first_fragment: true,
                    verified,
                    ecn: view.ecn,
                },
            ),
            Some(_) => self.reassemble(now, &view, packet),
        }
    }

    fn reassemble(&mut self, now: Instant, view: &IpView<'_>, packet: &[u8]) {
        let Some(frag) = view.fragment else { return };
        let key = match (view.src, view.dst) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => crate::ip::FragKey::V4 {
                src,
                dst,
                protocol: view.protocol.into(),
                ident: frag.ident as u16,
            },
            (IpAddr::V6(src), IpAddr::V6(dst)) => crate::ip::FragKey::V6 {
                src,
                dst,
                ident: frag.ident,
            },
            _ => return,
        };
        // The whole received header (for IPv6 including the fragment header)
        // is kept, so a time-exceeded error quotes the first fragment as it
        // arrived.
        let header = packet.get(..view.header_len).unwrap_or(packet);
        let done = match self.reassembler.insert(
            now,
            key,
            usize::from(frag.offset),
            frag.more_frags,
            view.payload,
            header,
        ) {
            Ok(Some(done)) => done,
            Ok(None) => return,
            Err(_) => {
                self.counters.frag_errors += 1;
                return;
            }
        };
        self.counters.reassembled += 1;
        let mut protocol = view.protocol;
        let mut payload = done.payload.as_slice();
        if view.is_ipv6() {
            // Extension headers may follow the fragment header (RFC 8200
            // section 4.1 allows destination options there).
            match wire::ipv6::walk_extensions(protocol, payload) {
                Ok(ext) if ext.fragment.is_none() => {
                    protocol = ext.protocol;
                    payload = payload.get(ext.offset..).unwrap_or(&[]);
                }
                _ => {
                    self.counters.ip_malformed += 1;
                    return;
                }
            }
        }
        let original = [done.header.as_slice(), payload].concat();
        self.deliver(
            now,
            protocol,
            Arrival {
                src: view.src,
                dst: view.dst,
                payload,
                original: &original,
                first_fragment: true,
                verified: false,
                ecn: view.ecn,
            },
        );
    }

    fn deliver(&mut self, now: Instant, protocol: IpProtocol, arrival: Arrival<'_>) {
        match (protocol, arrival.src) {
            (IpProtocol::Icmp, IpAddr::V4(_)) => self.icmpv4_input(now, &arrival),
            (IpProtocol::Icmpv6, IpAddr::V6(_)) => self.icmpv6_input(now, &arrival),
            (IpProtocol::Udp, _) => self.udp_input(now, &arrival),
            (IpProtocol::Tcp, _) => self.tcp_mut().input(now, &arrival),
            _ => {
                self.counters.unknown_protocol += 1;
                if arrival.src.is_ipv4() {
                    self.send_icmp_error(now, icmp::ErrorKind::ProtocolUnreachable, &arrival);
                }
            }
        }
    }

    /// Appends every datagram due now to `out`. Datagrams to one of the
    /// stack's own addresses never leave: they are delivered here, as a
    /// host's loopback does (a client on the stack reaching a server on
    /// it), for a bounded number of rounds per call (the rest wait in the
    /// queue, and `poll_at` says they are due).
    pub fn poll_transmit(&mut self, now: Instant, out: &mut Vec<Packet>) {
        for expired in self.reassembler.poll_expired(now) {
            self.reassembly_timed_out(now, expired);
        }
        let mut local = Vec::new();
        for _ in 0..LOCAL_ROUNDS {
            self.tcp_mut().poll(now);
            self.counters.ip_out += self.tx.len() as u64;
            let (addr, addr6) = (self.cfg.addr, self.cfg.addr6);
            for p in self.tx.drain(..) {
                if to_self(&p, addr, addr6) {
                    local.push(p);
                } else {
                    out.push(p);
                }
            }
            if local.is_empty() {
                return;
            }
            for p in local.drain(..) {
                self.counters.ip_local += 1;
                // Built here: its checksums are ours (or left to an
                // offload that never runs).
                self.input_verified(now, &p, true);
                if self.spare.len() < MAX_SPARE {
                    self.spare.push(p);
                }
            }
        }
    }

    /// Takes buffers of datagrams the link has sent, leaving `buffers`
    /// empty: TCP segments and unfragmented UDP datagrams are built in them,
    /// so the send path need not allocate per packet. Keeps at most
    /// [`MAX_SPARE`] of them.
    pub fn recycle(&mut self, buffers: &mut Vec<Packet>) {
        let room = MAX_SPARE.saturating_sub(self.spare.len());
        self.spare.extend(buffers.drain(..).take(room));
    }

    /// A datagram buffer of `len` bytes, reusing a spare one: zero but for
    /// its last `overwritten` bytes, which the caller fills (the payload
    /// it copies in), so a recycled buffer's old bytes are not zeroed
    /// first only to be overwritten (a 64 KiB memset per super-segment).
    fn new_packet(&mut self, len: usize, overwritten: usize) -> Packet {
        let mut packet = self.spare.pop().unwrap_or_default();
        if packet.len() >= len {
            packet.truncate(len);
        } else {
            packet.resize(len, 0);
        }
        let zeroed = len - overwritten.min(len);
        packet[..zeroed].fill(0);
        packet
    }

    /// When the core next needs [`Core::poll_transmit`] called, if ever.
    pub fn poll_at(&self) -> Option<Instant> {
        if !self.tx.is_empty() {
            return Some(Instant::ZERO);
        }
        match (self.reassembler.next_timeout(), self.tcp().poll_at()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Takes the list of sockets whose readiness may have changed, so the
    /// runtime can wake exactly their waiters.
    pub fn take_changed(&mut self, into: &mut Vec<SocketHandle>) {
        // Marks are pushed as they come (a busy UDP socket many times per
        // turn); each socket is reported once.
        self.changed.sort_unstable();
        self.changed.dedup();
        into.append(&mut self.changed);
    }

    /// Called when someone starts waiting on `h` after finding it not
    /// ready: re-bases change detection on the socket's current readiness,
    /// so the next change is reported even if the runtime has not run
    /// since the waiter's operation changed it.
    pub fn note_waiting(&mut self, h: SocketHandle) {
        if let Some(Socket::Tcp(_)) = self.sockets.get(h) {
            let _ = self.tcp_mut().readiness(h);
        }
    }

    fn mark_changed(&mut self, h: SocketHandle) {
        self.changed.push(h);
    }

    /// Candidate ephemeral ports in the order to try them (RFC 6056
    /// algorithm 1: a random start in Linux's range, then the next ones).
    pub(crate) fn ephemeral_ports(&mut self) -> impl Iterator<Item = u16> + use<> {
        let (lo, hi) = (*EPHEMERAL.start(), *EPHEMERAL.end());
        let span = u64::from(hi - lo) + 1;
        let start = self.rng.below(span);
        (0..span).map(move |i| lo + ((start + i) % span) as u16)
    }

    /// The checks every bind makes: the socket's family and one of the
    /// stack's addresses (or the unspecified one).
    pub(crate) fn check_bind_addr(&self, v6: bool, addr: SocketAddr) -> io::Result<()> {
        if addr.is_ipv6() != v6 {
            return Err(errno(if v6 { libc::EINVAL } else { libc::EAFNOSUPPORT }));
        }
        if !addr.ip().is_unspecified() && !self.is_local(addr.ip()) {
            return Err(errno(libc::EADDRNOTAVAIL));
        }
        Ok(())
    }

    /// Closes a socket; its handle is invalid afterwards. A TCP connection
    /// shuts down gracefully and frees its slot once it is done.
    pub fn close(&mut self, h: SocketHandle) -> io::Result<()> {
        match self.sockets.get(h) {
            Some(Socket::Udp(_)) => {
                if let Some(Socket::Udp(s)) = self.sockets.remove(h) {
                    self.udp_ports.remove(s.local_port(), h);
                }
                Ok(())
            }
            Some(Socket::Tcp(s)) if !s.is_orphan() => {
                self.tcp_mut().close(h);
                Ok(())
            }
            _ => Err(errno(libc::EBADF)),
        }
    }
}

/// The most spare send buffers a core keeps (up to 64 KiB each).
pub const MAX_SPARE: usize = 128;

/// Whether a datagram the stack built is addressed to the stack itself.
fn to_self(p: &[u8], addr: std::net::Ipv4Addr, addr6: std::net::Ipv6Addr) -> bool {
    match p.first().map(|b| b >> 4) {
        Some(4) if p.len() >= 20 => p[16..20] == addr.octets(),
        Some(6) if p.len() >= 40 => {
            let d = &p[24..40];
            d == addr6.octets()
                || (d[..12] == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]
                    && d[12..] == addr.octets())
        }
        _ => false,
    }
}

/// Rounds of local delivery per [`Core::poll_transmit`]: a handshake to
/// ourselves takes three.
const LOCAL_ROUNDS: usize = 16;

/// An `io::Error` carrying `code`, the errno the kernel would return.
pub(crate) fn errno(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}
