//! What the publisher needs from a xenstore: the few operations it makes,
//! and what their failures mean.
//!
//! Three implementations: the real one over libxenstore ([`super::libxs`]),
//! the dry run that prints instead ([`super::dryrun`]), and an in-memory
//! fake with fault injection for tests. All calls block; the publisher
//! makes them off the event loop. (Watches are not here: they have a
//! connection of their own, on the event loop: [`super::watches`].)

use std::io;

/// A transaction id; [`NO_TRANSACTION`] for single operations.
pub type Tx = u32;

/// Operations outside any transaction.
pub const NO_TRANSACTION: Tx = 0;

/// A xenstore connection. Paths are relative to the domain's home.
///
/// Errors carry the `errno` xenstored (or libxenstore) gave; see
/// [`Failure::of`] for what they mean.
pub trait Backend: Send {
    /// Open the connection, closing any previous one first.
    fn connect(&mut self) -> io::Result<()>;
    /// Close the connection (for a reconnection after an error).
    fn disconnect(&mut self);
    /// Start a transaction.
    fn begin(&mut self) -> io::Result<Tx>;
    /// Commit a transaction; `EAGAIN` means it conflicted with another
    /// writer and nothing of it was applied.
    fn commit(&mut self, tx: Tx) -> io::Result<()>;
    /// Abandon a transaction (best effort: errors are meaningless here).
    fn abort(&mut self, tx: Tx);
    /// The value of a node, `None` when it does not exist.
    fn read(&mut self, tx: Tx, path: &str) -> io::Result<Option<String>>;
    /// The names of a node's children; empty when it has none or does not
    /// exist.
    fn directory(&mut self, tx: Tx, path: &str) -> io::Result<Vec<String>>;
    /// Write a node (creating its parents).
    fn write(&mut self, tx: Tx, path: &str, value: &str) -> io::Result<()>;
    /// Remove a node and its children; removing what does not exist
    /// succeeds.
    fn remove(&mut self, tx: Tx, path: &str) -> io::Result<()>;
}

/// What a failed operation means for the publisher.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The transaction conflicted: retry all of it.
    Again,
    /// This node may not be written (`EACCES`, `EPERM`, `EROFS`): give up
    /// on it, keep the rest.
    Denied,
    /// This node is over a limit (quota, size) or refused as invalid: skip
    /// it, keep the rest.
    Limit,
    /// Either a refused node or a dead connection (`EINVAL` is both
    /// xenstored's answer to a bad request and libxenstore's report of a
    /// closed socket): ask the connection whether it still answers.
    Unclear,
    /// The connection is gone: reconnect.
    Connection,
}

impl Failure {
    /// Classify an error from a [`Backend`] call.
    pub fn of(e: &io::Error) -> Failure {
        match e.raw_os_error() {
            Some(libc::EAGAIN) => Failure::Again,
            Some(libc::EACCES | libc::EPERM | libc::EROFS) => Failure::Denied,
            // C xenstored: ENOSPC (quota), E2BIG (size), ENOMEM; oxenstored's
            // EQUOTA arrives as EINVAL (libxenstore maps unknown names so).
            Some(libc::ENOSPC | libc::E2BIG | libc::EDQUOT | libc::ENOMEM | libc::EMSGSIZE) => {
                Failure::Limit
            }
            // The socket or device is gone.
            Some(
                libc::EPIPE
                | libc::ECONNRESET
                | libc::ECONNREFUSED
                | libc::ENOTCONN
                | libc::EBADF
                | libc::ESHUTDOWN
                | libc::ENXIO
                | libc::ENODEV,
            ) => Failure::Connection,
            // Anything else xenstored may answer (EINVAL, ENOENT, EIO...) or
            // libxenstore may report for a dead socket (EINVAL, EIO).
            Some(_) => Failure::Unclear,
            // Our own refusals (a path with a NUL byte): never sent.
            None if e.kind() == io::ErrorKind::InvalidInput => Failure::Limit,
            None => Failure::Connection,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_classified_by_errno() {
        let f = |n| Failure::of(&io::Error::from_raw_os_error(n));
        assert_eq!(f(libc::EAGAIN), Failure::Again);
        assert_eq!(f(libc::EACCES), Failure::Denied);
        assert_eq!(f(libc::EPERM), Failure::Denied);
        assert_eq!(f(libc::ENOSPC), Failure::Limit);
        assert_eq!(f(libc::E2BIG), Failure::Limit);
        assert_eq!(f(libc::EINVAL), Failure::Unclear);
        assert_eq!(f(libc::EIO), Failure::Unclear);
        assert_eq!(f(libc::EPIPE), Failure::Connection);
        assert_eq!(f(libc::EBADF), Failure::Connection);
        assert_eq!(f(libc::ECONNRESET), Failure::Connection);
        let own = io::Error::new(io::ErrorKind::InvalidInput, "NUL in path");
        assert_eq!(Failure::of(&own), Failure::Limit);
    }
}
