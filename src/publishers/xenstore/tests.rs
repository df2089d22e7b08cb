//! The worker against the in-memory fake: what reaches xenstore, and how
//! faults are survived.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::fake::{fake, FakeHandle};
use super::schema::{Context, Nodes, Schema};
use super::worker::{Outcome, Wake, Worker, UPDATED};
use crate::state::{Address, Guest, Interface, Kind, Link, MemoryInfo, OsInfo};

/// A small schema of our own, so that these tests do not depend on the
/// real schemas' details.
struct TestSchema;

impl Schema for TestSchema {
    fn name(&self) -> &'static str {
        "test"
    }
    fn owned(&self) -> &'static [&'static str] {
        &[
            "data/os_name",
            "data/meminfo_free",
            "attr/vif",
            "xenserver/attr/net-sriov-vf",
            "control/feature-balloon",
        ]
    }
    fn adopt(&mut self, _existing: &Nodes) {}
    fn render(&mut self, guest: &Guest, ctx: &Context) -> Nodes {
        let mut n = Nodes::new();
        if let Some(os) = &guest.os {
            n.insert("data/os_name".into(), os.name.clone());
        }
        if let Some(m) = &guest.memory {
            n.insert("data/meminfo_free".into(), m.available_kib.to_string());
        }
        for i in guest.interfaces.values() {
            if let Some(id) = i.link.kind.vif() {
                for (slot, a) in i.addresses.keys().enumerate() {
                    n.insert(format!("attr/vif/{id}/ipv4/{slot}"), a.to_string());
                }
            }
        }
        for (id, mac) in &ctx.sriov_vfs {
            n.insert(format!("xenserver/attr/net-sriov-vf/{id}/mac"), mac.clone());
        }
        if ctx.feature_balloon {
            n.insert("control/feature-balloon".into(), "1".into());
        }
        n
    }
}

fn stamp() -> String {
    "T".into()
}

/// A later second than [`stamp`].
fn stamp2() -> String {
    "T2".into()
}

fn guest(name: &str, free: u64, addrs: &[&str]) -> Guest {
    let link = Link {
        index: 2,
        name: "eth0".into(),
        mac: Some("00:16:3e:00:00:01".into()),
        kind: Kind::Vif(0),
        master: None,
        up: true,
    };
    let mut iface = Interface::new(link);
    for a in addrs {
        let addr: IpAddr = a.parse().unwrap();
        iface.addresses.insert(
            addr,
            Address {
                prefix: 24,
                flags: Default::default(),
            },
        );
    }
    Guest {
        os: Some(OsInfo {
            name: name.into(),
            ..Default::default()
        }),
        kernel: None,
        memory: Some(MemoryInfo {
            total_kib: 1000,
            available_kib: free,
        }),
        interfaces: BTreeMap::from([(2, iface)]),
    }
}

fn worker() -> (Worker, FakeHandle) {
    let (backend, handle) = fake();
    let ctx = Context {
        sriov_vfs: BTreeMap::new(),
        max_addresses: 32,
        feature_balloon: true,
    };
    let mut w = Worker::new(Box::new(backend), Box::new(TestSchema), ctx);
    w.set_clock(stamp);
    (w, handle)
}

fn publish(w: &mut Worker, g: Guest) -> Outcome {
    w.step(Wake {
        guest: Some(g),
        ..Default::default()
    })
}

fn idle(w: &mut Worker) -> Outcome {
    w.step(Wake::default())
}

/// What the watches report after a firing (or a re-registration).
fn fired(w: &mut Worker, check_tree: bool, refresh_sriov: bool) -> Outcome {
    w.step(Wake {
        check_tree,
        refresh_sriov,
        ..Default::default()
    })
}

fn tree(h: &FakeHandle) -> Nodes {
    h.state().tree.leaves()
}

fn nodes(pairs: &[(&str, &str)]) -> Nodes {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn first_publication_writes_everything_once_updated_last() {
    let (mut w, h) = worker();
    let out = publish(&mut w, guest("Debian", 500, &["10.0.0.1"]));
    assert!(out.retry_in.is_none());
    let log = h.state().take_log();
    assert_eq!(log.len(), 5, "{log:?}");
    assert_eq!(log.last().unwrap(), "write data/updated T");
    assert_eq!(
        tree(&h),
        nodes(&[
            ("attr/vif/0/ipv4/0", "10.0.0.1"),
            ("control/feature-balloon", "1"),
            ("data/meminfo_free", "500"),
            ("data/os_name", "Debian"),
            ("data/updated", "T"),
        ])
    );
    assert_eq!(h.state().commits, 1, "one transaction");
}

#[test]
fn only_changes_are_written_and_nothing_when_nothing_changed() {
    let (mut w, h) = worker();
    publish(&mut w, guest("Debian", 500, &["10.0.0.1"]));
    h.state().take_log();
    w.set_clock(stamp2);
    publish(&mut w, guest("Debian", 400, &["10.0.0.1"]));
    assert_eq!(
        h.state().take_log(),
        ["write data/meminfo_free 400", "write data/updated T2"]
    );
    publish(&mut w, guest("Debian", 400, &["10.0.0.1"]));
    assert!(
        h.state().take_log().is_empty(),
        "an equal model writes nothing"
    );
    assert_eq!(h.state().commits, 2);
}

#[test]
fn registration_firings_at_start_cause_no_writes() {
    let (mut w, h) = worker();
    publish(&mut w, guest("Debian", 500, &[]));
    h.state().take_log();
    // Firings of the watches (as after a registration) with our tree intact.
    let out = fired(&mut w, true, true);
    assert!(out.retry_in.is_none());
    assert!(h.state().take_log().is_empty());
    assert_eq!(w.stats().reconciles, 1, "only the first");
}

#[test]
fn reconcile_keeps_what_is_true_and_removes_what_is_stale() {
    let (mut w, h) = worker();
    {
        let mut s = h.state();
        s.connected = false;
        s.tree.write("data/os_name", "Debian"); // still true
        s.tree.write("data/meminfo_free", "1"); // outdated
        s.tree.write("attr/vif/0/ipv4/0", "10.0.0.1"); // still true
        s.tree.write("attr/vif/0/ipv4/1", "10.0.0.9"); // stale address
        s.tree.write("attr/vif/7/ipv4/0", "10.7.0.1"); // stale VIF
        s.tree.write("control/feature-balloon", "1"); // still true
        s.tree.write("data/updated", "old");
        s.tree.write("data/other", "kept"); // not ours
        s.tree.write("attr/PVAddons/Installed", "1"); // not owned by this schema
    }
    publish(&mut w, guest("Debian", 500, &["10.0.0.1"]));
    // Exactly: the outdated value, the stale address, the stale VIF (as a
    // whole), then data/updated; nothing for what is still true.
    assert_eq!(
        h.state().take_log(),
        [
            "write data/meminfo_free 500",
            "rm attr/vif/0/ipv4/1",
            "rm attr/vif/7",
            "write data/updated T"
        ]
    );
    assert_eq!(
        tree(&h),
        nodes(&[
            ("attr/PVAddons/Installed", "1"),
            ("attr/vif/0/ipv4/0", "10.0.0.1"),
            ("control/feature-balloon", "1"),
            ("data/meminfo_free", "500"),
            ("data/os_name", "Debian"),
            ("data/other", "kept"),
            ("data/updated", "T"),
        ])
    );
    assert_eq!(w.stats().reconciles, 1);
}

#[test]
fn reconcile_with_everything_true_writes_nothing() {
    let (mut w, h) = worker();
    {
        let mut s = h.state();
        s.tree.write("data/os_name", "Debian");
        s.tree.write("data/meminfo_free", "500");
        s.tree.write("control/feature-balloon", "1");
        s.tree.write("data/updated", "earlier run");
    }
    publish(&mut w, guest("Debian", 500, &[]));
    assert!(h.state().take_log().is_empty());
    assert_eq!(h.state().tree.read(UPDATED), Some("earlier run"));
    // And the next change compares against what was read back.
    publish(&mut w, guest("Debian", 400, &[]));
    assert_eq!(
        h.state().take_log(),
        ["write data/meminfo_free 400", "write data/updated T"]
    );
}

#[test]
fn reconcile_writes_updated_when_it_is_missing() {
    let (mut w, h) = worker();
    {
        let mut s = h.state();
        s.tree.write("data/os_name", "Debian");
        s.tree.write("data/meminfo_free", "500");
        s.tree.write("control/feature-balloon", "1");
    }
    publish(&mut w, guest("Debian", 500, &[]));
    assert_eq!(h.state().take_log(), ["write data/updated T"]);
}

#[test]
fn permission_denied_on_a_node_is_given_up_and_the_rest_goes_on() {
    let (mut w, h) = worker();
    h.state().denied.push("control/feature-balloon".into());
    let out = publish(&mut w, guest("Debian", 500, &[]));
    assert!(out.retry_in.is_none());
    assert_eq!(h.state().refused, ["control/feature-balloon"]);
    assert_eq!(
        tree(&h),
        nodes(&[
            ("data/meminfo_free", "500"),
            ("data/os_name", "Debian"),
            ("data/updated", "T")
        ])
    );
    // Never tried again, neither on a change nor after a reconciliation.
    publish(&mut w, guest("Debian", 400, &[]));
    h.state().drop_connection();
    publish(&mut w, guest("Debian", 300, &[]));
    idle(&mut w);
    assert_eq!(h.state().refused, ["control/feature-balloon"]);
    assert_eq!(h.state().tree.read("data/meminfo_free"), Some("300"));
}

#[test]
fn a_node_over_quota_is_skipped_and_tried_again_on_the_next_change() {
    let (mut w, h) = worker();
    h.state().over_quota.push("attr/vif/0/ipv4/1".into());
    publish(&mut w, guest("Debian", 500, &["10.0.0.1", "10.0.0.2"]));
    assert_eq!(h.state().tree.read("attr/vif/0/ipv4/0"), Some("10.0.0.1"));
    assert_eq!(h.state().tree.read("attr/vif/0/ipv4/1"), None);
    h.state().over_quota.clear();
    publish(&mut w, guest("Debian", 400, &["10.0.0.1", "10.0.0.2"]));
    assert_eq!(h.state().tree.read("attr/vif/0/ipv4/1"), Some("10.0.0.2"));
}

#[test]
fn a_node_over_quota_is_tried_again_later_without_a_change() {
    let (mut w, h) = worker();
    h.state().over_quota.push("attr/vif/0/ipv4/1".into());
    let out = publish(&mut w, guest("Debian", 500, &["10.0.0.1", "10.0.0.2"]));
    let first = out.retry_in.expect("tried again later");
    assert!(out.models_first, "newer models need not wait");
    let out = idle(&mut w);
    assert!(out.retry_in.expect("still later") > first, "backoff grows");
    assert_eq!(h.state().tree.read("attr/vif/0/ipv4/1"), None);
    h.state().over_quota.clear();
    let out = idle(&mut w);
    assert!(out.retry_in.is_none());
    assert_eq!(h.state().tree.read("attr/vif/0/ipv4/1"), Some("10.0.0.2"));
}

#[test]
fn data_updated_is_not_rewritten_within_the_same_second() {
    let (mut w, h) = worker();
    publish(&mut w, guest("Debian", 500, &["10.0.0.1"]));
    h.state().take_log();
    // Same clock: the stamp already says so.
    publish(&mut w, guest("Debian", 400, &["10.0.0.1"]));
    assert_eq!(h.state().take_log(), ["write data/meminfo_free 400"]);
    w.set_clock(stamp2);
    publish(&mut w, guest("Debian", 300, &["10.0.0.1"]));
    assert_eq!(
        h.state().take_log(),
        ["write data/meminfo_free 300", "write data/updated T2"]
    );
}

#[test]
fn conflicts_retry_the_whole_transaction() {
    let (mut w, h) = worker();
    h.state().eagain_commits = 3;
    let out = publish(&mut w, guest("Debian", 500, &["10.0.0.1"]));
    assert!(out.retry_in.is_none());
    let log = h.state().take_log();
    assert_eq!(log.len(), 5, "each operation applied once: {log:?}");
    assert_eq!(h.state().commits, 1);
}

#[test]
fn a_conflict_storm_is_left_for_later_with_nothing_half_written() {
    let (mut w, h) = worker();
    h.state().eagain_commits = 1000;
    let out = publish(&mut w, guest("Debian", 500, &["10.0.0.1"]));
    let first = out.retry_in.expect("retried later");
    assert!(h.state().tree.all().is_empty(), "nothing half-written");
    let second = idle(&mut w).retry_in.expect("retried later");
    assert!(second > first, "backoff grows");
    h.state().eagain_commits = 0;
    let out = idle(&mut w);
    assert!(out.retry_in.is_none());
    assert_eq!(h.state().tree.read("data/os_name"), Some("Debian"));
}

#[test]
fn a_dropped_connection_is_reopened_and_everything_republished() {
    let (mut w, h) = worker();
    publish(&mut w, guest("Debian", 500, &["10.0.0.1"]));
    // xenstored restarts, empty.
    {
        let mut s = h.state();
        s.drop_connection();
        s.tree.clear();
        s.refuse_connects = 1;
        s.take_log();
    }
    let out = publish(&mut w, guest("Debian", 400, &["10.0.0.1"]));
    let d1 = out.retry_in.expect("reconnection scheduled");
    let d2 = idle(&mut w).retry_in.expect("still down");
    assert!(d2 > d1);
    let out = idle(&mut w);
    assert!(out.retry_in.is_none());
    assert_eq!(
        tree(&h),
        nodes(&[
            ("attr/vif/0/ipv4/0", "10.0.0.1"),
            ("control/feature-balloon", "1"),
            ("data/meminfo_free", "400"),
            ("data/os_name", "Debian"),
            ("data/updated", "T"),
        ])
    );
    assert_eq!(h.state().connects, 2);
}

#[test]
fn a_connection_that_never_opened_is_retried_and_then_used() {
    let (mut w, h) = worker();
    h.state().refuse_connects = 3;
    for _ in 0..3 {
        assert!(publish(&mut w, guest("Debian", 500, &[]))
            .retry_in
            .is_some());
    }
    assert!(idle(&mut w).retry_in.is_none());
    assert_eq!(h.state().tree.read("data/os_name"), Some("Debian"));
}

#[test]
fn a_lost_tree_after_a_watch_firing_is_republished() {
    let (mut w, h) = worker();
    publish(&mut w, guest("Debian", 500, &["10.0.0.1"]));
    // Resume in a fresh domain: the tree is gone, the watches fire.
    {
        let mut s = h.state();
        s.tree.clear();
        s.take_log();
    }
    fired(&mut w, true, false);
    assert_eq!(h.state().take_log().len(), 5);
    assert_eq!(tree(&h).len(), 5);
    assert_eq!(w.stats().reconciles, 2);
}

#[test]
fn a_connection_that_broke_silently_is_noticed_by_a_check() {
    let (mut w, h) = worker();
    publish(&mut w, guest("Debian", 500, &["10.0.0.1"]));
    {
        let mut s = h.state();
        s.drop_connection();
        s.tree.clear();
    }
    let out = w.step(Wake {
        check_tree: true,
        ..Default::default()
    });
    assert!(out.retry_in.is_some(), "reconnection scheduled");
    assert!(idle(&mut w).retry_in.is_none());
    assert_eq!(tree(&h).len(), 5);
}

#[test]
fn a_clock_jump_checks_the_tree() {
    let (mut w, h) = worker();
    publish(&mut w, guest("Debian", 500, &[]));
    h.state().tree.clear();
    // Without a reason to look, nothing is noticed...
    idle(&mut w);
    assert!(h.state().tree.all().is_empty());
    // ...a wall-clock jump is one.
    w.step(Wake {
        check_tree: true,
        ..Default::default()
    });
    assert_eq!(h.state().tree.read("data/os_name"), Some("Debian"));
}

#[test]
fn sriov_announcements_reach_the_schema() {
    let (mut w, h) = worker();
    publish(&mut w, guest("Debian", 500, &[]));
    {
        let mut s = h.state();
        s.tree
            .write("xenserver/device/net-sriov-vf/3/mac", "00:16:3E:AA:BB:CC");
        s.take_log();
    }
    w.set_clock(stamp2);
    // Not read without a reason...
    idle(&mut w);
    assert!(h.state().take_log().is_empty());
    // ...the watch firing is one.
    fired(&mut w, false, true);
    assert_eq!(
        h.state().take_log(),
        [
            "write xenserver/attr/net-sriov-vf/3/mac 00:16:3e:aa:bb:cc",
            "write data/updated T2"
        ]
    );
}

#[test]
fn nothing_is_written_before_there_is_a_model() {
    let (mut w, h) = worker();
    let out = idle(&mut w);
    assert!(out.retry_in.is_none());
    assert!(h.state().tree.all().is_empty());
}

/// A schema that breaks the ground rules.
struct Rogue;

impl Schema for Rogue {
    fn name(&self) -> &'static str {
        "rogue"
    }
    fn owned(&self) -> &'static [&'static str] {
        &["data/x"]
    }
    fn adopt(&mut self, _existing: &Nodes) {}
    fn render(&mut self, _guest: &Guest, _ctx: &Context) -> Nodes {
        nodes(&[
            ("name", "outside our subtrees"),
            ("data/x/bad path", "space"),
            ("data/x/ctl", "a\nb"),
            ("data/x/long", &"x".repeat(3000)),
            ("data/x/ok", "fine"),
        ])
    }
}

#[test]
fn what_breaks_the_ground_rules_is_never_sent() {
    let (backend, h) = fake();
    let mut w = Worker::new(Box::new(backend), Box::new(Rogue), Context::default());
    w.set_clock(stamp);
    publish(&mut w, Guest::default());
    assert_eq!(
        h.state().take_log(),
        ["write data/x/ok fine", "write data/updated T"]
    );
}
