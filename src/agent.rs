//! The event loop: collectors in, change sets out.
//!
//! One task on one thread owns the [`State`]. It waits for the next
//! collector event, then drains every event that is already waiting (up to
//! [`MAX_BATCH`]) before it computes the change set, so that a burst of
//! kernel events becomes a few change sets instead of thousands, and
//! changes that cancel out within a burst are never published.
//!
//! Readiness (systemd's `READY=1`) means the first complete publication is
//! published (in xenstore: committed). It is bounded: past
//! `publish_timeout` the agent says it is ready anyway, says why in the
//! log and in the service's status, and goes on trying; `--oneshot` fails
//! instead.

use std::collections::BTreeSet;
use std::future::Future;
use std::time::Duration;

use futures::stream::{self, Stream, StreamExt};
use futures::FutureExt;
use tokio::time::Instant;

use crate::collectors::EventStream;
use crate::error::Error;
use crate::publishers::Publisher;
use crate::service;
use crate::state::{Event, State};

/// Most events folded into one change set: bounds the latency of a change
/// behind a burst.
pub const MAX_BATCH: usize = 4096;

/// How long the first publication waits for every collector's initial
/// state. Publishing before the network dump arrived would tell dom0 the
/// guest has no address (and remove those a previous run left) only to add
/// them back a moment later; a collector slower than this is late, not
/// missing, and what is known is published meanwhile.
const INITIAL_GRACE: Duration = Duration::from_secs(10);

/// How long a stopping agent waits for the publisher to finish what it was
/// given; past this the agent exits anyway (what is in xenstore stays
/// consistent: change sets are written in transactions).
const STOP_GRACE: Duration = Duration::from_secs(5);

/// How the loop runs.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// How long the first publication may take before the agent reports
    /// ready anyway (and `--oneshot` fails).
    pub publish_timeout: Duration,
    /// Collect once, publish once, exit (the collectors end by themselves).
    pub oneshot: bool,
}

/// Run until `shutdown` resolves or, in `--oneshot` mode, until every
/// collector ended and what they reported is published.
///
/// Errors: a publisher that cannot publish at all (standard output
/// refusing writes), and a `--oneshot` publication that did not complete
/// in time; everything transient is handled below this level.
pub async fn run(
    collectors: Vec<EventStream>,
    publisher: &mut Publisher,
    shutdown: impl Future<Output = ()>,
    options: Options,
) -> Result<(), Error> {
    let start = Instant::now();
    // Collectors that have not delivered their initial state yet: the first
    // complete publication (readiness) waits for all of them.
    let mut waiting: BTreeSet<usize> = (0..collectors.len()).collect();
    let mut events = merge(collectors);
    let mut state = State::new();
    let mut progress = publisher.progress();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut grace_over = false;
    // The generation of the first publication and of the last, once handed.
    let mut first = None;
    let mut last = 0;
    // The first publication is published (or readiness was told anyway).
    let mut published = false;
    let mut told = false;

    loop {
        let holding = !grace_over && !waiting.is_empty();
        let first_gen = first.unwrap_or(0);
        let next = tokio::select! {
            _ = &mut shutdown => {
                log::info!("stopping");
                break;
            }
            _ = tokio::time::sleep_until(start + INITIAL_GRACE), if holding => {
                grace_over = true;
                log::warn!(
                    "no initial state from {} collector(s) after {INITIAL_GRACE:?}; publishing what is known",
                    waiting.len()
                );
                None
            }
            reached = progress.reached(first_gen), if first.is_some() && !published => {
                published = true;
                if reached {
                    ready(told);
                    told = true;
                }
                continue;
            }
            _ = tokio::time::sleep_until(start + options.publish_timeout), if !told => {
                told = true;
                log::warn!(
                    "the first publication is not complete after {:?} (see the messages above): \
                     telling the service manager the agent is ready anyway; it goes on trying",
                    options.publish_timeout
                );
                service::notify("READY=1\nSTATUS=Waiting for the first publication to complete");
                continue;
            }
            next = events.next() => match next {
                Some(event) => Some(event),
                None => break, // every collector ended: --oneshot
            },
        };
        let mut next = next;
        let mut batch = 0;
        while let Some((source, event)) = next.take() {
            waiting.remove(&source);
            if let Some(event) = event {
                log::trace!("event from collector {source}: {event:?}");
                state.apply(event);
            }
            batch += 1;
            if batch < MAX_BATCH {
                // Already waiting events only; `Some(None)` means all ended.
                next = events.next().now_or_never().flatten();
            }
        }
        if !waiting.is_empty() && !grace_over {
            continue; // the first publication is complete or nothing
        }
        if let Some(generation) = publish(&mut state, publisher)? {
            last = generation;
            first.get_or_insert(generation);
        }
    }

    if let Some(generation) = publish(&mut state, publisher)? {
        last = generation;
    }
    if options.oneshot {
        let left = (start + options.publish_timeout).saturating_duration_since(Instant::now());
        return match tokio::time::timeout(left, progress.reached(last)).await {
            Ok(true) => {
                // The collectors may have ended before the loop saw the
                // first publication through.
                if !published {
                    ready(told);
                }
                Ok(())
            }
            _ => Err(Error::new(format!(
                "the publication did not complete within {:?} (see the messages above)",
                options.publish_timeout
            ))
            .hint("--publish-timeout gives it longer")),
        };
    }
    if tokio::time::timeout(STOP_GRACE, progress.reached(last))
        .await
        .is_err()
    {
        log::warn!("publisher did not finish within {STOP_GRACE:?}; exiting anyway");
    }
    Ok(())
}

/// The first complete publication is published: say so, and tell the
/// service manager (again, if it was told ready after the deadline).
fn ready(told: bool) {
    log::info!("first complete publication done");
    if told {
        service::notify("STATUS=Publishing");
    } else {
        service::notify("READY=1\nSTATUS=Publishing");
    }
}

/// The collectors' events as one stream of `(collector, event)`, `None`
/// for the end of a collector; the stream ends when they all did.
fn merge(collectors: Vec<EventStream>) -> impl Stream<Item = (usize, Option<Event>)> + Unpin {
    stream::select_all(collectors.into_iter().enumerate().map(|(i, c)| {
        c.map(move |e| (i, Some(e)))
            .chain(stream::once(async move { (i, None) }))
            .boxed_local()
    }))
}

/// Hand the pending changes, if any, to the publisher; their generation.
fn publish(state: &mut State, publisher: &mut Publisher) -> Result<Option<u64>, Error> {
    if !state.is_dirty() {
        return Ok(None);
    }
    let Some(set) = state.take_changes() else {
        return Ok(None);
    };
    log::debug!("publishing {} changes", set.changes.len());
    publisher
        .publish(&set)
        .map(Some)
        .map_err(|e| Error::io("cannot publish", e))
}
