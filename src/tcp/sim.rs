//! Deterministic simulation: two connections, one `connect`, one `accept`,
//! exchanging segments through a simulated network with seeded loss,
//! duplication, reordering and delay, under a virtual clock that jumps to
//! the next arrival or deadline. Each seed transfers a random amount of data
//! both ways and closes; a failing seed prints itself for replay.
//!
//! `USTACK_SIM_SEEDS=n` runs n seeds (default [`DEFAULT_SEEDS`]) from
//! `USTACK_SIM_FIRST` (default 1); `USTACK_SIM_SEED=s` replays one, and
//! `USTACK_SIM_TRACE=1` prints its every segment.

use super::{
    CongestionAlgorithm, Connection, IcmpError, State, TcpConfig, TcpError, rst_for_unmatched,
};
use crate::time::Instant;
use crate::wire::tcp::{TcpFlags, TcpRepr};
use std::net::SocketAddr;
use std::time::Duration;

const DEFAULT_SEEDS: u64 = 1000;
/// Simulated time allowed for transfer, close and TIME-WAIT (60 s) together;
/// the slowest of 300,000 seeds needed about 175 s (a slow reader).
const TIME_BOUND: Duration = Duration::from_secs(300);

/// SplitMix64: small, seedable, good enough for test decisions.
pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub(super) fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
}

struct Packet {
    at: Instant,
    id: u64,
    to: usize,
    repr: TcpRepr,
    payload: Vec<u8>,
    /// Spoofed segments only target synchronized connections. A listener
    /// (the stack's job, not simulated here) would answer a spoofed SYN, and
    /// a blind SYN that hits SYN-SENT is, by RFC 9293, a simultaneous open.
    spoofed: bool,
}

struct Link {
    /// Per mille of packets followed by a blind spoofed segment (random
    /// sequence and acknowledgement numbers and flags, no payload), which
    /// RFC 5961 must keep from hurting the connection.
    spoof: u64,
    loss: u64,
    dup: u64,
    reorder: u64,
    delay_ms: u64,
}

struct Net {
    link: Link,
    packets: Vec<Packet>,
    next_id: u64,
    sent: u64,
    trace: bool,
}

impl Net {
    fn send(&mut self, rng: &mut Rng, now: Instant, to: usize, repr: &TcpRepr, payload: &[u8]) {
        self.sent += 1;
        let lost = rng.chance(self.link.loss);
        if self.trace {
            eprintln!(
                "{:>10} {}->{} {:?} seq={} ack={} win={} len={} {:?}{}",
                now.total_micros(),
                1 - to,
                to,
                repr.flags,
                repr.seq,
                repr.ack,
                repr.window,
                payload.len(),
                repr.options.sack(),
                if lost { " LOST" } else { "" }
            );
        }
        if rng.chance(self.link.spoof) {
            let mut fake = *repr;
            fake.seq = rng.next() as u32;
            fake.ack = rng.next() as u32;
            fake.flags = TcpFlags(rng.next() as u8 & 0x17);
            self.packets.push(Packet {
                at: now + Duration::from_micros(rng.below(5000)),
                id: self.next_id,
                to,
                repr: fake,
                payload: Vec::new(),
                spoofed: true,
            });
            self.next_id += 1;
        }
        if lost {
            return;
        }
        let copies = if rng.chance(self.link.dup) { 2 } else { 1 };
        for _ in 0..copies {
            let mut delay = self.link.delay_ms * 1000 + rng.below(200);
            if rng.chance(self.link.reorder) {
                delay += rng.below(self.link.delay_ms * 2000 + 1);
            }
            self.packets.push(Packet {
                at: now + Duration::from_micros(delay),
                id: self.next_id,
                to,
                repr: *repr,
                payload: payload.to_vec(),
                spoofed: false,
            });
            self.next_id += 1;
        }
    }

    fn next_arrival(&self) -> Option<usize> {
        (0..self.packets.len()).min_by_key(|&i| (self.packets[i].at, self.packets[i].id))
    }
}

struct Side {
    conn: Option<Connection>,
    data: Vec<u8>,
    written: usize,
    received: Vec<u8>,
    shut: bool,
    closed: bool,
    saw_time_wait: bool,
    /// The error the connection reported, if any.
    error: Option<TcpError>,
    /// A slow reader takes at most `read_budget` bytes every `read_tick`,
    /// so windows close and reopen, and the persist timer runs.
    slow_reader: Option<(usize, Duration)>,
    next_read: Instant,
    /// Bytes per `send` call: small writes exercise Nagle.
    write_chunk: usize,
}

impl Side {
    fn new(rng: &mut Rng, len: usize) -> Side {
        Side {
            conn: None,
            data: (0..len).map(|_| rng.next() as u8).collect(),
            written: 0,
            received: Vec::new(),
            shut: false,
            closed: false,
            saw_time_wait: false,
            error: None,
            slow_reader: rng.chance(300).then(|| {
                (
                    1_000 + rng.below(4_000) as usize,
                    Duration::from_millis(5 + rng.below(100)),
                )
            }),
            next_read: Instant::ZERO,
            write_chunk: if rng.chance(300) {
                1 + rng.below(3000) as usize
            } else {
                usize::MAX
            },
        }
    }

    /// When this side's application next wants to read, if it is waiting.
    fn read_deadline(&self) -> Option<Instant> {
        let c = self.conn.as_ref()?;
        (self.slow_reader.is_some() && c.recv_queue() > 0).then_some(self.next_read)
    }

    fn app_step(&mut self, now: Instant) -> Result<(), String> {
        let Some(c) = self.conn.as_mut() else {
            return Ok(());
        };
        if let Some(e) = c.take_error() {
            self.error = Some(e);
        }
        if c.state() == State::TimeWait {
            self.saw_time_wait = true;
        }
        if c.is_established() || matches!(c.state(), State::SynSent | State::SynReceived) {
            while self.written < self.data.len() {
                let end = self
                    .data
                    .len()
                    .min(self.written.saturating_add(self.write_chunk));
                match c.send(&self.data[self.written..end]) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => self.written += n,
                }
            }
            if self.written == self.data.len() && !self.shut {
                c.shutdown_write();
                self.shut = true;
            }
        }
        let mut budget = usize::MAX;
        if let Some((bytes, tick)) = self.slow_reader {
            budget = 0;
            if now >= self.next_read && c.recv_queue() > 0 {
                budget = bytes;
                self.next_read = now + tick;
            }
        }
        let mut buf = [0u8; 4096];
        while budget > 0 || c.recv_closed() {
            let want = buf.len().min(budget.max(1));
            match c.recv(&mut buf[..want]) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    self.received.extend_from_slice(&buf[..n]);
                    budget = budget.saturating_sub(n);
                }
            }
        }
        if c.recv_closed() && self.shut && !self.closed {
            c.close();
            self.closed = true;
        }
        Ok(())
    }
}

fn random_config(rng: &mut Rng) -> TcpConfig {
    let mut cfg = TcpConfig::for_mtu(300 + rng.below(1201) as u16, false);
    let bufs = [2048, 4096, 16 * 1024, 64 * 1024, 256 * 1024];
    cfg.recv_buf = bufs[rng.below(5) as usize];
    cfg.send_buf = bufs[rng.below(5) as usize];
    // Half the runs auto-tune the buffers, half keep them fixed.
    let tuned = rng.chance(500);
    cfg.recv_buf_max = if tuned { 1 << 20 } else { 0 };
    cfg.send_buf_max = if tuned { 1 << 20 } else { 0 };
    cfg.nodelay = rng.chance(500);
    cfg.window_scaling = rng.chance(700);
    cfg.timestamps = rng.chance(700);
    cfg.sack = rng.chance(700);
    cfg.congestion = if rng.chance(500) {
        CongestionAlgorithm::Cubic
    } else {
        CongestionAlgorithm::NewReno
    };
    cfg
}

/// Figures from one run.
struct Outcome {
    bytes: usize,
    segments: u64,
    retransmits: u64,
    fast_retransmits: u64,
    rto_expiries: u64,
    spurious_rtos: u64,
    tlp_probes: u64,
    /// This run aborted one side; the other saw the RST as an error.
    aborted: bool,
    peer_saw_reset: bool,
    elapsed: Duration,
}

fn run(seed: u64) -> Result<Outcome, String> {
    let mut rng = Rng(seed);
    let link = Link {
        spoof: rng.below(21),
        loss: rng.below(101),
        dup: rng.below(31),
        reorder: rng.below(101),
        delay_ms: 1 + rng.below(50),
    };
    let mut net = Net {
        link,
        packets: Vec::new(),
        next_id: 0,
        sent: 0,
        trace: std::env::var_os("USTACK_SIM_TRACE").is_some(),
    };
    let addr_a: SocketAddr = "10.0.0.1:40000".parse().unwrap();
    let addr_b: SocketAddr = "10.0.0.2:80".parse().unwrap();
    let cfg_a = random_config(&mut rng);
    let cfg_b = random_config(&mut rng);
    let len_a = rng.below(200_001) as usize;
    let len_b = rng.below(200_001) as usize;
    let mut sides = [Side::new(&mut rng, len_a), Side::new(&mut rng, len_b)];
    let start = Instant::from_millis(1_000 + rng.below(1_000_000));
    let mut now = start;
    sides[0].conn = Some(Connection::connect(
        cfg_a,
        addr_a,
        addr_b,
        rng.next() as u32,
        now,
    ));
    // Some runs see the path MTU drop mid-transfer.
    let mut pmtu_at = rng
        .chance(200)
        .then(|| start + Duration::from_millis(rng.below(2000)));
    // A tenth of the runs abort one side at a random moment, drawn from a
    // separate stream so the other runs keep their scenarios.
    let mut chaos = Rng(seed ^ 0xa5a5_5a5a_dead_beef);
    let mut abort = chaos.chance(100).then(|| {
        (
            chaos.below(2) as usize,
            start + Duration::from_millis(chaos.below(3000)),
        )
    });
    let aborter = abort.map(|a| a.0);
    let mut stalled = 0u32;
    loop {
        if let Some((who, at)) = abort
            && now >= at
        {
            abort = None;
            if let Some(c) = sides[who].conn.as_mut() {
                c.abort();
            }
        }
        if pmtu_at.is_some_and(|at| now >= at) {
            pmtu_at = None;
            let mtu = 300 + rng.below(300) as u16;
            for side in sides.iter_mut() {
                if let Some(c) = side.conn.as_mut() {
                    c.on_icmp(now, IcmpError::PacketTooBig { mtu });
                }
            }
        }
        for side in sides.iter_mut() {
            side.app_step(now)?;
        }
        for (i, side) in sides.iter_mut().enumerate() {
            if let Some(c) = side.conn.as_mut() {
                c.poll_transmit(now, |r, p| net.send(&mut rng, now, 1 - i, r, p));
            }
        }
        let done = sides.iter().all(|s| {
            s.conn
                .as_ref()
                .is_some_and(|c| c.is_closed() && c.recv_queue() == 0)
        });
        if done && net.packets.is_empty() {
            break;
        }
        let arrival = net.next_arrival().map(|i| net.packets[i].at);
        let deadline = sides
            .iter()
            .filter_map(|s| s.conn.as_ref().and_then(|c| c.poll_at()))
            .chain(sides.iter().filter_map(|s| s.read_deadline()))
            .min();
        let Some(next) = [arrival, deadline].into_iter().flatten().min() else {
            // After an abort whose RST was lost, a peer that has nothing to
            // send (FIN-WAIT-2, or never created) waits forever, as on any
            // TCP without keepalive: the run is over.
            let quiet_victim = |s: &Side| {
                s.conn
                    .as_ref()
                    .is_none_or(|c| matches!(c.state(), State::Closed | State::FinWait2))
            };
            if aborter.is_some() && sides.iter().all(quiet_victim) {
                break;
            }
            let who: Vec<String> = sides
                .iter()
                .map(|s| match s.conn.as_ref() {
                    Some(c) => format!(
                        "{:?} unread {} unsent {} err {:?}",
                        c.state(),
                        c.recv_queue(),
                        c.send_queue(),
                        s.error
                    ),
                    None => "none".into(),
                })
                .collect();
            return Err(format!(
                "stalled: no packet in flight and no timer: {who:?}"
            ));
        };
        if next <= now {
            stalled += 1;
            if stalled > 10_000 {
                let who: Vec<String> = sides
                    .iter()
                    .filter_map(|s| s.conn.as_ref())
                    .map(|c| {
                        format!(
                            "{:?} poll_at {:?} ack due {} rtx {} probe {} tlp {} rst {:?}",
                            c.state(),
                            c.poll_at(),
                            c.ack.due,
                            c.rtx_una,
                            c.probe_pending,
                            c.tlp.pending,
                            c.rst_to_send
                        )
                    })
                    .collect();
                return Err(format!("livelock at {now:?}: {who:?}"));
            }
        } else {
            stalled = 0;
            now = next;
        }
        if now - start > TIME_BOUND {
            return Err(format!("not finished after {:?}", now - start));
        }
        while let Some(i) = net.next_arrival() {
            if net.packets[i].at > now {
                break;
            }
            let p = net.packets.swap_remove(i);
            let side = &mut sides[p.to];
            match side.conn.as_mut() {
                Some(c) if p.spoofed && !c.state().is_synchronized() => {}
                // What the stack does for a segment no connection wants.
                Some(c) if c.is_closed() && !p.spoofed => {
                    if let Some(rst) = rst_for_unmatched(&p.repr, p.payload.len()) {
                        net.send(&mut rng, now, 1 - p.to, &rst, &[]);
                    }
                }
                Some(c) => c.on_segment(now, &p.repr, &p.payload),
                None if p.repr.flags == TcpFlags::SYN && !p.spoofed => {
                    let iss = rng.next() as u32;
                    side.conn = Some(Connection::accept(
                        cfg_b.clone(),
                        addr_b,
                        addr_a,
                        &p.repr,
                        iss,
                        now,
                    ));
                }
                None => {}
            }
        }
    }
    let elapsed = now - start;
    for (i, s) in sides.iter().enumerate() {
        let peer = &sides[1 - i];
        let expected_error = match aborter {
            Some(a) if a != i => matches!(
                s.error,
                None | Some(TcpError::ConnectionReset | TcpError::ConnectionRefused)
            ),
            _ => s.error.is_none(),
        };
        if !expected_error {
            return Err(format!("side {i} reported {:?}", s.error));
        }
        if aborter.is_some() {
            if !peer.data.starts_with(&s.received) {
                return Err(format!("side {i} received bytes the peer never sent"));
            }
        } else if s.received != peer.data {
            return Err(format!(
                "side {i} received {} bytes, peer sent {}; first difference at {:?}",
                s.received.len(),
                peer.data.len(),
                s.received.iter().zip(&peer.data).position(|(a, b)| a != b)
            ));
        }
    }
    if aborter.is_none() && !sides.iter().any(|s| s.saw_time_wait) {
        return Err("neither side went through TIME-WAIT".into());
    }
    if elapsed > TIME_BOUND {
        return Err(format!("took {elapsed:?}"));
    }
    let stats = |s: &Side| s.conn.as_ref().map(|c| *c.counters()).unwrap_or_default();
    Ok(Outcome {
        bytes: sides[0].received.len() + sides[1].received.len(),
        segments: net.sent,
        retransmits: stats(&sides[0]).retransmits + stats(&sides[1]).retransmits,
        fast_retransmits: stats(&sides[0]).fast_retransmits + stats(&sides[1]).fast_retransmits,
        rto_expiries: stats(&sides[0]).rto_expiries + stats(&sides[1]).rto_expiries,
        spurious_rtos: stats(&sides[0]).spurious_rtos + stats(&sides[1]).spurious_rtos,
        tlp_probes: stats(&sides[0]).tlp_probes + stats(&sides[1]).tlp_probes,
        aborted: aborter.is_some(),
        peer_saw_reset: sides.iter().any(|s| s.error.is_some()),
        elapsed,
    })
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[test]
fn simulated_transfers_deliver_every_byte_and_close_under_impairment() {
    let seeds: Vec<u64> = match env_u64("USTACK_SIM_SEED") {
        Some(s) => vec![s],
        None => {
            let first = env_u64("USTACK_SIM_FIRST").unwrap_or(1);
            let count = env_u64("USTACK_SIM_SEEDS").unwrap_or(DEFAULT_SEEDS);
            (first..first.saturating_add(count)).collect()
        }
    };
    let (mut bytes, mut segments, mut retransmits) = (0usize, 0u64, 0u64);
    let (mut fast, mut rtos, mut tlps, mut spurious) = (0u64, 0u64, 0u64, 0u64);
    let (mut aborts, mut resets) = (0u64, 0u64);
    let (mut slowest, mut slowest_seed) = (Duration::ZERO, 0);
    let mut failures = Vec::new();
    for &seed in &seeds {
        match run(seed) {
            Ok(o) => {
                bytes += o.bytes;
                segments += o.segments;
                retransmits += o.retransmits;
                fast += o.fast_retransmits;
                rtos += o.rto_expiries;
                spurious += o.spurious_rtos;
                tlps += o.tlp_probes;
                aborts += u64::from(o.aborted);
                resets += u64::from(o.peer_saw_reset);
                if o.elapsed > slowest {
                    (slowest, slowest_seed) = (o.elapsed, seed);
                }
            }
            Err(e) => {
                eprintln!("seed {seed} failed: {e} (replay: USTACK_SIM_SEED={seed})");
                failures.push(seed);
            }
        }
    }
    eprintln!(
        "sim: {} seeds, {bytes} bytes delivered, {segments} segments sent, \
         {retransmits} retransmitted ({fast} fast retransmits, {rtos} RTOs of which \
         {spurious} undone as spurious, {tlps} TLPs), \
         {aborts} runs aborted one side ({resets} peers saw the reset), \
         slowest {slowest:?} simulated (seed {slowest_seed})",
        seeds.len()
    );
    assert!(failures.is_empty(), "failing seeds: {failures:?}");
}
