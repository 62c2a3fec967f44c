//! Malformed TCP options of every kind, on an established connection and
//! in the SYN, against ustack and Linux, which must agree. Linux's
//! tcp_parse_options stops at a length below 2 or beyond the header and
//! takes the segment anyway; options a SYN did not negotiate (MSS, window
//! scale, SACK-permitted, timestamps) are ignored on later segments; a
//! data offset below 5 or beyond the segment drops it.

use std::net::{IpAddr, SocketAddr};

use crate::harness::{self, HK_KERNEL4, HK_KERNEL6, HK_PEER4, HK_PEER6, Peer, Wire};
use crate::pkt::{self, ACK, PROTO_TCP, PSH};

/// Options on data segments of an established connection (no SACK or
/// timestamps negotiated): name, option bytes, data offset override.
const ESTABLISHED: &[(&str, &[u8], Option<u8>)] = &[
    ("length 0", &[2, 0, 5, 180], None),
    ("length 1", &[8, 1, 0, 0], None),
    ("length beyond the header", &[2, 40, 5, 180], None),
    ("truncated MSS", &[1, 1, 1, 2, 4, 5], None),
    ("MSS in a non-SYN", &[2, 4, 0, 1], None),
    ("window scale in a non-SYN", &[1, 3, 3, 14], None),
    ("SACK-permitted in a non-SYN", &[4, 2, 1, 1], None),
    (
        "SACK, not negotiated",
        &[1, 1, 5, 10, 0, 0, 0, 1, 0, 0, 0, 9],
        None,
    ),
    ("SACK of odd length", &[1, 1, 5, 7, 0, 0, 0, 1, 0], None),
    (
        "timestamps, not negotiated",
        &[1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0],
        None,
    ),
    (
        "timestamps of length 9",
        &[8, 9, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0],
        None,
    ),
    ("unknown kind 253", &[253, 6, 1, 2, 3, 4], None),
    ("unknown kind, length 255", &[99, 255, 0, 0], None),
    ("EOL then garbage", &[0, 2, 0, 0, 7, 7, 7, 7], None),
    ("NOPs filling 40 bytes", &[1; 40], None),
    (
        "MD5 signature unasked",
        &[19, 18, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1],
        None,
    ),
    ("data offset 4", &[], Some(4)),
    ("data offset 0", &[], Some(0)),
    ("data offset 15, beyond the segment", &[], Some(15)),
];

/// The segment bytes of `t` with its data offset forced to `doff`.
fn with_doff(t: &pkt::Tcp, src: IpAddr, dst: IpAddr, doff: u8) -> Vec<u8> {
    let mut s = t.segment(src, dst);
    s[12] = doff << 4;
    s[16] = 0;
    s[17] = 0;
    let c = pkt::pseudo_checksum(src, dst, PROTO_TCP, &s);
    s[16..18].copy_from_slice(&c.to_be_bytes());
    pkt::ip_packet(src, dst, PROTO_TCP, &s)
}

/// Each case: the malformed segment carries 4 bytes, then a clean one
/// carries 4 others at the same sequence number; the echo says which one
/// the target took ("bad" or "good").
fn established(wire: &Wire, me: SocketAddr, them: SocketAddr) -> Vec<&'static str> {
    let mut p = Peer::connect(wire, me, them, 0x2000_0000);
    let mut out = Vec::new();
    for (i, (_, opts, doff)) in ESTABLISHED.iter().enumerate() {
        let bad = format!("B{i:02}!");
        let good = format!("G{i:02}!");
        let t = p.seg(ACK | PSH, opts, bad.as_bytes());
        match doff {
            Some(d) => wire.send(&with_doff(&t, me.ip(), them.ip(), *d)),
            None => p.send_seg(&t),
        }
        p.send(ACK | PSH, &[], good.as_bytes());
        p.snd_nxt = p.snd_nxt.wrapping_add(4);
        let echo = p.read_exact(4);
        out.push(if echo == bad.as_bytes() {
            "bad"
        } else {
            assert_eq!(echo, good.as_bytes(), "case {i}");
            "good"
        });
    }
    out
}

/// Options in the SYN: name and bytes (after our MSS 1460 unless the case
/// replaces it).
const SYN_CASES: &[(&str, &[u8])] = &[
    ("MSS 0", &[2, 4, 0, 0]),
    ("MSS 1", &[2, 4, 0, 1]),
    ("MSS 40", &[2, 4, 0, 40]),
    ("MSS of length 3", &[2, 3, 5, 1]),
    ("MSS twice, 100 then 1460", &[2, 4, 0, 100, 2, 4, 5, 180]),
    ("window scale 255", &[2, 4, 5, 180, 3, 3, 255, 1]),
    ("truncated window scale", &[2, 4, 5, 180, 3, 3]),
    ("length 0 first", &[3, 0, 2, 4, 0, 100]),
    ("SACK-permitted of length 3", &[2, 4, 5, 180, 4, 3, 0, 1]),
];

/// Per case: connects with those SYN options, sends 600 bytes, reads the
/// echo; returns the largest segment the target sent.
fn syn_options(wire: &Wire, me_ip: IpAddr, them: SocketAddr) -> Vec<usize> {
    let mut out = Vec::new();
    for (i, (_, opts)) in SYN_CASES.iter().enumerate() {
        let me = SocketAddr::new(me_ip, 41000 + i as u16);
        let mut p = Peer {
            wire,
            me,
            them,
            snd_nxt: 0x3000_0000,
            rcv_nxt: 0,
            window: 65535,
            their_window: 0,
            their_mss: None,
        };
        p.send(pkt::SYN, opts, b"");
        p.snd_nxt = p.snd_nxt.wrapping_add(1);
        let sa = p.expect(|s| s.has(pkt::SYN) && s.has(ACK), "SYN-ACK");
        p.rcv_nxt = sa.tcp.seq.wrapping_add(1);
        p.send(ACK, &[], b"");
        let data: Vec<u8> = (0..600).map(|k| (k * 7 + i) as u8).collect();
        p.send_data(&data);
        let mut largest = 0;
        let mut got = Vec::new();
        while got.len() < data.len() {
            let s = p.expect(|s| !s.tcp.payload.is_empty(), "echo");
            if s.tcp.seq == p.rcv_nxt {
                largest = largest.max(s.tcp.payload.len());
                got.extend_from_slice(&s.tcp.payload);
                p.rcv_nxt = p.rcv_nxt.wrapping_add(s.tcp.payload.len() as u32);
            }
            p.send(ACK, &[], b"");
        }
        assert_eq!(got, data, "case {i}: echo");
        out.push(largest);
    }
    out
}

type Results = [(Vec<&'static str>, Vec<usize>); 2];

fn report(who: &str, r: &Results) {
    for (fam, (e, s)) in ["IPv4", "IPv6"].iter().zip(r) {
        for ((name, _, _), v) in ESTABLISHED.iter().zip(e) {
            println!("{who} {fam} established, {name}: took the {v} segment");
        }
        for ((name, _), v) in SYN_CASES.iter().zip(s) {
            println!("{who} {fam} SYN with {name}: largest echo segment {v} bytes");
        }
    }
}

#[test]
fn malformed_tcp_options_are_survived_and_treated_as_linux_treats_them() {
    let linux: Results = harness::in_netns(|| {
        let (_dev, wire) = harness::kernel_bench();
        let mut out = Vec::new();
        for (me, them) in [
            (IpAddr::V4(HK_PEER4), IpAddr::V4(HK_KERNEL4)),
            (IpAddr::V6(HK_PEER6), IpAddr::V6(HK_KERNEL6)),
        ] {
            let them = SocketAddr::new(them, 7003);
            crate::kernel_echo(them);
            out.push((
                established(&wire, SocketAddr::new(me, 40003), them),
                syn_options(&wire, me, them),
            ));
        }
        out.try_into().unwrap()
    });
    report("linux", &linux);
    let ours: Results = harness::in_netns(|| {
        let (stack, wire) = harness::stack_bench(Default::default());
        let mut out = Vec::new();
        for (me, them) in [
            (IpAddr::V4(harness::spoof4(3)), IpAddr::V4(harness::STACK4)),
            (IpAddr::V6(harness::spoof6(3)), IpAddr::V6(harness::STACK6)),
        ] {
            let them = SocketAddr::new(them, 7003);
            crate::stack_echo(&stack, them);
            out.push((
                established(&wire, SocketAddr::new(me, 40003), them),
                syn_options(&wire, me, them),
            ));
        }
        println!("ustack counters: {:?}", stack.counters());
        stack.shutdown();
        out.try_into().unwrap()
    });
    report("ustack", &ours);
    for f in 0..2 {
        for (i, (name, _, _)) in ESTABLISHED.iter().enumerate() {
            assert_eq!(
                ours[f].0[i], linux[f].0[i],
                "family {f}, established, {name}"
            );
        }
        for (i, (name, _)) in SYN_CASES.iter().enumerate() {
            assert_eq!(ours[f].1[i], linux[f].1[i], "family {f}, SYN with {name}");
        }
    }
}
