//! Tests of the core through its public face: datagrams in, datagrams out.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use super::*;
use crate::wire::{Icmpv4Repr, Icmpv6Repr, IpHeader, Ipv4Repr, UdpRepr, icmpv4, icmpv6, parse_ip};

const US4: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
const PEER4: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
const US6: Ipv6Addr = Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 2);
const PEER6: Ipv6Addr = Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 1);

fn core() -> Core {
    Core::new(CoreConfig::default())
}

/// A second core playing the kernel's side of the link.
fn peer_core() -> Core {
    Core::new(CoreConfig {
        addr: PEER4,
        addr6: PEER6,
        seed: 99,
        ..CoreConfig::default()
    })
}

fn ip_packet(src: IpAddr, dst: IpAddr, protocol: IpProtocol, payload: &[u8]) -> Vec<u8> {
    let h = IpHeader {
        src,
        dst,
        protocol,
        payload_len: payload.len(),
        hop_limit: 64,
        ident: 1,
        dont_frag: false,
        ecn: 0,
    };
    let mut p = vec![0u8; h.buffer_len()];
    let n = h.emit(&mut p).unwrap();
    p[n..].copy_from_slice(payload);
    p
}

fn echo_request_v4(ident: u16, seq_no: u16, data: &[u8]) -> Vec<u8> {
    let r = Icmpv4Repr::EchoRequest {
        ident,
        seq_no,
        data,
    };
    let mut m = vec![0u8; r.buffer_len()];
    r.emit(&mut m).unwrap();
    m
}

fn drain(c: &mut Core, now: Instant) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    c.poll_transmit(now, &mut out);
    out
}

/// Moves every datagram from `a` to `b`; returns how many moved.
fn pump(a: &mut Core, b: &mut Core, now: Instant) -> usize {
    let out = drain(a, now);
    for p in &out {
        b.input(now, p);
    }
    out.len()
}

#[test]
fn answers_ipv4_echo_request_with_same_ident_seq_and_data() {
    let mut c = core();
    let req = echo_request_v4(0x1234, 7, b"hello ping");
    c.input(
        Instant::ZERO,
        &ip_packet(PEER4.into(), US4.into(), IpProtocol::Icmp, &req),
    );
    let out = drain(&mut c, Instant::ZERO);
    assert_eq!(out.len(), 1);
    let v = parse_ip(&out[0]).unwrap();
    assert_eq!((v.src, v.dst), (IpAddr::V4(US4), IpAddr::V4(PEER4)));
    assert_eq!(v.protocol, IpProtocol::Icmp);
    assert_eq!(
        Icmpv4Repr::parse_bytes(v.payload).unwrap(),
        Icmpv4Repr::EchoReply {
            ident: 0x1234,
            seq_no: 7,
            data: b"hello ping"
        }
    );
    assert_eq!(c.counters().echo_replies, 1);
}

#[test]
fn answers_ipv6_echo_request() {
    let mut c = core();
    let r = Icmpv6Repr::EchoRequest {
        ident: 9,
        seq_no: 3,
        data: b"v6",
    };
    let mut m = vec![0u8; r.buffer_len()];
    r.emit(&mut m, PEER6, US6).unwrap();
    c.input(
        Instant::ZERO,
        &ip_packet(PEER6.into(), US6.into(), IpProtocol::Icmpv6, &m),
    );
    let out = drain(&mut c, Instant::ZERO);
    assert_eq!(out.len(), 1);
    let v = parse_ip(&out[0]).unwrap();
    assert_eq!(v.dst, IpAddr::V6(PEER6));
    assert_eq!(
        Icmpv6Repr::parse_bytes(v.payload, US6, PEER6).unwrap(),
        Icmpv6Repr::EchoReply {
            ident: 9,
            seq_no: 3,
            data: b"v6"
        }
    );
}

#[test]
fn drops_datagrams_for_other_hosts_and_garbage_without_reply() {
    let mut c = core();
    let req = echo_request_v4(1, 1, b"x");
    let other = Ipv4Addr::new(10, 77, 0, 9);
    c.input(
        Instant::ZERO,
        &ip_packet(PEER4.into(), other.into(), IpProtocol::Icmp, &req),
    );
    c.input(Instant::ZERO, &[0x45, 0, 0]);
    c.input(Instant::ZERO, &[]);
    assert!(drain(&mut c, Instant::ZERO).is_empty());
    let n = c.counters();
    assert_eq!((n.ip_in, n.ip_not_ours, n.ip_malformed), (3, 1, 2));
}

#[test]
fn large_echo_request_in_fragments_is_reassembled_and_answered_in_fragments() {
    let mut peer = peer_core();
    let mut c = core();
    // The peer core fragments a 4000-byte ICMP message for a 1500 MTU.
    let data: Vec<u8> = (0..4000u32).map(|i| (i * 7) as u8).collect();
    let req = echo_request_v4(5, 6, &data);
    peer.send_datagram(PEER4.into(), US4.into(), IpProtocol::Icmp, &req)
        .unwrap();
    assert_eq!(pump(&mut peer, &mut c, Instant::ZERO), 3);
    let out = drain(&mut c, Instant::ZERO);
    assert_eq!(out.len(), 3, "the reply is fragmented too");
    assert!(out.iter().all(|p| p.len() <= 1500));
    for p in &out {
        peer.input(Instant::ZERO, p);
    }
    assert_eq!(c.counters().reassembled, 1);
    assert_eq!(peer.counters().reassembled, 1);
}

#[test]
fn udp_to_closed_port_gets_port_unreachable_quoting_the_datagram() {
    let mut c = core();
    let mut dgram = vec![0u8; 8 + 3];
    UdpRepr {
        src_port: 4000,
        dst_port: 9999,
    }
    .emit(&mut dgram, PEER4.into(), US4.into(), b"abc")
    .unwrap();
    let packet = ip_packet(PEER4.into(), US4.into(), IpProtocol::Udp, &dgram);
    c.input(Instant::ZERO, &packet);
    let out = drain(&mut c, Instant::ZERO);
    assert_eq!(out.len(), 1);
    let v = parse_ip(&out[0]).unwrap();
    match Icmpv4Repr::parse_bytes(v.payload).unwrap() {
        Icmpv4Repr::DstUnreachable { reason, quoted } => {
            assert_eq!(reason, icmpv4::DstUnreachable::PortUnreachable);
            assert_eq!(quoted, &packet[..]);
        }
        other => panic!("expected port unreachable, got {other:?}"),
    }
    assert_eq!(c.counters().udp_no_port, 1);
}

#[test]
fn icmp_errors_are_rate_limited() {
    let mut c = core();
    let mut dgram = vec![0u8; 8];
    UdpRepr {
        src_port: 1,
        dst_port: 2,
    }
    .emit(&mut dgram, PEER4.into(), US4.into(), b"")
    .unwrap();
    let packet = ip_packet(PEER4.into(), US4.into(), IpProtocol::Udp, &dgram);
    for _ in 0..1000 {
        c.input(Instant::ZERO, &packet);
    }
    let sent = drain(&mut c, Instant::ZERO).len() as u64;
    let n = c.counters();
    assert!(
        sent < 1000,
        "{sent} errors for 1000 datagrams at one instant"
    );
    assert_eq!(sent, n.icmp_errors_out);
    assert_eq!(n.icmp_errors_out + n.icmp_errors_limited, 1000);
}

#[test]
fn no_icmp_error_about_an_icmp_error() {
    let mut c = core();
    // A port unreachable to us about some datagram we never sent, and an
    // unknown protocol inside it: neither may trigger an error.
    let quoted = ip_packet(US4.into(), PEER4.into(), IpProtocol::Udp, &[0; 8]);
    let r = Icmpv4Repr::DstUnreachable {
        reason: icmpv4::DstUnreachable::PortUnreachable,
        quoted: &quoted,
    };
    let mut m = vec![0u8; r.buffer_len()];
    r.emit(&mut m).unwrap();
    c.input(
        Instant::ZERO,
        &ip_packet(PEER4.into(), US4.into(), IpProtocol::Icmp, &m),
    );
    assert!(drain(&mut c, Instant::ZERO).is_empty());
}

#[test]
fn unknown_protocol_gets_protocol_unreachable_v4() {
    let mut c = core();
    c.input(
        Instant::ZERO,
        &ip_packet(PEER4.into(), US4.into(), IpProtocol::Unknown(253), b"??"),
    );
    let out = drain(&mut c, Instant::ZERO);
    assert_eq!(out.len(), 1);
    let v = parse_ip(&out[0]).unwrap();
    assert!(matches!(
        Icmpv4Repr::parse_bytes(v.payload).unwrap(),
        Icmpv4Repr::DstUnreachable {
            reason: icmpv4::DstUnreachable::ProtoUnreachable,
            ..
        }
    ));
}

#[test]
fn reassembly_timeout_sends_time_exceeded_only_with_first_fragment() {
    let mut c = core();
    let first = Ipv4Repr {
        src_addr: PEER4,
        dst_addr: US4,
        protocol: IpProtocol::Udp,
        payload_len: 16,
        ttl: 64,
        ident: 77,
        dont_frag: false,
        more_frags: true,
        frag_offset: 0,
        dscp: 0,
        ecn: 0,
    };
    let mut p = vec![0u8; 20 + 16];
    first.emit(&mut p).unwrap();
    c.input(Instant::ZERO, &p);
    // A second datagram of which only a later fragment came.
    let later = Ipv4Repr {
        ident: 78,
        frag_offset: 16,
        ..first
    };
    let mut q = vec![0u8; 20 + 16];
    later.emit(&mut q).unwrap();
    c.input(Instant::ZERO, &q);
    assert_eq!(c.poll_at(), Some(Instant::ZERO + Duration::from_secs(30)));
    assert!(drain(&mut c, Instant::from_millis(29_999)).is_empty());
    let out = drain(&mut c, Instant::from_millis(30_000));
    assert_eq!(
        out.len(),
        1,
        "one error, for the datagram whose first fragment came"
    );
    let v = parse_ip(&out[0]).unwrap();
    match Icmpv4Repr::parse_bytes(v.payload).unwrap() {
        Icmpv4Repr::TimeExceeded { reason, quoted } => {
            assert_eq!(reason, icmpv4::TimeExceeded::FragReassembly);
            assert_eq!(&quoted[..20], &p[..20]);
        }
        other => panic!("expected time exceeded, got {other:?}"),
    }
    assert_eq!(c.poll_at(), None);
}

fn sa(ip: impl Into<IpAddr>, port: u16) -> SocketAddr {
    SocketAddr::new(ip.into(), port)
}

#[test]
fn udp_datagram_travels_between_two_cores_both_families() {
    let mut a = core();
    let mut b = peer_core();
    for (v6, a_ip, b_ip) in [
        (false, IpAddr::from(US4), IpAddr::from(PEER4)),
        (true, IpAddr::from(US6), IpAddr::from(PEER6)),
    ] {
        let sa_ = a.udp_socket(v6).unwrap();
        a.udp_bind(sa_, sa(a_ip, 5000)).unwrap();
        let sb = b.udp_socket(v6).unwrap();
        b.udp_send_to(Instant::ZERO, sb, b"ping", Some(sa(a_ip, 5000)))
            .unwrap();
        pump(&mut b, &mut a, Instant::ZERO);
        let d = a.udp_recv(sa_, false).unwrap();
        assert_eq!(d.data, b"ping");
        assert_eq!(d.from.ip(), b_ip);
        let (b_local, _) = b.udp_addrs(sb).unwrap();
        assert!(EPHEMERAL_RANGE.contains(&b_local.port()));
        assert_eq!(d.from.port(), b_local.port());
        assert_eq!(
            a.udp_recv(sa_, false).unwrap_err().raw_os_error(),
            Some(libc::EAGAIN)
        );
        a.close(sa_).unwrap();
        b.close(sb).unwrap();
    }
}

const EPHEMERAL_RANGE: core::ops::RangeInclusive<u16> = 32768..=60999;

#[test]
fn udp_30000_byte_datagram_is_fragmented_and_reassembled() {
    let mut a = core();
    let mut b = peer_core();
    let ra = a.udp_socket(false).unwrap();
    a.udp_bind(ra, sa(Ipv4Addr::UNSPECIFIED, 7)).unwrap();
    let sb = b.udp_socket(false).unwrap();
    let data: Vec<u8> = (0..30_000u32).map(|i| (i % 251) as u8).collect();
    b.udp_send_to(Instant::ZERO, sb, &data, Some(sa(US4, 7)))
        .unwrap();
    let moved = pump(&mut b, &mut a, Instant::ZERO);
    assert_eq!(moved, 30_008usize.div_ceil(1480));
    assert_eq!(a.udp_recv(ra, false).unwrap().data, data);
}

#[test]
fn udp_bind_errors_match_linux() {
    let mut c = core();
    let a = c.udp_socket(false).unwrap();
    c.udp_bind(a, sa(US4, 53)).unwrap();
    // Same port, wildcard: conflicts.
    let b = c.udp_socket(false).unwrap();
    let e = c.udp_bind(b, sa(Ipv4Addr::UNSPECIFIED, 53)).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EADDRINUSE));
    // An address that is not ours.
    let e = c
        .udp_bind(b, sa(Ipv4Addr::new(10, 0, 0, 1), 53))
        .unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EADDRNOTAVAIL));
    // A dual-stack v6 socket on the same port conflicts; a v6-only one not.
    let d = c.udp_socket(true).unwrap();
    let e = c.udp_bind(d, sa(Ipv6Addr::UNSPECIFIED, 53)).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EADDRINUSE));
    c.udp_set_options(
        d,
        UdpOptions {
            v6only: true,
            ..Default::default()
        },
    )
    .unwrap();
    c.udp_bind(d, sa(Ipv6Addr::UNSPECIFIED, 53)).unwrap();
    // Binding twice is EINVAL.
    let e = c.udp_bind(a, sa(US4, 54)).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
    // With SO_REUSEADDR on both, the same port is shared.
    let r1 = c.udp_socket(false).unwrap();
    let r2 = c.udp_socket(false).unwrap();
    for r in [r1, r2] {
        c.udp_set_options(
            r,
            UdpOptions {
                reuse_addr: true,
                ..Default::default()
            },
        )
        .unwrap();
        c.udp_bind(r, sa(US4, 99)).unwrap();
    }
    // After close the port is free again.
    c.close(a).unwrap();
    c.udp_bind(b, sa(US4, 53)).unwrap();
    assert_eq!(c.close(a).unwrap_err().raw_os_error(), Some(libc::EBADF));
}

#[test]
fn dual_stack_udp_socket_receives_ipv4_as_mapped_addresses() {
    let mut a = core();
    let mut b = peer_core();
    let s6 = a.udp_socket(true).unwrap();
    a.udp_bind(s6, sa(Ipv6Addr::UNSPECIFIED, 4242)).unwrap();
    let sb = b.udp_socket(false).unwrap();
    b.udp_send_to(Instant::ZERO, sb, b"mapped", Some(sa(US4, 4242)))
        .unwrap();
    pump(&mut b, &mut a, Instant::ZERO);
    let d = a.udp_recv(s6, false).unwrap();
    assert_eq!(d.from.ip(), IpAddr::V6(PEER4.to_ipv6_mapped()));
    // And it answers through the mapped address, over IPv4.
    a.udp_send_to(Instant::ZERO, s6, b"back", Some(d.from))
        .unwrap();
    pump(&mut a, &mut b, Instant::ZERO);
    assert_eq!(b.udp_recv(sb, false).unwrap().data, b"back");
}

#[test]
fn port_unreachable_surfaces_as_connection_refused_on_connected_socket() {
    let mut a = core();
    let mut b = peer_core();
    let s = a.udp_socket(false).unwrap();
    a.udp_connect(s, sa(PEER4, 9)).unwrap();
    a.udp_send_to(Instant::ZERO, s, b"anyone?", None).unwrap();
    pump(&mut a, &mut b, Instant::ZERO); // b has no socket on 9: ICMP back
    assert_eq!(pump(&mut b, &mut a, Instant::ZERO), 1);
    let e = a.udp_recv(s, false).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ECONNREFUSED));
    // Reported once.
    assert_eq!(
        a.udp_recv(s, false).unwrap_err().raw_os_error(),
        Some(libc::EAGAIN)
    );
}

#[test]
fn each_unreachable_code_reaches_a_connected_socket_as_linuxs_errno() {
    use icmpv4::DstUnreachable as D4;
    use icmpv6::DstUnreachable as D6;
    let v4 = [
        (D4::PortUnreachable, libc::ECONNREFUSED),
        (D4::ProtoUnreachable, libc::ECONNREFUSED),
        (D4::NetUnreachable, libc::ENETUNREACH),
        (D4::HostUnreachable, libc::EHOSTUNREACH),
        (D4::Other(13), libc::EHOSTUNREACH),
    ];
    for (reason, want) in v4 {
        let mut a = core();
        let s = a.udp_socket(false).unwrap();
        a.udp_connect(s, sa(PEER4, 9)).unwrap();
        a.udp_send_to(Instant::ZERO, s, b"anyone?", None).unwrap();
        let sent = drain(&mut a, Instant::ZERO).remove(0);
        let err = Icmpv4Repr::DstUnreachable {
            reason,
            quoted: &sent,
        };
        let mut m = vec![0u8; err.buffer_len()];
        err.emit(&mut m).unwrap();
        a.input(
            Instant::ZERO,
            &ip_packet(PEER4.into(), US4.into(), IpProtocol::Icmp, &m),
        );
        let e = a.udp_recv(s, false).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(want), "{reason:?}");
    }
    let v6 = [
        (D6::PortUnreachable, libc::ECONNREFUSED),
        (D6::NoRoute, libc::ENETUNREACH),
        (D6::AdminProhibited, libc::EACCES),
        (D6::AddrUnreachable, libc::EHOSTUNREACH),
    ];
    for (reason, want) in v6 {
        let mut a = core();
        let s = a.udp_socket(true).unwrap();
        a.udp_connect(s, sa(PEER6, 9)).unwrap();
        a.udp_send_to(Instant::ZERO, s, b"anyone?", None).unwrap();
        let sent = drain(&mut a, Instant::ZERO).remove(0);
        let err = Icmpv6Repr::DstUnreachable {
            reason,
            quoted: &sent,
        };
        let mut m = vec![0u8; err.buffer_len()];
        err.emit(&mut m, PEER6, US6).unwrap();
        a.input(
            Instant::ZERO,
            &ip_packet(PEER6.into(), US6.into(), IpProtocol::Icmpv6, &m),
        );
        let e = a.udp_take_error(s).unwrap().unwrap();
        assert_eq!(e.raw_os_error(), Some(want), "{reason:?}");
    }
}

#[test]
fn udp_receive_queue_is_bounded_and_counts_drops() {
    let mut a = Core::new(CoreConfig {
        udp_recv_buf: 1000,
        ..CoreConfig::default()
    });
    let mut b = peer_core();
    let s = a.udp_socket(false).unwrap();
    a.udp_bind(s, sa(US4, 1)).unwrap();
    let sb = b.udp_socket(false).unwrap();
    for _ in 0..5 {
        b.udp_send_to(Instant::ZERO, sb, &[0u8; 300], Some(sa(US4, 1)))
            .unwrap();
    }
    pump(&mut b, &mut a, Instant::ZERO);
    let mut got = 0;
    while a.udp_recv(s, false).is_ok() {
        got += 1;
    }
    assert_eq!(got, 3);
    assert_eq!(a.counters().udp_rcvbuf_drops, 2);
}

#[test]
fn udp_send_rejects_oversize_and_missing_destination() {
    let mut c = core();
    let s = c.udp_socket(false).unwrap();
    let e = c.udp_send_to(Instant::ZERO, s, b"x", None).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EDESTADDRREQ));
    let big = vec![0u8; 65_508];
    let e = c
        .udp_send_to(Instant::ZERO, s, &big, Some(sa(PEER4, 9)))
        .unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EMSGSIZE));
    let e = c
        .udp_send_to(Instant::ZERO, s, b"x", Some(sa(PEER6, 9)))
        .unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EAFNOSUPPORT));
}

#[test]
fn ipv6_udp_socket_reaches_ipv4_peers_unless_v6only() {
    let mut a = core();
    let mut b = peer_core();
    let rb = b.udp_socket(false).unwrap();
    b.udp_bind(rb, sa(PEER4, 53)).unwrap();
    let s6 = a.udp_socket(true).unwrap();
    // A plain IPv4 address and a mapped one both go out as IPv4.
    a.udp_send_to(Instant::ZERO, s6, b"plain", Some(sa(PEER4, 53)))
        .unwrap();
    a.udp_send_to(
        Instant::ZERO,
        s6,
        b"mapped",
        Some(sa(PEER4.to_ipv6_mapped(), 53)),
    )
    .unwrap();
    pump(&mut a, &mut b, Instant::ZERO);
    assert_eq!(b.udp_recv(rb, false).unwrap().data, b"plain");
    assert_eq!(b.udp_recv(rb, false).unwrap().data, b"mapped");
    let only = a.udp_socket(true).unwrap();
    a.udp_set_options(
        only,
        UdpOptions {
            v6only: true,
            ..Default::default()
        },
    )
    .unwrap();
    for dst in [sa(PEER4, 53), sa(PEER4.to_ipv6_mapped(), 53)] {
        let e = a
            .udp_send_to(Instant::ZERO, only, b"x", Some(dst))
            .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENETUNREACH));
        assert_eq!(
            a.udp_connect(only, dst).unwrap_err().raw_os_error(),
            Some(libc::ENETUNREACH)
        );
    }
}

#[test]
fn icmpv6_port_unreachable_for_closed_udp_port() {
    let mut a = core();
    let mut b = peer_core();
    let sb = b.udp_socket(true).unwrap();
    b.udp_send_to(Instant::ZERO, sb, b"?", Some(sa(US6, 1234)))
        .unwrap();
    pump(&mut b, &mut a, Instant::ZERO);
    let out = drain(&mut a, Instant::ZERO);
    assert_eq!(out.len(), 1);
    let v = parse_ip(&out[0]).unwrap();
    assert!(matches!(
        Icmpv6Repr::parse_bytes(v.payload, US6, PEER6).unwrap(),
        Icmpv6Repr::DstUnreachable {
            reason: icmpv6::DstUnreachable::PortUnreachable,
            ..
        }
    ));
}

#[test]
fn connecting_a_udp_socket_fixes_its_source_address() {
    let mut c = core();
    let s = c.udp_socket(false).unwrap();
    c.udp_connect(s, sa(PEER4, 53)).unwrap();
    let (local, remote) = c.udp_addrs(s).unwrap();
    assert_eq!(local.ip(), IpAddr::V4(US4));
    assert_ne!(local.port(), 0);
    assert_eq!(remote, Some(sa(PEER4, 53)));
    let s6 = c.udp_socket(true).unwrap();
    c.udp_connect(s6, sa(PEER4.to_ipv6_mapped(), 53)).unwrap();
    assert_eq!(
        c.udp_addrs(s6).unwrap().0.ip(),
        IpAddr::V6(US4.to_ipv6_mapped())
    );
}

#[test]
fn recycled_buffers_are_built_into_and_bounded() {
    let mut b = peer_core();
    let sb = b.udp_socket(false).unwrap();
    let mut spare = vec![vec![0xee; 3000]];
    let reused = spare[0].as_ptr();
    b.recycle(&mut spare);
    assert!(spare.is_empty(), "recycle takes the buffers");
    b.udp_send_to(Instant::ZERO, sb, b"ping", Some(sa(IpAddr::from(US4), 9)))
        .unwrap();
    let mut out = Vec::new();
    b.poll_transmit(Instant::ZERO, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].as_ptr(), reused, "built in the recycled buffer");
    assert_eq!(out[0].len(), 20 + 8 + 4, "no stale bytes");
    let view = parse_ip(&out[0]).unwrap();
    assert_eq!(
        UdpRepr::parse_datagram(view.payload, view.src, view.dst)
            .unwrap()
            .1,
        b"ping"
    );
    let mut many = vec![Vec::new(); MAX_SPARE + 10];
    b.recycle(&mut many);
    assert!(many.is_empty());
    assert_eq!(b.spare.len(), MAX_SPARE, "kept at most MAX_SPARE");
}

#[test]
fn a_corrupted_datagram_is_dropped_unless_the_link_vouched_for_it() {
    for v6 in [false, true] {
        let (a_ip, corrupted) = {
            let mut b = peer_core();
            let a_ip = if v6 {
                IpAddr::from(US6)
            } else {
                IpAddr::from(US4)
            };
            let sb = b.udp_socket(v6).unwrap();
            b.udp_send_to(Instant::ZERO, sb, b"ping", Some(sa(a_ip, 5000)))
                .unwrap();
            let mut out = drain(&mut b, Instant::ZERO);
            assert_eq!(out.len(), 1);
            let mut p = out.remove(0);
            // A payload byte flipped, the checksum left: what a bad wire
            // (or the fault injector) delivers.
            *p.last_mut().unwrap() ^= 0x20;
            (a_ip, p)
        };
        let mut a = core();
        let s = a.udp_socket(v6).unwrap();
        a.udp_bind(s, sa(a_ip, 5000)).unwrap();
        a.input(Instant::ZERO, &corrupted);
        a.input_verified(Instant::ZERO, &corrupted, false);
        assert_eq!(
            a.counters().udp_malformed,
            2,
            "v6 {v6}: both verified, both dropped"
        );
        assert!(a.udp_recv(s, false).is_err());
        // The flag is what skips the sum: with it the same bytes are taken
        // (so a link must set it only where the sum is known good).
        a.input_verified(Instant::ZERO, &corrupted, true);
        assert_eq!(a.udp_recv(s, false).unwrap().data, b"pinG");
    }
}

#[test]
fn a_corrupted_tcp_segment_is_dropped_unless_the_link_vouched_for_it() {
    let mut b = peer_core();
    let c = b.tcp_mut().socket(false).unwrap();
    b.tcp_mut().connect(Instant::ZERO, c, sa(US4, 80)).unwrap();
    let mut out = drain(&mut b, Instant::ZERO);
    assert_eq!(out.len(), 1, "the SYN");
    let mut syn = out.remove(0);
    syn[20 + 4] ^= 0x01; // the sequence number, checksum left
    let mut a = core();
    a.input(Instant::ZERO, &syn);
    assert_eq!(a.counters().tcp_malformed, 1);
    assert!(drain(&mut a, Instant::ZERO).is_empty(), "no RST for it");
    a.input_verified(Instant::ZERO, &syn, true);
    assert_eq!(a.counters().tcp_malformed, 1, "taken as it is");
    assert_eq!(drain(&mut a, Instant::ZERO).len(), 1, "a RST: no listener");
}

#[test]
fn packets_built_in_dirty_recycled_buffers_equal_ones_built_fresh() {
    let build = |dirty: bool| {
        let mut b = peer_core();
        if dirty {
            let mut spare = vec![vec![0xee; 3000], vec![0xee; 3000], vec![0xee; 10]];
            b.recycle(&mut spare);
        }
        let u = b.udp_socket(false).unwrap();
        b.udp_send_to(Instant::ZERO, u, b"ping", Some(sa(US4, 9)))
            .unwrap();
        let t = b.tcp_mut().socket(false).unwrap();
        b.tcp_mut().connect(Instant::ZERO, t, sa(US4, 80)).unwrap();
        let u6 = b.udp_socket(true).unwrap();
        b.udp_send_to(Instant::ZERO, u6, &[7; 1000], Some(sa(US6, 9)))
            .unwrap();
        drain(&mut b, Instant::ZERO)
    };
    let fresh = build(false);
    assert_eq!(fresh.len(), 3);
    assert_eq!(build(true), fresh);
}
