//! What every API socket shares: its handle in the core, its blocking mode
//! and timeouts, and the loop that blocks a call until the core can serve
//! it.

use std::io;
use std::os::fd::RawFd;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::Stack;
use crate::runtime::ThreadWaker;
use crate::stack::{Core, SocketHandle};
use crate::time::Instant;

/// One socket in the core, shared by the clones of an API socket. The core
/// socket closes when the last clone drops.
pub(crate) struct SocketRef {
    pub stack: Stack,
    pub handle: SocketHandle,
    nonblocking: AtomicBool,
    timeouts: Mutex<(Option<Duration>, Option<Duration>)>,
}

/// Writes, inside an API socket's `impl` block, the methods that are
/// nothing but its [`SocketRef`]'s: each entry is the method's docs
/// (written where the type is, since what waits differs between TCP and
/// UDP) and its name, one of `set_read_timeout`, `set_write_timeout`,
/// `read_timeout`, `write_timeout`, `set_nonblocking`, `readiness_fd`,
/// `clear_readiness`. The socket's field must be `sock`.
macro_rules! socket_ref_methods {
    ($($(#[$attr:meta])* $method:ident;)+) => {
        $(socket_ref_methods!(@ self [$(#[$attr])*] $method);)+
    };
    // `self` comes from the arm above: a macro's own `self` would not be
    // the method's.
    (@ $self:tt [$($attr:tt)*] set_read_timeout) => {
        $($attr)*
        pub fn set_read_timeout(
            &$self,
            t: Option<::std::time::Duration>,
        ) -> ::std::io::Result<()> {
            $self.sock.set_timeout(false, t)
        }
    };
    (@ $self:tt [$($attr:tt)*] set_write_timeout) => {
        $($attr)*
        pub fn set_write_timeout(
            &$self,
            t: Option<::std::time::Duration>,
        ) -> ::std::io::Result<()> {
            $self.sock.set_timeout(true, t)
        }
    };
    (@ $self:tt [$($attr:tt)*] read_timeout) => {
        $($attr)*
        pub fn read_timeout(&$self) -> ::std::io::Result<Option<::std::time::Duration>> {
            Ok($self.sock.timeout(false))
        }
    };
    (@ $self:tt [$($attr:tt)*] write_timeout) => {
        $($attr)*
        pub fn write_timeout(&$self) -> ::std::io::Result<Option<::std::time::Duration>> {
            Ok($self.sock.timeout(true))
        }
    };
    (@ $self:tt [$($attr:tt)*] set_nonblocking) => {
        $($attr)*
        pub fn set_nonblocking(&$self, on: bool) -> ::std::io::Result<()> {
            $self.sock.set_nonblocking(on);
            Ok(())
        }
    };
    (@ $self:tt [$($attr:tt)*] readiness_fd) => {
        $($attr)*
        pub fn readiness_fd(&$self) -> ::std::io::Result<::std::os::fd::RawFd> {
            $self.sock.readiness_fd()
        }
    };
    (@ $self:tt [$($attr:tt)*] clear_readiness) => {
        $($attr)*
        pub fn clear_readiness(&$self) {
            $self.sock.clear_readiness();
        }
    };
}
pub(super) use socket_ref_methods;

/// Which timeout applies to a call.
#[derive(Clone, Copy)]
pub(crate) enum Direction {
    Read,
    Write,
    /// Connect and accept: no timeout unless given explicitly.
    Other(Option<Duration>),
}

pub(crate) fn is_would_block(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EAGAIN)
}

impl SocketRef {
    pub fn new(stack: Stack, handle: SocketHandle) -> SocketRef {
        SocketRef {
            stack,
            handle,
            nonblocking: AtomicBool::new(false),
            timeouts: Mutex::new((None, None)),
        }
    }

    pub fn set_nonblocking(&self, on: bool) {
        self.nonblocking.store(on, Ordering::Relaxed);
    }

    pub fn nonblocking(&self) -> bool {
        self.nonblocking.load(Ordering::Relaxed)
    }

    fn timeouts(&self) -> std::sync::MutexGuard<'_, (Option<Duration>, Option<Duration>)> {
        self.timeouts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets a read or write timeout; `Some(0)` is `InvalidInput`, as std.
    pub fn set_timeout(&self, write: bool, t: Option<Duration>) -> io::Result<()> {
        if t == Some(Duration::ZERO) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot set a 0 duration timeout",
            ));
        }
        let mut g = self.timeouts();
        if write {
            g.1 = t;
        } else {
            g.0 = t;
        }
        Ok(())
    }

    pub fn timeout(&self, write: bool) -> Option<Duration> {
        let g = self.timeouts();
        if write { g.1 } else { g.0 }
    }

    /// Runs `op` on the core without waiting.
    pub fn with<R>(&self, op: impl FnOnce(&mut Core, Instant) -> io::Result<R>) -> io::Result<R> {
        let rt = self.stack.runtime();
        let r = rt.with_core(|core, now| op(core, now));
        // Send what the call queued (if anything) from this thread; the
        // runtime thread is woken only for an earlier deadline, not for
        // every query.
        rt.transmit_now();
        r
    }

    /// Runs `op` until it stops saying `EAGAIN`: at once in non-blocking
    /// mode, otherwise sleeping between tries until the socket's readiness
    /// changes or the direction's timeout passes (then `EAGAIN`, which is
    /// `WouldBlock`, as std reports a timeout on Unix). A signal while
    /// sleeping ends the call with `EINTR`.
    pub fn block<R>(
        &self,
        dir: Direction,
        op: impl FnMut(&mut Core, Instant) -> io::Result<R>,
    ) -> io::Result<R> {
        let rt = self.stack.runtime();
        let timeout = match dir {
            Direction::Read => self.timeout(false),
            Direction::Write => self.timeout(true),
            Direction::Other(t) => t,
        };
        let nonblocking = self.nonblocking();
        let waker = if nonblocking {
            None
        } else {
            Some(ThreadWaker::current()?)
        };
        let start = rt.clock().now();
        rt.block_on(self.handle, waker.as_ref(), op, |w| {
            let remaining = match timeout {
                Some(t) => {
                    let spent = rt.clock().now() - start;
                    if spent >= t {
                        return Err(io::Error::from_raw_os_error(libc::EAGAIN));
                    }
                    Some(t - spent)
                }
                None => None,
            };
            w.wait(remaining).map(drop)
        })
    }

    /// Runs `op` once for an async task: `Pending` if it says `EAGAIN`,
    /// with the task's waker registered (under the same lock as the try,
    /// so the change that makes the socket ready cannot slip between them)
    /// to be woken at the next readiness change. Ignores non-blocking mode
    /// and timeouts: the task's executor decides how long to wait.
    #[cfg(feature = "tokio")]
    pub fn poll_op<R>(
        &self,
        cx: &mut std::task::Context<'_>,
        op: impl FnOnce(&mut Core, Instant) -> io::Result<R>,
    ) -> std::task::Poll<io::Result<R>> {
        let rt = self.stack.runtime();
        let r = rt.with_state(|st, now| {
            let r = op(&mut st.core, now);
            if let Err(e) = &r
                && is_would_block(e)
            {
                st.core.note_waiting(self.handle);
                st.waiters.register_task(self.handle, cx.waker());
            }
            r
        });
        rt.transmit_now();
        match r {
            Err(e) if is_would_block(&e) => std::task::Poll::Pending,
            other => std::task::Poll::Ready(other),
        }
    }

    /// The socket's readiness fd, for event loops.
    pub fn readiness_fd(&self) -> io::Result<RawFd> {
        self.stack
            .runtime()
            .with_state(|st, _| st.waiters.readiness_fd(self.handle))
    }

    /// Clears the readiness fd before an event loop re-checks readiness.
    pub fn clear_readiness(&self) {
        self.stack.runtime().with_state(|st, _| {
            st.waiters.clear_readiness(self.handle);
            st.core.note_waiting(self.handle);
        });
    }

    /// Wakes every thread blocked on this socket (after a shutdown, so they
    /// see it).
    pub fn wake_all(&self) {
        self.stack
            .runtime()
            .with_state(|st, _| st.waiters.wake(self.handle));
    }
}

impl Drop for SocketRef {
    fn drop(&mut self) {
        let rt = self.stack.runtime();
        rt.with_state(|st, _| {
            // EBADF here means the core already dropped it; nothing to do.
            let _ = st.core.close(self.handle);
            st.waiters.remove(self.handle);
        });
        rt.wake();
    }
}
