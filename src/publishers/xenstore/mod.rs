//! The xenstore publisher: the guest's facts where dom0's toolstack reads
//! them (docs/xenstore-schema.md is the contract).
//!
//! - [`Xenstore`], on the agent's loop, takes each change set's snapshot
//!   and wakes the publisher task; [`Xenstore::progress`] tells which
//!   snapshot is written.
//! - The publisher task asks the [`schedule`] what to do next and has the
//!   [`session`] do it: connect, check, reconcile, publish, each step one
//!   or a few batches of requests to a [`store`] (the native client, or
//!   libxenstore on a thread of its own, or the dry run's tree).
//! - The [`schema`]s render the tree from the model; [`plan`] turns the
//!   difference with what is written into operations.
//!
//! Snapshots coalesce: when they come faster than xenstore takes them,
//! only the newest is written.

pub mod clock;
pub mod guest;
pub mod native;
pub mod plan;
pub mod schedule;
pub mod schema;
pub mod session;
pub mod store;

use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{watch, Notify};
use tokio::time::Instant;

use crate::cli::Cli;
use crate::error::Error;
use crate::state::{ChangeSet, Guest};
use schedule::{Next, Schedule, Step};
use schema::rfc::Rfc;
use schema::standard::Standard;
use schema::{Context, Schema};
use session::Session;
use store::Opener;

/// Publishes into xenstore (or, with `--dry-run`, prints what it would
/// write).
pub struct Xenstore {
    shared: Arc<Shared>,
    progress: watch::Receiver<u64>,
}

/// What the loop hands to the publisher task.
struct Shared {
    pending: Mutex<Pending>,
    wake: Notify,
}

#[derive(Default)]
struct Pending {
    /// The newest snapshot.
    guest: Option<Arc<Guest>>,
    /// Snapshots handed over so far.
    generation: u64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        // A poisoned lock only means a panic elsewhere; the data is plain.
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Xenstore {
    /// Set up the publisher from the command line and start its task. Must
    /// be called within the tokio runtime.
    ///
    /// Fails, for the agent to exit, when this is not a Xen guest or the
    /// backend asked for cannot be had; a xenstore that cannot be reached
    /// is retried in the background instead.
    pub fn new(cli: &Cli) -> Result<Self, Error> {
        let ctx = Context {
            sriov_vfs: Default::default(),
            max_addresses: cli.max_addresses as usize,
            max_filesystems: cli.max_filesystems as usize,
            feature_balloon: !cli.no_feature_balloon,
        };
        let (schema, other) = match cli.schema {
            crate::cli::Schema::Std => (
                Box::new(Standard::new()) as Box<dyn Schema>,
                Rfc::new().owned(),
            ),
            crate::cli::Schema::Rfc => (
                Box::new(Rfc::new()) as Box<dyn Schema>,
                Standard::new().owned(),
            ),
        };
        let opener = if cli.dry_run {
            Opener::Memory(store::memory::Memory::dry_run())
        } else {
            // An explicitly named xenstored (tests, dom0 tools) needs no Xen.
            if std::env::var_os("XENSTORED_PATH").is_none() && !guest::is_xen_guest() {
                return Err(Error::new(guest::NOT_XEN));
            }
            Opener::choose(cli.xenstore_backend)?
        };
        log::info!(
            "publishing in xenstore with schema {}{}",
            schema.name(),
            if cli.dry_run {
                " (dry run: printing operations on standard output)"
            } else {
                ""
            }
        );
        let session = Session::new(opener, schema, other, ctx).with_timeout(cli.xenstore_timeout);
        Ok(Self::start(session, !cli.dry_run))
    }

    /// Start the publisher task around `session`; with the wall-clock jump
    /// detector when `clock`.
    fn start(session: Session, clock: bool) -> Self {
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending::default()),
            wake: Notify::new(),
        });
        let (tx, progress) = watch::channel(0);
        let clock = clock
            .then(|| {
                clock::ClockJumps::new()
                    .map_err(|e| log::debug!("no wall-clock jump detection: {e}"))
                    .ok()
            })
            .flatten();
        tokio::spawn(run(shared.clone(), session, tx, clock));
        Xenstore { shared, progress }
    }

    /// Hand over the snapshot of a change set; returns its generation
    /// (counted from 1). Cheap: the changes themselves are not needed (the
    /// schema renders the whole tree from the snapshot).
    pub fn publish(&mut self, set: &ChangeSet) -> u64 {
        let generation = {
            let mut p = self.shared.lock();
            p.guest = Some(set.guest.clone());
            p.generation += 1;
            p.generation
        };
        self.shared.wake.notify_one();
        generation
    }

    /// The generation of the newest snapshot written, as it changes.
    pub fn progress(&self) -> watch::Receiver<u64> {
        self.progress.clone()
    }
}

/// The publisher task: asks the schedule what to do, has the session do
/// it.
async fn run(
    shared: Arc<Shared>,
    mut session: Session,
    progress: watch::Sender<u64>,
    mut clock: Option<clock::ClockJumps>,
) {
    let mut schedule = Schedule::new(Instant::now());
    loop {
        let (generation, guest) = {
            let p = shared.lock();
            (p.generation, p.guest.clone())
        };
        schedule.model(generation);
        match schedule.next(Instant::now()) {
            Next::Run(step) => {
                let outcome = match (step, &guest) {
                    (Step::Connect, _) => session.connect().await,
                    (Step::Check { tree, sriov }, _) => session.check(tree, sriov).await,
                    (Step::Reconcile, Some(g)) => session.reconcile(g).await,
                    (Step::Publish, Some(g)) => session.publish(g).await,
                    // The schedule writes only once a model was handed.
                    (Step::Reconcile | Step::Publish, None) => schedule::Outcome::Unchanged,
                };
                drop(guest);
                schedule.done(outcome, Instant::now());
                progress.send_if_modified(|w| {
                    let changed = *w != schedule.written();
                    *w = schedule.written();
                    changed
                });
            }
            Next::Wait(deadline) => {
                drop(guest);
                tokio::select! {
                    _ = shared.wake.notified() => {}
                    fired = session.fired() => match fired {
                        Ok(f) => schedule.watch(f.tree, f.sriov),
                        Err(e) => {
                            session.broken(e);
                            schedule.lost(Instant::now());
                        }
                    },
                    r = jumped(&mut clock) => match r {
                        Ok(()) => {
                            log::debug!("the wall clock jumped");
                            schedule.clock_jumped();
                        }
                        Err(e) => {
                            log::debug!("wall-clock jump detection stopped: {e}");
                            clock = None;
                        }
                    },
                    _ = sleep_until(deadline) => {}
                }
            }
        }
    }
}

/// The wall clock jumped (or never, without detection).
async fn jumped(clock: &mut Option<clock::ClockJumps>) -> io::Result<()> {
    match clock {
        Some(c) => c.jumped().await,
        None => std::future::pending().await,
    }
}

/// Sleep until `at`, or forever.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
