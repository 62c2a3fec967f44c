//! Deterministic simulation of two whole stacks (IP, checksums, TCP, the
//! socket table) over an impaired link, with a virtual clock.
//!
//! Each seed draws a fault mix (loss up to 10%, duplication, reordering,
//! corruption, delay, a bandwidth limit) and transfer sizes in both
//! directions; the run must deliver exactly the bytes sent, close both
//! ends, free every socket, and finish within a bound of simulated time.
//! A failing seed prints itself; replay it with `USTACK_SIM_SEED=N`.
//! `USTACK_SIM_SEEDS=N` runs more seeds (default 300).
//!
//! The same runs again with each stack an Ethernet host (`EthernetLink`,
//! ARP and the neighbour cache) and the faults acting on frames, so
//! resolution itself meets loss, duplication and reordering (default 100
//! seeds; no corruption there: a real Ethernet's FCS turns a corrupted frame
//! into a lost one).

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use ustack::device::{FaultConfig, Impairment, Link, PipeLink, pipe_pair};
use ustack::ethernet::{EthernetConfig, EthernetLink, Prefix};
use ustack::rand::Rng;
use ustack::stack::{Core, CoreConfig, SocketHandle};
use ustack::time::Instant;
use ustack::wire::ethernet::MacAddr;

const A: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
const B: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);

struct Outcome {
    bytes: u64,
    sim_time: Duration,
}

fn fault_for(seed: u64, ethernet: bool) -> FaultConfig {
    let mut r = Rng::new(seed ^ 0xfa17);
    let (loss, dup, reorder, corrupt) = (
        r.next_f64() * 0.10,
        r.next_f64() * 0.03,
        r.next_f64() * 0.05,
        r.next_f64() * 0.02,
    );
    let corrupt = if ethernet { 0.0 } else { corrupt };
    let mut spec = format!(
        "loss={loss:.3},dup={dup:.3},reorder={reorder:.3},corrupt={corrupt:.3},delay={}us,seed={seed}",
        100 + r.below(20_000),
    );
    if r.chance(0.5) {
        spec.push_str(&format!(",rate={}", 1_000_000 + r.below(50_000_000)));
    }
    FaultConfig::parse(&spec).expect("generated spec parses")
}

fn pattern(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ salt)
        .collect()
}

/// One end's application: sends its data, reads the peer's, closes when
/// both are done.
struct App {
    h: SocketHandle,
    out: Vec<u8>,
    sent: usize,
    got: Vec<u8>,
    eof: bool,
    write_closed: bool,
    closed: bool,
}

impl App {
    fn step(&mut self, core: &mut Core) -> Result<(), String> {
        if self.closed {
            return Ok(());
        }
        while self.sent < self.out.len() {
            match core.tcp_mut().send(self.h, &self.out[self.sent..]) {
                Ok(n) => self.sent += n,
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => break,
                Err(e) => return Err(format!("send: {e}")),
            }
        }
        if self.sent == self.out.len() && !self.write_closed {
            core.tcp_mut()
                .shutdown(self.h, ustack::stack::Shutdown::Write)
                .map_err(|e| format!("shutdown: {e}"))?;
            self.write_closed = true;
        }
        let mut buf = [0u8; 8192];
        while !self.eof {
            match core.tcp_mut().recv(self.h, &mut buf, false) {
                Ok(0) => self.eof = true,
                Ok(n) => self.got.extend_from_slice(&buf[..n]),
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => break,
                Err(e) => return Err(format!("recv: {e}")),
            }
        }
        if self.eof && self.write_closed {
            core.close(self.h).map_err(|e| format!("close: {e}"))?;
            self.closed = true;
        }
        Ok(())
    }
}

/// What carries the two cores' datagrams: the impaired links directly, or
/// an Ethernet host on each side with the impaired links carrying frames.
enum Wire {
    Ip,
    Ethernet(Box<[Host; 2]>),
}

/// One side's Ethernet host and the far end of its frame link.
struct Host {
    eth: EthernetLink<PipeLink>,
    far: PipeLink,
}

impl Host {
    fn new(ip: Ipv4Addr, last: u8, gateway: Ipv4Addr) -> Host {
        let (near, far) = pipe_pair(1514);
        let eth = EthernetLink::new(
            near,
            EthernetConfig {
                mac: MacAddr([2, 0, 0, 0, 0, last]),
                ipv4: Some(Prefix { addr: ip, len: 24 }),
                ipv6: None,
                gateway: Some(gateway),
                gateway6: None,
                neighbors: Default::default(),
                dhcp: false,
                slaac: false,
                mld: false,
            },
        );
        Host { eth, far }
    }
}

impl Wire {
    fn new(ethernet: bool) -> Wire {
        if ethernet {
            Wire::Ethernet(Box::new([Host::new(A, 2, B), Host::new(B, 1, A)]))
        } else {
            Wire::Ip
        }
    }

    /// Moves what the links release now into the cores.
    fn deliver(&mut self, now: Instant, cores: [&mut Core; 2], links: [&mut Impairment; 2]) {
        let [a, b] = cores;
        let [ab, ba] = links;
        match self {
            Wire::Ip => {
                while let Some(p) = ab.pop_ready(now) {
                    b.input(now, &p);
                }
                while let Some(p) = ba.pop_ready(now) {
                    a.input(now, &p);
                }
            }
            Wire::Ethernet(hosts) => {
                let [ha, hb] = &mut **hosts;
                for (link, host, core) in [(ab, hb, b), (ba, ha, a)] {
                    let mut frames = Vec::new();
                    while let Some(f) = link.pop_ready(now) {
                        frames.push(f);
                    }
                    // Up as the pipe fills, and at least once (the host's
                    // timers run on its calls).
                    loop {
                        host.far
                            .send_batch(now, &mut frames)
                            .expect("pipe takes frames");
                        deliver_up(now, host, core);
                        if frames.is_empty() {
                            break;
                        }
                    }
                }
            }
        }
    }

    /// Moves what the cores send into the links.
    fn transmit(&mut self, now: Instant, cores: [&mut Core; 2], links: [&mut Impairment; 2]) {
        let [a, b] = cores;
        let [ab, ba] = links;
        let mut out = Vec::new();
        match self {
            Wire::Ip => {
                a.poll_transmit(now, &mut out);
                for p in out.drain(..) {
                    ab.push(now, p);
                }
                b.poll_transmit(now, &mut out);
                for p in out.drain(..) {
                    ba.push(now, p);
                }
            }
            Wire::Ethernet(hosts) => {
                let [ha, hb] = &mut **hosts;
                for (core, host, link) in [(a, ha, ab), (b, hb, ba)] {
                    core.poll_transmit(now, &mut out);
                    while !out.is_empty() {
                        host.eth
                            .send_batch(now, &mut out)
                            .expect("the host takes datagrams");
                    }
                    // Timers of the host (ARP retries) run on its calls.
                    deliver_up(now, host, core);
                    let mut frames = Vec::new();
                    while host.far.recv_batch(now, &mut frames, 64).expect("pipe") > 0 {}
                    for f in frames {
                        link.push(now, f);
                    }
                }
            }
        }
    }

    fn poll_at(&self) -> Option<Instant> {
        match self {
            Wire::Ip => None,
            Wire::Ethernet(hosts) => hosts.iter().filter_map(|h| h.eth.poll_at()).min(),
        }
    }
}

/// What the host delivers up (datagrams, and ICMP errors it made for the
/// core), into the core.
fn deliver_up(now: Instant, host: &mut Host, core: &mut Core) {
    let mut up = Vec::new();
    while host.eth.recv_batch(now, &mut up, 64).expect("host") > 0 {
        for p in up.drain(..) {
            core.input(now, &p);
        }
    }
}

fn run(seed: u64, ethernet: bool) -> Result<Outcome, String> {
    let fault = fault_for(seed, ethernet);
    let mut wire = Wire::new(ethernet);
    let mut r = Rng::new(seed);
    let mut a = Core::new(CoreConfig {
        seed: seed.wrapping_mul(3),
        ..CoreConfig::default()
    });
    let mut b = Core::new(CoreConfig {
        addr: B,
        addr6: "fd77::1".parse().unwrap(),
        seed: seed.wrapping_mul(5),
        ..CoreConfig::default()
    });
    let mut ab = Impairment::new(&fault, 1);
    let mut ba = Impairment::new(&fault, 2);
    let a_len = r.below(300_000) as usize;
    let b_len = r.below(300_000) as usize;

    let l = a.tcp_mut().socket(false).map_err(|e| e.to_string())?;
    a.tcp_mut()
        .bind(l, SocketAddr::from((A, 80)))
        .map_err(|e| e.to_string())?;
    a.tcp_mut().listen(l, 4).map_err(|e| e.to_string())?;
    let c = b.tcp_mut().socket(false).map_err(|e| e.to_string())?;
    let mut now = Instant::ZERO;
    b.tcp_mut()
        .connect(now, c, SocketAddr::from((A, 80)))
        .map_err(|e| e.to_string())?;
    let mut client = App {
        h: c,
        out: pattern(b_len, 0xb0),
        sent: 0,
        got: Vec::new(),
        eof: false,
        write_closed: false,
        closed: false,
    };
    let mut server: Option<App> = None;
    let mut connected = false;
    let limit = Instant::ZERO + Duration::from_secs(600);
    loop {
        if now > limit {
            return Err(format!(
                "not done after {limit:?} simulated: client sent {}/{} got {}/{}; server {:?}",
                client.sent,
                b_len,
                client.got.len(),
                a_len,
                server.as_ref().map(|s| (s.sent, s.got.len()))
            ));
        }
        // Deliver what the link releases now.
        wire.deliver(now, [&mut a, &mut b], [&mut ab, &mut ba]);
        if server.is_none()
            && let Ok((h, _)) = a.tcp_mut().accept(l)
        {
            server = Some(App {
                h,
                out: pattern(a_len, 0xa0),
                sent: 0,
                got: Vec::new(),
                eof: false,
                write_closed: false,
                closed: false,
            });
        }
        if client.sent == 0 && b.tcp_mut().readiness(c).map(|r| r.error).unwrap_or(false) {
            return Err("connect failed".into());
        }
        if !connected && b.tcp_mut().readiness(c).is_ok_and(|r| r.writable) {
            connected = true;
        }
        if connected {
            client.step(&mut b)?;
        }
        if let Some(s) = server.as_mut() {
            s.step(&mut a)?;
        }
        wire.transmit(now, [&mut a, &mut b], [&mut ab, &mut ba]);
        let done = client.closed && server.as_ref().is_some_and(|s| s.closed);
        if done {
            a.close(l).map_err(|e| e.to_string())?;
            // Let FINs finish and TIME-WAIT expire: every slot must free.
            let settle = now + Duration::from_secs(200);
            while now < settle {
                wire.deliver(now, [&mut a, &mut b], [&mut ab, &mut ba]);
                wire.transmit(now, [&mut a, &mut b], [&mut ab, &mut ba]);
                now = next_event(now, &[&a, &b], &[&ab, &ba], wire.poll_at()).min(settle);
            }
            break;
        }
        now = next_event(now, &[&a, &b], &[&ab, &ba], wire.poll_at());
    }
    let server = server.expect("accepted");
    if client.got != server.out {
        return Err(format!(
            "client received {} bytes, server sent {}: contents differ",
            client.got.len(),
            server.out.len()
        ));
    }
    if server.got != client.out {
        return Err(format!(
            "server received {} bytes, client sent {}: contents differ",
            server.got.len(),
            client.out.len()
        ));
    }
    if let Wire::Ethernet(hosts) = &wire {
        // The datagrams really went as frames, and ARP resolved each side.
        for h in hosts.iter() {
            let c = h.eth.counters();
            if c.rx_delivered == 0 || c.arp_answered == 0 {
                return Err(format!("the Ethernet hosts were bypassed: {c:?}"));
            }
        }
    }
    if a.sockets_in_use() != 0 || b.sockets_in_use() != 0 {
        return Err(format!(
            "sockets still held after close: a {} b {}",
            a.sockets_in_use(),
            b.sockets_in_use()
        ));
    }
    Ok(Outcome {
        bytes: (a_len + b_len) as u64,
        sim_time: now - Instant::ZERO,
    })
}

/// The next instant anything is due, at least 1 ms ahead (the apps poll).
fn next_event(
    now: Instant,
    cores: &[&Core],
    links: &[&Impairment],
    wire: Option<Instant>,
) -> Instant {
    let mut t = now + Duration::from_millis(1);
    if let Some(at) = wire {
        t = t.min(at.max(now + Duration::from_micros(1)));
    }
    for c in cores {
        if let Some(at) = c.poll_at() {
            t = t.min(at.max(now + Duration::from_micros(1)));
        }
    }
    for l in links {
        if let Some(at) = l.next_release() {
            t = t.min(at.max(now + Duration::from_micros(1)));
        }
    }
    t
}

/// Runs the seeds (`USTACK_SIM_SEED`, or `USTACK_SIM_SEEDS`, default
/// `default`) and fails naming those that failed.
fn simulate(ethernet: bool, default: u64) {
    let seeds: Vec<u64> = match std::env::var("USTACK_SIM_SEED") {
        Ok(s) => vec![s.parse().expect("USTACK_SIM_SEED is a number")],
        Err(_) => {
            let n: u64 = std::env::var("USTACK_SIM_SEEDS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(default);
            (0..n).collect()
        }
    };
    let mut bytes = 0;
    let mut sim = Duration::ZERO;
    let mut failures = Vec::new();
    for &seed in &seeds {
        match run(seed, ethernet) {
            Ok(o) => {
                bytes += o.bytes;
                sim += o.sim_time;
            }
            Err(e) => {
                eprintln!("seed {seed} failed ({}): {e}", fault_for(seed, ethernet));
                failures.push(seed);
            }
        }
    }
    eprintln!(
        "{} simulation: {} seeds, {} bytes delivered, {:?} simulated, {} failed",
        if ethernet { "ethernet" } else { "stack" },
        seeds.len(),
        bytes,
        sim,
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "failing seeds (replay with USTACK_SIM_SEED=N): {failures:?}"
    );
}

#[test]
fn two_stacks_deliver_exactly_through_seeded_faults() {
    simulate(false, 300);
}

#[test]
fn two_ethernet_hosts_deliver_exactly_through_seeded_faults_on_frames() {
    simulate(true, 100);
}
