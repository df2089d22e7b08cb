//! The op log rules: what the agent asked of xenstored, read from the test
//! xenstored's log of every request.
//!
//! - no write of a node with the value it already has (each fires dom0's
//!   watches for nothing);
//! - nothing written or removed outside the guest's own subtrees
//!   (`data/`, `attr/`, `xenserver/attr/`, `control/feature-balloon`);
//! - a committed change set in the contract's order (`data/` first, rfc's
//!   `data/xen-guest-agent` before the rest, then `attr/` and
//!   `xenserver/attr/`, then `control/`, `data/updated` last and once).
//!
//! It also keeps the nodes xenstored refused the agent (`EACCES`, `EPERM`,
//! `EROFS`) since the agent started and since the domain changed: those
//! may hold anything (the agent stops writing them, by contract); a new
//! domain or a new agent starts with none.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use test_xenstored::{ConnId, Errno, MsgType, OpRecord};

/// Counts over the whole run.
#[derive(Clone, Debug, Default)]
pub struct Figures {
    /// Requests of the guest, by type.
    pub requests: BTreeMap<String, u64>,
    pub committed: u64,
    pub failed_commits: u64,
    pub unchanged_writes: u64,
    pub outside_subtrees: u64,
    pub out_of_order: u64,
    /// Writes and removals outside any transaction (the contract wants one
    /// transaction per change set: counted, not a failure).
    pub outside_transactions: u64,
    /// Requests lost between reading the log and resetting it (their
    /// rules could not be checked).
    pub unseen: u64,
    /// Unchanged writes of nodes the agent had been refused the reading
    /// of (it could not know their value): counted, not failures.
    pub blind_unchanged_writes: u64,
    /// Refusals by error.
    pub refusals: BTreeMap<String, u64>,
}

struct Open {
    ops: Vec<OpRecord>,
    denied: Vec<String>,
}

/// The rules' state across periods.
#[derive(Default)]
pub struct OpLog {
    open: HashMap<(ConnId, u32), Open>,
    /// Refused nodes (relative paths) of this agent in this domain.
    pub denied: BTreeSet<String>,
    /// Paths whose reading this agent was refused in this domain (it may
    /// believe anything about what is below).
    pub blind: BTreeSet<String>,
    /// The same, since the last check (whatever the agent or domain).
    pub blind_period: BTreeSet<String>,
    domid: Option<u32>,
    next_seq: Option<u64>,
    /// The latest agent committed a transaction: it has read the tree
    /// (its first step reconciles everything, in a transaction).
    pub committed_since_start: bool,
    pub figures: Figures,
}

/// The guest's home at the time of a record.
fn home(op: &OpRecord) -> String {
    format!("/local/domain/{}/", op.domid)
}

/// `path` relative to the home of `op`, if it is below it.
pub fn relative<'a>(op: &OpRecord, path: &'a str) -> Option<&'a str> {
    path.strip_prefix(&home(op))
}

/// Whether the agent may write or remove `rel` (a path in its home).
pub fn is_ours(rel: &str) -> bool {
    ["data/", "attr/", "xenserver/attr/"]
        .iter()
        .any(|p| rel.starts_with(p) && rel.len() > p.len())
        || rel == "control/feature-balloon"
}

/// Whether `path` is `root` or below it.
pub fn within(path: &str, root: &str) -> bool {
    path.strip_prefix(root)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The contract's rank of a node within a change set.
fn rank(rel: &str) -> u8 {
    match rel {
        "data/updated" => 4,
        r if r.starts_with("data/xen-guest-agent") => 0,
        r if r.starts_with("data/") => 1,
        r if r.starts_with("control/") => 3,
        _ => 2,
    }
}

/// One record, readable: `#12 guest conn 3 dom 5 XS_WRITE /local/... = "v" (tx 4, ok)`.
pub fn describe(op: &OpRecord) -> String {
    let who = match op.origin {
        test_xenstored::Origin::Guest(c) => format!("guest conn {c}"),
        test_xenstored::Origin::Dom0(c) => format!("dom0 conn {c}"),
        test_xenstored::Origin::Api => "api".to_string(),
    };
    format!(
        "#{} {who} dom {} {} {}{} (tx {}, {}{})",
        op.seq,
        op.domid,
        op.kind.map_or("?", |k| k.name()),
        op.path.as_deref().unwrap_or("-"),
        op.value
            .as_deref()
            .map(|v| format!(" = {v:?}"))
            .unwrap_or_default(),
        op.tx,
        match op.result {
            Ok(()) => "ok".to_string(),
            Err(e) => e.name().to_string(),
        },
        if op.is_ok(MsgType::Write) && !op.changed {
            ", unchanged"
        } else {
            ""
        }
    )
}

impl OpLog {
    /// An agent starts now (the records of the one before were all
    /// checked): it has refused nothing and read nothing yet.
    pub fn agent_started(&mut self) {
        self.denied.clear();
        self.blind.clear();
        self.committed_since_start = false;
    }

    /// Go through new records (in order); the rules they break.
    pub fn check(&mut self, ops: &[OpRecord]) -> Vec<String> {
        let mut v = Vec::new();
        if let (Some(expected), Some(first)) = (self.next_seq, ops.first()) {
            self.figures.unseen += first.seq.saturating_sub(expected);
        }
        for op in ops {
            self.next_seq = Some(op.seq + 1);
            let Some(conn) = op.origin.conn().filter(|_| op.origin.is_guest()) else {
                continue;
            };
            if self.domid != Some(op.domid) {
                // A new domain: the refusals of the old one are forgotten.
                self.domid = Some(op.domid);
                self.denied.clear();
                self.blind.clear();
            }
            let kind = op.kind.map_or("unknown", |k| k.name());
            *self.figures.requests.entry(kind.to_string()).or_default() += 1;
            if let Err(e) = op.result {
                *self
                    .figures
                    .refusals
                    .entry(e.name().to_string())
                    .or_default() += 1;
            }
            match op.kind {
                Some(MsgType::TransactionStart) if op.result.is_ok() => {
                    if let Some(id) = op.value.as_deref().and_then(|v| v.parse().ok()) {
                        let open = Open {
                            ops: Vec::new(),
                            denied: Vec::new(),
                        };
                        self.open.insert((conn, id), open);
                    }
                }
                Some(MsgType::TransactionEnd) => {
                    let Some(t) = self.open.remove(&(conn, op.tx)) else {
                        continue;
                    };
                    if op.result.is_ok() && op.value.as_deref() == Some("T") {
                        self.figures.committed += 1;
                        self.committed_since_start = true;
                        self.committed(t, &mut v);
                    } else {
                        self.figures.failed_commits += 1;
                    }
                }
                Some(MsgType::Read | MsgType::Directory)
                    if op.result.is_err() && op.result != Err(Errno::ENOENT) =>
                {
                    if let Some(rel) = op.path.as_deref().and_then(|p| relative(op, p)) {
                        self.blind.insert(rel.to_string());
                        self.blind_period.insert(rel.to_string());
                    }
                }
                Some(MsgType::Write | MsgType::Rm | MsgType::Mkdir | MsgType::SetPerms) => {
                    let path = op.path.as_deref().unwrap_or("");
                    if !relative(op, path).is_some_and(is_ours) {
                        self.figures.outside_subtrees += 1;
                        v.push(format!(
                            "outside the guest's own subtrees: {}",
                            describe(op)
                        ));
                    }
                    let refused =
                        matches!(op.result, Err(Errno::EACCES | Errno::EPERM | Errno::EROFS));
                    let rel = relative(op, path).map(str::to_string);
                    if op.tx == 0 {
                        if matches!(op.kind, Some(MsgType::Write | MsgType::Rm)) {
                            self.figures.outside_transactions += 1;
                        }
                        self.effective(op, &mut v);
                        if let (true, Some(rel)) = (refused, rel) {
                            self.denied.insert(rel);
                        }
                    } else if let Some(t) = self.open.get_mut(&(conn, op.tx)) {
                        t.ops.push(op.clone());
                        if let (true, Some(rel)) = (refused, rel) {
                            t.denied.push(rel);
                        }
                    }
                }
                _ => {}
            }
        }
        v
    }

    /// Forget transactions of connections that are gone (dropped with
    /// their transaction open).
    pub fn prune(&mut self, live: &[ConnId]) {
        self.open.retain(|(c, _), _| live.contains(c));
    }

    fn committed(&mut self, t: Open, v: &mut Vec<String>) {
        let mut last = 0;
        let mut stamps = 0;
        for op in &t.ops {
            self.effective(op, v);
            if !matches!(op.kind, Some(MsgType::Write | MsgType::Rm)) {
                continue;
            }
            let Some(rel) = op.path.as_deref().and_then(|p| relative(op, p)) else {
                continue;
            };
            let r = rank(rel);
            stamps += usize::from(r == 4);
            if r < last || stamps > 1 {
                self.figures.out_of_order += 1;
                v.push(format!(
                    "out of the contract's order (data, attr, control, data/updated once) in \
                     transaction {}: {}",
                    op.tx,
                    describe(op)
                ));
            }
            last = last.max(r);
        }
        self.denied.extend(t.denied);
    }

    /// A request that took effect.
    fn effective(&mut self, op: &OpRecord, v: &mut Vec<String>) {
        if op.is_ok(MsgType::Write) && !op.changed {
            let rel = op
                .path
                .as_deref()
                .and_then(|p| relative(op, p))
                .unwrap_or("");
            if self.blind.iter().any(|b| within(rel, b)) {
                self.figures.blind_unchanged_writes += 1;
                return;
            }
            self.figures.unchanged_writes += 1;
            v.push(format!("write of an unchanged node: {}", describe(op)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_xenstored::Origin;

    fn op(seq: u64, kind: MsgType, path: &str, value: &str, tx: u32) -> OpRecord {
        OpRecord {
            seq,
            origin: Origin::Guest(1),
            domid: 5,
            kind: Some(kind),
            path: (!path.is_empty()).then(|| format!("/local/domain/5/{path}")),
            value: (!value.is_empty()).then(|| value.to_string()),
            tx,
            result: Ok(()),
            changed: true,
        }
    }

    #[test]
    fn unchanged_writes_count_only_when_they_took_effect() {
        let mut log = OpLog::default();
        let mut same = op(2, MsgType::Write, "data/os_name", "x", 7);
        same.changed = false;
        let mut failed = vec![
            op(1, MsgType::TransactionStart, "", "7", 0),
            same.clone(),
            op(3, MsgType::TransactionEnd, "", "T", 7),
        ];
        failed[2].result = Err(Errno::EAGAIN);
        assert!(log.check(&failed).is_empty());
        let committed = [
            op(4, MsgType::TransactionStart, "", "8", 0),
            OpRecord {
                seq: 5,
                tx: 8,
                ..same
            },
            op(6, MsgType::TransactionEnd, "", "T", 8),
        ];
        assert_eq!(log.check(&committed).len(), 1);
        assert_eq!(log.figures.unchanged_writes, 1);
        assert_eq!((log.figures.committed, log.figures.failed_commits), (1, 1));
    }

    #[test]
    fn an_unchanged_write_after_a_refused_read_is_not_the_agents_fault() {
        let mut log = OpLog::default();
        let mut read = op(1, MsgType::Read, "data", "", 0);
        read.result = Err(Errno::EACCES);
        let mut write = op(2, MsgType::Write, "data/updated", "t", 0);
        write.changed = false;
        assert!(log.check(&[read, write.clone()]).is_empty());
        assert_eq!(log.figures.blind_unchanged_writes, 1);
        assert!(log.blind_period.contains("data"));
        log.agent_started();
        assert_eq!(log.check(&[OpRecord { seq: 3, ..write }]).len(), 1);
    }

    #[test]
    fn writes_outside_the_guests_subtrees_are_violations() {
        let mut log = OpLog::default();
        let ops = [
            op(1, MsgType::Write, "control/shutdown", "poweroff", 0),
            op(2, MsgType::Rm, "data", "", 0),
            op(3, MsgType::Write, "control/feature-balloon", "1", 0),
            op(
                4,
                MsgType::Write,
                "xenserver/attr/net-sriov-vf/1/ipv4/0",
                "10.0.0.1",
                0,
            ),
        ];
        let v = log.check(&ops);
        assert_eq!(v.len(), 2, "{v:?}");
        assert_eq!(log.figures.outside_transactions, 4);
    }

    #[test]
    fn order_within_a_committed_change_set() {
        let mut log = OpLog::default();
        let ops = [
            op(1, MsgType::TransactionStart, "", "3", 0),
            op(2, MsgType::Write, "attr/vif/0/name", "eth0", 3),
            op(3, MsgType::Write, "data/os_name", "x", 3),
            op(4, MsgType::Write, "data/updated", "t", 3),
            op(5, MsgType::Write, "data/updated", "u", 3),
            op(6, MsgType::TransactionEnd, "", "T", 3),
        ];
        assert_eq!(log.check(&ops).len(), 2);
    }

    #[test]
    fn refusals_are_remembered_until_a_new_agent_or_domain() {
        let mut log = OpLog::default();
        let mut denied = op(2, MsgType::Write, "attr/vif/0/ipv4/1", "10.0.0.3", 4);
        denied.result = Err(Errno::EACCES);
        let ops = [
            op(1, MsgType::TransactionStart, "", "4", 0),
            denied,
            op(3, MsgType::TransactionEnd, "", "T", 4),
        ];
        log.check(&ops);
        assert!(log.denied.contains("attr/vif/0/ipv4/1"));
        assert!(log.committed_since_start);
        log.agent_started();
        assert!(log.denied.is_empty());
        assert!(!log.committed_since_start);
        let mut again = op(5, MsgType::Rm, "attr/vif/1", "", 0);
        again.result = Err(Errno::EPERM);
        log.check(&[again]);
        assert_eq!(log.denied.len(), 1);
        let mut moved = op(6, MsgType::Read, "data/updated", "", 0);
        moved.domid = 9;
        log.check(&[moved]);
        assert!(log.denied.is_empty(), "a new domain forgets refusals");
        log.check(&[op(9, MsgType::Read, "domid", "", 0)]);
        // 4, 7 and 8 were never seen.
        assert_eq!(log.figures.unseen, 3);
    }
}
