//! Hooks that make, name, configure and end sockets: socket, socketpair,
//! bind, listen, accept, connect, getsockname, getpeername, getsockopt,
//! setsockopt, shutdown, close, close_range.

use std::ffi::{c_int, c_uint, c_void};

use libc::{sockaddr, socklen_t};

use super::{Virt, fresh, guard, guard_internal, lookup};
use crate::addr::{self, Parsed};
use crate::buf::slice;
use crate::ops::{self, Route};
use crate::process;
use crate::real;
use crate::sock::{Res, is_loopback};
use crate::table;
use crate::{shared, sockopt};

#[unsafe(no_mangle)]
pub unsafe extern "C" fn socket(domain: c_int, ty: c_int, protocol: c_int) -> c_int {
    guard(move || {
        let base = ty & !(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC);
        let inet = domain == libc::AF_INET || domain == libc::AF_INET6;
        let tcp = base == libc::SOCK_STREAM && (protocol == 0 || protocol == libc::IPPROTO_TCP);
        let udp = base == libc::SOCK_DGRAM && (protocol == 0 || protocol == libc::IPPROTO_UDP);
        if inet && (tcp || udp) && !process::bypass() {
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

/// bind and connect to a loopback address make the socket a kernel one
/// (`None`: the real call follows).
fn to_kernel_for(fd: c_int, v: &Virt) -> Res<Option<c_int>> {
    match v {
        Virt::Shared(r) => shared::to_kernel(fd, r)?,
        Virt::Local(s) => ops::to_kernel(fd, s)?,
    }
    Ok(None)
}

fd_hook!(fn bind(fd, a: *const sockaddr, len: socklen_t) -> c_int, |v| maybe {
    // SAFETY: the caller's address buffer of `len` bytes.
    match unsafe { addr::read(a, len)? } {
        Parsed::Addr(x) if is_loopback(&x) => to_kernel_for(fd, &v)?,
        Parsed::Unspec => return Err(libc::EAFNOSUPPORT),
        Parsed::Addr(x) => Some(match &v {
            Virt::Shared(r) => shared::bind(fd, r, x),
            Virt::Local(s) => ops::bind(s, x),
        }
        .map(|()| 0)?),
    }
});

fd_hook!(fn connect(fd, a: *const sockaddr, len: socklen_t) -> c_int, |v| maybe {
    // SAFETY: the caller's address buffer of `len` bytes.
    let p = unsafe { addr::read(a, len)? };
    if let Parsed::Addr(x) = p
        && is_loopback(&x)
    {
        to_kernel_for(fd, &v)?
    } else {
        Some(match &v {
            Virt::Shared(r) => shared::connect(fd, r, p.addr()),
            Virt::Local(s) => ops::connect(s, p),
        }
        .map(|()| 0)?)
    }
});

fd_hook!(fn listen(fd, backlog: c_int) -> c_int, |v| match v {
    Virt::Shared(_) => shared::listen(fd, backlog),
    Virt::Local(s) => ops::listen(&s, backlog),
}
.map(|()| 0));

fn do_accept(fd: c_int, a: *mut sockaddr, len: *mut socklen_t, flags: c_int) -> Res<c_int> {
    let (nfd, peer) = match lookup(fd) {
        Some(Virt::Shared(r)) => {
            let (nfd, peer) = shared::accept(fd, &r, flags)?;
            (nfd, addr::present(r.v6, peer))
        }
        Some(Virt::Local(s)) => ops::accept(&s, flags)?,
        // SAFETY: passed through as given.
        None => return fresh(unsafe { real::accept4(fd, a, len, flags) }),
    };
    // SAFETY: the caller's address buffer and length.
    unsafe { addr::write(peer, a, len)? };
    Ok(nfd)
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

/// getsockname / getpeername on a virtual socket.
fn name(fd: c_int, v: &Virt, peer: bool, a: *mut sockaddr, len: *mut socklen_t) -> Res<c_int> {
    let x = match v {
        Virt::Shared(r) => addr::present(r.v6, shared::name(fd, peer)?),
        Virt::Local(s) if peer => ops::peername(s)?,
        Virt::Local(s) => ops::sockname(s)?,
    };
    if a.is_null() || len.is_null() {
        return Err(libc::EFAULT);
    }
    // SAFETY: the caller's buffer and length.
    unsafe { addr::write(x, a, len) }.map(|()| 0)
}

fd_hook!(fn getsockname(fd, a: *mut sockaddr, len: *mut socklen_t) -> c_int,
    |v| name(fd, &v, false, a, len));

fd_hook!(fn getpeername(fd, a: *mut sockaddr, len: *mut socklen_t) -> c_int,
    |v| name(fd, &v, true, a, len));

fd_hook!(fn getsockopt(fd, level: c_int, name: c_int, val: *mut c_void, len: *mut socklen_t)
    -> c_int, |v| maybe {
    if val.is_null() || len.is_null() {
        // The shared stack lets the kernel answer a bad pointer; the
        // in-process one says EFAULT itself.
        match v {
            Virt::Shared(_) => None,
            Virt::Local(_) => return Err(libc::EFAULT),
        }
    } else {
        // SAFETY: `len` is a valid pointer per the caller.
        let room = unsafe { *len } as i32;
        if room < 0 {
            return Err(libc::EINVAL);
        }
        let bytes = match &v {
            Virt::Shared(_) => shared::getsockopt(fd, level, name, room as u32)?,
            Virt::Local(s) => Some(sockopt::get(s, level, name)?.bytes().to_vec()),
        };
        match bytes {
            Some(bytes) => {
                let n = bytes.len().min(room as usize);
                // SAFETY: `val` has `room` >= `n` writable bytes.
                unsafe {
                    std::ptr::copy_nonoverlapping(bytes.as_ptr(), val.cast::<u8>(), n);
                    *len = n as socklen_t;
                }
                Some(0)
            }
            // The pair's own option, passed through.
            None => None,
        }
    }
});

fd_hook!(fn setsockopt(fd, level: c_int, name: c_int, val: *const c_void, len: socklen_t)
    -> c_int, |v| maybe {
    // SAFETY: `val` has `len` readable bytes per the caller.
    let bytes = unsafe { slice(val, len as usize)? };
    match v {
        // `false`: the pair's own option, set on it by the real call.
        Virt::Shared(r) => shared::setsockopt(fd, &r, level, name, bytes)?.then_some(0),
        Virt::Local(s) => Some(sockopt::set(&s, level, name, bytes).map(|()| 0)?),
    }
});

fd_hook!(fn shutdown(fd, how: c_int) -> c_int, |v| match v {
    Virt::Shared(r) => shared::shutdown(fd, &r, how),
    Virt::Local(s) => ops::shutdown(&s, how),
}
.map(|()| 0));

#[unsafe(no_mangle)]
pub unsafe extern "C" fn close(fd: c_int) -> c_int {
    if !table::is_internal(fd) {
        pass_plain!(fd, real::close(fd));
    }
    guard(move || {
        guard_internal(fd, libc::EBADF)?;
        let old = if process::bypass() {
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
