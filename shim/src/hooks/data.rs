//! Hooks that move data: read, write, readv, writev, recv, recvfrom,
//! recvmsg, recvmmsg, send, sendto, sendmsg, sendmmsg, sendfile(64), and
//! glibc's fortified `__*_chk` variants.

use std::ffi::{c_int, c_uint, c_void};
use std::panic::catch_unwind;

use libc::{iovec, mmsghdr, msghdr, nfds_t, off_t, pollfd, size_t, sockaddr, socklen_t, ssize_t};

use super::{Virt, guard, lookup, vsock};
use crate::addr::{self, Parsed};
use crate::buf::{gather, iov_total, iovecs, len_ok, scatter, slice, slice_mut};
use crate::ops;
use crate::process;
use crate::real;
use crate::sock::{Res, VSock, is_loopback};
use crate::{shared_io, table};

/// The length a receive returns: the datagram's full length under
/// MSG_TRUNC on UDP, as Linux.
fn received(s: &VSock, r: &ops::Received, flags: c_int) -> ssize_t {
    len_ok(if flags & libc::MSG_TRUNC != 0 && !s.is_stream() {
        r.full
    } else {
        r.n
    })
}

fn recv_into(s: &VSock, buf: &mut [u8], flags: c_int) -> Res<ssize_t> {
    let r = ops::recv(s, buf, flags)?;
    Ok(received(s, &r, flags))
}

fd_hook!(fn read(fd, buf: *mut c_void, n: size_t) -> ssize_t, |v| match v {
    // SAFETY: the caller's buffer.
    Virt::Shared(r) => unsafe { shared_io::read_plain(fd, &r, buf, n) },
    // SAFETY: `buf` has `n` writable bytes per the caller.
    Virt::Local(s) => recv_into(&s, unsafe { slice_mut(buf, n)? }, 0),
});

fd_hook!(fn write(fd, buf: *const c_void, n: size_t) -> ssize_t, |v| match v {
    // TCP too: a socket that never connected is EPIPE (shared_io).
    // SAFETY: the caller's buffer.
    Virt::Shared(r) => unsafe { shared_io::write(fd, &r, buf, n) },
    // SAFETY: `buf` has `n` readable bytes per the caller.
    Virt::Local(s) => ops::send(&s, unsafe { slice(buf, n)? }, 0, None).map(len_ok),
});

fd_hook!(fn readv(fd, iov: *const iovec, n: c_int) -> ssize_t, |v| match v {
    // SAFETY: the caller's iovecs.
    Virt::Shared(r) => unsafe { shared_io::readv(fd, &r, iov, n) },
    Virt::Local(s) => {
        // SAFETY: `iov` holds `n` iovecs per the caller.
        let iov = unsafe { iovecs(iov, usize::try_from(n).map_err(|_| libc::EINVAL)?)? };
        let mut buf = vec![0u8; iov_total(iov)?];
        let r = ops::recv(&s, &mut buf, 0)?;
        // SAFETY: the iovecs describe writable memory.
        unsafe { scatter(iov, &buf[..r.n])? };
        Ok(len_ok(r.n))
    }
});

fd_hook!(fn writev(fd, iov: *const iovec, n: c_int) -> ssize_t, |v| match v {
    // TCP too: a socket that never connected is EPIPE (shared_io).
    // SAFETY: the caller's iovecs.
    Virt::Shared(r) => Ok(unsafe { shared_io::writev(fd, &r, iov, n)? }.unwrap_or(0)),
    Virt::Local(s) => {
        // SAFETY: `iov` holds `n` iovecs of readable memory.
        let data = unsafe { gather(iovecs(iov, usize::try_from(n).map_err(|_| libc::EINVAL)?)?)? };
        ops::send(&s, &data, 0, None).map(len_ok)
    }
});

fd_hook!(fn recv(fd, buf: *mut c_void, n: size_t, flags: c_int) -> ssize_t, |v| match v {
    // SAFETY: the caller's buffer.
    Virt::Shared(r) => unsafe { shared_io::read(fd, &r, buf, n, flags) },
    // SAFETY: `buf` has `n` writable bytes per the caller.
    Virt::Local(s) => recv_into(&s, unsafe { slice_mut(buf, n)? }, flags),
});

fd_hook!(fn recvfrom(fd, buf: *mut c_void, n: size_t, flags: c_int, a: *mut sockaddr,
    len: *mut socklen_t) -> ssize_t, |v| match v {
    // SAFETY: the caller's buffers.
    Virt::Shared(r) => unsafe { shared_io::recvfrom(fd, &r, buf, n, flags, a, len) },
    Virt::Local(s) => {
        // SAFETY: `buf` has `n` writable bytes per the caller.
        let r = ops::recv(&s, unsafe { slice_mut(buf, n)? }, flags)?;
        match r.from {
            // SAFETY: the caller's address buffer and length.
            Some(from) => unsafe { addr::write(from, a, len)? },
            None if !len.is_null() && !a.is_null() => {
                // SAFETY: a valid length pointer.
                unsafe { *len = 0 };
            }
            None => {}
        }
        Ok(received(&s, &r, flags))
    }
});

/// recvmsg on a virtual socket.
///
/// # Safety
/// `msg` must be a valid msghdr.
unsafe fn recvmsg_v(s: &VSock, msg: *mut msghdr, flags: c_int) -> Res<ssize_t> {
    if msg.is_null() {
        return Err(libc::EFAULT);
    }
    // SAFETY: a valid msghdr per the caller.
    let m = unsafe { &mut *msg };
    // SAFETY: its iovecs per the caller.
    let iov = unsafe { iovecs(m.msg_iov, m.msg_iovlen)? };
    let mut buf = vec![0u8; iov_total(iov)?];
    let r = ops::recv(s, &mut buf, flags)?;
    // SAFETY: the iovecs describe writable memory.
    unsafe { scatter(iov, &buf[..r.n])? };
    m.msg_flags = 0;
    if r.full > r.n {
        m.msg_flags |= libc::MSG_TRUNC;
    }
    if s.is_stream() && s.stored().inq {
        let inq = s.with(|core, _| core.tcp().inq(s.handle))?;
        let inq = i32::try_from(inq).unwrap_or(i32::MAX);
        // SAFETY: msg_control has msg_controllen bytes per the caller.
        unsafe { put_cmsg(m, libc::SOL_TCP, libc::TCP_CM_INQ, &inq.to_ne_bytes()) };
    } else {
        m.msg_controllen = 0;
    }
    match r.from {
        Some(from) if !m.msg_name.is_null() => {
            let mut l = m.msg_namelen;
            // SAFETY: msg_name has msg_namelen bytes.
            unsafe { addr::write(from, m.msg_name.cast(), &mut l)? };
            m.msg_namelen = l;
        }
        _ => m.msg_namelen = 0,
    }
    Ok(received(s, &r, flags))
}

/// Puts one control message as the only one in `m`'s control buffer, or
/// sets MSG_CTRUNC when it does not fit there (Linux's put_cmsg).
///
/// # Safety
/// `m.msg_control` must have `m.msg_controllen` writable bytes.
unsafe fn put_cmsg(m: &mut msghdr, level: c_int, kind: c_int, data: &[u8]) {
    let len = data.len() as u32;
    // SAFETY: CMSG_SPACE and CMSG_LEN only compute sizes.
    let (space, cmsg_len) = unsafe { (libc::CMSG_SPACE(len), libc::CMSG_LEN(len)) };
    if m.msg_control.is_null() || m.msg_controllen < space as usize {
        m.msg_flags |= libc::MSG_CTRUNC;
        m.msg_controllen = 0;
        return;
    }
    // SAFETY: the buffer holds `space` bytes (checked above), so
    // CMSG_FIRSTHDR is its start and CMSG_DATA has `len` bytes after it.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(m);
        (*c).cmsg_level = level;
        (*c).cmsg_type = kind;
        (*c).cmsg_len = cmsg_len as usize;
        std::ptr::copy_nonoverlapping(data.as_ptr(), libc::CMSG_DATA(c), data.len());
    }
    m.msg_controllen = space as usize;
}

/// recvmsg is written out: on a plain fd it also adopts shared-stack
/// sockets that arrive by SCM_RIGHTS.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t {
    if table::plain(fd) {
        // SAFETY: passed through as given.
        let n = unsafe { real::recvmsg(fd, msg, flags) };
        // The shim's own receives (its replies and accepted connections,
        // under as_shim) know what they got: adopting those would cost an
        // Identify round trip, on a second control connection, each.
        if n >= 0 && !process::bypass() && crate::shared::attached() {
            // SAFETY: the msghdr the kernel just filled.
            let _ = catch_unwind(|| unsafe { shared_io::adopt_received(msg) });
        }
        return n;
    }
    guard(move || match lookup(fd) {
        // SAFETY: the caller's msghdr.
        Some(Virt::Shared(r)) => unsafe { shared_io::recvmsg(fd, &r, msg, flags) },
        // SAFETY: the caller's msghdr.
        Some(Virt::Local(s)) => unsafe { recvmsg_v(&s, msg, flags) },
        // SAFETY: passed through as given.
        None => Ok(unsafe { real::recvmsg(fd, msg, flags) }),
    })
}

fd_hook!(fn recvmmsg(fd, msgs: *mut mmsghdr, n: c_uint, flags: c_int,
    timeout: *mut libc::timespec) -> c_int, |v| match v {
    // SAFETY: the caller's entries.
    Virt::Shared(r) => unsafe { shared_io::recvmmsg(fd, &r, msgs, n, flags) },
    Virt::Local(s) => {
        if msgs.is_null() {
            return Err(libc::EFAULT);
        }
        let mut done = 0;
        let mut f = flags & !libc::MSG_WAITFORONE;
        for i in 0..n.min(1024) as usize {
            // SAFETY: `msgs` holds `n` entries per the caller.
            let m = unsafe { &mut *msgs.add(i) };
            // SAFETY: a valid msghdr inside it.
            match unsafe { recvmsg_v(&s, &mut m.msg_hdr, f) } {
                Ok(len) => {
                    m.msg_len = len as c_uint;
                    done += 1;
                    if flags & libc::MSG_WAITFORONE != 0 {
                        f |= libc::MSG_DONTWAIT;
                    }
                }
                Err(_) if done > 0 => break,
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }
});

fd_hook!(fn send(fd, buf: *const c_void, n: size_t, flags: c_int) -> ssize_t, |v| match v {
    // TCP too: a socket that never connected is EPIPE (shared_io).
    Virt::Shared(r) => {
        // SAFETY: the caller's buffer.
        let sent = unsafe { shared_io::sendto(fd, &r, buf, n, flags, std::ptr::null(), 0)? };
        Ok(sent.unwrap_or(0))
    }
    // SAFETY: `buf` has `n` readable bytes per the caller.
    Virt::Local(s) => ops::send(&s, unsafe { slice(buf, n)? }, flags, None).map(len_ok),
});

/// The destination of a sendto/sendmsg, converting the socket to a kernel
/// one when it is a loopback address and the socket is still unbound UDP.
///
/// # Safety
/// `a` must be valid for `len` bytes, or null.
unsafe fn destination(
    fd: c_int,
    s: &VSock,
    a: *const sockaddr,
    len: socklen_t,
) -> Res<Option<Option<std::net::SocketAddr>>> {
    if a.is_null() || len == 0 || s.is_stream() {
        return Ok(Some(None));
    }
    // SAFETY: per the caller.
    match unsafe { addr::read(a, len)? } {
        Parsed::Addr(x) if is_loopback(&x) => {
            let unbound = ops::sockname(s)?.port() == 0;
            if unbound {
                ops::to_kernel(fd, s)?;
                return Ok(None);
            }
            Ok(Some(Some(x)))
        }
        Parsed::Addr(x) => Ok(Some(Some(x))),
        Parsed::Unspec => Err(libc::EAFNOSUPPORT),
    }
}

fd_hook!(fn sendto(fd, buf: *const c_void, n: size_t, flags: c_int, a: *const sockaddr,
    len: socklen_t) -> ssize_t, |v| maybe match v {
    // SAFETY: the caller's buffer and address.
    Virt::Shared(r) => unsafe { shared_io::sendto(fd, &r, buf, n, flags, a, len)? },
    // SAFETY: the caller's address.
    Virt::Local(s) => match unsafe { destination(fd, &s, a, len)? } {
        // SAFETY: `buf` has `n` readable bytes per the caller.
        Some(dst) => Some(ops::send(&s, unsafe { slice(buf, n)? }, flags, dst).map(len_ok)?),
        None => None,
    },
});

/// sendmsg on a virtual socket; `None` if it just became a kernel socket.
///
/// # Safety
/// `msg` must be a valid msghdr.
unsafe fn sendmsg_v(fd: c_int, s: &VSock, msg: *const msghdr, flags: c_int) -> Res<Option<usize>> {
    if msg.is_null() {
        return Err(libc::EFAULT);
    }
    // SAFETY: a valid msghdr per the caller.
    let m = unsafe { &*msg };
    // SAFETY: its name and iovecs per the caller.
    let Some(dst) = (unsafe { destination(fd, s, m.msg_name.cast(), m.msg_namelen)? }) else {
        return Ok(None);
    };
    // SAFETY: as above.
    let data = unsafe { gather(iovecs(m.msg_iov, m.msg_iovlen)?)? };
    ops::send(s, &data, flags, dst).map(Some)
}

fd_hook!(fn sendmsg(fd, msg: *const msghdr, flags: c_int) -> ssize_t, |v| maybe match v {
    // SAFETY: the caller's msghdr.
    Virt::Shared(r) => unsafe { shared_io::sendmsg(fd, &r, msg, flags)? },
    // SAFETY: the caller's msghdr.
    Virt::Local(s) => unsafe { sendmsg_v(fd, &s, msg, flags)? }.map(len_ok),
});

/// sendmmsg on an in-process socket; `None` if the first message made it
/// a kernel socket (the real call then sends them all).
fn sendmmsg_v(
    fd: c_int,
    s: &VSock,
    msgs: *mut mmsghdr,
    n: c_uint,
    flags: c_int,
) -> Res<Option<c_int>> {
    if msgs.is_null() {
        return Err(libc::EFAULT);
    }
    let mut done = 0;
    for i in 0..n.min(1024) as usize {
        // SAFETY: `msgs` holds `n` entries per the caller.
        let m = unsafe { &mut *msgs.add(i) };
        // SAFETY: a valid msghdr inside it.
        match unsafe { sendmsg_v(fd, s, &m.msg_hdr, flags) } {
            Ok(Some(len)) => {
                m.msg_len = len as c_uint;
                done += 1;
            }
            Ok(None) if done == 0 => break,
            Ok(None) => return Ok(Some(done)),
            Err(_) if done > 0 => return Ok(Some(done)),
            Err(e) => return Err(e),
        }
    }
    Ok((done > 0).then_some(done))
}

fd_hook!(fn sendmmsg(fd, msgs: *mut mmsghdr, n: c_uint, flags: c_int) -> c_int,
    |v| maybe match v {
    // SAFETY: the caller's entries.
    Virt::Shared(r) => unsafe { shared_io::sendmmsg(fd, &r, msgs, n, flags)? },
    Virt::Local(s) => sendmmsg_v(fd, &s, msgs, n, flags)?,
});

/// sendfile from a file to a virtual socket: read with pread at an explicit
/// offset so bytes the socket did not take are not consumed.
fn sendfile_v(s: &VSock, inp: c_int, off: Option<&mut i64>, count: usize) -> Res<usize> {
    let own_pos = off.is_none();
    let mut pos = match &off {
        Some(o) => **o,
        // SAFETY: lseek on the caller's fd, no pointers.
        None => unsafe { libc::lseek(inp, 0, libc::SEEK_CUR) },
    };
    if pos < 0 {
        return Err(real::errno());
    }
    let mut buf = vec![0u8; count.min(256 * 1024)];
    let mut sent = 0;
    while sent < count {
        let want = (count - sent).min(buf.len());
        // SAFETY: reading into our own buffer.
        let r = unsafe { real::pread(inp, buf.as_mut_ptr().cast(), want, pos as off_t) };
        if r < 0 {
            if sent == 0 {
                return Err(real::errno());
            }
            break;
        }
        if r == 0 {
            break;
        }
        let got = r as usize;
        let flags = if sent > 0 { libc::MSG_DONTWAIT } else { 0 };
        match ops::send(s, &buf[..got], flags, None) {
            Ok(n) => {
                sent += n;
                pos += n as i64;
                if n < got {
                    break;
                }
            }
            Err(_) if sent > 0 => break,
            Err(e) => return Err(e),
        }
    }
    match off {
        Some(o) => *o = pos,
        // SAFETY: lseek on the caller's fd.
        None if own_pos => unsafe {
            libc::lseek(inp, pos, libc::SEEK_SET);
        },
        None => {}
    }
    Ok(sent)
}

/// On the shared stack sendfile is the kernel's own, into the pair.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sendfile(out: c_int, inp: c_int, off: *mut off_t, n: size_t) -> ssize_t {
    pass_plain!(out, real::sendfile(out, inp, off, n));
    guard(move || match vsock(out) {
        Some(s) => {
            let mut o = if off.is_null() {
                None
            } else {
                // SAFETY: a valid offset pointer.
                Some(unsafe { *off })
            };
            let r = sendfile_v(&s, inp, o.as_mut(), n)?;
            if let Some(o) = o {
                // SAFETY: as above.
                unsafe { *off = o };
            }
            Ok(len_ok(r))
        }
        // SAFETY: passed through as given.
        None => Ok(unsafe { real::sendfile(out, inp, off, n) }),
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn sendfile64(out: c_int, inp: c_int, off: *mut i64, n: size_t) -> ssize_t {
    pass_plain!(out, real::sendfile64(out, inp, off, n));
    guard(move || match vsock(out) {
        Some(s) => {
            // SAFETY: a valid offset pointer or null.
            let o = unsafe { off.as_mut() };
            sendfile_v(&s, inp, o, n).map(len_ok)
        }
        // SAFETY: passed through as given.
        None => Ok(unsafe { real::sendfile64(out, inp, off, n) }),
    })
}

// ---- fortified variants --------------------------------------------------

fn chk(n: size_t, buflen: size_t) {
    if n > buflen {
        // glibc's __chk_fail: the program overflowed its own buffer.
        // SAFETY: abort has no preconditions.
        unsafe { libc::abort() };
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn __read_chk(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    buflen: size_t,
) -> ssize_t {
    chk(n, buflen);
    // SAFETY: as read.
    unsafe { read(fd, buf, n) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn __recv_chk(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    buflen: size_t,
    flags: c_int,
) -> ssize_t {
    chk(n, buflen);
    // SAFETY: as recv.
    unsafe { recv(fd, buf, n, flags) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn __recvfrom_chk(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    buflen: size_t,
    flags: c_int,
    a: *mut sockaddr,
    len: *mut socklen_t,
) -> ssize_t {
    chk(n, buflen);
    // SAFETY: as recvfrom.
    unsafe { recvfrom(fd, buf, n, flags, a, len) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn __poll_chk(
    fds: *mut pollfd,
    n: nfds_t,
    timeout: c_int,
    fdslen: size_t,
) -> c_int {
    chk((n as usize).saturating_mul(size_of::<pollfd>()), fdslen);
    // SAFETY: as poll.
    unsafe { super::poll(fds, n, timeout) }
}
