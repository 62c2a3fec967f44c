//! The retransmission timeout estimator of RFC 6298.
//!
//! Owns SRTT, RTTVAR and RTO and the exponential backoff. Must not decide
//! which samples are valid (Karn's rule lives with the connection, which
//! knows what was retransmitted).

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct RttEstimator {
    pub srtt: Option<Duration>,
    pub rttvar: Duration,
    /// The base RTO, before backoff.
    pub rto: Duration,
    /// Consecutive expiries: the timer runs for `rto * 2^backoff`
    /// (RFC 6298 section 5.5).
    pub backoff: u32,
    min_rto: Duration,
    max_rto: Duration,
}

impl RttEstimator {
    pub fn new(initial: Duration, min_rto: Duration, max_rto: Duration) -> RttEstimator {
        RttEstimator {
            srtt: None,
            rttvar: Duration::ZERO,
            rto: initial.clamp(min_rto, max_rto.max(min_rto)),
            backoff: 0,
            min_rto,
            max_rto: max_rto.max(min_rto),
        }
    }

    /// Takes one RTT measurement (RFC 6298 section 2.2 and 2.3).
    pub fn sample(&mut self, r: Duration) {
        match self.srtt {
            None => {
                self.srtt = Some(r);
                self.rttvar = r / 2;
            }
            Some(srtt) => {
                let delta = srtt.abs_diff(r);
                self.rttvar = (self.rttvar * 3 + delta) / 4;
                self.srtt = Some((srtt * 7 + r) / 8);
            }
        }
        // RTO = SRTT + max(G, 4 * RTTVAR) (RFC 6298 section 2.3) with the
        // minimum RTO standing in for G, as Linux computes it: the floor
        // applies to the variance term, so a 10 ms path gets 210 ms, not
        // 200 ms, and packetdrill's timings (taken from Linux) hold.
        let srtt = self.srtt.unwrap_or(r);
        self.rto = (srtt + self.min_rto.max(self.rttvar * 4)).min(self.max_rto);
        // A fresh sample after backoff means the path works again (5.7).
        self.backoff = 0;
    }

    /// The current timeout, backoff included, capped at the maximum.
    pub fn current(&self) -> Duration {
        let factor = 1u32 << self.backoff.min(16);
        self.rto.saturating_mul(factor).min(self.max_rto)
    }

    /// Doubles the timeout after an expiry (RFC 6298 section 5.5).
    pub fn back_off(&mut self) {
        self.backoff = self.backoff.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn est() -> RttEstimator {
        RttEstimator::new(
            Duration::from_secs(1),
            Duration::from_millis(200),
            Duration::from_secs(120),
        )
    }

    #[test]
    fn first_sample_sets_srtt_and_half_rttvar() {
        let mut e = est();
        assert_eq!(e.current(), Duration::from_secs(1));
        e.sample(Duration::from_millis(100));
        assert_eq!(e.srtt, Some(Duration::from_millis(100)));
        assert_eq!(e.rttvar, Duration::from_millis(50));
        assert_eq!(e.rto, Duration::from_millis(300));
    }

    #[test]
    fn later_samples_smooth_with_one_eighth_and_one_quarter() {
        let mut e = est();
        e.sample(Duration::from_millis(100));
        e.sample(Duration::from_millis(180));
        assert_eq!(e.srtt, Some(Duration::from_millis(110)));
        assert_eq!(e.rttvar, Duration::from_millis(57_500) / 1000);
    }

    #[test]
    fn rto_variance_term_is_at_least_the_200ms_minimum() {
        let mut e = est();
        for _ in 0..20 {
            e.sample(Duration::from_millis(1));
        }
        assert_eq!(e.rto, Duration::from_millis(201));
        let mut e = est();
        e.sample(Duration::from_millis(10));
        assert_eq!(e.rto, Duration::from_millis(210));
    }

    #[test]
    fn backoff_doubles_up_to_max_rto() {
        let mut e = est();
        e.back_off();
        assert_eq!(e.current(), Duration::from_secs(2));
        for _ in 0..10 {
            e.back_off();
        }
        assert_eq!(e.current(), Duration::from_secs(120));
        e.sample(Duration::from_millis(100));
        assert_eq!(e.backoff, 0);
    }
}
