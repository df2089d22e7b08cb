//! The xenstore publisher (stub: replaced by the xenstore publisher work).

pub mod plan;
pub mod rfc;
pub mod schema;
pub mod slots;
// Not `mod std`: it would shadow the standard library in this module's paths.
#[path = "std.rs"]
pub mod std_schema;

use std::io;

use crate::state::{Change, Guest};

/// Publishes into xenstore.
pub struct Xenstore {}

impl Xenstore {
    /// Queue one change set.
    pub fn publish(&mut self, _guest: &Guest, _changes: &[Change]) -> io::Result<()> {
        Ok(())
    }

    /// Wait until queued change sets are written.
    pub async fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Xenstore {
    /// Set up the publisher from the command line.
    pub fn new(_cli: &crate::cli::Cli) -> io::Result<Self> {
        Ok(Xenstore {})
    }
}
