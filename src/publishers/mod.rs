//! Publishers: where change sets go.
//!
//! The agent loop hands every non-empty change set to [`Publisher::publish`]
//! together with the whole current [`Guest`], so that a publisher may render
//! from the full model (xenstore schemas do) or from the changes alone
//! (stdout does). `publish` never blocks on I/O that can hang: a publisher
//! with slow or fragile I/O (xenstore) queues the work and does it off the
//! loop; [`Publisher::flush`] waits for it.

use std::io;

use crate::state::{Change, Guest};

pub mod stdout;
#[cfg(feature = "xenstore")]
pub mod xenstore;

/// The publisher chosen on the command line.
pub enum Publisher {
    /// Lines on standard output.
    Stdout(stdout::Stdout),
    /// Nodes in xenstore.
    #[cfg(feature = "xenstore")]
    Xenstore(xenstore::Xenstore),
}

impl Publisher {
    /// Publish one change set; `guest` is the model after it.
    ///
    /// An error here is fatal for the publisher (standard output closed);
    /// transient failures are the publisher's own business to retry.
    #[cfg_attr(not(feature = "xenstore"), allow(unused_variables))]
    pub fn publish(&mut self, guest: &Guest, changes: &[Change]) -> io::Result<()> {
        match self {
            Publisher::Stdout(p) => p.publish(changes),
            #[cfg(feature = "xenstore")]
            Publisher::Xenstore(p) => p.publish(guest, changes),
        }
    }

    /// Wait until everything handed to `publish` is really published (or,
    /// for xenstore, until it was tried and the failure is being retried in
    /// the background).
    pub async fn flush(&mut self) -> io::Result<()> {
        match self {
            Publisher::Stdout(p) => p.flush(),
            #[cfg(feature = "xenstore")]
            Publisher::Xenstore(p) => p.flush().await,
        }
    }
}
