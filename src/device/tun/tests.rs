//! TUN tests. Every test that touches a device runs on a thread of its own
//! that has first moved into a fresh network namespace (a thread-level
//! `unshare(CLONE_NEWNET)`), so no device or packet ever reaches the
//! machine's own namespace; the namespace and everything in it vanish when
//! the thread ends.
//!
//! They need root (CAP_SYS_ADMIN for the namespace, CAP_NET_ADMIN for the
//! device) and fail, saying so, without it. Only a machine without
//! /dev/net/tun at all skips them, with a line on stderr.

use super::offload::negotiate_offloads;
use super::setup::{CLONE_DEVICE, Control};
use super::*;
use crate::device::vnet;
use crate::device::{Link, Packet};
use crate::time::Instant;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::process::Command;

const NAME: &str = "ustest0";

/// Runs `f` on a thread inside a private network namespace (with `lo` up);
/// `None` if this machine has no TUN driver at all.
fn in_private_netns<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> Option<R> {
    if !Path::new(CLONE_DEVICE).exists() {
        eprintln!("SKIPPED: {CLONE_DEVICE} is absent, TUN tests cannot run here");
        return None;
    }
    let thread = std::thread::spawn(move || {
        // SAFETY: unshare takes no pointers; CLONE_NEWNET moves only this
        // thread into a new namespace.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            panic!(
                "unshare(CLONE_NEWNET) failed: {}: TUN tests need root to make a private \
                 network namespace; run them as root",
                io::Error::last_os_error()
            );
        }
        Control::new(libc::AF_INET)
            .and_then(|c| c.bring_up("lo"))
            .expect("bringing up lo in the private namespace");
        f()
    });
    match thread.join() {
        Ok(r) => Some(r),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().expect("running ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether `cond` holds within two seconds. A child forked by a concurrent
/// test holds a copy of every fd until it execs (close-on-exec), so a device
/// may outlive our close of it for a moment.
fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    (0..200).any(|_| {
        cond() || {
            std::thread::sleep(std::time::Duration::from_millis(10));
            false
        }
    })
}

fn wait_readable(fd: RawFd, timeout_ms: i32) -> bool {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut pfd, 1, timeout_ms) == 1 }
}

/// Receives until a packet satisfies `want`, for up to two seconds. The
/// kernel sends unrelated packets too (router solicitations), and one batch
/// may hold the answer to a later question, so everything received stays in
/// `seen` until it is asked for.
fn recv_matching(
    tun: &mut TunDevice,
    seen: &mut Vec<Packet>,
    want: impl Fn(&[u8]) -> bool,
) -> Option<Packet> {
    for _ in 0..20 {
        if let Some(i) = seen.iter().position(|p| want(p)) {
            return Some(seen.remove(i));
        }
        if wait_readable(tun.wait_fd().unwrap(), 100) {
            tun.recv_batch(Instant::ZERO, seen, 64).unwrap();
        }
    }
    None
}

fn checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    for part in parts {
        for pair in part.chunks(2) {
            let hi = u32::from(pair[0]) << 8;
            sum += hi | pair.get(1).copied().map_or(0, u32::from);
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn echo_request_v4(src: Ipv4Addr, dst: Ipv4Addr, ident: u16) -> Packet {
    let mut p = vec![0u8; 20 + 8 + 4];
    let total = p.len() as u16;
    p[0] = 0x45;
    p[2..4].copy_from_slice(&total.to_be_bytes());
    p[8] = 64;
    p[9] = 1;
    p[12..16].copy_from_slice(&src.octets());
    p[16..20].copy_from_slice(&dst.octets());
    let c = checksum(&[&p[..20]]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p[20] = 8;
    p[24..26].copy_from_slice(&ident.to_be_bytes());
    p[26..28].copy_from_slice(&1u16.to_be_bytes());
    p[28..].copy_from_slice(b"ping");
    let c = checksum(&[&p[20..]]);
    p[22..24].copy_from_slice(&c.to_be_bytes());
    p
}

fn echo_request_v6(src: Ipv6Addr, dst: Ipv6Addr, ident: u16) -> Packet {
    let mut icmp = vec![128u8, 0, 0, 0, 0, 0, 0, 1];
    icmp[4..6].copy_from_slice(&ident.to_be_bytes());
    icmp.extend_from_slice(b"ping");
    let len = (icmp.len() as u32).to_be_bytes();
    let c = checksum(&[&src.octets(), &dst.octets(), &len, &[0, 0, 0, 58], &icmp]);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
    p.extend_from_slice(&[58, 64]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(&icmp);
    p
}

fn fd_flags(fd: RawFd) -> (i32, i32) {
    // SAFETY: F_GETFD and F_GETFL take no pointer.
    unsafe {
        (
            libc::fcntl(fd, libc::F_GETFD),
            libc::fcntl(fd, libc::F_GETFL),
        )
    }
}

#[test]
fn rejects_bad_names_before_touching_the_kernel() {
    for (name, why) in [
        ("", "empty"),
        ("abcdefghijklmnop", "longer than 15"),
        ("a/b", "'/'"),
        ("a b", "whitespace"),
        ("tab\t", "whitespace"),
        ("a:1", "':'"),
        ("..", "'.'"),
    ] {
        for e in [
            TunDevice::open(&TunConfig::named(name)).err().unwrap(),
            create_persistent(&TunConfig::named(name), None, None).unwrap_err(),
            delete_persistent(name).unwrap_err(),
        ] {
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{name:?}");
            let msg = e.to_string();
            assert!(msg.contains(&format!("{name:?}")), "{msg}");
            assert!(msg.contains(why), "{msg}");
        }
    }
    assert!(validate_name("abcdefghijklmno").is_ok(), "15 bytes fit");
}

#[test]
fn rejects_unusable_mtus_and_address_pairs() {
    let check = |config: TunConfig, needle: &str| {
        let e = config.validate().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains(needle), "{e}");
        assert!(e.to_string().contains("ustack0"), "{e}");
    };
    let base = TunConfig::default();
    check(
        TunConfig {
            mtu: 1000,
            ..base.clone()
        },
        "IPv6 needs at least 1280",
    );
    check(
        TunConfig {
            mtu: 70_000,
            ..base.clone()
        },
        "MTU 70000",
    );
    check(
        TunConfig {
            mtu: 60,
            ipv6: None,
            ..base.clone()
        },
        "expected 68 to 65535",
    );
    let one = Ipv4Addr::new(10, 0, 0, 1);
    check(
        TunConfig {
            ipv4: Some((one, one)),
            ..base.clone()
        },
        "IPv4 pair",
    );
    let far = "fd78::2".parse().unwrap();
    check(
        TunConfig {
            ipv6: Some(("fd77::1".parse().unwrap(), far)),
            ..base.clone()
        },
        "one /64",
    );
    assert!(
        TunConfig {
            mtu: 576,
            ipv6: None,
            ..base.clone()
        }
        .validate()
        .is_ok()
    );
    assert!(base.validate().is_ok());
}

#[test]
fn creates_and_configures_a_device_the_kernel_talks_to() {
    in_private_netns(|| {
        let mut tun = TunDevice::open(&TunConfig {
            mtu: 1400,
            ..TunConfig::named(NAME)
        })
        .unwrap();
        assert!(tun.created());
        assert_eq!(tun.name(), NAME);
        assert_eq!(tun.mtu(), 1400);
        let (fd_flags, fl_flags) = fd_flags(tun.wait_fd().unwrap());
        assert!(fd_flags & libc::FD_CLOEXEC != 0, "close-on-exec");
        assert!(fl_flags & libc::O_NONBLOCK != 0, "non-blocking");

        let link = ip(&["-o", "link", "show", NAME]);
        assert!(link.contains("mtu 1400") && link.contains(",UP"), "{link}");
        let v4 = ip(&["-o", "-4", "addr", "show", NAME]);
        assert!(v4.contains("inet 10.77.0.1 peer 10.77.0.2/32"), "{v4}");
        let v6 = ip(&["-o", "-6", "addr", "show", NAME]);
        assert!(v6.contains("inet6 fd77::1/64"), "{v6}");
        assert!(
            !v6.contains("tentative"),
            "DAD must not hold the address: {v6}"
        );
        let dad = std::fs::read_to_string(format!("/proc/sys/net/ipv6/conf/{NAME}/accept_dad"));
        assert_eq!(dad.unwrap().trim(), "0", "DAD is off on our device");
        for family in ["-4", "-6"] {
            let routes = ip(&[family, "route", "show", "default"]);
            assert!(routes.trim().is_empty(), "no default route: {routes}");
        }

        // The kernel may have sent router solicitations already; once they
        // are drained, an empty device reads as Ok(0), not an error.
        let mut drained = Vec::new();
        let empty = (0..100).any(|_| tun.recv_batch(Instant::ZERO, &mut drained, 8).unwrap() == 0);
        assert!(empty, "EAGAIN is Ok(0)");

        // The kernel answers our echo requests on both families...
        let stack4 = Ipv4Addr::new(10, 77, 0, 2);
        let mut out = vec![
            echo_request_v4(stack4, Ipv4Addr::new(10, 77, 0, 1), 0x4444),
            echo_request_v6(
                "fd77::2".parse().unwrap(),
                "fd77::1".parse().unwrap(),
                0x6666,
            ),
        ];
        assert_eq!(tun.send_batch(Instant::ZERO, &mut out).unwrap(), 2);
        assert!(out.is_empty());
        let mut seen = Vec::new();
        let reply4 = recv_matching(&mut tun, &mut seen, |p| {
            p[0] >> 4 == 4 && p[9] == 1 && p[20] == 0
        });
        let reply4 = reply4.expect("ICMP echo reply from 10.77.0.1");
        assert_eq!(&reply4[16..20], &stack4.octets());
        assert_eq!(&reply4[24..26], &0x4444u16.to_be_bytes());
        let reply6 = recv_matching(&mut tun, &mut seen, |p| {
            p[0] >> 4 == 6 && p[6] == 58 && p[40] == 129
        });
        let reply6 = reply6.expect("ICMPv6 echo reply from fd77::1");
        assert_eq!(&reply6[44..46], &0x6666u16.to_be_bytes());

        // ...and routes datagrams for the stack's addresses into the device.
        for (dst, version) in [("10.77.0.2:9", 4u8), ("[fd77::2]:9", 6)] {
            let dst: SocketAddr = dst.parse().unwrap();
            let bind = if version == 4 { "0.0.0.0:0" } else { "[::]:0" };
            UdpSocket::bind(bind)
                .unwrap()
                .send_to(b"hello stack", dst)
                .unwrap();
            let udp = recv_matching(&mut tun, &mut seen, |p| {
                p[0] >> 4 == version && p.ends_with(b"hello stack")
            });
            assert!(udp.is_some(), "UDP to {dst} never reached the device");
        }
        let stats = tun.stats();
        assert_eq!((stats.tx_packets, stats.tx_dropped), (2, 0));
        assert!(stats.rx_packets >= 4 && stats.rx_bytes > 0, "{stats:?}");
    });
}

#[test]
fn send_batch_drops_and_counts_packets_the_kernel_rejects() {
    in_private_netns(|| {
        let mut tun = TunDevice::open(&TunConfig::named(NAME)).unwrap();
        let good = echo_request_v4(Ipv4Addr::new(10, 77, 0, 2), Ipv4Addr::new(10, 77, 0, 1), 1);
        let mut out = vec![vec![0x00; 40], good.clone(), vec![0xf0; 40], good];
        assert_eq!(tun.send_batch(Instant::ZERO, &mut out).unwrap(), 4);
        assert!(out.is_empty());
        let stats = tun.stats();
        assert_eq!((stats.tx_packets, stats.tx_dropped), (2, 2), "{stats:?}");
    });
}

#[test]
fn sent_packets_buffers_come_back_through_take_spent() {
    in_private_netns(|| {
        let mut tun = TunDevice::open(&TunConfig::named(NAME)).unwrap();
        let ping = echo_request_v4(Ipv4Addr::new(10, 77, 0, 2), Ipv4Addr::new(10, 77, 0, 1), 1);
        let mut out = vec![ping.clone(), ping];
        let sent: Vec<*const u8> = out.iter().map(|p| p.as_ptr()).collect();
        assert_eq!(tun.send_batch(Instant::ZERO, &mut out).unwrap(), 2);
        let mut spent = Vec::new();
        tun.take_spent(&mut spent);
        let back: Vec<*const u8> = spent.iter().map(|p| p.as_ptr()).collect();
        assert_eq!(back, sent);
        tun.take_spent(&mut spent);
        assert_eq!(spent.len(), 2, "given once");
    });
}

#[test]
fn created_device_disappears_when_dropped() {
    in_private_netns(|| {
        let tun = TunDevice::open(&TunConfig::named(NAME)).unwrap();
        let control = Control::new(libc::AF_INET).unwrap();
        assert!(control.index(NAME).unwrap().is_some());
        drop(tun);
        assert!(
            eventually(|| control.index(NAME).unwrap().is_none()),
            "the device outlived its only fd"
        );
    });
}

#[test]
fn attaches_to_a_persistent_device_and_leaves_its_configuration_alone() {
    in_private_netns(|| {
        let setup = TunConfig {
            mtu: 1300,
            ipv4: Some((Ipv4Addr::new(10, 9, 0, 1), Ipv4Addr::new(10, 9, 0, 2))),
            ..TunConfig::named(NAME)
        };
        create_persistent(&setup, Some(4242), Some(4343)).unwrap();
        let again = create_persistent(&setup, None, None).unwrap_err();
        assert_eq!(again.kind(), io::ErrorKind::AlreadyExists);
        assert!(again.to_string().contains("--teardown"), "{again}");

        let mut attached = None;
        let free = eventually(|| match TunDevice::open(&TunConfig::named(NAME)) {
            Ok(tun) => attached.replace(tun).is_none(),
            Err(e) if e.kind() == io::ErrorKind::ResourceBusy => false,
            Err(e) => panic!("{e}"),
        });
        assert!(free, "still busy after the setup closed it");
        let mut tun = attached.unwrap();
        assert!(!tun.created());
        assert_eq!(tun.mtu(), 1300, "the device's MTU, not the config's");
        let v4 = ip(&["-o", "-4", "addr", "show", NAME]);
        assert!(v4.contains("inet 10.9.0.1 peer 10.9.0.2/32"), "{v4}");
        assert!(!v4.contains("10.77.0.1"), "{v4}");
        let details = ip(&["-d", "link", "show", NAME]);
        assert!(
            details.contains("persist") && details.contains("user 4242"),
            "{details}"
        );
        assert!(details.contains("group 4343"), "{details}");

        // Still carries traffic after the setup process let go of it.
        let mut out = vec![echo_request_v4(
            Ipv4Addr::new(10, 9, 0, 2),
            Ipv4Addr::new(10, 9, 0, 1),
            7,
        )];
        tun.send_batch(Instant::ZERO, &mut out).unwrap();
        let mut seen = Vec::new();
        assert!(
            recv_matching(&mut tun, &mut seen, |p| p[0] == 0x45
                && p[9] == 1
                && p[20] == 0)
            .is_some()
        );

        let busy = TunDevice::open(&TunConfig::named(NAME)).err().unwrap();
        assert_eq!(busy.kind(), io::ErrorKind::ResourceBusy);
        assert_eq!(
            busy.to_string(),
            format!("TUN device {NAME} is busy (attached by another process)")
        );
        let busy = delete_persistent(NAME).unwrap_err();
        assert_eq!(busy.kind(), io::ErrorKind::ResourceBusy);

        drop(tun);
        let control = Control::new(libc::AF_INET).unwrap();
        assert!(
            control.index(NAME).unwrap().is_some(),
            "persistent outlives its users"
        );
        assert!(
            eventually(|| match delete_persistent(NAME) {
                Ok(()) => true,
                Err(e) if e.kind() == io::ErrorKind::ResourceBusy => false,
                Err(e) => panic!("{e}"),
            }),
            "still busy after its user closed it"
        );
        assert!(eventually(|| control.index(NAME).unwrap().is_none()));
        let gone = delete_persistent(NAME).unwrap_err();
        assert_eq!(gone.kind(), io::ErrorKind::NotFound);
        assert!(gone.to_string().contains(NAME), "{gone}");
    });
}

#[test]
fn attaching_to_a_non_tun_interface_names_it() {
    in_private_netns(|| {
        let e = TunDevice::open(&TunConfig::named("lo")).err().unwrap();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
        assert!(
            e.to_string().contains("interface lo exists but is not"),
            "{e}"
        );
    });
}

/// Linux capability sets for capget/capset (version 3: two 32-bit words).
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAP_V3: u32 = 0x2008_0522;
const CAP_NET_ADMIN: u32 = 12;

/// Removes CAP_NET_ADMIN from the calling thread's effective set only.
fn drop_net_admin() {
    let mut header = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: header and two data words, as version 3 requires; pid 0 is
    // the calling thread.
    let got = unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) };
    assert_eq!(got, 0, "capget: {}", io::Error::last_os_error());
    data[0].effective &= !(1 << CAP_NET_ADMIN);
    // SAFETY: as above; capset changes only this thread's credentials.
    let set = unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) };
    assert_eq!(set, 0, "capset: {}", io::Error::last_os_error());
}

#[test]
fn creating_without_cap_net_admin_explains_the_fix() {
    in_private_netns(|| {
        drop_net_admin();
        let e = TunDevice::open(&TunConfig::named(NAME)).err().unwrap();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
        let msg = e.to_string();
        assert!(
            msg.starts_with(&format!("creating TUN device {NAME} needs CAP_NET_ADMIN: ")),
            "{msg}"
        );
        assert!(msg.contains("Operation not permitted"), "{msg}");
        assert!(msg.contains("scripts/ustack --setup"), "{msg}");
    });
}

#[test]
fn pcap_tap_on_the_device_records_a_ping_that_tcpdump_decodes() {
    if Command::new("tcpdump").arg("--version").output().is_err() {
        eprintln!("SKIPPED: tcpdump is not installed, cannot cross-check the capture");
        return;
    }
    let path = std::env::temp_dir().join(format!("ustack-tun-test-{}.pcap", std::process::id()));
    let capture = path.clone();
    let ran = in_private_netns(move || {
        let tun = TunDevice::open(&TunConfig::named(NAME)).unwrap();
        let mut tap = crate::device::PcapTap::create(tun, &capture, Instant::ZERO).unwrap();
        let mut out = vec![echo_request_v4(
            Ipv4Addr::new(10, 77, 0, 2),
            Ipv4Addr::new(10, 77, 0, 1),
            0x5151,
        )];
        tap.send_batch(Instant::ZERO, &mut out).unwrap();
        let mut seen = Vec::new();
        for _ in 0..20 {
            if seen
                .iter()
                .any(|p: &Packet| p[0] == 0x45 && p[9] == 1 && p[20] == 0)
            {
                break;
            }
            if wait_readable(tap.wait_fd().unwrap(), 100) {
                tap.recv_batch(Instant::from_millis(1), &mut seen, 64)
                    .unwrap();
            }
        }
    });
    if ran.is_none() {
        return;
    }
    let run = Command::new("tcpdump")
        .args(["-nn", "-r"])
        .arg(&path)
        .arg("icmp")
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    let text = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].contains("10.77.0.2 > 10.77.0.1: ICMP echo request, id 20817"),
        "{text}"
    );
    assert!(
        lines[1].contains("10.77.0.1 > 10.77.0.2: ICMP echo reply, id 20817"),
        "{text}"
    );
}

#[test]
fn recv_batch_takes_at_most_max_and_drains_until_empty() {
    in_private_netns(|| {
        let mut tun = TunDevice::open(&TunConfig::named(NAME)).unwrap();
        let sock = UdpSocket::bind("10.77.0.1:0").unwrap();
        let mut seen = Vec::new();
        for i in 0..40u8 {
            sock.send_to(&[i; 10], "10.77.0.2:9").unwrap();
        }
        let is_ours = |p: &Packet| p.len() == 38 && p[0] == 0x45 && p[9] == 17;
        let mut counts = Vec::new();
        for _ in 0..20 {
            if !wait_readable(tun.wait_fd().unwrap(), 100) {
                break;
            }
            // Let the kernel queue everything before the first read.
            std::thread::sleep(std::time::Duration::from_millis(20));
            counts.push(tun.recv_batch(Instant::ZERO, &mut seen, 16).unwrap());
            if seen.iter().filter(|p| is_ours(p)).count() == 40 {
                break;
            }
        }
        assert_eq!(counts[..2], [16, 16], "max bounds a batch: {counts:?}");
        let ours: Vec<u8> = seen.iter().filter(|p| is_ours(p)).map(|p| p[28]).collect();
        assert_eq!(ours, (0..40).collect::<Vec<u8>>(), "all, in order");
    });
}

#[test]
fn recv_batch_reads_into_recycled_buffers() {
    in_private_netns(|| {
        let mut tun = TunDevice::open(&TunConfig::named(NAME)).unwrap();
        let sock = UdpSocket::bind("10.77.0.1:0").unwrap();
        let mut batch = Vec::new();
        let recv_one = |tun: &mut TunDevice, batch: &mut Vec<Packet>, byte: u8| {
            sock.send_to(&[byte; 10], "10.77.0.2:9").unwrap();
            for _ in 0..50 {
                assert!(wait_readable(tun.wait_fd().unwrap(), 1000));
                tun.recv_batch(Instant::ZERO, batch, 64).unwrap();
                if let Some(i) = batch.iter().position(|p| p.len() == 38 && p[28] == byte) {
                    return i;
                }
            }
            panic!("datagram {byte} never arrived");
        };
        let i = recv_one(&mut tun, &mut batch, 1);
        let first = batch[i].as_ptr();
        // Give back everything (the first buffer last, so it is reused
        // first).
        let p = batch.remove(i);
        batch.push(p);
        tun.recycle(&mut batch);
        assert!(batch.is_empty(), "recycle takes the packets");
        let j = recv_one(&mut tun, &mut batch, 2);
        let reused = batch.iter().any(|p| p.as_ptr() == first);
        assert!(
            reused,
            "a recycled allocation was read into (packet at {j})"
        );
        assert_eq!(batch[j][28..], [2u8; 10], "with the new contents");
    });
}

/// A `TunDevice` with offloads whose "kernel" is one end of a Unix
/// datagram socket pair, the other end returned: it takes datagrams up to
/// about 8 KiB and refuses larger ones with EMSGSIZE, as a kernel refusing
/// TSO refuses a super-segment. No device, no network.
fn device_refusing_super_packets() -> (TunDevice, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: socketpair writes two fds into the array it is given.
    let r = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    assert_eq!(r, 0, "{}", io::Error::last_os_error());
    // SAFETY: both fds are fresh and ours.
    let (ours, theirs) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let size: libc::c_int = 4096;
    // SAFETY: a valid int option of its size.
    let r = unsafe {
        libc::setsockopt(
            ours.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0);
    let offloads = Offloads {
        vnet: true,
        csum: true,
        tso: true,
        uso: false,
    };
    let tun = TunDevice::new(ours, "fake0".into(), 1500, false, offloads);
    (tun, theirs)
}

/// A TCP super-segment of `len` payload bytes (10.77.0.2 -> 10.77.0.1),
/// FIN|PSH|ACK|CWR set, and its payload.
fn super_segment(len: usize, seq: u32) -> (Packet, Vec<u8>) {
    use crate::wire::{IpHeader, IpProtocol, TcpFlags, TcpRepr};
    use std::net::IpAddr;
    let payload: Vec<u8> = (0..len).map(|i| (i * 31 + 7) as u8).collect();
    let (src, dst) = (
        IpAddr::V4(Ipv4Addr::new(10, 77, 0, 2)),
        IpAddr::V4(Ipv4Addr::new(10, 77, 0, 1)),
    );
    let repr = TcpRepr {
        src_port: 5001,
        dst_port: 40000,
        seq,
        ack: 99,
        flags: TcpFlags::ACK | TcpFlags::PSH | TcpFlags::FIN | TcpFlags::CWR,
        window: 1000,
        ..TcpRepr::default()
    };
    let ip = IpHeader {
        src,
        dst,
        protocol: IpProtocol::Tcp,
        payload_len: repr.buffer_len(len),
        hop_limit: 64,
        ident: 0,
        dont_frag: true,
        ecn: 0,
    };
    let mut p = vec![0u8; ip.buffer_len()];
    let n = ip.emit(&mut p).unwrap();
    repr.emit_partial(&mut p[n..], src, dst, &payload).unwrap();
    (p, payload)
}

#[test]
fn a_refused_super_segment_is_cut_in_software_from_then_on() {
    use crate::wire::{TcpFlags, TcpRepr, parse_ip};
    let (mut tun, peer) = device_refusing_super_packets();
    assert!(tun.sends_super_packets());
    let mut want = Vec::new();
    let mut batch = Vec::new();
    for (i, len) in [20 * 1460, 3 * 1460 + 17].into_iter().enumerate() {
        let (p, payload) = super_segment(len, 1000 + ((i as u32) << 20));
        batch.push(p);
        want.push(payload);
    }
    let mut got: Vec<Vec<u8>> = Vec::new();
    let mut buf = vec![0u8; 70_000];
    for _ in 0..1000 {
        if batch.is_empty() {
            break;
        }
        tun.send_batch(Instant::ZERO, &mut batch).unwrap();
        loop {
            // SAFETY: reading into our own buffer of its length.
            let n = unsafe { libc::read(peer.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                break;
            }
            got.push(buf[..n as usize].to_vec());
        }
    }
    assert!(batch.is_empty(), "all sent");
    assert!(!tun.sends_super_packets(), "TSO is off for good");
    let stats = tun.stats();
    assert_eq!(stats.tx_soft_segmented, 2, "{stats:?}");
    assert_eq!(stats.tx_dropped, 0, "{stats:?}");
    assert_eq!(stats.tx_super_packets, 0, "{stats:?}");
    // Every piece: an all-zero vnet header, at most the MTU, a checksum
    // that verifies; the pieces of each super-segment carry its payload in
    // order, FIN and PSH on the last only, CWR on the first only.
    let mut pieces = got.iter().peekable();
    for payload in &want {
        let mut data = Vec::new();
        let mut first = true;
        while data.len() < payload.len() {
            let d = pieces.next().expect("more pieces");
            assert_eq!(d[..vnet::HEADER_LEN], [0; vnet::HEADER_LEN]);
            let ip = &d[vnet::HEADER_LEN..];
            assert!(ip.len() <= 1500, "{}", ip.len());
            let view = parse_ip(ip).expect("the IPv4 header checksum verifies");
            let (repr, seg) = TcpRepr::parse_segment(view.payload, view.src, view.dst)
                .expect("the TCP checksum verifies");
            let last = data.len() + seg.len() == payload.len();
            assert_eq!(repr.flags.contains(TcpFlags::FIN), last);
            assert_eq!(repr.flags.contains(TcpFlags::PSH), last);
            assert_eq!(repr.flags.contains(TcpFlags::CWR), first);
            first = false;
            data.extend_from_slice(seg);
        }
        assert_eq!(&data, payload);
    }
    assert!(pieces.next().is_none());
}

#[test]
fn offloads_fall_back_to_what_the_kernel_accepts() {
    let tso = libc::TUN_F_CSUM | libc::TUN_F_TSO4 | libc::TUN_F_TSO6;
    let all = tso | 0x20 | 0x40;
    let refuse = |refused: &[u32]| {
        let mut asked = Vec::new();
        let got = negotiate_offloads(|flags| {
            asked.push(flags);
            if refused.contains(&flags) {
                Err(io::Error::from_raw_os_error(libc::EINVAL))
            } else {
                Ok(())
            }
        });
        (got, asked)
    };
    let full = Offloads {
        vnet: true,
        csum: true,
        tso: true,
        uso: true,
    };
    assert_eq!(refuse(&[]), (full, vec![all]));
    // A kernel before 6.2 knows no USO flags.
    let no_uso = Offloads { uso: false, ..full };
    assert_eq!(refuse(&[all]), (no_uso, vec![all, tso]));
    let csum_only = Offloads {
        tso: false,
        ..no_uso
    };
    assert_eq!(
        refuse(&[all, tso]),
        (csum_only, vec![all, tso, libc::TUN_F_CSUM])
    );
    let none = Offloads {
        vnet: true,
        ..Offloads::default()
    };
    assert_eq!(
        refuse(&[all, tso, libc::TUN_F_CSUM]),
        (none, vec![all, tso, libc::TUN_F_CSUM])
    );
}
