//! The Ethernet host's whole input path with live state: an
//! [`EthernetLink`] (10.77.0.2/24 and fd77::2/64) on an in-memory wire
//! takes a sequence of crafted frames while it also sends datagrams that
//! need resolving, with time passing. Never a panic; afterwards the
//! neighbour cache is within its bounds and the host still answers an ARP
//! request and a neighbour solicitation for its addresses.
//!
//! The input is records `[kind, len, bytes...]`: kind 0 is a raw frame;
//! 1 an ARP packet in a broadcast frame; 2 an ICMPv6 message from a
//! link-local neighbour in an IPv6 frame (hop limit 255, checksum right, to
//! our solicited-node group or to us, by the first byte); 3 an IPv4
//! datagram in a frame to our MAC; 4 a datagram we send to the on-link
//! address `len` (IPv4 or IPv6 by the first byte); 5 lets `len` times 10 ms
//! pass.
#![cfg_attr(fuzzing, no_main)]

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use ustack::Instant;
use ustack::device::{Link, PipeLink, pipe_pair};
use ustack::ethernet::{EthernetConfig, EthernetLink, Prefix};
use ustack::wire::arp::{ArpOperation, ArpPacket, ArpRepr};
use ustack::wire::ethernet::{EtherType, EthernetFrame, EthernetRepr, MacAddr};
use ustack::wire::ndp::{NdpRepr, solicited_node};
use ustack::wire::{IpAddr, IpHeader, IpProtocol, checksum};

const OUR_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);
const PEER_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
const US: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);

fn us6() -> Ipv6Addr {
    "fd77::2".parse().unwrap()
}

fn frame(dst: MacAddr, src: MacAddr, ethertype: EtherType, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; 14];
    EthernetRepr {
        dst,
        src,
        ethertype,
    }
    .emit(&mut f)
    .expect("14 bytes");
    f.extend_from_slice(payload);
    f
}

/// An IP datagram from `src` to `dst` carrying `payload` (checksum of an
/// ICMPv6 payload fixed).
fn datagram(
    src: IpAddr,
    dst: IpAddr,
    protocol: IpProtocol,
    payload: &[u8],
    hops: u8,
) -> Option<Vec<u8>> {
    let mut body = payload.to_vec();
    if protocol == IpProtocol::Icmpv6 && body.len() >= 4 {
        body[2] = 0;
        body[3] = 0;
        let pseudo = checksum::pseudo_header(src, dst, protocol, body.len()).ok()?;
        let sum = !checksum::combine(&[pseudo, checksum::data(&body)]);
        body[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    let h = IpHeader {
        src,
        dst,
        protocol,
        payload_len: body.len(),
        hop_limit: hops,
        ident: 1,
        dont_frag: true,
        ecn: 0,
    };
    let mut packet = vec![0u8; h.buffer_len()];
    let n = h.emit(&mut packet).ok()?;
    packet.truncate(n);
    packet.extend_from_slice(&body);
    Some(packet)
}

struct Wire {
    host: EthernetLink<PipeLink>,
    far: PipeLink,
    now: Instant,
}

impl Wire {
    fn inject(&mut self, f: Vec<u8>) {
        let _ = self.far.send_batch(self.now, &mut vec![f]);
    }

    /// Runs the host: delivers up what arrived, lets its timers fire.
    fn turn(&mut self) {
        let mut up = Vec::new();
        let _ = self.host.recv_batch(self.now, &mut up, 64);
        self.host.recycle(&mut up);
        let mut none = Vec::new();
        let _ = self.host.send_batch(self.now, &mut none);
    }

    /// Frames the host put on the wire.
    fn frames(&mut self) -> Vec<Vec<u8>> {
        let mut got = Vec::new();
        while self.far.recv_batch(self.now, &mut got, 64).unwrap_or(0) > 0 {}
        got
    }
}

/// The property: libFuzzer calls it (built by cargo-fuzz, `cfg(fuzzing)`),
/// and so does the stable run in the suite, `tests/fuzz_targets.rs`.
pub fn run(data: &[u8]) {
    let (a, far) = pipe_pair(1514);
    let cfg = EthernetConfig {
        mac: OUR_MAC,
        ipv4: Some(Prefix { addr: US, len: 24 }),
        ipv6: Some(Prefix {
            addr: us6(),
            len: 64,
        }),
        gateway: None,
        gateway6: None,
        neighbors: Default::default(),
        dhcp: false,
        slaac: false,
        mld: false,
    };
    let bounds = cfg.neighbors.clone();
    let mut w = Wire {
        host: EthernetLink::new(a, cfg),
        far,
        now: Instant::ZERO,
    };
    w.turn();
    let peer_ll: Ipv6Addr = "fe80::1".parse().unwrap();

    let mut rest = data;
    while let [kind, len, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        let (body, next) = tail.split_at(n);
        rest = next;
        match kind % 6 {
            0 => w.inject(body.to_vec()),
            1 => w.inject(frame(MacAddr::BROADCAST, PEER_MAC, EtherType::Arp, body)),
            2 => {
                let dst = if body.first().is_some_and(|b| b & 1 == 1) {
                    us6()
                } else {
                    solicited_node(us6())
                };
                let mac = if dst == us6() {
                    OUR_MAC
                } else {
                    MacAddr::from_ipv6_multicast(dst)
                };
                if let Some(p) = datagram(peer_ll.into(), dst.into(), IpProtocol::Icmpv6, body, 255)
                {
                    w.inject(frame(mac, PEER_MAC, EtherType::Ipv6, &p));
                }
            }
            3 => w.inject(frame(OUR_MAC, PEER_MAC, EtherType::Ipv4, body)),
            4 => {
                let (src, dst): (IpAddr, IpAddr) = if body.first().is_some_and(|b| b & 1 == 1) {
                    let mut o = us6().octets();
                    o[15] = *len;
                    (us6().into(), Ipv6Addr::from(o).into())
                } else {
                    (US.into(), Ipv4Addr::new(10, 77, 0, *len).into())
                };
                if let Some(p) = datagram(src, dst, IpProtocol::Udp, body, 64) {
                    let _ = w.host.send_batch(w.now, &mut vec![p]);
                }
            }
            _ => w.now += Duration::from_millis(10 * u64::from(*len)),
        }
        w.turn();
        w.frames();
    }
    for _ in 0..20 {
        w.now += Duration::from_millis(500);
        w.turn();
        w.frames();
    }
    let cache = w.host.neighbors();
    assert!(cache.len() <= bounds.max_entries, "{} entries", cache.len());
    assert!(
        cache.queued() <= bounds.max_queued,
        "{} queued",
        cache.queued()
    );

    // Still answering: an ARP request from a new host for our address...
    let asker = MacAddr([2, 0, 0, 0, 0, 0x77]);
    let request = ArpRepr {
        operation: ArpOperation::Request,
        source_mac: asker,
        source_ip: Ipv4Addr::new(10, 77, 0, 77),
        target_mac: MacAddr([0; 6]),
        target_ip: US,
    };
    let mut arp = vec![0u8; 28];
    request.emit(&mut arp).expect("28 bytes");
    w.inject(frame(MacAddr::BROADCAST, asker, EtherType::Arp, &arp));
    w.turn();
    let replied = w.frames().iter().any(|f| {
        EthernetFrame::new_checked(&f[..]).is_ok_and(|e| {
            e.dst_addr() == asker
                && ArpPacket::new_checked(e.payload())
                    .and_then(|p| ArpRepr::parse(&p))
                    .is_ok_and(|r| r.operation == ArpOperation::Reply && r.source_ip == US)
        })
    });
    assert!(replied, "no ARP reply for our address after the input");

    // ... and a neighbour solicitation for our IPv6 address.
    let asker6: Ipv6Addr = "fe80::77".parse().unwrap();
    let ns = NdpRepr::NeighborSolicit {
        target: us6(),
        source_mac: Some(asker),
    };
    let group = solicited_node(us6());
    let mut msg = vec![0u8; ns.buffer_len()];
    let n = ns.emit(&mut msg, asker6, group).expect("an NS emits");
    let p = datagram(
        asker6.into(),
        group.into(),
        IpProtocol::Icmpv6,
        &msg[..n],
        255,
    )
    .expect("an IPv6 datagram");
    w.inject(frame(
        MacAddr::from_ipv6_multicast(group),
        asker,
        EtherType::Ipv6,
        &p,
    ));
    w.turn();
    let advertised = w.frames().iter().any(|f| {
        EthernetFrame::new_checked(&f[..])
            .is_ok_and(|e| e.dst_addr() == asker && e.ethertype() == EtherType::Ipv6)
    });
    assert!(
        advertised,
        "no neighbour advertisement for our address after the input"
    );
}

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));
