//! UDP's operations on an in-process virtual socket ([`UDP`]): datagram
//! calls and the options only a datagram socket has.
//!
//! Owns nothing: the socket's queue and addresses are the core's, the
//! per-open-file state is [`VSock`]'s (UDP's SO_RCVBUF/SO_SNDBUF as set
//! live in its `Stored`: the core's UDP buffer is fixed). Must not know
//! about streams: listen and accept are refused by the trait's defaults.

use std::io;
use std::net::SocketAddr;

use ustack_core::stack::{Core, Shutdown, SocketHandle, UdpOptions};

use super::{Proto, Received, connect_family};
use crate::addr;
use crate::sock::{Res, Stored, VSock};
use crate::sockopt::{MAX_BUF, MIN_BUF, Value, int, owned_int};

/// The UDP operations.
pub struct Udp;

/// The one instance every UDP socket points at.
pub static UDP: Udp = Udp;

fn opts(s: &VSock) -> Res<UdpOptions> {
    s.with(|core, _| core.udp_options(s.handle))
}

fn set_opts(s: &VSock, f: impl FnOnce(&mut UdpOptions)) -> Res<()> {
    s.with(|core, _| {
        let mut o = core.udp_options(s.handle)?;
        f(&mut o);
        core.udp_set_options(s.handle, o)
    })
}

impl Proto for Udp {
    fn sock_type(&self) -> i32 {
        libc::SOCK_DGRAM
    }

    fn protocol(&self) -> i32 {
        libc::IPPROTO_UDP
    }

    fn open(&self, core: &mut Core, v6: bool) -> io::Result<SocketHandle> {
        core.udp_socket(v6)
    }

    fn bind(&self, s: &VSock, a: SocketAddr) -> Res<()> {
        s.with(|core, _| core.udp_bind(s.handle, a))
    }

    fn connect(&self, s: &VSock, target: Option<SocketAddr>) -> Res<()> {
        match target {
            // AF_UNSPEC dissolves the association, as Linux.
            None => s.with(|core, _| core.udp_disconnect(s.handle)),
            Some(a) => {
                let a = connect_family(s, a)?;
                s.with(|core, _| core.udp_connect(s.handle, a))
            }
        }
    }

    fn addrs(&self, s: &VSock) -> Res<(Option<SocketAddr>, Option<SocketAddr>)> {
        s.with(|core, _| core.udp_addrs(s.handle).map(|(l, p)| (Some(l), p)))
    }

    fn shutdown(&self, s: &VSock, _how: Shutdown) -> Res<()> {
        // Linux only checks that the socket is connected.
        match s.with(|core, _| core.udp_addrs(s.handle))? {
            (_, Some(_)) => Ok(()),
            (_, None) => Err(libc::ENOTCONN),
        }
    }

    fn send(
        &self,
        s: &VSock,
        data: &[u8],
        _flags: i32,
        dst: Option<SocketAddr>,
        _nonblocking: bool,
    ) -> Res<usize> {
        let dst = dst.map(|d| connect_family(s, d)).transpose()?;
        s.with(|core, now| core.udp_send_to(now, s.handle, data, dst))
    }

    fn recv(&self, s: &VSock, buf: &mut [u8], flags: i32, nonblocking: bool) -> Res<Received> {
        let peek = flags & libc::MSG_PEEK != 0;
        let d = s.block(nonblocking, s.timeout(false), |core, _| {
            core.udp_recv(s.handle, peek)
        })?;
        let n = d.data.len().min(buf.len());
        buf[..n].copy_from_slice(&d.data[..n]);
        Ok(Received {
            n,
            full: d.data.len(),
            from: Some(addr::present(s.v6, d.from)),
        })
    }

    fn readable_bytes(&self, s: &VSock) -> Res<usize> {
        // The next datagram's size, as Linux's FIONREAD on UDP.
        s.with(|core, _| match core.udp_recv(s.handle, true) {
            Ok(d) => Ok(d.data.len()),
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => Ok(0),
            Err(e) => Err(e),
        })
    }

    fn poll_bits(&self, core: &mut Core, s: &VSock) -> i16 {
        let Ok((readable, error)) = core.udp_readiness(s.handle) else {
            return libc::POLLNVAL;
        };
        let mut bits = libc::POLLOUT | libc::POLLWRNORM;
        if readable {
            bits |= libc::POLLIN | libc::POLLRDNORM;
        }
        if error {
            bits |= libc::POLLERR;
        }
        bits
    }

    fn take_error(&self, s: &VSock) -> Res<Option<io::Error>> {
        s.with(|core, _| core.udp_take_error(s.handle))
    }

    fn get_option(&self, s: &VSock, level: i32, name: i32) -> Option<Res<Value>> {
        Some(match (level, name) {
            (libc::SOL_SOCKET, libc::SO_REUSEADDR) => opts(s).map(|o| int(o.reuse_addr)),
            (libc::SOL_SOCKET, libc::SO_BROADCAST) => opts(s).map(|o| int(o.broadcast)),
            (libc::SOL_SOCKET, libc::SO_RCVBUF | libc::SO_SNDBUF) => {
                let b = s.stored().udp_bufs;
                let v = if name == libc::SO_RCVBUF { b.0 } else { b.1 } * 2;
                Ok(Value::Int(i32::try_from(v).unwrap_or(i32::MAX)))
            }
            (libc::IPPROTO_IPV6, libc::IPV6_V6ONLY) if s.v6 => opts(s).map(|o| int(o.v6only)),
            (libc::IPPROTO_TCP, _) => Err(libc::EOPNOTSUPP),
            _ => return None,
        })
    }

    fn set_option(&self, s: &VSock, level: i32, name: i32, val: &[u8]) -> Option<Res<()>> {
        let v = match owned_int(s, level, name, val, libc::SO_BROADCAST)? {
            Ok(v) => v,
            Err(e) => return Some(Err(e)),
        };
        let on = v != 0;
        Some(match (level, name) {
            (libc::SOL_SOCKET, libc::SO_REUSEADDR) => set_opts(s, |o| o.reuse_addr = on),
            (libc::SOL_SOCKET, libc::SO_BROADCAST) => set_opts(s, |o| o.broadcast = on),
            (libc::SOL_SOCKET, libc::SO_RCVBUF | libc::SO_SNDBUF) => {
                let bytes = usize::try_from(v).unwrap_or(0).clamp(MIN_BUF, MAX_BUF);
                let mut st = s.stored();
                if name == libc::SO_RCVBUF {
                    st.udp_bufs.0 = bytes;
                } else {
                    st.udp_bufs.1 = bytes;
                }
                Ok(())
            }
            (libc::IPPROTO_IPV6, _) => set_opts(s, |o| o.v6only = on),
            _ => Err(libc::EOPNOTSUPP), // TCP's options
        })
    }

    fn kernel_options(
        &self,
        core: &mut Core,
        s: &VSock,
        st: &Stored,
        setint: &mut dyn FnMut(i32, i32, i32),
    ) {
        let Ok(o) = core.udp_options(s.handle) else {
            return;
        };
        setint(libc::SOL_SOCKET, libc::SO_REUSEADDR, o.reuse_addr.into());
        if s.v6 {
            setint(libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, o.v6only.into());
        }
        setint(libc::SOL_SOCKET, libc::SO_BROADCAST, o.broadcast.into());
        let (rcv, snd) = st.udp_bufs;
        let dflt = Stored::default().udp_bufs;
        for (name, b, d) in [
            (libc::SO_RCVBUF, rcv, dflt.0),
            (libc::SO_SNDBUF, snd, dflt.1),
        ] {
            if b != d {
                setint(libc::SOL_SOCKET, name, i32::try_from(b).unwrap_or(i32::MAX));
            }
        }
    }
}
