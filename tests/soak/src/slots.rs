//! The slot rules (docs/xenstore-schema.md), checked on what an address
//! directory shows at a check, given what it showed at the last good one.
//!
//! Slot numbers depend on the order in which the agent saw the changes,
//! so they are not predicted: the rules are checked instead.
//! - the directory shows exactly the reportable addresses, or `cap` of
//!   them when there are more (then every slot below the cap is used);
//! - an address that lived through the period keeps its slot (the primary
//!   IPv4 may move to a freed slot 0: the one move allowed);
//! - the primary IPv4 holds slot 0 whenever it is free;
//! - newcomers take the lowest free slots: a free slot below a newcomer
//!   needs an address that left meanwhile to explain it.
//!
//! rfc keys addresses by value, so only "exactly these, or `cap` of them,
//! those shown staying shown" applies there.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use crate::expect::{mangle, AddrDir, Family};

/// What one directory shows: key (slot number, or rfc's mangled address)
/// → address.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Shown {
    pub by_key: BTreeMap<String, IpAddr>,
    /// The primary IPv4 when this was taken.
    pub primary: Option<IpAddr>,
    /// Reportable addresses the kernel had then that were not shown though
    /// the cap left room: their writes were refused (EACCES, quota), so the
    /// agent may hold a slot for them the tree did not show. Set by the
    /// driver when it keeps a check as the reference.
    pub hidden: BTreeSet<IpAddr>,
}

impl Shown {
    /// std: the address in slot `n`.
    fn slot(&self, n: usize) -> Option<IpAddr> {
        self.by_key.get(&n.to_string()).copied()
    }

    fn slot_of(&self, ip: &IpAddr) -> Option<usize> {
        self.by_key
            .iter()
            .find(|(_, a)| *a == ip)
            .and_then(|(k, _)| k.parse().ok())
    }

    fn ips(&self) -> BTreeSet<IpAddr> {
        self.by_key.values().copied().collect()
    }
}

/// What the driver did to a directory's addresses during the period.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Churn {
    /// Addresses may have left without the driver knowing which (a link
    /// went down and took its IPv6 addresses, DAD ran again, the chain of
    /// masters changed, the agent lost its slot memory...): only the rules
    /// that need no history apply.
    pub unknown: bool,
    /// Address removals the driver made on the directory's interfaces.
    pub departures: usize,
    /// The addresses those removals were about.
    pub removed: BTreeSet<IpAddr>,
}

/// Parse a directory's children (`child` → value). Entries that break the
/// layout are returned as violations.
pub fn parse(dir: &AddrDir, entries: &BTreeMap<String, String>) -> (Shown, Vec<String>) {
    let mut shown = Shown {
        by_key: BTreeMap::new(),
        primary: dir.primary,
        hidden: BTreeSet::new(),
    };
    let mut bad = Vec::new();
    for (key, value) in entries {
        let text = if dir.keyed {
            value.split_once('/').map_or(value.as_str(), |(a, _)| a)
        } else {
            value.as_str()
        };
        let Ok(ip) = text.parse::<IpAddr>() else {
            bad.push(format!("{key} = {value:?} is not an address"));
            continue;
        };
        if Family::of(&ip) != dir.family || ip.to_string() != text {
            bad.push(format!(
                "{key} = {value:?}: not a {} address in canonical form",
                dir.family.key()
            ));
            continue;
        }
        if dir.keyed {
            if *key != mangle(&ip) {
                bad.push(format!("{key} = {value:?}: the key is not the address"));
                continue;
            }
            if let Some(prefix) = dir.present.get(&ip) {
                if *value != format!("{ip}/{prefix}") {
                    bad.push(format!("{key} = {value:?}, expected \"{ip}/{prefix}\""));
                }
            }
        } else if key.parse::<usize>().map(|n| n.to_string()) != Ok(key.clone()) {
            bad.push(format!(
                "slot {key:?} (= {value}) is not a decimal slot number"
            ));
            continue;
        }
        if shown.by_key.values().any(|a| *a == ip) {
            bad.push(format!("{ip} is shown twice"));
        }
        shown.by_key.insert(key.clone(), ip);
    }
    (shown, bad)
}

/// Whether `shown` holds the addresses the directory must show: what a
/// converged agent has (history does not matter here). `denied`: keys the
/// agent was refused (EACCES), which may hold anything or nothing.
pub fn set_violations(
    dir: &AddrDir,
    shown: &Shown,
    cap: usize,
    denied: &BTreeSet<String>,
) -> Vec<String> {
    let mut v = Vec::new();
    let mut ips: BTreeSet<IpAddr> = BTreeSet::new();
    for (key, ip) in &shown.by_key {
        if denied.contains(key) {
            continue;
        }
        ips.insert(*ip);
        if !dir.present.contains_key(ip) {
            v.push(format!(
                "{key} = {ip}: stale, the kernel has no such reportable address"
            ));
        }
        if !dir.keyed && key.parse::<usize>().is_ok_and(|n| n >= cap) {
            v.push(format!("slot {key} = {ip}: beyond the cap of {cap}"));
        }
    }
    let want = dir.present.len().min(cap);
    let relaxed = denied.len();
    if ips.len() + relaxed < want || ips.len() > want {
        let missing: Vec<String> = dir
            .present
            .keys()
            .filter(|a| !ips.contains(a))
            .map(IpAddr::to_string)
            .collect();
        v.push(format!(
            "shows {} addresses, must show {want} ({} reportable, cap {cap}); not shown: {}",
            ips.len(),
            dir.present.len(),
            missing.join(" ")
        ));
    }
    if !dir.keyed && relaxed == 0 {
        if dir.present.len() >= cap {
            // Capped: a skipped address moves into any freed slot.
            let free: Vec<usize> = (0..cap).filter(|n| shown.slot(*n).is_none()).collect();
            if !free.is_empty() {
                v.push(format!(
                    "capped ({} addresses, cap {cap}) yet slots {free:?} are free",
                    dir.present.len()
                ));
            }
        }
        if dir.primary.is_some() && cap > 0 && shown.slot(0).is_none() {
            v.push(format!(
                "slot 0 is free while the primary {} is present: it must take it",
                dir.primary.unwrap_or(IpAddr::from([0, 0, 0, 0]))
            ));
        }
    }
    v
}

/// The rules that compare with the last good check (`before`, `None`
/// for a directory that did not exist then).
pub fn history_violations(
    dir: &AddrDir,
    now: &Shown,
    before: Option<&Shown>,
    churn: &Churn,
    denied: &BTreeSet<String>,
) -> Vec<String> {
    let mut v = Vec::new();
    if churn.unknown || !denied.is_empty() {
        return v;
    }
    let empty = Shown::default();
    let before = before.unwrap_or(&empty);
    let survivors: Vec<(String, IpAddr)> = before
        .by_key
        .iter()
        .filter(|(_, ip)| dir.present.contains_key(ip) && !churn.removed.contains(ip))
        .map(|(k, ip)| (k.clone(), *ip))
        .collect();
    let now_ips = now.ips();
    for (key, ip) in &survivors {
        if !now_ips.contains(ip) {
            v.push(format!(
                "{ip} (was {key}) lived through the period but is no longer shown"
            ));
        }
    }
    if dir.keyed {
        return v;
    }
    // The primary may move to slot 0 once freed.
    let mut moved_primary = false;
    for (key, ip) in &survivors {
        let Some(slot) = now.slot_of(ip) else {
            continue;
        };
        if slot.to_string() == *key {
            continue;
        }
        let zero_freed = before.slot(0).is_none_or(|a| now.slot(0) != Some(a));
        // Any link's own primary: the directory's primary may have been
        // another one when slot 0 freed up (a bridge without a primary for
        // a moment, in a burst), which the period's end does not show.
        let a_primary = Some(*ip) == dir.primary || dir.link_primaries.contains(ip);
        if slot == 0 && a_primary && zero_freed {
            moved_primary = true;
        } else {
            v.push(format!(
                "{ip} moved from slot {key} to slot {slot}: an address keeps its slot while it exists"
            ));
        }
    }
    let survivor_ips: BTreeSet<IpAddr> = survivors.iter().map(|(_, ip)| *ip).collect();
    let newcomers: Vec<(usize, IpAddr)> = now
        .by_key
        .iter()
        .filter(|(_, ip)| !survivor_ips.contains(ip) && !before.hidden.contains(ip))
        .filter_map(|(k, ip)| Some((k.parse().ok()?, *ip)))
        .collect();
    // Slot 0 to a newcomer while the primary was there all along.
    if let (Some(primary), Some(zero)) = (dir.primary, now.slot(0)) {
        let steady = before.primary == Some(primary) && survivor_ips.contains(&primary);
        if steady && zero != primary && newcomers.iter().any(|(s, _)| *s == 0) {
            v.push(format!(
                "slot 0 went to newcomer {zero} while the primary {primary} was present all along"
            ));
        }
    }
    if let Some(highest) = newcomers.iter().map(|(s, _)| *s).max() {
        let holes: Vec<usize> = (0..highest).filter(|n| now.slot(*n).is_none()).collect();
        let explained = churn.departures + usize::from(moved_primary);
        if holes.len() > explained {
            v.push(format!(
                "free slots {holes:?} below newcomer slot {highest} with only {} removals in the \
                 period: a new address takes the lowest free slot",
                churn.departures
            ));
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn dir(present: &[&str], primary: Option<&str>) -> AddrDir {
        AddrDir {
            family: Family::V4,
            keyed: false,
            present: present.iter().map(|a| (ip(a), 24)).collect(),
            primary: primary.map(ip),
            link_primaries: BTreeSet::new(),
            chain: vec![2],
        }
    }

    fn shown(slots: &[(usize, &str)], primary: Option<&str>) -> Shown {
        Shown {
            by_key: slots.iter().map(|(n, a)| (n.to_string(), ip(a))).collect(),
            primary: primary.map(ip),
            hidden: BTreeSet::new(),
        }
    }

    fn none() -> BTreeSet<String> {
        BTreeSet::new()
    }

    #[test]
    fn garbage_entries_are_violations() {
        let d = dir(&["10.0.0.2"], None);
        let entries: BTreeMap<String, String> = [
            ("0", "10.0.0.2"),
            ("01", "10.0.0.2"),
            ("x", "10.0.0.3"),
            ("2", "2001:db8::1"),
            ("3", "nonsense"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let (s, bad) = parse(&d, &entries);
        assert_eq!(s.by_key.len(), 1, "{bad:?}");
        assert_eq!(bad.len(), 4, "{bad:?}");
    }

    #[test]
    fn the_set_must_be_exact_below_the_cap_and_full_above_it() {
        let d = dir(&["10.0.0.2", "10.0.0.3"], Some("10.0.0.2"));
        let ok = shown(&[(0, "10.0.0.2"), (1, "10.0.0.3")], None);
        assert!(set_violations(&d, &ok, 32, &none()).is_empty());
        let missing = shown(&[(0, "10.0.0.2")], None);
        assert_eq!(set_violations(&d, &missing, 32, &none()).len(), 1);
        let stale = shown(&[(0, "10.0.0.2"), (1, "10.0.0.3"), (2, "10.0.0.9")], None);
        assert_eq!(set_violations(&d, &stale, 32, &none()).len(), 2);
        // Cap 1: one of them, in slot 0.
        let capped = shown(&[(0, "10.0.0.3")], None);
        assert!(set_violations(&d, &capped, 1, &none()).is_empty());
        let beyond = shown(&[(1, "10.0.0.3")], None);
        assert!(!set_violations(&d, &beyond, 1, &none()).is_empty());
        // Primary present, slot 0 free.
        let hole = shown(&[(1, "10.0.0.2"), (2, "10.0.0.3")], None);
        let v = set_violations(&d, &hole, 32, &none());
        assert!(v.iter().any(|l| l.contains("slot 0 is free")), "{v:?}");
    }

    #[test]
    fn survivors_keep_their_slots_but_the_primary_may_take_a_freed_zero() {
        let d = dir(&["10.0.0.2", "10.0.0.3"], Some("10.0.0.2"));
        let before = shown(&[(1, "10.0.0.2"), (2, "10.0.0.3")], Some("10.0.0.2"));
        let churn = Churn::default();
        let same = shown(&[(1, "10.0.0.2"), (2, "10.0.0.3")], None);
        assert!(history_violations(&d, &same, Some(&before), &churn, &none()).is_empty());
        let moved = shown(&[(1, "10.0.0.2"), (0, "10.0.0.3")], None);
        assert_eq!(
            history_violations(&d, &moved, Some(&before), &churn, &none()).len(),
            1
        );
        let primary_to_zero = shown(&[(0, "10.0.0.2"), (2, "10.0.0.3")], None);
        let v = history_violations(&d, &primary_to_zero, Some(&before), &churn, &none());
        assert!(v.is_empty(), "{v:?}");
    }

    /// The hour-long soak's period 240 (bench/soak.json): a VIF's own
    /// primary took its freed slot 0 while its bridge had no primary (in
    /// a burst), and the bridge's new primary, the directory's at the
    /// period's end, found slot 0 taken. Not a move the rules forbid.
    #[test]
    fn a_link_primary_that_was_the_directorys_within_the_period_may_take_a_freed_zero() {
        let mut d = dir(&["10.141.205.82", "10.140.223.40"], Some("10.140.223.40"));
        let before = shown(&[(0, "10.140.189.195"), (1, "10.141.205.82")], None);
        let churn = Churn {
            departures: 1,
            removed: [ip("10.140.189.195")].into(),
            ..Churn::default()
        };
        let now = shown(&[(0, "10.141.205.82"), (1, "10.140.223.40")], None);
        let v = history_violations(&d, &now, Some(&before), &churn, &none());
        assert!(
            v.iter().any(|l| l.contains("moved from slot 1 to slot 0")),
            "{v:?}"
        );
        d.link_primaries = [ip("10.141.205.82"), ip("10.140.223.40")].into();
        let v = history_violations(&d, &now, Some(&before), &churn, &none());
        assert!(v.is_empty(), "{v:?}");
        // Not any address: a secondary still may not move there.
        let other = shown(&[(0, "10.140.223.40"), (1, "10.141.205.82")], None);
        let mut d2 = dir(&["10.141.205.82", "10.140.223.40"], Some("10.141.205.82"));
        d2.link_primaries = [ip("10.141.205.82")].into();
        let before2 = shown(&[(0, "10.140.189.195"), (2, "10.140.223.40")], None);
        let v = history_violations(&d2, &other, Some(&before2), &churn, &none());
        assert!(
            v.iter().any(|l| l.contains("moved from slot 2 to slot 0")),
            "{v:?}"
        );
    }

    /// The hour-long soak's period 1196: an address whose write was refused
    /// at the last good check (the check accepted its absence) kept the
    /// slot the agent gave it; shown later, it is no newcomer.
    #[test]
    fn an_address_hidden_by_a_refusal_at_the_last_check_is_no_newcomer() {
        let d = dir(&["10.0.0.2", "10.0.0.3", "10.0.0.8"], Some("10.0.0.2"));
        let mut before = shown(&[(0, "10.0.0.2"), (1, "10.0.0.3")], None);
        let now = shown(&[(0, "10.0.0.2"), (1, "10.0.0.3"), (8, "10.0.0.8")], None);
        let holes = history_violations(&d, &now, Some(&before), &Churn::default(), &none());
        assert!(
            holes.iter().any(|l| l.contains("below newcomer slot 8")),
            "{holes:?}"
        );
        before.hidden = [ip("10.0.0.8")].into();
        let v = history_violations(&d, &now, Some(&before), &Churn::default(), &none());
        assert!(v.is_empty(), "{v:?}");
    }

    #[test]
    fn newcomers_take_the_lowest_free_slots_unless_removals_explain_a_hole() {
        let d = dir(&["10.0.0.2", "10.0.0.4", "10.0.0.5"], Some("10.0.0.2"));
        let before = shown(&[(0, "10.0.0.2")], Some("10.0.0.2"));
        let low = shown(&[(0, "10.0.0.2"), (1, "10.0.0.5"), (2, "10.0.0.4")], None);
        let none_left = Churn::default();
        assert!(history_violations(&d, &low, Some(&before), &none_left, &none()).is_empty());
        let gap = shown(&[(0, "10.0.0.2"), (2, "10.0.0.4"), (3, "10.0.0.5")], None);
        assert_eq!(
            history_violations(&d, &gap, Some(&before), &none_left, &none()).len(),
            1
        );
        // 10.0.0.3 came and went in slot 1 before 10.0.0.4 arrived.
        let one_left = Churn {
            departures: 1,
            removed: [ip("10.0.0.3")].into(),
            ..Churn::default()
        };
        assert!(history_violations(&d, &gap, Some(&before), &one_left, &none()).is_empty());
        let unknown = Churn {
            unknown: true,
            ..Churn::default()
        };
        assert!(history_violations(&d, &gap, Some(&before), &unknown, &none()).is_empty());
    }

    #[test]
    fn a_newcomer_may_not_take_slot_zero_from_a_steady_primary() {
        let d = dir(&["10.0.0.2", "10.0.0.3"], Some("10.0.0.2"));
        let before = shown(&[(1, "10.0.0.2"), (0, "10.0.0.9")], Some("10.0.0.2"));
        let churn = Churn {
            departures: 1,
            removed: [ip("10.0.0.9")].into(),
            ..Churn::default()
        };
        let stolen = shown(&[(1, "10.0.0.2"), (0, "10.0.0.3")], None);
        let v = history_violations(&d, &stolen, Some(&before), &churn, &none());
        assert!(v.iter().any(|l| l.contains("newcomer")), "{v:?}");
    }

    #[test]
    fn rfc_keys_must_be_the_addresses_and_shown_ones_stay_shown() {
        let mut d = dir(&["10.0.0.2", "10.0.0.3"], None);
        d.keyed = true;
        let entries: BTreeMap<String, String> = [
            ("10_0_0_2", "10.0.0.2/24"),
            ("10_0_0_4", "10.0.0.3/24"),
            ("10_0_0_3", "10.0.0.3/16"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let (s, bad) = parse(&d, &entries);
        assert_eq!(bad.len(), 2, "{bad:?}");
        let before = Shown {
            by_key: [("10_0_0_9".to_string(), ip("10.0.0.3"))].into(),
            primary: None,
            hidden: BTreeSet::new(),
        };
        let now = Shown {
            by_key: [("10_0_0_2".to_string(), ip("10.0.0.2"))].into(),
            primary: None,
            hidden: BTreeSet::new(),
        };
        assert_eq!(
            history_violations(&d, &now, Some(&before), &Churn::default(), &none()).len(),
            1
        );
        assert_eq!(s.by_key.len(), 2);
    }
}
