//! When the receiver ACKs (RFC 9293 section 3.8.6.3, RFC 5681 section
//! 4.2): at once, urgently before the next arrival, or after the delayed-ACK
//! time.
//!
//! Owns whether an ACK is due and whether it is urgent, the bytes received
//! since the last ACK, the quick-ACK start of a connection, when in-order
//! data last arrived, and when a FIN's ACK goes (Linux's pingpong mode). Must not build segments or arm timers: the delayed-ACK
//! deadline is the connection's `Timer::DelayedAck`, armed when
//! [`AckPolicy::on_in_order`] asks for it.

use crate::time::Instant;
use std::time::Duration;

/// How many data segments a new connection ACKs at once (Linux's
/// TCP_MAX_QUICKACKS).
const QUICKACKS: u8 = 16;

/// The receiver's ACK policy.
#[derive(Clone, Copy, Debug)]
pub struct AckPolicy {
    /// An ACK is due at the next poll.
    pub due: bool,
    /// The due ACK is one the peer's loss detection or ACK clock waits
    /// for (out-of-order, duplicate or hole-filling data, or two full
    /// segments unacknowledged: RFC 5681 section 4.2), so it goes out
    /// before the next arrival is taken (`Connection::poll_urgent_ack`):
    /// a batch of arrivals must not collapse into one ACK.
    pub urgent: bool,
    /// In-order bytes received since the last ACK.
    unacked_bytes: usize,
    /// In-order data segments still to be ACKed at once: the quick-ACK
    /// start of a connection (Linux's, up to 16 segments), so the peer's
    /// slow start is not held back by delayed ACKs. Cleared when the
    /// connection turns interactive (we send data right after receiving),
    /// where delayed ACKs ride on the replies instead.
    pub(super) quickacks: u8,
    /// When in-order data last arrived.
    last_data_in: Option<Instant>,
}

impl Default for AckPolicy {
    fn default() -> AckPolicy {
        AckPolicy {
            due: false,
            urgent: false,
            unacked_bytes: 0,
            quickacks: QUICKACKS,
            last_data_in: None,
        }
    }
}

impl AckPolicy {
    /// An ACK is due, and urgent.
    pub fn urgent(&mut self) {
        self.due = true;
        self.urgent = true;
    }

    /// Nothing is due any more (the connection closed).
    pub fn clear(&mut self) {
        self.due = false;
        self.urgent = false;
    }

    /// `advanced` bytes of in-order data arrived at `now`, filling no hole:
    /// ACK at once during the quick-ACK start or once two full segments
    /// wait, else after the delayed-ACK time. Returns whether the
    /// delayed-ACK timer is to run (if it does not already).
    pub fn on_in_order(&mut self, now: Instant, advanced: usize, mss: u32) -> bool {
        self.unacked_bytes += advanced;
        self.last_data_in = Some(now);
        if self.quickacks > 0 {
            self.quickacks -= 1;
            self.due = true;
        } else if self.unacked_bytes >= 2 * mss as usize {
            self.urgent();
        } else {
            return true;
        }
        false
    }

    /// A FIN took the connection to CLOSE-WAIT. Linux then enters
    /// pingpong mode, so the FIN's ACK waits for the delayed-ACK timer,
    /// unless more than a segment of data waits unacknowledged with it,
    /// or no data ever arrived (Linux's ACK timeout is still zero then,
    /// so its timer fires at once); data that came again with the FIN
    /// does not hurry it either. Returns whether the delayed-ACK timer is
    /// to run; the ACK is not due before it fires.
    pub fn on_fin(&mut self, mss: u32) -> bool {
        if self.last_data_in.is_none() || self.unacked_bytes > mss as usize {
            self.due = true;
            return false;
        }
        self.due = false;
        self.urgent = false;
        true
    }

    /// A segment carrying our ACK went out: it satisfies what was due.
    pub fn on_sent(&mut self) {
        self.due = false;
        self.urgent = false;
        self.unacked_bytes = 0;
    }

    /// We send data at `now`: replying within the delayed-ACK time marks
    /// an interactive connection, whose ACKs ride on its replies, so the
    /// quick-ACK start ends.
    pub fn on_reply(&mut self, now: Instant, delayed_ack: Duration) {
        if self
            .last_data_in
            .is_some_and(|t| now.saturating_duration_since(t) < delayed_ack)
        {
            self.quickacks = 0;
        }
    }

    /// When in-order data last arrived.
    pub fn last_data_in(&self) -> Option<Instant> {
        self.last_data_in
    }
}
