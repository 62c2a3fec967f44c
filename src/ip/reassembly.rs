//! IPv4 and IPv6 fragment reassembly (RFC 791 section 3.2, RFC 815,
//! RFC 8200 section 4.5, RFC 5722).
//!
//! Owns: the fragments of datagrams in progress, their deadlines, and the
//! memory they hold. One [`Reassembler`] serves both families; a [`FragKey`]
//! says which.
//!
//! Must not touch: header bytes. The caller has parsed the IP header (and,
//! for IPv6, found the Fragment header) and hands in plain fields; it gets
//! back the upper-layer payload and the first fragment's header bytes as it
//! gave them, and rewrites lengths, flags and checksums itself. No clock:
//! time comes in as `now`.
//!
//! Storage is one buffer per fragment in a map sorted by offset, so a lone
//! fragment near offset 65,528 costs its own bytes, not 64 KiB, and overlap
//! checks look only at the two neighbours (RFC 815's hole list, kept
//! implicitly as the gaps between sorted, non-overlapping ranges).
//!
//! ```
//! use ustack::Instant;
//! use ustack::ip::{FragKey, Reassembler};
//!
//! let mut r = Reassembler::default();
//! let key = FragKey::V4 {
//!     src: [10, 77, 0, 1].into(),
//!     dst: [10, 77, 0, 2].into(),
//!     protocol: 17,
//!     ident: 0x1234,
//! };
//! let header = [0x45u8; 20];
//! let now = Instant::ZERO;
//! // The last fragment arrives first.
//! assert_eq!(r.insert(now, key, 8, false, b"89", &header), Ok(None));
//! let done = r.insert(now, key, 0, true, b"01234567", &header);
//! let done = done.unwrap().expect("complete");
//! assert_eq!(done.payload, b"0123456789");
//! assert_eq!(done.header, header);
//! ```

use core::fmt;
use core::ops::Bound;
use std::collections::{BTreeMap, VecDeque};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use crate::time::Instant;

/// The largest IPv4 Total Length and the largest IPv6 Payload Length.
pub const MAX_IP_LEN: usize = 65_535;

/// The IPv6 fixed header, which does not count toward Payload Length.
const IPV6_FIXED_HEADER_LEN: usize = 40;

/// Bytes charged per stored fragment on top of its data: the buffer's own
/// bookkeeping and its share of the map node. Without it a flood of 8-byte
/// fragments would hold several times the configured cap in real memory.
pub const FRAGMENT_OVERHEAD: usize = 64;

/// Bytes charged per datagram in progress, for its map entries and state.
pub const DATAGRAM_OVERHEAD: usize = 128;

/// What identifies the fragments of one datagram.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum FragKey {
    /// RFC 791 section 3.2: source, destination, protocol and identification.
    V4 {
        /// Source address.
        src: Ipv4Addr,
        /// Destination address.
        dst: Ipv4Addr,
        /// IP protocol number of the payload.
        protocol: u8,
        /// The 16-bit Identification.
        ident: u16,
    },
    /// RFC 8200 section 4.5: source, destination and identification.
    V6 {
        /// Source address.
        src: Ipv6Addr,
        /// Destination address.
        dst: Ipv6Addr,
        /// The Fragment header's 32-bit Identification.
        ident: u32,
    },
}

/// Limits of a [`Reassembler`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Cap on the bytes held: fragment data, first-fragment headers and the
    /// per-fragment and per-datagram overheads.
    pub max_bytes: usize,
    /// Cap on datagrams in progress.
    pub max_datagrams: usize,
    /// Time from a datagram's first fragment to its discard. RFC 791
    /// suggests 15 s as a lower bound; Linux uses 30 s (`ipfrag_time`).
    pub timeout_v4: Duration,
    /// RFC 8200 section 4.5: 60 seconds.
    pub timeout_v6: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_bytes: 4 * 1024 * 1024,
            max_datagrams: 256,
            timeout_v4: Duration::from_secs(30),
            timeout_v6: Duration::from_secs(60),
        }
    }
}

/// A datagram whose fragments have all arrived.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reassembled {
    /// The datagram this was.
    pub key: FragKey,
    /// The header of the fragment at offset 0, as the caller passed it.
    pub header: Vec<u8>,
    /// The whole upper-layer payload (for IPv6, the fragmentable part).
    pub payload: Vec<u8>,
}

/// The fragment at offset 0, kept so an ICMP error can quote it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FirstFragment {
    /// The header passed with the fragment at offset 0.
    pub header: Vec<u8>,
    /// The first fragment's data, whole; the caller truncates it to what
    /// its ICMP message carries (8 bytes for RFC 792, up to the 1280-byte
    /// minimum MTU for RFC 4443).
    pub payload: Vec<u8>,
}

/// A datagram that timed out before it was complete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expired {
    /// The datagram that timed out.
    pub key: FragKey,
    /// `Some` only if the first fragment had arrived: RFC 792 and RFC 8200
    /// section 4.5 send "fragment reassembly time exceeded" (code 1) only
    /// then.
    pub first: Option<FirstFragment>,
}

/// Why a fragment was not accepted. Variants marked "discards" also threw
/// away every fragment held for the datagram.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ReassemblyError {
    /// The offset is not a multiple of 8 bytes.
    MisalignedOffset,
    /// A fragment with More Fragments set whose length is not a multiple
    /// of 8. RFC 8200 section 4.5: ICMPv6 Parameter Problem, code 0,
    /// pointing at Payload Length.
    NotMultipleOf8,
    /// A fragment with More Fragments set and no data.
    Empty,
    /// Discards. The reassembled datagram would exceed 65,535 bytes.
    /// RFC 8200 section 4.5: Parameter Problem, code 0, pointing at the
    /// Fragment Offset field.
    Oversize,
    /// Discards. The fragment overlaps data held for the datagram without
    /// lying wholly inside it (RFC 5722; a fragment inside held data is a
    /// duplicate, as Linux takes it).
    Overlap,
    /// Discards. Data beyond the end a last fragment set, or a second last
    /// fragment that disagrees about the end.
    InconsistentEnd,
    /// The datagram cannot fit in the memory cap even alone (discards), or
    /// the datagram cap is zero.
    NoMemory,
}

impl fmt::Display for ReassemblyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReassemblyError::MisalignedOffset => "fragment offset not a multiple of 8",
            ReassemblyError::NotMultipleOf8 => "non-final fragment length not a multiple of 8",
            ReassemblyError::Empty => "non-final fragment without data",
            ReassemblyError::Oversize => "reassembled datagram would exceed 65535 bytes",
            ReassemblyError::Overlap => "overlapping fragment",
            ReassemblyError::InconsistentEnd => "fragment disagrees about the datagram's end",
            ReassemblyError::NoMemory => "reassembly memory exhausted",
        })
    }
}

impl std::error::Error for ReassemblyError {}

/// Counters, for observability and tests.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct ReassemblyStats {
    /// Fragments passed to `insert`, accepted or not.
    pub fragments_in: u64,
    /// Datagrams completed (atomic fragments included).
    pub reassembled: u64,
    /// Fragments lying wholly inside data already held (exact duplicates
    /// among them), ignored.
    pub duplicates: u64,
    /// Fragments overlapping held data (RFC 5722); the datagram was discarded.
    pub overlaps: u64,
    /// Fragments disagreeing about the datagram's end; the datagram was
    /// discarded.
    pub inconsistent: u64,
    /// Fragments with a misaligned offset, a non-final length not a multiple
    /// of 8, or no data.
    pub malformed: u64,
    /// Fragments that would have made a datagram exceed 65,535 bytes.
    pub oversize: u64,
    /// Datagrams that timed out.
    pub timeouts: u64,
    /// Datagrams (or parked expiry reports) evicted to make room.
    pub evictions: u64,
    /// Fragments refused for lack of memory.
    pub refused: u64,
}

struct Datagram {
    /// Creation order: the eviction victim is the smallest.
    seq: u64,
    deadline: Instant,
    /// Offset to data; ranges never overlap (any overlap discards).
    fragments: BTreeMap<usize, Vec<u8>>,
    /// Sum of data lengths. With no overlaps this is also the coverage, so
    /// the datagram is complete exactly when it equals the end.
    received: usize,
    /// Set by the fragment with More Fragments clear.
    end: Option<usize>,
    header: Option<Vec<u8>>,
    /// Bytes charged against `Config::max_bytes`.
    charged: usize,
}

impl Datagram {
    fn highest_end(&self) -> usize {
        self.fragments
            .last_key_value()
            .map_or(0, |(&offset, data)| offset + data.len())
    }
}

struct Pending {
    deadline: Instant,
    expired: Expired,
    charged: usize,
}

enum Verdict {
    Accept,
    Duplicate,
}

/// Reassembles IPv4 and IPv6 fragments, within limits of memory, count and
/// time.
pub struct Reassembler {
    config: Config,
    // BTreeMaps rather than HashMaps: deterministic, no hidden randomness
    // source, and the sizes are capped anyway.
    datagrams: BTreeMap<FragKey, Datagram>,
    by_age: BTreeMap<u64, FragKey>,
    by_deadline: BTreeMap<(Instant, u64), FragKey>,
    /// Datagrams found past their deadline by `insert` before
    /// `poll_expired` ran, with their deadline and the bytes they are
    /// charged; held so their ICMP report is not lost. Capped at
    /// `max_datagrams` entries, counted in `bytes_held`, and the first
    /// thing dropped when memory runs short.
    pending_expired: VecDeque<Pending>,
    next_seq: u64,
    bytes_held: usize,
    stats: ReassemblyStats,
}

impl Default for Reassembler {
    fn default() -> Reassembler {
        Reassembler::new(Config::default())
    }
}

impl Reassembler {
    /// A reassembler with the given limits, holding nothing.
    pub fn new(config: Config) -> Reassembler {
        Reassembler {
            config,
            datagrams: BTreeMap::new(),
            by_age: BTreeMap::new(),
            by_deadline: BTreeMap::new(),
            pending_expired: VecDeque::new(),
            next_seq: 0,
            bytes_held: 0,
            stats: ReassemblyStats::default(),
        }
    }

    /// The limits in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// A copy of the counters.
    pub fn stats(&self) -> ReassemblyStats {
        self.stats
    }

    /// Bytes currently charged against `Config::max_bytes`.
    pub fn bytes_held(&self) -> usize {
        self.bytes_held
    }

    /// Datagrams currently in progress.
    pub fn datagrams_in_progress(&self) -> usize {
        self.datagrams.len()
    }

    /// Takes one fragment.
    ///
    /// `offset` is in bytes (the header's field times 8). `payload` is the
    /// fragment's data after all headers. `header` is what the caller wants
    /// back with the reassembled datagram and quoted in ICMP errors: for
    /// IPv4 the IP header, for IPv6 the fixed header plus the unfragmentable
    /// extension headers (everything before the Fragment header). It is
    /// kept only from the fragment at offset 0, but every fragment's header
    /// length bounds its datagram's size.
    ///
    /// A fragment at offset 0 with More Fragments clear is returned whole at
    /// once without touching any datagram in progress (an RFC 6946 atomic
    /// fragment).
    ///
    /// Returns the datagram when this fragment completes it, `None` while it
    /// is incomplete or when the fragment was a duplicate (wholly inside held data).
    pub fn insert(
        &mut self,
        now: Instant,
        key: FragKey,
        offset: usize,
        more_fragments: bool,
        payload: &[u8],
        header: &[u8],
    ) -> Result<Option<Reassembled>, ReassemblyError> {
        self.stats.fragments_in += 1;
        let len = payload.len();

        if !offset.is_multiple_of(8) {
            self.stats.malformed += 1;
            return Err(ReassemblyError::MisalignedOffset);
        }
        if more_fragments && !len.is_multiple_of(8) {
            self.stats.malformed += 1;
            return Err(ReassemblyError::NotMultipleOf8);
        }
        if more_fragments && len == 0 {
            self.stats.malformed += 1;
            return Err(ReassemblyError::Empty);
        }

        self.expire_key_if_due(now, &key);

        let end = offset.saturating_add(len);
        if end > max_payload(&key, header.len()) {
            // The whole datagram goes: it can never be delivered, and its
            // other fragments would only sit in memory until the timeout.
            self.stats.oversize += 1;
            self.remove(&key);
            return Err(ReassemblyError::Oversize);
        }

        if offset == 0 && !more_fragments {
            self.stats.reassembled += 1;
            return Ok(Some(Reassembled {
                key,
                header: header.to_vec(),
                payload: payload.to_vec(),
            }));
        }

        let exists = match self.datagrams.get(&key) {
            Some(dg) => match check_against(dg, offset, end, more_fragments) {
                Ok(Verdict::Duplicate) => {
                    self.stats.duplicates += 1;
                    return Ok(None);
                }
                Ok(Verdict::Accept) => true,
                Err(e) => {
                    match e {
                        ReassemblyError::Overlap => self.stats.overlaps += 1,
                        _ => self.stats.inconsistent += 1,
                    }
                    self.remove(&key);
                    return Err(e);
                }
            },
            None => false,
        };

        // An empty last fragment only fixes the end; storing it would cost
        // overhead for no data.
        let mut needed = 0;
        if len > 0 {
            needed += len + FRAGMENT_OVERHEAD;
            if offset == 0 {
                needed += header.len();
            }
        }
        self.make_room(&key, exists, needed)?;
        if !exists {
            self.create(now, key);
        }

        let Some(dg) = self.datagrams.get_mut(&key) else {
            return Ok(None);
        };
        if len > 0 {
            if offset == 0 {
                dg.header = Some(header.to_vec());
            }
            dg.fragments.insert(offset, payload.to_vec());
            dg.received += len;
            dg.charged += needed;
            self.bytes_held += needed;
        }
        if !more_fragments {
            dg.end = Some(end);
        }
        if dg.end == Some(dg.received) {
            self.complete(&key)
        } else {
            Ok(None)
        }
    }

    /// Removes every datagram whose deadline is at or before `now` and
    /// reports it, oldest deadline first.
    pub fn poll_expired(&mut self, now: Instant) -> Vec<Expired> {
        let mut out = Vec::new();
        for p in self.pending_expired.drain(..) {
            self.bytes_held -= p.charged;
            out.push(p.expired);
        }
        while let Some((&(deadline, _), &key)) = self.by_deadline.first_key_value() {
            if deadline > now {
                break;
            }
            match self.expire(&key) {
                Some(expired) => out.push(expired),
                // Unreachable while the indexes agree; never loop on it.
                None => {
                    self.by_deadline.pop_first();
                }
            }
        }
        out
    }

    /// The earliest instant at which `poll_expired` has something to do.
    pub fn next_timeout(&self) -> Option<Instant> {
        let pending = self.pending_expired.iter().map(|p| p.deadline);
        let live = self
            .by_deadline
            .keys()
            .next()
            .map(|(deadline, _)| *deadline);
        pending.chain(live).min()
    }

    /// Frees memory and a datagram slot so that `needed` more bytes (and,
    /// unless `exists`, a new datagram) fit in the caps.
    ///
    /// When full, the oldest datagram gives way rather than the new one.
    /// Refusing new datagrams (as Linux does above `ipfrag_high_thresh`)
    /// lets an attacker who trickles incomplete datagrams at about
    /// cap / timeout (some 140 KB/s for 4 MiB and 30 s) shut out all
    /// fragmented traffic. Evicting the oldest makes them flush the whole
    /// cap within the few milliseconds a genuine datagram needs to
    /// complete, a far higher bar.
    fn make_room(
        &mut self,
        key: &FragKey,
        exists: bool,
        needed: usize,
    ) -> Result<(), ReassemblyError> {
        let current = match self.datagrams.get(key) {
            Some(dg) => dg.charged,
            None => DATAGRAM_OVERHEAD,
        };
        if current + needed > self.config.max_bytes {
            // Evicting others cannot help a datagram too big on its own.
            self.stats.refused += 1;
            self.remove(key);
            return Err(ReassemblyError::NoMemory);
        }
        let mut extra = needed;
        if !exists {
            if self.config.max_datagrams == 0 {
                self.stats.refused += 1;
                return Err(ReassemblyError::NoMemory);
            }
            while self.datagrams.len() >= self.config.max_datagrams && self.evict_oldest(None) {}
            extra += DATAGRAM_OVERHEAD;
        }
        let own_seq = self.datagrams.get(key).map(|dg| dg.seq);
        while self.bytes_held + extra > self.config.max_bytes {
            // Parked expiry reports go first: they only feed ICMP.
            if let Some(p) = self.pending_expired.pop_front() {
                self.bytes_held -= p.charged;
                self.stats.evictions += 1;
            } else if !self.evict_oldest(own_seq) {
                break;
            }
        }
        Ok(())
    }

    fn create(&mut self, now: Instant, key: FragKey) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let timeout = match key {
            FragKey::V4 { .. } => self.config.timeout_v4,
            FragKey::V6 { .. } => self.config.timeout_v6,
        };
        // RFC 791 would restart the timer at each fragment's TTL; like
        // Linux, the deadline is fixed at the first fragment, so a slow
        // trickle cannot keep a datagram alive forever.
        let deadline = now + timeout;
        self.by_age.insert(seq, key);
        self.by_deadline.insert((deadline, seq), key);
        self.datagrams.insert(
            key,
            Datagram {
                seq,
                deadline,
                fragments: BTreeMap::new(),
                received: 0,
                end: None,
                header: None,
                charged: DATAGRAM_OVERHEAD,
            },
        );
        self.bytes_held += DATAGRAM_OVERHEAD;
    }

    fn complete(&mut self, key: &FragKey) -> Result<Option<Reassembled>, ReassemblyError> {
        let Some(dg) = self.remove(key) else {
            return Ok(None);
        };
        let header = dg.header.unwrap_or_default();
        // Fragments after the first may carry shorter IPv4 headers (options
        // not copied), so only the first header settles the size.
        if dg.received > max_payload(key, header.len()) {
            self.stats.oversize += 1;
            return Err(ReassemblyError::Oversize);
        }
        let mut whole = Vec::with_capacity(dg.received);
        for data in dg.fragments.into_values() {
            whole.extend_from_slice(&data);
        }
        self.stats.reassembled += 1;
        Ok(Some(Reassembled {
            key: *key,
            header,
            payload: whole,
        }))
    }

    /// A fragment must not join a datagram whose time is up, even if the
    /// caller has not polled yet: move that datagram aside for reporting.
    fn expire_key_if_due(&mut self, now: Instant, key: &FragKey) {
        let due = self.datagrams.get(key).map(|dg| dg.deadline);
        if let Some(deadline) = due.filter(|d| *d <= now)
            && let Some(expired) = self.expire(key)
        {
            let cap = self.config.max_datagrams.max(1);
            while self.pending_expired.len() >= cap {
                if let Some(p) = self.pending_expired.pop_front() {
                    self.bytes_held -= p.charged;
                    self.stats.evictions += 1;
                }
            }
            // Never more than the datagram was charged, so the cap holds.
            let charged = DATAGRAM_OVERHEAD
                + expired
                    .first
                    .as_ref()
                    .map_or(0, |f| f.header.len() + f.payload.len() + FRAGMENT_OVERHEAD);
            self.bytes_held += charged;
            self.pending_expired.push_back(Pending {
                deadline,
                expired,
                charged,
            });
        }
    }

    fn expire(&mut self, key: &FragKey) -> Option<Expired> {
        let mut dg = self.remove(key)?;
        self.stats.timeouts += 1;
        let first = dg.header.take().map(|header| FirstFragment {
            header,
            payload: dg.fragments.remove(&0).unwrap_or_default(),
        });
        Some(Expired { key: *key, first })
    }

    /// Evicts the oldest datagram other than the one with sequence `spare`.
    /// Returns whether one was evicted.
    fn evict_oldest(&mut self, spare: Option<u64>) -> bool {
        let victim = self
            .by_age
            .iter()
            .find(|&(&seq, _)| Some(seq) != spare)
            .map(|(_, &key)| key);
        match victim {
            Some(key) => {
                self.remove(&key);
                self.stats.evictions += 1;
                true
            }
            None => false,
        }
    }

    fn remove(&mut self, key: &FragKey) -> Option<Datagram> {
        let dg = self.datagrams.remove(key)?;
        self.by_age.remove(&dg.seq);
        self.by_deadline.remove(&(dg.deadline, dg.seq));
        self.bytes_held -= dg.charged;
        Some(dg)
    }
}

/// The largest end offset a datagram with this header length may reach.
/// IPv4's Total Length counts the header (RFC 791 section 3.1); IPv6's
/// Payload Length counts the extension headers but not the fixed header
/// (RFC 8200 section 3).
fn max_payload(key: &FragKey, header_len: usize) -> usize {
    let counted = match key {
        FragKey::V4 { .. } => header_len,
        FragKey::V6 { .. } => header_len.saturating_sub(IPV6_FIXED_HEADER_LEN),
    };
    MAX_IP_LEN.saturating_sub(counted)
}

/// Checks a fragment `[offset, end)` against what a datagram already holds.
fn check_against(
    dg: &Datagram,
    offset: usize,
    end: usize,
    more_fragments: bool,
) -> Result<Verdict, ReassemblyError> {
    match dg.end {
        Some(known) if end > known || (!more_fragments && end != known) => {
            return Err(ReassemblyError::InconsistentEnd);
        }
        None if !more_fragments && dg.highest_end() > end => {
            return Err(ReassemblyError::InconsistentEnd);
        }
        _ => {}
    }
    if covered(dg, offset, end) {
        // RFC 5722 lets duplicates pass (they are what a retransmitting
        // link produces), and Linux (inet_frag_queue_insert, following
        // erratum 3089) takes any fragment lying wholly inside data it
        // holds for one: the held copy is kept, so the new bytes cannot
        // change what is delivered.
        return Ok(Verdict::Duplicate);
    }
    if let Some((&before, data)) = dg.fragments.range(..=offset).next_back() {
        let before_end = before + data.len();
        if before_end > offset {
            return Err(ReassemblyError::Overlap);
        }
    }
    if let Some((&after, _)) = dg
        .fragments
        .range((Bound::Excluded(offset), Bound::Unbounded))
        .next()
        && after < end
    {
        return Err(ReassemblyError::Overlap);
    }
    Ok(Verdict::Accept)
}

/// Whether held fragments cover `[offset, end)` without a gap.
fn covered(dg: &Datagram, offset: usize, end: usize) -> bool {
    let start = dg
        .fragments
        .range(..=offset)
        .next_back()
        .map_or(offset, |(&o, _)| o);
    let mut reach = offset;
    for (&o, data) in dg.fragments.range(start..end) {
        if o > reach {
            return false;
        }
        reach = reach.max(o + data.len());
        if reach >= end {
            return true;
        }
    }
    false
}

#[cfg(test)]
impl Reassembler {
    /// `bytes_held` recomputed from scratch, to check the running total.
    fn recount(&self) -> usize {
        let live: usize = self
            .datagrams
            .values()
            .map(|dg| {
                DATAGRAM_OVERHEAD
                    + dg.header.as_ref().map_or(0, Vec::len)
                    + dg.fragments
                        .values()
                        .map(|d| d.len() + FRAGMENT_OVERHEAD)
                        .sum::<usize>()
            })
            .sum();
        let pending: usize = self.pending_expired.iter().map(|p| p.charged).sum();
        live + pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const T0: Instant = Instant::ZERO;

    fn v4(ident: u16) -> FragKey {
        FragKey::V4 {
            src: Ipv4Addr::new(10, 77, 0, 1),
            dst: Ipv4Addr::new(10, 77, 0, 2),
            protocol: 17,
            ident,
        }
    }

    fn v6(ident: u32) -> FragKey {
        FragKey::V6 {
            src: "fd77::1".parse().unwrap(),
            dst: "fd77::2".parse().unwrap(),
            ident,
        }
    }

    fn header_for(key: &FragKey) -> Vec<u8> {
        match key {
            FragKey::V4 { .. } => vec![0x45; 20],
            FragKey::V6 { .. } => vec![0x60; 40],
        }
    }

    fn data(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    /// Cuts `payload` at the given 8-aligned points into
    /// (offset, more_fragments, bytes).
    fn split(payload: &[u8], cuts: &[usize]) -> Vec<(usize, bool, Vec<u8>)> {
        let mut points: Vec<usize> = cuts
            .iter()
            .map(|c| c / 8 * 8)
            .filter(|&c| c > 0 && c < payload.len())
            .collect();
        points.sort_unstable();
        points.dedup();
        let mut out = Vec::new();
        let mut start = 0;
        for end in points.into_iter().chain([payload.len()]) {
            out.push((start, end != payload.len(), payload[start..end].to_vec()));
            start = end;
        }
        out
    }

    fn feed(
        r: &mut Reassembler,
        now: Instant,
        key: FragKey,
        frag: &(usize, bool, Vec<u8>),
    ) -> Result<Option<Reassembled>, ReassemblyError> {
        r.insert(now, key, frag.0, frag.1, &frag.2, &header_for(&key))
    }

    fn permutations(n: usize) -> Vec<Vec<usize>> {
        if n == 0 {
            return vec![vec![]];
        }
        let mut out = Vec::new();
        for p in permutations(n - 1) {
            for i in 0..=p.len() {
                let mut q = p.clone();
                q.insert(i, n - 1);
                out.push(q);
            }
        }
        out
    }

    #[test]
    fn every_order_of_five_fragments_reassembles_byte_for_byte() {
        for key in [v4(7), v6(7)] {
            let payload = data(1000, 3);
            let frags = split(&payload, &[200, 400, 600, 800]);
            assert_eq!(frags.len(), 5);
            let orders = permutations(5);
            assert_eq!(orders.len(), 120);
            for order in orders {
                let mut r = Reassembler::default();
                let mut done = Vec::new();
                for (n, &i) in order.iter().enumerate() {
                    let out = feed(&mut r, T0, key, &frags[i]).unwrap();
                    if n < 4 {
                        assert!(out.is_none(), "completed early in order {order:?}");
                    } else {
                        done.push(out.expect("complete after the fifth fragment"));
                    }
                }
                assert_eq!(done[0].payload, payload, "order {order:?}");
                assert_eq!(done[0].header, header_for(&key));
                assert_eq!(done[0].key, key);
                assert_eq!(r.bytes_held(), 0);
                assert_eq!(r.datagrams_in_progress(), 0);
            }
        }
    }

    #[test]
    fn exact_duplicate_is_dropped_quietly_and_first_copy_kept() {
        let mut r = Reassembler::default();
        let key = v4(1);
        let payload = data(24, 0);
        assert_eq!(
            r.insert(T0, key, 0, true, &payload[..16], &[1; 20]),
            Ok(None)
        );
        // Same range, different bytes and header: still a duplicate.
        assert_eq!(r.insert(T0, key, 0, true, &[0xee; 16], &[2; 20]), Ok(None));
        assert_eq!(r.stats().duplicates, 1);
        let done = r
            .insert(T0, key, 16, false, &payload[16..], &[3; 20])
            .unwrap()
            .unwrap();
        assert_eq!(done.payload, payload);
        assert_eq!(done.header, vec![1; 20]);
    }

    #[test]
    fn partial_overlap_discards_the_whole_datagram() {
        let mut r = Reassembler::default();
        let key = v6(9);
        let payload = data(48, 1);
        feed(&mut r, T0, key, &(0, true, payload[..24].to_vec())).unwrap();
        let err = feed(&mut r, T0, key, &(16, true, payload[16..32].to_vec()));
        assert_eq!(err, Err(ReassemblyError::Overlap));
        assert_eq!(r.datagrams_in_progress(), 0);
        assert_eq!(r.bytes_held(), 0);
        assert_eq!(r.stats().overlaps, 1);
        // The rest starts a new datagram that lacks the discarded data.
        assert_eq!(
            feed(&mut r, T0, key, &(24, false, payload[24..].to_vec())),
            Ok(None)
        );
    }

    #[test]
    fn a_fragment_inside_held_data_is_a_duplicate_as_linux_takes_it() {
        // inet_frag_queue_insert (RFC 5722 erratum 3089): wholly inside
        // held data, even across two adjacent fragments, is a duplicate;
        // the held bytes are what is delivered.
        for key in [v4(4), v6(4)] {
            let payload = data(64, 5);
            let mut r = Reassembler::default();
            feed(&mut r, T0, key, &(0, true, payload[..24].to_vec())).unwrap();
            feed(&mut r, T0, key, &(24, true, payload[24..40].to_vec())).unwrap();
            assert_eq!(feed(&mut r, T0, key, &(8, true, vec![0xee; 8])), Ok(None));
            assert_eq!(feed(&mut r, T0, key, &(16, true, vec![0xee; 16])), Ok(None));
            assert_eq!(r.stats().duplicates, 2);
            let done = feed(&mut r, T0, key, &(40, false, payload[40..].to_vec()))
                .unwrap()
                .expect("complete");
            assert_eq!(done.payload, payload);
        }
    }

    #[test]
    fn a_fragment_over_a_gap_or_past_held_data_is_an_overlap() {
        let mut r = Reassembler::default();
        let key = v4(5);
        feed(&mut r, T0, key, &(0, true, vec![0; 16])).unwrap();
        feed(&mut r, T0, key, &(24, true, vec![0; 16])).unwrap();
        // Covers the held data's edges and the hole between.
        assert_eq!(
            feed(&mut r, T0, key, &(8, true, vec![0; 24])),
            Err(ReassemblyError::Overlap)
        );
        assert_eq!(r.datagrams_in_progress(), 0);
    }

    #[test]
    fn same_offset_with_other_length_is_a_duplicate_when_shorter_overlap_when_longer() {
        let mut r = Reassembler::default();
        let key = v4(2);
        feed(&mut r, T0, key, &(8, true, vec![0; 16])).unwrap();
        assert_eq!(feed(&mut r, T0, key, &(8, true, vec![0; 8])), Ok(None));
        assert_eq!(r.stats().duplicates, 1);
        assert_eq!(
            feed(&mut r, T0, key, &(8, true, vec![0; 24])),
            Err(ReassemblyError::Overlap)
        );
        feed(&mut r, T0, key, &(8, true, vec![0; 8])).unwrap();
        assert_eq!(
            feed(&mut r, T0, key, &(0, true, vec![0; 24])),
            Err(ReassemblyError::Overlap)
        );
        assert_eq!(r.stats().overlaps, 2);
    }

    #[test]
    fn fragment_beyond_a_known_end_discards() {
        let mut r = Reassembler::default();
        let key = v4(3);
        feed(&mut r, T0, key, &(16, false, vec![0; 10])).unwrap();
        assert_eq!(
            feed(&mut r, T0, key, &(24, true, vec![0; 8])),
            Err(ReassemblyError::InconsistentEnd)
        );
        assert_eq!(r.datagrams_in_progress(), 0);
        assert_eq!(r.stats().inconsistent, 1);
    }

    #[test]
    fn second_last_fragment_with_other_end_discards() {
        let mut r = Reassembler::default();
        let key = v6(3);
        feed(&mut r, T0, key, &(16, false, vec![0; 10])).unwrap();
        assert_eq!(
            feed(&mut r, T0, key, &(32, false, vec![0; 4])),
            Err(ReassemblyError::InconsistentEnd)
        );
        assert_eq!(r.datagrams_in_progress(), 0);
    }

    #[test]
    fn last_fragment_ending_before_held_data_discards() {
        let mut r = Reassembler::default();
        let key = v4(4);
        feed(&mut r, T0, key, &(32, true, vec![0; 8])).unwrap();
        assert_eq!(
            feed(&mut r, T0, key, &(8, false, vec![0; 8])),
            Err(ReassemblyError::InconsistentEnd)
        );
        assert_eq!(r.datagrams_in_progress(), 0);
    }

    #[test]
    fn malformed_fragments_are_errors_that_leave_the_datagram_intact() {
        let mut r = Reassembler::default();
        let key = v4(5);
        let payload = data(20, 9);
        feed(&mut r, T0, key, &(0, true, payload[..8].to_vec())).unwrap();
        assert_eq!(
            feed(&mut r, T0, key, &(8, true, vec![0; 7])),
            Err(ReassemblyError::NotMultipleOf8)
        );
        assert_eq!(
            feed(&mut r, T0, key, &(12, false, vec![0; 8])),
            Err(ReassemblyError::MisalignedOffset)
        );
        assert_eq!(
            feed(&mut r, T0, key, &(8, true, vec![])),
            Err(ReassemblyError::Empty)
        );
        assert_eq!(r.stats().malformed, 3);
        let done = feed(&mut r, T0, key, &(8, false, payload[8..].to_vec()))
            .unwrap()
            .unwrap();
        assert_eq!(done.payload, payload);
    }

    #[test]
    fn datagram_over_65535_bytes_is_discarded() {
        let mut r = Reassembler::default();
        let key = v4(6);
        feed(&mut r, T0, key, &(0, true, vec![0; 8])).unwrap();
        // 20 + 65512 + 8 = 65540 > 65535.
        assert_eq!(
            feed(&mut r, T0, key, &(65_512, false, vec![0; 8])),
            Err(ReassemblyError::Oversize)
        );
        assert_eq!(r.datagrams_in_progress(), 0);
        assert_eq!(r.stats().oversize, 1);
        // The same end is fine for IPv6, whose fixed header is not counted.
        let key = v6(6);
        feed(&mut r, T0, key, &(0, true, vec![0; 8])).unwrap();
        assert_eq!(
            feed(&mut r, T0, key, &(65_520, false, vec![0; 15])),
            Ok(None)
        );
        assert_eq!(
            feed(&mut r, T0, v6(7), &(65_520, false, vec![0; 16])),
            Err(ReassemblyError::Oversize)
        );
    }

    #[test]
    fn a_long_first_header_makes_the_datagram_oversize_at_completion() {
        let mut r = Reassembler::default();
        let key = v4(9);
        // 20 + 65512 fits, but the first fragment's 60-byte header does not.
        r.insert(T0, key, 65_504, false, &[0; 8], &[0x46; 20])
            .unwrap();
        r.insert(T0, key, 0, true, &vec![0; 65_504], &[0x4f; 60])
            .map(|_| ())
            .unwrap_err();
        assert_eq!(r.stats().oversize, 1);
        assert_eq!(r.stats().reassembled, 0);
        assert_eq!(r.bytes_held(), 0);
    }

    #[test]
    fn a_datagram_of_exactly_65535_bytes_reassembles() {
        let mut r = Reassembler::default();
        let key = v4(8);
        let payload = data(65_535 - 20, 4);
        let frags = split(&payload, &(1..45).map(|i| i * 1480).collect::<Vec<_>>());
        let mut out = None;
        for f in frags.iter().rev() {
            out = feed(&mut r, T0, key, f).unwrap();
        }
        assert_eq!(out.unwrap().payload, payload);
    }

    #[test]
    fn atomic_fragment_is_returned_without_touching_datagrams_in_progress() {
        let mut r = Reassembler::default();
        let key = v6(10);
        feed(&mut r, T0, key, &(8, false, vec![1; 8])).unwrap();
        let done = feed(&mut r, T0, key, &(0, false, vec![2; 5]))
            .unwrap()
            .unwrap();
        assert_eq!(done.payload, vec![2; 5]);
        assert_eq!(r.datagrams_in_progress(), 1);
        let done = feed(&mut r, T0, key, &(0, true, vec![3; 8]))
            .unwrap()
            .unwrap();
        assert_eq!(done.payload, [[3; 8], [1; 8]].concat());
    }

    #[test]
    fn keys_that_differ_in_protocol_or_ident_do_not_mix() {
        let mut r = Reassembler::default();
        let a = v4(11);
        let FragKey::V4 {
            src, dst, ident, ..
        } = a
        else {
            unreachable!()
        };
        let b = FragKey::V4 {
            src,
            dst,
            protocol: 6,
            ident,
        };
        feed(&mut r, T0, a, &(0, true, vec![1; 8])).unwrap();
        assert_eq!(feed(&mut r, T0, b, &(8, false, vec![2; 8])), Ok(None));
        assert_eq!(feed(&mut r, T0, v4(12), &(8, false, vec![2; 8])), Ok(None));
        assert_eq!(r.datagrams_in_progress(), 3);
    }

    #[test]
    fn memory_cap_holds_under_a_flood_of_incomplete_datagrams() {
        let cap = 64 * 1024;
        let mut r = Reassembler::new(Config {
            max_bytes: cap,
            max_datagrams: 10_000,
            ..Config::default()
        });
        for i in 0..5_000u32 {
            let key = v6(i);
            feed(&mut r, T0, key, &(0, true, vec![0; 1400])).unwrap();
            feed(&mut r, T0, key, &(2800, true, vec![0; 8])).unwrap();
            assert!(r.bytes_held() <= cap, "held {} > {cap}", r.bytes_held());
        }
        assert_eq!(r.bytes_held(), r.recount());
        assert!(r.stats().evictions > 4_900);
        assert!(r.datagrams_in_progress() < 50);
        // A genuine datagram still gets through the flood: eviction takes
        // the oldest, not the newcomer.
        let payload = data(2000, 5);
        let mut out = None;
        for f in split(&payload, &[1000]) {
            out = feed(&mut r, T0, v4(1), &f).unwrap();
            feed(&mut r, T0, v6(99_999), &(0, true, vec![0; 1400])).ok();
        }
        assert_eq!(out.unwrap().payload, payload);
        assert!(r.bytes_held() <= cap);
    }

    #[test]
    fn tiny_fragments_are_charged_their_overhead() {
        let mut r = Reassembler::default();
        feed(&mut r, T0, v4(1), &(8, true, vec![0; 8])).unwrap();
        assert_eq!(r.bytes_held(), DATAGRAM_OVERHEAD + FRAGMENT_OVERHEAD + 8);
        feed(&mut r, T0, v4(1), &(0, true, vec![0; 8])).unwrap();
        assert_eq!(
            r.bytes_held(),
            DATAGRAM_OVERHEAD + 2 * (FRAGMENT_OVERHEAD + 8) + 20
        );
    }

    #[test]
    fn datagram_count_cap_evicts_the_oldest() {
        let mut r = Reassembler::new(Config {
            max_datagrams: 4,
            ..Config::default()
        });
        for i in 0..5 {
            feed(&mut r, T0, v4(i), &(0, true, vec![i as u8; 8])).unwrap();
            assert!(r.datagrams_in_progress() <= 4);
        }
        assert_eq!(r.stats().evictions, 1);
        for i in 1..5u16 {
            let done = feed(&mut r, T0, v4(i), &(8, false, vec![9; 8]));
            assert!(matches!(done, Ok(Some(_))), "datagram {i}: {done:?}");
        }
        // Datagram 0 was evicted: its last fragment starts a new one.
        assert_eq!(feed(&mut r, T0, v4(0), &(8, false, vec![9; 8])), Ok(None));
        assert_eq!(r.datagrams_in_progress(), 1);
    }

    #[test]
    fn datagram_too_big_for_the_cap_alone_is_refused_without_evicting_others() {
        let mut r = Reassembler::new(Config {
            max_bytes: 4096,
            ..Config::default()
        });
        feed(&mut r, T0, v4(1), &(0, true, vec![0; 1000])).unwrap();
        feed(&mut r, T0, v4(2), &(0, true, vec![0; 2000])).unwrap();
        assert_eq!(
            feed(&mut r, T0, v4(2), &(2000, true, vec![0; 2000])),
            Err(ReassemblyError::NoMemory)
        );
        assert_eq!(r.datagrams_in_progress(), 1);
        assert_eq!(r.stats().evictions, 0);
        assert_eq!(r.stats().refused, 1);
        assert!(r.bytes_held() <= 4096);
    }

    #[test]
    fn zero_datagram_cap_refuses_everything_but_atomic_fragments() {
        let mut r = Reassembler::new(Config {
            max_datagrams: 0,
            ..Config::default()
        });
        assert_eq!(
            feed(&mut r, T0, v4(1), &(0, true, vec![0; 8])),
            Err(ReassemblyError::NoMemory)
        );
        assert!(matches!(
            feed(&mut r, T0, v4(1), &(0, false, vec![0; 8])),
            Ok(Some(_))
        ));
        assert_eq!(r.bytes_held(), 0);
    }

    #[test]
    fn ipv4_times_out_at_30_s_and_reports_the_first_fragment() {
        let mut r = Reassembler::default();
        let t = Instant::from_millis(1_000);
        r.insert(t, v4(1), 0, true, &[7; 16], &[0x45; 20]).unwrap();
        r.insert(t, v4(1), 24, true, &[8; 8], &[0x45; 20]).unwrap();
        assert_eq!(r.next_timeout(), Some(Instant::from_millis(31_000)));
        assert!(r.poll_expired(Instant::from_millis(30_999)).is_empty());
        let expired = r.poll_expired(Instant::from_millis(31_000));
        assert_eq!(
            expired,
            vec![Expired {
                key: v4(1),
                first: Some(FirstFragment {
                    header: vec![0x45; 20],
                    payload: vec![7; 16],
                }),
            }]
        );
        assert_eq!(r.stats().timeouts, 1);
        assert_eq!(r.bytes_held(), 0);
        assert_eq!(r.next_timeout(), None);
    }

    #[test]
    fn ipv6_times_out_at_60_s_without_a_report_if_the_first_fragment_never_came() {
        let mut r = Reassembler::default();
        feed(&mut r, T0, v6(1), &(8, true, vec![0; 8])).unwrap();
        feed(
            &mut r,
            Instant::from_millis(10),
            v4(2),
            &(8, true, vec![0; 8]),
        )
        .unwrap();
        assert_eq!(r.next_timeout(), Some(Instant::from_millis(30_010)));
        let expired = r.poll_expired(Instant::from_millis(30_010));
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].key, v4(2));
        assert_eq!(r.next_timeout(), Some(Instant::from_millis(60_000)));
        assert!(r.poll_expired(Instant::from_millis(59_999)).is_empty());
        let expired = r.poll_expired(Instant::from_millis(60_000));
        assert_eq!(
            expired,
            vec![Expired {
                key: v6(1),
                first: None
            }]
        );
    }

    #[test]
    fn fragment_after_the_deadline_starts_afresh_and_the_old_datagram_is_reported() {
        let mut r = Reassembler::default();
        feed(&mut r, T0, v4(1), &(0, true, vec![1; 8])).unwrap();
        let late = Instant::from_millis(30_000);
        assert_eq!(feed(&mut r, late, v4(1), &(8, false, vec![2; 8])), Ok(None));
        assert_eq!(r.next_timeout(), Some(T0 + Duration::from_secs(30)));
        let expired = r.poll_expired(late);
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].first.as_ref().unwrap().payload, vec![1; 8]);
        assert_eq!(r.datagrams_in_progress(), 1);
        assert_eq!(r.next_timeout(), Some(late + Duration::from_secs(30)));
    }

    #[test]
    fn unpolled_expired_reports_are_dropped_first_under_memory_pressure() {
        let mut r = Reassembler::new(Config {
            max_bytes: 8 * 1024,
            ..Config::default()
        });
        feed(&mut r, T0, v4(1), &(0, true, vec![1; 2000])).unwrap();
        let late = T0 + Duration::from_secs(31);
        // Meets the expired datagram: its report is parked, still charged.
        feed(&mut r, late, v4(1), &(2000, true, vec![2; 2000])).unwrap();
        assert_eq!(r.bytes_held(), r.recount());
        assert!(r.bytes_held() > 4000);
        // A newer datagram needs room: the parked report goes, not v4(1).
        feed(&mut r, late, v4(2), &(0, true, vec![3; 4000])).unwrap();
        assert_eq!(r.stats().evictions, 1);
        assert_eq!(r.datagrams_in_progress(), 2);
        assert!(r.poll_expired(late).is_empty());
        assert!(r.bytes_held() <= 8 * 1024);
        assert_eq!(r.bytes_held(), r.recount());
    }

    proptest! {
        #[test]
        fn random_splits_orders_and_duplicates_reassemble_byte_for_byte(
            len in 1usize..4000,
            cuts in proptest::collection::vec(0usize..4000, 0..20),
            order_seed in proptest::collection::vec(any::<u32>(), 40),
            dups in proptest::collection::vec(any::<prop::sample::Index>(), 0..10),
            ipv6 in any::<bool>(),
        ) {
            let key = if ipv6 { v6(42) } else { v4(42) };
            let payload = data(len, 7);
            let frags = split(&payload, &cuts);
            let mut sends: Vec<usize> = (0..frags.len()).collect();
            sends.extend(dups.iter().map(|d| d.index(frags.len())));
            // Deterministic shuffle driven by the generated seeds.
            for i in (1..sends.len()).rev() {
                let j = order_seed[i % order_seed.len()] as usize % (i + 1);
                sends.swap(i, j);
            }
            let mut r = Reassembler::default();
            let mut done = Vec::new();
            for &i in &sends {
                if let Some(d) = feed(&mut r, T0, key, &frags[i]).unwrap() {
                    done.push(d);
                }
            }
            // Duplicates after completion start a new datagram, so check
            // only that the first completion is exact.
            prop_assert!(!done.is_empty());
            prop_assert_eq!(&done[0].payload, &payload);
            prop_assert_eq!(r.stats().overlaps, 0);
        }

        #[test]
        fn arbitrary_fragments_never_break_the_caps(
            frags in proptest::collection::vec(
                (0u32..6, prop_oneof![0usize..70_000, (0usize..40).prop_map(|o| o * 8)], any::<bool>(), 0usize..3000, 0usize..80, 0u64..200_000),
                1..200,
            ),
        ) {
            let config = Config {
                max_bytes: 16 * 1024,
                max_datagrams: 4,
                ..Config::default()
            };
            let mut r = Reassembler::new(config.clone());
            let mut now = T0;
            for (ident, offset, mf, len, hlen, dt) in frags {
                now += Duration::from_millis(dt);
                // Polling only sometimes leaves late fragments to meet
                // datagrams whose deadline has passed.
                if dt % 3 == 0 {
                    r.poll_expired(now);
                }
                let key = if ident % 2 == 0 { v4(ident as u16) } else { v6(ident) };
                let res = r.insert(now, key, offset, mf, &vec![0xab; len], &vec![0; hlen]);
                if let Ok(Some(d)) = res {
                    prop_assert!(d.payload.len() <= MAX_IP_LEN);
                }
                prop_assert!(r.bytes_held() <= config.max_bytes);
                prop_assert!(r.datagrams_in_progress() <= config.max_datagrams);
                prop_assert!(r.pending_expired.len() <= config.max_datagrams);
                prop_assert_eq!(r.bytes_held(), r.recount());
            }
            r.poll_expired(now + Duration::from_secs(61));
            prop_assert_eq!(r.bytes_held(), 0);
            prop_assert_eq!(r.next_timeout(), None);
        }
    }
}
