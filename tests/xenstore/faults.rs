//! Faults xenstored answers with: a denied node, conflicting commits, a
//! full quota, slow replies. The agent keeps running and converges.

use std::time::Duration;

use super::*;

#[test]
#[ignore = "needs root (network namespaces): tests/run.sh runs it, or run as root with --include-ignored"]
fn eacces_on_one_ipv6_node_is_logged_once_and_the_rest_published() {
    let Some(t) = Scenario::new("eacces_on_one_ipv6_node_is_logged_once_and_the_rest_published")
    else {
        return;
    };
    t.add_vif(0);
    t.ip_batch(
        &[
            "addr add 10.0.0.2/24 dev eth0",
            "addr add 2001:db8::2/64 dev eth0 nodad",
            "addr add 2001:db8::3/64 dev eth0 nodad",
        ]
        .map(String::from),
    );
    t.xs.deny("attr/vif/0/ipv6/1");
    let base = t.base(&[]);
    let mut agent = t.agent(&[]);
    started(&agent);
    let mut want = with(
        &base,
        vif_nodes(0, &[(0, "10.0.0.2")], &[(0, "2001:db8::2")]),
    );
    t.wait_tree(&want, WAIT);

    // More change sets (the denied node is not tried again), and a fresh
    // domain (everything written again, the denied node tried once more:
    // refusals are a domain's).
    t.ip(&["addr", "add", "2001:db8::4/64", "dev", "eth0", "nodad"]);
    want.insert("attr/vif/0/ipv6/2".into(), "2001:db8::4".into());
    t.wait_tree(&want, WAIT);
    t.xs.new_domain(6);
    t.wait_tree(&want, WAIT);
    t.ip(&["addr", "add", "10.0.0.3/24", "dev", "eth0"]);
    want.insert("attr/vif/0/ipv4/1".into(), "10.0.0.3".into());
    t.wait_tree(&want, WAIT);

    let denied = "attr/vif/0/ipv6/1: permission denied";
    assert_eq!(agent.count(denied), 2, "{:#?}", agent.stderr());
    assert_eq!(
        t.write_tries("attr/vif/0/ipv6/1"),
        2,
        "tried once per domain, never again in a domain"
    );
    agent.assert_no_errors();
    assert_eq!(unchanged_writes(&t), vec![]);
    agent.assert_running();
}

#[test]
#[ignore = "needs root (network namespaces): tests/run.sh runs it, or run as root with --include-ignored"]
fn eagain_storms_below_and_above_the_retry_bound_converge_whole() {
    let Some(t) = Scenario::new("eagain_storms_below_and_above_the_retry_bound_converge_whole")
    else {
        return;
    };
    let (base, mut agent) = start_on_vif0(&t);
    t.wait_tree(&with(&base, vif_nodes(0, &[(0, "10.0.0.2")], &[])), WAIT);
    t.xs.reset_ops();

    // Below the bound (8 tries): retried at once.
    t.xs.fail_next_commits(5);
    t.ip_batch(
        &[
            "addr add 10.0.0.3/24 dev eth0",
            "addr add 2001:db8::2/64 dev eth0 nodad",
        ]
        .map(String::from),
    );
    t.wait_tree(
        &with(
            &base,
            vif_nodes(
                0,
                &[(0, "10.0.0.2"), (1, "10.0.0.3")],
                &[(0, "2001:db8::2")],
            ),
        ),
        WAIT,
    );
    assert_eq!(t.xs.pending_commit_failures(), 0);
    assert_eq!(agent.count("still conflicting"), 0);

    // Above it (twice the bound and more): left for later, retried with
    // backoff, while more changes arrive; logged once.
    t.xs.fail_next_commits(19);
    t.ip(&["addr", "add", "10.0.0.4/24", "dev", "eth0"]);
    assert!(t.xs.wait_for(WAIT, |v| v
        .ops()
        .iter()
        .filter(|o| o.kind == Some(MsgType::TransactionEnd))
        .count()
        >= 6 + 8));
    t.ip_batch(
        &[
            "addr del 10.0.0.3/24 dev eth0",
            "addr del 2001:db8::2/64 dev eth0",
            "addr add 10.0.0.5/24 dev eth0",
            "addr add 2001:db8::5/64 dev eth0 nodad",
        ]
        .map(String::from),
    );
    // 10.0.0.4 took slot 2 in the first (failed) attempts: the agent
    // rendered it then, and it keeps its slot.
    t.wait_tree(
        &with(
            &base,
            vif_nodes(
                0,
                &[(0, "10.0.0.2"), (1, "10.0.0.5"), (2, "10.0.0.4")],
                &[(0, "2001:db8::5")],
            ),
        ),
        3 * WAIT,
    );
    assert_eq!(t.xs.pending_commit_failures(), 0);
    assert_eq!(
        agent.count("still conflicting after 8 tries"),
        1,
        "{:#?}",
        agent.stderr()
    );

    // Never half a change set: the failed ones left nothing (the tree is
    // exact), and each committed one is whole, in the contract's order.
    let txs = transactions(&t.xs.ops());
    assert_eq!(txs.iter().filter(|t| !t.committed).count(), 5 + 19);
    assert_committed_in_order(&t);
    assert_eq!(unchanged_writes(&t), vec![]);
    agent.assert_running();
}

#[test]
#[ignore = "needs root (network namespaces): tests/run.sh runs it, or run as root with --include-ignored"]
fn quota_exceeded_is_logged_and_healed_once_lifted() {
    let Some(t) = Scenario::new("quota_exceeded_is_logged_and_healed_once_lifted") else {
        return;
    };
    let (base, mut agent) = start_on_vif0(&t);
    let before = with(&base, vif_nodes(0, &[(0, "10.0.0.2")], &[]));
    t.wait_tree(&before, WAIT);

    t.xs.set_quota_exceeded(true);
    t.ip_batch(
        &[
            "addr add 10.0.0.3/24 dev eth0",
            "addr add 2001:db8::2/64 dev eth0 nodad",
        ]
        .map(String::from),
    );
    // Both changes were tried (and refused) while the quota was full.
    agent.wait_log(
        "attr/vif/0/ipv4/1: refused (ENOSPC: quota or size limit?)",
        WAIT,
    );
    agent.wait_log(
        "attr/vif/0/ipv6/0: refused (ENOSPC: quota or size limit?)",
        WAIT,
    );
    // Nothing new could be created; what exists is kept.
    assert_eq!(t.ours(), before);
    t.xs.set_quota_exceeded(false);
    let after = with(
        &base,
        vif_nodes(
            0,
            &[(0, "10.0.0.2"), (1, "10.0.0.3")],
            &[(0, "2001:db8::2")],
        ),
    );
    t.wait_tree(&after, WAIT);
    agent.assert_no_errors();
    assert_eq!(unchanged_writes(&t), vec![]);
    agent.assert_running();
}

#[test]
#[ignore = "needs root (network namespaces): tests/run.sh runs it, or run as root with --include-ignored"]
fn slow_replies_delay_but_do_not_break_publication() {
    let Some(t) = Scenario::new("slow_replies_delay_but_do_not_break_publication") else {
        return;
    };
    let (base, mut agent) = start_on_vif0(&t);
    t.wait_tree(&with(&base, vif_nodes(0, &[(0, "10.0.0.2")], &[])), WAIT);

    // Every request takes 200 ms: changes made meanwhile coalesce.
    t.xs.set_reply_delay(Duration::from_millis(200));
    for i in 3..7 {
        t.ip(&["addr", "add", &format!("10.0.0.{i}/24"), "dev", "eth0"]);
    }
    let slow = with(
        &base,
        vif_nodes(
            0,
            &[
                (0, "10.0.0.2"),
                (1, "10.0.0.3"),
                (2, "10.0.0.4"),
                (3, "10.0.0.5"),
                (4, "10.0.0.6"),
            ],
            &[],
        ),
    );
    t.wait_tree(&slow, 3 * WAIT);
    // Fast again.
    t.xs.set_reply_delay(Duration::ZERO);
    t.ip(&["addr", "del", "10.0.0.4/24", "dev", "eth0"]);
    let mut fast = slow.clone();
    fast.remove("attr/vif/0/ipv4/2");
    t.wait_tree(&fast, WAIT);
    assert_eq!(
        agent.count("xenstore connection failed"),
        0,
        "{:#?}",
        agent.stderr()
    );
    assert_eq!(unchanged_writes(&t), vec![]);
    assert_committed_in_order(&t);
    agent.assert_running();
}

#[test]
#[ignore = "needs root (network namespaces): tests/run.sh runs it, or run as root with --include-ignored"]
fn a_new_domain_and_an_address_change_at_the_same_moment_leave_the_whole_tree() {
    // The resume race: the new domain's watch and a change set arrive
    // together, in either order. Whatever the order, the new domain must
    // end up with the whole tree, not just the change.
    let Some(t) = Scenario::new("a_new_domain_and_an_address_change_at_the_same_moment") else {
        return;
    };
    let (base, agent) = start_on_vif0(&t);
    let mut v4 = vec![(0, "10.0.0.2".to_string())];
    let tree = |v4: &[(usize, String)]| {
        let v4: Vec<(usize, &str)> = v4.iter().map(|(n, a)| (*n, a.as_str())).collect();
        with(&base, vif_nodes(0, &v4, &[]))
    };
    t.wait_tree(&tree(&v4), WAIT);
    const ROUNDS: u32 = 20;
    for round in 0..ROUNDS {
        let addr = format!("10.0.1.{}", round + 1);
        let cmd = format!("addr add {addr}/24 dev eth0");
        // The address first, the domain first, and both from two threads.
        match round % 3 {
            0 => {
                t.ip_batch(&[cmd]);
                t.xs.new_domain(10 + round);
            }
            1 => {
                t.xs.new_domain(10 + round);
                t.ip_batch(&[cmd]);
            }
            _ => std::thread::scope(|s| {
                s.spawn(|| t.ip_batch(&[cmd]));
                s.spawn(|| t.xs.new_domain(10 + round));
            }),
        }
        v4.push((round as usize + 1, addr));
        t.wait_tree(&tree(&v4), WAIT);
    }
    assert!(agent.count("publishing everything again") >= ROUNDS as usize);
    agent.assert_no_errors();
}

#[test]
#[ignore = "needs root (network namespaces): tests/run.sh runs it, or run as root with --include-ignored"]
fn garbage_truncated_and_missing_replies_and_stray_events_are_survived() {
    use test_xenstored::Corruption;
    let Some(t) = Scenario::new("garbage_truncated_and_missing_replies_and_stray_events") else {
        return;
    };
    t.add_vif(0);
    t.ip(&["addr", "add", "10.0.0.2/24", "dev", "eth0"]);
    let base = t.base(&[]);
    let mut agent = t.agent(&["--xenstore-timeout", "2"]);
    started(&agent);
    let mut v4 = vec![(0, "10.0.0.2".to_string())];
    let tree = |v4: &[(usize, String)]| {
        let v4: Vec<(usize, &str)> = v4.iter().map(|(n, a)| (*n, a.as_str())).collect();
        with(&base, vif_nodes(0, &v4, &[]))
    };
    t.wait_tree(&tree(&v4), WAIT);
    let add = |v4: &mut Vec<(usize, String)>| {
        let n = v4.len();
        let addr = format!("10.0.2.{n}");
        t.ip(&["addr", "add", &format!("{addr}/24"), "dev", "eth0"]);
        v4.push((n, addr));
    };

    // A stray event (a token nobody registered): ignored.
    t.xs.spurious_watch_event("data/whatever", "not-a-token-of-ours");
    add(&mut v4);
    t.wait_tree(&tree(&v4), WAIT);

    // Each corrupted reply: the connection is dropped, opened again, and
    // everything reconciled; the change that met the fault is published.
    // Every reply is spoiled until the agent has given the connection up
    // (the next reply alone could fall on a check's read of the old
    // connection, and no outage follow).
    let mut outages = 0;
    for how in Corruption::ALL {
        if how == Corruption::UnknownRequestId && !agent.native() {
            // libxenstore does not check request ids (one request at a
            // time): the answer it carries is taken, and is right. (The
            // reply may also fall on the native watch connection, which
            // gives it up.)
            t.xs.corrupt_next_reply(how);
            add(&mut v4);
            t.wait_tree(&tree(&v4), WAIT);
            t.xs.clear_corruption();
            outages = agent.count("xenstore connection failed");
            agent.wait_logs("xenstore connection is back", outages, WAIT);
            continue;
        }
        t.xs.corrupt_replies(how);
        add(&mut v4);
        outages += 1;
        agent.wait_logs("xenstore connection failed", outages, WAIT);
        t.xs.clear_corruption();
        t.wait_tree(&tree(&v4), WAIT);
        agent.wait_logs("xenstore connection is back", outages, WAIT);
    }

    // A xenstored that takes requests but never answers: given up after
    // --xenstore-timeout, by both backends (libxenstore's call, which
    // cannot be given up, is left to its thread: the rest of its batch is
    // never sent), reconnected, everything published once it answers.
    t.xs.swallow_replies(true);
    add(&mut v4);
    agent.wait_log(
        if agent.native() {
            "no reply within the deadline"
        } else {
            "libxenstore did not answer within 2 s"
        },
        WAIT,
    );
    t.xs.swallow_replies(false);
    t.wait_tree(&tree(&v4), WAIT);
    outages += 1;
    agent.wait_logs("xenstore connection is back", outages, WAIT);

    assert_eq!(
        agent.count("xenstore connection failed"),
        outages,
        "{:#?}",
        agent.stderr()
    );
    assert_eq!(unchanged_writes(&t), vec![]);
    agent.assert_no_errors();
    agent.assert_running();
}

#[test]
#[ignore = "needs root (network namespaces): tests/run.sh runs it, or run as root with --include-ignored"]
fn a_tree_lost_without_a_watch_comes_back_whole_with_the_next_change_set() {
    // Nothing fires: dom0 (or a toolstack bug) removes the guest's nodes.
    // The next change set's transaction finds data/updated gone and
    // publishes everything, not just the change.
    let Some(t) = Scenario::new("a_tree_lost_without_a_watch_comes_back_whole") else {
        return;
    };
    let (base, agent) = start_on_vif0(&t);
    t.wait_tree(&with(&base, vif_nodes(0, &[(0, "10.0.0.2")], &[])), WAIT);
    // (The directories stay: the toolstack made them, and only it can.)
    for dir in ["data", "attr"] {
        let dir = format!("{}/{dir}", t.xs.home());
        for child in t.xs.directory(&dir).unwrap() {
            t.xs.rm(&format!("{dir}/{child}")).unwrap();
        }
    }
    assert!(t.ours().is_empty());
    t.ip(&["addr", "add", "10.0.0.3/24", "dev", "eth0"]);
    t.wait_tree(
        &with(
            &base,
            vif_nodes(0, &[(0, "10.0.0.2"), (1, "10.0.0.3")], &[]),
        ),
        WAIT,
    );
    agent.wait_log("publishing everything again", WAIT);
    agent.assert_no_errors();
}
