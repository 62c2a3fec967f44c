//! CUBIC (RFC 9438): the window grows as a cubic function of the time since
//! the last congestion event, with a Reno-friendly floor.

use super::{CongestionControl, initial_window};
use crate::time::Instant;
use std::time::Duration;

/// RFC 9438 section 4.1 / 5: C and beta_cubic.
const C: f64 = 0.4;
const BETA: f64 = 0.7;

/// CUBIC congestion control (RFC 9438), with slow start below ssthresh.
#[derive(Debug)]
pub struct Cubic {
    mss: u32,
    cwnd: u32,
    ssthresh: u32,
    /// W_max in segments: the window before the last reduction.
    w_max: f64,
    /// Start of the current congestion-avoidance epoch.
    epoch: Option<Instant>,
    /// K in seconds (RFC 9438 equation 2).
    k: f64,
    /// W_est in segments, the Reno-friendly estimate (section 4.3).
    w_est: f64,
    cwnd_at_epoch: f64,
    /// The state before the last fast-recovery reduction, for `undo`.
    prior: Option<Prior>,
    /// The state before the last RTO, for `undo_rto`.
    prior_rto: Option<Prior>,
}

/// What a reduction changes.
#[derive(Clone, Copy, Debug)]
struct Prior {
    cwnd: u32,
    ssthresh: u32,
    w_max: f64,
    epoch: Option<Instant>,
    k: f64,
    w_est: f64,
    cwnd_at_epoch: f64,
}

impl Cubic {
    /// Starts in slow start with the RFC 6928 initial window for `mss`.
    pub fn new(mss: u32) -> Cubic {
        Cubic {
            mss,
            cwnd: initial_window(mss),
            ssthresh: u32::MAX,
            w_max: 0.0,
            epoch: None,
            k: 0.0,
            w_est: 0.0,
            cwnd_at_epoch: 0.0,
            prior: None,
            prior_rto: None,
        }
    }

    fn segments(&self, bytes: u32) -> f64 {
        f64::from(bytes) / f64::from(self.mss)
    }

    fn reduce(&mut self, base: u32) {
        let cwnd_seg = self.segments(base);
        // Fast convergence (section 4.7).
        self.w_max = if cwnd_seg < self.w_max {
            cwnd_seg * (1.0 + BETA) / 2.0
        } else {
            cwnd_seg
        };
        self.ssthresh = ((f64::from(base) * BETA) as u32).max(2 * self.mss);
        self.epoch = None;
    }
}

impl CongestionControl for Cubic {
    fn cwnd(&self) -> u32 {
        self.cwnd
    }

    fn ssthresh(&self) -> u32 {
        self.ssthresh
    }

    fn on_ack(&mut self, now: Instant, acked: u32, srtt: Option<Duration>) {
        if self.cwnd < self.ssthresh {
            self.cwnd = self
                .cwnd
                .saturating_add(super::slow_start_increase(acked, self.mss));
            return;
        }
        let epoch = match self.epoch {
            Some(e) => e,
            None => {
                self.epoch = Some(now);
                let cwnd_seg = self.segments(self.cwnd);
                self.cwnd_at_epoch = cwnd_seg;
                self.w_est = cwnd_seg;
                if self.w_max < cwnd_seg {
                    self.w_max = cwnd_seg;
                }
                // Equation 2, with cwnd_epoch in place of beta*W_max.
                self.k = ((self.w_max - cwnd_seg) / C).cbrt();
                now
            }
        };
        let rtt = srtt.unwrap_or(Duration::from_millis(100)).as_secs_f64();
        let t = now.saturating_duration_since(epoch).as_secs_f64() + rtt;
        let w_cubic = C * (t - self.k).powi(3) + self.w_max;
        let cwnd_seg = self.segments(self.cwnd);
        // Equation 4: Reno-friendly growth with alpha_cubic.
        let alpha = 3.0 * (1.0 - BETA) / (1.0 + BETA);
        self.w_est += alpha * self.segments(acked) / cwnd_seg;
        let target = if w_cubic < self.w_est {
            self.w_est
        } else {
            w_cubic.clamp(cwnd_seg, 1.5 * cwnd_seg)
        };
        if target > cwnd_seg {
            let grow = (target - cwnd_seg) / cwnd_seg * f64::from(acked);
            let grow = grow.min(f64::from(acked)) as u32;
            self.cwnd = self.cwnd.saturating_add(grow.max(1));
        }
    }

    fn on_congestion(&mut self, _now: Instant, flight: u32) {
        self.prior = Some(self.snapshot());
        self.reduce(self.cwnd.min(flight.max(2 * self.mss)));
        self.cwnd = self.ssthresh;
    }

    fn on_recovery_exit(&mut self) {
        self.cwnd = self.ssthresh.max(self.mss);
    }

    fn undo(&mut self) {
        if let Some(p) = self.prior.take() {
            self.restore(p);
        }
    }

    fn undo_rto(&mut self) {
        if let Some(p) = self.prior_rto.take() {
            self.restore(p);
        }
    }

    fn on_rto(&mut self, flight: u32) {
        self.prior = None;
        self.prior_rto = Some(self.snapshot());
        self.reduce(self.cwnd.min(flight.max(2 * self.mss)));
        self.cwnd = self.mss;
    }

    fn set_mss(&mut self, mss: u32) {
        self.mss = mss.max(1);
        self.cwnd = self.cwnd.max(self.mss);
    }
}

impl Cubic {
    fn snapshot(&self) -> Prior {
        Prior {
            cwnd: self.cwnd,
            ssthresh: self.ssthresh,
            w_max: self.w_max,
            epoch: self.epoch,
            k: self.k,
            w_est: self.w_est,
            cwnd_at_epoch: self.cwnd_at_epoch,
        }
    }

    fn restore(&mut self, p: Prior) {
        // The epoch goes on as if the reduction never happened; cwnd keeps
        // whatever it regained meanwhile if that is more.
        self.cwnd = self.cwnd.max(p.cwnd);
        self.ssthresh = self.ssthresh.max(p.ssthresh);
        self.w_max = p.w_max;
        self.epoch = p.epoch;
        self.k = p.k;
        self.w_est = p.w_est;
        self.cwnd_at_epoch = p.cwnd_at_epoch;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn congestion_multiplies_window_by_beta_0_7() {
        let mut cc = Cubic::new(1000);
        cc.on_congestion(Instant::ZERO, 10_000);
        assert_eq!(cc.cwnd(), 7000);
        assert_eq!(cc.ssthresh(), 7000);
    }

    #[test]
    fn undo_restores_window_and_w_max() {
        let mut cc = Cubic::new(1000);
        cc.on_congestion(Instant::ZERO, 10_000);
        let w_max = cc.w_max;
        cc.on_congestion(Instant::ZERO, 7_000);
        assert_eq!(cc.cwnd(), 4900);
        cc.undo();
        assert_eq!((cc.cwnd(), cc.ssthresh()), (7000, 7000));
        assert_eq!(cc.w_max, w_max);
        cc.on_rto(7000);
        cc.undo();
        assert_eq!(cc.cwnd(), 1000, "no undo past an RTO");
        // A spurious RTO is undone by its own call, once.
        cc.undo_rto();
        assert_eq!((cc.cwnd(), cc.ssthresh()), (7000, 7000));
        assert_eq!(cc.w_max, w_max);
        cc.undo_rto();
        assert_eq!(cc.cwnd(), 7000);
    }

    #[test]
    fn window_regrows_towards_w_max_and_beyond() {
        let mut cc = Cubic::new(1000);
        cc.on_congestion(Instant::ZERO, 10_000);
        let rtt = Some(Duration::from_millis(50));
        let mut now = Instant::ZERO;
        let mut last = cc.cwnd();
        for _ in 0..200 {
            now += Duration::from_millis(50);
            for _ in 0..(cc.cwnd() / 1000) {
                cc.on_ack(now, 1000, rtt);
            }
            assert!(cc.cwnd() >= last, "cwnd must not shrink on ACKs");
            last = cc.cwnd();
        }
        assert!(cc.cwnd() > 10_000, "cubic probes past W_max: {}", cc.cwnd());
    }
}
