//! The async `UdpSocket`.

use std::fmt;
use std::future::poll_fn;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::task::{Context, Poll, ready};

use ::tokio::io::ReadBuf;

use crate::api::{self, Readiness, Stack, first_addr};

/// A UDP socket for tokio.
///
/// Sends never wait (as [`api::UdpSocket::send_to`]: a full link queue is
/// `ENOBUFS` at once); receives wait for a datagram. A datagram longer than
/// the buffer is truncated, as the kernel does.
pub struct UdpSocket {
    inner: api::UdpSocket,
}

impl fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl UdpSocket {
    /// Binds to `addr` (port 0: an ephemeral port), as
    /// [`api::UdpSocket::bind`]. Does not wait; async for the shape of
    /// tokio's. Names resolve with `std::net::ToSocketAddrs`.
    pub async fn bind(stack: &Stack, addr: impl ToSocketAddrs) -> io::Result<UdpSocket> {
        let addr = first_addr(addr)?;
        UdpSocket::from_std(api::UdpSocket::bind(stack, addr)?)
    }

    /// Wraps a blocking socket (its non-blocking mode and timeouts do not
    /// matter).
    pub fn from_std(socket: api::UdpSocket) -> io::Result<UdpSocket> {
        Ok(UdpSocket { inner: socket })
    }

    /// The blocking socket underneath.
    pub fn into_std(self) -> io::Result<api::UdpSocket> {
        Ok(self.inner)
    }

    /// Sets the default destination and the only accepted source.
    pub async fn connect(&self, addr: impl ToSocketAddrs) -> io::Result<()> {
        self.inner.connect(first_addr(addr)?)
    }

    /// Sends one datagram to `addr`; returns the bytes sent. Errors as
    /// [`api::UdpSocket::send_to`].
    pub async fn send_to(&self, buf: &[u8], addr: impl ToSocketAddrs) -> io::Result<usize> {
        let addr = first_addr(addr)?;
        poll_fn(|cx| self.poll_send_to(cx, buf, addr)).await
    }

    /// Sends one datagram to the connected peer (`EDESTADDRREQ` if none).
    pub async fn send(&self, buf: &[u8]) -> io::Result<usize> {
        poll_fn(|cx| self.poll_send_inner(cx, buf, None)).await
    }

    /// Waits for a datagram: (bytes copied, sender). Cancel-safe: dropping
    /// the future leaves the datagram queued.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let mut rb = ReadBuf::new(buf);
        let from = poll_fn(|cx| self.poll_recv_from(cx, &mut rb)).await?;
        Ok((rb.filled().len(), from))
    }

    /// Waits for a datagram from the connected peer: bytes copied.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let mut rb = ReadBuf::new(buf);
        poll_fn(|cx| self.poll_recv(cx, &mut rb)).await?;
        Ok(rb.filled().len())
    }

    /// Polls to send one datagram to `addr`.
    pub fn poll_send_to(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
        addr: SocketAddr,
    ) -> Poll<io::Result<usize>> {
        self.poll_send_inner(cx, buf, Some(addr))
    }

    /// Polls to send one datagram to the connected peer.
    pub fn poll_send(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.poll_send_inner(cx, buf, None)
    }

    fn poll_send_inner(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
        to: Option<SocketAddr>,
    ) -> Poll<io::Result<usize>> {
        let sock = self.inner.sock();
        sock.poll_op(cx, |core, now| core.udp_send_to(now, sock.handle, buf, to))
    }

    /// Polls for a datagram, appending what fits of it to `buf`; returns
    /// the sender. `Pending` registers `cx`'s waker.
    pub fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<SocketAddr>> {
        let sock = self.inner.sock();
        let d = ready!(sock.poll_op(cx, |core, _| core.udp_recv(sock.handle, false)))?;
        let n = d.data.len().min(buf.remaining());
        buf.put_slice(&d.data[..n]);
        Poll::Ready(Ok(d.from))
    }

    /// Polls for a datagram from the connected peer.
    pub fn poll_recv(&self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        self.poll_recv_from(cx, buf).map_ok(|_| ())
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// The connected peer; `NotConnected` if not connected.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }

    /// Takes a pending error (an ICMP error on a connected socket).
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.inner.take_error()
    }

    /// Current readiness.
    pub fn readiness(&self) -> io::Result<Readiness> {
        self.inner.readiness()
    }
}
