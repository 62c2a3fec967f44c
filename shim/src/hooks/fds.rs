//! Hooks that create, copy or reconfigure fds: dup, dup2, dup3, fcntl,
//! ioctl, fork, vfork, pipe, eventfd, open. A copy of a virtual fd maps to
//! the same socket; a fresh fd the shim opened for itself is marked its own.

use std::ffi::{c_char, c_int, c_uint, c_ulong};

use super::{fresh, guard, guard_internal, vsock};
use crate::ops;
use crate::real;
use crate::sock::Res;
use crate::table;

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
