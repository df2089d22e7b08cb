//! A native xenstore client, on the agent's event loop: no libxenstore, no
//! thread, one connection for requests and watch events.
//!
//! It speaks the wire protocol ([`wire`]) over the transports libxenstore
//! would pick ([`transport`]: `XENSTORED_PATH`, the xenstored socket, the
//! guest's xenbus device). A [`Client`] sends batches of requests
//! pipelined on a socket (the xenbus device takes them one at a time), so that a transaction's writes cost one round trip, not one
//! each, and checks the protocol's limits before anything is sent.
//!
//! (The pure-Rust `xenstore-rs` crate is GPL-3.0-only, so it cannot be
//! used in this MIT project.)

pub mod client;
pub mod transport;
pub mod wire;

#[cfg(test)]
mod tests;

pub use client::{Answer, Client, Lost, WatchEvent};
pub use transport::Places;
pub use wire::{Errno, Perm, Reply, Request, TxId};
