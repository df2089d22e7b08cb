//! The node store: plain data, no permission checks. Children keep their
//! creation order, as in C xenstored, so listings look like the real ones.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::path;
use crate::perms::Perms;

/// Every modification gets a new generation; a transaction conflicts when a
/// node it used has another generation at commit. One counter for all trees
/// keeps generations unique across a tree and its transaction copies.
static NEXT_GENERATION: AtomicU64 = AtomicU64::new(1);

fn next_generation() -> u64 {
    NEXT_GENERATION.fetch_add(1, Ordering::Relaxed)
}

/// Size of C xenstored's record header (`struct xs_tdb_record_hdr`: a
/// `u64` generation and three `u32`, padded to 24 bytes), part of the
/// node size that is limited for unprivileged domains.
pub const RECORD_HEADER_LEN: usize = 24;

/// One node.
#[derive(Clone, Debug)]
pub struct Node {
    /// The value (any bytes).
    pub value: Vec<u8>,
    /// Who may do what.
    pub perms: Perms,
    /// Child names in creation order.
    pub children: Vec<String>,
    /// Changes on every modification of the node (value, perms, children).
    pub generation: u64,
}

impl Node {
    /// The size C xenstored stores for this node, which must stay below the
    /// node size quota for unprivileged domains.
    pub fn record_len(&self) -> usize {
        RECORD_HEADER_LEN
            + self.perms.record_len()
            + self.value.len()
            + self.children.iter().map(|c| c.len() + 1).sum::<usize>()
    }

    /// The `XS_DIRECTORY` reply: each child NUL-terminated.
    pub fn children_wire(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for c in &self.children {
            out.extend_from_slice(c.as_bytes());
            out.push(0);
        }
        out
    }
}

/// All nodes by absolute path.
#[derive(Clone, Debug)]
pub struct Tree {
    nodes: HashMap<String, Node>,
    /// Paths modified since tracking started (for transaction copies).
    dirty: Option<BTreeSet<String>>,
}

impl Tree {
    /// A tree holding only `/`, with the given permissions.
    pub fn new(root_perms: Perms) -> Tree {
        let mut nodes = HashMap::new();
        nodes.insert(
            "/".to_string(),
            Node {
                value: Vec::new(),
                perms: root_perms,
                children: Vec::new(),
                generation: next_generation(),
            },
        );
        Tree { nodes, dirty: None }
    }

    /// A copy for a transaction, recording what it modifies.
    pub fn transaction_copy(&self) -> Tree {
        Tree {
            nodes: self.nodes.clone(),
            dirty: Some(BTreeSet::new()),
        }
    }

    /// Paths modified in a transaction copy.
    pub fn dirty(&self) -> impl Iterator<Item = &String> {
        self.dirty.iter().flatten()
    }

    fn mark(&mut self, path: &str) {
        if let Some(d) = &mut self.dirty {
            d.insert(path.to_string());
        }
    }

    /// The node at `path`.
    pub fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path)
    }

    /// Whether a node exists.
    pub fn contains(&self, path: &str) -> bool {
        self.nodes.contains_key(path)
    }

    /// Number of nodes owned by `domid` (the per-domain node quota counts
    /// these).
    pub fn owned_by(&self, domid: u32) -> usize {
        self.nodes
            .values()
            .filter(|n| n.perms.owner() == domid)
            .count()
    }

    /// All paths, sorted.
    pub fn paths(&self) -> Vec<&String> {
        let mut v: Vec<&String> = self.nodes.keys().collect();
        v.sort();
        v
    }

    /// Sets the value of an existing node.
    pub fn set_value(&mut self, path: &str, value: &[u8]) {
        if let Some(n) = self.nodes.get_mut(path) {
            n.value = value.to_vec();
            n.generation = next_generation();
            self.mark(path);
        }
    }

    /// Sets the permissions of an existing node.
    pub fn set_perms(&mut self, path: &str, perms: Perms) {
        if let Some(n) = self.nodes.get_mut(path) {
            n.perms = perms;
            n.generation = next_generation();
            self.mark(path);
        }
    }

    /// Creates a node below an existing parent (does nothing if the parent
    /// is missing or the node exists).
    pub fn create(&mut self, path: &str, value: &[u8], perms: Perms) {
        let Some(parent_path) = path::parent(path) else {
            return;
        };
        if self.nodes.contains_key(path) {
            return;
        }
        let Some(parent) = self.nodes.get_mut(parent_path) else {
            return;
        };
        parent.children.push(path::basename(path).to_string());
        parent.generation = next_generation();
        let parent_path = parent_path.to_string();
        self.mark(&parent_path);
        self.nodes.insert(
            path.to_string(),
            Node {
                value: value.to_vec(),
                perms,
                children: Vec::new(),
                generation: next_generation(),
            },
        );
        self.mark(path);
    }

    /// Paths of a subtree, children before their parent (the order C
    /// xenstored deletes in).
    pub fn subtree_post_order(&self, path: &str) -> Vec<String> {
        let mut out = Vec::new();
        self.collect_post_order(path, &mut out);
        out
    }

    fn collect_post_order(&self, path: &str, out: &mut Vec<String>) {
        if let Some(n) = self.nodes.get(path) {
            for c in &n.children {
                self.collect_post_order(&path::join(path, c), out);
            }
            out.push(path.to_string());
        }
    }

    /// Removes a node and everything below it; returns the removed nodes,
    /// children before parents. `/` cannot be removed.
    pub fn remove(&mut self, path: &str) -> Vec<(String, Node)> {
        let Some(parent_path) = path::parent(path) else {
            return Vec::new();
        };
        let mut removed = Vec::new();
        for p in self.subtree_post_order(path) {
            if let Some(n) = self.nodes.remove(&p) {
                self.mark(&p);
                removed.push((p, n));
            }
        }
        if let Some(parent) = self.nodes.get_mut(parent_path) {
            let name = path::basename(path);
            parent.children.retain(|c| c != name);
            parent.generation = next_generation();
            let parent_path = parent_path.to_string();
            self.mark(&parent_path);
        }
        removed
    }

    /// Copies the transaction's version of `path` (or its absence) into this
    /// tree, with a new generation. Used at commit, once no conflict is found.
    pub fn adopt(&mut self, path: &str, node: Option<&Node>) {
        match node {
            Some(n) => {
                let mut n = n.clone();
                n.generation = next_generation();
                self.nodes.insert(path.to_string(), n);
            }
            None => {
                self.nodes.remove(path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::perms::Access;

    fn tree() -> Tree {
        let mut t = Tree::new(Perms::new(0, Access::None));
        t.create("/a", b"", Perms::new(0, Access::None));
        t.create("/a/b", b"1", Perms::new(0, Access::None));
        t.create("/a/c", b"2", Perms::new(0, Access::None));
        t.create("/a/b/d", b"3", Perms::new(0, Access::None));
        t
    }

    #[test]
    fn create_keeps_order_and_bumps_parent() {
        let t = tree();
        assert_eq!(t.get("/a").unwrap().children, vec!["b", "c"]);
        assert_eq!(t.get("/a").unwrap().children_wire(), b"b\0c\0");
        let mut t2 = t.clone();
        let g = t2.get("/a").unwrap().generation;
        t2.create("/a/e", b"", Perms::new(0, Access::None));
        assert_ne!(t2.get("/a").unwrap().generation, g);
        t2.create("/x/y", b"", Perms::new(0, Access::None));
        assert!(!t2.contains("/x/y"));
    }

    #[test]
    fn remove_subtree_post_order() {
        let mut t = tree().transaction_copy();
        let removed: Vec<String> = t.remove("/a/b").into_iter().map(|(p, _)| p).collect();
        assert_eq!(removed, vec!["/a/b/d", "/a/b"]);
        assert_eq!(t.get("/a").unwrap().children, vec!["c"]);
        let dirty: Vec<&String> = t.dirty().collect();
        assert_eq!(dirty, vec!["/a", "/a/b", "/a/b/d"]);
        assert!(t.remove("/").is_empty());
    }

    #[test]
    fn record_len_counts_header_perms_value_children() {
        let t = tree();
        assert_eq!(t.get("/a").unwrap().record_len(), 24 + 8 + 4);
        assert_eq!(t.get("/a/c").unwrap().record_len(), 24 + 8 + 1);
        assert_eq!(t.owned_by(0), 5);
    }
}
