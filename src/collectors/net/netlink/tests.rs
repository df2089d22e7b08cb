use super::wire::tests::{ifaddrmsg, newlink, Builder};
use super::*;
use crate::state::{AddrFlags, Address};

fn links() -> Links {
    Links {
        sysfs: "/nonexistent".into(),
        known: HashMap::new(),
    }
}

fn run(datagram: &[u8], links: &mut Links, dump: Option<&mut Dump>) -> Vec<Event> {
    let mut pending = VecDeque::new();
    process(datagram, links, &mut pending, dump).unwrap();
    pending.into()
}

#[test]
fn notifications_become_events() {
    let mut l = links();
    let mut buf = newlink(4, b"eth\xff0", Some(3), b"veth");
    buf.extend(
        Builder::default()
            .begin(wire::RTM_NEWADDR, 12, 999, &ifaddrmsg(2, 24, 0, 4))
            .attr(2, &[192, 0, 2, 1])
            .end()
            .0,
    );
    buf.extend(
        Builder::default()
            .begin(wire::RTM_DELADDR, 0, 0, &ifaddrmsg(10, 64, 0, 4))
            .attr(
                1,
                &"2001:db8::1"
                    .parse::<std::net::Ipv6Addr>()
                    .unwrap()
                    .octets(),
            )
            .end()
            .0,
    );
    buf.extend(
        Builder::default()
            .begin(wire::RTM_DELLINK, 0, 0, &wire::tests::ifinfomsg(0, 4, 0))
            .end()
            .0,
    );
    let events = run(&buf, &mut l, None);
    assert_eq!(
        events,
        vec![
            Event::LinkUpdated(Link {
                index: 4,
                name: "eth\u{fffd}0".into(),
                mac: Some("00:16:3e:aa:0b:01".into()),
                kind: Kind::Other,
                master: Some(3),
                up: true,
            }),
            Event::AddressUpdated {
                index: 4,
                addr: "192.0.2.1".parse().unwrap(),
                info: Address {
                    prefix: 24,
                    flags: AddrFlags::default()
                },
            },
            Event::AddressRemoved {
                index: 4,
                addr: "2001:db8::1".parse().unwrap(),
            },
            Event::LinkRemoved(4),
        ]
    );
    assert!(l.known.is_empty(), "a removed link is forgotten");
}

#[test]
fn kinds_come_from_the_kernel_and_are_cached() {
    let mut l = links();
    let e = run(&newlink(5, b"br0", None, b"bridge"), &mut l, None);
    assert!(matches!(
        &e[..],
        [Event::LinkUpdated(Link {
            kind: Kind::Bridge,
            ..
        })]
    ));
    let e = run(&newlink(6, b"bond0", None, b"bond"), &mut l, None);
    assert!(matches!(
        &e[..],
        [Event::LinkUpdated(Link {
            kind: Kind::Bond,
            ..
        })]
    ));
    // Cached by index while the name stays: a stale kind proves the
    // cache was used.
    l.known.get_mut(&5).unwrap().kind = Kind::Vif(9);
    let e = run(&newlink(5, b"br0", None, b"bridge"), &mut l, None);
    assert!(matches!(
        &e[..],
        [Event::LinkUpdated(Link {
            kind: Kind::Vif(9),
            ..
        })]
    ));
    // A rename identifies again.
    let e = run(&newlink(5, b"lan", None, b"bridge"), &mut l, None);
    assert!(matches!(
        &e[..],
        [Event::LinkUpdated(Link {
            kind: Kind::Bridge,
            ..
        })]
    ));
}

#[test]
fn sysfs_is_read_only_for_vifs() {
    let root = std::env::temp_dir().join(format!("xga-netlink-kind-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let net = root.join("class/net");
    // A fake VIF (a veth for the kernel), and a veth whose sysfs entry
    // would say "bridge" if it were looked at.
    let device = net.join("eth0/device");
    std::fs::create_dir_all(&device).unwrap();
    std::fs::write(device.join("devtype"), "vif\n").unwrap();
    std::fs::write(device.join("nodename"), "device/vif/4\n").unwrap();
    std::fs::create_dir_all(net.join("v1/bridge")).unwrap();
    let mut l = Links {
        sysfs: root.clone(),
        known: HashMap::new(),
    };
    let kind = |l: &mut Links, index, name: &[u8], info_kind: &[u8]| match &run(
        &newlink(index, name, None, info_kind),
        l,
        None,
    )[..]
    {
        [Event::LinkUpdated(link)] => link.kind,
        e => panic!("{e:?}"),
    };
    assert_eq!(kind(&mut l, 2, b"eth0", b"veth"), Kind::Vif(4));
    assert_eq!(kind(&mut l, 3, b"v1", b"veth"), Kind::Other);
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn a_dump_is_identified_once_complete_with_one_list_of_virtual_interfaces() {
    let root = std::env::temp_dir().join(format!("xga-netlink-dump-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let vif = |ifname: &str, id: u32| {
        let device = root.join("class/net").join(ifname).join("device");
        std::fs::create_dir_all(&device).unwrap();
        std::fs::write(device.join("devtype"), "vif\n").unwrap();
        std::fs::write(device.join("nodename"), format!("device/vif/{id}\n")).unwrap();
    };
    vif("eth0", 4);
    // Listed as virtual: never probed (this fake device, which a real
    // sysfs would not have, proves it).
    vif("br0", 5);
    std::fs::create_dir_all(root.join("devices/virtual/net/br0")).unwrap();
    let mut l = Links {
        sysfs: root.clone(),
        known: HashMap::new(),
    };
    let reply = |index, name: &[u8], kind: &[u8]| {
        let mut m = newlink(index, name, None, kind);
        m[8..12].copy_from_slice(&7u32.to_ne_bytes());
        m[12..16].copy_from_slice(&1234u32.to_ne_bytes());
        m
    };
    let mut buf = reply(2, b"eth0", b"veth");
    buf.extend(reply(3, b"br0", b"bridge"));
    // Enough virtual links for the list to be read.
    for i in 0..LIST_FROM as u32 {
        let name = format!("v{i}");
        std::fs::create_dir_all(root.join("devices/virtual/net").join(&name)).unwrap();
        buf.extend(reply(10 + i, name.as_bytes(), b"veth"));
    }
    let mut d = Dump {
        seq: 7,
        port: 1234,
        ..Default::default()
    };
    run(&buf, &mut l, Some(&mut d));
    assert_eq!(
        d.unidentified.len(),
        2 + LIST_FROM,
        "identified before the end"
    );
    l.identify_dumped(&mut d);
    let kinds: Vec<_> = d.interfaces.values().take(2).map(|i| i.link.kind).collect();
    assert_eq!(kinds, [Kind::Vif(4), Kind::Bridge]);
    assert!(d.unidentified.is_empty());
    // Known now: the next dump identifies nothing.
    let buf = reply(2, b"eth0", b"veth");
    let mut d = Dump {
        seq: 7,
        port: 1234,
        ..Default::default()
    };
    run(&buf, &mut l, Some(&mut d));
    assert!(d.unidentified.is_empty());
    assert_eq!(d.interfaces[&2].link.kind, Kind::Vif(4));
    // A few new links are probed without the list: sysfs (this fake
    // one) says what they are.
    l.known.clear();
    let mut buf = reply(2, b"eth0", b"veth");
    buf.extend(reply(3, b"br0", b"bridge"));
    let mut d = Dump {
        seq: 7,
        port: 1234,
        ..Default::default()
    };
    run(&buf, &mut l, Some(&mut d));
    l.identify_dumped(&mut d);
    let kinds: Vec<_> = d.interfaces.values().map(|i| i.link.kind).collect();
    assert_eq!(kinds, [Kind::Vif(4), Kind::Vif(5)]);
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn dump_replies_fill_the_snapshot_and_the_rest_waits() {
    let mut l = links();
    let mut d = Dump {
        seq: 7,
        port: 1234,
        ..Default::default()
    };
    // A reply, a notification from `ip` that happens to use our
    // sequence number, then the end of the dump.
    let mut reply = newlink(2, b"eth0", None, b"");
    reply[8..12].copy_from_slice(&7u32.to_ne_bytes());
    reply[12..16].copy_from_slice(&1234u32.to_ne_bytes());
    let mut buf = reply;
    let mut notif = newlink(3, b"eth1", None, b"");
    notif[8..12].copy_from_slice(&7u32.to_ne_bytes());
    notif[12..16].copy_from_slice(&4321u32.to_ne_bytes());
    buf.extend(notif);
    buf.extend(
        Builder::default()
            .begin(wire::NLMSG_DONE, 7, 1234, &[0; 4])
            .end()
            .0,
    );
    let events = run(&buf, &mut l, Some(&mut d));
    assert!(d.done && d.error.is_none());
    assert_eq!(d.interfaces.keys().copied().collect::<Vec<_>>(), vec![2]);
    assert!(matches!(
        &events[..],
        [Event::LinkUpdated(Link { index: 3, .. })]
    ));

    let mut d = Dump {
        seq: 8,
        port: 1234,
        ..Default::default()
    };
    let err = Builder::default()
        .begin(wire::NLMSG_ERROR, 8, 1234, &(-libc::EBUSY).to_ne_bytes())
        .end()
        .0;
    run(&err, &mut l, Some(&mut d));
    assert_eq!((d.done, d.error), (true, Some(-libc::EBUSY)));
}

#[test]
fn a_dump_that_ends_in_error_or_interrupted_is_not_complete() {
    // NLMSG_DONE carries the dump's status: negative means it broke
    // off and what came before is partial.
    let mut l = links();
    let mut d = Dump {
        seq: 9,
        port: 1234,
        ..Default::default()
    };
    let done = Builder::default()
        .begin(wire::NLMSG_DONE, 9, 1234, &(-libc::EMSGSIZE).to_ne_bytes())
        .end()
        .0;
    run(&done, &mut l, Some(&mut d));
    assert_eq!((d.done, d.error), (true, Some(-libc::EMSGSIZE)));

    // NLM_F_DUMP_INTR on a reply: the table changed during the dump,
    // which may have skipped an entry that never changed (so no
    // notification will bring it).
    let mut d = Dump {
        seq: 10,
        port: 1234,
        ..Default::default()
    };
    let mut reply = newlink(2, b"eth0", None, b"");
    reply[6..8].copy_from_slice(&wire::NLM_F_DUMP_INTR.to_ne_bytes());
    reply[8..12].copy_from_slice(&10u32.to_ne_bytes());
    reply[12..16].copy_from_slice(&1234u32.to_ne_bytes());
    reply.extend(
        Builder::default()
            .begin(wire::NLMSG_DONE, 10, 1234, &[0; 4])
            .end()
            .0,
    );
    run(&reply, &mut l, Some(&mut d));
    assert!(d.done);
    assert!(d.error.is_some(), "an interrupted dump counts as failed");
}

#[test]
fn a_broken_datagram_is_a_loss_of_sync() {
    let mut buf = newlink(2, b"eth0", None, b"");
    buf[0] = 0xff;
    let mut pending = VecDeque::new();
    let r = process(&buf, &mut links(), &mut pending, None);
    assert!(matches!(r, Err(Trouble::LostSync(_))));
}

#[test]
fn macs() {
    assert_eq!(mac(&[0, 0x16, 0x3e, 0xab, 0xcd, 0xef]), "00:16:3e:ab:cd:ef");
    assert_eq!(mac(&[10, 0, 0, 1]), "0a:00:00:01");
    assert_eq!(mac(&[0xff, 0x80, 0x7f]), "ff:80:7f");
    assert_eq!(mac(&[]), "");
}
