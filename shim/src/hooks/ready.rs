//! Hooks that wait for readiness: poll, ppoll, select, pselect and the
//! epoll calls, over mixed kernel and virtual fds ([`crate::poll`]). On the
//! shared stack sockets are kernel fds, and these pass straight through.

use std::ffi::c_int;
use std::time::{Duration, Instant};

use libc::{epoll_event, fd_set, nfds_t, pollfd, sigset_t, timespec, timeval};

use super::{fresh, guard, vsock};
use crate::poll;
use crate::process;
use crate::real;
use crate::sock::Res;
use crate::table::{self, Entry};

fn ms_timeout(ms: c_int) -> Option<Duration> {
    (ms >= 0).then(|| Duration::from_millis(ms as u64))
}

fn ts_timeout(ts: *const timespec) -> Res<Option<Duration>> {
    if ts.is_null() {
        return Ok(None);
    }
    // SAFETY: a valid timespec per the caller.
    let t = unsafe { *ts };
    if t.tv_sec < 0 || !(0..1_000_000_000).contains(&t.tv_nsec) {
        return Err(libc::EINVAL);
    }
    Ok(Some(Duration::new(t.tv_sec as u64, t.tv_nsec as u32)))
}

/// # Safety
/// `fds` must hold `n` pollfds.
unsafe fn poll_any(
    fds: *mut pollfd,
    n: nfds_t,
    timeout: Option<Duration>,
    mask: *const sigset_t,
) -> Option<Res<c_int>> {
    if process::bypass() || fds.is_null() || n == 0 || n > 65536 {
        return None;
    }
    // SAFETY: `fds` holds `n` pollfds per the caller.
    let fds = unsafe { std::slice::from_raw_parts_mut(fds, n as usize) };
    let entries = poll::classify(fds)?;
    Some(poll::poll(fds, &entries, timeout, mask))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn poll(fds: *mut pollfd, n: nfds_t, timeout: c_int) -> c_int {
    guard(move || {
        // SAFETY: the caller's pollfds.
        match unsafe { poll_any(fds, n, ms_timeout(timeout), std::ptr::null()) } {
            Some(r) => r,
            // SAFETY: passed through as given.
            None => Ok(unsafe { real::poll(fds, n, timeout) }),
        }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn ppoll(
    fds: *mut pollfd,
    n: nfds_t,
    ts: *const timespec,
    mask: *const sigset_t,
) -> c_int {
    guard(move || {
        let t = ts_timeout(ts)?;
        // SAFETY: the caller's pollfds.
        match unsafe { poll_any(fds, n, t, mask) } {
            Some(r) => r,
            // SAFETY: passed through as given.
            None => Ok(unsafe { real::ppoll(fds, n, ts, mask) }),
        }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn select(
    n: c_int,
    r: *mut fd_set,
    w: *mut fd_set,
    e: *mut fd_set,
    tv: *mut timeval,
) -> c_int {
    guard(move || {
        let timeout = if tv.is_null() {
            None
        } else {
            // SAFETY: a valid timeval per the caller.
            let t = unsafe { *tv };
            if t.tv_sec < 0 || t.tv_usec < 0 {
                return Err(libc::EINVAL);
            }
            Some(Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64))
        };
        if process::bypass() {
            // SAFETY: passed through as given.
            return Ok(unsafe { real::select(n, r, w, e, tv) });
        }
        let start = Instant::now();
        // SAFETY: the caller's fd_sets.
        match unsafe { poll::select(n, r, w, e, timeout, std::ptr::null()) } {
            Some(res) => {
                if let Some(t) = timeout {
                    // Linux writes back the time not slept.
                    let left = t.saturating_sub(start.elapsed());
                    // SAFETY: a valid timeval.
                    unsafe {
                        (*tv).tv_sec = left.as_secs() as libc::time_t;
                        (*tv).tv_usec = left.subsec_micros() as libc::suseconds_t;
                    }
                }
                res
            }
            // SAFETY: passed through as given.
            None => Ok(unsafe { real::select(n, r, w, e, tv) }),
        }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn pselect(
    n: c_int,
    r: *mut fd_set,
    w: *mut fd_set,
    e: *mut fd_set,
    ts: *const timespec,
    mask: *const sigset_t,
) -> c_int {
    guard(move || {
        let timeout = ts_timeout(ts)?;
        if !process::bypass() {
            // SAFETY: the caller's fd_sets.
            if let Some(res) = unsafe { poll::select(n, r, w, e, timeout, mask) } {
                return res;
            }
        }
        // SAFETY: passed through as given.
        Ok(unsafe { real::pselect(n, r, w, e, ts, mask) })
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn epoll_create(size: c_int) -> c_int {
    // SAFETY: integer argument.
    guard(move || fresh(unsafe { real::epoll_create(size) }))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn epoll_create1(flags: c_int) -> c_int {
    // SAFETY: integer argument.
    guard(move || fresh(unsafe { real::epoll_create1(flags) }))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn epoll_ctl(
    epfd: c_int,
    op: c_int,
    fd: c_int,
    ev: *mut epoll_event,
) -> c_int {
    pass_plain!(fd, real::epoll_ctl(epfd, op, fd, ev));
    guard(move || match vsock(fd) {
        Some(s) => {
            // SAFETY: a valid event or null, per the caller.
            let e = unsafe { ev.as_ref() }.map(|e| epoll_event {
                events: e.events,
                u64: e.u64,
            });
            poll::epoll_ctl(epfd, op, fd, &s, e).map(|()| 0)
        }
        // SAFETY: passed through as given.
        None => Ok(unsafe { real::epoll_ctl(epfd, op, fd, ev) }),
    })
}

/// # Safety
/// `evs` must hold `max` events.
unsafe fn epoll_any(
    epfd: c_int,
    evs: *mut epoll_event,
    max: c_int,
    timeout: Option<Duration>,
    mask: *const sigset_t,
) -> Option<Res<c_int>> {
    if process::bypass() {
        return None;
    }
    let Some(Entry::Epoll(set)) = table::get(epfd) else {
        return None;
    };
    if set
        .regs
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .is_empty()
    {
        return None;
    }
    if max <= 0 || evs.is_null() {
        return Some(Err(if evs.is_null() {
            libc::EFAULT
        } else {
            libc::EINVAL
        }));
    }
    // SAFETY: `evs` holds `max` events per the caller.
    let out = unsafe { std::slice::from_raw_parts_mut(evs, max as usize) };
    Some(poll::epoll_wait(epfd, &set, out, timeout, mask))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn epoll_wait(
    epfd: c_int,
    evs: *mut epoll_event,
    max: c_int,
    t: c_int,
) -> c_int {
    pass_plain!(epfd, real::epoll_wait(epfd, evs, max, t));
    guard(move || {
        // SAFETY: the caller's event buffer.
        match unsafe { epoll_any(epfd, evs, max, ms_timeout(t), std::ptr::null()) } {
            Some(r) => r,
            // SAFETY: passed through as given.
            None => Ok(unsafe { real::epoll_wait(epfd, evs, max, t) }),
        }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn epoll_pwait(
    epfd: c_int,
    evs: *mut epoll_event,
    max: c_int,
    t: c_int,
    mask: *const sigset_t,
) -> c_int {
    pass_plain!(epfd, real::epoll_pwait(epfd, evs, max, t, mask));
    guard(move || {
        // SAFETY: the caller's event buffer.
        match unsafe { epoll_any(epfd, evs, max, ms_timeout(t), mask) } {
            Some(r) => r,
            // SAFETY: passed through as given.
            None => Ok(unsafe { real::epoll_pwait(epfd, evs, max, t, mask) }),
        }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn epoll_pwait2(
    epfd: c_int,
    evs: *mut epoll_event,
    max: c_int,
    ts: *const timespec,
    mask: *const sigset_t,
) -> c_int {
    pass_plain!(epfd, real::epoll_pwait2(epfd, evs, max, ts, mask));
    guard(move || {
        let t = ts_timeout(ts)?;
        // SAFETY: the caller's event buffer.
        match unsafe { epoll_any(epfd, evs, max, t, mask) } {
            Some(r) => r,
            // SAFETY: passed through as given.
            None => Ok(unsafe { real::epoll_pwait2(epfd, evs, max, ts, mask) }),
        }
    })
}
