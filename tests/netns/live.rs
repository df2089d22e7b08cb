//! `netconf::live` against a real kernel: the library runs in-process, on
//! a thread that entered the test's network namespace before opening its
//! socket, and `ip` checks what it did.
#![cfg(target_os = "linux")]

use std::future::Future;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;

use xen_guest_agent::netconf::live::{Link, Live};
use xen_guest_agent::netconf::Static;

use super::netns::Netns;

/// Run `f` with a [`Live`] opened inside `ns`, on a thread of its own (a
/// thread's namespace is its own), with a tokio runtime of that thread.
/// Without `net_admin`, the thread drops `CAP_NET_ADMIN` first.
fn in_ns<T, F, Fut>(ns: &Netns, net_admin: bool, f: F) -> T
where
    F: FnOnce(Live) -> Fut + Send + 'static,
    Fut: Future<Output = T>,
    T: Send + 'static,
{
    let path = format!("/run/netns/{}", ns.name);
    let thread = std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
        // SAFETY: a valid namespace descriptor; only this thread moves.
        let r = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(r, 0, "setns {path}: {}", std::io::Error::last_os_error());
        if !net_admin {
            drop_net_admin();
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        rt.block_on(async {
            let live = Live::open().expect("Live::open");
            f(live).await
        })
    });
    match thread.join() {
        Ok(t) => t,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Remove `CAP_NET_ADMIN` from this thread's effective capabilities (they
/// are per thread: the test's other threads keep theirs).
fn drop_net_admin() {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: libc::c_int,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    const CAP_NET_ADMIN: u32 = 12;
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: capget and capset with a version 3 header and two data
    // structs, as capabilities(7) describes.
    unsafe {
        assert_eq!(
            libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()),
            0
        );
        data[0].effective &= !(1 << CAP_NET_ADMIN);
        assert_eq!(
            libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()),
            0,
            "capset: {}",
            std::io::Error::last_os_error()
        );
    }
}

fn link(ns: &Netns, mac: &str) -> Link {
    let mac = mac.to_string();
    in_ns(
        ns,
        true,
        move |mut l| async move { l.link_by_mac(&mac).await },
    )
    .expect("link_by_mac")
    .expect("a link with that MAC")
}

fn v4(address: &str, prefix: u8, gateway: Option<&str>) -> Static<Ipv4Addr> {
    Static {
        address: address.parse().unwrap(),
        prefix,
        gateway: gateway.map(|g| g.parse().unwrap()),
    }
}

fn v6(address: &str, prefix: u8, gateway: Option<&str>) -> Static<Ipv6Addr> {
    Static {
        address: address.parse().unwrap(),
        prefix,
        gateway: gateway.map(|g| g.parse().unwrap()),
    }
}

fn apply_v4(ns: &Netns, link: &Link, want: Static<Ipv4Addr>) {
    let link = link.clone();
    in_ns(ns, true, move |mut l| async move {
        l.apply_v4(&link, &want).await
    })
    .expect("apply_v4");
}

fn apply_v6(ns: &Netns, link: &Link, want: Static<Ipv6Addr>) {
    let link = link.clone();
    in_ns(ns, true, move |mut l| async move {
        l.apply_v6(&link, &want).await
    })
    .expect("apply_v6");
}

/// The addresses `ip -br` shows on `dev` for `family` (`-4`, `-6`),
/// sorted.
fn addrs(ns: &Netns, family: &str, dev: &str) -> Vec<String> {
    let out = ns.ip([family, "-br", "addr", "show", "dev", dev]);
    let mut a: Vec<String> = out.split_whitespace().skip(2).map(str::to_string).collect();
    a.sort();
    a
}

/// The IPv6 addresses of `dev` that are not link-local.
fn global_v6(ns: &Netns, dev: &str) -> Vec<String> {
    addrs(ns, "-6", dev)
        .into_iter()
        .filter(|a| !a.starts_with("fe80:"))
        .collect()
}

/// The default routes of the main table through `dev`, as `ip` shows them.
fn defaults(ns: &Netns, family: &str, dev: &str) -> Vec<String> {
    ns.ip([family, "route", "show", "default", "table", "main"])
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| l.contains(&format!(" dev {dev} ")) || l.ends_with(&format!(" dev {dev}")))
        .collect()
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn is_up(ns: &Netns, dev: &str) -> bool {
    let out = ns.ip(["-j", "link", "show", "dev", dev]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("ip -j link");
    v[0]["flags"]
        .as_array()
        .is_some_and(|f| f.iter().any(|f| f == "UP"))
}

/// A veth pair `v0`/`v1` with known MACs, `v1` up (so that `v0` has
/// carrier once up).
fn with_veth(ns: &Netns) {
    ns.ip([
        "link",
        "add",
        "v0",
        "address",
        "02:00:00:00:00:01",
        "type",
        "veth",
        "peer",
        "name",
        "v1",
        "address",
        "02:00:00:00:00:02",
    ]);
    ns.ip(["link", "set", "v1", "up"]);
}

#[test]
#[ignore = "needs root (network namespaces): tests/run.sh runs it, or run as root with --include-ignored"]
fn link_by_mac_finds_the_interface_and_refuses_ports() {
    let Some(ns) = Netns::new("live-mac") else {
        return;
    };
    with_veth(&ns);
    let v0 = link(&ns, "02:00:00:00:00:01".to_uppercase().as_str());
    assert_eq!(
        v0,
        Link {
            index: ns.index("v0") as u32,
            name: "v0".into(),
            mac: "02:00:00:00:00:01".into(),
        }
    );
    let unknown = in_ns(&ns, true, |mut l| async move {
        l.link_by_mac("02:00:00:00:00:99").await
    });
    assert_eq!(unknown.expect("link_by_mac"), None);
    // Loopback's MAC is zeros: it never matches.
    let lo = in_ns(&ns, true, |mut l| async move {
        l.link_by_mac("00:00:00:00:00:00").await
    });
    assert_eq!(lo.expect("link_by_mac"), None);

    // A bridge carrying its port's MAC: the bridge.
    ns.ip(["link", "add", "br0", "type", "bridge"]);
    ns.ip(["link", "set", "v1", "master", "br0"]);
    ns.ip(["link", "set", "br0", "address", "02:00:00:00:00:02"]);
    let br0 = link(&ns, "02:00:00:00:00:02");
    assert_eq!(
        (br0.name.as_str(), br0.index as u64),
        ("br0", ns.index("br0"))
    );

    // The bridge with another MAC: only the port has it.
    ns.ip(["link", "set", "br0", "address", "02:00:00:00:00:03"]);
    let e = in_ns(&ns, true, |mut l| async move {
        l.link_by_mac("02:00:00:00:00:02").await
    })
    .expect_err("a port alone carries the MAC");
    assert!(e.to_string().starts_with("v1 is a port of br0: "), "{e}");
}

#[test]
#[ignore = "needs root (network namespaces): tests/run.sh runs it, or run as root with --include-ignored"]
fn apply_v4_makes_the_address_and_default_route_exactly_so() {
    let Some(ns) = Netns::new("live-v4") else {
        return;
    };
    with_veth(&ns);
    ns.ip(["link", "set", "v0", "up"]);
    ns.ip(["addr", "add", "198.51.100.5/24", "dev", "v0"]);
    ns.ip(["addr", "add", "198.51.100.6/24", "dev", "v0"]); // secondary
    ns.ip([
        "addr",
        "add",
        "169.254.7.7/16",
        "dev",
        "v0",
        "scope",
        "link",
    ]);
    ns.ip([
        "route",
        "add",
        "default",
        "via",
        "198.51.100.1",
        "dev",
        "v0",
    ]);
    ns.ip([
        "route",
        "add",
        "default",
        "via",
        "198.51.100.254",
        "dev",
        "v0",
        "metric",
        "100",
        "proto",
        "dhcp",
    ]);
    // Another link's default route is not ours to touch.
    ns.ip(["link", "add", "w0", "type", "veth", "peer", "name", "w1"]);
    ns.ip(["link", "set", "w0", "up"]);
    ns.ip(["link", "set", "w1", "up"]);
    ns.ip(["addr", "add", "10.1.0.2/24", "dev", "w0"]);
    ns.ip([
        "route", "add", "default", "via", "10.1.0.1", "dev", "w0", "metric", "200",
    ]);
    let w0_default = defaults(&ns, "-4", "w0");
    assert_eq!(w0_default.len(), 1);
    let v0 = link(&ns, "02:00:00:00:00:01");

    let want = v4("192.0.2.10", 24, Some("192.0.2.1"));
    for round in ["first", "again (idempotent)"] {
        apply_v4(&ns, &v0, want.clone());
        assert_eq!(
            addrs(&ns, "-4", "v0"),
            strings(&["169.254.7.7/16", "192.0.2.10/24"]),
            "{round}"
        );
        assert_eq!(
            defaults(&ns, "-4", "v0"),
            strings(&["default via 192.0.2.1 dev v0 proto static"]),
            "{round}"
        );
    }

    // Another address and gateway, the address the secondary of one that
    // goes (which takes its secondaries with it).
    ns.ip(["addr", "add", "198.51.100.5/24", "dev", "v0"]);
    apply_v4(&ns, &v0, v4("198.51.100.6", 24, Some("198.51.100.1")));
    assert_eq!(
        addrs(&ns, "-4", "v0"),
        strings(&["169.254.7.7/16", "198.51.100.6/24"])
    );
    assert_eq!(
        defaults(&ns, "-4", "v0"),
        strings(&["default via 198.51.100.1 dev v0 proto static"])
    );

    // Without a gateway: no default route through v0.
    apply_v4(&ns, &v0, v4("198.51.100.6", 24, None));
    assert_eq!(
        addrs(&ns, "-4", "v0"),
        strings(&["169.254.7.7/16", "198.51.100.6/24"])
    );
    assert_eq!(defaults(&ns, "-4", "v0"), Vec::<String>::new());

    // Removed: neither the address nor the route; twice is fine.
    apply_v4(&ns, &v0, v4("198.51.100.6", 24, Some("198.51.100.1")));
    for _ in 0..2 {
        let link = v0.clone();
        in_ns(&ns, true, move |mut l| async move {
            l.remove_v4(&link, &v4("198.51.100.6", 24, Some("198.51.100.1")))
                .await
        })
        .expect("remove_v4");
        assert_eq!(addrs(&ns, "-4", "v0"), strings(&["169.254.7.7/16"]));
        assert_eq!(defaults(&ns, "-4", "v0"), Vec::<String>::new());
    }
    assert_eq!(defaults(&ns, "-4", "w0"), w0_default);
    assert_eq!(addrs(&ns, "-4", "w0"), strings(&["10.1.0.2/24"]));
}

#[test]
#[ignore = "needs root (network namespaces): tests/run.sh runs it, or run as root with --include-ignored"]
fn apply_v6_makes_the_address_and_default_route_exactly_so() {
    let Some(ns) = Netns::new("live-v6") else {
        return;
    };
    with_veth(&ns);
    ns.ip(["link", "set", "v0", "up"]);
    ns.ip(["addr", "add", "2001:db8:1::5/64", "dev", "v0", "nodad"]);
    ns.ip(["addr", "add", "fe80::99/64", "dev", "v0", "nodad"]);
    ns.ip([
        "-6",
        "route",
        "add",
        "default",
        "via",
        "2001:db8:1::1",
        "dev",
        "v0",
    ]);
    ns.ip([
        "-6",
        "route",
        "add",
        "default",
        "via",
        "2001:db8:1::fe",
        "dev",
        "v0",
        "metric",
        "2000",
    ]);
    let v0 = link(&ns, "02:00:00:00:00:01");
    let link_local_kept = |ns: &Netns| {
        assert!(
            addrs(ns, "-6", "v0").contains(&"fe80::99/64".to_string()),
            "{:?}",
            addrs(ns, "-6", "v0")
        );
    };

    // The new address goes through DAD: tentative a while, but listed.
    let want = v6("2001:db8::10", 64, Some("2001:db8::1"));
    for round in ["first", "again (idempotent)"] {
        apply_v6(&ns, &v0, want.clone());
        assert_eq!(
            global_v6(&ns, "v0"),
            strings(&["2001:db8::10/64"]),
            "{round}"
        );
        link_local_kept(&ns);
        assert_eq!(
            defaults(&ns, "-6", "v0"),
            strings(&["default via 2001:db8::1 dev v0 proto static metric 1024 pref medium"]),
            "{round}"
        );
    }

    // The same address with another prefix, a link-local gateway.
    apply_v6(&ns, &v0, v6("2001:db8::10", 56, Some("fe80::1")));
    assert_eq!(global_v6(&ns, "v0"), strings(&["2001:db8::10/56"]));
    assert_eq!(
        defaults(&ns, "-6", "v0"),
        strings(&["default via fe80::1 dev v0 proto static metric 1024 pref medium"])
    );

    // Another address, no gateway.
    apply_v6(&ns, &v0, v6("2001:db8:2::7", 64, None));
    assert_eq!(global_v6(&ns, "v0"), strings(&["2001:db8:2::7/64"]));
    assert_eq!(defaults(&ns, "-6", "v0"), Vec::<String>::new());
    link_local_kept(&ns);

    let had = v6("2001:db8:2::7", 64, Some("2001:db8:2::1"));
    apply_v6(&ns, &v0, had.clone());
    assert_eq!(defaults(&ns, "-6", "v0").len(), 1);
    for _ in 0..2 {
        let (link, had) = (v0.clone(), had.clone());
        in_ns(&ns, true, move |mut l| async move {
            l.remove_v6(&link, &had).await
        })
        .expect("remove_v6");
        assert_eq!(global_v6(&ns, "v0"), Vec::<String>::new());
        assert_eq!(defaults(&ns, "-6", "v0"), Vec::<String>::new());
        link_local_kept(&ns);
    }
}

#[test]
#[ignore = "needs root (network namespaces): tests/run.sh runs it, or run as root with --include-ignored"]
fn a_link_that_is_down_is_brought_up() {
    let Some(ns) = Netns::new("live-up") else {
        return;
    };
    with_veth(&ns);
    assert!(!is_up(&ns, "v0"));
    let v0 = link(&ns, "02:00:00:00:00:01");
    apply_v4(&ns, &v0, v4("192.0.2.10", 24, Some("192.0.2.1")));
    assert!(is_up(&ns, "v0"));
    assert_eq!(addrs(&ns, "-4", "v0"), strings(&["192.0.2.10/24"]));
    assert_eq!(
        defaults(&ns, "-4", "v0"),
        strings(&["default via 192.0.2.1 dev v0 proto static"])
    );
}

#[test]
#[ignore = "needs root (network namespaces): tests/run.sh runs it, or run as root with --include-ignored"]
fn without_cap_net_admin_the_error_says_what_to_do() {
    let Some(ns) = Netns::new("live-eperm") else {
        return;
    };
    with_veth(&ns);
    ns.ip(["link", "set", "v0", "up"]);
    let e = in_ns(&ns, false, |mut l| async move {
        // Reading needs no capability.
        let v0 = l.link_by_mac("02:00:00:00:00:01").await?.expect("v0");
        l.apply_v4(&v0, &v4("192.0.2.10", 24, Some("192.0.2.1")))
            .await
    })
    .expect_err("a change without CAP_NET_ADMIN");
    assert_eq!(
        e.to_string(),
        "cannot add 192.0.2.10/24 to v0: Operation not permitted (os error 1); the agent needs \
         CAP_NET_ADMIN for --allow static-ip (the systemd drop-in \
         startup/xen-guest-agent-static-ip.conf grants it)"
    );
    assert_eq!(addrs(&ns, "-4", "v0"), Vec::<String>::new());
}
