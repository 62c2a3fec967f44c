//! The stack as an Ethernet host on a TAP device, against the Linux
//! kernel. Each test runs on a thread that first moves into a private
//! network namespace of its own; inside it a bridge `br0` holds the
//! kernel's addresses (10.77.0.1/24, fd77::1/64) and the stack's TAP
//! device as a port, so the kernel reaches the stack by ARP and NDP as it
//! would any host on a LAN. Nothing is configured outside the namespace,
//! and it has no default route.
//!
//! These tests need root (they fail, saying so, without it).

use std::io::{Read, Write};
use std::net::{self, Ipv4Addr, Ipv6Addr, Shutdown};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use ustack::api::{Stack, TcpListener};

#[allow(dead_code)] // the fixtures' helpers
#[path = "common/pcap.rs"]
mod pcap;
use ustack::config::{Config, LinkKind};

const STACK4: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
const STACK6: Ipv6Addr = Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 2);

fn sh(cmd: &str) -> String {
    let out = Command::new("sh").args(["-c", cmd]).output().expect("sh");
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `f` with a stack on TAP device `ustap0` in bridge `br0`, in a
/// private network namespace.
fn with_bridge<R: Send + 'static>(f: impl FnOnce(Stack, &Config) -> R + Send + 'static) -> R {
    with_bridge_cfg(Config::default(), f)
}

/// [`with_bridge`] with the stack's configuration based on `base`.
fn with_bridge_cfg<R: Send + 'static>(
    base: Config,
    f: impl FnOnce(Stack, &Config) -> R + Send + 'static,
) -> R {
    thread::spawn(move || {
        ustack::sys::enter_private_netns().expect("private network namespace (run as root)");
        sh("ip link add br0 type bridge \
            && sysctl -qw net.ipv6.conf.br0.accept_dad=0 \
            && ip addr add 10.77.0.1/24 dev br0 \
            && ip addr add fd77::1/64 dev br0 nodad \
            && ip link set br0 up \
            && ip tuntap add ustap0 mode tap \
            && ip link set ustap0 master br0 \
            && ip link set ustap0 up");
        let cfg = Config {
            ifname: "ustap0".into(),
            link: LinkKind::Tap,
            ..base
        };
        let stack = Stack::from_config(&cfg).expect("stack on TAP");
        // The bridge port forwards once it is up and the kernel's IPv6
        // address is usable.
        let deadline = Instant::now() + Duration::from_secs(5);
        while net::UdpSocket::bind(("fd77::1", 0)).is_err() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        f(stack, &cfg)
    })
    .join()
    .unwrap_or_else(|p| std::panic::resume_unwind(p))
}

fn ping(addr: &str) -> bool {
    Command::new("ping")
        .args(["-c", "2", "-i", "0.2", "-W", "2", addr])
        .output()
        .expect("ping")
        .status
        .success()
}

fn echo_server(stack: &Stack) -> thread::JoinHandle<()> {
    let listener = TcpListener::bind(stack, "[::]:7").unwrap();
    thread::spawn(move || {
        for _ in 0..2 {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = vec![0u8; 65536];
            loop {
                match s.read(&mut buf).unwrap() {
                    0 => break,
                    n => s.write_all(&buf[..n]).unwrap(),
                }
            }
        }
    })
}

#[test]
fn the_kernel_pings_the_stack_on_a_bridge_and_caches_its_mac() {
    with_bridge(|_stack, cfg| {
        assert!(ping(&STACK4.to_string()), "IPv4 ping");
        assert!(ping(&STACK6.to_string()), "IPv6 ping");
        let mac = cfg.mac_addr().to_string();
        let v4 = sh("ip -4 neigh show dev br0");
        assert!(v4.contains(&format!("10.77.0.2 lladdr {mac}")), "{v4}");
        let v6 = sh("ip -6 neigh show dev br0");
        assert!(v6.contains(&format!("fd77::2 lladdr {mac}")), "{v6}");
        // No answer for an address that is not the stack's.
        assert!(!ping("10.77.0.3"));
        let none = sh("ip -4 neigh show 10.77.0.3 dev br0");
        assert!(!none.contains("lladdr"), "{none}");
    });
}

#[test]
fn a_capture_on_tap_records_ethernet_frames() {
    let path = std::env::temp_dir().join(format!("ustack-tap-{}.pcap", std::process::id()));
    let base = Config {
        pcap: Some(path.clone()),
        ..Config::default()
    };
    with_bridge_cfg(base, |stack, cfg| {
        assert!(ping(&STACK4.to_string()), "IPv4 ping");
        drop(stack); // flushes and closes the capture
        let frames = pcap::read(cfg.pcap.as_ref().unwrap(), 1);
        let ethertype = |f: &Vec<u8>| u16::from_be_bytes([f[12], f[13]]);
        let mac = cfg.mac_addr().0;
        // The stack's gratuitous ARP or its ARP reply, from its MAC.
        assert!(
            frames
                .iter()
                .any(|f| ethertype(f) == 0x0806 && f[6..12] == mac),
            "no ARP frame from the stack among {} frames",
            frames.len()
        );
        // An echo reply (ICMP type 0) to the kernel, in an IPv4 frame.
        assert!(
            frames.iter().any(|f| ethertype(f) == 0x0800
                && f[6..12] == mac
                && f[14 + 9] == 1
                && f[14 + 20] == 0),
            "no echo reply frame"
        );
    });
    let _ = std::fs::remove_file(&path);
}

#[test]
fn tcp_echo_over_both_families_through_the_bridge() {
    with_bridge(|stack, _| {
        let server = echo_server(&stack);
        let data: Vec<u8> = (0..4 << 20).map(|i: u32| (i * 7 + i / 251) as u8).collect();
        for peer in [format!("{STACK4}:7"), format!("[{STACK6}]:7")] {
            let mut s =
                net::TcpStream::connect_timeout(&peer.parse().unwrap(), Duration::from_secs(5))
                    .unwrap_or_else(|e| panic!("connect {peer}: {e}"));
            s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            let mut w = s.try_clone().unwrap();
            let sent = data.clone();
            let writer = thread::spawn(move || {
                w.write_all(&sent).unwrap();
                w.shutdown(Shutdown::Write).unwrap();
            });
            let mut back = Vec::new();
            s.read_to_end(&mut back).unwrap();
            writer.join().unwrap();
            assert!(
                back == data,
                "{peer}: {} bytes back of {}",
                back.len(),
                data.len()
            );
        }
        server.join().unwrap();
    });
}

#[test]
fn the_stack_resolves_the_kernel_and_reports_unreachable_neighbours() {
    with_bridge(|stack, _| {
        let listener = net::TcpListener::bind("[::]:9").unwrap();
        let accept = thread::spawn(move || {
            for _ in 0..2 {
                let (mut s, _) = listener.accept().unwrap();
                s.write_all(b"hi").unwrap();
            }
        });
        for peer in ["10.77.0.1:9", "[fd77::1]:9"] {
            let mut s = ustack::api::TcpStream::connect(&stack, peer)
                .unwrap_or_else(|e| panic!("connect {peer}: {e}"));
            let mut got = String::new();
            s.read_to_string(&mut got).unwrap();
            assert_eq!(got, "hi");
        }
        accept.join().unwrap();
        // Nobody has 10.77.0.9: three ARP requests, then EHOSTUNREACH.
        let start = Instant::now();
        let e = ustack::api::TcpStream::connect(&stack, "10.77.0.9:9").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EHOSTUNREACH), "{e}");
        assert!(
            start.elapsed() >= Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
        // Off-link with no gateway: no route, ENETUNREACH at once (no
        // ARP or NDP is tried), in both families, as Linux's connect.
        for peer in ["192.0.2.1:9", "[2001:db8::1]:9"] {
            let e = ustack::api::TcpStream::connect(&stack, peer).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::ENETUNREACH), "{peer}: {e}");
        }
        // UDP: sendto and connect fail at once as well, and the socket
        // still sends on-link.
        for (bind, peer, near) in [
            ("0.0.0.0:0", "192.0.2.1:9", "10.77.0.1:9"),
            ("[::]:0", "[2001:db8::1]:9", "[fd77::1]:9"),
        ] {
            let u = ustack::api::UdpSocket::bind(&stack, bind).unwrap();
            let e = u.send_to(b"x", peer).unwrap_err();
            assert_eq!(
                e.raw_os_error(),
                Some(libc::ENETUNREACH),
                "sendto {peer}: {e}"
            );
            let e = u.connect(peer).unwrap_err();
            assert_eq!(
                e.raw_os_error(),
                Some(libc::ENETUNREACH),
                "connect {peer}: {e}"
            );
            assert_eq!(u.send_to(b"x", near).unwrap(), 1, "{near}");
        }
    });
}

#[test]
fn two_stacks_on_one_bridge_talk_to_each_other() {
    with_bridge(|a, cfg_a| {
        sh("ip tuntap add ustap1 mode tap \
            && ip link set ustap1 master br0 \
            && ip link set ustap1 up");
        let cfg_b = Config {
            ifname: "ustap1".into(),
            link: LinkKind::Tap,
            addr: Ipv4Addr::new(10, 77, 0, 3),
            addr6: "fd77::3".parse().unwrap(),
            ..Config::default()
        };
        let b = Stack::from_config(&cfg_b).expect("second stack on TAP");
        assert_ne!(cfg_a.mac_addr(), cfg_b.mac_addr());
        let server = echo_server(&a);
        for peer in [format!("{STACK4}:7"), format!("[{STACK6}]:7")] {
            let mut s = ustack::api::TcpStream::connect(&b, peer.as_str())
                .unwrap_or_else(|e| panic!("connect {peer}: {e}"));
            let data: Vec<u8> = (0..256 * 1024u32).map(|i| (i % 253) as u8).collect();
            let mut w = s.try_clone().unwrap();
            let sent = data.clone();
            let writer = thread::spawn(move || {
                w.write_all(&sent).unwrap();
                w.shutdown(Shutdown::Write).unwrap();
            });
            let mut back = Vec::new();
            s.read_to_end(&mut back).unwrap();
            writer.join().unwrap();
            assert!(back == data, "{peer}: {} bytes back", back.len());
        }
        server.join().unwrap();
        // The kernel sees both hosts, each at its own MAC.
        assert!(ping("10.77.0.3"));
        let v4 = sh("ip -4 neigh show dev br0");
        assert!(
            v4.contains(&format!("10.77.0.3 lladdr {}", cfg_b.mac_addr())),
            "{v4}"
        );
    });
}

/// A second host: a process in a network namespace of its own (a child
/// of this one's), joined to `br0` by a veth pair, with 10.77.0.4/24 and
/// fd77::4/64. Dropping it kills the process, and the namespace goes.
struct SecondHost {
    child: std::process::Child,
}

impl SecondHost {
    fn start() -> SecondHost {
        let child = Command::new("unshare")
            .args(["-n", "sleep", "60"])
            .spawn()
            .expect("unshare -n");
        let pid = child.id();
        // The child's namespace exists once unshare has exec'd sleep.
        let deadline = Instant::now() + Duration::from_secs(5);
        let ours = std::fs::read_link("/proc/thread-self/ns/net").unwrap();
        while std::fs::read_link(format!("/proc/{pid}/ns/net"))
            .ok()
            .as_ref()
            == Some(&ours)
            && Instant::now() < deadline
        {
            thread::sleep(Duration::from_millis(5));
        }
        sh(&format!(
            "ip link add h2 type veth peer name h2peer \
             && ip link set h2peer netns {pid} \
             && ip link set h2 master br0 \
             && ip link set h2 up \
             && nsenter -t {pid} -n sh -c 'ip link set lo up \
                && sysctl -qw net.ipv6.conf.h2peer.accept_dad=0 \
                && ip addr add 10.77.0.4/24 dev h2peer \
                && ip addr add fd77::4/64 dev h2peer nodad \
                && ip link set h2peer up'"
        ));
        SecondHost { child }
    }

    /// Runs a shell command inside the second host.
    fn sh(&self, cmd: &str) -> std::process::Output {
        Command::new("nsenter")
            .args(["-t", &self.child.id().to_string(), "-n", "sh", "-c", cmd])
            .output()
            .expect("nsenter")
    }

    /// Runs `f` on a thread inside the second host's namespace.
    fn run<R: Send + 'static>(&self, f: impl FnOnce() -> R + Send + 'static) -> R {
        let ns = std::fs::File::open(format!("/proc/{}/ns/net", self.child.id())).unwrap();
        thread::spawn(move || {
            use std::os::fd::AsRawFd;
            // SAFETY: setns takes an fd we hold open and a flag; it moves
            // only this thread.
            let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    }
}

impl Drop for SecondHost {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_second_host_on_the_bridge_pings_and_talks_tcp_to_the_stack() {
    with_bridge(|stack, cfg| {
        let host = SecondHost::start();
        for addr in ["10.77.0.2", "fd77::2"] {
            let out = host.sh(&format!("ping -c 2 -i 0.2 -W 2 {addr}"));
            assert!(
                out.status.success(),
                "ping {addr} from the second host: {out:?}"
            );
        }
        let neigh =
            String::from_utf8_lossy(&host.sh("ip neigh show dev h2peer").stdout).into_owned();
        let mac = cfg.mac_addr().to_string();
        assert!(
            neigh.contains(&format!("10.77.0.2 lladdr {mac}")),
            "{neigh}"
        );
        assert!(neigh.contains(&format!("fd77::2 lladdr {mac}")), "{neigh}");
        let server = echo_server(&stack);
        host.run(|| {
            let data: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
            for peer in [format!("{STACK4}:7"), format!("[{STACK6}]:7")] {
                let mut s =
                    net::TcpStream::connect_timeout(&peer.parse().unwrap(), Duration::from_secs(5))
                        .unwrap_or_else(|e| panic!("connect {peer}: {e}"));
                s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                let mut w = s.try_clone().unwrap();
                let sent = data.clone();
                let writer = thread::spawn(move || {
                    w.write_all(&sent).unwrap();
                    w.shutdown(Shutdown::Write).unwrap();
                });
                let mut back = Vec::new();
                s.read_to_end(&mut back).unwrap();
                writer.join().unwrap();
                assert!(back == data, "{peer}: {} bytes back", back.len());
            }
        });
        server.join().unwrap();
    });
}

#[test]
fn a_snooping_bridge_learns_the_stacks_groups_from_its_mld_reports() {
    with_bridge(|_stack, _cfg| {
        // The solicited-node group of fd77::2 (and of the link-local
        // address, whose low 24 bits may differ).
        let want = "ff02::1:ff00:2";
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let mdb = sh("bridge mdb show dev br0");
            if mdb
                .lines()
                .any(|l| l.contains("port ustap0") && l.contains(want))
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no group {want} on port ustap0: {mdb}"
            );
            thread::sleep(Duration::from_millis(50));
        }
    });
}
