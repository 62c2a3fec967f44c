//! The tokio sockets (`--features tokio`) end to end: two stacks joined by
//! an in-memory link, tasks on tokio runtimes on both sides.
//!
//! Cancellation tests poll futures by hand with a waker that records being
//! woken, so "the future was pending, data arrived and woke it, the future
//! was dropped" happens in that order every run, with no sleeps.

use std::future::Future;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::pin;
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use ustack::api::{self, Stack};
use ustack::device::pipe_pair;
use ustack::stack::CoreConfig;
use ustack::tokio::{TcpListener, TcpStream, UdpSocket};

const A4: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
const B4: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
const A6: Ipv6Addr = Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 2);
/// How long a blocking peer waits before failing the test (a guard against
/// hanging, not a measurement: the waits it bounds take milliseconds).
const GUARD: Duration = Duration::from_secs(30);

/// Stack `a` (10.77.0.2) and stack `b` (10.77.0.1) on one in-memory link.
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

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap()
}

/// Runs `fut` on `rt`, failing the test if it has not finished within
/// [`GUARD`] (a lost wake-up would otherwise hang it).
fn run<F: Future>(rt: &tokio::runtime::Runtime, fut: F) -> F::Output {
    rt.block_on(async { tokio::time::timeout(GUARD, fut).await })
        .expect("stuck: a task was never woken")
}

/// A waker that remembers being woken; `wait` blocks until it has been.
#[derive(Default)]
struct Flag {
    woken: Mutex<bool>,
    cv: Condvar,
}

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        *self.woken.lock().unwrap() = true;
        self.cv.notify_all();
    }
}

impl Flag {
    fn wait(&self) {
        let g = self.woken.lock().unwrap();
        let (g, _) = self.cv.wait_timeout_while(g, GUARD, |w| !*w).unwrap();
        assert!(*g, "the pending future was never woken");
    }
}

/// Polls `fut` once with a fresh [`Flag`] waker.
fn poll_once<F: Future>(fut: std::pin::Pin<&mut F>) -> (Poll<F::Output>, Arc<Flag>) {
    let flag = Arc::new(Flag::default());
    let waker = Waker::from(Arc::clone(&flag));
    let r = fut.poll(&mut Context::from_waker(&waker));
    (r, flag)
}

/// Echoes every connection `listener` accepts, each in its own task, with
/// owned halves (the write half's drop sends FIN after the copy).
async fn echo_server(listener: TcpListener) {
    loop {
        let (s, _) = listener.accept().await.unwrap();
        tokio::spawn(async move {
            let (mut r, mut w) = s.into_split();
            tokio::io::copy(&mut r, &mut w).await.unwrap();
        });
    }
}

/// Sends `data` from one task while reading the echo in another (the
/// halves of one stream); returns what came back.
async fn round_trip(s: TcpStream, data: Vec<u8>) -> Vec<u8> {
    let (mut r, mut w) = s.into_split();
    let writer = tokio::spawn(async move {
        w.write_all(&data).await.unwrap();
        w.shutdown().await.unwrap();
        w
    });
    let mut back = Vec::new();
    r.read_to_end(&mut back).await.unwrap();
    let w = writer.await.unwrap();
    // The halves go back together into the one stream they came from.
    let s = r.reunite(w).unwrap();
    assert!(s.peer_addr().is_ok());
    back
}

#[test]
fn echo_of_a_megabyte_both_families_on_a_multi_thread_runtime() {
    let (a, b) = pair();
    let rt = multi_thread();
    run(&rt, async {
        for (i, addr) in [SocketAddr::from((A4, 7)), SocketAddr::from((A6, 7))]
            .into_iter()
            .enumerate()
        {
            let listener = TcpListener::bind(&a, addr).await.unwrap();
            assert_eq!(listener.local_addr().unwrap(), addr);
            let server = tokio::spawn(echo_server(listener));
            let s = TcpStream::connect(&b, addr).await.unwrap();
            assert_eq!(s.peer_addr().unwrap(), addr);
            assert_eq!(s.local_addr().unwrap().ip().is_ipv6(), addr.is_ipv6());
            let data = pattern(1 << 20, i as u32);
            let back = round_trip(s, data.clone()).await;
            assert_eq!(back.len(), data.len());
            assert!(back == data, "echoed bytes differ");
            server.abort();
        }
    });
}

#[test]
fn two_hundred_concurrent_connections_each_echoed() {
    let (a, b) = pair();
    let rt = multi_thread();
    run(&rt, async {
        let listener = TcpListener::bind(&a, "[::]:8").await.unwrap();
        let server = tokio::spawn(echo_server(listener));
        let clients: Vec<_> = (0..200u32)
            .map(|i| {
                let b = b.clone();
                tokio::spawn(async move {
                    let data = pattern(20_000 + i as usize * 97, i);
                    let s = TcpStream::connect(&b, (A4, 8)).await.unwrap();
                    round_trip(s, data.clone()).await == data
                })
            })
            .collect();
        let mut ok = 0;
        for c in clients {
            ok += usize::from(c.await.unwrap());
        }
        assert_eq!(ok, 200, "connections whose echo differed: {}", 200 - ok);
        server.abort();
    });
}

#[test]
fn a_dropped_pending_read_loses_nothing_and_the_stream_reads_on() {
    let (a, b) = pair();
    let rt = current_thread();
    let listener = run(&rt, TcpListener::bind(&a, (A4, 9))).unwrap();
    let mut peer = api::TcpStream::connect(&b, (A4, 9)).unwrap();
    let (mut s, _) = run(&rt, listener.accept()).unwrap();

    // 1. Nothing sent yet: the read waits; then data arrives and wakes it,
    // and the future is dropped without being polled again.
    let mut buf = [0u8; 64];
    {
        let mut read = pin!(s.read(&mut buf));
        let (r, woken) = poll_once(read.as_mut());
        assert!(r.is_pending());
        peer.write_all(b"first").unwrap();
        woken.wait();
    }
    let mut got = [0u8; 5];
    run(&rt, s.read_exact(&mut got)).unwrap();
    assert_eq!(&got, b"first");

    // 2. A read that loses a `select!` race is dropped while pending; the
    // next read gets the next bytes.
    run(&rt, async {
        tokio::select! {
            biased;
            r = s.read(&mut buf) => panic!("nothing was sent, yet read gave {r:?}"),
            () = std::future::ready(()) => {}
        }
    });
    peer.write_all(b"second").unwrap();
    let mut got = [0u8; 6];
    run(&rt, s.read_exact(&mut got)).unwrap();
    assert_eq!(&got, b"second");

    // 3. A dropped pending accept leaves the connection queued.
    {
        let mut accept = pin!(listener.accept());
        let (r, woken) = poll_once(accept.as_mut());
        assert!(r.is_pending());
        let _c2 = api::TcpStream::connect(&b, (A4, 9)).unwrap();
        woken.wait();
    }
    let (s2, peer2) = run(&rt, listener.accept()).unwrap();
    assert_eq!(peer2.ip(), B4);
    assert_eq!(s2.local_addr().unwrap(), SocketAddr::from((A4, 9)));
}

/// A waker that calls into the stack when woken, as an executor's waker
/// might (`counters()` takes the stack's lock).
struct Reentrant {
    stack: Stack,
    flag: Arc<Flag>,
}

impl Wake for Reentrant {
    fn wake(self: Arc<Self>) {
        let _ = self.stack.counters();
        Arc::clone(&self.flag).wake();
    }
}

#[test]
fn task_wakers_are_called_outside_the_stack_lock() {
    let (a, b) = pair();
    let rt = current_thread();
    let listener = run(&rt, TcpListener::bind(&a, (A4, 13))).unwrap();
    let mut peer = api::TcpStream::connect(&b, (A4, 13)).unwrap();
    let (mut s, _) = run(&rt, listener.accept()).unwrap();
    let flag = Arc::new(Flag::default());
    let waker = Waker::from(Arc::new(Reentrant {
        stack: a.clone(),
        flag: Arc::clone(&flag),
    }));
    let mut buf = [0u8; 8];
    let mut read = pin!(s.read(&mut buf));
    assert!(
        read.as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_pending()
    );
    peer.write_all(b"x").unwrap();
    let g = flag.woken.lock().unwrap();
    let (g, _) = flag.cv.wait_timeout_while(g, GUARD, |w| !*w).unwrap();
    if !*g {
        // Woken under the lock, the stack's thread is deadlocked for good
        // (and so would be the stacks' drop): end the process.
        eprintln!("task_wakers_are_called_outside_the_stack_lock: the waker never finished");
        std::process::exit(1);
    }
}

#[test]
fn dropping_a_stream_sends_fin_after_its_data() {
    let (a, b) = pair();
    let rt = current_thread();
    let listener = run(&rt, TcpListener::bind(&a, (A4, 10))).unwrap();
    let mut peer = api::TcpStream::connect(&b, (A4, 10)).unwrap();
    // A missing FIN fails the read instead of hanging the test.
    peer.set_read_timeout(Some(GUARD)).unwrap();
    let reader = std::thread::spawn(move || {
        let mut back = Vec::new();
        peer.read_to_end(&mut back).map(|_| back)
    });
    let data = pattern(1 << 20, 5);
    run(&rt, async {
        let (mut s, _) = listener.accept().await.unwrap();
        s.write_all(&data).await.unwrap();
        // Part of it is still in the send buffer: the stack delivers it,
        // then the FIN.
        drop(s);
    });
    let back = reader
        .join()
        .unwrap()
        .expect("end of stream (FIN), not a reset or a timeout");
    assert!(back == data, "got {} of {} bytes", back.len(), data.len());
}

#[test]
fn dropping_the_owned_write_half_sends_fin_and_the_read_half_reads_on() {
    let (a, b) = pair();
    let rt = current_thread();
    let listener = run(&rt, TcpListener::bind(&a, (A4, 11))).unwrap();
    let mut peer = api::TcpStream::connect(&b, (A4, 11)).unwrap();
    peer.set_read_timeout(Some(GUARD)).unwrap();
    let (s, _) = run(&rt, listener.accept()).unwrap();
    let (mut r, mut w) = s.into_split();
    run(&rt, w.write_all(b"half")).unwrap();
    drop(w);
    let mut back = Vec::new();
    peer.read_to_end(&mut back).unwrap();
    assert_eq!(back, b"half");
    peer.write_all(b"still open").unwrap();
    peer.shutdown(std::net::Shutdown::Write).unwrap();
    let mut got = Vec::new();
    run(&rt, r.read_to_end(&mut got)).unwrap();
    assert_eq!(got, b"still open");
}

#[test]
fn poll_shutdown_sends_fin_and_borrowed_halves_work_together() {
    let (a, b) = pair();
    let rt = current_thread();
    run(&rt, async {
        let listener = TcpListener::bind(&a, (A4, 12)).await.unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let (mut r, mut w) = s.split();
            let n = tokio::io::copy(&mut r, &mut w).await.unwrap();
            w.shutdown().await.unwrap();
            n
        });
        let mut c = TcpStream::connect(&b, (A4, 12)).await.unwrap();
        c.write_all(b"ping").await.unwrap();
        c.shutdown().await.unwrap();
        // A second shutdown of an already shut direction is harmless.
        c.shutdown().await.unwrap();
        assert_eq!(
            c.write_all(b"late").await.unwrap_err().kind(),
            ErrorKind::BrokenPipe
        );
        let mut back = Vec::new();
        c.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, b"ping");
        assert_eq!(server.await.unwrap(), 4);
    });
}

#[test]
fn connect_to_a_closed_port_is_refused() {
    let (_a, b) = pair();
    let rt = current_thread();
    let e = run(&rt, TcpStream::connect(&b, (A4, 1))).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
}

#[test]
fn udp_send_to_recv_from_connect_send_recv() {
    let (a, b) = pair();
    let rt = current_thread();
    run(&rt, async {
        let server = UdpSocket::bind(&a, "0.0.0.0:53").await.unwrap();
        let client = UdpSocket::bind(&b, "0.0.0.0:0").await.unwrap();
        let echo = tokio::spawn(async move {
            let mut buf = [0u8; 1500];
            for _ in 0..2 {
                let (n, from) = server.recv_from(&mut buf).await.unwrap();
                server.send_to(&buf[..n], from).await.unwrap();
            }
            server
        });
        assert_eq!(client.send_to(b"question", (A4, 53)).await.unwrap(), 8);
        let mut buf = [0u8; 64];
        let (n, from) = client.recv_from(&mut buf).await.unwrap();
        assert_eq!((&buf[..n], from), (&b"question"[..], (A4, 53).into()));

        client.connect((A4, 53)).await.unwrap();
        assert_eq!(client.peer_addr().unwrap(), (A4, 53).into());
        assert_eq!(client.send(b"again").await.unwrap(), 5);
        // Too small a buffer: the datagram is truncated, as the kernel does.
        let mut small = [0u8; 3];
        assert_eq!(client.recv(&mut small).await.unwrap(), 3);
        assert_eq!(&small, b"aga");
        let server = echo.await.unwrap();

        // Nobody on port 54: the ICMP port unreachable fails the next recv.
        client.connect((A4, 54)).await.unwrap();
        client.send(b"anyone?").await.unwrap();
        let e = client.recv(&mut buf).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
        drop(server);
    });
}

#[test]
fn a_dropped_pending_recv_from_leaves_the_datagram_queued() {
    let (a, b) = pair();
    let rt = current_thread();
    let server = run(&rt, UdpSocket::bind(&a, "0.0.0.0:5300")).unwrap();
    let client = api::UdpSocket::bind(&b, "0.0.0.0:0").unwrap();
    let mut buf = [0u8; 64];
    {
        let mut recv = pin!(server.recv_from(&mut buf));
        let (r, woken) = poll_once(recv.as_mut());
        assert!(r.is_pending());
        client.send_to(b"kept", (A4, 5300)).unwrap();
        woken.wait();
    }
    let (n, from) = run(&rt, server.recv_from(&mut buf)).unwrap();
    assert_eq!(&buf[..n], b"kept");
    assert_eq!(
        from,
        SocketAddr::from((B4, client.local_addr().unwrap().port()))
    );
}

#[test]
fn futures_and_sockets_are_send() {
    fn send<T: Send>(_: &T) {}
    fn send_sync<T: Send + Sync>() {}
    send_sync::<TcpListener>();
    send_sync::<TcpStream>();
    send_sync::<UdpSocket>();
    let (a, _b) = pair();
    send(&TcpStream::connect(&a, (B4, 1)));
    send(&TcpListener::bind(&a, (A4, 0)));
    send(&UdpSocket::bind(&a, (A4, 0)));
}
