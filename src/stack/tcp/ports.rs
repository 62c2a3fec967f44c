//! TCP ports: binding, ephemeral port choice (RFC 6056 algorithm 1), the
//! bind and listen conflicts Linux enforces (SO_REUSEADDR, IPV6_V6ONLY,
//! a dual-stack `::`), and which listener a SYN's destination reaches.
//!
//! Must not touch connections: it reads the 4-tuple table only to see
//! which ports are taken.

use std::io;
use std::net::{IpAddr, SocketAddr};

use super::{Role, Tcp, TcpMut, TcpOptionsSet};
use crate::stack::socket::BindAddr;
use crate::stack::{Socket, SocketHandle, errno};

impl Tcp<'_> {
    /// Whether binding `ip:port` conflicts with no bound socket. As Linux:
    /// SO_REUSEADDR on both sides allows it unless one is listening; a
    /// dual-stack `::` overlaps every IPv4 address.
    fn port_free(&self, port: u16, ip: IpAddr, v6: bool, opts: TcpOptionsSet) -> bool {
        let tables = &self.core.tcp_tables;
        let me = BindAddr {
            ip,
            v6,
            v6only: opts.v6only,
        };
        // Connections on the port (accepted ones and TIME-WAIT included)
        // count too, unless SO_REUSEADDR is set (Linux's bind conflict).
        if !opts.reuse_addr
            && tables.conns.keys().any(|(local, _)| {
                local.port() == port
                    && me.overlaps(BindAddr {
                        ip: local.ip(),
                        v6: false,
                        v6only: false,
                    })
            })
        {
            return false;
        }
        let Some(list) = tables.bound.get(port) else {
            return true;
        };
        list.iter().all(|&other| {
            let Some(Socket::Tcp(o)) = self.core.sockets.get(other) else {
                return true;
            };
            let Some(other) = o.bind_addr() else {
                return true;
            };
            let listening = matches!(o.state, Role::Listening(_));
            if opts.reuse_addr && o.opts.reuse_addr && !listening {
                return true;
            }
            !me.overlaps(other)
        })
    }

    /// Whether another socket listens on an address `h`'s bind overlaps.
    pub(super) fn listener_conflict(&self, h: SocketHandle) -> bool {
        let Some(Socket::Tcp(me)) = self.core.sockets.get(h) else {
            return false;
        };
        let (Some(local), Some(mine)) = (me.local, me.bind_addr()) else {
            return false;
        };
        let Some(list) = self.core.tcp_tables.bound.get(local.port()) else {
            return false;
        };
        list.iter().any(|&other| {
            other != h
                && matches!(self.core.sockets.get(other), Some(Socket::Tcp(o))
                if !o.orphan
                    && matches!(o.state, Role::Listening(_))
                    && o.bind_addr().is_some_and(|other| mine.overlaps(other)))
        })
    }

    /// The listener a SYN to `local` reaches: one bound to that address
    /// beats one bound to the unspecified address.
    pub(super) fn find_listener(&self, local: SocketAddr) -> Option<SocketHandle> {
        let list = self.core.tcp_tables.bound.get(local.port())?;
        let mut best: Option<(u8, SocketHandle)> = None;
        for &h in list {
            let Some(Socket::Tcp(s)) = self.core.sockets.get(h) else {
                continue;
            };
            if s.orphan || !matches!(s.state, Role::Listening(_)) {
                continue;
            }
            let Some(bound) = s.bind_addr() else { continue };
            if bound.accepts(local.ip()) {
                let score = u8::from(!bound.ip.is_unspecified());
                if best.is_none_or(|(s0, _)| score > s0) {
                    best = Some((score, h));
                }
            }
        }
        best.map(|(_, h)| h)
    }
}

impl TcpMut<'_> {
    /// Binds to `addr` (the unspecified address or one of the stack's; port
    /// 0 picks an ephemeral port).
    pub fn bind(&mut self, h: SocketHandle, addr: SocketAddr) -> io::Result<()> {
        let (v6, bound, opts) = {
            let s = self.get_mut(h)?;
            (s.v6, s.local.is_some(), s.opts)
        };
        if bound {
            return Err(errno(libc::EINVAL));
        }
        self.core.check_bind_addr(v6, addr)?;
        let port = if addr.port() == 0 {
            self.pick_port(addr.ip(), v6, opts)?
        } else if self.view().port_free(addr.port(), addr.ip(), v6, opts) {
            addr.port()
        } else {
            return Err(errno(libc::EADDRINUSE));
        };
        self.get_mut(h)?.local = Some(SocketAddr::new(addr.ip(), port));
        self.core.tcp_tables.bound.insert(port, h);
        Ok(())
    }

    fn pick_port(&mut self, ip: IpAddr, v6: bool, opts: TcpOptionsSet) -> io::Result<u16> {
        self.core
            .ephemeral_ports()
            .find(|&port| self.view().port_free(port, ip, v6, opts))
            .ok_or_else(|| errno(libc::EADDRNOTAVAIL))
    }

    /// A local port for a connect to `remote` whose 4-tuple is unused (RFC
    /// 6056 algorithm 1 over the whole range).
    pub(super) fn pick_connect_port(
        &mut self,
        local_ip: IpAddr,
        remote: SocketAddr,
    ) -> io::Result<u16> {
        let mut ports = self.core.ephemeral_ports();
        let tables = &self.core.tcp_tables;
        ports
            .find(|&port| {
                !tables
                    .conns
                    .contains_key(&(SocketAddr::new(local_ip, port), remote))
                    && !tables.bound.contains(port)
            })
            .ok_or_else(|| errno(libc::EADDRNOTAVAIL))
    }
}
