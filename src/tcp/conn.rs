//! The TCB: one connection's state and its application-facing API.
//!
//! Owns every variable of RFC 9293 section 3.3.1 for one connection. The
//! arrival path is in `input.rs`, the transmit path and timers in
//! `output.rs`; this file holds construction, the application calls and
//! readiness queries. Must not touch the socket table or other connections.

use super::ack::AckPolicy;
use super::cc::CongestionControl;
use super::ecn::EcnState;
use super::options::{self, Negotiated, TIMESTAMP_LEN};
use super::prr::Prr;
use super::rack::Rack;
use super::recv_buf::{RecvBuffer, RecvTuning};
use super::rtt::RttEstimator;
use super::sack::Scoreboard;
use super::send_buf::SendBuffer;
use super::seq::Seq;
use super::sockopt::{CaState, OptionsInUse, Outstanding};
use super::timer::{Timer, TimerTable, UserTimeout};
use super::tlp::Tlp;
use super::undo::Undo;
use super::{Counters, State, TcpConfig, TcpError};
use crate::time::Instant;
use crate::wire::tcp::TcpRepr;
use std::net::SocketAddr;

/// Linux's `ip_rt_min_pmtu`: the smallest IPv4 path MTU it believes.
const IPV4_MIN_PMTU: u16 = 552;
/// The IPv6 minimum link MTU (RFC 8200 section 5).
const IPV6_MIN_MTU: u16 = 1280;

/// ICMP errors the stack relays to a connection.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum IcmpError {
    /// Port unreachable (or administratively prohibited).
    PortUnreachable,
    /// Host unreachable (and the other codes but network).
    HostUnreachable,
    /// Network unreachable, or no route (the link had none: Linux's
    /// connect fails with ENETUNREACH then).
    NetUnreachable,
    /// Fragmentation needed / packet too big, with the next-hop MTU.
    PacketTooBig {
        /// The next-hop MTU in bytes, from the ICMP message (0 if the
        /// router sent none).
        mtu: u16,
    },
}

/// One TCP connection (a TCB), driven sans-IO.
///
/// Two connections talking through a `Vec` instead of a network: the
/// three-way handshake, then five bytes.
///
/// ```
/// use std::net::SocketAddr;
/// use ustack::Instant;
/// use ustack::tcp::{Connection, State, TcpConfig, TcpRepr};
///
/// fn drain(c: &mut Connection, now: Instant) -> Vec<(TcpRepr, Vec<u8>)> {
///     let mut out = Vec::new();
///     c.poll_transmit(now, |seg, payload| out.push((*seg, payload.to_vec())));
///     out
/// }
///
/// let a: SocketAddr = "10.77.0.2:40000".parse().unwrap();
/// let b: SocketAddr = "10.77.0.1:80".parse().unwrap();
/// let now = Instant::from_millis(1);
///
/// let mut client = Connection::connect(TcpConfig::default(), a, b, 1000, now);
/// let syn = drain(&mut client, now);
/// assert_eq!(syn.len(), 1);
/// let mut server = Connection::accept(TcpConfig::default(), b, a, &syn[0].0, 5000, now);
/// for (seg, data) in drain(&mut server, now) {
///     client.on_segment(now, &seg, &data); // SYN-ACK
/// }
/// assert_eq!(client.state(), State::Established);
/// for (seg, data) in drain(&mut client, now) {
///     server.on_segment(now, &seg, &data); // ACK
/// }
/// assert_eq!(server.state(), State::Established);
///
/// assert_eq!(client.send(b"hello"), Ok(5));
/// for (seg, data) in drain(&mut client, now) {
///     server.on_segment(now, &seg, &data);
/// }
/// let mut buf = [0u8; 16];
/// assert_eq!(server.recv(&mut buf), Ok(5));
/// assert_eq!(&buf[..5], b"hello");
/// ```
#[derive(Debug)]
pub struct Connection {
    pub(super) cfg: TcpConfig,
    pub(super) local: SocketAddr,
    pub(super) remote: SocketAddr,
    pub(super) state: State,

    // Send sequence space (RFC 9293 section 3.3.1).
    pub(super) iss: Seq,
    pub(super) snd_una: Seq,
    /// The next sequence number to send; moved back to snd_una after an RTO
    /// (go-back-N), so it can be below `snd_max`.
    pub(super) snd_nxt: Seq,
    /// The highest sequence number sent plus one.
    pub(super) snd_max: Seq,
    pub(super) snd_wnd: u32,
    pub(super) max_snd_wnd: u32,
    pub(super) snd_wl1: Seq,
    pub(super) snd_wl2: Seq,
    /// Sequence number of `send_buf`'s first byte.
    pub(super) buf_seq: Seq,
    pub(super) send_buf: SendBuffer,
    /// The application shut down writing: FIN goes after the buffer.
    pub(super) fin_queued: bool,
    /// The last `send` said MSG_MORE: its partial segment waits for the
    /// next `send`, an ACK of new data or the persist timer (Linux corks only the push that
    /// ends that call).
    pub(super) hold_tail: bool,
    /// The persist timer fired with the window open: the segment it lets
    /// go carries PSH.
    pub(super) probe_push: bool,
    /// The most bytes in flight in the current window (until snd_una
    /// passes `cwnd_usage_seq`): slow start grows cwnd while it is below
    /// twice this, as Linux's tcp_is_cwnd_limited does.
    pub(super) max_flight: u32,
    pub(super) cwnd_usage_seq: Seq,

    // Receive sequence space.
    pub(super) irs: Seq,
    pub(super) rcv_nxt: Seq,
    /// Right edge of the window last advertised (never moves left).
    pub(super) rcv_adv: Seq,
    pub(super) recv_buf: RecvBuffer,
    /// A FIN that arrived before the data preceding it.
    pub(super) rcv_fin: Option<Seq>,
    pub(super) fin_received: bool,

    // Negotiated options.
    pub(super) opts: Negotiated,
    /// Payload bytes per segment: peer MSS minus option overhead.
    pub(super) snd_mss: u32,
    pub(super) ts_recent: u32,
    pub(super) last_ack_sent: Seq,
    /// A D-SACK block (RFC 2883) for the next ACK.
    pub(super) dsack: Option<(Seq, Seq)>,

    // Timers.
    /// Every deadline of the connection.
    pub(super) timers: TimerTable,
    pub(super) rtt: RttEstimator,
    /// Karn's rule: the one segment being timed (end seq, send time); cleared
    /// when anything is retransmitted (RFC 6298 section 3).
    pub(super) rtt_probe: Option<(Seq, Instant)>,
    /// Our TSval at the latest retransmission. An echo older than it may
    /// come from an ACK of a duplicate (its TS.Recent predates the loss),
    /// so it gives no RTT sample: Karn's rule for timestamps.
    pub(super) rtx_tsval: Option<u32>,
    /// TSval of the retransmission a first RTO sent: an ACK echoing an
    /// older one was sent for the original, so the RTO was spurious
    /// (Eifel detection, RFC 3522).
    pub(super) rto_tsval: Option<u32>,
    pub(super) retries: u32,
    /// The clocks of TCP_USER_TIMEOUT.
    pub(super) user_timeout: UserTimeout,
    /// The tail loss probe and the recovery probe.
    pub(super) tlp: Tlp,
    /// The last fast recovery, until it is proven spurious or superseded.
    pub(super) undo: Undo,
    /// Proportional rate reduction of the SACK recovery under way.
    pub(super) prr: Option<Prr>,
    /// RescueRxt (RFC 6675 section 4, NextSeg rule 4): the recovery point
    /// when the last rescue retransmission went out.
    pub(super) rescue_rxt: Option<Seq>,
    pub(super) persist_backoff: u32,
    /// Set when the persist timer fires with a nonzero window: send even a
    /// small segment (the SWS "override timeout", RFC 9293 3.8.6.2.1).
    pub(super) force_send: bool,
    pub(super) keepalive_probes: u32,
    pub(super) last_now: Instant,
    /// When the peer last sent an ACK: the user timeout counts from it.
    pub(super) heard_at: Instant,

    /// Receive-buffer tuning (dynamic right-sizing).
    pub(super) recv_tuning: RecvTuning,

    /// When to ACK.
    pub(super) ack: AckPolicy,
    /// Send-time accounting for TCP_INFO.
    pub(super) chrono: super::Chrono,

    /// ECN (RFC 3168 section 6.1).
    pub(super) ecn: EcnState,
    /// When the handshake completed.
    pub(super) established_at: Option<Instant>,

    // Congestion control and loss recovery.
    pub(super) cc: Box<dyn CongestionControl>,
    pub(super) dupacks: u32,
    /// In fast recovery until this is acknowledged (RFC 6582 "recover").
    pub(super) recover: Option<Seq>,
    /// snd_max at the last RTO: no fast retransmit for duplicate ACKs below
    /// it (RFC 6582 section 3.2 step 2).
    pub(super) rto_recover: Option<Seq>,
    /// Retransmit the segment at snd_una on the next poll (fast retransmit,
    /// partial ACK).
    pub(super) rtx_una: bool,
    pub(super) scoreboard: Scoreboard,
    /// RACK loss detection (with SACK only) and its reordering timer.
    pub(super) rack: Rack,

    /// RFC 5961 section 7 throttling: challenge ACKs sent in the second
    /// that began at `challenge_epoch`.
    pub(super) challenge_epoch: Instant,
    pub(super) challenge_count: u32,
    /// When an out-of-window bare ACK was last answered.
    pub(super) oow_ack_at: Option<Instant>,

    // Status.
    pub(super) error: Option<TcpError>,
    /// A RST to emit: its sequence number and whether it carries an ACK.
    pub(super) rst_to_send: Option<(Seq, bool)>,
    /// Emit a keepalive or zero-window probe (SEG.SEQ = SND.UNA - 1).
    pub(super) probe_pending: bool,
    /// `close()` was called: nothing will read any more.
    pub(super) orphaned: bool,
    pub(super) stats: Counters,
}

impl Connection {
    fn new(cfg: TcpConfig, local: SocketAddr, remote: SocketAddr, iss: u32, now: Instant) -> Self {
        let iss = Seq(iss);
        let rtt = RttEstimator::new(cfg.initial_rto, cfg.min_rto, cfg.max_rto);
        let mss = u32::from(cfg.mss);
        Connection {
            local,
            remote,
            state: State::Closed,
            iss,
            snd_una: iss,
            snd_nxt: iss,
            snd_max: iss,
            snd_wnd: 0,
            max_snd_wnd: 0,
            snd_wl1: Seq(0),
            snd_wl2: iss,
            buf_seq: iss + 1u32,
            send_buf: SendBuffer::new(cfg.send_buf),
            fin_queued: false,
            hold_tail: false,
            probe_push: false,
            max_flight: 0,
            cwnd_usage_seq: iss,
            irs: Seq(0),
            rcv_nxt: Seq(0),
            rcv_adv: Seq(0),
            recv_buf: RecvBuffer::new(cfg.recv_buf),
            rcv_fin: None,
            fin_received: false,
            opts: options::negotiate(&cfg, &Default::default()),
            snd_mss: mss,
            ts_recent: 0,
            last_ack_sent: Seq(0),
            dsack: None,
            timers: TimerTable::default(),
            rtt,
            rtt_probe: None,
            rtx_tsval: None,
            rto_tsval: None,
            retries: 0,
            user_timeout: UserTimeout::default(),
            tlp: Tlp::default(),
            undo: Undo::default(),
            prr: None,
            rescue_rxt: None,
            persist_backoff: 0,
            force_send: false,
            keepalive_probes: 0,
            last_now: now,
            heard_at: now,
            recv_tuning: RecvTuning::new(now),
            ack: AckPolicy::default(),
            chrono: super::Chrono::default(),
            ecn: EcnState::default(),
            established_at: None,
            cc: cfg.congestion.build(mss),
            dupacks: 0,
            recover: None,
            rto_recover: None,
            rtx_una: false,
            scoreboard: Scoreboard::default(),
            rack: Rack::default(),
            challenge_epoch: now,
            challenge_count: 0,
            oow_ack_at: None,
            error: None,
            rst_to_send: None,
            probe_pending: false,
            orphaned: false,
            stats: Counters::default(),
            cfg,
        }
    }

    /// An active open: the connection starts in SYN-SENT and its first
    /// `poll_transmit` emits the SYN.
    pub fn connect(
        cfg: TcpConfig,
        local: SocketAddr,
        remote: SocketAddr,
        iss: u32,
        now: Instant,
    ) -> Connection {
        let mut c = Connection::new(cfg, local, remote, iss, now);
        c.state = State::SynSent;
        c
    }

    /// A passive open for a SYN the stack's listener accepted: the
    /// connection starts in SYN-RECEIVED and its first `poll_transmit` emits
    /// the SYN-ACK. `syn` must carry SYN and not ACK (the stack checks).
    pub fn accept(
        cfg: TcpConfig,
        local: SocketAddr,
        remote: SocketAddr,
        syn: &TcpRepr,
        iss: u32,
        now: Instant,
    ) -> Connection {
        let mut c = Connection::new(cfg, local, remote, iss, now);
        c.state = State::SynReceived;
        c.stats.segs_in += 1;
        c.take_syn(syn);
        c.ecn.on_syn(c.cfg.ecn, syn.flags);
        c
    }

    /// Records the peer's SYN: irs, its options and its (unscaled) window.
    pub(super) fn take_syn(&mut self, syn: &TcpRepr) {
        self.irs = Seq(syn.seq);
        self.rcv_nxt = self.irs + 1u32;
        self.rcv_adv = self.rcv_nxt;
        self.last_ack_sent = self.rcv_nxt;
        self.opts = options::negotiate(&self.cfg, &syn.options);
        if let Some((tsval, _)) = syn.options.timestamps {
            self.ts_recent = tsval;
        }
        self.set_snd_mss(u32::from(self.opts.peer_mss));
        // The initial window (RFC 6928) depends on the negotiated MSS.
        self.cc = self.cfg.congestion.build(self.snd_mss);
        self.snd_wnd = u32::from(syn.window);
        self.max_snd_wnd = self.snd_wnd;
        self.snd_wl1 = self.irs;
    }

    pub(super) fn set_snd_mss(&mut self, mss: u32) {
        let overhead = if self.opts.timestamps {
            u32::from(TIMESTAMP_LEN)
        } else {
            0
        };
        self.snd_mss = mss.saturating_sub(overhead).max(32);
        self.cc.set_mss(self.snd_mss);
    }

    // ---- application side ----

    /// Queues data; returns how much fit (0 when the buffer is full).
    pub fn send(&mut self, data: &[u8]) -> Result<usize, TcpError> {
        self.send_more(data, false)
    }

    /// `send` with MSG_MORE when `more`: the application says more data
    /// follows, so a partial segment at the end of this data is held back
    /// (until the next send, an ACK of new data, or the persist timer) and
    /// carries no PSH, as in Linux.
    pub fn send_more(&mut self, data: &[u8], more: bool) -> Result<usize, TcpError> {
        self.send_with(data, more, false)
    }

    /// `send_more`, and with `eor` (MSG_EOR) the data ends a record: no
    /// segment, sent or resent, joins it with what is written after it.
    pub fn send_with(&mut self, data: &[u8], more: bool, eor: bool) -> Result<usize, TcpError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.fin_queued || !self.may_queue_data() {
            return Err(TcpError::NotConnected);
        }
        let room = self
            .cfg
            .notsent_lowat
            .map_or(data.len(), |l| self.lowat_room(l));
        let n = self.send_buf.write(&data[..room.min(data.len())]);
        if n > 0 {
            self.chrono.on_queued(self.last_now);
        }
        if n > 0 || data.is_empty() {
            self.hold_tail = more;
            // A record ends where all of its data is in.
            let eor = eor && n == data.len();
            if !more || eor {
                let sent = self.snd_max.since(self.buf_seq) as usize;
                self.send_buf.mark_write_end(eor, sent);
            }
        }
        Ok(n)
    }

    fn may_queue_data(&self) -> bool {
        matches!(
            self.state,
            State::SynSent | State::SynReceived | State::Established | State::CloseWait
        )
    }

    /// Reads in-order data. `Ok(0)` means end of stream (FIN received and
    /// everything read); `Err(WouldBlock)` means nothing yet.
    pub fn recv(&mut self, buf: &mut [u8]) -> Result<usize, TcpError> {
        let n = self.peek(buf)?;
        if n > 0 {
            let before = self.recv_buf.window();
            self.recv_buf.read(&mut buf[..n]);
            let cap = self.recv_buf.capacity();
            let max = self.cfg.recv_buf_max;
            if let Some(target) =
                self.recv_tuning
                    .on_read(n, self.last_now, self.rtt.srtt, cap, max)
            {
                self.recv_buf.grow_capacity(target);
            }
            self.maybe_window_update(before);
        }
        Ok(n)
    }

    /// Like `recv` without consuming.
    pub fn peek(&self, buf: &mut [u8]) -> Result<usize, TcpError> {
        if self.recv_buf.readable() > 0 {
            return Ok(self.recv_buf.peek(buf));
        }
        if buf.is_empty() || self.fin_received {
            return Ok(0);
        }
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.state == State::Closed {
            return Ok(0);
        }
        Err(TcpError::WouldBlock)
    }

    /// Sends a window update when reading opened the window enough to
    /// matter (receiver SWS avoidance, RFC 9293 section 3.8.6.2.2).
    fn maybe_window_update(&mut self, before: usize) {
        // What the window field can say: a buffer larger than that opens
        // no window the peer would see.
        let now = self.recv_buf.window().min(0xffff << self.opts.rcv_wscale);
        let advertised = self.rcv_adv.since(self.rcv_nxt) as usize;
        let threshold = (self.recv_buf.capacity() / 2).min(2 * self.snd_mss as usize);
        let open = self.state.is_synchronized() && self.state != State::TimeWait;
        // Only a window that at least doubles is worth an ACK of its own
        // (Linux's rule in tcp_cleanup_rbuf): a reader that keeps up with a
        // large window would otherwise answer every read with an update
        // the sender does not need.
        let doubles = now >= 2 * advertised;
        if open
            && now > before
            && now.saturating_sub(advertised) >= threshold
            && doubles
            && !self.fin_received
        {
            self.ack.due = true;
        }
    }

    /// Half-close: a FIN follows the queued data (RFC 9293 section 3.10.4).
    pub fn shutdown_write(&mut self) {
        if self.fin_queued {
            return;
        }
        match self.state {
            State::SynSent | State::SynReceived => self.fin_queued = true,
            State::Established => {
                self.fin_queued = true;
                self.state = State::FinWait1;
            }
            State::CloseWait => {
                self.fin_queued = true;
                self.state = State::LastAck;
            }
            _ => {}
        }
    }

    /// Full close: the application reads no more. Unread data turns the
    /// close into an abort (RFC 2525 section 2.17, as Linux does).
    pub fn close(&mut self) {
        if self.recv_buf.readable() > 0 {
            self.abort();
            return;
        }
        self.orphaned = true;
        if self.state == State::SynSent {
            self.enter_closed();
            return;
        }
        self.shutdown_write();
        if self.state == State::FinWait2 {
            self.timers
                .set(Timer::FinWait2, self.last_now + self.cfg.time_wait);
        }
    }

    /// Abort: RST now if synchronized, then CLOSED (RFC 9293 section 3.10.5).
    pub fn abort(&mut self) {
        if matches!(
            self.state,
            State::SynReceived
                | State::Established
                | State::FinWait1
                | State::FinWait2
                | State::CloseWait
        ) {
            self.rst_to_send = Some((self.snd_nxt, true));
        }
        self.enter_closed();
    }

    pub(super) fn enter_closed(&mut self) {
        self.state = State::Closed;
        self.timers.stop_all();
        self.tlp.pending = false;
        self.ack.clear();
        self.rtx_una = false;
        self.probe_pending = false;
    }

    pub(super) fn fail(&mut self, err: TcpError) {
        log::debug!(
            "tcp {} -> {}: {:?} in {:?}",
            self.local,
            self.remote,
            err,
            self.state
        );
        self.error = Some(err);
        self.enter_closed();
    }

    /// Whether a new SYN for this 4-tuple may replace this connection:
    /// only in TIME-WAIT, and only if the SYN is provably newer, by its
    /// timestamp when both used them, else by its sequence number
    /// (RFC 9293 section 3.10.7.4 note, RFC 6191). The stack then drops
    /// this TCB and hands the SYN to its listener.
    pub fn accepts_new_syn(&self, syn: &TcpRepr) -> bool {
        use crate::wire::tcp::TcpFlags;
        if self.state != State::TimeWait || syn.flags != TcpFlags::SYN {
            return false;
        }
        match syn.options.timestamps {
            Some((tsval, _)) if self.opts.timestamps => {
                (tsval.wrapping_sub(self.ts_recent) as i32) > 0
            }
            _ => Seq(syn.seq) > self.rcv_nxt,
        }
    }

    /// Relays an ICMP error about this connection (RFC 9293 section 3.9.3,
    /// RFC 1122 section 4.2.3.9: unreachable is hard only while connecting).
    pub fn on_icmp(&mut self, _now: Instant, err: IcmpError) {
        match err {
            IcmpError::PortUnreachable | IcmpError::HostUnreachable | IcmpError::NetUnreachable => {
                if self.state == State::SynSent {
                    self.fail(match err {
                        IcmpError::PortUnreachable => TcpError::ConnectionRefused,
                        IcmpError::NetUnreachable => TcpError::NetUnreachable,
                        _ => TcpError::HostUnreachable,
                    });
                }
            }
            IcmpError::PacketTooBig { mtu } => {
                // As Linux: an IPv6 "packet too big" below the minimum
                // link MTU is ignored (RFC 8200 section 5, RFC 8021:
                // tcp_v6_err since 5.15); an IPv4 path MTU below
                // `min_pmtu` is raised to it (`ip_rt_min_pmtu`), so a
                // forged "fragmentation needed" cannot make segments tiny.
                let mtu = if self.cfg.ipv6 {
                    if mtu < IPV6_MIN_MTU {
                        return;
                    }
                    mtu
                } else {
                    mtu.max(IPV4_MIN_PMTU)
                };
                let ip = if self.cfg.ipv6 { 40 } else { 20 };
                let mss = u32::from(mtu - (ip + 20));
                let current = self.snd_mss
                    + if self.opts.timestamps {
                        u32::from(TIMESTAMP_LEN)
                    } else {
                        0
                    };
                if mss < current {
                    self.set_snd_mss(mss);
                    // What is in flight no longer fits: send it again.
                    if self.state.is_synchronized() && self.snd_nxt != self.snd_una {
                        self.snd_nxt = self.snd_una;
                        self.rtt_probe = None;
                    }
                }
            }
        }
    }

    /// Whether `seq`, the sequence number an ICMP error quotes, is one
    /// this connection has sent and not had acknowledged (RFC 5927
    /// section 4.1, as Linux's `between(seq, snd_una, snd_nxt)`): an error
    /// quoting anything else is forged or stale, and ignored.
    pub fn quotes_in_flight(&self, seq: u32) -> bool {
        let seq = Seq(seq);
        self.snd_una <= seq && seq <= self.snd_max
    }

    // ---- queries ----

    /// The current RFC 9293 state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The local address and port.
    pub fn local(&self) -> SocketAddr {
        self.local
    }

    /// The remote address and port.
    pub fn remote(&self) -> SocketAddr {
        self.remote
    }

    /// The error that ended the connection (refused, reset, timed out,
    /// unreachable), if any; taking it clears it, like SO_ERROR.
    pub fn take_error(&mut self) -> Option<TcpError> {
        self.error.take()
    }

    /// Whether the handshake completed and the connection is not yet in
    /// TIME-WAIT or CLOSED (so also true while half-closed).
    pub fn is_established(&self) -> bool {
        self.state.is_synchronized() && self.state != State::TimeWait
    }

    /// Whether the connection reached CLOSED; the stack may drop it once its
    /// last RST (if any) has gone out.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// A `recv` would not block: data, EOF or an error.
    pub fn can_recv(&self) -> bool {
        self.recv_buf.readable() > 0 || self.recv_closed() || self.error.is_some()
    }

    /// The peer sent FIN and everything before it was read.
    pub fn recv_closed(&self) -> bool {
        self.fin_received && self.recv_buf.readable() == 0
    }

    /// The socket polls writable: a `send` would accept bytes, a third
    /// of the send buffer is free (Linux's sk_stream_wspace >=
    /// sk_stream_min_wspace: free space at least half of what is
    /// queued), and with TCP_NOTSENT_LOWAT, fewer than half the mark's
    /// bytes wait unsent (tcp_poll's __sk_stream_memory_free(sk, 1)). A
    /// writer blocked on a full buffer sleeps until then.
    pub fn can_send(&self) -> bool {
        self.error.is_none()
            && !self.fin_queued
            && self.may_queue_data()
            && self.send_buf.free() > 0
            && self.send_buf.len() <= 2 * self.send_buf.free()
            && self
                .cfg
                .notsent_lowat
                .is_none_or(|l| 2 * self.not_sent() < l as usize)
    }

    /// Bytes written and not yet sent once (Linux's write_seq - snd_nxt;
    /// snd_max here, which an RTO does not move back).
    pub fn not_sent(&self) -> usize {
        let sent = self.snd_max.since(self.buf_seq) as usize;
        self.send_buf.len().saturating_sub(sent)
    }

    /// How much one write may take under TCP_NOTSENT_LOWAT, as Linux's
    /// tcp_sendmsg gives it: nothing while `lowat` bytes or more wait
    /// unsent; else what can go at once (the windows' room beyond what
    /// already waits) and one more TSO-sized chunk (half the peer's
    /// largest window in whole segments, at most 64 KiB: tcp_sendmsg
    /// checks the mark only before each new such chunk).
    fn lowat_room(&self, lowat: u32) -> usize {
        let waiting = self.not_sent();
        if waiting >= lowat as usize {
            return 0;
        }
        let mss = self.snd_mss.max(1) as usize;
        let in_flight = self.snd_max.since(self.snd_una) as usize;
        let cwnd_room = (self.cc.cwnd() as usize).saturating_sub(in_flight);
        let wnd_room = (self.snd_wnd as usize).saturating_sub(in_flight);
        let now = cwnd_room.min(wnd_room).saturating_sub(waiting);
        let chunk = (self.max_snd_wnd as usize / 2).min(65_536) / mss * mss;
        now + chunk.max(mss)
    }

    /// TCP_NOTSENT_LOWAT (see `TcpConfig::notsent_lowat`).
    pub fn set_notsent_lowat(&mut self, lowat: Option<u32>) {
        self.cfg.notsent_lowat = lowat;
    }

    /// Bytes queued and not yet acknowledged (SIOCOUTQ).
    pub fn send_queue(&self) -> usize {
        self.send_buf.len()
    }

    /// Room in the send buffer.
    pub fn send_capacity(&self) -> usize {
        self.send_buf.free()
    }

    /// Configured buffer sizes (SO_SNDBUF / SO_RCVBUF); storage behind them
    /// is allocated only as data needs it.
    pub fn buffer_sizes(&self) -> (usize, usize) {
        (self.send_buf.capacity(), self.recv_buf.capacity())
    }

    /// Send-time accounting (TCP_INFO's busy and rwnd-limited times).
    pub fn chrono(&self) -> super::Chrono {
        self.chrono
    }

    /// Bytes ready to read (FIONREAD).
    pub fn recv_queue(&self) -> usize {
        self.recv_buf.readable()
    }

    /// What TCP_CM_INQ reports: the bytes ready to read, plus one for a
    /// FIN received, so a reader told 0 knows no more will come and one
    /// told 1 after the data reads the end of stream (Linux's
    /// tcp_inq_hint: rcv_nxt - copied_seq, the FIN counted in rcv_nxt).
    pub fn inq(&self) -> usize {
        self.recv_buf.readable() + usize::from(self.fin_received)
    }

    /// Smoothed RTT, once measured.
    pub fn srtt(&self) -> Option<std::time::Duration> {
        self.rtt.srtt
    }

    /// The retransmission timeout now in force, backoff included.
    pub fn rto(&self) -> std::time::Duration {
        self.rtt.current()
    }

    /// TCP_NODELAY: takes effect at the next `poll_transmit`. Turning it on
    /// also pushes what is queued once, even past a cork (Linux's
    /// TCP_NAGLE_PUSH).
    pub fn set_nodelay(&mut self, nodelay: bool) {
        if nodelay && !self.cfg.nodelay {
            self.push_pending();
        }
        self.cfg.nodelay = nodelay;
    }

    /// TCP_CORK: removing the cork sends the partial segment it held.
    pub fn set_cork(&mut self, cork: bool) {
        if self.cfg.cork && !cork {
            self.push_pending();
        }
        self.cfg.cork = cork;
    }

    /// TCP_USER_TIMEOUT (RFC 5482); `None` or zero goes back to counting
    /// retransmissions.
    pub fn set_user_timeout(&mut self, timeout: Option<std::time::Duration>) {
        self.cfg.user_timeout = timeout.filter(|t| !t.is_zero());
    }

    /// Sends queued data on the next poll even if it is a partial segment
    /// or corked: what setting TCP_NODELAY does on Linux every time, even
    /// when it was on already (TCP_NAGLE_PUSH).
    pub fn push_pending(&mut self) {
        self.hold_tail = false;
        if self.snd_nxt.since(self.buf_seq) < self.send_buf.len() as u32 {
            self.force_send = true;
        }
    }

    /// When data last arrived, or the handshake completed if none has
    /// (Linux's `tcpi_last_data_recv` counts from it); `None` before.
    pub fn last_data_in(&self) -> Option<Instant> {
        self.ack.last_data_in().or(self.established_at)
    }

    /// When the peer last sent an ACK.
    pub fn last_ack_in(&self) -> Instant {
        self.heard_at
    }

    /// SO_KEEPALIVE and its TCP_KEEP* parameters; the idle time counts from
    /// the last segment received (or from now if none yet).
    pub fn set_keepalive(&mut self, keepalive: Option<super::Keepalive>) {
        self.cfg.keepalive = keepalive;
        self.keepalive_probes = 0;
        let at = match keepalive {
            Some(ka) if self.state.is_synchronized() => Some(self.last_now + ka.idle),
            _ => None,
        };
        self.timers.put(Timer::Keepalive, at);
    }

    /// The connection's counters.
    pub fn counters(&self) -> &Counters {
        &self.stats
    }

    /// The payload size of a full segment we send.
    pub fn mss(&self) -> u32 {
        self.snd_mss
    }

    /// The congestion window in bytes.
    pub fn cwnd(&self) -> u32 {
        self.cc.cwnd()
    }

    /// The next instant `poll_transmit` must be called, or None. A deadline
    /// at or before the last `now` seen means output is pending already.
    pub fn poll_at(&self) -> Option<Instant> {
        if self.state == State::Closed {
            // Only a pending RST outlives the connection.
            return self.rst_to_send.map(|_| self.last_now);
        }
        if self.rst_to_send.is_some()
            || self.ack.due
            || self.rtx_una
            || self.probe_pending
            || self.tlp.pending
        {
            return Some(self.last_now);
        }
        self.timers
            .next()
            .into_iter()
            .chain(self.user_timeout_at())
            .min()
    }
}

// ---- TCP_INFO and poll queries (types in `sockopt`) ----

impl Connection {
    /// What the handshake agreed on.
    pub fn options_in_use(&self) -> OptionsInUse {
        OptionsInUse {
            timestamps: self.opts.timestamps,
            sack: self.opts.sack,
            window_scale: self
                .opts
                .window_scaling
                .then_some((self.opts.snd_wscale, self.opts.rcv_wscale)),
            ecn: self.ecn.agreed && self.state.is_synchronized(),
        }
    }
    /// Whether an error is pending (without taking it, as poll must not).
    pub fn has_error(&self) -> bool {
        self.error.is_some()
    }

    /// The congestion control algorithm in use.
    pub fn congestion(&self) -> super::CongestionAlgorithm {
        self.cfg.congestion
    }

    /// The application shut down writing (FIN queued or sent).
    pub fn send_closed(&self) -> bool {
        self.fin_queued || self.state == State::Closed
    }

    /// The sender's state (see [`CaState`]).
    pub fn ca_state(&self) -> CaState {
        if self.rto_recover.is_some() {
            CaState::Loss
        } else if self.recover.is_some() {
            CaState::Recovery
        } else if self.ecn.in_cwr(self.snd_una) {
            CaState::Cwr
        } else if self.dupacks > 0 || self.rack.outstanding().0 > 0 {
            CaState::Disorder
        } else {
            CaState::Open
        }
    }

    /// What is outstanding, in segments of the sender MSS.
    pub fn outstanding(&self) -> Outstanding {
        let mss = self.snd_mss.max(1);
        let (sacked, lost, retrans) = self.rack.outstanding();
        Outstanding {
            unacked: self.snd_max.since(self.snd_una).div_ceil(mss),
            sacked,
            lost,
            retrans,
            reordering: self.rack.degree(),
        }
    }

    /// RTTVAR (RFC 6298), once measured.
    pub fn rttvar(&self) -> Option<std::time::Duration> {
        self.rtt.srtt.map(|_| self.rtt.rttvar)
    }
}
