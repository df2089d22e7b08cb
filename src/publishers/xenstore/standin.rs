//! Stand-ins for the schemas branch (plan, Std, Rfc): removed at merge.

use super::schema::{Context, Nodes, Op, Schema};
use crate::state::Guest;

/// Minimal plan: removals first, then writes, by rank.
pub fn plan(written: &Nodes, desired: &Nodes, _owned: &[&str]) -> Vec<Op> {
    let rank = |p: &str| {
        if p.starts_with("data/") {
            0
        } else if p.starts_with("control/") {
            2
        } else {
            1
        }
    };
    let mut ops = Vec::new();
    for r in 0..3 {
        for p in written
            .keys()
            .filter(|p| rank(p) == r && !desired.contains_key(*p))
        {
            ops.push(Op::Remove { path: p.clone() });
        }
        for (p, v) in desired.iter().filter(|(p, _)| rank(p) == r) {
            if written.get(p) != Some(v) {
                ops.push(Op::Write {
                    path: p.clone(),
                    value: v.clone(),
                });
            }
        }
    }
    ops
}

/// A tiny schema.
#[derive(Default)]
pub struct Tiny;

impl Schema for Tiny {
    fn name(&self) -> &'static str {
        "tiny"
    }
    fn owned(&self) -> &'static [&'static str] {
        &[
            "data/os_name",
            "data/meminfo_free",
            "attr/vif",
            "control/feature-balloon",
        ]
    }
    fn adopt(&mut self, _existing: &Nodes) {}
    fn render(&mut self, guest: &Guest, ctx: &Context) -> Nodes {
        let mut n = Nodes::new();
        if let Some(os) = &guest.os {
            n.insert("data/os_name".into(), os.name.clone());
        }
        if let Some(m) = &guest.memory {
            n.insert("data/meminfo_free".into(), m.available_kib.to_string());
        }
        for i in guest.interfaces.values() {
            if let Some(id) = i.link.kind.vif() {
                for (slot, a) in i.addresses.keys().filter(|a| a.is_ipv4()).enumerate() {
                    n.insert(format!("attr/vif/{id}/ipv4/{slot}"), a.to_string());
                }
            }
        }
        if ctx.feature_balloon {
            n.insert("control/feature-balloon".into(), "1".into());
        }
        n
    }
}

/// The schema for the command line.
pub fn schema(_kind: crate::cli::Schema) -> Box<dyn Schema> {
    Box::new(Tiny)
}
