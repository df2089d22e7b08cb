//! What the schema and session tests build their guests from.

use std::collections::BTreeMap;

use super::Context;
use crate::state::{
    AddrFlags, Address, Filesystem, Guest, Interface, KernelInfo, Kind, Link, MemoryInfo, OsInfo,
};

/// A link, up, without a master.
pub fn link(index: u32, name: &str, mac: Option<&str>, kind: Kind) -> Link {
    Link {
        index,
        name: name.into(),
        mac: mac.map(Into::into),
        kind,
        master: None,
        up: true,
    }
}

/// An interface with these addresses (and prefixes), no flags.
pub fn iface(link: Link, addrs: &[(&str, u8)]) -> Interface {
    let mut i = Interface::new(link);
    for (a, prefix) in addrs {
        let info = Address {
            prefix: *prefix,
            flags: AddrFlags::default(),
        };
        i.addresses.insert(a.parse().expect("a test address"), info);
    }
    i
}

/// A filesystem mounted at `at`: `total` and `available` in KiB, the rest
/// used.
pub fn filesystem(at: &str, device: &str, total: u64, available: u64) -> Filesystem {
    Filesystem {
        mount_point: at.into(),
        fstype: "ext4".into(),
        device: device.into(),
        total_bytes: total * 1024,
        used_bytes: (total - available) * 1024,
        available_bytes: available * 1024,
    }
}

/// A Debian 12 guest with these interfaces.
pub fn guest(ifaces: Vec<Interface>) -> Guest {
    Guest {
        os: Some(OsInfo {
            distro: "debian".into(),
            name: "Debian GNU/Linux 12 (bookworm)".into(),
            version: "12.5".into(),
            major: "12".into(),
            minor: "5".into(),
        }),
        kernel: Some(KernelInfo {
            sysname: "Linux".into(),
            release: "6.1.0-18-amd64".into(),
            version: "#1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1".into(),
            machine: "x86_64".into(),
        }),
        memory: Some(MemoryInfo {
            total_kib: 2_000_000,
            available_kib: 1_500_000,
        }),
        host_name: None,
        mode: None,
        filesystems: BTreeMap::new(),
        interfaces: ifaces.into_iter().map(|i| (i.link.index, i)).collect(),
    }
}

/// The default context: no SR-IOV, 32 addresses, feature-balloon.
pub fn ctx() -> Context {
    Context {
        sriov_vfs: BTreeMap::new(),
        max_addresses: 32,
        max_filesystems: 16,
        feature_balloon: true,
    }
}
