//! RACK loss detection (RFC 8985 section 6): a segment is lost when a
//! segment sent sufficiently later has been delivered, whatever the count
//! of duplicate ACKs. Works on retransmissions too, so a lost
//! retransmission is found without waiting for the RTO.
//!
//! Owns the per-segment transmit log (sequence range, send time, whether
//! retransmitted, SACKed, deemed lost) and RACK's state. Must not send
//! anything or touch cwnd: the recovery code asks it what is lost and how
//! much is in flight. Bounded: at most [`MAX_TRACKED`] entries; past that,
//! new data merges into the last entry (coarser, never unbounded).

use super::seq::Seq;
use crate::time::Instant;
use std::collections::VecDeque;
use std::time::Duration;

pub const MAX_TRACKED: usize = 4096;
/// The largest reordering degree recorded (Linux's tcp_max_reordering).
const MAX_REORDERING: u32 = 300;

/// DupThresh (RFC 6675): with this many segments SACKed and no reordering
/// seen, loss is not worth waiting for (RFC 8985 section 6.2 step 4).
const DUP_THRESH: usize = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Sent {
    start: Seq,
    end: Seq,
    xmit: Instant,
    rtx: bool,
    sacked: bool,
    lost: bool,
}

#[derive(Debug, Default)]
pub struct Rack {
    /// Outstanding segments in sequence order.
    segs: VecDeque<Sent>,
    /// RACK.xmit_ts and RACK.end_seq: the most recently sent delivered
    /// segment.
    xmit: Option<Instant>,
    end_seq: Seq,
    /// RACK.rtt: the RTT of that delivery.
    rtt: Duration,
    min_rtt: Option<Duration>,
    /// RACK.fack: the highest end of a segment delivered so far.
    fack: Option<Seq>,
    /// RACK.reordering_seen: a segment was delivered after one sent later,
    /// with no retransmission to explain it (section 6.2 step 3).
    reordering_seen: bool,
    /// The largest reordering degree seen, in segments (`None`: none).
    reordering: Option<u32>,
    /// Segments marked lost by `detect_loss` so far (wrapping): a caller
    /// compares two readings to learn whether an ACK revealed new loss.
    marked_lost: u64,
}

impl Rack {
    /// How many segments `detect_loss` has marked lost so far.
    pub fn marked_lost(&self) -> u64 {
        self.marked_lost
    }

    /// The reordering degree in segments: DupThresh until a segment
    /// arrives after more segments sent later than that.
    pub fn degree(&self) -> u32 {
        self.reordering.unwrap_or(DUP_THRESH as u32)
    }

    /// Records a transmission of `[start, end)`.
    pub fn on_send(&mut self, start: Seq, end: Seq, now: Instant, retransmission: bool) {
        if start >= end {
            return;
        }
        if retransmission {
            let first = self.segs.partition_point(|s| s.end <= start);
            for s in self.segs.iter_mut().skip(first) {
                if s.start >= end {
                    break;
                }
                s.xmit = now;
                s.rtx = true;
                s.lost = false;
            }
            // A resent piece may run past what was sent before (cut at a
            // smaller MSS after a PMTU drop, or ending in new data): that
            // part is a first transmission, and a range missing from the
            // log could never be found lost.
            match self.segs.back() {
                Some(last) if last.end < end => {
                    let from = last.end.max(start);
                    self.on_send(from, end, now, false);
                }
                _ => {}
            }
            return;
        }
        let full = self.segs.len() >= MAX_TRACKED;
        if let Some(last) = self.segs.back_mut() {
            if start < last.end {
                return;
            }
            if full && start == last.end {
                last.end = end;
                last.xmit = now;
                return;
            }
        }
        self.segs.push_back(Sent {
            start,
            end,
            xmit: now,
            rtx: false,
            sacked: false,
            lost: false,
        });
    }

    /// Takes the cumulative ACK and the SACK blocks of one ACK
    /// (RFC 8985 section 6.2 steps 1-2).
    pub fn on_ack(&mut self, snd_una: Seq, sack: &[(Seq, Seq)], now: Instant) {
        // `fack` as this ACK found it: the reordering degree counts only
        // segments delivered after higher ones an earlier ACK reported.
        let fack_before = self.fack;
        while let Some(&front) = self.segs.front() {
            if front.end > snd_una {
                if front.start < snd_una {
                    self.segs[0].start = snd_una;
                }
                break;
            }
            self.segs.pop_front();
            if !front.sacked {
                self.delivered(front, now, fack_before);
            }
        }
        // In sequence order, not the blocks' recency order (RFC 2018 lists
        // the latest first): segments one ACK reports arrived together, so
        // a lower block listed after a higher one is not reordering.
        let mut blocks = [(Seq(0), Seq(0)); 4];
        let n = sack.len().min(blocks.len());
        blocks[..n].copy_from_slice(&sack[..n]);
        let blocks = &mut blocks[..n];
        blocks.sort_unstable_by(|a, b| a.0.diff(b.0).cmp(&0));
        for &(l, r) in blocks.iter() {
            let first = self.segs.partition_point(|s| s.end <= l);
            for i in first..self.segs.len() {
                let s = self.segs[i];
                if s.start >= r {
                    break;
                }
                if s.start >= l && s.end <= r && !s.sacked {
                    self.segs[i].sacked = true;
                    self.delivered(s, now, fack_before);
                }
            }
        }
    }

    fn delivered(&mut self, s: Sent, now: Instant, fack_before: Option<Seq>) {
        // RACK_detect_reordering (step 3).
        match self.fack {
            Some(f) if s.end < f => self.reordering_seen |= !s.rtx,
            _ => self.fack = Some(s.end),
        }
        if let Some(f) = fack_before.filter(|&f| s.end < f && !s.rtx) {
            // The degree, as Linux's tcp_check_sack_reordering measures it:
            // how many segments beyond this one were delivered first
            // (reported as tcpi_reordering).
            let piece = s.end.since(s.start).max(1);
            let metric = f.since(s.start);
            if metric > self.degree().saturating_mul(piece) {
                self.reordering = Some(metric.div_ceil(piece).min(MAX_REORDERING));
            }
        }
        let rtt = now.saturating_duration_since(s.xmit);
        // A retransmission delivered faster than any RTT seen was probably
        // the original arriving late: not a sample (step 2).
        if s.rtx && self.min_rtt.is_some_and(|m| rtt < m) {
            return;
        }
        self.rtt = rtt;
        self.min_rtt = Some(self.min_rtt.map_or(rtt, |m| m.min(rtt)));
        let later = match self.xmit {
            None => true,
            Some(x) => s.xmit > x || (s.xmit == x && s.end > self.end_seq),
        };
        if later {
            self.xmit = Some(s.xmit);
            self.end_seq = s.end;
        }
    }

    /// A D-SACK reported one of our retransmissions as a duplicate: its
    /// original arrived after later segments, which is reordering, though
    /// the retransmission kept RACK_detect_reordering from seeing it.
    pub fn on_spurious_retransmission(&mut self) {
        self.reordering_seen = true;
    }

    /// RACK.reo_wnd (RFC 8985 section 6.2 step 4): zero while no reordering
    /// was seen and either recovery is under way or DupThresh segments are
    /// SACKed (waiting would only delay the repair), else a quarter of the
    /// minimum RTT, never more than SRTT.
    ///
    /// The RFC also grows the window by a quarter min_rtt per round trip
    /// that brings a D-SACK (RACK.reo_wnd_mult). Not done here: on the
    /// links we measure, reordering (0.3-1 ms) outlasts the SRTT cap
    /// (60 us), so the larger window never saved a retransmission, only
    /// delayed every repair; in 40 seeds of `sim_bulk` it raised the RTO
    /// count from 57 to 82-90.
    pub fn reo_wnd(&self, in_recovery: bool, srtt: Option<Duration>) -> Duration {
        let sacked = || {
            self.segs
                .iter()
                .filter(|s| s.sacked)
                .nth(DUP_THRESH - 1)
                .is_some()
        };
        if !self.reordering_seen && (in_recovery || sacked()) {
            return Duration::ZERO;
        }
        let wnd = self.min_rtt.unwrap_or_default() / 4;
        srtt.map_or(wnd, |s| wnd.min(s))
    }

    /// Marks lost every segment sent a reordering window `reo_wnd` before
    /// the latest delivered one (step 5). Returns the instant a
    /// not-yet-lost segment will be, for the reordering timer.
    pub fn detect_loss(&mut self, now: Instant, reo_wnd: Duration) -> Option<Instant> {
        let rx = self.xmit?;
        let mut timeout: Option<Instant> = None;
        for s in self.segs.iter_mut() {
            if s.sacked || s.lost {
                continue;
            }
            let sent_before = s.xmit < rx || (s.xmit == rx && s.end < self.end_seq);
            if !sent_before {
                continue;
            }
            let deadline = s.xmit + self.rtt + reo_wnd;
            if deadline <= now {
                s.lost = true;
                self.marked_lost = self.marked_lost.wrapping_add(1);
            } else {
                timeout = Some(timeout.map_or(deadline, |t| t.min(deadline)));
            }
        }
        timeout
    }

    /// The first segment deemed lost and not yet resent.
    pub fn next_lost(&self) -> Option<(Seq, Seq)> {
        self.segs
            .iter()
            .find(|s| s.lost && !s.sacked)
            .map(|s| (s.start, s.end))
    }

    /// RACK.rtt: the round trip of the most recently sent segment
    /// delivered (zero before any).
    pub fn latest_rtt(&self) -> Duration {
        self.rtt
    }

    /// The first outstanding segment not SACKed.
    pub fn first_unsacked(&self) -> Option<(Seq, Seq)> {
        self.segs
            .iter()
            .find(|s| !s.sacked)
            .map(|s| (s.start, s.end))
    }

    /// The last segment sent, if nothing was delivered after it and it was
    /// sent only once: a tail whose loss RACK can never see, the target of
    /// RFC 6675's rescue retransmission. (A hole below a SACKed segment is
    /// RACK's to judge, after its reordering window.)
    pub fn unsacked_tail(&self) -> Option<(Seq, Seq)> {
        self.segs
            .back()
            .filter(|s| !s.sacked && !s.rtx && !s.lost)
            .map(|s| (s.start, s.end))
    }

    /// Marks the segment holding `seq` lost (entering recovery on the
    /// duplicate-ACK rule).
    pub fn mark_lost(&mut self, seq: Seq) {
        if let Some(s) = self
            .segs
            .iter_mut()
            .find(|s| s.start <= seq && seq < s.end && !s.sacked)
        {
            s.lost = true;
        }
    }

    /// After an RTO everything outstanding counts as lost (RFC 8985
    /// section 6.3) and SACK information is dropped with the scoreboard.
    pub fn on_rto(&mut self) {
        for s in self.segs.iter_mut() {
            s.lost = true;
            s.sacked = false;
        }
    }

    /// The RTO proved spurious: nothing it marked is lost after all.
    pub fn undo_rto(&mut self) {
        for s in self.segs.iter_mut() {
            s.lost = false;
        }
    }

    /// Outstanding segments: SACKed; deemed lost (awaiting retransmission
    /// or retransmitted since, as Linux's lost_out keeps them) and not
    /// SACKed; retransmitted and not SACKed. TCP_INFO counts these.
    pub fn outstanding(&self) -> (u32, u32, u32) {
        let (mut sacked, mut lost, mut rtx) = (0, 0, 0);
        for s in &self.segs {
            if s.sacked {
                sacked += 1;
            } else {
                lost += u32::from(s.lost || s.rtx);
                rtx += u32::from(s.rtx);
            }
        }
        (sacked, lost, rtx)
    }

    /// Bytes in flight: sent, neither SACKed nor lost (RFC 6675's pipe with
    /// RACK's loss marks).
    pub fn pipe(&self) -> u32 {
        self.segs
            .iter()
            .filter(|s| !s.sacked && !s.lost)
            .map(|s| s.end.since(s.start))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn flight(r: &mut Rack, n: u32, ms: u64) {
        for i in 0..n {
            r.on_send(
                Seq(i * 100),
                Seq(i * 100 + 100),
                at(ms + u64::from(i)),
                false,
            );
        }
    }

    #[test]
    fn reordering_degree_counts_the_segments_delivered_ahead_of_a_late_one() {
        // packetdrill's sack-shift-sacked-2-6-8-3-9: segments 2, 6 and 8
        // SACKed, then 3: six segments' worth beyond it came first.
        let mut r = Rack::default();
        flight(&mut r, 10, 0);
        assert_eq!(r.degree(), 3, "DupThresh until reordering is seen");
        let sack = |a: u32, b: u32| (Seq(a * 100), Seq(b * 100));
        r.on_ack(Seq(0), &[sack(2, 3)], at(100));
        r.on_ack(Seq(0), &[sack(2, 3), sack(6, 7)], at(101));
        r.on_ack(Seq(0), &[sack(2, 3), sack(6, 7), sack(8, 9)], at(102));
        assert_eq!(r.degree(), 3);
        r.on_ack(Seq(0), &[sack(2, 4), sack(6, 7), sack(8, 9)], at(103));
        assert_eq!(r.degree(), 6);
        // A smaller displacement later does not lower it.
        r.on_ack(Seq(0), &[sack(2, 4), sack(5, 7), sack(8, 9)], at(104));
        assert_eq!(r.degree(), 6);
    }

    #[test]
    fn sack_blocks_of_one_ack_in_recency_order_are_not_reordering() {
        // RFC 2018 lists the most recent block first; segments reported by
        // one ACK arrived together, whatever the blocks' order.
        let mut r = Rack::default();
        flight(&mut r, 10, 0);
        let sack = |a: u32, b: u32| (Seq(a * 100), Seq(b * 100));
        r.on_ack(Seq(0), &[sack(7, 10), sack(4, 6), sack(1, 3)], at(100));
        assert!(!r.reordering_seen);
        assert_eq!(r.degree(), 3);
    }

    #[test]
    fn a_resent_piece_running_past_the_log_records_the_new_part_so_its_loss_can_be_found() {
        // After a PMTU drop, a piece resent at the smaller MSS straddles
        // the last logged end: [150, 250) holds 50 bytes of new data.
        let mut r = Rack::default();
        flight(&mut r, 2, 0);
        r.on_send(Seq(150), Seq(250), at(10), true);
        r.on_send(Seq(250), Seq(300), at(10), false);
        // The new part [200, 250) is lost, [250, 300) SACKed later.
        r.on_ack(Seq(200), &[(Seq(250), Seq(300))], at(110));
        assert_eq!(r.first_unsacked(), Some((Seq(200), Seq(250))));
        detect(&mut r, at(200));
        assert_eq!(r.next_lost(), Some((Seq(200), Seq(250))));
    }

    /// The window the connection would use, outside recovery.
    fn detect(r: &mut Rack, now: Instant) -> Option<Instant> {
        let reo_wnd = r.reo_wnd(false, None);
        r.detect_loss(now, reo_wnd)
    }

    #[test]
    fn segment_sent_before_a_delivered_one_is_lost_after_the_reordering_window() {
        let mut r = Rack::default();
        flight(&mut r, 3, 0);
        // Segment 0 is missing; 1 and 2 are SACKed 100 ms later.
        r.on_ack(Seq(0), &[(Seq(100), Seq(300))], at(102));
        // min_rtt = 100 ms, reo_wnd = 25 ms: segment 0 is lost at 125.
        assert_eq!(detect(&mut r, at(102)), Some(at(125)));
        assert_eq!(r.next_lost(), None);
        assert_eq!(detect(&mut r, at(125)), None);
        assert_eq!(r.next_lost(), Some((Seq(0), Seq(100))));
        assert_eq!(r.pipe(), 0);
    }

    #[test]
    fn rack_reo_wnd_is_zero_without_reordering_once_dupthresh_segments_are_sacked_or_in_recovery() {
        let mut r = Rack::default();
        flight(&mut r, 4, 0);
        r.on_ack(Seq(0), &[(Seq(100), Seq(300))], at(102));
        assert_eq!(r.reo_wnd(false, None), ms(25));
        assert_eq!(r.reo_wnd(true, None), Duration::ZERO, "in recovery");
        r.on_ack(Seq(0), &[(Seq(100), Seq(400))], at(103));
        assert_eq!(r.reo_wnd(false, None), Duration::ZERO, "DupThresh SACKed");
        assert_eq!(detect(&mut r, at(103)), None);
        assert_eq!(r.next_lost(), Some((Seq(0), Seq(100))));
    }

    #[test]
    fn rack_reordering_seen_when_a_segment_below_fack_arrives_unretransmitted() {
        let mut r = Rack::default();
        flight(&mut r, 4, 0);
        r.on_ack(Seq(0), &[(Seq(100), Seq(400))], at(103));
        assert!(!r.reordering_seen);
        // Segment 0 was late, not lost: the cumulative ACK covers it before
        // anything was resent.
        r.on_ack(Seq(400), &[], at(104));
        assert!(r.reordering_seen);
        flight(&mut r, 8, 200);
        r.on_ack(Seq(400), &[(Seq(500), Seq(800))], at(307));
        assert_eq!(
            r.reo_wnd(true, None),
            ms(25),
            "no shortcut once reordering was seen"
        );
    }

    #[test]
    fn rack_reordering_not_seen_when_a_retransmission_fills_the_hole() {
        let mut r = Rack::default();
        flight(&mut r, 4, 0);
        r.on_ack(Seq(0), &[(Seq(100), Seq(400))], at(103));
        detect(&mut r, at(103));
        r.on_send(Seq(0), Seq(100), at(103), true);
        r.on_ack(Seq(400), &[], at(204));
        assert!(!r.reordering_seen);
    }

    #[test]
    fn rack_reo_wnd_is_capped_at_srtt() {
        let mut r = Rack::default();
        flight(&mut r, 3, 0);
        r.on_ack(Seq(0), &[(Seq(100), Seq(200))], at(101));
        assert_eq!(r.reo_wnd(false, None), ms(25));
        assert_eq!(r.reo_wnd(false, Some(ms(20))), ms(20));
    }

    #[test]
    fn rack_spurious_retransmission_counts_as_reordering() {
        let mut r = Rack::default();
        flight(&mut r, 4, 0);
        r.on_ack(Seq(0), &[(Seq(100), Seq(400))], at(103));
        assert_eq!(r.reo_wnd(true, None), Duration::ZERO);
        r.on_spurious_retransmission();
        assert_eq!(r.reo_wnd(true, None), ms(25));
    }

    #[test]
    fn lost_retransmission_is_detected_by_later_deliveries() {
        let mut r = Rack::default();
        flight(&mut r, 2, 0);
        r.on_ack(Seq(0), &[(Seq(100), Seq(200))], at(100));
        detect(&mut r, at(200));
        r.on_send(Seq(0), Seq(100), at(200), true);
        assert_eq!(r.next_lost(), None);
        assert_eq!(r.pipe(), 100);
        // New data sent after the retransmission is delivered; the
        // retransmission is not.
        r.on_send(Seq(200), Seq(300), at(210), false);
        r.on_ack(Seq(0), &[(Seq(100), Seq(300))], at(310));
        detect(&mut r, at(400));
        assert_eq!(r.next_lost(), Some((Seq(0), Seq(100))));
    }

    #[test]
    fn cumulative_ack_drops_entries_and_tracking_is_bounded() {
        let mut r = Rack::default();
        for i in 0..(MAX_TRACKED as u32 + 100) {
            r.on_send(Seq(i * 10), Seq(i * 10 + 10), at(0), false);
        }
        assert_eq!(r.segs.len(), MAX_TRACKED);
        r.on_ack(Seq(50), &[], at(10));
        assert_eq!(r.segs.front().map(|s| s.start), Some(Seq(50)));
        assert_eq!(r.segs.len(), MAX_TRACKED - 5);
    }
}
