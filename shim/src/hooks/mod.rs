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

use std::ffi::c_int;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
compile_error!("the variadic hooks assume the x86-64 or AArch64 Linux calling convention");

use crate::process;
use crate::real::{Fail, set_errno};
use crate::sock::Remote;
use crate::sock::{Res, VSock};
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
    if !table::maybe_virtual(fd) || process::bypass() {
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
    if !table::maybe_virtual(fd) || process::bypass() {
        return None;
    }
    table::sock(fd)
}

/// After a real call that returned a new fd: it is not virtual; if the
/// shim itself opened it, it is the shim's own.
fn fresh(fd: c_int) -> Res<c_int> {
    if fd >= 0 {
        table::forget(fd);
        if process::bypass() {
            log::trace!("fd {fd} is the shim's own");
            table::mark_internal(fd);
        }
    }
    Ok(fd)
}

/// The program may not close or overwrite the shim's own fds: to it they
/// are not open (`EBADF`), or busy as a dup target (`EBUSY`).
fn guard_internal(fd: c_int, e: i32) -> Res<()> {
    if !process::bypass() && table::is_internal(fd) {
        log::debug!("fd {fd} belongs to the shim; refused");
        return Err(e);
    }
    Ok(())
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
