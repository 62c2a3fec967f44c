//! Socket calls on virtual sockets, in errno terms: the hooks decide
//! which fds are virtual, these do the work.

use std::net::SocketAddr;
use std::sync::Arc;

use ustack_core::stack::Shutdown;

use crate::addr::{self, Parsed};
use crate::process;
use crate::real;
use crate::sock::{Res, Stored, VSock};
use crate::stack::{self, Stack};
use crate::table::{self, Entry};

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
            let h = rt
                .with_core(|core, _| {
                    if tcp {
                        core.tcp_mut().socket(v6)
                    } else {
                        core.udp_socket(v6)
                    }
                })
                .map_err(|e| crate::sock::errno_of(&e))?;
            let s = VSock::new(rt, h, tcp, v6, flags & libc::SOCK_NONBLOCK != 0);
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
    let setint = |level: i32, name: i32, v: i32| set(level, name, &v.to_ne_bytes());
    let st = *s.stored();
    let dflt = Stored::default();
    if st.reuse_port {
        setint(libc::SOL_SOCKET, libc::SO_REUSEPORT, 1);
    }
    if let Ok(rt) = s.rt() {
        rt.with_core(|core, _| {
            if s.tcp {
                if let Ok(o) = core.tcp().options(s.handle) {
                    setint(libc::SOL_SOCKET, libc::SO_REUSEADDR, o.reuse_addr.into());
                    if s.v6 {
                        setint(libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, o.v6only.into());
                    }
                    for (name, b) in [(libc::SO_RCVBUF, o.recv_buf), (libc::SO_SNDBUF, o.send_buf)]
                    {
                        if let Some(b) = b {
                            setint(libc::SOL_SOCKET, name, i32::try_from(b).unwrap_or(i32::MAX));
                        }
                    }
                    if let Some(m) = o.maxseg {
                        setint(libc::IPPROTO_TCP, libc::TCP_MAXSEG, m.into());
                    }
                    setint(libc::IPPROTO_TCP, libc::TCP_NODELAY, o.nodelay.into());
                    setint(libc::IPPROTO_TCP, libc::TCP_CORK, o.cork.into());
                    if let Some(t) = o.user_timeout {
                        let ms = i32::try_from(t.as_millis()).unwrap_or(i32::MAX);
                        setint(libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT, ms);
                    }
                    for (name, v, d) in [
                        (libc::TCP_KEEPIDLE, st.keep_idle, dflt.keep_idle),
                        (libc::TCP_KEEPINTVL, st.keep_intvl, dflt.keep_intvl),
                        (libc::TCP_KEEPCNT, st.keep_cnt, dflt.keep_cnt),
                    ] {
                        if v != d {
                            setint(libc::IPPROTO_TCP, name, v as i32);
                        }
                    }
                    setint(
                        libc::SOL_SOCKET,
                        libc::SO_KEEPALIVE,
                        o.keepalive.is_some().into(),
                    );
                }
            } else if let Ok(o) = core.udp_options(s.handle) {
                setint(libc::SOL_SOCKET, libc::SO_REUSEADDR, o.reuse_addr.into());
                if s.v6 {
                    setint(libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, o.v6only.into());
                }
                setint(libc::SOL_SOCKET, libc::SO_BROADCAST, o.broadcast.into());
                let (rcv, snd) = st.udp_bufs;
                for (name, b, d) in [
                    (libc::SO_RCVBUF, rcv, dflt.udp_bufs.0),
                    (libc::SO_SNDBUF, snd, dflt.udp_bufs.1),
                ] {
                    if b != d {
                        setint(libc::SOL_SOCKET, name, i32::try_from(b).unwrap_or(i32::MAX));
                    }
                }
            }
        });
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

pub fn bind(s: &VSock, a: SocketAddr) -> Res<()> {
    let a = want_family(s, a)?;
    s.with(|core, _| {
        if s.tcp {
            core.tcp_mut().bind(s.handle, a)
        } else {
            core.udp_bind(s.handle, a)
        }
    })
}

pub fn listen(s: &VSock, backlog: i32) -> Res<()> {
    if !s.tcp {
        return Err(libc::EOPNOTSUPP);
    }
    let backlog = backlog.clamp(1, 4096) as usize;
    s.with(|core, _| core.tcp_mut().listen(s.handle, backlog))
}

/// accept4(2): the new fd and the peer.
pub fn accept(s: &VSock, flags: i32) -> Res<(i32, SocketAddr)> {
    if !s.tcp {
        return Err(libc::EOPNOTSUPP);
    }
    if flags & !(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC) != 0 {
        return Err(libc::EINVAL);
    }
    s.touch();
    let nonblocking = flags & libc::SOCK_NONBLOCK != 0;
    // Out of fds, the connection stays queued.
    let fd = reserve(flags & libc::SOCK_CLOEXEC != 0, nonblocking)?;
    let got = s.block(s.nonblocking(), s.timeout(false), |core, _| {
        if !core.tcp().is_listening(s.handle)? {
            return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
        }
        core.tcp_mut().accept(s.handle)
    });
    let (h, peer) = match got {
        Ok(a) => a,
        Err(e) => {
            // SAFETY: the eventfd reserved above, ours alone.
            unsafe { real::close(fd) };
            return Err(e);
        }
    };
    let child = VSock::new(s.rt()?, h, true, s.v6, nonblocking);
    drop(table::insert(fd, Entry::Sock(Arc::new(child))));
    Ok((fd, addr::present(s.v6, peer)))
}

pub fn connect(s: &VSock, target: Parsed) -> Res<()> {
    s.touch();
    let a = match target {
        Parsed::Unspec if !s.tcp => return s.with(|core, _| core.udp_disconnect(s.handle)),
        Parsed::Unspec => return Err(libc::EAFNOSUPPORT),
        Parsed::Addr(a) => a,
    };
    let a = match (s.v6, a) {
        (true, SocketAddr::V4(_)) => addr::present(true, a),
        _ => want_family(s, a)?,
    };
    if !s.tcp {
        return s.with(|core, _| core.udp_connect(s.handle, a));
    }
    s.with(|core, now| core.tcp_mut().connect(now, s.handle, a))?;
    if s.nonblocking() {
        return Err(libc::EINPROGRESS);
    }
    let r = s.block(false, s.timeout(true), |core, _| {
        let r = core.tcp_mut().readiness(s.handle)?;
        if r.error || r.writable {
            Ok(())
        } else {
            Err(std::io::Error::from_raw_os_error(libc::EAGAIN))
        }
    });
    match r {
        // SO_SNDTIMEO ran out: the connect goes on, as Linux reports it.
        Err(libc::EAGAIN) => return Err(libc::EINPROGRESS),
        Err(e) => return Err(e),
        Ok(()) => {}
    }
    match s.with(|core, _| core.tcp_mut().take_error(s.handle))? {
        Some(e) => Err(crate::sock::errno_of(&e)),
        None => Ok(()),
    }
}

pub fn sockname(s: &VSock) -> Res<SocketAddr> {
    let a = s.with(|core, _| {
        if s.tcp {
            core.tcp().addrs(s.handle).map(|(l, _)| l)
        } else {
            core.udp_addrs(s.handle).map(|(l, _)| Some(l))
        }
    })?;
    Ok(addr::present(
        s.v6,
        a.unwrap_or_else(|| addr::unspecified(s.v6)),
    ))
}

pub fn peername(s: &VSock) -> Res<SocketAddr> {
    let a = s.with(|core, _| {
        if s.tcp {
            let synced = core
                .tcp()
                .info(s.handle)
                .is_ok_and(|i| i.state != ustack_core::tcp::State::SynSent);
            core.tcp()
                .addrs(s.handle)
                .map(|(_, p)| p.filter(|_| synced))
        } else {
            core.udp_addrs(s.handle).map(|(_, p)| p)
        }
    })?;
    a.map(|a| addr::present(s.v6, a)).ok_or(libc::ENOTCONN)
}

pub fn shutdown(s: &VSock, how: i32) -> Res<()> {
    let how = match how {
        libc::SHUT_RD => Shutdown::Read,
        libc::SHUT_WR => Shutdown::Write,
        libc::SHUT_RDWR => Shutdown::Both,
        _ => return Err(libc::EINVAL),
    };
    if !s.tcp {
        return match s.with(|core, _| core.udp_addrs(s.handle))? {
            (_, Some(_)) => Ok(()),
            (_, None) => Err(libc::ENOTCONN),
        };
    }
    s.with(|core, _| core.tcp_mut().shutdown(s.handle, how))?;
    s.wake_all();
    Ok(())
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
    if !s.tcp {
        let dst = match dst {
            Some(d) => Some(match (s.v6, d) {
                (true, SocketAddr::V4(_)) => addr::present(true, d),
                _ => want_family(s, d)?,
            }),
            None => None,
        };
        return s.with(|core, now| core.udp_send_to(now, s.handle, data, dst));
    }
    let timeout = s.timeout(true);
    let more = flags & libc::MSG_MORE != 0;
    let eor = flags & libc::MSG_EOR != 0;
    let mut sent = 0;
    loop {
        let r = s.block(nonblocking, timeout, |core, _| {
            core.tcp_mut().send_with(s.handle, &data[sent..], more, eor)
        });
        match r {
            Ok(n) => {
                sent += n;
                if sent >= data.len() || nonblocking {
                    return Ok(sent);
                }
            }
            Err(e) if sent > 0 && (e == libc::EAGAIN || e == libc::EINTR) => return Ok(sent),
            Err(e) => return Err(sigpipe(e, flags)),
        }
    }
}

/// What a receive returned: bytes copied, the datagram's full length, and
/// its source.
pub struct Received {
    pub n: usize,
    pub full: usize,
    pub from: Option<SocketAddr>,
}

/// recv/recvfrom/recvmsg/read.
pub fn recv(s: &VSock, buf: &mut [u8], flags: i32) -> Res<Received> {
    s.touch();
    let nonblocking = s.nonblocking() || flags & libc::MSG_DONTWAIT != 0;
    let peek = flags & libc::MSG_PEEK != 0;
    let timeout = s.timeout(false);
    if !s.tcp {
        let d = s.block(nonblocking, timeout, |core, _| {
            core.udp_recv(s.handle, peek)
        })?;
        let n = d.data.len().min(buf.len());
        buf[..n].copy_from_slice(&d.data[..n]);
        return Ok(Received {
            n,
            full: d.data.len(),
            from: Some(addr::present(s.v6, d.from)),
        });
    }
    let waitall = flags & libc::MSG_WAITALL != 0 && !peek && !nonblocking;
    let mut got = 0;
    loop {
        let r = s.block(nonblocking, timeout, |core, _| {
            core.tcp_mut().recv(s.handle, &mut buf[got..], peek)
        });
        match r {
            Ok(0) => break,
            Ok(n) => {
                got += n;
                if !waitall || got >= buf.len() {
                    break;
                }
            }
            Err(e) if got > 0 && (e == libc::EAGAIN || e == libc::EINTR) => break,
            Err(e) => return Err(e),
        }
    }
    Ok(Received {
        n: got,
        full: got,
        from: None,
    })
}

/// FIONREAD: bytes readable (TCP) or the next datagram's size (UDP).
pub fn readable_bytes(s: &VSock) -> Res<usize> {
    s.with(|core, _| {
        if s.tcp {
            if core.tcp().is_listening(s.handle)? {
                return Ok(0);
            }
            Ok(core.tcp().info(s.handle).map_or(0, |i| i.recv_queue))
        } else {
            match core.udp_recv(s.handle, true) {
                Ok(d) => Ok(d.data.len()),
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => Ok(0),
                Err(e) => Err(e),
            }
        }
    })
}

/// SIOCOUTQ: bytes not yet acknowledged.
pub fn unsent_bytes(s: &VSock) -> Res<usize> {
    if !s.tcp {
        return Ok(0);
    }
    s.with(|core, _| Ok(core.tcp().info(s.handle).map_or(0, |i| i.send_queue)))
}
