//! What the stack layer asks of a connection beyond the engine's core API:
//! socket options that change a live connection, and the queries poll and
//! TIME-WAIT reuse need.

use super::{Connection, Keepalive, State};

impl Connection {
    /// TCP_NODELAY on a live connection.
    pub fn set_nodelay(&mut self, nodelay: bool) {
        self.cfg.nodelay = nodelay;
    }

    /// SO_KEEPALIVE / TCP_KEEP* on a live connection: the idle timer starts
    /// from the last time the connection was used.
    pub fn set_keepalive(&mut self, keepalive: Option<Keepalive>) {
        self.cfg.keepalive = keepalive;
        self.keepalive_probes = 0;
        self.keepalive_at = match keepalive {
            Some(ka) if self.state.is_synchronized() => Some(self.last_now + ka.idle),
            _ => None,
        };
    }

    /// Whether an error is pending (without taking it, as poll must not).
    pub fn has_error(&self) -> bool {
        self.error.is_some()
    }

    /// The application shut down writing (FIN queued or sent).
    pub fn send_closed(&self) -> bool {
        self.fin_queued || self.state == State::Closed
    }
}
