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

use super::slots::{Family, MountSlots, Slots};
use super::{put, reportable, sriov_vf, Context, Nodes, Schema};
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
#[derive(Debug)]
pub struct Rfc {
    shown: Slots<Key>,
    fs: MountSlots,
}

impl Rfc {
    /// A schema with no history (see [`Schema::adopt`]).
    pub fn new() -> Self {
        Rfc {
            shown: Slots::new(),
            fs: MountSlots::new("data/fs"),
        }
    }
}

impl Default for Rfc {
    fn default() -> Self {
        Self::new()
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
        &[
            "data/xen-guest-agent",
            "data/os",
            "data/virtualization",
            "data/memory",
            "data/fs",
            "data/net",
        ]
    }

    /// Seeds the published address sets from `data/net/<index>/ipv{4,6}/<key>`,
    /// so that a restart under the cap keeps showing the same addresses.
    /// Keys that are not mangled addresses are ignored (and removed as stale
    /// by the first plan).
    fn adopt(&mut self, existing: &Nodes) {
        self.fs.seed(existing, "mount-point");
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
        if let Some(h) = &guest.host_name {
            put(&mut nodes, "data/os/host-name", &h.host);
            if let Some(domain) = &h.domain {
                put(&mut nodes, "data/os/domain", domain);
            }
        }
        if let Some(m) = &guest.mode {
            put(&mut nodes, "data/virtualization/mode", m.mode.name());
            let bit = |b: bool| if b { "1" } else { "0" };
            put(
                &mut nodes,
                "data/virtualization/pv-drivers/net",
                bit(m.pv_net),
            );
            put(
                &mut nodes,
                "data/virtualization/pv-drivers/block",
                bit(m.pv_block),
            );
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

        let kib = |bytes: u64| (bytes / 1024).to_string();
        for (n, fs) in self.fs.assign(&guest.filesystems, ctx.max_filesystems) {
            let dir = format!("{}/{n}", self.fs.dir());
            put(&mut nodes, format!("{dir}/mount-point"), &fs.mount_point);
            put(&mut nodes, format!("{dir}/type"), &fs.fstype);
            put(&mut nodes, format!("{dir}/device"), &fs.device);
            put(&mut nodes, format!("{dir}/total-kib"), &kib(fs.total_bytes));
            put(&mut nodes, format!("{dir}/used-kib"), &kib(fs.used_bytes));
            put(
                &mut nodes,
                format!("{dir}/available-kib"),
                &kib(fs.available_bytes),
            );
        }

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
                let present = reportable(&iface.addresses, family);
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
mod tests;
