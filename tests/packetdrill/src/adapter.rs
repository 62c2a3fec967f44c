//! packetdrill's `struct packetdrill_interface` and the functions behind
//! it.
//!
//! Owns the process's one hand-driven stack (made at the first
//! [`packetdrill_interface_init`]), the queue of packets it sent with their
//! virtual times, and the record of which threads are inside a socket
//! call. Must not touch: socket semantics (every socket call goes to the
//! shim's hooks unchanged) or packet contents.
//!
//! Time. The clock is virtual: `usleep` moves it, stopping at each of the
//! core's deadlines on the way so a timer's packet carries its deadline as
//! its time; `gettimeofday` moves it by one microsecond per call (packetdrill
//! spins on it for the last microseconds before an event, which must end);
//! `netdev_receive`, when the stack has nothing queued, moves it to the
//! core's next deadline, which is how an RTO retransmission emerges at its
//! time without the script sleeping for it.
//!
//! Threads. packetdrill runs blocking calls on a second thread while its
//! main thread injects packets and sleeps. A call woken by an injected
//! packet or a timer must finish before the clock moves on, or it would
//! return at a later time than the event that woke it. So before moving
//! the clock or looking for packets, the main thread waits (in real time,
//! bounded) until every other thread inside a socket call is parked: it
//! has registered with a socket to be woken and has not been woken since
//! ([`ThreadWaker::is_parked`]). Such a thread does nothing until the
//! stack changes its socket, and its call's effects are in the core
//! already (whatever it left untransmitted goes out in the flush that
//! precedes each clock step, at the time it was made). A thread whose call
//! blocked and has returned is waited for too, until it reads the clock:
//! packetdrill stamps the end of a blocking call right after it returns,
//! and a clock moved in between would stamp it late.

use std::collections::VecDeque;
use std::ffi::{CStr, c_char, c_int, c_longlong, c_uint, c_ulong, c_void};
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use libc::{
    epoll_event, iovec, msghdr, nfds_t, pollfd, size_t, sockaddr, socklen_t, ssize_t, timeval,
};
use ustack_core::Instant;
use ustack_core::device::{Link, Packet};
use ustack_core::runtime::{Clock, Runtime, ThreadWaker};
use ustack_core::stack::{Core, CoreConfig};
use ustack_core::tcp::TcpConfig;

use crate::process;
use crate::{hooks, stack};

/// packetdrill's `struct packetdrill_interface` (gtests/net/packetdrill/
/// packetdrill.h), field for field. `fcntl` and `ioctl` are variadic in C;
/// they take their third argument as one fixed integer-register argument,
/// which is where a variadic caller puts it on x86-64 and AArch64 Linux
/// (the shim's hooks make the same assumption and refuse other targets).
#[repr(C)]
#[allow(clippy::type_complexity)]
pub struct PacketdrillInterface {
    pub userdata: *mut c_void,
    pub free: Option<unsafe extern "C" fn(*mut c_void)>,
    pub socket: Option<unsafe extern "C" fn(*mut c_void, c_int, c_int, c_int) -> c_int>,
    pub bind: Option<unsafe extern "C" fn(*mut c_void, c_int, *const sockaddr, socklen_t) -> c_int>,
    pub listen: Option<unsafe extern "C" fn(*mut c_void, c_int, c_int) -> c_int>,
    pub accept:
        Option<unsafe extern "C" fn(*mut c_void, c_int, *mut sockaddr, *mut socklen_t) -> c_int>,
    pub connect:
        Option<unsafe extern "C" fn(*mut c_void, c_int, *const sockaddr, socklen_t) -> c_int>,
    pub read: Option<unsafe extern "C" fn(*mut c_void, c_int, *mut c_void, size_t) -> ssize_t>,
    pub readv: Option<unsafe extern "C" fn(*mut c_void, c_int, *const iovec, c_int) -> ssize_t>,
    pub recv:
        Option<unsafe extern "C" fn(*mut c_void, c_int, *mut c_void, size_t, c_int) -> ssize_t>,
    pub recvfrom: Option<
        unsafe extern "C" fn(
            *mut c_void,
            c_int,
            *mut c_void,
            size_t,
            c_int,
            *mut sockaddr,
            *mut socklen_t,
        ) -> ssize_t,
    >,
    pub recvmsg: Option<unsafe extern "C" fn(*mut c_void, c_int, *mut msghdr, c_int) -> ssize_t>,
    pub write: Option<unsafe extern "C" fn(*mut c_void, c_int, *const c_void, size_t) -> ssize_t>,
    pub writev: Option<unsafe extern "C" fn(*mut c_void, c_int, *const iovec, c_int) -> ssize_t>,
    pub send:
        Option<unsafe extern "C" fn(*mut c_void, c_int, *const c_void, size_t, c_int) -> ssize_t>,
    pub sendto: Option<
        unsafe extern "C" fn(
            *mut c_void,
            c_int,
            *const c_void,
            size_t,
            c_int,
            *const sockaddr,
            socklen_t,
        ) -> ssize_t,
    >,
    pub sendmsg: Option<unsafe extern "C" fn(*mut c_void, c_int, *const msghdr, c_int) -> ssize_t>,
    pub fcntl: Option<unsafe extern "C" fn(*mut c_void, c_int, c_int, c_ulong) -> c_int>,
    pub ioctl: Option<unsafe extern "C" fn(*mut c_void, c_int, c_ulong, c_ulong) -> c_int>,
    pub close: Option<unsafe extern "C" fn(*mut c_void, c_int) -> c_int>,
    pub shutdown: Option<unsafe extern "C" fn(*mut c_void, c_int, c_int) -> c_int>,
    pub getsockopt: Option<
        unsafe extern "C" fn(
            *mut c_void,
            c_int,
            c_int,
            c_int,
            *mut c_void,
            *mut socklen_t,
        ) -> c_int,
    >,
    pub setsockopt: Option<
        unsafe extern "C" fn(*mut c_void, c_int, c_int, c_int, *const c_void, socklen_t) -> c_int,
    >,
    pub poll: Option<unsafe extern "C" fn(*mut c_void, *mut pollfd, nfds_t, c_int) -> c_int>,
    pub netdev_send: Option<unsafe extern "C" fn(*mut c_void, *const c_void, size_t) -> c_int>,
    pub netdev_receive: Option<
        unsafe extern "C" fn(*mut c_void, *mut c_void, *mut size_t, *mut c_longlong) -> c_int,
    >,
    pub usleep: Option<unsafe extern "C" fn(*mut c_void, c_uint) -> c_int>,
    pub gettimeofday: Option<unsafe extern "C" fn(*mut c_void, *mut timeval, *mut c_void) -> c_int>,
    pub epoll_create: Option<unsafe extern "C" fn(*mut c_void, c_int) -> c_int>,
    pub epoll_ctl:
        Option<unsafe extern "C" fn(*mut c_void, c_int, c_int, c_int, *mut epoll_event) -> c_int>,
    pub epoll_wait:
        Option<unsafe extern "C" fn(*mut c_void, c_int, *mut epoll_event, c_int, c_int) -> c_int>,
    pub pipe: Option<unsafe extern "C" fn(*mut c_void, *mut c_int) -> c_int>,
    pub splice: Option<
        unsafe extern "C" fn(
            *mut c_void,
            c_int,
            *mut libc::loff_t,
            c_int,
            *mut libc::loff_t,
            size_t,
            c_uint,
        ) -> c_int,
    >,
}

/// What [`packetdrill_interface_init`] reads from packetdrill's
/// `--so_flags`: whitespace- or comma-separated `key=value` pairs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flags {
    /// `addr=`: the stack's IPv4 address (packetdrill's `--local_ip`);
    /// default 192.168.0.1, what packetdrill's own suite runs with.
    pub addr: Ipv4Addr,
    /// `addr6=`: the stack's IPv6 address; default `fd3d:a0b:17d6::1`,
    /// the suite's IPv6 `--local_ip`.
    pub addr6: Ipv6Addr,
    /// `mtu=`: the link MTU; default 1500 (the suite passes 1520 for IPv6).
    pub mtu: usize,
}

impl Default for Flags {
    fn default() -> Flags {
        Flags {
            addr: Ipv4Addr::new(192, 168, 0, 1),
            addr6: Ipv6Addr::new(0xfd3d, 0x0a0b, 0x17d6, 0, 0, 0, 0, 1),
            mtu: 1500,
        }
    }
}

impl Flags {
    /// Parses `--so_flags`; an unknown key or a bad value is an error
    /// naming it.
    pub fn parse(s: &str) -> Result<Flags, String> {
        let mut f = Flags::default();
        for item in s.split([' ', ',', '\t']).filter(|i| !i.is_empty()) {
            let (k, v) = item
                .split_once('=')
                .ok_or_else(|| format!("--so_flags: `{item}` is not key=value"))?;
            let bad = || format!("--so_flags: bad {k}: `{v}`");
            match k {
                "addr" => f.addr = v.parse().map_err(|_| bad())?,
                "addr6" => f.addr6 = v.parse().map_err(|_| bad())?,
                "mtu" => {
                    f.mtu = v
                        .parse()
                        .ok()
                        .filter(|m| (1280..=65535).contains(m))
                        .ok_or_else(bad)?;
                }
                _ => return Err(format!("--so_flags: unknown key `{k}`")),
            }
        }
        Ok(f)
    }
}

/// Where virtual time 0 sits on packetdrill's wall clock: 2023-11-14, so
/// `gettimeofday` looks like wall time.
const EPOCH_MICROS: u64 = 1_700_000_000_000_000;
/// The virtual clock's reading when the stack starts.
const START: Instant = Instant::from_millis(1000);
/// The longest the main thread waits (real time) for the other threads'
/// calls to park before moving on anyway.
const QUIESCE_LIMIT: Duration = Duration::from_millis(500);
/// How long `netdev_receive` lets real time pass when the stack has
/// nothing to send and no deadline (packetdrill calls it again at once).
const IDLE_NAP: Duration = Duration::from_millis(1);
/// How many such naps in a row before it gives up (see
/// `pd_netdev_receive`).
const IDLE_ROUNDS: u32 = 300;

/// The most sent packets kept for `netdev_receive`; beyond it the oldest
/// are dropped.
const MAX_QUEUED: usize = 1 << 16;

/// What the stack sent, in order, each with the virtual time it was sent.
type Sent = Arc<Mutex<VecDeque<(Instant, Packet)>>>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The link under the stack: takes everything the core sends and queues it
/// with its time for `netdev_receive`. Nothing arrives through it; packets
/// come in through [`Runtime::inject`].
struct Capture {
    sent: Sent,
    mtu: usize,
}

impl Link for Capture {
    fn recv_batch(&mut self, _: Instant, _: &mut Vec<Packet>, _: usize) -> io::Result<usize> {
        Ok(0)
    }

    fn send_batch(&mut self, now: Instant, batch: &mut Vec<Packet>) -> io::Result<usize> {
        let n = batch.len();
        let mut sent = lock(&self.sent);
        sent.extend(batch.drain(..).map(|p| (now, p)));
        // packetdrill takes every packet it expects; a script that leaves
        // a stream unread must not grow this without bound.
        let excess = sent.len().saturating_sub(MAX_QUEUED);
        sent.drain(..excess);
        Ok(n)
    }

    fn mtu(&self) -> usize {
        self.mtu
    }

    fn wait_fd(&self) -> Option<RawFd> {
        None
    }
}

/// The process's hand-driven stack.
pub struct Adapter {
    flags: Flags,
    rt: &'static Runtime,
    clock: Clock,
    sent: Sent,
    /// Serialises clock moves (the syscall thread's `gettimeofday` against
    /// the main thread's `usleep`), so deadlines run in order.
    advance: Mutex<()>,
    /// The wakers of the threads inside a socket call now.
    in_call: Mutex<Vec<Arc<ThreadWaker>>>,
    /// Threads whose call blocked and has returned, until they read the
    /// clock (packetdrill stamps a blocking call's end right after it
    /// returns): the clock must not move before they do.
    returning: Mutex<Vec<Arc<ThreadWaker>>>,
    /// `netdev_receive` calls in a row that found nothing to return.
    idle_rounds: AtomicU32,
}

static ADAPTER: OnceLock<Result<Adapter, String>> = OnceLock::new();

impl Adapter {
    fn new(flags: &Flags) -> Result<Adapter, String> {
        let clock = Clock::virtual_at(START);
        let sent = Sent::default();
        let core = Core::new(CoreConfig {
            addr: flags.addr,
            addr6: flags.addr6,
            mtu: flags.mtu,
            tcp: TcpConfig {
                // The buffers gtests/net/common/defaults.sh gives the
                // kernel under test (tcp_rmem "4096 540000 15 MiB",
                // tcp_wmem "4096 256 KiB 4 MiB"): the window scale the
                // scripts expect follows from the receive maximum.
                recv_buf: 540_000,
                recv_buf_max: 15 << 20,
                send_buf: 256 << 10,
                send_buf_max: 4 << 20,
                ..TcpConfig::for_mtu(u16::try_from(flags.mtu).unwrap_or(1500), false)
            },
            // Port choice, ISNs and IP IDs the same every run.
            seed: 0x7061_636b_6574_6472,
            ..CoreConfig::default()
        });
        let link = Capture {
            sent: Arc::clone(&sent),
            mtu: flags.mtu,
        };
        let rt = Runtime::manual(core, Box::new(link), clock)
            .map_err(|e| format!("cannot make the runtime: {e}"))?;
        stack::install(rt).map_err(|_| "the process has a stack already".to_string())?;
        let rt = stack::runtime().ok_or("the installed stack is not running")?;
        Ok(Adapter {
            flags: flags.clone(),
            rt,
            clock,
            sent,
            advance: Mutex::new(()),
            in_call: Mutex::new(Vec::new()),
            returning: Mutex::new(Vec::new()),
            idle_rounds: AtomicU32::new(0),
        })
    }

    /// The current virtual time.
    pub fn now(&self) -> Instant {
        self.clock.now()
    }

    /// Waits until every other thread inside a socket call is parked (see
    /// the module docs), for at most [`QUIESCE_LIMIT`].
    fn quiesce(&self) {
        let me = process::thread_waker().ok();
        let other = |w: &Arc<ThreadWaker>| !me.as_ref().is_some_and(|m| Arc::ptr_eq(m, w));
        let start = std::time::Instant::now();
        loop {
            let running = lock(&self.in_call)
                .iter()
                .any(|w| other(w) && !w.is_parked());
            let returning = lock(&self.returning).iter().any(other);
            if !running && !returning {
                return;
            }
            if start.elapsed() > QUIESCE_LIMIT {
                // A thread that returned and never read the clock is not
                // waited for again.
                lock(&self.returning).clear();
                return;
            }
            std::thread::sleep(Duration::from_micros(20));
        }
    }

    /// This thread has read the clock after its call returned.
    fn clock_read(&self) {
        if let Ok(me) = process::thread_waker() {
            lock(&self.returning).retain(|w| !Arc::ptr_eq(w, &me));
        }
    }

    /// Moves the clock to `t`, stopping at every deadline on the way and
    /// letting the threads each one woke run before going on.
    pub fn advance_to(&self, t: Instant) {
        loop {
            self.quiesce();
            let done = {
                let _g = lock(&self.advance);
                self.rt.step_to(t)
            };
            if done {
                break;
            }
        }
        self.quiesce();
    }

    /// Hands one IP datagram to the stack now.
    pub fn inject(&self, packet: &[u8]) {
        self.quiesce();
        let _g = lock(&self.advance);
        self.rt.inject(packet);
    }

    /// The next packet the stack sends, with its virtual time: what it has
    /// queued, or else what it sends at its next deadline (the clock moves
    /// there). `None` when it has nothing queued and no deadline.
    pub fn next_sent(&self) -> Option<(Instant, Packet)> {
        loop {
            self.quiesce();
            {
                let _g = lock(&self.advance);
                self.rt.flush();
            }
            if let Some(p) = lock(&self.sent).pop_front() {
                return Some(p);
            }
            let next = self.rt.next_deadline()?;
            let now = self.now();
            self.advance_to(next.max(now + Duration::from_micros(1)));
        }
    }

    /// The next packet the stack has queued, without moving the clock.
    pub fn take_queued(&self) -> Option<(Instant, Packet)> {
        self.quiesce();
        {
            let _g = lock(&self.advance);
            self.rt.flush();
        }
        lock(&self.sent).pop_front()
    }

    /// Marks this thread as inside a socket call until the guard drops.
    fn enter(&'static self) -> InCall {
        let waker = process::thread_waker().ok();
        if let Some(w) = &waker {
            // A registration that ended without a wake-up (a timeout) must
            // not make this call look parked.
            w.unpark();
            lock(&self.returning).retain(|x| !Arc::ptr_eq(x, w));
            lock(&self.in_call).push(Arc::clone(w));
        }
        let parks = waker.as_ref().map_or(0, |w| w.parks());
        InCall {
            adapter: self,
            waker,
            parks,
        }
    }
}

struct InCall {
    adapter: &'static Adapter,
    waker: Option<Arc<ThreadWaker>>,
    /// The waker's park count at entry.
    parks: u32,
}

impl Drop for InCall {
    fn drop(&mut self) {
        if let Some(w) = &self.waker {
            if w.parks() != self.parks {
                // The call blocked: until this thread reads the clock, its
                // return time is not taken yet.
                lock(&self.adapter.returning).push(Arc::clone(w));
            }
            let mut v = lock(&self.adapter.in_call);
            if let Some(i) = v.iter().position(|x| Arc::ptr_eq(x, w)) {
                v.swap_remove(i);
            }
        }
    }
}

/// The adapter, made on first use with `flags` (later calls get the one
/// made first: a process has one stack).
pub fn adapter_with(flags: &Flags) -> Result<&'static Adapter, String> {
    ADAPTER
        .get_or_init(|| Adapter::new(flags))
        .as_ref()
        .map_err(Clone::clone)
}

fn adapter() -> Option<&'static Adapter> {
    ADAPTER.get()?.as_ref().ok()
}

/// Runs a socket call with this thread marked as inside one. Without a
/// stack (initialisation failed) the call fails with `ENETDOWN` rather than
/// reach the shim, which would start a stack of its own on a TUN device.
fn call<T: From<i8>>(f: impl FnOnce() -> T) -> T {
    let Some(a) = adapter() else {
        // SAFETY: errno is this thread's own.
        unsafe { *libc::__errno_location() = libc::ENETDOWN };
        return T::from(-1);
    };
    let _in = a.enter();
    f()
}

/// packetdrill's entry point: makes the stack (once per process) as
/// `flags` (`--so_flags`, may be null) say, and fills `ifc`. A bad flag is
/// reported on stderr and leaves every socket call failing with `EACCES`.
///
/// # Safety
///
/// `flags` is null or a NUL-terminated string; `ifc` points to a writable
/// `struct packetdrill_interface`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn packetdrill_interface_init(
    flags: *const c_char,
    ifc: *mut PacketdrillInterface,
) {
    if ifc.is_null() {
        return;
    }
    let r = std::panic::catch_unwind(|| {
        let text = if flags.is_null() {
            String::new()
        } else {
            // SAFETY: a NUL-terminated string per the contract.
            unsafe { CStr::from_ptr(flags) }
                .to_string_lossy()
                .into_owned()
        };
        let parsed = Flags::parse(&text).and_then(|f| {
            let a = adapter_with(&f)?;
            if a.flags != f {
                return Err(format!(
                    "--so_flags ask for {f:?}, but the stack was made with {:?} when the library was loaded",
                    a.flags
                ));
            }
            Ok(())
        });
        if let Err(e) = parsed {
            eprintln!("ustack-packetdrill: {e}");
        }
    });
    if r.is_err() {
        eprintln!("ustack-packetdrill: initialisation panicked");
    }
    // SAFETY: `ifc` is writable per the contract; every field is a plain
    // pointer.
    unsafe { ifc.write(interface()) };
}

/// Runs when the library is loaded (preloaded, or dlopened by
/// packetdrill): makes the stack at once, with the flags in
/// `USTACK_PD_FLAGS` (the same syntax as `--so_flags`; unset: the
/// defaults, packetdrill's default addresses). When the runner preloads the library into
/// packetdrill, so that the calls packetdrill makes itself on the stack's
/// fds (`getsockopt(TCP_INFO)` for its `%{ }%` code events, `sendfile`)
/// reach the stack too, packetdrill opens an AF_INET socket of its own
/// before it calls [`packetdrill_interface_init`]; without a stack already
/// installed, that socket would start one from the `USTACK_*` variables on
/// a TUN device.
extern "C" fn at_load() {
    let _ = std::panic::catch_unwind(|| {
        forget_preload();
        // The runner passes the --so_flags here too, since packetdrill
        // gives them only to the init call that comes later.
        let flags = std::env::var("USTACK_PD_FLAGS").unwrap_or_default();
        match Flags::parse(&flags) {
            Ok(f) => drop(adapter_with(&f)),
            Err(e) => eprintln!("ustack-packetdrill: USTACK_PD_FLAGS: {e}"),
        }
    });
}

#[used]
#[unsafe(link_section = ".init_array")]
static AT_LOAD: extern "C" fn() = at_load;

/// The commands a script runs (`sysctl`, `tc`, python) must not inherit a
/// preloaded adapter: drop it from the environment (at load, while the
/// process has one thread).
fn forget_preload() {
    let ours = std::env::var_os("LD_PRELOAD")
        .is_some_and(|v| v.to_string_lossy().contains("ustack_packetdrill"));
    if ours {
        // SAFETY: a NUL-terminated name; at load the process runs one
        // thread, so nothing reads the environment meanwhile.
        unsafe { libc::unsetenv(c"LD_PRELOAD".as_ptr()) };
    }
}

/// The interface with every function filled in.
pub fn interface() -> PacketdrillInterface {
    PacketdrillInterface {
        userdata: std::ptr::null_mut(),
        free: Some(pd_free),
        socket: Some(pd_socket),
        bind: Some(pd_bind),
        listen: Some(pd_listen),
        accept: Some(pd_accept),
        connect: Some(pd_connect),
        read: Some(pd_read),
        readv: Some(pd_readv),
        recv: Some(pd_recv),
        recvfrom: Some(pd_recvfrom),
        recvmsg: Some(pd_recvmsg),
        write: Some(pd_write),
        writev: Some(pd_writev),
        send: Some(pd_send),
        sendto: Some(pd_sendto),
        sendmsg: Some(pd_sendmsg),
        fcntl: Some(pd_fcntl),
        ioctl: Some(pd_ioctl),
        close: Some(pd_close),
        shutdown: Some(pd_shutdown),
        getsockopt: Some(pd_getsockopt),
        setsockopt: Some(pd_setsockopt),
        poll: Some(pd_poll),
        netdev_send: Some(pd_netdev_send),
        netdev_receive: Some(pd_netdev_receive),
        usleep: Some(pd_usleep),
        gettimeofday: Some(pd_gettimeofday),
        epoll_create: Some(pd_epoll_create),
        epoll_ctl: Some(pd_epoll_ctl),
        epoll_wait: Some(pd_epoll_wait),
        pipe: Some(pd_pipe),
        splice: Some(pd_splice),
    }
}

/// Sets errno and returns -1 (for a panic caught at the boundary).
fn fail_eio() -> c_int {
    // SAFETY: errno is this thread's own.
    unsafe { *libc::__errno_location() = libc::EIO };
    -1
}

/// Runs `f`, turning a panic into -1 with `EIO`: nothing unwinds into C.
fn no_unwind(f: impl FnOnce() -> c_int) -> c_int {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| fail_eio())
}

// The socket calls: the shim's hooks (which catch panics and set errno
// themselves), each inside `call`. Safety of each: the contract of the
// libc function of the same name.

unsafe extern "C" fn pd_free(_: *mut c_void) {
    // The process exits after the script; its stack goes with it.
}

unsafe extern "C" fn pd_socket(_: *mut c_void, domain: c_int, ty: c_int, proto: c_int) -> c_int {
    follow_sysctls();
    // SAFETY: see above.
    call(|| unsafe { hooks::socket(domain, ty, proto) })
}

/// The scripts set TCP's sysctls as they would for the kernel (in the
/// runner's private namespace): new sockets follow them, as a kernel
/// socket would. `net.ipv4.tcp_ecn` (0 off, 1 on, 2 accept only) and
/// `net.ipv4.tcp_notsent_lowat` (bytes; 4294967295, its default, none),
/// `tcp_timestamps`, `tcp_sack` and `tcp_window_scaling` (0 off, else
/// on), and the MTU the script gives tun0 (the runner makes tun0 with
/// the MTU of `--so_flags`, so the device stands for the stack's link).
fn follow_sysctls() {
    use ustack_core::tcp::Ecn;
    let Some(a) = adapter() else {
        return;
    };
    let read = |name: &str| {
        std::fs::read_to_string(format!("/proc/sys/net/ipv4/{name}"))
            .ok()
            .map(|v| v.trim().to_string())
    };
    let ecn = match read("tcp_ecn").as_deref() {
        Some("0") => Some(Ecn::Off),
        Some("1") => Some(Ecn::On),
        Some("2") => Some(Ecn::Accept),
        _ => None,
    };
    let lowat = read("tcp_notsent_lowat").and_then(|v| v.parse::<u32>().ok());
    let on = |name: &str| read(name).is_none_or(|v| v != "0");
    let syn_options = (
        on("tcp_timestamps"),
        on("tcp_sack"),
        on("tcp_window_scaling"),
    );
    let mtu = tun0_mtu();
    a.rt.with_core(|core, _| {
        let (ts, sack, ws) = syn_options;
        core.tcp_mut().set_syn_options(ts, sack, ws);
        if let Some(m) = mtu {
            core.set_mtu(m);
        }
        if let Some(ecn) = ecn {
            core.tcp_mut().set_ecn(ecn);
        }
        if let Some(l) = lowat {
            core.tcp_mut()
                .set_notsent_lowat((l != u32::MAX).then_some(l));
        }
    });
}

/// The MTU of the runner's tun0, if there is one: SIOCGIFMTU on a kernel
/// socket of this namespace (/sys shows the namespace it was mounted in).
/// Raw system calls, so neither the socket nor the ioctl is the shim's.
fn tun0_mtu() -> Option<usize> {
    // SAFETY: socket(2) takes no memory.
    let fd = unsafe { libc::syscall(libc::SYS_socket, libc::AF_INET, libc::SOCK_DGRAM, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: ifreq is plain data; all zeroes is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(b"tun0") {
        *d = *s as libc::c_char;
    }
    // SAFETY: SIOCGIFMTU reads the name and writes ifru_mtu inside `req`.
    let rc = unsafe { libc::syscall(libc::SYS_ioctl, fd, libc::SIOCGIFMTU, &mut req) };
    // SAFETY: fd is the socket made above.
    unsafe { libc::syscall(libc::SYS_close, fd) };
    if rc != 0 {
        return None;
    }
    // SAFETY: the ioctl succeeded, so ifru_mtu is the field it wrote.
    let mtu = unsafe { req.ifr_ifru.ifru_mtu };
    usize::try_from(mtu).ok()
}

unsafe extern "C" fn pd_bind(_: *mut c_void, fd: c_int, a: *const sockaddr, l: socklen_t) -> c_int {
    // SAFETY: see above.
    call(|| unsafe { hooks::bind(fd, a, l) })
}

unsafe extern "C" fn pd_listen(_: *mut c_void, fd: c_int, backlog: c_int) -> c_int {
    // SAFETY: see above.
    call(|| unsafe { hooks::listen(fd, backlog) })
}

unsafe extern "C" fn pd_accept(
    _: *mut c_void,
    fd: c_int,
    a: *mut sockaddr,
    l: *mut socklen_t,
) -> c_int {
    // SAFETY: see above.
    call(|| unsafe { hooks::accept(fd, a, l) })
}

unsafe extern "C" fn pd_connect(
    _: *mut c_void,
    fd: c_int,
    a: *const sockaddr,
    l: socklen_t,
) -> c_int {
    // SAFETY: see above.
    call(|| unsafe { hooks::connect(fd, a, l) })
}

unsafe extern "C" fn pd_read(_: *mut c_void, fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t {
    // SAFETY: see above.
    call(|| unsafe { hooks::read(fd, buf, n) })
}

unsafe extern "C" fn pd_readv(_: *mut c_void, fd: c_int, iov: *const iovec, n: c_int) -> ssize_t {
    // SAFETY: see above.
    call(|| unsafe { hooks::readv(fd, iov, n) })
}

unsafe extern "C" fn pd_recv(
    _: *mut c_void,
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    flags: c_int,
) -> ssize_t {
    // SAFETY: see above.
    call(|| unsafe { hooks::recv(fd, buf, n, flags) })
}

unsafe extern "C" fn pd_recvfrom(
    _: *mut c_void,
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    flags: c_int,
    a: *mut sockaddr,
    l: *mut socklen_t,
) -> ssize_t {
    // SAFETY: see above.
    call(|| unsafe { hooks::recvfrom(fd, buf, n, flags, a, l) })
}

unsafe extern "C" fn pd_recvmsg(
    _: *mut c_void,
    fd: c_int,
    m: *mut msghdr,
    flags: c_int,
) -> ssize_t {
    // SAFETY: see above.
    call(|| unsafe { hooks::recvmsg(fd, m, flags) })
}

unsafe extern "C" fn pd_write(_: *mut c_void, fd: c_int, buf: *const c_void, n: size_t) -> ssize_t {
    // SAFETY: see above.
    call(|| unsafe { hooks::write(fd, buf, n) })
}

unsafe extern "C" fn pd_writev(_: *mut c_void, fd: c_int, iov: *const iovec, n: c_int) -> ssize_t {
    // SAFETY: see above.
    call(|| unsafe { hooks::writev(fd, iov, n) })
}

unsafe extern "C" fn pd_send(
    _: *mut c_void,
    fd: c_int,
    buf: *const c_void,
    n: size_t,
    flags: c_int,
) -> ssize_t {
    // SAFETY: see above.
    call(|| unsafe { hooks::send(fd, buf, n, flags) })
}

unsafe extern "C" fn pd_sendto(
    _: *mut c_void,
    fd: c_int,
    buf: *const c_void,
    n: size_t,
    flags: c_int,
    a: *const sockaddr,
    l: socklen_t,
) -> ssize_t {
    // SAFETY: see above.
    call(|| unsafe { hooks::sendto(fd, buf, n, flags, a, l) })
}

unsafe extern "C" fn pd_sendmsg(
    _: *mut c_void,
    fd: c_int,
    m: *const msghdr,
    flags: c_int,
) -> ssize_t {
    // SAFETY: see above.
    call(|| unsafe { hooks::sendmsg(fd, m, flags) })
}

unsafe extern "C" fn pd_fcntl(_: *mut c_void, fd: c_int, cmd: c_int, arg: c_ulong) -> c_int {
    // SAFETY: see above.
    call(|| unsafe { hooks::fcntl(fd, cmd, arg) })
}

unsafe extern "C" fn pd_ioctl(_: *mut c_void, fd: c_int, req: c_ulong, arg: c_ulong) -> c_int {
    // SAFETY: see above.
    call(|| unsafe { hooks::ioctl(fd, req, arg) })
}

unsafe extern "C" fn pd_close(_: *mut c_void, fd: c_int) -> c_int {
    // SAFETY: see above.
    call(|| unsafe { hooks::close(fd) })
}

unsafe extern "C" fn pd_shutdown(_: *mut c_void, fd: c_int, how: c_int) -> c_int {
    // SAFETY: see above.
    call(|| unsafe { hooks::shutdown(fd, how) })
}

unsafe extern "C" fn pd_getsockopt(
    _: *mut c_void,
    fd: c_int,
    level: c_int,
    name: c_int,
    val: *mut c_void,
    len: *mut socklen_t,
) -> c_int {
    // SAFETY: see above.
    call(|| unsafe { hooks::getsockopt(fd, level, name, val, len) })
}

unsafe extern "C" fn pd_setsockopt(
    _: *mut c_void,
    fd: c_int,
    level: c_int,
    name: c_int,
    val: *const c_void,
    len: socklen_t,
) -> c_int {
    // SAFETY: see above.
    call(|| unsafe { hooks::setsockopt(fd, level, name, val, len) })
}

unsafe extern "C" fn pd_poll(_: *mut c_void, fds: *mut pollfd, n: nfds_t, timeout: c_int) -> c_int {
    // SAFETY: see above.
    call(|| unsafe { hooks::poll(fds, n, timeout) })
}

unsafe extern "C" fn pd_epoll_create(_: *mut c_void, size: c_int) -> c_int {
    // SAFETY: see above.
    call(|| unsafe { hooks::epoll_create(size) })
}

unsafe extern "C" fn pd_epoll_ctl(
    _: *mut c_void,
    epfd: c_int,
    op: c_int,
    fd: c_int,
    ev: *mut epoll_event,
) -> c_int {
    // SAFETY: see above.
    call(|| unsafe { hooks::epoll_ctl(epfd, op, fd, ev) })
}

unsafe extern "C" fn pd_epoll_wait(
    _: *mut c_void,
    epfd: c_int,
    evs: *mut epoll_event,
    max: c_int,
    timeout: c_int,
) -> c_int {
    // SAFETY: see above.
    call(|| unsafe { hooks::epoll_wait(epfd, evs, max, timeout) })
}

unsafe extern "C" fn pd_pipe(_: *mut c_void, fds: *mut c_int) -> c_int {
    // SAFETY: see above.
    call(|| unsafe { hooks::pipe(fds) })
}

unsafe extern "C" fn pd_splice(
    _: *mut c_void,
    fd_in: c_int,
    off_in: *mut libc::loff_t,
    fd_out: c_int,
    off_out: *mut libc::loff_t,
    len: size_t,
    flags: c_uint,
) -> c_int {
    // The stack's sockets have no pipe buffers to splice through: the
    // kernel's splice sees their eventfds and fails (EINVAL).
    // SAFETY: see above.
    let n = unsafe { libc::splice(fd_in, off_in, fd_out, off_out, len, flags) };
    c_int::try_from(n).unwrap_or(c_int::MAX)
}

/// netdev_send: one IP datagram into the stack, at the current virtual
/// time.
unsafe extern "C" fn pd_netdev_send(_: *mut c_void, buf: *const c_void, n: size_t) -> c_int {
    no_unwind(|| {
        let Some(a) = adapter() else { return -1 };
        if buf.is_null() {
            return -1;
        }
        // SAFETY: packetdrill hands `n` readable bytes.
        let packet = unsafe { std::slice::from_raw_parts(buf.cast::<u8>(), n) };
        a.inject(packet);
        0
    })
}

/// netdev_receive: the next datagram the stack sends and its time. With
/// nothing queued and no deadline, returns -1 after a short nap (packetdrill
/// calls again: a syscall it has yet to start may send something).
unsafe extern "C" fn pd_netdev_receive(
    _: *mut c_void,
    buf: *mut c_void,
    count: *mut size_t,
    time_usecs: *mut c_longlong,
) -> c_int {
    no_unwind(|| {
        let Some(a) = adapter() else { return -1 };
        if buf.is_null() || count.is_null() || time_usecs.is_null() {
            return -1;
        }
        let Some((t, p)) = a.next_sent() else {
            // Nothing queued, no timer, every other thread parked: only
            // packetdrill could change that, and it is waiting here. After
            // a grace period (a syscall packetdrill has just handed to its
            // other thread gets time to start), end the wait with an empty
            // packet, which packetdrill reports as an error, rather than
            // hang until the runner's time limit.
            let idle = a.idle_rounds.fetch_add(1, Ordering::Relaxed) + 1;
            if idle < IDLE_ROUNDS {
                std::thread::sleep(IDLE_NAP);
                return -1;
            }
            a.idle_rounds.store(0, Ordering::Relaxed);
            eprintln!(
                "ustack-packetdrill: the stack has nothing to send and no timer pending at {:.6} s (virtual); giving packetdrill an empty packet",
                a.now().total_micros() as f64 / 1e6
            );
            // SAFETY: `count` is writable per packetdrill.
            unsafe {
                *count = 0;
                *time_usecs = wall_micros(a.now());
            }
            return 0;
        };
        a.idle_rounds.store(0, Ordering::Relaxed);
        // SAFETY: `count` is readable and writable per packetdrill.
        let room = unsafe { *count };
        let n = p.len().min(room);
        // SAFETY: `buf` holds `room` writable bytes; `n <= room`.
        unsafe {
            std::ptr::copy_nonoverlapping(p.as_ptr(), buf.cast::<u8>(), n);
            *count = n;
            *time_usecs = wall_micros(t);
        }
        0
    })
}

/// usleep: moves the virtual clock, running every deadline on the way.
unsafe extern "C" fn pd_usleep(_: *mut c_void, us: c_uint) -> c_int {
    no_unwind(|| {
        let Some(a) = adapter() else { return -1 };
        a.advance_to(a.now() + Duration::from_micros(u64::from(us)));
        0
    })
}

/// gettimeofday: the virtual time on packetdrill's wall clock. Each call
/// moves the clock by a microsecond, because packetdrill spins on it for
/// the last microseconds before an event.
unsafe extern "C" fn pd_gettimeofday(_: *mut c_void, tv: *mut timeval, _: *mut c_void) -> c_int {
    no_unwind(|| {
        let Some(a) = adapter() else { return -1 };
        let t = {
            let _g = lock(&a.advance);
            let t = a.now() + Duration::from_micros(1);
            while !a.rt.step_to(t) {}
            a.now()
        };
        a.clock_read();
        if !tv.is_null() {
            let us = wall_micros(t);
            // SAFETY: `tv` is writable per the contract of gettimeofday.
            unsafe {
                (*tv).tv_sec = (us / 1_000_000) as libc::time_t;
                (*tv).tv_usec = (us % 1_000_000) as libc::suseconds_t;
            }
        }
        0
    })
}

/// A virtual instant on packetdrill's wall clock, in microseconds.
pub fn wall_micros(t: Instant) -> c_longlong {
    c_longlong::try_from(EPOCH_MICROS + t.total_micros()).unwrap_or(c_longlong::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn so_flags_set_addresses_and_mtu_and_reject_the_unknown() {
        assert_eq!(Flags::parse("").unwrap(), Flags::default());
        let f = Flags::parse("addr=10.0.0.7, addr6=fd00::7 mtu=1520").unwrap();
        assert_eq!(f.addr, Ipv4Addr::new(10, 0, 0, 7));
        assert_eq!(f.addr6, "fd00::7".parse::<Ipv6Addr>().unwrap());
        assert_eq!(f.mtu, 1520);
        assert!(Flags::parse("addr=300.1.1.1").unwrap_err().contains("addr"));
        assert!(Flags::parse("mtu=100").is_err());
        assert!(Flags::parse("colour=blue").unwrap_err().contains("colour"));
        assert!(Flags::parse("addr").is_err());
    }

    #[test]
    fn wall_time_is_virtual_time_past_a_fixed_epoch() {
        assert_eq!(
            wall_micros(Instant::from_micros(1_500_000)),
            1_700_000_001_500_000
        );
    }
}
