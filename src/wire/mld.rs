//! Multicast Listener Discovery version 2 (RFC 3810): the listener report
//! a host sends for the groups it joins, inside an IPv6 datagram with the
//! Hop-by-Hop router alert option (RFC 2711) and hop limit 1, and the
//! recognition of a query.
//!
//! Owns the layout. Must not touch: which groups to report or when (that
//! is `crate::ethernet`).

use super::bytes;
use super::checksum;
use super::{Error, IpProtocol, Ipv6Addr, Result};

/// ICMPv6 type of a multicast listener query (RFC 3810 section 5.1).
pub const QUERY: u8 = 130;
/// ICMPv6 type of a version 2 multicast listener report (section 5.2).
pub const REPORT_V2: u8 = 143;
/// Where version 2 reports go: all MLDv2-capable routers.
pub const ALL_MLDV2_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x16);
/// The most records in one report (a report stays far below any MTU).
pub const MAX_RECORDS: usize = 32;

/// The record types of section 5.2.12 this host sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordType {
    /// 2, MODE_IS_EXCLUDE with no sources: we listen (answer to a query).
    IsExclude,
    /// 3, CHANGE_TO_INCLUDE_MODE with no sources: we left.
    ToInclude,
    /// 4, CHANGE_TO_EXCLUDE_MODE with no sources: we joined.
    ToExclude,
}

impl RecordType {
    fn byte(self) -> u8 {
        match self {
            RecordType::IsExclude => 2,
            RecordType::ToInclude => 3,
            RecordType::ToExclude => 4,
        }
    }
}

/// The Hop-by-Hop header every MLD message carries: next header ICMPv6,
/// length 0 (8 bytes), router alert (type 5, value 0: MLD), PadN.
const HOP_BY_HOP: [u8; 8] = [58, 0, 5, 2, 0, 0, 1, 0];

/// The length of a whole report datagram (IPv6 header, Hop-by-Hop header,
/// ICMPv6) for `records` records.
pub fn report_len(records: usize) -> usize {
    40 + HOP_BY_HOP.len() + 8 + 20 * records.min(MAX_RECORDS)
}

/// Writes a whole report datagram from `src` (our link-local address, or
/// :: before we have one, section 5.2.13) with one record per group, at
/// most [`MAX_RECORDS`], and returns its length.
pub fn emit_report(
    buf: &mut [u8],
    src: Ipv6Addr,
    records: &[(RecordType, Ipv6Addr)],
) -> Result<usize> {
    let records = &records[..records.len().min(MAX_RECORDS)];
    let len = report_len(records.len());
    let b = buf.get_mut(..len).ok_or(Error::Truncated)?;
    b.fill(0);
    let icmp_len = 8 + 20 * records.len();
    let ip = super::Ipv6Repr {
        src_addr: src,
        dst_addr: ALL_MLDV2_ROUTERS,
        next_header: IpProtocol::HopByHop,
        payload_len: HOP_BY_HOP.len() + icmp_len,
        hop_limit: 1,
        traffic_class: 0,
        flow_label: 0,
    };
    ip.emit(b)?;
    bytes::set_bytes(b, 40, &HOP_BY_HOP);
    let icmp = &mut b[48..];
    bytes::set_u8(icmp, 0, REPORT_V2);
    bytes::set_u16(icmp, 6, records.len() as u16);
    for (i, (kind, group)) in records.iter().enumerate() {
        let at = 8 + 20 * i;
        bytes::set_u8(icmp, at, kind.byte());
        bytes::set_bytes(icmp, at + 4, &group.octets());
    }
    let sum = checksum::combine(&[
        checksum::pseudo_header_v6(src, ALL_MLDV2_ROUTERS, IpProtocol::Icmpv6, icmp_len as u32),
        checksum::data(icmp),
    ]);
    bytes::set_u16(icmp, 2, !sum);
    Ok(len)
}

/// Whether `ip` (an IPv6 datagram) is a multicast listener query: ICMPv6
/// type 130 after one Hop-by-Hop header, hop limit 1 (section 5.1.15),
/// with a verifying checksum.
pub fn is_query(ip: &[u8]) -> bool {
    let Ok(p) = super::Ipv6Packet::new_checked(ip) else {
        return false;
    };
    if p.next_header() != IpProtocol::HopByHop || p.hop_limit() != 1 {
        return false;
    }
    let payload = p.payload();
    let hbh = usize::from(bytes::u8_at(payload, 1)) * 8 + 8;
    if bytes::u8_at(payload, 0) != 58 {
        return false;
    }
    let Some(icmp) = payload.get(hbh..) else {
        return false;
    };
    if icmp.len() < 24 || icmp[0] != QUERY {
        return false;
    }
    let sum = checksum::combine(&[
        checksum::pseudo_header_v6(
            p.src_addr(),
            p.dst_addr(),
            IpProtocol::Icmpv6,
            icmp.len() as u32,
        ),
        checksum::data(icmp),
    ]);
    sum == 0xffff
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_carries_the_router_alert_and_one_record_per_group() {
        let src: Ipv6Addr = "fe80::1".parse().unwrap();
        let g1: Ipv6Addr = "ff02::1:ff00:1".parse().unwrap();
        let g2: Ipv6Addr = "ff02::1:ff00:2".parse().unwrap();
        let records = [(RecordType::ToExclude, g1), (RecordType::ToInclude, g2)];
        let mut buf = vec![0u8; report_len(2)];
        assert_eq!(emit_report(&mut buf, src, &records), Ok(96));
        let p = super::super::Ipv6Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.hop_limit(), 1);
        assert_eq!(p.dst_addr(), ALL_MLDV2_ROUTERS);
        assert_eq!(p.next_header(), IpProtocol::HopByHop);
        assert_eq!(&buf[40..48], &[58, 0, 5, 2, 0, 0, 1, 0]);
        let icmp = &buf[48..];
        assert_eq!((icmp[0], icmp[1]), (143, 0));
        assert_eq!(u16::from_be_bytes([icmp[6], icmp[7]]), 2);
        assert_eq!(icmp[8], 4);
        assert_eq!(&icmp[12..28], &g1.octets());
        assert_eq!(icmp[28], 3);
        let sum = checksum::combine(&[
            checksum::pseudo_header_v6(src, ALL_MLDV2_ROUTERS, IpProtocol::Icmpv6, 48),
            checksum::data(icmp),
        ]);
        assert_eq!(sum, 0xffff);
        // Not a query; short buffers are errors.
        assert!(!is_query(&buf));
        assert_eq!(
            emit_report(&mut [0u8; 60], src, &records),
            Err(Error::Truncated)
        );
    }

    #[test]
    fn a_general_query_is_recognised_and_junk_is_not() {
        let src: Ipv6Addr = "fe80::9".parse().unwrap();
        let all: Ipv6Addr = "ff02::1".parse().unwrap();
        let mut icmp = vec![0u8; 28];
        icmp[0] = QUERY;
        let sum = checksum::combine(&[
            checksum::pseudo_header_v6(src, all, IpProtocol::Icmpv6, 28),
            checksum::data(&icmp),
        ]);
        icmp[2..4].copy_from_slice(&(!sum).to_be_bytes());
        let ip = super::super::Ipv6Repr {
            src_addr: src,
            dst_addr: all,
            next_header: IpProtocol::HopByHop,
            payload_len: 8 + 28,
            hop_limit: 1,
            traffic_class: 0,
            flow_label: 0,
        };
        let mut q = vec![0u8; 40];
        ip.emit(&mut q).unwrap();
        q.extend_from_slice(&HOP_BY_HOP);
        q.extend_from_slice(&icmp);
        assert!(is_query(&q));
        let mut bad = q.clone();
        bad[60] ^= 1;
        assert!(!is_query(&bad), "bad checksum");
        let mut forwarded = q.clone();
        forwarded[7] = 2;
        assert!(!is_query(&forwarded), "hop limit above 1");
        for n in 0..q.len() {
            assert!(!is_query(&q[..n]));
        }
    }
}
