//! TCP sequence numbers: 32-bit values compared modulo 2^32
//! (RFC 9293 section 3.4).
//!
//! Owns only arithmetic. Two numbers compare by the sign of their wrapping
//! difference, so the order is meaningful only for numbers less than 2^31
//! apart, which the window rules guarantee for every pair the engine compares.

use core::cmp::Ordering;
use core::fmt;
use core::ops::{Add, Sub};

/// A sequence number.
///
/// Comparison and distance wrap around 2^32 as RFC 9293 section 3.4 asks:
///
/// ```
/// use ustack::tcp::Seq;
///
/// let near_wrap = Seq(u32::MAX - 9);
/// let after = near_wrap + 20u32; // wraps to 10
/// assert_eq!(after, Seq(10));
/// assert!(after > near_wrap);
/// assert_eq!(after.diff(near_wrap), 20);
/// assert_eq!(near_wrap.since(after), 0); // not past it
/// assert!(Seq(5).in_range(near_wrap, after));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Seq(pub u32);

impl Seq {
    /// `self - other` as a signed distance (positive when `self` is later).
    pub fn diff(self, other: Seq) -> i32 {
        self.0.wrapping_sub(other.0) as i32
    }

    /// How far `self` is past `earlier`, or 0 if it is not past it.
    pub fn since(self, earlier: Seq) -> u32 {
        u32::try_from(self.diff(earlier)).unwrap_or(0)
    }

    /// The later of two sequence numbers.
    pub fn max(self, other: Seq) -> Seq {
        if self.diff(other) >= 0 { self } else { other }
    }

    /// The earlier of two sequence numbers.
    pub fn min(self, other: Seq) -> Seq {
        if self.diff(other) <= 0 { self } else { other }
    }

    /// Whether `self` lies in the half-open range `[start, end)`.
    pub fn in_range(self, start: Seq, end: Seq) -> bool {
        self >= start && self < end
    }
}

impl Add<u32> for Seq {
    type Output = Seq;
    fn add(self, rhs: u32) -> Seq {
        Seq(self.0.wrapping_add(rhs))
    }
}

impl Add<usize> for Seq {
    type Output = Seq;
    fn add(self, rhs: usize) -> Seq {
        // Truncation is the modular arithmetic sequence space wants.
        Seq(self.0.wrapping_add(rhs as u32))
    }
}

impl Sub<u32> for Seq {
    type Output = Seq;
    fn sub(self, rhs: u32) -> Seq {
        Seq(self.0.wrapping_sub(rhs))
    }
}

impl PartialOrd for Seq {
    fn partial_cmp(&self, other: &Seq) -> Option<Ordering> {
        Some(self.diff(*other).cmp(&0))
    }
}

impl fmt::Debug for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparison_wraps_around_zero() {
        let a = Seq(u32::MAX - 10);
        let b = a + 20u32;
        assert_eq!(b.0, 9);
        assert!(a < b);
        assert!(b > a);
        assert_eq!(b.diff(a), 20);
        assert_eq!(a.diff(b), -20);
        assert_eq!(b.since(a), 20);
        assert_eq!(a.since(b), 0);
        assert_eq!(a.max(b), b);
        assert_eq!(a.min(b), a);
    }

    #[test]
    fn in_range_is_half_open_across_wrap() {
        let start = Seq(u32::MAX - 1);
        let end = start + 4u32;
        assert!(start.in_range(start, end));
        assert!(Seq(1).in_range(start, end));
        assert!(!end.in_range(start, end));
        assert!(!(start - 1u32).in_range(start, end));
    }
}
