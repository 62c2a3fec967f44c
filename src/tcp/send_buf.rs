//! The send buffer: a fixed-capacity byte ring holding data the application
//! wrote and the peer has not yet acknowledged.
//!
//! Owns the bytes and where each write ended (the points a segment
//! carries PSH at); storage grows on demand up to the capacity. Offset 0
//! is the oldest unacknowledged data byte; the connection maps sequence
//! numbers to offsets. Must not know about segments, windows or timers.

use std::collections::VecDeque;

/// Storage starts this small and doubles on demand, so an idle connection
/// costs little however large its configured buffer.
const INITIAL_STORAGE: usize = 4096;

/// At most this many write ends are remembered; past it the newest end
/// replaces the one before it, as if those writes had been one (Linux
/// likewise appends small writes to one unsent skb, whose end alone
/// carries PSH).
const MAX_WRITE_ENDS: usize = 1024;

/// The end of one write: its stream position (bytes consumed since the
/// start), and whether it ends a record (MSG_EOR), which no segment
/// crosses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct WriteEnd {
    pos: u64,
    eor: bool,
}

/// A byte ring of fixed capacity whose storage grows lazily.
#[derive(Debug)]
pub struct SendBuffer {
    storage: Vec<u8>,
    head: usize,
    len: usize,
    capacity: usize,
    /// Stream position (bytes consumed since the start) of offset 0.
    front: u64,
    /// Where writes ended, oldest first, all above `front`.
    write_ends: VecDeque<WriteEnd>,
}

impl SendBuffer {
    pub fn new(capacity: usize) -> SendBuffer {
        SendBuffer {
            storage: Vec::new(),
            head: 0,
            len: 0,
            capacity: capacity.max(1),
            front: 0,
            write_ends: VecDeque::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn free(&self) -> usize {
        self.capacity - self.len
    }

    /// Raises the capacity (never lowers it).
    pub fn grow_capacity(&mut self, capacity: usize) {
        self.capacity = self.capacity.max(capacity);
    }

    /// Makes the storage hold at least `need` bytes, unwrapping the ring
    /// into the new storage.
    fn reserve(&mut self, need: usize) {
        if need <= self.storage.len() {
            return;
        }
        let new_len = need
            .max(self.storage.len() * 2)
            .max(INITIAL_STORAGE)
            .min(self.capacity);
        let mut grown = vec![0; new_len];
        let first = self.slice(0, self.len).len();
        grown[..first].copy_from_slice(self.slice(0, first));
        let rest = self.len - first;
        grown[first..self.len].copy_from_slice(self.slice(first, rest));
        self.storage = grown;
        self.head = 0;
    }

    /// Appends as much of `data` as fits; returns how much that was.
    pub fn write(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.free());
        if n == 0 {
            return 0;
        }
        self.reserve(self.len + n);
        let ring = self.storage.len();
        let tail = (self.head + self.len) % ring;
        let first = n.min(ring - tail);
        self.storage[tail..tail + first].copy_from_slice(&data[..first]);
        self.storage[..n - first].copy_from_slice(&data[first..n]);
        self.len += n;
        n
    }

    /// Marks the end of the buffered data as the end of a write: the
    /// segment that ends there carries PSH (RFC 9293 section 3.9.1.2;
    /// Linux's tcp_push marks the tail of every write not sent with
    /// MSG_MORE). With `eor` it also ends a record: no segment takes
    /// bytes from both sides of it (Linux's MSG_EOR). The bytes below
    /// offset `sent` have been sent: an earlier write's end above it
    /// that ends no record gives way to this one, as Linux appends a
    /// write to the unsent tail skb, whose end alone carries PSH.
    /// Nothing buffered: no-op.
    pub fn mark_write_end(&mut self, eor: bool, sent: usize) {
        let pos = self.front + self.len as u64;
        if self.len == 0 {
            return;
        }
        let sent = self.front + sent as u64;
        if let Some(last) = self.write_ends.back_mut()
            && (last.pos == pos || (last.pos > sent && !last.eor))
        {
            last.pos = pos;
            last.eor |= eor;
            return;
        }
        if self.write_ends.len() >= MAX_WRITE_ENDS {
            self.write_ends.pop_back();
        }
        self.write_ends.push_back(WriteEnd { pos, eor });
    }

    /// Whether `offset` bytes from the front is where a write ended.
    pub fn is_write_end(&self, offset: usize) -> bool {
        let pos = self.front + offset as u64;
        self.write_ends
            .binary_search_by_key(&pos, |e| e.pos)
            .is_ok()
    }

    /// The offset of the first record end (MSG_EOR) after `offset`, if
    /// one lies before the end of the buffered data.
    pub fn record_end_after(&self, offset: usize) -> Option<usize> {
        let pos = self.front + offset as u64;
        let end = self.front + self.len as u64;
        let from = self.write_ends.partition_point(|e| e.pos <= pos);
        self.write_ends
            .iter()
            .skip(from)
            .take_while(|e| e.pos < end)
            .find(|e| e.eor)
            .map(|e| (e.pos - self.front) as usize)
    }

    /// Drops `n` bytes from the front (they were acknowledged).
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.len);
        if n == 0 {
            return;
        }
        self.front += n as u64;
        while self.write_ends.front().is_some_and(|e| e.pos <= self.front) {
            self.write_ends.pop_front();
        }
        self.head = (self.head + n) % self.storage.len();
        self.len -= n;
        if self.len == 0 {
            self.head = 0;
        }
    }

    /// The longest contiguous slice starting `offset` bytes from the front,
    /// at most `max` long. A slice never crosses the ring's wrap point, so a
    /// segment built from it may be shorter than `max`: that keeps the
    /// transmit path zero-copy.
    pub fn slice(&self, offset: usize, max: usize) -> &[u8] {
        if offset >= self.len {
            return &[];
        }
        let ring = self.storage.len();
        let start = (self.head + offset) % ring;
        let n = max.min(self.len - offset).min(ring - start);
        &self.storage[start..start + n]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_is_limited_by_capacity() {
        let mut b = SendBuffer::new(8);
        assert_eq!(b.write(b"0123456789"), 8);
        assert_eq!(b.write(b"x"), 0);
        assert_eq!(b.slice(0, 100), b"01234567");
    }

    #[test]
    fn slices_stop_at_the_wrap_point_and_survive_consume() {
        let mut b = SendBuffer::new(8);
        b.write(b"abcdef");
        b.consume(4);
        assert_eq!(b.write(b"ghijkl"), 6);
        assert_eq!(b.len(), 8);
        assert_eq!(b.slice(0, 100), b"efgh");
        assert_eq!(b.slice(4, 100), b"ijkl");
        assert_eq!(b.slice(1, 2), b"fg");
        assert_eq!(b.slice(8, 1), b"");
        b.consume(100);
        assert_eq!(b.len(), 0);
    }

    #[test]
    fn write_ends_mark_psh_points_and_go_with_the_acked_bytes() {
        let mut b = SendBuffer::new(100);
        b.write(b"abc");
        b.mark_write_end(false, 3);
        b.write(b"de");
        assert!(b.is_write_end(3));
        assert!(!b.is_write_end(5), "that write has not ended (MSG_MORE)");
        b.mark_write_end(false, 5);
        b.mark_write_end(false, 5);
        assert!(b.is_write_end(5));
        b.consume(3);
        assert!(!b.is_write_end(0), "the acked end is gone");
        assert!(b.is_write_end(2), "offsets follow the front");
        assert_eq!(b.write_ends.len(), 1);
    }

    #[test]
    fn an_unsent_write_end_merges_into_the_next_write_unless_it_ends_a_record() {
        let mut b = SendBuffer::new(100);
        b.write(b"abc");
        b.mark_write_end(false, 0);
        b.write(b"de");
        b.mark_write_end(false, 0);
        assert!(!b.is_write_end(3), "unsent: one segment's worth now");
        assert!(b.is_write_end(5));
        b.write(b"fg");
        b.mark_write_end(true, 0);
        b.write(b"h");
        b.mark_write_end(false, 0);
        assert!(b.is_write_end(7), "a record end stays");
        assert!(b.is_write_end(8));
    }

    #[test]
    fn record_ends_bound_segments_only_before_the_tail() {
        let mut b = SendBuffer::new(100);
        b.write(b"abcd");
        b.mark_write_end(false, 4);
        b.write(b"ef");
        b.mark_write_end(true, 0);
        b.write(b"gh");
        b.mark_write_end(true, 0);
        assert_eq!(b.record_end_after(0), Some(6), "a plain end is no record");
        assert_eq!(b.record_end_after(6), None, "the last one is the tail");
        b.write(b"i");
        assert_eq!(b.record_end_after(6), Some(8));
        b.consume(5);
        assert_eq!(b.record_end_after(0), Some(1));
    }

    #[test]
    fn write_ends_are_bounded_and_the_newest_survives() {
        let mut b = SendBuffer::new(4 * MAX_WRITE_ENDS);
        for _ in 0..2 * MAX_WRITE_ENDS {
            b.write(b"x");
            b.mark_write_end(false, b.len());
        }
        assert_eq!(b.write_ends.len(), MAX_WRITE_ENDS);
        assert!(b.is_write_end(2 * MAX_WRITE_ENDS));
        assert!(b.is_write_end(MAX_WRITE_ENDS - 1));
        assert!(!b.is_write_end(MAX_WRITE_ENDS), "coalesced into the newest");
    }

    #[test]
    fn storage_grows_lazily_and_keeps_wrapped_data_in_order() {
        let mut b = SendBuffer::new(1 << 20);
        assert_eq!(b.storage.len(), 0);
        b.write(&[1; 4000]);
        assert_eq!(b.storage.len(), INITIAL_STORAGE);
        b.consume(3000);
        let tail: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
        b.write(&tail);
        assert_eq!(b.storage.len(), INITIAL_STORAGE, "wrapped, not grown");
        b.write(&[9; 100]);
        assert_eq!(b.storage.len(), 2 * INITIAL_STORAGE);
        let mut all = Vec::new();
        while all.len() < b.len() {
            all.extend_from_slice(b.slice(all.len(), usize::MAX));
        }
        assert_eq!(&all[..1000], &[1; 1000][..]);
        assert_eq!(&all[1000..4000], &tail[..]);
        assert_eq!(&all[4000..], &[9; 100][..]);
    }
}
