//! TCP: segment parse (with and without a valid checksum) never panics;
//! a parsed segment re-emits and parses back, SACK blocks that no longer
//! fit being the only thing allowed to shrink.
#![cfg_attr(fuzzing, no_main)]

use ustack::wire::checksum;
use ustack::wire::{IpAddr, IpProtocol, Ipv4Addr, Ipv6Addr, TcpOptions, TcpRepr};

const ADDRS: [(IpAddr, IpAddr); 2] = [
    (
        IpAddr::V4(Ipv4Addr::new(10, 77, 0, 1)),
        IpAddr::V4(Ipv4Addr::new(10, 77, 0, 2)),
    ),
    (
        IpAddr::V6(Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 1)),
        IpAddr::V6(Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 2)),
    ),
];

/// The property: libFuzzer calls it (built by cargo-fuzz, `cfg(fuzzing)`),
/// and so does the stable run in the suite, `tests/fuzz_targets.rs`.
pub fn run(data: &[u8]) {
    let _ = TcpOptions::parse(data);
    let v6 = data.first().is_some_and(|b| b & 1 == 1);
    let (src, dst) = ADDRS[usize::from(v6)];
    let _ = TcpRepr::parse_segment(data, src, dst);
    // Fix up the checksum so parsing reaches the options.
    let mut seg = data.to_vec();
    if seg.len() < 20 {
        return;
    }
    seg[16] = 0;
    seg[17] = 0;
    let Ok(pseudo) = checksum::pseudo_header(src, dst, IpProtocol::Tcp, seg.len()) else {
        return;
    };
    let sum = !checksum::combine(&[pseudo, checksum::data(&seg)]);
    seg[16..18].copy_from_slice(&sum.to_be_bytes());
    let Ok((repr, payload)) = TcpRepr::parse_segment(&seg, src, dst) else {
        return;
    };
    let mut buf = vec![0; repr.buffer_len(payload.len())];
    let n = repr
        .emit(&mut buf, src, dst, payload)
        .expect("a parsed segment re-emits");
    assert!(repr.header_len() <= 60);
    let (again, again_payload) =
        TcpRepr::parse_segment(&buf[..n], src, dst).expect("re-emitted segment parses");
    assert_eq!(again_payload, payload);
    let sent = repr.options.sack_blocks_emitted();
    assert_eq!(again.options.sack(), &repr.options.sack()[..sent]);
    let strip = |r: TcpRepr| TcpRepr {
        options: TcpOptions {
            sack_blocks: [(0, 0); 4],
            sack_len: 0,
            ..r.options
        },
        ..r
    };
    assert_eq!(strip(again), strip(repr));
}

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));
