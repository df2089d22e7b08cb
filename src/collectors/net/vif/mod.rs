//! Xen identity of an interface, decided by what the kernel says about its
//! device, never by its name (docs/xenstore-schema.md, "Which interfaces").
//!
//! Both network collectors identify a link when they meet one they do not
//! know yet (or one that was renamed), and cache the answer per interface
//! index: it reads small files and must not run per event. The polling
//! collector knows only names ([`identify`]); the netlink one also has the
//! kernel's link kind ([`identify_link`]), which spares most of the files.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::path::Path;

use crate::state::Kind;

#[cfg(target_os = "freebsd")]
mod freebsd;
#[cfg(target_os = "freebsd")]
use freebsd as os;

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
use linux as os;

#[cfg(not(any(target_os = "linux", target_os = "freebsd")))]
mod os {
    //! No way to recognise VIFs here: every interface is `Other`.
    use std::collections::HashSet;
    use std::ffi::{OsStr, OsString};
    use std::path::Path;

    use crate::state::Kind;

    pub fn identify(_sysfs: &Path, _name: &OsStr) -> Kind {
        Kind::Other
    }

    pub fn master(_sysfs: &Path, _name: &OsStr) -> Option<std::ffi::OsString> {
        None
    }

    pub fn vif_id(_sysfs: &Path, _name: &OsStr) -> Option<u32> {
        None
    }

    pub fn virtual_interfaces(_sysfs: &Path) -> Option<HashSet<OsString>> {
        None
    }
}

/// What the OS says the interface `name` is: a VIF with its id, a bridge, a
/// bond, or `Other`. (Loopback is recognised by the collectors from the
/// interface flags, which they already have.)
///
/// `sysfs` is the root of sysfs on Linux (the `--sysfs` option, so that
/// tests can use a fake tree); other systems ignore it. Any failure to read
/// (the interface vanished meanwhile, an odd layout) means `Other`: the
/// interface is still reported, just not as a VIF.
pub fn identify(sysfs: &Path, name: &OsStr) -> Kind {
    os::identify(sysfs, name)
}

/// What the interface `name` is, for a collector that has the kernel's
/// link kind (rtnetlink `IFLA_INFO_KIND`: `bridge`, `bond`, `veth`,
/// `vxlan`, `tun`..., `None` for devices without one): a VIF when the OS
/// says its device is a Xen VIF ([`vif_id`]), else what the link kind says
/// ([`by_link_kind`]).
///
/// Only the VIF question costs a look at the OS (on Linux, an `open` of
/// sysfs `device/devtype`, which fails for devices without a parent device,
/// and costs tens of microseconds even so): bridges and bonds are taken
/// from the kind alone, without looking for their `bridge/` and `bonding/`
/// directories.
///
/// The VIF question is asked whatever the kind. A real netfront device
/// never has one (xen-netfront registers no `rtnl_link_ops`), so asking it
/// only of links without a kind would spare that `open` for virtual links
/// (veth, bridges, tunnels); but the answer would then rest on the kind,
/// which no test outside Xen can exercise: every link that can be created
/// in a test namespace has a kind, and the tests make their fake VIFs of
/// veths with a fake sysfs (`--sysfs`). Asking always keeps one rule,
/// "sysfs says it is a xenbus VIF", true in a real guest and testable
/// anywhere; [`VirtualInterfaces`] spares the `open` for the many virtual
/// links of a dump instead, and a link created later costs one.
pub fn identify_link(sysfs: &Path, name: &OsStr, link_kind: Option<&[u8]>) -> Kind {
    match vif_id(sysfs, name) {
        Some(id) => Kind::Vif(id),
        None => by_link_kind(link_kind),
    }
}

/// What a link that is not a VIF is, by its kernel link kind: every kernel
/// this agent runs on gives bridges and bonds theirs.
pub fn by_link_kind(link_kind: Option<&[u8]>) -> Kind {
    match link_kind {
        Some(b"bridge") => Kind::Bridge,
        Some(b"bond") => Kind::Bond,
        _ => Kind::Other,
    }
}

/// The VIF id of the interface `name` when the OS says its device is a Xen
/// VIF (see [`identify`] for `sysfs`).
pub fn vif_id(sysfs: &Path, name: &OsStr) -> Option<u32> {
    os::vif_id(sysfs, name)
}

/// The interfaces known to have no device (so not to be VIFs: no need to
/// ask [`vif_id`]), listed at once: on Linux the entries of sysfs `devices/virtual/net`, one
/// directory read for all the veths, bridges, bonds and tunnels of a
/// namespace instead of one failing `open` each. Empty when the list
/// cannot be read (a fake sysfs in tests, other systems): then every
/// interface is asked about.
#[derive(Debug, Default)]
pub struct VirtualInterfaces(HashSet<OsString>);

impl VirtualInterfaces {
    /// The list as the OS shows it now.
    pub fn list(sysfs: &Path) -> Self {
        VirtualInterfaces(os::virtual_interfaces(sysfs).unwrap_or_default())
    }

    /// Whether `name` is in the list.
    pub fn contains(&self, name: &OsStr) -> bool {
        self.0.contains(name)
    }
}

/// The name of the bridge or bond `name` is enslaved to, for collectors
/// that do not learn it from the kernel's messages (the polling one).
pub fn master(sysfs: &Path, name: &OsStr) -> Option<std::ffi::OsString> {
    os::master(sysfs, name)
}

/// The VIF id in a xenstore device path `device/vif/<id>`, as written by
/// the toolstack (both Linux's `nodename` and FreeBSD's `xenstore_path`).
/// Anything else (a trailing newline aside) is not a VIF.
pub fn parse_vif_path(path: &[u8]) -> Option<u32> {
    let path = path.strip_suffix(b"\n").unwrap_or(path);
    let id = path.strip_prefix(b"device/vif/")?;
    // u32::from_str accepts a leading '+': the toolstack never writes one.
    if id.is_empty() || !id.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(id).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vif_paths() {
        assert_eq!(parse_vif_path(b"device/vif/0"), Some(0));
        assert_eq!(parse_vif_path(b"device/vif/12\n"), Some(12));
        for bad in [
            &b"device/vif/"[..],
            b"device/vif/+1",
            b"device/vif/-1",
            b"device/vif/1/",
            b"device/vif/1 ",
            b"device/vif/99999999999",
            b"device/vbd/51712",
            b"/device/vif/0",
            b"",
            b"device/vif/\xff",
        ] {
            assert_eq!(
                parse_vif_path(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn link_kinds_without_a_vif() {
        let nowhere = Path::new("/nonexistent");
        let kind = |k: Option<&[u8]>| identify_link(nowhere, OsStr::new("x0"), k);
        assert_eq!(kind(Some(b"bridge")), Kind::Bridge);
        assert_eq!(kind(Some(b"bond")), Kind::Bond);
        assert_eq!(kind(Some(b"veth")), Kind::Other);
        assert_eq!(kind(Some(b"bridge_slave")), Kind::Other);
        assert_eq!(kind(None), Kind::Other);
    }
}
