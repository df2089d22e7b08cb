use super::super::super::plan::{plan, valid_path, valid_value};
use super::super::fixtures::{iface, link};
use super::super::Op;
use super::*;
use crate::state::{AddrFlags, Address};
use std::collections::BTreeMap;

fn sample() -> Guest {
    let mut vif = iface(
        link(2, "eth0", Some("00:16:3e:5e:00:01"), Kind::Vif(0)),
        &[],
    );
    vif.link.master = Some(3);
    let mut ifaces = vec![
        iface(
            link(1, "lo", None, Kind::Loopback),
            &[("127.0.0.1", 8), ("::1", 128)],
        ),
        vif,
        iface(
            link(3, "xenbr0", Some("00:16:3e:5e:00:01"), Kind::Bridge),
            &[("10.0.0.2", 24), ("fe80::216:3eff:fe5e:1", 64)],
        ),
        iface(link(4, "bond0", Some("02:00:00:00:00:04"), Kind::Bond), &[]),
        iface(
            link(5, "enp0s4", Some("02:ab:cd:00:00:07"), Kind::Other),
            &[("192.168.1.5", 16)],
        ),
        iface(link(6, "usb0", Some("02:00:00:00:00:06"), Kind::Other), &[]),
    ];
    // Not reported: DAD not done or failed.
    for (a, f) in [
        (
            "2001:db8::10",
            AddrFlags {
                tentative: true,
                ..Default::default()
            },
        ),
        (
            "2001:db8::11",
            AddrFlags {
                dadfailed: true,
                ..Default::default()
            },
        ),
    ] {
        ifaces[2].addresses.insert(
            a.parse().unwrap(),
            Address {
                prefix: 64,
                flags: f,
            },
        );
    }
    Guest {
        os: Some(crate::state::OsInfo {
            distro: "debian".into(),
            name: "Debian GNU/Linux 12 (bookworm)".into(),
            version: "12.5".into(),
            major: "12".into(),
            minor: "5".into(),
        }),
        kernel: Some(crate::state::KernelInfo {
            sysname: "Linux".into(),
            release: "6.1.0-18-amd64".into(),
            version: "#1 SMP".into(),
            machine: "x86_64".into(),
        }),
        memory: Some(crate::state::MemoryInfo {
            total_kib: 2_000_000,
            available_kib: 1_500_000,
        }),
        host_name: None,
        mode: None,
        filesystems: BTreeMap::new(),
        interfaces: ifaces.into_iter().map(|i| (i.link.index, i)).collect(),
    }
}

fn ctx() -> Context {
    Context {
        sriov_vfs: BTreeMap::from([("7".to_string(), "02:AB:CD:00:00:07".to_string())]),
        max_addresses: 32,
        max_filesystems: 16,
        feature_balloon: true,
    }
}

fn pairs(list: &[(&str, &str)]) -> Nodes {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn every_node_of_the_tree() {
    let nodes = Rfc::new().render(&sample(), &ctx());
    assert_eq!(
        nodes,
        pairs(&[
            ("data/xen-guest-agent/schema", "1.0.0"),
            ("data/xen-guest-agent/version", env!("CARGO_PKG_VERSION")),
            ("data/os/name", "Debian GNU/Linux 12 (bookworm)"),
            ("data/os/distro", "debian"),
            ("data/os/version", "12.5"),
            ("data/os/class", "unix"),
            ("data/os/unix/kernel-name", "Linux"),
            ("data/os/unix/kernel-version", "6.1.0-18-amd64"),
            ("data/memory/total-kib", "2000000"),
            ("data/memory/available-kib", "1500000"),
            ("data/net/2/name", "eth0"),
            ("data/net/2/mac", "00:16:3e:5e:00:01"),
            ("data/net/2/kind", "vif"),
            ("data/net/2/vif", "0"),
            ("data/net/3/name", "xenbr0"),
            ("data/net/3/mac", "00:16:3e:5e:00:01"),
            ("data/net/3/kind", "bridge"),
            ("data/net/3/ipv4/10_0_0_2", "10.0.0.2/24"),
            (
                "data/net/3/ipv6/fe80__216_3eff_fe5e_1",
                "fe80::216:3eff:fe5e:1/64"
            ),
            ("data/net/4/name", "bond0"),
            ("data/net/4/mac", "02:00:00:00:00:04"),
            ("data/net/4/kind", "other"),
            ("data/net/5/name", "enp0s4"),
            ("data/net/5/mac", "02:ab:cd:00:00:07"),
            ("data/net/5/kind", "sriov-vf"),
            ("data/net/5/ipv4/192_168_1_5", "192.168.1.5/16"),
            ("data/net/6/name", "usb0"),
            ("data/net/6/mac", "02:00:00:00:00:06"),
            ("data/net/6/kind", "other"),
        ])
    );
    for (k, v) in &nodes {
        assert!(valid_path(k), "{k}");
        assert!(valid_value(v) && !v.is_empty(), "{k} = {v:?}");
    }
    // Leaves only: no node is the parent of another.
    for k in nodes.keys() {
        let child = format!("{k}/");
        assert!(
            !nodes.keys().any(|o| o.starts_with(&child)),
            "{k} has children"
        );
    }
}

#[test]
fn nothing_known_yet_is_just_the_layout() {
    let nodes = Rfc::new().render(&Guest::default(), &ctx());
    assert_eq!(
        nodes,
        pairs(&[
            ("data/xen-guest-agent/schema", "1.0.0"),
            ("data/xen-guest-agent/version", env!("CARGO_PKG_VERSION")),
            ("data/os/class", "unix"),
        ])
    );
    assert!(!nodes.contains_key("data/updated"));
}

#[test]
fn the_layout_version_is_written_first() {
    let nodes = Rfc::new().render(&sample(), &ctx());
    let ops = plan(&Nodes::new(), &nodes, Rfc::new().owned());
    assert_eq!(
        ops[0],
        Op::Write {
            path: "data/xen-guest-agent/schema".into(),
            value: "1.0.0".into()
        }
    );
}

#[test]
fn mangling_round_trips_and_is_a_valid_component() {
    for a in [
        "10.0.0.2",
        "0.0.0.0",
        "255.255.255.255",
        "fe80::1",
        "2001:db8::",
        "::",
        "::1",
        "2001:db8:1:2:3:4:5:6",
        "::ffff:10.0.0.1",
        "::ffff:0.0.0.1",
        "::ffff:10:0:0:1",
        "::1.2.3.4",
    ] {
        let addr: IpAddr = a.parse().unwrap();
        let key = mangle(&addr);
        assert!(valid_path(&key), "{key}");
        assert_eq!(unmangle(&key, Family::of(&addr)), Some(addr), "{key}");
    }
    assert_eq!(mangle(&"fe80::1".parse().unwrap()), "fe80__1");
    assert_eq!(mangle(&"10.0.0.2".parse().unwrap()), "10_0_0_2");
    assert_eq!(mangle(&"::ffff:10.0.0.1".parse().unwrap()), "__ffff_a00_1");
    assert_ne!(
        mangle(&"::ffff:10.0.0.1".parse().unwrap()),
        mangle(&"::ffff:10:0:0:1".parse().unwrap())
    );
    for bad in ["", "10_0_0", "10_0_0_256", "fe80__1", "x", "010_0_0_2"] {
        assert_eq!(unmangle(bad, Family::V4), None, "{bad}");
    }
    for bad in ["10_0_0_2", "FE80__1", "fe80__0001", "g__1", ""] {
        assert_eq!(unmangle(bad, Family::V6), None, "{bad}");
    }
}

#[test]
fn odd_names_are_values_sanitized() {
    let mut g = sample();
    g.interfaces.get_mut(&6).unwrap().link.name = "us b/\u{7f}é".into();
    let nodes = Rfc::new().render(&g, &ctx());
    assert_eq!(nodes["data/net/6/name"], "us b/??");
}

#[test]
fn cap_keeps_what_is_shown_stable() {
    let mut c = ctx();
    c.max_addresses = 2;
    let mut g = sample();
    let br = g.interfaces.get_mut(&3).unwrap();
    for n in [5, 7] {
        br.addresses.insert(
            format!("10.0.0.{n}").parse().unwrap(),
            Address {
                prefix: 24,
                flags: AddrFlags::default(),
            },
        );
    }
    let mut r = Rfc::new();
    let shown = |n: &Nodes| -> Vec<String> {
        n.keys()
            .filter(|k| k.starts_with("data/net/3/ipv4/"))
            .cloned()
            .collect()
    };
    let first = r.render(&g, &c);
    assert_eq!(
        shown(&first),
        ["data/net/3/ipv4/10_0_0_2", "data/net/3/ipv4/10_0_0_5"]
    );
    // A lower address appearing does not push a shown one out.
    g.interfaces.get_mut(&3).unwrap().addresses.insert(
        "10.0.0.1".parse().unwrap(),
        Address {
            prefix: 24,
            flags: AddrFlags::default(),
        },
    );
    assert_eq!(shown(&r.render(&g, &c)), shown(&first));
    // And a restart keeps it too.
    let mut restarted = Rfc::new();
    restarted.adopt(&first);
    assert_eq!(shown(&restarted.render(&g, &c)), shown(&first));
}

#[test]
fn adopt_ignores_garbage_which_the_plan_removes() {
    let left = pairs(&[
        ("data/net/3", "xenbr0"), // an earlier agent's layout
        ("data/net/3/ipv4/10_0_0_2", ""),
        ("data/net/3/ipv4/garbage", ""),
        ("data/net/3/ipv6/zz", ""),
        ("data/net/x/ipv4/10_0_0_2", ""),
        ("data/net/9/ipv4/10_0_0_9", ""),
        ("data/xen-guest-agent", "0.4.0"),
    ]);
    let mut r = Rfc::new();
    r.adopt(&left);
    let nodes = r.render(&sample(), &ctx());
    let ops = plan(&left, &nodes, r.owned());
    let removed: Vec<_> = ops
        .iter()
        .filter_map(|op| match op {
            Op::Remove { path } => Some(path.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        removed,
        [
            "data/net/3/ipv4/garbage",
            "data/net/3/ipv6/zz",
            "data/net/9",
            "data/net/x"
        ]
    );
    assert!(ops.contains(&Op::Write {
        path: "data/xen-guest-agent".into(),
        value: String::new()
    }));
    assert!(ops.contains(&Op::Write {
        path: "data/net/3".into(),
        value: String::new()
    }));
    assert!(ops.contains(&Op::Write {
        path: "data/net/3/ipv4/10_0_0_2".into(),
        value: "10.0.0.2/24".into()
    }));
}

#[test]
fn host_name_and_mode_nodes() {
    use crate::state::{GuestMode, HostName, VirtMode};
    let mut g = sample();
    g.host_name = Some(HostName {
        host: "vm-42".into(),
        domain: Some("lab.example".into()),
    });
    g.mode = Some(GuestMode {
        mode: VirtMode::Hvm,
        pv_net: true,
        pv_block: false,
    });
    let mut s = Rfc::new();
    let nodes = s.render(&g, &ctx());
    assert_eq!(nodes["data/os/host-name"], "vm-42");
    assert_eq!(nodes["data/os/domain"], "lab.example");
    assert_eq!(nodes["data/virtualization/mode"], "hvm");
    assert_eq!(nodes["data/virtualization/pv-drivers/net"], "1");
    assert_eq!(nodes["data/virtualization/pv-drivers/block"], "0");
    assert!(s.owned().contains(&"data/virtualization"));

    g.host_name.as_mut().unwrap().domain = None;
    g.mode = None;
    let nodes = s.render(&g, &ctx());
    assert!(!nodes.contains_key("data/os/domain"));
    assert!(!nodes.keys().any(|k| k.starts_with("data/virtualization")));
}

#[test]
fn filesystems_are_a_slotted_tree_in_kib() {
    use super::super::fixtures::filesystem;
    let mut g = sample();
    for f in [
        filesystem("/", "/dev/xvda1", 10_000, 4_000),
        filesystem("/mnt/a b", "/dev/loop0", 100, 100),
    ] {
        g.filesystems.insert(f.mount_point.clone(), f);
    }
    let mut r = Rfc::new();
    let nodes = r.render(&g, &ctx());
    let fs: Nodes = nodes
        .into_iter()
        .filter(|(k, _)| k.starts_with("data/fs/"))
        .collect();
    assert_eq!(
        fs,
        pairs(&[
            ("data/fs/0/mount-point", "/"),
            ("data/fs/0/type", "ext4"),
            ("data/fs/0/device", "/dev/xvda1"),
            ("data/fs/0/total-kib", "10000"),
            ("data/fs/0/used-kib", "6000"),
            ("data/fs/0/available-kib", "4000"),
            ("data/fs/1/mount-point", "/mnt/a b"),
            ("data/fs/1/type", "ext4"),
            ("data/fs/1/device", "/dev/loop0"),
            ("data/fs/1/total-kib", "100"),
            ("data/fs/1/used-kib", "0"),
            ("data/fs/1/available-kib", "100"),
        ])
    );
    // Unmounting / frees slot 0, /mnt/a b stays in 1; a restart keeps it.
    g.filesystems.remove("/");
    let nodes = r.render(&g, &ctx());
    assert_eq!(
        nodes.get("data/fs/1/mount-point").map(String::as_str),
        Some("/mnt/a b")
    );
    assert!(!nodes.contains_key("data/fs/0/mount-point"));
    let mut again = Rfc::new();
    again.adopt(&nodes);
    let nodes = again.render(&g, &ctx());
    assert_eq!(
        nodes.get("data/fs/1/mount-point").map(String::as_str),
        Some("/mnt/a b")
    );
}
