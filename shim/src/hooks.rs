//! The exported functions that replace libc's.
//!
//! Every hook runs its body inside `guard`, which turns an errno into -1
//! with errno set and a panic into -1 with `EIO`, so nothing unwinds into
//! C. The hooks that take an fd first ask `table::plain` (one bitmap
//! load): on an fd that is certainly not virtual they jump straight to the
//! real function, before `guard`, thread-locals or anything else, so a
//! program's ordinary file I/O pays a handful of instructions (the
//! pass-through figure of scripts/bench.sh). Nothing on that path can
//! panic.
//!
//! fcntl, ioctl and open are variadic in C; stable Rust cannot define
//! variadic functions, and rustc exports only Rust-defined symbols from a
//! cdylib, so C wrappers linked in would stay hidden. They are defined here
//! with the third argument as one fixed integer-register argument, which
//! on the x86-64 SysV and AArch64 Linux ABIs is where a variadic caller
//! puts it (see the compile_error below for other targets).
//!
//! Safety of every hook: the contract of the libc function of the same
//! name (hence no per-function `# Safety` sections).
#![allow(clippy::missing_safety_doc)]

use std::ffi::{c_char, c_int, c_uint, c_ulong, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant};

use libc::{
    epoll_event, fd_set, iovec, mmsghdr, msghdr, nfds_t, off_t, pollfd, sigset_t, size_t, sockaddr,
    socklen_t, ssize_t, timespec, timeval,
};

#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
compile_error!("the variadic hooks assume the x86-64 or AArch64 Linux calling convention");

use crate::addr::{self, Parsed};
use crate::ops::{self, Route};
use crate::real::{self, Fail, set_errno};
use crate::sock::{Res, VSock, is_loopback};
use crate::table::{self, Entry};
use crate::{poll, shared, shared_io, sockopt, stack};

/// Returns the real call's result at once when `fd` is certainly not
/// virtual (see the module docs).
macro_rules! pass_plain {
    ($fd:expr, $call:expr) => {
        if table::plain($fd) {
            // SAFETY: passed through as given, under the hook's contract.
            return unsafe { $call };
        }
    };
}

/// Kept out of line so the hooks' pass-through path sets up no frame for
/// it.
#[inline(never)]
fn guard<T: Fail>(f: impl FnOnce() -> Res<T>) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            set_errno(e);
            T::fail()
        }
        Err(_) => {
            set_errno(libc::EIO);
            T::fail()
        }
    }
}

fn vsock(fd: c_int) -> Option<Arc<VSock>> {
    // The bitmap first: an fd that was never virtual (nearly every call of
    // a program that is not networking) costs one atomic load, not a
    // thread-local lookup as well.
    if !table::maybe_virtual(fd) || stack::bypass() {
        return None;
    }
    table::sock(fd)
}

/// The shared-stack socket at `fd`, if it is one.
fn remote(fd: c_int) -> Option<Arc<crate::shared::Remote>> {
    if !table::maybe_virtual(fd) || stack::bypass() {
        return None;
    }
    table::remote(fd)
}

/// After a real call that returned a new fd: it is not virtual; if the
/// shim itself opened it, it is the shim's own.
fn fresh(fd: c_int) -> Res<c_int> {
    if fd >= 0 {
        table::forget(fd);
        if stack::bypass() {
            log::trace!("fd {fd} is the shim's own");
            table::mark_internal(fd);
        }
    }
    Ok(fd)
}

/// The program may not close or overwrite the shim's own fds: to it they
/// are not open (`EBADF`), or busy as a dup target (`EBUSY`).
fn guard_internal(fd: c_int, e: i32) -> Res<()> {
    if !stack::bypass() && table::is_internal(fd) {
        log::debug!("fd {fd} belongs to the shim; refused");
        return Err(e);
    }
    Ok(())
}

pub(crate) fn len_ok(n: usize) -> ssize_t {
    ssize_t::try_from(n).unwrap_or(ssize_t::MAX)
}

/// # Safety
/// `p` must be valid for `n` bytes (or `n` zero).
pub(crate) unsafe fn slice<'a>(p: *const c_void, n: size_t) -> Res<&'a [u8]> {
    if n == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(libc::EFAULT);
    }
    // SAFETY: the caller promises `n` readable bytes.
    Ok(unsafe { std::slice::from_raw_parts(p.cast(), n) })
}

/// # Safety
/// `p` must be valid for `n` writable bytes (or `n` zero).
pub(crate) unsafe fn slice_mut<'a>(p: *mut c_void, n: size_t) -> Res<&'a mut [u8]> {
    if n == 0 {
        return Ok(&mut []);
    }
    if p.is_null() {
        return Err(libc::EFAULT);
    }
    // SAFETY: the caller promises `n` writable bytes.
    Ok(unsafe { std::slice::from_raw_parts_mut(p.cast(), n) })
}

/// # Safety
/// `iov` must point to `n` valid iovecs (or `n` zero).
pub(crate) unsafe fn iovecs<'a>(iov: *const iovec, n: usize) -> Res<&'a [iovec]> {
    if n == 0 {
        return Ok(&[]);
    }
    if iov.is_null() || n > 1024 {
        return Err(if iov.is_null() {
            libc::EFAULT
        } else {
            libc::EINVAL
        });
    }
    // SAFETY: the caller promises `n` iovecs.
    Ok(unsafe { std::slice::from_raw_parts(iov, n) })
}

/// Concatenates what the iovecs point at.
///
/// # Safety
/// Each iovec must describe readable memory.
pub(crate) unsafe fn gather(iov: &[iovec]) -> Res<Vec<u8>> {
    let mut out = Vec::new();
    for v in iov {
        // SAFETY: per the caller.
        out.extend_from_slice(unsafe { slice(v.iov_base, v.iov_len)? });
    }
    Ok(out)
}

/// Copies `data` out across the iovecs.
///
/// # Safety
/// Each iovec must describe writable memory.
pub(crate) unsafe fn scatter(iov: &[iovec], mut data: &[u8]) -> Res<()> {
    for v in iov {
        if data.is_empty() {
            break;
        }
        let n = v.iov_len.min(data.len());
        // SAFETY: per the caller.
        unsafe { slice_mut(v.iov_base, n)? }.copy_from_slice(&data[..n]);
        data = &data[n..];
    }
    Ok(())
}

pub(crate) fn iov_total(iov: &[iovec]) -> Res<usize> {
    iov.iter()
        .try_fold(0usize, |a, v| a.checked_add(v.iov_len))
        .filter(|t| *t <= isize::MAX as usize)
        .ok_or(libc::EINVAL)
}

// ---- sockets ------------------------------------------------------------

#[unsafe(no_mangle)]
pub unsafe extern "C" fn socket(domain: c_int, ty: c_int, protocol: c_int) -> c_int {
    guard(move || {
        let base = ty & !(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC);
        let inet = domain == libc::AF_INET || domain == libc::AF_INET6;
        let tcp = base == libc::SOCK_STREAM && (protocol == 0 || protocol == libc::IPPROTO_TCP);
        let udp = base == libc::SOCK_DGRAM && (protocol == 0 || protocol == libc::IPPROTO_UDP);
        if inet && (tcp || udp) && !stack::bypass() {
            match ops::socket(domain == libc::AF_INET6, tcp, ty)? {
                Route::Virtual(fd) => return Ok(fd),
                Route::Kernel => {}
            }
        }
        // SAFETY: integer arguments only.
        fresh(unsafe { real::socket(domain, ty, protocol) })
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn socketpair(d: c_int, ty: c_int, p: c_int, sv: *mut c_int) -> c_int {
    guard(move || {
        // SAFETY: passed through as given.
        let r = unsafe { real::socketpair(d, ty, p, sv) };
        if r == 0 {
            // SAFETY: on success the kernel wrote two fds to `sv`.
            unsafe {
                table::forget(*sv);
                table::forget(*sv.add(1));
            }
        }
        Ok(r)
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn bind(fd: c_int, a: *const sockaddr, len: socklen_t) -> c_int {
    guard(move || {
        if let Some(r) = remote(fd) {
            // SAFETY: the caller's address buffer of `len` bytes.
            match unsafe { addr::read(a, len)? } {
                Parsed::Addr(x) if is_loopback(&x) => shared::to_kernel(fd, &r)?,
                Parsed::Addr(x) => return shared::bind(fd, &r, x).map(|()| 0),
                Parsed::Unspec => return Err(libc::EAFNOSUPPORT),
            }
        }
        if let Some(s) = vsock(fd) {
            // SAFETY: the caller's address buffer of `len` bytes.
            match unsafe { addr::read(a, len)? } {
                Parsed::Addr(x) if is_loopback(&x) => ops::to_kernel(fd, &s)?,
                Parsed::Addr(x) => return ops::bind(&s, x).map(|()| 0),
                Parsed::Unspec => return Err(libc::EAFNOSUPPORT),
            }
        }
        // SAFETY: passed through as given.
        Ok(unsafe { real::bind(fd, a, len) })
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn listen(fd: c_int, backlog: c_int) -> c_int {
    pass_plain!(fd, real::listen(fd, backlog));
    guard(move || match vsock(fd) {
        None if remote(fd).is_some() => shared::listen(fd, backlog).map(|()| 0),
        Some(s) => ops::listen(&s, backlog).map(|()| 0),
        // SAFETY: integer arguments.
        None => Ok(unsafe { real::listen(fd, backlog) }),
    })
}

fn do_accept(fd: c_int, a: *mut sockaddr, len: *mut socklen_t, flags: c_int) -> Res<c_int> {
    if let Some(r) = remote(fd) {
        let (nfd, peer) = shared::accept(fd, &r, flags)?;
        // SAFETY: the caller's address buffer and length.
        unsafe { addr::write(addr::present(r.v6, peer), a, len)? };
        return Ok(nfd);
    }
    match vsock(fd) {
        Some(s) => {
            let (nfd, peer) = ops::accept(&s, flags)?;
            // SAFETY: the caller's address buffer and length.
            unsafe { addr::write(peer, a, len)? };
            Ok(nfd)
        }
        // SAFETY: passed through as given.
        None => fresh(unsafe { real::accept4(fd, a, len, flags) }),
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn accept(fd: c_int, a: *mut sockaddr, len: *mut socklen_t) -> c_int {
    guard(move || do_accept(fd, a, len, 0))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn accept4(
    fd: c_int,
    a: *mut sockaddr,
    len: *mut socklen_t,
    flags: c_int,
) -> c_int {
    guard(move || do_accept(fd, a, len, flags))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn connect(fd: c_int, a: *const sockaddr, len: socklen_t) -> c_int {
    guard(move || {
        if let Some(r) = remote(fd) {
            // SAFETY: the caller's address buffer of `len` bytes.
            match unsafe { addr::read(a, len)? } {
                Parsed::Addr(x) if is_loopback(&x) => shared::to_kernel(fd, &r)?,
                Parsed::Addr(x) => return shared::connect(fd, &r, Some(x)).map(|()| 0),
                Parsed::Unspec => return shared::connect(fd, &r, None).map(|()| 0),
            }
        }
        if let Some(s) = vsock(fd) {
            // SAFETY: the caller's address buffer of `len` bytes.
            match unsafe { addr::read(a, len)? } {
                Parsed::Addr(x) if is_loopback(&x) => ops::to_kernel(fd, &s)?,
                p => return ops::connect(&s, p).map(|()| 0),
            }
        }
        // SAFETY: passed through as given.
        Ok(unsafe { real::connect(fd, a, len) })
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn getsockname(fd: c_int, a: *mut sockaddr, len: *mut socklen_t) -> c_int {
    pass_plain!(fd, real::getsockname(fd, a, len));
    guard(move || match vsock(fd) {
        None if let Some(r) = remote(fd) => {
            let x = addr::present(r.v6, shared::name(fd, false)?);
            if a.is_null() || len.is_null() {
                return Err(libc::EFAULT);
            }
            // SAFETY: the caller's buffer and length.
            unsafe { addr::write(x, a, len) }.map(|()| 0)
        }
        Some(s) => {
            if a.is_null() || len.is_null() {
                return Err(libc::EFAULT);
            }
            // SAFETY: the caller's buffer and length.
            unsafe { addr::write(ops::sockname(&s)?, a, len) }.map(|()| 0)
        }
        // SAFETY: passed through as given.
        None => Ok(unsafe { real::getsockname(fd, a, len) }),
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn getpeername(fd: c_int, a: *mut sockaddr, len: *mut socklen_t) -> c_int {
    pass_plain!(fd, real::getpeername(fd, a, len));
    guard(move || match vsock(fd) {
        None if let Some(r) = remote(fd) => {
            let x = addr::present(r.v6, shared::name(fd, true)?);
            if a.is_null() || len.is_null() {
                return Err(libc::EFAULT);
            }
            // SAFETY: the caller's buffer and length.
            unsafe { addr::write(x, a, len) }.map(|()| 0)
        }
        Some(s) => {
            if a.is_null() || len.is_null() {
                return Err(libc::EFAULT);
            }
            // SAFETY: the caller's buffer and length.
            unsafe { addr::write(ops::peername(&s)?, a, len) }.map(|()| 0)
        }
        // SAFETY: passed through as given.
        None => Ok(unsafe { real::getpeername(fd, a, len) }),
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn getsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    val: *mut c_void,
    len: *mut socklen_t,
) -> c_int {
    pass_plain!(fd, real::getsockopt(fd, level, name, val, len));
    guard(move || match vsock(fd) {
        None if remote(fd).is_some() && !val.is_null() && !len.is_null() => {
            // SAFETY: `len` is a valid pointer per the caller.
            let room = unsafe { *len } as i32;
            if room < 0 {
                return Err(libc::EINVAL);
            }
            match shared::getsockopt(fd, level, name, room as u32)? {
                Some(bytes) => {
                    let n = bytes.len().min(room as usize);
                    // SAFETY: `val` has `room` >= `n` writable bytes.
                    unsafe {
                        std::ptr::copy_nonoverlapping(bytes.as_ptr(), val.cast::<u8>(), n);
                        *len = n as socklen_t;
                    }
                    Ok(0)
                }
                // SAFETY: the pair's own option, passed through.
                None => Ok(unsafe { real::getsockopt(fd, level, name, val, len) }),
            }
        }
        Some(s) => {
            if val.is_null() || len.is_null() {
                return Err(libc::EFAULT);
            }
            // SAFETY: `len` is a valid pointer per the caller.
            let room = unsafe { *len } as i32;
            if room < 0 {
                return Err(libc::EINVAL);
            }
            let bytes = sockopt::get(&s, level, name)?.bytes();
            let n = bytes.len().min(room as usize);
            // SAFETY: `val` has `room` >= `n` writable bytes.
            unsafe {
                std::ptr::copy_nonoverlapping(bytes.as_ptr(), val.cast::<u8>(), n);
                *len = n as socklen_t;
            }
            Ok(0)
        }
        // SAFETY: passed through as given.
        None => Ok(unsafe { real::getsockopt(fd, level, name, val, len) }),
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn setsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    val: *const c_void,
    len: socklen_t,
) -> c_int {
    pass_plain!(fd, real::setsockopt(fd, level, name, val, len));
    guard(move || match vsock(fd) {
        None if let Some(r) = remote(fd) => {
            // SAFETY: `val` has `len` readable bytes per the caller.
            let bytes = unsafe { slice(val, len as usize)? };
            if shared::setsockopt(fd, &r, level, name, bytes)? {
                return Ok(0);
            }
            // SAFETY: the pair's own option, passed through.
            Ok(unsafe { real::setsockopt(fd, level, name, val, len) })
        }
        Some(s) => {
            // SAFETY: `val` has `len` readable bytes per the caller.
            let bytes = unsafe { slice(val, len as usize)? };
            sockopt::set(&s, level, name, bytes).map(|()| 0)
        }
        // SAFETY: passed through as given.
        None => Ok(unsafe { real::setsockopt(fd, level, name, val, len) }),
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn shutdown(fd: c_int, how: c_int) -> c_int {
    pass_plain!(fd, real::shutdown(fd, how));
    guard(move || match vsock(fd) {
        None if let Some(r) = remote(fd) => shared::shutdown(fd, &r, how).map(|()| 0),
        Some(s) => ops::shutdown(&s, how).map(|()| 0),
        // SAFETY: integer arguments.
        None => Ok(unsafe { real::shutdown(fd, how) }),
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn close(fd: c_int) -> c_int {
    if !table::is_internal(fd) {
        pass_plain!(fd, real::close(fd));
    }
    guard(move || {
        guard_internal(fd, libc::EBADF)?;
        let old = if stack::bypass() {
            table::unmark_internal(fd);
            None
        } else {
            table::remove(fd)
        };
        // SAFETY: closing the caller's fd.
        let r = unsafe { real::close(fd) };
        drop(old);
        Ok(r)
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn close_range(first: c_uint, last: c_uint, flags: c_int) -> c_int {
    guard(move || {
        if first > last {
            return Err(libc::EINVAL);
        }
        let old = if flags & libc::CLOSE_RANGE_CLOEXEC as c_int == 0 {
            table::remove_range(first, last)
        } else {
            Vec::new()
        };
        // Close around the shim's own fds.
        let mut from = u64::from(first);
        let mut r = 0;
        for own in table::internal_in(first, last) {
            if u64::from(own) > from {
                // SAFETY: integer arguments.
                r |= unsafe { real::close_range(from as c_uint, own - 1, flags) };
            }
            from = u64::from(own) + 1;
        }
        if from <= u64::from(last) {
            // SAFETY: integer arguments.
            r |= unsafe { real::close_range(from as c_uint, last, flags) };
        }
        drop(old);
        Ok(r)
    })
}

// ---- data ---------------------------------------------------------------

fn recv_into(s: &VSock, buf: &mut [u8], flags: c_int) -> Res<ssize_t> {
    let r = ops::recv(s, buf, flags)?;
    Ok(len_ok(if flags & libc::MSG_TRUNC != 0 && !s.tcp {
        r.full
    } else {
        r.n
    }))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn read(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t {
    pass_plain!(fd, real::read(fd, buf, n));
    guard(move || match vsock(fd) {
        // SAFETY: the caller's buffer.
        None if let Some(r) = remote(fd) => unsafe { shared_io::read_plain(fd, &r, buf, n) },
        // SAFETY: `buf` has `n` writable bytes per the caller.
        Some(s) => recv_into(&s, unsafe { slice_mut(buf, n)? }, 0),
        // SAFETY: passed through as given.
        None => Ok(unsafe { real::read(fd, buf, n) }),
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn write(fd: c_int, buf: *const c_void, n: size_t) -> ssize_t {
    pass_plain!(fd, real::write(fd, buf, n));
    guard(move || match vsock(fd) {
        // TCP too: a socket that never connected is EPIPE (shared_io).
        // SAFETY: the caller's buffer.
        None if let Some(r) = remote(fd) => unsafe { shared_io::write(fd, &r, buf, n) },
        // SAFETY: `buf` has `n` readable bytes per the caller.
        Some(s) => ops::send(&s, unsafe { slice(buf, n)? }, 0, None).map(len_ok),
        // SAFETY: passed through as given.
        None => Ok(unsafe { real::write(fd, buf, n) }),
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn readv(fd: c_int, iov: *const iovec, n: c_int) -> ssize_t {
    pass_plain!(fd, real::readv(fd, iov, n));
    guard(move || match vsock(fd) {
        // SAFETY: the caller's iovecs.
        None if let Some(r) = remote(fd) => unsafe { shared_io::readv(fd, &r, iov, n) },
        Some(s) => {
            // SAFETY: `iov` holds `n` iovecs per the caller.
            let iov = unsafe { iovecs(iov, usize::try_from(n).map_err(|_| libc::EINVAL)?)? };
            let mut buf = vec![0u8; iov_total(iov)?];
            let r = ops::recv(&s, &mut buf, 0)?;
            // SAFETY: the iovecs describe writable memory.
            unsafe { scatter(iov, &buf[..r.n])? };
            Ok(len_ok(r.n))
        }
        // SAFETY: passed through as given.
        None => Ok(unsafe { real::readv(fd, iov, n) }),
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn writev(fd: c_int, iov: *const iovec, n: c_int) -> ssize_t {
    pass_plain!(fd, real::writev(fd, iov, n));
    guard(move || match vsock(fd) {
        // TCP too: a socket that never connected is EPIPE (shared_io).
        None if let Some(r) = remote(fd) => {
            // SAFETY: the caller's iovecs.
            Ok(unsafe { shared_io::writev(fd, &r, iov, n)? }.unwrap_or(0))
        }
        Some(s) => {
            // SAFETY: `iov` holds `n` iovecs of readable memory.
            let data =
                unsafe { gather(iovecs(iov, usize::try_from(n).map_err(|_| libc::EINVAL)?)?)? };
            ops::send(&s, &data, 0, None).map(len_ok)
        }
        // SAFETY: passed through as given.
        None => Ok(unsafe { real::writev(fd, iov, n) }),
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn recv(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int) -> ssize_t {
    pass_plain!(fd, real::recv(fd, buf, n, flags));
    guard(move || match vsock(fd) {
        // SAFETY: the caller's buffer.
        None if let Some(r) = remote(fd) => unsafe { shared_io::read(fd, &r, buf, n, flags) },
        // SAFETY: `buf` has `n` writable bytes per the caller.
        Some(s) => recv_into(&s, unsafe { slice_mut(buf, n)? }, flags),
        // SAFETY: passed through as given.
        None => Ok(unsafe { real::recv(fd, buf, n, flags) }),
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn recvfrom(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    flags: c_int,
    a: *mut sockaddr,
    len: *mut socklen_t,
) -> ssize_t {
    pass_plain!(fd, real::recvfrom(fd, buf, n, flags, a, len));
    guard(move || match vsock(fd) {
        None if let Some(r) = remote(fd) => {
            // SAFETY: the caller's buffers.
            unsafe { shared_io::recvfrom(fd, &r, buf, n, flags, a, len) }
        }
        Some(s) => {
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
            let full = flags & libc::MSG_TRUNC != 0 && !s.tcp;
            Ok(len_ok(if full { r.full } else { r.n }))
        }
        // SAFETY: passed through as given.
        None => Ok(unsafe { real::recvfrom(fd, buf, n, flags, a, len) }),
    })
}

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
    m.msg_controllen = 0;
    match r.from {
        Some(from) if !m.msg_name.is_null() => {
            let mut l = m.msg_namelen;
            // SAFETY: msg_name has msg_namelen bytes.
            unsafe { addr::write(from, m.msg_name.cast(), &mut l)? };
            m.msg_namelen = l;
        }
        _ => m.msg_namelen = 0,
    }
    let full = flags & libc::MSG_TRUNC != 0 && !s.tcp;
    Ok(len_ok(if full { r.full } else { r.n }))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t {
    if table::plain(fd) {
        // SAFETY: passed through as given.
        let n = unsafe { real::recvmsg(fd, msg, flags) };
        // The shim's own receives (its replies and accepted connections,
        // under as_shim) know what they got: adopting those would cost an
        // Identify round trip, on a second control connection, each.
        if n >= 0 && !stack::bypass() && crate::shared::attached() {
            // SAFETY: the msghdr the kernel just filled.
            let _ = catch_unwind(|| unsafe { shared_io::adopt_received(msg) });
        }
        return n;
    }
    guard(move || match vsock(fd) {
        // SAFETY: the caller's msghdr.
        None if let Some(r) = remote(fd) => unsafe { shared_io::recvmsg(fd, &r, msg, flags) },
        // SAFETY: the caller's msghdr.
        Some(s) => unsafe { recvmsg_v(&s, msg, flags) },
        // SAFETY: passed through as given.
        None => Ok(unsafe { real::recvmsg(fd, msg, flags) }),
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn recvmmsg(
    fd: c_int,
    msgs: *mut mmsghdr,
    n: c_uint,
    flags: c_int,
    timeout: *mut timespec,
) -> c_int {
    pass_plain!(fd, real::recvmmsg(fd, msgs, n, flags, timeout));
    guard(move || match vsock(fd) {
        // SAFETY: the caller's entries.
        None if let Some(r) = remote(fd) => unsafe { shared_io::recvmmsg(fd, &r, msgs, n, flags) },
        Some(s) => {
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
        // SAFETY: passed through as given.
        None => Ok(unsafe { real::recvmmsg(fd, msgs, n, flags, timeout) }),
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn send(fd: c_int, buf: *const c_void, n: size_t, flags: c_int) -> ssize_t {
    pass_plain!(fd, real::send(fd, buf, n, flags));
    guard(move || match vsock(fd) {
        // TCP too: a socket that never connected is EPIPE (shared_io).
        None if let Some(r) = remote(fd) => {
            // SAFETY: the caller's buffer.
            let sent = unsafe { shared_io::sendto(fd, &r, buf, n, flags, std::ptr::null(), 0)? };
            Ok(sent.unwrap_or(0))
        }
        // SAFETY: `buf` has `n` readable bytes per the caller.
        Some(s) => ops::send(&s, unsafe { slice(buf, n)? }, flags, None).map(len_ok),
        // SAFETY: passed through as given.
        None => Ok(unsafe { real::send(fd, buf, n, flags) }),
    })
}

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
    if a.is_null() || len == 0 || s.tcp {
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

#[unsafe(no_mangle)]
pub unsafe extern "C" fn sendto(
    fd: c_int,
    buf: *const c_void,
    n: size_t,
    flags: c_int,
    a: *const sockaddr,
    len: socklen_t,
) -> ssize_t {
    pass_plain!(fd, real::sendto(fd, buf, n, flags, a, len));
    guard(move || {
        if let Some(r) = remote(fd) {
            // SAFETY: the caller's buffer and address.
            if let Some(sent) = unsafe { shared_io::sendto(fd, &r, buf, n, flags, a, len)? } {
                return Ok(sent);
            }
        }
        if let Some(s) = vsock(fd) {
            // SAFETY: the caller's address.
            if let Some(dst) = unsafe { destination(fd, &s, a, len)? } {
                // SAFETY: `buf` has `n` readable bytes per the caller.
                return ops::send(&s, unsafe { slice(buf, n)? }, flags, dst).map(len_ok);
            }
        }
        // SAFETY: passed through as given.
        Ok(unsafe { real::sendto(fd, buf, n, flags, a, len) })
    })
}

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

#[unsafe(no_mangle)]
pub unsafe extern "C" fn sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t {
    pass_plain!(fd, real::sendmsg(fd, msg, flags));
    guard(move || {
        if let Some(r) = remote(fd) {
            // SAFETY: the caller's msghdr.
            if let Some(sent) = unsafe { shared_io::sendmsg(fd, &r, msg, flags)? } {
                return Ok(sent);
            }
        }
        if let Some(s) = vsock(fd) {
            // SAFETY: the caller's msghdr.
            if let Some(n) = unsafe { sendmsg_v(fd, &s, msg, flags)? } {
                return Ok(len_ok(n));
            }
        }
        // SAFETY: passed through as given.
        Ok(unsafe { real::sendmsg(fd, msg, flags) })
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn sendmmsg(fd: c_int, msgs: *mut mmsghdr, n: c_uint, flags: c_int) -> c_int {
    pass_plain!(fd, real::sendmmsg(fd, msgs, n, flags));
    guard(move || {
        if let Some(r) = remote(fd) {
            // SAFETY: the caller's entries.
            if let Some(done) = unsafe { shared_io::sendmmsg(fd, &r, msgs, n, flags)? } {
                return Ok(done);
            }
        }
        if let Some(s) = vsock(fd) {
            if msgs.is_null() {
                return Err(libc::EFAULT);
            }
            let mut done = 0;
            for i in 0..n.min(1024) as usize {
                // SAFETY: `msgs` holds `n` entries per the caller.
                let m = unsafe { &mut *msgs.add(i) };
                // SAFETY: a valid msghdr inside it.
                match unsafe { sendmsg_v(fd, &s, &m.msg_hdr, flags) } {
                    Ok(Some(len)) => {
                        m.msg_len = len as c_uint;
                        done += 1;
                    }
                    Ok(None) if done == 0 => break,
                    Ok(None) => return Ok(done),
                    Err(_) if done > 0 => return Ok(done),
                    Err(e) => return Err(e),
                }
            }
            if done > 0 {
                return Ok(done);
            }
        }
        // SAFETY: passed through as given.
        Ok(unsafe { real::sendmmsg(fd, msgs, n, flags) })
    })
}

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
    unsafe { poll(fds, n, timeout) }
}

// ---- readiness -----------------------------------------------------------

fn ms_timeout(ms: c_int) -> Option<Duration> {
    (ms >= 0).then(|| Duration::from_millis(ms as u64))
}

fn ts_timeout(ts: *const timespec) -> Res<Option<Duration>> {
    if ts.is_null() {
        return Ok(None);
    }
    // SAFETY: a valid timespec per the caller.
    let t = unsafe { *ts };
    if t.tv_sec < 0 || !(0..1_000_000_000).contains(&t.tv_nsec) {
        return Err(libc::EINVAL);
    }
    Ok(Some(Duration::new(t.tv_sec as u64, t.tv_nsec as u32)))
}

/// # Safety
/// `fds` must hold `n` pollfds.
unsafe fn poll_any(
    fds: *mut pollfd,
    n: nfds_t,
    timeout: Option<Duration>,
    mask: *const sigset_t,
) -> Option<Res<c_int>> {
    if stack::bypass() || fds.is_null() || n == 0 || n > 65536 {
        return None;
    }
    // SAFETY: `fds` holds `n` pollfds per the caller.
    let fds = unsafe { std::slice::from_raw_parts_mut(fds, n as usize) };
    let entries = poll::classify(fds)?;
    Some(poll::poll(fds, &entries, timeout, mask))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn poll(fds: *mut pollfd, n: nfds_t, timeout: c_int) -> c_int {
    guard(move || {
        // SAFETY: the caller's pollfds.
        match unsafe { poll_any(fds, n, ms_timeout(timeout), std::ptr::null()) } {
            Some(r) => r,
            // SAFETY: passed through as given.
            None => Ok(unsafe { real::poll(fds, n, timeout) }),
        }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn ppoll(
    fds: *mut pollfd,
    n: nfds_t,
    ts: *const timespec,
    mask: *const sigset_t,
) -> c_int {
    guard(move || {
        let t = ts_timeout(ts)?;
        // SAFETY: the caller's pollfds.
        match unsafe { poll_any(fds, n, t, mask) } {
            Some(r) => r,
            // SAFETY: passed through as given.
            None => Ok(unsafe { real::ppoll(fds, n, ts, mask) }),
        }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn select(
    n: c_int,
    r: *mut fd_set,
    w: *mut fd_set,
    e: *mut fd_set,
    tv: *mut timeval,
) -> c_int {
    guard(move || {
        let timeout = if tv.is_null() {
            None
        } else {
            // SAFETY: a valid timeval per the caller.
            let t = unsafe { *tv };
            if t.tv_sec < 0 || t.tv_usec < 0 {
                return Err(libc::EINVAL);
            }
            Some(Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64))
        };
        if stack::bypass() {
            // SAFETY: passed through as given.
            return Ok(unsafe { real::select(n, r, w, e, tv) });
        }
        let start = Instant::now();
        // SAFETY: the caller's fd_sets.
        match unsafe { poll::select(n, r, w, e, timeout, std::ptr::null()) } {
            Some(res) => {
                if let Some(t) = timeout {
                    // Linux writes back the time not slept.
                    let left = t.saturating_sub(start.elapsed());
                    // SAFETY: a valid timeval.
                    unsafe {
                        (*tv).tv_sec = left.as_secs() as libc::time_t;
                        (*tv).tv_usec = left.subsec_micros() as libc::suseconds_t;
                    }
                }
                res
            }
            // SAFETY: passed through as given.
            None => Ok(unsafe { real::select(n, r, w, e, tv) }),
        }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn pselect(
    n: c_int,
    r: *mut fd_set,
    w: *mut fd_set,
    e: *mut fd_set,
    ts: *const timespec,
    mask: *const sigset_t,
) -> c_int {
    guard(move || {
        let timeout = ts_timeout(ts)?;
        if !stack::bypass() {
            // SAFETY: the caller's fd_sets.
            if let Some(res) = unsafe { poll::select(n, r, w, e, timeout, mask) } {
                return res;
            }
        }
        // SAFETY: passed through as given.
        Ok(unsafe { real::pselect(n, r, w, e, ts, mask) })
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn epoll_create(size: c_int) -> c_int {
    // SAFETY: integer argument.
    guard(move || fresh(unsafe { real::epoll_create(size) }))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn epoll_create1(flags: c_int) -> c_int {
    // SAFETY: integer argument.
    guard(move || fresh(unsafe { real::epoll_create1(flags) }))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn epoll_ctl(
    epfd: c_int,
    op: c_int,
    fd: c_int,
    ev: *mut epoll_event,
) -> c_int {
    pass_plain!(fd, real::epoll_ctl(epfd, op, fd, ev));
    guard(move || match vsock(fd) {
        Some(s) => {
            // SAFETY: a valid event or null, per the caller.
            let e = unsafe { ev.as_ref() }.map(|e| epoll_event {
                events: e.events,
                u64: e.u64,
            });
            poll::epoll_ctl(epfd, op, fd, &s, e).map(|()| 0)
        }
        // SAFETY: passed through as given.
        None => Ok(unsafe { real::epoll_ctl(epfd, op, fd, ev) }),
    })
}

/// # Safety
/// `evs` must hold `max` events.
unsafe fn epoll_any(
    epfd: c_int,
    evs: *mut epoll_event,
    max: c_int,
    timeout: Option<Duration>,
    mask: *const sigset_t,
) -> Option<Res<c_int>> {
    if stack::bypass() {
        return None;
    }
    let Some(Entry::Epoll(set)) = table::get(epfd) else {
        return None;
    };
    if set
        .regs
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .is_empty()
    {
        return None;
    }
    if max <= 0 || evs.is_null() {
        return Some(Err(if evs.is_null() {
            libc::EFAULT
        } else {
            libc::EINVAL
        }));
    }
    // SAFETY: `evs` holds `max` events per the caller.
    let out = unsafe { std::slice::from_raw_parts_mut(evs, max as usize) };
    Some(poll::epoll_wait(epfd, &set, out, timeout, mask))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn epoll_wait(
    epfd: c_int,
    evs: *mut epoll_event,
    max: c_int,
    t: c_int,
) -> c_int {
    pass_plain!(epfd, real::epoll_wait(epfd, evs, max, t));
    guard(move || {
        // SAFETY: the caller's event buffer.
        match unsafe { epoll_any(epfd, evs, max, ms_timeout(t), std::ptr::null()) } {
            Some(r) => r,
            // SAFETY: passed through as given.
            None => Ok(unsafe { real::epoll_wait(epfd, evs, max, t) }),
        }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn epoll_pwait(
    epfd: c_int,
    evs: *mut epoll_event,
    max: c_int,
    t: c_int,
    mask: *const sigset_t,
) -> c_int {
    pass_plain!(epfd, real::epoll_pwait(epfd, evs, max, t, mask));
    guard(move || {
        // SAFETY: the caller's event buffer.
        match unsafe { epoll_any(epfd, evs, max, ms_timeout(t), mask) } {
            Some(r) => r,
            // SAFETY: passed through as given.
            None => Ok(unsafe { real::epoll_pwait(epfd, evs, max, t, mask) }),
        }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn epoll_pwait2(
    epfd: c_int,
    evs: *mut epoll_event,
    max: c_int,
    ts: *const timespec,
    mask: *const sigset_t,
) -> c_int {
    pass_plain!(epfd, real::epoll_pwait2(epfd, evs, max, ts, mask));
    guard(move || {
        let t = ts_timeout(ts)?;
        // SAFETY: the caller's event buffer.
        match unsafe { epoll_any(epfd, evs, max, t, mask) } {
            Some(r) => r,
            // SAFETY: passed through as given.
            None => Ok(unsafe { real::epoll_pwait2(epfd, evs, max, ts, mask) }),
        }
    })
}

// ---- fd plumbing -----------------------------------------------------------

/// After a dup-like call made `to` a copy of `from`: copy the mapping.
fn dup_mapping(from: c_int, to: c_int) {
    if to < 0 {
        return;
    }
    let e = table::get(from);
    let old = match e {
        Some(e) => table::insert(to, e),
        None => table::remove(to),
    };
    drop(old);
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn dup(fd: c_int) -> c_int {
    guard(move || {
        // SAFETY: integer argument.
        let r = unsafe { real::dup(fd) };
        dup_mapping(fd, r);
        Ok(r)
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn dup2(fd: c_int, to: c_int) -> c_int {
    guard(move || {
        guard_internal(to, libc::EBUSY)?;
        // SAFETY: integer arguments.
        let r = unsafe { real::dup2(fd, to) };
        if r >= 0 && fd != to {
            dup_mapping(fd, r);
        }
        Ok(r)
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn dup3(fd: c_int, to: c_int, flags: c_int) -> c_int {
    guard(move || {
        guard_internal(to, libc::EBUSY)?;
        // SAFETY: integer arguments.
        let r = unsafe { real::dup3(fd, to, flags) };
        if r >= 0 {
            dup_mapping(fd, r);
        }
        Ok(r)
    })
}

fn do_fcntl(fd: c_int, cmd: c_int, arg: c_ulong) -> Res<c_int> {
    // SAFETY: the caller's command and argument, passed through.
    let r = unsafe { real::fcntl(fd, cmd, arg) };
    match cmd {
        libc::F_DUPFD | libc::F_DUPFD_CLOEXEC if r >= 0 => dup_mapping(fd, r),
        libc::F_SETFL if r >= 0 => {
            if let Some(s) = vsock(fd) {
                s.set_nonblocking(arg as c_int & libc::O_NONBLOCK != 0);
            }
        }
        _ => {}
    }
    Ok(r)
}

/// fcntl(2). Variadic in C; see the module docs for the third argument.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fcntl(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int {
    // A dup of a plain fd may land on a stale mapping: the full path.
    if cmd != libc::F_DUPFD && cmd != libc::F_DUPFD_CLOEXEC {
        pass_plain!(fd, real::fcntl(fd, cmd, arg));
    }
    guard(move || do_fcntl(fd, cmd, arg))
}

/// fcntl64(2): glibc's name for fcntl with 64-bit file offsets.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fcntl64(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int {
    // A dup of a plain fd may land on a stale mapping: the full path.
    if cmd != libc::F_DUPFD && cmd != libc::F_DUPFD_CLOEXEC {
        pass_plain!(fd, real::fcntl(fd, cmd, arg));
    }
    guard(move || do_fcntl(fd, cmd, arg))
}

/// ioctl(2). Variadic in C; see the module docs for the third argument.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ioctl(fd: c_int, req: c_ulong, arg: c_ulong) -> c_int {
    pass_plain!(fd, real::ioctl(fd, req, arg));
    guard(move || {
        let Some(s) = vsock(fd) else {
            // SAFETY: passed through as given.
            return Ok(unsafe { real::ioctl(fd, req, arg) });
        };
        let p = arg as *mut c_int;
        match req {
            libc::FIONBIO => {
                if p.is_null() {
                    return Err(libc::EFAULT);
                }
                // SAFETY: FIONBIO's argument is an int pointer.
                s.set_nonblocking(unsafe { *p } != 0);
                // Mirror it on the backing eventfd, so F_GETFL agrees.
                // SAFETY: as above.
                Ok(unsafe { real::ioctl(fd, req, arg) })
            }
            libc::FIONREAD | libc::TIOCOUTQ => {
                if p.is_null() {
                    return Err(libc::EFAULT);
                }
                let n = if req == libc::FIONREAD {
                    ops::readable_bytes(&s)?
                } else {
                    ops::unsent_bytes(&s)?
                };
                // SAFETY: these take an int pointer.
                unsafe { *p = c_int::try_from(n).unwrap_or(c_int::MAX) };
                Ok(0)
            }
            // Interface queries (SIOCGIF*...) do not depend on the socket:
            // answer them from a kernel socket of the same family.
            0x8900..=0x89ff => {
                // SAFETY: integer arguments.
                let k =
                    unsafe { real::socket(s.family(), libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
                if k < 0 {
                    return Err(real::errno());
                }
                // SAFETY: passed through as given, on our temporary socket.
                let r = unsafe { real::ioctl(k, req, arg) };
                let e = real::errno();
                // SAFETY: our own fd.
                unsafe { real::close(k) };
                if r < 0 { Err(e) } else { Ok(r) }
            }
            _ => Err(libc::ENOTTY),
        }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn fork() -> c_int {
    // SAFETY: no arguments; the atfork handler marks the child.
    guard(move || Ok(unsafe { real::fork() }))
}

/// vfork is treated as fork: the child may not share the parent's stack
/// state, and fork gives it its own copy.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vfork() -> c_int {
    // SAFETY: as fork.
    guard(move || Ok(unsafe { real::fork() }))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn pipe(fds: *mut c_int) -> c_int {
    // SAFETY: passed through; on success two fds are written.
    guard(move || unsafe { pipe_done(real::pipe(fds), fds) })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn pipe2(fds: *mut c_int, flags: c_int) -> c_int {
    // SAFETY: passed through; on success two fds are written.
    guard(move || unsafe { pipe_done(real::pipe2(fds, flags), fds) })
}

/// # Safety
/// On success `fds` holds two fds.
unsafe fn pipe_done(r: c_int, fds: *mut c_int) -> Res<c_int> {
    if r == 0 {
        // SAFETY: per the caller.
        unsafe {
            table::forget(*fds);
            table::forget(*fds.add(1));
        }
    }
    Ok(r)
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn eventfd(init: c_uint, flags: c_int) -> c_int {
    // SAFETY: integer arguments.
    guard(move || fresh(unsafe { real::eventfd(init, flags) }))
}

/// open(2): variadic in C (the mode); see the module docs.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn open(path: *const c_char, flags: c_int, mode: c_uint) -> c_int {
    // SAFETY: passed through as given.
    guard(move || fresh(unsafe { real::open(path, flags, mode) }))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn open64(path: *const c_char, flags: c_int, mode: c_uint) -> c_int {
    // SAFETY: passed through as given.
    guard(move || fresh(unsafe { real::open64(path, flags, mode) }))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn openat(
    dir: c_int,
    path: *const c_char,
    flags: c_int,
    mode: c_uint,
) -> c_int {
    // SAFETY: passed through as given.
    guard(move || fresh(unsafe { real::openat(dir, path, flags, mode) }))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn openat64(
    dir: c_int,
    path: *const c_char,
    flags: c_int,
    mode: c_uint,
) -> c_int {
    // SAFETY: passed through as given.
    guard(move || fresh(unsafe { real::openat64(dir, path, flags, mode) }))
}
