//! The network collectors against a real kernel: each test creates its own
//! network namespace, runs the agent binary inside it with the JSON stdout
//! publisher, changes interfaces with `ip`, and waits (with a deadline)
//! until the state rebuilt from the agent's lines is what it expects,
//! usually exactly what `ip -j addr` shows.
//!
//! Needs root (network namespaces); skips with a message otherwise.
#![cfg(any(feature = "net_netlink", feature = "net_pnet"))]

// Helpers shared by the tests of both collectors; some serve only one.
#[allow(dead_code)]
mod agent;
mod live;
#[allow(dead_code)]
mod model;
#[allow(dead_code)]
mod netns;

use std::time::Duration;

use agent::Agent;
use netns::Netns;

const WAIT: Duration = Duration::from_secs(20);

/// A veth pair `v0`/`v1` with two IPv4 addresses (the second one is
/// secondary) and an IPv6 one on `v0`, which is up (without carrier, so no
/// link-local address comes and goes).
fn with_veth(ns: &Netns) {
    ns.ip(["link", "add", "v0", "type", "veth", "peer", "name", "v1"]);
    ns.ip(["addr", "add", "192.0.2.1/24", "dev", "v0"]);
    ns.ip(["addr", "add", "192.0.2.2/24", "dev", "v0"]);
    ns.ip(["addr", "add", "2001:db8::1/64", "dev", "v0", "nodad"]);
    ns.ip(["link", "set", "v0", "up"]);
}

#[cfg(feature = "net_netlink")]
mod netlink {
    use std::ffi::OsStr;
    use std::fmt::Write;
    use std::os::unix::ffi::OsStrExt;

    use super::*;

    const LONG: Duration = Duration::from_secs(180);

    /// A temporary directory, removed on drop.
    struct TempDir(std::path::PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let p = std::env::temp_dir().join(format!("xga-netns-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn start(ns: &Netns, extra: &[&str]) -> Agent {
        let mut args = vec!["--network", "netlink"];
        args.extend_from_slice(extra);
        Agent::start(ns, &args)
    }

    #[test]
    #[ignore = "needs root (network namespaces): tests/run.sh runs it, or run as root with --include-ignored"]
    fn initial_state() {
        let Some(ns) = Netns::new("initial") else {
            return;
        };
        with_veth(&ns);
        let mut a = start(&ns, &[]);
        a.wait_converged(&ns, "the initial state", WAIT);
        let (v0, i) = a.model.by_name("v0").unwrap();
        assert!(i.up);
        assert_eq!(i.addrs["192.0.2.2"], (24, vec!["secondary".to_string()]));
        assert_eq!(i.addrs["192.0.2.1"], (24, vec![]));
        assert_eq!(a.model.identity[&v0].kind, "other");
        let (lo, _) = a.model.by_name("lo").unwrap();
        assert_eq!(a.model.identity[&lo].kind, "loopback");
    }

    #[test]
    #[ignore = "needs root (network namespaces): tests/run.sh runs it, or run as root with --include-ignored"]
    fn ipv4_and_ipv6_addresses_come_and_go() {
        let Some(ns) = Netns::new("addrs") else {
            return;
        };
        with_veth(&ns);
        let mut a = start(&ns, &[]);
        a.wait_converged(&ns, "the initial state", WAIT);
        let v0 = ns.index("v0");
        let has = |addr: &'static str, prefix: u64, flags: &'static [&'static str]| {
            move |m: &model::Model| {
                m.ifaces[&v0].addrs.get(addr)
                    == Some(&(prefix, flags.iter().map(|f| f.to_string()).collect()))
            }
        };
        ns.ip(["addr", "add", "198.51.100.7/25", "dev", "v0"]);
        a.wait_for("an IPv4 address", WAIT, has("198.51.100.7", 25, &[]));
        ns.ip(["addr", "add", "2001:db8:1::7/64", "dev", "v0", "nodad"]);
        a.wait_for("an IPv6 address", WAIT, has("2001:db8:1::7", 64, &[]));
        // Without carrier, duplicate address detection never ends.
        ns.ip(["addr", "add", "2001:db8:2::7/64", "dev", "v0"]);
        a.wait_for(
            "a tentative IPv6 address",
            WAIT,
            has("2001:db8:2::7", 64, &["tentative"]),
        );
        ns.ip([
            "addr",
            "add",
            "2001:db8:3::7/64",
            "dev",
            "v0",
            "nodad",
            "preferred_lft",
            "0",
        ]);
        a.wait_for(
            "a deprecated IPv6 address",
            WAIT,
            has("2001:db8:3::7", 64, &["deprecated"]),
        );
        a.wait_converged(&ns, "after additions", WAIT);

        for addr in [
            "198.51.100.7/25",
            "2001:db8:1::7/64",
            "2001:db8:2::7/64",
            "2001:db8:3::7/64",
        ] {
            ns.ip(["addr", "del", addr, "dev", "v0"]);
        }
        a.wait_for("removals", WAIT, |m| {
            let i = &m.ifaces[&v0];
            [
                "198.51.100.7",
                "2001:db8:1::7",
                "2001:db8:2::7",
                "2001:db8:3::7",
            ]
            .iter()
            .all(|x| !i.addrs.contains_key(*x))
        });
        a.wait_converged(&ns, "after removals", WAIT);
    }

    #[test]
    #[ignore = "needs root (network namespaces): tests/run.sh runs it, or run as root with --include-ignored"]
    fn links_are_added_renamed_changed_and_removed() {
        let Some(ns) = Netns::new("links") else {
            return;
        };
        let mut a = start(&ns, &[]);
        a.wait_converged(&ns, "the initial state", WAIT);
        ns.ip(["link", "add", "l0", "type", "veth", "peer", "name", "l1"]);
        a.wait_for("new links", WAIT, |m| {
            m.by_name("l0").is_some() && m.by_name("l1").is_some()
        });
        let l0 = ns.index("l0");
        ns.ip(["addr", "add", "203.0.113.1/24", "dev", "l0"]);
        ns.ip(["link", "set", "l0", "name", "lan0"]);
        a.wait_for("the rename", WAIT, |m| {
            m.ifaces.get(&l0).is_some_and(|i| i.name == "lan0")
        });
        assert!(
            a.model.ifaces[&l0].addrs.contains_key("203.0.113.1"),
            "a rename keeps the addresses"
        );
        ns.ip(["link", "set", "lan0", "address", "02:00:00:00:00:01"]);
        a.wait_for("the new MAC", WAIT, |m| {
            m.ifaces[&l0].mac.as_deref() == Some("02:00:00:00:00:01")
        });
        ns.ip(["link", "set", "lan0", "up"]);
        a.wait_for("up", WAIT, |m| m.ifaces[&l0].up);
        ns.ip(["link", "set", "lan0", "down"]);
        a.wait_for("down", WAIT, |m| !m.ifaces[&l0].up);
        a.wait_converged(&ns, "after changes", WAIT);
        ns.ip(["link", "del", "lan0"]);
        a.wait_for("removal", WAIT, |m| {
            m.by_name("lan0").is_none() && m.by_name("l1").is_none()
        });
        a.wait_converged(&ns, "after removal", WAIT);
    }

    #[test]
    #[ignore = "needs root (network namespaces): tests/run.sh runs it, or run as root with --include-ignored"]
    fn enslaving_to_a_bridge_reports_the_master() {
        let Some(ns) = Netns::new("bridge") else {
            return;
        };
        with_veth(&ns);
        ns.ip(["link", "add", "br0", "type", "bridge"]);
        let mut a = start(&ns, &[]);
        a.wait_converged(&ns, "the initial state", WAIT);
        let (br0, v0) = (ns.index("br0"), ns.index("v0"));
        assert_eq!(a.model.identity[&br0].kind, "bridge");
        ns.ip(["link", "set", "v0", "master", "br0"]);
        a.wait_for("the master", WAIT, |m| m.ifaces[&v0].master == Some(br0));
        ns.ip(["addr", "add", "192.0.2.9/24", "dev", "br0"]);
        a.wait_converged(&ns, "enslaved", WAIT);
        ns.ip(["link", "set", "v0", "nomaster"]);
        a.wait_for("no master", WAIT, |m| m.ifaces[&v0].master.is_none());
        // Leaving the bridge is not leaving the system.
        a.wait_converged(&ns, "released", WAIT);
        assert!(a.model.ifaces.contains_key(&v0));
    }

    #[test]
    #[ignore = "needs root (network namespaces): tests/run.sh runs it, or run as root with --include-ignored"]
    fn a_hundred_addresses_on_one_interface() {
        let Some(ns) = Netns::new("hundred") else {
            return;
        };
        with_veth(&ns);
        let mut a = start(&ns, &[]);
        a.wait_converged(&ns, "the initial state", WAIT);
        let mut batch = String::new();
        for n in 0..50 {
            writeln!(batch, "addr add 10.20.0.{}/24 dev v1", n + 1).unwrap();
            writeln!(batch, "addr add 2001:db8:20::{:x}/64 dev v1 nodad", n + 1).unwrap();
        }
        ns.batch(&batch);
        let v1 = ns.index("v1");
        a.wait_for("100 addresses", WAIT, |m| m.ifaces[&v1].addrs.len() == 100);
        a.wait_converged(&ns, "100 addresses", WAIT);
    }

    #[test]
    #[ignore = "needs root (network namespaces): tests/run.sh runs it, or run as root with --include-ignored"]
    fn odd_interface_names() {
        let Some(ns) = Netns::new("names") else {
            return;
        };
        // 15 bytes (the longest name), unicode, and bytes that are not UTF-8.
        let names: [&[u8]; 3] = [b"abcdefghijklmno", "ééééééé1".as_bytes(), b"\xffodd\xfe"];
        assert!(names[..2].iter().all(|n| n.len() == 15));
        ns.ip([
            OsStr::new("link"),
            OsStr::new("add"),
            OsStr::from_bytes(names[0]),
            OsStr::new("type"),
            OsStr::new("veth"),
            OsStr::new("peer"),
            OsStr::new("name"),
            OsStr::from_bytes(names[1]),
        ]);
        let mut a = start(&ns, &[]);
        a.wait_converged(&ns, "the initial state", WAIT);
        ns.ip([
            OsStr::new("link"),
            OsStr::new("add"),
            OsStr::from_bytes(names[2]),
            OsStr::new("type"),
            OsStr::new("veth"),
            OsStr::new("peer"),
            OsStr::new("name"),
            OsStr::new("peer2"),
        ]);
        // Its IPv4 addresses carry the name too (IFA_LABEL).
        ns.ip([
            OsStr::new("addr"),
            OsStr::new("add"),
            OsStr::new("192.0.2.77/24"),
            OsStr::new("dev"),
            OsStr::from_bytes(names[2]),
        ]);
        for n in names {
            let shown = String::from_utf8_lossy(n).into_owned();
            a.wait_for(&format!("interface {shown:?}"), WAIT, |m| {
                m.by_name(&shown).is_some()
            });
        }
        a.wait_for("the address of the non-UTF-8 interface", WAIT, |m| {
            m.by_name("\u{fffd}odd\u{fffd}")
                .is_some_and(|(_, i)| i.addrs.contains_key("192.0.2.77"))
        });
        a.wait_converged(&ns, "odd names", WAIT);
    }

    /// The 5,000 changes of the burst tests: 3,000 additions (IPv4 and
    /// IPv6) then 2,000 removals, leaving 1,000 addresses on `v1`.
    fn burst() -> String {
        let mut b = String::new();
        for n in 0..2000u32 {
            writeln!(
                b,
                "addr add 10.{}.{}.{}/32 dev v1",
                100 + n / 65536,
                (n / 256) % 256,
                n % 256
            )
            .unwrap();
        }
        for n in 0..1000u32 {
            writeln!(b, "addr add 2001:db8:77::{:x}/128 dev v1 nodad", n + 1).unwrap();
        }
        for n in 0..1500u32 {
            writeln!(
                b,
                "addr del 10.{}.{}.{}/32 dev v1",
                100 + n / 65536,
                (n / 256) % 256,
                n % 256
            )
            .unwrap();
        }
        for n in 0..500u32 {
            writeln!(b, "addr del 2001:db8:77::{:x}/128 dev v1", n + 1).unwrap();
        }
        b
    }

    #[test]
    #[ignore = "needs root (network namespaces): tests/run.sh runs it, or run as root with --include-ignored"]
    fn a_burst_of_5000_changes_converges_to_what_ip_shows() {
        let Some(ns) = Netns::new("burst") else {
            return;
        };
        with_veth(&ns);
        let mut a = start(&ns, &[]);
        a.wait_converged(&ns, "the initial state", WAIT);
        let cpu = a.cpu_time();
        ns.batch(&burst());
        let v1 = ns.index("v1");
        a.wait_for("the burst", LONG, |m| m.ifaces[&v1].addrs.len() == 1000);
        a.wait_converged(&ns, "after the burst", LONG);
        let used = a.cpu_time() - cpu;
        // A measurement, not an assertion (the benchmarks own the target).
        eprintln!(
            "agent CPU for 5000 address events (read, parse, diff, print JSON): {:?}, {:.1} us/event{}",
            used,
            used.as_secs_f64() * 1e6 / 5000.0,
            if a.stderr().contains("notifications were lost") {
                " (including resyncs after an overflow)"
            } else {
                ""
            }
        );
    }

    #[test]
    #[ignore = "needs root (network namespaces): tests/run.sh runs it, or run as root with --include-ignored"]
    fn overflow_while_stopped_resyncs_and_converges() {
        let Some(ns) = Netns::new("overflow") else {
            return;
        };
        with_veth(&ns);
        overflow_converges(&ns, start(&ns, &[]));
    }

    /// The shipped unit gives the agent no capability, so its receive
    /// buffer is capped by `net.core.rmem_max`: overflows come sooner, and
    /// must be survived all the same.
    #[test]
    #[ignore = "needs root (network namespaces): tests/run.sh runs it, or run as root with --include-ignored"]
    fn overflow_without_capabilities_as_under_the_unit_converges() {
        let Some(ns) = Netns::new("overflow-nocap") else {
            return;
        };
        with_veth(&ns);
        let a = Agent::start_without_capabilities(&ns, &["--network", "netlink"]);
        let a = overflow_converges(&ns, a);
        assert!(
            a.stderr().contains("KiB of the 1024 KiB asked for"),
            "the capped receive buffer was not reported; log:\n{}",
            a.stderr()
        );
    }

    fn overflow_converges(ns: &Netns, mut a: Agent) -> Agent {
        a.wait_converged(ns, "the initial state", WAIT);
        a.signal(libc::SIGSTOP);
        // Resume the agent even if the batch fails.
        struct Cont<'a>(&'a Agent);
        impl Drop for Cont<'_> {
            fn drop(&mut self) {
                self.0.signal(libc::SIGCONT);
            }
        }
        {
            let _cont = Cont(&a);
            ns.batch(&burst());
        }
        a.wait_converged(ns, "after the overflow", LONG);
        assert!(
            a.stderr().contains("notifications were lost"),
            "the socket buffer did not overflow (the test proved nothing); log:\n{}",
            a.stderr()
        );
        a
    }

    #[test]
    #[ignore = "needs root (network namespaces): tests/run.sh runs it, or run as root with --include-ignored"]
    fn vif_identity_comes_from_sysfs() {
        let Some(ns) = Netns::new("vif") else { return };
        with_veth(&ns);
        let sysfs = TempDir::new("vif");
        let vif = |ifname: &str, id: u32| {
            let dev = sysfs.0.join(format!("devices/vif-{id}"));
            std::fs::create_dir_all(&dev).unwrap();
            std::fs::write(dev.join("devtype"), "vif\n").unwrap();
            std::fs::write(dev.join("nodename"), format!("device/vif/{id}\n")).unwrap();
            let i = sysfs.0.join("class/net").join(ifname);
            std::fs::create_dir_all(&i).unwrap();
            std::os::unix::fs::symlink(format!("../../../devices/vif-{id}"), i.join("device"))
                .unwrap();
        };
        vif("v0", 3);
        vif("lan5", 5);
        let mut a = start(&ns, &["--sysfs", sysfs.0.to_str().unwrap()]);
        a.wait_converged(&ns, "the initial state", WAIT);
        let (v0, v1) = (ns.index("v0"), ns.index("v1"));
        assert_eq!(
            a.model.identity[&v0],
            model::Identity {
                kind: "vif".into(),
                vif: Some(3)
            }
        );
        assert_eq!(
            a.model.identity[&v1],
            model::Identity {
                kind: "other".into(),
                vif: None
            }
        );
        // Identified again when renamed.
        ns.ip(["link", "set", "v1", "name", "lan5"]);
        a.wait_for("the renamed VIF", WAIT, |m| {
            m.identity[&v1]
                == model::Identity {
                    kind: "vif".into(),
                    vif: Some(5),
                }
        });
    }
}

#[cfg(feature = "net_pnet")]
mod pnet {
    use super::*;

    fn start(ns: &Netns) -> Agent {
        Agent::start(ns, &["--network", "pnet", "--poll-interval", "1"])
    }

    #[test]
    #[ignore = "needs root (network namespaces): tests/run.sh runs it, or run as root with --include-ignored"]
    fn pnet_reports_the_initial_state_and_changes() {
        let Some(ns) = Netns::new("pnet") else { return };
        with_veth(&ns);
        ns.ip(["link", "add", "br0", "type", "bridge"]);
        ns.ip(["link", "set", "v1", "master", "br0"]);
        let mut a = start(&ns);
        let mut last = model::Model::default();
        let ok = a.try_wait_for("the initial state", WAIT, |m| {
            last = ns.snapshot().without_flags();
            m.without_flags() == last
        });
        assert!(ok, "{}", agent::diff(&a.model.without_flags(), &last));
        let br0 = ns.index("br0");
        assert_eq!(a.model.identity[&br0].kind, "bridge");
        assert_eq!(a.model.ifaces[&ns.index("v1")].master, Some(br0));
        ns.ip(["addr", "add", "198.51.100.8/24", "dev", "v1"]);
        let v1 = ns.index("v1");
        a.wait_for("an added address", WAIT, |m| {
            m.ifaces[&v1].addrs.contains_key("198.51.100.8")
        });
    }
}

/// The host name collector against a real kernel: a host name change in
/// the agent's UTS namespace is published within a second, with no timer
/// (the agent's memory interval is an hour and there is no polling
/// collector).
#[test]
#[ignore = "needs root (network and UTS namespaces): tests/run.sh runs it, or run as root with --include-ignored"]
fn a_host_name_change_is_published_within_a_second() {
    use std::time::Instant;
    let Some(ns) = Netns::new("hostname") else {
        return;
    };
    let mut a = Agent::start_in_own_uts(&ns, "vm-41", &["--network", "none"]);
    a.wait_for("the first host name", WAIT, |m| m.host_name.is_some());
    let (host, _) = a.model.host_name.clone().unwrap();
    assert_eq!(host, "vm-41");
    // A short name's domain comes from this machine's /etc/hosts or
    // resolv.conf, which the test does not control: only the one a fully
    // qualified name carries must be gone.
    for (name, host, domain) in [
        ("vm-42.lab.example", "vm-42", Some("lab.example")),
        ("vm-43", "vm-43", None),
    ] {
        let start = Instant::now();
        a.set_host_name(name);
        a.wait_for(&format!("host name {name}"), WAIT, |m| match &m.host_name {
            Some((h, d)) if h == host => match domain {
                Some(domain) => d.as_deref() == Some(domain),
                None => d.as_deref() != Some("lab.example"),
            },
            _ => false,
        });
        let took = start.elapsed();
        assert!(
            took < Duration::from_secs(1),
            "host name {name} published after {took:?}"
        );
    }
}

/// The filesystem collector against a real kernel, in a private mount
/// namespace of the agent's: mounts, binds and unmounts are published
/// without any timer (the memory interval, which also samples free space,
/// is an hour).
#[test]
#[ignore = "needs root (network and mount namespaces): tests/run.sh runs it, or run as root with --include-ignored"]
fn mounts_and_unmounts_are_published_at_once_binds_are_one_filesystem() {
    let Some(ns) = Netns::new("mounts") else {
        return;
    };
    let dir = scratch("mounts");
    let at = |name: &str| format!("{dir}/{name}");
    for d in ["a", "b", "c", "disk"] {
        std::fs::create_dir_all(at(d)).expect("mkdir");
    }
    let mut a = Agent::start_in_own_mounts(&ns, &["--network", "none", "--filesystems", "local"]);
    a.wait_for("the first filesystems", WAIT, |m| !m.filesystems.is_empty());
    assert!(!a.model.filesystems.contains_key(&at("a")));

    a.in_mounts(&[
        "mount",
        "-t",
        "tmpfs",
        "-o",
        "size=8m",
        "xga-test-a",
        &at("a"),
    ]);
    a.wait_for("the tmpfs mount", WAIT, |m| {
        m.filesystems.contains_key(&at("a"))
    });
    let fs = a.model.filesystems[&at("a")].clone();
    assert_eq!(
        (fs.fstype.as_str(), fs.device.as_str()),
        ("tmpfs", "xga-test-a")
    );
    assert_eq!(fs.total, 8 << 20);
    assert_eq!(fs.available, 8 << 20);

    // A bind of the same filesystem is not a second one: once a later
    // mount is seen, the bind must not be there.
    a.in_mounts(&["mkdir", &at("a/sub")]);
    a.in_mounts(&["mount", "--bind", &at("a/sub"), &at("b")]);
    a.in_mounts(&[
        "mount",
        "-t",
        "tmpfs",
        "-o",
        "size=4m",
        "xga-test-c",
        &at("c"),
    ]);
    a.wait_for("the second tmpfs", WAIT, |m| {
        m.filesystems.contains_key(&at("c"))
    });
    assert!(
        !a.model.filesystems.contains_key(&at("b")),
        "{:#?}",
        a.model.filesystems
    );
    assert!(a.model.filesystems.contains_key(&at("a")));

    // A loop-mounted ext4, where this machine can make one.
    let image = at("disk.img");
    if ext4_image(&image) {
        a.in_mounts(&["mount", "-o", "loop", &image, &at("disk")]);
        a.wait_for("the ext4 mount", WAIT, |m| {
            m.filesystems.contains_key(&at("disk"))
        });
        let fs = &a.model.filesystems[&at("disk")];
        assert_eq!(fs.fstype, "ext4");
        assert!(fs.device.starts_with("/dev/loop"), "{fs:?}");
        assert!(fs.total > 20 << 20 && fs.total <= 32 << 20, "{fs:?}");
        a.in_mounts(&["umount", &at("disk")]);
        a.wait_for("the ext4 unmount", WAIT, |m| {
            !m.filesystems.contains_key(&at("disk"))
        });
    }

    // Unmounting the tmpfs under its bind: the bind holds the filesystem,
    // which now shows at the bind's place.
    a.in_mounts(&["umount", &at("a")]);
    a.wait_for("the unmount of a", WAIT, |m| {
        !m.filesystems.contains_key(&at("a")) && m.filesystems.contains_key(&at("b"))
    });
    a.in_mounts(&["umount", &at("b")]);
    a.in_mounts(&["umount", &at("c")]);
    a.wait_for("the last unmounts", WAIT, |m| {
        !m.filesystems.keys().any(|k| k.starts_with(&dir))
    });
    let _ = std::fs::remove_dir_all(&dir);
}

/// Free space is sampled on the memory timer: a filesystem filling up is
/// published at the next sample, and nothing else is.
#[test]
#[ignore = "needs root (network and mount namespaces): tests/run.sh runs it, or run as root with --include-ignored"]
fn a_filesystem_filling_up_is_published_at_the_next_sample() {
    let Some(ns) = Netns::new("fsfill") else {
        return;
    };
    let dir = scratch("fsfill");
    let mut a = Agent::start_in_own_mounts(
        &ns,
        &[
            "--network",
            "none",
            "--filesystems",
            "local",
            "--memory-interval",
            "1",
        ],
    );
    a.in_mounts(&["mount", "-t", "tmpfs", "-o", "size=8m", "xga-fill", &dir]);
    a.wait_for("the tmpfs", WAIT, |m| m.filesystems.contains_key(&dir));
    let file = format!("{dir}/fill");
    a.in_mounts(&[
        "dd",
        "if=/dev/zero",
        &format!("of={file}"),
        "bs=1M",
        "count=6",
        "status=none",
    ]);
    a.wait_for("6 MiB used", WAIT, |m| {
        m.filesystems
            .get(&dir)
            .is_some_and(|f| f.used >= 6 << 20 && f.available <= 2 << 20)
    });
    a.in_mounts(&["rm", &file]);
    a.wait_for("the space back", WAIT, |m| {
        m.filesystems
            .get(&dir)
            .is_some_and(|f| f.available == 8 << 20)
    });
    drop(a); // its mount namespace, and the tmpfs, go with it
    let _ = std::fs::remove_dir(&dir);
}

/// A scratch directory for mount points (outside any tmpfs the test makes).
fn scratch(tag: &str) -> String {
    let dir = std::env::temp_dir().join(format!("xga-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir scratch");
    dir.to_string_lossy().into_owned()
}

/// A 32 MiB ext4 image at `path`: false (the test says why) where mkfs.ext4
/// or loop devices are missing.
fn ext4_image(path: &str) -> bool {
    let loop_ok = std::path::Path::new("/dev/loop-control").exists();
    let made = loop_ok
        && std::fs::File::create(path)
            .and_then(|f| f.set_len(32 << 20))
            .is_ok()
        && std::process::Command::new("mkfs.ext4")
            .args(["-q", "-F", path])
            .status()
            .is_ok_and(|s| s.success());
    if !made {
        eprintln!("no loop-mounted ext4 here (mkfs.ext4 or /dev/loop-control missing): tmpfs only");
    }
    made
}
