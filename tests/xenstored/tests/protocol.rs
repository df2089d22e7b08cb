//! The server through the raw protocol client: permissions, watches,
//! transactions, limits, faults and observability.

use std::time::{Duration, Instant};

use test_xenstored::client::Event;
use test_xenstored::{wire, Client, Errno, Limits, MsgType, OpLogExt, Origin, Server};

const T: Duration = Duration::from_secs(5);
/// How long to wait for an event that must NOT come.
const QUIET: Duration = Duration::from_millis(200);

fn server(domid: u32) -> Server {
    Server::builder().domid(domid).start().unwrap()
}

fn guest(xs: &Server) -> Client {
    Client::connect(xs.socket_path()).unwrap()
}

fn dom0(xs: &Server) -> Client {
    Client::connect(xs.dom0_socket_path().unwrap()).unwrap()
}

fn ev(path: &str, token: &str) -> Event {
    Event {
        path: path.into(),
        token: token.into(),
    }
}

fn err<T>(name: &str) -> Result<T, String> {
    Err(name.to_string())
}

#[test]
fn libxl_skeleton_as_the_guest_and_dom0_see_it() {
    let xs = server(5);
    let mut g = guest(&xs);
    assert_eq!(g.read("domid").unwrap(), "5");
    assert_eq!(g.read("device/vif/0/mac").unwrap(), "00:16:3e:5e:00:01");
    assert_eq!(g.get_domain_path(5).unwrap(), "/local/domain/5");
    assert_eq!(g.get_perms("/local/domain/5").unwrap(), ["n0", "r5"]);
    for p in [
        "data",
        "attr",
        "feature",
        "drivers",
        "error",
        "control/shutdown",
    ] {
        assert_eq!(g.get_perms(p).unwrap(), ["n5"], "{p}");
    }
    assert_eq!(g.get_perms("control").unwrap(), ["n0", "r5"]);
    assert_eq!(g.get_perms("device/vif/0/state").unwrap(), ["n5", "r0"]);
    assert_eq!(g.read("/local/domain/0/name"), err("EACCES"));
    assert_eq!(g.directory("/"), err("EACCES"));
    let mut d = dom0(&xs);
    assert_eq!(d.read("/local/domain/0/name").unwrap(), "Domain-0");
    assert_eq!(d.read("name").unwrap(), "Domain-0", "dom0's relative paths");
    let dump = xs.dump("/local/domain/5");
    assert!(dump.contains("\n control = \"\"   (n0,r5)\n  shutdown = \"\"   (n5)\n"));
    assert_eq!(xs.perms("data").unwrap(), "n5");
}

#[test]
fn guest_permissions_follow_c_xenstored() {
    let xs = server(5);
    let mut g = guest(&xs);
    g.write("data/a/b", "1").unwrap();
    assert_eq!(
        g.get_perms("data/a").unwrap(),
        ["n5"],
        "created parents owned"
    );
    assert_eq!(g.write("foo", "1"), err("EACCES"));
    assert_eq!(g.write("control/feature-balloon", "1"), err("EACCES"));
    assert_eq!(g.read("nonexistent"), err("ENOENT"));
    assert_eq!(g.read("/local/domain/0/nonexistent"), err("EACCES"));
    assert_eq!(g.set_perms("data/a", &["n0"]), err("EPERM"));
    assert_eq!(g.set_perms("control", &["n5"]), err("EACCES"));
    g.set_perms("data/a", &["n5", "r0"]).unwrap();
    assert_eq!(g.rm("control"), err("EACCES"));
    assert_eq!(g.rm("data/nothing"), Ok(()));
    assert_eq!(g.rm("data/no/thing"), err("ENOENT"));
    assert_eq!(g.write("data/bad path", "1"), err("EINVAL"));
    assert_eq!(g.write("data/x/", "1"), err("EINVAL"));

    xs.precreate_feature_balloon();
    g.write("control/feature-balloon", "1").unwrap();
    assert_eq!(xs.read("control/feature-balloon").unwrap(), "1");
    assert_eq!(xs.perms("control/feature-balloon").unwrap(), "n5,r0");
}

#[test]
fn watches_fire_on_registration_changes_and_only_if_readable() {
    let xs = server(5);
    let mut g = guest(&xs);
    let mut d = dom0(&xs);
    g.watch("data", "t").unwrap();
    assert_eq!(
        g.next_event(T),
        Some(ev("data", "t")),
        "fires on registration"
    );
    d.watch("/local/domain/5/data", "d").unwrap();
    assert_eq!(d.next_event(T), Some(ev("/local/domain/5/data", "d")));

    g.write("data/x", "1").unwrap();
    assert_eq!(g.next_event(T), Some(ev("data/x", "t")), "relative path");
    assert_eq!(d.next_event(T), Some(ev("/local/domain/5/data/x", "d")));
    g.write("data/x", "1").unwrap();
    assert_eq!(
        g.next_event(T),
        Some(ev("data/x", "t")),
        "same value fires too"
    );
    g.set_perms("data/x", &["n5", "r0"]).unwrap();
    assert_eq!(
        g.next_event(T),
        Some(ev("data/x", "t")),
        "perms change fires"
    );
    g.write("data/y/z", "1").unwrap();
    assert_eq!(g.next_event(T), Some(ev("data/y/z", "t")));
    g.watch("data/y/z", "exact").unwrap();
    assert_eq!(g.next_event(T), Some(ev("data/y/z", "exact")));
    g.rm("data/y").unwrap();
    let got = [g.next_event(T), g.next_event(T)];
    assert_eq!(
        got,
        [Some(ev("data/y/z", "exact")), Some(ev("data/y", "t"))]
    );

    // dom0 changes nodes the guest may not read (nor their parent): no
    // event for the guest, though its watch covers them.
    g.watch("/local/domain/0", "dom0").unwrap();
    assert_eq!(g.next_event(T), Some(ev("/local/domain/0", "dom0")));
    xs.write("/local/domain/0/secret", "1").unwrap();
    xs.rm("/local/domain/0/secret").unwrap();
    assert_eq!(g.next_event(QUIET), None);
    // ...but for nodes it may read, it does.
    g.watch("/local/domain/5", "home").unwrap();
    assert_eq!(g.next_event(T), Some(ev("/local/domain/5", "home")));
    xs.write("unique-domain-id", "abc").unwrap();
    assert_eq!(
        g.next_event(T),
        Some(ev("/local/domain/5/unique-domain-id", "home"))
    );
    assert_eq!(g.next_event(QUIET), None);

    g.unwatch("/local/domain/5", "home").unwrap();
    assert_eq!(g.unwatch("/local/domain/5", "home"), err("ENOENT"));
    assert_eq!(g.watch("data", "t"), err("EEXIST"));
    g.reset_watches().unwrap();
    g.write("data/after-reset", "1").unwrap();
    assert_eq!(g.next_event(QUIET), None);
    assert!(xs.watches().iter().all(|w| !w.guest));
}

#[test]
fn transactions_are_isolated_and_fire_at_commit() {
    let xs = server(5);
    let mut g = guest(&xs);
    let mut w = guest(&xs);
    w.watch("data", "t").unwrap();
    assert!(w.next_event(T).is_some());

    let tx = g.transaction_start().unwrap();
    g.write_tx(tx, "data/a", "1").unwrap();
    g.write_tx(tx, "data/b", "2").unwrap();
    assert_eq!(g.read("data/a"), err("ENOENT"), "invisible outside");
    assert_eq!(g.read_tx(tx, "data/a").unwrap(), "1");
    assert_eq!(w.next_event(QUIET), None, "no event before commit");
    assert_eq!(xs.open_transactions(), 1);
    g.transaction_end(tx, true).unwrap();
    assert_eq!(w.next_event(T), Some(ev("data/a", "t")));
    assert_eq!(w.next_event(T), Some(ev("data/b", "t")));
    assert_eq!(xs.read("data/b").unwrap(), "2");

    // A conflicting change meanwhile: EAGAIN, nothing applied.
    let tx = g.transaction_start().unwrap();
    g.read_tx(tx, "data/a").unwrap();
    g.write_tx(tx, "data/c", "3").unwrap();
    w.write("data/a", "changed").unwrap();
    assert_eq!(g.transaction_end(tx, true), err("EAGAIN"));
    assert!(!xs.exists("data/c"));

    // Abort, unknown transaction, bad argument.
    let tx = g.transaction_start().unwrap();
    g.write_tx(tx, "data/d", "4").unwrap();
    g.transaction_end(tx, false).unwrap();
    assert!(!xs.exists("data/d"));
    assert_eq!(g.read_tx(999, "data/a"), err("ENOENT"));
    assert_eq!(g.transaction_end(999, true), err("ENOENT"));
    let tx = g.transaction_start().unwrap();
    assert_eq!(g.call(MsgType::TransactionEnd, tx, &["X"]), err("EINVAL"));
    assert_eq!(
        w.read_tx(tx, "data/a"),
        err("ENOENT"),
        "another connection's"
    );
    assert_eq!(g.call(MsgType::TransactionStart, tx, &[""]), err("EBUSY"));
}

#[test]
fn injected_commit_failures_and_the_op_log() {
    let xs = server(5);
    let mut g = guest(&xs);
    xs.fail_next_commits(2);
    let mut attempts = 0;
    loop {
        attempts += 1;
        let tx = g.transaction_start().unwrap();
        g.write_tx(tx, "data/k", "v").unwrap();
        match g.transaction_end(tx, true) {
            Ok(()) => break,
            Err(e) => assert_eq!(e, "EAGAIN"),
        }
        assert!(attempts < 5);
    }
    assert_eq!(attempts, 3);
    assert_eq!(xs.pending_commit_failures(), 0);
    let ops = xs.ops();
    let ends = ops.of_kind(MsgType::TransactionEnd);
    let results: Vec<_> = ends.iter().map(|o| o.result).collect();
    assert_eq!(results, [Err(Errno::EAGAIN), Err(Errno::EAGAIN), Ok(())]);
    let write = ops.of_kind(MsgType::Write)[0];
    assert_eq!(write.path.as_deref(), Some("/local/domain/5/data/k"));
    assert_eq!(write.value.as_deref(), Some("v"));
    assert!(write.tx != 0 && write.changed && write.domid == 5);
    assert!(matches!(write.origin, Origin::Guest(_)));

    xs.reset_ops();
    g.write("data/k", "v").unwrap();
    g.write("data/k", "w").unwrap();
    let ops = xs.ops();
    assert_eq!(ops.unchanged_writes().len(), 1);
    assert_eq!(ops.counts()[&MsgType::Write], 2);
    assert_eq!(xs.op_counts()[&MsgType::Write], 2);
    assert_eq!(ops.by_guest().len(), 2);
}

#[test]
fn limits_value_size_payload_and_quota() {
    let xs = server(5);
    let mut g = guest(&xs);
    // A leaf with one permission entry holds at most 2015 bytes (record of
    // 24 + 8 + value must stay below 2048); dom0 has no limit.
    g.write("data/v", &"x".repeat(2015)).unwrap();
    assert_eq!(g.write("data/v", &"x".repeat(2016)), err("ENOSPC"));
    xs.write("data/v", &"x".repeat(3000)).unwrap();

    xs.set_node_quota(
        xs.tree("/")
            .values()
            .filter(|n| n.perms.starts_with("n5"))
            .count()
            + 2,
    );
    g.write("data/q1", "").unwrap();
    g.write("data/q2", "").unwrap();
    assert_eq!(g.write("data/q3", ""), err("ENOSPC"));
    g.write("data/q2", "rewrite is fine").unwrap();
    xs.set_node_quota(10_000);
    xs.set_quota_exceeded(true);
    assert_eq!(g.mkdir("data/q4"), err("ENOSPC"));
    xs.set_quota_exceeded(false);
    g.mkdir("data/q4").unwrap();

    // More than 4096 bytes of payload: the client is dropped.
    let mut other = guest(&xs);
    let mut bad = guest(&xs);
    let mut big = wire::encode(MsgType::Write as u32, 1, 0, b"data/big\0");
    big.extend(std::iter::repeat_n(b'x', 4100));
    let len = (big.len() - wire::HEADER_LEN) as u32;
    big[12..16].copy_from_slice(&len.to_ne_bytes());
    let _ = bad.send_raw(&big);
    assert!(bad.wait_closed(T));
    assert_eq!(other.read("domid").unwrap(), "5");
}

#[test]
fn oxenstored_quota_error_is_available() {
    let limits = Limits {
        node_quota: 1,
        quota_errno: Errno::EQUOTA,
        ..Limits::default()
    };
    let xs = Server::builder().domid(3).limits(limits).start().unwrap();
    let mut g = guest(&xs);
    assert_eq!(g.write("data/x", "1"), err("EQUOTA"));
}

#[test]
fn unknown_and_unsupported_requests() {
    let xs = server(5);
    let mut g = guest(&xs);
    assert_eq!(g.call_raw(99, 0, b"x\0"), err("ENOSYS"));
    // privileged requests: EACCES for a guest (as C xenstored), not
    // implemented for dom0
    assert_eq!(
        g.call(MsgType::Introduce, 0, &["9", "1", "1"]),
        err("EACCES")
    );
    let mut d = dom0(&xs);
    assert_eq!(
        d.call(MsgType::Introduce, 0, &["9", "1", "1"]),
        err("ENOSYS")
    );
    assert_eq!(d.call(MsgType::Control, 0, &["print", "x"]), err("ENOSYS"));
    // C xenstored parses the domid with atoi()
    assert_eq!(g.get_domain_path(7).unwrap(), "/local/domain/7");
    assert_eq!(
        g.call(MsgType::GetDomainPath, 0, &["x"]).unwrap(),
        b"/local/domain/0\0"
    );
    assert_eq!(g.read("domid").unwrap(), "5", "still connected");
}

#[test]
fn big_directories_need_directory_part() {
    let xs = server(5);
    let mut d = dom0(&xs);
    let names: Vec<String> = (0..120)
        .map(|i| format!("{i:03}-{}", "n".repeat(40)))
        .collect();
    for n in &names {
        xs.write(&format!("data/big/{n}"), "").unwrap();
    }
    assert_eq!(d.directory("/local/domain/5/data/big"), err("E2BIG"));
    let mut got = Vec::new();
    let mut offset = 0;
    loop {
        let off = offset.to_string();
        let reply = d
            .call(
                MsgType::DirectoryPart,
                0,
                &["/local/domain/5/data/big", &off],
            )
            .unwrap();
        let parts = wire::split_args(&reply);
        let children: Vec<String> = parts[1..]
            .iter()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect();
        let done = children.last().is_some_and(|c| c.is_empty());
        for c in children.into_iter().filter(|c| !c.is_empty()) {
            offset += c.len() + 1;
            got.push(c);
        }
        if done {
            break;
        }
    }
    assert_eq!(got, names);
}

#[test]
fn faults_deny_delay_drop_and_restart() {
    let xs = server(5);
    let mut g = guest(&xs);
    let mut d = dom0(&xs);
    xs.deny("data/secret");
    assert_eq!(g.write("data/secret/x", "1"), err("EACCES"));
    g.write("data/secretive", "1").unwrap();
    d.write("/local/domain/5/data/secret/x", "1").unwrap();
    xs.fail_path("attr", Errno::EIO);
    assert_eq!(g.read("attr"), err("EIO"));
    xs.clear_failing_paths();
    g.write("data/secret/x", "2").unwrap();

    xs.set_reply_delay(Duration::from_millis(100));
    let start = Instant::now();
    g.read("domid").unwrap();
    assert!(start.elapsed() >= Duration::from_millis(100));
    xs.set_reply_delay(Duration::ZERO);

    g.watch("data", "t").unwrap();
    assert_eq!(xs.connections(), 2);
    xs.drop_connections();
    assert!(g.wait_closed(T));
    assert!(d.wait_closed(T));
    assert!(xs.watches().is_empty());
    let mut g = guest(&xs);
    assert_eq!(g.read("data/secret/x").unwrap(), "2");

    xs.restart().unwrap();
    assert!(g.wait_closed(T));
    assert!(xs.is_running());
    let mut g = guest(&xs);
    assert_eq!(g.read("data/secret/x").unwrap(), "2", "tree kept");

    xs.stop();
    assert!(!xs.socket_path().exists());
    assert!(Client::connect(xs.socket_path()).is_err());
    xs.start().unwrap();
    assert!(xs.wait_connections(0, T));
    guest(&xs).read("domid").unwrap();
}

#[test]
fn new_domain_after_restore_or_migration() {
    let xs = server(5);
    let mut g = guest(&xs);
    let mut d = dom0(&xs);
    xs.precreate_feature_balloon();
    g.write("data/os_name", "Debian").unwrap();
    g.watch("control/shutdown", "shutdown").unwrap();
    g.watch("data", "data").unwrap();
    let _ = [g.next_event(T), g.next_event(T)];
    d.watch("@releaseDomain", "rel").unwrap();
    assert!(d.next_event(T).is_some());
    let tx = g.transaction_start().unwrap();
    g.write_tx(tx, "data/pending", "1").unwrap();

    xs.new_domain(9);
    let mut evs = vec![g.next_event(T).unwrap(), g.next_event(T).unwrap()];
    evs.sort_by(|a, b| a.token.cmp(&b.token));
    assert_eq!(
        evs,
        [ev("data", "data"), ev("control/shutdown", "shutdown")]
    );
    assert_eq!(g.next_event(QUIET), None);
    assert_eq!(d.next_event(T), Some(ev("@releaseDomain", "rel")));

    assert_eq!(g.transaction_end(tx, true), err("EAGAIN"));
    assert_eq!(g.read("domid").unwrap(), "9");
    assert_eq!(g.read("data/os_name"), err("ENOENT"));
    assert_eq!(g.write("control/feature-balloon", "1"), err("EACCES"));
    assert!(!xs.exists("/local/domain/5"));
    assert_eq!(xs.home(), "/local/domain/9");
    assert_eq!(xs.perms("data").unwrap(), "n9");
    g.write("data/os_name", "Debian").unwrap();
    assert_eq!(g.next_event(T), Some(ev("data/os_name", "data")));
    assert_eq!(
        d.read("/local/domain/0/backend/vif/9/0/frontend").unwrap(),
        "/local/domain/9/device/vif/0"
    );
}

#[test]
fn toolstack_helpers() {
    let xs = server(5);
    let mut g = guest(&xs);
    xs.add_vif(1, "00:16:3e:5e:00:02");
    assert_eq!(g.read("device/vif/1/mac").unwrap(), "00:16:3e:5e:00:02");
    assert_eq!(g.get_perms("device/vif/1").unwrap(), ["n5", "r0"]);
    xs.remove_vif(1);
    assert_eq!(g.read("device/vif/1/mac"), err("ENOENT"));
    xs.add_sriov_vf(3, "00:16:3e:00:00:03");
    assert_eq!(
        g.read("xenserver/device/net-sriov-vf/3/mac").unwrap(),
        "00:16:3e:00:00:03"
    );
    assert_eq!(g.write("xenserver/device/x", "1"), err("EACCES"));
    g.write("xenserver/attr/net-sriov-vf/3/ipv4/0", "10.0.0.2")
        .unwrap();
    xs.set_unique_domain_id("7e4c").unwrap();
    assert_eq!(g.read("unique-domain-id").unwrap(), "7e4c");
    let tree = xs.tree("device/vif/0");
    assert_eq!(tree["/local/domain/5/device/vif/0/state"].value, "4");
    assert_eq!(tree["/local/domain/5/device/vif/0/state"].perms, "n5,r0");
    assert_eq!(xs.directory("control").unwrap()[0], "shutdown");
    // the test API is logged too
    assert!(xs.ops().iter().any(|o| o.origin == Origin::Api));
    assert!(xs.wait_for(T, |v| v.read("unique-domain-id").as_deref() == Some("7e4c")));
    assert!(!xs.wait_value("unique-domain-id", "other", QUIET));
}
