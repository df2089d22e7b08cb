//! The xenstore publisher: the guest's facts where dom0's toolstack reads
//! them (docs/xenstore-schema.md is the contract).
//!
//! Two halves, so that the event loop never waits on xenstore:
//! - [`Xenstore`], on the loop: `publish` only records the latest model and
//!   wakes the publisher task; `flush` waits until that was written;
//! - the publisher task, also on the loop's thread, waits for work (a new
//!   model, a watch event, a wall-clock jump, a retry that is due) and
//!   hands it to the [`worker::Worker`] on tokio's blocking pool, one call
//!   at a time: all xenstore I/O happens there.
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
pub mod plan;
pub mod rfc;
pub mod schema;
pub mod slots;
// Not `mod std`: it would shadow the standard library in this module's paths.
#[path = "std.rs"]
pub mod std_schema;
#[cfg(test)]
mod tests;
pub mod worker;

use std::io;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::sync::{watch, Notify};
use tokio::time::Instant;

use crate::cli::Cli;
use crate::state::{Change, Guest};
use backend::Backend;
use schema::{Context, Schema};
use worker::{Wake, Worker};

/// How long the first model may wait for the agent to say that the
/// initial state is complete (its first `flush`) before it is written
/// anyway: writing a partial first model would make a restart remove and
/// re-add what a previous run left.
const HOLD_FIRST: Duration = Duration::from_secs(10);

/// After this long without any xenstore request, check that the
/// connection and our tree are still there: a connection can break
/// without a word (a xenstored restarted in dom0), and a missed watch
/// event would leave a lost tree unnoticed. Usually the memory samples'
/// change sets talk to xenstore more often than this, and no check is
/// needed.
const CHECK_AFTER: Duration = Duration::from_secs(60);

/// The same without watches (the static build): then these checks (and
/// the wall-clock jump detector) are what notice a resume or migration
/// and new SR-IOV functions.
const CHECK_AFTER_WITHOUT_WATCHES: Duration = Duration::from_secs(10);

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
    /// Fails, for the agent to exit, when this is not a Xen guest or
    /// libxenstore cannot be loaded; a xenstore that cannot be reached is
    /// retried in the background instead.
    pub fn new(cli: &Cli) -> io::Result<Self> {
        let ctx = Context {
            sriov_vfs: Default::default(),
            max_addresses: cli.max_addresses as usize,
            feature_balloon: !cli.no_feature_balloon,
        };
        let schema = schema_for(cli.schema);
        let (backend, watches): (Box<dyn Backend>, bool) = if cli.dry_run {
            (Box::new(dryrun::DryRun::default()), false)
        } else {
            // An explicitly named xenstored (tests, dom0 tools) needs no Xen.
            if std::env::var_os("XENSTORED_PATH").is_none() && !guest::is_xen_guest() {
                return Err(io::Error::other(guest::NOT_XEN));
            }
            let lib = libxenstore::Lib::load()?;
            (Box::new(libxs::Libxs::new(lib)), libxenstore::Lib::WATCHES)
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
        let check_after = if watches || cli.dry_run {
            CHECK_AFTER
        } else {
            log::debug!("libxenstore without threads (static build): no watches, checking every {CHECK_AFTER_WITHOUT_WATCHES:?}");
            CHECK_AFTER_WITHOUT_WATCHES
        };
        let worker = Worker::new(backend, schema, ctx, watches);
        Ok(Self::start(worker, !cli.dry_run, check_after))
    }

    /// Start the publisher task around `worker`.
    fn start(worker: Worker, watch_clock: bool, check_after: Duration) -> Self {
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending::default()),
            wake: Notify::new(),
        });
        let (tx, done) = watch::channel(0);
        tokio::spawn(run(shared.clone(), worker, tx, watch_clock, check_after));
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

/// The publisher task: waits for work, runs the worker off the loop.
async fn run(
    shared: Arc<Shared>,
    mut worker: Worker,
    done: watch::Sender<u64>,
    watch_clock: bool,
    check_after: Duration,
) {
    let mut events: Option<AsyncFd<OwnedFd>> = None;
    let mut clock = if watch_clock {
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
                r = readable(&events) => {
                    if let Err(e) = r {
                        log::warn!("cannot wait for xenstore watch events: {e}");
                        events = None;
                    }
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
                _ = tokio::time::sleep_until(last_step + check_after), if retry.is_none() => {
                    wake.check_tree = true;
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
        let step = tokio::task::spawn_blocking(move || {
            let out = worker.step(wake);
            (worker, out)
        });
        let out;
        (worker, out) = match step.await {
            Ok(r) => r,
            Err(e) => {
                log::error!("the xenstore publisher failed: {e}");
                return;
            }
        };
        if let Some(fd) = out.event_fd {
            events = fd.and_then(|fd| {
                register(fd)
                    .map_err(|e| log::warn!("cannot wait for xenstore watch events: {e}"))
                    .ok()
            });
        }
        last_step = Instant::now();
        retry = out.retry_in.map(|d| Instant::now() + d);
        models_first = out.models_first;
        done.send_replace(generation);
    }
}

/// Register a descriptor we own with the reactor, for readability.
pub(crate) fn register(fd: OwnedFd) -> io::Result<AsyncFd<OwnedFd>> {
    // `with_interest` is deprecated since tokio 1.54 for descriptors that
    // may close under it; an `OwnedFd` cannot, and this keeps older tokio
    // releases (distributions') usable.
    #[allow(deprecated)]
    AsyncFd::with_interest(fd, tokio::io::Interest::READABLE)
}

/// The watch descriptor became readable (or never, without one).
async fn readable(fd: &Option<AsyncFd<OwnedFd>>) -> io::Result<()> {
    match fd {
        Some(fd) => {
            // Cleared before the worker drains the events: an event that
            // arrives after the drain makes it readable again.
            fd.readable().await?.clear_ready();
            Ok(())
        }
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
