//! The nodes libxl 4.17 creates for a PV guest (checked against
//! `xenstore-ls -p` of a real guest, see /work/shared/xenvm/README.md), and
//! the extra nodes other toolstacks add (XAPI's `control/feature-balloon`,
//! SR-IOV VFs).

use crate::perms::{Access, Perms};

/// What the toolstack knows about the guest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainConfig {
    /// The guest's domain id (changes on save/restore and migration).
    pub domid: u32,
    /// `name`.
    pub name: String,
    /// The VM's UUID, in `vm` = `/vm/<uuid>`.
    pub uuid: String,
    /// `memory/target` and `memory/static-max`, in KiB.
    pub memory_kib: u64,
    /// `(VIF id, MAC)` of each VIF.
    pub vifs: Vec<(u32, String)>,
}

impl DomainConfig {
    /// A guest like the one of the xenvm harness: `domU`, 256 MiB, one VIF
    /// with MAC `00:16:3e:5e:00:01`.
    pub fn new(domid: u32) -> DomainConfig {
        DomainConfig {
            domid,
            name: "domU".to_string(),
            uuid: "4138c0da-e57b-11f1-99fd-0a05fc0aa755".to_string(),
            memory_kib: 262144,
            vifs: vec![(0, "00:16:3e:5e:00:01".to_string())],
        }
    }
}

/// One node to create: absolute path, value, permissions. Missing parents
/// are created with their parent's permissions.
pub type NodeSpec = (String, String, Perms);

/// Dom0-owned, readable by the guest: `(n0,r<domid>)`.
fn ro(domid: u32) -> Perms {
    Perms::new(0, Access::None).with(domid, Access::Read)
}

/// Guest-owned: `(n<domid>)`.
fn rw(domid: u32) -> Perms {
    Perms::new(domid, Access::None)
}

/// Guest-owned, readable by dom0: `(n<domid>,r0)` (frontend device nodes).
fn frontend(domid: u32) -> Perms {
    Perms::new(domid, Access::None).with(0, Access::Read)
}

/// The guest's home, its VM entry and its backends, in libxl's order.
pub fn skeleton(cfg: &DomainConfig) -> Vec<NodeSpec> {
    let d = cfg.domid;
    let home = format!("/local/domain/{d}");
    let mut v: Vec<NodeSpec> = Vec::new();
    let mut add = |rel: &str, value: &str, perms: Perms| {
        let path = if rel.is_empty() {
            home.clone()
        } else {
            format!("{home}/{rel}")
        };
        v.push((path, value.to_string(), perms));
    };
    let mem = cfg.memory_kib.to_string();
    add("", "", ro(d));
    add("vm", &format!("/vm/{}", cfg.uuid), ro(d));
    add("name", &cfg.name, ro(d));
    add("cpu", "", ro(d));
    add("cpu/0", "", ro(d));
    add("cpu/0/availability", "online", ro(d));
    add("memory", "", ro(d));
    add("memory/static-max", &mem, ro(d));
    add("memory/target", &mem, ro(d));
    add("memory/videoram", "0", ro(d));
    add("device", "", ro(d));
    add("device/suspend", "", ro(d));
    add("device/suspend/event-channel", "", rw(d));
    add("device/vif", "", ro(d));
    add("control", "", ro(d));
    add("control/shutdown", "", rw(d));
    add("control/feature-poweroff", "1", rw(d));
    add("control/feature-reboot", "1", rw(d));
    add("control/feature-suspend", "1", rw(d));
    add("control/sysrq", "", rw(d));
    add(
        "control/platform-feature-multiprocessor-suspend",
        "1",
        ro(d),
    );
    add("control/platform-feature-xs_reset_watches", "1", ro(d));
    add("data", "", rw(d));
    add("drivers", "", rw(d));
    add("feature", "", rw(d));
    add("attr", "", rw(d));
    add("error", "", rw(d));
    add("domid", &d.to_string(), ro(d));
    add("store", "", ro(d));
    add("store/port", "1", ro(d));
    add("store/ring-ref", "1044476", ro(d));
    add("console", "", ro(d));
    add(
        "console/backend",
        &format!("/local/domain/0/backend/console/{d}/0"),
        ro(d),
    );
    add("console/backend-id", "0", frontend(d));
    add("console/limit", "1048576", ro(d));
    add("console/type", "xenconsoled", ro(d));
    add("console/output", "pty", ro(d));
    add("console/tty", "/dev/pts/0", ro(d));
    add("console/port", "2", ro(d));
    add("console/ring-ref", "1044477", ro(d));
    let be = format!("/local/domain/0/backend/console/{d}/0");
    v.push((be.clone(), String::new(), ro(d)));
    for (k, val) in [
        ("frontend", format!("/local/domain/{d}/console")),
        ("frontend-id", d.to_string()),
        ("online", "1".into()),
        ("state", "1".into()),
        ("protocol", "vt100".into()),
    ] {
        v.push((format!("{be}/{k}"), val, ro(d)));
    }
    for (id, mac) in &cfg.vifs {
        v.extend(vif(d, *id, mac));
    }
    let vm = format!("/vm/{}", cfg.uuid);
    v.push((vm.clone(), String::new(), ro(d)));
    v.push((format!("{vm}/name"), cfg.name.clone(), ro(d)));
    v.push((format!("{vm}/uuid"), cfg.uuid.clone(), ro(d)));
    v.push((format!("{vm}/image"), String::new(), ro(d)));
    v.push((format!("{vm}/image/ostype"), "linux".into(), ro(d)));
    v.push((format!("{vm}/start_time"), "1795249801.12".into(), ro(d)));
    v
}

/// A VIF's frontend (`device/vif/<id>`, guest-owned) and backend
/// (`/local/domain/0/backend/vif/<domid>/<id>`, readable by the guest).
pub fn vif(domid: u32, id: u32, mac: &str) -> Vec<NodeSpec> {
    let fe = format!("/local/domain/{domid}/device/vif/{id}");
    let be = format!("/local/domain/0/backend/vif/{domid}/{id}");
    let f = frontend(domid);
    let b = ro(domid);
    let mut v: Vec<NodeSpec> = vec![(fe.clone(), String::new(), f.clone())];
    // What libxl writes, then what the guest's netfront adds on connecting.
    let front = [
        ("backend", be.clone()),
        ("backend-id", "0".into()),
        ("state", "4".into()),
        ("handle", id.to_string()),
        ("mac", mac.into()),
        ("trusted", "1".into()),
        ("mtu", "1500".into()),
        ("xdp-headroom", "0".into()),
        ("multi-queue-num-queues", "1".into()),
        ("tx-ring-ref", (520 + 2 * id).to_string()),
        ("rx-ring-ref", (521 + 2 * id).to_string()),
        ("event-channel-tx", (8 + 2 * id).to_string()),
        ("event-channel-rx", (9 + 2 * id).to_string()),
        ("request-rx-copy", "1".into()),
        ("feature-rx-notify", "1".into()),
        ("feature-sg", "1".into()),
        ("feature-gso-tcpv4", "1".into()),
        ("feature-gso-tcpv6", "1".into()),
        ("feature-ipv6-csum-offload", "1".into()),
    ];
    for (k, val) in front {
        // mtu is the only dom0-owned frontend node
        let perms = if k == "mtu" { b.clone() } else { f.clone() };
        v.push((format!("{fe}/{k}"), val, perms));
    }
    v.push((be.clone(), String::new(), b.clone()));
    let back = [
        ("frontend", fe.clone()),
        ("frontend-id", domid.to_string()),
        ("online", "1".into()),
        ("state", "4".into()),
        ("script", "/etc/xen/scripts/vif-bridge".into()),
        ("mac", mac.into()),
        ("bridge", "xenbr0".into()),
        ("handle", id.to_string()),
        ("type", "vif".into()),
        ("hotplug-status", "connected".into()),
        ("feature-sg", "1".into()),
        ("feature-rx-copy", "1".into()),
        ("multi-queue-max-queues", "1".into()),
    ];
    for (k, val) in back {
        v.push((format!("{be}/{k}"), val, b.clone()));
    }
    v
}

/// An SR-IOV VF as XAPI announces it: `xenserver/device/net-sriov-vf/<id>/mac`
/// (read-only to the guest), plus `xenserver/attr` where the guest reports
/// (guest-owned).
pub fn sriov_vf(domid: u32, id: u32, mac: &str) -> Vec<NodeSpec> {
    let x = format!("/local/domain/{domid}/xenserver");
    let vf = format!("{x}/device/net-sriov-vf/{id}");
    vec![
        (x.clone(), String::new(), ro(domid)),
        (format!("{x}/device"), String::new(), ro(domid)),
        (format!("{x}/device/net-sriov-vf"), String::new(), ro(domid)),
        (vf.clone(), String::new(), ro(domid)),
        (format!("{vf}/mac"), mac.into(), ro(domid)),
        (format!("{x}/attr"), String::new(), rw(domid)),
    ]
}

/// `control/feature-balloon`, pre-created guest-writable as XAPI does.
pub fn feature_balloon(domid: u32) -> NodeSpec {
    (
        format!("/local/domain/{domid}/control/feature-balloon"),
        String::new(),
        frontend(domid),
    )
}

/// Nodes that exist before any guest (xenstored and xen-init-dom0).
pub fn base() -> Vec<NodeSpec> {
    let dom0 = || Perms::new(0, Access::None);
    let node = |p: &str, v: &str| (p.to_string(), v.to_string(), dom0());
    vec![
        node("/tool", ""),
        node("/tool/xenstored", ""),
        node("/local", ""),
        node("/local/domain", ""),
        node("/local/domain/0", ""),
        node("/local/domain/0/control", ""),
        node("/local/domain/0/control/feature-poweroff", "1"),
        node("/local/domain/0/control/feature-reboot", "1"),
        node("/local/domain/0/control/feature-suspend", "1"),
        node("/local/domain/0/domid", "0"),
        node("/local/domain/0/name", "Domain-0"),
        node("/local/domain/0/backend", ""),
        node("/local/domain/0/backend/console", ""),
        node("/local/domain/0/backend/vif", ""),
        node("/vm", ""),
    ]
}
