//! An in-memory xenstore tree, for the memory store (the dry run, tests).
//!
//! It keeps xenstore's semantics that matter to the publisher: writing a
//! node creates its missing parents with empty values, removing a node
//! removes its subtree, and a directory lists the children's names.

use std::collections::BTreeMap;

use super::super::schema::Nodes;

/// Every node by path (parents included), with its value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemTree {
    nodes: BTreeMap<String, String>,
}

impl MemTree {
    /// The value of a node.
    pub fn read(&self, path: &str) -> Option<&str> {
        self.nodes.get(path).map(String::as_str)
    }

    /// The names of a node's children (empty when it has none).
    pub fn directory(&self, path: &str) -> Vec<String> {
        let prefix = format!("{path}/");
        self.nodes
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| &k[prefix.len()..])
            .filter(|rest| !rest.contains('/'))
            .map(str::to_owned)
            .collect()
    }

    /// Write a node, creating missing parents with empty values.
    pub fn write(&mut self, path: &str, value: &str) {
        let mut end = 0;
        while let Some(i) = path[end..].find('/') {
            end += i;
            self.nodes.entry(path[..end].to_owned()).or_default();
            end += 1;
        }
        self.nodes.insert(path.to_owned(), value.to_owned());
    }

    /// Remove a node and its subtree; whether it existed.
    pub fn remove(&mut self, path: &str) -> bool {
        let existed = self.nodes.remove(path).is_some();
        let prefix = format!("{path}/");
        let before = self.nodes.len();
        self.nodes.retain(|k, _| !k.starts_with(&prefix));
        existed || self.nodes.len() != before
    }

    /// Remove everything (a fresh domain after a migration).
    pub fn clear(&mut self) {
        self.nodes.clear();
    }

    /// Every node, parents included: what `xenstore-ls` shows.
    pub fn all(&self) -> &BTreeMap<String, String> {
        &self.nodes
    }

    /// The leaves (nodes without children), as schemas render them.
    pub fn leaves(&self) -> Nodes {
        let mut leaves = Nodes::new();
        for (k, v) in &self.nodes {
            // Children sort after "k/", but not necessarily right after k
            // ("k-x" comes between): look them up.
            let prefix = format!("{k}/");
            let is_parent = self
                .nodes
                .range(prefix.clone()..)
                .next()
                .is_some_and(|(next, _)| next.starts_with(&prefix));
            if !is_parent {
                leaves.insert(k.clone(), v.clone());
            }
        }
        leaves
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_create_parents_and_removals_take_subtrees() {
        let mut t = MemTree::default();
        t.write("attr/vif/0/ipv4/0", "10.0.0.1");
        t.write("attr/vif/0/ipv4/1", "10.0.0.2");
        t.write("attr/vif-x", "other");
        assert_eq!(t.read("attr/vif/0"), Some(""));
        assert_eq!(t.directory("attr"), ["vif", "vif-x"]);
        assert_eq!(t.directory("attr/vif/0/ipv4"), ["0", "1"]);
        assert_eq!(t.leaves().len(), 3);
        assert!(t.remove("attr/vif"));
        assert_eq!(t.directory("attr"), ["vif-x"]);
        assert!(!t.remove("attr/vif"));
    }
}
