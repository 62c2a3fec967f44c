//! Name resolution over the stack: a stub resolver that glibc's entry
//! points (getaddrinfo, gethostbyname and family, res_query and family;
//! see `abi`) use instead of glibc's own, whose sockets are libc-internal
//! and so would reach the kernel, not the stack (a leak, the one torsocks
//! exists to prevent). The sources of nsswitch.conf's `hosts:` line are
//! asked in order: `files` (/etc/hosts) and `dns` (resolv.conf's servers,
//! over UDP on the stack's sockets, TCP when an answer is truncated);
//! others are skipped with a debug line.
//!
//! Owns: the lookup order, the queries and the matching of answers.
//! Must not touch: the sockets' implementation (it calls the shim's own
//! exported socket functions, as the program would, so the queries take
//! the same path as the program's traffic in either stack model), or the
//! DNS byte layout (`ustack_core::wire::dns`).

pub mod abi;
pub mod conf;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use libc::{c_int, c_void, pollfd, sockaddr, socklen_t};
use ustack_core::wire::dns::{
    self, CLASS_IN, Query, RCODE_NXDOMAIN, RCODE_OK, RData, Response, TYPE_A, TYPE_AAAA,
};

use conf::{HostLine, ResolvConf, Source};
use ustack_shim::hooks;

/// Why a lookup found nothing, in the terms glibc's callers see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Miss {
    /// The name does not exist (HOST_NOT_FOUND, EAI_NONAME).
    NoName,
    /// It exists without an address of the asked family (NO_DATA,
    /// EAI_NODATA).
    NoData,
    /// No server answered, or one failed (TRY_AGAIN, EAI_AGAIN).
    TryAgain,
    /// Lookups are refused: the stack could not start, and the program's
    /// sockets fail too (NO_RECOVERY, EAI_FAIL). Not a leak to libc.
    Refused,
}

/// A name's addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The canonical name (the end of the CNAME chain, or the hosts line's
    /// first name).
    pub canonical: String,
    /// The other names met on the way (aliases).
    pub aliases: Vec<String>,
    /// The addresses, IPv6 before IPv4 (glibc's default order on a host
    /// with both: RFC 3484's precedence puts IPv4 last).
    pub addrs: Vec<IpAddr>,
}

/// Which families a lookup wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Families {
    /// A records.
    pub v4: bool,
    /// AAAA records.
    pub v6: bool,
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes.
    if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } != 0 {
        return String::new();
    }
    let n = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// resolv.conf as it is now (re-read per lookup, as glibc does when it
/// changes). With `USTACK_ADDR=dhcp` and the stack in this process, the
/// lease's DNS servers stand in for the file's `nameserver` lines, as
/// they would once a DHCP client rewrote the file; the rest of the file
/// (search list, options) still holds. A program on the shared stack does
/// not see the daemon's lease and keeps the file's servers.
pub fn resolv_conf() -> ResolvConf {
    let mut conf = ResolvConf::parse(
        &read("/etc/resolv.conf"),
        std::env::var("LOCALDOMAIN").ok().as_deref(),
        std::env::var("RES_OPTIONS").ok().as_deref(),
        &hostname(),
    );
    if let ustack_shim::stack::Stack::Up { rt, .. } = ustack_shim::stack::get() {
        let leased = rt.dns_servers();
        if !leased.is_empty() {
            conf.servers = leased
                .into_iter()
                .map(|a| SocketAddr::from((a, 53)))
                .collect();
        }
    }
    conf
}

/// Looks `name` up through nsswitch.conf's sources, in order; the first
/// that finds an address answers. The miss reported is the last source's.
pub fn lookup(name: &str, fam: Families) -> Result<Found, Miss> {
    let (sources, skipped) = conf::parse_nsswitch(&read("/etc/nsswitch.conf"));
    if !skipped.is_empty() {
        log::debug!("resolver: nsswitch sources not served over the stack: {skipped:?}");
    }
    let mut miss = Miss::NoName;
    for s in sources {
        let r = match s {
            Source::Files => from_hosts(&conf::parse_hosts(&read("/etc/hosts")), name, fam),
            Source::Dns => from_dns(&resolv_conf(), name, fam),
        };
        match r {
            Ok(f) => return Ok(f),
            Err(m) => miss = m,
        }
    }
    Err(miss)
}

/// /etc/hosts: every line naming `name` (case-insensitively), in file
/// order within each family.
pub fn from_hosts(lines: &[HostLine], name: &str, fam: Families) -> Result<Found, Miss> {
    let name = name.strip_suffix('.').unwrap_or(name);
    let mut found: Option<Found> = None;
    let (mut v6, mut v4) = (Vec::new(), Vec::new());
    for l in lines {
        if !l.names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            continue;
        }
        match l.addr {
            IpAddr::V6(_) if fam.v6 => v6.push(l.addr),
            IpAddr::V4(_) if fam.v4 => v4.push(l.addr),
            _ => continue,
        }
        let f = found.get_or_insert_with(|| Found {
            canonical: l.names[0].clone(),
            aliases: Vec::new(),
            addrs: Vec::new(),
        });
        for n in &l.names {
            if *n != f.canonical && !f.aliases.contains(n) {
                f.aliases.push(n.clone());
            }
        }
    }
    let mut f = found.ok_or(Miss::NoName)?;
    f.addrs = v6.into_iter().chain(v4).collect();
    Ok(f)
}

/// DNS: each candidate name of the search list in turn, AAAA and A as
/// asked, until one has addresses.
fn from_dns(c: &ResolvConf, name: &str, fam: Families) -> Result<Found, Miss> {
    // As glibc's res_search: a name that exists without the address
    // (NO_DATA) outranks a failure (TRY_AGAIN), which outranks NXDOMAIN.
    let (mut nodata, mut failed) = (false, false);
    for cand in c.candidates(name) {
        let mut f = Found {
            canonical: cand.clone(),
            aliases: Vec::new(),
            addrs: Vec::new(),
        };
        for (_, t) in [(fam.v6, TYPE_AAAA), (fam.v4, TYPE_A)]
            .iter()
            .filter(|(w, _)| *w)
        {
            match ask(c, &cand, *t) {
                Ok(r) => {
                    nodata |= r.rcode == RCODE_OK;
                    collect(&cand, &r, &mut f);
                }
                Err(_) => failed = true,
            }
        }
        if !f.addrs.is_empty() {
            return Ok(f);
        }
    }
    Err(if nodata {
        Miss::NoData
    } else if failed {
        Miss::TryAgain
    } else {
        Miss::NoName
    })
}

/// Follows the CNAME chain from `qname` in `r` and takes the addresses
/// its end owns.
fn collect(qname: &str, r: &Response, f: &mut Found) {
    let mut owner = qname.to_string();
    for _ in 0..16 {
        let next = r.answers.iter().find_map(|a| match &a.data {
            RData::Cname(t) if a.name.eq_ignore_ascii_case(&owner) => Some(t.clone()),
            _ => None,
        });
        let Some(t) = next else { break };
        if !f.aliases.contains(&owner) {
            f.aliases.push(owner);
        }
        owner = t;
    }
    f.aliases.retain(|a| !a.eq_ignore_ascii_case(&owner));
    f.canonical = owner.clone();
    for a in &r.answers {
        if !a.name.eq_ignore_ascii_case(&owner) || a.class != CLASS_IN {
            continue;
        }
        let ip = match a.data {
            RData::A(x) => IpAddr::V4(x),
            RData::Aaaa(x) => IpAddr::V6(x),
            _ => continue,
        };
        if !f.addrs.contains(&ip) {
            f.addrs.push(ip);
        }
    }
    f.addrs.sort_by_key(|a| a.is_ipv4());
}

/// Asks the servers for `name`/`qtype` and parses the answer; a response
/// that is neither success nor NXDOMAIN (SERVFAIL, REFUSED) or no answer
/// at all is TryAgain.
fn ask(c: &ResolvConf, name: &str, qtype: u16) -> Result<Response, Miss> {
    let raw = exchange(c, name, qtype, CLASS_IN)?;
    let r = Response::parse(&raw).map_err(|_| Miss::TryAgain)?;
    match r.rcode {
        RCODE_OK | RCODE_NXDOMAIN => Ok(r),
        _ => Err(Miss::TryAgain),
    }
}

static NEXT_ID: AtomicU16 = AtomicU16::new(0);
static ROTATE: AtomicUsize = AtomicUsize::new(0);

fn next_id() -> u16 {
    // Not guessable from outside the host without the clock: mixes in
    // the time's nanoseconds and the pid.
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos()) as u16
        ^ (std::process::id() as u16).rotate_left(5);
    NEXT_ID.fetch_add(0x9e37, Ordering::Relaxed) ^ t
}

/// One question to the servers, `attempts` rounds over them: the raw
/// answer whose id and question match (over TCP if it came truncated).
pub fn exchange(c: &ResolvConf, name: &str, qtype: u16, qclass: u16) -> Result<Vec<u8>, Miss> {
    let id = next_id();
    let q = Query {
        id,
        name,
        qtype,
        qclass,
    }
    .emit()
    .map_err(|_| Miss::NoName)?;
    send_raw(c, &q, Some((name, qtype)))
}

/// Sends the query message `q` to the servers in turn until one answers
/// it; `check` names the question the answer must repeat.
pub fn send_raw(c: &ResolvConf, q: &[u8], check: Option<(&str, u16)>) -> Result<Vec<u8>, Miss> {
    if q.len() < dns::HEADER_LEN {
        return Err(Miss::NoName);
    }
    let id = u16::from_be_bytes([q[0], q[1]]);
    let start = if c.rotate {
        ROTATE.fetch_add(1, Ordering::Relaxed)
    } else {
        0
    };
    let n = c.servers.len();
    let matches = |raw: &[u8]| match Response::parse(raw) {
        Ok(r) if r.id == id => match (check, &r.question) {
            (None, _) => true,
            (Some((name, t)), Some((qn, qt, _))) => {
                *qt == t && qn.eq_ignore_ascii_case(name.trim_end_matches('.'))
            }
            (Some(_), None) => false,
        },
        _ => false,
    };
    for round in 0..c.attempts {
        for i in 0..n {
            let server = c.servers[(start + i) % n];
            // glibc doubles the wait each round (res_send.c).
            let wait = c.timeout * (1 << round.min(4)) / n.max(1) as u32;
            let wait = wait.max(Duration::from_secs(1)).min(c.timeout * 4);
            match udp(server, q, wait, &matches) {
                Some((raw, truncated)) if truncated => {
                    if let Some(full) = tcp(server, q, c.timeout, &matches) {
                        return Ok(full);
                    }
                    return Ok(raw);
                }
                Some((raw, _)) => return Ok(raw),
                None => continue,
            }
        }
    }
    Err(Miss::TryAgain)
}

/// An fd made by the shim's own socket(), closed on drop.
struct Fd(c_int);

impl Drop for Fd {
    fn drop(&mut self) {
        // SAFETY: our own fd.
        unsafe { hooks::close(self.0) };
    }
}

fn new_socket(server: SocketAddr, ty: c_int) -> Option<Fd> {
    let fam = if server.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: plain integers.
    let fd = unsafe { hooks::socket(fam, ty | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK, 0) };
    (fd >= 0).then_some(Fd(fd))
}

fn connect(fd: &Fd, server: SocketAddr, until: Instant) -> bool {
    // SAFETY: a zeroed sockaddr_storage is valid output space.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as socklen_t;
    // SAFETY: `ss` has room for any address.
    if unsafe { ustack_shim::addr::write(server, (&raw mut ss).cast(), &mut len) }.is_err() {
        return false;
    }
    // SAFETY: `ss` holds `len` bytes of address.
    if unsafe { hooks::connect(fd.0, (&raw const ss).cast::<sockaddr>(), len) } == 0 {
        return true;
    }
    if ustack_shim::real::errno() != libc::EINPROGRESS || !wait(fd, libc::POLLOUT, until) {
        return false;
    }
    let mut err: c_int = 0;
    let mut l = std::mem::size_of::<c_int>() as socklen_t;
    // SAFETY: SO_ERROR writes one int.
    let r = unsafe {
        hooks::getsockopt(
            fd.0,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&raw mut err).cast::<c_void>(),
            &mut l,
        )
    };
    r == 0 && err == 0
}

/// Waits for `events` on `fd` until `until`; false on timeout or error.
fn wait(fd: &Fd, events: i16, until: Instant) -> bool {
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let mut p = pollfd {
            fd: fd.0,
            events,
            revents: 0,
        };
        let ms = left.as_millis().clamp(1, i32::MAX as u128) as c_int;
        // SAFETY: one live pollfd.
        let r = unsafe { hooks::poll(&mut p, 1, ms) };
        if r > 0 {
            return p.revents & events != 0;
        }
        if r < 0 && ustack_shim::real::errno() != libc::EINTR {
            return false;
        }
    }
}

/// One UDP exchange: the first reply that `matches`, and whether it says
/// it was truncated. Replies that do not match (late answers to an earlier
/// query, forgeries) are ignored; an ICMP error ends it at once.
fn udp(
    server: SocketAddr,
    q: &[u8],
    wait_for: Duration,
    matches: &dyn Fn(&[u8]) -> bool,
) -> Option<(Vec<u8>, bool)> {
    let until = Instant::now() + wait_for;
    let fd = new_socket(server, libc::SOCK_DGRAM)?;
    if !connect(&fd, server, until) {
        return None;
    }
    // SAFETY: `q` is live for the call.
    if unsafe { hooks::send(fd.0, q.as_ptr().cast(), q.len(), libc::MSG_NOSIGNAL) } < 0 {
        return None;
    }
    let mut buf = vec![0u8; 65536];
    while wait(&fd, libc::POLLIN, until) {
        // SAFETY: `buf` is writable for its length.
        let n = unsafe { hooks::recv(fd.0, buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            match ustack_shim::real::errno() {
                libc::EAGAIN | libc::EINTR => continue,
                _ => return None,
            }
        }
        let m = &buf[..n as usize];
        if matches(m) {
            let truncated = m.len() > 2 && m[2] & 0x02 != 0;
            return Some((m.to_vec(), truncated));
        }
    }
    None
}

/// One TCP exchange (RFC 7766: each message after its two-byte length).
fn tcp(
    server: SocketAddr,
    q: &[u8],
    wait_for: Duration,
    matches: &dyn Fn(&[u8]) -> bool,
) -> Option<Vec<u8>> {
    let until = Instant::now() + wait_for;
    let fd = new_socket(server, libc::SOCK_STREAM)?;
    if !connect(&fd, server, until) {
        return None;
    }
    let mut out = (q.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(q);
    let mut sent = 0;
    while sent < out.len() {
        if !wait(&fd, libc::POLLOUT, until) {
            return None;
        }
        let rest = &out[sent..];
        // SAFETY: `rest` is live for the call.
        let n = unsafe { hooks::send(fd.0, rest.as_ptr().cast(), rest.len(), libc::MSG_NOSIGNAL) };
        if n < 0 {
            match ustack_shim::real::errno() {
                libc::EAGAIN | libc::EINTR => continue,
                _ => return None,
            }
        }
        sent += n as usize;
    }
    let mut got: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 65536];
    loop {
        if got.len() >= 2 {
            let want = 2 + usize::from(u16::from_be_bytes([got[0], got[1]]));
            if got.len() >= want {
                let m = &got[2..want];
                return matches(m).then(|| m.to_vec());
            }
        }
        if !wait(&fd, libc::POLLIN, until) {
            return None;
        }
        // SAFETY: `buf` is writable for its length.
        let n = unsafe { hooks::recv(fd.0, buf.as_mut_ptr().cast(), buf.len(), 0) };
        match n {
            0 => return None,
            n if n < 0 => match ustack_shim::real::errno() {
                libc::EAGAIN | libc::EINTR => continue,
                _ => return None,
            },
            n => got.extend_from_slice(&buf[..n as usize]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOTH: Families = Families { v4: true, v6: true };

    #[test]
    fn hosts_lookup_by_name_or_alias_ipv6_first() {
        let h = conf::parse_hosts("10.0.0.1 web www\nfd00::1 web\n10.0.0.2 WEB\n10.0.0.3 other\n");
        let f = from_hosts(&h, "Www.", BOTH).unwrap();
        assert_eq!(f.canonical, "web");
        assert_eq!(f.aliases, ["www"]);
        let want: Vec<IpAddr> = ["fd00::1", "10.0.0.1", "10.0.0.2"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        assert_eq!(from_hosts(&h, "web", BOTH).unwrap().addrs, want);
        let v4 = Families {
            v4: true,
            v6: false,
        };
        assert_eq!(from_hosts(&h, "web", v4).unwrap().addrs, want[1..]);
        assert_eq!(from_hosts(&h, "nothing", BOTH), Err(Miss::NoName));
    }

    #[test]
    fn answers_follow_the_cname_chain_to_its_end() {
        let r = Response {
            id: 1,
            rcode: RCODE_OK,
            truncated: false,
            question: None,
            answers: vec![
                dns::Record {
                    name: "www.t".into(),
                    class: CLASS_IN,
                    ttl: 1,
                    data: RData::Cname("web.t".into()),
                },
                // Owned by a name not on the chain: ignored.
                dns::Record {
                    name: "evil.t".into(),
                    class: CLASS_IN,
                    ttl: 1,
                    data: RData::A("192.0.2.66".parse().unwrap()),
                },
                dns::Record {
                    name: "WEB.t".into(),
                    class: CLASS_IN,
                    ttl: 1,
                    data: RData::A("10.77.0.9".parse().unwrap()),
                },
            ],
        };
        let mut f = Found {
            canonical: String::new(),
            aliases: Vec::new(),
            addrs: Vec::new(),
        };
        collect("www.t", &r, &mut f);
        assert_eq!(f.canonical, "web.t");
        assert_eq!(f.aliases, ["www.t"]);
        assert_eq!(f.addrs, ["10.77.0.9".parse::<IpAddr>().unwrap()]);
    }
}
