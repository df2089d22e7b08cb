//! A network namespace of our own for one test, deleted on drop (also when
//! the test fails), with `ip` run inside it.

use std::ffi::OsStr;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::model::Model;

#[path = "../common/skip.rs"]
mod skip;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub struct Netns {
    pub name: String,
}

impl Netns {
    /// A fresh namespace with its loopback up, or `None` (with the reason
    /// printed) when this process may not create one.
    pub fn new(tag: &str) -> Option<Netns> {
        if !skip::root(tag) {
            return None;
        }
        let name = format!(
            "xga-{tag}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let out = Command::new("ip").args(["netns", "add", &name]).output();
        match out {
            Ok(o) if o.status.success() => {}
            Ok(o) => {
                let why = String::from_utf8_lossy(&o.stderr);
                skip::cannot_run(tag, &format!("cannot create a network namespace: {why}"));
                return None;
            }
            Err(e) => {
                skip::cannot_run(tag, &format!("cannot run ip: {e}"));
                return None;
            }
        }
        let ns = Netns { name };
        ns.ip(["link", "set", "lo", "up"]);
        Some(ns)
    }

    /// Run `ip -n <ns> <args>`; panics on failure.
    pub fn ip<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new("ip");
        cmd.arg("-n").arg(&self.name).args(args);
        let out = cmd.output().expect("run ip");
        assert!(
            out.status.success(),
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `ip -n <ns> -batch -` with these commands, one per line.
    pub fn batch(&self, commands: &str) {
        let mut child = Command::new("ip")
            .args(["-n", &self.name, "-batch", "-"])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run ip -batch");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(commands.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "ip -batch failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The interfaces as `ip -j addr` shows them now.
    pub fn snapshot(&self) -> Model {
        Model::from_ip(&self.ip(["-j", "addr", "show"]))
    }

    /// The index of interface `name`.
    pub fn index(&self, name: &str) -> u64 {
        self.snapshot()
            .by_name(name)
            .unwrap_or_else(|| panic!("no {name}"))
            .0
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}
