//! The user-facing API: blocking, `std::net`-shaped sockets over a
//! [`Stack`].
//!
//! Owns the handles the application holds ([`TcpListener`], [`TcpStream`],
//! [`UdpSocket`]), their blocking behaviour (timeouts, non-blocking mode)
//! and the mapping of the core's errno values to `io::Error`s, which keep
//! the raw OS error so `ErrorKind`s match what the kernel path gives.
//!
//! Locking: every call takes the runtime lock once for its operation on the
//! core, registers the calling thread's waker if it must wait, and releases
//! the lock before sleeping in `poll(2)`; see `runtime::waiters`.

mod socket;
mod tcp;
mod udp;

pub use tcp::{TcpListener, TcpStream};
pub use udp::UdpSocket;

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use crate::config::Config;
use crate::device::Link;
use crate::runtime::Runtime;
use crate::stack::{Core, CoreConfig, Counters};

pub use crate::stack::{Readiness, TcpInfo};

/// A running userspace stack: its core, its link and the hidden thread
/// driving them. Cheap to clone; the thread stops when the last clone and
/// the last socket are dropped (or at [`Stack::shutdown`]).
///
/// Two stacks joined by an in-memory link, one echoing what the other
/// sends over TCP (no TUN device or privileges needed):
///
/// ```
/// use std::io::{Read, Write};
/// use std::net::Shutdown;
/// use ustack::api::{Stack, TcpListener, TcpStream};
/// use ustack::device::pipe_pair;
/// use ustack::stack::CoreConfig;
///
/// let (link_a, link_b) = pipe_pair(1500);
/// let server = Stack::with_link(Box::new(link_a), CoreConfig::default())?; // 10.77.0.2
/// let client = Stack::with_link(
///     Box::new(link_b),
///     CoreConfig {
///         addr: "10.77.0.1".parse().unwrap(),
///         addr6: "fd77::1".parse().unwrap(),
///         seed: 1,
///         ..CoreConfig::default()
///     },
/// )?;
///
/// let listener = TcpListener::bind(&server, "[::]:7")?; // dual stack
/// let echo = std::thread::spawn(move || -> std::io::Result<()> {
///     let (mut s, peer) = listener.accept()?;
///     assert_eq!(peer.ip().to_string(), "::ffff:10.77.0.1"); // an IPv4-mapped peer
///     let mut buf = [0u8; 1024];
///     loop {
///         match s.read(&mut buf)? {
///             0 => return Ok(()),
///             n => s.write_all(&buf[..n])?,
///         }
///     }
/// });
///
/// let mut s = TcpStream::connect(&client, "10.77.0.2:7")?;
/// s.write_all(b"hello, ustack")?;
/// s.shutdown(Shutdown::Write)?; // FIN: the echo loop ends
/// let mut back = String::new();
/// s.read_to_string(&mut back)?;
/// assert_eq!(back, "hello, ustack");
/// echo.join().unwrap()?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct Stack {
    inner: Arc<Inner>,
}

struct Inner {
    runtime: Runtime,
}

/// How long dropping the last handle to a [`Stack`] waits for closed
/// connections to deliver their data and FIN.
pub const DEFAULT_LINGER: std::time::Duration = std::time::Duration::from_secs(5);

impl Drop for Inner {
    fn drop(&mut self) {
        self.runtime.linger(DEFAULT_LINGER);
    }
}

impl Stack {
    /// A stack on the TUN device the `USTACK_*` variables describe.
    pub fn from_env() -> io::Result<Stack> {
        let cfg = Config::from_env()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        Stack::from_config(&cfg)
    }

    /// A stack on the TUN device `cfg` describes.
    pub fn from_config(cfg: &Config) -> io::Result<Stack> {
        Ok(Stack {
            inner: Arc::new(Inner {
                runtime: Runtime::from_config(cfg)?,
            }),
        })
    }

    /// A stack on any link (an in-memory pipe for tests, say).
    ///
    /// `cfg.seed` seeds the ISN secret, fragment identifications and
    /// ephemeral ports, and [`CoreConfig::default`] leaves it 0: outside
    /// tests, set it from [`crate::rand::Rng::from_os`] (as
    /// [`Stack::from_config`] does) so they cannot be predicted.
    pub fn with_link(link: Box<dyn Link>, cfg: CoreConfig) -> io::Result<Stack> {
        Ok(Stack {
            inner: Arc::new(Inner {
                runtime: Runtime::start(Core::new(cfg), link)?,
            }),
        })
    }

    /// The stack's counters.
    pub fn counters(&self) -> Counters {
        self.inner.runtime.with_core(|c, _| c.counters())
    }

    /// TCP counters summed over every connection the stack has had.
    pub fn tcp_counters(&self) -> crate::tcp::Counters {
        self.inner.runtime.with_core(|c, _| c.tcp().counters())
    }

    /// The stack's IPv4 address: the configured one, or with
    /// `USTACK_ADDR=dhcp` the lease's (`None` while there is none).
    pub fn ipv4_addr(&self) -> Option<std::net::Ipv4Addr> {
        let a = self.inner.runtime.with_core(|c, _| c.config().addr);
        (!a.is_unspecified()).then_some(a)
    }

    /// The stack's IPv6 address: the configured one, or with
    /// `USTACK_ADDR6=auto` the one SLAAC formed (`None` while there is
    /// none).
    pub fn ipv6_addr(&self) -> Option<std::net::Ipv6Addr> {
        let a = self.inner.runtime.with_core(|c, _| c.config().addr6);
        (!a.is_unspecified()).then_some(a)
    }

    /// The DNS servers of the DHCP lease (empty without one).
    pub fn dns_servers(&self) -> Vec<std::net::Ipv4Addr> {
        self.inner.runtime.dns_servers()
    }

    /// How many sockets the stack holds: open ones, and closed TCP
    /// connections still finishing (FIN handshake, TIME-WAIT).
    pub fn sockets_in_use(&self) -> usize {
        self.inner.runtime.with_core(|c, _| c.sockets_in_use())
    }

    /// How many TCP connections are in each state (see
    /// [`crate::stack::Tcp::states`]).
    pub fn tcp_states(&self) -> Vec<(crate::tcp::State, usize)> {
        self.inner.runtime.with_core(|c, _| c.tcp().states())
    }

    /// Fragment reassembly's counters, the bytes it holds and the
    /// datagrams in progress (see [`Core::reassembly`]).
    pub fn reassembly(&self) -> (crate::ip::ReassemblyStats, usize, usize) {
        self.inner.runtime.with_core(|c, _| c.reassembly())
    }

    /// Stops the thread now, for every clone; sockets fail afterwards.
    /// Dropping the last clone and socket does the same, after giving
    /// closed connections up to [`DEFAULT_LINGER`] to deliver their data.
    pub fn shutdown(&self) {
        self.inner.runtime.stop();
    }

    pub(crate) fn runtime(&self) -> &Runtime {
        &self.inner.runtime
    }
}

/// Resolves `addr` to its first address, as std's `bind` does for one
/// address (`InvalidInput` when there is none).
pub(crate) fn first_addr(addr: impl ToSocketAddrs) -> io::Result<SocketAddr> {
    addr.to_socket_addrs()?.next().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not resolve to any addresses",
        )
    })
}

/// Every address `addr` resolves to (std's `connect` tries each in turn).
pub(crate) fn all_addrs(addr: impl ToSocketAddrs) -> io::Result<Vec<SocketAddr>> {
    let v: Vec<SocketAddr> = addr.to_socket_addrs()?.collect();
    if v.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not resolve to any addresses",
        ));
    }
    Ok(v)
}
