//! RST rules of RFC 9293 section 3.5.2 hardened by RFC 5961.
use super::*;
use crate::tcp::TcpError;

/// B's view: rcv_nxt = ISS_A + 1, snd_nxt = ISS_B + 1.
fn established_b() -> Connection {
    let (_a, b) = pair();
    b
}

fn to_b(seq: u32, ack: u32, flags: TcpFlags) -> TcpRepr {
    let mut r = seg(seq, ack, flags);
    r.src_port = 40000;
    r.dst_port = 80;
    r
}

#[test]
fn rst_at_exactly_rcv_nxt_resets_the_connection() {
    let mut b = established_b();
    b.on_segment(t(1), &to_b(ISS_A + 1, 0, TcpFlags::RST), &[]);
    assert!(b.is_closed());
    assert_eq!(b.take_error(), Some(TcpError::ConnectionReset));
    assert!(out(&mut b, t(1)).is_empty());
}

#[test]
fn rst_in_window_but_off_rcv_nxt_gets_a_challenge_ack() {
    let mut b = established_b();
    b.on_segment(t(1), &to_b(ISS_A + 100, 0, TcpFlags::RST), &[]);
    assert_eq!(b.state(), State::Established);
    let o = out(&mut b, t(1));
    assert_eq!(o.len(), 1);
    assert_eq!(o[0].0.flags, TcpFlags::ACK);
    assert_eq!(o[0].0.ack, ISS_A + 1);
    assert_eq!(b.counters().challenge_acks, 1);
}

#[test]
fn rst_outside_the_window_is_dropped_silently() {
    let mut b = established_b();
    b.on_segment(t(1), &to_b(ISS_A + 10_000_000, 0, TcpFlags::RST), &[]);
    assert_eq!(b.state(), State::Established);
    assert!(out(&mut b, t(1)).is_empty());
}

#[test]
fn syn_on_a_synchronized_connection_gets_a_challenge_ack() {
    let mut b = established_b();
    b.on_segment(t(1), &to_b(ISS_A + 1, 0, TcpFlags::SYN), &[]);
    assert_eq!(b.state(), State::Established);
    let o = out(&mut b, t(1));
    assert_eq!(o.len(), 1);
    assert_eq!(o[0].0.flags, TcpFlags::ACK);
    assert_eq!(b.counters().challenge_acks, 1);
}

#[test]
fn ack_beyond_snd_max_is_dropped_with_an_ack_and_its_data_ignored() {
    let mut b = established_b();
    b.on_segment(t(1), &to_b(ISS_A + 1, ISS_B + 500, TcpFlags::ACK), b"evil");
    assert_eq!(b.recv(&mut [0; 8]), Err(TcpError::WouldBlock));
    let o = out(&mut b, t(1));
    assert_eq!(o.len(), 1);
    assert_eq!(o[0].0.ack, ISS_A + 1);
}

#[test]
fn abort_sends_rst_and_closes() {
    let (mut a, mut b) = pair();
    a.abort();
    assert!(a.is_closed());
    let o = out(&mut a, t(1));
    assert_eq!(o.len(), 1);
    assert!(o[0].0.flags.contains(TcpFlags::RST));
    feed(&mut b, t(1), &o);
    assert_eq!(b.take_error(), Some(TcpError::ConnectionReset));
}

#[test]
fn close_with_unread_data_sends_rst_instead_of_fin() {
    let (mut a, mut b) = pair();
    a.send(b"unread").unwrap();
    pump(&mut a, &mut b, t(1));
    b.close();
    let o = out(&mut b, t(2));
    assert!(o[0].0.flags.contains(TcpFlags::RST));
    assert!(b.is_closed());
}

#[test]
fn challenge_acks_are_limited_per_second() {
    let mut b = established_b();
    let mut acks = 0;
    for i in 0..50 {
        b.on_segment(t(1), &to_b(ISS_A + 100 + i, 0, TcpFlags::RST), &[]);
        acks += out(&mut b, t(1)).len();
    }
    assert_eq!(acks, crate::tcp::input::CHALLENGE_ACK_LIMIT as usize);
    b.on_segment(t(1001), &to_b(ISS_A + 100, 0, TcpFlags::RST), &[]);
    assert_eq!(
        out(&mut b, t(1001)).len(),
        1,
        "a new second, a new allowance"
    );
    assert_eq!(b.state(), State::Established);
}

#[test]
fn forged_segment_with_a_bad_ack_cannot_advance_ts_recent() {
    let mut c = cfg();
    c.timestamps = true;
    let (mut a, mut b) = pair_with(c.clone(), c);
    let before = b.ts_recent;
    // Right sequence number (guessable), wrong ACK (RFC 5961 5.2 rejects).
    let mut forged = to_b(ISS_A + 1, ISS_B + 1_000_000, TcpFlags::ACK);
    forged.options.timestamps = Some((before.wrapping_add(1 << 30), 0));
    b.on_segment(t(1), &forged, &[]);
    assert_eq!(b.ts_recent, before);
    // The real peer's next segment still passes PAWS.
    a.send(b"ok").unwrap();
    feed(&mut b, t(2), &out(&mut a, t(2)));
    assert_eq!(read_all(&mut b), b"ok");
}

#[test]
fn reading_after_a_reset_schedules_nothing() {
    let (mut a, mut b) = pair();
    a.send(&[1; 3000]).unwrap();
    pump(&mut a, &mut b, t(1));
    b.on_segment(t(2), &to_b(b.rcv_nxt.0, 0, TcpFlags::RST), &[]);
    assert_eq!(b.take_error(), Some(TcpError::ConnectionReset));
    // The data that arrived before the reset is still readable...
    assert_eq!(read_all(&mut b).len(), 3000);
    // ...and reading it does not wake a closed connection.
    assert_eq!(b.poll_at(), None);
    assert!(out(&mut b, t(3)).is_empty());
}

#[test]
fn an_abort_rst_carries_timestamps_when_they_were_negotiated() {
    // RFC 7323 section 3.2; packetdrill reset_tsval checks the TSval is the
    // clock's at the abort and TSecr the peer's latest.
    let mut c = cfg();
    c.timestamps = true;
    let (mut a, mut b) = pair_with(c.clone(), c);
    a.send(b"unread").unwrap();
    feed(&mut b, t(5), &out(&mut a, t(5)));
    let _ = out(&mut b, t(5));
    let recent = b.ts_recent;
    b.abort();
    let o = out(&mut b, t(1005));
    assert_eq!(o.len(), 1);
    assert!(o[0].0.flags.contains(TcpFlags::RST));
    assert_eq!(o[0].0.options.timestamps, Some((b.tsval(t(1005)), recent)));
    // Without timestamps the RST has no options.
    let (_a, mut b) = pair();
    b.abort();
    let o = out(&mut b, t(1));
    assert_eq!(o[0].0.options.timestamps, None);
}
