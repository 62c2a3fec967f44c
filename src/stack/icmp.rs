//! ICMP and ICMPv6 as a host needs them: answering echo requests, sending
//! errors (port and protocol unreachable, reassembly time exceeded) under a
//! rate limit, and handing received errors to the socket they concern, as
//! a typed reason (`ReceivedError`, `Unreachable`) that the socket turns
//! into Linux's errno only when a call reports it. Received time-exceeded
//! errors are not passed on (Linux takes them as soft errors, which
//! a socket sees only with IP_RECVERR). Must not touch sockets' state: the TCP and UDP modules
//! decide what an error does to their socket.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::{Arrival, Core};
use crate::ip::{Expired, FragKey};
use crate::time::Instant;
use crate::wire::{self, Icmpv4Repr, Icmpv6Repr, IpProtocol, icmpv4, icmpv6};

/// The errors the core sends.
#[derive(Clone, Copy, Debug)]
pub(crate) enum ErrorKind {
    PortUnreachable,
    /// IPv4 only; IPv6 would answer with a parameter problem.
    ProtocolUnreachable,
    ReassemblyTimeExceeded,
}

/// An ICMP error as received, reduced to what sockets care about. It
/// travels to the socket as it is; a socket call turns it into an errno
/// ([`Unreachable::errno`]) only when it reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReceivedError {
    /// Destination unreachable: fails a connect or marks a connected
    /// socket.
    Unreachable(Unreachable),
    /// Fragmentation needed / packet too big, with the path MTU.
    PacketTooBig { mtu: u32 },
}

/// What a destination-unreachable error says was unreachable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unreachable {
    /// Port unreachable (ICMPv4 code 3, ICMPv6 code 4): nobody listens.
    Port,
    /// Protocol unreachable (ICMPv4 code 2).
    Protocol,
    /// Network unreachable (ICMPv4 code 0), no route (ICMPv6 code 0).
    Net,
    /// Administratively prohibited (ICMPv6 code 1). ICMPv4's prohibited
    /// codes are `Host`, as Linux reports them.
    Prohibited,
    /// Host unreachable, and every other code.
    Host,
}

impl Unreachable {
    /// The errno Linux reports for it (`icmp_err_convert`,
    /// `icmpv6_err_convert`).
    pub(crate) fn errno(self) -> i32 {
        match self {
            Unreachable::Port | Unreachable::Protocol => libc::ECONNREFUSED,
            Unreachable::Net => libc::ENETUNREACH,
            Unreachable::Prohibited => libc::EACCES,
            Unreachable::Host => libc::EHOSTUNREACH,
        }
    }
}

/// RFC 1812 section 4.3.2.3 bounds an ICMPv4 error to 576 bytes; RFC 4443
/// section 2.4 (c) bounds an ICMPv6 error to the 1280-byte minimum MTU.
const MAX_ICMPV4_ERROR: usize = 576;
const MAX_ICMPV6_ERROR: usize = 1280;

fn is_unicast(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(a) => !(a.is_broadcast() || a.is_multicast() || a.is_unspecified()),
        IpAddr::V6(a) => !(a.is_multicast() || a.is_unspecified()),
    }
}

impl Core {
    pub(super) fn icmpv4_input(&mut self, now: Instant, arrival: &Arrival<'_>) {
        let (IpAddr::V4(src), IpAddr::V4(dst)) = (arrival.src, arrival.dst) else {
            return;
        };
        let Ok(repr) = Icmpv4Repr::parse_bytes(arrival.payload) else {
            self.counters.icmp_malformed += 1;
            return;
        };
        match repr {
            Icmpv4Repr::EchoRequest {
                ident,
                seq_no,
                data,
            } => {
                let reply = Icmpv4Repr::EchoReply {
                    ident,
                    seq_no,
                    data,
                };
                self.send_icmpv4(now, dst, src, &reply, false);
            }
            Icmpv4Repr::DstUnreachable { reason, quoted } => {
                use icmpv4::DstUnreachable as D;
                let err = match reason {
                    D::FragRequired { next_hop_mtu } => ReceivedError::PacketTooBig {
                        mtu: u32::from(next_hop_mtu),
                    },
                    D::PortUnreachable => ReceivedError::Unreachable(Unreachable::Port),
                    D::ProtoUnreachable => ReceivedError::Unreachable(Unreachable::Protocol),
                    D::NetUnreachable => ReceivedError::Unreachable(Unreachable::Net),
                    _ => ReceivedError::Unreachable(Unreachable::Host),
                };
                self.icmp_error_input(now, err, quoted);
            }
            Icmpv4Repr::TimeExceeded { .. } | Icmpv4Repr::EchoReply { .. } => {}
        }
    }

    pub(super) fn icmpv6_input(&mut self, now: Instant, arrival: &Arrival<'_>) {
        let (IpAddr::V6(src), IpAddr::V6(dst)) = (arrival.src, arrival.dst) else {
            return;
        };
        let repr = match Icmpv6Repr::parse_bytes(arrival.payload, src, dst) {
            Ok(r) => r,
            // Neighbour discovery, MLD and other types are not errors: the
            // link is point-to-point, so they are dropped quietly.
            Err(wire::Error::Unsupported) => return,
            Err(_) => {
                self.counters.icmp_malformed += 1;
                return;
            }
        };
        match repr {
            Icmpv6Repr::EchoRequest {
                ident,
                seq_no,
                data,
            } => {
                let reply = Icmpv6Repr::EchoReply {
                    ident,
                    seq_no,
                    data,
                };
                self.send_icmpv6(now, dst, src, &reply, false);
            }
            Icmpv6Repr::DstUnreachable { reason, quoted } => {
                use icmpv6::DstUnreachable as D;
                let what = match reason {
                    D::PortUnreachable => Unreachable::Port,
                    D::NoRoute => Unreachable::Net,
                    D::AdminProhibited => Unreachable::Prohibited,
                    _ => Unreachable::Host,
                };
                self.icmp_error_input(now, ReceivedError::Unreachable(what), quoted);
            }
            Icmpv6Repr::PacketTooBig { mtu, quoted } => {
                self.icmp_error_input(now, ReceivedError::PacketTooBig { mtu }, quoted);
            }
            Icmpv6Repr::TimeExceeded { .. } | Icmpv6Repr::EchoReply { .. } => {}
        }
    }

    /// Hands an ICMP error to the socket whose datagram it quotes.
    fn icmp_error_input(&mut self, now: Instant, err: ReceivedError, quoted: &[u8]) {
        let Ok(view) = wire::parse_ip_quoted(quoted) else {
            self.counters.icmp_malformed += 1;
            return;
        };
        // Only errors about datagrams this stack sent concern its sockets.
        if !self.is_local(view.src) {
            return;
        }
        // The quoted payload begins with the transport header; its first 4
        // bytes are the ports for both TCP and UDP.
        let Some(ports) = view.payload.get(..4) else {
            return;
        };
        let src_port = u16::from_be_bytes([ports[0], ports[1]]);
        let dst_port = u16::from_be_bytes([ports[2], ports[3]]);
        let matched = match view.protocol {
            IpProtocol::Udp => self.udp_icmp_error(err, view.dst, src_port, dst_port),
            // RFC 792 and 4443 quote at least 8 bytes: the sequence number
            // follows the ports.
            IpProtocol::Tcp => match view.payload.get(4..8) {
                Some(seq) => self.tcp_mut().icmp_error(
                    now,
                    err,
                    SocketAddr::new(view.src, src_port),
                    SocketAddr::new(view.dst, dst_port),
                    u32::from_be_bytes([seq[0], seq[1], seq[2], seq[3]]),
                ),
                None => false,
            },
            _ => false,
        };
        if matched {
            self.counters.icmp_errors_in += 1;
        }
    }

    /// Sends an ICMP error about `arrival`, unless RFC 1122 section 3.2.2
    /// forbids it (the offending datagram was an ICMP error, a non-initial
    /// fragment, or not to/from a unicast address) or the rate limit says no.
    pub(super) fn send_icmp_error(&mut self, now: Instant, kind: ErrorKind, arrival: &Arrival<'_>) {
        if !arrival.first_fragment || !is_unicast(arrival.src) || !is_unicast(arrival.dst) {
            return;
        }
        if is_icmp_error(arrival) {
            return;
        }
        self.send_icmp_error_quoting(now, kind, arrival.dst, arrival.src, arrival.original);
    }

    fn send_icmp_error_quoting(
        &mut self,
        now: Instant,
        kind: ErrorKind,
        local: IpAddr,
        remote: IpAddr,
        original: &[u8],
    ) {
        if !self.icmp_limit.allow(now) {
            self.counters.icmp_errors_limited += 1;
            return;
        }
        match (local, remote) {
            (IpAddr::V4(local), IpAddr::V4(remote)) => {
                let room = MAX_ICMPV4_ERROR - wire::ipv4::HEADER_LEN - icmpv4::HEADER_LEN;
                let quoted = &original[..original.len().min(room)];
                let repr = match kind {
                    ErrorKind::PortUnreachable => Icmpv4Repr::DstUnreachable {
                        reason: icmpv4::DstUnreachable::PortUnreachable,
                        quoted,
                    },
                    ErrorKind::ProtocolUnreachable => Icmpv4Repr::DstUnreachable {
                        reason: icmpv4::DstUnreachable::ProtoUnreachable,
                        quoted,
                    },
                    ErrorKind::ReassemblyTimeExceeded => Icmpv4Repr::TimeExceeded {
                        reason: icmpv4::TimeExceeded::FragReassembly,
                        quoted,
                    },
                };
                self.send_icmpv4(now, local, remote, &repr, true);
            }
            (IpAddr::V6(local), IpAddr::V6(remote)) => {
                let room = MAX_ICMPV6_ERROR - wire::ipv6::HEADER_LEN - icmpv6::HEADER_LEN;
                let quoted = &original[..original.len().min(room)];
                let repr = match kind {
                    ErrorKind::PortUnreachable => Icmpv6Repr::DstUnreachable {
                        reason: icmpv6::DstUnreachable::PortUnreachable,
                        quoted,
                    },
                    ErrorKind::ReassemblyTimeExceeded => Icmpv6Repr::TimeExceeded {
                        reason: icmpv6::TimeExceeded::FragReassembly,
                        quoted,
                    },
                    ErrorKind::ProtocolUnreachable => return,
                };
                self.send_icmpv6(now, local, remote, &repr, true);
            }
            _ => {}
        }
    }

    /// A datagram whose reassembly timed out: RFC 792 and RFC 8200 section
    /// 4.5 send time exceeded (code 1), quoting the first fragment, only if
    /// the first fragment had arrived.
    pub(super) fn reassembly_timed_out(&mut self, now: Instant, expired: Expired) {
        let Some(first) = expired.first else { return };
        let (local, remote): (IpAddr, IpAddr) = match expired.key {
            FragKey::V4 { src, dst, .. } => (dst.into(), src.into()),
            FragKey::V6 { src, dst, .. } => (dst.into(), src.into()),
        };
        if !is_unicast(remote) {
            return;
        }
        let original = [first.header.as_slice(), first.payload.as_slice()].concat();
        self.send_icmp_error_quoting(
            now,
            ErrorKind::ReassemblyTimeExceeded,
            local,
            remote,
            &original,
        );
    }

    fn send_icmpv4(
        &mut self,
        _now: Instant,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        repr: &Icmpv4Repr<'_>,
        is_error: bool,
    ) {
        let mut msg = vec![0u8; repr.buffer_len()];
        if repr.emit(&mut msg).is_err() {
            return;
        }
        if self
            .send_datagram(src.into(), dst.into(), IpProtocol::Icmp, &msg)
            .is_ok()
        {
            self.count_icmp_out(is_error);
        }
    }

    fn send_icmpv6(
        &mut self,
        _now: Instant,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        repr: &Icmpv6Repr<'_>,
        is_error: bool,
    ) {
        let mut msg = vec![0u8; repr.buffer_len()];
        if repr.emit(&mut msg, src, dst).is_err() {
            return;
        }
        if self
            .send_datagram(src.into(), dst.into(), IpProtocol::Icmpv6, &msg)
            .is_ok()
        {
            self.count_icmp_out(is_error);
        }
    }

    fn count_icmp_out(&mut self, is_error: bool) {
        if is_error {
            self.counters.icmp_errors_out += 1;
        } else {
            self.counters.echo_replies += 1;
        }
    }
}

/// Whether `arrival` is itself an ICMP error (or an unparsable ICMP
/// message), to which no error may be sent (RFC 1122 section 3.2.2).
fn is_icmp_error(arrival: &Arrival<'_>) -> bool {
    let Ok(view) = wire::parse_ip_quoted(arrival.original) else {
        return true;
    };
    let first_byte = arrival.payload.first().copied();
    match view.protocol {
        // Types 0..=127 of ICMPv6 are errors (RFC 4443 section 2.1).
        IpProtocol::Icmpv6 => first_byte.is_none_or(|t| t < 128),
        // ICMPv4 queries are echo (8, 0), timestamp (13, 14), info (15, 16),
        // address mask (17, 18); everything else is an error or unknown.
        IpProtocol::Icmp => {
            first_byte.is_none_or(|t| !matches!(t, 0 | 8 | 13 | 14 | 15 | 16 | 17 | 18))
        }
        _ => false,
    }
}
