//! TCP's operations on an in-process virtual socket ([`TCP`]): the calls
//! and the options only a stream socket has.
//!
//! Owns nothing: the connection's state is the core's, the per-open-file
//! state (blocking mode, timeouts, stored options) is [`VSock`]'s. What
//! every protocol shares (argument checks, family rules, the options of
//! SOL_SOCKET that mean the same everywhere) stays in `ops` and
//! `sockopt`.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ustack_core::stack::{Core, Shutdown, SocketHandle, TcpOptionsSet};

use super::{Proto, Received, reserve, sigpipe};
use crate::addr;
use crate::real;
use crate::sock::{Res, Stored, VSock, errno_of};
use crate::sockopt::{MAX_BUF, MIN_BUF, Value, int, keepalive, owned_int};
use crate::table::{self, Entry};

/// The TCP operations.
pub struct Tcp;

/// The one instance every TCP socket points at.
pub static TCP: Tcp = Tcp;

/// Linux's TCP_CC_INFO (linux/tcp.h).
const TCP_CC_INFO: i32 = 26;

fn opts(s: &VSock) -> Res<TcpOptionsSet> {
    s.with(|core, _| core.tcp().options(s.handle))
}

fn set_opts(s: &VSock, f: impl FnOnce(&mut TcpOptionsSet)) -> Res<()> {
    s.with(|core, _| {
        let mut o = core.tcp().options(s.handle)?;
        f(&mut o);
        core.tcp_mut().set_options(s.handle, o)
    })
}

/// TCP_INFO as Linux lays it out (see `ustack_core::ipc::linux_tcp_info`).
fn tcp_info(s: &VSock) -> Res<Vec<u8>> {
    s.with(|core, now| {
        let listening = core.tcp().is_listening(s.handle)?;
        Ok(ustack_core::ipc::linux_tcp_info(
            core.tcp().info(s.handle).ok().as_ref(),
            listening,
            now,
        ))
    })
}

fn would_block() -> io::Error {
    io::Error::from_raw_os_error(libc::EAGAIN)
}

impl Proto for Tcp {
    fn sock_type(&self) -> i32 {
        libc::SOCK_STREAM
    }

    fn protocol(&self) -> i32 {
        libc::IPPROTO_TCP
    }

    fn open(&self, core: &mut Core, v6: bool) -> io::Result<SocketHandle> {
        core.tcp_mut().socket(v6)
    }

    fn bind(&self, s: &VSock, a: SocketAddr) -> Res<()> {
        s.with(|core, _| core.tcp_mut().bind(s.handle, a))
    }

    fn listen(&self, s: &VSock, backlog: usize) -> Res<()> {
        s.with(|core, _| core.tcp_mut().listen(s.handle, backlog))
    }

    fn accept(&self, s: &VSock, flags: i32) -> Res<(i32, SocketAddr)> {
        if flags & !(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC) != 0 {
            return Err(libc::EINVAL);
        }
        let nonblocking = flags & libc::SOCK_NONBLOCK != 0;
        // Out of fds, the connection stays queued.
        let fd = reserve(flags & libc::SOCK_CLOEXEC != 0, nonblocking)?;
        let got = s.block(s.nonblocking(), s.timeout(false), |core, _| {
            if !core.tcp().is_listening(s.handle)? {
                return Err(io::Error::from_raw_os_error(libc::EINVAL));
            }
            core.tcp_mut().accept(s.handle)
        });
        let (h, peer) = match got {
            Ok(a) => a,
            Err(e) => {
                // SAFETY: the eventfd reserved above, ours alone.
                unsafe { real::close(fd) };
                return Err(e);
            }
        };
        let child = VSock::new(s.rt()?, h, &TCP, s.v6, nonblocking);
        drop(table::insert(fd, Entry::Sock(Arc::new(child))));
        Ok((fd, addr::present(s.v6, peer)))
    }

    fn connect(&self, s: &VSock, target: Option<SocketAddr>) -> Res<()> {
        let a = match target {
            None => return Err(libc::EAFNOSUPPORT),
            Some(a) => super::connect_family(s, a)?,
        };
        s.with(|core, now| core.tcp_mut().connect(now, s.handle, a))?;
        if s.nonblocking() {
            return Err(libc::EINPROGRESS);
        }
        let r = s.block(false, s.timeout(true), |core, _| {
            let r = core.tcp_mut().readiness(s.handle)?;
            if r.error || r.writable {
                Ok(())
            } else {
                Err(would_block())
            }
        });
        match r {
            // SO_SNDTIMEO ran out: the connect goes on, as Linux reports it.
            Err(libc::EAGAIN) => return Err(libc::EINPROGRESS),
            Err(e) => return Err(e),
            Ok(()) => {}
        }
        match s.with(|core, _| core.tcp_mut().take_error(s.handle))? {
            Some(e) => Err(errno_of(&e)),
            None => Ok(()),
        }
    }

    fn addrs(&self, s: &VSock) -> Res<(Option<SocketAddr>, Option<SocketAddr>)> {
        s.with(|core, _| {
            // The peer is known only once the handshake is past SYN-SENT.
            let synced = core
                .tcp()
                .info(s.handle)
                .is_ok_and(|i| i.state != ustack_core::tcp::State::SynSent);
            let (local, peer) = core.tcp().addrs(s.handle)?;
            Ok((local, peer.filter(|_| synced)))
        })
    }

    fn shutdown(&self, s: &VSock, how: Shutdown) -> Res<()> {
        s.with(|core, _| core.tcp_mut().shutdown(s.handle, how))?;
        s.wake_all();
        Ok(())
    }

    fn send(
        &self,
        s: &VSock,
        data: &[u8],
        flags: i32,
        _dst: Option<SocketAddr>,
        nonblocking: bool,
    ) -> Res<usize> {
        let timeout = s.timeout(true);
        let more = flags & libc::MSG_MORE != 0;
        let eor = flags & libc::MSG_EOR != 0;
        let mut sent = 0;
        loop {
            let r = s.block(nonblocking, timeout, |core, _| {
                core.tcp_mut().send_with(s.handle, &data[sent..], more, eor)
            });
            match r {
                Ok(n) => {
                    sent += n;
                    if sent >= data.len() || nonblocking {
                        return Ok(sent);
                    }
                }
                Err(e) if sent > 0 && (e == libc::EAGAIN || e == libc::EINTR) => return Ok(sent),
                Err(e) => return Err(sigpipe(e, flags)),
            }
        }
    }

    fn recv(&self, s: &VSock, buf: &mut [u8], flags: i32, nonblocking: bool) -> Res<Received> {
        let peek = flags & libc::MSG_PEEK != 0;
        let timeout = s.timeout(false);
        let waitall = flags & libc::MSG_WAITALL != 0 && !peek && !nonblocking;
        let mut got = 0;
        loop {
            let r = s.block(nonblocking, timeout, |core, _| {
                core.tcp_mut().recv(s.handle, &mut buf[got..], peek)
            });
            match r {
                Ok(0) => break,
                Ok(n) => {
                    got += n;
                    if !waitall || got >= buf.len() {
                        break;
                    }
                }
                Err(e) if got > 0 && (e == libc::EAGAIN || e == libc::EINTR) => break,
                Err(e) => return Err(e),
            }
        }
        Ok(Received {
            n: got,
            full: got,
            from: None,
        })
    }

    fn readable_bytes(&self, s: &VSock) -> Res<usize> {
        s.with(|core, _| {
            if core.tcp().is_listening(s.handle)? {
                return Ok(0);
            }
            Ok(core.tcp().info(s.handle).map_or(0, |i| i.recv_queue))
        })
    }

    fn unsent_bytes(&self, s: &VSock) -> Res<usize> {
        s.with(|core, _| Ok(core.tcp().info(s.handle).map_or(0, |i| i.send_queue)))
    }

    fn poll_bits(&self, core: &mut Core, s: &VSock) -> i16 {
        let Ok(r) = core.tcp_mut().readiness(s.handle) else {
            return libc::POLLNVAL;
        };
        let mut bits = 0;
        if r.readable || r.read_closed || r.hangup {
            bits |= libc::POLLIN | libc::POLLRDNORM;
        }
        if r.writable {
            bits |= libc::POLLOUT | libc::POLLWRNORM;
        }
        if r.read_closed {
            bits |= libc::POLLRDHUP;
        }
        if r.hangup {
            bits |= libc::POLLHUP;
        }
        if r.error {
            bits |= libc::POLLERR;
        }
        bits
    }

    fn take_error(&self, s: &VSock) -> Res<Option<io::Error>> {
        s.with(|core, _| core.tcp_mut().take_error(s.handle))
    }

    fn get_option(&self, s: &VSock, level: i32, name: i32) -> Option<Res<Value>> {
        Some(match (level, name) {
            (libc::SOL_SOCKET, libc::SO_ACCEPTCONN) => {
                s.with(|core, _| core.tcp().is_listening(s.handle)).map(int)
            }
            (libc::SOL_SOCKET, libc::SO_REUSEADDR) => opts(s).map(|o| int(o.reuse_addr)),
            (libc::SOL_SOCKET, libc::SO_KEEPALIVE) => opts(s).map(|o| int(o.keepalive.is_some())),
            (libc::SOL_SOCKET, libc::SO_RCVBUF | libc::SO_SNDBUF) => opts(s).map(|o| {
                // Linux reports a size the program set doubled, and the
                // untouched default (tcp_rmem[1] / tcp_wmem[1]) as it is.
                let rcv = name == libc::SO_RCVBUF;
                let set = if rcv { o.recv_buf } else { o.send_buf };
                let d = ustack_core::tcp::TcpConfig::default();
                let v = set.map_or(if rcv { d.recv_buf } else { d.send_buf }, |n| n * 2);
                Value::Int(i32::try_from(v).unwrap_or(i32::MAX))
            }),
            (libc::IPPROTO_IPV6, libc::IPV6_V6ONLY) if s.v6 => opts(s).map(|o| int(o.v6only)),
            (libc::IPPROTO_TCP, libc::TCP_NODELAY) => opts(s).map(|o| int(o.nodelay)),
            (libc::IPPROTO_TCP, libc::TCP_CORK) => opts(s).map(|o| int(o.cork)),
            (libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT) => opts(s).map(|o| {
                Value::Int(
                    o.user_timeout
                        .map_or(0, |t| i32::try_from(t.as_millis()).unwrap_or(i32::MAX)),
                )
            }),
            (libc::IPPROTO_TCP, libc::TCP_KEEPIDLE) => Ok(Value::Int(s.stored().keep_idle as i32)),
            (libc::IPPROTO_TCP, libc::TCP_KEEPINTVL) => {
                Ok(Value::Int(s.stored().keep_intvl as i32))
            }
            (libc::IPPROTO_TCP, libc::TCP_KEEPCNT) => Ok(Value::Int(s.stored().keep_cnt as i32)),
            (libc::IPPROTO_TCP, libc::TCP_MAXSEG) => s
                .with(|core, _| Ok(core.tcp().info(s.handle).ok().map(|i| i.mss)))
                .map(|mss| {
                    Value::Int(
                        mss.or(s.stored().maxseg)
                            .unwrap_or(536)
                            .try_into()
                            .unwrap_or(536),
                    )
                }),
            (libc::IPPROTO_TCP, libc::TCP_INFO) => tcp_info(s).map(Value::Bytes),
            (libc::IPPROTO_TCP, libc::TCP_INQ) => Ok(int(s.stored().inq)),
            // The socket's own mark; 0 when it set none (the sysctl's applies).
            (libc::IPPROTO_TCP, libc::TCP_NOTSENT_LOWAT) => {
                opts(s).map(|o| Value::Int(o.notsent_lowat.map_or(0, |l| l as i32)))
            }
            // The congestion control's own report: CUBIC and NewReno have
            // none, which Linux answers with zero bytes.
            (libc::IPPROTO_TCP, TCP_CC_INFO) => Ok(Value::Bytes(Vec::new())),
            _ => return None,
        })
    }

    fn set_option(&self, s: &VSock, level: i32, name: i32, val: &[u8]) -> Option<Res<()>> {
        if (level, name) == (libc::SOL_SOCKET, libc::SO_LINGER) {
            // Stored by `sockopt`; what the core needs is whether close
            // aborts.
            let (on, secs) = s.stored().linger;
            return Some(set_opts(s, |o| o.linger_abort = on && secs == 0));
        }
        let v = match owned_int(s, level, name, val, libc::SO_KEEPALIVE)? {
            Ok(v) => v,
            Err(e) => return Some(Err(e)),
        };
        Some(set_int(s, level, name, v))
    }

    fn kernel_options(
        &self,
        core: &mut Core,
        s: &VSock,
        st: &Stored,
        setint: &mut dyn FnMut(i32, i32, i32),
    ) {
        let Ok(o) = core.tcp().options(s.handle) else {
            return;
        };
        let dflt = Stored::default();
        setint(libc::SOL_SOCKET, libc::SO_REUSEADDR, o.reuse_addr.into());
        if s.v6 {
            setint(libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, o.v6only.into());
        }
        for (name, b) in [(libc::SO_RCVBUF, o.recv_buf), (libc::SO_SNDBUF, o.send_buf)] {
            if let Some(b) = b {
                setint(libc::SOL_SOCKET, name, i32::try_from(b).unwrap_or(i32::MAX));
            }
        }
        if let Some(m) = o.maxseg {
            setint(libc::IPPROTO_TCP, libc::TCP_MAXSEG, m.into());
        }
        setint(libc::IPPROTO_TCP, libc::TCP_NODELAY, o.nodelay.into());
        setint(libc::IPPROTO_TCP, libc::TCP_CORK, o.cork.into());
        if let Some(t) = o.user_timeout {
            let ms = i32::try_from(t.as_millis()).unwrap_or(i32::MAX);
            setint(libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT, ms);
        }
        for (name, v, d) in [
            (libc::TCP_KEEPIDLE, st.keep_idle, dflt.keep_idle),
            (libc::TCP_KEEPINTVL, st.keep_intvl, dflt.keep_intvl),
            (libc::TCP_KEEPCNT, st.keep_cnt, dflt.keep_cnt),
        ] {
            if v != d {
                setint(libc::IPPROTO_TCP, name, v as i32);
            }
        }
        setint(
            libc::SOL_SOCKET,
            libc::SO_KEEPALIVE,
            o.keepalive.is_some().into(),
        );
    }
}

fn set_int(s: &VSock, level: i32, name: i32, v: i32) -> Res<()> {
    let on = v != 0;
    match (level, name) {
        (libc::SOL_SOCKET, libc::SO_REUSEADDR) => set_opts(s, |o| o.reuse_addr = on),
        (libc::SOL_SOCKET, libc::SO_KEEPALIVE) => {
            let k = keepalive(&s.stored());
            set_opts(s, |o| o.keepalive = on.then_some(k))
        }
        (libc::SOL_SOCKET, libc::SO_RCVBUF | libc::SO_SNDBUF) => {
            let bytes = usize::try_from(v).unwrap_or(0).clamp(MIN_BUF, MAX_BUF);
            set_opts(s, |o| {
                if name == libc::SO_RCVBUF {
                    o.recv_buf = Some(bytes);
                } else {
                    o.send_buf = Some(bytes);
                }
            })
        }
        (libc::IPPROTO_IPV6, libc::IPV6_V6ONLY) => set_opts(s, |o| o.v6only = on),
        (libc::IPPROTO_TCP, libc::TCP_NODELAY) => {
            set_opts(s, |o| o.nodelay = on)?;
            if on {
                // Linux pushes what waits every time TCP_NODELAY is set,
                // even when it was set already (past a cork too).
                s.with(|core, _| core.tcp_mut().push(s.handle))?;
            }
            Ok(())
        }
        (libc::IPPROTO_TCP, libc::TCP_CORK) => set_opts(s, |o| o.cork = on),
        (libc::IPPROTO_TCP, libc::TCP_NOTSENT_LOWAT) => {
            // Linux keeps the int as a u32; 0 goes back to the sysctl's.
            set_opts(s, |o| o.notsent_lowat = (v != 0).then_some(v as u32))
        }
        (libc::IPPROTO_TCP, libc::TCP_INQ) => {
            // Linux: 0 or 1, anything else EINVAL.
            if !(0..=1).contains(&v) {
                return Err(libc::EINVAL);
            }
            s.stored().inq = on;
            Ok(())
        }
        (libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT) => {
            // Linux: milliseconds, negative is EINVAL, 0 restores the
            // retransmission count.
            let ms = u64::try_from(v).map_err(|_| libc::EINVAL)?;
            set_opts(s, |o| {
                o.user_timeout = (ms > 0).then(|| Duration::from_millis(ms));
            })
        }
        (libc::IPPROTO_TCP, libc::TCP_KEEPIDLE | libc::TCP_KEEPINTVL | libc::TCP_KEEPCNT) => {
            let limit = if name == libc::TCP_KEEPCNT {
                127
            } else {
                32767
            };
            if !(1..=limit).contains(&v) {
                return Err(libc::EINVAL);
            }
            let k = {
                let mut st = s.stored();
                match name {
                    libc::TCP_KEEPIDLE => st.keep_idle = v as u32,
                    libc::TCP_KEEPINTVL => st.keep_intvl = v as u32,
                    _ => st.keep_cnt = v as u32,
                }
                keepalive(&st)
            };
            set_opts(s, |o| {
                if o.keepalive.is_some() {
                    o.keepalive = Some(k);
                }
            })
        }
        (libc::IPPROTO_TCP, libc::TCP_MAXSEG) => {
            if !(88..=65535).contains(&v) {
                return Err(libc::EINVAL);
            }
            s.stored().maxseg = Some(v as u32);
            // Connections made from now on advertise and send at most it;
            // one already made keeps its MSS, as in Linux.
            set_opts(s, |o| o.maxseg = u16::try_from(v).ok())
        }
        _ => {
            log::debug!("setsockopt level {level} option {name} = {v}: accepted and ignored");
            Ok(())
        }
    }
}
