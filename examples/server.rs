//! The ustack example server: starts the stack on the TUN device that the
//! `USTACK_*` variables describe and serves until SIGINT or SIGTERM.
//!
//! Services, on both the IPv4 and the IPv6 address: ping (ICMP and ICMPv6
//! echo); TCP echo (7), discard (9) and chargen (19); UDP echo (7) and
//! discard (9). Run it inside a network namespace of your own (`unshare -n`
//! as root, `unshare -rn` as an ordinary user), then `ping 10.77.0.2` or
//! `nc 10.77.0.2 7`.

use std::io::{Read, Write};
use std::net::{Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::thread;

use ustack::api::{Stack, TcpListener, TcpStream, UdpSocket};
use ustack::config::Config;
use ustack::sys::TerminationSignals;

/// RFC 864's rotating line: 72 printable characters, shifted one per line.
fn chargen_line(n: usize) -> [u8; 74] {
    let mut line = [0u8; 74];
    for (i, b) in line[..72].iter_mut().enumerate() {
        *b = b' ' + 1 + ((n + i) % 94) as u8;
    }
    line[72] = b'\r';
    line[73] = b'\n';
    line
}

fn serve_tcp(stack: &Stack, port: u16, handler: fn(TcpStream)) -> std::io::Result<()> {
    // A dual-stack listener on :: takes IPv4 clients too.
    let listener = TcpListener::bind(stack, SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)))?;
    thread::Builder::new()
        .name(format!("tcp-{port}"))
        .spawn(move || {
            for stream in listener.incoming() {
                match stream {
                    Ok(s) => {
                        thread::spawn(move || handler(s));
                    }
                    Err(e) => {
                        log::warn!("accept on port {port}: {e}");
                        return;
                    }
                }
            }
        })?;
    Ok(())
}

fn echo(mut s: TcpStream) {
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 || s.write_all(&buf[..n]).is_err() {
            break;
        }
    }
}

fn discard(mut s: TcpStream) {
    let mut buf = vec![0u8; 64 * 1024];
    while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
}

fn chargen(mut s: TcpStream) {
    let mut block = Vec::with_capacity(74 * 95);
    for n in 0..95 {
        block.extend_from_slice(&chargen_line(n));
    }
    while s.write_all(&block).is_ok() {}
}

fn serve_udp(stack: &Stack, port: u16, reply: bool) -> std::io::Result<()> {
    let sock = UdpSocket::bind(stack, SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)))?;
    thread::Builder::new()
        .name(format!("udp-{port}"))
        .spawn(move || {
            let mut buf = vec![0u8; 65536];
            while let Ok((n, from)) = sock.recv_from(&mut buf) {
                if reply && let Err(e) = sock.send_to(&buf[..n], from) {
                    log::debug!("udp echo to {from}: {e}");
                }
            }
        })?;
    Ok(())
}

fn start_services(stack: &Stack) -> std::io::Result<()> {
    serve_tcp(stack, 7, echo)?;
    serve_tcp(stack, 9, discard)?;
    serve_tcp(stack, 19, chargen)?;
    serve_udp(stack, 7, true)?;
    serve_udp(stack, 9, false)?;
    Ok(())
}

fn main() -> ExitCode {
    let cfg = match Config::from_env() {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    ustack::logging::init(cfg.log);
    // Blocked before any thread starts, so only `wait` sees them.
    let signals = match TerminationSignals::block() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ustack: cannot block termination signals: {e}");
            return ExitCode::from(1);
        }
    };
    let stack = match Stack::from_config(&cfg) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ustack: {e}");
            return ExitCode::from(1);
        }
    };
    if let Err(e) = start_services(&stack) {
        eprintln!("ustack: starting services: {e}");
        return ExitCode::from(1);
    }
    log::info!(
        "serving on {} and {} via {} (mtu {}): ping; tcp echo 7, discard 9, chargen 19; udp echo 7, discard 9",
        cfg.addr_text(),
        cfg.addr6_text(),
        cfg.ifname,
        cfg.mtu
    );
    let sig = signals.wait();
    log::info!("stopping on signal {sig:?}");
    let c = stack.counters();
    stack.shutdown();
    log::info!(
        "ip in {} out {}; echo replies {}; malformed {}; tcp segments to no socket {}",
        c.ip_in,
        c.ip_out,
        c.echo_replies,
        c.ip_malformed,
        c.tcp_no_socket
    );
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::chargen_line;

    #[test]
    fn chargen_lines_rotate_through_printable_ascii() {
        let l0 = chargen_line(0);
        let l1 = chargen_line(1);
        assert_eq!(l0[0], b'!');
        assert_eq!(&l0[1..72], &l1[..71]);
        assert!(l0[..72].iter().all(|b| (b'!'..=b'~').contains(b)));
        assert_eq!(&l0[72..], b"\r\n");
    }
}
