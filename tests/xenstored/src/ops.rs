//! The node operations, with C xenstored's permission and limit rules. They
//! work on the live tree or on a transaction's copy alike: each records the
//! nodes it used (for conflict detection) and the changes it made (for
//! watches).

use std::collections::HashMap;

use crate::path;
use crate::perms::{Perms, Rights};
use crate::tree::{Node, Tree, RECORD_HEADER_LEN};
use crate::wire::{Errno, PAYLOAD_MAX};

/// Who is asking, as far as permissions go.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The domain the request acts as.
    pub domid: u32,
    /// dom0 (and the test API): bypasses permissions and limits.
    pub privileged: bool,
    /// Where relative paths resolve.
    pub home: String,
}

/// Limits that apply to unprivileged domains, like C xenstored's quotas.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Nodes a domain may own (C xenstored `-E`, default 1000).
    pub node_quota: usize,
    /// The error for an exceeded node quota: C xenstored sends `ENOSPC`
    /// (the default); oxenstored sends `EQUOTA`.
    pub quota_errno: Errno,
    /// Size of a node record an unprivileged domain may write (C
    /// xenstored `-S`, default 2048): header (24) + 8 per permission +
    /// value + child names with their NULs must stay below it.
    pub max_node_size: usize,
    /// Watches per connection (C xenstored `-W`, default 128); more: `E2BIG`.
    pub watches_per_conn: usize,
    /// Open transactions per connection (C xenstored `-t`, default 10);
    /// more: `ENOSPC`.
    pub transactions_per_conn: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            node_quota: 1000,
            quota_errno: Errno::ENOSPC,
            max_node_size: 2048,
            watches_per_conn: 128,
            transactions_per_conn: 10,
        }
    }
}

/// A modification, for watches: who may see it and which watches match.
#[derive(Clone, Debug)]
pub struct Change {
    /// The node (or `@special` event name).
    pub path: String,
    /// Only watches on exactly this path fire (descendants of a removed
    /// node); otherwise watches on the path and its ancestors fire.
    pub exact: bool,
    /// A watcher is told if any of these let it read (the node's old and
    /// new permissions, its parent's); privileged watchers always are.
    pub readers: Vec<Perms>,
}

/// First generation seen of every node an operation used (`None`: absent).
pub type Touched = HashMap<String, Option<u64>>;

/// One operation's view of a tree.
pub struct Ctx<'a> {
    /// The live tree or a transaction's copy.
    pub tree: &'a mut Tree,
    /// The requester.
    pub who: &'a Caller,
    /// Its limits (ignored when privileged).
    pub limits: &'a Limits,
    /// Fault injection: every creation by an unprivileged caller fails with
    /// the quota error.
    pub quota_exceeded: bool,
    /// Nodes used, for transaction conflicts.
    pub touched: &'a mut Touched,
    /// Modifications made, for watches.
    pub changes: &'a mut Vec<Change>,
}

impl Ctx<'_> {
    fn touch(&mut self, path: &str) {
        if !self.touched.contains_key(path) {
            let generation = self.tree.get(path).map(|n| n.generation);
            self.touched.insert(path.to_string(), generation);
        }
    }

    fn rights(&self, node: &Node) -> Rights {
        node.perms.rights(self.who.domid, self.who.privileged)
    }

    /// C xenstored's `errno_from_parents`: a missing node is `ENOENT` only
    /// to callers who would have the rights `need` wants on its nearest
    /// existing ancestor, `EACCES` otherwise (so a guest removing a missing
    /// node of its read-only home gets `EACCES`, as from C xenstored 4.17).
    fn missing(&self, path: &str, need: fn(Rights) -> bool) -> Errno {
        let mut p = path;
        while let Some(parent) = path::parent(p) {
            if let Some(n) = self.tree.get(parent) {
                return if need(self.rights(n)) {
                    Errno::ENOENT
                } else {
                    Errno::EACCES
                };
            }
            p = parent;
        }
        Errno::EACCES
    }

    /// The node if the caller has the rights `need` wants.
    fn get(&mut self, path: &str, need: fn(Rights) -> bool) -> Result<&Node, Errno> {
        self.touch(path);
        match self.tree.get(path) {
            Some(n) if need(self.rights(n)) => Ok(self.tree.get(path).ok_or(Errno::ENOENT)?),
            Some(_) => Err(Errno::EACCES),
            None => Err(self.missing(path, need)),
        }
    }

    fn check_size(&self, record_len: usize) -> Result<(), Errno> {
        if !self.who.privileged && record_len >= self.limits.max_node_size {
            return Err(Errno::ENOSPC);
        }
        Ok(())
    }

    fn readers(&self, path: &str, extra: &[&Perms]) -> Vec<Perms> {
        let mut v: Vec<Perms> = extra.iter().map(|p| (*p).clone()).collect();
        if let Some(parent) = path::parent(path).and_then(|p| self.tree.get(p)) {
            v.push(parent.perms.clone());
        }
        v
    }

    /// `XS_READ`.
    pub fn read(&mut self, path: &str) -> Result<Vec<u8>, Errno> {
        Ok(self.get(path, |r| r.read)?.value.clone())
    }

    /// `XS_GET_PERMS`.
    pub fn get_perms(&mut self, path: &str) -> Result<Perms, Errno> {
        Ok(self.get(path, |r| r.read)?.perms.clone())
    }

    /// `XS_DIRECTORY`: the children, NUL-terminated; `E2BIG` when they do
    /// not fit in one reply (clients then use `XS_DIRECTORY_PART`).
    pub fn directory(&mut self, path: &str) -> Result<Vec<u8>, Errno> {
        let list = self.get(path, |r| r.read)?.children_wire();
        if list.len() > PAYLOAD_MAX {
            return Err(Errno::E2BIG);
        }
        Ok(list)
    }

    /// `XS_DIRECTORY_PART`: the node's generation, then as many children
    /// from byte `offset` as fit, then an empty string once the list is
    /// complete (C xenstored's `do_directory_part`).
    pub fn directory_part(&mut self, path: &str, offset: usize) -> Result<Vec<u8>, Errno> {
        let node = self.get(path, |r| r.read)?;
        let list = node.children_wire();
        let mut out = node.generation.to_string().into_bytes();
        out.push(0);
        if offset >= list.len() {
            out.push(0);
            return Ok(out);
        }
        let max = PAYLOAD_MAX - out.len() - 1;
        let mut len = 0;
        for child in list[offset..].split_inclusive(|b| *b == 0) {
            if len + child.len() > max {
                break;
            }
            len += child.len();
        }
        out.extend_from_slice(&list[offset..offset + len]);
        if offset + len == list.len() {
            out.push(0);
        }
        Ok(out)
    }

    /// `XS_WRITE`; returns whether the value changed (a write of the same
    /// value still counts as a modification and fires watches, as in C).
    pub fn write(&mut self, path: &str, value: &[u8]) -> Result<bool, Errno> {
        match self.get(path, |r| r.write) {
            Ok(node) => {
                let record = node.record_len() - node.value.len() + value.len();
                let changed = node.value != value;
                let perms = node.perms.clone();
                self.check_size(record)?;
                self.tree.set_value(path, value);
                let readers = self.readers(path, &[&perms]);
                self.changes.push(Change {
                    path: path.to_string(),
                    exact: false,
                    readers,
                });
                Ok(changed)
            }
            Err(Errno::ENOENT) => self.create(path, value).map(|()| true),
            Err(e) => Err(e),
        }
    }

    /// `XS_MKDIR`: creates an empty node; an existing one is left alone.
    pub fn mkdir(&mut self, path: &str) -> Result<bool, Errno> {
        match self.get(path, |r| r.write) {
            Ok(_) => Ok(false),
            Err(Errno::ENOENT) => self.create(path, b"").map(|()| true),
            Err(e) => Err(e),
        }
    }

    /// Creates `path` and its missing ancestors (C `construct_node`): the
    /// nearest existing ancestor must be writable; new nodes inherit its
    /// permissions, owned by the creator when unprivileged.
    fn create(&mut self, path: &str, value: &[u8]) -> Result<(), Errno> {
        let mut missing = vec![path.to_string()];
        let mut parent_path = path::parent(path).ok_or(Errno::EINVAL)?;
        while !self.tree.contains(parent_path) {
            missing.push(parent_path.to_string());
            parent_path = path::parent(parent_path).ok_or(Errno::EINVAL)?;
        }
        let parent = self.tree.get(parent_path).ok_or(Errno::ENOENT)?;
        if !self.rights(parent).write {
            return Err(Errno::EACCES);
        }
        let mut perms = parent.perms.clone();
        if !self.who.privileged {
            perms.set_owner(self.who.domid);
            if self.quota_exceeded
                || self.tree.owned_by(self.who.domid) + missing.len() > self.limits.node_quota
            {
                return Err(self.limits.quota_errno);
            }
            let top = missing.last().map(|p| path::basename(p).len() + 1);
            self.check_size(parent.record_len() + top.unwrap_or(0))?;
            self.check_size(RECORD_HEADER_LEN + perms.record_len() + value.len())?;
        }
        let parent_path = parent_path.to_string();
        self.touch(&parent_path);
        for p in missing.iter().rev() {
            self.touch(p);
            let v: &[u8] = if p == path { value } else { b"" };
            self.tree.create(p, v, perms.clone());
        }
        let readers = self.readers(path, &[&perms]);
        self.changes.push(Change {
            path: path.to_string(),
            exact: false,
            readers,
        });
        Ok(())
    }

    /// `XS_RM`: removes the node and everything below. A missing node is
    /// fine if its parent exists.
    pub fn rm(&mut self, path: &str) -> Result<bool, Errno> {
        match self.get(path, |r| r.write) {
            Ok(_) => {}
            Err(Errno::ENOENT) => {
                return match path::parent(path) {
                    Some(p) if self.tree.contains(p) => Ok(false),
                    _ => Err(Errno::ENOENT),
                };
            }
            Err(e) => return Err(e),
        }
        let Some(parent) = path::parent(path) else {
            return Err(Errno::EINVAL);
        };
        self.touch(parent);
        let subtree = self.tree.subtree_post_order(path);
        let mut changes = Vec::new();
        for p in &subtree {
            self.touch(p);
            if let Some(n) = self.tree.get(p) {
                changes.push(Change {
                    path: p.clone(),
                    exact: p != path,
                    readers: self.readers(p, &[&n.perms]),
                });
            }
        }
        self.tree.remove(path);
        self.changes.extend(changes);
        Ok(true)
    }

    /// `XS_SET_PERMS`: the owner (or dom0) only; an unprivileged owner may
    /// not give the node away (`EPERM`).
    pub fn set_perms(&mut self, path: &str, perms: Perms) -> Result<bool, Errno> {
        let node = self.get(path, |r| r.write && r.owner)?;
        let old = node.perms.clone();
        let record = node.record_len() - old.record_len() + perms.record_len();
        if !self.who.privileged && perms.owner() != old.owner() {
            return Err(Errno::EPERM);
        }
        self.check_size(record)?;
        let changed = old != perms;
        self.tree.set_perms(path, perms.clone());
        let readers = self.readers(path, &[&old, &perms]);
        self.changes.push(Change {
            path: path.to_string(),
            exact: false,
            readers,
        });
        Ok(changed)
    }
}
