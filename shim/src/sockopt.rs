//! getsockopt/setsockopt on in-process virtual sockets: how option values
//! are encoded, and the options every protocol answers alike (SO_TYPE,
//! timeouts, SO_LINGER, SO_REUSEPORT...). A protocol's own options are its
//! [`crate::ops::Proto`]'s (`ops/tcp.rs`, `ops/udp.rs`), asked first.
//!
//! Unknown options: getsockopt fails with `ENOPROTOOPT`, as Linux does for
//! an option it does not know; setsockopt accepts them and logs at debug,
//! so programs that tune options we do not model (IP_TOS, SO_PRIORITY...)
//! keep working.

use std::time::Duration;

use ustack_core::tcp::Keepalive;

use crate::sock::{Res, Stored, VSock, errno_of};

/// Largest SO_RCVBUF/SO_SNDBUF honoured (bytes as set; reported doubled).
pub(crate) const MAX_BUF: usize = 16 << 20;
/// Smallest, as Linux's SOCK_MIN_RCVBUF halved.
pub(crate) const MIN_BUF: usize = 1152;

pub use crate::sock::Value;

/// Reads an int option value (`EINVAL` if shorter than an int; Linux
/// accepts a longer buffer).
pub fn int_arg(bytes: &[u8]) -> Res<i32> {
    let b: [u8; 4] = bytes
        .get(..4)
        .ok_or(libc::EINVAL)?
        .try_into()
        .map_err(|_| libc::EINVAL)?;
    Ok(i32::from_ne_bytes(b))
}

/// For a protocol's `set_option`: the int value of an option it owns, or
/// `None` for one it does not (`set` then handles it alike for every
/// protocol); `Some(Err(EINVAL))` when the value is shorter than an int.
/// Each protocol owns SO_REUSEADDR, SO_RCVBUF, SO_SNDBUF, IPV6_V6ONLY on an
/// AF_INET6 socket and the IPPROTO_TCP level (UDP to refuse it), and
/// `extra` at SOL_SOCKET.
pub(crate) fn owned_int(
    s: &VSock,
    level: i32,
    name: i32,
    val: &[u8],
    extra: i32,
) -> Option<Res<i32>> {
    let owned = match level {
        libc::SOL_SOCKET => {
            matches!(name, libc::SO_REUSEADDR | libc::SO_RCVBUF | libc::SO_SNDBUF) || name == extra
        }
        libc::IPPROTO_TCP => true,
        libc::IPPROTO_IPV6 => name == libc::IPV6_V6ONLY && s.v6,
        _ => false,
    };
    owned.then(|| int_arg(val))
}

/// Reads a `struct timeval` timeout; zero is none.
pub fn timeval_arg(bytes: &[u8]) -> Res<Option<Duration>> {
    if bytes.len() < size_of::<libc::timeval>() {
        return Err(libc::EINVAL);
    }
    let sec = i64::from_ne_bytes(bytes[..8].try_into().map_err(|_| libc::EINVAL)?);
    let usec = i64::from_ne_bytes(bytes[8..16].try_into().map_err(|_| libc::EINVAL)?);
    if !(0..1_000_000).contains(&usec) {
        return Err(libc::EDOM);
    }
    if sec < 0 {
        return Ok(None);
    }
    let d = Duration::from_secs(sec as u64) + Duration::from_micros(usec as u64);
    Ok((!d.is_zero()).then_some(d))
}

pub fn timeval_bytes(t: Option<Duration>) -> Vec<u8> {
    let t = t.unwrap_or_default();
    let mut b = (t.as_secs() as i64).to_ne_bytes().to_vec();
    b.extend_from_slice(&i64::from(t.subsec_micros()).to_ne_bytes());
    b
}

/// A boolean option's value.
pub(crate) fn int(b: bool) -> Value {
    Value::Int(b.into())
}

/// The keepalive parameters as stored (TCP_KEEPIDLE and friends).
pub(crate) fn keepalive(st: &Stored) -> Keepalive {
    Keepalive {
        idle: Duration::from_secs(u64::from(st.keep_idle)),
        interval: Duration::from_secs(u64::from(st.keep_intvl)),
        count: st.keep_cnt,
    }
}

/// Linux's SO_MEMINFO (asm-generic/socket.h).
const SO_MEMINFO: i32 = 55;

/// getsockopt(2): the protocol's own options first (`Proto::get_option`),
/// then those every socket answers alike.
pub fn get(s: &VSock, level: i32, name: i32) -> Res<Value> {
    if let Some(v) = s.proto.get_option(s, level, name) {
        return v;
    }
    match (level, name) {
        (libc::SOL_SOCKET, libc::SO_TYPE) => Ok(Value::Int(s.sock_type())),
        (libc::SOL_SOCKET, libc::SO_DOMAIN) => Ok(Value::Int(s.family())),
        (libc::SOL_SOCKET, libc::SO_PROTOCOL) => Ok(Value::Int(s.proto.protocol())),
        (libc::SOL_SOCKET, libc::SO_ERROR) => Ok(Value::Int(
            s.proto.take_error(s)?.map_or(0, |e| errno_of(&e)),
        )),
        // Not bound to a device: Linux answers an empty name (sshd asks).
        (libc::SOL_SOCKET, libc::SO_BINDTODEVICE) => Ok(Value::Bytes(Vec::new())),
        // Options of another protocol read as off.
        (libc::SOL_SOCKET, libc::SO_ACCEPTCONN | libc::SO_BROADCAST | libc::SO_KEEPALIVE) => {
            Ok(int(false))
        }
        (libc::SOL_SOCKET, libc::SO_REUSEPORT) => Ok(int(s.stored().reuse_port)),
        (libc::SOL_SOCKET, SO_MEMINFO) => {
            // Linux's sk_meminfo: rmem_alloc, rcvbuf, wmem_alloc, sndbuf,
            // fwd_alloc, wmem_queued, optmem, backlog, drops. Only the
            // buffer sizes are known here; the rest reads zero.
            let mut m = [0u32; 9];
            for (slot, name) in [(1, libc::SO_RCVBUF), (3, libc::SO_SNDBUF)] {
                if let Value::Int(v) = get(s, libc::SOL_SOCKET, name)? {
                    m[slot] = v as u32;
                }
            }
            Ok(Value::Bytes(
                m.iter().flat_map(|v| v.to_ne_bytes()).collect(),
            ))
        }
        (libc::SOL_SOCKET, libc::SO_RCVTIMEO) => Ok(Value::Bytes(timeval_bytes(s.timeout(false)))),
        (libc::SOL_SOCKET, libc::SO_SNDTIMEO) => Ok(Value::Bytes(timeval_bytes(s.timeout(true)))),
        (libc::SOL_SOCKET, libc::SO_LINGER) => {
            let (on, secs) = s.stored().linger;
            let mut b = i32::from(on).to_ne_bytes().to_vec();
            b.extend_from_slice(&secs.to_ne_bytes());
            Ok(Value::Bytes(b))
        }
        _ => {
            log::debug!("getsockopt level {level} option {name}: not supported (ENOPROTOOPT)");
            Err(libc::ENOPROTOOPT)
        }
    }
}

/// setsockopt(2): what every socket stores alike (timeouts, SO_LINGER,
/// SO_REUSEPORT), then the protocol's own options (`Proto::set_option`;
/// SO_LINGER too, after it is stored).
pub fn set(s: &VSock, level: i32, name: i32, val: &[u8]) -> Res<()> {
    match (level, name) {
        (libc::SOL_SOCKET, libc::SO_RCVTIMEO | libc::SO_SNDTIMEO) => {
            s.set_timeout(name == libc::SO_SNDTIMEO, timeval_arg(val)?);
            return Ok(());
        }
        (libc::SOL_SOCKET, libc::SO_LINGER) => {
            if val.len() < 8 {
                return Err(libc::EINVAL);
            }
            let on = int_arg(val)? != 0;
            let secs = int_arg(&val[4..])?;
            s.stored().linger = (on, secs);
        }
        (libc::SOL_SOCKET, libc::SO_REUSEPORT) => {
            s.stored().reuse_port = int_arg(val)? != 0;
            return Ok(());
        }
        _ => {}
    }
    if let Some(r) = s.proto.set_option(s, level, name, val) {
        return r;
    }
    if (level, name) == (libc::SOL_SOCKET, libc::SO_LINGER) {
        return Ok(());
    }
    let v = int_arg(val)?;
    log::debug!("setsockopt level {level} option {name} = {v}: accepted and ignored");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_arguments_need_four_bytes() {
        assert_eq!(int_arg(&7i32.to_ne_bytes()), Ok(7));
        assert_eq!(int_arg(&[1, 0, 0]), Err(libc::EINVAL));
        assert_eq!(int_arg(&[1, 0, 0, 0, 9, 9, 9, 9]), Ok(1), "longer is fine");
    }

    #[test]
    fn timeval_round_trips_and_zero_means_none() {
        let t = Some(Duration::from_millis(1500));
        assert_eq!(timeval_arg(&timeval_bytes(t)), Ok(t));
        assert_eq!(timeval_arg(&timeval_bytes(None)), Ok(None));
        assert_eq!(timeval_arg(&[0; 15]), Err(libc::EINVAL));
        let mut bad = timeval_bytes(t);
        bad[8..].copy_from_slice(&2_000_000i64.to_ne_bytes());
        assert_eq!(timeval_arg(&bad), Err(libc::EDOM));
    }

    #[test]
    fn values_encode_as_native_ints() {
        assert_eq!(Value::Int(1).bytes(), 1i32.to_ne_bytes().to_vec());
    }
}
