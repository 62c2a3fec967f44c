//! The stack daemon's protocol end to end, without a device: the daemon's
//! driver runs a core over an in-memory link whose other end is an API
//! stack, and the test plays the program, talking to the daemon as the
//! shim does (requests with the socket's fd attached; data on the pair).
//! Each test runs in a network namespace of its own (abstract Unix names
//! belong to one), so tests never see each other's daemon.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::thread;
use std::time::{Duration, Instant};

use ustack::api::{Stack, TcpListener, UdpSocket};
use ustack::device::pipe_pair;
use ustack::ipc::server::{Policy, Server, bind_control};
use ustack::ipc::{self, DgramHeader, Reply, Request, client};
use ustack::runtime::Runtime;
use ustack::stack::{Core, CoreConfig};

const A4: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
const B4: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);

struct World {
    _daemon: Runtime,
    peer: Stack,
    ifname: String,
}

fn world(grace: Duration) -> World {
    ustack::sys::enter_private_netns().expect("a private namespace (run as root)");
    let (la, lb) = pipe_pair(1500);
    let ifname = "pipe0".to_string();
    let server = Server::new(
        bind_control(&ifname).unwrap(),
        Policy {
            // SAFETY: geteuid has no preconditions.
            uid: unsafe { libc::geteuid() },
            gid: None,
            persistent: false,
            grace,
        },
    )
    .unwrap();
    let core = Core::new(CoreConfig {
        seed: 1,
        ..CoreConfig::default()
    });
    let daemon = Runtime::start_with_driver(core, Box::new(la), Box::new(server)).unwrap();
    let peer = Stack::with_link(
        Box::new(lb),
        CoreConfig {
            addr: B4,
            addr6: Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 1),
            seed: 2,
            ..CoreConfig::default()
        },
    )
    .unwrap();
    World {
        _daemon: daemon,
        peer,
        ifname,
    }
}

impl World {
    fn call(&self, req: Request, fd: Option<RawFd>) -> (Reply, Vec<OwnedFd>) {
        let conn = client::connect(&self.ifname).unwrap();
        client::call(conn.as_raw_fd(), &req, fd).unwrap()
    }

    fn socket(&self, tcp: bool) -> OwnedFd {
        let (r, mut fds) = self.call(Request::Socket { v6: false, tcp }, None);
        assert_eq!(r.errno, 0);
        assert_eq!(fds.len(), 1);
        fds.pop().unwrap()
    }

    fn ok(&self, fd: &OwnedFd, req: Request) -> Reply {
        let (r, _) = self.call(req.clone(), Some(fd.as_raw_fd()));
        assert_eq!(r.errno, 0, "{req:?}");
        r
    }

    fn status(&self) -> String {
        client::client_status(&self.ifname).unwrap()
    }

    /// Waits until the daemon serves no program socket and no closed
    /// connection lingers in the core (TIME-WAIT may stay, as in Linux).
    fn wait_empty(&self) {
        let t = Instant::now();
        loop {
            let s = self.status();
            if s.starts_with("sockets 0 ") && s.contains("lingering 0") {
                return;
            }
            assert!(t.elapsed() < Duration::from_secs(10), "sockets left: {s}");
            thread::sleep(Duration::from_millis(20));
        }
    }
}

fn poll1(fd: RawFd, events: i16, ms: i32) -> i16 {
    let mut p = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    // SAFETY: one live pollfd.
    let n = unsafe { libc::poll(&mut p, 1, ms) };
    assert!(n >= 0);
    p.revents
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 7) as u8)
        .collect()
}

fn file(fd: OwnedFd) -> std::fs::File {
    std::fs::File::from(fd)
}

#[test]
fn tcp_connect_waits_for_pollout_then_carries_a_megabyte_each_way() {
    let w = world(Duration::from_secs(30));
    let l = TcpListener::bind(&w.peer, (B4, 7000)).unwrap();
    let echo = thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut all = Vec::new();
        s.read_to_end(&mut all).unwrap();
        s.write_all(&all).unwrap();
        all.len()
    });
    let fd = w.socket(true);
    assert_eq!(
        poll1(fd.as_raw_fd(), libc::POLLOUT, 0) & libc::POLLOUT,
        0,
        "writable before connect"
    );
    w.ok(&fd, Request::Connect(Some(SocketAddr::from((B4, 7000)))));
    let rev = poll1(fd.as_raw_fd(), libc::POLLOUT, 5000);
    assert_ne!(rev & libc::POLLOUT, 0, "never became writable");
    assert_eq!(w.ok(&fd, Request::TakeError).value, 0);
    let peer = w.ok(&fd, Request::Name { peer: true });
    assert_eq!(
        ipc::decode_addr(&peer.data).unwrap(),
        SocketAddr::from((B4, 7000))
    );
    let data = pattern(1 << 20);
    let mut f = file(fd);
    let writer = {
        let mut f = f.try_clone().unwrap();
        let data = data.clone();
        thread::spawn(move || {
            f.write_all(&data).unwrap();
            // SAFETY: shutdown takes no pointers.
            unsafe { libc::shutdown(f.as_raw_fd(), libc::SHUT_WR) };
        })
    };
    let mut back = Vec::new();
    f.read_to_end(&mut back).unwrap();
    writer.join().unwrap();
    assert_eq!(echo.join().unwrap(), data.len());
    assert!(back == data, "echo differs");
    drop(f);
    w.wait_empty();
}

#[test]
fn a_refused_connect_turns_writable_and_reports_econnrefused() {
    let w = world(Duration::from_secs(30));
    let fd = w.socket(true);
    w.ok(&fd, Request::Connect(Some(SocketAddr::from((B4, 1)))));
    let rev = poll1(fd.as_raw_fd(), libc::POLLOUT, 5000);
    assert_ne!(rev & libc::POLLOUT, 0);
    assert_eq!(w.ok(&fd, Request::TakeError).value, libc::ECONNREFUSED);
    assert_eq!(w.ok(&fd, Request::TakeError).value, 0, "SO_ERROR clears");
    drop(fd);
    w.wait_empty();
}

#[test]
fn a_listener_hands_each_connection_over_as_an_fd_with_its_peer() {
    let w = world(Duration::from_secs(30));
    let l = w.socket(true);
    w.ok(&l, Request::Bind(SocketAddr::from((A4, 8000))));
    w.ok(&l, Request::Listen(16));
    assert_eq!(
        w.ok(&l, Request::Identify).value,
        ipc::IDENT_TCP | ipc::IDENT_LISTENING
    );
    let peer = w.peer.clone();
    let clients = thread::spawn(move || {
        (0..3)
            .map(|i| {
                let mut c = ustack::api::TcpStream::connect(&peer, (A4, 8000)).unwrap();
                c.write_all(format!("hello {i}").as_bytes()).unwrap();
                c.shutdown(std::net::Shutdown::Write).unwrap();
                let mut back = String::new();
                c.read_to_string(&mut back).unwrap();
                (c.local_addr().unwrap(), back)
            })
            .collect::<Vec<_>>()
    });
    let mut seen = Vec::new();
    for _ in 0..3 {
        assert_ne!(poll1(l.as_raw_fd(), libc::POLLIN, 5000) & libc::POLLIN, 0);
        let mut hdr = [0u8; ipc::DGRAM_HDR];
        let mut fds = Vec::new();
        let n = ipc::recv_with_fds(l.as_raw_fd(), &mut hdr, &mut fds, 0)
            .unwrap()
            .len;
        assert_eq!(n, ipc::DGRAM_HDR);
        let from = DgramHeader::decode(&hdr).unwrap().addr.unwrap();
        let mut c = file(fds.pop().expect("a connection fd"));
        let mut got = String::new();
        c.read_to_string(&mut got).unwrap();
        c.write_all(got.to_uppercase().as_bytes()).unwrap();
        drop(c);
        seen.push((from, got));
    }
    let done = clients.join().unwrap();
    for (i, (local, back)) in done.iter().enumerate() {
        assert_eq!(back, &format!("HELLO {i}"));
        assert!(
            seen.iter()
                .any(|(f, g)| f == local && g == &format!("hello {i}"))
        );
    }
    drop(l);
    w.wait_empty();
}

#[test]
fn udp_datagrams_travel_behind_a_header_both_ways() {
    let w = world(Duration::from_secs(30));
    let peer = UdpSocket::bind(&w.peer, (B4, 5353)).unwrap();
    let fd = w.socket(false);
    w.ok(&fd, Request::Bind(SocketAddr::from((A4, 4000))));
    let hdr = DgramHeader {
        addr: Some(SocketAddr::from((B4, 5353))),
        len: 0,
    };
    let mut msg = hdr.encode().to_vec();
    msg.extend_from_slice(b"query");
    ipc::send_with_fds(fd.as_raw_fd(), &msg, &[], 0).unwrap();
    let mut buf = [0u8; 64];
    let (n, from) = peer.recv_from(&mut buf).unwrap();
    assert_eq!(
        (&buf[..n], from),
        (&b"query"[..], SocketAddr::from((A4, 4000)))
    );
    peer.send_to(b"answer!", from).unwrap();
    let mut back = [0u8; 128];
    let n = ipc::recv_with_fds(fd.as_raw_fd(), &mut back, &mut Vec::new(), 0)
        .unwrap()
        .len;
    let h = DgramHeader::decode(&back[..n]).unwrap();
    assert_eq!(h.addr, Some(SocketAddr::from((B4, 5353))));
    assert_eq!((h.len, &back[ipc::DGRAM_HDR..n]), (7, &b"answer!"[..]));
    drop(fd);
    w.wait_empty();
}

#[test]
fn hostile_requests_get_errors_and_the_daemon_serves_on() {
    let w = world(Duration::from_secs(30));
    let conn = client::connect(&w.ifname).unwrap();
    for junk in [
        &b""[..],
        b"x",
        &[0xff; 16],
        &[7, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0],
    ] {
        ipc::send_with_fds(conn.as_raw_fd(), junk, &[], 0).unwrap();
        let mut buf = [0u8; 64];
        let n = ipc::recv_with_fds(conn.as_raw_fd(), &mut buf, &mut Vec::new(), 0)
            .unwrap()
            .len;
        assert_ne!(Reply::decode(&buf[..n]).unwrap().errno, 0, "{junk:?}");
    }
    // A request naming a socket without its fd, or with a stranger's fd.
    let (r, _) = client::call(conn.as_raw_fd(), &Request::Identify, None).unwrap();
    assert_eq!(r.errno, libc::EBADF);
    let (a, _b) = ipc::pair(libc::SOCK_STREAM).unwrap();
    let (r, _) = client::call(conn.as_raw_fd(), &Request::Identify, Some(a.as_raw_fd())).unwrap();
    assert_eq!(r.errno, libc::ENOTSOCK);
    // Still serving.
    let fd = w.socket(true);
    assert_eq!(
        w.ok(&fd, Request::Identify).value,
        ipc::IDENT_TCP | ipc::IDENT_FRESH
    );
}

#[test]
fn an_idle_daemon_ends_after_its_grace_period() {
    let w = world(Duration::from_millis(200));
    let fd = w.socket(true);
    thread::sleep(Duration::from_millis(400));
    assert!(
        client::connect(&w.ifname).is_ok(),
        "ended while a socket was open"
    );
    drop(fd);
    let t = Instant::now();
    // Each probe is a client: probe less often than the grace period.
    while client::connect(&w.ifname).is_ok() {
        assert!(t.elapsed() < Duration::from_secs(10), "never ended");
        thread::sleep(Duration::from_millis(400));
    }
}

#[test]
fn options_round_trip_through_the_daemon() {
    let w = world(Duration::from_secs(30));
    let fd = w.socket(true);
    let set = |level, name, v: i32| {
        w.ok(
            &fd,
            Request::SetOpt {
                level,
                name,
                value: v.to_ne_bytes().to_vec(),
            },
        )
    };
    let get = |level, name| {
        let r = w.ok(
            &fd,
            Request::GetOpt {
                level,
                name,
                max: 4,
            },
        );
        i32::from_ne_bytes(r.data[..4].try_into().unwrap())
    };
    set(libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT, 1500);
    assert_eq!(get(libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT), 1500);
    set(libc::IPPROTO_TCP, libc::TCP_NODELAY, 1);
    assert_eq!(get(libc::IPPROTO_TCP, libc::TCP_NODELAY), 1);
    set(libc::SOL_SOCKET, libc::SO_RCVBUF, 65536);
    assert_eq!(
        get(libc::SOL_SOCKET, libc::SO_RCVBUF),
        131072,
        "reported doubled"
    );
    assert_eq!(get(libc::SOL_SOCKET, libc::SO_TYPE), libc::SOCK_STREAM);
    let (r, _) = w.call(
        Request::SetOpt {
            level: libc::IPPROTO_TCP,
            name: libc::TCP_USER_TIMEOUT,
            value: (-1i32).to_ne_bytes().to_vec(),
        },
        Some(fd.as_raw_fd()),
    );
    assert_eq!(r.errno, libc::EINVAL);
    let (r, _) = w.call(
        Request::GetOpt {
            level: libc::SOL_SOCKET,
            name: 12345,
            max: 4,
        },
        Some(fd.as_raw_fd()),
    );
    assert_eq!(r.errno, libc::ENOPROTOOPT);
}
