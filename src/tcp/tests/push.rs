//! When the application's data goes out: TCP_CORK, MSG_MORE, PSH, and
//! TCP_USER_TIMEOUT (RFC 5482).
use super::*;
use crate::tcp::TcpError;

fn nodelay_pair() -> (Connection, Connection) {
    let mut c = cfg();
    c.nodelay = true;
    pair_with(c, cfg())
}

fn lens(segs: &[Seg]) -> Vec<usize> {
    segs.iter().map(|s| s.1.len()).collect()
}

#[test]
fn cork_holds_partial_segments_until_uncorked_even_with_nodelay() {
    let (mut a, _b) = nodelay_pair();
    a.set_cork(true);
    a.send(&[1; 40]).unwrap();
    assert!(out(&mut a, t(0)).is_empty());
    a.send(&[2; 40]).unwrap();
    assert!(out(&mut a, t(50)).is_empty());
    a.set_cork(false);
    let o = out(&mut a, t(60));
    assert_eq!(lens(&o), [80]);
    assert!(o[0].0.flags.contains(TcpFlags::PSH));
}

#[test]
fn cork_lets_full_segments_go_and_holds_the_tail() {
    let (mut a, _b) = nodelay_pair();
    a.set_cork(true);
    a.send(&[1; 2500]).unwrap();
    assert_eq!(lens(&out(&mut a, t(0))), [1000, 1000]);
}

#[test]
fn corked_tail_goes_after_one_rto_with_nothing_in_flight() {
    let (mut a, _b) = nodelay_pair();
    a.set_cork(true);
    a.send(&[1; 40]).unwrap();
    assert!(out(&mut a, t(0)).is_empty());
    // Linux's ceiling on a cork: the probe timer, one RTO (200 ms here).
    assert_eq!(a.poll_at(), Some(t(200)));
    assert_eq!(lens(&out(&mut a, t(200))), [40]);
}

#[test]
fn setting_nodelay_pushes_corked_data_once() {
    let (mut a, _b) = pair();
    a.set_cork(true);
    a.send(&[1; 40]).unwrap();
    assert!(out(&mut a, t(0)).is_empty());
    a.set_nodelay(true);
    assert_eq!(lens(&out(&mut a, t(1))), [40]);
    a.send(&[1; 40]).unwrap();
    assert!(out(&mut a, t(2)).is_empty(), "the cork still holds");
}

#[test]
fn msg_more_holds_the_tail_until_the_next_send_and_marks_no_psh() {
    let (mut a, _b) = nodelay_pair();
    a.send_more(&[1; 100], true).unwrap();
    assert!(out(&mut a, t(0)).is_empty());
    a.send_more(&[1; 160], true).unwrap();
    assert!(out(&mut a, t(5)).is_empty());
    a.send_more(&[1; 5], false).unwrap();
    let o = out(&mut a, t(8));
    assert_eq!(lens(&o), [265]);
    assert!(o[0].0.flags.contains(TcpFlags::PSH));
}

#[test]
fn msg_more_hold_ends_at_the_next_ack_of_new_data_without_psh() {
    let (mut a, mut b) = nodelay_pair();
    a.send_more(&[1; 3100], true).unwrap();
    let o = out(&mut a, t(0));
    assert_eq!(lens(&o), [1000, 1000, 1000]);
    assert!(o.iter().all(|s| !s.0.flags.contains(TcpFlags::PSH)));
    feed(&mut b, t(10), &o[..2]);
    let ack = out(&mut b, t(10));
    assert!(!ack.is_empty());
    feed(&mut a, t(10), &ack);
    let tail = out(&mut a, t(10));
    assert_eq!(lens(&tail), [100]);
    assert!(!tail[0].0.flags.contains(TcpFlags::PSH));
}

#[test]
fn msg_more_tail_goes_after_one_rto_with_nothing_in_flight_with_psh() {
    let (mut a, _b) = nodelay_pair();
    a.send_more(&[1; 40], true).unwrap();
    assert!(out(&mut a, t(0)).is_empty());
    assert_eq!(a.poll_at(), Some(t(200)));
    let o = out(&mut a, t(200));
    assert_eq!(lens(&o), [40]);
    // What the persist timer lets go carries PSH (Linux's tcp_write_wakeup).
    assert!(o[0].0.flags.contains(TcpFlags::PSH));
}

#[test]
fn push_sends_held_data_even_when_nodelay_was_on_already() {
    let (mut a, _b) = nodelay_pair();
    a.send_more(&[1; 40], true).unwrap();
    a.send_more(&[1; 40], true).unwrap();
    assert!(out(&mut a, t(0)).is_empty());
    a.set_nodelay(true);
    assert!(out(&mut a, t(1)).is_empty(), "no change, no push");
    a.push_pending();
    let o = out(&mut a, t(2));
    assert_eq!(lens(&o), [80]);
    assert!(!o[0].0.flags.contains(TcpFlags::PSH), "MSG_MORE data");
}

#[test]
fn user_timeout_aborts_when_data_stays_unacknowledged_that_long() {
    let mut c = cfg();
    c.user_timeout = Some(ms(3000));
    // More retransmissions than the count would allow: time decides.
    c.retries = 1;
    let (mut a, _b) = pair_with(c, cfg());
    a.send(b"void").unwrap();
    assert_eq!(out(&mut a, t(100)).len(), 1);
    let mut now = t(100);
    while !a.is_closed() {
        now = a.poll_at().unwrap();
        assert!(now <= t(3100), "still open at {now:?}");
        out(&mut a, now);
    }
    assert_eq!(now, t(3100));
    assert!(a.counters().rto_expiries >= 3);
    assert_eq!(a.take_error(), Some(TcpError::TimedOut));
}

#[test]
fn user_timeout_restarts_when_new_data_is_acknowledged() {
    let mut c = cfg();
    c.user_timeout = Some(ms(1000));
    let (mut a, mut b) = pair_with(c, cfg());
    a.send(b"one").unwrap();
    let o = out(&mut a, t(0));
    feed(&mut b, t(860), &o);
    // B's delayed ACK, 40 ms later.
    let ack = out(&mut b, t(900));
    assert_eq!(ack.len(), 1);
    feed(&mut a, t(900), &ack);
    a.send(b"two").unwrap();
    out(&mut a, t(900));
    // Unacknowledged since 900 ms: open until 1900, closed then.
    while let Some(at) = a.poll_at().filter(|&at| at < t(1900)) {
        out(&mut a, at);
        assert!(!a.is_closed(), "closed early at {at:?}");
    }
    out(&mut a, t(1900));
    assert!(a.is_closed());
}

#[test]
fn user_timeout_bounds_unanswered_zero_window_probes() {
    let mut cb = cfg();
    cb.recv_buf = 1000;
    let mut ca = cfg();
    ca.user_timeout = Some(ms(2000));
    let (mut a, mut b) = pair_with(ca, cb);
    a.send(&[9; 3000]).unwrap();
    pump(&mut a, &mut b, t(0));
    pump(&mut a, &mut b, t(40));
    assert_eq!(a.snd_wnd, 0);
    // The peer stays silent: probes go unanswered.
    let first_probe = a.poll_at().unwrap();
    let mut now = first_probe;
    while !a.is_closed() {
        out(&mut a, now);
        now = a.poll_at().unwrap_or(now);
        assert!(now <= first_probe + ms(2000));
    }
    assert_eq!(now, first_probe + ms(2000));
    assert_eq!(a.take_error(), Some(TcpError::TimedOut));
}

#[test]
fn zero_user_timeout_goes_back_to_counting_retransmissions() {
    let mut c = cfg();
    c.retries = 2;
    let (mut a, _b) = pair_with(c, cfg());
    a.set_user_timeout(Some(ms(60_000)));
    a.set_user_timeout(Some(Duration::ZERO));
    a.send(b"void").unwrap();
    out(&mut a, t(0));
    while let Some(at) = a.poll_at() {
        out(&mut a, at);
    }
    assert_eq!(a.counters().rto_expiries, 2);
    assert_eq!(a.take_error(), Some(TcpError::TimedOut));
}

fn psh(s: &Seg) -> bool {
    s.0.flags.contains(TcpFlags::PSH)
}

/// Without SACK: no tail loss probe, so the next timer is the RTO.
fn nodelay_pair_no_sack() -> (Connection, Connection) {
    let mut c = cfg();
    c.nodelay = true;
    c.sack = false;
    pair_with(c, cfg())
}

#[test]
fn psh_marks_the_end_of_every_sent_write_not_only_the_end_of_the_queue() {
    let (mut a, _b) = nodelay_pair_no_sack();
    a.send(&[1; 1000]).unwrap();
    assert_eq!(out(&mut a, t(0)).len(), 1);
    a.send(&[2; 1000]).unwrap();
    assert_eq!(out(&mut a, t(0)).len(), 1);
    // The RTO resends the first write, the second still queued behind
    // it: that segment ends a write, so PSH again.
    let rto = a.poll_at().unwrap();
    let again = out(&mut a, rto);
    assert_eq!(lens(&again[..1]), [1000]);
    assert!(psh(&again[0]));
}

#[test]
fn writes_queued_before_any_is_sent_end_once_like_one_linux_skb() {
    let (mut a, _b) = nodelay_pair();
    a.send(&[1; 1000]).unwrap();
    a.send(&[2; 500]).unwrap();
    let o = out(&mut a, t(0));
    assert_eq!(lens(&o), [1000, 500]);
    assert!(!psh(&o[0]), "merged into the second write");
    assert!(psh(&o[1]));
}

#[test]
fn a_record_goes_whole_with_its_short_tail_and_nothing_joins_it() {
    let mut c = cfg();
    c.nodelay = true;
    c.tso_max = 64 * 1024;
    let (mut a, _b) = pair_with(c, cfg());
    a.send_with(&[1; 1500], false, true).unwrap();
    a.send_with(&[2; 300], false, true).unwrap();
    a.send(&[3; 700]).unwrap();
    let o = out(&mut a, t(0));
    assert_eq!(lens(&o), [1500, 300, 700], "one super-segment per record");
    assert!(o.iter().all(psh));
}

#[test]
fn psh_stays_off_a_segment_that_ends_inside_a_write_even_when_resent() {
    let (mut a, _b) = nodelay_pair_no_sack();
    a.send(&[1; 1500]).unwrap();
    let o = out(&mut a, t(0));
    assert_eq!(lens(&o), [1000, 500]);
    assert!(!psh(&o[0]) && psh(&o[1]));
    // The RTO resends the head: it ends inside the write, no PSH (Linux's
    // fr-4pkt retransmits `. 1:1461` likewise).
    let rto = a.poll_at().unwrap();
    let again = out(&mut a, rto);
    assert_eq!(lens(&again[..1]), [1000]);
    assert!(!psh(&again[0]));
}

#[test]
fn a_burst_cut_short_by_cwnd_ends_with_psh_but_one_cut_by_the_peer_window_does_not() {
    // Initial window: 10 segments of 1000 (RFC 6928); a 15000-byte write.
    let (mut a, _b) = nodelay_pair();
    a.send(&[1; 15_000]).unwrap();
    let o = out(&mut a, t(0));
    assert_eq!(lens(&o), [1000; 10]);
    assert!(o[..9].iter().all(|s| !psh(s)));
    assert!(psh(&o[9]), "the last segment cwnd allowed");

    // The same write into a 5000-byte receive window: no PSH on the cut.
    let mut c = cfg();
    c.nodelay = true;
    let mut small = cfg();
    small.recv_buf = 5000;
    let (mut a, _b) = pair_with(c, small);
    a.send(&[1; 15_000]).unwrap();
    let o = out(&mut a, t(0));
    assert_eq!(
        lens(&o),
        [1000; 5],
        "{:?}",
        o.iter().map(|s| (s.0.seq, s.1.len())).collect::<Vec<_>>()
    );
    assert!(o.iter().all(|s| !psh(s)), "cut by the receive window");
}

#[test]
fn notsent_lowat_write_takes_what_goes_now_and_one_chunk_then_nothing() {
    let mut c = cfg();
    c.notsent_lowat = Some(4000);
    let (mut a, _b) = pair_with(c, cfg());
    // Initial window 10 x 1000 goes at once; one more chunk of half the
    // peer's largest window (65535 / 2, in whole segments) waits.
    assert_eq!(a.send(&[1; 100_000]), Ok(10_000 + 32_000));
    assert_eq!(a.send(&[1; 10]), Ok(0), "42000 unsent >= 4000");
    assert!(!a.can_send());
    out(&mut a, t(0));
    assert_eq!(a.not_sent(), 32_000);
    assert_eq!(a.send(&[1; 10]), Ok(0));
}

#[test]
fn notsent_lowat_polls_writable_once_under_half_the_mark_waits() {
    let mut c = cfg();
    c.nodelay = true;
    c.notsent_lowat = Some(4000);
    let (mut a, mut b) = pair_with(c, cfg());
    a.send(&[1; 11_500]).unwrap();
    out(&mut a, t(0));
    assert_eq!(a.not_sent(), 1500);
    assert!(a.can_send(), "2 x 1500 < 4000");
    a.send(&[1; 1000]).unwrap();
    assert_eq!(a.not_sent(), 2500);
    assert!(!a.can_send(), "2 x 2500 >= 4000, though a write would take");
    assert_eq!(a.send(&[1; 100]), Ok(100));
    a.set_notsent_lowat(None);
    assert!(a.can_send());
    let _ = &mut b;
}

#[test]
fn a_full_send_buffer_polls_writable_again_only_when_a_third_is_free() {
    let mut c = cfg();
    c.send_buf = 9000;
    let (mut a, mut b) = pair_with(c, cfg());
    assert_eq!(a.send(&[1; 20_000]), Ok(9000));
    assert!(!a.can_send());
    let o = out(&mut a, t(0));
    // 2000 acknowledged: 2000 free of 9000, under a third.
    feed(&mut b, t(10), &o[..2]);
    let ack = out(&mut b, t(10));
    feed(&mut a, t(10), &ack);
    assert_eq!(a.send_capacity(), 2000);
    assert!(!a.can_send(), "free 2000 < queued 7000 / 2");
    // 3000 free of 9000: a third, writable (Linux's sk_stream_wspace >=
    // sk_stream_min_wspace).
    feed(&mut b, t(20), &o[2..3]);
    let ack = out(&mut b, t(20));
    feed(&mut a, t(20), &ack);
    assert_eq!(a.send_capacity(), 3000);
    assert!(a.can_send());
}

#[test]
fn time_held_by_a_closed_receive_window_counts_as_rwnd_limited_and_busy() {
    let mut small = cfg();
    small.recv_buf = 1000;
    let (mut a, mut b) = pair_with(cfg(), small);
    out(&mut a, t(0));
    a.send(&[1; 3000]).unwrap();
    let o = out(&mut a, t(0));
    assert_eq!(lens(&o), [1000], "the window takes one segment");
    assert_eq!(a.chrono().rwnd_limited(t(100)), ms(100));
    feed(&mut b, t(100), &o);
    for _ in 0..10 {
        read_all(&mut b);
        pump(&mut a, &mut b, t(100));
    }
    assert_eq!(a.send_queue(), 0);
    assert_eq!(a.chrono().rwnd_limited(t(500)), ms(100), "idle now");
    assert_eq!(a.chrono().busy_time(t(500)), ms(100));
}
