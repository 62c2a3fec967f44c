//! The DHCPv4 client (RFC 2131) as a sans-IO state machine.
//!
//! Owns the client's states (init, selecting, requesting, bound,
//! renewing, rebinding), its transaction ids, its retransmission timers
//! and the lease it holds. It takes time as an argument and makes no
//! system call: [`DhcpClient::handle`] takes a received message,
//! [`DhcpClient::poll_transmit`] gives the message due now (with where it
//! goes), [`DhcpClient::poll_at`] the next deadline, and
//! [`DhcpClient::poll_event`] what changed for the host (an address bound,
//! renewed, or lost). Must not touch: packet bytes (that is
//! `wire::dhcp`), UDP/IP headers and frames (the Ethernet host that drives
//! it, `crate::ethernet`), the core's addresses (the runtime applies the
//! events).
//!
//! What it does, by RFC 2131 section:
//! - 4.4.1: the first DISCOVER at once ([`DhcpClient::new`]) or after a
//!   random wait ([`DhcpClient::new_delayed`]: the Ethernet host waits 1
//!   to 2 s, the short end of the RFC's one to ten seconds, which also
//!   lets a bridge port that just saw the TAP device's carrier start
//!   forwarding: a DISCOVER sent at once was lost on a Linux bridge in 2
//!   runs of 6), retransmitted after 4, 8, 16, 32
//!   then every 64 s, each randomised by up to one second either way
//!   (4.1). The first acceptable OFFER (our xid and MAC, a server
//!   identifier, a unicast address) is taken.
//! - 4.3.2: REQUEST (broadcast, requested address and server identifier)
//!   retransmitted with the same back-off; four unanswered tries start
//!   over from DISCOVER. A NAK at any point starts over; an ACK binds.
//! - 4.4.5: at T1 (default half the lease) a REQUEST unicast to the
//!   server, with our address in `ciaddr`; at T2 (default 7/8) the same
//!   broadcast; each retransmitted after half the time left to T2 (then
//!   to expiry), at least 60 s, never past it. At expiry the address is
//!   lost and the client starts over.
//! - 4.4.6: [`DhcpClient::release`] gives a RELEASE for the server.
//!
//! Not done: the ARP probe of the offered address before using it
//! (RFC 2131 says SHOULD, RFC 5227) and so DECLINE; INIT-REBOOT (asking
//! for the previous address after a restart); DHCPINFORM; relays beyond
//! answering through whoever sent the reply.

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::rand::Rng;
use crate::time::Instant;
use crate::wire::Prefix;
use crate::wire::dhcp::{DhcpRepr, MessageType};
use crate::wire::ethernet::MacAddr;

/// The first retransmission interval (RFC 2131 section 4.1).
const FIRST_RTO: Duration = Duration::from_secs(4);
/// The largest retransmission interval.
const MAX_RTO: Duration = Duration::from_secs(64);
/// REQUESTs sent in the requesting state before starting over.
const REQUEST_TRIES: u32 = 4;
/// The shortest wait between renewal (and rebinding) retransmissions.
const MIN_RENEW_RTO: Duration = Duration::from_secs(60);
/// The shortest lease accepted, so a server's zero cannot spin the client.
const MIN_LEASE: Duration = Duration::from_secs(10);

/// A lease: the address and what came with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// Our address and the on-link prefix (from the subnet mask; /24 when
    /// the server gives none, the tap link's default).
    pub addr: Prefix<Ipv4Addr>,
    /// The first router, if any: the gateway for off-link destinations.
    pub router: Option<Ipv4Addr>,
    /// The DNS servers, in the server's order.
    pub dns_servers: Vec<Ipv4Addr>,
    /// The server that granted it (its identifier).
    pub server: Ipv4Addr,
    /// The lease's length (`None`: infinite).
    pub duration: Option<Duration>,
    /// When the lease was granted (the REQUEST's send time, RFC 2131 4.4.1).
    pub granted: Instant,
    /// T1: when renewal starts.
    pub renew_at: Option<Instant>,
    /// T2: when rebinding starts.
    pub rebind_at: Option<Instant>,
    /// When the lease ends.
    pub expires_at: Option<Instant>,
}

/// What changed for the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// An address is bound (first, or again after a renewal: the lease's
    /// fields may have changed).
    Bound(Lease),
    /// The address is gone (expired, or refused by a NAK).
    Lost,
}

/// A message to send, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// The message.
    pub repr: DhcpRepr,
    /// The IP source: 0.0.0.0 before an address is bound.
    pub src: Ipv4Addr,
    /// The IP destination: 255.255.255.255, or the server when renewing
    /// and releasing.
    pub dst: Ipv4Addr,
}

/// The client's state (RFC 2131 figure 5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Sending DISCOVERs, waiting for an OFFER.
    Selecting,
    /// Sending REQUESTs for an offered address.
    Requesting,
    /// Holding a lease.
    Bound,
    /// Past T1: asking the server to extend the lease.
    Renewing,
    /// Past T2: asking any server to extend it.
    Rebinding,
    /// Released: sends nothing more.
    Stopped,
}

/// The DHCPv4 client (see the module docs).
///
/// ```
/// use ustack::dhcp::DhcpClient;
/// use ustack::time::Instant;
/// use ustack::wire::dhcp::MessageType;
/// use ustack::wire::ethernet::MacAddr;
///
/// let mut client = DhcpClient::new(MacAddr([2, 0, 0, 0, 0, 9]), 1);
/// let first = client.poll_transmit(Instant::ZERO).unwrap();
/// assert_eq!(first.repr.message_type, MessageType::Discover);
/// assert!(client.poll_transmit(Instant::ZERO).is_none()); // next one in ~4 s
/// ```
pub struct DhcpClient {
    mac: MacAddr,
    rng: Rng,
    state: State,
    xid: u32,
    /// When the current exchange began (for `secs`).
    started: Instant,
    /// When the next message is due.
    due: Option<Instant>,
    /// The retransmission interval used next.
    rto: Duration,
    /// Messages sent in this state.
    tries: u32,
    /// The offer being requested: (address, server).
    offered: Option<(Ipv4Addr, Ipv4Addr)>,
    /// When the current REQUEST was first sent (the lease starts there).
    requested_at: Instant,
    lease: Option<Lease>,
    events: Vec<Event>,
}

impl DhcpClient {
    /// [`DhcpClient::new`] with the first DISCOVER at a random instant
    /// in the second after `earliest`.
    pub fn new_delayed(mac: MacAddr, seed: u64, earliest: Instant) -> DhcpClient {
        let mut c = DhcpClient::new(mac, seed);
        let wait = Duration::from_micros(c.rng.below(1_000_000));
        c.due = Some(earliest + wait);
        c
    }

    /// A client for the host with `mac`; `seed` drives transaction ids and
    /// jitter. It starts selecting: a DISCOVER is due at once.
    pub fn new(mac: MacAddr, seed: u64) -> DhcpClient {
        let mut rng = Rng::new(seed);
        let xid = rng.next_u64() as u32;
        DhcpClient {
            mac,
            rng,
            state: State::Selecting,
            xid,
            started: Instant::ZERO,
            due: Some(Instant::ZERO),
            rto: FIRST_RTO,
            tries: 0,
            offered: None,
            requested_at: Instant::ZERO,
            lease: None,
            events: Vec::new(),
        }
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The lease held, if any (bound, renewing or rebinding).
    pub fn lease(&self) -> Option<&Lease> {
        self.lease.as_ref()
    }

    /// The next event for the host.
    pub fn poll_event(&mut self) -> Option<Event> {
        if self.events.is_empty() {
            None
        } else {
            Some(self.events.remove(0))
        }
    }

    /// When something is next due (a message, or a lease timer).
    pub fn poll_at(&self) -> Option<Instant> {
        self.due
    }

    /// Starts over from DISCOVER at `now`, dropping a lease held.
    fn restart(&mut self, now: Instant) {
        if self.lease.take().is_some() {
            self.events.push(Event::Lost);
        }
        self.state = State::Selecting;
        self.new_exchange(now);
        self.offered = None;
        self.due = Some(now);
    }

    fn new_exchange(&mut self, now: Instant) {
        self.xid = self.rng.next_u64() as u32;
        self.started = now;
        self.rto = FIRST_RTO;
        self.tries = 0;
    }

    /// The back-off interval, randomised by up to a second either way
    /// (RFC 2131 section 4.1), then doubled for next time up to 64 s.
    fn backoff(&mut self) -> Duration {
        let jitter = Duration::from_micros(self.rng.below(2_000_000));
        let rto = (self.rto + jitter).saturating_sub(Duration::from_secs(1));
        self.rto = (self.rto * 2).min(MAX_RTO);
        rto
    }

    /// The wait before the next renewal or rebinding retransmission: half
    /// the time left to `until`, at least 60 s, but not past `until`.
    fn renew_wait(now: Instant, until: Instant) -> Instant {
        let left = until.saturating_duration_since(now);
        (now + (left / 2).max(MIN_RENEW_RTO)).min(until)
    }

    fn message(&self, now: Instant, kind: MessageType) -> DhcpRepr {
        let mut r = DhcpRepr::client(kind, self.xid, self.mac);
        let secs = now.saturating_duration_since(self.started).as_secs();
        r.secs = u16::try_from(secs).unwrap_or(u16::MAX);
        r
    }

    /// The message due at `now`, if one is; also runs the lease timers.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        if self.due.is_none_or(|d| now < d) {
            return None;
        }
        let broadcast = Ipv4Addr::BROADCAST;
        match self.state {
            State::Stopped => {
                self.due = None;
                None
            }
            State::Selecting => {
                if self.tries == 0 {
                    self.started = now;
                }
                self.tries += 1;
                self.due = Some(now + self.backoff());
                Some(Transmit {
                    repr: self.message(now, MessageType::Discover),
                    src: Ipv4Addr::UNSPECIFIED,
                    dst: broadcast,
                })
            }
            State::Requesting => {
                let (addr, server) = self.offered?;
                if self.tries >= REQUEST_TRIES {
                    log::info!("dhcp: no answer to requests for {addr}; starting over");
                    self.restart(now);
                    return self.poll_transmit(now);
                }
                if self.tries == 0 {
                    self.requested_at = now;
                }
                self.tries += 1;
                self.due = Some(now + self.backoff());
                let mut r = self.message(now, MessageType::Request);
                r.requested_ip = Some(addr);
                r.server_id = Some(server);
                Some(Transmit {
                    repr: r,
                    src: Ipv4Addr::UNSPECIFIED,
                    dst: broadcast,
                })
            }
            State::Bound | State::Renewing | State::Rebinding => self.lease_timers(now),
        }
    }

    /// In a bound state at a deadline: expiry, T2, T1, or a retransmission.
    fn lease_timers(&mut self, now: Instant) -> Option<Transmit> {
        let lease = self.lease.clone()?;
        if lease.expires_at.is_some_and(|t| now >= t) {
            log::warn!("dhcp: the lease of {} expired", lease.addr.addr);
            self.restart(now);
            return self.poll_transmit(now);
        }
        let rebind = lease.rebind_at.is_some_and(|t| now >= t);
        if rebind && self.state != State::Rebinding {
            self.state = State::Rebinding;
            self.new_exchange(now);
            self.requested_at = now;
        } else if !rebind && self.state == State::Bound {
            self.state = State::Renewing;
            self.new_exchange(now);
            self.requested_at = now;
        }
        // RFC 2131 4.4.5: the time left to T2 (renewing) or to expiry
        // (rebinding); an infinite lease never gets here.
        let until = match self.state {
            State::Renewing => lease.rebind_at,
            _ => lease.expires_at,
        };
        self.due = until.map(|u| DhcpClient::renew_wait(now, u));
        self.tries += 1;
        let mut r = self.message(now, MessageType::Request);
        r.client_addr = lease.addr.addr;
        let dst = if self.state == State::Renewing {
            lease.server
        } else {
            Ipv4Addr::BROADCAST
        };
        Some(Transmit {
            repr: r,
            src: lease.addr.addr,
            dst,
        })
    }

    /// A message received at `now` on the client port.
    pub fn handle(&mut self, now: Instant, msg: &DhcpRepr) {
        if msg.xid != self.xid || msg.client_mac != self.mac {
            return;
        }
        if msg.client_id.is_some_and(|id| id != self.mac) {
            return;
        }
        match (self.state, msg.message_type) {
            (State::Selecting, MessageType::Offer) => {
                let (Some(server), addr) = (msg.server_id, msg.your_addr) else {
                    return;
                };
                if !usable(addr) {
                    return;
                }
                log::debug!("dhcp: {server} offers {addr}");
                self.offered = Some((addr, server));
                self.state = State::Requesting;
                self.rto = FIRST_RTO;
                self.tries = 0;
                self.due = Some(now);
            }
            (State::Requesting | State::Renewing | State::Rebinding, MessageType::Ack) => {
                self.bind(msg);
            }
            (State::Requesting | State::Renewing | State::Rebinding, MessageType::Nak) => {
                // A NAK must come from the server we asked, when we named
                // one; while rebinding any server may refuse.
                let asked = match self.state {
                    State::Requesting => self.offered.map(|o| o.1),
                    State::Renewing => self.lease.as_ref().map(|l| l.server),
                    _ => None,
                };
                if asked.is_some_and(|s| msg.server_id.is_some_and(|id| id != s)) {
                    return;
                }
                log::warn!("dhcp: the server refused our request (NAK); starting over");
                self.restart(now);
            }
            _ => {}
        }
    }

    fn bind(&mut self, msg: &DhcpRepr) {
        let addr = msg.your_addr;
        if !usable(addr) {
            return;
        }
        let server = msg
            .server_id
            .or(self.offered.map(|o| o.1))
            .or(self.lease.as_ref().map(|l| l.server))
            .unwrap_or(Ipv4Addr::UNSPECIFIED);
        let granted = self.requested_at;
        let duration = match msg.lease_time {
            Some(u32::MAX) => None,
            Some(s) => Some(Duration::from_secs(u64::from(s)).max(MIN_LEASE)),
            // RFC 2131 4.3.1 says the ACK carries one; a server that
            // leaves it out gets the shortest we accept, so we ask again.
            None => Some(MIN_LEASE),
        };
        let (mut renew_at, mut rebind_at, mut expires_at) = (None, None, None);
        if let Some(d) = duration {
            let secs = |s: Option<u32>, default: Duration| {
                s.map(|s| Duration::from_secs(u64::from(s)))
                    .filter(|t| *t < d)
                    .unwrap_or(default)
            };
            let t2 = secs(msg.rebinding_time, d * 7 / 8);
            let t1 = secs(msg.renewal_time, d / 2).min(t2);
            renew_at = Some(granted + t1);
            rebind_at = Some(granted + t2);
            expires_at = Some(granted + d);
        }
        let lease = Lease {
            addr: Prefix {
                addr,
                len: msg.prefix_len().unwrap_or(24),
            },
            router: msg.router.filter(|r| usable(*r)),
            dns_servers: msg.dns_servers.clone(),
            server,
            duration,
            granted,
            renew_at,
            rebind_at,
            expires_at,
        };
        if self.lease.as_ref().is_some_and(|l| l.addr.addr != addr) {
            // The server gave a different address on renewal: the old one
            // goes first.
            self.events.push(Event::Lost);
        }
        log::info!(
            "dhcp: bound {}/{} from {server} for {}",
            lease.addr.addr,
            lease.addr.len,
            duration.map_or("ever".to_string(), |d| format!("{} s", d.as_secs()))
        );
        self.state = State::Bound;
        self.offered = None;
        self.due = renew_at;
        self.events.push(Event::Bound(lease.clone()));
        self.lease = Some(lease);
    }

    /// Gives the address back (RFC 2131 4.4.6): the RELEASE to unicast to
    /// the server, if a lease is held. The client then stops.
    pub fn release(&mut self, now: Instant) -> Option<Transmit> {
        self.state = State::Stopped;
        self.due = None;
        let lease = self.lease.take()?;
        self.events.push(Event::Lost);
        self.new_exchange(now);
        let mut r = self.message(now, MessageType::Release);
        r.secs = 0;
        r.client_addr = lease.addr.addr;
        r.server_id = Some(lease.server);
        Some(Transmit {
            repr: r,
            src: lease.addr.addr,
            dst: lease.server,
        })
    }
}

/// A unicast address a host may take.
fn usable(a: Ipv4Addr) -> bool {
    !(a.is_unspecified() || a.is_broadcast() || a.is_multicast() || a.is_loopback())
}

#[cfg(test)]
mod tests;
