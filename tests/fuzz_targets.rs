//! Every fuzz target of `fuzz/` run in the test command on stable Rust: the
//! same properties (`fuzz/fuzz_targets/*.rs`, each a `pub fn run`) fed by a
//! seeded mutator instead of libFuzzer's coverage feedback. Seeds: the
//! captured packets of `tests/fixtures/*.pcap`, whole and as their IP
//! payloads, and one encoding of every control-protocol request.
//!
//! Bounded by time: `USTACK_FUZZ_MS` milliseconds per target (default
//! 1500). The seed is printed; `USTACK_FUZZ_SEED=N` replays a run. A
//! failure prints the target, the seed and the input in hex: turn it into a
//! regression test beside the code it broke (fuzz/README.md).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

#[path = "common/pcap.rs"]
mod common;

#[path = "../fuzz/fuzz_targets/core.rs"]
mod core_input;
#[path = "../fuzz/fuzz_targets/dhcp.rs"]
mod dhcp;
#[path = "../fuzz/fuzz_targets/ethernet.rs"]
mod ethernet;
#[path = "../fuzz/fuzz_targets/icmpv4.rs"]
mod icmpv4;
#[path = "../fuzz/fuzz_targets/icmpv6.rs"]
mod icmpv6;
#[path = "../fuzz/fuzz_targets/ip.rs"]
mod ip;
#[path = "../fuzz/fuzz_targets/ipc.rs"]
mod ipc;
#[path = "../fuzz/fuzz_targets/ipv4.rs"]
mod ipv4;
#[path = "../fuzz/fuzz_targets/ipv6.rs"]
mod ipv6;
#[path = "../fuzz/fuzz_targets/link.rs"]
mod link;
#[path = "../fuzz/fuzz_targets/tcp.rs"]
mod tcp;
#[path = "../fuzz/fuzz_targets/udp.rs"]
mod udp;

use ustack::ipc::{Reply, Request};
use ustack::rand::Rng;

/// Indices from the project's seeded generator.
trait Pick {
    fn pick(&mut self, n: usize) -> usize;
}

impl Pick for Rng {
    fn pick(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }
}

/// Values that sit on the edges parsers get wrong.
const EDGES: [u8; 8] = [0, 1, 0x7f, 0x80, 0xfe, 0xff, 20, 40];

/// One to four mutations of `input`, some splicing in `other`.
fn mutate(rng: &mut Rng, input: &mut Vec<u8>, other: &[u8]) {
    for _ in 0..1 + rng.pick(4) {
        let len = input.len();
        match rng.pick(8) {
            0 if len > 0 => input[rng.pick(len)] ^= 1 << rng.pick(8),
            1 if len > 0 => input[rng.pick(len)] = EDGES[rng.pick(EDGES.len())],
            2 if len > 1 => {
                // A 16-bit field (a length, a checksum, a port) at an edge.
                let at = rng.pick(len - 1);
                let v: u16 =
                    [0, 1, 0x7fff, 0x8000, 0xffff, len as u16, (len as u16) ^ 1][rng.pick(7)];
                input[at..at + 2].copy_from_slice(&v.to_be_bytes());
            }
            3 => input.truncate(rng.pick(len + 1)),
            4 => {
                let n = 1 + rng.pick(64);
                let at = rng.pick(len + 1);
                let extra: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
                input.splice(at..at, extra);
            }
            5 if !other.is_empty() => {
                let from = rng.pick(other.len());
                let to = from + rng.pick(other.len() - from + 1);
                let at = rng.pick(len + 1);
                input.splice(at..at, other[from..to].iter().copied());
            }
            6 if len > 0 => {
                let from = rng.pick(len);
                let to = (from + 1 + rng.pick(16)).min(len);
                let chunk = input[from..to].to_vec();
                input.splice(from..from, chunk);
            }
            _ => {
                let n = rng.pick(128);
                *input = (0..n).map(|_| rng.next_u64() as u8).collect();
            }
        }
    }
}

/// The seeds: every fixture packet, whole and as its IP payload, and the
/// control protocol's messages.
fn seeds() -> Vec<Vec<u8>> {
    let mut out = vec![Vec::new()];
    let mut names: Vec<String> = std::fs::read_dir(common::dir())
        .expect("tests/fixtures")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".pcap"))
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no pcap fixtures to seed from");
    for name in names {
        for p in common::records(&name) {
            let header = match p.first().map(|b| b >> 4) {
                Some(4) => usize::from(p[0] & 0xf) * 4,
                Some(6) => 40,
                _ => 0,
            };
            if header > 0 && header < p.len() {
                let payload = &p[header..];
                // The core target's record form: a segment for the live
                // connection, then time passing.
                if let Ok(n) = u8::try_from(payload.len()) {
                    out.push([&[1, n][..], payload, &[3, 20]].concat());
                }
                out.push(payload.to_vec());
            }
            out.push(p);
        }
    }
    let a4 = "10.77.0.2:80".parse().unwrap();
    let a6 = "[fd77::2]:443".parse().unwrap();
    for r in [
        Request::Socket {
            v6: true,
            tcp: true,
        },
        Request::Bind(a4),
        Request::Connect(Some(a6)),
        Request::Listen(128),
        Request::SetOpt {
            level: 6,
            name: 1,
            value: vec![1, 0, 0, 0],
        },
        Request::Status,
    ] {
        out.push(r.encode());
    }
    out.push(Reply::err(13).encode());
    // DHCP messages and a router advertisement with every option the
    // parsers read.
    let mac = ustack::wire::ethernet::MacAddr([2, 0, 0, 0, 0, 7]);
    for kind in [
        ustack::wire::dhcp::MessageType::Offer,
        ustack::wire::dhcp::MessageType::Ack,
        ustack::wire::dhcp::MessageType::Nak,
    ] {
        let mut m = ustack::wire::dhcp::DhcpRepr::client(kind, 1, mac);
        let a = std::net::Ipv4Addr::new(10, 99, 0, 1);
        m.your_addr = std::net::Ipv4Addr::new(10, 99, 0, 57);
        m.server_id = Some(a);
        m.subnet_mask = Some(std::net::Ipv4Addr::new(255, 255, 255, 0));
        m.router = Some(a);
        m.dns_servers = vec![a, a];
        m.lease_time = Some(120);
        m.renewal_time = Some(60);
        m.rebinding_time = Some(105);
        let mut b = vec![0; m.buffer_len()];
        m.emit(&mut b).unwrap();
        out.push(b);
    }
    let ra = ustack::wire::ndp::RouterAdvert {
        hop_limit: 64,
        managed: false,
        other: false,
        router_lifetime: 1800,
        source_mac: Some(mac),
        mtu: Some(1500),
        prefixes: vec![ustack::wire::ndp::PrefixInfo {
            prefix: "fd77::".parse().unwrap(),
            len: 64,
            on_link: true,
            autonomous: true,
            valid: 7200,
            preferred: 3600,
        }],
    };
    let mut b = vec![0; ra.buffer_len()];
    ra.emit(
        &mut b,
        "fe80::1".parse().unwrap(),
        "ff02::1".parse().unwrap(),
    )
    .unwrap();
    out.push(b);
    out.extend(link_seeds());
    out
}

/// Seeds for the link layer: Linux's ARP request as read from a TAP
/// device (the frame, and the link target's records for it), a neighbour
/// solicitation for fd77::2 in the link target's record form, a datagram
/// to resolve and time passing.
fn link_seeds() -> Vec<Vec<u8>> {
    use ustack::wire::ndp::{NdpRepr, solicited_node};
    let hex =
        "ffffffffffff020000000001080600010800060400010200000000010a0000010000000000000a000002";
    let frame: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let arp = frame[14..].to_vec();
    let target: std::net::Ipv6Addr = "fd77::2".parse().unwrap();
    let ns = NdpRepr::NeighborSolicit {
        target,
        source_mac: Some(ustack::wire::ethernet::MacAddr([2, 0, 0, 0, 0, 1])),
    };
    let mut msg = vec![0u8; ns.buffer_len()];
    let src: std::net::Ipv6Addr = "fe80::1".parse().unwrap();
    let n = ns
        .emit(&mut msg, src, solicited_node(target))
        .expect("an NS emits");
    msg.truncate(n);
    let mut records = vec![1, arp.len() as u8];
    records.extend_from_slice(&arp);
    records.extend_from_slice(&[2, msg.len() as u8]);
    records.extend_from_slice(&msg);
    records.extend_from_slice(&[4, 9, 0, 1, 2, 3, 4, 5, 6, 7, 8, 5, 120]);
    vec![
        frame.clone(),
        arp,
        msg,
        records,
        [&[0, frame.len() as u8][..], &frame].concat(),
    ]
}

fn budget() -> Duration {
    let ms = std::env::var("USTACK_FUZZ_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1500);
    Duration::from_millis(ms)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Runs `target` on every seed, then on mutations until the budget is
/// spent; fails with the input that panicked.
fn fuzz(name: &str, target: fn(&[u8])) {
    let seed = std::env::var("USTACK_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    let corpus = seeds();
    let mut rng = Rng::new(seed);
    let check = |input: &[u8], runs: u64| {
        if catch_unwind(AssertUnwindSafe(|| target(input))).is_err() {
            panic!(
                "fuzz target {name} failed (USTACK_FUZZ_SEED={seed}, input {runs}) on {} bytes: {}",
                input.len(),
                hex(input)
            );
        }
    };
    for (i, s) in corpus.iter().enumerate() {
        check(s, i as u64);
    }
    let start = Instant::now();
    let mut runs = corpus.len() as u64;
    while start.elapsed() < budget() {
        for _ in 0..256 {
            let mut input = corpus[rng.pick(corpus.len())].clone();
            let other = &corpus[rng.pick(corpus.len())];
            mutate(&mut rng, &mut input, other);
            check(&input, runs);
            runs += 1;
        }
    }
    println!(
        "fuzz {name}: {runs} inputs in {:.1} s ({} seeds), USTACK_FUZZ_SEED={seed}",
        start.elapsed().as_secs_f64(),
        corpus.len()
    );
}

#[test]
fn fuzz_ipv4() {
    fuzz("ipv4", ipv4::run);
}

#[test]
fn fuzz_ipv6() {
    fuzz("ipv6", ipv6::run);
}

#[test]
fn fuzz_ip() {
    fuzz("ip", ip::run);
}

#[test]
fn fuzz_tcp() {
    fuzz("tcp", tcp::run);
}

#[test]
fn fuzz_udp() {
    fuzz("udp", udp::run);
}

#[test]
fn fuzz_icmpv4() {
    fuzz("icmpv4", icmpv4::run);
}

#[test]
fn fuzz_icmpv6() {
    fuzz("icmpv6", icmpv6::run);
}

#[test]
fn fuzz_core_input() {
    fuzz("core", core_input::run);
}

#[test]
fn fuzz_dhcp_and_router_adverts() {
    fuzz("dhcp", dhcp::run);
}

#[test]
fn fuzz_ethernet() {
    fuzz("ethernet", ethernet::run);
}

#[test]
fn fuzz_link() {
    fuzz("link", link::run);
}

#[test]
fn fuzz_ipc() {
    fuzz("ipc", ipc::run);
}

/// The harness itself: a target that panics on one byte pattern is caught,
/// and the message names the input (a fuzz run that cannot fail proves
/// nothing).
#[test]
fn the_harness_reports_a_panicking_input() {
    fn fragile(data: &[u8]) {
        assert!(!data.starts_with(&[0x45]), "an IPv4 header");
    }
    let r = catch_unwind(|| fuzz("fragile", fragile));
    let msg = r.expect_err("a seed starts with 0x45: the harness must fail");
    let text = msg.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        text.contains("fuzz target fragile failed") && text.contains("USTACK_FUZZ_SEED="),
        "{text}"
    );
}
