//! The types of the queries the stack layer's poll support and TCP_INFO
//! need beyond the engine's core API: the sender's state in Linux's terms,
//! the options in use, and what is outstanding. The queries themselves are
//! `Connection`'s, in `conn.rs`. Must not hold state.

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
