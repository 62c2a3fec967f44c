//! ARP (RFC 826) for IPv4 over Ethernet: the 28-byte packet with hardware
//! type 1, protocol type 0x0800 and address lengths 6 and 4.
//!
//! Owns the packet layout. Must not touch: what to answer or remember
//! (that is `crate::ethernet`). Any other hardware or protocol pairing
//! parses as [`Error::Unsupported`].

use super::bytes;
use super::ethernet::MacAddr;
use super::{Error, Ipv4Addr, Result};

mod field {
    pub const HTYPE: usize = 0;
    pub const PTYPE: usize = 2;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: usize = 6;
    pub const SHA: usize = 8;
    pub const SPA: usize = 14;
    pub const THA: usize = 18;
    pub const TPA: usize = 24;
}

/// The length of an Ethernet/IPv4 ARP packet.
pub const PACKET_LEN: usize = 28;

const HTYPE_ETHERNET: u16 = 1;
const PTYPE_IPV4: u16 = 0x0800;

/// The ARP operation.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ArpOperation {
    /// 1: who has the target address?
    Request,
    /// 2: the sender has it.
    Reply,
    /// Anything else (RARP's 3 and 4, say), as received.
    Unknown(u16),
}

impl From<u16> for ArpOperation {
    fn from(v: u16) -> ArpOperation {
        match v {
            1 => ArpOperation::Request,
            2 => ArpOperation::Reply,
            other => ArpOperation::Unknown(other),
        }
    }
}

impl From<ArpOperation> for u16 {
    fn from(v: ArpOperation) -> u16 {
        match v {
            ArpOperation::Request => 1,
            ArpOperation::Reply => 2,
            ArpOperation::Unknown(other) => other,
        }
    }
}

/// A view of an ARP packet (the Ethernet payload).
#[derive(Clone, Copy, Debug)]
pub struct ArpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    /// A view without checks; accessors on a short buffer read zeros.
    pub const fn new_unchecked(buffer: T) -> Self {
        ArpPacket { buffer }
    }

    /// A view of at least [`PACKET_LEN`] bytes (the Ethernet padding of a
    /// minimum-size frame may follow, and is ignored).
    pub fn new_checked(buffer: T) -> Result<Self> {
        if buffer.as_ref().len() < PACKET_LEN {
            return Err(Error::Truncated);
        }
        Ok(ArpPacket { buffer })
    }

    fn buf(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// Hardware type (1 for Ethernet).
    pub fn hardware_type(&self) -> u16 {
        bytes::u16_at(self.buf(), field::HTYPE)
    }

    /// Protocol type (0x0800 for IPv4).
    pub fn protocol_type(&self) -> u16 {
        bytes::u16_at(self.buf(), field::PTYPE)
    }

    /// Hardware address length.
    pub fn hardware_len(&self) -> u8 {
        bytes::u8_at(self.buf(), field::HLEN)
    }

    /// Protocol address length.
    pub fn protocol_len(&self) -> u8 {
        bytes::u8_at(self.buf(), field::PLEN)
    }

    /// The operation.
    pub fn operation(&self) -> ArpOperation {
        ArpOperation::from(bytes::u16_at(self.buf(), field::OPER))
    }

    /// Sender hardware address.
    pub fn source_mac(&self) -> MacAddr {
        MacAddr(bytes::array_at(self.buf(), field::SHA))
    }

    /// Sender protocol address.
    pub fn source_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(bytes::array_at::<4>(self.buf(), field::SPA))
    }

    /// Target hardware address.
    pub fn target_mac(&self) -> MacAddr {
        MacAddr(bytes::array_at(self.buf(), field::THA))
    }

    /// Target protocol address.
    pub fn target_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(bytes::array_at::<4>(self.buf(), field::TPA))
    }
}

/// An Ethernet/IPv4 ARP packet as plain data.
///
/// ```
/// use std::net::Ipv4Addr;
/// use ustack::wire::arp::{ArpOperation, ArpPacket, ArpRepr};
/// use ustack::wire::ethernet::MacAddr;
///
/// let request = ArpRepr {
///     operation: ArpOperation::Request,
///     source_mac: MacAddr([2, 0, 0, 0, 0, 1]),
///     source_ip: Ipv4Addr::new(10, 0, 0, 1),
///     target_mac: MacAddr::ZERO,
///     target_ip: Ipv4Addr::new(10, 0, 0, 2),
/// };
/// let mut buf = [0u8; 28];
/// request.emit(&mut buf)?;
/// assert_eq!(ArpRepr::parse(&ArpPacket::new_checked(&buf[..])?)?, request);
/// # Ok::<(), ustack::wire::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ArpRepr {
    /// Request or reply.
    pub operation: ArpOperation,
    /// Who sends.
    pub source_mac: MacAddr,
    /// The sender's IPv4 address.
    pub source_ip: Ipv4Addr,
    /// Who is asked (zeros in a request).
    pub target_mac: MacAddr,
    /// The address asked about.
    pub target_ip: Ipv4Addr,
}

impl ArpRepr {
    /// Reads a checked view: Ethernet and IPv4 only.
    pub fn parse<T: AsRef<[u8]>>(packet: &ArpPacket<T>) -> Result<ArpRepr> {
        if packet.buf().len() < PACKET_LEN {
            return Err(Error::Truncated);
        }
        if packet.hardware_type() != HTYPE_ETHERNET
            || packet.protocol_type() != PTYPE_IPV4
            || packet.hardware_len() != 6
            || packet.protocol_len() != 4
        {
            return Err(Error::Unsupported);
        }
        Ok(ArpRepr {
            operation: packet.operation(),
            source_mac: packet.source_mac(),
            source_ip: packet.source_ip(),
            target_mac: packet.target_mac(),
            target_ip: packet.target_ip(),
        })
    }

    /// Writes the 28-byte packet at the start of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let b = buf.get_mut(..PACKET_LEN).ok_or(Error::Truncated)?;
        bytes::set_u16(b, field::HTYPE, HTYPE_ETHERNET);
        bytes::set_u16(b, field::PTYPE, PTYPE_IPV4);
        bytes::set_u8(b, field::HLEN, 6);
        bytes::set_u8(b, field::PLEN, 4);
        bytes::set_u16(b, field::OPER, self.operation.into());
        bytes::set_bytes(b, field::SHA, &self.source_mac.0);
        bytes::set_bytes(b, field::SPA, &self.source_ip.octets());
        bytes::set_bytes(b, field::THA, &self.target_mac.0);
        bytes::set_bytes(b, field::TPA, &self.target_ip.octets());
        Ok(PACKET_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ethernet::HEADER_LEN;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Frames read from a Linux TAP device (02:00:00:00:00:01, 10.0.0.1/24):
    /// the kernel's request for 10.0.0.2, and its reply to 02:..:02's
    /// request for 10.0.0.1.
    const KERNEL_REQUEST: &str =
        "ffffffffffff020000000001080600010800060400010200000000010a0000010000000000000a000002";
    const KERNEL_REPLY: &str =
        "020000000002020000000001080600010800060400020200000000010a0000010200000000020a000002";

    const KERNEL_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
    const OTHER_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);

    #[test]
    fn parses_and_re_emits_the_kernels_request_and_reply() {
        for (bytes, want) in [
            (
                KERNEL_REQUEST,
                ArpRepr {
                    operation: ArpOperation::Request,
                    source_mac: KERNEL_MAC,
                    source_ip: Ipv4Addr::new(10, 0, 0, 1),
                    target_mac: MacAddr::ZERO,
                    target_ip: Ipv4Addr::new(10, 0, 0, 2),
                },
            ),
            (
                KERNEL_REPLY,
                ArpRepr {
                    operation: ArpOperation::Reply,
                    source_mac: KERNEL_MAC,
                    source_ip: Ipv4Addr::new(10, 0, 0, 1),
                    target_mac: OTHER_MAC,
                    target_ip: Ipv4Addr::new(10, 0, 0, 2),
                },
            ),
        ] {
            let frame = hex(bytes);
            let packet = ArpPacket::new_checked(&frame[HEADER_LEN..]).unwrap();
            let repr = ArpRepr::parse(&packet).unwrap();
            assert_eq!(repr, want);
            let mut out = [0u8; PACKET_LEN];
            assert_eq!(repr.emit(&mut out), Ok(PACKET_LEN));
            assert_eq!(out[..], frame[HEADER_LEN..]);
        }
    }

    #[test]
    fn padding_is_ignored_and_other_pairings_are_unsupported() {
        let mut frame = hex(KERNEL_REQUEST);
        frame.extend_from_slice(&[0; 18]); // padded to the 60-byte minimum
        assert!(ArpRepr::parse(&ArpPacket::new_checked(&frame[HEADER_LEN..]).unwrap()).is_ok());
        for (at, value) in [(0usize, 6u8), (2, 0x86), (4, 8), (5, 16)] {
            let mut p = frame[HEADER_LEN..].to_vec();
            p[at] = value;
            assert_eq!(
                ArpRepr::parse(&ArpPacket::new_checked(&p[..]).unwrap()),
                Err(Error::Unsupported)
            );
        }
    }

    #[test]
    fn short_packets_are_truncated_and_never_panic() {
        let frame = hex(KERNEL_REQUEST);
        for len in 0..PACKET_LEN {
            let p = &frame[HEADER_LEN..HEADER_LEN + len];
            assert_eq!(ArpPacket::new_checked(p).err(), Some(Error::Truncated));
            let view = ArpPacket::new_unchecked(p);
            let _ = (view.source_ip(), view.target_mac(), view.operation());
            assert!(ArpRepr::parse(&view).is_err());
        }
        let repr = ArpRepr::parse(&ArpPacket::new_checked(&frame[HEADER_LEN..]).unwrap()).unwrap();
        assert_eq!(repr.emit(&mut [0u8; 27]), Err(Error::Truncated));
    }
}
