//! Token buckets that pace replies an attacker could otherwise make us send
//! at line rate: ICMP errors (RFC 1812 section 4.3.2.8, RFC 4443 section
//! 2.4 (f)) and TCP challenge ACKs (RFC 5961 section 7).
//!
//! Owns: one bucket's level and the time it was last refilled.
//!
//! Must not touch: clocks (time comes in as `now`) or what is being limited;
//! the caller asks `allow(now)` and sends or drops.

use std::time::Duration;

use crate::time::Instant;

/// A token bucket: up to `burst` events at once, refilled at `rate` tokens
/// per `interval`. It starts full.
///
/// Arithmetic is exact integers: one token is `interval` microseconds of
/// credit, and each elapsed microsecond adds `rate` of them. No float drift,
/// no rounding that lets a long run exceed the configured rate.
///
/// ```
/// use std::time::Duration;
/// use ustack::Instant;
/// use ustack::ip::TokenBucket;
///
/// // 10 per second, bursts of 3.
/// let mut b = TokenBucket::new(10, Duration::from_secs(1), 3);
/// let t = Instant::from_millis(1_000);
/// assert_eq!((0..5).filter(|_| b.allow(t)).count(), 3);
/// // One token comes back every 100 ms.
/// assert!(!b.allow(t + Duration::from_millis(99)));
/// assert!(b.allow(t + Duration::from_millis(100)));
/// assert_eq!(b.counts(), (4, 3));
/// ```
#[derive(Clone, Debug)]
pub struct TokenBucket {
    /// Credit units per token: the interval in microseconds.
    unit: u128,
    /// Units added per elapsed microsecond.
    rate: u128,
    capacity: u128,
    level: u128,
    last: Option<Instant>,
    allowed: u64,
    denied: u64,
}

impl TokenBucket {
    /// `rate` tokens per `interval`, at most `burst` saved up. A zero
    /// interval means no limit at all; a zero burst means nothing passes.
    pub fn new(rate: u32, interval: Duration, burst: u32) -> TokenBucket {
        let unit = interval.as_micros();
        let capacity = unit.saturating_mul(u128::from(burst));
        TokenBucket {
            unit,
            rate: u128::from(rate),
            capacity,
            level: capacity,
            last: None,
            allowed: 0,
            denied: 0,
        }
    }

    /// ICMP and ICMPv6 errors, host-wide: 1000 per second with bursts of
    /// 50, Linux's `icmp_msgs_per_sec` and `icmp_msgs_burst` defaults.
    /// Enough for a traceroute or a port scan by a friend; a flood of
    /// packets to closed ports gets at most 1000 replies a second.
    pub fn icmp_errors() -> TokenBucket {
        TokenBucket::new(1000, Duration::from_secs(1), 50)
    }

    /// TCP challenge ACKs, host-wide. RFC 5961 section 7 asks for a
    /// configurable system-wide limit without fixing a number; Linux used
    /// 1000 per second (`tcp_challenge_ack_limit`) until 6.0. A predictable
    /// global limit is itself a side channel (CVE-2016-5696), so callers
    /// should also keep [`TokenBucket::out_of_window_acks`] per connection.
    pub fn challenge_acks() -> TokenBucket {
        TokenBucket::new(1000, Duration::from_secs(1), 100)
    }

    /// Duplicate and challenge ACKs for one connection: one per 500 ms,
    /// Linux's `tcp_invalid_ratelimit`, so two endpoints that disagree about
    /// the window cannot ping-pong ACKs at line rate.
    pub fn out_of_window_acks() -> TokenBucket {
        TokenBucket::new(1, Duration::from_millis(500), 1)
    }

    /// Takes a token if there is one. Time going backwards refills nothing.
    pub fn allow(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.level >= self.unit {
            self.level -= self.unit;
            self.allowed += 1;
            true
        } else {
            self.denied += 1;
            false
        }
    }

    /// Whole tokens available at `now`, without taking any.
    pub fn available(&mut self, now: Instant) -> u64 {
        self.refill(now);
        match self.level.checked_div(self.unit) {
            Some(tokens) => u64::try_from(tokens).unwrap_or(u64::MAX),
            None => u64::MAX,
        }
    }

    /// Events allowed and denied so far.
    pub fn counts(&self) -> (u64, u64) {
        (self.allowed, self.denied)
    }

    fn refill(&mut self, now: Instant) {
        let last = *self.last.get_or_insert(now);
        if now <= last {
            return;
        }
        let elapsed = u128::from(now.total_micros() - last.total_micros());
        self.level = self
            .level
            .saturating_add(elapsed.saturating_mul(self.rate))
            .min(self.capacity);
        self.last = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at_ms(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    #[test]
    fn allows_the_burst_then_the_steady_rate() {
        let mut b = TokenBucket::icmp_errors();
        let t = at_ms(5_000);
        let burst = (0..100).filter(|_| b.allow(t)).count();
        assert_eq!(burst, 50);
        // One token per millisecond afterwards.
        assert!(!b.allow(t + Duration::from_micros(999)));
        assert!(b.allow(t + Duration::from_millis(1)));
        assert!(!b.allow(t + Duration::from_millis(1)));
        // Over ten seconds of constant pressure, 10,000 more get through.
        let mut passed = 0;
        for us in (0..10_000_000u64).step_by(100) {
            if b.allow(t + Duration::from_millis(1) + Duration::from_micros(us + 100)) {
                passed += 1;
            }
        }
        assert_eq!(passed, 10_000);
        assert_eq!(b.counts().0, 50 + 1 + 10_000);
    }

    #[test]
    fn idle_time_refills_only_up_to_the_burst() {
        let mut b = TokenBucket::new(10, Duration::from_secs(1), 5);
        for _ in 0..5 {
            assert!(b.allow(at_ms(0)));
        }
        assert!(!b.allow(at_ms(0)));
        assert_eq!(b.available(at_ms(3_600_000)), 5);
        let passed = (0..20).filter(|_| b.allow(at_ms(3_600_000))).count();
        assert_eq!(passed, 5);
    }

    #[test]
    fn fractional_rates_accumulate_exactly() {
        // RFC 5961's kind of figure: 10 per 5 seconds is 2 per second.
        let mut b = TokenBucket::new(10, Duration::from_secs(5), 1);
        assert!(b.allow(at_ms(0)));
        assert!(!b.allow(at_ms(499)));
        assert!(b.allow(at_ms(500)));
        let mut b = TokenBucket::out_of_window_acks();
        assert!(b.allow(at_ms(100)));
        assert!(!b.allow(at_ms(599)));
        assert!(b.allow(at_ms(600)));
    }

    #[test]
    fn time_going_backwards_refills_nothing() {
        let mut b = TokenBucket::new(1, Duration::from_secs(1), 1);
        assert!(b.allow(at_ms(10_000)));
        assert!(!b.allow(at_ms(0)));
        assert!(!b.allow(at_ms(10_999)));
        assert!(b.allow(at_ms(11_000)));
    }

    #[test]
    fn zero_burst_denies_and_zero_interval_allows_everything() {
        let mut none = TokenBucket::new(1000, Duration::from_secs(1), 0);
        assert!(!none.allow(at_ms(0)));
        assert!(!none.allow(at_ms(100_000)));
        assert_eq!(none.counts(), (0, 2));
        let mut all = TokenBucket::new(0, Duration::ZERO, 0);
        assert!((0..1000).all(|_| all.allow(at_ms(0))));
    }

    proptest! {
        #[test]
        fn never_exceeds_burst_plus_rate_times_elapsed(
            rate in 1u32..2000,
            burst in 0u32..100,
            steps in proptest::collection::vec(0u64..5_000, 1..300),
        ) {
            let mut b = TokenBucket::new(rate, Duration::from_secs(1), burst);
            let start = at_ms(1);
            let mut now = start;
            let mut passed = 0u64;
            for step in steps {
                now += Duration::from_micros(step);
                for _ in 0..3 {
                    if b.allow(now) {
                        passed += 1;
                    }
                }
                let elapsed = (now - start).as_micros() as u64;
                let bound = u64::from(burst) + u64::from(rate) * elapsed / 1_000_000;
                prop_assert!(passed <= bound, "{} passed, bound {}", passed, bound);
            }
        }
    }
}
