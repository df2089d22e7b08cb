//! The agent under test: one process at a time, started in the namespace
//! as a service manager would (logging to stderr here), stopped and
//! killed by the driver, watched for crashes and for growth.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::world::World;

/// What the agent logged, kept since the last good check (a failure shows
/// it), and counted over the run.
#[derive(Default)]
pub struct Log {
    pub recent: Vec<String>,
    pub warnings: u64,
    pub errors: u64,
    /// Netlink overflows the agent noticed (it resynchronises).
    pub resyncs: u64,
    /// Every line also goes here (`--agent-log`).
    pub file: Option<std::fs::File>,
}

/// Resource use of the process.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Resources {
    pub rss_kib: u64,
    pub fds: u64,
    pub threads: u64,
}

impl Resources {
    /// Read from /proc; `None` when the process is gone.
    pub fn of(pid: u32) -> Option<Resources> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let field = |k: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(k))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        };
        let count = |dir: String| std::fs::read_dir(dir).map(|d| d.count() as u64).ok();
        Some(Resources {
            rss_kib: field("VmRSS:")?,
            fds: count(format!("/proc/{pid}/fd"))?,
            threads: count(format!("/proc/{pid}/task"))?,
        })
    }
}

/// How to start the agent.
#[derive(Clone, Debug)]
pub struct Launch {
    pub binary: PathBuf,
    pub args: Vec<String>,
    pub socket: PathBuf,
}

/// A running agent.
pub struct Agent {
    child: Child,
    /// Stopped with SIGSTOP (a forced netlink overflow).
    pub frozen: bool,
}

impl Agent {
    /// Start it in `world`'s namespace with the test xenstored as its
    /// xenstore, logging at debug level into `log`.
    pub fn start(world: &World, launch: &Launch, log: &Arc<Mutex<Log>>) -> Result<Agent, String> {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &world.netns])
            .arg(&launch.binary)
            .args(["-s", "-l", "debug", "--sysfs"])
            .arg(&world.sysfs)
            // Not the host's filesystems: their space moves with its disk
            // use, which the soak's contract model does not follow
            // (tests/xenstore checks filesystems).
            .args(["--filesystems", "none"])
            .args(&launch.args)
            .env("XENSTORED_PATH", &launch.socket)
            .env_remove("RUST_LOG")
            .env_remove("XENSTORE_SCHEMA")
            .env_remove("NOTIFY_SOCKET")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {:?}: {e}", launch.binary))?;
        if let Some(pipe) = child.stderr.take() {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    let mut l = log.lock().unwrap_or_else(|p| p.into_inner());
                    l.warnings += u64::from(line.starts_with("[WARN"));
                    l.errors += u64::from(line.starts_with("[ERROR"));
                    l.resyncs += u64::from(line.contains("resynchronising with a full dump"));
                    if let Some(f) = l.file.as_mut() {
                        let _ = writeln!(f, "{line}");
                    }
                    l.recent.push(line);
                }
            });
        }
        Ok(Agent {
            child,
            frozen: false,
        })
    }

    /// Its process id (`ip netns exec` execs the agent in place).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its exit status, if it exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Whether it handles SIGTERM yet (blocked for its signalfd, or
    /// caught): before that, SIGTERM's default action ends it, which is no
    /// fault of the agent's.
    pub fn handles_sigterm(&self) -> bool {
        let Ok(status) = std::fs::read_to_string(format!("/proc/{}/status", self.pid())) else {
            return false;
        };
        let bit = 1u64 << (libc::SIGTERM - 1);
        ["SigBlk:", "SigCgt:"].iter().any(|k| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(k))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
                .is_some_and(|mask| mask & bit != 0)
        })
    }

    /// Send `signal`.
    pub fn signal(&mut self, signal: libc::c_int) {
        // SAFETY: signalling our own child, which has not been reaped.
        unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
        match signal {
            libc::SIGSTOP => self.frozen = true,
            libc::SIGCONT => self.frozen = false,
            _ => {}
        }
    }

    /// Wait up to `timeout` for it to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.exited() {
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stop it with SIGTERM: it must exit 0 within `timeout`; the status
    /// otherwise (it is then killed).
    pub fn stop(mut self, timeout: Duration) -> Result<(), String> {
        if self.frozen {
            self.signal(libc::SIGCONT);
        }
        let deadline = Instant::now() + timeout;
        while !self.handles_sigterm() && self.exited().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        self.signal(libc::SIGTERM);
        match self.wait_exit(timeout) {
            Some(s) if s.success() => Ok(()),
            Some(s) => Err(format!("the agent exited with {s} on SIGTERM")),
            None => {
                self.kill();
                Err(format!(
                    "the agent did not exit within {timeout:?} of SIGTERM"
                ))
            }
        }
    }

    /// Kill it (SIGKILL) and reap it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if self.exited().is_none() {
            self.kill();
        }
    }
}

/// The agent binary: `path`, else this workspace's release build, built
/// when missing.
pub fn binary(path: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(p) = path {
        return if p.is_file() {
            Ok(p.to_path_buf())
        } else {
            Err(format!("no agent binary at {p:?}"))
        };
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"));
    let bin = target.join("release/xen-guest-agent");
    if !bin.is_file() {
        eprintln!("soak: {bin:?} is missing: cargo build --release --bin xen-guest-agent");
        let status = Command::new("cargo")
            .args(["build", "--release", "--bin", "xen-guest-agent"])
            .current_dir(&workspace)
            .status()
            .map_err(|e| format!("cannot run cargo: {e}"))?;
        if !status.success() {
            return Err(format!("building the agent failed ({status})"));
        }
    }
    Ok(bin)
}
