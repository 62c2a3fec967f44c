//! The shared stack's control protocol: any bytes a program (or a hostile
//! process with the daemon's uid) sends decode to a request or an error,
//! never a panic, and every request decoded re-encodes to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ustack::ipc::{DgramHeader, Reply, Request, decode_addr};

fuzz_target!(|data: &[u8]| {
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
});
