//! Collectors: each one is an async stream of [`Event`]s about one part of
//! the guest, merged by the agent's event loop.
//!
//! Contract shared by every collector:
//! - the first item of a stream is the complete initial state of its part
//!   (the OS, a memory sample, the whole interface list), so that the agent
//!   knows when its first publication is complete;
//! - in `oneshot` mode the stream ends after that first item;
//! - a collector never ends on a transient error: it logs once, retries,
//!   and resynchronises with a complete item.

use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use futures::Stream;

use crate::cli::Network;
use crate::state::Event;

pub mod fs;
pub mod hostname;
pub mod kernel;
pub mod memory;
pub mod mode;
pub mod net;
pub mod os;
mod ticker;

/// A boxed collector stream. Not `Send`: everything runs on the agent's one
/// thread.
pub type EventStream = Pin<Box<dyn Stream<Item = Event>>>;

/// What the collectors need to know.
#[derive(Clone, Debug)]
pub struct Config {
    /// Period of memory sampling.
    pub memory_interval: Duration,
    /// Period of interface polling (polling collectors only).
    #[cfg(feature = "net_pnet")]
    pub poll_interval: Duration,
    /// Which network collector to run.
    pub network: Network,
    /// Which filesystems to report, if any.
    pub filesystems: Option<fs::Which>,
    /// Root of sysfs, for VIF and bridge identification (Linux).
    pub sysfs: PathBuf,
    /// Report the initial state only, then end.
    pub oneshot: bool,
}

/// Start every collector the configuration asks for.
pub fn start(config: &Config) -> Vec<EventStream> {
    // The memory timer's beat also samples free space.
    let (beat, heard) = tokio::sync::watch::channel(());
    let mut streams = vec![
        os::stream(),
        kernel::stream(),
        memory::stream(config.memory_interval, config.oneshot, beat),
        hostname::stream(PathBuf::from("/etc"), config.oneshot),
        mode::stream(config.sysfs.clone()),
    ];
    if let Some(which) = config.filesystems {
        streams.push(fs::stream(which, heard, config.oneshot));
    }
    if let Some(net) = net::stream(config) {
        streams.push(net);
    }
    streams
}
