//! The Ethernet host's multicast listener reports (MLDv2, RFC 3810) for
//! the groups it joins: the solicited-node groups of its IPv6 addresses
//! (the link-local one from the start, before its duplicate address
//! detection, as RFC 4862 5.4.2 asks), so a bridge that snoops multicast
//! delivers neighbour solicitations for them. All-nodes is never reported
//! (RFC 3810 section 6).
//!
//! Owns: which groups were reported, the unsolicited reports on a change
//! (CHANGE_TO_EXCLUDE for a join, CHANGE_TO_INCLUDE for a leave, sent
//! [Robustness Variable] = 2 times, [Unsolicited Report Interval] = 1 s
//! apart, section 6.1) and the answer to a query (one MODE_IS_EXCLUDE
//! record per group, sent at once rather than after a random delay up to
//! the query's maximum response delay). Must not touch: the report's
//! layout (`wire::mld`).

use std::net::Ipv6Addr;
use std::time::Duration;

use super::EthernetLink;
use crate::device::Link;
use crate::time::Instant;
use crate::wire::ethernet::{EtherType, EthernetRepr, HEADER_LEN, MacAddr};
use crate::wire::mld::{self, RecordType};
use crate::wire::ndp::solicited_node;

const UNSOLICITED_REPORT_INTERVAL: Duration = Duration::from_secs(1);
const ROBUSTNESS: u32 = 2;

/// MLD's state (see the module docs).
#[derive(Default)]
pub(super) struct Mld {
    reported: Vec<Ipv6Addr>,
    /// The last change's records, and how many more times and when to
    /// send them again.
    changes: Vec<(RecordType, Ipv6Addr)>,
    repeat: Option<(u32, Instant)>,
    query: bool,
}

impl<L: Link> EthernetLink<L> {
    /// The groups we listen to (besides all-nodes).
    pub(super) fn mld_groups(&self) -> Vec<Ipv6Addr> {
        let mut groups = Vec::new();
        let own = [
            Some(self.link_local),
            self.cfg.ipv6.map(|p| p.addr),
            self.tentative_global(),
        ];
        for a in own.into_iter().flatten() {
            let g = solicited_node(a);
            if !groups.contains(&g) {
                groups.push(g);
            }
        }
        groups
    }

    /// When MLD next has something to send.
    pub(super) fn mld_poll_at(&self, now: Instant) -> Option<Instant> {
        let m = self.mld.as_ref()?;
        if m.query || m.reported != self.mld_groups() {
            return Some(now);
        }
        m.repeat.map(|r| r.1)
    }

    /// A query arrived: answer with every group.
    pub(super) fn mld_query(&mut self) {
        if let Some(m) = self.mld.as_mut() {
            m.query = true;
        }
    }

    /// Reports due at `now`.
    pub(super) fn mld_service(&mut self, now: Instant) {
        if self.mld.is_none() {
            return;
        }
        let groups = self.mld_groups();
        let Some(m) = self.mld.as_mut() else {
            return;
        };
        let mut send = Vec::new();
        if m.reported != groups {
            let joined = groups.iter().filter(|g| !m.reported.contains(g));
            let left = m.reported.iter().filter(|g| !groups.contains(g));
            m.changes = joined
                .map(|g| (RecordType::ToExclude, *g))
                .chain(left.map(|g| (RecordType::ToInclude, *g)))
                .collect();
            m.reported = groups.clone();
            m.repeat = Some((ROBUSTNESS - 1, now + UNSOLICITED_REPORT_INTERVAL));
            send.push(m.changes.clone());
        } else if let Some((n, at)) = m.repeat
            && now >= at
        {
            m.repeat = (n > 1).then_some((n - 1, now + UNSOLICITED_REPORT_INTERVAL));
            send.push(m.changes.clone());
        }
        if std::mem::take(&mut m.query) && !groups.is_empty() {
            send.push(groups.iter().map(|g| (RecordType::IsExclude, *g)).collect());
        }
        for records in send {
            self.mld_send(&records);
        }
    }

    fn mld_send(&mut self, records: &[(RecordType, Ipv6Addr)]) {
        // Section 5.2.13: from the link-local address, or :: before it is
        // ours.
        let src = if self.link_local_usable() {
            self.link_local
        } else {
            Ipv6Addr::UNSPECIFIED
        };
        let header = EthernetRepr {
            dst: MacAddr::from_ipv6_multicast(mld::ALL_MLDV2_ROUTERS),
            src: self.cfg.mac,
            ethertype: EtherType::Ipv6,
        };
        let mut f = self.frame_buffer(header, mld::report_len(records.len()));
        if mld::emit_report(&mut f[HEADER_LEN..], src, records).is_ok() {
            self.tx.push(f);
        }
    }
}
