//! The session against the in-memory store, with the real schemas: what
//! reaches xenstore, in how many round trips, and how faults are survived.

use super::super::native::Errno;
use super::super::schedule::Outcome;
use super::super::schema::fixtures::{self, ctx, iface, link};
use super::super::schema::rfc::Rfc;
use super::super::schema::standard::Standard as Std;
use super::super::schema::{Nodes, Schema};
use super::super::store::memory::Memory;
use super::super::store::Opener;
use super::*;
use crate::state::{Address, Guest, Interface, Kind, Link, MemoryInfo};

fn stamp() -> String {
    "T".into()
}

/// A later second than [`stamp`].
fn stamp2() -> String {
    "T2".into()
}

/// The fixtures' guest with `eth0` (VIF 0) holding `addrs` (/24), and
/// `free` KiB available out of 1000.
fn guest(free: u64, addrs: &[&str]) -> Guest {
    let addrs: Vec<(&str, u8)> = addrs.iter().map(|a| (*a, 24)).collect();
    let eth0 = iface(
        link(2, "eth0", Some("00:16:3e:00:00:01"), Kind::Vif(0)),
        &addrs,
    );
    let mut g = fixtures::guest(vec![eth0]);
    g.memory = Some(MemoryInfo {
        total_kib: 1000,
        available_kib: free,
    });
    g
}

/// A std session on `m`, its clock at [`stamp`].
fn std_session(m: &Memory) -> Session {
    let mut s = Session::new(
        Opener::Memory(m.clone()),
        Box::new(Std::new()),
        Rfc::new().owned(),
        ctx(),
    );
    s.set_clock(stamp);
    s
}

/// What the std schema wants for `g`, with `data/updated` = `stamp`.
fn std_tree(g: &Guest, stamp: &str) -> Nodes {
    let mut n = Std::new().render(g, &ctx());
    n.insert(UPDATED.into(), stamp.into());
    n
}

/// Connect, read SR-IOV, reconcile `g`: what the schedule does at start.
async fn start(s: &mut Session, g: &Guest) {
    assert_eq!(s.connect().await, Outcome::Connected);
    assert!(matches!(
        s.check(false, true).await,
        Outcome::Checked { .. }
    ));
    assert_eq!(s.reconcile(g).await, Outcome::Committed { refused: false });
}

fn tree(m: &Memory) -> Nodes {
    m.lock().tree.leaves()
}

fn take_log(m: &Memory) -> Vec<String> {
    std::mem::take(&mut m.lock().log)
}

fn batches(m: &Memory) -> u32 {
    m.lock().faults.batches
}

#[tokio::test]
async fn the_first_publication_writes_everything_once_updated_last() {
    let m = Memory::default();
    let mut s = std_session(&m);
    let g = guest(500, &["10.0.0.1"]);
    start(&mut s, &g).await;
    assert_eq!(tree(&m), std_tree(&g, "T"));
    let log = take_log(&m);
    assert_eq!(
        log.last().map(String::as_str),
        Some("write data/updated \"T\"")
    );
    assert_eq!(
        log.len(),
        std_tree(&g, "T").len(),
        "each node once: {log:?}"
    );
}

#[tokio::test]
async fn a_change_is_one_transaction_in_two_round_trips_and_nothing_else() {
    let m = Memory::default();
    let mut s = std_session(&m);
    start(&mut s, &guest(500, &["10.0.0.1"])).await;
    take_log(&m);
    s.set_clock(stamp2);
    let before = batches(&m);
    let changed = guest(400, &["10.0.0.1"]);
    assert_eq!(
        s.publish(&changed).await,
        Outcome::Committed { refused: false }
    );
    assert_eq!(
        take_log(&m),
        [
            "write data/meminfo_free \"400\"",
            "write data/updated \"T2\""
        ]
    );
    // Start and canary; writes, stamp and commit.
    assert_eq!(batches(&m) - before, 2);
    // The same model again: nothing sent at all.
    let before = batches(&m);
    assert_eq!(s.publish(&changed).await, Outcome::Unchanged);
    assert_eq!(batches(&m), before);
}

#[tokio::test]
async fn a_change_set_into_a_new_domain_commits_nothing_and_asks_for_a_reconcile() {
    // The resume race: the model is handled before the watch. The new
    // domain is empty; the transaction's canary tells, and nothing of the
    // change set is left behind as a partial tree.
    let m = Memory::default();
    let mut s = std_session(&m);
    let g = guest(500, &["10.0.0.1"]);
    start(&mut s, &g).await;
    m.lock().tree.clear();
    let more = guest(500, &["10.0.0.1", "10.0.0.2"]);
    assert_eq!(s.publish(&more).await, Outcome::Mismatch);
    assert_eq!(tree(&m), Nodes::new(), "a partial tree was committed");
    assert_eq!(
        s.reconcile(&more).await,
        Outcome::Committed { refused: false }
    );
    assert_eq!(tree(&m), std_tree(&more, "T"));
}

#[tokio::test]
async fn a_check_finds_a_lost_tree_and_the_reconcile_brings_all_of_it_back() {
    let m = Memory::default();
    let mut s = std_session(&m);
    let g = guest(500, &["10.0.0.1"]);
    start(&mut s, &g).await;
    assert_eq!(
        s.check(true, false).await,
        Outcome::Checked {
            intact: true,
            sriov_changed: false
        }
    );
    m.lock().tree.clear();
    assert_eq!(
        s.check(true, false).await,
        Outcome::Checked {
            intact: false,
            sriov_changed: false
        }
    );
    assert_eq!(s.reconcile(&g).await, Outcome::Committed { refused: false });
    assert_eq!(tree(&m), std_tree(&g, "T"));
}

#[tokio::test]
async fn a_restart_over_a_true_tree_sends_no_write_and_no_transaction() {
    let m = Memory::default();
    let g = guest(500, &["10.0.0.1", "10.0.0.2"]);
    start(&mut std_session(&m), &g).await;
    take_log(&m);
    let mut again = std_session(&m);
    again.set_clock(stamp2);
    start(&mut again, &g).await;
    let log = take_log(&m);
    assert!(log.is_empty(), "rewrote what was true: {log:?}");
    assert_eq!(tree(&m), std_tree(&g, "T"));
    // And it goes on from there: its slots are the ones it read back.
    assert_eq!(again.publish(&g).await, Outcome::Unchanged);
}

#[tokio::test]
async fn a_reconcile_keeps_what_is_true_and_removes_what_is_stale() {
    let m = Memory::default();
    {
        let mut inner = m.lock();
        let t = &mut inner.tree;
        t.write("data/os_name", "Debian GNU/Linux 12 (bookworm)"); // true
        t.write("data/meminfo_free", "1"); // outdated
        t.write("attr/vif/0/ipv4/0", "10.0.0.1"); // true
        t.write("attr/vif/0/ipv4/3", "10.0.0.2"); // true, keeps its slot
        t.write("attr/vif/0/ipv4/1", "10.0.0.9"); // gone
        t.write("attr/vif/7/name", "eth7"); // a VIF that went
        t.write("data/other-agent", "x"); // not ours
    }
    let mut s = std_session(&m);
    let g = guest(500, &["10.0.0.1", "10.0.0.2"]);
    start(&mut s, &g).await;
    let log = take_log(&m);
    for kept in ["data/os_name", "attr/vif/0/ipv4/0", "attr/vif/0/ipv4/3"] {
        assert!(
            !log.iter().any(|l| l.contains(kept)),
            "{kept} was rewritten: {log:?}"
        );
    }
    for gone in ["rm attr/vif/0/ipv4/1", "rm attr/vif/7"] {
        assert!(log.iter().any(|l| l == gone), "no {gone}: {log:?}");
    }
    let t = tree(&m);
    assert_eq!(
        t.get("attr/vif/0/ipv4/3").map(String::as_str),
        Some("10.0.0.2")
    );
    assert_eq!(t.get("data/other-agent").map(String::as_str), Some("x"));
}

#[tokio::test]
async fn switching_schema_leaves_nothing_of_the_other_behind() {
    let m = Memory::default();
    let g = guest(500, &["10.0.0.1"]);
    start(&mut std_session(&m), &g).await;
    m.lock().tree.write("data/other-agent", "x");
    let mut rfc = Session::new(
        Opener::Memory(m.clone()),
        Box::new(Rfc::new()),
        Std::new().owned(),
        ctx(),
    );
    rfc.set_clock(stamp2);
    start(&mut rfc, &g).await;
    let mut want = Rfc::new().render(&g, &ctx());
    want.insert(UPDATED.into(), "T2".into());
    // Not the other schema's to take away: the toolstack's node, others'.
    want.insert("control/feature-balloon".into(), "1".into());
    want.insert("data/other-agent".into(), "x".into());
    // The directory stays, as in xenstore (the toolstack makes it).
    want.insert("attr".into(), "".into());
    assert_eq!(tree(&m), want);
}

#[tokio::test]
async fn a_denied_node_is_given_up_in_this_domain_and_tried_again_in_a_new_one() {
    let m = Memory::default();
    m.lock().faults.denied.push("control".into());
    let mut s = std_session(&m);
    let g = guest(500, &["10.0.0.1"]);
    start(&mut s, &g).await;
    assert!(!tree(&m).contains_key("control/feature-balloon"));
    assert!(
        tree(&m).contains_key("attr/vif/0/ipv4/0"),
        "the rest went on"
    );
    // Not tried again with the next change.
    s.set_clock(stamp2);
    let requests = m.lock().faults.requests;
    assert_eq!(
        s.publish(&guest(400, &["10.0.0.1"])).await,
        Outcome::Committed { refused: false }
    );
    assert_eq!(
        m.lock().faults.requests - requests,
        5,
        "start, canary, meminfo_free, data/updated, commit"
    );
    // A new domain (migrated to a host whose toolstack lets us write it).
    {
        let mut inner = m.lock();
        inner.tree.clear();
        inner.faults.denied.clear();
    }
    assert!(matches!(
        s.check(true, false).await,
        Outcome::Checked { intact: false, .. }
    ));
    let g = guest(400, &["10.0.0.1"]);
    assert_eq!(s.reconcile(&g).await, Outcome::Committed { refused: false });
    assert_eq!(tree(&m), std_tree(&g, "T2"));
}

#[tokio::test]
async fn a_refusal_in_a_transaction_that_did_not_commit_is_not_remembered() {
    // A transaction that spans a change of domain (the test xenstored's
    // snapshot of the old one) is refused everything, then fails with
    // EAGAIN: what it saw is not the tree the retry writes into.
    let m = Memory::default();
    let mut s = std_session(&m);
    start(&mut s, &guest(500, &["10.0.0.1"])).await;
    let changed = guest(400, &["10.0.0.1", "10.0.0.2"]);
    {
        let mut inner = m.lock();
        inner.faults.denied.push("attr".into());
        inner.faults.eagain_commits = 1;
    }
    assert_eq!(s.publish(&changed).await, Outcome::Conflict);
    m.lock().faults.denied.clear();
    s.set_clock(stamp2);
    assert_eq!(
        s.publish(&changed).await,
        Outcome::Committed { refused: false }
    );
    assert_eq!(tree(&m), std_tree(&changed, "T2"));
}

#[tokio::test]
async fn a_conflict_commits_nothing_and_a_refused_commit_is_not_a_conflict() {
    let m = Memory::default();
    let mut s = std_session(&m);
    start(&mut s, &guest(500, &["10.0.0.1"])).await;
    let before = tree(&m);
    let changed = guest(400, &["10.0.0.1", "10.0.0.2"]);
    m.lock().faults.eagain_commits = 1;
    assert_eq!(s.publish(&changed).await, Outcome::Conflict);
    assert_eq!(tree(&m), before, "half a change set");
    m.lock().faults.commit_error = Some((1, Errno::ENOSPC));
    assert_eq!(s.publish(&changed).await, Outcome::Refused);
    assert_eq!(tree(&m), before, "half a change set");
    s.set_clock(stamp2);
    assert_eq!(
        s.publish(&changed).await,
        Outcome::Committed { refused: false }
    );
    assert_eq!(tree(&m), std_tree(&changed, "T2"));
}

#[tokio::test]
async fn a_node_over_the_quota_is_skipped_and_tried_again() {
    let m = Memory::default();
    m.lock().faults.over_quota.push("attr/vif/0/ipv4/1".into());
    let mut s = std_session(&m);
    let g = guest(500, &["10.0.0.1", "10.0.0.2"]);
    assert_eq!(s.connect().await, Outcome::Connected);
    assert_eq!(s.reconcile(&g).await, Outcome::Committed { refused: true });
    assert!(!tree(&m).contains_key("attr/vif/0/ipv4/1"));
    assert!(tree(&m).contains_key("attr/vif/0/ipv4/0"));
    m.lock().faults.over_quota.clear();
    s.set_clock(stamp2);
    assert_eq!(s.publish(&g).await, Outcome::Committed { refused: false });
    assert_eq!(tree(&m), std_tree(&g, "T2"));
}

#[tokio::test]
async fn a_tree_whose_data_updated_was_refused_is_not_taken_for_an_empty_one() {
    // data/updated refused (quota): the canary cannot tell this tree from
    // a new domain's empty one, so neither a check nor a change set may
    // take one for the other (the hour-long soak: two new domains in a
    // row left the second one with a partial tree).
    let m = Memory::default();
    m.lock().faults.over_quota.push("data/updated".into());
    let mut s = std_session(&m);
    let g = guest(500, &["10.0.0.1"]);
    assert_eq!(s.connect().await, Outcome::Connected);
    assert_eq!(s.reconcile(&g).await, Outcome::Committed { refused: true });
    assert!(!tree(&m).contains_key("data/updated"));
    let empty = |m: &Memory| {
        let mut inner = m.lock();
        inner.tree.clear();
        inner.faults.over_quota.clear();
    };
    empty(&m);
    assert!(matches!(
        s.check(true, false).await,
        Outcome::Checked { intact: false, .. }
    ));
    assert_eq!(s.reconcile(&g).await, Outcome::Committed { refused: false });
    assert_eq!(tree(&m), std_tree(&g, "T"));

    // The same with a change set first.
    m.lock().faults.over_quota.push("data/updated".into());
    let changed = guest(400, &["10.0.0.1"]);
    s.set_clock(stamp2);
    assert_eq!(
        s.publish(&changed).await,
        Outcome::Committed { refused: true }
    );
    empty(&m);
    assert_eq!(
        s.publish(&guest(300, &["10.0.0.1"])).await,
        Outcome::Mismatch
    );
    assert!(tree(&m).is_empty(), "a partial tree: {:?}", tree(&m));
}

/// A read-back with no canary, then a new domain before the transaction
/// after it: the canary is absent in both trees, so only what the
/// transaction reads again at its start can tell them apart.
async fn a_new_domain_after_a_read_back_without_canary(before: Nodes) {
    let m = Memory::default();
    for (path, value) in &before {
        m.lock().tree.write(path, value);
    }
    // XAPI's new domain: everything of the guest's gone,
    // control/feature-balloon made again, empty.
    m.lock().faults.before_transaction = Some(Box::new(|t| {
        t.clear();
        t.write("control/feature-balloon", "");
    }));
    let mut s = std_session(&m);
    let g = guest(500, &["10.0.0.1"]);
    assert_eq!(s.connect().await, Outcome::Connected);
    assert_eq!(s.reconcile(&g).await, Outcome::Mismatch);
    assert_eq!(s.reconcile(&g).await, Outcome::Committed { refused: false });
    assert_eq!(tree(&m), std_tree(&g, "T"));
}

#[tokio::test]
async fn a_kept_node_dom0_made_again_after_the_read_back_is_written() {
    // The soak (seed 889126243): a lossy xenstored restart kept only
    // control/feature-balloon = "1", a new domain came between the
    // read-back and the transaction, and the new domain's empty
    // feature-balloon stayed empty: squeezed would never balloon it.
    let mut before = Nodes::new();
    before.insert("control/feature-balloon".into(), "1".into());
    a_new_domain_after_a_read_back_without_canary(before).await;
}

#[tokio::test]
async fn a_tree_without_canary_gone_after_the_read_back_is_written_whole() {
    // Our nodes without data/updated (its stamp was refused, then the
    // agent restarted): the new domain has none of them.
    let mut before = std_tree(&guest(500, &["10.0.0.1"]), "T");
    before.remove(UPDATED);
    a_new_domain_after_a_read_back_without_canary(before).await;
}

#[tokio::test]
async fn data_updated_is_not_rewritten_within_the_same_second() {
    let m = Memory::default();
    let mut s = std_session(&m);
    start(&mut s, &guest(500, &["10.0.0.1"])).await;
    take_log(&m);
    assert_eq!(
        s.publish(&guest(400, &["10.0.0.1"])).await,
        Outcome::Committed { refused: false }
    );
    assert_eq!(take_log(&m), ["write data/meminfo_free \"400\""]);
}

#[tokio::test]
async fn a_lost_connection_is_reported_and_everything_is_reconciled_after() {
    let m = Memory::default();
    let mut s = std_session(&m);
    start(&mut s, &guest(500, &["10.0.0.1"])).await;
    m.lock().faults.drop_connection = true;
    let g = guest(400, &["10.0.0.2"]);
    assert_eq!(s.publish(&g).await, Outcome::Lost);
    m.lock().faults.refuse_connects = 1;
    assert_eq!(s.connect().await, Outcome::Lost);
    s.set_clock(stamp2);
    start(&mut s, &g).await;
    assert_eq!(tree(&m), std_tree(&g, "T2"));
}

#[tokio::test]
async fn sriov_announcements_are_read_and_their_functions_published() {
    let m = Memory::default();
    let mut s = std_session(&m);
    let mut g = guest(500, &["10.0.0.1"]);
    let mut vf = Interface::new(Link {
        index: 3,
        name: "ens4".into(),
        mac: Some("02:ab:cd:00:00:07".into()),
        kind: Kind::Other,
        master: None,
        up: true,
    });
    let info = Address {
        prefix: 24,
        flags: Default::default(),
    };
    vf.addresses.insert("192.168.1.5".parse().unwrap(), info);
    g.interfaces.insert(3, vf);
    start(&mut s, &g).await;
    assert!(!tree(&m).keys().any(|k| k.starts_with("xenserver/")));
    m.lock()
        .tree
        .write("xenserver/device/net-sriov-vf/7/mac", "02:AB:CD:00:00:07");
    assert_eq!(
        s.check(false, true).await,
        Outcome::Checked {
            intact: true,
            sriov_changed: true
        }
    );
    s.set_clock(stamp2);
    assert_eq!(s.publish(&g).await, Outcome::Committed { refused: false });
    assert_eq!(
        tree(&m)
            .get("xenserver/attr/net-sriov-vf/7/ipv4/0")
            .map(String::as_str),
        Some("192.168.1.5")
    );
}

#[tokio::test]
async fn watch_events_say_what_to_check_and_foreign_tokens_are_ignored() {
    let m = Memory::default();
    let mut s = std_session(&m);
    assert_eq!(s.connect().await, Outcome::Connected);
    m.fire("x", "someone-else");
    m.fire(DOMAIN_ID, "domain");
    m.fire(SRIOV_VFS, "sriov");
    assert_eq!(
        s.fired().await,
        Ok(Fired {
            tree: true,
            sriov: false
        })
    );
    assert_eq!(
        s.fired().await,
        Ok(Fired {
            tree: false,
            sriov: true
        })
    );
}
