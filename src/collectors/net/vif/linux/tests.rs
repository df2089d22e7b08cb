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

#[test]
fn with_a_link_kind_sysfs_is_asked_only_about_vifs() {
    let s = FakeSysfs::new("kind");
    let net = s.0.join("class/net");
    s.device(
        "eth0",
        "vif-0",
        &[("devtype", "vif\n"), ("nodename", "device/vif/0\n")],
    );
    fs::create_dir_all(net.join("br0/bridge")).unwrap();
    fs::create_dir_all(net.join("bond0/bonding")).unwrap();
    let kind =
        |name: &str, k: Option<&[u8]>| super::super::identify_link(&s.0, OsStr::new(name), k);
    // The xenbus device wins whatever the kind (the tests' fake VIFs
    // are veths; a real netfront has no kind).
    assert_eq!(kind("eth0", Some(b"veth")), Kind::Vif(0));
    assert_eq!(kind("eth0", None), Kind::Vif(0));
    // Bridges and bonds come from the kind; their directories are not
    // looked at (netlink said what they are).
    assert_eq!(kind("br0", Some(b"bridge")), Kind::Bridge);
    assert_eq!(kind("br0", Some(b"veth")), Kind::Other);
    assert_eq!(kind("bond0", None), Kind::Other);
    assert_eq!(kind("eth9", Some(b"bond")), Kind::Bond);
    assert_eq!(kind("..", Some(b"bridge")), Kind::Bridge);
}

#[test]
fn virtual_interfaces_are_listed_at_once() {
    let s = FakeSysfs::new("virtual");
    assert_eq!(virtual_interfaces(&s.0), None, "no list in this tree");
    for name in ["veth0", "br0", "we ird"] {
        fs::create_dir_all(s.0.join("devices/virtual/net").join(name)).unwrap();
    }
    let list = super::super::VirtualInterfaces::list(&s.0);
    for name in ["veth0", "br0", "we ird"] {
        assert!(list.contains(OsStr::new(name)), "{name}");
    }
    assert!(!list.contains(OsStr::new("eth0")));
}
