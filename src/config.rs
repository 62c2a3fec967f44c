//! Configuration from the `USTACK_*` environment variables.
//!
//! Owns the names, defaults and validation of every variable in the
//! interface contract (`ARCHITECTURE.md`). A bad value becomes a
//! [`ConfigError`] that names the variable and the value; nothing here
//! exits or prints; callers decide (the example server prints the error and
//! exits 1, the shim fails socket calls).

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::Duration;

use crate::device::FaultConfig;
use crate::wire::ethernet::MacAddr;

/// What the shim does when the stack cannot start.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Fallback {
    /// Socket calls that would need the stack fail with an errno.
    Fail,
    /// Such sockets become ordinary kernel sockets.
    Kernel,
}

/// Whether programs under the shim share one stack (`USTACK_SHARED`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Shared {
    /// Each program runs its own stack in-process (the device is
    /// exclusive).
    Off,
    /// Use the stack daemon serving the device if one runs, else run an
    /// in-process stack.
    Auto,
    /// Use the stack daemon, starting `ustackd` if none serves the device.
    On,
}

/// What kind of device the stack runs on (`USTACK_LINK`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum LinkKind {
    /// A TUN device, point-to-point, bare IP datagrams (the default).
    Tun,
    /// A TAP device: Ethernet frames, ARP and NDP (`crate::ethernet`).
    Tap,
}

/// Log verbosity, as `USTACK_LOG` names it.
pub type LogLevel = log::LevelFilter;

/// Everything the `USTACK_*` variables configure.
#[derive(Clone, PartialEq, Debug)]
pub struct Config {
    /// `USTACK_IFNAME`: the TUN device.
    pub ifname: String,
    /// `USTACK_ADDR`: the stack's IPv4 address.
    pub addr: Ipv4Addr,
    /// `USTACK_PEER`: the kernel's IPv4 address on the link.
    pub peer: Ipv4Addr,
    /// `USTACK_ADDR6`: the stack's IPv6 address.
    pub addr6: Ipv6Addr,
    /// `USTACK_PEER6`: the kernel's IPv6 address on the link.
    pub peer6: Ipv6Addr,
    /// `USTACK_MTU`: the link MTU.
    pub mtu: usize,
    /// `USTACK_LOG`: log level, written to stderr.
    pub log: LogLevel,
    /// `USTACK_PCAP`: where to write a capture of the link, if anywhere.
    pub pcap: Option<PathBuf>,
    /// `USTACK_FAULT`: impairment of the link.
    pub fault: Option<FaultConfig>,
    /// `USTACK_OFFLOAD`: ask for TUN offloads (checksum, TSO, USO) where
    /// the kernel has them; `off` runs the device in plain mode.
    pub offload: bool,
    /// `USTACK_ECN`: Explicit Congestion Notification (RFC 3168): `off`,
    /// `accept` (when a peer asks; Linux's default) or `on` (ask too).
    pub ecn: crate::tcp::Ecn,
    /// `USTACK_FALLBACK` (shim only).
    pub fallback: Fallback,
    /// `USTACK_DNS` (shim only): name lookups (getaddrinfo,
    /// gethostbyname, res_query) over the stack (`stack`, the default) or
    /// by libc on kernel sockets (`kernel`).
    pub dns_over_stack: bool,
    /// `USTACK_LINGER` (shim only): how long the stack keeps delivering
    /// closed connections' data at process exit.
    pub linger: Duration,
    /// `USTACK_SHARED` (shim only): one stack daemon for every program on
    /// the device.
    pub shared: Shared,
    /// `USTACK_LINK`: `tun` (default) or `tap`.
    pub link: LinkKind,
    /// The prefix length of `USTACK_ADDR=A/PREFIX`, if given; on tap
    /// [`Config::prefix_len`] defaults it to 24.
    pub prefix: Option<u8>,
    /// The prefix length of `USTACK_ADDR6=A/PREFIX`, if given; on tap
    /// [`Config::prefix6_len`] defaults it to 64.
    pub prefix6: Option<u8>,
    /// `USTACK_GATEWAY`: the next hop for off-link IPv4 destinations (tap).
    pub gateway: Option<Ipv4Addr>,
    /// `USTACK_GATEWAY6`: the next hop for off-link IPv6 destinations
    /// (tap).
    pub gateway6: Option<Ipv6Addr>,
    /// `USTACK_MAC`: the stack's MAC on tap; unset, [`Config::mac_addr`]
    /// derives one.
    pub mac: Option<MacAddr>,
    /// `USTACK_ADDR=dhcp` (tap only): the IPv4 address, prefix, gateway
    /// and DNS servers come from a DHCPv4 lease; `addr`, `prefix` and
    /// `gateway` are then unused.
    pub dhcp: bool,
    /// `USTACK_ADDR6=auto` (tap only): the IPv6 address and default router
    /// come from router advertisements (SLAAC, after duplicate address
    /// detection); `addr6`, `prefix6` and `gateway6` are then unused.
    pub slaac: bool,
}

/// The smallest MTU accepted: IPv6's minimum link MTU (RFC 8200 section 5),
/// since every link also carries IPv6.
pub const MIN_MTU: usize = 1280;
/// The largest MTU accepted: the largest IP datagram a TUN device passes.
pub const MAX_MTU: usize = 65535;

impl Default for Config {
    fn default() -> Self {
        Config {
            ifname: "ustack0".to_string(),
            addr: Ipv4Addr::new(10, 77, 0, 2),
            peer: Ipv4Addr::new(10, 77, 0, 1),
            addr6: Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 2),
            peer6: Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 1),
            mtu: 1500,
            log: LogLevel::Warn,
            pcap: None,
            fault: None,
            offload: true,
            ecn: crate::tcp::Ecn::Accept,
            fallback: Fallback::Fail,
            dns_over_stack: true,
            linger: Duration::from_secs(5),
            shared: Shared::On,
            link: LinkKind::Tun,
            prefix: None,
            prefix6: None,
            gateway: None,
            gateway6: None,
            mac: None,
            dhcp: false,
            slaac: false,
        }
    }
}

impl Config {
    /// `USTACK_ADDR` for messages: the address, or `dhcp`.
    pub fn addr_text(&self) -> String {
        if self.dhcp {
            "dhcp".to_string()
        } else {
            self.addr.to_string()
        }
    }

    /// `USTACK_ADDR6` for messages: the address, or `auto`.
    pub fn addr6_text(&self) -> String {
        if self.slaac {
            "auto".to_string()
        } else {
            self.addr6.to_string()
        }
    }

    /// The on-link IPv4 prefix length: as given, else 24.
    pub fn prefix_len(&self) -> u8 {
        self.prefix.unwrap_or(24)
    }

    /// The on-link IPv6 prefix length: as given, else 64.
    pub fn prefix6_len(&self) -> u8 {
        self.prefix6.unwrap_or(64)
    }

    /// The MAC on tap: `USTACK_MAC`, or one derived from the device name
    /// and the IPv4 and IPv6 addresses (64-bit FNV-1a of them, the first
    /// byte's group bit cleared and locally administered bit set): a
    /// unicast, locally administered address (IEEE 802 section 8.4) that
    /// stays the same for the same device and addresses, so restarting the
    /// stack does not leave the neighbours' caches pointing elsewhere.
    pub fn mac_addr(&self) -> MacAddr {
        if let Some(mac) = self.mac {
            return mac;
        }
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let bytes = self
            .ifname
            .as_bytes()
            .iter()
            .chain(&[0])
            .chain(&self.addr.octets())
            .chain(&self.addr6.octets())
            .copied()
            .collect::<Vec<u8>>();
        for b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        let b = h.to_be_bytes();
        MacAddr([(b[0] & 0xfc) | 0x02, b[1], b[2], b[3], b[4], b[5]])
    }
}

/// `A` or `A/PREFIX` with a prefix of at most `max` bits.
fn addr_with_prefix<A: std::str::FromStr>(v: &str, max: u8) -> Option<(A, Option<u8>)> {
    match v.trim().split_once('/') {
        None => Some((v.trim().parse().ok()?, None)),
        Some((a, p)) => {
            let p: u8 = p.parse().ok().filter(|p| *p <= max)?;
            Some((a.parse().ok()?, Some(p)))
        }
    }
}

/// A variable holds a value that cannot be used.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ConfigError {
    /// The variable, e.g. `USTACK_MTU`.
    pub var: String,
    /// The value as given.
    pub value: String,
    /// What was expected instead.
    pub expected: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: bad value '{}': {}",
            self.var, self.value, self.expected
        )
    }
}

impl std::error::Error for ConfigError {}

fn bad(var: &str, value: &str, expected: impl Into<String>) -> ConfigError {
    ConfigError {
        var: var.to_string(),
        value: value.to_string(),
        expected: expected.into(),
    }
}

/// Parses a duration written as a whole number with a unit: `us`, `ms` or
/// `s`. `None` for anything else, or on overflow.
///
/// ```
/// use std::time::Duration;
/// use ustack::config::parse_duration;
///
/// assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
/// assert_eq!(parse_duration(" 5s "), Some(Duration::from_secs(5)));
/// assert_eq!(parse_duration("1.5s"), None); // whole numbers only
/// assert_eq!(parse_duration("10"), None); // a unit is required
/// ```
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (num, scale_us) = if let Some(n) = s.strip_suffix("us") {
        (n, 1)
    } else if let Some(n) = s.strip_suffix("ms") {
        (n, 1_000)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1_000_000)
    } else {
        return None;
    };
    let n: u64 = num.trim().parse().ok()?;
    Some(Duration::from_micros(n.checked_mul(scale_us)?))
}

fn parse_level(s: &str) -> Option<LogLevel> {
    Some(match s.to_ascii_lowercase().as_str() {
        "off" => LogLevel::Off,
        "error" => LogLevel::Error,
        "warn" => LogLevel::Warn,
        "info" => LogLevel::Info,
        "debug" => LogLevel::Debug,
        "trace" => LogLevel::Trace,
        _ => return None,
    })
}

/// Whether `name` can name a network interface: 1 to 15 bytes, none of them
/// `/`, `:`, whitespace or NUL, and not `.` or `..` (the kernel's
/// `dev_valid_name`, plus `:`, which `ip` reads as an alias separator).
///
/// ```
/// use ustack::config::valid_ifname;
///
/// assert!(valid_ifname("ustack0"));
/// assert!(!valid_ifname("a-name-of-16-chr"));
/// assert!(!valid_ifname("eth0:1"));
/// assert!(!valid_ifname(".."));
/// ```
pub fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() < 16
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b == 0 || b.is_ascii_whitespace())
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads variables through `lookup`, so tests need not touch the process
    /// environment. An unset or empty variable takes its default.
    ///
    /// ```
    /// use std::collections::HashMap;
    /// use std::time::Duration;
    /// use ustack::config::Config;
    ///
    /// let env = HashMap::from([
    ///     ("USTACK_ADDR", "192.168.50.2"),
    ///     ("USTACK_MTU", "9000"),
    ///     ("USTACK_FAULT", "loss=1%,delay=20ms"),
    ///     ("USTACK_PEER6", ""), // empty: the default
    /// ]);
    /// let cfg = Config::from_lookup(|k| env.get(k).map(|v| v.to_string())).unwrap();
    /// assert_eq!(cfg.addr.to_string(), "192.168.50.2");
    /// assert_eq!(cfg.peer6.to_string(), "fd77::1");
    /// assert_eq!(cfg.mtu, 9000);
    /// let fault = cfg.fault.unwrap();
    /// assert_eq!((fault.loss, fault.delay), (0.01, Duration::from_millis(20)));
    ///
    /// let err = Config::from_lookup(|k| (k == "USTACK_MTU").then(|| "70000".to_string()));
    /// assert_eq!(
    ///     err.unwrap_err().to_string(),
    ///     "USTACK_MTU: bad value '70000': a whole number from 1280 to 65535"
    /// );
    /// ```
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.is_empty());
        let mut c = Config::default();
        if let Some(v) = get("USTACK_IFNAME") {
            if !valid_ifname(&v) {
                return Err(bad(
                    "USTACK_IFNAME",
                    &v,
                    "an interface name of 1 to 15 characters without '/', ':' or spaces",
                ));
            }
            c.ifname = v;
        }
        if let Some(v) = get("USTACK_LINK") {
            c.link = match v.to_ascii_lowercase().as_str() {
                "tun" => LinkKind::Tun,
                "tap" => LinkKind::Tap,
                _ => return Err(bad("USTACK_LINK", &v, "'tun' or 'tap'")),
            };
        }
        if let Some(v) = get("USTACK_ADDR") {
            if v.trim().eq_ignore_ascii_case("dhcp") {
                if c.link != LinkKind::Tap {
                    return Err(bad(
                        "USTACK_ADDR",
                        &v,
                        "an IPv4 address: 'dhcp' needs USTACK_LINK=tap",
                    ));
                }
                c.dhcp = true;
            } else {
                (c.addr, c.prefix) = addr_with_prefix(&v, 32).ok_or_else(|| {
                    bad(
                        "USTACK_ADDR",
                        &v,
                        "an IPv4 address with an optional prefix length, such as 10.77.0.2 or 192.168.1.20/24, or 'dhcp' (tap)",
                    )
                })?;
            }
        }
        if let Some(v) = get("USTACK_PEER") {
            c.peer = v
                .parse()
                .map_err(|_| bad("USTACK_PEER", &v, "an IPv4 address such as 10.77.0.1"))?;
        }
        if let Some(v) = get("USTACK_ADDR6") {
            if v.trim().eq_ignore_ascii_case("auto") {
                if c.link != LinkKind::Tap {
                    return Err(bad(
                        "USTACK_ADDR6",
                        &v,
                        "an IPv6 address: 'auto' needs USTACK_LINK=tap",
                    ));
                }
                c.slaac = true;
            } else {
                (c.addr6, c.prefix6) = addr_with_prefix(&v, 128).ok_or_else(|| {
                    bad(
                        "USTACK_ADDR6",
                        &v,
                        "an IPv6 address with an optional prefix length, such as fd77::2 or fd77::2/64, or 'auto' (tap)",
                    )
                })?;
            }
        }
        if let Some(v) = get("USTACK_GATEWAY") {
            let gw: Ipv4Addr = v
                .trim()
                .parse()
                .ok()
                .filter(|a: &Ipv4Addr| {
                    !(a.is_unspecified() || a.is_broadcast() || a.is_multicast())
                })
                .ok_or_else(|| {
                    bad(
                        "USTACK_GATEWAY",
                        &v,
                        "a unicast IPv4 address such as 10.77.0.1",
                    )
                })?;
            c.gateway = Some(gw);
        }
        if let Some(v) = get("USTACK_GATEWAY6") {
            let gw: Ipv6Addr = v
                .trim()
                .parse()
                .ok()
                .filter(|a: &Ipv6Addr| !(a.is_unspecified() || a.is_multicast()))
                .ok_or_else(|| {
                    bad(
                        "USTACK_GATEWAY6",
                        &v,
                        "a unicast IPv6 address such as fe80::1",
                    )
                })?;
            c.gateway6 = Some(gw);
        }
        if let Some(v) = get("USTACK_MAC") {
            let mac: MacAddr = v.parse().ok().filter(MacAddr::is_unicast).ok_or_else(|| {
                bad(
                    "USTACK_MAC",
                    &v,
                    "a unicast MAC address such as 02:00:00:77:00:02",
                )
            })?;
            c.mac = Some(mac);
        }
        if let Some(v) = get("USTACK_PEER6") {
            c.peer6 = v
                .parse()
                .map_err(|_| bad("USTACK_PEER6", &v, "an IPv6 address such as fd77::1"))?;
        }
        for (var, addr) in [("USTACK_ADDR", c.addr), ("USTACK_PEER", c.peer)] {
            if addr.is_unspecified() || addr.is_broadcast() || addr.is_multicast() {
                return Err(bad(var, &addr.to_string(), "a unicast IPv4 address"));
            }
        }
        for (var, addr) in [("USTACK_ADDR6", c.addr6), ("USTACK_PEER6", c.peer6)] {
            if addr.is_unspecified() || addr.is_multicast() || addr.is_loopback() {
                return Err(bad(var, &addr.to_string(), "a unicast IPv6 address"));
            }
        }
        if !c.dhcp && c.addr == c.peer {
            return Err(bad(
                "USTACK_PEER",
                &c.peer.to_string(),
                "an address different from USTACK_ADDR",
            ));
        }
        if !c.slaac && c.addr6 == c.peer6 {
            return Err(bad(
                "USTACK_PEER6",
                &c.peer6.to_string(),
                "an address different from USTACK_ADDR6",
            ));
        }
        if let Some(v) = get("USTACK_MTU") {
            c.mtu = v
                .trim()
                .parse()
                .ok()
                .filter(|m| (MIN_MTU..=MAX_MTU).contains(m))
                .ok_or_else(|| {
                    bad(
                        "USTACK_MTU",
                        &v,
                        format!("a whole number from {MIN_MTU} to {MAX_MTU}"),
                    )
                })?;
        }
        if let Some(v) = get("USTACK_LOG") {
            c.log = parse_level(&v).ok_or_else(|| {
                bad(
                    "USTACK_LOG",
                    &v,
                    "one of off, error, warn, info, debug, trace",
                )
            })?;
        }
        c.pcap = get("USTACK_PCAP").map(PathBuf::from);
        if let Some(v) = get("USTACK_FAULT") {
            let fault = FaultConfig::parse(&v).map_err(|e| {
                let why = e.to_string();
                let why = why
                    .strip_prefix("USTACK_FAULT: ")
                    .unwrap_or(&why)
                    .to_string();
                bad("USTACK_FAULT", &v, why)
            })?;
            c.fault = Some(fault);
        }
        if let Some(v) = get("USTACK_OFFLOAD") {
            c.offload = match v.to_ascii_lowercase().as_str() {
                "on" => true,
                "off" => false,
                _ => return Err(bad("USTACK_OFFLOAD", &v, "'on' or 'off'")),
            };
        }
        if let Some(v) = get("USTACK_ECN") {
            c.ecn = match v.to_ascii_lowercase().as_str() {
                "off" => crate::tcp::Ecn::Off,
                "accept" => crate::tcp::Ecn::Accept,
                "on" => crate::tcp::Ecn::On,
                _ => return Err(bad("USTACK_ECN", &v, "'off', 'accept' or 'on'")),
            };
        }
        if let Some(v) = get("USTACK_FALLBACK") {
            c.fallback = match v.to_ascii_lowercase().as_str() {
                "fail" => Fallback::Fail,
                "kernel" => Fallback::Kernel,
                _ => return Err(bad("USTACK_FALLBACK", &v, "'fail' or 'kernel'")),
            };
        }
        if let Some(v) = get("USTACK_DNS") {
            c.dns_over_stack = match v.to_ascii_lowercase().as_str() {
                "stack" => true,
                "kernel" => false,
                _ => return Err(bad("USTACK_DNS", &v, "'stack' or 'kernel'")),
            };
        }
        if let Some(v) = get("USTACK_SHARED") {
            c.shared = match v.to_ascii_lowercase().as_str() {
                "on" | "1" | "yes" => Shared::On,
                "off" | "0" | "no" => Shared::Off,
                "auto" => Shared::Auto,
                _ => return Err(bad("USTACK_SHARED", &v, "'on', 'off' or 'auto'")),
            };
        }
        if let Some(v) = get("USTACK_LINGER") {
            c.linger = parse_duration(&v).ok_or_else(|| {
                bad(
                    "USTACK_LINGER",
                    &v,
                    "a duration with a unit, such as 5s or 500ms",
                )
            })?;
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn unset_variables_take_the_documented_defaults() {
        let c = parse(&[]).unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.ifname, "ustack0");
        assert_eq!(c.addr.to_string(), "10.77.0.2");
        assert_eq!(c.peer.to_string(), "10.77.0.1");
        assert_eq!(c.addr6.to_string(), "fd77::2");
        assert_eq!(c.peer6.to_string(), "fd77::1");
        assert_eq!(c.mtu, 1500);
        assert_eq!(c.log, LogLevel::Warn);
    }

    #[test]
    fn every_variable_is_read() {
        let c = parse(&[
            ("USTACK_IFNAME", "tun9"),
            ("USTACK_ADDR", "192.168.0.1"),
            ("USTACK_PEER", "192.0.2.1"),
            ("USTACK_ADDR6", "fd00::1"),
            ("USTACK_PEER6", "fd00::2"),
            ("USTACK_MTU", "9000"),
            ("USTACK_LOG", "DEBUG"),
            ("USTACK_PCAP", "/tmp/x.pcap"),
            ("USTACK_FAULT", "loss=0.1"),
            ("USTACK_FALLBACK", "kernel"),
            ("USTACK_OFFLOAD", "off"),
            ("USTACK_ECN", "On"),
            ("USTACK_LINGER", "250ms"),
            ("USTACK_DNS", "Kernel"),
        ])
        .unwrap();
        assert_eq!(c.ifname, "tun9");
        assert_eq!(c.addr, Ipv4Addr::new(192, 168, 0, 1));
        assert_eq!(c.peer, Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(c.mtu, 9000);
        assert_eq!(c.log, LogLevel::Debug);
        assert_eq!(c.pcap, Some(PathBuf::from("/tmp/x.pcap")));
        assert_eq!(c.fault, Some(FaultConfig::parse("loss=0.1").unwrap()));
        assert_eq!(c.fallback, Fallback::Kernel);
        assert!(!c.offload);
        assert_eq!(c.ecn, crate::tcp::Ecn::On);
        assert_eq!(c.linger, Duration::from_millis(250));
        assert!(!c.dns_over_stack);
    }

    #[test]
    fn bad_values_name_the_variable_and_the_value() {
        let cases = [
            ("USTACK_MTU", "1279"),
            ("USTACK_MTU", "65536"),
            ("USTACK_MTU", "big"),
            ("USTACK_ADDR", "10.77.0"),
            ("USTACK_ADDR", "0.0.0.0"),
            ("USTACK_PEER", "10.77.0.2"),
            ("USTACK_ADDR6", "fd77::zz"),
            ("USTACK_PEER6", "fd77::2"),
            ("USTACK_IFNAME", "a/b"),
            ("USTACK_IFNAME", "sixteen-chars-xx"),
            ("USTACK_LOG", "loud"),
            ("USTACK_FALLBACK", "maybe"),
            ("USTACK_DNS", "udp"),
            ("USTACK_OFFLOAD", "yes"),
            ("USTACK_ECN", "yes"),
            ("USTACK_LINGER", "5"),
            ("USTACK_LINK", "tap0"),
            ("USTACK_ADDR", "10.0.0.2/33"),
            ("USTACK_ADDR", "10.0.0.2/"),
            ("USTACK_ADDR6", "fd00::2/129"),
            ("USTACK_GATEWAY", "10.0.0.256"),
            ("USTACK_GATEWAY", "255.255.255.255"),
            ("USTACK_GATEWAY6", "ff02::1"),
            ("USTACK_MAC", "01:00:5e:00:00:01"),
            ("USTACK_MAC", "02:00:00:00:00"),
            ("USTACK_FAULT", "loss=2"),
            ("USTACK_FAULT", "jitter=5ms"),
        ];
        for (var, value) in cases {
            let err = parse(&[(var, value)]).unwrap_err();
            assert_eq!(err.var, var, "{var}={value}");
            assert_eq!(err.value, value);
            let line = err.to_string();
            assert!(
                line.starts_with(&format!("{var}: bad value '{value}'")),
                "{line}"
            );
        }
    }

    #[test]
    fn tap_variables_are_read_and_the_default_mac_is_stable_and_local() {
        let c = parse(&[
            ("USTACK_LINK", "TAP"),
            ("USTACK_ADDR", "192.168.7.20/16"),
            ("USTACK_ADDR6", "fd07::20/48"),
            ("USTACK_GATEWAY", "192.168.0.1"),
            ("USTACK_GATEWAY6", "fe80::1"),
        ])
        .unwrap();
        assert_eq!(c.link, LinkKind::Tap);
        assert_eq!(
            (c.addr, c.prefix_len()),
            (Ipv4Addr::new(192, 168, 7, 20), 16)
        );
        assert_eq!(c.prefix6_len(), 48);
        assert_eq!(c.gateway, Some(Ipv4Addr::new(192, 168, 0, 1)));
        assert_eq!(c.gateway6, Some("fe80::1".parse().unwrap()));
        let mac = c.mac_addr();
        assert!(mac.is_unicast() && mac.is_local());
        assert_eq!(
            mac,
            parse(&[
                ("USTACK_ADDR", "192.168.7.20"),
                ("USTACK_ADDR6", "fd07::20")
            ])
            .unwrap()
            .mac_addr()
        );
        assert_ne!(mac, Config::default().mac_addr());
        let d = Config::default();
        assert_eq!(
            (d.link, d.prefix_len(), d.prefix6_len()),
            (LinkKind::Tun, 24, 64)
        );
        let c = parse(&[("USTACK_MAC", "02:00:00:77:00:02")]).unwrap();
        assert_eq!(c.mac_addr().to_string(), "02:00:00:77:00:02");
    }

    #[test]
    fn addr_dhcp_is_accepted_on_tap_only() {
        let c = parse(&[("USTACK_LINK", "tap"), ("USTACK_ADDR", "DHCP")]).unwrap();
        assert!(c.dhcp);
        assert!(!Config::default().dhcp);
        let e = parse(&[("USTACK_ADDR", "dhcp")]).unwrap_err();
        assert_eq!(e.var, "USTACK_ADDR");
        assert!(e.to_string().contains("USTACK_LINK=tap"), "{e}");
        let e = parse(&[("USTACK_LINK", "tap"), ("USTACK_ADDR", "dhcpx")]).unwrap_err();
        assert!(e.to_string().contains("'dhcp'"), "{e}");
    }

    #[test]
    fn addr6_auto_is_accepted_on_tap_only() {
        let c = parse(&[("USTACK_LINK", "tap"), ("USTACK_ADDR6", "auto")]).unwrap();
        assert!(c.slaac && !c.dhcp);
        assert_eq!(c.addr6_text(), "auto");
        let e = parse(&[("USTACK_ADDR6", "auto")]).unwrap_err();
        assert_eq!(e.var, "USTACK_ADDR6");
        assert!(e.to_string().contains("USTACK_LINK=tap"), "{e}");
    }

    #[test]
    fn empty_variable_means_default() {
        assert_eq!(parse(&[("USTACK_MTU", "")]).unwrap().mtu, 1500);
    }

    #[test]
    fn durations_need_a_unit() {
        assert_eq!(parse_duration("3s"), Some(Duration::from_secs(3)));
        assert_eq!(parse_duration("15ms"), Some(Duration::from_millis(15)));
        assert_eq!(parse_duration("7us"), Some(Duration::from_micros(7)));
        assert_eq!(parse_duration("7"), None);
        assert_eq!(parse_duration("-1s"), None);
        assert_eq!(parse_duration("99999999999999999999s"), None);
    }
}
