//! ICMPv4: parse never panics, with the checksum as given and fixed up;
//! what parses re-emits byte for byte the same message.
#![cfg_attr(fuzzing, no_main)]

use ustack::wire::{Icmpv4Repr, checksum};

/// The property: libFuzzer calls it (built by cargo-fuzz, `cfg(fuzzing)`),
/// and so does the stable run in the suite, `tests/fuzz_targets.rs`.
pub fn run(data: &[u8]) {
    let _ = Icmpv4Repr::parse_bytes(data);
    let mut msg = data.to_vec();
    if msg.len() < 8 {
        return;
    }
    msg[2] = 0;
    msg[3] = 0;
    let sum = !checksum::data(&msg);
    msg[2..4].copy_from_slice(&sum.to_be_bytes());
    let Ok(repr) = Icmpv4Repr::parse_bytes(&msg) else {
        return;
    };
    let mut buf = vec![0; repr.buffer_len()];
    repr.emit(&mut buf).expect("a parsed message re-emits");
    assert_eq!(Icmpv4Repr::parse_bytes(&buf), Ok(repr));
}

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));
