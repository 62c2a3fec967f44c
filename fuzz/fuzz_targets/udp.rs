//! UDP: parse never panics over either family; what parses re-emits.
#![cfg_attr(fuzzing, no_main)]

use ustack::wire::{IpAddr, Ipv4Addr, Ipv6Addr, UdpPacket, UdpRepr};

/// The property: libFuzzer calls it (built by cargo-fuzz, `cfg(fuzzing)`),
/// and so does the stable run in the suite, `tests/fuzz_targets.rs`.
pub fn run(data: &[u8]) {
    let v4 = (
        IpAddr::V4(Ipv4Addr::new(10, 77, 0, 1)),
        IpAddr::V4(Ipv4Addr::new(10, 77, 0, 2)),
    );
    let v6 = (
        IpAddr::V6(Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 1)),
        IpAddr::V6(Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 2)),
    );
    let _ = UdpPacket::new_checked(data).map(|p| (p.payload().len(), p.is_empty()));
    for (src, dst) in [v4, v6] {
        if let Ok((repr, payload)) = UdpRepr::parse_datagram(data, src, dst) {
            let mut buf = vec![0; repr.buffer_len(payload.len())];
            repr.emit(&mut buf, src, dst, payload)
                .expect("a parsed datagram re-emits");
            let (again, again_payload) =
                UdpRepr::parse_datagram(&buf, src, dst).expect("re-emitted datagram parses");
            assert_eq!((again, again_payload), (repr, payload));
        }
    }
}

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));
