use super::*;

fn message(kind: u32, req_id: u32, tx: u32, payload: &[u8]) -> Vec<u8> {
    let mut m = Vec::new();
    for field in [kind, req_id, tx, payload.len() as u32] {
        m.extend_from_slice(&field.to_ne_bytes());
    }
    m.extend_from_slice(payload);
    m
}

fn encoded(req: Request<'_>) -> Result<Vec<u8>, Errno> {
    let mut out = b"before".to_vec();
    let r = req.encode(7, PAYLOAD_MAX, &mut out);
    assert_eq!(&out[..6], b"before", "appended, never overwritten");
    r.map(|()| out.split_off(6))
}

#[test]
fn requests_are_encoded_as_libxenstore_sends_them() {
    let cases: [(Request<'_>, Vec<u8>); 10] = [
        (
            Request::Read {
                tx: 0,
                path: "data/a",
            },
            message(XS_READ, 7, 0, b"data/a\0"),
        ),
        (
            Request::Directory {
                tx: 3,
                path: "/local/domain/5",
            },
            message(XS_DIRECTORY, 7, 3, b"/local/domain/5\0"),
        ),
        (
            Request::Write {
                tx: 3,
                path: "data/a",
                value: "v 1",
            },
            message(XS_WRITE, 7, 3, b"data/a\0v 1"),
        ),
        (
            Request::Remove {
                tx: 0,
                path: "data",
            },
            message(XS_RM, 7, 0, b"data\0"),
        ),
        (
            Request::GetPerms {
                tx: 0,
                path: "data",
            },
            message(XS_GET_PERMS, 7, 0, b"data\0"),
        ),
        (
            Request::TransactionStart,
            message(XS_TRANSACTION_START, 7, 0, b"\0"),
        ),
        (
            Request::TransactionEnd {
                tx: 9,
                commit: true,
            },
            message(XS_TRANSACTION_END, 7, 9, b"T\0"),
        ),
        (
            Request::Watch {
                path: "@releaseDomain",
                token: "any thing",
            },
            message(XS_WATCH, 7, 0, b"@releaseDomain\0any thing\0"),
        ),
        (
            Request::Unwatch {
                path: "data",
                token: "t",
            },
            message(XS_UNWATCH, 7, 0, b"data\0t\0"),
        ),
        (
            Request::GetDomainPath { domid: 42 },
            message(XS_GET_DOMAIN_PATH, 7, 0, b"42\0"),
        ),
    ];
    for (req, want) in cases {
        assert_eq!(encoded(req), Ok(want), "{req:?}");
    }
    let abort = Request::TransactionEnd {
        tx: 9,
        commit: false,
    };
    assert_eq!(encoded(abort).unwrap()[HEADER_LEN..], *b"F\0");
}

#[test]
fn limits_are_checked_before_anything_is_sent() {
    let write = |value: &str| {
        encoded(Request::Write {
            tx: 0,
            path: "data/a",
            value,
        })
    };
    // path\0 is 7 bytes: the largest value fills the payload.
    assert!(write(&"x".repeat(PAYLOAD_MAX - 7)).is_ok());
    assert_eq!(write(&"x".repeat(PAYLOAD_MAX - 6)), Err(Errno::E2BIG));
    let mut out = Vec::new();
    let small = Request::Write {
        tx: 0,
        path: "data/a",
        value: &"x".repeat(100),
    };
    assert_eq!(small.encode(1, 100, &mut out), Err(Errno::E2BIG));
    assert!(out.is_empty());
    let read = |path: &str| encoded(Request::Read { tx: 0, path });
    for bad in [
        "",
        "data/",
        "data//a",
        "data/a b",
        "data/é",
        "data/a\0b",
        "@releaseDomain",
        &"a".repeat(REL_PATH_MAX + 1),
        &format!("/vm/{}", "a".repeat(REL_PATH_MAX)),
        &format!("/local/domain/5/{}", "a".repeat(REL_PATH_MAX + 1)),
    ] {
        assert_eq!(read(bad), Err(Errno::EINVAL), "{bad:?}");
    }
    for good in [
        "/",
        "data/a-b_c@d",
        &"a".repeat(REL_PATH_MAX),
        &format!("/local/domain/5/{}", "a".repeat(REL_PATH_MAX)),
    ] {
        assert!(read(good).is_ok(), "{good:?}");
    }
    let watch = |path, token| encoded(Request::Watch { path, token });
    assert!(watch("@introduceDomain", "t").is_ok());
    assert_eq!(watch("data", "t\0u"), Err(Errno::EINVAL));
    assert_eq!(watch("data/", "t"), Err(Errno::EINVAL));
}

#[test]
fn replies_are_parsed_by_type() {
    let ok = |kind, payload: &[u8]| parse_reply(kind, payload).unwrap();
    assert_eq!(ok(XS_READ, b"v\0x"), Reply::Value("v\0x".into()));
    assert_eq!(ok(XS_READ, b""), Reply::Value(String::new()));
    assert_eq!(ok(XS_READ, b"\xff"), Reply::Value("\u{fffd}".into()));
    assert_eq!(
        ok(XS_GET_DOMAIN_PATH, b"/local/domain/5\0"),
        Reply::Value("/local/domain/5".into())
    );
    assert_eq!(
        ok(XS_DIRECTORY, b"a\0bc\0"),
        Reply::Children(vec!["a".into(), "bc".into()])
    );
    assert_eq!(ok(XS_DIRECTORY, b""), Reply::Children(vec![]));
    assert_eq!(ok(XS_WRITE, b"OK\0"), Reply::Done);
    assert_eq!(ok(XS_TRANSACTION_START, b"12\0"), Reply::Transaction(12));
    let perms = ok(XS_GET_PERMS, b"n5\0r0\0w3\0b12\0");
    let Reply::Perms(perms) = perms else {
        panic!("{perms:?}")
    };
    let shown: Vec<String> = perms.iter().map(Perm::to_string).collect();
    assert_eq!(shown, ["n5", "r0", "w3", "b12"]);
    assert_eq!(
        perms[3],
        Perm {
            domid: 12,
            read: true,
            write: true
        }
    );
    for (kind, bad) in [
        (XS_GET_PERMS, &b""[..]),
        (XS_GET_PERMS, b"x5\0"),
        (XS_GET_PERMS, b"n\0"),
        (XS_GET_PERMS, b"n-1\0"),
        (XS_GET_PERMS, b"n99999999999\0"),
        (XS_TRANSACTION_START, b"\0"),
        (XS_TRANSACTION_START, b"0\0"),
        (XS_TRANSACTION_START, b"x\0"),
    ] {
        assert!(parse_reply(kind, bad).is_err(), "{bad:?}");
    }
}

#[test]
fn error_names_map_to_errno() {
    assert_eq!(Errno::from_name(b"EAGAIN\0"), Errno(libc::EAGAIN));
    assert_eq!(Errno::from_name(b"E2BIG\0"), Errno::E2BIG);
    assert_eq!(Errno::from_name(b"EPERM"), Errno(libc::EPERM));
    // Unknown names (oxenstored's EQUOTA) as libxenstore takes them.
    assert_eq!(Errno::from_name(b"EQUOTA\0"), Errno::EINVAL);
    assert_eq!(Errno::from_name(b""), Errno::EINVAL);
    assert_eq!(Errno::EACCES.to_string(), "EACCES");
    assert!(Errno(libc::ENODEV).to_string().contains("device"));
    let io: io::Error = Errno::EAGAIN.into();
    assert_eq!(io.raw_os_error(), Some(libc::EAGAIN));
    for (name, code) in ERRORS {
        assert_eq!(Errno::from_name(name.as_bytes()), Errno(code));
        assert_eq!(Errno(code).name(), Some(name));
    }
}

/// A decoded message, owned: (type, req_id, payload or path, token).
type Owned = (u32, u32, Vec<u8>, Vec<u8>);

/// Feed `bytes` in reads of at most `chunk` bytes (less when the
/// decoder has less room); collect what comes out.
fn decode(mut bytes: &[u8], chunk: usize) -> Result<Vec<Owned>, Malformed> {
    let mut d = Decoder::default();
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let space = d.space();
        assert!(!space.is_empty(), "room for a read");
        let n = chunk.min(space.len()).min(bytes.len());
        space[..n].copy_from_slice(&bytes[..n]);
        d.filled(n);
        bytes = &bytes[n..];
        while let Some(m) = d.message()? {
            out.push(match m {
                Message::Event { path, token } => {
                    (XS_WATCH_EVENT, 0, path.to_vec(), token.to_vec())
                }
                Message::Reply {
                    kind,
                    req_id,
                    payload,
                } => (kind, req_id, payload.to_vec(), Vec::new()),
            });
        }
    }
    Ok(out)
}

#[test]
fn messages_survive_reads_of_any_size() {
    let mut stream = message(XS_WATCH, 1, 0, b"OK\0");
    stream.extend(message(XS_WATCH_EVENT, 0, 0, b"unique-domain-id\0domain\0"));
    stream.extend(message(XS_ERROR, 2, 0, b"EACCES\0"));
    stream.extend(message(XS_READ, 3, 4, &[b'x'; PAYLOAD_MAX]));
    stream.extend(message(XS_WATCH_EVENT, 0, 0, b"a/b\0sriov\0"));
    let expected = vec![
        (XS_WATCH, 1, b"OK\0".to_vec(), vec![]),
        (
            XS_WATCH_EVENT,
            0,
            b"unique-domain-id".to_vec(),
            b"domain".to_vec(),
        ),
        (XS_ERROR, 2, b"EACCES\0".to_vec(), vec![]),
        (XS_READ, 3, vec![b'x'; PAYLOAD_MAX], vec![]),
        (XS_WATCH_EVENT, 0, b"a/b".to_vec(), b"sriov".to_vec()),
    ];
    for chunk in [1, 2, 3, 7, 16, 17, 100, 4111, 4112, 4113] {
        assert_eq!(
            decode(&stream, chunk).unwrap(),
            expected,
            "reads of {chunk}"
        );
    }
}

#[test]
fn an_incomplete_message_waits_for_the_rest() {
    let full = message(XS_WATCH_EVENT, 0, 0, b"p\0t\0");
    let mut d = Decoder::default();
    d.space()[..full.len() - 1].copy_from_slice(&full[..full.len() - 1]);
    d.filled(full.len() - 1);
    assert_eq!(d.message(), Ok(None));
    assert_eq!(d.buffered(), full.len() - 1);
    d.space()[0] = 0;
    d.filled(1);
    assert_eq!(
        d.message(),
        Ok(Some(Message::Event {
            path: b"p",
            token: b"t"
        }))
    );
    assert_eq!(d.message(), Ok(None));
    assert_eq!(d.buffered(), 0);
}

#[test]
fn a_length_over_the_limit_is_malformed() {
    for len in [PAYLOAD_MAX as u32 + 1, u32::MAX] {
        let mut bad = message(XS_READ, 1, 0, b"");
        bad[12..16].copy_from_slice(&len.to_ne_bytes());
        let e = decode(&bad, 3).unwrap_err();
        assert!(
            e.to_string().contains(&format!("announcing {len} bytes")),
            "{e}"
        );
    }
    assert!(decode(&[0xff; 64], 64).is_err());
}

#[test]
fn short_watch_events_are_malformed() {
    for payload in [&b""[..], b"path", b"path\0", b"path\0token"] {
        let got = decode(&message(XS_WATCH_EVENT, 0, 0, payload), 64);
        assert!(got.is_err(), "{payload:?}: {got:?}");
    }
    // An empty token is still a token (never ours: ignored upstream).
    let got = decode(&message(XS_WATCH_EVENT, 0, 0, b"p\0\0"), 64).unwrap();
    assert_eq!(got[0].3, b"");
}
