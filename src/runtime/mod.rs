//! The runtime: one hidden thread that drives a sans-IO [`Core`] over a
//! [`Link`].
//!
//! Owns the thread, the monotonic clock and the wake-up eventfd. The loop:
//! read the link until it is drained (bounded per turn so transmission is
//! never starved), feed every packet to the core (and hand the buffers back
//! to the link, [`Link::recycle`]), give the core the buffers of what the
//! link sent ([`Link::take_spent`]), collect what the core wants to send,
//! write it in one batch, then sleep in `poll(2)` on the
//! link's fd and the wake-up fd until the earliest of the core's and the
//! link's deadlines.
//!
//! Locking: the core lives in one `Mutex`. The runtime thread takes it once
//! per batch, never across a system call; API callers take it for their
//! socket operation and then call [`Runtime::wake`] (a cheap eventfd write)
//! when the core may have something new to send or a new deadline.
//!
//! Must not touch: protocol logic. Everything it knows of the core is
//! `input`, `poll_transmit`, `poll_at` and `recycle`.
//!
//! A [`Driver`] runs inside the runtime thread, once per turn with the
//! state locked: the stack daemon (`crate::ipc::server`) relays its
//! programs' sockets there, so a byte crosses no second thread. The thread
//! also sleeps on the driver's fd.
//!
//! A runtime can also be driven by hand ([`Runtime::manual`]): no thread,
//! a virtual [`Clock`] that moves only when the driver says so
//! ([`Runtime::step_to`]), packets handed in with [`Runtime::inject`]. The
//! packetdrill adapter runs the stack that way, so a script's 200 ms
//! retransmission timeout takes no real time and fires at exactly its
//! instant, every run.

mod block;
mod waiters;

pub use waiters::{ThreadWaker, Waiters};

use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::device::{Link, Packet};
use crate::stack::{Core, SocketHandle};
use crate::sys::{self, EventFd};
use crate::time::Instant;

/// Packets read from the link per `recv_batch` call.
const RX_BATCH: usize = 64;
/// Packets fed to the core per turn before transmitting.
const RX_PER_TURN: usize = 1024;

/// A clock: monotonic real time whose epoch is the clock's creation, or
/// virtual time that moves only when a manually driven runtime is stepped.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    epoch: std::time::Instant,
    /// The virtual time in microseconds; `None` for real time. Leaked so
    /// the clock stays `Copy` and its real-time path a single branch: a
    /// process makes a handful of virtual clocks (a packetdrill run makes
    /// one), eight bytes each.
    virt: Option<&'static AtomicU64>,
}

impl Clock {
    /// A real clock starting now.
    pub fn new() -> Clock {
        Clock {
            epoch: std::time::Instant::now(),
            virt: None,
        }
    }

    /// A virtual clock reading `start` until a runtime driven by hand
    /// moves it.
    pub fn virtual_at(start: Instant) -> Clock {
        Clock {
            epoch: std::time::Instant::now(),
            virt: Some(Box::leak(Box::new(AtomicU64::new(start.total_micros())))),
        }
    }

    /// Whether this is a virtual clock.
    pub fn is_virtual(&self) -> bool {
        self.virt.is_some()
    }

    /// The current instant.
    pub fn now(&self) -> Instant {
        if let Some(v) = self.virt {
            return Instant::from_micros(v.load(Ordering::Acquire));
        }
        let us = self.epoch.elapsed().as_micros();
        Instant::from_micros(u64::try_from(us).unwrap_or(u64::MAX))
    }

    /// Moves a virtual clock forward to `t` (never back); a real clock
    /// ignores it.
    fn advance_to(&self, t: Instant) {
        if let Some(v) = self.virt {
            v.fetch_max(t.total_micros(), Ordering::AcqRel);
        }
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

/// What the runtime lock protects: the core, and who waits for which
/// socket.
pub struct State {
    /// The sans-IO core: sockets, connections, reassembly.
    pub core: Core,
    /// The threads (and readiness fds) waiting on each socket.
    pub waiters: Waiters,
    /// Packets a caller's inline transmit could not hand to the link (its
    /// queue was full); the runtime thread sends them first.
    backlog: Vec<Packet>,
    /// The DNS servers the link's DHCP lease named (empty without one).
    pub dns_servers: Vec<std::net::Ipv4Addr>,
}

struct Shared {
    state: Mutex<State>,
    /// The link. Lock order: `link` before `state`, never the reverse.
    link: Mutex<Box<dyn Link>>,
    wake: EventFd,
    /// When the thread must stop, in clock microseconds: `u64::MAX` while
    /// running; a later instant lets closed connections finish first.
    stop_at: AtomicU64,
    /// When the thread plans to wake next (clock microseconds, `u64::MAX`
    /// for no deadline), so callers wake it only for an earlier deadline.
    sleep_until: AtomicU64,
    clock: Clock,
}

impl Shared {
    /// `sleep_until` as the field says: 0 for a runtime thread that has
    /// not slept yet, `u64::MAX` when no thread ever sleeps.
    fn new(core: Core, link: Box<dyn Link>, sleep_until: u64, clock: Clock) -> io::Result<Shared> {
        Ok(Shared {
            state: Mutex::new(State {
                core,
                waiters: Waiters::default(),
                backlog: Vec::new(),
                dns_servers: Vec::new(),
            }),
            link: Mutex::new(link),
            wake: EventFd::new()?,
            stop_at: AtomicU64::new(u64::MAX),
            sleep_until: AtomicU64::new(sleep_until),
            clock,
        })
    }
}

impl State {
    /// Applies what the link learnt (a DHCP lease bound or lost) to the
    /// core.
    fn apply_link_events(&mut self, link: &mut dyn Link) {
        while let Some(event) = link.poll_event() {
            match event {
                crate::device::LinkEvent::Ipv4 {
                    addr,
                    gateway,
                    dns_servers,
                } => {
                    self.core.set_ipv4(addr, gateway.is_some());
                    self.dns_servers = dns_servers;
                }
                crate::device::LinkEvent::Ipv6 { addr, gateway } => {
                    self.core.set_ipv6(addr, gateway.is_some());
                }
            }
        }
    }

    /// Wakes the waiters of every socket whose readiness changed.
    fn wake_changed(&mut self, scratch: &mut Vec<SocketHandle>) {
        self.core.take_changed(scratch);
        for h in scratch.drain(..) {
            self.waiters.wake(h);
        }
    }

    /// Like `wake_changed`, but leaves the list in `scratch` (for a
    /// driver).
    fn wake_changed_keep(&mut self, scratch: &mut Vec<SocketHandle>) {
        scratch.clear();
        self.core.take_changed(scratch);
        for h in scratch.iter() {
            self.waiters.wake(*h);
        }
    }
}

/// Work done inside the runtime thread each turn, after the link's packets
/// were fed to the core and the core's timers ran (see the module docs).
pub trait Driver: Send {
    /// An fd the runtime thread also sleeps on (readable means "call
    /// [`Driver::turn`]"), such as an epoll fd.
    fn wait_fd(&self) -> std::os::fd::RawFd;
    /// One turn: `changed` lists the sockets whose readiness may have
    /// changed since the last turn; `fd_ready` says whether its fd may be
    /// readable (false when the thread woke for something else, so the
    /// driver need not ask it). Returns whether the driver has more to do
    /// at once (the thread then does not sleep).
    fn turn(
        &mut self,
        st: &mut State,
        now: Instant,
        changed: &[SocketHandle],
        fd_ready: bool,
    ) -> bool;
    /// Whether the runtime may stop: asked when the driver says it is idle
    /// and nothing lingers. `None` keeps running.
    fn done(&self) -> bool {
        false
    }
}

/// Stops a runtime from another thread (a signal handler thread).
pub struct Stopper(Arc<Shared>);

impl Stopper {
    /// Stops the thread once every closed connection has delivered its
    /// data and FIN, or `linger` has passed.
    pub fn stop_after(&self, linger: Duration) {
        let at = self.0.clock.now() + linger;
        let _ = self.0.stop_at.compare_exchange(
            u64::MAX,
            at.total_micros(),
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        self.0.wake.notify();
    }
}

/// A running stack: the core, its thread and its link.
pub struct Runtime {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Runtime {
    /// Starts the thread `ustack-runtime` driving `core` over `link`.
    pub fn start(core: Core, link: Box<dyn Link>) -> io::Result<Runtime> {
        let wait_fd = link.wait_fd();
        let shared = Arc::new(Shared::new(core, link, 0, Clock::new())?);
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("ustack-runtime".into())
            .spawn(move || run(&thread_shared, wait_fd, None))?;
        Ok(Runtime {
            shared,
            thread: Some(thread),
        })
    }

    /// Like [`Runtime::start`], with `driver` run inside the thread each
    /// turn (see [`Driver`]).
    pub fn start_with_driver(
        core: Core,
        link: Box<dyn Link>,
        driver: Box<dyn Driver>,
    ) -> io::Result<Runtime> {
        let wait_fd = link.wait_fd();
        let shared = Arc::new(Shared::new(core, link, 0, Clock::new())?);
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("ustack-runtime".into())
            .spawn(move || run(&thread_shared, wait_fd, Some(driver)))?;
        Ok(Runtime {
            shared,
            thread: Some(thread),
        })
    }

    /// A handle that stops the runtime from another thread.
    pub fn stopper(&self) -> Stopper {
        Stopper(Arc::clone(&self.shared))
    }

    /// Waits for the thread to end by itself: a driver that is done, or a
    /// [`Stopper`].
    pub fn join(mut self) {
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            log::error!("runtime thread panicked");
        }
    }

    /// A runtime without a thread, driven by its caller: time is `clock`
    /// (normally virtual, [`Clock::virtual_at`]) and moves only through
    /// [`Runtime::step_to`]; arriving packets come from
    /// [`Runtime::inject`], not from the link, which only takes what the
    /// core sends (with the virtual instant it was sent at). Socket calls
    /// work as with a thread: they transmit inline, and blocked callers are
    /// woken by the injection or the timer that changes their socket.
    pub fn manual(core: Core, link: Box<dyn Link>, clock: Clock) -> io::Result<Runtime> {
        // No thread sleeps: callers never need to wake one for a deadline.
        let shared = Arc::new(Shared::new(core, link, u64::MAX, clock)?);
        Ok(Runtime {
            shared,
            thread: None,
        })
    }

    /// Hands `packet` (one IP datagram) to the core at the clock's current
    /// time, then transmits what the core answers and wakes the waiters of
    /// the sockets it changed. For a runtime driven by hand.
    pub fn inject(&self, packet: &[u8]) {
        let now = self.shared.clock.now();
        lock(&self.shared.state).core.input(now, packet);
        self.flush();
    }

    /// The core's next deadline, if it has one.
    pub fn next_deadline(&self) -> Option<Instant> {
        lock(&self.shared.state).core.poll_at()
    }

    /// Moves a virtual clock one step towards `t`: first transmits what is
    /// due now, then moves to the core's next deadline if that comes
    /// before `t` (and runs it, so a timer's packet carries its deadline
    /// as its time), else to `t`. Returns whether the clock reached `t`; a
    /// driver loops until it does, and between steps may let the threads
    /// a timer woke run, so each sees the time it was woken at. For a
    /// runtime driven by hand.
    pub fn step_to(&self, t: Instant) -> bool {
        self.flush();
        let now = self.shared.clock.now();
        if now >= t || !self.shared.clock.is_virtual() {
            // A real clock moves by itself: nothing to step.
            return true;
        }
        match self.next_deadline() {
            Some(d) if d < t => {
                // A deadline already due that the flush did not clear
                // would stall here: move on by at least a microsecond.
                let at = d.max(now + Duration::from_micros(1));
                self.shared.clock.advance_to(at);
                self.flush();
                at >= t
            }
            _ => {
                self.shared.clock.advance_to(t);
                self.flush();
                true
            }
        }
    }

    /// Runs `f` with the core locked and the current time.
    pub fn with_core<R>(&self, f: impl FnOnce(&mut Core, Instant) -> R) -> R {
        let now = self.shared.clock.now();
        f(&mut lock(&self.shared.state).core, now)
    }

    /// Runs `f` with the whole runtime state locked (core and waiters),
    /// then wakes the tasks `f` made due.
    pub fn with_state<R>(&self, f: impl FnOnce(&mut State, Instant) -> R) -> R {
        let now = self.shared.clock.now();
        let (r, woken) = {
            let mut st = lock(&self.shared.state);
            let r = f(&mut st, now);
            (r, st.waiters.take_woken())
        };
        wake_tasks(woken);
        r
    }

    /// The runtime's clock.
    pub fn clock(&self) -> Clock {
        self.shared.clock
    }

    /// Tells the thread that the core may have something to send or a new
    /// deadline.
    pub fn wake(&self) {
        self.shared.wake.notify();
    }

    /// Transmits what the core has to send from the caller's thread, so a
    /// write does not wait for the runtime thread to be scheduled. If the
    /// link is busy (the runtime thread is using it), leaves the work to
    /// that thread; wakes it only if the core now has an earlier deadline
    /// than the one it sleeps towards, or packets are left over.
    pub fn transmit_now(&self) {
        let Ok(link) = self.shared.link.try_lock() else {
            self.wake();
            return;
        };
        self.transmit_with(link);
    }

    /// Like [`Runtime::transmit_now`], but waits for the link if the
    /// runtime thread is using it: when this returns, everything the core
    /// had to send has been handed to the link (for a process about to
    /// exit).
    pub fn flush(&self) {
        let link = self.shared.link.lock().unwrap_or_else(|p| p.into_inner());
        self.transmit_with(link);
    }

    /// Lets the link send its own last frames now ([`Link::close`]: the
    /// DHCP client's RELEASE), for a process about to exit with the thread
    /// still running (the shim's exit hook). The stack keeps running
    /// without the lease.
    pub fn close_link(&self) {
        let now = self.shared.clock.now();
        let mut link = self.shared.link.lock().unwrap_or_else(|p| p.into_inner());
        link.close(now);
        lock(&self.shared.state).apply_link_events(&mut **link);
    }

    fn transmit_with(&self, mut link: MutexGuard<'_, Box<dyn Link>>) {
        let now = self.shared.clock.now();
        let mut tx = Vec::new();
        let mut changed = Vec::new();
        link.take_spent(&mut tx);
        let (deadline, woken) = {
            let mut st = lock(&self.shared.state);
            st.apply_link_events(&mut **link);
            st.core.recycle(&mut tx);
            st.core.poll_transmit(now, &mut tx);
            st.wake_changed(&mut changed);
            (st.core.poll_at(), st.waiters.take_woken())
        };
        wake_tasks(woken);
        let mut wake = false;
        if !tx.is_empty() {
            if let Err(e) = link.send_batch(now, &mut tx) {
                log::debug!("inline transmit: {e}");
                tx.clear();
            }
            if !tx.is_empty() {
                lock(&self.shared.state).backlog.append(&mut tx);
                wake = true;
            }
        }
        drop(link);
        let planned = self.shared.sleep_until.load(Ordering::Acquire);
        if wake || deadline.is_some_and(|d| d.total_micros() < planned) {
            self.wake();
        }
    }

    /// Asks the thread to stop (it flushes once and closes the link);
    /// returns at once.
    pub fn stop(&self) {
        self.shared.stop_at.store(0, Ordering::Release);
        self.shared.wake.notify();
    }

    /// Stops the thread once every connection the application closed has
    /// delivered its data and FIN (or `linger` has passed), then waits for
    /// it.
    pub fn shutdown_linger(mut self, linger: Duration) {
        self.linger(linger);
    }

    /// [`Runtime::shutdown_linger`] through a reference (for owners that
    /// are being dropped); a stop already requested keeps its deadline.
    pub fn linger(&mut self, linger: Duration) {
        let at = self.shared.clock.now() + linger;
        let _ = self.shared.stop_at.compare_exchange(
            u64::MAX,
            at.total_micros(),
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        self.shared.wake.notify();
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            log::error!("runtime thread panicked");
        }
    }

    /// Stops the thread and waits for it; the link is closed when the
    /// thread drops it.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        self.stop();
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            log::error!("runtime thread panicked");
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// Wakes async tasks taken from [`Waiters::take_woken`], outside the
/// runtime lock.
fn wake_tasks(woken: Vec<std::task::Waker>) {
    for w in woken {
        w.wake();
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panic while holding the lock leaves the core as it was at the panic;
    // the stack keeps serving the other sockets rather than cascading.
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Logs an I/O error from the link once per kind, not once per packet.
struct ErrorOnce(Option<io::ErrorKind>);

impl ErrorOnce {
    fn report(&mut self, what: &str, e: &io::Error) {
        if self.0 != Some(e.kind()) {
            log::error!("{what}: {e}");
            self.0 = Some(e.kind());
        }
    }
}

fn run(shared: &Shared, wait_fd: Option<std::os::fd::RawFd>, mut driver: Option<Box<dyn Driver>>) {
    let mut rx: Vec<Packet> = Vec::with_capacity(RX_BATCH);
    // Per packet of `rx`: the link vouches for its transport checksum.
    let mut verified: Vec<bool> = Vec::with_capacity(RX_BATCH);
    let mut tx: Vec<Packet> = Vec::new();
    let mut spent: Vec<Packet> = Vec::new();
    let mut errors = ErrorOnce(None);
    let mut changed = Vec::new();
    // Whether the link may have packets: its fd polled readable (or it has
    // none), or the last turn stopped reading early. A turn woken only by
    // the wake-up fd or the driver's skips a read that would say EAGAIN,
    // unless the link has work due (`poll_at`: held or queued packets).
    let mut link_ready = true;
    let mut driver_ready = true;
    loop {
        let now = shared.clock.now();
        let stop_at = shared.stop_at.load(Ordering::Acquire);
        if stop_at != u64::MAX
            && (now.total_micros() >= stop_at || lock(&shared.state).core.tcp().lingering() == 0)
        {
            break;
        }
        let mut link = shared.link.lock().unwrap_or_else(|p| p.into_inner());
        let mut fed = 0;
        let mut rx_error = false;
        let read_link = link_ready || link.poll_at().is_some_and(|t| t <= now);
        while read_link && fed < RX_PER_TURN {
            match link.recv_batch_verified(now, &mut rx, &mut verified, RX_BATCH) {
                Ok(0) => break,
                Ok(n) => {
                    fed += n;
                    {
                        let mut st = lock(&shared.state);
                        for (p, v) in rx.iter().zip(&verified) {
                            st.core.input_verified(now, p, *v);
                        }
                    }
                    verified.clear();
                    // The buffers go back to the link to be read into again.
                    link.recycle(&mut rx);
                    if n < RX_BATCH {
                        // Less than asked: the link had no more just now.
                        // Its fd (level-triggered) or `poll_at` says when
                        // it has, so a second read that would say EAGAIN
                        // is saved.
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // The device was deleted under us (`ip link del`, the
                // launcher's --teardown): a daemon ends, so that the next
                // program starts one on the new device instead of reaching
                // a stack that can no longer send.
                Err(e) if driver.is_some() && e.kind() == io::ErrorKind::NotFound => {
                    log::info!("receiving from the link: {e}; stopping");
                    return;
                }
                Err(e) => {
                    errors.report("receiving from the link", &e);
                    rx_error = true;
                    break;
                }
            }
        }
        // Sent packets' buffers go back to the core to build new ones in.
        link.take_spent(&mut spent);
        let mut busy = false;
        let mut finished = false;
        let (deadline, woken) = {
            let mut st = lock(&shared.state);
            st.apply_link_events(&mut **link);
            st.core.recycle(&mut spent);
            tx.append(&mut st.backlog);
            st.core.poll_transmit(now, &mut tx);
            if let Some(d) = driver.as_mut() {
                st.wake_changed_keep(&mut changed);
                busy = d.turn(&mut st, now, &changed, driver_ready);
                // What the driver queued goes out in this batch.
                st.core.poll_transmit(now, &mut tx);
                if !busy && d.done() && st.core.tcp().lingering() == 0 {
                    finished = true;
                }
            } else {
                st.wake_changed(&mut changed);
            }
            (st.core.poll_at(), st.waiters.take_woken())
        };
        wake_tasks(woken);
        if !tx.is_empty()
            && let Err(e) = link.send_batch(now, &mut tx)
        {
            errors.report("sending to the link", &e);
            // A link that fails outright would otherwise keep the batch
            // forever and grow it each turn.
            tx.clear();
        }
        if finished {
            break;
        }
        if fed >= RX_PER_TURN || busy {
            link_ready = true;
            driver_ready = true;
            continue; // more may be waiting: read again before sleeping
        }
        let mut deadline = match (deadline, link.poll_at()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        drop(link);
        if stop_at != u64::MAX {
            // Lingering: wake at the stop deadline at the latest.
            let stop = Instant::from_micros(stop_at);
            deadline = Some(deadline.map_or(stop, |d| d.min(stop)));
        }
        shared.sleep_until.store(
            deadline.map_or(u64::MAX, |d| d.total_micros()),
            Ordering::Release,
        );
        let mut timeout = deadline.map(|d| d.saturating_duration_since(shared.clock.now()));
        if rx_error {
            // Back off instead of spinning on a broken device.
            timeout = Some(timeout.map_or(Duration::from_millis(100), |t| {
                t.min(Duration::from_millis(100))
            }));
        }
        let mut fds = [
            sys::pollfd(shared.wake.as_raw_fd(), libc::POLLIN),
            sys::pollfd(-1, 0),
            sys::pollfd(driver.as_ref().map_or(-1, |d| d.wait_fd()), libc::POLLIN),
        ];
        if let Some(fd) = wait_fd {
            let mut events = libc::POLLIN;
            if !tx.is_empty() {
                events |= libc::POLLOUT;
            }
            fds[1] = sys::pollfd(fd, events);
        } else if timeout.is_none_or(|t| t > Duration::from_millis(1)) {
            // A link with nothing to wait on is polled every millisecond.
            timeout = Some(Duration::from_millis(1));
        }
        let polled = match sys::poll(&mut fds, timeout) {
            Ok(_) => true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => false,
            Err(e) => {
                errors.report("waiting for the link", &e);
                false
            }
        };
        link_ready = !polled || wait_fd.is_none() || fds[1].revents != 0;
        driver_ready = !polled || fds[2].revents != 0;
        if fds[0].revents != 0 {
            shared.wake.drain();
        }
    }
    // Flush what the core still has, once.
    let now = shared.clock.now();
    let mut link = shared.link.lock().unwrap_or_else(|p| p.into_inner());
    {
        let mut st = lock(&shared.state);
        tx.append(&mut st.backlog);
        st.core.poll_transmit(now, &mut tx);
    }
    if !tx.is_empty() {
        let _ = link.send_batch(now, &mut tx);
    }
    link.close(now);
}

impl Runtime {
    /// Starts a stack as the `USTACK_*` configuration says: opens (or
    /// creates) the TUN device, wraps it in the fault injector and the pcap
    /// tap when asked, and starts the thread. Errors name the device and
    /// the cause.
    pub fn from_config(cfg: &crate::config::Config) -> io::Result<Runtime> {
        Runtime::from_config_with(cfg, None)
    }

    /// [`Runtime::from_config`] with a [`Driver`] in the thread (the stack
    /// daemon's).
    pub fn from_config_with(
        cfg: &crate::config::Config,
        driver: Option<Box<dyn Driver>>,
    ) -> io::Result<Runtime> {
        use crate::device::{TunConfig, TunDevice, wrap_link, wrap_link_of};
        // The fault injector models a wire of MTU-sized packets, one loss
        // decision each: with faults there are no offloads in either
        // direction, so neither the kernel's 64 KiB super-packets nor ours
        // cross it whole (which would spare the kernel's data most of the
        // loss it is meant to meet).
        let faulty = cfg.fault.as_ref().is_some_and(|f| !f.is_noop());
        let tap = cfg.link == crate::config::LinkKind::Tap;
        let tun = TunDevice::open(&TunConfig {
            name: cfg.ifname.clone(),
            mtu: cfg.mtu,
            ipv4: Some((cfg.peer, cfg.addr)),
            ipv6: Some((cfg.peer6, cfg.addr6)),
            offload: cfg.offload && !faulty,
            tap,
        })?;
        let tso_max = if faulty { 0 } else { tun.tso_max() };
        // On tap the device carries frames: the Ethernet host turns them
        // into the datagrams the core speaks. The fault injector and the
        // capture sit below it, on the frames (ARP and NDP included; the
        // capture is LINKTYPE_ETHERNET); on tun they wrap the datagrams.
        let link: Box<dyn Link> = if tap {
            let frames = wrap_link_of(
                Box::new(tun),
                cfg.fault.as_ref(),
                cfg.pcap.as_deref(),
                Instant::ZERO,
                crate::device::LINKTYPE_ETHERNET,
            )?;
            Box::new(crate::ethernet::EthernetLink::new(
                frames,
                crate::ethernet::EthernetConfig {
                    mac: cfg.mac_addr(),
                    ipv4: Some(crate::ethernet::Prefix {
                        addr: cfg.addr,
                        len: cfg.prefix_len(),
                    }),
                    ipv6: Some(crate::ethernet::Prefix {
                        addr: cfg.addr6,
                        len: cfg.prefix6_len(),
                    }),
                    gateway: cfg.gateway,
                    gateway6: cfg.gateway6,
                    neighbors: crate::ethernet::NeighborConfig::default(),
                    dhcp: cfg.dhcp,
                    slaac: cfg.slaac,
                    mld: true,
                },
            ))
        } else {
            wrap_link(
                Box::new(tun),
                cfg.fault.as_ref(),
                cfg.pcap.as_deref(),
                Instant::ZERO,
            )?
        };
        // An attached persistent device keeps its own MTU.
        let mtu = link.mtu();
        let routes = if tap {
            crate::stack::Routes::Lan {
                // With DHCP, no IPv4 address (and so no route) until a
                // lease is bound.
                v4: (!cfg.dhcp).then_some(crate::wire::Prefix {
                    addr: cfg.addr,
                    len: cfg.prefix_len(),
                }),
                gateway4: cfg.gateway.is_some() && !cfg.dhcp,
                v6: (!cfg.slaac).then_some(crate::wire::Prefix {
                    addr: cfg.addr6,
                    len: cfg.prefix6_len(),
                }),
                gateway6: cfg.gateway6.is_some() && !cfg.slaac,
            }
        } else {
            crate::stack::Routes::PointToPoint
        };
        let core = Core::new(crate::stack::CoreConfig {
            addr: if cfg.dhcp {
                std::net::Ipv4Addr::UNSPECIFIED
            } else {
                cfg.addr
            },
            addr6: if cfg.slaac {
                std::net::Ipv6Addr::UNSPECIFIED
            } else {
                cfg.addr6
            },
            mtu,
            routes,
            tcp: crate::tcp::TcpConfig {
                tso_max,
                ecn: cfg.ecn,
                ..crate::tcp::TcpConfig::default()
            },
            ..crate::stack::CoreConfig::default()
        });
        let rt = match driver {
            Some(d) => Runtime::start_with_driver(core, link, d)?,
            None => Runtime::start(core, link)?,
        };
        if cfg.dhcp || cfg.slaac {
            let (v4, v6) = rt.wait_addresses(cfg.dhcp, cfg.slaac, DHCP_START_WAIT);
            let secs = DHCP_START_WAIT.as_secs();
            if !v4 {
                log::warn!(
                    "{}: no DHCP lease after {secs} s; IPv4 sockets get ENETUNREACH until one is bound",
                    cfg.ifname
                );
            }
            if !v6 {
                log::warn!(
                    "{}: no IPv6 address from router advertisements after {secs} s; IPv6 sockets get ENETUNREACH until one is",
                    cfg.ifname
                );
            }
        }
        Ok(rt)
    }

    /// Waits up to `timeout` for the stack to have an IPv4 address (a DHCP
    /// lease bound), if `v4`, and an IPv6 one (SLAAC), if `v6`; returns
    /// which it has (true for a family not asked about).
    pub fn wait_addresses(&self, v4: bool, v6: bool, timeout: Duration) -> (bool, bool) {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let (has4, has6) = self.with_core(|core, _| {
                let c = core.config();
                (!c.addr.is_unspecified(), !c.addr6.is_unspecified())
            });
            let got = (has4 || !v4, has6 || !v6);
            if got == (true, true) || std::time::Instant::now() >= deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The DNS servers of the link's DHCP lease (empty without one).
    pub fn dns_servers(&self) -> Vec<std::net::Ipv4Addr> {
        lock(&self.shared.state).dns_servers.clone()
    }
}

/// How long starting a stack with `USTACK_ADDR=dhcp` waits for the first
/// lease (and with `USTACK_ADDR6=auto` for the first address from a router
/// advertisement: 2 to 3 s, a second's wait and two DADs), so a program's
/// first connect finds an address: long enough for the first DISCOVER (1
/// to 2 s after the start) and a server that pings the address before
/// offering it (dnsmasq: 3 s), and shorter than the 10 s the shim gives a
/// stack daemon it starts to come up. A lost DISCOVER is retransmitted 3
/// to 5 s later, and its lease then comes after the wait.
pub const DHCP_START_WAIT: Duration = Duration::from_secs(6);
