//! parse_ip / parse_ip_quoted: never panic, and the header and payload they
//! report always lie inside the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ustack::wire::{parse_ip, parse_ip_quoted};

fuzz_target!(|data: &[u8]| {
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
});
