//! Setting up the interface: [`TunConfig`] and the checks that need no
//! kernel, binding a clone fd of `/dev/net/tun` to a name (creating the
//! device or attaching an existing one), configuring a device we created
//! (MTU, the IPv4 and IPv6 address pairs, bringing it up), and the
//! persistent-device helpers behind the launcher's `--setup` and
//! `--teardown`.
//!
//! Must not touch: packets (that is `link.rs`) and which offloads the
//! kernel grants (`offload.rs`: `set_iff` only asks for the vnet header);
//! an attached device's configuration; any interface but the named one;
//! routes (the kernel derives the only ones from the addresses).

use std::ffi::c_void;
use std::fs::OpenOptions;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::time::Duration;

use super::{context, errno, ioctl};

pub(super) const CLONE_DEVICE: &str = "/dev/net/tun";

/// Linux's IFNAMSIZ less the terminating NUL.
const MAX_NAME_LEN: usize = libc::IFNAMSIZ - 1;

/// The smallest MTU IPv4 allows (RFC 791) and the smallest IPv6 allows
/// (RFC 8200 section 5); below the latter Linux disables IPv6 on the device.
const MIN_MTU_V4: usize = 68;
const MIN_MTU_V6: usize = 1280;
const MAX_MTU: usize = 65_535;

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
    /// see [`Offloads`](super::Offloads)), falling back to plain packets where the
    /// kernel refuses. Applies to an attached device too: the offloads are
    /// a property of our file descriptor's view of the device.
    pub offload: bool,
    /// A TAP device (`IFF_TAP`: Ethernet frames, see `crate::ethernet`)
    /// instead of TUN. One we create gets its MTU and is brought up, with
    /// no address: the user puts it in a bridge. No offloads yet.
    pub tap: bool,
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
            tap: false,
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
        if self.tap {
            return Ok(());
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
pub(super) struct Control {
    fd: OwnedFd,
}

impl Control {
    pub(super) fn new(family: libc::c_int) -> io::Result<Control> {
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
    pub(super) fn index(&self, name: &str) -> io::Result<Option<libc::c_int>> {
        let mut ifr = ifreq(name);
        match self.ifr(libc::SIOCGIFINDEX, &mut ifr) {
            // SAFETY: SIOCGIFINDEX filled the ifindex member of the union.
            Ok(()) => Ok(Some(unsafe { ifr.ifr_ifru.ifru_ifindex })),
            Err(e) if errno(&e) == libc::ENODEV => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub(super) fn mtu(&self, name: &str) -> io::Result<usize> {
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

    pub(super) fn bring_up(&self, name: &str) -> io::Result<()> {
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

pub(super) fn open_clone_device() -> io::Result<OwnedFd> {
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
pub(super) enum Mode {
    Create,
    Attach,
}

/// Opens the clone device and binds it to `name`; returns the fd and the
/// name the kernel gave back.
pub(super) fn set_iff(
    name: &str,
    mode: Mode,
    vnet: bool,
    tap: bool,
) -> io::Result<(OwnedFd, String)> {
    let fd = open_clone_device()?;
    let mut ifr = ifreq(name);
    let kind = if tap { libc::IFF_TAP } else { libc::IFF_TUN };
    let mut flags = kind | libc::IFF_NO_PI;
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
                "interface {name} exists but is not a single-queue {} device: {e}; pick another \
                 name (USTACK_IFNAME) or remove it",
                if tap { "TAP" } else { "TUN" }
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
pub(super) fn configure(config: &TunConfig, name: &str) -> io::Result<()> {
    let what = |step: &str| format!("configuring TUN device {name}: {step}");
    let control = Control::new(libc::AF_INET).map_err(|e| context(e, what("control socket")))?;
    control
        .set_mtu(name, config.mtu)
        .map_err(|e| context(e, what(&format!("setting MTU {}", config.mtu))))?;
    if config.tap {
        // Nothing else: a TAP device's kernel side is the user's (a bridge
        // port, say), and the stack's addresses live in the stack.
        return control
            .bring_up(name)
            .map_err(|e| context(e, what("bringing it up")));
    }
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
    let (fd, name) = set_iff(name, Mode::Create, false, config.tap)?;
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
    let (fd, name) = set_iff(name, Mode::Attach, false, false)?;
    ioctl(fd.as_raw_fd(), libc::TUNSETPERSIST, std::ptr::null_mut())
        .map_err(|e| context(e, format_args!("removing TUN device {name}")))?;
    // Closing the last fd of a non-persistent device deletes it.
    drop(fd);
    log::info!("tun: removed persistent {name}");
    Ok(())
}
