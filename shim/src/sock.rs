//! A virtual socket and the operations on it, in errno terms: [`VSock`],
//! on the in-process stack, with [`Proto`], the table of its protocol's
//! operations (implemented in `ops::tcp` and `ops::udp`), and [`Remote`],
//! the fd table's record of a shared-stack socket (an AF_UNIX pair; its
//! calls are in `shared`).
//!
//! Owns the per-open-file state the core does not keep: blocking mode,
//! timeouts, stored options. Blocking calls wait in a real `poll(2)` on the
//! thread's eventfd (`ThreadWaker`), registered with the socket under the
//! runtime lock after the operation said `EAGAIN`, so no wake-up is lost and
//! a signal ends the wait with `EINTR`.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ustack_core::Instant;
use ustack_core::runtime::Runtime;
use ustack_core::stack::{Core, Shutdown, SocketHandle};

use crate::process::{self, EFORKED};

pub type Res<T> = Result<T, i32>;

/// The errno of an error from the core.
pub fn errno_of(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EIO)
}

/// Options the shim keeps for the socket (the core keeps the rest).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stored {
    pub reuse_port: bool,
    /// SO_LINGER as set: (on, seconds).
    pub linger: (bool, i32),
    /// TCP_KEEPIDLE / TCP_KEEPINTVL / TCP_KEEPCNT (Linux defaults).
    pub keep_idle: u32,
    pub keep_intvl: u32,
    pub keep_cnt: u32,
    pub maxseg: Option<u32>,
    /// UDP SO_RCVBUF / SO_SNDBUF as set (the core's UDP buffer is fixed).
    pub udp_bufs: (usize, usize),
    /// TCP_INQ: recvmsg adds a TCP_CM_INQ control message.
    pub inq: bool,
}

impl Default for Stored {
    fn default() -> Self {
        Stored {
            reuse_port: false,
            linger: (false, 0),
            keep_idle: 7200,
            keep_intvl: 75,
            keep_cnt: 9,
            maxseg: None,
            udp_bufs: (106_496, 106_496),
            inq: false,
        }
    }
}

/// One protocol's operations on an in-process virtual socket. Calls that
/// do not apply to a protocol keep the default (Linux's errno for them).
/// The option methods answer `None` for an option that is not the
/// protocol's own, which `sockopt` then handles the same for every
/// protocol.
pub trait Proto: Sync {
    /// SOCK_STREAM or SOCK_DGRAM.
    fn sock_type(&self) -> i32;
    /// IPPROTO_TCP or IPPROTO_UDP.
    fn protocol(&self) -> i32;
    /// A new core socket.
    fn open(&self, core: &mut Core, v6: bool) -> io::Result<SocketHandle>;
    fn bind(&self, s: &VSock, a: SocketAddr) -> Res<()>;
    fn listen(&self, _s: &VSock, _backlog: usize) -> Res<()> {
        Err(libc::EOPNOTSUPP)
    }
    /// accept4(2) with checked flags: the new fd and the peer.
    fn accept(&self, _s: &VSock, _flags: i32) -> Res<(i32, SocketAddr)> {
        Err(libc::EOPNOTSUPP)
    }
    /// connect(2); `None` is AF_UNSPEC (dissolve an association).
    fn connect(&self, s: &VSock, target: Option<SocketAddr>) -> Res<()>;
    /// The local and the peer address, as far as known.
    fn addrs(&self, s: &VSock) -> Res<(Option<SocketAddr>, Option<SocketAddr>)>;
    fn shutdown(&self, s: &VSock, how: Shutdown) -> Res<()>;
    /// Bytes taken; `nonblocking` already folds in MSG_DONTWAIT.
    fn send(
        &self,
        s: &VSock,
        data: &[u8],
        flags: i32,
        dst: Option<SocketAddr>,
        nonblocking: bool,
    ) -> Res<usize>;
    fn recv(&self, s: &VSock, buf: &mut [u8], flags: i32, nonblocking: bool) -> Res<Received>;
    /// FIONREAD.
    fn readable_bytes(&self, s: &VSock) -> Res<usize>;
    /// SIOCOUTQ: bytes not yet acknowledged.
    fn unsent_bytes(&self, _s: &VSock) -> Res<usize> {
        Ok(0)
    }
    /// Readiness as poll(2) bits. Whoever asks becomes the baseline for
    /// change notification (see `TcpMut::readiness`).
    fn poll_bits(&self, core: &mut Core, s: &VSock) -> i16;
    /// SO_ERROR: the pending error, cleared.
    fn take_error(&self, s: &VSock) -> Res<Option<std::io::Error>>;
    fn get_option(&self, s: &VSock, level: i32, name: i32) -> Option<Res<Value>>;
    fn set_option(&self, s: &VSock, level: i32, name: i32, val: &[u8]) -> Option<Res<()>>;
    /// Sets on a kernel socket (through `setint(level, name, value)`) the
    /// protocol's options the program set, for the loopback hand-off;
    /// `st` is the socket's `Stored`, read once by the caller (the core is
    /// locked here).
    fn kernel_options(
        &self,
        core: &mut Core,
        s: &VSock,
        st: &Stored,
        setint: &mut dyn FnMut(i32, i32, i32),
    );
}

/// What a receive returned: bytes copied, the datagram's full length, and
/// its source.
pub struct Received {
    pub n: usize,
    pub full: usize,
    pub from: Option<SocketAddr>,
}

/// An option value on its way out: the bytes to copy (truncated to the
/// caller's length).
pub enum Value {
    Int(i32),
    Bytes(Vec<u8>),
}

impl Value {
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            Value::Int(v) => v.to_ne_bytes().to_vec(),
            Value::Bytes(b) => b.clone(),
        }
    }
}

/// One socket in the core, shared by every fd that dups it.
pub struct VSock {
    rt: &'static Runtime,
    pub handle: SocketHandle,
    /// Its protocol's operations (`ops::tcp::TCP` or `ops::udp::UDP`).
    pub proto: &'static dyn Proto,
    pub v6: bool,
    /// O_NONBLOCK (per open file, so shared by dups, as in the kernel).
    nonblocking: AtomicBool,
    /// SO_RCVTIMEO / SO_SNDTIMEO in microseconds; 0 is none.
    rcvtimeo: AtomicU64,
    sndtimeo: AtomicU64,
    /// Bumped by every I/O call, so edge-triggered epoll reports readiness
    /// again after the program acted on it.
    pub io_gen: AtomicU32,
    pub stored: Mutex<Stored>,
}

impl VSock {
    pub fn new(
        rt: &'static Runtime,
        handle: SocketHandle,
        proto: &'static dyn Proto,
        v6: bool,
        nonblocking: bool,
    ) -> VSock {
        VSock {
            rt,
            handle,
            proto,
            v6,
            nonblocking: AtomicBool::new(nonblocking),
            rcvtimeo: AtomicU64::new(0),
            sndtimeo: AtomicU64::new(0),
            io_gen: AtomicU32::new(0),
            stored: Mutex::new(Stored::default()),
        }
    }

    /// The stack the socket lives on; `EFORKED` in a fork child, where the
    /// stack is the parent's.
    pub fn rt(&self) -> Res<&'static Runtime> {
        if process::forked() {
            Err(EFORKED)
        } else {
            Ok(self.rt)
        }
    }

    pub fn family(&self) -> i32 {
        if self.v6 {
            libc::AF_INET6
        } else {
            libc::AF_INET
        }
    }

    pub fn sock_type(&self) -> i32 {
        self.proto.sock_type()
    }

    /// A stream socket (TCP), not a datagram one.
    pub fn is_stream(&self) -> bool {
        self.sock_type() == libc::SOCK_STREAM
    }

    pub fn nonblocking(&self) -> bool {
        self.nonblocking.load(Ordering::Relaxed)
    }

    pub fn set_nonblocking(&self, on: bool) {
        self.nonblocking.store(on, Ordering::Relaxed);
    }

    pub fn timeout(&self, write: bool) -> Option<Duration> {
        let t = if write {
            &self.sndtimeo
        } else {
            &self.rcvtimeo
        };
        match t.load(Ordering::Relaxed) {
            0 => None,
            us => Some(Duration::from_micros(us)),
        }
    }

    pub fn set_timeout(&self, write: bool, t: Option<Duration>) {
        let us = t.map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        let t = if write {
            &self.sndtimeo
        } else {
            &self.rcvtimeo
        };
        t.store(us, Ordering::Relaxed);
    }

    pub fn stored(&self) -> std::sync::MutexGuard<'_, Stored> {
        self.stored.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn touch(&self) {
        self.io_gen.fetch_add(1, Ordering::Relaxed);
    }

    /// Runs `op` on the core once.
    pub fn with<T>(&self, op: impl FnOnce(&mut Core, Instant) -> io::Result<T>) -> Res<T> {
        let rt = self.rt()?;
        let r = rt.with_core(op);
        rt.transmit_now();
        r.map_err(|e| errno_of(&e))
    }

    /// Runs `op` until it stops saying `EAGAIN`: once when `nonblocking`,
    /// otherwise waiting for readiness changes, up to `timeout` (then
    /// `EAGAIN`); a signal ends the wait with `EINTR`.
    pub fn block<T>(
        &self,
        nonblocking: bool,
        timeout: Option<Duration>,
        op: impl FnMut(&mut Core, Instant) -> io::Result<T>,
    ) -> Res<T> {
        let rt = self.rt()?;
        let waker = if nonblocking {
            None
        } else {
            Some(process::thread_waker().map_err(|e| errno_of(&e))?)
        };
        let start = std::time::Instant::now();
        rt.block_on(self.handle, waker.as_ref(), op, |w| {
            let remaining = match timeout {
                Some(t) => {
                    let spent = start.elapsed();
                    if spent >= t {
                        return Err(io::Error::from_raw_os_error(libc::EAGAIN));
                    }
                    Some(t - spent)
                }
                None => None,
            };
            // With a timeout Linux fails an interrupted call with EINTR
            // whatever the handler's flags; without one it honours
            // SA_RESTART, which the blocking read gives us.
            match remaining {
                Some(_) => wait_fd(w.as_raw_fd(), remaining),
                None => wait_fd_restartable(w.as_raw_fd()),
            }
            .map_err(io::Error::from_raw_os_error)
        })
        .map_err(|e| errno_of(&e))
    }

    /// Wakes every thread blocked on the socket (after a shutdown).
    pub fn wake_all(&self) {
        if let Ok(rt) = self.rt() {
            rt.with_state(|st, _| st.waiters.wake(self.handle));
        }
    }
}

impl Drop for VSock {
    fn drop(&mut self) {
        if let Ok(rt) = self.rt() {
            rt.with_state(|st, _| {
                // EBADF means the core dropped it already: nothing to do.
                let _ = st.core.close(self.handle);
                st.waiters.remove(self.handle);
            });
            rt.wake();
        }
    }
}

/// Sleeps until `fd` (this thread's waker eventfd) is signalled, in a
/// blocking `read(2)`: unlike poll, the kernel restarts a read interrupted
/// by a SA_RESTART handler and fails it with EINTR otherwise, which is what
/// a kernel socket call without a timeout does.
pub fn wait_fd_restartable(fd: i32) -> Res<()> {
    // SAFETY: F_GETFL/F_SETFL on this thread's own eventfd, which only this
    // thread reads; other threads only write to it.
    let flags = unsafe { crate::real::fcntl(fd, libc::F_GETFL, 0) };
    if flags < 0 {
        return Err(crate::real::errno());
    }
    // SAFETY: as above.
    unsafe { crate::real::fcntl(fd, libc::F_SETFL, (flags & !libc::O_NONBLOCK) as _) };
    let mut v: u64 = 0;
    // SAFETY: reads 8 bytes into a live u64.
    let n = unsafe { crate::real::read(fd, (&mut v as *mut u64).cast(), 8) };
    let e = crate::real::errno();
    // SAFETY: as above.
    unsafe { crate::real::fcntl(fd, libc::F_SETFL, flags as _) };
    if n < 0 { Err(e) } else { Ok(()) }
}

/// Sleeps in the real poll until `fd` is readable or `timeout` passes;
/// `EINTR` on a signal.
pub fn wait_fd(fd: i32, timeout: Option<Duration>) -> Res<()> {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = timeout.map_or(-1, |t| {
        // Round up so a short timeout does not spin.
        i32::try_from(t.as_micros().div_ceil(1000)).unwrap_or(i32::MAX)
    });
    // SAFETY: one live pollfd.
    let n = unsafe { crate::real::poll(&mut p, 1, ms) };
    if n < 0 {
        return Err(crate::real::errno());
    }
    Ok(())
}

/// Readiness of a virtual socket as poll(2) bits. Whoever asks becomes the
/// baseline for change notification (see `TcpMut::readiness`).
pub fn poll_bits(core: &mut Core, s: &VSock) -> i16 {
    s.proto.poll_bits(core, s)
}

/// Whether an address stays on kernel sockets (loopback).
pub fn is_loopback(a: &SocketAddr) -> bool {
    match a {
        SocketAddr::V4(v) => v.ip().is_loopback(),
        SocketAddr::V6(v) => {
            v.ip().is_loopback() || v.ip().to_ipv4_mapped().is_some_and(|m| m.is_loopback())
        }
    }
}

/// A socket on the shared stack, as the program's fd table knows it.
pub struct Remote {
    pub tcp: bool,
    pub v6: bool,
    /// Options set on it (level, name, value), replayed if the socket
    /// becomes a kernel socket for loopback.
    pub opts: Mutex<Vec<(i32, i32, Vec<u8>)>>,
    /// The daemon said it listens (a listener stays one): accept asks
    /// only once per process.
    pub(crate) listening: AtomicBool,
    /// Known to be past Fresh (connected or connecting here, accepted, or
    /// so the daemon said): reads and sends go straight to the pair.
    pub(crate) started: AtomicBool,
    /// A connect here returned EINPROGRESS and was not yet seen to end:
    /// sends check the pair is writable first (see `shared::sendable`).
    pub(crate) connecting: AtomicBool,
}

impl Remote {
    pub(crate) fn new(tcp: bool, v6: bool) -> Arc<Remote> {
        Arc::new(Remote {
            tcp,
            v6,
            opts: Mutex::new(Vec::new()),
            listening: AtomicBool::new(false),
            started: AtomicBool::new(false),
            connecting: AtomicBool::new(false),
        })
    }

    pub(crate) fn accepted(v6: bool) -> Arc<Remote> {
        let r = Remote::new(true, v6);
        r.started.store(true, Ordering::Relaxed);
        r
    }
}
