//! The agent's tree as dom0 reads it, and its comparison with the
//! expected tree.

use std::collections::{BTreeMap, BTreeSet};

use test_xenstored::Server;

use crate::expect::{Expected, Want};
use crate::oplog::within;
use crate::slots::{self, Shown};

/// The leaves under the guest's own subtrees (`data/`, `attr/`,
/// `xenserver/attr/`, `control/feature-balloon`), by relative path.
pub fn ours(xs: &Server) -> BTreeMap<String, String> {
    let home = xs.home();
    let all = xs.tree(&home);
    let prefix = format!("{home}/");
    let mut out = BTreeMap::new();
    for (path, info) in &all {
        let Some(rel) = path.strip_prefix(&prefix) else {
            continue;
        };
        if !crate::oplog::is_ours(rel) {
            continue;
        }
        let below = format!("{path}/");
        let leaf = all
            .range(below.clone()..)
            .next()
            .is_none_or(|(k, _)| !k.starts_with(&below));
        if leaf {
            out.insert(rel.to_string(), info.value.clone());
        }
    }
    out
}

/// How the tree differs from the expected one.
#[derive(Clone, Debug, Default)]
pub struct Diff {
    pub missing: Vec<String>,
    /// Nodes that must not be there (stale).
    pub extra: Vec<String>,
    pub wrong: Vec<String>,
    /// Address directories that break the slot rules (by directory).
    pub slots: Vec<String>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.missing.is_empty()
            && self.extra.is_empty()
            && self.wrong.is_empty()
            && self.slots.is_empty()
    }

    /// One line per difference.
    pub fn lines(&self) -> Vec<String> {
        let tag =
            |t: &str, v: &[String]| v.iter().map(|l| format!("  {t} {l}")).collect::<Vec<_>>();
        [
            tag("missing", &self.missing),
            tag("stale  ", &self.extra),
            tag("wrong  ", &self.wrong),
            tag("slots  ", &self.slots),
        ]
        .concat()
    }
}

/// Compare `tree` with `expected`; what each address directory shows.
/// `denied`: nodes xenstored refused the agent, `blind`: subtrees it was
/// refused the reading of; both may hold anything.
pub fn compare(
    tree: &BTreeMap<String, String>,
    expected: &Expected,
    cap: usize,
    denied: &BTreeSet<String>,
    blind: &BTreeSet<String>,
) -> (Diff, BTreeMap<String, Shown>) {
    let exempt = |p: &str| denied.contains(p) || blind.iter().any(|b| within(p, b));
    let mut d = Diff::default();
    let mut entries: BTreeMap<&str, BTreeMap<String, String>> = BTreeMap::new();
    for (path, value) in tree {
        if exempt(path) {
            continue;
        }
        if let Some((dir, key)) = path.rsplit_once('/') {
            if let Some((dir, _)) = expected.dirs.get_key_value(dir) {
                entries
                    .entry(dir.as_str())
                    .or_default()
                    .insert(key.to_string(), value.clone());
                continue;
            }
        }
        match expected.nodes.get(path) {
            Some(want) if want.accepts(value) => {}
            Some(want) => d
                .wrong
                .push(format!("{path} = {value:?}, expected {}", show(want))),
            None => d.extra.push(format!("{path} = {value:?}")),
        }
    }
    for (path, want) in &expected.nodes {
        if !tree.contains_key(path) && !exempt(path) {
            d.missing.push(format!("{path} (expected {})", show(want)));
        }
    }
    let mut shown = BTreeMap::new();
    let none = BTreeMap::new();
    for (dir, spec) in &expected.dirs {
        let (s, bad) = slots::parse(spec, entries.get(dir.as_str()).unwrap_or(&none));
        let prefix = format!("{dir}/");
        let refused: BTreeSet<String> = denied
            .iter()
            .chain(blind)
            .filter_map(|p| p.strip_prefix(&prefix).map(str::to_string))
            .collect();
        let mut v = bad;
        if !exempt(dir) {
            v.extend(slots::set_violations(spec, &s, cap, &refused));
        }
        d.slots.extend(v.into_iter().map(|l| format!("{dir}: {l}")));
        shown.insert(dir.clone(), s);
    }
    (d, shown)
}

fn show(want: &Want) -> String {
    match want {
        Want::Exact(v) => format!("{v:?}"),
        Want::Timestamp => "a timestamp".to_string(),
        Want::Decimal { max } if *max == u64::MAX => "a number".to_string(),
        Want::Decimal { max } => format!("a number up to {max}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expect::{AddrDir, Family};

    fn expected() -> Expected {
        let mut e = Expected::default();
        e.nodes
            .insert("data/os_name".into(), Want::Exact("Debian".into()));
        e.nodes.insert("data/updated".into(), Want::Timestamp);
        e.nodes
            .insert("attr/vif/0/name".into(), Want::Exact("eth0".into()));
        e.dirs.insert(
            "attr/vif/0/ipv4".into(),
            AddrDir {
                family: Family::V4,
                keyed: false,
                present: [("10.0.0.2".parse().unwrap(), 16)].into(),
                primary: Some("10.0.0.2".parse().unwrap()),
                link_primaries: Default::default(),
                chain: vec![2],
            },
        );
        e
    }

    fn tree(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn an_exact_tree_has_no_difference() {
        let t = tree(&[
            ("data/os_name", "Debian"),
            ("data/updated", "Mon Jan  2 15:04:05 2006"),
            ("attr/vif/0/name", "eth0"),
            ("attr/vif/0/ipv4/0", "10.0.0.2"),
        ]);
        let (d, shown) = compare(&t, &expected(), 32, &BTreeSet::new(), &BTreeSet::new());
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(shown["attr/vif/0/ipv4"].by_key.len(), 1);
    }

    #[test]
    fn missing_stale_wrong_and_slot_problems_are_all_reported() {
        let t = tree(&[
            ("data/os_name", "Debian 13"),
            ("attr/vif/0/ipv4/1", "10.0.0.2"),
            ("attr/vif/3/name", "eth3"),
        ]);
        let (d, _) = compare(&t, &expected(), 32, &BTreeSet::new(), &BTreeSet::new());
        assert_eq!(d.missing.len(), 2, "{d:?}");
        assert_eq!(d.extra, ["attr/vif/3/name = \"eth3\""]);
        assert_eq!(d.wrong.len(), 1);
        assert_eq!(d.slots.len(), 1, "primary not in a free slot 0: {d:?}");
    }

    #[test]
    fn refused_nodes_may_hold_anything() {
        let t = tree(&[
            ("data/os_name", "stale"),
            ("data/updated", "Mon Jan  2 15:04:05 2006"),
            ("attr/vif/0/ipv4/0", "10.0.0.2"),
        ]);
        let denied: BTreeSet<String> =
            ["data/os_name".to_string(), "attr/vif/0/name".to_string()].into();
        let (d, _) = compare(&t, &expected(), 32, &denied, &BTreeSet::new());
        assert!(d.is_empty(), "{d:?}");
        // An unreadable subtree: stale nodes under it are not the agent's doing.
        let t2 = tree(&[
            ("data/os_name", "Debian"),
            ("data/updated", "Mon Jan  2 15:04:05 2006"),
            ("attr/vif/0/ipv4/0", "10.0.0.2"),
            ("attr/vif/0/ipv4/7", "10.0.0.7"),
        ]);
        let blind: BTreeSet<String> = ["attr/vif/0".to_string()].into();
        let (d, _) = compare(&t2, &expected(), 32, &BTreeSet::new(), &blind);
        assert!(d.is_empty(), "{d:?}");
    }
}
