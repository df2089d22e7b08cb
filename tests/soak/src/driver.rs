//! The soak itself: periods of random, overlapping actions and faults,
//! each followed by a quiet period in which the agent must settle and the
//! tree, the op log, the slots and the agent's resources are checked.
//!
//! A period is a seeded number of actions with seeded pauses; network
//! changes run in the background (one `ip -batch` at a time) while
//! xenstore faults, new domains and agent restarts happen, so they
//! overlap. The quiet period lifts every fault, waits for the tree to
//! equal what the contract derives from the kernel's state, toggles the
//! sentinel address (anything queued before it has been seen once it
//! shows), waits again, then checks.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use test_xenstored::{DomainConfig, Errno, Limits, Server};

use crate::actions::{sentinel_addr, Hook, Net, NetAction, Plan, SENTINEL_NAME, SENTINEL_VIF};
use crate::agent::{self, Agent, Launch, Log, Resources};
use crate::expect::{expect, Dom0, Expected, Options, Schema};
use crate::faults::Fault;
use crate::figures::{self, Figures};
use crate::host::Host;
use crate::kernel::Kernel;
use crate::oplog::OpLog;
use crate::rng::Rng;
use crate::slots::{self, Shown};
use crate::tree::{compare, ours, Diff};
use crate::world::{Job, World};

/// Set by SIGINT/SIGTERM: the run ends at the next step, cleaning up.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// The dom0 toolstack the run pretends to be (chosen by the seed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Toolstack {
    /// XAPI on oxenstored: `control/feature-balloon` pre-created,
    /// `unique-domain-id` written, quota errors as `EQUOTA`.
    Xapi,
    /// libxl on C xenstored: `control/` read-only, quota errors `ENOSPC`.
    Libxl,
}

/// How a run goes.
#[derive(Clone, Debug)]
pub struct Config {
    pub agent: Option<PathBuf>,
    pub agent_args: Vec<String>,
    pub seed: u64,
    pub duration: Duration,
    pub quiet: Duration,
    pub keep_going: bool,
    /// Action and fault names left out (triage).
    pub without: BTreeSet<String>,
    pub toolstack: Option<Toolstack>,
    pub log_dir: PathBuf,
    /// Every line the agents log, appended here.
    pub agent_log: Option<PathBuf>,
    pub verbose: bool,
    /// The command that replays this run.
    pub replay: String,
}

/// A check that did not pass.
#[derive(Debug)]
pub struct Failure {
    pub what: String,
    pub details: Vec<String>,
    pub diff: Counts,
    /// Already printed and counted ([`Soak::fail`]).
    reported: bool,
}

impl Failure {
    fn new(what: impl Into<String>, details: Vec<String>) -> Failure {
        Failure {
            what: what.into(),
            details,
            diff: Counts::default(),
            reported: false,
        }
    }
}

/// How many differences of each kind a tree had.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counts {
    pub missing: u32,
    pub extra: u32,
    pub wrong: u32,
    pub slots: u32,
}

impl Counts {
    fn of(d: &Diff) -> Counts {
        let n = |v: &Vec<String>| v.len() as u32;
        Counts {
            missing: n(&d.missing),
            extra: n(&d.extra),
            wrong: n(&d.wrong),
            slots: n(&d.slots),
        }
    }
}

/// What the agent does besides the network's and xenstored's doings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AgentAction {
    Term,
    Kill,
}

/// dom0's own actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dom0Action {
    VfAnnounce,
    VfWithdraw,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Choice {
    Net(NetAction),
    Fault(Fault),
    Agent(AgentAction),
    Dom0(Dom0Action),
}

impl Choice {
    fn name(self) -> &'static str {
        match self {
            Choice::Net(n) => n.name(),
            Choice::Fault(f) => f.name(),
            Choice::Agent(AgentAction::Term) => "agent-restart-sigterm",
            Choice::Agent(AgentAction::Kill) => "agent-restart-sigkill",
            Choice::Dom0(Dom0Action::VfAnnounce) => "vf-announce",
            Choice::Dom0(Dom0Action::VfWithdraw) => "vf-withdraw",
        }
    }
}

/// Every choice name, for `--without` and the help.
pub fn all_names() -> Vec<&'static str> {
    let mut v: Vec<&str> = NetAction::CATALOGUE.iter().map(|(a, _)| a.name()).collect();
    v.extend(Fault::CATALOGUE.iter().map(|e| e.1));
    v.extend([
        "agent-restart-sigterm",
        "agent-restart-sigkill",
        "vf-announce",
        "vf-withdraw",
    ]);
    v
}

/// A background `ip -batch` and what follows it.
struct Running {
    job: Job,
    after: Vec<Hook>,
}

/// What a converged check saw.
struct Seen {
    kernel: Kernel,
    expected: Expected,
    shown: BTreeMap<String, Shown>,
}

/// A directory at the last good check.
struct Before {
    shown: Shown,
    chain: Vec<u32>,
    names: Vec<String>,
}

/// The run's state.
pub struct Soak {
    cfg: Config,
    opts: Options,
    pub rng: Rng,
    world: World,
    pub xs: Server,
    launch: Launch,
    agent: Option<Agent>,
    agent_log: Arc<Mutex<Log>>,
    host: Host,
    net: Net,
    job: Option<Running>,
    oplog: OpLog,
    /// Records of the current op log already checked.
    seen_ops: usize,
    /// Op log rules broken since the last check.
    violations: Vec<String>,
    /// Faults on, with the actions left before they are lifted.
    pub active_faults: Vec<(Fault, usize)>,
    /// Since the last quiet period, a node was refused with EACCES (not
    /// tried again before a reconciliation) or replies were swallowed (a
    /// libxenstore call left stuck on its thread until the connection
    /// closes): the quiet period drops the connections, as a xenstored
    /// that recovers by restarting does.
    pub reconnect_at_quiet: bool,
    pub xs_stopped: bool,
    /// The agent is down; started again after this many actions.
    restart_in: Option<usize>,
    pub domid: u32,
    pub toolstack: Toolstack,
    /// SR-IOV VFs dom0 announced: id → MAC.
    vfs: BTreeMap<String, String>,
    next_vf_id: u32,
    /// Actions since the last good check.
    timeline: Vec<String>,
    start: Instant,
    previous: BTreeMap<String, Before>,
    /// The tree went while no agent ran: the next one cannot know the
    /// slots of the last check.
    slot_memory_lost: bool,
    /// The tree's nodes found by every agent started in this period: a new
    /// agent can only keep the slots it finds.
    kept: Option<BTreeMap<String, String>>,
    sentinel_dir: String,
    checks: u64,
    warmup_until: Instant,
    figures: Figures,
}

impl Soak {
    /// Set up the world, xenstored, the network and the agent.
    pub fn new(cfg: Config) -> Result<Soak, String> {
        let opts = Options::from_args(&cfg.agent_args)?;
        let binary = agent::binary(cfg.agent.as_deref())?;
        let host = Host::read(&binary)?;
        let mut rng = Rng::new(cfg.seed);
        let toolstack = cfg.toolstack.unwrap_or(if rng.percent(50) {
            Toolstack::Xapi
        } else {
            Toolstack::Libxl
        });
        let world = World::new()?;
        let domid = 5;
        let mut domain = DomainConfig::new(domid);
        domain.vifs.clear();
        let limits = Limits {
            quota_errno: match toolstack {
                Toolstack::Xapi => Errno::EQUOTA,
                Toolstack::Libxl => Errno::ENOSPC,
            },
            ..Limits::default()
        };
        let xs = Server::builder()
            .domain(domain)
            .limits(limits)
            .start()
            .map_err(|e| format!("cannot start the test xenstored: {e}"))?;
        let launch = Launch {
            binary,
            args: cfg.agent_args.clone(),
            socket: xs.socket_path().to_path_buf(),
        };
        let start = Instant::now();
        let warmup = (cfg.duration / 4).min(Duration::from_secs(60));
        let mut s = Soak {
            opts,
            rng,
            world,
            xs,
            launch,
            agent: None,
            agent_log: Arc::new(Mutex::new(Log {
                file: match &cfg.agent_log {
                    Some(p) => Some(
                        std::fs::File::create(p)
                            .map_err(|e| format!("cannot create {p:?}: {e}"))?,
                    ),
                    None => None,
                },
                ..Log::default()
            })),
            host,
            net: Net::default(),
            job: None,
            oplog: OpLog::default(),
            seen_ops: 0,
            violations: Vec::new(),
            active_faults: Vec::new(),
            reconnect_at_quiet: false,
            xs_stopped: false,
            restart_in: None,
            domid,
            toolstack,
            vfs: BTreeMap::new(),
            next_vf_id: 1,
            timeline: Vec::new(),
            start,
            previous: BTreeMap::new(),
            slot_memory_lost: false,
            kept: None,
            sentinel_dir: String::new(),
            checks: 0,
            warmup_until: start + warmup,
            figures: Figures::default(),
            cfg,
        };
        s.toolstack_nodes();
        for plan in s.net.initial() {
            s.run_plan(plan)?;
            s.end_job();
        }
        s.start_agent()?;
        Ok(s)
    }

    /// The whole run; `Err` with the failure when a check failed (and not
    /// `--keep-going`).
    pub fn run(&mut self) -> Result<(), Failure> {
        let mut result = self.check("start");
        let mut period = 0;
        while result.is_ok() || self.cfg.keep_going {
            if self.start.elapsed() >= self.cfg.duration || INTERRUPTED.load(Ordering::Relaxed) {
                break;
            }
            period += 1;
            if let Err(f) = self.period(period) {
                result = Err(self.report(f));
                if !self.cfg.keep_going {
                    break;
                }
            }
            let r = self.check(&format!("period {period}"));
            if r.is_err() {
                result = r;
            }
        }
        if INTERRUPTED.load(Ordering::Relaxed) && result.is_ok() {
            result = Err(Failure::new("interrupted", vec![]));
        }
        if let Some(agent) = self.agent.take() {
            if let Err(e) = agent.stop(Duration::from_secs(10)) {
                let f = self.fail("stopping the agent at the end", vec![e], Counts::default());
                result = result.and(Err(f));
            }
        }
        result
    }

    // ------------------------------------------------------------ period

    fn period(&mut self, n: u64) -> Result<(), Failure> {
        // The first period takes the agent to its largest state (the
        // warm-up that resource growth is measured from).
        let mut forced: Vec<Choice> = if n == 1 {
            vec![
                Choice::Net(NetAction::Burst),
                Choice::Fault(Fault::DropConnections),
                Choice::Net(NetAction::Overflow),
                Choice::Fault(Fault::EagainStorm),
                Choice::Fault(Fault::NewDomain),
            ]
        } else {
            Vec::new()
        };
        forced.reverse();
        let actions = self.rng.range(6, 30);
        for _ in 0..actions {
            if INTERRUPTED.load(Ordering::Relaxed) {
                return Ok(());
            }
            self.pace();
            self.tick()?;
            let choice = match forced.pop() {
                Some(c) => c,
                None => self.choose(),
            };
            if self.cfg.without.contains(choice.name()) {
                continue;
            }
            // A resume comes with changes (netfront reconnects, DAD runs
            // again, DHCP renews): some at the same moment.
            if choice == Choice::Fault(Fault::NewDomain) && self.rng.percent(50) {
                let quick = [NetAction::AddV4, NetAction::AddV6, NetAction::Del];
                let a = quick[self.rng.below(quick.len())];
                if !self.cfg.without.contains(a.name()) {
                    self.act(Choice::Net(a))?;
                    // In the kernel, its notification on its way to the
                    // agent: the new domain comes as the change set does.
                    self.end_job();
                    std::thread::sleep(Duration::from_micros(self.rng.below(4000) as u64));
                }
            }
            self.act(choice)?;
            self.crashed()?;
            // Something in the middle of a burst.
            if matches!(choice, Choice::Net(NetAction::Burst | NetAction::Overflow))
                && self.rng.percent(40)
            {
                let f = [
                    Fault::NewDomain,
                    Fault::NewDomain,
                    Fault::XenstoredRestart,
                    Fault::DropConnections,
                    Fault::EagainStorm,
                ][self.rng.below(5)];
                std::thread::sleep(Duration::from_millis(self.rng.below(60) as u64));
                if !self.cfg.without.contains(f.name()) {
                    self.act(Choice::Fault(f))?;
                }
            }
        }
        Ok(())
    }

    /// A random action, fault or restart.
    fn choose(&mut self) -> Choice {
        let category = self
            .rng
            .weighted(&[(0u8, 55), (1, 33), (2, 6), (3, 6)])
            .unwrap_or(0);
        match category {
            0 => Choice::Net(
                self.rng
                    .weighted(NetAction::CATALOGUE)
                    .unwrap_or(NetAction::AddV4),
            ),
            1 => {
                let faults: Vec<(Fault, u32)> =
                    Fault::CATALOGUE.iter().map(|e| (e.0, e.2)).collect();
                Choice::Fault(self.rng.weighted(&faults).unwrap_or(Fault::DropConnections))
            }
            2 => Choice::Agent(if self.rng.percent(50) {
                AgentAction::Term
            } else {
                AgentAction::Kill
            }),
            _ => Choice::Dom0(if self.rng.percent(60) {
                Dom0Action::VfAnnounce
            } else {
                Dom0Action::VfWithdraw
            }),
        }
    }

    fn act(&mut self, choice: Choice) -> Result<(), Failure> {
        let name = choice.name();
        let done = match choice {
            Choice::Net(a) => {
                if a == NetAction::Overflow && self.agent.as_ref().is_none_or(|a| a.frozen) {
                    None
                } else {
                    self.end_job();
                    match self.net.plan(a, &mut self.rng) {
                        Some(plan) => {
                            let label = plan.label.clone();
                            self.figures.network_changes += plan.changes as u64;
                            self.run_plan(plan)
                                .map_err(|e| Failure::new("a network action failed", vec![e]))?;
                            Some(label)
                        }
                        None => None,
                    }
                }
            }
            Choice::Fault(f) => {
                let done = f.inject(self);
                if done.is_some() {
                    *self.figures.faults.entry(name.to_string()).or_default() += 1;
                    if f.lifetime() > 0 {
                        let left = self.rng.range(1, f.lifetime());
                        self.active_faults.push((f, left));
                    }
                }
                done
            }
            Choice::Agent(a) => self.restart_agent(a)?,
            Choice::Dom0(d) => self.dom0_action(d),
        };
        if let Some(label) = done {
            *self.figures.actions.entry(name.to_string()).or_default() += 1;
            self.note(&format!("{name}: {label}"));
        }
        Ok(())
    }

    /// A seeded pause between actions, during which a finished batch gets
    /// its follow-up; short while a batch runs, so that what comes next
    /// lands in the middle of it.
    fn pace(&mut self) {
        let most = if self.job.is_some() { 40 } else { 250 };
        let until = Instant::now() + Duration::from_millis(self.rng.below(most) as u64);
        while Instant::now() < until {
            if self.job.as_mut().is_some_and(|r| r.job.done()) {
                self.end_job();
            }
            std::thread::sleep(Duration::from_millis(5).min(until - Instant::now()));
        }
    }

    /// One action went by: faults and agent restarts come due.
    fn tick(&mut self) -> Result<(), Failure> {
        let mut due = Vec::new();
        self.active_faults.retain_mut(|(f, left)| {
            *left = left.saturating_sub(1);
            if *left == 0 {
                due.push(*f);
            }
            *left > 0
        });
        for f in due {
            f.lift(self);
            self.note(&format!("{}: off", f.name()));
        }
        if let Some(n) = self.restart_in {
            if n == 0 {
                self.start_agent()
                    .map_err(|e| Failure::new("cannot start the agent", vec![e]))?;
            } else {
                self.restart_in = Some(n - 1);
            }
        }
        Ok(())
    }

    fn restart_agent(&mut self, a: AgentAction) -> Result<Option<String>, Failure> {
        let Some(mut agent) = self.agent.take_if(|a| !a.frozen) else {
            return Ok(None);
        };
        let label = match a {
            AgentAction::Term => {
                if let Err(e) = agent.stop(Duration::from_secs(10)) {
                    return Err(self.fail(
                        "the agent stopped badly on SIGTERM",
                        vec![e],
                        Counts::default(),
                    ));
                }
                "SIGTERM"
            }
            AgentAction::Kill => {
                agent.kill();
                "SIGKILL"
            }
        };
        let later = self.rng.below(4);
        if later == 0 {
            self.start_agent()
                .map_err(|e| Failure::new("cannot start the agent", vec![e]))?;
            Ok(Some(format!("{label}, started again")))
        } else {
            self.restart_in = Some(later - 1);
            Ok(Some(format!("{label}, started again in {later} actions")))
        }
    }

    fn dom0_action(&mut self, d: Dom0Action) -> Option<String> {
        match d {
            Dom0Action::VfAnnounce => {
                let macs: Vec<String> = self
                    .net
                    .vf_macs()
                    .into_iter()
                    .filter(|m| !self.vfs.values().any(|v| v == m))
                    .collect();
                let mac = self.rng.pick(&macs)?.clone();
                let id = self.next_vf_id.to_string();
                self.next_vf_id += 1;
                self.xs.add_sriov_vf(self.next_vf_id - 1, &mac);
                self.vfs.insert(id.clone(), mac.clone());
                Some(format!("dom0 announces SR-IOV VF {id} with MAC {mac}"))
            }
            Dom0Action::VfWithdraw => {
                let ids: Vec<String> = self.vfs.keys().cloned().collect();
                let id = self.rng.pick(&ids)?.clone();
                self.vfs.remove(&id);
                let _ = self.xs.rm(&format!("xenserver/device/net-sriov-vf/{id}"));
                Some(format!("dom0 withdraws SR-IOV VF {id}"))
            }
        }
    }

    // ------------------------------------------------------- the helpers

    /// Start a plan's commands in the background, after its hooks.
    fn run_plan(&mut self, plan: Plan) -> Result<(), String> {
        for h in &plan.before {
            self.hook(h)?;
        }
        let tag = format!("job{}", self.timeline.len());
        let job = self.world.batch(&tag, &plan.commands)?;
        self.job = Some(Running {
            job,
            after: plan.after,
        });
        Ok(())
    }

    /// Wait for the background batch, then run its follow-up.
    fn end_job(&mut self) {
        if let Some(r) = self.job.take() {
            self.figures.kernel_refusals += r.job.wait() as u64;
            for h in &r.after {
                if let Err(e) = self.hook(h) {
                    self.note(&format!("(hook failed: {e})"));
                }
            }
        }
    }

    fn hook(&mut self, h: &Hook) -> Result<(), String> {
        match h {
            Hook::SysfsVif(name, id) => self.world.sysfs_vif(name, *id)?,
            Hook::SysfsBridge(name) => self.world.sysfs_bridge(name)?,
            Hook::SysfsRemove(name) => self.world.sysfs_remove(name),
            Hook::SysfsMaster(name, m) => self.world.sysfs_master(name, m.as_deref())?,
            Hook::XsAddVif(id, mac) => self.xs.add_vif(*id, mac),
            Hook::XsRemoveVif(id) => self.xs.remove_vif(*id),
            Hook::Freeze => {
                if let Some(a) = self.agent.as_mut() {
                    a.signal(libc::SIGSTOP);
                }
            }
            Hook::Thaw => {
                if let Some(a) = self.agent.as_mut().filter(|a| a.frozen) {
                    a.signal(libc::SIGCONT);
                }
            }
        }
        Ok(())
    }

    fn start_agent(&mut self) -> Result<(), String> {
        self.restart_in = None;
        if let Some(f) = self
            .agent_log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .file
            .as_mut()
        {
            use std::io::Write;
            let _ = writeln!(
                f,
                "=== soak: agent started at {:.3} s",
                self.start.elapsed().as_secs_f64()
            );
        }
        // (The agent before is gone: all its requests are in the log.)
        self.drain_ops();
        self.oplog.agent_started();
        // A new agent keeps the slots it finds in the tree, no others.
        let found = ours(&self.xs);
        self.kept = Some(match self.kept.take() {
            None => found,
            Some(mut k) => {
                k.retain(|p, v| found.get(p) == Some(v));
                k
            }
        });
        self.agent = Some(Agent::start(&self.world, &self.launch, &self.agent_log)?);
        self.figures.agent_starts += 1;
        Ok(())
    }

    /// The agent exited by itself: a crash.
    fn crashed(&mut self) -> Result<(), Failure> {
        let Some(status) = self.agent.as_mut().and_then(Agent::exited) else {
            return Ok(());
        };
        self.agent = None;
        self.figures.crashes += 1;
        let f = self.fail(
            &format!("the agent exited by itself ({status})"),
            vec![],
            Counts::default(),
        );
        if self.cfg.keep_going {
            let _ = self.start_agent();
        }
        Err(f)
    }

    /// XAPI's nodes of a (new) domain: `control/feature-balloon`
    /// pre-created, `unique-domain-id`, the VFs announced again.
    fn toolstack_nodes(&mut self) {
        if self.toolstack == Toolstack::Xapi {
            self.xs.precreate_feature_balloon();
            let _ = self
                .xs
                .set_unique_domain_id(&format!("{:x}-{}", self.cfg.seed, self.domid));
            for (id, mac) in &self.vfs {
                if let Ok(n) = id.parse() {
                    self.xs.add_sriov_vf(n, mac);
                }
            }
        } else {
            self.vfs.clear();
        }
    }

    /// After [`Server::new_domain`].
    pub fn after_new_domain(&mut self) {
        self.toolstack_nodes();
        self.tree_gone();
    }

    /// The tree went: an agent that has not read it yet cannot know the
    /// slots of the last check.
    fn tree_gone(&mut self) {
        self.drain_ops();
        if self.agent.is_none() || !self.oplog.committed_since_start {
            self.slot_memory_lost = true;
        }
    }

    /// dom0 removes what the guest wrote under `data/`, `attr/` and
    /// `xenserver/attr/` (as a xenstored that lost its state).
    pub fn lose_tree(&mut self) {
        for dir in ["data", "attr", "xenserver/attr"] {
            for child in self.xs.directory(dir).unwrap_or_default() {
                let _ = self.xs.rm(&format!("{dir}/{child}"));
            }
        }
        self.tree_gone();
    }

    /// A node (or subtree) of the agent's to deny (`existing`: one it has,
    /// its directory, one it writes next) or to refuse (only one it does
    /// not have yet: test_xenstored's failing paths refuse reads too, which
    /// xenstored never does for ENOSPC or E2BIG); never the sentinel's.
    pub fn fault_target(&mut self, existing: bool) -> Option<String> {
        let tree = ours(&self.xs);
        // The sentinel's interface (`attr/vif/15/`, `data/net/<index>/`).
        let sentinel = self.sentinel_dir.strip_suffix("ipv4/").unwrap_or("");
        let leaves: Vec<&String> = tree
            .keys()
            .filter(|k| sentinel.is_empty() || !k.starts_with(sentinel))
            .collect();
        let absent = |p: &str| {
            let below = format!("{p}/");
            !tree.keys().any(|k| k == p || k.starts_with(&below))
        };
        // The next slot of each address directory.
        let mut future: Vec<String> = Vec::new();
        for leaf in &leaves {
            if let Some((dir, n)) = leaf.rsplit_once('/') {
                if let Ok(n) = n.parse::<usize>() {
                    future.push(format!("{dir}/{}", n + 1));
                }
            }
        }
        match self.opts.schema {
            Schema::Std => {
                future.extend(crate::actions::VIF_IDS.map(|id| format!("attr/vif/{id}")))
            }
            Schema::Rfc => {
                let kernel = Kernel::read(&self.world).ok()?;
                let next = kernel.links.keys().max().copied().unwrap_or(0) + 1;
                future.push(format!("data/net/{next}"));
                for index in kernel.links.keys() {
                    for family in ["ipv4", "ipv6"] {
                        future.push(format!("data/net/{index}/{family}"));
                    }
                }
            }
        }
        future.retain(|p| absent(p) && (sentinel.is_empty() || !p.starts_with(sentinel)));
        if !existing {
            return self.rng.pick(&future).cloned();
        }
        let leaf = (*self.rng.pick(&leaves)?).clone();
        Some(match self.rng.below(10) {
            0 => "data/updated".to_string(),
            1 => "control/feature-balloon".to_string(),
            2..=4 => {
                let parts: Vec<&str> = leaf.split('/').collect();
                if parts.len() >= 4 {
                    parts[..parts.len() - 1].join("/")
                } else {
                    leaf
                }
            }
            5..=6 => self.rng.pick(&future).cloned().unwrap_or(leaf),
            _ => leaf,
        })
    }

    /// Wait (a little) for a moment without an open transaction.
    pub fn outside_transactions(&self) {
        let deadline = Instant::now() + Duration::from_millis(500);
        while self.xs.open_transactions() > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    /// Nodes the guest owns (for quota pressure).
    pub fn owned_nodes(&self) -> usize {
        let owner = format!("n{}", self.domid);
        self.xs
            .tree("/")
            .values()
            .filter(|n| n.perms.split(',').next() == Some(owner.as_str()))
            .count()
    }

    fn note(&mut self, what: &str) {
        let line = format!("[{:8.3}s] {what}", self.start.elapsed().as_secs_f64());
        if self.cfg.verbose {
            eprintln!("{line}");
        }
        self.timeline.push(line);
    }

    // ------------------------------------------------------------- check

    /// The quiet period and its checks.
    fn check(&mut self, label: &str) -> Result<(), Failure> {
        let t0 = Instant::now();
        self.note(&format!("--- quiet: {label}"));
        self.end_job();
        Fault::lift_all(self);
        if self.xs_stopped {
            if let Err(e) = self.xs.start() {
                return Err(Failure::new(
                    "cannot start the test xenstored",
                    vec![e.to_string()],
                ));
            }
            self.xs_stopped = false;
        }
        if self.agent.is_none() {
            self.start_agent()
                .map_err(|e| Failure::new("cannot start the agent", vec![e]))?;
        }
        let result = self.crashed().and_then(|()| self.checks(t0));
        self.checks += 1;
        match result {
            Ok(()) => {
                self.figures.checks_passed += 1;
                self.fresh_start();
                Ok(())
            }
            Err(f) => {
                self.figures.checks_failed += 1;
                let f = if f.reported {
                    f
                } else {
                    self.fail(&format!("{label}: {}", f.what), f.details, f.diff)
                };
                // Carry on from what is there (--keep-going).
                self.rebaseline();
                Err(f)
            }
        }
    }

    fn checks(&mut self, t0: Instant) -> Result<(), Failure> {
        let deadline = t0 + self.cfg.quiet;
        self.converge(deadline, "the tree did not settle")?;
        self.figures
            .convergence_ms
            .push(t0.elapsed().as_millis() as u64);
        // Anything the agent had queued is behind the sentinel.
        let again = Instant::now() + self.cfg.quiet;
        self.sentinel(true, again)?;
        self.sentinel(false, again)?;
        let seen = self.converge(again, "the tree did not stay settled")?;
        self.drain_ops();
        let mut problems = std::mem::take(&mut self.violations);
        problems.extend(self.history(&seen));
        problems.extend(self.resources());
        if !problems.is_empty() {
            // (The op log stays for the report; rebaseline() goes on.)
            return Err(Failure::new("rules broken", problems));
        }
        self.remember(&seen);
        self.xs.reset_ops();
        self.seen_ops = 0;
        self.oplog.prune(&self.xs.connection_ids());
        self.slot_memory_lost = false;
        self.kept = None;
        self.oplog.blind_period.clear();
        self.net.refresh(&seen.kernel);
        Ok(())
    }

    /// Wait until the tree equals what the kernel's state gives.
    fn converge(&mut self, deadline: Instant, what: &str) -> Result<Seen, Failure> {
        loop {
            self.drain_ops();
            self.crashed()?;
            let kernel = Kernel::read(&self.world)
                .map_err(|e| Failure::new("cannot read the kernel's state", vec![e]))?;
            let expected = expect(&kernel, &self.host, &self.dom0(), &self.opts);
            let tree = ours(&self.xs);
            let (diff, shown) = compare(
                &tree,
                &expected,
                self.opts.cap,
                &self.oplog.denied,
                &self.oplog.blind,
            );
            if diff.is_empty() {
                self.sentinel_dir = sentinel_dir(&kernel, &self.opts);
                return Ok(Seen {
                    kernel,
                    expected,
                    shown,
                });
            }
            let now = Instant::now();
            if now >= deadline || INTERRUPTED.load(Ordering::Relaxed) {
                let mut details = vec![format!(
                    "after {:.1} s of quiet (limit --quiet-secs {}):",
                    self.cfg.quiet.as_secs_f64() - (deadline - now.min(deadline)).as_secs_f64(),
                    self.cfg.quiet.as_secs()
                )];
                details.extend(diff.lines());
                let mut f = Failure::new(what, details);
                f.diff = Counts::of(&diff);
                return Err(f);
            }
            // The next request of the agent, or a while (DAD ends by
            // itself).
            let n = self.op_count();
            self.xs
                .wait_for(Duration::from_millis(100).min(deadline - now), |v| {
                    v.ops().len() != n
                });
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Add (or remove) the sentinel address and wait until the tree shows
    /// it (or not).
    fn sentinel(&mut self, add: bool, deadline: Instant) -> Result<(), Failure> {
        let cmd = self.net.sentinel(add);
        let args: Vec<&str> = cmd.split(' ').collect();
        self.world
            .ip(&args)
            .map_err(|e| Failure::new("cannot toggle the sentinel", vec![e]))?;
        let addr = sentinel_addr().to_string();
        loop {
            self.drain_ops();
            self.crashed()?;
            let shows = ours(&self.xs).iter().any(|(k, v)| {
                k.starts_with(&self.sentinel_dir)
                    && (*v == addr || v.starts_with(&format!("{addr}/")))
            });
            if shows == add {
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Failure::new(
                    format!(
                        "the sentinel address {addr} was {} within --quiet-secs",
                        if add { "not published" } else { "not removed" }
                    ),
                    vec![],
                ));
            }
            let n = self.op_count();
            self.xs
                .wait_for(Duration::from_millis(100).min(deadline - now), |v| {
                    v.ops().len() != n
                });
        }
    }

    /// The slot rules against the last good check.
    fn history(&self, seen: &Seen) -> Vec<String> {
        let mut v = Vec::new();
        for (dir, spec) in &seen.expected.dirs {
            let Some(now) = seen.shown.get(dir) else {
                continue;
            };
            let before = self.previous.get(dir);
            let names: Vec<String> = names(&seen.kernel, &spec.chain);
            let mut churn = self.net.churn_of(
                names
                    .iter()
                    .chain(before.iter().flat_map(|b| b.names.iter()))
                    .map(String::as_str),
            );
            // An agent refused the reading of the directory (or of one of
            // its slots, or above) may not have known its slots.
            let blind = self
                .oplog
                .blind_period
                .iter()
                .any(|b| crate::oplog::within(dir, b) || crate::oplog::within(b, dir));
            churn.unknown |=
                blind || self.slot_memory_lost || before.is_some_and(|b| b.chain != spec.chain);
            let prefix = format!("{dir}/");
            let refused: BTreeSet<String> = self
                .oplog
                .denied
                .iter()
                .filter_map(|p| p.strip_prefix(&prefix).map(str::to_string))
                .collect();
            // Survivors only where every agent started since could see them.
            let before = before.map(|b| {
                let mut shown = b.shown.clone();
                if let Some(kept) = &self.kept {
                    shown.by_key.retain(|k, a| {
                        kept.get(&format!("{dir}/{k}"))
                            .is_some_and(|v| v.split('/').next() == Some(a.to_string().as_str()))
                    });
                }
                (b, shown)
            });
            let broken = slots::history_violations(
                spec,
                now,
                before.as_ref().map(|(_, s)| s),
                &churn,
                &refused,
            );
            let before = before.map(|(b, _)| b);
            if broken.is_empty() {
                continue;
            }
            v.extend(broken.into_iter().map(|l| format!("{dir}: {l}")));
            let table = |s: &Shown| {
                let mut t: Vec<(usize, String)> = s
                    .by_key
                    .iter()
                    .map(|(k, a)| (k.parse().unwrap_or(usize::MAX), format!("{k}={a}")))
                    .collect();
                t.sort();
                t.into_iter().map(|(_, e)| e).collect::<Vec<_>>().join(" ")
            };
            v.push(format!(
                "  {dir} at the last good check: {}",
                before.map_or("(none)".to_string(), |b| table(&b.shown))
            ));
            v.push(format!("  {dir} now: {}", table(now)));
            v.push(format!("  (churn: {churn:?})"));
            v.extend(self.story(dir).into_iter().map(|l| format!("  {l}")));
        }
        v
    }

    /// The agent's writes and removals under `dir` since the last check,
    /// with the outcome of their transactions (the last 40).
    fn story(&self, dir: &str) -> Vec<String> {
        let mut lines = Vec::new();
        self.xs.wait_for(Duration::ZERO, |v| {
            let ops = v.ops();
            let ends: BTreeMap<u32, String> = ops
                .iter()
                .filter(|o| o.kind == Some(test_xenstored::MsgType::TransactionEnd))
                .map(|o| (o.tx, crate::oplog::describe(o)))
                .collect();
            for o in ops.iter().filter(|o| o.origin.is_guest()) {
                let rel = o.path.as_deref().and_then(|p| crate::oplog::relative(o, p));
                let under = rel.is_some_and(|r| r == dir || r.starts_with(&format!("{dir}/")));
                let kind = matches!(
                    o.kind,
                    Some(test_xenstored::MsgType::Write | test_xenstored::MsgType::Rm)
                );
                if under && kind {
                    let end = ends.get(&o.tx).map_or("", String::as_str);
                    lines.push(format!("{}  [{end}]", crate::oplog::describe(o)));
                }
            }
            true
        });
        let skip = lines.len().saturating_sub(40);
        lines.split_off(skip)
    }

    /// The agent's RSS, descriptors and threads: no growth after warm-up.
    fn resources(&mut self) -> Vec<String> {
        let Some(r) = self.agent.as_ref().and_then(|a| Resources::of(a.pid())) else {
            return vec![];
        };
        let f = &mut self.figures;
        f.resources_start.get_or_insert(r);
        f.resources_end = Some(r);
        if Instant::now() < self.warmup_until || self.checks < 2 {
            f.resources_warmup = Some(figures::max(f.resources_warmup, r));
            return vec![];
        }
        f.resources_after_warmup = Some(figures::max(f.resources_after_warmup, r));
        let Some(b) = f.resources_warmup else {
            return vec![];
        };
        let mut v = Vec::new();
        // RSS: the allocator keeps some of a burst's peak; a leak grows
        // beyond that.
        let rss_limit = b.rss_kib + (b.rss_kib / 4).max(1024);
        if r.rss_kib > rss_limit {
            v.push(format!(
                "RSS grew to {} KiB after warm-up (at most {} KiB then; limit {rss_limit})",
                r.rss_kib, b.rss_kib
            ));
        }
        if r.fds > b.fds {
            v.push(format!(
                "open descriptors grew to {} (at most {} during warm-up)",
                r.fds, b.fds
            ));
        }
        if r.threads > b.threads {
            v.push(format!(
                "threads grew to {} (at most {} during warm-up)",
                r.threads, b.threads
            ));
        }
        f.growth_violations += v.len() as u64;
        v
    }

    fn remember(&mut self, seen: &Seen) {
        self.previous = seen
            .expected
            .dirs
            .iter()
            .filter_map(|(dir, spec)| {
                let mut shown = seen.shown.get(dir)?.clone();
                // Reportable addresses left out though the cap had room:
                // refused writes (the check accepted their absence).
                if shown.by_key.len() < spec.present.len().min(self.opts.cap) {
                    let ips: BTreeSet<std::net::IpAddr> = shown.by_key.values().copied().collect();
                    shown.hidden = spec
                        .present
                        .keys()
                        .filter(|a| !ips.contains(a))
                        .copied()
                        .collect();
                }
                Some((
                    dir.clone(),
                    Before {
                        shown,
                        chain: spec.chain.clone(),
                        names: names(&seen.kernel, &spec.chain),
                    },
                ))
            })
            .collect();
    }

    /// After a failed check (`--keep-going`): what is there now is the new
    /// reference.
    fn rebaseline(&mut self) {
        self.drain_ops();
        self.violations.clear();
        self.xs.reset_ops();
        self.seen_ops = 0;
        self.slot_memory_lost = false;
        self.kept = None;
        self.oplog.blind_period.clear();
        if let Ok(kernel) = Kernel::read(&self.world) {
            let expected = expect(&kernel, &self.host, &self.dom0(), &self.opts);
            let (_, shown) = compare(
                &ours(&self.xs),
                &expected,
                self.opts.cap,
                &self.oplog.denied,
                &self.oplog.blind,
            );
            self.remember(&Seen {
                kernel: kernel.clone(),
                expected,
                shown,
            });
            self.net.refresh(&kernel);
        }
        self.fresh_start();
    }

    /// A check is behind: the actions and agent log a failure shows start
    /// again.
    fn fresh_start(&mut self) {
        self.timeline.clear();
        self.agent_log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .recent
            .clear();
    }

    /// What dom0 says now.
    fn dom0(&self) -> Dom0 {
        let dir = "xenserver/device/net-sriov-vf";
        let sriov = self
            .xs
            .directory(dir)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|id| {
                let mac = self.xs.read(&format!("{dir}/{id}/mac"))?;
                Some((id, mac.trim().to_ascii_lowercase()))
            })
            .collect();
        Dom0 {
            sriov,
            feature_balloon_writable: self.toolstack == Toolstack::Xapi,
        }
    }

    /// Check the requests logged since the last look.
    fn drain_ops(&mut self) {
        let seen = self.seen_ops;
        let mut new = Vec::new();
        self.xs.wait_for(Duration::ZERO, |v| {
            new = v.ops().get(seen..).unwrap_or_default().to_vec();
            true
        });
        self.seen_ops += new.len();
        let v = self.oplog.check(&new);
        self.figures.oplog_violations += v.len() as u64;
        self.violations.extend(v);
    }

    fn op_count(&self) -> usize {
        let mut n = 0;
        self.xs.wait_for(Duration::ZERO, |v| {
            n = v.ops().len();
            true
        });
        n
    }

    // --------------------------------------------------------- reporting

    /// Report `f` unless it was.
    fn report(&mut self, f: Failure) -> Failure {
        if f.reported {
            f
        } else {
            self.fail(&f.what, f.details, f.diff)
        }
    }

    /// Report a failure (and count what it saw); returns it.
    fn fail(&mut self, what: &str, details: Vec<String>, diff: Counts) -> Failure {
        self.figures.stale_nodes += u64::from(diff.extra);
        self.figures.missing_nodes += u64::from(diff.missing);
        self.figures.wrong_nodes += u64::from(diff.wrong);
        self.figures.slot_violations += u64::from(diff.slots);
        let log: Vec<String> = self
            .agent_log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .recent
            .clone();
        let _ = std::fs::create_dir_all(&self.cfg.log_dir);
        let log_file = self.cfg.log_dir.join(format!(
            "soak-{}-check{}-agent.log",
            self.cfg.seed, self.checks
        ));
        let _ = std::fs::write(&log_file, log.join("\n") + "\n");
        let ops_file = self.cfg.log_dir.join(format!(
            "soak-{}-check{}-xenstore.txt",
            self.cfg.seed, self.checks
        ));
        let mut ops = String::new();
        self.xs.wait_for(Duration::ZERO, |v| {
            for o in v.ops() {
                ops += &crate::oplog::describe(o);
                ops.push('\n');
            }
            true
        });
        let _ = std::fs::write(&ops_file, ops);
        let t = self.start.elapsed().as_secs_f64();
        eprintln!("\n=== soak FAILED at {t:.1} s: {what}");
        eprintln!(
            "seed {} ({} schema, {:?} toolstack); replay: {}",
            self.cfg.seed,
            self.opts.schema.name(),
            self.toolstack,
            self.cfg.replay
        );
        for d in &details {
            eprintln!("{d}");
        }
        eprintln!("actions since the last good check:");
        for l in &self.timeline {
            eprintln!("  {l}");
        }
        eprintln!(
            "agent log since the last good check (last 40 of {} lines, all in {log_file:?}):",
            log.len()
        );
        for l in log.iter().skip(log.len().saturating_sub(40)) {
            eprintln!("  | {l}");
        }
        eprintln!("xenstore requests since the last good check: {ops_file:?}\n");
        self.figures.failures.push(json!({
            "at_s": (t * 10.0).round() / 10.0,
            "what": what,
            "details": details,
            "actions": self.timeline,
            "agent_log": log_file,
        }));
        Failure {
            what: what.to_string(),
            details,
            diff,
            reported: true,
        }
    }

    /// The run's figures, as JSON.
    pub fn json(&self, outcome: &Result<(), Failure>) -> Value {
        let log = self.agent_log.lock().unwrap_or_else(|p| p.into_inner());
        let run = json!({
            "seed": self.cfg.seed,
            "schema": self.opts.schema.name(),
            "agent": self.launch.binary,
            "agent_version": self.host.agent_version,
            "agent_args": self.cfg.agent_args,
            "toolstack": format!("{:?}", self.toolstack).to_lowercase(),
            "minutes": self.cfg.duration.as_secs_f64() / 60.0,
            "duration_s": (self.start.elapsed().as_secs_f64() * 10.0).round() / 10.0,
            "quiet_secs": self.cfg.quiet.as_secs(),
            "without": self.cfg.without,
            "replay": self.cfg.replay,
            "passed": outcome.is_ok(),
        });
        let agent_log = json!({
            "warnings": log.warnings,
            "errors": log.errors,
            "netlink_resyncs": log.resyncs,
        });
        self.figures.to_json(run, &self.oplog.figures, agent_log)
    }

    /// One line for the end of a run.
    pub fn summary(&self) -> String {
        let f = &self.figures;
        let (slowest, _) = f.convergence();
        let r = |x: Option<Resources>| {
            x.map_or("?".to_string(), |r| {
                format!(
                    "{:.2} MiB/{} fds/{} threads",
                    r.rss_kib as f64 / 1024.0,
                    r.fds,
                    r.threads
                )
            })
        };
        format!(
            "seed {}, {} schema, {:?}: {:.1} min, {} checks passed, {} failed; {} actions, {} faults, \
             {} network changes; slowest convergence {} ms; agent {} -> {}; {} starts, {} crashes",
            self.cfg.seed,
            self.opts.schema.name(),
            self.toolstack,
            self.start.elapsed().as_secs_f64() / 60.0,
            f.checks_passed,
            f.checks_failed,
            f.actions.values().sum::<u64>(),
            f.faults.values().sum::<u64>(),
            f.network_changes,
            slowest,
            r(f.resources_start),
            r(f.resources_end),
            f.agent_starts,
            f.crashes
        )
    }
}

/// The interface names of `chain` (indices) in `kernel`.
fn names(kernel: &Kernel, chain: &[u32]) -> Vec<String> {
    chain
        .iter()
        .filter_map(|i| kernel.links.get(i).map(|l| l.name.clone()))
        .collect()
}

/// Where the sentinel's addresses show, for the schema.
fn sentinel_dir(kernel: &Kernel, opts: &Options) -> String {
    match opts.schema {
        Schema::Std => format!("attr/vif/{SENTINEL_VIF}/ipv4/"),
        Schema::Rfc => kernel
            .by_name(SENTINEL_NAME)
            .map_or(String::new(), |l| format!("data/net/{}/ipv4/", l.index)),
    }
}
