//! Connection teardown (RFC 9293 section 3.6).
use super::*;

#[test]
fn active_close_goes_fin_wait_1_fin_wait_2_time_wait_closed() {
    let (mut a, mut b) = pair();
    a.close();
    assert_eq!(a.state(), State::FinWait1);
    let fin = out(&mut a, t(1));
    assert!(fin[0].0.flags.contains(TcpFlags::FIN));
    feed(&mut b, t(1), &fin);
    assert_eq!(b.state(), State::CloseWait);
    feed(&mut a, t(1), &out(&mut b, t(1)));
    assert_eq!(a.state(), State::FinWait2);
    b.close();
    assert_eq!(b.state(), State::LastAck);
    feed(&mut a, t(2), &out(&mut b, t(2)));
    assert_eq!(a.state(), State::TimeWait);
    feed(&mut b, t(2), &out(&mut a, t(2)));
    assert_eq!(b.state(), State::Closed);
    assert_eq!(a.poll_at(), Some(t(2) + Duration::from_secs(60)));
    out(&mut a, t(2) + Duration::from_secs(60));
    assert_eq!(a.state(), State::Closed);
    assert_eq!(a.take_error(), None);
}

#[test]
fn simultaneous_close_passes_through_closing_to_time_wait() {
    let (mut a, mut b) = pair();
    a.close();
    b.close();
    let fa = out(&mut a, t(1));
    let fb = out(&mut b, t(1));
    feed(&mut a, t(1), &fb);
    feed(&mut b, t(1), &fa);
    assert_eq!(a.state(), State::Closing);
    assert_eq!(b.state(), State::Closing);
    pump(&mut a, &mut b, t(2));
    assert_eq!(a.state(), State::TimeWait);
    assert_eq!(b.state(), State::TimeWait);
}

#[test]
fn half_closed_connection_still_delivers_data_the_other_way() {
    let (mut a, mut b) = pair();
    a.shutdown_write();
    pump(&mut a, &mut b, t(1));
    assert_eq!(a.state(), State::FinWait2);
    b.send(b"still talking").unwrap();
    pump(&mut a, &mut b, t(2));
    assert_eq!(read_all(&mut a), b"still talking");
    b.shutdown_write();
    pump(&mut a, &mut b, t(3));
    assert_eq!(a.state(), State::TimeWait);
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn fin_is_sent_only_after_queued_data() {
    let (mut a, mut b) = pair();
    a.send(&[5; 2500]).unwrap();
    a.shutdown_write();
    let o = out(&mut a, t(1));
    assert_eq!(o.len(), 3);
    assert!(!o[0].0.flags.contains(TcpFlags::FIN));
    assert!(o[2].0.flags.contains(TcpFlags::FIN));
    feed(&mut b, t(1), &o);
    assert_eq!(read_all(&mut b).len(), 2500);
    assert!(b.recv_closed());
}

#[test]
fn fin_ahead_of_missing_data_waits_for_the_gap() {
    let (mut a, mut b) = pair();
    a.send(&[5; 1500]).unwrap();
    a.shutdown_write();
    let o = out(&mut a, t(1));
    feed(&mut b, t(1), &o[1..]);
    assert_eq!(b.state(), State::Established);
    feed(&mut b, t(1), &o[..1]);
    assert_eq!(b.state(), State::CloseWait);
    assert_eq!(read_all(&mut b).len(), 1500);
}

#[test]
fn retransmitted_fin_in_time_wait_is_acked_and_restarts_the_timer() {
    let (mut a, mut b) = pair();
    a.close();
    pump(&mut a, &mut b, t(1));
    b.close();
    let fin = out(&mut b, t(1));
    feed(&mut a, t(1), &fin);
    assert_eq!(a.state(), State::TimeWait);
    out(&mut a, t(1));
    feed(&mut a, t(30_000), &fin);
    let ack = out(&mut a, t(30_000));
    assert_eq!(ack.len(), 1);
    assert_eq!(ack[0].0.ack, fin[0].0.seq + 1);
    assert_eq!(a.poll_at(), Some(t(90_000)));
}

#[test]
fn orphaned_fin_wait_2_times_out() {
    let (mut a, mut b) = pair();
    a.close();
    pump(&mut a, &mut b, t(1));
    assert_eq!(a.state(), State::FinWait2);
    let at = a.poll_at().expect("FIN-WAIT-2 timer");
    out(&mut a, at);
    assert!(a.is_closed());
}

#[test]
fn time_wait_keeps_only_its_own_timer() {
    let (mut a, mut b) = pair();
    a.close();
    pump(&mut a, &mut b, t(1));
    // Stale sender work from before the close (a recovery in progress,
    // a tail probe due) must not outlive it (sim seed 55527 livelocked).
    a.rtx_una = true;
    a.tlp.pending = true;
    b.close();
    feed(&mut a, t(2), &out(&mut b, t(2)));
    assert_eq!(a.state(), State::TimeWait);
    out(&mut a, t(2));
    assert_eq!(a.poll_at(), Some(t(2) + Duration::from_secs(60)));
}

#[test]
fn time_wait_yields_only_to_a_newer_syn() {
    let (mut a, mut b) = pair();
    a.close();
    pump(&mut a, &mut b, t(1));
    b.close();
    pump(&mut a, &mut b, t(2));
    assert_eq!(a.state(), State::TimeWait);
    let old = seg(b.snd_max.0 - 10, 0, TcpFlags::SYN);
    let new = seg(b.snd_max.0 + 100_000, 0, TcpFlags::SYN);
    assert!(!a.accepts_new_syn(&old));
    assert!(a.accepts_new_syn(&new));
    assert!(!b.accepts_new_syn(&new), "only TIME-WAIT yields");
}

#[test]
fn data_after_close_is_reset_at_the_sequence_the_peer_acknowledges() {
    let (mut a, mut b) = pair();
    a.close();
    let fin = out(&mut a, t(1));
    assert!(fin[0].0.flags.contains(TcpFlags::FIN));
    // The FIN is lost; the peer still sends data, acknowledging only what
    // came before the FIN.
    b.send(b"late").unwrap();
    let data = out(&mut b, t(2));
    assert_eq!(data[0].0.ack, ISS_A + 1);
    feed(&mut a, t(2), &data);
    let rst = out(&mut a, t(2));
    assert_eq!(rst.len(), 1);
    assert_eq!(rst[0].0.flags, TcpFlags::RST);
    // SEG.ACK, not our snd_nxt past the FIN: the peer's RCV.NXT exactly,
    // which an RFC 5961 peer accepts.
    assert_eq!(rst[0].0.seq, ISS_A + 1);
    assert!(a.is_closed());
    feed(&mut b, t(3), &rst);
    assert!(b.is_closed());
}

#[test]
fn a_fin_after_data_is_acked_after_the_delayed_ack_time_as_linux() {
    let (mut a, mut b) = pair();
    a.send(&[1; 100]).unwrap();
    pump(&mut a, &mut b, t(1));
    a.close();
    let fin = out(&mut a, t(1000));
    assert_eq!(fin.len(), 1);
    feed(&mut b, t(1000), &fin);
    assert!(out(&mut b, t(1000)).is_empty(), "not at once");
    assert_eq!(b.poll_at(), Some(t(1040)));
    let ack = out(&mut b, t(1040));
    assert_eq!(ack.len(), 1);
    assert_eq!(ack[0].0.ack, fin[0].0.seq + 1);
}

#[test]
fn a_fin_on_a_connection_that_never_received_data_is_acked_at_once() {
    let (mut a, mut b) = pair();
    a.close();
    let fin = out(&mut a, t(10));
    feed(&mut b, t(10), &fin);
    let ack = out(&mut b, t(10));
    assert_eq!(ack.len(), 1, "Linux's ACK timeout is still zero");
    assert_eq!(ack[0].0.ack, fin[0].0.seq + 1);
}

#[test]
fn data_again_with_a_new_fin_is_acked_through_the_fin_late_and_without_dsack() {
    let (mut a, mut b) = pair();
    a.send(&[1; 500]).unwrap();
    let data = out(&mut a, t(1));
    feed(&mut b, t(1), &data);
    assert_eq!(out(&mut b, t(1)).len(), 1, "quick ACK of the data");
    // The same bytes again, now with a FIN.
    let mut again = data[0].clone();
    again.0.flags |= TcpFlags::FIN;
    feed(&mut b, t(500), &[again.clone()]);
    assert!(
        out(&mut b, t(500)).is_empty(),
        "the FIN's ACK waits (pingpong)"
    );
    let ack = out(&mut b, t(540));
    assert_eq!(ack.len(), 1);
    assert_eq!(ack[0].0.ack, again.0.seq + 501, "through the FIN");
    assert_eq!(ack[0].0.options.sack_len, 0, "Linux's tcp_fin resets SACK");
    // Once more: all a duplicate now, FIN included in the D-SACK block.
    feed(&mut b, t(600), &[again.clone()]);
    let dup = out(&mut b, t(600));
    assert_eq!(dup.len(), 1);
    assert_eq!(dup[0].0.options.sack_len, 1);
    assert_eq!(
        dup[0].0.options.sack_blocks[0],
        (again.0.seq, again.0.seq + 501)
    );
}
