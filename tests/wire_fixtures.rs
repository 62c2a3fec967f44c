//! Packets captured from the Linux kernel (see tests/fixtures/README.md):
//! every one parses, every checksum verifies, the fields are what the
//! capture shows, and re-emitting a parsed packet reproduces its bytes.

#[path = "common/pcap.rs"]
mod common;

use ustack::wire::icmpv4::{DstUnreachable as Unreach4, TimeExceeded as Exceeded4};
use ustack::wire::icmpv6::{DstUnreachable as Unreach6, TimeExceeded as Exceeded6};
use ustack::wire::{
    Icmpv4Repr, Icmpv6Repr, IpAddr, IpFragment, IpProtocol, IpView, Ipv4Addr, Ipv4Packet, Ipv4Repr,
    Ipv6Addr, Ipv6FragmentRepr, Ipv6Packet, Ipv6Repr, TcpFlags, TcpRepr, UdpRepr, parse_ip,
    parse_ip_quoted,
};

const K4: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 77, 0, 1));
const S4: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 77, 0, 2));
const K6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 1));
const S6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 2));

fn pcap(name: &str) -> Vec<Vec<u8>> {
    common::records(name)
}

fn sole(name: &str) -> Vec<u8> {
    let records = pcap(name);
    assert_eq!(records.len(), 1, "{name}");
    records.into_iter().next().unwrap()
}

/// Re-emits the IP header(s) of `packet` from its parsed reprs and checks
/// the bytes match: the IPv4 header (no options in these captures), or the
/// IPv6 fixed header and a fragment header if there is one.
fn assert_ip_header_reemits(packet: &[u8], view: &IpView<'_>) {
    let mut out = vec![0u8; view.header_len];
    if view.is_ipv6() {
        let repr = Ipv6Repr::parse(&Ipv6Packet::new_checked(packet).unwrap()).unwrap();
        repr.emit(&mut out).unwrap();
        if repr.next_header == IpProtocol::Ipv6Frag {
            let frag = Ipv6FragmentRepr::parse(&packet[40..]).unwrap();
            frag.emit(&mut out[40..]).unwrap();
        }
    } else {
        let repr = Ipv4Repr::parse(&Ipv4Packet::new_checked(packet).unwrap()).unwrap();
        repr.emit(&mut out).unwrap();
    }
    assert_eq!(&out[..], &packet[..view.header_len]);
}

/// Parses the upper layer of a whole (unfragmented) packet, checksum
/// verified, and checks that re-emitting it reproduces the bytes.
fn assert_transport_reemits(view: &IpView<'_>) {
    let (src, dst) = (view.src, view.dst);
    let mut out = vec![0u8; view.payload.len()];
    let n = match view.protocol {
        IpProtocol::Tcp => {
            let (tcp, payload) = TcpRepr::parse_segment(view.payload, src, dst).unwrap();
            tcp.emit(&mut out, src, dst, payload).unwrap()
        }
        IpProtocol::Udp => {
            let (udp, payload) = UdpRepr::parse_datagram(view.payload, src, dst).unwrap();
            udp.emit(&mut out, src, dst, payload).unwrap()
        }
        IpProtocol::Icmp => Icmpv4Repr::parse_bytes(view.payload)
            .unwrap()
            .emit(&mut out)
            .unwrap(),
        IpProtocol::Icmpv6 => {
            let (IpAddr::V6(s), IpAddr::V6(d)) = (src, dst) else {
                panic!("ICMPv6 over IPv4");
            };
            Icmpv6Repr::parse_bytes(view.payload, s, d)
                .unwrap()
                .emit(&mut out, s, d)
                .unwrap()
        }
        other => panic!("unexpected protocol {other:?}"),
    };
    assert_eq!(n, view.payload.len());
    assert_eq!(out, view.payload);
}

const ALL: [&str; 17] = [
    "icmpv4_echo.pcap",
    "icmpv4_frag_needed.pcap",
    "icmpv4_port_unreachable.pcap",
    "icmpv4_reassembly_timeout.pcap",
    "icmpv4_ttl_exceeded.pcap",
    "icmpv6_echo.pcap",
    "icmpv6_hop_limit_exceeded.pcap",
    "icmpv6_packet_too_big.pcap",
    "icmpv6_port_unreachable.pcap",
    "icmpv6_reassembly_timeout.pcap",
    "tcp_rst_v4.pcap",
    "tcp_syn_v4.pcap",
    "tcp_syn_v6.pcap",
    "udp_frag_v4.pcap",
    "udp_frag_v6.pcap",
    "udp_v4.pcap",
    "udp_v6.pcap",
];

#[test]
fn every_captured_packet_parses_verifies_and_reemits_byte_for_byte() {
    let mut whole = 0;
    for name in ALL {
        for packet in pcap(name) {
            let view = parse_ip(&packet).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(view.header_len + view.payload.len(), packet.len(), "{name}");
            assert_ip_header_reemits(&packet, &view);
            // Fragments other than a complete first one carry no whole
            // upper-layer message; they are checked after reassembly below.
            if view.fragment.is_none() {
                assert_transport_reemits(&view);
                whole += 1;
            }
        }
    }
    // 30 captured packets, of which 8 are fragments: none silently skipped.
    assert_eq!(whole, 22);
}

#[test]
fn linux_icmpv4_echo_request() {
    let packet = sole("icmpv4_echo.pcap");
    let view = parse_ip(&packet).unwrap();
    assert_eq!(
        (view.src, view.dst, view.protocol),
        (K4, S4, IpProtocol::Icmp)
    );
    assert!(view.dont_frag);
    assert_eq!(view.hop_limit, 64);
    let Icmpv4Repr::EchoRequest { seq_no, data, .. } =
        Icmpv4Repr::parse_bytes(view.payload).unwrap()
    else {
        panic!("not an echo request");
    };
    assert_eq!(seq_no, 1);
    assert_eq!(data.len(), 56);
    // ping -p 75737461636b fills the data after its timestamp with "ustack".
    assert!(data.windows(6).any(|w| w == b"ustack"));
}

#[test]
fn linux_icmpv6_echo_request() {
    let packet = sole("icmpv6_echo.pcap");
    let view = parse_ip(&packet).unwrap();
    assert_eq!(
        (view.src, view.dst, view.protocol),
        (K6, S6, IpProtocol::Icmpv6)
    );
    let (IpAddr::V6(s), IpAddr::V6(d)) = (view.src, view.dst) else {
        unreachable!()
    };
    let repr = Icmpv6Repr::parse_bytes(view.payload, s, d).unwrap();
    assert!(matches!(repr, Icmpv6Repr::EchoRequest { seq_no: 1, data, .. } if data.len() == 56));
    let flow = Ipv6Packet::new_checked(&packet[..]).unwrap().flow_label();
    assert_ne!(flow, 0, "Linux sets a flow label");
}

#[test]
fn linux_syn_carries_mss_sack_permitted_timestamps_and_window_scale() {
    for (name, src, dst, mss, window) in [
        ("tcp_syn_v4.pcap", K4, S4, 1460, 64240),
        ("tcp_syn_v6.pcap", K6, S6, 1440, 64800),
    ] {
        let packet = sole(name);
        let view = parse_ip(&packet).unwrap();
        assert_eq!(
            (view.src, view.dst, view.protocol),
            (src, dst, IpProtocol::Tcp)
        );
        let (tcp, payload) = TcpRepr::parse_segment(view.payload, src, dst).unwrap();
        assert!(payload.is_empty());
        assert_eq!(tcp.flags, TcpFlags::SYN);
        assert_eq!((tcp.dst_port, tcp.ack, tcp.window), (80, 0, window));
        assert_eq!(tcp.options.mss, Some(mss));
        assert!(tcp.options.sack_permitted);
        assert_eq!(tcp.options.window_scale, Some(10));
        assert!(matches!(tcp.options.timestamps, Some((tsval, 0)) if tsval != 0));
        assert_eq!(tcp.header_len(), 40);
    }
}

#[test]
fn linux_answers_syn_to_closed_port_with_rst_ack() {
    let records = pcap("tcp_rst_v4.pcap");
    assert_eq!(records.len(), 2);
    let rst = parse_ip(&records[1]).unwrap();
    assert_eq!((rst.src, rst.dst), (K4, S4));
    let (tcp, _) = TcpRepr::parse_segment(rst.payload, K4, S4).unwrap();
    assert_eq!(tcp.flags, TcpFlags::RST | TcpFlags::ACK);
    assert_eq!((tcp.src_port, tcp.dst_port), (81, 40000));
    assert_eq!((tcp.seq, tcp.ack, tcp.window), (0, 1001, 0));
    assert_eq!(tcp.options, Default::default());
}

#[test]
fn linux_udp_datagrams() {
    for (name, src, dst) in [("udp_v4.pcap", K4, S4), ("udp_v6.pcap", K6, S6)] {
        let packet = sole(name);
        let view = parse_ip(&packet).unwrap();
        assert_eq!(
            (view.src, view.dst, view.protocol),
            (src, dst, IpProtocol::Udp)
        );
        let (udp, payload) = UdpRepr::parse_datagram(view.payload, src, dst).unwrap();
        assert_eq!(udp.dst_port, 9999);
        assert_eq!(payload, b"hello ustack");
    }
}

/// Concatenates fragment payloads by offset and checks the result is the
/// 3000-byte datagram the capture script sent.
fn reassemble_and_check(
    name: &str,
    src: IpAddr,
    dst: IpAddr,
    offsets: [u16; 3],
    ident: Option<u32>,
) {
    let records = pcap(name);
    assert_eq!(records.len(), 3, "{name}");
    let mut datagram = vec![];
    let mut idents = vec![];
    for (i, packet) in records.iter().enumerate() {
        let view = parse_ip(packet).unwrap();
        assert_eq!(
            (view.src, view.dst, view.protocol),
            (src, dst, IpProtocol::Udp)
        );
        let frag = view
            .fragment
            .unwrap_or_else(|| panic!("{name}: not a fragment"));
        assert_eq!(frag.offset, offsets[i], "{name} fragment {i}");
        assert_eq!(frag.more_frags, i < 2, "{name} fragment {i}");
        assert_eq!(usize::from(frag.offset), datagram.len());
        idents.push(frag.ident);
        datagram.extend_from_slice(view.payload);
    }
    assert!(idents.iter().all(|&id| id == idents[0]));
    if let Some(ident) = ident {
        assert_eq!(idents[0], ident);
    }
    let (udp, payload) = UdpRepr::parse_datagram(&datagram, src, dst).unwrap();
    assert_eq!(udp.dst_port, 9999);
    let expected: Vec<u8> = (0..3000).map(|i| (i % 251) as u8).collect();
    assert_eq!(payload, &expected[..]);
}

#[test]
fn linux_ipv4_fragments_reassemble_to_the_udp_datagram() {
    reassemble_and_check("udp_frag_v4.pcap", K4, S4, [0, 1480, 2960], None);
    let records = pcap("udp_frag_v4.pcap");
    let first = parse_ip(&records[0]).unwrap();
    assert_eq!(first.header_len, 20);
    assert!(!first.dont_frag);
}

#[test]
fn linux_ipv6_fragments_reassemble_to_the_udp_datagram() {
    reassemble_and_check("udp_frag_v6.pcap", K6, S6, [0, 1448, 2896], None);
    let records = pcap("udp_frag_v6.pcap");
    let first = parse_ip(&records[0]).unwrap();
    assert_eq!(first.header_len, 48, "fixed header plus fragment header");
}

#[test]
fn linux_port_unreachable_quotes_the_offending_datagram() {
    let records = pcap("icmpv4_port_unreachable.pcap");
    let error = parse_ip(&records[1]).unwrap();
    assert_eq!(
        (error.src, error.dst, error.protocol),
        (K4, S4, IpProtocol::Icmp)
    );
    // Linux sends ICMP errors with TOS 0xc0: DSCP CS6 (RFC 4594), no ECN.
    let ip = Ipv4Repr::parse(&Ipv4Packet::new_checked(&records[1][..]).unwrap()).unwrap();
    assert_eq!((ip.dscp, ip.ecn), (48, 0));
    let Icmpv4Repr::DstUnreachable { reason, quoted } =
        Icmpv4Repr::parse_bytes(error.payload).unwrap()
    else {
        panic!("not destination unreachable");
    };
    assert_eq!(reason, Unreach4::PortUnreachable);
    assert_eq!(quoted, &records[0][..]);
    let inner = parse_ip_quoted(quoted).unwrap();
    assert_eq!(
        (inner.src, inner.dst, inner.protocol),
        (S4, K4, IpProtocol::Udp)
    );
    assert_eq!(&inner.payload[..4], &[0x15, 0xb3, 0x00, 0x09]);

    let records = pcap("icmpv6_port_unreachable.pcap");
    let error = parse_ip(&records[1]).unwrap();
    let (IpAddr::V6(s), IpAddr::V6(d)) = (error.src, error.dst) else {
        unreachable!()
    };
    let repr = Icmpv6Repr::parse_bytes(error.payload, s, d).unwrap();
    let Icmpv6Repr::DstUnreachable { reason, quoted } = repr else {
        panic!("not destination unreachable: {repr:?}");
    };
    assert_eq!(reason, Unreach6::PortUnreachable);
    assert_eq!(quoted, &records[0][..]);
}

#[test]
fn linux_reports_reassembly_timeout_for_a_lone_first_fragment() {
    let records = pcap("icmpv4_reassembly_timeout.pcap");
    let first = parse_ip(&records[0]).unwrap();
    let expected = IpFragment {
        ident: 0x7777,
        offset: 0,
        more_frags: true,
    };
    assert_eq!(first.fragment, Some(expected));
    let error = parse_ip(&records[1]).unwrap();
    let Icmpv4Repr::TimeExceeded { reason, quoted } =
        Icmpv4Repr::parse_bytes(error.payload).unwrap()
    else {
        panic!("not time exceeded");
    };
    assert_eq!(reason, Exceeded4::FragReassembly);
    assert_eq!(parse_ip_quoted(quoted).unwrap().fragment, Some(expected));

    let records = pcap("icmpv6_reassembly_timeout.pcap");
    let first = parse_ip(&records[0]).unwrap();
    let expected = IpFragment {
        ident: 0x7777_7777,
        offset: 0,
        more_frags: true,
    };
    assert_eq!(first.fragment, Some(expected));
    assert_eq!(first.protocol, IpProtocol::Udp);
    let error = parse_ip(&records[1]).unwrap();
    let (IpAddr::V6(s), IpAddr::V6(d)) = (error.src, error.dst) else {
        unreachable!()
    };
    let Icmpv6Repr::TimeExceeded { reason, quoted } =
        Icmpv6Repr::parse_bytes(error.payload, s, d).unwrap()
    else {
        panic!("not time exceeded");
    };
    assert_eq!(reason, Exceeded6::FragReassembly);
    let inner = parse_ip_quoted(quoted).unwrap();
    assert_eq!(
        (inner.fragment, inner.protocol),
        (Some(expected), IpProtocol::Udp)
    );
}

#[test]
fn linux_router_errors_carry_mtu_and_hop_limit_codes() {
    let records = pcap("icmpv4_frag_needed.pcap");
    let error = parse_ip(&records[1]).unwrap();
    assert_eq!(records[1].len(), 576, "RFC 1812 bound on ICMP error size");
    let Icmpv4Repr::DstUnreachable { reason, quoted } =
        Icmpv4Repr::parse_bytes(error.payload).unwrap()
    else {
        panic!("not destination unreachable");
    };
    assert_eq!(reason, Unreach4::FragRequired { next_hop_mtu: 1280 });
    assert_eq!(quoted, ustack::wire::icmpv4::quote(&records[0]));
    // The quote is cut: whole-datagram parsing refuses it, quoted parsing
    // still finds the addresses and ports.
    assert_eq!(parse_ip(quoted).err(), Some(ustack::wire::Error::Truncated));
    let inner = parse_ip_quoted(quoted).unwrap();
    assert_eq!(inner.dst, IpAddr::V4(Ipv4Addr::new(10, 78, 0, 2)));
    assert!(inner.dont_frag);

    let records = pcap("icmpv6_packet_too_big.pcap");
    assert_eq!(records[1].len(), 1280, "RFC 4443 section 2.4 (c)");
    let error = parse_ip(&records[1]).unwrap();
    let (IpAddr::V6(s), IpAddr::V6(d)) = (error.src, error.dst) else {
        unreachable!()
    };
    let repr = Icmpv6Repr::parse_bytes(error.payload, s, d).unwrap();
    let Icmpv6Repr::PacketTooBig { mtu, quoted } = repr else {
        panic!("not packet too big: {repr:?}");
    };
    assert_eq!(mtu, 1280);
    assert_eq!(quoted, ustack::wire::icmpv6::quote(&records[0]));
    assert_eq!(parse_ip_quoted(quoted).unwrap().protocol, IpProtocol::Udp);

    let records = pcap("icmpv4_ttl_exceeded.pcap");
    let error = parse_ip(&records[1]).unwrap();
    assert!(matches!(
        Icmpv4Repr::parse_bytes(error.payload),
        Ok(Icmpv4Repr::TimeExceeded {
            reason: Exceeded4::TtlExpired,
            ..
        })
    ));

    let records = pcap("icmpv6_hop_limit_exceeded.pcap");
    let error = parse_ip(&records[1]).unwrap();
    let (IpAddr::V6(s), IpAddr::V6(d)) = (error.src, error.dst) else {
        unreachable!()
    };
    assert!(matches!(
        Icmpv6Repr::parse_bytes(error.payload, s, d),
        Ok(Icmpv6Repr::TimeExceeded {
            reason: Exceeded6::HopLimitExceeded,
            ..
        })
    ));
}

#[test]
fn every_single_bit_flip_of_captured_packets_is_an_error_or_parses() {
    // Exhaustive over one small packet of each transport: no flip panics,
    // and a flip inside the IPv4 header is caught by its checksum.
    for name in [
        "udp_v4.pcap",
        "tcp_syn_v6.pcap",
        "icmpv4_port_unreachable.pcap",
    ] {
        let packet = pcap(name).pop().unwrap();
        for bit in 0..packet.len() * 8 {
            let mut p = packet.clone();
            p[bit / 8] ^= 1 << (bit % 8);
            let parsed = parse_ip(&p);
            if p[0] >> 4 == 4 && bit < 160 && bit / 8 != 0 {
                assert!(parsed.is_err(), "{name}: flip of bit {bit} went unnoticed");
            }
            if let Ok(view) = parsed {
                let _ = TcpRepr::parse_segment(view.payload, view.src, view.dst);
                let _ = UdpRepr::parse_datagram(view.payload, view.src, view.dst);
                let _ = Icmpv4Repr::parse_bytes(view.payload);
            }
        }
    }
}
