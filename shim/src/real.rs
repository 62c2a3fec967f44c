//! The real libc functions behind our hooks, resolved once each with
//! `dlsym(RTLD_NEXT)`.
//!
//! Owns nothing but the cached function pointers. Every system call the
//! shim makes for itself, and every call it passes through, goes through
//! here, so no hook ever calls back into another hook.

use std::ffi::{c_char, c_int, c_uint, c_ulong, c_void};
use std::sync::atomic::{AtomicPtr, Ordering};

use libc::{
    epoll_event, fd_set, msghdr, nfds_t, off_t, pollfd, sigset_t, size_t, sockaddr, socklen_t,
    ssize_t, timespec, timeval,
};

/// What a failing call returns when the real function is missing.
pub trait Fail {
    fn fail() -> Self;
}

impl Fail for c_int {
    fn fail() -> Self {
        -1
    }
}

impl Fail for ssize_t {
    fn fail() -> Self {
        -1
    }
}

/// Looks `name` (NUL-terminated) up in the libraries after ours; null if
/// there is no such function.
pub fn lookup(name: &'static str) -> *mut c_void {
    // SAFETY: `name` is a static NUL-terminated string; dlsym only reads it.
    unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr().cast()) }
}

/// Sets the calling thread's errno.
pub fn set_errno(e: c_int) {
    // SAFETY: __errno_location returns this thread's errno slot.
    unsafe { *libc::__errno_location() = e };
}

/// The calling thread's errno.
pub fn errno() -> c_int {
    // SAFETY: as above.
    unsafe { *libc::__errno_location() }
}

// Each real function is called through a pointer in its own static. The
// pointer starts at a trampoline that looks the function up, stores it and
// calls it, and `resolve_all` (run at load time) stores every one before the
// program runs; so a pass-through call is one load and one indirect jump,
// with no "resolved yet?" test (the pass-through hooks' cost is the shim's
// overhead on every non-socket read and write). A function dlsym cannot find
// is replaced by one that fails with ENOSYS.
macro_rules! real_fns {
    ($( fn $name:ident ( $($arg:ident : $ty:ty),* ) -> $ret:ty ; )*) => {
        $(
            /// The real function of the same name.
            ///
            /// # Safety
            /// As the C function's.
            #[inline(always)]
            pub unsafe fn $name($($arg: $ty),*) -> $ret {
                // SAFETY: the slot holds a function of this signature
                // (see the module's `slot`).
                let f: unsafe extern "C" fn($($ty),*) -> $ret =
                    unsafe { std::mem::transmute(slots::$name::SLOT.load(Ordering::Relaxed)) };
                // SAFETY: the caller upholds the C function's contract.
                unsafe { f($($arg),*) }
            }
        )*

        /// The function pointers, one module per function.
        mod slots {
            $(
                pub mod $name {
                    #[allow(unused_imports)]
                    use super::super::*;

                    type F = unsafe extern "C" fn($($ty),*) -> $ret;

                    /// The real function, or `first` until it is looked up.
                    pub static SLOT: AtomicPtr<c_void> = AtomicPtr::new(first as F as *mut c_void);

                    /// Looks the function up and stores it; racing callers
                    /// store the same value, so Relaxed suffices.
                    pub fn resolve() -> F {
                        let p = lookup(concat!(stringify!($name), "\0"));
                        let f: F = if p.is_null() {
                            missing
                        } else {
                            // SAFETY: dlsym found the C function of this
                            // name, whose signature is the one declared.
                            unsafe { std::mem::transmute::<*mut c_void, F>(p) }
                        };
                        SLOT.store(f as *mut c_void, Ordering::Relaxed);
                        f
                    }

                    unsafe extern "C" fn first($($arg: $ty),*) -> $ret {
                        // SAFETY: the caller upholds the C function's contract.
                        unsafe { resolve()($($arg),*) }
                    }

                    unsafe extern "C" fn missing($(_: $ty),*) -> $ret {
                        set_errno(libc::ENOSYS);
                        <$ret as Fail>::fail()
                    }
                }
            )*

            /// Looks every function up.
            pub fn resolve_all() {
                $( $name::resolve(); )*
            }
        }
    };
}

real_fns! {
    fn socket(domain: c_int, ty: c_int, protocol: c_int) -> c_int;
    fn socketpair(domain: c_int, ty: c_int, protocol: c_int, sv: *mut c_int) -> c_int;
    fn bind(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int;
    fn listen(fd: c_int, backlog: c_int) -> c_int;
    fn accept(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int;
    fn accept4(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t, flags: c_int) -> c_int;
    fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int;
    fn getsockname(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int;
    fn getpeername(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int;
    fn getsockopt(fd: c_int, level: c_int, name: c_int, val: *mut c_void, len: *mut socklen_t) -> c_int;
    fn setsockopt(fd: c_int, level: c_int, name: c_int, val: *const c_void, len: socklen_t) -> c_int;
    fn shutdown(fd: c_int, how: c_int) -> c_int;
    fn close(fd: c_int) -> c_int;
    fn close_range(first: c_uint, last: c_uint, flags: c_int) -> c_int;
    fn read(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t;
    fn write(fd: c_int, buf: *const c_void, n: size_t) -> ssize_t;
    fn readv(fd: c_int, iov: *const libc::iovec, n: c_int) -> ssize_t;
    fn writev(fd: c_int, iov: *const libc::iovec, n: c_int) -> ssize_t;
    fn recv(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int) -> ssize_t;
    fn recvfrom(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> ssize_t;
    fn recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t;
    fn recvmmsg(fd: c_int, msgs: *mut libc::mmsghdr, n: c_uint, flags: c_int, timeout: *mut timespec) -> c_int;
    fn send(fd: c_int, buf: *const c_void, n: size_t, flags: c_int) -> ssize_t;
    fn sendto(fd: c_int, buf: *const c_void, n: size_t, flags: c_int, addr: *const sockaddr, len: socklen_t) -> ssize_t;
    fn sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t;
    fn sendmmsg(fd: c_int, msgs: *mut libc::mmsghdr, n: c_uint, flags: c_int) -> c_int;
    fn sendfile(out: c_int, inp: c_int, off: *mut off_t, n: size_t) -> ssize_t;
    fn sendfile64(out: c_int, inp: c_int, off: *mut i64, n: size_t) -> ssize_t;
    fn pread(fd: c_int, buf: *mut c_void, n: size_t, off: off_t) -> ssize_t;
    fn poll(fds: *mut pollfd, n: nfds_t, timeout: c_int) -> c_int;
    fn ppoll(fds: *mut pollfd, n: nfds_t, ts: *const timespec, mask: *const sigset_t) -> c_int;
    fn select(n: c_int, r: *mut fd_set, w: *mut fd_set, e: *mut fd_set, tv: *mut timeval) -> c_int;
    fn pselect(n: c_int, r: *mut fd_set, w: *mut fd_set, e: *mut fd_set, ts: *const timespec, mask: *const sigset_t) -> c_int;
    fn epoll_create(size: c_int) -> c_int;
    fn epoll_create1(flags: c_int) -> c_int;
    fn epoll_ctl(epfd: c_int, op: c_int, fd: c_int, ev: *mut epoll_event) -> c_int;
    fn epoll_wait(epfd: c_int, evs: *mut epoll_event, max: c_int, timeout: c_int) -> c_int;
    fn epoll_pwait(epfd: c_int, evs: *mut epoll_event, max: c_int, timeout: c_int, mask: *const sigset_t) -> c_int;
    fn epoll_pwait2(epfd: c_int, evs: *mut epoll_event, max: c_int, timeout: *const timespec, mask: *const sigset_t) -> c_int;
    fn dup(fd: c_int) -> c_int;
    fn dup2(fd: c_int, to: c_int) -> c_int;
    fn dup3(fd: c_int, to: c_int, flags: c_int) -> c_int;
    fn fork() -> c_int;
    fn pipe(fds: *mut c_int) -> c_int;
    fn pipe2(fds: *mut c_int, flags: c_int) -> c_int;
    fn eventfd(init: c_uint, flags: c_int) -> c_int;
    fn open(path: *const c_char, flags: c_int, mode: c_uint) -> c_int;
    fn open64(path: *const c_char, flags: c_int, mode: c_uint) -> c_int;
    fn openat(dir: c_int, path: *const c_char, flags: c_int, mode: c_uint) -> c_int;
    fn openat64(dir: c_int, path: *const c_char, flags: c_int, mode: c_uint) -> c_int;
}

/// The real `fcntl`: variadic in C, its third argument passed as an
/// unsigned long (an int or a pointer, as the command says).
///
/// # Safety
/// As `fcntl(2)` for `cmd` and `arg`.
#[inline(always)]
pub unsafe fn fcntl(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int {
    // SAFETY: the slot holds libc's variadic fcntl or `missing_variadic`.
    let f: Variadic = unsafe { std::mem::transmute(FCNTL.load(Ordering::Relaxed)) };
    // SAFETY: the caller upholds fcntl's contract for `cmd`.
    unsafe { f(fd, cmd, arg) }
}

/// The real `ioctl` (variadic in C), with its argument as an unsigned long.
///
/// # Safety
/// As `ioctl(2)` for `req` and `arg`.
#[inline(always)]
pub unsafe fn ioctl(fd: c_int, req: c_ulong, arg: c_ulong) -> c_int {
    // SAFETY: the slot holds libc's variadic ioctl or `missing_variadic`;
    // ioctl's request is an unsigned long, passed in the same register as
    // fcntl's int command.
    let f: unsafe extern "C" fn(c_int, c_ulong, ...) -> c_int =
        unsafe { std::mem::transmute(IOCTL.load(Ordering::Relaxed)) };
    // SAFETY: the caller upholds ioctl's contract for `req`.
    unsafe { f(fd, req, arg) }
}

type Variadic = unsafe extern "C" fn(c_int, c_int, ...) -> c_int;

static FCNTL: AtomicPtr<c_void> = AtomicPtr::new(fcntl_first as *mut c_void);
static IOCTL: AtomicPtr<c_void> = AtomicPtr::new(ioctl_first as *mut c_void);

/// Looks a variadic function up into `slot`; stores `missing_variadic`
/// (which fails with ENOSYS, whatever the arguments) if there is none.
fn resolve_variadic(slot: &AtomicPtr<c_void>, name: &'static str) -> *mut c_void {
    let p = lookup(name);
    let p = if p.is_null() {
        missing_variadic as *mut c_void
    } else {
        p
    };
    slot.store(p, Ordering::Relaxed);
    p
}

unsafe extern "C" fn fcntl_first(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int {
    resolve_variadic(&FCNTL, "fcntl\0");
    // SAFETY: as `fcntl`, now resolved.
    unsafe { fcntl(fd, cmd, arg) }
}

unsafe extern "C" fn ioctl_first(fd: c_int, req: c_ulong, arg: c_ulong) -> c_int {
    resolve_variadic(&IOCTL, "ioctl\0");
    // SAFETY: as `ioctl`, now resolved.
    unsafe { ioctl(fd, req, arg) }
}

extern "C" fn missing_variadic(_: c_int, _: c_ulong, _: c_ulong) -> c_int {
    set_errno(libc::ENOSYS);
    -1
}

/// Looks every real function up before the program runs, so the first
/// pass-through call does not (and a fork child never calls dlsym).
extern "C" fn resolve_at_load() {
    slots::resolve_all();
    resolve_variadic(&FCNTL, "fcntl\0");
    resolve_variadic(&IOCTL, "ioctl\0");
}

#[used]
#[unsafe(link_section = ".init_array")]
static RESOLVE_AT_LOAD: extern "C" fn() = resolve_at_load;
