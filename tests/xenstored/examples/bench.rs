//! Round-trip cost of the test xenstored: `cargo run --release -p
//! test-xenstored --example bench [N]` starts an in-process server and times
//! N writes and N reads from one guest client, then N writes with one
//! watcher connected.

use std::time::{Duration, Instant};

use test_xenstored::{Client, Server};

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000);
    let xs = Server::builder().domid(1).start().expect("start");
    let mut c = Client::connect(xs.socket_path()).expect("connect");
    let t = Instant::now();
    for i in 0..n {
        c.write(&format!("data/bench/{}", i % 100), &i.to_string())
            .expect("write");
    }
    report("write", n, t.elapsed());
    let t = Instant::now();
    for i in 0..n {
        c.read(&format!("data/bench/{}", i % 100)).expect("read");
    }
    report("read", n, t.elapsed());
    let mut w = Client::connect(xs.socket_path()).expect("connect");
    w.watch("data", "bench").expect("watch");
    let t = Instant::now();
    for i in 0..n {
        c.write(&format!("data/bench/{}", i % 100), "x")
            .expect("write");
    }
    let mut events = 0;
    while w.next_event(Duration::from_secs(5)).is_some() {
        events += 1;
        if events > n {
            break;
        }
    }
    report("write + watch event", n, t.elapsed());
    eprintln!("events received: {events} (1 initial + {n})");
}

fn report(what: &str, n: usize, d: Duration) {
    let us = d.as_secs_f64() * 1e6 / n as f64;
    println!("{what}: {n} in {:.2?} ({us:.1} us each)", d);
}
