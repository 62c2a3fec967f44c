//! The stack daemon's side of the protocol: a [`Driver`] that runs in the
//! runtime thread, accepts programs' control connections, answers their
//! requests on the core, and relays every socket's pair.
//!
//! Owns: the control listener, the control connections, the table of
//! program sockets (by id, core handle and program-end inode) and the
//! daemon's lifetime (it ends when the last socket and connection are gone
//! and nothing lingers, after a grace period, unless persistent). Must not
//! touch: the link (the runtime's), message formats (`ipc`).
//!
//! Who may attach: a control connection whose peer (SO_PEERCRED) is root,
//! the daemon's own user, or in the group the daemon was told to admit;
//! anyone else is closed at once. A socket is named only by its fd, passed
//! with each request: holding the fd is the capability.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use super::relay::{CHUNK, Phase, Sock};
use super::{Reply, Request, recv_with_fds, send_with_fds};
use crate::Instant;
use crate::runtime::{Driver, State};
use crate::stack::{Core, SocketHandle};

const TOKEN_LISTENER: u64 = 1 << 62;
const TOKEN_TIMER: u64 = 2 << 62;
const TOKEN_CONN: u64 = 3 << 62;
const TOKEN_KIND: u64 = 3 << 62;
/// The reaper timer: a connection-kind token no connection gets.
const TOKEN_REAPER: u64 = TOKEN_CONN;

/// Who may attach, and how long the daemon outlives its last client.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Uid admitted besides root (the daemon's own).
    pub uid: u32,
    /// A group whose members (by primary gid) are admitted too.
    pub gid: Option<u32>,
    /// Keep running with no clients (`scripts/ustack --daemon`).
    pub persistent: bool,
    /// How long an idle, non-persistent daemon waits for a new client.
    pub grace: Duration,
}

impl Policy {
    /// Whether a program of `uid` (primary group `gid`) may attach.
    pub fn admits(&self, uid: u32, gid: u32) -> bool {
        uid == 0 || uid == self.uid || Some(gid) == self.gid
    }

    /// Why a program of `uid`/`gid` may not attach, in a few words that
    /// the daemon logs and the program's shim prints with the fix.
    pub fn refusal(&self, uid: u32, gid: u32) -> String {
        let user = match self.uid {
            0 => String::new(),
            u => format!("uid {u}, "),
        };
        let group = match self.gid {
            Some(g) => format!("group {g} and "),
            None => String::new(),
        };
        format!("the stack daemon admits only {user}{group}root, not uid {uid} gid {gid}")
    }
}

/// The daemon's driver (see the module docs).
pub struct Server {
    epfd: OwnedFd,
    listener: OwnedFd,
    timer: OwnedFd,
    timer_armed: bool,
    policy: Policy,
    conns: HashMap<u64, OwnedFd>,
    next_conn: u64,
    socks: Vec<Option<Sock>>,
    free: Vec<usize>,
    by_handle: HashMap<SocketHandle, usize>,
    by_ino: HashMap<u64, usize>,
    dirty: Vec<usize>,
    scratch: Vec<u8>,
    idle_expired: bool,
    /// Socket diagnostics, when the kernel has them.
    diag: Option<super::diag::Diag>,
    /// Abandoned sockets (see `relay`), checked each second until the
    /// program's end is gone.
    reap: Vec<usize>,
    reaper: OwnedFd,
    reaper_armed: bool,
    /// An fd held in reserve: out of fds, the daemon frees it to accept
    /// and close a program's control connection (the program sees the
    /// daemon gone) instead of spinning on a listener that stays readable.
    spare: Option<OwnedFd>,
}

/// An fd to hold in reserve (see `Server::spare`).
fn spare_fd() -> Option<OwnedFd> {
    std::fs::File::open("/dev/null").ok().map(OwnedFd::from)
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn epoll_add(epfd: RawFd, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
    epoll_ctl(epfd, libc::EPOLL_CTL_ADD, fd, events, token)
}

fn epoll_ctl(epfd: RawFd, op: i32, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
    let mut ev = libc::epoll_event { events, u64: token };
    // SAFETY: epoll_ctl reads our live event.
    cvt(unsafe { libc::epoll_ctl(epfd, op, fd, &mut ev) })?;
    Ok(())
}

/// What the daemon's end of a pair is registered for. EPOLLOUT only while
/// bytes wait for room in the pair ([`Sock::wants_out`]): otherwise every
/// read by the program (which frees room) would wake the daemon for
/// nothing, once per request in a request/response exchange.
fn pair_events(out: bool) -> u32 {
    let base = (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLET) as u32;
    if out {
        base | libc::EPOLLOUT as u32
    } else {
        base
    }
}

/// Whether the other end of a SEQPACKET connection is gone (a zero-length
/// read is also an empty message).
fn hung_up(fd: RawFd) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLRDHUP,
        revents: 0,
    };
    // SAFETY: one live pollfd, no waiting.
    unsafe { libc::poll(&mut p, 1, 0) };
    p.revents & (libc::POLLHUP | libc::POLLRDHUP) != 0
}

/// Binds the daemon's control address for `ifname`: `AddrInUse` if a
/// daemon already serves that device in this network namespace.
pub fn bind_control(ifname: &str) -> io::Result<OwnedFd> {
    let name = super::control_name(ifname);
    let (addr, len) = super::abstract_addr(&name)?;
    // SAFETY: socket takes no pointers.
    let fd = cvt(unsafe {
        libc::socket(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        )
    })?;
    // SAFETY: the fd was just made and is ours alone.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: bind reads `len` bytes of our live address.
    cvt(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_un).cast(),
            len,
        )
    })?;
    // SAFETY: listen takes no pointers.
    cvt(unsafe { libc::listen(fd.as_raw_fd(), 512) })?;
    Ok(fd)
}

/// A non-blocking monotonic timerfd, closed on exec.
fn timerfd() -> io::Result<OwnedFd> {
    // SAFETY: timerfd_create takes no pointers; a non-negative result is a
    // new fd, owned by nobody else.
    Ok(unsafe {
        OwnedFd::from_raw_fd(cvt(libc::timerfd_create(
            libc::CLOCK_MONOTONIC,
            libc::TFD_CLOEXEC | libc::TFD_NONBLOCK,
        ))?)
    })
}

impl Server {
    /// A server on a control listener made by [`bind_control`].
    pub fn new(listener: OwnedFd, policy: Policy) -> io::Result<Server> {
        // SAFETY: epoll_create1 takes no pointers.
        let epfd = unsafe { OwnedFd::from_raw_fd(cvt(libc::epoll_create1(libc::EPOLL_CLOEXEC))?) };
        let timer = timerfd()?;
        let reaper = timerfd()?;
        for (fd, token) in [
            (listener.as_raw_fd(), TOKEN_LISTENER),
            (timer.as_raw_fd(), TOKEN_TIMER),
            (reaper.as_raw_fd(), TOKEN_REAPER),
        ] {
            epoll_add(epfd.as_raw_fd(), fd, libc::EPOLLIN as u32, token)?;
        }
        let mut s = Server {
            epfd,
            listener,
            timer,
            timer_armed: false,
            policy,
            conns: HashMap::new(),
            next_conn: 0,
            socks: Vec::new(),
            free: Vec::new(),
            by_handle: HashMap::new(),
            by_ino: HashMap::new(),
            dirty: Vec::new(),
            scratch: vec![0; CHUNK],
            idle_expired: false,
            reap: Vec::new(),
            reaper,
            reaper_armed: false,
            spare: spare_fd(),
            diag: super::diag::Diag::open()
                .inspect_err(|e| {
                    log::warn!("no socket diagnostics ({e}): a hang-up is taken as a close")
                })
                .ok(),
        };
        s.arm_idle_timer();
        Ok(s)
    }

    fn idle(&self) -> bool {
        self.conns.is_empty() && self.by_ino.is_empty()
    }

    /// Starts (or stops) the grace timer as the daemon becomes idle (or
    /// busy again).
    fn arm_idle_timer(&mut self) {
        let want = self.idle() && !self.policy.persistent;
        if want == self.timer_armed {
            return;
        }
        self.timer_armed = want;
        if !want {
            self.idle_expired = false;
        }
        let g = if want {
            self.policy.grace
        } else {
            Duration::ZERO
        };
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: g.as_secs() as libc::time_t,
                // A zero value disarms; keep an armed timer non-zero.
                tv_nsec: libc::c_long::from(g.subsec_nanos()).max(if want { 1 } else { 0 }),
            },
        };
        // SAFETY: timerfd_settime reads our live spec.
        unsafe { libc::timerfd_settime(self.timer.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
    }

    /// Out of fds with a program waiting to connect: accepts and closes
    /// it with the spare fd, so the listener does not stay readable.
    fn refuse_one(&mut self) {
        super::fd_shortage("a program's control connection");
        drop(self.spare.take());
        // SAFETY: accept4 with no address output; the fd is closed at once.
        let fd = unsafe {
            libc::accept4(
                self.listener.as_raw_fd(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_CLOEXEC,
            )
        };
        if fd >= 0 {
            // SAFETY: accept4 just made it; nothing else holds it.
            unsafe { libc::close(fd) };
        }
        self.spare = spare_fd();
    }

    fn accept_conns(&mut self) {
        loop {
            // SAFETY: accept4 with no address output.
            let fd = unsafe {
                libc::accept4(
                    self.listener.as_raw_fd(),
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                )
            };
            if fd < 0 {
                if super::out_of_fds(&io::Error::last_os_error()) {
                    self.refuse_one();
                }
                return;
            }
            // SAFETY: accept4 just made it.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            match super::peer_cred(fd.as_raw_fd()) {
                Ok(c) if self.policy.admits(c.uid, c.gid) => {}
                Ok(c) => {
                    let why = self.policy.refusal(c.uid, c.gid);
                    log::warn!("refused a program (pid {}): {why}", c.pid);
                    // The program learns why before the hang-up: its first
                    // request reads this as the reply (EACCES).
                    let reply = Reply {
                        errno: libc::EACCES,
                        value: 0,
                        data: why.into_bytes(),
                    };
                    let _ = send_with_fds(fd.as_raw_fd(), &reply.encode(), &[], libc::MSG_DONTWAIT);
                    continue;
                }
                Err(e) => {
                    log::warn!("refused a connection without credentials: {e}");
                    continue;
                }
            }
            self.next_conn += 1;
            let token = TOKEN_CONN | self.next_conn;
            if epoll_add(
                self.epfd.as_raw_fd(),
                fd.as_raw_fd(),
                libc::EPOLLIN as u32,
                token,
            )
            .is_ok()
            {
                self.conns.insert(token, fd);
            }
        }
    }

    /// Answers every request waiting on one control connection.
    fn serve_conn(&mut self, token: u64, core: &mut Core, now: Instant) {
        let mut buf = [0u8; super::MAX_PAYLOAD + 64];
        loop {
            let Some(conn) = self.conns.get(&token) else {
                return;
            };
            let raw = conn.as_raw_fd();
            let mut fds = Vec::new();
            let n = match recv_with_fds(raw, &mut buf, &mut fds, libc::MSG_DONTWAIT) {
                Ok(r) if r.len == 0 && hung_up(raw) => {
                    self.conns.remove(&token);
                    return;
                }
                Ok(r) if r.cut => {
                    let _ = send_with_fds(raw, &Reply::err(libc::EMSGSIZE).encode(), &[], 0);
                    continue;
                }
                Ok(r) if r.fds_lost => {
                    super::fd_shortage("a program's request");
                    let _ = send_with_fds(raw, &Reply::err(libc::EMFILE).encode(), &[], 0);
                    continue;
                }
                Ok(r) => r.len, // 0: an empty message, malformed
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => return,
                Err(_) => {
                    self.conns.remove(&token);
                    return;
                }
            };
            let (reply, give) = match Request::decode(&buf[..n]) {
                Ok(req) => self.handle(core, now, req, &fds),
                Err(e) => {
                    log::debug!("malformed request: {e}");
                    (Reply::err(libc::EINVAL), None)
                }
            };
            drop(fds);
            let give_raw: Vec<RawFd> = give.iter().map(|f| f.as_raw_fd()).collect();
            if send_with_fds(raw, &reply.encode(), &give_raw, libc::MSG_DONTWAIT).is_err() {
                // A program that does not read its replies loses its
                // connection, not the daemon's time.
                self.conns.remove(&token);
                return;
            }
        }
    }

    /// The socket the attached fd names.
    fn named(&self, fds: &[OwnedFd]) -> Result<usize, i32> {
        let fd = fds.first().ok_or(libc::EBADF)?;
        let ino = super::inode(fd.as_raw_fd()).map_err(|_| libc::ENOTSOCK)?;
        self.by_ino.get(&ino).copied().ok_or(libc::ENOTSOCK)
    }

    fn insert(&mut self, s: Sock) -> io::Result<usize> {
        let id = match self.free.pop() {
            Some(id) => id,
            None => {
                self.socks.push(None);
                self.socks.len() - 1
            }
        };
        let events = pair_events(s.out_armed);
        if let Err(e) = epoll_add(self.epfd.as_raw_fd(), s.end.as_raw_fd(), events, id as u64) {
            self.free.push(id);
            return Err(e);
        }
        self.by_handle.insert(s.handle, id);
        self.by_ino.insert(s.ino, id);
        self.socks[id] = Some(s);
        self.dirty.push(id);
        Ok(id)
    }

    fn remove(&mut self, id: usize) {
        if let Some(s) = self.socks.get_mut(id).and_then(Option::take) {
            self.by_handle.remove(&s.handle);
            self.by_ino.remove(&s.ino);
            self.free.push(id);
        }
    }

    fn new_socket(&mut self, core: &mut Core, v6: bool, tcp: bool) -> Result<OwnedFd, i32> {
        let errno = |e: io::Error| e.raw_os_error().unwrap_or(libc::EIO);
        let h = if tcp {
            core.tcp_mut().socket(v6)
        } else {
            core.udp_socket(v6)
        }
        .map_err(errno)?;
        let made = (|| {
            let ty = if tcp {
                libc::SOCK_STREAM
            } else {
                libc::SOCK_SEQPACKET
            };
            let (mine, theirs) = super::pair(ty)?;
            super::tune_pair(&mine, &theirs);
            let ino = super::inode(theirs.as_raw_fd())?;
            let mut s = Sock::new(h, tcp, v6, mine, ino);
            if tcp {
                s.fill_junk(&theirs)?;
            }
            self.insert(s)?;
            Ok::<_, io::Error>(theirs)
        })();
        made.map_err(|e| {
            if super::out_of_fds(&e) {
                super::fd_shortage("a new socket");
            }
            let _ = core.close(h);
            errno(e)
        })
    }

    fn handle(
        &mut self,
        core: &mut Core,
        now: Instant,
        req: Request,
        fds: &[OwnedFd],
    ) -> (Reply, Option<OwnedFd>) {
        let ok = |value: i32, data: Vec<u8>| Reply {
            errno: 0,
            value,
            data,
        };
        match req {
            Request::Socket { v6, tcp } => match self.new_socket(core, v6, tcp) {
                Ok(fd) => (ok(0, Vec::new()), Some(fd)),
                Err(e) => (Reply::err(e), None),
            },
            Request::Status => {
                let text = format!(
                    "sockets {} connections {} core_sockets {} lingering {}\n",
                    self.by_ino.len(),
                    self.conns.len(),
                    core.sockets_in_use(),
                    core.tcp().lingering()
                );
                (ok(0, text.into_bytes()), None)
            }
            req => {
                let id = match self.named(fds) {
                    Ok(id) => id,
                    Err(e) => return (Reply::err(e), None),
                };
                self.dirty.push(id);
                let Some(s) = self.socks[id].as_mut() else {
                    return (Reply::err(libc::EBADF), None);
                };
                (super::ops::on_socket(core, now, s, req), None)
            }
        }
    }

    /// A periodic 1 s timer while abandoned sockets wait to be forgotten.
    fn arm_reaper(&mut self) {
        let want = !self.reap.is_empty();
        if want == self.reaper_armed {
            return;
        }
        self.reaper_armed = want;
        let s = libc::timespec {
            tv_sec: i64::from(want) as libc::time_t,
            tv_nsec: 0,
        };
        let spec = libc::itimerspec {
            it_interval: s,
            it_value: s,
        };
        // SAFETY: timerfd_settime reads our live spec.
        unsafe { libc::timerfd_settime(self.reaper.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
    }

    /// Forgets abandoned sockets whose program end is gone.
    fn reap_abandoned(&mut self, core: &mut Core) {
        let mut v = 0u64;
        // SAFETY: reads the expiry count into our live u64.
        unsafe { libc::read(self.reaper.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
        let ids = std::mem::take(&mut self.reap);
        for id in ids {
            let Some(s) = self.socks.get(id).and_then(Option::as_ref) else {
                continue;
            };
            let gone = match self.diag.as_mut().map(|d| d.alive(s.ino)) {
                Some(Ok(alive)) => !alive,
                // Without diagnostics nothing tells: forget it now (a
                // later request on it gets ENOTSOCK).
                _ => true,
            };
            log::debug!("reaper: socket {id} (inode {}) gone: {gone}", s.ino);
            if gone {
                let _ = core.close(s.handle);
                self.remove(id);
            } else {
                self.reap.push(id);
            }
        }
        self.arm_reaper();
    }

    fn pump_dirty(&mut self, core: &mut Core, now: Instant) {
        let mut dirty = std::mem::take(&mut self.dirty);
        dirty.sort_unstable();
        dirty.dedup();
        for id in dirty.drain(..) {
            let Some(s) = self.socks.get_mut(id).and_then(Option::as_mut) else {
                continue;
            };
            let out = s.pump(core, now, &mut self.scratch, self.diag.as_mut());
            if !out.gone && s.wants_out() != s.out_armed && !s.abandoned {
                // MOD re-polls the fd: room freed before it still wakes us.
                let want = s.wants_out();
                let fd = s.end.as_raw_fd();
                match epoll_ctl(
                    self.epfd.as_raw_fd(),
                    libc::EPOLL_CTL_MOD,
                    fd,
                    pair_events(want),
                    id as u64,
                ) {
                    Ok(()) => s.out_armed = want,
                    Err(e) => log::warn!("cannot re-register a pair: {e}"),
                }
            }
            if out.gone {
                self.remove(id);
            } else if s.abandoned && !self.reap.contains(&id) {
                self.reap.push(id);
                self.arm_reaper();
            }
            for child in out.born {
                let h = child.handle;
                if let Err(e) = self.insert(child) {
                    if super::out_of_fds(&e) {
                        super::fd_shortage("an accepted connection");
                    } else {
                        log::warn!("cannot relay an accepted connection: {e}");
                    }
                    let _ = core.tcp_mut().abort(h);
                    let _ = core.close(h);
                }
            }
        }
        // Work the pumps found (a child born) runs in this same turn.
        if !self.dirty.is_empty() {
            self.pump_dirty(core, now);
        }
        self.dirty = dirty;
    }
}

impl Driver for Server {
    fn wait_fd(&self) -> RawFd {
        self.epfd.as_raw_fd()
    }

    fn turn(
        &mut self,
        st: &mut State,
        now: Instant,
        changed: &[SocketHandle],
        fd_ready: bool,
    ) -> bool {
        let core = &mut st.core;
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 256];
        // Asked only when the epoll fd polled readable: a turn woken by the
        // link (a reply to relay) needs no epoll_wait of its own.
        let n = if fd_ready {
            // SAFETY: epoll_wait writes at most 256 events into our array.
            unsafe { libc::epoll_wait(self.epfd.as_raw_fd(), events.as_mut_ptr(), 256, 0) }
        } else {
            0
        };
        let n = usize::try_from(n).unwrap_or(0);
        for ev in &events[..n] {
            let token = ev.u64;
            match token & TOKEN_KIND {
                TOKEN_LISTENER => self.accept_conns(),
                TOKEN_TIMER => {
                    let mut v = 0u64;
                    // SAFETY: reads the expiry count into our live u64.
                    unsafe { libc::read(self.timer.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
                    self.idle_expired = self.timer_armed && self.idle();
                }
                TOKEN_CONN if token == TOKEN_REAPER => self.reap_abandoned(core),
                TOKEN_CONN => self.serve_conn(token, core, now),
                _ => {
                    let id = token as usize;
                    if let Some(Some(s)) = self.socks.get_mut(id) {
                        if ev.events & libc::EPOLLHUP as u32 != 0 && !s.hup {
                            // Hang-up: the program closed its end, or the
                            // two sides shut one direction each; only the
                            // kernel's table tells which.
                            s.hup = match self.diag.as_mut().map(|d| d.alive(s.ino)) {
                                Some(Ok(alive)) => !alive,
                                _ => true,
                            };
                        }
                        self.dirty.push(id);
                    }
                }
            }
        }
        for h in changed {
            if let Some(&id) = self.by_handle.get(h) {
                self.dirty.push(id);
            }
        }
        self.pump_dirty(core, now);
        self.arm_idle_timer();
        n == events.len()
    }

    fn done(&self) -> bool {
        self.idle_expired && self.idle() && !self.policy.persistent
    }
}

/// Whether the socket at `id` is a listener (for tests and status).
impl Server {
    /// How many program sockets the daemon serves.
    pub fn sockets(&self) -> usize {
        self.by_ino.len()
    }

    #[allow(dead_code)]
    fn is_listener(&self, id: usize) -> bool {
        self.socks
            .get(id)
            .and_then(Option::as_ref)
            .is_some_and(|s| s.phase == Phase::Listener)
    }
}
