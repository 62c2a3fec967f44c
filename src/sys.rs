//! Thin, safe wrappers over the few Linux primitives the runtime waits on:
//! `eventfd(2)` and `poll(2)`.
//!
//! Owns nothing but file descriptors. Like `device`, this is an I/O layer:
//! the sans-IO layers never call into it.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// An `eventfd` used as a level-triggered wake-up flag: [`EventFd::notify`]
/// makes it readable, [`EventFd::drain`] clears it.
///
/// ```
/// use std::os::fd::AsRawFd;
/// use std::time::Duration;
/// use ustack::sys::{EventFd, poll};
///
/// let ev = EventFd::new()?;
/// let mut fds = [libc::pollfd { fd: ev.as_raw_fd(), events: libc::POLLIN, revents: 0 }];
/// assert_eq!(poll(&mut fds, Some(Duration::ZERO))?, 0);
/// ev.notify();
/// ev.notify();
/// assert_eq!(poll(&mut fds, Some(Duration::from_secs(1)))?, 1);
/// assert!(ev.drain()); // one read clears any number of notifies
/// assert!(!ev.drain());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct EventFd {
    fd: OwnedFd,
}

impl EventFd {
    /// A new non-blocking, close-on-exec eventfd.
    pub fn new() -> io::Result<EventFd> {
        // SAFETY: eventfd takes no pointers; a negative return is an error.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        Ok(EventFd {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Makes the fd readable. Never blocks: when the counter is saturated
    /// the fd is readable already, so a failed write loses nothing.
    pub fn notify(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to an fd we own.
        unsafe {
            libc::write(
                self.fd.as_raw_fd(),
                (&one as *const u64).cast(),
                core::mem::size_of::<u64>(),
            )
        };
    }

    /// Clears readability; returns whether it was set.
    pub fn drain(&self) -> bool {
        let mut value: u64 = 0;
        // SAFETY: reads 8 bytes into a live u64 from an fd we own.
        let n = unsafe {
            libc::read(
                self.fd.as_raw_fd(),
                (&mut value as *mut u64).cast(),
                core::mem::size_of::<u64>(),
            )
        };
        n == 8
    }
}

impl AsRawFd for EventFd {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Waits until one of `fds` is ready or `timeout` passes (`None`: forever).
/// Returns the number of ready entries; `revents` is filled in. EINTR is
/// returned as an error for the caller to decide on.
pub fn poll(fds: &mut [libc::pollfd], timeout: Option<Duration>) -> io::Result<usize> {
    let ms: libc::c_int = match timeout {
        None => -1,
        // Round up, so a 100 µs deadline does not become a busy 0 ms loop.
        Some(d) => i32::try_from(d.as_micros().div_ceil(1000)).unwrap_or(i32::MAX),
    };
    // SAFETY: the pointer and length describe a live, exclusively borrowed slice.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// A `pollfd` asking for `events` on `fd`.
pub fn pollfd(fd: RawFd, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

/// SIGINT and SIGTERM, blocked in the calling thread (and so in every thread
/// it spawns afterwards) so that [`TerminationSignals::wait`] can receive
/// them synchronously and the program can shut down in order (flushing a
/// capture, closing the device) instead of dying mid-write.
pub struct TerminationSignals {
    set: libc::sigset_t,
}

impl TerminationSignals {
    /// Blocks SIGINT and SIGTERM in this thread. Call it before spawning
    /// threads.
    pub fn block() -> io::Result<TerminationSignals> {
        // SAFETY: sigset_t is plain data; sigemptyset initialises it fully.
        let mut set: libc::sigset_t = unsafe { core::mem::zeroed() };
        // SAFETY: `set` is a live sigset_t; the calls only write into it and
        // into this thread's signal mask.
        let rc = unsafe {
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGINT);
            libc::sigaddset(&mut set, libc::SIGTERM);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, core::ptr::null_mut())
        };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        Ok(TerminationSignals { set })
    }

    /// Waits for SIGINT or SIGTERM and returns its number.
    pub fn wait(&self) -> io::Result<i32> {
        let mut sig: libc::c_int = 0;
        // SAFETY: both pointers are to live locals; sigwait writes `sig`.
        let rc = unsafe { libc::sigwait(&self.set, &mut sig) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        Ok(sig)
    }
}

/// Moves the calling thread (only it, and threads it spawns afterwards)
/// into a new, empty network namespace and brings up its loopback. Tests
/// and benchmarks call this first, so TUN devices and traffic stay out of
/// the machine's own network. Needs CAP_SYS_ADMIN (root, or a user
/// namespace).
pub fn enter_private_netns() -> io::Result<()> {
    // SAFETY: unshare takes no pointers and affects only this thread.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!("unshare(CLONE_NEWNET) failed: {e}: a private network namespace needs root"),
        ));
    }
    // A child forked from this thread inherits its namespace.
    let status = std::process::Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status()?;
    if !status.success() {
        return Err(io::Error::other("ip link set lo up failed"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eventfd_is_readable_after_notify_until_drained() {
        let ev = EventFd::new().unwrap();
        let mut fds = [pollfd(ev.as_raw_fd(), libc::POLLIN)];
        assert_eq!(poll(&mut fds, Some(Duration::ZERO)).unwrap(), 0);
        ev.notify();
        ev.notify();
        assert_eq!(poll(&mut fds, Some(Duration::ZERO)).unwrap(), 1);
        assert!(ev.drain());
        assert!(!ev.drain());
        fds[0].revents = 0;
        assert_eq!(poll(&mut fds, Some(Duration::ZERO)).unwrap(), 0);
    }

    #[test]
    fn poll_times_out() {
        let ev = EventFd::new().unwrap();
        let mut fds = [pollfd(ev.as_raw_fd(), libc::POLLIN)];
        let t = std::time::Instant::now();
        assert_eq!(poll(&mut fds, Some(Duration::from_millis(20))).unwrap(), 0);
        assert!(t.elapsed() >= Duration::from_millis(20));
    }
}
