//! `struct sockaddr` to and from `SocketAddr`, with the kernel's length
//! checks and truncation rules.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use libc::{sa_family_t, sockaddr, sockaddr_in, sockaddr_in6, socklen_t};

use crate::sock::Res;

/// What a socket address argument said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    Addr(SocketAddr),
    /// AF_UNSPEC: dissolve a UDP association.
    Unspec,
}

impl Parsed {
    /// The address, `None` for AF_UNSPEC.
    pub fn addr(&self) -> Option<SocketAddr> {
        match self {
            Parsed::Addr(a) => Some(*a),
            Parsed::Unspec => None,
        }
    }
}

/// Reads a socket address from raw bytes (`len` as the caller passed it).
/// `EINVAL` when too short, `EAFNOSUPPORT` for another family.
pub fn parse(bytes: &[u8]) -> Res<Parsed> {
    if bytes.len() < 2 {
        return Err(libc::EINVAL);
    }
    let family = sa_family_t::from_ne_bytes([bytes[0], bytes[1]]);
    match i32::from(family) {
        libc::AF_INET => {
            if bytes.len() < size_of::<sockaddr_in>() {
                return Err(libc::EINVAL);
            }
            let port = u16::from_be_bytes([bytes[2], bytes[3]]);
            let ip = Ipv4Addr::new(bytes[4], bytes[5], bytes[6], bytes[7]);
            Ok(Parsed::Addr(SocketAddr::V4(SocketAddrV4::new(ip, port))))
        }
        libc::AF_INET6 => {
            // Linux accepts the RFC 2133 length (no scope id), 24 bytes.
            if bytes.len() < 24 {
                return Err(libc::EINVAL);
            }
            let port = u16::from_be_bytes([bytes[2], bytes[3]]);
            let flow = u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
            let mut ip = [0u8; 16];
            ip.copy_from_slice(&bytes[8..24]);
            let scope = match bytes.get(24..28) {
                Some(s) => u32::from_ne_bytes([s[0], s[1], s[2], s[3]]),
                None => 0,
            };
            Ok(Parsed::Addr(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(ip),
                port,
                flow,
                scope,
            ))))
        }
        libc::AF_UNSPEC => Ok(Parsed::Unspec),
        _ => Err(libc::EAFNOSUPPORT),
    }
}

/// Reads a socket address from a C pointer and length.
///
/// # Safety
/// `ptr` must be valid for `len` bytes (or null).
pub unsafe fn read(ptr: *const sockaddr, len: socklen_t) -> Res<Parsed> {
    if ptr.is_null() {
        return Err(libc::EFAULT);
    }
    let len = (len as usize).min(size_of::<libc::sockaddr_storage>());
    // SAFETY: the caller promises `len` readable bytes at `ptr`.
    let bytes = unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) };
    parse(bytes)
}

/// The address as a socket of the family shows it (IPv4 peers of an IPv6
/// socket appear as mapped addresses).
pub fn present(v6: bool, a: SocketAddr) -> SocketAddr {
    match (v6, a) {
        (true, SocketAddr::V4(v)) => {
            SocketAddr::V6(SocketAddrV6::new(v.ip().to_ipv6_mapped(), v.port(), 0, 0))
        }
        (false, SocketAddr::V6(v)) => match v.ip().to_ipv4_mapped() {
            Some(ip) => SocketAddr::V4(SocketAddrV4::new(ip, v.port())),
            None => a,
        },
        _ => a,
    }
}

/// The unspecified address of a family, port 0 (an unbound socket's name).
pub fn unspecified(v6: bool) -> SocketAddr {
    if v6 {
        SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0)
    } else {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0)
    }
}

/// The bytes of a `sockaddr_in` / `sockaddr_in6` for `a`.
pub fn encode(a: SocketAddr) -> Vec<u8> {
    match a {
        SocketAddr::V4(v) => {
            let mut b = vec![0u8; size_of::<sockaddr_in>()];
            b[..2].copy_from_slice(&(libc::AF_INET as sa_family_t).to_ne_bytes());
            b[2..4].copy_from_slice(&v.port().to_be_bytes());
            b[4..8].copy_from_slice(&v.ip().octets());
            b
        }
        SocketAddr::V6(v) => {
            let mut b = vec![0u8; size_of::<sockaddr_in6>()];
            b[..2].copy_from_slice(&(libc::AF_INET6 as sa_family_t).to_ne_bytes());
            b[2..4].copy_from_slice(&v.port().to_be_bytes());
            b[4..8].copy_from_slice(&v.flowinfo().to_be_bytes());
            b[8..24].copy_from_slice(&v.ip().octets());
            b[24..28].copy_from_slice(&v.scope_id().to_ne_bytes());
            b
        }
    }
}

/// Writes `a` to a caller's buffer as the kernel does: at most `*len`
/// bytes, then `*len` set to the full size. Null pointers write nothing.
///
/// # Safety
/// `out` must be valid for `*len` bytes and `len` for a read and a write
/// (or null).
pub unsafe fn write(a: SocketAddr, out: *mut sockaddr, len: *mut socklen_t) -> Res<()> {
    if out.is_null() || len.is_null() {
        return Ok(());
    }
    let bytes = encode(a);
    // SAFETY: `len` is a valid socklen_t per the caller.
    let room = unsafe { *len } as usize;
    if (room as i32) < 0 {
        return Err(libc::EINVAL);
    }
    let n = room.min(bytes.len());
    // SAFETY: `out` has `room` >= `n` writable bytes per the caller.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), out.cast::<u8>(), n);
        *len = bytes.len() as socklen_t;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_and_v6_round_trip() {
        for a in [
            "10.77.0.1:8080".parse::<SocketAddr>().unwrap(),
            "[fd77::1]:443".parse().unwrap(),
            "[::ffff:10.0.0.1]:1".parse().unwrap(),
        ] {
            assert_eq!(parse(&encode(a)), Ok(Parsed::Addr(a)));
        }
    }

    #[test]
    fn short_or_foreign_addresses_are_rejected() {
        let v4 = encode("1.2.3.4:5".parse().unwrap());
        assert_eq!(parse(&v4[..15]), Err(libc::EINVAL));
        assert_eq!(parse(&[]), Err(libc::EINVAL));
        let v6 = encode("[::1]:5".parse().unwrap());
        assert_eq!(parse(&v6[..23]), Err(libc::EINVAL));
        assert!(
            matches!(parse(&v6[..24]), Ok(Parsed::Addr(_))),
            "RFC 2133 length"
        );
        let mut unix = v4.clone();
        unix[..2].copy_from_slice(&(libc::AF_UNIX as sa_family_t).to_ne_bytes());
        assert_eq!(parse(&unix), Err(libc::EAFNOSUPPORT));
        let unspec = [0u8; 16];
        assert_eq!(parse(&unspec), Ok(Parsed::Unspec));
    }

    #[test]
    fn write_truncates_and_reports_the_full_length() {
        let a: SocketAddr = "10.77.0.2:80".parse().unwrap();
        let mut buf = [0xaau8; 8];
        let mut len: socklen_t = 4;
        // SAFETY: an 8-byte buffer with len 4.
        unsafe { write(a, buf.as_mut_ptr().cast(), &mut len).unwrap() };
        assert_eq!(len as usize, size_of::<sockaddr_in>());
        assert_eq!(&buf[..4], &encode(a)[..4]);
        assert_eq!(buf[4], 0xaa, "nothing past the caller's length");
    }

    #[test]
    fn ipv4_peers_of_ipv6_sockets_are_mapped() {
        let a: SocketAddr = "10.77.0.1:9".parse().unwrap();
        assert_eq!(present(true, a), "[::ffff:10.77.0.1]:9".parse().unwrap());
        assert_eq!(present(false, present(true, a)), a);
    }
}
