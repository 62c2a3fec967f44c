//! Explicit Congestion Notification for one connection (RFC 3168 section
//! 6.1): the handshake's agreement, the receiver's echo and the sender's
//! response.
//!
//! Owns whether ECN was agreed, the ECN-Echo the receiver repeats until
//! the peer's CWR, the CWR the sender owes after a reduction, and the rule
//! of one reduction per window. Must not touch cwnd (`on_echo` says whether
//! to reduce; the connection asks its congestion controller) or the IP
//! header's ECN field (the stack sets ECT(0) where
//! `Connection::poll_transmit_ect` says, and reports CE marks).

use super::Ecn;
use super::seq::Seq;
use crate::wire::tcp::TcpFlags;

/// One connection's ECN state.
#[derive(Clone, Copy, Debug, Default)]
pub struct EcnState {
    /// Both ends agreed on ECN in the handshake.
    pub agreed: bool,
    /// Receiver: a CE mark arrived; every segment carries ECE until the
    /// peer's CWR.
    echo: bool,
    /// Sender: cwnd was reduced for an ECE; the next new data carries CWR.
    cwr_pending: bool,
    /// snd_max at the last reduction, for loss or ECE: at most one per
    /// window.
    high: Option<Seq>,
    /// snd_max at the last ECE reduction alone: Linux's CWR state lasts
    /// until it is acknowledged.
    cwr_high: Option<Seq>,
}

impl EcnState {
    /// A passive open: agreed if allowed and the SYN is an ECN-setup SYN,
    /// carrying both ECE and CWR (RFC 3168 6.1.1).
    pub fn on_syn(&mut self, mode: Ecn, flags: TcpFlags) {
        self.agreed = mode != Ecn::Off && flags.contains(TcpFlags::ECE | TcpFlags::CWR);
    }

    /// The flags of our SYN: an ECN-setup SYN for the first only, so a SYN
    /// retransmitted goes without, in case ECN-setup SYNs are what the path
    /// drops (RFC 3168 6.1.1.1; Linux's tcp_ecn_fallback).
    pub fn syn_flags(&mut self, mode: Ecn, first: bool) -> TcpFlags {
        self.agreed = first && mode == Ecn::On;
        if self.agreed {
            TcpFlags::ECE | TcpFlags::CWR
        } else {
            TcpFlags::NONE
        }
    }

    /// The flags of our SYN-ACK: ECE accepts the peer's ECN-setup SYN
    /// (RFC 3168 6.1.1).
    pub fn syn_ack_flags(&self) -> TcpFlags {
        if self.agreed {
            TcpFlags::ECE
        } else {
            TcpFlags::NONE
        }
    }

    /// The SYN-ACK to our SYN: ECN only if our ECN-setup SYN drew an
    /// ECN-setup SYN-ACK, ECE without CWR (RFC 3168 6.1.1).
    pub fn on_syn_ack(&mut self, flags: TcpFlags) {
        self.agreed &= flags.contains(TcpFlags::ECE) && !flags.contains(TcpFlags::CWR);
    }

    /// Data arrived CE-marked: if ECN was agreed, echo it on every segment
    /// until the peer's CWR, starting with an ACK now (RFC 3168 6.1.3);
    /// returns whether that ACK is due.
    pub fn on_ce(&mut self) -> bool {
        if self.agreed {
            self.echo = true;
        }
        self.agreed
    }

    /// An acceptable segment: its CWR says the peer reduced for our ECE,
    /// so the echo stops (RFC 3168 6.1.3).
    pub fn on_segment(&mut self, flags: TcpFlags) {
        if self.agreed && flags.contains(TcpFlags::CWR) {
            self.echo = false;
        }
    }

    /// The flags every segment we send carries: ECE while echoing.
    pub fn header_flags(&self) -> TcpFlags {
        if self.echo {
            TcpFlags::ECE
        } else {
            TcpFlags::NONE
        }
    }

    /// An ACK arrived; if it carries ECN-Echo, congestion without loss.
    /// Returns whether cwnd and ssthresh go down as for a loss: at most
    /// once per window of data and not during a recovery that already
    /// reduced them. Either way the next new data carries CWR, so the
    /// receiver stops echoing (RFC 3168 section 6.1.2).
    pub fn on_ack(
        &mut self,
        flags: TcpFlags,
        snd_una: Seq,
        snd_max: Seq,
        recovering: bool,
    ) -> bool {
        if !self.agreed || !flags.contains(TcpFlags::ECE) {
            return false;
        }
        self.cwr_pending = true;
        let reduced_this_window = self.high.is_some_and(|h| snd_una < h);
        if reduced_this_window || recovering {
            return false;
        }
        self.high = Some(snd_max);
        self.cwr_high = Some(snd_max);
        true
    }

    /// A loss reduction (fast recovery) at `snd_max`: one reduction per
    /// window, whether for loss or ECN.
    pub fn on_loss_reduction(&mut self, snd_max: Seq) {
        self.high = Some(snd_max);
    }

    /// New data goes out: whether it carries the CWR owed (RFC 3168 6.1.2).
    pub fn take_cwr(&mut self) -> bool {
        std::mem::take(&mut self.cwr_pending)
    }

    /// Whether the window sent at the last ECE reduction is still
    /// unacknowledged (Linux's CWR state).
    pub fn in_cwr(&self, snd_una: Seq) -> bool {
        self.cwr_high.is_some_and(|h| snd_una < h)
    }
}
