use super::*;

/// A request from `leaf=value` pairs.
fn raw(pairs: &[(&str, &str)]) -> Raw {
    let mut r = Raw::default();
    for (leaf, value) in pairs {
        let i = LEAVES.iter().position(|l| l == leaf).expect("a leaf");
        r.values[i] = Some(value.to_string());
    }
    r
}

fn refused(pairs: &[(&str, &str)]) -> String {
    match parse(&raw(pairs)) {
        Err(Invalid(why)) => why,
        Ok(s) => panic!("{pairs:?} parsed as {s:?}"),
    }
}

const MAC: (&str, &str) = ("mac", "00:16:3E:5E:00:02");

#[test]
fn a_static_ipv4_request_parses_with_its_mac_in_lower_case() {
    let s = parse(&raw(&[
        MAC,
        ("enabled", "1"),
        ("address", "192.0.2.10/24"),
        ("gateway", "192.0.2.1"),
        ("enabled6", "0"),
    ]))
    .unwrap();
    assert_eq!(s.mac, "00:16:3e:5e:00:02");
    assert_eq!(
        s.wanted,
        Wanted {
            v4: Some(V4::Static(Static {
                address: "192.0.2.10".parse().unwrap(),
                prefix: 24,
                gateway: Some("192.0.2.1".parse().unwrap()),
            })),
            v6: None,
        }
    );
    assert_eq!(
        describe(&s.wanted),
        "ipv4 static 192.0.2.10/24 via 192.0.2.1"
    );
}

#[test]
fn dynamic_modes_and_ipv6_parse() {
    let s = parse(&raw(&[MAC, ("enabled", "2"), ("enabled6", "2")])).unwrap();
    assert_eq!(s.wanted.v4, Some(V4::Dhcp));
    assert_eq!(s.wanted.v6, Some(V6::Autoconf));
    let s = parse(&raw(&[
        MAC,
        ("enabled6", "1"),
        ("address6", "2001:db8::10/64"),
        ("gateway6", "fe80::1"),
    ]))
    .unwrap();
    assert_eq!(s.wanted.v4, None);
    assert_eq!(
        describe(&s.wanted),
        "ipv6 static 2001:db8::10/64 via fe80::1"
    );
    // An empty gateway is "no gateway" (XAPI's configure_ipv4 takes "").
    let s = parse(&raw(&[
        MAC,
        ("enabled", "1"),
        ("address", "10.0.0.5/8"),
        ("gateway", ""),
    ]))
    .unwrap();
    assert_eq!(describe(&s.wanted), "ipv4 static 10.0.0.5/8 (no gateway)");
}

#[test]
fn only_requests_that_ask_for_something_are_pending() {
    assert!(!raw(&[MAC, ("enabled", "0"), ("enabled6", "0")]).pending());
    assert!(!raw(&[MAC, ("address", "192.0.2.10/24")]).pending());
    assert!(raw(&[MAC, ("enabled6", "2")]).pending());
    assert!(raw(&[MAC, ("enabled", "x")]).pending());
}

#[test]
fn every_malformed_field_is_a_refusal_saying_which() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("enabled", "1"), ("address", "192.0.2.10/24")],
            "mac is missing",
        ),
        (&[("mac", "00:16:3e:5e:00"), ("enabled", "2")], "not a MAC"),
        (
            &[("mac", "00:16:3e:5e:00:0g"), ("enabled", "2")],
            "not a MAC",
        ),
        (&[("mac", "0016.3e5e.0002"), ("enabled", "2")], "not a MAC"),
        (&[MAC, ("enabled", "3")], "enabled is \"3\""),
        (&[MAC, ("enabled", "01")], "enabled is \"01\""),
        (&[MAC, ("enabled", "1")], "address is missing"),
        (
            &[MAC, ("enabled", "1"), ("address", "192.0.2.10")],
            "no prefix length",
        ),
        (
            &[MAC, ("enabled", "1"), ("address", "192.0.2.10/33")],
            "1 to 32",
        ),
        (
            &[MAC, ("enabled", "1"), ("address", "192.0.2.10/0")],
            "1 to 32",
        ),
        (
            &[MAC, ("enabled", "1"), ("address", "192.0.2.10/+8")],
            "1 to 32",
        ),
        (
            &[MAC, ("enabled", "1"), ("address", "192.0.2.10/99999999999")],
            "1 to 32",
        ),
        (
            &[MAC, ("enabled", "1"), ("address", "192.0.2.300/24")],
            "not an address",
        ),
        (
            &[MAC, ("enabled", "1"), ("address", "2001:db8::1/64")],
            "not an address",
        ),
        (
            &[MAC, ("enabled6", "1"), ("address6", "2001:db8::1/129")],
            "1 to 128",
        ),
        (
            &[MAC, ("enabled", "1"), ("address", "0.0.0.0/8")],
            "unspecified",
        ),
        (
            &[MAC, ("enabled", "1"), ("address", "127.0.0.2/8")],
            "loopback",
        ),
        (
            &[MAC, ("enabled", "1"), ("address", "224.0.0.5/4")],
            "multicast",
        ),
        (
            &[MAC, ("enabled", "1"), ("address", "255.255.255.255/32")],
            "broadcast",
        ),
        (
            &[
                MAC,
                ("enabled", "1"),
                ("address", "192.0.2.10/24"),
                ("gateway", "2001:db8::1"),
            ],
            "not an address of the address's family",
        ),
        (
            &[
                MAC,
                ("enabled6", "1"),
                ("address6", "2001:db8::10/64"),
                ("gateway6", "192.0.2.1"),
            ],
            "not an address of the address's family",
        ),
        (
            &[
                MAC,
                ("enabled", "1"),
                ("address", "192.0.2.10/24"),
                ("gateway", "198.51.100.1"),
            ],
            "not on the link",
        ),
        (
            &[
                MAC,
                ("enabled", "1"),
                ("address", "192.0.2.10/24"),
                ("gateway", "192.0.2.10"),
            ],
            "the address itself",
        ),
        (
            &[MAC, ("enabled", "2"), ("address", "192.0.2.10/24")],
            "address is set but enabled is not 1",
        ),
        (
            &[MAC, ("enabled6", "0"), ("gateway6", "fe80::1")],
            "gateway6 is set but enabled6 is not 1",
        ),
        (&[MAC, ("enabled", " 1")], "white space"),
        (&[MAC, ("enabled", "1\n")], "white space"),
        (
            &[MAC, ("enabled", "1"), ("address", "192.0.2.10/24\u{7}")],
            "control characters",
        ),
    ];
    for (pairs, expected) in cases {
        let why = refused(pairs);
        assert!(
            why.contains(expected),
            "{pairs:?}: {why:?} does not say {expected:?}"
        );
    }
}

#[test]
fn huge_values_are_refused_without_being_parsed() {
    let huge = "1".repeat(100_000);
    let why = refused(&[MAC, ("enabled", "1"), ("address", &huge)]);
    assert_eq!(why, "address is too long (100000 bytes)");
    let why = refused(&[MAC, ("enabled", "2"), ("gateway6", &huge)]);
    assert!(why.starts_with("gateway6 is too long"), "{why}");
}

#[test]
fn gateways_on_the_link_pass_including_ipv6_link_local_ones() {
    for (cidr, gw) in [
        ("10.1.2.3/8", "10.255.0.1"),
        ("192.0.2.10/31", "192.0.2.11"),
        ("2001:db8:1::10/48", "2001:db8:1:ffff::1"),
        ("2001:db8::10/128", "fe80::1"),
    ] {
        let (enabled, address, gateway) = if cidr.contains(':') {
            ("enabled6", "address6", "gateway6")
        } else {
            ("enabled", "address", "gateway")
        };
        let r = raw(&[MAC, (enabled, "1"), (address, cidr), (gateway, gw)]);
        assert!(parse(&r).is_ok(), "{cidr} via {gw}: {:?}", parse(&r));
    }
}

fn perm(domid: u32, read: bool, write: bool) -> Perm {
    Perm { domid, read, write }
}

#[test]
fn requests_writable_by_a_third_domain_are_not_trusted() {
    let own = 7;
    // xenopsd's rwperm_for_guest: owned by the guest, no access for others.
    assert!(!writable_by_others(&[perm(own, false, false)], own));
    // dom0-owned, readable by the guest; the guest may write too.
    assert!(!writable_by_others(
        &[perm(0, false, false), perm(own, true, true)],
        own
    ));
    // Everyone may write (the default of the first entry).
    assert!(writable_by_others(&[perm(own, false, true)], own));
    assert!(writable_by_others(&[perm(0, true, true)], own));
    // Owned by another guest.
    assert!(writable_by_others(&[perm(9, false, false)], own));
    // Another guest listed with write access (read-only is harmless).
    assert!(writable_by_others(
        &[perm(own, false, false), perm(9, false, true)],
        own
    ));
    assert!(!writable_by_others(
        &[perm(own, false, false), perm(9, true, false)],
        own
    ));
    // Unknown permissions.
    assert!(writable_by_others(&[], own));
}
