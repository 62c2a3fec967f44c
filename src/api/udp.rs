//! `UdpSocket`, shaped like `std::net`'s.

use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use super::socket::{Direction, SocketRef, socket_ref_methods};
use super::{Readiness, Stack, first_addr};
use crate::stack::UdpOptions;

/// A UDP socket.
///
/// A datagram longer than the buffer given to `recv_from` is truncated, as
/// the kernel does; [`UdpSocket::recv_from_full`] also says how long it was.
///
/// Over an in-memory link (see [`Stack`] for the setup), a datagram each
/// way, and a connected socket learning from ICMP that nobody listens:
///
/// ```
/// use std::io::ErrorKind;
/// use std::time::Duration;
/// use ustack::api::{Stack, UdpSocket};
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
/// let server = UdpSocket::bind(&a, "0.0.0.0:5000")?;
/// let client = UdpSocket::bind(&b, "0.0.0.0:0")?;
/// client.set_read_timeout(Some(Duration::from_secs(10)))?;
/// assert_eq!(client.send_to(b"question", "10.77.0.2:5000")?, 8);
///
/// let mut buf = [0u8; 4]; // too small: the datagram is truncated
/// let (n, full, from) = server.recv_from_full(&mut buf)?;
/// assert_eq!((n, full, &buf), (4, 8, b"ques"));
/// assert_eq!(from.ip().to_string(), "10.77.0.1");
/// assert_eq!(from.port(), client.local_addr()?.port()); // bound to 0.0.0.0:ephemeral
/// server.send_to(b"answer", from)?;
/// let mut buf = [0u8; 64];
/// assert_eq!(client.recv_from(&mut buf)?, (6, "10.77.0.2:5000".parse().unwrap()));
///
/// // Port 5001 is closed: the ICMP port unreachable fails the next call.
/// client.connect("10.77.0.2:5001")?;
/// client.send(b"anyone?")?;
/// let err = client.recv(&mut buf).unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct UdpSocket {
    sock: Arc<SocketRef>,
}

/// What the async socket of [`crate::tokio`] builds on.
#[cfg(feature = "tokio")]
impl UdpSocket {
    pub(crate) fn sock(&self) -> &SocketRef {
        &self.sock
    }
}

impl fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UdpSocket")
            .field("addr", &self.local_addr().ok())
            .finish()
    }
}

impl UdpSocket {
    /// Binds to `addr` (port 0: an ephemeral port). An IPv6 socket bound to
    /// `[::]` also receives IPv4 datagrams, from IPv4-mapped addresses.
    ///
    /// Errors: `AddrInUse` when another socket holds the port (unless both
    /// set SO_REUSEADDR), `AddrNotAvailable` for an address that is not the
    /// stack's, `InvalidInput` when `addr` resolves to nothing.
    pub fn bind(stack: &Stack, addr: impl ToSocketAddrs) -> io::Result<UdpSocket> {
        let addr = first_addr(addr)?;
        let h = stack.runtime().with_core(|core, _| {
            let h = core.udp_socket(addr.is_ipv6())?;
            if let Err(e) = core.udp_bind(h, addr) {
                let _ = core.close(h);
                return Err(e);
            }
            Ok(h)
        })?;
        Ok(UdpSocket {
            sock: Arc::new(SocketRef::new(stack.clone(), h)),
        })
    }

    /// Sends one datagram to `addr`; returns the bytes sent. Never waits:
    /// datagrams larger than the MTU are fragmented.
    ///
    /// Errors (`raw_os_error()` gives the errno): EMSGSIZE above 65,507
    /// payload bytes over IPv4 or 65,527 over IPv6; EINVAL (`InvalidInput`)
    /// for port 0; EAFNOSUPPORT for an address of the other family (IPv4
    /// peers of an IPv6 socket are written as IPv4-mapped addresses);
    /// ENOBUFS when the link's queue is full; and a pending ICMP error
    /// (`ConnectionRefused`...) once.
    pub fn send_to(&self, buf: &[u8], addr: impl ToSocketAddrs) -> io::Result<usize> {
        let addr = first_addr(addr)?;
        self.sock.block(Direction::Write, |core, now| {
            core.udp_send_to(now, self.sock.handle, buf, Some(addr))
        })
    }

    /// Sends one datagram to the connected peer; as `send_to`, with
    /// EDESTADDRREQ when the socket is not connected.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.sock.block(Direction::Write, |core, now| {
            core.udp_send_to(now, self.sock.handle, buf, None)
        })
    }

    /// Receives one datagram: (bytes copied, sender). The rest of a
    /// datagram longer than `buf` is lost. Blocks until one arrives, or
    /// fails with `WouldBlock` in non-blocking mode or when the read timeout
    /// passes; on a connected socket, `ConnectionRefused` once after an
    /// ICMP port unreachable from the peer.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.recv_from_full(buf).map(|(n, _, from)| (n, from))
    }

    /// Receives one datagram: (bytes copied, the datagram's full length,
    /// sender); copied < full length means it was truncated (MSG_TRUNC).
    pub fn recv_from_full(&self, buf: &mut [u8]) -> io::Result<(usize, usize, SocketAddr)> {
        self.recv_inner(buf, false)
    }

    fn recv_inner(&self, buf: &mut [u8], peek: bool) -> io::Result<(usize, usize, SocketAddr)> {
        let d = self.sock.block(Direction::Read, |core, _| {
            core.udp_recv(self.sock.handle, peek)
        })?;
        let n = d.data.len().min(buf.len());
        buf[..n].copy_from_slice(&d.data[..n]);
        Ok((n, d.data.len(), d.from))
    }

    /// Receives one datagram, as `recv_from` without the sender (on a
    /// connected socket, only the peer's datagrams arrive).
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.recv_from(buf).map(|(n, _)| n)
    }

    /// Looks at the next datagram without taking it.
    pub fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.recv_inner(buf, true).map(|(n, _, from)| (n, from))
    }

    /// Looks at the next datagram from the connected peer.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.peek_from(buf).map(|(n, _)| n)
    }

    /// Sets the default destination and the only accepted source. Errors
    /// as for `send_to`'s address checks.
    pub fn connect(&self, addr: impl ToSocketAddrs) -> io::Result<()> {
        let addr = first_addr(addr)?;
        self.sock
            .with(|core, _| core.udp_connect(self.sock.handle, addr))
    }

    /// The bound address (after `bind`, so never port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock
            .with(|core, _| Ok(core.udp_addrs(self.sock.handle)?.0))
    }

    /// The connected peer; `NotConnected` (ENOTCONN) if not connected.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.sock.with(|core, _| {
            core.udp_addrs(self.sock.handle)?
                .1
                .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOTCONN))
        })
    }

    fn set_options(&self, f: impl FnOnce(&mut UdpOptions)) -> io::Result<()> {
        self.sock.with(|core, _| {
            let mut o = core.udp_options(self.sock.handle)?;
            f(&mut o);
            core.udp_set_options(self.sock.handle, o)
        })
    }

    /// SO_BROADCAST (stored; the link is point-to-point).
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.set_options(|o| o.broadcast = on)
    }

    /// Whether SO_BROADCAST is set.
    pub fn broadcast(&self) -> io::Result<bool> {
        self.sock
            .with(|core, _| Ok(core.udp_options(self.sock.handle)?.broadcast))
    }

    socket_ref_methods! {
        /// SO_RCVTIMEO: how long a blocking receive or peek waits before
        /// failing with `WouldBlock` (`None`: forever).
        /// `Some(Duration::ZERO)` is `InvalidInput`, as in std.
        set_read_timeout;
        /// SO_SNDTIMEO, stored for symmetry with std: sends never wait (a
        /// full link queue fails at once with ENOBUFS), so it has no
        /// effect. `Some(Duration::ZERO)` is `InvalidInput`.
        set_write_timeout;
        /// The read timeout set, if any.
        read_timeout;
        /// The write timeout set, if any.
        write_timeout;
        /// Makes receives return `WouldBlock` instead of waiting (sends
        /// never wait). Shared by every clone of the socket.
        set_nonblocking;
    }

    /// Takes a pending error (an ICMP error on a connected socket).
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.sock
            .with(|core, _| core.udp_take_error(self.sock.handle))
    }

    /// Another handle to the same socket.
    pub fn try_clone(&self) -> io::Result<UdpSocket> {
        Ok(UdpSocket {
            sock: Arc::clone(&self.sock),
        })
    }

    /// Current readiness.
    pub fn readiness(&self) -> io::Result<Readiness> {
        self.sock.with(|core, _| {
            let (readable, error) = core.udp_readiness(self.sock.handle)?;
            Ok(Readiness {
                readable,
                writable: true,
                error,
                ..Readiness::default()
            })
        })
    }

    socket_ref_methods! {
        /// An fd that polls readable when readiness may have changed.
        readiness_fd;
        /// Clears the readiness fd.
        clear_readiness;
    }
}
