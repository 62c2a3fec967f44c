//! The shared stack's control protocol: how programs under the shim talk to
//! the stack daemon (`ustackd`) that owns the device and the core.
//!
//! The model: every virtual socket in a program is a real kernel AF_UNIX
//! socket, one end of a socketpair whose other end the daemon serves. Data
//! moves natively over the pair (a TCP socket's bytes as a plain stream;
//! a UDP socket's datagrams one SEQPACKET message each behind a
//! [`DgramHeader`]; a listener's accepted connections one message each,
//! carrying the connection's fd), so fork, exec, dup, SCM_RIGHTS, fstat and
//! epoll behave as with kernel sockets. Control calls (bind, connect,
//! listen, getsockname, options...) travel as one [`Request`] message over
//! a SEQPACKET connection to the daemon's abstract address
//! ([`control_name`]), with the socket's own fd attached by SCM_RIGHTS:
//! holding the fd is the only way to name the socket.
//!
//! Owns: the message formats (encode/decode, every length checked: a
//! hostile message decodes to an error, never a panic) and the fd-passing
//! system calls. Must not touch: the core (see [`server`]).

pub mod client;
pub mod server;

mod diag;
mod ops;
mod relay;
mod sockopt;
mod tcp_info;

pub use client::client_status;
pub use tcp_info::linux_tcp_info;

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// The abstract Unix address of the daemon for the device `ifname`
/// (without the leading NUL). Abstract names belong to the network
/// namespace, as the device does.
pub fn control_name(ifname: &str) -> Vec<u8> {
    format!("ustack/{ifname}").into_bytes()
}

/// Bytes a message may carry at most (an option value, an address).
pub const MAX_PAYLOAD: usize = 512;

/// What a program asks of the daemon.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// A new socket; the reply carries the program's end.
    Socket {
        /// IPv6 (AF_INET6) rather than IPv4.
        v6: bool,
        /// TCP rather than UDP.
        tcp: bool,
    },
    /// bind(2).
    Bind(SocketAddr),
    /// listen(2) with this backlog.
    Listen(i32),
    /// connect(2); `None` is AF_UNSPEC (dissolves a UDP association).
    Connect(Option<SocketAddr>),
    /// getsockname(2) (`false`) or getpeername(2) (`true`).
    Name {
        /// The peer's address rather than the local one.
        peer: bool,
    },
    /// shutdown(2) with SHUT_RD/SHUT_WR/SHUT_RDWR.
    Shutdown(i32),
    /// getsockopt(2): level, name, the caller's buffer size.
    GetOpt {
        /// The option's level (SOL_SOCKET, IPPROTO_TCP...).
        level: i32,
        /// The option's name.
        name: i32,
        /// The caller's buffer length.
        max: u32,
    },
    /// setsockopt(2).
    SetOpt {
        /// The option's level.
        level: i32,
        /// The option's name.
        name: i32,
        /// The value as the caller passed it.
        value: Vec<u8>,
    },
    /// Takes the socket's pending error (SO_ERROR); 0 if none.
    TakeError,
    /// Which socket the attached fd is: the reply's value holds
    /// [`IDENT_TCP`], [`IDENT_V6`], [`IDENT_LISTENING`] and [`IDENT_FRESH`]
    /// bits.
    Identify,
    /// The daemon's counts, as text (for tests and `scripts/ustack --status`).
    Status,
}

/// [`Request::Identify`]: a TCP socket.
pub const IDENT_TCP: i32 = 1;
/// [`Request::Identify`]: an AF_INET6 socket.
pub const IDENT_V6: i32 = 2;
/// [`Request::Identify`]: a listening socket.
pub const IDENT_LISTENING: i32 = 4;
/// [`Request::Identify`]: a TCP socket neither connected, connecting nor
/// listening (a read there is ENOTCONN, as Linux).
pub const IDENT_FRESH: i32 = 8;

/// The daemon's answer: 0 or an errno, a value, and bytes.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Reply {
    /// 0, or the errno the call fails with.
    pub errno: i32,
    /// A number (an option's int value, identify bits).
    pub value: i32,
    /// Bytes (an address, an option's value, status text).
    pub data: Vec<u8>,
}

impl Reply {
    /// A failure with `errno`.
    pub fn err(errno: i32) -> Reply {
        Reply {
            errno,
            ..Reply::default()
        }
    }

    /// Encodes the reply as one message.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + self.data.len());
        out.extend_from_slice(&self.errno.to_le_bytes());
        out.extend_from_slice(&self.value.to_le_bytes());
        out.extend_from_slice(&self.data);
        out
    }

    /// Decodes one message.
    pub fn decode(b: &[u8]) -> io::Result<Reply> {
        if b.len() < 8 {
            return Err(bad("short reply"));
        }
        Ok(Reply {
            errno: i32::from_le_bytes(word(b, 0)),
            value: i32::from_le_bytes(word(b, 4)),
            data: b[8..].to_vec(),
        })
    }
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

fn word(b: &[u8], at: usize) -> [u8; 4] {
    let mut w = [0; 4];
    w.copy_from_slice(&b[at..at + 4]);
    w
}

impl Request {
    fn op(&self) -> u32 {
        match self {
            Request::Socket { .. } => 1,
            Request::Bind(_) => 2,
            Request::Listen(_) => 3,
            Request::Connect(_) => 4,
            Request::Name { .. } => 5,
            Request::Shutdown(_) => 6,
            Request::GetOpt { .. } => 7,
            Request::SetOpt { .. } => 8,
            Request::TakeError => 9,
            Request::Identify => 10,
            Request::Status => 11,
        }
    }

    /// Whether the request names a socket (its fd must be attached).
    pub fn needs_fd(&self) -> bool {
        !matches!(self, Request::Socket { .. } | Request::Status)
    }

    /// Encodes the request as one message: op, three int arguments, and a
    /// payload.
    pub fn encode(&self) -> Vec<u8> {
        let (a, b, c, payload): (i32, i32, i32, Vec<u8>) = match self {
            Request::Socket { v6, tcp } => (i32::from(*v6), i32::from(*tcp), 0, Vec::new()),
            Request::Bind(addr) | Request::Connect(Some(addr)) => {
                (0, 0, 0, encode_addr(addr).to_vec())
            }
            Request::Connect(None) => (0, 0, 0, Vec::new()),
            Request::Listen(n) | Request::Shutdown(n) => (*n, 0, 0, Vec::new()),
            Request::Name { peer } => (i32::from(*peer), 0, 0, Vec::new()),
            Request::GetOpt { level, name, max } => (
                *level,
                *name,
                i32::try_from(*max).unwrap_or(i32::MAX),
                Vec::new(),
            ),
            Request::SetOpt { level, name, value } => (*level, *name, 0, value.clone()),
            Request::TakeError | Request::Identify | Request::Status => (0, 0, 0, Vec::new()),
        };
        let mut out = Vec::with_capacity(16 + payload.len());
        out.extend_from_slice(&self.op().to_le_bytes());
        for v in [a, b, c] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&payload);
        out
    }

    /// Decodes one message; anything malformed is `InvalidData`.
    pub fn decode(m: &[u8]) -> io::Result<Request> {
        if m.len() < 16 {
            return Err(bad("short request"));
        }
        let op = u32::from_le_bytes(word(m, 0));
        let a = i32::from_le_bytes(word(m, 4));
        let b = i32::from_le_bytes(word(m, 8));
        let c = i32::from_le_bytes(word(m, 12));
        let p = &m[16..];
        if p.len() > MAX_PAYLOAD {
            return Err(bad("request payload too long"));
        }
        let flag = |v: i32| match v {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(bad("bad flag")),
        };
        Ok(match op {
            1 => Request::Socket {
                v6: flag(a)?,
                tcp: flag(b)?,
            },
            2 => Request::Bind(decode_addr(p)?),
            3 => Request::Listen(a),
            4 if p.is_empty() => Request::Connect(None),
            4 => Request::Connect(Some(decode_addr(p)?)),
            5 => Request::Name { peer: flag(a)? },
            6 => Request::Shutdown(a),
            7 => Request::GetOpt {
                level: a,
                name: b,
                max: u32::try_from(c).map_err(|_| bad("negative option length"))?,
            },
            8 => Request::SetOpt {
                level: a,
                name: b,
                value: p.to_vec(),
            },
            9 => Request::TakeError,
            10 => Request::Identify,
            11 => Request::Status,
            _ => return Err(bad("unknown request")),
        })
    }
}

/// Length of an encoded address.
pub const ADDR_LEN: usize = 28;

/// Encodes an address: family (4 or 6), pad, port (big-endian), flow info,
/// 16 address bytes (IPv4 in the first four), scope id.
pub fn encode_addr(a: &SocketAddr) -> [u8; ADDR_LEN] {
    let mut out = [0u8; ADDR_LEN];
    out[2..4].copy_from_slice(&a.port().to_be_bytes());
    match a {
        SocketAddr::V4(v) => {
            out[0] = 4;
            out[8..12].copy_from_slice(&v.ip().octets());
        }
        SocketAddr::V6(v) => {
            out[0] = 6;
            out[4..8].copy_from_slice(&v.flowinfo().to_le_bytes());
            out[8..24].copy_from_slice(&v.ip().octets());
            out[24..28].copy_from_slice(&v.scope_id().to_le_bytes());
        }
    }
    out
}

/// Decodes [`encode_addr`]'s format.
pub fn decode_addr(b: &[u8]) -> io::Result<SocketAddr> {
    if b.len() < ADDR_LEN {
        return Err(bad("short address"));
    }
    let port = u16::from_be_bytes([b[2], b[3]]);
    match b[0] {
        4 => {
            let ip = Ipv4Addr::new(b[8], b[9], b[10], b[11]);
            Ok(SocketAddr::V4(SocketAddrV4::new(ip, port)))
        }
        6 => {
            let mut o = [0u8; 16];
            o.copy_from_slice(&b[8..24]);
            Ok(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(o),
                port,
                u32::from_le_bytes(word(b, 4)),
                u32::from_le_bytes(word(b, 24)),
            )))
        }
        _ => Err(bad("bad address family")),
    }
}

/// The header in front of every UDP datagram on a pair, both ways: the
/// peer (destination when sending, `None` for the connected peer; source
/// when receiving) and, when receiving, the datagram's whole length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DgramHeader {
    /// The other end's address.
    pub addr: Option<SocketAddr>,
    /// The datagram's length before any truncation.
    pub len: u32,
}

/// Length of an encoded [`DgramHeader`] (and of an accepted connection's
/// message on a listener's pair).
pub const DGRAM_HDR: usize = ADDR_LEN + 4;

impl DgramHeader {
    /// Encodes the header.
    pub fn encode(&self) -> [u8; DGRAM_HDR] {
        let mut out = [0u8; DGRAM_HDR];
        if let Some(a) = &self.addr {
            out[..ADDR_LEN].copy_from_slice(&encode_addr(a));
        }
        out[ADDR_LEN..].copy_from_slice(&self.len.to_le_bytes());
        out
    }

    /// Decodes a header (family 0 is "no address").
    pub fn decode(b: &[u8]) -> io::Result<DgramHeader> {
        if b.len() < DGRAM_HDR {
            return Err(bad("short datagram header"));
        }
        let addr = if b[0] == 0 {
            None
        } else {
            Some(decode_addr(b)?)
        };
        Ok(DgramHeader {
            addr,
            len: u32::from_le_bytes(word(b, ADDR_LEN)),
        })
    }
}

/// Bytes of junk the daemon writes into a fresh TCP socket's pair from the
/// program's side, so the program's end is not writable (no POLLOUT)
/// until the connection is established and the daemon drains it.
pub fn junk_len() -> usize {
    // The program's end is writable while its unread bytes' memory is at
    // most a quarter of its send buffer: exceed that.
    JUNK
}
const JUNK: usize = 96 * 1024;

/// Sends one message with `fds` attached (SCM_RIGHTS).
pub fn send_with_fds(sock: RawFd, data: &[u8], fds: &[RawFd], flags: i32) -> io::Result<usize> {
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    let mut cbuf = [0u64; 8];
    // SAFETY: a zeroed msghdr is a valid empty one.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if !fds.is_empty() {
        if fds.len() > 4 {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let bytes = std::mem::size_of_val(fds);
        // SAFETY: CMSG_SPACE only computes a size.
        let space = unsafe { libc::CMSG_SPACE(bytes as u32) } as usize;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = space;
        // SAFETY: the control buffer is 64 bytes, enough for four fds; the
        // header pointer comes from CMSG_FIRSTHDR over it.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(bytes as u32) as usize;
            std::ptr::copy_nonoverlapping(fds.as_ptr(), libc::CMSG_DATA(c).cast(), fds.len());
        }
    }
    // SAFETY: msg points at live buffers for the call.
    let n = unsafe { libc::sendmsg(sock, &msg, flags | libc::MSG_NOSIGNAL) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// What [`recv_with_fds`] received besides the fds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// Bytes of the message in the buffer.
    pub len: usize,
    /// The message was longer than the buffer (the rest is gone).
    pub cut: bool,
    /// Attached fds were dropped: the receiver had no fd numbers left
    /// (EMFILE), so the kernel closed them instead (MSG_CTRUNC).
    pub fds_lost: bool,
}

/// Receives one message into `buf`, and the fds attached to it (made
/// close-on-exec).
pub fn recv_with_fds(
    sock: RawFd,
    buf: &mut [u8],
    fds: &mut Vec<OwnedFd>,
    flags: i32,
) -> io::Result<Received> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut cbuf = [0u64; 16];
    // SAFETY: a zeroed msghdr is a valid empty one.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&cbuf);
    // SAFETY: msg points at live buffers for the call.
    let n = unsafe { libc::recvmsg(sock, &mut msg, flags | libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    take_fds(&msg, fds);
    Ok(Received {
        len: n as usize,
        cut: msg.msg_flags & libc::MSG_TRUNC != 0,
        fds_lost: msg.msg_flags & libc::MSG_CTRUNC != 0,
    })
}

/// Collects the SCM_RIGHTS fds of a received message.
fn take_fds(msg: &libc::msghdr, fds: &mut Vec<OwnedFd>) {
    // SAFETY: walks the control buffer the kernel just filled, with the
    // CMSG macros, reading each header's data as the fds it holds.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let data_len = (*c).cmsg_len - libc::CMSG_LEN(0) as usize;
                let n = data_len / std::mem::size_of::<RawFd>();
                let p = libc::CMSG_DATA(c).cast::<RawFd>();
                for i in 0..n {
                    let fd = std::ptr::read_unaligned(p.add(i));
                    fds.push(OwnedFd::from_raw_fd(fd));
                }
            }
            c = libc::CMSG_NXTHDR(msg, c);
        }
    }
}

/// The inode of the socket `fd` refers to (its identity across processes).
pub fn inode(fd: RawFd) -> io::Result<u64> {
    // SAFETY: a zeroed stat is valid output space.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat writes into our live stat.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if st.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        return Err(io::Error::from_raw_os_error(libc::ENOTSOCK));
    }
    Ok(st.st_ino)
}

/// The credentials of the process at the other end of a Unix socket.
pub fn peer_cred(fd: RawFd) -> io::Result<libc::ucred> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into our live ucred.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(cred)
}

/// Whether `e` says this process has no fd numbers left (EMFILE) or the
/// system has no files left (ENFILE).
pub(crate) fn out_of_fds(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

/// Logs, at most once a minute, that the daemon ran out of fds while
/// doing `what`, with the fix. The daemon holds one fd for every socket of
/// every program it serves; it raises its own limit at start (ustackd).
pub(crate) fn fd_shortage(what: &str) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let last = LAST.load(Ordering::Relaxed);
    if last != 0 && now.saturating_sub(last) < 60 {
        return;
    }
    LAST.store(now.max(1), Ordering::Relaxed);
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into our live rlimit.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    log::warn!(
        "out of file descriptors ({} open at most): {what} failed with EMFILE; \
         the stack daemon holds one per socket of all its programs: raise the \
         hard limit where it starts (ulimit -Hn before the first program, or \
         start it as root with `scripts/ustack --daemon`)",
        lim.rlim_cur
    );
}

/// A socketpair of `ty` (SOCK_STREAM or SOCK_SEQPACKET), both ends
/// close-on-exec and the first non-blocking (the daemon's).
pub fn pair(ty: i32) -> io::Result<(OwnedFd, OwnedFd)> {
    let mut sv = [0; 2];
    // SAFETY: socketpair writes two fds into our array.
    let r = unsafe { libc::socketpair(libc::AF_UNIX, ty | libc::SOCK_CLOEXEC, 0, sv.as_mut_ptr()) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both fds were just made and are ours alone.
    let (a, b) = unsafe { (OwnedFd::from_raw_fd(sv[0]), OwnedFd::from_raw_fd(sv[1])) };
    set_nonblocking(a.as_raw_fd())?;
    Ok((a, b))
}

/// Sets O_NONBLOCK on `fd`.
pub fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: F_GETFL/F_SETFL take no pointers.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        if fl < 0 || libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// An abstract Unix address for `name` (no leading NUL in `name`).
pub fn abstract_addr(name: &[u8]) -> io::Result<(libc::sockaddr_un, libc::socklen_t)> {
    // SAFETY: a zeroed sockaddr_un is valid.
    let mut a: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    a.sun_family = libc::AF_UNIX as libc::sa_family_t;
    if name.len() + 1 > a.sun_path.len() {
        return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
    }
    for (d, s) in a.sun_path[1..].iter_mut().zip(name) {
        *d = *s as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sa_family_t>() + 1 + name.len();
    Ok((a, len as libc::socklen_t))
}

/// Whether an address is on this host's loopback (never the stack's).
pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v) => v.is_loopback(),
        IpAddr::V6(v) => v.is_loopback() || v.to_ipv4_mapped().is_some_and(|m| m.is_loopback()),
    }
}

#[cfg(test)]
mod tests;

/// Bytes a pair may hold each way: the program's writes wait while its
/// end's send buffer is full, the daemon stops taking from the core while
/// its own is.
const PAIR_BUF: libc::c_int = 1 << 20;

/// Sizes the daemon's end's send buffer ([`PAIR_BUF`]; above
/// `net.core.wmem_max` only with CAP_NET_ADMIN, else as much as the kernel
/// allows). The program's end keeps the default (`net.core.wmem_default`):
/// a fresh TCP socket's junk is a quarter of it, written and drained once
/// per connection. Once SO_SNDBUFFORCE is refused (no CAP_NET_ADMIN), it
/// is not tried again: one system call less per socket.
pub(crate) fn tune_pair(mine: &OwnedFd, _theirs: &OwnedFd) {
    use std::sync::atomic::{AtomicBool, Ordering};
    static NO_FORCE: AtomicBool = AtomicBool::new(false);
    let set = |opt: libc::c_int| {
        // SAFETY: setsockopt reads one int from our live variable.
        unsafe {
            libc::setsockopt(
                mine.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                (&PAIR_BUF as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            ) == 0
        }
    };
    if !NO_FORCE.load(Ordering::Relaxed) {
        if set(libc::SO_SNDBUFFORCE) {
            return;
        }
        NO_FORCE.store(true, Ordering::Relaxed);
    }
    set(libc::SO_SNDBUF);
}
