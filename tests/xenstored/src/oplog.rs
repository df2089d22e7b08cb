//! The operation log: every request the server handled, so that tests can
//! assert what a client did ("no write of an unchanged node", "one
//! transaction per change set").

use std::collections::BTreeMap;

use crate::wire::{Errno, MsgType};

/// Identifies a client connection for the life of the server.
pub type ConnId = u64;

/// Who made a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A client on the guest socket, acting as the guest domain.
    Guest(ConnId),
    /// A client on the dom0 socket, acting as privileged dom0.
    Dom0(ConnId),
    /// The test itself, through the [`crate::Server`] API (as dom0).
    Api,
}

impl Origin {
    /// The connection, if the request came from a socket.
    pub fn conn(self) -> Option<ConnId> {
        match self {
            Origin::Guest(c) | Origin::Dom0(c) => Some(c),
            Origin::Api => None,
        }
    }

    /// Whether it came from the guest socket.
    pub fn is_guest(self) -> bool {
        matches!(self, Origin::Guest(_))
    }
}

/// One handled request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpRecord {
    /// Position in the log since the server started (not reset by
    /// [`crate::Server::reset_ops`]).
    pub seq: u64,
    /// Who asked.
    pub origin: Origin,
    /// The domain the requester acted as (the guest's domid at the time, or 0).
    pub domid: u32,
    /// The request type; `None` for a type the server does not know.
    pub kind: Option<MsgType>,
    /// The absolute path the request was about, after resolution of
    /// relative paths (or a special `@name`, or the domid asked for).
    pub path: Option<String>,
    /// The value written (`XS_WRITE`), the token (`XS_WATCH`, `XS_UNWATCH`),
    /// the permissions (`XS_SET_PERMS`, as `n5,r0`), `T`/`F`
    /// (`XS_TRANSACTION_END`), the new id (`XS_TRANSACTION_START`).
    pub value: Option<String>,
    /// The transaction id of the request (0: none).
    pub tx: u32,
    /// What the server answered.
    pub result: Result<(), Errno>,
    /// Whether the request changed the tree (or the transaction's copy):
    /// a successful `XS_WRITE` of the value a node already had is `false`.
    pub changed: bool,
}

impl OpRecord {
    /// Whether this is a successful request of `kind`.
    pub fn is_ok(&self, kind: MsgType) -> bool {
        self.kind == Some(kind) && self.result.is_ok()
    }
}

/// Helpers over a slice of records.
pub trait OpLogExt {
    /// Requests of one type.
    fn of_kind(&self, kind: MsgType) -> Vec<&OpRecord>;
    /// Successful writes that did not change the value of the node: what a
    /// careful client never sends (each fires dom0's watches for nothing).
    fn unchanged_writes(&self) -> Vec<&OpRecord>;
    /// Number of requests of each type.
    fn counts(&self) -> BTreeMap<MsgType, usize>;
    /// Requests from the guest socket only.
    fn by_guest(&self) -> Vec<&OpRecord>;
}

impl OpLogExt for [OpRecord] {
    fn of_kind(&self, kind: MsgType) -> Vec<&OpRecord> {
        self.iter().filter(|o| o.kind == Some(kind)).collect()
    }

    fn unchanged_writes(&self) -> Vec<&OpRecord> {
        self.iter()
            .filter(|o| o.is_ok(MsgType::Write) && !o.changed)
            .collect()
    }

    fn counts(&self) -> BTreeMap<MsgType, usize> {
        let mut m = BTreeMap::new();
        for o in self {
            if let Some(k) = o.kind {
                *m.entry(k).or_insert(0) += 1;
            }
        }
        m
    }

    fn by_guest(&self) -> Vec<&OpRecord> {
        self.iter().filter(|o| o.origin.is_guest()).collect()
    }
}
