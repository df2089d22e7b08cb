//! The figures of a run: what the driver did and what the checks saw, as
//! the JSON file `--json` writes (bench/soak.json collects them).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::agent::Resources;

/// Counters of one run.
#[derive(Clone, Debug, Default)]
pub struct Figures {
    pub actions: BTreeMap<String, u64>,
    pub faults: BTreeMap<String, u64>,
    /// Network changes made (addresses, links), bursts included.
    pub network_changes: u64,
    /// `ip` commands the kernel refused (a stale belief of the driver).
    pub kernel_refusals: u64,
    pub checks_passed: u64,
    pub checks_failed: u64,
    /// From the driver's pause to the first exact tree, per check.
    pub convergence_ms: Vec<u64>,
    pub resources_start: Option<Resources>,
    pub resources_end: Option<Resources>,
    /// The most seen during warm-up, and after it.
    pub resources_warmup: Option<Resources>,
    pub resources_after_warmup: Option<Resources>,
    pub agent_starts: u64,
    pub crashes: u64,
    pub stale_nodes: u64,
    pub missing_nodes: u64,
    pub wrong_nodes: u64,
    pub slot_violations: u64,
    pub oplog_violations: u64,
    pub growth_violations: u64,
    /// What each failed check saw.
    pub failures: Vec<Value>,
}

/// The larger of each figure.
pub fn max(a: Option<Resources>, b: Resources) -> Resources {
    match a {
        None => b,
        Some(a) => Resources {
            rss_kib: a.rss_kib.max(b.rss_kib),
            fds: a.fds.max(b.fds),
            threads: a.threads.max(b.threads),
        },
    }
}

fn resources(r: Option<Resources>) -> Value {
    match r {
        None => Value::Null,
        Some(r) => json!({"rss_kib": r.rss_kib, "fds": r.fds, "threads": r.threads}),
    }
}

impl Figures {
    /// The slowest convergence and the median, in ms.
    pub fn convergence(&self) -> (u64, u64) {
        let mut v = self.convergence_ms.clone();
        v.sort_unstable();
        (
            v.last().copied().unwrap_or(0),
            v.get(v.len() / 2).copied().unwrap_or(0),
        )
    }

    /// Everything, as JSON; `run` describes the run (seed, options...).
    pub fn to_json(&self, run: Value, oplog: &crate::oplog::Figures, agent_log: Value) -> Value {
        let (slowest, median) = self.convergence();
        json!({
            "run": run,
            "actions": self.actions,
            "actions_total": self.actions.values().sum::<u64>(),
            "faults": self.faults,
            "faults_total": self.faults.values().sum::<u64>(),
            "network_changes": self.network_changes,
            "kernel_refusals": self.kernel_refusals,
            "checks": {"passed": self.checks_passed, "failed": self.checks_failed},
            "convergence_ms": {"slowest": slowest, "median": median, "all": self.convergence_ms},
            "agent": {
                "start": resources(self.resources_start),
                "end": resources(self.resources_end),
                "warmup_max": resources(self.resources_warmup),
                "after_warmup_max": resources(self.resources_after_warmup),
                "starts": self.agent_starts,
                "crashes": self.crashes,
                "log": agent_log,
            },
            "stale_nodes": self.stale_nodes,
            "missing_nodes": self.missing_nodes,
            "wrong_nodes": self.wrong_nodes,
            "slot_violations": self.slot_violations,
            "oplog": {
                "violations": self.oplog_violations,
                "unchanged_writes": oplog.unchanged_writes,
                "outside_subtrees": oplog.outside_subtrees,
                "out_of_order": oplog.out_of_order,
                "outside_transactions": oplog.outside_transactions,
                "committed": oplog.committed,
                "failed_commits": oplog.failed_commits,
                "requests": oplog.requests,
                "refusals": oplog.refusals,
                "unseen_requests": oplog.unseen,
                "blind_unchanged_writes": oplog.blind_unchanged_writes,
            },
            "growth_violations": self.growth_violations,
            "failures": self.failures,
        })
    }
}
