//! Schema "std": the nodes XAPI, xenopsd, squeezed and Xen Orchestra read
//! (docs/xenstore-schema.md, "Schema std").
//!
//! Not rendered here: `data/updated`. Its value is a timestamp, which would
//! make rendering impure and every render differ; the publisher writes it
//! itself, last, after every non-empty change set (squeezed takes its
//! presence as "an agent is running").
//!
//! The build number in `attr/PVAddons/BuildVersion` comes from the
//! environment variable `XEN_GUEST_AGENT_BUILD` at build time (packagers set
//! it to their package release); without it, `0`. It must be a decimal
//! integer: XAPI parses it as one, so anything else fails the build.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use super::super::plan::valid_component;
use super::slots::{parse_slot, Family, MountSlots, Slots};
use super::{put, reportable, sriov_vf, Context, Nodes, Schema};
use crate::state::{Guest, Interface, Kind};

/// The build number published in `attr/PVAddons/BuildVersion`.
pub const BUILD_VERSION: &str = match option_env!("XEN_GUEST_AGENT_BUILD") {
    Some(b) => b,
    None => "0",
};

const _: () = assert!(
    is_decimal(BUILD_VERSION),
    "XEN_GUEST_AGENT_BUILD must be a decimal integer"
);

const fn is_decimal(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > 9 {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            return false;
        }
        i += 1;
    }
    true
}

/// `attr/PVAddons`: how XAPI and Xen Orchestra detect an agent and show
/// its version (XAPI reports a missing micro as -1, Xen Orchestra needs
/// major and minor).
const PV_ADDONS: [(&str, &str); 5] = [
    ("attr/PVAddons/Installed", "1"),
    (
        "attr/PVAddons/MajorVersion",
        env!("CARGO_PKG_VERSION_MAJOR"),
    ),
    (
        "attr/PVAddons/MinorVersion",
        env!("CARGO_PKG_VERSION_MINOR"),
    ),
    (
        "attr/PVAddons/MicroVersion",
        env!("CARGO_PKG_VERSION_PATCH"),
    ),
    ("attr/PVAddons/BuildVersion", BUILD_VERSION),
];

/// The node under `attr/` (watched by xenopsd) that carries the fully
/// qualified host name, so that XAPI re-reads `data/host_name_dns` and
/// `data/domain` when they change.
pub const HOST_NAME_SIGNAL: &str = "attr/xen-guest-agent/host-name";

/// Highest slot number `adopt` believes (what no cap allows is garbage).
const SLOT_LIMIT: usize = 1024;

/// How many masters are followed up from a VIF (VIF → bond → bridge is
/// two); a bound, so a loop in a confused model cannot hang the render.
const MAX_MASTER_DEPTH: usize = 8;

/// Whose addresses a slot table holds.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Owner {
    /// `attr/vif/<id>`.
    Vif(u32),
    /// `xenserver/attr/net-sriov-vf/<id>`.
    Vf(String),
}

/// A slot table's key: displays as its xenstore directory.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key(Owner, Family);

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Owner::Vif(id) => write!(f, "attr/vif/{id}"),
            Owner::Vf(id) => write!(f, "xenserver/attr/net-sriov-vf/{id}"),
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}/{}", self.0, self.1.key())
    }
}

/// The "std" layout. Holds the address slots, so one instance lives as
/// long as the publisher.
#[derive(Debug)]
pub struct Standard {
    slots: Slots<Key>,
    volumes: MountSlots,
}

impl Default for Standard {
    fn default() -> Self {
        Self::new()
    }
}

impl Standard {
    /// A schema with no slot history (see [`Schema::adopt`]).
    pub fn new() -> Self {
        Standard {
            slots: Slots::new(),
            volumes: MountSlots::new("data/volumes"),
        }
    }
}

/// Who publishes `iface`'s addresses: a VIF under its id, an SR-IOV VF
/// under dom0's id (matched by MAC: only plain interfaces, since a bond or
/// bridge copies its port's MAC), nothing else.
fn owner(iface: &Interface, ctx: &Context) -> Option<Owner> {
    match iface.link.kind {
        Kind::Vif(id) => Some(Owner::Vif(id)),
        Kind::Other => sriov_vf(iface, ctx)
            .filter(|id| valid_component(id))
            .map(|id| Owner::Vf(id.to_string())),
        Kind::Bridge | Kind::Bond | Kind::Loopback => None,
    }
}

/// `iface` and the bridges and bonds above it: an enslaved VIF's addresses
/// are on its master (and on the master's master for a bond in a bridge).
fn with_masters<'g>(guest: &'g Guest, iface: &'g Interface) -> Vec<&'g Interface> {
    let mut chain = vec![iface];
    let mut current = iface;
    while let Some(master) = current.link.master.and_then(|m| guest.interfaces.get(&m)) {
        let is_master_kind = matches!(master.link.kind, Kind::Bridge | Kind::Bond);
        if !is_master_kind
            || chain.len() > MAX_MASTER_DEPTH
            || chain.iter().any(|i| i.link.index == master.link.index)
        {
            break;
        }
        chain.push(master);
        current = master;
    }
    chain
}

impl Schema for Standard {
    fn name(&self) -> &'static str {
        "std"
    }

    /// Not `control/feature-balloon`: XAPI creates it before the guest
    /// runs, so removing it would lose the toolstack's node. Not
    /// `data/updated`: the publisher's own.
    fn owned(&self) -> &'static [&'static str] {
        &[
            "data/os_distro",
            "data/os_majorver",
            "data/os_minorver",
            "data/os_name",
            "data/os_uname",
            "data/meminfo_total",
            "data/meminfo_free",
            "data/host_name_dns",
            "data/domain",
            "data/volumes",
            "attr/PVAddons",
            "attr/xen-guest-agent",
            "attr/vif",
            "xenserver/attr/net-sriov-vf",
        ]
    }

    /// The toolstack pre-creates it (XAPI, writable), or keeps it from the
    /// guest (libxl): ours to write, never to remove.
    fn kept(&self) -> &'static [&'static str] {
        &["control/feature-balloon"]
    }

    /// Seeds the slots from `attr/vif/<id>/ipv{4,6}/<n>` and
    /// `xenserver/attr/net-sriov-vf/<id>/ipv{4,6}/<n>`. Anything that does
    /// not parse (non-integer slot, address of the wrong family, unknown
    /// key) is ignored, and so removed as stale by the first plan.
    fn adopt(&mut self, existing: &Nodes) {
        self.volumes.seed(existing, "mount_points/0");
        for (path, value) in existing {
            let parts: Vec<&str> = path.split('/').collect();
            let (owner, family, slot) = match parts[..] {
                ["attr", "vif", id, family, slot] => match id.parse::<u32>() {
                    Ok(n) if n.to_string() == id => (Owner::Vif(n), family, slot),
                    _ => continue,
                },
                ["xenserver", "attr", "net-sriov-vf", id, family, slot] => {
                    (Owner::Vf(id.to_string()), family, slot)
                }
                _ => continue,
            };
            let (Some(family), Some(slot), Ok(addr)) = (
                Family::from_key(family),
                parse_slot(slot, SLOT_LIMIT),
                value.parse::<IpAddr>(),
            ) else {
                continue;
            };
            // Only the canonical text form: what render would write.
            if Family::of(&addr) == family && addr.to_string() == *value {
                self.slots.seed(Key(owner, family), slot, addr);
            }
        }
    }

    fn render(&mut self, guest: &Guest, ctx: &Context) -> Nodes {
        let mut nodes = Nodes::new();

        if let Some(os) = &guest.os {
            put(&mut nodes, "data/os_distro", &os.distro);
            put(&mut nodes, "data/os_majorver", &os.major);
            put(&mut nodes, "data/os_minorver", &os.minor);
            put(&mut nodes, "data/os_name", &os.name);
        }
        if let Some(kernel) = &guest.kernel {
            put(&mut nodes, "data/os_uname", &kernel.release);
        }
        if let Some(memory) = &guest.memory {
            let total = memory.total_kib.to_string();
            let free = memory.available_kib.to_string();
            put(&mut nodes, "data/meminfo_total", &total);
            put(&mut nodes, "data/meminfo_free", &free);
        }
        if let Some(h) = &guest.host_name {
            put(&mut nodes, "data/host_name_dns", &h.host);
            if let Some(domain) = &h.domain {
                put(&mut nodes, "data/domain", domain);
            }
            // xenopsd reads `data/` but does not watch it: a changed host
            // name reaches XAPI only with an event on a watched path. This
            // node, under the watched `attr/` (in the agent's own subtree,
            // which no toolstack reads), changes with the name, in the same
            // transaction (`data` is written before `attr`).
            put(&mut nodes, HOST_NAME_SIGNAL, &h.fqdn());
        }
        // The layout of xe-guest-utilities and the Windows agent, which Xen
        // Orchestra's disk space plugin reads: sizes in bytes, `free` what
        // users may still write (df's "Avail").
        for (n, fs) in self.volumes.assign(&guest.filesystems, ctx.max_filesystems) {
            let dir = format!("{}/{n}", self.volumes.dir());
            put(&mut nodes, format!("{dir}/name"), &fs.device);
            put(&mut nodes, format!("{dir}/filesystem"), &fs.fstype);
            put(
                &mut nodes,
                format!("{dir}/size"),
                &fs.total_bytes.to_string(),
            );
            put(
                &mut nodes,
                format!("{dir}/free"),
                &fs.available_bytes.to_string(),
            );
            put(&mut nodes, format!("{dir}/mount_points/0"), &fs.mount_point);
        }
        for (path, value) in PV_ADDONS {
            put(&mut nodes, path, value);
        }

        // Interfaces by owner, in index order (several interfaces may share
        // one: VLANs on a VF carry its MAC).
        let mut owners: BTreeMap<Owner, Vec<&Interface>> = BTreeMap::new();
        for iface in guest.interfaces.values() {
            if let Some(o) = owner(iface, ctx) {
                owners.entry(o).or_default().push(iface);
            }
        }
        for (owner, ifaces) in owners {
            if let (Owner::Vif(_), Some(first)) = (&owner, ifaces.first()) {
                put(&mut nodes, format!("{owner}/name"), &first.link.name);
                if let Some(mac) = &first.link.mac {
                    put(&mut nodes, format!("{owner}/mac/0"), mac);
                }
            }
            let chains: Vec<Vec<&Interface>> =
                ifaces.iter().map(|i| with_masters(guest, i)).collect();
            for family in Family::ALL {
                let present =
                    reportable(chains.iter().flatten().flat_map(|i| &i.addresses), family);
                // The primary of the outermost master that has one: an
                // enslaved port's own IPv4 (a stray link-local, say) is not
                // the address its traffic uses.
                let primary = match family {
                    Family::V4 => chains
                        .iter()
                        .flat_map(|c| c.iter().rev())
                        .filter_map(|i| i.primary_ipv4())
                        .find(|p| present.binary_search(p).is_ok()),
                    Family::V6 => None,
                };
                let key = Key(owner.clone(), family);
                let table = self
                    .slots
                    .assign(&key, &present, primary, ctx.max_addresses);
                for (slot, addr) in table.iter().enumerate() {
                    if let Some(addr) = addr {
                        nodes.insert(format!("{key}/{slot}"), addr.to_string());
                    }
                }
            }
        }
        self.slots.end_render();

        if ctx.feature_balloon {
            put(&mut nodes, "control/feature-balloon", "1");
        }
        nodes
    }
}

#[cfg(test)]
mod tests;
