//! The transmit path and the timers: which segments are due now, and when
//! the next one will be.
//!
//! Owns segment construction (flags, window advertisement, options), the
//! send-side rules (window and cwnd limits, Nagle and SWS avoidance, RFC 9293
//! sections 3.7.4 and 3.8.6.2), retransmission (RTO per RFC 6298 with
//! go-back-N, fast retransmit per RFC 5681/6582, SACK recovery with RFC
//! 6675's pipe and RACK's loss marks), persist, keepalive, delayed ACK and
//! TIME-WAIT expiry. Must not interpret arriving segments.

use super::conn::Connection;
use super::options::{self, TIMESTAMP_LEN};
use super::seq::Seq;
use super::timer::Timer;
use super::tlp::ProbePath;
use super::{State, TcpError};
use crate::time::Instant;
use crate::wire::tcp::{MAX_SACK_BLOCKS, TcpFlags, TcpOptions, TcpRepr};

impl Connection {
    /// Fires due timers, then hands every segment due at `now` to `emit`
    /// as a header plus a payload borrowed from the send buffer.
    pub fn poll_transmit(&mut self, now: Instant, mut emit: impl FnMut(&TcpRepr, &[u8])) {
        self.last_now = now;
        self.on_timers(now);
        if let Some((seq, with_ack)) = self.rst_to_send.take() {
            let mut rst = self.base_header(seq, TcpFlags::RST);
            if with_ack && self.state != State::SynSent {
                rst.flags |= TcpFlags::ACK;
                rst.ack = self.rcv_nxt.0;
            }
            if self.opts.timestamps && self.state != State::SynSent {
                // RFC 7323 section 3.2: once negotiated, TSopt SHOULD be
                // sent in a RST too (Linux does; packetdrill reset_tsval).
                rst.options.timestamps = Some((self.tsval(now), self.ts_recent));
            }
            self.stats.rsts_out += 1;
            self.stats.segs_out += 1;
            emit(&rst, &[]);
        }
        match self.state {
            State::Closed | State::Listen => return,
            State::SynSent | State::SynReceived if self.snd_nxt == self.iss => {
                self.emit_syn(now, &mut emit);
            }
            _ => {}
        }
        if self.state.is_synchronized() && self.state != State::TimeWait {
            self.emit_recovery(now, &mut emit);
            if std::mem::take(&mut self.tlp.pending) && self.snd_una != self.snd_max {
                self.emit_tlp(now, &mut emit);
            }
            self.emit_new_data(now, &mut emit);
            self.account_send_time(now);
            self.emit_rescue(now, &mut emit);
            self.arm_persist(now);
            self.arm_pto(now);
        } else {
            self.rtx_una = false;
            self.tlp.pending = false;
        }
        if self.probe_pending && self.state.is_synchronized() {
            self.probe_pending = false;
            let probe = self.header(now, self.snd_una - 1u32, TcpFlags::ACK, 0);
            self.stats.segs_out += 1;
            emit(&probe, &[]);
        }
        if self.ack.due && self.state != State::SynSent {
            self.emit_pure_ack(now, &mut emit);
        }
    }

    /// [`Connection::poll_transmit`], telling with each segment whether it
    /// goes ECN-capable, ECT(0): new data of a connection that negotiated
    /// ECN, never a SYN, a pure ACK or a retransmission (RFC 3168 sections
    /// 6.1.1 and 6.1.5).
    pub fn poll_transmit_ect(&mut self, now: Instant, mut emit: impl FnMut(&TcpRepr, &[u8], bool)) {
        let (ecn, new_from) = (self.ecn.agreed, self.snd_max);
        self.poll_transmit(now, |repr, payload| {
            let ect = ecn
                && !payload.is_empty()
                && !repr.flags.contains(TcpFlags::SYN)
                && Seq(repr.seq) >= new_from;
            emit(repr, payload, ect);
        });
    }

    /// Sends the due ACK now if it is urgent (out-of-order, duplicate or
    /// hole-filling data, or two full segments unacknowledged), and
    /// nothing else: the stack calls this after each arriving segment, so
    /// every such segment draws its own ACK, with its own SACK and D-SACK
    /// blocks, however many arrive before the next `poll_transmit`
    /// (RFC 5681 section 4.2; Linux likewise ACKs per received packet,
    /// or per GRO super-packet).
    pub fn poll_urgent_ack(&mut self, now: Instant, mut emit: impl FnMut(&TcpRepr, &[u8])) {
        if self.ack.urgent && self.ack.due && self.state.is_synchronized() {
            self.emit_pure_ack(now, &mut emit);
        }
    }

    fn emit_pure_ack(&mut self, now: Instant, emit: &mut impl FnMut(&TcpRepr, &[u8])) {
        // snd_max, not snd_nxt: after an RTO moved snd_nxt back, the peer
        // may already hold everything below snd_max, and an ACK it finds
        // too old is dropped with its acknowledgement unread.
        let ack = self.header(now, self.snd_max, TcpFlags::ACK, 0);
        self.stats.segs_out += 1;
        emit(&ack, &[]);
    }

    fn base_header(&self, seq: Seq, flags: TcpFlags) -> TcpRepr {
        TcpRepr {
            src_port: self.local.port(),
            dst_port: self.remote.port(),
            seq: seq.0,
            flags,
            ..TcpRepr::default()
        }
    }

    /// Our timestamp clock: milliseconds, offset per connection (RFC 7323
    /// section 5.4 suggests a random offset; the ISS is one).
    pub(super) fn tsval(&self, now: Instant) -> u32 {
        (now.total_millis() as u32).wrapping_add(self.iss.0)
    }

    /// A non-SYN header: ACK, window, timestamps, SACK blocks. Sending it
    /// satisfies any pending ACK. `payload_len` bytes travel with it: a
    /// full-sized segment has room for timestamps only (the MSS was cut
    /// for them), so SACK blocks go only where the segment stays within
    /// the peer's MSS (RFC 9293 section 3.7.1: the MSS bounds data plus
    /// options).
    fn header(&mut self, now: Instant, seq: Seq, flags: TcpFlags, payload_len: usize) -> TcpRepr {
        let mut repr = self.base_header(seq, flags | TcpFlags::ACK);
        repr.flags |= self.ecn.header_flags();
        repr.ack = self.rcv_nxt.0;
        repr.window = self.advertise_window();
        let mut room = MAX_SACK_BLOCKS;
        let ts_bytes = if self.opts.timestamps {
            usize::from(TIMESTAMP_LEN)
        } else {
            0
        };
        if self.opts.timestamps {
            repr.options.timestamps = Some((self.tsval(now), self.ts_recent));
            room = 3;
        }
        if payload_len > 0 {
            // Option bytes left: the MSS (with the timestamp allowance)
            // minus the payload; a SACK option takes 2 bytes of padding,
            // 2 of kind and length, and 8 per block.
            let left = (self.snd_mss as usize + ts_bytes)
                .saturating_sub(payload_len)
                .saturating_sub(ts_bytes);
            room = room.min(left.saturating_sub(4) / 8);
        }
        if self.opts.sack {
            repr.options = self.sack_blocks(repr.options, room);
        }
        self.last_ack_sent = self.rcv_nxt;
        self.ack.on_sent();
        self.timers.stop(Timer::DelayedAck);
        repr
    }

    /// D-SACK first (RFC 2883), then the most recent out-of-order block,
    /// then the others (RFC 2018 section 4).
    fn sack_blocks(&mut self, mut opts: TcpOptions, room: usize) -> TcpOptions {
        let mut n = 0;
        if let Some((l, r)) = self.dsack.take() {
            opts.sack_blocks[0] = (l.0, r.0);
            n = 1;
        }
        let base = self.recv_buf.contig_end();
        for (s, e) in self.recv_buf.sack_ranges() {
            if n >= room {
                break;
            }
            let l = self.rcv_nxt + (s - base) as u32;
            let r = self.rcv_nxt + (e - base) as u32;
            opts.sack_blocks[n] = (l.0, r.0);
            n += 1;
        }
        opts.sack_len = n as u8;
        opts
    }

    /// The window field (RFC 9293 section 3.8.6.2.2 receiver SWS avoidance;
    /// RFC 7323 section 2.4: the right edge never moves left).
    fn advertise_window(&mut self) -> u16 {
        let shift = self.opts.rcv_wscale;
        let free = self.recv_buf.window().min(0xffff << shift) as u32;
        let current = self.rcv_adv.since(self.rcv_nxt);
        let step = (self.recv_buf.capacity() as u32 / 2).min(u32::from(self.cfg.mss));
        let wnd = if free > current && free - current < step {
            current
        } else {
            free.max(current)
        };
        let field = (wnd >> shift).min(0xffff);
        self.rcv_adv = self.rcv_adv.max(self.rcv_nxt + (field << shift));
        field as u16
    }

    fn emit_syn(&mut self, now: Instant, emit: &mut impl FnMut(&TcpRepr, &[u8])) {
        let syn_ack = self.state == State::SynReceived;
        let tsval = self.tsval(now);
        let mut repr = self.base_header(self.iss, TcpFlags::SYN);
        let window = self.recv_buf.window().min(0xffff) as u16;
        repr.window = window;
        if syn_ack {
            repr.flags |= TcpFlags::ACK;
            repr.ack = self.rcv_nxt.0;
            self.rcv_adv = self.rcv_adv.max(self.rcv_nxt + u32::from(window));
            repr.options = TcpOptions {
                mss: Some(self.cfg.mss),
                window_scale: self.opts.window_scaling.then_some(self.opts.rcv_wscale),
                sack_permitted: self.opts.sack,
                timestamps: self.opts.timestamps.then_some((tsval, self.ts_recent)),
                ..TcpOptions::default()
            };
        } else {
            repr.options = options::syn_options(&self.cfg, None, tsval);
        }
        let first = self.snd_max == self.iss;
        repr.flags |= if syn_ack {
            self.ecn.syn_ack_flags()
        } else {
            self.ecn.syn_flags(self.cfg.ecn, first)
        };
        if !first {
            self.stats.retransmits += 1;
            self.rtt_probe = None;
        } else {
            self.rtt_probe = Some((self.iss + 1u32, now));
        }
        self.snd_nxt = self.iss + 1u32;
        self.snd_max = self.snd_max.max(self.snd_nxt);
        self.timers
            .arm_if_idle(Timer::Rto, now + self.rtt.current());
        self.user_timeout.una_since.get_or_insert(now);
        self.ack.due = false;
        self.stats.segs_out += 1;
        emit(&repr, &[]);
    }

    /// Sends `[seq, seq + len)` from the send buffer, with FIN if asked
    /// and PSH if `cwnd_cut` (see `next_segment`); returns the sequence
    /// space used.
    pub(super) fn emit_segment(
        &mut self,
        now: Instant,
        seq: Seq,
        len: usize,
        fin: bool,
        cwnd_cut: bool,
        emit: &mut impl FnMut(&TcpRepr, &[u8]),
    ) -> u32 {
        let off = seq.since(self.buf_seq) as usize;
        let mut flags = TcpFlags::ACK;
        if fin {
            flags |= TcpFlags::FIN;
        }
        // PSH marks the end of each write (RFC 9293 section 3.9.1.2;
        // Linux marks the tail of every write not sent with MSG_MORE),
        // wherever the segment stands in the buffer, retransmissions
        // too. What the persist timer sends carries PSH whatever was
        // written (Linux's tcp_write_wakeup), and so does new data cut
        // short by the congestion window, as Linux 6.18 sends it.
        let probe_push = len > 0 && std::mem::take(&mut self.probe_push);
        if len > 0 && (self.send_buf.is_write_end(off + len) || cwnd_cut) || probe_push {
            flags |= TcpFlags::PSH;
        }
        if len > 0 && seq >= self.snd_max && self.ecn.take_cwr() {
            // The first new data after an ECE reduction (RFC 3168 6.1.2).
            flags |= TcpFlags::CWR;
        }
        let repr = self.header(now, seq, flags, len);
        let used = len as u32 + u32::from(fin);
        if len > 0 {
            self.ack.on_reply(now, self.cfg.delayed_ack);
        }
        if self.opts.sack {
            // One record per MSS-sized piece even for a super-segment: the
            // link cuts it into such pieces, and recovery resends one MSS
            // at a time.
            let (end, mss) = (seq + used, self.snd_mss.max(1));
            let mut start = seq;
            while start < end {
                let data_left = end.since(start) - u32::from(fin);
                let piece = if data_left > mss { start + mss } else { end };
                self.rack.on_send(start, piece, now, seq < self.snd_max);
                start = piece;
            }
        }
        if self.recover.is_some()
            && let Some(prr) = self.prr.as_mut()
        {
            prr.on_send(used);
        }
        if seq < self.snd_max {
            self.stats.retransmits += 1;
            self.undo.on_retransmit(seq, seq + used);
            // Karn's rule: no RTT sample across a retransmission.
            self.rtt_probe = None;
            self.rtx_tsval = Some(self.tsval(now));
        } else {
            // New data restarts the probe timeout (RFC 8985 section 7.2).
            self.timers.stop(Timer::Pto);
            if self.rtt_probe.is_none() && !self.opts.timestamps {
                self.rtt_probe = Some((seq + used, now));
            }
        }
        emit(&repr, self.send_buf.slice(off, len));
        self.snd_max = self.snd_max.max(seq + used);
        let flight = self.snd_max.since(self.snd_una);
        if self.snd_una >= self.cwnd_usage_seq || flight > self.max_flight {
            self.max_flight = flight;
            self.cwnd_usage_seq = self.snd_max;
        }
        self.timers
            .arm_if_idle(Timer::Rto, now + self.rtt.current());
        self.user_timeout.una_since.get_or_insert(now);
        if len > 0 {
            self.user_timeout.probe_since = None;
        }
        self.stats.segs_out += 1;
        self.stats.bytes_out += len as u64;
        used
    }

    /// Bytes believed in the network: RFC 6675's pipe in recovery, else
    /// everything from snd_una to snd_nxt.
    fn flight(&self) -> u32 {
        if self.recover.is_none() {
            return self.snd_nxt.since(self.snd_una);
        }
        if self.opts.sack {
            return self.rack.pipe();
        }
        // Without SACK each duplicate ACK stands for one segment that left.
        self.snd_max
            .since(self.snd_una)
            .saturating_sub(self.dupacks.saturating_mul(self.snd_mss))
    }

    /// Bytes congestion control lets out now: PRR's allowance during a
    /// SACK recovery (RFC 6937), else cwnd minus what is in flight.
    fn send_room(&self) -> u32 {
        match &self.prr {
            Some(prr) if self.recover.is_some() => prr.allowance(),
            _ => self.cc.cwnd().saturating_sub(self.flight()),
        }
    }

    /// Without SACK: the segment at snd_una (fast retransmit, partial ACK).
    /// With SACK: every segment RACK deems lost while pipe < cwnd, the
    /// first one regardless (RFC 6675 section 5, RFC 8985 section 6).
    fn emit_recovery(&mut self, now: Instant, emit: &mut impl FnMut(&TcpRepr, &[u8])) {
        let mut force = std::mem::take(&mut self.rtx_una);
        if !self.opts.sack {
            if force && self.snd_una < self.snd_max {
                self.retransmit_range(now, self.snd_una, self.snd_max, emit);
            }
            return;
        }
        if self.recover.is_none() {
            return;
        }
        while force || self.send_room() > 0 {
            force = false;
            let Some((start, end)) = self.rack.next_lost() else {
                break;
            };
            if self.retransmit_range(now, start, end, emit) == 0 {
                break;
            }
        }
    }

    /// The rescue retransmission (RFC 6675 section 4, NextSeg rule 4): in
    /// a SACK recovery with room to send but nothing RACK calls lost and
    /// no new data to go, the highest unSACKed segment goes again, once per
    /// recovery. A lost tail with nothing sent after it gives RACK nothing
    /// to compare with, and no probe runs during recovery; this is its
    /// only repair short of the RTO. Only such a tail is rescued: a hole
    /// below SACKed data is RACK's to call lost (or reordered), and a
    /// segment already resent is RACK's to watch.
    fn emit_rescue(&mut self, now: Instant, emit: &mut impl FnMut(&TcpRepr, &[u8])) {
        let Some(recovery_point) = self.recover else {
            return;
        };
        if !self.opts.sack
            || self.rescue_rxt.is_some_and(|r| self.snd_una <= r)
            || self.snd_nxt != self.snd_max
            || self.send_room() == 0
            || self.rack.next_lost().is_some()
        {
            return;
        }
        let Some((start, end)) = self.rack.unsacked_tail() else {
            return;
        };
        // Whole segment ending at the highest unSACKed byte (one MSS).
        let start = start.max(end - self.snd_mss);
        if self.retransmit_range(now, start, end, emit) > 0 {
            self.rescue_rxt = Some(recovery_point);
            self.stats.rescue_retransmits += 1;
        }
    }

    /// Resends at most one MSS from `[start, end)`; returns the space used.
    fn retransmit_range(
        &mut self,
        now: Instant,
        start: Seq,
        end: Seq,
        emit: &mut impl FnMut(&TcpRepr, &[u8]),
    ) -> u32 {
        let off = start.since(self.buf_seq) as usize;
        let buffered = self.send_buf.len();
        let data_left = buffered.saturating_sub(off);
        let len = (end.since(start) as usize)
            .min(self.snd_mss as usize)
            .min(data_left);
        let len = self.send_buf.slice(off, len).len();
        let fin = self.fin_queued && off + len == buffered && start + len < self.snd_max;
        if len == 0 && !fin {
            return 0;
        }
        self.emit_segment(now, start, len, fin, false, emit)
    }

    /// New data (and, after an RTO, everything from snd_nxt again).
    fn emit_new_data(&mut self, now: Instant, emit: &mut impl FnMut(&TcpRepr, &[u8])) {
        while let Some((len, fin, cwnd_cut)) = self.next_segment() {
            let used = self.emit_segment(now, self.snd_nxt, len, fin, cwnd_cut, emit);
            self.snd_nxt = self.snd_nxt + used;
        }
    }

    /// Tells the chrono what this transmit pass left: idle (nothing queued
    /// or in flight), or data waiting that the receive window refuses
    /// (Linux's is_rwnd_limited: the next segment does not fit it).
    fn account_send_time(&mut self, now: Instant) {
        let queued = self.send_buf.len();
        if queued == 0 && self.snd_una == self.snd_max {
            self.chrono.on_idle(now);
            return;
        }
        let off = self.snd_nxt.since(self.buf_seq) as usize;
        let waiting = queued.saturating_sub(off);
        let wnd_room = (self.snd_una + self.snd_wnd).diff(self.snd_nxt).max(0) as usize;
        let next = waiting.min(self.snd_mss as usize);
        self.chrono.on_transmit(now, waiting > 0 && wnd_room < next);
    }

    /// The next segment at snd_nxt, if the windows and the sender-side rules
    /// allow one: its length, whether FIN goes with it, and whether it is
    /// new data cut short by the congestion window outside loss recovery
    /// with the peer's window still open beyond it. Linux (6.18, observed
    /// with packetdrill) pushes such a segment, the last of a
    /// cwnd-limited burst, but not one cut by the receive window or by
    /// PRR during a recovery.
    fn next_segment(&mut self) -> Option<(usize, bool, bool)> {
        if !matches!(
            self.state,
            State::Established
                | State::CloseWait
                | State::FinWait1
                | State::Closing
                | State::LastAck
        ) {
            return None;
        }
        let off = self.snd_nxt.since(self.buf_seq) as usize;
        let buffered = self.send_buf.len();
        if off > buffered || (off == buffered && !self.fin_queued) {
            return None;
        }
        // A record (MSG_EOR) that is not the tail goes whole, its short
        // last piece inside the super-segment, and nothing joins it: Linux
        // sends such an skb whole (tcp_mss_split_point) and never appends
        // to it.
        let record_end = self.send_buf.record_end_after(off);
        let avail = record_end.unwrap_or(buffered) - off;
        let retransmitting = self.snd_nxt < self.snd_max;
        let mut wnd_room = (self.snd_una + self.snd_wnd).diff(self.snd_nxt).max(0) as usize;
        if retransmitting && self.snd_nxt == self.snd_una && wnd_room == 0 {
            // After an RTO the first segment goes even into a window that
            // closed meanwhile: it probes the window, as the persist timer
            // would if nothing were in flight (RFC 9293 section 3.8.6.1).
            wnd_room = self.snd_mss as usize;
        }
        // While anything of cwnd is left, a full segment may go, as Linux
        // counts cwnd in packets: a sender stuck with, say, 700 bytes of
        // room and nothing else to clock it out would wait for the RTO.
        let mss = self.snd_mss as usize;
        let seg_max = self.seg_max() as usize;
        let cwnd_room = match self.send_room() {
            0 => 0,
            room => (room as usize).div_ceil(mss) * mss,
        };
        let mut full = avail.min(seg_max).min(wnd_room).min(cwnd_room);
        let whole_record = record_end.is_some() && full == avail;
        if full > mss && !whole_record {
            // A super-segment carries whole MSS-sized pieces; the rest
            // waits for the rules below, as a short segment would.
            full -= full % mss;
        }
        let len = self.send_buf.slice(off, full).len();
        let fin = self.fin_queued && off + len == buffered && (len > 0 || cwnd_room > 0);
        if len == 0 && !fin {
            return None;
        }
        let nothing_in_flight = self.snd_max == self.snd_una;
        // A cork (TCP_CORK, or MSG_MORE on the last send) holds partial
        // segments back whatever Nagle would do.
        let corked = self.cfg.cork || self.hold_tail;
        let nagle_ok = !corked && (self.cfg.nodelay || nothing_in_flight);
        let ok = retransmitting
            || whole_record
            || std::mem::take(&mut self.force_send)
            || full >= self.snd_mss as usize
            || fin
            // The last of the data: Nagle lets it go when nothing is
            // unacknowledged (RFC 9293 section 3.7.4).
            || (full == avail && nagle_ok)
            // Sender SWS: at least half the largest window seen (3.8.6.2.1).
            || (self.max_snd_wnd > 0 && full >= (self.max_snd_wnd / 2) as usize && nagle_ok);
        // This segment takes what is left of cwnd, more data waits, and
        // the peer's window would take more of it.
        let cwnd_cut = !retransmitting
            && self.recover.is_none()
            && len == full
            && full >= cwnd_room
            && avail > full
            && wnd_room > full;
        ok.then_some((len, fin, cwnd_cut))
    }

    /// The largest segment to build: one MSS, or with TSO as many whole
    /// MSS-sized pieces as `tso_max` holds, while the peer takes segments
    /// as large as the link's (otherwise the link's cuts would be too big).
    fn seg_max(&self) -> u32 {
        let mss = self.snd_mss.max(1);
        if self.cfg.tso_max <= mss || self.opts.peer_mss < self.cfg.mss {
            return mss;
        }
        self.cfg.tso_max / mss * mss
    }

    /// Arms the PTO when a probe could help: SACK in use, data
    /// outstanding, a state that sends, and what `Tlp::deadline` asks.
    fn arm_pto(&mut self, now: Instant) {
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
        if self.timers.is_armed(Timer::Pto) || !sending || !self.opts.sack {
            return;
        }
        let path = ProbePath {
            srtt: self.rtt.srtt,
            rack_rtt: self.rack.latest_rtt(),
            rto: self.rtt.current(),
            backoff: self.rtt.backoff,
            rto_at: self.timers.get(Timer::Rto),
            snd_una: self.snd_una,
            flight: self.snd_max.since(self.snd_una),
            mss: self.snd_mss,
            recover: self.recover,
        };
        if let Some(at) = self.tlp.deadline(now, &path) {
            self.timers.set(Timer::Pto, at);
        }
    }

    /// Sends the due probe: the recovery probe during a fast recovery,
    /// else the tail loss probe (see `tlp`). A probe restarts the RTO; one
    /// that could not go out leaves it where it was.
    fn emit_tlp(&mut self, now: Instant, emit: &mut impl FnMut(&TcpRepr, &[u8])) {
        let sent = match self.recover {
            Some(recovery_point) => self.emit_recovery_probe(now, recovery_point, emit),
            None => self.emit_tail_probe(now, emit),
        };
        let rto = self.tlp.rto_after(sent, now + self.rtt.current());
        self.timers.put(Timer::Rto, rto);
    }

    /// The tail loss probe: the last segment again (why not new data:
    /// `tlp`'s module docs).
    fn emit_tail_probe(&mut self, now: Instant, emit: &mut impl FnMut(&TcpRepr, &[u8])) -> bool {
        let start = (self.snd_max - self.snd_mss).max(self.snd_una);
        if self.retransmit_range(now, start, self.snd_max, emit) == 0 {
            return false;
        }
        self.tlp.on_tail_probe(start, self.snd_una, self.snd_max);
        self.stats.tlp_probes += 1;
        true
    }

    /// The recovery probe (`tlp`'s module docs): the first segment RACK
    /// deems lost, else the first one not SACKed, once per recovery.
    fn emit_recovery_probe(
        &mut self,
        now: Instant,
        recovery_point: Seq,
        emit: &mut impl FnMut(&TcpRepr, &[u8]),
    ) -> bool {
        self.tlp.on_recovery_probe(recovery_point);
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

    /// The persist timer runs while data waits and nothing is in flight
    /// to bring an ACK (RFC 9293 section 3.8.6.1).
    fn arm_persist(&mut self, now: Instant) {
        let unsent = self.snd_nxt.since(self.buf_seq) < self.send_buf.len() as u32;
        if unsent && self.snd_una == self.snd_max && !self.timers.is_armed(Timer::Rto) {
            if !self.timers.is_armed(Timer::Persist) {
                let wait = self
                    .rtt
                    .current()
                    .saturating_mul(1 << self.persist_backoff.min(10));
                self.timers
                    .set(Timer::Persist, now + wait.min(self.cfg.max_rto));
            }
        } else {
            self.timers.stop(Timer::Persist);
        }
    }

    /// When TCP_USER_TIMEOUT runs out: sent data unacknowledged, or
    /// zero-window probes unanswered, for that long (RFC 5482 section 2).
    pub(super) fn user_timeout_at(&self) -> Option<Instant> {
        let timeout = self.cfg.user_timeout?;
        if self.state == State::TimeWait {
            return None;
        }
        let unsent = self.snd_nxt.since(self.buf_seq) < self.send_buf.len() as u32;
        self.user_timeout.deadline(
            timeout,
            self.snd_una != self.snd_max,
            self.snd_wnd == 0 && unsent,
        )
    }

    fn on_timers(&mut self, now: Instant) {
        if self.timers.is_due(Timer::TimeWait, now) || self.timers.is_due(Timer::FinWait2, now) {
            self.enter_closed();
            return;
        }
        if self.user_timeout_at().is_some_and(|t| now >= t) {
            self.fail(TcpError::TimedOut);
            return;
        }
        // A PTO due no later than the RTO stands in for it: the probe goes
        // out and the RTO restarts, without backoff (Linux's loss-probe
        // timer replaces the retransmission timer; RFC 8985 section 7.2
        // clamps the PTO to the RTO).
        if self
            .timers
            .get(Timer::Pto)
            .is_some_and(|t| now >= t && self.timers.get(Timer::Rto).is_none_or(|rto| t <= rto))
        {
            self.timers.stop(Timer::Pto);
            self.tlp.fire(self.timers.get(Timer::Rto));
            self.timers.set(Timer::Rto, now + self.rtt.current());
        }
        if self.timers.is_due(Timer::Rto, now) {
            self.on_rto(now);
            if self.state == State::Closed {
                return;
            }
        }
        if self.timers.is_due(Timer::Rack, now) {
            let after_rto = self.rto_recover.is_none();
            self.rack_detect(now, after_rto);
        }
        if self.timers.is_due(Timer::Persist, now) {
            self.timers.stop(Timer::Persist);
            if self.snd_wnd == 0 {
                self.probe_pending = true;
                self.user_timeout.probe_since.get_or_insert(now);
                self.persist_backoff = self.persist_backoff.saturating_add(1);
            } else {
                // Also the ceiling on a cork: with nothing in flight the
                // held segment goes after one RTO (Linux: 200 ms at least).
                self.force_send = true;
                self.probe_push = true;
                self.hold_tail = false;
            }
        }
        if self.timers.is_due(Timer::Keepalive, now) {
            self.on_keepalive(now);
        }
        if self.timers.is_due(Timer::DelayedAck, now) {
            self.timers.stop(Timer::DelayedAck);
            self.ack.due = true;
        }
    }

    /// RFC 6298 section 5.4-5.6, with go-back-N from snd_una (RFC 5681
    /// section 3.1: cwnd to one segment).
    fn on_rto(&mut self, now: Instant) {
        self.timers.stop(Timer::Rto);
        if self.snd_una == self.snd_max {
            return;
        }
        let limit = if self.state.is_synchronized() {
            self.cfg.retries
        } else {
            self.cfg.syn_retries
        };
        // With TCP_USER_TIMEOUT the time limit replaces the count.
        if self.cfg.user_timeout.is_none() && self.retries >= limit {
            self.fail(TcpError::TimedOut);
            return;
        }
        self.retries += 1;
        self.stats.rto_expiries += 1;
        log::trace!(
            "tcp {} -> {}: RTO #{} in {:?}, snd_una {:?} snd_max {:?}",
            self.local,
            self.remote,
            self.retries,
            self.state,
            self.snd_una,
            self.snd_max
        );
        // Only the first RTO of a silence is judged by Eifel detection.
        self.rto_tsval =
            (self.opts.timestamps && self.state.is_synchronized() && self.rto_recover.is_none())
                .then(|| self.tsval(now));
        let flight = self.flight();
        self.cc.on_rto(flight);
        self.rtt.back_off();
        self.snd_nxt = self.snd_una;
        if !self.state.is_synchronized() {
            self.snd_nxt = self.iss;
        }
        self.rto_recover = Some(self.snd_max);
        self.recover = None;
        self.prr = None;
        self.dupacks = 0;
        self.rtx_una = false;
        self.timers.stop(Timer::Pto);
        self.tlp.end_episode();
        self.undo.forget();
        self.scoreboard.clear();
        self.rack.on_rto();
        self.timers.stop(Timer::Rack);
        self.rtt_probe = None;
        self.timers.set(Timer::Rto, now + self.rtt.current());
    }

    fn on_keepalive(&mut self, now: Instant) {
        self.timers.stop(Timer::Keepalive);
        let Some(ka) = self.cfg.keepalive else {
            return;
        };
        if !matches!(self.state, State::Established | State::CloseWait) {
            return;
        }
        if self.snd_una != self.snd_max {
            // Data in flight: the retransmission timer watches the peer.
            self.timers.set(Timer::Keepalive, now + ka.idle);
            return;
        }
        if self.keepalive_probes >= ka.count {
            self.fail(TcpError::TimedOut);
            return;
        }
        self.keepalive_probes += 1;
        self.probe_pending = true;
        self.timers.set(Timer::Keepalive, now + ka.interval);
    }
}
