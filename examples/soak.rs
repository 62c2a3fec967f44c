//! Soak: mixed traffic through the stack and its fault injector for a
//! number of minutes, one line of figures per minute.
//!
//! `soak MINUTES` moves into a private network namespace of its own (run it
//! through `scripts/soak.sh`, which makes one first when not root), starts a
//! stack on a TUN device there and runs, both ways between the stack and
//! the kernel's own sockets in the same process:
//!
//! - bulk: 4 MiB rounds stack -> kernel and kernel -> stack, each checked
//!   by a hash the receiver sends back;
//! - request/response: 64-byte messages echoed on one connection;
//! - churn: connect, 100 bytes echoed, close, from both sides (the kernel
//!   closes first, so TIME-WAIT stays in the kernel);
//! - UDP: 512-byte datagrams echoed by the kernel (loss is the link's;
//!   what comes back must be intact);
//! - floods: the first 10 s of every minute, spoofed SYNs from a raw socket
//!   at the stack's churn listener.
//!
//! The link is impaired by `USTACK_FAULT` (default
//! `loss=0.01,dup=0.005,reorder=0.01,seed=1`); the other `USTACK_*`
//! variables apply as usual (`USTACK_PCAP` to capture). Each minute prints the
//! rates, the errors (a TCP error or a corrupted byte is one: nothing may be
//! lost), the process's RSS and the sockets the stack holds. At the end it
//! waits for the stack's sockets to drain back to its listeners and exits
//! non-zero if anything was lost, corrupted or left behind.

use std::io::{self, Read, Write};
use std::net::{self, Ipv4Addr, Shutdown, SocketAddr, SocketAddrV4};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::thread;
use std::time::{Duration, Instant};

use ustack::api::{Stack, TcpListener, TcpStream, UdpSocket};
use ustack::config::Config;
use ustack::device::FaultConfig;
use ustack::rand::Rng;

const STACK: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
const KERNEL: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
const BULK_PORT: u16 = 9001;
const ECHO_PORT: u16 = 9002;
const UDP_PORT: u16 = 9003;
const CHURN_PORT: u16 = 9004;
const ROUND: usize = 4 << 20;
const RR_SIZE: usize = 64;
const CHURN_SIZE: usize = 100;
const IO_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Default)]
struct Stats {
    bulk_bytes: AtomicU64,
    rr: AtomicU64,
    churn: AtomicU64,
    udp_sent: AtomicU64,
    udp_back: AtomicU64,
    errors: AtomicU64,
    flood_syns: AtomicU64,
    /// Connections accepted from a late duplicate ACK that matched a SYN
    /// cookie, which then never carry data (see `stack_servers`).
    ghosts: AtomicU64,
}

impl Stats {
    fn error(&self, what: &str, e: impl std::fmt::Display) {
        self.errors.fetch_add(1, Relaxed);
        eprintln!("soak: {what}: {e}");
    }
}

/// FNV-1a over a stream, with its length: what a receiver sends back.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Digest {
    hash: u64,
    len: u64,
}

impl Digest {
    fn new() -> Digest {
        Digest {
            hash: 0xcbf2_9ce4_8422_2325,
            len: 0,
        }
    }

    fn add(&mut self, data: &[u8]) {
        for &b in data {
            self.hash = (self.hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        self.len += data.len() as u64;
    }

    fn bytes(&self) -> [u8; 16] {
        let mut out = [0; 16];
        out[..8].copy_from_slice(&self.hash.to_be_bytes());
        out[8..].copy_from_slice(&self.len.to_be_bytes());
        out
    }
}

fn fill(rng: &mut Rng, buf: &mut [u8]) {
    for chunk in buf.chunks_mut(8) {
        let v = rng.next_u64().to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
}

/// Receiver side of a bulk round: reads to the end, answers the digest.
fn sink(mut s: impl Read + Write) -> io::Result<u64> {
    let mut d = Digest::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match s.read(&mut buf)? {
            0 => break,
            n => d.add(&buf[..n]),
        }
    }
    s.write_all(&d.bytes())?;
    Ok(d.len)
}

/// Sender side of a bulk round: a round of seeded bytes, then the check.
fn source(
    mut s: impl Read + Write,
    close: impl FnOnce(&mut dyn Write),
    seed: u64,
) -> io::Result<()> {
    let mut rng = Rng::new(seed);
    let mut d = Digest::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut left = ROUND;
    while left > 0 {
        let n = left.min(buf.len());
        fill(&mut rng, &mut buf[..n]);
        d.add(&buf[..n]);
        s.write_all(&buf[..n])?;
        left -= n;
    }
    close(&mut s);
    let mut back = [0u8; 16];
    s.read_exact(&mut back)?;
    if back != d.bytes() {
        return Err(io::Error::other(format!(
            "bulk round corrupted: receiver digest {back:02x?}, sent {:02x?}",
            d.bytes()
        )));
    }
    Ok(())
}

/// Echoes until end of stream (the client closes first), counting the
/// bytes in `got`.
fn echo(mut s: impl Read + Write, got: &mut u64) -> io::Result<()> {
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf)? {
            0 => return Ok(()),
            n => {
                *got += n as u64;
                s.write_all(&buf[..n])?
            }
        }
    }
}

/// Echoes exactly `CHURN_SIZE` bytes, then the server closes first.
fn echo_once(mut s: impl Read + Write) -> io::Result<()> {
    let mut buf = [0u8; CHURN_SIZE];
    s.read_exact(&mut buf)?;
    s.write_all(&buf)
}

/// One churn exchange from the client: bytes out, the same back, then the
/// server's end of stream.
fn churn_client(mut s: impl Read + Write, n: u64) -> io::Result<()> {
    let msg = [(n % 251) as u8; CHURN_SIZE];
    s.write_all(&msg)?;
    let mut back = [0u8; CHURN_SIZE];
    s.read_exact(&mut back)?;
    if back != msg {
        return Err(io::Error::other("churn echo corrupted"));
    }
    let mut rest = [0u8; 1];
    match s.read(&mut rest)? {
        0 => Ok(()),
        _ => Err(io::Error::other("churn: bytes after the echo")),
    }
}

/// A bulk round's receiver on a server's connection, counted.
fn count_sink(st: &Stats, what: &str, s: impl Read + Write) {
    match sink(s) {
        Ok(n) => {
            st.bulk_bytes.fetch_add(n, Relaxed);
        }
        Err(e) => st.error(what, e),
    }
}

fn kernel_servers(stats: &Arc<Stats>) -> io::Result<()> {
    let bulk = net::TcpListener::bind((KERNEL, BULK_PORT))?;
    let churn = net::TcpListener::bind((KERNEL, CHURN_PORT))?;
    let echo_l = net::TcpListener::bind((KERNEL, ECHO_PORT))?;
    let udp = net::UdpSocket::bind((KERNEL, UDP_PORT))?;
    let st = stats.clone();
    thread::spawn(move || {
        for s in bulk.incoming().flatten() {
            let st = st.clone();
            thread::spawn(move || {
                let _ = s.set_read_timeout(Some(IO_TIMEOUT));
                count_sink(&st, "kernel bulk sink", &s);
            });
        }
    });
    let st = stats.clone();
    thread::spawn(move || {
        for s in churn.incoming().flatten() {
            let _ = s.set_read_timeout(Some(IO_TIMEOUT));
            if let Err(e) = echo_once(&s) {
                st.error("kernel churn server", e);
            }
        }
    });
    let st = stats.clone();
    thread::spawn(move || {
        for s in echo_l.incoming().flatten() {
            let st = st.clone();
            thread::spawn(move || {
                let _ = s.set_read_timeout(Some(IO_TIMEOUT));
                if let Err(e) = echo(&s, &mut 0) {
                    st.error("kernel echo server", e);
                }
            });
        }
    });
    thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = udp.recv_from(&mut buf) {
            let _ = udp.send_to(&buf[..n], from);
        }
    });
    Ok(())
}

fn stack_servers(stack: &Stack, stats: &Arc<Stats>) -> io::Result<()> {
    let bulk = TcpListener::bind(stack, (STACK, BULK_PORT))?;
    let echo_l = TcpListener::bind(stack, (STACK, ECHO_PORT))?;
    let st = stats.clone();
    thread::spawn(move || {
        loop {
            match bulk.accept() {
                Ok((s, _)) => {
                    let st = st.clone();
                    thread::spawn(move || {
                        let _ = s.set_read_timeout(Some(IO_TIMEOUT));
                        count_sink(&st, "stack bulk sink", &s);
                    });
                }
                Err(e) => return st.error("stack bulk accept", e),
            }
        }
    });
    let st = stats.clone();
    thread::spawn(move || {
        loop {
            match echo_l.accept() {
                Ok((s, peer)) => {
                    let st = st.clone();
                    thread::spawn(move || {
                        let _ = s.set_read_timeout(Some(IO_TIMEOUT));
                        let mut got = 0;
                        match echo(&s, &mut got) {
                            Ok(()) => {}
                            // A connection made from a late copy of an
                            // earlier handshake's ACK while the listener
                            // answers with SYN cookies (the flood): the
                            // cookie is valid, so it is accepted, as on
                            // Linux, but the peer has nothing to send.
                            Err(e) if got == 0 && e.kind() == io::ErrorKind::WouldBlock => {
                                st.ghosts.fetch_add(1, Relaxed);
                            }
                            Err(e) => st.error("stack echo server", format!("{e} (peer {peer})")),
                        }
                    });
                }
                Err(e) => return st.error("stack echo accept", e),
            }
        }
    });
    Ok(())
}

/// Runs `round` until `stop`, counting errors; a failed round waits a
/// little so a broken stack is reported, not hammered.
fn client_loop(
    stop: &Arc<AtomicBool>,
    stats: &Arc<Stats>,
    what: &'static str,
    mut round: impl FnMut(u64) -> io::Result<()> + Send + 'static,
) -> thread::JoinHandle<()> {
    let stop = stop.clone();
    let stats = stats.clone();
    thread::spawn(move || {
        let mut n = 0;
        while !stop.load(Relaxed) {
            n += 1;
            if let Err(e) = round(n) {
                stats.error(what, e);
                thread::sleep(Duration::from_millis(100));
            }
        }
    })
}

fn stack_stream(stack: &Stack, port: u16) -> io::Result<TcpStream> {
    let s = TcpStream::connect(stack, (KERNEL, port))?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    Ok(s)
}

fn kernel_stream(port: u16) -> io::Result<net::TcpStream> {
    let s = net::TcpStream::connect_timeout(
        &SocketAddr::V4(SocketAddrV4::new(STACK, port)),
        IO_TIMEOUT,
    )?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    Ok(s)
}

fn clients(
    stack: &Stack,
    stats: &Arc<Stats>,
    stop: &Arc<AtomicBool>,
) -> Vec<thread::JoinHandle<()>> {
    let mut joins = Vec::new();
    let sk = stack.clone();
    joins.push(client_loop(stop, stats, "stack bulk client", move |n| {
        let s = stack_stream(&sk, BULK_PORT)?;
        source(&s, |_| drop(s.shutdown(Shutdown::Write)), n)
    }));
    joins.push(client_loop(stop, stats, "kernel bulk client", move |n| {
        let s = kernel_stream(BULK_PORT)?;
        source(&s, |_| drop(s.shutdown(Shutdown::Write)), n << 32)
    }));
    let sk = stack.clone();
    let st = stats.clone();
    let stop2 = stop.clone();
    joins.push(client_loop(
        stop,
        stats,
        "stack request/response",
        move |_| {
            let mut s = stack_stream(&sk, ECHO_PORT)?;
            let mut rng = Rng::new(7);
            let mut msg = [0u8; RR_SIZE];
            let mut back = [0u8; RR_SIZE];
            for _ in 0..10_000 {
                if stop2.load(Relaxed) {
                    break;
                }
                fill(&mut rng, &mut msg);
                s.write_all(&msg)?;
                s.read_exact(&mut back)?;
                if back != msg {
                    return Err(io::Error::other("echo corrupted"));
                }
                st.rr.fetch_add(1, Relaxed);
            }
            s.shutdown(Shutdown::Write)?;
            let mut rest = [0u8; 1];
            match s.read(&mut rest)? {
                0 => Ok(()),
                _ => Err(io::Error::other("echo: bytes after the last reply")),
            }
        },
    ));
    let sk = stack.clone();
    let st = stats.clone();
    joins.push(client_loop(stop, stats, "stack churn client", move |n| {
        churn_client(&stack_stream(&sk, CHURN_PORT)?, n)?;
        st.churn.fetch_add(1, Relaxed);
        Ok(())
    }));
    let st = stats.clone();
    joins.push(client_loop(stop, stats, "kernel churn client", move |n| {
        let mut s = kernel_stream(ECHO_PORT)?;
        let port = s.local_addr().map_or(0, |a| a.port());
        let msg = [(n % 253) as u8; CHURN_SIZE];
        let mut back = [0u8; CHURN_SIZE];
        s.write_all(&msg)
            .and_then(|()| s.read_exact(&mut back))
            .map_err(|e| io::Error::new(e.kind(), format!("{e} (port {port})")))?;
        if back != msg {
            return Err(io::Error::other("churn echo corrupted"));
        }
        st.churn.fetch_add(1, Relaxed);
        Ok(()) // dropped: the kernel closes first
    }));
    let sk = stack.clone();
    let st = stats.clone();
    let stop2 = stop.clone();
    joins.push(client_loop(stop, stats, "stack UDP", move |_| {
        let u = UdpSocket::bind(&sk, (STACK, 0))?;
        u.set_read_timeout(Some(Duration::from_millis(200)))?;
        u.connect((KERNEL, UDP_PORT))?;
        let mut seq = 0u64;
        let mut msg = [0u8; 512];
        let mut back = [0u8; 2048];
        while !stop2.load(Relaxed) && seq < 100_000 {
            seq += 1;
            for (i, b) in msg.iter_mut().enumerate() {
                *b = (seq as usize).wrapping_mul(31).wrapping_add(i) as u8;
            }
            u.send(&msg)?;
            st.udp_sent.fetch_add(1, Relaxed);
            // Late replies to earlier datagrams are skipped: only this
            // one's counts, and it must be intact.
            loop {
                match u.recv(&mut back) {
                    Ok(n) if n == msg.len() && back[..n] == msg => {
                        st.udp_back.fetch_add(1, Relaxed);
                        break;
                    }
                    Ok(n) if n == msg.len() => {
                        let s0 = back[0];
                        let plausible = (1..=seq).rev().take(64).any(|q| {
                            back[..n].iter().enumerate().all(|(i, &b)| {
                                b == (q as usize).wrapping_mul(31).wrapping_add(i) as u8
                            })
                        });
                        if !plausible {
                            return Err(io::Error::other(format!(
                                "UDP datagram corrupted (first byte {s0})"
                            )));
                        }
                    }
                    Ok(n) => return Err(io::Error::other(format!("UDP datagram of {n} bytes"))),
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                        ) =>
                    {
                        break; // lost on the link
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }));
    joins
}

/// Internet checksum over `data` (with an initial sum).
fn checksum(mut sum: u32, data: &[u8]) -> u16 {
    for c in data.chunks(2) {
        let w = if c.len() == 2 {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from_be_bytes([c[0], 0])
        };
        sum += u32::from(w);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A spoofed SYN from 10.77.1.x to the stack's echo listener.
fn syn(rng: &mut Rng) -> [u8; 40] {
    let mut p = [0u8; 40];
    let src = [10, 77, 1, (rng.below(250) + 2) as u8];
    let dst = STACK.octets();
    p[0] = 0x45;
    p[2..4].copy_from_slice(&40u16.to_be_bytes());
    p[4..6].copy_from_slice(&(rng.next_u64() as u16).to_be_bytes());
    p[8] = 64;
    p[9] = 6;
    p[12..16].copy_from_slice(&src);
    p[16..20].copy_from_slice(&dst);
    let ip_sum = checksum(0, &p[..20]);
    p[10..12].copy_from_slice(&ip_sum.to_be_bytes());
    let t = &mut p[20..];
    t[0..2].copy_from_slice(&((rng.below(60_000) + 1024) as u16).to_be_bytes());
    t[2..4].copy_from_slice(&ECHO_PORT.to_be_bytes());
    t[4..8].copy_from_slice(&(rng.next_u64() as u32).to_be_bytes());
    t[12] = 5 << 4;
    t[13] = 0x02; // SYN
    t[14..16].copy_from_slice(&64240u16.to_be_bytes());
    let mut pseudo = 0u32;
    for w in [&src[..], &dst[..]] {
        pseudo += u32::from(u16::from_be_bytes([w[0], w[1]]))
            + u32::from(u16::from_be_bytes([w[2], w[3]]));
    }
    pseudo += 6 + 20;
    let tcp_sum = checksum(pseudo, &p[20..]);
    p[36..38].copy_from_slice(&tcp_sum.to_be_bytes());
    p
}

/// Floods the first 10 s of every minute, about 2,000 SYNs a second.
fn flooder(
    stats: &Arc<Stats>,
    stop: &Arc<AtomicBool>,
    start: Instant,
) -> io::Result<thread::JoinHandle<()>> {
    // SAFETY: socket takes no pointers; the fd is owned below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_RAW) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a new socket only this function holds.
    let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let stats = stats.clone();
    let stop = stop.clone();
    Ok(thread::spawn(move || {
        use std::os::fd::AsRawFd;
        let mut rng = Rng::new(99);
        let dst = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: 0,
            sin_addr: libc::in_addr {
                s_addr: u32::from_ne_bytes(STACK.octets()),
            },
            sin_zero: [0; 8],
        };
        while !stop.load(Relaxed) {
            if start.elapsed().as_secs() % 60 >= 10 {
                thread::sleep(Duration::from_millis(200));
                continue;
            }
            for _ in 0..20 {
                let p = syn(&mut rng);
                // SAFETY: sends our buffer to a live sockaddr_in.
                let n = unsafe {
                    libc::sendto(
                        fd.as_raw_fd(),
                        p.as_ptr().cast(),
                        p.len(),
                        0,
                        (&dst as *const libc::sockaddr_in).cast(),
                        std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
                    )
                };
                if n == p.len() as isize {
                    stats.flood_syns.fetch_add(1, Relaxed);
                }
            }
            thread::sleep(Duration::from_millis(10));
        }
    }))
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn run(minutes: u64) -> Result<bool, String> {
    ustack::sys::enter_private_netns().map_err(|e| format!("private network namespace: {e}"))?;
    let fault = std::env::var("USTACK_FAULT")
        .unwrap_or_else(|_| "loss=0.01,dup=0.005,reorder=0.01,seed=1".into());
    let mut cfg = Config::from_env().map_err(|e| e.to_string())?;
    cfg.fault = Some(FaultConfig::parse(&fault).map_err(|e| format!("USTACK_FAULT: {e}"))?);
    let stack = Stack::from_config(&cfg).map_err(|e| format!("stack on TUN: {e}"))?;
    let stats = Arc::new(Stats::default());
    let stop = Arc::new(AtomicBool::new(false));
    kernel_servers(&stats).map_err(|e| format!("kernel servers: {e}"))?;
    stack_servers(&stack, &stats).map_err(|e| format!("stack servers: {e}"))?;
    let idle_sockets = stack.sockets_in_use();
    let start = Instant::now();
    let mut joins = clients(&stack, &stats, &stop);
    joins.push(flooder(&stats, &stop, start).map_err(|e| format!("raw socket: {e}"))?);
    println!("fault: {fault}");
    println!(
        "| minute | bulk MiB/s | RR/s | churn conn/s | UDP sent/s | UDP back % | SYNs flooded | cookie ghosts | errors | RSS MiB | stack sockets |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let mut last = [0u64; 6];
    for minute in 1..=minutes {
        let due = start + Duration::from_secs(60 * minute);
        thread::sleep(due.saturating_duration_since(Instant::now()));
        let now = [
            stats.bulk_bytes.load(Relaxed),
            stats.rr.load(Relaxed),
            stats.churn.load(Relaxed),
            stats.udp_sent.load(Relaxed),
            stats.udp_back.load(Relaxed),
            stats.flood_syns.load(Relaxed),
        ];
        let d: Vec<u64> = now.iter().zip(last).map(|(a, b)| a - b).collect();
        last = now;
        println!(
            "| {minute} | {:.1} | {:.0} | {:.0} | {:.0} | {:.1} | {} | {} | {} | {:.1} | {} |",
            d[0] as f64 / 60.0 / 1048576.0,
            d[1] as f64 / 60.0,
            d[2] as f64 / 60.0,
            d[3] as f64 / 60.0,
            if d[3] == 0 {
                0.0
            } else {
                d[4] as f64 * 100.0 / d[3] as f64
            },
            d[5],
            stats.ghosts.load(Relaxed),
            stats.errors.load(Relaxed),
            rss_kib() as f64 / 1024.0,
            stack.sockets_in_use(),
        );
    }
    stop.store(true, Relaxed);
    for j in joins {
        let _ = j.join();
    }
    // Let closing connections finish: FIN handshakes, SYN-RECEIVED entries
    // of the flood timing out, and the cookie ghosts (see `stack_servers`):
    // a ghost's FIN reaches a peer in TIME-WAIT, which answers with an ACK
    // the ghost cannot take and, as Linux does for any out-of-window
    // segment, restarts its 60 s; the ghost retransmits its FIN with
    // back-off until a gap exceeds 60 s and the peer's RST ends it, about
    // two minutes. Five minutes is the bound.
    let drain = Instant::now();
    while stack.sockets_in_use() > idle_sockets && drain.elapsed() < Duration::from_secs(300) {
        thread::sleep(Duration::from_millis(500));
    }
    let left = stack.sockets_in_use().saturating_sub(idle_sockets);
    if left > 0 {
        println!("left behind, by state: {:?}", stack.tcp_states());
    }
    let errors = stats.errors.load(Relaxed);
    println!(
        "end: {errors} errors, {} cookie ghosts, {left} sockets left beyond the {idle_sockets} listeners after {:.1} s of draining, RSS {:.1} MiB, tcp counters: {:?}",
        stats.ghosts.load(Relaxed),
        drain.elapsed().as_secs_f64(),
        rss_kib() as f64 / 1024.0,
        stack.tcp_counters()
    );
    Ok(errors == 0 && left == 0)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let minutes = match args.as_slice() {
        [m] => match m.parse::<u64>() {
            Ok(m) if m > 0 => m,
            _ => {
                eprintln!("soak: MINUTES must be a positive number, not '{m}'");
                return ExitCode::from(2);
            }
        },
        _ => {
            eprintln!("usage: soak MINUTES");
            return ExitCode::from(2);
        }
    };
    match run(minutes) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("soak: {e}");
            ExitCode::FAILURE
        }
    }
}
