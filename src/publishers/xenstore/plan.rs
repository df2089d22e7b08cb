//! From "what was written" and "what is wanted" to the xenstore operations
//! that get from one to the other, in the order dom0's readers need.
//!
//! Pure: the publisher calls [`plan`] for every change set (and once at
//! start, against what it read back), sends the operations in one
//! transaction, then records them with [`apply`].
//!
//! Also the one place that knows xenstore's limits ([`valid_path`],
//! [`valid_value`], [`sanitize`]): nothing that would get the connection
//! dropped ever leaves [`plan`], whatever a schema rendered.

use std::collections::BTreeSet;
use std::ops::Bound;

use super::schema::{Nodes, Op};

/// Longest relative path xenstored accepts (xenstore.txt).
pub const MAX_PATH: usize = 2048;

/// Longest value xenstored accepts from an unprivileged domain (seen in a
/// real guest; the protocol's payload limit is 4096 for path and value).
pub const MAX_VALUE: usize = 2048;

/// Largest request payload (path, NUL, value) before xenstored drops the
/// connection.
const MAX_PAYLOAD: usize = 4096;

/// Where a guest agent may write, from the contract: `data/`, `attr/`,
/// `xenserver/attr/` and the single node `control/feature-balloon`.
/// Anything else belongs to the toolstack or the kernel.
pub fn writable(path: &str) -> bool {
    path == "control/feature-balloon"
        || ["data/", "attr/", "xenserver/attr/"]
            .iter()
            .any(|p| path.starts_with(p))
}

/// Whether `path` is a relative xenstore path xenstored accepts: only
/// `[A-Za-z0-9-/_@]`, at most [`MAX_PATH`] bytes, no empty component (no
/// leading, trailing or doubled `/`).
pub fn valid_path(path: &str) -> bool {
    !path.is_empty() && path.len() <= MAX_PATH && path.split('/').all(valid_component)
}

/// Whether `s` can be one component of a path (a key): non-empty, only
/// `[A-Za-z0-9-_@]`. Schemas use it on keys that come from outside (SR-IOV
/// VF ids dom0 wrote).
pub fn valid_component(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'@')
}

/// Whether `value` can be written: printable ASCII (0x20-0x7e), at most
/// [`MAX_VALUE`] bytes.
pub fn valid_value(value: &str) -> bool {
    value.len() <= MAX_VALUE && value.bytes().all(|b| (0x20..=0x7e).contains(&b))
}

/// `s` made writable: every character outside printable ASCII becomes `?`,
/// and the result is cut at [`MAX_VALUE`] bytes.
///
/// Interface names may hold any byte but `/` and NUL, OS names may hold
/// UTF-8: dom0 shows these values to people, so a readable approximation
/// beats an escape syntax nobody decodes (or dropping the node).
pub fn sanitize(s: &str) -> String {
    if valid_value(s) {
        return s.to_owned();
    }
    s.chars()
        .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
        .take(MAX_VALUE)
        .collect()
}

/// Which step of a change set `path` belongs to (the contract's order):
/// rfc's layout version first, then the rest of `data/` (which xenopsd does
/// not watch but re-reads when a watch fires), then `attr/` and
/// `xenserver/attr/` (watched), then `control/` (watched; feature-balloon
/// last).
fn rank(path: &str) -> u8 {
    if path == "data/xen-guest-agent" || path.starts_with("data/xen-guest-agent/") {
        0
    } else if path.starts_with("data/") {
        1
    } else if path.starts_with("control/") {
        3
    } else {
        2
    }
}

/// Whether `path` is `root` or below it.
fn within(path: &str, root: &str) -> bool {
    path.strip_prefix(root)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Whether `nodes` has `path` itself or anything below it.
fn has_under(nodes: &Nodes, path: &str) -> bool {
    if nodes.contains_key(path) {
        return true;
    }
    // Children sort right after "path/" ('-' and '.' sort before '/', so
    // a plain range from `path` could stop at a sibling like "path-x").
    let children = format!("{path}/");
    nodes
        .range::<str, _>((Bound::Included(children.as_str()), Bound::Unbounded))
        .next()
        .is_some_and(|(k, _)| k.starts_with(&children))
}

/// The operations that turn `written` into `desired`, touching nothing
/// outside `owned` but the writes `desired` asks for.
///
/// - A node is written only when it is new or its value changed: dom0's
///   watches fire on every write, even of an equal value.
/// - A node that is no longer desired is removed when it lies below one of
///   the `owned` subtrees, through its shallowest ancestor (down from the
///   owned root) that holds nothing desired: one `Remove` of `attr/vif/1`
///   for a VIF that went, and no empty `attr/vif/1/ipv4` left behind when
///   its last address went. Nothing outside `owned` is ever removed.
/// - A written node that is not desired but has desired children (a
///   previous agent's `data/net/<index>` = name) is emptied, since the
///   layouts keep values on leaves only.
/// - Invalid paths or values, and writes outside the places a guest may
///   write ([`writable`]), are never sent: they are logged as the bugs
///   they are and skipped.
///
/// Order: by the contract's rank (`data/xen-guest-agent/*`, `data/*`,
/// `attr/*` and `xenserver/*`, `control/*`), removals before writes within a
/// rank, by path within those. Removing first within a rank is safe for
/// XAPI, which re-reads the whole `attr` tree whenever one of its watches
/// fires (even if the backend cannot group the change set in a
/// transaction): a removal never covers a node written in the same plan (a
/// subtree is removed only when nothing in it is desired), so nothing
/// written is lost, and every intermediate state a reader may see holds no
/// address that is gone and no address twice (a primary IPv4 moving to slot
/// 0 leaves its old slot first). Writing first would briefly show both.
pub fn plan(written: &Nodes, desired: &Nodes, owned: &[&str]) -> Vec<Op> {
    let mut ops: Vec<(u8, bool, Op)> = Vec::new();

    for (path, value) in desired {
        if written.get(path) == Some(value) {
            continue;
        }
        if !(valid_path(path) && writable(path)) {
            log::error!("not writing invalid or forbidden xenstore path {path:?} (a bug)");
            continue;
        }
        if !valid_value(value) || path.len() + 1 + value.len() > MAX_PAYLOAD {
            log::error!("not writing invalid value {value:?} at {path} (a bug)");
            continue;
        }
        let op = Op::Write {
            path: path.clone(),
            value: value.clone(),
        };
        ops.push((rank(path), true, op));
    }

    let mut removals = BTreeSet::new();
    for (path, value) in written {
        if desired.contains_key(path) || !valid_path(path) {
            continue;
        }
        // The outermost owned root holding this node, if any.
        let Some(root) = owned
            .iter()
            .filter(|r| within(path, r))
            .min_by_key(|r| r.len())
        else {
            continue;
        };
        // Ancestors from the owned root down to the node itself.
        let stale = std::iter::once(root.len())
            .chain(
                path[root.len()..]
                    .match_indices('/')
                    .map(|(i, _)| root.len() + i)
                    .filter(|&i| i > root.len()),
            )
            .chain(std::iter::once(path.len()))
            .map(|end| &path[..end])
            .find(|ancestor| !has_under(desired, ancestor));
        match stale {
            Some(ancestor) => {
                removals.insert(ancestor.to_string());
            }
            None if !value.is_empty() => {
                // Desired children below a node holding a value: empty it.
                let op = Op::Write {
                    path: path.clone(),
                    value: String::new(),
                };
                ops.push((rank(path), true, op));
            }
            None => {}
        }
    }
    // Each stale node was attributed its shallowest stale ancestor, so no
    // removal lies below another; `last` guards against overlapping owned
    // roots all the same.
    let mut last: Option<&String> = None;
    for path in &removals {
        if last.is_some_and(|l| within(path, l)) {
            continue;
        }
        last = Some(path);
        ops.push((rank(path), false, Op::Remove { path: path.clone() }));
    }

    ops.sort_by(|(ra, wa, a), (rb, wb, b)| {
        (ra, wa)
            .cmp(&(rb, wb))
            .then_with(|| op_path(a).cmp(op_path(b)))
    });
    ops.into_iter().map(|(_, _, op)| op).collect()
}

/// The path an operation acts on.
pub fn op_path(op: &Op) -> &str {
    match op {
        Op::Write { path, .. } | Op::Remove { path } => path,
    }
}

/// Record in `written` what `op` did, once xenstore accepted it, so that
/// the next [`plan`] diffs against the truth. A removal that leaves its
/// directory empty (below an `owned` root) leaves that directory in
/// xenstore: it is recorded as the empty node it is, so that a later plan
/// removes it once nothing is wanted under it.
pub fn apply(written: &mut Nodes, op: &Op, owned: &[&str]) {
    match op {
        Op::Write { path, value } => {
            written.insert(path.clone(), value.clone());
        }
        Op::Remove { path } => {
            written.retain(|k, _| !within(k, path));
            if let Some((parent, _)) = path.rsplit_once('/') {
                let below_root = owned
                    .iter()
                    .any(|r| within(parent, r) && parent.len() > r.len());
                if below_root && !has_under(written, parent) {
                    written.insert(parent.to_string(), String::new());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
