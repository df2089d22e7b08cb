//! The xenstore publisher end to end: the real agent binary, loading the
//! system's libxenstore, against the test xenstored (as guest domain 5 in
//! the tree libxl makes), in a network namespace with fake VIFs.
//!
//! Scenarios that need a network namespace run as root only (they skip
//! with a message otherwise).

#![cfg(feature = "xenstore")]

mod support;

mod churn;
mod faults;
mod filesystems;
mod interfaces;
mod openstack;
mod restarts;
mod static_ip;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::{Duration, Instant};

use support::*;

/// Whether `watches` are the agent's two (paths relative to `home`), on one connection of their own
/// (libxenstore's connection has none: in every build, the watches have
/// their own connection, on the agent's event loop).
fn watched(home: &str, watches: &[test_xenstored::WatchInfo]) -> bool {
    let ours: Vec<_> = watches.iter().filter(|w| w.guest).collect();
    let mut found: Vec<(&str, &str)> = ours
        .iter()
        .map(|w| {
            let path = w.path.strip_prefix(home).unwrap_or(&w.path);
            (path.trim_start_matches('/'), w.token.as_str())
        })
        .collect();
    found.sort();
    found
        == [
            ("unique-domain-id", "domain"),
            ("xenserver/device/net-sriov-vf", "sriov"),
        ]
        && ours.iter().all(|w| w.conn == ours[0].conn)
}

/// The common start: VIF 0 (`eth0`) with 10.0.0.2/24, the agent with
/// default options until its first complete publication; returns what the
/// host-dependent part of the tree is (`Scenario::base`) and the agent.
fn start_on_vif0(t: &Scenario) -> (std::collections::BTreeMap<String, String>, Agent) {
    t.add_vif(0);
    t.ip(&["addr", "add", "10.0.0.2/24", "dev", "eth0"]);
    let base = t.base(&[]);
    let agent = t.agent(&[]);
    started(&agent);
    (base, agent)
}

/// Wait for the first complete publication.
fn started(agent: &Agent) {
    agent.wait_log("first complete publication done", WAIT);
}

/// The std tree for one VIF with one IPv4 address, plus whatever a dry
/// run says about the OS, kernel and memory (those come from the host).
fn std_tree(t: &Scenario, extra: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
    let mut expected = t.dry_run(&[]);
    // What the I/O side and the test control: exact literals.
    let pv = [
        ("attr/PVAddons/Installed", "1"),
        (
            "attr/PVAddons/MajorVersion",
            env!("CARGO_PKG_VERSION_MAJOR"),
        ),
        (
            "attr/PVAddons/MinorVersion",
            env!("CARGO_PKG_VERSION_MINOR"),
        ),
        (
            "attr/PVAddons/MicroVersion",
            env!("CARGO_PKG_VERSION_PATCH"),
        ),
    ];
    for (k, v) in pv {
        assert_eq!(expected.get(k).map(String::as_str), Some(v), "{k}");
    }
    assert_eq!(
        expected.get("data/updated").map(String::as_str),
        Some(STAMP)
    );
    for (k, v) in extra {
        expected.insert(k.to_string(), v.to_string());
    }
    expected
}

#[test]
#[ignore = "needs root (network namespaces): tests/run.sh runs it, or run as root with --include-ignored"]
fn startup_std_tree_is_exact_and_written_once() {
    let Some(t) = Scenario::new("startup_std_tree_is_exact_and_written_once") else {
        return;
    };
    t.add_vif(0);
    t.ip(&["addr", "add", "10.0.0.2/24", "dev", "eth0"]);
    let mut expected = std_tree(&t, &[]);
    // libxl makes control/ read-only: feature-balloon is refused (below).
    expected.remove("control/feature-balloon");
    for (k, v) in [
        ("attr/vif/0/name", "eth0"),
        ("attr/vif/0/mac/0", "00:16:3e:00:00:00"),
        ("attr/vif/0/ipv4/0", "10.0.0.2"),
    ] {
        assert_eq!(
            expected.get(k).map(String::as_str),
            Some(v),
            "{k} in {expected:#?}"
        );
    }
    let agent = t.agent(&[]);
    started(&agent);
    t.wait_tree(&expected, WAIT);
    // One transaction; each node written once, data/updated last.
    let writes = t.guest_ops(MsgType::Write);
    let paths: Vec<String> = writes.iter().filter_map(|o| o.path.clone()).collect();
    assert!(
        paths.last().unwrap().ends_with("/data/updated"),
        "{paths:?}"
    );
    let ok: Vec<_> = writes.iter().filter(|o| o.result.is_ok()).collect();
    assert_eq!(ok.len(), expected.len(), "{paths:?}");
    let commits: Vec<_> = t
        .guest_ops(MsgType::TransactionEnd)
        .into_iter()
        .filter(|o| o.result.is_ok())
        .collect();
    assert_eq!(commits.len(), 1);
    assert!(t.xs.ops().unchanged_writes().is_empty());
}

#[test]
fn not_a_xen_guest_exits_at_once_naming_the_stdout_publisher() {
    if std::path::Path::new("/proc/xen").exists()
        || std::path::Path::new("/dev/xen/xenbus").exists()
        || std::fs::read_to_string("/sys/hypervisor/type").is_ok_and(|t| t.trim() == "xen")
    {
        support::skip::cannot_run("not_a_xen_guest", "this machine is a Xen guest");
        return;
    }
    let out = Command::new(AGENT)
        .args(["--publisher", "xenstore", "-s"])
        .env_remove("XENSTORED_PATH")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("[ERROR xen_guest_agent] this machine is not a Xen guest"),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("not a Xen guest").count(),
        1,
        "said more than once: {stderr}"
    );
    assert!(last.contains("--publisher stdout"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn dry_run_prints_the_writes_without_any_xenstore() {
    let out = Command::new(AGENT)
        .args(["--dry-run", "--oneshot", "--network", "none", "-s"])
        .env_remove("XENSTORED_PATH")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines.iter().all(|l| l.starts_with("write ")), "{stdout}");
    let last = lines.last().unwrap();
    let stamp = last
        .strip_prefix("write data/updated \"")
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or_else(|| panic!("data/updated last: {stdout}"));
    assert!(is_timestamp(stamp), "{stamp}");
    let tree = apply_dry_run(&stdout);
    assert_eq!(
        tree.get("attr/PVAddons/Installed").map(String::as_str),
        Some("1")
    );
    assert_eq!(
        tree.get("control/feature-balloon").map(String::as_str),
        Some("1")
    );
    assert_eq!(tree.len(), lines.len(), "each node written once");
    // Data first, then attr, then control, then data/updated.
    let rank = |l: &&str| match l.split(' ').nth(1).unwrap_or("") {
        "data/updated" => 3,
        p if p.starts_with("data/") => 0,
        p if p.starts_with("control/") => 2,
        _ => 1,
    };
    assert!(
        lines.windows(2).all(|w| rank(&w[0]) <= rank(&w[1])),
        "{stdout}"
    );
}

#[test]
#[ignore = "needs root (network namespaces): tests/run.sh runs it, or run as root with --include-ignored"]
fn xenstored_restarted_under_the_agent() {
    let Some(t) = Scenario::new("xenstored_restarted_under_the_agent") else {
        return;
    };
    t.add_vif(0);
    t.ip(&["addr", "add", "10.0.0.2/24", "dev", "eth0"]);
    let agent = t.agent(&[]);
    started(&agent);
    let mut expected = std_tree(&t, &[]);
    expected.remove("control/feature-balloon");
    t.wait_tree(&expected, WAIT);

    // xenstored restarts and has lost what the guest wrote.
    t.xs.stop();
    for p in ["data", "attr"] {
        for child in t.xs.directory(p).unwrap_or_default() {
            t.xs.rm(&format!("{p}/{child}")).unwrap();
        }
    }
    t.xs.start().unwrap();
    // The next change finds the connection broken: reconnection, then
    // everything is published again, the change included.
    t.ip(&["addr", "add", "10.0.0.3/24", "dev", "eth0"]);
    expected.insert("attr/vif/0/ipv4/1".into(), "10.0.0.3".into());
    t.wait_tree(&expected, WAIT);
    agent.wait_log("xenstore connection is back", WAIT);
    assert_eq!(
        agent.count("xenstore connection failed"),
        1,
        "{:#?}",
        agent.stderr()
    );
    let home = t.xs.home();
    assert!(
        t.xs.wait_for(WAIT, |v| watched(&home, &v.watches())),
        "watches registered again: {:?}",
        t.xs.watches()
    );
}

#[test]
#[ignore = "needs root (network namespaces): tests/run.sh runs it, or run as root with --include-ignored"]
fn eacces_on_control_is_logged_once_and_tolerated() {
    let Some(t) = Scenario::new("eacces_on_control_is_logged_once_and_tolerated") else {
        return;
    };
    t.add_vif(0);
    let agent = t.agent(&[]);
    started(&agent);
    let mut expected = std_tree(&t, &[]);
    expected.remove("control/feature-balloon");
    t.wait_tree(&expected, WAIT);
    // More change sets, and a fresh domain (everything written again).
    t.ip(&["addr", "add", "10.0.0.2/24", "dev", "eth0"]);
    expected.insert("attr/vif/0/ipv4/0".into(), "10.0.0.2".into());
    t.wait_tree(&expected, WAIT);
    t.xs.new_domain(6);
    t.wait_tree(&expected, WAIT);
    t.ip(&["addr", "del", "10.0.0.2/24", "dev", "eth0"]);
    expected.remove("attr/vif/0/ipv4/0");
    t.wait_tree(&expected, WAIT);

    // Once per domain: a new domain (another host, another toolstack) may
    // let the guest write it.
    let denied = agent.count("control/feature-balloon: permission denied");
    assert_eq!(denied, 2, "{:#?}", agent.stderr());
    assert!(agent
        .stderr()
        .iter()
        .any(|l| l.contains("normal under xl/libxl")));
    assert_eq!(
        t.write_tries("control/feature-balloon"),
        2,
        "tried once per domain, never again in a domain"
    );
    agent.assert_no_errors();
}

#[test]
#[ignore = "needs root (network namespaces): tests/run.sh runs it, or run as root with --include-ignored"]
fn feature_balloon_is_written_where_the_toolstack_allows_it() {
    let Some(t) = Scenario::new("feature_balloon_is_written_where_the_toolstack_allows_it") else {
        return;
    };
    t.xs.precreate_feature_balloon();
    let agent = t.agent(&[]);
    started(&agent);
    let expected = std_tree(&t, &[]);
    assert_eq!(
        expected.get("control/feature-balloon").map(String::as_str),
        Some("1")
    );
    t.wait_tree(&expected, WAIT);
    assert_eq!(agent.count("permission denied"), 0);
}

#[test]
#[ignore = "needs root (network namespaces): tests/run.sh runs it, or run as root with --include-ignored"]
fn a_new_domain_after_resume_gets_everything_again() {
    let Some(t) = Scenario::new("a_new_domain_after_resume_gets_everything_again") else {
        return;
    };
    t.add_vif(0);
    t.ip(&["addr", "add", "10.0.0.2/24", "dev", "eth0"]);
    let agent = t.agent(&[]);
    started(&agent);
    let mut expected = std_tree(&t, &[]);
    expected.remove("control/feature-balloon");
    t.wait_tree(&expected, WAIT);
    // Save/restore or migration: a fresh domain, the watches fire once.
    t.xs.reset_ops();
    t.xs.new_domain(9);
    t.wait_tree(&expected, WAIT);
    agent.wait_log("publishing everything again", WAIT);
    // The new domain started empty: every node is there because the agent
    // wrote it after the switch. (Not `ours()` right after `new_domain`:
    // the watches fire inside it, and a quick agent has republished before
    // the test reads.)
    let home = t.xs.home();
    let written: BTreeSet<String> = t
        .guest_ops(MsgType::Write)
        .iter()
        .filter(|o| o.result.is_ok())
        .filter_map(|o| o.path.as_deref()?.strip_prefix(&format!("{home}/")))
        .map(str::to_string)
        .collect();
    let unwritten: Vec<&String> = expected.keys().filter(|k| !written.contains(*k)).collect();
    assert!(
        unwritten.is_empty(),
        "not written in the new domain: {unwritten:?}"
    );
    // Registration firings at start and the ones after the resume cost
    // reads, never writes of what is already there.
    assert!(t.xs.ops().unchanged_writes().is_empty());
}

#[test]
#[ignore = "needs root (network namespaces): tests/run.sh runs it, or run as root with --include-ignored"]
fn threads_stay_within_budget() {
    let Some(t) = Scenario::new("threads_stay_within_budget") else {
        return;
    };
    // A memory sample (and, when it changed, a transaction) every second.
    let agent = t.agent(&["--memory-interval", "1"]);
    started(&agent);
    let home = t.xs.home();
    assert!(t.xs.wait_for(WAIT, |v| watched(&home, &v.watches())));
    // The native backend: the agent's thread alone. libxenstore: also one
    // for its blocking calls; the watches need none (libxenstore's reader
    // thread would be a third).
    let before = agent.tasks();
    let names: Vec<&str> = before.iter().map(|(_, n)| n.as_str()).collect();
    if agent.native() {
        assert_eq!(names, ["xen-guest-agent"], "{before:?}");
    } else {
        assert_eq!(names, ["xen-guest-agent", "xenstore"], "{before:?}");
    }

    // No thread ends or starts while idle: watched for longer than the
    // 10 s keep-alive after which tokio's blocking pool ends an idle
    // thread (and starts another at the next call). This is an
    // observation window, not a wait for a condition.
    t.xs.reset_ops();
    let until = std::time::Instant::now() + std::time::Duration::from_secs(11);
    while std::time::Instant::now() < until {
        assert_eq!(agent.tasks(), before, "threads changed while idle");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let commits = t
        .guest_ops(MsgType::TransactionEnd)
        .iter()
        .filter(|o| o.result.is_ok())
        .count();
    eprintln!("{commits} transactions while idle");
    // Work after the idle time: a watch firing makes the agent check its
    // tree, on the same thread.
    t.xs.reset_ops();
    t.xs.set_unique_domain_id("after-idle").unwrap();
    let updated = format!("{home}/data/updated");
    assert!(t
        .xs
        .wait_for(WAIT, |v| v.ops().iter().any(|o| o.origin.is_guest()
            && o.kind == Some(MsgType::Read)
            && o.path.as_deref() == Some(updated.as_str()))));
    assert_eq!(agent.tasks(), before, "threads changed by the check");
}

/// The std nodes of VIF `id` (named `eth<id>`, MAC as `Scenario::add_vif`
/// makes it) with its addresses in the given slots.
fn vif_nodes(id: u32, v4: &[(usize, &str)], v6: &[(usize, &str)]) -> Vec<(String, String)> {
    let dir = format!("attr/vif/{id}");
    let mut nodes = vec![
        (format!("{dir}/name"), format!("eth{id}")),
        (format!("{dir}/mac/0"), format!("00:16:3e:00:00:{id:02x}")),
    ];
    for (family, addrs) in [("ipv4", v4), ("ipv6", v6)] {
        for (slot, addr) in addrs {
            nodes.push((format!("{dir}/{family}/{slot}"), addr.to_string()));
        }
    }
    nodes
}

/// `base` with `nodes` added.
fn with(base: &BTreeMap<String, String>, nodes: Vec<(String, String)>) -> BTreeMap<String, String> {
    let mut tree = base.clone();
    tree.extend(nodes);
    tree
}

/// The guest's writes and removals that took effect (outside any
/// transaction, or in one that committed), since the last `reset_ops`,
/// with paths relative to the home.
fn effective(t: &Scenario) -> Vec<OpRecord> {
    let log = t.xs.ops();
    let committed: BTreeSet<u32> = transactions(&log)
        .iter()
        .filter(|t| t.committed)
        .map(|t| t.id)
        .collect();
    let home = format!("{}/", t.xs.home());
    log.into_iter()
        .filter(|o| o.origin.is_guest() && o.result.is_ok())
        .filter(|o| matches!(o.kind, Some(MsgType::Write | MsgType::Rm)))
        .filter(|o| o.tx == 0 || committed.contains(&o.tx))
        .map(|mut o| {
            o.path = o
                .path
                .map(|p| p.strip_prefix(&home).map_or(p.clone(), str::to_string));
            o
        })
        .collect()
}

/// Effective writes (see [`effective`]) of a value the node already had:
/// each fires dom0's watches for nothing.
fn unchanged_writes(t: &Scenario) -> Vec<OpRecord> {
    effective(t)
        .into_iter()
        .filter(|o| o.kind == Some(MsgType::Write) && !o.changed)
        .collect()
}

/// (kind, relative path) of the effective operations, in order, but
/// `data/updated`: it follows every change set, unless it already holds
/// the current second (then writing it would be an unchanged write, which
/// [`unchanged_writes`] catches).
fn touched(t: &Scenario) -> Vec<(MsgType, String)> {
    effective(t)
        .into_iter()
        .map(|o| (o.kind.unwrap(), o.path.unwrap_or_default()))
        .filter(|(_, p)| p != "data/updated")
        .collect()
}

/// Every committed transaction of the guest follows the contract's order.
fn assert_committed_in_order(t: &Scenario) {
    let home = t.xs.home();
    for tx in transactions(&t.xs.ops()).iter().filter(|t| t.committed) {
        assert_contract_order(&home, tx);
    }
}

/// The host name as dom0 reads it (std): `data/host_name_dns`, `data/domain`
/// and the signal under the watched `attr/`, a change published within a
/// second in one transaction holding all three (data before attr), a name
/// set again to its own value writing nothing.
#[test]
#[ignore = "needs root (network and UTS namespaces): tests/run.sh runs it, or run as root with --include-ignored"]
fn a_host_name_change_reaches_dom0_with_the_node_xenopsd_watches() {
    let Some(t) = Scenario::new("a_host_name_change_reaches_dom0_with_the_node_xenopsd_watches")
    else {
        return;
    };
    let agent = t.agent_in_own_uts("vm-41.lab.example", &["--network", "none"]);
    started(&agent);
    let host = |tree: &BTreeMap<String, String>| {
        [
            "data/host_name_dns",
            "data/domain",
            "attr/xen-guest-agent/host-name",
        ]
        .map(|k| tree.get(k).cloned().unwrap_or_default())
    };
    let tree = t.wait_until(WAIT, |tree| host(tree)[0] == "vm-41");
    assert_eq!(host(&tree), ["vm-41", "lab.example", "vm-41.lab.example"]);

    t.xs.reset_ops();
    let start = Instant::now();
    t.set_host_name(&agent, "vm-42.other.example");
    let tree = t.wait_until(WAIT, |tree| host(tree)[0] == "vm-42");
    let took = start.elapsed();
    assert_eq!(
        host(&tree),
        ["vm-42", "other.example", "vm-42.other.example"]
    );
    assert!(took < Duration::from_secs(1), "published after {took:?}");
    // The same name again, then another: the first writes nothing (the
    // second proves the agent saw both).
    t.set_host_name(&agent, "vm-42.other.example");
    t.set_host_name(&agent, "vm-43.other.example");
    let tree = t.wait_until(WAIT, |tree| host(tree)[0] == "vm-43");
    assert_eq!(
        host(&tree),
        ["vm-43", "other.example", "vm-43.other.example"]
    );

    let home = t.xs.home();
    let committed: Vec<Transaction> = transactions(&t.xs.ops())
        .into_iter()
        .filter(|x| x.committed)
        .collect();
    let written = |x: &Transaction| -> Vec<String> {
        x.ops
            .iter()
            .filter(|o| o.kind == Some(MsgType::Write) && o.result.is_ok())
            .filter_map(|o| o.path.as_deref())
            .map(|p| p.strip_prefix(&format!("{home}/")).unwrap_or(p).to_string())
            .filter(|p| p != "data/updated")
            .collect::<BTreeSet<String>>()
            .into_iter()
            .collect()
    };
    let sets: Vec<Vec<String>> = committed.iter().map(written).collect();
    assert_eq!(
        sets,
        [
            vec![
                "attr/xen-guest-agent/host-name",
                "data/domain",
                "data/host_name_dns"
            ],
            vec!["attr/xen-guest-agent/host-name", "data/host_name_dns"]
        ],
        "one transaction per change (the second keeps its domain), none for the same name"
    );
    for x in &committed {
        assert_contract_order(&home, x);
    }
    agent.assert_no_errors();
}
