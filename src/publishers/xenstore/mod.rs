//! The xenstore publisher: the guest's facts where dom0's toolstack reads
//! them (docs/xenstore-schema.md is the contract).
//!
//! Three parts, so that the event loop never waits on xenstore:
//! - [`Xenstore`], on the loop: `publish` only records the latest model and
//!   wakes the publisher task; `flush` waits until that was written;
//! - the publisher task, also on the loop's thread, waits for work (a new
//!   model, a watch event, a wall-clock jump, a retry that is due) and
//!   hands it to the [`worker::Worker`], one step at a time;
//! - the worker, on a thread of its own ("xenstore") for the life of the
//!   agent: all blocking xenstore calls (libxenstore) happen there.
//!
//! The watches (a resume or migration, SR-IOV announcements) need no
//! blocking call and no thread: they have a connection of their own, on
//! the loop ([`watches`]).
//!
//! Why a dedicated thread rather than tokio's blocking pool: the pool
//! ends an idle thread after its keep-alive and starts a new one at the
//! next call, so an agent that talks to xenstore once a minute would
//! create a thread a minute; a thread of our own is created once, and
//! "one thread for blocking xenstore calls, none created while idle" is
//! then a property of this module, not of a runtime setting that any
//! other use of the pool would share.
//!
//! Change sets coalesce: when models arrive faster than xenstore takes
//! them, only the latest is written (the schema renders the whole tree
//! from it, and the plan diffs it against what is written).

pub mod backend;
pub mod clock;
pub mod dryrun;
#[cfg(test)]
pub mod fake;
pub mod guest;
pub mod libxenstore;
pub mod libxs;
pub mod memtree;
pub mod native;
pub mod plan;
pub mod rfc;
pub mod schedule;
pub mod schema;
pub mod slots;
// Not `mod std`: it would shadow the standard library in this module's paths.
#[path = "std.rs"]
pub mod std_schema;
#[cfg(test)]
mod tests;
pub mod watches;
pub mod wire;
pub mod worker;

use std::io;
use std::os::fd::AsRawFd;
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::sync::{watch, Notify};
use tokio::time::Instant;

use crate::cli::Cli;
use crate::state::{Change, Guest};
use backend::Backend;
use schema::{Context, Schema};
use watches::{Due, Places, Watches};
use worker::{Outcome, Wake, Worker};

/// How long the first model may wait for the agent to say that the
/// initial state is complete (its first `flush`) before it is written
/// anyway: writing a partial first model would make a restart remove and
/// re-add what a previous run left.
const HOLD_FIRST: Duration = Duration::from_secs(10);

/// After this long without any xenstore request, check that the
/// connection, our tree and dom0's SR-IOV announcements are still what we
/// think: a connection can break without a word (a xenstored restarted in
/// dom0), and a missed watch event (or watches that cannot be had) would
/// leave a lost tree unnoticed. Usually the memory samples' change sets
/// talk to xenstore more often than this, and no check is needed.
const CHECK_AFTER: Duration = Duration::from_secs(60);

/// Publishes into xenstore (or, with `--dry-run`, prints what it would
/// write).
pub struct Xenstore {
    shared: Arc<Shared>,
    done: watch::Receiver<u64>,
    handed: u64,
}

/// What the loop hands to the publisher task.
struct Shared {
    pending: Mutex<Pending>,
    wake: Notify,
}

#[derive(Default)]
struct Pending {
    /// The latest model not yet taken by the task.
    guest: Option<Guest>,
    /// Number of models handed over so far.
    generation: u64,
    /// The agent said the initial state is complete (or it waited long
    /// enough): models may be written.
    started: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        // A poisoned lock only means a panic elsewhere; the data is plain.
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Xenstore {
    /// Set up the publisher from the command line (`--schema`,
    /// `--dry-run`, `--max-addresses`, `--no-feature-balloon`) and start
    /// its task. Must be called within the tokio runtime.
    ///
    /// Fails, for the agent to exit, when this is not a Xen guest,
    /// libxenstore cannot be loaded or the worker's thread cannot be
    /// started; a xenstore that cannot be reached is retried in the
    /// background instead.
    pub fn new(cli: &Cli) -> io::Result<Self> {
        let ctx = Context {
            sriov_vfs: Default::default(),
            max_addresses: cli.max_addresses as usize,
            feature_balloon: !cli.no_feature_balloon,
        };
        let schema = schema_for(cli.schema);
        let (backend, watches): (Box<dyn Backend>, _) = if cli.dry_run {
            (Box::new(dryrun::DryRun::default()), None)
        } else {
            // An explicitly named xenstored (tests, dom0 tools) needs no Xen.
            if std::env::var_os("XENSTORED_PATH").is_none() && !guest::is_xen_guest() {
                return Err(io::Error::other(guest::NOT_XEN));
            }
            let lib = libxenstore::Lib::load()?;
            let watches = Watches::new(Places::from_env());
            (Box::new(libxs::Libxs::new(lib)) as _, Some(watches))
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
        let worker = WorkerThread::spawn(Worker::new(backend, schema, ctx))?;
        Ok(Self::start(worker, watches))
    }

    /// Start the publisher task around `worker`; `watches` (with the
    /// wall-clock jump detector) unless this is a dry run.
    fn start(worker: WorkerThread, watches: Option<Watches>) -> Self {
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending::default()),
            wake: Notify::new(),
        });
        let (tx, done) = watch::channel(0);
        tokio::spawn(run(shared.clone(), worker, tx, watches));
        Xenstore {
            shared,
            done,
            handed: 0,
        }
    }

    /// Hand over the model after a change set. Cheap: a copy of the model
    /// and a wake-up; the changes themselves are not needed (the schema
    /// renders from the whole model).
    pub fn publish(&mut self, guest: &Guest, _changes: &[Change]) -> io::Result<()> {
        {
            let mut p = self.shared.lock();
            p.guest = Some(guest.clone());
            p.generation += 1;
            self.handed = p.generation;
        }
        self.shared.wake.notify_one();
        Ok(())
    }

    /// Wait until everything handed over was written, or tried and left
    /// to a retry in the background. The first call also tells the
    /// publisher that the initial state is complete.
    pub async fn flush(&mut self) -> io::Result<()> {
        let start = {
            let mut p = self.shared.lock();
            !std::mem::replace(&mut p.started, true)
        };
        if start {
            self.shared.wake.notify_one();
        }
        let handed = self.handed;
        match self.done.wait_for(|&done| done >= handed).await {
            Ok(_) => Ok(()),
            Err(_) => Err(io::Error::other("the xenstore publisher task ended")),
        }
    }
}

/// The worker on its thread, one step at a time.
struct WorkerThread {
    steps: mpsc::Sender<Wake>,
    outcomes: tokio::sync::mpsc::Receiver<Outcome>,
}

impl WorkerThread {
    /// Start the thread; it ends when the publisher task does.
    fn spawn(mut worker: Worker) -> io::Result<Self> {
        let (steps, wakes) = mpsc::channel::<Wake>();
        let (done, outcomes) = tokio::sync::mpsc::channel(1);
        std::thread::Builder::new()
            .name("xenstore".into())
            .spawn(move || {
                while let Ok(wake) = wakes.recv() {
                    if done.blocking_send(worker.step(wake)).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| io::Error::new(e.kind(), format!("cannot start a thread: {e}")))?;
        Ok(WorkerThread { steps, outcomes })
    }

    /// One step of the worker; `None` if its thread is gone (it panicked).
    async fn step(&mut self, wake: Wake) -> Option<Outcome> {
        self.steps.send(wake).ok()?;
        self.outcomes.recv().await
    }
}

/// The publisher task: waits for work, has the worker do it.
async fn run(
    shared: Arc<Shared>,
    mut worker: WorkerThread,
    done: watch::Sender<u64>,
    mut watches: Option<Watches>,
) {
    let mut clock = if watches.is_some() {
        clock::ClockJumps::new()
            .map_err(|e| log::debug!("no wall-clock jump detection: {e}"))
            .ok()
    } else {
        None
    };
    // The first step connects at once.
    let mut retry = Some(Instant::now());
    // Whether newer models may go before the scheduled retry.
    let mut models_first = false;
    let mut hold: Option<Instant> = None;
    let mut last_step = Instant::now();
    loop {
        let mut wake = Wake::default();
        if retry.is_none_or(|r| r > Instant::now()) {
            tokio::select! {
                _ = shared.wake.notified() => {}
                due = fired(&mut watches) => {
                    wake.check_tree = due.check_tree;
                    wake.refresh_sriov = due.refresh_sriov;
                    retry = Some(Instant::now());
                }
                r = jumped(&mut clock) => match r {
                    Ok(()) => {
                        log::debug!("the wall clock jumped");
                        wake.check_tree = true;
                        retry = Some(Instant::now());
                    }
                    Err(e) => {
                        log::debug!("wall-clock jump detection stopped: {e}");
                        clock = None;
                    }
                },
                _ = sleep_until(hold) => {
                    log::debug!("initial state still incomplete after {HOLD_FIRST:?}: publishing anyway");
                    shared.lock().started = true;
                }
                _ = sleep_until(retry) => {}
                _ = tokio::time::sleep_until(last_step + CHECK_AFTER), if retry.is_none() => {
                    wake.check_tree = true;
                    wake.refresh_sriov = true;
                    retry = Some(Instant::now());
                }
            }
        }
        let (generation, started, due) = {
            let mut p = shared.lock();
            if p.started {
                hold = None;
            } else if p.generation > 0 && hold.is_none() {
                hold = Some(Instant::now() + HOLD_FIRST);
            }
            let due = retry.is_some_and(|r| r <= Instant::now());
            let backing_off = retry.is_some() && !due && !models_first;
            // While a retry is scheduled (after a conflict or a lost
            // connection), the model waits for it.
            if p.started && !backing_off {
                wake.guest = p.guest.take();
            }
            (p.generation, p.started, due)
        };
        if !due && wake.guest.is_none() {
            // Nothing to do now; what was handed over is written or waits
            // for the scheduled retry (tried, then).
            if started {
                done.send_replace(generation);
            }
            continue;
        }
        let Some(out) = worker.step(wake).await else {
            log::error!("the xenstore publisher failed: its thread ended");
            return;
        };
        last_step = Instant::now();
        retry = out.retry_in.map(|d| Instant::now() + d);
        models_first = out.models_first;
        done.send_replace(generation);
    }
}

/// Register a descriptor we own with the reactor, for readability.
pub(crate) fn register<T: AsRawFd>(fd: T) -> io::Result<AsyncFd<T>> {
    // `with_interest` is deprecated since tokio 1.54 for descriptors that
    // may close under it; ours are owned by `T` and close with it, and
    // this keeps older tokio releases (distributions') usable.
    #[allow(deprecated)]
    AsyncFd::with_interest(fd, tokio::io::Interest::READABLE)
}

/// Something the watches report is due (or never, without watches).
async fn fired(watches: &mut Option<Watches>) -> Due {
    match watches {
        Some(w) => w.next().await,
        None => std::future::pending().await,
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

/// The schema chosen on the command line.
fn schema_for(kind: crate::cli::Schema) -> Box<dyn Schema> {
    match kind {
        crate::cli::Schema::Std => Box::new(std_schema::Std::new()),
        crate::cli::Schema::Rfc => Box::new(rfc::Rfc::new()),
    }
}
