//! `libustack.so`: the LD_PRELOAD shim that puts unmodified programs'
//! AF_INET/AF_INET6 TCP and UDP sockets on the userspace stack.
//!
//! - [`hooks`]: the exported replacements of libc's socket calls.
//! - [`real`]: the real libc functions (`dlsym(RTLD_NEXT)`), for pass-through
//!   and for the shim's own I/O.
//! - [`table`]: fd number -> virtual socket or epoll set.
//! - [`sock`], [`ops`], [`sockopt`], [`addr`]: virtual sockets and the calls
//!   on them, in errno terms.
//! - [`poll`]: poll/select/epoll over mixed kernel and virtual fds.
//! - [`stack`]: the lazily started stack, fallback, fork and exit linger.
//!
//! Documented choices (see the README): sockets are created virtual and
//! become kernel sockets when bound or connected to loopback (or when an
//! unbound UDP socket first sends to loopback); a virtual fd is always
//! close-on-exec; without a stack, AF_INET/AF_INET6 socket() fails with
//! `EACCES` (`USTACK_FALLBACK=fail`, the default) or returns a kernel socket
//! (`kernel`); a malformed `USTACK_*` variable makes it fail with `EINVAL`;
//! in a forked child, inherited virtual sockets fail with `EBADFD`.

pub mod addr;
pub mod hooks;
pub mod ops;
pub mod poll;
pub mod real;
pub mod sock;
pub mod sockopt;
pub mod stack;
pub mod table;
