//! Packet capture: a classic pcap writer and a tap that records a link.
//!
//! Owns the pcap file format (libpcap 2.4, microsecond timestamps; records
//! are bare IPv4 or IPv6 datagrams, LINKTYPE_RAW, or Ethernet frames on a
//! TAP device, LINKTYPE_ETHERNET) and [`PcapTap`],
//! which wraps any [`Link`] and records every packet it carries, in both
//! directions. Files open in tcpdump and Wireshark.
//!
//! Must not touch: the packets themselves. The tap records and passes on;
//! a capture that fails to write never disturbs the link.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{Link, Packet};
use crate::time::Instant;

/// LINKTYPE_RAW: the record starts with the IP header, version in the first
/// nibble.
pub const LINKTYPE_RAW: u32 = 101;

/// LINKTYPE_ETHERNET: the record is an Ethernet II frame (a TAP device's).
pub const LINKTYPE_ETHERNET: u32 = 1;

/// Bytes of each packet kept. Larger than any datagram without jumbograms.
pub const SNAPLEN: u32 = 65_535;

const MAGIC_MICROS: u32 = 0xa1b2_c3d4;

/// Writes classic pcap records to `W`.
///
/// ```
/// use std::time::Duration;
/// use ustack::device::PcapWriter;
///
/// let mut w = PcapWriter::new(Vec::new())?;
/// w.write_packet(Duration::from_micros(1_500_002), &[0x45; 20])?;
/// let file = w.into_inner();
/// assert_eq!(file.len(), 24 + 16 + 20); // file header, record header, packet
/// assert_eq!(file[..4], [0xd4, 0xc3, 0xb2, 0xa1]); // microsecond magic, little-endian
/// assert_eq!(file[24..28], 1u32.to_le_bytes()); // seconds
/// assert_eq!(file[28..32], 500_002u32.to_le_bytes()); // microseconds
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct PcapWriter<W: Write> {
    out: W,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the file header (little-endian, as the magic number tells
    /// readers) and returns a writer ready for records.
    pub fn new(out: W) -> io::Result<PcapWriter<W>> {
        PcapWriter::with_linktype(out, LINKTYPE_RAW)
    }

    /// [`PcapWriter::new`] for records of another link type
    /// ([`LINKTYPE_ETHERNET`] for frames).
    pub fn with_linktype(mut out: W, linktype: u32) -> io::Result<PcapWriter<W>> {
        let mut header = [0u8; 24];
        header[0..4].copy_from_slice(&MAGIC_MICROS.to_le_bytes());
        header[4..6].copy_from_slice(&2u16.to_le_bytes());
        header[6..8].copy_from_slice(&4u16.to_le_bytes());
        // thiszone and sigfigs (8..16) stay zero: timestamps are UTC.
        header[16..20].copy_from_slice(&SNAPLEN.to_le_bytes());
        header[20..24].copy_from_slice(&linktype.to_le_bytes());
        out.write_all(&header)?;
        Ok(PcapWriter { out })
    }

    /// Writes one record stamped `since_epoch` after 1970-01-01 UTC.
    pub fn write_packet(&mut self, since_epoch: Duration, packet: &[u8]) -> io::Result<()> {
        let mut record = Vec::with_capacity(16 + packet.len());
        encode_record(&mut record, since_epoch, packet);
        self.out.write_all(&record)
    }

    /// Flushes buffered records to the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// The underlying writer.
    pub fn into_inner(self) -> W {
        self.out
    }

    fn write_raw(&mut self, records: &[u8]) -> io::Result<()> {
        self.out.write_all(records)
    }
}

fn encode_record(out: &mut Vec<u8>, since_epoch: Duration, packet: &[u8]) {
    // Classic pcap stores 32-bit seconds: it runs out in 2106.
    let secs = u32::try_from(since_epoch.as_secs()).unwrap_or(u32::MAX);
    let kept = packet.len().min(SNAPLEN as usize);
    out.extend_from_slice(&secs.to_le_bytes());
    out.extend_from_slice(&since_epoch.subsec_micros().to_le_bytes());
    out.extend_from_slice(&(kept as u32).to_le_bytes());
    out.extend_from_slice(
        &u32::try_from(packet.len())
            .unwrap_or(u32::MAX)
            .to_le_bytes(),
    );
    out.extend_from_slice(&packet[..kept]);
}

/// Wraps a link and records every packet it receives and every packet it
/// takes for sending, to a pcap file.
///
/// Timestamps are the wall clock at the tap's creation plus the offset of
/// each call's `now` from the `now` given at creation, so a simulation with a
/// virtual clock gets a capture whose spacing matches simulated time.
///
/// A write error stops recording (reported once by [`PcapTap::error`] and a
/// log line) but never stops the link. Records are flushed after every
/// call that added some, so a crash loses at most the current batch.
pub struct PcapTap<L: Link, W: Write = BufWriter<File>> {
    inner: L,
    writer: Option<PcapWriter<W>>,
    wall_base: Duration,
    now_base: Instant,
    records: Vec<u8>,
    /// End offset in `records` of each packet of the batch being sent.
    ends: Vec<usize>,
    recorded: u64,
    error: Option<io::Error>,
}

impl<L: Link> PcapTap<L, BufWriter<File>> {
    /// Creates (or truncates) the pcap file at `path` and wraps `inner`.
    /// `now` is the link's clock at this moment.
    pub fn create(inner: L, path: &Path, now: Instant) -> io::Result<Self> {
        PcapTap::create_linktype(inner, path, now, LINKTYPE_RAW)
    }

    /// [`PcapTap::create`] for a link of another type: a TAP device's
    /// frames are [`LINKTYPE_ETHERNET`].
    pub fn create_linktype(inner: L, path: &Path, now: Instant, linktype: u32) -> io::Result<Self> {
        let file = File::create(path).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot create pcap file {}: {e}", path.display()),
            )
        })?;
        let writer = PcapWriter::with_linktype(BufWriter::new(file), linktype)?;
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        Ok(PcapTap::with_writer(inner, writer, wall, now))
    }
}

impl<L: Link, W: Write> PcapTap<L, W> {
    /// Wraps `inner`, recording to `writer`; `now` on the link's clock
    /// corresponds to `wall` after the Unix epoch.
    pub fn with_writer(inner: L, writer: PcapWriter<W>, wall: Duration, now: Instant) -> Self {
        PcapTap {
            inner,
            writer: Some(writer),
            wall_base: wall,
            now_base: now,
            records: Vec::new(),
            ends: Vec::new(),
            recorded: 0,
            error: None,
        }
    }

    /// Packets recorded so far.
    pub fn recorded(&self) -> u64 {
        self.recorded
    }

    /// The write error that stopped recording, if one did.
    pub fn error(&self) -> Option<&io::Error> {
        self.error.as_ref()
    }

    /// The wrapped link.
    pub fn inner(&self) -> &L {
        &self.inner
    }

    /// The wrapped link, mutably.
    pub fn inner_mut(&mut self) -> &mut L {
        &mut self.inner
    }

    /// Flushes and returns the wrapped link and the writer (`None` if a
    /// write error stopped recording).
    pub fn into_parts(mut self) -> (L, Option<W>) {
        if let Some(w) = self.writer.as_mut() {
            let _ = w.flush();
        }
        (self.inner, self.writer.map(PcapWriter::into_inner))
    }

    fn stamp(&self, now: Instant) -> Duration {
        self.wall_base + now.saturating_duration_since(self.now_base)
    }

    /// Writes `records[..len]`, holding `count` packets.
    fn commit(&mut self, len: usize, count: usize) {
        if count == 0 {
            return;
        }
        let Some(writer) = self.writer.as_mut() else {
            return;
        };
        let result = writer
            .write_raw(&self.records[..len])
            .and_then(|()| writer.flush());
        match result {
            Ok(()) => self.recorded += count as u64,
            Err(e) => {
                log::warn!("pcap: recording stopped: {e}");
                self.error = Some(e);
                self.writer = None;
            }
        }
    }
}

impl<L: Link, W: Write + Send> Link for PcapTap<L, W> {
    fn recv_batch(
        &mut self,
        now: Instant,
        batch: &mut Vec<Packet>,
        max: usize,
    ) -> io::Result<usize> {
        let start = batch.len();
        let n = self.inner.recv_batch(now, batch, max)?;
        if self.writer.is_some() && n > 0 {
            let stamp = self.stamp(now);
            self.records.clear();
            for packet in &batch[start..] {
                encode_record(&mut self.records, stamp, packet);
            }
            self.commit(self.records.len(), n);
        }
        Ok(n)
    }

    fn send_batch(&mut self, now: Instant, batch: &mut Vec<Packet>) -> io::Result<usize> {
        if self.writer.is_none() {
            return self.inner.send_batch(now, batch);
        }
        // The inner link removes what it takes, so encode first and write
        // only the prefix it took: a packet left for a retry is recorded
        // once, when it finally goes.
        let stamp = self.stamp(now);
        self.records.clear();
        self.ends.clear();
        for packet in batch.iter() {
            encode_record(&mut self.records, stamp, packet);
            self.ends.push(self.records.len());
        }
        let n = self.inner.send_batch(now, batch)?;
        let len = if n == 0 { 0 } else { self.ends[n - 1] };
        self.commit(len, n);
        Ok(n)
    }

    forward_link!(inner: mtu, wait_fd, poll_at, recycle, take_spent, poll_event, close);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::pipe::pipe_pair;
    use std::os::fd::RawFd;
    use std::process::Command;

    /// An IPv4/UDP datagram 10.77.0.2:port -> 10.77.0.1:9 with a correct
    /// header checksum (the UDP checksum is left zero, which IPv4 allows).
    fn udp4(port: u16, payload: &[u8]) -> Packet {
        let total = 20 + 8 + payload.len();
        let mut p = vec![0u8; total];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        p[8] = 64;
        p[9] = 17;
        p[12..16].copy_from_slice(&[10, 77, 0, 2]);
        p[16..20].copy_from_slice(&[10, 77, 0, 1]);
        let mut sum: u32 = p[..20]
            .chunks(2)
            .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
            .sum();
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        p[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
        p[20..22].copy_from_slice(&port.to_be_bytes());
        p[22..24].copy_from_slice(&9u16.to_be_bytes());
        p[24..26].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        p[28..].copy_from_slice(payload);
        p
    }

    fn le32(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn writer_emits_header_and_records_in_classic_pcap_layout() {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        w.write_packet(Duration::new(1_700_000_000, 123_456_789), &[0x45, 1, 2])
            .unwrap();
        let b = w.into_inner();
        assert_eq!(le32(&b, 0), 0xa1b2_c3d4);
        assert_eq!(&b[4..8], &[2, 0, 4, 0]);
        assert_eq!(le32(&b, 16), SNAPLEN);
        assert_eq!(le32(&b, 20), 101);
        assert_eq!(le32(&b, 24), 1_700_000_000);
        assert_eq!(le32(&b, 28), 123_456, "microseconds, truncated");
        assert_eq!(le32(&b, 32), 3);
        assert_eq!(le32(&b, 36), 3);
        assert_eq!(&b[40..], &[0x45, 1, 2]);
    }

    #[test]
    fn tap_records_both_directions_with_offset_timestamps() {
        let (a, mut b) = pipe_pair(1500);
        let writer = PcapWriter::new(Vec::new()).unwrap();
        let wall = Duration::from_secs(1_000_000);
        let mut tap = PcapTap::with_writer(a, writer, wall, Instant::from_millis(500));

        let mut out = vec![udp4(1, b"one"), udp4(2, b"two")];
        assert_eq!(
            tap.send_batch(Instant::from_millis(700), &mut out).unwrap(),
            2
        );
        b.send_batch(Instant::ZERO, &mut vec![udp4(3, b"three")])
            .unwrap();
        let mut got = vec![udp4(99, b"already in the batch")];
        assert_eq!(
            tap.recv_batch(Instant::from_millis(2500), &mut got, 8)
                .unwrap(),
            1
        );
        assert_eq!(tap.recorded(), 3);

        let (_, bytes) = tap.into_parts();
        let bytes = bytes.unwrap();
        let mut at = 24;
        let mut seen = Vec::new();
        while at < bytes.len() {
            let (secs, micros, len) =
                (le32(&bytes, at), le32(&bytes, at + 4), le32(&bytes, at + 8));
            let packet = &bytes[at + 16..at + 16 + len as usize];
            seen.push((secs, micros, u16::from_be_bytes([packet[20], packet[21]])));
            at += 16 + len as usize;
        }
        assert_eq!(
            seen,
            [
                (1_000_000, 200_000, 1),
                (1_000_000, 200_000, 2),
                (1_000_002, 0, 3)
            ]
        );
    }

    /// A link that takes at most one packet per call, like a full device.
    struct OneAtATime(Vec<Packet>);

    impl Link for OneAtATime {
        fn recv_batch(&mut self, _: Instant, _: &mut Vec<Packet>, _: usize) -> io::Result<usize> {
            Ok(0)
        }
        fn send_batch(&mut self, _: Instant, batch: &mut Vec<Packet>) -> io::Result<usize> {
            if batch.is_empty() {
                return Ok(0);
            }
            self.0.push(batch.remove(0));
            Ok(1)
        }
        fn mtu(&self) -> usize {
            1500
        }
        fn wait_fd(&self) -> Option<RawFd> {
            None
        }
    }

    #[test]
    fn tap_records_a_packet_left_for_retry_only_once_it_goes() {
        let writer = PcapWriter::new(Vec::new()).unwrap();
        let mut tap = PcapTap::with_writer(
            OneAtATime(Vec::new()),
            writer,
            Duration::ZERO,
            Instant::ZERO,
        );
        let mut out = vec![udp4(1, b"a"), udp4(2, b"b"), udp4(3, b"c")];
        let mut calls = 0;
        while !out.is_empty() {
            tap.send_batch(Instant::ZERO, &mut out).unwrap();
            calls += 1;
        }
        assert_eq!(calls, 3);
        assert_eq!(tap.recorded(), 3);
        let (_, bytes) = tap.into_parts();
        assert_eq!(bytes.unwrap().len(), 24 + 3 * (16 + 29));
    }

    struct FailingWriter;

    impl Write for FailingWriter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if buf.len() == 24 {
                Ok(24)
            } else {
                Err(io::Error::other("disk full"))
            }
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn write_error_stops_recording_but_not_the_link() {
        let (a, b) = pipe_pair(1500);
        let writer = PcapWriter::new(FailingWriter).unwrap();
        let mut tap = PcapTap::with_writer(a, writer, Duration::ZERO, Instant::ZERO);
        for _ in 0..2 {
            assert_eq!(
                tap.send_batch(Instant::ZERO, &mut vec![udp4(1, b"x")])
                    .unwrap(),
                1
            );
        }
        assert_eq!(tap.error().unwrap().to_string(), "disk full");
        assert_eq!(tap.recorded(), 0);
        assert_eq!(b.pending(), 2);
    }

    #[test]
    fn tcpdump_reads_the_file_and_sees_every_packet() {
        let Ok(version) = Command::new("tcpdump").arg("--version").output() else {
            eprintln!("SKIPPED: tcpdump is not installed, cannot cross-check the pcap file");
            return;
        };
        assert!(version.status.success());
        let path =
            std::env::temp_dir().join(format!("ustack-pcap-test-{}.pcap", std::process::id()));
        let (a, mut b) = pipe_pair(1500);
        let mut tap = PcapTap::create(a, &path, Instant::ZERO).unwrap();
        let mut out: Vec<Packet> = (0..5).map(|i| udp4(1000 + i, b"hello")).collect();
        tap.send_batch(Instant::from_millis(1), &mut out).unwrap();
        b.send_batch(
            Instant::ZERO,
            &mut (0..3).map(|i| udp4(2000 + i, b"back")).collect(),
        )
        .unwrap();
        tap.recv_batch(Instant::from_millis(2), &mut Vec::new(), 64)
            .unwrap();
        drop(tap);

        let run = Command::new("tcpdump")
            .arg("-nn")
            .arg("-r")
            .arg(&path)
            .output()
            .unwrap();
        let _ = std::fs::remove_file(&path);
        let stdout = String::from_utf8_lossy(&run.stdout);
        assert!(
            run.status.success(),
            "tcpdump failed: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(lines.len(), 8, "{stdout}");
        assert!(
            lines[0].contains("10.77.0.2.1000 > 10.77.0.1.9: UDP, length 5"),
            "{stdout}"
        );
        assert!(
            lines[7].contains("10.77.0.2.2002 > 10.77.0.1.9: UDP, length 4"),
            "{stdout}"
        );
    }
}
