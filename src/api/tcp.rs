//! `TcpListener` and `TcpStream`, shaped like `std::net`'s.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use super::socket::{Direction, SocketRef, socket_ref_methods};
use super::{Readiness, Stack, TcpInfo, all_addrs, first_addr};
use crate::stack::{self, TcpOptionsSet};
use crate::tcp::Keepalive;

/// A TCP socket listening for connections.
///
/// ```no_run
/// use std::io::{Read, Write};
/// # fn main() -> std::io::Result<()> {
/// let stack = ustack::api::Stack::from_env()?;
/// let listener = ustack::api::TcpListener::bind(&stack, "0.0.0.0:7")?;
/// for stream in listener.incoming() {
///     let mut stream = stream?;
///     let mut buf = [0u8; 4096];
///     loop {
///         let n = stream.read(&mut buf)?;
///         if n == 0 { break; }
///         stream.write_all(&buf[..n])?;
///     }
/// }
/// # Ok(()) }
/// ```
pub struct TcpListener {
    sock: Arc<SocketRef>,
}

/// A TCP connection: a byte stream in both directions.
///
/// `Read` and `Write` are implemented for `&TcpStream` too, so one thread
/// can read while another writes. Errors carry the errno Linux would give,
/// so the `ErrorKind`s are std's (stacks set up as in [`Stack`]):
///
/// ```
/// use std::io::ErrorKind;
/// use ustack::api::{Stack, TcpListener, TcpStream};
/// use ustack::device::pipe_pair;
/// use ustack::stack::CoreConfig;
///
/// let (la, lb) = pipe_pair(1500);
/// let a = Stack::with_link(Box::new(la), CoreConfig::default())?; // 10.77.0.2
/// let b = Stack::with_link(
///     Box::new(lb),
///     CoreConfig { addr: "10.77.0.1".parse().unwrap(), addr6: "fd77::1".parse().unwrap(), seed: 1, ..CoreConfig::default() },
/// )?;
///
/// // Nobody listens on port 9: the SYN is answered with RST.
/// let err = TcpStream::connect(&b, "10.77.0.2:9").unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
///
/// let _l = TcpListener::bind(&a, "10.77.0.2:9")?;
/// let err = TcpListener::bind(&a, "0.0.0.0:9").unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::AddrInUse);
/// let err = TcpListener::bind(&a, "10.99.0.1:80").unwrap_err(); // not ours
/// assert_eq!(err.kind(), ErrorKind::AddrNotAvailable);
///
/// let s = TcpStream::connect(&b, ("10.77.0.2", 9))?;
/// s.set_nonblocking(true)?;
/// let err = (&s).read(&mut [0u8; 16]).unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::WouldBlock);
/// # use std::io::Read;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct TcpStream {
    sock: Arc<SocketRef>,
}

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpListener")
            .field("addr", &self.local_addr().ok())
            .finish()
    }
}

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpStream")
            .field("addr", &self.local_addr().ok())
            .field("peer", &self.peer_addr().ok())
            .finish()
    }
}

fn new_socket(stack: &Stack, v6: bool, reuse: bool) -> io::Result<Arc<SocketRef>> {
    let h = stack.runtime().with_core(|core, _| {
        let h = core.tcp_mut().socket(v6)?;
        if reuse {
            let opts = TcpOptionsSet {
                reuse_addr: true,
                ..core.tcp().options(h)?
            };
            core.tcp_mut().set_options(h, opts)?;
        }
        Ok::<_, io::Error>(h)
    })?;
    Ok(Arc::new(SocketRef::new(stack.clone(), h)))
}

// What a listener and a connection answer alike.

fn local_addr(sock: &SocketRef) -> io::Result<SocketAddr> {
    sock.with(|core, _| {
        core.tcp()
            .addrs(sock.handle)?
            .0
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))
    })
}

fn take_error(sock: &SocketRef) -> io::Result<Option<io::Error>> {
    sock.with(|core, _| core.tcp_mut().take_error(sock.handle))
}

fn readiness(sock: &SocketRef) -> io::Result<Readiness> {
    sock.with(|core, _| core.tcp_mut().readiness(sock.handle))
}

impl TcpListener {
    /// Binds and listens, with a backlog of 128 and SO_REUSEADDR set, as
    /// std does on Unix. `[::]` accepts IPv4 peers too (as IPv4-mapped
    /// addresses); port 0 picks an ephemeral port (32768 to 60999).
    ///
    /// Errors: `AddrInUse` when another socket holds the port (a listener,
    /// or a socket without SO_REUSEADDR), `AddrNotAvailable` for an address
    /// that is not the stack's, `InvalidInput` when `addr` resolves to
    /// nothing.
    pub fn bind(stack: &Stack, addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        TcpListener::bind_with_backlog(stack, addr, 128)
    }

    /// [`TcpListener::bind`] with another backlog (the async listener
    /// takes tokio's 1024).
    pub(crate) fn bind_with_backlog(
        stack: &Stack,
        addr: impl ToSocketAddrs,
        backlog: usize,
    ) -> io::Result<TcpListener> {
        let addr = first_addr(addr)?;
        let sock = new_socket(stack, addr.is_ipv6(), true)?;
        sock.with(|core, _| {
            core.tcp_mut().bind(sock.handle, addr)?;
            core.tcp_mut().listen(sock.handle, backlog)
        })?;
        Ok(TcpListener { sock })
    }

    /// Waits for a connection that completed its handshake and returns it
    /// with the peer's address (IPv4-mapped on an IPv6 listener). In
    /// non-blocking mode, `WouldBlock` when none is waiting.
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (h, peer) = self.sock.block(Direction::Other(None), |core, _| {
            core.tcp_mut().accept(self.sock.handle)
        })?;
        let stream = TcpStream {
            sock: Arc::new(SocketRef::new(self.sock.stack.clone(), h)),
        };
        Ok((stream, peer))
    }

    /// An endless iterator of accepted connections: `accept` in a loop,
    /// without the peer addresses.
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        local_addr(&self.sock)
    }

    socket_ref_methods! {
        /// Makes `accept` return `WouldBlock` instead of waiting.
        set_nonblocking;
    }

    /// Another handle to the same listener.
    pub fn try_clone(&self) -> io::Result<TcpListener> {
        Ok(TcpListener {
            sock: Arc::clone(&self.sock),
        })
    }

    /// A pending error (always `None` for a listener).
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        take_error(&self.sock)
    }

    /// Current readiness (readable: a connection is waiting).
    pub fn readiness(&self) -> io::Result<Readiness> {
        readiness(&self.sock)
    }

    socket_ref_methods! {
        /// An fd that polls readable when readiness may have changed; call
        /// [`TcpListener::clear_readiness`] before re-checking.
        readiness_fd;
        /// Clears the readiness fd.
        clear_readiness;
    }
}

/// Iterator over a listener's connections (see [`TcpListener::incoming`]).
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<TcpStream>;
    fn next(&mut self) -> Option<io::Result<TcpStream>> {
        Some(self.listener.accept().map(|(s, _)| s))
    }
}

impl TcpStream {
    /// Connects to the first address that accepts, as std does, blocking
    /// until the handshake completes or fails. The local address is the
    /// stack's, with an ephemeral port.
    ///
    /// Errors (the last address's, if all fail): `ConnectionRefused` (RST
    /// in answer, or ICMP port unreachable), `TimedOut` (the SYN was
    /// retransmitted 6 times without an answer, about two minutes),
    /// `HostUnreachable` (ICMP host or net unreachable),
    /// `AddrNotAvailable` (no free ephemeral port), `InvalidInput` when
    /// `addr` resolves to nothing.
    pub fn connect(stack: &Stack, addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        let mut last = None;
        for a in all_addrs(addr)? {
            match TcpStream::connect_inner(stack, a, None) {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::from_raw_os_error(libc::EINVAL)))
    }

    /// Connects with a time limit (`TimedOut` when it passes); otherwise as
    /// [`TcpStream::connect`]. A zero `timeout` is `InvalidInput`, as in std.
    pub fn connect_timeout(
        stack: &Stack,
        addr: &SocketAddr,
        timeout: Duration,
    ) -> io::Result<TcpStream> {
        if timeout.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot set a 0 duration timeout",
            ));
        }
        TcpStream::connect_inner(stack, *addr, Some(timeout)).map_err(|e| {
            if super::socket::is_would_block(&e) {
                io::Error::from_raw_os_error(libc::ETIMEDOUT)
            } else {
                e
            }
        })
    }

    fn connect_inner(
        stack: &Stack,
        addr: SocketAddr,
        timeout: Option<Duration>,
    ) -> io::Result<TcpStream> {
        let sock = new_socket(stack, addr.is_ipv6(), false)?;
        sock.with(|core, now| core.tcp_mut().connect(now, sock.handle, addr))?;
        sock.block(Direction::Other(timeout), |core, _| {
            connect_outcome(core, sock.handle)
        })?;
        Ok(TcpStream { sock })
    }

    /// The peer's address, as the socket's family shows it.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.sock.with(|core, _| {
            core.tcp()
                .addrs(self.sock.handle)?
                .1
                .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOTCONN))
        })
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        local_addr(&self.sock)
    }

    /// Shuts down reading, writing or both. `Write` sends FIN after the
    /// data already written, and later writes fail with `BrokenPipe`;
    /// `Read` makes reads return what is buffered, then 0. Threads blocked
    /// on the stream wake up and see it. `NotConnected` on a stream that
    /// has no connection.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        let how = match how {
            Shutdown::Read => stack::Shutdown::Read,
            Shutdown::Write => stack::Shutdown::Write,
            Shutdown::Both => stack::Shutdown::Both,
        };
        self.sock
            .with(|core, _| core.tcp_mut().shutdown(self.sock.handle, how))?;
        self.sock.wake_all();
        Ok(())
    }

    /// Another handle to the same connection (shares modes and timeouts,
    /// like a `dup`ed fd).
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        Ok(TcpStream {
            sock: Arc::clone(&self.sock),
        })
    }

    /// Reads without removing the data: a later `read` returns the same
    /// bytes. Blocks, and fails, like `read`.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock.block(Direction::Read, |core, _| {
            core.tcp_mut().recv(self.sock.handle, buf, true)
        })
    }

    fn options(&self) -> io::Result<TcpOptionsSet> {
        self.sock
            .with(|core, _| core.tcp().options(self.sock.handle))
    }

    fn set_options(&self, f: impl FnOnce(&mut TcpOptionsSet)) -> io::Result<()> {
        self.sock.with(|core, _| {
            let mut o = core.tcp().options(self.sock.handle)?;
            f(&mut o);
            core.tcp_mut().set_options(self.sock.handle, o)
        })
    }

    /// TCP_NODELAY: disables Nagle's algorithm.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.set_options(|o| o.nodelay = on)
    }

    /// Whether TCP_NODELAY is set.
    pub fn nodelay(&self) -> io::Result<bool> {
        Ok(self.options()?.nodelay)
    }

    /// TCP_CORK: while on, partial segments wait for more data (up to one
    /// RTO when nothing is in flight); turning it off sends them at once.
    pub fn set_cork(&self, on: bool) -> io::Result<()> {
        self.set_options(|o| o.cork = on)
    }

    /// Whether TCP_CORK is on.
    pub fn cork(&self) -> io::Result<bool> {
        Ok(self.options()?.cork)
    }

    /// TCP_USER_TIMEOUT (RFC 5482): fail with `TimedOut` once sent data
    /// has stayed unacknowledged this long; `None` (or zero) falls back to
    /// the retransmission count.
    pub fn set_user_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.set_options(|o| o.user_timeout = timeout.filter(|t| !t.is_zero()))
    }

    /// The TCP_USER_TIMEOUT in force, if any.
    pub fn user_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.options()?.user_timeout)
    }

    /// Keepalive probes (`None` turns them off).
    pub fn set_keepalive(&self, keepalive: Option<Keepalive>) -> io::Result<()> {
        self.set_options(|o| o.keepalive = keepalive)
    }

    /// The keepalive settings, `None` when probes are off.
    pub fn keepalive(&self) -> io::Result<Option<Keepalive>> {
        Ok(self.options()?.keepalive)
    }

    /// TCP_CONGESTION for connections this socket makes from now on
    /// (`NewReno` or `Cubic`, the default).
    pub fn set_congestion(&self, cc: crate::tcp::CongestionAlgorithm) -> io::Result<()> {
        self.set_options(|o| o.congestion = Some(cc))
    }

    /// SO_LINGER: `Some(0)` makes dropping the stream send RST and discard
    /// unsent data; other values keep the default graceful close (the
    /// stack delivers the data in the background).
    pub fn set_linger(&self, linger: Option<Duration>) -> io::Result<()> {
        self.sock.with(|core, _| {
            let mut o = core.tcp().options(self.sock.handle)?;
            o.linger_abort = linger == Some(Duration::ZERO);
            core.tcp_mut().set_options(self.sock.handle, o)
        })
    }

    socket_ref_methods! {
        /// SO_RCVTIMEO: how long a blocking read or peek waits before
        /// failing with `WouldBlock` (`None`: forever).
        /// `Some(Duration::ZERO)` is `InvalidInput`, as in std.
        set_read_timeout;
        /// SO_SNDTIMEO: how long a blocking write waits for buffer space
        /// before failing with `WouldBlock` (`None`: forever).
        /// `Some(Duration::ZERO)` is `InvalidInput`.
        set_write_timeout;
        /// The read timeout set, if any.
        read_timeout;
        /// The write timeout set, if any.
        write_timeout;
        /// Makes reads and writes return `WouldBlock` instead of waiting.
        set_nonblocking;
    }

    /// Takes the error that ended the connection, if any (SO_ERROR): e.g.
    /// `ConnectionReset` after a RST, `TimedOut` after retransmissions ran
    /// out. Taking it clears it.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        take_error(&self.sock)
    }

    /// State, MSS, congestion window and counters of the connection.
    pub fn info(&self) -> io::Result<TcpInfo> {
        self.sock.with(|core, _| core.tcp().info(self.sock.handle))
    }

    /// Current readiness.
    pub fn readiness(&self) -> io::Result<Readiness> {
        readiness(&self.sock)
    }

    socket_ref_methods! {
        /// An fd that polls readable when readiness may have changed; call
        /// [`TcpStream::clear_readiness`] before re-checking.
        readiness_fd;
        /// Clears the readiness fd.
        clear_readiness;
    }

    fn read_inner(&self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.sock.block(Direction::Read, |core, _| {
            core.tcp_mut().recv(self.sock.handle, buf, false)
        })
    }

    fn write_inner(&self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.sock.block(Direction::Write, |core, _| {
            core.tcp_mut().send(self.sock.handle, buf)
        })
    }
}

/// How a connect started on `h` ended: `Ok` once established, the
/// connection's error once it failed, `EAGAIN` while the handshake runs.
fn connect_outcome(core: &mut stack::Core, h: stack::SocketHandle) -> io::Result<()> {
    let r = core.tcp_mut().readiness(h)?;
    if r.error {
        return Err(core
            .tcp_mut()
            .take_error(h)?
            .unwrap_or_else(|| io::Error::from_raw_os_error(libc::ECONNREFUSED)));
    }
    if r.writable || r.readable {
        return Ok(());
    }
    Err(io::Error::from_raw_os_error(libc::EAGAIN))
}

/// What the async sockets of [`crate::tokio`] build on.
#[cfg(feature = "tokio")]
impl TcpListener {
    pub(crate) fn sock(&self) -> &SocketRef {
        &self.sock
    }

    /// A stream for a connection `TcpMut::accept` returned.
    pub(crate) fn accepted(&self, h: stack::SocketHandle) -> TcpStream {
        TcpStream {
            sock: Arc::new(SocketRef::new(self.sock.stack.clone(), h)),
        }
    }
}

#[cfg(feature = "tokio")]
impl TcpStream {
    pub(crate) fn sock(&self) -> &SocketRef {
        &self.sock
    }

    /// Sends the SYN and returns at once; [`TcpStream::connect_finished`]
    /// tells when the handshake is over.
    pub(crate) fn connect_start(stack: &Stack, addr: SocketAddr) -> io::Result<TcpStream> {
        let sock = new_socket(stack, addr.is_ipv6(), false)?;
        sock.with(|core, now| core.tcp_mut().connect(now, sock.handle, addr))?;
        Ok(TcpStream { sock })
    }

    /// `Ready` when the connect [`TcpStream::connect_start`] began has
    /// succeeded or failed.
    pub(crate) fn connect_finished(
        &self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        self.sock
            .poll_op(cx, |core, _| connect_outcome(core, self.sock.handle))
    }

    /// Whether two streams are handles to the same connection.
    pub(crate) fn same_socket(&self, other: &TcpStream) -> bool {
        Arc::ptr_eq(&self.sock, &other.sock)
    }
}

/// Reads received bytes, blocking until some arrive (or the read timeout
/// passes: `WouldBlock`). `Ok(0)` is end of stream: the peer's FIN, or
/// after `shutdown(Read)`. Errors: `ConnectionReset` after a RST,
/// `TimedOut` when retransmissions or keepalive probes ran out,
/// `WouldBlock` in non-blocking mode when nothing is buffered.
impl Read for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_inner(buf)
    }
}

impl Read for &TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_inner(buf)
    }
}

/// Queues bytes for sending, blocking while the send buffer is full (or
/// until the write timeout passes: `WouldBlock`); returns how many were
/// taken. Nothing is buffered outside the connection, so `flush` does
/// nothing. Errors: `BrokenPipe` after `shutdown(Write)` or once the
/// connection closed, `ConnectionReset` / `TimedOut` as for reads,
/// `WouldBlock` in non-blocking mode when the buffer is full.
impl Write for TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_inner(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for &TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_inner(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
