//! The adapter driven as packetdrill drives it: through the function
//! pointers `packetdrill_interface_init` fills in, with packets built and
//! parsed here. One process has one stack, so the tests take turns (a lock)
//! and each uses its own remote port, ignoring segments of the others'
//! connections (a FIN an earlier test's close left retransmitting).

use std::ffi::{c_int, c_void};
use std::mem::size_of;
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use ustack_core::wire::{IpHeader, IpProtocol, TcpFlags, TcpOptions, TcpRepr, parse_ip};
use ustack_packetdrill::adapter::{PacketdrillInterface, wall_micros};
use ustack_packetdrill::packetdrill_interface_init;

const LOCAL: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 1);
const REMOTE: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

static TURN: Mutex<()> = Mutex::new(());

struct Pd {
    ifc: PacketdrillInterface,
    /// The remote port of this test's segments.
    port: u16,
    _turn: MutexGuard<'static, ()>,
}

fn pd(port: u16) -> Pd {
    let turn = TURN.lock().unwrap_or_else(|p| p.into_inner());
    let mut ifc = ustack_packetdrill::adapter::interface();
    let flags = c"addr=192.168.0.1";
    // SAFETY: a valid string and a writable interface.
    unsafe { packetdrill_interface_init(flags.as_ptr(), &mut ifc) };
    Pd {
        ifc,
        port,
        _turn: turn,
    }
}

/// A segment as the stack sent it.
#[derive(Debug)]
struct Seg {
    at: i64,
    tcp: TcpRepr,
    payload: Vec<u8>,
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

impl Pd {
    fn ud(&self) -> *mut c_void {
        self.ifc.userdata
    }

    fn now(&self) -> i64 {
        let mut tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        };
        // SAFETY: a writable timeval.
        let r = unsafe { self.ifc.gettimeofday.unwrap()(self.ud(), &mut tv, std::ptr::null_mut()) };
        assert_eq!(r, 0);
        tv.tv_sec * 1_000_000 + tv.tv_usec
    }

    fn usleep(&self, us: u32) {
        // SAFETY: plain arguments.
        assert_eq!(unsafe { self.ifc.usleep.unwrap()(self.ud(), us) }, 0);
    }

    fn socket(&self) -> c_int {
        // SAFETY: plain arguments.
        let fd =
            unsafe { self.ifc.socket.unwrap()(self.ud(), libc::AF_INET, libc::SOCK_STREAM, 0) };
        assert!(fd >= 0, "socket: errno {}", errno());
        fd
    }

    fn nonblocking(&self, fd: c_int) {
        // SAFETY: plain arguments.
        let r =
            unsafe { self.ifc.fcntl.unwrap()(self.ud(), fd, libc::F_SETFL, libc::O_NONBLOCK as _) };
        assert_eq!(r, 0, "fcntl: errno {}", errno());
    }

    fn connect(&self, fd: c_int, port: u16) -> (c_int, i32) {
        let sa = sockaddr(SocketAddrV4::new(REMOTE, port));
        // SAFETY: a valid sockaddr_in.
        let r = unsafe {
            self.ifc.connect.unwrap()(
                self.ud(),
                fd,
                (&raw const sa).cast(),
                size_of::<libc::sockaddr_in>() as _,
            )
        };
        (r, errno())
    }

    fn listen_on(&self, port: u16) -> c_int {
        let fd = self.socket();
        let sa = sockaddr(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port));
        // SAFETY: a valid sockaddr_in.
        let r = unsafe {
            self.ifc.bind.unwrap()(
                self.ud(),
                fd,
                (&raw const sa).cast(),
                size_of::<libc::sockaddr_in>() as _,
            )
        };
        assert_eq!(r, 0, "bind: errno {}", errno());
        // SAFETY: plain arguments.
        assert_eq!(unsafe { self.ifc.listen.unwrap()(self.ud(), fd, 16) }, 0);
        fd
    }

    fn write(&self, fd: c_int, data: &[u8]) -> isize {
        // SAFETY: `data` is readable.
        unsafe { self.ifc.write.unwrap()(self.ud(), fd, data.as_ptr().cast(), data.len()) }
    }

    fn read(&self, fd: c_int, n: usize) -> Vec<u8> {
        let mut buf = vec![0u8; n];
        // SAFETY: `buf` is writable.
        let r = unsafe { self.ifc.read.unwrap()(self.ud(), fd, buf.as_mut_ptr().cast(), n) };
        assert!(r >= 0, "read: errno {}", errno());
        buf.truncate(r as usize);
        buf
    }

    fn close(&self, fd: c_int) {
        // SAFETY: plain arguments.
        assert_eq!(unsafe { self.ifc.close.unwrap()(self.ud(), fd) }, 0);
    }

    fn inject(&self, tcp: &TcpRepr, payload: &[u8]) {
        let p = datagram(tcp, payload);
        // SAFETY: `p` is readable.
        let r = unsafe { self.ifc.netdev_send.unwrap()(self.ud(), p.as_ptr().cast(), p.len()) };
        assert_eq!(r, 0);
    }

    /// The next segment the stack sends, moving the clock to the next
    /// deadline if nothing is queued (as packetdrill's sniffing does).
    fn next(&self) -> Seg {
        loop {
            let s = self.next_any();
            if s.tcp.dst_port == self.port {
                return s;
            }
        }
    }

    fn next_any(&self) -> Seg {
        let mut buf = vec![0u8; 65536];
        let mut n = buf.len();
        let mut at = 0i64;
        // SAFETY: `buf` holds `n` writable bytes.
        let r = unsafe {
            self.ifc.netdev_receive.unwrap()(self.ud(), buf.as_mut_ptr().cast(), &mut n, &mut at)
        };
        assert_eq!(r, 0, "the stack sent nothing and has no deadline");
        buf.truncate(n);
        parse(at, &buf)
    }

    /// A segment already queued, without moving the clock.
    fn queued(&self) -> Option<Seg> {
        let a = ustack_packetdrill::adapter::adapter_with(&Default::default()).unwrap();
        loop {
            let s = a.take_queued().map(|(t, p)| parse(wall_micros(t), &p))?;
            if s.tcp.dst_port == self.port {
                return Some(s);
            }
        }
    }
}

fn sockaddr(a: SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as _,
        sin_port: a.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*a.ip()).to_be(),
        },
        sin_zero: [0; 8],
    }
}

fn parse(at: i64, packet: &[u8]) -> Seg {
    let ip = parse_ip(packet).expect("an IP datagram");
    assert_eq!(ip.src, IpAddr::V4(LOCAL));
    assert_eq!(ip.dst, IpAddr::V4(REMOTE));
    let (tcp, payload) = TcpRepr::parse_segment(ip.payload, ip.src, ip.dst).expect("TCP");
    Seg {
        at,
        tcp,
        payload: payload.to_vec(),
    }
}

fn datagram(tcp: &TcpRepr, payload: &[u8]) -> Vec<u8> {
    let mut seg = vec![0u8; tcp.buffer_len(payload.len())];
    tcp.emit(&mut seg, REMOTE.into(), LOCAL.into(), payload)
        .unwrap();
    let h = IpHeader {
        src: REMOTE.into(),
        dst: LOCAL.into(),
        protocol: IpProtocol::Tcp,
        payload_len: seg.len(),
        hop_limit: 64,
        ident: 0,
        dont_frag: true,
        ecn: 0,
    };
    let mut p = vec![0u8; h.buffer_len()];
    let n = h.emit(&mut p).unwrap();
    p[n..].copy_from_slice(&seg);
    p
}

fn seg(
    src_port: u16,
    dst_port: u16,
    seq: u32,
    ack: u32,
    flags: TcpFlags,
    mss: Option<u16>,
) -> TcpRepr {
    TcpRepr {
        src_port,
        dst_port,
        seq,
        ack,
        flags,
        window: 65535,
        urgent: 0,
        options: TcpOptions {
            mss,
            ..TcpOptions::default()
        },
    }
}

/// Connects to REMOTE:`port`, answering the SYN after `rtt_us`; returns
/// the fd, the peer's and the stack's initial sequence numbers and the
/// stack's port.
fn handshake(pd: &Pd, port: u16, rtt_us: u32) -> (c_int, u32, u32, u16) {
    let fd = pd.socket();
    pd.nonblocking(fd);
    let t0 = pd.now();
    let (r, e) = pd.connect(fd, port);
    assert_eq!((r, e), (-1, libc::EINPROGRESS));
    let syn = pd.next();
    assert_eq!(syn.tcp.flags, TcpFlags::SYN);
    assert_eq!(syn.tcp.dst_port, port);
    assert_eq!(syn.tcp.options.mss, Some(1460));
    assert!((0..=5).contains(&(syn.at - t0)), "SYN at +{}", syn.at - t0);
    pd.usleep(rtt_us);
    let peer_isn = 5000;
    pd.inject(
        &seg(
            port,
            syn.tcp.src_port,
            peer_isn,
            syn.tcp.seq.wrapping_add(1),
            TcpFlags::SYN | TcpFlags::ACK,
            Some(1460),
        ),
        &[],
    );
    let ack = pd.queued().expect("the handshake's ACK, at once");
    assert_eq!(ack.tcp.flags, TcpFlags::ACK);
    assert_eq!(ack.tcp.ack, peer_isn + 1);
    (fd, peer_isn, syn.tcp.seq, syn.tcp.src_port)
}

#[test]
fn connect_sends_a_syn_and_an_injected_syn_ack_completes_the_handshake() {
    let pd = pd(7001);
    let (fd, _, _, _) = handshake(&pd, 7001, 100_000);
    let mut err: c_int = -1;
    let mut len = size_of::<c_int>() as libc::socklen_t;
    // SAFETY: a writable int and its length.
    let r = unsafe {
        pd.ifc.getsockopt.unwrap()(
            pd.ud(),
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&raw mut err).cast(),
            &mut len,
        )
    };
    assert_eq!((r, err), (0, 0));
    pd.close(fd);
}

#[test]
fn a_write_sends_its_segment_now_and_the_rto_retransmits_it_at_its_virtual_deadline() {
    let pd = pd(7002);
    let (fd, peer_isn, isn, port) = handshake(&pd, 7002, 100_000);
    let t_write = pd.now();
    assert_eq!(pd.write(fd, b"hello, packetdrill"), 18);
    let data = pd.queued().expect("the data segment, at once");
    assert_eq!(data.payload, b"hello, packetdrill");
    assert_eq!(data.tcp.seq, isn.wrapping_add(1));
    assert_eq!(data.tcp.ack, peer_isn + 1);
    assert!((0..=5).contains(&(data.at - t_write)));
    // No ACK comes. A sleep past the RTO fires it at its own instant, not
    // at the end of the sleep: one 100 ms RTT sample makes RTO = SRTT +
    // 4 * RTTVAR = 100 + 4 * 50 ms (RFC 6298 section 2.2).
    pd.usleep(2_000_000);
    let rtx = pd.queued().expect("the retransmission");
    assert_eq!(rtx.payload, data.payload);
    assert_eq!(rtx.tcp.seq, data.tcp.seq);
    assert_eq!(
        rtx.at - data.at,
        300_000,
        "RTO fired at +{} us",
        rtx.at - data.at
    );
    // The next one backs off to twice that (section 5.5), found by
    // sniffing with nothing queued, as packetdrill does.
    let rtx2 = pd.next();
    assert_eq!(rtx2.tcp.seq, data.tcp.seq);
    assert_eq!(rtx2.at - rtx.at, 600_000);
    // The peer acknowledges; nothing more is sent.
    pd.inject(
        &seg(
            7002,
            port,
            peer_isn + 1,
            data.tcp.seq.wrapping_add(18),
            TcpFlags::ACK,
            None,
        ),
        &[],
    );
    pd.usleep(5_000_000);
    assert!(pd.queued().is_none());
    pd.close(fd);
}

#[test]
fn usleep_and_gettimeofday_move_only_the_virtual_clock() {
    let pd = pd(1);
    let real = std::time::Instant::now();
    let t1 = pd.now();
    pd.usleep(30_000_000);
    let t2 = pd.now();
    // Each gettimeofday moves the clock by one microsecond.
    assert_eq!(t2 - t1, 30_000_001);
    assert!(real.elapsed() < Duration::from_secs(20));
}

#[test]
fn a_listener_answers_an_injected_syn_and_accepts_the_connection() {
    let pd = pd(40001);
    let l = pd.listen_on(8081);
    pd.inject(&seg(40001, 8081, 9000, 0, TcpFlags::SYN, Some(1000)), &[]);
    let synack = pd.queued().expect("SYN-ACK at once");
    assert_eq!(synack.tcp.flags, TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!(synack.tcp.ack, 9001);
    let isn = synack.tcp.seq;
    pd.inject(
        &seg(40001, 8081, 9001, isn.wrapping_add(1), TcpFlags::ACK, None),
        &[],
    );
    let mut sa: libc::sockaddr_in = unsafe_zeroed();
    let mut len = size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: a writable sockaddr_in and its length.
    let fd = unsafe { pd.ifc.accept.unwrap()(pd.ud(), l, (&raw mut sa).cast(), &mut len) };
    assert!(fd >= 0, "accept: errno {}", errno());
    assert_eq!(u16::from_be(sa.sin_port), 40001);
    assert_eq!(Ipv4Addr::from(u32::from_be(sa.sin_addr.s_addr)), REMOTE);
    pd.inject(
        &seg(
            40001,
            8081,
            9001,
            isn.wrapping_add(1),
            TcpFlags::ACK | TcpFlags::PSH,
            None,
        ),
        b"ping",
    );
    assert_eq!(pd.read(fd, 100), b"ping");
    // The data is acknowledged, at once or at the delayed-ACK deadline
    // (40 ms) at the latest.
    let t = pd.now();
    let ack = pd.next();
    assert_eq!(ack.tcp.ack, 9005);
    assert!(ack.at - t <= 40_000, "ACK at +{}", ack.at - t);
    pd.close(fd);
    pd.close(l);
}

#[test]
fn a_blocking_accept_on_another_thread_returns_at_the_time_of_the_handshake() {
    let pd = pd(40002);
    let l = pd.listen_on(8082);
    let accept = pd.ifc.accept.unwrap();
    let gtod = pd.ifc.gettimeofday.unwrap();
    let blocked = std::thread::spawn(move || {
        // SAFETY: null address arguments are allowed.
        let fd = unsafe {
            accept(
                std::ptr::null_mut(),
                l,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        let mut tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        };
        // SAFETY: a writable timeval.
        unsafe { gtod(std::ptr::null_mut(), &mut tv, std::ptr::null_mut()) };
        (fd, tv.tv_sec * 1_000_000 + tv.tv_usec)
    });
    // Let the thread block; then a second of virtual time passes while it
    // waits.
    std::thread::sleep(Duration::from_millis(50));
    pd.usleep(1_000_000);
    pd.inject(&seg(40002, 8082, 100, 0, TcpFlags::SYN, None), &[]);
    let synack = pd.next();
    pd.usleep(10_000);
    let t_ack = pd.now();
    pd.inject(
        &seg(
            40002,
            8082,
            101,
            synack.tcp.seq.wrapping_add(1),
            TcpFlags::ACK,
            None,
        ),
        &[],
    );
    // The woken thread ran before the clock moved on.
    pd.usleep(500_000);
    let (fd, returned_at) = blocked.join().unwrap();
    assert!(fd >= 0);
    assert!(
        (0..100).contains(&(returned_at - t_ack)),
        "accept returned at +{} us after the ACK",
        returned_at - t_ack
    );
    pd.close(fd);
    pd.close(l);
}

fn unsafe_zeroed<T: Copy>() -> T {
    // SAFETY: used only for plain C structs of integers.
    unsafe { std::mem::zeroed() }
}

#[test]
fn edge_triggered_epoll_reports_an_arrival_once() {
    // The shim's epoll through the adapter: data arriving is one edge; with
    // nothing new, nothing more (packetdrill epoll_in_edge's first steps).
    let pd = pd(40003);
    let l = pd.listen_on(8083);
    pd.inject(&seg(40003, 8083, 100, 0, TcpFlags::SYN, None), &[]);
    let isn = pd.next().tcp.seq.wrapping_add(1);
    pd.inject(&seg(40003, 8083, 101, isn, TcpFlags::ACK, None), &[]);
    // SAFETY: null address arguments are allowed.
    let fd =
        unsafe { pd.ifc.accept.unwrap()(pd.ud(), l, std::ptr::null_mut(), std::ptr::null_mut()) };
    assert!(fd >= 0);
    // SAFETY: plain arguments.
    let ep = unsafe { pd.ifc.epoll_create.unwrap()(pd.ud(), 1) };
    assert!(ep >= 0);
    let mut ev = libc::epoll_event {
        events: (libc::EPOLLIN | libc::EPOLLET) as u32,
        u64: 7,
    };
    // SAFETY: a valid event.
    let r = unsafe { pd.ifc.epoll_ctl.unwrap()(pd.ud(), ep, libc::EPOLL_CTL_ADD, fd, &mut ev) };
    assert_eq!(r, 0);
    let wait = || {
        let mut out = [libc::epoll_event { events: 0, u64: 0 }; 4];
        // SAFETY: room for four events.
        let n = unsafe { pd.ifc.epoll_wait.unwrap()(pd.ud(), ep, out.as_mut_ptr(), 4, 0) };
        (n, out[0].events, out[0].u64)
    };
    assert_eq!(wait().0, 0);
    pd.inject(&seg(40003, 8083, 101, isn, TcpFlags::ACK, None), &[1; 100]);
    assert_eq!(wait(), (1, libc::EPOLLIN as u32, 7));
    assert_eq!(wait().0, 0, "no change, no edge");
    pd.close(ep);
    pd.close(fd);
    pd.close(l);
}
