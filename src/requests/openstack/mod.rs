//! OpenStack's XenServer guest-agent protocol (nova's XenAPI driver): dom0
//! writes a command in `data/host/<id>`, the agent answers it once in
//! `data/guest/<id>`. `password`, `injectfile` and `resetnetwork` each run
//! only when allowed (`--allow`); `version`, `features` and `keyinit` are
//! answered whenever one is.

pub mod crypto;
pub mod inject;
pub mod network;
pub mod protocol;
mod scan;
pub mod shadow;

use std::path::{Path, PathBuf};

use super::static_ip::{self, code as ip_code};
use super::Allow;
use protocol::{code, Answer, Command};

/// Where dom0 writes commands (one node per id).
pub const REQUESTS: &str = "data/host";

/// Where the agent answers them (same id).
pub const ANSWERS: &str = "data/guest";

/// The account whose password `password` sets, as nova's agents do.
const ROOT_USER: &str = "root";

/// The allowed commands and what they keep between requests.
pub struct Commands {
    password: bool,
    injectfile: bool,
    resetnetwork: bool,
    /// Where `/etc` and the injected files are (`/`; tests: a temp dir).
    root: PathBuf,
    /// The only paths `injectfile` writes.
    inject_paths: Vec<PathBuf>,
    /// The secret of the last `keyinit`, until a `password` uses it.
    secret: Option<crypto::Secret>,
}

/// What a command needs next.
pub enum Step {
    /// Answer this.
    Answer(Answer),
    /// Read `vm-data/` and apply it ([`reset_network`]).
    ResetNetwork,
}

impl Commands {
    /// The commands `allow` lets dom0 run; `None` when it lists none.
    pub fn new(allow: &[Allow], root: &Path, inject_paths: &[PathBuf]) -> Option<Commands> {
        let c = Commands {
            password: allow.contains(&Allow::Password),
            injectfile: allow.contains(&Allow::Injectfile),
            resetnetwork: allow.contains(&Allow::Resetnetwork),
            root: root.to_path_buf(),
            inject_paths: inject_paths.to_vec(),
            secret: None,
        };
        (c.password || c.injectfile || c.resetnetwork).then_some(c)
    }

    /// Whether `resetnetwork` is allowed (it needs the network applier).
    pub fn reset_network_allowed(&self) -> bool {
        self.resetnetwork
    }

    /// The `features` answer: what this agent runs.
    pub fn features(&self) -> String {
        let mut list = vec!["version", "features", "keyinit"];
        for (allowed, name) in [
            (self.password, "password"),
            (self.injectfile, "injectfile"),
            (self.resetnetwork, "resetnetwork"),
        ] {
            if allowed {
                list.push(name);
            }
        }
        list.join(",")
    }

    /// Run a command that needs nothing more from xenstore (the file edits
    /// on the blocking pool: the shadow lock may be waited for).
    pub async fn handle(&mut self, command: &Command) -> Step {
        let refused = |name: &str| Answer {
            code: code::UNKNOWN,
            message: format!(
                "{name}: not allowed in this guest (its agent runs without --allow {name})"
            ),
        };
        Step::Answer(match command {
            Command::Version => Answer::ok(env!("CARGO_PKG_VERSION")),
            Command::Features => Answer::ok(self.features()),
            Command::KeyInit(host_public) => self.key_init(host_public),
            Command::Password(_) if !self.password => refused("password"),
            Command::Password(b64) => self.set_password(b64).await,
            Command::InjectFile(_) if !self.injectfile => refused("injectfile"),
            Command::InjectFile(b64) => self.inject(b64).await,
            Command::ResetNetwork if !self.resetnetwork => refused("resetnetwork"),
            Command::ResetNetwork => return Step::ResetNetwork,
            Command::Other(name) => Answer {
                code: code::UNKNOWN,
                message: format!("unknown command {name:?}"),
            },
        })
    }

    fn key_init(&mut self, host_public: &str) -> Answer {
        self.secret = None;
        let exchange = match crypto::KeyExchange::new() {
            Ok(x) => x,
            Err(e) => return Answer::failed(format!("cannot make a key: {e}")),
        };
        match exchange.shared(host_public) {
            Ok(secret) => {
                self.secret = Some(secret);
                Answer {
                    code: code::KEY_INIT,
                    message: exchange.public().to_string(),
                }
            }
            Err(e) => Answer::failed(format!("invalid public key: {e}")),
        }
    }

    async fn set_password(&mut self, b64: &str) -> Answer {
        let Some(secret) = &self.secret else {
            return Answer::failed(crypto::PasswordError::NoKeyExchange.to_string());
        };
        let password = match crypto::decrypt_password(secret, b64) {
            Ok(p) => p,
            Err(e) => {
                log::debug!("openstack: password: {e:?}");
                return Answer::failed(e.to_string());
            }
        };
        let root = self.root.clone();
        let set = move || shadow::set_password(&root, ROOT_USER, &password);
        match blocking(set).await {
            Err(e) => Answer::failed(e),
            Ok(Ok(())) => {
                // As nova's agents do: a new keyinit for the next one.
                self.secret = None;
                Answer::ok("")
            }
            Ok(Err(e)) => Answer::failed(format!("cannot set {ROOT_USER}'s password: {e}")),
        }
    }

    async fn inject(&mut self, b64: &str) -> Answer {
        let (path, contents) = match inject::parse(b64) {
            Ok(p) => p,
            Err(e) => return Answer::failed(e.to_string()),
        };
        let (root, allowed) = (self.root.clone(), self.inject_paths.clone());
        let shown = path.clone();
        let write = move || inject::write(&root, &allowed, &path, &contents);
        match blocking(write).await {
            Err(e) => Answer::failed(e),
            Ok(Ok(written)) => {
                Answer::ok(match written.backup.as_ref().and_then(|b| b.file_name()) {
                    Some(b) => format!(
                        "wrote {} (the old one kept as {})",
                        shown.display(),
                        shown.with_file_name(b).display()
                    ),
                    None => format!("wrote {}", shown.display()),
                })
            }
            Ok(Err(e)) => Answer::failed(e.to_string()),
        }
    }
}

/// Set the host name lastingly and at once: `/etc/hostname` under `root`
/// (what the next boot takes; its mode kept) and the kernel's
/// (sethostname(2), which needs CAP_SYS_ADMIN). For OpenStack's
/// `resetnetwork`.
fn set_host_name(root: &Path, name: &str) -> Result<(), crate::Error> {
    use std::os::unix::fs::PermissionsExt;
    let file = root.join("etc/hostname");
    let mode = std::fs::metadata(&file).map_or(0o644, |m| m.permissions().mode() & 0o7777);
    crate::netconf::persist::write_atomic_mode(&file, &format!("{name}\n"), mode)?;
    // SAFETY: the pointer and length are those of `name`, which outlives
    // the call; the kernel copies at most that many bytes.
    let rc = unsafe { libc::sethostname(name.as_ptr().cast(), name.len() as _) };
    if rc != 0 {
        return Err(crate::Error::new(format!(
            "cannot set the running host name to {name}: {}",
            std::io::Error::last_os_error()
        ))
        .hint(
            "the agent needs CAP_SYS_ADMIN for it: see the drop-in xen-guest-agent-openstack.conf",
        ));
    }
    Ok(())
}

#[cfg(test)]
thread_local! {
    /// The step at which a test makes a file edit (shadow, inject) fail.
    static FAULT: std::cell::Cell<Option<&'static str>> = const { std::cell::Cell::new(None) };
}

/// A failure at `step` of a file edit when a test asks for one (none
/// outside tests).
fn fault(step: &'static str) -> std::io::Result<()> {
    #[cfg(test)]
    if FAULT.with(|f| f.get()) == Some(step) {
        return Err(std::io::Error::other(format!("test failure at {step}")));
    }
    let _ = step;
    Ok(())
}

/// Run `f` on tokio's blocking pool, off the agent's one thread.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| format!("the file edit did not finish ({e})"))
}

/// `resetnetwork`: apply each `vm-data/networking` entry (`(key, JSON)`)
/// through the static IP applier and set `vm-data/hostname`; `0` when all
/// of it was done (an entry of a VIF the guest does not have is skipped),
/// else `500`, the message saying what was done and what failed.
pub async fn reset_network(
    net: &mut static_ip::Apply,
    root: &Path,
    entries: &[(String, String)],
    host_name: Option<&str>,
) -> Answer {
    let mut said = Vec::new();
    let mut failed = false;
    for (key, text) in entries {
        let iface = match network::parse(key, text) {
            Ok(i) => i,
            Err(e) => {
                failed = true;
                said.push(format!("refused: {e}"));
                continue;
            }
        };
        let mac = &iface.setting.mac;
        if iface.setting.wanted == Default::default() {
            said.push(format!("{mac}: no address to set"));
            continue;
        }
        let what = static_ip::describe(&iface.setting.wanted);
        let mut s = match net.apply(&iface.setting).await {
            Ok(note) => format!("{what} for MAC {mac}: done{note}"),
            Err((c, _)) if c == ip_code::NO_INTERFACE => {
                format!("{mac}: no interface of the guest has this MAC: skipped")
            }
            Err((_, why)) => {
                failed = true;
                format!("{what} for MAC {mac}: {why}")
            }
        };
        if !iface.ignored.is_empty() {
            s += &format!(
                " ({} not applied: not supported)",
                iface.ignored.join(" and ")
            );
        }
        said.push(s);
    }
    if let Some(text) = host_name {
        match network::hostname(text) {
            Err(e) => {
                failed = true;
                said.push(format!("refused: {e}"));
            }
            Ok(name) => match set_host_name(root, &name) {
                Ok(()) => said.push(format!("host name {name}: done")),
                Err(e) => {
                    failed = true;
                    said.push(format!("host name {name}: {e}"));
                }
            },
        }
    }
    if said.is_empty() {
        said.push(format!(
            "nothing to apply (no {} entry, no {})",
            network::NETWORKING,
            network::HOSTNAME
        ));
    }
    let message = said.join("; ");
    if failed {
        Answer::failed(message)
    } else {
        Answer::ok(message)
    }
}
