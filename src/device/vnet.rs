//! The `struct virtio_net_hdr` a TUN device opened with `IFF_VNET_HDR`
//! puts in front of every packet, in both directions.
//!
//! Owns the header's layout and the one thing the receive path must do
//! with it: complete a checksum the kernel left partial
//! (`VIRTIO_NET_HDR_F_NEEDS_CSUM`), and say whether the transport checksum
//! is thereby known good, so the core need not sum the packet a second
//! time ([`VnetHeader::complete_and_vouch`]); and on the send side, the header that has the kernel cut a
//! TCP super-segment into MTU-sized pieces ([`tso_header`]). Must not touch: the IP and TCP headers beyond the two bytes
//! of that checksum field. Header lengths are never taken from `hdr_len`
//! (a hint the kernel need not fill in); nothing here needs them.
//!
//! Layout (Linux `include/uapi/linux/virtio_net.h`), 10 bytes, the 16-bit
//! fields in the host's byte order (TUN's default, "legacy" endianness):
//!
//! | offset | field |
//! | --- | --- |
//! | 0 | `flags`: 1 = `NEEDS_CSUM`, 2 = `DATA_VALID` |
//! | 1 | `gso_type`: 0 none, 1 TCPv4, 3 UDP, 4 TCPv6, 5 UDP_L4, 0x80 ECN bit |
//! | 2 | `hdr_len` |
//! | 4 | `gso_size`: the segment size a super-packet is cut into |
//! | 6 | `csum_start`: where the partial checksum's coverage starts |
//! | 8 | `csum_offset`: the checksum field, from `csum_start` |

use crate::wire::checksum;

/// The header's size, which we set with `TUNSETVNETHDRSZ`.
pub const HEADER_LEN: usize = 10;

/// The most TCP payload in a super-segment we hand the kernel: what fits
/// in 65,535 bytes with the largest IPv6 and TCP headers.
pub const TSO_MAX_PAYLOAD: u32 = 65_535 - 40 - 60;

/// The packet's checksum is partial: the field at `csum_start +
/// csum_offset` holds the pseudo-header sum, the rest is ours to add.
pub const F_NEEDS_CSUM: u8 = 1;
/// The kernel already verified the checksum.
pub const F_DATA_VALID: u8 = 2;

/// `gso_type`: a single packet.
pub const GSO_NONE: u8 = 0;
/// `gso_type`: a TCP over IPv4 super-packet.
pub const GSO_TCPV4: u8 = 1;
/// `gso_type`: a TCP over IPv6 super-packet.
pub const GSO_TCPV6: u8 = 4;
/// `gso_type` bit: the super-packet's segments carry ECN's CWR.
pub const GSO_ECN: u8 = 0x80;
/// `gso_type`: a UDP super-datagram (USO, `TUN_F_USO4 | TUN_F_USO6`): one
/// UDP header over `gso_size`-byte pieces, each a datagram of its own.
pub const GSO_UDP_L4: u8 = 5;

/// One decoded `virtio_net_hdr`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VnetHeader {
    /// [`F_NEEDS_CSUM`], [`F_DATA_VALID`].
    pub flags: u8,
    /// [`GSO_NONE`], [`GSO_TCPV4`], [`GSO_TCPV6`], maybe with [`GSO_ECN`].
    pub gso_type: u8,
    /// The sender's idea of the headers' length: a hint, never trusted.
    pub hdr_len: u16,
    /// The payload size of each segment a super-packet stands for.
    pub gso_size: u16,
    /// Where the partially summed bytes start, from the IP header.
    pub csum_start: u16,
    /// Where the checksum field is, from `csum_start`.
    pub csum_offset: u16,
}

/// Why a received packet's vnet header cannot be honoured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VnetError {
    /// Fewer bytes than a header.
    Truncated,
    /// The partial checksum's field lies outside the packet.
    BadChecksumOffsets,
}

impl VnetHeader {
    /// Decodes the header at the front of `bytes`.
    pub fn parse(bytes: &[u8]) -> Result<VnetHeader, VnetError> {
        let b = bytes.get(..HEADER_LEN).ok_or(VnetError::Truncated)?;
        let word = |at: usize| u16::from_ne_bytes([b[at], b[at + 1]]);
        Ok(VnetHeader {
            flags: b[0],
            gso_type: b[1],
            hdr_len: word(2),
            gso_size: word(4),
            csum_start: word(6),
            csum_offset: word(8),
        })
    }

    /// Encodes the header.
    pub fn emit(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0] = self.flags;
        b[1] = self.gso_type;
        b[2..4].copy_from_slice(&self.hdr_len.to_ne_bytes());
        b[4..6].copy_from_slice(&self.gso_size.to_ne_bytes());
        b[6..8].copy_from_slice(&self.csum_start.to_ne_bytes());
        b[8..10].copy_from_slice(&self.csum_offset.to_ne_bytes());
        b
    }

    /// Whether the packet this header came with is a super-packet the
    /// kernel would otherwise have cut into segments.
    pub fn is_gso(&self) -> bool {
        self.gso_type & !GSO_ECN != GSO_NONE
    }

    /// Makes `packet` (the IP datagram after this header) carry a whole
    /// checksum: when the kernel left it partial, sums the bytes from
    /// `csum_start` to the end (the field holds the pseudo-header sum
    /// already) and stores the complement in the field. A packet whose
    /// offsets point outside it is refused rather than trusted.
    pub fn complete_checksum(&self, packet: &mut [u8]) -> Result<(), VnetError> {
        if self.flags & F_NEEDS_CSUM == 0 {
            return Ok(());
        }
        let start = usize::from(self.csum_start);
        let field = start + usize::from(self.csum_offset);
        if field + 2 > packet.len() {
            return Err(VnetError::BadChecksumOffsets);
        }
        let sum = checksum::data(&packet[start..]);
        packet[field..field + 2].copy_from_slice(&(!sum).to_be_bytes());
        Ok(())
    }
}

impl VnetHeader {
    /// [`VnetHeader::complete_checksum`], returning whether the link may
    /// vouch for the packet's TCP or UDP checksum, so the core need not sum
    /// it again (`Core::input_verified`). True only for an unfragmented
    /// TCP or UDP datagram, its IP lengths agreeing with what was read,
    /// that either
    ///
    /// - came with `NEEDS_CSUM` pointing exactly at its transport checksum
    ///   field, that field holding the pseudo-header sum the core would
    ///   compute for it: the completed checksum then verifies by
    ///   construction (the bytes never crossed a wire), or
    /// - came with `DATA_VALID`: the kernel verified it.
    ///
    /// Anything else (no flags, offsets elsewhere, a pseudo-header sum that
    /// does not match, IPv6 extension headers) is left for the core to
    /// verify as usual.
    pub fn complete_and_vouch(&self, packet: &mut [u8]) -> Result<bool, VnetError> {
        let vouched = if self.flags & F_NEEDS_CSUM != 0 {
            self.partial_sum_is_the_core_s(packet)
        } else {
            self.flags & F_DATA_VALID != 0 && transport(packet).is_some()
        };
        self.complete_checksum(packet)?;
        Ok(vouched)
    }

    fn partial_sum_is_the_core_s(&self, packet: &[u8]) -> bool {
        let Some(t) = transport(packet) else {
            return false;
        };
        let field_at = if t.tcp { 16 } else { 6 };
        if usize::from(self.csum_start) != t.offset || usize::from(self.csum_offset) != field_at {
            return false;
        }
        let at = t.offset + field_at;
        let Some(field) = packet.get(at..at + 2) else {
            return false;
        };
        let protocol = if t.tcp {
            crate::wire::IpProtocol::Tcp
        } else {
            crate::wire::IpProtocol::Udp
        };
        let Ok(pseudo) = checksum::pseudo_header(t.src, t.dst, protocol, packet.len() - t.offset)
        else {
            return false;
        };
        // One's complement has two zeros.
        let norm = |x: u16| if x == 0 { 0xffff } else { x };
        norm(u16::from_be_bytes([field[0], field[1]])) == norm(pseudo)
    }
}

/// Where a datagram's TCP or UDP header starts, and its addresses.
struct Transport {
    offset: usize,
    tcp: bool,
    src: std::net::IpAddr,
    dst: std::net::IpAddr,
}

/// The transport header of `packet` if it is an unfragmented TCP or UDP
/// datagram with plain IPv4 or IPv6 headers whose length fields agree with
/// its length (so the core sees the same bytes as this module does).
fn transport(packet: &[u8]) -> Option<Transport> {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    let (offset, protocol, src, dst) = match packet.first()? >> 4 {
        4 => {
            let ihl = usize::from(packet[0] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([*packet.get(2)?, *packet.get(3)?]));
            // Fragment offset or more-fragments set: not a whole datagram.
            let frag = u16::from_be_bytes([*packet.get(6)?, *packet.get(7)?]) & 0x3fff;
            if ihl < 20 || total != packet.len() || ihl > total || frag != 0 {
                return None;
            }
            let a: [u8; 4] = packet.get(12..16)?.try_into().ok()?;
            let b: [u8; 4] = packet.get(16..20)?.try_into().ok()?;
            (
                ihl,
                packet[9],
                IpAddr::V4(Ipv4Addr::from(a)),
                IpAddr::V4(Ipv4Addr::from(b)),
            )
        }
        6 => {
            let payload = usize::from(u16::from_be_bytes([*packet.get(4)?, *packet.get(5)?]));
            if packet.len() < 40 || payload + 40 != packet.len() {
                return None;
            }
            let a: [u8; 16] = packet.get(8..24)?.try_into().ok()?;
            let b: [u8; 16] = packet.get(24..40)?.try_into().ok()?;
            (
                40,
                packet[6],
                IpAddr::V6(Ipv6Addr::from(a)),
                IpAddr::V6(Ipv6Addr::from(b)),
            )
        }
        _ => return None,
    };
    let tcp = match protocol {
        6 => true,
        17 => false,
        _ => return None,
    };
    Some(Transport {
        offset,
        tcp,
        src,
        dst,
    })
}

/// The header that asks the kernel to cut `packet`, a TCP segment larger
/// than `mtu`, into pieces that fit it (TSO), and readies the packet for
/// that: the checksum field is set to the pseudo-header sum, which the
/// kernel completes per piece. Header lengths come from the packet itself.
/// `None` (send the packet as it is) for anything but a TCP segment with
/// plain IPv4 or IPv6 headers that exceeds `mtu`.
pub fn tso_header(packet: &mut [u8], mtu: usize) -> Option<VnetHeader> {
    use crate::wire::IpProtocol;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    if packet.len() <= mtu {
        return None;
    }
    let (ip_len, gso_type, src, dst) = match packet.first()? >> 4 {
        4 => {
            let ihl = usize::from(packet[0] & 0x0f) * 4;
            if ihl < 20 || packet.len() < ihl || packet[9] != 6 {
                return None;
            }
            let addr = |at: usize| {
                IpAddr::V4(Ipv4Addr::new(
                    packet[at],
                    packet[at + 1],
                    packet[at + 2],
                    packet[at + 3],
                ))
            };
            (ihl, GSO_TCPV4, addr(12), addr(16))
        }
        6 => {
            // Only TCP right after the fixed header: we send no extension
            // headers with TCP.
            if packet.len() < 40 || packet[6] != 6 {
                return None;
            }
            let addr = |at: usize| {
                let mut a = [0u8; 16];
                a.copy_from_slice(&packet[at..at + 16]);
                IpAddr::V6(Ipv6Addr::from(a))
            };
            (40, GSO_TCPV6, addr(8), addr(24))
        }
        _ => return None,
    };
    let tcp = packet.get(ip_len..)?;
    let tcp_len = usize::from(*tcp.get(12)? >> 4) * 4;
    let headers = ip_len + tcp_len;
    if tcp_len < 20 || headers >= mtu || packet.len() <= headers {
        return None;
    }
    let ecn = if tcp[13] & 0x80 != 0 { GSO_ECN } else { 0 };
    let pseudo = checksum::pseudo_header(src, dst, IpProtocol::Tcp, packet.len() - ip_len).ok()?;
    packet[ip_len + 16..ip_len + 18].copy_from_slice(&pseudo.to_be_bytes());
    Some(VnetHeader {
        flags: F_NEEDS_CSUM,
        gso_type: gso_type | ecn,
        hdr_len: headers as u16,
        gso_size: (mtu - headers) as u16,
        csum_start: ip_len as u16,
        csum_offset: 16,
    })
}

/// Cuts `packet`, a TCP super-segment as the core builds it for TSO (see
/// [`tso_header`]; its checksum field need not hold anything), into
/// segments that fit `mtu`, as the kernel would have: the same headers,
/// the sequence number advanced, FIN and PSH on the last piece only, CWR on
/// the first only, each IP length, IPv4 header checksum and TCP checksum
/// computed whole. Appends the pieces to `out`, taking buffers from
/// `spare` first. For a device whose kernel refused a super-segment. False
/// (nothing appended) when `packet` is not one [`tso_header`] would accept.
pub fn segment_tcp(
    packet: &[u8],
    mtu: usize,
    spare: &mut Vec<Vec<u8>>,
    out: &mut Vec<Vec<u8>>,
) -> bool {
    let Some(t) = transport(packet).filter(|t| t.tcp) else {
        return false;
    };
    let Some(tcp_len) = packet.get(t.offset + 12).map(|b| usize::from(b >> 4) * 4) else {
        return false;
    };
    let headers = t.offset + tcp_len;
    if tcp_len < 20 || headers >= mtu || packet.len() <= headers {
        return false;
    }
    let seq = u32::from_be_bytes(
        packet[t.offset + 4..t.offset + 8]
            .try_into()
            .unwrap_or([0; 4]),
    );
    let flags = packet[t.offset + 13];
    let (fin_psh, cwr) = (0x01 | 0x08, 0x80);
    let step = mtu - headers;
    let payload = &packet[headers..];
    let pieces = payload.len().div_ceil(step);
    for (i, chunk) in payload.chunks(step).enumerate() {
        let mut p = spare.pop().unwrap_or_default();
        p.clear();
        p.extend_from_slice(&packet[..headers]);
        p.extend_from_slice(chunk);
        let len = p.len();
        if t.offset == 40 {
            p[4..6].copy_from_slice(&((len - 40) as u16).to_be_bytes());
        } else {
            p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            p[10..12].copy_from_slice(&[0, 0]);
            let sum = !checksum::data(&p[..t.offset]);
            p[10..12].copy_from_slice(&sum.to_be_bytes());
        }
        let tcp = t.offset;
        let at = (i * step) as u32;
        p[tcp + 4..tcp + 8].copy_from_slice(&seq.wrapping_add(at).to_be_bytes());
        let mut f = flags;
        if i + 1 < pieces {
            f &= !fin_psh;
        }
        if i > 0 {
            f &= !cwr;
        }
        p[tcp + 13] = f;
        p[tcp + 16..tcp + 18].copy_from_slice(&[0, 0]);
        let Ok(pseudo) =
            checksum::pseudo_header(t.src, t.dst, crate::wire::IpProtocol::Tcp, len - tcp)
        else {
            return false;
        };
        let sum = !checksum::combine(&[pseudo, checksum::data(&p[tcp..])]);
        p[tcp + 16..tcp + 18].copy_from_slice(&sum.to_be_bytes());
        out.push(p);
    }
    true
}

/// Cuts `packet`, a UDP super-datagram the kernel handed over with
/// `gso_type` [`GSO_UDP_L4`] (a sender's UDP_SEGMENT), into the datagrams
/// it stands for, as the kernel's own segmentation would: `gso_size`
/// payload bytes each (the last may be shorter), the IP header copied with
/// its length (and for IPv4 an identification one higher per piece and
/// its header checksum) recomputed, each UDP length and checksum computed
/// whole. Appends them to `out`, taking buffers from `spare` first. False
/// (nothing appended) for anything else: not unfragmented plain-header
/// UDP, lengths that disagree, or a `gso_size` of 0.
pub fn segment_udp(
    packet: &[u8],
    gso_size: usize,
    spare: &mut Vec<Vec<u8>>,
    out: &mut Vec<Vec<u8>>,
) -> bool {
    let Some(t) = transport(packet).filter(|t| !t.tcp) else {
        return false;
    };
    let headers = t.offset + 8;
    if gso_size == 0 || packet.len() < headers {
        return false;
    }
    let ident = u16::from_be_bytes([packet[4], packet[5]]);
    let first = out.len();
    for (i, chunk) in packet[headers..].chunks(gso_size).enumerate() {
        let mut p = spare.pop().unwrap_or_default();
        p.clear();
        p.extend_from_slice(&packet[..headers]);
        p.extend_from_slice(chunk);
        let len = p.len();
        let udp_len = len - t.offset;
        if t.offset == 40 {
            p[4..6].copy_from_slice(&(udp_len as u16).to_be_bytes());
        } else {
            p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            p[4..6].copy_from_slice(&ident.wrapping_add(i as u16).to_be_bytes());
            p[10..12].copy_from_slice(&[0, 0]);
            let sum = !checksum::data(&p[..t.offset]);
            p[10..12].copy_from_slice(&sum.to_be_bytes());
        }
        let udp = t.offset;
        p[udp + 4..udp + 6].copy_from_slice(&(udp_len as u16).to_be_bytes());
        p[udp + 6..udp + 8].copy_from_slice(&[0, 0]);
        let Ok(pseudo) =
            checksum::pseudo_header(t.src, t.dst, crate::wire::IpProtocol::Udp, udp_len)
        else {
            out.truncate(first);
            return false;
        };
        let mut sum = !checksum::combine(&[pseudo, checksum::data(&p[udp..])]);
        if sum == 0 {
            // RFC 768: a computed zero goes out as all ones.
            sum = 0xffff;
        }
        p[udp + 6..udp + 8].copy_from_slice(&sum.to_be_bytes());
        out.push(p);
    }
    out.len() > first
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{IpHeader, IpProtocol, TcpFlags, TcpRepr, parse_ip};

    #[test]
    fn parse_and_emit_round_trip_in_host_byte_order() {
        let h = VnetHeader {
            flags: F_NEEDS_CSUM,
            gso_type: GSO_TCPV6 | GSO_ECN,
            hdr_len: 0x0102,
            gso_size: 1440,
            csum_start: 40,
            csum_offset: 16,
        };
        let bytes = h.emit();
        assert_eq!(bytes[0], 1);
        assert_eq!(bytes[1], 0x84);
        assert_eq!(&bytes[4..6], &1440u16.to_ne_bytes());
        assert_eq!(VnetHeader::parse(&bytes), Ok(h));
        assert!(h.is_gso());
        assert_eq!(VnetHeader::parse(&bytes[..9]), Err(VnetError::Truncated));
    }

    #[test]
    fn an_all_zero_header_means_no_offload() {
        let h = VnetHeader::parse(&[0; HEADER_LEN]).unwrap();
        assert_eq!(h, VnetHeader::default());
        assert!(!h.is_gso());
        assert!(
            !VnetHeader {
                gso_type: GSO_ECN,
                ..h
            }
            .is_gso()
        );
        let mut packet = vec![7u8; 60];
        h.complete_checksum(&mut packet).unwrap();
        assert_eq!(packet, vec![7u8; 60], "nothing to complete");
    }

    /// A TCP segment as the kernel hands it with CHECKSUM_PARTIAL: the
    /// checksum field holds the folded pseudo-header sum over the TCP
    /// length, not complemented.
    pub(super) fn partial_segment(v6: bool, payload: &[u8]) -> (Vec<u8>, Vec<u8>, usize) {
        let (src, dst): (std::net::IpAddr, std::net::IpAddr) = if v6 {
            ("fd77::1".parse().unwrap(), "fd77::2".parse().unwrap())
        } else {
            ("10.77.0.1".parse().unwrap(), "10.77.0.2".parse().unwrap())
        };
        let repr = TcpRepr {
            src_port: 40000,
            dst_port: 5001,
            seq: 12345,
            ack: 777,
            flags: TcpFlags::ACK | TcpFlags::PSH,
            window: 512,
            ..TcpRepr::default()
        };
        let tcp_len = repr.buffer_len(payload.len());
        let ip = IpHeader {
            src,
            dst,
            protocol: IpProtocol::Tcp,
            payload_len: tcp_len,
            hop_limit: 64,
            ident: 1,
            dont_frag: true,
            ecn: 0,
        };
        let mut whole = vec![0u8; ip.buffer_len()];
        let n = ip.emit(&mut whole).unwrap();
        repr.emit(&mut whole[n..], src, dst, payload).unwrap();
        let mut partial = whole.clone();
        let pseudo = checksum::pseudo_header(src, dst, IpProtocol::Tcp, tcp_len).unwrap();
        partial[n + 16..n + 18].copy_from_slice(&pseudo.to_be_bytes());
        (whole, partial, n)
    }

    #[test]
    fn needs_csum_is_completed_to_what_a_full_sum_gives_both_families() {
        for v6 in [false, true] {
            for len in [0, 1, 1439, 20_000] {
                let payload: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
                let (whole, mut partial, ip_len) = partial_segment(v6, &payload);
                assert_ne!(whole, partial);
                let h = VnetHeader {
                    flags: F_NEEDS_CSUM,
                    csum_start: ip_len as u16,
                    csum_offset: 16,
                    ..VnetHeader::default()
                };
                h.complete_checksum(&mut partial).unwrap();
                assert_eq!(partial, whole, "v6 {v6} len {len}");
                let view = parse_ip(&partial).unwrap();
                TcpRepr::parse_segment(view.payload, view.src, view.dst)
                    .expect("the completed segment verifies");
            }
        }
    }

    fn needs_csum(ip_len: usize, offset: u16) -> VnetHeader {
        VnetHeader {
            flags: F_NEEDS_CSUM,
            csum_start: ip_len as u16,
            csum_offset: offset,
            ..VnetHeader::default()
        }
    }

    #[test]
    fn a_completed_partial_checksum_is_vouched_for_and_verifies() {
        for v6 in [false, true] {
            for len in [0, 1, 20_000] {
                let payload: Vec<u8> = (0..len).map(|i| (i * 5 + 1) as u8).collect();
                let (whole, mut partial, ip_len) = partial_segment(v6, &payload);
                assert_eq!(
                    needs_csum(ip_len, 16).complete_and_vouch(&mut partial),
                    Ok(true)
                );
                assert_eq!(partial, whole, "v6 {v6} len {len}: completed");
                // What was vouched for is what a full verification accepts.
                let view = parse_ip(&partial).unwrap();
                TcpRepr::parse_segment(view.payload, view.src, view.dst).unwrap();
            }
        }
    }

    #[test]
    fn a_partial_checksum_is_not_vouched_for_unless_everything_matches() {
        for v6 in [false, true] {
            let (_, partial, ip_len) = partial_segment(v6, b"some data");
            let vouch = |h: VnetHeader, p: &[u8]| h.complete_and_vouch(&mut p.to_vec());
            // The field does not hold the pseudo-header sum the core would
            // compute (a wrong length or address went into it).
            let mut wrong_sum = partial.clone();
            wrong_sum[ip_len + 16] ^= 0x01;
            assert_eq!(vouch(needs_csum(ip_len, 16), &wrong_sum), Ok(false));
            let mut other_dst = partial.clone();
            let dst_at = if v6 { 39 } else { 19 };
            other_dst[dst_at] ^= 0x01;
            assert_eq!(vouch(needs_csum(ip_len, 16), &other_dst), Ok(false));
            // Offsets that do not point at the TCP checksum field.
            assert_eq!(vouch(needs_csum(ip_len, 6), &partial), Ok(false));
            assert_eq!(vouch(needs_csum(ip_len - 4, 20), &partial), Ok(false));
            // Trailing bytes the IP length does not cover.
            let mut longer = partial.clone();
            longer.push(0);
            assert_eq!(vouch(needs_csum(ip_len, 16), &longer), Ok(false));
            // No flags: the core verifies; DATA_VALID: the kernel did.
            assert_eq!(vouch(VnetHeader::default(), &partial), Ok(false));
            let valid = VnetHeader {
                flags: F_DATA_VALID,
                ..VnetHeader::default()
            };
            assert_eq!(vouch(valid, &partial), Ok(true));
            // Not TCP or UDP (here ICMP, protocol 1; the IPv4 header
            // checksum is not looked at): never vouched for.
            let mut icmp = partial.clone();
            icmp[if v6 { 6 } else { 9 }] = if v6 { 58 } else { 1 };
            assert_eq!(vouch(valid, &icmp), Ok(false));
        }
        // An IPv4 fragment is not a whole datagram.
        let (_, mut frag, ip_len) = partial_segment(false, b"x");
        frag[6] = 0x20; // more fragments
        assert_eq!(
            needs_csum(ip_len, 16).complete_and_vouch(&mut frag),
            Ok(false)
        );
    }

    #[test]
    fn a_udp_partial_checksum_is_vouched_for() {
        let (whole, data) = udp_super("10.77.0.1", "10.77.0.2", 8);
        let (src, dst) = ("10.77.0.1".parse().unwrap(), "10.77.0.2".parse().unwrap());
        let n = whole.len() - 8 - data.len();
        let mut partial = whole.clone();
        let pseudo = checksum::pseudo_header(src, dst, IpProtocol::Udp, 8 + data.len()).unwrap();
        partial[n + 6..n + 8].copy_from_slice(&pseudo.to_be_bytes());
        assert_eq!(needs_csum(n, 6).complete_and_vouch(&mut partial), Ok(true));
        assert_eq!(partial, whole);
        assert_eq!(
            needs_csum(n, 4).complete_and_vouch(&mut whole.clone()),
            Ok(false)
        );
    }

    /// A UDP datagram of `len` payload bytes with its full checksum; with
    /// `len` above a segment size, a super-datagram as a UDP_SEGMENT
    /// sender hands it to TUN (the UDP length field over the whole).
    fn udp_super(src: &str, dst: &str, len: usize) -> (Vec<u8>, Vec<u8>) {
        use crate::wire::UdpRepr;
        let (src, dst): (std::net::IpAddr, std::net::IpAddr) =
            (src.parse().unwrap(), dst.parse().unwrap());
        let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        let ip = IpHeader {
            src,
            dst,
            protocol: IpProtocol::Udp,
            payload_len: 8 + data.len(),
            hop_limit: 64,
            ident: 7,
            dont_frag: true,
            ecn: 0,
        };
        let mut p = vec![0u8; ip.buffer_len()];
        let n = ip.emit(&mut p).unwrap();
        let udp = UdpRepr {
            src_port: 4000,
            dst_port: 7,
        };
        udp.emit(&mut p[n..], src, dst, &data).unwrap();
        (p, data)
    }

    #[test]
    fn segment_udp_cuts_a_super_datagram_into_checksummed_datagrams_both_families() {
        use crate::wire::UdpRepr;
        for (src, dst) in [("10.77.0.1", "10.77.0.2"), ("fd77::1", "fd77::2")] {
            let (p, data) = udp_super(src, dst, 3500);
            let mut out = Vec::new();
            assert!(segment_udp(&p, 1000, &mut Vec::new(), &mut out));
            assert_eq!(out.len(), 4);
            let mut got = Vec::new();
            for (i, d) in out.iter().enumerate() {
                let ip = parse_ip(d).expect("a valid IP datagram");
                assert!(ip.fragment.is_none());
                let (udp, payload) = UdpRepr::parse_datagram(ip.payload, ip.src, ip.dst)
                    .expect("each piece's UDP checksum verifies");
                assert_eq!((udp.src_port, udp.dst_port), (4000, 7));
                assert_eq!(payload.len(), if i < 3 { 1000 } else { 500 });
                got.extend_from_slice(payload);
            }
            assert_eq!(got, data);
        }
    }

    #[test]
    fn segment_udp_refuses_what_is_not_a_whole_udp_datagram() {
        let (mut p, _) = udp_super("10.77.0.1", "10.77.0.2", 3000);
        let mut out = Vec::new();
        assert!(!segment_udp(&p, 0, &mut Vec::new(), &mut out));
        assert!(!segment_udp(&p[..100], 1000, &mut Vec::new(), &mut out));
        p[9] = 6; // TCP
        assert!(!segment_udp(&p, 1000, &mut Vec::new(), &mut out));
        assert!(out.is_empty());
    }

    #[test]
    fn needs_csum_with_offsets_outside_the_packet_is_refused() {
        let mut packet = vec![0u8; 60];
        for (start, offset) in [(59, 0), (40, 19), (u16::MAX, u16::MAX), (60, 0)] {
            let h = VnetHeader {
                flags: F_NEEDS_CSUM,
                csum_start: start,
                csum_offset: offset,
                ..VnetHeader::default()
            };
            assert_eq!(
                h.complete_checksum(&mut packet),
                Err(VnetError::BadChecksumOffsets),
                "{start} {offset}"
            );
        }
        assert_eq!(packet, vec![0u8; 60], "left alone");
    }
}

#[cfg(test)]
mod tso_tests {
    use super::tests::partial_segment;
    use super::*;

    fn segment(v6: bool, payload_len: usize) -> (Vec<u8>, usize) {
        let payload: Vec<u8> = (0..payload_len).map(|i| (i * 13) as u8).collect();
        let (whole, _, ip_len) = partial_segment(v6, &payload);
        (whole, ip_len)
    }

    #[test]
    fn tso_header_describes_a_super_segment_and_leaves_the_pseudo_sum() {
        for v6 in [false, true] {
            let (mut packet, ip_len) = segment(v6, 10 * 1448);
            let (_, partial, _) = partial_segment(
                v6,
                &(0..10 * 1448).map(|i| (i * 13) as u8).collect::<Vec<u8>>(),
            );
            let h = tso_header(&mut packet, 1500).expect("a super-segment");
            assert_eq!(
                packet, partial,
                "checksum field holds the pseudo-header sum"
            );
            assert_eq!(h.flags, F_NEEDS_CSUM);
            assert_eq!(h.gso_type, if v6 { GSO_TCPV6 } else { GSO_TCPV4 });
            assert_eq!(usize::from(h.csum_start), ip_len);
            assert_eq!(h.csum_offset, 16);
            assert_eq!(usize::from(h.hdr_len), ip_len + 20);
            assert_eq!(usize::from(h.gso_size), 1500 - ip_len - 20);
            // Completing it as the kernel would gives the full checksum.
            let mut done = packet.clone();
            h.complete_checksum(&mut done).unwrap();
            let view = crate::wire::parse_ip(&done).unwrap();
            crate::wire::TcpRepr::parse_segment(view.payload, view.src, view.dst)
                .expect("pieces verify");
        }
    }

    #[test]
    fn tso_header_leaves_small_and_non_tcp_packets_alone() {
        let (mut small, _) = segment(false, 1000);
        let before = small.clone();
        assert_eq!(tso_header(&mut small, 1500), None);
        assert_eq!(small, before);
        let (mut udp, _) = segment(false, 3000);
        udp[9] = 17;
        let before = udp.clone();
        assert_eq!(tso_header(&mut udp, 1500), None);
        assert_eq!(udp, before);
        assert_eq!(tso_header(&mut [0x45; 10].to_vec(), 5), None, "truncated");
        assert_eq!(tso_header(&mut [0x60; 30].to_vec(), 5), None, "truncated");
    }
}
