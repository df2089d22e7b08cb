//! Memory sampling: total and available memory in KiB, for
//! `data/meminfo_total` and `data/meminfo_free` (which XAPI turns into the
//! `memory_internal_free` RRD).
//!
//! A sample is taken at once, then every `--memory-interval`. Samples equal
//! to the last one change nothing downstream ([`crate::state`] diffs them).
//! A failing read is logged once, and again only after it worked in
//! between, so a broken `/proc` costs one log line, not one per tick; the
//! stream goes on and publishes again as soon as reading works.

use std::io;
use std::time::Duration;

use futures::stream::{self, StreamExt};
use tokio::sync::watch;

use super::ticker::Ticker;
use super::EventStream;
use crate::state::{Event, MemoryInfo};

#[cfg(not(target_os = "freebsd"))]
mod linux;
#[cfg(not(target_os = "freebsd"))]
pub use linux::parse_meminfo;
#[cfg(not(target_os = "freebsd"))]
use linux::Reader;

#[cfg(target_os = "freebsd")]
mod freebsd;
#[cfg(target_os = "freebsd")]
use freebsd::Reader;

/// Memory samples: one at once, then one every `interval`; in `oneshot`
/// mode only the first, then the stream ends. Outside `oneshot` it never
/// ends. Every tick after the first is also sent on `beat`, for the other
/// samplers (free space): one timer wakes the agent for all of them.
pub fn stream(interval: Duration, oneshot: bool, beat: watch::Sender<()>) -> EventStream {
    let mut reader = Reader::new();
    sampled(interval, oneshot, beat, move || reader.read())
}

/// [`stream`] over any source of samples (tests script failures).
fn sampled(
    interval: Duration,
    oneshot: bool,
    beat: watch::Sender<()>,
    read: impl FnMut() -> io::Result<MemoryInfo> + 'static,
) -> EventStream {
    let mut sampler = Sampler {
        read,
        failing: false,
    };
    if oneshot {
        return Box::pin(
            stream::iter(std::iter::once_with(move || sampler.sample()).flatten())
                .map(Event::Memory),
        );
    }
    // The first tick is at once: a sample at start.
    Box::pin(stream::unfold(
        (Ticker::new(interval), sampler, beat, true),
        |(mut ticker, mut sampler, beat, first)| async move {
            let mut first = first;
            loop {
                ticker.tick().await;
                if !first {
                    // Nobody listening (filesystems off) is fine.
                    beat.send_replace(());
                }
                first = false;
                if let Some(m) = sampler.sample() {
                    return Some((Event::Memory(m), (ticker, sampler, beat, false)));
                }
            }
        },
    ))
}

/// Takes samples and decides what to log about them.
struct Sampler<R> {
    read: R,
    /// The last read failed (and that was logged).
    failing: bool,
}

impl<R: FnMut() -> io::Result<MemoryInfo>> Sampler<R> {
    fn sample(&mut self) -> Option<MemoryInfo> {
        let result = (self.read)();
        match self.log(&result) {
            Some(Ok(())) => log::info!("memory: reading works again"),
            Some(Err(e)) => {
                log::warn!("memory: cannot read: {e} (logged once until it works again)")
            }
            None => {}
        }
        result.ok()
    }

    /// What is worth a log line about `result`: the first failure after a
    /// success (or at start), and the first success after a failure.
    fn log<'a>(&mut self, result: &'a io::Result<MemoryInfo>) -> Option<Result<(), &'a io::Error>> {
        let failed = result.is_err();
        if failed == self.failing {
            return None;
        }
        self.failing = failed;
        Some(result.as_ref().map(|_| ()))
    }
}

#[cfg(test)]
mod tests;
