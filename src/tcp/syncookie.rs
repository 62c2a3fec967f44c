//! SYN cookies (RFC 4987 section 3.6): when a listener's SYN queue is full,
//! the SYN-ACK's sequence number encodes what the connection needs, so no
//! state is kept until the client's ACK proves the address is real.
//!
//! Layout of the 32-bit cookie (this stack's own):
//!
//! ```text
//!  31      24 23                      3 2   0
//! +----------+-------------------------+-----+
//! | t mod 256|  keyed hash (21 bits)   | mss |
//! +----------+-------------------------+-----+
//! ```
//!
//! `t` counts 64-second periods; a cookie is valid for the current and the
//! previous period. The hash covers the secret, the 4-tuple, the client's
//! ISN, `t` and the MSS index, so neither can be changed without knowing
//! the secret. When the client sent timestamps, the other options survive
//! too, as Linux keeps them: the low 5 bits of our SYN-ACK's TSval carry
//! the client's window scale (4 bits, 15 = none) and SACK-permitted (1
//! bit), and come back in the ACK's TSecr. Without timestamps only the MSS
//! survives.
//!
//! Owns the cookie secret and format, the SYN-ACK that carries a cookie,
//! and the connection rebuilt from one. Must not touch listener state
//! (which listener sent cookies, its queues: the core's).

use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::SocketAddr;
use std::time::Duration;

use super::options::negotiate;
use super::seq::Seq;
use super::{Connection, State, TcpConfig};
use crate::time::Instant;
use crate::wire::tcp::{TcpFlags, TcpOptions, TcpRepr};

/// The MSS values a cookie can carry (3 bits), as Linux's table does:
/// the largest not above the client's is chosen.
const MSS_TABLE: [u16; 8] = [536, 1200, 1220, 1360, 1440, 1452, 1460, 8960];

/// How long one value of `t` lasts.
const PERIOD: Duration = Duration::from_secs(64);

/// Makes and checks cookies with one secret.
#[derive(Clone, Debug)]
pub struct SynCookies {
    secret: u128,
}

fn period(now: Instant) -> u32 {
    (now.total_micros() / PERIOD.as_micros() as u64) as u32
}

impl SynCookies {
    /// Cookies keyed by `secret` (seed it from the OS; fixed in simulations).
    pub fn new(secret: u128) -> SynCookies {
        SynCookies { secret }
    }

    fn hash(
        &self,
        local: SocketAddr,
        remote: SocketAddr,
        client_isn: u32,
        t: u32,
        mss: u32,
    ) -> u32 {
        let mut h = DefaultHasher::new();
        self.secret.hash(&mut h);
        local.hash(&mut h);
        remote.hash(&mut h);
        client_isn.hash(&mut h);
        t.hash(&mut h);
        mss.hash(&mut h);
        (h.finish() as u32) & 0x00ff_fff8
    }

    /// The cookie (our ISN) for a SYN from `remote` with `client_isn` and an
    /// announced MSS (`None`: the default 536).
    pub fn make(
        &self,
        local: SocketAddr,
        remote: SocketAddr,
        client_isn: u32,
        peer_mss: Option<u16>,
        now: Instant,
    ) -> u32 {
        let want = peer_mss.unwrap_or(536);
        let idx = MSS_TABLE.iter().rposition(|&m| m <= want).unwrap_or(0) as u32;
        let t = period(now);
        ((t & 0xff) << 24) | self.hash(local, remote, client_isn, t, idx) | idx
    }

    /// Checks the cookie an ACK acknowledges (`ack - 1`) for the ACK's
    /// sender; the MSS it carries if it is genuine and fresh.
    pub fn check(
        &self,
        local: SocketAddr,
        remote: SocketAddr,
        ack_seg: &TcpRepr,
        now: Instant,
    ) -> Option<u16> {
        let cookie = ack_seg.ack.wrapping_sub(1);
        let client_isn = ack_seg.seq.wrapping_sub(1);
        let idx = cookie & 7;
        let now_t = period(now);
        [now_t, now_t.wrapping_sub(1)].into_iter().find_map(|t| {
            let expected = ((t & 0xff) << 24) | self.hash(local, remote, client_isn, t, idx) | idx;
            (expected == cookie).then_some(MSS_TABLE[idx as usize])
        })
    }

    /// The stateless SYN-ACK that answers `syn` when the listener's SYN
    /// queue is full (RFC 4987 section 3.6): its sequence number is the
    /// cookie, its options those of [`cookie_syn_ack_options`], its window
    /// the connection's receive buffer (unscaled, as in any SYN-ACK).
    /// `cfg` is the configuration the connection will have.
    pub fn syn_ack(
        &self,
        cfg: &TcpConfig,
        local: SocketAddr,
        remote: SocketAddr,
        syn: &TcpRepr,
        now: Instant,
    ) -> TcpRepr {
        let cookie = self.make(local, remote, syn.seq, syn.options.mss, now);
        TcpRepr {
            src_port: local.port(),
            dst_port: remote.port(),
            seq: cookie,
            ack: syn.seq.wrapping_add(1),
            flags: TcpFlags::SYN | TcpFlags::ACK,
            window: cfg.recv_buf.min(0xffff) as u16,
            urgent: 0,
            options: cookie_syn_ack_options(cfg, syn, cookie, now),
        }
    }
}

/// Bits of the TSval that carry options (see the module doc).
const TS_OPTION_BITS: u32 = 0x1f;
/// Window-scale field value meaning "the client sent none".
const NO_WSCALE: u32 = 15;

/// The SYN-ACK options for a cookie answer to `syn`, with `iss` the cookie:
/// MSS always; with timestamps, also window scale and SACK-permitted as
/// negotiated, their client-side values folded into the TSval.
pub fn cookie_syn_ack_options(
    cfg: &TcpConfig,
    syn: &TcpRepr,
    iss: u32,
    now: Instant,
) -> TcpOptions {
    let mut options = TcpOptions {
        mss: Some(cfg.mss),
        ..TcpOptions::default()
    };
    let Some((peer_tsval, _)) = syn.options.timestamps.filter(|_| cfg.timestamps) else {
        return options;
    };
    let n = negotiate(cfg, &syn.options);
    let ws = syn
        .options
        .window_scale
        .filter(|_| n.window_scaling)
        .map_or(NO_WSCALE, |w| u32::from(w.min(14)));
    let bits = (ws << 1) | u32::from(n.sack);
    // The connection's own timestamp clock (`Connection::tsval`) moved back
    // 32 ms before the bits replace its low 5: the echo is never in the
    // future, and the first RTT sample is at most 63 ms too long.
    let clock = (now.total_millis() as u32)
        .wrapping_add(iss)
        .wrapping_sub(32);
    let tsval = (clock & !TS_OPTION_BITS) | bits;
    options.timestamps = Some((tsval, peer_tsval));
    options.window_scale = n.window_scaling.then_some(n.rcv_wscale);
    options.sack_permitted = n.sack;
    options
}

/// The client's SYN options as a cookie ACK's TSecr brings them back.
fn options_from_ack(mss: u16, ack_seg: &TcpRepr) -> TcpOptions {
    let mut options = TcpOptions {
        mss: Some(mss),
        ..TcpOptions::default()
    };
    if let Some((tsval, tsecr)) = ack_seg.options.timestamps {
        let ws = (tsecr >> 1) & 0xf;
        options.window_scale = (ws != NO_WSCALE).then_some(ws.min(14) as u8);
        options.sack_permitted = tsecr & 1 == 1;
        options.timestamps = Some((tsval, 0));
    }
    options
}

impl Connection {
    /// A connection rebuilt from a valid cookie's ACK: as if the client's
    /// SYN (sequence `ack_seg.seq - 1`, with the options the cookie kept)
    /// had been received and our
    /// SYN-ACK (sequence `iss`, the cookie) sent. Feed `ack_seg` to
    /// [`Connection::on_segment`] next; it completes the handshake.
    pub fn accept_cookie(
        cfg: TcpConfig,
        local: SocketAddr,
        remote: SocketAddr,
        ack_seg: &TcpRepr,
        mss: u16,
        now: Instant,
    ) -> Connection {
        let syn = TcpRepr {
            src_port: remote.port(),
            dst_port: local.port(),
            seq: ack_seg.seq.wrapping_sub(1),
            ack: 0,
            flags: TcpFlags::SYN,
            window: ack_seg.window,
            urgent: 0,
            options: options_from_ack(mss, ack_seg),
        };
        let iss = ack_seg.ack.wrapping_sub(1);
        let mut c = Connection::accept(cfg, local, remote, &syn, iss, now);
        debug_assert_eq!(c.state, State::SynReceived);
        c.snd_nxt = Seq(iss) + 1u32;
        c.snd_max = c.snd_nxt;
        // The window the cookie SYN-ACK advertised (as `emit_syn` would).
        let window = c.recv_buf.window().min(0xffff) as u32;
        // Our SYN-ACK's timestamp is already echoed; RTT sampling starts
        // with the next one.
        c.rcv_adv = c.rcv_adv.max(c.rcv_nxt + window);
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs() -> (SocketAddr, SocketAddr) {
        (
            "10.77.0.2:80".parse().unwrap(),
            "10.77.0.1:40000".parse().unwrap(),
        )
    }

    fn ack_for(cookie: u32, client_isn: u32) -> TcpRepr {
        TcpRepr {
            src_port: 40000,
            dst_port: 80,
            seq: client_isn.wrapping_add(1),
            ack: cookie.wrapping_add(1),
            flags: TcpFlags::ACK,
            window: 1000,
            ..TcpRepr::default()
        }
    }

    #[test]
    fn cookie_round_trips_the_mss_within_two_periods() {
        let c = SynCookies::new(7);
        let (l, r) = addrs();
        let t0 = Instant::from_millis(10_000);
        let cookie = c.make(l, r, 1234, Some(1460), t0);
        assert_eq!(c.check(l, r, &ack_for(cookie, 1234), t0), Some(1460));
        assert_eq!(
            c.check(l, r, &ack_for(cookie, 1234), t0 + PERIOD),
            Some(1460)
        );
        assert_eq!(
            c.check(l, r, &ack_for(cookie, 1234), t0 + PERIOD * 2),
            None,
            "expired"
        );
        // The MSS rounds down to the table.
        let cookie = c.make(l, r, 9, Some(1400), t0);
        assert_eq!(c.check(l, r, &ack_for(cookie, 9), t0), Some(1360));
    }

    #[test]
    fn cookie_is_bound_to_tuple_isn_and_secret() {
        let c = SynCookies::new(7);
        let (l, r) = addrs();
        let now = Instant::ZERO;
        let cookie = c.make(l, r, 1234, Some(1460), now);
        let other: SocketAddr = "10.77.0.1:40001".parse().unwrap();
        assert_eq!(c.check(l, other, &ack_for(cookie, 1234), now), None);
        assert_eq!(c.check(l, r, &ack_for(cookie, 1235), now), None);
        assert_eq!(
            SynCookies::new(8).check(l, r, &ack_for(cookie, 1234), now),
            None
        );
        assert_eq!(c.check(l, r, &ack_for(cookie ^ 0x100, 1234), now), None);
    }

    #[test]
    fn connection_rebuilt_from_a_cookie_is_established_and_carries_data() {
        let c = SynCookies::new(1);
        let (l, r) = addrs();
        let now = Instant::ZERO;
        let cookie = c.make(l, r, 5000, Some(1460), now);
        let ack = ack_for(cookie, 5000);
        let mss = c.check(l, r, &ack, now).unwrap();
        let mut conn = Connection::accept_cookie(TcpConfig::default(), l, r, &ack, mss, now);
        conn.on_segment(now, &ack, &[]);
        assert_eq!(conn.state(), State::Established);
        let data = TcpRepr {
            flags: TcpFlags::ACK | TcpFlags::PSH,
            ..ack
        };
        conn.on_segment(now, &data, b"hello");
        let mut buf = [0u8; 8];
        assert_eq!(conn.recv(&mut buf).unwrap(), 5);
        assert_eq!(&buf[..5], b"hello");
        let mut sent = Vec::new();
        conn.poll_transmit(now, |seg, _| sent.push(*seg));
        assert!(
            sent.iter().all(|s| !s.flags.contains(TcpFlags::SYN)),
            "no SYN-ACK resent"
        );
    }

    #[test]
    fn syn_ack_carries_the_cookie_and_acknowledges_the_syn() {
        let c = SynCookies::new(4);
        let (l, r) = addrs();
        let now = Instant::from_millis(3000);
        let cfg = TcpConfig {
            recv_buf: 1 << 20,
            ..TcpConfig::default()
        };
        let syn = TcpRepr {
            src_port: 40000,
            dst_port: 80,
            seq: 4321,
            flags: TcpFlags::SYN,
            window: 64240,
            options: TcpOptions {
                mss: Some(1460),
                ..TcpOptions::default()
            },
            ..TcpRepr::default()
        };
        let reply = c.syn_ack(&cfg, l, r, &syn, now);
        assert_eq!((reply.src_port, reply.dst_port), (80, 40000));
        assert_eq!(reply.flags, TcpFlags::SYN | TcpFlags::ACK);
        assert_eq!(reply.ack, 4322);
        assert_eq!(reply.window, 0xffff, "a SYN-ACK's window is unscaled");
        assert_eq!(reply.seq, c.make(l, r, 4321, Some(1460), now));
        assert_eq!(
            reply.options,
            cookie_syn_ack_options(&cfg, &syn, reply.seq, now)
        );
        assert_eq!(c.check(l, r, &ack_for(reply.seq, 4321), now), Some(1460));
    }

    #[test]
    fn cookie_keeps_window_scale_sack_and_timestamps_through_tsecr() {
        let c = SynCookies::new(3);
        let (l, r) = addrs();
        let now = Instant::from_millis(5000);
        let cfg = TcpConfig::default();
        let syn = TcpRepr {
            src_port: 40000,
            dst_port: 80,
            seq: 777,
            flags: TcpFlags::SYN,
            window: 64240,
            options: TcpOptions {
                mss: Some(1460),
                window_scale: Some(7),
                sack_permitted: true,
                timestamps: Some((123_456, 0)),
                ..TcpOptions::default()
            },
            ..TcpRepr::default()
        };
        let cookie = c.make(l, r, syn.seq, syn.options.mss, now);
        let synack = cookie_syn_ack_options(&cfg, &syn, cookie, now);
        let (our_tsval, echoed) = synack.timestamps.unwrap();
        assert_eq!(echoed, 123_456);
        assert!(synack.sack_permitted && synack.window_scale.is_some());
        // The client's ACK echoes our TSval.
        let ack = TcpRepr {
            options: TcpOptions {
                timestamps: Some((123_460, our_tsval)),
                ..TcpOptions::default()
            },
            ..ack_for(cookie, 777)
        };
        let mss = c.check(l, r, &ack, now).unwrap();
        let mut conn = Connection::accept_cookie(cfg, l, r, &ack, mss, now);
        conn.on_segment(now, &ack, &[]);
        assert_eq!(conn.state(), State::Established);
        assert!(conn.opts.timestamps && conn.opts.sack && conn.opts.window_scaling);
        assert_eq!(conn.opts.snd_wscale, 7);
        assert_eq!(conn.opts.rcv_wscale, synack.window_scale.unwrap());
        // Without timestamps from the client, only the MSS survives.
        let plain = TcpRepr {
            options: TcpOptions {
                mss: Some(1460),
                window_scale: Some(7),
                sack_permitted: true,
                ..TcpOptions::default()
            },
            ..syn
        };
        let o = cookie_syn_ack_options(&TcpConfig::default(), &plain, cookie, now);
        assert_eq!(
            o,
            TcpOptions {
                mss: Some(TcpConfig::default().mss),
                ..TcpOptions::default()
            }
        );
    }
}
