//! Memory per idle TCP connection: the stack's against the kernel's, in
//! one run.
//!
//! `idle N` moves into a private network namespace of its own, starts a
//! stack on a TUN device there, opens N connections from the stack to a
//! kernel listener in the same process and leaves them idle; the stack's
//! cost is the process's RSS growth divided by N (the kernel's ends are
//! kernel memory, not in the RSS). The kernel's cost is measured the same
//! way on kernel sockets: N/2 loopback connections (N sockets; the fd
//! limit allows no more), the growth of the kernel's slab caches that hold
//! a socket (TCP, TCPv6, sock_inode_cache, filp, dentry; /proc/slabinfo,
//! root only) divided by the number of sockets. Neither counts the socket
//! buffers' pages, which idle connections do not hold. Prints one table.

use std::net::{self, Ipv4Addr};
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use ustack::api::{Stack, TcpStream};
use ustack::config::Config;

const KERNEL: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024)
}

/// Bytes in use in the slab caches a kernel socket lives in.
fn slab_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/slabinfo").ok()?;
    let mut total = 0;
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() > 3 && ["TCP", "TCPv6", "sock_inode_cache", "filp", "dentry"].contains(&f[0]) {
            let active: u64 = f[1].parse().ok()?;
            let size: u64 = f[3].parse().ok()?;
            total += active * size;
        }
    }
    Some(total)
}

/// Accepts `n` connections on `l`, keeping them open, on a thread.
fn acceptor(l: net::TcpListener, n: usize) -> thread::JoinHandle<Vec<net::TcpStream>> {
    thread::spawn(move || {
        let mut kept = Vec::with_capacity(n);
        while kept.len() < n {
            match l.accept() {
                Ok((s, _)) => kept.push(s),
                Err(e) => {
                    eprintln!("idle: accept: {e}");
                    break;
                }
            }
        }
        kept
    })
}

fn raise_fd_limit() {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit on our own live struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 {
            r.rlim_cur = r.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
    }
}

fn fd_limit() -> usize {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit on our own live struct.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) };
    usize::try_from(r.rlim_cur).unwrap_or(usize::MAX)
}

fn run(n: usize) -> Result<(), String> {
    ustack::sys::enter_private_netns().map_err(|e| format!("private network namespace: {e}"))?;
    raise_fd_limit();
    let n = n.min(fd_limit().saturating_sub(200));
    let stack = Stack::from_config(&Config::default()).map_err(|e| format!("stack on TUN: {e}"))?;
    let l = net::TcpListener::bind((KERNEL, 9100)).map_err(|e| format!("listen: {e}"))?;
    let accepted = acceptor(l, n);
    // Warm up: the first connection allocates the stack's tables.
    drop(TcpStream::connect(&stack, (KERNEL, 9100)).map_err(|e| e.to_string())?);
    thread::sleep(Duration::from_millis(200));
    let before = rss_bytes();
    let start = Instant::now();
    let mut conns = Vec::with_capacity(n);
    for _ in 1..n {
        conns.push(TcpStream::connect(&stack, (KERNEL, 9100)).map_err(|e| e.to_string())?);
    }
    let kept = accepted.join().map_err(|_| "acceptor panicked")?;
    thread::sleep(Duration::from_millis(500));
    let after = rss_bytes();
    let ours = (after.saturating_sub(before)) as f64 / conns.len() as f64;
    println!(
        "ustack: {} idle connections in {:.1} s, {} sockets in the stack, RSS +{:.1} MiB",
        conns.len(),
        start.elapsed().as_secs_f64(),
        stack.sockets_in_use(),
        (after - before) as f64 / 1048576.0
    );
    drop(kept);
    drop(conns);

    // The kernel, on its own sockets over loopback (down in a new
    // namespace).
    let up = std::process::Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status()
        .map_err(|e| format!("ip link set lo up: {e}"))?;
    if !up.success() {
        return Err("ip link set lo up failed".into());
    }
    let pairs = (n / 2).min(fd_limit().saturating_sub(200) / 2);
    let l = net::TcpListener::bind((Ipv4Addr::LOCALHOST, 9101)).map_err(|e| e.to_string())?;
    let accepted = acceptor(l, pairs);
    let slab_before = slab_bytes();
    let mut clients = Vec::with_capacity(pairs);
    for _ in 0..pairs {
        clients
            .push(net::TcpStream::connect((Ipv4Addr::LOCALHOST, 9101)).map_err(|e| e.to_string())?);
    }
    let kept = accepted.join().map_err(|_| "acceptor panicked")?;
    thread::sleep(Duration::from_millis(500));
    let kernel = match (slab_before, slab_bytes()) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 / (2 * pairs) as f64),
        _ => None,
    };
    println!(
        "kernel: {} idle sockets ({pairs} loopback connections)",
        2 * kept.len()
    );
    println!();
    println!("| bytes per idle connection | ustack | kernel | ratio |");
    println!("|---|---|---|---|");
    match kernel {
        Some(k) => println!("| one end, idle | {ours:.0} | {k:.0} | {:.2} |", ours / k),
        None => println!("| one end, idle | {ours:.0} | n/a (/proc/slabinfo needs root) | n/a |"),
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n = match args.as_slice() {
        [] => 10_000,
        [n] => match n.parse::<usize>() {
            Ok(n) if n >= 2 => n,
            _ => {
                eprintln!("idle: N must be a number of at least 2, not '{n}'");
                return ExitCode::from(2);
            }
        },
        _ => {
            eprintln!("usage: idle [N]   (default 10000)");
            return ExitCode::from(2);
        }
    };
    match run(n) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("idle: {e}");
            ExitCode::FAILURE
        }
    }
}
