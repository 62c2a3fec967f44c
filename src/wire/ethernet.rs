//! Ethernet II frames (IEEE 802.3 with an EtherType, RFC 894): destination
//! and source MAC addresses and the EtherType of the payload, 14 bytes, no
//! frame check sequence (a TAP device neither gives nor takes one).
//!
//! Owns the header layout and [`MacAddr`], including the mapping of IP
//! multicast groups to Ethernet groups (RFC 1112 section 6.4, RFC 2464
//! section 7). Must not touch: which frames a host accepts (that is
//! `crate::ethernet`); an 802.1Q tag parses as its EtherType `0x8100`, for
//! the caller to refuse.

use std::fmt;
use std::str::FromStr;

use super::bytes;
use super::{Error, Ipv4Addr, Ipv6Addr, Result};

mod field {
    pub const DST: usize = 0;
    pub const SRC: usize = 6;
    pub const ETHERTYPE: usize = 12;
    pub const PAYLOAD: usize = 14;
}

/// The length of the header: two addresses and the EtherType.
pub const HEADER_LEN: usize = field::PAYLOAD;

/// A 48-bit IEEE 802 MAC address.
///
/// ```
/// use ustack::wire::ethernet::MacAddr;
///
/// let mac: MacAddr = "02:00:5e:10:00:01".parse().unwrap();
/// assert!(mac.is_unicast() && mac.is_local());
/// assert!(MacAddr::BROADCAST.is_multicast());
/// assert_eq!(mac.to_string(), "02:00:5e:10:00:01");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// ff:ff:ff:ff:ff:ff.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    /// 00:00:00:00:00:00, what an ARP request leaves in its target field.
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    /// The group bit (I/G) is set: multicast, broadcast included.
    pub const fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// Neither multicast nor all zeros: an address a host may own.
    pub fn is_unicast(&self) -> bool {
        !self.is_multicast() && *self != MacAddr::ZERO
    }

    /// The locally administered bit (U/L) is set.
    pub const fn is_local(&self) -> bool {
        self.0[0] & 0x02 != 0
    }

    /// The Ethernet group of an IPv6 multicast address: 33:33 and its low
    /// 32 bits (RFC 2464 section 7).
    pub fn from_ipv6_multicast(group: Ipv6Addr) -> MacAddr {
        let o = group.octets();
        MacAddr([0x33, 0x33, o[12], o[13], o[14], o[15]])
    }

    /// The Ethernet group of an IPv4 multicast address: 01:00:5e and its
    /// low 23 bits (RFC 1112 section 6.4).
    pub fn from_ipv4_multicast(group: Ipv4Addr) -> MacAddr {
        let o = group.octets();
        MacAddr([0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]])
    }

    /// The modified EUI-64 interface identifier (RFC 4291 appendix A):
    /// ff:fe in the middle, the U/L bit inverted.
    pub fn eui64(&self) -> [u8; 8] {
        let m = self.0;
        [m[0] ^ 0x02, m[1], m[2], 0xff, 0xfe, m[3], m[4], m[5]]
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for MacAddr {
    type Err = Error;

    /// Six hexadecimal bytes separated by `:` or `-`.
    fn from_str(s: &str) -> Result<MacAddr> {
        let mut out = [0u8; 6];
        let mut parts = s.trim().split([':', '-']);
        for b in &mut out {
            let part = parts.next().ok_or(Error::Malformed)?;
            if part.is_empty() || part.len() > 2 {
                return Err(Error::Malformed);
            }
            *b = u8::from_str_radix(part, 16).map_err(|_| Error::Malformed)?;
        }
        if parts.next().is_some() {
            return Err(Error::Malformed);
        }
        Ok(MacAddr(out))
    }
}

/// The EtherTypes this stack tells apart (IEEE's registry).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum EtherType {
    /// 0x0800.
    Ipv4,
    /// 0x0806 (RFC 826).
    Arp,
    /// 0x86dd.
    Ipv6,
    /// 0x8100: an IEEE 802.1Q VLAN tag follows.
    Vlan,
    /// 0x88a8: an IEEE 802.1ad service tag follows.
    QinQ,
    /// Anything else, as received (values below 0x0600 are 802.3 lengths).
    Unknown(u16),
}

impl From<u16> for EtherType {
    fn from(v: u16) -> EtherType {
        match v {
            0x0800 => EtherType::Ipv4,
            0x0806 => EtherType::Arp,
            0x86dd => EtherType::Ipv6,
            0x8100 => EtherType::Vlan,
            0x88a8 => EtherType::QinQ,
            other => EtherType::Unknown(other),
        }
    }
}

impl From<EtherType> for u16 {
    fn from(v: EtherType) -> u16 {
        match v {
            EtherType::Ipv4 => 0x0800,
            EtherType::Arp => 0x0806,
            EtherType::Ipv6 => 0x86dd,
            EtherType::Vlan => 0x8100,
            EtherType::QinQ => 0x88a8,
            EtherType::Unknown(other) => other,
        }
    }
}

/// A view of an Ethernet II frame.
#[derive(Clone, Copy, Debug)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// A view without any check; accessors on a short buffer read zeros.
    pub const fn new_unchecked(buffer: T) -> Self {
        EthernetFrame { buffer }
    }

    /// A view of a buffer holding at least the header.
    pub fn new_checked(buffer: T) -> Result<Self> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(EthernetFrame { buffer })
    }

    /// The buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The destination address.
    pub fn dst_addr(&self) -> MacAddr {
        MacAddr(bytes::array_at(self.buffer.as_ref(), field::DST))
    }

    /// The source address.
    pub fn src_addr(&self) -> MacAddr {
        MacAddr(bytes::array_at(self.buffer.as_ref(), field::SRC))
    }

    /// The EtherType.
    pub fn ethertype(&self) -> EtherType {
        EtherType::from(bytes::u16_at(self.buffer.as_ref(), field::ETHERTYPE))
    }

    /// What follows the header (with any padding a short frame carries).
    pub fn payload(&self) -> &[u8] {
        self.buffer.as_ref().get(field::PAYLOAD..).unwrap_or(&[])
    }
}

/// An Ethernet II header as plain data.
///
/// ```
/// use ustack::wire::ethernet::{EtherType, EthernetFrame, EthernetRepr, MacAddr};
///
/// let repr = EthernetRepr {
///     dst: MacAddr::BROADCAST,
///     src: MacAddr([2, 0, 0, 0, 0, 1]),
///     ethertype: EtherType::Arp,
/// };
/// let mut buf = [0u8; 14];
/// assert_eq!(repr.emit(&mut buf), Ok(14));
/// assert_eq!(EthernetRepr::parse(&EthernetFrame::new_checked(&buf[..])?), Ok(repr));
/// # Ok::<(), ustack::wire::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct EthernetRepr {
    /// The destination address.
    pub dst: MacAddr,
    /// The source address.
    pub src: MacAddr,
    /// The payload's EtherType.
    pub ethertype: EtherType,
}

impl EthernetRepr {
    /// Reads a checked view.
    pub fn parse<T: AsRef<[u8]>>(frame: &EthernetFrame<T>) -> Result<EthernetRepr> {
        if frame.buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(EthernetRepr {
            dst: frame.dst_addr(),
            src: frame.src_addr(),
            ethertype: frame.ethertype(),
        })
    }

    /// Writes the 14-byte header at the start of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let header = buf.get_mut(..HEADER_LEN).ok_or(Error::Truncated)?;
        bytes::set_bytes(header, field::DST, &self.dst.0);
        bytes::set_bytes(header, field::SRC, &self.src.0);
        bytes::set_u16(header, field::ETHERTYPE, self.ethertype.into());
        Ok(HEADER_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Linux's ARP request for 10.0.0.2 from 02:00:00:00:00:01, as read
    /// from a TAP device (see `arp.rs`).
    const KERNEL_ARP_REQUEST: &str =
        "ffffffffffff020000000001080600010800060400010200000000010a0000010000000000000a000002";

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn parses_and_re_emits_a_captured_header() {
        let bytes = hex(KERNEL_ARP_REQUEST);
        let frame = EthernetFrame::new_checked(&bytes[..]).unwrap();
        let repr = EthernetRepr::parse(&frame).unwrap();
        assert_eq!(repr.dst, MacAddr::BROADCAST);
        assert_eq!(repr.src, MacAddr([2, 0, 0, 0, 0, 1]));
        assert_eq!(repr.ethertype, EtherType::Arp);
        assert_eq!(frame.payload().len(), 28);
        let mut out = [0u8; HEADER_LEN];
        repr.emit(&mut out).unwrap();
        assert_eq!(out[..], bytes[..HEADER_LEN]);
    }

    #[test]
    fn short_buffers_are_truncated_and_never_panic() {
        for len in 0..HEADER_LEN {
            let buf = vec![0xab; len];
            assert_eq!(
                EthernetFrame::new_checked(&buf[..]).err(),
                Some(Error::Truncated)
            );
            let view = EthernetFrame::new_unchecked(&buf[..]);
            let _ = (view.dst_addr(), view.src_addr(), view.ethertype());
            assert!(view.payload().is_empty());
            assert_eq!(EthernetRepr::parse(&view), Err(Error::Truncated));
        }
        let repr = EthernetRepr {
            dst: MacAddr::ZERO,
            src: MacAddr::ZERO,
            ethertype: EtherType::Ipv4,
        };
        assert_eq!(repr.emit(&mut [0u8; 13]), Err(Error::Truncated));
    }

    #[test]
    fn ethertypes_round_trip() {
        for v in [0x0800u16, 0x0806, 0x86dd, 0x8100, 0x88a8, 0x0001, 0xffff] {
            assert_eq!(u16::from(EtherType::from(v)), v);
        }
        assert_eq!(EtherType::from(0x8100), EtherType::Vlan);
    }

    #[test]
    fn multicast_groups_map_as_the_rfcs_say() {
        // The solicited-node group of fd00::2 (from the captured NS).
        let group: Ipv6Addr = "ff02::1:ff00:2".parse().unwrap();
        assert_eq!(
            MacAddr::from_ipv6_multicast(group),
            MacAddr([0x33, 0x33, 0xff, 0, 0, 2])
        );
        // 224.0.0.251 and 239.128.0.251 share a group (23 bits).
        assert_eq!(
            MacAddr::from_ipv4_multicast(Ipv4Addr::new(224, 0, 0, 251)),
            MacAddr([1, 0, 0x5e, 0, 0, 251])
        );
        assert_eq!(
            MacAddr::from_ipv4_multicast(Ipv4Addr::new(239, 128, 0, 251)),
            MacAddr([1, 0, 0x5e, 0, 0, 251])
        );
        assert_eq!(
            MacAddr([0x02, 0, 0, 0, 0, 1]).eui64(),
            [0, 0, 0, 0xff, 0xfe, 0, 0, 1]
        );
    }

    #[test]
    fn mac_addresses_parse_strictly() {
        assert_eq!(
            "02-AB-0:1:2:3".parse::<MacAddr>(),
            Ok(MacAddr([2, 0xab, 0, 1, 2, 3]))
        );
        for bad in [
            "",
            "02:00:00:00:00",
            "02:00:00:00:00:00:00",
            "002:0:0:0:0:0",
            "zz:0:0:0:0:0",
            "::::::",
        ] {
            assert!(bad.parse::<MacAddr>().is_err(), "{bad:?}");
        }
        assert!(!MacAddr::ZERO.is_unicast());
        assert!(!MacAddr([1, 0, 0x5e, 0, 0, 1]).is_unicast());
    }
}
