//! ICMP for IPv4 (RFC 792): echo, destination unreachable (with the
//! next-hop MTU of RFC 1191 section 4), and time exceeded.
//!
//! Owns the message layout and checksum. Must not touch the decision of
//! when to send an error or what to do with one (that is the stack core).
//! Error messages carry the quoted datagram as raw bytes; parse it with
//! [`crate::wire::parse_ip_quoted`].

use super::bytes;
use super::checksum;
use super::ipv4::{HEADER_LEN as IPV4_HEADER_LEN, Ipv4Packet};
use super::{Error, Result};

/// Field offsets of the message.
mod field {
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: usize = 2;
    /// Echo identifier; in errors the start of the unused word.
    pub const ECHO_IDENT: usize = 4;
    pub const ECHO_SEQ: usize = 6;
    /// RFC 1191: next-hop MTU in the low half of the unused word.
    pub const NEXT_HOP_MTU: usize = 6;
    pub const DATA: usize = 8;
}

/// The length of the header before the data.
pub const HEADER_LEN: usize = 8;

/// The most bytes of an offending datagram an error quotes, so that the
/// error's whole IP datagram stays within 576 bytes (RFC 1812 section
/// 4.3.2.3; Linux quotes the same amount).
pub const MAX_QUOTE_LEN: usize = 576 - IPV4_HEADER_LEN - HEADER_LEN;

/// The prefix of `original` (a whole IP datagram) that an error about it
/// quotes: all of it, or the first [`MAX_QUOTE_LEN`] bytes.
pub fn quote(original: &[u8]) -> &[u8] {
    original.get(..MAX_QUOTE_LEN).unwrap_or(original)
}

mod msg_type {
    pub const ECHO_REPLY: u8 = 0;
    pub const DST_UNREACHABLE: u8 = 3;
    pub const ECHO_REQUEST: u8 = 8;
    pub const TIME_EXCEEDED: u8 = 11;
}

/// Destination unreachable codes (RFC 792, RFC 1122 section 3.2.2.1).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum DstUnreachable {
    /// Code 0: network unreachable.
    NetUnreachable,
    /// Code 1: host unreachable.
    HostUnreachable,
    /// Code 2: protocol unreachable (no handler for the IP protocol).
    ProtoUnreachable,
    /// Code 3: port unreachable (no UDP socket on the port).
    PortUnreachable,
    /// Code 4: fragmentation needed and DF set, with the next-hop MTU (zero
    /// from routers older than RFC 1191).
    FragRequired {
        /// The MTU of the next hop in bytes (RFC 1191 section 4).
        next_hop_mtu: u16,
    },
    /// Any other code (source route failed, administratively prohibited...).
    Other(u8),
}

impl DstUnreachable {
    fn code(self) -> u8 {
        match self {
            DstUnreachable::NetUnreachable => 0,
            DstUnreachable::HostUnreachable => 1,
            DstUnreachable::ProtoUnreachable => 2,
            DstUnreachable::PortUnreachable => 3,
            DstUnreachable::FragRequired { .. } => 4,
            DstUnreachable::Other(code) => code,
        }
    }

    fn from_code(code: u8, next_hop_mtu: u16) -> DstUnreachable {
        match code {
            0 => DstUnreachable::NetUnreachable,
            1 => DstUnreachable::HostUnreachable,
            2 => DstUnreachable::ProtoUnreachable,
            3 => DstUnreachable::PortUnreachable,
            4 => DstUnreachable::FragRequired { next_hop_mtu },
            other => DstUnreachable::Other(other),
        }
    }
}

/// Time exceeded codes (RFC 792).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TimeExceeded {
    /// Code 0: TTL exceeded in transit.
    TtlExpired,
    /// Code 1: fragment reassembly time exceeded.
    FragReassembly,
    /// Any other code, kept as received.
    Other(u8),
}

impl TimeExceeded {
    fn code(self) -> u8 {
        match self {
            TimeExceeded::TtlExpired => 0,
            TimeExceeded::FragReassembly => 1,
            TimeExceeded::Other(code) => code,
        }
    }

    fn from_code(code: u8) -> TimeExceeded {
        match code {
            0 => TimeExceeded::TtlExpired,
            1 => TimeExceeded::FragReassembly,
            other => TimeExceeded::Other(other),
        }
    }
}

/// A read-only or read-write view of an ICMPv4 message (the IP payload).
#[derive(Debug, Clone)]
pub struct Icmpv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv4Packet<T> {
    /// Wraps a buffer without validation. Accessors do not panic on it but
    /// may return zeros for fields the buffer does not hold.
    pub const fn new_unchecked(buffer: T) -> Self {
        Icmpv4Packet { buffer }
    }

    /// Wraps a buffer after checking it holds the 8-byte header.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let packet = Icmpv4Packet { buffer };
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

    /// The message type (0 echo reply, 3 destination unreachable, 8 echo
    /// request, 11 time exceeded...).
    pub fn msg_type(&self) -> u8 {
        bytes::u8_at(self.buf(), field::TYPE)
    }

    /// The code, whose meaning depends on the type.
    pub fn code(&self) -> u8 {
        bytes::u8_at(self.buf(), field::CODE)
    }

    /// The checksum as stored (see [`Icmpv4Packet::verify_checksum`]).
    pub fn checksum(&self) -> u16 {
        bytes::u16_at(self.buf(), field::CHECKSUM)
    }

    /// The echo identifier (bytes 4-5; meaningful for echo messages only).
    pub fn echo_ident(&self) -> u16 {
        bytes::u16_at(self.buf(), field::ECHO_IDENT)
    }

    /// The echo sequence number (bytes 6-7; echo messages only).
    pub fn echo_seq_no(&self) -> u16 {
        bytes::u16_at(self.buf(), field::ECHO_SEQ)
    }

    /// The next-hop MTU of a "fragmentation needed" error (bytes 6-7, RFC 1191).
    pub fn next_hop_mtu(&self) -> u16 {
        bytes::u16_at(self.buf(), field::NEXT_HOP_MTU)
    }

    /// Everything after the 8-byte header: echo data, or the quoted datagram.
    pub fn data(&self) -> &[u8] {
        self.buf().get(field::DATA..).unwrap_or(&[])
    }

    /// Whether the checksum over the whole message verifies.
    pub fn verify_checksum(&self) -> bool {
        checksum::data(self.buf()) == 0xffff
    }
}

/// An ICMPv4 message in plain data, borrowing its data from the packet.
///
/// ```
/// use ustack::wire::{Icmpv4Packet, Icmpv4Repr};
///
/// let ping = Icmpv4Repr::EchoRequest { ident: 0x4242, seq_no: 1, data: b"hi!" };
/// let mut buf = [0u8; 16];
/// let len = ping.emit(&mut buf)?;
/// assert_eq!(len, 11);
/// let packet = Icmpv4Packet::new_checked(&buf[..len])?;
/// assert_eq!((packet.msg_type(), packet.code(), packet.echo_ident()), (8, 0, 0x4242));
/// assert_eq!(Icmpv4Repr::parse_bytes(&buf[..len])?, ping);
/// # Ok::<(), ustack::wire::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Icmpv4Repr<'a> {
    /// Echo request (type 8), what `ping` sends.
    EchoRequest {
        /// Identifier, chosen by the sender to match replies.
        ident: u16,
        /// Sequence number, usually counting up from 0 or 1.
        seq_no: u16,
        /// The payload, echoed back verbatim.
        data: &'a [u8],
    },
    /// Echo reply (type 0), answering an echo request with its identifier,
    /// sequence number and data.
    EchoReply {
        /// Identifier copied from the request.
        ident: u16,
        /// Sequence number copied from the request.
        seq_no: u16,
        /// Data copied from the request.
        data: &'a [u8],
    },
    /// `quoted` is the offending datagram: its IP header and at least the
    /// first 8 bytes of its payload when the original had them (RFC 792).
    DstUnreachable {
        /// Which destination was unreachable, and why.
        reason: DstUnreachable,
        /// The start of the offending datagram, IP header first.
        quoted: &'a [u8],
    },
    /// Time exceeded (type 11): `quoted` as for `DstUnreachable`.
    TimeExceeded {
        /// Which time ran out.
        reason: TimeExceeded,
        /// The start of the datagram that expired, IP header first.
        quoted: &'a [u8],
    },
}

impl<'a> Icmpv4Repr<'a> {
    /// Parses a checked view, verifying the checksum. Other message types
    /// are `Unsupported`; an error whose quoted bytes do not hold a whole
    /// IPv4 header is `Malformed`.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Icmpv4Packet<&'a T>) -> Result<Icmpv4Repr<'a>> {
        Self::parse_bytes(T::as_ref(packet.buffer))
    }

    /// Parses a whole message (an IP payload).
    pub fn parse_bytes(message: &'a [u8]) -> Result<Icmpv4Repr<'a>> {
        let packet = Icmpv4Packet::new_checked(message)?;
        if !packet.verify_checksum() {
            return Err(Error::Checksum);
        }
        let data = message.get(field::DATA..).unwrap_or(&[]);
        let (ident, seq_no) = (packet.echo_ident(), packet.echo_seq_no());
        match (packet.msg_type(), packet.code()) {
            (msg_type::ECHO_REQUEST, 0) => Ok(Icmpv4Repr::EchoRequest {
                ident,
                seq_no,
                data,
            }),
            (msg_type::ECHO_REPLY, 0) => Ok(Icmpv4Repr::EchoReply {
                ident,
                seq_no,
                data,
            }),
            (msg_type::DST_UNREACHABLE, code) => Ok(Icmpv4Repr::DstUnreachable {
                reason: DstUnreachable::from_code(code, packet.next_hop_mtu()),
                quoted: check_quoted(data)?,
            }),
            (msg_type::TIME_EXCEEDED, code) => Ok(Icmpv4Repr::TimeExceeded {
                reason: TimeExceeded::from_code(code),
                quoted: check_quoted(data)?,
            }),
            (msg_type::ECHO_REQUEST | msg_type::ECHO_REPLY, _) => Err(Error::Malformed),
            _ => Err(Error::Unsupported),
        }
    }

    fn data(&self) -> &'a [u8] {
        match *self {
            Icmpv4Repr::EchoRequest { data, .. } | Icmpv4Repr::EchoReply { data, .. } => data,
            Icmpv4Repr::DstUnreachable { quoted, .. } | Icmpv4Repr::TimeExceeded { quoted, .. } => {
                quoted
            }
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

    /// Writes the whole message, checksum included, at the start of `buf`
    /// and returns its length. The quoted bytes are written as given; the
    /// caller trims them (RFC 1812 section 4.3.2.3: at most 576 bytes of
    /// ICMP datagram in all).
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let total = self.buffer_len();
        let message = buf.get_mut(..total).ok_or(Error::Truncated)?;
        let (msg_type, code, word) = match *self {
            Icmpv4Repr::EchoRequest { ident, seq_no, .. } => (
                msg_type::ECHO_REQUEST,
                0,
                (u32::from(ident) << 16) | u32::from(seq_no),
            ),
            Icmpv4Repr::EchoReply { ident, seq_no, .. } => (
                msg_type::ECHO_REPLY,
                0,
                (u32::from(ident) << 16) | u32::from(seq_no),
            ),
            Icmpv4Repr::DstUnreachable { reason, .. } => {
                let mtu = match reason {
                    DstUnreachable::FragRequired { next_hop_mtu } => next_hop_mtu,
                    _ => 0,
                };
                (msg_type::DST_UNREACHABLE, reason.code(), u32::from(mtu))
            }
            Icmpv4Repr::TimeExceeded { reason, .. } => (msg_type::TIME_EXCEEDED, reason.code(), 0),
        };
        bytes::set_u8(message, field::TYPE, msg_type);
        bytes::set_u8(message, field::CODE, code);
        bytes::set_u16(message, field::CHECKSUM, 0);
        bytes::set_u32(message, field::ECHO_IDENT, word);
        bytes::set_bytes(message, field::DATA, self.data());
        let sum = !checksum::data(message);
        bytes::set_u16(message, field::CHECKSUM, sum);
        Ok(total)
    }
}

/// The quoted datagram must at least hold an IPv4 header, or the receiver
/// cannot tell which of its packets the error is about.
fn check_quoted(quoted: &[u8]) -> Result<&[u8]> {
    let packet = Ipv4Packet::new_truncated(quoted).map_err(|_| Error::Malformed)?;
    if packet.header_len() < IPV4_HEADER_LEN {
        return Err(Error::Malformed);
    }
    Ok(quoted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ipv4::Ipv4Repr;
    use crate::wire::{IpProtocol, Ipv4Addr};
    use proptest::prelude::*;

    /// An IPv4 header of a UDP datagram plus 8 bytes of it.
    fn offending() -> Vec<u8> {
        let repr = Ipv4Repr {
            src_addr: Ipv4Addr::new(10, 77, 0, 2),
            dst_addr: Ipv4Addr::new(10, 77, 0, 1),
            protocol: IpProtocol::Udp,
            payload_len: 100,
            ttl: 64,
            ident: 7,
            dont_frag: true,
            more_frags: false,
            frag_offset: 0,
            dscp: 0,
            ecn: 0,
        };
        let mut buf = vec![0; 28];
        repr.emit(&mut buf).unwrap();
        buf[20..28].copy_from_slice(&[0x30, 0x39, 0x00, 0x35, 0, 108, 0, 0]);
        buf
    }

    fn round_trip(repr: Icmpv4Repr<'_>) -> Vec<u8> {
        let mut buf = vec![0; repr.buffer_len()];
        assert_eq!(repr.emit(&mut buf), Ok(repr.buffer_len()));
        assert_eq!(Icmpv4Repr::parse_bytes(&buf), Ok(repr));
        buf
    }

    #[test]
    fn echo_request_layout_and_round_trip() {
        let buf = round_trip(Icmpv4Repr::EchoRequest {
            ident: 0x1234,
            seq_no: 1,
            data: b"ping",
        });
        assert_eq!(&buf[..2], &[8, 0]);
        assert_eq!(&buf[4..], &[0x12, 0x34, 0, 1, b'p', b'i', b'n', b'g']);
        let view = Icmpv4Packet::new_checked(&buf[..]).unwrap();
        assert!(matches!(
            Icmpv4Repr::parse(&view),
            Ok(Icmpv4Repr::EchoRequest { .. })
        ));
    }

    #[test]
    fn fragmentation_needed_carries_next_hop_mtu() {
        let quoted = offending();
        let buf = round_trip(Icmpv4Repr::DstUnreachable {
            reason: DstUnreachable::FragRequired { next_hop_mtu: 1280 },
            quoted: &quoted,
        });
        assert_eq!(&buf[..2], &[3, 4]);
        assert_eq!(&buf[4..8], &[0, 0, 0x05, 0x00]);
        assert_eq!(&buf[8..], &quoted[..]);
    }

    #[test]
    fn port_unreachable_and_reassembly_timeout_round_trip() {
        let quoted = offending();
        let buf = round_trip(Icmpv4Repr::DstUnreachable {
            reason: DstUnreachable::PortUnreachable,
            quoted: &quoted,
        });
        assert_eq!(&buf[..2], &[3, 3]);
        let buf = round_trip(Icmpv4Repr::TimeExceeded {
            reason: TimeExceeded::FragReassembly,
            quoted: &quoted,
        });
        assert_eq!(&buf[..2], &[11, 1]);
        round_trip(Icmpv4Repr::TimeExceeded {
            reason: TimeExceeded::TtlExpired,
            quoted: &quoted,
        });
    }

    #[test]
    fn error_without_whole_quoted_ip_header_is_malformed() {
        let quoted = offending();
        let repr = Icmpv4Repr::DstUnreachable {
            reason: DstUnreachable::HostUnreachable,
            quoted: &quoted[..19],
        };
        let mut buf = vec![0; repr.buffer_len()];
        repr.emit(&mut buf).unwrap();
        assert_eq!(Icmpv4Repr::parse_bytes(&buf), Err(Error::Malformed));
    }

    #[test]
    fn bad_checksum_short_header_and_unknown_type_are_errors() {
        let mut buf = round_trip(Icmpv4Repr::EchoReply {
            ident: 1,
            seq_no: 2,
            data: &[],
        });
        assert_eq!(Icmpv4Repr::parse_bytes(&buf[..7]), Err(Error::Truncated));
        buf[0] = 13; // timestamp request
        assert_eq!(Icmpv4Repr::parse_bytes(&buf), Err(Error::Checksum));
        let mut p = buf.clone();
        p[2] = 0;
        p[3] = 0;
        let sum = !checksum::data(&p);
        p[2..4].copy_from_slice(&sum.to_be_bytes());
        assert_eq!(Icmpv4Repr::parse_bytes(&p), Err(Error::Unsupported));
    }

    #[test]
    fn quote_keeps_error_within_576_bytes() {
        let big = vec![0x45; 1500];
        let repr = Icmpv4Repr::DstUnreachable {
            reason: DstUnreachable::FragRequired { next_hop_mtu: 1280 },
            quoted: quote(&big),
        };
        assert_eq!(IPV4_HEADER_LEN + repr.buffer_len(), 576);
        assert_eq!(quote(&big[..100]).len(), 100);
    }

    #[test]
    fn emit_into_short_buffer_is_truncated() {
        let repr = Icmpv4Repr::EchoRequest {
            ident: 0,
            seq_no: 0,
            data: b"abc",
        };
        assert_eq!(repr.emit(&mut [0; 10]), Err(Error::Truncated));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn parse_inverts_emit(
            kind in 0u8..4, code in any::<u8>(), a in any::<u16>(), b in any::<u16>(),
            data in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let mut quoted = offending();
            quoted.extend_from_slice(&data);
            let repr = match kind {
                0 => Icmpv4Repr::EchoRequest { ident: a, seq_no: b, data: &data },
                1 => Icmpv4Repr::EchoReply { ident: a, seq_no: b, data: &data },
                2 => Icmpv4Repr::DstUnreachable {
                    reason: DstUnreachable::from_code(code, if code == 4 { a } else { 0 }),
                    quoted: &quoted,
                },
                _ => Icmpv4Repr::TimeExceeded { reason: TimeExceeded::from_code(code), quoted: &quoted },
            };
            let mut buf = vec![0; repr.buffer_len()];
            prop_assert_eq!(repr.emit(&mut buf), Ok(buf.len()));
            prop_assert_eq!(Icmpv4Repr::parse_bytes(&buf), Ok(repr));
        }

        #[test]
        fn single_bit_flips_are_detected(
            data in proptest::collection::vec(any::<u8>(), 0..32),
            bit in any::<usize>(),
        ) {
            let repr = Icmpv4Repr::EchoRequest { ident: 7, seq_no: 9, data: &data };
            let mut buf = vec![0; repr.buffer_len()];
            repr.emit(&mut buf).unwrap();
            let at = (bit / 8) % buf.len();
            buf[at] ^= 1 << (bit % 8);
            prop_assert!(Icmpv4Repr::parse_bytes(&buf).is_err());
        }

        #[test]
        fn mutated_valid_errors_never_panic(
            flips in proptest::collection::vec((0usize..36, any::<u8>()), 1..6),
            cut in 0usize..36,
        ) {
            let quoted = offending();
            let repr = Icmpv4Repr::DstUnreachable { reason: DstUnreachable::PortUnreachable, quoted: &quoted };
            let mut buf = vec![0; repr.buffer_len()];
            repr.emit(&mut buf).unwrap();
            for (at, x) in flips {
                buf[at] ^= x;
            }
            // Refresh the checksum so the mutation reaches the quote check.
            buf[2] = 0;
            buf[3] = 0;
            let sum = !checksum::data(&buf[..cut]);
            if cut >= 4 {
                buf[2..4].copy_from_slice(&sum.to_be_bytes());
            }
            if let Ok(Icmpv4Repr::DstUnreachable { quoted, .. }) = Icmpv4Repr::parse_bytes(&buf[..cut]) {
                prop_assert!(quoted.len() >= 20);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Icmpv4Repr::parse_bytes(&bytes);
            // Also with a valid checksum, so parsing goes past verification.
            let mut fixed = bytes.clone();
            if fixed.len() >= HEADER_LEN {
                fixed[2] = 0;
                fixed[3] = 0;
                let sum = !checksum::data(&fixed);
                fixed[2..4].copy_from_slice(&sum.to_be_bytes());
                prop_assert_ne!(Icmpv4Repr::parse_bytes(&fixed), Err(Error::Checksum));
            }
        }
    }
}
