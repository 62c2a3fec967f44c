//! ICMP for IPv6 (RFC 4443): echo, destination unreachable, packet too big
//! and time exceeded; checksum over the IPv6 pseudo-header (section 2.3).
//!
//! Owns the message layout and checksum. Must not touch neighbour discovery
//! or MLD (types 130-137 parse as `Unsupported`: neighbour discovery is
//! [`crate::wire::ndp`], handled below the core by `crate::ethernet`) nor the decision of when to send an error. Error messages
//! carry the quoted packet as raw bytes; parse it with
//! [`crate::wire::parse_ip_quoted`].

use super::bytes;
use super::checksum;
use super::ipv6::{HEADER_LEN as IPV6_HEADER_LEN, Ipv6Packet};
use super::{Error, IpProtocol, Ipv6Addr, Result};

/// Field offsets of the message.
mod field {
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: usize = 2;
    pub const ECHO_IDENT: usize = 4;
    pub const ECHO_SEQ: usize = 6;
    /// Packet too big: the MTU, a 32-bit word.
    pub const MTU: usize = 4;
    pub const DATA: usize = 8;
}

/// The length of the header before the data.
pub const HEADER_LEN: usize = 8;

/// The most bytes of an offending packet an error quotes, so that the
/// error's whole packet fits the minimum MTU of 1280 (RFC 4443 section 2.4
/// (c)); assumes no extension headers on the error itself.
pub const MAX_QUOTE_LEN: usize = 1280 - IPV6_HEADER_LEN - HEADER_LEN;

/// The prefix of `original` (a whole IPv6 packet) that an error about it
/// quotes: all of it, or the first [`MAX_QUOTE_LEN`] bytes.
pub fn quote(original: &[u8]) -> &[u8] {
    original.get(..MAX_QUOTE_LEN).unwrap_or(original)
}

mod msg_type {
    pub const DST_UNREACHABLE: u8 = 1;
    pub const PACKET_TOO_BIG: u8 = 2;
    pub const TIME_EXCEEDED: u8 = 3;
    pub const ECHO_REQUEST: u8 = 128;
    pub const ECHO_REPLY: u8 = 129;
}

/// Destination unreachable codes (RFC 4443 section 3.1).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum DstUnreachable {
    /// Code 0.
    NoRoute,
    /// Code 1.
    AdminProhibited,
    /// Code 2.
    BeyondScope,
    /// Code 3.
    AddrUnreachable,
    /// Code 4.
    PortUnreachable,
    /// Codes 5 and up (policy failures, rejected routes, ...).
    Other(u8),
}

impl DstUnreachable {
    fn code(self) -> u8 {
        match self {
            DstUnreachable::NoRoute => 0,
            DstUnreachable::AdminProhibited => 1,
            DstUnreachable::BeyondScope => 2,
            DstUnreachable::AddrUnreachable => 3,
            DstUnreachable::PortUnreachable => 4,
            DstUnreachable::Other(code) => code,
        }
    }

    fn from_code(code: u8) -> DstUnreachable {
        match code {
            0 => DstUnreachable::NoRoute,
            1 => DstUnreachable::AdminProhibited,
            2 => DstUnreachable::BeyondScope,
            3 => DstUnreachable::AddrUnreachable,
            4 => DstUnreachable::PortUnreachable,
            other => DstUnreachable::Other(other),
        }
    }
}

/// Time exceeded codes (RFC 4443 section 3.3).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TimeExceeded {
    /// Code 0: hop limit exceeded in transit.
    HopLimitExceeded,
    /// Code 1: fragment reassembly time exceeded.
    FragReassembly,
    /// Any other code, kept as received.
    Other(u8),
}

impl TimeExceeded {
    fn code(self) -> u8 {
        match self {
            TimeExceeded::HopLimitExceeded => 0,
            TimeExceeded::FragReassembly => 1,
            TimeExceeded::Other(code) => code,
        }
    }

    fn from_code(code: u8) -> TimeExceeded {
        match code {
            0 => TimeExceeded::HopLimitExceeded,
            1 => TimeExceeded::FragReassembly,
            other => TimeExceeded::Other(other),
        }
    }
}

/// A read-only or read-write view of an ICMPv6 message (the upper-layer
/// payload after the extension headers).
#[derive(Debug, Clone)]
pub struct Icmpv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv6Packet<T> {
    /// Wraps a buffer without validation. Accessors do not panic on it but
    /// may return zeros for fields the buffer does not hold.
    pub const fn new_unchecked(buffer: T) -> Self {
        Icmpv6Packet { buffer }
    }

    /// Wraps a buffer after checking it holds the 8-byte header.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let packet = Icmpv6Packet { buffer };
        if packet.buf().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(packet)
    }

    /// Consumes the view, returning the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn buf(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// The message type (1 destination unreachable, 2 packet too big, 3 time
    /// exceeded, 128 echo request, 129 echo reply...).
    pub fn msg_type(&self) -> u8 {
        bytes::u8_at(self.buf(), field::TYPE)
    }

    /// The code, whose meaning depends on the type.
    pub fn code(&self) -> u8 {
        bytes::u8_at(self.buf(), field::CODE)
    }

    /// The checksum as stored (see [`Icmpv6Packet::verify_checksum`]).
    pub fn checksum(&self) -> u16 {
        bytes::u16_at(self.buf(), field::CHECKSUM)
    }

    /// The echo identifier (bytes 4-5; echo messages only).
    pub fn echo_ident(&self) -> u16 {
        bytes::u16_at(self.buf(), field::ECHO_IDENT)
    }

    /// The echo sequence number (bytes 6-7; echo messages only).
    pub fn echo_seq_no(&self) -> u16 {
        bytes::u16_at(self.buf(), field::ECHO_SEQ)
    }

    /// The MTU of a "packet too big" message, in bytes (RFC 4443 section 3.2).
    pub fn mtu(&self) -> u32 {
        bytes::u32_at(self.buf(), field::MTU)
    }

    /// Everything after the 8-byte header: echo data, or the quoted packet.
    pub fn data(&self) -> &[u8] {
        self.buf().get(field::DATA..).unwrap_or(&[])
    }

    /// Whether the checksum verifies with the pseudo-header of `src`, `dst`.
    pub fn verify_checksum(&self, src: Ipv6Addr, dst: Ipv6Addr) -> Result<bool> {
        let buf = self.buf();
        let len = u32::try_from(buf.len()).map_err(|_| Error::Malformed)?;
        let pseudo = checksum::pseudo_header_v6(src, dst, IpProtocol::Icmpv6, len);
        Ok(checksum::combine(&[pseudo, checksum::data(buf)]) == 0xffff)
    }
}

/// An ICMPv6 message in plain data, borrowing its data from the packet.
///
/// The checksum covers an IPv6 pseudo-header (RFC 4443 section 2.3), so
/// emit and parse take the addresses:
///
/// ```
/// use ustack::wire::{Error, Icmpv6Repr, Ipv6Addr};
///
/// let (a, b): (Ipv6Addr, Ipv6Addr) = ("fd77::1".parse().unwrap(), "fd77::2".parse().unwrap());
/// let reply = Icmpv6Repr::EchoReply { ident: 7, seq_no: 3, data: b"ping" };
/// let mut buf = [0u8; 32];
/// let len = reply.emit(&mut buf, b, a)?;
/// assert_eq!(len, 12);
/// assert_eq!(Icmpv6Repr::parse_bytes(&buf[..len], b, a)?, reply);
/// let c: Ipv6Addr = "fd77::3".parse().unwrap();
/// assert_eq!(Icmpv6Repr::parse_bytes(&buf[..len], c, a), Err(Error::Checksum));
/// # Ok::<(), Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Icmpv6Repr<'a> {
    /// Echo request (type 128, RFC 4443 section 4.1).
    EchoRequest {
        /// Identifier, chosen by the sender to match replies.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// The payload, echoed back verbatim.
        data: &'a [u8],
    },
    /// Echo reply (type 129, RFC 4443 section 4.2).
    EchoReply {
        /// Identifier copied from the request.
        ident: u16,
        /// Sequence number copied from the request.
        seq_no: u16,
        /// Data copied from the request.
        data: &'a [u8],
    },
    /// `quoted` is as much of the offending packet as fit (RFC 4443 section
    /// 2.4 (c): the whole error within the 1280-byte minimum MTU).
    DstUnreachable {
        /// Which destination was unreachable, and why.
        reason: DstUnreachable,
        /// The start of the offending packet, IPv6 header first.
        quoted: &'a [u8],
    },
    /// Packet too big (type 2, RFC 4443 section 3.2): `quoted` was dropped
    /// because it exceeded the next link's MTU.
    PacketTooBig {
        /// The MTU of the next link, in bytes.
        mtu: u32,
        /// The start of the packet that was too big.
        quoted: &'a [u8],
    },
    /// Time exceeded (type 3, RFC 4443 section 3.3).
    TimeExceeded {
        /// Which time ran out.
        reason: TimeExceeded,
        /// The start of the packet that expired.
        quoted: &'a [u8],
    },
}

impl<'a> Icmpv6Repr<'a> {
    /// Parses a checked view, verifying the checksum.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &Icmpv6Packet<&'a T>,
        src: Ipv6Addr,
        dst: Ipv6Addr,
    ) -> Result<Icmpv6Repr<'a>> {
        Self::parse_bytes(T::as_ref(packet.buffer), src, dst)
    }

    /// Parses a whole message, verifying the checksum. Other message types
    /// are `Unsupported`; an error whose quoted bytes do not hold a whole
    /// IPv6 fixed header is `Malformed`.
    pub fn parse_bytes(message: &'a [u8], src: Ipv6Addr, dst: Ipv6Addr) -> Result<Icmpv6Repr<'a>> {
        let packet = Icmpv6Packet::new_checked(message)?;
        if !packet.verify_checksum(src, dst)? {
            return Err(Error::Checksum);
        }
        let data = message.get(field::DATA..).unwrap_or(&[]);
        let (ident, seq_no) = (packet.echo_ident(), packet.echo_seq_no());
        match (packet.msg_type(), packet.code()) {
            (msg_type::ECHO_REQUEST, 0) => Ok(Icmpv6Repr::EchoRequest {
                ident,
                seq_no,
                data,
            }),
            (msg_type::ECHO_REPLY, 0) => Ok(Icmpv6Repr::EchoReply {
                ident,
                seq_no,
                data,
            }),
            (msg_type::DST_UNREACHABLE, code) => Ok(Icmpv6Repr::DstUnreachable {
                reason: DstUnreachable::from_code(code),
                quoted: check_quoted(data)?,
            }),
            (msg_type::PACKET_TOO_BIG, 0) => Ok(Icmpv6Repr::PacketTooBig {
                mtu: packet.mtu(),
                quoted: check_quoted(data)?,
            }),
            (msg_type::TIME_EXCEEDED, code) => Ok(Icmpv6Repr::TimeExceeded {
                reason: TimeExceeded::from_code(code),
                quoted: check_quoted(data)?,
            }),
            (msg_type::ECHO_REQUEST | msg_type::ECHO_REPLY | msg_type::PACKET_TOO_BIG, _) => {
                Err(Error::Malformed)
            }
            _ => Err(Error::Unsupported),
        }
    }

    fn data(&self) -> &'a [u8] {
        match *self {
            Icmpv6Repr::EchoRequest { data, .. } | Icmpv6Repr::EchoReply { data, .. } => data,
            Icmpv6Repr::DstUnreachable { quoted, .. }
            | Icmpv6Repr::PacketTooBig { quoted, .. }
            | Icmpv6Repr::TimeExceeded { quoted, .. } => quoted,
        }
    }

    /// The length of the header before the data.
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// The length of the whole message.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.data().len()
    }

    /// Writes the whole message at the start of `buf`, with the checksum
    /// for `src` and `dst`, and returns its length. Quoted bytes are written
    /// as given; the caller trims them to keep the packet within 1280 bytes.
    pub fn emit(&self, buf: &mut [u8], src: Ipv6Addr, dst: Ipv6Addr) -> Result<usize> {
        let total = self.buffer_len();
        let len = u32::try_from(total).map_err(|_| Error::Malformed)?;
        let message = buf.get_mut(..total).ok_or(Error::Truncated)?;
        let (msg_type, code, word) = match *self {
            Icmpv6Repr::EchoRequest { ident, seq_no, .. } => (
                msg_type::ECHO_REQUEST,
                0,
                (u32::from(ident) << 16) | u32::from(seq_no),
            ),
            Icmpv6Repr::EchoReply { ident, seq_no, .. } => (
                msg_type::ECHO_REPLY,
                0,
                (u32::from(ident) << 16) | u32::from(seq_no),
            ),
            Icmpv6Repr::DstUnreachable { reason, .. } => {
                (msg_type::DST_UNREACHABLE, reason.code(), 0)
            }
            Icmpv6Repr::PacketTooBig { mtu, .. } => (msg_type::PACKET_TOO_BIG, 0, mtu),
            Icmpv6Repr::TimeExceeded { reason, .. } => (msg_type::TIME_EXCEEDED, reason.code(), 0),
        };
        bytes::set_u8(message, field::TYPE, msg_type);
        bytes::set_u8(message, field::CODE, code);
        bytes::set_u16(message, field::CHECKSUM, 0);
        bytes::set_u32(message, field::ECHO_IDENT, word);
        bytes::set_bytes(message, field::DATA, self.data());
        let pseudo = checksum::pseudo_header_v6(src, dst, IpProtocol::Icmpv6, len);
        let sum = !checksum::combine(&[pseudo, checksum::data(message)]);
        bytes::set_u16(message, field::CHECKSUM, sum);
        Ok(total)
    }
}

/// The quoted packet must at least hold an IPv6 fixed header, or the
/// receiver cannot tell which of its packets the error is about.
fn check_quoted(quoted: &[u8]) -> Result<&[u8]> {
    match Ipv6Packet::new_truncated(quoted) {
        Ok(_) => Ok(quoted),
        Err(_) => Err(Error::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ipv6::Ipv6Repr;
    use proptest::prelude::*;

    const A: Ipv6Addr = Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 1);
    const B: Ipv6Addr = Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 2);

    /// An IPv6 header of a UDP datagram plus 8 bytes of it.
    fn offending() -> Vec<u8> {
        let repr = Ipv6Repr {
            src_addr: B,
            dst_addr: A,
            next_header: IpProtocol::Udp,
            payload_len: 1452,
            hop_limit: 64,
            traffic_class: 0,
            flow_label: 0,
        };
        let mut buf = vec![0; 48];
        repr.emit(&mut buf).unwrap();
        buf[40..48].copy_from_slice(&[0x30, 0x39, 0x00, 0x35, 0x05, 0xac, 0, 0]);
        buf
    }

    fn round_trip(repr: Icmpv6Repr<'_>) -> Vec<u8> {
        let mut buf = vec![0; repr.buffer_len()];
        assert_eq!(repr.emit(&mut buf, A, B), Ok(repr.buffer_len()));
        assert_eq!(Icmpv6Repr::parse_bytes(&buf, A, B), Ok(repr));
        buf
    }

    #[test]
    fn echo_request_layout_and_round_trip() {
        let buf = round_trip(Icmpv6Repr::EchoRequest {
            ident: 0xbeef,
            seq_no: 3,
            data: b"hi",
        });
        assert_eq!(&buf[..2], &[128, 0]);
        assert_eq!(&buf[4..], &[0xbe, 0xef, 0, 3, b'h', b'i']);
        let view = Icmpv6Packet::new_checked(&buf[..]).unwrap();
        assert!(matches!(
            Icmpv6Repr::parse(&view, A, B),
            Ok(Icmpv6Repr::EchoRequest { .. })
        ));
    }

    #[test]
    fn packet_too_big_carries_32_bit_mtu() {
        let quoted = offending();
        let buf = round_trip(Icmpv6Repr::PacketTooBig {
            mtu: 1280,
            quoted: &quoted,
        });
        assert_eq!(&buf[..2], &[2, 0]);
        assert_eq!(&buf[4..8], &[0, 0, 0x05, 0x00]);
    }

    #[test]
    fn port_unreachable_and_reassembly_timeout_round_trip() {
        let quoted = offending();
        let buf = round_trip(Icmpv6Repr::DstUnreachable {
            reason: DstUnreachable::PortUnreachable,
            quoted: &quoted,
        });
        assert_eq!(&buf[..2], &[1, 4]);
        let buf = round_trip(Icmpv6Repr::TimeExceeded {
            reason: TimeExceeded::FragReassembly,
            quoted: &quoted,
        });
        assert_eq!(&buf[..2], &[3, 1]);
    }

    #[test]
    fn quote_keeps_error_within_minimum_mtu() {
        let big = vec![0x60; 9000];
        let repr = Icmpv6Repr::PacketTooBig {
            mtu: 1280,
            quoted: quote(&big),
        };
        assert_eq!(IPV6_HEADER_LEN + repr.buffer_len(), 1280);
        assert_eq!(quote(&big[..48]).len(), 48);
    }

    #[test]
    fn checksum_covers_the_pseudo_header() {
        let buf = round_trip(Icmpv6Repr::EchoReply {
            ident: 1,
            seq_no: 1,
            data: &[],
        });
        assert_eq!(Icmpv6Repr::parse_bytes(&buf, B, B), Err(Error::Checksum));
    }

    #[test]
    fn neighbour_discovery_is_unsupported_and_short_quote_malformed() {
        let quoted = offending();
        let repr = Icmpv6Repr::DstUnreachable {
            reason: DstUnreachable::NoRoute,
            quoted: &quoted[..39],
        };
        let mut buf = vec![0; repr.buffer_len()];
        repr.emit(&mut buf, A, B).unwrap();
        assert_eq!(Icmpv6Repr::parse_bytes(&buf, A, B), Err(Error::Malformed));
        // Re-type it as a router solicitation (133) with a fresh checksum.
        buf[0] = 133;
        buf[1] = 0;
        buf[2] = 0;
        buf[3] = 0;
        let pseudo = checksum::pseudo_header_v6(A, B, IpProtocol::Icmpv6, buf.len() as u32);
        let sum = !checksum::combine(&[pseudo, checksum::data(&buf)]);
        buf[2..4].copy_from_slice(&sum.to_be_bytes());
        assert_eq!(Icmpv6Repr::parse_bytes(&buf, A, B), Err(Error::Unsupported));
        assert_eq!(
            Icmpv6Repr::parse_bytes(&buf[..7], A, B),
            Err(Error::Truncated)
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn parse_inverts_emit(
            kind in 0u8..5, code in any::<u8>(), a in any::<u16>(), b in any::<u16>(),
            mtu in any::<u32>(),
            data in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let mut quoted = offending();
            quoted.extend_from_slice(&data);
            let repr = match kind {
                0 => Icmpv6Repr::EchoRequest { ident: a, seq_no: b, data: &data },
                1 => Icmpv6Repr::EchoReply { ident: a, seq_no: b, data: &data },
                2 => Icmpv6Repr::DstUnreachable { reason: DstUnreachable::from_code(code), quoted: &quoted },
                3 => Icmpv6Repr::PacketTooBig { mtu, quoted: &quoted },
                _ => Icmpv6Repr::TimeExceeded { reason: TimeExceeded::from_code(code), quoted: &quoted },
            };
            let mut buf = vec![0; repr.buffer_len()];
            prop_assert_eq!(repr.emit(&mut buf, A, B), Ok(buf.len()));
            prop_assert_eq!(Icmpv6Repr::parse_bytes(&buf, A, B), Ok(repr));
        }

        #[test]
        fn single_bit_flips_are_detected(
            data in proptest::collection::vec(any::<u8>(), 0..32),
            bit in any::<usize>(),
        ) {
            let repr = Icmpv6Repr::EchoReply { ident: 7, seq_no: 9, data: &data };
            let mut buf = vec![0; repr.buffer_len()];
            repr.emit(&mut buf, A, B).unwrap();
            let at = (bit / 8) % buf.len();
            buf[at] ^= 1 << (bit % 8);
            prop_assert!(Icmpv6Repr::parse_bytes(&buf, A, B).is_err());
        }

        #[test]
        fn mutated_valid_errors_never_panic(
            flips in proptest::collection::vec((0usize..56, any::<u8>()), 1..6),
            cut in 0usize..56,
        ) {
            let quoted = offending();
            let repr = Icmpv6Repr::PacketTooBig { mtu: 1280, quoted: &quoted };
            let mut buf = vec![0; repr.buffer_len()];
            repr.emit(&mut buf, A, B).unwrap();
            for (at, x) in flips {
                buf[at] ^= x;
            }
            let msg = &mut buf[..cut];
            if msg.len() >= 4 {
                msg[2] = 0;
                msg[3] = 0;
                let pseudo = checksum::pseudo_header_v6(A, B, IpProtocol::Icmpv6, msg.len() as u32);
                let sum = !checksum::combine(&[pseudo, checksum::data(msg)]);
                msg[2..4].copy_from_slice(&sum.to_be_bytes());
            }
            if let Ok(Icmpv6Repr::PacketTooBig { quoted, .. }) = Icmpv6Repr::parse_bytes(msg, A, B) {
                prop_assert!(quoted.len() >= 40);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = Icmpv6Repr::parse_bytes(&bytes, A, B);
            let mut fixed = bytes.clone();
            if fixed.len() >= HEADER_LEN {
                fixed[2] = 0;
                fixed[3] = 0;
                let pseudo = checksum::pseudo_header_v6(A, B, IpProtocol::Icmpv6, fixed.len() as u32);
                let sum = !checksum::combine(&[pseudo, checksum::data(&fixed)]);
                fixed[2..4].copy_from_slice(&sum.to_be_bytes());
                prop_assert_ne!(Icmpv6Repr::parse_bytes(&fixed, A, B), Err(Error::Checksum));
            }
        }
    }
}
