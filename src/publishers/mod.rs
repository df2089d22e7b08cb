//! Publishers: where change sets go.
//!
//! The agent loop hands every change set to [`Publisher::publish`]: the
//! changes and the snapshot of the guest after them. Each publisher takes
//! what it needs: stdout prints the changes, the xenstore schemas render
//! the whole tree from the snapshot. `publish` never blocks on I/O that can
//! hang: the xenstore publisher does its work in a task of its own, and
//! [`Progress`] tells when a change set is written.

use std::io;

use tokio::sync::watch;

use crate::state::ChangeSet;

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
    /// Publish one change set; its generation (counted from 1) is what
    /// [`Progress::reached`] waits for.
    ///
    /// An error here is fatal for the publisher (standard output refusing
    /// writes); transient failures are the publisher's own business to
    /// retry.
    pub fn publish(&mut self, set: &ChangeSet) -> io::Result<u64> {
        match self {
            Publisher::Stdout(p) => p.publish(&set.changes),
            #[cfg(feature = "xenstore")]
            Publisher::Xenstore(p) => Ok(p.publish(set)),
        }
    }

    /// How far publication got.
    pub fn progress(&self) -> Progress {
        match self {
            Publisher::Stdout(_) => Progress(None),
            #[cfg(feature = "xenstore")]
            Publisher::Xenstore(p) => Progress(Some(p.progress())),
        }
    }
}

/// Which change sets are really published.
pub struct Progress(Option<watch::Receiver<u64>>);

impl Progress {
    /// Wait until change set `generation` (and every earlier one) is
    /// published; `false` if the publisher stopped.
    pub async fn reached(&mut self, generation: u64) -> bool {
        match &mut self.0 {
            // Printed as it was handed.
            None => true,
            Some(rx) => rx.wait_for(|&written| written >= generation).await.is_ok(),
        }
    }
}
