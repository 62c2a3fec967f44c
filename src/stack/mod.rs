//! The sans-IO stack core.
//!
//! Owns the host's view of the link: its addresses, the demultiplexing of
//! arriving datagrams to ICMP, UDP and TCP, fragment reassembly state, and
//! the queue of datagrams to send. Takes time as an argument; never reads a
//! clock, never touches a device.

mod socket;
pub use socket::SocketHandle;

use crate::device::Packet;
use crate::time::Instant;

/// Counters of what the core saw and did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Datagrams handed to [`Core::input`].
    pub ip_in: u64,
    /// Datagrams produced by [`Core::poll_transmit`].
    pub ip_out: u64,
}

/// The sans-IO core of one host on one link.
#[derive(Debug, Default)]
pub struct Core {
    counters: Counters,
}

impl Core {
    /// Processes one datagram that arrived from the link.
    pub fn input(&mut self, _now: Instant, _packet: &[u8]) {
        self.counters.ip_in += 1;
    }

    /// Appends every datagram due now to `out`.
    pub fn poll_transmit(&mut self, _now: Instant, _out: &mut Vec<Packet>) {}

    /// When the core next needs [`Core::poll_transmit`] called, if ever.
    pub fn poll_at(&self) -> Option<Instant> {
        None
    }

    /// What the core counted so far.
    pub fn counters(&self) -> Counters {
        self.counters
    }
}
