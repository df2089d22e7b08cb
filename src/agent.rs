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
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use futures::stream::{Stream, StreamExt};
use futures::task::AtomicWaker;
use futures::FutureExt;

use crate::collectors::EventStream;
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
    let mut events = merge(collectors);
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

/// The collectors' events as one stream of `(collector, event)`, `None`
/// for the end of a collector; the stream ends when they all did.
fn merge(collectors: Vec<EventStream>) -> Merge {
    assert!(collectors.len() <= 64, "one bit per collector");
    let woken = Arc::new(Woken {
        // Every collector is polled the first time.
        collectors: AtomicU64::new(u64::MAX),
        task: AtomicWaker::new(),
    });
    let wakers = (0..collectors.len())
        .map(|index| {
            Waker::from(Arc::new(CollectorWaker {
                index,
                woken: woken.clone(),
            }))
        })
        .collect();
    Merge {
        streams: collectors.into_iter().map(Some).collect(),
        wakers,
        woken,
        next: 0,
    }
}

/// The merged collectors. Each has a waker of its own, which notes that it
/// was woken before waking the agent's task, so that only collectors with
/// something new are polled (one per netlink event), in turn from the one
/// after the last that gave an item, so that a busy collector cannot
/// starve the others. (`select_all` did the same at the cost of an
/// allocation per item.)
struct Merge {
    /// `None` once ended.
    streams: Vec<Option<EventStream>>,
    wakers: Vec<Waker>,
    woken: Arc<Woken>,
    /// The collector to poll first.
    next: usize,
}

/// Which collectors were woken since they were last polled (one bit each),
/// and the task to wake.
struct Woken {
    collectors: AtomicU64,
    task: AtomicWaker,
}

struct CollectorWaker {
    index: usize,
    woken: Arc<Woken>,
}

impl Wake for CollectorWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken
            .collectors
            .fetch_or(1 << self.index, Ordering::AcqRel);
        self.woken.task.wake();
    }
}

impl Stream for Merge {
    type Item = (usize, Option<Event>);

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        this.woken.task.register(cx.waker());
        let mut woken = this.woken.collectors.swap(0, Ordering::AcqRel);
        let n = this.streams.len();
        for i in (this.next..n).chain(0..this.next) {
            let bit = 1 << i;
            if woken & bit == 0 {
                continue;
            }
            woken &= !bit;
            let Some(stream) = &mut this.streams[i] else {
                continue;
            };
            let item = match stream
                .as_mut()
                .poll_next(&mut Context::from_waker(&this.wakers[i]))
            {
                Poll::Pending => continue,
                Poll::Ready(Some(event)) => Some(event),
                Poll::Ready(None) => {
                    this.streams[i] = None;
                    None
                }
            };
            // This collector may have more, and those after it were not
            // polled yet: all are polled next time.
            this.woken
                .collectors
                .fetch_or(woken | bit, Ordering::AcqRel);
            this.next = (i + 1) % n;
            return Poll::Ready(Some((i, item)));
        }
        if this.streams.iter().all(Option::is_none) {
            Poll::Ready(None)
        } else {
            Poll::Pending
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

#[cfg(test)]
mod tests {
    use futures::stream;
    use futures::FutureExt;

    use super::*;
    use crate::state::MemoryInfo;

    fn memory(kib: u64) -> Event {
        Event::Memory(MemoryInfo {
            total_kib: kib,
            available_kib: kib,
        })
    }

    fn kib(item: &(usize, Option<Event>)) -> (usize, Option<u64>) {
        let value = item.1.as_ref().map(|e| match e {
            Event::Memory(m) => m.total_kib,
            e => panic!("{e:?}"),
        });
        (item.0, value)
    }

    #[test]
    fn collectors_take_turns_and_their_ends_are_told() {
        let collectors: Vec<EventStream> = vec![
            Box::pin(stream::iter([memory(1), memory(2), memory(3)])),
            Box::pin(stream::iter([memory(10)])),
            Box::pin(stream::empty()),
            Box::pin(stream::iter([memory(20), memory(21)])),
        ];
        let items: Vec<_> = merge(collectors)
            .collect::<Vec<_>>()
            .now_or_never()
            .expect("all ready");
        let items: Vec<_> = items.iter().map(kib).collect();
        assert_eq!(
            items,
            [
                (0, Some(1)),
                (1, Some(10)),
                (2, None),
                (3, Some(20)),
                (0, Some(2)),
                (1, None),
                (3, Some(21)),
                (0, Some(3)),
                (3, None),
                (0, None),
            ]
        );
    }

    #[test]
    fn only_woken_collectors_are_polled() {
        use std::sync::Mutex;
        // A collector that never has anything, counting its polls and
        // keeping the waker it was given.
        let polls = Arc::new(Mutex::new((0, None::<Waker>)));
        let seen = polls.clone();
        let idle = stream::poll_fn(move |cx| {
            let mut p = seen.lock().unwrap();
            p.0 += 1;
            p.1 = Some(cx.waker().clone());
            Poll::<Option<Event>>::Pending
        });
        let collectors: Vec<EventStream> = vec![
            Box::pin(idle),
            Box::pin(stream::iter([memory(1), memory(2), memory(3)])),
        ];
        let mut merged = merge(collectors);
        for _ in 0..4 {
            assert!(merged.next().now_or_never().is_some());
        }
        assert!(merged.next().now_or_never().is_none());
        assert_eq!(polls.lock().unwrap().0, 1, "polled without being woken");
        let waker = polls.lock().unwrap().1.take().unwrap();
        waker.wake();
        assert!(merged.next().now_or_never().is_none());
        assert_eq!(polls.lock().unwrap().0, 2, "not polled once woken");
    }

    #[test]
    fn a_waiting_collector_keeps_the_stream_open() {
        let collectors: Vec<EventStream> = vec![
            Box::pin(stream::iter([memory(1)])),
            Box::pin(stream::pending()),
        ];
        let mut merged = merge(collectors);
        assert_eq!(
            merged.next().now_or_never().map(|i| i.map(|i| kib(&i))),
            Some(Some((0, Some(1))))
        );
        assert_eq!(
            merged.next().now_or_never().map(|i| i.map(|i| kib(&i))),
            Some(Some((0, None)))
        );
        assert!(merged.next().now_or_never().is_none(), "one still waits");
    }
}
