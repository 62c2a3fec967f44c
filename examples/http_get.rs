//! Fetches a URL over HTTP/1.1 with the userspace stack and writes the body
//! to stdout (status and headers go to stderr).
//!
//! `http_get http://10.77.0.1:8000/file` — the host must be an IP address
//! (IPv6 in brackets); there is no DNS. The stack is configured by the
//! `USTACK_*` variables; run it inside a network namespace of your own.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;

use ustack::api::{Stack, TcpStream};

/// Splits `http://HOST[:PORT][/PATH]` into the socket address, the Host
/// header value and the path.
fn parse_url(url: &str) -> Result<(SocketAddr, String, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("'{url}': only http:// URLs are supported"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = if let Some(h) = authority.strip_prefix('[') {
        let end = h
            .find(']')
            .ok_or_else(|| format!("'{url}': unclosed '['"))?;
        let port = h[end + 1..].strip_prefix(':').unwrap_or("80");
        (&h[..end], port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, p),
            None => (authority, "80"),
        }
    };
    let ip: IpAddr = host
        .parse()
        .map_err(|_| format!("'{host}': the host must be an IP address (no DNS)"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("'{port}': not a port number"))?;
    Ok((
        SocketAddr::new(ip, port),
        authority.to_string(),
        path.to_string(),
    ))
}

fn fetch(stack: &Stack, url: &str) -> Result<(), String> {
    let (addr, host, path) = parse_url(url)?;
    let stream = TcpStream::connect(stack, addr).map_err(|e| format!("connect {addr}: {e}"))?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: ustack-http-get\r\nConnection: close\r\n\r\n"
    );
    (&stream)
        .write_all(request.as_bytes())
        .map_err(|e| format!("send: {e}"))?;
    let mut reader = BufReader::new(&stream);
    let mut line = String::new();
    let mut length: Option<u64> = None;
    let mut first = true;
    loop {
        line.clear();
        let n = reader
            .read_line(&mut line)
            .map_err(|e| format!("reading headers: {e}"))?;
        if n == 0 {
            return Err("connection closed inside the headers".into());
        }
        eprint!("{line}");
        if first {
            first = false;
            if !line.starts_with("HTTP/1.") {
                return Err(format!("not an HTTP response: {}", line.trim_end()));
            }
        }
        if line == "\r\n" || line == "\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().ok();
        }
    }
    let mut out = io::stdout().lock();
    let copied = match length {
        Some(len) => io::copy(&mut reader.take(len), &mut out),
        None => io::copy(&mut reader, &mut out),
    }
    .map_err(|e| format!("reading body: {e}"))?;
    out.flush().map_err(|e| format!("writing body: {e}"))?;
    if let Some(len) = length
        && copied != len
    {
        return Err(format!("body cut short: {copied} of {len} bytes"));
    }
    Ok(())
}

fn main() -> ExitCode {
    let Some(url) = std::env::args().nth(1) else {
        eprintln!("usage: http_get http://HOST[:PORT]/PATH");
        return ExitCode::from(2);
    };
    let stack = match Stack::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ustack: {e}");
            return ExitCode::from(1);
        }
    };
    match fetch(&stack, &url) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("http_get: {e}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_url;

    #[test]
    fn urls_split_into_address_host_and_path() {
        let (a, h, p) = parse_url("http://10.77.0.1:8000/x/y").unwrap();
        assert_eq!(a.to_string(), "10.77.0.1:8000");
        assert_eq!((h.as_str(), p.as_str()), ("10.77.0.1:8000", "/x/y"));
        let (a, _, p) = parse_url("http://[fd77::1]/").unwrap();
        assert_eq!(a.to_string(), "[fd77::1]:80");
        assert_eq!(p, "/");
        assert!(parse_url("https://10.0.0.1/").is_err());
        assert!(parse_url("http://example.com/").is_err());
        assert!(parse_url("http://10.0.0.1:99999/").is_err());
    }
}
