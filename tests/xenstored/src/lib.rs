//! A xenstored for tests.
//!
//! Debian's C xenstored only runs under Xen, so the agent's xenstore tests
//! run against this one: it speaks the xenstore wire protocol (Xen's
//! `docs/misc/xenstore.txt`, `xs_wire.h`) on a unix socket, which the real
//! libxenstore and the `xenstore-*` tools use when `XENSTORED_PATH` names
//! it. It behaves like C xenstored 4.17 where a guest can tell (permissions,
//! error names, watches, transactions, limits), starts with the tree libxl
//! makes for a PV guest, and lets tests inject faults and inspect the tree
//! and every request.
//!
//! ```
//! use std::time::Duration;
//! use test_xenstored::{Client, Server};
//!
//! let xs = Server::builder().domid(5).start().unwrap();
//! // Clients: XENSTORED_PATH=xs.socket_path() (the guest, domain 5), or:
//! let mut guest = Client::connect(xs.socket_path()).unwrap();
//! guest.write("data/os_name", "Debian").unwrap();
//! assert_eq!(guest.write("control/feature-balloon", "1"), Err("EACCES".into()));
//! assert!(xs.wait_value("data/os_name", "Debian", Duration::from_secs(5)));
//! assert_eq!(xs.perms("data/os_name").unwrap(), "n5");
//! ```
//!
//! Connections on the guest socket act as the unprivileged guest domain;
//! connections on the optional dom0 socket, and the [`Server`] API itself,
//! act as privileged dom0.
//!
//! Choices where xenstoreds differ: a full node quota is `ENOSPC` (C
//! xenstored; oxenstored sends `EQUOTA`, available through
//! [`Limits::quota_errno`]); a transaction conflicts when a node it used
//! changed since the transaction *started* (C xenstored: since it was first
//! used), so this server is slightly quicker to answer `EAGAIN`.

#![warn(missing_docs)]

pub mod client;
pub mod domain;
pub mod oplog;
mod ops;
pub mod path;
pub mod perms;
mod server;
mod store;
mod tree;
pub mod wire;

pub use client::Client;
pub use domain::DomainConfig;
pub use oplog::{ConnId, OpLogExt, OpRecord, Origin};
pub use ops::Limits;
pub use server::{Builder, NodeInfo, Server, View};
pub use store::{Corruption, WatchInfo};
pub use wire::{Errno, MsgType};
