//! Fast retransmit, fast recovery, SACK-based recovery, PMTU.
use super::*;
use crate::tcp::timer::Timer;
use crate::tcp::{CongestionAlgorithm, IcmpError};

fn dupack(a: &Connection, sack: &[(u32, u32)]) -> Seg {
    let mut r = seg(ISS_B + 1, a.snd_una.0, TcpFlags::ACK);
    // The same window as before, or it is an update, not a duplicate.
    r.window = (a.snd_wnd >> a.opts.snd_wscale) as u16;
    assert_eq!(u32::from(r.window) << a.opts.snd_wscale, a.snd_wnd);
    for (i, b) in sack.iter().enumerate() {
        r.options.sack_blocks[i] = *b;
    }
    r.options.sack_len = sack.len() as u8;
    (r, vec![])
}

fn sender(sack: bool) -> (Connection, Vec<Seg>) {
    let mut c = cfg();
    c.sack = sack;
    c.congestion = CongestionAlgorithm::NewReno;
    let (mut a, _b) = pair_with(c.clone(), c);
    // A first scaled window (the SYN-ACK's was unscaled).
    let mut update = seg(ISS_B + 1, ISS_A + 1, TcpFlags::ACK);
    update.window = 32768;
    a.on_segment(t(1), &update, &[]);
    a.send(&[3; 10_000]).unwrap();
    let data = out(&mut a, t(1));
    assert_eq!(data.len(), 10, "IW10");
    (a, data)
}

#[test]
fn three_duplicate_acks_trigger_fast_retransmit_and_halve_cwnd() {
    let (mut a, data) = sender(false);
    let before = a.cwnd();
    for _ in 0..2 {
        let d = dupack(&a, &[]);
        feed(&mut a, t(2), &[d]);
        assert!(out(&mut a, t(2)).is_empty());
    }
    let d = dupack(&a, &[]);
    feed(&mut a, t(2), &[d]);
    let o = out(&mut a, t(2));
    assert_eq!(o[0].0.seq, data[0].0.seq);
    assert_eq!(a.counters().fast_retransmits, 1);
    assert_eq!(a.cwnd(), before / 2);
    // Partial ACK: the next hole goes out at once (RFC 6582).
    let mut partial = dupack(&a, &[]);
    partial.0.ack = data[2].0.seq;
    feed(&mut a, t(3), &[partial]);
    let o = out(&mut a, t(3));
    assert_eq!(o[0].0.seq, data[2].0.seq);
}

#[test]
fn sack_recovery_resends_each_lost_segment_once_without_waiting_when_nothing_was_reordered() {
    let (mut a, data) = sender(true);
    // Segments 0, 3 and 6 lost; the rest SACKed 100 ms after sending.
    let s = |i: usize| data[i].0.seq;
    let e = |i: usize| data[i].0.seq + data[i].1.len() as u32;
    let blocks = [(s(7), e(9)), (s(4), e(5)), (s(1), e(2))];
    let d = dupack(&a, &blocks);
    feed(&mut a, t(101), &[d]);
    // Enough SACKed to start recovery, and with no reordering seen RACK's
    // window is zero (RFC 8985 section 6.2 step 4): every hole goes now.
    let seqs: Vec<u32> = out(&mut a, t(101)).iter().map(|x| x.0.seq).collect();
    assert_eq!(seqs, vec![s(0), s(3), s(6)], "and no tail loss probe");
    assert_eq!(a.counters().sack_recoveries, 1);
    assert_eq!(a.timers.get(Timer::Rack), None);
    let d = dupack(&a, &blocks);
    feed(&mut a, t(130), &[d]);
    let again: Vec<u32> = out(&mut a, t(130)).iter().map(|x| x.0.seq).collect();
    assert!(
        !again.contains(&s(3)) && !again.contains(&s(0)),
        "lost segments are not resent twice: {again:?}"
    );
}

#[test]
fn packet_too_big_lowers_mss_and_resends_what_no_longer_fits() {
    let (mut a, data) = sender(false);
    assert_eq!(data[0].1.len(), 1000);
    a.on_icmp(t(2), IcmpError::PacketTooBig { mtu: 576 });
    assert_eq!(a.mss(), 536);
    let o = out(&mut a, t(2));
    assert_eq!(o[0].0.seq, data[0].0.seq);
    assert_eq!(o[0].1.len(), 536);
}

#[test]
fn an_absurd_ipv4_frag_needed_mtu_is_raised_to_linux_min_pmtu_552() {
    for mtu in [0, 1, 68, 551] {
        let (mut a, _) = sender(false);
        a.on_icmp(t(2), IcmpError::PacketTooBig { mtu });
        assert_eq!(a.mss(), 512, "mtu {mtu}");
    }
}

#[test]
fn an_ipv6_packet_too_big_below_1280_is_ignored_as_linux() {
    let mut c = cfg();
    c.ipv6 = true;
    c.mss = 1440;
    for (mtu, mss) in [(0, 1440), (1279, 1440), (1280, 1220)] {
        let (mut a, _b) = pair_with(c.clone(), c.clone());
        a.on_icmp(t(2), IcmpError::PacketTooBig { mtu });
        assert_eq!(a.mss(), mss, "mtu {mtu}");
    }
}

#[test]
fn an_icmp_error_quotes_in_flight_only_between_snd_una_and_snd_max() {
    let (a, data) = sender(false);
    let first = data[0].0.seq;
    let last = data[9].0.seq;
    assert!(a.quotes_in_flight(first));
    assert!(a.quotes_in_flight(last));
    assert!(!a.quotes_in_flight(first.wrapping_sub(1)));
    assert!(!a.quotes_in_flight(last.wrapping_add(1_000_000)));
}

/// A connection with `srtt` (and a small RTTVAR, so the RTO is SRTT plus
/// its 200 ms floor) whose flight of three segments is entirely lost.
fn lost_flight(srtt: Duration) -> (Connection, Vec<Seg>) {
    let (a, _, data) = tail_flight_with(Some(srtt));
    (a, data)
}

#[test]
fn tail_loss_probe_resends_the_last_segment_after_two_srtt() {
    let srtt = ms(100);
    let (mut a, data) = lost_flight(srtt);
    // The PTO comes before the RTO.
    let pto = a.poll_at().unwrap();
    assert_eq!(pto, t(200) + srtt * 2 + ms(2));
    let probe = out(&mut a, pto);
    assert_eq!(probe.len(), 1);
    assert_eq!(probe[0].0.seq, data[2].0.seq);
    assert_eq!(a.counters().tlp_probes, 1);
    // One probe per episode where the PTO is more than half the RTO
    // (202 ms against 300 ms): next comes the RTO.
    let next = a.poll_at().unwrap();
    assert_eq!(next, pto + a.rtt.current());
}

#[test]
fn tail_loss_probe_goes_twice_before_the_rto_on_a_path_far_shorter_than_its_floor() {
    let srtt = ms(10);
    let (mut a, data) = lost_flight(srtt);
    let pto = a.poll_at().unwrap();
    assert_eq!(pto, t(200) + srtt * 2 + ms(2));
    assert_eq!(out(&mut a, pto)[0].0.seq, data[2].0.seq);
    // Unanswered: a second probe one PTO later (22 ms, against a 210 ms
    // RTO), and no third.
    let second = a.poll_at().unwrap();
    assert_eq!(second, pto + srtt * 2 + ms(2));
    let probe = out(&mut a, second);
    assert_eq!(probe.len(), 1);
    assert_eq!(probe[0].0.seq, data[2].0.seq);
    assert_eq!(a.counters().tlp_probes, 2);
    let rto_at = second + a.rtt.current();
    assert_eq!(a.poll_at().unwrap(), rto_at);
    let rto = out(&mut a, rto_at);
    assert_eq!(rto[0].0.seq, data[0].0.seq);
    assert_eq!(a.counters().rto_expiries, 1);
}

#[test]
fn no_tail_loss_probe_without_sack() {
    let mut c = cfg();
    c.sack = false;
    let (mut a, mut b) = pair_with(c.clone(), c);
    a.send(b"warm").unwrap();
    feed(&mut b, t(0), &out(&mut a, t(0)));
    feed(&mut a, t(100), &out(&mut b, t(100)));
    a.send(&[4; 3000]).unwrap();
    out(&mut a, t(200));
    assert_eq!(a.poll_at(), a.timers.get(Timer::Rto));
}

#[test]
fn cwnd_grows_only_while_it_limits_the_sender() {
    let (mut a, mut b) = pair();
    let iw = a.cwnd();
    // A trickle of small writes never fills the window.
    for i in 0..20 {
        a.send(b"tick").unwrap();
        pump(&mut a, &mut b, t(100 * i));
        pump(&mut a, &mut b, t(100 * i + 50));
    }
    assert_eq!(a.cwnd(), iw, "application-limited: no growth");
    // A bulk transfer that fills the window does grow it.
    a.send(&[0; 30_000]).unwrap();
    pump(&mut a, &mut b, t(5000));
    pump(&mut a, &mut b, t(5050));
    assert!(a.cwnd() > iw);
}

#[test]
fn tail_loss_probe_repeats_the_last_segment_so_the_receiver_acks_at_once() {
    let (mut a, mut b) = pair();
    a.send(b"warm").unwrap();
    feed(&mut b, t(0), &out(&mut a, t(0)));
    feed(&mut a, t(100), &out(&mut b, t(100)));
    // Two segments go out and arrive; B's ACK of them is lost.
    a.send(&[4; 2000]).unwrap();
    let data = out(&mut a, t(200));
    feed(&mut b, t(200), &data);
    out(&mut b, t(200));
    // New data is ready too, yet the probe repeats the last segment...
    a.snd_wnd = 100_000;
    a.send(&[5; 1000]).unwrap();
    let pto = a.poll_at().unwrap();
    let probe = out(&mut a, pto);
    assert_eq!(probe[0].0.seq, data[1].0.seq);
    assert_eq!(a.counters().tlp_probes, 1);
    // ...which B, holding it already, acknowledges without delay.
    feed(&mut b, pto, &probe);
    let ack = out(&mut b, pto);
    assert_eq!(ack.len(), 1);
    assert_eq!(ack[0].0.ack, a.snd_max.0);
}

/// A sender whose first segment is late: the other nine are SACKed, fast
/// recovery resends the first and halves cwnd, and a cumulative ACK then
/// ends recovery. Returns the sender, its data and its cwnd before.
fn spurious_recovery() -> (Connection, Vec<Seg>, u32) {
    spurious_recovery_at(101)
}

fn spurious_recovery_at(now: u64) -> (Connection, Vec<Seg>, u32) {
    let (mut a, data) = sender(true);
    let before = a.cwnd();
    let s = |i: usize| data[i].0.seq;
    let e = |i: usize| data[i].0.seq + data[i].1.len() as u32;
    let d = dupack(&a, &[(s(1), e(9))]);
    feed(&mut a, t(now), &[d]);
    let o = out(&mut a, t(now));
    assert_eq!(o[0].0.seq, s(0));
    assert_eq!(a.cwnd(), before / 2);
    let mut ack = dupack(&a, &[]);
    ack.0.ack = e(9);
    feed(&mut a, t(now + 1), &[ack]);
    assert_eq!(a.snd_una.0, e(9));
    assert_eq!(a.cwnd(), before / 2, "recovery ended at ssthresh");
    (a, data, before)
}

#[test]
fn dsack_of_every_retransmission_undoes_the_recovery() {
    let (mut a, data, before) = spurious_recovery();
    // The late original arrives after the retransmission: the receiver
    // reports the duplicate (RFC 2883), so nothing was lost.
    let dsack = dupack(&a, &[(data[0].0.seq, data[1].0.seq)]);
    feed(&mut a, t(103), &[dsack]);
    assert_eq!(a.cwnd(), before);
    assert_eq!(a.cc.ssthresh(), u32::MAX, "back in slow start");
    assert_eq!(a.counters().spurious_undos, 1);
    // A second report of the same changes nothing.
    let dsack = dupack(&a, &[(data[0].0.seq, data[1].0.seq)]);
    feed(&mut a, t(104), &[dsack]);
    assert_eq!(a.counters().spurious_undos, 1);
}

#[test]
fn dsack_of_a_segment_never_retransmitted_undoes_nothing() {
    let (mut a, data, before) = spurious_recovery();
    // The network duplicated segment 5: its D-SACK says nothing about
    // the retransmission.
    let dsack = dupack(&a, &[(data[5].0.seq, data[6].0.seq)]);
    feed(&mut a, t(103), &[dsack]);
    assert_eq!(a.cwnd(), before / 2);
    assert_eq!(a.counters().spurious_undos, 0);
}

#[test]
fn dsack_after_a_timeout_undoes_nothing() {
    let (mut a, data) = sender(true);
    let before = a.cwnd();
    let s = |i: usize| data[i].0.seq;
    let e = |i: usize| data[i].0.seq + data[i].1.len() as u32;
    let d = dupack(&a, &[(s(1), e(9))]);
    feed(&mut a, t(101), &[d]);
    assert_eq!(out(&mut a, t(101))[0].0.seq, s(0));
    // The retransmission's ACK is lost too: the RTO fires and resends.
    let rto = a.timers.get(Timer::Rto).unwrap();
    assert_eq!(out(&mut a, rto)[0].0.seq, s(0));
    assert_eq!(a.cwnd(), a.mss());
    let mut dsack = dupack(&a, &[(s(0), e(0))]);
    dsack.0.ack = e(9);
    feed(&mut a, rto + ms(1), &[dsack]);
    assert!(a.cwnd() < before / 2, "no undo without F-RTO");
    assert_eq!(a.counters().spurious_undos, 0);
}

#[test]
fn rack_waits_a_reordering_window_once_a_retransmission_proved_spurious() {
    let (mut a, data, _) = spurious_recovery();
    let dsack = dupack(&a, &[(data[0].0.seq, data[1].0.seq)]);
    feed(&mut a, t(103), &[dsack]);
    // The handshake, at one instant, left SRTT at zero, which would cap
    // the window to nothing; a 100 ms round trip.
    a.rtt.sample(ms(100));
    // Next flight: segments 0 and 2 of it missing, the others SACKed.
    a.send(&[6; 6000]).unwrap();
    let next = out(&mut a, t(200));
    assert_eq!(next.len(), 6);
    let s = |i: usize| next[i].0.seq;
    let e = |i: usize| next[i].0.seq + next[i].1.len() as u32;
    let d = dupack(&a, &[(s(3), e(5)), (s(1), e(1))]);
    feed(&mut a, t(300), &[d]);
    // Four SACKed segments start recovery (RFC 6675) and resend the
    // first hole, but RACK now allows for reordering (a quarter of
    // min_rtt, capped at SRTT) before it calls segment 2 lost.
    let o = out(&mut a, t(300));
    assert_eq!(o.len(), 1);
    assert_eq!(o[0].0.seq, s(0));
    let srtt = a.rtt.srtt.unwrap();
    assert!(srtt > Duration::ZERO);
    assert_eq!(a.rack.reo_wnd(true, Some(srtt)), srtt.min(ms(25)));
    let timer = a
        .timers
        .get(Timer::Rack)
        .expect("the reordering timer runs");
    assert!(timer > t(300));
    let o = out(&mut a, timer);
    assert_eq!(o.len(), 1);
    assert_eq!(o[0].0.seq, s(2));
}

/// A warmed-up pair (one round trip of 100 ms: SRTT 12.5 ms) and a
/// three-segment flight from A.
fn tail_flight() -> (Connection, Connection, Vec<Seg>) {
    tail_flight_with(None)
}

/// The same, with A's SRTT set to `srtt` (RTTVAR an eighth of it) first.
fn tail_flight_with(srtt: Option<Duration>) -> (Connection, Connection, Vec<Seg>) {
    let (mut a, mut b) = pair();
    a.send(b"warm").unwrap();
    feed(&mut b, t(0), &out(&mut a, t(0)));
    feed(&mut a, t(100), &out(&mut b, t(100)));
    if let Some(srtt) = srtt {
        a.rtt.srtt = Some(srtt);
        a.rtt.rttvar = srtt / 8;
    }
    a.send(&[4; 3000]).unwrap();
    let data = out(&mut a, t(200));
    assert_eq!(data.len(), 3);
    (a, b, data)
}

/// The flight's last segment is lost, and B's ACKs of the others too.
fn lose_the_tail(b: &mut Connection, data: &[Seg]) {
    feed(b, t(200), &data[..2]);
    out(b, t(200));
}

/// A sends more at `at`; B's ACKs of it that pass `probe_end` reach A.
fn ack_beyond_the_probe(a: &mut Connection, b: &mut Connection, at: Instant, probe_end: u32) {
    a.send(&[5; 1000]).unwrap();
    let more = out(a, at);
    feed(b, at, &more);
    let mut acks = out(b, at + ms(300));
    acks.retain(|s| s.0.ack > probe_end);
    feed(a, at + ms(300), &acks);
}

#[test]
fn tlp_that_repaired_a_lost_tail_reduces_cwnd_once_an_ack_passes_the_probe() {
    let (mut a, mut b, data) = tail_flight();
    lose_the_tail(&mut b, &data);
    let pto = a.poll_at().unwrap();
    let probe = out(&mut a, pto);
    assert_eq!(probe[0].0.seq, data[2].0.seq);
    // The probe fills the tail: B acknowledges everything (after its
    // delayed-ACK timer: the probe is in order), no D-SACK.
    feed(&mut b, pto, &probe);
    let delack = b.poll_at().unwrap();
    let ack = out(&mut b, delack);
    assert_eq!(ack[0].0.ack, probe[0].0.seq + 1000);
    assert_eq!(ack[0].0.options.sack_len, 0);
    let before = a.cwnd();
    feed(&mut a, pto + ms(100), &ack);
    assert_eq!(a.cwnd(), before, "a late D-SACK may still clear the probe");
    // An ACK beyond the probe with no D-SACK: the probe repaired a loss.
    ack_beyond_the_probe(&mut a, &mut b, pto + ms(100), probe[0].0.seq + 1000);
    assert_eq!(a.counters().tlp_recoveries, 1);
    assert!(a.cwnd() < before, "{} !< {before}", a.cwnd());
    assert_eq!(a.counters().fast_retransmits, 0);
}

#[test]
fn one_dsack_after_two_probes_does_not_hide_the_loss_the_first_repaired() {
    // SRTT 12.5 ms: the PTO (27 ms) is less than half the RTO, so a
    // second probe follows an unanswered first.
    let (mut a, mut b, data) = tail_flight();
    lose_the_tail(&mut b, &data);
    let pto = a.poll_at().unwrap();
    let first = out(&mut a, pto);
    // The first probe fills the tail; B's (delayed) ACK of it is lost.
    feed(&mut b, pto, &first);
    let second_at = a.poll_at().unwrap();
    let second = out(&mut a, second_at);
    assert_eq!(second[0].0.seq, first[0].0.seq);
    assert_eq!(a.counters().tlp_probes, 2);
    // The second is a duplicate: B reports it at once with a D-SACK.
    feed(&mut b, second_at, &second);
    let ack = out(&mut b, second_at);
    assert_eq!(
        ack[0].0.options.sack_len, 1,
        "a D-SACK for the second probe"
    );
    let before = a.cwnd();
    feed(&mut a, second_at + ms(10), &ack);
    assert_eq!(a.counters().tlp_recoveries, 0, "one D-SACK of two");
    // An ACK beyond the probes with no second D-SACK: a loss was repaired.
    ack_beyond_the_probe(&mut a, &mut b, second_at + ms(10), first[0].0.seq + 1000);
    assert_eq!(a.counters().tlp_recoveries, 1);
    assert!(a.cwnd() < before, "{} !< {before}", a.cwnd());
}

#[test]
fn tlp_answered_by_a_dsack_leaves_cwnd_alone() {
    let (mut a, mut b, data) = tail_flight();
    // Everything arrives; B's ACK is lost.
    feed(&mut b, t(200), &data);
    out(&mut b, t(200));
    let pto = a.poll_at().unwrap();
    let probe = out(&mut a, pto);
    feed(&mut b, pto, &probe);
    let ack = out(&mut b, pto);
    assert_eq!(ack[0].0.options.sack_len, 1, "a D-SACK for the probe");
    let before = a.cwnd();
    feed(&mut a, pto + ms(100), &ack);
    a.send(&[5; 1000]).unwrap();
    let more = out(&mut a, pto + ms(100));
    feed(&mut b, pto + ms(100), &more);
    feed(&mut a, pto + ms(400), &out(&mut b, pto + ms(400)));
    assert_eq!(a.counters().tlp_recoveries, 0);
    assert!(a.cwnd() >= before);
}

#[test]
fn prr_paces_sack_recovery_one_segment_per_two_delivered() {
    let (mut a, data) = sender(true);
    a.send(&[7; 10_000]).unwrap();
    let s = |i: usize| data[i].0.seq;
    let e = |i: usize| data[i].0.seq + data[i].1.len() as u32;
    let new = e(9);
    // Segment 0 lost; 1-3 SACKed: recovery with ssthresh 5000 of a
    // 10,000-byte flight. PRR allows ceil(3000 * 5000 / 10000) = 1500:
    // the retransmission and one new segment (whole segments, as Linux).
    let d = dupack(&a, &[(s(1), e(3))]);
    feed(&mut a, t(101), &[d]);
    let o: Vec<u32> = out(&mut a, t(101)).iter().map(|x| x.0.seq).collect();
    assert_eq!(o, vec![s(0), new]);
    assert_eq!(a.cc.ssthresh(), 5000);
    // One more delivered: 2000 allowed in all, 2000 sent, nothing now
    // (without PRR neither: the pipe, 7000, is above cwnd).
    let d = dupack(&a, &[(s(1), e(4))]);
    feed(&mut a, t(102), &[d]);
    assert!(out(&mut a, t(102)).is_empty());
    // Another: 2500 allowed, one more segment, where halving cwnd at
    // once would still wait for the pipe to drain below 5000.
    let d = dupack(&a, &[(s(1), e(5))]);
    feed(&mut a, t(103), &[d]);
    let o: Vec<u32> = out(&mut a, t(103)).iter().map(|x| x.0.seq).collect();
    assert_eq!(o, vec![new + 1000]);
}

#[test]
fn rescue_retransmission_resends_the_highest_unsacked_segment_once_per_recovery() {
    let (mut a, data) = sender(true);
    let s = |i: usize| data[i].0.seq;
    let e = |i: usize| data[i].0.seq + data[i].1.len() as u32;
    // Nothing more to send. Segments 0 and 9 lost, 1-8 SACKed: RACK finds
    // 0 lost, but 9, sent with 8, has nothing after it to show its loss.
    let d = dupack(&a, &[(s(1), e(8))]);
    feed(&mut a, t(101), &[d]);
    let o: Vec<u32> = out(&mut a, t(101)).iter().map(|x| x.0.seq).collect();
    assert_eq!(o, vec![s(0), s(9)], "the first hole, then the rescue");
    assert_eq!(a.counters().rescue_retransmits, 1);
    // Only one per recovery: the next ACK (the hole filled) sends nothing.
    let mut partial = dupack(&a, &[]);
    partial.0.ack = e(8);
    feed(&mut a, t(102), &[partial]);
    assert!(out(&mut a, t(102)).is_empty());
    assert_eq!(a.counters().rescue_retransmits, 1);
}

#[test]
fn tcp_info_counts_what_is_outstanding_and_names_the_recovery_state() {
    use crate::tcp::{CaState, Outstanding};
    let (mut a, data) = sender(true);
    assert_eq!(a.ca_state(), CaState::Open);
    let s = |i: usize| data[i].0.seq;
    let e = |i: usize| data[i].0.seq + data[i].1.len() as u32;
    // One duplicate ACK: out of order, not yet recovery.
    let d = dupack(&a, &[]);
    feed(&mut a, t(101), &[d]);
    assert_eq!(a.ca_state(), CaState::Disorder);
    // Segments 0, 3 and 6 lost, the rest SACKed: recovery resends them.
    let blocks = [(s(7), e(9)), (s(4), e(5)), (s(1), e(2))];
    let d = dupack(&a, &blocks);
    feed(&mut a, t(102), &[d]);
    assert_eq!(out(&mut a, t(102)).len(), 3);
    assert_eq!(a.ca_state(), CaState::Recovery);
    assert_eq!(
        a.outstanding(),
        Outstanding {
            unacked: 10,
            sacked: 7,
            lost: 3,
            retrans: 3,
            reordering: 3,
        }
    );
    // The RTO gives up on recovery: everything outstanding is lost.
    let rto = a.timers.get(Timer::Rto).unwrap();
    out(&mut a, rto);
    assert_eq!(a.ca_state(), CaState::Loss);
    assert_eq!(a.outstanding().lost, 10);
}

/// IW10 in flight with SRTT `srtt`; segment 0 lost, 1-9 SACKed 10 ms after
/// sending, and the retransmission of 0 lost as well: nothing sent after
/// it can be delivered, so RACK can never call it lost.
fn lost_retransmission(srtt: Duration) -> (Connection, Vec<Seg>) {
    let (mut a, data) = sender(true);
    a.rtt.srtt = Some(srtt);
    a.rtt.rttvar = srtt / 8;
    let s = |i: usize| data[i].0.seq;
    let e = |i: usize| data[i].0.seq + data[i].1.len() as u32;
    let d = dupack(&a, &[(s(1), e(9))]);
    feed(&mut a, t(11), &[d]);
    let o: Vec<u32> = out(&mut a, t(11)).iter().map(|x| x.0.seq).collect();
    assert_eq!(o, vec![s(0)]);
    (a, data)
}

#[test]
fn recovery_probe_resends_a_lost_retransmission_long_before_the_rto_on_a_short_path() {
    let (mut a, data) = lost_retransmission(ms(5));
    // Two round trips (RACK's 10 ms, longer than SRTT) and 2 ms: 22 ms,
    // against an RTO of 205 ms.
    let pto = a.poll_at().unwrap();
    assert_eq!(pto, t(11) + ms(22));
    let probe = out(&mut a, pto);
    assert_eq!(probe.len(), 1);
    assert_eq!(probe[0].0.seq, data[0].0.seq);
    assert_eq!(a.counters().recovery_probes, 1);
    assert_eq!(a.counters().rto_expiries, 0);
    // One per recovery: then the RTO, restarted by the probe.
    assert_eq!(a.poll_at().unwrap(), pto + a.rtt.current());
    // The probe repaired the hole: recovery ends, and the next one may
    // probe again.
    let mut ack = dupack(&a, &[]);
    ack.0.ack = data[9].0.seq + data[9].1.len() as u32;
    feed(&mut a, pto + ms(10), &[ack]);
    assert_eq!(a.ca_state(), crate::tcp::CaState::Open);
}

#[test]
fn no_recovery_probe_where_it_would_come_late_against_the_rto() {
    // SRTT 100 ms: a probe at 202 ms would save little against a 300 ms
    // RTO, so recovery waits for the RTO as RFC 8985 and Linux do.
    let (mut a, data) = lost_retransmission(ms(100));
    let rto = a.poll_at().unwrap();
    assert_eq!(Some(rto), a.timers.get(Timer::Rto));
    let o = out(&mut a, rto);
    assert_eq!(o[0].0.seq, data[0].0.seq);
    assert_eq!(a.counters().rto_expiries, 1);
    assert_eq!(a.counters().recovery_probes, 0);
}

#[test]
fn a_probe_that_finds_nothing_to_send_does_not_defer_the_rto() {
    let (mut a, _) = lost_retransmission(ms(5));
    let rto = a.timers.get(Timer::Rto).unwrap();
    // Nothing left for a probe to resend (a transmit log that lost track
    // of the hole, as a PMTU drop once made it): the probe timer fires,
    // sends nothing, and must leave the RTO where it was, or each PTO
    // would push it back forever (sim seed 640 ran 300 s that way).
    a.rack = Default::default();
    let pto = a.poll_at().unwrap();
    assert!(pto < rto);
    assert!(out(&mut a, pto).is_empty());
    assert_eq!(a.poll_at(), Some(rto));
    assert_eq!(out(&mut a, rto)[0].0.seq, a.snd_una.0);
    assert_eq!(a.counters().rto_expiries, 1);
}
