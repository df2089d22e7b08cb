//! Linux: sysfs tells what a network interface is.
//!
//! A netfront VIF's `class/net/<if>/device` resolves to the xenbus device
//! `devices/vif-<id>`, whose `devtype` is `vif` and whose `nodename` is its
//! xenstore directory `device/vif/<id>` (drivers/xen/xenbus/xenbus_probe.c).
//! A bridge has a `bridge/` directory, a bond a `bonding/` one; an enslaved
//! interface has a `master` link to its bridge or bond. An interface
//! without a parent device (veth, bridge, bond, tunnel...) lives in
//! `devices/virtual/net/<if>`, and has no `device` link.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::parse_vif_path;
use crate::state::Kind;

/// See [`super::identify`].
pub fn identify(sysfs: &Path, name: &OsStr) -> Kind {
    let Some(dir) = interface_dir(sysfs, name) else {
        return Kind::Other;
    };
    if let Some(id) = device_vif_id(&dir) {
        Kind::Vif(id)
    } else if dir.join("bridge").is_dir() {
        Kind::Bridge
    } else if dir.join("bonding").is_dir() {
        Kind::Bond
    } else {
        Kind::Other
    }
}

/// The VIF id when the interface's device is a xenbus VIF (see
/// [`super::identify_link`]).
pub fn vif_id(sysfs: &Path, name: &OsStr) -> Option<u32> {
    device_vif_id(&interface_dir(sysfs, name)?)
}

/// See [`super::VirtualInterfaces`]. The sysfs of a network namespace
/// shows that namespace's interfaces there.
pub fn virtual_interfaces(sysfs: &Path) -> Option<HashSet<OsString>> {
    let entries = std::fs::read_dir(sysfs.join("devices/virtual/net")).ok()?;
    Some(entries.filter_map(|e| Some(e.ok()?.file_name())).collect())
}

/// See [`super::master`].
pub fn master(sysfs: &Path, name: &OsStr) -> Option<OsString> {
    let target = std::fs::read_link(interface_dir(sysfs, name)?.join("master")).ok()?;
    target.file_name().map(OsStr::to_os_string)
}

/// `<sysfs>/class/net/<name>`, unless the name could leave that directory
/// (the kernel forbids such names, but they may come from elsewhere).
fn interface_dir(sysfs: &Path, name: &OsStr) -> Option<PathBuf> {
    let bytes = name.as_encoded_bytes();
    if bytes.is_empty() || bytes.contains(&b'/') || name == "." || name == ".." {
        return None;
    }
    Some(sysfs.join("class/net").join(name))
}

/// The VIF id when the device of the interface in `dir` is a xenbus VIF.
fn device_vif_id(dir: &Path) -> Option<u32> {
    let device = dir.join("device");
    let mut buf = [0u8; 64];
    if read_small(&device.join("devtype"), &mut buf)? != b"vif" {
        return None;
    }
    parse_vif_path(read_small(&device.join("nodename"), &mut buf)?)
}

/// The content of a small sysfs attribute without its final newline; `None`
/// when it cannot be read or does not fit in `buf` (then it is not one of
/// the short values we look for).
fn read_small<'a>(path: &Path, buf: &'a mut [u8]) -> Option<&'a [u8]> {
    let mut file = File::open(path).ok()?;
    let mut len = 0;
    loop {
        match file.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => {
                len += n;
                if len == buf.len() {
                    return None;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    let value = &buf[..len];
    Some(value.strip_suffix(b"\n").unwrap_or(value))
}

#[cfg(test)]
mod tests;
