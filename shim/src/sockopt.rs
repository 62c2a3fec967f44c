//! getsockopt/setsockopt on virtual sockets: which options exist, how
//! their values are encoded, and which the core or the shim keeps.
//!
//! Unknown options: getsockopt fails with `ENOPROTOOPT`, as Linux does for
//! an option it does not know; setsockopt accepts them and logs at debug,
//! so programs that tune options we do not model (IP_TOS, SO_PRIORITY...)
//! keep working.

use std::time::Duration;

use ustack_core::stack::TcpOptionsSet;
use ustack_core::tcp::Keepalive;

use crate::sock::{Res, Stored, VSock, errno_of};

/// Largest SO_RCVBUF/SO_SNDBUF honoured (bytes as set; reported doubled).
const MAX_BUF: usize = 16 << 20;
/// Smallest, as Linux's SOCK_MIN_RCVBUF halved.
const MIN_BUF: usize = 1152;

/// An option value on its way out: the bytes to copy (truncated to the
/// caller's length).
pub enum Value {
    Int(i32),
    Bytes(Vec<u8>),
}

impl Value {
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            Value::Int(v) => v.to_ne_bytes().to_vec(),
            Value::Bytes(b) => b.clone(),
        }
    }
}

/// Reads an int option value (`EINVAL` if shorter than an int; Linux
/// accepts a longer buffer).
pub fn int_arg(bytes: &[u8]) -> Res<i32> {
    let b: [u8; 4] = bytes
        .get(..4)
        .ok_or(libc::EINVAL)?
        .try_into()
        .map_err(|_| libc::EINVAL)?;
    Ok(i32::from_ne_bytes(b))
}

/// Reads a `struct timeval` timeout; zero is none.
pub fn timeval_arg(bytes: &[u8]) -> Res<Option<Duration>> {
    if bytes.len() < size_of::<libc::timeval>() {
        return Err(libc::EINVAL);
    }
    let sec = i64::from_ne_bytes(bytes[..8].try_into().map_err(|_| libc::EINVAL)?);
    let usec = i64::from_ne_bytes(bytes[8..16].try_into().map_err(|_| libc::EINVAL)?);
    if !(0..1_000_000).contains(&usec) {
        return Err(libc::EDOM);
    }
    if sec < 0 {
        return Ok(None);
    }
    let d = Duration::from_secs(sec as u64) + Duration::from_micros(usec as u64);
    Ok((!d.is_zero()).then_some(d))
}

pub fn timeval_bytes(t: Option<Duration>) -> Vec<u8> {
    let t = t.unwrap_or_default();
    let mut b = (t.as_secs() as i64).to_ne_bytes().to_vec();
    b.extend_from_slice(&i64::from(t.subsec_micros()).to_ne_bytes());
    b
}

fn keepalive(st: &Stored) -> Keepalive {
    Keepalive {
        idle: Duration::from_secs(u64::from(st.keep_idle)),
        interval: Duration::from_secs(u64::from(st.keep_intvl)),
        count: st.keep_cnt,
    }
}

fn tcp_opts(s: &VSock) -> Res<TcpOptionsSet> {
    s.with(|core, _| core.tcp().options(s.handle))
}

fn set_tcp(s: &VSock, f: impl FnOnce(&mut TcpOptionsSet)) -> Res<()> {
    s.with(|core, _| {
        let mut o = core.tcp().options(s.handle)?;
        f(&mut o);
        core.tcp_mut().set_options(s.handle, o)
    })
}

fn set_udp(s: &VSock, f: impl FnOnce(&mut ustack_core::stack::UdpOptions)) -> Res<()> {
    s.with(|core, _| {
        let mut o = core.udp_options(s.handle)?;
        f(&mut o);
        core.udp_set_options(s.handle, o)
    })
}

/// Linux's TCP_CC_INFO (linux/tcp.h).
const TCP_CC_INFO: i32 = 26;
/// Linux's SO_MEMINFO (asm-generic/socket.h).
const SO_MEMINFO: i32 = 55;

/// getsockopt(2).
pub fn get(s: &VSock, level: i32, name: i32) -> Res<Value> {
    let int = |b: bool| Ok(Value::Int(b.into()));
    match (level, name) {
        (libc::SOL_SOCKET, libc::SO_TYPE) => Ok(Value::Int(s.sock_type())),
        (libc::SOL_SOCKET, libc::SO_DOMAIN) => Ok(Value::Int(s.family())),
        (libc::SOL_SOCKET, libc::SO_PROTOCOL) => Ok(Value::Int(if s.tcp {
            libc::IPPROTO_TCP
        } else {
            libc::IPPROTO_UDP
        })),
        (libc::SOL_SOCKET, libc::SO_ERROR) => {
            let e = s.with(|core, _| {
                if s.tcp {
                    core.tcp_mut().take_error(s.handle)
                } else {
                    core.udp_take_error(s.handle)
                }
            })?;
            Ok(Value::Int(e.map_or(0, |e| errno_of(&e))))
        }
        // Not bound to a device: Linux answers an empty name (sshd asks).
        (libc::SOL_SOCKET, libc::SO_BINDTODEVICE) => Ok(Value::Bytes(Vec::new())),
        (libc::SOL_SOCKET, libc::SO_ACCEPTCONN) => {
            int(s.tcp && s.with(|core, _| core.tcp().is_listening(s.handle))?)
        }
        (libc::SOL_SOCKET, libc::SO_REUSEADDR) => int(if s.tcp {
            tcp_opts(s)?.reuse_addr
        } else {
            s.with(|core, _| core.udp_options(s.handle))?.reuse_addr
        }),
        (libc::SOL_SOCKET, libc::SO_REUSEPORT) => int(s.stored().reuse_port),
        (libc::SOL_SOCKET, libc::SO_BROADCAST) => {
            int(!s.tcp && s.with(|core, _| core.udp_options(s.handle))?.broadcast)
        }
        (libc::SOL_SOCKET, libc::SO_KEEPALIVE) => int(s.tcp && tcp_opts(s)?.keepalive.is_some()),
        (libc::SOL_SOCKET, libc::SO_RCVBUF | libc::SO_SNDBUF) => {
            let rcv = name == libc::SO_RCVBUF;
            // Linux reports a size the program set doubled, and the
            // untouched default (tcp_rmem[1] / tcp_wmem[1]) as it is.
            let v = if s.tcp {
                let o = tcp_opts(s)?;
                let set = if rcv { o.recv_buf } else { o.send_buf };
                let d = ustack_core::tcp::TcpConfig::default();
                set.map_or(if rcv { d.recv_buf } else { d.send_buf }, |n| n * 2)
            } else {
                let b = s.stored().udp_bufs;
                (if rcv { b.0 } else { b.1 }) * 2
            };
            Ok(Value::Int(i32::try_from(v).unwrap_or(i32::MAX)))
        }
        (libc::SOL_SOCKET, SO_MEMINFO) => {
            // Linux's sk_meminfo: rmem_alloc, rcvbuf, wmem_alloc, sndbuf,
            // fwd_alloc, wmem_queued, optmem, backlog, drops. Only the
            // buffer sizes are known here; the rest reads zero.
            let mut m = [0u32; 9];
            for (slot, name) in [(1, libc::SO_RCVBUF), (3, libc::SO_SNDBUF)] {
                if let Value::Int(v) = get(s, libc::SOL_SOCKET, name)? {
                    m[slot] = v as u32;
                }
            }
            Ok(Value::Bytes(
                m.iter().flat_map(|v| v.to_ne_bytes()).collect(),
            ))
        }
        (libc::SOL_SOCKET, libc::SO_RCVTIMEO) => Ok(Value::Bytes(timeval_bytes(s.timeout(false)))),
        (libc::SOL_SOCKET, libc::SO_SNDTIMEO) => Ok(Value::Bytes(timeval_bytes(s.timeout(true)))),
        (libc::SOL_SOCKET, libc::SO_LINGER) => {
            let (on, secs) = s.stored().linger;
            let mut b = i32::from(on).to_ne_bytes().to_vec();
            b.extend_from_slice(&secs.to_ne_bytes());
            Ok(Value::Bytes(b))
        }
        (libc::IPPROTO_TCP, _) if !s.tcp => Err(libc::EOPNOTSUPP),
        (libc::IPPROTO_TCP, libc::TCP_NODELAY) => int(tcp_opts(s)?.nodelay),
        (libc::IPPROTO_TCP, libc::TCP_CORK) => int(tcp_opts(s)?.cork),
        (libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT) => {
            Ok(Value::Int(tcp_opts(s)?.user_timeout.map_or(0, |t| {
                i32::try_from(t.as_millis()).unwrap_or(i32::MAX)
            })))
        }
        (libc::IPPROTO_TCP, libc::TCP_KEEPIDLE) => Ok(Value::Int(s.stored().keep_idle as i32)),
        (libc::IPPROTO_TCP, libc::TCP_KEEPINTVL) => Ok(Value::Int(s.stored().keep_intvl as i32)),
        (libc::IPPROTO_TCP, libc::TCP_KEEPCNT) => Ok(Value::Int(s.stored().keep_cnt as i32)),
        (libc::IPPROTO_TCP, libc::TCP_MAXSEG) => {
            let mss = s.with(|core, _| Ok(core.tcp().info(s.handle).ok().map(|i| i.mss)))?;
            Ok(Value::Int(
                mss.or(s.stored().maxseg)
                    .unwrap_or(536)
                    .try_into()
                    .unwrap_or(536),
            ))
        }
        (libc::IPPROTO_TCP, libc::TCP_INFO) => Ok(Value::Bytes(tcp_info(s)?)),
        (libc::IPPROTO_TCP, libc::TCP_INQ) => int(s.stored().inq),
        // The socket's own mark; 0 when it set none (the sysctl's applies).
        (libc::IPPROTO_TCP, libc::TCP_NOTSENT_LOWAT) => Ok(Value::Int(
            tcp_opts(s)?.notsent_lowat.map_or(0, |l| l as i32),
        )),
        // The congestion control's own report: CUBIC and NewReno have
        // none, which Linux answers with zero bytes.
        (libc::IPPROTO_TCP, TCP_CC_INFO) => Ok(Value::Bytes(Vec::new())),
        (libc::IPPROTO_IPV6, libc::IPV6_V6ONLY) if s.v6 => int(if s.tcp {
            tcp_opts(s)?.v6only
        } else {
            s.with(|core, _| core.udp_options(s.handle))?.v6only
        }),
        _ => {
            log::debug!("getsockopt level {level} option {name}: not supported (ENOPROTOOPT)");
            Err(libc::ENOPROTOOPT)
        }
    }
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

/// setsockopt(2).
pub fn set(s: &VSock, level: i32, name: i32, val: &[u8]) -> Res<()> {
    match (level, name) {
        (libc::SOL_SOCKET, libc::SO_RCVTIMEO | libc::SO_SNDTIMEO) => {
            s.set_timeout(name == libc::SO_SNDTIMEO, timeval_arg(val)?);
            Ok(())
        }
        (libc::SOL_SOCKET, libc::SO_LINGER) => {
            if val.len() < 8 {
                return Err(libc::EINVAL);
            }
            let on = int_arg(val)? != 0;
            let secs = int_arg(&val[4..])?;
            s.stored().linger = (on, secs);
            if s.tcp {
                set_tcp(s, |o| o.linger_abort = on && secs == 0)?;
            }
            Ok(())
        }
        _ => set_int(s, level, name, int_arg(val)?),
    }
}

fn set_int(s: &VSock, level: i32, name: i32, v: i32) -> Res<()> {
    let on = v != 0;
    match (level, name) {
        (libc::SOL_SOCKET, libc::SO_REUSEADDR) if s.tcp => set_tcp(s, |o| o.reuse_addr = on),
        (libc::SOL_SOCKET, libc::SO_REUSEADDR) => set_udp(s, |o| o.reuse_addr = on),
        (libc::SOL_SOCKET, libc::SO_REUSEPORT) => {
            s.stored().reuse_port = on;
            Ok(())
        }
        (libc::SOL_SOCKET, libc::SO_BROADCAST) if !s.tcp => set_udp(s, |o| o.broadcast = on),
        (libc::SOL_SOCKET, libc::SO_KEEPALIVE) if s.tcp => {
            let k = keepalive(&s.stored());
            set_tcp(s, |o| o.keepalive = on.then_some(k))
        }
        (libc::SOL_SOCKET, libc::SO_RCVBUF | libc::SO_SNDBUF) => {
            let rcv = name == libc::SO_RCVBUF;
            let bytes = usize::try_from(v).unwrap_or(0).clamp(MIN_BUF, MAX_BUF);
            if s.tcp {
                set_tcp(s, |o| {
                    if rcv {
                        o.recv_buf = Some(bytes);
                    } else {
                        o.send_buf = Some(bytes);
                    }
                })
            } else {
                let mut st = s.stored();
                if rcv {
                    st.udp_bufs.0 = bytes;
                } else {
                    st.udp_bufs.1 = bytes;
                }
                Ok(())
            }
        }
        (libc::IPPROTO_TCP, _) if !s.tcp => Err(libc::EOPNOTSUPP),
        (libc::IPPROTO_TCP, libc::TCP_NODELAY) => {
            set_tcp(s, |o| o.nodelay = on)?;
            if on {
                // Linux pushes what waits every time TCP_NODELAY is set,
                // even when it was set already (past a cork too).
                s.with(|core, _| core.tcp_mut().push(s.handle))?;
            }
            Ok(())
        }
        (libc::IPPROTO_TCP, libc::TCP_CORK) => set_tcp(s, |o| o.cork = on),
        (libc::IPPROTO_TCP, libc::TCP_NOTSENT_LOWAT) => {
            // Linux keeps the int as a u32; 0 goes back to the sysctl's.
            set_tcp(s, |o| o.notsent_lowat = (v != 0).then_some(v as u32))
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
            set_tcp(s, |o| {
                o.user_timeout = (ms > 0).then(|| std::time::Duration::from_millis(ms));
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
            set_tcp(s, |o| {
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
            set_tcp(s, |o| o.maxseg = u16::try_from(v).ok())
        }
        (libc::IPPROTO_IPV6, libc::IPV6_V6ONLY) if s.v6 => {
            if s.tcp {
                set_tcp(s, |o| o.v6only = on)
            } else {
                set_udp(s, |o| o.v6only = on)
            }
        }
        _ => {
            log::debug!("setsockopt level {level} option {name} = {v}: accepted and ignored");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_arguments_need_four_bytes() {
        assert_eq!(int_arg(&7i32.to_ne_bytes()), Ok(7));
        assert_eq!(int_arg(&[1, 0, 0]), Err(libc::EINVAL));
        assert_eq!(int_arg(&[1, 0, 0, 0, 9, 9, 9, 9]), Ok(1), "longer is fine");
    }

    #[test]
    fn timeval_round_trips_and_zero_means_none() {
        let t = Some(Duration::from_millis(1500));
        assert_eq!(timeval_arg(&timeval_bytes(t)), Ok(t));
        assert_eq!(timeval_arg(&timeval_bytes(None)), Ok(None));
        assert_eq!(timeval_arg(&[0; 15]), Err(libc::EINVAL));
        let mut bad = timeval_bytes(t);
        bad[8..].copy_from_slice(&2_000_000i64.to_ne_bytes());
        assert_eq!(timeval_arg(&bad), Err(libc::EDOM));
    }

    #[test]
    fn values_encode_as_native_ints() {
        assert_eq!(Value::Int(1).bytes(), 1i32.to_ne_bytes().to_vec());
    }
}
