//! Seeded, replayable link impairment: loss, duplication, reordering,
//! corruption, delay and a bandwidth limit.
//!
//! Owns [`FaultConfig`] (parsed from `USTACK_FAULT`), the sans-IO
//! per-direction engine [`Impairment`], and [`FaultLink`], which wraps any
//! [`Link`] and impairs both directions.
//!
//! Nothing here reads a clock: every decision depends only on the seed and on
//! the sequence of packets and `now` values it is given, so the same seed and
//! the same calls give exactly the same output. That is what makes a failing
//! simulation seed replayable. Simulations that move packets between two
//! stacks without any `Link` can use [`Impairment`] directly.
//!
//! Must not touch: packet headers. Corruption flips bits blindly, as a bad
//! wire would; it never fixes up a checksum.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::fmt;
use std::io;
use std::time::Duration;

use super::{Link, Packet};
use crate::rand::Rng;
use crate::time::Instant;

/// How a link is impaired. The default impairs nothing.
///
/// Each probability is applied per packet and independently: a packet may be
/// both corrupted and duplicated. Delay and the rate limit apply to every
/// packet; a reordered packet is held `reorder_gap` longer than the others
/// so that the packets after it overtake it.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultConfig {
    /// Probability that a packet is lost.
    pub loss: f64,
    /// Probability that a packet is delivered twice.
    pub dup: f64,
    /// Probability that a packet is held back `reorder_gap` extra.
    pub reorder: f64,
    /// Probability that one random bit of a packet is flipped.
    pub corrupt: f64,
    /// Probability that an ECN-capable packet (ECT(0) or ECT(1)) is marked
    /// CE, congestion experienced, as an AQM router would instead of
    /// dropping it (RFC 3168 section 5); other packets are left alone.
    pub ce: f64,
    /// Added to every packet's delivery time.
    pub delay: Duration,
    /// How much longer than the others a reordered packet is held.
    pub reorder_gap: Duration,
    /// Bandwidth in bytes per second: packets are serialised one after the
    /// other at this rate. `None` is unlimited.
    pub rate: Option<u64>,
    /// Packets held (delayed or queued behind the rate limit) per direction;
    /// more are dropped, as a router queue would.
    pub limit: usize,
    /// Seeds every random decision.
    pub seed: u64,
}

impl Default for FaultConfig {
    fn default() -> FaultConfig {
        FaultConfig {
            loss: 0.0,
            dup: 0.0,
            reorder: 0.0,
            corrupt: 0.0,
            ce: 0.0,
            delay: Duration::ZERO,
            reorder_gap: Duration::from_millis(1),
            rate: None,
            limit: 10_000,
            seed: 0,
        }
    }
}

const KNOWN_ITEMS: &str = "loss, dup, reorder, corrupt, ce, delay, reorder_gap, rate, limit, seed";
const LONGEST_DELAY: Duration = Duration::from_secs(3600);

fn bad_spec(message: String) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("USTACK_FAULT: {message}"),
    )
}

fn bad_value(key: &str, value: &str, expected: &str) -> io::Error {
    bad_spec(format!(
        "bad value '{value}' for {key}: expected {expected}"
    ))
}

fn parse_probability(key: &str, value: &str) -> io::Result<f64> {
    let expected = "a probability between 0 and 1 (like 0.05 or 5%)";
    let p = match value.strip_suffix('%') {
        Some(percent) => percent.trim().parse::<f64>().map(|p| p / 100.0),
        None => value.parse::<f64>(),
    }
    .map_err(|_| bad_value(key, value, expected))?;
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(bad_value(key, value, expected))
    }
}

/// Splits "12.5ms" into (12.5, "ms").
fn split_number(value: &str) -> Option<(f64, &str)> {
    let at = value
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(value.len());
    let number = value[..at].trim().parse::<f64>().ok()?;
    (number.is_finite() && number >= 0.0).then_some((number, &value[at..]))
}

fn parse_duration(key: &str, value: &str) -> io::Result<Duration> {
    let expected = "a duration like 5ms, 200us or 1s (at most 3600s)";
    let bad = || bad_value(key, value, expected);
    let (number, unit) = split_number(value).ok_or_else(bad)?;
    let micros_per_unit = match unit.to_ascii_lowercase().as_str() {
        "us" => 1.0,
        "ms" => 1e3,
        "s" => 1e6,
        // A bare zero needs no unit; any other bare number is ambiguous.
        "" if number == 0.0 => 1.0,
        _ => return Err(bad()),
    };
    let micros = (number * micros_per_unit).round();
    if micros > LONGEST_DELAY.as_micros() as f64 {
        return Err(bad());
    }
    Ok(Duration::from_micros(micros as u64))
}

fn parse_rate(key: &str, value: &str) -> io::Result<u64> {
    let expected =
        "a rate above zero like 10mbit, 512kbit, 1gbit, or a plain number of bytes per second";
    let bad = || bad_value(key, value, expected);
    // Plain integers skip f64, which would round rates above 2^53.
    if let Ok(bytes_per_sec) = value.parse::<u64>() {
        return if bytes_per_sec > 0 {
            Ok(bytes_per_sec)
        } else {
            Err(bad())
        };
    }
    let (number, unit) = split_number(value).ok_or_else(bad)?;
    let bytes_per_sec = match unit.to_ascii_lowercase().as_str() {
        "" => number,
        "bit" => number / 8.0,
        "kbit" => number * 1e3 / 8.0,
        "mbit" => number * 1e6 / 8.0,
        "gbit" => number * 1e9 / 8.0,
        _ => return Err(bad()),
    }
    .round();
    if bytes_per_sec < 1.0 || bytes_per_sec > u64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes_per_sec as u64)
}

fn parse_count(key: &str, value: &str) -> io::Result<usize> {
    match value.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(bad_value(key, value, "a whole number above zero")),
    }
}

fn parse_seed(key: &str, value: &str) -> io::Result<u64> {
    let parsed = match value
        .strip_prefix("0x")
        .or_else(|| value.strip_prefix("0X"))
    {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => value.parse::<u64>(),
    };
    parsed.map_err(|_| bad_value(key, value, "a whole number (decimal, or hex with 0x)"))
}

impl FaultConfig {
    /// Parses a spec like `loss=0.05,dup=0.01,reorder=0.02,corrupt=0.01,delay=5ms,seed=7`.
    ///
    /// Items (any order, each at most once; an empty spec impairs nothing):
    /// `loss`, `dup`, `reorder`, `corrupt`, `ce` take a probability (`0.05` or
    /// `5%`); `delay` and `reorder_gap` a duration with unit `us`, `ms` or
    /// `s`; `rate` a bandwidth in `bit`, `kbit`, `mbit`, `gbit` per second or
    /// a plain number of bytes per second; `limit` a packet count; `seed` a
    /// number (decimal or `0x` hex). Errors (`InvalidInput`) name the bad
    /// item and say what was expected.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ustack::device::FaultConfig;
    ///
    /// let f = FaultConfig::parse("loss=5%, dup=0.01, delay=5ms, rate=8mbit, seed=0x2a")?;
    /// assert_eq!((f.loss, f.dup), (0.05, 0.01));
    /// assert_eq!(f.delay, Duration::from_millis(5));
    /// assert_eq!(f.rate, Some(1_000_000)); // bytes per second
    /// assert_eq!(f.seed, 42);
    /// assert!(!f.is_noop());
    /// assert!(FaultConfig::parse("")?.is_noop());
    ///
    /// let e = FaultConfig::parse("loss=0.1,loss=0.2").unwrap_err();
    /// assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    /// assert!(e.to_string().contains("'loss' is given twice"));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn parse(spec: &str) -> io::Result<FaultConfig> {
        let mut config = FaultConfig::default();
        let mut seen: Vec<&str> = Vec::new();
        for item in spec.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let Some((key, value)) = item.split_once('=') else {
                return Err(bad_spec(format!(
                    "item '{item}' has no value: write it as {item}=VALUE"
                )));
            };
            let (key, value) = (key.trim(), value.trim());
            if seen.contains(&key) {
                return Err(bad_spec(format!("'{key}' is given twice in '{spec}'")));
            }
            match key {
                "loss" => config.loss = parse_probability(key, value)?,
                "dup" => config.dup = parse_probability(key, value)?,
                "reorder" => config.reorder = parse_probability(key, value)?,
                "corrupt" => config.corrupt = parse_probability(key, value)?,
                "ce" => config.ce = parse_probability(key, value)?,
                "delay" => config.delay = parse_duration(key, value)?,
                "reorder_gap" => config.reorder_gap = parse_duration(key, value)?,
                "rate" => config.rate = Some(parse_rate(key, value)?),
                "limit" => config.limit = parse_count(key, value)?,
                "seed" => config.seed = parse_seed(key, value)?,
                _ => {
                    return Err(bad_spec(format!(
                        "unknown item '{key}' in '{spec}': known items are {KNOWN_ITEMS}"
                    )));
                }
            }
            seen.push(key);
        }
        Ok(config)
    }

    /// Whether this configuration leaves packets exactly as they are.
    pub fn is_noop(&self) -> bool {
        self.loss == 0.0
            && self.dup == 0.0
            && self.reorder == 0.0
            && self.corrupt == 0.0
            && self.ce == 0.0
            && self.delay.is_zero()
            && self.rate.is_none()
    }
}

/// The spec [`FaultConfig::parse`] reads back to the same configuration, for
/// logging a run so it can be replayed.
impl fmt::Display for FaultConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "loss={},dup={},reorder={},corrupt={},ce={},delay={}us,reorder_gap={}us",
            self.loss,
            self.dup,
            self.reorder,
            self.corrupt,
            self.ce,
            self.delay.as_micros(),
            self.reorder_gap.as_micros()
        )?;
        if let Some(rate) = self.rate {
            write!(f, ",rate={rate}")?;
        }
        write!(f, ",limit={},seed={}", self.limit, self.seed)
    }
}

/// What one direction of impairment did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultCounters {
    /// Packets that entered.
    pub packets: u64,
    /// Packets lost on purpose.
    pub lost: u64,
    /// Packets delivered twice.
    pub duplicated: u64,
    /// Packets held back to be overtaken.
    pub reordered: u64,
    /// Packets with a bit flipped.
    pub corrupted: u64,
    /// Packets dropped because `limit` packets were already held.
    pub overflowed: u64,
    /// ECN-capable packets marked CE.
    pub marked: u64,
}

struct Held {
    release: Instant,
    seq: u64,
    packet: Packet,
}

impl PartialEq for Held {
    fn eq(&self, other: &Held) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Held {}

impl PartialOrd for Held {
    fn partial_cmp(&self, other: &Held) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Reversed so that `BinaryHeap` (a max-heap) pops the earliest release
/// first; `seq` keeps packets due at the same instant in arrival order.
impl Ord for Held {
    fn cmp(&self, other: &Held) -> Ordering {
        (other.release, other.seq).cmp(&(self.release, self.seq))
    }
}

/// One direction of impairment, sans-IO: packets go in with [`push`] at the
/// time they are sent and come out with [`pop_ready`] once their release
/// time has come.
///
/// [`push`]: Impairment::push
/// [`pop_ready`]: Impairment::pop_ready
///
/// ```
/// use ustack::Instant;
/// use ustack::device::{FaultConfig, Impairment};
///
/// // 1000 bytes/s and 10 ms of delay: a 100-byte packet takes 100 ms to
/// // serialise, the next one queues behind it.
/// let config = FaultConfig::parse("rate=1000,delay=10ms")?;
/// let mut imp = Impairment::new(&config, 0);
/// let t0 = Instant::from_millis(1_000);
/// imp.push(t0, vec![1; 100]);
/// imp.push(t0, vec![2; 100]);
/// assert_eq!(imp.next_release(), Some(Instant::from_millis(1_110)));
/// assert_eq!(imp.pop_ready(Instant::from_millis(1_109)), None);
/// assert_eq!(imp.pop_ready(Instant::from_millis(1_110)), Some(vec![1; 100]));
/// assert_eq!(imp.next_release(), Some(Instant::from_millis(1_210)));
///
/// let mut lossy = Impairment::new(&FaultConfig::parse("loss=1")?, 0);
/// lossy.push(t0, vec![3; 10]);
/// assert_eq!((lossy.held(), lossy.counters().lost), (0, 1));
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Impairment {
    config: FaultConfig,
    rng: Rng,
    held: BinaryHeap<Held>,
    seq: u64,
    /// When the rate-limited "wire" finishes serialising what it has.
    wire_free_at: Instant,
    counters: FaultCounters,
    /// The packets are Ethernet frames (a TAP device's): `ce` marks the
    /// datagram inside.
    frames: bool,
}

/// Sets CE in an ECN-capable IP datagram's ECN field, or in the datagram
/// an Ethernet II frame carries when `frames` (ethertype 0x0800 or 0x86dd;
/// other frames, ARP, are left alone); returns whether it did.
fn mark_ce_in(packet: &mut [u8], frames: bool) -> bool {
    if !frames {
        return mark_ce(packet);
    }
    match packet.get(12..14) {
        Some([0x08, 0x00] | [0x86, 0xdd]) => mark_ce(&mut packet[14..]),
        _ => false,
    }
}

/// Sets CE in an ECN-capable IP datagram's ECN field (fixing the IPv4
/// header checksum, as a router does); returns whether it did.
fn mark_ce(packet: &mut [u8]) -> bool {
    match packet.first().map(|b| b >> 4) {
        Some(4) if packet.len() >= 20 && packet[1] & 3 != 0 => {
            packet[1] |= 3;
            crate::wire::ipv4::Ipv4Packet::new_unchecked(&mut *packet).fill_checksum();
            true
        }
        // The traffic class straddles bytes 0 and 1: ECN is bits 4-5 of
        // byte 1.
        Some(6) if packet.len() >= 40 && (packet[1] >> 4) & 3 != 0 => {
            packet[1] |= 0x30;
            true
        }
        _ => false,
    }
}

impl Impairment {
    /// An engine for `config`. Different `stream` values give independent
    /// random streams from the same seed (one per direction, say).
    pub fn new(config: &FaultConfig, stream: u64) -> Impairment {
        let seed = config.seed ^ stream.wrapping_mul(0xd6e8_feb8_6659_fd93);
        Impairment {
            config: config.clone(),
            rng: Rng::new(seed),
            held: BinaryHeap::new(),
            seq: 0,
            wire_free_at: Instant::ZERO,
            counters: FaultCounters::default(),
            frames: false,
        }
    }

    /// Takes a packet sent at `now` and decides its fate.
    pub fn push(&mut self, now: Instant, mut packet: Packet) {
        self.counters.packets += 1;
        // Every decision draws, in a fixed order, whatever the outcome.
        let lose = self.rng.chance(self.config.loss);
        let corrupt = self.rng.chance(self.config.corrupt);
        let dup = self.rng.chance(self.config.dup);
        let reorder = self.rng.chance(self.config.reorder);
        // Drawn only when asked for, so the seeds of specs without `ce`
        // replay as they always did.
        let mark = self.config.ce > 0.0 && self.rng.chance(self.config.ce);
        if lose {
            self.counters.lost += 1;
            return;
        }
        if mark && mark_ce_in(&mut packet, self.frames) {
            self.counters.marked += 1;
        }
        if corrupt && !packet.is_empty() {
            let bit = self.rng.below(packet.len() as u64 * 8);
            packet[(bit / 8) as usize] ^= 1 << (bit % 8);
            self.counters.corrupted += 1;
        }
        let mut extra = Duration::ZERO;
        if reorder {
            extra = self.config.reorder_gap;
            self.counters.reordered += 1;
        }
        if dup {
            self.counters.duplicated += 1;
            self.schedule(now, packet.clone(), extra);
        }
        self.schedule(now, packet, extra);
    }

    fn schedule(&mut self, now: Instant, packet: Packet, extra: Duration) {
        if self.held.len() >= self.config.limit {
            self.counters.overflowed += 1;
            return;
        }
        let mut depart = now;
        if let Some(rate) = self.config.rate {
            let start = self.wire_free_at.max(now);
            let micros = (packet.len() as u128 * 1_000_000).div_ceil(u128::from(rate));
            self.wire_free_at = start + Duration::from_micros(micros.min(u64::MAX as u128) as u64);
            depart = self.wire_free_at;
        }
        let release = depart + self.config.delay + extra;
        self.seq += 1;
        self.held.push(Held {
            release,
            seq: self.seq,
            packet,
        });
    }

    /// The next packet whose release time is at or before `now`.
    pub fn pop_ready(&mut self, now: Instant) -> Option<Packet> {
        if self.held.peek()?.release <= now {
            self.held.pop().map(|h| h.packet)
        } else {
            None
        }
    }

    /// When the earliest held packet is due, if any is held.
    pub fn next_release(&self) -> Option<Instant> {
        self.held.peek().map(|h| h.release)
    }

    /// Packets held, not yet released.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// What this direction has done so far.
    pub fn counters(&self) -> FaultCounters {
        self.counters
    }
}

/// What a [`FaultLink`] did in each direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultStats {
    /// Packets the stack sent.
    pub sent: FaultCounters,
    /// Packets the inner link received.
    pub received: FaultCounters,
}

const TX_STREAM: u64 = 1;
const RX_STREAM: u64 = 2;

/// How soon to retry packets the inner link refused (it was full): the inner
/// link gives no writability signal, so the fault link polls.
const RETRY_REFUSED: Duration = Duration::from_millis(1);

/// Wraps a link and impairs both directions as its [`FaultConfig`] says.
///
/// `send_batch` takes every packet (impairment is the link's job, and a
/// packet refused by the inner link waits in the fault link). Held packets
/// move when their time comes: after [`Link::poll_at`] passes, a call to
/// `recv_batch` (or `send_batch` with an empty batch) releases both
/// directions.
pub struct FaultLink<L: Link> {
    inner: L,
    tx: Impairment,
    rx: Impairment,
    /// Released packets the inner link has not taken yet.
    tx_out: Vec<Packet>,
    scratch: Vec<Packet>,
    last_now: Instant,
    /// An inner send error met after the caller's packets were already
    /// taken, reported on the next call instead of lost.
    deferred_error: Option<io::Error>,
}

impl<L: Link> FaultLink<L> {
    /// Wraps `inner`, impairing it as `config` says.
    pub fn new(inner: L, config: &FaultConfig) -> FaultLink<L> {
        FaultLink {
            inner,
            tx: Impairment::new(config, TX_STREAM),
            rx: Impairment::new(config, RX_STREAM),
            tx_out: Vec::new(),
            scratch: Vec::new(),
            last_now: Instant::ZERO,
            deferred_error: None,
        }
    }

    /// [`FaultLink::new`] over a link of Ethernet II frames (a TAP
    /// device): `ce` marks the IP datagram a frame carries, not its first
    /// bytes; loss, duplication, delay and corruption act on whole frames.
    pub fn frames(inner: L, config: &FaultConfig) -> FaultLink<L> {
        let mut link = FaultLink::new(inner, config);
        link.tx.frames = true;
        link.rx.frames = true;
        link
    }

    /// What each direction has done so far.
    pub fn stats(&self) -> FaultStats {
        FaultStats {
            sent: self.tx.counters(),
            received: self.rx.counters(),
        }
    }

    /// The wrapped link.
    pub fn inner(&self) -> &L {
        &self.inner
    }

    /// The wrapped link, mutably.
    pub fn inner_mut(&mut self) -> &mut L {
        &mut self.inner
    }

    /// Moves released outgoing packets to the inner link.
    fn flush_tx(&mut self, now: Instant) -> io::Result<()> {
        while self.tx_out.len() < self.tx.config.limit {
            match self.tx.pop_ready(now) {
                Some(packet) => self.tx_out.push(packet),
                None => break,
            }
        }
        if !self.tx_out.is_empty() {
            self.inner.send_batch(now, &mut self.tx_out)?;
        }
        Ok(())
    }

    fn begin(&mut self, now: Instant) -> io::Result<()> {
        self.last_now = self.last_now.max(now);
        match self.deferred_error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl<L: Link> Link for FaultLink<L> {
    fn recv_batch(
        &mut self,
        now: Instant,
        batch: &mut Vec<Packet>,
        max: usize,
    ) -> io::Result<usize> {
        self.begin(now)?;
        self.flush_tx(now)?;
        self.scratch.clear();
        self.inner.recv_batch(now, &mut self.scratch, max)?;
        for packet in self.scratch.drain(..) {
            self.rx.push(now, packet);
        }
        let mut n = 0;
        while n < max {
            match self.rx.pop_ready(now) {
                Some(packet) => batch.push(packet),
                None => break,
            }
            n += 1;
        }
        Ok(n)
    }

    fn send_batch(&mut self, now: Instant, batch: &mut Vec<Packet>) -> io::Result<usize> {
        self.begin(now)?;
        let taken = batch.len();
        for packet in batch.drain(..) {
            self.tx.push(now, packet);
        }
        if let Err(e) = self.flush_tx(now) {
            self.deferred_error = Some(e);
        }
        Ok(taken)
    }

    // recv_batch_verified keeps the default: nothing below the corruption
    // may be vouched for.
    forward_link!(inner: mtu, wait_fd, recycle, take_spent, poll_event, close);

    fn poll_at(&self) -> Option<Instant> {
        let retry = (!self.tx_out.is_empty()).then(|| self.last_now + RETRY_REFUSED);
        [
            self.inner.poll_at(),
            self.tx.next_release(),
            self.rx.next_release(),
            retry,
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::pipe::pipe_pair_with_capacity;
    use proptest::prelude::*;
    use std::os::fd::RawFd;

    fn numbered(n: u32) -> Vec<Packet> {
        (0..n).map(|i| i.to_be_bytes().to_vec()).collect()
    }

    fn ids(packets: &[Packet]) -> Vec<u32> {
        packets
            .iter()
            .map(|p| u32::from_be_bytes(p[..4].try_into().unwrap()))
            .collect()
    }

    /// Sends `n` numbered packets one per millisecond through an impairment
    /// and collects what comes out, with release times, until all is out.
    fn run(config: &FaultConfig, n: u32) -> Vec<(Instant, Packet)> {
        let mut imp = Impairment::new(config, TX_STREAM);
        let mut out = Vec::new();
        let mut now = Instant::ZERO;
        for packet in numbered(n) {
            imp.push(now, packet);
            while let Some(p) = imp.pop_ready(now) {
                out.push((now, p));
            }
            now += Duration::from_millis(1);
        }
        while let Some(t) = imp.next_release() {
            now = t;
            while let Some(p) = imp.pop_ready(now) {
                out.push((now, p));
            }
        }
        out
    }

    /// A link that hands out copies of one packet and vouches for every
    /// one's checksum, as a TUN device with offloads may.
    struct Vouching(Packet);

    impl Link for Vouching {
        fn recv_batch(
            &mut self,
            _: Instant,
            batch: &mut Vec<Packet>,
            max: usize,
        ) -> io::Result<usize> {
            batch.extend(std::iter::repeat_n(self.0.clone(), max));
            Ok(max)
        }
        fn recv_batch_verified(
            &mut self,
            now: Instant,
            batch: &mut Vec<Packet>,
            verified: &mut Vec<bool>,
            max: usize,
        ) -> io::Result<usize> {
            let n = self.recv_batch(now, batch, max)?;
            verified.resize(verified.len() + n, true);
            Ok(n)
        }
        fn send_batch(&mut self, _: Instant, batch: &mut Vec<Packet>) -> io::Result<usize> {
            Ok(batch.drain(..).count())
        }
        fn mtu(&self) -> usize {
            1500
        }
        fn wait_fd(&self) -> Option<RawFd> {
            None
        }
    }

    #[test]
    fn packets_through_the_fault_injector_are_never_vouched_for() {
        let original = vec![0x45; 64];
        for spec in ["corrupt=1,seed=1", "seed=2"] {
            let mut link = FaultLink::new(
                Vouching(original.clone()),
                &FaultConfig::parse(spec).unwrap(),
            );
            let (mut batch, mut verified) = (Vec::new(), Vec::new());
            let n = link
                .recv_batch_verified(Instant::ZERO, &mut batch, &mut verified, 8)
                .unwrap();
            assert!(n > 0);
            assert_eq!(verified, vec![false; n], "{spec}");
            if spec.starts_with("corrupt") {
                assert!(batch.iter().all(|p| *p != original), "corrupted");
            }
        }
        // The wrapped link itself does vouch, so the test can fail.
        let mut verified = Vec::new();
        Vouching(original)
            .recv_batch_verified(Instant::ZERO, &mut Vec::new(), &mut verified, 2)
            .unwrap();
        assert_eq!(verified, vec![true; 2]);
    }

    #[test]
    fn parses_the_documented_example() {
        let c = FaultConfig::parse("loss=0.05,dup=0.01,reorder=0.02,corrupt=0.01,delay=5ms,seed=7")
            .unwrap();
        assert_eq!(c.loss, 0.05);
        assert_eq!(c.dup, 0.01);
        assert_eq!(c.reorder, 0.02);
        assert_eq!(c.corrupt, 0.01);
        assert_eq!(c.delay, Duration::from_millis(5));
        assert_eq!(c.seed, 7);
        assert_eq!(c.rate, None);
    }

    #[test]
    fn parses_units_percentages_and_spacing() {
        let c = FaultConfig::parse(" loss = 5% , delay=250us, rate=10mbit, seed=0x10,,").unwrap();
        assert_eq!(c.loss, 0.05);
        assert_eq!(c.delay, Duration::from_micros(250));
        assert_eq!(c.rate, Some(1_250_000));
        assert_eq!(c.seed, 16);
        assert_eq!(
            FaultConfig::parse("delay=1.5s").unwrap().delay,
            Duration::from_millis(1500)
        );
        assert_eq!(
            FaultConfig::parse("rate=512kbit").unwrap().rate,
            Some(64_000)
        );
        assert_eq!(FaultConfig::parse("rate=1000").unwrap().rate, Some(1000));
        assert_eq!(FaultConfig::parse("delay=0").unwrap().delay, Duration::ZERO);
        assert!(FaultConfig::parse("").unwrap().is_noop());
    }

    #[test]
    fn parse_errors_name_the_bad_item_and_the_fix() {
        let msg = |spec: &str| {
            let e = FaultConfig::parse(spec).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{spec}");
            e.to_string()
        };
        assert_eq!(
            msg("loss=x"),
            "USTACK_FAULT: bad value 'x' for loss: expected a probability between 0 and 1 (like 0.05 or 5%)"
        );
        assert!(msg("dup=1.5").contains("bad value '1.5' for dup"));
        assert!(msg("corrupt=-0.1").contains("for corrupt"));
        assert!(msg("reorder=NaN").contains("for reorder"));
        assert!(msg("delay=5").contains("bad value '5' for delay: expected a duration like 5ms"));
        assert!(msg("delay=5 fortnights").contains("for delay"));
        assert!(msg("delay=7200s").contains("at most 3600s"));
        assert!(msg("rate=0").contains("bad value '0' for rate"));
        assert!(msg("rate=10mbps").contains("for rate"));
        assert!(msg("seed=-1").contains("for seed"));
        assert!(msg("limit=0").contains("for limit"));
        assert!(msg("jitter=1ms").contains("unknown item 'jitter'"));
        assert!(msg("jitter=1ms").contains("known items are loss"));
        assert!(msg("loss").contains("item 'loss' has no value: write it as loss=VALUE"));
        assert!(msg("loss=0.1,loss=0.2").contains("'loss' is given twice"));
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_every_error_names_the_variable(
            spec in "((loss|dup|reorder|corrupt|delay|reorder_gap|rate|limit|seed|[a-z_]{0,6})(=[-0-9a-zA-Z.%é ]{0,8})?,?){0,5}|\\PC{0,30}",
        ) {
            if let Err(e) = FaultConfig::parse(&spec) {
                prop_assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
                prop_assert!(e.to_string().starts_with("USTACK_FAULT: "));
            }
        }

        #[test]
        fn display_parses_back_to_the_same_config(
            loss in 0.0f64..=1.0, dup in 0.0f64..=1.0,
            reorder in 0.0f64..=1.0, corrupt in 0.0f64..=1.0,
            delay in 0u64..3_600_000_000, gap in 0u64..1_000_000,
            rate in proptest::option::of(1u64..u64::MAX / 2),
            limit in 1usize..1_000_000, seed: u64,
        ) {
            let c = FaultConfig {
                loss, dup, reorder, corrupt, ce: corrupt / 2.0,
                delay: Duration::from_micros(delay),
                reorder_gap: Duration::from_micros(gap),
                rate, limit, seed,
            };
            prop_assert_eq!(FaultConfig::parse(&c.to_string()).unwrap(), c);
        }
    }

    #[test]
    fn ce_on_frames_marks_the_datagram_inside_and_leaves_arp_alone() {
        let config = FaultConfig::parse("ce=1").unwrap();
        let mut imp = Impairment::new(&config, 0);
        imp.frames = true;
        // An IPv4 frame whose datagram is ECT(0), and an ARP frame whose
        // first byte would read as IPv4.
        let mut ip = vec![0x46u8; 14];
        ip[12..14].copy_from_slice(&[0x08, 0x00]);
        let mut header = [0u8; 20];
        header[0] = 0x45;
        header[1] = 0x02;
        ip.extend_from_slice(&header);
        let mut arp = vec![0x46u8; 42];
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        let (ip_before, arp_before) = (ip.clone(), arp.clone());
        imp.push(Instant::ZERO, ip);
        imp.push(Instant::ZERO, arp);
        let ip = imp.pop_ready(Instant::ZERO).expect("the IPv4 frame passes");
        let arp = imp.pop_ready(Instant::ZERO).expect("the ARP frame passes");
        assert_eq!(ip[14 + 1] & 3, 3, "CE in the datagram's ECN field");
        assert_eq!(
            ip[..14],
            ip_before[..14],
            "the Ethernet header is untouched"
        );
        assert_eq!(arp, arp_before);
        assert_eq!(imp.counters().marked, 1);
    }

    #[test]
    fn ce_marks_only_ecn_capable_packets_and_keeps_the_ipv4_header_valid() {
        use crate::wire::{IpHeader, IpProtocol, parse_ip};
        let datagram = |src: &str, dst: &str, ecn: u8| {
            let ip = IpHeader {
                src: src.parse().unwrap(),
                dst: dst.parse().unwrap(),
                protocol: IpProtocol::Udp,
                payload_len: 8,
                hop_limit: 64,
                ident: 7,
                dont_frag: true,
                ecn,
            };
            let mut p = vec![0u8; ip.buffer_len()];
            ip.emit(&mut p).unwrap();
            p
        };
        let mut imp = Impairment::new(&FaultConfig::parse("ce=1").unwrap(), 0);
        let t0 = Instant::ZERO;
        for (src, dst) in [("10.0.0.1", "10.0.0.2"), ("fd00::1", "fd00::2")] {
            for (ecn, after) in [(0, 0), (1, 3), (2, 3), (3, 3)] {
                imp.push(t0, datagram(src, dst, ecn));
                let p = imp.pop_ready(t0).unwrap();
                // parse_ip verifies the IPv4 header checksum.
                assert_eq!(parse_ip(&p).unwrap().ecn, after, "{src} ECN {ecn}");
            }
        }
        assert_eq!(imp.counters().marked, 6);
    }

    #[test]
    fn default_config_passes_everything_through_in_order_at_once() {
        let out = run(&FaultConfig::default(), 100);
        assert!(
            out.iter()
                .all(|(t, p)| ids(std::slice::from_ref(p))[0] as u64 == t.total_millis())
        );
        assert_eq!(
            ids(&out.into_iter().map(|(_, p)| p).collect::<Vec<_>>()),
            (0..100).collect::<Vec<_>>()
        );
    }

    #[test]
    fn loss_rate_is_near_the_setting() {
        for (loss, seed) in [(0.05, 1), (0.3, 2)] {
            let n = 100_000u32;
            let config = FaultConfig {
                loss,
                seed,
                ..FaultConfig::default()
            };
            let out = run(&config, n);
            let lost = f64::from(n) - out.len() as f64;
            let expected = f64::from(n) * loss;
            // Four standard deviations of a binomial: a correct injector
            // fails this about once in 15,000 seeds; a wrong rate never passes.
            assert!(
                (lost - expected).abs() < sigma4(n, loss),
                "loss={loss}: lost {lost} of {n}, expected {expected}±{}",
                sigma4(n, loss)
            );
        }
    }

    fn sigma4(n: u32, p: f64) -> f64 {
        4.0 * (f64::from(n) * p * (1.0 - p)).sqrt()
    }

    #[test]
    fn dup_rate_is_near_the_setting() {
        let n = 50_000u32;
        let config = FaultConfig {
            dup: 0.1,
            seed: 3,
            ..FaultConfig::default()
        };
        let out = run(&config, n);
        let dups = out.len() as f64 - f64::from(n);
        assert!((dups - 5000.0).abs() < sigma4(n, 0.1), "{dups} duplicates");
        let got = ids(&out.into_iter().map(|(_, p)| p).collect::<Vec<_>>());
        assert!(
            got.windows(2).all(|w| w[0] <= w[1]),
            "a duplicate follows its original"
        );
    }

    #[test]
    fn corrupt_rate_is_near_the_setting() {
        let n = 50_000u32;
        let config = FaultConfig {
            corrupt: 0.2,
            seed: 4,
            ..FaultConfig::default()
        };
        let out = run(&config, n);
        assert_eq!(out.len(), n as usize);
        let corrupted = out
            .iter()
            .zip(numbered(n))
            .filter(|((_, got), want)| *got != *want)
            .count() as f64;
        assert!(
            (corrupted - 10_000.0).abs() < sigma4(n, 0.2),
            "{corrupted} corrupted"
        );
    }

    #[test]
    fn corruption_flips_exactly_one_bit() {
        let config = FaultConfig {
            corrupt: 1.0,
            seed: 9,
            ..FaultConfig::default()
        };
        let out = run(&config, 1000);
        let mut positions = std::collections::HashSet::new();
        for ((_, got), want) in out.iter().zip(numbered(1000)) {
            let diff: Vec<u32> = got
                .iter()
                .zip(&want)
                .map(|(a, b)| (a ^ b).count_ones())
                .collect();
            assert_eq!(diff.iter().sum::<u32>(), 1, "{got:?} vs {want:?}");
            positions.insert(diff.iter().position(|&d| d == 1));
        }
        assert_eq!(positions.len(), 4, "every byte gets hit sometime");
    }

    #[test]
    fn same_seed_gives_the_same_output() {
        let config =
            FaultConfig::parse("loss=0.1,dup=0.1,reorder=0.1,corrupt=0.1,delay=3ms,seed=42")
                .unwrap();
        assert_eq!(run(&config, 2000), run(&config, 2000));
    }

    #[test]
    fn different_seed_gives_different_output() {
        let a = FaultConfig::parse("loss=0.1,dup=0.1,reorder=0.1,corrupt=0.1,seed=1").unwrap();
        let b = FaultConfig {
            seed: 2,
            ..a.clone()
        };
        assert_ne!(run(&a, 2000), run(&b, 2000));
    }

    #[test]
    fn delay_holds_packets_until_their_time() {
        let config = FaultConfig {
            delay: Duration::from_millis(5),
            ..FaultConfig::default()
        };
        let mut imp = Impairment::new(&config, 0);
        imp.push(Instant::from_millis(10), vec![1]);
        imp.push(Instant::from_millis(12), vec![2]);
        assert_eq!(imp.next_release(), Some(Instant::from_millis(15)));
        assert_eq!(imp.pop_ready(Instant::from_micros(14_999)), None);
        assert_eq!(imp.pop_ready(Instant::from_millis(15)), Some(vec![1]));
        assert_eq!(imp.pop_ready(Instant::from_millis(15)), None);
        assert_eq!(imp.next_release(), Some(Instant::from_millis(17)));
        assert_eq!(imp.pop_ready(Instant::from_millis(100)), Some(vec![2]));
        assert_eq!(imp.next_release(), None);
    }

    #[test]
    fn reorder_lets_later_packets_overtake() {
        let config = FaultConfig {
            reorder: 0.2,
            reorder_gap: Duration::from_millis(3),
            seed: 5,
            ..FaultConfig::default()
        };
        let out = run(&config, 1000);
        let got = ids(&out.into_iter().map(|(_, p)| p).collect::<Vec<_>>());
        assert_eq!(got.len(), 1000, "reordering loses nothing");
        let inversions = got.windows(2).filter(|w| w[0] > w[1]).count();
        assert!(inversions > 100, "only {inversions} inversions");
        let mut sorted = got.clone();
        sorted.sort();
        assert_eq!(sorted, (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn rate_limit_spaces_packets_by_their_serialisation_time() {
        // 1000 bytes/s: a 10-byte packet takes 10 ms on the wire.
        let config = FaultConfig {
            rate: Some(1000),
            ..FaultConfig::default()
        };
        let mut imp = Impairment::new(&config, 0);
        for _ in 0..3 {
            imp.push(Instant::ZERO, vec![0; 10]);
        }
        let mut releases = Vec::new();
        while let Some(t) = imp.next_release() {
            imp.pop_ready(t).unwrap();
            releases.push(t.total_millis());
        }
        assert_eq!(releases, [10, 20, 30]);
    }

    #[test]
    fn held_packets_beyond_the_limit_are_dropped_and_counted() {
        let config = FaultConfig {
            delay: Duration::from_millis(1),
            limit: 3,
            ..FaultConfig::default()
        };
        let mut imp = Impairment::new(&config, 0);
        for p in numbered(5) {
            imp.push(Instant::ZERO, p);
        }
        assert_eq!(imp.held(), 3);
        assert_eq!(imp.counters().overflowed, 2);
    }

    #[test]
    fn fault_link_impairs_both_directions_and_reports_release_time() {
        let config = FaultConfig::parse("delay=2ms").unwrap();
        let (a, mut b) = pipe_pair_with_capacity(1500, 64);
        let mut link = FaultLink::new(a, &config);
        let t0 = Instant::from_millis(100);

        let mut batch = numbered(3);
        assert_eq!(link.send_batch(t0, &mut batch).unwrap(), 3);
        assert!(batch.is_empty());
        assert_eq!(b.pending(), 0, "held by the delay");
        assert_eq!(link.poll_at(), Some(t0 + Duration::from_millis(2)));

        let mut reply = numbered(1);
        b.send_batch(t0, &mut reply).unwrap();
        let mut got = Vec::new();
        assert_eq!(link.recv_batch(t0, &mut got, 16).unwrap(), 0);

        let t1 = t0 + Duration::from_millis(2);
        assert_eq!(
            link.recv_batch(t1, &mut got, 16).unwrap(),
            1,
            "received direction released"
        );
        assert_eq!(b.pending(), 3, "sent direction released by the same call");
        assert_eq!(link.poll_at(), None);
        assert_eq!(link.stats().sent.packets, 3);
        assert_eq!(link.stats().received.packets, 1);
    }

    #[test]
    fn fault_link_directions_use_independent_random_streams() {
        // Whatever is sent, the received direction decides the same way.
        let config = FaultConfig::parse("loss=0.5,seed=11").unwrap();
        let received = |send_first: u32| {
            let (a, mut b) = pipe_pair_with_capacity(1500, 4096);
            let mut link = FaultLink::new(a, &config);
            link.send_batch(Instant::ZERO, &mut numbered(send_first))
                .unwrap();
            b.send_batch(Instant::ZERO, &mut numbered(500)).unwrap();
            let mut got = Vec::new();
            while link.recv_batch(Instant::ZERO, &mut got, 64).unwrap() > 0 {}
            ids(&got)
        };
        let quiet = received(0);
        assert!(quiet.len() > 150 && quiet.len() < 350);
        assert_eq!(quiet, received(300));
    }

    #[test]
    fn fault_link_never_returns_more_than_max() {
        let (a, mut b) = pipe_pair_with_capacity(1500, 64);
        let config = FaultConfig {
            dup: 1.0,
            ..FaultConfig::default()
        };
        let mut link = FaultLink::new(a, &config);
        b.send_batch(Instant::ZERO, &mut numbered(4)).unwrap();
        let mut got = Vec::new();
        assert_eq!(link.recv_batch(Instant::ZERO, &mut got, 5).unwrap(), 5);
        assert_eq!(link.poll_at(), Some(Instant::ZERO), "the rest is due now");
        assert_eq!(link.recv_batch(Instant::ZERO, &mut got, 5).unwrap(), 3);
        assert_eq!(ids(&got), [0, 0, 1, 1, 2, 2, 3, 3]);
    }

    /// Drives an impairment with packets `(id, len, gap before it)` and
    /// returns what came out as `(id, pushed at, released at, bytes)`; the
    /// id is u16::MAX for packets too short to carry one.
    fn drive(
        config: &FaultConfig,
        input: &[(u16, usize, u64)],
    ) -> Vec<(u16, Instant, Instant, Packet)> {
        let mut imp = Impairment::new(config, 0);
        let mut pushed_at = std::collections::HashMap::new();
        let mut out = Vec::new();
        let mut now = Instant::ZERO;
        let collect = |imp: &mut Impairment,
                       now: Instant,
                       out: &mut Vec<_>,
                       pushed_at: &std::collections::HashMap<u16, Instant>| {
            while let Some(p) = imp.pop_ready(now) {
                let id = if p.len() >= 2 {
                    u16::from_be_bytes([p[0], p[1]])
                } else {
                    u16::MAX
                };
                out.push((id, pushed_at.get(&id).copied().unwrap_or(now), now, p));
            }
        };
        for &(id, len, gap) in input {
            now += Duration::from_micros(gap);
            let mut packet = vec![0xa5; len];
            if len >= 2 {
                packet[..2].copy_from_slice(&id.to_be_bytes());
            }
            pushed_at.insert(id, now);
            imp.push(now, packet);
            collect(&mut imp, now, &mut out, &pushed_at);
        }
        while let Some(t) = imp.next_release() {
            now = now.max(t);
            collect(&mut imp, now, &mut out, &pushed_at);
        }
        let c = imp.counters();
        assert_eq!(c.packets, input.len() as u64);
        assert_eq!(
            out.len() as u64,
            c.packets - c.lost + c.duplicated - c.overflowed,
            "every packet is delivered, lost or overflowed: {c:?}"
        );
        out
    }

    fn config_strategy() -> impl Strategy<Value = FaultConfig> {
        (
            (0.0f64..=1.0, 0.0f64..=1.0, 0.0f64..=1.0, 0.0f64..=1.0),
            (
                0u64..10_000,
                0u64..5_000,
                proptest::option::of(1_000u64..10_000_000),
            ),
            (1usize..64, any::<u64>()),
        )
            .prop_map(
                |((loss, dup, reorder, corrupt), (delay, gap, rate), (limit, seed))| FaultConfig {
                    loss,
                    dup,
                    reorder,
                    corrupt,
                    ce: dup,
                    delay: Duration::from_micros(delay),
                    reorder_gap: Duration::from_micros(gap),
                    rate,
                    limit,
                    seed,
                },
            )
    }

    fn input_strategy() -> impl Strategy<Value = Vec<(u16, usize, u64)>> {
        proptest::collection::vec((0usize..200, 0u64..3_000), 0..300).prop_map(|v| {
            v.into_iter()
                .enumerate()
                .map(|(i, (len, gap))| (i as u16, len, gap))
                .collect()
        })
    }

    proptest! {
        #[test]
        fn impairment_accounts_for_every_packet_and_keeps_lengths(
            config in config_strategy(), input in input_strategy(),
        ) {
            let out = drive(&config, &input);
            for (id, _, _, packet) in &out {
                if *id != u16::MAX && config.corrupt == 0.0 {
                    prop_assert_eq!(packet.len(), input[*id as usize].1);
                }
            }
        }

        #[test]
        fn no_packet_leaves_before_its_delay_and_order_holds_without_reorder(
            config in config_strategy(), input in input_strategy(),
        ) {
            let config = FaultConfig { corrupt: 0.0, reorder: 0.0, ..config };
            let out = drive(&config, &input);
            // Packets shorter than an id cannot be traced to their push.
            for (_, pushed, released, _) in out.iter().filter(|o| o.0 != u16::MAX) {
                prop_assert!(*released >= *pushed + config.delay);
            }
            let ids: Vec<u16> = out.iter().filter(|o| o.0 != u16::MAX).map(|o| o.0).collect();
            prop_assert!(ids.windows(2).all(|w| w[0] <= w[1]), "{:?}", ids);
        }
    }

    #[test]
    fn fault_link_replays_exactly_from_the_seed() {
        let spec = "loss=0.1,dup=0.05,reorder=0.1,corrupt=0.05,delay=3ms,rate=1mbit,seed=1234";
        let config = FaultConfig::parse(spec).unwrap();
        let trace = || {
            let (a, mut b) = pipe_pair_with_capacity(1500, 4096);
            let mut link = FaultLink::new(a, &config);
            let mut log = Vec::new();
            let mut now = Instant::ZERO;
            for round in 0..400u32 {
                now += Duration::from_micros(u64::from(round % 7) * 300);
                let mut batch: Vec<Packet> = (0..(round % 4))
                    .map(|i| vec![(round + i) as u8; 100])
                    .collect();
                link.send_batch(now, &mut batch).unwrap();
                b.send_batch(now, &mut vec![round.to_be_bytes().to_vec()])
                    .unwrap();
                let mut got = Vec::new();
                link.recv_batch(now, &mut got, 3).unwrap();
                b.recv_batch(now, &mut got, 64).unwrap();
                log.push((now, got, link.poll_at()));
            }
            (log, link.stats())
        };
        let (first, stats) = trace();
        assert_eq!(first, trace().0);
        assert!(
            stats.sent.lost > 0 && stats.received.reordered > 0,
            "{stats:?}"
        );
    }
}
