//! The socket API end to end: two stacks, each with its runtime thread,
//! joined by an in-memory link.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr};
use std::thread;
use std::time::{Duration, Instant};

use ustack::api::{Stack, TcpListener, TcpStream, UdpSocket};
use ustack::device::pipe_pair;
use ustack::stack::CoreConfig;

const A4: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
const B4: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
const A6: Ipv6Addr = Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 2);

fn pair() -> (Stack, Stack) {
    let (la, lb) = pipe_pair(1500);
    let a = Stack::with_link(
        Box::new(la),
        CoreConfig {
            seed: 1,
            ..CoreConfig::default()
        },
    )
    .unwrap();
    let b = Stack::with_link(
        Box::new(lb),
        CoreConfig {
            addr: B4,
            addr6: Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 1),
            seed: 2,
            ..CoreConfig::default()
        },
    )
    .unwrap();
    (a, b)
}

fn pattern(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(2654435761) ^ seed) as u8)
        .collect()
}

/// Writes `data` and shuts down writing from a second thread while this one
/// reads the stream to its end (both directions move at once, so neither
/// side's buffers can stall the other); returns what was read.
fn send_all_and_read_back(c: &TcpStream, data: &[u8]) -> Vec<u8> {
    let writer = {
        let c = c.try_clone().unwrap();
        let data = data.to_vec();
        thread::spawn(move || {
            (&c).write_all(&data).unwrap();
            c.shutdown(Shutdown::Write).unwrap();
        })
    };
    let mut back = Vec::new();
    (&*c).read_to_end(&mut back).unwrap();
    writer.join().unwrap();
    back
}

#[test]
fn tcp_echo_of_a_megabyte_both_families() {
    let (a, b) = pair();
    for addr in [SocketAddr::from((A4, 7)), SocketAddr::from((A6, 7))] {
        let listener = TcpListener::bind(&a, addr).unwrap();
        let server = thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = vec![0u8; 65536];
            loop {
                let n = s.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                s.write_all(&buf[..n]).unwrap();
            }
        });
        let data = pattern(1 << 20, 3);
        let c = TcpStream::connect(&b, addr).unwrap();
        let back = send_all_and_read_back(&c, &data);
        server.join().unwrap();
        assert!(back == data, "echoed bytes differ");
    }
}

#[test]
fn connect_to_closed_port_is_connection_refused() {
    let (_a, b) = pair();
    let e = TcpStream::connect(&b, (A4, 1)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
}

#[test]
fn bind_errors_have_std_kinds() {
    let (a, _b) = pair();
    let _l = TcpListener::bind(&a, (A4, 80)).unwrap();
    assert_eq!(
        TcpListener::bind(&a, (A4, 80)).unwrap_err().kind(),
        ErrorKind::AddrInUse
    );
    assert_eq!(
        TcpListener::bind(&a, (Ipv4Addr::new(1, 2, 3, 4), 80))
            .unwrap_err()
            .kind(),
        ErrorKind::AddrNotAvailable
    );
    let u = UdpSocket::bind(&a, (A4, 0)).unwrap();
    assert_ne!(u.local_addr().unwrap().port(), 0);
    assert_eq!(
        UdpSocket::bind(&a, u.local_addr().unwrap())
            .unwrap_err()
            .kind(),
        ErrorKind::AddrInUse
    );
}

#[test]
fn read_timeout_and_nonblocking_give_would_block() {
    let (a, b) = pair();
    let l = TcpListener::bind(&a, (A4, 9)).unwrap();
    let c = TcpStream::connect(&b, (A4, 9)).unwrap();
    let (s, _) = l.accept().unwrap();
    c.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let t = Instant::now();
    let e = (&c).read(&mut [0u8; 8]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::WouldBlock);
    assert!(t.elapsed() >= Duration::from_millis(50));
    c.set_nonblocking(true).unwrap();
    assert_eq!(
        (&c).read(&mut [0u8; 8]).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    l.set_nonblocking(true).unwrap();
    assert_eq!(l.accept().unwrap_err().kind(), ErrorKind::WouldBlock);
    assert_eq!(
        c.set_read_timeout(Some(Duration::ZERO)).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    drop(s);
}

#[test]
fn shutdown_from_another_thread_wakes_a_blocked_reader() {
    let (a, b) = pair();
    let l = TcpListener::bind(&a, (A4, 10)).unwrap();
    let c = TcpStream::connect(&b, (A4, 10)).unwrap();
    let (_s, _) = l.accept().unwrap();
    let reader = {
        let c = c.try_clone().unwrap();
        thread::spawn(move || (&c).read(&mut [0u8; 8]))
    };
    thread::sleep(Duration::from_millis(50));
    c.shutdown(Shutdown::Read).unwrap();
    assert_eq!(reader.join().unwrap().unwrap(), 0);
}

#[test]
fn blocked_reader_and_writer_on_one_stream_both_progress() {
    let (a, b) = pair();
    let l = TcpListener::bind(&a, (A4, 11)).unwrap();
    let c = TcpStream::connect(&b, (A4, 11)).unwrap();
    let (s, _) = l.accept().unwrap();
    // The server echoes slowly at first so the client's writer fills its
    // buffer and blocks while its reader also blocks.
    let server = thread::spawn(move || {
        thread::sleep(Duration::from_millis(100));
        let mut buf = vec![0u8; 8192];
        loop {
            let n = (&s).read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            (&s).write_all(&buf[..n]).unwrap();
        }
    });
    let data = pattern(3 << 20, 9);
    let back = send_all_and_read_back(&c, &data);
    server.join().unwrap();
    assert_eq!(back.len(), data.len());
    assert!(back == data);
}

#[test]
fn peer_reset_surfaces_as_connection_reset() {
    let (a, b) = pair();
    let l = TcpListener::bind(&a, (A4, 12)).unwrap();
    let c = TcpStream::connect(&b, (A4, 12)).unwrap();
    let (s, _) = l.accept().unwrap();
    s.set_linger(Some(Duration::ZERO)).unwrap();
    drop(s);
    let e = (&c).read(&mut [0u8; 8]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionReset);
}

#[test]
fn udp_both_ways_with_truncation_peek_and_connect() {
    let (a, b) = pair();
    let sa = UdpSocket::bind(&a, (Ipv4Addr::UNSPECIFIED, 53)).unwrap();
    let sb = UdpSocket::bind(&b, (B4, 0)).unwrap();
    sb.send_to(b"hello world", (A4, 53)).unwrap();
    let mut small = [0u8; 5];
    let (n, from) = sa.peek_from(&mut small).unwrap();
    assert_eq!((n, &small[..]), (5, &b"hello"[..]));
    let (n, full, from2) = sa.recv_from_full(&mut small).unwrap();
    assert_eq!((n, full, from2), (5, 11, from));
    assert_eq!(from, sb.local_addr().unwrap());
    sa.connect(from).unwrap();
    sa.send(b"back").unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(sb.recv(&mut buf).unwrap(), 4);
    // 30,000 bytes: fragmented on a 1500-byte link and reassembled.
    let big = pattern(30_000, 1);
    sb.send_to(&big, (A4, 53)).unwrap();
    let mut got = vec![0u8; 65536];
    let n = sa.recv(&mut got).unwrap();
    assert_eq!(&got[..n], &big[..]);
}

#[test]
fn udp_to_closed_port_refuses_on_connected_socket() {
    let (_a, b) = pair();
    let s = UdpSocket::bind(&b, (B4, 0)).unwrap();
    s.connect((A4, 4444)).unwrap();
    s.send(b"?").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let e = s.recv(&mut [0u8; 4]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
}

#[test]
fn connect_timeout_expires_when_nobody_answers() {
    // A stack whose link goes nowhere: the SYN is never answered.
    let (la, _lb) = pipe_pair(1500);
    let a = Stack::with_link(Box::new(la), CoreConfig::default()).unwrap();
    let t = Instant::now();
    let e = TcpStream::connect_timeout(&a, &SocketAddr::from((B4, 80)), Duration::from_millis(100))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TimedOut);
    assert!(t.elapsed() < Duration::from_secs(2));
}

#[test]
fn many_concurrent_connections_each_deliver_their_bytes() {
    let (a, b) = pair();
    let l = TcpListener::bind(&a, (A4, 2000)).unwrap();
    let n = 50;
    let server = thread::spawn(move || {
        let mut handles = Vec::new();
        for _ in 0..n {
            let (s, _) = l.accept().unwrap();
            handles.push(thread::spawn(move || {
                let mut v = Vec::new();
                (&s).read_to_end(&mut v).unwrap();
                (&s).write_all(&(v.len() as u64).to_be_bytes()).unwrap();
            }));
        }
        for h in handles {
            h.join().unwrap();
        }
    });
    let clients: Vec<_> = (0..n)
        .map(|i| {
            let b = b.clone();
            thread::spawn(move || {
                let c = TcpStream::connect(&b, (A4, 2000)).unwrap();
                let data = pattern(64 * 1024 + i * 100, i as u32);
                (&c).write_all(&data).unwrap();
                c.shutdown(Shutdown::Write).unwrap();
                let mut len = [0u8; 8];
                (&c).read_exact(&mut len).unwrap();
                assert_eq!(u64::from_be_bytes(len), data.len() as u64);
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    server.join().unwrap();
}

/// An event loop over readiness fds must hear of every change after it saw
/// `WouldBlock`, even when the change races with its last read (a lost
/// wake-up here once stalled concurrent echo clients).
#[test]
fn readiness_fds_drive_a_nonblocking_echo_loop_for_concurrent_clients() {
    use mio::unix::SourceFd;
    use mio::{Events, Interest, Poll, Token};
    use std::collections::HashMap;

    let (a, b) = pair();
    let l = TcpListener::bind(&a, (A4, 3000)).unwrap();
    l.set_nonblocking(true).unwrap();
    let clients = 6;
    let server = thread::spawn(move || {
        let mut poll = Poll::new().unwrap();
        poll.registry()
            .register(
                &mut SourceFd(&l.readiness_fd().unwrap()),
                Token(0),
                Interest::READABLE,
            )
            .unwrap();
        let mut conns: HashMap<usize, (TcpStream, Vec<u8>)> = HashMap::new();
        let mut done = 0;
        let mut next = 1;
        let mut events = Events::with_capacity(64);
        while done < clients {
            poll.poll(&mut events, Some(Duration::from_secs(10)))
                .unwrap();
            assert!(!events.is_empty(), "no event for 10 s: a wake-up was lost");
            for ev in &events {
                if ev.token() == Token(0) {
                    l.clear_readiness();
                    while let Ok((s, _)) = l.accept() {
                        s.set_nonblocking(true).unwrap();
                        poll.registry()
                            .register(
                                &mut SourceFd(&s.readiness_fd().unwrap()),
                                Token(next),
                                Interest::READABLE,
                            )
                            .unwrap();
                        conns.insert(next, (s, Vec::new()));
                        next += 1;
                    }
                    continue;
                }
                let Some((s, pending)) = conns.get_mut(&ev.token().0) else {
                    continue;
                };
                s.clear_readiness();
                let mut buf = [0u8; 4096];
                let finished = loop {
                    if !pending.is_empty() {
                        match (&*s).write(pending) {
                            Ok(n) => {
                                pending.drain(..n);
                                continue;
                            }
                            Err(e) if e.kind() == ErrorKind::WouldBlock => break false,
                            Err(e) => panic!("write: {e}"),
                        }
                    }
                    match (&*s).read(&mut buf) {
                        Ok(0) => break true,
                        Ok(n) => pending.extend_from_slice(&buf[..n]),
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break false,
                        Err(e) => panic!("read: {e}"),
                    }
                };
                if finished {
                    conns.remove(&ev.token().0);
                    done += 1;
                }
            }
        }
    });
    let handles: Vec<_> = (0..clients)
        .map(|i| {
            let b = b.clone();
            thread::spawn(move || {
                let c = TcpStream::connect(&b, (A4, 3000)).unwrap();
                let data = pattern(300_000 + i * 777, i as u32);
                let back = send_all_and_read_back(&c, &data);
                assert!(back == data, "client {i} got different bytes");
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    server.join().unwrap();
}

#[test]
fn dropping_the_stack_after_writing_still_delivers_everything() {
    let (a, b) = pair();
    let l = TcpListener::bind(&a, (A4, 4000)).unwrap();
    let data = pattern(2 << 20, 5);
    let writer = {
        let data = data.clone();
        thread::spawn(move || {
            let c = TcpStream::connect(&b, (A4, 4000)).unwrap();
            (&c).write_all(&data).unwrap();
            // Close and drop the whole client stack at once: the runtime
            // lingers until the closed connection's data and FIN are
            // acknowledged.
            drop(c);
            drop(b);
        })
    };
    let (s, _) = l.accept().unwrap();
    let mut got = Vec::new();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    (&s).read_to_end(&mut got).unwrap();
    writer.join().unwrap();
    assert!(got == data, "got {} of {} bytes", got.len(), data.len());
}

#[test]
fn write_after_shutdown_is_broken_pipe_and_unconnected_udp_peer_is_not_connected() {
    let (a, b) = pair();
    let l = TcpListener::bind(&a, (A4, 4100)).unwrap();
    let c = TcpStream::connect(&b, (A4, 4100)).unwrap();
    let (_s, _) = l.accept().unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    assert_eq!(
        (&c).write(b"late").unwrap_err().kind(),
        ErrorKind::BrokenPipe
    );
    let u = UdpSocket::bind(&b, (B4, 0)).unwrap();
    assert_eq!(u.peer_addr().unwrap_err().kind(), ErrorKind::NotConnected);
    let info = c.info().unwrap();
    assert!(info.srtt.is_some(), "the handshake gave an RTT sample");
    assert!(info.cwnd > 0);
}

#[test]
fn corked_small_write_waits_for_the_cork_ceiling_and_options_read_back() {
    let (a, b) = pair();
    let addr = SocketAddr::from((A4, 9));
    let listener = TcpListener::bind(&a, addr).unwrap();
    let c = TcpStream::connect(&b, addr).unwrap();
    let (mut s, _) = listener.accept().unwrap();
    c.set_nodelay(true).unwrap();
    c.set_cork(true).unwrap();
    assert!(c.cork().unwrap());
    c.set_user_timeout(Some(Duration::from_secs(3))).unwrap();
    assert_eq!(c.user_timeout().unwrap(), Some(Duration::from_secs(3)));
    c.set_user_timeout(Some(Duration::ZERO)).unwrap();
    assert_eq!(c.user_timeout().unwrap(), None);
    // With nothing in flight a corked partial segment waits one RTO (at
    // least 200 ms), Nagle or not: it cannot arrive sooner.
    let t0 = Instant::now();
    (&c).write_all(b"corked").unwrap();
    let mut buf = [0u8; 16];
    let n = s.read(&mut buf).unwrap();
    let waited = t0.elapsed();
    assert_eq!(&buf[..n], b"corked");
    assert!(
        waited >= Duration::from_millis(190),
        "arrived after {waited:?}"
    );
    // Uncorked, a small write goes (TCP_NODELAY): this read would
    // otherwise also wait for the ceiling.
    c.set_cork(false).unwrap();
    (&c).write_all(b"free").unwrap();
    let n = s.read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"free");
}
