//! Operating system identity (stub: replaced by the OS collector work).

use futures::stream;

use super::EventStream;
use crate::state::{Event, OsInfo};

/// One event with the OS identity.
pub fn stream() -> EventStream {
    Box::pin(stream::iter(Some(Event::Os(OsInfo::default()))))
}
