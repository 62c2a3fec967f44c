//! ICMP errors quoting a live connection, against ustack and Linux, which
//! must agree: "fragmentation needed" with absurd MTUs (Linux raises any
//! IPv4 path MTU below `min_pmtu` 552 to 552), IPv6 "packet too big"
//! below 1280 (ignored since Linux 5.15), errors quoting a sequence number
//! outside what is in flight (ignored: RFC 5927 section 4.1), and port
//! unreachable for an established connection (a soft error: ignored).

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::mpsc;
use std::thread;

use crate::harness::{self, HK_KERNEL4, HK_KERNEL6, HK_PEER4, HK_PEER6, Peer, Wire};
use crate::pkt::{self, ACK};

/// The server end, on either stack: what the test does with it.
pub trait Server: Send {
    fn write_all(&mut self, data: &[u8]);
    fn read_exact(&mut self, n: usize) -> Vec<u8>;
    /// The send MSS the stack now uses.
    fn mss(&self) -> u32;
    fn error(&self) -> Option<std::io::Error>;
}

impl Server for ustack::api::TcpStream {
    fn write_all(&mut self, data: &[u8]) {
        Write::write_all(self, data).unwrap();
    }
    fn read_exact(&mut self, n: usize) -> Vec<u8> {
        let mut b = vec![0; n];
        Read::read_exact(self, &mut b).unwrap();
        b
    }
    fn mss(&self) -> u32 {
        self.info().unwrap().mss
    }
    fn error(&self) -> Option<std::io::Error> {
        self.take_error().unwrap()
    }
}

impl Server for std::net::TcpStream {
    fn write_all(&mut self, data: &[u8]) {
        Write::write_all(self, data).unwrap();
    }
    fn read_exact(&mut self, n: usize) -> Vec<u8> {
        let mut b = vec![0; n];
        Read::read_exact(self, &mut b).unwrap();
        b
    }
    fn mss(&self) -> u32 {
        let mut v: i32 = 0;
        let mut l = 4u32;
        // SAFETY: an int option into an int.
        let r = unsafe {
            libc::getsockopt(
                self.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_MAXSEG,
                (&raw mut v).cast(),
                &raw mut l,
            )
        };
        assert_eq!(r, 0);
        v as u32
    }
    fn error(&self) -> Option<std::io::Error> {
        self.take_error().unwrap()
    }
}

/// The ICMP error of `kind`/`code`/`rest` about the segment `them` sent
/// to `me` with sequence number `seq`.
fn icmp_about(
    me: SocketAddr,
    them: SocketAddr,
    seq: u32,
    kind: u8,
    code: u8,
    rest: u32,
) -> Vec<u8> {
    let quoted_tcp = pkt::Tcp {
        sport: them.port(),
        dport: me.port(),
        seq,
        flags: ACK,
        window: 1000,
        ..Default::default()
    };
    let quoted = quoted_tcp.packet(them.ip(), me.ip());
    pkt::icmp_error(me.ip(), them.ip(), kind, code, rest, &quoted)
}

/// One step: the server writes 3000 bytes, the peer reads them; returns
/// the largest segment seen and the MSS the server reports.
fn exchange(p: &mut Peer<'_>, s: &mut dyn Server) -> (usize, u32) {
    let data: Vec<u8> = (0..3000u32).map(|i| (i * 13) as u8).collect();
    s.write_all(&data);
    let mut got = Vec::new();
    let mut largest = 0;
    while got.len() < data.len() {
        let seg = p.expect(|s| !s.tcp.payload.is_empty(), "data");
        if seg.tcp.seq == p.rcv_nxt {
            largest = largest.max(seg.tcp.payload.len());
            got.extend_from_slice(&seg.tcp.payload);
            p.rcv_nxt = p.rcv_nxt.wrapping_add(seg.tcp.payload.len() as u32);
        }
        p.send(ACK, &[], b"");
    }
    assert_eq!(got, data);
    // And the other way, to show the connection works both ways.
    p.send_data(b"ping");
    assert_eq!(s.read_exact(4), b"ping");
    assert!(s.error().is_none(), "no error reported: {:?}", s.error());
    (largest, s.mss())
}

/// The steps, in order: name, and the ICMP (kind, code, rest) with
/// whether its quoted sequence number is the live one (or far outside).
fn steps(v6: bool) -> Vec<(&'static str, u8, u8, u32, bool)> {
    if v6 {
        vec![
            (
                "packet too big 1280, quoting a stale sequence",
                2,
                0,
                1280,
                false,
            ),
            ("packet too big 1000 (below 1280)", 2, 0, 1000, true),
            ("packet too big 0", 2, 0, 0, true),
            ("packet too big 65535", 2, 0, 65535, true),
            ("port unreachable", 1, 4, 0, true),
            ("packet too big 1280", 2, 0, 1280, true),
        ]
    } else {
        vec![
            (
                "frag needed 576, quoting a stale sequence",
                3,
                4,
                576,
                false,
            ),
            ("frag needed 65535", 3, 4, 65535, true),
            ("port unreachable", 3, 3, 0, true),
            ("host unreachable", 3, 1, 0, true),
            ("frag needed 68", 3, 4, 68, true),
            ("frag needed 1", 3, 4, 1, true),
        ]
    }
}

fn run(
    wire: &Wire,
    me: SocketAddr,
    them: SocketAddr,
    accepted: &mpsc::Receiver<Box<dyn Server>>,
) -> Vec<(usize, u32)> {
    let mut p = Peer::connect(wire, me, them, 0x4000_0000);
    let mut s = accepted.recv().unwrap();
    let mut out = vec![exchange(&mut p, s.as_mut())];
    for (_, kind, code, mtu, live) in steps(them.is_ipv6()) {
        // Everything is acknowledged, so the live sequence is rcv_nxt.
        let seq = if live {
            p.rcv_nxt
        } else {
            p.rcv_nxt.wrapping_sub(1_000_000)
        };
        // The MTU sits in the low 16 bits of an ICMPv4 frag-needed's
        // second word, and is the whole word for ICMPv6.
        wire.send(&icmp_about(me, them, seq, kind, code, mtu));
        wire.barrier(me.ip(), them.ip());
        out.push(exchange(&mut p, s.as_mut()));
    }
    out
}

fn report(who: &str, v6: bool, r: &[(usize, u32)]) {
    let names = std::iter::once("before").chain(steps(v6).into_iter().map(|s| s.0));
    for (name, (largest, mss)) in names.zip(r) {
        println!("{who}: after {name}: largest segment {largest}, MSS {mss}");
    }
}

#[test]
fn icmp_errors_quoting_a_live_connection_are_taken_as_linux_takes_them() {
    let linux = harness::in_netns(|| {
        let (_dev, wire) = harness::kernel_bench();
        let mut out = Vec::new();
        for (me, them) in [
            (IpAddr::V4(HK_PEER4), IpAddr::V4(HK_KERNEL4)),
            (IpAddr::V6(HK_PEER6), IpAddr::V6(HK_KERNEL6)),
        ] {
            let them = SocketAddr::new(them, 7004);
            let l = std::net::TcpListener::bind(them).unwrap();
            let (tx, rx) = mpsc::channel::<Box<dyn Server>>();
            thread::spawn(move || {
                let (s, _) = l.accept().unwrap();
                tx.send(Box::new(s)).unwrap();
            });
            out.push(run(&wire, SocketAddr::new(me, 40004), them, &rx));
        }
        out
    });
    let ours = harness::in_netns(|| {
        let (stack, wire) = harness::stack_bench(Default::default());
        let mut out = Vec::new();
        for (me, them) in [
            (IpAddr::V4(harness::spoof4(4)), IpAddr::V4(harness::STACK4)),
            (IpAddr::V6(harness::spoof6(4)), IpAddr::V6(harness::STACK6)),
        ] {
            let them = SocketAddr::new(them, 7004);
            let l = ustack::api::TcpListener::bind(&stack, them).unwrap();
            let (tx, rx) = mpsc::channel::<Box<dyn Server>>();
            thread::spawn(move || {
                let (s, _) = l.accept().unwrap();
                tx.send(Box::new(s)).unwrap();
            });
            out.push(run(&wire, SocketAddr::new(me, 40004), them, &rx));
        }
        let c = stack.counters();
        println!(
            "ustack counters: icmp_errors_in {} icmp_out_of_window {}",
            c.icmp_errors_in, c.icmp_out_of_window
        );
        assert_eq!(c.icmp_out_of_window, 2, "the two stale quotes");
        // Our peer never answers the FIN: no linger.
        stack.shutdown();
        out
    });
    for (f, v6) in [(0, false), (1, true)] {
        report("linux", v6, &linux[f]);
        report("ustack", v6, &ours[f]);
    }
    for f in 0..2 {
        let largest = |r: &Vec<(usize, u32)>| r.iter().map(|x| x.0).collect::<Vec<_>>();
        assert_eq!(
            largest(&ours[f]),
            largest(&linux[f]),
            "family {f}: segment sizes as Linux"
        );
    }
}
