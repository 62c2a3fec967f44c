//! IPv4: any bytes through new_checked/parse must not panic; whatever
//! parses must survive emit and parse back unchanged.
#![cfg_attr(fuzzing, no_main)]

use ustack::wire::{Ipv4Packet, Ipv4Repr};

/// The property: libFuzzer calls it (built by cargo-fuzz, `cfg(fuzzing)`),
/// and so does the stable run in the suite, `tests/fuzz_targets.rs`.
pub fn run(data: &[u8]) {
    let _ = Ipv4Packet::new_truncated(data).map(|p| p.payload().len());
    let Ok(packet) = Ipv4Packet::new_checked(data) else {
        return;
    };
    let _ = (packet.options(), packet.is_fragment());
    let Ok(repr) = Ipv4Repr::parse(&packet) else {
        return;
    };
    assert_eq!(repr.payload_len, packet.payload().len());
    let mut buf = vec![0; repr.buffer_len()];
    repr.emit(&mut buf).expect("a parsed header re-emits");
    let again =
        Ipv4Repr::parse(&Ipv4Packet::new_checked(&buf[..]).expect("re-emitted header checks"));
    assert_eq!(again, Ok(repr));
}

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));
