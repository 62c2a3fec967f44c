//! DNS messages (RFC 1035 section 4), as far as a stub resolver needs them:
//! a query for one name and type, and a response's header, questions and
//! answer records, with compressed names (section 4.1.4) followed at most
//! [`MAX_POINTERS`] times so a hostile loop ends.
//!
//! Owns the message's byte layout. Must not touch sockets, configuration
//! files or the order in which servers are asked (that is the shim's
//! resolver, `shim/preload/src/resolve`).

use std::net::{Ipv4Addr, Ipv6Addr};

use super::bytes;
use super::{Error, Result};

/// Field offsets of the header.
mod field {
    pub const ID: usize = 0;
    pub const FLAGS: usize = 2;
    pub const QDCOUNT: usize = 4;
    pub const ANCOUNT: usize = 6;
}

/// The length of the header.
pub const HEADER_LEN: usize = 12;
/// The longest name, in wire bytes (RFC 1035 section 2.3.4).
pub const MAX_NAME: usize = 255;
/// Compression pointers followed in one name before it counts as a loop.
pub const MAX_POINTERS: usize = 32;

/// Record types the resolver asks for.
pub const TYPE_A: u16 = 1;
/// A canonical-name record.
pub const TYPE_CNAME: u16 = 5;
/// A pointer record (reverse lookups).
pub const TYPE_PTR: u16 = 12;
/// An IPv6 address record (RFC 3596).
pub const TYPE_AAAA: u16 = 28;
/// The Internet class.
pub const CLASS_IN: u16 = 1;

/// Header flags (RFC 1035 section 4.1.1).
const QR: u16 = 0x8000;
const TC: u16 = 0x0200;
const RD: u16 = 0x0100;

/// The response codes the resolver tells apart.
pub const RCODE_OK: u8 = 0;
/// The server could not process the query.
pub const RCODE_SERVFAIL: u8 = 2;
/// The name does not exist.
pub const RCODE_NXDOMAIN: u8 = 3;

/// A query for one name, type and class, recursion desired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query<'a> {
    /// The message id the answer must carry.
    pub id: u16,
    /// The name, dotted, with or without the final dot.
    pub name: &'a str,
    /// The record type.
    pub qtype: u16,
    /// The class (normally [`CLASS_IN`]).
    pub qclass: u16,
}

impl Query<'_> {
    /// The query's bytes: `Malformed` for a name with an empty or
    /// over-long label or longer than [`MAX_NAME`].
    pub fn emit(&self) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.name.len() + 6);
        out.extend_from_slice(&self.id.to_be_bytes());
        out.extend_from_slice(&RD.to_be_bytes());
        out.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
        emit_name(self.name, &mut out)?;
        out.extend_from_slice(&self.qtype.to_be_bytes());
        out.extend_from_slice(&self.qclass.to_be_bytes());
        Ok(out)
    }
}

fn emit_name(name: &str, out: &mut Vec<u8>) -> Result<()> {
    let name = name.strip_suffix('.').unwrap_or(name);
    let start = out.len();
    if !name.is_empty() {
        for label in name.split('.') {
            if label.is_empty() || label.len() > 63 {
                return Err(Error::Malformed);
            }
            out.push(label.len() as u8);
            out.extend_from_slice(label.as_bytes());
        }
    }
    out.push(0);
    if out.len() - start > MAX_NAME {
        return Err(Error::Malformed);
    }
    Ok(())
}

/// The data of an answer record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RData {
    /// An IPv4 address.
    A(Ipv4Addr),
    /// An IPv6 address.
    Aaaa(Ipv6Addr),
    /// The canonical name the record's owner is an alias of.
    Cname(String),
    /// The name a reverse lookup points at.
    Ptr(String),
    /// Any other type, by number (its data is skipped).
    Other(u16),
}

/// One resource record of the answer section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Its owner name, dotted, without the final dot.
    pub name: String,
    /// Its class.
    pub class: u16,
    /// Its time to live, seconds.
    pub ttl: u32,
    /// Its data.
    pub data: RData,
}

/// A parsed response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The id, to match against the query's.
    pub id: u16,
    /// The response code (the low four bits of the flags).
    pub rcode: u8,
    /// The server truncated it: ask again over TCP (RFC 7766).
    pub truncated: bool,
    /// The first question's name, type and class, if it has one.
    pub question: Option<(String, u16, u16)>,
    /// The answer section.
    pub answers: Vec<Record>,
}

impl Response {
    /// Parses a message that must be a response (QR set). Errors:
    /// `Truncated` when a count or length runs past the bytes, `Malformed`
    /// for a query, a bad name or a compression loop.
    pub fn parse(msg: &[u8]) -> Result<Response> {
        if msg.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let flags = bytes::u16_at(msg, field::FLAGS);
        if flags & QR == 0 {
            return Err(Error::Malformed);
        }
        let qd = bytes::u16_at(msg, field::QDCOUNT);
        let an = bytes::u16_at(msg, field::ANCOUNT);
        let mut at = HEADER_LEN;
        let mut question = None;
        for i in 0..qd {
            let (name, next) = read_name(msg, at)?;
            let fixed = msg.get(next..next + 4).ok_or(Error::Truncated)?;
            let q = (name, bytes::u16_at(fixed, 0), bytes::u16_at(fixed, 2));
            if i == 0 {
                question = Some(q);
            }
            at = next + 4;
        }
        let mut answers = Vec::with_capacity(usize::from(an).min(64));
        for _ in 0..an {
            let (name, next) = read_name(msg, at)?;
            let fixed = msg.get(next..next + 10).ok_or(Error::Truncated)?;
            let rtype = bytes::u16_at(fixed, 0);
            let class = bytes::u16_at(fixed, 2);
            let ttl = u32::from(bytes::u16_at(fixed, 4)) << 16 | u32::from(bytes::u16_at(fixed, 6));
            let len = usize::from(bytes::u16_at(fixed, 8));
            let start = next + 10;
            let rdata = msg.get(start..start + len).ok_or(Error::Truncated)?;
            let data = match (rtype, len) {
                (TYPE_A, 4) => RData::A(Ipv4Addr::new(rdata[0], rdata[1], rdata[2], rdata[3])),
                (TYPE_AAAA, 16) => {
                    let mut a = [0u8; 16];
                    a.copy_from_slice(rdata);
                    RData::Aaaa(Ipv6Addr::from(a))
                }
                (TYPE_A | TYPE_AAAA, _) => return Err(Error::Malformed),
                (TYPE_CNAME, _) => RData::Cname(read_name_within(msg, start, start + len)?),
                (TYPE_PTR, _) => RData::Ptr(read_name_within(msg, start, start + len)?),
                (t, _) => RData::Other(t),
            };
            answers.push(Record {
                name,
                class,
                ttl,
                data,
            });
            at = start + len;
        }
        Ok(Response {
            id: bytes::u16_at(msg, field::ID),
            rcode: (flags & 0x000f) as u8,
            truncated: flags & TC != 0,
            question,
            answers,
        })
    }
}

/// A name inside a record's data, which must end within it.
fn read_name_within(msg: &[u8], at: usize, end: usize) -> Result<String> {
    let (name, next) = read_name(msg, at)?;
    if next > end {
        return Err(Error::Malformed);
    }
    Ok(name)
}

/// The name at `at`, dotted, and the offset just past it where it sits
/// (past its first pointer, if compressed).
fn read_name(msg: &[u8], mut at: usize) -> Result<(String, usize)> {
    let mut name = String::new();
    let mut wire_len = 1;
    let mut after = None;
    let mut pointers = 0;
    loop {
        let len = *msg.get(at).ok_or(Error::Truncated)?;
        match len & 0xc0 {
            0x00 if len == 0 => break,
            0x00 => {
                let label = msg
                    .get(at + 1..at + 1 + usize::from(len))
                    .ok_or(Error::Truncated)?;
                wire_len += 1 + label.len();
                if wire_len > MAX_NAME {
                    return Err(Error::Malformed);
                }
                if !name.is_empty() {
                    name.push('.');
                }
                // Names are bytes; keep the printable ones and escape the
                // rest, as dig prints them, so no caller sees a '.' or a
                // NUL that was not a label boundary.
                for &b in label {
                    match b {
                        b'.' | b'\\' => {
                            name.push('\\');
                            name.push(b as char);
                        }
                        0x21..=0x7e => name.push(b as char),
                        _ => name.push_str(&format!("\\{b:03}")),
                    }
                }
                at += 1 + label.len();
            }
            0xc0 => {
                let lo = *msg.get(at + 1).ok_or(Error::Truncated)?;
                pointers += 1;
                if pointers > MAX_POINTERS {
                    return Err(Error::Malformed);
                }
                after.get_or_insert(at + 2);
                at = usize::from(len & 0x3f) << 8 | usize::from(lo);
            }
            _ => return Err(Error::Malformed),
        }
    }
    Ok((name, after.unwrap_or(at + 1)))
}

/// The reverse-lookup name of an address (RFC 1035 section 3.5, RFC 3596
/// section 2.5): `4.3.2.1.in-addr.arpa`, nibbles under `ip6.arpa`.
pub fn reverse_name(addr: std::net::IpAddr) -> String {
    match addr {
        std::net::IpAddr::V4(a) => {
            let o = a.octets();
            format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
        }
        std::net::IpAddr::V6(a) => {
            let mut s = String::with_capacity(72);
            for b in a.octets().iter().rev() {
                s.push_str(&format!("{:x}.{:x}.", b & 0xf, b >> 4));
            }
            s.push_str("ip6.arpa");
            s
        }
    }
}

#[cfg(test)]
mod tests;
