//! Linux: the mode from sysfs, in the order kernels gained the files:
//! `/sys/hypervisor/guest_type` (Linux 4.15 and later: `PV`, `PVH` or
//! `HVM`); before it, `/sys/hypervisor/properties/features` (the Xen
//! feature bits: a PV guest's memory is not auto-translated, an HVM or PVH
//! guest's is) and, to tell HVM from PVH, the emulated platform an HVM
//! guest has and a PVH guest lacks (the Xen platform PCI device, SMBIOS).
//! PV drivers in use: xenbus frontends bound to a driver
//! (`/sys/bus/xen/devices/vif-*` netfront, `vbd-*` blkfront).

use std::fs;
use std::path::Path;

use crate::state::{GuestMode, VirtMode};

/// `XENFEAT_auto_translated_physmap` (xen/include/public/features.h).
const XENFEAT_AUTO_TRANSLATED_PHYSMAP: u32 = 2;

/// The Xen platform PCI device (`xen-platform-pci`): vendor, device.
const PLATFORM_PCI: (&str, &str) = ("0x5853", "0x0001");

/// The mode of the guest whose sysfs is at `sysfs` and procfs at `proc`;
/// `None` when it is not a Xen guest or its kernel does not say.
pub fn detect(sysfs: &Path, proc: &Path) -> Option<GuestMode> {
    let hv = sysfs.join("hypervisor");
    match read(&hv.join("type")) {
        Some(t) if t == "xen" => {}
        // Another hypervisor's, or none at all: a kernel without Xen's
        // sysfs driver may still be a Xen guest (`/proc/xen`), but then
        // nothing below can tell its mode.
        Some(_) => return None,
        None => {
            if proc.join("xen").exists() {
                log::debug!(
                    "/proc/xen but no {}: mode unknown",
                    hv.join("type").display()
                );
            }
            return None;
        }
    }
    let mode = match read(&hv.join("guest_type")).as_deref() {
        Some("PV") => VirtMode::Pv,
        Some("PVH") => VirtMode::Pvh,
        Some("HVM") => VirtMode::Hvm,
        Some(other) => {
            log::debug!("unknown guest_type {other:?}");
            return None;
        }
        None => older_kernel(sysfs)?,
    };
    Some(GuestMode {
        mode,
        pv_net: frontend_bound(sysfs, "vif-"),
        pv_block: frontend_bound(sysfs, "vbd-"),
    })
}

/// Kernels before 4.15: from the feature bits and the emulated platform.
fn older_kernel(sysfs: &Path) -> Option<VirtMode> {
    let features = read(&sysfs.join("hypervisor/properties/features"))?;
    // One 8-digit hexadecimal word per submap, the highest first: submap 0
    // is the last.
    let tail = &features[features.len().saturating_sub(8)..];
    let submap0 = u32::from_str_radix(tail, 16).ok()?;
    if submap0 & (1 << XENFEAT_AUTO_TRANSLATED_PHYSMAP) == 0 {
        return Some(VirtMode::Pv);
    }
    Some(if emulated_platform(sysfs) {
        VirtMode::Hvm
    } else {
        VirtMode::Pvh
    })
}

/// Whether the guest has what only HVM emulates: the Xen platform PCI
/// device or the SMBIOS tables hvmloader writes.
fn emulated_platform(sysfs: &Path) -> bool {
    if sysfs.join("class/dmi/id/sys_vendor").exists() {
        return true;
    }
    let Ok(devices) = fs::read_dir(sysfs.join("bus/pci/devices")) else {
        return false;
    };
    devices.flatten().any(|d| {
        let p = d.path();
        read(&p.join("vendor")).as_deref() == Some(PLATFORM_PCI.0)
            && read(&p.join("device")).as_deref() == Some(PLATFORM_PCI.1)
    })
}

/// Whether a xenbus device named `<prefix><id>` is bound to its frontend
/// driver.
fn frontend_bound(sysfs: &Path, prefix: &str) -> bool {
    let Ok(devices) = fs::read_dir(sysfs.join("bus/xen/devices")) else {
        return false;
    };
    devices.flatten().any(|d| {
        d.file_name().to_string_lossy().starts_with(prefix) && d.path().join("driver").exists()
    })
}

/// A small sysfs attribute, trimmed; `None` when absent or unreadable.
fn read(path: &Path) -> Option<String> {
    let text = fs::read_to_string(path).ok()?;
    Some(text.trim().to_owned())
}

#[cfg(test)]
mod tests;
