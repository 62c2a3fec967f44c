//! `syscall(2)` for the socket calls: programs that make a socket call by
//! number instead of through its libc wrapper (libuv sends and receives
//! UDP with `syscall(__NR_sendmmsg)` and `__NR_recvmmsg`, so dig, host and
//! Node.js's dgram do) would hand a virtual socket to the kernel, which
//! sees an eventfd (in-process) or a Unix socket without the datagram
//! header (shared) and answers ENOTSOCK or garbage. Each such call on an
//! fd the shim knows goes to the hook of the same name instead; every
//! other number, and every call on another fd, goes to libc's syscall.
//!
//! Owns: the number-to-hook table. Must not touch: anything that may
//! block or lock on the pass-through path, which Rust's own futex calls
//! take (`std` parks threads with `syscall(SYS_futex)`): it is one bitmap
//! test and an atomic load.
//!
//! The arguments are read as six longs: on x86-64 and AArch64 Linux a
//! variadic call passes its integer arguments in the same registers as a
//! fixed one (as for `fcntl`), and the unused ones are ignored.

use std::sync::atomic::{AtomicPtr, Ordering};

use libc::{c_int, c_long, c_uint, c_void};

use ustack_shim::hooks;
use ustack_shim::table;

type RealSyscall = unsafe extern "C" fn(c_long, ...) -> c_long;

static REAL: AtomicPtr<c_void> = AtomicPtr::new(std::ptr::null_mut());

/// libc's syscall, looked up without any lock (a racing first call looks
/// it up twice, to the same address).
fn real() -> Option<RealSyscall> {
    let mut p = REAL.load(Ordering::Relaxed);
    if p.is_null() {
        p = ustack_shim::real::lookup("syscall\0");
        REAL.store(p, Ordering::Relaxed);
    }
    // SAFETY: dlsym found libc's syscall, of this type.
    (!p.is_null()).then(|| unsafe { std::mem::transmute::<*mut c_void, RealSyscall>(p) })
}

/// syscall(2).
///
/// # Safety
/// As syscall: the arguments the call's number requires.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn syscall(
    n: c_long,
    a: c_long,
    b: c_long,
    c: c_long,
    d: c_long,
    e: c_long,
    f: c_long,
) -> c_long {
    let fd = a as c_int;
    // SAFETY (every arm): the caller passed what the call's number takes;
    // the hook of that name has the same contract.
    unsafe {
        if n == libc::SYS_socket {
            return c_long::from(hooks::socket(a as c_int, b as c_int, c as c_int));
        }
        if !table::plain(fd) {
            let r = match n {
                libc::SYS_sendmmsg => Some(c_long::from(hooks::sendmmsg(
                    fd,
                    b as _,
                    c as c_uint,
                    d as c_int,
                ))),
                libc::SYS_recvmmsg => Some(c_long::from(hooks::recvmmsg(
                    fd,
                    b as _,
                    c as c_uint,
                    d as c_int,
                    e as _,
                ))),
                libc::SYS_sendmsg => Some(hooks::sendmsg(fd, b as _, c as c_int) as c_long),
                libc::SYS_recvmsg => Some(hooks::recvmsg(fd, b as _, c as c_int) as c_long),
                libc::SYS_sendto => {
                    Some(hooks::sendto(fd, b as _, c as _, d as c_int, e as _, f as _) as c_long)
                }
                libc::SYS_recvfrom => {
                    Some(hooks::recvfrom(fd, b as _, c as _, d as c_int, e as _, f as _) as c_long)
                }
                libc::SYS_connect => Some(c_long::from(hooks::connect(fd, b as _, c as _))),
                libc::SYS_bind => Some(c_long::from(hooks::bind(fd, b as _, c as _))),
                libc::SYS_listen => Some(c_long::from(hooks::listen(fd, b as c_int))),
                libc::SYS_accept => Some(c_long::from(hooks::accept(fd, b as _, c as _))),
                libc::SYS_accept4 => {
                    Some(c_long::from(hooks::accept4(fd, b as _, c as _, d as c_int)))
                }
                libc::SYS_getsockname => Some(c_long::from(hooks::getsockname(fd, b as _, c as _))),
                libc::SYS_getpeername => Some(c_long::from(hooks::getpeername(fd, b as _, c as _))),
                libc::SYS_getsockopt => Some(c_long::from(hooks::getsockopt(
                    fd, b as c_int, c as c_int, d as _, e as _,
                ))),
                libc::SYS_setsockopt => Some(c_long::from(hooks::setsockopt(
                    fd, b as c_int, c as c_int, d as _, e as _,
                ))),
                libc::SYS_shutdown => Some(c_long::from(hooks::shutdown(fd, b as c_int))),
                libc::SYS_close => Some(c_long::from(hooks::close(fd))),
                libc::SYS_read => Some(hooks::read(fd, b as _, c as _) as c_long),
                libc::SYS_write => Some(hooks::write(fd, b as _, c as _) as c_long),
                libc::SYS_readv => Some(hooks::readv(fd, b as _, c as c_int) as c_long),
                libc::SYS_writev => Some(hooks::writev(fd, b as _, c as c_int) as c_long),
                _ => None,
            };
            if let Some(r) = r {
                return r;
            }
        }
        match real() {
            Some(s) => s(n, a, b, c, d, e, f),
            None => {
                ustack_shim::real::set_errno(libc::ENOSYS);
                -1
            }
        }
    }
}
