//! Queries the stack layer's poll support and TCP_INFO need beyond the
//! engine's core API: whether an error is pending (without taking it),
//! whether the sending side is finished, and the sender's view of what
//! is outstanding.

use super::{Connection, State};

/// Where the sender stands, in Linux's terms (`tcpi_ca_state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CaState {
    /// Nothing out of the ordinary.
    #[default]
    Open,
    /// Duplicate ACKs or SACKs seen, no recovery yet.
    Disorder,
    /// Fast recovery (SACK/RACK or NewReno).
    Recovery,
    /// cwnd reduced for an ECN-Echo, until the window sent then is
    /// acknowledged.
    Cwr,
    /// Recovering from a retransmission timeout.
    Loss,
}

impl CaState {
    /// Linux's number for the state (TCP_CA_Open 0, Disorder 1, CWR 2,
    /// Recovery 3, Loss 4).
    pub fn linux(self) -> u8 {
        match self {
            CaState::Open => 0,
            CaState::Disorder => 1,
            CaState::Cwr => 2,
            CaState::Recovery => 3,
            CaState::Loss => 4,
        }
    }
}

/// The options a connection agreed on, as TCP_INFO reports them
/// (`tcpi_options`, `tcpi_snd_wscale`, `tcpi_rcv_wscale`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct OptionsInUse {
    /// Timestamps (RFC 7323).
    pub timestamps: bool,
    /// SACK (RFC 2018).
    pub sack: bool,
    /// The shifts applied to windows sent and received, if scaling is on.
    pub window_scale: Option<(u8, u8)>,
    /// ECN (RFC 3168).
    pub ecn: bool,
}

impl Connection {
    /// What the handshake agreed on.
    pub fn options_in_use(&self) -> OptionsInUse {
        OptionsInUse {
            timestamps: self.opts.timestamps,
            sack: self.opts.sack,
            window_scale: self
                .opts
                .window_scaling
                .then_some((self.opts.snd_wscale, self.opts.rcv_wscale)),
            ecn: self.ecn.agreed && self.state.is_synchronized(),
        }
    }
}

/// What is outstanding, in segments, as TCP_INFO reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Outstanding {
    /// Sent and not cumulatively acknowledged (`tcpi_unacked`).
    pub unacked: u32,
    /// Of those, SACKed (`tcpi_sacked`).
    pub sacked: u32,
    /// Deemed lost (awaiting retransmission or retransmitted) and not
    /// SACKed since (`tcpi_lost`).
    pub lost: u32,
    /// Retransmitted and not yet acknowledged (`tcpi_retrans`).
    pub retrans: u32,
    /// The reordering degree seen, in segments; 3 (DupThresh) until some
    /// is (`tcpi_reordering`).
    pub reordering: u32,
}

impl Connection {
    /// Whether an error is pending (without taking it, as poll must not).
    pub fn has_error(&self) -> bool {
        self.error.is_some()
    }

    /// The congestion control algorithm in use.
    pub fn congestion(&self) -> super::CongestionAlgorithm {
        self.cfg.congestion
    }

    /// The application shut down writing (FIN queued or sent).
    pub fn send_closed(&self) -> bool {
        self.fin_queued || self.state == State::Closed
    }

    /// The sender's state (see [`CaState`]).
    pub fn ca_state(&self) -> CaState {
        if self.rto_recover.is_some() {
            CaState::Loss
        } else if self.recover.is_some() {
            CaState::Recovery
        } else if self.ecn.in_cwr(self.snd_una) {
            CaState::Cwr
        } else if self.dupacks > 0 || self.rack.outstanding().0 > 0 {
            CaState::Disorder
        } else {
            CaState::Open
        }
    }

    /// What is outstanding, in segments of the sender MSS.
    pub fn outstanding(&self) -> Outstanding {
        let mss = self.snd_mss.max(1);
        let (sacked, lost, retrans) = self.rack.outstanding();
        Outstanding {
            unacked: self.snd_max.since(self.snd_una).div_ceil(mss),
            sacked,
            lost,
            retrans,
            reordering: self.rack.degree(),
        }
    }

    /// RTTVAR (RFC 6298), once measured.
    pub fn rttvar(&self) -> Option<std::time::Duration> {
        self.rtt.srtt.map(|_| self.rtt.rttvar)
    }
}
