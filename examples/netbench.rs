//! The two ends of `scripts/bench.sh`'s measurements.
//!
//! `netbench serve [--kernel]` is the stack under test: over ustack (the
//! `USTACK_*` variables describe its TUN device) or, with `--kernel`, over
//! the kernel's own sockets. It serves, on every address:
//!
//! | port | service |
//! | --- | --- |
//! | TCP 5001 | sink: reads each connection to its end, then closes |
//! | TCP 5002 | source: writes to each connection until the peer goes away |
//! | TCP 5003 | echo, for request/response |
//! | TCP 5010-5013 | echo, for connections per second: a port per run (see below) |
//! | UDP 5004 | flood: a request `SIZE SECS` is answered with datagrams of SIZE bytes for SECS seconds |
//!
//! `netbench client MODE ADDR SECS [SIZE]` always uses the kernel's sockets,
//! measures one figure against a server and prints one line of `key=value`
//! fields: MODE is `sink` (the server receives), `source` (the server
//! sends), `rr` (1-byte round trips over one connection), `crr` (connect,
//! one 1-byte round trip, close; to port 5010 + SIZE mod 4), `udp`
//! (datagrams of SIZE bytes the server sends, counted here). Every line ends
//! with `cpu=`, the client's own user+system CPU seconds (getrusage). Run
//! both inside network namespaces of your own.
//!
//! Connections per second use a server port per run so that the TIME-WAIT
//! connections one run leaves on the client (which closes first) do not
//! slow the next run's connects: against a peer without TCP timestamps
//! (smoltcp) the kernel cannot reuse them, and its port search slows to a
//! crawl after some 30,000 connections to one address and port.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv6Addr, Shutdown, SocketAddr};
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

const SINK: u16 = 5001;
const SOURCE: u16 = 5002;
const ECHO: u16 = 5003;
const CRR_PORTS: std::ops::RangeInclusive<u16> = 5010..=5013;
const FLOOD: u16 = 5004;
const CHUNK: usize = 256 * 1024;

fn sink(mut s: impl Read) {
    let mut buf = vec![0u8; CHUNK];
    while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
}

fn source(mut s: impl Write) {
    let buf = vec![0x5au8; CHUNK];
    while s.write_all(&buf).is_ok() {}
}

fn echo(mut s: impl Read + Write) {
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 || s.write_all(&buf[..n]).is_err() {
            break;
        }
    }
}

/// Parses a flood request `SIZE SECS`.
fn flood_request(req: &[u8]) -> Option<(usize, f64)> {
    let text = std::str::from_utf8(req).ok()?;
    let mut it = text.split_whitespace();
    let size: usize = it.next()?.parse().ok()?;
    let secs: f64 = it.next()?.parse().ok()?;
    (size <= 65_000 && secs > 0.0 && secs <= 30.0).then_some((size, secs))
}

/// Answers flood requests one at a time through `send` until the deadline.
fn flood(
    mut recv: impl FnMut(&mut [u8]) -> io::Result<(usize, SocketAddr)>,
    send: impl Fn(&[u8], SocketAddr) -> io::Result<usize>,
) {
    let mut req = [0u8; 64];
    while let Ok((n, from)) = recv(&mut req) {
        let Some((size, secs)) = flood_request(&req[..n]) else {
            continue;
        };
        let payload = vec![0x5au8; size];
        let deadline = Instant::now() + Duration::from_secs_f64(secs);
        let mut sent = 0u64;
        while Instant::now() < deadline {
            for _ in 0..64 {
                match send(&payload, from) {
                    Ok(_) => sent += 1,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => thread::yield_now(),
                    // The kernel reports a full device queue as ENOBUFS.
                    Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => thread::yield_now(),
                    Err(_) => break,
                }
            }
        }
        eprintln!("netbench: flood of {size}-byte datagrams to {from}: {sent} sent");
    }
}

fn serve_kernel() -> io::Result<()> {
    use std::net::{TcpListener, UdpSocket};
    let any = |port| SocketAddr::from((Ipv6Addr::UNSPECIFIED, port));
    let echo_nodelay = |s: std::net::TcpStream| {
        let _ = s.set_nodelay(true);
        echo(s)
    };
    let mut services: Vec<(u16, fn(std::net::TcpStream))> = vec![
        (SINK, |s| sink(s)),
        (SOURCE, |s| source(s)),
        (ECHO, echo_nodelay),
    ];
    services.extend(CRR_PORTS.map(|p| (p, echo_nodelay as fn(std::net::TcpStream))));
    for (port, handler) in services {
        let l = TcpListener::bind(any(port))?;
        thread::spawn(move || {
            for s in l.incoming().flatten() {
                // Echo connections are served one at a time by the
                // accepting thread (an iterative server): connections per
                // second then measure the stack, not thread creation.
                if port == ECHO || CRR_PORTS.contains(&port) {
                    handler(s);
                } else {
                    thread::spawn(move || handler(s));
                }
            }
        });
    }
    let udp = UdpSocket::bind(any(FLOOD))?;
    flood(|b| udp.recv_from(b), |b, to| udp.send_to(b, to));
    Ok(())
}

fn serve_ustack() -> io::Result<()> {
    use ustack::api::{Stack, TcpListener, TcpStream, UdpSocket};
    let stack = Stack::from_env()?;
    let any = |port| SocketAddr::from((Ipv6Addr::UNSPECIFIED, port));
    let echo_nodelay = |s: TcpStream| {
        let _ = s.set_nodelay(true);
        echo(s)
    };
    let mut services: Vec<(u16, fn(TcpStream))> = vec![
        (SINK, |s| sink(s)),
        (SOURCE, |s| source(s)),
        (ECHO, echo_nodelay),
    ];
    services.extend(CRR_PORTS.map(|p| (p, echo_nodelay as fn(TcpStream))));
    for (port, handler) in services {
        let l = TcpListener::bind(&stack, any(port))?;
        thread::spawn(move || {
            for s in l.incoming().flatten() {
                // Echo connections are served one at a time by the
                // accepting thread (an iterative server): connections per
                // second then measure the stack, not thread creation.
                if port == ECHO || CRR_PORTS.contains(&port) {
                    handler(s);
                } else {
                    thread::spawn(move || handler(s));
                }
            }
        });
    }
    let udp = UdpSocket::bind(&stack, any(FLOOD))?;
    flood(|b| udp.recv_from(b), |b, to| udp.send_to(b, to));
    Ok(())
}

fn cpu_secs() -> f64 {
    // SAFETY: getrusage writes one rusage into the zeroed struct we own.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn connect(ip: IpAddr, port: u16) -> io::Result<std::net::TcpStream> {
    std::net::TcpStream::connect_timeout(&SocketAddr::new(ip, port), Duration::from_secs(3))
}

fn client(mode: &str, ip: IpAddr, secs: f64, size: usize) -> io::Result<String> {
    let dur = Duration::from_secs_f64(secs);
    let timeout = Some(Duration::from_secs(5));
    match mode {
        "sink" => {
            // We send; the clock stops when the server has read everything
            // and closed.
            let mut s = connect(ip, SINK)?;
            s.set_read_timeout(timeout)?;
            s.set_write_timeout(timeout)?;
            let buf = vec![0x5au8; CHUNK];
            let start = Instant::now();
            let mut bytes = 0u64;
            while start.elapsed() < dur {
                s.write_all(&buf)?;
                bytes += buf.len() as u64;
            }
            s.shutdown(Shutdown::Write)?;
            let _ = s.read(&mut [0u8; 1])?;
            let t = start.elapsed().as_secs_f64();
            Ok(format!(
                "bytes={bytes} secs={t:.4} gbps={:.4}",
                bytes as f64 * 8.0 / t / 1e9
            ))
        }
        "source" => {
            let mut s = connect(ip, SOURCE)?;
            s.set_read_timeout(timeout)?;
            let mut buf = vec![0u8; CHUNK];
            let mut bytes = s.read(&mut buf)? as u64;
            let start = Instant::now();
            let mut counted = 0u64;
            while start.elapsed() < dur {
                let n = s.read(&mut buf)?;
                if n == 0 {
                    return Err(io::Error::new(
                        ErrorKind::UnexpectedEof,
                        "source closed early",
                    ));
                }
                counted += n as u64;
            }
            bytes += counted;
            let t = start.elapsed().as_secs_f64();
            Ok(format!(
                "bytes={bytes} secs={t:.4} gbps={:.4}",
                counted as f64 * 8.0 / t / 1e9
            ))
        }
        "rr" => {
            let mut s = connect(ip, ECHO)?;
            s.set_nodelay(true)?;
            s.set_read_timeout(timeout)?;
            let mut b = [1u8];
            let start = Instant::now();
            let mut n = 0u64;
            while start.elapsed() < dur {
                s.write_all(&b)?;
                s.read_exact(&mut b)?;
                n += 1;
            }
            let t = start.elapsed().as_secs_f64();
            Ok(format!("count={n} secs={t:.4} rate={:.1}", n as f64 / t))
        }
        "crr" => {
            let start = Instant::now();
            let mut n = 0u64;
            let port = *CRR_PORTS.start() + (size % CRR_PORTS.len()) as u16;
            while start.elapsed() < dur {
                let mut s = connect(ip, port)?;
                s.set_nodelay(true)?;
                s.set_read_timeout(timeout)?;
                let mut b = [1u8];
                s.write_all(&b)?;
                s.read_exact(&mut b)?;
                n += 1;
            }
            let t = start.elapsed().as_secs_f64();
            Ok(format!("count={n} secs={t:.4} rate={:.1}", n as f64 / t))
        }
        "udp" => {
            let bind: SocketAddr = if ip.is_ipv4() {
                "0.0.0.0:0".parse().unwrap()
            } else {
                "[::]:0".parse().unwrap()
            };
            let u = std::net::UdpSocket::bind(bind)?;
            let rcvbuf: libc::c_int = 32 << 20;
            // SAFETY: setsockopt reads one c_int from a live local; the fd is ours.
            unsafe {
                use std::os::fd::AsRawFd;
                libc::setsockopt(
                    u.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_RCVBUFFORCE,
                    (&rcvbuf as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                );
            }
            u.set_read_timeout(Some(Duration::from_millis(500)))?;
            u.send_to(
                format!("{size} {secs}").as_bytes(),
                SocketAddr::new(ip, FLOOD),
            )?;
            let mut buf = vec![0u8; 65536];
            let mut first = None;
            let mut last = Instant::now();
            let mut n = 0u64;
            let hard = Instant::now() + dur + Duration::from_secs(3);
            while Instant::now() < hard {
                match u.recv_from(&mut buf) {
                    Ok((len, _)) if len == size => {
                        last = Instant::now();
                        first.get_or_insert(last);
                        n += 1;
                    }
                    Ok(_) => {}
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                        if first.is_some() {
                            break;
                        }
                        // The request may have been lost: ask once more.
                        u.send_to(
                            format!("{size} {secs}").as_bytes(),
                            SocketAddr::new(ip, FLOOD),
                        )?;
                    }
                    Err(e) => return Err(e),
                }
            }
            let t = first.map_or(0.0, |f| (last - f).as_secs_f64());
            let rate = if t > 0.0 { n as f64 / t } else { 0.0 };
            Ok(format!("count={n} secs={t:.4} rate={rate:.1}"))
        }
        _ => Err(io::Error::new(
            ErrorKind::InvalidInput,
            format!("unknown mode '{mode}'"),
        )),
    }
}

fn run(args: &[String]) -> Result<(), String> {
    match args {
        [cmd] if cmd == "serve" => serve_ustack().map_err(|e| e.to_string()),
        [cmd, flag] if cmd == "serve" && flag == "--kernel" => serve_kernel().map_err(|e| e.to_string()),
        [cmd, mode, addr, secs, rest @ ..] if cmd == "client" && rest.len() <= 1 => {
            let ip: IpAddr = addr.parse().map_err(|_| format!("bad address '{addr}'"))?;
            let secs: f64 = secs.parse().map_err(|_| format!("bad duration '{secs}'"))?;
            let size: usize = match rest {
                [s] => s.parse().map_err(|_| format!("bad size '{s}'"))?,
                _ if mode == "udp" => 64,
                _ => 0,
            };
            let line = client(mode, ip, secs, size).map_err(|e| format!("{mode}: {e}"))?;
            println!("{mode} {line} cpu={:.3}", cpu_secs());
            Ok(())
        }
        _ => Err("usage: netbench serve [--kernel] | netbench client sink|source|rr|crr|udp ADDR SECS [SIZE|RUN]".into()),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("netbench: {e}");
            ExitCode::from(1)
        }
    }
}
