//! `USTACK_ADDR=dhcp` against a real DHCP server, and `USTACK_ADDR6=auto`
//! (SLAAC) against dnsmasq's router advertisements. Each test runs on a
//! thread that first moves into a private network namespace of its own;
//! inside it a bridge `br0` holds the kernel's address 10.99.0.1/24 and
//! the stack's TAP device, and `dnsmasq` serves leases on that bridge only
//! (`--interface=br0 --bind-interfaces`, no DNS: `--port=0`). Nothing is
//! configured outside the namespace, it has no default route, and the
//! dnsmasq the test started is killed (by its pid) when the test ends.
//!
//! Renewal, rebinding and expiry take minutes with dnsmasq's shortest
//! lease (2 minutes); they are tested on the client's state machine with a
//! virtual clock (`src/dhcp/tests.rs`) and through frames
//! (`src/ethernet/tests.rs`).
//!
//! These tests need root and dnsmasq (they fail, saying so, without).

use std::io::{Read, Write};
use std::net::{self, Ipv4Addr};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use ustack::api::{Stack, TcpListener, TcpStream, UdpSocket};
use ustack::config::{Config, LinkKind};

const KERNEL: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
/// An address of the kernel's outside the bridge's prefix, reached
/// through the router the lease names.
const FAR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

fn sh(cmd: &str) -> String {
    let out = Command::new("sh").args(["-c", cmd]).output().expect("sh");
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The dnsmasq this test started, killed when dropped.
struct Dnsmasq {
    child: Child,
    leases: PathBuf,
    dir: PathBuf,
}

impl Dnsmasq {
    /// Serves 10.99.0.50-99 for 2 minutes on `br0`, with the kernel as
    /// router and DNS servers 10.99.0.1 and 10.99.0.2.
    fn start(tag: &str) -> Dnsmasq {
        let dir = std::env::temp_dir().join(format!("ustack-dhcp-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let leases = dir.join("leases");
        let _ = std::fs::remove_file(&leases);
        let child = Command::new("dnsmasq")
            .args([
                "--no-daemon",
                "--conf-file=/dev/null",
                "--port=0",
                "--interface=br0",
                "--bind-interfaces",
                "--except-interface=lo",
                "--user=root",
                "--dhcp-range=10.99.0.50,10.99.0.99,255.255.255.0,2m",
                "--dhcp-option=option:router,10.99.0.1",
                "--dhcp-option=option:dns-server,10.99.0.1,10.99.0.2",
                "--dhcp-authoritative",
            ])
            .arg(format!("--dhcp-leasefile={}", leases.display()))
            .arg(format!("--pid-file={}", dir.join("pid").display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dnsmasq (package dnsmasq-base)");
        let d = Dnsmasq { child, leases, dir };
        // Ready once it listens on the server port.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !sh("ss -H -uln 'sport = :67'").contains(":67") {
            assert!(Instant::now() < deadline, "dnsmasq did not start");
            thread::sleep(Duration::from_millis(20));
        }
        d
    }

    fn leases(&self) -> String {
        std::fs::read_to_string(&self.leases).unwrap_or_default()
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `f` in a private namespace with the bridge, dnsmasq on it, and
/// the configuration of a stack with `USTACK_ADDR=dhcp` on TAP `ustap0`.
fn with_dhcp<R: Send + 'static>(
    tag: &'static str,
    f: impl FnOnce(Dnsmasq, &Config) -> R + Send + 'static,
) -> R {
    thread::spawn(move || {
        ustack::sys::enter_private_netns().expect("private network namespace (run as root)");
        sh("ip link add br0 type bridge \
            && sysctl -qw net.ipv6.conf.br0.accept_dad=0 \
            && ip addr add 10.99.0.1/24 dev br0 \
            && ip addr add 192.0.2.1/32 dev lo \
            && ip link set lo up \
            && ip link set br0 up \
            && ip tuntap add ustap0 mode tap \
            && ip link set ustap0 master br0 \
            && ip link set ustap0 up");
        let dnsmasq = Dnsmasq::start(tag);
        let cfg = Config {
            ifname: "ustap0".into(),
            link: LinkKind::Tap,
            dhcp: true,
            ..Config::default()
        };
        f(dnsmasq, &cfg)
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

#[test]
fn a_lease_from_dnsmasq_gives_the_address_router_and_dns_and_is_released_at_exit() {
    with_dhcp("lease", |dnsmasq, cfg| {
        let start = Instant::now();
        let stack = Stack::from_config(cfg).expect("stack on TAP");
        // Bound within the start-up wait (the first DISCOVER after 1-2 s,
        // then 3 s while dnsmasq pings the address); should a DISCOVER be
        // lost, a retransmission follows 3 to 5 s later, so wait for the
        // lease itself, bounded.
        let deadline = Instant::now() + Duration::from_secs(30);
        let addr = loop {
            if let Some(a) = stack.ipv4_addr() {
                break a;
            }
            assert!(Instant::now() < deadline, "no lease in 30 s");
            thread::sleep(Duration::from_millis(20));
        };
        eprintln!("lease {addr} bound {:?} after the start", start.elapsed());
        let octets = addr.octets();
        assert!(
            octets[..3] == [10, 99, 0] && (50..=99).contains(&octets[3]),
            "{addr} is not from the range"
        );
        let mac = cfg.mac_addr().to_string();
        let leases = dnsmasq.leases();
        assert!(
            leases.contains(&format!("{mac} {addr}")),
            "dnsmasq's leases: {leases:?}"
        );
        assert_eq!(
            stack.dns_servers(),
            vec![KERNEL, Ipv4Addr::new(10, 99, 0, 2)]
        );
        // The kernel reaches the stack at its leased address.
        assert!(ping(&addr.to_string()), "ping {addr}");
        let v4 = sh("ip -4 neigh show dev br0");
        assert!(v4.contains(&format!("{addr} lladdr {mac}")), "{v4}");
        let listener = TcpListener::bind(&stack, "0.0.0.0:7").unwrap();
        let server = thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 64];
            let n = s.read(&mut buf).unwrap();
            s.write_all(&buf[..n]).unwrap();
        });
        let mut k = net::TcpStream::connect_timeout(
            &net::SocketAddr::from((addr, 7)),
            Duration::from_secs(5),
        )
        .unwrap();
        k.write_all(b"leased").unwrap();
        let mut back = [0u8; 6];
        k.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"leased");
        server.join().unwrap();
        // The stack reaches the kernel on-link, and an address beyond the
        // prefix through the lease's router (the kernel, which owns it).
        let k4 = net::TcpListener::bind("0.0.0.0:9").unwrap();
        let accept = thread::spawn(move || {
            for _ in 0..2 {
                let (mut s, peer) = k4.accept().unwrap();
                s.write_all(peer.ip().to_string().as_bytes()).unwrap();
            }
        });
        for to in [KERNEL, FAR] {
            let mut s =
                TcpStream::connect(&stack, (to, 9)).unwrap_or_else(|e| panic!("connect {to}: {e}"));
            let mut seen = String::new();
            s.read_to_string(&mut seen).unwrap();
            assert_eq!(seen, addr.to_string(), "the kernel saw our source");
        }
        accept.join().unwrap();
        // A clean exit gives the lease back.
        drop(stack);
        let deadline = Instant::now() + Duration::from_secs(10);
        while dnsmasq.leases().contains(&mac) {
            assert!(
                Instant::now() < deadline,
                "the lease is still there: {:?}",
                dnsmasq.leases()
            );
            thread::sleep(Duration::from_millis(50));
        }
    });
}

#[test]
fn without_a_lease_ipv4_sockets_get_enetunreach() {
    with_dhcp("none", |dnsmasq, cfg| {
        // No server: dnsmasq stops before the stack starts.
        drop(dnsmasq);
        let stack = Stack::from_config(cfg).expect("the stack starts without a lease");
        assert_eq!(stack.ipv4_addr(), None);
        let err = TcpStream::connect(&stack, (KERNEL, 9)).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENETUNREACH), "{err}");
        let udp = UdpSocket::bind(&stack, "0.0.0.0:0").unwrap();
        let err = udp.send_to(b"x", (KERNEL, 9)).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENETUNREACH), "{err}");
    });
}

/// The address SLAAC forms in fd77::/64 from `mac` (modified EUI-64).
fn slaac_addr(mac: ustack::wire::ethernet::MacAddr) -> std::net::Ipv6Addr {
    let mut o = [0u8; 16];
    o[..2].copy_from_slice(&[0xfd, 0x77]);
    o[8..].copy_from_slice(&mac.eui64());
    std::net::Ipv6Addr::from(o)
}

#[test]
fn slaac_from_dnsmasq_router_advertisements_gives_the_address_and_the_router() {
    thread::spawn(|| {
        ustack::sys::enter_private_netns().expect("private network namespace (run as root)");
        sh("ip link add br0 type bridge \
            && sysctl -qw net.ipv6.conf.br0.accept_dad=0 \
            && ip addr add fd77::1/64 dev br0 nodad \
            && ip addr add 2001:db8::1/128 dev lo \
            && ip link set lo up \
            && ip link set br0 up \
            && ip tuntap add ustap0 mode tap \
            && ip link set ustap0 master br0 \
            && ip link set ustap0 up");
        // The bridge's link-local address (the advertisements' source)
        // must be usable before dnsmasq starts.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !sh("ip -6 addr show dev br0 scope link").contains("fe80") {
            assert!(Instant::now() < deadline, "no link-local address on br0");
            thread::sleep(Duration::from_millis(20));
        }
        let dir = std::env::temp_dir().join(format!("ustack-slaac-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let child = Command::new("dnsmasq")
            .args([
                "--no-daemon",
                "--conf-file=/dev/null",
                "--port=0",
                "--interface=br0",
                "--bind-interfaces",
                "--except-interface=lo",
                "--user=root",
                "--enable-ra",
                "--dhcp-range=fd77::,ra-only",
                // Advertise a default router lifetime even though the
                // namespace has no default route.
                "--ra-param=br0,10,1800",
            ])
            .arg(format!("--dhcp-leasefile={}", dir.join("leases").display()))
            .arg(format!("--pid-file={}", dir.join("pid").display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dnsmasq (package dnsmasq-base)");
        let _dnsmasq = Dnsmasq {
            child,
            leases: dir.join("leases"),
            dir,
        };
        let cfg = Config {
            ifname: "ustap0".into(),
            link: LinkKind::Tap,
            slaac: true,
            ..Config::default()
        };
        let start = Instant::now();
        let stack = Stack::from_config(&cfg).expect("stack on TAP");
        let addr = stack
            .ipv6_addr()
            .expect("an address within the start-up wait");
        eprintln!("slaac {addr} after {:?}", start.elapsed());
        assert_eq!(addr, slaac_addr(cfg.mac_addr()));
        assert!(ping(&addr.to_string()), "ping {addr}");
        let v6 = sh("ip -6 neigh show dev br0");
        assert!(
            v6.contains(&format!("{addr} lladdr {}", cfg.mac_addr())),
            "{v6}"
        );
        let listener = TcpListener::bind(&stack, "[::]:7").unwrap();
        let server = thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 64];
            let n = s.read(&mut buf).unwrap();
            s.write_all(&buf[..n]).unwrap();
        });
        let mut k = net::TcpStream::connect_timeout(
            &net::SocketAddr::from((addr, 7)),
            Duration::from_secs(5),
        )
        .unwrap();
        k.write_all(b"slaac").unwrap();
        let mut back = [0u8; 5];
        k.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"slaac");
        server.join().unwrap();
        // On-link, and beyond the prefix through the advertising router.
        let k6 = net::TcpListener::bind("[::]:9").unwrap();
        let accept = thread::spawn(move || {
            for _ in 0..2 {
                let (mut s, peer) = k6.accept().unwrap();
                s.write_all(peer.ip().to_string().as_bytes()).unwrap();
            }
        });
        for to in ["fd77::1", "2001:db8::1"] {
            let to: std::net::Ipv6Addr = to.parse().unwrap();
            let mut s =
                TcpStream::connect(&stack, (to, 9)).unwrap_or_else(|e| panic!("connect {to}: {e}"));
            let mut seen = String::new();
            s.read_to_string(&mut seen).unwrap();
            assert_eq!(seen, addr.to_string(), "the kernel saw our source");
        }
        accept.join().unwrap();
    })
    .join()
    .unwrap_or_else(|p| std::panic::resume_unwind(p));
}
