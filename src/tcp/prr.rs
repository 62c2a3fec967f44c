//! Proportional Rate Reduction (RFC 6937), as Linux paces fast recovery:
//! instead of cutting cwnd to ssthresh at once and sending nothing until
//! the pipe drains below it (half a round trip of silence, then a burst),
//! each ACK lets out data in proportion to what it reported delivered, so
//! the pipe slides down to ssthresh over one round trip and the ACK clock
//! never stops. Below ssthresh (heavy losses) the slow-start reduction
//! bound (PRR-SSRB) lets the pipe grow back by at most one MSS more than
//! was delivered.
//!
//! Owns the per-episode counters (RecoverFS, prr_delivered, prr_out) and
//! the send allowance they give. Must not pick segments or touch cwnd: the
//! transmit path asks how much it may send during recovery.

/// One fast recovery's PRR state (RFC 6937 section 3).
#[derive(Debug, Clone, Copy)]
pub struct Prr {
    /// RecoverFS: bytes outstanding when recovery began.
    recover_fs: u32,
    /// prr_delivered: bytes the receiver reported delivered since.
    delivered: u64,
    /// prr_out: bytes sent since (retransmissions and new data).
    out: u64,
    /// sndcnt left from the last ACK.
    allowance: u32,
}

impl Prr {
    /// Recovery begins with `flight` bytes outstanding.
    pub fn new(flight: u32) -> Prr {
        Prr {
            recover_fs: flight.max(1),
            delivered: 0,
            out: 0,
            allowance: 0,
        }
    }

    /// An ACK during recovery reported `delivered` bytes (cumulatively or
    /// by SACK); `pipe` is RFC 6675's pipe after it; `safe` says it moved
    /// snd_una and revealed no new loss, the only kind of ACK on which
    /// PRR-SSRB may send one segment beyond what was delivered (RFC 9937's
    /// SafeACK; Linux's tcp_cwnd_reduction). Sets the allowance (sndcnt)
    /// until the next ACK.
    pub fn on_ack(&mut self, delivered: u32, pipe: u32, ssthresh: u32, mss: u32, safe: bool) {
        self.delivered += u64::from(delivered);
        let sndcnt = if pipe > ssthresh {
            // Proportional rate reduction.
            let target =
                (self.delivered * u64::from(ssthresh)).div_ceil(u64::from(self.recover_fs));
            target.saturating_sub(self.out)
        } else {
            // PRR-SSRB: back up to ssthresh no faster than slow start.
            let limit = self
                .delivered
                .saturating_sub(self.out)
                .max(u64::from(delivered))
                + if safe { u64::from(mss) } else { 0 };
            u64::from(ssthresh - pipe).min(limit)
        };
        self.allowance = sndcnt.min(u64::from(u32::MAX)) as u32;
    }

    /// Bytes recovery may still send before the next ACK.
    pub fn allowance(&self) -> u32 {
        self.allowance
    }

    /// `used` bytes of sequence space went out (prr_out).
    pub fn on_send(&mut self, used: u32) {
        self.out += u64::from(used);
        self.allowance = self.allowance.saturating_sub(used);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prr_sends_in_proportion_to_delivery_while_pipe_exceeds_ssthresh() {
        // Ten segments of 1000 out, ssthresh 5000: one segment per two
        // delivered.
        let mut p = Prr::new(10_000);
        p.on_ack(3000, 6000, 5000, 1000, true);
        assert_eq!(p.allowance(), 1500);
        p.on_send(1000);
        p.on_send(1000);
        assert_eq!(p.allowance(), 0);
        p.on_ack(1000, 6000, 5000, 1000, true);
        assert_eq!(p.allowance(), 0);
        p.on_ack(1000, 6000, 5000, 1000, true);
        assert_eq!(p.allowance(), 500);
    }

    #[test]
    fn prr_ssrb_regrows_pipe_at_most_one_mss_beyond_delivery_on_safe_acks() {
        let mut p = Prr::new(10_000);
        // Heavy loss: the pipe is far below ssthresh.
        p.on_ack(1000, 1000, 5000, 1000, true);
        assert_eq!(p.allowance(), 2000);
        p.on_send(2000);
        p.on_ack(1000, 2000, 5000, 1000, true);
        assert_eq!(p.allowance(), 2000, "delivered this ACK plus one MSS");
        // Never past ssthresh.
        p.on_ack(3000, 4500, 5000, 1000, true);
        assert_eq!(p.allowance(), 500);
    }

    #[test]
    fn prr_ssrb_sends_only_what_was_delivered_on_an_ack_that_is_not_safe() {
        // A SACK that leaves snd_una (or reveals new loss) earns no extra
        // segment (RFC 9937 SafeACK; Linux sends one retransmission here,
        // packetdrill prr-ss-ack-below-snd_una-cubic).
        let mut p = Prr::new(10_000);
        p.on_ack(1000, 1000, 7000, 1000, false);
        assert_eq!(p.allowance(), 1000);
    }
}
