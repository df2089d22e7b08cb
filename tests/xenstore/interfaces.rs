//! Which interfaces are published where: VIF hotplug and unplug, VIFs in
//! bridges, SR-IOV virtual functions, and the rfc layout of all of them.

use super::*;

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
#[ignore = "needs root (network namespaces): tests/run.sh runs it, or run as root with --include-ignored"]
fn a_vif_hot_unplugged_leaves_nothing_behind() {
    let Some(t) = Scenario::new("a_vif_hot_unplugged_leaves_nothing_behind") else {
        return;
    };
    let (base, mut agent) = start_on_vif0(&t);
    let vif0 = vif_nodes(0, &[(0, "10.0.0.2")], &[]);
    t.wait_tree(&with(&base, vif0.clone()), WAIT);

    // Hotplug: the toolstack's frontend, then the guest's interface.
    t.xs.add_vif(1, "00:16:3e:00:00:01");
    t.add_vif(1);
    t.ip_batch(&strings(&[
        "addr add 10.0.1.2/24 dev eth1",
        "addr add 10.0.1.3/24 dev eth1",
        "addr add 2001:db8:1::2/64 dev eth1 nodad",
    ]));
    let mut both = vif0.clone();
    both.extend(vif_nodes(
        1,
        &[(0, "10.0.1.2"), (1, "10.0.1.3")],
        &[(0, "2001:db8:1::2")],
    ));
    t.wait_tree(&with(&base, both), WAIT);

    // Unplug: the interface goes (its addresses with it), then the
    // toolstack's nodes.
    t.xs.reset_ops();
    t.remove_vif(1);
    t.xs.remove_vif(1);
    t.wait_tree(&with(&base, vif0), WAIT);
    // The kernel reports the addresses' removal, then the link's: the
    // agent may see them in one change set or several, but touches
    // nothing outside attr/vif/1 but data/updated, and ends with the
    // whole subtree removed in one go.
    let ops = touched(&t);
    assert!(
        ops.iter()
            .all(|(k, p)| *k == MsgType::Rm && p.starts_with("attr/vif/1")),
        "{ops:#?}"
    );
    assert!(
        ops.contains(&(MsgType::Rm, "attr/vif/1".to_string())),
        "{ops:#?}"
    );
    assert_eq!(unchanged_writes(&t), vec![]);
    assert_committed_in_order(&t);
    agent.assert_running();
}

#[test]
#[ignore = "needs root (network namespaces): tests/run.sh runs it, or run as root with --include-ignored"]
fn a_vif_in_a_bridge_is_published_with_the_bridges_addresses() {
    let Some(t) = Scenario::new("a_vif_in_a_bridge_is_published_with_the_bridges_addresses") else {
        return;
    };
    t.add_vif(0);
    t.add_bridge("br0", "02:00:00:00:0b:00");
    t.ip_batch(&strings(&[
        "addr add 10.0.0.2/24 dev br0",
        "addr add 10.0.0.3/24 dev br0",
        "addr add 2001:db8::2/64 dev br0 nodad",
    ]));
    let base = t.base(&[]);
    let mut agent = t.agent(&[]);
    started(&agent);
    // Not enslaved: the bridge is not a VIF, its addresses are not the
    // VIF's.
    t.wait_tree(&with(&base, vif_nodes(0, &[], &[])), WAIT);

    t.xs.reset_ops();
    t.set_master("eth0", Some("br0"));
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
    // Changes on the bridge follow.
    t.ip(&["addr", "add", "10.0.0.4/24", "dev", "br0"]);
    t.wait_tree(
        &with(
            &base,
            vif_nodes(
                0,
                &[(0, "10.0.0.2"), (1, "10.0.0.3"), (2, "10.0.0.4")],
                &[(0, "2001:db8::2")],
            ),
        ),
        WAIT,
    );
    let written: BTreeSet<String> = touched(&t)
        .into_iter()
        .map(|(k, p)| {
            assert_eq!(k, MsgType::Write, "{p}");
            p
        })
        .collect();
    let want: BTreeSet<String> = [
        "attr/vif/0/ipv4/0",
        "attr/vif/0/ipv4/1",
        "attr/vif/0/ipv4/2",
        "attr/vif/0/ipv6/0",
    ]
    .map(String::from)
    .into();
    assert_eq!(written, want);

    // Out of the bridge: the addresses are no longer the VIF's, and no
    // empty ipv4/ipv6 directory stays.
    t.xs.reset_ops();
    t.set_master("eth0", None);
    t.wait_tree(&with(&base, vif_nodes(0, &[], &[])), WAIT);
    let ops = touched(&t);
    assert_eq!(
        ops,
        vec![
            (MsgType::Rm, "attr/vif/0/ipv4".to_string()),
            (MsgType::Rm, "attr/vif/0/ipv6".to_string()),
        ]
    );
    assert_committed_in_order(&t);
    agent.assert_running();
}

#[test]
#[ignore = "needs root (network namespaces): tests/run.sh runs it, or run as root with --include-ignored"]
fn sriov_vfs_are_published_by_mac_including_ones_announced_later() {
    let Some(t) = Scenario::new("sriov_vfs_are_published_by_mac_including_ones_announced_later")
    else {
        return;
    };
    // Two plain interfaces (no Xen device in sysfs) with VF MACs, and a
    // VIF.
    t.add_vif(0);
    t.ip_batch(&strings(&[
        "link add vf0 address 02:00:00:00:5f:00 type veth peer name vfpeer0",
        "link add vf1 address 02:00:00:00:5f:01 type veth peer name vfpeer1",
        "link set vf0 up",
        "link set vf1 up",
        "addr add 10.0.0.2/24 dev eth0",
        "addr add 10.0.5.2/24 dev vf0",
        "addr add 2001:db8:5::2/64 dev vf0 nodad",
        "addr add 10.0.6.2/24 dev vf1",
        "addr add 10.0.6.3/24 dev vf1",
    ]));
    t.xs.add_sriov_vf(0, "02:00:00:00:5f:00");
    let base = t.base(&[]);
    let mut agent = t.agent(&[]);
    started(&agent);
    let mut want = with(&base, vif_nodes(0, &[(0, "10.0.0.2")], &[]));
    want.extend(tree(&[
        ("xenserver/attr/net-sriov-vf/0/ipv4/0", "10.0.5.2"),
        ("xenserver/attr/net-sriov-vf/0/ipv6/0", "2001:db8:5::2"),
    ]));
    t.wait_tree(&want, WAIT);

    // dom0 announces the second VF now (upper case: MACs compare without
    // case): the watch fires, its addresses appear.
    t.xs.reset_ops();
    t.xs.add_sriov_vf(7, "02:00:00:00:5F:01");
    want.extend(tree(&[
        ("xenserver/attr/net-sriov-vf/7/ipv4/0", "10.0.6.2"),
        ("xenserver/attr/net-sriov-vf/7/ipv4/1", "10.0.6.3"),
    ]));
    t.wait_tree(&want, WAIT);
    let written: BTreeSet<String> = touched(&t).into_iter().map(|(_, p)| p).collect();
    let expected: BTreeSet<String> = [
        "xenserver/attr/net-sriov-vf/7/ipv4/0",
        "xenserver/attr/net-sriov-vf/7/ipv4/1",
    ]
    .map(String::from)
    .into();
    assert_eq!(written, expected);

    // Address changes on a VF follow, slots as for VIFs.
    t.ip_batch(&strings(&[
        "addr del 10.0.6.2/24 dev vf1",
        "addr add 10.0.6.9/24 dev vf1",
    ]));
    want.insert(
        "xenserver/attr/net-sriov-vf/7/ipv4/0".into(),
        "10.0.6.3".into(),
    );
    want.insert(
        "xenserver/attr/net-sriov-vf/7/ipv4/1".into(),
        "10.0.6.9".into(),
    );
    // (10.0.6.3 is the primary now: it moves to the freed slot 0.)
    t.wait_tree(&want, WAIT);

    // dom0 withdraws it: its subtree goes, nothing is left empty.
    t.xs.rm("xenserver/device/net-sriov-vf/7").unwrap();
    want.retain(|k, _| !k.starts_with("xenserver/attr/net-sriov-vf/7/"));
    t.wait_tree(&want, WAIT);
    assert_eq!(unchanged_writes(&t), vec![]);
    assert_committed_in_order(&t);
    agent.assert_running();
}

#[test]
#[ignore = "needs root (network namespaces): tests/run.sh runs it, or run as root with --include-ignored"]
fn rfc_tree_is_exact_for_a_vif_a_bridge_and_a_veth() {
    let Some(t) = Scenario::new("rfc_tree_is_exact_for_a_vif_a_bridge_and_a_veth") else {
        return;
    };
    t.add_vif(0);
    t.add_bridge("br0", "02:00:00:00:0b:00");
    t.ip_batch(&strings(&[
        "link add ve0 address 02:00:00:00:0e:00 type veth peer name ve1 address 02:00:00:00:0e:01",
        "link set ve0 up",
        "addr add 10.0.0.2/24 dev eth0",
        "addr add 2001:db8::2/64 dev eth0 nodad",
        "addr add 10.0.1.1/24 dev br0",
        "addr add fd00::1/64 dev br0 nodad",
        "addr add 10.0.2.1/30 dev ve0",
    ]));
    let [eth0, peer0, br0, ve0, ve1] = ["eth0", "peer0", "br0", "ve0", "ve1"].map(|n| t.ifindex(n));
    let base = t.base(&["--schema", "rfc"]);
    for k in [
        "data/xen-guest-agent/schema",
        "data/xen-guest-agent/version",
        "data/os/class",
    ] {
        assert!(base.contains_key(k), "{k} in {base:#?}");
    }
    assert_eq!(base["data/xen-guest-agent/schema"], "1.0.0");
    let net = |list: &[(u32, &str, &str)]| -> Vec<(String, String)> {
        list.iter()
            .map(|(i, k, v)| (format!("data/net/{i}/{k}"), v.to_string()))
            .collect()
    };
    let mut want = with(
        &base,
        net(&[
            (eth0, "name", "eth0"),
            (eth0, "mac", "00:16:3e:00:00:00"),
            (eth0, "kind", "vif"),
            (eth0, "vif", "0"),
            (eth0, "ipv4/10_0_0_2", "10.0.0.2/24"),
            (eth0, "ipv6/2001_db8__2", "2001:db8::2/64"),
            (peer0, "name", "peer0"),
            (peer0, "mac", "02:00:00:00:01:00"),
            (peer0, "kind", "other"),
            (br0, "name", "br0"),
            (br0, "mac", "02:00:00:00:0b:00"),
            (br0, "kind", "bridge"),
            (br0, "ipv4/10_0_1_1", "10.0.1.1/24"),
            (br0, "ipv6/fd00__1", "fd00::1/64"),
            (ve0, "name", "ve0"),
            (ve0, "mac", "02:00:00:00:0e:00"),
            (ve0, "kind", "other"),
            (ve0, "ipv4/10_0_2_1", "10.0.2.1/30"),
            (ve1, "name", "ve1"),
            (ve1, "mac", "02:00:00:00:0e:01"),
            (ve1, "kind", "other"),
        ]),
    );
    let mut agent = t.agent(&["--schema", "rfc"]);
    started(&agent);
    t.wait_tree(&want, WAIT);
    // One transaction, the layout version first, data/updated last.
    let txs: Vec<_> = transactions(&t.xs.ops())
        .into_iter()
        .filter(|t| t.committed)
        .collect();
    assert_eq!(txs.len(), 1);
    let writes: Vec<&str> = txs[0]
        .ops
        .iter()
        .filter(|o| o.kind == Some(MsgType::Write))
        .filter_map(|o| o.path.as_deref())
        .collect();
    assert!(
        writes[0].ends_with("/data/xen-guest-agent/schema"),
        "{writes:#?}"
    );
    assert!(
        writes.last().unwrap().ends_with("/data/updated"),
        "{writes:#?}"
    );
    assert_eq!(
        writes.len(),
        want.len(),
        "each node written once: {writes:#?}"
    );
    assert_committed_in_order(&t);

    // Changes: an address more, the bridge's last IPv6 gone (no empty
    // ipv6 directory), a rename (same key, new name), a veth pair gone.
    t.xs.reset_ops();
    t.ip_batch(&strings(&[
        "addr add 10.0.0.3/24 dev eth0",
        "addr del fd00::1/64 dev br0",
        "link set ve0 down",
        "link set ve0 name ve9",
    ]));
    want.insert(
        format!("data/net/{eth0}/ipv4/10_0_0_3"),
        "10.0.0.3/24".into(),
    );
    want.remove(&format!("data/net/{br0}/ipv6/fd00__1"));
    want.insert(format!("data/net/{ve0}/name"), "ve9".into());
    t.wait_tree(&want, WAIT);
    let ops: BTreeSet<(MsgType, String)> = touched(&t).into_iter().collect();
    let expected: BTreeSet<(MsgType, String)> = [
        (MsgType::Write, format!("data/net/{eth0}/ipv4/10_0_0_3")),
        (MsgType::Write, format!("data/net/{ve0}/name")),
        (MsgType::Rm, format!("data/net/{br0}/ipv6")),
    ]
    .into();
    assert_eq!(ops, expected);
    t.ip(&["link", "del", "ve9"]);
    want.retain(|k, _| {
        !k.starts_with(&format!("data/net/{ve0}/")) && !k.starts_with(&format!("data/net/{ve1}/"))
    });
    t.wait_tree(&want, WAIT);
    assert_eq!(unchanged_writes(&t), vec![]);
    assert_committed_in_order(&t);
    agent.assert_running();
}
