//! Packets an attacker writes by hand, independent of the stack's own
//! `wire` code (so a bug there cannot hide itself): IPv4 and IPv6 headers
//! (with fragments), TCP with arbitrary option bytes, ICMP errors and
//! echo requests, and a parser for what comes back.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;
pub const ACK: u8 = 0x10;

pub const PROTO_ICMP: u8 = 1;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;
pub const PROTO_FRAG6: u8 = 44;
pub const PROTO_ICMP6: u8 = 58;

fn sum16(mut acc: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [b] = chunks.remainder() {
        acc += u32::from(*b) << 8;
    }
    acc
}

fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

pub fn checksum(data: &[u8]) -> u16 {
    fold(sum16(0, data))
}

/// The transport checksum over the pseudo-header of `src`/`dst`.
pub fn pseudo_checksum(src: IpAddr, dst: IpAddr, proto: u8, data: &[u8]) -> u16 {
    let mut acc = 0;
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            acc = sum16(acc, &s.octets());
            acc = sum16(acc, &d.octets());
            acc += u32::from(proto) + data.len() as u32;
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            acc = sum16(acc, &s.octets());
            acc = sum16(acc, &d.octets());
            acc += data.len() as u32 + u32::from(proto);
        }
        _ => panic!("mixed families"),
    }
    fold(sum16(acc, data))
}

/// IPv4 header fields an attack may set.
#[derive(Clone, Copy)]
pub struct V4 {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub proto: u8,
    pub ident: u16,
    pub dont_frag: bool,
    pub more_frags: bool,
    /// In bytes; must be a multiple of 8 unless the attack wants otherwise.
    pub frag_offset: usize,
    pub ttl: u8,
}

impl V4 {
    pub fn new(src: Ipv4Addr, dst: Ipv4Addr, proto: u8) -> V4 {
        V4 {
            src,
            dst,
            proto,
            ident: 1,
            dont_frag: false,
            more_frags: false,
            frag_offset: 0,
            ttl: 64,
        }
    }

    pub fn packet(&self, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0u8; 20 + payload.len()];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
        p[4..6].copy_from_slice(&self.ident.to_be_bytes());
        let mut frag = (self.frag_offset / 8) as u16 & 0x1fff;
        if self.dont_frag {
            frag |= 0x4000;
        }
        if self.more_frags {
            frag |= 0x2000;
        }
        p[6..8].copy_from_slice(&frag.to_be_bytes());
        p[8] = self.ttl;
        p[9] = self.proto;
        p[12..16].copy_from_slice(&self.src.octets());
        p[16..20].copy_from_slice(&self.dst.octets());
        let c = checksum(&p[..20]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        p[20..].copy_from_slice(payload);
        p
    }
}

/// An IPv6 packet with `next` header and `payload` (extension headers
/// included by the caller).
pub fn v6_packet(src: Ipv6Addr, dst: Ipv6Addr, next: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0u8; 40 + payload.len()];
    p[0] = 0x60;
    p[4..6].copy_from_slice(&(payload.len() as u16).to_be_bytes());
    p[6] = next;
    p[7] = 64;
    p[8..24].copy_from_slice(&src.octets());
    p[24..40].copy_from_slice(&dst.octets());
    p[40..].copy_from_slice(payload);
    p
}

/// One IPv6 fragment: a Fragment header (RFC 8200 section 4.5) for
/// `next`, then `data`, the bytes at `offset` of the fragmentable part.
pub fn v6_fragment(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    next: u8,
    ident: u32,
    offset: usize,
    more: bool,
    data: &[u8],
) -> Vec<u8> {
    let mut h = vec![0u8; 8];
    h[0] = next;
    let off = ((offset / 8) as u16) << 3 | u16::from(more);
    h[2..4].copy_from_slice(&off.to_be_bytes());
    h[4..8].copy_from_slice(&ident.to_be_bytes());
    h.extend_from_slice(data);
    v6_packet(src, dst, PROTO_FRAG6, &h)
}

/// An IP packet of either family (no fragmentation).
pub fn ip_packet(src: IpAddr, dst: IpAddr, proto: u8, payload: &[u8]) -> Vec<u8> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => V4::new(s, d, proto).packet(payload),
        (IpAddr::V6(s), IpAddr::V6(d)) => v6_packet(s, d, proto, payload),
        _ => panic!("mixed families"),
    }
}

/// A TCP segment's fields; `options` are raw bytes, padded to a multiple
/// of four with zeros (EOL).
#[derive(Clone, Debug, Default)]
pub struct Tcp {
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    pub options: Vec<u8>,
    pub payload: Vec<u8>,
}

impl Tcp {
    /// The segment bytes with a correct checksum for `src` -> `dst`.
    pub fn segment(&self, src: IpAddr, dst: IpAddr) -> Vec<u8> {
        let mut opts = self.options.clone();
        while !opts.len().is_multiple_of(4) {
            opts.push(0);
        }
        let hlen = 20 + opts.len();
        let mut s = vec![0u8; hlen];
        s[0..2].copy_from_slice(&self.sport.to_be_bytes());
        s[2..4].copy_from_slice(&self.dport.to_be_bytes());
        s[4..8].copy_from_slice(&self.seq.to_be_bytes());
        s[8..12].copy_from_slice(&self.ack.to_be_bytes());
        s[12] = ((hlen / 4) as u8) << 4;
        s[13] = self.flags;
        s[14..16].copy_from_slice(&self.window.to_be_bytes());
        s[20..].copy_from_slice(&opts);
        s.extend_from_slice(&self.payload);
        let c = pseudo_checksum(src, dst, PROTO_TCP, &s);
        s[16..18].copy_from_slice(&c.to_be_bytes());
        s
    }

    /// The whole IP packet.
    pub fn packet(&self, src: IpAddr, dst: IpAddr) -> Vec<u8> {
        ip_packet(src, dst, PROTO_TCP, &self.segment(src, dst))
    }
}

/// An ICMP (v4) or ICMPv6 message of `kind`/`code`, with the 4-byte
/// field after the checksum set to `rest`, quoting `quoted`.
pub fn icmp_error(
    src: IpAddr,
    dst: IpAddr,
    kind: u8,
    code: u8,
    rest: u32,
    quoted: &[u8],
) -> Vec<u8> {
    let mut m = vec![kind, code, 0, 0];
    m.extend_from_slice(&rest.to_be_bytes());
    m.extend_from_slice(quoted);
    icmp_finish(src, dst, m)
}

/// An echo request with `ident`, `seq` and `data`.
pub fn echo_request(src: IpAddr, dst: IpAddr, ident: u16, seq: u16, data: &[u8]) -> Vec<u8> {
    let kind = if src.is_ipv4() { 8 } else { 128 };
    let mut m = vec![kind, 0, 0, 0];
    m.extend_from_slice(&ident.to_be_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(data);
    icmp_finish(src, dst, m)
}

/// The checksummed ICMP message bytes (no IP header) of an echo request,
/// for attacks that fragment it themselves.
pub fn echo_request_message(src: IpAddr, dst: IpAddr, ident: u16, data: &[u8]) -> Vec<u8> {
    let p = echo_request(src, dst, ident, 1, data);
    p[if src.is_ipv4() { 20 } else { 40 }..].to_vec()
}

fn icmp_finish(src: IpAddr, dst: IpAddr, mut m: Vec<u8>) -> Vec<u8> {
    let (proto, c) = match src {
        IpAddr::V4(_) => (PROTO_ICMP, checksum(&m)),
        IpAddr::V6(_) => (PROTO_ICMP6, pseudo_checksum(src, dst, PROTO_ICMP6, &m)),
    };
    m[2..4].copy_from_slice(&c.to_be_bytes());
    ip_packet(src, dst, proto, &m)
}

/// What came back, parsed leniently (the checksum is not checked: with
/// offloads the sender may leave it partial).
#[derive(Clone, Debug)]
pub struct Parsed {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: u8,
    pub payload: Vec<u8>,
}

pub fn parse(p: &[u8]) -> Option<Parsed> {
    match p.first()? >> 4 {
        4 if p.len() >= 20 => {
            let ihl = usize::from(p[0] & 15) * 4;
            let total = usize::from(u16::from_be_bytes([p[2], p[3]]));
            if ihl < 20 || total < ihl || total > p.len() {
                return None;
            }
            Some(Parsed {
                src: IpAddr::V4(Ipv4Addr::new(p[12], p[13], p[14], p[15])),
                dst: IpAddr::V4(Ipv4Addr::new(p[16], p[17], p[18], p[19])),
                proto: p[9],
                payload: p[ihl..total].to_vec(),
            })
        }
        6 if p.len() >= 40 => {
            let len = usize::from(u16::from_be_bytes([p[4], p[5]]));
            if 40 + len > p.len() {
                return None;
            }
            let a = |o: usize| Ipv6Addr::from(<[u8; 16]>::try_from(&p[o..o + 16]).unwrap());
            Some(Parsed {
                src: IpAddr::V6(a(8)),
                dst: IpAddr::V6(a(24)),
                proto: p[6],
                payload: p[40..40 + len].to_vec(),
            })
        }
        _ => None,
    }
}

/// A TCP segment that came back.
#[derive(Clone, Debug)]
pub struct Seg {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub tcp: Tcp,
}

impl Seg {
    pub fn has(&self, flag: u8) -> bool {
        self.tcp.flags & flag != 0
    }

    /// The MSS option's value, if any.
    pub fn mss(&self) -> Option<u16> {
        let o = &self.tcp.options;
        let mut i = 0;
        while i < o.len() {
            match o[i] {
                0 => return None,
                1 => i += 1,
                k => {
                    let len = usize::from(*o.get(i + 1)?);
                    if len < 2 || i + len > o.len() {
                        return None;
                    }
                    if k == 2 && len == 4 {
                        return Some(u16::from_be_bytes([o[i + 2], o[i + 3]]));
                    }
                    i += len;
                }
            }
        }
        None
    }
}

pub fn parse_tcp(p: &[u8]) -> Option<Seg> {
    let ip = parse(p)?;
    if ip.proto != PROTO_TCP {
        return None;
    }
    let s = &ip.payload;
    if s.len() < 20 {
        return None;
    }
    let hlen = usize::from(s[12] >> 4) * 4;
    if hlen < 20 || hlen > s.len() {
        return None;
    }
    Some(Seg {
        src: ip.src,
        dst: ip.dst,
        tcp: Tcp {
            sport: u16::from_be_bytes([s[0], s[1]]),
            dport: u16::from_be_bytes([s[2], s[3]]),
            seq: u32::from_be_bytes([s[4], s[5], s[6], s[7]]),
            ack: u32::from_be_bytes([s[8], s[9], s[10], s[11]]),
            flags: s[13],
            window: u16::from_be_bytes([s[14], s[15]]),
            options: s[20..hlen].to_vec(),
            payload: s[hlen..].to_vec(),
        },
    })
}

/// An echo reply's identifier, if `p` is one.
pub fn echo_reply_ident(p: &[u8]) -> Option<u16> {
    let mut ip = parse(p)?;
    // The first fragment of a fragmented IPv6 reply.
    if ip.proto == PROTO_FRAG6 && ip.payload.len() >= 8 && ip.payload[2..4] == [0, 1] {
        ip.proto = ip.payload[0];
        ip.payload.drain(..8);
    }
    let m = &ip.payload;
    let reply = match ip.proto {
        PROTO_ICMP => 0,
        PROTO_ICMP6 => 129,
        _ => return None,
    };
    (m.len() >= 8 && m[0] == reply).then(|| u16::from_be_bytes([m[4], m[5]]))
}
