//! xen-guest-agent: collects facts about a Xen guest and publishes them in
//! xenstore for dom0's toolstack.
//!
//! Architecture (one concern per module):
//! - [`collectors`]: async streams of [`state::Event`]s (OS, kernel, memory,
//!   network);
//! - [`state`]: the model of the guest and the diff that turns events into
//!   [`state::Change`]s;
//! - [`agent`]: the event loop between the two;
//! - [`publishers`]: where change sets go (xenstore schemas, stdout);
//! - [`cli`], [`logging`], [`service`]: the daemon's interface to the world.

pub mod agent;
pub mod cli;
pub mod collectors;
pub mod error;
pub mod logging;
pub mod publishers;
pub mod service;
pub mod state;
pub mod sys;

pub use error::Error;
