//! The guest's network as the driver believes it, and the actions on it:
//! each action becomes `ip` commands (run in the background, in one
//! `ip -batch`) and hooks that keep the fake sysfs and dom0's side in step.
//!
//! The belief is only used to pick sensible actions; the checks compare
//! with the kernel's real state. It is refreshed from the kernel at every
//! check, and the kernel's refusals of a stale belief are harmless
//! (`ip -force`).
//!
//! The driver also notes what each action may do to address slots (an
//! address removed, a link whose addresses may have left without a word),
//! for the slot rules ([`crate::slots::Churn`]).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::kernel::Kernel;
use crate::rng::Rng;

/// VIF ids the driver plugs and unplugs.
pub const VIF_IDS: std::ops::Range<u32> = 0..8;
/// The sentinel VIF: never touched by actions; its address toggles at
/// every check, so that anything queued before shows first.
pub const SENTINEL_VIF: u32 = 15;
pub const SENTINEL_NAME: &str = "xsentinel";
const SENTINEL_SUBNET: u16 = 250;
/// The address the sentinel toggles.
pub fn sentinel_addr() -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, SENTINEL_SUBNET as u8, 255, 254))
}
/// Most bridges at once.
const MAX_BRIDGES: usize = 2;
/// Most SR-IOV-like plain interfaces at once.
const MAX_VFS: usize = 2;

/// What an interface is for the driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// A VIF (a veth the fake sysfs calls `device/vif/<id>`), its peer.
    Vif {
        id: u32,
        peer: String,
    },
    Bridge,
    /// A plain veth whose MAC dom0 may announce as an SR-IOV VF.
    Vf {
        peer: String,
    },
    Sentinel,
}

/// One interface as the driver believes it.
#[derive(Clone, Debug)]
pub struct Iface {
    pub name: String,
    pub role: Role,
    pub mac: String,
    /// Second octet of its IPv4 /16 and fourth group of its IPv6 /64.
    pub subnet: u16,
    pub v4: BTreeSet<Ipv4Addr>,
    pub v6: BTreeSet<Ipv6Addr>,
    pub master: Option<String>,
    pub up: bool,
    /// Its peer is up (carrier: IPv6 DAD runs).
    pub carrier: bool,
}

impl Iface {
    /// Up, without addresses, master or carrier.
    fn new(name: &str, role: Role, mac: &str, subnet: u16) -> Iface {
        Iface {
            name: name.to_string(),
            role,
            mac: mac.to_string(),
            subnet,
            v4: BTreeSet::new(),
            v6: BTreeSet::new(),
            master: None,
            up: true,
            carrier: false,
        }
    }

    pub fn primary(&self) -> Option<Ipv4Addr> {
        self.v4.iter().next().copied()
    }

    fn v4(&self, host: u32) -> Ipv4Addr {
        let [_, _, c, d] = host.to_be_bytes();
        Ipv4Addr::new(10, self.subnet as u8, c, d)
    }

    fn v6(&self, host: u32) -> Ipv6Addr {
        let [_, b, c, d] = host.to_be_bytes();
        Ipv6Addr::new(
            0x2001,
            0xdb8,
            self.subnet,
            0,
            0,
            u16::from(b),
            u16::from(c) << 8 | u16::from(d),
            1,
        )
    }
}

/// Side effects an action needs around its `ip` commands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hook {
    SysfsVif(String, u32),
    SysfsBridge(String),
    SysfsRemove(String),
    SysfsMaster(String, Option<String>),
    /// dom0 plugs the VIF's frontend and backend (libxl's nodes).
    XsAddVif(u32, String),
    XsRemoveVif(u32),
    /// SIGSTOP the agent: netlink notifications pile up until it overflows.
    Freeze,
    Thaw,
}

/// One action, ready to run.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// For the log of actions (replays, failures).
    pub label: String,
    pub before: Vec<Hook>,
    pub commands: Vec<String>,
    /// Run once the commands are done.
    pub after: Vec<Hook>,
    /// Network changes it makes (for the figures).
    pub changes: usize,
}

/// The network actions, with their weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NetAction {
    Plug,
    Unplug,
    Rename,
    LinkDown,
    LinkUp,
    Carrier,
    Mac,
    BridgeAdd,
    BridgeDel,
    Enslave,
    Release,
    AddV4,
    AddV6,
    AddV6Dad,
    AddDeprecated,
    Del,
    DelPrimary,
    Burst,
    Overflow,
    DadFail,
    VfAdd,
    VfDel,
}

impl NetAction {
    /// Every network action and how often it comes (relative).
    pub const CATALOGUE: &'static [(NetAction, u32)] = &[
        (NetAction::Plug, 4),
        (NetAction::Unplug, 3),
        (NetAction::Rename, 3),
        (NetAction::LinkDown, 3),
        (NetAction::LinkUp, 4),
        (NetAction::Carrier, 3),
        (NetAction::Mac, 2),
        (NetAction::BridgeAdd, 2),
        (NetAction::BridgeDel, 1),
        (NetAction::Enslave, 3),
        (NetAction::Release, 3),
        (NetAction::AddV4, 10),
        (NetAction::AddV6, 8),
        (NetAction::AddV6Dad, 3),
        (NetAction::AddDeprecated, 2),
        (NetAction::Del, 12),
        (NetAction::DelPrimary, 2),
        (NetAction::Burst, 3),
        (NetAction::Overflow, 1),
        (NetAction::DadFail, 1),
        (NetAction::VfAdd, 1),
        (NetAction::VfDel, 1),
    ];

    pub fn name(self) -> &'static str {
        match self {
            NetAction::Plug => "vif-plug",
            NetAction::Unplug => "vif-unplug",
            NetAction::Rename => "link-rename",
            NetAction::LinkDown => "link-down",
            NetAction::LinkUp => "link-up",
            NetAction::Carrier => "carrier-toggle",
            NetAction::Mac => "mac-change",
            NetAction::BridgeAdd => "bridge-add",
            NetAction::BridgeDel => "bridge-remove",
            NetAction::Enslave => "bridge-enslave",
            NetAction::Release => "bridge-release",
            NetAction::AddV4 => "addr-add-ipv4",
            NetAction::AddV6 => "addr-add-ipv6",
            NetAction::AddV6Dad => "addr-add-ipv6-dad",
            NetAction::AddDeprecated => "addr-add-ipv6-deprecated",
            NetAction::Del => "addr-remove",
            NetAction::DelPrimary => "addr-remove-primary",
            NetAction::Burst => "burst",
            NetAction::Overflow => "netlink-overflow",
            NetAction::DadFail => "dad-failure",
            NetAction::VfAdd => "vf-add",
            NetAction::VfDel => "vf-remove",
        }
    }
}

/// Per-period notes for the slot rules, by interface name.
#[derive(Clone, Debug, Default)]
pub struct PeriodChurn {
    pub dels: BTreeMap<String, usize>,
    pub unknown: BTreeSet<String>,
    pub removed: BTreeSet<IpAddr>,
}

/// The network as the driver believes it.
#[derive(Debug, Default)]
pub struct Net {
    pub ifaces: Vec<Iface>,
    pub churn: PeriodChurn,
    next_subnet: u16,
    next_host: u32,
    next_vf: u32,
}

impl Net {
    /// The sentinel VIF and two VIFs, eth0 with an address of each family.
    pub fn initial(&mut self) -> Vec<Plan> {
        let mut plans = vec![self.plug_vif(SENTINEL_VIF, SENTINEL_NAME, Some(SENTINEL_SUBNET))];
        plans.push(self.plug_vif(0, "eth0", None));
        plans.push(self.plug_vif(1, "eth1", None));
        let eth0 = self.ifaces.iter().position(|i| i.name == "eth0");
        if let Some(i) = eth0 {
            let (a, b) = (self.fresh_v4(i), self.fresh_v6(i));
            let iface = &mut self.ifaces[i];
            iface.v4.insert(a);
            iface.v6.insert(b);
            plans[1].commands.push(add4(iface, a));
            plans[1].commands.push(add6(iface, b, ""));
        }
        plans
    }

    /// The sentinel's toggle, for the check: add, then remove.
    pub fn sentinel(&mut self, add: bool) -> String {
        let a = sentinel_addr();
        if add {
            format!("addr add {a}/16 dev {SENTINEL_NAME}")
        } else {
            self.note_del(SENTINEL_NAME, a);
            format!("addr del {a}/16 dev {SENTINEL_NAME}")
        }
    }

    /// Align the belief with the kernel (at a check).
    pub fn refresh(&mut self, kernel: &Kernel) {
        self.ifaces.retain_mut(|iface| {
            let Some(link) = kernel.by_name(&iface.name) else {
                return false;
            };
            iface.v4.clear();
            iface.v6.clear();
            for a in &link.addrs {
                match a.ip {
                    IpAddr::V4(v4) => {
                        iface.v4.insert(v4);
                    }
                    IpAddr::V6(v6) => {
                        iface.v6.insert(v6);
                    }
                }
            }
            iface.master = link
                .master
                .and_then(|m| kernel.links.get(&m))
                .map(|m| m.name.clone());
            if let Some(mac) = &link.mac {
                iface.mac = mac.clone();
            }
            true
        });
        self.churn = PeriodChurn::default();
    }

    /// Pick and plan one network action (`None`: none applies now).
    pub fn plan(&mut self, action: NetAction, rng: &mut Rng) -> Option<Plan> {
        let mut p = match action {
            NetAction::Plug => {
                let used: Vec<u32> = self.vif_ids();
                let free: Vec<u32> = VIF_IDS.filter(|i| !used.contains(i)).collect();
                let id = *rng.pick(&free)?;
                let mut p = self.plug_vif(id, &format!("eth{id}"), None);
                let i = self.ifaces.len() - 1;
                if rng.percent(70) {
                    let a = self.fresh_v4(i);
                    self.ifaces[i].v4.insert(a);
                    p.commands.push(add4(&self.ifaces[i], a));
                }
                p
            }
            NetAction::Unplug => {
                let i = self.pick(rng, |f| matches!(f.role, Role::Vif { .. }))?;
                let f = self.ifaces.remove(i);
                self.churn.unknown.insert(f.name.clone());
                let Role::Vif { id, .. } = f.role else {
                    return None;
                };
                Plan {
                    label: format!("unplug VIF {id} ({})", f.name),
                    commands: vec![format!("link del {}", f.name)],
                    after: vec![Hook::SysfsRemove(f.name), Hook::XsRemoveVif(id)],
                    changes: 1,
                    ..Plan::default()
                }
            }
            NetAction::Rename => {
                let i = self.pick(rng, |f| matches!(f.role, Role::Vif { .. }))?;
                let Role::Vif { id, .. } = self.ifaces[i].role.clone() else {
                    return None;
                };
                let names = [
                    format!("eth{id}"),
                    format!("enX{id}"),
                    format!("vif{id}net"),
                ];
                let old = self.ifaces[i].name.clone();
                let new = rng.pick(&names).filter(|n| **n != old)?.clone();
                let mut before = vec![Hook::SysfsVif(new.clone(), id)];
                let master = self.ifaces[i].master.clone();
                if master.is_some() {
                    before.push(Hook::SysfsMaster(new.clone(), master));
                }
                let mut commands = Vec::new();
                let cycle = self.ifaces[i].up && rng.percent(50);
                if cycle {
                    // As udev does it: down, rename, up (IPv6 addresses go).
                    commands.push(format!("link set {old} down"));
                    self.churn.unknown.insert(new.clone());
                    self.churn.unknown.insert(old.clone());
                }
                commands.push(format!("link set {old} name {new}"));
                if cycle {
                    commands.push(format!("link set {new} up"));
                }
                self.ifaces[i].name = new.clone();
                Plan {
                    label: format!(
                        "rename {old} -> {new}{}",
                        if cycle { " (down/up)" } else { "" }
                    ),
                    before,
                    commands,
                    after: vec![Hook::SysfsRemove(old)],
                    changes: 1,
                }
            }
            NetAction::LinkDown | NetAction::LinkUp => {
                let up = action == NetAction::LinkUp;
                let i = self.pick(rng, |f| f.role != Role::Sentinel && f.up != up)?;
                let f = &mut self.ifaces[i];
                f.up = up;
                if !up {
                    f.v6.clear();
                }
                self.churn.unknown.insert(f.name.clone());
                simple(
                    format!("{} {}", if up { "up" } else { "down" }, f.name),
                    format!("link set {} {}", f.name, if up { "up" } else { "down" }),
                )
            }
            NetAction::Carrier => {
                let i = self.pick(rng, |f| f.peer().is_some())?;
                let f = &mut self.ifaces[i];
                f.carrier = !f.carrier;
                self.churn.unknown.insert(f.name.clone());
                let peer = f.peer().unwrap_or_default();
                simple(
                    format!(
                        "carrier {} {}",
                        if f.carrier { "on" } else { "off" },
                        f.name
                    ),
                    format!("link set {peer} {}", if f.carrier { "up" } else { "down" }),
                )
            }
            NetAction::Mac => {
                let i = self.pick(rng, |f| f.role != Role::Sentinel && f.role != Role::Bridge)?;
                let mac = format!(
                    "00:16:3e:{:02x}:{:02x}:{:02x}",
                    rng.below(256),
                    rng.below(256),
                    rng.below(256)
                );
                let f = &mut self.ifaces[i];
                f.mac = mac.clone();
                simple(
                    format!("mac {} {mac}", f.name),
                    format!("link set {} address {mac}", f.name),
                )
            }
            NetAction::BridgeAdd => {
                let bridges = self.count(|f| f.role == Role::Bridge);
                if bridges >= MAX_BRIDGES {
                    return None;
                }
                let taken: Vec<String> = self.ifaces.iter().map(|f| f.name.clone()).collect();
                let name = (0..MAX_BRIDGES)
                    .map(|n| format!("br{n}"))
                    .find(|n| !taken.contains(n))?;
                let subnet = self.subnet();
                let mut f = Iface::new(&name, Role::Bridge, "", subnet);
                let mut commands = vec![
                    format!("link add {name} type bridge"),
                    format!("link set {name} up"),
                ];
                if rng.percent(70) {
                    let a = f.v4(self.host());
                    f.v4.insert(a);
                    commands.push(add4(&f, a));
                }
                self.ifaces.push(f);
                Plan {
                    label: format!("add bridge {name}"),
                    before: vec![Hook::SysfsBridge(name)],
                    changes: commands.len(),
                    commands,
                    ..Plan::default()
                }
            }
            NetAction::BridgeDel => {
                let i = self.pick(rng, |f| f.role == Role::Bridge)?;
                let f = self.ifaces.remove(i);
                let mut after = vec![Hook::SysfsRemove(f.name.clone())];
                for port in self
                    .ifaces
                    .iter_mut()
                    .filter(|p| p.master == Some(f.name.clone()))
                {
                    port.master = None;
                    self.churn.unknown.insert(port.name.clone());
                    after.push(Hook::SysfsMaster(port.name.clone(), None));
                }
                self.churn.unknown.insert(f.name.clone());
                Plan {
                    label: format!("remove bridge {}", f.name),
                    commands: vec![format!("link del {}", f.name)],
                    after,
                    changes: 1,
                    ..Plan::default()
                }
            }
            NetAction::Enslave => {
                let bridges: Vec<String> = self
                    .ifaces
                    .iter()
                    .filter(|f| f.role == Role::Bridge)
                    .map(|f| f.name.clone())
                    .collect();
                let bridge = rng.pick(&bridges)?.clone();
                let i = self.pick(rng, |f| {
                    matches!(f.role, Role::Vif { .. }) && f.master.is_none()
                })?;
                let f = &mut self.ifaces[i];
                f.master = Some(bridge.clone());
                self.churn.unknown.insert(f.name.clone());
                let mut p = simple(
                    format!("enslave {} to {bridge}", f.name),
                    format!("link set {} master {bridge}", f.name),
                );
                p.after = vec![Hook::SysfsMaster(f.name.clone(), Some(bridge))];
                p
            }
            NetAction::Release => {
                let i = self.pick(rng, |f| f.master.is_some() && f.role != Role::Sentinel)?;
                let f = &mut self.ifaces[i];
                f.master = None;
                self.churn.unknown.insert(f.name.clone());
                let mut p = simple(
                    format!("release {}", f.name),
                    format!("link set {} nomaster", f.name),
                );
                p.after = vec![Hook::SysfsMaster(f.name.clone(), None)];
                p
            }
            NetAction::AddV4 => {
                let i = self.pick(rng, |f| f.role != Role::Sentinel)?;
                let a = self.fresh_v4(i);
                self.ifaces[i].v4.insert(a);
                let f = &self.ifaces[i];
                simple(format!("add {a} to {}", f.name), add4(f, a))
            }
            NetAction::AddV6 | NetAction::AddV6Dad | NetAction::AddDeprecated => {
                let i = self.pick(rng, |f| f.role != Role::Sentinel)?;
                let a = self.fresh_v6(i);
                self.ifaces[i].v6.insert(a);
                let f = &self.ifaces[i];
                let (what, flags) = match action {
                    NetAction::AddV6 => ("", " nodad"),
                    // Tentative until DAD ends (never, without carrier).
                    NetAction::AddV6Dad => (" (DAD)", ""),
                    _ => (" (deprecated)", " nodad preferred_lft 0"),
                };
                simple(format!("add {a}{what} to {}", f.name), add6(f, a, flags))
            }
            NetAction::Del | NetAction::DelPrimary => {
                let primary = action == NetAction::DelPrimary;
                let i = self.pick(rng, |f| {
                    f.role != Role::Sentinel
                        && if primary {
                            f.primary().is_some()
                        } else {
                            f.v4.len() + f.v6.len() > 0
                        }
                })?;
                let f = &self.ifaces[i];
                let a: IpAddr = if primary {
                    IpAddr::V4(f.primary()?)
                } else {
                    let all: Vec<IpAddr> =
                        f.v4.iter()
                            .map(|a| IpAddr::V4(*a))
                            .chain(f.v6.iter().map(|a| IpAddr::V6(*a)))
                            .collect();
                    *rng.pick(&all)?
                };
                let cmd = del(f, a);
                let name = f.name.clone();
                self.forget(i, a);
                simple(format!("remove {a} from {name}"), cmd)
            }
            NetAction::Burst | NetAction::Overflow => {
                let i = self.pick(rng, |f| f.role != Role::Sentinel)?;
                let overflow = action == NetAction::Overflow;
                let n = if overflow {
                    rng.range(3000, 8000)
                } else {
                    rng.log_range(1000, 10_000)
                };
                let mut p = self.burst(i, n, rng);
                if overflow {
                    p.label = format!("agent stopped (SIGSTOP) during {}", p.label);
                    p.before.push(Hook::Freeze);
                    p.after.push(Hook::Thaw);
                }
                p
            }
            NetAction::DadFail => {
                let i = self.pick(rng, |f| f.peer().is_some() && f.up)?;
                let a = self.fresh_v6(i);
                let f = &mut self.ifaces[i];
                f.carrier = true;
                f.v6.insert(a);
                self.churn.unknown.insert(f.name.clone());
                let peer = f.peer().unwrap_or_default();
                Plan {
                    label: format!("{a} on {} duplicated on {peer}: DAD fails", f.name),
                    commands: vec![
                        format!("link set {peer} up"),
                        format!("addr add {a}/64 dev {peer} nodad"),
                        format!("addr add {a}/64 dev {}", f.name),
                    ],
                    changes: 3,
                    ..Plan::default()
                }
            }
            NetAction::VfAdd => {
                if self.count(|f| matches!(f.role, Role::Vf { .. })) >= MAX_VFS {
                    return None;
                }
                let n = self.next_vf;
                self.next_vf += 1;
                let (name, peer) = (format!("vf{n}"), format!("vfp{n}"));
                let mac = format!("02:00:00:aa:{:02x}:{:02x}", n >> 8 & 0xff, n & 0xff);
                let subnet = self.subnet();
                let mut f = Iface::new(&name, Role::Vf { peer: peer.clone() }, &mac, subnet);
                let a = f.v4(self.host());
                f.v4.insert(a);
                let commands = vec![
                    format!("link add {name} address {mac} type veth peer name {peer}"),
                    format!("link set {name} up"),
                    add4(&f, a),
                ];
                self.ifaces.push(f);
                Plan {
                    label: format!("add plain interface {name} ({mac})"),
                    changes: commands.len(),
                    commands,
                    ..Plan::default()
                }
            }
            NetAction::VfDel => {
                let i = self.pick(rng, |f| matches!(f.role, Role::Vf { .. }))?;
                let f = self.ifaces.remove(i);
                self.churn.unknown.insert(f.name.clone());
                simple(format!("remove {}", f.name), format!("link del {}", f.name))
            }
        };
        if p.changes == 0 {
            p.changes = p.commands.len();
        }
        Some(p)
    }

    /// VIF ids in use (the sentinel's included).
    pub fn vif_ids(&self) -> Vec<u32> {
        self.ifaces
            .iter()
            .filter_map(|f| match f.role {
                Role::Vif { id, .. } => Some(id),
                Role::Sentinel => Some(SENTINEL_VIF),
                _ => None,
            })
            .collect()
    }

    /// MACs of the plain interfaces dom0 may announce as VFs.
    pub fn vf_macs(&self) -> Vec<String> {
        self.ifaces
            .iter()
            .filter(|f| matches!(f.role, Role::Vf { .. }))
            .map(|f| f.mac.clone())
            .collect()
    }

    /// The slot-rule notes for the interfaces whose names are `names`.
    pub fn churn_of<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> crate::slots::Churn {
        let mut c = crate::slots::Churn {
            removed: self.churn.removed.clone(),
            ..Default::default()
        };
        for n in names {
            c.unknown |= self.churn.unknown.contains(n);
            c.departures += self.churn.dels.get(n).copied().unwrap_or(0);
        }
        c
    }

    fn plug_vif(&mut self, id: u32, name: &str, subnet: Option<u16>) -> Plan {
        let mac = format!("00:16:3e:00:{:02x}:{:02x}", id, self.next_host & 0xff);
        self.next_host += 1;
        let peer = format!("peer{id}");
        let subnet = subnet.unwrap_or_else(|| self.subnet());
        let role = if id == SENTINEL_VIF {
            Role::Sentinel
        } else {
            Role::Vif {
                id,
                peer: peer.clone(),
            }
        };
        let mut f = Iface::new(name, role, &mac, subnet);
        let mut commands = vec![
            format!(
                "link add {name} address {mac} type veth peer name {peer} address 02:00:00:01:00:{id:02x}"
            ),
            format!("link set {name} up"),
        ];
        if id == SENTINEL_VIF {
            // Its primary: the sentinel address is never the primary.
            let a = f.v4(1);
            f.v4.insert(a);
            commands.push(add4(&f, a));
        }
        self.ifaces.push(f);
        Plan {
            label: format!("plug VIF {id} as {name} ({mac})"),
            before: vec![
                Hook::SysfsVif(name.to_string(), id),
                Hook::XsAddVif(id, mac),
            ],
            changes: commands.len(),
            commands,
            ..Plan::default()
        }
    }

    /// `n` changes on interface `i`: fresh addresses of both families
    /// added and removed, interleaved; a few are kept; an interface that
    /// holds many is thinned first.
    fn burst(&mut self, i: usize, n: usize, rng: &mut Rng) -> Plan {
        let mut cmds = Vec::new();
        let name = self.ifaces[i].name.clone();
        // Thin an interface that kept many.
        let extra: Vec<IpAddr> = {
            let f = &self.ifaces[i];
            let v4 = f.v4.iter().skip(1).skip(16).map(|a| IpAddr::V4(*a));
            let v6 = f.v6.iter().skip(16).map(|a| IpAddr::V6(*a));
            v4.chain(v6).collect()
        };
        for a in extra {
            cmds.push(del(&self.ifaces[i], a));
            self.forget(i, a);
        }
        let mut live: Vec<IpAddr> = Vec::new();
        let target = rng.range(8, 200);
        while cmds.len() < n {
            if live.len() < target && (live.is_empty() || rng.percent(60)) {
                let a = if rng.percent(55) {
                    IpAddr::V4(self.fresh_v4(i))
                } else {
                    IpAddr::V6(self.fresh_v6(i))
                };
                cmds.push(match a {
                    IpAddr::V4(v4) => add4(&self.ifaces[i], v4),
                    IpAddr::V6(v6) => add6(&self.ifaces[i], v6, " nodad"),
                });
                live.push(a);
            } else {
                let a = live.swap_remove(rng.below(live.len()));
                cmds.push(del(&self.ifaces[i], a));
                self.note_del(&name, a);
            }
        }
        let keep = rng.below(4);
        while live.len() > keep {
            let a = live.swap_remove(rng.below(live.len()));
            cmds.push(del(&self.ifaces[i], a));
            self.note_del(&name, a);
        }
        for a in live {
            match a {
                IpAddr::V4(v4) => self.ifaces[i].v4.insert(v4),
                IpAddr::V6(v6) => self.ifaces[i].v6.insert(v6),
            };
        }
        Plan {
            label: format!("burst of {} changes on {name}", cmds.len()),
            changes: cmds.len(),
            commands: cmds,
            ..Plan::default()
        }
    }

    fn pick(&self, rng: &mut Rng, ok: impl Fn(&Iface) -> bool) -> Option<usize> {
        let candidates: Vec<usize> = (0..self.ifaces.len())
            .filter(|i| ok(&self.ifaces[*i]))
            .collect();
        rng.pick(&candidates).copied()
    }

    fn count(&self, ok: impl Fn(&Iface) -> bool) -> usize {
        self.ifaces.iter().filter(|f| ok(f)).count()
    }

    fn forget(&mut self, i: usize, a: IpAddr) {
        let f = &mut self.ifaces[i];
        match a {
            IpAddr::V4(v4) => f.v4.remove(&v4),
            IpAddr::V6(v6) => f.v6.remove(&v6),
        };
        let name = f.name.clone();
        self.note_del(&name, a);
    }

    fn note_del(&mut self, name: &str, a: IpAddr) {
        *self.churn.dels.entry(name.to_string()).or_default() += 1;
        self.churn.removed.insert(a);
    }

    fn subnet(&mut self) -> u16 {
        // 1..=200: VIFs, bridges and VFs; 250: the sentinel.
        self.next_subnet = self.next_subnet % 200 + 1;
        self.next_subnet
    }

    fn host(&mut self) -> u32 {
        // Hosts 2.. of the /16 (1 is the sentinel's primary), cycling.
        self.next_host = (self.next_host + 1) % 65_000;
        self.next_host + 2
    }

    fn fresh_v4(&mut self, i: usize) -> Ipv4Addr {
        loop {
            let h = self.host();
            let a = self.ifaces[i].v4(h);
            if !self.ifaces[i].v4.contains(&a) {
                return a;
            }
        }
    }

    fn fresh_v6(&mut self, i: usize) -> Ipv6Addr {
        loop {
            let h = self.host();
            let a = self.ifaces[i].v6(h);
            if !self.ifaces[i].v6.contains(&a) {
                return a;
            }
        }
    }
}

impl Iface {
    fn peer(&self) -> Option<String> {
        match &self.role {
            Role::Vif { peer, .. } | Role::Vf { peer } => Some(peer.clone()),
            _ => None,
        }
    }
}

fn simple(label: String, command: String) -> Plan {
    Plan {
        label,
        commands: vec![command],
        changes: 1,
        ..Plan::default()
    }
}

fn add4(f: &Iface, a: Ipv4Addr) -> String {
    format!("addr add {a}/16 dev {}", f.name)
}

fn add6(f: &Iface, a: Ipv6Addr, flags: &str) -> String {
    format!("addr add {a}/64 dev {}{flags}", f.name)
}

fn del(f: &Iface, a: IpAddr) -> String {
    let prefix = if a.is_ipv4() { 16 } else { 64 };
    format!("addr del {a}/{prefix} dev {}", f.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_makes_its_changes_and_notes_its_removals() {
        let mut net = Net::default();
        net.initial();
        let mut rng = Rng::new(3);
        let p = net.plan(NetAction::Burst, &mut rng).unwrap();
        assert!(p.commands.len() >= 1000, "{}", p.commands.len());
        let adds = p
            .commands
            .iter()
            .filter(|c| c.starts_with("addr add"))
            .count();
        let dels = p
            .commands
            .iter()
            .filter(|c| c.starts_with("addr del"))
            .count();
        assert!(adds >= dels.saturating_sub(40), "{adds} {dels}");
        let noted: usize = net.churn.dels.values().sum();
        assert_eq!(noted, dels);
    }

    #[test]
    fn actions_that_need_something_absent_are_skipped() {
        let mut net = Net::default();
        net.initial();
        let mut rng = Rng::new(5);
        assert!(net.plan(NetAction::BridgeDel, &mut rng).is_none());
        assert!(net.plan(NetAction::Release, &mut rng).is_none());
        assert!(net.plan(NetAction::VfDel, &mut rng).is_none());
        assert!(net.plan(NetAction::BridgeAdd, &mut rng).is_some());
        assert!(net.plan(NetAction::Enslave, &mut rng).is_some());
        assert!(net.plan(NetAction::Release, &mut rng).is_some());
    }

    #[test]
    fn the_sentinel_is_never_picked() {
        let mut net = Net::default();
        net.initial();
        let mut rng = Rng::new(11);
        for _ in 0..300 {
            let action = rng.weighted(NetAction::CATALOGUE).unwrap();
            if let Some(p) = net.plan(action, &mut rng) {
                assert!(
                    !p.commands.iter().any(|c| c.contains(SENTINEL_NAME)),
                    "{p:?}"
                );
            }
        }
        assert!(net.vif_ids().contains(&SENTINEL_VIF));
    }

    #[test]
    fn addresses_stay_in_their_interfaces_subnet() {
        let mut net = Net::default();
        net.initial();
        let i = net.ifaces.iter().position(|f| f.name == "eth1").unwrap();
        let s = net.ifaces[i].subnet;
        for _ in 0..70_000 {
            let a = net.fresh_v4(i);
            assert_eq!(a.octets()[1], s as u8);
            assert_ne!(a.octets()[2..], [0, 0]);
        }
    }
}
