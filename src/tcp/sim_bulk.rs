//! Bulk transfer over a low-RTT lossy link, the shape of the kernel-over-TUN
//! tests: 30 µs one way, 2.5% loss, 1% duplication, 1% reordering. At such
//! an RTT every timer stall (a 40 ms delayed ACK, a 200 ms RTO) dwarfs the
//! transfer itself, so the simulated duration measures how rarely recovery
//! falls back to timers.

use super::sim::Rng;
use super::{Connection, TcpConfig};
use crate::time::Instant;
use crate::wire::tcp::{TcpFlags, TcpRepr};
use std::time::Duration;

struct InFlight {
    at: Instant,
    id: u64,
    to_b: bool,
    repr: TcpRepr,
    payload: Vec<u8>,
}

/// Moves `bytes` from A to B; returns the simulated time it took and A's
/// RTO count.
fn bulk(seed: u64, bytes: usize) -> (Duration, u64) {
    let mut rng = Rng(seed);
    let a_addr = "10.0.0.1:1000".parse().unwrap();
    let b_addr = "10.0.0.2:80".parse().unwrap();
    let start = Instant::from_millis(1000);
    let mut now = start;
    let mut a = Connection::connect(TcpConfig::default(), a_addr, b_addr, 1, now);
    let mut b: Option<Connection> = None;
    let mut net: Vec<InFlight> = Vec::new();
    let mut next_id = 0;
    let data = vec![0x5a; bytes];
    let (mut sent, mut got) = (0, 0);
    let mut buf = vec![0; 1 << 16];
    while got < bytes && now - start < Duration::from_secs(30) {
        sent += a.send(&data[sent..]).unwrap_or(0);
        let mut out = Vec::new();
        a.poll_transmit(now, |r, p| out.push((true, *r, p.to_vec())));
        if let Some(b) = b.as_mut() {
            while let Ok(n) = b.recv(&mut buf) {
                if n == 0 {
                    break;
                }
                got += n;
            }
            b.poll_transmit(now, |r, p| out.push((false, *r, p.to_vec())));
        }
        for (to_b, repr, payload) in out {
            if rng.chance(25) {
                continue;
            }
            let copies = if rng.chance(10) { 2 } else { 1 };
            for _ in 0..copies {
                let extra = if rng.chance(10) { 300 } else { 0 };
                net.push(InFlight {
                    at: now + Duration::from_micros(30 + extra),
                    id: next_id,
                    to_b,
                    repr,
                    payload: payload.clone(),
                });
                next_id += 1;
            }
        }
        let arrival = net.iter().map(|p| p.at).min();
        let timers = [a.poll_at(), b.as_ref().and_then(|b| b.poll_at())];
        let Some(next) = timers.into_iter().chain([arrival]).flatten().min() else {
            break;
        };
        now = now.max(next);
        net.sort_by_key(|p| (p.at, p.id));
        let due = net.iter().take_while(|p| p.at <= now).count();
        for p in net.drain(..due) {
            if !p.to_b {
                a.on_segment(now, &p.repr, &p.payload);
            } else if let Some(b) = b.as_mut() {
                b.on_segment(now, &p.repr, &p.payload);
            } else if p.repr.flags == TcpFlags::SYN {
                let cfg = TcpConfig::default();
                b = Some(Connection::accept(cfg, b_addr, a_addr, &p.repr, 7, now));
            }
        }
    }
    assert_eq!(got, bytes, "seed {seed}: transfer incomplete");
    let c = a.counters();
    eprintln!(
        "bulk seed {seed}: segs_out {} retransmits {} recoveries {} undone {} RTOs {} TLPs {} recovery probes {}",
        c.segs_out,
        c.retransmits,
        c.fast_retransmits,
        c.spurious_undos,
        c.rto_expiries,
        c.tlp_probes,
        c.recovery_probes
    );
    (now - start, c.rto_expiries)
}

#[test]
fn low_rtt_bulk_through_loss_rarely_waits_for_timers() {
    let mut total = Duration::ZERO;
    let mut rtos = 0;
    for seed in 1..=5 {
        let (took, rto) = bulk(seed, 8 << 20);
        eprintln!("bulk seed {seed}: 8 MiB in {took:?}, {rto} RTOs");
        total += took;
        rtos += rto;
    }
    // 5 x 8 MiB took 4.8 s when the tail loss probe sent new data and a
    // partial cwnd sent nothing, 2.9 s with only the probe changed, and
    // 1.8 s with both changes; 1.3 s before the recovery probe and the
    // second tail loss probe (three RTOs), 0.65 s after (none).
    assert!(
        total < Duration::from_millis(1000),
        "took {total:?} ({rtos} RTOs)"
    );
}
