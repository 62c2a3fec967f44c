//! The TCP engine (sans-IO): one connection's state machine, its buffers,
//! timers and congestion control.
//!
//! Owns everything inside one TCB ([`Connection`]). Must not touch: clocks
//! (time arrives as `now`), devices, the socket table, demultiplexing by
//! 4-tuple, listeners or ports (the stack layer owns those), or packet bytes
//! (segments come and go as [`TcpRepr`] plus a payload slice; `wire` does
//! parse/emit).
//!
//! # Driving a connection (for the stack layer)
//!
//! - Create: [`Connection::connect`] (SYN-SENT) or, for a SYN a listener
//!   accepted, [`Connection::accept`] (SYN-RECEIVED). ISNs come from
//!   [`IsnGenerator`] (RFC 6528).
//! - Feed every segment demultiplexed to it: [`Connection::on_segment`].
//! - After *any* call (a segment, `send`, `recv`, `close`, a timer), call
//!   [`Connection::poll_transmit`]: it fires due timers and hands each
//!   segment due to a closure as `(&TcpRepr, &[u8])`, the payload borrowed
//!   from the send buffer. [`Connection::poll_at`] is the next timer
//!   deadline (a value at or before the last `now` means "poll now").
//! - A segment for no connection (or for one that `is_closed`) gets
//!   [`rst_for_unmatched`]; a closed connection may still emit its RST on
//!   the next poll, then the stack drops it. TIME-WAIT connections stay
//!   until `is_closed` (60 s by default).
//! - Errors are values: [`Connection::take_error`] after the state turns
//!   CLOSED; `recv` returns `Err(WouldBlock)` when empty and `Ok(0)` at EOF.
//!
//! # Files, one concern each
//!
//! [`seq`] sequence arithmetic, `send_buf` and `recv_buf` the data rings
//! (and `RecvTuning`, the receive buffer's growth), `options` SYN option
//! negotiation, `rtt` the RFC 6298 estimator, `timer` the one table of a
//! connection's deadlines (and the user timeout's clocks), `ack` the ACK
//! policy (now, urgent or delayed), `ecn` the RFC 3168 state and its
//! rules, `sack` the sender scoreboard, `rack` RACK loss detection, `tlp`
//! the tail loss probe's state and verdicts (the recovery probe of short
//! paths included), `prr` proportional rate reduction during recovery,
//! `undo` the verdict on a recovery that D-SACKs prove spurious, [`cc`]
//! congestion control, `conn` the TCB, its application API and queries,
//! `input` the arrival path (RFC 9293 section 3.10.7), applying the
//! verdicts of `tlp`, `undo` and `ecn`, `output` the transmit path and the
//! timers' actions (the probes sent included), `isn` ISNs and the reply to
//! segments that match no connection, `syncookie` SYN cookies. Tests:
//! `tests/` (one file per concern) and
//! `sim` (seeded end-to-end simulation).

mod ack;
pub mod cc;
mod chrono;
mod conn;
mod ecn;
mod input;
mod isn;
mod options;
mod output;
mod prr;
mod rack;
mod recv_buf;
mod rtt;
mod sack;
mod send_buf;
pub mod seq;
#[cfg(test)]
mod sim;
#[cfg(test)]
mod sim_bulk;
mod sockopt;
mod syncookie;
#[cfg(test)]
mod tests;
mod timer;
mod tlp;
mod undo;

pub use crate::wire::tcp::{TcpFlags, TcpOptions, TcpRepr};
pub use cc::CongestionAlgorithm;
pub use chrono::Chrono;
pub use conn::{Connection, IcmpError};
pub use isn::{IsnGenerator, rst_for_unmatched};
pub use seq::Seq;
pub use sockopt::{CaState, OptionsInUse, Outstanding};
pub use syncookie::{SynCookies, cookie_syn_ack_options};

use core::fmt;
use std::time::Duration;

/// Keepalive parameters (RFC 9293 section 3.8.4; Linux defaults).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Keepalive {
    /// Idle time before the first probe (Linux: 7200 s).
    pub idle: Duration,
    /// Time between unanswered probes (Linux: 75 s).
    pub interval: Duration,
    /// Unanswered probes before the connection times out (Linux: 9).
    pub count: u32,
}

impl Default for Keepalive {
    fn default() -> Keepalive {
        Keepalive {
            idle: Duration::from_secs(7200),
            interval: Duration::from_secs(75),
            count: 9,
        }
    }
}

/// Per-connection configuration.
#[derive(Clone, Debug)]
pub struct TcpConfig {
    /// The MSS we announce and the most payload we send per segment:
    /// link MTU minus IP and TCP headers (see [`TcpConfig::for_mtu`]).
    pub mss: u16,
    /// Whether the connection runs over IPv6 (default MSS 1220, not 536,
    /// when the peer announces none: RFC 9293 section 3.7.1).
    pub ipv6: bool,
    /// Initial receive buffer; auto-tuning grows it up to `recv_buf_max`
    /// while the application keeps up (Linux's receive-buffer tuning). A
    /// maximum at or below the initial size turns tuning off.
    pub recv_buf: usize,
    /// Upper bound, in bytes, for receive-buffer auto-tuning.
    pub recv_buf_max: usize,
    /// Initial send buffer; grows up to `send_buf_max` with cwnd.
    pub send_buf: usize,
    /// Upper bound, in bytes, for send-buffer growth.
    pub send_buf_max: usize,
    /// Disables Nagle's algorithm (TCP_NODELAY).
    pub nodelay: bool,
    /// TCP_CORK: hold back partial segments (even with `nodelay`) until the
    /// cork is removed, a full segment accumulates, or the persist timer
    /// fires with nothing in flight (Linux's 200 ms ceiling, one RTO).
    pub cork: bool,
    /// TCP_USER_TIMEOUT (RFC 5482): abort with `TimedOut` once sent data
    /// has waited this long without progress, or zero-window probes have
    /// gone unanswered this long, instead of counting retransmissions.
    pub user_timeout: Option<Duration>,
    /// TCP_NOTSENT_LOWAT (Linux; `net.ipv4.tcp_notsent_lowat` for a
    /// host): while this many bytes or more wait unsent, a write takes
    /// nothing, and the socket polls writable only once fewer than half
    /// of it wait. `None`: no limit.
    pub notsent_lowat: Option<u32>,
    /// Keepalive probing (SO_KEEPALIVE); `None` sends no probes.
    pub keepalive: Option<Keepalive>,
    /// TIME-WAIT duration, 2*MSL; also the orphaned FIN-WAIT-2 timeout.
    pub time_wait: Duration,
    /// Retransmissions of data before giving up with `TimedOut`.
    pub retries: u32,
    /// Retransmissions of a SYN or SYN-ACK before giving up.
    pub syn_retries: u32,
    /// Lower bound on the retransmission timeout (Linux: 200 ms; RFC 6298
    /// section 2.4 says 1 s).
    pub min_rto: Duration,
    /// Retransmission timeout before any RTT sample (RFC 6298 section 2.1: 1 s).
    pub initial_rto: Duration,
    /// Upper bound on the backed-off retransmission timeout (RFC 6298
    /// section 2.5 allows 60 s or more).
    pub max_rto: Duration,
    /// Delayed-ACK timeout (RFC 9293 section 3.8.6.3: under 0.5 s).
    pub delayed_ack: Duration,
    /// The congestion-control algorithm.
    pub congestion: CongestionAlgorithm,
    /// Offer the window scale option (RFC 7323 section 2).
    pub window_scaling: bool,
    /// Offer the timestamps option (RFC 7323 section 3).
    pub timestamps: bool,
    /// Offer SACK (RFC 2018).
    pub sack: bool,
    /// The most payload per segment handed to a link that segments itself
    /// (TSO): new data then goes out in super-segments of whole MSS-sized
    /// pieces, which the link cuts to its MTU. 0 (the default) sends
    /// nothing larger than the MSS. Used only while the peer's MSS is at
    /// least ours, so the link's pieces never exceed what the peer takes.
    pub tso_max: u32,
    /// Explicit Congestion Notification (RFC 3168).
    pub ecn: Ecn,
}

/// When a connection uses ECN (RFC 3168), as Linux's `net.ipv4.tcp_ecn`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Ecn {
    /// Never: no ECN-setup SYN, and one received is answered without ECN.
    Off,
    /// Only when the peer asks, with an ECN-setup SYN (Linux's default, 2).
    #[default]
    Accept,
    /// Ask on active opens too (the first SYN only: a retransmitted SYN
    /// goes without, in case the path drops ECN-setup SYNs, as Linux's
    /// tcp_ecn_fallback), and accept.
    On,
}

impl Default for TcpConfig {
    fn default() -> TcpConfig {
        TcpConfig::for_mtu(1500, false)
    }
}

impl TcpConfig {
    /// Defaults for a link of `mtu` bytes.
    pub fn for_mtu(mtu: u16, ipv6: bool) -> TcpConfig {
        let ip_header = if ipv6 { 40 } else { 20 };
        TcpConfig {
            mss: mtu.saturating_sub(ip_header + 20).max(64),
            ipv6,
            recv_buf: 128 * 1024,
            recv_buf_max: 4 << 20,
            send_buf: 128 * 1024,
            send_buf_max: 4 << 20,
            nodelay: false,
            cork: false,
            user_timeout: None,
            notsent_lowat: None,
            keepalive: None,
            time_wait: Duration::from_secs(60),
            retries: 15,
            syn_retries: 6,
            min_rto: Duration::from_millis(200),
            initial_rto: Duration::from_secs(1),
            max_rto: Duration::from_secs(120),
            delayed_ack: Duration::from_millis(40),
            congestion: CongestionAlgorithm::Cubic,
            window_scaling: true,
            timestamps: true,
            sack: true,
            tso_max: 0,
            ecn: Ecn::Accept,
        }
    }
}

/// The connection states of RFC 9293 section 3.3.2.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum State {
    /// No connection (also the final state after a reset or a timeout).
    Closed,
    /// Waiting for a SYN (listeners are the stack layer's; connections never
    /// sit here).
    Listen,
    /// Our SYN sent, waiting for the SYN-ACK.
    SynSent,
    /// A SYN received and our SYN-ACK sent, waiting for its ACK.
    SynReceived,
    /// Open: data flows both ways.
    Established,
    /// We closed (FIN sent), waiting for its ACK.
    FinWait1,
    /// Our FIN acknowledged, waiting for the peer's FIN.
    FinWait2,
    /// The peer closed (FIN received); we may still send.
    CloseWait,
    /// Both sides sent FIN at once; waiting for the ACK of ours.
    Closing,
    /// The peer closed first and we then sent our FIN; waiting for its ACK.
    LastAck,
    /// Both FINs acknowledged; lingering 2*MSL to absorb stray segments.
    TimeWait,
}

impl State {
    /// Whether the handshake completed (RFC 9293: "synchronized states").
    pub fn is_synchronized(self) -> bool {
        !matches!(
            self,
            State::Closed | State::Listen | State::SynSent | State::SynReceived
        )
    }
}

/// Errors the application sees.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TcpError {
    /// RST in answer to our SYN, or ICMP port unreachable while connecting.
    ConnectionRefused,
    /// RST on a synchronized connection.
    ConnectionReset,
    /// Retransmissions or keepalive probes exhausted.
    TimedOut,
    /// ICMP host unreachable while connecting.
    HostUnreachable,
    /// ICMP network unreachable (no route) while connecting.
    NetUnreachable,
    /// Nothing to read yet / no room to write (non-blocking semantics).
    WouldBlock,
    /// Writing after `shutdown_write`/`close`, or using a closed connection.
    NotConnected,
}

impl fmt::Display for TcpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TcpError::ConnectionRefused => "connection refused",
            TcpError::ConnectionReset => "connection reset by peer",
            TcpError::TimedOut => "connection timed out",
            TcpError::HostUnreachable => "host unreachable",
            TcpError::NetUnreachable => "network unreachable",
            TcpError::WouldBlock => "operation would block",
            TcpError::NotConnected => "not connected",
        })
    }
}

impl std::error::Error for TcpError {}

/// Per-connection counters.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Counters {
    /// Segments received for this connection.
    pub segs_in: u64,
    /// Segments sent, retransmissions and RSTs included.
    pub segs_out: u64,
    /// Payload bytes added to the in-order receive stream.
    pub bytes_in: u64,
    /// Payload bytes sent, retransmissions included.
    pub bytes_out: u64,
    /// Segments sent again (any reason).
    pub retransmits: u64,
    /// Retransmissions triggered by duplicate ACKs or SACK (fast recovery
    /// entered), not by a timer.
    pub fast_retransmits: u64,
    /// Retransmission timeouts that fired.
    pub rto_expiries: u64,
    /// Of those, shown spurious by the timestamps of the ACK that followed
    /// (RFC 3522) and undone (RFC 4015; Linux's TCPSpuriousRTOs).
    pub spurious_rtos: u64,
    /// Fast recoveries driven by SACK information.
    pub sack_recoveries: u64,
    /// Tail loss probes sent (RFC 8985 section 7).
    pub tlp_probes: u64,
    /// Tail loss probes that repaired a loss, answered by a cwnd reduction
    /// (RFC 8985 section 7.4; Linux's TCPLossProbeRecovery).
    pub tlp_recoveries: u64,
    /// Congestion-window reductions answering an ECN-Echo (RFC 3168
    /// section 6.1.2).
    pub ecn_reductions: u64,
    /// Rescue retransmissions (RFC 6675 section 4, NextSeg rule 4).
    pub rescue_retransmits: u64,
    /// Probes sent during fast recovery after a probe timeout without an
    /// ACK advancing snd_una (a lost retransmission RACK cannot see).
    pub recovery_probes: u64,
    /// Fast recoveries undone because every retransmission came back as a
    /// duplicate (D-SACK, RFC 2883 section 4; Linux's TCPDSACKUndo).
    pub spurious_undos: u64,
    /// RST segments received.
    pub rsts_in: u64,
    /// RST segments sent.
    pub rsts_out: u64,
    /// Challenge ACKs sent (RFC 5961 sections 3 and 4).
    pub challenge_acks: u64,
    /// Segments discarded as unacceptable (window, PAWS, bad ACK).
    pub dropped: u64,
}

impl core::ops::AddAssign<&Counters> for Counters {
    fn add_assign(&mut self, o: &Counters) {
        self.segs_in += o.segs_in;
        self.segs_out += o.segs_out;
        self.bytes_in += o.bytes_in;
        self.bytes_out += o.bytes_out;
        self.retransmits += o.retransmits;
        self.fast_retransmits += o.fast_retransmits;
        self.rto_expiries += o.rto_expiries;
        self.spurious_rtos += o.spurious_rtos;
        self.sack_recoveries += o.sack_recoveries;
        self.tlp_probes += o.tlp_probes;
        self.spurious_undos += o.spurious_undos;
        self.tlp_recoveries += o.tlp_recoveries;
        self.rescue_retransmits += o.rescue_retransmits;
        self.recovery_probes += o.recovery_probes;
        self.ecn_reductions += o.ecn_reductions;
        self.rsts_in += o.rsts_in;
        self.rsts_out += o.rsts_out;
        self.challenge_acks += o.challenge_acks;
        self.dropped += o.dropped;
    }
}
