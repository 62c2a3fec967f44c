//! The link layer's formats: any bytes through the Ethernet, ARP and NDP
//! parsers must not panic; whatever parses must survive emit and parse
//! back unchanged.
#![cfg_attr(fuzzing, no_main)]

use std::net::Ipv6Addr;

use ustack::wire::arp::{ArpPacket, ArpRepr};
use ustack::wire::ethernet::{EthernetFrame, EthernetRepr};
use ustack::wire::ndp::{NdpRepr, solicited_node};

/// The property: libFuzzer calls it (built by cargo-fuzz, `cfg(fuzzing)`),
/// and so does the stable run in the suite, `tests/fuzz_targets.rs`.
pub fn run(data: &[u8]) {
    if let Ok(frame) = EthernetFrame::new_checked(data) {
        let _ = (frame.dst_addr().is_unicast(), frame.payload().len());
        if let Ok(repr) = EthernetRepr::parse(&frame) {
            let mut buf = data.to_vec();
            let n = repr.emit(&mut buf).expect("a parsed header re-emits");
            let again = EthernetRepr::parse(
                &EthernetFrame::new_checked(&buf[..]).expect("re-emitted frame checks"),
            );
            assert_eq!(again, Ok(repr), "{n} header bytes");
        }
    }
    // The same bytes as an ARP packet (an Ethernet payload).
    if let Ok(packet) = ArpPacket::new_checked(data) {
        let _ = (packet.hardware_type(), packet.operation());
        if let Ok(repr) = ArpRepr::parse(&packet) {
            let mut buf = vec![0; 64];
            let n = repr.emit(&mut buf).expect("a parsed ARP packet re-emits");
            let again =
                ArpRepr::parse(&ArpPacket::new_checked(&buf[..n]).expect("re-emitted ARP checks"));
            assert_eq!(again, Ok(repr));
        }
    }
    // And as an ICMPv6 message between two fixed hosts: NDP verifies the
    // checksum, so most inputs stop there; the stable harness's seeds and
    // libFuzzer's comparisons get past it.
    let src: Ipv6Addr = "fe80::1".parse().unwrap();
    for dst in [
        "fe80::2".parse().unwrap(),
        solicited_node("fd77::2".parse().unwrap()),
    ] {
        if let Ok(repr) = NdpRepr::parse_bytes(data, src, dst) {
            let mut buf = vec![0; repr.buffer_len()];
            let n = repr
                .emit(&mut buf, src, dst)
                .expect("a parsed NDP message re-emits");
            assert_eq!(NdpRepr::parse_bytes(&buf[..n], src, dst), Ok(repr));
        }
    }
}

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));
