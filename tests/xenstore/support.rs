//! Scenario support for the xenstore integration tests: the real agent
//! binary, loading the system's libxenstore, against the test xenstored,
//! in a network namespace of its own with a fake sysfs that makes chosen
//! interfaces look like Xen VIFs.
//!
//! A scenario is short:
//! ```ignore
//! let Some(mut t) = Scenario::new("name") else { return }; // root only (#[ignore])
//! t.add_vif(0);                                  // eth0, VIF 0
//! t.ip(&["addr", "add", "10.0.0.2/24", "dev", "eth0"]);
//! let agent = t.agent(&["--schema", "std"]);
//! t.wait_tree(&expected, WAIT);                  // our nodes, exactly
//! assert_eq!(agent.count("permission denied"), 1);
//! ```

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

pub use test_xenstored::{MsgType, OpLogExt, OpRecord, Server};

/// How long a scenario waits for something that should take well under a
/// second.
pub const WAIT: Duration = Duration::from_secs(10);

/// The agent binary under test.
pub const AGENT: &str = env!("CARGO_BIN_EXE_xen-guest-agent");

/// Placeholder for `data/updated`'s value in expected trees.
pub const STAMP: &str = "<timestamp>";

/// Placeholder for `data/meminfo_free`'s (rfc: `data/memory/available-kib`)
/// value (it changes all the time).
pub const KIB: &str = "<kib>";

#[path = "../common/skip.rs"]
pub mod skip;
pub use skip::root;

/// A test xenstored, a network namespace and a fake sysfs.
pub struct Scenario {
    /// The test xenstored (the guest is domain 5).
    pub xs: Server,
    /// The network namespace the agent runs in.
    pub netns: String,
    /// Root of the fake sysfs given to the agent (`--sysfs`).
    pub sysfs: PathBuf,
}

impl Scenario {
    /// A scenario named after the test; `None` (skipped, with a message)
    /// when not root.
    pub fn new(test: &str) -> Option<Scenario> {
        Scenario::build(test, false)
    }

    /// [`Scenario::new`] whose test xenstored also listens on a dom0
    /// socket ([`Server::dom0_socket_path`]), for dom0's side as a separate
    /// program (the xenstore-* commands with XENSTORED_PATH).
    pub fn with_dom0_socket(test: &str) -> Option<Scenario> {
        Scenario::build(test, true)
    }

    fn build(test: &str, dom0: bool) -> Option<Scenario> {
        if !root(test) {
            return None;
        }
        static N: AtomicU32 = AtomicU32::new(0);
        let id = format!(
            "xgaxs{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let sysfs = std::env::temp_dir().join(format!("{id}-sysfs"));
        std::fs::create_dir_all(sysfs.join("class/net")).unwrap();
        run("ip", &["netns", "add", &id]);
        // No IPv6 link-local addresses: they would appear (after DAD)
        // whenever an interface gets a carrier, at a time no test controls.
        // (Tests add IPv6 addresses `nodad`: no carrier, no DAD.)
        run(
            "ip",
            &[
                "netns",
                "exec",
                &id,
                "sysctl",
                "-qw",
                "net.ipv6.conf.all.addr_gen_mode=1",
                "net.ipv6.conf.default.addr_gen_mode=1",
                // As systemd sets it: removing a primary IPv4 promotes a
                // secondary instead of removing them all.
                "net.ipv4.conf.all.promote_secondaries=1",
                "net.ipv4.conf.default.promote_secondaries=1",
            ],
        );
        let mut builder = Server::builder().domid(5);
        if dom0 {
            builder = builder.dom0_socket(std::env::temp_dir().join(format!("{id}-dom0.sock")));
        }
        let t = Scenario {
            xs: builder.start().expect("test xenstored"),
            netns: id,
            sysfs,
        };
        t.ip(&["link", "set", "lo", "up"]);
        Some(t)
    }

    /// Run `ip` in the namespace.
    pub fn ip(&self, args: &[&str]) {
        let mut all = vec!["-n", self.netns.as_str()];
        all.extend_from_slice(args);
        run("ip", &all);
    }

    /// Run `ip` in the namespace once for many commands (`ip -batch`): one
    /// process instead of one per command, and the changes reach the agent
    /// as fast as the kernel makes them.
    pub fn ip_batch(&self, commands: &[String]) {
        use std::io::Write;
        let mut child = Command::new("ip")
            .args(["-n", &self.netns, "-batch", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ip -batch");
        let mut stdin = child.stdin.take().unwrap();
        for c in commands {
            writeln!(stdin, "{c}").unwrap();
        }
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "ip -batch {commands:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The interface index of `name` in the namespace.
    pub fn ifindex(&self, name: &str) -> u32 {
        let out = Command::new("ip")
            .args(["-n", &self.netns, "-j", "link", "show", "dev", name])
            .output()
            .unwrap();
        assert!(out.status.success(), "{name}: {out:?}");
        let links: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        links[0]["ifindex"].as_u64().unwrap() as u32
    }

    /// Make `eth<id>` (a veth in the namespace, its peer `peer<id>` down,
    /// so no carrier), seen by the agent as VIF `id`; it is up, without
    /// addresses. MACs: `00:16:3e:00:00:<id>`, peer `02:00:00:00:01:<id>`.
    pub fn add_vif(&self, id: u32) {
        let name = format!("eth{id}");
        let device = self.sysfs.join("class/net").join(&name).join("device");
        std::fs::create_dir_all(&device).unwrap();
        std::fs::write(device.join("devtype"), "vif\n").unwrap();
        std::fs::write(device.join("nodename"), format!("device/vif/{id}\n")).unwrap();
        let mac = format!("00:16:3e:00:00:{id:02x}");
        self.ip(&[
            "link",
            "add",
            &name,
            "address",
            &mac,
            "type",
            "veth",
            "peer",
            "name",
            &format!("peer{id}"),
            "address",
            &format!("02:00:00:00:01:{id:02x}"),
        ]);
        self.ip(&["link", "set", &name, "up"]);
    }

    /// Make bridge `name` with `mac`, up, without addresses; the fake
    /// sysfs says it is a bridge too (the polling collector reads it
    /// there, netlink tells the other).
    pub fn add_bridge(&self, name: &str, mac: &str) {
        std::fs::create_dir_all(self.sysfs.join("class/net").join(name).join("bridge")).unwrap();
        self.ip(&["link", "add", name, "address", mac, "type", "bridge"]);
        self.ip(&["link", "set", name, "up"]);
    }

    /// Enslave `port` to `master` (`None`: release it), in the kernel and
    /// in the fake sysfs (`class/net/<port>/master`).
    pub fn set_master(&self, port: &str, master: Option<&str>) {
        let dir = self.sysfs.join("class/net").join(port);
        let link = dir.join("master");
        let _ = std::fs::remove_file(&link);
        match master {
            Some(m) => {
                std::fs::create_dir_all(&dir).unwrap();
                std::os::unix::fs::symlink(format!("../{m}"), &link).unwrap();
                self.ip(&["link", "set", port, "master", m]);
            }
            None => self.ip(&["link", "set", port, "nomaster"]),
        }
    }

    /// Hot-unplug VIF `id`: its interface is deleted (the peer goes with
    /// it) and its sysfs entry removed.
    pub fn remove_vif(&self, id: u32) {
        self.ip(&["link", "del", &format!("eth{id}")]);
        let _ = std::fs::remove_dir_all(self.sysfs.join("class/net").join(format!("eth{id}")));
    }

    /// The nodes a dry run writes besides the network (OS, kernel,
    /// memory, PV addons, `data/updated`), for the schema in `args`,
    /// without `control/feature-balloon` (libxl's `control/` is read-only
    /// to the guest: the agent's write is refused). Tests add the network
    /// nodes themselves, literally.
    pub fn base(&self, args: &[&str]) -> BTreeMap<String, String> {
        let mut all = vec!["--network", "none"];
        all.extend_from_slice(args);
        let mut tree = self.dry_run(&all);
        tree.remove("control/feature-balloon");
        assert_eq!(tree.get("data/updated").map(String::as_str), Some(STAMP));
        assert!(
            !tree
                .keys()
                .any(|k| k.starts_with("attr/vif") || k.starts_with("data/net")),
            "{tree:#?}"
        );
        tree
    }

    /// Start the agent in the namespace, logging at debug level to stderr,
    /// with the xenstored's socket as `XENSTORED_PATH` and `args` added.
    pub fn agent(&self, args: &[&str]) -> Agent {
        self.agent_with_env(args, &[])
    }

    /// [`Scenario::agent`] with more environment variables.
    pub fn agent_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Agent {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.netns, AGENT, "-s", "-l", "debug"]);
        // A polling network collector (pnet builds) polls every second.
        if cfg!(all(feature = "net_pnet", not(feature = "net_netlink"))) {
            cmd.args(["--poll-interval", "1"]);
        }
        cmd.arg("--sysfs")
            .arg(&self.sysfs)
            .args(no_filesystems_unless_asked(args))
            .args(args)
            .env("XENSTORED_PATH", self.xs.socket_path())
            .envs(env.iter().copied());
        Agent::spawn(cmd)
    }

    /// [`Scenario::agent`] in a private mount namespace of its own
    /// (`unshare -m`, which execs it), where [`Scenario::in_mounts`] mounts
    /// and unmounts without touching the machine's mounts.
    pub fn agent_in_own_mounts(&self, args: &[&str]) -> Agent {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.netns, "unshare", "-m"])
            .args(["--propagation", "private", "--", AGENT, "-s", "-l", "debug"])
            .arg("--sysfs")
            .arg(&self.sysfs)
            .args(args)
            .env("XENSTORED_PATH", self.xs.socket_path());
        Agent::spawn(cmd)
    }

    /// Run `command` in `agent`'s mount namespace (`nsenter -m`).
    pub fn in_mounts(&self, agent: &Agent, command: &[&str]) {
        let mut all = vec![
            "-t".to_string(),
            agent.pid().to_string(),
            "-m".into(),
            "--".into(),
        ];
        all.extend(command.iter().map(|c| c.to_string()));
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        run("nsenter", &all);
    }

    /// [`Scenario::agent`] in a UTS namespace of its own whose host name
    /// is `host_name` (a shell there sets it, then execs the agent: the
    /// child is the agent), so that [`Scenario::set_host_name`] changes it
    /// without touching the machine's.
    pub fn agent_in_own_uts(&self, host_name: &str, args: &[&str]) -> Agent {
        self.agent_in_own_uts_with_env(host_name, args, &[])
    }

    /// [`Scenario::agent_in_own_uts`] with more environment variables.
    pub fn agent_in_own_uts_with_env(
        &self,
        host_name: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Agent {
        let mut cmd = Command::new("ip");
        let script = format!("hostname {host_name} && exec \"$@\"");
        cmd.args(["netns", "exec", &self.netns, "unshare", "-u", "--"])
            .args(["sh", "-c", &script, "sh", AGENT, "-s", "-l", "debug"])
            .arg("--sysfs")
            .arg(&self.sysfs)
            .args(no_filesystems_unless_asked(args))
            .args(args)
            .env("XENSTORED_PATH", self.xs.socket_path())
            .envs(env.iter().copied());
        Agent::spawn(cmd)
    }

    /// `hostname NAME` (sethostname(2)) in `agent`'s UTS namespace.
    pub fn set_host_name(&self, agent: &Agent, name: &str) {
        run(
            "nsenter",
            &["-t", &agent.pid().to_string(), "-u", "hostname", name],
        );
    }

    /// What the agent prints with `--dry-run --oneshot` in this namespace
    /// (same collectors, same schema, no xenstore): the tree it would
    /// write, normalized as [`Scenario::ours`].
    pub fn dry_run(&self, args: &[&str]) -> BTreeMap<String, String> {
        let mut cmd = Command::new("ip");
        cmd.args([
            "netns",
            "exec",
            &self.netns,
            AGENT,
            "-s",
            "--dry-run",
            "--oneshot",
        ])
        .args(no_filesystems_unless_asked(args))
        .args(args)
        .env_remove("XENSTORED_PATH");
        if !args.windows(2).any(|w| w == ["--network", "none"]) {
            cmd.arg("--sysfs").arg(&self.sysfs);
        }
        let out = cmd.output().expect("dry run");
        assert!(
            out.status.success(),
            "dry run: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        apply_dry_run(&String::from_utf8_lossy(&out.stdout))
    }

    /// The nodes the agent may write (under `data/`, `attr/`,
    /// `xenserver/attr/`, `control/feature-balloon`), leaves only, with
    /// `data/updated`'s value replaced by [`STAMP`] when it is a valid
    /// timestamp.
    pub fn ours(&self) -> BTreeMap<String, String> {
        ours(&self.xs)
    }

    /// Wait until [`Scenario::ours`] equals `expected`; panics with both
    /// trees otherwise.
    pub fn wait_tree(&self, expected: &BTreeMap<String, String>, timeout: Duration) {
        let got = self.wait_until(timeout, |t| t == expected);
        if &got != expected {
            let mut diff = String::new();
            for (k, v) in expected {
                match got.get(k) {
                    None => diff += &format!("  missing {k} = {v:?}\n"),
                    Some(g) if g != v => diff += &format!("  {k} = {g:?}, expected {v:?}\n"),
                    _ => {}
                }
            }
            for (k, v) in &got {
                if !expected.contains_key(k) {
                    diff += &format!("  extra {k} = {v:?}\n");
                }
            }
            panic!("the agent's xenstore tree differs:\n{diff}whole tree: {got:#?}");
        }
    }

    /// Wait until `cond` holds on [`Scenario::ours`]; returns the last tree.
    pub fn wait_until(
        &self,
        timeout: Duration,
        mut cond: impl FnMut(&BTreeMap<String, String>) -> bool,
    ) -> BTreeMap<String, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let n = self.xs.ops().len();
            let tree = self.ours();
            let now = Instant::now();
            if cond(&tree) || now >= deadline {
                return tree;
            }
            // Wait for the next request (cheap: no polling of the tree).
            self.xs.wait_for(deadline - now, |v| v.ops().len() != n);
        }
    }

    /// The guest's requests of one type since the last `xs.reset_ops()`.
    pub fn guest_ops(&self, kind: MsgType) -> Vec<OpRecord> {
        self.xs
            .ops()
            .into_iter()
            .filter(|o| o.origin.is_guest() && o.kind == Some(kind))
            .collect()
    }

    /// How many times the guest tried to write a node whose path ends with
    /// `suffix` since the last `xs.reset_ops()`.
    pub fn write_tries(&self, suffix: &str) -> usize {
        self.guest_ops(MsgType::Write)
            .iter()
            .filter(|o| o.path.as_deref().is_some_and(|p| p.ends_with(suffix)))
            .count()
    }
}

impl Drop for Scenario {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .status();
        let _ = std::fs::remove_dir_all(&self.sysfs);
    }
}

/// `--filesystems none` unless `args` choose: the machine's own
/// filesystems, whose free space changes while the tests run, are not part
/// of the trees the tests expect (the filesystem tests mount their own).
fn no_filesystems_unless_asked(args: &[&str]) -> &'static [&'static str] {
    if args.contains(&"--filesystems") {
        &[]
    } else {
        &["--filesystems", "none"]
    }
}

/// See [`Scenario::ours`].
pub fn ours(xs: &Server) -> BTreeMap<String, String> {
    let home = format!("{}/", xs.home());
    let all = xs.tree(&xs.home());
    let mut out = BTreeMap::new();
    for (path, info) in &all {
        let Some(rel) = path.strip_prefix(&home) else {
            continue;
        };
        let mine = ["data/", "attr/", "xenserver/attr/"]
            .iter()
            .any(|p| rel.starts_with(p))
            || rel == "control/feature-balloon";
        let prefix = format!("{path}/");
        let leaf = !all.keys().any(|k| k.starts_with(&prefix));
        if mine && leaf {
            out.insert(rel.to_string(), normalize(rel, &info.value));
        }
    }
    out
}

/// A node's value with [`STAMP`] and [`KIB`] in place of the values
/// that change by themselves.
pub fn normalize(path: &str, value: &str) -> String {
    if path == "data/updated" && is_timestamp(value) {
        STAMP.to_string()
    } else if (path == "data/meminfo_free" || path == "data/memory/available-kib")
        && value.parse::<u64>().is_ok()
    {
        KIB.to_string()
    } else {
        value.to_string()
    }
}

/// `Mon Jan  2 15:04:05 2006`.
pub fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 24
        && s[0..3].chars().all(|c| c.is_ascii_alphabetic())
        && s[4..7].chars().all(|c| c.is_ascii_alphabetic())
        && b[13] == b':'
        && b[16] == b':'
        && s[20..].chars().all(|c| c.is_ascii_digit())
}

/// The tree that the operations printed by a dry run make, normalized.
pub fn apply_dry_run(out: &str) -> BTreeMap<String, String> {
    let mut tree = BTreeMap::new();
    for line in out.lines() {
        if let Some(rest) = line.strip_prefix("write ") {
            let (path, value) = rest.split_once(' ').expect("write PATH VALUE");
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .expect("quoted value")
                .replace("\\\"", "\"")
                .replace("\\\\", "\\");
            tree.insert(path.to_string(), normalize(path, &value));
        } else if let Some(path) = line.strip_prefix("rm ") {
            let prefix = format!("{path}/");
            tree.retain(|k: &String, _| k != path && !k.starts_with(&prefix));
        } else {
            panic!("unexpected dry-run line {line:?}");
        }
    }
    tree
}

/// One transaction of the guest, as the op log recorded it.
#[derive(Debug)]
pub struct Transaction {
    /// Its id.
    pub id: u32,
    /// Its requests, in order (the end excluded).
    pub ops: Vec<OpRecord>,
    /// Whether it ended with a successful commit (`T`, OK).
    pub committed: bool,
}

/// The guest's transactions in `log`, in order of their start.
pub fn transactions(log: &[OpRecord]) -> Vec<Transaction> {
    let mut all: Vec<Transaction> = Vec::new();
    for op in log.iter().filter(|o| o.origin.is_guest()) {
        if op.is_ok(MsgType::TransactionStart) {
            let id = op.value.as_deref().unwrap().parse().unwrap();
            all.push(Transaction {
                id,
                ops: Vec::new(),
                committed: false,
            });
        } else if op.tx != 0 {
            let Some(t) = all.iter_mut().rev().find(|t| t.id == op.tx) else {
                continue;
            };
            if op.kind == Some(MsgType::TransactionEnd) {
                t.committed = op.result.is_ok() && op.value.as_deref() == Some("T");
            } else {
                t.ops.push(op.clone());
            }
        }
    }
    all
}

/// The contract's order within a change set: `data/` first (rfc's
/// `data/xen-guest-agent` before the rest), then `attr/` and
/// `xenserver/attr/`, then `control/`, and `data/updated` last. Panics
/// with the transaction when a committed one breaks it.
pub fn assert_contract_order(home: &str, t: &Transaction) {
    let rank = |p: &str| {
        let rel = p.strip_prefix(home).unwrap_or(p).trim_start_matches('/');
        match rel {
            "data/updated" => 4,
            r if r.starts_with("data/xen-guest-agent") => 0,
            r if r.starts_with("data/") => 1,
            r if r.starts_with("control/") => 3,
            _ => 2,
        }
    };
    let changes: Vec<(&str, u8)> = t
        .ops
        .iter()
        .filter(|o| matches!(o.kind, Some(MsgType::Write | MsgType::Rm)))
        .filter_map(|o| o.path.as_deref())
        .map(|p| (p, rank(p)))
        .collect();
    assert!(
        changes.windows(2).all(|w| w[0].1 <= w[1].1),
        "transaction {} out of order: {changes:#?}",
        t.id
    );
    // (data/updated is not written again within the second of the last
    // stamp: a change set may end without it.)
    assert!(
        changes.iter().filter(|c| c.1 == 4).count() <= 1,
        "{changes:#?}"
    );
}

/// Build an expected tree from pairs.
pub fn tree(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Run a command that must succeed.
pub fn run(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Lines a child printed, and a way to wait for more.
#[derive(Default)]
struct Lines {
    lines: Mutex<Vec<String>>,
    more: Condvar,
}

/// A running agent; killed (SIGTERM, then SIGKILL) when dropped.
pub struct Agent {
    child: Child,
    stdout: Arc<Lines>,
    stderr: Arc<Lines>,
}

impl Agent {
    /// Start `cmd` with its output captured.
    pub fn spawn(mut cmd: Command) -> Agent {
        cmd.env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start the agent");
        let stdout = Arc::new(Lines::default());
        let stderr = Arc::new(Lines::default());
        collect(child.stdout.take().unwrap(), stdout.clone());
        collect(child.stderr.take().unwrap(), stderr.clone());
        Agent {
            child,
            stdout,
            stderr,
        }
    }

    /// Panics (with its log) unless it is still running: the agent never
    /// exits from a transient problem.
    pub fn assert_running(&mut self) {
        let status = self.child.try_wait().unwrap();
        assert!(
            status.is_none(),
            "the agent exited ({status:?}):\n{}",
            self.stderr().join("\n")
        );
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What it printed on stdout so far.
    pub fn stdout(&self) -> Vec<String> {
        self.stdout.lines.lock().unwrap().clone()
    }

    /// What it logged on stderr so far.
    pub fn stderr(&self) -> Vec<String> {
        self.stderr.lines.lock().unwrap().clone()
    }

    /// Panics (with its log) if it logged an error: a refused node is a
    /// warning or less.
    pub fn assert_no_errors(&self) {
        let log = self.stderr();
        assert!(!log.iter().any(|l| l.starts_with("[ERROR")), "{log:#?}");
    }

    /// Number of log lines containing `text`.
    /// Whether the agent talks to xenstore with its own client (one
    /// connection, one thread), as its log says, rather than libxenstore
    /// (a connection for the watches besides, and a thread for the calls).
    /// The backend follows `XENSTORE_BACKEND` (tests/run.sh runs these
    /// scenarios once with each).
    pub fn native(&self) -> bool {
        let line = self
            .stderr()
            .into_iter()
            .find(|l| l.contains("xenstore backend: "))
            .expect("the agent says which xenstore backend it uses");
        line.contains("xenstore backend: native")
    }

    pub fn count(&self, text: &str) -> usize {
        self.stderr().iter().filter(|l| l.contains(text)).count()
    }

    /// Wait until a log line contains `text`; panics with the log if not.
    pub fn wait_log(&self, text: &str, timeout: Duration) {
        self.wait_logs(text, 1, timeout);
    }

    /// Wait until `n` log lines contain `text`; panics with the log if not.
    pub fn wait_logs(&self, text: &str, n: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut lines = self.stderr.lines.lock().unwrap();
        while lines.iter().filter(|l| l.contains(text)).count() < n {
            let now = Instant::now();
            assert!(
                now < deadline,
                "no log line with {text:?} in:\n{}",
                lines.join("\n")
            );
            lines = self
                .stderr
                .more
                .wait_timeout(lines, deadline - now)
                .unwrap()
                .0;
        }
    }

    /// Wait for the agent to exit by itself; its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the readers drain the pipes.
                std::thread::sleep(Duration::from_millis(50));
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "the agent did not exit:\n{}",
                self.stderr().join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The agent's threads, by name (`/proc/<pid>/task/*/comm`).
    pub fn threads(&self) -> Vec<String> {
        let dir = format!("/proc/{}/task", self.pid());
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map(|d| {
                d.flatten()
                    .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
                    .map(|s| s.trim().to_string())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// The agent's threads as (thread id, name), by id: a thread that
    /// ended and one that started in its place differ by id.
    pub fn tasks(&self) -> Vec<(u32, String)> {
        let dir = format!("/proc/{}/task", self.pid());
        let mut tasks: Vec<(u32, String)> = std::fs::read_dir(dir)
            .map(|d| {
                d.flatten()
                    .filter_map(|t| {
                        let id = t.file_name().to_str()?.parse().ok()?;
                        let name = std::fs::read_to_string(t.path().join("comm")).ok()?;
                        Some((id, name.trim().to_string()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        tasks.sort();
        tasks
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        // For post-mortems: XGA_TEST_LOGS=dir keeps each agent's log.
        if let Some(dir) = std::env::var_os("XGA_TEST_LOGS") {
            let name = std::thread::current()
                .name()
                .unwrap_or("agent")
                .replace("::", "-");
            let _ = std::fs::write(
                Path::new(&dir).join(format!("{name}-{}.log", self.pid())),
                self.stderr().join("\n"),
            );
        }
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn collect(pipe: impl std::io::Read + Send + 'static, into: Arc<Lines>) {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            into.lines.lock().unwrap().push(line);
            into.more.notify_all();
        }
    });
}

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A fresh directory named after `name`.
    pub fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("xga-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
