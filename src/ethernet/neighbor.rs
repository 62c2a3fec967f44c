//! The neighbour cache: IP address to MAC address, for ARP and NDP alike,
//! with RFC 4861's states (section 7.3.2) and Linux's bounds.
//!
//! Owns the entries, their timers and the packets queued while an address
//! is being resolved. Must not touch: frames, clocks or I/O. The cache
//! decides and reports [`Action`]s (solicit, send what was queued, give up
//! on it); the adapter (`super::EthernetLink`) builds the frames.
//!
//! States, as RFC 4861 section 7.3.2 names them:
//! - **Incomplete**: a solicitation was sent; packets wait in a bounded
//!   queue. Retried every [`NeighborConfig::retrans`] up to
//!   [`NeighborConfig::max_multicast_solicit`] times (RFC 4861 section 10:
//!   three, one second apart), then the entry is dropped and its packets
//!   fail ([`Action::Failed`]).
//! - **Reachable**: confirmed by a solicited reply, for
//!   [`NeighborConfig::reachable_time`]; then **Stale**.
//! - **Stale**: the address is used as is; the first packet sent moves the
//!   entry to **Delay**, which becomes **Probe** after
//!   [`NeighborConfig::delay_first_probe`] unless confirmed meanwhile.
//! - **Probe**: unicast solicitations, as many as for Incomplete, then
//!   the entry is dropped.
//!
//! Entries are created only by this host's own need to send (Incomplete)
//! or by a solicitation/request addressed to one of its own addresses
//! (Stale, RFC 4861 section 7.2.3, RFC 826's "merge"); a reply or
//! advertisement for an address not in the cache is ignored (Linux's
//! `arp_accept=0`), so a flood of them changes nothing. The cache holds at
//! most [`NeighborConfig::max_entries`]; when full, the least recently
//! updated entry goes (Incomplete ones last).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::Duration;

use crate::device::Packet;
use crate::time::Instant;
use crate::wire::ethernet::MacAddr;

/// Bounds and timers of a [`NeighborCache`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NeighborConfig {
    /// The most entries (Linux's `gc_thresh3` is 1024; a host needs far
    /// fewer).
    pub max_entries: usize,
    /// The most packets waiting for one address (Linux's
    /// `unres_qlen`-like bound); beyond it the oldest is dropped.
    pub max_queued_per_entry: usize,
    /// The most packets waiting for all addresses together; beyond it a
    /// new packet is dropped.
    pub max_queued: usize,
    /// Time between solicitations (RFC 4861 RetransTimer, 1 s).
    pub retrans: Duration,
    /// Solicitations for an unresolved address before giving up
    /// (MAX_MULTICAST_SOLICIT, 3).
    pub max_multicast_solicit: u8,
    /// Unicast probes of a stale address before dropping it
    /// (MAX_UNICAST_SOLICIT, 3).
    pub max_unicast_solicit: u8,
    /// How long a confirmation holds (REACHABLE_TIME, 30 s).
    pub reachable_time: Duration,
    /// The wait in Delay before probing (DELAY_FIRST_PROBE_TIME, 5 s).
    pub delay_first_probe: Duration,
}

impl Default for NeighborConfig {
    fn default() -> Self {
        NeighborConfig {
            max_entries: 512,
            max_queued_per_entry: 16,
            max_queued: 256,
            retrans: Duration::from_secs(1),
            max_multicast_solicit: 3,
            max_unicast_solicit: 3,
            reachable_time: Duration::from_secs(30),
            delay_first_probe: Duration::from_secs(5),
        }
    }
}

/// RFC 4861's reachability states (section 7.3.2).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum NeighborState {
    /// Being resolved; packets queue.
    Incomplete,
    /// Recently confirmed.
    Reachable,
    /// Unconfirmed for a while; usable.
    Stale,
    /// Used while stale; a probe follows unless confirmed.
    Delay,
    /// Being probed by unicast.
    Probe,
}

/// What the cache asks its owner to do.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// Send a solicitation (ARP request, neighbour solicitation) for `ip`:
    /// to everyone (broadcast, solicited-node group) when `unicast` is
    /// `None`, else to that MAC (a probe).
    Solicit {
        /// The address to resolve.
        ip: IpAddr,
        /// The cached MAC a probe goes to.
        unicast: Option<MacAddr>,
    },
    /// `ip` resolved to `mac`: send the packets that waited for it.
    Send {
        /// Where they go.
        mac: MacAddr,
        /// Whole IP datagrams, in the order they were queued.
        packets: Vec<Packet>,
    },
    /// `ip` could not be resolved: these packets will never leave.
    Failed {
        /// The unresolved address.
        ip: IpAddr,
        /// The packets that waited for it.
        packets: Vec<Packet>,
    },
}

/// What happened in a cache, counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NeighborStats {
    /// Solicitations asked for (first tries, retries and probes).
    pub solicits: u64,
    /// Addresses resolved from Incomplete.
    pub resolved: u64,
    /// Addresses given up on after their last solicitation.
    pub failed: u64,
    /// Packets dropped because a queue was full.
    pub queue_dropped: u64,
    /// Entries pushed out by a full cache.
    pub evicted: u64,
    /// Replies and advertisements for addresses not in the cache.
    pub unsolicited_ignored: u64,
}

#[derive(Debug)]
struct Entry {
    mac: MacAddr,
    state: NeighborState,
    /// When the state's timer fires: the next solicitation (Incomplete,
    /// Probe), the end of Reachable or Delay; `None` in Stale.
    deadline: Option<Instant>,
    /// Solicitations sent in this Incomplete or Probe episode.
    sent: u8,
    queue: VecDeque<Packet>,
    updated: Instant,
}

/// The neighbour cache (see the module docs).
#[derive(Debug, Default)]
pub struct NeighborCache {
    cfg: NeighborConfig,
    entries: HashMap<IpAddr, Entry>,
    queued: usize,
    stats: NeighborStats,
}

impl NeighborCache {
    /// An empty cache.
    pub fn new(cfg: NeighborConfig) -> NeighborCache {
        NeighborCache {
            cfg,
            ..NeighborCache::default()
        }
    }

    /// The counters.
    pub fn stats(&self) -> NeighborStats {
        self.stats
    }

    /// How many entries there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// How many packets wait for resolution, over all entries.
    pub fn queued(&self) -> usize {
        self.queued
    }

    /// The state and MAC of `ip`'s entry (the MAC is zero while
    /// Incomplete).
    pub fn get(&self, ip: IpAddr) -> Option<(NeighborState, MacAddr)> {
        self.entries.get(&ip).map(|e| (e.state, e.mac))
    }

    /// The MAC to send a packet for `ip` to, if known; a Stale entry moves
    /// to Delay (RFC 4861 section 7.3.3: the first use starts the
    /// reachability check).
    pub fn lookup(&mut self, now: Instant, ip: IpAddr) -> Option<MacAddr> {
        let e = self.entries.get_mut(&ip)?;
        match e.state {
            NeighborState::Incomplete => None,
            NeighborState::Stale => {
                e.state = NeighborState::Delay;
                e.deadline = Some(now + self.cfg.delay_first_probe);
                Some(e.mac)
            }
            _ => Some(e.mac),
        }
    }

    /// Queues `packet` until `ip` resolves; creates an Incomplete entry
    /// (and asks for the first solicitation) if there is none. Call after
    /// [`NeighborCache::lookup`] found no MAC.
    pub fn enqueue(&mut self, now: Instant, ip: IpAddr, packet: Packet, out: &mut Vec<Action>) {
        if !self.entries.contains_key(&ip) {
            self.make_room(out);
            self.entries.insert(
                ip,
                Entry {
                    mac: MacAddr::ZERO,
                    state: NeighborState::Incomplete,
                    deadline: Some(now + self.cfg.retrans),
                    sent: 1,
                    queue: VecDeque::new(),
                    updated: now,
                },
            );
            self.stats.solicits += 1;
            out.push(Action::Solicit { ip, unicast: None });
        }
        let Some(e) = self.entries.get_mut(&ip) else {
            return;
        };
        if e.state != NeighborState::Incomplete {
            // Resolved meanwhile (the caller skipped lookup): send at once.
            out.push(Action::Send {
                mac: e.mac,
                packets: vec![packet],
            });
            return;
        }
        if e.queue.len() >= self.cfg.max_queued_per_entry {
            e.queue.pop_front();
            self.queued -= 1;
            self.stats.queue_dropped += 1;
        }
        if self.queued >= self.cfg.max_queued {
            self.stats.queue_dropped += 1;
            return;
        }
        e.queue.push_back(packet);
        self.queued += 1;
    }

    /// A solicitation or request addressed to us came from `ip` at `mac`
    /// (RFC 4861 section 7.2.3, RFC 826): create a Stale entry, or update
    /// one whose MAC changed; an Incomplete one is resolved by it.
    pub fn learn(&mut self, now: Instant, ip: IpAddr, mac: MacAddr, out: &mut Vec<Action>) {
        if !self.entries.contains_key(&ip) {
            self.make_room(out);
            self.entries.insert(
                ip,
                Entry {
                    mac,
                    state: NeighborState::Stale,
                    deadline: None,
                    sent: 0,
                    queue: VecDeque::new(),
                    updated: now,
                },
            );
            return;
        }
        self.update(now, ip, mac, false, true, out);
    }

    /// A reply (ARP) or advertisement (NDP) for `ip`: `mac` if it carried
    /// one, whether it was `solicited` and may `override_` a cached MAC.
    /// Returns false, changing nothing, when `ip` has no entry (RFC 4861
    /// section 7.2.5; Linux's `arp_accept=0`).
    pub fn advert(
        &mut self,
        now: Instant,
        ip: IpAddr,
        mac: Option<MacAddr>,
        solicited: bool,
        override_: bool,
        out: &mut Vec<Action>,
    ) -> bool {
        let Some(e) = self.entries.get(&ip) else {
            self.stats.unsolicited_ignored += 1;
            return false;
        };
        match mac {
            Some(mac) => self.update(now, ip, mac, solicited, override_, out),
            // No address: only a confirmation of the one cached.
            None if e.state != NeighborState::Incomplete && solicited => {
                let mac = e.mac;
                self.update(now, ip, mac, true, false, out);
            }
            None => {}
        }
        true
    }

    /// The rules of RFC 4861 section 7.2.5 for an existing entry.
    fn update(
        &mut self,
        now: Instant,
        ip: IpAddr,
        mac: MacAddr,
        solicited: bool,
        override_: bool,
        out: &mut Vec<Action>,
    ) {
        let cfg = &self.cfg;
        let Some(e) = self.entries.get_mut(&ip) else {
            return;
        };
        if !mac.is_unicast() {
            return;
        }
        e.updated = now;
        if e.state == NeighborState::Incomplete {
            e.mac = mac;
            if solicited {
                e.state = NeighborState::Reachable;
                e.deadline = Some(now + cfg.reachable_time);
            } else {
                e.state = NeighborState::Stale;
                e.deadline = None;
            }
            e.sent = 0;
            self.stats.resolved += 1;
            let packets: Vec<Packet> = e.queue.drain(..).collect();
            self.queued -= packets.len();
            if !packets.is_empty() {
                out.push(Action::Send { mac, packets });
            }
            return;
        }
        let changed = mac != e.mac;
        if changed && !override_ {
            // A different address without the override flag is not
            // believed; a confirmed entry is only marked stale.
            if e.state == NeighborState::Reachable {
                e.state = NeighborState::Stale;
                e.deadline = None;
            }
            return;
        }
        e.mac = mac;
        if solicited {
            e.state = NeighborState::Reachable;
            e.deadline = Some(now + cfg.reachable_time);
            e.sent = 0;
        } else if changed {
            e.state = NeighborState::Stale;
            e.deadline = None;
        }
    }

    /// Runs the timers due at `now`.
    pub fn poll(&mut self, now: Instant, out: &mut Vec<Action>) {
        let cfg = &self.cfg;
        let mut gone = Vec::new();
        for (&ip, e) in self.entries.iter_mut() {
            let Some(deadline) = e.deadline else { continue };
            if deadline > now {
                continue;
            }
            match e.state {
                NeighborState::Incomplete if e.sent < cfg.max_multicast_solicit => {
                    e.sent += 1;
                    e.deadline = Some(now + cfg.retrans);
                    self.stats.solicits += 1;
                    out.push(Action::Solicit { ip, unicast: None });
                }
                NeighborState::Probe if e.sent < cfg.max_unicast_solicit => {
                    e.sent += 1;
                    e.deadline = Some(now + cfg.retrans);
                    self.stats.solicits += 1;
                    out.push(Action::Solicit {
                        ip,
                        unicast: Some(e.mac),
                    });
                }
                NeighborState::Incomplete | NeighborState::Probe => gone.push(ip),
                NeighborState::Reachable => {
                    e.state = NeighborState::Stale;
                    e.deadline = None;
                }
                NeighborState::Delay => {
                    e.state = NeighborState::Probe;
                    e.sent = 1;
                    e.deadline = Some(now + cfg.retrans);
                    self.stats.solicits += 1;
                    out.push(Action::Solicit {
                        ip,
                        unicast: Some(e.mac),
                    });
                }
                NeighborState::Stale => e.deadline = None,
            }
        }
        for ip in gone {
            if let Some(e) = self.entries.remove(&ip) {
                self.queued -= e.queue.len();
                if e.state == NeighborState::Incomplete {
                    self.stats.failed += 1;
                    out.push(Action::Failed {
                        ip,
                        packets: e.queue.into(),
                    });
                }
            }
        }
    }

    /// The earliest timer, if any.
    pub fn poll_at(&self) -> Option<Instant> {
        self.entries.values().filter_map(|e| e.deadline).min()
    }

    /// Removes one entry if the cache is full: the least recently updated,
    /// preferring any that is not Incomplete; an evicted Incomplete
    /// entry's packets fail.
    fn make_room(&mut self, out: &mut Vec<Action>) {
        if self.entries.len() < self.cfg.max_entries {
            return;
        }
        let victim = self
            .entries
            .iter()
            .min_by_key(|(_, e)| (e.state == NeighborState::Incomplete, e.updated))
            .map(|(&ip, _)| ip);
        if let Some(ip) = victim
            && let Some(e) = self.entries.remove(&ip)
        {
            self.stats.evicted += 1;
            self.queued -= e.queue.len();
            if !e.queue.is_empty() {
                out.push(Action::Failed {
                    ip,
                    packets: e.queue.into(),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
    const MAC2: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
    }

    fn at(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    #[test]
    fn resolution_queues_then_sends_in_order() {
        let mut c = NeighborCache::new(NeighborConfig::default());
        let mut out = Vec::new();
        assert_eq!(c.lookup(at(0), ip(1)), None);
        c.enqueue(at(0), ip(1), vec![1], &mut out);
        c.enqueue(at(1), ip(1), vec![2], &mut out);
        assert_eq!(
            out,
            [Action::Solicit {
                ip: ip(1),
                unicast: None
            }],
            "one solicitation for two packets"
        );
        out.clear();
        assert_eq!(
            c.get(ip(1)),
            Some((NeighborState::Incomplete, MacAddr::ZERO))
        );
        assert!(c.advert(at(5), ip(1), Some(MAC), true, false, &mut out));
        assert_eq!(
            out,
            [Action::Send {
                mac: MAC,
                packets: vec![vec![1], vec![2]]
            }]
        );
        assert_eq!(c.queued(), 0);
        assert_eq!(c.lookup(at(6), ip(1)), Some(MAC));
        assert_eq!(c.get(ip(1)), Some((NeighborState::Reachable, MAC)));
    }

    #[test]
    fn three_tries_one_second_apart_then_the_packets_fail() {
        let mut c = NeighborCache::new(NeighborConfig::default());
        let mut out = Vec::new();
        c.enqueue(at(0), ip(1), vec![7], &mut out);
        assert_eq!(c.poll_at(), Some(at(1000)));
        c.poll(at(999), &mut out);
        assert_eq!(out.len(), 1, "nothing due before the second");
        c.poll(at(1000), &mut out);
        c.poll(at(2000), &mut out);
        assert_eq!(out.len(), 3);
        assert!(
            out.iter()
                .all(|a| matches!(a, Action::Solicit { unicast: None, .. }))
        );
        out.clear();
        c.poll(at(3000), &mut out);
        assert_eq!(
            out,
            [Action::Failed {
                ip: ip(1),
                packets: vec![vec![7]]
            }]
        );
        assert!(c.is_empty());
        assert_eq!(c.queued(), 0);
        assert_eq!(c.stats().solicits, 3);
        assert_eq!(c.stats().failed, 1);
        assert_eq!(c.poll_at(), None);
    }

    #[test]
    fn queues_are_bounded_per_address_and_in_total() {
        let cfg = NeighborConfig {
            max_queued_per_entry: 3,
            max_queued: 5,
            ..NeighborConfig::default()
        };
        let mut c = NeighborCache::new(cfg);
        let mut out = Vec::new();
        for n in 0..10u8 {
            c.enqueue(at(0), ip(1), vec![n], &mut out);
        }
        assert_eq!(c.queued(), 3);
        for n in 0..10u8 {
            c.enqueue(at(0), ip(2), vec![n], &mut out);
        }
        assert_eq!(c.queued(), 5);
        out.clear();
        c.advert(at(1), ip(1), Some(MAC), true, false, &mut out);
        // The newest three stayed (the oldest are dropped first).
        assert_eq!(
            out,
            [Action::Send {
                mac: MAC,
                packets: vec![vec![7], vec![8], vec![9]]
            }]
        );
        assert_eq!(c.stats().queue_dropped, 7 + 8);
    }

    #[test]
    fn unsolicited_adverts_create_nothing() {
        let mut c = NeighborCache::new(NeighborConfig::default());
        let mut out = Vec::new();
        for n in 0..=255u8 {
            assert!(!c.advert(at(0), ip(n), Some(MAC), true, true, &mut out));
        }
        assert!(c.is_empty() && out.is_empty());
        assert_eq!(c.stats().unsolicited_ignored, 256);
    }

    #[test]
    fn learning_floods_stay_bounded_and_keep_pending_resolutions() {
        let cfg = NeighborConfig {
            max_entries: 8,
            ..NeighborConfig::default()
        };
        let mut c = NeighborCache::new(cfg);
        let mut out = Vec::new();
        c.enqueue(at(0), ip(200), vec![1], &mut out);
        for n in 0..10_000u32 {
            let a = IpAddr::V4(Ipv4Addr::from(0x0a01_0000 + n));
            c.learn(at(u64::from(n)), a, MAC2, &mut out);
        }
        assert_eq!(c.len(), 8);
        assert_eq!(c.get(ip(200)).map(|e| e.0), Some(NeighborState::Incomplete));
        assert_eq!(c.stats().evicted, 10_000 - 7);
    }

    #[test]
    fn stale_entries_are_probed_after_use_and_dropped_without_answer() {
        let mut c = NeighborCache::new(NeighborConfig::default());
        let mut out = Vec::new();
        c.learn(at(0), ip(1), MAC, &mut out);
        assert_eq!(c.get(ip(1)), Some((NeighborState::Stale, MAC)));
        assert_eq!(c.poll_at(), None, "stale has no timer");
        assert_eq!(c.lookup(at(10), ip(1)), Some(MAC));
        assert_eq!(c.get(ip(1)).unwrap().0, NeighborState::Delay);
        c.poll(at(5010), &mut out);
        assert_eq!(
            out,
            [Action::Solicit {
                ip: ip(1),
                unicast: Some(MAC)
            }]
        );
        c.poll(at(6010), &mut out);
        c.poll(at(7010), &mut out);
        assert_eq!(out.len(), 3);
        c.poll(at(8010), &mut out);
        assert_eq!(out.len(), 3, "a dropped probe entry fails nothing");
        assert!(c.is_empty());
    }

    #[test]
    fn a_probe_answered_confirms_and_reachable_turns_stale() {
        let mut c = NeighborCache::new(NeighborConfig::default());
        let mut out = Vec::new();
        c.learn(at(0), ip(1), MAC, &mut out);
        c.lookup(at(0), ip(1));
        c.poll(at(5000), &mut out);
        assert_eq!(c.get(ip(1)).unwrap().0, NeighborState::Probe);
        c.advert(at(5100), ip(1), None, true, false, &mut out);
        assert_eq!(c.get(ip(1)), Some((NeighborState::Reachable, MAC)));
        c.poll(at(35_100), &mut out);
        assert_eq!(c.get(ip(1)).unwrap().0, NeighborState::Stale);
    }

    #[test]
    fn a_different_mac_needs_the_override_flag() {
        let mut c = NeighborCache::new(NeighborConfig::default());
        let mut out = Vec::new();
        c.enqueue(at(0), ip(1), vec![1], &mut out);
        c.advert(at(1), ip(1), Some(MAC), true, true, &mut out);
        c.advert(at(2), ip(1), Some(MAC2), false, false, &mut out);
        assert_eq!(
            c.get(ip(1)),
            Some((NeighborState::Stale, MAC)),
            "not believed"
        );
        c.advert(at(3), ip(1), Some(MAC2), false, true, &mut out);
        assert_eq!(c.get(ip(1)), Some((NeighborState::Stale, MAC2)));
        c.advert(at(4), ip(1), Some(MacAddr::BROADCAST), true, true, &mut out);
        assert_eq!(
            c.get(ip(1)),
            Some((NeighborState::Stale, MAC2)),
            "not unicast"
        );
    }
}
