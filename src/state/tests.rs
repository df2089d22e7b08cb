use super::*;

/// The changes of the next change set (none when there is none).
fn changes(s: &mut State) -> Vec<Change> {
    s.take_changes().map(|c| c.changes).unwrap_or_default()
}

fn link(index: u32, name: &str) -> Link {
    Link {
        index,
        name: name.into(),
        mac: Some("00:16:3e:00:00:01".into()),
        kind: Kind::Vif(0),
        master: None,
        up: true,
    }
}

fn addr(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn info(prefix: u8) -> Address {
    Address {
        prefix,
        flags: AddrFlags::default(),
    }
}

fn add(index: u32, a: &str) -> Event {
    Event::AddressUpdated {
        index,
        addr: addr(a),
        info: info(24),
    }
}

#[test]
fn nothing_applied_nothing_changed() {
    let mut s = State::new();
    assert!(!s.is_dirty());
    assert!(changes(&mut s).is_empty());
}

#[test]
fn first_publication_reports_everything_in_reading_order() {
    let mut s = State::new();
    s.apply(Event::Kernel(KernelInfo {
        sysname: "Linux".into(),
        ..Default::default()
    }));
    s.apply(Event::LinkUpdated(link(2, "eth0")));
    s.apply(add(2, "10.0.0.2"));
    let c = changes(&mut s);
    assert_eq!(c.len(), 3);
    assert!(matches!(c[0], Change::Kernel(_)));
    assert_eq!(c[1], Change::LinkAdded(link(2, "eth0")));
    assert!(matches!(c[2], Change::AddressAdded { addr: a, .. } if a == addr("10.0.0.2")));
    assert!(changes(&mut s).is_empty(), "published state is now current");
}

#[test]
fn unchanged_values_are_not_reported() {
    let mut s = State::new();
    let m = MemoryInfo {
        total_kib: 100,
        available_kib: 50,
    };
    s.apply(Event::Memory(m));
    assert_eq!(changes(&mut s), vec![Change::Memory(m)]);
    s.apply(Event::Memory(m));
    assert!(!s.is_dirty(), "a sample like the last one touches nothing");
    assert!(changes(&mut s).is_empty());
}

#[test]
fn add_then_remove_between_publications_cancels_out() {
    let mut s = State::new();
    s.apply(Event::LinkUpdated(link(2, "eth0")));
    changes(&mut s);
    s.apply(add(2, "10.0.0.3"));
    s.apply(Event::AddressRemoved {
        index: 2,
        addr: addr("10.0.0.3"),
    });
    assert!(changes(&mut s).is_empty());
}

#[test]
fn link_removal_reports_addresses_first_then_link() {
    let mut s = State::new();
    s.apply(Event::LinkUpdated(link(2, "eth0")));
    s.apply(add(2, "10.0.0.2"));
    s.apply(add(2, "fe80::1"));
    changes(&mut s);
    s.apply(Event::LinkRemoved(2));
    let c = changes(&mut s);
    assert_eq!(c.len(), 3);
    assert!(matches!(c[0], Change::AddressRemoved { .. }));
    assert!(matches!(c[1], Change::AddressRemoved { .. }));
    assert_eq!(c[2], Change::LinkRemoved(link(2, "eth0")));
    assert!(s.current().interfaces.is_empty());
    assert!(changes(&mut s).is_empty());
}

#[test]
fn a_change_set_of_every_kind_is_in_reading_order_without_repeats() {
    let mut s = State::new();
    s.apply(Event::LinkUpdated(link(2, "eth0")));
    s.apply(add(2, "10.0.0.2"));
    s.apply(Event::LinkUpdated(link(3, "eth1")));
    s.apply(add(3, "10.0.0.3"));
    changes(&mut s);

    let m = MemoryInfo {
        total_kib: 2,
        available_kib: 1,
    };
    s.apply(Event::LinkRemoved(3));
    s.apply(add(4, "10.0.0.4")); // before its link: ignored
    s.apply(Event::LinkUpdated(link(4, "eth2")));
    s.apply(add(4, "10.0.0.4"));
    s.apply(add(2, "10.0.0.5"));
    s.apply(add(2, "10.0.0.5"));
    s.apply(Event::Memory(m));
    s.apply(Event::AddressRemoved {
        index: 2,
        addr: addr("10.0.0.2"),
    });
    s.apply(Event::Memory(m));
    let c: Vec<String> = changes(&mut s)
        .iter()
        .map(|c| match c {
            Change::Memory(_) => "memory".into(),
            Change::LinkAdded(l) => format!("+{}", l.index),
            Change::LinkRemoved(l) => format!("-{}", l.index),
            Change::AddressAdded { link, addr, .. } => format!("+{}/{addr}", link.index),
            Change::AddressRemoved { link, addr, .. } => format!("-{}/{addr}", link.index),
            c => panic!("{c:?}"),
        })
        .collect();
    assert_eq!(
        c,
        [
            "memory",
            "+4",
            "-2/10.0.0.2",
            "-3/10.0.0.3",
            "+2/10.0.0.5",
            "+4/10.0.0.4",
            "-3"
        ]
    );
    assert!(!s.is_dirty());
    assert!(changes(&mut s).is_empty());
}

#[test]
fn rename_is_a_link_change_keeping_addresses() {
    let mut s = State::new();
    s.apply(Event::LinkUpdated(link(2, "eth0")));
    s.apply(add(2, "10.0.0.2"));
    changes(&mut s);
    s.apply(Event::LinkUpdated(link(2, "lan0")));
    assert_eq!(
        changes(&mut s),
        vec![Change::LinkChanged {
            old: link(2, "eth0"),
            new: link(2, "lan0")
        }]
    );
    assert_eq!(s.current().interfaces[&2].addresses.len(), 1);
}

#[test]
fn address_flags_change_is_reported() {
    let mut s = State::new();
    s.apply(Event::LinkUpdated(link(2, "eth0")));
    let tentative = Address {
        prefix: 64,
        flags: AddrFlags {
            tentative: true,
            ..Default::default()
        },
    };
    s.apply(Event::AddressUpdated {
        index: 2,
        addr: addr("2001:db8::1"),
        info: tentative,
    });
    changes(&mut s);
    s.apply(Event::AddressUpdated {
        index: 2,
        addr: addr("2001:db8::1"),
        info: info(64),
    });
    let c = changes(&mut s);
    assert!(
        matches!(&c[..], [Change::AddressChanged { old, new, .. }] if old.flags.tentative && !new.flags.tentative)
    );
}

#[test]
fn address_for_unknown_link_is_ignored() {
    let mut s = State::new();
    s.apply(add(9, "10.0.0.9"));
    assert!(changes(&mut s).is_empty());
    assert!(s.current().interfaces.is_empty());
}

#[test]
fn full_replacement_is_diffed_against_what_was_published() {
    let mut s = State::new();
    s.apply(Event::LinkUpdated(link(2, "eth0")));
    s.apply(add(2, "10.0.0.2"));
    s.apply(add(2, "10.0.0.3"));
    s.apply(Event::LinkUpdated(link(3, "eth1")));
    changes(&mut s);

    // After an overflow: eth1 is gone, 10.0.0.3 went, 10.0.0.4 came.
    let mut eth0 = Interface::new(link(2, "eth0"));
    eth0.addresses.insert(addr("10.0.0.2"), info(24));
    eth0.addresses.insert(addr("10.0.0.4"), info(24));
    s.apply(Event::Interfaces(vec![eth0.clone()]));
    let c = changes(&mut s);
    assert_eq!(c.len(), 3, "{c:?}");
    assert!(matches!(&c[0], Change::AddressRemoved { addr: a, .. } if *a == addr("10.0.0.3")));
    assert!(matches!(&c[1], Change::AddressAdded { addr: a, .. } if *a == addr("10.0.0.4")));
    assert_eq!(c[2], Change::LinkRemoved(link(3, "eth1")));
    assert_eq!(s.current().interfaces[&2], eth0);
    // The same replacement again changes nothing.
    s.apply(Event::Interfaces(vec![eth0]));
    assert!(changes(&mut s).is_empty());
}

#[test]
fn primary_ipv4_skips_secondaries() {
    let mut i = Interface::new(link(2, "eth0"));
    assert_eq!(i.primary_ipv4(), None);
    let secondary = Address {
        prefix: 24,
        flags: AddrFlags {
            secondary: true,
            ..Default::default()
        },
    };
    i.addresses.insert(addr("10.0.0.1"), secondary);
    i.addresses.insert(addr("10.0.0.7"), info(24));
    i.addresses.insert(addr("::1"), info(128));
    assert_eq!(i.primary_ipv4(), Some(addr("10.0.0.7")));
    i.addresses.remove(&addr("10.0.0.7"));
    assert_eq!(i.primary_ipv4(), Some(addr("10.0.0.1")));
}

#[test]
fn the_snapshot_is_shared_and_copied_only_while_a_publisher_holds_it() {
    let mut s = State::new();
    s.apply(Event::LinkUpdated(link(2, "eth0")));
    let held = s.take_changes().expect("a change set").guest;
    s.apply(add(2, "10.0.0.2"));
    let second = s.take_changes().expect("a change set").guest;
    assert!(!Arc::ptr_eq(&held, &second), "copied on write while held");
    assert!(
        held.interfaces[&2].addresses.is_empty(),
        "the snapshot a publisher holds never changes"
    );
    drop(held);
    let at = Arc::as_ptr(&second);
    drop(second);
    s.apply(add(2, "10.0.0.3"));
    let third = s.take_changes().expect("a change set").guest;
    assert_eq!(
        Arc::as_ptr(&third),
        at,
        "changed in place when nobody holds it"
    );
    // An event that changes nothing copies nothing, even while held.
    s.apply(add(2, "10.0.0.3"));
    assert!(!s.is_dirty());
    assert!(Arc::ptr_eq(
        &third,
        &s.take_changes().map_or(third.clone(), |c| c.guest)
    ));
}

#[test]
fn host_name_and_mode_are_reported_once_and_on_change() {
    let mut s = State::new();
    let short = HostName {
        host: "vm-42".into(),
        domain: None,
    };
    let mode = GuestMode {
        mode: VirtMode::Hvm,
        pv_net: true,
        pv_block: false,
    };
    s.apply(Event::HostName(short.clone()));
    s.apply(Event::Mode(mode));
    assert_eq!(
        changes(&mut s),
        vec![Change::HostName(short.clone()), Change::Mode(mode)]
    );
    s.apply(Event::HostName(short.clone()));
    s.apply(Event::Mode(mode));
    assert!(!s.is_dirty(), "the same host name and mode touch nothing");
    let fqdn = HostName {
        host: "vm-42".into(),
        domain: Some("lab.example".into()),
    };
    s.apply(Event::HostName(fqdn.clone()));
    assert_eq!(changes(&mut s), vec![Change::HostName(fqdn.clone())]);
    assert_eq!(fqdn.fqdn(), "vm-42.lab.example");
    assert_eq!(short.fqdn(), "vm-42");
}

fn fs(at: &str, available: u64) -> Filesystem {
    Filesystem {
        mount_point: at.into(),
        fstype: "ext4".into(),
        device: "/dev/xvda1".into(),
        total_bytes: 100,
        used_bytes: 100 - available,
        available_bytes: available,
    }
}

#[test]
fn filesystems_are_diffed_by_mount_point() {
    let mut s = State::new();
    s.apply(Event::Filesystems(vec![fs("/", 50), fs("/boot", 10)]));
    assert_eq!(
        changes(&mut s),
        [
            Change::FilesystemAdded(fs("/", 50)),
            Change::FilesystemAdded(fs("/boot", 10))
        ]
    );
    // The same list again: nothing, and no copy.
    s.apply(Event::Filesystems(vec![fs("/boot", 10), fs("/", 50)]));
    assert!(!s.is_dirty());
    s.apply(Event::Filesystems(vec![fs("/", 40), fs("/data", 1)]));
    assert_eq!(
        changes(&mut s),
        [
            Change::FilesystemChanged {
                old: fs("/", 50),
                new: fs("/", 40)
            },
            Change::FilesystemRemoved(fs("/boot", 10)),
            Change::FilesystemAdded(fs("/data", 1)),
        ]
    );
    // Mounted and unmounted between two publications: nothing.
    s.apply(Event::Filesystems(vec![
        fs("/", 40),
        fs("/data", 1),
        fs("/x", 1),
    ]));
    s.apply(Event::Filesystems(vec![fs("/", 40), fs("/data", 1)]));
    assert!(s.take_changes().is_none());
}
