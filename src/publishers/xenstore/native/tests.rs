//! The client against small fake xenstoreds (a thread each, on a unix
//! socket, or on a datagram socket standing for the xenbus device, which
//! keeps each write a message of its own): framing, pipelining, matching
//! by id, events among replies, faults, deadlines, cancellation.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixDatagram, UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::time::Instant;

use super::client::device_refusal;
use super::transport::Channel;
use super::wire::*;
use super::*;

/// Long enough for anything that must happen.
const LONG: Duration = Duration::from_secs(10);

fn later() -> Instant {
    Instant::now() + LONG
}

fn message(kind: u32, req_id: u32, tx: u32, payload: &[u8]) -> Vec<u8> {
    let mut m = Vec::new();
    for field in [kind, req_id, tx, payload.len() as u32] {
        m.extend_from_slice(&field.to_ne_bytes());
    }
    m.extend_from_slice(payload);
    m
}

fn event(path: &str, token: &str) -> Vec<u8> {
    message(
        XS_WATCH_EVENT,
        0,
        0,
        format!("{path}\0{token}\0").as_bytes(),
    )
}

/// A request as the fake server reads it.
#[derive(Debug, PartialEq, Eq)]
struct Req {
    kind: u32,
    req_id: u32,
    tx: u32,
    payload: Vec<u8>,
}

impl Req {
    fn parse(bytes: &[u8]) -> Req {
        let f = |i: usize| u32::from_ne_bytes(bytes[4 * i..4 * i + 4].try_into().unwrap());
        assert_eq!(bytes.len(), HEADER_LEN + f(3) as usize, "one whole message");
        Req {
            kind: f(0),
            req_id: f(1),
            tx: f(2),
            payload: bytes[HEADER_LEN..].to_vec(),
        }
    }

    /// The reply of the request's own type.
    fn reply(&self, payload: &[u8]) -> Vec<u8> {
        message(self.kind, self.req_id, self.tx, payload)
    }
}

fn request(c: &mut UnixStream) -> Req {
    let mut h = [0u8; HEADER_LEN];
    c.read_exact(&mut h).expect("a request");
    let len = u32::from_ne_bytes(h[12..16].try_into().unwrap()) as usize;
    let mut m = h.to_vec();
    m.resize(HEADER_LEN + len, 0);
    c.read_exact(&mut m[HEADER_LEN..]).expect("its payload");
    Req::parse(&m)
}

/// Keep the connection open until the client closes its end.
fn hold(c: &mut UnixStream) {
    let _ = c.read_to_end(&mut Vec::new());
}

/// A fake xenstored on a fresh socket: `serve` gets its one connection.
struct Fake {
    dir: PathBuf,
    server: Option<JoinHandle<()>>,
}

impl Fake {
    fn start(serve: impl FnOnce(UnixStream) + Send + 'static) -> (Fake, Places) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("xga-native-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let sock = dir.join("xs.sock");
        let listener = UnixListener::bind(&sock).unwrap();
        let server = std::thread::spawn(move || {
            let (c, _) = listener.accept().unwrap();
            c.set_read_timeout(Some(LONG)).unwrap();
            serve(c)
        });
        let fake = Fake {
            dir,
            server: Some(server),
        };
        (fake, Places::from_vars(Some(sock), None))
    }

    /// Wait for the server's end; its assertions fail the test.
    fn join(mut self) {
        if let Some(s) = self.server.take() {
            s.join().expect("the fake xenstored's checks hold");
        }
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn connect(places: &Places) -> Client {
    Client::connect(places).await.expect("connected")
}

#[tokio::test]
async fn a_batch_is_written_at_once_and_replies_match_by_id_in_any_order() {
    let (fake, places) = Fake::start(|mut c| {
        // All five requests arrive in one read, before any reply: a
        // client that waited for a reply would never send the rest.
        let mut buf = vec![0; 64 * 1024];
        let n = c.read(&mut buf).unwrap();
        let mut reqs = Vec::new();
        let mut at = 0;
        while at < n {
            let len = u32::from_ne_bytes(buf[at + 12..at + 16].try_into().unwrap()) as usize;
            reqs.push(Req::parse(&buf[at..at + HEADER_LEN + len]));
            at += HEADER_LEN + len;
        }
        assert_eq!(reqs.len(), 5, "{reqs:?}");
        assert_eq!(reqs[1].payload, b"data/b\0new value");
        assert_eq!(reqs[1].tx, 7);
        // Backwards, with events among them and the bytes in pieces.
        let mut out = Vec::new();
        out.extend(reqs[4].reply(b"OK\0"));
        out.extend(event("data", "mine"));
        out.extend(reqs[3].reply(b"n5\0r0\0"));
        out.extend(message(XS_ERROR, reqs[2].req_id, 0, b"ENOENT\0"));
        out.extend(event("data/b", "someone else's"));
        out.extend(reqs[1].reply(b"OK\0"));
        out.extend(reqs[0].reply(b"a value"));
        for piece in out.chunks(5) {
            c.write_all(piece).unwrap();
        }
        // The second batch: ids go on.
        let r = request(&mut c);
        assert_eq!(r.req_id, reqs[4].req_id + 1);
        c.write_all(&r.reply(b"a\0b\0")).unwrap();
    });
    let mut client = connect(&places).await;
    let reqs = [
        Request::Read {
            tx: 0,
            path: "data/a",
        },
        Request::Write {
            tx: 7,
            path: "data/b",
            value: "new value",
        },
        Request::Read {
            tx: 0,
            path: "data/missing",
        },
        Request::GetPerms {
            tx: 0,
            path: "data",
        },
        Request::Watch {
            path: "data",
            token: "mine",
        },
    ];
    let answers = client.batch(&reqs, later()).await.unwrap();
    let perms = vec![
        Perm {
            domid: 5,
            read: false,
            write: false,
        },
        Perm {
            domid: 0,
            read: true,
            write: false,
        },
    ];
    assert_eq!(
        answers,
        [
            Ok(Reply::Value("a value".into())),
            Ok(Reply::Done),
            Err(Errno::ENOENT),
            Ok(Reply::Perms(perms)),
            Ok(Reply::Done),
        ]
    );
    let dir = Request::Directory {
        tx: 0,
        path: "data",
    };
    let answers = client.batch(&[dir], later()).await.unwrap();
    assert_eq!(answers, [Ok(Reply::Children(vec!["a".into(), "b".into()]))]);
    // The events that came among the replies, in order.
    let e = client.next_event().await.unwrap();
    assert_eq!((e.path.as_str(), e.token.as_str()), ("data", "mine"));
    let e = client.next_event().await.unwrap();
    assert_eq!(
        (e.path.as_str(), e.token.as_str()),
        ("data/b", "someone else's")
    );
    fake.join();
}

#[tokio::test]
async fn requests_over_the_limits_are_answered_here_and_never_sent() {
    let (fake, places) = Fake::start(|mut c| {
        // Only the valid read comes, with the id of its place in the
        // batch (the refused ones used theirs).
        let r = request(&mut c);
        assert_eq!(
            (r.kind, r.req_id, r.payload.as_slice()),
            (XS_READ, 4, &b"ok\0"[..])
        );
        c.write_all(&r.reply(b"v")).unwrap();
        // The next batch: a transaction's writes and end; the second end
        // of the same transaction is not sent.
        let r = request(&mut c);
        assert_eq!(r.kind, XS_TRANSACTION_START);
        c.write_all(&r.reply(b"12\0")).unwrap();
        let w = request(&mut c);
        let end = request(&mut c);
        assert_eq!(
            (w.kind, w.tx, end.kind, end.tx),
            (XS_WRITE, 12, XS_TRANSACTION_END, 12)
        );
        c.write_all(&end.reply(b"OK\0")).unwrap();
        c.write_all(&w.reply(b"OK\0")).unwrap();
        let r = request(&mut c);
        assert_eq!(r.payload, b"last\0", "nothing else was sent");
        c.write_all(&r.reply(b"")).unwrap();
    });
    let mut client = connect(&places).await;
    let big = "x".repeat(PAYLOAD_MAX);
    let reqs = [
        Request::Write {
            tx: 0,
            path: "data/a",
            value: &big,
        },
        Request::Read {
            tx: 0,
            path: "data//a",
        },
        Request::TransactionEnd {
            tx: 3,
            commit: true,
        },
        Request::Read { tx: 0, path: "ok" },
    ];
    let answers = client.batch(&reqs, later()).await.unwrap();
    assert_eq!(
        answers,
        [
            Err(Errno::E2BIG),
            Err(Errno::EINVAL),
            Err(Errno::ENOENT),
            Ok(Reply::Value("v".into()))
        ]
    );
    let tx = match client.batch(&[Request::TransactionStart], later()).await {
        Ok(a) if a == [Ok(Reply::Transaction(12))] => 12,
        other => panic!("{other:?}"),
    };
    let end = Request::TransactionEnd { tx, commit: true };
    let reqs = [
        Request::Write {
            tx,
            path: "data/a",
            value: "1",
        },
        end,
        end,
    ];
    let answers = client.batch(&reqs, later()).await.unwrap();
    assert_eq!(
        answers,
        [Ok(Reply::Done), Ok(Reply::Done), Err(Errno::ENOENT)]
    );
    let last = Request::Read {
        tx: 0,
        path: "last",
    };
    assert_eq!(
        client.batch(&[last], later()).await.unwrap(),
        [Ok(Reply::Value(String::new()))]
    );
    assert_eq!(client.batch(&[], later()).await.unwrap(), []);
    fake.join();
}

#[tokio::test]
async fn request_ids_wrap_around_and_are_never_0() {
    let (fake, places) = Fake::start(|mut c| {
        for want in [u32::MAX - 4, u32::MAX - 3, 1, 2] {
            let r = request(&mut c);
            assert_eq!(r.req_id, want);
            c.write_all(&r.reply(b"v")).unwrap();
        }
    });
    let (mut client, read) = (connect(&places).await, Request::Read { tx: 0, path: "a" });
    client.set_next_id(u32::MAX - 4);
    assert_eq!(client.batch(&[read; 2], later()).await.unwrap().len(), 2);
    // Ids up to u32::MAX - 1 would do, but not the one after: from 1 again.
    assert_eq!(client.batch(&[read; 2], later()).await.unwrap().len(), 2);
    fake.join();
}

/// A fake xenstored that answers the first request with `bad` (then
/// closes the connection if `close`); the client must give up with a
/// message containing `says`, and stay unusable.
async fn fault(bad: impl FnOnce(&Req) -> Vec<u8> + Send + 'static, close: bool, says: &str) {
    let (fake, places) = Fake::start(move |mut c| {
        // Both requests read (a socket closed with unread bytes is
        // reset, and the reply lost with it).
        let r = request(&mut c);
        let _ = request(&mut c);
        c.write_all(&bad(&r)).unwrap();
        if !close {
            hold(&mut c);
        }
    });
    let mut client = connect(&places).await;
    let read = Request::Read {
        tx: 0,
        path: "data/a",
    };
    let watch = Request::Watch {
        path: "data",
        token: "t",
    };
    let lost = client.batch(&[read, watch], later()).await.unwrap_err();
    assert!(
        lost.to_string().contains(says),
        "{lost}: should say {says:?}"
    );
    assert!(
        lost.to_string().contains("xs.sock"),
        "{lost}: should say where"
    );
    let again = client.next_event().await.unwrap_err();
    assert_eq!(again, lost, "unusable after a loss");
    assert_eq!(client.batch(&[read], later()).await.unwrap_err(), lost);
    drop(client);
    fake.join();
}

#[tokio::test]
async fn a_reply_to_a_request_never_made_is_a_loss() {
    fault(
        |r| message(XS_READ, r.req_id + 1000, 0, b"v"),
        false,
        "request 1001",
    )
    .await;
}

#[tokio::test]
async fn a_second_reply_to_the_same_request_is_a_loss() {
    let twice = |r: &Req| [r.reply(b"v"), r.reply(b"v")].concat();
    fault(twice, false, "request 1, which is not waiting").await;
}

#[tokio::test]
async fn a_reply_of_the_wrong_type_is_a_loss() {
    let wrong = |r: &Req| message(XS_DIRECTORY, r.req_id, 0, b"a\0");
    fault(
        wrong,
        false,
        "wrong type (XS_DIRECTORY) to request 1 (XS_READ)",
    )
    .await;
}

#[tokio::test]
async fn a_header_announcing_too_much_is_a_loss() {
    for len in [PAYLOAD_MAX as u32 + 1, u32::MAX] {
        let says = format!("announcing {len} bytes");
        let huge = move |r: &Req| {
            let mut m = r.reply(b"");
            m[12..16].copy_from_slice(&len.to_ne_bytes());
            m
        };
        fault(huge, false, &says).await;
    }
}

#[tokio::test]
async fn garbage_is_a_loss() {
    fault(|_| vec![0xff; 64], false, "announcing 4294967295 bytes").await;
    let bad_event = |_: &Req| message(XS_WATCH_EVENT, 0, 0, b"no token");
    fault(bad_event, false, "watch event without path and token").await;
}

#[tokio::test]
async fn a_malformed_reply_is_a_loss() {
    let (fake, places) = Fake::start(|mut c| {
        let r = request(&mut c);
        c.write_all(&r.reply(b"x5\0")).unwrap();
        hold(&mut c);
    });
    let mut client = connect(&places).await;
    let get = Request::GetPerms {
        tx: 0,
        path: "data",
    };
    let lost = client.batch(&[get], later()).await.unwrap_err();
    assert!(
        lost.to_string()
            .contains("malformed reply (XS_GET_PERMS): permission \"x5\""),
        "{lost}"
    );
    drop(client);
    fake.join();
}

#[tokio::test]
async fn a_connection_closed_in_a_message_or_between_is_a_loss() {
    let half_header = |r: &Req| r.reply(b"value")[..HEADER_LEN / 2].to_vec();
    fault(half_header, true, "closed in the middle of a message").await;
    let half_payload = |r: &Req| r.reply(b"value")[..HEADER_LEN + 2].to_vec();
    fault(half_payload, true, "closed in the middle of a message").await;
    fault(|_| Vec::new(), true, "xenstore closed the connection").await;
    // Between batches: next_event sees it.
    let (fake, places) = Fake::start(drop);
    let mut client = connect(&places).await;
    let lost = client.next_event().await.unwrap_err();
    assert!(lost.to_string().contains("closed the connection"), "{lost}");
    fake.join();
}

#[tokio::test]
async fn a_reply_between_batches_is_a_loss() {
    let (go, wait) = mpsc::channel::<()>();
    let (fake, places) = Fake::start(move |mut c| {
        let r = request(&mut c);
        c.write_all(&r.reply(b"v")).unwrap();
        wait.recv().unwrap();
        c.write_all(&r.reply(b"v")).unwrap();
        hold(&mut c);
    });
    let mut client = connect(&places).await;
    let read = Request::Read { tx: 0, path: "a" };
    client.batch(&[read], later()).await.unwrap();
    go.send(()).unwrap();
    let lost = client.next_event().await.unwrap_err();
    assert!(lost.to_string().contains("not waiting"), "{lost}");
    drop(client);
    fake.join();
}

#[tokio::test]
async fn no_reply_by_the_deadline_is_a_loss() {
    let (fake, places) = Fake::start(move |mut c| {
        let r = request(&mut c);
        let _ = request(&mut c);
        // Only the first is answered; then silence.
        c.write_all(&r.reply(b"v")).unwrap();
        hold(&mut c);
    });
    let mut client = connect(&places).await;
    let read = Request::Read { tx: 0, path: "a" };
    let deadline = Instant::now() + Duration::from_millis(100);
    let lost = client.batch(&[read, read], deadline).await.unwrap_err();
    assert!(
        lost.to_string()
            .contains("no reply within the deadline (1 of 2 requests unanswered)"),
        "{lost}"
    );
    assert!(Instant::now() >= deadline);
    assert_eq!(client.next_event().await.unwrap_err(), lost);
    drop(client);
    fake.join();
}

#[tokio::test]
async fn a_cancelled_batch_leaves_the_client_unusable() {
    let (fake, places) = Fake::start(move |mut c| {
        let _ = request(&mut c);
        hold(&mut c);
    });
    let mut client = connect(&places).await;
    let read = Request::Read { tx: 0, path: "a" };
    let cancelled =
        tokio::time::timeout(Duration::from_millis(50), client.batch(&[read], later())).await;
    assert!(cancelled.is_err(), "never answered");
    let lost = client.next_event().await.unwrap_err();
    assert!(lost.to_string().contains("cancelled"), "{lost}");
    assert_eq!(client.batch(&[read], later()).await.unwrap_err(), lost);
    drop(client);
    fake.join();
}

#[tokio::test]
async fn next_event_loses_nothing_when_cancelled() {
    const EVENTS: usize = 300;
    let (go, wait) = mpsc::channel::<()>();
    let (fake, places) = Fake::start(move |mut c| {
        let first = event("data/first", "t");
        c.write_all(&first[..HEADER_LEN + 3]).unwrap();
        wait.recv().unwrap();
        c.write_all(&first[HEADER_LEN + 3..]).unwrap();
        // Many events, in pieces of 3 bytes, while the client's
        // next_event keeps being cancelled by a busier branch.
        let mut all = Vec::new();
        for i in 0..EVENTS {
            all.extend(event(&format!("data/{i}"), &format!("token{i}")));
        }
        for piece in all.chunks(3) {
            c.write_all(piece).unwrap();
        }
        hold(&mut c);
    });
    let mut client = connect(&places).await;
    // Cancelled while half an event is read.
    let give_up = Instant::now() + LONG;
    while client.buffered() == 0 {
        assert!(Instant::now() < give_up, "the first half never came");
        let cancelled = tokio::time::timeout(Duration::from_millis(10), client.next_event()).await;
        assert!(
            cancelled.is_err(),
            "half an event is no event: {cancelled:?}"
        );
    }
    go.send(()).unwrap();
    let e = tokio::time::timeout(LONG, client.next_event())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((e.path.as_str(), e.token.as_str()), ("data/first", "t"));
    let mut tick = tokio::time::interval(Duration::from_micros(50));
    let (mut got, mut split) = (Vec::new(), 0);
    while got.len() < EVENTS {
        tokio::select! {
            e = client.next_event() => got.push(e.unwrap()),
            _ = tick.tick() => split += usize::from(client.buffered() > 0),
        }
    }
    // How often it was cancelled with part of an event read depends on
    // timing; the first event above was, for certain.
    eprintln!("next_event cancelled {split} times in the middle of an event");
    for (i, e) in got.iter().enumerate() {
        assert_eq!(
            (e.path.clone(), e.token.clone()),
            (format!("data/{i}"), format!("token{i}"))
        );
    }
    drop(client);
    fake.join();
}

#[tokio::test]
async fn events_nobody_takes_are_a_loss_past_a_limit() {
    let (fake, places) = Fake::start(move |mut c| {
        let r = request(&mut c);
        // The client may give up (and close) before all is written.
        for _ in 0..1025 {
            let _ = c.write_all(&event("data", "t"));
        }
        let _ = c.write_all(&r.reply(b"v"));
        hold(&mut c);
    });
    let mut client = connect(&places).await;
    let read = Request::Read { tx: 0, path: "a" };
    let lost = client.batch(&[read], later()).await.unwrap_err();
    assert!(
        lost.to_string().contains("over 1024 watch events"),
        "{lost}"
    );
    drop(client);
    fake.join();
}

/// A client on a stand-in for the xenbus device: a datagram socket, so
/// that the fake server sees each `write` as one datagram.
fn device() -> (Client, UnixDatagram) {
    let (ours, theirs) = UnixDatagram::pair().unwrap();
    ours.set_nonblocking(true).unwrap();
    theirs.set_read_timeout(Some(LONG)).unwrap();
    let file = File::from(OwnedFd::from(ours));
    (Client::on(Channel::Device(file)), theirs)
}

fn datagram(s: &UnixDatagram) -> Req {
    let mut buf = vec![0; 2 * (HEADER_LEN + PAYLOAD_MAX)];
    let n = s.recv(&mut buf).expect("a request");
    Req::parse(&buf[..n])
}

#[tokio::test]
async fn the_device_gets_one_message_per_write_and_one_request_at_a_time() {
    let (mut client, dev) = device();
    let server = std::thread::spawn(move || {
        // The next request must not come before this one is answered (the
        // kernel would send it with the next one's payload).
        let alone = |dev: &UnixDatagram| {
            dev.set_read_timeout(Some(Duration::from_millis(50)))
                .unwrap();
            let mut buf = [0u8; 64];
            let more = dev.recv(&mut buf);
            dev.set_read_timeout(None).unwrap();
            assert!(more.is_err(), "a second request in flight on the device");
        };
        // Req::parse checks that each datagram is exactly one message.
        let watch = datagram(&dev);
        assert_eq!(watch.kind, XS_WATCH);
        alone(&dev);
        // Linux before 4.11 answers a watch itself, with request id 0.
        dev.send(&message(XS_WATCH, 0, 0, b"OK\0")).unwrap();
        dev.send(&event("data", "t")).unwrap();
        let a = datagram(&dev);
        assert_eq!(a.payload, b"data/a\0");
        alone(&dev);
        dev.send(&a.reply(b"1")).unwrap();
        let b = datagram(&dev);
        assert_eq!(b.payload, b"data/b\0");
        dev.send(&b.reply(b"2")).unwrap();
        // A payload of 4081 bytes is not sent (the device would refuse
        // it); the next request is.
        let r = datagram(&dev);
        assert_eq!(r.payload, b"next\0");
        dev.send(&r.reply(b"n")).unwrap();
    });
    let reqs = [
        Request::Watch {
            path: "data",
            token: "t",
        },
        Request::Read {
            tx: 0,
            path: "data/a",
        },
        Request::Read {
            tx: 0,
            path: "data/b",
        },
    ];
    let answers = client.batch(&reqs, later()).await.unwrap();
    let value = |v: &str| Ok(Reply::Value(v.into()));
    assert_eq!(answers, [Ok(Reply::Done), value("1"), value("2")]);
    let e = client.next_event().await.unwrap();
    assert_eq!((e.path.as_str(), e.token.as_str()), ("data", "t"));
    // path\0 is 7 bytes.
    let big = "x".repeat(PAYLOAD_MAX - HEADER_LEN - 6);
    let reqs = [
        Request::Write {
            tx: 0,
            path: "data/a",
            value: &big,
        },
        Request::Read {
            tx: 0,
            path: "next",
        },
    ];
    let answers = client.batch(&reqs, later()).await.unwrap();
    assert_eq!(answers, [Err(Errno::E2BIG), value("n")]);
    server.join().unwrap();
}

#[tokio::test]
async fn a_device_that_takes_no_write_is_a_loss() {
    let (mut client, dev) = device();
    drop(dev);
    let read = Request::Read { tx: 0, path: "a" };
    let lost = client.batch(&[read], later()).await.unwrap_err();
    assert!(lost.to_string().contains("sending a request"), "{lost}");
}

#[test]
fn only_xenstore_errors_from_a_device_write_are_answers() {
    let e = |code| std::io::Error::from_raw_os_error(code);
    assert_eq!(device_refusal(&e(libc::EEXIST)), Some(Errno(libc::EEXIST)));
    assert_eq!(device_refusal(&e(libc::EACCES)), Some(Errno::EACCES));
    for gone in [libc::ECONNREFUSED, libc::EBADF, libc::ENODEV, libc::EFAULT] {
        assert_eq!(device_refusal(&e(gone)), None, "{gone}");
    }
    assert_eq!(device_refusal(&std::io::Error::other("?")), None);
}
