//! FreeBSD: netfront interfaces are `xn<unit>`, and the device's sysctl
//! `dev.xn.<unit>.xenstore_path` is its xenstore directory `device/vif/<id>`.
//! The unit is assigned by newbus and is not the VIF id, so the sysctl is
//! the only reliable source.
//!
//! Limitation: an `xn` interface renamed by the administrator
//! (`ifconfig xn0 name lan0`) is not recognised.
//! Bridges (`if_bridge`) and laggs are reported as `Other`.

use std::collections::HashSet;
use std::ffi::{CString, OsStr, OsString};
use std::path::Path;

use super::parse_vif_path;
use crate::state::Kind;

/// See [`super::identify`]. `sysfs` is meaningless here.
pub fn identify(_sysfs: &Path, name: &OsStr) -> Kind {
    match xn_vif_id(name.as_encoded_bytes()) {
        Some(id) => Kind::Vif(id),
        None => Kind::Other,
    }
}

/// The VIF id of `name`, an `xn` interface (see [`super::identify_link`]).
pub fn vif_id(_sysfs: &Path, name: &OsStr) -> Option<u32> {
    xn_vif_id(name.as_encoded_bytes())
}

/// See [`super::VirtualInterfaces`]: not known on FreeBSD.
pub fn virtual_interfaces(_sysfs: &Path) -> Option<HashSet<OsString>> {
    None
}

/// See [`super::master`]: not known on FreeBSD.
pub fn master(_sysfs: &Path, _name: &OsStr) -> Option<OsString> {
    None
}

fn xn_vif_id(name: &[u8]) -> Option<u32> {
    let unit = name.strip_prefix(b"xn")?;
    if unit.is_empty() || !unit.iter().all(u8::is_ascii_digit) || unit.len() > 9 {
        return None;
    }
    let mut path = b"dev.xn.".to_vec();
    path.extend_from_slice(unit);
    path.extend_from_slice(b".xenstore_path");
    let path = CString::new(path).ok()?;
    let value = crate::sys::sysctl_string(&path).ok()?;
    parse_vif_path(value.as_bytes())
}
