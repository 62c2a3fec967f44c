//! An address with its prefix length (CIDR notation's `A/LEN`): which
//! destinations share a link with it. Used by the Ethernet host to pick a
//! next hop and by the core to tell a destination with no route.
//!
//! Owns the arithmetic only.

use std::net::{Ipv4Addr, Ipv6Addr};

/// An address with its prefix length: which destinations are on-link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prefix<A> {
    /// The host's own address.
    pub addr: A,
    /// The prefix length (0 to 32 for IPv4, 0 to 128 for IPv6).
    pub len: u8,
}

impl Prefix<Ipv4Addr> {
    fn mask(&self) -> u32 {
        u32::MAX
            .checked_shl(32 - u32::from(self.len.min(32)))
            .unwrap_or(0)
    }

    /// Whether `dst` is inside the prefix.
    pub fn contains(&self, dst: Ipv4Addr) -> bool {
        (u32::from(dst) ^ u32::from(self.addr)) & self.mask() == 0
    }

    /// The directed broadcast address (none for /31 and /32, RFC 3021).
    pub fn broadcast(&self) -> Option<Ipv4Addr> {
        (self.len < 31).then(|| Ipv4Addr::from(u32::from(self.addr) | !self.mask()))
    }
}

impl Prefix<Ipv6Addr> {
    /// Whether `dst` is inside the prefix.
    pub fn contains(&self, dst: Ipv6Addr) -> bool {
        let mask = u128::MAX
            .checked_shl(128 - u32::from(self.len.min(128)))
            .unwrap_or(0);
        (u128::from(dst) ^ u128::from(self.addr)) & mask == 0
    }
}
