//! The resolver's configuration, read as glibc reads it: `/etc/resolv.conf`
//! (nameserver, search, domain, options ndots/timeout/attempts/rotate; the
//! `LOCALDOMAIN` and `RES_OPTIONS` variables), `/etc/hosts`, and the
//! `hosts:` line of `/etc/nsswitch.conf`. Pure parsing: the files are read
//! by the caller.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

/// glibc's limits (resolv.h): MAXNS servers, MAXDNSRCH search domains,
/// RES_MAXNDOTS, RES_MAXRETRANS seconds, RES_MAXRETRY attempts.
const MAX_SERVERS: usize = 3;
const MAX_SEARCH: usize = 6;
const MAX_NDOTS: usize = 15;
const MAX_TIMEOUT: u64 = 30;
const MAX_ATTEMPTS: u32 = 5;

/// What resolv.conf says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvConf {
    /// The servers, in order (port 53); 127.0.0.1 when none is named.
    pub servers: Vec<SocketAddr>,
    /// The search list.
    pub search: Vec<String>,
    /// Names with at least this many dots are tried as given first.
    pub ndots: usize,
    /// How long one query waits for its answer.
    pub timeout: Duration,
    /// Rounds over the server list.
    pub attempts: u32,
    /// Start each lookup at the next server.
    pub rotate: bool,
}

impl ResolvConf {
    /// Parses the file's text; `localdomain` and `res_options` are the
    /// environment's `LOCALDOMAIN` and `RES_OPTIONS`, which override it;
    /// `hostname` gives the default search domain (the part after its
    /// first dot), as glibc does when the file names none.
    pub fn parse(
        text: &str,
        localdomain: Option<&str>,
        res_options: Option<&str>,
        hostname: &str,
    ) -> ResolvConf {
        let mut c = ResolvConf {
            servers: Vec::new(),
            search: Vec::new(),
            ndots: 1,
            timeout: Duration::from_secs(5),
            attempts: 2,
            rotate: false,
        };
        let mut searched = false;
        for line in text.lines() {
            let line = line.split(['#', ';']).next().unwrap_or("");
            let mut words = line.split_whitespace();
            match words.next() {
                Some("nameserver") => {
                    // A scoped IPv6 address (fe80::1%eth0) has no meaning
                    // on the stack's link: skipped.
                    if let Some(a) = words.next().and_then(|w| w.parse::<IpAddr>().ok())
                        && c.servers.len() < MAX_SERVERS
                    {
                        c.servers.push(SocketAddr::new(a, 53));
                    }
                }
                Some("domain") => {
                    c.search = words
                        .next()
                        .map(|d| vec![d.to_string()])
                        .unwrap_or_default();
                    searched = true;
                }
                Some("search") => {
                    c.search = words.take(MAX_SEARCH).map(str::to_string).collect();
                    searched = true;
                }
                Some("options") => c.options(words),
                _ => {}
            }
        }
        if let Some(d) = localdomain {
            c.search = d
                .split_whitespace()
                .take(MAX_SEARCH)
                .map(str::to_string)
                .collect();
            searched = true;
        }
        if let Some(o) = res_options {
            c.options(o.split_whitespace());
        }
        if !searched
            && let Some((_, d)) = hostname.split_once('.')
            && !d.is_empty()
        {
            c.search = vec![d.to_string()];
        }
        if c.servers.is_empty() {
            c.servers
                .push(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 53));
        }
        c
    }

    fn options<'a>(&mut self, words: impl Iterator<Item = &'a str>) {
        for w in words {
            let (k, v) = w.split_once(':').unwrap_or((w, ""));
            let n = v.parse::<u64>().ok();
            match (k, n) {
                ("ndots", Some(n)) => self.ndots = (n as usize).min(MAX_NDOTS),
                ("timeout", Some(n)) => {
                    self.timeout = Duration::from_secs(n.clamp(1, MAX_TIMEOUT));
                }
                ("attempts", Some(n)) => self.attempts = (n as u32).clamp(1, MAX_ATTEMPTS),
                ("rotate", _) => self.rotate = true,
                _ => {}
            }
        }
    }

    /// The names to ask for `name`, in order (RFC 1535's search rules as
    /// glibc applies them): a name ending in '.' as it is; one with at
    /// least `ndots` dots as it is first, then with each search domain;
    /// any other with each search domain first, then as it is.
    pub fn candidates(&self, name: &str) -> Vec<String> {
        if let Some(abs) = name.strip_suffix('.') {
            return vec![abs.to_string()];
        }
        let with = self
            .search
            .iter()
            .map(|d| format!("{name}.{}", d.trim_end_matches('.')));
        let dots = name.matches('.').count();
        if dots >= self.ndots {
            std::iter::once(name.to_string()).chain(with).collect()
        } else {
            with.chain(std::iter::once(name.to_string())).collect()
        }
    }
}

/// One line of /etc/hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostLine {
    /// The address.
    pub addr: IpAddr,
    /// Its canonical name, then its aliases.
    pub names: Vec<String>,
}

/// Parses /etc/hosts; lines whose address does not parse (a scoped
/// IPv6 address, junk) are skipped.
pub fn parse_hosts(text: &str) -> Vec<HostLine> {
    text.lines()
        .filter_map(|line| {
            let line = line.split('#').next().unwrap_or("");
            let mut words = line.split_whitespace();
            let addr = words.next()?.parse().ok()?;
            let names: Vec<String> = words.map(str::to_string).collect();
            (!names.is_empty()).then_some(HostLine { addr, names })
        })
        .collect()
}

/// A source of host names, from nsswitch.conf.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// /etc/hosts.
    Files,
    /// DNS, over the stack.
    Dns,
}

/// The `hosts:` line's sources this resolver serves, in order (`files
/// dns` without one). Others (myhostname, mdns4_minimal, resolve...) are
/// returned by name in the second list, to be reported as skipped;
/// `[NOTFOUND=return]`-style actions are not followed.
pub fn parse_nsswitch(text: &str) -> (Vec<Source>, Vec<String>) {
    let line = text.lines().find_map(|l| {
        let l = l.split('#').next().unwrap_or("").trim();
        l.strip_prefix("hosts:")
    });
    let Some(line) = line else {
        return (vec![Source::Files, Source::Dns], Vec::new());
    };
    let (mut served, mut skipped) = (Vec::new(), Vec::new());
    for w in line.split_whitespace().filter(|w| !w.starts_with('[')) {
        match w {
            "files" => served.push(Source::Files),
            "dns" => served.push(Source::Dns),
            other => skipped.push(other.to_string()),
        }
    }
    (served, skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_as_glibc_reads_it() {
        let c = ResolvConf::parse(
            "# comment\nnameserver 10.77.0.1\nnameserver fe80::1%eth0\nnameserver fd77::1 ; x\n\
             nameserver 192.0.2.3\nnameserver 192.0.2.4\ndomain a.test\nsearch b.test c.test\n\
             options ndots:2 timeout:0 attempts:9 rotate junk\n",
            None,
            None,
            "host.example",
        );
        let ns: Vec<String> = c.servers.iter().map(ToString::to_string).collect();
        assert_eq!(ns, ["10.77.0.1:53", "[fd77::1]:53", "192.0.2.3:53"]);
        assert_eq!(c.search, ["b.test", "c.test"]);
        assert_eq!(
            (c.ndots, c.timeout, c.attempts, c.rotate),
            (2, Duration::from_secs(1), 5, true)
        );
    }

    #[test]
    fn environment_overrides_and_defaults() {
        let c = ResolvConf::parse(
            "search x.test\n",
            Some("e.test f.test"),
            Some("ndots:3"),
            "h",
        );
        assert_eq!(c.search, ["e.test", "f.test"]);
        assert_eq!(c.ndots, 3);
        assert_eq!(c.servers, [SocketAddr::from(([127, 0, 0, 1], 53))]);
        let d = ResolvConf::parse("", None, None, "box.lab.test");
        assert_eq!(d.search, ["lab.test"]);
        assert_eq!(
            (d.timeout, d.attempts, d.ndots),
            (Duration::from_secs(5), 2, 1)
        );
    }

    #[test]
    fn search_order_follows_ndots() {
        let c = ResolvConf::parse("search a.test b.test.\n", None, None, "h");
        assert_eq!(c.candidates("www"), ["www.a.test", "www.b.test", "www"]);
        assert_eq!(c.candidates("w.x"), ["w.x", "w.x.a.test", "w.x.b.test"]);
        assert_eq!(c.candidates("abs.x."), ["abs.x"]);
    }

    #[test]
    fn hosts_lines_with_aliases_comments_and_junk() {
        let h = parse_hosts(
            "127.0.0.1 localhost\n::1 ip6-localhost ip6-loopback # c\nbad x\n\
                             fe80::1%lo scoped\n10.77.0.9   web  www.lab # alias\n10.0.0.1\n",
        );
        assert_eq!(h.len(), 3);
        assert_eq!(h[2].addr, "10.77.0.9".parse::<IpAddr>().unwrap());
        assert_eq!(h[2].names, ["web", "www.lab"]);
    }

    #[test]
    fn nsswitch_hosts_order_and_skipped_sources() {
        assert_eq!(
            parse_nsswitch(
                "passwd: files\nhosts: files mdns4_minimal [NOTFOUND=return] dns myhostname\n"
            ),
            (
                vec![Source::Files, Source::Dns],
                vec!["mdns4_minimal".to_string(), "myhostname".to_string()]
            )
        );
        assert_eq!(
            parse_nsswitch("hosts: dns files").0,
            [Source::Dns, Source::Files]
        );
        assert_eq!(parse_nsswitch("").0, [Source::Files, Source::Dns]);
    }
}
