//! The send buffer: a fixed-capacity byte ring holding data the application
//! wrote and the peer has not yet acknowledged.
//!
//! Owns the bytes only; storage grows on demand up to the capacity. Offset 0 is the oldest unacknowledged data byte; the
//! connection maps sequence numbers to offsets. Must not know about
//! segments, windows or timers.

/// Storage starts this small and doubles on demand, so an idle connection
/// costs little however large its configured buffer.
const INITIAL_STORAGE: usize = 4096;

/// A byte ring of fixed capacity whose storage grows lazily.
#[derive(Debug)]
pub struct SendBuffer {
    storage: Vec<u8>,
    head: usize,
    len: usize,
    capacity: usize,
}

impl SendBuffer {
    pub fn new(capacity: usize) -> SendBuffer {
        SendBuffer {
            storage: Vec::new(),
            head: 0,
            len: 0,
            capacity: capacity.max(1),
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

    /// Drops `n` bytes from the front (they were acknowledged).
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.len);
        if n == 0 {
            return;
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
