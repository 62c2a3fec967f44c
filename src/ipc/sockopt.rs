//! Socket options of the daemon's sockets: the ones the core keeps
//! (`TcpOptionsSet`, `UdpOptions`) and the few stored beside them.
//!
//! Owns the option numbers and value formats the daemon answers. Options
//! the pair itself implements (SO_RCVTIMEO, SO_SNDTIMEO, O_NONBLOCK) never
//! reach here: the shim sets them on the program's end. Must not touch:
//! the relay state.

use super::relay::{Phase, Sock};
use crate::stack::Core;
use crate::tcp::Keepalive;

/// Options the core does not keep.
#[derive(Clone, Copy, Debug)]
pub(super) struct Stored {
    pub reuse_port: bool,
    pub linger: (bool, i32),
    pub keep_idle: u32,
    pub keep_intvl: u32,
    pub keep_cnt: u32,
    pub udp_bufs: (usize, usize),
}

impl Default for Stored {
    fn default() -> Self {
        Stored {
            reuse_port: false,
            linger: (false, 0),
            keep_idle: 7200,
            keep_intvl: 75,
            keep_cnt: 9,
            udp_bufs: (212_992, 212_992),
        }
    }
}

const MIN_BUF: usize = 1152;
const MAX_BUF: usize = 16 << 20;

fn keepalive(st: &Stored) -> Keepalive {
    Keepalive {
        idle: std::time::Duration::from_secs(st.keep_idle.into()),
        interval: std::time::Duration::from_secs(st.keep_intvl.into()),
        count: st.keep_cnt,
    }
}

fn int(v: i32) -> Result<Vec<u8>, i32> {
    Ok(v.to_ne_bytes().to_vec())
}

fn errno_of(e: &std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EIO)
}

/// getsockopt: the value's bytes (the caller cuts them to its buffer).
pub(super) fn get(
    core: &mut Core,
    now: crate::Instant,
    s: &mut Sock,
    level: i32,
    name: i32,
) -> Result<Vec<u8>, i32> {
    let h = s.handle;
    let tcp_opts = |core: &mut Core| core.tcp().options(h).map_err(|e| errno_of(&e));
    match (level, name) {
        (libc::SOL_SOCKET, libc::SO_TYPE) => int(if s.tcp {
            libc::SOCK_STREAM
        } else {
            libc::SOCK_DGRAM
        }),
        (libc::SOL_SOCKET, libc::SO_DOMAIN) => {
            int(if s.v6 { libc::AF_INET6 } else { libc::AF_INET })
        }
        (libc::SOL_SOCKET, libc::SO_PROTOCOL) => int(if s.tcp {
            libc::IPPROTO_TCP
        } else {
            libc::IPPROTO_UDP
        }),
        (libc::SOL_SOCKET, libc::SO_ERROR) => int(take_error(core, s)),
        (libc::SOL_SOCKET, libc::SO_ACCEPTCONN) => int((s.phase == Phase::Listener).into()),
        // Not bound to a device: Linux answers an empty name (sshd asks).
        (libc::SOL_SOCKET, libc::SO_BINDTODEVICE) => Ok(Vec::new()),
        (libc::SOL_SOCKET, libc::SO_REUSEADDR) if s.tcp => int(tcp_opts(core)?.reuse_addr.into()),
        (libc::SOL_SOCKET, libc::SO_REUSEADDR) => int(udp_opts(core, s)?.reuse_addr.into()),
        (libc::SOL_SOCKET, libc::SO_REUSEPORT) => int(s.stored.reuse_port.into()),
        (libc::SOL_SOCKET, libc::SO_BROADCAST) if !s.tcp => {
            int(udp_opts(core, s)?.broadcast.into())
        }
        (libc::SOL_SOCKET, libc::SO_KEEPALIVE) => {
            int((s.tcp && tcp_opts(core)?.keepalive.is_some()).into())
        }
        (libc::SOL_SOCKET, libc::SO_RCVBUF | libc::SO_SNDBUF) => {
            let rcv = name == libc::SO_RCVBUF;
            let v = if s.tcp {
                let o = tcp_opts(core)?;
                let d = crate::tcp::TcpConfig::default();
                let set = if rcv { o.recv_buf } else { o.send_buf };
                set.map_or(if rcv { d.recv_buf } else { d.send_buf }, |n| n * 2)
            } else {
                let b = s.stored.udp_bufs;
                (if rcv { b.0 } else { b.1 }) * 2
            };
            int(i32::try_from(v).unwrap_or(i32::MAX))
        }
        (libc::SOL_SOCKET, libc::SO_LINGER) => {
            let (on, secs) = s.stored.linger;
            let mut b = i32::from(on).to_ne_bytes().to_vec();
            b.extend_from_slice(&secs.to_ne_bytes());
            Ok(b)
        }
        (libc::IPPROTO_TCP, _) if !s.tcp => Err(libc::EOPNOTSUPP),
        (libc::IPPROTO_TCP, libc::TCP_NODELAY) => int(tcp_opts(core)?.nodelay.into()),
        (libc::IPPROTO_TCP, libc::TCP_CORK) => int(tcp_opts(core)?.cork.into()),
        (libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT) => int(tcp_opts(core)?
            .user_timeout
            .map_or(0, |t| i32::try_from(t.as_millis()).unwrap_or(i32::MAX))),
        (libc::IPPROTO_TCP, libc::TCP_KEEPIDLE) => int(s.stored.keep_idle as i32),
        (libc::IPPROTO_TCP, libc::TCP_KEEPINTVL) => int(s.stored.keep_intvl as i32),
        (libc::IPPROTO_TCP, libc::TCP_KEEPCNT) => int(s.stored.keep_cnt as i32),
        (libc::IPPROTO_TCP, libc::TCP_MAXSEG) => {
            let mss = core.tcp().info(h).ok().map(|i| i.mss);
            let set = tcp_opts(core)?.maxseg.map(u32::from);
            int(mss.or(set).unwrap_or(536) as i32)
        }
        (libc::IPPROTO_TCP, libc::TCP_INFO) => {
            let listening = s.phase == Phase::Listener;
            Ok(super::linux_tcp_info(
                core.tcp().info(h).ok().as_ref(),
                listening,
                now,
            ))
        }
        (libc::IPPROTO_IPV6, libc::IPV6_V6ONLY) if s.v6 && s.tcp => {
            int(tcp_opts(core)?.v6only.into())
        }
        (libc::IPPROTO_IPV6, libc::IPV6_V6ONLY) if s.v6 => int(udp_opts(core, s)?.v6only.into()),
        _ => Err(libc::ENOPROTOOPT),
    }
}

fn udp_opts(core: &mut Core, s: &Sock) -> Result<crate::stack::UdpOptions, i32> {
    core.udp_options(s.handle).map_err(|e| errno_of(&e))
}

/// SO_ERROR: the relay's recorded error first, then the core's.
pub(super) fn take_error(core: &mut Core, s: &mut Sock) -> i32 {
    if let Some(e) = s.error.take() {
        return e;
    }
    let e = if s.tcp {
        core.tcp_mut().take_error(s.handle)
    } else {
        core.udp_take_error(s.handle)
    };
    match e {
        Ok(Some(e)) => errno_of(&e),
        _ => 0,
    }
}

/// setsockopt. Unknown options are accepted (and logged), as the
/// in-process shim does.
pub(super) fn set(
    core: &mut Core,
    s: &mut Sock,
    level: i32,
    name: i32,
    val: &[u8],
) -> Result<(), i32> {
    let h = s.handle;
    if (level, name) == (libc::SOL_SOCKET, libc::SO_LINGER) {
        if val.len() < 8 {
            return Err(libc::EINVAL);
        }
        let on = int_arg(val)? != 0;
        let secs = int_arg(&val[4..])?;
        s.stored.linger = (on, secs);
        if s.tcp {
            set_tcp(core, h, |o| o.linger_abort = on && secs == 0)?;
        }
        return Ok(());
    }
    let v = int_arg(val)?;
    let on = v != 0;
    match (level, name) {
        (libc::SOL_SOCKET, libc::SO_REUSEADDR) if s.tcp => set_tcp(core, h, |o| o.reuse_addr = on),
        (libc::SOL_SOCKET, libc::SO_REUSEADDR) => set_udp(core, h, |o| o.reuse_addr = on),
        (libc::SOL_SOCKET, libc::SO_REUSEPORT) => {
            s.stored.reuse_port = on;
            Ok(())
        }
        (libc::SOL_SOCKET, libc::SO_BROADCAST) if !s.tcp => set_udp(core, h, |o| o.broadcast = on),
        (libc::SOL_SOCKET, libc::SO_KEEPALIVE) if s.tcp => {
            let k = keepalive(&s.stored);
            set_tcp(core, h, |o| o.keepalive = on.then_some(k))
        }
        (libc::SOL_SOCKET, libc::SO_RCVBUF | libc::SO_SNDBUF) => {
            let rcv = name == libc::SO_RCVBUF;
            let bytes = usize::try_from(v).unwrap_or(0).clamp(MIN_BUF, MAX_BUF);
            if s.tcp {
                set_tcp(core, h, |o| {
                    if rcv {
                        o.recv_buf = Some(bytes);
                    } else {
                        o.send_buf = Some(bytes);
                    }
                })
            } else {
                if rcv {
                    s.stored.udp_bufs.0 = bytes;
                } else {
                    s.stored.udp_bufs.1 = bytes;
                }
                Ok(())
            }
        }
        (libc::IPPROTO_TCP, _) if !s.tcp => Err(libc::EOPNOTSUPP),
        (libc::IPPROTO_TCP, libc::TCP_NODELAY) => set_tcp(core, h, |o| o.nodelay = on),
        (libc::IPPROTO_TCP, libc::TCP_CORK) => set_tcp(core, h, |o| o.cork = on),
        (libc::IPPROTO_TCP, libc::TCP_KEEPIDLE | libc::TCP_KEEPINTVL | libc::TCP_KEEPCNT) => {
            if v < 1 {
                return Err(libc::EINVAL);
            }
            let v = v as u32;
            match name {
                libc::TCP_KEEPIDLE => s.stored.keep_idle = v,
                libc::TCP_KEEPINTVL => s.stored.keep_intvl = v,
                _ => s.stored.keep_cnt = v,
            }
            let k = keepalive(&s.stored);
            set_tcp(core, h, |o| {
                if o.keepalive.is_some() {
                    o.keepalive = Some(k);
                }
            })
        }
        (libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT) => {
            // Milliseconds, as Linux: negative is EINVAL, 0 is off.
            let ms = u64::try_from(v).map_err(|_| libc::EINVAL)?;
            let t = (ms > 0).then(|| std::time::Duration::from_millis(ms));
            set_tcp(core, h, |o| o.user_timeout = t)
        }
        (libc::IPPROTO_TCP, libc::TCP_MAXSEG) => {
            let mss = u16::try_from(v)
                .ok()
                .filter(|m| *m >= 88)
                .ok_or(libc::EINVAL)?;
            set_tcp(core, h, |o| o.maxseg = Some(mss))
        }
        (libc::IPPROTO_IPV6, libc::IPV6_V6ONLY) if s.v6 && s.tcp => {
            set_tcp(core, h, |o| o.v6only = on)
        }
        (libc::IPPROTO_IPV6, libc::IPV6_V6ONLY) if s.v6 => set_udp(core, h, |o| o.v6only = on),
        _ => {
            log::debug!("setsockopt level {level} option {name}: accepted, no effect");
            Ok(())
        }
    }
}

fn int_arg(b: &[u8]) -> Result<i32, i32> {
    match b.len() {
        0 => Err(libc::EINVAL),
        1..=3 => Ok(i32::from(b[0])),
        _ => Ok(i32::from_ne_bytes([b[0], b[1], b[2], b[3]])),
    }
}

fn set_tcp(
    core: &mut Core,
    h: crate::stack::SocketHandle,
    f: impl FnOnce(&mut crate::stack::TcpOptionsSet),
) -> Result<(), i32> {
    let mut o = core.tcp().options(h).map_err(|e| errno_of(&e))?;
    f(&mut o);
    core.tcp_mut().set_options(h, o).map_err(|e| errno_of(&e))
}

fn set_udp(
    core: &mut Core,
    h: crate::stack::SocketHandle,
    f: impl FnOnce(&mut crate::stack::UdpOptions),
) -> Result<(), i32> {
    let mut o = core.udp_options(h).map_err(|e| errno_of(&e))?;
    f(&mut o);
    core.udp_set_options(h, o).map_err(|e| errno_of(&e))
}
