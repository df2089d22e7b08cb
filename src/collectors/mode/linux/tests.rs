//! Fake sysfs trees, one per kind of guest and kernel.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::PathBuf;

use super::*;

/// A throw-away sysfs (and procfs) tree, removed on drop.
struct Fake(PathBuf);

impl Fake {
    fn new(tag: &str) -> Self {
        let root = std::env::temp_dir().join(format!(
            "xga-mode-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("sys")).unwrap();
        fs::create_dir_all(root.join("proc")).unwrap();
        Fake(root)
    }

    fn file(self, path: &str, value: &str) -> Self {
        let p = self.0.join("sys").join(path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, value).unwrap();
        self
    }

    /// A xenbus device, bound to its driver or not.
    fn xenbus(self, name: &str, bound: bool) -> Self {
        let dev = self.0.join("sys/devices").join(name);
        fs::create_dir_all(&dev).unwrap();
        let drivers = self.0.join("sys/bus/xen/drivers/front");
        fs::create_dir_all(&drivers).unwrap();
        if bound {
            symlink(&drivers, dev.join("driver")).unwrap();
        }
        let bus = self.0.join("sys/bus/xen/devices");
        fs::create_dir_all(&bus).unwrap();
        symlink(&dev, bus.join(name)).unwrap();
        self
    }

    fn xen(self, guest_type: &str) -> Self {
        self.file("hypervisor/type", "xen\n")
            .file("hypervisor/guest_type", &format!("{guest_type}\n"))
    }

    fn detect(&self) -> Option<GuestMode> {
        detect(&self.0.join("sys"), &self.0.join("proc"))
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn mode(mode: VirtMode, pv_net: bool, pv_block: bool) -> Option<GuestMode> {
    Some(GuestMode {
        mode,
        pv_net,
        pv_block,
    })
}

#[test]
fn guest_type_pv_with_its_frontends() {
    let f = Fake::new("pv")
        .xen("PV")
        .xenbus("vif-0", true)
        .xenbus("vbd-51712", true);
    assert_eq!(f.detect(), mode(VirtMode::Pv, true, true));
}

#[test]
fn guest_type_pvh_without_a_network_frontend() {
    let f = Fake::new("pvh").xen("PVH").xenbus("vbd-51712", true);
    assert_eq!(f.detect(), mode(VirtMode::Pvh, false, true));
}

#[test]
fn hvm_with_and_without_pv_drivers() {
    // Frontends bound: PV drivers in use.
    let f = Fake::new("hvm-pv")
        .xen("HVM")
        .xenbus("vif-0", true)
        .xenbus("vbd-768", true);
    assert_eq!(f.detect(), mode(VirtMode::Hvm, true, true));
    // The devices exist on xenbus but no frontend took them (emulated
    // disk and NIC in use).
    let f = Fake::new("hvm-emu")
        .xen("HVM")
        .xenbus("vif-0", false)
        .xenbus("vbd-768", false);
    assert_eq!(f.detect(), mode(VirtMode::Hvm, false, false));
    // No xenbus at all.
    let f = Fake::new("hvm-none").xen("HVM");
    assert_eq!(f.detect(), mode(VirtMode::Hvm, false, false));
}

#[test]
fn kernels_before_guest_type_use_the_feature_bits_and_the_platform() {
    // PV: memory not auto-translated (bit 2 clear).
    let f = Fake::new("old-pv")
        .file("hypervisor/type", "xen\n")
        .file("hypervisor/properties/features", "00000001\n")
        .xenbus("vif-0", true);
    assert_eq!(f.detect(), mode(VirtMode::Pv, true, false));
    // Auto-translated with the Xen platform PCI device: HVM.
    let f = Fake::new("old-hvm")
        .file("hypervisor/type", "xen\n")
        .file("hypervisor/properties/features", "00000f05\n")
        .file("bus/pci/devices/0000:00:02.0/vendor", "0x5853\n")
        .file("bus/pci/devices/0000:00:02.0/device", "0x0001\n");
    assert_eq!(f.detect(), mode(VirtMode::Hvm, false, false));
    // Auto-translated with SMBIOS but the platform device disabled: HVM.
    let f = Fake::new("old-hvm-dmi")
        .file("hypervisor/type", "xen\n")
        .file("hypervisor/properties/features", "00000f05\n")
        .file("class/dmi/id/sys_vendor", "Xen\n");
    assert_eq!(f.detect(), mode(VirtMode::Hvm, false, false));
    // Auto-translated, no emulated platform (another PCI device only): PVH.
    let f = Fake::new("old-pvh")
        .file("hypervisor/type", "xen\n")
        .file("hypervisor/properties/features", "00000f05\n")
        .file("bus/pci/devices/0000:00:03.0/vendor", "0x8086\n")
        .file("bus/pci/devices/0000:00:03.0/device", "0x100e\n")
        .xenbus("vbd-51712", true);
    assert_eq!(f.detect(), mode(VirtMode::Pvh, false, true));
}

#[test]
fn no_mode_when_the_kernel_does_not_say() {
    // Not Xen (no hypervisor directory), even with a frontend-like tree.
    assert_eq!(Fake::new("bare").xenbus("vif-0", true).detect(), None);
    // Another hypervisor's sysfs driver.
    assert_eq!(
        Fake::new("kvm").file("hypervisor/type", "kvm\n").detect(),
        None
    );
    // Xen, but neither guest_type nor the feature bits.
    assert_eq!(
        Fake::new("bare-xen")
            .file("hypervisor/type", "xen\n")
            .detect(),
        None
    );
    // Garbage in guest_type or features: unknown, not a guess.
    assert_eq!(Fake::new("junk").xen("Xen PV?").detect(), None);
    let f = Fake::new("junk-features")
        .file("hypervisor/type", "xen\n")
        .file("hypervisor/properties/features", "zz\n");
    assert_eq!(f.detect(), None);
}
