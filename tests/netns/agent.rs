//! The real agent binary, run inside a test's network namespace with the
//! stdout publisher in JSON; its lines rebuild a [`Model`].

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::model::Model;
use super::netns::Netns;

pub struct Agent {
    child: Child,
    lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
    /// What the agent's lines say so far.
    pub model: Model,
    /// How many lines were applied.
    pub applied: usize,
}

impl Agent {
    /// Start the agent in `ns` with the test arguments plus `extra`.
    pub fn start(ns: &Netns, extra: &[&str]) -> Agent {
        Self::start_with(ns, &[], extra)
    }

    /// [`Agent::start`] as root without any capability, as the shipped
    /// systemd unit runs it (`CapabilityBoundingSet=` empty).
    pub fn start_without_capabilities(ns: &Netns, extra: &[&str]) -> Agent {
        let drop = ["setpriv", "--bounding-set=-all", "--inh-caps=-all", "--"];
        Self::start_with(ns, &drop, extra)
    }

    /// [`Agent::start`] in a UTS namespace of its own (`unshare -u`, which
    /// execs it), so that a test can change its host name with
    /// [`Agent::set_host_name`] and leave the machine's alone.
    pub fn start_in_own_uts(ns: &Netns, host_name: &str, extra: &[&str]) -> Agent {
        // A shell in the new namespace sets the name, then execs the agent
        // (as `ip netns exec` and `unshare` do): the child is the agent.
        let script = format!("hostname {host_name} && exec \"$@\"");
        let launcher = ["unshare", "-u", "--", "sh", "-c", &script, "sh"];
        Self::start_with(ns, &launcher, extra)
    }

    /// [`Agent::start`] in a mount namespace of its own, private (`unshare
    /// -m`, which execs it), so that a test can mount and unmount there
    /// with [`Agent::in_mounts`] and leave the machine's mounts alone.
    pub fn start_in_own_mounts(ns: &Netns, extra: &[&str]) -> Agent {
        let launcher = ["unshare", "-m", "--propagation", "private", "--"];
        let a = Self::start_with(ns, &launcher, extra);
        // Until the launchers exec'd the agent, the process is in another
        // mount namespace (`ip netns exec` has one of its own).
        let exe = std::path::Path::new(env!("CARGO_BIN_EXE_xen-guest-agent"));
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::fs::read_link(format!("/proc/{}/exe", a.pid()))
            .ok()
            .as_deref()
            != Some(exe)
        {
            assert!(
                Instant::now() < deadline,
                "the agent did not start: {}",
                a.stderr()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        a
    }

    /// Run `command` in the agent's mount namespace (`nsenter -m`); panics
    /// when it fails.
    pub fn in_mounts(&self, command: &[&str]) {
        let out = Command::new("nsenter")
            .args(["-t", &self.pid().to_string(), "-m", "--"])
            .args(command)
            .output()
            .expect("run nsenter");
        assert!(
            out.status.success(),
            "nsenter -m {command:?}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Change the host name in the agent's UTS namespace (`hostname`, that
    /// is `sethostname(2)`, run there with `nsenter`).
    pub fn set_host_name(&self, name: &str) {
        let status = Command::new("nsenter")
            .args(["-t", &self.pid().to_string(), "-u", "hostname", name])
            .status()
            .expect("run nsenter");
        assert!(status.success(), "nsenter hostname {name}: {status}");
    }

    fn start_with(ns: &Netns, launcher: &[&str], extra: &[&str]) -> Agent {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &ns.name])
            .args(launcher)
            .arg(env!("CARGO_BIN_EXE_xen-guest-agent"))
            .args(["--publisher", "stdout", "--format", "json", "-s"])
            // No sampling to speak of, unless the test asks for it.
            .args(if extra.contains(&"--memory-interval") {
                &[][..]
            } else {
                &["--memory-interval", "3600"][..]
            })
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the agent");
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Agent {
            child,
            lines,
            stderr,
            model: Model::default(),
            applied: 0,
        }
    }

    /// The agent's process id (`ip netns exec` execs it).
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// What the agent logged so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Apply the agent's lines until `done(model)` holds; panics after
    /// `timeout` with what was seen. `done` is evaluated after each burst
    /// of lines and every 100 ms while none come.
    pub fn wait_for(&mut self, what: &str, timeout: Duration, done: impl FnMut(&Model) -> bool) {
        if !self.try_wait_for(what, timeout, done) {
            panic!(
                "timed out waiting for {what}; agent's model:\n{:#?}\nagent's log:\n{}",
                self.model,
                self.stderr()
            );
        }
    }

    /// [`Agent::wait_for`] that returns whether `done` came true in time.
    pub fn try_wait_for(
        &mut self,
        what: &str,
        timeout: Duration,
        mut done: impl FnMut(&Model) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            while let Ok(line) = self.lines.try_recv() {
                self.apply(&line);
            }
            if done(&self.model) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            match self
                .lines
                .recv_timeout(left.min(Duration::from_millis(100)))
            {
                Ok(line) => self.apply(&line),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    std::thread::sleep(Duration::from_millis(100)); // let stderr drain
                    panic!(
                        "the agent exited while waiting for {what}; log:\n{}",
                        self.stderr()
                    );
                }
            }
        }
    }

    fn apply(&mut self, line: &str) {
        self.model.apply(line);
        self.applied += 1;
    }

    /// Wait until the agent's model equals what `ip` shows in `ns`, and
    /// stays so: a first match could be undone by stale notifications
    /// still queued (after an overflow, say), so a sentinel change follows
    /// (an address added to `lo`, then removed): the agent reports changes
    /// in order, so once it shows the sentinel it has applied everything
    /// before it, and the model must still be what `ip` shows.
    pub fn wait_converged(&mut self, ns: &Netns, what: &str, timeout: Duration) {
        self.converged(ns, what, timeout);
        const SENTINEL: &str = "198.51.100.254/32";
        ns.ip(["addr", "add", SENTINEL, "dev", "lo"]);
        self.converged(ns, &format!("{what} (sentinel added)"), timeout);
        ns.ip(["addr", "del", SENTINEL, "dev", "lo"]);
        self.converged(ns, &format!("{what} (sentinel removed)"), timeout);
    }

    fn converged(&mut self, ns: &Netns, what: &str, timeout: Duration) {
        let mut last = Model::default();
        let ok = self.try_wait_for(what, timeout, |m| {
            last = ns.snapshot();
            m.comparable() == last
        });
        if !ok {
            panic!(
                "{what}: the agent's model differs from ip:\n{}\nagent's log:\n{}",
                diff(&self.model.comparable(), &last),
                self.stderr()
            );
        }
    }

    /// CPU time the agent used so far (all its threads), from schedstat.
    pub fn cpu_time(&self) -> Duration {
        let mut ns = 0u64;
        if let Ok(tasks) = std::fs::read_dir(format!("/proc/{}/task", self.pid())) {
            for t in tasks.flatten() {
                if let Ok(s) = std::fs::read_to_string(t.path().join("schedstat")) {
                    ns += s
                        .split_whitespace()
                        .next()
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or(0);
                }
            }
        }
        Duration::from_nanos(ns)
    }

    /// Send `signal` to the agent.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill with a pid we own.
        assert_eq!(unsafe { libc::kill(self.pid(), signal) }, 0);
    }
}

/// A readable difference between two models.
pub fn diff(agent: &Model, ip: &Model) -> String {
    let mut out = String::new();
    for (k, a) in &agent.ifaces {
        match ip.ifaces.get(k) {
            None => out += &format!("only in agent: {k} {a:?}\n"),
            Some(b) if a != b => {
                let (mut a2, mut b2) = (a.clone(), b.clone());
                a2.addrs.clear();
                b2.addrs.clear();
                if a2 != b2 {
                    out += &format!("link {k}: agent {a2:?}\n        ip    {b2:?}\n");
                }
                for (addr, v) in &a.addrs {
                    if b.addrs.get(addr) != Some(v) {
                        out +=
                            &format!("  {k} agent has {addr} {v:?}, ip {:?}\n", b.addrs.get(addr));
                    }
                }
                for (addr, v) in &b.addrs {
                    if !a.addrs.contains_key(addr) {
                        out += &format!("  {k} ip has {addr} {v:?}, agent has not\n");
                    }
                }
            }
            _ => {}
        }
    }
    for (k, b) in &ip.ifaces {
        if !agent.ifaces.contains_key(k) {
            out += &format!("only in ip: {k} {b:?}\n");
        }
    }
    out
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
