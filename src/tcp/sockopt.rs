//! Queries the stack layer's poll support needs beyond the engine's core
//! API: whether an error is pending (without taking it) and whether the
//! sending side is finished.

use super::{Connection, State};

impl Connection {
    /// Whether an error is pending (without taking it, as poll must not).
    pub fn has_error(&self) -> bool {
        self.error.is_some()
    }

    /// The congestion control algorithm in use.
    pub fn congestion(&self) -> super::CongestionAlgorithm {
        self.cfg.congestion
    }

    /// The application shut down writing (FIN queued or sent).
    pub fn send_closed(&self) -> bool {
        self.fin_queued || self.state == State::Closed
    }
}
