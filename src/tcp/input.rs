//! The arrival path: one segment through the checks of RFC 9293 section
//! 3.10.7 (SEGMENT ARRIVES), with RFC 5961's hardening against blind RST,
//! SYN and ACK injection and RFC 7323's PAWS.
//!
//! Owns the state transitions caused by the peer. Must not emit segments:
//! it only records what is due (`ack`, `rst_to_send`, `rtx_una`) for the
//! transmit path.

use super::conn::Connection;
use super::seq::Seq;
use super::timer::Timer;
use super::undo::{Verdict, dsack_block};
use super::{State, TcpError};
use crate::time::Instant;
use crate::wire::tcp::{MAX_SACK_BLOCKS, TcpFlags, TcpRepr};
use std::time::Duration;

/// Challenge ACKs allowed per connection per second (RFC 5961 section 7).
pub const CHALLENGE_ACK_LIMIT: u32 = 10;

/// Least time between ACKs answering out-of-window bare ACKs.
const OOW_ACK_INTERVAL: Duration = Duration::from_millis(500);

impl Connection {
    /// [`Connection::on_segment`] for a segment whose IP header carried
    /// the CE mark, congestion experienced (RFC 3168): if ECN was agreed,
    /// the ACKs echo it until the peer reduces.
    pub fn on_segment_ce(&mut self, now: Instant, seg: &TcpRepr, payload: &[u8], ce: bool) {
        self.last_now = now;
        self.stats.segs_in += 1;
        if seg.flags.contains(TcpFlags::ACK) {
            self.heard_at = now;
        }
        if seg.flags.contains(TcpFlags::RST) {
            self.stats.rsts_in += 1;
        }
        // A TCP payload never exceeds 64 KiB; anything longer is hostile.
        let payload = &payload[..payload.len().min(u16::MAX as usize)];
        match self.state {
            State::Closed | State::Listen => {}
            State::SynSent => self.on_segment_syn_sent(now, seg),
            _ => self.on_segment_synchronized(now, seg, payload, ce),
        }
    }

    /// Processes one arriving segment that the stack demultiplexed to this
    /// connection. Never panics, whatever the segment holds; call
    /// `poll_transmit` afterwards for the replies.
    pub fn on_segment(&mut self, now: Instant, seg: &TcpRepr, payload: &[u8]) {
        self.on_segment_ce(now, seg, payload, false);
    }

    /// RFC 9293 section 3.10.7.3.
    fn on_segment_syn_sent(&mut self, now: Instant, seg: &TcpRepr) {
        let flags = seg.flags;
        let ack = Seq(seg.ack);
        let has_ack = flags.contains(TcpFlags::ACK);
        if has_ack && (ack <= self.iss || ack > self.snd_max) {
            if !flags.contains(TcpFlags::RST) {
                self.rst_to_send = Some((ack, false));
            }
            self.stats.dropped += 1;
            return;
        }
        if flags.contains(TcpFlags::RST) {
            if has_ack {
                self.fail(TcpError::ConnectionRefused);
            }
            return;
        }
        if !flags.contains(TcpFlags::SYN) {
            return;
        }
        self.take_syn(seg);
        self.arm_keepalive(now);
        self.ecn.on_syn_ack(flags);
        if has_ack {
            self.snd_wl2 = ack;
            self.ack_advanced(now, seg, ack);
            self.state = if self.fin_queued {
                State::FinWait1
            } else {
                State::Established
            };
            self.established_at = Some(now);
            // Data or FIN on a SYN-ACK is dropped; the ACK asks for it again.
            self.ack.due = true;
        } else {
            // Simultaneous open: answer with SYN-ACK (same ISS).
            self.state = State::SynReceived;
            self.snd_nxt = self.iss;
        }
    }

    /// RFC 9293 section 3.10.7.4, for every state past SYN-SENT.
    fn on_segment_synchronized(&mut self, now: Instant, seg: &TcpRepr, payload: &[u8], ce: bool) {
        let seq = Seq(seg.seq);
        let flags = seg.flags;
        let rst = flags.contains(TcpFlags::RST);
        let syn = flags.contains(TcpFlags::SYN);
        let fin = flags.contains(TcpFlags::FIN);
        let seg_len = payload.len() as u32 + u32::from(syn) + u32::from(fin);

        // PAWS (RFC 7323 section 5.3): an old timestamp means an old segment.
        if self.opts.timestamps
            && !rst
            && let Some((tsval, _)) = seg.options.timestamps
            && (tsval.wrapping_sub(self.ts_recent) as i32) < 0
        {
            self.stats.dropped += 1;
            self.ack.due = true;
            return;
        }

        // First: the sequence number check.
        let wnd = self.rcv_adv.since(self.rcv_nxt);
        let right = self.rcv_nxt + wnd;
        let acceptable = match (seg_len, wnd) {
            (0, 0) => seq == self.rcv_nxt,
            // The right edge itself is allowed for a bare ACK (as Linux
            // does): a peer whose data filled our window sends its ACKs
            // from there, and if both windows are full and both ends refuse
            // each other's ACKs, they trade ACKs forever (sim seed 86866).
            (0, _) => seq.in_range(self.rcv_nxt, right + 1u32),
            (_, 0) => false,
            _ => {
                seq.in_range(self.rcv_nxt, right)
                    || (seq + (seg_len - 1)).in_range(self.rcv_nxt, right)
            }
        };
        // A retransmitted SYN means our SYN-ACK was lost: send it again now
        // rather than waiting for our own timer.
        if self.state == State::SynReceived && flags == TcpFlags::SYN && seq == self.irs {
            self.snd_nxt = self.iss;
            return;
        }
        // A zero window still takes ACKs and RSTs at exactly rcv_nxt.
        let ack_only = !acceptable && wnd == 0 && seq == self.rcv_nxt;
        if !acceptable && !ack_only {
            self.stats.dropped += 1;
            // An unacceptable bare ACK is answered at most every 500 ms
            // (Linux's tcp_invalid_ratelimit), so two confused ends cannot
            // ping-pong at wire speed; probes (SEG.SEQ = RCV.NXT - 1) are
            // always answered.
            let probe = seq == self.rcv_nxt - 1u32;
            let throttled = seg_len == 0
                && !probe
                && self
                    .oow_ack_at
                    .is_some_and(|t| now.saturating_duration_since(t) < OOW_ACK_INTERVAL);
            if !rst && !throttled {
                if seg_len == 0 && !probe {
                    self.oow_ack_at = Some(now);
                }
                let data_start = seq + u32::from(syn);
                // A FIN already taken is part of the duplicate (Linux's
                // tcp_send_dupack reports seq..end_seq).
                let data_end = data_start + payload.len() + u32::from(fin);
                if self.opts.sack && data_end != data_start && data_end <= self.rcv_nxt {
                    // RFC 2883: report the duplicate, before another
                    // duplicate replaces the report.
                    self.dsack = Some((data_start, data_end));
                    self.ack.urgent = true;
                }
                if fin && self.state == State::TimeWait {
                    // A retransmitted FIN restarts the 2*MSL wait (3.10.7.4).
                    self.timers.set(Timer::TimeWait, now + self.cfg.time_wait);
                }
                self.ack.due = true;
            }
            return;
        }
        self.arm_keepalive(now);

        // Second: RST (RFC 5961 section 3.2).
        if rst {
            if seq != self.rcv_nxt {
                self.challenge_ack(now);
                return;
            }
            match self.state {
                State::SynReceived => self.fail(TcpError::ConnectionRefused),
                State::Established | State::FinWait1 | State::FinWait2 | State::CloseWait => {
                    self.fail(TcpError::ConnectionReset)
                }
                _ => self.enter_closed(),
            }
            return;
        }

        // Fourth: a SYN in a synchronized state (RFC 5961 section 4.2).
        if syn {
            self.challenge_ack(now);
            return;
        }

        // Fifth: the ACK field.
        if !flags.contains(TcpFlags::ACK) {
            self.stats.dropped += 1;
            return;
        }
        let ack = Seq(seg.ack);
        if self.state == State::SynReceived {
            if ack > self.snd_una && ack <= self.snd_max {
                self.state = if self.fin_queued {
                    State::FinWait1
                } else {
                    State::Established
                };
                self.established_at = Some(now);
            } else {
                self.rst_to_send = Some((ack, false));
                return;
            }
        }
        // RFC 5961 section 5.2: acceptable ACKs lie in
        // [snd_una - max_snd_wnd, snd_max].
        if ack > self.snd_max || ack < self.snd_una - self.max_snd_wnd {
            self.stats.dropped += 1;
            self.challenge_ack(now);
            return;
        }
        // RFC 7323 section 4.3: remember the timestamp to echo. Only now,
        // after the ACK passed RFC 5961's check, so a forged in-window
        // segment (or RST) cannot push TS.Recent ahead and make PAWS drop
        // the real peer.
        if let Some((tsval, _)) = seg.options.timestamps
            && self.opts.timestamps
            && seq <= self.last_ack_sent
        {
            self.ts_recent = tsval;
        }
        self.process_ack(now, seg, ack, payload.len(), fin);
        if self.state == State::Closed {
            return;
        }
        if ack_only {
            self.ack.due = true;
            return;
        }

        self.ecn.on_segment(flags);

        // Seventh: segment text.
        if !payload.is_empty() {
            match self.state {
                State::Established | State::FinWait1 | State::FinWait2 => {
                    if self.orphaned {
                        // Nobody will read this: reset (RFC 1122 section
                        // 4.2.2.13), as Linux does, with the sequence
                        // number the segment acknowledges: exactly what
                        // the peer expects, so an RFC 5961 peer takes it
                        // even when our FIN has not reached it.
                        self.rst_to_send = Some((Seq(seg.ack), false));
                        self.fail(TcpError::ConnectionReset);
                        return;
                    }
                    self.take_data(now, seq, payload, ce);
                }
                _ => {}
            }
        }

        // Eighth: FIN.
        if fin {
            self.take_fin(now, seq + payload.len());
        }
    }

    /// Answers a suspicious RST, SYN or ACK with an ACK, at most
    /// [`CHALLENGE_ACK_LIMIT`] per second (RFC 5961 section 7), so a flood
    /// of forged segments cannot turn the connection into an amplifier.
    fn challenge_ack(&mut self, now: Instant) {
        if now.saturating_duration_since(self.challenge_epoch) >= Duration::from_secs(1) {
            self.challenge_epoch = now;
            self.challenge_count = 0;
        }
        if self.challenge_count >= CHALLENGE_ACK_LIMIT {
            return;
        }
        self.challenge_count += 1;
        self.stats.challenge_acks += 1;
        self.ack.due = true;
    }

    fn arm_keepalive(&mut self, now: Instant) {
        if let Some(ka) = self.cfg.keepalive {
            self.timers.set(Timer::Keepalive, now + ka.idle);
            self.keepalive_probes = 0;
        }
    }

    fn process_ack(
        &mut self,
        now: Instant,
        seg: &TcpRepr,
        ack: Seq,
        payload_len: usize,
        fin: bool,
    ) {
        let seq = Seq(seg.seq);
        // RFC 6937's DeliveredData: what snd_una and the SACKed bytes
        // above it advance by.
        let (una_before, sacked_before) =
            (self.snd_una, self.scoreboard.sacked_above(self.snd_una));
        if self.opts.sack {
            let mut blocks = [(Seq(0), Seq(0)); MAX_SACK_BLOCKS];
            for (b, &(l, r)) in blocks.iter_mut().zip(seg.options.sack()) {
                *b = (Seq(l), Seq(r));
            }
            let n = seg.options.sack().len().min(MAX_SACK_BLOCKS);
            let dsack = dsack_block(&blocks[..n], ack);
            if self.tlp.on_ack(ack, dsack) && self.recover.is_none() {
                // The window the probe found, not what is left in flight:
                // the loss says the path held less than cwnd (Linux sizes
                // this reduction from cwnd too).
                self.cc.on_congestion(now, self.cc.cwnd());
                self.stats.tlp_recoveries += 1;
            }
            // Only a D-SACK of our own retransmission shows reordering; a
            // copy the network made shows nothing about it.
            if let Some((l, r)) = dsack {
                match self.undo.on_dsack(l, r) {
                    Verdict::Unrelated => {}
                    Verdict::Reported => self.rack.on_spurious_retransmission(),
                    Verdict::Spurious => {
                        self.cc.undo();
                        if self.recover.take().is_some() {
                            self.dupacks = 0;
                            self.prr = None;
                        }
                        self.stats.spurious_undos += 1;
                        self.rack.on_spurious_retransmission();
                    }
                }
            }
            for &(l, r) in seg.options.sack() {
                self.scoreboard
                    .add(Seq(l), Seq(r), self.snd_una, self.snd_max);
            }
        }
        let wnd = u32::from(seg.window) << self.opts.snd_wscale;
        let is_dup = ack == self.snd_una
            && payload_len == 0
            && !fin
            && wnd == self.snd_wnd
            && self.snd_max != self.snd_una;
        // Window update, only from a newer segment (3.10.7.4, fifth). An ACK
        // that advances is newer whatever its sequence number: a peer's pure
        // ACKs may carry a higher one than its retransmissions (as ours do,
        // and Linux's), and ignoring them would pair a stale window with a
        // new snd_una and overrun the peer's right edge.
        if ack > self.snd_una || self.snd_wl1 < seq || (self.snd_wl1 == seq && self.snd_wl2 <= ack)
        {
            self.snd_wnd = wnd;
            self.max_snd_wnd = self.max_snd_wnd.max(wnd);
            self.snd_wl1 = seq;
            self.snd_wl2 = ack;
            if wnd > 0 {
                self.timers.stop(Timer::Persist);
                self.persist_backoff = 0;
            } else {
                // The peer answers but its window is shut: waiting for its
                // application is not a dead peer, so no retry is spent.
                self.retries = 0;
            }
        }
        let after_rto = self.rto_recover.is_none_or(|r| ack >= r);
        let recovering = self.recover.is_some() || self.rto_recover.is_some();
        if self
            .ecn
            .on_ack(seg.flags, self.snd_una, self.snd_max, recovering)
        {
            self.cc.on_congestion(now, self.snd_max.since(self.snd_una));
            self.stats.ecn_reductions += 1;
        }
        if ack > self.snd_una {
            self.detect_spurious_rto(seg);
            self.ack_advanced(now, seg, ack);
        } else if is_dup {
            self.dupacks += 1;
            let sack_loss =
                self.opts.sack && self.scoreboard.sacked_above(self.snd_una) > 2 * self.snd_mss;
            if self.recover.is_none() && (self.dupacks >= 3 || sack_loss) && after_rto {
                self.enter_recovery(now);
            }
        }
        if self.opts.sack {
            let mut blocks = [(Seq(0), Seq(0)); MAX_SACK_BLOCKS];
            let mut n = 0;
            for &(l, r) in seg.options.sack() {
                blocks[n] = (Seq(l), Seq(r));
                n += 1;
            }
            self.rack.on_ack(self.snd_una, &blocks[..n], now);
            let lost_before = self.rack.marked_lost();
            self.rack_detect(now, after_rto);
            let safe = self.snd_una > una_before && self.rack.marked_lost() == lost_before;
            if self.recover.is_some()
                && let Some(prr) = self.prr.as_mut()
            {
                let sacked = self.scoreboard.sacked_above(self.snd_una);
                let delivered = (i64::from(self.snd_una.since(una_before)) + i64::from(sacked)
                    - i64::from(sacked_before))
                .clamp(0, i64::from(u32::MAX)) as u32;
                prr.on_ack(
                    delivered,
                    self.rack.pipe(),
                    self.cc.ssthresh(),
                    self.snd_mss,
                    safe,
                );
            }
        }
    }

    /// Runs RACK's loss detection; time-based loss starts recovery like
    /// three duplicate ACKs would (RFC 8985 section 6.2 step 5).
    pub(super) fn rack_detect(&mut self, now: Instant, after_rto: bool) {
        let in_recovery = self.recover.is_some() || self.rto_recover.is_some();
        let reo_wnd = self.rack.reo_wnd(in_recovery, self.rtt.srtt);
        self.timers
            .put(Timer::Rack, self.rack.detect_loss(now, reo_wnd));
        if self.recover.is_none()
            && after_rto
            && self.snd_una != self.snd_max
            && self.rack.next_lost().is_some()
        {
            self.enter_recovery(now);
        }
    }

    /// Eifel detection (RFC 3522): the first ACK of new data after an RTO
    /// echoes a timestamp older than the retransmission's, so it answers
    /// the original, which was only delayed. The response (RFC 4015, as
    /// Linux undoes a spurious RTO): cwnd and ssthresh as before the RTO,
    /// and sending resumes after the last original instead of resending
    /// everything from snd_una.
    fn detect_spurious_rto(&mut self, seg: &TcpRepr) {
        let Some(rtx) = self.rto_tsval.take() else {
            return;
        };
        let Some((_, tsecr)) = seg.options.timestamps else {
            return;
        };
        if tsecr == 0 || (tsecr.wrapping_sub(rtx) as i32) >= 0 {
            return;
        }
        self.cc.undo_rto();
        self.rto_recover = None;
        self.snd_nxt = self.snd_max;
        self.rack.undo_rto();
        self.stats.spurious_rtos += 1;
    }

    /// Fast retransmit (RFC 5681 section 3.2, RFC 6582, RFC 6675).
    fn enter_recovery(&mut self, now: Instant) {
        let flight = self.snd_max.since(self.snd_una);
        self.ecn.on_loss_reduction(self.snd_max);
        self.cc.on_congestion(now, flight);
        self.recover = Some(self.snd_max);
        self.prr = self.opts.sack.then(|| super::prr::Prr::new(flight));
        self.undo.begin(self.snd_una);
        // Recovery's reduction answers whatever the probe found.
        self.tlp.end_episode();
        // The first retransmission goes out whatever the pipe says.
        self.rtx_una = true;
        // No tail loss probe during recovery (RFC 8985 section 7.2); the
        // timer restarts from here for the recovery probe (see `tlp`).
        self.timers.stop(Timer::Pto);
        if self.opts.sack {
            self.rack.mark_lost(self.snd_una);
        }
        self.stats.fast_retransmits += 1;
        if !self.scoreboard.is_empty() {
            self.stats.sack_recoveries += 1;
        }
    }

    /// New data acknowledged: RTT sample, buffer release, timers, recovery
    /// and the FIN-acknowledged transitions.
    fn ack_advanced(&mut self, now: Instant, seg: &TcpRepr, ack: Seq) {
        let acked = ack.since(self.snd_una);
        // Grow cwnd only when it limited the sender (RFC 7661's idea): an
        // application-limited flow would otherwise earn a window it never
        // tested and later dump it on the network in one burst.
        // In slow start, as Linux: while cwnd is below twice the largest
        // flight of this window, so ACKs that arrive as the flight drains
        // still count.
        let cwnd_limited = if self.cc.cwnd() < self.cc.ssthresh() {
            self.cc.cwnd() < self.max_flight.saturating_mul(2)
        } else {
            self.snd_max.since(self.snd_una).saturating_mul(2) >= self.cc.cwnd()
        };
        let ts_sample = match seg.options.timestamps {
            Some((_, tsecr))
                if self.opts.timestamps
                    && tsecr != 0
                    && self
                        .rtx_tsval
                        .is_none_or(|r| (tsecr.wrapping_sub(r) as i32) >= 0) =>
            {
                let ms = self.tsval(now).wrapping_sub(tsecr);
                (ms < 3_600_000).then(|| Duration::from_millis(u64::from(ms)))
            }
            _ => None,
        };
        let probe_sample = match self.rtt_probe {
            Some((end, sent)) if ack >= end => {
                self.rtt_probe = None;
                Some(now.saturating_duration_since(sent))
            }
            _ => None,
        };
        if let Some(r) = ts_sample.or(probe_sample) {
            self.rtt.sample(r);
        }
        let data_acked = (ack.since(self.buf_seq) as usize).min(self.send_buf.len());
        self.send_buf.consume(data_acked);
        self.buf_seq = self.buf_seq + data_acked;
        self.snd_una = ack;
        if self.snd_nxt < ack {
            self.snd_nxt = ack;
        }
        self.scoreboard.ack(ack);
        // The PTO restarts from this ACK (armed again by the next poll).
        self.timers.stop(Timer::Pto);
        self.retries = 0;
        self.rtt.backoff = 0;
        self.timers.put(
            Timer::Rto,
            (self.snd_una != self.snd_max).then(|| now + self.rtt.current()),
        );
        self.user_timeout.una_since = (self.snd_una != self.snd_max).then_some(now);
        // Linux pushes on every ACK with the socket's own Nagle setting:
        // an MSG_MORE hold lasts until then.
        self.hold_tail = false;
        match self.recover {
            Some(rec) if ack >= rec => {
                self.recover = None;
                self.prr = None;
                self.dupacks = 0;
                self.cc.on_recovery_exit();
            }
            Some(_) if !self.opts.sack => {
                // Partial ACK (RFC 6582 section 3.2 step 5): resend the next
                // hole now; the segments it covered left the network.
                self.rtx_una = true;
                self.dupacks = self.dupacks.saturating_sub(acked / self.snd_mss.max(1));
            }
            // With SACK, RACK decides what else is lost.
            Some(_) => {}
            None => {
                self.dupacks = 0;
                if self.state.is_synchronized() && cwnd_limited {
                    self.cc.on_ack(now, acked, self.rtt.srtt);
                    // The send buffer follows cwnd (twice it, as Linux
                    // sizes its send buffer), up to send_buf_max.
                    let want = (self.cc.cwnd() as usize).saturating_mul(2);
                    self.send_buf.grow_capacity(want.min(self.cfg.send_buf_max));
                }
            }
        }
        if self.rto_recover.is_some_and(|r| ack >= r) {
            self.rto_recover = None;
        }
        if self.fin_queued && self.snd_una == self.fin_seq() + 1u32 {
            match self.state {
                State::FinWait1 => {
                    self.state = State::FinWait2;
                    if self.orphaned {
                        self.timers.set(Timer::FinWait2, now + self.cfg.time_wait);
                    }
                }
                State::Closing => self.enter_time_wait(now),
                State::LastAck => self.enter_closed(),
                _ => {}
            }
        }
    }

    /// Sequence number of our FIN (meaningful once `fin_queued`).
    pub(super) fn fin_seq(&self) -> Seq {
        self.buf_seq + self.send_buf.len()
    }

    fn enter_time_wait(&mut self, now: Instant) {
        self.state = State::TimeWait;
        // Everything we sent is acknowledged: no sender timer or pending
        // retransmission survives into TIME-WAIT.
        self.timers.stop(Timer::Rto);
        self.timers.stop(Timer::Persist);
        self.timers.stop(Timer::Pto);
        self.timers.stop(Timer::Rack);
        self.rtx_una = false;
        self.tlp.pending = false;
        self.recover = None;
        self.timers.stop(Timer::Keepalive);
        self.timers.stop(Timer::FinWait2);
        self.timers.set(Timer::TimeWait, now + self.cfg.time_wait);
    }

    /// Stores in-window data (3.10.7.4, seventh) and decides when to ACK
    /// (RFC 9293 section 3.8.6.3, RFC 5681 section 4.2).
    /// `ce`: the segment arrived CE-marked.
    fn take_data(&mut self, now: Instant, seq: Seq, payload: &[u8], ce: bool) {
        let mut seq = seq;
        let mut data = payload;
        if seq < self.rcv_nxt {
            let skip = self.rcv_nxt.since(seq) as usize;
            if skip >= data.len() {
                self.ack.urgent();
                return;
            }
            data = &data[skip..];
            seq = self.rcv_nxt;
        }
        let room = self.rcv_adv.since(seq) as usize;
        data = &data[..data.len().min(room)];
        if data.is_empty() {
            self.ack.due = true;
            return;
        }
        if ce && self.ecn.on_ce() {
            self.ack.urgent();
        }
        let in_order = seq == self.rcv_nxt;
        let had_gaps = self.recv_buf.has_gaps();
        let off = self.recv_buf.contig_end() + u64::from(seq.since(self.rcv_nxt));
        let advanced = self.recv_buf.write(off, data);
        self.rcv_nxt = self.rcv_nxt + advanced;
        self.stats.bytes_in += advanced as u64;
        if !in_order || had_gaps {
            // Out of order, or filling a hole: ACK at once so the sender's
            // loss detection and recovery run (RFC 5681 section 4.2).
            self.ack.urgent();
        } else if self.ack.on_in_order(now, advanced, self.snd_mss) {
            self.timers
                .arm_if_idle(Timer::DelayedAck, now + self.cfg.delayed_ack);
        }
        if self.rcv_fin == Some(self.rcv_nxt) {
            self.take_fin(now, self.rcv_nxt);
        }
    }

    /// A FIN at `fin_seq` (3.10.7.4, eighth). One that arrives before the
    /// data preceding it is remembered until that data fills in.
    fn take_fin(&mut self, now: Instant, fin_seq: Seq) {
        if self.fin_received {
            return;
        }
        if fin_seq != self.rcv_nxt {
            if fin_seq > self.rcv_nxt && fin_seq <= self.rcv_adv && self.rcv_fin.is_none() {
                self.rcv_fin = Some(fin_seq);
            }
            self.ack.due = true;
            return;
        }
        self.rcv_nxt = self.rcv_nxt + 1u32;
        self.rcv_fin = None;
        self.fin_received = true;
        // Linux's tcp_fin resets the SACK state: no D-SACK for data that
        // came again with the FIN.
        self.dsack = None;
        self.ack.due = true;
        let our_fin_acked = self.fin_queued && self.snd_una == self.fin_seq() + 1u32;
        match self.state {
            State::SynReceived | State::Established => {
                self.state = State::CloseWait;
                if self.ack.on_fin(self.snd_mss) {
                    self.timers
                        .arm_if_idle(Timer::DelayedAck, now + self.cfg.delayed_ack);
                }
            }
            State::FinWait1 if our_fin_acked => self.enter_time_wait(now),
            State::FinWait1 => self.state = State::Closing,
            State::FinWait2 => self.enter_time_wait(now),
            _ => {}
        }
    }
}
