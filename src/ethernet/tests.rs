//! The adapter over an in-memory frame link: the test plays the other
//! hosts on the wire, reading and writing frames on the pipe's far end.

use super::*;
use crate::device::{PipeLink, pipe_pair};
use crate::wire::Ipv4Packet;
use std::time::Duration;

const OUR_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x0a]);
const PEER_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x0b]);
const OURS: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const PEER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

fn ours6() -> Ipv6Addr {
    "fd00::2".parse().unwrap()
}

fn peer6() -> Ipv6Addr {
    "fd00::1".parse().unwrap()
}

fn config() -> EthernetConfig {
    EthernetConfig {
        mac: OUR_MAC,
        ipv4: Some(Prefix {
            addr: OURS,
            len: 24,
        }),
        ipv6: Some(Prefix {
            addr: ours6(),
            len: 64,
        }),
        gateway: None,
        gateway6: None,
        neighbors: NeighborConfig::default(),
        dhcp: false,
        slaac: false,
        mld: false,
    }
}

struct Wire {
    host: EthernetLink<PipeLink>,
    far: PipeLink,
    now: Instant,
}

impl Wire {
    fn new(cfg: EthernetConfig) -> Wire {
        let (a, far) = pipe_pair(1514);
        let mut w = Wire {
            host: EthernetLink::new(a, cfg),
            far,
            now: Instant::ZERO,
        };
        // The gratuitous ARP goes out at the first call; take it away.
        let garp = w.recv();
        assert!(garp.is_empty());
        assert_eq!(w.frames().len(), 1);
        w
    }

    /// What the host delivers up.
    fn recv(&mut self) -> Vec<Packet> {
        let mut got = Vec::new();
        self.host.recv_batch(self.now, &mut got, 64).unwrap();
        got
    }

    /// What the host put on the wire.
    fn frames(&mut self) -> Vec<Packet> {
        let mut got = Vec::new();
        while self.far.recv_batch(self.now, &mut got, 64).unwrap() > 0 {}
        got
    }

    fn inject(&mut self, frame: Packet) {
        self.far.send_batch(self.now, &mut vec![frame]).unwrap();
    }

    fn send(&mut self, packet: Packet) {
        let mut batch = vec![packet];
        assert_eq!(self.host.send_batch(self.now, &mut batch).unwrap(), 1);
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
    }
}

fn eth(dst: MacAddr, src: MacAddr, ethertype: EtherType, payload: &[u8]) -> Packet {
    let mut f = vec![0u8; 14];
    EthernetRepr {
        dst,
        src,
        ethertype,
    }
    .emit(&mut f)
    .unwrap();
    f.extend_from_slice(payload);
    f
}

fn arp_frame(dst: MacAddr, repr: ArpRepr) -> Packet {
    let mut p = [0u8; 28];
    repr.emit(&mut p).unwrap();
    eth(dst, repr.source_mac, EtherType::Arp, &p)
}

fn arp_of(frame: &[u8]) -> Option<(EthernetRepr, ArpRepr)> {
    let f = EthernetFrame::new_checked(frame).ok()?;
    let e = EthernetRepr::parse(&f).ok()?;
    if e.ethertype != EtherType::Arp {
        return None;
    }
    Some((
        e,
        ArpRepr::parse(&ArpPacket::new_checked(f.payload()).ok()?).ok()?,
    ))
}

/// A minimal IPv4 datagram (UDP-numbered, payload `body`).
fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, body: &[u8]) -> Packet {
    let repr = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        protocol: IpProtocol::Udp,
        payload_len: body.len(),
        ttl: 64,
        ident: 1,
        dont_frag: true,
        more_frags: false,
        frag_offset: 0,
        dscp: 0,
        ecn: 0,
    };
    let mut p = vec![0u8; repr.buffer_len()];
    repr.emit(&mut p).unwrap();
    p[20..].copy_from_slice(body);
    p
}

fn ipv6(src: Ipv6Addr, dst: Ipv6Addr, next: IpProtocol, hop: u8, body: &[u8]) -> Packet {
    let repr = Ipv6Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: next,
        payload_len: body.len(),
        hop_limit: hop,
        traffic_class: 0,
        flow_label: 0,
    };
    let mut p = vec![0u8; repr.buffer_len()];
    repr.emit(&mut p).unwrap();
    p[40..].copy_from_slice(body);
    p
}

fn ndp_frame(dst_mac: MacAddr, src: Ipv6Addr, dst: Ipv6Addr, repr: NdpRepr) -> Packet {
    let mut m = vec![0u8; repr.buffer_len()];
    repr.emit(&mut m, src, dst).unwrap();
    eth(
        dst_mac,
        PEER_MAC,
        EtherType::Ipv6,
        &ipv6(src, dst, IpProtocol::Icmpv6, 255, &m),
    )
}

/// The neighbour discovery message a frame carries, with its addresses
/// and the frame's destination MAC.
fn ndp_of(frame: &[u8]) -> Option<(MacAddr, Ipv6Addr, Ipv6Addr, NdpRepr)> {
    let e = EthernetRepr::parse(&EthernetFrame::new_checked(frame).ok()?).ok()?;
    let ip = &frame[14..];
    if e.ethertype != EtherType::Ipv6 || ip[6] != 58 || ip[7] != 255 {
        return None;
    }
    let src = Ipv6Addr::from(<[u8; 16]>::try_from(&ip[8..24]).ok()?);
    let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&ip[24..40]).ok()?);
    Some((
        e.dst,
        src,
        dst,
        NdpRepr::parse_bytes(&ip[40..], src, dst).ok()?,
    ))
}

fn request(for_ip: Ipv4Addr, from_ip: Ipv4Addr, from_mac: MacAddr) -> Packet {
    arp_frame(
        MacAddr::BROADCAST,
        ArpRepr {
            operation: ArpOperation::Request,
            source_mac: from_mac,
            source_ip: from_ip,
            target_mac: MacAddr::ZERO,
            target_ip: for_ip,
        },
    )
}

fn reply(from_ip: Ipv4Addr, from_mac: MacAddr) -> Packet {
    arp_frame(
        OUR_MAC,
        ArpRepr {
            operation: ArpOperation::Reply,
            source_mac: from_mac,
            source_ip: from_ip,
            target_mac: OUR_MAC,
            target_ip: OURS,
        },
    )
}

#[test]
fn announces_itself_with_a_gratuitous_arp_at_start() {
    let (a, mut far) = pipe_pair(1514);
    let mut host = EthernetLink::new(a, config());
    assert_eq!(host.poll_at(), Some(Instant::ZERO), "due at once");
    host.recv_batch(Instant::ZERO, &mut Vec::new(), 64).unwrap();
    let mut got = Vec::new();
    far.recv_batch(Instant::ZERO, &mut got, 64).unwrap();
    let (e, arp) = arp_of(&got[0]).unwrap();
    assert_eq!((e.dst, e.src), (MacAddr::BROADCAST, OUR_MAC));
    assert_eq!(arp.operation, ArpOperation::Request);
    assert_eq!((arp.source_ip, arp.target_ip), (OURS, OURS));
    assert_eq!(host.poll_at(), None, "once only");
    host.recv_batch(Instant::ZERO, &mut Vec::new(), 64).unwrap();
    assert_eq!(far.pending(), 0);
}

#[test]
fn answers_arp_requests_for_its_own_address_only() {
    let mut w = Wire::new(config());
    w.inject(request(OURS, PEER, PEER_MAC));
    w.inject(request(Ipv4Addr::new(10, 0, 0, 77), PEER, PEER_MAC));
    assert!(w.recv().is_empty(), "ARP never goes up");
    let frames = w.frames();
    assert_eq!(frames.len(), 1, "one answer: {frames:?}");
    let (e, arp) = arp_of(&frames[0]).unwrap();
    assert_eq!((e.dst, e.src), (PEER_MAC, OUR_MAC));
    assert_eq!(
        arp,
        ArpRepr {
            operation: ArpOperation::Reply,
            source_mac: OUR_MAC,
            source_ip: OURS,
            target_mac: PEER_MAC,
            target_ip: PEER,
        }
    );
    let c = w.host.counters();
    assert_eq!((c.arp_answered, c.arp_not_ours), (1, 1));
    // The asker is remembered (stale), so answering it needs no request.
    assert_eq!(
        w.host.neighbors().get(IpAddr::V4(PEER)),
        Some((NeighborState::Stale, PEER_MAC))
    );
    w.send(ipv4(OURS, PEER, b"hi"));
    let frames = w.frames();
    assert_eq!(frames.len(), 1);
    assert_eq!(&frames[0][..6], &PEER_MAC.0);
    assert_eq!(&frames[0][14..], &ipv4(OURS, PEER, b"hi")[..]);
}

#[test]
fn queues_while_resolving_and_sends_in_order_once_answered() {
    let mut w = Wire::new(config());
    let target = Ipv4Addr::new(10, 0, 0, 9);
    w.send(ipv4(OURS, target, b"one"));
    w.send(ipv4(OURS, target, b"two"));
    let frames = w.frames();
    assert_eq!(frames.len(), 1, "one request, no datagram yet");
    let (e, arp) = arp_of(&frames[0]).unwrap();
    assert_eq!(e.dst, MacAddr::BROADCAST);
    assert_eq!(
        (arp.operation, arp.target_ip),
        (ArpOperation::Request, target)
    );
    assert_eq!(arp.source_ip, OURS);
    w.inject(reply(target, PEER_MAC));
    w.recv();
    let frames = w.frames();
    assert_eq!(frames.len(), 2);
    assert_eq!(&frames[0][14..], &ipv4(OURS, target, b"one")[..]);
    assert_eq!(&frames[1][14..], &ipv4(OURS, target, b"two")[..]);
    assert!(frames.iter().all(|f| f[..6] == PEER_MAC.0));
}

#[test]
fn gives_up_after_three_requests_and_tells_the_core_host_unreachable() {
    let mut w = Wire::new(config());
    let target = Ipv4Addr::new(10, 0, 0, 9);
    let sent = ipv4(OURS, target, b"lost");
    w.send(sent.clone());
    let mut requests = w.frames().len();
    for _ in 0..2 {
        assert_eq!(w.host.poll_at(), Some(w.now + Duration::from_secs(1)));
        w.advance(Duration::from_secs(1));
        assert!(w.recv().is_empty());
        requests += w.frames().len();
    }
    assert_eq!(requests, 3);
    w.advance(Duration::from_secs(1));
    let up = w.recv();
    assert!(w.frames().is_empty(), "no fourth request");
    assert_eq!(up.len(), 1);
    let ip = Ipv4Packet::new_checked(&up[0][..]).unwrap();
    assert_eq!((ip.src_addr(), ip.dst_addr()), (OURS, OURS));
    match Icmpv4Repr::parse_bytes(ip.payload()).unwrap() {
        Icmpv4Repr::DstUnreachable { reason, quoted } => {
            assert_eq!(reason, icmpv4::DstUnreachable::HostUnreachable);
            assert_eq!(quoted, &sent[..]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(w.host.counters().tx_unresolved, 1);
    assert!(w.host.neighbors().is_empty());
}

#[test]
fn unsolicited_replies_and_adverts_create_no_entries() {
    let mut w = Wire::new(config());
    for n in 0..1000u32 {
        let ip = Ipv4Addr::from(0x0a01_0000 + n);
        w.inject(reply(ip, PEER_MAC));
        let na = NdpRepr::NeighborAdvert {
            flags: AdvertFlags {
                router: false,
                solicited: true,
                override_: true,
            },
            target: Ipv6Addr::from((0xfd00_u128 << 112) | (u128::from(n) + 10)),
            target_mac: Some(PEER_MAC),
        };
        w.inject(ndp_frame(OUR_MAC, peer6(), ours6(), na));
        if n % 100 == 99 {
            w.recv();
        }
    }
    w.recv();
    assert!(w.host.neighbors().is_empty());
    assert_eq!(w.host.neighbors().stats().unsolicited_ignored, 2000);
    assert!(w.frames().is_empty(), "nothing answered");
}

#[test]
fn a_flood_of_requests_leaves_the_cache_bounded_and_the_host_answering() {
    let mut cfg = config();
    cfg.neighbors.max_entries = 32;
    let mut w = Wire::new(cfg);
    for n in 0..5000u32 {
        let from = Ipv4Addr::from(0x0a00_1000 + n);
        let mac = MacAddr([2, 1, 0, 0, (n >> 8) as u8, n as u8]);
        w.inject(request(OURS, from, mac));
        if n % 500 == 499 {
            w.recv();
            assert_eq!(w.frames().len(), 500, "every request answered");
        }
    }
    assert_eq!(w.host.neighbors().len(), 32);
    assert_eq!(w.host.counters().arp_answered, 5000);
}

#[test]
fn off_link_destinations_need_a_gateway() {
    let mut w = Wire::new(config());
    let far_away = Ipv4Addr::new(192, 0, 2, 1);
    w.send(ipv4(OURS, far_away, b"x"));
    assert!(w.frames().is_empty());
    let up = w.recv();
    let ip = Ipv4Packet::new_checked(&up[0][..]).unwrap();
    assert!(matches!(
        Icmpv4Repr::parse_bytes(ip.payload()),
        Ok(Icmpv4Repr::DstUnreachable {
            reason: icmpv4::DstUnreachable::NetUnreachable,
            ..
        })
    ));
    assert_eq!(w.host.counters().tx_no_route, 1);

    let mut cfg = config();
    cfg.gateway = Some(PEER);
    let mut w = Wire::new(cfg);
    w.send(ipv4(OURS, far_away, b"x"));
    let frames = w.frames();
    let (_, arp) = arp_of(&frames[0]).unwrap();
    assert_eq!(arp.target_ip, PEER, "the gateway is resolved");
    w.inject(reply(PEER, PEER_MAC));
    w.recv();
    let frames = w.frames();
    assert_eq!(frames.len(), 1);
    assert_eq!(&frames[0][..6], &PEER_MAC.0);
    assert_eq!(&frames[0][14..], &ipv4(OURS, far_away, b"x")[..]);
}

#[test]
fn broadcast_and_multicast_need_no_resolution() {
    let mut w = Wire::new(config());
    w.send(ipv4(OURS, Ipv4Addr::new(10, 0, 0, 255), b"b"));
    w.send(ipv4(OURS, Ipv4Addr::BROADCAST, b"b"));
    w.send(ipv4(OURS, Ipv4Addr::new(224, 0, 0, 251), b"m"));
    let all = "ff02::1".parse().unwrap();
    w.send(ipv6(ours6(), all, IpProtocol::Udp, 1, b"m"));
    let dsts: Vec<MacAddr> = w
        .frames()
        .iter()
        .map(|f| MacAddr(f[..6].try_into().unwrap()))
        .collect();
    assert_eq!(
        dsts,
        [
            MacAddr::BROADCAST,
            MacAddr::BROADCAST,
            MacAddr([1, 0, 0x5e, 0, 0, 251]),
            MacAddr([0x33, 0x33, 0, 0, 0, 1])
        ]
    );
}

#[test]
fn answers_neighbour_solicitations_for_its_own_addresses_only() {
    let mut w = Wire::new(config());
    let ns = |target| NdpRepr::NeighborSolicit {
        target,
        source_mac: Some(PEER_MAC),
    };
    let group = |a| MacAddr::from_ipv6_multicast(solicited_node(a));
    w.inject(ndp_frame(
        group(ours6()),
        peer6(),
        solicited_node(ours6()),
        ns(ours6()),
    ));
    let other: Ipv6Addr = "fd00::99".parse().unwrap();
    w.inject(ndp_frame(
        group(other),
        peer6(),
        solicited_node(other),
        ns(other),
    ));
    let ll = w.host.link_local();
    assert_eq!(ll.to_string(), "fe80::ff:fe00:a");
    let peer_ll: Ipv6Addr = "fe80::1".parse().unwrap();
    w.inject(ndp_frame(group(ll), peer_ll, solicited_node(ll), ns(ll)));
    assert!(w.recv().is_empty());
    let answers: Vec<_> = w.frames().iter().filter_map(|f| ndp_of(f)).collect();
    assert_eq!(answers.len(), 2, "{answers:?}");
    for ((mac, src, dst, repr), (target, to)) in
        answers.iter().zip([(ours6(), peer6()), (ll, peer_ll)])
    {
        assert_eq!((*mac, *src, *dst), (PEER_MAC, target, to));
        assert_eq!(
            *repr,
            NdpRepr::NeighborAdvert {
                flags: AdvertFlags {
                    router: false,
                    solicited: true,
                    override_: true
                },
                target,
                target_mac: Some(OUR_MAC),
            }
        );
    }
    let c = w.host.counters();
    // The other address's group is not ours: the frame is not even read.
    assert_eq!((c.ns_answered, c.rx_not_for_us), (2, 1));
    assert_eq!(
        w.host.neighbors().get(IpAddr::V6(peer6())),
        Some((NeighborState::Stale, PEER_MAC))
    );
}

#[test]
fn a_duplicate_address_check_for_our_address_is_answered_to_all_nodes() {
    let mut w = Wire::new(config());
    let ns = NdpRepr::NeighborSolicit {
        target: ours6(),
        source_mac: None,
    };
    let group = solicited_node(ours6());
    w.inject(ndp_frame(
        MacAddr::from_ipv6_multicast(group),
        Ipv6Addr::UNSPECIFIED,
        group,
        ns,
    ));
    w.recv();
    let frames = w.frames();
    let (mac, _, dst, repr) = ndp_of(&frames[0]).unwrap();
    assert_eq!(dst.to_string(), "ff02::1");
    assert_eq!(mac, MacAddr([0x33, 0x33, 0, 0, 0, 1]));
    assert!(
        matches!(repr, NdpRepr::NeighborAdvert { flags, .. } if !flags.solicited && flags.override_)
    );
}

#[test]
fn resolves_ipv6_with_a_solicitation_to_the_solicited_node_group() {
    let mut w = Wire::new(config());
    let target: Ipv6Addr = "fd00::9".parse().unwrap();
    let packet = ipv6(ours6(), target, IpProtocol::Udp, 64, b"v6");
    w.send(packet.clone());
    let frames = w.frames();
    let (mac, src, dst, repr) = ndp_of(&frames[0]).unwrap();
    assert_eq!(mac, MacAddr([0x33, 0x33, 0xff, 0, 0, 9]));
    assert_eq!((src, dst), (ours6(), solicited_node(target)));
    assert_eq!(
        repr,
        NdpRepr::NeighborSolicit {
            target,
            source_mac: Some(OUR_MAC)
        }
    );
    // An advertisement with the wrong hop limit was forwarded: ignored.
    let na = NdpRepr::NeighborAdvert {
        flags: AdvertFlags {
            router: false,
            solicited: true,
            override_: true,
        },
        target,
        target_mac: Some(PEER_MAC),
    };
    let mut m = vec![0u8; na.buffer_len()];
    na.emit(&mut m, target, ours6()).unwrap();
    let forwarded = eth(
        OUR_MAC,
        PEER_MAC,
        EtherType::Ipv6,
        &ipv6(target, ours6(), IpProtocol::Icmpv6, 254, &m),
    );
    w.inject(forwarded);
    w.recv();
    assert!(w.frames().is_empty());
    w.inject(ndp_frame(OUR_MAC, target, ours6(), na));
    assert!(w.recv().is_empty(), "NDP never goes up");
    let frames = w.frames();
    assert_eq!(frames.len(), 1);
    assert_eq!(&frames[0][..6], &PEER_MAC.0);
    assert_eq!(&frames[0][14..], &packet[..]);
    assert_eq!(
        w.host.neighbors().get(IpAddr::V6(target)),
        Some((NeighborState::Reachable, PEER_MAC))
    );
}

#[test]
fn drops_frames_not_for_us_and_tagged_frames_and_strips_the_rest() {
    let mut w = Wire::new(config());
    let packet = ipv4(PEER, OURS, b"");
    let for_us = eth(OUR_MAC, PEER_MAC, EtherType::Ipv4, &packet);
    let mut padded = for_us.clone();
    padded.resize(60, 0); // the minimum frame
    w.inject(padded);
    w.inject(eth(PEER_MAC, PEER_MAC, EtherType::Ipv4, &packet));
    w.inject(eth(
        MacAddr([0x33, 0x33, 0xff, 1, 2, 3]),
        PEER_MAC,
        EtherType::Ipv6,
        &[0x60; 60],
    ));
    let mut tagged = eth(OUR_MAC, PEER_MAC, EtherType::Vlan, &[0, 5, 8, 0]);
    tagged.extend_from_slice(&packet);
    w.inject(tagged);
    w.inject(eth(OUR_MAC, PEER_MAC, EtherType::Unknown(0x88cc), &[0; 46]));
    w.inject(vec![1, 2, 3]);
    let up = w.recv();
    assert_eq!(up, [packet], "the padding is cut off");
    let c = w.host.counters();
    assert_eq!(c.rx_frames, 6);
    assert_eq!(c.rx_not_for_us, 2);
    assert_eq!(c.rx_vlan, 1);
    assert_eq!(c.rx_unknown_type, 1);
    assert_eq!(c.rx_malformed, 1);
    assert!(w.frames().is_empty());
}

#[test]
fn the_ip_mtu_is_the_frame_mtu_less_the_header() {
    let (a, _far) = pipe_pair(9014);
    assert_eq!(EthernetLink::new(a, config()).mtu(), 9000);
}

mod dhcp_client {
    use super::*;
    use crate::wire::dhcp::{DhcpPacket, DhcpRepr, MessageType};
    use crate::wire::{IpAddr, UdpRepr};

    /// A server's message in a frame from `PEER_MAC`.
    fn dhcp_frame(dst_mac: MacAddr, src: Ipv4Addr, dst: Ipv4Addr, msg: &DhcpRepr) -> Packet {
        let mut m = vec![0u8; msg.buffer_len()];
        msg.emit(&mut m).unwrap();
        let udp = UdpRepr {
            src_port: 67,
            dst_port: 68,
        };
        let mut body = vec![0u8; udp.buffer_len(m.len())];
        udp.emit(&mut body, IpAddr::V4(src), IpAddr::V4(dst), &m)
            .unwrap();
        eth(dst_mac, PEER_MAC, EtherType::Ipv4, &ipv4(src, dst, &body))
    }

    /// The client's message in a frame, with the frame's destination and
    /// the IP source and destination.
    fn dhcp_of(frame: &[u8]) -> Option<(MacAddr, Ipv4Addr, Ipv4Addr, DhcpRepr)> {
        let f = EthernetFrame::new_checked(frame).ok()?;
        if f.ethertype() != EtherType::Ipv4 {
            return None;
        }
        let ip = Ipv4Packet::new_checked(f.payload()).ok()?;
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        let (udp, m) =
            UdpRepr::parse_datagram(ip.payload(), IpAddr::V4(src), IpAddr::V4(dst)).ok()?;
        if (udp.src_port, udp.dst_port) != (68, 67) {
            return None;
        }
        let msg = DhcpRepr::parse(&DhcpPacket::new_checked(m).ok()?).ok()?;
        Some((f.dst_addr(), src, dst, msg))
    }

    fn answer(to: &DhcpRepr, kind: MessageType) -> DhcpRepr {
        let mut r = DhcpRepr::client(kind, to.xid, to.client_mac);
        r.client_id = None;
        r.max_size = None;
        r.request_parameters = false;
        r.your_addr = OURS;
        r.server_id = Some(PEER);
        r.lease_time = Some(3600);
        r.subnet_mask = Some(Ipv4Addr::new(255, 255, 255, 0));
        r.router = Some(PEER);
        r.dns_servers = vec![PEER];
        r
    }

    fn dhcp_wire() -> Wire {
        let mut cfg = config();
        cfg.dhcp = true;
        let (a, far) = pipe_pair(1514);
        Wire {
            host: EthernetLink::new(a, cfg),
            far,
            now: Instant::ZERO,
        }
    }

    #[test]
    fn a_lease_from_frames_gives_the_address_the_gateway_and_an_event_for_the_core() {
        let mut w = dhcp_wire();
        assert!(w.recv().is_empty());
        assert!(w.frames().is_empty(), "no DISCOVER in the first second");
        w.advance(Duration::from_secs(1));
        let due = w.host.poll_at().unwrap();
        assert!(due < w.now + Duration::from_secs(1));
        w.now = due;
        assert!(w.recv().is_empty());
        // No gratuitous ARP without an address: only the DISCOVER.
        let frames = w.frames();
        assert_eq!(frames.len(), 1, "{frames:?}");
        let (mac, src, dst, discover) = dhcp_of(&frames[0]).expect("a DISCOVER");
        assert_eq!(discover.message_type, MessageType::Discover);
        assert_eq!(
            (mac, src, dst),
            (
                MacAddr::BROADCAST,
                Ipv4Addr::UNSPECIFIED,
                Ipv4Addr::BROADCAST
            )
        );
        assert_eq!(discover.client_mac, OUR_MAC);
        assert!(!discover.broadcast, "unicast replies are heard");
        // Before the lease the address is not ours: no ARP answer.
        w.inject(arp_frame(
            MacAddr::BROADCAST,
            ArpRepr {
                operation: ArpOperation::Request,
                source_mac: PEER_MAC,
                source_ip: PEER,
                target_mac: MacAddr::ZERO,
                target_ip: OURS,
            },
        ));
        assert!(w.recv().is_empty());
        assert!(w.frames().is_empty());
        // An OFFER unicast to our MAC and the offered address; one with a
        // broken UDP checksum first, counted and ignored.
        let offer = answer(&discover, MessageType::Offer);
        let mut bad = dhcp_frame(OUR_MAC, PEER, OURS, &offer);
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        w.inject(bad);
        assert!(w.recv().is_empty());
        assert_eq!(w.host.counters().rx_malformed, 1);
        assert!(w.frames().is_empty());
        w.inject(dhcp_frame(OUR_MAC, PEER, OURS, &offer));
        assert!(w.recv().is_empty(), "DHCP never reaches the core");
        let frames = w.frames();
        let (mac, _, dst, request) = dhcp_of(&frames[0]).expect("a REQUEST");
        assert_eq!(request.message_type, MessageType::Request);
        assert_eq!((mac, dst), (MacAddr::BROADCAST, Ipv4Addr::BROADCAST));
        assert_eq!(request.requested_ip, Some(OURS));
        assert!(w.host.poll_event().is_none());
        w.inject(dhcp_frame(
            OUR_MAC,
            PEER,
            OURS,
            &answer(&request, MessageType::Ack),
        ));
        w.recv();
        assert_eq!(
            w.host.poll_event(),
            Some(LinkEvent::Ipv4 {
                addr: Some(Prefix {
                    addr: OURS,
                    len: 24
                }),
                gateway: Some(PEER),
                dns_servers: vec![PEER],
            })
        );
        assert!(w.host.dhcp_lease().is_some());
        // Bound: a gratuitous ARP for the new address, and ARP answered.
        w.recv();
        let garp = w.frames();
        assert!(
            garp.iter()
                .filter_map(|f| arp_of(f))
                .any(|(_, a)| a.source_ip == OURS && a.target_ip == OURS),
            "no gratuitous ARP"
        );
        w.inject(arp_frame(
            MacAddr::BROADCAST,
            ArpRepr {
                operation: ArpOperation::Request,
                source_mac: PEER_MAC,
                source_ip: PEER,
                target_mac: MacAddr::ZERO,
                target_ip: OURS,
            },
        ));
        w.recv();
        let reply = w.frames();
        assert!(
            reply
                .iter()
                .filter_map(|f| arp_of(f))
                .any(|(_, a)| a.operation == ArpOperation::Reply && a.source_ip == OURS)
        );
        // At T1 (half of 3600 s) the renewal goes straight to the server's
        // MAC, from our address.
        w.advance(Duration::from_secs(1800));
        assert!(w.host.poll_at().is_some_and(|t| t <= w.now));
        w.recv();
        let renew = w.frames();
        let (mac, src, dst, msg) = renew.iter().find_map(|f| dhcp_of(f)).expect("renewal");
        assert_eq!(msg.message_type, MessageType::Request);
        assert_eq!((mac, src, dst), (PEER_MAC, OURS, PEER));
        assert_eq!(msg.client_addr, OURS);
        // At the stop: a RELEASE to the server, and the address is gone.
        w.host.close(w.now);
        let release = w.frames();
        let (mac, _, dst, msg) = release.iter().find_map(|f| dhcp_of(f)).expect("release");
        assert_eq!(msg.message_type, MessageType::Release);
        assert_eq!((mac, dst), (PEER_MAC, PEER));
        assert_eq!(
            w.host.poll_event(),
            Some(LinkEvent::Ipv4 {
                addr: None,
                gateway: None,
                dns_servers: vec![],
            })
        );
    }

    #[test]
    fn ipv4_from_the_core_is_dropped_until_a_lease_is_bound() {
        let mut w = dhcp_wire();
        w.recv();
        w.frames();
        w.send(ipv4(OURS, PEER, &[0; 8]));
        assert!(w.frames().is_empty());
        assert_eq!(w.host.counters().tx_dropped, 1);
    }
}

mod slaac_host {
    use super::*;
    use crate::wire::ndp::{PrefixInfo, RouterAdvert};

    fn router_ll() -> Ipv6Addr {
        "fe80::1".parse().unwrap()
    }

    fn slaac_wire() -> Wire {
        let mut cfg = config();
        cfg.slaac = true;
        let (a, far) = pipe_pair(1514);
        Wire {
            host: EthernetLink::new(a, cfg),
            far,
            // Past the second SLAAC waits after the start before its first
            // solicitation (`the_link_local_check_waits_a_second`).
            now: Instant::ZERO + Duration::from_secs(1),
        }
    }

    #[test]
    fn the_link_local_check_waits_a_second_after_the_start() {
        let mut w = slaac_wire();
        w.now = Instant::ZERO;
        let ll = w.host.link_local();
        w.recv();
        assert!(dad_targets(&w.frames()).is_empty());
        assert_eq!(
            w.host.poll_at(),
            Some(Instant::ZERO + Duration::from_secs(1))
        );
        w.advance(Duration::from_millis(999));
        w.recv();
        assert!(dad_targets(&w.frames()).is_empty());
        w.advance(Duration::from_millis(1));
        w.recv();
        assert_eq!(dad_targets(&w.frames()), vec![ll]);
    }

    /// The address SLAAC forms in fd00::/64 from our MAC.
    fn formed() -> Ipv6Addr {
        let mut o = [0u8; 16];
        o[0] = 0xfd;
        o[8..].copy_from_slice(&OUR_MAC.eui64());
        Ipv6Addr::from(o)
    }

    fn ra_frame(lifetime: u16, valid: u32) -> Packet {
        let ra = RouterAdvert {
            hop_limit: 64,
            managed: false,
            other: false,
            router_lifetime: lifetime,
            source_mac: Some(PEER_MAC),
            mtu: None,
            prefixes: vec![PrefixInfo {
                prefix: "fd00::".parse().unwrap(),
                len: 64,
                on_link: true,
                autonomous: true,
                valid,
                preferred: valid / 2,
            }],
        };
        let all = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
        let mut m = vec![0u8; ra.buffer_len()];
        ra.emit(&mut m, router_ll(), all).unwrap();
        eth(
            MacAddr::from_ipv6_multicast(all),
            PEER_MAC,
            EtherType::Ipv6,
            &ipv6(router_ll(), all, IpProtocol::Icmpv6, 255, &m),
        )
    }

    /// The DAD solicitations among `frames`: their targets.
    fn dad_targets(frames: &[Packet]) -> Vec<Ipv6Addr> {
        frames
            .iter()
            .filter_map(|f| ndp_of(f))
            .filter_map(|(mac, src, dst, r)| match r {
                NdpRepr::NeighborSolicit {
                    target,
                    source_mac: None,
                } if src.is_unspecified()
                    && dst == solicited_node(target)
                    && mac == MacAddr::from_ipv6_multicast(dst) =>
                {
                    Some(target)
                }
                _ => None,
            })
            .collect()
    }

    fn router_solicits(frames: &[Packet]) -> usize {
        frames
            .iter()
            .filter(|f| f.len() > 54 && f[12..14] == [0x86, 0xdd] && f[14 + 40] == 133)
            .count()
    }

    fn solicit_for(target: Ipv6Addr) -> Packet {
        ndp_frame(
            MacAddr::from_ipv6_multicast(solicited_node(target)),
            router_ll(),
            solicited_node(target),
            NdpRepr::NeighborSolicit {
                target,
                source_mac: Some(PEER_MAC),
            },
        )
    }

    fn answered(frames: &[Packet], target: Ipv6Addr) -> bool {
        frames.iter().filter_map(|f| ndp_of(f)).any(
            |(_, _, _, r)| matches!(r, NdpRepr::NeighborAdvert { target: t, .. } if t == target),
        )
    }

    #[test]
    fn checks_the_link_local_address_solicits_a_router_and_checks_the_formed_address() {
        let mut w = slaac_wire();
        let ll = w.host.link_local();
        w.recv();
        assert_eq!(dad_targets(&w.frames()), vec![ll], "DAD for fe80:: first");
        // Tentative: a resolution of it goes unanswered.
        w.inject(solicit_for(ll));
        w.recv();
        assert!(!answered(&w.frames(), ll));
        // After RetransTimer (1 s) it is ours: a router solicitation.
        w.advance(Duration::from_secs(1));
        w.recv();
        assert_eq!(router_solicits(&w.frames()), 1);
        w.inject(solicit_for(ll));
        w.recv();
        assert!(
            answered(&w.frames(), ll),
            "the link-local address answers now"
        );
        // A router advertises fd00::/64: the formed address gets its DAD.
        w.inject(ra_frame(1800, 7200));
        w.recv();
        assert_eq!(dad_targets(&w.frames()), vec![formed()]);
        assert!(w.host.poll_event().is_none(), "not before its DAD");
        w.advance(Duration::from_millis(500));
        w.recv();
        assert!(w.host.poll_event().is_none());
        w.advance(Duration::from_millis(500));
        w.recv();
        assert_eq!(
            w.host.poll_event(),
            Some(LinkEvent::Ipv6 {
                addr: Some(Prefix {
                    addr: formed(),
                    len: 64
                }),
                gateway: Some(router_ll()),
            })
        );
        w.inject(solicit_for(formed()));
        w.recv();
        assert!(answered(&w.frames(), formed()));
        // No more router solicitations once a router answered.
        w.advance(Duration::from_secs(20));
        w.recv();
        assert_eq!(router_solicits(&w.frames()), 0);
        // A router lifetime of 0 withdraws the router; the address stays.
        w.inject(ra_frame(0, 7200));
        w.recv();
        assert_eq!(
            w.host.poll_event(),
            Some(LinkEvent::Ipv6 {
                addr: Some(Prefix {
                    addr: formed(),
                    len: 64
                }),
                gateway: None,
            })
        );
    }

    #[test]
    fn a_duplicate_found_by_dad_is_not_used() {
        let mut w = slaac_wire();
        w.recv();
        w.advance(Duration::from_secs(1));
        w.recv();
        w.frames();
        w.inject(ra_frame(1800, 7200));
        w.recv();
        assert_eq!(dad_targets(&w.frames()), vec![formed()]);
        // Another host advertises it.
        w.inject(ndp_frame(
            MacAddr::from_ipv6_multicast(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1)),
            router_ll(),
            Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1),
            NdpRepr::NeighborAdvert {
                flags: AdvertFlags {
                    router: false,
                    solicited: false,
                    override_: true,
                },
                target: formed(),
                target_mac: Some(PEER_MAC),
            },
        ));
        w.recv();
        w.advance(Duration::from_secs(2));
        w.recv();
        assert!(w.host.poll_event().is_none(), "a duplicate is never used");
        assert_eq!(w.host.counters().address_conflicts, 1);
        w.inject(solicit_for(formed()));
        w.recv();
        assert!(!answered(&w.frames(), formed()));
    }

    #[test]
    fn a_duplicate_link_local_address_stops_autoconfiguration() {
        let mut w = slaac_wire();
        let ll = w.host.link_local();
        w.recv();
        w.frames();
        // Another host runs DAD for the same address.
        w.inject(ndp_frame(
            MacAddr::from_ipv6_multicast(solicited_node(ll)),
            Ipv6Addr::UNSPECIFIED,
            solicited_node(ll),
            NdpRepr::NeighborSolicit {
                target: ll,
                source_mac: None,
            },
        ));
        w.recv();
        w.advance(Duration::from_secs(10));
        w.recv();
        assert_eq!(router_solicits(&w.frames()), 0);
        w.inject(ra_frame(1800, 7200));
        w.recv();
        assert!(dad_targets(&w.frames()).is_empty());
        assert!(w.host.poll_event().is_none());
        assert_eq!(w.host.counters().address_conflicts, 1);
    }

    #[test]
    fn the_address_goes_at_the_end_of_its_valid_lifetime() {
        let mut w = slaac_wire();
        w.recv();
        w.advance(Duration::from_secs(1));
        w.recv();
        w.inject(ra_frame(1800, 60));
        w.recv();
        w.advance(Duration::from_secs(1));
        w.recv();
        assert!(matches!(
            w.host.poll_event(),
            Some(LinkEvent::Ipv6 { addr: Some(_), .. })
        ));
        w.advance(Duration::from_secs(59));
        w.recv();
        assert_eq!(
            w.host.poll_event(),
            Some(LinkEvent::Ipv6 {
                addr: None,
                gateway: None
            })
        );
    }
}

mod mld_reports {
    use super::*;

    fn mld_wire(slaac: bool) -> Wire {
        let mut cfg = config();
        cfg.mld = true;
        cfg.slaac = slaac;
        let (a, far) = pipe_pair(1514);
        Wire {
            host: EthernetLink::new(a, cfg),
            far,
            now: Instant::ZERO,
        }
    }

    /// The MLDv2 report a frame carries: its destination MAC, IPv6 source
    /// and (record type, group) records.
    /// A report: the frame's destination, the IPv6 source, the records.
    type Report = (MacAddr, Ipv6Addr, Vec<(u8, Ipv6Addr)>);

    fn report_of(frame: &[u8]) -> Option<Report> {
        let e = EthernetRepr::parse(&EthernetFrame::new_checked(frame).ok()?).ok()?;
        let ip = &frame[14..];
        if e.ethertype != EtherType::Ipv6 || ip.len() < 56 || ip[6] != 0 || ip[7] != 1 {
            return None;
        }
        let icmp = &ip[48..];
        if icmp[0] != 143 {
            return None;
        }
        let src = Ipv6Addr::from(<[u8; 16]>::try_from(&ip[8..24]).ok()?);
        let n = usize::from(u16::from_be_bytes([icmp[6], icmp[7]]));
        let records = (0..n)
            .map(|i| {
                let r = &icmp[8 + 20 * i..28 + 20 * i];
                (
                    r[0],
                    Ipv6Addr::from(<[u8; 16]>::try_from(&r[4..20]).unwrap()),
                )
            })
            .collect();
        Some((e.dst, src, records))
    }

    fn reports(w: &mut Wire) -> Vec<Report> {
        w.frames().iter().filter_map(|f| report_of(f)).collect()
    }

    fn query() -> Packet {
        let src: Ipv6Addr = "fe80::1".parse().unwrap();
        let all: Ipv6Addr = "ff02::1".parse().unwrap();
        let mut icmp = vec![0u8; 28];
        icmp[0] = 130;
        let sum = crate::wire::checksum::combine(&[
            crate::wire::checksum::pseudo_header_v6(src, all, IpProtocol::Icmpv6, 28),
            crate::wire::checksum::data(&icmp),
        ]);
        icmp[2..4].copy_from_slice(&(!sum).to_be_bytes());
        let body = [&[58, 0, 5, 2, 0, 0, 1, 0][..], &icmp].concat();
        eth(
            MacAddr::from_ipv6_multicast(all),
            PEER_MAC,
            EtherType::Ipv6,
            &ipv6(src, all, IpProtocol::HopByHop, 1, &body),
        )
    }

    #[test]
    fn reports_the_solicited_node_groups_twice_at_start_and_answers_a_query() {
        let mut w = mld_wire(false);
        let ll = w.host.link_local();
        let mut groups = [solicited_node(ll), solicited_node(ours6())];
        groups.sort();
        let joined: Vec<(u8, Ipv6Addr)> = groups.iter().map(|g| (4, *g)).collect();
        let sorted = |mut r: Vec<(u8, Ipv6Addr)>| {
            r.sort();
            r
        };
        w.recv();
        let r = reports(&mut w);
        assert_eq!(r.len(), 1, "{r:?}");
        assert_eq!(r[0].0, MacAddr([0x33, 0x33, 0, 0, 0, 0x16]));
        assert_eq!(r[0].1, ll);
        assert_eq!(sorted(r[0].2.clone()), joined);
        // Robustness 2: once more a second later, then quiet.
        w.advance(Duration::from_millis(999));
        w.recv();
        assert!(reports(&mut w).is_empty());
        w.advance(Duration::from_millis(1));
        w.recv();
        let r = reports(&mut w);
        assert_eq!(r.len(), 1);
        assert_eq!(sorted(r[0].2.clone()), joined);
        w.advance(Duration::from_secs(10));
        w.recv();
        assert!(reports(&mut w).is_empty());
        // A query is answered with every group, MODE_IS_EXCLUDE.
        w.inject(query());
        assert!(w.recv().is_empty(), "the query never reaches the core");
        let r = reports(&mut w);
        assert_eq!(r.len(), 1);
        let listening: Vec<(u8, Ipv6Addr)> = groups.iter().map(|g| (2, *g)).collect();
        assert_eq!(sorted(r[0].2.clone()), listening);
    }

    #[test]
    fn with_slaac_the_tentative_link_local_group_is_reported_from_unspecified() {
        let mut w = mld_wire(true);
        let ll = w.host.link_local();
        w.recv();
        let r = reports(&mut w);
        assert_eq!(r.len(), 1, "{r:?}");
        assert_eq!(r[0].1, Ipv6Addr::UNSPECIFIED);
        assert_eq!(r[0].2, vec![(4, solicited_node(ll))]);
    }
}
