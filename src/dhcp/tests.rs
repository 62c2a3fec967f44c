//! The client against a scripted server, on a virtual clock.

use super::*;

const MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 9]);
const SERVER: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
const ADDR: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 57);

fn at(secs: f64) -> Instant {
    Instant::from_micros((secs * 1e6) as u64)
}

/// The server's answer of `kind` to the client's `req`.
fn reply(req: &DhcpRepr, kind: MessageType, lease: Option<u32>) -> DhcpRepr {
    let mut r = DhcpRepr::client(kind, req.xid, req.client_mac);
    r.client_id = None;
    r.max_size = None;
    r.request_parameters = false;
    r.your_addr = if kind == MessageType::Nak {
        Ipv4Addr::UNSPECIFIED
    } else {
        ADDR
    };
    r.server_id = Some(SERVER);
    if kind != MessageType::Nak {
        r.lease_time = lease;
        r.subnet_mask = Some(Ipv4Addr::new(255, 255, 255, 0));
        r.router = Some(SERVER);
        r.dns_servers = vec![SERVER];
    }
    r
}

/// Runs the client to a bound lease of `lease` seconds granted at `t`.
fn bound(lease: Option<u32>, t: Instant) -> DhcpClient {
    let mut c = DhcpClient::new(MAC, 7);
    let d = c.poll_transmit(t).unwrap();
    c.handle(t, &reply(&d.repr, MessageType::Offer, lease));
    let r = c.poll_transmit(t).unwrap();
    c.handle(t, &reply(&r.repr, MessageType::Ack, lease));
    assert_eq!(c.state(), State::Bound);
    c
}

/// Steps the clock from deadline to deadline until `until`, collecting
/// (time, message) pairs.
fn run_until(c: &mut DhcpClient, until: Instant) -> Vec<(Instant, Transmit)> {
    let mut out = Vec::new();
    while let Some(t) = c.poll_at() {
        if t > until {
            break;
        }
        if let Some(m) = c.poll_transmit(t) {
            out.push((t, m));
        }
        assert!(out.len() < 1000, "the client did not settle");
    }
    out
}

#[test]
fn discover_offer_request_ack_binds_the_address_with_mask_router_and_dns() {
    let mut c = DhcpClient::new(MAC, 1);
    let t = at(0.0);
    let d = c.poll_transmit(t).unwrap();
    assert_eq!(d.repr.message_type, MessageType::Discover);
    assert_eq!((d.src, d.dst), (Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST));
    assert_eq!(d.repr.client_id, Some(MAC));
    assert!(d.repr.request_parameters);
    c.handle(at(0.1), &reply(&d.repr, MessageType::Offer, Some(120)));
    assert_eq!(c.state(), State::Requesting);
    let r = c.poll_transmit(at(0.1)).unwrap();
    assert_eq!(r.repr.message_type, MessageType::Request);
    assert_eq!(r.repr.xid, d.repr.xid, "the request keeps the offer's xid");
    assert_eq!(r.repr.requested_ip, Some(ADDR));
    assert_eq!(r.repr.server_id, Some(SERVER));
    assert_eq!(r.repr.client_addr, Ipv4Addr::UNSPECIFIED);
    assert_eq!((r.src, r.dst), (Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST));
    c.handle(at(0.2), &reply(&r.repr, MessageType::Ack, Some(120)));
    let Some(Event::Bound(lease)) = c.poll_event() else {
        panic!("no bound event");
    };
    assert_eq!(
        lease.addr,
        Prefix {
            addr: ADDR,
            len: 24
        }
    );
    assert_eq!(lease.router, Some(SERVER));
    assert_eq!(lease.dns_servers, vec![SERVER]);
    assert_eq!(lease.server, SERVER);
    // The lease counts from the request (RFC 2131 4.4.1); T1 and T2
    // default to 1/2 and 7/8 of it.
    assert_eq!(lease.renew_at, Some(at(0.1 + 60.0)));
    assert_eq!(lease.rebind_at, Some(at(0.1 + 105.0)));
    assert_eq!(lease.expires_at, Some(at(0.1 + 120.0)));
    assert_eq!(c.poll_at(), lease.renew_at);
    assert!(c.poll_event().is_none());
}

#[test]
fn a_delayed_client_sends_its_first_discover_within_the_second_after_earliest() {
    for seed in 0..20 {
        let mut c = DhcpClient::new_delayed(MAC, seed, at(1.0));
        let t = c.poll_at().unwrap();
        assert!(t >= at(1.0) && t < at(2.0), "{t:?}");
        assert!(c.poll_transmit(at(0.999)).is_none());
        let d = c.poll_transmit(t).unwrap();
        assert_eq!(d.repr.message_type, MessageType::Discover);
        assert_eq!(d.repr.secs, 0);
    }
}

#[test]
fn t1_and_t2_options_are_used_when_the_server_sends_them() {
    let mut c = DhcpClient::new(MAC, 1);
    let d = c.poll_transmit(at(0.0)).unwrap();
    c.handle(at(0.0), &reply(&d.repr, MessageType::Offer, Some(1000)));
    let r = c.poll_transmit(at(0.0)).unwrap();
    let mut ack = reply(&r.repr, MessageType::Ack, Some(1000));
    ack.renewal_time = Some(100);
    ack.rebinding_time = Some(200);
    c.handle(at(0.0), &ack);
    let lease = c.lease().unwrap();
    assert_eq!(lease.renew_at, Some(at(100.0)));
    assert_eq!(lease.rebind_at, Some(at(200.0)));
}

#[test]
fn discover_is_retransmitted_with_exponential_backoff_and_jitter_bounded_at_64_s() {
    let mut c = DhcpClient::new(MAC, 3);
    let sent = run_until(&mut c, at(600.0));
    let times: Vec<f64> = sent
        .iter()
        .map(|(t, _)| t.total_micros() as f64 / 1e6)
        .collect();
    assert!(times.len() >= 8, "{times:?}");
    for (i, w) in times.windows(2).enumerate() {
        let base = (4.0 * 2f64.powi(i as i32)).min(64.0);
        let gap = w[1] - w[0];
        assert!(
            (base - 1.0..=base + 1.0).contains(&gap),
            "retransmission {i}: {gap} s after the last, expected {base} +- 1"
        );
    }
    assert!(
        sent.iter()
            .all(|(_, m)| m.repr.message_type == MessageType::Discover)
    );
    // One transaction: the same xid, and secs counting from the first.
    assert!(sent.iter().all(|(_, m)| m.repr.xid == sent[0].1.repr.xid));
    assert_eq!(sent[0].1.repr.secs, 0);
    assert!(sent.last().unwrap().1.repr.secs > 300);
}

#[test]
fn offers_for_another_transaction_or_client_are_ignored() {
    let mut c = DhcpClient::new(MAC, 1);
    let d = c.poll_transmit(at(0.0)).unwrap();
    let mut other_xid = reply(&d.repr, MessageType::Offer, Some(120));
    other_xid.xid ^= 1;
    c.handle(at(0.1), &other_xid);
    let mut other_mac = reply(&d.repr, MessageType::Offer, Some(120));
    other_mac.client_mac = MacAddr([2, 0, 0, 0, 0, 8]);
    c.handle(at(0.1), &other_mac);
    let mut no_server_id = reply(&d.repr, MessageType::Offer, Some(120));
    no_server_id.server_id = None;
    c.handle(at(0.1), &no_server_id);
    let mut broadcast_addr = reply(&d.repr, MessageType::Offer, Some(120));
    broadcast_addr.your_addr = Ipv4Addr::BROADCAST;
    c.handle(at(0.1), &broadcast_addr);
    // An ACK while selecting is not an answer to anything.
    c.handle(at(0.1), &reply(&d.repr, MessageType::Ack, Some(120)));
    assert_eq!(c.state(), State::Selecting);
    assert!(c.poll_event().is_none());
    c.handle(at(0.2), &reply(&d.repr, MessageType::Offer, Some(120)));
    assert_eq!(c.state(), State::Requesting);
}

#[test]
fn nak_to_the_request_starts_over_with_a_new_transaction() {
    let mut c = DhcpClient::new(MAC, 1);
    let d = c.poll_transmit(at(0.0)).unwrap();
    c.handle(at(0.0), &reply(&d.repr, MessageType::Offer, Some(120)));
    let r = c.poll_transmit(at(0.0)).unwrap();
    c.handle(at(0.5), &reply(&r.repr, MessageType::Nak, None));
    assert_eq!(c.state(), State::Selecting);
    assert!(
        c.poll_event().is_none(),
        "nothing was bound, nothing is lost"
    );
    let again = c.poll_transmit(at(0.5)).unwrap();
    assert_eq!(again.repr.message_type, MessageType::Discover);
    assert_ne!(again.repr.xid, d.repr.xid);
}

#[test]
fn four_unanswered_requests_start_over_from_discover() {
    let mut c = DhcpClient::new(MAC, 1);
    let d = c.poll_transmit(at(0.0)).unwrap();
    c.handle(at(0.0), &reply(&d.repr, MessageType::Offer, Some(120)));
    let sent = run_until(&mut c, at(100.0));
    let kinds: Vec<MessageType> = sent.iter().map(|(_, m)| m.repr.message_type).collect();
    assert_eq!(&kinds[..4], &[MessageType::Request; 4]);
    assert_eq!(kinds[4], MessageType::Discover);
}

#[test]
fn renews_at_t1_by_unicast_then_rebinds_at_t2_by_broadcast_then_loses_the_address_at_expiry() {
    let mut c = bound(Some(1000), at(0.0));
    assert!(matches!(c.poll_event(), Some(Event::Bound(_))));
    let sent = run_until(&mut c, at(999.0));
    assert!(!sent.is_empty());
    // Renewing from T1 = 500 s: unicast to the server, from our address.
    let renew: Vec<_> = sent.iter().filter(|(t, _)| *t < at(875.0)).collect();
    assert_eq!(renew[0].0, at(500.0));
    for (_, m) in &renew {
        assert_eq!(m.repr.message_type, MessageType::Request);
        assert_eq!((m.src, m.dst), (ADDR, SERVER));
        assert_eq!(m.repr.client_addr, ADDR);
        assert_eq!(m.repr.server_id, None, "RFC 2131 4.3.2: none when renewing");
        assert_eq!(m.repr.requested_ip, None);
    }
    // Half the time left to T2, at least 60 s: 500, 687.5, 781.25 (94 s
    // left: 60 s), then T2.
    let times: Vec<Instant> = renew.iter().map(|(t, _)| *t).collect();
    assert_eq!(times, vec![at(500.0), at(687.5), at(781.25), at(841.25)]);
    // Rebinding from T2 = 875 s: broadcast, still from our address.
    let rebind: Vec<_> = sent.iter().filter(|(t, _)| *t >= at(875.0)).collect();
    assert_eq!(rebind[0].0, at(875.0));
    for (_, m) in &rebind {
        assert_eq!((m.src, m.dst), (ADDR, Ipv4Addr::BROADCAST));
        assert_eq!(m.repr.client_addr, ADDR);
    }
    assert_eq!(c.state(), State::Rebinding);
    assert!(c.poll_event().is_none(), "still ours until expiry");
    // Expiry at 1000 s: lost, and a new DISCOVER.
    let t = c.poll_at().unwrap();
    assert!(t <= at(1000.0));
    let after = run_until(&mut c, at(1000.0));
    assert_eq!(c.poll_event(), Some(Event::Lost));
    assert_eq!(
        after.last().unwrap().1.repr.message_type,
        MessageType::Discover
    );
    assert_eq!(after.last().unwrap().1.src, Ipv4Addr::UNSPECIFIED);
    assert!(c.lease().is_none());
}

#[test]
fn an_ack_while_renewing_extends_the_lease_from_the_renewal() {
    let mut c = bound(Some(1000), at(0.0));
    c.poll_event();
    let renew = c.poll_transmit(at(500.0)).unwrap();
    assert_eq!(c.state(), State::Renewing);
    c.handle(at(500.2), &reply(&renew.repr, MessageType::Ack, Some(1000)));
    assert_eq!(c.state(), State::Bound);
    let Some(Event::Bound(lease)) = c.poll_event() else {
        panic!("no event for the renewal");
    };
    assert_eq!(lease.expires_at, Some(at(1500.0)));
    assert_eq!(c.poll_at(), Some(at(1000.0)));
}

#[test]
fn an_ack_while_rebinding_binds_again() {
    let mut c = bound(Some(1000), at(0.0));
    c.poll_event();
    let sent = run_until(&mut c, at(875.0));
    let last = &sent.last().unwrap().1;
    assert_eq!(c.state(), State::Rebinding);
    c.handle(at(876.0), &reply(&last.repr, MessageType::Ack, Some(1000)));
    assert_eq!(c.state(), State::Bound);
    assert!(matches!(c.poll_event(), Some(Event::Bound(_))));
}

#[test]
fn nak_while_renewing_loses_the_address() {
    let mut c = bound(Some(1000), at(0.0));
    c.poll_event();
    let renew = c.poll_transmit(at(500.0)).unwrap();
    // A NAK from some other server is not about our lease.
    let mut foreign = reply(&renew.repr, MessageType::Nak, None);
    foreign.server_id = Some(Ipv4Addr::new(10, 99, 0, 200));
    c.handle(at(500.1), &foreign);
    assert_eq!(c.state(), State::Renewing);
    c.handle(at(500.1), &reply(&renew.repr, MessageType::Nak, None));
    assert_eq!(c.poll_event(), Some(Event::Lost));
    assert_eq!(c.state(), State::Selecting);
}

#[test]
fn a_new_address_on_renewal_loses_the_old_one_first() {
    let mut c = bound(Some(1000), at(0.0));
    c.poll_event();
    let renew = c.poll_transmit(at(500.0)).unwrap();
    let mut ack = reply(&renew.repr, MessageType::Ack, Some(1000));
    ack.your_addr = Ipv4Addr::new(10, 99, 0, 58);
    c.handle(at(500.1), &ack);
    assert_eq!(c.poll_event(), Some(Event::Lost));
    let Some(Event::Bound(l)) = c.poll_event() else {
        panic!("not bound again");
    };
    assert_eq!(l.addr.addr, Ipv4Addr::new(10, 99, 0, 58));
}

#[test]
fn an_infinite_lease_has_no_timers() {
    let mut c = bound(Some(u32::MAX), at(0.0));
    let Some(Event::Bound(l)) = c.poll_event() else {
        panic!("not bound");
    };
    assert_eq!((l.duration, l.expires_at), (None, None));
    assert_eq!(c.poll_at(), None);
}

#[test]
fn a_zero_lease_is_raised_to_the_minimum_so_the_client_cannot_spin() {
    let mut c = bound(Some(0), at(0.0));
    let sent = run_until(&mut c, at(30.0));
    assert!(sent.len() < 10, "{} messages in 30 s", sent.len());
}

#[test]
fn release_unicasts_the_address_back_and_stops() {
    let mut c = bound(Some(1000), at(0.0));
    c.poll_event();
    let rel = c.release(at(10.0)).unwrap();
    assert_eq!(rel.repr.message_type, MessageType::Release);
    assert_eq!((rel.src, rel.dst), (ADDR, SERVER));
    assert_eq!(rel.repr.client_addr, ADDR);
    assert_eq!(rel.repr.server_id, Some(SERVER));
    assert_eq!(c.poll_event(), Some(Event::Lost));
    assert_eq!(c.state(), State::Stopped);
    assert_eq!(c.poll_at(), None);
    assert!(c.poll_transmit(at(2000.0)).is_none());
    // Nothing to release without a lease.
    let mut fresh = DhcpClient::new(MAC, 2);
    assert!(fresh.release(at(0.0)).is_none());
}
