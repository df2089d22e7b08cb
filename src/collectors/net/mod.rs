//! Network interfaces (stub: replaced by the network collector work).

use super::{Config, EventStream};

/// The configured network collector, if any.
pub fn stream(_config: &Config) -> Option<EventStream> {
    None
}
