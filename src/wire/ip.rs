//! Version-independent entry points for the stack core: [`parse_ip`] for
//! demultiplexing a received datagram and [`IpHeader`] for writing the IP
//! header of an outgoing one.
//!
//! Owns only the glue over [`super::ipv4`] and [`super::ipv6`]. Must not
//! touch reassembly or routing: a fragment is reported, not reassembled.
//!
//! Output and demultiplexing, end to end:
//!
//! ```
//! use ustack::wire::{IpHeader, IpProtocol, UdpRepr, parse_ip};
//!
//! let (src, dst) = ("10.77.0.2".parse().unwrap(), "10.77.0.1".parse().unwrap());
//! let udp = UdpRepr { src_port: 5353, dst_port: 53 };
//! let ip = IpHeader {
//!     src,
//!     dst,
//!     protocol: IpProtocol::Udp,
//!     payload_len: udp.buffer_len(5),
//!     hop_limit: 64,
//!     ident: 1,
//!     dont_frag: true,
//!     ecn: 0,
//! };
//! let mut packet = vec![0; ip.buffer_len()];
//! let header_len = ip.emit(&mut packet)?;
//! udp.emit(&mut packet[header_len..], src, dst, b"hello")?;
//!
//! let view = parse_ip(&packet)?;
//! assert_eq!((view.protocol, view.fragment), (IpProtocol::Udp, None));
//! let (repr, payload) = UdpRepr::parse_datagram(view.payload, view.src, view.dst)?;
//! assert_eq!((repr.dst_port, payload), (53, &b"hello"[..]));
//! # Ok::<(), ustack::wire::Error>(())
//! ```

use super::ipv4::{self, Ipv4Packet, Ipv4Repr};
use super::ipv6::{self, Ipv6Packet, Ipv6Repr};
use super::{Error, IpAddr, IpProtocol, Result};

/// Fragment information common to IPv4 (RFC 791) and the IPv6 fragment
/// header (RFC 8200 section 4.5).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct IpFragment {
    /// The identification: IPv4's 16 bits widened, or IPv6's 32.
    pub ident: u32,
    /// Offset of this fragment's data in the original payload, in bytes.
    pub offset: u16,
    /// More fragments follow.
    pub more_frags: bool,
}

/// What the stack core needs to know about a received datagram.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct IpView<'a> {
    /// Source address (the sender).
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// The upper-layer protocol of `payload`. For IPv6 it is found by
    /// walking the extension headers; for a fragment (of either version) it
    /// is the protocol of the payload once reassembled.
    pub protocol: IpProtocol,
    /// IPv4 TTL or IPv6 hop limit.
    pub hop_limit: u8,
    /// Set when the datagram is a fragment (IPv4: MF set or offset non-zero;
    /// IPv6: a fragment header is present, even an atomic one, RFC 6946).
    pub fragment: Option<IpFragment>,
    /// IPv4's DF flag; always false for IPv6, which never fragments en route.
    pub dont_frag: bool,
    /// The ECN field (RFC 3168 section 5; 3 is CE, congestion experienced).
    pub ecn: u8,
    /// Bytes before `payload`: the IPv4 header with options, or the IPv6
    /// fixed header plus the extension headers walked.
    pub header_len: usize,
    /// The upper-layer bytes (or fragment data), trimmed to the length the
    /// header gives.
    pub payload: &'a [u8],
}

impl IpView<'_> {
    /// True for an IPv6 datagram (judged by the source address family).
    pub fn is_ipv6(&self) -> bool {
        self.src.is_ipv6()
    }
}

/// Parses an IPv4 or IPv6 datagram, by its version nibble. IPv4 header
/// checksums are verified; IPv6 has none.
pub fn parse_ip(bytes: &[u8]) -> Result<IpView<'_>> {
    parse(bytes, false)
}

/// Parses the datagram quoted in an ICMP or ICMPv6 error: like
/// [`parse_ip`], but the payload may be shorter than the header says (the
/// quote is cut), and the IPv4 header checksum is not verified (the ICMP
/// checksum already covers the quote).
pub fn parse_ip_quoted(bytes: &[u8]) -> Result<IpView<'_>> {
    parse(bytes, true)
}

fn parse(bytes: &[u8], quoted: bool) -> Result<IpView<'_>> {
    match bytes.first().map(|b| b >> 4) {
        Some(4) => parse_v4(bytes, quoted),
        Some(6) => parse_v6(bytes, quoted),
        Some(_) => Err(Error::Malformed),
        None => Err(Error::Truncated),
    }
}

fn parse_v4(bytes: &[u8], quoted: bool) -> Result<IpView<'_>> {
    let packet = if quoted {
        Ipv4Packet::new_truncated(bytes)?
    } else {
        let packet = Ipv4Packet::new_checked(bytes)?;
        if !packet.verify_checksum() {
            return Err(Error::Checksum);
        }
        packet
    };
    let fragment = packet.is_fragment().then(|| IpFragment {
        ident: u32::from(packet.ident()),
        offset: packet.frag_offset(),
        more_frags: packet.more_frags(),
    });
    Ok(IpView {
        src: packet.src_addr().into(),
        dst: packet.dst_addr().into(),
        protocol: packet.protocol(),
        hop_limit: packet.ttl(),
        fragment,
        dont_frag: packet.dont_frag(),
        ecn: packet.ecn(),
        header_len: packet.header_len(),
        payload: packet_payload_v4(bytes, &packet),
    })
}

/// The payload borrowed from `bytes` itself rather than from the view, so
/// it outlives the view.
fn packet_payload_v4<'a>(bytes: &'a [u8], packet: &Ipv4Packet<&[u8]>) -> &'a [u8] {
    let end = usize::from(packet.total_len()).min(bytes.len());
    bytes.get(packet.header_len()..end).unwrap_or(&[])
}

fn parse_v6(bytes: &[u8], quoted: bool) -> Result<IpView<'_>> {
    let packet = if quoted {
        Ipv6Packet::new_truncated(bytes)?
    } else {
        Ipv6Packet::new_checked(bytes)?
    };
    let end = (ipv6::HEADER_LEN + usize::from(packet.payload_len())).min(bytes.len());
    let after_fixed = bytes.get(ipv6::HEADER_LEN..end).unwrap_or(&[]);
    let ext = ipv6::walk_extensions(packet.next_header(), after_fixed)?;
    Ok(IpView {
        src: packet.src_addr().into(),
        dst: packet.dst_addr().into(),
        protocol: ext.protocol,
        hop_limit: packet.hop_limit(),
        fragment: ext.fragment.map(|f| IpFragment {
            ident: f.ident,
            offset: f.offset,
            more_frags: f.more_frags,
        }),
        dont_frag: false,
        ecn: packet.traffic_class() & 3,
        header_len: ipv6::HEADER_LEN + ext.offset,
        payload: after_fixed.get(ext.offset..).unwrap_or(&[]),
    })
}

/// The IP header of an outgoing datagram, for either version. IPv4-only
/// fields (`ident`, `dont_frag`) are ignored for IPv6.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct IpHeader {
    /// Source address; its family picks IPv4 or IPv6.
    pub src: IpAddr,
    /// Destination address; must be of the same family as `src`.
    pub dst: IpAddr,
    /// IPv4 `protocol` or IPv6 `next header` (RFC 791 section 3.1, RFC 8200
    /// section 3).
    pub protocol: IpProtocol,
    /// Length of what follows the header.
    pub payload_len: usize,
    /// IPv4 TTL or IPv6 hop limit.
    pub hop_limit: u8,
    /// IPv4 identification (RFC 791 section 3.1; RFC 6864); ignored for IPv6.
    pub ident: u16,
    /// IPv4 "don't fragment" flag; ignored for IPv6.
    pub dont_frag: bool,
    /// The ECN field (RFC 3168 section 5): 0 not ECN-capable, 2 ECT(0),
    /// 1 ECT(1), 3 CE. The DSCP is always 0.
    pub ecn: u8,
}

impl IpHeader {
    /// 20 for IPv4 (no options), 40 for IPv6 (no extension headers).
    pub fn header_len(&self) -> usize {
        match self.src {
            IpAddr::V4(_) => ipv4::HEADER_LEN,
            IpAddr::V6(_) => ipv6::HEADER_LEN,
        }
    }

    /// The length of the whole datagram.
    pub fn buffer_len(&self) -> usize {
        self.header_len() + self.payload_len
    }

    /// Writes the header (with its checksum, for IPv4) at the start of `buf`
    /// and returns its length; the payload goes right after it. Mixed
    /// address families or a payload too long for the length field are
    /// `Malformed`; a buffer shorter than the header is `Truncated`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        match (self.src, self.dst) {
            (IpAddr::V4(src_addr), IpAddr::V4(dst_addr)) => Ipv4Repr {
                src_addr,
                dst_addr,
                protocol: self.protocol,
                payload_len: self.payload_len,
                ttl: self.hop_limit,
                ident: self.ident,
                dont_frag: self.dont_frag,
                more_frags: false,
                frag_offset: 0,
                dscp: 0,
                ecn: self.ecn & 3,
            }
            .emit(buf),
            (IpAddr::V6(src_addr), IpAddr::V6(dst_addr)) => Ipv6Repr {
                src_addr,
                dst_addr,
                next_header: self.protocol,
                payload_len: self.payload_len,
                hop_limit: self.hop_limit,
                traffic_class: self.ecn & 3,
                flow_label: 0,
            }
            .emit(buf),
            _ => Err(Error::Malformed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ipv6::Ipv6FragmentRepr;
    use crate::wire::udp::UdpRepr;
    use crate::wire::{Ipv4Addr, Ipv6Addr};
    use proptest::prelude::*;

    const A4: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 77, 0, 1));
    const B4: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 77, 0, 2));
    const A6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 1));
    const B6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 2));

    /// A whole UDP datagram built with the emit helpers.
    fn udp_datagram(src: IpAddr, dst: IpAddr, payload: &[u8]) -> Vec<u8> {
        let udp = UdpRepr {
            src_port: 1000,
            dst_port: 2000,
        };
        let ip = IpHeader {
            src,
            dst,
            protocol: IpProtocol::Udp,
            payload_len: udp.buffer_len(payload.len()),
            hop_limit: 64,
            ident: 42,
            dont_frag: true,
            ecn: 0,
        };
        let mut buf = vec![0; ip.buffer_len()];
        let hl = ip.emit(&mut buf).unwrap();
        udp.emit(&mut buf[hl..], src, dst, payload).unwrap();
        buf
    }

    #[test]
    fn emitted_datagrams_parse_back_for_both_versions() {
        for (src, dst, hl) in [(A4, B4, 20), (A6, B6, 40)] {
            let buf = udp_datagram(src, dst, b"hello");
            let view = parse_ip(&buf).unwrap();
            assert_eq!((view.src, view.dst), (src, dst));
            assert_eq!(view.protocol, IpProtocol::Udp);
            assert_eq!(view.hop_limit, 64);
            assert_eq!(view.header_len, hl);
            assert_eq!(view.fragment, None);
            assert_eq!(view.dont_frag, src.is_ipv4());
            assert_eq!(view.is_ipv6(), src.is_ipv6());
            let (udp, payload) = UdpRepr::parse_datagram(view.payload, src, dst).unwrap();
            assert_eq!((udp.src_port, payload), (1000, &b"hello"[..]));
        }
    }

    #[test]
    fn the_ecn_field_is_emitted_and_parsed_for_both_versions() {
        for (src, dst) in [(A4, B4), (A6, B6)] {
            for ecn in 0..4 {
                let ip = IpHeader {
                    src,
                    dst,
                    protocol: IpProtocol::Tcp,
                    payload_len: 0,
                    hop_limit: 64,
                    ident: 0,
                    dont_frag: true,
                    ecn,
                };
                let mut buf = vec![0u8; ip.buffer_len()];
                ip.emit(&mut buf).unwrap();
                assert_eq!(parse_ip(&buf).unwrap().ecn, ecn);
                // The low two bits of the TOS / traffic class byte.
                let tos = if src.is_ipv4() {
                    buf[1]
                } else {
                    (buf[0] << 4) | (buf[1] >> 4)
                };
                assert_eq!(tos, ecn);
            }
        }
    }

    #[test]
    fn ipv6_fragment_reports_header_len_protocol_and_fragment_data() {
        let frag = Ipv6FragmentRepr {
            next_header: IpProtocol::Udp,
            offset: 1232,
            more_frags: false,
            ident: 0x0a0b_0c0d,
        };
        let data = [7u8; 16];
        let ip = IpHeader {
            src: A6,
            dst: B6,
            protocol: IpProtocol::Ipv6Frag,
            payload_len: 8 + data.len(),
            hop_limit: 1,
            ident: 0,
            dont_frag: false,
            ecn: 0,
        };
        let mut buf = vec![0; ip.buffer_len()];
        ip.emit(&mut buf).unwrap();
        frag.emit(&mut buf[40..]).unwrap();
        buf[48..].copy_from_slice(&data);
        let view = parse_ip(&buf).unwrap();
        assert_eq!(view.protocol, IpProtocol::Udp);
        assert_eq!(view.header_len, 48);
        assert_eq!(view.payload, &data);
        assert_eq!(
            view.fragment,
            Some(IpFragment {
                ident: 0x0a0b_0c0d,
                offset: 1232,
                more_frags: false
            })
        );
    }

    #[test]
    fn ipv4_fragment_is_reported_with_offset_in_bytes() {
        let mut buf = udp_datagram(A4, B4, b"x");
        buf[6] = 0x20; // MF, offset 0
        let mut p = Ipv4Packet::new_checked(&mut buf[..]).unwrap();
        p.fill_checksum();
        let frag = parse_ip(&buf).unwrap().fragment.unwrap();
        assert_eq!((frag.ident, frag.offset, frag.more_frags), (42, 0, true));
        buf[6] = 0x00;
        buf[7] = 0xb9; // offset 185 units, last fragment
        let mut p = Ipv4Packet::new_checked(&mut buf[..]).unwrap();
        p.fill_checksum();
        let frag = parse_ip(&buf).unwrap().fragment.unwrap();
        assert_eq!((frag.offset, frag.more_frags), (1480, false));
    }

    #[test]
    fn quoted_parse_accepts_a_cut_datagram_that_parse_ip_rejects() {
        for (src, dst) in [(A4, B4), (A6, B6)] {
            let buf = udp_datagram(src, dst, &[0; 100]);
            let cut = &buf[..buf.len() - 90];
            assert_eq!(parse_ip(cut), Err(Error::Truncated));
            let view = parse_ip_quoted(cut).unwrap();
            assert_eq!(view.protocol, IpProtocol::Udp);
            assert_eq!(view.payload.len(), 18);
            assert_eq!(&view.payload[..2], &1000u16.to_be_bytes());
        }
    }

    #[test]
    fn bad_version_empty_and_bad_checksum_are_errors() {
        assert_eq!(parse_ip(&[]), Err(Error::Truncated));
        assert_eq!(parse_ip(&[0x55; 40]), Err(Error::Malformed));
        let mut buf = udp_datagram(A4, B4, b"x");
        buf[8] ^= 0xff;
        assert_eq!(parse_ip(&buf), Err(Error::Checksum));
    }

    #[test]
    fn header_emit_rejects_mixed_families_and_overlong_payloads() {
        let mut ip = IpHeader {
            src: A4,
            dst: B6,
            protocol: IpProtocol::Tcp,
            payload_len: 0,
            hop_limit: 64,
            ident: 0,
            dont_frag: false,
            ecn: 0,
        };
        assert_eq!(ip.emit(&mut [0; 40]), Err(Error::Malformed));
        ip.dst = B4;
        ip.payload_len = 65516;
        assert_eq!(ip.emit(&mut [0; 40]), Err(Error::Malformed));
        ip.payload_len = 65515;
        assert_eq!(ip.emit(&mut [0; 40]), Ok(20));
        assert_eq!(ip.emit(&mut [0; 19]), Err(Error::Truncated));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_bytes_never_panic(
            mut bytes in proptest::collection::vec(any::<u8>(), 0..120), v6 in any::<bool>(),
        ) {
            // Half the cases get a plausible version nibble so they go deeper.
            if let Some(b) = bytes.first_mut() {
                *b = (*b & 0x0f) | if v6 { 0x60 } else { 0x40 };
            }
            for view in [parse_ip(&bytes), parse_ip_quoted(&bytes)].into_iter().flatten() {
                prop_assert!(view.header_len + view.payload.len() <= bytes.len());
            }
        }

        #[test]
        fn mutated_valid_datagrams_never_panic(
            v6 in any::<bool>(),
            flips in proptest::collection::vec((0usize..60, any::<u8>()), 1..6),
            cut in 0usize..80,
        ) {
            let (src, dst) = if v6 { (A6, B6) } else { (A4, B4) };
            let mut buf = udp_datagram(src, dst, &[0xab; 20]);
            for (at, x) in flips {
                if let Some(b) = buf.get_mut(at) {
                    *b ^= x;
                }
            }
            let bytes = &buf[..cut.min(buf.len())];
            for view in [parse_ip(bytes), parse_ip_quoted(bytes)].into_iter().flatten() {
                prop_assert!(view.header_len + view.payload.len() <= bytes.len());
            }
        }
    }
}
