//! Random and half-valid packets by the ten thousand: pure noise, IP
//! headers with wrong lengths and checksums, random protocols, IPv6
//! extension-header chains and fragments, UDP and ICMP of every type, and
//! TCP with correct checksums but random flags, numbers and options, to
//! the listener and to a live connection. Afterwards the live connection
//! still carries data and a new one is accepted and served.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use crate::harness::{self, Peer, STACK4, STACK6};
use crate::pkt::{self, PROTO_ICMP, PROTO_ICMP6, PROTO_TCP, PROTO_UDP, V4};

/// SplitMix64, seeded: the same packets every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// One hostile packet of kind `k` (0..10).
fn packet(r: &mut Rng, k: u64, live: &Peer<'_>) -> Vec<u8> {
    let s4 = harness::spoof4(100 + r.below(50) as u16);
    let s6 = harness::spoof6(100 + r.below(50) as u16);
    match k {
        // Noise.
        0 => {
            let n = 1 + r.below(1400) as usize;
            r.bytes(n)
        }
        // An IPv4 header with a random protocol, then noise; one field
        // broken at random (length, header length, checksum, version).
        1 => {
            let proto = r.next() as u8;
            let n = r.below(600) as usize;
            let mut p = V4::new(s4, STACK4, proto).packet(&r.bytes(n));
            match r.below(5) {
                0 => p[2..4].copy_from_slice(&(r.next() as u16).to_be_bytes()),
                1 => p[0] = 0x40 | (r.next() as u8 & 15),
                2 => p[10] ^= 0xff,
                3 => p[0] = (r.next() as u8 & 0xf0) | 5,
                _ => {}
            }
            p
        }
        // IPv6 with a random next header and a random chain of bytes.
        2 => {
            let n = r.below(600) as usize;
            let mut p = pkt::v6_packet(s6, STACK6, r.next() as u8, &r.bytes(n));
            if r.below(3) == 0 {
                p[4..6].copy_from_slice(&(r.next() as u16).to_be_bytes());
            }
            p
        }
        // IPv6 extension headers (hop-by-hop, routing, destination,
        // fragment) with random contents, then TCP or nothing.
        3 => {
            let chain = [0u8, 43, 60, 44];
            let mut body = Vec::new();
            let hops = 1 + r.below(4) as usize;
            let first = chain[r.below(4) as usize];
            for i in 0..hops {
                let next = if i + 1 == hops {
                    [PROTO_TCP, 59, PROTO_ICMP6][r.below(3) as usize]
                } else {
                    chain[r.below(4) as usize]
                };
                let len = r.below(3) as u8;
                let mut h = vec![next, len];
                h.extend(r.bytes(6 + 8 * usize::from(len)));
                body.extend(h);
            }
            let n = r.below(60) as usize;
            body.extend(r.bytes(n));
            pkt::v6_packet(s6, STACK6, first, &body)
        }
        // IPv4 fragments with random offsets and flags.
        4 => {
            let n = 8 * (1 + r.below(20) as usize);
            V4 {
                ident: r.next() as u16,
                more_frags: r.below(2) == 0,
                frag_offset: 8 * r.below(8192) as usize,
                ..V4::new(
                    s4,
                    STACK4,
                    [PROTO_TCP, PROTO_UDP, PROTO_ICMP][r.below(3) as usize],
                )
            }
            .packet(&r.bytes(n))
        }
        // UDP to random ports, right or wrong checksum.
        5 => {
            let n = 8 + r.below(200) as usize;
            let mut u = r.bytes(n);
            let len = u.len() as u16;
            u[4..6].copy_from_slice(&len.to_be_bytes());
            u[6] = 0;
            u[7] = 0;
            let c = pkt::pseudo_checksum(s4.into(), STACK4.into(), PROTO_UDP, &u);
            if r.below(2) == 0 {
                u[6..8].copy_from_slice(&c.to_be_bytes());
            }
            V4::new(s4, STACK4, PROTO_UDP).packet(&u)
        }
        // ICMP and ICMPv6 of every type and code, quoting noise.
        6 => {
            let n = r.below(100) as usize;
            let (src, dst): (IpAddr, IpAddr) = if r.below(2) == 0 {
                (s4.into(), STACK4.into())
            } else {
                (s6.into(), STACK6.into())
            };
            pkt::icmp_error(
                src,
                dst,
                r.next() as u8,
                r.next() as u8,
                r.next() as u32,
                &r.bytes(n),
            )
        }
        // TCP with a correct checksum, random everything, to the listener.
        7 | 8 => {
            let n = 4 * r.below(11) as usize;
            let opts = r.bytes(n);
            let n = r.below(300) as usize;
            let payload = r.bytes(n);
            let (src, dst): (IpAddr, IpAddr) = if k == 7 {
                (s4.into(), STACK4.into())
            } else {
                (s6.into(), STACK6.into())
            };
            pkt::Tcp {
                sport: r.next() as u16,
                dport: if r.below(2) == 0 {
                    live.them.port()
                } else {
                    r.next() as u16
                },
                seq: r.next() as u32,
                ack: r.next() as u32,
                flags: r.next() as u8,
                window: r.next() as u16,
                options: opts,
                payload,
            }
            .packet(src, dst)
        }
        // The live connection's 4-tuple, sequence in its window, random
        // flags and an acknowledgment no one could accept (RFC 5961).
        _ => {
            let flags = r.next() as u8 & !pkt::RST;
            let n = 4 * r.below(3) as usize;
            let opts = r.bytes(n);
            let n = r.below(100) as usize;
            let payload = r.bytes(n);
            let mut t = live.seg(flags, &opts, &payload);
            t.seq = live.snd_nxt.wrapping_add(r.below(30_000) as u32);
            t.ack = live
                .rcv_nxt
                .wrapping_sub(0x4000_0000 + r.below(1 << 20) as u32);
            t.packet(live.me.ip(), live.them.ip())
        }
    }
}

#[test]
fn ten_thousand_random_and_half_valid_packets_leave_the_stack_serving() {
    harness::in_netns(|| {
        let (stack, wire) = harness::stack_bench(Default::default());
        let them = SocketAddr::new(STACK4.into(), 7005);
        crate::stack_echo(&stack, them);
        crate::stack_echo(&stack, SocketAddr::new(STACK6.into(), 7005));
        let me = SocketAddr::new(harness::spoof4(5).into(), 40005);
        let mut live = Peer::connect(&wire, me, them, 0x5000_0000);
        live.send_data(b"before");
        assert_eq!(live.read_exact(6), b"before");

        let before = stack.counters();
        let tcp_before = stack.tcp_counters();
        let mut r = Rng(0x1805);
        const N: usize = 20_000;
        let t = Instant::now();
        for i in 0..N {
            let k = r.below(10);
            wire.send(&packet(&mut r, k, &live));
            if i % 200 == 199 {
                wire.barrier(me.ip(), them.ip());
            }
        }
        wire.barrier(me.ip(), them.ip());
        let secs = t.elapsed().as_secs_f64();
        let after = stack.counters();
        let tcp_after = stack.tcp_counters();
        println!(
            "ustack: {N} hostile packets in {secs:.2} s; ip_in +{} ip_malformed +{} frag_errors +{} unknown_protocol +{} icmp_malformed +{} udp_malformed +{} udp_no_port +{} tcp_malformed +{} tcp_no_socket +{} icmp_errors_out +{} icmp_errors_limited +{}; tcp: rsts_out +{} challenge_acks +{} dropped +{}",
            after.ip_in - before.ip_in,
            after.ip_malformed - before.ip_malformed,
            after.frag_errors - before.frag_errors,
            after.unknown_protocol - before.unknown_protocol,
            after.icmp_malformed - before.icmp_malformed,
            after.udp_malformed - before.udp_malformed,
            after.udp_no_port - before.udp_no_port,
            after.tcp_malformed - before.tcp_malformed,
            after.tcp_no_socket - before.tcp_no_socket,
            after.icmp_errors_out - before.icmp_errors_out,
            after.icmp_errors_limited - before.icmp_errors_limited,
            tcp_after.rsts_out - tcp_before.rsts_out,
            tcp_after.challenge_acks - tcp_before.challenge_acks,
            tcp_after.dropped - tcp_before.dropped,
        );
        // Every packet reached the core (the barriers keep the device's
        // queue from overflowing), and the noise was counted as such.
        assert!(
            after.ip_in - before.ip_in >= N as u64,
            "every packet reached the core"
        );
        assert!(after.ip_malformed > before.ip_malformed);
        assert!(after.tcp_malformed > before.tcp_malformed);

        // The live connection still works, with only its own bytes.
        live.send_data(b"after");
        assert_eq!(live.read_exact(5), b"after");
        // New connections are accepted and served, both families.
        for (me, them) in [
            (SocketAddr::new(harness::spoof4(6).into(), 40006), them),
            (
                SocketAddr::new(harness::spoof6(6).into(), 40006),
                SocketAddr::new(STACK6.into(), 7005),
            ),
        ] {
            let mut p = Peer::connect(&wire, me, them, 0x6000_0000);
            p.send_data(b"fresh");
            assert_eq!(p.read_exact(5), b"fresh");
        }
        // And the kernel's own TCP still reaches it.
        let mut k = std::net::TcpStream::connect(them).expect("kernel connects");
        std::io::Write::write_all(&mut k, b"kernel").unwrap();
        let mut b = [0u8; 6];
        std::io::Read::read_exact(&mut k, &mut b).unwrap();
        assert_eq!(&b, b"kernel");
        stack.shutdown();
    });
}
