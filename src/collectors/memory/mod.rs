//! Memory sampling (stub: replaced by the memory collector work).

use std::time::Duration;

use futures::stream;

use super::EventStream;
use crate::state::{Event, MemoryInfo};

/// Memory samples every `interval`.
pub fn stream(_interval: Duration, _oneshot: bool) -> EventStream {
    Box::pin(stream::iter(Some(Event::Memory(MemoryInfo::default()))))
}
