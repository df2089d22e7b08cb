//! The publisher's blocking half: everything that talks to xenstore.
//!
//! A [`Worker`] owns the connection ([`Backend`]), the schema and what was
//! written. [`Worker::step`] is called off the event loop whenever there is
//! something to do (a new model, a watch event, a wall-clock jump, a retry
//! that is due) and does all of it: (re)connect, read dom0's SR-IOV
//! announcements, check that our tree is still there, reconcile, write the
//! change set. It never fails: what goes wrong is logged once and retried
//! later, and the caller is told when.
//!
//! The watches themselves are not the worker's: they live on the event
//! loop ([`super::watches`]), which tells the worker what to look at.
//!
//! Each change set is one transaction: render → plan → operations, then
//! `data/updated` last. A conflicting transaction (`EAGAIN`) is retried as
//! a whole, a few times with backoff, then later.

use std::collections::BTreeSet;
use std::io;
use std::time::Duration;

use super::backend::{Backend, Failure, Tx, NO_TRANSACTION};
use super::plan::plan;
use super::schema::{Context, Nodes, Op, Schema};
use crate::state::Guest;

/// Written last after every non-empty change set: squeezed takes its
/// presence as "an agent runs", and reading it back tells whether our tree
/// survived a resume or migration.
pub const UPDATED: &str = "data/updated";

/// Watched to notice a new domain: XAPI writes it for every domain, and,
/// like every watch, it fires when the guest kernel re-registers watches
/// after a resume (it exists or not: the firing is what counts).
pub const DOMAIN_ID: &str = "unique-domain-id";

/// Watched: dom0's announcement of SR-IOV virtual functions.
pub const SRIOV_VFS: &str = "xenserver/device/net-sriov-vf";

/// A node every domain has and the guest may read: asked when an error
/// does not tell whether the connection is still alive.
const PROBE: &str = "domid";

/// Tries of one transaction before it is left for later.
const MAX_TRIES: u32 = 8;

/// Why a step had to stop: the connection is gone.
struct Lost(io::Error);

/// What woke the worker.
#[derive(Debug, Default)]
pub struct Wake {
    /// A newer model to publish.
    pub guest: Option<Guest>,
    /// Check that our tree is still there (a watch fired, the wall clock
    /// jumped, as on a resume, or xenstore was not asked anything for a
    /// while).
    pub check_tree: bool,
    /// Read dom0's SR-IOV announcements again (their watch fired, or
    /// events may have been missed).
    pub refresh_sriov: bool,
}

/// What the caller must do after a step.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Call again after this long even if nothing happens (a retry).
    pub retry_in: Option<Duration>,
    /// The retry only tries again nodes xenstore refused (a full quota):
    /// newer models need not wait for it. (After a conflict or a lost
    /// connection they do: trying at every new model would hammer
    /// xenstore.)
    pub models_first: bool,
}

/// Exponential backoff between `min` and `max`.
#[derive(Debug)]
struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    fn new(min: Duration, max: Duration) -> Self {
        Backoff {
            min,
            max,
            next: min,
        }
    }
    fn next(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        d
    }
    fn reset(&mut self) {
        self.next = self.min;
    }
}

/// Counters, for logs and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Committed transactions.
    pub transactions: u64,
    /// Node writes sent (data/updated included).
    pub writes: u64,
    /// Node removals sent.
    pub removals: u64,
    /// Full reconciliations (start, reconnection, lost tree).
    pub reconciles: u64,
}

/// The xenstore side of the publisher.
pub struct Worker {
    backend: Box<dyn Backend>,
    schema: Box<dyn Schema>,
    ctx: Context,
    clock: fn() -> String,
    guest: Option<Guest>,
    connected: bool,
    /// What we believe our nodes hold (without data/updated).
    written: Nodes,
    /// What we last wrote to data/updated.
    updated: Option<String>,
    /// Read back and compare everything at the next occasion.
    reconcile: bool,
    /// The model or the context changed since the last write.
    dirty: bool,
    /// Nodes xenstored refused us (EACCES): never tried again.
    denied: BTreeSet<String>,
    /// Nodes whose failure was logged already.
    noted: BTreeSet<String>,
    /// Whether the loss of the connection was logged already.
    down_logged: bool,
    /// Whether the last transaction gave up after conflicts was logged.
    conflict_logged: bool,
    /// Nodes were refused (quota, size) at the last commit: they are
    /// tried again later, until they fit.
    refused: bool,
    reconnect: Backoff,
    later: Backoff,
    /// First pause between two tries of a conflicting transaction.
    pause: Duration,
    stats: Stats,
}

impl Worker {
    /// A worker on `backend`; nothing is opened before the first step.
    pub fn new(backend: Box<dyn Backend>, schema: Box<dyn Schema>, ctx: Context) -> Self {
        Worker {
            backend,
            schema,
            ctx,
            clock: timestamp,
            guest: None,
            connected: false,
            written: Nodes::new(),
            updated: None,
            reconcile: true,
            dirty: false,
            denied: BTreeSet::new(),
            noted: BTreeSet::new(),
            down_logged: false,
            conflict_logged: false,
            refused: false,
            reconnect: Backoff::new(Duration::from_millis(250), Duration::from_secs(30)),
            later: Backoff::new(Duration::from_secs(1), Duration::from_secs(60)),
            pause: Duration::from_millis(5),
            stats: Stats::default(),
        }
    }

    /// Replace the clock that stamps `data/updated` (tests).
    #[cfg(test)]
    pub fn set_clock(&mut self, clock: fn() -> String) {
        self.clock = clock;
        self.pause = Duration::from_micros(1);
    }

    /// Counters since the start.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Do everything there is to do now; never blocks for long except on
    /// xenstore itself.
    pub fn step(&mut self, mut wake: Wake) -> Outcome {
        if let Some(g) = wake.guest.take() {
            self.guest = Some(g);
            self.dirty = true;
        }
        let mut out = Outcome::default();
        match self.try_step(&wake, &mut out) {
            Ok(retry) => {
                // Back only once it worked: a connection that opens and
                // fails at once is still down (and logged once).
                if self.down_logged {
                    log::info!("xenstore connection is back: everything is published again");
                    self.down_logged = false;
                }
                self.reconnect.reset();
                out.retry_in = retry;
            }
            Err(Lost(e)) => {
                if self.connected {
                    self.connected = false;
                    self.backend.disconnect();
                }
                if !self.down_logged {
                    log::warn!(
                        "xenstore connection failed ({e}); retrying with backoff, \
                         everything will be published again once it is back"
                    );
                    self.down_logged = true;
                }
                out.retry_in = Some(self.reconnect.next());
            }
        }
        out
    }

    fn try_step(&mut self, wake: &Wake, out: &mut Outcome) -> Result<Option<Duration>, Lost> {
        if !self.connected {
            // (Reads SR-IOV announcements, and reconciles everything.)
            self.connect()?;
        } else {
            if wake.refresh_sriov {
                self.refresh_sriov()?;
            }
            if wake.check_tree {
                self.check_tree()?;
            }
        }
        if self.guest.is_none() || !(self.reconcile || self.dirty) {
            return Ok(None);
        }
        let full = self.reconcile;
        for attempt in 0..MAX_TRIES {
            if attempt > 0 {
                std::thread::sleep(self.pause * (1 << attempt));
            }
            if self.try_publish(full)? {
                self.conflict_logged = false;
                if self.refused {
                    // Nothing else says when the quota frees up: try the
                    // refused nodes again, less and less often.
                    self.dirty = true;
                    out.models_first = true;
                    return Ok(Some(self.later.next()));
                }
                self.later.reset();
                return Ok(None);
            }
        }
        if !self.conflict_logged {
            log::warn!(
                "xenstore transaction still conflicting after {MAX_TRIES} tries; retrying later"
            );
            self.conflict_logged = true;
        }
        Ok(Some(self.later.next()))
    }

    /// Open the connection, read dom0's facts; everything is reconciled
    /// next.
    fn connect(&mut self) -> Result<(), Lost> {
        self.backend.connect().map_err(Lost)?;
        self.connected = true;
        log::debug!("connected to xenstore");
        self.reconcile = true;
        self.refresh_sriov()
    }

    /// Whether our tree is still there, cheaply: `data/updated` still holds
    /// what we last wrote. After a resume, restore or migration it is gone
    /// (fresh domain), and everything is published again.
    fn check_tree(&mut self) -> Result<(), Lost> {
        let now = match self.backend.read(NO_TRANSACTION, UPDATED) {
            Ok(v) => v,
            Err(e) => {
                self.failure(e)?;
                return Ok(());
            }
        };
        if now != self.updated && !self.reconcile {
            log::info!(
                "{UPDATED} is no longer what the agent wrote (resume, restore or migration?): \
                 publishing everything again"
            );
            self.reconcile = true;
        }
        Ok(())
    }

    /// Read dom0's SR-IOV announcements into the context.
    fn refresh_sriov(&mut self) -> Result<(), Lost> {
        let mut vfs = std::collections::BTreeMap::new();
        let ids = match self.backend.directory(NO_TRANSACTION, SRIOV_VFS) {
            Ok(ids) => ids,
            Err(e) => {
                self.failure(e)?;
                Vec::new()
            }
        };
        for id in ids {
            match self
                .backend
                .read(NO_TRANSACTION, &format!("{SRIOV_VFS}/{id}/mac"))
            {
                Ok(Some(mac)) => {
                    vfs.insert(id, mac.trim().to_ascii_lowercase());
                }
                Ok(None) => {}
                Err(e) => {
                    self.failure(e)?;
                }
            }
        }
        if vfs != self.ctx.sriov_vfs {
            log::debug!("SR-IOV virtual functions from dom0: {vfs:?}");
            self.ctx.sriov_vfs = vfs;
            self.dirty = true;
        }
        Ok(())
    }

    /// What an error means; a dead connection is an `Err`. An unclear error
    /// is settled by asking xenstore something harmless.
    fn failure(&mut self, e: io::Error) -> Result<Failure, Lost> {
        match Failure::of(&e) {
            Failure::Connection => Err(Lost(e)),
            Failure::Unclear => match self.backend.read(NO_TRANSACTION, PROBE) {
                Ok(_) => Ok(Failure::Limit),
                Err(p) => match Failure::of(&p) {
                    Failure::Denied | Failure::Limit | Failure::Again => Ok(Failure::Limit),
                    _ => Err(Lost(e)),
                },
            },
            f => Ok(f),
        }
    }

    /// Log a problem with one node, once for the life of the process.
    fn note(&mut self, path: &str, what: &str) {
        self.note_at(log::Level::Warn, path, what);
    }

    /// [`Worker::note`] at another level.
    fn note_at(&mut self, level: log::Level, path: &str, what: &str) {
        if self.noted.insert(path.to_owned()) {
            log::log!(level, "xenstore node {path}: {what}");
        }
    }

    /// One attempt at writing the change set (all of the tree when `full`)
    /// in one transaction. `Ok(false)`: it conflicted, nothing was applied.
    fn try_publish(&mut self, full: bool) -> Result<bool, Lost> {
        let mut tx = None;
        let result = self.publish_in(&mut tx, full);
        match (result, tx) {
            (Ok(Some(done)), Some(tx)) => match self.backend.commit(tx) {
                Ok(()) => {
                    self.committed(done, full);
                    Ok(true)
                }
                Err(e) => self.failure(e).map(|_| false),
            },
            // Nothing to write: no transaction was needed.
            (Ok(Some(done)), None) => {
                self.committed(done, full);
                Ok(true)
            }
            (Ok(None), tx) => {
                if let Some(tx) = tx {
                    self.backend.abort(tx);
                }
                Ok(false)
            }
            (Err(lost), tx) => {
                if let Some(tx) = tx {
                    self.backend.abort(tx);
                }
                Err(lost)
            }
        }
    }

    /// Start the transaction of this attempt if it is not yet. `Ok(None)`:
    /// no transaction to be had now (a transaction quota): try later.
    fn begin(&mut self, tx: &mut Option<Tx>) -> Result<Option<Tx>, Lost> {
        if let Some(t) = *tx {
            return Ok(Some(t));
        }
        match self.backend.begin() {
            Ok(t) => {
                *tx = Some(t);
                Ok(Some(t))
            }
            Err(e) => self.failure(e).map(|_| None),
        }
    }

    /// The operations of one attempt; the transaction is started when
    /// there is something to read or write. `None`: conflict.
    fn publish_in(&mut self, tx: &mut Option<Tx>, full: bool) -> Result<Option<Attempt>, Lost> {
        let mut base = if full {
            let Some(t) = self.begin(tx)? else {
                return Ok(None);
            };
            let mut existing = Nodes::new();
            for root in self.schema.owned() {
                if !self.walk(t, root, &mut existing)? {
                    return Ok(None);
                }
            }
            let updated = match existing.remove(UPDATED) {
                Some(u) => Some(u),
                None => match self.backend.read(t, UPDATED) {
                    Ok(u) => u,
                    Err(e) => match self.failure(e)? {
                        Failure::Again => return Ok(None),
                        _ => None,
                    },
                },
            };
            self.schema.adopt(&existing);
            Attempt::base(existing, updated)
        } else {
            Attempt::base(self.written.clone(), self.updated.clone())
        };
        let Some(guest) = &self.guest else {
            return Ok(None);
        };
        let mut desired = self.schema.render(guest, &self.ctx);
        desired.remove(UPDATED);
        // (What breaks the ground rules, plan leaves out.)
        desired.retain(|path, _| !self.denied.contains(path));
        base.nodes.retain(|path, _| !self.denied.contains(path));
        let ops = plan(&base.nodes, &desired, self.schema.owned());
        let stamp = !ops.is_empty() || (full && base.updated.is_none());
        if !stamp {
            return Ok(Some(base));
        }
        let Some(t) = self.begin(tx)? else {
            return Ok(None);
        };
        for op in ops {
            let (path, result) = match &op {
                Op::Write { path, value } => {
                    log::debug!("xenstore write {path} = {value:?}");
                    (path, self.backend.write(t, path, value))
                }
                Op::Remove { path } => {
                    log::debug!("xenstore rm {path}");
                    (path, self.backend.remove(t, path))
                }
            };
            match result {
                Ok(()) => base.apply(&op),
                Err(e) => match self.failure(e)? {
                    Failure::Again => return Ok(None),
                    f => base
                        .failed
                        .push((path.clone(), f, matches!(op, Op::Remove { .. }))),
                },
            }
        }
        let stamp = (base.sent > 0 || (full && base.updated.is_none())).then(|| (self.clock)());
        // Within the second of the last stamp it already says so: writing
        // the same value again would fire dom0's watches for nothing.
        if let Some(stamp) = stamp.filter(|s| base.updated.as_ref() != Some(s)) {
            match self.backend.write(t, UPDATED, &stamp) {
                Ok(()) => {
                    base.updated = Some(stamp);
                    base.stamped = true;
                }
                Err(e) => match self.failure(e)? {
                    Failure::Again => return Ok(None),
                    f => base.failed.push((UPDATED.to_owned(), f, false)),
                },
            }
        }
        Ok(Some(base))
    }

    /// Read the subtree at `path` into `out` (leaves only). `Ok(false)`:
    /// the transaction conflicted.
    fn walk(&mut self, tx: Tx, path: &str, out: &mut Nodes) -> Result<bool, Lost> {
        let value = match self.backend.read(tx, path) {
            Ok(Some(v)) => v,
            Ok(None) => return Ok(true),
            Err(e) => return self.failure(e).map(|f| f != Failure::Again),
        };
        let children = match self.backend.directory(tx, path) {
            Ok(c) => c,
            Err(e) => return self.failure(e).map(|f| f != Failure::Again),
        };
        if children.is_empty() {
            out.insert(path.to_owned(), value);
            return Ok(true);
        }
        for child in children {
            if !self.walk(tx, &format!("{path}/{child}"), out)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// A transaction committed: its result is now what xenstore holds.
    fn committed(&mut self, mut done: Attempt, full: bool) {
        self.refused = done.failed.iter().any(|(_, f, _)| *f != Failure::Denied);
        for (path, failure, removal) in std::mem::take(&mut done.failed) {
            if failure == Failure::Denied {
                if path == "control/feature-balloon" {
                    // Expected under xl: not a warning.
                    self.note_at(
                        log::Level::Info,
                        &path,
                        "permission denied, as is normal under xl/libxl (control/ is read-only \
                         to the guest there); not writing it again",
                    );
                } else {
                    self.note(&path, "permission denied; not writing it again");
                }
                self.denied.insert(path.clone());
                if removal {
                    done.nodes.remove(&path);
                }
            } else {
                self.note(&path, "refused (quota or size limit?); skipping it");
            }
        }
        if done.sent > 0 || done.stamped || full {
            self.stats.transactions += 1;
        }
        self.stats.writes += done.writes + u64::from(done.stamped);
        self.stats.removals += done.removals;
        if full {
            self.stats.reconciles += 1;
        }
        log::debug!(
            "xenstore transaction committed: {} writes, {} removals{}",
            done.writes,
            done.removals,
            if full { " (full reconciliation)" } else { "" }
        );
        self.written = done.nodes;
        self.updated = done.updated;
        self.reconcile = false;
        self.dirty = false;
    }
}

/// The state of one attempt: what xenstore will hold once it commits.
struct Attempt {
    nodes: Nodes,
    updated: Option<String>,
    stamped: bool,
    sent: u64,
    writes: u64,
    removals: u64,
    /// (path, failure, was a removal)
    failed: Vec<(String, Failure, bool)>,
}

impl Attempt {
    fn base(nodes: Nodes, updated: Option<String>) -> Self {
        Attempt {
            nodes,
            updated,
            stamped: false,
            sent: 0,
            writes: 0,
            removals: 0,
            failed: Vec::new(),
        }
    }

    fn apply(&mut self, op: &Op) {
        self.sent += 1;
        match op {
            Op::Write { path, value } => {
                self.writes += 1;
                self.nodes.insert(path.clone(), value.clone());
            }
            Op::Remove { path } => {
                self.removals += 1;
                let prefix = format!("{path}/");
                self.nodes
                    .retain(|k, _| k != path && !k.starts_with(&prefix));
            }
        }
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
