//! The IPv4 header (RFC 791 section 3.1; DSCP/ECN per RFC 2474 and RFC 3168).
//!
//! Owns the header's byte layout and its checksum. Options are validated
//! only as far as the IHL field and skipped: the stack neither needs nor
//! emits them. Must not touch fragment reassembly (that is `crate::ip`).

use super::bytes;
use super::checksum;
use super::{Error, IpProtocol, Ipv4Addr, Result};

/// Field offsets of the fixed header.
mod field {
    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const LENGTH: usize = 2;
    pub const IDENT: usize = 4;
    pub const FLG_OFF: usize = 6;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: usize = 10;
    pub const SRC: usize = 12;
    pub const DST: usize = 16;
}

/// The length of a header without options.
pub const HEADER_LEN: usize = 20;

const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const OFFSET_MASK: u16 = 0x1fff;

/// A read-only or read-write view of an IPv4 packet.
#[derive(Debug, Clone)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wraps a buffer without validation. Accessors do not panic on it but
    /// may return zeros for fields the buffer does not hold.
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv4Packet { buffer }
    }

    /// Wraps a buffer after checking the version, that the header length is
    /// at least 20 and fits, and that the total length covers the header and
    /// fits the buffer (bytes past the total length are link padding and are
    /// ignored by [`Ipv4Packet::payload`]).
    pub fn new_checked(buffer: T) -> Result<Self> {
        let packet = Ipv4Packet { buffer };
        packet.check(false)?;
        Ok(packet)
    }

    /// Like [`Ipv4Packet::new_checked`] but accepts a buffer shorter than
    /// the total length, as in the copy of a datagram quoted by an ICMP
    /// error; the payload is then whatever bytes are present.
    pub fn new_truncated(buffer: T) -> Result<Self> {
        let packet = Ipv4Packet { buffer };
        packet.check(true)?;
        Ok(packet)
    }

    fn check(&self, allow_truncated: bool) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if self.version() != 4 {
            return Err(Error::Malformed);
        }
        let header_len = self.header_len();
        let total_len = usize::from(self.total_len());
        if header_len < HEADER_LEN || total_len < header_len {
            return Err(Error::Malformed);
        }
        if len < header_len || (!allow_truncated && len < total_len) {
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

    /// The version nibble; 4 in any view `new_checked` accepted.
    pub fn version(&self) -> u8 {
        bytes::u8_at(self.buf(), field::VER_IHL) >> 4
    }

    /// The header length in bytes (IHL times four).
    pub fn header_len(&self) -> usize {
        usize::from(bytes::u8_at(self.buf(), field::VER_IHL) & 0x0f) * 4
    }

    /// The DSCP, the upper six bits of the old TOS byte (RFC 2474).
    pub fn dscp(&self) -> u8 {
        bytes::u8_at(self.buf(), field::DSCP_ECN) >> 2
    }

    /// The ECN codepoint, the low two bits of the old TOS byte (RFC 3168
    /// section 5).
    pub fn ecn(&self) -> u8 {
        bytes::u8_at(self.buf(), field::DSCP_ECN) & 0x03
    }

    /// The total length of the datagram in bytes, header included.
    pub fn total_len(&self) -> u16 {
        bytes::u16_at(self.buf(), field::LENGTH)
    }

    /// The identification field, used to group fragments (RFC 791, RFC 6864).
    pub fn ident(&self) -> u16 {
        bytes::u16_at(self.buf(), field::IDENT)
    }

    /// The "don't fragment" (DF) flag.
    pub fn dont_frag(&self) -> bool {
        bytes::u16_at(self.buf(), field::FLG_OFF) & FLAG_DF != 0
    }

    /// The "more fragments" (MF) flag.
    pub fn more_frags(&self) -> bool {
        bytes::u16_at(self.buf(), field::FLG_OFF) & FLAG_MF != 0
    }

    /// The fragment offset in bytes (the field counts 8-byte units).
    pub fn frag_offset(&self) -> u16 {
        (bytes::u16_at(self.buf(), field::FLG_OFF) & OFFSET_MASK) << 3
    }

    /// Whether this datagram is a fragment (offset non-zero or MF set).
    pub fn is_fragment(&self) -> bool {
        self.more_frags() || self.frag_offset() != 0
    }

    /// Time to live: the hop count left.
    pub fn ttl(&self) -> u8 {
        bytes::u8_at(self.buf(), field::TTL)
    }

    /// The protocol of the payload.
    pub fn protocol(&self) -> IpProtocol {
        IpProtocol::from(bytes::u8_at(self.buf(), field::PROTOCOL))
    }

    /// The header checksum as stored (see [`Ipv4Packet::verify_checksum`]).
    pub fn checksum(&self) -> u16 {
        bytes::u16_at(self.buf(), field::CHECKSUM)
    }

    /// The source address.
    pub fn src_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(bytes::array_at::<4>(self.buf(), field::SRC))
    }

    /// The destination address.
    pub fn dst_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(bytes::array_at::<4>(self.buf(), field::DST))
    }

    /// The header including options.
    pub fn header(&self) -> &[u8] {
        let buf = self.buf();
        buf.get(..self.header_len()).unwrap_or(buf)
    }

    /// The option bytes (possibly empty).
    pub fn options(&self) -> &[u8] {
        self.header().get(HEADER_LEN..).unwrap_or(&[])
    }

    /// Whether the header checksum verifies (RFC 791: the one's-complement
    /// sum over the header, checksum included, is all ones).
    pub fn verify_checksum(&self) -> bool {
        checksum::data(self.header()) == 0xffff
    }

    /// The payload, trimmed to the total length (and to the buffer, for a
    /// view made by [`Ipv4Packet::new_truncated`]).
    pub fn payload(&self) -> &[u8] {
        let buf = self.buf();
        let end = usize::from(self.total_len()).min(buf.len());
        buf.get(self.header_len()..end).unwrap_or(&[])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    fn buf_mut(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }

    /// Recomputes the header checksum over the current header bytes.
    pub fn fill_checksum(&mut self) {
        bytes::set_u16(self.buf_mut(), field::CHECKSUM, 0);
        let sum = !checksum::data(self.header());
        bytes::set_u16(self.buf_mut(), field::CHECKSUM, sum);
    }

    /// The payload, mutable, trimmed like [`Ipv4Packet::payload`].
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.header_len();
        let end = usize::from(self.total_len()).min(self.buf().len());
        self.buf_mut().get_mut(start..end).unwrap_or(&mut [])
    }
}

/// An IPv4 header in plain data. Options are not represented: parse skips
/// them and emit writes none.
///
/// A round trip through the bytes, checksum included:
///
/// ```
/// use ustack::wire::{IpProtocol, Ipv4Addr, Ipv4Packet, Ipv4Repr};
///
/// let repr = Ipv4Repr {
///     src_addr: Ipv4Addr::new(10, 77, 0, 2),
///     dst_addr: Ipv4Addr::new(10, 77, 0, 1),
///     protocol: IpProtocol::Tcp,
///     payload_len: 4,
///     ttl: 64,
///     ident: 0x1234,
///     dont_frag: true,
///     more_frags: false,
///     frag_offset: 0,
///     dscp: 0,
///     ecn: 0,
/// };
/// let mut buf = vec![0; repr.buffer_len()];
/// assert_eq!(repr.emit(&mut buf)?, 20);
/// buf[20..].copy_from_slice(b"data");
///
/// let packet = Ipv4Packet::new_checked(&buf[..])?;
/// assert_eq!(packet.total_len(), 24);
/// assert!(packet.verify_checksum());
/// assert_eq!(Ipv4Repr::parse(&packet)?, repr);
/// assert_eq!(packet.payload(), b"data");
///
/// buf[8] = 63; // change the TTL without fixing the checksum
/// let packet = Ipv4Packet::new_checked(&buf[..])?;
/// assert_eq!(Ipv4Repr::parse(&packet), Err(ustack::wire::Error::Checksum));
/// # Ok::<(), ustack::wire::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Ipv4Repr {
    /// The source address.
    pub src_addr: Ipv4Addr,
    /// The destination address.
    pub dst_addr: Ipv4Addr,
    /// The protocol of the payload.
    pub protocol: IpProtocol,
    /// Length of the payload in bytes (total length minus header length).
    pub payload_len: usize,
    /// Time to live (hop count) to send with.
    pub ttl: u8,
    /// The identification, grouping the fragments of one datagram (RFC 6864).
    pub ident: u16,
    /// The "don't fragment" (DF) flag.
    pub dont_frag: bool,
    /// The "more fragments" (MF) flag: more fragments of this datagram follow.
    pub more_frags: bool,
    /// Fragment offset in bytes; a multiple of 8.
    pub frag_offset: u16,
    /// Differentiated services code point, 6 bits.
    pub dscp: u8,
    /// Explicit congestion notification, 2 bits.
    pub ecn: u8,
}

impl Ipv4Repr {
    /// Parses a checked view, verifying the header checksum.
    pub fn parse<T: AsRef<[u8]>>(packet: &Ipv4Packet<T>) -> Result<Ipv4Repr> {
        packet.check(false)?;
        if !packet.verify_checksum() {
            return Err(Error::Checksum);
        }
        Ok(Ipv4Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            protocol: packet.protocol(),
            payload_len: packet.payload().len(),
            ttl: packet.ttl(),
            ident: packet.ident(),
            dont_frag: packet.dont_frag(),
            more_frags: packet.more_frags(),
            frag_offset: packet.frag_offset(),
            dscp: packet.dscp(),
            ecn: packet.ecn(),
        })
    }

    /// The length of the header emit writes.
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// The length of the whole datagram: header plus payload.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload_len
    }

    /// Writes the 20-byte header, checksum included, at the start of `buf`
    /// and returns its length. The payload is the caller's to write after it.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let total = u16::try_from(self.buffer_len()).map_err(|_| Error::Malformed)?;
        if !self.frag_offset.is_multiple_of(8) || self.dscp > 0x3f || self.ecn > 0x03 {
            return Err(Error::Malformed);
        }
        let header = buf.get_mut(..HEADER_LEN).ok_or(Error::Truncated)?;
        bytes::set_u8(header, field::VER_IHL, 0x45);
        bytes::set_u8(header, field::DSCP_ECN, (self.dscp << 2) | self.ecn);
        bytes::set_u16(header, field::LENGTH, total);
        bytes::set_u16(header, field::IDENT, self.ident);
        let mut flg_off = self.frag_offset >> 3;
        if self.dont_frag {
            flg_off |= FLAG_DF;
        }
        if self.more_frags {
            flg_off |= FLAG_MF;
        }
        bytes::set_u16(header, field::FLG_OFF, flg_off);
        bytes::set_u8(header, field::TTL, self.ttl);
        bytes::set_u8(header, field::PROTOCOL, self.protocol.into());
        bytes::set_bytes(header, field::SRC, &self.src_addr.octets());
        bytes::set_bytes(header, field::DST, &self.dst_addr.octets());
        Ipv4Packet::new_unchecked(header).fill_checksum();
        Ok(HEADER_LEN)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A 20-byte ICMP echo header, 10.0.0.1 -> 10.0.0.2, 8 payload bytes.
    fn sample() -> Vec<u8> {
        let repr = Ipv4Repr {
            src_addr: Ipv4Addr::new(10, 0, 0, 1),
            dst_addr: Ipv4Addr::new(10, 0, 0, 2),
            protocol: IpProtocol::Icmp,
            payload_len: 8,
            ttl: 64,
            ident: 0x1234,
            dont_frag: true,
            more_frags: false,
            frag_offset: 0,
            dscp: 0,
            ecn: 0,
        };
        let mut buf = vec![0xaa; repr.buffer_len()];
        repr.emit(&mut buf).unwrap();
        buf
    }

    pub(crate) fn arb_repr() -> impl Strategy<Value = Ipv4Repr> {
        (
            any::<[u8; 4]>(),
            any::<[u8; 4]>(),
            any::<u8>(),
            0usize..2000,
            any::<u8>(),
            any::<u16>(),
            any::<(bool, bool)>(),
            0u16..0x2000,
            0u8..64,
            0u8..4,
        )
            .prop_map(
                |(s, d, p, len, ttl, id, (df, mf), off, dscp, ecn)| Ipv4Repr {
                    src_addr: s.into(),
                    dst_addr: d.into(),
                    protocol: p.into(),
                    payload_len: len,
                    ttl,
                    ident: id,
                    dont_frag: df,
                    more_frags: mf,
                    frag_offset: off << 3,
                    dscp,
                    ecn,
                },
            )
    }

    #[test]
    fn emit_writes_rfc_791_layout() {
        let buf = sample();
        assert_eq!(
            &buf[..12],
            &[0x45, 0, 0, 28, 0x12, 0x34, 0x40, 0, 64, 1, buf[10], buf[11]]
        );
        assert_eq!(&buf[12..20], &[10, 0, 0, 1, 10, 0, 0, 2]);
        assert_eq!(checksum::data(&buf[..20]), 0xffff);
    }

    #[test]
    fn options_are_skipped_by_ihl() {
        let mut buf = sample();
        // Insert 4 option bytes (NOP NOP NOP EOL) and fix IHL, length, sum.
        buf.splice(20..20, [1, 1, 1, 0]);
        buf[0] = 0x46;
        buf[3] = 32;
        let mut p = Ipv4Packet::new_checked(&mut buf[..]).unwrap();
        p.fill_checksum();
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.options(), &[1, 1, 1, 0]);
        assert_eq!(p.payload(), &[0xaa; 8]);
        let repr = Ipv4Repr::parse(&p).unwrap();
        assert_eq!(repr.payload_len, 8);
    }

    #[test]
    fn payload_is_trimmed_to_total_length() {
        let mut buf = sample();
        buf.extend_from_slice(&[0xee; 6]);
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.payload(), &[0xaa; 8]);
    }

    #[test]
    fn buffer_shorter_than_total_length_is_truncated() {
        let buf = sample();
        assert_eq!(
            Ipv4Packet::new_checked(&buf[..27]).err(),
            Some(Error::Truncated)
        );
        assert_eq!(
            Ipv4Packet::new_checked(&buf[..19]).err(),
            Some(Error::Truncated)
        );
        let quoted = Ipv4Packet::new_truncated(&buf[..24]).unwrap();
        assert_eq!(quoted.payload(), &[0xaa; 4]);
    }

    #[test]
    fn bad_version_ihl_or_total_length_is_malformed() {
        let mut buf = sample();
        buf[0] = 0x65;
        assert_eq!(
            Ipv4Packet::new_checked(&buf[..]).err(),
            Some(Error::Malformed)
        );
        buf[0] = 0x44;
        assert_eq!(
            Ipv4Packet::new_checked(&buf[..]).err(),
            Some(Error::Malformed)
        );
        buf[0] = 0x4f; // 60-byte header in a 28-byte datagram
        assert_eq!(
            Ipv4Packet::new_checked(&buf[..]).err(),
            Some(Error::Malformed)
        );
        buf[0] = 0x45;
        buf[3] = 19;
        assert_eq!(
            Ipv4Packet::new_checked(&buf[..]).err(),
            Some(Error::Malformed)
        );
    }

    #[test]
    fn corrupted_header_fails_checksum() {
        let mut buf = sample();
        buf[8] ^= 1;
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(Ipv4Repr::parse(&p), Err(Error::Checksum));
    }

    #[test]
    fn fragment_fields_decode_offset_in_bytes() {
        let mut buf = sample();
        buf[6] = 0x20 | 0x01; // MF, offset 0x100 units
        buf[7] = 0x00;
        let mut p = Ipv4Packet::new_checked(&mut buf[..]).unwrap();
        p.fill_checksum();
        let repr = Ipv4Repr::parse(&p).unwrap();
        assert!(repr.more_frags && !repr.dont_frag);
        assert_eq!(repr.frag_offset, 0x100 * 8);
        assert!(p.is_fragment());
    }

    #[test]
    fn emit_rejects_unencodable_reprs_and_short_buffers() {
        let p = Ipv4Packet::new_checked(sample()).unwrap();
        let mut repr = Ipv4Repr::parse(&p).unwrap();
        assert_eq!(repr.emit(&mut [0; 19]), Err(Error::Truncated));
        repr.frag_offset = 4;
        assert_eq!(repr.emit(&mut [0; 20]), Err(Error::Malformed));
        repr.frag_offset = 0;
        repr.payload_len = 65536 - 20;
        assert_eq!(repr.emit(&mut [0; 20]), Err(Error::Malformed));
    }

    #[test]
    fn unchecked_view_of_empty_buffer_reads_zeros() {
        let p = Ipv4Packet::new_unchecked(&[][..]);
        assert_eq!(p.total_len(), 0);
        assert_eq!(p.src_addr(), Ipv4Addr::UNSPECIFIED);
        assert!(p.payload().is_empty());
        assert!(p.options().is_empty());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn parse_inverts_emit(repr in arb_repr()) {
            let mut buf = vec![0u8; repr.buffer_len()];
            prop_assert_eq!(repr.emit(&mut buf), Ok(HEADER_LEN));
            let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
            prop_assert_eq!(Ipv4Repr::parse(&p), Ok(repr));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(p) = Ipv4Packet::new_checked(&bytes[..]) {
                let _ = Ipv4Repr::parse(&p);
                prop_assert!(p.payload().len() <= bytes.len());
            }
            let _ = Ipv4Packet::new_truncated(&bytes[..]).map(|p| p.payload().len());
        }

        #[test]
        fn mutated_valid_packets_never_panic(
            repr in arb_repr(),
            flips in proptest::collection::vec((0usize..40, any::<u8>()), 1..6),
            cut in 0usize..64,
        ) {
            let mut buf = vec![0u8; repr.buffer_len().min(64)];
            let _ = repr.emit(&mut buf);
            for (at, x) in flips {
                if let Some(b) = buf.get_mut(at) {
                    *b ^= x;
                }
            }
            let bytes = &buf[..cut.min(buf.len())];
            if let Ok(p) = Ipv4Packet::new_checked(bytes) {
                let _ = Ipv4Repr::parse(&p);
            }
        }
    }
}
