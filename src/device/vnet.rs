//! The `struct virtio_net_hdr` a TUN device opened with `IFF_VNET_HDR`
//! puts in front of every packet, in both directions.
//!
//! Owns the header's layout and the one thing the receive path must do
//! with it: complete a checksum the kernel left partial
//! (`VIRTIO_NET_HDR_F_NEEDS_CSUM`), so the core verifies such a packet like
//! any other; and on the send side, the header that has the kernel cut a
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
