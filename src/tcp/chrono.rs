//! Send-time accounting, as Linux's TCP chrono keeps it for TCP_INFO
//! (`tcpi_busy_time`, `tcpi_rwnd_limited`): how long the connection had
//! data to send, and how much of that time the peer's receive window held
//! it back.
//!
//! Owns the current kind of time and the totals. Must not decide when the
//! connection is busy or window-limited: the transmit path says so.

use crate::time::Instant;
use std::time::Duration;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Kind {
    /// Nothing queued or in flight.
    #[default]
    Idle,
    /// Data queued or in flight.
    Busy,
    /// Data waits that the peer's receive window does not take.
    RwndLimited,
}

/// The running account.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Chrono {
    kind: Kind,
    since: Option<Instant>,
    busy: Duration,
    rwnd: Duration,
}

impl Chrono {
    fn switch(&mut self, now: Instant, kind: Kind) {
        let d = self
            .since
            .map_or(Duration::ZERO, |s| now.saturating_duration_since(s));
        match self.kind {
            Kind::Idle => {}
            Kind::Busy => self.busy += d,
            Kind::RwndLimited => self.rwnd += d,
        }
        self.kind = kind;
        self.since = Some(now);
    }

    /// Data was queued: busy from now if idle.
    pub fn on_queued(&mut self, now: Instant) {
        if self.kind == Kind::Idle {
            self.switch(now, Kind::Busy);
        }
    }

    /// A transmit pass ended, with data left that the receive window
    /// refused (`rwnd_limited`) or not (Linux's tcp_write_xmit ending in
    /// tcp_chrono_start or _stop of TCP_CHRONO_RWND_LIMITED).
    pub fn on_transmit(&mut self, now: Instant, rwnd_limited: bool) {
        match (self.kind, rwnd_limited) {
            (Kind::Busy, true) => self.switch(now, Kind::RwndLimited),
            (Kind::RwndLimited, false) => self.switch(now, Kind::Busy),
            _ => {}
        }
    }

    /// Nothing queued or in flight any more.
    pub fn on_idle(&mut self, now: Instant) {
        if self.kind != Kind::Idle {
            self.switch(now, Kind::Idle);
        }
    }

    fn current(&self, now: Instant) -> Duration {
        self.since
            .map_or(Duration::ZERO, |s| now.saturating_duration_since(s))
    }

    /// All the time with data to send, window-limited time included.
    pub fn busy_time(&self, now: Instant) -> Duration {
        let open = if self.kind == Kind::Idle {
            Duration::ZERO
        } else {
            self.current(now)
        };
        self.busy + self.rwnd + open
    }

    /// The part of it the receive window held the data back.
    pub fn rwnd_limited(&self, now: Instant) -> Duration {
        let open = if self.kind == Kind::RwndLimited {
            self.current(now)
        } else {
            Duration::ZERO
        };
        self.rwnd + open
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    #[test]
    fn busy_time_counts_window_limited_time_and_stops_when_idle() {
        let mut c = Chrono::default();
        c.on_transmit(t(0), true);
        assert_eq!(c.busy_time(t(5)), Duration::ZERO, "idle: nothing counts");
        c.on_queued(t(10));
        c.on_transmit(t(10), true);
        assert_eq!(c.rwnd_limited(t(110)), Duration::from_millis(100));
        c.on_transmit(t(210), false);
        c.on_queued(t(220));
        assert_eq!(c.rwnd_limited(t(240)), Duration::from_millis(200));
        assert_eq!(c.busy_time(t(240)), Duration::from_millis(230));
        c.on_idle(t(250));
        assert_eq!(c.busy_time(t(900)), Duration::from_millis(240));
        assert_eq!(c.rwnd_limited(t(900)), Duration::from_millis(200));
    }
}
