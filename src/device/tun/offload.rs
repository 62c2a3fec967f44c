//! Offload negotiation: with [`TunConfig::offload`] (on by default) the
//! device is opened with `IFF_VNET_HDR`, so a `struct virtio_net_hdr`
//! ([`vnet`]) precedes every packet in both directions, and
//! `TUNSETOFFLOAD` declares that we take partial checksums and TCP
//! segmentation (TSO4, TSO6), and UDP segmentation (USO) where the kernel
//! knows it. The kernel then hands its TCP data to us as super-packets of
//! up to 64 KiB, one read each, instead of one read per MTU-sized segment.
//! A kernel that refuses any step leaves the device in plain mode, logged
//! at `info`. What each offload means for a packet read or written is
//! `link.rs`'s business.
//!
//! Must not touch: packets, and the interface's configuration; this file
//! only asks the kernel, once per fd, and records the answer.
//!
//! [`TunConfig::offload`]: super::TunConfig::offload

use std::ffi::c_void;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use super::ioctl;
use super::setup::open_clone_device;
use crate::device::vnet;

/// The TUN offloads a device runs with, as the kernel accepted them.
/// Sending super-segments needs only `vnet`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Offloads {
    /// Packets carry a `virtio_net_hdr` (`IFF_VNET_HDR`).
    pub vnet: bool,
    /// The kernel may hand us partial checksums (`TUN_F_CSUM`).
    pub csum: bool,
    /// The kernel may hand us TCP super-packets (`TUN_F_TSO4 | TUN_F_TSO6`).
    pub tso: bool,
    /// The kernel may hand us UDP super-datagrams (`TUN_F_USO4 |
    /// TUN_F_USO6`, Linux 6.2 and later), which the device cuts into the
    /// datagrams they stand for.
    pub uso: bool,
}

/// `TUN_F_USO4` and `TUN_F_USO6` (linux/if_tun.h; not in the libc crate).
const TUN_F_USO: u32 = 0x20 | 0x40;

/// Whether the TUN driver knows `IFF_VNET_HDR` (`TUNGETFEATURES` on an
/// unbound clone fd).
pub(super) fn supports_vnet_header() -> bool {
    let Ok(fd) = open_clone_device() else {
        return false;
    };
    let mut features: libc::c_uint = 0;
    match ioctl(
        fd.as_raw_fd(),
        libc::TUNGETFEATURES,
        (&mut features as *mut libc::c_uint).cast(),
    ) {
        Ok(()) => features & libc::IFF_VNET_HDR as libc::c_uint != 0,
        Err(e) => {
            log::info!("tun: TUNGETFEATURES failed ({e}); no offloads");
            false
        }
    }
}

/// Sets the vnet header size and asks for the offloads, most first; what
/// the kernel refuses is left off. Without `TUNSETVNETHDRSZ` the kernel's
/// default size (10, ours) stands.
pub(super) fn set_offloads(fd: &OwnedFd, name: &str) -> Offloads {
    let mut size = vnet::HEADER_LEN as libc::c_int;
    if let Err(e) = ioctl(
        fd.as_raw_fd(),
        libc::TUNSETVNETHDRSZ,
        (&mut size as *mut libc::c_int).cast(),
    ) {
        log::info!("tun: {name}: TUNSETVNETHDRSZ {size}: {e}; keeping the default");
    }
    // TUNSETOFFLOAD takes its argument by value.
    negotiate_offloads(|flags| {
        ioctl(
            fd.as_raw_fd(),
            libc::TUNSETOFFLOAD,
            libc::c_ulong::from(flags) as *mut c_void,
        )
        .inspect_err(|e| log::info!("tun: {name}: TUNSETOFFLOAD {flags:#x} refused: {e}"))
    })
}

/// Asks `set_offload` for the offloads, most first (checksum, TSO and USO;
/// checksum and TSO; checksum alone; none: the kernel refuses a set with
/// any flag it does not know), and returns what the first accepted set
/// gives. With
/// `vnet` alone, super-segments can still be sent (the kernel cuts what a
/// vnet header asks it to whatever we accept), and a kernel that refuses
/// even that is caught at run time (see `TunDevice::send_batch`).
pub(super) fn negotiate_offloads(mut set_offload: impl FnMut(u32) -> io::Result<()>) -> Offloads {
    let tso = libc::TUN_F_CSUM | libc::TUN_F_TSO4 | libc::TUN_F_TSO6;
    let all = Offloads {
        vnet: true,
        csum: true,
        tso: true,
        uso: true,
    };
    for (flags, offloads) in [
        (tso | TUN_F_USO, all),
        (tso, Offloads { uso: false, ..all }),
        (
            libc::TUN_F_CSUM,
            Offloads {
                tso: false,
                uso: false,
                ..all
            },
        ),
    ] {
        if set_offload(flags).is_ok() {
            return offloads;
        }
    }
    Offloads {
        vnet: true,
        ..Offloads::default()
    }
}
