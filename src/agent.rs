//! The event loop: collectors in, change sets out.
//!
//! One task on one thread owns the [`State`]. It waits for the next
//! collector event, then drains every event that is already waiting (up to
//! [`MAX_BATCH`]) before it computes the change set, so that a burst of
//! kernel events becomes a few change sets instead of thousands, and
//! changes that cancel out within a burst are never published.

use std::collections::BTreeSet;
use std::future::Future;
use std::io;
use std::time::Duration;

use futures::stream::{self, StreamExt};
use futures::FutureExt;

use crate::collectors::EventStream;
use crate::publishers::Publisher;
use crate::service;
use crate::state::State;

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

/// Run until `shutdown` resolves or, in `--oneshot` mode, until every
/// collector ended; then flush the publisher.
///
/// The only error is a publisher that cannot publish at all (standard
/// output closed); everything transient is handled below this level.
pub async fn run(
    collectors: Vec<EventStream>,
    publisher: &mut Publisher,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    // Collectors that have not delivered their initial state yet: the first
    // complete publication (readiness) waits for all of them.
    let mut waiting: BTreeSet<usize> = (0..collectors.len()).collect();
    // Each item says which collector it comes from; `None` marks the end of
    // a collector (one that ends without an initial state is not waited for).
    let mut events = stream::select_all(
        collectors
            .into_iter()
            .enumerate()
            .map(|(i, s)| s.map(Some).chain(stream::iter([None])).map(move |e| (i, e))),
    );
    let mut state = State::new();
    let mut ready = false;
    let mut shutdown = std::pin::pin!(shutdown);
    let initial_deadline = tokio::time::Instant::now() + INITIAL_GRACE;
    let mut grace_over = false;

    loop {
        let holding = !grace_over && !waiting.is_empty();
        let first = tokio::select! {
            _ = &mut shutdown => {
                log::info!("stopping");
                break;
            }
            _ = tokio::time::sleep_until(initial_deadline), if holding => {
                grace_over = true;
                log::warn!(
                    "no initial state from {} collector(s) after {INITIAL_GRACE:?}; publishing what is known",
                    waiting.len()
                );
                None
            }
            next = events.next() => match next {
                Some(first) => Some(first),
                None => break, // every collector ended: --oneshot
            },
        };
        let mut next = first;
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
        publish(&mut state, publisher)?;
        if !ready {
            // Ready once the first publication is really out, or, past the
            // grace period, once what is known is: the agent works, and a
            // service manager waiting forever would only restart it.
            publisher.flush().await?;
            ready = true;
            log::info!("first complete publication done");
            service::notify_ready();
        }
    }

    publish(&mut state, publisher)?;
    match tokio::time::timeout(STOP_GRACE, publisher.flush()).await {
        Ok(r) => r,
        Err(_) => {
            log::warn!("publisher did not finish within {STOP_GRACE:?}; exiting anyway");
            Ok(())
        }
    }
}

/// Hand the pending changes, if any, to the publisher.
fn publish(state: &mut State, publisher: &mut Publisher) -> io::Result<()> {
    if !state.is_dirty() {
        return Ok(());
    }
    let changes = state.take_changes();
    if changes.is_empty() {
        return Ok(());
    }
    log::debug!("publishing {} changes", changes.len());
    publisher.publish(state.current(), &changes)
}
