//! The daemon's answers to requests on one socket: bind, listen, connect,
//! names, shutdown, options, errors, identity. Each runs at once on the
//! core; none waits (a blocking connect is the shim waiting for the
//! program's end to become writable, see `relay`).
//!
//! Owns the errno semantics of those calls, as the in-process shim's
//! `ops.rs`. Must not touch: the pair (the relay's), other sockets.

use std::net::SocketAddr;

use super::relay::{Phase, Sock};
use super::{
    IDENT_FRESH, IDENT_LISTENING, IDENT_TCP, IDENT_V6, Reply, Request, encode_addr, sockopt,
};
use crate::Instant;
use crate::stack::present;
use crate::stack::{Core, Shutdown};

fn errno_of(e: &std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EIO)
}

fn done(r: std::io::Result<()>) -> Reply {
    match r {
        Ok(()) => Reply::default(),
        Err(e) => Reply::err(errno_of(&e)),
    }
}

fn addr_reply(a: SocketAddr) -> Reply {
    Reply {
        data: encode_addr(&a).to_vec(),
        ..Reply::default()
    }
}

/// An IPv4 address for an IPv6 socket becomes mapped; the other way is
/// `EAFNOSUPPORT`.
fn family(s: &Sock, a: SocketAddr) -> Result<SocketAddr, i32> {
    match (s.v6, a) {
        (true, SocketAddr::V4(_)) => Ok(present(true, a)),
        (false, SocketAddr::V6(_)) => Err(libc::EAFNOSUPPORT),
        _ => Ok(a),
    }
}

/// Answers `req` for socket `s`.
pub(super) fn on_socket(core: &mut Core, now: Instant, s: &mut Sock, req: Request) -> Reply {
    let h = s.handle;
    match req {
        Request::Bind(a) => {
            if s.v6 != a.is_ipv6() {
                return Reply::err(if s.v6 {
                    libc::EINVAL
                } else {
                    libc::EAFNOSUPPORT
                });
            }
            done(if s.tcp {
                core.tcp_mut().bind(h, a)
            } else {
                core.udp_bind(h, a)
            })
        }
        Request::Listen(backlog) => {
            if !s.tcp {
                return Reply::err(libc::EOPNOTSUPP);
            }
            if !matches!(s.phase, Phase::Fresh | Phase::Listener) {
                return Reply::err(libc::EINVAL);
            }
            let r = core.tcp_mut().listen(h, backlog.clamp(1, 4096) as usize);
            if r.is_ok() {
                s.phase = Phase::Listener;
            }
            done(r)
        }
        Request::Connect(None) if !s.tcp => done(core.udp_disconnect(h)),
        Request::Connect(None) => Reply::err(libc::EAFNOSUPPORT),
        Request::Connect(Some(a)) => {
            let a = match family(s, a) {
                Ok(a) => a,
                Err(e) => return Reply::err(e),
            };
            if !s.tcp {
                return done(core.udp_connect(h, a));
            }
            match s.phase {
                Phase::Fresh => {}
                Phase::Connecting => return Reply::err(libc::EALREADY),
                Phase::Listener => return Reply::err(libc::EINVAL),
                _ => return Reply::err(libc::EISCONN),
            }
            let r = core.tcp_mut().connect(now, h, a);
            if r.is_ok() {
                s.phase = Phase::Connecting;
            }
            // Success means "in progress": the program's end turns
            // writable when it is done either way.
            done(r)
        }
        Request::Name { peer: false } => {
            let local = if s.tcp {
                core.tcp().addrs(h).map(|(l, _)| l)
            } else {
                core.udp_addrs(h).map(|(l, _)| Some(l))
            };
            match local {
                Ok(a) => addr_reply(present(s.v6, a.unwrap_or_else(|| unspecified(s.v6)))),
                Err(e) => Reply::err(errno_of(&e)),
            }
        }
        Request::Name { peer: true } => {
            let peer = if s.tcp {
                if matches!(s.phase, Phase::Stream | Phase::Dead) {
                    core.tcp().addrs(h).map(|(_, p)| p)
                } else {
                    Ok(None)
                }
            } else {
                core.udp_addrs(h).map(|(_, p)| p)
            };
            match peer {
                Ok(Some(a)) => addr_reply(present(s.v6, a)),
                Ok(None) => Reply::err(libc::ENOTCONN),
                Err(e) => Reply::err(errno_of(&e)),
            }
        }
        Request::Shutdown(how) => shutdown(core, s, how),
        Request::GetOpt { level, name, max } => match sockopt::get(core, now, s, level, name) {
            Ok(mut v) => {
                v.truncate(max as usize);
                Reply {
                    data: v,
                    ..Reply::default()
                }
            }
            Err(e) => Reply::err(e),
        },
        Request::SetOpt { level, name, value } => {
            match sockopt::set(core, s, level, name, &value) {
                Ok(()) => Reply::default(),
                Err(e) => Reply::err(e),
            }
        }
        Request::TakeError => Reply {
            value: sockopt::take_error(core, s),
            ..Reply::default()
        },
        Request::Identify => {
            let mut bits = 0;
            if s.tcp {
                bits |= IDENT_TCP;
            }
            if s.v6 {
                bits |= IDENT_V6;
            }
            match s.phase {
                Phase::Listener => bits |= IDENT_LISTENING,
                Phase::Fresh => bits |= IDENT_FRESH,
                _ => {}
            }
            Reply {
                value: bits,
                ..Reply::default()
            }
        }
        Request::Socket { .. } | Request::Status => Reply::err(libc::EINVAL),
    }
}

fn unspecified(v6: bool) -> SocketAddr {
    if v6 {
        SocketAddr::from(([0u16; 8], 0))
    } else {
        SocketAddr::from(([0u8; 4], 0))
    }
}

/// shutdown(2). Writing ends when the shim shuts the program's end (the
/// relay sends the FIN once the data before it is in the core); here the
/// call is checked and SHUT_RD applied.
fn shutdown(core: &mut Core, s: &mut Sock, how: i32) -> Reply {
    if !matches!(how, libc::SHUT_RD | libc::SHUT_WR | libc::SHUT_RDWR) {
        return Reply::err(libc::EINVAL);
    }
    if !s.tcp {
        return match core.udp_addrs(s.handle) {
            Ok((_, Some(_))) => Reply::default(),
            Ok((_, None)) => Reply::err(libc::ENOTCONN),
            Err(e) => Reply::err(errno_of(&e)),
        };
    }
    match s.phase {
        Phase::Stream | Phase::Dead => {}
        Phase::Listener if how != libc::SHUT_WR => {
            // Linux: shutdown(SHUT_RD) on a listener stops it.
            return done(core.tcp_mut().shutdown(s.handle, Shutdown::Both));
        }
        _ => return Reply::err(libc::ENOTCONN),
    }
    if how != libc::SHUT_WR {
        return done(core.tcp_mut().shutdown(s.handle, Shutdown::Read));
    }
    Reply::default()
}
