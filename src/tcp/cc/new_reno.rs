//! NewReno (RFC 5681 slow start and congestion avoidance, RFC 6582 recovery
//! window). The connection drives recovery; this file only sizes cwnd.

use super::{CongestionControl, initial_window};
use crate::time::Instant;
use std::time::Duration;

/// NewReno congestion control (RFC 5681, RFC 6582).
#[derive(Debug)]
pub struct NewReno {
    mss: u32,
    cwnd: u32,
    ssthresh: u32,
    /// Bytes acknowledged since cwnd last grew in congestion avoidance
    /// (RFC 5681 section 3.1, the byte-counting variant).
    acked_in_ca: u32,
    /// cwnd and ssthresh before the last fast-recovery reduction, for
    /// `undo`.
    prior: Option<(u32, u32)>,
    /// cwnd and ssthresh before the last RTO, for `undo_rto`.
    prior_rto: Option<(u32, u32)>,
}

impl NewReno {
    /// Starts in slow start with the RFC 6928 initial window for `mss`.
    pub fn new(mss: u32) -> NewReno {
        NewReno {
            mss,
            cwnd: initial_window(mss),
            ssthresh: u32::MAX,
            acked_in_ca: 0,
            prior: None,
            prior_rto: None,
        }
    }

    /// Takes back a reduction: cwnd and ssthresh as they were, or as
    /// they have grown back since if that is more.
    fn restore(&mut self, prior: Option<(u32, u32)>) {
        if let Some((cwnd, ssthresh)) = prior {
            self.cwnd = self.cwnd.max(cwnd);
            self.ssthresh = self.ssthresh.max(ssthresh);
        }
    }
}

impl CongestionControl for NewReno {
    fn cwnd(&self) -> u32 {
        self.cwnd
    }

    fn ssthresh(&self) -> u32 {
        self.ssthresh
    }

    fn on_ack(&mut self, _now: Instant, acked: u32, _srtt: Option<Duration>) {
        if self.cwnd < self.ssthresh {
            // Slow start (RFC 5681 section 3.1, with RFC 3465's L = 2).
            self.cwnd = self
                .cwnd
                .saturating_add(super::slow_start_increase(acked, self.mss));
        } else {
            self.acked_in_ca = self.acked_in_ca.saturating_add(acked);
            if self.acked_in_ca >= self.cwnd {
                self.acked_in_ca -= self.cwnd;
                self.cwnd = self.cwnd.saturating_add(self.mss);
            }
        }
    }

    fn on_congestion(&mut self, _now: Instant, flight: u32) {
        self.prior = Some((self.cwnd, self.ssthresh));
        // RFC 5681 equation (4).
        self.ssthresh = (flight / 2).max(2 * self.mss);
        self.cwnd = self.ssthresh;
        self.acked_in_ca = 0;
    }

    fn on_recovery_exit(&mut self) {
        // RFC 6582 section 3.2 step 3: deflate to ssthresh.
        self.cwnd = self.ssthresh.max(self.mss);
    }

    fn undo(&mut self) {
        let prior = self.prior.take();
        self.restore(prior);
    }

    fn undo_rto(&mut self) {
        let prior = self.prior_rto.take();
        self.restore(prior);
    }

    fn on_rto(&mut self, flight: u32) {
        self.prior = None;
        self.prior_rto = Some((self.cwnd, self.ssthresh));
        self.ssthresh = (flight / 2).max(2 * self.mss);
        self.cwnd = self.mss;
        self.acked_in_ca = 0;
    }

    fn set_mss(&mut self, mss: u32) {
        self.mss = mss.max(1);
        self.cwnd = self.cwnd.max(self.mss);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_start_grows_one_mss_per_ack_then_linear() {
        let mut cc = NewReno::new(1000);
        assert_eq!(cc.cwnd(), 10_000);
        cc.on_ack(Instant::ZERO, 1000, None);
        assert_eq!(cc.cwnd(), 11_000);
        cc.on_congestion(Instant::ZERO, 20_000);
        assert_eq!((cc.cwnd(), cc.ssthresh()), (10_000, 10_000));
        for _ in 0..9 {
            cc.on_ack(Instant::ZERO, 1000, None);
        }
        assert_eq!(cc.cwnd(), 10_000);
        cc.on_ack(Instant::ZERO, 1000, None);
        assert_eq!(cc.cwnd(), 11_000);
    }

    #[test]
    fn undo_restores_the_window_before_the_last_reduction_once() {
        let mut cc = NewReno::new(1000);
        cc.on_congestion(Instant::ZERO, 10_000);
        cc.on_congestion(Instant::ZERO, 5_000);
        assert_eq!((cc.cwnd(), cc.ssthresh()), (2_500, 2_500));
        cc.undo();
        assert_eq!((cc.cwnd(), cc.ssthresh()), (5_000, 5_000));
        cc.undo();
        assert_eq!(cc.cwnd(), 5_000);
        cc.on_congestion(Instant::ZERO, 5_000);
        cc.on_rto(2_500);
        cc.undo();
        assert_eq!(
            (cc.cwnd(), cc.ssthresh()),
            (1_000, 2_000),
            "no undo past an RTO"
        );
        // A spurious RTO is undone by its own call, once.
        cc.undo_rto();
        assert_eq!((cc.cwnd(), cc.ssthresh()), (2_500, 2_500));
        cc.on_rto(2_500);
        cc.undo_rto();
        cc.undo_rto();
        assert_eq!((cc.cwnd(), cc.ssthresh()), (2_500, 2_500));
    }

    #[test]
    fn rto_collapses_window_to_one_segment() {
        let mut cc = NewReno::new(1000);
        cc.on_rto(3000);
        assert_eq!((cc.cwnd(), cc.ssthresh()), (1000, 2000));
    }
}
