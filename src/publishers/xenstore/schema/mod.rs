//! Schemas: what to write where (pure), for [`standard`] (what XAPI reads)
//! and [`rfc`] (the structured tree), and what they share.
//!
//! A schema renders the complete set of nodes it wants from the model; the
//! publisher diffs that against what it last wrote (or read back at start)
//! and turns the difference into ordered operations. Rendering everything
//! and diffing keeps both halves simple and makes "write only what changed,
//! remove what is no longer true" hold by construction, after a restart, a
//! reconnection or a migration alike.

#[cfg(test)]
pub mod fixtures;
pub mod rfc;
pub mod slots;
pub mod standard;

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::plan::sanitize;
use crate::state::{Address, Guest, Interface};
use slots::Family;

/// Nodes by path relative to the domain's home (`data/os_name`), with their
/// values. Only leaves: parents are implied.
pub type Nodes = BTreeMap<String, String>;

/// What a schema needs to know besides the model: facts read from xenstore
/// and the user's choices.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Context {
    /// SR-IOV virtual functions dom0 announced, from
    /// `xenserver/device/net-sriov-vf/<id>/mac`: id → lowercase MAC.
    pub sriov_vfs: BTreeMap<String, String>,
    /// Most addresses per interface and family (`--max-addresses`).
    pub max_addresses: usize,
    /// Most filesystems published (`--max-filesystems`).
    pub max_filesystems: usize,
    /// Whether to write `control/feature-balloon` (`--no-feature-balloon`).
    pub feature_balloon: bool,
}

/// One xenstore operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Write `value` at `path` (creating parents).
    Write {
        /// Relative path.
        path: String,
        /// Value.
        value: String,
    },
    /// Remove `path` and everything below it.
    Remove {
        /// Relative path.
        path: String,
    },
}

/// A layout of the guest's facts in xenstore.
pub trait Schema: Send {
    /// Short name (`std`, `rfc`), for logs.
    fn name(&self) -> &'static str;

    /// The subtrees and nodes this schema owns: at start they are read back,
    /// and anything found below them that [`Schema::render`] does not want
    /// is removed. Nothing outside them is ever removed.
    fn owned(&self) -> &'static [&'static str];

    /// Nodes the schema writes but does not own: read back at start to
    /// know whether they already hold what it wants, never removed.
    fn kept(&self) -> &'static [&'static str] {
        &[]
    }

    /// Learn from what a previous run left (read back from the owned
    /// subtrees at start), so that what is still true keeps its place
    /// (address slots).
    fn adopt(&mut self, existing: &Nodes);

    /// Every node the schema wants now. Must be deterministic for a given
    /// model, context and history.
    fn render(&mut self, guest: &Guest, ctx: &Context) -> Nodes;
}

/// Insert `path` = `value` made writable; an empty value is left out
/// (absent means unknown, which readers handle better than an empty
/// string; and a leaf is never empty in the layouts).
pub fn put(nodes: &mut Nodes, path: impl Into<String>, value: &str) {
    let value = sanitize(value);
    if !value.is_empty() {
        nodes.insert(path.into(), value);
    }
}

/// The SR-IOV VF id whose MAC dom0 announced for `iface`, if any.
pub fn sriov_vf<'c>(iface: &Interface, ctx: &'c Context) -> Option<&'c str> {
    let mac = iface.link.mac.as_deref()?;
    ctx.sriov_vfs
        .iter()
        .find(|(_, vf)| vf.trim().eq_ignore_ascii_case(mac))
        .map(|(id, _)| id.as_str())
}

/// The addresses of `family` among `addrs` that dom0 is shown (not
/// tentative, not DAD-failed), sorted, without duplicates: what the slots
/// are assigned from.
pub fn reportable<'a>(
    addrs: impl IntoIterator<Item = (&'a IpAddr, &'a Address)>,
    family: Family,
) -> Vec<IpAddr> {
    let mut v: Vec<IpAddr> = addrs
        .into_iter()
        .filter(|(a, info)| Family::of(a) == family && info.flags.reportable())
        .map(|(a, _)| *a)
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}
