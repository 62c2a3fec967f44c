//! The data calls on shared-stack sockets (see `shared.rs`), as the hooks
//! call them with the program's raw arguments.
//!
//! TCP bytes move natively on the pair: these only strip addresses the
//! pair would refuse and turn an end of stream that hides a reset into
//! the error. UDP datagrams carry a header on the pair: these add it on
//! send and strip it (into the sender's address) on receive.
//!
//! Owns nothing. Must not touch: the table (beyond what `shared` does).

use libc::{c_int, c_void, iovec, msghdr, size_t, sockaddr, socklen_t, ssize_t};

use crate::addr::{self, Parsed};
use crate::buf::{gather, iovecs, len_ok, scatter, slice, slice_mut};
use crate::real;
use crate::shared;
use crate::sock::Remote;
use crate::sock::{Res, is_loopback};

fn real_result(n: ssize_t) -> Res<ssize_t> {
    if n < 0 { Err(real::errno()) } else { Ok(n) }
}

/// A TCP read that returned `n` of `asked` bytes: 0 may hide a reset.
fn tcp_eof(fd: c_int, n: ssize_t, asked: usize) -> Res<ssize_t> {
    if n == 0
        && asked > 0
        && let Some(e) = shared::eof_error(fd)
    {
        return Err(e);
    }
    Ok(n)
}

/// Before a TCP send: a socket that never connected is EPIPE (and
/// SIGPIPE unless MSG_NOSIGNAL), as Linux, not bytes the pair would take.
fn tcp_sendable(fd: c_int, r: &Remote, flags: c_int) -> Res<()> {
    match shared::sendable(fd, r, flags) {
        Err(libc::ENOTCONN) => Err(crate::ops::sigpipe(libc::EPIPE, flags)),
        other => other,
    }
}

/// # Safety
/// `buf` valid for `n` writable bytes.
pub unsafe fn read(
    fd: c_int,
    r: &Remote,
    buf: *mut c_void,
    n: size_t,
    flags: c_int,
) -> Res<ssize_t> {
    if r.tcp {
        shared::readable(fd, r)?;
        // SAFETY: passed through as given.
        let got = real_result(unsafe { real::recv(fd, buf, n, flags) })?;
        return tcp_eof(fd, got, n);
    }
    // SAFETY: per the caller.
    let d = shared::udp_recv(fd, unsafe { slice_mut(buf, n)? }, flags)?;
    Ok(len_ok(if flags & libc::MSG_TRUNC != 0 {
        d.full
    } else {
        d.n
    }))
}

/// # Safety
/// As recvfrom(2).
pub unsafe fn recvfrom(
    fd: c_int,
    r: &Remote,
    buf: *mut c_void,
    n: size_t,
    flags: c_int,
    a: *mut sockaddr,
    len: *mut socklen_t,
) -> Res<ssize_t> {
    if r.tcp {
        if !len.is_null() {
            // SAFETY: a valid length pointer per the caller.
            unsafe { *len = 0 };
        }
        // SAFETY: as given.
        return unsafe { read(fd, r, buf, n, flags) };
    }
    // SAFETY: per the caller.
    let d = shared::udp_recv(fd, unsafe { slice_mut(buf, n)? }, flags)?;
    if let Some(from) = d.from {
        // SAFETY: the caller's address buffer.
        unsafe { addr::write(addr::present(r.v6, from), a, len)? };
    }
    Ok(len_ok(if flags & libc::MSG_TRUNC != 0 {
        d.full
    } else {
        d.n
    }))
}

/// # Safety
/// As recvmsg(2).
pub unsafe fn recvmsg(fd: c_int, r: &Remote, msg: *mut msghdr, flags: c_int) -> Res<ssize_t> {
    if msg.is_null() {
        return Err(libc::EFAULT);
    }
    // SAFETY: a valid msghdr per the caller.
    let m = unsafe { &mut *msg };
    if r.tcp {
        shared::readable(fd, r)?;
        m.msg_namelen = 0;
        // SAFETY: the caller's msghdr.
        let got = real_result(unsafe { real::recvmsg(fd, msg, flags) })?;
        // SAFETY: its iovecs.
        let asked = crate::buf::iov_total(unsafe { iovecs(m.msg_iov, m.msg_iovlen)? })?;
        return tcp_eof(fd, got, asked);
    }
    // SAFETY: its iovecs per the caller.
    let iov = unsafe { iovecs(m.msg_iov, m.msg_iovlen)? };
    let mut buf = vec![0u8; crate::buf::iov_total(iov)?];
    let d = shared::udp_recv(fd, &mut buf, flags)?;
    // SAFETY: the iovecs describe writable memory.
    unsafe { scatter(iov, &buf[..d.n])? };
    m.msg_flags = if d.full > d.n { libc::MSG_TRUNC } else { 0 };
    m.msg_controllen = 0;
    match d.from {
        Some(from) if !m.msg_name.is_null() => {
            let mut l = m.msg_namelen;
            // SAFETY: the caller's name buffer of msg_namelen bytes.
            unsafe { addr::write(addr::present(r.v6, from), m.msg_name.cast(), &mut l)? };
            m.msg_namelen = l;
        }
        _ => m.msg_namelen = 0,
    }
    Ok(len_ok(if flags & libc::MSG_TRUNC != 0 {
        d.full
    } else {
        d.n
    }))
}

/// read(2). On TCP the shim makes the call the program made (read, not
/// recv), here and in [`write`], [`readv`] and [`writev`]: a process in a
/// system call sandbox (sshd's preauth child allows write, not sendto)
/// must not die of a call it never made.
///
/// # Safety
/// `buf` valid for `n` writable bytes.
pub unsafe fn read_plain(fd: c_int, r: &Remote, buf: *mut c_void, n: size_t) -> Res<ssize_t> {
    if r.tcp {
        shared::readable(fd, r)?;
        // SAFETY: passed through as given.
        let got = real_result(unsafe { real::read(fd, buf, n) })?;
        return tcp_eof(fd, got, n);
    }
    // SAFETY: per the caller.
    unsafe { read(fd, r, buf, n, 0) }
}

/// write(2); see [`read_plain`].
///
/// # Safety
/// `buf` valid for `n` bytes.
pub unsafe fn write(fd: c_int, r: &Remote, buf: *const c_void, n: size_t) -> Res<ssize_t> {
    if r.tcp {
        tcp_sendable(fd, r, 0)?;
        // SAFETY: passed through as given.
        return real_result(unsafe { real::write(fd, buf, n) });
    }
    // SAFETY: per the caller.
    Ok(unsafe { sendto(fd, r, buf, n, 0, std::ptr::null(), 0)? }.unwrap_or(0))
}

/// # Safety
/// As readv(2).
pub unsafe fn readv(fd: c_int, r: &Remote, iov: *const iovec, n: c_int) -> Res<ssize_t> {
    if r.tcp {
        shared::readable(fd, r)?;
        // SAFETY: the caller's iovecs, passed through.
        let got = real_result(unsafe { real::readv(fd, iov, n) })?;
        // SAFETY: as above.
        let asked = unsafe { iovecs(iov, usize::try_from(n).map_err(|_| libc::EINVAL)?)? }
            .iter()
            .map(|v| v.iov_len)
            .sum();
        return tcp_eof(fd, got, asked);
    }
    // SAFETY: a msghdr over the caller's iovecs.
    let mut m: msghdr = unsafe { std::mem::zeroed() };
    m.msg_iov = iov as *mut iovec;
    m.msg_iovlen = usize::try_from(n).map_err(|_| libc::EINVAL)?;
    // SAFETY: as above.
    unsafe { recvmsg(fd, r, &mut m, 0) }
}

/// Where a UDP send goes: `Ok(None)` when the socket just became a kernel
/// socket (loopback) and the real call must make it.
///
/// # Safety
/// `a` valid for `len` bytes or null.
unsafe fn udp_dst(
    fd: c_int,
    r: &Remote,
    a: *const sockaddr,
    len: socklen_t,
) -> Res<Option<Option<std::net::SocketAddr>>> {
    if a.is_null() || len == 0 {
        return Ok(Some(None));
    }
    // SAFETY: per the caller.
    match unsafe { addr::read(a, len)? } {
        Parsed::Addr(x) if is_loopback(&x) => {
            if shared::name(fd, false).is_ok_and(|l| l.port() == 0) {
                shared::to_kernel(fd, r)?;
                return Ok(None);
            }
            Ok(Some(Some(x)))
        }
        Parsed::Addr(x) => Ok(Some(Some(x))),
        Parsed::Unspec => Err(libc::EAFNOSUPPORT),
    }
}

/// send/sendto/write. `Ok(None)`: pass the call to the kernel as given.
///
/// # Safety
/// As sendto(2).
pub unsafe fn sendto(
    fd: c_int,
    r: &Remote,
    buf: *const c_void,
    n: size_t,
    flags: c_int,
    a: *const sockaddr,
    len: socklen_t,
) -> Res<Option<ssize_t>> {
    if r.tcp {
        // A connected TCP socket ignores the address (the pair would
        // refuse one).
        tcp_sendable(fd, r, flags)?;
        // SAFETY: as given, without the address.
        return real_result(unsafe { real::send(fd, buf, n, flags) }).map(Some);
    }
    // SAFETY: per the caller.
    let Some(dst) = (unsafe { udp_dst(fd, r, a, len)? }) else {
        return Ok(None);
    };
    // SAFETY: per the caller.
    shared::udp_send(fd, unsafe { slice(buf, n)? }, dst, flags).map(|n| Some(len_ok(n)))
}

/// sendmsg/writev. `Ok(None)`: pass the call to the kernel as given.
///
/// # Safety
/// As sendmsg(2).
pub unsafe fn sendmsg(
    fd: c_int,
    r: &Remote,
    msg: *const msghdr,
    flags: c_int,
) -> Res<Option<ssize_t>> {
    if msg.is_null() {
        return Err(libc::EFAULT);
    }
    // SAFETY: a valid msghdr per the caller.
    let m = unsafe { &*msg };
    if r.tcp {
        tcp_sendable(fd, r, flags)?;
        let mut bare = *m;
        bare.msg_name = std::ptr::null_mut();
        bare.msg_namelen = 0;
        // SAFETY: the caller's buffers without the address.
        return real_result(unsafe { real::sendmsg(fd, &bare, flags) }).map(Some);
    }
    // SAFETY: per the caller.
    let Some(dst) = (unsafe { udp_dst(fd, r, m.msg_name.cast(), m.msg_namelen)? }) else {
        return Ok(None);
    };
    // SAFETY: as above.
    let data = unsafe { gather(iovecs(m.msg_iov, m.msg_iovlen)?)? };
    shared::udp_send(fd, &data, dst, flags).map(|n| Some(len_ok(n)))
}

/// # Safety
/// As writev(2).
pub unsafe fn writev(fd: c_int, r: &Remote, iov: *const iovec, n: c_int) -> Res<Option<ssize_t>> {
    if r.tcp {
        tcp_sendable(fd, r, 0)?;
        // SAFETY: the caller's iovecs, passed through.
        return real_result(unsafe { real::writev(fd, iov, n) }).map(Some);
    }
    // SAFETY: a msghdr over the caller's iovecs.
    let mut m: msghdr = unsafe { std::mem::zeroed() };
    m.msg_iov = iov as *mut iovec;
    m.msg_iovlen = usize::try_from(n).map_err(|_| libc::EINVAL)?;
    // SAFETY: as above.
    unsafe { sendmsg(fd, r, &m, 0) }
}

/// After a real recvmsg on a kernel socket: sockets of the shared stack
/// among the fds it received (SCM_RIGHTS) are adopted.
///
/// # Safety
/// `msg` is the msghdr the kernel just filled.
pub unsafe fn adopt_received(msg: *const msghdr) {
    if msg.is_null() {
        return;
    }
    // SAFETY: the kernel filled it.
    let m = unsafe { &*msg };
    if m.msg_control.is_null() || m.msg_controllen == 0 {
        return;
    }
    // SAFETY: walks the control buffer with the CMSG macros.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(m);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let bytes = (*c).cmsg_len - libc::CMSG_LEN(0) as usize;
                let p = libc::CMSG_DATA(c).cast::<c_int>();
                for i in 0..bytes / size_of::<c_int>() {
                    let fd = std::ptr::read_unaligned(p.add(i));
                    crate::table::forget(fd);
                    shared::adopt(fd);
                }
            }
            c = libc::CMSG_NXTHDR(m, c);
        }
    }
}

/// recvmmsg(2): one datagram (or read) per entry; MSG_WAITFORONE makes
/// the entries after the first non-blocking.
///
/// # Safety
/// As recvmmsg(2).
pub unsafe fn recvmmsg(
    fd: c_int,
    r: &Remote,
    msgs: *mut libc::mmsghdr,
    n: libc::c_uint,
    flags: c_int,
) -> Res<c_int> {
    if msgs.is_null() {
        return Err(libc::EFAULT);
    }
    let mut done = 0;
    let mut f = flags & !libc::MSG_WAITFORONE;
    for i in 0..n.min(1024) as usize {
        // SAFETY: `msgs` holds `n` entries per the caller.
        let m = unsafe { &mut *msgs.add(i) };
        // SAFETY: a valid msghdr inside it.
        match unsafe { recvmsg(fd, r, &mut m.msg_hdr, f) } {
            Ok(len) => {
                m.msg_len = len as libc::c_uint;
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

/// sendmmsg(2): one datagram (or write) per entry. `Ok(None)`: the socket
/// just became a kernel socket; pass the call to the kernel.
///
/// # Safety
/// As sendmmsg(2).
pub unsafe fn sendmmsg(
    fd: c_int,
    r: &Remote,
    msgs: *mut libc::mmsghdr,
    n: libc::c_uint,
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
        match unsafe { sendmsg(fd, r, &m.msg_hdr, flags) } {
            Ok(Some(len)) => {
                m.msg_len = len as libc::c_uint;
                done += 1;
            }
            Ok(None) if done == 0 => return Ok(None),
            Ok(None) => break,
            Err(_) if done > 0 => break,
            Err(e) => return Err(e),
        }
    }
    Ok(Some(done))
}
