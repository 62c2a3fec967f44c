//! Arbitrary segments never panic, never make the engine emit without
//! bound, and never grow its memory past its configured buffers.
use super::*;
use proptest::prelude::*;

fn any_seg() -> impl Strategy<Value = (TcpRepr, Vec<u8>)> {
    (
        any::<u32>(),
        any::<u32>(),
        any::<u8>(),
        any::<u16>(),
        any::<Option<u16>>(),
        any::<Option<u8>>(),
        any::<Option<(u32, u32)>>(),
        prop::collection::vec(any::<(u32, u32)>(), 0..5),
        prop::collection::vec(any::<u8>(), 0..1500),
        any::<bool>(),
    )
        .prop_map(
            |(seq, ack, flags, window, mss, ws, ts, sack, payload, near)| {
                let mut r = seg(seq, ack, TcpFlags(flags));
                if near {
                    // Land near the live sequence space to reach deep paths.
                    r.seq = ISS_B + 1 + (seq % 70_000);
                    r.ack = ISS_A + 1 + (ack % 3000);
                }
                r.window = window;
                r.options.mss = mss;
                r.options.window_scale = ws;
                r.options.timestamps = ts;
                for (i, b) in sack.iter().take(4).enumerate() {
                    r.options.sack_blocks[i] = *b;
                }
                r.options.sack_len = sack.len() as u8;
                (r, payload)
            },
        )
}

/// A connection in one of the eleven states but LISTEN (the stack's).
fn in_state(which: u8) -> Connection {
    let syn = seg(ISS_B, 0, TcpFlags::SYN);
    match which % 9 {
        0 => {
            let mut a = Connection::connect(cfg(), addr_a(), addr_b(), ISS_A, t(0));
            out(&mut a, t(0));
            a
        }
        1 => {
            let mut b = Connection::accept(cfg(), addr_a(), addr_b(), &syn, ISS_A, t(0));
            out(&mut b, t(0));
            b
        }
        n => {
            let (mut a, mut b) = pair();
            if matches!(n, 2 | 3) {
                a.send(&[1; 3000]).unwrap();
            }
            match n {
                2 => {}
                3 => a.close(),
                4 => {
                    a.close();
                    pump(&mut a, &mut b, t(0));
                }
                5 => {
                    b.close();
                    pump(&mut a, &mut b, t(0));
                    a.send(&[1; 3000]).unwrap();
                }
                6 => {
                    b.close();
                    pump(&mut a, &mut b, t(0));
                    read_all(&mut a);
                    a.close();
                }
                7 => {
                    b.close();
                    a.close();
                    let fb = out(&mut b, t(0));
                    out(&mut a, t(0));
                    feed(&mut a, t(0), &fb);
                }
                _ => {
                    a.close();
                    pump(&mut a, &mut b, t(0));
                    b.close();
                    pump(&mut a, &mut b, t(0));
                }
            }
            a
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn arbitrary_segments_never_panic_or_emit_without_bound(
        which in any::<u8>(),
        segs in prop::collection::vec(any_seg(), 1..40)
    ) {
        let mut a = in_state(which);
        out(&mut a, t(0));
        let mut now = t(1);
        for (r, p) in &segs {
            a.on_segment(now, r, p);
            let emitted = out(&mut a, now).len();
            prop_assert!(emitted <= 64);
            prop_assert!(a.recv_buf.readable() <= a.recv_buf.capacity());
            prop_assert!(a.snd_una <= a.snd_max);
            now += ms(10);
        }
        read_all(&mut a);
        if let Some(at) = a.poll_at() {
            out(&mut a, at.max(now));
        }
    }
}

#[test]
fn hostile_test_covers_every_state_but_listen_and_closed() {
    let states: Vec<State> = (0..9).map(|i| in_state(i).state()).collect();
    assert_eq!(
        states,
        vec![
            State::SynSent,
            State::SynReceived,
            State::Established,
            State::FinWait1,
            State::FinWait2,
            State::CloseWait,
            State::LastAck,
            State::Closing,
            State::TimeWait,
        ]
    );
}
