//! Neighbour Discovery for IPv6 (RFC 4861): neighbour solicitations and
//! advertisements with their link-layer address options, carried in
//! ICMPv6 (types 135 and 136), and the solicited-node group (RFC 4291
//! section 2.7.1).
//!
//! Owns the message layout, its checksum and the validity checks RFC 4861
//! sections 7.1.1 and 7.1.2 put on the message itself (code 0, length,
//! no multicast target, options of non-zero length, the rules for an
//! unspecified source or a multicast destination). The IP hop limit of 255
//! is checked by the caller, which sees the IP header. Must not touch:
//! what to answer or remember (that is `crate::ethernet`). Router
//! solicitations and advertisements and redirects (133, 134, 137) parse as
//! [`Error::Unsupported`]: this slice has no SLAAC and ignores redirects.

use super::bytes;
use super::checksum;
use super::ethernet::MacAddr;
use super::{Error, IpProtocol, Ipv6Addr, Result};

mod field {
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: usize = 2;
    /// Neighbour advertisement: R, S and O in the top bits.
    pub const FLAGS: usize = 4;
    pub const TARGET: usize = 8;
    pub const OPTIONS: usize = 24;
}

/// ICMPv6 types of neighbour discovery (RFC 4861 section 4).
pub mod msg_type {
    /// Router solicitation.
    pub const ROUTER_SOLICIT: u8 = 133;
    /// Router advertisement.
    pub const ROUTER_ADVERT: u8 = 134;
    /// Neighbour solicitation.
    pub const NEIGHBOR_SOLICIT: u8 = 135;
    /// Neighbour advertisement.
    pub const NEIGHBOR_ADVERT: u8 = 136;
    /// Redirect.
    pub const REDIRECT: u8 = 137;
}

const OPT_SOURCE_LLA: u8 = 1;
const OPT_TARGET_LLA: u8 = 2;

const FLAG_ROUTER: u8 = 0x80;
const FLAG_SOLICITED: u8 = 0x40;
const FLAG_OVERRIDE: u8 = 0x20;

/// The hop limit every neighbour discovery message is sent with, and the
/// only one a receiver accepts (RFC 4861 section 7.1): proof that it was
/// not forwarded.
pub const HOP_LIMIT: u8 = 255;

/// The solicited-node multicast group of `addr`: ff02::1:ff and its low
/// 24 bits (RFC 4291 section 2.7.1).
///
/// ```
/// use ustack::wire::ndp::solicited_node;
///
/// let a: std::net::Ipv6Addr = "fd77::1:2:3".parse().unwrap();
/// assert_eq!(solicited_node(a).to_string(), "ff02::1:ff02:3");
/// ```
pub fn solicited_node(addr: Ipv6Addr) -> Ipv6Addr {
    let o = addr.octets();
    Ipv6Addr::from([
        0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, o[13], o[14], o[15],
    ])
}

/// A neighbour advertisement's flags (RFC 4861 section 4.4).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct AdvertFlags {
    /// R: the sender is a router.
    pub router: bool,
    /// S: sent in response to a solicitation.
    pub solicited: bool,
    /// O: the advertised address should override a cached one.
    pub override_: bool,
}

/// A neighbour discovery message this host handles, as plain data.
///
/// ```
/// use std::net::Ipv6Addr;
/// use ustack::wire::ethernet::MacAddr;
/// use ustack::wire::ndp::{NdpRepr, solicited_node};
///
/// let src: Ipv6Addr = "fd00::2".parse().unwrap();
/// let target: Ipv6Addr = "fd00::1".parse().unwrap();
/// let ns = NdpRepr::NeighborSolicit { target, source_mac: Some(MacAddr([2, 0, 0, 0, 0, 2])) };
/// let mut buf = vec![0u8; ns.buffer_len()];
/// ns.emit(&mut buf, src, solicited_node(target))?;
/// assert_eq!(NdpRepr::parse_bytes(&buf, src, solicited_node(target))?, ns);
/// # Ok::<(), ustack::wire::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum NdpRepr {
    /// Type 135: who has `target`? With the asker's link-layer address
    /// unless it is doing duplicate address detection.
    NeighborSolicit {
        /// The address being resolved.
        target: Ipv6Addr,
        /// The source link-layer address option.
        source_mac: Option<MacAddr>,
    },
    /// Type 136: `target` is at `target_mac`.
    NeighborAdvert {
        /// R, S, O.
        flags: AdvertFlags,
        /// The address advertised.
        target: Ipv6Addr,
        /// The target link-layer address option.
        target_mac: Option<MacAddr>,
    },
}

impl NdpRepr {
    /// Parses an ICMPv6 message (`message`, from its type byte on) that
    /// `src` sent to `dst`, verifying its checksum.
    pub fn parse_bytes(message: &[u8], src: Ipv6Addr, dst: Ipv6Addr) -> Result<NdpRepr> {
        let msg_type = bytes::u8_at(message, field::TYPE);
        if message.len() < 4 {
            return Err(Error::Truncated);
        }
        if !matches!(
            msg_type,
            msg_type::NEIGHBOR_SOLICIT | msg_type::NEIGHBOR_ADVERT
        ) {
            return Err(Error::Unsupported);
        }
        if message.len() < field::OPTIONS {
            return Err(Error::Truncated);
        }
        let len = u32::try_from(message.len()).map_err(|_| Error::Malformed)?;
        let sum = checksum::combine(&[
            checksum::pseudo_header_v6(src, dst, IpProtocol::Icmpv6, len),
            checksum::data(message),
        ]);
        if sum != 0xffff {
            return Err(Error::Checksum);
        }
        if bytes::u8_at(message, field::CODE) != 0 {
            return Err(Error::Malformed);
        }
        let target = Ipv6Addr::from(bytes::array_at::<16>(message, field::TARGET));
        if target.is_multicast() {
            return Err(Error::Malformed);
        }
        let mut source_mac = None;
        let mut target_mac = None;
        let mut options = &message[field::OPTIONS..];
        while !options.is_empty() {
            let (kind, units) = match options {
                [kind, units, ..] => (*kind, usize::from(*units)),
                _ => return Err(Error::Malformed),
            };
            // RFC 4861 section 4.6: a zero length invalidates the message.
            let Some(option) = options.get(..units * 8).filter(|_| units > 0) else {
                return Err(Error::Malformed);
            };
            // On Ethernet a link-layer address option is one unit; other
            // lengths belong to other links and are skipped.
            if units == 1 {
                let mac = MacAddr(bytes::array_at(option, 2));
                match kind {
                    OPT_SOURCE_LLA => source_mac = Some(mac),
                    OPT_TARGET_LLA => target_mac = Some(mac),
                    _ => {}
                }
            }
            options = &options[option.len()..];
        }
        if msg_type == msg_type::NEIGHBOR_SOLICIT {
            // Section 7.1.1: duplicate address detection comes from the
            // unspecified address, to the solicited-node group, without a
            // source link-layer address.
            if src.is_unspecified() && (dst != solicited_node(target) || source_mac.is_some()) {
                return Err(Error::Malformed);
            }
            return Ok(NdpRepr::NeighborSolicit { target, source_mac });
        }
        let raw = bytes::u8_at(message, field::FLAGS);
        let flags = AdvertFlags {
            router: raw & FLAG_ROUTER != 0,
            solicited: raw & FLAG_SOLICITED != 0,
            override_: raw & FLAG_OVERRIDE != 0,
        };
        // Section 7.1.2: a solicited advertisement is never multicast.
        if dst.is_multicast() && flags.solicited {
            return Err(Error::Malformed);
        }
        Ok(NdpRepr::NeighborAdvert {
            flags,
            target,
            target_mac,
        })
    }

    /// The length of the ICMPv6 message `emit` writes.
    pub fn buffer_len(&self) -> usize {
        let mac = match self {
            NdpRepr::NeighborSolicit { source_mac, .. } => source_mac.is_some(),
            NdpRepr::NeighborAdvert { target_mac, .. } => target_mac.is_some(),
        };
        field::OPTIONS + if mac { 8 } else { 0 }
    }

    /// Writes the ICMPv6 message from `src` to `dst`, checksum included,
    /// at the start of `buf`.
    pub fn emit(&self, buf: &mut [u8], src: Ipv6Addr, dst: Ipv6Addr) -> Result<usize> {
        let len = self.buffer_len();
        let b = buf.get_mut(..len).ok_or(Error::Truncated)?;
        b.fill(0);
        let (msg_type, target, option) = match *self {
            NdpRepr::NeighborSolicit { target, source_mac } => (
                msg_type::NEIGHBOR_SOLICIT,
                target,
                source_mac.map(|m| (OPT_SOURCE_LLA, m)),
            ),
            NdpRepr::NeighborAdvert {
                flags,
                target,
                target_mac,
            } => {
                let mut raw = 0;
                if flags.router {
                    raw |= FLAG_ROUTER;
                }
                if flags.solicited {
                    raw |= FLAG_SOLICITED;
                }
                if flags.override_ {
                    raw |= FLAG_OVERRIDE;
                }
                bytes::set_u8(b, field::FLAGS, raw);
                (
                    msg_type::NEIGHBOR_ADVERT,
                    target,
                    target_mac.map(|m| (OPT_TARGET_LLA, m)),
                )
            }
        };
        bytes::set_u8(b, field::TYPE, msg_type);
        bytes::set_bytes(b, field::TARGET, &target.octets());
        if let Some((kind, mac)) = option {
            bytes::set_u8(b, field::OPTIONS, kind);
            bytes::set_u8(b, field::OPTIONS + 1, 1);
            bytes::set_bytes(b, field::OPTIONS + 2, &mac.0);
        }
        let sum = checksum::combine(&[
            checksum::pseudo_header_v6(src, dst, IpProtocol::Icmpv6, len as u32),
            checksum::data(b),
        ]);
        bytes::set_u16(b, field::CHECKSUM, !sum);
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Frames read from a Linux TAP device (02:00:00:00:00:01,
    /// fd00::1/64): the kernel's solicitation for fd00::2, and its
    /// advertisement answering 02:..:02's solicitation for fd00::1.
    const KERNEL_NS: &str = "3333ff00000202000000000186dd6000000000203afffd000000000000000000000000000001ff0200000000000000000001ff00000287007d9700000000fd0000000000000000000000000000020101020000000001";
    const KERNEL_NA: &str = "02000000000202000000000186dd6000000000203afffd000000000000000000000000000001fd00000000000000000000000000000288001c9c60000000fd0000000000000000000000000000010201020000000001";

    /// The ICMPv6 message of a captured frame, with its IPv6 addresses.
    fn message(frame: &[u8]) -> (&[u8], Ipv6Addr, Ipv6Addr) {
        let ip = &frame[14..];
        let src = Ipv6Addr::from(<[u8; 16]>::try_from(&ip[8..24]).unwrap());
        let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&ip[24..40]).unwrap());
        assert_eq!(ip[7], HOP_LIMIT);
        (&ip[40..], src, dst)
    }

    const KERNEL_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);

    #[test]
    fn parses_and_re_emits_the_kernels_solicitation_and_advertisement() {
        let ns = hex(KERNEL_NS);
        let na = hex(KERNEL_NA);
        for (frame, want) in [
            (
                &ns,
                NdpRepr::NeighborSolicit {
                    target: "fd00::2".parse().unwrap(),
                    source_mac: Some(KERNEL_MAC),
                },
            ),
            (
                &na,
                NdpRepr::NeighborAdvert {
                    flags: AdvertFlags {
                        router: false,
                        solicited: true,
                        override_: true,
                    },
                    target: "fd00::1".parse().unwrap(),
                    target_mac: Some(KERNEL_MAC),
                },
            ),
        ] {
            let (msg, src, dst) = message(frame);
            let repr = NdpRepr::parse_bytes(msg, src, dst).unwrap();
            assert_eq!(repr, want);
            let mut out = vec![0u8; repr.buffer_len()];
            assert_eq!(repr.emit(&mut out, src, dst), Ok(msg.len()));
            assert_eq!(out, msg);
        }
        // The solicitation went to the target's solicited-node group.
        let (_, _, dst) = message(&ns);
        assert_eq!(dst, solicited_node("fd00::2".parse().unwrap()));
    }

    #[test]
    fn rejects_what_rfc_4861_says_to_discard() {
        let ns = hex(KERNEL_NS);
        let (msg, src, dst) = message(&ns);
        let mut bad = msg.to_vec();
        bad[10] ^= 1; // the target, checksum not fixed
        assert_eq!(NdpRepr::parse_bytes(&bad, src, dst), Err(Error::Checksum));
        let reemit = |edit: &dyn Fn(&mut Vec<u8>)| {
            let mut m = msg.to_vec();
            edit(&mut m);
            m[2] = 0;
            m[3] = 0;
            let sum = checksum::combine(&[
                checksum::pseudo_header_v6(src, dst, IpProtocol::Icmpv6, m.len() as u32),
                checksum::data(&m),
            ]);
            m[2..4].copy_from_slice(&(!sum).to_be_bytes());
            NdpRepr::parse_bytes(&m, src, dst)
        };
        assert_eq!(reemit(&|m| m[1] = 1), Err(Error::Malformed), "code");
        assert_eq!(
            reemit(&|m| m[25] = 0),
            Err(Error::Malformed),
            "zero-length option"
        );
        assert_eq!(
            reemit(&|m| m[8] = 0xff),
            Err(Error::Malformed),
            "multicast target"
        );
        assert_eq!(
            reemit(&|m| m[25] = 2),
            Err(Error::Malformed),
            "option past the end"
        );
        assert_eq!(
            reemit(&|m| m.push(1)),
            Err(Error::Malformed),
            "a trailing byte"
        );
        assert_eq!(
            reemit(&|m| m[0] = 134),
            Err(Error::Unsupported),
            "router advert"
        );
        // Duplicate address detection carries no source address option.
        let dad = NdpRepr::NeighborSolicit {
            target: "fd00::2".parse().unwrap(),
            source_mac: Some(KERNEL_MAC),
        };
        let mut m = vec![0u8; dad.buffer_len()];
        dad.emit(&mut m, Ipv6Addr::UNSPECIFIED, dst).unwrap();
        assert_eq!(
            NdpRepr::parse_bytes(&m, Ipv6Addr::UNSPECIFIED, dst),
            Err(Error::Malformed)
        );
        // A solicited advertisement to a group is invalid.
        let na = NdpRepr::NeighborAdvert {
            flags: AdvertFlags {
                solicited: true,
                ..AdvertFlags::default()
            },
            target: "fd00::2".parse().unwrap(),
            target_mac: None,
        };
        let all_nodes: Ipv6Addr = "ff02::1".parse().unwrap();
        let mut m = vec![0u8; na.buffer_len()];
        na.emit(&mut m, src, all_nodes).unwrap();
        assert_eq!(
            NdpRepr::parse_bytes(&m, src, all_nodes),
            Err(Error::Malformed)
        );
    }

    #[test]
    fn short_messages_never_panic() {
        let ns = hex(KERNEL_NS);
        let (msg, src, dst) = message(&ns);
        for len in 0..msg.len() {
            assert!(NdpRepr::parse_bytes(&msg[..len], src, dst).is_err());
        }
        let repr = NdpRepr::parse_bytes(msg, src, dst).unwrap();
        assert_eq!(repr.emit(&mut [0u8; 31], src, dst), Err(Error::Truncated));
    }
}
