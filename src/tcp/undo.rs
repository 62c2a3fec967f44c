//! Undoing a spurious congestion response with D-SACK (RFC 2883 section 4,
//! RFC 3708): when every segment retransmitted since fast recovery began
//! is reported back as a duplicate, the "losses" were reordering or delay,
//! nothing was lost, and the cwnd cut is taken back (Linux's
//! tcp_try_undo_dsack, counted there as TCPDSACKUndo).
//!
//! Owns the record of this episode's retransmissions and the decision to
//! undo, which it returns as a [`Verdict`]; the arrival path applies it
//! (the congestion controller restores its own state, recovery ends).
//! Must not touch the connection, or decide what is lost or what to send:
//! RACK and the transmit path do.

use super::seq::Seq;

/// Retransmissions remembered per episode; an episode with more is not
/// undone (so many spurious retransmissions are not reordering).
pub const MAX_UNDO_RETRANSMISSIONS: usize = 16;

/// One congestion response that may yet prove spurious.
#[derive(Debug, Clone, Default)]
struct Episode {
    /// snd_una when the episode began: D-SACKs below it report
    /// duplicates of older segments (Linux's undo_marker).
    marker: Seq,
    /// The ranges retransmitted since, one entry per transmission, not
    /// yet reported back as duplicates.
    retransmitted: Vec<(Seq, Seq)>,
    /// More retransmissions than are remembered: never undo.
    overflow: bool,
    /// At least one retransmission went out (an episode undone before
    /// it resent anything would be undone by any duplicate).
    any: bool,
}

impl Episode {
    fn new(marker: Seq) -> Episode {
        Episode {
            marker,
            ..Episode::default()
        }
    }

    /// Records a retransmission of `[start, end)`.
    fn on_retransmit(&mut self, start: Seq, end: Seq) {
        self.any = true;
        if self.retransmitted.len() >= MAX_UNDO_RETRANSMISSIONS {
            self.overflow = true;
        } else {
            self.retransmitted.push((start, end));
        }
    }

    /// Takes one D-SACK block: `None` if it reports no retransmission of
    /// this episode, else whether every one has now been reported as a
    /// duplicate.
    fn on_dsack(&mut self, start: Seq, end: Seq) -> Option<bool> {
        if start < self.marker || !self.any {
            return None;
        }
        // One report accounts for one transmission: a range sent three
        // times whose first copy was lost draws one D-SACK, not two.
        if let Some(i) = self
            .retransmitted
            .iter()
            .position(|&(s, e)| s < end && start < e)
        {
            self.retransmitted.swap_remove(i);
            return Some(self.retransmitted.is_empty() && !self.overflow);
        }
        None
    }
}

/// The D-SACK block of an ACK, if its first SACK block is one (RFC 2883
/// section 4): below the cumulative ACK, or inside the second block.
pub fn dsack_block(blocks: &[(Seq, Seq)], ack: Seq) -> Option<(Seq, Seq)> {
    let &(l, r) = blocks.first()?;
    if l >= r {
        return None;
    }
    let below = r <= ack;
    let inside = blocks.get(1).is_some_and(|&(l2, r2)| l2 <= l && r <= r2);
    (below || inside).then_some((l, r))
}

/// What a D-SACK block means for the episode under way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// It reports no retransmission of this episode (a copy the network
    /// made, or an older segment).
    Unrelated,
    /// It reports one of our retransmissions; others are still out.
    Reported,
    /// It reported the last one: nothing was lost, and the congestion
    /// response is to be taken back (the episode is over).
    Spurious,
}

/// The undo record of a connection: the episode that may yet prove
/// spurious, if any.
#[derive(Debug, Clone, Default)]
pub struct Undo {
    episode: Option<Episode>,
}

impl Undo {
    /// A congestion response begins (fast recovery) with snd_una at
    /// `marker`: remember what undoing it would need.
    pub fn begin(&mut self, marker: Seq) {
        self.episode = Some(Episode::new(marker));
    }

    /// The episode can no longer be undone (an RTO: undoing one needs
    /// F-RTO, RFC 5682, which this engine lacks).
    pub fn forget(&mut self) {
        self.episode = None;
    }

    /// A retransmission of `[start, end)` went out.
    pub fn on_retransmit(&mut self, start: Seq, end: Seq) {
        if let Some(e) = self.episode.as_mut() {
            e.on_retransmit(start, end);
        }
    }

    /// An ACK carried the D-SACK block `[start, end)`. [`Verdict::Spurious`]
    /// when that was the last retransmission of the episode to come back:
    /// cwnd and ssthresh return to what they were (Linux also does this
    /// after recovery ended, as the last D-SACK often arrives later).
    pub fn on_dsack(&mut self, start: Seq, end: Seq) -> Verdict {
        let Some(e) = self.episode.as_mut() else {
            return Verdict::Unrelated;
        };
        match e.on_dsack(start, end) {
            None => Verdict::Unrelated,
            Some(false) => Verdict::Reported,
            Some(true) => {
                self.episode = None;
                Verdict::Spurious
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dsack_is_the_first_block_below_the_ack_or_inside_the_second() {
        let b = |v: &[(u32, u32)]| v.iter().map(|&(l, r)| (Seq(l), Seq(r))).collect::<Vec<_>>();
        assert_eq!(
            dsack_block(&b(&[(100, 200)]), Seq(300)),
            Some((Seq(100), Seq(200)))
        );
        assert_eq!(
            dsack_block(&b(&[(500, 600), (400, 800)]), Seq(300)),
            Some((Seq(500), Seq(600)))
        );
        assert_eq!(dsack_block(&b(&[(500, 600), (700, 800)]), Seq(300)), None);
        assert_eq!(dsack_block(&b(&[]), Seq(300)), None);
    }

    #[test]
    fn undo_needs_every_retransmission_reported_once() {
        let mut u = Episode::new(Seq(1000));
        assert_eq!(u.on_dsack(Seq(1000), Seq(1100)), None, "nothing resent yet");
        u.on_retransmit(Seq(1000), Seq(1100));
        u.on_retransmit(Seq(1000), Seq(1100));
        u.on_retransmit(Seq(1500), Seq(1600));
        assert_eq!(
            u.on_dsack(Seq(900), Seq(1000)),
            None,
            "older than the episode"
        );
        assert_eq!(u.on_dsack(Seq(1200), Seq(1300)), None, "never resent");
        assert_eq!(u.on_dsack(Seq(1000), Seq(1100)), Some(false));
        assert_eq!(u.on_dsack(Seq(1500), Seq(1600)), Some(false));
        assert_eq!(u.on_dsack(Seq(1000), Seq(1100)), Some(true));
    }

    #[test]
    fn undo_is_refused_past_the_retransmission_record() {
        let mut u = Episode::new(Seq(0));
        for i in 0..=MAX_UNDO_RETRANSMISSIONS as u32 {
            u.on_retransmit(Seq(i * 10), Seq(i * 10 + 10));
        }
        let all = (0..=MAX_UNDO_RETRANSMISSIONS as u32)
            .map(|i| u.on_dsack(Seq(i * 10), Seq(i * 10 + 10)));
        assert!(all.into_iter().all(|undone| undone != Some(true)));
    }
}
