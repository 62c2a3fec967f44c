//! DHCPv4 messages (RFC 2131, the BOOTP layout of RFC 951) and the options
//! of RFC 2132 that the client uses.
//!
//! Owns the message layout: the 236-byte fixed part, the magic cookie and
//! the options that follow it. Must not touch: what a client does with a
//! message (that is `crate::dhcp`), the UDP and IP headers around it.
//! Options the client does not use are skipped when parsing; option
//! overloading (option 52, options carried in `sname`/`file`) is not
//! followed, and a message without a DHCP message type (plain BOOTP) is
//! [`Error::Unsupported`].

use super::bytes;
use super::ethernet::MacAddr;
use super::{Error, Ipv4Addr, Result};

mod field {
    pub const OP: usize = 0;
    pub const HTYPE: usize = 1;
    pub const HLEN: usize = 2;
    pub const HOPS: usize = 3;
    pub const XID: usize = 4;
    pub const SECS: usize = 8;
    pub const FLAGS: usize = 10;
    pub const CIADDR: usize = 12;
    pub const YIADDR: usize = 16;
    pub const SIADDR: usize = 20;
    pub const GIADDR: usize = 24;
    pub const CHADDR: usize = 28;
    pub const MAGIC: usize = 236;
    pub const OPTIONS: usize = 240;
}

/// The UDP port servers listen on.
pub const SERVER_PORT: u16 = 67;
/// The UDP port clients listen on.
pub const CLIENT_PORT: u16 = 68;
/// The fixed part and the magic cookie: where options start.
pub const HEADER_LEN: usize = field::OPTIONS;
/// The shortest message emitted: RFC 1542 section 2.1's 300-byte BOOTP
/// minimum, which some relays and servers still expect.
pub const MIN_LEN: usize = 300;
/// RFC 2131 section 3's magic cookie, 99.130.83.99.
pub const MAGIC_COOKIE: u32 = 0x6382_5363;
/// The most DNS servers kept from option 6 (glibc's `MAXNS`).
pub const MAX_DNS_SERVERS: usize = 3;

const OP_REQUEST: u8 = 1;
const OP_REPLY: u8 = 2;
const HTYPE_ETHERNET: u8 = 1;
/// The broadcast bit of `flags` (RFC 2131 figure 2).
const FLAG_BROADCAST: u16 = 0x8000;

mod opt {
    pub const PAD: u8 = 0;
    pub const SUBNET_MASK: u8 = 1;
    pub const ROUTER: u8 = 3;
    pub const DNS: u8 = 6;
    pub const REQUESTED_IP: u8 = 50;
    pub const LEASE_TIME: u8 = 51;
    pub const MESSAGE_TYPE: u8 = 53;
    pub const SERVER_ID: u8 = 54;
    pub const PARAMETER_LIST: u8 = 55;
    pub const MAX_SIZE: u8 = 57;
    pub const RENEWAL_TIME: u8 = 58;
    pub const REBINDING_TIME: u8 = 59;
    pub const CLIENT_ID: u8 = 61;
    pub const END: u8 = 255;
}

/// What a client asks the server for in option 55: subnet mask, router,
/// DNS servers, lease time, server identifier, T1, T2.
const PARAMETERS: [u8; 7] = [
    opt::SUBNET_MASK,
    opt::ROUTER,
    opt::DNS,
    opt::LEASE_TIME,
    opt::SERVER_ID,
    opt::RENEWAL_TIME,
    opt::REBINDING_TIME,
];

/// The DHCP message type (option 53, RFC 2132 section 9.6).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum MessageType {
    /// 1: a client looks for servers.
    Discover,
    /// 2: a server offers an address.
    Offer,
    /// 3: a client asks for (or renews) an address.
    Request,
    /// 4: a client found the address in use.
    Decline,
    /// 5: a server confirms a lease.
    Ack,
    /// 6: a server refuses a request.
    Nak,
    /// 7: a client gives its address back.
    Release,
    /// 8: a client with an address asks for parameters.
    Inform,
}

impl MessageType {
    fn from_byte(b: u8) -> Option<MessageType> {
        Some(match b {
            1 => MessageType::Discover,
            2 => MessageType::Offer,
            3 => MessageType::Request,
            4 => MessageType::Decline,
            5 => MessageType::Ack,
            6 => MessageType::Nak,
            7 => MessageType::Release,
            8 => MessageType::Inform,
            _ => return None,
        })
    }

    fn byte(self) -> u8 {
        match self {
            MessageType::Discover => 1,
            MessageType::Offer => 2,
            MessageType::Request => 3,
            MessageType::Decline => 4,
            MessageType::Ack => 5,
            MessageType::Nak => 6,
            MessageType::Release => 7,
            MessageType::Inform => 8,
        }
    }

    /// Whether a client sends it (BOOTREQUEST) rather than a server.
    pub fn from_client(self) -> bool {
        !matches!(
            self,
            MessageType::Offer | MessageType::Ack | MessageType::Nak
        )
    }
}

/// A view of a DHCP message (the UDP payload).
#[derive(Clone, Copy, Debug)]
pub struct DhcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> DhcpPacket<T> {
    /// A view without checks; accessors on a short buffer read zeros.
    pub const fn new_unchecked(buffer: T) -> Self {
        DhcpPacket { buffer }
    }

    /// A view of a message with the whole fixed part, Ethernet hardware
    /// addresses (type 1, length 6) and the magic cookie.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = DhcpPacket { buffer };
        if p.buf().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if p.magic() != MAGIC_COOKIE {
            // A BOOTP message without options, or not BOOTP at all.
            return Err(Error::Unsupported);
        }
        if !matches!(p.op(), OP_REQUEST | OP_REPLY) {
            return Err(Error::Malformed);
        }
        if p.hardware_type() != HTYPE_ETHERNET || p.hardware_len() != 6 {
            return Err(Error::Unsupported);
        }
        Ok(p)
    }

    fn buf(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// `op`: 1 BOOTREQUEST, 2 BOOTREPLY.
    pub fn op(&self) -> u8 {
        bytes::u8_at(self.buf(), field::OP)
    }

    /// `htype`: the hardware address type (1, Ethernet).
    pub fn hardware_type(&self) -> u8 {
        bytes::u8_at(self.buf(), field::HTYPE)
    }

    /// `hlen`: the hardware address length.
    pub fn hardware_len(&self) -> u8 {
        bytes::u8_at(self.buf(), field::HLEN)
    }

    /// `hops`: relay agents crossed.
    pub fn hops(&self) -> u8 {
        bytes::u8_at(self.buf(), field::HOPS)
    }

    /// `xid`: the transaction id the client chose.
    pub fn xid(&self) -> u32 {
        bytes::u32_at(self.buf(), field::XID)
    }

    /// `secs`: seconds since the client began the exchange.
    pub fn secs(&self) -> u16 {
        bytes::u16_at(self.buf(), field::SECS)
    }

    /// Whether the broadcast flag is set.
    pub fn broadcast(&self) -> bool {
        bytes::u16_at(self.buf(), field::FLAGS) & FLAG_BROADCAST != 0
    }

    /// `ciaddr`: the client's address, when it has one.
    pub fn client_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(bytes::array_at::<4>(self.buf(), field::CIADDR))
    }

    /// `yiaddr`: the address the server gives the client.
    pub fn your_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(bytes::array_at::<4>(self.buf(), field::YIADDR))
    }

    /// `siaddr`: the next server (for booting).
    pub fn server_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(bytes::array_at::<4>(self.buf(), field::SIADDR))
    }

    /// `giaddr`: the relay agent.
    pub fn relay_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(bytes::array_at::<4>(self.buf(), field::GIADDR))
    }

    /// `chaddr`: the client's MAC (the first 6 of 16 bytes).
    pub fn client_mac(&self) -> MacAddr {
        MacAddr(bytes::array_at(self.buf(), field::CHADDR))
    }

    /// The magic cookie.
    pub fn magic(&self) -> u32 {
        bytes::u32_at(self.buf(), field::MAGIC)
    }

    /// The options, after the cookie.
    pub fn options(&self) -> &[u8] {
        self.buf().get(field::OPTIONS..).unwrap_or(&[])
    }
}

/// The options of a message, walked one at a time: `(code, data)`. Pads
/// are skipped; the walk ends at the end option or the end of the buffer.
/// An option whose length runs past the buffer yields `Err(Malformed)`
/// and ends the walk.
pub struct Options<'a> {
    rest: &'a [u8],
}

impl<'a> Options<'a> {
    /// The options in `buf` (the bytes after the magic cookie).
    pub fn new(buf: &'a [u8]) -> Options<'a> {
        Options { rest: buf }
    }
}

impl<'a> Iterator for Options<'a> {
    type Item = Result<(u8, &'a [u8])>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (&code, after) = self.rest.split_first()?;
            match code {
                opt::PAD => self.rest = after,
                opt::END => {
                    self.rest = &[];
                    return None;
                }
                _ => {
                    let parsed = after.split_first().and_then(|(&len, data)| {
                        let len = usize::from(len);
                        (data.len() >= len).then(|| (&data[..len], &data[len..]))
                    });
                    return match parsed {
                        Some((data, rest)) => {
                            self.rest = rest;
                            Some(Ok((code, data)))
                        }
                        None => {
                            self.rest = &[];
                            Some(Err(Error::Malformed))
                        }
                    };
                }
            }
        }
    }
}

/// A DHCP message as plain data: the fields and options this client
/// sends or reads.
///
/// ```
/// use std::net::Ipv4Addr;
/// use ustack::wire::dhcp::{DhcpPacket, DhcpRepr, MessageType};
/// use ustack::wire::ethernet::MacAddr;
///
/// let mac = MacAddr([2, 0, 0, 0, 0, 7]);
/// let discover = DhcpRepr::client(MessageType::Discover, 0x1234_5678, mac);
/// let mut buf = vec![0u8; discover.buffer_len()];
/// discover.emit(&mut buf).unwrap();
/// let back = DhcpRepr::parse(&DhcpPacket::new_checked(&buf[..]).unwrap()).unwrap();
/// assert_eq!(back.message_type, MessageType::Discover);
/// assert_eq!(back.client_id, Some(mac));
/// assert_eq!(back.xid, 0x1234_5678);
/// ```
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct DhcpRepr {
    /// Option 53.
    pub message_type: MessageType,
    /// `xid`.
    pub xid: u32,
    /// `secs`.
    pub secs: u16,
    /// The broadcast flag: the client cannot receive unicast before it has
    /// its address.
    pub broadcast: bool,
    /// `ciaddr`.
    pub client_addr: Ipv4Addr,
    /// `yiaddr`.
    pub your_addr: Ipv4Addr,
    /// `siaddr`.
    pub server_addr: Ipv4Addr,
    /// `giaddr`.
    pub relay_addr: Ipv4Addr,
    /// `chaddr`.
    pub client_mac: MacAddr,
    /// Option 61 of hardware type 1 (Ethernet): the client identifier made
    /// from a MAC. Another kind of identifier parses as `None`.
    pub client_id: Option<MacAddr>,
    /// Option 54: the server identifier.
    pub server_id: Option<Ipv4Addr>,
    /// Option 50: the address the client asks for.
    pub requested_ip: Option<Ipv4Addr>,
    /// Option 1.
    pub subnet_mask: Option<Ipv4Addr>,
    /// Option 3: the first router.
    pub router: Option<Ipv4Addr>,
    /// Option 6: up to [`MAX_DNS_SERVERS`] DNS servers, in order.
    pub dns_servers: Vec<Ipv4Addr>,
    /// Option 51: the lease, in seconds (`u32::MAX` is infinite).
    pub lease_time: Option<u32>,
    /// Option 58: T1, in seconds.
    pub renewal_time: Option<u32>,
    /// Option 59: T2, in seconds.
    pub rebinding_time: Option<u32>,
    /// Option 57: the largest message the client accepts.
    pub max_size: Option<u16>,
    /// Whether to send option 55 (the client's parameter request list).
    pub request_parameters: bool,
}

impl DhcpRepr {
    /// A client message of `message_type` with transaction `xid` from
    /// `mac`, with the client identifier made from `mac` and, for a
    /// discover or request, the parameter request list; every address zero.
    pub fn client(message_type: MessageType, xid: u32, mac: MacAddr) -> DhcpRepr {
        let asks = matches!(message_type, MessageType::Discover | MessageType::Request);
        DhcpRepr {
            message_type,
            xid,
            secs: 0,
            broadcast: false,
            client_addr: Ipv4Addr::UNSPECIFIED,
            your_addr: Ipv4Addr::UNSPECIFIED,
            server_addr: Ipv4Addr::UNSPECIFIED,
            relay_addr: Ipv4Addr::UNSPECIFIED,
            client_mac: mac,
            client_id: Some(mac),
            server_id: None,
            requested_ip: None,
            subnet_mask: None,
            router: None,
            dns_servers: Vec::new(),
            lease_time: None,
            renewal_time: None,
            rebinding_time: None,
            max_size: asks.then_some(1500),
            request_parameters: asks,
        }
    }

    /// Parses a checked view. A message without a message type is
    /// [`Error::Unsupported`] (BOOTP); an unknown message type, a message
    /// type that does not match `op`, or an option of the wrong length is
    /// [`Error::Malformed`].
    pub fn parse<T: AsRef<[u8]>>(packet: &DhcpPacket<T>) -> Result<DhcpRepr> {
        let mut repr = DhcpRepr {
            message_type: MessageType::Discover,
            xid: packet.xid(),
            secs: packet.secs(),
            broadcast: packet.broadcast(),
            client_addr: packet.client_addr(),
            your_addr: packet.your_addr(),
            server_addr: packet.server_addr(),
            relay_addr: packet.relay_addr(),
            client_mac: packet.client_mac(),
            client_id: None,
            server_id: None,
            requested_ip: None,
            subnet_mask: None,
            router: None,
            dns_servers: Vec::new(),
            lease_time: None,
            renewal_time: None,
            rebinding_time: None,
            max_size: None,
            request_parameters: false,
        };
        let mut message_type = None;
        let addr = |data: &[u8]| -> Result<Ipv4Addr> {
            <[u8; 4]>::try_from(data)
                .map(Ipv4Addr::from)
                .map_err(|_| Error::Malformed)
        };
        let secs = |data: &[u8]| -> Result<u32> {
            <[u8; 4]>::try_from(data)
                .map(u32::from_be_bytes)
                .map_err(|_| Error::Malformed)
        };
        for option in Options::new(packet.options()) {
            let (code, data) = option?;
            match code {
                opt::MESSAGE_TYPE => {
                    let &[b] = data else {
                        return Err(Error::Malformed);
                    };
                    message_type = Some(MessageType::from_byte(b).ok_or(Error::Malformed)?);
                }
                opt::SUBNET_MASK => repr.subnet_mask = Some(addr(data)?),
                opt::ROUTER => {
                    if data.is_empty() || data.len() % 4 != 0 {
                        return Err(Error::Malformed);
                    }
                    repr.router = Some(addr(&data[..4])?);
                }
                opt::DNS => {
                    if data.is_empty() || data.len() % 4 != 0 {
                        return Err(Error::Malformed);
                    }
                    repr.dns_servers = data
                        .chunks_exact(4)
                        .take(MAX_DNS_SERVERS)
                        .filter_map(|c| addr(c).ok())
                        .collect();
                }
                opt::REQUESTED_IP => repr.requested_ip = Some(addr(data)?),
                opt::LEASE_TIME => repr.lease_time = Some(secs(data)?),
                opt::SERVER_ID => repr.server_id = Some(addr(data)?),
                opt::PARAMETER_LIST => repr.request_parameters = true,
                opt::MAX_SIZE => {
                    let &[a, b] = data else {
                        return Err(Error::Malformed);
                    };
                    repr.max_size = Some(u16::from_be_bytes([a, b]));
                }
                opt::RENEWAL_TIME => repr.renewal_time = Some(secs(data)?),
                opt::REBINDING_TIME => repr.rebinding_time = Some(secs(data)?),
                opt::CLIENT_ID => {
                    if let [HTYPE_ETHERNET, mac @ ..] = data
                        && let Ok(mac) = <[u8; 6]>::try_from(mac)
                    {
                        repr.client_id = Some(MacAddr(mac));
                    }
                }
                _ => {}
            }
        }
        repr.message_type = message_type.ok_or(Error::Unsupported)?;
        let from_client = packet.op() == OP_REQUEST;
        if repr.message_type.from_client() != from_client {
            return Err(Error::Malformed);
        }
        Ok(repr)
    }

    /// The options' length, the end option included.
    fn options_len(&self) -> usize {
        let addr = |a: Option<Ipv4Addr>| if a.is_some() { 6 } else { 0 };
        let secs = |s: Option<u32>| if s.is_some() { 6 } else { 0 };
        3 + addr(self.server_id)
            + addr(self.requested_ip)
            + addr(self.subnet_mask)
            + addr(self.router)
            + if self.dns_servers.is_empty() {
                0
            } else {
                2 + 4 * self.dns_servers.len().min(MAX_DNS_SERVERS)
            }
            + secs(self.lease_time)
            + secs(self.renewal_time)
            + secs(self.rebinding_time)
            + if self.max_size.is_some() { 4 } else { 0 }
            + if self.client_id.is_some() { 9 } else { 0 }
            + if self.request_parameters {
                2 + PARAMETERS.len()
            } else {
                0
            }
            + 1
    }

    /// The length [`DhcpRepr::emit`] writes: at least [`MIN_LEN`].
    pub fn buffer_len(&self) -> usize {
        (HEADER_LEN + self.options_len()).max(MIN_LEN)
    }

    /// Writes the message at the start of `buf` (zeroing what it does not
    /// set: `sname`, `file`, the padding) and returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let len = self.buffer_len();
        let b = buf.get_mut(..len).ok_or(Error::Truncated)?;
        b.fill(0);
        let op = if self.message_type.from_client() {
            OP_REQUEST
        } else {
            OP_REPLY
        };
        bytes::set_u8(b, field::OP, op);
        bytes::set_u8(b, field::HTYPE, HTYPE_ETHERNET);
        bytes::set_u8(b, field::HLEN, 6);
        bytes::set_u32(b, field::XID, self.xid);
        bytes::set_u16(b, field::SECS, self.secs);
        let flags = if self.broadcast { FLAG_BROADCAST } else { 0 };
        bytes::set_u16(b, field::FLAGS, flags);
        bytes::set_bytes(b, field::CIADDR, &self.client_addr.octets());
        bytes::set_bytes(b, field::YIADDR, &self.your_addr.octets());
        bytes::set_bytes(b, field::SIADDR, &self.server_addr.octets());
        bytes::set_bytes(b, field::GIADDR, &self.relay_addr.octets());
        bytes::set_bytes(b, field::CHADDR, &self.client_mac.0);
        bytes::set_u32(b, field::MAGIC, MAGIC_COOKIE);
        let mut at = field::OPTIONS;
        let mut put = |code: u8, data: &[u8]| {
            bytes::set_u8(b, at, code);
            bytes::set_u8(b, at + 1, data.len() as u8);
            bytes::set_bytes(b, at + 2, data);
            at += 2 + data.len();
        };
        put(opt::MESSAGE_TYPE, &[self.message_type.byte()]);
        if let Some(mac) = self.client_id {
            let mut id = [HTYPE_ETHERNET; 7];
            id[1..].copy_from_slice(&mac.0);
            put(opt::CLIENT_ID, &id);
        }
        for (code, a) in [
            (opt::REQUESTED_IP, self.requested_ip),
            (opt::SERVER_ID, self.server_id),
            (opt::SUBNET_MASK, self.subnet_mask),
            (opt::ROUTER, self.router),
        ] {
            if let Some(a) = a {
                put(code, &a.octets());
            }
        }
        if !self.dns_servers.is_empty() {
            let list: Vec<u8> = self
                .dns_servers
                .iter()
                .take(MAX_DNS_SERVERS)
                .flat_map(|a| a.octets())
                .collect();
            put(opt::DNS, &list);
        }
        for (code, s) in [
            (opt::LEASE_TIME, self.lease_time),
            (opt::RENEWAL_TIME, self.renewal_time),
            (opt::REBINDING_TIME, self.rebinding_time),
        ] {
            if let Some(s) = s {
                put(code, &s.to_be_bytes());
            }
        }
        if let Some(m) = self.max_size {
            put(opt::MAX_SIZE, &m.to_be_bytes());
        }
        if self.request_parameters {
            put(opt::PARAMETER_LIST, &PARAMETERS);
        }
        bytes::set_u8(b, at, opt::END);
        Ok(len)
    }

    /// The prefix length the subnet mask says, if it is a valid mask (ones
    /// then zeros).
    pub fn prefix_len(&self) -> Option<u8> {
        let m = u32::from(self.subnet_mask?);
        let ones = m.leading_ones();
        (m.checked_shl(ones).unwrap_or(0) == 0).then_some(ones as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An OFFER, hand-built with the options in the order dnsmasq sends
    /// them (the UDP payload): 10.99.0.57 offered to 02:00:00:00:00:07 for
    /// 2 minutes, server 10.99.0.1, mask 255.255.255.0, router 10.99.0.1,
    /// DNS 10.99.0.1 and 10.99.0.2.
    fn offer_bytes() -> Vec<u8> {
        let mut b = vec![0u8; 240];
        b[0] = 2;
        b[1] = 1;
        b[2] = 6;
        b[4..8].copy_from_slice(&0xdead_beefu32.to_be_bytes());
        b[16..20].copy_from_slice(&[10, 99, 0, 57]);
        b[20..24].copy_from_slice(&[10, 99, 0, 1]);
        b[28..34].copy_from_slice(&[2, 0, 0, 0, 0, 7]);
        b[236..240].copy_from_slice(&[99, 130, 83, 99]);
        b.extend_from_slice(&[
            53, 1, 2, // offer
            54, 4, 10, 99, 0, 1, // server id
            51, 4, 0, 0, 0, 120, // lease
            58, 4, 0, 0, 0, 60, // T1
            59, 4, 0, 0, 0, 105, // T2
            1, 4, 255, 255, 255, 0, // mask
            28, 4, 10, 99, 0, 255, // broadcast (not used)
            3, 4, 10, 99, 0, 1, // router
            6, 8, 10, 99, 0, 1, 10, 99, 0, 2, // dns
            0, 0, // pads
            255,
        ]);
        b
    }

    #[test]
    fn parses_an_offer_with_every_option_the_client_uses() {
        let b = offer_bytes();
        let r = DhcpRepr::parse(&DhcpPacket::new_checked(&b[..]).unwrap()).unwrap();
        assert_eq!(r.message_type, MessageType::Offer);
        assert_eq!(r.xid, 0xdead_beef);
        assert_eq!(r.your_addr, Ipv4Addr::new(10, 99, 0, 57));
        assert_eq!(r.server_id, Some(Ipv4Addr::new(10, 99, 0, 1)));
        assert_eq!(r.client_mac, MacAddr([2, 0, 0, 0, 0, 7]));
        assert_eq!(r.lease_time, Some(120));
        assert_eq!(r.renewal_time, Some(60));
        assert_eq!(r.rebinding_time, Some(105));
        assert_eq!(r.prefix_len(), Some(24));
        assert_eq!(r.router, Some(Ipv4Addr::new(10, 99, 0, 1)));
        assert_eq!(
            r.dns_servers,
            vec![Ipv4Addr::new(10, 99, 0, 1), Ipv4Addr::new(10, 99, 0, 2)]
        );
        assert!(!r.broadcast);
    }

    #[test]
    fn emit_then_parse_round_trips_a_request() {
        let mac = MacAddr([2, 1, 2, 3, 4, 5]);
        let mut r = DhcpRepr::client(MessageType::Request, 7, mac);
        r.requested_ip = Some(Ipv4Addr::new(192, 168, 3, 9));
        r.server_id = Some(Ipv4Addr::new(192, 168, 3, 1));
        r.broadcast = true;
        r.secs = 12;
        let mut buf = vec![0xaau8; r.buffer_len() + 10];
        let n = r.emit(&mut buf).unwrap();
        assert_eq!(n, MIN_LEN);
        let p = DhcpPacket::new_checked(&buf[..n]).unwrap();
        assert_eq!(p.op(), 1);
        assert!(p.broadcast());
        assert_eq!(DhcpRepr::parse(&p).unwrap(), r);
        // The parameter request list is what the client needs.
        let prl = Options::new(p.options())
            .map(|o| o.unwrap())
            .find(|(c, _)| *c == 55)
            .unwrap();
        assert_eq!(prl.1, &[1, 3, 6, 51, 54, 58, 59]);
        // The client identifier is type 1 then the MAC (RFC 2132 9.14).
        let id = Options::new(p.options())
            .map(|o| o.unwrap())
            .find(|(c, _)| *c == 61)
            .unwrap();
        assert_eq!(id.1, &[1, 2, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn emit_into_a_short_buffer_is_truncated() {
        let r = DhcpRepr::client(MessageType::Discover, 1, MacAddr([2, 0, 0, 0, 0, 1]));
        let mut buf = vec![0u8; r.buffer_len() - 1];
        assert_eq!(r.emit(&mut buf), Err(Error::Truncated));
    }

    #[test]
    fn malformed_messages_are_errors_not_panics() {
        let good = offer_bytes();
        let parse = |b: &[u8]| DhcpPacket::new_checked(b).and_then(|p| DhcpRepr::parse(&p));
        // Every truncation: the fixed part short, or an option cut.
        for n in 0..good.len() {
            let _ = parse(&good[..n]);
        }
        assert_eq!(parse(&good[..100]).unwrap_err(), Error::Truncated);
        // Cut inside the DNS option: its length runs past the end.
        let dns_at = good.iter().rposition(|&b| b == 6).unwrap();
        assert_eq!(parse(&good[..dns_at + 4]).unwrap_err(), Error::Malformed);
        // No magic cookie: BOOTP.
        let mut b = good.clone();
        b[236] = 0;
        assert_eq!(parse(&b).unwrap_err(), Error::Unsupported);
        // A bad op.
        let mut b = good.clone();
        b[0] = 9;
        assert_eq!(parse(&b).unwrap_err(), Error::Malformed);
        // Not Ethernet.
        let mut b = good.clone();
        b[1] = 6;
        assert_eq!(parse(&b).unwrap_err(), Error::Unsupported);
        // An offer carried as a BOOTREQUEST.
        let mut b = good.clone();
        b[0] = 1;
        assert_eq!(parse(&b).unwrap_err(), Error::Malformed);
        // An unknown message type, and one of the wrong length.
        let mut b = good.clone();
        b[242] = 42;
        assert_eq!(parse(&b).unwrap_err(), Error::Malformed);
        let mut b = good.clone();
        b[241] = 2;
        assert!(parse(&b).is_err());
        // No message type at all.
        let mut b = good.clone();
        b[240] = 0;
        b[241] = 0;
        b[242] = 0;
        assert_eq!(parse(&b).unwrap_err(), Error::Unsupported);
        // A lease time of 3 bytes.
        let mut b = good[..240].to_vec();
        b.extend_from_slice(&[53, 1, 2, 51, 3, 0, 0, 1, 255]);
        assert_eq!(parse(&b).unwrap_err(), Error::Malformed);
        // A router list of 5 bytes.
        let mut b = good[..240].to_vec();
        b.extend_from_slice(&[53, 1, 2, 3, 5, 1, 2, 3, 4, 5, 255]);
        assert_eq!(parse(&b).unwrap_err(), Error::Malformed);
    }

    #[test]
    fn options_after_the_end_option_are_ignored_and_missing_end_is_tolerated() {
        let mut b = offer_bytes();
        b.extend_from_slice(&[51, 4]); // junk after END
        assert!(DhcpRepr::parse(&DhcpPacket::new_checked(&b[..]).unwrap()).is_ok());
        let mut b = offer_bytes();
        b.pop(); // no END
        let r = DhcpRepr::parse(&DhcpPacket::new_checked(&b[..]).unwrap()).unwrap();
        assert_eq!(r.lease_time, Some(120));
    }

    #[test]
    fn dns_servers_are_bounded() {
        let mut b = offer_bytes()[..240].to_vec();
        b.extend_from_slice(&[53, 1, 5, 6, 20]);
        for i in 0..5u8 {
            b.extend_from_slice(&[10, 0, 0, i]);
        }
        b.push(255);
        let r = DhcpRepr::parse(&DhcpPacket::new_checked(&b[..]).unwrap()).unwrap();
        assert_eq!(r.dns_servers.len(), MAX_DNS_SERVERS);
        assert_eq!(r.dns_servers[2], Ipv4Addr::new(10, 0, 0, 2));
    }

    #[test]
    fn prefix_len_only_for_contiguous_masks() {
        let mut r = DhcpRepr::client(MessageType::Ack, 0, MacAddr::ZERO);
        for (mask, want) in [
            ([255, 255, 255, 0], Some(24)),
            ([255, 255, 255, 255], Some(32)),
            ([0, 0, 0, 0], Some(0)),
            ([255, 255, 240, 0], Some(20)),
            ([255, 0, 255, 0], None),
        ] {
            r.subnet_mask = Some(Ipv4Addr::from(mask));
            assert_eq!(r.prefix_len(), want, "{mask:?}");
        }
    }
}
