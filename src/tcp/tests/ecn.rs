//! Explicit Congestion Notification (RFC 3168 section 6.1): negotiation,
//! ECT marking, the receiver's echo and the sender's reduction.
use super::*;
use crate::tcp::Ecn;

fn with_ecn(ecn: Ecn) -> TcpConfig {
    TcpConfig { ecn, ..cfg() }
}

/// The handshake between an A and a B configured so; returns A's SYN and
/// B's SYN-ACK too.
fn handshake(a_ecn: Ecn, b_ecn: Ecn) -> (Connection, Connection, Seg, Seg) {
    let now = t(0);
    let mut a = Connection::connect(with_ecn(a_ecn), addr_a(), addr_b(), ISS_A, now);
    let syn = out(&mut a, now).remove(0);
    let mut b = Connection::accept(with_ecn(b_ecn), addr_b(), addr_a(), &syn.0, ISS_B, now);
    let syn_ack = out(&mut b, now).remove(0);
    feed(&mut a, now, std::slice::from_ref(&syn_ack));
    pump(&mut a, &mut b, now);
    assert_eq!(a.state(), State::Established);
    assert_eq!(b.state(), State::Established);
    (a, b, syn, syn_ack)
}

/// Sends everything A has through `poll_transmit_ect`, returning each
/// segment with its ECT verdict.
fn out_ect(c: &mut Connection, now: Instant) -> Vec<(Seg, bool)> {
    let mut v = Vec::new();
    c.poll_transmit_ect(now, |r, p, ect| v.push(((*r, p.to_vec()), ect)));
    v
}

const ECE: TcpFlags = TcpFlags::ECE;
const CWR: TcpFlags = TcpFlags::CWR;

#[test]
fn an_ecn_setup_syn_is_answered_by_an_ecn_setup_syn_ack_and_both_ends_agree() {
    let (a, b, syn, syn_ack) = handshake(Ecn::On, Ecn::Accept);
    assert!(syn.0.flags.contains(ECE | CWR));
    assert!(syn_ack.0.flags.contains(ECE));
    assert!(!syn_ack.0.flags.contains(CWR));
    assert!(a.ecn.agreed && b.ecn.agreed);
}

#[test]
fn no_ecn_unless_one_end_asks_and_the_other_accepts() {
    // The default only accepts: nobody asks.
    let (a, b, syn, _) = handshake(Ecn::Accept, Ecn::Accept);
    assert!(!syn.0.flags.intersects(ECE | CWR));
    assert!(!a.ecn.agreed && !b.ecn.agreed);
    // Asked, refused: a SYN-ACK without ECE.
    let (a, b, _, syn_ack) = handshake(Ecn::On, Ecn::Off);
    assert!(!syn_ack.0.flags.intersects(ECE | CWR));
    assert!(!a.ecn.agreed && !b.ecn.agreed);
    // Nor is data marked ECT.
    let (mut a, _, _, _) = handshake(Ecn::Accept, Ecn::On);
    a.send(b"data").unwrap();
    assert!(out_ect(&mut a, t(1)).iter().all(|(_, ect)| !ect));
}

#[test]
fn a_retransmitted_syn_goes_without_the_ecn_setup_flags() {
    let mut a = Connection::connect(with_ecn(Ecn::On), addr_a(), addr_b(), ISS_A, t(0));
    assert!(out(&mut a, t(0))[0].0.flags.contains(ECE | CWR));
    let rto = a.poll_at().unwrap();
    let again = out(&mut a, rto);
    assert!(again[0].0.flags.contains(TcpFlags::SYN));
    assert!(!again[0].0.flags.intersects(ECE | CWR));
    // A late ECN-setup SYN-ACK to the first SYN no longer turns ECN on.
    let mut syn_ack = seg(ISS_B, ISS_A + 1, TcpFlags::SYN | TcpFlags::ACK | ECE);
    syn_ack.window = 65535;
    a.on_segment(rto, &syn_ack, &[]);
    assert_eq!(a.state(), State::Established);
    assert!(!a.ecn.agreed);
}

#[test]
fn new_data_goes_ect_but_not_pure_acks_or_retransmissions() {
    let (mut a, mut b, _, _) = handshake(Ecn::On, Ecn::Accept);
    a.send(&[1; 3000]).unwrap();
    let first = out_ect(&mut a, t(1));
    assert_eq!(first.len(), 3);
    assert!(first.iter().all(|(_, ect)| *ect));
    // The whole flight is lost: what the RTO resends is not ECT.
    let rto = a.poll_at().unwrap();
    let mut probe_or_rto = out_ect(&mut a, rto);
    while probe_or_rto.is_empty() {
        let next = a.poll_at().unwrap();
        probe_or_rto = out_ect(&mut a, next);
    }
    assert!(probe_or_rto.iter().all(|(_, ect)| !ect));
    // B's pure ACKs are never ECT.
    feed(&mut b, t(2), &[first[0].0.clone()]);
    let acks = out_ect(&mut b, t(2));
    assert!(!acks.is_empty());
    assert!(acks.iter().all(|((_, p), ect)| p.is_empty() && !ect));
}

#[test]
fn ce_is_echoed_on_every_ack_until_cwr_and_the_sender_reduces_once_per_window() {
    let (mut a, mut b, _, _) = handshake(Ecn::On, Ecn::Accept);
    a.send(&[1; 4000]).unwrap();
    let flight = out(&mut a, t(1));
    assert_eq!(flight.len(), 4);
    // The first segment arrives CE-marked: B ACKs at once with ECE, and
    // keeps setting ECE on the ACKs after it.
    b.on_segment_ce(t(2), &flight[0].0, &flight[0].1, true);
    let ack1 = out(&mut b, t(2));
    assert_eq!(ack1.len(), 1);
    assert!(ack1[0].0.flags.contains(ECE));
    feed(&mut b, t(2), &flight[1..]);
    let acks = out(&mut b, t(2));
    assert!(!acks.is_empty() && acks.iter().all(|s| s.0.flags.contains(ECE)));
    // A reduces once for the window, however many ECEs come back.
    let before = a.cwnd();
    feed(&mut a, t(3), &ack1);
    // Linux's CWR state, until the window sent by then is acknowledged.
    assert_eq!(a.ca_state(), crate::tcp::CaState::Cwr);
    feed(&mut a, t(3), &acks);
    assert!(a.cwnd() < before, "{} !< {before}", a.cwnd());
    assert_eq!(a.counters().ecn_reductions, 1);
    assert_eq!(a.counters().fast_retransmits, 0);
    assert!(a.options_in_use().ecn && b.options_in_use().ecn);
    // Its next new data carries CWR; B stops echoing.
    a.send(&[2; 1000]).unwrap();
    let next = out(&mut a, t(3));
    assert!(next[0].0.flags.contains(CWR));
    feed(&mut b, t(4), &next);
    b.send(b"reply").unwrap();
    let after = out(&mut b, t(4));
    assert!(!after.is_empty() && after.iter().all(|s| !s.0.flags.contains(ECE)));
    feed(&mut a, t(5), &after);
    assert_eq!(a.ca_state(), crate::tcp::CaState::Open);
}

#[test]
fn without_agreement_ce_and_ece_are_ignored() {
    let (mut a, mut b, _, _) = handshake(Ecn::Accept, Ecn::Accept);
    a.send(&[1; 1000]).unwrap();
    let data = out(&mut a, t(1));
    b.on_segment_ce(t(2), &data[0].0, &data[0].1, true);
    let mut acks = out(&mut b, t(42));
    assert!(acks.iter().all(|s| !s.0.flags.contains(ECE)));
    // A forged ECE changes nothing either.
    acks[0].0.flags |= ECE;
    let before = a.cwnd();
    feed(&mut a, t(43), &acks);
    assert_eq!(a.counters().ecn_reductions, 0);
    assert!(a.cwnd() >= before);
}
