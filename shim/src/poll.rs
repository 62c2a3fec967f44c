//! poll, ppoll, select, pselect and epoll over any mix of kernel and
//! virtual fds.
//!
//! Virtual sockets' readiness comes from the core; kernel fds from the real
//! call. When nothing is ready, the thread registers its eventfd with every
//! virtual socket it watches (under the runtime lock, right after finding
//! them not ready, so no wake-up is lost) and sleeps in the real
//! `ppoll(2)` on the kernel fds plus that eventfd, with the caller's signal
//! mask, so signals and timeouts behave as the kernel's.
//!
//! epoll: a virtual socket added to an epoll fd is kept in an [`EpollSet`]
//! beside the kernel's epoll (which holds the kernel fds); `data` is
//! returned exactly as set. Edge-triggered: an event is reported when a
//! readiness bit appears that was not reported before, and again after any
//! I/O on the socket (a superset of the kernel's edges, never fewer).
//! Limitation: another epoll or poll watching this epoll fd sees only its
//! kernel members... except our own poll/select, which see both its virtual
//! members and (through the real ppoll on the epoll fd) its kernel ones.

use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use libc::{epoll_event, pollfd, sigset_t, timespec};
use ustack_core::runtime::ThreadWaker;

use crate::real;
use crate::sock::{Res, VSock, errno_of, poll_bits};
use crate::stack::rt;
use crate::table::{self, Entry, EpollReg, EpollSet};

/// Bits always reported whether asked or not.
const ALWAYS: i16 = libc::POLLERR | libc::POLLHUP | libc::POLLNVAL;
const EP_ALWAYS: u32 = (libc::EPOLLERR | libc::EPOLLHUP) as u32;

fn to_timespec(d: Duration) -> timespec {
    timespec {
        tv_sec: d.as_secs() as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    }
}

/// The real ppoll with a relative timeout (`None`: forever).
fn real_ppoll(fds: &mut [pollfd], timeout: Option<Duration>, mask: *const sigset_t) -> Res<i32> {
    let ts = timeout.map(to_timespec);
    let tsp = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const timespec);
    // SAFETY: `fds` is a live slice; `tsp` and `mask` are null or valid.
    let n = unsafe { real::ppoll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, tsp, mask) };
    if n < 0 {
        return Err(real::errno());
    }
    Ok(n)
}

fn remaining(deadline: Option<Instant>) -> Option<Duration> {
    deadline.map(|d| d.saturating_duration_since(Instant::now()))
}

/// Level readiness of an epoll set's virtual members (for poll on an epoll
/// fd), registering `waker` with each.
fn set_ready(
    core: &mut ustack_core::stack::Core,
    waiters: &mut ustack_core::runtime::Waiters,
    members: &[(Arc<VSock>, u32, bool)],
    waker: &Arc<ThreadWaker>,
) -> bool {
    let mut ready = false;
    for (s, events, disarmed) in members {
        let bits = poll_bits(core, s) as u16 as u32;
        if !disarmed && bits & (events | EP_ALWAYS) != 0 {
            ready = true;
        }
        waiters.register(s.handle, waker);
        core.note_waiting(s.handle);
    }
    ready
}

fn members(set: &EpollSet) -> Vec<(Arc<VSock>, u32, bool)> {
    let regs = set.regs.lock().unwrap_or_else(|p| p.into_inner());
    regs.values()
        .filter_map(|r| Some((r.sock.upgrade()?, r.events, r.disarmed)))
        .collect()
}

/// poll/ppoll over `fds`, of which at least one is virtual.
pub fn poll(
    fds: &mut [pollfd],
    entries: &[Option<Entry>],
    timeout: Option<Duration>,
    mask: *const sigset_t,
) -> Res<i32> {
    let rt = rt()?;
    let waker = crate::process::thread_waker().map_err(|e| errno_of(&e))?;
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut kernel: Vec<pollfd> = Vec::new();
    let mut kernel_at: Vec<usize> = Vec::new();
    // Kernel fds, and epoll fds too: their kernel members (pipes, kernel
    // sockets) live in the real epoll, which the real ppoll sees.
    for (i, (p, e)) in fds.iter().zip(entries).enumerate() {
        if matches!(e, None | Some(Entry::Epoll(_))) {
            kernel.push(*p);
            kernel_at.push(i);
        }
    }
    kernel.push(pollfd {
        fd: waker.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    });
    loop {
        waker.reset();
        // Epoll members are upgraded outside the runtime lock: dropping the
        // last reference of a socket takes that lock.
        let sets: Vec<Vec<(Arc<VSock>, u32, bool)>> = entries
            .iter()
            .map(|e| match e {
                Some(Entry::Epoll(set)) => members(set),
                _ => Vec::new(),
            })
            .collect();
        let mut ready = 0;
        rt.with_state(|st, _| {
            for (i, e) in entries.iter().enumerate() {
                let want = fds[i].events | ALWAYS;
                let bits = match e {
                    None | Some(Entry::Remote(_)) => continue,
                    Some(Entry::Sock(s)) => {
                        let b = poll_bits(&mut st.core, s) & want;
                        if b == 0 {
                            st.waiters.register(s.handle, &waker);
                            st.core.note_waiting(s.handle);
                        }
                        b
                    }
                    Some(Entry::Epoll(_)) => {
                        if set_ready(&mut st.core, &mut st.waiters, &sets[i], &waker) {
                            libc::POLLIN & want
                        } else {
                            0
                        }
                    }
                };
                fds[i].revents = bits;
                if bits != 0 {
                    ready += 1;
                }
            }
        });
        drop(sets);
        let wait = if ready > 0 {
            Some(Duration::ZERO)
        } else {
            remaining(deadline)
        };
        let n = real_ppoll(&mut kernel, wait, mask)?;
        let mut kready = 0;
        for (k, &i) in kernel.iter().zip(&kernel_at) {
            let kbits = if n > 0 { k.revents } else { 0 };
            if entries[i].is_none() {
                fds[i].revents = kbits;
                if kbits != 0 {
                    kready += 1;
                }
            } else if kbits != 0 {
                // An epoll fd ready through its kernel members, its virtual
                // ones, or both: one fd, counted once.
                if fds[i].revents == 0 {
                    kready += 1;
                }
                fds[i].revents |= kbits;
            }
        }
        let total = ready + kready;
        if total > 0 || deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(total);
        }
    }
}

/// The entries of `fds`, or `None` when all are kernel fds.
pub fn classify(fds: &[pollfd]) -> Option<Vec<Option<Entry>>> {
    // Shared-stack sockets are real fds: the kernel polls them.
    let entries: Vec<Option<Entry>> = fds
        .iter()
        .map(|p| table::get(p.fd).filter(|e| !matches!(e, Entry::Remote(_))))
        .collect();
    entries.iter().any(Option::is_some).then_some(entries)
}

/// select/pselect when some fd in the sets is virtual: `None` if none is.
///
/// # Safety
/// The set pointers must be null or valid `fd_set`s.
pub unsafe fn select(
    nfds: i32,
    r: *mut libc::fd_set,
    w: *mut libc::fd_set,
    e: *mut libc::fd_set,
    timeout: Option<Duration>,
    mask: *const sigset_t,
) -> Option<Res<i32>> {
    let nfds = nfds.clamp(0, libc::FD_SETSIZE as i32);
    let isset = |set: *mut libc::fd_set, fd: i32| {
        // SAFETY: `set` is a valid fd_set when non-null; fd < FD_SETSIZE.
        !set.is_null() && unsafe { libc::FD_ISSET(fd, set) }
    };
    let mut fds = Vec::new();
    for fd in 0..nfds {
        let mut events = 0;
        if isset(r, fd) {
            events |= libc::POLLIN;
        }
        if isset(w, fd) {
            events |= libc::POLLOUT;
        }
        if isset(e, fd) {
            events |= libc::POLLPRI;
        }
        if events != 0 {
            fds.push(pollfd {
                fd,
                events,
                revents: 0,
            });
        }
    }
    let entries = classify(&fds)?;
    let res = poll(&mut fds, &entries, timeout, mask);
    Some(res.and_then(|_| {
        for set in [r, w, e] {
            if !set.is_null() {
                // SAFETY: a valid fd_set.
                unsafe { libc::FD_ZERO(set) };
            }
        }
        let mut count = 0;
        for p in &fds {
            if p.revents & libc::POLLNVAL != 0 {
                return Err(libc::EBADF);
            }
            let rd = libc::POLLIN | libc::POLLHUP | libc::POLLERR;
            let wr = libc::POLLOUT | libc::POLLERR;
            for (set, bits, asked) in [
                (r, rd, libc::POLLIN),
                (w, wr, libc::POLLOUT),
                (e, libc::POLLPRI, libc::POLLPRI),
            ] {
                if p.events & asked != 0 && p.revents & bits != 0 {
                    // SAFETY: a valid fd_set; fd < FD_SETSIZE.
                    unsafe { libc::FD_SET(p.fd, set) };
                    count += 1;
                }
            }
        }
        Ok(count)
    }))
}

/// epoll_ctl for a virtual socket `s` at `fd` in the epoll fd `epfd`.
pub fn epoll_ctl(epfd: i32, op: i32, fd: i32, s: &Arc<VSock>, ev: Option<epoll_event>) -> Res<()> {
    if epfd == fd {
        return Err(libc::EINVAL);
    }
    let set = match table::get(epfd) {
        Some(Entry::Epoll(set)) => set,
        Some(Entry::Sock(_) | Entry::Remote(_)) => return Err(libc::EINVAL),
        None => {
            // SAFETY: F_GETFD takes no argument.
            if unsafe { real::fcntl(epfd, libc::F_GETFD, 0) } < 0 {
                return Err(libc::EBADF);
            }
            let set = Arc::new(EpollSet::default());
            drop(table::insert(epfd, Entry::Epoll(Arc::clone(&set))));
            set
        }
    };
    let mut regs = set.regs.lock().unwrap_or_else(|p| p.into_inner());
    // A registration whose socket was closed since is gone, as in the kernel.
    if regs.get(&fd).is_some_and(|r| r.sock.strong_count() == 0) {
        regs.remove(&fd);
    }
    match op {
        libc::EPOLL_CTL_ADD | libc::EPOLL_CTL_MOD => {
            let ev = ev.ok_or(libc::EFAULT)?;
            let exists = regs.contains_key(&fd);
            if op == libc::EPOLL_CTL_ADD && exists {
                return Err(libc::EEXIST);
            }
            if op == libc::EPOLL_CTL_MOD && !exists {
                return Err(libc::ENOENT);
            }
            regs.insert(
                fd,
                EpollReg {
                    sock: Arc::downgrade(s),
                    events: ev.events,
                    data: ev.u64,
                    disarmed: false,
                    last: 0,
                    last_gen: s.io_gen.load(Ordering::Relaxed),
                },
            );
            Ok(())
        }
        libc::EPOLL_CTL_DEL => regs.remove(&fd).map(|_| ()).ok_or(libc::ENOENT),
        _ => Err(libc::EINVAL),
    }
}

/// epoll_wait/epoll_pwait/epoll_pwait2 on an epoll fd with virtual members.
pub fn epoll_wait(
    epfd: i32,
    set: &EpollSet,
    out: &mut [epoll_event],
    timeout: Option<Duration>,
    mask: *const sigset_t,
) -> Res<i32> {
    let rt = rt()?;
    let waker = crate::process::thread_waker().map_err(|e| errno_of(&e))?;
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        waker.reset();
        let live: Vec<(i32, Arc<VSock>)> = {
            let mut regs = set.regs.lock().unwrap_or_else(|p| p.into_inner());
            regs.retain(|_, r| r.sock.strong_count() > 0);
            regs.iter()
                .filter_map(|(fd, r)| Some((*fd, r.sock.upgrade()?)))
                .collect()
        };
        let bits: Vec<u32> = rt.with_state(|st, _| {
            live.iter()
                .map(|(_, s)| {
                    st.waiters.register(s.handle, &waker);
                    st.core.note_waiting(s.handle);
                    poll_bits(&mut st.core, s) as u16 as u32
                })
                .collect()
        });
        let mut n = 0;
        {
            let mut regs = set.regs.lock().unwrap_or_else(|p| p.into_inner());
            for ((fd, s), bits) in live.iter().zip(bits) {
                if n >= out.len() {
                    break;
                }
                let Some(r) = regs.get_mut(fd) else { continue };
                if r.disarmed {
                    continue;
                }
                let mask = bits & (r.events | EP_ALWAYS);
                if r.events & libc::EPOLLET as u32 != 0 {
                    let io_gen = s.io_gen.load(Ordering::Relaxed);
                    if io_gen != r.last_gen {
                        r.last = 0;
                        r.last_gen = io_gen;
                    }
                    let fresh = mask & !r.last;
                    r.last = mask;
                    if fresh == 0 {
                        continue;
                    }
                } else if mask == 0 {
                    continue;
                }
                out[n] = epoll_event {
                    events: mask,
                    u64: r.data,
                };
                n += 1;
                if r.events & libc::EPOLLONESHOT as u32 != 0 {
                    r.disarmed = true;
                }
            }
        }
        drop(live);
        let mut k = 0;
        if n < out.len() {
            // SAFETY: `out[n..]` is live memory for `len - n` events.
            k = unsafe { real::epoll_wait(epfd, out[n..].as_mut_ptr(), (out.len() - n) as i32, 0) };
            if k < 0 {
                return Err(real::errno());
            }
        }
        let total = n as i32 + k;
        if total > 0 || deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(total);
        }
        let mut fds = [
            pollfd {
                fd: epfd,
                events: libc::POLLIN,
                revents: 0,
            },
            pollfd {
                fd: waker.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        real_ppoll(&mut fds, remaining(deadline), mask)?;
    }
}
