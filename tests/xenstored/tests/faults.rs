//! The faults a client must survive, byte for byte as the guest's
//! connection sees them: spoiled replies, swallowed replies, spurious
//! watch events.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use test_xenstored::wire::{self, Header, HEADER_LEN, PAYLOAD_MAX};
use test_xenstored::{Client, Corruption, MsgType, Server};

const T: Duration = Duration::from_secs(5);

fn server() -> Server {
    Server::builder().domid(5).start().unwrap()
}

/// A raw guest connection; reads fail after `T` rather than hang.
fn connect(xs: &Server) -> UnixStream {
    let s = UnixStream::connect(xs.socket_path()).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    s
}

/// A request; the last argument of a write is its value, not terminated.
fn send(s: &mut UnixStream, ty: MsgType, req_id: u32, args: &[&str]) {
    let mut payload = wire::join_args(args);
    if ty == MsgType::Write {
        payload.pop();
    }
    s.write_all(&wire::encode(ty as u32, req_id, 0, &payload))
        .unwrap();
}

fn header(s: &mut UnixStream) -> Header {
    let mut h = [0u8; HEADER_LEN];
    s.read_exact(&mut h).unwrap();
    Header::decode(&h)
}

/// One whole message: (header, payload).
fn message(s: &mut UnixStream) -> (Header, Vec<u8>) {
    let h = header(s);
    let mut payload = vec![0; h.len as usize];
    s.read_exact(&mut payload).unwrap();
    (h, payload)
}

/// Everything until the server closes the connection.
fn rest(s: &mut UnixStream) -> Vec<u8> {
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    out
}

#[test]
fn garbage_and_huge_lengths_instead_of_the_next_reply() {
    let xs = server();
    let mut s = connect(&xs);
    xs.corrupt_next_reply(Corruption::Garbage);
    send(&mut s, MsgType::Write, 1, &["data/a", "1"]);
    let h = header(&mut s);
    assert_eq!((h.ty, h.req_id), (MsgType::Write as u32, 1));
    assert!(h.len as usize > PAYLOAD_MAX, "{h:?}");
    assert_eq!(
        xs.read("data/a").as_deref(),
        Some("1"),
        "the write was applied"
    );
    assert_eq!(xs.pending_corruption(), None, "only the next reply");
    // The next reply is whole again (the garbage header had no payload).
    send(&mut s, MsgType::Read, 2, &["data/a"]);
    let (h, payload) = message(&mut s);
    assert_eq!(
        (h.ty, h.req_id, payload),
        (MsgType::Read as u32, 2, b"1".to_vec())
    );

    xs.corrupt_next_reply(Corruption::HugeLength);
    send(&mut s, MsgType::Read, 3, &["data/a"]);
    let h = header(&mut s);
    assert_eq!((h.req_id, h.len), (3, u32::MAX));
}

#[test]
fn a_truncated_header_or_half_a_payload_then_the_connection_closes() {
    let xs = server();
    let mut s = connect(&xs);
    xs.corrupt_next_reply(Corruption::TruncatedHeader);
    send(&mut s, MsgType::Read, 1, &["domid"]);
    assert_eq!(rest(&mut s).len(), HEADER_LEN / 2);
    assert!(
        xs.wait_connections(0, T),
        "the server forgot the connection"
    );

    let mut s = connect(&xs);
    xs.corrupt_next_reply(Corruption::HalfPayload);
    send(&mut s, MsgType::Read, 1, &["name"]);
    let got = rest(&mut s);
    let h = Header::decode(got[..HEADER_LEN].try_into().unwrap());
    assert_eq!(h.len, 4, "name = \"domU\"");
    assert_eq!(&got[HEADER_LEN..], b"do", "half of the payload");

    // An empty payload is announced as one byte, which never comes.
    xs.write("data/empty", "").unwrap();
    let mut s = connect(&xs);
    xs.corrupt_next_reply(Corruption::HalfPayload);
    send(&mut s, MsgType::Read, 1, &["data/empty"]);
    let got = rest(&mut s);
    assert_eq!(got.len(), HEADER_LEN);
    assert_eq!(Header::decode(got[..].try_into().unwrap()).len, 1);
}

#[test]
fn unknown_request_ids_and_wrong_types_until_cleared() {
    let xs = server();
    let mut s = connect(&xs);
    xs.corrupt_replies(Corruption::UnknownRequestId);
    for id in [1, 2] {
        send(&mut s, MsgType::Read, id, &["domid"]);
        let (h, payload) = message(&mut s);
        assert_eq!((h.ty, h.req_id), (MsgType::Read as u32, id + 0x4000_0000));
        assert_eq!(payload, b"5");
    }
    xs.corrupt_replies(Corruption::WrongType);
    send(&mut s, MsgType::Read, 3, &["domid"]);
    assert_eq!(message(&mut s).0.ty, MsgType::Directory as u32);
    send(&mut s, MsgType::Directory, 4, &["device"]);
    assert_eq!(message(&mut s).0.ty, MsgType::Read as u32);
    // Errors are spoiled too.
    send(&mut s, MsgType::Read, 5, &["data/missing"]);
    let (h, payload) = message(&mut s);
    assert_eq!(
        (h.ty, payload),
        (MsgType::Directory as u32, b"ENOENT\0".to_vec())
    );
    xs.clear_corruption();
    send(&mut s, MsgType::Read, 6, &["domid"]);
    let (h, _) = message(&mut s);
    assert_eq!((h.ty, h.req_id), (MsgType::Read as u32, 6));
}

#[test]
fn dom0_replies_are_never_spoiled() {
    let xs = server();
    xs.corrupt_replies(Corruption::Garbage);
    let mut d = Client::connect(xs.dom0_socket_path().unwrap()).unwrap();
    assert_eq!(d.read("/local/domain/5/domid").unwrap(), "5");
    let mut g = Client::connect(xs.socket_path()).unwrap();
    assert!(g.read("domid").is_err(), "the guest's is");
}

#[test]
fn swallowed_replies_apply_the_request_and_send_nothing() {
    let xs = server();
    let mut s = connect(&xs);
    send(&mut s, MsgType::Watch, 1, &["data", "t"]);
    assert_eq!(message(&mut s).0.ty, MsgType::Watch as u32);
    assert_eq!(message(&mut s).0.ty, MsgType::WatchEvent as u32);
    xs.swallow_replies(true);
    send(&mut s, MsgType::Write, 2, &["data/a", "1"]);
    assert!(xs.wait_value("data/a", "1", T), "applied");
    xs.swallow_replies(false);
    send(&mut s, MsgType::Read, 3, &["data/a"]);
    // What came after the write: its watch event, then the read's reply;
    // no reply to request 2, ever.
    let (h, payload) = message(&mut s);
    assert_eq!(h.ty, MsgType::WatchEvent as u32);
    assert_eq!(payload, b"data/a\0t\0");
    let (h, payload) = message(&mut s);
    assert_eq!(
        (h.ty, h.req_id, payload),
        (MsgType::Read as u32, 3, b"1".to_vec())
    );
}

#[test]
fn spurious_watch_events_reach_every_guest_connection() {
    let xs = server();
    let mut a = Client::connect(xs.socket_path()).unwrap();
    let mut b = Client::connect(xs.socket_path()).unwrap();
    let mut d = Client::connect(xs.dom0_socket_path().unwrap()).unwrap();
    assert!(xs.wait_connections(3, T));
    xs.spurious_watch_event("data/x", "nobody-knows");
    for c in [&mut a, &mut b] {
        let e = c.next_event(T).expect("an event");
        assert_eq!(
            (e.path.as_str(), e.token.as_str()),
            ("data/x", "nobody-knows")
        );
    }
    // Not dom0's: its next message is the reply to its next request.
    d.read("/local/domain/5/domid").unwrap();
    assert!(d.pending_events().is_empty());
}
