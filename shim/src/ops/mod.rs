//! Socket calls on in-process virtual sockets, in errno terms: the hooks
//! decide which fds are virtual, these do the work.
//!
//! What every protocol shares lives here (fd numbers, argument and family
//! checks, the loopback hand-off to a kernel socket); what differs is a
//! [`Proto`], one table of operations per protocol, as OpenOnload keeps
//! one per fd type: [`tcp::TCP`] and [`udp::UDP`]. A socket points at its
//! table ([`VSock::proto`]), so no call here branches on the protocol.
//! Must not touch: shared-stack sockets (`shared`), the fd table's
//! bookkeeping beyond inserting and removing (`table`).

use std::net::SocketAddr;
use std::sync::Arc;

use ustack_core::stack::Shutdown;

use crate::addr::{self, Parsed};
use crate::process;
use crate::real;
pub use crate::sock::{Proto, Received};
use crate::sock::{Res, Stored, VSock};
use crate::stack::{self, Stack};
use crate::table::{self, Entry};

pub mod tcp;
pub mod udp;

/// A new real eventfd to stand for a virtual socket.
fn backing_fd(cloexec: bool, nonblocking: bool) -> Res<i32> {
    let mut flags = 0;
    if cloexec {
        flags |= libc::EFD_CLOEXEC;
    }
    if nonblocking {
        flags |= libc::EFD_NONBLOCK;
    }
    // SAFETY: eventfd takes no pointers.
    let fd = unsafe { real::eventfd(0, flags) };
    if fd < 0 {
        return Err(real::errno());
    }
    Ok(fd)
}

/// A fresh fd number for a virtual socket, taken before its core socket
/// exists (Linux's accept also takes the number before it waits). Blocking
/// (and poll) on a virtual socket needs this thread's waker, an eventfd
/// made on first use: it is made here, so a program that fills its fd
/// table with sockets gets EMFILE from socket() or accept(), as on Linux,
/// and not from a later connect() or read() that Linux would have served.
fn reserve(cloexec: bool, nonblocking: bool) -> Res<i32> {
    process::thread_waker().map_err(|e| crate::sock::errno_of(&e))?;
    backing_fd(cloexec, nonblocking)
}

/// Registers a new core socket at a fresh fd number.
fn install(s: VSock, cloexec: bool) -> Res<i32> {
    // On failure `s` drops, and with it the core socket.
    let fd = reserve(cloexec, s.nonblocking())?;
    drop(table::insert(fd, Entry::Sock(Arc::new(s))));
    Ok(fd)
}

/// What socket() should do for an AF_INET/AF_INET6 request.
pub enum Route {
    Virtual(i32),
    Kernel,
}

/// socket(2) for a family and type that go to the stack.
pub fn socket(v6: bool, tcp: bool, flags: i32) -> Res<Route> {
    match stack::get() {
        Stack::Kernel => Ok(Route::Kernel),
        Stack::Shared => crate::shared::socket(v6, tcp, flags).map(Route::Virtual),
        Stack::Fail(e) => Err(*e),
        Stack::Up { rt, .. } => {
            let proto: &'static dyn Proto = if tcp { &tcp::TCP } else { &udp::UDP };
            let h = rt
                .with_core(|core, _| proto.open(core, v6))
                .map_err(|e| crate::sock::errno_of(&e))?;
            let s = VSock::new(rt, h, proto, v6, flags & libc::SOCK_NONBLOCK != 0);
            install(s, flags & libc::SOCK_CLOEXEC != 0).map(Route::Virtual)
        }
    }
}

/// Replaces a virtual socket at `fd` by a kernel socket of the same kind
/// and options (it is about to bind or connect to loopback).
pub fn to_kernel(fd: i32, s: &VSock) -> Res<()> {
    let mut ty = s.sock_type();
    if s.nonblocking() {
        ty |= libc::SOCK_NONBLOCK;
    }
    // SAFETY: plain integer arguments.
    let k = unsafe { real::socket(s.family(), ty, 0) };
    if k < 0 {
        return Err(real::errno());
    }
    copy_options(k, s);
    // SAFETY: F_GETFD takes no argument.
    let cloexec = unsafe { real::fcntl(fd, libc::F_GETFD, 0) } & libc::FD_CLOEXEC != 0;
    let flags = if cloexec { libc::O_CLOEXEC } else { 0 };
    // SAFETY: both are our fds; dup3 atomically replaces the eventfd.
    let r = unsafe { real::dup3(k, fd, flags) };
    let e = real::errno();
    // SAFETY: `k` is ours and now duplicated (or useless).
    unsafe { real::close(k) };
    if r < 0 {
        return Err(e);
    }
    drop(table::remove(fd));
    Ok(())
}

/// Sets on kernel socket `k` every option the program set on the virtual
/// socket `s`, in the order Linux needs them before bind and connect:
/// address reuse and IPV6_V6ONLY before bind; the buffer sizes and
/// TCP_MAXSEG before the SYN (they fix the window scale and the MSS, and
/// a set size stops the kernel's auto-tuning, as it would have on a
/// kernel socket from the start); keepalive parameters before
/// SO_KEEPALIVE. Options left at their defaults are not set, so the
/// kernel socket keeps the kernel's defaults. A refused option is logged
/// (the values were checked when the program set them).
fn copy_options(k: i32, s: &VSock) {
    let set = |level: i32, name: i32, bytes: &[u8]| {
        // SAFETY: a live buffer and its length.
        let r =
            unsafe { real::setsockopt(k, level, name, bytes.as_ptr().cast(), bytes.len() as u32) };
        if r < 0 {
            log::warn!(
                "loopback handoff: setsockopt level {level} option {name}: errno {}",
                real::errno()
            );
        }
    };
    let mut setint = |level: i32, name: i32, v: i32| set(level, name, &v.to_ne_bytes());
    let st = *s.stored();
    let dflt = Stored::default();
    if st.reuse_port {
        setint(libc::SOL_SOCKET, libc::SO_REUSEPORT, 1);
    }
    if let Ok(rt) = s.rt() {
        rt.with_core(|core, _| s.proto.kernel_options(core, s, &st, &mut setint));
    }
    if st.linger != dflt.linger {
        let (on, secs) = st.linger;
        let mut b = i32::from(on).to_ne_bytes().to_vec();
        b.extend_from_slice(&secs.to_ne_bytes());
        set(libc::SOL_SOCKET, libc::SO_LINGER, &b);
    }
    for (write, name) in [(false, libc::SO_RCVTIMEO), (true, libc::SO_SNDTIMEO)] {
        if let Some(t) = s.timeout(write) {
            let tv = libc::timeval {
                tv_sec: t.as_secs() as libc::time_t,
                tv_usec: t.subsec_micros() as libc::suseconds_t,
            };
            // SAFETY: reading the bytes of a plain-data struct we own.
            let b = unsafe {
                std::slice::from_raw_parts(
                    (&tv as *const libc::timeval).cast::<u8>(),
                    size_of::<libc::timeval>(),
                )
            };
            set(libc::SOL_SOCKET, name, b);
        }
    }
}

fn want_family(s: &VSock, a: SocketAddr) -> Res<SocketAddr> {
    match (s.v6, a) {
        (false, SocketAddr::V6(_)) => Err(libc::EAFNOSUPPORT),
        (true, SocketAddr::V4(_)) => Err(libc::EAFNOSUPPORT),
        _ => Ok(a),
    }
}

/// A destination for connect or sendto: an IPv4 address given to an IPv6
/// socket is taken as its mapped form; otherwise the families must match.
fn connect_family(s: &VSock, a: SocketAddr) -> Res<SocketAddr> {
    match (s.v6, a) {
        (true, SocketAddr::V4(_)) => Ok(addr::present(true, a)),
        _ => want_family(s, a),
    }
}

pub fn bind(s: &VSock, a: SocketAddr) -> Res<()> {
    s.proto.bind(s, want_family(s, a)?)
}

pub fn listen(s: &VSock, backlog: i32) -> Res<()> {
    s.proto.listen(s, backlog.clamp(1, 4096) as usize)
}

/// accept4(2): the new fd and the peer.
pub fn accept(s: &VSock, flags: i32) -> Res<(i32, SocketAddr)> {
    s.touch();
    s.proto.accept(s, flags)
}

pub fn connect(s: &VSock, target: Parsed) -> Res<()> {
    s.touch();
    s.proto.connect(
        s,
        match target {
            Parsed::Unspec => None,
            Parsed::Addr(a) => Some(a),
        },
    )
}

pub fn sockname(s: &VSock) -> Res<SocketAddr> {
    let (local, _) = s.proto.addrs(s)?;
    Ok(addr::present(
        s.v6,
        local.unwrap_or_else(|| addr::unspecified(s.v6)),
    ))
}

pub fn peername(s: &VSock) -> Res<SocketAddr> {
    let (_, peer) = s.proto.addrs(s)?;
    peer.map(|a| addr::present(s.v6, a)).ok_or(libc::ENOTCONN)
}

pub fn shutdown(s: &VSock, how: i32) -> Res<()> {
    let how = match how {
        libc::SHUT_RD => Shutdown::Read,
        libc::SHUT_WR => Shutdown::Write,
        libc::SHUT_RDWR => Shutdown::Both,
        _ => return Err(libc::EINVAL),
    };
    s.proto.shutdown(s, how)
}

/// Raises SIGPIPE for an EPIPE unless the caller said MSG_NOSIGNAL.
pub(crate) fn sigpipe(e: i32, flags: i32) -> i32 {
    if e == libc::EPIPE && flags & libc::MSG_NOSIGNAL == 0 {
        // SAFETY: raise has no memory arguments.
        unsafe { libc::raise(libc::SIGPIPE) };
    }
    e
}

/// send/sendto/sendmsg/write: bytes taken.
pub fn send(s: &VSock, data: &[u8], flags: i32, dst: Option<SocketAddr>) -> Res<usize> {
    s.touch();
    let nonblocking = s.nonblocking() || flags & libc::MSG_DONTWAIT != 0;
    s.proto.send(s, data, flags, dst, nonblocking)
}

/// recv/recvfrom/recvmsg/read.
pub fn recv(s: &VSock, buf: &mut [u8], flags: i32) -> Res<Received> {
    s.touch();
    let nonblocking = s.nonblocking() || flags & libc::MSG_DONTWAIT != 0;
    s.proto.recv(s, buf, flags, nonblocking)
}

/// FIONREAD: bytes readable (TCP) or the next datagram's size (UDP).
pub fn readable_bytes(s: &VSock) -> Res<usize> {
    s.proto.readable_bytes(s)
}

/// SIOCOUTQ: bytes not yet acknowledged.
pub fn unsent_bytes(s: &VSock) -> Res<usize> {
    s.proto.unsent_bytes(s)
}
