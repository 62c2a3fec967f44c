//! DHCPv4 and router advertisements: parse never panics; what parses
//! re-emits and parses back the same; a DHCP client fed what parses (as
//! an answer to its own transaction) never panics and its timers move.
#![cfg_attr(fuzzing, no_main)]

use ustack::dhcp::DhcpClient;
use ustack::time::Instant;
use ustack::wire::Ipv6Addr;
use ustack::wire::dhcp::{DhcpPacket, DhcpRepr};
use ustack::wire::ndp::RouterAdvert;

/// The property: libFuzzer calls it (built by cargo-fuzz, `cfg(fuzzing)`),
/// and so does the stable run in the suite, `tests/fuzz_targets.rs`.
pub fn run(data: &[u8]) {
    if let Ok(repr) = DhcpPacket::new_checked(data).and_then(|p| DhcpRepr::parse(&p)) {
        let mut buf = vec![0; repr.buffer_len()];
        repr.emit(&mut buf).expect("a parsed message re-emits");
        let again = DhcpPacket::new_checked(&buf[..])
            .and_then(|p| DhcpRepr::parse(&p))
            .expect("a re-emitted message parses");
        assert_eq!(again, repr);
        // The client, answered with it twice (an offer then an ack, say).
        let mut client = DhcpClient::new(repr.client_mac, 1);
        let mut now = Instant::ZERO;
        for _ in 0..2 {
            let Some(sent) = client.poll_transmit(now) else {
                break;
            };
            let mut answer = repr.clone();
            answer.xid = sent.repr.xid;
            client.handle(now, &answer);
        }
        for _ in 0..8 {
            let _ = client.poll_transmit(now);
            while client.poll_event().is_some() {}
            match client.poll_at() {
                Some(t) => {
                    assert!(t >= now, "a deadline in the past");
                    now = t;
                }
                None => break,
            }
        }
    }
    let router = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
    let all = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    if let Ok(ra) = RouterAdvert::parse(data, router, all) {
        let mut buf = vec![0; ra.buffer_len()];
        ra.emit(&mut buf, router, all)
            .expect("a parsed advertisement re-emits");
        let again = RouterAdvert::parse(&buf, router, all).expect("it parses back");
        assert_eq!(again, ra);
    }
}

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));
