//! A SYN flood from spoofed sources at the port a bulk transfer and new
//! connections use: both must proceed (the SYN queue fills, SYN cookies
//! take over, RFC 4987 section 3.6). The bulk rate with and without the
//! flood is printed, not asserted.

use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// SYNs per second.
const FLOOD_RATE: u64 = 20_000;

use crate::harness::{self, STACK4};
use crate::pkt::{self, SYN};

fn pattern(i: u64) -> u8 {
    (i.wrapping_mul(0x9e37_79b9) >> 7) as u8
}

/// A server on the stack: reads each connection to its end, checking the
/// pattern, and answers with the count of bytes that matched.
fn counting_server(stack: &ustack::api::Stack, addr: SocketAddr) {
    let l = ustack::api::TcpListener::bind(stack, addr).unwrap();
    thread::spawn(move || {
        while let Ok((mut s, _)) = l.accept() {
            thread::spawn(move || {
                let mut buf = vec![0u8; 64 * 1024];
                let mut off = 0u64;
                let mut good = true;
                loop {
                    let n = match s.read(&mut buf) {
                        Ok(0) => break,
                        Err(e) => panic!("server read after {off} bytes: {e}"),
                        Ok(n) => n,
                    };
                    good &= buf[..n]
                        .iter()
                        .enumerate()
                        .all(|(k, b)| *b == pattern(off + k as u64));
                    off += n as u64;
                }
                let answer = if good { off } else { u64::MAX };
                let _ = s.write_all(&answer.to_be_bytes());
            });
        }
    });
}

/// A kernel client sends `len` pattern bytes; returns the seconds taken
/// once the server confirmed every byte.
fn transfer(to: SocketAddr, len: u64) -> f64 {
    let t = Instant::now();
    let mut k = std::net::TcpStream::connect(to).expect("connect through the flood");
    let mut buf = vec![0u8; 64 * 1024];
    let mut off = 0u64;
    while off < len {
        let n = (buf.len() as u64).min(len - off) as usize;
        for (i, b) in buf[..n].iter_mut().enumerate() {
            *b = pattern(off + i as u64);
        }
        k.write_all(&buf[..n]).unwrap();
        off += n as u64;
    }
    k.shutdown(Shutdown::Write).unwrap();
    let mut answer = [0u8; 8];
    k.read_exact(&mut answer).unwrap();
    assert_eq!(
        u64::from_be_bytes(answer),
        len,
        "every byte arrived, in order"
    );
    t.elapsed().as_secs_f64()
}

#[test]
fn a_spoofed_syn_flood_leaves_bulk_transfer_and_new_connections_working() {
    harness::in_netns(|| {
        let (stack, _wire) = harness::stack_bench(Default::default());
        let to = SocketAddr::new(IpAddr::V4(STACK4), 7010);
        counting_server(&stack, to);
        const BULK: u64 = 32 << 20;
        let quiet = transfer(to, BULK);

        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let flood = {
            let (stop, sent) = (stop.clone(), sent.clone());
            thread::spawn(move || {
                let wire = harness::stack_wire();
                let mut n = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    n = n.wrapping_add(1);
                    let src = IpAddr::V4(harness::spoof4((n % 60000) as u16 + 1));
                    let syn = pkt::Tcp {
                        sport: 1024 + (n % 60000) as u16,
                        dport: to.port(),
                        seq: n.wrapping_mul(2_654_435_761),
                        flags: SYN,
                        window: 65535,
                        options: vec![2, 4, 5, 180],
                        ..Default::default()
                    };
                    wire.send(&syn.packet(src, to.ip()));
                    sent.fetch_add(1, Ordering::Relaxed);
                    // FLOOD_RATE SYNs a second: a flood, not a saturated
                    // device (unpaced, one core of SYNs fills the TUN
                    // queue and the bulk loses its packets there).
                    if n.is_multiple_of(100) {
                        thread::sleep(Duration::from_millis(100_000 / FLOOD_RATE));
                    }
                }
            })
        };
        // Let the flood fill the SYN queue before measuring.
        while sent.load(Ordering::Relaxed) < 5000 {
            thread::yield_now();
        }
        let before = stack.counters();
        let t_flood = Instant::now();
        let sent_before = sent.load(Ordering::Relaxed);
        let flooded = transfer(to, BULK);
        // New connections, each confirmed byte for byte.
        let mut fresh = 0;
        for _ in 0..50 {
            transfer(to, 1000);
            fresh += 1;
        }
        let after = stack.counters();
        let flood_secs = t_flood.elapsed().as_secs_f64();
        stop.store(true, Ordering::Relaxed);
        flood.join().unwrap();
        let mbit = |secs: f64| BULK as f64 * 8.0 / secs / 1e6;
        let flood_rate = (sent.load(Ordering::Relaxed) - sent_before) as f64 / flood_secs;
        println!(
            "ustack syn flood: bulk {} MiB at {:.0} Mbit/s quiet, {:.0} Mbit/s flooded; {fresh} new connections served during the flood of {flood_rate:.0} SYN/s; {} spoofed SYNs sent in all; during the measurement tcp_syncookies_sent +{} tcp_listen_overflows +{} tcp_syncookies_ok +{}",
            BULK >> 20,
            mbit(quiet),
            mbit(flooded),
            sent.load(Ordering::Relaxed),
            after.tcp_syncookies_sent - before.tcp_syncookies_sent,
            after.tcp_listen_overflows - before.tcp_listen_overflows,
            after.tcp_syncookies_ok - before.tcp_syncookies_ok,
        );
        assert!(
            after.tcp_syncookies_sent > before.tcp_syncookies_sent,
            "the flood filled the SYN queue: cookies were sent"
        );
        stack.shutdown();
    });
}
