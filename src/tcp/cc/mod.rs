//! Congestion control: the congestion window, behind a trait with one file
//! per algorithm.
//!
//! An algorithm owns cwnd and ssthresh and nothing else. The connection
//! decides *when* a congestion event happened (fast retransmit, RTO) and
//! what is in flight; loss recovery (which segment to resend) lives in the
//! connection, never here. Windows are in bytes.

mod cubic;
mod new_reno;

pub use cubic::Cubic;
pub use new_reno::NewReno;

use crate::time::Instant;
use std::time::Duration;

/// The algorithms this engine offers.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum CongestionAlgorithm {
    /// NewReno: RFC 5681 slow start and congestion avoidance, RFC 6582
    /// recovery.
    NewReno,
    /// CUBIC (RFC 9438), the default, as on Linux.
    #[default]
    Cubic,
}

impl CongestionAlgorithm {
    /// A fresh instance for a sender MSS of `mss` bytes, starting at the
    /// initial window of [`initial_window`].
    pub fn build(self, mss: u32) -> Box<dyn CongestionControl> {
        match self {
            CongestionAlgorithm::NewReno => Box::new(NewReno::new(mss)),
            CongestionAlgorithm::Cubic => Box::new(Cubic::new(mss)),
        }
    }
}

/// The initial window of RFC 6928 (IW10): min(10*MSS, max(2*MSS, 14600)).
///
/// ```
/// use ustack::tcp::cc::initial_window;
///
/// assert_eq!(initial_window(1460), 14_600);
/// assert_eq!(initial_window(1220), 12_200);
/// assert_eq!(initial_window(536), 5_360);
/// assert_eq!(initial_window(9000), 18_000); // 2*MSS when that is larger
/// ```
pub fn initial_window(mss: u32) -> u32 {
    (10 * mss).min((2 * mss).max(14_600))
}

/// Slow start's increase for an ACK of `acked` bytes: Appropriate Byte
/// Counting with L = 2*SMSS (RFC 3465 section 2.2), so an ACK covering
/// two segments (a delayed ACK) earns both, and slow start doubles per
/// round trip as Linux's does, not 1.5 times.
///
/// ```
/// use ustack::tcp::cc::slow_start_increase;
///
/// assert_eq!(slow_start_increase(1000, 1000), 1000);
/// assert_eq!(slow_start_increase(2000, 1000), 2000);
/// assert_eq!(slow_start_increase(9000, 1000), 2000); // a stretch ACK
/// ```
pub fn slow_start_increase(acked: u32, mss: u32) -> u32 {
    acked.min(mss.saturating_mul(2))
}

/// A congestion-control algorithm: owns cwnd and ssthresh (both in bytes)
/// and reacts to the events the connection reports.
///
/// ```
/// use ustack::Instant;
/// use ustack::tcp::CongestionAlgorithm;
///
/// let mut cc = CongestionAlgorithm::NewReno.build(1000);
/// assert_eq!((cc.cwnd(), cc.ssthresh()), (10_000, u32::MAX));
/// cc.on_ack(Instant::ZERO, 1000, None); // slow start: one MSS per ACK
/// assert_eq!(cc.cwnd(), 11_000);
/// cc.on_congestion(Instant::ZERO, 11_000); // halve (RFC 5681 equation 4)
/// assert_eq!((cc.cwnd(), cc.ssthresh()), (5_500, 5_500));
/// cc.on_rto(5_500); // a timeout falls back to one segment
/// assert_eq!((cc.cwnd(), cc.ssthresh()), (1_000, 2_750));
/// ```
pub trait CongestionControl: core::fmt::Debug + Send {
    /// The congestion window in bytes.
    fn cwnd(&self) -> u32;
    /// The slow-start threshold in bytes (`u32::MAX` until the first
    /// congestion event).
    fn ssthresh(&self) -> u32;
    /// New data was cumulatively acknowledged outside recovery.
    fn on_ack(&mut self, now: Instant, acked: u32, srtt: Option<Duration>);
    /// Loss detected by duplicate ACKs or SACK: entering fast recovery
    /// with `flight` bytes outstanding.
    fn on_congestion(&mut self, now: Instant, flight: u32);
    /// Fast recovery ended with a full acknowledgement.
    fn on_recovery_exit(&mut self);
    /// The last `on_congestion` proved spurious (every retransmission came
    /// back as a duplicate): restore cwnd, ssthresh and the algorithm's
    /// state to what they were before it, as Linux's undo_cwnd does. A
    /// second call, or one after `on_rto`, changes nothing.
    fn undo(&mut self);
    /// The retransmission timer expired with `flight` bytes outstanding.
    fn on_rto(&mut self, flight: u32);
    /// The last `on_rto` proved spurious (RFC 3522, the original
    /// transmission was acknowledged): restore cwnd, ssthresh and the
    /// algorithm's state to what they were before it (RFC 4015; Linux's
    /// undo after a spurious RTO). A second call changes nothing.
    fn undo_rto(&mut self);
    /// The sender MSS changed (handshake, PMTU).
    fn set_mss(&mut self, mss: u32);
}
