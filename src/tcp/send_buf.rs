//! The send buffer: a fixed-capacity byte ring holding data the application
//! wrote and the peer has not yet acknowledged.
//!
//! Owns the bytes only. Offset 0 is the oldest unacknowledged data byte; the
//! connection maps sequence numbers to offsets. Must not know about
//! segments, windows or timers.

/// A byte ring of fixed capacity.
#[derive(Debug)]
pub struct SendBuffer {
    storage: Box<[u8]>,
    head: usize,
    len: usize,
}

impl SendBuffer {
    pub fn new(capacity: usize) -> SendBuffer {
        SendBuffer {
            storage: vec![0; capacity.max(1)].into_boxed_slice(),
            head: 0,
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn capacity(&self) -> usize {
        self.storage.len()
    }

    pub fn free(&self) -> usize {
        self.capacity() - self.len
    }

    /// Appends as much of `data` as fits; returns how much that was.
    pub fn write(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.free());
        let cap = self.capacity();
        let tail = (self.head + self.len) % cap;
        let first = n.min(cap - tail);
        self.storage[tail..tail + first].copy_from_slice(&data[..first]);
        self.storage[..n - first].copy_from_slice(&data[first..n]);
        self.len += n;
        n
    }

    /// Drops `n` bytes from the front (they were acknowledged).
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.len);
        self.head = (self.head + n) % self.capacity();
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
        let cap = self.capacity();
        let start = (self.head + offset) % cap;
        let n = max.min(self.len - offset).min(cap - start);
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
}
