use super::*;

/// A response as dnsmasq sends it for `www.example.test` A, where the name
/// is an alias: the question, then a CNAME whose owner points back at the
/// question's name (offset 12) and whose target shares its suffix, then
/// the A record owned by the compressed target.
fn cname_response() -> Vec<u8> {
    let mut m = vec![
        0x12, 0x34, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 0, // header: QR RD RA
        3, b'w', b'w', b'w', 7, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 4, b't', b'e', b's',
        b't', 0, 0, 1, 0, 1,
    ];
    // CNAME: owner -> offset 12; data: "web" + pointer to "example.test" (16).
    m.extend_from_slice(&[0xc0, 12, 0, 5, 0, 1, 0, 0, 0x0e, 0x10, 0, 6]);
    let target = m.len();
    m.extend_from_slice(&[3, b'w', b'e', b'b', 0xc0, 16]);
    // A: owner -> the CNAME's target.
    m.extend_from_slice(&[
        0xc0,
        target as u8,
        0,
        1,
        0,
        1,
        0,
        0,
        0,
        60,
        0,
        4,
        10,
        77,
        0,
        9,
    ]);
    m
}

#[test]
fn query_bytes_are_rfc_1035_with_recursion_desired() {
    let q = Query {
        id: 0xbeef,
        name: "a.bc.",
        qtype: TYPE_AAAA,
        qclass: CLASS_IN,
    };
    assert_eq!(
        q.emit().unwrap(),
        [
            0xbe, 0xef, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, b'a', 2, b'b', b'c', 0, 0, 28, 0, 1
        ]
    );
}

#[test]
fn query_names_with_empty_or_long_labels_are_refused() {
    for bad in ["a..b", ".a", &"x".repeat(64), &["abc"; 70].join(".")] {
        let q = Query {
            id: 1,
            name: bad,
            qtype: TYPE_A,
            qclass: CLASS_IN,
        };
        assert_eq!(q.emit(), Err(Error::Malformed), "{bad}");
    }
}

#[test]
fn response_follows_compressed_names_and_cname() {
    let r = Response::parse(&cname_response()).unwrap();
    assert_eq!((r.id, r.rcode, r.truncated), (0x1234, RCODE_OK, false));
    assert_eq!(
        r.question,
        Some(("www.example.test".into(), TYPE_A, CLASS_IN))
    );
    assert_eq!(
        r.answers,
        vec![
            Record {
                name: "www.example.test".into(),
                class: CLASS_IN,
                ttl: 3600,
                data: RData::Cname("web.example.test".into()),
            },
            Record {
                name: "web.example.test".into(),
                class: CLASS_IN,
                ttl: 60,
                data: RData::A(Ipv4Addr::new(10, 77, 0, 9)),
            },
        ]
    );
}

#[test]
fn every_truncation_of_a_response_is_an_error_not_a_panic() {
    let m = cname_response();
    for n in 0..m.len() {
        assert!(Response::parse(&m[..n]).is_err(), "cut at {n}");
    }
}

#[test]
fn a_compression_loop_is_malformed() {
    let mut m = vec![0, 1, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]); // points at itself
    assert_eq!(Response::parse(&m), Err(Error::Malformed));
}

#[test]
fn a_query_is_not_a_response_and_bad_address_lengths_are_malformed() {
    let mut m = cname_response();
    m[2] &= 0x7f;
    assert_eq!(Response::parse(&m), Err(Error::Malformed));
    let mut m = cname_response();
    let n = m.len();
    m[n - 5] = 5; // A record with 5 bytes of data
    m.push(0);
    assert_eq!(Response::parse(&m), Err(Error::Malformed));
}

#[test]
fn rcode_and_truncation_are_reported() {
    let mut m = cname_response();
    m[2] |= 0x02; // TC
    m[3] = (m[3] & 0xf0) | RCODE_NXDOMAIN;
    let r = Response::parse(&m).unwrap();
    assert_eq!((r.rcode, r.truncated), (RCODE_NXDOMAIN, true));
}

#[test]
fn label_bytes_that_are_not_plain_are_escaped() {
    let mut m = vec![0, 1, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(&[3, b'a', b'.', 0, 0, 0, 1, 0, 1]);
    let r = Response::parse(&m).unwrap();
    assert_eq!(r.question.unwrap().0, "a\\.\\000");
}

#[test]
fn reverse_names_for_both_families() {
    assert_eq!(
        reverse_name("10.77.0.2".parse().unwrap()),
        "2.0.77.10.in-addr.arpa"
    );
    let six = reverse_name("fd77::2".parse().unwrap());
    assert!(six.starts_with("2.0.0.0.0.0.0.0."), "{six}");
    assert!(six.ends_with("7.7.d.f.ip6.arpa"), "{six}");
}

proptest::proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(m in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
        let _ = Response::parse(&m);
    }
}
