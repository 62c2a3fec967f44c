//! TCP through the core: two cores exchanging datagrams directly, with a
//! virtual clock.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use super::*;
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
        self.tcp_poll_at().is_none_or(|t| t > Instant::ZERO) && self.tx.is_empty()
    }
}

fn sa(ip: impl Into<std::net::IpAddr>, port: u16) -> SocketAddr {
    SocketAddr::new(ip.into(), port)
}

fn listener(c: &mut Core, v6: bool, port: u16) -> SocketHandle {
    let l = c.tcp_socket(v6).unwrap();
    let any = if v6 {
        sa(Ipv6Addr::UNSPECIFIED, port)
    } else {
        sa(Ipv4Addr::UNSPECIFIED, port)
    };
    c.tcp_bind(l, any).unwrap();
    c.tcp_listen(l, 16).unwrap();
    l
}

fn connected(p: &mut Pair, v6: bool) -> (SocketHandle, SocketHandle) {
    let l = listener(&mut p.a, v6, 80);
    let c = p.b.tcp_socket(v6).unwrap();
    let dst = if v6 { sa(US6, 80) } else { sa(US4, 80) };
    p.b.tcp_connect(p.now, c, dst).unwrap();
    p.run(50);
    let (s, from) = p.a.tcp_accept(l).unwrap();
    let (local, _) = p.b.tcp_addrs(c).unwrap();
    assert_eq!(from, local.unwrap());
    (s, c)
}

#[test]
fn listener_accepts_and_data_flows_both_ways_v4_and_v6() {
    for v6 in [false, true] {
        let mut p = Pair::new();
        let (s, c) = connected(&mut p, v6);
        assert!(p.b.tcp_readiness(c).unwrap().writable);
        assert_eq!(p.b.tcp_send(c, b"hello").unwrap(), 5);
        p.run(50);
        let mut buf = [0u8; 16];
        assert_eq!(p.a.tcp_recv(s, &mut buf, false).unwrap(), 5);
        assert_eq!(&buf[..5], b"hello");
        assert_eq!(p.a.tcp_send(s, b"world!").unwrap(), 6);
        p.run(50);
        assert_eq!(p.b.tcp_recv(c, &mut buf, true).unwrap(), 6);
        assert_eq!(p.b.tcp_recv(c, &mut buf, false).unwrap(), 6);
        assert_eq!(&buf[..6], b"world!");
        let e = p.b.tcp_recv(c, &mut buf, false).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EAGAIN));
    }
}

#[test]
fn connect_to_closed_port_is_refused_by_rst() {
    let mut p = Pair::new();
    let c = p.b.tcp_socket(false).unwrap();
    p.b.tcp_connect(p.now, c, sa(US4, 81)).unwrap();
    p.run(50);
    assert_eq!(p.a.counters().tcp_no_socket, 1);
    let r = p.b.tcp_readiness(c).unwrap();
    assert!(r.error && r.writable);
    let e = p.b.tcp_take_error(c).unwrap().unwrap();
    assert_eq!(e.raw_os_error(), Some(libc::ECONNREFUSED));
}

#[test]
fn close_walks_both_sides_to_closed_and_time_wait_and_frees_orphans() {
    let mut p = Pair::new();
    let (s, c) = connected(&mut p, false);
    p.b.tcp_send(c, b"bye").unwrap();
    p.b.close(c).unwrap();
    p.run(50);
    let mut buf = [0u8; 8];
    assert_eq!(p.a.tcp_recv(s, &mut buf, false).unwrap(), 3);
    assert_eq!(
        p.a.tcp_recv(s, &mut buf, false).unwrap(),
        0,
        "EOF after FIN"
    );
    assert!(p.a.tcp_readiness(s).unwrap().read_closed);
    assert_eq!(p.a.tcp_info(s).unwrap().state, State::CloseWait);
    p.a.close(s).unwrap();
    p.run(50);
    // The active closer (b) sits in TIME-WAIT for 60 s, then its slot goes.
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
    p.b.tcp_shutdown(c, Shutdown::Write).unwrap();
    p.run(50);
    let mut buf = [0u8; 8];
    assert_eq!(p.a.tcp_recv(s, &mut buf, false).unwrap(), 0);
    assert_eq!(
        p.b.tcp_send(c, b"x").unwrap_err().raw_os_error(),
        Some(libc::EPIPE)
    );
    p.a.tcp_send(s, b"still").unwrap();
    p.run(50);
    assert_eq!(p.b.tcp_recv(c, &mut buf, false).unwrap(), 5);
}

#[test]
fn abort_sends_rst_and_peer_sees_connection_reset() {
    let mut p = Pair::new();
    let (s, c) = connected(&mut p, false);
    p.b.tcp_abort(c).unwrap();
    p.run(50);
    let mut buf = [0u8; 8];
    let e = p.a.tcp_recv(s, &mut buf, false).unwrap_err();
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
    let mut seg = vec![0u8; syn.buffer_len(0)];
    syn.emit(&mut seg, PEER4.into(), US4.into(), &[]).unwrap();
    let h = crate::wire::IpHeader {
        src: PEER4.into(),
        dst: US4.into(),
        protocol: crate::wire::IpProtocol::Tcp,
        payload_len: seg.len(),
        hop_limit: 64,
        ident: 0,
        dont_frag: true,
    };
    let mut packet = vec![0u8; h.buffer_len()];
    let n = h.emit(&mut packet).unwrap();
    packet[n..].copy_from_slice(&seg);
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
fn full_backlog_drops_syns_until_accept_makes_room() {
    let mut p = Pair::new();
    let l = p.a.tcp_socket(false).unwrap();
    p.a.tcp_bind(l, sa(US4, 80)).unwrap();
    p.a.tcp_listen(l, 1).unwrap();
    let c1 = p.b.tcp_socket(false).unwrap();
    let c2 = p.b.tcp_socket(false).unwrap();
    p.b.tcp_connect(p.now, c1, sa(US4, 80)).unwrap();
    p.b.tcp_connect(p.now, c2, sa(US4, 80)).unwrap();
    p.run(100);
    assert!(p.a.counters().tcp_listen_overflows >= 1);
    assert!(p.a.tcp_accept(l).is_ok());
    // c2's SYN retransmission (initial RTO 1 s) now finds room.
    p.advance(Duration::from_millis(1100));
    assert!(p.a.tcp_accept(l).is_ok());
    assert!(p.b.tcp_readiness(c2).unwrap().writable);
}

#[test]
fn tcp_bind_conflicts_and_listener_reuse_rules() {
    let mut c = Core::new(CoreConfig::default());
    let a = listener(&mut c, false, 80);
    let b = c.tcp_socket(false).unwrap();
    assert_eq!(
        c.tcp_bind(b, sa(US4, 80)).unwrap_err().raw_os_error(),
        Some(libc::EADDRINUSE)
    );
    // SO_REUSEADDR does not let a second socket share a listening port.
    let opts = TcpOptionsSet {
        reuse_addr: true,
        ..TcpOptionsSet::default()
    };
    c.tcp_set_options(a, opts).unwrap();
    c.tcp_set_options(b, opts).unwrap();
    assert_eq!(
        c.tcp_bind(b, sa(US4, 80)).unwrap_err().raw_os_error(),
        Some(libc::EADDRINUSE)
    );
    let d6 = c.tcp_socket(true).unwrap();
    assert_eq!(
        c.tcp_bind(d6, sa(Ipv6Addr::UNSPECIFIED, 80))
            .unwrap_err()
            .raw_os_error(),
        Some(libc::EADDRINUSE),
        "a dual-stack :: overlaps 0.0.0.0"
    );
    assert_eq!(
        c.tcp_bind(b, sa(Ipv4Addr::new(1, 2, 3, 4), 80))
            .unwrap_err()
            .raw_os_error(),
        Some(libc::EADDRNOTAVAIL)
    );
    assert_eq!(
        c.tcp_accept(b).unwrap_err().raw_os_error(),
        Some(libc::EINVAL),
        "accept on a socket that is not listening"
    );
    c.close(a).unwrap();
    c.tcp_bind(b, sa(US4, 80)).unwrap();
}

#[test]
fn dual_stack_listener_accepts_ipv4_clients_as_mapped_addresses() {
    let mut p = Pair::new();
    let l = listener(&mut p.a, true, 8080);
    let c = p.b.tcp_socket(false).unwrap();
    p.b.tcp_connect(p.now, c, sa(US4, 8080)).unwrap();
    p.run(50);
    let (s, from) = p.a.tcp_accept(l).unwrap();
    assert_eq!(from.ip(), std::net::IpAddr::V6(PEER4.to_ipv6_mapped()));
    let (local, peer) = p.a.tcp_addrs(s).unwrap();
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
    let c = p.b.tcp_socket(false).unwrap();
    p.b.tcp_connect(p.now, c, sa(US4, 80)).unwrap();
    assert_eq!(
        p.b.tcp_connect(p.now, c, sa(US4, 80))
            .unwrap_err()
            .raw_os_error(),
        Some(libc::EALREADY)
    );
    p.run(50);
    assert_eq!(
        p.b.tcp_connect(p.now, c, sa(US4, 80))
            .unwrap_err()
            .raw_os_error(),
        Some(libc::EISCONN)
    );
}

#[test]
fn closing_a_listener_resets_connections_not_yet_accepted() {
    let mut p = Pair::new();
    let l = listener(&mut p.a, false, 80);
    let c = p.b.tcp_socket(false).unwrap();
    p.b.tcp_connect(p.now, c, sa(US4, 80)).unwrap();
    p.run(50);
    p.a.close(l).unwrap();
    p.run(50);
    let mut buf = [0u8; 4];
    assert_eq!(
        p.b.tcp_recv(c, &mut buf, false).unwrap_err().raw_os_error(),
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
    p.b.tcp_send(c, b"ping").unwrap();
    p.run(50);
    p.a.take_changed(&mut changed);
    assert!(changed.contains(&s));
    changed.clear();
    p.run(5);
    p.a.take_changed(&mut changed);
    assert!(!changed.contains(&s), "no change, no wake-up");
}

#[test]
fn closed_connection_lingers_until_its_data_and_fin_are_acknowledged() {
    let mut p = Pair::new();
    let (s, c) = connected(&mut p, false);
    assert_eq!(
        p.b.tcp_lingering(),
        0,
        "an open connection is not lingering"
    );
    p.b.tcp_send(c, b"last words").unwrap();
    p.b.close(c).unwrap();
    assert_eq!(p.b.tcp_lingering(), 1, "data and FIN not yet acknowledged");
    let info = p.a.tcp_info(s).unwrap();
    assert_eq!(info.recv_queue, 0);
    p.run(50);
    assert_eq!(
        p.b.tcp_lingering(),
        0,
        "FIN-WAIT-2: everything acknowledged"
    );
    assert_eq!(p.a.tcp_info(s).unwrap().recv_queue, 10);
}
