//! smoltcp as the stack under test in `scripts/bench.sh`: the same services
//! as `netbench serve` (examples/netbench.rs), on a TUN device in IP mode.
//!
//! `smoltcp-peer IFNAME ADDR/PREFIX` attaches to the TUN device IFNAME
//! (made and configured beforehand by the script: the kernel's address and
//! the link's MTU) and serves on ADDR:
//!
//! | port | service |
//! | --- | --- |
//! | TCP 5001 | sink: reads each connection to its end, then closes |
//! | TCP 5002 | source: writes until the peer goes away |
//! | TCP 5003 | echo (request/response) |
//! | TCP 5010-5013 | echo (connections per second, one port per run) |
//! | UDP 5004 | flood: a request `SIZE SECS` is answered with SIZE-byte datagrams for SECS seconds |
//!
//! One thread polls the interface, as smoltcp is meant to be driven. Its
//! best settings: 4 MiB socket buffers (so window scaling), CUBIC, no Nagle
//! and no delayed ACK on the echo port.

use std::os::fd::AsRawFd;
use std::process::ExitCode;

use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{Medium, TunTapInterface, wait};
use smoltcp::socket::{tcp, udp};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{HardwareAddress, IpCidr, IpEndpoint};

const SINK: u16 = 5001;
const SOURCE: u16 = 5002;
const ECHO: u16 = 5003;
const FLOOD: u16 = 5004;
const BULK_BUF: usize = 4 << 20;
const ECHO_BUF: usize = 64 << 10;

#[derive(Clone, Copy, PartialEq)]
enum Service {
    Sink,
    Source,
    Echo(u16),
}

struct Flood {
    to: IpEndpoint,
    size: usize,
    until: Instant,
    sent: u64,
}

fn tcp_socket(service: Service) -> tcp::Socket<'static> {
    let size = if matches!(service, Service::Echo(_)) {
        ECHO_BUF
    } else {
        BULK_BUF
    };
    let mut s = tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; size]),
        tcp::SocketBuffer::new(vec![0; size]),
    );
    s.set_congestion_control(tcp::CongestionControl::Cubic);
    s.set_ack_delay(None);
    if matches!(service, Service::Echo(_)) {
        s.set_nagle_enabled(false);
    }
    s
}

fn port(service: Service) -> u16 {
    match service {
        Service::Sink => SINK,
        Service::Source => SOURCE,
        Service::Echo(port) => port,
    }
}

/// Moves one connection along; a finished one listens again.
fn serve_tcp(s: &mut tcp::Socket, service: Service, scratch: &mut [u8], received: &mut u64) {
    match s.state() {
        tcp::State::Closed => {
            let _ = s.listen(port(service));
            return;
        }
        tcp::State::TimeWait => {
            s.abort();
            let _ = s.listen(port(service));
            return;
        }
        _ => {}
    }
    match service {
        Service::Sink => {
            while s.can_recv() {
                match s.recv(|b| (b.len(), b.len())) {
                    Ok(n) => *received += n as u64,
                    Err(_) => break,
                }
            }
        }
        Service::Source => {
            while s.can_send() {
                if s.send(|b| (b.len(), ())).is_err() {
                    break;
                }
            }
        }
        Service::Echo(_) => {
            while s.can_recv() && s.can_send() {
                let room = (s.send_capacity() - s.send_queue()).min(scratch.len());
                let Ok(n) = s.recv_slice(&mut scratch[..room]) else {
                    break;
                };
                if n == 0 || s.send_slice(&scratch[..n]).is_err() {
                    break;
                }
            }
        }
    }
    // The peer has finished: so do we (its data, if any, was read above).
    if s.state() == tcp::State::CloseWait {
        if service == Service::Sink {
            eprintln!("smoltcp-peer: sink connection: {received} bytes");
            *received = 0;
        }
        s.close();
    }
}

fn parse_request(req: &[u8]) -> Option<(usize, f64)> {
    let text = std::str::from_utf8(req).ok()?;
    let mut it = text.split_whitespace();
    let size: usize = it.next()?.parse().ok()?;
    let secs: f64 = it.next()?.parse().ok()?;
    (size <= 1472 && secs > 0.0 && secs <= 30.0).then_some((size, secs))
}

fn serve_udp(s: &mut udp::Socket, flood: &mut Option<Flood>, now: Instant) {
    let mut req = [0u8; 64];
    while let Ok((n, meta)) = s.recv_slice(&mut req) {
        if let Some((size, secs)) = parse_request(&req[..n]) {
            *flood = Some(Flood {
                to: meta.endpoint,
                size,
                until: now + Duration::from_micros((secs * 1e6) as u64),
                sent: 0,
            });
        }
    }
    if let Some(f) = flood {
        if now >= f.until {
            eprintln!(
                "smoltcp-peer: flood of {}-byte datagrams to {}: {} sent",
                f.size, f.to, f.sent
            );
            *flood = None;
            return;
        }
        while s.can_send() {
            match s.send(f.size, f.to) {
                Ok(buf) => {
                    buf.fill(0x5a);
                    f.sent += 1;
                }
                Err(_) => break,
            }
        }
    }
}

fn run(ifname: &str, cidr: &str) -> Result<(), String> {
    let cidr: IpCidr = cidr.parse().map_err(|_| format!("bad address '{cidr}'"))?;
    let mut device =
        TunTapInterface::new(ifname, Medium::Ip).map_err(|e| format!("{ifname}: {e}"))?;
    let fd = device.as_raw_fd();
    let mut config = Config::new(HardwareAddress::Ip);
    config.random_seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    let mut iface = Interface::new(config, &mut device, Instant::now());
    iface.update_ip_addrs(|addrs| {
        let _ = addrs.push(cidr);
    });

    let mut sockets = SocketSet::new(vec![]);
    let mut tcp_handles: Vec<(SocketHandle, Service, u64)> = Vec::new();
    // Spare listeners, so a new connection finds one while the last closes.
    let mut services = vec![
        (Service::Sink, 2),
        (Service::Source, 2),
        (Service::Echo(ECHO), 2),
    ];
    services.extend((5010..=5013).map(|p| (Service::Echo(p), 4)));
    for (service, count) in services {
        for _ in 0..count {
            let mut s = tcp_socket(service);
            s.listen(port(service)).map_err(|e| e.to_string())?;
            tcp_handles.push((sockets.add(s), service, 0));
        }
    }
    let mut udp_sock = udp::Socket::new(
        udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 64], vec![0; 64 * 1024]),
        udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 1024], vec![0; 1024 * 1500]),
    );
    udp_sock.bind(FLOOD).map_err(|e| e.to_string())?;
    let udp_handle = sockets.add(udp_sock);
    let mut flood = None;
    let mut scratch = vec![0u8; ECHO_BUF];

    loop {
        let now = Instant::now();
        iface.poll(now, &mut device, &mut sockets);
        for (h, service, received) in &mut tcp_handles {
            serve_tcp(
                sockets.get_mut::<tcp::Socket>(*h),
                *service,
                &mut scratch,
                received,
            );
        }
        serve_udp(sockets.get_mut::<udp::Socket>(udp_handle), &mut flood, now);
        // Sleep until a packet arrives or a socket has something to send
        // (poll_delay is zero then); the next poll sends what was queued.
        let delay = if flood.is_some() {
            Some(Duration::ZERO)
        } else {
            iface.poll_delay(Instant::now(), &sockets)
        };
        wait(fd, delay).map_err(|e| format!("poll: {e}"))?;
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.as_slice() {
        [ifname, cidr] => run(ifname, cidr),
        _ => Err("usage: smoltcp-peer IFNAME ADDR/PREFIX".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("smoltcp-peer: {e}");
            ExitCode::from(1)
        }
    }
}
