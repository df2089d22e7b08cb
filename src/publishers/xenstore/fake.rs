//! An in-memory xenstore with fault injection, for unit tests of the
//! publisher's error handling: the test keeps a [`FakeHandle`] to inject
//! faults and inspect the tree while the publisher owns the [`Fake`].

use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use super::backend::{Backend, Tx};
use super::memtree::MemTree;

/// What the fake holds and how it misbehaves.
#[derive(Default)]
pub struct FakeState {
    /// The committed tree.
    pub tree: MemTree,
    /// Whether a connection is open.
    pub connected: bool,
    /// Connection attempts still to refuse.
    pub refuse_connects: u32,
    /// Commits still to fail with `EAGAIN`.
    pub eagain_commits: u32,
    /// Paths (and their subtrees) whose writes and removals get `EACCES`.
    pub denied: Vec<String>,
    /// Paths whose writes get `ENOSPC` (quota).
    pub over_quota: Vec<String>,
    /// Writes and removals refused with `EACCES`, by path.
    pub refused: Vec<String>,
    /// Committed operations, as `write <path> <value>` / `rm <path>`.
    pub log: Vec<String>,
    /// Successful commits.
    pub commits: u32,
    /// Connections opened.
    pub connects: u32,
    /// Operations of the open transaction, applied at commit.
    pending: Vec<(String, Option<String>)>,
    pending_log: Vec<String>,
}

impl FakeState {
    /// Drop the connection: every call fails until a reconnection.
    pub fn drop_connection(&mut self) {
        self.connected = false;
    }

    /// Forget the log of operations.
    pub fn take_log(&mut self) -> Vec<String> {
        std::mem::take(&mut self.log)
    }

    fn is_denied(&self, path: &str) -> bool {
        self.denied
            .iter()
            .any(|d| path == d || path.starts_with(&format!("{d}/")))
    }
}

/// The backend side of the fake.
pub struct Fake(Arc<Mutex<FakeState>>);

/// The test's side of the fake.
#[derive(Clone)]
pub struct FakeHandle(Arc<Mutex<FakeState>>);

impl FakeHandle {
    /// Lock the state.
    pub fn state(&self) -> MutexGuard<'_, FakeState> {
        self.0.lock().unwrap()
    }
}

/// A fake and the handle that controls it.
pub fn fake() -> (Fake, FakeHandle) {
    let s = Arc::new(Mutex::new(FakeState::default()));
    (Fake(s.clone()), FakeHandle(s))
}

fn err(n: i32) -> io::Error {
    io::Error::from_raw_os_error(n)
}

impl Fake {
    fn live(&self) -> io::Result<MutexGuard<'_, FakeState>> {
        let s = self.0.lock().unwrap();
        if s.connected {
            Ok(s)
        } else {
            Err(err(libc::EPIPE))
        }
    }
}

impl Backend for Fake {
    fn connect(&mut self) -> io::Result<()> {
        let mut s = self.0.lock().unwrap();
        if s.refuse_connects > 0 {
            s.refuse_connects -= 1;
            return Err(err(libc::ENOENT));
        }
        s.connected = true;
        s.connects += 1;
        Ok(())
    }
    fn disconnect(&mut self) {
        self.0.lock().unwrap().connected = false;
    }
    fn begin(&mut self) -> io::Result<Tx> {
        let mut s = self.live()?;
        s.pending.clear();
        s.pending_log.clear();
        Ok(7)
    }
    fn commit(&mut self, _tx: Tx) -> io::Result<()> {
        let mut s = self.live()?;
        if s.eagain_commits > 0 {
            s.eagain_commits -= 1;
            s.pending.clear();
            s.pending_log.clear();
            return Err(err(libc::EAGAIN));
        }
        for (path, value) in std::mem::take(&mut s.pending) {
            match value {
                Some(v) => s.tree.write(&path, &v),
                None => {
                    s.tree.remove(&path);
                }
            }
        }
        let ops = std::mem::take(&mut s.pending_log);
        s.log.extend(ops);
        s.commits += 1;
        Ok(())
    }
    fn abort(&mut self, _tx: Tx) {
        let mut s = self.0.lock().unwrap();
        s.pending.clear();
        s.pending_log.clear();
    }
    fn read(&mut self, _tx: Tx, path: &str) -> io::Result<Option<String>> {
        Ok(self.live()?.tree.read(path).map(str::to_owned))
    }
    fn directory(&mut self, _tx: Tx, path: &str) -> io::Result<Vec<String>> {
        Ok(self.live()?.tree.directory(path))
    }
    fn write(&mut self, tx: Tx, path: &str, value: &str) -> io::Result<()> {
        let mut s = self.live()?;
        if s.is_denied(path) {
            s.refused.push(path.to_owned());
            return Err(err(libc::EACCES));
        }
        if s.over_quota.iter().any(|q| q == path) {
            s.refused.push(path.to_owned());
            return Err(err(libc::ENOSPC));
        }
        s.pending.push((path.to_owned(), Some(value.to_owned())));
        s.pending_log.push(format!("write {path} {value}"));
        if tx == 0 {
            drop(s);
            return self.commit(0);
        }
        Ok(())
    }
    fn remove(&mut self, tx: Tx, path: &str) -> io::Result<()> {
        let mut s = self.live()?;
        if s.is_denied(path) {
            s.refused.push(path.to_owned());
            return Err(err(libc::EACCES));
        }
        s.pending.push((path.to_owned(), None));
        s.pending_log.push(format!("rm {path}"));
        if tx == 0 {
            drop(s);
            return self.commit(0);
        }
        Ok(())
    }
}
