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
    NewReno,
    #[default]
    Cubic,
}

impl CongestionAlgorithm {
    pub fn build(self, mss: u32) -> Box<dyn CongestionControl> {
        match self {
            CongestionAlgorithm::NewReno => Box::new(NewReno::new(mss)),
            CongestionAlgorithm::Cubic => Box::new(Cubic::new(mss)),
        }
    }
}

/// The initial window of RFC 6928 (IW10): min(10*MSS, max(2*MSS, 14600)).
pub fn initial_window(mss: u32) -> u32 {
    (10 * mss).min((2 * mss).max(14_600))
}

pub trait CongestionControl: core::fmt::Debug + Send {
    /// The congestion window in bytes.
    fn cwnd(&self) -> u32;
    fn ssthresh(&self) -> u32;
    /// New data was cumulatively acknowledged outside recovery.
    fn on_ack(&mut self, now: Instant, acked: u32, srtt: Option<Duration>);
    /// Loss detected by duplicate ACKs or SACK: entering fast recovery
    /// with `flight` bytes outstanding.
    fn on_congestion(&mut self, now: Instant, flight: u32);
    /// Fast recovery ended with a full acknowledgement.
    fn on_recovery_exit(&mut self);
    /// The retransmission timer expired with `flight` bytes outstanding.
    fn on_rto(&mut self, flight: u32);
    /// The sender MSS changed (handshake, PMTU).
    fn set_mss(&mut self, mss: u32);
}
