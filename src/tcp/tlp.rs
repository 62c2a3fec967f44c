//! Tail loss probe (RFC 8985 section 7): when the last segments of a flight
//! are lost no duplicate ACK arrives, so without a probe only the RTO
//! recovers them. A probe sent after about two round trips draws a SACK
//! that lets fast recovery repair the tail instead.
//!
//! Owns the probe's state and its rules: when the probe timeout (PTO) is
//! due ([`Tlp::deadline`]), the one-probe-per-episode rule, the RTO a probe
//! deferred, and TLP loss detection (section 7.4, [`Tlp::on_ack`]): a probe
//! that repaired a loss calls for a cwnd reduction, one that drew a D-SACK
//! changes nothing. Must not touch the timer table, the send buffer or the
//! congestion controller: the deadline and the verdict go back to the
//! connection, which arms `Timer::Pto`, sends the probe (`output.rs`'s
//! `emit_tlp`) and reduces cwnd.
//!
//! # Beyond RFC 8985
//!
//! This is the one place for the reasons; the README, the counters and the
//! items point here. Each applies only where the PTO is at most half the
//! RTO, so on paths whose round trip is far below the RTO's 200 ms floor;
//! elsewhere the probe is exactly Linux's.
//!
//! - **The recovery probe.** RFC 8985 arms no probe during fast recovery
//!   (nor does Linux). When a retransmission is lost and nothing sent after
//!   it is delivered (a flight of two or three segments, common at high
//!   loss), RACK has nothing to compare it with, and only the RTO, 200 ms
//!   at least, would repair it. The same timer instead resends the first
//!   segment RACK calls lost, or else the first one not SACKed, which
//!   either repairs the hole or draws the ACK that was lost: at most one
//!   segment per recovery beyond PRR's allowance, as QUIC's PTO (RFC 9002
//!   section 6.2) probes in any state. It needs no delayed-ACK allowance
//!   (a hole filled or data repeated is ACKed at once), and its round trip
//!   is the longer of SRTT and RACK's latest sample (SACKs give RACK
//!   samples where no timestamp does).
//! - **A second tail probe.** One probe per episode (section 7.4's
//!   TLP.end_seq), but a second while the first goes unanswered: a lost
//!   probe (or its lost ACK) after a flight whose ACKs were all lost
//!   otherwise costs the RTO's 200 ms floor on a path whose round trip is
//!   a thousandth of it. A probe whose flight is acknowledged and only its
//!   verdict pending does not hold back the next.
//! - **The last segment again, not new data.** Section 7.3 prefers a new
//!   segment when one is ready, but when the loss was the final ACK, a
//!   single new segment sits in the receiver's delayed-ACK timer (40 ms
//!   here and in Linux) while a duplicate is acknowledged at once (RFC 5681
//!   section 4.2, with a D-SACK): on a low-RTT path, a 2 ms or a 40 ms
//!   stall.

use super::seq::Seq;
use crate::time::Instant;
use std::time::Duration;

/// WCDelAckT: the worst-case delayed-ACK time assumed when one segment is
/// in flight (RFC 8985 section 7.2).
const WORST_CASE_DELAYED_ACK: Duration = Duration::from_millis(200);

/// Probes per TLP episode where the PTO is at most half the RTO (else 1).
const MAX_PROBES: u8 = 2;

/// What the PTO depends on, as the connection sees it when arming it.
pub struct ProbePath {
    /// SRTT, once measured.
    pub srtt: Option<Duration>,
    /// RACK's latest RTT sample.
    pub rack_rtt: Duration,
    /// The RTO now in force, and its backoff.
    pub rto: Duration,
    pub backoff: u32,
    /// The RTO's deadline, if it runs.
    pub rto_at: Option<Instant>,
    pub snd_una: Seq,
    /// Bytes from snd_una to snd_max.
    pub flight: u32,
    pub mss: u32,
    /// The recovery point of the fast recovery under way.
    pub recover: Option<Seq>,
}

/// The tail loss probe's and the recovery probe's state.
#[derive(Debug, Clone, Default)]
pub struct Tlp {
    /// The PTO fired: a probe goes out at the next poll.
    pub pending: bool,
    /// The RTO deadline a due probe deferred (see [`Tlp::fire`]).
    rto_before_probe: Option<Instant>,
    /// snd_max when the unanswered probe went out: one probe per episode
    /// (TLP.end_seq, RFC 8985 section 7.4).
    end: Option<Seq>,
    /// Probes sent in the episode `end` marks.
    sent: u8,
    /// Of those, the ones no D-SACK has yet reported as duplicates.
    dsacks_due: u8,
    /// Where the probe's retransmission began: a D-SACK over it says the
    /// probe repaired nothing.
    start: Seq,
    /// The recovery point of the fast recovery whose probe went out: one
    /// recovery probe per recovery.
    recovery_probed: Option<Seq>,
}

impl Tlp {
    /// When the PTO is due, if a probe could help (RFC 8985 section 7.2):
    /// an RTT measured, no backoff under way, no probe unanswered beyond
    /// what the module docs allow; clamped to the RTO, so a probe due with
    /// the RTO goes instead of it. The caller checks the connection's part:
    /// SACK in use, data outstanding, a state that sends.
    pub fn deadline(&self, now: Instant, p: &ProbePath) -> Option<Instant> {
        // One probe per recovery, once it is under way.
        if p.recover.is_some_and(|r| self.recovery_probed == Some(r)) || p.backoff > 0 {
            return None;
        }
        let srtt = p.srtt?;
        if p.recover.is_some() {
            // The recovery probe (module docs).
            let pto = srtt.max(p.rack_rtt) * 2 + Duration::from_millis(2);
            return (pto * 2 <= p.rto).then(|| now + pto);
        }
        let extra = if p.flight <= p.mss {
            WORST_CASE_DELAYED_ACK
        } else {
            Duration::from_millis(2)
        };
        let pto = srtt * 2 + extra;
        // One probe per episode, or two (module docs).
        if self.end.is_some_and(|end| p.snd_una < end)
            && (self.sent >= MAX_PROBES || pto * 2 > p.rto)
        {
            return None;
        }
        // Never later than the RTO (RFC 8985 section 7.2, as Linux).
        let at = now + pto;
        Some(p.rto_at.map_or(at, |rto| at.min(rto)))
    }

    /// The PTO fired in place of the RTO due at `rto_at`: a probe is due.
    /// The RTO is kept, to be put back if no probe can go out: a probe that
    /// never goes must not keep deferring it.
    pub fn fire(&mut self, rto_at: Option<Instant>) {
        self.pending = true;
        self.rto_before_probe = rto_at;
    }

    /// The RTO after a due probe: restarted at `restarted` if the probe
    /// went out, else where it was, or each PTO would push it back.
    pub fn rto_after(&self, sent: bool, restarted: Instant) -> Option<Instant> {
        if sent {
            Some(restarted)
        } else {
            self.rto_before_probe
        }
    }

    /// A tail probe resent from `start`: it begins an episode, or is the
    /// second of the one under way.
    pub fn on_tail_probe(&mut self, start: Seq, snd_una: Seq, snd_max: Seq) {
        if self.end.is_some_and(|end| snd_una < end) {
            self.sent += 1;
            self.dsacks_due += 1;
        } else {
            self.sent = 1;
            self.dsacks_due = 1;
            self.start = start;
            self.end = Some(snd_max);
        }
    }

    /// The recovery probe of the recovery ending at `recovery_point` is
    /// spent (sent or not). No TLP episode begins: the recovery under way
    /// already answered the loss.
    pub fn on_recovery_probe(&mut self, recovery_point: Seq) {
        self.recovery_probed = Some(recovery_point);
    }

    /// A recovery or an RTO answers whatever the probe found: the episode
    /// ends without a verdict.
    pub fn end_episode(&mut self) {
        self.end = None;
    }

    /// TLP loss detection (RFC 8985 section 7.4, as Linux's
    /// tcp_process_tlp_ack), with each acceptable ACK before it is applied.
    /// A D-SACK over the probe means the original and the probe both
    /// arrived: nothing was lost. An ACK beyond the probe's end with no
    /// such D-SACK first means the probe repaired a loss: returns true, and
    /// the connection makes the congestion response fast recovery would
    /// have made (unless a recovery already did). An ACK exactly at the
    /// end waits: its D-SACK may come with a later ACK.
    pub fn on_ack(&mut self, ack: Seq, dsack: Option<(Seq, Seq)>) -> bool {
        let Some(end) = self.end else {
            return false;
        };
        if dsack.is_some_and(|(l, r)| l < end && self.start < r) {
            // With two probes out, one D-SACK may be the second probe's
            // while the first repaired a loss: only a D-SACK for each
            // clears the episode.
            self.dsacks_due = self.dsacks_due.saturating_sub(1);
            if self.dsacks_due == 0 {
                self.end = None;
            }
            false
        } else if ack > end {
            self.end = None;
            true
        } else {
            false
        }
    }
}
