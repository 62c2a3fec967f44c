//! Time as the sans-IO layers see it.
//!
//! Everything from `wire` to `stack` takes an [`Instant`] as an argument and
//! never reads a clock. Only the runtime (a monotonic clock) and the
//! packetdrill adapter (a virtual clock advanced by `usleep`) make them.

use core::ops::{Add, AddAssign, Sub};
use std::time::Duration;

/// A point in time, in microseconds since an arbitrary epoch chosen by the
/// driver of the stack. Only differences between instants mean anything.
///
/// Arithmetic with [`Duration`] saturates instead of wrapping or panicking,
/// and `later - earlier` is a `Duration` (zero if `earlier` is the later):
///
/// ```
/// use std::time::Duration;
/// use ustack::Instant;
///
/// let t = Instant::from_millis(1_500);
/// assert_eq!(t.total_micros(), 1_500_000);
/// assert_eq!(t + Duration::from_micros(250), Instant::from_micros(1_500_250));
/// assert_eq!(t - Instant::from_millis(500), Duration::from_secs(1));
/// assert_eq!(Instant::ZERO - t, Duration::ZERO);
/// assert_eq!(t - Duration::from_secs(10), Instant::ZERO);
/// assert_eq!(Instant::from_micros(2_999).total_millis(), 2);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Instant {
    micros: u64,
}

impl Instant {
    /// The epoch.
    pub const ZERO: Instant = Instant { micros: 0 };

    /// An instant `micros` microseconds after the epoch.
    pub const fn from_micros(micros: u64) -> Instant {
        Instant { micros }
    }

    /// An instant `millis` milliseconds after the epoch.
    pub const fn from_millis(millis: u64) -> Instant {
        Instant {
            micros: millis.saturating_mul(1000),
        }
    }

    /// Microseconds since the epoch.
    pub const fn total_micros(self) -> u64 {
        self.micros
    }

    /// Milliseconds since the epoch (truncated).
    pub const fn total_millis(self) -> u64 {
        self.micros / 1000
    }

    /// The time from `earlier` to `self`, or zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_micros(self.micros.saturating_sub(earlier.micros))
    }
}

fn duration_micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, rhs: Duration) -> Instant {
        Instant {
            micros: self.micros.saturating_add(duration_micros(rhs)),
        }
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, rhs: Duration) {
        *self = *self + rhs;
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    fn sub(self, rhs: Duration) -> Instant {
        Instant {
            micros: self.micros.saturating_sub(duration_micros(rhs)),
        }
    }
}

/// Saturating: an earlier minus a later instant is zero.
impl Sub<Instant> for Instant {
    type Output = Duration;
    fn sub(self, rhs: Instant) -> Duration {
        self.saturating_duration_since(rhs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_instead_of_wrapping() {
        let t = Instant::from_millis(5);
        assert_eq!(t + Duration::from_millis(3), Instant::from_millis(8));
        assert_eq!(t - Duration::from_secs(1), Instant::ZERO);
        assert_eq!(Instant::ZERO - t, Duration::ZERO);
        assert_eq!(t - Instant::from_millis(2), Duration::from_millis(3));
        assert_eq!(
            Instant::from_micros(u64::MAX) + Duration::from_secs(1),
            Instant::from_micros(u64::MAX)
        );
    }
}
