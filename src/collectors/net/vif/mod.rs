//! Xen identity of an interface, decided by what the kernel says about its
//! device, never by its name (docs/xenstore-schema.md, "Which interfaces").
//!
//! Both network collectors call [`identify`] when they meet a link they do
//! not know yet (or one that was renamed), and cache the answer per
//! interface index: it reads a few small files and must not run per event.

use std::ffi::OsStr;
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
    use std::ffi::OsStr;
    use std::path::Path;

    use crate::state::Kind;

    pub fn identify(_sysfs: &Path, _name: &OsStr) -> Kind {
        Kind::Other
    }

    pub fn master(_sysfs: &Path, _name: &OsStr) -> Option<std::ffi::OsString> {
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
    use super::parse_vif_path;

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
}
