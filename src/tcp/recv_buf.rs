//! The receive buffer: a fixed-capacity ring that holds in-order data the
//! application has not read yet and, beyond it, out-of-order data waiting
//! for the gaps before it to fill (RFC 9293 section 3.10.7.4, "seventh").
//!
//! Owns the bytes and the map of which stream offsets are present. Offsets
//! are 64-bit stream positions (0 = the first data byte), so they never wrap;
//! the connection converts sequence numbers. Memory is the ring plus at most
//! [`MAX_GAPS`] range entries, whatever a peer sends.
//!
//! Also owns the rule that sizes the buffer to the flow ([`RecvTuning`]);
//! the connection applies the capacity it returns.

/// Dynamic right-sizing of the receive buffer: bytes the application read
/// since `epoch`, measured once per RTT.
#[derive(Clone, Copy, Debug)]
pub struct RecvTuning {
    copied: usize,
    epoch: crate::time::Instant,
}

impl RecvTuning {
    pub fn new(now: crate::time::Instant) -> RecvTuning {
        RecvTuning {
            copied: 0,
            epoch: now,
        }
    }

    /// The application read `read` bytes at `now`. When it drained more
    /// than half the buffer (`capacity`) within one RTT, the window, not the
    /// reader, limits the flow: returns the capacity to grow to, twice what
    /// was read, up to `max`.
    pub fn on_read(
        &mut self,
        read: usize,
        now: crate::time::Instant,
        srtt: Option<std::time::Duration>,
        capacity: usize,
        max: usize,
    ) -> Option<usize> {
        self.copied += read;
        let rtt = srtt?.max(std::time::Duration::from_millis(1));
        if now.saturating_duration_since(self.epoch) < rtt {
            return None;
        }
        let target = (self.copied * 2 > capacity).then(|| (self.copied * 2).min(max));
        self.copied = 0;
        self.epoch = now;
        target
    }
}

/// Most out-of-order ranges kept at once. A segment that would create one
/// more is dropped (the peer retransmits it); any number of gaps up to this
/// limit can exist anywhere in the window.
pub const MAX_GAPS: usize = 512;

/// Storage starts this small and doubles on demand up to the capacity.
const INITIAL_STORAGE: usize = 4096;

#[derive(Debug)]
pub struct RecvBuffer {
    /// Byte at stream offset `o` lives at `o % storage.len()`.
    storage: Vec<u8>,
    capacity: usize,
    /// Stream offset of the next byte the application reads.
    read_off: u64,
    /// One past the last in-order byte (the offset rcv_nxt maps to).
    contig_end: u64,
    /// Sorted, disjoint, non-adjacent `[start, end)` ranges past `contig_end`.
    ooo: Vec<(u64, u64)>,
    /// The range most recently written out of order (first SACK block,
    /// RFC 2018 section 4).
    latest: Option<u64>,
}

impl RecvBuffer {
    pub fn new(capacity: usize) -> RecvBuffer {
        RecvBuffer {
            storage: Vec::new(),
            capacity: capacity.max(1),
            read_off: 0,
            contig_end: 0,
            ooo: Vec::new(),
            latest: None,
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Raises the capacity (never lowers it: the window never shrinks).
    pub fn grow_capacity(&mut self, capacity: usize) {
        self.capacity = self.capacity.max(capacity);
    }

    /// Grows the storage to hold stream offsets up to `read_off + need`,
    /// moving every byte of the current window to its new position.
    fn reserve(&mut self, need: usize) {
        let old = self.storage.len();
        if need <= old {
            return;
        }
        let new_len = need.max(old * 2).max(INITIAL_STORAGE).min(self.capacity);
        let mut grown = vec![0; new_len];
        for k in 0..old as u64 {
            let o = self.read_off + k;
            grown[(o % new_len as u64) as usize] = self.storage[(o % old as u64) as usize];
        }
        self.storage = grown;
    }

    /// In-order bytes ready for the application.
    pub fn readable(&self) -> usize {
        (self.contig_end - self.read_off) as usize
    }

    /// Room for new data past rcv_nxt: the receive window it can offer.
    pub fn window(&self) -> usize {
        self.capacity() - self.readable()
    }

    pub fn contig_end(&self) -> u64 {
        self.contig_end
    }

    pub fn has_gaps(&self) -> bool {
        !self.ooo.is_empty()
    }

    /// Out-of-order ranges, the most recently written first, then the rest
    /// from the highest down.
    pub fn sack_ranges(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        let latest = self
            .latest
            .and_then(|s| self.ooo.iter().copied().find(|r| r.0 <= s && s < r.1));
        latest.into_iter().chain(
            self.ooo
                .iter()
                .rev()
                .copied()
                .filter(move |r| Some(*r) != latest),
        )
    }

    /// Stores `data` at stream offset `off`. Bytes before `contig_end` or
    /// past the ring's capacity are ignored. Returns how far `contig_end`
    /// advanced.
    pub fn write(&mut self, off: u64, data: &[u8]) -> usize {
        let limit = self.read_off + self.capacity() as u64;
        let mut start = off;
        let mut end = off.saturating_add(data.len() as u64).min(limit);
        if start < self.contig_end {
            start = self.contig_end;
        }
        if start >= end {
            return 0;
        }
        if start > self.contig_end && !self.insert_range(start, end) {
            return 0;
        }
        self.reserve((end - self.read_off) as usize);
        let cap = self.storage.len() as u64;
        let mut src = &data[(start - off) as usize..(end - off) as usize];
        while !src.is_empty() {
            let pos = (start % cap) as usize;
            let n = src.len().min(self.storage.len() - pos);
            self.storage[pos..pos + n].copy_from_slice(&src[..n]);
            src = &src[n..];
            start += n as u64;
        }
        let before = self.contig_end;
        if off <= self.contig_end {
            // In order: absorb every queued range it now reaches.
            while let Some(&(s, e)) = self.ooo.first() {
                if s > end {
                    break;
                }
                end = end.max(e);
                self.ooo.remove(0);
            }
            self.contig_end = end;
        }
        (self.contig_end - before) as usize
    }

    /// Records `[start, end)` as present; false if that needs one range too
    /// many.
    fn insert_range(&mut self, mut start: u64, mut end: u64) -> bool {
        let first = self.ooo.partition_point(|r| r.1 < start);
        let mut last = first;
        while last < self.ooo.len() && self.ooo[last].0 <= end {
            start = start.min(self.ooo[last].0);
            end = end.max(self.ooo[last].1);
            last += 1;
        }
        if first == last && self.ooo.len() >= MAX_GAPS {
            return false;
        }
        self.ooo.splice(first..last, [(start, end)]);
        self.latest = Some(start);
        true
    }

    /// Copies readable bytes into `buf` without consuming them.
    pub fn peek(&self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.readable());
        let cap = self.storage.len() as u64;
        let mut done = 0;
        while done < n {
            let pos = ((self.read_off + done as u64) % cap) as usize;
            let k = (n - done).min(self.storage.len() - pos);
            buf[done..done + k].copy_from_slice(&self.storage[pos..pos + k]);
            done += k;
        }
        n
    }

    /// Copies readable bytes into `buf` and consumes them.
    pub fn read(&mut self, buf: &mut [u8]) -> usize {
        let n = self.peek(buf);
        self.read_off += n as u64;
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(b: &mut RecvBuffer) -> Vec<u8> {
        let mut out = vec![0; b.readable()];
        b.read(&mut out);
        out
    }

    #[test]
    fn out_of_order_data_is_held_until_the_gap_fills() {
        let mut b = RecvBuffer::new(16);
        assert_eq!(b.write(4, b"efgh"), 0);
        assert_eq!(b.write(10, b"kl"), 0);
        assert_eq!(b.readable(), 0);
        assert_eq!(b.sack_ranges().collect::<Vec<_>>(), vec![(10, 12), (4, 8)]);
        assert_eq!(b.write(0, b"abcd"), 8);
        assert_eq!(read_all(&mut b), b"abcdefgh");
        assert_eq!(b.write(8, b"ij"), 4);
        assert_eq!(read_all(&mut b), b"ijkl");
        assert!(!b.has_gaps());
    }

    #[test]
    fn overlapping_and_duplicate_segments_merge() {
        let mut b = RecvBuffer::new(32);
        b.write(5, b"fghij");
        b.write(3, b"defg");
        b.write(8, b"ijklm");
        assert_eq!(b.sack_ranges().collect::<Vec<_>>(), vec![(3, 13)]);
        assert_eq!(b.write(0, b"abcdef"), 13);
        assert_eq!(b.write(0, b"abc"), 0);
        assert_eq!(read_all(&mut b), b"abcdefghijklm");
    }

    #[test]
    fn data_past_capacity_is_cut_and_wraps_the_ring() {
        let mut b = RecvBuffer::new(8);
        assert_eq!(b.write(0, b"0123456789"), 8);
        assert_eq!(b.window(), 0);
        let mut out = [0; 5];
        assert_eq!(b.read(&mut out), 5);
        assert_eq!(b.write(8, b"abcdefgh"), 5);
        assert_eq!(read_all(&mut b), b"567abcde");
    }

    #[test]
    fn storage_grows_lazily_and_keeps_queued_and_out_of_order_bytes() {
        let mut b = RecvBuffer::new(1 << 20);
        assert_eq!(b.storage.len(), 0);
        b.write(0, &[1; 3000]);
        let mut sink = [0; 2000];
        b.read(&mut sink);
        assert_eq!(b.storage.len(), INITIAL_STORAGE);
        // Out of order data far ahead forces growth past the wrap point.
        let far: Vec<u8> = (0..500u32).map(|i| i as u8).collect();
        assert_eq!(b.write(9000, &far), 0);
        assert!(b.storage.len() >= 7500);
        let mid: Vec<u8> = (0..6000u32).map(|i| (i * 3) as u8).collect();
        assert_eq!(b.write(3000, &mid), 6500);
        let mut out = vec![0; b.readable()];
        b.read(&mut out);
        assert_eq!(&out[..1000], &[1; 1000][..]);
        assert_eq!(&out[1000..7000], &mid[..]);
        assert_eq!(&out[7000..], &far[..]);
    }

    #[test]
    fn gap_count_is_bounded() {
        let mut b = RecvBuffer::new(4 * MAX_GAPS + 16);
        for i in 0..MAX_GAPS as u64 + 10 {
            b.write(2 + 2 * i, b"x");
        }
        assert_eq!(b.ooo.len(), MAX_GAPS);
        // Filling an existing range's neighbourhood still works at the limit.
        b.write(3, b"y");
        assert_eq!(b.ooo.len(), MAX_GAPS - 1);
    }
}
