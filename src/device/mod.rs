//! Links: where packets enter and leave the stack.
//!
//! Owns the [`Link`] trait and its implementations. A link carries whole IP
//! datagrams (no link-layer header) and moves them in batches, so the runtime
//! can drain a device per wake-up and write many packets per call.
//!
//! Must not touch: protocol state. A link never parses beyond what it needs
//! (the pcap tap and fault injector look at no header at all).
//!
//! The links compose by wrapping: `PcapTap<FaultLink<TunDevice>>` records what
//! the stack sent and received before impairment, `FaultLink<PcapTap<..>>`
//! records what actually crossed the wire. A wrapper writes only the methods
//! it changes and passes the rest to the link it wraps with
//! `forward_link!`.
//!
//! - [`tun`]: the real link, a TUN device in point-to-point mode.
//! - [`pipe`]: an in-memory pair for two stacks in one process.
//! - [`pcap`]: a pcap writer and a tap that records any link.
//! - [`fault`]: seeded, replayable loss, duplication, reordering, corruption,
//!   delay and rate limiting around any link.
//!
//! Driving a link: sleep until [`Link::wait_fd`] polls readable or
//! [`Link::poll_at`] passes, whichever is first, then call `recv_batch`
//! (which also releases a fault injector's held outgoing packets) and
//! `send_batch` with whatever the stack has queued. A link never blocks and
//! never reads a clock: `now` is whatever the caller passes, so a simulation
//! can run links on a virtual clock.

/// Writes [`Link`] methods, inside an `impl Link` block, as calls of the
/// same method on the link underneath: `forward_link!(inner: mtu, wait_fd)`
/// passes the named methods to the field `self.inner` (a wrapper's
/// pass-through methods: what it neither changes nor observes);
/// `forward_link!(*: ..)` to what `self` points at (`Box`, below). Defined
/// before the modules so that they can use it.
macro_rules! forward_link {
    ($field:ident: $($method:ident),+ $(,)?) => {
        $(forward_link!(@ self [self.$field] $method);)+
    };
    (*: $($method:ident),+ $(,)?) => {
        $(forward_link!(@ self [(**self)] $method);)+
    };
    // `self` comes from the arms above, with the expression that reaches
    // the link: a macro's own `self` would not be the method's.
    (@ $self:tt [$($to:tt)+] recv_batch) => {
        fn recv_batch(
            &mut $self,
            now: $crate::time::Instant,
            batch: &mut Vec<$crate::device::Packet>,
            max: usize,
        ) -> ::std::io::Result<usize> {
            $($to)+.recv_batch(now, batch, max)
        }
    };
    (@ $self:tt [$($to:tt)+] recv_batch_verified) => {
        fn recv_batch_verified(
            &mut $self,
            now: $crate::time::Instant,
            batch: &mut Vec<$crate::device::Packet>,
            verified: &mut Vec<bool>,
            max: usize,
        ) -> ::std::io::Result<usize> {
            $($to)+.recv_batch_verified(now, batch, verified, max)
        }
    };
    (@ $self:tt [$($to:tt)+] send_batch) => {
        fn send_batch(
            &mut $self,
            now: $crate::time::Instant,
            batch: &mut Vec<$crate::device::Packet>,
        ) -> ::std::io::Result<usize> {
            $($to)+.send_batch(now, batch)
        }
    };
    (@ $self:tt [$($to:tt)+] mtu) => {
        fn mtu(&$self) -> usize {
            $($to)+.mtu()
        }
    };
    (@ $self:tt [$($to:tt)+] wait_fd) => {
        fn wait_fd(&$self) -> Option<::std::os::fd::RawFd> {
            $($to)+.wait_fd()
        }
    };
    (@ $self:tt [$($to:tt)+] poll_at) => {
        fn poll_at(&$self) -> Option<$crate::time::Instant> {
            $($to)+.poll_at()
        }
    };
    (@ $self:tt [$($to:tt)+] recycle) => {
        fn recycle(&mut $self, packets: &mut Vec<$crate::device::Packet>) {
            $($to)+.recycle(packets)
        }
    };
    (@ $self:tt [$($to:tt)+] take_spent) => {
        fn take_spent(&mut $self, into: &mut Vec<$crate::device::Packet>) {
            $($to)+.take_spent(into)
        }
    };
    (@ $self:tt [$($to:tt)+] poll_event) => {
        fn poll_event(&mut $self) -> Option<$crate::device::LinkEvent> {
            $($to)+.poll_event()
        }
    };
    (@ $self:tt [$($to:tt)+] close) => {
        fn close(&mut $self, now: $crate::time::Instant) {
            $($to)+.close(now)
        }
    };
}

pub mod fault;
pub mod pcap;
pub mod pipe;
pub mod tun;
pub mod vnet;

use std::io;
use std::os::fd::RawFd;
use std::path::Path;

use crate::time::Instant;

pub use fault::{FaultConfig, FaultCounters, FaultLink, FaultStats, Impairment};
pub use pcap::{LINKTYPE_ETHERNET, LINKTYPE_RAW, PcapTap, PcapWriter};
pub use pipe::{PipeLink, pipe_pair, pipe_pair_with_capacity};
pub use tun::{Offloads, TunConfig, TunDevice, create_persistent, delete_persistent};

/// Wraps `link` in the impairment and capture the configuration asks for
/// (`USTACK_FAULT`, `USTACK_PCAP`), `now` being the link's clock at this
/// moment.
///
/// The capture is outermost, so it records the stack's own view: every
/// packet it sent (even one the fault injector then lost) and exactly what
/// it received (after loss and corruption). A no-op fault configuration adds
/// no layer.
pub fn wrap_link(
    link: Box<dyn Link>,
    fault: Option<&FaultConfig>,
    pcap: Option<&Path>,
    now: Instant,
) -> io::Result<Box<dyn Link>> {
    wrap_link_of(link, fault, pcap, now, pcap::LINKTYPE_RAW)
}

/// [`wrap_link`] for a link of another pcap link type: a TAP device's
/// frames ([`pcap::LINKTYPE_ETHERNET`]), below the Ethernet host, so the
/// fault injector impairs frames (ARP and NDP too) and the capture shows
/// them.
pub fn wrap_link_of(
    link: Box<dyn Link>,
    fault: Option<&FaultConfig>,
    pcap: Option<&Path>,
    now: Instant,
    linktype: u32,
) -> io::Result<Box<dyn Link>> {
    let link: Box<dyn Link> = match fault {
        Some(config) if !config.is_noop() && linktype == pcap::LINKTYPE_ETHERNET => {
            Box::new(FaultLink::frames(link, config))
        }
        Some(config) if !config.is_noop() => Box::new(FaultLink::new(link, config)),
        _ => link,
    };
    Ok(match pcap {
        Some(path) => Box::new(PcapTap::create_linktype(link, path, now, linktype)?),
        None => link,
    })
}

/// Packet and byte counters of one link, as seen from the stack: `rx` is
/// what the link delivered up, `tx` what it carried away.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Packets delivered by `recv_batch`.
    pub rx_packets: u64,
    /// Bytes delivered by `recv_batch`.
    pub rx_bytes: u64,
    /// Packets transmitted by `send_batch`.
    pub tx_packets: u64,
    /// Bytes transmitted by `send_batch`.
    pub tx_bytes: u64,
    /// Packets that arrived but could not be delivered (too big, a bad
    /// offload header).
    pub rx_dropped: u64,
    /// Of `rx_packets`, those larger than the MTU: TCP super-packets a
    /// TUN device with offloads hands over whole.
    pub rx_super_packets: u64,
    /// Of `tx_packets`, those larger than the MTU: TCP super-segments a
    /// TUN device with offloads hands the kernel to cut.
    pub tx_super_packets: u64,
    /// Packets `send_batch` took but could not transmit (oversize, a full
    /// peer queue, rejected by the kernel).
    pub tx_dropped: u64,
    /// TCP super-segments the link cut into MTU-sized pieces itself
    /// because the kernel refused to (a TUN device whose kernel turned a
    /// TSO write down; see `TunDevice::sends_super_packets`).
    pub tx_soft_segmented: u64,
}

impl LinkStats {
    fn count_rx(&mut self, len: usize) {
        self.rx_packets += 1;
        self.rx_bytes += len as u64;
    }

    fn count_tx(&mut self, len: usize) {
        self.tx_packets += 1;
        self.tx_bytes += len as u64;
    }
}

/// One packet on a link: a whole IPv4 or IPv6 datagram.
pub type Packet = Vec<u8>;

/// A point-to-point link that moves batches of IP packets.
///
/// Neither method blocks. The runtime waits on [`Link::wait_fd`] and
/// [`Link::poll_at`] between calls.
pub trait Link: Send {
    /// Appends up to `max` received packets to `batch` and returns how many
    /// it appended; `Ok(0)` when nothing is waiting. An error of kind
    /// `NotFound` means the device is gone for good (deleted).
    fn recv_batch(
        &mut self,
        now: Instant,
        batch: &mut Vec<Packet>,
        max: usize,
    ) -> io::Result<usize>;

    /// [`Link::recv_batch`], also appending to `verified` one flag per
    /// packet appended to `batch`: whether the link vouches for that
    /// packet's TCP or UDP checksum, so the core need not sum it
    /// (`Core::input_verified`). Only a link that knows says true: a TUN
    /// device with offloads, for packets the kernel verified or left for
    /// it to complete (`vnet::VnetHeader::complete_and_vouch`). Wrappers
    /// keep the default, all false: the fault injector corrupts packets,
    /// so nothing below it may be trusted.
    fn recv_batch_verified(
        &mut self,
        now: Instant,
        batch: &mut Vec<Packet>,
        verified: &mut Vec<bool>,
        max: usize,
    ) -> io::Result<usize> {
        let n = self.recv_batch(now, batch, max)?;
        verified.resize(verified.len() + n, false);
        Ok(n)
    }

    /// Takes packets from the front of `batch` (transmitting them, or
    /// dropping them on purpose, as a fault injector does), removes those it
    /// took, and returns how many. Packets the link cannot take now (a full
    /// device queue) stay in `batch`, in order, for a later call.
    fn send_batch(&mut self, now: Instant, batch: &mut Vec<Packet>) -> io::Result<usize>;

    /// The largest datagram the link carries, in bytes.
    fn mtu(&self) -> usize;

    /// A file descriptor that polls readable when [`Link::recv_batch`] may
    /// have packets (the TUN fd, an eventfd for in-memory links).
    fn wait_fd(&self) -> Option<RawFd>;

    /// When the link itself next has work due (a delayed packet to release),
    /// if ever.
    fn poll_at(&self) -> Option<Instant> {
        None
    }

    /// Hands back packets the caller is done with (ones `recv_batch`
    /// delivered, once the stack has consumed them), leaving `packets`
    /// empty. A link may keep their allocations to receive into, so the
    /// receive path allocates nothing per packet; the contents are
    /// meaningless. Wrappers forward to the link they wrap. The default
    /// drops them.
    fn recycle(&mut self, packets: &mut Vec<Packet>) {
        packets.clear();
    }

    /// Moves the buffers of packets the link has transmitted into `into`,
    /// so the caller can build new packets in them (the send path's half
    /// of [`Link::recycle`]). The contents are meaningless. Wrappers
    /// forward to the link they wrap. The default moves nothing.
    fn take_spent(&mut self, into: &mut Vec<Packet>) {
        let _ = into;
    }

    /// What the link learnt that the core must apply: an address it was
    /// given or lost (the Ethernet host's DHCP client). The runtime asks
    /// after every receive and transmit, and a link with an event waiting
    /// says so by a `poll_at` of now. Wrappers forward it; the default has
    /// none.
    fn poll_event(&mut self) -> Option<LinkEvent> {
        None
    }

    /// Called once when the stack stops, before the link is dropped: the
    /// last frames a link sends of its own (the DHCP client's RELEASE).
    /// Wrappers forward it; the default does nothing.
    fn close(&mut self, now: Instant) {
        let _ = now;
    }
}

/// What a link tells the core about the host's configuration
/// ([`Link::poll_event`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkEvent {
    /// The IPv4 address changed: `addr` is the new one with its on-link
    /// prefix (`None`: no IPv4 address any more), `gateway` the next hop
    /// for off-link destinations, `dns_servers` what the lease named.
    Ipv4 {
        /// The address and prefix, if any.
        addr: Option<crate::wire::Prefix<std::net::Ipv4Addr>>,
        /// The gateway, if any.
        gateway: Option<std::net::Ipv4Addr>,
        /// DNS servers, in order.
        dns_servers: Vec<std::net::Ipv4Addr>,
    },
    /// The IPv6 address changed (SLAAC): `addr` the global address and
    /// its /64 (`None`: none), `gateway` the default router.
    Ipv6 {
        /// The address and prefix, if any.
        addr: Option<crate::wire::Prefix<std::net::Ipv6Addr>>,
        /// The default router, if any.
        gateway: Option<std::net::Ipv6Addr>,
    },
}

/// Every method, so that a boxed link keeps the overrides of the link in
/// the box.
impl<L: Link + ?Sized> Link for Box<L> {
    forward_link!(
        *: recv_batch, recv_batch_verified, send_batch, mtu, wait_fd, poll_at, recycle, take_spent,
        poll_event, close
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_link_records_what_the_stack_sent_before_the_fault_injector_drops_it() {
        let (a, b) = pipe_pair(1500);
        let path = std::env::temp_dir().join(format!("ustack-wrap-{}.pcap", std::process::id()));
        let fault = FaultConfig::parse("loss=1").unwrap();
        let mut link = wrap_link(Box::new(a), Some(&fault), Some(&path), Instant::ZERO).unwrap();
        assert_eq!(link.mtu(), 1500);
        let mut batch = vec![vec![0x45; 20], vec![0x45; 20]];
        assert_eq!(link.send_batch(Instant::ZERO, &mut batch).unwrap(), 2);
        assert_eq!(b.pending(), 0, "all lost");
        drop(link);
        let size = std::fs::metadata(&path).unwrap().len();
        let _ = std::fs::remove_file(&path);
        assert_eq!(size, 24 + 2 * (16 + 20), "both recorded");
    }

    #[test]
    fn wrap_link_adds_nothing_for_a_noop_fault_and_no_capture() {
        let (a, b) = pipe_pair(1500);
        let fault = FaultConfig::parse("seed=3").unwrap();
        let mut link = wrap_link(Box::new(a), Some(&fault), None, Instant::ZERO).unwrap();
        link.send_batch(Instant::ZERO, &mut vec![vec![1]]).unwrap();
        assert_eq!(b.pending(), 1);
        assert_eq!(link.poll_at(), None);
    }

    #[test]
    fn wrap_link_reports_an_unwritable_capture_path() {
        let (a, _b) = pipe_pair(1500);
        let path = Path::new("/nonexistent-dir/x.pcap");
        let e = wrap_link(Box::new(a), None, Some(path), Instant::ZERO)
            .err()
            .unwrap();
        assert!(
            e.to_string()
                .contains("cannot create pcap file /nonexistent-dir/x.pcap"),
            "{e}"
        );
    }
}
