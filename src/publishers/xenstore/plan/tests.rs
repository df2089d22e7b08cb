use super::*;

fn nodes(list: &[(&str, &str)]) -> Nodes {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn w(path: &str, value: &str) -> Op {
    Op::Write {
        path: path.into(),
        value: value.into(),
    }
}

fn rm(path: &str) -> Op {
    Op::Remove { path: path.into() }
}

const STD_OWNED: &[&str] = &[
    "attr/vif",
    "xenserver/attr/net-sriov-vf",
    "attr/PVAddons",
    "data/os_name",
    "data/meminfo_free",
];

#[test]
fn nothing_changed_nothing_written() {
    let n = nodes(&[
        ("data/os_name", "Debian"),
        ("attr/vif/0/ipv4/0", "10.0.0.2"),
    ]);
    assert!(plan(&n, &n, STD_OWNED).is_empty());
}

#[test]
fn only_new_and_changed_nodes_are_written() {
    let written = nodes(&[("data/os_name", "Debian"), ("data/meminfo_free", "100")]);
    let desired = nodes(&[
        ("data/os_name", "Debian"),
        ("data/meminfo_free", "90"),
        ("attr/vif/0/ipv4/0", "10.0.0.2"),
    ]);
    assert_eq!(
        plan(&written, &desired, STD_OWNED),
        vec![
            w("data/meminfo_free", "90"),
            w("attr/vif/0/ipv4/0", "10.0.0.2")
        ]
    );
}

#[test]
fn a_vif_that_went_is_one_removal() {
    let written = nodes(&[
        ("attr/vif/0/name", "eth0"),
        ("attr/vif/1/name", "eth1"),
        ("attr/vif/1/mac/0", "00:16:3e:00:00:01"),
        ("attr/vif/1/ipv4/0", "10.0.0.3"),
        ("attr/vif/1/ipv6/0", "fe80::1"),
    ]);
    let desired = nodes(&[("attr/vif/0/name", "eth0")]);
    assert_eq!(plan(&written, &desired, STD_OWNED), vec![rm("attr/vif/1")]);
}

#[test]
fn the_last_address_of_a_family_takes_its_directory_along() {
    let written = nodes(&[
        ("attr/vif/1/name", "eth1"),
        ("attr/vif/1/ipv4/0", "10.0.0.3"),
        ("attr/vif/1/ipv6/0", "fe80::1"),
        ("attr/vif/1/ipv6/1", "2001:db8::1"),
    ]);
    let desired = nodes(&[
        ("attr/vif/1/name", "eth1"),
        ("attr/vif/1/ipv6/1", "2001:db8::1"),
    ]);
    assert_eq!(
        plan(&written, &desired, STD_OWNED),
        vec![rm("attr/vif/1/ipv4"), rm("attr/vif/1/ipv6/0")]
    );
}

#[test]
fn an_owned_subtree_with_nothing_desired_goes_entirely() {
    let written = nodes(&[("attr/vif/1/ipv4/0", "10.0.0.3"), ("attr/vif/2/name", "x")]);
    assert_eq!(
        plan(&written, &Nodes::new(), STD_OWNED),
        vec![rm("attr/vif")]
    );
}

#[test]
fn nothing_outside_owned_is_removed() {
    let written = nodes(&[
        ("control/feature-balloon", "1"),
        ("data/updated", "x"),
        ("data/os_distro_extra", "x"),
        ("data/os_name", "Debian"),
        ("attr/os/spmajor", "1"),
        ("attr/vifx/0", "x"),
        ("xenserver/attr/other/0", "x"),
    ]);
    assert_eq!(
        plan(&written, &Nodes::new(), STD_OWNED),
        vec![rm("data/os_name")]
    );
}

#[test]
fn siblings_sorting_between_a_node_and_its_children_do_not_hide_them() {
    // "attr/vif/1-x" sorts between "attr/vif/1" and "attr/vif/1/...".
    let written = nodes(&[("attr/vif/1/ipv4/0", "a"), ("attr/vif/1-x", "b")]);
    let desired = nodes(&[("attr/vif/1/name", "eth1")]);
    assert_eq!(
        plan(&written, &desired, STD_OWNED),
        vec![
            rm("attr/vif/1-x"),
            rm("attr/vif/1/ipv4"),
            w("attr/vif/1/name", "eth1")
        ]
    );
}

#[test]
fn intermediate_nodes_read_back_are_kept_and_emptied() {
    // What a read-back holds: every node, parents included; an earlier
    // agent kept the interface name on the parent.
    let written = nodes(&[
        ("data/net", ""),
        ("data/net/2", "eth0"),
        ("data/net/2/ipv4", ""),
        ("data/net/2/ipv4/10_0_0_2", ""),
        ("data/net/3", "eth1"),
    ]);
    let desired = nodes(&[
        ("data/net/2/name", "eth0"),
        ("data/net/2/ipv4/10_0_0_2", "10.0.0.2/24"),
    ]);
    assert_eq!(
        plan(&written, &desired, &["data/net"]),
        vec![
            rm("data/net/3"),
            w("data/net/2", ""),
            w("data/net/2/ipv4/10_0_0_2", "10.0.0.2/24"),
            w("data/net/2/name", "eth0"),
        ]
    );
}

#[test]
fn order_is_schema_version_data_attr_control_with_removals_first() {
    let written = nodes(&[
        ("data/xen-guest-agent/old", "x"),
        ("data/os/old", "x"),
        ("attr/vif/0/ipv4/1", "10.0.0.9"),
        ("xenserver/attr/net-sriov-vf/1/ipv4/0", "10.0.1.1"),
    ]);
    let desired = nodes(&[
        ("control/feature-balloon", "1"),
        ("attr/vif/0/ipv4/0", "10.0.0.2"),
        ("xenserver/attr/net-sriov-vf/2/ipv4/0", "10.0.2.1"),
        ("data/os/name", "Debian"),
        ("data/xen-guest-agent/version", "1.0.0"),
        ("data/xen-guest-agent/schema", "1.0.0"),
    ]);
    let owned = &[
        "data/xen-guest-agent",
        "data/os",
        "attr/vif",
        "xenserver/attr/net-sriov-vf",
    ];
    assert_eq!(
        plan(&written, &desired, owned),
        vec![
            rm("data/xen-guest-agent/old"),
            w("data/xen-guest-agent/schema", "1.0.0"),
            w("data/xen-guest-agent/version", "1.0.0"),
            rm("data/os/old"),
            w("data/os/name", "Debian"),
            rm("attr/vif/0/ipv4/1"),
            rm("xenserver/attr/net-sriov-vf/1"),
            w("attr/vif/0/ipv4/0", "10.0.0.2"),
            w("xenserver/attr/net-sriov-vf/2/ipv4/0", "10.0.2.1"),
            w("control/feature-balloon", "1"),
        ]
    );
}

#[test]
fn invalid_or_forbidden_nodes_are_never_sent() {
    let desired = nodes(&[
        ("attr/vif/0/name", "eth\u{1}0"),
        ("attr/vif/0/ipv4/0", "10.0.0.2"),
        ("attr/vif/e th0/name", "x"),
        ("attr/vif//0", "x"),
        ("/attr/vif/0", "x"),
        ("attr/vif/0/", "x"),
        ("control/shutdown", "poweroff"),
        ("device/vif/0/mac", "x"),
        ("memory/target", "1"),
        ("data/big", &"x".repeat(MAX_VALUE + 1)),
    ]);
    assert_eq!(
        plan(&Nodes::new(), &desired, STD_OWNED),
        vec![w("attr/vif/0/ipv4/0", "10.0.0.2")]
    );
}

#[test]
fn apply_keeps_written_in_step() {
    let mut written = nodes(&[
        ("attr/vif/1/name", "eth1"),
        ("attr/vif/1/ipv4/0", "10.0.0.3"),
        ("attr/vif/1-x", "x"),
        ("data/os_name", "a"),
    ]);
    let desired = nodes(&[("data/os_name", "b"), ("attr/vif/1-x", "x")]);
    let ops = plan(&written, &desired, &["attr/vif", "data/os_name"]);
    for op in &ops {
        apply(&mut written, op, &["attr/vif", "data/os_name"]);
    }
    assert_eq!(written, desired);
    assert!(plan(&written, &desired, &["attr/vif", "data/os_name"]).is_empty());
}

#[test]
fn a_directory_emptied_while_its_other_nodes_were_refused_goes_with_the_next_plan() {
    // ipv6/0 removed while ipv6/1 is wanted but refused (quota): the
    // removal is of ipv6/0 alone, and xenstore keeps an empty ipv6
    // directory. Once ipv6/1 is no longer wanted, that directory goes.
    let owned = &["attr/vif"];
    let mut written = nodes(&[
        ("attr/vif/0/name", "eth0"),
        ("attr/vif/0/ipv6/0", "2001:db8::1"),
    ]);
    let wanted = nodes(&[
        ("attr/vif/0/name", "eth0"),
        ("attr/vif/0/ipv6/1", "2001:db8::2"),
    ]);
    for op in plan(&written, &wanted, owned) {
        // The write of ipv6/1 is refused: only the removal is applied.
        if matches!(op, Op::Remove { .. }) {
            apply(&mut written, &op, owned);
        }
    }
    let later = nodes(&[("attr/vif/0/name", "eth0")]);
    assert_eq!(
        plan(&written, &later, owned),
        vec![Op::Remove {
            path: "attr/vif/0/ipv6".into()
        }]
    );
}

#[test]
fn path_validity() {
    assert!(valid_path("attr/vif/0/ipv6/12"));
    assert!(valid_path("data/net/2/ipv6/fe80__1"));
    assert!(valid_path("a-b_c@D9"));
    for bad in ["", "/a", "a/", "a//b", "a b", "a.b", "a:b", "é", "a\0"] {
        assert!(!valid_path(bad), "{bad:?}");
    }
    assert!(valid_path(&"a".repeat(MAX_PATH)));
    assert!(!valid_path(&"a".repeat(MAX_PATH + 1)));
}

#[test]
fn values_are_sanitized_to_printable_ascii_within_the_limit() {
    assert_eq!(sanitize("eth0"), "eth0");
    assert_eq!(sanitize("a b~"), "a b~");
    assert_eq!(sanitize("é\u{7f}\t\n\0x"), "?????x");
    let long = sanitize(&"é".repeat(3000));
    assert_eq!(long.len(), MAX_VALUE);
    assert!(valid_value(&long));
    assert!(!valid_value("a\u{7f}"));
}

#[test]
fn writable_places() {
    for ok in [
        "data/os_name",
        "attr/vif/0/name",
        "xenserver/attr/net-sriov-vf/1/ipv4/0",
        "control/feature-balloon",
    ] {
        assert!(writable(ok), "{ok}");
    }
    for no in [
        "control/shutdown",
        "control/feature-balloon/x",
        "xenserver/device/net-sriov-vf/1/mac",
        "device/vif/0",
        "memory/target",
        "data",
    ] {
        assert!(!writable(no), "{no}");
    }
}
