//! Sockets on the shared stack: the program's side of `ustack::ipc`.
//!
//! A socket here is a real AF_UNIX socket fd (one end of a pair the stack
//! daemon serves), so every call this module does not handle is the
//! kernel's own: read/write/poll/epoll/fork/exec/dup/SCM_RIGHTS work
//! natively on it. This module makes the calls that differ: socket,
//! bind, listen, accept, connect, names, options, shutdown, UDP
//! datagrams (a header in front of each), the errors behind an end of
//! stream, and the recognition of sockets that arrive by exec or
//! SCM_RIGHTS.
//!
//! Owns: the pool of control connections (per process: a connection seen
//! from a forked child is dropped, never shared) and the daemon's
//! start-up. Must not touch: the in-process stack (`stack::Stack::Up`).

use std::ffi::CString;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI32, Ordering};

use ustack_core::config::Config;
use ustack_core::ipc::{self, DgramHeader, Reply, Request, client};

use crate::process;
use crate::real;
use crate::sock::{Remote, Res};
use crate::table::{self, Entry};

/// Before a TCP read or send: Linux says ENOTCONN (a send EPIPE) on a
/// socket that never connected (or listens), where the pair would block
/// forever. Asked of
/// the daemon once per socket and process (an inherited or received
/// socket may be connected), unless this process connected or accepted it.
pub fn readable(fd: RawFd, r: &Remote) -> Res<()> {
    if r.started.load(Ordering::Relaxed) {
        return Ok(());
    }
    let bits = call(fd, Request::Identify)?.value;
    if bits & (ipc::IDENT_FRESH | ipc::IDENT_LISTENING) != 0 {
        return Err(libc::ENOTCONN);
    }
    r.started.store(true, Ordering::Relaxed);
    Ok(())
}

/// Before a TCP send: while a non-blocking connect is in its handshake
/// Linux's send() is EAGAIN, where the pair would take the bytes (the
/// daemon's junk keeps the program's end from polling writable, not from
/// taking a small write). One poll per send until the handshake is seen
/// to end, either way; a blocking send lets the pair hold the bytes until
/// then, as Linux's waits for the connection.
pub fn sendable(fd: RawFd, r: &Remote, flags: i32) -> Res<()> {
    readable(fd, r)?;
    if !r.connecting.load(Ordering::Relaxed) {
        return Ok(());
    }
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one live pollfd.
    let n = unsafe { real::poll(&mut p, 1, 0) };
    if n > 0 {
        r.connecting.store(false, Ordering::Relaxed);
        return Ok(());
    }
    if n == 0 && (nonblocking(fd) || flags & libc::MSG_DONTWAIT != 0) {
        return Err(libc::EAGAIN);
    }
    Ok(())
}

/// The device this process's shared stack serves.
static IFNAME: Mutex<Option<String>> = Mutex::new(None);
/// Idle control connections, each with the pid that opened it.
static POOL: Mutex<Vec<(u32, OwnedFd)>> = Mutex::new(Vec::new());
/// The daemon's pid, once known (sockets whose peer it is are ours).
static DAEMON_PID: AtomicI32 = AtomicI32::new(0);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether this process uses a shared stack (so received fds may be its
/// sockets).
pub fn attached() -> bool {
    lock(&IFNAME).is_some()
}

fn ifname() -> Option<String> {
    lock(&IFNAME).clone()
}

fn connect_new(ifname: &str) -> std::io::Result<OwnedFd> {
    let c = process::as_shim(|| client::connect(ifname))?;
    table::mark_internal(c.as_raw_fd());
    if let Ok(cred) = ipc::peer_cred(c.as_raw_fd()) {
        DAEMON_PID.store(cred.pid, Ordering::Relaxed);
    }
    Ok(c)
}

fn release(c: OwnedFd) {
    table::unmark_internal(c.as_raw_fd());
    process::as_shim(|| drop(c));
}

/// One request to the daemon. A daemon that is gone is `ENETDOWN`.
pub fn rpc(req: &Request, fd: Option<RawFd>) -> Res<(Reply, Vec<OwnedFd>)> {
    let name = ifname().ok_or(libc::ENETDOWN)?;
    let me = std::process::id();
    let pooled = {
        let mut pool = lock(&POOL);
        // Connections inherited from a parent belong to the parent.
        let stale: Vec<_> = pool.extract_if(.., |(pid, _)| *pid != me).collect();
        let c = pool.pop();
        drop(pool);
        for (_, s) in stale {
            release(s);
        }
        c
    };
    let conn = match pooled {
        Some((_, c)) => c,
        // Out of fds, the program's call fails as it would on a kernel
        // socket; any other failure means the daemon is gone.
        None => connect_new(&name).map_err(|e| match e.raw_os_error() {
            Some(e @ (libc::EMFILE | libc::ENFILE)) => e,
            _ => libc::ENETDOWN,
        })?,
    };
    match process::as_shim(|| client::call(conn.as_raw_fd(), req, fd)) {
        Ok((reply, fds)) => {
            lock(&POOL).push((me, conn));
            for f in &fds {
                table::forget(f.as_raw_fd());
            }
            Ok((reply, fds))
        }
        Err(e) => {
            log::debug!("request to the stack daemon failed: {e}");
            release(conn);
            Err(libc::ENETDOWN)
        }
    }
}

fn call(fd: RawFd, req: Request) -> Res<Reply> {
    let (r, _) = rpc(&req, Some(fd))?;
    if r.errno != 0 {
        return Err(r.errno);
    }
    Ok(r)
}

/// Why the shim could not attach to a daemon.
pub enum NoDaemon {
    /// None serves the device (or it could not be started): the line to
    /// print.
    Absent(String),
    /// One serves it but refuses this program: the reason and the fix.
    Refused {
        /// The daemon's words.
        why: String,
        /// What the user can do about it.
        fix: String,
    },
}

/// Whether a daemon serves `cfg`'s device and admits this program; with
/// `start`, starts one if none serves it. A daemon is asked for its
/// status once, so a refusal shows here rather than as ENETDOWN later.
pub fn attach(cfg: &Config, start: bool) -> Result<(), NoDaemon> {
    let probe = || -> Result<Option<()>, NoDaemon> {
        let Ok(c) = process::as_shim(|| client::connect(&cfg.ifname)) else {
            return Ok(None);
        };
        let daemon = ipc::peer_cred(c.as_raw_fd()).ok();
        let answer = process::as_shim(|| client::call(c.as_raw_fd(), &Request::Status, None));
        process::as_shim(|| drop(c));
        match answer {
            Ok((r, _)) if r.errno == 0 => {
                if let Some(d) = daemon {
                    DAEMON_PID.store(d.pid, Ordering::Relaxed);
                }
                *lock(&IFNAME) = Some(cfg.ifname.clone());
                Ok(Some(()))
            }
            Ok((r, _)) => {
                // SAFETY: getgid has no preconditions.
                let gid = unsafe { libc::getgid() };
                let owner = daemon.map_or("its".into(), |d| format!("uid {}", d.uid));
                Err(NoDaemon::Refused {
                    why: String::from_utf8_lossy(&r.data).into_owned(),
                    fix: format!(
                        "run the daemon as {owner} with `scripts/ustack --daemon --group {gid}` to admit this group, or run this program as {owner}"
                    ),
                })
            }
            Err(e) => Err(NoDaemon::Absent(format!(
                "the stack daemon hung up at once ({e})"
            ))),
        }
    };
    if probe()?.is_some() {
        return Ok(());
    }
    if !start {
        return Err(NoDaemon::Absent("no stack daemon serves the device".into()));
    }
    process::as_shim(|| spawn_daemon(cfg)).map_err(NoDaemon::Absent)?;
    match probe()? {
        Some(()) => Ok(()),
        None => Err(NoDaemon::Absent(
            "the stack daemon started but cannot be reached".into(),
        )),
    }
}

/// Where `ustackd` is: `USTACK_DAEMON`, else beside libustack.so.
fn daemon_path() -> Option<std::path::PathBuf> {
    if let Some(p) = std::env::var_os("USTACK_DAEMON") {
        return Some(p.into());
    }
    // SAFETY: dladdr fills `info` for an address inside this library.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    let here = daemon_path as *const libc::c_void;
    // SAFETY: as above; dli_fname is a C string owned by the loader.
    let lib = unsafe {
        if libc::dladdr(here, &mut info) == 0 || info.dli_fname.is_null() {
            return None;
        }
        std::ffi::CStr::from_ptr(info.dli_fname)
    };
    use std::os::unix::ffi::OsStrExt;
    let lib = std::path::Path::new(std::ffi::OsStr::from_bytes(lib.to_bytes()));
    Some(lib.parent()?.join("ustackd"))
}

/// Starts `ustackd --detach` and waits for its word on a pipe: `ok` or
/// `running` (another program started one first) is success.
fn spawn_daemon(cfg: &Config) -> Result<(), String> {
    let path = daemon_path().ok_or("cannot find ustackd (set USTACK_DAEMON)")?;
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into our array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(format!("pipe: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: both fds are new and ours.
    let (rd, wr) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let exe = CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| "bad path")?;
    let args: Vec<CString> = ["ustackd", "--detach", "--ready-fd", "3"]
        .iter()
        .map(|a| CString::new(*a).unwrap_or_default())
        .collect();
    let mut argv: Vec<*mut libc::c_char> = args.iter().map(|a| a.as_ptr() as *mut _).collect();
    argv.push(std::ptr::null_mut());
    // The daemon must not run under the shim itself.
    let env: Vec<CString> = std::env::vars_os()
        .filter(|(k, _)| k != "LD_PRELOAD")
        .filter_map(|(k, v)| {
            let mut kv = k.into_encoded_bytes();
            kv.push(b'=');
            kv.extend_from_slice(v.as_encoded_bytes());
            CString::new(kv).ok()
        })
        .collect();
    let mut envp: Vec<*mut libc::c_char> = env.iter().map(|a| a.as_ptr() as *mut _).collect();
    envp.push(std::ptr::null_mut());
    let devnull = c"/dev/null";
    let mut pid: libc::pid_t = 0;
    // SAFETY: posix_spawn with file actions built and destroyed here; argv
    // and the environment stay alive across the call.
    let r = unsafe {
        let mut fa: libc::posix_spawn_file_actions_t = std::mem::zeroed();
        libc::posix_spawn_file_actions_init(&mut fa);
        libc::posix_spawn_file_actions_addopen(&mut fa, 0, devnull.as_ptr(), libc::O_RDONLY, 0);
        libc::posix_spawn_file_actions_adddup2(&mut fa, wr.as_raw_fd(), 3);
        let mut at: libc::posix_spawnattr_t = std::mem::zeroed();
        libc::posix_spawnattr_init(&mut at);
        libc::posix_spawnattr_setflags(&mut at, libc::POSIX_SPAWN_SETSID as libc::c_short);
        let r = libc::posix_spawn(
            &mut pid,
            exe.as_ptr(),
            &fa,
            &at,
            argv.as_ptr(),
            envp.as_ptr(),
        );
        libc::posix_spawn_file_actions_destroy(&mut fa);
        libc::posix_spawnattr_destroy(&mut at);
        r
    };
    drop(wr);
    if r != 0 {
        return Err(format!(
            "cannot run {}: {}",
            path.display(),
            std::io::Error::from_raw_os_error(r)
        ));
    }
    // The direct child exits as soon as the daemon is detached.
    let mut status = 0;
    // SAFETY: waits for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    let mut word = Vec::new();
    let mut f = std::fs::File::from(rd);
    let mut p = libc::pollfd {
        fd: f.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one live pollfd; ten seconds for a device to come up.
    unsafe { libc::poll(&mut p, 1, 10_000) };
    if p.revents != 0 {
        let _ = std::io::Read::read_to_end(&mut f, &mut word);
    }
    let word = String::from_utf8_lossy(&word).trim().to_string();
    match word.as_str() {
        "ok" | "running" => Ok(()),
        "" => Err(format!("{} gave no answer", path.display())),
        w => Err(w.strip_prefix("error: ").unwrap_or(w).to_string()),
    }
    .map_err(|e| {
        log::debug!("daemon start for {}: {e}", cfg.ifname);
        e
    })
}

/// socket(2) on the shared stack: the new fd.
pub fn socket(v6: bool, tcp: bool, flags: i32) -> Res<i32> {
    let (r, mut fds) = rpc(&Request::Socket { v6, tcp }, None)?;
    if r.errno != 0 {
        return Err(r.errno);
    }
    let fd = fds.pop().ok_or(libc::EIO)?.into_raw_fd();
    // The fd arrived close-on-exec; the program asked for what it asked.
    if flags & libc::SOCK_CLOEXEC == 0 {
        // SAFETY: our new fd.
        unsafe { real::fcntl(fd, libc::F_SETFD, 0) };
    }
    if flags & libc::SOCK_NONBLOCK != 0 {
        set_nonblocking(fd, true);
    }
    drop(table::insert(fd, Entry::Remote(Remote::new(tcp, v6))));
    Ok(fd)
}

fn set_nonblocking(fd: RawFd, on: bool) {
    // SAFETY: F_GETFL/F_SETFL on the program's own fd.
    unsafe {
        let fl = real::fcntl(fd, libc::F_GETFL, 0);
        if fl >= 0 {
            let fl = if on {
                fl | libc::O_NONBLOCK
            } else {
                fl & !libc::O_NONBLOCK
            };
            real::fcntl(fd, libc::F_SETFL, fl as libc::c_ulong);
        }
    }
}

fn nonblocking(fd: RawFd) -> bool {
    // SAFETY: F_GETFL takes no argument.
    unsafe { real::fcntl(fd, libc::F_GETFL, 0) & libc::O_NONBLOCK != 0 }
}

/// The pair's SO_SNDTIMEO as a poll timeout (-1: none).
fn send_timeout_ms(fd: RawFd) -> i32 {
    let mut tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 0,
    };
    let mut len = std::mem::size_of::<libc::timeval>() as libc::socklen_t;
    // SAFETY: getsockopt writes a timeval into our live variable.
    let r = unsafe {
        real::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_SNDTIMEO,
            (&mut tv as *mut libc::timeval).cast(),
            &mut len,
        )
    };
    if r < 0 || (tv.tv_sec == 0 && tv.tv_usec == 0) {
        return -1;
    }
    let ms = tv.tv_sec * 1000 + (tv.tv_usec + 999) / 1000;
    ms.clamp(1, i64::from(i32::MAX)) as i32
}

/// The address family a Remote socket wants.
fn fit(r: &Remote, a: SocketAddr) -> Res<SocketAddr> {
    match (r.v6, a) {
        (true, SocketAddr::V4(v)) => Ok(SocketAddr::new(v.ip().to_ipv6_mapped().into(), v.port())),
        (false, SocketAddr::V6(_)) => Err(libc::EAFNOSUPPORT),
        _ => Ok(a),
    }
}

pub fn bind(fd: RawFd, r: &Remote, a: SocketAddr) -> Res<()> {
    if r.v6 != a.is_ipv6() {
        return Err(if r.v6 {
            libc::EINVAL
        } else {
            libc::EAFNOSUPPORT
        });
    }
    call(fd, Request::Bind(a)).map(drop)
}

pub fn listen(fd: RawFd, backlog: i32) -> Res<()> {
    call(fd, Request::Listen(backlog)).map(drop)
}

/// accept4(2): the connection arrives as a message on the listener's own
/// fd, so blocking, O_NONBLOCK, signals and several accepting processes
/// are the kernel's.
pub fn accept(fd: RawFd, r: &Remote, flags: i32) -> Res<(i32, SocketAddr)> {
    if flags & !(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC) != 0 {
        return Err(libc::EINVAL);
    }
    if !r.tcp {
        return Err(libc::EOPNOTSUPP);
    }
    // Linux: EINVAL on a socket that does not listen. Its pair carries no
    // connections, so a blocking receive there would wait forever.
    if !r.listening.load(Ordering::Relaxed) {
        if call(fd, Request::Identify)?.value & ipc::IDENT_LISTENING == 0 {
            return Err(libc::EINVAL);
        }
        r.listening.store(true, Ordering::Relaxed);
    }
    // Out of fds, Linux's accept fails with EMFILE and the connection
    // waits in the queue; receiving it here would drop its fd and so lose
    // it. So check for a free fd number first (a thread that takes the
    // last one between the check and the receive loses the connection).
    // SAFETY: F_DUPFD_CLOEXEC on our own fd; the copy is closed at once.
    let probe = unsafe { real::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if probe < 0 {
        return Err(real::errno());
    }
    // SAFETY: the copy just made.
    unsafe { real::close(probe) };
    let mut hdr = [0u8; ipc::DGRAM_HDR];
    let mut fds = Vec::new();
    let got = process::as_shim(|| ipc::recv_with_fds(fd, &mut hdr, &mut fds, 0))
        .map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))?;
    if got.fds_lost {
        log::warn!("an accepted connection was lost: no fd left to receive it");
        return Err(libc::EMFILE);
    }
    let n = got.len;
    let conn = fds.pop().ok_or(if n == 0 {
        libc::EINVAL
    } else {
        libc::ECONNABORTED
    })?;
    let peer = DgramHeader::decode(&hdr[..n])
        .ok()
        .and_then(|h| h.addr)
        .ok_or(libc::ECONNABORTED)?;
    let nfd = conn.into_raw_fd();
    table::forget(nfd);
    if flags & libc::SOCK_CLOEXEC == 0 {
        // SAFETY: our new fd.
        unsafe { real::fcntl(nfd, libc::F_SETFD, 0) };
    }
    if flags & libc::SOCK_NONBLOCK != 0 {
        set_nonblocking(nfd, true);
    }
    drop(table::insert(nfd, Entry::Remote(Remote::accepted(r.v6))));
    Ok((nfd, peer))
}

/// connect(2). A blocking TCP connect waits for the program's end to turn
/// writable (the daemon makes it so when the handshake ends either way),
/// in a real poll, so a signal interrupts it as it would the kernel's.
pub fn connect(fd: RawFd, r: &Remote, a: Option<SocketAddr>) -> Res<()> {
    let a = a.map(|a| fit(r, a)).transpose()?;
    call(fd, Request::Connect(a))?;
    if !r.tcp {
        return Ok(());
    }
    r.started.store(true, Ordering::Relaxed);
    if nonblocking(fd) {
        r.connecting.store(true, Ordering::Relaxed);
        return Err(libc::EINPROGRESS);
    }
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLOUT,
        revents: 0,
    };
    // SO_SNDTIMEO (set on the pair itself) bounds the wait: then
    // EINPROGRESS, the connect going on, as Linux.
    // SAFETY: one live pollfd.
    match unsafe { real::poll(&mut p, 1, send_timeout_ms(fd)) } {
        n if n < 0 => return Err(real::errno()),
        0 => {
            r.connecting.store(true, Ordering::Relaxed);
            return Err(libc::EINPROGRESS);
        }
        _ => {}
    }
    // Writable alone is connected; a failure also hangs the pair up
    // (see `ipc::relay`), and only then is the error worth a request.
    if p.revents & (libc::POLLHUP | libc::POLLERR) == 0 {
        return Ok(());
    }
    match take_error(fd)? {
        0 => Ok(()),
        e => Err(e),
    }
}

/// SO_ERROR.
pub fn take_error(fd: RawFd) -> Res<i32> {
    Ok(call(fd, Request::TakeError)?.value)
}

pub fn name(fd: RawFd, peer: bool) -> Res<SocketAddr> {
    let r = call(fd, Request::Name { peer })?;
    ipc::decode_addr(&r.data).map_err(|_| libc::EIO)
}

pub fn getsockopt(fd: RawFd, level: i32, name: i32, max: u32) -> Res<Option<Vec<u8>>> {
    if level == libc::SOL_SOCKET && matches!(name, libc::SO_RCVTIMEO | libc::SO_SNDTIMEO) {
        return Ok(None); // the pair's own
    }
    Ok(Some(call(fd, Request::GetOpt { level, name, max })?.data))
}

pub fn setsockopt(fd: RawFd, r: &Remote, level: i32, name: i32, value: &[u8]) -> Res<bool> {
    lock(&r.opts).push((level, name, value.to_vec()));
    if level == libc::SOL_SOCKET && matches!(name, libc::SO_RCVTIMEO | libc::SO_SNDTIMEO) {
        return Ok(false); // the pair's own: the caller sets it natively
    }
    call(
        fd,
        Request::SetOpt {
            level,
            name,
            value: value.to_vec(),
        },
    )?;
    Ok(true)
}

pub fn shutdown(fd: RawFd, r: &Remote, how: i32) -> Res<()> {
    call(fd, Request::Shutdown(how))?;
    if r.tcp {
        // The daemon sends the FIN once it has read up to this point.
        // SAFETY: integer arguments.
        unsafe { real::shutdown(fd, how) };
    }
    Ok(())
}

/// After a read of a TCP socket returned 0: the error behind that end of
/// stream (a reset, a timeout), if any. A daemon that is gone is a reset.
pub fn eof_error(fd: RawFd) -> Option<i32> {
    match take_error(fd) {
        Ok(0) => None,
        Ok(e) => Some(e),
        Err(libc::ENETDOWN) => Some(libc::ECONNRESET),
        Err(_) => None,
    }
}

/// Sends one UDP datagram (`parts` gathered) to `dst` or the connected
/// peer.
pub fn udp_send(fd: RawFd, data: &[u8], dst: Option<SocketAddr>, flags: i32) -> Res<usize> {
    let hdr = DgramHeader { addr: dst, len: 0 }.encode();
    let iov = [
        libc::iovec {
            iov_base: hdr.as_ptr() as *mut libc::c_void,
            iov_len: hdr.len(),
        },
        libc::iovec {
            iov_base: data.as_ptr() as *mut libc::c_void,
            iov_len: data.len(),
        },
    ];
    // SAFETY: a zeroed msghdr is empty; the iovecs point at live buffers.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = 2;
    let flags = flags & (libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL);
    // SAFETY: as above.
    let n = unsafe { real::sendmsg(fd, &msg, flags) };
    if n < 0 {
        return Err(real::errno());
    }
    Ok(data.len())
}

/// One received UDP datagram: bytes copied, its whole length, and the
/// sender.
pub struct Datagram {
    pub n: usize,
    pub full: usize,
    pub from: Option<SocketAddr>,
}

/// Receives one UDP datagram into `buf`.
pub fn udp_recv(fd: RawFd, buf: &mut [u8], flags: i32) -> Res<Datagram> {
    let mut hdr = [0u8; ipc::DGRAM_HDR];
    let iov = [
        libc::iovec {
            iov_base: hdr.as_mut_ptr().cast(),
            iov_len: hdr.len(),
        },
        libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        },
    ];
    // SAFETY: as in `udp_send`.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = 2;
    let flags = flags & (libc::MSG_DONTWAIT | libc::MSG_PEEK | libc::MSG_WAITALL);
    // SAFETY: as above.
    let n = unsafe { real::recvmsg(fd, &mut msg, flags) };
    if n < 0 {
        return Err(real::errno());
    }
    let n = n as usize;
    let h = DgramHeader::decode(&hdr[..n.min(hdr.len())]).map_err(|_| {
        // The daemon is gone (end of the pair).
        libc::ENETDOWN
    })?;
    let got = n - ipc::DGRAM_HDR;
    Ok(Datagram {
        n: got,
        full: (h.len as usize).max(got),
        from: h.addr,
    })
}

/// Whether `fd` is an inherited or received socket of the shared stack:
/// recognised by its peer being the daemon, then confirmed by the daemon.
/// Registers it when so.
pub fn adopt(fd: RawFd) -> bool {
    if table::get(fd).is_some() || ifname().is_none() {
        return false;
    }
    let mut dom: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes one int.
    let r = unsafe {
        real::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_DOMAIN,
            (&mut dom as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if r != 0 || dom != libc::AF_UNIX {
        return false;
    }
    let daemon = DAEMON_PID.load(Ordering::Relaxed);
    match ipc::peer_cred(fd) {
        Ok(c) if c.pid == daemon && daemon != 0 => {}
        _ => return false,
    }
    let Ok(r) = call(fd, Request::Identify) else {
        return false;
    };
    let tcp = r.value & ipc::IDENT_TCP != 0;
    let v6 = r.value & ipc::IDENT_V6 != 0;
    let remote = Remote::new(tcp, v6);
    // What the daemon said now spares the first read its own request: a
    // process that exec'd and then dropped privileges or entered a
    // sandbox (sshd's preauth child: another uid, seccomp) could not make
    // it, and reads and writes on a connection need none.
    let listening = r.value & ipc::IDENT_LISTENING != 0;
    remote.listening.store(listening, Ordering::Relaxed);
    remote.started.store(
        !listening && r.value & ipc::IDENT_FRESH == 0,
        Ordering::Relaxed,
    );
    drop(table::insert(fd, Entry::Remote(remote)));
    true
}

/// At load: connects to the daemon named by the environment if one runs,
/// and adopts the sockets this process inherited (it was exec'd by a
/// program under the shim).
pub fn adopt_inherited(cfg: &Config) {
    if cfg.shared == ustack_core::config::Shared::Off || attach(cfg, false).is_err() {
        return;
    }
    let Ok(dir) = process::as_shim(|| std::fs::read_dir("/proc/self/fd")) else {
        return;
    };
    let fds: Vec<RawFd> = process::as_shim(|| {
        dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect()
    });
    for fd in fds {
        adopt(fd);
    }
}

/// A Remote socket becomes a kernel socket (bind or connect to
/// loopback): a kernel socket of the same kind, with the options set so
/// far, takes over its fd number (the daemon sees the pair close).
pub fn to_kernel(fd: RawFd, r: &Remote) -> Res<()> {
    let family = if r.v6 { libc::AF_INET6 } else { libc::AF_INET };
    let ty = if r.tcp {
        libc::SOCK_STREAM
    } else {
        libc::SOCK_DGRAM
    };
    // SAFETY: integer arguments.
    let k = unsafe { real::socket(family, ty | libc::SOCK_CLOEXEC, 0) };
    if k < 0 {
        return Err(real::errno());
    }
    for (level, name, v) in lock(&r.opts).iter() {
        // SAFETY: the stored value's bytes and length.
        unsafe { real::setsockopt(k, *level, *name, v.as_ptr().cast(), v.len() as u32) };
    }
    // SAFETY: F_GETFD/F_GETFL take no argument.
    let (fdflags, flflags) = unsafe {
        (
            real::fcntl(fd, libc::F_GETFD, 0),
            real::fcntl(fd, libc::F_GETFL, 0),
        )
    };
    if flflags & libc::O_NONBLOCK != 0 {
        set_nonblocking(k, true);
    }
    let cloexec = if fdflags & libc::FD_CLOEXEC != 0 {
        libc::O_CLOEXEC
    } else {
        0
    };
    // SAFETY: both fds are ours; dup3 replaces the pair end atomically.
    let rr = unsafe { real::dup3(k, fd, cloexec) };
    let e = real::errno();
    // SAFETY: `k` is ours.
    unsafe { real::close(k) };
    if rr < 0 {
        return Err(e);
    }
    drop(table::remove(fd));
    Ok(())
}
