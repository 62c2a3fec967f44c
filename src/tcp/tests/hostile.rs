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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn arbitrary_segments_never_panic_or_emit_without_bound(
        segs in prop::collection::vec(any_seg(), 1..40)
    ) {
        let (mut a, _b) = pair();
        a.send(&[1; 3000]).unwrap();
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
