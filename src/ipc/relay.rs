//! One program socket as the daemon serves it: the daemon's end of the
//! pair and the core socket behind it, and the pump that moves bytes
//! between them.
//!
//! Owns the per-socket relay state (what is buffered between the pair and
//! the core, junk still to drain, end-of-stream marks). Must not touch:
//! other sockets, the control connections, epoll registration (the server
//! does those with what [`Sock::pump`] returns).
//!
//! Flow control is the pair's and the core's own: bytes are read from the
//! pair only while the core takes them, and taken from the core only while
//! the pair takes them, so a slow reader closes the TCP window and a full
//! send buffer blocks the program's write, as with a kernel socket. The
//! daemon's end is edge-triggered: a pump always runs until one side says
//! "not now" (EAGAIN from the pair, a full or empty core socket), and the
//! other side's change (an epoll edge, a core readiness change) runs it
//! again.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};

use super::diag::Diag;
use super::{DgramHeader, send_with_fds};
use crate::Instant;
use crate::stack::{Core, SocketHandle, present};

/// Largest chunk moved per system call.
pub(super) const CHUNK: usize = 256 * 1024;

/// Where a socket is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    /// TCP, neither connected nor listening; the program's end holds junk.
    Fresh,
    /// TCP connect in progress; the program's end holds junk.
    Connecting,
    /// A TCP connection.
    Stream,
    /// A TCP listener: accepted connections go down the pair as messages.
    Listener,
    /// A UDP socket: one datagram per SEQPACKET message.
    Udp,
    /// Failed or reset: the pair is shut down; waits for the program to
    /// close it.
    Dead,
}

pub(super) struct Sock {
    pub handle: SocketHandle,
    pub tcp: bool,
    pub v6: bool,
    pub end: OwnedFd,
    /// Inode of the program's end: how a passed fd is recognised.
    pub ino: u64,
    pub phase: Phase,
    /// Junk bytes at the head of the pair's stream still to discard.
    pub junk: usize,
    /// Read from the pair, not yet taken by the core (from `in_at`).
    inbuf: Vec<u8>,
    in_at: usize,
    /// Taken from the core, not yet taken by the pair.
    out: Vec<u8>,
    out_at: usize,
    /// Accepted connections waiting for room on a listener's pair.
    accepts: std::collections::VecDeque<(OwnedFd, Vec<u8>)>,
    /// The pair said end of stream (the program shut down writing).
    pub read_eof: bool,
    /// We passed the peer's FIN down the pair.
    sent_eof: bool,
    /// The program closed every fd of its end.
    pub hup: bool,
    /// Our end is closed (see `abandon`): only the table entry is left.
    pub abandoned: bool,
    /// Registered for EPOLLOUT (the server's to keep equal to
    /// [`Sock::wants_out`]).
    pub out_armed: bool,
    /// An error for the next SO_ERROR or failed call.
    pub error: Option<i32>,
    /// SO_REUSEPORT, SO_LINGER, keepalive parameters, UDP buffer sizes as
    /// set (see `sockopt`).
    pub stored: super::sockopt::Stored,
}

/// What a pump asks the server to do.
#[derive(Default)]
pub(super) struct Outcome {
    /// Connections a listener accepted: their daemon-side sockets.
    pub born: Vec<Sock>,
    /// The socket is finished: forget it.
    pub gone: bool,
}

fn errno_of(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EIO)
}

fn would_block(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EAGAIN)
}

fn read_fd(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: reads into our live buffer.
    let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

fn send_fd(fd: &OwnedFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: sends from our live buffer; MSG_NOSIGNAL: a closed end is EPIPE.
    let n = unsafe {
        libc::send(
            fd.as_raw_fd(),
            buf.as_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

fn shut(fd: &OwnedFd, how: i32) {
    // SAFETY: shutdown takes no pointers.
    unsafe { libc::shutdown(fd.as_raw_fd(), how) };
}

impl Sock {
    pub fn new(handle: SocketHandle, tcp: bool, v6: bool, end: OwnedFd, ino: u64) -> Sock {
        Sock {
            handle,
            tcp,
            v6,
            end,
            ino,
            phase: if tcp { Phase::Fresh } else { Phase::Udp },
            junk: 0,
            inbuf: Vec::new(),
            in_at: 0,
            out: Vec::new(),
            out_at: 0,
            accepts: Default::default(),
            read_eof: false,
            sent_eof: false,
            hup: false,
            abandoned: false,
            out_armed: false,
            error: None,
            stored: Default::default(),
        }
    }

    /// Whether bytes or accepted connections wait for room in the pair.
    pub fn wants_out(&self) -> bool {
        !self.out.is_empty() || !self.accepts.is_empty()
    }

    /// Moves what can move, both ways.
    /// `diag` tells a program's close from its shutdown(SHUT_WR) when the
    /// pair's end of stream is read before its hang-up is seen.
    pub fn pump(
        &mut self,
        core: &mut Core,
        now: Instant,
        scratch: &mut [u8],
        diag: Option<&mut Diag>,
    ) -> Outcome {
        let mut out = Outcome::default();
        match self.phase {
            Phase::Fresh => {}
            Phase::Connecting => self.connecting(core, scratch),
            Phase::Stream => {}
            Phase::Listener => self.listener(core, &mut out),
            Phase::Udp => self.udp(core, now, scratch),
            Phase::Dead => {}
        }
        if self.phase == Phase::Stream {
            self.core_to_pair(core, scratch);
            self.pair_to_core(core, scratch, diag);
        }
        if self.hup && self.finish(core) {
            out.gone = true;
        }
        if self.tcp && !out.gone {
            // Re-base change detection: the next change is reported.
            core.note_waiting(self.handle);
        }
        out
    }

    /// The program closed its end: once the pair's last bytes are in the
    /// core, the core socket closes (a FIN after the data, or a RST when
    /// received data was never read, as Linux's close). Returns whether
    /// the socket is finished.
    fn finish(&mut self, core: &mut Core) -> bool {
        if self.phase == Phase::Stream && !(self.read_eof && self.in_at >= self.inbuf.len()) {
            return false; // still draining into the core
        }
        // Unread means bytes, not the end of the stream.
        let mut one = [0u8; 1];
        let unread = self.phase == Phase::Stream
            && (self.out_at < self.out.len()
                || core
                    .tcp_mut()
                    .recv(self.handle, &mut one, true)
                    .is_ok_and(|n| n > 0));
        if unread {
            let _ = core.tcp_mut().abort(self.handle);
        }
        let _ = core.close(self.handle);
        true
    }

    fn drain_junk(&mut self, scratch: &mut [u8]) {
        while self.junk > 0 {
            let want = self.junk.min(scratch.len());
            match read_fd(&self.end, &mut scratch[..want]) {
                Ok(0) | Err(_) => break,
                Ok(n) => self.junk -= n,
            }
        }
    }

    fn connecting(&mut self, core: &mut Core, scratch: &mut [u8]) {
        let Ok(r) = core.tcp_mut().readiness(self.handle) else {
            return;
        };
        if !(r.writable || r.error || r.hangup) {
            return;
        }
        if let Ok(Some(e)) = core.tcp_mut().take_error(self.handle) {
            self.error = Some(errno_of(&e));
        }
        if self.error.is_some() || !r.writable {
            // Failed: POLLOUT|POLLERR|POLLHUP, then SO_ERROR, as Linux.
            self.error.get_or_insert(libc::ECONNREFUSED);
            self.abandon();
        } else {
            // Connected: the program's end becomes writable (POLLOUT).
            self.drain_junk(scratch);
            self.phase = Phase::Stream;
        }
    }

    /// Core -> pair.
    fn core_to_pair(&mut self, core: &mut Core, scratch: &mut [u8]) {
        loop {
            if self.out_at < self.out.len() {
                match send_fd(&self.end, &self.out[self.out_at..]) {
                    Ok(n) => self.out_at += n,
                    Err(e) if would_block(&e) => return,
                    Err(_) => {
                        // The program shut down reading: what arrives is
                        // dropped, as Linux does after SHUT_RD.
                        self.out.clear();
                        self.out_at = 0;
                    }
                }
                if self.out_at < self.out.len() {
                    continue;
                }
                self.out.clear();
                self.out_at = 0;
            }
            if self.sent_eof {
                return;
            }
            match core.tcp_mut().recv(self.handle, scratch, false) {
                Ok(0) => {
                    shut(&self.end, libc::SHUT_WR);
                    self.sent_eof = true;
                    return;
                }
                Ok(n) => {
                    let sent = match send_fd(&self.end, &scratch[..n]) {
                        Ok(m) => m,
                        Err(e) if would_block(&e) => 0,
                        Err(_) => n,
                    };
                    if sent < n {
                        self.out.extend_from_slice(&scratch[sent..n]);
                    }
                }
                Err(e) if would_block(&e) => return,
                Err(e) => {
                    // Reset, timed out: the program reads what arrived,
                    // then the error (or an end of stream the shim turns
                    // into it).
                    self.error = Some(errno_of(&e));
                    self.abandon();
                    return;
                }
            }
        }
    }

    /// The core refused the program's bytes for good (the connection was
    /// reset or timed out; after a FIN from the peer, `core_to_pair` no
    /// longer reads the core, so this is where a later RST shows): let go
    /// of the pair, so the program's blocked or next write fails as on
    /// Linux instead of the daemon reading and dropping its bytes forever.
    fn fail(&mut self, e: io::Error) {
        self.error = Some(errno_of(&e));
        self.abandon();
    }

    /// Pair -> core.
    fn pair_to_core(&mut self, core: &mut Core, scratch: &mut [u8], mut diag: Option<&mut Diag>) {
        if self.phase != Phase::Stream {
            return;
        }
        loop {
            if self.in_at < self.inbuf.len() {
                match core.tcp_mut().send(self.handle, &self.inbuf[self.in_at..]) {
                    Ok(n) => self.in_at += n,
                    Err(e) if would_block(&e) => return,
                    Err(e) => {
                        self.fail(e);
                        return;
                    }
                }
                if self.in_at < self.inbuf.len() {
                    return;
                }
                self.inbuf.clear();
                self.in_at = 0;
            }
            if self.read_eof {
                return;
            }
            match read_fd(&self.end, scratch) {
                Ok(0) => {
                    self.read_eof = true;
                    // The end of stream can be read before the hang-up
                    // event is seen (a pump run by a request in the same
                    // turn): only the kernel's table tells a close, which
                    // `finish` handles (a RST under SO_LINGER 0 must not
                    // follow a FIN), from a shutdown(SHUT_WR).
                    if !self.hup
                        && diag
                            .as_deref_mut()
                            .is_some_and(|d| d.alive(self.ino).is_ok_and(|a| !a))
                    {
                        self.hup = true;
                    }
                    if !self.hup {
                        // shutdown(SHUT_WR) in the program: FIN after the
                        // data.
                        let _ = core
                            .tcp_mut()
                            .shutdown(self.handle, crate::stack::Shutdown::Write);
                    }
                    return;
                }
                Ok(n) => {
                    // Straight into the core; only what it cannot take yet
                    // is kept.
                    let took = match core.tcp_mut().send(self.handle, &scratch[..n]) {
                        Ok(t) => t,
                        Err(e) if would_block(&e) => 0,
                        Err(e) => {
                            self.fail(e);
                            return;
                        }
                    };
                    if took < n {
                        self.inbuf.extend_from_slice(&scratch[took..n]);
                        return;
                    }
                }
                Err(e) if would_block(&e) => return,
                Err(_) => {
                    self.read_eof = true;
                    return;
                }
            }
        }
    }

    fn listener(&mut self, core: &mut Core, out: &mut Outcome) {
        loop {
            if let Some((fd, msg)) = self.accepts.front() {
                match send_with_fds(
                    self.end.as_raw_fd(),
                    msg,
                    &[fd.as_raw_fd()],
                    libc::MSG_DONTWAIT,
                ) {
                    Ok(_) => {
                        self.accepts.pop_front();
                        continue;
                    }
                    Err(e) if would_block(&e) => return,
                    Err(e) => {
                        log::debug!("listener pair: {e}");
                        self.accepts.clear();
                        return;
                    }
                }
            }
            match core.tcp_mut().accept(self.handle) {
                Ok((h, peer)) => match accepted(h, self.v6, peer) {
                    Ok((sock, program_end, msg)) => {
                        out.born.push(sock);
                        self.accepts.push_back((program_end, msg));
                    }
                    Err(e) => {
                        if super::out_of_fds(&e) {
                            super::fd_shortage("an accepted connection");
                        } else {
                            log::warn!("cannot hand over an accepted connection: {e}");
                        }
                        let _ = core.tcp_mut().abort(h);
                        let _ = core.close(h);
                    }
                },
                Err(_) => return,
            }
        }
    }

    fn udp(&mut self, core: &mut Core, now: Instant, scratch: &mut [u8]) {
        // Core -> pair, one datagram per message.
        loop {
            if !self.out.is_empty() {
                match send_fd(&self.end, &self.out) {
                    Ok(_) => self.out.clear(),
                    Err(e) if would_block(&e) => break,
                    Err(_) => self.out.clear(),
                }
            }
            match core.udp_recv(self.handle, false) {
                Ok(d) => {
                    let len = u32::try_from(d.data.len()).unwrap_or(u32::MAX);
                    let hdr = DgramHeader {
                        addr: Some(present(self.v6, d.from)),
                        len,
                    };
                    self.out.extend_from_slice(&hdr.encode());
                    self.out.extend_from_slice(&d.data);
                }
                Err(e) if would_block(&e) => break,
                Err(e) => self.error = Some(errno_of(&e)),
            }
        }
        // Pair -> core.
        loop {
            let n = match read_fd(&self.end, scratch) {
                Ok(0) => {
                    self.hup = true;
                    return;
                }
                Ok(n) => n,
                Err(_) => return,
            };
            let Ok(hdr) = DgramHeader::decode(&scratch[..n]) else {
                continue;
            };
            let payload = &scratch[super::DGRAM_HDR..n];
            if let Err(e) = core.udp_send_to(now, self.handle, payload, hdr.addr) {
                // The program's sendto has returned already: the error
                // waits for SO_ERROR (see the shim README).
                self.error = Some(errno_of(&e));
            }
        }
    }

    /// Lets go of the pair after a failure: our end closes while bytes the
    /// program wrote (or the junk) are unread, which makes the kernel set
    /// ECONNRESET on the program's end (POLLERR, POLLHUP; writes EPIPE).
    /// The fd number stays valid (now /dev/null) until the socket is
    /// forgotten; the server reaps it once the program's end is gone.
    fn abandon(&mut self) {
        log::debug!(
            "relay: letting go of the pair of inode {} ({:?})",
            self.ino,
            self.error
        );
        self.phase = Phase::Dead;
        self.abandoned = true;
        // SAFETY: open takes a C string; dup2 swaps our own fd's file.
        unsafe {
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
            if null >= 0 {
                libc::dup2(null, self.end.as_raw_fd());
                libc::close(null);
            } else {
                libc::shutdown(self.end.as_raw_fd(), libc::SHUT_RDWR);
            }
        }
    }

    /// Writes junk into a fresh TCP socket's pair from the program's end
    /// (`program_end`, still ours), so that end stays unwritable until a
    /// connection is established.
    pub fn fill_junk(&mut self, program_end: &OwnedFd) -> io::Result<()> {
        let mut sndbuf: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: getsockopt writes an int into our live variable.
        unsafe {
            libc::getsockopt(
                program_end.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_SNDBUF,
                (&mut sndbuf as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        let want = (sndbuf.max(4096) as usize) / 4 + 64;
        let junk = vec![0u8; want];
        let n = send_fd(program_end, &junk)?;
        self.junk = n;
        Ok(())
    }
}

/// The daemon side of an accepted connection, the program's end to send,
/// and the message that carries it (the peer's address).
fn accepted(h: SocketHandle, v6: bool, peer: SocketAddr) -> io::Result<(Sock, OwnedFd, Vec<u8>)> {
    let (mine, theirs) = super::pair(libc::SOCK_STREAM)?;
    super::tune_pair(&mine, &theirs);
    let ino = super::inode(theirs.as_raw_fd())?;
    let mut s = Sock::new(h, true, v6, mine, ino);
    s.phase = Phase::Stream;
    let msg = DgramHeader {
        addr: Some(present(v6, peer)),
        len: 0,
    }
    .encode()
    .to_vec();
    Ok((s, theirs, msg))
}
