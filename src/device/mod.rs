//! Links: where packets enter and leave the stack.
//!
//! Owns the [`Link`] trait and its implementations. A link carries whole IP
//! datagrams (no link-layer header) and moves them in batches, so the runtime
//! can drain a device per wake-up and write many packets per call.
//!
//! Must not touch: protocol state. A link never parses beyond what it needs
//! (the pcap tap and fault injector look at no header at all).

use std::io;
use std::os::fd::RawFd;

use crate::time::Instant;

/// One packet on a link: a whole IPv4 or IPv6 datagram.
pub type Packet = Vec<u8>;

/// A point-to-point link that moves batches of IP packets.
///
/// Neither method blocks. The runtime waits on [`Link::wait_fd`] and
/// [`Link::poll_at`] between calls.
pub trait Link: Send {
    /// Appends up to `max` received packets to `batch` and returns how many
    /// it appended; `Ok(0)` when nothing is waiting.
    fn recv_batch(
        &mut self,
        now: Instant,
        batch: &mut Vec<Packet>,
        max: usize,
    ) -> io::Result<usize>;

    /// Takes packets from the front of `batch` (transmitting them, or
    /// dropping them on purpose, as a fault injector does), removes those it
    /// took, and returns how many. Packets the link cannot take now (a full
    /// device queue) stay in `batch`, in order, for a later call.
    fn send_batch(&mut self, now: Instant, batch: &mut Vec<Packet>) -> io::Result<usize>;

    /// The largest datagram the link carries, in bytes.
    fn mtu(&self) -> usize;

    /// A file descriptor that polls readable when [`Link::recv_batch`] may
    /// have packets (the TUN fd, an eventfd for in-memory links).
    fn wait_fd(&self) -> Option<RawFd>;

    /// When the link itself next has work due (a delayed packet to release),
    /// if ever.
    fn poll_at(&self) -> Option<Instant> {
        None
    }
}

impl<L: Link + ?Sized> Link for Box<L> {
    fn recv_batch(
        &mut self,
        now: Instant,
        batch: &mut Vec<Packet>,
        max: usize,
    ) -> io::Result<usize> {
        (**self).recv_batch(now, batch, max)
    }
    fn send_batch(&mut self, now: Instant, batch: &mut Vec<Packet>) -> io::Result<usize> {
        (**self).send_batch(now, batch)
    }
    fn mtu(&self) -> usize {
        (**self).mtu()
    }
    fn wait_fd(&self) -> Option<RawFd> {
        (**self).wait_fd()
    }
    fn poll_at(&self) -> Option<Instant> {
        (**self).poll_at()
    }
}
