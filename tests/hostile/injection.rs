//! Blind in-window RST, SYN and data injection (RFC 5961): an attacker
//! who knows the 4-tuple and a sequence number inside the window, but not
//! the exact one nor the acknowledgment, must not reset the connection or
//! put bytes into it; the victim answers with challenge ACKs, rate-limited
//! (section 7), and the connection goes on with its data intact.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use crate::harness::{self, HK_KERNEL4, HK_KERNEL6, HK_PEER4, HK_PEER6, Peer, Wire, segs_to};
use crate::pkt::{ACK, PSH, RST, SYN};

const EACH: u32 = 100;

#[derive(Debug, Default)]
struct Outcome {
    rst_challenges: usize,
    syn_challenges: usize,
    data_challenges: usize,
}

/// A challenge ACK: a bare ACK of exactly what we really sent.
fn challenges(packets: &[Vec<u8>], p: &Peer<'_>) -> usize {
    let segs = segs_to(packets, p.me);
    for s in &segs {
        assert!(!s.has(RST), "the victim sent a reset: {s:?}");
    }
    segs.iter()
        .filter(|s| s.has(ACK) && s.tcp.payload.is_empty() && s.tcp.ack == p.snd_nxt)
        .count()
}

/// Two rounds on one connection: a few of each kind (within the rate
/// limit, so each kind's own answer shows), then a flood of each.
fn attack(wire: &Wire, me: SocketAddr, them: SocketAddr) -> [Outcome; 2] {
    let mut p = Peer::connect(wire, me, them, 0x1000_0000);
    p.send_data(b"hello");
    assert_eq!(p.read_exact(5), b"hello");
    let out = [round(wire, &p, 3), round(wire, &p, EACH)];
    // The connection is alive, and none of the attacker's bytes got in.
    p.send_data(b"world");
    assert_eq!(p.read_exact(5), b"world", "the echo carries only our bytes");
    out
}

fn round(wire: &Wire, p: &Peer<'_>, each: u32) -> Outcome {
    let (me, them) = (p.me, p.them);
    let window = u32::from(p.their_window);
    assert!(window > 2000, "a window to aim into: {window}");
    let mut out = Outcome::default();

    // RSTs inside the window but not at rcv_nxt (RFC 5961 section 3.2).
    for i in 0..each {
        let mut t = p.seg(RST, &[], b"");
        t.seq = p.snd_nxt.wrapping_add(1 + i * (window / 2 / each));
        p.send_seg(&t);
    }
    out.rst_challenges = challenges(&wire.barrier(me.ip(), them.ip()), p);

    // SYNs inside the window (section 4.2).
    for i in 0..each {
        let mut t = p.seg(SYN, &[2, 4, 0x05, 0xb4], b"");
        t.seq = p.snd_nxt.wrapping_add(i * 7);
        p.send_seg(&t);
    }
    out.syn_challenges = challenges(&wire.barrier(me.ip(), them.ip()), p);

    // Data at exactly rcv_nxt, but with an acknowledgment the attacker had
    // to guess, far outside [snd_una - max_snd_wnd, snd_nxt] (section 5.2).
    for _ in 0..each {
        let mut t = p.seg(ACK | PSH, &[], b"EVIL");
        t.ack = p.rcv_nxt.wrapping_sub(0x4000_0000);
        p.send_seg(&t);
    }
    out.data_challenges = challenges(&wire.barrier(me.ip(), them.ip()), p);
    out
}

#[test]
fn blind_in_window_rst_syn_and_data_get_challenge_acks_and_the_connection_survives() {
    harness::in_netns(|| {
        let (stack, wire) = harness::stack_bench(Default::default());
        for (me, them) in [
            (
                SocketAddr::new(IpAddr::V4(harness::spoof4(1)), 40001),
                SocketAddr::new(IpAddr::V4(harness::STACK4), 7001),
            ),
            (
                SocketAddr::new(IpAddr::V6(harness::spoof6(1)), 40001),
                SocketAddr::new(IpAddr::V6(harness::STACK6), 7001),
            ),
        ] {
            crate::stack_echo(&stack, them);
            let before = stack.tcp_counters();
            let t = Instant::now();
            let out = attack(&wire, me, them);
            let secs = t.elapsed().as_secs() + 1;
            let after = stack.tcp_counters();
            let counted = after.challenge_acks - before.challenge_acks;
            println!(
                "ustack {}: 3, then {EACH}, each of RST/SYN/bad-ACK data -> challenge ACKs on the wire {out:?}, counted {counted}, RSTs sent {}",
                them.ip(),
                after.rsts_out - before.rsts_out
            );
            // Within the limit, each kind is challenged.
            assert!(out[0].rst_challenges >= 1, "an in-window RST is challenged");
            assert!(out[0].syn_challenges >= 1, "an in-window SYN is challenged");
            assert!(out[0].data_challenges >= 1, "a bad ACK is challenged");
            // Rate-limited: at most CHALLENGE_ACK_LIMIT (10, src/tcp/input.rs)
            // per second and connection.
            let limit = 10 * secs;
            assert!(counted <= limit, "{counted} challenge ACKs in {secs} s");
            assert_eq!(after.rsts_out, before.rsts_out, "no RST sent");
        }
        stack.shutdown();
    });
}

#[test]
fn kernel_stand_in_survives_the_same_blind_injection() {
    harness::in_netns(|| {
        let (_dev, wire) = harness::kernel_bench();
        for (me, them) in [
            (
                SocketAddr::new(IpAddr::V4(HK_PEER4), 40001),
                SocketAddr::new(IpAddr::V4(HK_KERNEL4), 7001),
            ),
            (
                SocketAddr::new(IpAddr::V6(HK_PEER6), 40001),
                SocketAddr::new(IpAddr::V6(HK_KERNEL6), 7001),
            ),
        ] {
            crate::kernel_echo(them);
            let out = attack(&wire, me, them);
            println!(
                "linux {}: 3, then {EACH}, each of RST/SYN/bad-ACK data -> challenge ACKs on the wire {out:?}",
                them.ip()
            );
        }
    });
}
