//! IPv6: the fixed header and the extension-header walk never panic, and
//! the walk never points past the payload.
#![cfg_attr(fuzzing, no_main)]

use ustack::wire::ipv6::{Ipv6FragmentRepr, walk_extensions};
use ustack::wire::{IpProtocol, Ipv6Packet, Ipv6Repr};

/// The property: libFuzzer calls it (built by cargo-fuzz, `cfg(fuzzing)`),
/// and so does the stable run in the suite, `tests/fuzz_targets.rs`.
pub fn run(data: &[u8]) {
    if let Some((&first, rest)) = data.split_first() {
        if let Ok(ext) = walk_extensions(IpProtocol::from(first), rest) {
            assert!(ext.offset <= rest.len());
        }
        if let Ok(frag) = Ipv6FragmentRepr::parse(rest) {
            let mut buf = [0u8; 8];
            frag.emit(&mut buf)
                .expect("a parsed fragment header re-emits");
            assert_eq!(Ipv6FragmentRepr::parse(&buf), Ok(frag));
        }
    }
    let _ = Ipv6Packet::new_truncated(data).map(|p| p.extensions());
    let Ok(packet) = Ipv6Packet::new_checked(data) else {
        return;
    };
    if let Ok(ext) = packet.extensions() {
        assert!(ext.offset <= packet.payload().len());
    }
    let repr = Ipv6Repr::parse(&packet).expect("a checked view parses");
    let mut buf = vec![0; repr.buffer_len()];
    repr.emit(&mut buf).expect("a parsed header re-emits");
    let again =
        Ipv6Repr::parse(&Ipv6Packet::new_checked(&buf[..]).expect("re-emitted header checks"));
    assert_eq!(again, Ok(repr));
}

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));
