//! The output path: wrapping an upper-layer message in IP, fragmenting it
//! when it does not fit the link MTU, and queueing it for the link.

use std::io;
use std::net::IpAddr;

use super::{Core, errno};
use crate::ip::{FragmentError, IpVersion, plan};
use crate::wire::{IpHeader, IpProtocol, Ipv4Repr, Ipv6FragmentRepr, Ipv6Repr};

impl Core {
    /// Queues `payload` (a whole upper-layer message, checksum included) to
    /// `dst` as one datagram, or as fragments if it exceeds the MTU.
    ///
    /// `EMSGSIZE` if it cannot be sent even as fragments (over 65,535
    /// bytes); `ENOBUFS` if the transmit queue is full.
    pub(crate) fn send_datagram(
        &mut self,
        src: IpAddr,
        dst: IpAddr,
        protocol: IpProtocol,
        payload: &[u8],
    ) -> io::Result<()> {
        let version = if dst.is_ipv4() {
            IpVersion::V4
        } else {
            IpVersion::V6
        };
        let header = IpHeader {
            src,
            dst,
            protocol,
            payload_len: payload.len(),
            hop_limit: self.cfg.hop_limit,
            ident: 0,
            dont_frag: false,
            ecn: 0,
        };
        let plan = plan(version, header.header_len(), payload.len(), self.cfg.mtu).map_err(
            |e| match e {
                FragmentError::TooLarge => errno(libc::EMSGSIZE),
                _ => errno(libc::EINVAL),
            },
        )?;
        let fragments = plan.len();
        if self.tx.len() + fragments > self.cfg.max_tx_queue {
            self.counters.tx_dropped += fragments as u64;
            return Err(errno(libc::ENOBUFS));
        }
        if !plan.is_fragmented() {
            let mut packet = self.new_packet(header.buffer_len(), payload.len());
            let n = header.emit(&mut packet).map_err(|_| errno(libc::EINVAL))?;
            packet[n..].copy_from_slice(payload);
            self.tx.push_back(packet);
            return Ok(());
        }
        self.counters.fragmented += 1;
        match (src, dst) {
            (IpAddr::V4(src_addr), IpAddr::V4(dst_addr)) => {
                let ident = self.ids.next_v4(src_addr, dst_addr);
                for spec in plan {
                    let chunk = &payload[spec.offset..spec.offset + spec.len];
                    let repr = Ipv4Repr {
                        src_addr,
                        dst_addr,
                        protocol,
                        payload_len: spec.len,
                        ttl: self.cfg.hop_limit,
                        ident,
                        dont_frag: false,
                        more_frags: spec.more_fragments,
                        frag_offset: spec.offset as u16,
                        dscp: 0,
                        ecn: 0,
                    };
                    let mut packet = vec![0u8; crate::wire::ipv4::HEADER_LEN + spec.len];
                    let n = repr.emit(&mut packet).map_err(|_| errno(libc::EINVAL))?;
                    packet[n..].copy_from_slice(chunk);
                    self.tx.push_back(packet);
                }
            }
            (IpAddr::V6(src_addr), IpAddr::V6(dst_addr)) => {
                let ident = self.ids.next_v6(src_addr, dst_addr);
                for spec in plan {
                    let chunk = &payload[spec.offset..spec.offset + spec.len];
                    let fixed = Ipv6Repr {
                        src_addr,
                        dst_addr,
                        next_header: IpProtocol::Ipv6Frag,
                        payload_len: crate::wire::ipv6::FRAGMENT_HEADER_LEN + spec.len,
                        hop_limit: self.cfg.hop_limit,
                        traffic_class: 0,
                        flow_label: 0,
                    };
                    let frag = Ipv6FragmentRepr {
                        next_header: protocol,
                        offset: spec.offset as u16,
                        more_frags: spec.more_fragments,
                        ident,
                    };
                    let mut packet = vec![
                        0u8;
                        crate::wire::ipv6::HEADER_LEN
                            + crate::wire::ipv6::FRAGMENT_HEADER_LEN
                            + spec.len
                    ];
                    let mut n = fixed.emit(&mut packet).map_err(|_| errno(libc::EINVAL))?;
                    n += frag
                        .emit(&mut packet[n..])
                        .map_err(|_| errno(libc::EINVAL))?;
                    packet[n..].copy_from_slice(chunk);
                    self.tx.push_back(packet);
                }
            }
            _ => return Err(errno(libc::EAFNOSUPPORT)),
        }
        Ok(())
    }
}
