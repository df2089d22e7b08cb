//! An in-memory xenstore: the dry run (`--dry-run` prints every operation
//! it commits, `write PATH "VALUE"` or `rm PATH`), and the tests' xenstore,
//! with faults to inject.
//!
//! It keeps the semantics the publisher relies on: a transaction works on
//! its own copy and commits at once or not at all, a missing node is
//! `ENOENT`, writing creates parents, removing takes the subtree.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard};

use super::super::native::{Answer, Errno, Lost, Reply, Request, TxId};
use super::tree::MemTree;

/// An open transaction: its copy of the tree and what it did.
struct Transaction {
    tree: MemTree,
    lines: Vec<String>,
}

/// The tree and its transactions.
#[derive(Default)]
pub struct Inner {
    /// The committed tree.
    pub tree: MemTree,
    txs: BTreeMap<TxId, Transaction>,
    next_tx: TxId,
    /// Committed operations, as printed by the dry run.
    pub log: Vec<String>,
    /// Operations done by the request being made, to print and log.
    done: Vec<String>,
    /// Faults to inject (tests).
    #[cfg(test)]
    pub faults: Faults,
}

/// A change a test makes to the committed tree.
#[cfg(test)]
pub type Meddle = Box<dyn FnOnce(&mut MemTree) + Send>;

/// What a test makes the store do wrong.
#[cfg(test)]
#[derive(Default)]
pub struct Faults {
    /// Writes and removals at or below these paths get `EACCES`.
    pub denied: Vec<String>,
    /// Writes at or below these paths get `ENOSPC` (a full quota).
    pub over_quota: Vec<String>,
    /// The next commits fail with `EAGAIN`.
    pub eagain_commits: u32,
    /// The next commits fail with this error.
    pub commit_error: Option<(u32, Errno)>,
    /// The next batch finds the connection gone.
    pub drop_connection: bool,
    /// Connections to refuse.
    pub refuse_connects: u32,
    /// Watch events for the publisher.
    pub events: std::collections::VecDeque<super::super::native::WatchEvent>,
    /// Done to the tree just before the next transaction starts (dom0
    /// between a read-back and the transaction after it).
    pub before_transaction: Option<Meddle>,
    /// Batches made, and requests in them.
    pub batches: u32,
    /// Requests made.
    pub requests: u32,
}

/// The store.
#[derive(Clone, Default)]
pub struct Memory {
    inner: Arc<Mutex<Inner>>,
    /// Print committed operations on standard output (the dry run).
    print: bool,
    /// A test queued a watch event.
    #[cfg(test)]
    event: Arc<tokio::sync::Notify>,
}

impl Memory {
    /// The dry run's store.
    pub fn dry_run() -> Memory {
        Memory {
            print: true,
            ..Memory::default()
        }
    }

    /// Everything, for a test to look at and meddle with (a clone shares
    /// the store).
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        // A poisoned lock only means a test panicked elsewhere.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Make `requests`.
    pub fn batch(&mut self, requests: &[Request<'_>]) -> Result<Vec<Answer>, Lost> {
        let mut inner = self.lock();
        #[cfg(test)]
        {
            if std::mem::take(&mut inner.faults.drop_connection) {
                return Err(Lost::new("test: connection dropped"));
            }
            inner.faults.batches += 1;
            inner.faults.requests += requests.len() as u32;
        }
        let mut answers = Vec::with_capacity(requests.len());
        for r in requests {
            let answer = inner.request(r, self.print)?;
            answers.push(answer);
        }
        Ok(answers)
    }

    /// Queue a watch event (as xenstored would send it).
    #[cfg(test)]
    pub fn fire(&self, path: &str, token: &str) {
        self.lock()
            .faults
            .events
            .push_back(super::super::native::WatchEvent {
                path: path.into(),
                token: token.into(),
            });
        self.event.notify_one();
    }

    /// The next watch event a test queued. Cancel-safe.
    #[cfg(test)]
    pub async fn next_event(&mut self) -> Result<super::super::native::WatchEvent, Lost> {
        loop {
            let notified = self.event.notified();
            if let Some(e) = self.lock().faults.events.pop_front() {
                return Ok(e);
            }
            notified.await;
        }
    }
}

impl Inner {
    fn request(&mut self, r: &Request<'_>, print: bool) -> Result<Answer, Lost> {
        let answer = self.answer(r);
        for line in std::mem::take(&mut self.done) {
            if print {
                // A closed standard output is like a broken connection:
                // the publisher says so once and tries again later.
                writeln!(std::io::stdout().lock(), "{line}")
                    .map_err(|e| Lost::new(format!("dry run: cannot print: {e}")))?;
            }
            self.log.push(line);
        }
        Ok(answer)
    }

    fn answer(&mut self, r: &Request<'_>) -> Answer {
        let tx = r.tx();
        if tx != 0 && !self.txs.contains_key(&tx) {
            return Err(Errno::ENOENT);
        }
        match *r {
            Request::Read { path, .. } => self
                .tree_of(tx)
                .read(path)
                .map(|v| Reply::Value(v.to_owned()))
                .ok_or(Errno::ENOENT),
            Request::Directory { path, .. } => {
                let t = self.tree_of(tx);
                t.read(path).ok_or(Errno::ENOENT)?;
                Ok(Reply::Children(t.directory(path)))
            }
            Request::Write { path, value, .. } => {
                self.refused(path, true)?;
                self.tree_of_mut(tx).write(path, value);
                self.did(tx, format!("write {path} {value:?}"));
                Ok(Reply::Done)
            }
            Request::Remove { path, .. } => {
                self.refused(path, false)?;
                if !self.tree_of_mut(tx).remove(path) {
                    return Err(Errno::ENOENT);
                }
                self.did(tx, format!("rm {path}"));
                Ok(Reply::Done)
            }
            Request::GetPerms { path, .. } => {
                self.tree_of(tx).read(path).ok_or(Errno::ENOENT)?;
                Ok(Reply::Perms(Vec::new()))
            }
            Request::TransactionStart => {
                #[cfg(test)]
                if let Some(meddle) = self.faults.before_transaction.take() {
                    meddle(&mut self.tree);
                }
                self.next_tx += 1;
                let t = Transaction {
                    tree: self.tree.clone(),
                    lines: Vec::new(),
                };
                self.txs.insert(self.next_tx, t);
                Ok(Reply::Transaction(self.next_tx))
            }
            Request::TransactionEnd { tx, commit } => {
                let t = self.txs.remove(&tx).ok_or(Errno::ENOENT)?;
                if commit {
                    if let Some(e) = self.commit_fault() {
                        return Err(e);
                    }
                    self.tree = t.tree;
                    self.done.extend(t.lines);
                }
                Ok(Reply::Done)
            }
            Request::Watch { .. } | Request::Unwatch { .. } => Ok(Reply::Done),
            Request::GetDomainPath { domid } => Ok(Reply::Value(format!("/local/domain/{domid}"))),
        }
    }

    fn tree_of(&self, tx: TxId) -> &MemTree {
        self.txs.get(&tx).map_or(&self.tree, |t| &t.tree)
    }

    fn tree_of_mut(&mut self, tx: TxId) -> &mut MemTree {
        match self.txs.get_mut(&tx) {
            Some(t) => &mut t.tree,
            None => &mut self.tree,
        }
    }

    /// Record an operation: done at once outside a transaction, at its
    /// commit inside one.
    fn did(&mut self, tx: TxId, line: String) {
        match self.txs.get_mut(&tx) {
            Some(t) => t.lines.push(line),
            None => self.done.push(line),
        }
    }

    #[cfg(test)]
    fn refused(&self, path: &str, write: bool) -> Result<(), Errno> {
        let under = |prefixes: &[String]| {
            prefixes
                .iter()
                .any(|p| path == p || path.starts_with(&format!("{p}/")))
        };
        if under(&self.faults.denied) {
            return Err(Errno::EACCES);
        }
        if write && under(&self.faults.over_quota) {
            return Err(Errno::ENOSPC);
        }
        Ok(())
    }

    #[cfg(not(test))]
    fn refused(&self, _path: &str, _write: bool) -> Result<(), Errno> {
        Ok(())
    }

    #[cfg(test)]
    fn commit_fault(&mut self) -> Option<Errno> {
        if self.faults.eagain_commits > 0 {
            self.faults.eagain_commits -= 1;
            return Some(Errno::EAGAIN);
        }
        match &mut self.faults.commit_error {
            Some((n, e)) if *n > 0 => {
                *n -= 1;
                Some(*e)
            }
            _ => None,
        }
    }

    #[cfg(not(test))]
    fn commit_fault(&mut self) -> Option<Errno> {
        None
    }
}
