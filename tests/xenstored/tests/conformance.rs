//! The probe (tests/common/probe.rs) against this server must answer as C
//! xenstored 4.17 did in a real PV guest (tests/data/c-xenstored-4.17.txt,
//! recorded with examples/conformance.rs in the xenvm harness).

mod common;

use std::time::Duration;

use test_xenstored::{Client, Server};

/// Lines where the recording shows the guest kernel, not xenstored: the
/// xenbus device refuses a watch on an invalid path itself.
const KERNEL_SHAPED: &[&str] = &["watch invalid path:"];

fn keep(line: &&str) -> bool {
    !KERNEL_SHAPED.iter().any(|k| line.starts_with(k))
}

#[test]
fn answers_like_c_xenstored() {
    let reference = include_str!("data/c-xenstored-4.17.txt");
    // domid 1, as in the recording (the quota lines count the guest's nodes)
    let xs = Server::builder().domid(1).start().unwrap();
    let mut c = Client::connect(xs.socket_path()).unwrap();
    let ours = common::probe::run(&mut c, Duration::from_millis(100));
    let want: Vec<&str> = reference.lines().filter(keep).collect();
    let have: Vec<&str> = ours.iter().map(String::as_str).filter(keep).collect();
    for (w, h) in want.iter().zip(&have) {
        assert_eq!(w, h, "first difference with C xenstored");
    }
    assert_eq!(want.len(), have.len());
}
