//! Async sockets for tokio (the `tokio` cargo feature): [`TcpListener`],
//! [`TcpStream`] and [`UdpSocket`] shaped like `tokio::net`'s, over the
//! same [`Stack`](crate::api::Stack) as the blocking API.
//!
//! Owns the async face of the sockets: the futures and `poll_*` methods,
//! tokio's `AsyncRead`/`AsyncWrite` for streams, and the split halves. The
//! sockets themselves, their errors and their readiness stay in
//! [`crate::api`]; each async socket wraps a blocking one (`from_std` /
//! `into_std` convert).
//!
//! How a task waits: an operation runs once on the core; if it would block,
//! the task's `Waker` is registered with the socket under the same lock
//! (see `runtime::waiters`) and the stack's thread wakes it at the
//! socket's next readiness change, when the task tries again. No fd, no
//! reactor registration and no syscall per wait: the wakers work on any
//! tokio runtime (current-thread or multi-thread) and need none of tokio's
//! `net` machinery, and any number of tasks may wait on one socket (the
//! two halves of a split stream in two tasks, say). The readiness fds stay
//! for event loops that want an fd (`AsyncFd`, mio, epoll).
//!
//! Cancellation: a future takes data only in the poll that completes it,
//! so dropping a pending `read`, `accept` or `recv_from` loses nothing and
//! the socket stays usable; a dropped future's registration is forgotten
//! at the next readiness change. Dropping a pending `connect` closes its
//! half-open socket.
//!
//! Closing: dropping a [`TcpStream`] (or both of its halves) closes the
//! connection gracefully: the stack delivers what was written, then FIN.
//! `poll_shutdown` (`AsyncWriteExt::shutdown`) sends FIN at once and keeps
//! reading open; dropping an [`OwnedWriteHalf`] does the same, as tokio's.
//!
//! An echo round trip between two stacks over an in-memory link:
//!
//! ```
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! use ustack::api::Stack;
//! use ustack::device::pipe_pair;
//! use ustack::stack::CoreConfig;
//! use ustack::tokio::{TcpListener, TcpStream};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! let (la, lb) = pipe_pair(1500);
//! let server = Stack::with_link(Box::new(la), CoreConfig::default())?; // 10.77.0.2
//! let client = Stack::with_link(
//!     Box::new(lb),
//!     CoreConfig { addr: "10.77.0.1".parse().unwrap(), addr6: "fd77::1".parse().unwrap(), seed: 1, ..CoreConfig::default() },
//! )?;
//!
//! let listener = TcpListener::bind(&server, "[::]:7").await?;
//! let echo = tokio::spawn(async move {
//!     let (mut s, _peer) = listener.accept().await?;
//!     let (mut r, mut w) = s.split();
//!     tokio::io::copy(&mut r, &mut w).await?; // until the client's FIN
//!     Ok::<_, std::io::Error>(())
//! });
//!
//! let mut s = TcpStream::connect(&client, "10.77.0.2:7").await?;
//! s.write_all(b"hello, tokio").await?;
//! s.shutdown().await?; // FIN
//! let mut back = String::new();
//! s.read_to_string(&mut back).await?;
//! assert_eq!(back, "hello, tokio");
//! echo.await.unwrap()?;
//! # Ok(())
//! # }
//! ```

mod split;
mod tcp;
mod udp;

pub use split::{OwnedReadHalf, OwnedWriteHalf, ReadHalf, ReuniteError, WriteHalf};
pub use tcp::{TcpListener, TcpStream};
pub use udp::UdpSocket;
