//! The guest's world as the agent sees it: a network namespace of its own
//! (so the host's interfaces are neither seen nor touched) and a fake
//! sysfs that says which of its interfaces are Xen VIFs, as netfront's
//! `device/` directory does in a real guest.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The namespace and the fake sysfs, both removed on drop.
pub struct World {
    /// Name of the network namespace.
    pub netns: String,
    /// Root of the fake sysfs (`--sysfs`).
    pub sysfs: PathBuf,
    /// Scratch directory for batch files and logs of `ip`.
    scratch: PathBuf,
}

impl World {
    /// A fresh namespace with loopback up, no IPv6 link-local addresses
    /// (they would come and go with carrier at times the driver does not
    /// choose) and secondaries promoted when a primary IPv4 goes (as
    /// systemd sets it); an empty fake sysfs.
    pub fn new() -> Result<World, String> {
        let id = format!("xgasoak{}", std::process::id());
        let scratch = std::env::temp_dir().join(format!("{id}-scratch"));
        let sysfs = std::env::temp_dir().join(format!("{id}-sysfs"));
        for dir in [&scratch, &sysfs.join("class/net")] {
            std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {dir:?}: {e}"))?;
        }
        run("ip", &["netns", "add", &id])?;
        let world = World {
            netns: id,
            sysfs,
            scratch,
        };
        world.exec(&[
            "sysctl",
            "-qw",
            "net.ipv6.conf.all.addr_gen_mode=1",
            "net.ipv6.conf.default.addr_gen_mode=1",
            "net.ipv4.conf.all.promote_secondaries=1",
            "net.ipv4.conf.default.promote_secondaries=1",
        ])?;
        world.ip(&["link", "set", "lo", "up"])?;
        Ok(world)
    }

    /// Run a command inside the namespace.
    pub fn exec(&self, cmd: &[&str]) -> Result<String, String> {
        let mut all = vec!["netns", "exec", self.netns.as_str()];
        all.extend_from_slice(cmd);
        run("ip", &all)
    }

    /// `ip -n <netns> ARGS`; its standard output.
    pub fn ip(&self, args: &[&str]) -> Result<String, String> {
        let mut all = vec!["-n", self.netns.as_str()];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// Start `ip -force -batch` on `commands` (one per line) in the
    /// background: the kernel applies them as fast as it goes while the
    /// driver does other things. Failed commands (an address the kernel
    /// already dropped, say) are counted, not fatal.
    pub fn batch(&self, tag: &str, commands: &[String]) -> Result<Job, String> {
        let file = self.scratch.join(format!("{tag}.batch"));
        let errors = self.scratch.join(format!("{tag}.err"));
        let mut f =
            std::fs::File::create(&file).map_err(|e| format!("cannot write {file:?}: {e}"))?;
        for c in commands {
            writeln!(f, "{c}").map_err(|e| format!("cannot write {file:?}: {e}"))?;
        }
        drop(f);
        let err = std::fs::File::create(&errors).map_err(|e| format!("{errors:?}: {e}"))?;
        let child = Command::new("ip")
            .args(["-n", &self.netns, "-force", "-batch"])
            .arg(&file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot run ip -batch: {e}"))?;
        Ok(Job { child, errors })
    }

    /// Make `name` a VIF with id `vif` in the fake sysfs (before the link
    /// exists, as netfront's device exists before its interface).
    pub fn sysfs_vif(&self, name: &str, vif: u32) -> Result<(), String> {
        let device = self.class_net(name).join("device");
        std::fs::create_dir_all(&device).map_err(|e| format!("{device:?}: {e}"))?;
        write(&device.join("devtype"), "vif\n")?;
        write(&device.join("nodename"), &format!("device/vif/{vif}\n"))
    }

    /// Forget `name` in the fake sysfs.
    pub fn sysfs_remove(&self, name: &str) {
        let _ = std::fs::remove_dir_all(self.class_net(name));
    }

    /// The fake sysfs's `class/net/<name>/master` link (what the polling
    /// collector reads; netlink tells the netlink one).
    pub fn sysfs_master(&self, name: &str, master: Option<&str>) -> Result<(), String> {
        let dir = self.class_net(name);
        let link = dir.join("master");
        let _ = std::fs::remove_file(&link);
        if let Some(m) = master {
            std::fs::create_dir_all(&dir).map_err(|e| format!("{dir:?}: {e}"))?;
            std::os::unix::fs::symlink(format!("../{m}"), &link)
                .map_err(|e| format!("{link:?}: {e}"))?;
        }
        Ok(())
    }

    /// Make `bridge` a bridge in the fake sysfs (its `bridge/` directory).
    pub fn sysfs_bridge(&self, bridge: &str) -> Result<(), String> {
        let dir = self.class_net(bridge).join("bridge");
        std::fs::create_dir_all(&dir).map_err(|e| format!("{dir:?}: {e}"))
    }

    /// The VIF id the fake sysfs gives `name`, read back as the agent
    /// reads it (`device/devtype` = `vif`, `device/nodename` =
    /// `device/vif/<id>`).
    pub fn vif_of(&self, name: &str) -> Option<u32> {
        let device = self.class_net(name).join("device");
        let devtype = std::fs::read_to_string(device.join("devtype")).ok()?;
        let nodename = std::fs::read_to_string(device.join("nodename")).ok()?;
        if devtype.trim_end() != "vif" {
            return None;
        }
        nodename
            .trim_end()
            .strip_prefix("device/vif/")?
            .parse()
            .ok()
    }

    fn class_net(&self, name: &str) -> PathBuf {
        self.sysfs.join("class/net").join(name)
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .status();
        let _ = std::fs::remove_dir_all(&self.sysfs);
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

/// An `ip -batch` running in the background.
pub struct Job {
    child: Child,
    errors: PathBuf,
}

impl Job {
    /// Whether it is over (without waiting).
    pub fn done(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// Wait for the end; the number of commands the kernel refused.
    pub fn wait(mut self) -> usize {
        let _ = self.child.wait();
        std::fs::read_to_string(&self.errors)
            .map(|e| {
                e.lines()
                    .filter(|l| l.starts_with("Command failed"))
                    .count()
            })
            .unwrap_or(0)
    }
}

/// Run `cmd` and return its standard output, or what it said on failure.
pub fn run(cmd: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {cmd}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{cmd} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn write(path: &Path, content: &str) -> Result<(), String> {
    std::fs::write(path, content).map_err(|e| format!("cannot write {path:?}: {e}"))
}
