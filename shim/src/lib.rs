//! The LD_PRELOAD shim that puts unmodified programs' AF_INET/AF_INET6
//! TCP and UDP sockets on the userspace stack. This crate is its code;
//! `shim/preload` makes it `libustack.so` (and adds the load-time hook),
//! and the packetdrill adapter links it too.
//!
//! - [`hooks`]: the exported replacements of libc's socket calls.
//! - [`buf`]: the caller's memory (pointers, iovecs) as slices.
//! - [`real`]: the real libc functions (`dlsym(RTLD_NEXT)`), for pass-through
//!   and for the shim's own I/O.
//! - [`table`]: fd number -> virtual socket or epoll set.
//! - [`sock`], [`ops`], [`sockopt`], [`addr`]: virtual sockets and the calls
//!   on them, in errno terms.
//! - [`poll`]: poll/select/epoll over mixed kernel and virtual fds.
//! - [`stack`]: the lazily started stack, fallback and exit linger.
//! - [`process`]: whether this is a fork child, and whether the shim's own
//!   code is running on this thread (its calls pass straight to libc).
//! - [`shared`]: sockets of the shared stack (a daemon serving many
//!   programs), real AF_UNIX fds that fork, exec and SCM_RIGHTS carry.
//!
//! Documented choices (see the README): sockets are created virtual and
//! become kernel sockets when bound or connected to loopback (or when an
//! unbound UDP socket first sends to loopback); a virtual fd is always
//! close-on-exec; without a stack, AF_INET/AF_INET6 socket() fails with
//! `EACCES` (`USTACK_FALLBACK=fail`, the default) or returns a kernel socket
//! (`kernel`); a malformed `USTACK_*` variable makes it fail with `EINVAL`;
//! in a forked child, inherited virtual sockets fail with `EBADFD`.

pub mod addr;
pub mod buf;
pub mod hooks;
pub mod ops;
pub mod poll;
pub mod process;
pub mod real;
pub mod shared;
pub mod shared_io;
pub mod sock;
pub mod sockopt;
pub mod stack;
pub mod table;

/// At exit: every virtual socket closes, and an in-process stack lingers
/// until their data is delivered ([`stack::linger_at_exit`]). Registered
/// at load, so it runs after the program's own exit handlers, which may
/// still use their sockets.
extern "C" fn at_exit() {
    let _ = std::panic::catch_unwind(|| stack::linger_at_exit(|| drop(table::take_all())));
}

/// At load: registers [`at_exit`]; a program exec'd by another under the
/// shim finds the sockets it inherited from the shared stack.
pub extern "C" fn at_load() {
    // SAFETY: registering a plain extern "C" function with no state.
    unsafe { libc::atexit(at_exit) };
    let _ = std::panic::catch_unwind(|| {
        if let Ok(cfg) = ustack_core::config::Config::from_env() {
            process::as_shim(|| shared::adopt_inherited(&cfg));
        }
    });
}
