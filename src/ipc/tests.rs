use super::*;

fn all_requests() -> Vec<Request> {
    let a4: SocketAddr = "10.77.0.2:80".parse().unwrap();
    let a6: SocketAddr = "[fd77::2%3]:443".parse().unwrap();
    vec![
        Request::Socket {
            v6: true,
            tcp: false,
        },
        Request::Bind(a4),
        Request::Listen(128),
        Request::Connect(Some(a6)),
        Request::Connect(None),
        Request::Name { peer: true },
        Request::Shutdown(libc::SHUT_WR),
        Request::GetOpt {
            level: libc::SOL_SOCKET,
            name: libc::SO_ERROR,
            max: 4,
        },
        Request::SetOpt {
            level: libc::IPPROTO_TCP,
            name: libc::TCP_NODELAY,
            value: 1i32.to_ne_bytes().to_vec(),
        },
        Request::TakeError,
        Request::Identify,
        Request::Status,
    ]
}

#[test]
fn every_request_round_trips() {
    for r in all_requests() {
        assert_eq!(Request::decode(&r.encode()).unwrap(), r);
    }
}

#[test]
fn replies_and_datagram_headers_round_trip() {
    let r = Reply {
        errno: libc::ECONNREFUSED,
        value: -3,
        data: b"abc".to_vec(),
    };
    assert_eq!(Reply::decode(&r.encode()).unwrap(), r);
    let h = DgramHeader {
        addr: Some("[::ffff:10.77.0.1]:53".parse().unwrap()),
        len: 70000,
    };
    assert_eq!(DgramHeader::decode(&h.encode()).unwrap(), h);
    let none = DgramHeader { addr: None, len: 0 };
    assert_eq!(DgramHeader::decode(&none.encode()).unwrap(), none);
}

#[test]
fn every_truncation_and_corruption_of_a_request_is_an_error_or_a_request() {
    // Hostile input: no prefix, no byte flip, may panic.
    for r in all_requests() {
        let m = r.encode();
        for cut in 0..m.len() {
            let _ = Request::decode(&m[..cut]);
        }
        for i in 0..m.len() {
            for v in [0u8, 1, 0x7f, 0xff] {
                let mut b = m.clone();
                b[i] = v;
                let _ = Request::decode(&b);
            }
        }
    }
    assert!(Request::decode(&[0xff; 16]).is_err(), "unknown op");
    assert!(
        Request::decode(&[1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).is_err(),
        "bad flag"
    );
    let mut long = Request::Status.encode();
    long.resize(16 + MAX_PAYLOAD + 1, 0);
    assert!(Request::decode(&long).is_err(), "oversized payload");
}

#[test]
fn fds_travel_with_a_message_and_keep_their_identity() {
    let (a, b) = pair(libc::SOCK_SEQPACKET).unwrap();
    let (x, _y) = pair(libc::SOCK_STREAM).unwrap();
    let ino = inode(x.as_raw_fd()).unwrap();
    send_with_fds(b.as_raw_fd(), b"hi", &[x.as_raw_fd()], 0).unwrap();
    let mut buf = [0u8; 8];
    let mut fds = Vec::new();
    let r = recv_with_fds(a.as_raw_fd(), &mut buf, &mut fds, 0).unwrap();
    assert_eq!(
        (&buf[..r.len], r.cut, r.fds_lost),
        (&b"hi"[..], false, false)
    );
    assert_eq!(fds.len(), 1);
    assert_eq!(inode(fds[0].as_raw_fd()).unwrap(), ino);
}

#[test]
fn the_policy_admits_root_its_user_and_its_group_only() {
    let p = server::Policy {
        uid: 1000,
        gid: Some(104),
        persistent: false,
        grace: std::time::Duration::ZERO,
    };
    assert!(p.admits(0, 0) && p.admits(1000, 5) && p.admits(2000, 104));
    assert!(!p.admits(2000, 2000));
    let why = p.refusal(2000, 2000);
    assert_eq!(
        why,
        "the stack daemon admits only uid 1000, group 104 and root, not uid 2000 gid 2000"
    );
    let root_only = server::Policy {
        uid: 0,
        gid: None,
        ..p
    };
    assert_eq!(
        root_only.refusal(7, 8),
        "the stack daemon admits only root, not uid 7 gid 8"
    );
}

#[test]
fn a_refusal_sent_before_the_hang_up_is_the_reply_even_if_the_request_cannot_be_sent() {
    let (program, daemon) = pair(libc::SOCK_SEQPACKET).unwrap();
    let why = Reply {
        errno: libc::EACCES,
        value: 0,
        data: b"refused".to_vec(),
    };
    send_with_fds(daemon.as_raw_fd(), &why.encode(), &[], 0).unwrap();
    drop(daemon);
    let (r, fds) = client::call(program.as_raw_fd(), &Request::Status, None).unwrap();
    assert_eq!((r, fds.len()), (why, 0));
    // A hang-up with nothing said is an error, not a hang.
    let (program, daemon) = pair(libc::SOCK_SEQPACKET).unwrap();
    drop(daemon);
    assert!(client::call(program.as_raw_fd(), &Request::Status, None).is_err());
}
