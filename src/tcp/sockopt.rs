//! What the stack layer asks of a connection beyond the engine's core API:
//! socket options that change a live connection, and the queries poll and
//! TIME-WAIT reuse need.

use super::seq::Seq;
use super::{Connection, Keepalive, State};
use crate::wire::tcp::{TcpFlags, TcpRepr};

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

    /// RFC 6191 / RFC 9293 section 3.10.7.4: a SYN arriving for a
    /// connection in TIME-WAIT may open a new incarnation when it cannot be
    /// mistaken for an old segment: its timestamp is newer than the last
    /// one seen, or, without timestamps, its sequence number is beyond
    /// `rcv_nxt`.
    pub fn syn_may_reuse(&self, syn: &TcpRepr) -> bool {
        if self.state != State::TimeWait || !syn.flags.contains(TcpFlags::SYN) {
            return false;
        }
        match (self.opts.timestamps, syn.options.timestamps) {
            (true, Some((tsval, _))) => Seq(tsval) > Seq(self.ts_recent),
            _ => Seq(syn.seq) > self.rcv_nxt,
        }
    }
}
