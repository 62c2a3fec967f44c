//! Who waits for which socket, and how they are woken.
//!
//! A thread blocked in a socket call waits on its own eventfd (one per
//! thread, made on first use), registered with the socket while the runtime
//! lock is held and the call has just found nothing to do. The runtime,
//! after each turn and still under the lock, wakes every waiter of every
//! socket whose readiness changed, and forgets them. Because registering
//! and checking happen under the same lock as the change, no wake-up is
//! lost; because each thread has its own eventfd, one waiter cannot swallow
//! another's wake-up.
//!
//! An event loop (epoll, mio, tokio's `AsyncFd`) instead asks a socket for
//! its readiness fd: an eventfd the runtime makes readable on every
//! readiness change, which the loop drains before re-checking readiness.
//!
//! An async task (the `tokio` feature's sockets) registers its
//! [`std::task::Waker`] the same way a thread registers its eventfd: under
//! the lock, right after its operation found nothing to do; the next
//! readiness change wakes it once and forgets it. Task wakers are not
//! called under the lock: a change moves them to a list the runtime takes
//! ([`Waiters::take_woken`]) and wakes once the lock is released, since a
//! waker is foreign code (waking or dropping it may run an executor's
//! logic, which could call back into the stack).

use std::cell::OnceCell;
use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::task::Waker;
use std::time::Duration;

use crate::stack::SocketHandle;
use crate::sys::{self, EventFd};

/// One thread's wake-up fd.
#[derive(Debug)]
pub struct ThreadWaker {
    fd: EventFd,
    /// Registered with some socket and not woken since: the thread waits
    /// (or is about to) and does nothing until a readiness change. A
    /// driver of a virtual clock waits for every thread in a socket call
    /// to be parked before moving time, so each call sees the time its
    /// event happened at.
    parked: AtomicBool,
    /// How many times the thread has registered to wait: a driver tells
    /// from it whether a call blocked at some point.
    parks: AtomicU32,
}

thread_local! {
    static WAKER: OnceCell<Arc<ThreadWaker>> = const { OnceCell::new() };
}

impl ThreadWaker {
    /// This thread's waker (`EMFILE` and the like if no eventfd can be
    /// had; a failure is not kept, so the next call tries again once the
    /// program has closed something).
    pub fn current() -> io::Result<Arc<ThreadWaker>> {
        WAKER.with(|w| {
            if let Some(t) = w.get() {
                return Ok(t.clone());
            }
            let t = Arc::new(ThreadWaker {
                fd: EventFd::new()?,
                parked: AtomicBool::new(false),
                parks: AtomicU32::new(0),
            });
            Ok(w.get_or_init(|| t).clone())
        })
    }

    /// Clears a pending wake-up (before checking the condition again).
    pub fn reset(&self) {
        self.fd.drain();
    }

    /// Wakes the thread.
    pub fn wake(&self) {
        self.parked.store(false, Ordering::Release);
        self.fd.notify();
    }

    /// Whether the thread is registered with a socket and not woken since
    /// (see the field).
    pub fn is_parked(&self) -> bool {
        self.parked.load(Ordering::Acquire)
    }

    /// How many times the thread has registered to wait (wrapping).
    pub fn parks(&self) -> u32 {
        self.parks.load(Ordering::Acquire)
    }

    /// Forgets a registration that ended without a wake-up (a timeout, a
    /// signal): called by the thread itself as it starts a new call.
    pub fn unpark(&self) {
        self.parked.store(false, Ordering::Release);
    }

    /// Sleeps until woken or `timeout` passes (`None`: no limit). Returns
    /// whether it was woken; `EINTR` comes back as an error so a signal
    /// interrupts a blocking call as it would a kernel socket's.
    pub fn wait(&self, timeout: Option<Duration>) -> io::Result<bool> {
        let mut fds = [sys::pollfd(self.fd.as_raw_fd(), libc::POLLIN)];
        Ok(sys::poll(&mut fds, timeout)? > 0)
    }
}

impl AsRawFd for ThreadWaker {
    /// The eventfd, for callers that wait on it together with other fds
    /// (the shim's poll and epoll).
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

#[derive(Default)]
struct SocketWaiters {
    blocked: Vec<Arc<ThreadWaker>>,
    /// Async tasks waiting for the next change (one entry per task).
    tasks: Vec<Waker>,
    readiness: Option<Arc<EventFd>>,
}

/// The waiters of every socket.
#[derive(Default)]
pub struct Waiters {
    by_socket: HashMap<SocketHandle, SocketWaiters>,
    /// Task wakers of sockets that changed, to be woken after the lock.
    woken: Vec<Waker>,
}

impl Waiters {
    /// Registers `waker` to be woken at the socket's next readiness change.
    pub fn register(&mut self, h: SocketHandle, waker: &Arc<ThreadWaker>) {
        let w = self.by_socket.entry(h).or_default();
        if !w.blocked.iter().any(|x| Arc::ptr_eq(x, waker)) {
            w.blocked.push(Arc::clone(waker));
        }
        waker.parked.store(true, Ordering::Release);
        waker.parks.fetch_add(1, Ordering::AcqRel);
    }

    /// Registers an async task's `waker` to be woken at the socket's next
    /// readiness change. A task that registers again before then (a
    /// re-polled or a replaced future) keeps one entry.
    pub fn register_task(&mut self, h: SocketHandle, waker: &Waker) {
        let w = self.by_socket.entry(h).or_default();
        if !w.tasks.iter().any(|x| x.will_wake(waker)) {
            w.tasks.push(waker.clone());
        }
    }

    /// The socket's readiness fd, made on first use.
    pub fn readiness_fd(&mut self, h: SocketHandle) -> io::Result<RawFd> {
        let w = self.by_socket.entry(h).or_default();
        if w.readiness.is_none() {
            let fd = EventFd::new()?;
            // Readable at first, so a loop that registers late still looks.
            fd.notify();
            w.readiness = Some(Arc::new(fd));
        }
        Ok(w.readiness.as_ref().map_or(-1, |fd| fd.as_raw_fd()))
    }

    /// Clears the socket's readiness fd (an event loop calls this before
    /// re-checking readiness).
    pub fn clear_readiness(&mut self, h: SocketHandle) {
        if let Some(fd) = self.by_socket.get(&h).and_then(|w| w.readiness.as_ref()) {
            fd.drain();
        }
    }

    /// Wakes everyone waiting on the socket (tasks through
    /// [`Waiters::take_woken`]).
    pub fn wake(&mut self, h: SocketHandle) {
        if let Some(w) = self.by_socket.get_mut(&h) {
            for waker in w.blocked.drain(..) {
                waker.wake();
            }
            self.woken.append(&mut w.tasks);
            if let Some(fd) = &w.readiness {
                fd.notify();
            }
        }
    }

    /// The task wakers due since the last call, for the holder of the
    /// runtime lock to wake after releasing it.
    pub fn take_woken(&mut self) -> Vec<Waker> {
        std::mem::take(&mut self.woken)
    }

    /// Wakes everyone and forgets the socket (it was closed).
    pub fn remove(&mut self, h: SocketHandle) {
        self.wake(h);
        self.by_socket.remove(&h);
    }
}
