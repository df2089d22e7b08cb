//! What the tree must be, derived from the kernel's real state, the host's
//! facts and dom0's announcements by the contract (docs/xenstore-schema.md)
//! alone: a model of its own, not the agent's code.
//!
//! Address slot numbers depend on history, so address directories are not
//! given as nodes but as the set of addresses they must show; the slot
//! rules are checked by [`crate::slots`].

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::host::Host;
use crate::kernel::{Kernel, Kind, Link};

/// The layout chosen with `--schema`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schema {
    Std,
    Rfc,
}

impl Schema {
    pub fn name(self) -> &'static str {
        match self {
            Schema::Std => "std",
            Schema::Rfc => "rfc",
        }
    }
}

/// What the agent was told on its command line that changes the tree.
#[derive(Clone, Debug)]
pub struct Options {
    pub schema: Schema,
    /// `--max-addresses`.
    pub cap: usize,
    /// Not `--no-feature-balloon`.
    pub feature_balloon: bool,
}

impl Options {
    /// From the agent's arguments (`--schema rfc`, `--schema=rfc`, ...);
    /// the agent's defaults otherwise.
    pub fn from_args(args: &[String]) -> Result<Options, String> {
        let mut o = Options {
            schema: Schema::Std,
            cap: 32,
            feature_balloon: true,
        };
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let (key, inline) = match a.split_once('=') {
                Some((k, v)) => (k, Some(v.to_string())),
                None => (a.as_str(), None),
            };
            let value = |it: &mut std::slice::Iter<String>| {
                inline
                    .clone()
                    .or_else(|| it.next().cloned())
                    .ok_or(format!("agent argument {key} needs a value"))
            };
            match key {
                "--schema" => {
                    o.schema = match value(&mut it)?.as_str() {
                        "std" => Schema::Std,
                        "rfc" => Schema::Rfc,
                        s => return Err(format!("--schema {s}: the soak knows std and rfc")),
                    }
                }
                "--max-addresses" => {
                    let v = value(&mut it)?;
                    o.cap = v
                        .parse()
                        .map_err(|_| format!("--max-addresses {v}: not a number"))?;
                }
                "--no-feature-balloon" => o.feature_balloon = false,
                _ => {}
            }
        }
        Ok(o)
    }
}

/// What dom0 says about the guest (it decides part of the tree).
#[derive(Clone, Debug, Default)]
pub struct Dom0 {
    /// SR-IOV VFs dom0 announced: id → MAC (lowercase).
    pub sriov: BTreeMap<String, String>,
    /// `control/feature-balloon` exists writable for the guest (XAPI
    /// creates it; libxl leaves `control/` read-only).
    pub feature_balloon_writable: bool,
}

/// A node's required value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Want {
    Exact(String),
    /// `data/updated`: xe-guest-utilities' format (`Mon Jan  2 15:04:05 2006`).
    Timestamp,
    /// A decimal number, at most `max` (free memory moves all the time).
    Decimal {
        max: u64,
    },
}

impl Want {
    /// Whether `value` satisfies it.
    pub fn accepts(&self, value: &str) -> bool {
        match self {
            Want::Exact(v) => v == value,
            Want::Timestamp => is_timestamp(value),
            Want::Decimal { max } => value.parse::<u64>().is_ok_and(|v| v <= *max),
        }
    }
}

/// `Mon Jan  2 15:04:05 2006`.
pub fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    let alpha = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_alphabetic);
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    b.len() == 24
        && alpha(0..3)
        && alpha(4..7)
        && (b[8] == b' ' || b[8].is_ascii_digit())
        && b[9].is_ascii_digit()
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && digits(20..24)
}

/// An address family, as in xenstore paths.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub const ALL: [Family; 2] = [Family::V4, Family::V6];

    pub fn key(self) -> &'static str {
        match self {
            Family::V4 => "ipv4",
            Family::V6 => "ipv6",
        }
    }

    pub fn of(ip: &IpAddr) -> Family {
        if ip.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        }
    }
}

/// One directory of addresses (`attr/vif/0/ipv4`, `data/net/3/ipv6`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddrDir {
    pub family: Family,
    /// rfc: children are the mangled addresses, values `addr/prefix`;
    /// std: children are slot numbers, values the address.
    pub keyed: bool,
    /// The reportable addresses, sorted, with their prefix.
    pub present: BTreeMap<IpAddr, u8>,
    /// The primary IPv4 that must hold slot 0 whenever it is free.
    pub primary: Option<IpAddr>,
    /// The own primary IPv4 of each interface of the chain (std: a VIF's
    /// and its bridge's): the one that held slot 0's claim may change
    /// within a period.
    pub link_primaries: std::collections::BTreeSet<IpAddr>,
    /// Interface indices whose addresses the directory shows.
    pub chain: Vec<u32>,
}

/// The whole expected tree.
#[derive(Clone, Debug, Default)]
pub struct Expected {
    /// Nodes with a required value (relative paths).
    pub nodes: BTreeMap<String, Want>,
    /// Address directories, by relative path.
    pub dirs: BTreeMap<String, AddrDir>,
}

/// The tree the contract derives from these facts.
pub fn expect(kernel: &Kernel, host: &Host, dom0: &Dom0, opts: &Options) -> Expected {
    match opts.schema {
        Schema::Std => std_tree(kernel, host, dom0, opts),
        Schema::Rfc => rfc_tree(kernel, host, dom0),
    }
}

fn exact(e: &mut Expected, path: impl Into<String>, value: &str) {
    // An empty value is left out (absent means unknown).
    if !value.is_empty() {
        e.nodes.insert(path.into(), Want::Exact(value.to_string()));
    }
}

fn version_parts(v: &str) -> [String; 3] {
    let mut p = v.split(['.', '-', '+']);
    [(); 3].map(|_| p.next().unwrap_or("0").to_string())
}

/// The VF id dom0 announced with this interface's MAC, if any (plain
/// interfaces only: a bridge copies its port's MAC).
fn sriov_id<'a>(link: &Link, dom0: &'a Dom0) -> Option<&'a str> {
    let mac = link.mac.as_deref()?;
    if link.kind != Kind::Other {
        return None;
    }
    dom0.sriov
        .iter()
        .find(|(_, m)| m.trim().eq_ignore_ascii_case(mac))
        .map(|(id, _)| id.as_str())
}

fn std_tree(kernel: &Kernel, host: &Host, dom0: &Dom0, opts: &Options) -> Expected {
    let mut e = Expected::default();
    let os = &host.os;
    let (major, minor) = os.major_minor();
    exact(&mut e, "data/os_distro", &os.distro);
    exact(&mut e, "data/os_majorver", &major);
    exact(&mut e, "data/os_minorver", &minor);
    exact(&mut e, "data/os_name", &os.name);
    exact(&mut e, "data/os_uname", &host.kernel_release);
    let (name, domain) = &host.host_name;
    exact(&mut e, "data/host_name_dns", name);
    if let Some(domain) = domain {
        exact(&mut e, "data/domain", domain);
    }
    if !name.is_empty() {
        let fqdn = match domain {
            Some(d) => format!("{name}.{d}"),
            None => name.clone(),
        };
        exact(&mut e, "attr/xen-guest-agent/host-name", &fqdn);
    }
    exact(
        &mut e,
        "data/meminfo_total",
        &host.mem_total_kib.to_string(),
    );
    e.nodes.insert(
        "data/meminfo_free".into(),
        Want::Decimal {
            max: host.mem_total_kib,
        },
    );
    let [maj, min, micro] = version_parts(&host.agent_version);
    exact(&mut e, "attr/PVAddons/Installed", "1");
    exact(&mut e, "attr/PVAddons/MajorVersion", &maj);
    exact(&mut e, "attr/PVAddons/MinorVersion", &min);
    exact(&mut e, "attr/PVAddons/MicroVersion", &micro);
    // A packager's build number: any decimal.
    e.nodes.insert(
        "attr/PVAddons/BuildVersion".into(),
        Want::Decimal { max: u64::MAX },
    );

    // Owners: VIFs by id, SR-IOV VFs by dom0's id; several interfaces may
    // share one (the lowest index names a VIF).
    let mut owners: BTreeMap<String, Vec<&Link>> = BTreeMap::new();
    for link in kernel.links.values() {
        let dir = match link.kind {
            Kind::Vif(id) => format!("attr/vif/{id}"),
            Kind::Other => match sriov_id(link, dom0) {
                Some(id) => format!("xenserver/attr/net-sriov-vf/{id}"),
                None => continue,
            },
            Kind::Bridge | Kind::Loopback => continue,
        };
        owners.entry(dir).or_default().push(link);
    }
    for (dir, links) in owners {
        let first = links[0];
        if let Kind::Vif(_) = first.kind {
            exact(&mut e, format!("{dir}/name"), &first.name);
            if let Some(mac) = &first.mac {
                exact(&mut e, format!("{dir}/mac/0"), mac);
            }
        }
        let chains: Vec<Vec<&Link>> = links.iter().map(|l| kernel.chain(l)).collect();
        for family in Family::ALL {
            let present: BTreeMap<IpAddr, u8> = chains
                .iter()
                .flatten()
                .flat_map(|l| l.addrs.iter())
                .filter(|a| Family::of(&a.ip) == family && a.reportable())
                .map(|a| (a.ip, a.prefix))
                .collect();
            // The outermost master's primary: that is the address the
            // traffic uses.
            let primary = match family {
                Family::V4 => chains
                    .iter()
                    .flat_map(|c| c.iter().rev())
                    .filter_map(|l| l.primary_ipv4())
                    .find(|p| present.contains_key(p)),
                Family::V6 => None,
            };
            let link_primaries = match family {
                Family::V4 => chains
                    .iter()
                    .flatten()
                    .filter_map(|l| l.primary_ipv4())
                    .filter(|p| present.contains_key(p))
                    .collect(),
                Family::V6 => Default::default(),
            };
            let mut chain: Vec<u32> = chains.iter().flatten().map(|l| l.index).collect();
            chain.sort_unstable();
            chain.dedup();
            e.dirs.insert(
                format!("{dir}/{}", family.key()),
                AddrDir {
                    family,
                    keyed: false,
                    present,
                    primary,
                    link_primaries,
                    chain,
                },
            );
        }
    }
    feature_balloon(&mut e, dom0, opts.feature_balloon);
    e.nodes.insert("data/updated".into(), Want::Timestamp);
    e
}

/// XAPI's `control/feature-balloon` (libxl makes `control/` read-only: no
/// node): "1" once the agent says the guest balloons, else as XAPI made it.
fn feature_balloon(e: &mut Expected, dom0: &Dom0, written: bool) {
    if dom0.feature_balloon_writable {
        let v = if written { "1" } else { "" };
        e.nodes
            .insert("control/feature-balloon".into(), Want::Exact(v.into()));
    }
}

/// rfc's key for an address: `10.0.0.2` → `10_0_0_2`, `2001:db8::1` →
/// `2001_db8__1` (the driver makes no IPv4-mapped IPv6 addresses).
pub fn mangle(ip: &IpAddr) -> String {
    ip.to_string().replace(['.', ':'], "_")
}

fn rfc_tree(kernel: &Kernel, host: &Host, dom0: &Dom0) -> Expected {
    let mut e = Expected::default();
    let os = &host.os;
    exact(&mut e, "data/xen-guest-agent/schema", "1.0.0");
    exact(&mut e, "data/xen-guest-agent/version", &host.agent_version);
    exact(&mut e, "data/os/class", "unix");
    exact(&mut e, "data/os/name", &os.name);
    exact(&mut e, "data/os/distro", &os.distro);
    exact(&mut e, "data/os/version", &os.version);
    exact(&mut e, "data/os/unix/kernel-name", &host.kernel_name);
    exact(&mut e, "data/os/unix/kernel-version", &host.kernel_release);
    // No data/virtualization: the agent reads the soak's fake sysfs, which
    // has no hypervisor directory.
    exact(&mut e, "data/os/host-name", &host.host_name.0);
    if let Some(domain) = &host.host_name.1 {
        exact(&mut e, "data/os/domain", domain);
    }
    exact(
        &mut e,
        "data/memory/total-kib",
        &host.mem_total_kib.to_string(),
    );
    e.nodes.insert(
        "data/memory/available-kib".into(),
        Want::Decimal {
            max: host.mem_total_kib,
        },
    );
    for link in kernel.links.values() {
        if link.kind == Kind::Loopback {
            continue;
        }
        let dir = format!("data/net/{}", link.index);
        exact(&mut e, format!("{dir}/name"), &link.name);
        if let Some(mac) = &link.mac {
            exact(&mut e, format!("{dir}/mac"), mac);
        }
        let kind = match link.kind {
            Kind::Vif(_) => "vif",
            Kind::Bridge => "bridge",
            _ if sriov_id(link, dom0).is_some() => "sriov-vf",
            _ => "other",
        };
        exact(&mut e, format!("{dir}/kind"), kind);
        if let Kind::Vif(id) = link.kind {
            exact(&mut e, format!("{dir}/vif"), &id.to_string());
        }
        for family in Family::ALL {
            let present = link
                .addrs
                .iter()
                .filter(|a| Family::of(&a.ip) == family && a.reportable())
                .map(|a| (a.ip, a.prefix))
                .collect();
            e.dirs.insert(
                format!("{dir}/{}", family.key()),
                AddrDir {
                    family,
                    keyed: true,
                    present,
                    primary: (family == Family::V4)
                        .then(|| link.primary_ipv4())
                        .flatten(),
                    link_primaries: Default::default(),
                    chain: vec![link.index],
                },
            );
        }
    }
    // The rfc layout has no control/ node.
    feature_balloon(&mut e, dom0, false);
    e.nodes.insert("data/updated".into(), Want::Timestamp);
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::Os;

    fn host() -> Host {
        Host {
            os: Os {
                distro: "debian".into(),
                name: "Debian GNU/Linux 12 (bookworm)".into(),
                version: "12.11".into(),
            },
            kernel_release: "6.1.0".into(),
            kernel_name: "Linux".into(),
            mem_total_kib: 1000,
            agent_version: "1.2.3".into(),
            host_name: ("vm-42".into(), Some("lab.example".into())),
        }
    }

    const NET: &str = r#"[
      {"ifindex":1,"ifname":"lo","link_type":"loopback","flags":["LOOPBACK"],"addr_info":[]},
      {"ifindex":2,"ifname":"eth0","address":"00:16:3e:00:00:00","master":"br0","addr_info":[
         {"family":"inet","local":"169.254.1.1","prefixlen":16}]},
      {"ifindex":3,"ifname":"br0","address":"00:16:3e:00:00:00","linkinfo":{"info_kind":"bridge"},
       "addr_info":[{"family":"inet","local":"10.0.0.2","prefixlen":24},
                    {"family":"inet6","local":"2001:db8::9","prefixlen":64,"tentative":true}]},
      {"ifindex":4,"ifname":"vf0","address":"02:00:00:00:00:aa","addr_info":[
         {"family":"inet6","local":"2001:db8::1","prefixlen":64}]}
    ]"#;

    fn kernel() -> Kernel {
        Kernel::parse(NET, |n| (n == "eth0").then_some(0)).unwrap()
    }

    #[test]
    fn std_reports_vifs_with_their_masters_addresses_and_announced_vfs() {
        let dom0 = Dom0 {
            sriov: [("7".to_string(), "02:00:00:00:00:AA".to_string())].into(),
            feature_balloon_writable: false,
        };
        let opts = Options::from_args(&[]).unwrap();
        let e = expect(&kernel(), &host(), &dom0, &opts);
        assert_eq!(
            e.nodes["attr/vif/0/name"],
            Want::Exact("eth0".into()),
            "{e:#?}"
        );
        assert_eq!(
            e.nodes["attr/PVAddons/MicroVersion"],
            Want::Exact("3".into())
        );
        assert!(!e.nodes.contains_key("control/feature-balloon"));
        assert_eq!(e.nodes["data/host_name_dns"], Want::Exact("vm-42".into()));
        assert_eq!(e.nodes["data/domain"], Want::Exact("lab.example".into()));
        assert_eq!(
            e.nodes["attr/xen-guest-agent/host-name"],
            Want::Exact("vm-42.lab.example".into())
        );
        let v4 = &e.dirs["attr/vif/0/ipv4"];
        let ips: Vec<String> = v4.present.keys().map(|a| a.to_string()).collect();
        assert_eq!(ips, ["10.0.0.2", "169.254.1.1"]);
        assert_eq!(
            v4.primary,
            Some("10.0.0.2".parse().unwrap()),
            "the master's"
        );
        assert!(e.dirs["attr/vif/0/ipv6"].present.is_empty(), "tentative");
        assert_eq!(
            e.dirs["xenserver/attr/net-sriov-vf/7/ipv6"].present.len(),
            1
        );
        assert!(!e.nodes.keys().any(|k| k.contains("br0")));
    }

    #[test]
    fn rfc_reports_every_interface_but_loopback_by_index() {
        let dom0 = Dom0::default();
        let opts = Options::from_args(&["--schema=rfc".to_string()]).unwrap();
        let e = expect(&kernel(), &host(), &dom0, &opts);
        assert_eq!(e.nodes["data/net/2/kind"], Want::Exact("vif".into()));
        assert_eq!(e.nodes["data/net/2/vif"], Want::Exact("0".into()));
        assert_eq!(e.nodes["data/net/3/kind"], Want::Exact("bridge".into()));
        assert_eq!(e.nodes["data/net/4/kind"], Want::Exact("other".into()));
        assert!(!e.nodes.keys().any(|k| k.starts_with("data/net/1/")));
        assert_eq!(
            e.dirs["data/net/2/ipv4"].present.len(),
            1,
            "own addresses only"
        );
        assert!(e.dirs["data/net/3/ipv4"].keyed);
        assert_eq!(mangle(&"2001:db8::1".parse().unwrap()), "2001_db8__1");
    }

    #[test]
    fn feature_balloon_follows_the_toolstack_and_the_option() {
        let xapi = Dom0 {
            feature_balloon_writable: true,
            ..Dom0::default()
        };
        let want = |dom0: &Dom0, args: &[&str]| {
            let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
            let opts = Options::from_args(&args).unwrap();
            expect(&kernel(), &host(), dom0, &opts)
                .nodes
                .get("control/feature-balloon")
                .cloned()
        };
        assert_eq!(want(&xapi, &[]), Some(Want::Exact("1".into())));
        assert_eq!(
            want(&xapi, &["--no-feature-balloon"]),
            Some(Want::Exact(String::new())),
            "XAPI's node, untouched"
        );
        assert_eq!(
            want(&Dom0::default(), &[]),
            None,
            "libxl: control/ is read-only"
        );
        let rfc = ["--schema", "rfc"];
        assert_eq!(want(&xapi, &rfc), Some(Want::Exact(String::new())));
    }

    #[test]
    fn agent_arguments_the_tree_depends_on() {
        let args: Vec<String> = [
            "--schema",
            "rfc",
            "--max-addresses=4",
            "--no-feature-balloon",
        ]
        .map(String::from)
        .into();
        let o = Options::from_args(&args).unwrap();
        assert_eq!(
            (o.schema, o.cap, o.feature_balloon),
            (Schema::Rfc, 4, false)
        );
        assert!(Options::from_args(&["--schema".to_string()]).is_err());
        assert!(Options::from_args(&["--schema=xml".to_string()]).is_err());
    }

    #[test]
    fn timestamps_in_xe_guest_utilities_format() {
        assert!(is_timestamp("Mon Jan  2 15:04:05 2006"));
        assert!(is_timestamp("Wed Dec 12 07:24:40 2026"));
        assert!(!is_timestamp("2026-12-02T07:24:40Z"));
        assert!(!is_timestamp("Mon Jan  2 15:04:05 20x6"));
    }

    #[test]
    fn decimal_wants_a_bounded_number() {
        let w = Want::Decimal { max: 10 };
        assert!(w.accepts("10") && !w.accepts("11") && !w.accepts("x") && !w.accepts(""));
    }
}
