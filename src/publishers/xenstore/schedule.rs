//! When the xenstore publisher talks to xenstore, and what it does then.
//!
//! One pure state machine: it is told what happened (a new model, a watch
//! that fired, a wall-clock jump, the outcome of a step, the time) and
//! asked what to do next ([`Schedule::next`]): a [`Step`] to run now, or
//! how long to wait. Nothing here does I/O or reads a clock, so every
//! interleaving is a unit test.

use std::time::Duration;

use tokio::time::Instant;

/// Without any exchange that proved our tree intact for this long, check
/// it: a connection can break without a word, and a missed watch event
/// would leave a lost tree unnoticed. Change sets prove it as they go
/// (every transaction reads the canary), so this matters for idle agents.
pub const CHECK_AFTER: Duration = Duration::from_secs(60);

/// Tries of a conflicting transaction, close together, before the next
/// ones are spaced out like other failures.
pub const MAX_TRIES: u32 = 8;

/// First pause after a conflict; it doubles at each try.
const CONFLICT_PAUSE: Duration = Duration::from_millis(5);

/// Reopening a lost connection: first and longest pause.
const RECONNECT_MIN: Duration = Duration::from_millis(250);
const RECONNECT_MAX: Duration = Duration::from_secs(30);

/// Trying again what xenstore refused (a commit refused, nodes over a
/// quota, conflicts that go on): first and longest pause.
const LATER_MIN: Duration = Duration::from_secs(1);
const LATER_MAX: Duration = Duration::from_secs(60);

/// Something to do against xenstore.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Open the connection and register the watches.
    Connect,
    /// Read whether our tree is still there (`tree`) and dom0's SR-IOV
    /// announcements (`sriov`).
    Check {
        /// Read the canary (`data/updated`).
        tree: bool,
        /// Read `xenserver/device/net-sriov-vf`.
        sriov: bool,
    },
    /// Read back everything under the owned subtrees, then write the whole
    /// tree the newest model renders to, in one transaction.
    Reconcile,
    /// Write what the newest model changed, in one transaction that also
    /// reads the canary.
    Publish,
}

/// What a step found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Connect: the connection is open.
    Connected,
    /// The connection failed, or is gone.
    Lost,
    /// Check: whether the canary still holds what we wrote, and whether
    /// dom0's SR-IOV announcements changed (the tree must be rendered
    /// again).
    Checked {
        /// The canary holds what we wrote.
        intact: bool,
        /// dom0's SR-IOV announcements changed.
        sriov_changed: bool,
    },
    /// Reconcile or Publish: the transaction committed. `refused`: some
    /// nodes were over a limit (quota, size) and are tried again later.
    Committed {
        /// Nodes were refused for a limit.
        refused: bool,
    },
    /// Publish: the model renders to what is written; nothing was sent.
    Unchanged,
    /// Reconcile or Publish: the canary read inside the transaction is not
    /// what we wrote (a new domain after a resume or migration, or dom0
    /// reset it), or a reconciliation's tree changed since its read-back:
    /// nothing was committed, everything must be reconciled.
    Mismatch,
    /// The transaction conflicted with another writer (`EAGAIN`): nothing
    /// was committed.
    Conflict,
    /// xenstore refused the transaction itself (its start or its commit,
    /// with an error other than `EAGAIN`): nothing was committed.
    Refused,
}

/// What to do now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Run this step, then report its outcome with [`Schedule::done`].
    Run(Step),
    /// Nothing to do before this instant (or before something happens).
    Wait(Option<Instant>),
}

/// Exponential backoff between two bounds.
#[derive(Clone, Copy, Debug)]
struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    const fn new(min: Duration, max: Duration) -> Self {
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

/// The publisher's scheduling state.
#[derive(Debug)]
pub struct Schedule {
    /// The connection is open.
    up: bool,
    /// When to open it again while it is not.
    reconnect_at: Instant,
    reconnect: Backoff,
    /// Read back and rewrite everything (start, reconnection, lost tree).
    reconcile: bool,
    check_tree: bool,
    check_sriov: bool,
    /// Generation of the newest model handed over (0: none yet).
    handed: u64,
    /// Generation of the newest model written.
    written: u64,
    /// Generation the running Reconcile or Publish took.
    taking: u64,
    /// The context changed (SR-IOV): render again even without a new model.
    rerender: bool,
    /// After a conflict or a refusal: nothing before this.
    hold: Option<Instant>,
    /// Conflicts in a row.
    conflicts: u32,
    later: Backoff,
    /// Nodes over a limit are tried again at this time; newer models need
    /// not wait for it.
    refused_retry: Option<Instant>,
    /// When the tree was last proved intact.
    verified: Instant,
    /// The give-up after [`MAX_TRIES`] conflicts was logged (until a commit).
    conflict_logged: bool,
}

impl Schedule {
    /// Nothing connected, nothing written; the first step connects at once.
    pub fn new(now: Instant) -> Self {
        Schedule {
            up: false,
            reconnect_at: now,
            reconnect: Backoff::new(RECONNECT_MIN, RECONNECT_MAX),
            reconcile: true,
            check_tree: false,
            check_sriov: false,
            handed: 0,
            written: 0,
            taking: 0,
            rerender: false,
            hold: None,
            conflicts: 0,
            later: Backoff::new(LATER_MIN, LATER_MAX),
            refused_retry: None,
            verified: now,
            conflict_logged: false,
        }
    }

    /// A newer model (generation `generation`, counted from 1) was handed
    /// over.
    pub fn model(&mut self, generation: u64) {
        self.handed = self.handed.max(generation);
    }

    /// The generation of the newest model handed over.
    pub fn handed(&self) -> u64 {
        self.handed
    }

    /// The generation of the newest model that is written.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// A watch fired: `tree` for a possible new domain, `sriov` for dom0's
    /// SR-IOV announcements. Something changed: a pause after a failure
    /// ends.
    pub fn watch(&mut self, tree: bool, sriov: bool) {
        self.check_tree |= tree;
        self.check_sriov |= sriov;
        self.hold = None;
    }

    /// The wall clock jumped, as it does on a resume.
    pub fn clock_jumped(&mut self) {
        self.watch(true, false);
    }

    /// The connection broke outside a step (the watches noticed).
    pub fn lost(&mut self, now: Instant) {
        self.done(Outcome::Lost, now);
    }

    /// What to do now.
    pub fn next(&mut self, now: Instant) -> Next {
        if !self.up {
            return if now >= self.reconnect_at {
                Next::Run(Step::Connect)
            } else {
                Next::Wait(Some(self.reconnect_at))
            };
        }
        if let Some(hold) = self.hold {
            if now < hold {
                return Next::Wait(Some(hold));
            }
            self.hold = None;
        }
        if now >= self.verified + CHECK_AFTER {
            self.check_tree = true;
            self.check_sriov = true;
        }
        if self.reconcile {
            // A reconciliation reads everything anyway.
            self.check_tree = false;
        }
        if self.check_tree || self.check_sriov {
            return Next::Run(Step::Check {
                tree: self.check_tree,
                sriov: self.check_sriov,
            });
        }
        if self.handed == 0 {
            return Next::Wait(Some(self.verified + CHECK_AFTER));
        }
        if self.reconcile {
            self.taking = self.handed;
            return Next::Run(Step::Reconcile);
        }
        let retry_refused = self.refused_retry.is_some_and(|at| now >= at);
        if self.handed > self.written || self.rerender || retry_refused {
            self.taking = self.handed;
            return Next::Run(Step::Publish);
        }
        let check = self.verified + CHECK_AFTER;
        Next::Wait(Some(self.refused_retry.map_or(check, |r| r.min(check))))
    }

    /// The step last returned by [`Schedule::next`] ended with `outcome`.
    pub fn done(&mut self, outcome: Outcome, now: Instant) {
        match outcome {
            Outcome::Connected => {
                self.up = true;
                self.reconcile = true;
                // dom0's SR-IOV announcements are rendered into the tree:
                // read them before it is reconciled.
                self.check_sriov = true;
                self.check_tree = false;
            }
            Outcome::Lost => {
                self.up = false;
                self.reconnect_at = now + self.reconnect.next();
                self.reconcile = true;
                self.check_tree = false;
                self.check_sriov = false;
                self.hold = None;
                self.conflicts = 0;
            }
            Outcome::Checked {
                intact,
                sriov_changed,
            } => {
                self.reconnect.reset();
                self.verified = now;
                self.check_tree = false;
                self.check_sriov = false;
                self.reconcile |= !intact;
                self.rerender |= sriov_changed;
            }
            Outcome::Committed { refused } => {
                self.reconnect.reset();
                self.verified = now;
                self.written = self.taking;
                self.reconcile = false;
                self.rerender = false;
                self.conflicts = 0;
                self.conflict_logged = false;
                if refused {
                    // Nothing says when the quota frees up: try the
                    // refused nodes again, less and less often.
                    self.refused_retry = Some(now + self.later.next());
                } else {
                    self.refused_retry = None;
                    self.later.reset();
                }
            }
            Outcome::Unchanged => {
                self.written = self.taking;
                self.rerender = false;
                self.refused_retry = None;
            }
            Outcome::Mismatch => {
                self.reconcile = true;
                self.conflicts = 0;
            }
            Outcome::Conflict => {
                self.conflicts += 1;
                if self.conflicts < MAX_TRIES {
                    self.hold = Some(now + CONFLICT_PAUSE * (1 << self.conflicts));
                } else {
                    if !std::mem::replace(&mut self.conflict_logged, true) {
                        log::warn!(
                            "xenstore transaction still conflicting after {MAX_TRIES} tries; \
                             retrying later"
                        );
                    }
                    self.conflicts = 0;
                    self.hold = Some(now + self.later.next());
                }
            }
            Outcome::Refused => {
                self.hold = Some(now + self.later.next());
            }
        }
    }
}

#[cfg(test)]
mod tests;
