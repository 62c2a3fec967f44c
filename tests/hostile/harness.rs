//! The attacker's bench, in the manner of gVisor's packetimpact: a test
//! writes crafted IP packets onto the link of a device under test and
//! reads what it answers.
//!
//! - Against ustack: the stack runs on its TUN device `ustack0`; the test
//!   injects with an `AF_PACKET` socket bound to that device (a packet sent
//!   on a TUN interface is what the stack reads from its fd) and sniffs the
//!   packets the stack writes (they arrive at the kernel as `PACKET_HOST`).
//!   Spoofed peers live in 10.99.0.0/16 and fd99::/64, blackholed in the
//!   namespace so the kernel drops the stack's answers to them silently.
//! - Against the kernel (the stand-in that says what Linux does): a second
//!   TUN device `hk0` whose fd the test holds; the kernel is 10.88.0.1 /
//!   fd88::1 on it and the test's packets come from 10.88.0.2 / fd88::2.
//!
//! Everything happens on a thread moved into a private network namespace.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::thread;
use std::time::{Duration, Instant};

use ustack::api::Stack;
use ustack::config::Config;
use ustack::device::Link;
use ustack::device::tun::{TunConfig, TunDevice};

use crate::pkt::{self, ACK, RST, SYN, Seg, Tcp};

pub const STACK4: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
pub const KERNEL4: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
pub const STACK6: Ipv6Addr = Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 2);
pub const KERNEL6: Ipv6Addr = Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 1);
/// A spoofed peer of the stack (blackholed on the kernel side).
pub fn spoof4(n: u16) -> Ipv4Addr {
    Ipv4Addr::new(10, 99, (n >> 8) as u8, n as u8)
}
pub fn spoof6(n: u16) -> Ipv6Addr {
    Ipv6Addr::new(0xfd99, 0, 0, 0, 0, 0, 0, n.max(1))
}
/// The kernel stand-in's addresses on `hk0`, and the test's.
pub const HK_KERNEL4: Ipv4Addr = Ipv4Addr::new(10, 88, 0, 1);
pub const HK_PEER4: Ipv4Addr = Ipv4Addr::new(10, 88, 0, 2);
pub const HK_KERNEL6: Ipv6Addr = Ipv6Addr::new(0xfd88, 0, 0, 0, 0, 0, 0, 1);
pub const HK_PEER6: Ipv6Addr = Ipv6Addr::new(0xfd88, 0, 0, 0, 0, 0, 0, 2);

/// How long a test waits for an answer it is owed before failing. Not a
/// timing threshold: a correct stack answers at once, so this only turns
/// a missing answer into a failure instead of a hang.
pub const OWED: Duration = Duration::from_secs(5);

/// Runs `f` on a thread in a private network namespace.
pub fn in_netns<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    thread::spawn(move || {
        ustack::sys::enter_private_netns().expect("private network namespace (run as root)");
        f()
    })
    .join()
    .unwrap_or_else(|p| std::panic::resume_unwind(p))
}

fn ip(args: &[&str]) {
    let st = std::process::Command::new("ip")
        .args(args)
        .status()
        .expect("ip");
    assert!(st.success(), "ip {args:?} failed");
}

/// A stack on `ustack0` (default addresses, offloads off so every packet
/// the sniffer sees is one the stack built whole), the kernel set to drop
/// answers to spoofed peers silently, and the attacker's wire on it.
pub fn stack_bench(cfg: Config) -> (Stack, Wire) {
    let stack = Stack::from_config(&Config {
        offload: false,
        ..cfg
    })
    .expect("stack on TUN");
    // Forwarding on, so a packet for a spoofed peer meets the blackhole
    // route (dropped, no ICMP) rather than an unreachable answer.
    std::fs::write("/proc/sys/net/ipv4/ip_forward", "1").expect("ip_forward");
    ip(&["route", "add", "blackhole", "10.99.0.0/16"]);
    ip(&["-6", "route", "add", "blackhole", "fd99::/64"]);
    let wire = stack_wire();
    wait_v6(KERNEL6);
    (stack, wire)
}

/// Another attacker's wire on the stack's device (for a second thread).
pub fn stack_wire() -> Wire {
    Wire::packet_socket("ustack0").expect("AF_PACKET on ustack0")
}

/// The kernel stand-in: `hk0`, a TUN device whose other end is the test.
pub fn kernel_bench() -> (TunDevice, Wire) {
    let dev = TunDevice::open(&TunConfig {
        name: "hk0".into(),
        mtu: 1500,
        ipv4: Some((HK_KERNEL4, HK_PEER4)),
        ipv6: Some((HK_KERNEL6, HK_PEER6)),
        offload: false,
        tap: false,
    })
    .expect("hk0");
    wait_v6(HK_KERNEL6);
    let fd = dev.wait_fd().expect("tun fd");
    (
        dev,
        Wire {
            fd: Fd::Borrowed(fd),
        },
    )
}

fn wait_v6(a: Ipv6Addr) {
    let deadline = Instant::now() + OWED;
    while std::net::UdpSocket::bind((a, 0)).is_err() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
}

enum Fd {
    Packet(OwnedFd, i32),
    /// The TUN device's fd, owned by its `TunDevice`.
    Borrowed(RawFd),
}

/// The attacker's access to one link.
pub struct Wire {
    fd: Fd,
}

impl Wire {
    fn packet_socket(ifname: &str) -> io::Result<Wire> {
        let c = std::ffi::CString::new(ifname).unwrap();
        // SAFETY: a NUL-terminated name.
        let ifindex = unsafe { libc::if_nametoindex(c.as_ptr()) } as i32;
        if ifindex == 0 {
            return Err(io::Error::last_os_error());
        }
        let all = (libc::ETH_P_ALL as u16).to_be();
        // SAFETY: plain socket call.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_DGRAM, i32::from(all)) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh fd we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = all;
        sll.sll_ifindex = ifindex;
        // SAFETY: sll is a valid sockaddr_ll of the given size.
        let r = unsafe {
            libc::bind(
                raw,
                (&raw const sll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        let big: i32 = 8 << 20;
        // SAFETY: an int option.
        unsafe {
            libc::setsockopt(
                raw,
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                (&raw const big).cast(),
                4,
            );
        }
        Ok(Wire {
            fd: Fd::Packet(fd, ifindex),
        })
    }

    fn raw(&self) -> RawFd {
        match &self.fd {
            Fd::Packet(fd, _) => fd.as_raw_fd(),
            Fd::Borrowed(fd) => *fd,
        }
    }

    /// Puts `p` on the link towards the device under test.
    pub fn send(&self, p: &[u8]) {
        let r = match &self.fd {
            Fd::Packet(fd, ifindex) => {
                let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
                sll.sll_family = libc::AF_PACKET as u16;
                let proto = if p.first().is_some_and(|b| b >> 4 == 6) {
                    libc::ETH_P_IPV6
                } else {
                    libc::ETH_P_IP
                };
                sll.sll_protocol = (proto as u16).to_be();
                sll.sll_ifindex = *ifindex;
                // SAFETY: p and sll are valid for the lengths given.
                unsafe {
                    libc::sendto(
                        fd.as_raw_fd(),
                        p.as_ptr().cast(),
                        p.len(),
                        0,
                        (&raw const sll).cast(),
                        std::mem::size_of::<libc::sockaddr_ll>() as u32,
                    )
                }
            }
            // SAFETY: p is valid for p.len() bytes.
            Fd::Borrowed(fd) => unsafe { libc::write(*fd, p.as_ptr().cast(), p.len()) },
        };
        // A full device queue drops the packet, as a wire would (floods).
        if r < 0 {
            let e = io::Error::last_os_error();
            assert!(
                matches!(e.raw_os_error(), Some(libc::ENOBUFS | libc::EAGAIN)),
                "send {} bytes: {e}",
                p.len()
            );
        }
    }

    /// The next packet from the device under test, waiting up to `wait`.
    pub fn recv(&self, wait: Duration) -> Option<Vec<u8>> {
        let deadline = Instant::now() + wait;
        let mut buf = vec![0u8; 70000];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let mut pfd = libc::pollfd {
                fd: self.raw(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let n = unsafe { libc::poll(&raw mut pfd, 1, left.as_millis() as i32) };
            if n <= 0 {
                if left.is_zero() || n < 0 {
                    return None;
                }
                continue;
            }
            match &self.fd {
                Fd::Packet(fd, _) => {
                    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
                    let mut sl = std::mem::size_of::<libc::sockaddr_ll>() as u32;
                    // SAFETY: buf and sll are valid for their lengths.
                    let r = unsafe {
                        libc::recvfrom(
                            fd.as_raw_fd(),
                            buf.as_mut_ptr().cast(),
                            buf.len(),
                            libc::MSG_DONTWAIT,
                            (&raw mut sll).cast(),
                            &raw mut sl,
                        )
                    };
                    // Only what the stack wrote (arriving at the kernel).
                    if r > 0 && sll.sll_pkttype == libc::PACKET_HOST {
                        return Some(buf[..r as usize].to_vec());
                    }
                }
                Fd::Borrowed(fd) => {
                    // SAFETY: buf is valid for its length.
                    let r = unsafe { libc::read(*fd, buf.as_mut_ptr().cast(), buf.len()) };
                    if r > 0 {
                        return Some(buf[..r as usize].to_vec());
                    }
                }
            }
        }
    }

    /// Discards whatever is waiting.
    pub fn drain(&self) {
        while self.recv(Duration::ZERO).is_some() {}
    }

    /// A barrier: two echo requests from `src` to `dst`, one after the
    /// other's reply, so every packet sent before has been processed and
    /// every answer to it written. Returns the packets seen meanwhile.
    pub fn barrier(&self, src: IpAddr, dst: IpAddr) -> Vec<Vec<u8>> {
        let mut seen = Vec::new();
        for _ in 0..2 {
            let ident = next_ident();
            self.send(&pkt::echo_request(src, dst, ident, 1, b"barrier"));
            let deadline = Instant::now() + OWED;
            loop {
                let p = self
                    .recv(deadline.saturating_duration_since(Instant::now()))
                    .unwrap_or_else(|| panic!("no echo reply from {dst} (barrier)"));
                if pkt::echo_reply_ident(&p) == Some(ident) {
                    break;
                }
                seen.push(p);
            }
        }
        seen
    }

    /// The next TCP segment on the flow to `to` (ignoring other packets),
    /// waiting up to `wait`.
    pub fn recv_tcp(&self, to: SocketAddr, wait: Duration) -> Option<Seg> {
        let deadline = Instant::now() + wait;
        loop {
            let p = self.recv(deadline.saturating_duration_since(Instant::now()))?;
            if let Some(s) = pkt::parse_tcp(&p)
                && s.dst == to.ip()
                && s.tcp.dport == to.port()
            {
                return Some(s);
            }
        }
    }
}

fn next_ident() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static N: AtomicU16 = AtomicU16::new(0x4000);
    N.fetch_add(1, Ordering::Relaxed)
}

/// TCP segments among `packets` on the flow to `to`.
pub fn segs_to(packets: &[Vec<u8>], to: SocketAddr) -> Vec<Seg> {
    packets
        .iter()
        .filter_map(|p| pkt::parse_tcp(p))
        .filter(|s| s.dst == to.ip() && s.tcp.dport == to.port())
        .collect()
}

/// A TCP endpoint the test drives by hand, segment by segment.
pub struct Peer<'w> {
    pub wire: &'w Wire,
    pub me: SocketAddr,
    pub them: SocketAddr,
    /// Next sequence number we send.
    pub snd_nxt: u32,
    /// Next sequence number we expect (what we acknowledge).
    pub rcv_nxt: u32,
    /// The window we advertise.
    pub window: u16,
    /// The peer's window, as last advertised.
    pub their_window: u16,
    /// The MSS the peer announced in its SYN-ACK.
    pub their_mss: Option<u16>,
}

impl<'w> Peer<'w> {
    /// Connects from `me` to a listener at `them`: SYN (MSS 1460 only; no
    /// window scale, SACK or timestamps, so the arithmetic stays plain),
    /// SYN-ACK, ACK.
    pub fn connect(wire: &'w Wire, me: SocketAddr, them: SocketAddr, isn: u32) -> Peer<'w> {
        let mut p = Peer {
            wire,
            me,
            them,
            snd_nxt: isn,
            rcv_nxt: 0,
            window: 65535,
            their_window: 0,
            their_mss: None,
        };
        p.send(SYN, &[2, 4, 0x05, 0xb4], b"");
        p.snd_nxt = p.snd_nxt.wrapping_add(1);
        let sa = p.expect(|s| s.has(SYN) && s.has(ACK), "SYN-ACK");
        assert_eq!(sa.tcp.ack, p.snd_nxt, "SYN-ACK acknowledges our SYN");
        p.rcv_nxt = sa.tcp.seq.wrapping_add(1);
        p.their_window = sa.tcp.window;
        p.their_mss = sa.mss();
        p.send(ACK, &[], b"");
        p
    }

    /// The segment with `flags`, our sequence numbers, `options` and
    /// `payload` (sequence numbers not advanced).
    pub fn seg(&self, flags: u8, options: &[u8], payload: &[u8]) -> Tcp {
        Tcp {
            sport: self.me.port(),
            dport: self.them.port(),
            seq: self.snd_nxt,
            ack: if flags & ACK != 0 { self.rcv_nxt } else { 0 },
            flags,
            window: self.window,
            options: options.to_vec(),
            payload: payload.to_vec(),
        }
    }

    pub fn send_seg(&self, t: &Tcp) {
        self.wire.send(&t.packet(self.me.ip(), self.them.ip()));
    }

    /// Sends one segment at `snd_nxt` (not advancing it).
    pub fn send(&self, flags: u8, options: &[u8], payload: &[u8]) {
        self.send_seg(&self.seg(flags, options, payload));
    }

    /// Sends `data` in order and advances `snd_nxt`.
    pub fn send_data(&mut self, data: &[u8]) {
        for chunk in data.chunks(1000) {
            self.send(ACK | pkt::PSH, &[], chunk);
            self.snd_nxt = self.snd_nxt.wrapping_add(chunk.len() as u32);
        }
    }

    /// Waits for a segment of this flow matching `want` (others are
    /// taken in: their data acknowledged point advanced if in order).
    pub fn expect(&mut self, want: impl Fn(&Seg) -> bool, what: &str) -> Seg {
        let deadline = Instant::now() + OWED;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let s = self
                .wire
                .recv_tcp(self.me, left)
                .unwrap_or_else(|| panic!("no {what} from {} to {}", self.them, self.me));
            if s.src != self.them.ip() || s.tcp.sport != self.them.port() {
                continue;
            }
            assert!(
                !s.has(RST) || what.contains("RST"),
                "{} reset the connection while we waited for {what}: {s:?}",
                self.them
            );
            if want(&s) {
                return s;
            }
        }
    }

    /// Reads `len` bytes the peer sends, acknowledging as they come.
    pub fn read_exact(&mut self, len: usize) -> Vec<u8> {
        let mut got = Vec::new();
        while got.len() < len {
            let s = self.expect(|s| !s.tcp.payload.is_empty(), "data");
            if s.tcp.seq == self.rcv_nxt {
                got.extend_from_slice(&s.tcp.payload);
                self.rcv_nxt = self.rcv_nxt.wrapping_add(s.tcp.payload.len() as u32);
            }
            self.send(ACK, &[], b"");
        }
        got
    }
}
