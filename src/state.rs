//! The agent's model of the guest, and the diff between what was last
//! published and what is true now.
//!
//! Collectors report [`Event`]s; [`State::apply`] folds them into the current
//! [`Guest`] and remembers which parts they touched. [`State::take_changes`]
//! then compares only those parts with what was last handed to the
//! publishers and returns a [`ChangeSet`]: the [`Change`]s, in an order a
//! reader can follow (a link appears before its addresses, its addresses go
//! before it does), and a snapshot of the guest shared with every publisher.
//! Events that cancel out between two publications (an address added then
//! removed) produce nothing, which is how bursts are coalesced.
//!
//! Everything here is pure: no I/O, no clock, so that it can be tested
//! exhaustively.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

/// The operating system, as dom0's toolstacks name it (see
/// docs/xenstore-schema.md: xe-guest-utilities conventions).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OsInfo {
    /// Lowercase distribution id: `debian`, `ubuntu`, `rhel`, `freebsd`...
    pub distro: String,
    /// Human-readable name, e.g. os-release `PRETTY_NAME`.
    pub name: String,
    /// The most precise version the system knows, e.g. `12.5`.
    pub version: String,
    /// First component of `version` (`12`); empty when unknown.
    pub major: String,
    /// Second component of `version` (`5`), `0` when there is none.
    pub minor: String,
}

/// The running kernel, as `uname(2)` reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KernelInfo {
    /// `Linux`, `FreeBSD`.
    pub sysname: String,
    /// `uname -r`, e.g. `6.1.0-18-amd64`.
    pub release: String,
    /// `uname -v`, the build string.
    pub version: String,
    /// `uname -m`, e.g. `x86_64`.
    pub machine: String,
}

/// Memory figures in KiB, the unit dom0 expects.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryInfo {
    /// `MemTotal`.
    pub total_kib: u64,
    /// `MemAvailable`, or `MemFree` on kernels without it.
    pub available_kib: u64,
}

/// The guest's host name, split the way XAPI reads it back
/// (`data/host_name_dns` + `.` + `data/domain`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostName {
    /// The first label of the kernel's host name (`vm-42`).
    pub host: String,
    /// The DNS domain (`lab.example`), when the guest's own files tell it.
    pub domain: Option<String>,
}

impl HostName {
    /// The fully qualified name, `host.domain`, or the host alone.
    pub fn fqdn(&self) -> String {
        match &self.domain {
            Some(d) => format!("{}.{d}", self.host),
            None => self.host.clone(),
        }
    }
}

/// How Xen runs the guest, as its kernel sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VirtMode {
    /// Paravirtualised: no emulated hardware.
    Pv,
    /// PVH: hardware virtualisation without emulated devices.
    Pvh,
    /// Fully virtualised (HVM), emulated devices besides PV drivers.
    Hvm,
}

impl VirtMode {
    /// `pv`, `pvh`, `hvm`: the word every publisher uses.
    pub fn name(self) -> &'static str {
        match self {
            VirtMode::Pv => "pv",
            VirtMode::Pvh => "pvh",
            VirtMode::Hvm => "hvm",
        }
    }
}

/// The guest's virtualisation mode and which PV drivers it runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestMode {
    /// PV, PVH or HVM.
    pub mode: VirtMode,
    /// A PV network frontend (netfront) is bound to a device.
    pub pv_net: bool,
    /// A PV block frontend (blkfront) is bound to a device.
    pub pv_block: bool,
}

/// A mounted filesystem that stores data, with its space as `statvfs(3)`
/// reports it (the figures `df` shows).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filesystem {
    /// Where it is mounted, as the mount table has it (the key: one
    /// filesystem per mount point).
    pub mount_point: String,
    /// Filesystem type (`ext4`, `xfs`, `btrfs`...).
    pub fstype: String,
    /// What is mounted: the device (`/dev/xvda1`) or the source the mount
    /// table names.
    pub device: String,
    /// Size in bytes.
    pub total_bytes: u64,
    /// Bytes in use.
    pub used_bytes: u64,
    /// Bytes available to unprivileged users (`df`'s "Avail").
    pub available_bytes: u64,
}

/// What an interface is, in Xen's terms. Decided by the collector from what
/// the kernel says about the device, never from the interface name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// A Xen paravirtual NIC (netfront) with its VIF id (`device/vif/<id>`).
    Vif(u32),
    /// A bridge; a VIF enslaved to it has its addresses here.
    Bridge,
    /// A bond; a VIF enslaved to it has its addresses here.
    Bond,
    /// The loopback interface.
    Loopback,
    /// Anything else: veth, tap, PCI passthrough or SR-IOV NICs, USB NICs...
    /// (SR-IOV VFs are recognised by the xenstore publisher, from dom0's MACs.)
    Other,
}

impl Kind {
    /// The VIF id, when this is a VIF.
    pub fn vif(self) -> Option<u32> {
        match self {
            Kind::Vif(id) => Some(id),
            _ => None,
        }
    }
}

/// Link-level facts about one interface (everything but its addresses).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// OS interface index: stable for the life of the interface, survives
    /// renames, so it is the key everywhere.
    pub index: u32,
    /// Interface name as the kernel has it (may hold any byte but `/` and
    /// NUL; publishers sanitize).
    pub name: String,
    /// Hardware address, lowercase `aa:bb:cc:dd:ee:ff`; `None` when the
    /// link has none.
    pub mac: Option<String>,
    /// What the interface is.
    pub kind: Kind,
    /// Index of the bridge or bond this interface is enslaved to.
    pub master: Option<u32>,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
}

/// Flags the kernel attaches to an address, as far as a toolstack cares.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct AddrFlags {
    /// IPv4 secondary address (`IFA_F_SECONDARY`): not the primary one.
    pub secondary: bool,
    /// IPv6 duplicate address detection not finished (`IFA_F_TENTATIVE`).
    pub tentative: bool,
    /// IPv6 duplicate address detection failed (`IFA_F_DADFAILED`).
    pub dadfailed: bool,
    /// IPv6 privacy address (`IFA_F_TEMPORARY`).
    pub temporary: bool,
    /// Preferred lifetime over (`IFA_F_DEPRECATED`).
    pub deprecated: bool,
}

impl AddrFlags {
    /// Whether the address is usable for others to reach the guest: dom0 is
    /// never shown tentative or DAD-failed addresses.
    pub fn reportable(&self) -> bool {
        !self.tentative && !self.dadfailed
    }

    /// Names of the flags that are set, for display.
    pub fn names(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        for (set, name) in [
            (self.secondary, "secondary"),
            (self.tentative, "tentative"),
            (self.dadfailed, "dadfailed"),
            (self.temporary, "temporary"),
            (self.deprecated, "deprecated"),
        ] {
            if set {
                v.push(name);
            }
        }
        v
    }
}

/// An address of an interface (the address itself is the map key).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Address {
    /// Prefix length.
    pub prefix: u8,
    /// Kernel flags.
    pub flags: AddrFlags,
}

/// One network interface: its link and its addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    /// Link-level facts.
    pub link: Link,
    /// Addresses, keyed (and so ordered) by address.
    pub addresses: BTreeMap<IpAddr, Address>,
}

impl Interface {
    /// An interface with no address yet.
    pub fn new(link: Link) -> Self {
        Interface {
            link,
            addresses: BTreeMap::new(),
        }
    }

    /// The primary IPv4 address: the first one the kernel does not mark
    /// secondary (in address order when several subnets each have one), or
    /// the first IPv4 at all.
    pub fn primary_ipv4(&self) -> Option<IpAddr> {
        let v4 = || self.addresses.iter().filter(|(a, _)| a.is_ipv4());
        v4().find(|(_, i)| !i.flags.secondary)
            .or_else(|| v4().next())
            .map(|(a, _)| *a)
    }
}

/// Everything the agent knows about the guest.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Guest {
    /// Operating system, once detected.
    pub os: Option<OsInfo>,
    /// Running kernel, once read.
    pub kernel: Option<KernelInfo>,
    /// Memory, once sampled.
    pub memory: Option<MemoryInfo>,
    /// Host name, once read.
    pub host_name: Option<HostName>,
    /// Virtualisation mode, once detected (never on a kernel that does not
    /// tell it).
    pub mode: Option<GuestMode>,
    /// Mounted filesystems by mount point (empty until reported, or when
    /// not collected).
    pub filesystems: BTreeMap<String, Filesystem>,
    /// Network interfaces by index.
    pub interfaces: BTreeMap<u32, Interface>,
}

/// A fact reported by a collector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The OS was identified.
    Os(OsInfo),
    /// The kernel was identified.
    Kernel(KernelInfo),
    /// A memory sample.
    Memory(MemoryInfo),
    /// The host name, at start and after every change.
    HostName(HostName),
    /// The virtualisation mode.
    Mode(GuestMode),
    /// The complete set of mounted filesystems with their space, replacing
    /// what was known: at start, after a mount or an unmount, and at every
    /// sample of free space.
    Filesystems(Vec<Filesystem>),
    /// The complete set of interfaces, replacing what was known: sent at
    /// start, after a loss of sync (netlink overflow), and by polling
    /// collectors on every poll.
    Interfaces(Vec<Interface>),
    /// A link appeared or changed (rename, MAC, up/down, master...). Its
    /// addresses are kept.
    LinkUpdated(Link),
    /// A link disappeared, with all its addresses.
    LinkRemoved(u32),
    /// An address appeared or changed (flags, prefix) on interface `index`.
    AddressUpdated {
        /// Interface index.
        index: u32,
        /// The address.
        addr: IpAddr,
        /// Prefix and flags.
        info: Address,
    },
    /// An address disappeared from interface `index`.
    AddressRemoved {
        /// Interface index.
        index: u32,
        /// The address.
        addr: IpAddr,
    },
}

/// One difference between what was last published and what is true now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// OS identity (first time or changed).
    Os(OsInfo),
    /// Kernel identity (first time or changed).
    Kernel(KernelInfo),
    /// Memory figures changed.
    Memory(MemoryInfo),
    /// Host name (first time or changed).
    HostName(HostName),
    /// Virtualisation mode (first time or changed).
    Mode(GuestMode),
    /// A filesystem was mounted (or first reported).
    FilesystemAdded(Filesystem),
    /// A mounted filesystem's facts changed (its space, most often).
    FilesystemChanged {
        /// As last published.
        old: Filesystem,
        /// As now.
        new: Filesystem,
    },
    /// A filesystem was unmounted.
    FilesystemRemoved(Filesystem),
    /// A new interface.
    LinkAdded(Link),
    /// An interface's link facts changed.
    LinkChanged {
        /// As last published.
        old: Link,
        /// As now.
        new: Link,
    },
    /// An interface is gone (its addresses were removed just before).
    LinkRemoved(Link),
    /// A new address (its link was added before when it is new too).
    AddressAdded {
        /// The interface as it is now.
        link: Link,
        /// The address.
        addr: IpAddr,
        /// Prefix and flags.
        info: Address,
    },
    /// An address' prefix or flags changed.
    AddressChanged {
        /// The interface as it is now.
        link: Link,
        /// The address.
        addr: IpAddr,
        /// As last published.
        old: Address,
        /// As now.
        new: Address,
    },
    /// An address is gone.
    AddressRemoved {
        /// The interface as it was last published.
        link: Link,
        /// The address.
        addr: IpAddr,
        /// Prefix and flags it had.
        info: Address,
    },
}

/// What publishers get after each change: the changes, and the guest as it
/// is after them. The snapshot is shared, not copied: the state copies it
/// on its next change only if a publisher still holds it.
#[derive(Clone, Debug)]
pub struct ChangeSet {
    /// The guest after the changes.
    pub guest: Arc<Guest>,
    /// What changed since the previous change set, in reading order.
    pub changes: Vec<Change>,
}

/// Which part of the model an event touched since the last publication.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Os,
    Kernel,
    Memory,
    HostName,
    Mode,
    Filesystems,
    Link(u32),
    Addr(u32, IpAddr),
}

/// Most dirty keys kept allocated between change sets: a burst's list is
/// let go of afterwards.
const DIRTY_KEPT: usize = 1024;

/// The current model, what was last published, and what changed between.
#[derive(Debug, Default)]
pub struct State {
    current: Arc<Guest>,
    published: Guest,
    /// What events touched since the last publication, in no order and
    /// possibly repeated (sorted and deduplicated when the changes are
    /// taken): a list kept between change sets, so that an event costs no
    /// allocation.
    dirty: Vec<Key>,
    /// Every interface must be compared (a full replacement was applied).
    all_interfaces_dirty: bool,
}

impl State {
    /// An empty state: nothing known, nothing published.
    pub fn new() -> Self {
        Self::default()
    }

    /// What is true now.
    pub fn current(&self) -> &Guest {
        &self.current
    }

    /// The guest, to change (copied first if a publisher still holds the
    /// last snapshot).
    fn guest(&mut self) -> &mut Guest {
        Arc::make_mut(&mut self.current)
    }

    /// Fold one collector event into the current model.
    ///
    /// Events about unknown interfaces are tolerated: an address for an
    /// index not seen yet is kept once its link arrives (netlink may deliver
    /// them in either order around a resync), so nothing here ever fails.
    pub fn apply(&mut self, event: Event) {
        // Events that change nothing (a memory sample like the last one,
        // the same link again) leave the snapshot alone: no copy.
        match event {
            Event::Os(os) => {
                if self.current.os.as_ref() != Some(&os) {
                    self.guest().os = Some(os);
                    self.dirty.push(Key::Os);
                }
            }
            Event::Kernel(k) => {
                if self.current.kernel.as_ref() != Some(&k) {
                    self.guest().kernel = Some(k);
                    self.dirty.push(Key::Kernel);
                }
            }
            Event::Memory(m) => {
                if self.current.memory != Some(m) {
                    self.guest().memory = Some(m);
                    self.dirty.push(Key::Memory);
                }
            }
            Event::HostName(h) => {
                if self.current.host_name.as_ref() != Some(&h) {
                    self.guest().host_name = Some(h);
                    self.dirty.push(Key::HostName);
                }
            }
            Event::Mode(m) => {
                if self.current.mode != Some(m) {
                    self.guest().mode = Some(m);
                    self.dirty.push(Key::Mode);
                }
            }
            Event::Filesystems(list) => {
                let filesystems: BTreeMap<String, Filesystem> = list
                    .into_iter()
                    .map(|f| (f.mount_point.clone(), f))
                    .collect();
                if self.current.filesystems != filesystems {
                    self.guest().filesystems = filesystems;
                    self.dirty.push(Key::Filesystems);
                }
            }
            Event::Interfaces(list) => {
                let interfaces: BTreeMap<u32, Interface> =
                    list.into_iter().map(|i| (i.link.index, i)).collect();
                if self.current.interfaces != interfaces {
                    self.guest().interfaces = interfaces;
                    self.all_interfaces_dirty = true;
                }
            }
            Event::LinkUpdated(link) => {
                let index = link.index;
                if self.current.interfaces.get(&index).map(|i| &i.link) == Some(&link) {
                    return;
                }
                match self.guest().interfaces.get_mut(&index) {
                    Some(iface) => iface.link = link,
                    None => {
                        self.guest().interfaces.insert(index, Interface::new(link));
                    }
                }
                self.dirty.push(Key::Link(index));
            }
            Event::LinkRemoved(index) => {
                if !self.current.interfaces.contains_key(&index) {
                    return;
                }
                if let Some(iface) = self.guest().interfaces.remove(&index) {
                    self.dirty.push(Key::Link(index));
                    for addr in iface.addresses.keys() {
                        self.dirty.push(Key::Addr(index, *addr));
                    }
                }
            }
            Event::AddressUpdated { index, addr, info } => {
                // An address for a link we do not know yet: the link message
                // is on its way (or was lost and a resync will follow).
                // Keep nothing rather than invent a link.
                match self.current.interfaces.get(&index) {
                    Some(iface) if iface.addresses.get(&addr) != Some(&info) => {}
                    _ => return,
                }
                if let Some(iface) = self.guest().interfaces.get_mut(&index) {
                    iface.addresses.insert(addr, info);
                    self.dirty.push(Key::Addr(index, addr));
                }
            }
            Event::AddressRemoved { index, addr } => {
                match self.current.interfaces.get(&index) {
                    Some(iface) if iface.addresses.contains_key(&addr) => {}
                    _ => return,
                }
                if let Some(iface) = self.guest().interfaces.get_mut(&index) {
                    if iface.addresses.remove(&addr).is_some() {
                        self.dirty.push(Key::Addr(index, addr));
                    }
                }
            }
        }
    }

    /// Whether anything was applied since the last [`State::take_changes`].
    pub fn is_dirty(&self) -> bool {
        self.all_interfaces_dirty || !self.dirty.is_empty()
    }

    /// The changes since the last call and the guest after them, or `None`
    /// when nothing changed; after it what is current counts as published.
    pub fn take_changes(&mut self) -> Option<ChangeSet> {
        let changes = self.diff();
        (!changes.is_empty()).then(|| ChangeSet {
            guest: self.current.clone(),
            changes,
        })
    }

    /// The changes since the last publication, in reading order.
    fn diff(&mut self) -> Vec<Change> {
        let mut dirty = std::mem::take(&mut self.dirty);
        if std::mem::take(&mut self.all_interfaces_dirty) {
            for (guest, index) in [&*self.current, &self.published]
                .into_iter()
                .flat_map(|g| g.interfaces.keys().map(move |i| (g, *i)))
            {
                dirty.push(Key::Link(index));
                if let Some(iface) = guest.interfaces.get(&index) {
                    dirty.extend(iface.addresses.keys().map(|a| Key::Addr(index, *a)));
                }
            }
        }
        dirty.sort_unstable();
        dirty.dedup();

        let mut changes = Vec::new();
        for key in dirty.drain(..) {
            match key {
                Key::Os => follow(
                    &self.current.os,
                    &mut self.published.os,
                    &mut changes,
                    Change::Os,
                ),
                Key::Kernel => follow(
                    &self.current.kernel,
                    &mut self.published.kernel,
                    &mut changes,
                    Change::Kernel,
                ),
                Key::Memory => follow(
                    &self.current.memory,
                    &mut self.published.memory,
                    &mut changes,
                    Change::Memory,
                ),
                Key::HostName => follow(
                    &self.current.host_name,
                    &mut self.published.host_name,
                    &mut changes,
                    Change::HostName,
                ),
                Key::Mode => follow(
                    &self.current.mode,
                    &mut self.published.mode,
                    &mut changes,
                    Change::Mode,
                ),
                Key::Filesystems => {
                    diff_filesystems(
                        &self.current.filesystems,
                        &self.published.filesystems,
                        &mut changes,
                    );
                    self.published
                        .filesystems
                        .clone_from(&self.current.filesystems);
                }
                Key::Link(index) => {
                    let now = self.current.interfaces.get(&index).map(|i| &i.link);
                    let then = self.published.interfaces.get(&index).map(|i| &i.link);
                    match (then, now) {
                        (None, Some(new)) => changes.push(Change::LinkAdded(new.clone())),
                        (Some(old), Some(new)) if old != new => changes.push(Change::LinkChanged {
                            old: old.clone(),
                            new: new.clone(),
                        }),
                        (Some(old), None) => changes.push(Change::LinkRemoved(old.clone())),
                        _ => {}
                    }
                    match self.current.interfaces.get(&index) {
                        Some(iface) => match self.published.interfaces.get_mut(&index) {
                            Some(p) if p.link == iface.link => {}
                            Some(p) => p.link = iface.link.clone(),
                            None => {
                                let p = Interface::new(iface.link.clone());
                                self.published.interfaces.insert(index, p);
                            }
                        },
                        None => {
                            // Keep the published entry until its addresses
                            // are diffed below (they sort after links).
                        }
                    }
                }
                Key::Addr(index, addr) => {
                    let now = self
                        .current
                        .interfaces
                        .get(&index)
                        .and_then(|i| i.addresses.get(&addr).map(|a| (&i.link, *a)));
                    let then = self
                        .published
                        .interfaces
                        .get(&index)
                        .and_then(|i| i.addresses.get(&addr).map(|a| (&i.link, *a)));
                    match (then, now) {
                        (None, Some((link, info))) => changes.push(Change::AddressAdded {
                            link: link.clone(),
                            addr,
                            info,
                        }),
                        (Some((_, old)), Some((link, new))) if old != new => {
                            changes.push(Change::AddressChanged {
                                link: link.clone(),
                                addr,
                                old,
                                new,
                            })
                        }
                        (Some((link, info)), None) => changes.push(Change::AddressRemoved {
                            link: link.clone(),
                            addr,
                            info,
                        }),
                        _ => {}
                    }
                    match now {
                        Some((_, info)) => {
                            if let Some(p) = self.published.interfaces.get_mut(&index) {
                                p.addresses.insert(addr, info);
                            }
                        }
                        None => {
                            if let Some(p) = self.published.interfaces.get_mut(&index) {
                                p.addresses.remove(&addr);
                            }
                        }
                    }
                }
            }
        }
        // The list of dirty keys is kept for the next change set, unless a
        // burst made it large.
        if dirty.capacity() <= DIRTY_KEPT {
            self.dirty = dirty;
        }

        // Interfaces that are gone leave the published model once all their
        // addresses were reported removed. Every vanished interface has its
        // `LinkRemoved` here: removing just those keeps a change set's cost
        // independent of the number of interfaces (a scan of the whole map
        // per change set was most of the CPU per event with 1,000 links).
        for change in &changes {
            if let Change::LinkRemoved(link) = change {
                self.published.interfaces.remove(&link.index);
            }
        }

        // In key order (OS, kernel, memory, links by index, addresses by
        // interface and address) within each group; the groups in reading
        // order (a stable sort keeps the key order).
        changes.sort_by_key(reading_order);
        changes
    }
}

/// Where a change goes in a change set: OS, kernel, memory, host name,
/// mode and filesystems first, then
/// link additions and changes (an address's link before the address), then
/// address removals before additions (a reader applying the lines in order
/// never holds more than the real set), link removals last (their
/// addresses went just before).
fn reading_order(change: &Change) -> u8 {
    match change {
        Change::Os(_)
        | Change::Kernel(_)
        | Change::Memory(_)
        | Change::HostName(_)
        | Change::Mode(_)
        | Change::FilesystemAdded(_)
        | Change::FilesystemChanged { .. }
        | Change::FilesystemRemoved(_) => 0,
        Change::LinkAdded(_) | Change::LinkChanged { .. } => 1,
        Change::AddressRemoved { .. } => 2,
        Change::AddressAdded { .. } | Change::AddressChanged { .. } => 3,
        Change::LinkRemoved(_) => 4,
    }
}

/// The changes from `published` to `current`, by mount point.
fn diff_filesystems(
    current: &BTreeMap<String, Filesystem>,
    published: &BTreeMap<String, Filesystem>,
    changes: &mut Vec<Change>,
) {
    for (mount, old) in published {
        match current.get(mount) {
            None => changes.push(Change::FilesystemRemoved(old.clone())),
            Some(new) if new != old => changes.push(Change::FilesystemChanged {
                old: old.clone(),
                new: new.clone(),
            }),
            Some(_) => {}
        }
    }
    for (mount, new) in current {
        if !published.contains_key(mount) {
            changes.push(Change::FilesystemAdded(new.clone()));
        }
    }
}

/// `published` catches up with `current`, and `changes` says so when it
/// moved to a value (a fact that went is not a change dom0 is told of).
fn follow<T: Clone + PartialEq>(
    current: &Option<T>,
    published: &mut Option<T>,
    changes: &mut Vec<Change>,
    change: fn(T) -> Change,
) {
    if current != published {
        if let Some(v) = current {
            changes.push(change(v.clone()));
        }
        published.clone_from(current);
    }
}

#[cfg(test)]
mod tests;
