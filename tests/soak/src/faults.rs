//! The faults xenstored and dom0 inject, as the test xenstored offers them.
//!
//! Adding a kind is a few lines: a variant, its line in [`Fault::CATALOGUE`]
//! (name, weight, and how many actions it stays on: 0 for a one-shot),
//! its arm in [`Fault::inject`] and, when it stays on, in [`Fault::lift`].

use std::time::Duration;

use test_xenstored::{Corruption, Errno};

use crate::driver::{Soak, Toolstack};

/// One kind of fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    /// xenstored restarts: every connection drops, the tree is kept.
    XenstoredRestart,
    /// xenstored stops (no socket) for a few actions, then starts again.
    XenstoredDown,
    /// xenstored restarts and has lost what the guest wrote.
    XenstoredRestartLossy,
    /// Every connection is closed; the server keeps listening.
    DropConnections,
    /// The next 1 to 40 commits fail with EAGAIN.
    EagainStorm,
    /// A node or subtree answers EACCES (or EPERM, EROFS) for a while.
    Denied,
    /// A node or subtree answers ENOSPC (or E2BIG, EINVAL) for a while.
    Refused,
    /// Every node the guest creates fails with the quota error.
    QuotaExceeded,
    /// The node quota set near what the guest owns.
    NodeQuota,
    /// Every request waits 1 to 20 ms.
    SlowReplies,
    /// A new domain (resume, restore, migration): everything the guest
    /// wrote is gone, its watches fire.
    NewDomain,
    /// dom0 loses the guest's nodes without any watch firing.
    TreeLost,
    /// Requests are applied, replies never sent (a hung xenstored): the
    /// agent waits `--xenstore-timeout`, then reconnects.
    SwallowReplies,
    /// The next reply is garbage, truncated, of another request or type.
    CorruptReply,
}

impl Fault {
    /// Every fault: name, weight (relative frequency), actions it stays on.
    pub const CATALOGUE: &'static [(Fault, &'static str, u32, usize)] = &[
        (Fault::XenstoredRestart, "xenstored-restart", 4, 0),
        (Fault::XenstoredDown, "xenstored-down", 2, 4),
        (
            Fault::XenstoredRestartLossy,
            "xenstored-restart-lossy",
            1,
            0,
        ),
        (Fault::DropConnections, "drop-connections", 4, 0),
        (Fault::EagainStorm, "eagain-storm", 5, 0),
        (Fault::Denied, "eacces", 4, 6),
        (Fault::Refused, "refused", 2, 6),
        (Fault::QuotaExceeded, "quota-exceeded", 2, 5),
        (Fault::NodeQuota, "node-quota", 2, 5),
        (Fault::SlowReplies, "slow-replies", 3, 6),
        (Fault::NewDomain, "new-domain", 5, 0),
        (Fault::TreeLost, "tree-lost", 1, 0),
        (Fault::SwallowReplies, "replies-swallowed", 1, 3),
        (Fault::CorruptReply, "reply-corrupted", 2, 0),
    ];

    pub fn name(self) -> &'static str {
        Self::entry(self).1
    }

    /// How many actions it stays on (0: a one-shot).
    pub fn lifetime(self) -> usize {
        Self::entry(self).3
    }

    fn entry(self) -> &'static (Fault, &'static str, u32, usize) {
        Self::CATALOGUE
            .iter()
            .find(|e| e.0 == self)
            .expect("every fault is in the catalogue")
    }

    /// Switch it on (or do it); what was done, for the log of actions.
    /// `None`: it does not apply now.
    pub fn inject(self, s: &mut Soak) -> Option<String> {
        Some(match self {
            Fault::XenstoredRestart => {
                if s.xs_stopped {
                    return None;
                }
                s.xs.restart().ok()?;
                "xenstored restarted".into()
            }
            Fault::XenstoredDown => {
                if s.xs_stopped {
                    return None;
                }
                s.xs.stop();
                s.xs_stopped = true;
                "xenstored stopped".into()
            }
            Fault::XenstoredRestartLossy => {
                if s.xs_stopped {
                    return None;
                }
                s.xs.stop();
                s.lose_tree();
                s.xs.start().ok()?;
                "xenstored restarted without the guest's nodes".into()
            }
            Fault::DropConnections => {
                s.xs.drop_connections();
                "connections dropped".into()
            }
            Fault::EagainStorm => {
                let n = s.rng.log_range(1, 40) as u32;
                s.xs.fail_next_commits(n);
                format!("the next {n} commits fail with EAGAIN")
            }
            Fault::Denied | Fault::Refused => {
                let path = s.fault_target(self == Fault::Denied)?;
                let errnos = if self == Fault::Denied {
                    [Errno::EACCES, Errno::EACCES, Errno::EPERM, Errno::EROFS]
                } else {
                    [Errno::ENOSPC, Errno::ENOSPC, Errno::E2BIG, Errno::EINVAL]
                };
                let errno = errnos[s.rng.below(errnos.len())];
                s.xs.fail_path(&path, errno);
                s.reconnect_at_quiet |= self == Fault::Denied;
                format!("{path} answers {}", errno.name())
            }
            Fault::QuotaExceeded => {
                s.xs.set_quota_exceeded(true);
                "node quota exceeded".into()
            }
            Fault::NodeQuota => {
                let owned = s.owned_nodes();
                let quota = owned.saturating_sub(5) + s.rng.below(10);
                s.xs.set_node_quota(quota);
                format!("node quota {quota} (the guest owns {owned})")
            }
            Fault::SlowReplies => {
                let ms = s.rng.range(1, 20) as u64;
                s.xs.set_reply_delay(Duration::from_millis(ms));
                format!("replies delayed {ms} ms")
            }
            Fault::NewDomain => {
                let old = s.domid;
                s.domid += 1 + s.rng.below(3) as u32;
                s.xs.new_domain(s.domid);
                s.after_new_domain();
                format!(
                    "new domain {} (was {old}){}",
                    s.domid,
                    match s.toolstack {
                        Toolstack::Xapi => ", XAPI's nodes made again",
                        Toolstack::Libxl => "",
                    }
                )
            }
            Fault::TreeLost => {
                s.lose_tree();
                "dom0 lost the guest's nodes (no watch fires)".into()
            }
            Fault::SwallowReplies => {
                s.xs.swallow_replies(true);
                s.reconnect_at_quiet = true;
                "replies swallowed (requests applied)".into()
            }
            Fault::CorruptReply => {
                let how = Corruption::ALL[s.rng.below(Corruption::ALL.len())];
                s.xs.corrupt_next_reply(how);
                format!("the next reply spoiled: {how:?}")
            }
        })
    }

    /// Switch it off.
    pub fn lift(self, s: &mut Soak) {
        match self {
            Fault::XenstoredDown => {
                if s.xs_stopped && s.xs.start().is_ok() {
                    s.xs_stopped = false;
                }
            }
            Fault::Denied | Fault::Refused => {
                // Not in the middle of a transaction: a subtree it could
                // not read there, written once the fault is gone, would be
                // an unchanged write that only this test's timing makes
                // (test_xenstored's failing paths refuse reads too, which
                // no xenstored does for ENOSPC or E2BIG).
                s.outside_transactions();
                s.xs.clear_failing_paths()
            }
            Fault::QuotaExceeded => s.xs.set_quota_exceeded(false),
            Fault::NodeQuota => s.xs.set_node_quota(1000),
            Fault::SlowReplies => s.xs.set_reply_delay(Duration::ZERO),
            Fault::EagainStorm => s.xs.fail_next_commits(0),
            Fault::SwallowReplies => s.xs.swallow_replies(false),
            // Not left pending into the quiet period.
            Fault::CorruptReply => s.xs.clear_corruption(),
            Fault::XenstoredRestart
            | Fault::XenstoredRestartLossy
            | Fault::DropConnections
            | Fault::NewDomain
            | Fault::TreeLost => {}
        }
    }

    /// Every fault that stays on, switched off (the quiet period).
    pub fn lift_all(s: &mut Soak) {
        for (f, ..) in Self::CATALOGUE {
            f.lift(s);
        }
        s.active_faults.clear();
        // A node refused with EACCES is not tried again before the
        // agent's next reconciliation (docs/xenstore-schema.md), and a
        // libxenstore call whose reply was swallowed keeps its thread
        // until the connection closes: close them.
        if std::mem::take(&mut s.reconnect_at_quiet) {
            s.xs.drop_connections();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fault_has_one_catalogue_line_and_a_distinct_name() {
        let names: std::collections::BTreeSet<&str> =
            Fault::CATALOGUE.iter().map(|e| e.1).collect();
        assert_eq!(names.len(), Fault::CATALOGUE.len());
        for (f, name, weight, _) in Fault::CATALOGUE {
            assert_eq!(f.name(), *name);
            assert!(*weight > 0, "{name}");
        }
    }
}
