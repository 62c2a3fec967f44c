//! The async `TcpListener` and `TcpStream`.

use std::fmt;
use std::future::poll_fn;
use std::io;
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use ::tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::split::{self, OwnedReadHalf, OwnedWriteHalf, ReadHalf, WriteHalf};
use crate::api::{self, Readiness, Stack, TcpInfo, all_addrs, first_addr};

/// A TCP socket listening for connections, for tokio.
pub struct TcpListener {
    inner: api::TcpListener,
}

/// A TCP connection for tokio: `AsyncRead` + `AsyncWrite`.
///
/// Dropping it closes the connection gracefully (data already written is
/// delivered, then FIN); `shutdown().await` sends FIN at once.
pub struct TcpStream {
    inner: api::TcpStream,
}

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl TcpListener {
    /// Binds and listens, as [`api::TcpListener::bind`] (SO_REUSEADDR,
    /// `[::]` dual stack, port 0 ephemeral) but with tokio's backlog, 1024
    /// (a burst of connects past the backlog overflows into SYN cookies,
    /// and, as on Linux, a cookie connection whose ACK finds the accept
    /// queue full is reset by its next segments). Does not wait;
    /// async for the shape of `tokio::net::TcpListener::bind`. Names are
    /// resolved with `std::net::ToSocketAddrs`, which blocks for a host
    /// name: pass addresses.
    pub async fn bind(stack: &Stack, addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        let addr = first_addr(addr)?;
        TcpListener::from_std(api::TcpListener::bind_with_backlog(stack, addr, 1024)?)
    }

    /// Wraps a blocking listener (its non-blocking mode does not matter).
    pub fn from_std(listener: api::TcpListener) -> io::Result<TcpListener> {
        Ok(TcpListener { inner: listener })
    }

    /// The blocking listener underneath.
    pub fn into_std(self) -> io::Result<api::TcpListener> {
        Ok(self.inner)
    }

    /// Waits for a connection that completed its handshake; returns it with
    /// the peer's address (IPv4-mapped on an IPv6 listener). Cancel-safe:
    /// dropping the future leaves the connection queued for the next call.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        poll_fn(|cx| self.poll_accept(cx)).await
    }

    /// Polls for a connection; `Pending` registers `cx`'s waker.
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
        let sock = self.inner.sock();
        let (h, peer) = ready!(sock.poll_op(cx, |core, _| core.tcp_mut().accept(sock.handle)))?;
        Poll::Ready(Ok((
            TcpStream {
                inner: self.inner.accepted(h),
            },
            peer,
        )))
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// Current readiness (readable: a connection is waiting).
    pub fn readiness(&self) -> io::Result<Readiness> {
        self.inner.readiness()
    }
}

impl TcpStream {
    /// Connects to the first address that accepts, as
    /// [`api::TcpStream::connect`] (same errors), waiting for the
    /// handshake without blocking the thread. Dropping the future mid-way
    /// abandons the attempt (its socket is closed).
    pub async fn connect(stack: &Stack, addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        let mut last = None;
        for a in all_addrs(addr)? {
            let stream = api::TcpStream::connect_start(stack, a)?;
            match poll_fn(|cx| stream.connect_finished(cx)).await {
                Ok(()) => return Ok(TcpStream { inner: stream }),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::from_raw_os_error(libc::EINVAL)))
    }

    /// Wraps a blocking stream (its non-blocking mode and timeouts do not
    /// matter: tasks wait as their executor lets them).
    pub fn from_std(stream: api::TcpStream) -> io::Result<TcpStream> {
        Ok(TcpStream { inner: stream })
    }

    /// The blocking stream underneath.
    pub fn into_std(self) -> io::Result<api::TcpStream> {
        Ok(self.inner)
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// Shuts down reading, writing or both at once, as
    /// [`api::TcpStream::shutdown`]; tasks waiting on the stream wake and
    /// see it. (`AsyncWriteExt::shutdown` is the usual way to send FIN.)
    pub fn shutdown_std(&self, how: Shutdown) -> io::Result<()> {
        self.inner.shutdown(how)
    }

    /// TCP_NODELAY: disables Nagle's algorithm.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.inner.set_nodelay(on)
    }

    /// Whether TCP_NODELAY is set.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.inner.nodelay()
    }

    /// Takes the error that ended the connection, if any (SO_ERROR).
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.inner.take_error()
    }

    /// State, MSS, congestion window and counters of the connection.
    pub fn info(&self) -> io::Result<TcpInfo> {
        self.inner.info()
    }

    /// Current readiness.
    pub fn readiness(&self) -> io::Result<Readiness> {
        self.inner.readiness()
    }

    /// Reads without removing the data: a later read returns the same
    /// bytes. Waits for data as a read does.
    pub async fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        let sock = self.inner.sock();
        poll_fn(|cx| {
            if buf.is_empty() {
                return Poll::Ready(Ok(0));
            }
            sock.poll_op(cx, |core, _| core.tcp_mut().recv(sock.handle, buf, true))
        })
        .await
    }

    /// Borrowed halves: reading and writing from two futures of one task
    /// (or `select!` branches) at once. `WriteHalf`'s `poll_shutdown`
    /// sends FIN; dropping the halves does nothing.
    pub fn split(&mut self) -> (ReadHalf<'_>, WriteHalf<'_>) {
        split::borrowed(&self.inner)
    }

    /// Owned halves that can move to two tasks. The connection closes
    /// when both are dropped; dropping the write half sends FIN first
    /// (unless [`OwnedWriteHalf::forget`]). [`OwnedReadHalf::reunite`]
    /// puts them back together.
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        split::owned(self.inner)
    }

    pub(super) fn from_inner(inner: api::TcpStream) -> TcpStream {
        TcpStream { inner }
    }
}

/// Reads into `buf`: `Pending` (waker registered) while nothing is
/// buffered; a read of no bytes from a non-empty `buf` is end of stream.
pub(super) fn poll_read(
    s: &api::TcpStream,
    cx: &mut Context<'_>,
    buf: &mut ReadBuf<'_>,
) -> Poll<io::Result<()>> {
    if buf.remaining() == 0 {
        return Poll::Ready(Ok(()));
    }
    let sock = s.sock();
    let dst = buf.initialize_unfilled();
    let n = ready!(sock.poll_op(cx, |core, _| core.tcp_mut().recv(sock.handle, dst, false)))?;
    buf.advance(n);
    Poll::Ready(Ok(()))
}

/// Queues what fits of `data`: `Pending` (waker registered) while the send
/// buffer is full.
pub(super) fn poll_write(
    s: &api::TcpStream,
    cx: &mut Context<'_>,
    data: &[u8],
) -> Poll<io::Result<usize>> {
    if data.is_empty() {
        return Poll::Ready(Ok(0));
    }
    let sock = s.sock();
    sock.poll_op(cx, |core, _| core.tcp_mut().send(sock.handle, data))
}

/// Sends FIN (after what was written); never waits.
pub(super) fn poll_shutdown(s: &api::TcpStream) -> Poll<io::Result<()>> {
    Poll::Ready(s.shutdown(Shutdown::Write))
}

/// Reads what the connection received: `Ok` with nothing added to a
/// non-empty buffer is end of stream (the peer's FIN). Errors as
/// [`api::TcpStream`]'s `Read`.
impl AsyncRead for TcpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        poll_read(&self.inner, cx, buf)
    }
}

/// Writes into the connection's send buffer (nothing is buffered outside
/// it, so `poll_flush` has nothing to do); `poll_shutdown` sends FIN.
impl AsyncWrite for TcpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        poll_write(&self.inner, cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        poll_shutdown(&self.inner)
    }
}
