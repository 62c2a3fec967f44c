//! SYN option negotiation: MSS (RFC 9293 section 3.7.1), window scale and
//! timestamps (RFC 7323), SACK-permitted (RFC 2018).
//!
//! Owns the decision of what a connection uses; must not touch the TCB.

use super::TcpConfig;
use crate::wire::tcp::TcpOptions;

/// Bytes the timestamp option takes in every segment (10, padded to 12).
pub const TIMESTAMP_LEN: u16 = 12;
/// The smallest MSS a peer can make us use: Linux's `TCP_MIN_SND_MSS`.
pub const MIN_SND_MSS: u16 = 48;
/// The largest shift RFC 7323 section 2.3 allows.
pub const MAX_WSCALE: u8 = 14;

/// What both ends agreed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Negotiated {
    /// The peer's MSS (or the default), capped by our own.
    pub peer_mss: u16,
    /// Shift applied to windows the peer sends.
    pub snd_wscale: u8,
    /// Shift applied to windows we send.
    pub rcv_wscale: u8,
    /// Both sides sent the window-scale option.
    pub window_scaling: bool,
    pub timestamps: bool,
    pub sack: bool,
}

/// The shift needed for a window of `buf` bytes to fit in 16 bits.
pub fn wscale_for(buf: usize) -> u8 {
    let mut shift = 0;
    while shift < MAX_WSCALE && (buf >> shift) > 0xffff {
        shift += 1;
    }
    shift
}

/// Options for our SYN (when `peer` is None) or SYN-ACK (only what the
/// peer offered, RFC 7323 sections 2.2 and 3.2, RFC 2018 section 2).
pub fn syn_options(cfg: &TcpConfig, peer: Option<&TcpOptions>, tsval: u32) -> TcpOptions {
    let offered = |ours: bool, theirs: fn(&TcpOptions) -> bool| ours && peer.is_none_or(theirs);
    let mut opts = TcpOptions {
        mss: Some(cfg.mss),
        ..TcpOptions::default()
    };
    if offered(cfg.window_scaling, |p| p.window_scale.is_some()) {
        opts.window_scale = Some(wscale_for(cfg.recv_buf.max(cfg.recv_buf_max)));
    }
    if offered(cfg.sack, |p| p.sack_permitted) {
        opts.sack_permitted = true;
    }
    if offered(cfg.timestamps, |p| p.timestamps.is_some()) {
        let tsecr = peer.and_then(|p| p.timestamps).map_or(0, |t| t.0);
        opts.timestamps = Some((tsval, tsecr));
    }
    opts
}

/// Combines what we sent with what the peer's SYN (or SYN-ACK) carried.
pub fn negotiate(cfg: &TcpConfig, peer: &TcpOptions) -> Negotiated {
    let default_mss = if cfg.ipv6 { 1220 } else { 536 };
    // As Linux: an MSS of 0 counts as none (tcp_parse_options), and a tiny
    // one is raised to TCP_MIN_SND_MSS, so a peer cannot make us send
    // segments of a byte or two (CVE-2019-11479).
    let peer_mss = peer
        .mss
        .filter(|&m| m != 0)
        .unwrap_or(default_mss)
        .clamp(MIN_SND_MSS, cfg.mss.max(MIN_SND_MSS));
    let (snd_wscale, rcv_wscale, window_scaling) = match peer.window_scale {
        // Scaled for the largest the buffer may grow to: the shift is fixed
        // at the handshake (RFC 7323 section 2.2).
        Some(ws) if cfg.window_scaling => (
            ws.min(MAX_WSCALE),
            wscale_for(cfg.recv_buf.max(cfg.recv_buf_max)),
            true,
        ),
        _ => (0, 0, false),
    };
    Negotiated {
        peer_mss,
        snd_wscale,
        rcv_wscale,
        window_scaling,
        timestamps: cfg.timestamps && peer.timestamps.is_some(),
        sack: cfg.sack && peer.sack_permitted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mss_defaults_to_536_when_peer_announces_none() {
        let cfg = TcpConfig::default();
        let n = negotiate(&cfg, &TcpOptions::default());
        assert_eq!(n.peer_mss, 536);
        assert_eq!((n.snd_wscale, n.rcv_wscale), (0, 0));
        assert!(!n.timestamps && !n.sack);
    }

    #[test]
    fn an_mss_of_zero_counts_as_none_and_a_tiny_one_is_raised_to_48_as_linux() {
        let cfg = TcpConfig::default();
        let with = |mss| TcpOptions {
            mss: Some(mss),
            ..TcpOptions::default()
        };
        assert_eq!(negotiate(&cfg, &with(0)).peer_mss, 536);
        assert_eq!(negotiate(&cfg, &with(1)).peer_mss, MIN_SND_MSS);
        assert_eq!(negotiate(&cfg, &with(40)).peer_mss, 48);
        assert_eq!(negotiate(&cfg, &with(49)).peer_mss, 49);
    }

    #[test]
    fn window_scale_is_clamped_to_14() {
        let cfg = TcpConfig::default();
        let peer = TcpOptions {
            window_scale: Some(20),
            mss: Some(9000),
            ..TcpOptions::default()
        };
        let n = negotiate(&cfg, &peer);
        assert_eq!(n.snd_wscale, 14);
        assert_eq!(n.peer_mss, 1460);
        assert_eq!(n.rcv_wscale, 7, "room for the 4 MiB maximum");
    }

    #[test]
    fn syn_ack_offers_only_what_the_syn_offered() {
        let cfg = TcpConfig::default();
        let peer = TcpOptions {
            sack_permitted: true,
            ..TcpOptions::default()
        };
        let o = syn_options(&cfg, Some(&peer), 7);
        assert!(o.sack_permitted);
        assert_eq!(o.window_scale, None);
        assert_eq!(o.timestamps, None);
        let syn = syn_options(&cfg, None, 7);
        assert_eq!(syn.timestamps, Some((7, 0)));
        assert!(syn.window_scale.is_some());
    }

    #[test]
    fn wscale_is_the_smallest_shift_that_fits() {
        assert_eq!(wscale_for(65_535), 0);
        assert_eq!(wscale_for(65_536), 1);
        assert_eq!(wscale_for(4 << 20), 7);
        assert_eq!(wscale_for(usize::MAX), 14);
    }
}
