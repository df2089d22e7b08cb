//! The publisher's steps against xenstore: connect, check, reconcile,
//! publish. Each is one function that makes its requests in a few batches
//! and tells the [`Schedule`](super::schedule::Schedule) what it found.
//!
//! Every transaction reads the canary (`data/updated`) as it starts: when
//! it is not what the agent last wrote, the tree under the transaction is
//! not ours (a new domain after a resume or migration), nothing is committed
//! and everything is reconciled instead, so that a change set can never
//! leave a partial tree behind. A reconciliation's transaction also reads
//! again which subtrees exist and the kept nodes: its read-back is outside
//! the transaction, and where there was no canary to compare, only these
//! tell a new domain that came in between.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::native::{Answer, Errno, Lost, Reply, Request, TxId};
use super::plan::{apply, plan};
use super::schedule::Outcome;
use super::schema::{Context, Nodes, Op, Schema};
use super::store::{Opener, Store};
use crate::state::Guest;

/// Written last in every transaction that changed something: squeezed
/// takes its presence as "an agent runs", and reading it back tells
/// whether our tree survived (the canary).
pub const UPDATED: &str = "data/updated";

/// Watched to notice a new domain: XAPI writes it for every domain, and,
/// like every watch, it fires when the guest kernel registers its watches
/// again after a resume (whether it exists does not matter).
pub const DOMAIN_ID: &str = "unique-domain-id";

/// Watched: dom0's announcement of SR-IOV virtual functions.
pub const SRIOV_VFS: &str = "xenserver/device/net-sriov-vf";

/// `--xenstore-timeout`'s default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

/// The watches, by token.
const WATCHES: [(&str, &str); 2] = [(DOMAIN_ID, "domain"), (SRIOV_VFS, "sriov")];

/// Most nodes read back under the owned subtrees (the per-domain quota is
/// 1000): a bound on what a confused tree can cost.
const MAX_READ_BACK: usize = 8192;

/// What a full reconciliation's read-back found of the tree's shape: the
/// reconciled subtrees that exist and the kept nodes' values. Its
/// transaction reads them again as it starts: the read-back is outside any
/// transaction, and where there was no canary (a first start, a lost tree)
/// only this tells a new domain after it from the tree it read.
#[derive(Debug, PartialEq, Eq)]
struct Shape {
    roots: Vec<bool>,
    kept: Vec<Option<String>>,
}

/// What a watch event asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fired {
    /// Check the canary (a new domain?).
    pub tree: bool,
    /// Read dom0's SR-IOV announcements again.
    pub sriov: bool,
}

/// The xenstore side of the publisher: the connection, the schema, and
/// what the agent believes it wrote.
pub struct Session {
    opener: Opener,
    store: Option<Store>,
    schema: Box<dyn Schema>,
    /// The subtrees reconciled: the schema's and the other schema's (so
    /// that switching schema leaves nothing behind).
    reconciled: Vec<&'static str>,
    ctx: Context,
    /// What our nodes hold (without `data/updated`).
    written: Nodes,
    /// What `data/updated` holds, as far as the agent knows.
    canary: Option<String>,
    /// The last stamp of `data/updated` was refused (quota): an absent
    /// canary cannot tell this tree from a new domain's empty one.
    stamp_missing: bool,
    /// Nodes xenstored refused us (`EACCES`): not tried again before the
    /// next reconciliation.
    denied: BTreeSet<String>,
    /// Nodes whose trouble was logged already.
    noted: BTreeSet<String>,
    /// Stamps `data/updated`.
    clock: fn() -> String,
    /// The loss of the connection was logged (until it is back).
    down_logged: bool,
    /// A refused transaction was logged (until one commits).
    refusal_logged: bool,
    /// How long xenstored may take to answer a batch (`--xenstore-timeout`).
    timeout: Duration,
}

impl Session {
    /// A session that connects through `opener`; `foreign` are the other
    /// schemas' subtrees.
    pub fn new(
        opener: Opener,
        schema: Box<dyn Schema>,
        foreign: &[&'static str],
        ctx: Context,
    ) -> Session {
        let mut reconciled = schema.owned().to_vec();
        for f in foreign {
            if !reconciled.contains(f) {
                reconciled.push(f);
            }
        }
        Session {
            opener,
            store: None,
            schema,
            reconciled,
            ctx,
            written: Nodes::new(),
            canary: None,
            stamp_missing: false,
            denied: BTreeSet::new(),
            noted: BTreeSet::new(),
            clock: timestamp,
            down_logged: false,
            refusal_logged: false,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// How long xenstored may take to answer a batch before the connection
    /// is taken as gone.
    pub fn with_timeout(mut self, timeout: Duration) -> Session {
        self.timeout = timeout;
        self
    }

    /// Replace the clock that stamps `data/updated` (tests).
    #[cfg(test)]
    pub fn set_clock(&mut self, clock: fn() -> String) {
        self.clock = clock;
    }

    /// Open the connection and register the watches.
    pub async fn connect(&mut self) -> Outcome {
        self.store = None;
        // Refusals last until the next reconciliation, which follows every
        // connection: a permission fixed meanwhile is used (one more try,
        // and no log line, where it is still refused).
        self.denied.clear();
        let mut store = match self.opener.open(self.timeout).await {
            Ok(s) => s,
            Err(e) => return self.lost(e),
        };
        if let Some(watcher) = store.watcher() {
            let requests = WATCHES.map(|(path, token)| Request::Watch { path, token });
            let deadline = tokio::time::Instant::now() + self.timeout;
            match watcher.batch(&requests, deadline).await {
                Ok(answers) => {
                    for ((path, _), answer) in WATCHES.iter().zip(answers) {
                        if let Err(e) = answer {
                            self.note(
                                log::Level::Warn,
                                path,
                                &format!(
                                    "cannot watch it ({e}): a resume, migration or SR-IOV \
                                     change may be noticed late"
                                ),
                            );
                        }
                    }
                }
                Err(e) => return self.lost(e),
            }
        }
        self.store = Some(store);
        log::debug!("connected to xenstore");
        Outcome::Connected
    }

    /// The next watch event that asks for something; never while there is
    /// no connection. `Err`: the connection broke. Cancel-safe.
    pub async fn fired(&mut self) -> Result<Fired, Lost> {
        let Some(store) = &mut self.store else {
            return std::future::pending().await;
        };
        loop {
            let event = store.next_event().await?;
            log::debug!("xenstore watch fired: {} ({})", event.path, event.token);
            match event.token.as_str() {
                "domain" => {
                    return Ok(Fired {
                        tree: true,
                        sriov: false,
                    })
                }
                "sriov" => {
                    return Ok(Fired {
                        tree: false,
                        sriov: true,
                    })
                }
                // Not ours: nothing to do (a stale event, or a confused
                // xenstored); harmless either way.
                _ => {}
            }
        }
    }

    /// The connection broke outside a step.
    pub fn broken(&mut self, e: Lost) {
        self.lost(e);
    }

    /// Whether the canary still holds what we wrote, and whether dom0's
    /// SR-IOV announcements changed.
    pub async fn check(&mut self, tree: bool, sriov: bool) -> Outcome {
        let mut requests = Vec::new();
        if tree {
            requests.push(Request::Read {
                tx: 0,
                path: UPDATED,
            });
        }
        if sriov {
            requests.push(Request::Directory {
                tx: 0,
                path: SRIOV_VFS,
            });
        }
        let answers = match self.batch(&requests).await {
            Ok(a) => a,
            Err(e) => return self.lost(e),
        };
        let mut answers = answers.into_iter();
        let mut intact = true;
        if tree {
            intact = match answers.next() {
                Some(Ok(Reply::Value(v))) => self.canary.as_ref() == Some(&v),
                Some(Err(Errno::ENOENT)) => self.canary.is_none() && !self.stamp_missing,
                other => {
                    log::debug!("cannot read {UPDATED}: {other:?}");
                    true
                }
            };
            if !intact {
                self.mismatch();
            }
        }
        let mut sriov_changed = false;
        if sriov {
            let ids = match answers.next() {
                Some(Ok(Reply::Children(ids))) => ids,
                _ => Vec::new(),
            };
            match self.read_sriov(&ids).await {
                Ok(vfs) => {
                    if vfs != self.ctx.sriov_vfs {
                        log::debug!("SR-IOV virtual functions from dom0: {vfs:?}");
                        self.ctx.sriov_vfs = vfs;
                        sriov_changed = true;
                    }
                }
                Err(e) => return self.lost(e),
            }
        }
        Outcome::Checked {
            intact,
            sriov_changed,
        }
    }

    /// dom0's MAC of each SR-IOV VF id.
    async fn read_sriov(&mut self, ids: &[String]) -> Result<BTreeMap<String, String>, Lost> {
        let paths: Vec<String> = ids
            .iter()
            .map(|id| format!("{SRIOV_VFS}/{id}/mac"))
            .collect();
        let requests: Vec<Request> = paths
            .iter()
            .map(|path| Request::Read { tx: 0, path })
            .collect();
        let answers = self.batch(&requests).await?;
        Ok(ids
            .iter()
            .zip(answers)
            .filter_map(|(id, a)| match a {
                Ok(Reply::Value(mac)) => Some((id.clone(), mac.trim().to_ascii_lowercase())),
                _ => None,
            })
            .collect())
    }

    /// Read back what is under the owned subtrees (ours and the other
    /// schema's), then make it what `guest` renders to: what is true stays
    /// untouched, what is stale goes, what is missing is written.
    pub async fn reconcile(&mut self, guest: &Guest) -> Outcome {
        let (existing, updated, shape) = match self.read_back().await {
            Ok(x) => x,
            Err(e) => return self.lost(e),
        };
        self.schema.adopt(&existing);
        let desired = self.desired(guest);
        let ops = plan(&existing, &desired, &self.reconciled);
        log::debug!(
            "full reconciliation: {} nodes read back, {} operations",
            existing.len(),
            ops.len()
        );
        if ops.is_empty() && updated.is_some() {
            // Everything is true already: nothing to send.
            self.written = existing;
            self.canary = updated;
            self.back();
            return Outcome::Committed { refused: false };
        }
        let outcome = self.transact(&ops, existing, updated, Some(&shape)).await;
        if let Outcome::Committed { .. } = outcome {
            self.back();
        }
        outcome
    }

    /// Write what `guest` changed since the last commit.
    pub async fn publish(&mut self, guest: &Guest) -> Outcome {
        let desired = self.desired(guest);
        let ops = plan(&self.written, &desired, self.schema.owned());
        if ops.is_empty() {
            return Outcome::Unchanged;
        }
        let (base, expected) = (self.written.clone(), self.canary.clone());
        self.transact(&ops, base, expected, None).await
    }

    /// What the schema wants, but for `data/updated` (ours) and the nodes
    /// xenstored refused us.
    fn desired(&mut self, guest: &Guest) -> Nodes {
        let mut desired = self.schema.render(guest, &self.ctx);
        desired.remove(UPDATED);
        desired.retain(|path, _| !self.denied.contains(path));
        desired
    }

    /// The leaves under the reconciled subtrees, the schema's kept nodes and
    /// `data/updated`, read
    /// outside any transaction (oxenstored limits the requests of one),
    /// one batch per level of the tree; and the tree's [`Shape`].
    async fn read_back(&mut self) -> Result<(Nodes, Option<String>, Shape), Lost> {
        let mut nodes = Nodes::new();
        let mut level: Vec<String> = self.reconciled.iter().map(|r| r.to_string()).collect();
        let mut updated = None;
        let mut first = true;
        let kept = self.schema.kept();
        let mut shape = Shape {
            roots: Vec::with_capacity(level.len()),
            kept: Vec::with_capacity(kept.len()),
        };
        while !level.is_empty() {
            let mut requests = Vec::with_capacity(2 * level.len() + 1);
            if first {
                requests.push(Request::Read {
                    tx: 0,
                    path: UPDATED,
                });
                requests.extend(kept.iter().map(|path| Request::Read { tx: 0, path }));
            }
            for path in &level {
                requests.push(Request::Read { tx: 0, path });
                requests.push(Request::Directory { tx: 0, path });
            }
            let mut answers = self.batch(&requests).await?.into_iter();
            let top = std::mem::take(&mut first);
            if top {
                if let Some(Ok(Reply::Value(v))) = answers.next() {
                    updated = Some(v);
                }
                for path in kept {
                    let value = value(answers.next());
                    if let Some(v) = &value {
                        nodes.insert(path.to_string(), v.clone());
                    }
                    shape.kept.push(value);
                }
            }
            let mut next = Vec::new();
            for path in level {
                let answer = (answers.next(), answers.next());
                if top {
                    shape
                        .roots
                        .push(matches!(answer.0, Some(Ok(Reply::Value(_)))));
                }
                match answer {
                    (Some(Ok(Reply::Value(v))), Some(Ok(Reply::Children(c)))) if c.is_empty() => {
                        nodes.insert(path, v);
                    }
                    (Some(Ok(_)), Some(Ok(Reply::Children(c)))) => {
                        next.extend(c.into_iter().map(|c| format!("{path}/{c}")));
                    }
                    // Absent, or not ours to read.
                    _ => {}
                }
            }
            if nodes.len() + next.len() > MAX_READ_BACK {
                log::warn!(
                    "more than {MAX_READ_BACK} nodes under the agent's subtrees: reading back \
                     only part of them"
                );
                next.truncate(MAX_READ_BACK.saturating_sub(nodes.len()));
            }
            level = next;
        }
        Ok((nodes, updated, shape))
    }

    /// Requests that read the tree's [`Shape`] again (right after
    /// `TransactionStart`, in its batch).
    fn shape_requests(&self) -> Vec<Request<'static>> {
        let roots = self.reconciled.iter().copied();
        roots
            .chain(self.schema.kept().iter().copied())
            .map(|path| Request::Read { tx: 0, path })
            .collect()
    }

    /// The [`Shape`] from the answers to [`Session::shape_requests`].
    fn shape_of(&self, answers: &mut impl Iterator<Item = Answer>) -> Shape {
        let roots = self
            .reconciled
            .iter()
            .map(|_| matches!(answers.next(), Some(Ok(Reply::Value(_)))))
            .collect();
        let kept = self
            .schema
            .kept()
            .iter()
            .map(|_| value(answers.next()))
            .collect();
        Shape { roots, kept }
    }

    /// `ops` in one transaction over `base` (what xenstore holds before
    /// it), if the canary holds `expected`; `data/updated` stamped last
    /// when something was written (or a reconciliation found it missing).
    async fn transact(
        &mut self,
        ops: &[Op],
        mut base: Nodes,
        expected: Option<String>,
        shape: Option<&Shape>,
    ) -> Outcome {
        // The start and the canary (and a reconciliation's shape), in one
        // batch: they are read just after the transaction's start (its id
        // is not known before). A new domain after it makes the commit
        // fail (EAGAIN), and the retry reads them again.
        let full = shape.is_some();
        let mut start = vec![
            Request::TransactionStart,
            Request::Read {
                tx: 0,
                path: UPDATED,
            },
        ];
        if full {
            start.extend(self.shape_requests());
        }
        let answers = match self.batch(&start).await {
            Ok(a) => a,
            Err(e) => return self.lost(e),
        };
        let mut answers = answers.into_iter();
        let tx = match answers.next() {
            Some(Ok(Reply::Transaction(tx))) => tx,
            other => return self.refused("start a transaction", other),
        };
        let canary = value(answers.next());
        if canary != expected || (!full && self.stamp_missing) {
            self.mismatch();
            return self.abort(tx, Outcome::Mismatch).await;
        }
        if let Some(read) = shape {
            if self.shape_of(&mut answers) != *read {
                self.new_domain("the agent's xenstore nodes changed while they were read back");
                return self.abort(tx, Outcome::Mismatch).await;
            }
        }

        // The operations, the stamp and the commit, in one batch. Within
        // the second of the last stamp it already says so: writing it
        // again would fire dom0's watches for nothing.
        let stamp = (!ops.is_empty() || (full && expected.is_none()))
            .then(|| (self.clock)())
            .filter(|s| expected.as_ref() != Some(s));
        let mut requests = Vec::with_capacity(ops.len() + 2);
        for op in ops {
            requests.push(match op {
                Op::Write { path, value } => Request::Write { tx, path, value },
                Op::Remove { path } => Request::Remove { tx, path },
            });
        }
        if let Some(stamp) = &stamp {
            requests.push(Request::Write {
                tx,
                path: UPDATED,
                value: stamp,
            });
        }
        requests.push(Request::TransactionEnd { tx, commit: true });
        let mut answers = match self.batch(&requests).await {
            Ok(a) => a,
            Err(e) => return self.lost(e),
        };
        let end = answers.pop();
        let stamp_answer = stamp.as_ref().and_then(|_| answers.pop());
        let mut refused = false;
        // Refusals count once the transaction commits: one that fails saw
        // a tree that is gone (a new domain under it), not the retry's.
        let mut denials = Vec::new();
        let owned = self.schema.owned();
        for (op, answer) in ops.iter().zip(answers) {
            let (path, removal) = match op {
                Op::Write { path, .. } => (path, false),
                Op::Remove { path } => (path, true),
            };
            match answer {
                Ok(_) => {
                    log::debug!("xenstore {}", op_line(op));
                    apply(&mut base, op, owned);
                }
                // Already gone: as good as removed.
                Err(Errno::ENOENT) if removal => apply(&mut base, op, owned),
                Err(e) if matches!(e.0, libc::EACCES | libc::EPERM | libc::EROFS) => {
                    denials.push(path);
                    if removal {
                        // Not ours to remove: no longer ours to track.
                        base.remove(path);
                    }
                }
                // (EAGAIN on an operation, which C xenstored never sends
                // but at commit: left out of what is written, tried again.)
                Err(e) => {
                    refused = true;
                    self.note(
                        log::Level::Warn,
                        path,
                        &format!("refused ({e}: quota or size limit?); skipping it"),
                    );
                }
            }
        }
        let stamped = matches!(stamp_answer, Some(Ok(_)));
        if let Some(Err(e)) = stamp_answer {
            refused = true;
            self.note(log::Level::Warn, UPDATED, &format!("refused ({e})"));
        }
        match end {
            Some(Ok(_)) => {
                log::debug!("xenstore transaction committed ({} operations)", ops.len());
                for path in denials {
                    self.deny(path);
                }
                self.written = base;
                if stamp.is_some() {
                    self.stamp_missing = !stamped;
                }
                self.canary = if stamped { stamp } else { expected };
                self.refusal_logged = false;
                Outcome::Committed { refused }
            }
            Some(Err(Errno::EAGAIN)) => Outcome::Conflict,
            other => self.refused("commit a transaction", other),
        }
    }

    /// Abandon transaction `tx`, then report `outcome`.
    async fn abort(&mut self, tx: TxId, outcome: Outcome) -> Outcome {
        match self
            .batch(&[Request::TransactionEnd { tx, commit: false }])
            .await
        {
            Ok(_) => outcome,
            Err(e) => self.lost(e),
        }
    }

    /// xenstore refused a transaction's start or commit (not a conflict).
    fn refused(&mut self, what: &str, answer: Option<Answer>) -> Outcome {
        let why = match answer {
            Some(Err(e)) => e.to_string(),
            other => format!("unexpected answer {other:?}"),
        };
        if std::mem::replace(&mut self.refusal_logged, true) {
            log::debug!("xenstore refused to {what} ({why})");
        } else {
            log::warn!("xenstore refused to {what} ({why}); trying again later");
        }
        Outcome::Refused
    }

    /// Make `requests` on the open connection.
    async fn batch(&mut self, requests: &[Request<'_>]) -> Result<Vec<Answer>, Lost> {
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        match &mut self.store {
            Some(store) => store.batch(requests, self.timeout).await,
            None => Err(Lost::new("not connected to xenstore")),
        }
    }

    /// The connection is gone: say so once, until it is back.
    fn lost(&mut self, e: Lost) -> Outcome {
        self.store = None;
        if std::mem::replace(&mut self.down_logged, true) {
            log::debug!("xenstore connection still failing: {e}");
        } else {
            log::warn!(
                "xenstore connection failed ({e}); retrying with backoff, everything will be \
                 published again once it is back"
            );
        }
        Outcome::Lost
    }

    /// A reconciliation committed: if the connection had been lost, it is
    /// back for real.
    fn back(&mut self) {
        if std::mem::take(&mut self.down_logged) {
            log::info!("xenstore connection is back: everything is published again");
        }
    }

    /// The tree under us may not be the one we wrote: a new domain, or
    /// one that cannot be told from it (`data/updated` was refused).
    fn mismatch(&mut self) {
        if self.stamp_missing {
            log::debug!("{UPDATED} could not be written last time: reconciling");
            self.written.clear();
            self.denied.clear();
        } else {
            self.new_domain(&format!("{UPDATED} is no longer what the agent wrote"));
        }
    }

    /// What we wrote is gone (a new domain): refusals were the old
    /// domain's, and its nodes are not there any more.
    fn new_domain(&mut self, what: &str) {
        log::info!("{what} (resume, restore or migration?): publishing everything again");
        self.denied.clear();
        self.noted.clear();
        self.written.clear();
    }

    /// xenstored refused us `path`: not again before the next
    /// reconciliation (a reconnection or a new domain).
    fn deny(&mut self, path: &str) {
        if path == "control/feature-balloon" {
            // Expected under xl: not a warning.
            self.note(
                log::Level::Info,
                path,
                "permission denied, as is normal under xl/libxl (control/ is read-only to the \
                 guest there); not writing it again",
            );
        } else {
            self.note(
                log::Level::Warn,
                path,
                "permission denied; not writing it again",
            );
        }
        self.denied.insert(path.to_owned());
    }

    /// Log a problem with one node, once.
    fn note(&mut self, level: log::Level, path: &str, what: &str) {
        if self.noted.insert(path.to_owned()) {
            log::log!(level, "xenstore node {path}: {what}");
        }
    }
}

/// The value a read answered, if it did.
fn value(answer: Option<Answer>) -> Option<String> {
    match answer {
        Some(Ok(Reply::Value(v))) => Some(v),
        _ => None,
    }
}

/// An operation as the debug log shows it.
fn op_line(op: &Op) -> String {
    match op {
        Op::Write { path, value } => format!("write {path} = {value:?}"),
        Op::Remove { path } => format!("rm {path}"),
    }
}

/// The value of `data/updated`: the time in the format xe-guest-utilities
/// writes (`Mon Jan  2 15:04:05 2006`), in UTC.
pub fn timestamp() -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let t = libc::time_t::try_from(now).unwrap_or(0);
    // SAFETY: an all-zero `tm` is valid; gmtime_r fills it from `t`.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call.
    if unsafe { libc::gmtime_r(&t, &mut tm) }.is_null() {
        return now.to_string();
    }
    let day = DAYS.get(tm.tm_wday as usize).unwrap_or(&"Sun");
    let month = MONTHS.get(tm.tm_mon as usize).unwrap_or(&"Jan");
    format!(
        "{day} {month} {:>2} {:02}:{:02}:{:02} {}",
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        tm.tm_year + 1900
    )
}

#[cfg(test)]
mod tests;
