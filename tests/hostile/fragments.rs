//! Overlapping, tiny and inconsistent fragments of echo requests, against
//! ustack and against Linux, which must agree (RFC 5722: a datagram with
//! overlapping fragments is dropped whole, IPv6 and, as Linux since 4.19,
//! IPv4; exact duplicates are ignored; tiny fragments reassemble); and
//! floods of first fragments that never complete (memory bounded, the
//! counters show what was evicted, and reassembly works afterwards).

use std::net::IpAddr;
use std::time::Instant;

use crate::harness::{self, HK_KERNEL4, HK_KERNEL6, HK_PEER4, HK_PEER6, Wire};
use crate::pkt::{self, PROTO_ICMP, PROTO_ICMP6, V4};

/// One fragment of datagram `ident` from `src` to `dst`.
fn fragment(src: IpAddr, dst: IpAddr, ident: u32, off: usize, more: bool, data: &[u8]) -> Vec<u8> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => V4 {
            ident: ident as u16,
            more_frags: more,
            frag_offset: off,
            ..V4::new(s, d, PROTO_ICMP)
        }
        .packet(data),
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            pkt::v6_fragment(s, d, PROTO_ICMP6, ident, off, more, data)
        }
        _ => unreachable!(),
    }
}

/// The cases: name, pieces `(start, end, more)` of a 64-byte echo
/// request, and whether a reply is the right answer.
type Case = (&'static str, &'static [(usize, usize, bool)], bool);
const CASES: &[Case] = &[
    ("whole, in two", &[(0, 32, true), (32, 64, false)], true),
    (
        "tiny: eight bytes each",
        &[
            (0, 8, true),
            (8, 16, true),
            (16, 24, true),
            (24, 32, true),
            (32, 40, true),
            (40, 48, true),
            (48, 56, true),
            (56, 64, false),
        ],
        true,
    ),
    ("tiny, last first", &[(56, 64, false), (0, 56, true)], true),
    (
        "exact duplicate",
        &[(0, 24, true), (0, 24, true), (24, 64, false)],
        true,
    ),
    (
        "overlap",
        &[(0, 24, true), (16, 40, true), (40, 64, false)],
        false,
    ),
    // Linux takes a fragment inside data it holds for a duplicate
    // (inet_frag_queue_insert, RFC 5722 erratum 3089): ignored.
    (
        "inside held data",
        &[(0, 40, true), (8, 16, true), (40, 64, false)],
        true,
    ),
    (
        "overlap of the last",
        &[(32, 64, false), (0, 40, true)],
        false,
    ),
    (
        "two different ends",
        &[(0, 24, true), (40, 64, false), (24, 48, false)],
        false,
    ),
];

/// Runs every case; returns whether each got its reply.
fn run(wire: &Wire, src: IpAddr, dst: IpAddr, first_ident: u32) -> Vec<bool> {
    let mut got = Vec::new();
    for (i, (name, pieces, _)) in CASES.iter().enumerate() {
        let echo_id = 0x7000 + i as u16;
        let data: Vec<u8> = (0..56).map(|b| b as u8 ^ i as u8).collect();
        let m = pkt::echo_request_message(src, dst, echo_id, &data);
        assert_eq!(m.len(), 64);
        for &(a, b, more) in pieces.iter() {
            wire.send(&fragment(
                src,
                dst,
                first_ident + i as u32,
                a,
                more,
                &m[a..b],
            ));
        }
        let seen = wire.barrier(src, dst);
        let replied = seen
            .iter()
            .any(|p| pkt::echo_reply_ident(p) == Some(echo_id));
        println!("  {name}: {}", if replied { "reply" } else { "dropped" });
        got.push(replied);
    }
    got
}

#[test]
fn overlapping_and_tiny_fragments_are_treated_as_linux_treats_them() {
    let linux = harness::in_netns(|| {
        let (_dev, wire) = harness::kernel_bench();
        [
            run(&wire, IpAddr::V4(HK_PEER4), IpAddr::V4(HK_KERNEL4), 100),
            run(&wire, IpAddr::V6(HK_PEER6), IpAddr::V6(HK_KERNEL6), 100),
        ]
    });
    let ours = harness::in_netns(|| {
        let (stack, wire) = harness::stack_bench(Default::default());
        let out = [
            run(
                &wire,
                IpAddr::V4(harness::spoof4(2)),
                IpAddr::V4(harness::STACK4),
                100,
            ),
            run(
                &wire,
                IpAddr::V6(harness::spoof6(2)),
                IpAddr::V6(harness::STACK6),
                100,
            ),
        ];
        let (r, held, _) = stack.reassembly();
        println!("ustack reassembly after the cases: {r:?}, {held} bytes held");
        assert!(r.overlaps >= 2 * 2, "overlaps counted: {r:?}");
        stack.shutdown();
        out
    });
    let want: Vec<bool> = CASES.iter().map(|c| c.2).collect();
    for (fam, (l, o)) in ["IPv4", "IPv6"].iter().zip(linux.iter().zip(ours.iter())) {
        assert_eq!(l, &want, "{fam}: Linux answered as expected");
        assert_eq!(o, &want, "{fam}: ustack answers as Linux");
    }
}

/// First fragments that never complete, from many spoofed sources, paced
/// by barriers so every one reaches the stack.
fn flood(wire: &Wire, stack: &ustack::api::Stack, v6: bool, n: usize) {
    let dst = if v6 {
        IpAddr::V6(harness::STACK6)
    } else {
        IpAddr::V4(harness::STACK4)
    };
    let me = |k: usize| {
        if v6 {
            IpAddr::V6(harness::spoof6(k as u16 % 4000 + 10))
        } else {
            IpAddr::V4(harness::spoof4(k as u16 % 4000 + 10))
        }
    };
    let (before, _, _) = stack.reassembly();
    let chunk = vec![0xa5u8; 1200];
    let t = Instant::now();
    for k in 0..n {
        wire.send(&fragment(me(k), dst, 0x10000 + k as u32, 0, true, &chunk));
        if k % 300 == 299 {
            wire.barrier(me(0), dst);
        }
    }
    wire.barrier(me(0), dst);
    let secs = t.elapsed().as_secs_f64();
    let (after, held, in_progress) = stack.reassembly();
    println!(
        "ustack {}: {n} never-completed first fragments of 1200 bytes in {secs:.2} s: fragments_in +{}, evictions +{}, refused +{}, held {held} bytes in {in_progress} datagrams",
        if v6 { "IPv6" } else { "IPv4" },
        after.fragments_in - before.fragments_in,
        after.evictions - before.evictions,
        after.refused - before.refused,
    );
    assert_eq!(
        after.fragments_in - before.fragments_in,
        n as u64,
        "every fragment reached reassembly"
    );
    assert!(held <= 4 << 20, "held {held} bytes, over the 4 MiB limit");
    assert!(in_progress <= 256, "{in_progress} datagrams in progress");
    assert!(
        after.evictions + after.refused > before.evictions + before.refused,
        "the flood had to evict or refuse"
    );
    // A real fragmented datagram still gets through.
    let m = pkt::echo_request_message(me(1), dst, 0x7eee, &[7u8; 2992]);
    for (a, b) in [(0, 1400), (1400, 2800), (2800, m.len())] {
        wire.send(&fragment(me(1), dst, 0x5eed, a, b < m.len(), &m[a..b]));
    }
    let seen = wire.barrier(me(1), dst);
    assert!(
        seen.iter()
            .any(|p| pkt::echo_reply_ident(p) == Some(0x7eee)),
        "a complete fragmented echo request after the flood is answered"
    );
}

#[test]
fn fragment_floods_that_never_complete_stay_within_the_reassembly_limits() {
    harness::in_netns(|| {
        let (stack, wire) = harness::stack_bench(Default::default());
        flood(&wire, &stack, false, 6000);
        flood(&wire, &stack, true, 6000);
        let c = stack.counters();
        println!(
            "ustack counters: frag_errors {} reassembled {}",
            c.frag_errors, c.reassembled
        );
    });
}
