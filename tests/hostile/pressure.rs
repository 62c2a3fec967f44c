//! Peers that hold the stack's resources: one that advertises a zero
//! window forever (persist probes, a bounded send buffer, writes blocking
//! as configured, TCP_USER_TIMEOUT ending it as Linux does since 5.11:
//! the window stayed shut that long, answered probes or not), and a
//! handshake flood that overflows the accept queue (dropped or cookied,
//! never a reset, the established connection untouched). Against ustack
//! and, for the zero window, Linux.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::harness::{self, HK_KERNEL4, HK_PEER4, Peer, Wire, segs_to};
use crate::pkt::{ACK, RST, SYN};

/// The server end, on either stack.
trait Writer: Send {
    fn set_nonblocking(&self, on: bool);
    fn set_write_timeout(&self, t: Option<Duration>);
    fn set_user_timeout(&self, t: Duration);
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize>;
}

impl Writer for ustack::api::TcpStream {
    fn set_nonblocking(&self, on: bool) {
        ustack::api::TcpStream::set_nonblocking(self, on).unwrap();
    }
    fn set_write_timeout(&self, t: Option<Duration>) {
        ustack::api::TcpStream::set_write_timeout(self, t).unwrap();
    }
    fn set_user_timeout(&self, t: Duration) {
        ustack::api::TcpStream::set_user_timeout(self, Some(t)).unwrap();
    }
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        Write::write(self, b)
    }
}

impl Writer for std::net::TcpStream {
    fn set_nonblocking(&self, on: bool) {
        std::net::TcpStream::set_nonblocking(self, on).unwrap();
    }
    fn set_write_timeout(&self, t: Option<Duration>) {
        std::net::TcpStream::set_write_timeout(self, t).unwrap();
    }
    fn set_user_timeout(&self, t: Duration) {
        let ms = t.as_millis() as u32;
        // SAFETY: an unsigned int option.
        let r = unsafe {
            libc::setsockopt(
                self.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_USER_TIMEOUT,
                (&raw const ms).cast(),
                4,
            )
        };
        assert_eq!(r, 0);
    }
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        Write::write(self, b)
    }
}

#[derive(Debug)]
struct ZeroWindow {
    /// Bytes the application could queue before the buffer was full.
    queued: usize,
    /// What a blocking write with a 300 ms timeout returned.
    timed_write: ErrorKind,
    /// What the blocking write returned in the end.
    end: ErrorKind,
    /// Segments the stack sent while the window was shut (probes).
    probes: usize,
    /// Payload bytes those carried beyond the shut window.
    probe_bytes: usize,
}

/// The peer shuts its window after the handshake and answers every
/// segment with a zero-window ACK, forever.
fn zero_window(
    wire: &Wire,
    me: SocketAddr,
    them: SocketAddr,
    accepted: mpsc::Receiver<Box<dyn Writer>>,
) -> ZeroWindow {
    let mut p = Peer::connect(wire, me, them, 0x7000_0000);
    p.window = 0;
    p.send(ACK, &[], b"");
    let mut s = accepted.recv().unwrap();
    wire.barrier(me.ip(), them.ip());
    s.set_nonblocking(true);
    let chunk = vec![0x5au8; 65536];
    let mut queued = 0;
    loop {
        match s.write(&chunk) {
            Ok(n) => queued += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => panic!("nonblocking write: {e}"),
        }
        assert!(queued < 64 << 20, "the send buffer is bounded");
    }
    s.set_nonblocking(false);
    s.set_write_timeout(Some(Duration::from_millis(300)));
    let timed_write = s
        .write(&chunk)
        .expect_err("no room: the write times out")
        .kind();
    s.set_write_timeout(None);
    s.set_user_timeout(Duration::from_secs(1));
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let r = s.write(&chunk);
        let _ = tx.send(r.map_err(|e| e.kind()));
        // Keep the socket open until the test is done with it.
        thread::sleep(Duration::from_secs(1));
    });
    let mut probes = 0;
    let mut probe_bytes = 0;
    let guard = Instant::now() + Duration::from_secs(30);
    let end = loop {
        if let Ok(r) = rx.try_recv() {
            break r.expect_err("the user timeout ends the blocked write");
        }
        assert!(Instant::now() < guard, "the user timeout never fired");
        if let Some(seg) = wire.recv_tcp(me, Duration::from_millis(20)) {
            if seg.has(RST) {
                continue;
            }
            probes += 1;
            probe_bytes += seg.tcp.payload.len();
            p.send(ACK, &[], b"");
        }
    };
    ZeroWindow {
        queued,
        timed_write,
        end,
        probes,
        probe_bytes,
    }
}

#[test]
fn a_peer_that_never_opens_its_window_is_probed_bounded_and_timed_out_as_linux() {
    let linux = harness::in_netns(|| {
        let (_dev, wire) = harness::kernel_bench();
        let them = SocketAddr::new(IpAddr::V4(HK_KERNEL4), 7020);
        let l = std::net::TcpListener::bind(them).unwrap();
        let (tx, rx) = mpsc::channel::<Box<dyn Writer>>();
        thread::spawn(move || tx.send(Box::new(l.accept().unwrap().0)).unwrap());
        zero_window(
            &wire,
            SocketAddr::new(IpAddr::V4(HK_PEER4), 40020),
            them,
            rx,
        )
    });
    println!("linux zero window: {linux:?}");
    let ours = harness::in_netns(|| {
        let (stack, wire) = harness::stack_bench(Default::default());
        let them = SocketAddr::new(IpAddr::V4(harness::STACK4), 7020);
        let l = ustack::api::TcpListener::bind(&stack, them).unwrap();
        let (tx, rx) = mpsc::channel::<Box<dyn Writer>>();
        thread::spawn(move || tx.send(Box::new(l.accept().unwrap().0)).unwrap());
        let z = zero_window(
            &wire,
            SocketAddr::new(harness::spoof4(20).into(), 40020),
            them,
            rx,
        );
        stack.shutdown();
        z
    });
    println!("ustack zero window: {ours:?}");
    assert!(ours.queued <= 4 << 20, "within send_buf_max");
    assert!(ours.probes >= 1, "the shut window was probed");
    assert_eq!(
        ours.probe_bytes == 0,
        linux.probe_bytes == 0,
        "probes carry new data beyond the window only if Linux's do"
    );
    assert_eq!(
        ours.timed_write, linux.timed_write,
        "a timed blocking write fails as Linux's"
    );
    assert_eq!(ours.end, linux.end, "the user timeout ends it as Linux's");
    assert_eq!(ours.end, ErrorKind::TimedOut);
}

#[test]
fn accept_queue_overflow_drops_or_cookies_handshakes_and_resets_nothing() {
    harness::in_netns(|| {
        let (stack, wire) = harness::stack_bench(Default::default());
        let them = SocketAddr::new(IpAddr::V4(harness::STACK4), 7021);
        // Never accepted: the backlog (128) fills.
        let l = ustack::api::TcpListener::bind(&stack, them).unwrap();
        // An established connection on another listener, in use.
        let busy = SocketAddr::new(IpAddr::V4(harness::STACK4), 7022);
        crate::stack_echo(&stack, busy);
        let mut k = std::net::TcpStream::connect(busy).unwrap();
        let before = stack.counters();
        const N: u16 = 400;
        let me = |i: u16| SocketAddr::new(harness::spoof4(2000 + i).into(), 30000 + i);
        let mut peers: Vec<Peer<'_>> = (0..N)
            .map(|i| Peer {
                wire: &wire,
                me: me(i),
                them,
                snd_nxt: u32::from(i).wrapping_mul(0x0100_0001),
                rcv_nxt: 0,
                window: 65535,
                their_window: 0,
                their_mss: None,
            })
            .collect();
        let mut synacks = 0;
        let mut rsts = 0;
        // Two rounds: SYN, then the ACK completing each SYN-ACK (a cookie
        // one too), as fast as the barrier allows; the echo connection
        // carries data between rounds.
        for round in 0..2 {
            for p in &peers {
                if round == 0 {
                    p.send(SYN, &[2, 4, 5, 180], b"");
                }
            }
            let seen = wire.barrier(peers[0].me.ip(), them.ip());
            for p in peers.iter_mut() {
                for s in segs_to(&seen, p.me) {
                    if s.has(RST) {
                        rsts += 1;
                    } else if s.has(SYN) && s.has(ACK) && round == 0 {
                        // A retransmitted SYN-ACK (a slow run) is acknowledged
                        // again with the same numbers.
                        if p.rcv_nxt != s.tcp.seq.wrapping_add(1) {
                            synacks += 1;
                            p.snd_nxt = p.snd_nxt.wrapping_add(1);
                            p.rcv_nxt = s.tcp.seq.wrapping_add(1);
                        }
                        p.send(ACK, &[], b"");
                    }
                }
            }
            k.write_all(b"still here").unwrap();
            let mut b = [0u8; 10];
            k.read_exact(&mut b).unwrap();
            assert_eq!(&b, b"still here");
        }
        let seen = wire.barrier(peers[0].me.ip(), them.ip());
        rsts += peers
            .iter()
            .map(|p| segs_to(&seen, p.me).iter().filter(|s| s.has(RST)).count())
            .sum::<usize>();
        let after = stack.counters();
        l.set_nonblocking(true).unwrap();
        let mut accepted = 0;
        while l.accept().is_ok() {
            accepted += 1;
        }
        println!(
            "ustack accept-queue overflow: {N} handshakes at a backlog of 128: {synacks} SYN-ACKs, {accepted} accepted, {rsts} RSTs; tcp_listen_overflows +{} tcp_syncookies_sent +{} tcp_syncookies_ok +{}",
            after.tcp_listen_overflows - before.tcp_listen_overflows,
            after.tcp_syncookies_sent - before.tcp_syncookies_sent,
            after.tcp_syncookies_ok - before.tcp_syncookies_ok,
        );
        assert_eq!(rsts, 0, "no handshake is answered with a reset");
        assert!(
            accepted <= 128 + 1,
            "the accept queue stayed within its backlog"
        );
        assert!(accepted >= 1, "the queue filled");
        assert!(
            after.tcp_listen_overflows > before.tcp_listen_overflows
                || after.tcp_syncookies_sent > before.tcp_syncookies_sent,
            "the overflow was counted"
        );
        k.write_all(b"and after").unwrap();
        let mut b = [0u8; 9];
        k.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"and after");
        stack.shutdown();
    });
}
