//! Ten thousand idle connections between two cores: every one completes its
//! handshake, stays established while idle, and still carries data. Also
//! prints the heap each idle connection costs (both ends together, from a
//! counting allocator in this test binary): a figure, not an assertion.

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

use ustack::stack::{Core, CoreConfig, SocketHandle};
use ustack::time::Instant;

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator unchanged and only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on as is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const A: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
const B: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
const N: usize = 10_000;

fn exchange(a: &mut Core, b: &mut Core, now: Instant, scratch: &mut Vec<Vec<u8>>) -> usize {
    let mut moved = 0;
    a.poll_transmit(now, scratch);
    moved += scratch.len();
    for p in scratch.drain(..) {
        b.input(now, &p);
    }
    b.poll_transmit(now, scratch);
    moved += scratch.len();
    for p in scratch.drain(..) {
        a.input(now, &p);
    }
    moved
}

#[test]
fn ten_thousand_idle_connections_stay_up_and_carry_data() {
    let mut a = Core::new(CoreConfig {
        seed: 1,
        ..CoreConfig::default()
    });
    let mut b = Core::new(CoreConfig {
        addr: B,
        addr6: "fd77::1".parse().unwrap(),
        seed: 2,
        ..CoreConfig::default()
    });
    let l = a.tcp_mut().socket(false).unwrap();
    a.tcp_mut().bind(l, SocketAddr::from((A, 80))).unwrap();
    a.tcp_mut().listen(l, 4096).unwrap();
    let mut scratch = Vec::new();
    let mut now = Instant::ZERO;
    let before = LIVE.load(Ordering::Relaxed);

    let mut clients: Vec<SocketHandle> = Vec::with_capacity(N);
    let mut servers: Vec<SocketHandle> = Vec::with_capacity(N);
    while servers.len() < N {
        // Connect in waves the backlog can hold, accepting as they land.
        for _ in 0..1000.min(N - clients.len()) {
            let c = b.tcp_mut().socket(false).unwrap();
            b.tcp_mut()
                .connect(now, c, SocketAddr::from((A, 80)))
                .unwrap();
            clients.push(c);
        }
        for _ in 0..20 {
            exchange(&mut a, &mut b, now, &mut scratch);
            while let Ok((s, _)) = a.tcp_mut().accept(l) {
                servers.push(s);
            }
            now += Duration::from_millis(1);
        }
        assert!(now < Instant::from_millis(600_000), "connections stalled");
    }
    assert_eq!(servers.len(), N);
    assert!(
        clients
            .iter()
            .all(|&c| b.tcp_mut().readiness(c).unwrap().writable)
    );

    // Idle for a simulated ten minutes: nothing times out (keepalive is
    // off by default) and nothing needs sending.
    let idle_until = now + Duration::from_secs(600);
    while now < idle_until {
        let next = [a.poll_at(), b.poll_at()]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(idle_until)
            .max(now + Duration::from_millis(1))
            .min(idle_until);
        now = next;
        exchange(&mut a, &mut b, now, &mut scratch);
    }
    let idle_bytes = LIVE.load(Ordering::Relaxed) - before;
    eprintln!(
        "{N} idle connections: {} bytes of heap on both ends, {} bytes per connection end",
        idle_bytes,
        idle_bytes / (2 * N as isize)
    );

    // Every connection still carries data both ways.
    for &c in &clients {
        b.tcp_mut().send(c, b"x").unwrap();
    }
    for _ in 0..50 {
        exchange(&mut a, &mut b, now, &mut scratch);
        now += Duration::from_millis(1);
    }
    let mut buf = [0u8; 4];
    for &s in &servers {
        assert_eq!(a.tcp_mut().recv(s, &mut buf, false).unwrap(), 1);
        a.tcp_mut().send(s, b"y").unwrap();
    }
    for _ in 0..50 {
        exchange(&mut a, &mut b, now, &mut scratch);
        now += Duration::from_millis(1);
    }
    for &c in &clients {
        assert_eq!(b.tcp_mut().recv(c, &mut buf, false).unwrap(), 1);
    }
}
