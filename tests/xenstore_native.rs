//! The native xenstore client against the test xenstored, as guest
//! domain 5: nodes, transactions, watches, limits, and every fault the
//! server can inject. No root needed.

#![cfg(feature = "xenstore")]

use std::time::Duration;

use test_xenstored::{Corruption, Limits, MsgType, OpLogExt, Server};
use tokio::time::Instant;
use xen_guest_agent::publishers::xenstore::native::{
    Answer, Client, Errno, Lost, Places, Reply, Request, WatchEvent,
};

/// Long enough for anything that must happen.
const LONG: Duration = Duration::from_secs(10);

fn server() -> Server {
    Server::builder()
        .domid(5)
        .start()
        .expect("a test xenstored")
}

async fn connect(xs: &Server) -> Client {
    let places = Places::from_vars(Some(xs.socket_path().into()), None);
    Client::connect(&places).await.expect("connected")
}

async fn batch(c: &mut Client, reqs: &[Request<'_>]) -> Vec<Answer> {
    c.batch(reqs, Instant::now() + LONG)
        .await
        .expect("the connection holds")
}

/// One request's answer.
async fn one(c: &mut Client, req: Request<'_>) -> Answer {
    batch(c, &[req]).await.remove(0)
}

async fn event(c: &mut Client) -> (String, String) {
    let WatchEvent { path, token } = tokio::time::timeout(LONG, c.next_event())
        .await
        .expect("an event in time")
        .expect("the connection holds");
    (path, token)
}

fn ev(path: &str, token: &str) -> (String, String) {
    (path.to_string(), token.to_string())
}

fn value(v: &str) -> Answer {
    Ok(Reply::Value(v.to_string()))
}

const fn read(path: &str) -> Request<'_> {
    Request::Read { tx: 0, path }
}

const fn write<'a>(path: &'a str, value: &'a str) -> Request<'a> {
    Request::Write { tx: 0, path, value }
}

#[tokio::test]
async fn nodes_are_read_written_listed_and_removed() {
    let xs = server();
    let mut c = connect(&xs).await;
    let answers = batch(
        &mut c,
        &[
            write("data/a/x", "1"),
            write("data/a/y", "two words"),
            read("data/a/y"),
            Request::Directory {
                tx: 0,
                path: "data/a",
            },
            Request::GetPerms {
                tx: 0,
                path: "device/vif/0/state",
            },
            read("/local/domain/0/name"),
            read("data/missing"),
            write("control/feature-balloon", "1"),
            Request::GetDomainPath { domid: 5 },
        ],
    )
    .await;
    let perms = match &answers[4] {
        Ok(Reply::Perms(p)) => p.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    assert_eq!(perms, ["n5", "r0"]);
    assert_eq!(
        answers,
        [
            Ok(Reply::Done),
            Ok(Reply::Done),
            value("two words"),
            Ok(Reply::Children(vec!["x".into(), "y".into()])),
            answers[4].clone(),
            Err(Errno::EACCES),
            Err(Errno::ENOENT),
            Err(Errno::EACCES),
            value("/local/domain/5"),
        ]
    );
    assert_eq!(xs.read("data/a/y").as_deref(), Some("two words"));
    assert_eq!(xs.perms("data/a/x").as_deref(), Some("n5"));
    let rm = Request::Remove {
        tx: 0,
        path: "data/a",
    };
    assert_eq!(one(&mut c, rm).await, Ok(Reply::Done));
    assert!(!xs.exists("data/a"));
    assert_eq!(one(&mut c, read("data/a/x")).await, Err(Errno::ENOENT));
}

#[tokio::test]
async fn a_pipelined_transaction_commits_or_conflicts_whole() {
    let xs = server();
    let mut c = connect(&xs).await;
    xs.fail_next_commits(1);
    for attempt in 0..2 {
        let tx = match one(&mut c, Request::TransactionStart).await {
            Ok(Reply::Transaction(tx)) => tx,
            other => panic!("{other:?}"),
        };
        let names: Vec<String> = (0..10).map(|i| format!("data/t/{i}")).collect();
        let mut reqs: Vec<Request<'_>> = names
            .iter()
            .map(|p| Request::Write {
                tx,
                path: p,
                value: "v",
            })
            .collect();
        reqs.push(Request::Read {
            tx,
            path: "data/t/3",
        });
        reqs.push(Request::TransactionEnd { tx, commit: true });
        let answers = batch(&mut c, &reqs).await;
        assert_eq!(answers[10], value("v"), "the transaction sees its writes");
        if attempt == 0 {
            assert_eq!(answers[11], Err(Errno::EAGAIN), "the injected conflict");
            assert!(!xs.exists("data/t"), "nothing of it applied");
        } else {
            assert_eq!(answers[11], Ok(Reply::Done));
        }
    }
    assert_eq!(xs.read("data/t/9").as_deref(), Some("v"));
    let ops = xs.ops();
    let in_tx: Vec<_> = ops
        .of_kind(MsgType::Write)
        .into_iter()
        .map(|o| o.tx)
        .collect();
    assert_eq!(in_tx.len(), 20);
    assert!(
        in_tx.iter().all(|&tx| tx != 0),
        "every write in its transaction"
    );

    // Abandoned: nothing applied; the end of a transaction no longer open
    // is answered without asking.
    let Ok(Reply::Transaction(tx)) = one(&mut c, Request::TransactionStart).await else {
        panic!("no transaction")
    };
    let w = Request::Write {
        tx,
        path: "data/gone",
        value: "1",
    };
    let end = Request::TransactionEnd { tx, commit: false };
    assert_eq!(
        batch(&mut c, &[w, end]).await,
        [Ok(Reply::Done), Ok(Reply::Done)]
    );
    assert!(!xs.exists("data/gone"));
    let ends = xs.ops().of_kind(MsgType::TransactionEnd).len();
    assert_eq!(one(&mut c, end).await, Err(Errno::ENOENT));
    assert_eq!(
        xs.ops().of_kind(MsgType::TransactionEnd).len(),
        ends,
        "not sent"
    );

    // A new domain under an open transaction: EAGAIN at commit.
    let Ok(Reply::Transaction(tx)) = one(&mut c, Request::TransactionStart).await else {
        panic!("no transaction")
    };
    xs.new_domain(9);
    let w = Request::Write {
        tx,
        path: "data/x",
        value: "1",
    };
    let end = Request::TransactionEnd { tx, commit: true };
    assert_eq!(batch(&mut c, &[w, end]).await[1], Err(Errno::EAGAIN));
}

#[tokio::test]
async fn watches_fire_on_registration_on_change_and_in_a_new_domain() {
    let xs = server();
    let mut c = connect(&xs).await;
    let watch = Request::Watch {
        path: "unique-domain-id",
        token: "domain",
    };
    let watch_data = Request::Watch {
        path: "data",
        token: "data",
    };
    assert_eq!(
        batch(&mut c, &[watch, watch_data]).await,
        [Ok(Reply::Done), Ok(Reply::Done)]
    );
    assert_eq!(event(&mut c).await, ev("unique-domain-id", "domain"));
    assert_eq!(event(&mut c).await, ev("data", "data"));
    xs.set_unique_domain_id("1234").unwrap();
    assert_eq!(event(&mut c).await, ev("unique-domain-id", "domain"));
    // Our own write fires too; the event may come before or after the
    // reply, and is kept either way.
    assert_eq!(one(&mut c, write("data/x", "1")).await, Ok(Reply::Done));
    assert_eq!(event(&mut c).await, ev("data/x", "data"));
    xs.new_domain(9);
    let mut after = vec![event(&mut c).await, event(&mut c).await];
    after.sort();
    assert_eq!(
        after,
        [ev("data", "data"), ev("unique-domain-id", "domain")]
    );
    assert_eq!(one(&mut c, read("domid")).await, value("9"));
    let unwatch = Request::Unwatch {
        path: "data",
        token: "data",
    };
    assert_eq!(one(&mut c, unwatch).await, Ok(Reply::Done));
    assert_eq!(one(&mut c, write("data/y", "1")).await, Ok(Reply::Done));
    // Nothing came from that write: the next event is a marker sent after it.
    xs.spurious_watch_event("marker", "marker");
    assert_eq!(event(&mut c).await, ev("marker", "marker"));
    assert_eq!(one(&mut c, unwatch).await, Err(Errno::ENOENT));
}

#[tokio::test]
async fn a_watch_event_with_an_unknown_token_is_handed_over() {
    let xs = server();
    let mut c = connect(&xs).await;
    assert_eq!(one(&mut c, read("domid")).await, value("5"));
    xs.spurious_watch_event("data/x", "nobody-knows");
    assert_eq!(event(&mut c).await, ev("data/x", "nobody-knows"));
    // The client knows no tokens: its caller sorts them.
    xs.spurious_watch_event("@releaseDomain", "");
    assert_eq!(event(&mut c).await, ev("@releaseDomain", ""));
}

/// Start `how` on the guest's next reply; the client must lose the
/// connection, say so with `says`, stay unusable, and a new one must work.
async fn spoiled(how: Corruption, says: &str) {
    let xs = server();
    let mut c = connect(&xs).await;
    assert_eq!(one(&mut c, read("domid")).await, value("5"));
    xs.corrupt_next_reply(how);
    let lost: Lost = c
        .batch(
            &[write("data/a", "1"), read("domid")],
            Instant::now() + LONG,
        )
        .await
        .expect_err("a spoiled reply loses the connection");
    assert!(lost.to_string().contains(says), "{how:?}: {lost}");
    assert!(
        lost.to_string()
            .contains(&xs.socket_path().display().to_string()),
        "{lost}: says where"
    );
    assert_eq!(c.next_event().await.expect_err("unusable"), lost);
    let mut c = connect(&xs).await;
    assert_eq!(one(&mut c, read("data/a")).await, value("1"), "{how:?}");
}

#[tokio::test]
async fn garbage_instead_of_a_reply_loses_the_connection() {
    spoiled(Corruption::Garbage, "announcing 4097 bytes").await;
}

#[tokio::test]
async fn a_huge_length_loses_the_connection() {
    spoiled(Corruption::HugeLength, "announcing 4294967295 bytes").await;
}

#[tokio::test]
async fn a_truncated_header_loses_the_connection() {
    spoiled(
        Corruption::TruncatedHeader,
        "closed in the middle of a message",
    )
    .await;
}

#[tokio::test]
async fn half_a_payload_loses_the_connection() {
    spoiled(Corruption::HalfPayload, "closed in the middle of a message").await;
}

#[tokio::test]
async fn a_reply_with_an_unknown_request_id_loses_the_connection() {
    spoiled(Corruption::UnknownRequestId, "which is not waiting for one").await;
}

#[tokio::test]
async fn a_reply_of_an_unexpected_type_loses_the_connection() {
    spoiled(
        Corruption::WrongType,
        "wrong type (XS_DIRECTORY) to request",
    )
    .await;
}

#[tokio::test]
async fn a_hung_xenstored_is_a_loss_at_the_deadline() {
    let xs = server();
    let mut c = connect(&xs).await;
    xs.swallow_replies(true);
    let deadline = Instant::now() + Duration::from_millis(200);
    let lost = c
        .batch(&[write("data/a", "1"), read("domid")], deadline)
        .await
        .expect_err("no reply");
    assert!(
        lost.to_string()
            .contains("no reply within the deadline (2 of 2 requests unanswered)"),
        "{lost}"
    );
    assert_eq!(xs.read("data/a").as_deref(), Some("1"), "it was applied");
    xs.swallow_replies(false);
    let mut c = connect(&xs).await;
    assert_eq!(one(&mut c, read("data/a")).await, value("1"));
}

#[tokio::test]
async fn dropped_connections_and_restarts_are_losses() {
    let xs = server();
    let mut c = connect(&xs).await;
    let watch = Request::Watch {
        path: "data",
        token: "t",
    };
    assert_eq!(one(&mut c, watch).await, Ok(Reply::Done));
    assert_eq!(event(&mut c).await, ev("data", "t"));
    xs.drop_connections();
    let lost = c.next_event().await.expect_err("dropped");
    assert!(lost.to_string().contains("closed the connection"), "{lost}");
    let mut c = connect(&xs).await;
    xs.restart().unwrap();
    let lost = c
        .batch(&[read("domid")], Instant::now() + LONG)
        .await
        .expect_err("restarted");
    assert!(
        ["closed the connection", "reset by peer", "Broken pipe"]
            .iter()
            .any(|s| lost.to_string().contains(s)),
        "{lost}"
    );
    let mut c = connect(&xs).await;
    assert_eq!(one(&mut c, read("domid")).await, value("5"));
    xs.stop();
    let e = Client::connect(&Places::from_vars(Some(xs.socket_path().into()), None))
        .await
        .err()
        .expect("nothing to connect to");
    assert!(
        e.to_string().starts_with("cannot connect to xenstore: "),
        "{e}"
    );
}

#[tokio::test]
async fn requests_over_the_limits_never_reach_xenstored() {
    let xs = server();
    let mut c = connect(&xs).await;
    let big = "x".repeat(4096);
    let answers = batch(
        &mut c,
        &[
            write("data/big", &big),
            write("data/bad path", "1"),
            Request::Watch {
                path: "data/",
                token: "t",
            },
            write("data/ok", "1"),
        ],
    )
    .await;
    assert_eq!(
        answers,
        [
            Err(Errno::E2BIG),
            Err(Errno::EINVAL),
            Err(Errno::EINVAL),
            Ok(Reply::Done)
        ]
    );
    let guest: Vec<_> = xs
        .ops()
        .by_guest()
        .iter()
        .map(|o| o.path.clone().unwrap_or_default())
        .collect();
    assert_eq!(guest, ["/local/domain/5/data/ok"]);
    // What xenstored refuses itself still comes back as its answer: a
    // value over the node size limit, oxenstored's EQUOTA as EINVAL.
    let node_max = "x".repeat(2100);
    assert_eq!(
        one(&mut c, write("data/big", &node_max)).await,
        Err(Errno::ENOSPC)
    );
    let xs = Server::builder()
        .domid(5)
        .limits(Limits {
            quota_errno: test_xenstored::Errno::EQUOTA,
            ..Limits::default()
        })
        .start()
        .unwrap();
    xs.set_quota_exceeded(true);
    let mut c = connect(&xs).await;
    assert_eq!(one(&mut c, write("data/q", "1")).await, Err(Errno::EINVAL));
}
