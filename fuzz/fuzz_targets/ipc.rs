//! The shared stack's control protocol: any bytes a program (or a hostile
//! process with the daemon's uid) sends decode to a request or an error,
//! never a panic, and every request decoded re-encodes to itself.
#![cfg_attr(fuzzing, no_main)]

use ustack::ipc::{DgramHeader, Reply, Request, decode_addr};

/// The property: libFuzzer calls it (built by cargo-fuzz, `cfg(fuzzing)`),
/// and so does the stable run in the suite, `tests/fuzz_targets.rs`.
pub fn run(data: &[u8]) {
    if let Ok(r) = Request::decode(data) {
        assert_eq!(Request::decode(&r.encode()).ok(), Some(r));
    }
    if let Ok(r) = Reply::decode(data) {
        assert_eq!(Reply::decode(&r.encode()).ok(), Some(r));
    }
    if let Ok(h) = DgramHeader::decode(data) {
        assert_eq!(DgramHeader::decode(&h.encode()).ok(), Some(h));
    }
    let _ = decode_addr(data);
}

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));
