//! Address slots: which `<n>` each address of an interface gets in
//! `attr/vif/<id>/ipv4/<n>`, and which addresses are published at all when
//! there are more than the cap.
//!
//! dom0 reads these slots in ways that punish renumbering: XAPI turns the
//! lowest IPv4 slot into the VM's address and Xen Orchestra takes the first
//! key in string order, so the rules (docs/xenstore-schema.md) are:
//! - an address keeps its slot for as long as it exists;
//! - a new address takes the lowest free slot, so churn (DHCP renewals,
//!   IPv6 privacy addresses) reuses slots instead of growing them;
//! - the primary IPv4 holds slot 0 whenever slot 0 is free: it takes it
//!   when it appears, and moves there when slot 0 frees up (the one move
//!   allowed, since it is what dom0 shows as the VM's address);
//! - at most `cap` slots, the rest is skipped and said once in the log.
//!
//! The same allocator keeps rfc's capped address sets stable (there the
//! slot numbers are unused, only the choice of what is published matters),
//! and numbers the filesystems of std `data/volumes/<n>` and rfc
//! `data/fs/<n>` by mount point, under the same rules (no primary).

use std::collections::BTreeMap;
use std::fmt::{Debug, Display};
use std::net::IpAddr;

/// An address family, named as in xenstore paths.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl Family {
    /// Both families, in publication order.
    pub const ALL: [Family; 2] = [Family::V4, Family::V6];

    /// The path component: `ipv4`, `ipv6`.
    pub fn key(self) -> &'static str {
        match self {
            Family::V4 => "ipv4",
            Family::V6 => "ipv6",
        }
    }

    /// The family of `addr`.
    pub fn of(addr: &IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    /// The family named by a path component.
    pub fn from_key(key: &str) -> Option<Family> {
        match key {
            "ipv4" => Some(Family::V4),
            "ipv6" => Some(Family::V6),
            _ => None,
        }
    }
}

/// The slots of one interface and family: index = slot.
#[derive(Clone, Debug)]
struct Table<V> {
    slots: Vec<Option<V>>,
    /// Assigned during the current render.
    seen: bool,
    /// Addresses were skipped at the last render (the log said so).
    capped: bool,
}

impl<V> Default for Table<V> {
    fn default() -> Self {
        Table {
            slots: Vec::new(),
            seen: false,
            capped: false,
        }
    }
}

impl<V: PartialEq> Table<V> {
    fn position(&self, addr: &V) -> Option<usize> {
        self.slots.iter().position(|s| s.as_ref() == Some(addr))
    }

    fn lowest_free(&self, cap: usize) -> Option<usize> {
        (0..cap).find(|&i| self.slots.get(i).is_none_or(Option::is_none))
    }

    fn put(&mut self, slot: usize, addr: V) {
        if self.slots.len() <= slot {
            self.slots.resize_with(slot + 1, || None);
        }
        self.slots[slot] = Some(addr);
    }

    fn trim(&mut self) {
        while self.slots.last().is_some_and(Option::is_none) {
            self.slots.pop();
        }
    }
}

/// Slot tables for every (interface, family) key a schema publishes.
///
/// `K` displays as the xenstore directory of the slots (`attr/vif/0/ipv4`):
/// that is what the capping log line names.
#[derive(Clone, Debug)]
pub struct Slots<K, V = IpAddr> {
    tables: BTreeMap<K, Table<V>>,
    /// Slots a previous run left, per key, until the key is first rendered.
    seeds: BTreeMap<K, Table<V>>,
    /// What the slots hold and which option caps them, for the log.
    what: (&'static str, &'static str),
}

impl<K, V> Default for Slots<K, V> {
    fn default() -> Self {
        Slots::named("addresses", "--max-addresses")
    }
}

impl<K, V> Slots<K, V> {
    /// No slots yet, for `noun`s capped by `option` (named in the log).
    pub fn named(noun: &'static str, option: &'static str) -> Self {
        Slots {
            tables: BTreeMap::new(),
            seeds: BTreeMap::new(),
            what: (noun, option),
        }
    }
}

impl<K: Ord + Clone + Display, V: Ord + Clone + Debug> Slots<K, V> {
    /// No slots yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Remember that a previous run published `addr` in `slot` of `key`.
    ///
    /// Seeds take effect at the first [`Slots::assign`] of their key: the
    /// addresses still present keep their slots, the others are forgotten.
    /// Keys that are not rendered stay dormant (the first renders may come
    /// before the network is known; a VIF unplugged meanwhile costs a few
    /// bytes). An address seeded twice keeps its lowest slot, a slot seeded
    /// twice its first address: the other copy is left for the plan to
    /// remove as stale.
    pub fn seed(&mut self, key: K, slot: usize, addr: V) {
        let table = self.seeds.entry(key).or_default();
        match table.position(&addr) {
            Some(old) if old <= slot => return,
            Some(old) => table.slots[old] = None,
            None => {}
        }
        if table.slots.get(slot).is_none_or(Option::is_none) {
            table.put(slot, addr);
        }
        table.trim();
    }

    /// Assign slots to the addresses `present` now under `key` (sorted,
    /// without duplicates), with `primary` the interface's primary IPv4, and
    /// return the table: `table[n]` is the address in slot `n`.
    ///
    /// At most `cap` slots are used. When addresses have to be skipped, a
    /// warning says so once, until a render needs no capping again.
    pub fn assign(
        &mut self,
        key: &K,
        present: &[V],
        primary: Option<V>,
        cap: usize,
    ) -> &[Option<V>] {
        debug_assert!(
            present.windows(2).all(|w| w[0] < w[1]),
            "unsorted {present:?}"
        );
        if !self.tables.contains_key(key) {
            let seeded = self.seeds.remove(key).unwrap_or_default();
            self.tables.insert(key.clone(), seeded);
        }
        let Some(table) = self.tables.get_mut(key) else {
            return &[];
        };
        table.seen = true;

        // Forget what is gone, and anything above a (lowered) cap.
        table.slots.truncate(cap);
        for slot in &mut table.slots {
            if slot
                .as_ref()
                .is_some_and(|a| present.binary_search(a).is_err())
            {
                *slot = None;
            }
        }

        // The primary IPv4 claims slot 0 when it is free.
        let primary = primary.filter(|p| present.binary_search(p).is_ok());
        if let Some(p) = &primary {
            if cap > 0 && table.slots.first().is_none_or(Option::is_none) {
                if let Some(old) = table.position(p) {
                    table.slots[old] = None;
                }
                table.put(0, p.clone());
            }
        }

        // Newcomers, primary first then in address order, take the lowest
        // free slots.
        let mut skipped = 0;
        for addr in primary
            .iter()
            .chain(present.iter().filter(|a| Some(*a) != primary.as_ref()))
        {
            if table.position(addr).is_some() {
                continue;
            }
            match table.lowest_free(cap) {
                Some(slot) => table.put(slot, addr.clone()),
                None => skipped += 1,
            }
        }
        table.trim();

        if skipped == 0 {
            table.capped = false;
        } else if !table.capped {
            table.capped = true;
            let (noun, option) = self.what;
            log::warn!(
                "{key}: {} {noun}, publishing {cap} ({option}); \
                 the other {skipped} are skipped while there are too many",
                present.len()
            );
        }
        &table.slots
    }

    /// End a render: forget the tables of keys that were not assigned in
    /// it (their interface is gone, or no longer published), so that a key
    /// that comes back starts afresh.
    pub fn end_render(&mut self) {
        self.tables.retain(|_, t| std::mem::take(&mut t.seen));
    }

    /// Whether addresses of `key` were skipped at its last assignment.
    pub fn capped(&self, key: &K) -> bool {
        self.tables.get(key).is_some_and(|t| t.capped)
    }
}

/// The directory of numbered filesystem entries (`data/volumes`): the one
/// key of their slot table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Dir(&'static str);

impl Display for Dir {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// Which `<n>` each mounted filesystem gets in `<dir>/<n>/...` (std
/// `data/volumes`, rfc `data/fs`): by mount point, under the address rules
/// (stable while mounted, lowest free slot, at most `--max-filesystems`).
#[derive(Clone, Debug)]
pub struct MountSlots {
    dir: Dir,
    slots: Slots<Dir, String>,
}

impl MountSlots {
    /// No slots yet under `dir`.
    pub fn new(dir: &'static str) -> Self {
        MountSlots {
            dir: Dir(dir),
            slots: Slots::named("filesystems", "--max-filesystems"),
        }
    }

    /// The directory.
    pub fn dir(&self) -> &'static str {
        self.dir.0
    }

    /// Learn the slots a previous run left: `<dir>/<n>/<leaf>` holds the
    /// mount point of slot `n`.
    pub fn seed(&mut self, existing: &super::Nodes, leaf: &str) {
        for (path, value) in existing {
            let Some(rest) = path
                .strip_prefix(self.dir.0)
                .and_then(|r| r.strip_prefix('/'))
            else {
                continue;
            };
            if let Some((n, l)) = rest.split_once('/') {
                if let (Some(slot), true) = (parse_slot(n, 1024), l == leaf) {
                    self.slots.seed(self.dir, slot, value.clone());
                }
            }
        }
    }

    /// The slot of each filesystem published now: `(slot, filesystem)`.
    pub fn assign<'g>(
        &mut self,
        filesystems: &'g BTreeMap<String, crate::state::Filesystem>,
        cap: usize,
    ) -> Vec<(usize, &'g crate::state::Filesystem)> {
        let present: Vec<String> = filesystems.keys().cloned().collect();
        let table = self.slots.assign(&self.dir, &present, None, cap);
        let out = table
            .iter()
            .enumerate()
            .filter_map(|(n, m)| Some((n, filesystems.get(m.as_ref()?)?)))
            .collect();
        self.slots.end_render();
        out
    }
}

/// Parse a slot number as dom0 reads it: a decimal integer, written the
/// canonical way (no sign, no leading zero), below `limit`. Anything else a
/// previous run may have left is garbage for the plan to remove.
pub fn parse_slot(s: &str, limit: usize) -> Option<usize> {
    if s.is_empty() || (s.len() > 1 && s.starts_with('0')) || !s.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    s.parse().ok().filter(|&n| n < limit)
}

#[cfg(test)]
pub(crate) mod tests;
