//! Retransmission, persist and keepalive timers.
use super::*;
use crate::tcp::{Keepalive, TcpError};

#[test]
fn retransmits_after_rto_with_backoff() {
    let (mut a, _b) = pair();
    // The handshake took no time, so the RTO sits at its 200 ms floor.
    assert_eq!(a.rtt.rto, ms(200));
    a.send(b"lost").unwrap();
    let first = out(&mut a, t(0));
    assert_eq!(first.len(), 1);
    let mut now = t(0);
    // The tail loss probe, clamped to the RTO, goes first and restarts the
    // RTO without backoff (as Linux); then the RTO backs off.
    for expect in [200, 200, 400, 800] {
        let at = a.poll_at().unwrap();
        assert_eq!(at - now, ms(expect));
        now = at;
        let o = out(&mut a, now);
        assert_eq!(o.len(), 1);
        assert_eq!(o[0].0.seq, first[0].0.seq);
        assert_eq!(o[0].1, b"lost");
    }
    assert_eq!(a.counters().tlp_probes, 1);
    assert_eq!(a.counters().rto_expiries, 3);
    assert_eq!(a.cwnd(), a.mss());
}

#[test]
fn rto_follows_measured_rtt_and_karn_skips_retransmitted_samples() {
    let (mut a, mut b) = pair();
    a.send(b"one").unwrap();
    feed(&mut b, t(0), &out(&mut a, t(0)));
    feed(&mut a, t(100), &out(&mut b, t(100)));
    // Handshake sample 0, then 100 ms: SRTT = 100/8, RTTVAR = 100/4;
    // RTO = SRTT + max(200 ms, 4 * RTTVAR).
    assert_eq!(a.rtt.srtt, Some(Duration::from_micros(12_500)));
    assert_eq!(a.rtt.rttvar, ms(25));
    assert_eq!(a.rtt.rto, Duration::from_micros(212_500));
    a.send(b"two").unwrap();
    out(&mut a, t(200));
    let rtx = out(&mut a, t(500));
    feed(&mut b, t(500), &rtx);
    feed(&mut a, t(2000), &out(&mut b, t(2000)));
    assert_eq!(
        a.rtt.srtt,
        Some(Duration::from_micros(12_500)),
        "no sample from a retransmission"
    );
}

#[test]
fn retries_exhausted_time_out_the_connection() {
    let mut c = cfg();
    c.retries = 2;
    let (mut a, _b) = pair_with(c, cfg());
    a.send(b"void").unwrap();
    out(&mut a, t(0));
    while let Some(at) = a.poll_at() {
        out(&mut a, at);
    }
    assert!(a.is_closed());
    assert_eq!(a.take_error(), Some(TcpError::TimedOut));
}

#[test]
fn zero_window_is_probed_with_backoff_until_it_opens() {
    let mut c = cfg();
    c.recv_buf = 1000;
    let (mut a, mut b) = pair_with(cfg(), c);
    a.send(&[9; 3000]).unwrap();
    pump(&mut a, &mut b, t(0));
    pump(&mut a, &mut b, t(40));
    assert_eq!(a.snd_wnd, 0);
    let mut now = t(40);
    let mut gaps = Vec::new();
    for _ in 0..3 {
        let at = a.poll_at().unwrap();
        gaps.push((at - now).as_millis());
        now = at;
        let probe = out(&mut a, now);
        assert_eq!(probe.len(), 1);
        assert_eq!(probe[0].0.seq, a.snd_una.0 - 1);
        feed(&mut b, now, &probe);
        let reply = out(&mut b, now);
        assert_eq!(reply.len(), 1, "the probe elicits an ACK");
        feed(&mut a, now, &reply);
    }
    assert!(gaps[1] > gaps[0] && gaps[2] > gaps[1], "{gaps:?}");
    read_all(&mut b);
    let mut got = 1000;
    for _ in 0..20 {
        now += ms(300);
        pump(&mut a, &mut b, now);
        if let Some(at) = a.poll_at() {
            pump_at(&mut a, &mut b, at.max(now));
        }
        got += read_all(&mut b).len();
    }
    assert_eq!(got, 3000);
}

fn pump_at(a: &mut Connection, b: &mut Connection, now: Instant) {
    pump(a, b, now);
}

#[test]
fn keepalive_probes_an_idle_peer_then_times_out() {
    let mut c = cfg();
    c.keepalive = Some(Keepalive {
        idle: Duration::from_secs(10),
        interval: Duration::from_secs(2),
        count: 3,
    });
    let (mut a, mut b) = pair_with(c, cfg());
    let at = a.poll_at().unwrap();
    assert_eq!(at, t(10_000));
    let probe = out(&mut a, at);
    assert_eq!(probe.len(), 1);
    feed(&mut b, at, &probe);
    let reply = out(&mut b, at);
    assert_eq!(reply.len(), 1, "the peer answers a keepalive");
    feed(&mut a, at, &reply);
    assert_eq!(a.poll_at(), Some(t(20_000)));
    // Now the peer is gone.
    let mut probes = 0;
    while let Some(at) = a.poll_at() {
        probes += out(&mut a, at).len();
    }
    assert_eq!(probes, 3);
    assert_eq!(a.take_error(), Some(TcpError::TimedOut));
}

#[test]
fn timestamp_echo_older_than_a_retransmission_gives_no_rtt_sample() {
    let mut c = cfg();
    c.timestamps = true;
    let (mut a, mut b) = pair_with(c.clone(), c);
    let before = a.rtt.srtt;
    a.send(b"data").unwrap();
    feed(&mut b, t(0), &out(&mut a, t(0)));
    // B's ACK (echoing the original TSval) is lost; A times out and resends.
    out(&mut b, t(40));
    let rtx = out(&mut a, t(200));
    assert_eq!(rtx.len(), 1);
    feed(&mut b, t(250), &rtx);
    let dup_ack = out(&mut b, t(250));
    assert_eq!(dup_ack.len(), 1);
    feed(&mut a, t(300), &dup_ack);
    assert_eq!(a.snd_una, a.snd_max, "the ACK itself is taken");
    assert_eq!(
        a.rtt.srtt, before,
        "an echo older than the retransmission is ambiguous"
    );
}

#[test]
fn keepalive_enabled_after_connect_counts_idle_from_now() {
    let (mut a, mut b) = pair();
    assert_eq!(a.poll_at(), None);
    pump(&mut a, &mut b, t(5000));
    a.set_keepalive(Some(Keepalive {
        idle: Duration::from_secs(1),
        interval: Duration::from_secs(1),
        count: 1,
    }));
    assert_eq!(a.poll_at(), Some(t(6000)));
    a.set_keepalive(None);
    assert_eq!(a.poll_at(), None);
}

#[test]
fn rto_into_a_shrunk_window_resends_the_head_as_a_probe_and_never_times_out() {
    let mut c = cfg();
    c.retries = 3;
    let (mut a, _b) = pair_with(c, cfg());
    a.send(&[1; 2000]).unwrap();
    let data = out(&mut a, t(0));
    assert_eq!(data.len(), 2);
    // The peer takes the first segment and shrinks its window to zero
    // (RFC 9293 section 3.8.6.2.2 tells senders to cope).
    let mut shut = seg(ISS_B + 1, data[1].0.seq, TcpFlags::ACK);
    shut.window = 0;
    let mut now = t(0);
    for _ in 0..8 {
        a.on_segment(now, &shut, &[]);
        now = a.poll_at().expect("RTO armed");
        let probe = out(&mut a, now);
        assert_eq!(probe.len(), 1, "the RTO sends the head segment");
        assert_eq!(probe[0].0.seq, data[1].0.seq);
    }
    assert_eq!(
        a.state(),
        State::Established,
        "a peer that answers is alive"
    );
}

#[test]
fn advancing_ack_updates_the_window_even_with_an_older_sequence_number() {
    let (mut a, _b) = pair();
    a.send(&[1; 1000]).unwrap();
    let data = out(&mut a, t(0));
    // A pure ACK with a high sequence number was the last window update.
    a.snd_wl1 = crate::tcp::Seq(ISS_B + 1000);
    let mut older_seq = seg(ISS_B + 1, data[0].0.seq + 1000, TcpFlags::ACK);
    older_seq.window = 1000;
    a.on_segment(t(1), &older_seq, &[]);
    assert_eq!(a.snd_wnd, 1000 << a.opts.snd_wscale);
}

/// Timestamps on, SACK off (so no tail loss probe comes before the RTO):
/// A sends a flight of three segments, which reaches B if `delivered`
/// (B's ACKs are returned, for the test to deliver late or drop), and A's
/// RTO fires and resends the first. Returns A, B, the flight, B's ACKs,
/// what the RTO resent and A's cwnd before it.
fn rto_after_a_flight(
    delivered: bool,
) -> (Connection, Connection, Vec<Seg>, Vec<Seg>, Vec<Seg>, u32) {
    let c = TcpConfig {
        timestamps: true,
        sack: false,
        ..cfg()
    };
    let (mut a, mut b) = pair_with(c.clone(), c);
    a.send(&[1; 3000]).unwrap();
    let data = out(&mut a, t(10));
    assert_eq!(data.len(), 3);
    let mut acks = Vec::new();
    if delivered {
        feed(&mut b, t(20), &data);
        acks = out(&mut b, t(20));
        assert!(!acks.is_empty());
    }
    let cwnd = a.cwnd();
    let rto = a.poll_at().unwrap();
    let resent = out(&mut a, rto);
    assert_eq!(resent.len(), 1);
    assert_eq!(resent[0].0.seq, data[0].0.seq);
    assert_eq!(a.counters().rto_expiries, 1);
    assert_eq!(a.cwnd(), a.mss());
    (a, b, data, acks, resent, cwnd)
}

#[test]
fn an_ack_for_the_original_shows_a_spurious_rto_which_is_undone() {
    let (mut a, _b, data, acks, _, cwnd) = rto_after_a_flight(true);
    // B's first ACK, delayed past the RTO, echoes the original's TSval
    // (RFC 3522).
    let late = t(400);
    feed(&mut a, late, &acks[..1]);
    assert_eq!(a.counters().spurious_rtos, 1);
    assert!(a.cwnd() >= cwnd, "{} < {cwnd}", a.cwnd());
    // Sending resumes after the originals (RFC 4015): the rest of the
    // flight is not sent again.
    a.send(&[2; 1000]).unwrap();
    let next = out(&mut a, late);
    let end = data[2].0.seq + data[2].1.len() as u32;
    assert!(next.iter().any(|s| !s.1.is_empty()));
    assert!(
        next.iter().all(|s| s.1.is_empty() || s.0.seq >= end),
        "{next:?}"
    );
}

#[test]
fn an_ack_for_the_retransmission_leaves_the_rto_standing() {
    // The flight was lost: B's ACK answers the retransmission and echoes
    // its newer TSval, so go-back-N goes on from the second segment.
    let (mut a, mut b, data, _, resent, _) = rto_after_a_flight(false);
    let at = t(400);
    feed(&mut b, at, &resent);
    let ack = out(&mut b, at);
    feed(&mut a, at, &ack);
    assert_eq!(a.counters().spurious_rtos, 0);
    let next = out(&mut a, at);
    assert_eq!(next[0].0.seq, data[1].0.seq);
}
