use super::super::super::plan::{plan, valid_path, valid_value};
use super::super::fixtures::{ctx, guest, iface, link};
use super::super::Op;
use super::*;
use crate::state::{AddrFlags, Address, Filesystem, OsInfo};

fn lo() -> Interface {
    let mut l = link(1, "lo", Some("00:00:00:00:00:00"), Kind::Loopback);
    l.mac = None;
    iface(l, &[("127.0.0.1", 8), ("::1", 128)])
}

fn eth0() -> Interface {
    iface(
        link(2, "eth0", Some("00:16:3e:5e:00:01"), Kind::Vif(0)),
        &[
            ("10.0.0.2", 24),
            ("fe80::216:3eff:fe5e:1", 64),
            ("2001:db8::2", 64),
        ],
    )
}

fn render(guest: &Guest, ctx: &Context) -> Vec<(String, String)> {
    Standard::new().render(guest, ctx).into_iter().collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = list
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    v.sort();
    v
}

/// Only the `attr/vif` and `xenserver` nodes.
fn net(nodes: &Nodes) -> Vec<(String, String)> {
    nodes
        .iter()
        .filter(|(k, _)| k.starts_with("attr/vif/") || k.starts_with("xenserver/"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[test]
fn every_node_of_the_table() {
    let g = guest(vec![lo(), eth0()]);
    assert_eq!(
        render(&g, &ctx()),
        pairs(&[
            ("data/os_distro", "debian"),
            ("data/os_majorver", "12"),
            ("data/os_minorver", "5"),
            ("data/os_name", "Debian GNU/Linux 12 (bookworm)"),
            ("data/os_uname", "6.1.0-18-amd64"),
            ("data/meminfo_total", "2000000"),
            ("data/meminfo_free", "1500000"),
            ("attr/PVAddons/Installed", "1"),
            (
                "attr/PVAddons/MajorVersion",
                env!("CARGO_PKG_VERSION_MAJOR")
            ),
            (
                "attr/PVAddons/MinorVersion",
                env!("CARGO_PKG_VERSION_MINOR")
            ),
            (
                "attr/PVAddons/MicroVersion",
                env!("CARGO_PKG_VERSION_PATCH")
            ),
            ("attr/PVAddons/BuildVersion", BUILD_VERSION),
            ("attr/vif/0/name", "eth0"),
            ("attr/vif/0/mac/0", "00:16:3e:5e:00:01"),
            ("attr/vif/0/ipv4/0", "10.0.0.2"),
            ("attr/vif/0/ipv6/0", "2001:db8::2"),
            ("attr/vif/0/ipv6/1", "fe80::216:3eff:fe5e:1"),
            ("control/feature-balloon", "1"),
        ])
    );
    assert_eq!(
        BUILD_VERSION,
        option_env!("XEN_GUEST_AGENT_BUILD").unwrap_or("0")
    );
}

#[test]
fn unknown_facts_are_absent_and_data_updated_is_never_rendered() {
    let mut c = ctx();
    c.feature_balloon = false;
    let mut g = Guest::default();
    let nodes = Standard::new().render(&g, &c);
    assert_eq!(
        nodes.keys().collect::<Vec<_>>(),
        [
            "attr/PVAddons/BuildVersion",
            "attr/PVAddons/Installed",
            "attr/PVAddons/MajorVersion",
            "attr/PVAddons/MicroVersion",
            "attr/PVAddons/MinorVersion",
        ]
    );
    // An OS with an unknown version: no version nodes.
    g.os = Some(OsInfo {
        distro: "linux".into(),
        name: "Linux".into(),
        ..Default::default()
    });
    let nodes = Standard::new().render(&g, &c);
    assert!(!nodes.contains_key("data/os_majorver"));
    assert!(!nodes.contains_key("data/os_minorver"));
    assert!(!nodes.contains_key("data/updated"));
}

#[test]
fn only_vifs_and_sriov_vfs_are_published() {
    let g = guest(vec![
        lo(),
        eth0(),
        iface(
            link(3, "br0", Some("02:00:00:00:00:03"), Kind::Bridge),
            &[("10.1.0.1", 24)],
        ),
        iface(
            link(4, "bond0", Some("02:00:00:00:00:04"), Kind::Bond),
            &[("10.2.0.1", 24)],
        ),
        iface(
            link(5, "veth0", Some("02:00:00:00:00:05"), Kind::Other),
            &[("10.3.0.1", 24)],
        ),
        iface(
            link(6, "enp0s1", Some("02:00:00:00:00:06"), Kind::Other),
            &[("10.4.0.1", 24)],
        ),
    ]);
    let nodes = Standard::new().render(&g, &ctx());
    let vifs: Vec<_> = nodes
        .keys()
        .filter(|k| k.starts_with("attr/vif/"))
        .collect();
    assert!(
        vifs.iter().all(|k| k.starts_with("attr/vif/0/")),
        "{vifs:?}"
    );
    assert!(!nodes.keys().any(|k| k.starts_with("xenserver/")));
    for a in [
        "10.1.0.1",
        "10.2.0.1",
        "10.3.0.1",
        "10.4.0.1",
        "127.0.0.1",
        "::1",
    ] {
        assert!(!nodes.values().any(|v| v == a), "{a} published");
    }
}

#[test]
fn a_vif_in_a_bridge_reports_the_bridges_addresses_and_its_own() {
    let mut vif = iface(
        link(2, "eth0", Some("00:16:3e:5e:00:01"), Kind::Vif(0)),
        &[("169.254.1.1", 16)],
    );
    vif.link.master = Some(3);
    let br = iface(
        link(3, "xenbr0", Some("00:16:3e:5e:00:01"), Kind::Bridge),
        &[("10.0.0.9", 24), ("10.0.0.2", 24), ("2001:db8::9", 64)],
    );
    let g = guest(vec![vif, br]);
    assert_eq!(
        net(&Standard::new().render(&g, &ctx())),
        pairs(&[
            ("attr/vif/0/name", "eth0"),
            ("attr/vif/0/mac/0", "00:16:3e:5e:00:01"),
            // The bridge's primary first, then address order.
            ("attr/vif/0/ipv4/0", "10.0.0.2"),
            ("attr/vif/0/ipv4/1", "10.0.0.9"),
            ("attr/vif/0/ipv4/2", "169.254.1.1"),
            ("attr/vif/0/ipv6/0", "2001:db8::9"),
        ])
    );
}

#[test]
fn a_vif_in_a_bond_in_a_bridge_reports_the_outermost_primary_at_slot_zero() {
    let mut vif = iface(
        link(2, "eth0", Some("00:16:3e:5e:00:01"), Kind::Vif(1)),
        &[],
    );
    vif.link.master = Some(3);
    let mut bond = iface(
        link(3, "bond0", Some("00:16:3e:5e:00:01"), Kind::Bond),
        &[("10.0.0.1", 8)],
    );
    bond.link.master = Some(4);
    let mut br = iface(
        link(4, "br0", Some("00:16:3e:5e:00:01"), Kind::Bridge),
        &[("10.9.0.1", 24), ("10.9.0.7", 24)],
    );
    // The kernel's primary on the bridge is the later address.
    br.addresses
        .get_mut(&"10.9.0.1".parse().unwrap())
        .unwrap()
        .flags
        .secondary = true;
    // A confused model (a loop between masters) must not hang.
    br.link.master = Some(3);
    let g = guest(vec![vif, bond, br]);
    let nodes = Standard::new().render(&g, &ctx());
    assert_eq!(
        net(&nodes),
        pairs(&[
            ("attr/vif/1/name", "eth0"),
            ("attr/vif/1/mac/0", "00:16:3e:5e:00:01"),
            ("attr/vif/1/ipv4/0", "10.9.0.7"),
            ("attr/vif/1/ipv4/1", "10.0.0.1"),
            ("attr/vif/1/ipv4/2", "10.9.0.1"),
        ])
    );
    // Without the bridge's addresses, the bond's primary is slot 0.
    let mut g = g;
    g.interfaces.get_mut(&4).unwrap().addresses.clear();
    let nodes = Standard::new().render(&g, &ctx());
    assert_eq!(nodes["attr/vif/1/ipv4/0"], "10.0.0.1");
    assert!(!nodes.contains_key("attr/vif/1/ipv4/1"));
}

#[test]
fn a_master_that_is_not_a_bridge_or_bond_lends_nothing() {
    let mut vif = iface(
        link(2, "eth0", Some("00:16:3e:5e:00:01"), Kind::Vif(0)),
        &[],
    );
    vif.link.master = Some(3);
    let vrf = iface(
        link(3, "vrf0", Some("02:00:00:00:00:03"), Kind::Other),
        &[("10.0.0.1", 8)],
    );
    let nodes = Standard::new().render(&guest(vec![vif, vrf]), &ctx());
    assert!(!nodes.keys().any(|k| k.contains("/ipv4/")));
}

#[test]
fn sriov_vfs_are_matched_by_mac_case_insensitively() {
    let mut c = ctx();
    c.sriov_vfs.insert("7".into(), "02:AB:cd:00:00:07".into());
    c.sriov_vfs.insert("8".into(), "02:ab:cd:00:00:08".into());
    // An id that cannot be a path component is ignored.
    c.sriov_vfs
        .insert("bad id".into(), "02:ab:cd:00:00:09".into());
    let vf = iface(
        link(3, "enp0s4", Some("02:ab:cd:00:00:07"), Kind::Other),
        &[("10.5.0.2", 24), ("2001:db8:5::2", 64)],
    );
    let bad = iface(
        link(5, "enp0s6", Some("02:ab:cd:00:00:09"), Kind::Other),
        &[("10.6.0.2", 24)],
    );
    // A bond over the VF copies its MAC: it is not the VF.
    let bond = iface(
        link(4, "bond1", Some("02:ab:cd:00:00:07"), Kind::Bond),
        &[("10.5.1.2", 24)],
    );
    let g = guest(vec![eth0(), vf, bond, bad]);
    let nodes = Standard::new().render(&g, &c);
    let vf_nodes: Vec<_> = net(&nodes)
        .into_iter()
        .filter(|(k, _)| k.starts_with("xenserver/"))
        .collect();
    assert_eq!(
        vf_nodes,
        pairs(&[
            ("xenserver/attr/net-sriov-vf/7/ipv4/0", "10.5.0.2"),
            ("xenserver/attr/net-sriov-vf/7/ipv6/0", "2001:db8:5::2"),
        ])
    );
    assert!(nodes.keys().all(|k| valid_path(k)));
}

#[test]
fn a_vf_in_a_bond_reports_the_bonds_addresses() {
    let mut c = ctx();
    c.sriov_vfs.insert("2".into(), "02:ab:cd:00:00:07".into());
    let mut vf = iface(
        link(3, "enp0s4", Some("02:ab:cd:00:00:07"), Kind::Other),
        &[],
    );
    vf.link.master = Some(4);
    let bond = iface(
        link(4, "bond1", Some("02:ab:cd:00:00:07"), Kind::Bond),
        &[("10.5.1.2", 24)],
    );
    let nodes = Standard::new().render(&guest(vec![vf, bond]), &c);
    assert_eq!(
        net(&nodes),
        pairs(&[("xenserver/attr/net-sriov-vf/2/ipv4/0", "10.5.1.2")])
    );
}

#[test]
fn tentative_and_dadfailed_addresses_are_absent() {
    let mut i = eth0();
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
        (
            "2001:db8::12",
            AddrFlags {
                temporary: true,
                deprecated: true,
                ..Default::default()
            },
        ),
    ] {
        i.addresses.insert(
            a.parse().unwrap(),
            Address {
                prefix: 64,
                flags: f,
            },
        );
    }
    let nodes = Standard::new().render(&guest(vec![i]), &ctx());
    let v6: Vec<_> = nodes
        .iter()
        .filter(|(k, _)| k.starts_with("attr/vif/0/ipv6/"))
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(v6, ["2001:db8::2", "2001:db8::12", "fe80::216:3eff:fe5e:1"]);
}

#[test]
fn odd_names_and_values_are_sanitized() {
    let mut i = eth0();
    i.link.name = "é\u{1b}[31m\tx y".into();
    let mut g = guest(vec![i]);
    g.os.as_mut().unwrap().name = format!("Debían {}", "z".repeat(3000));
    let nodes = Standard::new().render(&g, &ctx());
    assert_eq!(nodes["attr/vif/0/name"], "??[31m?x y");
    assert_eq!(nodes["data/os_name"].len(), 2048);
    assert!(nodes["data/os_name"].starts_with("Deb?an zzz"));
    for (k, v) in &nodes {
        assert!(valid_path(k), "{k}");
        assert!(valid_value(v), "{k} = {v:?}");
    }
}

#[test]
fn cap_applies_per_vif_and_family() {
    let mut c = ctx();
    c.max_addresses = 2;
    let mut i = eth0();
    for n in 3..8 {
        i.addresses.insert(
            format!("10.0.0.{n}").parse().unwrap(),
            Address {
                prefix: 24,
                flags: AddrFlags::default(),
            },
        );
    }
    let mut s = Standard::new();
    let nodes = s.render(&guest(vec![i]), &c);
    let v4: Vec<_> = nodes.keys().filter(|k| k.contains("/ipv4/")).collect();
    let v6: Vec<_> = nodes.keys().filter(|k| k.contains("/ipv6/")).collect();
    assert_eq!(v4, ["attr/vif/0/ipv4/0", "attr/vif/0/ipv4/1"]);
    assert_eq!(v6.len(), 2);
    assert!(s.slots.capped(&Key(Owner::Vif(0), Family::V4)));
    assert!(!s.slots.capped(&Key(Owner::Vif(0), Family::V6)));
}

#[test]
fn slots_survive_renders_and_a_vif_that_goes_is_removed_whole() {
    let mut s = Standard::new();
    let c = ctx();
    let mut g = guest(vec![eth0()]);
    let first = s.render(&g, &c);
    // A second address then the first goes: the second keeps slot 1.
    let a2: IpAddr = "10.0.0.3".parse().unwrap();
    let eth = g.interfaces.get_mut(&2).unwrap();
    eth.addresses.insert(
        a2,
        Address {
            prefix: 24,
            flags: AddrFlags::default(),
        },
    );
    let second = s.render(&g, &c);
    assert_eq!(second["attr/vif/0/ipv4/1"], "10.0.0.3");
    let eth = g.interfaces.get_mut(&2).unwrap();
    eth.addresses.remove(&"10.0.0.2".parse::<IpAddr>().unwrap());
    let third = s.render(&g, &c);
    // 10.0.0.3 is now the primary and slot 0 is free: it moves there.
    assert_eq!(third["attr/vif/0/ipv4/0"], "10.0.0.3");
    assert!(!third.contains_key("attr/vif/0/ipv4/1"));
    assert_eq!(
        plan(&second, &third, s.owned()),
        vec![
            Op::Remove {
                path: "attr/vif/0/ipv4/1".into()
            },
            Op::Write {
                path: "attr/vif/0/ipv4/0".into(),
                value: "10.0.0.3".into()
            },
        ]
    );
    g.interfaces.clear();
    let gone = s.render(&g, &c);
    assert_eq!(
        plan(&first, &gone, s.owned()),
        vec![Op::Remove {
            path: "attr/vif".into()
        }]
    );
}

#[test]
fn adopt_keeps_slots_of_addresses_still_present_and_ignores_garbage() {
    let left: Nodes = [
        ("attr/vif/0/name", "eth0"),
        ("attr/vif/0/ipv4/0", "10.0.0.2"),
        ("attr/vif/0/ipv4/0/prefix", "24"), // not ours (any more)
        ("attr/vif/0/ipv4/3", "10.0.0.3"),
        ("attr/vif/0/ipv4/1", "10.0.0.77"), // gone
        ("attr/vif/0/ipv4/x", "10.0.0.5"),  // not an integer
        ("attr/vif/0/ipv4/07", "10.0.0.5"), // not canonical
        ("attr/vif/0/ipv4/2", "garbage"),
        ("attr/vif/0/ipv4/4", "2001:db8::2"), // wrong family
        ("attr/vif/0/ipv6/5", "2001:db8::2"),
        ("attr/vif/0/ipv6/6", "2001:DB8::2"), // not canonical (a duplicate)
        ("attr/vif/00/ipv4/0", "10.0.0.2"),
        ("xenserver/attr/net-sriov-vf/7/ipv4/0", "10.5.0.2"),
        ("xenserver/attr/net-sriov-vf/7/ipv4/2", "10.5.0.9"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let mut c = ctx();
    c.sriov_vfs.insert("7".into(), "02:ab:cd:00:00:07".into());
    let mut eth = eth0();
    let secondary = Address {
        prefix: 24,
        flags: AddrFlags {
            secondary: true,
            ..Default::default()
        },
    };
    eth.addresses.insert("10.0.0.3".parse().unwrap(), secondary);
    eth.addresses.insert("10.0.0.5".parse().unwrap(), secondary);
    let mut vf = iface(
        link(3, "enp0s4", Some("02:ab:cd:00:00:07"), Kind::Other),
        &[("10.5.0.2", 24)],
    );
    vf.addresses.insert("10.5.0.9".parse().unwrap(), secondary);
    let mut s = Standard::new();
    s.adopt(&left);
    let nodes = s.render(&guest(vec![eth, vf]), &c);
    assert_eq!(
        net(&nodes),
        pairs(&[
            ("attr/vif/0/name", "eth0"),
            ("attr/vif/0/mac/0", "00:16:3e:5e:00:01"),
            ("attr/vif/0/ipv4/0", "10.0.0.2"),
            ("attr/vif/0/ipv4/1", "10.0.0.5"), // new: lowest free slot
            ("attr/vif/0/ipv4/3", "10.0.0.3"),
            ("attr/vif/0/ipv6/0", "fe80::216:3eff:fe5e:1"),
            ("attr/vif/0/ipv6/5", "2001:db8::2"),
            ("xenserver/attr/net-sriov-vf/7/ipv4/0", "10.5.0.2"),
            ("xenserver/attr/net-sriov-vf/7/ipv4/2", "10.5.0.9"),
        ])
    );
    // Everything else that was left goes, in as few removals as possible.
    let ops = plan(&left, &nodes, s.owned());
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
            "attr/vif/0/ipv4/0/prefix",
            "attr/vif/0/ipv4/07",
            "attr/vif/0/ipv4/2",
            "attr/vif/0/ipv4/4",
            "attr/vif/0/ipv4/x",
            "attr/vif/0/ipv6/6",
            "attr/vif/00",
        ]
    );
}

#[test]
fn owned_excludes_what_dom0_or_the_publisher_owns() {
    let s = Standard::new();
    assert!(!s.owned().contains(&"control/feature-balloon"));
    assert!(!s.owned().iter().any(|o| o.starts_with("control")));
    assert!(!s.owned().contains(&"data/updated"));
    assert!(s.owned().iter().all(|o| valid_path(o)));
}

#[test]
fn the_host_name_is_what_xapi_reads_and_a_watched_node_signals_it() {
    let mut g = guest(vec![]);
    g.host_name = Some(crate::state::HostName {
        host: "vm-42".into(),
        domain: Some("lab.example".into()),
    });
    let nodes = Standard::new().render(&g, &ctx());
    assert_eq!(nodes["data/host_name_dns"], "vm-42");
    assert_eq!(nodes["data/domain"], "lab.example");
    assert_eq!(nodes["attr/xen-guest-agent/host-name"], "vm-42.lab.example");

    // A short name without a known domain: no data/domain at all (XAPI
    // then takes the host name alone).
    g.host_name = Some(crate::state::HostName {
        host: "vm-42".into(),
        domain: None,
    });
    let mut s = Standard::new();
    let nodes = s.render(&g, &ctx());
    assert_eq!(nodes["data/host_name_dns"], "vm-42");
    assert!(!nodes.contains_key("data/domain"));
    assert_eq!(nodes["attr/xen-guest-agent/host-name"], "vm-42");
    // Both are owned: a stale domain left by a previous run is removed.
    assert!(s.owned().contains(&"data/domain"));
    assert!(s.owned().contains(&"attr/xen-guest-agent"));

    // The mode is not in std: dom0 knows the domain's type.
    g.mode = Some(crate::state::GuestMode {
        mode: crate::state::VirtMode::Hvm,
        pv_net: true,
        pv_block: true,
    });
    let with_mode = Standard::new().render(&g, &ctx());
    assert_eq!(with_mode, nodes);
}

/// Only the `data/volumes` nodes.
fn volumes(nodes: &Nodes) -> Vec<(String, String)> {
    nodes
        .iter()
        .filter(|(k, _)| k.starts_with("data/volumes/"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn with_fs(list: &[Filesystem]) -> Guest {
    let mut g = guest(vec![eth0()]);
    g.filesystems = list
        .iter()
        .map(|f| (f.mount_point.clone(), f.clone()))
        .collect();
    g
}

#[test]
fn filesystems_are_volumes_in_the_layout_of_xe_guest_utilities() {
    use super::super::fixtures::filesystem;
    let g = with_fs(&[
        filesystem("/", "/dev/xvda1", 10_000, 4_000),
        filesystem("/boot", "/dev/xvda2", 500, 400),
    ]);
    assert_eq!(
        volumes(&Standard::new().render(&g, &ctx())),
        pairs(&[
            ("data/volumes/0/name", "/dev/xvda1"),
            ("data/volumes/0/filesystem", "ext4"),
            ("data/volumes/0/size", "10240000"),
            ("data/volumes/0/free", "4096000"),
            ("data/volumes/0/mount_points/0", "/"),
            ("data/volumes/1/name", "/dev/xvda2"),
            ("data/volumes/1/filesystem", "ext4"),
            ("data/volumes/1/size", "512000"),
            ("data/volumes/1/free", "409600"),
            ("data/volumes/1/mount_points/0", "/boot"),
        ])
    );
}

#[test]
fn volume_slots_are_stable_reused_capped_and_adopted() {
    use super::super::fixtures::filesystem;
    let (root, boot, data, srv) = (
        filesystem("/", "/dev/xvda1", 100, 50),
        filesystem("/boot", "/dev/xvda2", 100, 50),
        filesystem("/data", "/dev/xvdb", 100, 50),
        filesystem("/srv", "/dev/xvdc", 100, 50),
    );
    let slot_of = |nodes: &Nodes, at: &str| {
        nodes
            .iter()
            .find(|(k, v)| k.ends_with("/mount_points/0") && v.as_str() == at)
            .map(|(k, _)| k.split('/').nth(2).unwrap().to_string())
    };
    let mut s = Standard::new();
    let mut c = ctx();
    c.max_filesystems = 3;
    let n = s.render(&with_fs(&[root.clone(), boot.clone(), data.clone()]), &c);
    assert_eq!(slot_of(&n, "/data").as_deref(), Some("2"));
    // /boot unmounted: /data keeps slot 2; /srv takes the free slot 1.
    let n = s.render(&with_fs(&[root.clone(), data.clone(), srv.clone()]), &c);
    assert_eq!(slot_of(&n, "/data").as_deref(), Some("2"));
    assert_eq!(slot_of(&n, "/srv").as_deref(), Some("1"));
    // Over the cap: the newcomer is skipped, nothing moves.
    let n = s.render(
        &with_fs(&[root.clone(), boot.clone(), data.clone(), srv.clone()]),
        &c,
    );
    assert_eq!(slot_of(&n, "/boot"), None);
    assert_eq!(slot_of(&n, "/srv").as_deref(), Some("1"));
    assert_eq!(volumes(&n).len(), 15);

    // A restart adopts what the previous run wrote; garbage is ignored.
    let mut existing = n.clone();
    existing.insert("data/volumes/07/mount_points/0".into(), "/boot".into());
    let mut again = Standard::new();
    again.adopt(&existing);
    let n2 = again.render(&with_fs(&[srv.clone(), root.clone()]), &c);
    assert_eq!(slot_of(&n2, "/srv").as_deref(), Some("1"));
    assert_eq!(slot_of(&n2, "/").as_deref(), Some("0"));
}

#[test]
fn no_filesystems_no_volumes_node() {
    let nodes = Standard::new().render(&guest(vec![eth0()]), &ctx());
    assert!(volumes(&nodes).is_empty());
    assert!(Standard::new().owned().contains(&"data/volumes"));
}
