//! The timer table: every deadline one connection keeps, by kind (the
//! shape of quinn-proto's `TimerTable`).
//!
//! Owns the deadlines and nothing else: arming, stopping, asking whether
//! one is due and which comes first. Must not decide when a timer runs or
//! what its expiry does; those rules live with the state each timer guards
//! (`output.rs`'s `on_timers` fires them in a fixed order).
//!
//! TCP_USER_TIMEOUT has no entry: its deadline follows from the clocks in
//! [`UserTimeout`] and the send state at the moment it is asked for, so
//! `Connection::poll_at` takes it beside [`TimerTable::next`].

use crate::time::Instant;

/// The kinds of deadline a connection keeps.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Timer {
    /// Retransmission timeout (RFC 6298).
    Rto,
    /// Probe timeout of the tail loss probe and the recovery probe (RFC
    /// 8985 section 7.2, `tlp`).
    Pto,
    /// RACK's reordering timer (RFC 8985 section 6.2).
    Rack,
    /// Persist timer: zero-window probes, and the ceiling on a cork (RFC
    /// 9293 section 3.8.6.1).
    Persist,
    /// Keepalive (RFC 9293 section 3.8.4).
    Keepalive,
    /// Delayed ACK (RFC 9293 section 3.8.6.3).
    DelayedAck,
    /// TIME-WAIT expiry, 2*MSL.
    TimeWait,
    /// The orphaned FIN-WAIT-2 timeout (Linux's tcp_fin_timeout).
    FinWait2,
}

impl Timer {
    const COUNT: usize = 8;

    fn index(self) -> usize {
        self as usize
    }
}

/// One optional deadline per [`Timer`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimerTable {
    at: [Option<Instant>; Timer::COUNT],
}

impl TimerTable {
    /// The deadline of `timer`, if armed.
    pub fn get(&self, timer: Timer) -> Option<Instant> {
        self.at[timer.index()]
    }

    /// Arms (or re-arms) `timer` for `at`.
    pub fn set(&mut self, timer: Timer, at: Instant) {
        self.at[timer.index()] = Some(at);
    }

    /// Sets `timer` to `at`, armed or stopped.
    pub fn put(&mut self, timer: Timer, at: Option<Instant>) {
        self.at[timer.index()] = at;
    }

    /// Arms `timer` for `at` unless it runs already.
    pub fn arm_if_idle(&mut self, timer: Timer, at: Instant) {
        self.at[timer.index()].get_or_insert(at);
    }

    /// Stops `timer`.
    pub fn stop(&mut self, timer: Timer) {
        self.at[timer.index()] = None;
    }

    /// Stops every timer.
    pub fn stop_all(&mut self) {
        self.at = [None; Timer::COUNT];
    }

    /// Whether `timer` runs.
    pub fn is_armed(&self, timer: Timer) -> bool {
        self.at[timer.index()].is_some()
    }

    /// Whether `timer` runs and its deadline is at or before `now`.
    pub fn is_due(&self, timer: Timer, now: Instant) -> bool {
        self.at[timer.index()].is_some_and(|t| now >= t)
    }

    /// The earliest deadline armed.
    pub fn next(&self) -> Option<Instant> {
        self.at.iter().flatten().min().copied()
    }
}

/// The two clocks of TCP_USER_TIMEOUT (RFC 5482 section 2): since when
/// sent data has waited without an ACK of new data, and since when
/// zero-window probes have gone out without the window opening.
#[derive(Clone, Copy, Debug, Default)]
pub struct UserTimeout {
    pub una_since: Option<Instant>,
    pub probe_since: Option<Instant>,
}

impl UserTimeout {
    /// The deadline: `timeout` after the clock that applies, the first
    /// while data is unacknowledged, the second while probing a zero
    /// window with data waiting.
    pub fn deadline(
        &self,
        timeout: std::time::Duration,
        unacked: bool,
        probing: bool,
    ) -> Option<Instant> {
        let since = if unacked {
            self.una_since
        } else if probing {
            self.probe_since
        } else {
            None
        }?;
        Some(since + timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_is_the_earliest_armed_deadline() {
        let mut t = TimerTable::default();
        assert_eq!(t.next(), None);
        t.set(Timer::Keepalive, Instant::from_millis(50));
        t.set(Timer::Rto, Instant::from_millis(30));
        t.arm_if_idle(Timer::Rto, Instant::from_millis(10));
        assert_eq!(t.get(Timer::Rto), Some(Instant::from_millis(30)));
        assert_eq!(t.next(), Some(Instant::from_millis(30)));
        assert!(t.is_due(Timer::Rto, Instant::from_millis(30)));
        assert!(!t.is_due(Timer::Keepalive, Instant::from_millis(30)));
        t.stop(Timer::Rto);
        assert_eq!(t.next(), Some(Instant::from_millis(50)));
        t.stop_all();
        assert_eq!(t.next(), None);
    }
}
