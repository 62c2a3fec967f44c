//! Which destinations have a route, decided when a socket sends or
//! connects, so that one with none fails at once with `ENETUNREACH`, as
//! Linux's routing lookup in connect(2) and sendto(2) does.
//!
//! Owns the stack's view of its link's routes: on a point-to-point TUN
//! link every destination goes to the one peer; on a LAN (TAP) those inside
//! the on-link prefix (and link-local and multicast ones) are on-link, and
//! the rest need a gateway. Must not pick next hops (the Ethernet host does,
//! from the same prefixes) or touch sockets.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::wire::Prefix;

/// The routes of the stack's link.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Routes {
    /// A point-to-point link: every destination is reached through it.
    #[default]
    PointToPoint,
    /// A LAN: on-link prefixes, and whether a gateway takes the rest.
    /// Without an address of a family (`None`: DHCP has no lease yet, or
    /// lost it) nothing of that family has a route, as on Linux with no
    /// address and so no route on the interface.
    Lan {
        /// Our IPv4 address and on-link prefix, if we have one.
        v4: Option<Prefix<Ipv4Addr>>,
        /// Whether a gateway takes off-link IPv4 destinations.
        gateway4: bool,
        /// Our IPv6 address and on-link prefix, if we have one.
        v6: Option<Prefix<Ipv6Addr>>,
        /// Whether a gateway takes off-link IPv6 destinations.
        gateway6: bool,
    },
}

impl Routes {
    /// Whether datagrams to `dst` have somewhere to go.
    pub fn has_route(&self, dst: IpAddr) -> bool {
        let Routes::Lan {
            v4,
            gateway4,
            v6,
            gateway6,
        } = self
        else {
            return true;
        };
        match dst {
            IpAddr::V4(a) => v4.is_some_and(|v4| {
                *gateway4 || v4.contains(a) || a.is_broadcast() || a.is_multicast()
            }),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(m) => Routes::has_route(self, IpAddr::V4(m)),
                // The core sends from its one address, so without it
                // not even link-local destinations are reachable.
                None => v6.is_some_and(|v6| {
                    *gateway6
                        || v6.contains(a)
                        || a.is_multicast()
                        || (a.segments()[0] & 0xffc0) == 0xfe80
                }),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lan(gw4: bool, gw6: bool) -> Routes {
        Routes::Lan {
            v4: Some(Prefix {
                addr: Ipv4Addr::new(10, 77, 0, 2),
                len: 24,
            }),
            gateway4: gw4,
            v6: Some(Prefix {
                addr: "fd77::2".parse().unwrap(),
                len: 64,
            }),
            gateway6: gw6,
        }
    }

    #[test]
    fn a_lan_without_gateway_routes_only_on_link_destinations() {
        let r = lan(false, false);
        for on in [
            "10.77.0.9",
            "10.77.0.255",
            "255.255.255.255",
            "224.0.0.1",
            "fd77::9",
            "fe80::1",
            "ff02::1",
            "::ffff:10.77.0.1",
        ] {
            assert!(r.has_route(on.parse().unwrap()), "{on}");
        }
        for off in [
            "10.78.0.1",
            "192.0.2.1",
            "2001:db8::1",
            "fd78::1",
            "::ffff:192.0.2.1",
        ] {
            assert!(!r.has_route(off.parse().unwrap()), "{off}");
        }
    }

    #[test]
    fn a_gateway_routes_the_rest_per_family_and_a_tun_link_routes_all() {
        let r = lan(true, false);
        assert!(r.has_route("192.0.2.1".parse().unwrap()));
        assert!(!r.has_route("2001:db8::1".parse().unwrap()));
        let r = lan(false, true);
        assert!(!r.has_route("192.0.2.1".parse().unwrap()));
        assert!(r.has_route("2001:db8::1".parse().unwrap()));
        assert!(Routes::PointToPoint.has_route("192.0.2.1".parse().unwrap()));
    }

    #[test]
    fn without_an_address_a_family_has_no_route_even_with_a_gateway() {
        let mut r = lan(true, true);
        if let Routes::Lan { v4, v6, .. } = &mut r {
            *v4 = None;
            *v6 = None;
        }
        for off in [
            "10.77.0.9",
            "192.0.2.1",
            "255.255.255.255",
            "224.0.0.1",
            "fd77::9",
            "fe80::1",
            "ff02::1",
        ] {
            assert!(!r.has_route(off.parse().unwrap()), "{off}");
        }
    }
}
