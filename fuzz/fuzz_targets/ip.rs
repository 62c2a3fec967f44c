//! parse_ip / parse_ip_quoted: never panic, and the header and payload they
//! report always lie inside the input.
#![cfg_attr(fuzzing, no_main)]

use ustack::wire::{parse_ip, parse_ip_quoted};

/// The property: libFuzzer calls it (built by cargo-fuzz, `cfg(fuzzing)`),
/// and so does the stable run in the suite, `tests/fuzz_targets.rs`.
pub fn run(data: &[u8]) {
    for view in [parse_ip(data), parse_ip_quoted(data)]
        .into_iter()
        .flatten()
    {
        assert!(view.header_len + view.payload.len() <= data.len());
        assert_eq!(view.src.is_ipv6(), view.dst.is_ipv6());
        if let Some(f) = view.fragment {
            assert_eq!(f.offset % 8, 0);
        }
    }
}

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));
