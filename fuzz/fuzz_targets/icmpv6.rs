//! ICMPv6: parse never panics, with the checksum as given and fixed up;
//! what parses re-emits and parses back the same.
#![cfg_attr(fuzzing, no_main)]

use ustack::wire::{Icmpv6Repr, IpProtocol, Ipv6Addr, checksum};

/// The property: libFuzzer calls it (built by cargo-fuzz, `cfg(fuzzing)`),
/// and so does the stable run in the suite, `tests/fuzz_targets.rs`.
pub fn run(data: &[u8]) {
    let src = Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 1);
    let dst = Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 2);
    let _ = Icmpv6Repr::parse_bytes(data, src, dst);
    let mut msg = data.to_vec();
    if msg.len() < 8 {
        return;
    }
    msg[2] = 0;
    msg[3] = 0;
    let pseudo = checksum::pseudo_header_v6(src, dst, IpProtocol::Icmpv6, msg.len() as u32);
    let sum = !checksum::combine(&[pseudo, checksum::data(&msg)]);
    msg[2..4].copy_from_slice(&sum.to_be_bytes());
    let Ok(repr) = Icmpv6Repr::parse_bytes(&msg, src, dst) else {
        return;
    };
    let mut buf = vec![0; repr.buffer_len()];
    repr.emit(&mut buf, src, dst)
        .expect("a parsed message re-emits");
    assert_eq!(Icmpv6Repr::parse_bytes(&buf, src, dst), Ok(repr));
}

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));
