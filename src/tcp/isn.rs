//! Initial sequence numbers (RFC 6528) and the reply to a segment that
//! matches no connection (RFC 9293 section 3.10.7.1).
//!
//! Owns the ISN secret. Must not touch connection state.

use crate::time::Instant;
use crate::wire::tcp::{TcpFlags, TcpRepr};
use std::hash::{BuildHasher, DefaultHasher, Hash, Hasher, RandomState};
use std::net::SocketAddr;

/// ISN = M + F(localip, localport, remoteip, remoteport, secretkey), where M
/// is a 4-microsecond timer and F a keyed hash (RFC 6528 section 3): SipHash
/// over the secret followed by the 4-tuple.
#[derive(Clone, Debug)]
pub struct IsnGenerator {
    secret: u128,
}

impl Default for IsnGenerator {
    fn default() -> IsnGenerator {
        IsnGenerator::new()
    }
}

impl IsnGenerator {
    /// A generator with a secret from the OS (std's random hash keys).
    pub fn new() -> IsnGenerator {
        let k = RandomState::new();
        let lo = k.hash_one(0u8);
        let hi = k.hash_one(1u8);
        IsnGenerator::with_secret(u128::from(hi) << 64 | u128::from(lo))
    }

    /// A generator with a given secret, so simulations replay exactly.
    pub fn with_secret(secret: u128) -> IsnGenerator {
        IsnGenerator { secret }
    }

    /// The ISN for a connection between `local` and `remote` starting at `now`:
    /// the same 4-tuple gets numbers that advance with time (one per 4 us), and
    /// different 4-tuples get unrelated ones.
    pub fn isn(&self, local: SocketAddr, remote: SocketAddr, now: Instant) -> u32 {
        let mut h = DefaultHasher::new();
        self.secret.hash(&mut h);
        local.hash(&mut h);
        remote.hash(&mut h);
        let f = h.finish() as u32;
        let m = (now.total_micros() / 4) as u32;
        m.wrapping_add(f)
    }
}

/// The RST to send for `seg` (carrying `payload_len` bytes) when no
/// connection matches it, or None if none is due (never answer a RST).
///
/// The reply follows RFC 9293 section 3.10.7.1: a segment with ACK gets
/// `<SEQ=SEG.ACK><CTL=RST>`, one without gets
/// `<SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>`.
///
/// ```
/// use ustack::tcp::{TcpFlags, TcpRepr, rst_for_unmatched};
///
/// // A SYN to a closed port is refused.
/// let syn = TcpRepr { src_port: 40000, dst_port: 81, seq: 1000, flags: TcpFlags::SYN, ..TcpRepr::default() };
/// let rst = rst_for_unmatched(&syn, 0).unwrap();
/// assert_eq!((rst.src_port, rst.dst_port), (81, 40000));
/// assert_eq!((rst.seq, rst.ack, rst.flags), (0, 1001, TcpFlags::RST | TcpFlags::ACK));
///
/// // A stray ACK gets a bare RST at the sequence number it acknowledged.
/// let ack = TcpRepr { seq: 5, ack: 777, flags: TcpFlags::ACK, ..syn };
/// let rst = rst_for_unmatched(&ack, 10).unwrap();
/// assert_eq!((rst.seq, rst.flags), (777, TcpFlags::RST));
///
/// // A RST is never answered.
/// assert_eq!(rst_for_unmatched(&rst, 0), None);
/// ```
pub fn rst_for_unmatched(seg: &TcpRepr, payload_len: usize) -> Option<TcpRepr> {
    if seg.flags.contains(TcpFlags::RST) {
        return None;
    }
    let mut rst = TcpRepr {
        src_port: seg.dst_port,
        dst_port: seg.src_port,
        ..TcpRepr::default()
    };
    if seg.flags.contains(TcpFlags::ACK) {
        rst.seq = seg.ack;
        rst.flags = TcpFlags::RST;
    } else {
        let len = payload_len as u32
            + u32::from(seg.flags.contains(TcpFlags::SYN))
            + u32::from(seg.flags.contains(TcpFlags::FIN));
        rst.seq = 0;
        rst.ack = seg.seq.wrapping_add(len);
        rst.flags = TcpFlags::RST | TcpFlags::ACK;
    }
    Some(rst)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn isn_advances_with_the_4us_clock_and_differs_by_tuple() {
        let g = IsnGenerator::new();
        let (a, b, c) = (
            addr("10.0.0.1:1000"),
            addr("10.0.0.2:80"),
            addr("10.0.0.2:81"),
        );
        let t0 = g.isn(a, b, Instant::ZERO);
        let t1 = g.isn(a, b, Instant::from_micros(400));
        assert_eq!(t1.wrapping_sub(t0), 100);
        assert_ne!(g.isn(a, c, Instant::ZERO), t0);
    }

    #[test]
    fn rst_for_unmatched_syn_acks_the_syn() {
        let syn = TcpRepr {
            src_port: 5,
            dst_port: 80,
            seq: 100,
            flags: TcpFlags::SYN,
            ..TcpRepr::default()
        };
        let rst = rst_for_unmatched(&syn, 3).unwrap();
        assert_eq!((rst.src_port, rst.dst_port), (80, 5));
        assert_eq!((rst.seq, rst.ack), (0, 104));
        assert_eq!(rst.flags, TcpFlags::RST | TcpFlags::ACK);
    }

    #[test]
    fn rst_for_unmatched_ack_uses_its_ack_as_seq_and_never_answers_rst() {
        let ack = TcpRepr {
            seq: 100,
            ack: 555,
            flags: TcpFlags::ACK,
            ..TcpRepr::default()
        };
        let rst = rst_for_unmatched(&ack, 0).unwrap();
        assert_eq!((rst.seq, rst.flags), (555, TcpFlags::RST));
        let incoming_rst = TcpRepr {
            flags: TcpFlags::RST,
            ..TcpRepr::default()
        };
        assert_eq!(rst_for_unmatched(&incoming_rst, 0), None);
    }
}
