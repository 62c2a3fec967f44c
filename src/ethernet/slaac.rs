//! The Ethernet host's IPv6 stateless address autoconfiguration
//! (`USTACK_ADDR6=auto`, RFC 4862) with duplicate address detection.
//!
//! Owns: the state of the link-local address (tentative until its DAD
//! passes) and of the one global address formed from a router
//! advertisement's prefix, their DAD, the router solicitations at start,
//! the lifetimes, and the default router learnt from advertisements.
//! Must not touch: the core (each change of address or router goes out as
//! a [`LinkEvent::Ipv6`] for the runtime), message layout (`wire::ndp`).
//!
//! What it does, by RFC 4862 section:
//! - 5.3, 5.4: the link-local address fe80::/64 + the modified EUI-64 of
//!   the MAC is tentative at start; 1 s after the start (5.4.2's delay
//!   before the first message, MAX_RTR_SOLICITATION_DELAY, at its upper
//!   end, which also lets a Linux bridge port that just saw the TAP
//!   device come up start forwarding) one neighbour solicitation from ::
//!   to its solicited-node group (DupAddrDetectTransmits 1), then
//!   RetransTimer (1 s) of silence makes it ours. While tentative it is
//!   neither answered for nor used.
//! - 5.4.3, 5.4.4: a neighbour advertisement for a tentative address, or
//!   another host's DAD solicitation for it, makes it a duplicate: it is
//!   logged and never used (for the link-local one, SLAAC stops: section
//!   5.4.5).
//! - RFC 4861 6.3.7: then up to 3 router solicitations, 4 s apart, to
//!   all-routers.
//! - 5.5.3: a prefix information option with A set, a /64, a valid
//!   lifetime and preferred <= valid forms prefix + EUI-64, which gets its
//!   own DAD before use; later advertisements refresh its valid lifetime
//!   under the two-hour rule (e); at the end of it the address goes.
//! - RFC 4861 6.3.4: a router lifetime above 0 makes the advertisement's
//!   source the default router (`gateway6`) until it runs out; 0 removes
//!   it.
//!
//! Not done: more than one global address (the first usable prefix
//! wins), deprecation at the preferred lifetime, RFC 4941 temporary or
//! RFC 7217 stable-private addresses, the RA's MTU, hop limit and
//! DHCPv6 flags (M, O), RDNSS (RFC 8106).

use std::net::Ipv6Addr;
use std::time::Duration;

use super::{EthernetLink, is_link_local};
use crate::device::{Link, LinkEvent};
use crate::time::Instant;
use crate::wire::Prefix;
use crate::wire::ethernet::MacAddr;
use crate::wire::ndp::{self, NdpRepr, RouterAdvert, solicited_node};
use crate::wire::{IpProtocol, Ipv6Repr};

/// RFC 4861 section 10's MAX_RTR_SOLICITATION_DELAY: the wait before the
/// first DAD solicitation after the start.
const START_DELAY: Duration = Duration::from_secs(1);
/// RFC 4861 section 10's RetransTimer: how long DAD waits.
const RETRANS_TIMER: Duration = Duration::from_secs(1);
/// MAX_RTR_SOLICITATIONS and RTR_SOLICITATION_INTERVAL.
const RTR_SOLICITATIONS: u32 = 3;
const RTR_SOLICITATION_INTERVAL: Duration = Duration::from_secs(4);
/// RFC 4862 5.5.3 (e): a valid lifetime is never cut below two hours by an
/// unauthenticated advertisement.
const TWO_HOURS: Duration = Duration::from_secs(2 * 3600);

/// Where an address is in duplicate address detection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Dad {
    /// The solicitation is due (not yet sent).
    Start,
    /// Sent; ours at the instant unless someone objects.
    Waiting(Instant),
    /// Ours.
    Done,
    /// Someone else has it: never used.
    Duplicate,
}

pub(super) struct Global {
    pub(super) addr: Ipv6Addr,
    pub(super) dad: Dad,
    valid_until: Option<Instant>,
}

/// SLAAC's state (see the module docs).
pub(super) struct Slaac {
    pub(super) link_local: Dad,
    pub(super) global: Option<Global>,
    router: Option<(Ipv6Addr, Instant)>,
    solicitations: u32,
    next_solicit: Option<Instant>,
    /// When the link-local address's DAD may start.
    start_at: Instant,
}

impl Slaac {
    pub(super) fn new() -> Slaac {
        Slaac {
            link_local: Dad::Start,
            global: None,
            router: None,
            solicitations: 0,
            next_solicit: None,
            start_at: Instant::ZERO + START_DELAY,
        }
    }

    /// The next deadline.
    pub(super) fn poll_at(&self, now: Instant) -> Option<Instant> {
        let dad = |d: Dad| match d {
            Dad::Start => Some(now),
            Dad::Waiting(t) => Some(t),
            _ => None,
        };
        let link_local = match self.link_local {
            Dad::Start => Some(self.start_at.max(now)),
            d => dad(d),
        };
        [
            link_local,
            self.global.as_ref().and_then(|g| dad(g.dad)),
            self.global.as_ref().and_then(|g| g.valid_until),
            self.router.map(|r| r.1),
            self.next_solicit,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Whether `a` is tentative (its DAD still running).
    pub(super) fn tentative(&self, a: Ipv6Addr, link_local: Ipv6Addr) -> bool {
        let running = |d: Dad| matches!(d, Dad::Start | Dad::Waiting(_));
        (a == link_local && running(self.link_local))
            || self
                .global
                .as_ref()
                .is_some_and(|g| g.addr == a && running(g.dad))
    }
}

impl<L: Link> EthernetLink<L> {
    /// Whether the link-local address may be used (always, without SLAAC).
    pub(super) fn link_local_usable(&self) -> bool {
        self.slaac
            .as_ref()
            .is_none_or(|s| s.link_local == Dad::Done)
    }

    /// The tentative global address, whose solicited-node group we join
    /// for its DAD.
    pub(super) fn tentative_global(&self) -> Option<Ipv6Addr> {
        let g = self.slaac.as_ref()?.global.as_ref()?;
        matches!(g.dad, Dad::Start | Dad::Waiting(_)).then_some(g.addr)
    }

    /// Timers: DAD, solicitations, lifetimes.
    pub(super) fn slaac_service(&mut self, now: Instant) {
        let Some(s) = self.slaac.as_mut() else {
            return;
        };
        let mut dad_for = Vec::new();
        let mut changed = false;
        match s.link_local {
            Dad::Start if now >= s.start_at => {
                s.link_local = Dad::Waiting(now + RETRANS_TIMER);
                dad_for.push(self.link_local);
            }
            Dad::Waiting(t) if now >= t => {
                s.link_local = Dad::Done;
                log::info!("slaac: {} is ours", self.link_local);
                s.next_solicit = Some(now);
            }
            _ => {}
        }
        if s.link_local == Dad::Done
            && let Some(t) = s.next_solicit
            && now >= t
        {
            s.solicitations += 1;
            s.next_solicit =
                (s.solicitations < RTR_SOLICITATIONS).then_some(now + RTR_SOLICITATION_INTERVAL);
            self.router_solicit();
        }
        let Some(s) = self.slaac.as_mut() else {
            return;
        };
        if let Some(g) = s.global.as_mut() {
            match g.dad {
                Dad::Start => {
                    g.dad = Dad::Waiting(now + RETRANS_TIMER);
                    dad_for.push(g.addr);
                }
                Dad::Waiting(t) if now >= t => {
                    g.dad = Dad::Done;
                    log::info!("slaac: {}/64 is ours", g.addr);
                    changed = true;
                }
                _ => {}
            }
            if g.valid_until.is_some_and(|t| now >= t) {
                log::info!("slaac: the valid lifetime of {} ended", g.addr);
                changed |= g.dad == Dad::Done;
                s.global = None;
            }
        }
        if s.router.is_some_and(|r| now >= r.1) {
            s.router = None;
            changed = true;
        }
        for target in dad_for {
            self.dad_solicit(target);
        }
        if changed {
            self.slaac_apply();
        }
    }

    /// The address and router as SLAAC has them now, to the link's
    /// configuration and the core.
    fn slaac_apply(&mut self) {
        let Some(s) = self.slaac.as_ref() else {
            return;
        };
        let addr = s
            .global
            .as_ref()
            .filter(|g| g.dad == Dad::Done)
            .map(|g| Prefix {
                addr: g.addr,
                len: 64,
            });
        let gateway = s.router.map(|r| r.0).filter(|_| addr.is_some());
        if (self.cfg.ipv6, self.cfg.gateway6) == (addr, gateway) {
            return;
        }
        self.cfg.ipv6 = addr;
        self.cfg.gateway6 = gateway;
        self.events.push_back(LinkEvent::Ipv6 { addr, gateway });
    }

    /// RFC 4862 5.4.2: a solicitation for `target` from ::, to its
    /// solicited-node group, without a source link-layer address.
    fn dad_solicit(&mut self, target: Ipv6Addr) {
        let group = solicited_node(target);
        let repr = NdpRepr::NeighborSolicit {
            target,
            source_mac: None,
        };
        self.push_ndp(
            MacAddr::from_ipv6_multicast(group),
            Ipv6Addr::UNSPECIFIED,
            group,
            repr,
        );
    }

    fn router_solicit(&mut self) {
        let routers = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);
        let src = self.link_local;
        let len = ndp::router_solicit_len(src);
        let ip = Ipv6Repr {
            src_addr: src,
            dst_addr: routers,
            next_header: IpProtocol::Icmpv6,
            payload_len: len,
            hop_limit: ndp::HOP_LIMIT,
            traffic_class: 0,
            flow_label: 0,
        };
        let header = crate::wire::ethernet::EthernetRepr {
            dst: MacAddr::from_ipv6_multicast(routers),
            src: self.cfg.mac,
            ethertype: crate::wire::ethernet::EtherType::Ipv6,
        };
        let mut f = self.frame_buffer(header, ip.buffer_len());
        let at = crate::wire::ethernet::HEADER_LEN;
        if ip.emit(&mut f[at..]).is_ok()
            && ndp::emit_router_solicit(&mut f[at + 40..], self.cfg.mac, src, routers).is_ok()
        {
            self.tx.push(f);
        }
    }

    /// Someone else claims `target`, which is tentative: a duplicate.
    pub(super) fn dad_failed(&mut self, target: Ipv6Addr, by: MacAddr) {
        let link_local = self.link_local;
        let Some(s) = self.slaac.as_mut() else {
            return;
        };
        self.counters.address_conflicts += 1;
        if target == link_local {
            log::warn!(
                "slaac: {target} is a duplicate (also at {by}): not used, no autoconfiguration"
            );
            s.link_local = Dad::Duplicate;
            s.next_solicit = None;
        } else if let Some(g) = s.global.as_mut().filter(|g| g.addr == target) {
            log::warn!("slaac: {target} is a duplicate (also at {by}): not used");
            g.dad = Dad::Duplicate;
        }
    }

    /// A router advertisement `message` from `src`.
    pub(super) fn ra_input(&mut self, now: Instant, src: Ipv6Addr, dst: Ipv6Addr, message: &[u8]) {
        let ra = match RouterAdvert::parse(message, src, dst) {
            Ok(ra) => ra,
            Err(_) => {
                self.counters.rx_malformed += 1;
                return;
            }
        };
        let eui = self.cfg.mac.eui64();
        let Some(s) = self.slaac.as_mut() else {
            self.counters.ndp_ignored += 1;
            return;
        };
        if s.link_local == Dad::Duplicate {
            return;
        }
        // The router answered: no more solicitations.
        s.next_solicit = None;
        if ra.router_lifetime > 0 {
            let until = now + Duration::from_secs(u64::from(ra.router_lifetime));
            s.router = Some((src, until));
        } else if s.router.is_some_and(|r| r.0 == src) {
            s.router = None;
        }
        for p in &ra.prefixes {
            if !p.autonomous || p.len != 64 || p.preferred > p.valid || is_link_local(p.prefix) {
                continue;
            }
            let mut o = p.prefix.octets();
            o[8..].copy_from_slice(&eui);
            let addr = Ipv6Addr::from(o);
            let valid = (p.valid != u32::MAX).then(|| Duration::from_secs(u64::from(p.valid)));
            match s.global.as_mut() {
                Some(g) if g.addr == addr => {
                    // 5.5.3 (e): the two-hour rule.
                    let left = g.valid_until.map(|t| t.saturating_duration_since(now));
                    g.valid_until = match (valid, left) {
                        (None, _) => None,
                        (Some(v), _) if v > TWO_HOURS => Some(now + v),
                        (Some(v), Some(l)) if v > l => Some(now + v),
                        (Some(_), Some(l)) if l <= TWO_HOURS => g.valid_until,
                        (Some(_), _) => Some(now + TWO_HOURS),
                    };
                }
                Some(_) => {}
                None if p.valid > 0 => {
                    log::info!("slaac: {addr} from the prefix {}/64 of {src}", p.prefix);
                    s.global = Some(Global {
                        addr,
                        dad: Dad::Start,
                        valid_until: valid.map(|v| now + v),
                    });
                }
                None => {}
            }
        }
        self.slaac_service(now);
        self.slaac_apply();
    }
}
