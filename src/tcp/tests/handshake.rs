use super::*;
use crate::tcp::{IcmpError, TcpError};

#[test]
fn active_open_sends_syn_with_options_and_establishes_on_syn_ack() {
    let mut a = Connection::connect(cfg(), addr_a(), addr_b(), ISS_A, t(0));
    let syn = out(&mut a, t(0));
    assert_eq!(syn.len(), 1);
    let (r, p) = &syn[0];
    assert_eq!(r.flags, TcpFlags::SYN);
    assert_eq!(r.seq, ISS_A);
    assert!(p.is_empty());
    assert_eq!(r.options.mss, Some(1000));
    assert!(r.options.sack_permitted);
    assert!(r.options.window_scale.is_some());
    let mut synack = seg(ISS_B, ISS_A + 1, TcpFlags::SYN | TcpFlags::ACK);
    synack.options.mss = Some(500);
    a.on_segment(t(10), &synack, &[]);
    assert_eq!(a.state(), State::Established);
    assert_eq!(a.mss(), 500);
    let ack = out(&mut a, t(10));
    assert_eq!(ack.len(), 1);
    assert_eq!(ack[0].0.flags, TcpFlags::ACK);
    assert_eq!((ack[0].0.seq, ack[0].0.ack), (ISS_A + 1, ISS_B + 1));
}

#[test]
fn passive_open_answers_syn_ack_and_establishes_on_ack() {
    let mut syn = seg(ISS_A, 0, TcpFlags::SYN);
    syn.src_port = 40000;
    syn.dst_port = 80;
    let mut b = Connection::accept(cfg(), addr_b(), addr_a(), &syn, ISS_B, t(0));
    assert_eq!(b.state(), State::SynReceived);
    let synack = out(&mut b, t(0));
    assert_eq!(synack.len(), 1);
    assert_eq!(synack[0].0.flags, TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!((synack[0].0.seq, synack[0].0.ack), (ISS_B, ISS_A + 1));
    // The SYN offered no options, so the SYN-ACK offers none back.
    assert_eq!(synack[0].0.options.window_scale, None);
    assert!(!synack[0].0.options.sack_permitted);
    b.on_segment(t(5), &seg(ISS_A + 1, ISS_B + 1, TcpFlags::ACK), &[]);
    assert_eq!(b.state(), State::Established);
}

#[test]
fn ack_of_wrong_number_in_syn_received_gets_rst() {
    let syn = seg(ISS_A, 0, TcpFlags::SYN);
    let mut b = Connection::accept(cfg(), addr_b(), addr_a(), &syn, ISS_B, t(0));
    out(&mut b, t(0));
    b.on_segment(t(1), &seg(ISS_A + 1, ISS_B + 77, TcpFlags::ACK), &[]);
    assert_eq!(b.state(), State::SynReceived);
    let rst = out(&mut b, t(1));
    assert_eq!(rst[0].0.flags, TcpFlags::RST);
    assert_eq!(rst[0].0.seq, ISS_B + 77);
}

#[test]
fn simultaneous_open_reaches_established_on_both_sides() {
    let mut a = Connection::connect(cfg(), addr_a(), addr_b(), ISS_A, t(0));
    let mut b = Connection::connect(cfg(), addr_b(), addr_a(), ISS_B, t(0));
    let syn_a = out(&mut a, t(0));
    let syn_b = out(&mut b, t(0));
    feed(&mut a, t(1), &syn_b);
    feed(&mut b, t(1), &syn_a);
    assert_eq!(a.state(), State::SynReceived);
    assert_eq!(b.state(), State::SynReceived);
    pump(&mut a, &mut b, t(2));
    assert_eq!(a.state(), State::Established);
    assert_eq!(b.state(), State::Established);
    a.send(b"ping").unwrap();
    pump(&mut a, &mut b, t(3));
    assert_eq!(read_all(&mut b), b"ping");
}

#[test]
fn syn_ack_with_unacceptable_ack_in_syn_sent_gets_rst_from_its_ack() {
    let mut a = Connection::connect(cfg(), addr_a(), addr_b(), ISS_A, t(0));
    out(&mut a, t(0));
    a.on_segment(
        t(1),
        &seg(ISS_B, ISS_A + 9, TcpFlags::SYN | TcpFlags::ACK),
        &[],
    );
    assert_eq!(a.state(), State::SynSent);
    let rst = out(&mut a, t(1));
    assert_eq!(rst.len(), 1);
    assert_eq!((rst[0].0.flags, rst[0].0.seq), (TcpFlags::RST, ISS_A + 9));
}

#[test]
fn rst_with_acceptable_ack_in_syn_sent_refuses_the_connection() {
    let mut a = Connection::connect(cfg(), addr_a(), addr_b(), ISS_A, t(0));
    out(&mut a, t(0));
    a.on_segment(t(1), &seg(0, ISS_A + 1, TcpFlags::RST), &[]);
    assert_eq!(a.state(), State::SynSent, "RST without ACK is ignored");
    a.on_segment(t(1), &seg(0, ISS_A + 1, TcpFlags::RST | TcpFlags::ACK), &[]);
    assert_eq!(a.state(), State::Closed);
    assert_eq!(a.take_error(), Some(TcpError::ConnectionRefused));
}

#[test]
fn syn_is_retransmitted_with_backoff_then_connect_times_out() {
    let mut c = cfg();
    c.syn_retries = 3;
    let mut a = Connection::connect(c, addr_a(), addr_b(), ISS_A, t(0));
    out(&mut a, t(0));
    let mut now = t(0);
    let mut gaps = Vec::new();
    while let Some(at) = a.poll_at() {
        gaps.push((at - now).as_millis());
        now = at;
        let segs = out(&mut a, now);
        if a.is_closed() {
            assert!(segs.is_empty());
            break;
        }
        assert_eq!(segs[0].0.flags, TcpFlags::SYN);
        assert_eq!(segs[0].0.seq, ISS_A);
    }
    assert_eq!(gaps, vec![1000, 2000, 4000, 8000]);
    assert_eq!(a.take_error(), Some(TcpError::TimedOut));
}

#[test]
fn icmp_unreachable_fails_a_connect_but_not_an_established_connection() {
    let mut a = Connection::connect(cfg(), addr_a(), addr_b(), ISS_A, t(0));
    out(&mut a, t(0));
    a.on_icmp(t(1), IcmpError::HostUnreachable);
    assert_eq!(a.take_error(), Some(TcpError::HostUnreachable));
    assert!(a.is_closed());
    let (mut a, _b) = pair();
    a.on_icmp(t(1), IcmpError::PortUnreachable);
    assert_eq!(a.state(), State::Established);
}

#[test]
fn icmp_network_unreachable_fails_a_connect_as_no_route() {
    // Linux's connect without a route is ENETUNREACH, not EHOSTUNREACH.
    let mut a = Connection::connect(cfg(), addr_a(), addr_b(), ISS_A, t(0));
    out(&mut a, t(0));
    a.on_icmp(t(1), IcmpError::NetUnreachable);
    assert_eq!(a.take_error(), Some(TcpError::NetUnreachable));
    assert!(a.is_closed());
    let (mut a, _b) = pair();
    a.on_icmp(t(1), IcmpError::NetUnreachable);
    assert_eq!(a.state(), State::Established);
}

#[test]
fn retransmitted_syn_in_syn_received_resends_the_syn_ack() {
    let syn = seg(ISS_A, 0, TcpFlags::SYN);
    let mut b = Connection::accept(cfg(), addr_b(), addr_a(), &syn, ISS_B, t(0));
    out(&mut b, t(0));
    b.on_segment(t(300), &syn, &[]);
    let o = out(&mut b, t(300));
    assert_eq!(o.len(), 1);
    assert_eq!(o[0].0.flags, TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!(b.counters().retransmits, 1);
}
