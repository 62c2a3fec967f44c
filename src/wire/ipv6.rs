//! The IPv6 fixed header and its extension-header chain (RFC 8200).
//!
//! Owns the layout of the fixed header (section 3), the walk over
//! hop-by-hop, routing, fragment, destination-options and authentication
//! headers (section 4, RFC 4302 for AH's length unit), and the fragment
//! header (section 4.5). Must not touch reassembly (that is `crate::ip`) or
//! the meaning of options inside hop-by-hop and destination headers: they
//! are skipped whole.

use super::bytes;
use super::{Error, IpProtocol, Ipv6Addr, Result};

/// Field offsets of the fixed header.
mod field {
    pub const VER_TC_FLOW: usize = 0;
    pub const LENGTH: usize = 4;
    pub const NXT_HDR: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: usize = 8;
    pub const DST: usize = 24;
}

/// Field offsets of the fragment header (RFC 8200 section 4.5).
mod frag_field {
    pub const NXT_HDR: usize = 0;
    pub const OFF_M: usize = 2;
    pub const IDENT: usize = 4;
}

/// The length of the fixed header.
pub const HEADER_LEN: usize = 40;

/// The length of a fragment header.
pub const FRAGMENT_HEADER_LEN: usize = 8;

/// The most extension headers walked before giving up. RFC 8200 section
/// 4.1 recommends at most one of each kind (destination options twice), so
/// a longer chain is hostile rather than useful.
pub const MAX_EXTENSION_HEADERS: usize = 8;

/// IP protocol number of the Authentication Header, which `IpProtocol`
/// carries as `Unknown(51)`.
const AUTH_HEADER: u8 = 51;

/// A read-only or read-write view of an IPv6 packet.
#[derive(Debug, Clone)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// Wraps a buffer without validation. Accessors do not panic on it but
    /// may return zeros for fields the buffer does not hold.
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv6Packet { buffer }
    }

    /// Wraps a buffer after checking the version and that the buffer holds
    /// the fixed header and the payload length (bytes past it are ignored).
    pub fn new_checked(buffer: T) -> Result<Self> {
        let packet = Ipv6Packet { buffer };
        packet.check(false)?;
        Ok(packet)
    }

    /// Like [`Ipv6Packet::new_checked`] but accepts a buffer shorter than
    /// the payload length, as in the copy of a packet quoted by an ICMPv6
    /// error.
    pub fn new_truncated(buffer: T) -> Result<Self> {
        let packet = Ipv6Packet { buffer };
        packet.check(true)?;
        Ok(packet)
    }

    fn check(&self, allow_truncated: bool) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if self.version() != 6 {
            return Err(Error::Malformed);
        }
        if !allow_truncated && len < HEADER_LEN + usize::from(self.payload_len()) {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Consumes the view, returning the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn buf(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// The version nibble; 6 in any view `new_checked` accepted.
    pub fn version(&self) -> u8 {
        bytes::u8_at(self.buf(), field::VER_TC_FLOW) >> 4
    }

    /// The traffic class byte (DSCP and ECN, RFC 8200 section 7).
    pub fn traffic_class(&self) -> u8 {
        ((bytes::u32_at(self.buf(), field::VER_TC_FLOW) >> 20) & 0xff) as u8
    }

    /// The 20-bit flow label (RFC 6437).
    pub fn flow_label(&self) -> u32 {
        bytes::u32_at(self.buf(), field::VER_TC_FLOW) & 0x000f_ffff
    }

    /// The payload length field: everything after the fixed header.
    pub fn payload_len(&self) -> u16 {
        bytes::u16_at(self.buf(), field::LENGTH)
    }

    /// The next header field of the fixed header (the first extension
    /// header, or the upper-layer protocol when there is none).
    pub fn next_header(&self) -> IpProtocol {
        IpProtocol::from(bytes::u8_at(self.buf(), field::NXT_HDR))
    }

    /// The hop limit: hops left before a router discards the packet.
    pub fn hop_limit(&self) -> u8 {
        bytes::u8_at(self.buf(), field::HOP_LIMIT)
    }

    /// The source address.
    pub fn src_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(bytes::array_at::<16>(self.buf(), field::SRC))
    }

    /// The destination address.
    pub fn dst_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(bytes::array_at::<16>(self.buf(), field::DST))
    }

    /// Everything after the fixed header, trimmed to the payload length (and
    /// to the buffer, for a view made by [`Ipv6Packet::new_truncated`]).
    pub fn payload(&self) -> &[u8] {
        let buf = self.buf();
        let end = (HEADER_LEN + usize::from(self.payload_len())).min(buf.len());
        buf.get(HEADER_LEN..end).unwrap_or(&[])
    }

    /// Walks the extension headers of this packet; see [`walk_extensions`].
    pub fn extensions(&self) -> Result<Extensions> {
        walk_extensions(self.next_header(), self.payload())
    }
}

/// An IPv6 fixed header in plain data.
///
/// A fixed header followed by a fragment header, emitted and walked back:
///
/// ```
/// use ustack::wire::ipv6::{Ipv6FragmentRepr, Ipv6Packet, Ipv6Repr};
/// use ustack::wire::IpProtocol;
///
/// let frag = Ipv6FragmentRepr {
///     next_header: IpProtocol::Udp,
///     offset: 1232,
///     more_frags: true,
///     ident: 0xdead_beef,
/// };
/// let repr = Ipv6Repr {
///     src_addr: "fd77::2".parse().unwrap(),
///     dst_addr: "fd77::1".parse().unwrap(),
///     next_header: IpProtocol::Ipv6Frag,
///     payload_len: frag.header_len() + 16,
///     hop_limit: 64,
///     traffic_class: 0,
///     flow_label: 0x12345,
/// };
/// let mut buf = vec![0; repr.buffer_len()];
/// let n = repr.emit(&mut buf)?;
/// frag.emit(&mut buf[n..])?;
///
/// let packet = Ipv6Packet::new_checked(&buf[..])?;
/// assert_eq!(Ipv6Repr::parse(&packet)?, repr);
/// let ext = packet.extensions()?;
/// assert_eq!(ext.protocol, IpProtocol::Udp);
/// assert_eq!(ext.offset, 8);
/// assert_eq!(ext.fragment, Some(frag));
/// # Ok::<(), ustack::wire::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Ipv6Repr {
    /// The source address.
    pub src_addr: Ipv6Addr,
    /// The destination address.
    pub dst_addr: Ipv6Addr,
    /// The fixed header's next header (first extension or upper layer).
    pub next_header: IpProtocol,
    /// Bytes after the fixed header, extension headers included.
    pub payload_len: usize,
    /// The hop limit to send with.
    pub hop_limit: u8,
    /// The traffic class byte (DSCP and ECN).
    pub traffic_class: u8,
    /// 20 bits.
    pub flow_label: u32,
}

impl Ipv6Repr {
    /// Parses the fixed header of a checked view.
    pub fn parse<T: AsRef<[u8]>>(packet: &Ipv6Packet<T>) -> Result<Ipv6Repr> {
        packet.check(false)?;
        Ok(Ipv6Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            next_header: packet.next_header(),
            payload_len: usize::from(packet.payload_len()),
            hop_limit: packet.hop_limit(),
            traffic_class: packet.traffic_class(),
            flow_label: packet.flow_label(),
        })
    }

    /// The length of the header emit writes.
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// The length of the whole packet: header plus payload.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload_len
    }

    /// Writes the 40-byte fixed header at the start of `buf` and returns its
    /// length. Jumbograms (RFC 2675) are not supported: a payload over 65535
    /// bytes is `Malformed`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let len = u16::try_from(self.payload_len).map_err(|_| Error::Malformed)?;
        if self.flow_label > 0x000f_ffff {
            return Err(Error::Malformed);
        }
        let header = buf.get_mut(..HEADER_LEN).ok_or(Error::Truncated)?;
        let first = (6u32 << 28) | (u32::from(self.traffic_class) << 20) | self.flow_label;
        bytes::set_u32(header, field::VER_TC_FLOW, first);
        bytes::set_u16(header, field::LENGTH, len);
        bytes::set_u8(header, field::NXT_HDR, self.next_header.into());
        bytes::set_u8(header, field::HOP_LIMIT, self.hop_limit);
        bytes::set_bytes(header, field::SRC, &self.src_addr.octets());
        bytes::set_bytes(header, field::DST, &self.dst_addr.octets());
        Ok(HEADER_LEN)
    }
}

/// The fragment header in plain data (RFC 8200 section 4.5).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Ipv6FragmentRepr {
    /// The header that follows the fragment header in the original packet.
    pub next_header: IpProtocol,
    /// Offset of this fragment's data in bytes; a multiple of 8.
    pub offset: u16,
    /// The M flag: more fragments follow.
    pub more_frags: bool,
    /// The identification shared by all fragments of one packet.
    pub ident: u32,
}

impl Ipv6FragmentRepr {
    /// Parses a fragment header from the start of `buf`.
    pub fn parse(buf: &[u8]) -> Result<Ipv6FragmentRepr> {
        let header = buf.get(..FRAGMENT_HEADER_LEN).ok_or(Error::Truncated)?;
        let off_m = bytes::u16_at(header, frag_field::OFF_M);
        Ok(Ipv6FragmentRepr {
            next_header: IpProtocol::from(bytes::u8_at(header, frag_field::NXT_HDR)),
            offset: off_m & 0xfff8,
            more_frags: off_m & 0x0001 != 0,
            ident: bytes::u32_at(header, frag_field::IDENT),
        })
    }

    /// The length of the header emit writes.
    pub const fn header_len(&self) -> usize {
        FRAGMENT_HEADER_LEN
    }

    /// Writes the 8-byte fragment header at the start of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        if !self.offset.is_multiple_of(8) {
            return Err(Error::Malformed);
        }
        let header = buf.get_mut(..FRAGMENT_HEADER_LEN).ok_or(Error::Truncated)?;
        bytes::set_u8(header, frag_field::NXT_HDR, self.next_header.into());
        bytes::set_u8(header, 1, 0);
        bytes::set_u16(
            header,
            frag_field::OFF_M,
            self.offset | u16::from(self.more_frags),
        );
        bytes::set_u32(header, frag_field::IDENT, self.ident);
        Ok(FRAGMENT_HEADER_LEN)
    }
}

/// Where the extension-header chain of a packet ends.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Extensions {
    /// The protocol of the bytes at `offset`: the upper layer (TCP, UDP,
    /// ICMPv6, `Ipv6NoNxt`, or an unknown number), or, after a fragment
    /// header, the fragment header's next header.
    pub protocol: IpProtocol,
    /// Offset, from the end of the fixed header, of the first byte after the
    /// last extension header walked.
    pub offset: usize,
    /// The fragment header, when the walk met one.
    pub fragment: Option<Ipv6FragmentRepr>,
}

/// Walks the extension headers in `payload` (the bytes after the fixed
/// header), starting from the fixed header's `next_header`.
///
/// The walk stops at the first header that is not an extension header, and
/// also right after a fragment header: what follows it is the fragmentable
/// part (RFC 8200 section 4.5), which in a non-first fragment is data, not
/// headers. The reassembler walks the reassembled payload again from the
/// fragment header's `next_header`.
///
/// Fails with `Truncated` when a header runs past `payload`, and with
/// `Malformed` when hop-by-hop is not first (section 4.1) or the chain is
/// longer than [`MAX_EXTENSION_HEADERS`].
pub fn walk_extensions(next_header: IpProtocol, payload: &[u8]) -> Result<Extensions> {
    let mut protocol = next_header;
    let mut offset = 0usize;
    for walked in 0..=MAX_EXTENSION_HEADERS {
        let len = match protocol {
            IpProtocol::HopByHop if walked != 0 => return Err(Error::Malformed),
            IpProtocol::HopByHop | IpProtocol::Ipv6Route | IpProtocol::Ipv6Opts => {
                // Hdr Ext Len counts 8-octet units beyond the first 8.
                let units = payload.get(offset + 1).ok_or(Error::Truncated)?;
                (usize::from(*units) + 1) * 8
            }
            IpProtocol::Unknown(AUTH_HEADER) => {
                // RFC 4302 section 2.2: Payload Len counts 4-octet units, minus 2.
                let units = payload.get(offset + 1).ok_or(Error::Truncated)?;
                (usize::from(*units) + 2) * 4
            }
            IpProtocol::Ipv6Frag => {
                let rest = payload.get(offset..).ok_or(Error::Truncated)?;
                let fragment = Ipv6FragmentRepr::parse(rest)?;
                return Ok(Extensions {
                    protocol: fragment.next_header,
                    offset: offset + FRAGMENT_HEADER_LEN,
                    fragment: Some(fragment),
                });
            }
            _ => {
                return Ok(Extensions {
                    protocol,
                    offset,
                    fragment: None,
                });
            }
        };
        if walked == MAX_EXTENSION_HEADERS {
            return Err(Error::Malformed);
        }
        let next = payload.get(offset).ok_or(Error::Truncated)?;
        if payload.len() < offset + len {
            return Err(Error::Truncated);
        }
        protocol = IpProtocol::from(*next);
        offset += len;
    }
    Err(Error::Malformed)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    const SRC: Ipv6Addr = Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 1);
    const DST: Ipv6Addr = Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 2);

    fn packet_with(next_header: IpProtocol, payload: &[u8]) -> Vec<u8> {
        let repr = Ipv6Repr {
            src_addr: SRC,
            dst_addr: DST,
            next_header,
            payload_len: payload.len(),
            hop_limit: 64,
            traffic_class: 0,
            flow_label: 0,
        };
        let mut buf = vec![0; repr.buffer_len()];
        repr.emit(&mut buf).unwrap();
        buf[HEADER_LEN..].copy_from_slice(payload);
        buf
    }

    pub(crate) fn arb_repr() -> impl Strategy<Value = Ipv6Repr> {
        (
            any::<[u8; 16]>(),
            any::<[u8; 16]>(),
            any::<u8>(),
            0usize..2000,
            any::<u8>(),
            any::<u8>(),
            0u32..0x10_0000,
        )
            .prop_map(|(s, d, nh, len, hl, tc, fl)| Ipv6Repr {
                src_addr: s.into(),
                dst_addr: d.into(),
                next_header: nh.into(),
                payload_len: len,
                hop_limit: hl,
                traffic_class: tc,
                flow_label: fl,
            })
    }

    #[test]
    fn fixed_header_fields_decode() {
        let mut buf = packet_with(IpProtocol::Udp, &[1, 2, 3, 4]);
        buf[0] = 0x6a;
        buf[1] = 0xbc;
        buf[2] = 0xde;
        buf[3] = 0xf0;
        let p = Ipv6Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.traffic_class(), 0xab);
        assert_eq!(p.flow_label(), 0xcdef0);
        assert_eq!(p.payload(), &[1, 2, 3, 4]);
        assert_eq!(p.src_addr(), SRC);
        assert_eq!(p.dst_addr(), DST);
    }

    #[test]
    fn short_buffer_is_truncated_and_wrong_version_malformed() {
        let mut buf = packet_with(IpProtocol::Udp, &[0; 8]);
        assert_eq!(
            Ipv6Packet::new_checked(&buf[..47]).err(),
            Some(Error::Truncated)
        );
        assert_eq!(
            Ipv6Packet::new_checked(&buf[..39]).err(),
            Some(Error::Truncated)
        );
        assert_eq!(
            Ipv6Packet::new_truncated(&buf[..44])
                .unwrap()
                .payload()
                .len(),
            4
        );
        buf[0] = 0x40;
        assert_eq!(
            Ipv6Packet::new_checked(&buf[..]).err(),
            Some(Error::Malformed)
        );
    }

    #[test]
    fn chain_of_hop_by_hop_routing_and_destination_options_finds_tcp() {
        let mut payload = vec![];
        // Hop-by-hop, 8 bytes: next = routing, len 0, PadN(4).
        payload.extend_from_slice(&[43, 0, 1, 4, 0, 0, 0, 0]);
        // Routing, 24 bytes: next = dest opts, len 2.
        payload.extend_from_slice(&[60, 2, 0, 0, 0, 0, 0, 0]);
        payload.extend_from_slice(&[0; 16]);
        // Destination options, 8 bytes: next = TCP.
        payload.extend_from_slice(&[6, 0, 1, 4, 0, 0, 0, 0]);
        payload.extend_from_slice(b"tcp header here!");
        let buf = packet_with(IpProtocol::HopByHop, &payload);
        let p = Ipv6Packet::new_checked(&buf[..]).unwrap();
        let ext = p.extensions().unwrap();
        assert_eq!(ext.protocol, IpProtocol::Tcp);
        assert_eq!(ext.offset, 40);
        assert_eq!(ext.fragment, None);
        assert_eq!(&p.payload()[ext.offset..], b"tcp header here!");
    }

    #[test]
    fn walk_stops_after_fragment_header_and_exposes_it() {
        let frag = Ipv6FragmentRepr {
            next_header: IpProtocol::Udp,
            offset: 1448,
            more_frags: true,
            ident: 0xdead_beef,
        };
        let mut payload = vec![0; 8];
        frag.emit(&mut payload).unwrap();
        // Fragment data that happens to look like a hop-by-hop header.
        payload.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
        let ext = walk_extensions(IpProtocol::Ipv6Frag, &payload).unwrap();
        assert_eq!(ext.protocol, IpProtocol::Udp);
        assert_eq!(ext.offset, 8);
        assert_eq!(ext.fragment, Some(frag));
    }

    #[test]
    fn fragment_header_bit_layout_matches_rfc_8200() {
        // Offset 185 units (1480 bytes), M set, ident 0x01020304.
        let bytes = [17, 0, 0x05, 0xc9, 1, 2, 3, 4];
        let f = Ipv6FragmentRepr::parse(&bytes).unwrap();
        assert_eq!(f.offset, 1480);
        assert!(f.more_frags);
        assert_eq!(f.ident, 0x0102_0304);
        let mut out = [0xff; 8];
        f.emit(&mut out).unwrap();
        assert_eq!(out, bytes);
    }

    #[test]
    fn hop_by_hop_after_first_position_is_malformed() {
        let payload = [0, 0, 1, 4, 0, 0, 0, 0, 6, 0, 1, 4, 0, 0, 0, 0];
        assert_eq!(
            walk_extensions(IpProtocol::Ipv6Opts, &payload),
            Err(Error::Malformed)
        );
    }

    #[test]
    fn header_running_past_payload_is_truncated() {
        // Destination options claiming 16 bytes with 8 present.
        let payload = [6, 1, 1, 4, 0, 0, 0, 0];
        assert_eq!(
            walk_extensions(IpProtocol::Ipv6Opts, &payload),
            Err(Error::Truncated)
        );
        assert_eq!(
            walk_extensions(IpProtocol::Ipv6Opts, &[]),
            Err(Error::Truncated)
        );
        assert_eq!(
            walk_extensions(IpProtocol::Ipv6Frag, &[6, 0, 0]),
            Err(Error::Truncated)
        );
    }

    #[test]
    fn overlong_chain_is_malformed() {
        // Nine destination-options headers, each pointing at the next.
        let payload: Vec<u8> = (0..9).flat_map(|_| [60, 0, 1, 4, 0, 0, 0, 0]).collect();
        assert_eq!(
            walk_extensions(IpProtocol::Ipv6Opts, &payload),
            Err(Error::Malformed)
        );
        // Eight are accepted.
        let mut payload: Vec<u8> = (0..7).flat_map(|_| [60, 0, 1, 4, 0, 0, 0, 0]).collect();
        payload.extend_from_slice(&[17, 0, 1, 4, 0, 0, 0, 0]);
        let ext = walk_extensions(IpProtocol::Ipv6Opts, &payload).unwrap();
        assert_eq!((ext.protocol, ext.offset), (IpProtocol::Udp, 64));
    }

    #[test]
    fn no_next_header_ends_the_walk() {
        let ext = walk_extensions(IpProtocol::Ipv6NoNxt, &[1, 2, 3]).unwrap();
        assert_eq!((ext.protocol, ext.offset), (IpProtocol::Ipv6NoNxt, 0));
    }

    #[test]
    fn authentication_header_length_counts_four_byte_units() {
        // AH with Payload Len 4: (4 + 2) * 4 = 24 bytes, then UDP.
        let mut payload = vec![17, 4];
        payload.extend_from_slice(&[0; 22]);
        let ext = walk_extensions(IpProtocol::Unknown(51), &payload).unwrap();
        assert_eq!((ext.protocol, ext.offset), (IpProtocol::Udp, 24));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn parse_inverts_emit(repr in arb_repr()) {
            let mut buf = vec![0u8; repr.buffer_len()];
            prop_assert_eq!(repr.emit(&mut buf), Ok(HEADER_LEN));
            let p = Ipv6Packet::new_checked(&buf[..]).unwrap();
            prop_assert_eq!(Ipv6Repr::parse(&p), Ok(repr));
        }

        #[test]
        fn fragment_header_parse_inverts_emit(
            nh in any::<u8>(), off in 0u16..0x2000, m in any::<bool>(), id in any::<u32>()
        ) {
            let f = Ipv6FragmentRepr { next_header: nh.into(), offset: off << 3, more_frags: m, ident: id };
            let mut buf = [0u8; 8];
            prop_assert_eq!(f.emit(&mut buf), Ok(8));
            prop_assert_eq!(Ipv6FragmentRepr::parse(&buf), Ok(f));
        }

        #[test]
        fn mutated_valid_chains_never_panic(
            flips in proptest::collection::vec((0usize..96, any::<u8>()), 1..6),
            cut in 0usize..96,
        ) {
            let mut payload = vec![43, 0, 1, 4, 0, 0, 0, 0];
            payload.extend_from_slice(&[44, 0, 0, 0, 0, 0, 0, 0]);
            payload.extend_from_slice(&[60, 0, 0, 1, 0, 0, 0, 7]);
            payload.extend_from_slice(&[6, 0, 1, 4, 0, 0, 0, 0]);
            payload.extend_from_slice(&[0; 24]);
            let mut buf = packet_with(IpProtocol::HopByHop, &payload);
            for (at, x) in flips {
                buf[at] ^= x;
            }
            if let Ok(p) = Ipv6Packet::new_checked(&buf[..cut])
                && let Ok(ext) = p.extensions()
            {
                prop_assert!(ext.offset <= p.payload().len());
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(
            nh in any::<u8>(),
            bytes in proptest::collection::vec(any::<u8>(), 0..120),
        ) {
            if let Ok(ext) = walk_extensions(nh.into(), &bytes) {
                prop_assert!(ext.offset <= bytes.len());
            }
            let packet = packet_with(nh.into(), &bytes);
            if let Ok(p) = Ipv6Packet::new_checked(&packet[..]) {
                prop_assert!(Ipv6Repr::parse(&p).is_ok());
                if let Ok(ext) = p.extensions() {
                    prop_assert!(ext.offset <= p.payload().len());
                }
            }
            if let Ok(p) = Ipv6Packet::new_checked(&bytes[..]) {
                let _ = p.extensions();
            }
        }
    }
}
