//! The sender's SACK scoreboard (RFC 2018, RFC 6675 section 3).
//!
//! Owns the set of sequence ranges above snd_una the peer reported as
//! received; recovery asks it how much is SACKed above a point (RFC 6675
//! IsLost, to start recovery before three duplicate ACKs). Must not decide
//! what to retransmit: RACK (`rack.rs`) does.
//! Bounded: at most [`MAX_RANGES`] ranges; when more arrive the lowest are
//! merged away, which only makes recovery retransmit a little more.

use super::seq::Seq;

pub const MAX_RANGES: usize = 64;

#[derive(Debug, Default, Clone)]
pub struct Scoreboard {
    /// Sorted, disjoint `[start, end)` ranges.
    ranges: Vec<(Seq, Seq)>,
}

impl Scoreboard {
    pub fn clear(&mut self) {
        self.ranges.clear();
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Records one SACK block, clipped to `[snd_una, snd_max)`. Blocks that
    /// fall outside (D-SACKs, RFC 2883, or forged ones) are ignored.
    pub fn add(&mut self, start: Seq, end: Seq, snd_una: Seq, snd_max: Seq) {
        let start = start.max(snd_una);
        let end = end.min(snd_max);
        if start >= end || end.diff(start) > snd_max.diff(snd_una) {
            return;
        }
        let (mut s, mut e) = (start, end);
        let first = self.ranges.partition_point(|r| r.1 < s);
        let mut last = first;
        while last < self.ranges.len() && self.ranges[last].0 <= e {
            s = s.min(self.ranges[last].0);
            e = e.max(self.ranges[last].1);
            last += 1;
        }
        self.ranges.splice(first..last, [(s, e)]);
        if self.ranges.len() > MAX_RANGES {
            self.ranges.remove(0);
        }
    }

    /// Forgets everything below the new cumulative ACK.
    pub fn ack(&mut self, snd_una: Seq) {
        self.ranges.retain(|r| r.1 > snd_una);
        if let Some(r) = self.ranges.first_mut() {
            r.0 = r.0.max(snd_una);
        }
    }

    /// SACKed bytes at or above `seq`.
    pub fn sacked_above(&self, seq: Seq) -> u32 {
        self.ranges.iter().map(|r| r.1.since(r.0.max(seq))).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_blocks_merge_and_cumulative_acks_trim_them() {
        let mut sb = Scoreboard::default();
        let una = Seq(1000);
        let max = Seq(10_000);
        sb.add(Seq(3000), Seq(4000), una, max);
        sb.add(Seq(6000), Seq(7000), una, max);
        sb.add(Seq(3500), Seq(5000), una, max);
        assert_eq!(sb.ranges.len(), 2);
        assert_eq!(sb.sacked_above(una), 3000);
        assert_eq!(sb.sacked_above(Seq(4500)), 1500);
        sb.ack(Seq(3600));
        assert_eq!(sb.sacked_above(una), 2400);
    }

    #[test]
    fn blocks_outside_the_outstanding_range_are_ignored() {
        let mut sb = Scoreboard::default();
        sb.add(Seq(10), Seq(900), Seq(1000), Seq(2000));
        sb.add(Seq(2500), Seq(3000), Seq(1000), Seq(2000));
        sb.add(Seq(1500), Seq(1400), Seq(1000), Seq(2000));
        assert!(sb.is_empty());
    }

    #[test]
    fn range_count_is_bounded() {
        let mut sb = Scoreboard::default();
        for i in 0..200u32 {
            sb.add(Seq(10 * i + 5), Seq(10 * i + 6), Seq(0), Seq(100_000));
        }
        assert_eq!(sb.ranges.len(), MAX_RANGES);
    }
}
