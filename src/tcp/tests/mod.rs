//! Connection-level tests: segments crafted by hand or exchanged between
//! two engines, one file per concern. Each test is named after the rule it
//! pins.

mod close;
mod data;
mod ecn;
mod handshake;
mod hostile;
mod push;
mod recovery;
mod rst;
mod timers;

use super::{Connection, State, TcpConfig};
use crate::time::Instant;
use crate::wire::tcp::{TcpFlags, TcpRepr};
use std::net::SocketAddr;
use std::time::Duration;

pub const ISS_A: u32 = 1000;
pub const ISS_B: u32 = 5000;

pub fn addr_a() -> SocketAddr {
    "10.0.0.1:40000".parse().unwrap()
}

pub fn addr_b() -> SocketAddr {
    "10.0.0.2:80".parse().unwrap()
}

/// A plain configuration: no timestamps, so sequence checks are exact, and
/// fixed 64 KiB buffers (a maximum of 0 turns auto-tuning off).
pub fn cfg() -> TcpConfig {
    let mut cfg = TcpConfig::for_mtu(1040, false);
    cfg.timestamps = false;
    cfg.recv_buf = 64 * 1024;
    cfg.recv_buf_max = 0;
    cfg.send_buf = 64 * 1024;
    cfg.send_buf_max = 0;
    cfg
}

pub fn t(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

pub type Seg = (TcpRepr, Vec<u8>);

/// Everything `c` has to send at `now`.
pub fn out(c: &mut Connection, now: Instant) -> Vec<Seg> {
    let mut v = Vec::new();
    c.poll_transmit(now, |r, p| v.push((*r, p.to_vec())));
    v
}

/// A segment from B's side (ports B -> A) or any side, by hand.
pub fn seg(seq: u32, ack: u32, flags: TcpFlags) -> TcpRepr {
    TcpRepr {
        src_port: 80,
        dst_port: 40000,
        seq,
        ack,
        flags,
        window: 65535,
        ..TcpRepr::default()
    }
}

pub fn feed(c: &mut Connection, now: Instant, segs: &[Seg]) {
    for (r, p) in segs {
        c.on_segment(now, r, p);
    }
}

/// Exchanges segments between `a` and `b` at `now` until both are quiet;
/// returns how many segments moved.
pub fn pump(a: &mut Connection, b: &mut Connection, now: Instant) -> usize {
    let mut moved = 0;
    for _ in 0..10_000 {
        let from_a = out(a, now);
        let from_b = out(b, now);
        if from_a.is_empty() && from_b.is_empty() {
            return moved;
        }
        moved += from_a.len() + from_b.len();
        feed(b, now, &from_a);
        feed(a, now, &from_b);
    }
    panic!("pump did not settle");
}

/// A connected pair (A connected to B) at `t(0)`.
pub fn pair_with(cfg_a: TcpConfig, cfg_b: TcpConfig) -> (Connection, Connection) {
    let now = t(0);
    let mut a = Connection::connect(cfg_a, addr_a(), addr_b(), ISS_A, now);
    let syn = out(&mut a, now);
    assert_eq!(syn.len(), 1);
    let mut b = Connection::accept(cfg_b, addr_b(), addr_a(), &syn[0].0, ISS_B, now);
    pump(&mut a, &mut b, now);
    assert_eq!(a.state(), State::Established);
    assert_eq!(b.state(), State::Established);
    (a, b)
}

pub fn pair() -> (Connection, Connection) {
    pair_with(cfg(), cfg())
}

/// Reads everything readable.
pub fn read_all(c: &mut Connection) -> Vec<u8> {
    let mut v = Vec::new();
    let mut buf = [0u8; 2048];
    while let Ok(n) = c.recv(&mut buf) {
        if n == 0 {
            break;
        }
        v.extend_from_slice(&buf[..n]);
    }
    v
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}
