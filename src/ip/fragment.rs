//! Fragmentation on send: a pure planner that says where to cut, and the
//! generator of Identification values.
//!
//! Owns: the per-destination identification counters.
//!
//! Must not touch: packet bytes. The planner yields offsets and lengths; the
//! caller copies payload slices and emits each fragment's header through
//! `wire` (IPv4 with MF and the offset in 8-byte units, RFC 791 section 3.2;
//! IPv6 with a Fragment header after the unfragmentable part, RFC 8200
//! section 4.5).

use core::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::{Ipv4Addr, Ipv6Addr};

use super::reassembly::MAX_IP_LEN;

/// RFC 791 section 3.2: every IPv4 module must forward a 68-byte datagram.
pub const IPV4_MIN_MTU: usize = 68;
/// RFC 8200 section 5.
pub const IPV6_MIN_MTU: usize = 1280;
/// The IPv4 header without options (RFC 791 section 3.1).
pub const IPV4_MIN_HEADER_LEN: usize = 20;
/// The IPv4 header with the most options (IHL 15).
pub const IPV4_MAX_HEADER_LEN: usize = 60;
/// The IPv6 fixed header (RFC 8200 section 3).
pub const IPV6_HEADER_LEN: usize = 40;
/// RFC 8200 section 4.5: the Fragment header that every fragment carries.
pub const IPV6_FRAGMENT_HEADER_LEN: usize = 8;

/// Which IP version a datagram to plan is.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum IpVersion {
    /// IPv4: fragments carry the IP header (options included) each.
    V4,
    /// IPv6: fragments carry the unfragmentable part plus a Fragment header.
    V6,
}

/// One fragment to send: `len` payload bytes starting at `offset`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct FragmentSpec {
    /// Where this fragment's data starts in the payload, in bytes; a multiple
    /// of 8.
    pub offset: usize,
    /// This fragment's data length in bytes.
    pub len: usize,
    /// Whether more fragments follow (the MF flag, or the IPv6 M flag).
    pub more_fragments: bool,
}

/// Why [`plan`] cannot fragment a datagram.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FragmentError {
    /// The MTU is below the protocol's minimum (68 for IPv4, 1280 for IPv6).
    MtuBelowMinimum,
    /// The headers leave room for less than 8 bytes of data per fragment.
    MtuTooSmall,
    /// The datagram would exceed 65,535 bytes (IPv4 Total Length, or IPv6
    /// Payload Length); it needs a jumbogram, which this stack does not do.
    TooLarge,
    /// The header length is impossible for the version (IPv4 20..=60,
    /// IPv6 at least 40).
    BadHeaderLength,
}

impl fmt::Display for FragmentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FragmentError::MtuBelowMinimum => "MTU below the protocol minimum",
            FragmentError::MtuTooSmall => "MTU leaves no room for 8 bytes of data",
            FragmentError::TooLarge => "datagram exceeds 65535 bytes",
            FragmentError::BadHeaderLength => "impossible header length",
        })
    }
}

impl std::error::Error for FragmentError {}

/// The fragments of one datagram, in offset order. An iterator of
/// [`FragmentSpec`]; a datagram that fits the MTU yields one spec covering
/// all of it with `more_fragments` clear, to be sent unfragmented.
#[derive(Clone, Debug)]
pub struct FragmentPlan {
    payload_len: usize,
    /// Data bytes per fragment, a multiple of 8 when fragmenting.
    chunk: usize,
    next_offset: usize,
    finished: bool,
    fragmented: bool,
}

impl FragmentPlan {
    /// Whether the datagram must be fragmented at all. For IPv4 with DF set
    /// this is the "fragmentation needed" case; for IPv6 it says a Fragment
    /// header is needed.
    pub fn is_fragmented(&self) -> bool {
        self.fragmented
    }

    /// The most data bytes any fragment carries.
    pub fn max_fragment_payload(&self) -> usize {
        self.chunk
    }
}

impl Iterator for FragmentPlan {
    type Item = FragmentSpec;

    fn next(&mut self) -> Option<FragmentSpec> {
        if self.finished {
            return None;
        }
        let offset = self.next_offset;
        let len = self.chunk.min(self.payload_len - offset);
        let more_fragments = offset + len < self.payload_len;
        self.next_offset = offset + len;
        self.finished = !more_fragments;
        Some(FragmentSpec {
            offset,
            len,
            more_fragments,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = if self.finished {
            0
        } else {
            match self.payload_len - self.next_offset {
                // An empty datagram is still one (empty) piece.
                0 => 1,
                left => left.div_ceil(self.chunk),
            }
        };
        (n, Some(n))
    }
}

impl ExactSizeIterator for FragmentPlan {}

/// Plans the fragments of a datagram.
///
/// `header_len` is, for IPv4, the IP header with options; for IPv6, the
/// fixed header plus the unfragmentable extension headers, without the
/// Fragment header, which this function adds. `payload_len` is what follows
/// (for IPv6, the fragmentable part). Every fragment, headers included, fits
/// in `mtu`, and every fragment but the last carries a multiple of 8 bytes.
///
/// IPv4 options whose copy flag is clear go only in the first fragment
/// (RFC 791 section 3.1), so later headers may be shorter; planning every
/// fragment with the first one's length wastes at most a few bytes and
/// keeps the plan one number.
///
/// ```
/// use ustack::ip::{FragmentError, IpVersion, plan};
///
/// // 4000 bytes of UDP over IPv4 on a 1500-byte link: 1480 + 1480 + 1040.
/// let p = plan(IpVersion::V4, 20, 4000, 1500)?;
/// assert!(p.is_fragmented());
/// let pieces: Vec<_> = p.map(|f| (f.offset, f.len, f.more_fragments)).collect();
/// assert_eq!(pieces, [(0, 1480, true), (1480, 1480, true), (2960, 1040, false)]);
///
/// // IPv6 fragments also carry an 8-byte Fragment header: 1500 - 48 = 1452,
/// // rounded down to 1448.
/// assert_eq!(plan(IpVersion::V6, 40, 3000, 1500)?.max_fragment_payload(), 1448);
///
/// // What fits is one unfragmented piece.
/// let p = plan(IpVersion::V4, 20, 1480, 1500)?;
/// assert!(!p.is_fragmented());
/// assert_eq!(p.len(), 1);
///
/// assert_eq!(plan(IpVersion::V6, 40, 100, 1000).unwrap_err(), FragmentError::MtuBelowMinimum);
/// assert_eq!(plan(IpVersion::V4, 20, 65_516, 1500).unwrap_err(), FragmentError::TooLarge);
/// # Ok::<(), FragmentError>(())
/// ```
pub fn plan(
    version: IpVersion,
    header_len: usize,
    payload_len: usize,
    mtu: usize,
) -> Result<FragmentPlan, FragmentError> {
    let (min_mtu, header_ok, counted_header, per_fragment_header) = match version {
        IpVersion::V4 => (
            IPV4_MIN_MTU,
            (IPV4_MIN_HEADER_LEN..=IPV4_MAX_HEADER_LEN).contains(&header_len),
            header_len,
            header_len,
        ),
        IpVersion::V6 => (
            IPV6_MIN_MTU,
            header_len >= IPV6_HEADER_LEN,
            header_len.saturating_sub(IPV6_HEADER_LEN),
            header_len.saturating_add(IPV6_FRAGMENT_HEADER_LEN),
        ),
    };
    if !header_ok {
        return Err(FragmentError::BadHeaderLength);
    }
    if mtu < min_mtu {
        return Err(FragmentError::MtuBelowMinimum);
    }
    if counted_header.saturating_add(payload_len) > MAX_IP_LEN {
        return Err(FragmentError::TooLarge);
    }
    if header_len.saturating_add(payload_len) <= mtu {
        return Ok(FragmentPlan {
            payload_len,
            chunk: payload_len,
            next_offset: 0,
            finished: false,
            fragmented: false,
        });
    }
    let chunk = mtu.saturating_sub(per_fragment_header) / 8 * 8;
    if chunk == 0 {
        return Err(FragmentError::MtuTooSmall);
    }
    Ok(FragmentPlan {
        payload_len,
        chunk,
        next_offset: 0,
        finished: false,
        fragmented: true,
    })
}

/// Number of counters in the identification table.
const ID_BUCKETS: usize = 4096;

/// Generates Identification values that do not repeat quickly for any
/// destination and cannot be predicted by a third party.
///
/// The scheme is the hash-indexed counter table discussed in RFC 7739
/// section 5 (and used by Linux): a keyed hash of (source, destination)
/// picks one of 4096 counters, a second keyed hash gives a per-pair
/// offset, and the value is offset + counter, the counter then stepping by
/// one. So a given destination sees consecutive values, which cannot repeat
/// before 2^16 (IPv4) or 2^32 (IPv6) datagrams have gone to its bucket,
/// while an observer of one destination learns nothing about the traffic
/// to another (unless they share a bucket) and a global counter's leak of
/// the host's packet rate is avoided (RFC 7739 section 3).
///
/// The secret must come from a random source at start-up; this type reads
/// none itself (sans-IO). The hash is std's SipHash, keyed by prefixing
/// the secret: strong enough against off-path guessing, which is all an
/// Identification needs.
///
/// ```
/// use std::net::Ipv4Addr;
/// use ustack::ip::IdGenerator;
///
/// let (a, b) = (Ipv4Addr::new(10, 77, 0, 2), Ipv4Addr::new(10, 77, 0, 1));
/// let mut ids = IdGenerator::new(0x5eed);
/// let first = ids.next_v4(a, b);
/// // One destination sees consecutive values.
/// assert_eq!(ids.next_v4(a, b), first.wrapping_add(1));
/// // The same secret gives the same sequence.
/// assert_eq!(IdGenerator::new(0x5eed).next_v4(a, b), first);
/// ```
#[derive(Clone)]
pub struct IdGenerator {
    secret: u128,
    counters: Vec<u32>,
}

impl fmt::Debug for IdGenerator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdGenerator").finish_non_exhaustive()
    }
}

impl IdGenerator {
    /// A generator keyed by `secret`, which should come from a random source
    /// (e.g. [`crate::rand`]); every counter starts at zero.
    pub fn new(secret: u128) -> IdGenerator {
        IdGenerator {
            secret,
            counters: vec![0; ID_BUCKETS],
        }
    }

    /// The next IPv4 Identification for a datagram from `src` to `dst`.
    pub fn next_v4(&mut self, src: Ipv4Addr, dst: Ipv4Addr) -> u16 {
        // Truncation is the point: the low 16 bits of a per-destination
        // sequence are themselves a sequence modulo 2^16.
        self.next((4u8, src, dst)) as u16
    }

    /// The next IPv6 Fragment header Identification from `src` to `dst`.
    pub fn next_v6(&mut self, src: Ipv6Addr, dst: Ipv6Addr) -> u32 {
        self.next((6u8, src, dst))
    }

    fn next(&mut self, pair: impl Hash + Copy) -> u32 {
        let bucket = self.keyed_hash(0, pair) as usize % ID_BUCKETS;
        let offset = self.keyed_hash(1, pair) as u32;
        let counter = &mut self.counters[bucket];
        let id = offset.wrapping_add(*counter);
        *counter = counter.wrapping_add(1);
        id
    }

    fn keyed_hash(&self, domain: u8, pair: impl Hash) -> u64 {
        let mut h = DefaultHasher::new();
        self.secret.hash(&mut h);
        domain.hash(&mut h);
        pair.hash(&mut h);
        h.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ip::reassembly::{FragKey, Reassembler};
    use crate::time::Instant;
    use proptest::prelude::*;
    use std::collections::HashSet;

    fn specs(p: FragmentPlan) -> Vec<(usize, usize, bool)> {
        p.map(|s| (s.offset, s.len, s.more_fragments)).collect()
    }

    #[test]
    fn ipv4_datagram_of_4000_bytes_splits_into_1480_byte_fragments_at_mtu_1500() {
        let p = plan(IpVersion::V4, 20, 4000, 1500).unwrap();
        assert!(p.is_fragmented());
        assert_eq!(p.len(), 3);
        assert_eq!(
            specs(p),
            vec![(0, 1480, true), (1480, 1480, true), (2960, 1040, false)]
        );
    }

    #[test]
    fn ipv6_fragments_leave_room_for_the_fragment_header() {
        // 1500 - 40 - 8 = 1452, rounded down to 1448.
        let p = plan(IpVersion::V6, 40, 3000, 1500).unwrap();
        assert_eq!(p.max_fragment_payload(), 1448);
        assert_eq!(
            specs(p),
            vec![(0, 1448, true), (1448, 1448, true), (2896, 104, false)]
        );
    }

    #[test]
    fn datagram_that_fits_is_one_unfragmented_piece() {
        let p = plan(IpVersion::V4, 20, 1480, 1500).unwrap();
        assert!(!p.is_fragmented());
        assert_eq!(specs(p), vec![(0, 1480, false)]);
        let p = plan(IpVersion::V6, 40, 0, 1280).unwrap();
        assert_eq!(specs(p), vec![(0, 0, false)]);
        // One byte more needs fragments.
        assert!(plan(IpVersion::V4, 20, 1481, 1500).unwrap().is_fragmented());
    }

    #[test]
    fn minimum_mtus_are_enforced() {
        assert_eq!(
            plan(IpVersion::V4, 20, 100, 67).unwrap_err(),
            FragmentError::MtuBelowMinimum
        );
        // 68 - 60 leaves exactly 8 bytes.
        let p = plan(IpVersion::V4, 60, 100, 68).unwrap();
        assert_eq!(p.max_fragment_payload(), 8);
        assert_eq!(p.len(), 13);
        assert_eq!(
            plan(IpVersion::V6, 40, 2000, 1279).unwrap_err(),
            FragmentError::MtuBelowMinimum
        );
        // Unfragmentable headers can eat the whole MTU.
        assert_eq!(
            plan(IpVersion::V6, 1275, 2000, 1280).unwrap_err(),
            FragmentError::MtuTooSmall
        );
    }

    #[test]
    fn oversize_datagrams_and_bad_headers_are_refused() {
        assert_eq!(
            plan(IpVersion::V4, 20, 65_516, 1500).unwrap_err(),
            FragmentError::TooLarge
        );
        assert!(plan(IpVersion::V4, 20, 65_515, 1500).is_ok());
        assert!(plan(IpVersion::V6, 40, 65_535, 1500).is_ok());
        assert_eq!(
            plan(IpVersion::V6, 48, 65_535, 1500).unwrap_err(),
            FragmentError::TooLarge
        );
        assert_eq!(
            plan(IpVersion::V4, 19, 10, 1500).unwrap_err(),
            FragmentError::BadHeaderLength
        );
        assert_eq!(
            plan(IpVersion::V4, 64, 10, 1500).unwrap_err(),
            FragmentError::BadHeaderLength
        );
        assert_eq!(
            plan(IpVersion::V6, 39, 10, 1500).unwrap_err(),
            FragmentError::BadHeaderLength
        );
    }

    #[test]
    fn ipv4_ids_to_one_destination_do_not_repeat_within_65536() {
        let mut g = IdGenerator::new(0x1234_5678_9abc_def0_0fed_cba9_8765_4321);
        let src = Ipv4Addr::new(10, 77, 0, 2);
        let dst = Ipv4Addr::new(10, 77, 0, 1);
        let ids: HashSet<u16> = (0..65_536).map(|_| g.next_v4(src, dst)).collect();
        assert_eq!(ids.len(), 65_536);
    }

    #[test]
    fn ids_depend_on_the_secret_and_the_destination() {
        let src = Ipv6Addr::LOCALHOST;
        let a: Ipv6Addr = "fd77::1".parse().unwrap();
        let b: Ipv6Addr = "fd77::3".parse().unwrap();
        let first_ids: HashSet<u32> = (0..8u128)
            .map(|s| IdGenerator::new(s).next_v6(src, a))
            .collect();
        assert_eq!(first_ids.len(), 8);
        let mut g = IdGenerator::new(99);
        assert_ne!(g.next_v6(src, a), g.next_v6(src, b));
    }

    #[test]
    fn traffic_to_one_destination_does_not_advance_another() {
        let src = Ipv4Addr::new(10, 0, 0, 1);
        let a = Ipv4Addr::new(192, 0, 2, 1);
        let mut fresh = IdGenerator::new(7);
        let mut busy = IdGenerator::new(7);
        // Find a destination whose bucket differs from a's.
        let b = (2..=255)
            .map(|i| Ipv4Addr::new(192, 0, 2, i))
            .find(|&b| {
                fresh.keyed_hash(0, (4u8, src, b)) as usize % ID_BUCKETS
                    != fresh.keyed_hash(0, (4u8, src, a)) as usize % ID_BUCKETS
            })
            .unwrap();
        for _ in 0..1000 {
            busy.next_v4(src, a);
        }
        assert_eq!(busy.next_v4(src, b), fresh.next_v4(src, b));
        assert_eq!(
            busy.next_v4(src, a),
            fresh.next_v4(src, a).wrapping_add(1000)
        );
    }

    proptest! {
        #[test]
        fn every_plan_fits_the_mtu_and_round_trips_through_the_reassembler(
            ipv6 in any::<bool>(),
            extra_header in 0usize..5,
            payload_len in 0usize..66_000,
            mtu in 68usize..9000,
        ) {
            let (version, header_len, mtu) = if ipv6 {
                (IpVersion::V6, 40 + 8 * extra_header, mtu.max(1280))
            } else {
                (IpVersion::V4, 20 + 4 * extra_header, mtu)
            };
            let p = match plan(version, header_len, payload_len, mtu) {
                Ok(p) => p,
                Err(e) => {
                    let counted = if ipv6 { header_len - 40 } else { header_len };
                    prop_assert_eq!(e, FragmentError::TooLarge);
                    prop_assert!(counted + payload_len > MAX_IP_LEN);
                    return Ok(());
                }
            };
            let fragmented = p.is_fragmented();
            let expected = p.len();
            let pieces: Vec<FragmentSpec> = p.collect();
            prop_assert_eq!(pieces.len(), expected);
            let payload: Vec<u8> = (0..payload_len).map(|i| (i * 7 + i / 256) as u8).collect();
            let key = if ipv6 {
                FragKey::V6 { src: Ipv6Addr::LOCALHOST, dst: Ipv6Addr::LOCALHOST, ident: 1 }
            } else {
                FragKey::V4 {
                    src: Ipv4Addr::LOCALHOST,
                    dst: Ipv4Addr::LOCALHOST,
                    protocol: 17,
                    ident: 1,
                }
            };
            let header = vec![0u8; header_len];
            let mut r = Reassembler::default();
            let mut done = None;
            // Reverse order: the reassembler must not rely on sending order.
            for s in pieces.iter().rev() {
                let on_wire = header_len
                    + s.len
                    + if ipv6 && fragmented { IPV6_FRAGMENT_HEADER_LEN } else { 0 };
                prop_assert!(on_wire <= mtu, "fragment of {} bytes over MTU {}", on_wire, mtu);
                prop_assert!(s.offset % 8 == 0);
                prop_assert!(!s.more_fragments || s.len % 8 == 0);
                let out = r
                    .insert(
                        Instant::ZERO,
                        key,
                        s.offset,
                        s.more_fragments,
                        &payload[s.offset..s.offset + s.len],
                        &header,
                    )
                    .unwrap();
                if out.is_some() {
                    done = out;
                }
            }
            prop_assert_eq!(done.map(|d| d.payload), Some(payload));
        }
    }
}
