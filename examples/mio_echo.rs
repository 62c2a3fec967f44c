//! An event-loop echo server: ustack sockets driven by mio.
//!
//! Every ustack socket has a readiness fd (an eventfd the stack makes
//! readable whenever the socket's readiness may have changed). The loop
//! registers those fds with mio, and on each event clears the fd and then
//! does non-blocking work until the socket says `WouldBlock` again. This is
//! the same pattern tokio's `AsyncFd` needs.
//!
//! `mio_echo [PORT]` (default 7007) on the stack the `USTACK_*` variables
//! describe; run it inside a network namespace of your own.

use std::collections::HashMap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Ipv6Addr, SocketAddr};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use ustack::api::{Stack, TcpListener, TcpStream};

const LISTENER: Token = Token(0);

struct Conn {
    stream: TcpStream,
    /// Bytes read but not yet echoed back.
    pending: Vec<u8>,
}

/// Echoes what it can without blocking; `Ok(false)` when the peer is done.
fn serve(conn: &mut Conn) -> io::Result<bool> {
    let mut buf = [0u8; 16 * 1024];
    loop {
        while !conn.pending.is_empty() {
            match conn.stream.write(&conn.pending) {
                Ok(n) => {
                    conn.pending.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(true),
                Err(e) => return Err(e),
            }
        }
        match conn.stream.read(&mut buf) {
            Ok(0) => return Ok(false),
            Ok(n) => conn.pending.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(true),
            Err(e) => return Err(e),
        }
    }
}

fn run(port: u16) -> io::Result<()> {
    let stack = Stack::from_env()?;
    let listener = TcpListener::bind(&stack, SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)))?;
    listener.set_nonblocking(true)?;
    let mut poll = Poll::new()?;
    poll.registry().register(
        &mut SourceFd(&listener.readiness_fd()?),
        LISTENER,
        Interest::READABLE,
    )?;
    let mut conns: HashMap<Token, Conn> = HashMap::new();
    let mut next = 1;
    let mut events = Events::with_capacity(256);
    eprintln!("mio_echo: listening on port {port}");
    loop {
        poll.poll(&mut events, None)?;
        for ev in &events {
            if ev.token() == LISTENER {
                listener.clear_readiness();
                loop {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            stream.set_nonblocking(true)?;
                            let token = Token(next);
                            next += 1;
                            poll.registry().register(
                                &mut SourceFd(&stream.readiness_fd()?),
                                token,
                                Interest::READABLE,
                            )?;
                            let mut conn = Conn {
                                stream,
                                pending: Vec::new(),
                            };
                            // Data may have arrived before registration.
                            if serve(&mut conn)? {
                                conns.insert(token, conn);
                            }
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) => return Err(e),
                    }
                }
                continue;
            }
            let token = ev.token();
            let Some(conn) = conns.get_mut(&token) else {
                continue;
            };
            conn.stream.clear_readiness();
            let keep = serve(conn).unwrap_or(false);
            if !keep {
                let conn = conns.remove(&token).expect("present");
                poll.registry()
                    .deregister(&mut SourceFd(&conn.stream.readiness_fd()?))?;
            }
        }
    }
}

fn main() {
    let port = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(7007);
    if let Err(e) = run(port) {
        eprintln!("mio_echo: {e}");
        std::process::exit(1);
    }
}
