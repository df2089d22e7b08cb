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
//! - [`requests`]: what dom0 asks the guest to do (opt-in), and
//!   [`netconf`], the network changes it may ask for;
//! - [`cli`], [`logging`], [`service`]: the daemon's interface to the world.

// libc marks `time_t` deprecated on every musl target for 32-bit musl's
// move to a 64-bit time_t; on x86_64 musl it is already i64 (the portable
// build, packaging/portable.sh). The gnu builds still report deprecations.
#![cfg_attr(target_env = "musl", allow(deprecated))]

pub mod agent;
pub mod cli;
pub mod collectors;
pub mod error;
pub mod logging;
pub mod netconf;
pub mod publishers;
#[cfg(feature = "xenstore")]
pub mod requests;
pub mod service;
pub mod state;
pub mod sys;

pub use error::Error;
