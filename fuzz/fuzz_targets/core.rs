//! The core's whole input path with live state: a stack (10.77.0.2) with
//! TCP listeners on both families and an established connection to a peer
//! core (10.77.0.1:40000 -> 10.77.0.2:80) takes a sequence of crafted
//! packets, then both cores run until quiet. Never a panic, and the stack
//! answers a fresh connection afterwards (hostile input leaves it serving).
//!
//! The input is records `[kind, len, bytes...]`: kind 0 is a raw datagram;
//! 1 a TCP segment from the peer to the live connection's ports (wrapped in
//! IPv4, checksum fixed, so it reaches the connection); 2 the same over
//! IPv6 to the IPv6 listener; 3 lets `len` milliseconds pass with the two
//! cores exchanging what they send.
#![cfg_attr(fuzzing, no_main)]

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use ustack::Instant;
use ustack::stack::{Core, CoreConfig};
use ustack::wire::{IpAddr, IpHeader, IpProtocol, checksum};

const US: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
const PEER: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
const US6: Ipv6Addr = Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 2);
const PEER6: Ipv6Addr = Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 1);

/// Moves each core's output to the other for `ms` milliseconds.
fn exchange(a: &mut Core, b: &mut Core, now: &mut Instant, ms: u64) {
    let mut out = Vec::new();
    for _ in 0..ms.max(1) {
        a.poll_transmit(*now, &mut out);
        for p in out.drain(..) {
            b.input(*now, &p);
        }
        b.poll_transmit(*now, &mut out);
        for p in out.drain(..) {
            a.input(*now, &p);
        }
        *now += Duration::from_millis(1);
    }
}

/// `seg` as a TCP segment from the peer to us: ports forced to the given
/// pair, checksum right, inside an IP datagram.
fn wrap(seg: &[u8], v6: bool, ports: (u16, u16)) -> Option<Vec<u8>> {
    if seg.len() < 20 {
        return None;
    }
    let (src, dst): (IpAddr, IpAddr) = if v6 {
        (PEER6.into(), US6.into())
    } else {
        (PEER.into(), US.into())
    };
    let mut tcp = seg.to_vec();
    tcp[0..2].copy_from_slice(&ports.0.to_be_bytes());
    tcp[2..4].copy_from_slice(&ports.1.to_be_bytes());
    tcp[16] = 0;
    tcp[17] = 0;
    let pseudo = checksum::pseudo_header(src, dst, IpProtocol::Tcp, tcp.len()).ok()?;
    let sum = !checksum::combine(&[pseudo, checksum::data(&tcp)]);
    tcp[16..18].copy_from_slice(&sum.to_be_bytes());
    let h = IpHeader {
        src,
        dst,
        protocol: IpProtocol::Tcp,
        payload_len: tcp.len(),
        hop_limit: 64,
        ident: 1,
        dont_frag: true,
        ecn: 0,
    };
    let mut packet = vec![0u8; h.buffer_len()];
    let n = h.emit(&mut packet).ok()?;
    packet.truncate(n);
    packet.extend_from_slice(&tcp);
    Some(packet)
}

/// The property: libFuzzer calls it (built by cargo-fuzz, `cfg(fuzzing)`),
/// and so does the stable run in the suite, `tests/fuzz_targets.rs`.
pub fn run(data: &[u8]) {
    let mut a = Core::new(CoreConfig::default());
    let mut b = Core::new(CoreConfig {
        addr: PEER,
        addr6: PEER6,
        seed: 5,
        ..CoreConfig::default()
    });
    let mut now = Instant::ZERO;
    let l4 = a.tcp_mut().socket(false).expect("socket");
    a.tcp_mut()
        .bind(l4, SocketAddr::from((US, 80)))
        .expect("bind");
    a.tcp_mut().listen(l4, 8).expect("listen");
    let l6 = a.tcp_mut().socket(true).expect("socket");
    a.tcp_mut()
        .bind(l6, SocketAddr::from((US6, 80)))
        .expect("bind");
    a.tcp_mut().listen(l6, 8).expect("listen");
    let c = b.tcp_mut().socket(false).expect("socket");
    b.tcp_mut()
        .bind(c, SocketAddr::from((PEER, 40000)))
        .expect("bind");
    b.tcp_mut()
        .connect(now, c, SocketAddr::from((US, 80)))
        .expect("connect");
    exchange(&mut a, &mut b, &mut now, 5);
    let (s, _) = a.tcp_mut().accept(l4).expect("the handshake completes");
    let _ = b.tcp_mut().send(c, b"hello from the peer");
    let _ = a.tcp_mut().send(s, b"hello from the stack");
    exchange(&mut a, &mut b, &mut now, 5);

    let mut rest = data;
    while let [kind, len, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        let (body, next) = tail.split_at(n);
        rest = next;
        match kind % 4 {
            0 => a.input(now, body),
            1 => {
                if let Some(p) = wrap(body, false, (40000, 80)) {
                    a.input(now, &p);
                }
            }
            2 => {
                if let Some(p) = wrap(body, true, (40001, 80)) {
                    a.input(now, &p);
                }
            }
            _ => exchange(&mut a, &mut b, &mut now, u64::from(*len)),
        }
        let mut buf = [0u8; 4096];
        let _ = a.tcp_mut().recv(s, &mut buf, false);
        let _ = a.tcp_mut().accept(l4);
        let _ = a.tcp_mut().accept(l6);
    }
    exchange(&mut a, &mut b, &mut now, 50);

    // Still serving: a new connection from another port completes.
    let c2 = b.tcp_mut().socket(false).expect("socket");
    b.tcp_mut()
        .bind(c2, SocketAddr::from((PEER, 40002)))
        .expect("bind");
    b.tcp_mut()
        .connect(now, c2, SocketAddr::from((US, 80)))
        .expect("connect");
    exchange(&mut a, &mut b, &mut now, 20);
    let mut served = false;
    while let Ok((_, from)) = a.tcp_mut().accept(l4) {
        served |= from == SocketAddr::from((PEER, 40002));
    }
    assert!(served, "after hostile input the stack no longer accepts");
}

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));
