//! The real link: a Linux TUN device in point-to-point mode.
//!
//! Packets are bare IP datagrams (`IFF_TUN | IFF_NO_PI`), or, with
//! [`TunConfig::tap`], Ethernet frames (`IFF_TAP | IFF_NO_PI`, no offloads
//! yet) for `crate::ethernet::EthernetLink` to make a host of. The kernel's
//! address on the interface is the *kernel* side of each pair; the stack's
//! address is the far end of the link, reachable through the device.
//!
//! Three parts, each in a file of its own, meeting only in
//! [`TunDevice::open`] here:
//!
//! - `setup.rs`: the interface: [`TunConfig`] and its checks, binding a
//!   clone fd to a name (creating or attaching), configuring a device we
//!   created (MTU, the IPv4 and IPv6 address pairs, bringing it up), and
//!   the persistent-device helpers behind the launcher's `--setup` and
//!   `--teardown`.
//! - `offload.rs`: what the kernel agrees to carry in a `virtio_net_hdr`
//!   ([`Offloads`]), asked once when the fd is bound.
//! - `link.rs`: [`TunDevice`], the fd's packet I/O, and its [`Link`]
//!   implementation.
//!
//! Must not touch (all three): any interface but the one named in the
//! config, routes other than the ones the kernel derives from that
//! interface's addresses (no default route, ever), and an existing
//! device's configuration: a device that already exists is attached as it
//! is.
//!
//! What the three share lives here: `open`, and the `ioctl`, `errno` and
//! `context` helpers.
//!
//! [`Link`]: super::Link

mod link;
mod offload;
mod setup;

use std::ffi::c_void;
use std::io;
use std::os::fd::RawFd;

pub use link::TunDevice;
pub use offload::Offloads;
pub use setup::{TunConfig, create_persistent, delete_persistent, validate_name};

use setup::{Control, Mode};

impl TunDevice {
    /// Attaches to the device `config.name` if it exists, leaving its
    /// configuration alone; otherwise creates and configures it from
    /// `config`. Needs CAP_NET_ADMIN to create.
    pub fn open(config: &TunConfig) -> io::Result<TunDevice> {
        config.validate()?;
        let name = &config.name;
        let control = Control::new(libc::AF_INET)
            .map_err(|e| context(e, format_args!("checking for TUN device {name}")))?;
        let exists = control
            .index(name)
            .map_err(|e| context(e, format_args!("checking for TUN device {name}")))?
            .is_some();
        let mode = if exists { Mode::Attach } else { Mode::Create };
        let vnet = config.offload && !config.tap && offload::supports_vnet_header();
        let (fd, name) = setup::set_iff(name, mode, vnet, config.tap)?;
        let offloads = if vnet {
            offload::set_offloads(&fd, &name)
        } else {
            Offloads::default()
        };
        if mode == Mode::Create {
            setup::configure(config, &name)?;
        }
        let mut mtu = control
            .mtu(&name)
            .map_err(|e| context(e, format_args!("reading the MTU of TUN device {name}")))?;
        if config.tap {
            // A TAP device's packets are frames: the MTU plus the header.
            mtu += crate::wire::ethernet::HEADER_LEN;
        }
        log::info!(
            "tun: {} {} {name}, MTU {mtu}, offloads {offloads:?}",
            if exists { "attached" } else { "created" },
            if config.tap { "TAP" } else { "TUN" }
        );
        Ok(TunDevice::new(fd, name, mtu, !exists, offloads))
    }
}

/// Keeps the kind of `e`, so callers can still match on it, and prefixes
/// what we were doing.
fn context(e: io::Error, what: impl std::fmt::Display) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

fn ioctl(fd: RawFd, request: libc::Ioctl, arg: *mut c_void) -> io::Result<()> {
    // SAFETY: every caller passes a request together with a pointer to the
    // live, correctly sized structure that request reads or writes.
    if unsafe { libc::ioctl(fd, request, arg) } < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn errno(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
}

#[cfg(test)]
mod tests;
