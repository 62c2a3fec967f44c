//! The Ethernet host's side of DHCPv4 (`USTACK_ADDR=dhcp`): carries the
//! [`DhcpClient`]'s messages in UDP/IPv4 frames and applies its leases.
//!
//! Why here and not in the core: until a lease is bound the host has no
//! IPv4 address, so the client speaks from 0.0.0.0 to the broadcast
//! address and hears replies addressed to an address it does not have
//! yet; the core accepts neither. The host takes every UDP datagram from
//! port 67 to port 68 in a frame for us (our MAC or broadcast, so the
//! broadcast flag is left clear, RFC 2131 section 4.1) before the core
//! sees IPv4 at all, hands it to the client, and changes its own address
//! and gateway as the client says, reporting each change to the runtime
//! as a [`LinkEvent`] for the core.
//!
//! Owns: the encapsulation and the link's view of the lease. Must not
//! touch: the client's states and timers (`crate::dhcp`).

use std::net::{IpAddr, Ipv4Addr};

use super::EthernetLink;
use crate::device::{Link, LinkEvent, Packet};
use crate::dhcp::{DhcpClient, Event, Transmit};
use crate::time::Instant;
use crate::wire::dhcp::{self, DhcpPacket, DhcpRepr};
use crate::wire::ethernet::MacAddr;
use crate::wire::{IpProtocol, Ipv4Packet, Ipv4Repr, UdpRepr};

/// The TTL of the client's datagrams.
const DHCP_TTL: u8 = 64;
/// The earliest first DISCOVER, after the link's start.
const START_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// The DHCP client and what the link remembers of the server.
pub(super) struct DhcpHost {
    pub(super) client: DhcpClient,
    /// The last server that answered on-link, and its MAC: renewals and
    /// the release go straight to it without an ARP exchange (RFC 2131
    /// section 4.4.5's unicast needs its MAC, and at exit there is no time
    /// to resolve it).
    server_mac: Option<(Ipv4Addr, MacAddr)>,
    ident: u16,
}

impl DhcpHost {
    pub(super) fn new(mac: MacAddr, seed: u64) -> DhcpHost {
        DhcpHost {
            // RFC 2131 4.4.1's wait before the first DISCOVER, at its
            // short end: 1 to 2 s after the start (see `crate::dhcp`).
            client: DhcpClient::new_delayed(mac, seed, Instant::ZERO + START_WAIT),
            server_mac: None,
            ident: (seed >> 16) as u16,
        }
    }
}

/// Whether `ip` (an IPv4 datagram) is UDP from port 67 to port 68: a
/// server's reply to a client.
pub(super) fn is_dhcp_reply(ip: &[u8]) -> bool {
    let Ok(p) = Ipv4Packet::new_checked(ip) else {
        return false;
    };
    let udp = p.payload();
    p.protocol() == IpProtocol::Udp
        && !p.is_fragment()
        && udp.len() >= 8
        && u16::from_be_bytes([udp[0], udp[1]]) == dhcp::SERVER_PORT
        && u16::from_be_bytes([udp[2], udp[3]]) == dhcp::CLIENT_PORT
}

impl<L: Link> EthernetLink<L> {
    /// A frame's IPv4 payload that [`is_dhcp_reply`] matched.
    pub(super) fn dhcp_input(&mut self, now: Instant, src_mac: MacAddr, ip: &[u8]) {
        let parsed = Ipv4Packet::new_checked(ip)
            .and_then(|p| Ipv4Repr::parse(&p).map(|r| (r, p)))
            .and_then(|(r, p)| {
                let (src, dst) = (IpAddr::V4(r.src_addr), IpAddr::V4(r.dst_addr));
                UdpRepr::parse_datagram(p.payload(), src, dst).map(|(_, m)| (r, m.to_vec()))
            })
            .and_then(|(r, m)| {
                DhcpPacket::new_checked(&m[..])
                    .and_then(|p| DhcpRepr::parse(&p))
                    .map(|d| (r, d))
            });
        let Some(host) = self.dhcp.as_mut() else {
            return;
        };
        let (ip, msg) = match parsed {
            Ok(ok) => ok,
            Err(_) => {
                self.counters.rx_malformed += 1;
                return;
            }
        };
        if msg.relay_addr.is_unspecified()
            && let Some(server) = msg.server_id
            && ip.src_addr == server
        {
            host.server_mac = Some((server, src_mac));
        }
        host.client.handle(now, &msg);
        self.dhcp_service(now);
    }

    /// Sends what the client has due and applies what it decided.
    pub(super) fn dhcp_service(&mut self, now: Instant) {
        loop {
            let Some(host) = self.dhcp.as_mut() else {
                return;
            };
            if let Some(event) = host.client.poll_event() {
                self.dhcp_apply(event);
                continue;
            }
            match host.client.poll_transmit(now) {
                Some(t) => self.dhcp_send(now, t),
                None => return,
            }
        }
    }

    fn dhcp_apply(&mut self, event: Event) {
        let report = match event {
            Event::Bound(lease) => {
                if self.cfg.ipv4.map(|p| p.addr) != Some(lease.addr.addr) {
                    // Announce the new address with a gratuitous ARP.
                    self.announced = false;
                }
                self.cfg.ipv4 = Some(lease.addr);
                self.cfg.gateway = lease.router;
                LinkEvent::Ipv4 {
                    addr: Some(lease.addr),
                    gateway: lease.router,
                    dns_servers: lease.dns_servers,
                }
            }
            Event::Lost => {
                self.cfg.ipv4 = None;
                self.cfg.gateway = None;
                LinkEvent::Ipv4 {
                    addr: None,
                    gateway: None,
                    dns_servers: Vec::new(),
                }
            }
        };
        self.events.push_back(report);
    }

    fn dhcp_send(&mut self, now: Instant, t: Transmit) {
        let Some(host) = self.dhcp.as_mut() else {
            return;
        };
        host.ident = host.ident.wrapping_add(1);
        let message_len = t.repr.buffer_len();
        let udp = UdpRepr {
            src_port: dhcp::CLIENT_PORT,
            dst_port: dhcp::SERVER_PORT,
        };
        let ip = Ipv4Repr {
            src_addr: t.src,
            dst_addr: t.dst,
            protocol: IpProtocol::Udp,
            payload_len: udp.buffer_len(message_len),
            ttl: DHCP_TTL,
            ident: host.ident,
            dont_frag: false,
            more_frags: false,
            frag_offset: 0,
            dscp: 0,
            ecn: 0,
        };
        let mut message = vec![0u8; message_len];
        let mut packet: Packet = vec![0u8; ip.buffer_len()];
        let built = t.repr.emit(&mut message).and_then(|_| ip.emit(&mut packet));
        let built = built.and_then(|_| {
            udp.emit(
                &mut packet[20..],
                IpAddr::V4(t.src),
                IpAddr::V4(t.dst),
                &message,
            )
        });
        if built.is_err() {
            return;
        }
        if t.dst.is_broadcast() {
            return self.push_ip(MacAddr::BROADCAST, packet);
        }
        match host.server_mac {
            Some((server, mac)) if server == t.dst => self.push_ip(mac, packet),
            // A server reached through a relay: the ordinary next hop.
            _ => self.route(now, packet),
        }
    }

    /// At the stack's stop: a RELEASE for the lease held, sent at once.
    pub(super) fn dhcp_close(&mut self, now: Instant) {
        let Some(t) = self.dhcp.as_mut().and_then(|h| h.client.release(now)) else {
            return;
        };
        log::info!("dhcp: releasing {}", t.src);
        self.dhcp_send(now, t);
        self.dhcp_service(now);
        if let Err(e) = self.flush(now) {
            log::debug!("dhcp: sending the release: {e}");
        }
    }
}
