//! Packet formats.
//!
//! Owns the byte layout of every header the stack speaks: Ethernet II, ARP
//! neighbour discovery and MLDv2 reports (for a TAP link: `ethernet`,
//! `arp`, `ndp`, `mld`),
//! IPv4, IPv6 and its extension headers, TCP, UDP, ICMPv4, ICMPv6, the
//! Internet checksum, DHCPv4 messages (`dhcp`, for the tap link's client),
//! and
//! DNS messages for the shim's stub resolver (`dns`: a query emitter and a
//! response parser, the one format without a view).
//! Each format has a zero-copy view (`XxxPacket<T: AsRef<[u8]>>`, validated
//! once by `new_checked` so that no accessor can panic) and a plain-data
//! `XxxRepr` with `parse` and `emit`.
//!
//! Must not touch: state, time, or I/O. Everything here is a pure function,
//! and no input, however malformed, makes it panic.
//!
//! Conventions shared by every format:
//! - `XxxPacket::new_checked` validates every length once; accessors also
//!   read through bounds-checked helpers, so even a view made with
//!   `new_unchecked` over a short buffer yields zeros instead of panicking.
//! - `XxxRepr::emit` writes into a caller-sized `&mut [u8]` and returns the
//!   number of bytes written; a short buffer is [`Error::Truncated`], a repr
//!   that cannot be encoded is [`Error::Malformed`].
//! - [`ip::parse_ip`] and [`ip::IpHeader`] are the entry points the stack
//!   core uses for demultiplexing and output.

pub mod arp;
pub mod checksum;
pub mod dhcp;
pub mod dns;
pub mod ethernet;
pub mod icmpv4;
pub mod icmpv6;
pub mod ip;
pub mod ipv4;
pub mod ipv6;
pub mod mld;
pub mod ndp;
pub mod prefix;
pub mod tcp;
pub mod udp;

pub use icmpv4::{Icmpv4Packet, Icmpv4Repr};
pub use icmpv6::{Icmpv6Packet, Icmpv6Repr};
pub use ip::{IpFragment, IpHeader, IpView, parse_ip, parse_ip_quoted};
pub use ipv4::{Ipv4Packet, Ipv4Repr};
pub use ipv6::{Ipv6FragmentRepr, Ipv6Packet, Ipv6Repr};
pub use prefix::Prefix;
pub use tcp::{TcpFlags, TcpOptions, TcpPacket, TcpRepr};
pub use udp::{UdpPacket, UdpRepr};

pub use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use core::fmt;

/// Why a packet could not be parsed or emitted.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Error {
    /// The buffer is shorter than the header or a length field says.
    Truncated,
    /// A field holds a value the format forbids (bad version, bad header
    /// length, an option whose length runs past the header, ...).
    Malformed,
    /// The checksum does not verify.
    Checksum,
    /// A well-formed packet this stack does not handle.
    Unsupported,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::Truncated => "truncated packet",
            Error::Malformed => "malformed packet",
            Error::Checksum => "bad checksum",
            Error::Unsupported => "unsupported packet",
        })
    }
}

impl std::error::Error for Error {}

/// Result of parsing or emitting a packet.
pub type Result<T> = core::result::Result<T, Error>;

/// An IP protocol number (IPv4 `protocol`, IPv6 `next header`; the IANA
/// "Assigned Internet Protocol Numbers" registry).
///
/// Converts losslessly to and from the byte on the wire:
///
/// ```
/// use ustack::wire::IpProtocol;
///
/// assert_eq!(IpProtocol::from(17), IpProtocol::Udp);
/// assert_eq!(u8::from(IpProtocol::Icmpv6), 58);
/// assert_eq!(IpProtocol::from(132), IpProtocol::Unknown(132)); // SCTP
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum IpProtocol {
    /// IPv6 Hop-by-Hop Options extension header (0; RFC 8200 section 4.3).
    HopByHop,
    /// ICMP for IPv4 (1; RFC 792).
    Icmp,
    /// TCP (6; RFC 9293).
    Tcp,
    /// UDP (17; RFC 768).
    Udp,
    /// IPv6 Routing extension header (43; RFC 8200 section 4.4).
    Ipv6Route,
    /// IPv6 Fragment extension header (44; RFC 8200 section 4.5).
    Ipv6Frag,
    /// ICMPv6 (58; RFC 4443).
    Icmpv6,
    /// IPv6 "no next header" (59; RFC 8200 section 4.7).
    Ipv6NoNxt,
    /// IPv6 Destination Options extension header (60; RFC 8200 section 4.6).
    Ipv6Opts,
    /// Any other protocol number, kept as received.
    Unknown(u8),
}

impl From<u8> for IpProtocol {
    fn from(value: u8) -> Self {
        match value {
            0 => IpProtocol::HopByHop,
            1 => IpProtocol::Icmp,
            6 => IpProtocol::Tcp,
            17 => IpProtocol::Udp,
            43 => IpProtocol::Ipv6Route,
            44 => IpProtocol::Ipv6Frag,
            58 => IpProtocol::Icmpv6,
            59 => IpProtocol::Ipv6NoNxt,
            60 => IpProtocol::Ipv6Opts,
            other => IpProtocol::Unknown(other),
        }
    }
}

impl From<IpProtocol> for u8 {
    fn from(value: IpProtocol) -> Self {
        match value {
            IpProtocol::HopByHop => 0,
            IpProtocol::Icmp => 1,
            IpProtocol::Tcp => 6,
            IpProtocol::Udp => 17,
            IpProtocol::Ipv6Route => 43,
            IpProtocol::Ipv6Frag => 44,
            IpProtocol::Icmpv6 => 58,
            IpProtocol::Ipv6NoNxt => 59,
            IpProtocol::Ipv6Opts => 60,
            IpProtocol::Unknown(other) => other,
        }
    }
}

/// Bounds-checked big-endian reads and writes. A read outside the buffer
/// yields zero and a write outside it is dropped: views call these after
/// `new_checked` has proven the offsets valid, so the fallback only ever
/// triggers on a view built with `new_unchecked`, where not panicking is the
/// point.
pub(crate) mod bytes {
    pub fn u8_at(buf: &[u8], at: usize) -> u8 {
        buf.get(at).copied().unwrap_or(0)
    }

    pub fn u16_at(buf: &[u8], at: usize) -> u16 {
        match buf.get(at..at.saturating_add(2)) {
            Some(&[a, b]) => u16::from_be_bytes([a, b]),
            _ => 0,
        }
    }

    pub fn u32_at(buf: &[u8], at: usize) -> u32 {
        match buf.get(at..at.saturating_add(4)) {
            Some(&[a, b, c, d]) => u32::from_be_bytes([a, b, c, d]),
            _ => 0,
        }
    }

    pub fn array_at<const N: usize>(buf: &[u8], at: usize) -> [u8; N] {
        let mut out = [0u8; N];
        if let Some(src) = buf.get(at..at.saturating_add(N)) {
            out.copy_from_slice(src);
        }
        out
    }

    pub fn set_u8(buf: &mut [u8], at: usize, value: u8) {
        if let Some(b) = buf.get_mut(at) {
            *b = value;
        }
    }

    pub fn set_bytes(buf: &mut [u8], at: usize, value: &[u8]) {
        if let Some(dst) = buf.get_mut(at..at.saturating_add(value.len())) {
            dst.copy_from_slice(value);
        }
    }

    pub fn set_u16(buf: &mut [u8], at: usize, value: u16) {
        set_bytes(buf, at, &value.to_be_bytes());
    }

    pub fn set_u32(buf: &mut [u8], at: usize, value: u32) {
        set_bytes(buf, at, &value.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_helpers_read_zero_and_drop_writes_out_of_bounds() {
        let mut buf = [0x12u8, 0x34, 0x56];
        assert_eq!(bytes::u16_at(&buf, 1), 0x3456);
        assert_eq!(bytes::u16_at(&buf, 2), 0);
        assert_eq!(bytes::u32_at(&buf, 0), 0);
        assert_eq!(bytes::u32_at(&buf, usize::MAX), 0);
        assert_eq!(bytes::array_at::<2>(&buf, 2), [0, 0]);
        bytes::set_u16(&mut buf, 2, 0xffff);
        assert_eq!(buf, [0x12, 0x34, 0x56]);
        bytes::set_u16(&mut buf, 0, 0xabcd);
        assert_eq!(buf, [0xab, 0xcd, 0x56]);
    }

    #[test]
    fn ip_protocol_round_trips_every_byte() {
        for b in 0..=255u8 {
            assert_eq!(u8::from(IpProtocol::from(b)), b);
        }
    }
}
