//! Round trips of the native xenstore client against the test xenstored:
//! one READ, and a transaction of 10 writes sent pipelined (the start,
//! then the writes and the commit in one batch) or sequentially (one
//! request per round trip). A measurement to read, not a test:
//!
//! ```text
//! cargo run --release --example native_round_trips
//! ```

use std::time::Duration;

use test_xenstored::Server;
use tokio::time::Instant;
use xen_guest_agent::publishers::xenstore::native::{Client, Places, Reply, Request};

/// Repetitions of each case.
const RUNS: usize = 2000;

async fn batch(c: &mut Client, reqs: &[Request<'_>]) -> Vec<Reply> {
    let answers = c
        .batch(reqs, Instant::now() + Duration::from_secs(10))
        .await
        .expect("the connection holds");
    answers
        .into_iter()
        .map(|a| a.expect("xenstored agrees"))
        .collect()
}

async fn start(c: &mut Client) -> u32 {
    match batch(c, &[Request::TransactionStart]).await[..] {
        [Reply::Transaction(tx)] => tx,
        ref other => panic!("{other:?}"),
    }
}

/// Median and 90th percentile, in µs.
fn summary(mut times: Vec<Duration>) -> (f64, f64) {
    times.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    (us(times[times.len() / 2]), us(times[times.len() * 9 / 10]))
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let xs = Server::builder()
        .domid(5)
        .start()
        .expect("a test xenstored");
    let places = Places::from_vars(Some(xs.socket_path().into()), None);
    let mut c = Client::connect(&places).await.expect("connected");
    let paths: Vec<String> = (0..10).map(|i| format!("data/bench/{i}")).collect();
    let (mut read, mut piped, mut sequential) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..RUNS {
        let value = run.to_string();
        let t = std::time::Instant::now();
        batch(
            &mut c,
            &[Request::Read {
                tx: 0,
                path: "domid",
            }],
        )
        .await;
        read.push(t.elapsed());

        let t = std::time::Instant::now();
        let tx = start(&mut c).await;
        let mut reqs: Vec<Request<'_>> = paths
            .iter()
            .map(|path| Request::Write {
                tx,
                path,
                value: &value,
            })
            .collect();
        reqs.push(Request::TransactionEnd { tx, commit: true });
        batch(&mut c, &reqs).await;
        piped.push(t.elapsed());

        let value = format!("{run}s");
        let t = std::time::Instant::now();
        let tx = start(&mut c).await;
        for path in &paths {
            let w = Request::Write {
                tx,
                path,
                value: &value,
            };
            batch(&mut c, &[w]).await;
        }
        batch(&mut c, &[Request::TransactionEnd { tx, commit: true }]).await;
        sequential.push(t.elapsed());
    }
    println!("native client against test-xenstored, {RUNS} runs each (median, p90):");
    for (case, trips, requests, times) in [
        ("one READ", 1, 1, read),
        ("10-write transaction, pipelined", 2, 12, piped),
        ("10-write transaction, sequential", 12, 12, sequential),
    ] {
        let (median, p90) = summary(times);
        println!(
            "  {case:34} round trips {trips:2}, requests {requests:2}: {median:7.1} µs, p90 {p90:7.1} µs"
        );
    }
}
