//! The core's TCP sockets: two cores exchanging datagrams directly, with
//! a virtual clock.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use crate::stack::*;
use crate::tcp::State;
use crate::wire::{TcpFlags, TcpRepr, parse_ip};

const US4: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
const PEER4: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
const US6: Ipv6Addr = Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 2);
const PEER6: Ipv6Addr = Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 1);

struct Pair {
    a: Core,
    b: Core,
    now: Instant,
}

impl Pair {
    fn new() -> Pair {
        Pair {
            a: Core::new(CoreConfig::default()),
            b: Core::new(CoreConfig {
                addr: PEER4,
                addr6: PEER6,
                seed: 5,
                ..CoreConfig::default()
            }),
            now: Instant::ZERO,
        }
    }

    /// Exchanges datagrams until both sides are quiet, advancing the clock
    /// by 1 ms per round.
    fn run(&mut self, rounds: usize) {
        for _ in 0..rounds {
            let mut out = Vec::new();
            self.a.poll_transmit(self.now, &mut out);
            let moved_a = out.len();
            for p in out.drain(..) {
                self.b.input(self.now, &p);
            }
            self.b.poll_transmit(self.now, &mut out);
            let moved_b = out.len();
            for p in out.drain(..) {
                self.a.input(self.now, &p);
            }
            self.now += Duration::from_millis(1);
            if moved_a + moved_b == 0 && self.a.tcp_tables_idle() && self.b.tcp_tables_idle() {
                return;
            }
        }
    }

    /// Advances the clock to the next deadline of either core and runs.
    fn advance(&mut self, by: Duration) {
        let end = self.now + by;
        while self.now < end {
            self.run(1);
        }
    }
}

impl Core {
    fn tcp_tables_idle(&self) -> bool {
        self.tcp().poll_at().is_none_or(|t| t > Instant::ZERO) && self.tx.is_empty()
    }
}

/// An IPv4 datagram from the peer carrying `seg` (no payload).
fn tcp_from_peer(seg: &TcpRepr) -> Vec<u8> {
    let mut tcp = vec![0u8; seg.buffer_len(0)];
    seg.emit(&mut tcp, PEER4.into(), US4.into(), &[]).unwrap();
    let h = crate::wire::IpHeader {
        src: PEER4.into(),
        dst: US4.into(),
        protocol: crate::wire::IpProtocol::Tcp,
        payload_len: tcp.len(),
        hop_limit: 64,
        ident: 0,
        dont_frag: true,
        ecn: 0,
    };
    let mut packet = vec![0u8; h.buffer_len()];
    let n = h.emit(&mut packet).unwrap();
    packet[n..].copy_from_slice(&tcp);
    packet
}

fn sa(ip: impl Into<std::net::IpAddr>, port: u16) -> SocketAddr {
    SocketAddr::new(ip.into(), port)
}

fn listener(c: &mut Core, v6: bool, port: u16) -> SocketHandle {
    let l = c.tcp_mut().socket(v6).unwrap();
    let any = if v6 {
        sa(Ipv6Addr::UNSPECIFIED, port)
    } else {
        sa(Ipv4Addr::UNSPECIFIED, port)
    };
    c.tcp_mut().bind(l, any).unwrap();
    c.tcp_mut().listen(l, 16).unwrap();
    l
}

fn connected(p: &mut Pair, v6: bool) -> (SocketHandle, SocketHandle) {
    let l = listener(&mut p.a, v6, 80);
    let c = p.b.tcp_mut().socket(v6).unwrap();
    let dst = if v6 { sa(US6, 80) } else { sa(US4, 80) };
    p.b.tcp_mut().connect(p.now, c, dst).unwrap();
    p.run(50);
    let (s, from) = p.a.tcp_mut().accept(l).unwrap();
    let (local, _) = p.b.tcp().addrs(c).unwrap();
    assert_eq!(from, local.unwrap());
    (s, c)
}

#[test]
fn listener_accepts_and_data_flows_both_ways_v4_and_v6() {
    for v6 in [false, true] {
        let mut p = Pair::new();
        let (s, c) = connected(&mut p, v6);
        assert!(p.b.tcp_mut().readiness(c).unwrap().writable);
        assert_eq!(p.b.tcp_mut().send(c, b"hello").unwrap(), 5);
        p.run(50);
        let mut buf = [0u8; 16];
        assert_eq!(p.a.tcp_mut().recv(s, &mut buf, false).unwrap(), 5);
        assert_eq!(&buf[..5], b"hello");
        assert_eq!(p.a.tcp_mut().send(s, b"world!").unwrap(), 6);
        p.run(50);
        assert_eq!(p.b.tcp_mut().recv(c, &mut buf, true).unwrap(), 6);
        assert_eq!(p.b.tcp_mut().recv(c, &mut buf, false).unwrap(), 6);
        assert_eq!(&buf[..6], b"world!");
        let e = p.b.tcp_mut().recv(c, &mut buf, false).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EAGAIN));
    }
}

#[test]
fn connect_to_closed_port_is_refused_by_rst() {
    let mut p = Pair::new();
    let c = p.b.tcp_mut().socket(false).unwrap();
    p.b.tcp_mut().connect(p.now, c, sa(US4, 81)).unwrap();
    p.run(50);
    assert_eq!(p.a.counters().tcp_no_socket, 1);
    let r = p.b.tcp_mut().readiness(c).unwrap();
    assert!(r.error && r.writable);
    let e = p.b.tcp_mut().take_error(c).unwrap().unwrap();
    assert_eq!(e.raw_os_error(), Some(libc::ECONNREFUSED));
}

#[test]
fn close_walks_both_sides_to_closed_and_time_wait_and_frees_orphans() {
    let mut p = Pair::new();
    let (s, c) = connected(&mut p, false);
    p.b.tcp_mut().send(c, b"bye").unwrap();
    p.b.close(c).unwrap();
    p.run(50);
    let mut buf = [0u8; 8];
    assert_eq!(p.a.tcp_mut().recv(s, &mut buf, false).unwrap(), 3);
    assert_eq!(
        p.a.tcp_mut().recv(s, &mut buf, false).unwrap(),
        0,
        "EOF after FIN"
    );
    assert!(p.a.tcp_mut().readiness(s).unwrap().read_closed);
    assert_eq!(p.a.tcp().info(s).unwrap().state, State::CloseWait);
    assert_eq!(
        p.a.tcp().states(),
        [(State::CloseWait, 1)],
        "the listener is no connection"
    );
    // The FIN came after data: its ACK waits the delayed-ACK time (40 ms),
    // as Linux's.
    assert_eq!(p.b.tcp().states(), [(State::FinWait1, 1)]);
    p.advance(Duration::from_millis(50));
    assert_eq!(p.b.tcp().states(), [(State::FinWait2, 1)]);
    p.a.close(s).unwrap();
    p.run(50);
    // The active closer (b) sits in TIME-WAIT for 60 s, then its slot goes.
    assert_eq!(p.b.tcp().states(), [(State::TimeWait, 1)]);
    assert_eq!(p.a.tcp().states(), []);
    assert_eq!(p.b.sockets_in_use(), 1);
    assert_eq!(p.a.sockets_in_use(), 1, "only the listener is left");
    p.advance(Duration::from_secs(61));
    assert_eq!(p.b.sockets_in_use(), 0);
    assert_eq!(p.b.close(c).unwrap_err().raw_os_error(), Some(libc::EBADF));
}

#[test]
fn half_close_lets_the_other_direction_keep_flowing() {
    let mut p = Pair::new();
    let (s, c) = connected(&mut p, false);
    p.b.tcp_mut().shutdown(c, Shutdown::Write).unwrap();
    p.run(50);
    let mut buf = [0u8; 8];
    assert_eq!(p.a.tcp_mut().recv(s, &mut buf, false).unwrap(), 0);
    assert_eq!(
        p.b.tcp_mut().send(c, b"x").unwrap_err().raw_os_error(),
        Some(libc::EPIPE)
    );
    p.a.tcp_mut().send(s, b"still").unwrap();
    p.run(50);
    assert_eq!(p.b.tcp_mut().recv(c, &mut buf, false).unwrap(), 5);
}

#[test]
fn abort_sends_rst_and_peer_sees_connection_reset() {
    let mut p = Pair::new();
    let (s, c) = connected(&mut p, false);
    p.b.tcp_mut().abort(c).unwrap();
    p.run(50);
    let mut buf = [0u8; 8];
    let e = p.a.tcp_mut().recv(s, &mut buf, false).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ECONNRESET));
}

#[test]
fn segment_to_no_socket_gets_rst_with_the_right_numbers() {
    let mut c = Core::new(CoreConfig::default());
    let syn = TcpRepr {
        src_port: 5555,
        dst_port: 9,
        seq: 1000,
        flags: TcpFlags::SYN,
        window: 1000,
        ..TcpRepr::default()
    };
    let packet = tcp_from_peer(&syn);
    c.input(Instant::ZERO, &packet);
    let mut out = Vec::new();
    c.poll_transmit(Instant::ZERO, &mut out);
    assert_eq!(out.len(), 1);
    let v = parse_ip(&out[0]).unwrap();
    let (rst, _) = TcpRepr::parse_segment(v.payload, v.src, v.dst).unwrap();
    assert_eq!(rst.flags, TcpFlags::RST | TcpFlags::ACK);
    assert_eq!((rst.seq, rst.ack), (0, 1001));
    assert_eq!((rst.src_port, rst.dst_port), (9, 5555));
}

#[test]
fn full_accept_queue_drops_the_handshake_until_accept_makes_room() {
    let mut p = Pair::new();
    let l = p.a.tcp_mut().socket(false).unwrap();
    p.a.tcp_mut().bind(l, sa(US4, 80)).unwrap();
    p.a.tcp_mut().listen(l, 1).unwrap();
    let c1 = p.b.tcp_mut().socket(false).unwrap();
    let c2 = p.b.tcp_mut().socket(false).unwrap();
    p.b.tcp_mut().connect(p.now, c1, sa(US4, 80)).unwrap();
    p.run(100);
    p.b.tcp_mut().connect(p.now, c2, sa(US4, 80)).unwrap();
    p.run(100);
    // c1 waits in the accept queue, which is full: c2's SYN is dropped.
    assert!(p.a.counters().tcp_listen_overflows >= 1);
    assert!(p.a.tcp_mut().accept(l).is_ok());
    assert!(p.a.tcp_mut().accept(l).is_err());
    // c2, still connecting, cannot queue data yet (EAGAIN, as Linux);
    // it retransmits its SYN after the initial RTO (1 s) and gets in.
    assert_eq!(
        p.b.tcp_mut().send(c2, b"late").unwrap_err().raw_os_error(),
        Some(libc::EAGAIN)
    );
    p.advance(Duration::from_millis(1200));
    let (s2, _) = p.a.tcp_mut().accept(l).unwrap();
    p.b.tcp_mut().send(c2, b"late").unwrap();
    p.run(50);
    let mut buf = [0u8; 8];
    assert_eq!(p.a.tcp_mut().recv(s2, &mut buf, false).unwrap(), 4);
}

#[test]
fn a_handshake_completing_into_a_full_accept_queue_waits_in_syn_received_as_linux() {
    // Backlog 2, one connection already queued: two SYNs fit the SYN
    // queue, but only one of their handshakes fits the accept queue. The
    // other's ACK is dropped (LISTENOVERFLOWS) and its SYN-ACK comes again
    // once accept makes room.
    let mut p = Pair::new();
    let l = p.a.tcp_mut().socket(false).unwrap();
    p.a.tcp_mut().bind(l, sa(US4, 80)).unwrap();
    p.a.tcp_mut().listen(l, 2).unwrap();
    let c: Vec<SocketHandle> = (0..3)
        .map(|_| p.b.tcp_mut().socket(false).unwrap())
        .collect();
    p.b.tcp_mut().connect(p.now, c[0], sa(US4, 80)).unwrap();
    p.run(100);
    p.b.tcp_mut().connect(p.now, c[1], sa(US4, 80)).unwrap();
    p.b.tcp_mut().connect(p.now, c[2], sa(US4, 80)).unwrap();
    p.run(100);
    assert!(p.a.counters().tcp_listen_overflows >= 1);
    assert!(p.a.tcp_mut().accept(l).is_ok());
    assert!(p.a.tcp_mut().accept(l).is_ok());
    assert!(
        p.a.tcp_mut().accept(l).is_err(),
        "the accept queue held no more than its backlog"
    );
    p.advance(Duration::from_millis(1500));
    assert!(p.a.tcp_mut().accept(l).is_ok(), "the third got in later");
}

#[test]
fn tcp_bind_conflicts_and_listener_reuse_rules() {
    let mut c = Core::new(CoreConfig::default());
    let a = listener(&mut c, false, 80);
    let b = c.tcp_mut().socket(false).unwrap();
    assert_eq!(
        c.tcp_mut().bind(b, sa(US4, 80)).unwrap_err().raw_os_error(),
        Some(libc::EADDRINUSE)
    );
    // SO_REUSEADDR does not let a second socket share a listening port.
    let opts = TcpOptionsSet {
        reuse_addr: true,
        ..TcpOptionsSet::default()
    };
    c.tcp_mut().set_options(a, opts).unwrap();
    c.tcp_mut().set_options(b, opts).unwrap();
    assert_eq!(
        c.tcp_mut().bind(b, sa(US4, 80)).unwrap_err().raw_os_error(),
        Some(libc::EADDRINUSE)
    );
    // Two sockets sharing a port by SO_REUSEADDR cannot both listen.
    let r1 = c.tcp_mut().socket(false).unwrap();
    let r2 = c.tcp_mut().socket(false).unwrap();
    for r in [r1, r2] {
        c.tcp_mut().set_options(r, opts).unwrap();
        c.tcp_mut().bind(r, sa(US4, 81)).unwrap();
    }
    c.tcp_mut().listen(r1, 4).unwrap();
    assert_eq!(
        c.tcp_mut().listen(r2, 4).unwrap_err().raw_os_error(),
        Some(libc::EADDRINUSE)
    );
    let d6 = c.tcp_mut().socket(true).unwrap();
    assert_eq!(
        c.tcp_mut()
            .bind(d6, sa(Ipv6Addr::UNSPECIFIED, 80))
            .unwrap_err()
            .raw_os_error(),
        Some(libc::EADDRINUSE),
        "a dual-stack :: overlaps 0.0.0.0"
    );
    assert_eq!(
        c.tcp_mut()
            .bind(b, sa(Ipv4Addr::new(1, 2, 3, 4), 80))
            .unwrap_err()
            .raw_os_error(),
        Some(libc::EADDRNOTAVAIL)
    );
    assert_eq!(
        c.tcp_mut().accept(b).unwrap_err().raw_os_error(),
        Some(libc::EINVAL),
        "accept on a socket that is not listening"
    );
    c.close(a).unwrap();
    c.tcp_mut().bind(b, sa(US4, 80)).unwrap();
}

#[test]
fn dual_stack_listener_accepts_ipv4_clients_as_mapped_addresses() {
    let mut p = Pair::new();
    let l = listener(&mut p.a, true, 8080);
    let c = p.b.tcp_mut().socket(false).unwrap();
    p.b.tcp_mut().connect(p.now, c, sa(US4, 8080)).unwrap();
    p.run(50);
    let (s, from) = p.a.tcp_mut().accept(l).unwrap();
    assert_eq!(from.ip(), std::net::IpAddr::V6(PEER4.to_ipv6_mapped()));
    let (local, peer) = p.a.tcp().addrs(s).unwrap();
    assert_eq!(
        local.unwrap().ip(),
        std::net::IpAddr::V6(US4.to_ipv6_mapped())
    );
    assert_eq!(peer, Some(from));
}

#[test]
fn connect_twice_gives_ealready_then_eisconn() {
    let mut p = Pair::new();
    let _l = listener(&mut p.a, false, 80);
    let c = p.b.tcp_mut().socket(false).unwrap();
    p.b.tcp_mut().connect(p.now, c, sa(US4, 80)).unwrap();
    assert_eq!(
        p.b.tcp_mut()
            .connect(p.now, c, sa(US4, 80))
            .unwrap_err()
            .raw_os_error(),
        Some(libc::EALREADY)
    );
    p.run(50);
    assert_eq!(
        p.b.tcp_mut()
            .connect(p.now, c, sa(US4, 80))
            .unwrap_err()
            .raw_os_error(),
        Some(libc::EISCONN)
    );
}

#[test]
fn closing_a_listener_resets_connections_not_yet_accepted() {
    let mut p = Pair::new();
    let l = listener(&mut p.a, false, 80);
    let c = p.b.tcp_mut().socket(false).unwrap();
    p.b.tcp_mut().connect(p.now, c, sa(US4, 80)).unwrap();
    p.run(50);
    p.a.close(l).unwrap();
    p.run(50);
    let mut buf = [0u8; 4];
    assert_eq!(
        p.b.tcp_mut()
            .recv(c, &mut buf, false)
            .unwrap_err()
            .raw_os_error(),
        Some(libc::ECONNRESET)
    );
    assert_eq!(p.a.sockets_in_use(), 0);
}

#[test]
fn readiness_changes_are_reported_once_per_change() {
    let mut p = Pair::new();
    let (s, c) = connected(&mut p, false);
    let mut changed = Vec::new();
    p.a.take_changed(&mut changed);
    changed.clear();
    p.b.tcp_mut().send(c, b"ping").unwrap();
    p.run(50);
    p.a.take_changed(&mut changed);
    assert!(changed.contains(&s));
    changed.clear();
    p.run(5);
    p.a.take_changed(&mut changed);
    assert!(!changed.contains(&s), "no change, no wake-up");
}

#[test]
fn syn_queue_overflow_answers_with_cookies_that_complete_connections() {
    let mut p = Pair::new();
    let l = p.a.tcp_mut().socket(false).unwrap();
    p.a.tcp_mut().bind(l, sa(US4, 80)).unwrap();
    p.a.tcp_mut().listen(l, 4).unwrap();
    // Eight clients at once against a backlog of 4: the SYN queue fills
    // and later SYNs are answered with cookies. Their ACKs arrive with the
    // others, when the accept queue is full: dropped, as Linux does. Each
    // client's first data carries the cookie again, and once accept made
    // room, that rebuilds the connection.
    let clients: Vec<SocketHandle> = (0..8)
        .map(|_| {
            let c = p.b.tcp_mut().socket(false).unwrap();
            p.b.tcp_mut().connect(p.now, c, sa(US4, 80)).unwrap();
            c
        })
        .collect();
    p.run(50);
    let mut accepted = Vec::new();
    while let Ok((s, _)) = p.a.tcp_mut().accept(l) {
        accepted.push(s);
    }
    assert_eq!(accepted.len(), 4, "no more than the backlog");
    let n = p.a.counters();
    assert_eq!(n.tcp_syncookies_sent, 4, "{n:?}");
    assert_eq!(n.tcp_listen_overflows, 4, "{n:?}");
    for (i, c) in clients.iter().enumerate() {
        p.b.tcp_mut().send(*c, &[i as u8; 100]).unwrap();
    }
    p.run(50);
    while let Ok((s, _)) = p.a.tcp_mut().accept(l) {
        accepted.push(s);
    }
    let n = p.a.counters();
    assert_eq!(n.tcp_syncookies_ok, n.tcp_syncookies_sent, "{n:?}");
    assert_eq!(accepted.len(), 8);
    p.run(50);
    let mut total = 0;
    for s in &accepted {
        let mut buf = [0u8; 200];
        total += p.a.tcp_mut().recv(*s, &mut buf, false).unwrap();
    }
    assert_eq!(total, 800);
}

#[test]
fn forged_cookie_ack_gets_rst_not_a_connection() {
    let mut p = Pair::new();
    let l = p.a.tcp_mut().socket(false).unwrap();
    p.a.tcp_mut().bind(l, sa(US4, 80)).unwrap();
    p.a.tcp_mut().listen(l, 1).unwrap();
    // Fill the SYN queue and make the listener send a cookie.
    for _ in 0..3 {
        let c = p.b.tcp_mut().socket(false).unwrap();
        p.b.tcp_mut().connect(p.now, c, sa(US4, 80)).unwrap();
    }
    p.run(50);
    assert!(p.a.counters().tcp_syncookies_sent >= 1);
    let before = p.a.counters();
    // A blind ACK with a made-up cookie.
    let forged = TcpRepr {
        src_port: 40000,
        dst_port: 80,
        seq: 77,
        ack: 0x1234_5678,
        flags: TcpFlags::ACK,
        window: 1000,
        ..TcpRepr::default()
    };
    let packet = tcp_from_peer(&forged);
    p.a.input(p.now, &packet);
    let after = p.a.counters();
    assert_eq!(
        after.tcp_syncookies_failed,
        before.tcp_syncookies_failed + 1
    );
    assert_eq!(after.tcp_syncookies_ok, before.tcp_syncookies_ok);
    assert_eq!(
        after.tcp_no_socket,
        before.tcp_no_socket + 1,
        "answered with RST"
    );
    let _ = l;
}

#[test]
fn syn_flood_does_not_keep_a_real_client_out_or_grow_state() {
    let mut p = Pair::new();
    let l = p.a.tcp_mut().socket(false).unwrap();
    p.a.tcp_mut().bind(l, sa(US4, 80)).unwrap();
    p.a.tcp_mut().listen(l, 16).unwrap();
    // 2000 spoofed SYNs that never complete.
    for port in 0..2000u16 {
        let syn = TcpRepr {
            src_port: 1024 + port,
            dst_port: 80,
            seq: u32::from(port) * 7919,
            flags: TcpFlags::SYN,
            window: 1000,
            ..TcpRepr::default()
        };
        let packet = tcp_from_peer(&syn);
        p.a.input(p.now, &packet);
    }
    let mut out = Vec::new();
    p.a.poll_transmit(p.now, &mut out); // the SYN-ACKs go nowhere
    assert!(
        p.a.sockets_in_use() <= 1 + 16,
        "state grew: {}",
        p.a.sockets_in_use()
    );
    assert!(p.a.counters().tcp_syncookies_sent >= 2000 - 16);
    // A real client still gets through, by cookie.
    let c = p.b.tcp_mut().socket(false).unwrap();
    p.b.tcp_mut().connect(p.now, c, sa(US4, 80)).unwrap();
    p.run(50);
    assert!(p.a.tcp_mut().accept(l).is_ok());
    assert!(p.b.tcp_mut().readiness(c).unwrap().writable);
}

#[test]
fn stack_tcp_counters_outlive_their_connections_and_congestion_is_per_socket() {
    let mut p = Pair::new();
    let l = listener(&mut p.a, false, 80);
    let c = p.b.tcp_mut().socket(false).unwrap();
    let opts = TcpOptionsSet {
        congestion: Some(crate::tcp::CongestionAlgorithm::NewReno),
        ..TcpOptionsSet::default()
    };
    p.b.tcp_mut().set_options(c, opts).unwrap();
    p.b.tcp_mut().connect(p.now, c, sa(US4, 80)).unwrap();
    p.run(50);
    let (s, _) = p.a.tcp_mut().accept(l).unwrap();
    assert_eq!(
        p.b.tcp().info(c).unwrap().congestion,
        crate::tcp::CongestionAlgorithm::NewReno
    );
    assert_eq!(
        p.a.tcp().info(s).unwrap().congestion,
        crate::tcp::CongestionAlgorithm::Cubic
    );
    p.b.tcp_mut().send(c, &[7u8; 10_000]).unwrap();
    p.run(50);
    assert!(p.b.tcp().info(c).unwrap().srtt.is_some());
    let live = p.b.tcp().counters();
    assert!(live.bytes_out >= 10_000, "{live:?}");
    p.b.tcp_mut().abort(c).unwrap();
    p.b.close(c).unwrap();
    p.run(50);
    assert_eq!(p.b.sockets_in_use(), 0);
    let after = p.b.tcp().counters();
    assert!(after.bytes_out >= live.bytes_out);
    assert!(after.rsts_out >= 1);
}

#[test]
fn closed_connection_lingers_until_its_data_and_fin_are_acknowledged() {
    let mut p = Pair::new();
    let (s, c) = connected(&mut p, false);
    assert_eq!(
        p.b.tcp().lingering(),
        0,
        "an open connection is not lingering"
    );
    p.b.tcp_mut().send(c, b"last words").unwrap();
    p.b.close(c).unwrap();
    assert_eq!(
        p.b.tcp().lingering(),
        1,
        "data and FIN not yet acknowledged"
    );
    let info = p.a.tcp().info(s).unwrap();
    assert_eq!(info.recv_queue, 0);
    p.run(50);
    // The peer ACKs a FIN after data after the delayed-ACK time (Linux's
    // pingpong mode on FIN).
    p.now += Duration::from_millis(40);
    p.run(50);
    assert_eq!(
        p.b.tcp().lingering(),
        0,
        "FIN-WAIT-2: everything acknowledged"
    );
    assert_eq!(p.a.tcp().info(s).unwrap().recv_queue, 10);
}

#[test]
fn unconnected_send_is_epipe_and_a_reset_is_reported_once() {
    let mut p = Pair::new();
    let fresh = p.b.tcp_mut().socket(false).unwrap();
    assert_eq!(
        p.b.tcp_mut().send(fresh, b"x").unwrap_err().raw_os_error(),
        Some(libc::EPIPE)
    );
    let (s, c) = connected(&mut p, false);
    p.a.tcp_mut().abort(s).unwrap();
    p.run(50);
    let mut buf = [0u8; 8];
    assert_eq!(
        p.b.tcp_mut()
            .recv(c, &mut buf, false)
            .unwrap_err()
            .raw_os_error(),
        Some(libc::ECONNRESET)
    );
    assert_eq!(
        p.b.tcp_mut().recv(c, &mut buf, false).unwrap(),
        0,
        "then EOF"
    );
    assert!(p.b.tcp_mut().readiness(c).unwrap().readable);
}

#[test]
fn shutdown_read_reports_rdhup_and_both_directions_report_hup() {
    let mut p = Pair::new();
    let (_s, c) = connected(&mut p, false);
    p.b.tcp_mut().shutdown(c, Shutdown::Read).unwrap();
    let r = p.b.tcp_mut().readiness(c).unwrap();
    assert!(r.read_closed && r.readable && !r.hangup, "{r:?}");
    p.b.tcp_mut().shutdown(c, Shutdown::Write).unwrap();
    let r = p.b.tcp_mut().readiness(c).unwrap();
    assert!(r.read_closed && r.hangup, "{r:?}");
}

#[test]
fn bind_to_a_port_with_a_connection_on_it_needs_reuseaddr() {
    let mut p = Pair::new();
    let (s, c) = connected(&mut p, false);
    // The server closes first: its side ends in TIME-WAIT on port 80.
    p.a.close(s).unwrap();
    p.run(50);
    p.b.close(c).unwrap();
    p.run(50);
    let fresh = p.a.tcp_mut().socket(false).unwrap();
    assert_eq!(
        p.a.tcp_mut()
            .bind(fresh, sa(US4, 80))
            .unwrap_err()
            .raw_os_error(),
        Some(libc::EADDRINUSE)
    );
    let reuse = p.a.tcp_mut().socket(false).unwrap();
    p.a.tcp_mut()
        .set_options(
            reuse,
            TcpOptionsSet {
                reuse_addr: true,
                ..TcpOptionsSet::default()
            },
        )
        .unwrap();
    assert!(
        p.a.tcp_mut().bind(reuse, sa(US4, 80)).is_err(),
        "the listener still holds it"
    );
}

#[test]
fn tcp_maxseg_caps_the_mss_a_connect_or_a_listener_advertises() {
    // packetdrill mss-setsockopt-tcp_maxseg-client/-server: TCP_MAXSEG set
    // before connect or listen is the MSS in the SYN or SYN-ACK.
    let mut p = Pair::new();
    let l = listener(&mut p.a, false, 80);
    let capped = |m| TcpOptionsSet {
        maxseg: Some(m),
        ..TcpOptionsSet::default()
    };
    p.a.tcp_mut().set_options(l, capped(1100)).unwrap();
    let c = p.b.tcp_mut().socket(false).unwrap();
    p.b.tcp_mut().set_options(c, capped(1000)).unwrap();
    p.b.tcp_mut().connect(p.now, c, sa(US4, 80)).unwrap();
    let mss_of = |packet: &[u8]| {
        let ip = parse_ip(packet).unwrap();
        let (seg, _) = TcpRepr::parse_segment(ip.payload, ip.src, ip.dst).unwrap();
        seg.options.mss
    };
    let mut out = Vec::new();
    p.b.poll_transmit(p.now, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(mss_of(&out[0]), Some(1000));
    p.a.input(p.now, &out[0]);
    out.clear();
    p.a.poll_transmit(p.now, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(mss_of(&out[0]), Some(1100));
    p.b.input(p.now, &out[0]);
    p.run(50);
    let (s, _) = p.a.tcp_mut().accept(l).unwrap();
    // The peer's 1000 less the timestamp option's 12 bytes.
    assert_eq!(p.a.tcp().info(s).unwrap().mss, 1000 - 12);
    // Without it the link's MSS is advertised.
    let c2 = p.b.tcp_mut().socket(false).unwrap();
    p.b.tcp_mut().connect(p.now, c2, sa(US4, 80)).unwrap();
    out.clear();
    p.b.poll_transmit(p.now, &mut out);
    assert_eq!(mss_of(&out[0]), Some(1460));
}

#[test]
fn tcp_info_reports_when_data_last_arrived_counting_from_the_handshake() {
    // packetdrill tcp-info-last_data_recv: before any data the time counts
    // from the connection's establishment, then from the latest data.
    let mut p = Pair::new();
    let (s, c) = connected(&mut p, false);
    let established = p.b.tcp().info(c).unwrap().last_data_in.unwrap();
    assert!(established <= p.now);
    p.advance(Duration::from_millis(500));
    assert_eq!(p.b.tcp().info(c).unwrap().last_data_in, Some(established));
    let at = p.now;
    p.a.tcp_mut().send(s, b"data").unwrap();
    p.run(5);
    assert_eq!(p.b.tcp().info(c).unwrap().last_data_in, Some(at));
    assert!(p.b.tcp().info(c).unwrap().last_ack_in >= at);
}

/// The segments of `packets` (TCP over IP), parsed.
fn segments(packets: &[Packet]) -> Vec<(TcpRepr, usize)> {
    packets
        .iter()
        .map(|packet| {
            let ip = parse_ip(packet).unwrap();
            let (seg, payload) = TcpRepr::parse_segment(ip.payload, ip.src, ip.dst).unwrap();
            (seg, payload.len())
        })
        .collect()
}

#[test]
fn each_out_of_order_segment_of_a_batch_draws_its_own_ack() {
    let mut p = Pair::new();
    let (s, c) = connected(&mut p, false);
    // Past the quick-ACK start, so in-order data is ACKed every second
    // segment.
    for _ in 0..20 {
        p.b.tcp_mut().send(c, &[7; 1448]).unwrap();
        p.run(50);
    }
    let mut buf = vec![0u8; 64 * 1024];
    while p.a.tcp_mut().recv(s, &mut buf, false).is_ok() {}
    p.b.tcp_mut().send(c, &[9; 8 * 1448]).unwrap();
    let mut flight = Vec::new();
    p.b.poll_transmit(p.now, &mut flight);
    assert_eq!(flight.len(), 8);
    // The first is lost; the other seven arrive in one batch, read from
    // the link before the core transmits anything.
    for packet in &flight[1..] {
        p.a.input(p.now, packet);
    }
    let mut acks = Vec::new();
    p.a.poll_transmit(p.now, &mut acks);
    let acks = segments(&acks);
    // One duplicate ACK per segment (RFC 5681 section 4.2), each SACKing
    // everything received so far: the sender's loss detection sees every
    // arrival, and the loss of one ACK costs no information.
    assert_eq!(acks.len(), 7, "{acks:?}");
    let first = segments(&flight[..1])[0].0.seq;
    for (i, (ack, len)) in acks.iter().enumerate() {
        assert_eq!(*len, 0);
        assert_eq!(ack.ack, first);
        let sack = ack.options.sack();
        assert_eq!(sack[0].1, first + 1448 * (i as u32 + 2), "ACK {i}");
    }
    // In-order data in a batch: an ACK for every second full segment.
    p.a.input(p.now, &flight[0]);
    p.b.tcp_mut().send(c, &[9; 8 * 1448]).unwrap();
    let mut acks = Vec::new();
    p.a.poll_transmit(p.now, &mut acks);
    let mut more = Vec::new();
    p.b.input(p.now, &acks[0]);
    p.b.poll_transmit(p.now, &mut more);
    let data: Vec<_> = more
        .iter()
        .filter(|m| segments(std::slice::from_ref(*m))[0].1 > 0)
        .collect();
    assert_eq!(data.len(), 8);
    for packet in &data {
        p.a.input(p.now, packet);
    }
    let mut acks = Vec::new();
    p.a.poll_transmit(p.now, &mut acks);
    assert_eq!(segments(&acks).len(), 4);
}

#[test]
fn ecn_marks_new_data_ect0_and_a_ce_mark_comes_back_as_ece() {
    let mut p = Pair::new();
    p.b = Core::new(CoreConfig {
        addr: PEER4,
        addr6: PEER6,
        seed: 5,
        tcp: crate::tcp::TcpConfig {
            ecn: crate::tcp::Ecn::On,
            ..crate::tcp::TcpConfig::default()
        },
        ..CoreConfig::default()
    });
    let (s, c) = connected(&mut p, true);
    p.b.tcp_mut().send(c, &[3; 1000]).unwrap();
    let mut out = Vec::new();
    p.b.poll_transmit(p.now, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(parse_ip(&out[0]).unwrap().ecn, 2, "ECT(0)");
    // A router on the way marks it CE (IPv6: no header checksum to fix).
    out[0][1] |= 0x30;
    assert_eq!(parse_ip(&out[0]).unwrap().ecn, 3);
    p.a.input(p.now, &out[0]);
    let mut acks = Vec::new();
    p.a.poll_transmit(p.now, &mut acks);
    let acks = segments(&acks);
    assert!(!acks.is_empty());
    assert!(acks.iter().all(|(a, _)| a.flags.contains(TcpFlags::ECE)));
    assert!(acks.iter().all(|(_, len)| *len == 0));
    let mut buf = [0u8; 1000];
    assert_eq!(p.a.tcp_mut().recv(s, &mut buf, false).unwrap(), 1000);
}

#[test]
fn a_connection_to_our_own_address_never_leaves_the_stack() {
    for v6 in [false, true] {
        let mut c = Core::new(CoreConfig::default());
        let now = Instant::ZERO;
        let l = listener(&mut c, v6, 8080);
        let cl = c.tcp_mut().socket(v6).unwrap();
        let dst = if v6 { sa(US6, 8080) } else { sa(US4, 8080) };
        c.tcp_mut().connect(now, cl, dst).unwrap();
        let mut out = Vec::new();
        c.poll_transmit(now, &mut out);
        assert!(out.is_empty(), "{} datagrams left the stack", out.len());
        assert!(
            c.counters().ip_local >= 3,
            "the handshake was delivered locally"
        );
        let (s, from) = c.tcp_mut().accept(l).unwrap();
        assert_eq!(Some(from), c.tcp().addrs(cl).unwrap().0);
        assert_eq!(c.tcp_mut().send(cl, b"ping").unwrap(), 4);
        c.poll_transmit(now, &mut out);
        let mut buf = [0u8; 8];
        assert_eq!(c.tcp_mut().recv(s, &mut buf, false).unwrap(), 4);
        assert_eq!(&buf[..4], b"ping");
        assert_eq!(c.tcp_mut().send(s, b"pong!").unwrap(), 5);
        c.poll_transmit(now, &mut out);
        assert_eq!(c.tcp_mut().recv(cl, &mut buf, false).unwrap(), 5);
        assert!(out.is_empty());
    }
}

#[test]
fn the_timer_index_stays_small_when_every_ack_moves_a_deadline_later() {
    // Request/response: each exchange re-arms the retransmission timer (and
    // the delayed ACK) later. The index keeps one live entry per socket and
    // re-indexes it when it pops, so it does not grow with the exchanges
    // (pushing one entry per change left 61 here, one per exchange within
    // an RTO). What remains: the live entry and those of deadlines that
    // moved earlier (a delayed ACK before the RTO), each gone at its time.
    let mut p = Pair::new();
    let (s, c) = connected(&mut p, false);
    let mut buf = [0u8; 16];
    for _ in 0..2000 {
        p.b.tcp_mut().send(c, b"q").unwrap();
        p.run(3);
        assert_eq!(p.a.tcp_mut().recv(s, &mut buf, false).unwrap(), 1);
        p.a.tcp_mut().send(s, b"r").unwrap();
        p.run(3);
        assert_eq!(p.b.tcp_mut().recv(c, &mut buf, false).unwrap(), 1);
    }
    for core in [&p.a, &p.b] {
        let entries = core.tcp_tables.timers.len();
        assert!(entries <= 8, "{entries} timer entries for one connection");
    }
}

/// An ICMPv4 "fragmentation needed" from the peer with `mtu`, quoting a
/// segment from us to the peer with sequence number `seq`.
fn frag_needed_quoting(seg: &TcpRepr, seq: u32, mtu: u16) -> Vec<u8> {
    let mut quoted_seg = *seg;
    quoted_seg.seq = seq;
    let mut tcp = vec![0u8; quoted_seg.buffer_len(0)];
    quoted_seg
        .emit(&mut tcp, US4.into(), PEER4.into(), &[])
        .unwrap();
    let quoted_ip = crate::wire::IpHeader {
        src: US4.into(),
        dst: PEER4.into(),
        protocol: crate::wire::IpProtocol::Tcp,
        payload_len: tcp.len(),
        hop_limit: 64,
        ident: 0,
        dont_frag: true,
        ecn: 0,
    };
    let mut quoted = vec![0u8; quoted_ip.buffer_len()];
    let n = quoted_ip.emit(&mut quoted).unwrap();
    quoted[n..].copy_from_slice(&tcp);
    let msg = crate::wire::Icmpv4Repr::DstUnreachable {
        reason: crate::wire::icmpv4::DstUnreachable::FragRequired { next_hop_mtu: mtu },
        quoted: &quoted,
    };
    let h = crate::wire::IpHeader {
        src: PEER4.into(),
        dst: US4.into(),
        protocol: crate::wire::IpProtocol::Icmp,
        payload_len: msg.buffer_len(),
        hop_limit: 64,
        ident: 0,
        dont_frag: false,
        ecn: 0,
    };
    let mut packet = vec![0u8; h.buffer_len()];
    let n = h.emit(&mut packet).unwrap();
    msg.emit(&mut packet[n..]).unwrap();
    packet
}

#[test]
fn an_icmp_error_quoting_a_sequence_not_in_flight_is_ignored_rfc_5927() {
    let mut p = Pair::new();
    let (s, _c) = connected(&mut p, false);
    p.a.tcp_mut().send(s, &[7; 100]).unwrap();
    let mut out = Vec::new();
    p.a.poll_transmit(p.now, &mut out);
    let (seg, len) = segments(&out)[0];
    assert_eq!(len, 100);
    // 1460 less the timestamps option.
    let before = p.a.tcp().info(s).unwrap().mss;
    assert_eq!(before, 1448);
    // Forged or stale: far below snd_una, or beyond what was sent.
    for stale in [seg.seq.wrapping_sub(1_000_000), seg.seq.wrapping_add(101)] {
        p.a.input(p.now, &frag_needed_quoting(&seg, stale, 576));
        assert_eq!(p.a.tcp().info(s).unwrap().mss, before);
    }
    assert_eq!(p.a.counters().icmp_out_of_window, 2);
    assert_eq!(p.a.counters().icmp_errors_in, 0);
    // The segment in flight: taken.
    p.a.input(p.now, &frag_needed_quoting(&seg, seg.seq, 576));
    assert_eq!(p.a.tcp().info(s).unwrap().mss, 576 - 40 - 12);
    assert_eq!(p.a.counters().icmp_errors_in, 1);
}

#[test]
fn a_new_mtu_and_syn_option_switches_apply_to_the_next_connect() {
    let mut p = Pair::new();
    p.b.set_mtu(9000);
    p.b.tcp_mut().set_syn_options(false, false, false);
    let c = p.b.tcp_mut().socket(false).unwrap();
    p.b.tcp_mut().connect(p.now, c, sa(US4, 80)).unwrap();
    let mut out = Vec::new();
    p.b.poll_transmit(p.now, &mut out);
    assert_eq!(out.len(), 1);
    let ip = parse_ip(&out[0]).unwrap();
    let (syn, _) = TcpRepr::parse_segment(ip.payload, ip.src, ip.dst).unwrap();
    assert!(syn.flags.contains(TcpFlags::SYN));
    let o = syn.options;
    assert_eq!(o.mss, Some(9000 - 40), "the MSS follows the new MTU");
    assert_eq!(o.timestamps, None);
    assert!(!o.sack_permitted);
    assert_eq!(o.window_scale, None);
}
