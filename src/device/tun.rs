//! The real link: a Linux TUN device in point-to-point mode.
//!
//! Owns the TUN file descriptor, the device's creation and configuration
//! (MTU, the IPv4 and IPv6 address pairs, bringing it up), and the
//! persistent-device helpers behind the launcher's `--setup` and
//! `--teardown`. Packets are bare IP datagrams (`IFF_TUN | IFF_NO_PI`).
//!
//! Offloads ([`TunConfig::offload`], on by default): the device is opened
//! with `IFF_VNET_HDR`, so a `struct virtio_net_hdr` ([`super::vnet`])
//! precedes every packet in both directions, and `TUNSETOFFLOAD` declares
//! that we take partial checksums and TCP segmentation (TSO4, TSO6). The
//! kernel then hands its TCP data to us as super-packets of up to 64 KiB,
//! one read each, instead of one read per MTU-sized segment. We strip the
//! header, complete a partial checksum so the core verifies the packet like
//! any other, and deliver the super-packet as one datagram (larger than the
//! MTU; counted in [`LinkStats::rx_super_packets`]). What we write carries
//! an all-zero header (no offload asked). A kernel that refuses any step
//! leaves the device in plain mode, logged at `info`.
//!
//! Must not touch: any interface but the one named in the config, routes
//! other than the ones the kernel derives from that interface's addresses
//! (no default route, ever), and an existing device's configuration: a
//! device that already exists is attached as it is.
//!
//! The kernel's address on the interface is the *kernel* side of each pair;
//! the stack's address is the far end of the link, reachable through the
//! device.

use std::ffi::c_void;
use std::fs::OpenOptions;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::time::Duration;

use super::vnet::{self, VnetHeader};
use super::{Link, LinkStats, Packet};
use crate::time::Instant;

const CLONE_DEVICE: &str = "/dev/net/tun";

/// Linux's IFNAMSIZ less the terminating NUL.
const MAX_NAME_LEN: usize = libc::IFNAMSIZ - 1;

/// The smallest MTU IPv4 allows (RFC 791) and the smallest IPv6 allows
/// (RFC 8200 section 5); below the latter Linux disables IPv6 on the device.
const MIN_MTU_V4: usize = 68;
const MIN_MTU_V6: usize = 1280;
const MAX_MTU: usize = 65_535;

/// Enough for any datagram without jumbograms, whatever the device's MTU:
/// an IPv4 datagram is at most 65,535 bytes, an IPv6 one 40 more (and a
/// super-packet the kernel hands us is no larger).
const READ_BUFFER: usize = 65_536 + 64;

/// The most recycled receive buffers kept (at [`READ_BUFFER`] each, 16 MiB
/// at most), and the most sent ones; the runtime hands buffers back once a
/// batch, so this is slack.
const MAX_POOLED: usize = 256;

/// How to create and configure a TUN device. Used only when the device does
/// not exist yet; an existing device is attached as it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TunConfig {
    /// Interface name: 1 to 15 bytes, no '/', ':' or whitespace.
    pub name: String,
    /// Link MTU in bytes.
    pub mtu: usize,
    /// `(kernel address, stack address)`: the kernel's address on the
    /// interface and the peer address the stack answers on.
    pub ipv4: Option<(Ipv4Addr, Ipv4Addr)>,
    /// `(kernel address, stack address)`; both must share a /64 prefix.
    pub ipv6: Option<(Ipv6Addr, Ipv6Addr)>,
    /// Ask for TUN offloads (`IFF_VNET_HDR`, partial checksums, TSO4/TSO6,
    /// see the module docs), falling back to plain packets where the
    /// kernel refuses. Applies to an attached device too: the offloads are
    /// a property of our file descriptor's view of the device.
    pub offload: bool,
}

impl Default for TunConfig {
    /// The documented defaults: `ustack0`, MTU 1500, kernel 10.77.0.1 and
    /// fd77::1, stack 10.77.0.2 and fd77::2, offloads on.
    fn default() -> TunConfig {
        TunConfig {
            name: "ustack0".to_string(),
            mtu: 1500,
            ipv4: Some((Ipv4Addr::new(10, 77, 0, 1), Ipv4Addr::new(10, 77, 0, 2))),
            ipv6: Some((
                Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 1),
                Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 2),
            )),
            offload: true,
        }
    }
}

impl TunConfig {
    /// The defaults with another interface name.
    pub fn named(name: &str) -> TunConfig {
        TunConfig {
            name: name.to_string(),
            ..TunConfig::default()
        }
    }

    /// Checks everything that can be checked without the kernel: the
    /// name, the MTU range, and that the addresses are usable. Errors are
    /// `InvalidInput`, naming the problem.
    ///
    /// ```
    /// use ustack::device::TunConfig;
    ///
    /// assert!(TunConfig::default().validate().is_ok());
    /// let e = TunConfig { mtu: 1000, ..TunConfig::default() }.validate().unwrap_err();
    /// assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput); // IPv6 needs 1280
    /// assert!(TunConfig::named("no/slash").validate().is_err());
    /// ```
    pub fn validate(&self) -> io::Result<()> {
        validate_name(&self.name)?;
        let name = &self.name;
        let min = if self.ipv6.is_some() {
            MIN_MTU_V6
        } else {
            MIN_MTU_V4
        };
        if self.mtu < min || self.mtu > MAX_MTU {
            return Err(invalid(format!(
                "MTU {} for TUN device {name} is out of range: expected {min} to {MAX_MTU}{}",
                self.mtu,
                if self.ipv6.is_some() {
                    " (IPv6 needs at least 1280)"
                } else {
                    ""
                }
            )));
        }
        if let Some((kernel, stack)) = self.ipv4
            && (kernel == stack || kernel.is_unspecified() || stack.is_unspecified())
        {
            return Err(invalid(format!(
                "IPv4 pair for TUN device {name} is unusable: kernel {kernel} and stack {stack} \
                 must be two different unicast addresses, like 10.77.0.1 and 10.77.0.2"
            )));
        }
        if let Some((kernel, stack)) = self.ipv6 {
            let common = (u128::from(kernel) ^ u128::from(stack)).leading_zeros();
            if kernel == stack || common < 64 || kernel.is_multicast() || stack.is_multicast() {
                return Err(invalid(format!(
                    "IPv6 pair for TUN device {name} is unusable: kernel {kernel} and stack {stack} \
                     must be two different unicast addresses in one /64, like fd77::1 and fd77::2"
                )));
            }
        }
        Ok(())
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

/// Keeps the kind of `e`, so callers can still match on it, and prefixes
/// what we were doing.
fn context(e: io::Error, what: impl std::fmt::Display) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// Checks an interface name the way the kernel would, but with a message
/// that names it.
pub fn validate_name(name: &str) -> io::Result<()> {
    let problem = if name.is_empty() {
        "it is empty"
    } else if name.len() > MAX_NAME_LEN {
        "it is longer than 15 bytes"
    } else if name == "." || name == ".." {
        "'.' and '..' are not interface names"
    } else if name.contains('/') {
        "it contains '/'"
    } else if name.contains(':') {
        "it contains ':'"
    } else if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        "it contains whitespace or control characters"
    } else {
        return Ok(());
    };
    Err(invalid(format!(
        "bad TUN device name {name:?}: {problem}; use 1 to 15 letters, digits, '-' or '_', like ustack0"
    )))
}

fn ifreq(name: &str) -> libc::ifreq {
    // SAFETY: ifreq is plain old data (bytes, integers, a union of such and
    // pointers), for which all-zero is a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    // validate_name guarantees at most 15 bytes, so a NUL always follows.
    for (dst, &src) in ifr.ifr_name.iter_mut().zip(name.as_bytes()) {
        *dst = src as libc::c_char;
    }
    ifr
}

fn ifreq_name(ifr: &libc::ifreq) -> String {
    let bytes: Vec<u8> = ifr
        .ifr_name
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
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

fn sockaddr_v4(addr: Ipv4Addr) -> libc::sockaddr {
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from(addr).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: sockaddr_in and sockaddr are both 16 bytes of plain data; the
    // kernel reads the generic one by its family field, as the C API does.
    unsafe { std::mem::transmute::<libc::sockaddr_in, libc::sockaddr>(sin) }
}

/// A datagram socket used only as a handle for interface ioctls.
struct Control {
    fd: OwnedFd,
}

impl Control {
    fn new(family: libc::c_int) -> io::Result<Control> {
        // SAFETY: socket takes no pointers; a non-negative result is a new fd.
        let fd = unsafe { libc::socket(family, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd was just returned by socket and is owned by nobody else.
        Ok(Control {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    fn ifr(&self, request: libc::Ioctl, ifr: &mut libc::ifreq) -> io::Result<()> {
        ioctl(
            self.fd.as_raw_fd(),
            request,
            (ifr as *mut libc::ifreq).cast(),
        )
    }

    /// The interface's index, or `None` if no interface has that name.
    fn index(&self, name: &str) -> io::Result<Option<libc::c_int>> {
        let mut ifr = ifreq(name);
        match self.ifr(libc::SIOCGIFINDEX, &mut ifr) {
            // SAFETY: SIOCGIFINDEX filled the ifindex member of the union.
            Ok(()) => Ok(Some(unsafe { ifr.ifr_ifru.ifru_ifindex })),
            Err(e) if errno(&e) == libc::ENODEV => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn mtu(&self, name: &str) -> io::Result<usize> {
        let mut ifr = ifreq(name);
        self.ifr(libc::SIOCGIFMTU, &mut ifr)?;
        // SAFETY: SIOCGIFMTU filled the mtu member of the union.
        Ok(unsafe { ifr.ifr_ifru.ifru_mtu }.max(0) as usize)
    }

    fn set_mtu(&self, name: &str, mtu: usize) -> io::Result<()> {
        let mut ifr = ifreq(name);
        ifr.ifr_ifru.ifru_mtu = mtu as libc::c_int;
        self.ifr(libc::SIOCSIFMTU, &mut ifr)
    }

    fn set_v4(&self, name: &str, request: libc::Ioctl, addr: Ipv4Addr) -> io::Result<()> {
        let mut ifr = ifreq(name);
        ifr.ifr_ifru.ifru_addr = sockaddr_v4(addr);
        self.ifr(request, &mut ifr)
    }

    fn bring_up(&self, name: &str) -> io::Result<()> {
        let mut ifr = ifreq(name);
        self.ifr(libc::SIOCGIFFLAGS, &mut ifr)?;
        // SAFETY: SIOCGIFFLAGS filled the flags member of the union.
        let flags = unsafe { ifr.ifr_ifru.ifru_flags };
        ifr.ifr_ifru.ifru_flags = flags | libc::IFF_UP as libc::c_short;
        self.ifr(libc::SIOCSIFFLAGS, &mut ifr)
    }

    /// On an AF_INET6 control socket: adds `addr/prefix_len` to the interface.
    fn add_v6(&self, ifindex: libc::c_int, addr: Ipv6Addr, prefix_len: u32) -> io::Result<()> {
        let mut req = libc::in6_ifreq {
            ifr6_addr: libc::in6_addr {
                s6_addr: addr.octets(),
            },
            ifr6_prefixlen: prefix_len,
            ifr6_ifindex: ifindex,
        };
        ioctl(
            self.fd.as_raw_fd(),
            libc::SIOCSIFADDR,
            (&mut req as *mut libc::in6_ifreq).cast(),
        )
    }
}

fn open_clone_device() -> io::Result<OwnedFd> {
    // std opens with O_CLOEXEC already.
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(CLONE_DEVICE)
        .map_err(|e| {
            let fix = match e.kind() {
                io::ErrorKind::NotFound => "load the tun module (modprobe tun) or create the node (mknod /dev/net/tun c 10 200)",
                io::ErrorKind::PermissionDenied => "run as root or make it readable and writable (chmod 0666 /dev/net/tun)",
                _ => "check that the tun driver works on this machine",
            };
            context(e, format_args!("cannot open {CLONE_DEVICE} ({fix})"))
        })?;
    Ok(file.into())
}

/// Whether TUNSETIFF is creating a device or attaching an existing one:
/// the same ioctl, but different errors mean different things.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Create,
    Attach,
}

/// Opens the clone device and binds it to `name`; returns the fd and the
/// name the kernel gave back.
fn set_iff(name: &str, mode: Mode, vnet: bool) -> io::Result<(OwnedFd, String)> {
    let fd = open_clone_device()?;
    let mut ifr = ifreq(name);
    let mut flags = libc::IFF_TUN | libc::IFF_NO_PI;
    if vnet {
        flags |= libc::IFF_VNET_HDR;
    }
    if mode == Mode::Create {
        // Fails instead of silently attaching should the name appear between
        // our existence check and now.
        flags |= libc::IFF_TUN_EXCL;
    }
    ifr.ifr_ifru.ifru_flags = flags as libc::c_short;
    let result = ioctl(
        fd.as_raw_fd(),
        libc::TUNSETIFF,
        (&mut ifr as *mut libc::ifreq).cast(),
    );
    if let Err(e) = result {
        return Err(match (errno(&e), mode) {
            (libc::EPERM, Mode::Create) => io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "creating TUN device {name} needs CAP_NET_ADMIN: {e}; run as root, or create \
                     a persistent device once with `scripts/ustack --setup` (as root)"
                ),
            ),
            (libc::EPERM, Mode::Attach) => io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "attaching TUN device {name} is not permitted: {e}; it belongs to another \
                     user: recreate it for this user with `scripts/ustack --setup` (as root)"
                ),
            ),
            (libc::EBUSY, Mode::Attach) => io::Error::new(
                io::ErrorKind::ResourceBusy,
                format!("TUN device {name} is busy (attached by another process)"),
            ),
            (libc::EBUSY, Mode::Create) => io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("TUN device {name} appeared while we were creating it; try again"),
            ),
            (libc::EINVAL, Mode::Attach) => invalid(format!(
                "interface {name} exists but is not a single-queue TUN device: {e}; pick another \
                 name (USTACK_IFNAME) or remove it"
            )),
            _ => context(e, format_args!("setting up TUN device {name}")),
        });
    }
    Ok((fd, ifreq_name(&ifr)))
}

/// Writes a per-interface IPv6 sysctl. Best effort: a kernel without IPv6
/// or a read-only /proc is reported by the address ioctl that follows.
fn ipv6_sysctl(name: &str, key: &str, value: &str) {
    let path = format!("/proc/sys/net/ipv6/conf/{name}/{key}");
    if let Err(e) = std::fs::write(&path, value) {
        log::debug!("tun: cannot write {value} to {path}: {e}");
    }
}

/// Gives a device we created (or are making persistent) its MTU and
/// addresses and brings it up.
fn configure(config: &TunConfig, name: &str) -> io::Result<()> {
    let what = |step: &str| format!("configuring TUN device {name}: {step}");
    let control = Control::new(libc::AF_INET).map_err(|e| context(e, what("control socket")))?;
    control
        .set_mtu(name, config.mtu)
        .map_err(|e| context(e, what(&format!("setting MTU {}", config.mtu))))?;
    if let Some((kernel, stack)) = config.ipv4 {
        let v4 = |e| context(e, what(&format!("IPv4 {kernel} peer {stack}")));
        control
            .set_v4(name, libc::SIOCSIFADDR, kernel)
            .map_err(v4)?;
        control
            .set_v4(name, libc::SIOCSIFDSTADDR, stack)
            .map_err(v4)?;
        control
            .set_v4(name, libc::SIOCSIFNETMASK, Ipv4Addr::BROADCAST)
            .map_err(v4)?;
    }
    control
        .bring_up(name)
        .map_err(|e| context(e, what("bringing it up")))?;
    if let Some((kernel, stack)) = config.ipv6 {
        let v6 = |e| {
            context(
                e,
                what(&format!(
                    "IPv6 {kernel}/64 for peer {stack} (is IPv6 disabled here? configure without IPv6)"
                )),
            )
        };
        let control6 = match Control::new(libc::AF_INET6) {
            Ok(control6) => control6,
            // The kernel has no IPv6 at all: there is no peer to configure,
            // and refusing to start would cost IPv4 for nothing.
            Err(e) if errno(&e) == libc::EAFNOSUPPORT => {
                log::warn!("tun: {name}: the kernel has no IPv6; configured IPv4 only");
                return Ok(());
            }
            Err(e) => return Err(v6(e)),
        };
        // A device we create is ours to set: the address must be usable at
        // once (no duplicate address detection, which a point-to-point link
        // to ourselves cannot fail anyway), and a host-wide disable_ipv6
        // default must not leave the pair half-configured.
        ipv6_sysctl(name, "disable_ipv6", "0");
        ipv6_sysctl(name, "accept_dad", "0");
        let ifindex = control
            .index(name)?
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, what("it vanished")))?;
        control6.add_v6(ifindex, kernel, 64).map_err(v6)?;
        wait_v6_usable(name, Duration::from_secs(3));
    }
    Ok(())
}

/// Waits until no IPv6 address of `name` is tentative. The kernel treats a
/// tentative address as not assigned (RFC 4862 section 5.4), so packets to
/// it are dropped; a TUN device's addresses stay tentative until the
/// kernel's link watcher sees its carrier, which a loaded machine can delay
/// by a second. Gives up quietly after `limit` (the stack works anyway;
/// the first packets may be retransmitted).
fn wait_v6_usable(name: &str, limit: Duration) {
    const IFA_F_TENTATIVE: u32 = 0x40;
    let start = std::time::Instant::now();
    loop {
        // thread-self: this thread's network namespace, which may differ
        // from the process's (tests move single threads into namespaces).
        let Ok(table) = std::fs::read_to_string("/proc/thread-self/net/if_inet6") else {
            return;
        };
        let tentative = table.lines().any(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            f.len() == 6
                && f[5] == name
                && u32::from_str_radix(f[4], 16).is_ok_and(|flags| flags & IFA_F_TENTATIVE != 0)
        });
        if !tentative {
            return;
        }
        if start.elapsed() >= limit {
            log::warn!("tun: {name}: IPv6 addresses still tentative after {limit:?}");
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

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
        let vnet = config.offload && supports_vnet_header();
        let (fd, name) = set_iff(name, mode, vnet)?;
        let offloads = if vnet {
            set_offloads(&fd, &name)
        } else {
            Offloads::default()
        };
        if mode == Mode::Create {
            configure(config, &name)?;
        }
        let mtu = control
            .mtu(&name)
            .map_err(|e| context(e, format_args!("reading the MTU of TUN device {name}")))?;
        log::info!(
            "tun: {} {name}, MTU {mtu}, offloads {offloads:?}",
            if exists { "attached" } else { "created" }
        );
        Ok(TunDevice {
            fd,
            name,
            mtu,
            created: !exists,
            stats: LinkStats::default(),
            pool: Vec::new(),
            spent: Vec::new(),
            rx_size: READ_BUFFER.max(mtu),
            tx_tso: offloads.vnet,
            offloads,
        })
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
fn supports_vnet_header() -> bool {
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
fn set_offloads(fd: &OwnedFd, name: &str) -> Offloads {
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
fn negotiate_offloads(mut set_offload: impl FnMut(u32) -> io::Result<()>) -> Offloads {
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

/// Creates a persistent TUN device that `owner` (a uid) and/or members of
/// `group` (a gid) may attach to without privileges, and configures it from
/// `config`. Needs CAP_NET_ADMIN. Fails with `AlreadyExists` if the name is
/// taken (tear it down first to change its configuration).
pub fn create_persistent(
    config: &TunConfig,
    owner: Option<u32>,
    group: Option<u32>,
) -> io::Result<()> {
    config.validate()?;
    let name = &config.name;
    let control = Control::new(libc::AF_INET)?;
    if control.index(name)?.is_some() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "TUN device {name} already exists; remove it first with `scripts/ustack --teardown`"
            ),
        ));
    }
    let (fd, name) = set_iff(name, Mode::Create, false)?;
    let set = |request: libc::Ioctl, value: libc::c_ulong, what: &str| {
        // These ioctls take their argument by value, not by pointer.
        ioctl(fd.as_raw_fd(), request, value as *mut c_void).map_err(|e| {
            context(
                e,
                format_args!("making TUN device {name} persistent: {what}"),
            )
        })
    };
    if let Some(uid) = owner {
        set(
            libc::TUNSETOWNER,
            libc::c_ulong::from(uid),
            "setting the owner",
        )?;
    }
    if let Some(gid) = group {
        set(
            libc::TUNSETGROUP,
            libc::c_ulong::from(gid),
            "setting the group",
        )?;
    }
    set(libc::TUNSETPERSIST, 1, "TUNSETPERSIST")?;
    if let Err(e) = configure(config, &name) {
        // Leave nothing half-made behind.
        let _ = set(libc::TUNSETPERSIST, 0, "undoing TUNSETPERSIST");
        return Err(e);
    }
    log::info!("tun: created persistent {name}");
    Ok(())
}

/// Deletes a persistent TUN device. Fails with `NotFound` if there is none
/// by that name, and `ResourceBusy` while a process has it attached.
pub fn delete_persistent(name: &str) -> io::Result<()> {
    validate_name(name)?;
    let control = Control::new(libc::AF_INET)?;
    if control.index(name)?.is_none() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no TUN device {name} to remove"),
        ));
    }
    let (fd, name) = set_iff(name, Mode::Attach, false)?;
    ioctl(fd.as_raw_fd(), libc::TUNSETPERSIST, std::ptr::null_mut())
        .map_err(|e| context(e, format_args!("removing TUN device {name}")))?;
    // Closing the last fd of a non-persistent device deletes it.
    drop(fd);
    log::info!("tun: removed persistent {name}");
    Ok(())
}

#[cfg(test)]
mod tests;
