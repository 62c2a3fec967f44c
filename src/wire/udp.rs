//! The UDP header (RFC 768) and its checksum rules for IPv4 (RFC 768: zero
//! means "no checksum") and IPv6 (RFC 8200 section 8.1: mandatory).
//!
//! Owns the datagram's byte layout and checksum. Must not touch sockets or
//! port allocation (that is the stack core).

use super::bytes;
use super::checksum;
use super::{Error, IpAddr, IpProtocol, Result};

/// Field offsets of the header.
mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const LENGTH: usize = 4;
    pub const CHECKSUM: usize = 6;
}

/// The length of the header.
pub const HEADER_LEN: usize = 8;

/// A read-only or read-write view of a UDP datagram (the IP payload).
#[derive(Debug, Clone)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Wraps a buffer without validation. Accessors do not panic on it but
    /// may return zeros for fields the buffer does not hold.
    pub const fn new_unchecked(buffer: T) -> Self {
        UdpPacket { buffer }
    }

    /// Wraps a buffer after checking it holds the header and the length the
    /// length field gives (which must be at least 8). Bytes past that length
    /// are ignored.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let packet = UdpPacket { buffer };
        packet.check()?;
        Ok(packet)
    }

    fn check(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let field_len = usize::from(self.len());
        if field_len < HEADER_LEN {
            return Err(Error::Malformed);
        }
        if len < field_len {
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

    /// The source port.
    pub fn src_port(&self) -> u16 {
        bytes::u16_at(self.buf(), field::SRC_PORT)
    }

    /// The destination port.
    pub fn dst_port(&self) -> u16 {
        bytes::u16_at(self.buf(), field::DST_PORT)
    }

    /// The length field: header plus payload.
    pub fn len(&self) -> u16 {
        bytes::u16_at(self.buf(), field::LENGTH)
    }

    /// Whether the length field says the datagram has no payload.
    pub fn is_empty(&self) -> bool {
        usize::from(self.len()) <= HEADER_LEN
    }

    /// The checksum as stored; 0 over IPv4 means none was sent.
    pub fn checksum(&self) -> u16 {
        bytes::u16_at(self.buf(), field::CHECKSUM)
    }

    /// The datagram (header and payload) trimmed to the length field.
    fn datagram(&self) -> &[u8] {
        let buf = self.buf();
        buf.get(..usize::from(self.len())).unwrap_or(buf)
    }

    /// The payload, trimmed to the length field.
    pub fn payload(&self) -> &[u8] {
        self.datagram().get(HEADER_LEN..).unwrap_or(&[])
    }

    /// Checks the checksum against the pseudo-header of `src` and `dst`.
    /// Over IPv4 a zero checksum means none was computed and is accepted;
    /// over IPv6 it is an error (RFC 8200 section 8.1).
    pub fn verify_checksum(&self, src: IpAddr, dst: IpAddr) -> Result<()> {
        let datagram = self.datagram();
        let pseudo = checksum::pseudo_header(src, dst, IpProtocol::Udp, datagram.len())?;
        if self.checksum() == 0 {
            return match src {
                IpAddr::V4(_) => Ok(()),
                IpAddr::V6(_) => Err(Error::Checksum),
            };
        }
        if checksum::combine(&[pseudo, checksum::data(datagram)]) == 0xffff {
            Ok(())
        } else {
            Err(Error::Checksum)
        }
    }
}

/// A UDP header in plain data. The payload travels beside it.
///
/// ```
/// use ustack::wire::{Error, IpAddr, UdpPacket, UdpRepr};
///
/// let (a, b): (IpAddr, IpAddr) = ("fd77::2".parse().unwrap(), "fd77::1".parse().unwrap());
/// let repr = UdpRepr { src_port: 1234, dst_port: 7 };
/// let mut buf = vec![0; repr.buffer_len(3)];
/// assert_eq!(repr.emit(&mut buf, a, b, b"abc")?, 11);
/// assert_eq!(UdpRepr::parse_datagram(&buf, a, b)?, (repr, &b"abc"[..]));
///
/// // A zero checksum means "none" over IPv4 but is invalid over IPv6.
/// buf[6..8].copy_from_slice(&[0, 0]);
/// let packet = UdpPacket::new_checked(&buf[..])?;
/// assert_eq!(packet.verify_checksum(a, b), Err(Error::Checksum));
/// # Ok::<(), Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct UdpRepr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
}

impl UdpRepr {
    /// Parses a checked view, verifying the checksum.
    pub fn parse<T: AsRef<[u8]>>(
        packet: &UdpPacket<T>,
        src: IpAddr,
        dst: IpAddr,
    ) -> Result<UdpRepr> {
        packet.check()?;
        packet.verify_checksum(src, dst)?;
        Ok(UdpRepr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
        })
    }

    /// [`UdpRepr::parse`] for a datagram whose checksum is already known
    /// good (the link vouched for it): the same checks, without summing.
    pub fn parse_verified<T: AsRef<[u8]>>(packet: &UdpPacket<T>) -> Result<UdpRepr> {
        packet.check()?;
        Ok(UdpRepr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
        })
    }

    /// Parses a whole datagram (an IP payload) and returns the header and
    /// the payload slice.
    pub fn parse_datagram(datagram: &[u8], src: IpAddr, dst: IpAddr) -> Result<(UdpRepr, &[u8])> {
        let packet = UdpPacket::new_checked(datagram)?;
        let repr = UdpRepr::parse(&packet, src, dst)?;
        let end = usize::from(packet.len()).min(datagram.len());
        Ok((repr, datagram.get(HEADER_LEN..end).unwrap_or(&[])))
    }

    /// [`UdpRepr::parse_datagram`] without the checksum, for a datagram
    /// the link vouched for.
    pub fn parse_datagram_verified(datagram: &[u8]) -> Result<(UdpRepr, &[u8])> {
        let packet = UdpPacket::new_checked(datagram)?;
        let repr = UdpRepr::parse_verified(&packet)?;
        let end = usize::from(packet.len()).min(datagram.len());
        Ok((repr, datagram.get(HEADER_LEN..end).unwrap_or(&[])))
    }

    /// The length of the header.
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// The length of a datagram carrying `payload_len` bytes.
    pub const fn buffer_len(&self, payload_len: usize) -> usize {
        HEADER_LEN + payload_len
    }

    /// Writes the header and `payload` at the start of `buf`, computes the
    /// checksum for `src` and `dst` (a computed zero is sent as 0xffff, RFC
    /// 768, since zero means "none"), and returns the datagram length.
    pub fn emit(&self, buf: &mut [u8], src: IpAddr, dst: IpAddr, payload: &[u8]) -> Result<usize> {
        let total = self.buffer_len(payload.len());
        let len = u16::try_from(total).map_err(|_| Error::Malformed)?;
        let pseudo = checksum::pseudo_header(src, dst, IpProtocol::Udp, total)?;
        let datagram = buf.get_mut(..total).ok_or(Error::Truncated)?;
        bytes::set_u16(datagram, field::SRC_PORT, self.src_port);
        bytes::set_u16(datagram, field::DST_PORT, self.dst_port);
        bytes::set_u16(datagram, field::LENGTH, len);
        bytes::set_u16(datagram, field::CHECKSUM, 0);
        bytes::set_bytes(datagram, HEADER_LEN, payload);
        let sum = match !checksum::combine(&[pseudo, checksum::data(datagram)]) {
            0 => 0xffff,
            sum => sum,
        };
        bytes::set_u16(datagram, field::CHECKSUM, sum);
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Ipv4Addr, Ipv6Addr};
    use proptest::prelude::*;

    const A4: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 77, 0, 1));
    const B4: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 77, 0, 2));
    const A6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 1));
    const B6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 2));

    fn emit(src: IpAddr, dst: IpAddr, payload: &[u8]) -> Vec<u8> {
        let repr = UdpRepr {
            src_port: 5353,
            dst_port: 9,
        };
        let mut buf = vec![0; repr.buffer_len(payload.len())];
        repr.emit(&mut buf, src, dst, payload).unwrap();
        buf
    }

    #[test]
    fn layout_and_length_field_follow_rfc_768() {
        let buf = emit(A4, B4, b"abc");
        assert_eq!(&buf[..6], &[0x14, 0xe9, 0, 9, 0, 11]);
        assert_eq!(&buf[8..], b"abc");
    }

    #[test]
    fn zero_checksum_is_accepted_over_ipv4_only() {
        let mut buf = emit(A4, B4, b"abc");
        buf[6] = 0;
        buf[7] = 0;
        assert_eq!(
            UdpRepr::parse_datagram(&buf, A4, B4).map(|r| r.1),
            Ok(&b"abc"[..])
        );
        assert_eq!(
            UdpRepr::parse_datagram(&buf, A6, B6).err(),
            Some(Error::Checksum)
        );
    }

    #[test]
    fn computed_zero_checksum_is_sent_as_all_ones() {
        // Find a payload whose checksum computes to zero: choose the last two
        // bytes so the sum over everything is 0xffff before inversion.
        let mut payload = [0u8; 4];
        let base = emit(A4, B4, &payload);
        let pseudo = checksum::pseudo_header(A4, B4, IpProtocol::Udp, base.len()).unwrap();
        let mut zeroed = base.clone();
        zeroed[6] = 0;
        zeroed[7] = 0;
        let partial = checksum::combine(&[pseudo, checksum::data(&zeroed)]);
        payload[2..4].copy_from_slice(&(0xffff - partial).to_be_bytes());
        let buf = emit(A4, B4, &payload);
        assert_eq!(&buf[6..8], &[0xff, 0xff]);
        assert!(UdpRepr::parse_datagram(&buf, A4, B4).is_ok());
    }

    #[test]
    fn corrupted_datagram_fails_checksum_on_both_families() {
        for (src, dst) in [(A4, B4), (A6, B6)] {
            let mut buf = emit(src, dst, b"payload");
            buf[9] ^= 0x40;
            assert_eq!(
                UdpRepr::parse_datagram(&buf, src, dst).err(),
                Some(Error::Checksum)
            );
        }
    }

    #[test]
    fn length_field_trims_payload_and_bounds_are_checked() {
        let mut buf = emit(A4, B4, b"abc");
        buf.extend_from_slice(b"padding");
        assert_eq!(UdpRepr::parse_datagram(&buf, A4, B4).unwrap().1, b"abc");
        assert_eq!(
            UdpPacket::new_checked(&buf[..10]).err(),
            Some(Error::Truncated)
        );
        assert_eq!(
            UdpPacket::new_checked(&buf[..7]).err(),
            Some(Error::Truncated)
        );
        buf[5] = 7;
        assert_eq!(
            UdpPacket::new_checked(&buf[..]).err(),
            Some(Error::Malformed)
        );
    }

    #[test]
    fn emit_rejects_short_buffer_and_oversized_payload() {
        let repr = UdpRepr::default();
        assert_eq!(
            repr.emit(&mut [0; 10], A4, B4, b"abc"),
            Err(Error::Truncated)
        );
        let big = vec![0; 65536];
        let mut buf = vec![0; 65544];
        assert_eq!(repr.emit(&mut buf, A6, B6, &big), Err(Error::Malformed));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn parse_inverts_emit(
            sp in any::<u16>(), dp in any::<u16>(), v6 in any::<bool>(),
            payload in proptest::collection::vec(any::<u8>(), 0..100),
        ) {
            let (src, dst) = if v6 { (A6, B6) } else { (A4, B4) };
            let repr = UdpRepr { src_port: sp, dst_port: dp };
            let mut buf = vec![0; repr.buffer_len(payload.len())];
            prop_assert_eq!(repr.emit(&mut buf, src, dst, &payload), Ok(buf.len()));
            prop_assert_ne!(UdpPacket::new_unchecked(&buf[..]).checksum(), 0);
            let (parsed, got) = UdpRepr::parse_datagram(&buf, src, dst).unwrap();
            prop_assert_eq!(parsed, repr);
            prop_assert_eq!(got, &payload[..]);
        }

        #[test]
        fn single_bit_flips_outside_the_length_are_detected(
            v6 in any::<bool>(),
            payload in proptest::collection::vec(any::<u8>(), 1..40),
            bit in any::<usize>(),
        ) {
            let (src, dst) = if v6 { (A6, B6) } else { (A4, B4) };
            let mut buf = emit(src, dst, &payload);
            // A flipped length field changes which bytes are summed; that
            // case is covered by the never-panic properties instead.
            let at = (bit / 8) % buf.len();
            prop_assume!(at != 4 && at != 5);
            buf[at] ^= 1 << (bit % 8);
            let zeroed_v4 = !v6 && buf[6] == 0 && buf[7] == 0;
            prop_assert_eq!(UdpRepr::parse_datagram(&buf, src, dst).is_ok(), zeroed_v4);
        }

        #[test]
        fn mutated_valid_datagrams_never_panic(
            v6 in any::<bool>(),
            flips in proptest::collection::vec((0usize..24, any::<u8>()), 1..6),
            cut in 0usize..24,
        ) {
            let (src, dst) = if v6 { (A6, B6) } else { (A4, B4) };
            let mut buf = emit(src, dst, b"sixteen byte pay");
            for (at, x) in flips {
                buf[at] ^= x;
            }
            let bytes = &buf[..cut];
            if let Ok((_, payload)) = UdpRepr::parse_datagram(bytes, src, dst) {
                prop_assert!(payload.len() + HEADER_LEN <= bytes.len());
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..40), v6 in any::<bool>(),
        ) {
            let (src, dst) = if v6 { (A6, B6) } else { (A4, B4) };
            if let Ok((_, payload)) = UdpRepr::parse_datagram(&bytes, src, dst) {
                prop_assert!(payload.len() + HEADER_LEN <= bytes.len());
            }
        }
    }
}
