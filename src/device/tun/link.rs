//! Packet I/O: [`TunDevice`], the bound fd's reads and writes, and its
//! [`Link`] implementation.
//!
//! With a vnet header (see `offload.rs`) we strip it from what we read,
//! complete a partial checksum so the core verifies the packet like any
//! other (or vouch for it, [`Link::recv_batch_verified`]), cut a UDP
//! super-datagram into the datagrams it stands for, and deliver a TCP
//! super-packet as one datagram (larger than the MTU; counted in
//! [`LinkStats::rx_super_packets`]). What we write carries an all-zero
//! header unless it is a TCP super-segment for the kernel to cut; once
//! the kernel refuses one, we cut them ourselves.
//!
//! Must not touch: the interface's configuration and the offloads (fixed
//! when the fd was bound); a read or write never blocks and never reads a
//! clock.

use std::ffi::c_void;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use super::offload::Offloads;
use super::{context, errno};
use crate::device::vnet::{self, VnetHeader};
use crate::device::{Link, LinkStats, Packet};
use crate::time::Instant;

/// Enough for any datagram without jumbograms, whatever the device's MTU:
/// an IPv4 datagram is at most 65,535 bytes, an IPv6 one 40 more (and a
/// super-packet the kernel hands us is no larger).
const READ_BUFFER: usize = 65_536 + 64;

/// The most recycled receive buffers kept (at [`READ_BUFFER`] each, 16 MiB
/// at most), and the most sent ones; the runtime hands buffers back once a
/// batch, so this is slack.
const MAX_POOLED: usize = 256;

/// A TUN device carrying bare IPv4/IPv6 datagrams, non-blocking.
///
/// Dropping it closes the fd, which deletes the device if this process
/// created it (and it is not persistent).
///
/// A stack on a device of one's own choosing (needs CAP_NET_ADMIN, or a
/// device made beforehand with `scripts/ustack --setup`):
///
/// ```no_run
/// use ustack::api::Stack;
/// use ustack::device::{TunConfig, TunDevice};
/// use ustack::rand::Rng;
/// use ustack::stack::CoreConfig;
///
/// let tun = TunDevice::open(&TunConfig { mtu: 9000, ..TunConfig::named("ustack1") })?;
/// let cfg = CoreConfig { mtu: 9000, seed: Rng::from_os().next_u64(), ..CoreConfig::default() };
/// let stack = Stack::with_link(Box::new(tun), cfg)?;
/// # drop(stack);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct TunDevice {
    fd: OwnedFd,
    name: String,
    mtu: usize,
    created: bool,
    stats: LinkStats,
    /// Buffers handed back by [`Link::recycle`], read into next.
    pool: Vec<Packet>,
    /// Buffers of packets written, for [`Link::take_spent`].
    spent: Vec<Packet>,
    /// What the kernel agreed to; `vnet` means every packet read or
    /// written carries a [`VnetHeader`].
    offloads: Offloads,
    /// The capacity a receive buffer needs: the largest datagram the
    /// device can hand us.
    rx_size: usize,
    /// Super-segments go to the kernel whole, for it to cut (TSO). Turned
    /// off for good the first time the kernel refuses one; from then on
    /// `send_batch` cuts them itself ([`vnet::segment_tcp`]).
    tx_tso: bool,
}

impl TunDevice {
    /// The device over `fd`, bound to the interface `name` whose MTU the
    /// kernel reports as `mtu`, with the `offloads` it agreed to;
    /// `created` if this process made the device.
    pub(super) fn new(
        fd: OwnedFd,
        name: String,
        mtu: usize,
        created: bool,
        offloads: Offloads,
    ) -> TunDevice {
        TunDevice {
            fd,
            name,
            mtu,
            created,
            stats: LinkStats::default(),
            pool: Vec::new(),
            spent: Vec::new(),
            rx_size: READ_BUFFER.max(mtu),
            tx_tso: offloads.vnet,
            offloads,
        }
    }

    /// The interface name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether this process created the device (rather than attached to an
    /// existing one).
    pub fn created(&self) -> bool {
        self.created
    }

    /// Packets and bytes in and out, and drops.
    pub fn stats(&self) -> LinkStats {
        self.stats
    }

    /// The offloads in effect (all off in plain mode).
    pub fn offloads(&self) -> Offloads {
        self.offloads
    }

    /// Whether super-segments still go to the kernel whole (false in
    /// plain mode, and after the kernel refused one: then the device cuts
    /// them, counting each in [`LinkStats::tx_soft_segmented`]).
    pub fn sends_super_packets(&self) -> bool {
        self.tx_tso
    }

    /// The most TCP payload per segment this device takes for the kernel
    /// to segment (a TCP super-segment larger than the MTU, see
    /// [`crate::tcp::TcpConfig::tso_max`]); 0 in plain mode.
    pub fn tso_max(&self) -> u32 {
        if self.offloads.vnet {
            vnet::TSO_MAX_PAYLOAD
        } else {
            0
        }
    }
}

impl TunDevice {
    /// Reads up to `max` packets into `batch`, pushing each one's
    /// checksum verdict to `verified` when given (see
    /// `Link::recv_batch_verified`).
    fn read_packets(
        &mut self,
        batch: &mut Vec<Packet>,
        mut verified: Option<&mut Vec<bool>>,
        max: usize,
    ) -> io::Result<usize> {
        let mut n = 0;
        while n < max {
            let mut packet = self.pool.pop().unwrap_or_default();
            packet.clear();
            packet.reserve(self.rx_size);
            let mut header = [0u8; vnet::HEADER_LEN];
            let mut iov = [
                libc::iovec {
                    iov_base: header.as_mut_ptr().cast(),
                    iov_len: header.len(),
                },
                libc::iovec {
                    iov_base: packet.as_mut_ptr().cast(),
                    iov_len: packet.capacity(),
                },
            ];
            // Without a vnet header the packet is all there is.
            let iov = if self.offloads.vnet {
                &mut iov[..]
            } else {
                &mut iov[1..]
            };
            // SAFETY: the kernel writes at most each iovec's length into
            // the buffer it points at: our header array and the vector's
            // own allocation, both live across the call.
            let got =
                unsafe { libc::readv(self.fd.as_raw_fd(), iov.as_ptr(), iov.len() as libc::c_int) };
            if got < 0 {
                self.pool.push(packet);
                let e = io::Error::last_os_error();
                match errno(&e) {
                    libc::EINTR => continue,
                    libc::EAGAIN => break,
                    // Report a failure only when it is not hiding packets
                    // already read; a lasting one recurs on the next call.
                    _ if n > 0 => break,
                    // The device was deleted: the fd is detached for good.
                    libc::EBADFD => {
                        return Err(io::Error::new(
                            io::ErrorKind::NotFound,
                            format!("reading TUN device {}: it was deleted ({e})", self.name),
                        ));
                    }
                    _ => return Err(context(e, format_args!("reading TUN device {}", self.name))),
                }
            }
            let mut len = got as usize;
            if self.offloads.vnet {
                if len < vnet::HEADER_LEN {
                    self.stats.rx_dropped += 1;
                    self.pool.push(packet);
                    continue;
                }
                len -= vnet::HEADER_LEN;
            }
            // SAFETY: readv initialised the first `len` bytes after the
            // header, and `len` is at most the capacity it was given.
            unsafe { packet.set_len(len) };
            let mut vouched = false;
            if self.offloads.vnet {
                let header = VnetHeader::parse(&header);
                if let Ok(h) = header
                    && h.gso_type & !vnet::GSO_ECN == vnet::GSO_UDP_L4
                {
                    // A UDP super-datagram: the datagrams it stands for go
                    // to the core one by one, their checksums computed here.
                    let before = batch.len();
                    if vnet::segment_udp(&packet, usize::from(h.gso_size), &mut self.pool, batch) {
                        let pieces = batch.len() - before;
                        self.stats.count_rx(len);
                        self.stats.rx_super_packets += 1;
                        if let Some(v) = verified.as_deref_mut() {
                            v.extend(std::iter::repeat_n(true, pieces));
                        }
                        n += pieces;
                    } else {
                        log::debug!("tun: {} dropped a {len}-byte UDP super-datagram", self.name);
                        self.stats.rx_dropped += 1;
                    }
                    self.pool.push(packet);
                    continue;
                }
                match header.and_then(|h| h.complete_and_vouch(&mut packet)) {
                    Ok(v) => vouched = v,
                    Err(e) => {
                        log::debug!("tun: {} dropped a {len}-byte packet: {e:?}", self.name);
                        self.stats.rx_dropped += 1;
                        self.pool.push(packet);
                        continue;
                    }
                }
            }
            self.stats.count_rx(len);
            if len > self.mtu {
                self.stats.rx_super_packets += 1;
            }
            batch.push(packet);
            if let Some(v) = verified.as_deref_mut() {
                v.push(vouched);
            }
            n += 1;
        }
        Ok(n)
    }
}

impl Link for TunDevice {
    fn recv_batch(
        &mut self,
        _now: Instant,
        batch: &mut Vec<Packet>,
        max: usize,
    ) -> io::Result<usize> {
        self.read_packets(batch, None, max)
    }

    fn recv_batch_verified(
        &mut self,
        _now: Instant,
        batch: &mut Vec<Packet>,
        verified: &mut Vec<bool>,
        max: usize,
    ) -> io::Result<usize> {
        self.read_packets(batch, Some(verified), max)
    }

    fn send_batch(&mut self, _now: Instant, batch: &mut Vec<Packet>) -> io::Result<usize> {
        let mut taken = 0;
        let mut failure = None;
        while taken < batch.len() {
            if self.offloads.vnet && !self.tx_tso && batch[taken].len() > self.mtu {
                // The kernel refused TSO: the pieces take the super-segment's
                // place in the batch, in order (its buffer is spent).
                let mut pieces = Vec::new();
                if vnet::segment_tcp(&batch[taken], self.mtu, &mut self.spent, &mut pieces) {
                    self.stats.tx_soft_segmented += 1;
                    let whole: Vec<Packet> = batch.splice(taken..=taken, pieces).collect();
                    self.spent.extend(whole);
                }
            }
            let packet = &mut batch[taken];
            // All zero (no checksum to complete, no segmentation) unless
            // the packet is a TCP super-segment for the kernel to cut.
            let tso = match self.offloads.vnet && self.tx_tso {
                true => vnet::tso_header(packet, self.mtu),
                false => None,
            };
            let header = tso.unwrap_or_default().emit();
            let iov = [
                libc::iovec {
                    iov_base: header.as_ptr() as *mut c_void,
                    iov_len: header.len(),
                },
                libc::iovec {
                    iov_base: packet.as_ptr() as *mut c_void,
                    iov_len: packet.len(),
                },
            ];
            let iov = if self.offloads.vnet {
                &iov[..]
            } else {
                &iov[1..]
            };
            // SAFETY: the kernel only reads each iovec's length from the
            // live header array and packet; nothing writes through them.
            let put = unsafe {
                libc::writev(self.fd.as_raw_fd(), iov.as_ptr(), iov.len() as libc::c_int)
            };
            if put >= 0 {
                self.stats.count_tx(packet.len());
                if packet.len() > self.mtu {
                    self.stats.tx_super_packets += 1;
                }
                taken += 1;
                continue;
            }
            let e = io::Error::last_os_error();
            match errno(&e) {
                libc::EINTR => continue,
                libc::EAGAIN => break,
                // The kernel would not take a super-segment: segment in
                // software from now on, starting with this one (whose
                // checksum field `tso_header` left partial; the cut pieces
                // get theirs whole).
                libc::EINVAL | libc::EIO | libc::EMSGSIZE if tso.is_some() => {
                    log::warn!(
                        "tun: {} refused a {}-byte TCP super-segment ({e}); \
                         segmenting in software from now on",
                        self.name,
                        packet.len()
                    );
                    self.tx_tso = false;
                }
                // The kernel refused this packet (not IP, too big, no memory
                // for it, device down): retrying would fail the same way, so
                // drop it as a wire would.
                libc::EINVAL | libc::EMSGSIZE | libc::EIO | libc::ENOMEM | libc::ENOBUFS => {
                    log::debug!(
                        "tun: {} dropped a {}-byte packet: {e}",
                        self.name,
                        packet.len()
                    );
                    self.stats.tx_dropped += 1;
                    taken += 1;
                }
                _ => {
                    failure = Some(context(e, format_args!("writing TUN device {}", self.name)));
                    break;
                }
            }
        }
        let room = MAX_POOLED.saturating_sub(self.spent.len());
        self.spent.extend(batch.drain(..taken).take(room));
        match failure {
            Some(e) if taken == 0 => Err(e),
            _ => Ok(taken),
        }
    }

    fn mtu(&self) -> usize {
        self.mtu
    }

    fn wait_fd(&self) -> Option<RawFd> {
        Some(self.fd.as_raw_fd())
    }

    fn recycle(&mut self, packets: &mut Vec<Packet>) {
        let room = MAX_POOLED.saturating_sub(self.pool.len());
        let keep = packets.len().min(room);
        self.pool.extend(packets.drain(..keep));
        packets.clear();
    }

    fn take_spent(&mut self, into: &mut Vec<Packet>) {
        into.append(&mut self.spent);
    }
}
