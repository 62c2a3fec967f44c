//! The program's side of the protocol: connecting to a daemon and making
//! one request. Used by the shim (inside its bypass, so these calls reach
//! libc) and by `ustackd --status`.
//!
//! Owns nothing beyond the call: the shim keeps its own pool of
//! connections and decides what a failure means to the program.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::{Reply, Request, recv_with_fds, send_with_fds};

/// Connects to the daemon serving `ifname` in this network namespace
/// (`ConnectionRefused` or `NotFound` when none does).
pub fn connect(ifname: &str) -> io::Result<OwnedFd> {
    let (addr, len) = super::abstract_addr(&super::control_name(ifname))?;
    // SAFETY: socket takes no pointers.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the fd was just made and is ours alone.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: connect reads `len` bytes of our live address.
    let r = unsafe {
        libc::connect(
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_un).cast(),
            len,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    // Every request is answered at once: a daemon silent for this long is
    // stuck, and the caller gets an error rather than a hang.
    let tv = libc::timeval {
        tv_sec: REPLY_TIMEOUT_S,
        tv_usec: 0,
    };
    // SAFETY: setsockopt reads our live timeval.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    Ok(fd)
}

/// Seconds a request waits for its reply.
const REPLY_TIMEOUT_S: libc::time_t = 10;

/// Sends `req` (with the socket's fd when it names one) and waits for the
/// reply and the fds it carries. A signal does not cut the exchange short:
/// the reply would otherwise be read by the next call.
pub fn call(conn: RawFd, req: &Request, fd: Option<RawFd>) -> io::Result<(Reply, Vec<OwnedFd>)> {
    let fds: Vec<RawFd> = fd.into_iter().collect();
    let mut buf = vec![0u8; super::MAX_PAYLOAD + 64];
    let mut got = Vec::new();
    // A daemon that refuses the program says why and hangs up, maybe
    // before the request arrives: the send then fails, and the reason
    // waits to be read.
    let mut recv_flags = 0;
    let (mut reset_seen, mut first_error) = (false, None);
    loop {
        match send_with_fds(conn, &req.encode(), &fds, 0) {
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if matches!(e.raw_os_error(), Some(libc::EPIPE | libc::ECONNRESET)) => {
                recv_flags = libc::MSG_DONTWAIT;
                first_error = Some(e);
                break;
            }
            Err(e) => return Err(e),
        }
    }
    loop {
        match recv_with_fds(conn, &mut buf, &mut got, recv_flags) {
            Ok(r) if r.len == 0 => {
                return Err(io::Error::from(io::ErrorKind::ConnectionReset));
            }
            // Out of fds here: the fd the reply carried is gone (the daemon
            // sees its end hang up and frees what it stood for), so the
            // call fails as Linux's socket() and accept() do.
            Ok(r) if r.fds_lost => return Ok((Reply::err(libc::EMFILE), Vec::new())),
            Ok(r) => return Ok((Reply::decode(&buf[..r.len])?, got)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // A daemon that hangs up with our request unread leaves this
            // error, reported before what it sent (the refusal): reading
            // again, without waiting, gets that if there is one.
            Err(e) if e.raw_os_error() == Some(libc::ECONNRESET) && !reset_seen => {
                reset_seen = true;
                recv_flags = libc::MSG_DONTWAIT;
                first_error = Some(e);
            }
            Err(e) => return Err(first_error.unwrap_or(e)),
        }
    }
}

/// The status text of the daemon serving `ifname`.
pub fn client_status(ifname: &str) -> io::Result<String> {
    let conn = connect(ifname)?;
    let (r, _) = call(conn.as_raw_fd(), &Request::Status, None)?;
    Ok(String::from_utf8_lossy(&r.data).into_owned())
}
