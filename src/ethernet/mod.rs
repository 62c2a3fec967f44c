//! The stack as an Ethernet host: [`EthernetLink`] turns a link that
//! carries Ethernet II frames (a TAP device, an in-memory pair) into the
//! IP-datagram [`Link`] the core and the runtime already drive.
//!
//! Owns the host's L2 identity (its MAC), the [`NeighborCache`] shared by
//! ARP (RFC 826) and NDP (RFC 4861), the choice of next hop (on-link
//! prefix or gateway), the answers to ARP requests and neighbour
//! solicitations for our own addresses, the gratuitous ARP at start, and
//! which frames are for us (our MAC, broadcast, the groups we belong to:
//! all-nodes, our solicited-node groups, all-hosts). Must not touch: the
//! core's state, sockets, clocks and I/O. It is sans-IO in the way every
//! link wrapper is: time is the `now` the runtime passes, its timers are
//! reported by [`Link::poll_at`], and its only I/O is calls on the frame
//! link it wraps.
//!
//! Why a `Link` and not a layer inside the core: the core, its TCP and
//! its tests stay as they are, and everything that wraps a link (the pcap
//! tap, the fault injector) works above it on IP datagrams. What the core
//! must learn from the link layer comes back the way Linux reports it
//! too, as an ICMP error addressed to ourselves: an address that does not
//! resolve after three tries gives host unreachable (ICMPv4 code 1,
//! ICMPv6 address unreachable) quoting each packet that waited, and an
//! off-link destination without a gateway gives network unreachable
//! (ICMPv4 code 0, ICMPv6 no route), so the socket that sent it gets
//! `EHOSTUNREACH` or `ENETUNREACH` by the core's ordinary ICMP path.
//!
//! Frames dropped and counted ([`EthernetCounters`]): addressed to another
//! MAC or a group we did not join, 802.1Q/802.1ad tagged (no VLANs), of an
//! unknown EtherType, malformed. Neighbour discovery messages (ICMPv6
//! 133-137 right after the IPv6 header) are handled here and never reach
//! the core; redirects are ignored, and so are router advertisements
//! unless SLAAC is on ([`EthernetConfig::slaac`], `slaac.rs`: duplicate
//! address detection, router solicitations, addresses from advertised
//! prefixes, reported through [`Link::poll_event`] like DHCP's), as are
//! replies and advertisements for addresses we never asked about.
//! Multicast listener queries are answered with MLDv2 reports for our
//! solicited-node groups, which are also reported when joined
//! ([`EthernetConfig::mld`], `mld.rs`).
//!
//! With [`EthernetConfig::dhcp`] the host has no IPv4 address until the
//! DHCP client (`dhcp.rs`, the transport; `crate::dhcp`, the client) binds
//! a lease; each change of address comes out of [`Link::poll_event`] for
//! the runtime to apply to the core, and [`Link::close`] sends the
//! RELEASE.

mod dhcp;
mod mld;
pub mod neighbor;
mod slaac;

pub use neighbor::{Action, NeighborCache, NeighborConfig, NeighborState, NeighborStats};

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::RawFd;

use crate::device::{Link, LinkEvent, Packet};
use crate::time::Instant;
use crate::wire::arp::{self, ArpOperation, ArpPacket, ArpRepr};
use crate::wire::ethernet::{self, EtherType, EthernetFrame, EthernetRepr, MacAddr};
use crate::wire::ndp::{self, AdvertFlags, NdpRepr, solicited_node};
use crate::wire::{Icmpv4Repr, Icmpv6Repr};
use crate::wire::{IpProtocol, Ipv4Repr, Ipv6Repr, icmpv4, icmpv6};

/// Frames the adapter holds for the link when the link is full; past it,
/// `send_batch` leaves IP datagrams in the caller's batch.
const MAX_TX_FRAMES: usize = 1024;
/// ICMP errors waiting to be delivered up to the core.
const MAX_UP: usize = 64;
/// The hop limit / TTL of the ICMP errors made for the core.
const ERROR_TTL: u8 = 64;

pub use crate::wire::Prefix;

/// How an [`EthernetLink`] is set up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EthernetConfig {
    /// Our MAC address (unicast).
    pub mac: MacAddr,
    /// Our IPv4 address and on-link prefix, if IPv4 is on.
    pub ipv4: Option<Prefix<Ipv4Addr>>,
    /// Our IPv6 address and on-link prefix, if IPv6 is on.
    pub ipv6: Option<Prefix<Ipv6Addr>>,
    /// The next hop for off-link IPv4 destinations.
    pub gateway: Option<Ipv4Addr>,
    /// The next hop for off-link IPv6 destinations.
    pub gateway6: Option<Ipv6Addr>,
    /// The neighbour cache's bounds and timers.
    pub neighbors: NeighborConfig,
    /// Whether a DHCPv4 client gets the IPv4 address, prefix and gateway
    /// (`USTACK_ADDR=dhcp`): `ipv4` and `gateway` are then ignored, and the
    /// host has no IPv4 address until a lease is bound.
    pub dhcp: bool,
    /// Whether IPv6 addresses come from router advertisements (SLAAC,
    /// `USTACK_ADDR6=auto`), each after duplicate address detection, the
    /// link-local one included: `ipv6` and `gateway6` are then ignored.
    pub slaac: bool,
    /// Whether to send MLDv2 reports for our solicited-node groups and
    /// answer queries (`mld.rs`), when IPv6 is on. The runtime always
    /// does; tests of other things may leave them out.
    pub mld: bool,
}

/// The link-local address made from `mac` (RFC 4862 section 5.3, the
/// modified EUI-64 of RFC 4291 appendix A).
pub fn link_local(mac: MacAddr) -> Ipv6Addr {
    let mut o = [0u8; 16];
    o[0] = 0xfe;
    o[1] = 0x80;
    o[8..].copy_from_slice(&mac.eui64());
    Ipv6Addr::from(o)
}

/// What an [`EthernetLink`] did with frames, counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EthernetCounters {
    /// Frames received from the link.
    pub rx_frames: u64,
    /// IP datagrams delivered up.
    pub rx_delivered: u64,
    /// Frames for another MAC or a group we did not join.
    pub rx_not_for_us: u64,
    /// 802.1Q / 802.1ad tagged frames (refused: no VLANs).
    pub rx_vlan: u64,
    /// Frames of an EtherType we do not speak, or a family we have off.
    pub rx_unknown_type: u64,
    /// Frames, ARP packets or NDP messages that do not parse.
    pub rx_malformed: u64,
    /// ARP requests for one of our addresses, answered.
    pub arp_answered: u64,
    /// ARP requests for other addresses (not answered).
    pub arp_not_ours: u64,
    /// Neighbour solicitations for our addresses, answered.
    pub ns_answered: u64,
    /// Neighbour solicitations for other addresses (not answered).
    pub ns_not_ours: u64,
    /// Router solicitations and advertisements and redirects, ignored.
    pub ndp_ignored: u64,
    /// Another host claims one of our addresses (ARP or NDP).
    pub address_conflicts: u64,
    /// Datagrams to an off-link destination with no gateway.
    pub tx_no_route: u64,
    /// Datagrams whose next hop did not resolve.
    pub tx_unresolved: u64,
    /// Datagrams that were not IP, or of a family we have off.
    pub tx_dropped: u64,
}

/// An Ethernet host over a frame link (see the module docs).
///
/// Two stacks on one in-memory "wire", each an Ethernet host:
///
/// ```
/// use ustack::device::pipe_pair;
/// use ustack::ethernet::{EthernetConfig, EthernetLink, Prefix};
/// use ustack::wire::ethernet::MacAddr;
///
/// let (a, _b) = pipe_pair(1514); // frames up to 1514 bytes: an IP MTU of 1500
/// let link = EthernetLink::new(a, EthernetConfig {
///     mac: MacAddr([2, 0, 0, 0, 0, 1]),
///     ipv4: Some(Prefix { addr: "10.0.0.1".parse().unwrap(), len: 24 }),
///     ipv6: None,
///     gateway: None,
///     gateway6: None,
///     neighbors: Default::default(),
///     dhcp: false,
///     slaac: false,
///     mld: true,
/// });
/// # use ustack::device::Link;
/// assert_eq!(link.mtu(), 1500);
/// ```
pub struct EthernetLink<L> {
    inner: L,
    cfg: EthernetConfig,
    link_local: Ipv6Addr,
    cache: NeighborCache,
    counters: EthernetCounters,
    /// Frames ready for the link, in order.
    tx: Vec<Packet>,
    /// ICMP errors for the core, delivered by the next `recv_batch`.
    up: VecDeque<Packet>,
    /// Frames just read, before they are sorted.
    rx: Vec<Packet>,
    /// Buffers of consumed frames, to build control frames in.
    spare: Vec<Packet>,
    actions: Vec<Action>,
    announced: bool,
    last_now: Instant,
    /// The DHCPv4 client, with `USTACK_ADDR=dhcp`.
    dhcp: Option<dhcp::DhcpHost>,
    /// What the runtime must apply to the core ([`Link::poll_event`]).
    events: VecDeque<LinkEvent>,
    /// IPv6 autoconfiguration, with `USTACK_ADDR6=auto`.
    slaac: Option<slaac::Slaac>,
    /// Multicast listener reports.
    mld: Option<mld::Mld>,
}

impl<L: Link> EthernetLink<L> {
    /// The host `cfg` describes on the frame link `inner`, whose `mtu()`
    /// is the largest frame (the IP MTU plus 14).
    pub fn new(inner: L, mut cfg: EthernetConfig) -> EthernetLink<L> {
        let dhcp = cfg.dhcp.then(|| {
            cfg.ipv4 = None;
            cfg.gateway = None;
            let seed = crate::rand::Rng::from_os().next_u64();
            dhcp::DhcpHost::new(cfg.mac, seed)
        });
        let slaac = cfg.slaac.then(|| {
            cfg.ipv6 = None;
            cfg.gateway6 = None;
            slaac::Slaac::new()
        });
        let mld = (cfg.mld && (cfg.ipv6.is_some() || cfg.slaac)).then(mld::Mld::default);
        EthernetLink {
            inner,
            link_local: link_local(cfg.mac),
            cache: NeighborCache::new(cfg.neighbors.clone()),
            cfg,
            counters: EthernetCounters::default(),
            tx: Vec::new(),
            up: VecDeque::new(),
            rx: Vec::new(),
            spare: Vec::new(),
            actions: Vec::new(),
            announced: false,
            last_now: Instant::ZERO,
            dhcp,
            events: VecDeque::new(),
            slaac,
            mld,
        }
    }

    /// The DHCP client's lease, with `USTACK_ADDR=dhcp` once bound.
    pub fn dhcp_lease(&self) -> Option<&crate::dhcp::Lease> {
        self.dhcp.as_ref().and_then(|h| h.client.lease())
    }

    /// The counters.
    pub fn counters(&self) -> EthernetCounters {
        self.counters
    }

    /// The neighbour cache (to inspect it).
    pub fn neighbors(&self) -> &NeighborCache {
        &self.cache
    }

    /// Our MAC address.
    pub fn mac(&self) -> MacAddr {
        self.cfg.mac
    }

    /// Our IPv6 link-local address.
    pub fn link_local(&self) -> Ipv6Addr {
        self.link_local
    }

    /// The frame link underneath.
    pub fn inner(&self) -> &L {
        &self.inner
    }

    fn is_our_v6(&self, a: Ipv6Addr) -> bool {
        (a == self.link_local && self.link_local_usable())
            || self.cfg.ipv6.is_some_and(|p| p.addr == a)
    }

    /// Whether a frame to `dst` is for us.
    fn accepts(&self, dst: MacAddr) -> bool {
        if dst == self.cfg.mac || dst == MacAddr::BROADCAST {
            return true;
        }
        if !dst.is_multicast() {
            return false;
        }
        let v6 = |g: Ipv6Addr| dst == MacAddr::from_ipv6_multicast(g);
        if v6(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1)) || v6(solicited_node(self.link_local)) {
            return true;
        }
        if let Some(p) = self.cfg.ipv6
            && v6(solicited_node(p.addr))
        {
            return true;
        }
        if let Some(t) = self.tentative_global()
            && v6(solicited_node(t))
        {
            return true;
        }
        self.cfg.ipv4.is_some() && dst == MacAddr::from_ipv4_multicast(Ipv4Addr::new(224, 0, 0, 1))
    }

    /// A buffer holding `header` then `payload_len` zero bytes.
    fn frame_buffer(&mut self, header: EthernetRepr, payload_len: usize) -> Packet {
        let mut f = self.spare.pop().unwrap_or_default();
        f.clear();
        f.resize(ethernet::HEADER_LEN + payload_len, 0);
        let _ = header.emit(&mut f);
        f
    }

    /// Puts an Ethernet header in front of an IP datagram, in place.
    fn push_ip(&mut self, dst: MacAddr, mut packet: Packet) {
        let ethertype = match packet.first().map(|b| b >> 4) {
            Some(4) => EtherType::Ipv4,
            _ => EtherType::Ipv6,
        };
        let mut header = [0u8; ethernet::HEADER_LEN];
        let _ = EthernetRepr {
            dst,
            src: self.cfg.mac,
            ethertype,
        }
        .emit(&mut header);
        packet.splice(0..0, header);
        self.tx.push(packet);
    }

    fn push_arp(&mut self, dst: MacAddr, repr: ArpRepr) {
        let header = EthernetRepr {
            dst,
            src: self.cfg.mac,
            ethertype: EtherType::Arp,
        };
        let mut f = self.frame_buffer(header, arp::PACKET_LEN);
        let _ = repr.emit(&mut f[ethernet::HEADER_LEN..]);
        self.tx.push(f);
    }

    fn push_ndp(&mut self, dst_mac: MacAddr, src: Ipv6Addr, dst: Ipv6Addr, repr: NdpRepr) {
        let header = EthernetRepr {
            dst: dst_mac,
            src: self.cfg.mac,
            ethertype: EtherType::Ipv6,
        };
        let ip = Ipv6Repr {
            src_addr: src,
            dst_addr: dst,
            next_header: IpProtocol::Icmpv6,
            payload_len: repr.buffer_len(),
            hop_limit: ndp::HOP_LIMIT,
            traffic_class: 0,
            flow_label: 0,
        };
        let mut f = self.frame_buffer(header, ip.buffer_len());
        let at = ethernet::HEADER_LEN;
        if ip.emit(&mut f[at..]).is_ok() {
            let _ = repr.emit(&mut f[at + 40..], src, dst);
            self.tx.push(f);
        }
    }

    /// Runs what the neighbour cache asked for.
    fn run_actions(&mut self) {
        let actions = std::mem::take(&mut self.actions);
        for action in actions {
            match action {
                Action::Solicit { ip, unicast } => self.solicit(ip, unicast),
                Action::Send { mac, packets } => {
                    for p in packets {
                        self.push_ip(mac, p);
                    }
                }
                Action::Failed { packets, .. } => {
                    for p in packets {
                        self.counters.tx_unresolved += 1;
                        self.unreachable(&p, false);
                    }
                }
            }
        }
    }

    fn solicit(&mut self, ip: IpAddr, unicast: Option<MacAddr>) {
        match ip {
            IpAddr::V4(target) => {
                let Some(ours) = self.cfg.ipv4 else { return };
                let repr = ArpRepr {
                    operation: ArpOperation::Request,
                    source_mac: self.cfg.mac,
                    source_ip: ours.addr,
                    target_mac: MacAddr::ZERO,
                    target_ip: target,
                };
                self.push_arp(unicast.unwrap_or(MacAddr::BROADCAST), repr);
            }
            IpAddr::V6(target) => {
                // Section 7.2.2: a source of ours of the target's scope.
                let src = match self.cfg.ipv6 {
                    Some(p) if !is_link_local(target) => p.addr,
                    _ => self.link_local,
                };
                let (dst_mac, dst) = match unicast {
                    Some(mac) => (mac, target),
                    None => {
                        let group = solicited_node(target);
                        (MacAddr::from_ipv6_multicast(group), group)
                    }
                };
                let repr = NdpRepr::NeighborSolicit {
                    target,
                    source_mac: Some(self.cfg.mac),
                };
                self.push_ndp(dst_mac, src, dst, repr);
            }
        }
    }

    /// Hands the core an ICMP error about `packet`, one of its own:
    /// network unreachable (`no_route`) or host unreachable.
    fn unreachable(&mut self, packet: &[u8], no_route: bool) {
        if self.up.len() >= MAX_UP {
            return;
        }
        let mut out = Vec::new();
        match packet.first().map(|b| b >> 4) {
            Some(4) => {
                let Some(ours) = self.cfg.ipv4 else { return };
                let icmp = Icmpv4Repr::DstUnreachable {
                    reason: if no_route {
                        icmpv4::DstUnreachable::NetUnreachable
                    } else {
                        icmpv4::DstUnreachable::HostUnreachable
                    },
                    quoted: icmpv4::quote(packet),
                };
                let ip = Ipv4Repr {
                    src_addr: ours.addr,
                    dst_addr: ours.addr,
                    protocol: IpProtocol::Icmp,
                    payload_len: icmp.buffer_len(),
                    ttl: ERROR_TTL,
                    ident: 0,
                    dont_frag: false,
                    more_frags: false,
                    frag_offset: 0,
                    dscp: 0,
                    ecn: 0,
                };
                out.resize(ip.buffer_len(), 0);
                if ip.emit(&mut out).is_err() || icmp.emit(&mut out[20..]).is_err() {
                    return;
                }
            }
            Some(6) => {
                let Some(ours) = self.cfg.ipv6 else { return };
                let icmp = Icmpv6Repr::DstUnreachable {
                    reason: if no_route {
                        icmpv6::DstUnreachable::NoRoute
                    } else {
                        icmpv6::DstUnreachable::AddrUnreachable
                    },
                    quoted: icmpv6::quote(packet),
                };
                let ip = Ipv6Repr {
                    src_addr: ours.addr,
                    dst_addr: ours.addr,
                    next_header: IpProtocol::Icmpv6,
                    payload_len: icmp.buffer_len(),
                    hop_limit: ERROR_TTL,
                    traffic_class: 0,
                    flow_label: 0,
                };
                out.resize(ip.buffer_len(), 0);
                if ip.emit(&mut out).is_err()
                    || icmp.emit(&mut out[40..], ours.addr, ours.addr).is_err()
                {
                    return;
                }
            }
            _ => return,
        }
        self.up.push_back(out);
    }

    /// Sends one IP datagram from the core: to a group's MAC, or to the
    /// next hop's once resolved.
    fn route(&mut self, now: Instant, packet: Packet) {
        let hop = match packet.first().map(|b| b >> 4) {
            Some(4) if packet.len() >= 20 => {
                let dst = Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]);
                let Some(ours) = self.cfg.ipv4 else {
                    self.counters.tx_dropped += 1;
                    return;
                };
                if dst.is_broadcast() || ours.broadcast() == Some(dst) {
                    return self.push_ip(MacAddr::BROADCAST, packet);
                }
                if dst.is_multicast() {
                    return self.push_ip(MacAddr::from_ipv4_multicast(dst), packet);
                }
                if ours.contains(dst) {
                    IpAddr::V4(dst)
                } else if let Some(gw) = self.cfg.gateway {
                    IpAddr::V4(gw)
                } else {
                    self.counters.tx_no_route += 1;
                    return self.unreachable(&packet, true);
                }
            }
            Some(6) if packet.len() >= 40 => {
                let mut o = [0u8; 16];
                o.copy_from_slice(&packet[24..40]);
                let dst = Ipv6Addr::from(o);
                let Some(ours) = self.cfg.ipv6 else {
                    self.counters.tx_dropped += 1;
                    return;
                };
                if dst.is_multicast() {
                    return self.push_ip(MacAddr::from_ipv6_multicast(dst), packet);
                }
                if ours.contains(dst) || is_link_local(dst) {
                    IpAddr::V6(dst)
                } else if let Some(gw) = self.cfg.gateway6 {
                    IpAddr::V6(gw)
                } else {
                    self.counters.tx_no_route += 1;
                    return self.unreachable(&packet, true);
                }
            }
            _ => {
                self.counters.tx_dropped += 1;
                return;
            }
        };
        match self.cache.lookup(now, hop) {
            Some(mac) => self.push_ip(mac, packet),
            None => {
                self.cache.enqueue(now, hop, packet, &mut self.actions);
                self.run_actions();
            }
        }
    }

    /// Timers, and the announcement at start.
    fn service(&mut self, now: Instant) {
        self.last_now = now;
        self.dhcp_service(now);
        self.mld_service(now);
        self.slaac_service(now);
        // A group SLAAC just joined is reported in the same turn.
        self.mld_service(now);
        if !self.announced {
            self.announced = true;
            if let Some(ours) = self.cfg.ipv4 {
                // A gratuitous ARP (RFC 5227 section 3's announcement):
                // neighbours that cached our address update it.
                let repr = ArpRepr {
                    operation: ArpOperation::Request,
                    source_mac: self.cfg.mac,
                    source_ip: ours.addr,
                    target_mac: MacAddr::ZERO,
                    target_ip: ours.addr,
                };
                self.push_arp(MacAddr::BROADCAST, repr);
            }
        }
        self.cache.poll(now, &mut self.actions);
        self.run_actions();
    }

    /// Hands the link what is ready; what it cannot take stays, in order.
    fn flush(&mut self, now: Instant) -> io::Result<()> {
        if self.tx.is_empty() {
            return Ok(());
        }
        let result = self.inner.send_batch(now, &mut self.tx).map(|_| ());
        if result.is_err() {
            // A link that fails outright would otherwise hold them forever.
            self.tx.clear();
        }
        result
    }

    /// Sorts one received frame: an IP datagram for the core comes back.
    fn input(&mut self, now: Instant, mut frame: Packet) -> Option<Packet> {
        self.counters.rx_frames += 1;
        let Ok(eth) = EthernetFrame::new_checked(&frame[..]) else {
            self.counters.rx_malformed += 1;
            return self.spare(frame);
        };
        let (dst, src, ethertype) = (eth.dst_addr(), eth.src_addr(), eth.ethertype());
        if !self.accepts(dst) || src == self.cfg.mac {
            self.counters.rx_not_for_us += 1;
            return self.spare(frame);
        }
        let payload = &frame[ethernet::HEADER_LEN..];
        let ip_len = match ethertype {
            EtherType::Vlan | EtherType::QinQ => {
                self.counters.rx_vlan += 1;
                return self.spare(frame);
            }
            EtherType::Arp => {
                self.arp_input(now, &frame[ethernet::HEADER_LEN..]);
                return self.spare(frame);
            }
            EtherType::Ipv4 if self.dhcp.is_some() && dhcp::is_dhcp_reply(payload) => {
                self.dhcp_input(now, src, &frame[ethernet::HEADER_LEN..]);
                return self.spare(frame);
            }
            EtherType::Ipv4 if self.cfg.ipv4.is_some() && payload.len() >= 20 => {
                usize::from(u16::from_be_bytes([payload[2], payload[3]]))
            }
            EtherType::Ipv6
                if (self.cfg.ipv6.is_some() || self.slaac.is_some()) && payload.len() >= 40 =>
            {
                if self.mld.is_some()
                    && payload[6] == u8::from(IpProtocol::HopByHop)
                    && crate::wire::mld::is_query(payload)
                {
                    self.mld_query();
                    self.mld_service(now);
                    return self.spare(frame);
                }
                if payload[6] == u8::from(IpProtocol::Icmpv6)
                    && (133..=137).contains(&payload.get(40).copied().unwrap_or(0))
                {
                    self.ndp_input(now, src, &frame[ethernet::HEADER_LEN..]);
                    return self.spare(frame);
                }
                40 + usize::from(u16::from_be_bytes([payload[4], payload[5]]))
            }
            EtherType::Ipv4 | EtherType::Ipv6 => {
                let off = match ethertype {
                    EtherType::Ipv4 => self.cfg.ipv4.is_none(),
                    _ => self.cfg.ipv6.is_none() && self.slaac.is_none(),
                };
                if off {
                    self.counters.rx_unknown_type += 1;
                } else {
                    self.counters.rx_malformed += 1;
                }
                return self.spare(frame);
            }
            _ => {
                self.counters.rx_unknown_type += 1;
                return self.spare(frame);
            }
        };
        frame.drain(..ethernet::HEADER_LEN);
        // A short datagram arrives padded to the 60-byte minimum frame.
        if ip_len >= 20 && ip_len < frame.len() {
            frame.truncate(ip_len);
        }
        self.counters.rx_delivered += 1;
        Some(frame)
    }

    fn spare(&mut self, frame: Packet) -> Option<Packet> {
        if self.spare.len() < 64 {
            self.spare.push(frame);
        }
        None
    }

    fn arp_input(&mut self, now: Instant, payload: &[u8]) {
        let Ok(repr) = ArpPacket::new_checked(payload).and_then(|p| ArpRepr::parse(&p)) else {
            self.counters.rx_malformed += 1;
            return;
        };
        let Some(ours) = self.cfg.ipv4 else {
            self.counters.rx_unknown_type += 1;
            return;
        };
        if !repr.source_mac.is_unicast() {
            self.counters.rx_malformed += 1;
            return;
        }
        if repr.source_ip == ours.addr {
            // Someone else uses our address (RFC 5227 section 2.4).
            self.counters.address_conflicts += 1;
            log::warn!(
                "ethernet: {} at {} also claims our address",
                repr.source_ip,
                repr.source_mac
            );
            return;
        }
        let sender = IpAddr::V4(repr.source_ip);
        // An RFC 5227 probe (sender 0.0.0.0) teaches nothing.
        let known_sender = !repr.source_ip.is_unspecified();
        match repr.operation {
            ArpOperation::Request if repr.target_ip == ours.addr => {
                if known_sender {
                    self.cache
                        .learn(now, sender, repr.source_mac, &mut self.actions);
                }
                self.counters.arp_answered += 1;
                let reply = ArpRepr {
                    operation: ArpOperation::Reply,
                    source_mac: self.cfg.mac,
                    source_ip: ours.addr,
                    target_mac: repr.source_mac,
                    target_ip: repr.source_ip,
                };
                self.push_arp(repr.source_mac, reply);
            }
            ArpOperation::Request => {
                // RFC 826's merge: a sender we know may have moved.
                if known_sender && self.cache.get(sender).is_some() {
                    self.cache.advert(
                        now,
                        sender,
                        Some(repr.source_mac),
                        false,
                        true,
                        &mut self.actions,
                    );
                }
                self.counters.arp_not_ours += 1;
            }
            ArpOperation::Reply if known_sender => {
                self.cache.advert(
                    now,
                    sender,
                    Some(repr.source_mac),
                    true,
                    true,
                    &mut self.actions,
                );
            }
            _ => self.counters.rx_malformed += 1,
        }
        self.run_actions();
    }

    /// A neighbour discovery message: `ip` is the IPv6 packet, `src_mac`
    /// the frame's source.
    fn ndp_input(&mut self, now: Instant, src_mac: MacAddr, ip: &[u8]) {
        let src = Ipv6Addr::from(<[u8; 16]>::try_from(&ip[8..24]).unwrap_or([0; 16]));
        let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&ip[24..40]).unwrap_or([0; 16]));
        let len = 40 + usize::from(u16::from_be_bytes([ip[4], ip[5]]));
        let Some(message) = ip.get(40..len) else {
            self.counters.rx_malformed += 1;
            return;
        };
        if ip[7] != ndp::HOP_LIMIT {
            // RFC 4861 section 7.1: possibly forwarded, so not on-link.
            self.counters.rx_malformed += 1;
            return;
        }
        let repr = match NdpRepr::parse_bytes(message, src, dst) {
            Ok(r) => r,
            Err(crate::wire::Error::Unsupported)
                if self.slaac.is_some() && message[0] == ndp::msg_type::ROUTER_ADVERT =>
            {
                return self.ra_input(now, src, dst, message);
            }
            Err(crate::wire::Error::Unsupported) => {
                self.counters.ndp_ignored += 1;
                return;
            }
            Err(_) => {
                self.counters.rx_malformed += 1;
                return;
            }
        };
        match repr {
            NdpRepr::NeighborSolicit { target, source_mac } => {
                if self
                    .slaac
                    .as_ref()
                    .is_some_and(|s| s.tentative(target, self.link_local))
                {
                    // RFC 4862 5.4.3: another host's DAD for it makes it
                    // a duplicate; a resolution of it is not answered.
                    if src.is_unspecified() {
                        self.dad_failed(target, src_mac);
                    }
                    return;
                }
                if !self.is_our_v6(target) {
                    self.counters.ns_not_ours += 1;
                    return;
                }
                self.counters.ns_answered += 1;
                let advert = NdpRepr::NeighborAdvert {
                    flags: AdvertFlags {
                        router: false,
                        solicited: !src.is_unspecified(),
                        override_: true,
                    },
                    target,
                    target_mac: Some(self.cfg.mac),
                };
                if src.is_unspecified() {
                    // Section 7.2.4: answer a duplicate address check to
                    // all nodes.
                    let all = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
                    self.push_ndp(MacAddr::from_ipv6_multicast(all), target, all, advert);
                    return;
                }
                if let Some(mac) = source_mac {
                    self.cache
                        .learn(now, IpAddr::V6(src), mac, &mut self.actions);
                    self.run_actions();
                }
                self.push_ndp(source_mac.unwrap_or(src_mac), target, src, advert);
            }
            NdpRepr::NeighborAdvert {
                flags,
                target,
                target_mac,
            } => {
                if self
                    .slaac
                    .as_ref()
                    .is_some_and(|s| s.tentative(target, self.link_local))
                {
                    // RFC 4862 5.4.4: it is someone else's.
                    return self.dad_failed(target, src_mac);
                }
                if self.is_our_v6(target) {
                    self.counters.address_conflicts += 1;
                    log::warn!("ethernet: {target} is advertised by another host ({src_mac})");
                    return;
                }
                self.cache.advert(
                    now,
                    IpAddr::V6(target),
                    target_mac,
                    flags.solicited,
                    flags.override_,
                    &mut self.actions,
                );
                self.run_actions();
            }
        }
    }
}

fn is_link_local(a: Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

impl<L: Link> Link for EthernetLink<L> {
    fn recv_batch(
        &mut self,
        now: Instant,
        batch: &mut Vec<Packet>,
        max: usize,
    ) -> io::Result<usize> {
        self.service(now);
        let mut n = 0;
        while n < max
            && let Some(p) = self.up.pop_front()
        {
            batch.push(p);
            n += 1;
        }
        let mut result = Ok(());
        while n < max {
            let mut rx = std::mem::take(&mut self.rx);
            match self.inner.recv_batch(now, &mut rx, max - n) {
                Ok(0) => {
                    self.rx = rx;
                    break;
                }
                Ok(_) => {
                    for frame in rx.drain(..) {
                        if let Some(p) = self.input(now, frame) {
                            batch.push(p);
                            n += 1;
                        }
                    }
                    self.rx = rx;
                }
                Err(e) => {
                    self.rx = rx;
                    result = Err(e);
                    break;
                }
            }
        }
        // Answers (and packets resolved by them) leave at once.
        let sent = self.flush(now);
        match result {
            Err(e) if n == 0 => Err(e),
            _ => {
                if let Err(e) = sent {
                    log::debug!("ethernet: sending control frames: {e}");
                }
                Ok(n)
            }
        }
    }

    fn send_batch(&mut self, now: Instant, batch: &mut Vec<Packet>) -> io::Result<usize> {
        self.service(now);
        let mut taken = 0;
        let mut packets = batch.drain(..);
        let mut rest = Vec::new();
        for p in packets.by_ref() {
            if self.tx.len() >= MAX_TX_FRAMES {
                rest.push(p);
                break;
            }
            taken += 1;
            self.route(now, p);
        }
        rest.extend(packets);
        *batch = rest;
        self.flush(now)?;
        Ok(taken)
    }

    fn mtu(&self) -> usize {
        self.inner.mtu().saturating_sub(ethernet::HEADER_LEN)
    }

    fn wait_fd(&self) -> Option<RawFd> {
        self.inner.wait_fd()
    }

    fn poll_at(&self) -> Option<Instant> {
        let dhcp = self.dhcp.as_ref().and_then(|h| h.client.poll_at());
        let slaac = self.slaac.as_ref().and_then(|s| s.poll_at(self.last_now));
        let mld = self.mld_poll_at(self.last_now);
        let mut at = [self.cache.poll_at(), self.inner.poll_at(), dhcp, slaac, mld]
            .into_iter()
            .flatten()
            .min();
        let mut due = |t: Instant| at = Some(at.map_or(t, |a| a.min(t)));
        if !self.announced || !self.up.is_empty() || !self.events.is_empty() {
            // Due now: the announcement, errors and events for the core.
            due(self.last_now);
        } else if !self.tx.is_empty() {
            // Frames the link could not take: try again soon, without
            // spinning on a link that stays full.
            due(self.last_now + std::time::Duration::from_millis(1));
        }
        at
    }

    fn recycle(&mut self, packets: &mut Vec<Packet>) {
        self.inner.recycle(packets);
    }

    fn take_spent(&mut self, into: &mut Vec<Packet>) {
        self.inner.take_spent(into);
    }

    fn poll_event(&mut self) -> Option<LinkEvent> {
        self.events.pop_front()
    }

    fn close(&mut self, now: Instant) {
        self.dhcp_close(now);
        self.inner.close(now);
    }
}

#[cfg(test)]
mod tests;
