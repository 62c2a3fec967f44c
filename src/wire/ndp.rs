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
//! [`Error::Unsupported`] in [`NdpRepr`]; router advertisements have their
//! own [`RouterAdvert`] (with the prefix information, MTU and source
//! link-layer options SLAAC uses), and [`emit_router_solicit`] writes a
//! router solicitation. Redirects are ignored.

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

/// The most prefix information options kept from one router
/// advertisement.
pub const MAX_PREFIXES: usize = 8;

const OPT_PREFIX_INFO: u8 = 3;
const OPT_MTU: u8 = 5;
const RA_OPTIONS: usize = 16;
const RS_OPTIONS: usize = 8;

/// A prefix information option (RFC 4861 section 4.6.2).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PrefixInfo {
    /// The prefix (bits past `len` as sent).
    pub prefix: Ipv6Addr,
    /// Its length in bits.
    pub len: u8,
    /// L: the prefix is on-link.
    pub on_link: bool,
    /// A: addresses may be formed from it (RFC 4862 SLAAC).
    pub autonomous: bool,
    /// Valid lifetime, seconds (`u32::MAX`: infinite).
    pub valid: u32,
    /// Preferred lifetime, seconds.
    pub preferred: u32,
}

/// A router advertisement (ICMPv6 type 134, RFC 4861 section 4.2) with
/// the options SLAAC uses.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RouterAdvert {
    /// Cur Hop Limit (0: unspecified).
    pub hop_limit: u8,
    /// M: addresses are available by DHCPv6.
    pub managed: bool,
    /// O: other configuration is available by DHCPv6.
    pub other: bool,
    /// Router lifetime, seconds (0: not a default router).
    pub router_lifetime: u16,
    /// The router's link-layer address (source link-layer address option).
    pub source_mac: Option<MacAddr>,
    /// The link MTU option.
    pub mtu: Option<u32>,
    /// Prefix information options, up to [`MAX_PREFIXES`], in order.
    pub prefixes: Vec<PrefixInfo>,
}

impl RouterAdvert {
    /// Parses an ICMPv6 message that `src` sent to `dst`, verifying its
    /// checksum and RFC 4861 section 6.1.2's checks on the message (a
    /// link-local source, code 0, at least 16 bytes, options of non-zero
    /// length); the caller checks the hop limit of 255.
    pub fn parse(message: &[u8], src: Ipv6Addr, dst: Ipv6Addr) -> Result<RouterAdvert> {
        if message.len() < RA_OPTIONS {
            return Err(Error::Truncated);
        }
        if bytes::u8_at(message, field::TYPE) != msg_type::ROUTER_ADVERT {
            return Err(Error::Unsupported);
        }
        let len = u32::try_from(message.len()).map_err(|_| Error::Malformed)?;
        let sum = checksum::combine(&[
            checksum::pseudo_header_v6(src, dst, IpProtocol::Icmpv6, len),
            checksum::data(message),
        ]);
        if sum != 0xffff {
            return Err(Error::Checksum);
        }
        if bytes::u8_at(message, field::CODE) != 0 || src.segments()[0] & 0xffc0 != 0xfe80 {
            return Err(Error::Malformed);
        }
        let flags = bytes::u8_at(message, 5);
        let mut ra = RouterAdvert {
            hop_limit: bytes::u8_at(message, 4),
            managed: flags & 0x80 != 0,
            other: flags & 0x40 != 0,
            router_lifetime: bytes::u16_at(message, 6),
            source_mac: None,
            mtu: None,
            prefixes: Vec::new(),
        };
        let mut options = &message[RA_OPTIONS..];
        while !options.is_empty() {
            let (kind, units) = match options {
                [kind, units, ..] => (*kind, usize::from(*units)),
                _ => return Err(Error::Malformed),
            };
            let Some(option) = options.get(..units * 8).filter(|_| units > 0) else {
                return Err(Error::Malformed);
            };
            match (kind, units) {
                (OPT_SOURCE_LLA, 1) => ra.source_mac = Some(MacAddr(bytes::array_at(option, 2))),
                (OPT_MTU, 1) => ra.mtu = Some(bytes::u32_at(option, 4)),
                (OPT_PREFIX_INFO, 4) if ra.prefixes.len() < MAX_PREFIXES => {
                    let flags = bytes::u8_at(option, 3);
                    ra.prefixes.push(PrefixInfo {
                        len: bytes::u8_at(option, 2).min(128),
                        on_link: flags & 0x80 != 0,
                        autonomous: flags & 0x40 != 0,
                        valid: bytes::u32_at(option, 4),
                        preferred: bytes::u32_at(option, 8),
                        prefix: Ipv6Addr::from(bytes::array_at::<16>(option, 16)),
                    });
                }
                (OPT_PREFIX_INFO, _) if ra.prefixes.len() < MAX_PREFIXES => {
                    return Err(Error::Malformed);
                }
                _ => {}
            }
            options = &options[option.len()..];
        }
        Ok(ra)
    }

    /// The length of the message `emit` writes.
    pub fn buffer_len(&self) -> usize {
        RA_OPTIONS
            + if self.source_mac.is_some() { 8 } else { 0 }
            + if self.mtu.is_some() { 8 } else { 0 }
            + 32 * self.prefixes.len().min(MAX_PREFIXES)
    }

    /// Writes the message from `src` to `dst`, checksum included (for
    /// tests that play the router).
    pub fn emit(&self, buf: &mut [u8], src: Ipv6Addr, dst: Ipv6Addr) -> Result<usize> {
        let len = self.buffer_len();
        let b = buf.get_mut(..len).ok_or(Error::Truncated)?;
        b.fill(0);
        bytes::set_u8(b, field::TYPE, msg_type::ROUTER_ADVERT);
        bytes::set_u8(b, 4, self.hop_limit);
        let flags = if self.managed { 0x80 } else { 0 } | if self.other { 0x40 } else { 0 };
        bytes::set_u8(b, 5, flags);
        bytes::set_u16(b, 6, self.router_lifetime);
        let mut at = RA_OPTIONS;
        if let Some(mac) = self.source_mac {
            bytes::set_u8(b, at, OPT_SOURCE_LLA);
            bytes::set_u8(b, at + 1, 1);
            bytes::set_bytes(b, at + 2, &mac.0);
            at += 8;
        }
        if let Some(mtu) = self.mtu {
            bytes::set_u8(b, at, OPT_MTU);
            bytes::set_u8(b, at + 1, 1);
            bytes::set_u32(b, at + 4, mtu);
            at += 8;
        }
        for p in self.prefixes.iter().take(MAX_PREFIXES) {
            bytes::set_u8(b, at, OPT_PREFIX_INFO);
            bytes::set_u8(b, at + 1, 4);
            bytes::set_u8(b, at + 2, p.len);
            let flags = if p.on_link { 0x80 } else { 0 } | if p.autonomous { 0x40 } else { 0 };
            bytes::set_u8(b, at + 3, flags);
            bytes::set_u32(b, at + 4, p.valid);
            bytes::set_u32(b, at + 8, p.preferred);
            bytes::set_bytes(b, at + 16, &p.prefix.octets());
            at += 32;
        }
        let sum = checksum::combine(&[
            checksum::pseudo_header_v6(src, dst, IpProtocol::Icmpv6, len as u32),
            checksum::data(b),
        ]);
        bytes::set_u16(b, field::CHECKSUM, !sum);
        Ok(len)
    }
}

/// The length of a router solicitation from `src` ([`emit_router_solicit`]).
pub fn router_solicit_len(src: Ipv6Addr) -> usize {
    RS_OPTIONS + if src.is_unspecified() { 0 } else { 8 }
}

/// Writes a router solicitation (ICMPv6 type 133, RFC 4861 section 4.1)
/// from `src` to `dst`: with the source link-layer address `mac` unless
/// `src` is unspecified (section 4.1 forbids it then).
pub fn emit_router_solicit(
    buf: &mut [u8],
    mac: MacAddr,
    src: Ipv6Addr,
    dst: Ipv6Addr,
) -> Result<usize> {
    let len = router_solicit_len(src);
    let b = buf.get_mut(..len).ok_or(Error::Truncated)?;
    b.fill(0);
    bytes::set_u8(b, field::TYPE, msg_type::ROUTER_SOLICIT);
    if !src.is_unspecified() {
        bytes::set_u8(b, RS_OPTIONS, OPT_SOURCE_LLA);
        bytes::set_u8(b, RS_OPTIONS + 1, 1);
        bytes::set_bytes(b, RS_OPTIONS + 2, &mac.0);
    }
    let sum = checksum::combine(&[
        checksum::pseudo_header_v6(src, dst, IpProtocol::Icmpv6, len as u32),
        checksum::data(b),
    ]);
    bytes::set_u16(b, field::CHECKSUM, !sum);
    Ok(len)
}

#[cfg(test)]
mod ra_tests {
    use super::*;

    fn router() -> Ipv6Addr {
        "fe80::1".parse().unwrap()
    }

    fn all_nodes() -> Ipv6Addr {
        "ff02::1".parse().unwrap()
    }

    fn sample() -> RouterAdvert {
        RouterAdvert {
            hop_limit: 64,
            managed: false,
            other: true,
            router_lifetime: 1800,
            source_mac: Some(MacAddr([2, 0, 0, 0, 0, 1])),
            mtu: Some(1500),
            prefixes: vec![PrefixInfo {
                prefix: "fd77::".parse().unwrap(),
                len: 64,
                on_link: true,
                autonomous: true,
                valid: 7200,
                preferred: 3600,
            }],
        }
    }

    #[test]
    fn a_router_advert_round_trips_with_its_prefix() {
        let ra = sample();
        let mut buf = vec![0u8; ra.buffer_len()];
        ra.emit(&mut buf, router(), all_nodes()).unwrap();
        assert_eq!(
            RouterAdvert::parse(&buf, router(), all_nodes()).unwrap(),
            ra
        );
    }

    #[test]
    fn a_router_advert_as_dnsmasq_sends_it_parses() {
        // Hand-built in dnsmasq's layout: hop limit 64, O flag clear,
        // lifetime 1800 s, a /64 prefix fd77:: with L and A, valid 7200 s
        // and preferred 3600 s, then MTU and source link-layer options.
        let mut m = vec![134, 0, 0, 0, 64, 0, 0x07, 0x08, 0, 0, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(&[
            3, 4, 64, 0xc0, 0, 0, 0x1c, 0x20, 0, 0, 0x0e, 0x10, 0, 0, 0, 0,
        ]);
        m.extend_from_slice(&[0xfd, 0x77, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        m.extend_from_slice(&[5, 1, 0, 0, 0, 0, 0x05, 0xdc]);
        m.extend_from_slice(&[1, 1, 2, 0, 0, 0, 0, 1]);
        let sum = checksum::combine(&[
            checksum::pseudo_header_v6(router(), all_nodes(), IpProtocol::Icmpv6, m.len() as u32),
            checksum::data(&m),
        ]);
        m[2..4].copy_from_slice(&(!sum).to_be_bytes());
        let mut want = sample();
        want.other = false;
        assert_eq!(
            RouterAdvert::parse(&m, router(), all_nodes()).unwrap(),
            want
        );
    }

    #[test]
    fn bad_router_adverts_are_errors_not_panics() {
        let ra = sample();
        let mut good = vec![0u8; ra.buffer_len()];
        ra.emit(&mut good, router(), all_nodes()).unwrap();
        for n in 0..good.len() {
            let _ = RouterAdvert::parse(&good[..n], router(), all_nodes());
        }
        // A global source (not a router on this link).
        let global: Ipv6Addr = "fd77::1".parse().unwrap();
        let mut b = vec![0u8; ra.buffer_len()];
        ra.emit(&mut b, global, all_nodes()).unwrap();
        assert_eq!(
            RouterAdvert::parse(&b, global, all_nodes()),
            Err(Error::Malformed)
        );
        // A broken checksum.
        let mut b = good.clone();
        b[20] ^= 1;
        assert_eq!(
            RouterAdvert::parse(&b, router(), all_nodes()),
            Err(Error::Checksum)
        );
        // A zero-length option (fix the checksum after the change).
        let mut b = good.clone();
        b[RA_OPTIONS + 1] = 0;
        b[2] = 0;
        b[3] = 0;
        let sum = checksum::combine(&[
            checksum::pseudo_header_v6(router(), all_nodes(), IpProtocol::Icmpv6, b.len() as u32),
            checksum::data(&b),
        ]);
        b[2..4].copy_from_slice(&(!sum).to_be_bytes());
        assert_eq!(
            RouterAdvert::parse(&b, router(), all_nodes()),
            Err(Error::Malformed)
        );
        // A neighbour solicitation is not an advertisement.
        assert_eq!(
            RouterAdvert::parse(&[135; 24], router(), all_nodes()),
            Err(Error::Unsupported)
        );
    }

    #[test]
    fn a_router_solicitation_carries_our_mac_unless_from_unspecified() {
        let mac = MacAddr([2, 0, 0, 0, 0, 9]);
        let ll: Ipv6Addr = "fe80::9".parse().unwrap();
        let routers: Ipv6Addr = "ff02::2".parse().unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(emit_router_solicit(&mut buf, mac, ll, routers), Ok(16));
        assert_eq!(&buf[8..16], &[1, 1, 2, 0, 0, 0, 0, 9]);
        let sum = checksum::combine(&[
            checksum::pseudo_header_v6(ll, routers, IpProtocol::Icmpv6, 16),
            checksum::data(&buf),
        ]);
        assert_eq!(sum, 0xffff);
        assert_eq!(
            emit_router_solicit(&mut buf, mac, Ipv6Addr::UNSPECIFIED, routers),
            Ok(8)
        );
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
