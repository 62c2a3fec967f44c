//! What TCP and UDP sockets share: the socket table, a slab of sockets
//! addressed by generation-checked handles (so a handle kept after its
//! socket closed can never reach a new socket that reused the slot); the
//! port table (port -> sockets bound to it), one per protocol; and the
//! dual-stack address rules, as Linux keeps them: an IPv4-mapped IPv6
//! address stands for the IPv4 one (`canonical`), an IPv6 socket shows
//! IPv4 peers as mapped addresses (`present`), and an IPv6 socket bound to
//! `::` also claims IPv4 unless it is v6-only (`BindAddr`).
//!
//! Must not touch protocol state: which socket is bound where, and what a
//! conflict refuses, is the caller's (`tcp/ports.rs`, `udp.rs`).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

/// Names one socket in a [`Core`](super::Core).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct SocketHandle {
    index: u32,
    generation: u32,
}

impl SocketHandle {
    /// The slot index, for tables that mirror the socket table.
    pub fn index(self) -> usize {
        self.index as usize
    }
}

struct Slot<T> {
    generation: u32,
    value: Option<T>,
}

/// A slab of `T` with generation-checked handles and a bound on its size.
pub(crate) struct Slab<T> {
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    len: usize,
    limit: usize,
}

impl<T> Slab<T> {
    pub(crate) fn new(limit: usize) -> Slab<T> {
        Slab {
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
            limit,
        }
    }

    /// Stores `value`; `None` when the slab holds `limit` values already.
    pub(crate) fn insert(&mut self, value: T) -> Option<SocketHandle> {
        if self.len >= self.limit {
            return None;
        }
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                let i = u32::try_from(self.slots.len()).ok()?;
                self.slots.push(Slot {
                    generation: 0,
                    value: None,
                });
                i
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.value = Some(value);
        self.len += 1;
        Some(SocketHandle {
            index,
            generation: slot.generation,
        })
    }

    pub(crate) fn get(&self, h: SocketHandle) -> Option<&T> {
        self.slots
            .get(h.index as usize)
            .filter(|s| s.generation == h.generation)
            .and_then(|s| s.value.as_ref())
    }

    pub(crate) fn get_mut(&mut self, h: SocketHandle) -> Option<&mut T> {
        self.slots
            .get_mut(h.index as usize)
            .filter(|s| s.generation == h.generation)
            .and_then(|s| s.value.as_mut())
    }

    /// Every stored value.
    pub(crate) fn values(&self) -> impl Iterator<Item = &T> {
        self.slots.iter().filter_map(|s| s.value.as_ref())
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn remove(&mut self, h: SocketHandle) -> Option<T> {
        let slot = self
            .slots
            .get_mut(h.index as usize)
            .filter(|s| s.generation == h.generation)?;
        let value = slot.value.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(h.index);
        self.len -= 1;
        Some(value)
    }
}

/// Linux's default ephemeral port range (`ip_local_port_range`).
pub(crate) const EPHEMERAL: core::ops::RangeInclusive<u16> = 32768..=60999;

/// Bound ports of one protocol: port -> sockets bound to it, in the order
/// they bound (most recent last).
#[derive(Default)]
pub(crate) struct PortTable {
    ports: HashMap<u16, Vec<SocketHandle>>,
}

impl PortTable {
    /// Files `h` under `port`, after the sockets already there.
    pub(crate) fn insert(&mut self, port: u16, h: SocketHandle) {
        self.ports.entry(port).or_default().push(h);
    }

    /// Forgets `h` under `port` (and the port, once no socket is left).
    pub(crate) fn remove(&mut self, port: u16, h: SocketHandle) {
        if let Some(list) = self.ports.get_mut(&port) {
            list.retain(|x| *x != h);
            if list.is_empty() {
                self.ports.remove(&port);
            }
        }
    }

    /// The sockets bound to `port`, if any.
    pub(crate) fn get(&self, port: u16) -> Option<&[SocketHandle]> {
        self.ports.get(&port).map(Vec::as_slice)
    }

    /// Whether any socket is bound to `port`.
    pub(crate) fn contains(&self, port: u16) -> bool {
        self.ports.contains_key(&port)
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it stands for; any
/// other address as it is.
pub(crate) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(a) => a.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// [`canonical`] for a socket address: a mapped one becomes IPv4 (same
/// port); any other is kept whole (flow label and scope included).
pub(crate) fn canonical_addr(addr: SocketAddr) -> SocketAddr {
    match (addr, canonical(addr.ip())) {
        (SocketAddr::V6(_), v4 @ IpAddr::V4(_)) => SocketAddr::new(v4, addr.port()),
        _ => addr,
    }
}

/// An address as a socket of the given family shows it: an IPv6 socket
/// sees an IPv4 peer as its mapped address.
pub(crate) fn present(v6: bool, addr: SocketAddr) -> SocketAddr {
    match (v6, addr.ip()) {
        (true, IpAddr::V4(a)) => SocketAddr::new(a.to_ipv6_mapped().into(), addr.port()),
        _ => addr,
    }
}

/// What a bind claims: its address, the socket's family, and whether an
/// IPv6 socket is v6-only (IPV6_V6ONLY; ignored on an IPv4 socket).
#[derive(Clone, Copy, Debug)]
pub(crate) struct BindAddr {
    pub ip: IpAddr,
    pub v6: bool,
    pub v6only: bool,
}

impl BindAddr {
    /// Whether the bind claims some IPv4 destination: an IPv4 socket, a
    /// dual-stack `::`, or an IPv4-mapped address.
    fn covers_v4(self) -> bool {
        !self.v6
            || (!self.v6only && self.ip.is_unspecified())
            || matches!(self.ip, IpAddr::V6(a) if a.to_ipv4_mapped().is_some())
    }

    /// Whether the bind claims some IPv6 destination.
    fn covers_v6(self) -> bool {
        self.v6 && !matches!(self.ip, IpAddr::V6(a) if a.to_ipv4_mapped().is_some())
    }

    /// Whether two binds on one port claim a common destination (Linux's
    /// bind conflict rule, before SO_REUSEADDR).
    pub(crate) fn overlaps(self, other: BindAddr) -> bool {
        let both_v4 = self.covers_v4() && other.covers_v4();
        let both_v6 = self.covers_v6() && other.covers_v6();
        if !(both_v4 || both_v6) {
            return false;
        }
        let a = canonical(self.ip);
        let b = canonical(other.ip);
        a.is_unspecified() || b.is_unspecified() || a == b
    }

    /// Whether an arrival to `dst` (one of the stack's addresses, in the
    /// datagram's own family) reaches this bind.
    pub(crate) fn accepts(self, dst: IpAddr) -> bool {
        match (self.ip, dst) {
            (IpAddr::V4(b), IpAddr::V4(d)) => b.is_unspecified() || b == d,
            (IpAddr::V6(b), IpAddr::V6(d)) => b.is_unspecified() || b == d,
            (IpAddr::V6(b), IpAddr::V4(d)) => {
                (b.is_unspecified() && !self.v6only) || b.to_ipv4_mapped() == Some(d)
            }
            (IpAddr::V4(_), IpAddr::V6(_)) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_handle_does_not_reach_a_reused_slot() {
        let mut s = Slab::new(8);
        let a = s.insert("a").unwrap();
        assert_eq!(s.remove(a), Some("a"));
        let b = s.insert("b").unwrap();
        assert_eq!(a.index(), b.index());
        assert_eq!(s.get(a), None);
        assert_eq!(s.remove(a), None);
        assert_eq!(s.get(b), Some(&"b"));
    }

    fn bind(ip: &str, v6: bool, v6only: bool) -> BindAddr {
        BindAddr {
            ip: ip.parse().unwrap(),
            v6,
            v6only,
        }
    }

    #[test]
    fn a_dual_stack_wildcard_overlaps_ipv4_unless_v6only() {
        let any6 = bind("::", true, false);
        assert!(any6.overlaps(bind("10.77.0.2", false, false)));
        assert!(any6.overlaps(bind("::ffff:10.77.0.2", true, false)));
        assert!(!bind("::", true, true).overlaps(bind("0.0.0.0", false, false)));
        assert!(bind("::", true, true).overlaps(bind("fd77::2", true, false)));
        assert!(!bind("10.77.0.2", false, false).overlaps(bind("10.77.0.3", false, false)));
        assert!(bind("::ffff:10.77.0.2", true, true).overlaps(bind("10.77.0.2", false, false)));
        assert!(any6.accepts("10.77.0.2".parse().unwrap()));
        assert!(!bind("::", true, true).accepts("10.77.0.2".parse().unwrap()));
        assert!(!bind("10.77.0.2", false, false).accepts("fd77::2".parse().unwrap()));
    }

    #[test]
    fn mapped_addresses_are_canonical_ipv4_and_presented_to_ipv6_sockets() {
        let mapped: SocketAddr = "[::ffff:10.77.0.1]:9".parse().unwrap();
        let v4: SocketAddr = "10.77.0.1:9".parse().unwrap();
        assert_eq!(canonical_addr(mapped), v4);
        assert_eq!(present(true, v4), mapped);
        assert_eq!(present(false, v4), v4);
        let scoped = SocketAddr::V6(std::net::SocketAddrV6::new(
            "fe80::1".parse().unwrap(),
            9,
            0,
            3,
        ));
        assert_eq!(canonical_addr(scoped), scoped, "kept whole");
    }

    #[test]
    fn port_table_forgets_a_port_with_its_last_socket() {
        let mut slab = Slab::new(4);
        let (a, b) = (slab.insert(()).unwrap(), slab.insert(()).unwrap());
        let mut t = PortTable::default();
        t.insert(80, a);
        t.insert(80, b);
        assert_eq!(t.get(80), Some(&[a, b][..]));
        t.remove(80, a);
        assert!(t.contains(80));
        t.remove(80, b);
        assert!(!t.contains(80) && t.get(80).is_none());
    }

    #[test]
    fn insert_refuses_beyond_the_limit() {
        let mut s = Slab::new(2);
        let a = s.insert(1).unwrap();
        s.insert(2).unwrap();
        assert_eq!(s.insert(3), None);
        s.remove(a);
        assert!(s.insert(3).is_some());
    }
}
