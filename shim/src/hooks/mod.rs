//! The exported functions that replace libc's, in four files: [`sockets`]
//! (socket, bind, connect, accept, names, options, shutdown, close),
//! [`data`] (read, write, recv*, send*, sendfile and the fortified
//! variants), [`ready`] (poll, select, epoll) and [`fds`] (dup, fcntl,
//! ioctl, fork, pipe, open: the calls that create or copy fds).
//!
//! Most hooks on an fd are written with [`fd_hook!`]: the pass-through test,
//! the guard, the one table lookup ([`Virt`]: an in-process socket or a
//! shared-stack one) and the fallback to the real call are written once
//! there, and a hook states only what it does on a virtual socket.
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

use std::ffi::{c_int, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use libc::{iovec, size_t, ssize_t};

#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
compile_error!("the variadic hooks assume the x86-64 or AArch64 Linux calling convention");

use crate::real::{Fail, set_errno};
use crate::shared::Remote;
use crate::sock::{Res, VSock};
use crate::stack;
use crate::table::{self, Entry};

/// Returns the real call's result at once when `fd` is certainly not
/// virtual (see the module docs).
macro_rules! pass_plain {
    ($fd:expr, $call:expr) => {
        if $crate::table::plain($fd) {
            // SAFETY: passed through as given, under the hook's contract.
            return unsafe { $call };
        }
    };
}

/// An exported hook on an fd, the real function of the same name its
/// fallback: `fd_hook!(fn name(fd, arg: Type, ...) -> Ret, |v| body)`.
/// The expansion passes a certainly plain fd straight through
/// ([`pass_plain!`]), runs the rest under [`guard`], looks the fd up once,
/// and calls the real function when it is not virtual. `body` sees the
/// socket as `v` ([`Virt`]) and gives `Res<Ret>`; with `|v| maybe body` it
/// gives `Res<Option<Ret>>`, `None` meaning "call the real function after
/// all" (the socket just became a kernel socket for loopback).
macro_rules! fd_hook {
    ($(#[$m:meta])* fn $name:ident($fd:ident $(, $a:ident: $t:ty)*) -> $ret:ty, |$v:ident| maybe $body:expr) => {
        $(#[$m])*
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name($fd: c_int $(, $a: $t)*) -> $ret {
            pass_plain!($fd, $crate::real::$name($fd $(, $a)*));
            $crate::hooks::guard(move || {
                if let Some($v) = $crate::hooks::lookup($fd)
                    && let Some(done) = $body
                {
                    return Ok(done);
                }
                // SAFETY: passed through as given, under the hook's contract.
                Ok(unsafe { $crate::real::$name($fd $(, $a)*) })
            })
        }
    };
    ($(#[$m:meta])* fn $name:ident($fd:ident $(, $a:ident: $t:ty)*) -> $ret:ty, |$v:ident| $body:expr) => {
        $(#[$m])*
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name($fd: c_int $(, $a: $t)*) -> $ret {
            pass_plain!($fd, $crate::real::$name($fd $(, $a)*));
            $crate::hooks::guard(move || match $crate::hooks::lookup($fd) {
                Some($v) => $body,
                // SAFETY: passed through as given, under the hook's contract.
                None => Ok(unsafe { $crate::real::$name($fd $(, $a)*) }),
            })
        }
    };
}

/// Kept out of line so the hooks' pass-through path sets up no frame for
/// it.
#[inline(never)]
pub(crate) fn guard<T: Fail>(f: impl FnOnce() -> Res<T>) -> T {
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

/// A virtual socket as one lookup finds it: which model serves it.
pub(crate) enum Virt {
    /// The in-process stack's ([`crate::ops`]).
    Local(Arc<VSock>),
    /// The shared stack's, an AF_UNIX pair ([`crate::shared`]).
    Shared(Arc<Remote>),
}

/// The virtual socket at `fd`, if it is one (one bitmap load for an fd
/// that never was).
pub(crate) fn lookup(fd: c_int) -> Option<Virt> {
    if !table::maybe_virtual(fd) || stack::bypass() {
        return None;
    }
    match table::get(fd)? {
        Entry::Sock(s) => Some(Virt::Local(s)),
        Entry::Remote(r) => Some(Virt::Shared(r)),
        _ => None,
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

// The hooks, after the macros they use (textual scope).

mod data;
mod fds;
mod ready;
mod sockets;

pub use data::*;
pub use fds::*;
pub use ready::*;
pub use sockets::*;
