//! Linux: sysfs tells what a network interface is.
//!
//! A netfront VIF's `class/net/<if>/device` resolves to the xenbus device
//! `devices/vif-<id>`, whose `devtype` is `vif` and whose `nodename` is its
//! xenstore directory `device/vif/<id>` (drivers/xen/xenbus/xenbus_probe.c).
//! A bridge has a `bridge/` directory, a bond a `bonding/` one; an enslaved
//! interface has a `master` link to its bridge or bond.

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
    if let Some(id) = vif_id(&dir) {
        Kind::Vif(id)
    } else if dir.join("bridge").is_dir() {
        Kind::Bridge
    } else if dir.join("bonding").is_dir() {
        Kind::Bond
    } else {
        Kind::Other
    }
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

/// The VIF id when the interface's device is a xenbus VIF.
fn vif_id(dir: &Path) -> Option<u32> {
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
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    /// A throw-away sysfs tree, removed on drop.
    struct FakeSysfs(PathBuf);

    impl FakeSysfs {
        fn new(tag: &str) -> Self {
            let root = std::env::temp_dir().join(format!(
                "xga-sysfs-{tag}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = fs::remove_dir_all(&root);
            fs::create_dir_all(root.join("class/net")).unwrap();
            fs::create_dir_all(root.join("devices")).unwrap();
            FakeSysfs(root)
        }

        /// `class/net/<ifname>/device -> ../../../devices/<dev>` with the
        /// given attribute files in the device.
        fn device(&self, ifname: &str, dev: &str, attrs: &[(&str, &str)]) {
            let d = self.0.join("devices").join(dev);
            fs::create_dir_all(&d).unwrap();
            for (k, v) in attrs {
                fs::write(d.join(k), v).unwrap();
            }
            let i = self.0.join("class/net").join(ifname);
            fs::create_dir_all(&i).unwrap();
            symlink(format!("../../../devices/{dev}"), i.join("device")).unwrap();
        }

        fn kind(&self, ifname: &str) -> Kind {
            identify(&self.0, OsStr::new(ifname))
        }
    }

    impl Drop for FakeSysfs {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn vif_is_recognised_by_its_xenbus_device() {
        let s = FakeSysfs::new("vif");
        s.device(
            "eth0",
            "vif-0",
            &[("devtype", "vif\n"), ("nodename", "device/vif/0\n")],
        );
        s.device(
            "enX7",
            "vif-7",
            &[("devtype", "vif\n"), ("nodename", "device/vif/7\n")],
        );
        assert_eq!(s.kind("eth0"), Kind::Vif(0));
        assert_eq!(s.kind("enX7"), Kind::Vif(7));
    }

    #[test]
    fn anything_else_is_not_a_vif() {
        let s = FakeSysfs::new("other");
        // A PCI NIC.
        s.device("eth1", "0000:00:03.0", &[("vendor", "0x8086\n")]);
        // xenbus device of another type.
        s.device(
            "eth2",
            "vbd-51712",
            &[("devtype", "vbd\n"), ("nodename", "device/vbd/51712\n")],
        );
        // Malformed nodename.
        s.device(
            "eth3",
            "vif-3",
            &[("devtype", "vif\n"), ("nodename", "device/vif/three\n")],
        );
        // Missing devtype.
        s.device("eth4", "vif-4", &[("nodename", "device/vif/4\n")]);
        // Oversized attribute.
        s.device(
            "eth5",
            "vif-5",
            &[
                ("devtype", &"vif".repeat(100)),
                ("nodename", "device/vif/5"),
            ],
        );
        // No device at all (veth), and no such interface.
        fs::create_dir_all(s.0.join("class/net/veth0")).unwrap();
        for name in [
            "eth1", "eth2", "eth3", "eth4", "eth5", "veth0", "nosuch", "..", "",
        ] {
            assert_eq!(s.kind(name), Kind::Other, "{name}");
        }
    }

    #[test]
    fn bridges_bonds_and_masters() {
        let s = FakeSysfs::new("bridge");
        let net = s.0.join("class/net");
        fs::create_dir_all(net.join("xenbr0/bridge")).unwrap();
        fs::create_dir_all(net.join("bond0/bonding")).unwrap();
        s.device(
            "eth0",
            "vif-0",
            &[("devtype", "vif"), ("nodename", "device/vif/0")],
        );
        symlink("../xenbr0", net.join("eth0/master")).unwrap();
        assert_eq!(s.kind("xenbr0"), Kind::Bridge);
        assert_eq!(s.kind("bond0"), Kind::Bond);
        assert_eq!(
            s.kind("eth0"),
            Kind::Vif(0),
            "a VIF stays a VIF when enslaved"
        );
        assert_eq!(master(&s.0, OsStr::new("eth0")), Some("xenbr0".into()));
        assert_eq!(master(&s.0, OsStr::new("xenbr0")), None);
    }
}
