//! An in-memory point-to-point link pair, for running two stacks in one
//! process (on one thread or two).
//!
//! Owns two bounded packet queues, one per direction, and an eventfd per
//! queue so a runtime can wait on a pipe link exactly as on a TUN device.
//! Must not touch: packet contents. A pipe neither reads nor changes bytes,
//! and never looks at the `now` it is given.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{Link, LinkStats, Packet};
use crate::sys::EventFd;
use crate::time::Instant;

/// Packets a direction holds before further sends are dropped, by default.
pub const DEFAULT_PIPE_CAPACITY: usize = 1024;

/// One direction: a bounded queue and an eventfd that is readable exactly
/// while the queue is non-empty.
struct Channel {
    queue: Mutex<VecDeque<Packet>>,
    capacity: usize,
    /// `None` only if the kernel refused an eventfd (fd exhaustion); the link
    /// still works, but a runtime cannot sleep on it.
    event: Option<EventFd>,
}

impl Channel {
    fn new(capacity: usize) -> Channel {
        let event = EventFd::new()
            .map_err(|e| log::warn!("pipe link: no eventfd ({e}); wait_fd will be None"))
            .ok();
        Channel {
            queue: Mutex::new(VecDeque::new()),
            capacity,
            event,
        }
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<Packet>> {
        // A panic on the other thread while holding the lock leaves the queue
        // itself consistent (push/pop are atomic with respect to it), so a
        // poisoned lock is safe to keep using.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Called with the queue lock held, so the eventfd's readability tracks
    /// the queue's emptiness without a window for a lost wake-up.
    fn signal(&self) {
        if let Some(ev) = &self.event {
            ev.notify();
        }
    }

    /// Called with the queue lock held, once the queue is empty.
    fn clear(&self) {
        if let Some(ev) = &self.event {
            ev.drain();
        }
    }
}

/// One end of an in-memory link made by [`pipe_pair`].
///
/// `send_batch` always takes every packet: one larger than the MTU, or one
/// that finds the peer's queue full, is dropped and counted in
/// [`LinkStats::tx_dropped`], like a router queue overflowing.
pub struct PipeLink {
    tx: Arc<Channel>,
    rx: Arc<Channel>,
    mtu: usize,
    stats: LinkStats,
}

/// Two connected in-memory links with the given MTU: what one sends, the
/// other receives. Each direction holds [`DEFAULT_PIPE_CAPACITY`] packets.
///
/// ```
/// use ustack::Instant;
/// use ustack::device::{Link, pipe_pair};
///
/// let (mut a, mut b) = pipe_pair(1500);
/// let mut out = vec![vec![0x45; 20], vec![0x45; 1501]]; // the second is too big
/// assert_eq!(a.send_batch(Instant::ZERO, &mut out)?, 2); // both taken...
/// assert!(out.is_empty());
/// assert_eq!(a.stats().tx_dropped, 1); // ...one dropped
///
/// assert_eq!(b.pending(), 1);
/// let mut got = Vec::new();
/// assert_eq!(b.recv_batch(Instant::ZERO, &mut got, 64)?, 1);
/// assert_eq!(got, [vec![0x45; 20]]);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn pipe_pair(mtu: usize) -> (PipeLink, PipeLink) {
    pipe_pair_with_capacity(mtu, DEFAULT_PIPE_CAPACITY)
}

/// Like [`pipe_pair`], with `capacity` packets per direction.
pub fn pipe_pair_with_capacity(mtu: usize, capacity: usize) -> (PipeLink, PipeLink) {
    let a_to_b = Arc::new(Channel::new(capacity));
    let b_to_a = Arc::new(Channel::new(capacity));
    let a = PipeLink {
        tx: a_to_b.clone(),
        rx: b_to_a.clone(),
        mtu,
        stats: LinkStats::default(),
    };
    let b = PipeLink {
        tx: b_to_a,
        rx: a_to_b,
        mtu,
        stats: LinkStats::default(),
    };
    (a, b)
}

impl PipeLink {
    /// This end's counters.
    pub fn stats(&self) -> LinkStats {
        self.stats
    }

    /// Packets waiting for this end to receive.
    pub fn pending(&self) -> usize {
        self.rx.lock().len()
    }
}

impl Link for PipeLink {
    fn recv_batch(
        &mut self,
        _now: Instant,
        batch: &mut Vec<Packet>,
        max: usize,
    ) -> io::Result<usize> {
        let mut queue = self.rx.lock();
        let n = max.min(queue.len());
        for packet in queue.drain(..n) {
            self.stats.count_rx(packet.len());
            batch.push(packet);
        }
        if n > 0 && queue.is_empty() {
            self.rx.clear();
        }
        Ok(n)
    }

    fn send_batch(&mut self, _now: Instant, batch: &mut Vec<Packet>) -> io::Result<usize> {
        let taken = batch.len();
        if taken == 0 {
            return Ok(0);
        }
        let mut queue = self.tx.lock();
        let was_empty = queue.is_empty();
        for packet in batch.drain(..) {
            if packet.len() > self.mtu || queue.len() >= self.tx.capacity {
                self.stats.tx_dropped += 1;
                continue;
            }
            self.stats.count_tx(packet.len());
            queue.push_back(packet);
        }
        if was_empty && !queue.is_empty() {
            self.tx.signal();
        }
        Ok(taken)
    }

    fn mtu(&self) -> usize {
        self.mtu
    }

    fn wait_fd(&self) -> Option<RawFd> {
        self.rx.event.as_ref().map(|fd| fd.as_raw_fd())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readable(fd: RawFd) -> bool {
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, zero timeout.
        let n = unsafe { libc::poll(&mut pfd, 1, 0) };
        assert!(n >= 0, "poll failed: {}", io::Error::last_os_error());
        pfd.revents & libc::POLLIN != 0
    }

    fn packets(lens: &[usize]) -> Vec<Packet> {
        lens.iter()
            .enumerate()
            .map(|(i, &len)| vec![i as u8; len])
            .collect()
    }

    #[test]
    fn delivers_packets_in_order_to_the_other_end_only() {
        let (mut a, mut b) = pipe_pair(1500);
        let mut batch = packets(&[10, 20, 30]);
        assert_eq!(a.send_batch(Instant::ZERO, &mut batch).unwrap(), 3);
        assert!(batch.is_empty());

        let mut got = Vec::new();
        assert_eq!(a.recv_batch(Instant::ZERO, &mut got, 10).unwrap(), 0);
        assert_eq!(b.recv_batch(Instant::ZERO, &mut got, 10).unwrap(), 3);
        assert_eq!(got, packets(&[10, 20, 30]));
        assert_eq!(a.stats().tx_packets, 3);
        assert_eq!(a.stats().tx_bytes, 60);
        assert_eq!(b.stats().rx_packets, 3);
        assert_eq!(b.stats().rx_bytes, 60);
    }

    #[test]
    fn recv_batch_stops_at_max_and_keeps_the_rest() {
        let (mut a, mut b) = pipe_pair(1500);
        a.send_batch(Instant::ZERO, &mut packets(&[1, 2, 3, 4, 5]))
            .unwrap();
        let mut got = Vec::new();
        assert_eq!(b.recv_batch(Instant::ZERO, &mut got, 2).unwrap(), 2);
        assert_eq!(b.pending(), 3);
        assert_eq!(b.recv_batch(Instant::ZERO, &mut got, 10).unwrap(), 3);
        assert_eq!(got, packets(&[1, 2, 3, 4, 5]));
    }

    #[test]
    fn oversize_packets_are_dropped_and_counted() {
        let (mut a, mut b) = pipe_pair(100);
        let mut batch = packets(&[100, 101, 50]);
        assert_eq!(a.send_batch(Instant::ZERO, &mut batch).unwrap(), 3);
        assert_eq!(a.stats().tx_dropped, 1);
        let mut got = Vec::new();
        b.recv_batch(Instant::ZERO, &mut got, 10).unwrap();
        assert_eq!(got.iter().map(Vec::len).collect::<Vec<_>>(), [100, 50]);
    }

    #[test]
    fn full_queue_drops_and_counts_instead_of_growing() {
        let (mut a, b) = pipe_pair_with_capacity(1500, 4);
        let mut batch = packets(&[1; 6]);
        assert_eq!(a.send_batch(Instant::ZERO, &mut batch).unwrap(), 6);
        assert_eq!(a.stats().tx_dropped, 2);
        assert_eq!(b.pending(), 4);
    }

    #[test]
    fn wait_fd_is_readable_exactly_while_packets_wait() {
        let (mut a, mut b) = pipe_pair(1500);
        let fd = b.wait_fd().expect("eventfd");
        assert!(!readable(fd));
        a.send_batch(Instant::ZERO, &mut packets(&[1, 2])).unwrap();
        assert!(readable(fd));
        assert!(!readable(a.wait_fd().unwrap()), "sender side stays quiet");
        let mut got = Vec::new();
        b.recv_batch(Instant::ZERO, &mut got, 1).unwrap();
        assert!(readable(fd), "one packet still waits");
        b.recv_batch(Instant::ZERO, &mut got, 1).unwrap();
        assert!(!readable(fd));
    }

    #[test]
    fn works_across_threads() {
        let (mut a, mut b) = pipe_pair(1500);
        let sender = std::thread::spawn(move || {
            for i in 0..200u32 {
                let mut batch = vec![i.to_be_bytes().to_vec()];
                while !batch.is_empty() {
                    a.send_batch(Instant::ZERO, &mut batch).unwrap();
                }
                if i % 16 == 0 {
                    std::thread::yield_now();
                }
            }
            a
        });
        let mut got = Vec::new();
        let fd = b.wait_fd().unwrap();
        while got.len() < 200 {
            let mut pfd = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd; the timeout turns a lost wake-up
            // into a failure instead of a hang.
            let ready = unsafe { libc::poll(&mut pfd, 1, 5000) };
            assert_eq!(ready, 1, "no wake-up with {} of 200 received", got.len());
            let n = b.recv_batch(Instant::ZERO, &mut got, 64).unwrap();
            assert!(n > 0, "readable but empty");
        }
        let a = sender.join().unwrap();
        assert_eq!(a.stats().tx_dropped, 0);
        let want: Vec<Packet> = (0..200u32).map(|i| i.to_be_bytes().to_vec()).collect();
        assert_eq!(got, want);
    }
}
