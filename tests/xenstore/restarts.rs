//! Restarts: of the agent over what a previous run left, and of xenstored
//! (or its connections) under the agent.

use test_xenstored::Client;

use super::*;

#[test]
#[ignore = "needs root (network namespaces): tests/run.sh runs it, or run as root with --include-ignored"]
fn a_restarted_agent_removes_stale_entries_and_keeps_true_ones_untouched() {
    let Some(t) =
        Scenario::new("a_restarted_agent_removes_stale_entries_and_keeps_true_ones_untouched")
    else {
        return;
    };
    t.add_vif(0);
    t.ip_batch(
        &[
            "addr add 10.0.0.2/24 dev eth0",
            "addr add 10.0.0.3/24 dev eth0",
            "addr add 10.0.0.4/24 dev eth0",
            "addr add 2001:db8::3/64 dev eth0 nodad",
        ]
        .map(String::from),
    );
    let base = t.base(&[]);
    t.xs.add_sriov_vf(9, "02:00:00:00:99:99");

    // What a previous run left, written by the guest as it would have.
    let still_true: Vec<(String, String)> = base
        .iter()
        .filter(|(k, _)| *k != "data/updated" && *k != "data/meminfo_free")
        .map(|(k, v)| (k.clone(), v.clone()))
        .chain(
            [
                ("attr/vif/0/name", "eth0"),
                ("attr/vif/0/mac/0", "00:16:3e:00:00:00"),
                ("attr/vif/0/ipv4/0", "10.0.0.2"),
                ("attr/vif/0/ipv4/2", "10.0.0.3"),
                ("attr/vif/0/ipv6/1", "2001:db8::3"),
                // Not the agent's: never touched.
                ("data/something-else", "kept"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string())),
        )
        .collect();
    let stale = [
        ("data/meminfo_free", "1"),
        ("data/updated", "Mon Jan  1 00:00:00 2024"),
        ("attr/vif/0/ipv4/1", "10.9.9.9"),
        ("attr/vif/0/ipv4/x", "10.0.0.4"),
        ("attr/vif/0/ipv4/01", "10.0.0.4"),
        ("attr/vif/0/ipv4/3", "not an address"),
        ("attr/vif/0/ipv6/0", "2001:db8::dead"),
        ("attr/vif/7/name", "eth7"),
        ("attr/vif/7/ipv4/0", "10.7.0.2"),
        ("xenserver/attr/net-sriov-vf/9/ipv4/0", "10.9.0.1"),
    ];
    let mut guest = Client::connect(t.xs.socket_path()).unwrap();
    for (k, v) in still_true
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .chain(stale)
    {
        guest.write(k, v).unwrap();
    }
    drop(guest);
    t.xs.reset_ops();

    let mut agent = t.agent(&[]);
    started(&agent);
    // Surviving addresses keep their slots (10.0.0.3 in 2, 2001:db8::3 in
    // 1); 10.0.0.4, only in garbage slots before, takes the lowest free.
    let mut want: BTreeMap<String, String> = still_true.iter().cloned().collect();
    want.insert("data/meminfo_free".into(), KIB.into());
    want.insert("data/updated".into(), STAMP.into());
    want.insert("attr/vif/0/ipv4/1".into(), "10.0.0.4".into());
    t.wait_tree(&want, WAIT);

    let ops: BTreeSet<(MsgType, String)> = touched(&t).into_iter().collect();
    let expected: BTreeSet<(MsgType, String)> = [
        (MsgType::Write, "data/meminfo_free"),
        (MsgType::Write, "attr/vif/0/ipv4/1"),
        (MsgType::Rm, "attr/vif/0/ipv4/01"),
        (MsgType::Rm, "attr/vif/0/ipv4/3"),
        (MsgType::Rm, "attr/vif/0/ipv4/x"),
        (MsgType::Rm, "attr/vif/0/ipv6/0"),
        (MsgType::Rm, "attr/vif/7"),
        (MsgType::Rm, "xenserver/attr/net-sriov-vf"),
    ]
    .map(|(k, p)| (k, p.to_string()))
    .into();
    assert_eq!(ops, expected, "nothing still true is written again");
    assert_eq!(touched(&t).len(), expected.len(), "each once");
    assert_committed_in_order(&t);
    agent.assert_running();
}

#[test]
#[ignore = "needs root (network namespaces): tests/run.sh runs it, or run as root with --include-ignored"]
fn xenstored_restarts_and_dropped_connections_again_and_again() {
    let Some(t) = Scenario::new("xenstored_restarts_and_dropped_connections_again_and_again")
    else {
        return;
    };
    let (base, mut agent) = start_on_vif0(&t);
    let mut v4 = vec![(0, "10.0.0.2".to_string())];
    let vif = |v4: &[(usize, String)]| {
        let v4: Vec<(usize, &str)> = v4.iter().map(|(n, a)| (*n, a.as_str())).collect();
        with(&base, vif_nodes(0, &v4, &[]))
    };
    t.wait_tree(&vif(&v4), WAIT);
    t.xs.reset_ops();

    const OUTAGES: usize = 6;
    for round in 0..OUTAGES {
        if round % 2 == 0 {
            t.xs.restart().unwrap();
        } else {
            t.xs.drop_connections();
        }
        if round == 3 {
            // While the agent is away, someone changes one of its nodes:
            // the reconciliation after the reconnection repairs it.
            t.xs.write("attr/vif/0/ipv4/0", "192.0.2.99").unwrap();
        }
        // The next change finds the connection gone.
        let addr = format!("10.0.0.{}", round + 3);
        t.ip(&["addr", "add", &format!("{addr}/24"), "dev", "eth0"]);
        v4.push((round + 1, addr));
        t.wait_tree(&vif(&v4), WAIT);
        // The native client's one; or libxenstore's, and the watches' own.
        let connections = if agent.native() { 1 } else { 2 };
        assert!(t.xs.wait_connections(connections, WAIT));
        // Logged once the step that published is over (maybe just after
        // the tree was complete): the next outage must not come before
        // the commit's reply, or both are one outage to the agent.
        agent.wait_logs("xenstore connection is back", round + 1, WAIT);
    }
    assert_eq!(
        agent.count("xenstore connection failed"),
        OUTAGES,
        "{:#?}",
        agent.stderr()
    );
    assert_eq!(agent.count("xenstore connection is back"), OUTAGES);
    // At start, then once per reconnection: read back and compared.
    assert_eq!(agent.count("full reconciliation"), OUTAGES + 1);

    // What a reconciliation needs: reads, and writes of what differs only
    // (each new address, the repaired node; data/updated).
    let mut ops = touched(&t);
    ops.sort();
    let mut expected: Vec<(MsgType, String)> = (0..=OUTAGES)
        .map(|n| (MsgType::Write, format!("attr/vif/0/ipv4/{n}")))
        .collect();
    expected.sort();
    assert_eq!(ops, expected);
    assert_eq!(unchanged_writes(&t), vec![]);
    assert_committed_in_order(&t);
    // The watches are back, on their own connection (in every build).
    let home = t.xs.home();
    assert!(
        t.xs.wait_for(WAIT, |v| watched(&home, &v.watches())),
        "{:?}",
        t.xs.watches()
    );
    agent.assert_running();
}
