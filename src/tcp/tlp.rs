//! Tail loss probe (RFC 8985 section 7): when the last segments of a flight
//! are lost no duplicate ACK arrives, so without a probe only the RTO
//! recovers them. A probe sent after about two round trips draws a SACK
//! that lets fast recovery repair the tail instead.
//!
//! Owns the probe timeout (PTO), the one-probe-per-episode rule and TLP
//! loss detection (section 7.4): a probe that repaired a loss answers with
//! a cwnd reduction, one that drew a D-SACK changes nothing.
//!
//! Beyond RFC 8985, which arms no probe during fast recovery (nor does
//! Linux): one *recovery probe* per fast recovery. When a retransmission
//! is lost and nothing sent after it is delivered (a flight of two or
//! three segments, common at high loss), RACK has nothing to compare it
//! with, and only the RTO, 200 ms at least, would repair it. The same
//! timer instead resends the first segment RACK calls lost, or else the
//! first one not SACKed, which either repairs the hole or draws the ACK
//! that was lost: at most one segment per episode beyond PRR's allowance,
//! as QUIC's PTO (RFC 9002 section 6.2) probes in any state.

use super::State;
use super::conn::Connection;
use super::seq::Seq;
use super::timer::Timer;
use crate::time::Instant;
use crate::wire::tcp::TcpRepr;
use std::time::Duration;

/// WCDelAckT: the worst-case delayed-ACK time assumed when one segment is
/// in flight (RFC 8985 section 7.2).
const WORST_CASE_DELAYED_ACK: Duration = Duration::from_millis(200);

/// Probes per TLP episode where the PTO is at most half the RTO (else 1).
const MAX_PROBES: u8 = 2;

impl Connection {
    /// Arms the PTO when a probe could help (RFC 8985 section 7.2): SACK in
    /// use, data outstanding, no recovery or backoff under way, no probe
    /// unanswered; clamped to the RTO.
    pub(super) fn arm_pto(&mut self, now: Instant) {
        if self.snd_una == self.snd_max {
            self.timers.stop(Timer::Pto);
            return;
        }
        let sending = matches!(
            self.state,
            State::Established
                | State::CloseWait
                | State::FinWait1
                | State::Closing
                | State::LastAck
        );
        if self.timers.is_armed(Timer::Pto)
            || !sending
            || !self.opts.sack
            // One probe per recovery, once it is under way.
            || self.recover.is_some_and(|r| self.recovery_probed == Some(r))
            || self.rtt.backoff > 0
        {
            return;
        }
        let Some(srtt) = self.rtt.srtt else {
            return;
        };
        if self.recover.is_some() {
            // The probe fills a hole or repeats delivered data, which any
            // receiver ACKs at once: no delayed-ACK allowance. The round
            // trip is the longer of SRTT and RACK's latest (SACKs give
            // RACK samples where no timestamp does). Only where the probe
            // comes well before the RTO: it exists to spare low-RTT paths
            // the RTO's 200 ms floor, and elsewhere the RTO is as good.
            let pto = srtt.max(self.rack.latest_rtt()) * 2 + Duration::from_millis(2);
            if pto * 2 <= self.rtt.current() {
                self.timers.set(Timer::Pto, now + pto);
            }
            return;
        }
        let extra = if self.snd_max.since(self.snd_una) <= self.snd_mss {
            WORST_CASE_DELAYED_ACK
        } else {
            Duration::from_millis(2)
        };
        let pto = srtt * 2 + extra;
        // One probe per episode (RFC 8985 section 7.4's TLP.end_seq); a
        // probe whose flight is acknowledged and only its verdict pending
        // does not hold back the next. Beyond the RFC, where the PTO is
        // at most half the RTO, a second probe while the first goes
        // unanswered: a lost probe (or its lost ACK) after a flight whose
        // ACKs were all lost otherwise costs the RTO's 200 ms floor on a
        // path whose round trip is a thousandth of it.
        if self.tlp_end.is_some_and(|end| self.snd_una < end)
            && (self.tlp_sent >= MAX_PROBES || pto * 2 > self.rtt.current())
        {
            return;
        }
        // Never later than the RTO (RFC 8985 section 7.2, as Linux): a
        // probe due with the RTO goes instead of it (see `on_timers`).
        let at = now + pto;
        self.timers.set(
            Timer::Pto,
            self.timers.get(Timer::Rto).map_or(at, |rto| at.min(rto)),
        );
    }

    /// Sends the due probe: the recovery probe during a fast recovery,
    /// else the tail loss probe. A probe restarts the RTO; one that could
    /// not go out leaves it where it was, or each PTO would push it back.
    pub(super) fn emit_tlp(&mut self, now: Instant, emit: &mut impl FnMut(&TcpRepr, &[u8])) {
        let sent = match self.recover {
            Some(recovery_point) => self.emit_recovery_probe(now, recovery_point, emit),
            None => self.emit_tail_probe(now, emit),
        };
        let rto = if sent {
            Some(now + self.rtt.current())
        } else {
            self.rto_before_probe
        };
        self.timers.put(Timer::Rto, rto);
    }

    /// The tail loss probe: the last segment again. RFC 8985 section 7.3
    /// prefers a new segment when one is ready, but when the loss was the
    /// final ACK, a single new segment sits in the receiver's delayed-ACK
    /// timer (40 ms here and in Linux) while a duplicate is acknowledged at
    /// once (RFC 5681 section 4.2, with a D-SACK). On a low-RTT path that is
    /// the difference between a 2 ms and a 40 ms stall.
    fn emit_tail_probe(&mut self, now: Instant, emit: &mut impl FnMut(&TcpRepr, &[u8])) -> bool {
        let start = (self.snd_max - self.snd_mss).max(self.snd_una);
        if self.retransmit_range(now, start, self.snd_max, emit) == 0 {
            return false;
        }
        if self.tlp_end.is_some_and(|end| self.snd_una < end) {
            // The second probe of the episode (see `arm_pto`).
            self.tlp_sent += 1;
            self.tlp_dsacks_due += 1;
        } else {
            self.tlp_sent = 1;
            self.tlp_dsacks_due = 1;
            self.tlp_start = start;
            self.tlp_end = Some(self.snd_max);
        }
        self.stats.tlp_probes += 1;
        true
    }

    /// The recovery probe (module docs): the first segment RACK deems lost,
    /// else the first one not SACKed, once per recovery. No TLP episode
    /// begins: the recovery under way already answered the loss.
    fn emit_recovery_probe(
        &mut self,
        now: Instant,
        recovery_point: Seq,
        emit: &mut impl FnMut(&TcpRepr, &[u8]),
    ) -> bool {
        self.recovery_probed = Some(recovery_point);
        let Some((start, end)) = self.rack.next_lost().or_else(|| self.rack.first_unsacked())
        else {
            return false;
        };
        let sent = self.retransmit_range(now, start, end, emit) > 0;
        if sent {
            self.stats.recovery_probes += 1;
        }
        sent
    }

    /// TLP loss detection (RFC 8985 section 7.4, as Linux's
    /// tcp_process_tlp_ack): called with each acceptable ACK before it is
    /// applied. A D-SACK over the probe means the original and the probe
    /// both arrived: nothing was lost. An ACK beyond the probe's end with
    /// no such D-SACK first means the probe repaired a loss, which calls
    /// for the congestion response fast recovery would have made. An ACK
    /// exactly at the end waits: its D-SACK may come with a later ACK.
    pub(super) fn tlp_on_ack(&mut self, now: Instant, ack: Seq, dsack: Option<(Seq, Seq)>) {
        let Some(end) = self.tlp_end else {
            return;
        };
        if dsack.is_some_and(|(l, r)| l < end && self.tlp_start < r) {
            // With two probes out, one D-SACK may be the second probe's
            // while the first repaired a loss: only a D-SACK for each
            // clears the episode.
            self.tlp_dsacks_due = self.tlp_dsacks_due.saturating_sub(1);
            if self.tlp_dsacks_due == 0 {
                self.tlp_end = None;
            }
        } else if ack > end {
            self.tlp_end = None;
            if self.recover.is_none() {
                // The window the probe found, not what is left in flight:
                // the loss says the path held less than cwnd (Linux sizes
                // this reduction from cwnd too).
                self.cc.on_congestion(now, self.cc.cwnd());
                self.stats.tlp_recoveries += 1;
            }
        }
    }
}
