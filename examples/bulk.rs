//! Bulk TCP transfer over the userspace stack, for measurements.
//!
//! `bulk send ADDR PORT MIB` connects and sends MIB mebibytes;
//! `bulk recv PORT` accepts one connection and reads it to the end. Each
//! prints one line: bytes, seconds, Gbit/s. The stack is configured by the
//! `USTACK_*` variables; run it inside a network namespace of your own.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Instant;

use ustack::api::{Stack, TcpListener, TcpStream};

fn report(bytes: u64, start: Instant) {
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{bytes} bytes in {secs:.3} s: {:.3} Gbit/s",
        bytes as f64 * 8.0 / secs / 1e9
    );
}

fn run(args: &[String]) -> Result<(), String> {
    let stack = Stack::from_env().map_err(|e| format!("ustack: {e}"))?;
    match args {
        [mode, addr, port, mib] if mode == "send" => {
            let ip: IpAddr = addr.parse().map_err(|_| format!("bad address '{addr}'"))?;
            let port: u16 = port.parse().map_err(|_| format!("bad port '{port}'"))?;
            let mib: u64 = mib.parse().map_err(|_| format!("bad size '{mib}'"))?;
            let mut s = TcpStream::connect(&stack, (ip, port)).map_err(|e| e.to_string())?;
            let buf = vec![0x5au8; 256 * 1024];
            let total = mib << 20;
            let start = Instant::now();
            let mut sent = 0u64;
            while sent < total {
                let n = (total - sent).min(buf.len() as u64) as usize;
                s.write_all(&buf[..n]).map_err(|e| e.to_string())?;
                sent += n as u64;
            }
            s.shutdown(std::net::Shutdown::Write)
                .map_err(|e| e.to_string())?;
            // Wait for the receiver to close, so the clock covers delivery.
            let _ = s.read(&mut [0u8; 1]);
            report(sent, start);
            Ok(())
        }
        [mode, port] if mode == "recv" => {
            let port: u16 = port.parse().map_err(|_| format!("bad port '{port}'"))?;
            let l = TcpListener::bind(&stack, SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)))
                .map_err(|e| e.to_string())?;
            let (mut s, _) = l.accept().map_err(|e| e.to_string())?;
            let mut buf = vec![0u8; 256 * 1024];
            let start = Instant::now();
            let mut got = 0u64;
            loop {
                let n = s.read(&mut buf).map_err(|e| e.to_string())?;
                if n == 0 {
                    break;
                }
                got += n as u64;
            }
            report(got, start);
            Ok(())
        }
        _ => Err("usage: bulk send ADDR PORT MIB | bulk recv PORT".into()),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bulk: {e}");
            ExitCode::from(1)
        }
    }
}
