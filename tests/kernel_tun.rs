//! The stack against the Linux kernel through a real TUN device. Each test
//! runs on a thread that first moves into a private network namespace of
//! its own, so the device and every packet stay inside it. Kernel-side
//! sockets are plain `std::net` sockets made on that thread.
//!
//! These tests need root (they fail, saying so, without it).
//! `USTACK_KERNEL_BULK_MIB` sets the clean bulk transfer size and
//! `USTACK_KERNEL_FAULT_MIB` the one through faults (both default 100).

use std::io::{ErrorKind, Read, Write};
use std::net::{self, IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr};
use std::thread;
use std::time::{Duration, Instant};

use ustack::api::{Stack, TcpListener, TcpStream, UdpSocket};
use ustack::config::Config;
use ustack::device::FaultConfig;

const STACK4: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
const KERNEL4: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
const STACK6: Ipv6Addr = Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 2);
const KERNEL6: Ipv6Addr = Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 1);

/// Runs `f` with a stack on a TUN device, in a private network namespace.
fn with_stack<R: Send + 'static>(
    fault: Option<&str>,
    f: impl FnOnce(Stack) -> R + Send + 'static,
) -> R {
    let cfg = Config {
        fault: fault.map(|s| FaultConfig::parse(s).unwrap()),
        ..Config::default()
    };
    with_config(cfg, f)
}

/// Runs `f` with a stack started from `cfg` on a TUN device, in a private
/// network namespace.
fn with_config<R: Send + 'static>(cfg: Config, f: impl FnOnce(Stack) -> R + Send + 'static) -> R {
    thread::spawn(move || {
        ustack::sys::enter_private_netns().expect("private network namespace (run as root)");
        let stack = Stack::from_config(&cfg).expect("stack on TUN");
        wait_for_kernel_ipv6();
        f(stack)
    })
    .join()
    .unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// The kernel's IPv6 address stays tentative until its addrconf worker has
/// seen the device come up; on a loaded machine that is after the stack
/// has started, and binding to it fails meanwhile.
fn wait_for_kernel_ipv6() {
    let deadline = Instant::now() + Duration::from_secs(5);
    while net::UdpSocket::bind((KERNEL6, 0)).is_err() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
}

/// The kernel's own description of the device (`ip -d link show`; not
/// /sys, which shows the namespace it was mounted in).
fn kernel_link_details(ifname: &str) -> String {
    let out = std::process::Command::new("ip")
        .args(["-d", "-o", "link", "show", "dev", ifname])
        .output()
        .expect("ip link");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What the stack's TCP sender did during one transfer, for the figures.
fn counter_delta(a: &ustack::tcp::Counters, b: &ustack::tcp::Counters) -> String {
    format!(
        "segs_in {} segs_out {} retransmits {} fast_retransmits {} sack_recoveries {} rto_expiries {} spurious_rtos {} tlp_probes {} tlp_recoveries {} rescues {} recovery_probes {} spurious_undos {}",
        b.segs_in - a.segs_in,
        b.segs_out - a.segs_out,
        b.retransmits - a.retransmits,
        b.fast_retransmits - a.fast_retransmits,
        b.sack_recoveries - a.sack_recoveries,
        b.rto_expiries - a.rto_expiries,
        b.spurious_rtos - a.spurious_rtos,
        b.tlp_probes - a.tlp_probes,
        b.tlp_recoveries - a.tlp_recoveries,
        b.rescue_retransmits - a.rescue_retransmits,
        b.recovery_probes - a.recovery_probes,
        b.spurious_undos - a.spurious_undos,
    )
}

/// The kernel's TCP counters in this thread's network namespace
/// (`/proc/net/snmp` and `/proc/net/netstat`), by name.
fn kernel_tcp_counters() -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for file in ["snmp", "netstat"] {
        let text =
            std::fs::read_to_string(format!("/proc/thread-self/net/{file}")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        for pair in lines.chunks(2) {
            let [names, values] = pair else { continue };
            for (n, v) in names
                .split_whitespace()
                .zip(values.split_whitespace())
                .skip(1)
            {
                if let Ok(v) = v.parse() {
                    out.push((n.to_string(), v));
                }
            }
        }
    }
    out
}

/// One counter of a `kernel_tcp_counters` snapshot (0 if absent).
fn counter(v: &[(String, u64)], name: &str) -> u64 {
    v.iter().find(|(n, _)| n == name).map_or(0, |e| e.1)
}

/// The kernel sender's recovery events between two snapshots.
fn kernel_counter_delta(a: &[(String, u64)], b: &[(String, u64)]) -> String {
    const NAMES: [&str; 10] = [
        "OutSegs",
        "RetransSegs",
        "TCPSackRecovery",
        "TCPTimeouts",
        "TCPLossProbes",
        "TCPLossProbeRecovery",
        "TCPDSACKUndo",
        "TCPSpuriousRTOs",
        "TCPDSACKRecv",
        "TCPSACKReorder",
    ];
    NAMES
        .iter()
        .map(|n| format!("{n} {}", counter(b, n).saturating_sub(counter(a, n))))
        .collect::<Vec<_>>()
        .join(" ")
}

fn mib_from_env(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(default)
        << 20
}

/// The byte at stream offset `i` of pattern `seed`: both ends generate it,
/// so a receiver checks every byte without holding the whole stream.
fn pattern_byte(i: u64, seed: u64) -> u8 {
    let x = (i / 8)
        .wrapping_add(seed)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (x >> ((i % 8) * 8)) as u8
}

fn send_pattern(mut w: impl Write, len: usize, seed: u64) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut off = 0usize;
    while off < len {
        let n = buf.len().min(len - off);
        for (k, b) in buf[..n].iter_mut().enumerate() {
            *b = pattern_byte((off + k) as u64, seed);
        }
        w.write_all(&buf[..n]).unwrap();
        off += n;
    }
}

/// Reads to EOF, checking every byte; returns the count.
fn check_pattern(mut r: impl Read, seed: u64) -> usize {
    let mut buf = vec![0u8; 64 * 1024];
    let mut off = 0usize;
    loop {
        let n = r.read(&mut buf).unwrap();
        if n == 0 {
            return off;
        }
        for (k, b) in buf[..n].iter().enumerate() {
            let want = pattern_byte((off + k) as u64, seed);
            assert_eq!(*b, want, "byte {} differs", off + k);
        }
        off += n;
    }
}

fn mbit_per_s(bytes: usize, t: Duration) -> f64 {
    bytes as f64 * 8.0 / t.as_secs_f64() / 1e6
}

/// ustack serves, the kernel connects: bulk both ways, both families.
fn kernel_client_bulk(fault: Option<&'static str>, label: &'static str, len: usize) {
    with_stack(fault, move |stack| {
        for (ip, port) in [(IpAddr::V4(STACK4), 5001), (IpAddr::V6(STACK6), 5002)] {
            let l = TcpListener::bind(&stack, (ip, port)).unwrap();
            // Kernel -> ustack.
            let kernel_before = kernel_tcp_counters();
            let t = Instant::now();
            let sender = thread::spawn(move || {
                let mut k = net::TcpStream::connect((ip, port)).unwrap();
                send_pattern(&mut k, len, 1);
                k.shutdown(Shutdown::Write).unwrap();
                let mut rest = Vec::new();
                k.read_to_end(&mut rest).unwrap();
            });
            let (s, _) = l.accept().unwrap();
            assert_eq!(check_pattern(&s, 1), len);
            drop(s);
            sender.join().unwrap();
            eprintln!(
                "{label}: kernel -> ustack over {ip}: {} MiB in {:?} ({:.0} Mbit/s)",
                len >> 20,
                t.elapsed(),
                mbit_per_s(len, t.elapsed())
            );
            eprintln!(
                "{label}: kernel sender events over {ip}: {}",
                kernel_counter_delta(&kernel_before, &kernel_tcp_counters())
            );
            // ustack -> kernel.
            let before = stack.tcp_counters();
            let t = Instant::now();
            let receiver = thread::spawn(move || {
                let k = net::TcpStream::connect((ip, port)).unwrap();
                check_pattern(k, 2)
            });
            let (s, _) = l.accept().unwrap();
            send_pattern(&s, len, 2);
            s.shutdown(Shutdown::Write).unwrap();
            assert_eq!(receiver.join().unwrap(), len);
            eprintln!(
                "{label}: ustack -> kernel over {ip}: {} MiB in {:?} ({:.0} Mbit/s)",
                len >> 20,
                t.elapsed(),
                mbit_per_s(len, t.elapsed())
            );
            let after = stack.tcp_counters();
            eprintln!(
                "{label}: sender events over {ip}: {}",
                counter_delta(&before, &after)
            );
        }
    });
}

#[test]
fn kernel_client_transfers_bulk_both_ways_without_faults() {
    kernel_client_bulk(None, "clean", mib_from_env("USTACK_KERNEL_BULK_MIB", 100));
}

#[test]
fn kernel_client_transfers_bulk_both_ways_through_faults() {
    kernel_client_bulk(
        Some("loss=0.02,dup=0.01,reorder=0.01,corrupt=0.005,seed=11"),
        "faults",
        mib_from_env("USTACK_KERNEL_FAULT_MIB", 100),
    );
}

#[test]
fn ustack_client_with_kernel_server_bulk_both_ways_both_families() {
    with_stack(None, |stack| {
        let len = mib_from_env("USTACK_KERNEL_BULK_MIB", 100);
        for ip in [IpAddr::V4(KERNEL4), IpAddr::V6(KERNEL6)] {
            let l = net::TcpListener::bind((ip, 0)).unwrap();
            let port = l.local_addr().unwrap().port();
            // The kernel serves: it checks what ustack uploads, then sends
            // its own stream back after ustack's FIN.
            let server = thread::spawn(move || {
                let (mut k, peer) = l.accept().unwrap();
                let got = check_pattern(&mut k, 3);
                send_pattern(&mut k, len, 4);
                (got, peer)
            });
            let t = Instant::now();
            let c = TcpStream::connect(&stack, (ip, port)).unwrap();
            send_pattern(&c, len, 3);
            c.shutdown(Shutdown::Write).unwrap();
            let up = t.elapsed();
            let t = Instant::now();
            assert_eq!(check_pattern(&c, 4), len);
            let down = t.elapsed();
            let (got, peer) = server.join().unwrap();
            assert_eq!(got, len);
            assert_eq!(peer, c.local_addr().unwrap());
            eprintln!(
                "kernel server over {ip}: ustack -> kernel {} MiB in {up:?} ({:.0} Mbit/s), \
                 kernel -> ustack in {down:?} ({:.0} Mbit/s)",
                len >> 20,
                mbit_per_s(len, up),
                mbit_per_s(len, down)
            );
        }
    });
}

#[test]
fn closed_ports_refuse_connections_on_both_sides() {
    with_stack(None, |stack| {
        // ustack connecting to a kernel port nobody listens on.
        let e = TcpStream::connect(&stack, (KERNEL4, 9)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
        let e = TcpStream::connect(&stack, (KERNEL6, 9)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
        // The kernel connecting to a ustack port nobody listens on.
        let e = net::TcpStream::connect((STACK4, 9)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
        let e = net::TcpStream::connect((STACK6, 9)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
    });
}

#[test]
fn half_close_in_both_directions() {
    with_stack(None, |stack| {
        let l = TcpListener::bind(&stack, (STACK4, 7000)).unwrap();
        // The kernel half-closes first; ustack keeps sending after EOF.
        let k = thread::spawn(|| {
            let mut k = net::TcpStream::connect((STACK4, 7000)).unwrap();
            k.write_all(b"question").unwrap();
            k.shutdown(Shutdown::Write).unwrap();
            let mut answer = Vec::new();
            k.read_to_end(&mut answer).unwrap();
            answer
        });
        let (s, _) = l.accept().unwrap();
        let mut q = Vec::new();
        (&s).read_to_end(&mut q).unwrap();
        assert_eq!(q, b"question");
        (&s).write_all(b"answer after your FIN").unwrap();
        drop(s);
        assert_eq!(k.join().unwrap(), b"answer after your FIN");

        // ustack half-closes first; the kernel keeps sending after EOF.
        let kl = net::TcpListener::bind((KERNEL4, 0)).unwrap();
        let port = kl.local_addr().unwrap().port();
        let k = thread::spawn(move || {
            let (mut k, _) = kl.accept().unwrap();
            let mut q = Vec::new();
            k.read_to_end(&mut q).unwrap();
            k.write_all(b"kernel answers").unwrap();
            q
        });
        let c = TcpStream::connect(&stack, (KERNEL4, port)).unwrap();
        (&c).write_all(b"ask").unwrap();
        c.shutdown(Shutdown::Write).unwrap();
        let mut a = Vec::new();
        (&c).read_to_end(&mut a).unwrap();
        assert_eq!(a, b"kernel answers");
        assert_eq!(k.join().unwrap(), b"ask");
    });
}

#[test]
fn kernel_rst_surfaces_as_connection_reset() {
    with_stack(None, |stack| {
        let kl = net::TcpListener::bind((KERNEL4, 0)).unwrap();
        let port = kl.local_addr().unwrap().port();
        let c = TcpStream::connect(&stack, (KERNEL4, port)).unwrap();
        let (k, _) = kl.accept().unwrap();
        (&c).write_all(b"unread data").unwrap();
        // Wait until the kernel has the data, then close without reading
        // it: Linux answers with RST (RFC 2525 section 2.17).
        let mut peek = [0u8; 4];
        k.peek(&mut peek).unwrap();
        drop(k);
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let e = (&c).read(&mut [0u8; 16]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConnectionReset);
    });
}

#[test]
fn two_hundred_concurrent_connections_each_move_a_mebibyte() {
    with_stack(None, |stack| {
        let l = TcpListener::bind(&stack, (STACK4, 8000)).unwrap();
        let n = 200;
        let server = thread::spawn(move || {
            let mut total = 0;
            let mut streams = Vec::new();
            for _ in 0..n {
                streams.push(l.accept().unwrap().0);
            }
            let readers: Vec<_> = streams
                .into_iter()
                .map(|s| thread::spawn(move || check_pattern(&s, 7)))
                .collect();
            for r in readers {
                total += r.join().unwrap();
            }
            total
        });
        let clients: Vec<_> = (0..n)
            .map(|_| {
                thread::spawn(|| {
                    let mut k = net::TcpStream::connect((STACK4, 8000)).unwrap();
                    send_pattern(&mut k, 1 << 20, 7);
                })
            })
            .collect();
        for c in clients {
            c.join().unwrap();
        }
        assert_eq!(server.join().unwrap(), n << 20);
    });
}

#[test]
fn udp_both_ways_with_a_fragmented_datagram() {
    with_stack(None, |stack| {
        let u = UdpSocket::bind(&stack, (Ipv4Addr::UNSPECIFIED, 7)).unwrap();
        let k = net::UdpSocket::bind((KERNEL4, 0)).unwrap();
        let big: Vec<u8> = (0..30_000u32).map(|i| (i % 253) as u8).collect();
        k.send_to(&big, (STACK4, 7)).unwrap();
        let mut buf = vec![0u8; 65536];
        let (n, from) = u.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], &big[..]);
        assert_eq!(from, k.local_addr().unwrap());
        u.send_to(&buf[..n], from).unwrap();
        k.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut kbuf = vec![0u8; 65536];
        let (m, kfrom) = k.recv_from(&mut kbuf).unwrap();
        assert_eq!(&kbuf[..m], &big[..]);
        assert_eq!(kfrom, SocketAddr::from((STACK4, 7)));
        // IPv6 too.
        let u6 = UdpSocket::bind(&stack, (STACK6, 7)).unwrap();
        let k6 = net::UdpSocket::bind((KERNEL6, 0)).unwrap();
        k6.send_to(&big[..5000], (STACK6, 7)).unwrap();
        let (n, _) = u6.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], &big[..5000]);
    });
}

#[test]
fn udp_port_unreachable_both_ways() {
    with_stack(None, |stack| {
        // The kernel's connected UDP socket sees ustack's ICMP port
        // unreachable as ECONNREFUSED.
        let k = net::UdpSocket::bind((KERNEL4, 0)).unwrap();
        k.connect((STACK4, 4444)).unwrap();
        k.send(b"anyone?").unwrap();
        k.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let e = k.recv(&mut [0u8; 8]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
        // And ustack's connected socket sees the kernel's.
        let u = UdpSocket::bind(&stack, (STACK4, 0)).unwrap();
        u.connect((KERNEL4, 4444)).unwrap();
        u.send(b"anyone?").unwrap();
        u.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let e = u.recv(&mut [0u8; 8]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
    });
}

/// A TUN device whose counters the test can read while a stack owns it.
struct CountedTun {
    tun: ustack::device::TunDevice,
    stats: std::sync::Arc<std::sync::Mutex<ustack::device::LinkStats>>,
}

impl ustack::device::Link for CountedTun {
    fn recv_batch(
        &mut self,
        now: ustack::Instant,
        batch: &mut Vec<ustack::device::Packet>,
        max: usize,
    ) -> std::io::Result<usize> {
        let n = self.tun.recv_batch(now, batch, max)?;
        *self.stats.lock().unwrap() = self.tun.stats();
        Ok(n)
    }
    fn send_batch(
        &mut self,
        now: ustack::Instant,
        batch: &mut Vec<ustack::device::Packet>,
    ) -> std::io::Result<usize> {
        self.tun.send_batch(now, batch)
    }
    fn mtu(&self) -> usize {
        self.tun.mtu()
    }
    fn wait_fd(&self) -> Option<std::os::fd::RawFd> {
        self.tun.wait_fd()
    }
    fn recycle(&mut self, packets: &mut Vec<ustack::device::Packet>) {
        self.tun.recycle(packets);
    }
}

/// With offloads on (the default), bulk data crosses the TUN device as TCP
/// super-packets larger than the MTU in both directions (the kernel's
/// reach the stack whole; the stack's are cut by the kernel), and the
/// streams arrive intact over both families.
#[test]
fn offloads_move_bulk_data_as_super_packets_both_ways() {
    use ustack::device::{Link, TunConfig, TunDevice};
    thread::spawn(|| {
        ustack::sys::enter_private_netns().expect("private network namespace (run as root)");
        let tun = TunDevice::open(&TunConfig::default()).expect("TUN device");
        let offloads = tun.offloads();
        assert!(
            offloads.vnet && offloads.csum && offloads.tso,
            "this kernel refused offloads: {offloads:?}"
        );
        let mtu = tun.mtu();
        let cfg = ustack::stack::CoreConfig {
            mtu,
            tcp: ustack::tcp::TcpConfig {
                tso_max: tun.tso_max(),
                ..ustack::tcp::TcpConfig::default()
            },
            ..ustack::stack::CoreConfig::default()
        };
        let stats = std::sync::Arc::new(std::sync::Mutex::new(tun.stats()));
        let link = CountedTun {
            tun,
            stats: stats.clone(),
        };
        let stack = Stack::with_link(Box::new(link), cfg).unwrap();
        let len = 16 << 20;
        for (ip, port) in [(IpAddr::V4(STACK4), 5101), (IpAddr::V6(STACK6), 5102)] {
            let l = TcpListener::bind(&stack, (ip, port)).unwrap();
            let before = *stats.lock().unwrap();
            let sender = thread::spawn(move || {
                let mut k = net::TcpStream::connect((ip, port)).unwrap();
                send_pattern(&mut k, len, 5);
                k.shutdown(Shutdown::Write).unwrap();
                check_pattern(k, 6)
            });
            let (s, _) = l.accept().unwrap();
            assert_eq!(check_pattern(&s, 5), len);
            send_pattern(&s, len, 6);
            s.shutdown(Shutdown::Write).unwrap();
            assert_eq!(sender.join().unwrap(), len);
            drop(s);
            let after = *stats.lock().unwrap();
            let rx_super = after.rx_super_packets - before.rx_super_packets;
            let tx_super = after.tx_super_packets - before.tx_super_packets;
            let rx = after.rx_packets - before.rx_packets;
            let tx = after.tx_packets - before.tx_packets;
            eprintln!(
                "over {ip}: received {rx} packets, {rx_super} larger than the {mtu}-byte MTU; \
                 sent {tx}, {tx_super} larger"
            );
            assert!(
                rx_super > 0,
                "no super-packet received over {ip}: {after:?}"
            );
            assert!(tx_super > 0, "no super-packet sent over {ip}: {after:?}");
            assert_eq!(after.rx_dropped, before.rx_dropped, "none dropped");
            assert_eq!(after.tx_dropped, before.tx_dropped, "none refused");
        }
    })
    .join()
    .unwrap_or_else(|p| std::panic::resume_unwind(p));
}

/// With USO (TUN_F_USO4/6), a kernel sender's UDP_SEGMENT buffer reaches
/// the device as one UDP super-datagram, which the device cuts into the
/// datagrams it stands for: each arrives whole, in order, with its own
/// checksum verified, over both families.
#[test]
fn a_udp_segment_super_datagram_arrives_as_its_datagrams() {
    use std::os::fd::AsRawFd;
    use ustack::device::{Link, TunConfig, TunDevice};
    thread::spawn(|| {
        ustack::sys::enter_private_netns().expect("private network namespace (run as root)");
        let tun = TunDevice::open(&TunConfig::default()).expect("TUN device");
        assert!(
            tun.offloads().uso,
            "this kernel refused USO: {:?}",
            tun.offloads()
        );
        let cfg = ustack::stack::CoreConfig {
            mtu: tun.mtu(),
            ..ustack::stack::CoreConfig::default()
        };
        let stats = std::sync::Arc::new(std::sync::Mutex::new(tun.stats()));
        let link = CountedTun {
            tun,
            stats: stats.clone(),
        };
        let stack = Stack::with_link(Box::new(link), cfg).unwrap();
        wait_for_kernel_ipv6();
        for (ours, theirs) in [
            (IpAddr::V4(STACK4), IpAddr::V4(KERNEL4)),
            (IpAddr::V6(STACK6), IpAddr::V6(KERNEL6)),
        ] {
            let u = UdpSocket::bind(&stack, (ours, 9)).unwrap();
            u.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let k = net::UdpSocket::bind((theirs, 0)).unwrap();
            let gso: libc::c_int = 1000;
            // SAFETY: an int option from an int of its size.
            let r = unsafe {
                libc::setsockopt(
                    k.as_raw_fd(),
                    libc::SOL_UDP,
                    libc::UDP_SEGMENT,
                    (&gso as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            assert_eq!(r, 0, "UDP_SEGMENT: {}", std::io::Error::last_os_error());
            let data: Vec<u8> = (0..3500u32).map(|i| (i % 241) as u8).collect();
            let before = *stats.lock().unwrap();
            k.send_to(&data, (ours, 9)).unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 2048];
            for i in 0..4 {
                let (n, from) = u.recv_from(&mut buf).unwrap();
                assert_eq!(
                    n,
                    if i < 3 { 1000 } else { 500 },
                    "datagram {i} over {ours}"
                );
                assert_eq!(from, k.local_addr().unwrap());
                got.extend_from_slice(&buf[..n]);
            }
            assert_eq!(got, data);
            let after = *stats.lock().unwrap();
            assert!(
                after.rx_super_packets > before.rx_super_packets,
                "the datagrams did not come as one super-datagram over {ours}: {after:?}"
            );
            assert_eq!(after.rx_dropped, before.rx_dropped);
        }
    })
    .join()
    .unwrap_or_else(|p| std::panic::resume_unwind(p));
}

/// `USTACK_OFFLOAD=off` (Config::offload): the device runs in plain mode
/// and data still flows both ways over both families.
#[test]
fn plain_mode_without_offloads_moves_data_both_ways() {
    let cfg = Config {
        offload: false,
        ..Config::default()
    };
    let ifname = cfg.ifname.clone();
    with_config(cfg, move |stack| {
        // The device as the kernel reports it: no virtio-net header.
        let text = kernel_link_details(&ifname);
        assert!(text.contains("vnet_hdr off"), "offloads still on: {text}");
        for (ip, port) in [(IpAddr::V4(STACK4), 5201), (IpAddr::V6(STACK6), 5202)] {
            let l = TcpListener::bind(&stack, (ip, port)).unwrap();
            let peer = thread::spawn(move || {
                let mut k = net::TcpStream::connect((ip, port)).unwrap();
                send_pattern(&mut k, 4 << 20, 11);
                k.shutdown(Shutdown::Write).unwrap();
                check_pattern(k, 12)
            });
            let (s, _) = l.accept().unwrap();
            assert_eq!(check_pattern(&s, 11), 4 << 20);
            send_pattern(&s, 4 << 20, 12);
            s.shutdown(Shutdown::Write).unwrap();
            assert_eq!(peer.join().unwrap(), 4 << 20);
        }
    });
}

/// A TCP-level option of a kernel socket, read into a `T` (an int, or a
/// `tcp_info`).
fn kernel_tcp_opt<T>(s: &net::TcpStream, opt: libc::c_int) -> T {
    use std::os::fd::AsRawFd;
    // SAFETY: T is plain data for which all-zero bytes are valid (an int
    // or a tcp_info); getsockopt writes at most `len` bytes into it, from
    // a live socket.
    let mut v: T = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<T>() as libc::socklen_t;
    let r = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::IPPROTO_TCP,
            opt,
            (&mut v as *mut T).cast(),
            &mut len,
        )
    };
    assert_eq!(r, 0, "option {opt}: {}", std::io::Error::last_os_error());
    v
}

/// The kernel's TCP_MAXSEG for a connected socket: the MSS it sends with.
fn kernel_mss(s: &net::TcpStream) -> i32 {
    kernel_tcp_opt::<libc::c_int>(s, libc::TCP_MAXSEG)
}

#[test]
fn a_65535_byte_mtu_carries_64_kib_segments_both_ways_both_families() {
    let cfg = Config {
        mtu: 65535,
        ..Config::default()
    };
    let ifname = cfg.ifname.clone();
    with_config(cfg, move |stack| {
        let line = kernel_link_details(&ifname);
        assert!(
            line.contains(" mtu 65535 "),
            "the kernel side's MTU: {line}"
        );
        let len = 8 << 20;
        for (ip, port) in [(IpAddr::V4(STACK4), 5111), (IpAddr::V6(STACK6), 5112)] {
            let l = TcpListener::bind(&stack, (ip, port)).unwrap();
            let sender = thread::spawn(move || {
                let mut k = net::TcpStream::connect((ip, port)).unwrap();
                send_pattern(&mut k, len, 7);
                // After the transfer: at first Linux bounds its MSS to half
                // the peer's largest window (32,767 for an unscaled SYN).
                let mss = kernel_mss(&k);
                k.shutdown(Shutdown::Write).unwrap();
                (mss, check_pattern(k, 8))
            });
            let (s, _) = l.accept().unwrap();
            assert_eq!(check_pattern(&s, 7), len);
            send_pattern(&s, len, 8);
            s.shutdown(Shutdown::Write).unwrap();
            let (mss, back) = sender.join().unwrap();
            assert_eq!(back, len);
            // Both ends' MSS come from the MTU: the kernel sends segments
            // as large as ustack announced (less its timestamp option).
            let ip_header = if ip.is_ipv4() { 20 } else { 40 };
            assert!(
                mss >= 65535 - ip_header - 20 - 12,
                "over {ip}: kernel MSS {mss}"
            );
        }
    });
}

/// Whether the kernel's TCP_INFO says ECN is in use on `s` (TCPI_OPT_ECN).
fn kernel_ecn(s: &net::TcpStream) -> bool {
    kernel_tcp_opt::<libc::tcp_info>(s, libc::TCP_INFO).tcpi_options & 8 != 0
}

/// Datagrams marked ECT(0) the kernel received in this namespace, per
/// family (`IpExt InECT0Pkts`, `Ip6InECT0Pkts`).
fn kernel_ect0_received(v6: bool) -> u64 {
    if v6 {
        let text = std::fs::read_to_string("/proc/thread-self/net/snmp6").unwrap_or_default();
        text.lines()
            .find_map(|l| l.strip_prefix("Ip6InECT0Pkts"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    } else {
        counter(&kernel_tcp_counters(), "InECT0Pkts")
    }
}

/// ustack sends `len` bytes on `s` to the kernel's `k` (ECN agreed): every
/// byte arrives, and some datagrams reach the kernel ECT(0) (its count
/// was `before`).
fn ustack_sends_ect0(s: TcpStream, k: net::TcpStream, len: usize, before: u64, what: &str) {
    let v6 = k.peer_addr().unwrap().is_ipv6();
    let reader = thread::spawn(move || check_pattern(k, 9));
    send_pattern(&s, len, 9);
    s.shutdown(Shutdown::Write).unwrap();
    assert_eq!(reader.join().unwrap(), len);
    let marked = kernel_ect0_received(v6) - before;
    eprintln!("{what}: {marked} ECT(0) datagrams reached the kernel");
    assert!(marked > 0, "{what}: no ECT(0) datagram");
}

/// ECN (RFC 3168) with the kernel both ways: ustack asking (its
/// `TcpConfig::ecn` on) and the kernel accepting, as it does by default
/// (net.ipv4.tcp_ecn=2); then the kernel asking (tcp_ecn=1, set in this
/// test's own namespace) and ustack accepting, as it does by default. The
/// kernel's TCP_INFO shows ECN in use, and ustack's data reach it ECT(0).
#[test]
fn ecn_is_agreed_with_the_kernel_both_ways_and_data_arrives_ect0() {
    use ustack::device::{Link, TunConfig, TunDevice};
    thread::spawn(|| {
        ustack::sys::enter_private_netns().expect("private network namespace (run as root)");
        let tun = TunDevice::open(&TunConfig::default()).expect("TUN device");
        let cfg = ustack::stack::CoreConfig {
            mtu: tun.mtu(),
            tcp: ustack::tcp::TcpConfig {
                tso_max: tun.tso_max(),
                ecn: ustack::tcp::Ecn::On,
                ..ustack::tcp::TcpConfig::default()
            },
            ..ustack::stack::CoreConfig::default()
        };
        let stack = Stack::with_link(Box::new(tun), cfg).unwrap();
        wait_for_kernel_ipv6();
        let len = 1 << 20;
        // ustack connects; the kernel accepts ECN by default.
        for ip in [IpAddr::V4(KERNEL4), IpAddr::V6(KERNEL6)] {
            let l = net::TcpListener::bind((ip, 0)).unwrap();
            let port = l.local_addr().unwrap().port();
            let before = kernel_ect0_received(ip.is_ipv6());
            let s = TcpStream::connect(&stack, (ip, port)).unwrap();
            let (k, _) = l.accept().unwrap();
            assert!(kernel_ecn(&k), "the kernel server agreed to ECN over {ip}");
            ustack_sends_ect0(s, k, len, before, &format!("ustack client over {ip}"));
        }
        // The kernel connects asking for ECN; ustack accepts by default.
        std::fs::write("/proc/sys/net/ipv4/tcp_ecn", "1").expect("namespace's tcp_ecn");
        for (ip, port) in [(IpAddr::V4(STACK4), 5201), (IpAddr::V6(STACK6), 5202)] {
            let l = TcpListener::bind(&stack, (ip, port)).unwrap();
            let before = kernel_ect0_received(ip.is_ipv6());
            let k = net::TcpStream::connect((ip, port)).unwrap();
            let (s, _) = l.accept().unwrap();
            assert!(kernel_ecn(&k), "the kernel client agreed to ECN over {ip}");
            ustack_sends_ect0(s, k, len, before, &format!("ustack server over {ip}"));
        }
    })
    .join()
    .unwrap_or_else(|p| std::panic::resume_unwind(p));
}

/// Congestion signalled by CE marks instead of loss, both ways: the fault
/// injector marks 5% of the ECN-capable packets CE, as an AQM router
/// would. The kernel echoes the marks on ustack's data and ustack reduces
/// (its `ecn_reductions`); ustack echoes the marks on the kernel's data and
/// the kernel counts the ECE-acknowledged deliveries (`TCPDeliveredCE`).
/// Nothing is lost, and every byte arrives.
#[test]
fn ce_marks_are_echoed_and_answered_both_ways_with_the_kernel() {
    let cfg = Config {
        fault: Some(FaultConfig::parse("ce=0.05,seed=3").unwrap()),
        ..Config::default()
    };
    with_config(cfg, |stack| {
        std::fs::write("/proc/sys/net/ipv4/tcp_ecn", "1").expect("namespace's tcp_ecn");
        let len = 4 << 20;
        for (ip, port) in [(IpAddr::V4(STACK4), 5301), (IpAddr::V6(STACK6), 5302)] {
            let l = TcpListener::bind(&stack, (ip, port)).unwrap();
            let kernel_before = kernel_tcp_counters();
            let before = stack.tcp_counters();
            let k = net::TcpStream::connect((ip, port)).unwrap();
            let (s, _) = l.accept().unwrap();
            assert!(kernel_ecn(&k), "ECN agreed over {ip}");
            let mut k2 = k.try_clone().unwrap();
            let kernel_side = thread::spawn(move || {
                send_pattern(&mut k2, len, 11);
                k2.shutdown(Shutdown::Write).unwrap();
                check_pattern(k, 12)
            });
            let ustack_sender = {
                let s = s.try_clone().unwrap();
                thread::spawn(move || {
                    send_pattern(&s, len, 12);
                    s.shutdown(Shutdown::Write).unwrap();
                })
            };
            assert_eq!(check_pattern(&s, 11), len);
            ustack_sender.join().unwrap();
            assert_eq!(kernel_side.join().unwrap(), len);
            let after = stack.tcp_counters();
            let kernel_after = kernel_tcp_counters();
            let echoed = counter(&kernel_after, "TCPDeliveredCE")
                - counter(&kernel_before, "TCPDeliveredCE");
            let reductions = after.ecn_reductions - before.ecn_reductions;
            eprintln!(
                "over {ip}: ustack reduced {reductions} times for the kernel's ECE; \
                 the kernel counted {echoed} deliveries acknowledged with ECE; \
                 retransmissions: ustack {}",
                after.retransmits - before.retransmits
            );
            assert!(reductions > 0, "ustack never answered an ECE over {ip}");
            assert!(echoed > 0, "ustack never echoed a CE mark over {ip}");
        }
    });
}
