//! Schema "rfc": the structured, versioned tree under `data/`
//! (docs/xenstore-schema.md, "Schema rfc").
//!
//! Leaves only, predictable paths: interfaces are keyed by OS interface
//! index and addresses are keys (mangled into valid path components), so
//! that nothing ever moves. Interface names are values, never keys.
//!
//! Not rendered here: `data/updated`, which the publisher writes itself,
//! last, after every non-empty change set (as in std).

use std::fmt;
use std::net::IpAddr;

use super::plan::sanitize;
use super::schema::{Context, Nodes, Schema};
use super::slots::{Family, Slots};
use super::std_schema::sriov_vf;
use crate::state::{Guest, Interface, Kind};

/// Version of this layout (semver): readers check the major.
pub const LAYOUT_VERSION: &str = "1.0.0";

/// `data/os/class`: the OS family, naming the OS-specific subtree
/// (`data/os/unix`). Every platform the agent runs on is a Unix.
const OS_CLASS: &str = "unix";

/// Which addresses of an interface are published when it has more than the
/// cap. The slot numbers are not published; the allocator only keeps the
/// published set stable (an address shown stays shown while it exists).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key(u32, Family);

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "data/net/{}/{}", self.0, self.1.key())
    }
}

/// The "rfc" layout. Holds which addresses are published under the cap, so
/// one instance lives as long as the publisher.
#[derive(Debug, Default)]
pub struct Rfc {
    shown: Slots<Key>,
}

impl Rfc {
    /// A schema with no history (see [`Schema::adopt`]).
    pub fn new() -> Self {
        Self::default()
    }
}

/// `addr` as a path component: `10.0.0.2` → `10_0_0_2`, `fe80::1` →
/// `fe80__1`.
///
/// IPv6 keys use the all-hex canonical form: the text form writes the tail
/// of IPv4-mapped addresses dotted (`::ffff:10.0.0.1`), and mangling those
/// dots too would make `::ffff:10.0.0.1` and `::ffff:10:0:0:1` one key.
pub fn mangle(addr: &IpAddr) -> String {
    let text = addr.to_string();
    match addr {
        IpAddr::V4(_) => text.replace('.', "_"),
        IpAddr::V6(v6) => match text.rfind(':') {
            Some(i) if text.contains('.') => {
                let [.., hi, lo] = v6.segments();
                format!("{}_{hi:x}_{lo:x}", &text[..i]).replace(':', "_")
            }
            _ => text.replace(':', "_"),
        },
    }
}

/// The address a [`mangle`]d key stands for, if it is one.
pub fn unmangle(key: &str, family: Family) -> Option<IpAddr> {
    let text = match family {
        Family::V4 => key.replace('_', "."),
        Family::V6 => key.replace('_', ":"),
    };
    let addr: IpAddr = text.parse().ok()?;
    (Family::of(&addr) == family && mangle(&addr) == key).then_some(addr)
}

/// Insert `path` = `value` made writable; an empty value is left out (a
/// leaf is never empty in this layout: empty is a parent's value).
fn put(nodes: &mut Nodes, path: impl Into<String>, value: &str) {
    let value = sanitize(value);
    if !value.is_empty() {
        nodes.insert(path.into(), value);
    }
}

/// `data/net/<index>/kind`. A bond is `other`: the layout's kinds are
/// those a toolstack acts on.
fn kind(iface: &Interface, ctx: &Context) -> &'static str {
    match iface.link.kind {
        Kind::Vif(_) => "vif",
        Kind::Bridge => "bridge",
        Kind::Other if sriov_vf(iface, ctx).is_some() => "sriov-vf",
        Kind::Bond | Kind::Other | Kind::Loopback => "other",
    }
}

impl Schema for Rfc {
    fn name(&self) -> &'static str {
        "rfc"
    }

    fn owned(&self) -> &'static [&'static str] {
        &["data/xen-guest-agent", "data/os", "data/memory", "data/net"]
    }

    /// Seeds the published address sets from `data/net/<index>/ipv{4,6}/<key>`,
    /// so that a restart under the cap keeps showing the same addresses.
    /// Keys that are not mangled addresses are ignored (and removed as stale
    /// by the first plan).
    fn adopt(&mut self, existing: &Nodes) {
        let mut counts = std::collections::BTreeMap::new();
        for path in existing.keys() {
            let parts: Vec<&str> = path.split('/').collect();
            let ["data", "net", index, family, key] = parts[..] else {
                continue;
            };
            let (Ok(index), Some(family)) = (index.parse::<u32>(), Family::from_key(family)) else {
                continue;
            };
            if let Some(addr) = unmangle(key, family) {
                let k = Key(index, family);
                let n = counts.entry(k.clone()).or_insert(0);
                self.shown.seed(k, *n, addr);
                *n += 1;
            }
        }
    }

    fn render(&mut self, guest: &Guest, ctx: &Context) -> Nodes {
        let mut nodes = Nodes::new();
        put(&mut nodes, "data/xen-guest-agent/schema", LAYOUT_VERSION);
        put(
            &mut nodes,
            "data/xen-guest-agent/version",
            env!("CARGO_PKG_VERSION"),
        );

        put(&mut nodes, "data/os/class", OS_CLASS);
        if let Some(os) = &guest.os {
            put(&mut nodes, "data/os/name", &os.name);
            put(&mut nodes, "data/os/distro", &os.distro);
            put(&mut nodes, "data/os/version", &os.version);
        }
        if let Some(kernel) = &guest.kernel {
            put(&mut nodes, "data/os/unix/kernel-name", &kernel.sysname);
            put(&mut nodes, "data/os/unix/kernel-version", &kernel.release);
        }
        if let Some(memory) = &guest.memory {
            put(
                &mut nodes,
                "data/memory/total-kib",
                &memory.total_kib.to_string(),
            );
            put(
                &mut nodes,
                "data/memory/available-kib",
                &memory.available_kib.to_string(),
            );
        }

        let mut present = Vec::new();
        for (index, iface) in &guest.interfaces {
            if iface.link.kind == Kind::Loopback {
                continue;
            }
            let dir = format!("data/net/{index}");
            put(&mut nodes, format!("{dir}/name"), &iface.link.name);
            if let Some(mac) = &iface.link.mac {
                put(&mut nodes, format!("{dir}/mac"), mac);
            }
            put(&mut nodes, format!("{dir}/kind"), kind(iface, ctx));
            if let Kind::Vif(id) = iface.link.kind {
                put(&mut nodes, format!("{dir}/vif"), &id.to_string());
            }
            for family in Family::ALL {
                present.clear();
                present.extend(
                    iface
                        .addresses
                        .iter()
                        .filter(|(a, info)| Family::of(a) == family && info.flags.reportable())
                        .map(|(a, _)| *a),
                );
                let primary = match family {
                    Family::V4 => iface.primary_ipv4(),
                    Family::V6 => None,
                };
                let key = Key(*index, family);
                let shown = self
                    .shown
                    .assign(&key, &present, primary, ctx.max_addresses);
                for addr in shown.iter().flatten() {
                    let prefix = iface.addresses.get(addr).map_or(0, |i| i.prefix);
                    nodes.insert(
                        format!("{key}/{}", mangle(addr)),
                        format!("{addr}/{prefix}"),
                    );
                }
            }
        }
        self.shown.end_render();
        nodes
    }
}

#[cfg(test)]
mod tests {
    use super::super::plan::{plan, valid_path, valid_value};
    use super::super::schema::Op;
    use super::*;
    use crate::state::{AddrFlags, Address, Link};
    use std::collections::BTreeMap;

    fn link(index: u32, name: &str, mac: Option<&str>, kind: Kind) -> Link {
        Link {
            index,
            name: name.into(),
            mac: mac.map(Into::into),
            kind,
            master: None,
            up: true,
        }
    }

    fn iface(link: Link, addrs: &[(&str, u8)]) -> Interface {
        let mut i = Interface::new(link);
        for (a, prefix) in addrs {
            i.addresses.insert(
                a.parse().unwrap(),
                Address {
                    prefix: *prefix,
                    flags: AddrFlags::default(),
                },
            );
        }
        i
    }

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
            interfaces: ifaces.into_iter().map(|i| (i.link.index, i)).collect(),
        }
    }

    fn ctx() -> Context {
        Context {
            sriov_vfs: BTreeMap::from([("7".to_string(), "02:AB:CD:00:00:07".to_string())]),
            max_addresses: 32,
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
}
