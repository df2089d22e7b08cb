use super::*;
use crate::netconf::Static;

/// nova's example entry (its tests' fixture), the MAC as Rackspace wrote it.
const NOVA: &str = r#"{"label": "public", "mac": "BC:76:4E:20:75:72",
  "gateway": "104.130.4.1", "broadcast": "104.130.4.255",
  "ips": [{"ip": "104.130.4.72", "netmask": "255.255.255.0", "enabled": "1", "gateway": "104.130.4.1"}],
  "gateway_v6": "fe80::def",
  "ip6s": [{"ip": "2001:4802:7805:104:be76:4eff:fe20:7572", "netmask": 64, "enabled": "1", "gateway": "fe80::def"}],
  "routes": [{"route": "10.208.0.0", "netmask": "255.240.0.0", "gateway": "10.208.224.1"}],
  "dns": ["69.20.0.164", "69.20.0.196"]}"#;

#[test]
fn novas_entry_is_both_families_with_routes_and_dns_left_out() {
    let i = parse("bc764e207572", NOVA).unwrap();
    assert_eq!(i.setting.mac, "bc:76:4e:20:75:72");
    assert_eq!(
        i.setting.wanted.v4,
        Some(V4::Static(Static {
            address: "104.130.4.72".parse().unwrap(),
            prefix: 24,
            gateway: Some("104.130.4.1".parse().unwrap()),
        }))
    );
    assert_eq!(
        i.setting.wanted.v6,
        Some(V6::Static(Static {
            address: "2001:4802:7805:104:be76:4eff:fe20:7572".parse().unwrap(),
            prefix: 64,
            gateway: Some("fe80::def".parse().unwrap()),
        }))
    );
    assert_eq!(i.ignored, ["routes", "dns"]);
    // The key in upper case, as Rackspace's MACs were.
    assert_eq!(parse("BC764E207572", NOVA).unwrap(), i);
}

#[test]
fn gateways_fall_back_to_the_interfaces_and_families_left_out_stay_alone() {
    let i = parse(
        "020000000001",
        r#"{"gateway": "192.0.2.1", "ips": [{"ip": "192.0.2.10", "netmask": "255.255.255.128"}]}"#,
    )
    .unwrap();
    assert_eq!(
        i.setting.wanted,
        Wanted {
            v4: Some(V4::Static(Static {
                address: "192.0.2.10".parse().unwrap(),
                prefix: 25,
                gateway: Some("192.0.2.1".parse().unwrap()),
            })),
            v6: None,
        }
    );
    assert!(i.ignored.is_empty());
    // No gateway at all; a disabled entry does not count; a v6 prefix as text.
    let i = parse(
        "020000000001",
        r#"{"gateway": "", "ips": [{"ip": "192.0.2.10", "netmask": "255.255.255.0", "gateway": null},
            {"ip": "192.0.2.11", "netmask": "255.255.255.0", "enabled": "0"}],
           "ip6s": [{"ip": "2001:db8::5", "netmask": "48"}], "routes": [], "dns": []}"#,
    )
    .unwrap();
    assert!(matches!(&i.setting.wanted.v4, Some(V4::Static(s)) if s.gateway.is_none()));
    assert!(matches!(&i.setting.wanted.v6, Some(V6::Static(s)) if s.prefix == 48));
    assert!(i.ignored.is_empty());
    let i = parse("020000000001", "{}").unwrap();
    assert_eq!(i.setting.wanted, Wanted::default());
}

#[test]
fn every_malformed_entry_is_refused_with_what_is_wrong() {
    let ip = |fields: &str| format!(r#"{{"ips": [{{{fields}}}]}}"#);
    let cases = [
        ("0200000000", "{}".to_string(), "not a MAC address without colons"),
        ("02000000000g", "{}".to_string(), "not a MAC address without colons"),
        ("020000000001", "[1]".to_string(), "not a JSON object"),
        ("020000000001", "{".to_string(), "not JSON"),
        ("020000000001", r#"{"mac": "02:00:00:00:00:02"}"#.to_string(), "is another MAC"),
        ("020000000001", r#"{"mac": 5}"#.to_string(), "\"mac\" is not a string"),
        ("020000000001", r#"{"mac": "zz"}"#.to_string(), "is not a MAC address"),
        ("020000000001", r#"{"ips": {}}"#.to_string(), "\"ips\" is not a list"),
        ("020000000001", r#"{"ips": [1]}"#.to_string(), "not an object"),
        ("020000000001", ip(r#""netmask": "255.255.255.0""#), "\"ip\" is missing"),
        ("020000000001", ip(r#""ip": "192.0.2.1""#), "\"netmask\" is missing"),
        ("020000000001", ip(r#""ip": "192.0.2.1", "netmask": "255.0.255.0""#), "is not a netmask"),
        ("020000000001", ip(r#""ip": "192.0.2.1", "netmask": "24""#), "is not a netmask"),
        ("020000000001", ip(r#""ip": "2001:db8::1", "netmask": "255.255.255.0""#), "not an address of the family"),
        ("020000000001", ip(r#""ip": "192.0.2.1", "netmask": "0.0.0.0""#), "prefix length must be 1 to 32"),
        ("020000000001", ip(r#""ip": "192.0.2.1", "netmask": "255.255.255.0", "gateway": "10.0.0.1""#), "not on the link"),
        ("020000000001", ip(r#""ip": "192.0.2.1", "netmask": "255.255.255.0", "gateway": 7"#), "a gateway is not a string"),
        ("020000000001", ip(r#""ip": "127.0.0.1", "netmask": "255.0.0.0""#), "loopback"),
        ("020000000001", r#"{"ips": [{"ip": "192.0.2.1", "netmask": "255.255.255.0"}, {"ip": "192.0.2.2", "netmask": "255.255.255.0"}]}"#.to_string(), "has 2 addresses"),
        ("020000000001", r#"{"ip6s": [{"ip": "2001:db8::1", "netmask": 129}]}"#.to_string(), "prefix length must be 1 to 128"),
        ("020000000001", r#"{"ip6s": [{"ip": "2001:db8::1", "netmask": -1}]}"#.to_string(), "netmask is not a prefix length"),
        ("020000000001", r#"{"ip6s": [{"ip": "2001:db8::1"}]}"#.to_string(), "netmask is not a prefix length"),
        ("020000000001", r#"{"ip6s": [{"ip": "192.0.2.1", "netmask": 64}]}"#.to_string(), "not an address of the family"),
        ("020000000001", format!(r#"{{"label": "{}"}}"#, "x".repeat(MAX_ENTRY)), "bytes, over"),
    ];
    for (key, text, want) in cases {
        let e = parse(key, &text).unwrap_err();
        assert!(e.0.contains(want), "{key} {text}: {e} (wanted {want:?})");
    }
}

#[test]
fn host_names_plain_or_json_and_checked() {
    assert_eq!(hostname("web-1").unwrap(), "web-1");
    assert_eq!(
        hostname("\"web-1.example.org\"").unwrap(),
        "web-1.example.org"
    );
    assert_eq!(hostname("web-1\n").unwrap(), "web-1");
    for bad in [
        "",
        "-web",
        "web-",
        "a..b",
        "web_1",
        "wéb",
        "a b",
        "\"\"",
        &"a".repeat(65),
        &format!("{}.b", "a".repeat(64)),
    ] {
        assert!(hostname(bad).is_err(), "{bad:?}");
    }
}
