use super::*;
use crate::netconf::Static;
use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicUsize, Ordering};

const NAME: &str = "eth0";
const MAC: &str = "00:16:3e:5a:01:02";
const INDEX: u32 = 2;

/// The header of the agent's networkd files for NAME and MAC.
macro_rules! networkd_header {
    () => {
        "# Written by xen-guest-agent from dom0's static IP setting for the interface\n\
         # eth0, MAC 00:16:3e:5a:01:02.\n\
         # Removed when dom0 asks for DHCP/autoconf back or the setting is cleared;\n\
         # rewritten at dom0's next setting: edits here do not last.\n\
         # interface: eth0 00:16:3e:5a:01:02\n"
    };
}

/// The header of the agent's ifupdown file for NAME and MAC.
macro_rules! ifupdown_header {
    () => {
        "# Written by xen-guest-agent from dom0's static IP setting for the interface\n\
         # eth0, MAC 00:16:3e:5a:01:02.\n\
         # Removed when dom0 clears the setting;\n\
         # rewritten at dom0's next setting: edits here do not last.\n\
         # interface: eth0 00:16:3e:5a:01:02\n"
    };
}

/// The explanation of a networkd replacement, after its state lines.
macro_rules! replacement_comment {
    () => {
        "# A copy of the file below and its drop-ins, for this interface alone: a\n\
         # drop-in to that file would reach the other interfaces it matches, or\n\
         # could not remove its static addresses. Its [Match] is this interface's,\n\
         # the addresses and gateways of the families dom0 sets are left out, and\n\
         # dom0's setting comes last.\n"
    };
}

/// A throw-away system tree (`etc/`, `run/`), removed on drop.
struct Tree {
    root: PathBuf,
    roots: Roots,
}

impl Tree {
    fn new(tag: &str) -> Tree {
        static N: AtomicUsize = AtomicUsize::new(0);
        let root = std::env::temp_dir().join(format!(
            "xga-persist-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::create_dir_all(root.join("run")).unwrap();
        let roots = Roots {
            etc: root.join("etc"),
            run: root.join("run"),
        };
        Tree { root, roots }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    fn file(&self, rel: &str, text: &str) -> &Tree {
        let p = self.path(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
        self
    }

    fn dir(&self, rel: &str) -> &Tree {
        fs::create_dir_all(self.path(rel)).unwrap();
        self
    }

    fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.path(rel)).unwrap()
    }

    fn exists(&self, rel: &str) -> bool {
        self.path(rel).exists()
    }

    /// networkd's state file of link INDEX.
    fn link(&self, admin: &str, network_file: Option<&str>) -> &Tree {
        let mut s = format!(
            "# This is private data. Do not parse.\nADMIN_STATE={admin}\nOPER_STATE=routable\n"
        );
        if let Some(f) = network_file {
            s += &format!("NETWORK_FILE={f}\nNETWORK_FILE_DROPINS=\"\"\n");
        }
        s += "DNS=\nNTP=\n";
        self.file(&format!("run/systemd/netif/links/{INDEX}"), &s)
    }

    fn detect(&self) -> Detected {
        detect(&self.roots, NAME, INDEX)
    }

    fn persist(&self, wanted: &Wanted) -> Result<Persisted, Error> {
        persist(&self.roots, &self.detect(), NAME, INDEX, MAC, wanted)
    }

    fn forget(&self) -> Result<Persisted, Error> {
        forget(&self.roots, &self.detect(), NAME, INDEX, MAC)
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

fn v4_static() -> Wanted {
    Wanted {
        v4: Some(V4::Static(Static {
            address: "192.0.2.10".parse().unwrap(),
            prefix: 24,
            gateway: Some("192.0.2.1".parse().unwrap()),
        })),
        v6: None,
    }
}

fn v6_static() -> Wanted {
    Wanted {
        v4: None,
        v6: Some(V6::Static(Static {
            address: "2001:db8::10".parse().unwrap(),
            prefix: 64,
            gateway: Some("fe80::1".parse().unwrap()),
        })),
    }
}

fn v4(v: V4) -> Wanted {
    Wanted {
        v4: Some(v),
        v6: None,
    }
}

fn v6(v: V6) -> Wanted {
    Wanted {
        v4: None,
        v6: Some(v),
    }
}

const DROPIN: &str = "etc/systemd/network/50-eth0.network.d/90-xen-guest-agent.conf";
const PINNED_DHCP: &str = "[Match]\nName=eth0\n\n[Network]\nDHCP=yes\n";

// Detection.

#[test]
fn networkd_managed_link_is_detected_with_its_network_file() {
    let t = Tree::new("nd-managed");
    t.link("configured", Some("/etc/systemd/network/50-eth0.network"));
    assert_eq!(
        t.detect(),
        Detected::Networkd {
            network_file: Some(PathBuf::from("/etc/systemd/network/50-eth0.network"))
        }
    );
    // Quoted and escaped, as newer networkd may write it.
    t.file(
        &format!("run/systemd/netif/links/{INDEX}"),
        "ADMIN_STATE=configuring\nNETWORK_FILE=\"/run/systemd/network/10-net\\x20plan.network\"\n",
    );
    assert_eq!(
        t.detect(),
        Detected::Networkd {
            network_file: Some(PathBuf::from("/run/systemd/network/10-net plan.network"))
        }
    );
}

#[test]
fn networkd_without_a_network_file_is_detected_but_not_persisted() {
    let t = Tree::new("nd-nofile");
    t.link("configuring", None);
    assert_eq!(t.detect(), Detected::Networkd { network_file: None });
    let e = t.persist(&v4_static()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "systemd-networkd names no .network file for eth0; it is still configuring the link, \
         or no file matches it: retry later"
    );
}

#[test]
fn a_link_networkd_has_not_decided_on_yet_is_settling() {
    let t = Tree::new("nd-settling");
    // networkd not running (no state file): nothing to wait for.
    assert!(!settling(&t.roots, INDEX));
    t.file("run/systemd/netif/state", "OPER_STATE=routable\n");
    // Running, but the link not known yet, or not matched yet.
    assert!(settling(&t.roots, INDEX));
    for admin in ["pending", "initialized", ""] {
        t.link(admin, None);
        assert!(settling(&t.roots, INDEX), "{admin}");
    }
    // Decided: managed by a file, left unmanaged, or failed.
    for admin in ["configuring", "configured", "unmanaged", "failed", "linger"] {
        t.link(admin, None);
        assert!(!settling(&t.roots, INDEX), "{admin}");
    }
}

#[test]
fn a_link_networkd_leaves_unmanaged_goes_to_the_next_manager() {
    let t = Tree::new("nd-unmanaged");
    t.link("unmanaged", None);
    assert_eq!(t.detect(), Detected::None);
    t.dir("run/NetworkManager");
    assert_eq!(
        t.detect(),
        Detected::NetworkManager {
            connection_uuid: None
        }
    );
    t.file("etc/network/interfaces", "iface eth0 inet dhcp\n");
    assert_eq!(t.detect(), Detected::Ifupdown);
}

#[test]
fn ifupdown_is_detected_by_its_state() {
    let t = Tree::new("ifup-state");
    t.file(
        "etc/network/interfaces",
        "auto lo\niface lo inet loopback\n",
    );
    assert_eq!(t.detect(), Detected::None);
    t.file("run/network/ifstate", "lo=lo\neth0=eth0\n");
    assert_eq!(t.detect(), Detected::Ifupdown);
    fs::remove_file(t.path("run/network/ifstate")).unwrap();
    // ifupdown 0.8's file per interface; empty once the interface is down.
    t.file("run/network/ifstate.eth0", "");
    assert_eq!(t.detect(), Detected::None);
    t.file("run/network/ifstate.eth0", "eth0\n");
    assert_eq!(t.detect(), Detected::Ifupdown);
    // Without the interfaces file, the state says nothing.
    fs::remove_file(t.path("etc/network/interfaces")).unwrap();
    assert_eq!(t.detect(), Detected::None);
}

#[test]
fn ifupdown_is_detected_by_a_stanza_in_a_sourced_file() {
    let t = Tree::new("ifup-source");
    t.file(
        "etc/network/interfaces",
        "source /etc/network/interfaces.d/*\nsource ifaces/[a-c]*.cfg\nsource-directory parts\n",
    )
    .file("etc/network/interfaces.d/eth0", "iface eth0 inet dhcp\n")
    .file("etc/network/interfaces.d/.eth9", "iface eth9 inet dhcp\n")
    .file("etc/network/ifaces/b-eth1.cfg", "allow-hotplug eth1\n")
    .file("etc/network/ifaces/d-eth5.cfg", "auto eth5\n")
    .file("etc/network/parts/eth2", "auto eth2\n")
    .file("etc/network/parts/eth3.cfg", "auto eth3\n");
    let is = |name: &str| detect(&t.roots, name, 7);
    assert_eq!(is("eth0"), Detected::Ifupdown);
    assert_eq!(is("eth1"), Detected::Ifupdown);
    assert_eq!(is("eth2"), Detected::Ifupdown);
    // A dot file, a file the pattern does not match, a name
    // source-directory does not read.
    assert_eq!(is("eth9"), Detected::None);
    assert_eq!(is("eth5"), Detected::None);
    assert_eq!(is("eth3"), Detected::None);
    assert_eq!(is("eth4"), Detected::None);
}

#[test]
fn nothing_known_is_detected_as_none() {
    let t = Tree::new("none");
    assert_eq!(t.detect(), Detected::None);
    assert_eq!(t.detect().manager(), None);
    let e = t.persist(&v4_static()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "no network manager the agent can configure runs eth0"
    );
    assert_eq!(t.forget().unwrap(), Persisted::default());
}

// networkd.

#[test]
fn networkd_v4_static_on_a_dhcp_file_is_a_drop_in_keeping_dhcpv6() {
    let t = Tree::new("nd-v4");
    t.file("etc/systemd/network/50-eth0.network", PINNED_DHCP)
        .link("configured", Some("/etc/systemd/network/50-eth0.network"));
    let done = t.persist(&v4_static()).unwrap();
    assert_eq!(done.written, vec![t.path(DROPIN)]);
    assert!(done.removed.is_empty());
    assert_eq!(done.reload, Reload::Networkd { index: INDEX });
    assert_eq!(
        done.note.as_deref(),
        Some("systemd-networkd applies it at its next start or after `networkctl reload`")
    );
    assert_eq!(
        t.read(DROPIN),
        concat!(
            networkd_header!(),
            "# ipv4: static 192.0.2.10/24 gateway 192.0.2.1\n",
            "\n",
            "[Network]\n",
            "DHCP=ipv6\n",
            "Address=192.0.2.10/24\n",
            "Gateway=192.0.2.1\n",
        )
    );
    let mode = fs::metadata(t.path(DROPIN)).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o644);
    // The same setting again changes nothing.
    assert_eq!(t.persist(&v4_static()).unwrap(), Persisted::default());
    // The original is untouched.
    assert_eq!(t.read("etc/systemd/network/50-eth0.network"), PINNED_DHCP);
}

#[test]
fn networkd_dhcp_back_on_a_dhcp_file_removes_the_drop_in() {
    let t = Tree::new("nd-back");
    t.file("etc/systemd/network/50-eth0.network", PINNED_DHCP)
        .link("configured", Some("/etc/systemd/network/50-eth0.network"));
    t.persist(&v4_static()).unwrap();
    let done = t.persist(&v4(V4::Dhcp)).unwrap();
    assert!(done.written.is_empty());
    assert_eq!(
        done.removed,
        vec![
            t.path(DROPIN),
            t.path("etc/systemd/network/50-eth0.network.d")
        ]
    );
    assert!(!t.exists("etc/systemd/network/50-eth0.network.d"));
    assert_eq!(done.reload, Reload::Networkd { index: INDEX });

    // forget does the same, and leaves the administrator's drop-ins.
    t.file(
        "etc/systemd/network/50-eth0.network.d/10-mtu.conf",
        "[Link]\nMTUBytes=1400\n",
    );
    t.persist(&v4_static()).unwrap();
    let done = t.forget().unwrap();
    assert_eq!(done.removed, vec![t.path(DROPIN)]);
    assert_eq!(done.reload, Reload::Networkd { index: INDEX });
    assert!(t.exists("etc/systemd/network/50-eth0.network.d/10-mtu.conf"));
    assert_eq!(t.forget().unwrap(), Persisted::default());
}

#[test]
fn networkd_dhcp_on_a_static_less_file_without_dhcp_adds_it_to_the_drop_ins_value() {
    let t = Tree::new("nd-dhcp");
    // Pinned by MAC (written otherwise), DHCP from the last drop-in.
    t.file(
        "etc/systemd/network/50-eth0.network",
        "[Match]\nMACAddress=00:16:3E:5A:01:02\n\n[Network]\nDHCP=no\n",
    )
    .file(
        "etc/systemd/network/50-eth0.network.d/10-v6.conf",
        "[Network]\nDHCP=ipv6\n",
    )
    .link("configured", Some("/etc/systemd/network/50-eth0.network"));
    t.persist(&v4(V4::Dhcp)).unwrap();
    assert_eq!(
        t.read(DROPIN),
        concat!(
            networkd_header!(),
            "# ipv4: dhcp\n",
            "\n",
            "[Network]\n",
            "DHCP=yes\n",
        )
    );
}

#[test]
fn networkd_v6_static_and_autoconf() {
    let t = Tree::new("nd-v6");
    t.file("etc/systemd/network/50-eth0.network", PINNED_DHCP)
        .link("configured", Some("/etc/systemd/network/50-eth0.network"));
    t.persist(&v6_static()).unwrap();
    assert_eq!(
        t.read(DROPIN),
        concat!(
            networkd_header!(),
            "# ipv6: static 2001:db8::10/64 gateway fe80::1\n",
            "\n",
            "[Network]\n",
            "DHCP=ipv4\n",
            "IPv6AcceptRA=no\n",
            "Address=2001:db8::10/64\n",
            "Gateway=fe80::1\n",
        )
    );
    // Autoconf is the file's own behaviour (router advertisements are
    // accepted by default): nothing left to write.
    let done = t.persist(&v6(V6::Autoconf)).unwrap();
    assert!(done.written.is_empty());
    assert!(!t.exists(DROPIN));
}

#[test]
fn networkd_autoconf_where_the_file_refuses_ras_then_a_v4_setting_keeps_it() {
    let t = Tree::new("nd-ra");
    t.file(
        "etc/systemd/network/50-eth0.network",
        "[Match]\nName=eth0\n\n[Network]\nDHCP=ipv4\nIPv6AcceptRA=no\n",
    )
    .link("configured", Some("/etc/systemd/network/50-eth0.network"));
    t.persist(&v6(V6::Autoconf)).unwrap();
    assert_eq!(
        t.read(DROPIN),
        concat!(
            networkd_header!(),
            "# ipv6: autoconf\n",
            "\n",
            "[Network]\n",
            "DHCP=ipv4\n",
            "IPv6AcceptRA=yes\n",
        )
    );
    // IPv6 left out: it keeps what the agent set.
    t.persist(&v4_static()).unwrap();
    assert_eq!(
        t.read(DROPIN),
        concat!(
            networkd_header!(),
            "# ipv4: static 192.0.2.10/24 gateway 192.0.2.1\n",
            "# ipv6: autoconf\n",
            "\n",
            "[Network]\n",
            "DHCP=no\n",
            "IPv6AcceptRA=yes\n",
            "Address=192.0.2.10/24\n",
            "Gateway=192.0.2.1\n",
        )
    );
}

const ADMIN_STATIC: &str = "\
# The administrator's own.
[Match]
Name=eth0

[Link]
MTUBytes=9000

[Network]
Address=10.0.0.5/24
Gateway=10.0.0.1
Address=2001:db8::5/64
DNS=10.0.0.53

[Address]
Address=10.0.1.5/24

[Route]
Destination=10.9.0.0/16
Gateway=10.0.0.254
";

const REPLACEMENT: &str = "etc/systemd/network/50-eth0-xen-guest-agent-00163e5a0102.network";

#[test]
fn networkd_original_with_its_own_static_address_is_replaced() {
    let t = Tree::new("nd-replace");
    t.file("etc/systemd/network/50-eth0.network", ADMIN_STATIC)
        .link("configured", Some("/etc/systemd/network/50-eth0.network"));
    let done = t.persist(&v4_static()).unwrap();
    assert_eq!(done.written, vec![t.path(REPLACEMENT)]);
    assert!(!t.exists(DROPIN));
    let original = t.path("etc/systemd/network/50-eth0.network");
    let copy = format!(
        "# {}\n\
         # The administrator's own.\n\
         [Link]\n\
         MTUBytes=9000\n\
         \n\
         [Network]\n\
         Address=2001:db8::5/64\n\
         DNS=10.0.0.53\n\
         \n\
         [Route]\n\
         Destination=10.9.0.0/16\n\
         Gateway=10.0.0.254\n",
        original.display()
    );
    assert_eq!(
        t.read(REPLACEMENT),
        format!(
            concat!(
                networkd_header!(),
                "# ipv4: static 192.0.2.10/24 gateway 192.0.2.1\n",
                replacement_comment!(),
                "# replaces: {}\n",
                "\n",
                "[Match]\n",
                "MACAddress=00:16:3e:5a:01:02\n",
                "Name=eth0\n",
                "\n",
                "{}",
                "\n",
                "[Network]\n",
                "DHCP=no\n",
                "Address=192.0.2.10/24\n",
                "Gateway=192.0.2.1\n",
            ),
            original.display(),
            copy
        )
    );

    // After `networkctl reload`, the link's file is the replacement: the
    // next setting still starts from the original, and keeps IPv4.
    t.link(
        "configured",
        Some("/etc/systemd/network/50-eth0-xen-guest-agent-00163e5a0102.network"),
    );
    let done = t.persist(&v6(V6::Autoconf)).unwrap();
    assert_eq!(done.written, vec![t.path(REPLACEMENT)]);
    let copy = copy.replace("Address=2001:db8::5/64\n", "");
    assert_eq!(
        t.read(REPLACEMENT),
        format!(
            concat!(
                networkd_header!(),
                "# ipv4: static 192.0.2.10/24 gateway 192.0.2.1\n",
                "# ipv6: autoconf\n",
                replacement_comment!(),
                "# replaces: {}\n",
                "\n",
                "[Match]\n",
                "MACAddress=00:16:3e:5a:01:02\n",
                "Name=eth0\n",
                "\n",
                "{}",
                "\n",
                "[Network]\n",
                "DHCP=no\n",
                "IPv6AcceptRA=yes\n",
                "Address=192.0.2.10/24\n",
                "Gateway=192.0.2.1\n",
            ),
            original.display(),
            copy
        )
    );

    let done = t.forget().unwrap();
    assert_eq!(done.removed, vec![t.path(REPLACEMENT)]);
    assert_eq!(t.read("etc/systemd/network/50-eth0.network"), ADMIN_STATIC);
}

#[test]
fn networkd_file_of_several_interfaces_is_replaced_for_this_one() {
    let t = Tree::new("nd-shared");
    t.file(
        "run/systemd/network/80-dhcp.network",
        "[Match]\nName=en* eth*\n\n[Network]\nDHCP=yes\n",
    )
    .file(
        "etc/systemd/network/80-dhcp.network.d/mtu.conf",
        "[Link]\nMTUBytes=1400\n",
    )
    .link("configured", Some("/run/systemd/network/80-dhcp.network"));
    let done = t.persist(&v4_static()).unwrap();
    let path = "etc/systemd/network/80-dhcp-xen-guest-agent-00163e5a0102.network";
    assert_eq!(done.written, vec![t.path(path)]);
    // Matched before the original, whose drop-ins reach every interface.
    assert!("80-dhcp-xen-guest-agent-00163e5a0102.network" < "80-dhcp.network");
    assert!(!t.exists("etc/systemd/network/80-dhcp.network.d/90-xen-guest-agent.conf"));
    let original = t.path("run/systemd/network/80-dhcp.network");
    let dropin = t.path("etc/systemd/network/80-dhcp.network.d/mtu.conf");
    assert_eq!(
        t.read(path),
        format!(
            concat!(
                networkd_header!(),
                "# ipv4: static 192.0.2.10/24 gateway 192.0.2.1\n",
                replacement_comment!(),
                "# replaces: {0}\n",
                "\n",
                "[Match]\n",
                "MACAddress=00:16:3e:5a:01:02\n",
                "Name=eth0\n",
                "\n",
                "# {0}\n",
                "[Network]\n",
                "DHCP=yes\n",
                "\n",
                "# {1}\n",
                "[Link]\n",
                "MTUBytes=1400\n",
                "\n",
                "[Network]\n",
                "DHCP=ipv6\n",
                "Address=192.0.2.10/24\n",
                "Gateway=192.0.2.1\n",
            ),
            original.display(),
            dropin.display()
        )
    );
}

#[test]
fn networkd_drop_in_becomes_a_replacement_when_the_original_gets_an_address() {
    let t = Tree::new("nd-switch");
    t.file("etc/systemd/network/50-eth0.network", PINNED_DHCP)
        .link("configured", Some("/etc/systemd/network/50-eth0.network"));
    t.persist(&v4_static()).unwrap();
    assert!(t.exists(DROPIN));
    t.file(
        "etc/systemd/network/50-eth0.network",
        "[Match]\nName=eth0\n\n[Network]\nDHCP=yes\nAddress=10.0.0.5/24\n",
    );
    let done = t.persist(&Wanted::default()).unwrap();
    assert_eq!(done.written, vec![t.path(REPLACEMENT)]);
    assert_eq!(
        done.removed,
        vec![
            t.path(DROPIN),
            t.path("etc/systemd/network/50-eth0.network.d")
        ]
    );
    assert!(t.read(REPLACEMENT).ends_with(
        "[Network]\nDHCP=yes\n\n[Network]\nDHCP=ipv6\nAddress=192.0.2.10/24\nGateway=192.0.2.1\n"
    ));
}

// ifupdown.

const INTERFACES: &str = "\
# interfaces(5) file used by ifup(8) and ifdown(8)
source /etc/network/interfaces.d/*

auto lo
iface lo inet loopback
";

const OURS: &str = "etc/network/interfaces.d/xen-guest-agent-eth0";

#[test]
fn ifupdown_setting_of_an_unconfigured_interface_is_a_new_file() {
    let t = Tree::new("ifup-new");
    t.file("etc/network/interfaces", INTERFACES)
        .file("run/network/ifstate", "lo=lo\neth0=eth0\n");
    assert_eq!(t.detect(), Detected::Ifupdown);
    let done = t.persist(&v4_static()).unwrap();
    assert_eq!(done.written, vec![t.path(OURS)]);
    assert_eq!(
        done.note.as_deref(),
        Some("ifupdown applies it at the next `ifup eth0` (at boot)")
    );
    assert_eq!(done.reload, Reload::Nothing);
    assert_eq!(
        t.read(OURS),
        concat!(
            ifupdown_header!(),
            "allow-hotplug eth0\n",
            "\n",
            "iface eth0 inet static\n",
            "\taddress 192.0.2.10/24\n",
            "\tgateway 192.0.2.1\n",
        )
    );
    let dir = fs::metadata(t.path("etc/network/interfaces.d")).unwrap();
    assert_eq!(dir.permissions().mode() & 0o777, 0o755);
    assert_eq!(t.read("etc/network/interfaces"), INTERFACES);
    // Known by its stanza now, without the state.
    fs::remove_file(t.path("run/network/ifstate")).unwrap();
    assert_eq!(t.detect(), Detected::Ifupdown);
}

#[test]
fn ifupdown_file_of_the_agents_is_rewritten() {
    let t = Tree::new("ifup-rewrite");
    t.file("etc/network/interfaces", INTERFACES)
        .file("run/network/ifstate", "eth0=eth0\n");
    t.persist(&v4_static()).unwrap();
    t.persist(&v6(V6::Autoconf)).unwrap();
    assert_eq!(
        t.read(OURS),
        concat!(
            ifupdown_header!(),
            "allow-hotplug eth0\n",
            "\n",
            "iface eth0 inet static\n",
            "\taddress 192.0.2.10/24\n",
            "\tgateway 192.0.2.1\n",
            "\n",
            "iface eth0 inet6 auto\n",
        )
    );
    let done = t.persist(&v4(V4::Dhcp)).unwrap();
    assert_eq!(done.written, vec![t.path(OURS)]);
    assert_eq!(
        t.read(OURS),
        concat!(
            ifupdown_header!(),
            "allow-hotplug eth0\n",
            "\n",
            "iface eth0 inet dhcp\n",
            "\n",
            "iface eth0 inet6 auto\n",
        )
    );
    assert_eq!(t.persist(&v4(V4::Dhcp)).unwrap(), Persisted::default());
    let done = t.forget().unwrap();
    assert_eq!(done.removed, vec![t.path(OURS)]);
    assert!(!t.exists(OURS));
}

#[test]
fn ifupdown_interface_brought_up_elsewhere_gets_no_allow_hotplug() {
    let t = Tree::new("ifup-auto");
    t.file(
        "etc/network/interfaces",
        &format!("{INTERFACES}\nauto eth0\n"),
    );
    let mut w = v6_static();
    if let Some(V6::Static(s)) = &mut w.v6 {
        s.gateway = None;
    }
    t.persist(&w).unwrap();
    assert_eq!(
        t.read(OURS),
        concat!(
            ifupdown_header!(),
            "\n",
            "iface eth0 inet6 static\n",
            "\taddress 2001:db8::10/64\n",
        )
    );
}

#[test]
fn ifupdown_stanza_of_the_administrators_is_not_edited() {
    let t = Tree::new("ifup-admin");
    t.file(
        "etc/network/interfaces",
        "source /etc/network/interfaces.d/*\n\nallow-hotplug eth0\niface eth0 inet dhcp\n",
    )
    .file(
        "etc/network/interfaces.d/eth0-v6",
        "# IPv6\n\niface eth0 inet6 \\\n    static\n\taddress 2001:db8::5/64\n",
    );
    let e = t.persist(&v4_static()).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "eth0 is configured in {} line 4: applied live only; to let dom0 set it, move that \
             stanza to {}, which the agent rewrites, or remove it",
            t.path("etc/network/interfaces").display(),
            t.path(OURS).display()
        )
    );
    let e = t.persist(&v6(V6::Autoconf)).unwrap_err();
    assert!(e.to_string().starts_with(&format!(
        "eth0 is configured in {} line 3: applied live only",
        t.path("etc/network/interfaces.d/eth0-v6").display()
    )));
    assert!(!t.exists(OURS));
    // What their stanza says already needs nothing.
    assert_eq!(t.persist(&v4(V4::Dhcp)).unwrap(), Persisted::default());
    assert!(!t.exists(OURS));
}

#[test]
fn ifupdown_without_an_include_of_interfaces_d_is_an_error() {
    let t = Tree::new("ifup-noinclude");
    t.file(
        "etc/network/interfaces",
        "auto lo\niface lo inet loopback\n",
    )
    .file("run/network/ifstate", "eth0=eth0\n");
    let e = t.persist(&v4_static()).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "{} does not include {}: no `source` or `source-directory` line reads it; add \
             `source /etc/network/interfaces.d/*` to /etc/network/interfaces (source-directory \
             reads only names of letters, digits, - and _)",
            t.path("etc/network/interfaces").display(),
            t.path(OURS).display()
        )
    );
    assert!(!t.exists(OURS));

    // source-directory reads the agent's file, unless the name has a dot.
    t.file(
        "etc/network/interfaces",
        "source-directory /etc/network/interfaces.d\n",
    );
    t.persist(&v4_static()).unwrap();
    assert!(t.exists(OURS));
    let e = persist(
        &t.roots,
        &Detected::Ifupdown,
        "eth0.100",
        INDEX,
        MAC,
        &v4(V4::Dhcp),
    )
    .unwrap_err();
    assert!(e.to_string().contains("does not include"));

    // No interfaces file at all.
    fs::remove_file(t.path("etc/network/interfaces")).unwrap();
    let e = persist(
        &t.roots,
        &Detected::Ifupdown,
        NAME,
        INDEX,
        MAC,
        &v4(V4::Dhcp),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "cannot configure eth0 with ifupdown: there is no {}",
            t.path("etc/network/interfaces").display()
        )
    );
}

// NetworkManager.

/// The UUID of the guest's own profile, and of the agent's for MAC.
const GUEST: &str = "0b7c2c4e-5d1f-4e2a-9a55-3c1d2e4f5a6b";
const NM_UUID: &str = "5ca1ab1e-0000-8000-8000-00163e5a0102";

const NM_PROFILE: &str =
    "etc/NetworkManager/system-connections/xen-guest-agent-00163e5a0102.nmconnection";
const GUEST_PROFILE: &str = "etc/NetworkManager/system-connections/Wired connection 1.nmconnection";

/// The guest's profile as NetworkManager writes it: DHCP, autoconf.
const GUEST_AUTO: &str = "\
[connection]
id=Wired connection 1
uuid=0b7c2c4e-5d1f-4e2a-9a55-3c1d2e4f5a6b
type=ethernet
autoconnect-priority=-999
interface-name=eth0
timestamp=1700000000

[ethernet]

[ipv4]
method=auto

[ipv6]
addr-gen-mode=stable-privacy
method=auto
# Comments before a section are the next section's.

[proxy]
";

/// The `[connection]` and `[ethernet]` sections of the agent's profile.
macro_rules! nm_connection {
    () => {
        "\n\
         [connection]\n\
         id=xen-guest-agent eth0\n\
         uuid=5ca1ab1e-0000-8000-8000-00163e5a0102\n\
         type=ethernet\n\
         interface-name=eth0\n\
         autoconnect=true\n\
         autoconnect-priority=100\n\
         \n\
         [ethernet]\n\
         mac-address=00:16:3E:5A:01:02\n"
    };
}

/// dom0's static IPv4 and IPv6 sections.
macro_rules! nm_v4_static {
    () => {
        "\n[ipv4]\nmethod=manual\naddress1=192.0.2.10/24\ngateway=192.0.2.1\n"
    };
}
macro_rules! nm_v6_static {
    () => {
        "\n[ipv6]\nmethod=manual\naddress1=2001:db8::10/64\ngateway=fe80::1\n"
    };
}

impl Tree {
    /// NetworkManager's state of device INDEX.
    fn nm_device(&self, managed: Option<&str>, uuid: Option<&str>) -> &Tree {
        let mut s = String::from("[device]\n");
        if let Some(m) = managed {
            s += &format!("managed={m}\n");
        }
        s += "perm-hw-addr-fake=\n";
        if let Some(u) = uuid {
            s += &format!("connection-uuid={u}\n");
        }
        s += "route-metric-default-effective=100\n";
        self.file(&format!("run/NetworkManager/devices/{INDEX}"), &s)
    }

    fn mode(&self, rel: &str) -> u32 {
        fs::metadata(self.path(rel)).unwrap().permissions().mode() & 0o7777
    }
}

fn nm(uuid: &str) -> Reload {
    Reload::NetworkManager {
        uuid: uuid.to_string(),
        interface: NAME.to_string(),
    }
}

#[test]
fn network_manager_is_detected_by_its_device_state() {
    let t = Tree::new("nm-detect");
    // No state, NetworkManager not running.
    assert_eq!(t.detect(), Detected::None);
    // Running, no state of the device yet.
    t.dir("run/NetworkManager");
    assert_eq!(
        t.detect(),
        Detected::NetworkManager {
            connection_uuid: None
        }
    );
    t.nm_device(Some("true"), Some(GUEST));
    let d = t.detect();
    assert_eq!(
        d,
        Detected::NetworkManager {
            connection_uuid: Some(GUEST.to_string())
        }
    );
    assert_eq!(d.manager(), Some(Manager::NetworkManager));
    // Managed, nothing active.
    t.nm_device(Some("true"), None);
    assert_eq!(
        t.detect(),
        Detected::NetworkManager {
            connection_uuid: None
        }
    );
    // A UUID unfit for a comment or a message is not taken.
    t.nm_device(Some("1"), Some("x y"));
    assert_eq!(
        t.detect(),
        Detected::NetworkManager {
            connection_uuid: None
        }
    );
    // Unmanaged by the user, or by NetworkManager's configuration (no
    // managed=): not NetworkManager's, though it runs.
    t.nm_device(Some("false"), None);
    assert_eq!(t.detect(), Detected::None);
    t.nm_device(None, None);
    assert_eq!(t.detect(), Detected::None);
    let e = t.persist(&v4_static()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "no network manager the agent can configure runs eth0"
    );
}

#[test]
fn network_manager_v4_static_copies_ipv6_from_the_active_keyfile() {
    let t = Tree::new("nm-v4");
    t.file(GUEST_PROFILE, GUEST_AUTO)
        .nm_device(Some("true"), Some(GUEST));
    let done = t.persist(&v4_static()).unwrap();
    assert_eq!(done.written, vec![t.path(NM_PROFILE)]);
    assert!(done.removed.is_empty());
    assert_eq!(done.reload, nm(NM_UUID));
    assert_eq!(
        done.note.as_deref(),
        Some(
            "NetworkManager applies it when it activates the profile: at boot, or after \
             `nmcli connection reload` and `nmcli connection up \
             5ca1ab1e-0000-8000-8000-00163e5a0102`"
        )
    );
    assert_eq!(
        t.read(NM_PROFILE),
        format!(
            concat!(
                networkd_header!(),
                "# ipv4: static 192.0.2.10/24 gateway 192.0.2.1\n",
                "# guest profile: 0b7c2c4e-5d1f-4e2a-9a55-3c1d2e4f5a6b\n",
                nm_connection!(),
                nm_v4_static!(),
                "\n",
                "# Copied from {} (profile 0b7c2c4e-5d1f-4e2a-9a55-3c1d2e4f5a6b), active before.\n",
                "[ipv6]\n",
                "addr-gen-mode=stable-privacy\n",
                "method=auto\n",
            ),
            t.path(GUEST_PROFILE).display()
        )
    );
    // Only root may read it, or NetworkManager ignores it.
    assert_eq!(t.mode(NM_PROFILE), 0o600);
    // The same setting again changes nothing.
    assert_eq!(t.persist(&v4_static()).unwrap(), Persisted::default());
    // The same text with another mode is rewritten.
    let text = t.read(NM_PROFILE);
    fs::set_permissions(t.path(NM_PROFILE), fs::Permissions::from_mode(0o644)).unwrap();
    let done = t.persist(&v4_static()).unwrap();
    assert_eq!(done.written, vec![t.path(NM_PROFILE)]);
    assert_eq!(t.mode(NM_PROFILE), 0o600);
    assert_eq!(t.read(NM_PROFILE), text);
    // The guest's profile is untouched, no temp file is left.
    assert_eq!(t.read(GUEST_PROFILE), GUEST_AUTO);
    assert_eq!(
        fs::read_dir(t.path("etc/NetworkManager/system-connections"))
            .unwrap()
            .count(),
        2
    );
}

#[test]
fn network_manager_v6_static_copies_ipv4_from_the_active_keyfile_in_run() {
    let t = Tree::new("nm-v6");
    let guest = "run/NetworkManager/system-connections/netplan-eth0.nmconnection";
    t.file(
        guest,
        "[connection]\n\
         id=netplan-eth0\n\
         uuid=0B7C2C4E-5D1F-4E2A-9A55-3C1D2E4F5A6B\n\
         type=ethernet\n\
         \n\
         [ipv4]\n\
         method=manual\n\
         address1=10.0.0.5/24,10.0.0.1\n\
         dns=10.0.0.53;\n\
         \n\
         [ipv6]\n\
         method=auto\n",
    )
    // A profile of the same UUID NetworkManager would ignore (hidden).
    .file(
        "run/NetworkManager/system-connections/.netplan-eth0.nmconnection",
        GUEST_AUTO,
    )
    .nm_device(Some("true"), Some(GUEST));
    let done = t.persist(&v6_static()).unwrap();
    assert_eq!(done.written, vec![t.path(NM_PROFILE)]);
    assert_eq!(
        t.read(NM_PROFILE),
        format!(
            concat!(
                networkd_header!(),
                "# ipv6: static 2001:db8::10/64 gateway fe80::1\n",
                "# guest profile: 0b7c2c4e-5d1f-4e2a-9a55-3c1d2e4f5a6b\n",
                nm_connection!(),
                "\n",
                "# Copied from {} (profile 0b7c2c4e-5d1f-4e2a-9a55-3c1d2e4f5a6b), active before.\n",
                "[ipv4]\n",
                "method=manual\n",
                "address1=10.0.0.5/24,10.0.0.1\n",
                "dns=10.0.0.53;\n",
                nm_v6_static!(),
            ),
            t.path(guest).display()
        )
    );
}

#[test]
fn network_manager_both_static_then_one_family_back_keeps_the_other() {
    let t = Tree::new("nm-both");
    t.file(GUEST_PROFILE, GUEST_AUTO)
        .nm_device(Some("true"), Some(GUEST));
    let both = Wanted {
        v4: v4_static().v4,
        v6: v6_static().v6,
    };
    let done = t.persist(&both).unwrap();
    assert_eq!(done.written, vec![t.path(NM_PROFILE)]);
    assert_eq!(
        t.read(NM_PROFILE),
        concat!(
            networkd_header!(),
            "# ipv4: static 192.0.2.10/24 gateway 192.0.2.1\n",
            "# ipv6: static 2001:db8::10/64 gateway fe80::1\n",
            "# guest profile: 0b7c2c4e-5d1f-4e2a-9a55-3c1d2e4f5a6b\n",
            nm_connection!(),
            nm_v4_static!(),
            nm_v6_static!(),
        )
    );
    // Activated (the agent restarted since: only IPv4 comes): IPv6 keeps
    // what the agent set.
    t.nm_device(Some("true"), Some(NM_UUID));
    let done = t.persist(&v4(V4::Dhcp)).unwrap();
    assert_eq!(done.reload, nm(NM_UUID));
    assert_eq!(
        t.read(NM_PROFILE),
        concat!(
            networkd_header!(),
            "# ipv4: dhcp\n",
            "# ipv6: static 2001:db8::10/64 gateway fe80::1\n",
            "# guest profile: 0b7c2c4e-5d1f-4e2a-9a55-3c1d2e4f5a6b\n",
            nm_connection!(),
            "\n[ipv4]\nmethod=auto\n",
            nm_v6_static!(),
        )
    );
}

#[test]
fn network_manager_dhcp_back_removes_the_profile_and_names_the_guests() {
    let t = Tree::new("nm-back");
    t.file(GUEST_PROFILE, GUEST_AUTO)
        .nm_device(Some("true"), Some(GUEST));
    t.persist(&v4_static()).unwrap();
    // Activated: the state names the agent's profile now.
    t.nm_device(Some("true"), Some(NM_UUID));
    let done = t.persist(&v4(V4::Dhcp)).unwrap();
    assert!(done.written.is_empty());
    assert_eq!(done.removed, vec![t.path(NM_PROFILE)]);
    assert_eq!(done.reload, nm(GUEST));
    assert_eq!(
        done.note.as_deref(),
        Some(
            "NetworkManager stops using it after `nmcli connection reload` and \
             `nmcli connection up 0b7c2c4e-5d1f-4e2a-9a55-3c1d2e4f5a6b`"
        )
    );
    assert!(!t.exists(NM_PROFILE));
    assert_eq!(t.read(GUEST_PROFILE), GUEST_AUTO);
    // Nothing left to remove.
    assert_eq!(t.persist(&v4(V4::Dhcp)).unwrap(), Persisted::default());

    // forget removes it too (the guest's profile active again, as the
    // caller asked).
    t.nm_device(Some("true"), Some(GUEST));
    t.persist(&v6_static()).unwrap();
    t.nm_device(Some("true"), Some(NM_UUID));
    let done = t.forget().unwrap();
    assert_eq!(done.removed, vec![t.path(NM_PROFILE)]);
    assert_eq!(done.reload, nm(GUEST));
    assert_eq!(t.forget().unwrap(), Persisted::default());

    // DHCP where the guest's profile is static: the profile says it.
    t.file(
        GUEST_PROFILE,
        &GUEST_AUTO.replacen(
            "[ipv4]\nmethod=auto\n",
            "[ipv4]\nmethod=manual\naddress1=10.0.0.5/24\n",
            1,
        ),
    )
    .nm_device(Some("true"), Some(GUEST));
    let done = t.persist(&v4(V4::Dhcp)).unwrap();
    assert_eq!(done.written, vec![t.path(NM_PROFILE)]);
    assert!(t.read(NM_PROFILE).contains(concat!(
        "# ipv4: dhcp\n",
        "# guest profile: 0b7c2c4e-5d1f-4e2a-9a55-3c1d2e4f5a6b\n",
    )));
    assert!(t
        .read(NM_PROFILE)
        .contains("\n[ipv4]\nmethod=auto\n\n# Copied from "));
}

#[test]
fn network_manager_dhcp_back_without_a_known_guest_profile_activates_nothing() {
    let t = Tree::new("nm-back-unknown");
    t.nm_device(Some("true"), None);
    let done = t.persist(&v4_static()).unwrap();
    assert_eq!(done.reload, nm(NM_UUID));
    // No profile active to copy IPv6 from: autoconf.
    assert_eq!(
        t.read(NM_PROFILE),
        concat!(
            networkd_header!(),
            "# ipv4: static 192.0.2.10/24 gateway 192.0.2.1\n",
            nm_connection!(),
            nm_v4_static!(),
            "\n[ipv6]\nmethod=auto\n",
        )
    );
    let done = t.persist(&v4(V4::Dhcp)).unwrap();
    assert_eq!(done.removed, vec![t.path(NM_PROFILE)]);
    assert_eq!(done.reload, nm(""));
    assert_eq!(
        done.note.as_deref(),
        Some("NetworkManager stops using it after `nmcli connection reload`")
    );
}

#[test]
fn network_manager_profile_that_is_not_a_keyfile_cannot_be_copied() {
    let t = Tree::new("nm-ifcfg");
    let ifcfg = "etc/sysconfig/network-scripts/ifcfg-eth0";
    t.file(
        ifcfg,
        &format!("TYPE=Ethernet\nBOOTPROTO=dhcp\nNAME=eth0\nUUID=\"{GUEST}\"\nDEVICE=eth0\n"),
    )
    .nm_device(Some("true"), Some(GUEST));
    let e = t.persist(&v4_static()).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "the active NetworkManager profile {GUEST} of eth0 is not a keyfile but {}, whose \
             ipv6 settings the agent cannot copy; have dom0 set ipv6 too, or convert the \
             profile to a keyfile (`nmcli connection migrate {GUEST}`)",
            t.path(ifcfg).display()
        )
    );
    assert!(!t.exists(NM_PROFILE));
    // Nothing to write: no error.
    assert_eq!(t.persist(&v4(V4::Dhcp)).unwrap(), Persisted::default());
    // With both families, nothing is copied.
    let both = Wanted {
        v4: v4_static().v4,
        v6: Some(V6::Autoconf),
    };
    let done = t.persist(&both).unwrap();
    assert_eq!(done.written, vec![t.path(NM_PROFILE)]);
    assert!(t.read(NM_PROFILE).ends_with("\n[ipv6]\nmethod=auto\n"));

    // A profile on no disk (NetworkManager's in-memory default before
    // 1.20): autoconf.
    fs::remove_file(t.path(NM_PROFILE)).unwrap();
    fs::remove_file(t.path(ifcfg)).unwrap();
    t.persist(&v4_static()).unwrap();
    assert!(t
        .read(NM_PROFILE)
        .ends_with(concat!(nm_v4_static!(), "\n[ipv6]\nmethod=auto\n")));
}

#[test]
fn keyfiles_network_manager_ignores_are_ignored() {
    use super::networkmanager::ignored;
    assert!(!ignored("Wired connection 1", false));
    assert!(ignored("Wired connection 1", true));
    assert!(!ignored("eth0.nmconnection", true));
    assert!(ignored(".nmconnection", true));
    assert!(ignored(".eth0.nmconnection", false));
    assert!(ignored("eth0~", false));
    assert!(ignored("eth0.Ab12cD", false));
    assert!(ignored("ca.PEM", false));
    assert!(!ignored("eth0.nmconnection", false));
}

// Validation.

#[test]
fn invalid_names_are_refused_before_any_file_is_touched() {
    let t = Tree::new("names");
    t.file("etc/network/interfaces", INTERFACES);
    let long = "a".repeat(16);
    for name in [
        "",
        ".",
        "..",
        "../x",
        "eth0/../../x",
        "eth 0",
        "eth0\n",
        "éth0",
        long.as_str(),
    ] {
        for detected in [
            Detected::Ifupdown,
            Detected::Networkd {
                network_file: Some(PathBuf::from("/etc/systemd/network/50-eth0.network")),
            },
            Detected::NetworkManager {
                connection_uuid: Some(GUEST.to_string()),
            },
            Detected::NetworkManager {
                connection_uuid: None,
            },
        ] {
            let e = persist(&t.roots, &detected, name, INDEX, MAC, &v4_static()).unwrap_err();
            assert!(
                e.to_string().starts_with("refusing the interface name"),
                "{name:?}: {e}"
            );
            let e = forget(&t.roots, &detected, name, INDEX, MAC).unwrap_err();
            assert!(e.to_string().starts_with("refusing the interface name"));
        }
    }
    assert_eq!(fs::read_dir(t.path("etc/network")).unwrap().count(), 1);
    assert!(!t.exists("etc/NetworkManager"));
    assert!(check_name("a23456789012345").is_ok());
    assert!(check_name("eth0.100").is_ok());
    assert!(check_name("br-lan_1:0").is_ok());
}

#[test]
fn invalid_macs_and_prefixes_are_refused() {
    let t = Tree::new("macs");
    t.file("etc/network/interfaces", INTERFACES);
    for mac in [
        "",
        "00:16:3e:5a:01",
        "00-16-3e-5a-01-02",
        "00:16:3e:5a:01:0g",
        "00:16:3e:5a:01:02\n",
    ] {
        let e = persist(
            &t.roots,
            &Detected::Ifupdown,
            NAME,
            INDEX,
            mac,
            &v4_static(),
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("refusing the MAC address"), "{e}");
    }
    let mut w = v4_static();
    if let Some(V4::Static(s)) = &mut w.v4 {
        s.prefix = 33;
    }
    let e = persist(&t.roots, &Detected::Ifupdown, NAME, INDEX, MAC, &w).unwrap_err();
    assert_eq!(
        e.to_string(),
        "refusing 192.0.2.10/33 for eth0: an IPv4 prefix is at most 32"
    );
    assert!(!t.exists(OURS));
    // Upper case is written in lower case.
    persist(
        &t.roots,
        &Detected::Ifupdown,
        NAME,
        INDEX,
        "00:16:3E:5A:01:02",
        &v4_static(),
    )
    .unwrap();
    assert!(t
        .read(OURS)
        .contains("# interface: eth0 00:16:3e:5a:01:02\n"));
}

// Helpers.

#[test]
fn atomic_write_creates_directories_and_leaves_no_temp_file() {
    let t = Tree::new("atomic");
    let path = t.path("etc/a/b/file");
    assert!(write_atomic(&path, "one\n").unwrap());
    assert_eq!(t.read("etc/a/b/file"), "one\n");
    for d in ["etc/a", "etc/a/b"] {
        let mode = fs::metadata(t.path(d)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o755, "{d}");
    }
    let mode = fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o644);
    assert!(!write_atomic(&path, "one\n").unwrap());
    assert!(write_atomic(&path, "two\n").unwrap());
    assert_eq!(t.read("etc/a/b/file"), "two\n");
    let names: Vec<_> = fs::read_dir(t.path("etc/a/b"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("file")]);
    assert!(remove(&path).unwrap());
    assert!(!remove(&path).unwrap());
    // A failure names the file.
    let blocker = t.path("etc/plain");
    fs::write(&blocker, "").unwrap();
    let e = write_atomic(&blocker.join("file"), "x").unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "cannot write {}: Not a directory (os error 20)",
            blocker.join("file").display()
        )
    );
}

#[test]
fn shell_patterns_match_as_ifupdown_expands_them() {
    use super::ifupdown::fnmatch;
    assert!(fnmatch("*", "eth0"));
    assert!(!fnmatch("*", ".eth0"));
    assert!(fnmatch(".*", ".eth0"));
    assert!(fnmatch("*.cfg", "a.cfg"));
    assert!(!fnmatch("*.cfg", "a.cfg~"));
    assert!(fnmatch("[a-c]x", "bx"));
    assert!(!fnmatch("[!a]x", "ax"));
    assert!(fnmatch("[]a]x", "]x"));
    assert!(fnmatch("a\\*", "a*"));
    assert!(!fnmatch("a\\*", "ab"));
    assert!(fnmatch("*a*b", "xxaxxb"));
    assert!(!fnmatch("*a*b", "xxaxxbc"));
    assert!(fnmatch("e?h*", "eth0"));
    assert!(fnmatch("[x", "[x"));
}
