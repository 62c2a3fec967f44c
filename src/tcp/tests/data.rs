//! Data transfer, windows, Nagle, delayed ACK, SACK generation, PAWS.
use super::*;
use crate::tcp::TcpError;

#[test]
fn data_flows_both_ways_in_order() {
    let (mut a, mut b) = pair();
    let big: Vec<u8> = (0..50_000u32).map(|i| (i * 7) as u8).collect();
    let mut sent = 0;
    let mut now = t(0);
    let mut got = Vec::new();
    while got.len() < big.len() {
        sent += a.send(&big[sent..]).unwrap();
        b.send(b"x").unwrap();
        pump(&mut a, &mut b, now);
        got.extend(read_all(&mut b));
        now += ms(50);
    }
    assert_eq!(got, big);
    assert!(!read_all(&mut a).is_empty());
}

#[test]
fn window_scale_applies_to_advertised_windows() {
    let mut c = cfg();
    c.recv_buf = 1 << 20;
    let (mut a, mut b) = pair_with(cfg(), c);
    b.send(b"hi").unwrap();
    let o = out(&mut b, t(1));
    // 1 MiB with shift 5 is advertised as 32768.
    assert_eq!(o[0].0.window, 32768);
    feed(&mut a, t(1), &o);
    assert_eq!(a.snd_wnd, 1 << 20);
}

#[test]
fn sender_never_exceeds_the_peer_window() {
    let mut c = cfg();
    c.recv_buf = 3000;
    let (mut a, mut b) = pair_with(cfg(), c);
    a.send(&[1; 10_000]).unwrap();
    let o = out(&mut a, t(1));
    let bytes: usize = o.iter().map(|s| s.1.len()).sum();
    assert_eq!(bytes, 3000);
    feed(&mut b, t(1), &o);
    // B's buffer is full: it advertises a zero window.
    let ack = out(&mut b, t(1));
    assert_eq!(ack.last().unwrap().0.window, 0);
    feed(&mut a, t(1), &ack);
    assert!(out(&mut a, t(2)).is_empty());
}

#[test]
fn reading_reopens_the_window_with_an_update() {
    let mut c = cfg();
    c.recv_buf = 4000;
    let (mut a, mut b) = pair_with(cfg(), c);
    a.send(&[1; 4000]).unwrap();
    pump(&mut a, &mut b, t(1));
    assert_eq!(b.rcv_adv.since(b.rcv_nxt), 0);
    let mut buf = [0; 500];
    b.recv(&mut buf).unwrap();
    // 500 bytes is less than min(buf/2, MSS): no update (receiver SWS).
    assert!(out(&mut b, t(2)).is_empty());
    let mut buf = [0; 2000];
    b.recv(&mut buf).unwrap();
    let o = out(&mut b, t(2));
    assert_eq!(o.len(), 1);
    assert_eq!(o[0].0.window, 2500);
}

#[test]
fn nagle_holds_a_small_segment_while_data_is_unacknowledged() {
    let (mut a, _b) = pair();
    a.send(b"first").unwrap();
    assert_eq!(out(&mut a, t(1)).len(), 1);
    a.send(b"second").unwrap();
    assert!(out(&mut a, t(1)).is_empty());
    let mut c = cfg();
    c.nodelay = true;
    let (mut a, _b) = pair_with(c, cfg());
    a.send(b"first").unwrap();
    assert_eq!(out(&mut a, t(1)).len(), 1);
    a.send(b"second").unwrap();
    assert_eq!(out(&mut a, t(1)).len(), 1);
}

#[test]
fn delayed_ack_waits_40ms_for_one_segment_and_acks_every_second_full_one() {
    let (mut a, mut b) = pair();
    // Past the quick-ACK start (below).
    b.ack.quickacks = 0;
    a.send(&[7; 500]).unwrap();
    feed(&mut b, t(1), &out(&mut a, t(1)));
    assert!(out(&mut b, t(1)).is_empty());
    assert_eq!(b.poll_at(), Some(t(41)));
    let o = out(&mut b, t(41));
    assert_eq!(o.len(), 1);
    assert_eq!(o[0].0.ack, ISS_A + 501);

    a.send(&[7; 2000]).unwrap();
    let data = out(&mut a, t(50));
    assert_eq!(data.len(), 2);
    feed(&mut b, t(50), &data[..1]);
    assert!(out(&mut b, t(50)).is_empty());
    feed(&mut b, t(50), &data[1..]);
    assert_eq!(out(&mut b, t(50)).len(), 1);
}

#[test]
fn a_new_connection_acks_its_first_sixteen_data_segments_at_once() {
    // Linux's quick-ACK start; packetdrill's shutdown-wr-close and
    // reset_tsval expect the first data segment ACKed with no delay.
    let (mut a, mut b) = pair();
    for i in 0..16u32 {
        let now = t(1 + u64::from(i));
        a.send(&[7; 100]).unwrap();
        let data = out(&mut a, now);
        assert_eq!(data.len(), 1);
        feed(&mut b, now, &data);
        let o = out(&mut b, now);
        assert_eq!(o.len(), 1, "segment {i} ACKed at once");
        assert_eq!(o[0].0.ack, ISS_A + 1 + 100 * (i + 1));
        feed(&mut a, now, &o);
    }
    // The seventeenth waits for the delayed-ACK timer.
    a.send(&[7; 100]).unwrap();
    feed(&mut b, t(20), &out(&mut a, t(20)));
    assert!(out(&mut b, t(20)).is_empty());
    assert_eq!(b.poll_at(), Some(t(60)));
}

#[test]
fn replying_right_after_data_ends_the_quick_ack_start() {
    let (mut a, mut b) = pair();
    a.send(b"request").unwrap();
    feed(&mut b, t(1), &out(&mut a, t(1)));
    // B answers within the delayed-ACK time: its ACK rides on the reply,
    // and the next request waits for the delayed-ACK timer (or a reply).
    b.send(b"reply").unwrap();
    let o = out(&mut b, t(2));
    assert_eq!(o.len(), 1);
    assert_eq!(o[0].1, b"reply");
    feed(&mut a, t(3), &o);
    a.send(b"request 2").unwrap();
    feed(&mut b, t(4), &out(&mut a, t(4)));
    assert!(out(&mut b, t(4)).is_empty());
    assert_eq!(b.poll_at(), Some(t(44)));
}

#[test]
fn reading_sends_a_window_update_only_when_the_window_doubles() {
    // packetdrill's blocking-read: a reader draining two segments' worth
    // of a large window sends no update of its own (Linux's
    // tcp_cleanup_rbuf); the window grew by more than 2 MSS, so the SWS
    // threshold alone would have sent one.
    let (mut a, mut b) = pair();
    a.send(&[1; 4000]).unwrap();
    let data = out(&mut a, t(1));
    feed(&mut b, t(1), &data);
    assert!(!out(&mut b, t(1)).is_empty(), "the data's ACKs");
    assert_eq!(read_all(&mut b).len(), 4000);
    assert!(out(&mut b, t(1)).is_empty(), "no window update");
}

#[test]
fn out_of_order_segment_is_acked_at_once_with_a_sack_block() {
    let (mut a, mut b) = pair();
    a.send(&[1; 3000]).unwrap();
    let data = out(&mut a, t(1));
    assert_eq!(data.len(), 3);
    feed(&mut b, t(1), &data[2..]);
    let o = out(&mut b, t(1));
    assert_eq!(o.len(), 1);
    assert_eq!(o[0].0.ack, ISS_A + 1);
    assert_eq!(o[0].0.options.sack(), &[(ISS_A + 2001, ISS_A + 3001)]);
    feed(&mut b, t(2), &data[..2]);
    assert_eq!(read_all(&mut b).len(), 3000);
}

#[test]
fn duplicate_segment_is_reported_with_a_dsack_block() {
    let (mut a, mut b) = pair();
    a.send(&[1; 100]).unwrap();
    let data = out(&mut a, t(1));
    feed(&mut b, t(1), &data);
    feed(&mut b, t(1), &data);
    let o = out(&mut b, t(1));
    assert_eq!(o[0].0.options.sack(), &[(ISS_A + 1, ISS_A + 101)]);
}

#[test]
fn gaps_anywhere_in_the_window_reassemble() {
    let (mut a, mut b) = pair();
    let msg: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    a.send(&msg).unwrap();
    let mut now = t(1);
    let mut data = Vec::new();
    while data.len() < 10 {
        data.extend(out(&mut a, now));
        let ack = seg(ISS_B + 1, a.snd_max.0, TcpFlags::ACK);
        feed(&mut a, now, &[(ack, vec![])]);
        now += ms(1);
    }
    // Deliver odd segments first, then even ones backwards.
    let order: Vec<usize> = (0..10)
        .filter(|i| i % 2 == 1)
        .chain((0..10).step_by(2).rev())
        .collect();
    for i in order {
        feed(&mut b, now, &data[i..=i]);
    }
    assert_eq!(read_all(&mut b), msg);
}

#[test]
fn paws_drops_a_segment_with_an_older_timestamp() {
    let mut c = cfg();
    c.timestamps = true;
    let (mut a, mut b) = pair_with(c.clone(), c);
    a.send(b"new").unwrap();
    let mut data = out(&mut a, t(500));
    let ts = data[0].0.options.timestamps.unwrap();
    feed(&mut b, t(500), &data);
    assert_eq!(read_all(&mut b), b"new");
    data[0].0.seq += 3;
    data[0].0.options.timestamps = Some((ts.0.wrapping_sub(100), ts.1));
    feed(&mut b, t(501), &data);
    assert_eq!(b.recv(&mut [0; 8]), Err(TcpError::WouldBlock));
    assert_eq!(b.counters().dropped, 1);
}

#[test]
fn recv_reports_would_block_then_eof_after_fin() {
    let (mut a, mut b) = pair();
    assert_eq!(b.recv(&mut [0; 8]), Err(TcpError::WouldBlock));
    a.shutdown_write();
    pump(&mut a, &mut b, t(1));
    assert!(b.recv_closed());
    assert_eq!(b.recv(&mut [0; 8]), Ok(0));
    assert_eq!(a.send(b"late"), Err(TcpError::NotConnected));
}

/// A bulk transfer A -> B over a 10 ms RTT, B reading everything at once.
fn bulk(a: &mut Connection, b: &mut Connection, bytes: usize) -> usize {
    let data = vec![7u8; bytes];
    let (mut sent, mut got) = (0, 0);
    let mut now = t(0);
    while got < bytes && now < t(600_000) {
        sent += a.send(&data[sent..]).unwrap();
        let to_b = out(a, now);
        feed(b, now + ms(5), &to_b);
        got += read_all(b).len();
        let to_a = out(b, now + ms(5));
        feed(a, now + ms(10), &to_a);
        now += ms(10);
    }
    got
}

#[test]
fn receive_buffer_grows_while_the_application_keeps_up() {
    let mut c = cfg();
    c.recv_buf = 16 * 1024;
    c.recv_buf_max = 1 << 20;
    let (mut a, mut b) = pair_with(cfg(), c);
    assert_eq!(bulk(&mut a, &mut b, 2_000_000), 2_000_000);
    let (_, rcvbuf) = b.buffer_sizes();
    assert!(rcvbuf > 16 * 1024, "grew to {rcvbuf}");
    assert!(rcvbuf <= 1 << 20);
    assert!(
        a.snd_wnd > 16 * 1024,
        "the larger window reached the sender"
    );
}

#[test]
fn receive_buffer_stays_put_for_a_slow_reader() {
    let mut c = cfg();
    c.recv_buf = 16 * 1024;
    c.recv_buf_max = 1 << 20;
    let (mut a, mut b) = pair_with(cfg(), c);
    a.send(&[1; 100_000]).unwrap();
    let mut now = t(0);
    for _ in 0..100 {
        pump(&mut a, &mut b, now);
        // 1 KB per 100 ms: far below what the window allows.
        let mut buf = [0; 1000];
        let _ = b.recv(&mut buf);
        now += ms(100);
    }
    assert_eq!(b.buffer_sizes().1, 16 * 1024);
}

#[test]
fn send_buffer_grows_with_cwnd() {
    let mut c = cfg();
    c.send_buf = 16 * 1024;
    c.send_buf_max = 1 << 20;
    let (mut a, mut b) = pair_with(c, cfg());
    bulk(&mut a, &mut b, 500_000);
    let (sndbuf, _) = a.buffer_sizes();
    assert!(
        sndbuf >= 2 * a.cwnd() as usize || sndbuf == 1 << 20,
        "{sndbuf}"
    );
    assert!(sndbuf > 16 * 1024);
}

#[test]
fn bare_ack_at_the_right_edge_of_a_full_window_is_taken() {
    let mut ca = cfg();
    ca.sack = false; // no tail loss probe in the way
    let mut cb = ca.clone();
    cb.recv_buf = 2000;
    let (mut a, mut b) = pair_with(ca, cb);
    // A fills B's window; the first segment is lost.
    a.send(&[1; 2000]).unwrap();
    let data = out(&mut a, t(1));
    assert_eq!(data.len(), 2);
    assert_eq!(
        data[1].0.seq + 1000,
        b.rcv_adv.0,
        "A's data reaches B's edge"
    );
    feed(&mut b, t(1), &data[1..]);
    out(&mut b, t(1));
    // B sends data; A's delayed bare ACK of it carries snd_max, which is
    // exactly B's right edge.
    b.send(b"reply").unwrap();
    feed(&mut a, t(2), &out(&mut b, t(2)));
    let ack = out(&mut a, t(42));
    assert_eq!(ack.len(), 1);
    assert!(ack[0].1.is_empty());
    assert_eq!(ack[0].0.seq, b.rcv_adv.0);
    feed(&mut b, t(42), &ack);
    assert_eq!(b.snd_una, b.snd_max, "B took the acknowledgement");
}

#[test]
fn out_of_window_bare_acks_are_answered_at_most_every_500ms() {
    let (_a, mut b) = pair();
    let far = seg(b.rcv_nxt.0 + 1_000_000, b.snd_max.0, TcpFlags::ACK);
    let mut far = far;
    far.src_port = 40000;
    far.dst_port = 80;
    let mut answers = 0;
    for i in 0..10 {
        b.on_segment(t(10 * i), &far, &[]);
        answers += out(&mut b, t(10 * i)).len();
    }
    assert_eq!(answers, 1);
    b.on_segment(t(600), &far, &[]);
    assert_eq!(out(&mut b, t(600)).len(), 1);
    // A keepalive-style probe is always answered.
    let probe = seg(b.rcv_nxt.0 - 1, b.snd_max.0, TcpFlags::ACK);
    let mut probe = probe;
    probe.src_port = 40000;
    probe.dst_port = 80;
    b.on_segment(t(601), &probe, &[]);
    assert_eq!(out(&mut b, t(601)).len(), 1);
}

#[test]
fn tso_sends_super_segments_of_whole_mss_pieces_within_cwnd_and_window() {
    let mut ca = cfg();
    ca.tso_max = 20_000;
    let (mut a, mut b) = pair_with(ca, cfg());
    let mss = a.mss() as usize;
    let data: Vec<u8> = (0..60_000u32).map(|i| (i * 11) as u8).collect();
    let mut sent = a.send(&data).unwrap();
    let first = out(&mut a, t(1));
    // The initial window (10 segments, RFC 6928) in super-segments: never
    // more than tso_max, each a whole number of MSS pieces.
    let bytes: usize = first.iter().map(|s| s.1.len()).sum();
    assert_eq!(bytes, 10 * mss, "cwnd still counts segments");
    assert!(first.iter().any(|s| s.1.len() > mss), "{:?}", lens(&first));
    for s in &first {
        assert!(
            s.1.len() <= 20_000 && s.1.len() % mss == 0,
            "{:?}",
            lens(&first)
        );
    }
    feed(&mut b, t(1), &first);
    let mut got = read_all(&mut b);
    let mut now = t(2);
    while got.len() < data.len() {
        sent += a.send(&data[sent..]).unwrap();
        pump(&mut a, &mut b, now);
        got.extend(read_all(&mut b));
        now += ms(10);
    }
    assert_eq!(got, data);
}

#[test]
fn tso_stays_off_while_the_peer_takes_less_than_our_mss() {
    let mut ca = cfg();
    ca.tso_max = 20_000;
    let cb = TcpConfig { mss: 500, ..cfg() };
    let (mut a, _b) = pair_with(ca, cb);
    a.send(&[7; 20_000]).unwrap();
    let o = out(&mut a, t(1));
    assert!(o.iter().all(|s| s.1.len() <= 500), "{:?}", lens(&o));
}

fn lens(segs: &[Seg]) -> Vec<usize> {
    segs.iter().map(|s| s.1.len()).collect()
}

#[test]
fn full_sized_data_segments_leave_out_sack_blocks_that_would_exceed_the_mss() {
    // Timestamps on both sides, so the MSS is cut by 12 bytes for them.
    let mut ca = cfg();
    ca.timestamps = true;
    let mut cb = cfg();
    cb.timestamps = true;
    let (mut a, mut b) = pair_with(ca, cb);
    // B holds out-of-order data from A, so it has SACK blocks to report.
    a.send(&[1; 3000]).unwrap();
    let from_a = out(&mut a, t(1));
    feed(&mut b, t(1), &from_a[2..]);
    let _ = out(&mut b, t(1));
    // B now sends full-sized data: every segment's options plus payload
    // must fit the peer's MSS plus the timestamp allowance.
    b.send(&[2; 5000]).unwrap();
    let segs = out(&mut b, t(2));
    let mss_with_ts = b.mss() as usize + 12;
    assert!(segs.iter().any(|(_, p)| p.len() == b.mss() as usize));
    for (repr, payload) in &segs {
        let options = repr.header_len() - 20;
        assert!(
            options + payload.len() <= mss_with_ts,
            "{} option bytes + {} payload > {mss_with_ts}",
            options,
            payload.len()
        );
    }
    // A pure ACK still carries them: the urgent one a duplicate draws.
    feed(&mut b, t(60), &from_a[2..3]);
    let mut ack = Vec::new();
    b.poll_urgent_ack(t(60), |r, p| ack.push((*r, p.to_vec())));
    assert_eq!(ack.len(), 1);
    assert!(
        ack.iter()
            .any(|(r, p)| p.is_empty() && !r.options.sack().is_empty())
    );
}

/// A connection whose first scaled window is open, with IW10 in flight.
fn iw10_sender() -> Connection {
    let (mut a, _b) = pair();
    let mut update = seg(ISS_B + 1, ISS_A + 1, TcpFlags::ACK);
    update.window = 65535;
    a.on_segment(t(1), &update, &[]);
    a.send(&[5; 10_000]).unwrap();
    assert_eq!(out(&mut a, t(1)).len(), 10);
    a
}

#[test]
fn slow_start_counts_up_to_two_segments_per_ack_and_grows_while_below_twice_the_flight() {
    // RFC 3465 (L = 2*SMSS) and Linux's tcp_is_cwnd_limited: packetdrill's
    // slow-start-app-limited expects cwnd 12, 14, ... 20 segments as
    // delayed ACKs of two segments drain a 10-segment flight.
    let mut a = iw10_sender();
    let mss = a.mss();
    assert_eq!(a.cwnd(), 10 * mss);
    for (i, acked) in [2001u32, 4001, 6001, 8001, 10001].into_iter().enumerate() {
        let ack = seg(ISS_B + 1, ISS_A + acked, TcpFlags::ACK);
        a.on_segment(t(100 + i as u64), &ack, &[]);
        assert_eq!(a.cwnd(), (12 + 2 * i as u32) * mss, "after ack {acked}");
    }
}

#[test]
fn an_application_limited_flow_does_not_grow_cwnd_in_slow_start() {
    let (mut a, _b) = pair();
    let mss = a.mss();
    let before = a.cwnd();
    for i in 0..20u64 {
        // Two segments at a time: never near the 10-segment window.
        a.send(&[5; 2000]).unwrap();
        let data = out(&mut a, t(10 * i + 1));
        assert_eq!(data.len(), 2);
        let ack = seg(ISS_B + 1, a.snd_max.0, TcpFlags::ACK);
        a.on_segment(t(10 * i + 5), &ack, &[]);
    }
    assert_eq!(a.cwnd(), before, "cwnd {} MSS", a.cwnd() / mss);
}

#[test]
fn inq_counts_unread_bytes_and_one_for_a_received_fin() {
    let (mut a, mut b) = pair();
    a.send(&[7; 300]).unwrap();
    a.close();
    pump(&mut a, &mut b, t(1));
    assert_eq!(b.recv_queue(), 300);
    assert_eq!(b.inq(), 301, "the FIN counts, as in rcv_nxt");
    let mut buf = [0u8; 100];
    assert_eq!(b.recv(&mut buf), Ok(100));
    assert_eq!(b.inq(), 201);
    read_all(&mut b);
    assert_eq!(b.inq(), 1, "all read: 1 tells the reader to read the end");
}

#[test]
fn inq_is_zero_with_nothing_to_read_and_no_fin() {
    let (mut a, mut b) = pair();
    assert_eq!(b.inq(), 0);
    a.send(&[1; 10]).unwrap();
    pump(&mut a, &mut b, t(1));
    assert_eq!(b.inq(), 10);
}

#[test]
fn a_read_sends_no_window_update_beyond_what_the_window_field_can_say() {
    // No window scaling: the field tops out at 65535, below the buffer.
    let mut c = cfg();
    c.window_scaling = false;
    c.recv_buf = 256 * 1024;
    let (mut a, mut b) = pair_with(cfg(), c);
    a.send(&[1; 100]).unwrap();
    pump(&mut a, &mut b, t(1));
    let mut buf = [0u8; 200];
    assert_eq!(b.recv(&mut buf), Ok(100));
    assert!(out(&mut b, t(2)).is_empty(), "65435 -> 65535 is no update");
}
