//! The lasting half of a network change: the configuration of the network
//! manager that runs the interface, so that it survives a restart of that
//! manager and a reboot.
//!
//! [`detect`] finds the manager, [`persist`] writes dom0's setting in its
//! files, [`forget`] removes them again. The agent writes only files of its
//! own (named `xen-guest-agent`), never the administrator's: where a
//! setting cannot be made without editing theirs, [`persist`] says so and
//! the change stays live only. The rules per manager are in `networkd.rs`,
//! `ifupdown.rs` and `networkmanager.rs`.
//!
//! This module only writes files: what the running manager must be told
//! for the change to take effect now is [`Persisted::reload`], which the
//! caller does (D-Bus).

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{Wanted, V4, V6};
use crate::Error;

mod ifupdown;
mod networkd;
mod networkmanager;
#[cfg(test)]
mod tests;

/// The network managers the agent can persist a setting with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Manager {
    /// systemd-networkd (`.network` files).
    Networkd,
    /// Debian's ifupdown (`/etc/network/interfaces`).
    Ifupdown,
    /// NetworkManager (keyfile profiles).
    NetworkManager,
}

impl fmt::Display for Manager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Manager::Networkd => "systemd-networkd",
            Manager::Ifupdown => "ifupdown",
            Manager::NetworkManager => "NetworkManager",
        })
    }
}

/// Where the system's files are (tests point these into a temp dir).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Roots {
    /// What stands for `/etc`.
    pub etc: PathBuf,
    /// What stands for `/run`.
    pub run: PathBuf,
}

impl Roots {
    /// The running system's own `/etc` and `/run`.
    pub fn system() -> Roots {
        Roots {
            etc: PathBuf::from("/etc"),
            run: PathBuf::from("/run"),
        }
    }

    /// Where a path named in the system's files (`/etc/...`, `/run/...`)
    /// is under these roots; other paths are taken as they are.
    fn resolve(&self, path: &Path) -> PathBuf {
        if let Ok(rest) = path.strip_prefix("/etc") {
            self.etc.join(rest)
        } else if let Ok(rest) = path.strip_prefix("/run") {
            self.run.join(rest)
        } else {
            path.to_path_buf()
        }
    }
}

/// Which manager runs an interface, as [`detect`] found it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Detected {
    /// systemd-networkd manages the link, configured by `network_file`
    /// (its `NETWORK_FILE`, as networkd names it), if any matched.
    Networkd {
        /// The `.network` file networkd applies to the link.
        network_file: Option<PathBuf>,
    },
    /// ifupdown configures the interface (or knows it).
    Ifupdown,
    /// NetworkManager manages the device (its device state file says
    /// `managed=true`), or runs and has no state of the device yet.
    NetworkManager {
        /// The UUID of the connection profile active on the device (the
        /// state's `connection-uuid`), if any.
        connection_uuid: Option<String>,
    },
    /// No manager the agent knows of.
    None,
}

impl Detected {
    /// The manager [`persist`] writes the setting with, if it can.
    pub fn manager(&self) -> Option<Manager> {
        match self {
            Detected::Networkd { .. } => Some(Manager::Networkd),
            Detected::Ifupdown => Some(Manager::Ifupdown),
            Detected::NetworkManager { .. } => Some(Manager::NetworkManager),
            Detected::None => None,
        }
    }
}

/// What the caller must ask the running network manager for, so that a
/// change of its files takes effect now rather than at its next start.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Reload {
    /// Nothing changed, or nothing to ask (ifupdown: the next `ifup`).
    #[default]
    Nothing,
    /// systemd-networkd's files changed: call `Reload` on
    /// `org.freedesktop.network1.Manager`, then `ReconfigureLink(index)`.
    Networkd {
        /// The link's kernel index.
        index: u32,
    },
    /// The agent's NetworkManager profile was written or removed: call
    /// `ReloadConnections` on `org.freedesktop.NetworkManager.Settings`,
    /// then, when `uuid` is not empty, `ActivateConnection` of the profile
    /// of that UUID (`GetConnectionByUuid`) on the device of `interface`
    /// (`GetDeviceByIpIface`), specific object `/`. After a write, `uuid` is
    /// the agent's profile. After a removal, it is the guest's profile the
    /// agent's replaced, to activate it again; empty when the agent never
    /// knew it: then activate nothing, as the reload removes the agent's
    /// active profile, which disconnects the device, and NetworkManager's
    /// autoconnect then activates the guest's best profile by itself.
    NetworkManager {
        /// The profile to activate; empty: none.
        uuid: String,
        /// The interface to activate it on.
        interface: String,
    },
}

/// What [`persist`] or [`forget`] changed, for the audit log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Persisted {
    /// Files written (created or replaced; unchanged ones are not).
    pub written: Vec<PathBuf>,
    /// Files (and emptied directories of the agent's) removed.
    pub removed: Vec<PathBuf>,
    /// When the change takes effect, if anything changed.
    pub note: Option<String>,
    /// What to ask the running manager for, now that its files changed.
    pub reload: Reload,
}

impl Persisted {
    /// Nothing was written or removed.
    pub fn is_empty(&self) -> bool {
        self.written.is_empty() && self.removed.is_empty()
    }
}

/// Which manager runs the interface `name` (kernel index `index`), if one
/// the agent can persist with: systemd-networkd when its link state file
/// says it manages the link, ifupdown when `/etc/network/interfaces` knows
/// the interface (its state file, a stanza, an `auto` line),
/// NetworkManager when its device state file says it manages the device
/// (with the profile active on it), or when it runs and has no state of the
/// device yet. A device NetworkManager's state says it does not manage is
/// [`Detected::None`].
pub fn detect(roots: &Roots, name: &str, index: u32) -> Detected {
    if let Some(d) = networkd::detect(roots, index) {
        return d;
    }
    // An invalid name is refused by `persist`; it must not reach a path.
    if check_name(name).is_ok() && ifupdown::detect(roots, name) {
        return Detected::Ifupdown;
    }
    if let Some(d) = networkmanager::detect(roots, index) {
        return d;
    }
    if roots.run.join("NetworkManager").is_dir() {
        return Detected::NetworkManager {
            connection_uuid: None,
        };
    }
    Detected::None
}

/// Whether a network manager that runs has not yet decided whether it
/// manages link `index` (systemd-networkd at boot): [`detect`] would find
/// too little; the caller waits a little and asks again.
pub fn settling(roots: &Roots, index: u32) -> bool {
    networkd::settling(roots, index)
}

/// Write what makes `wanted` last for the interface `name` (kernel index
/// `index`) with MAC `mac`, replacing what the agent wrote before for it (a
/// family given as `None` keeps what the agent persisted for it before, if
/// anything; with NetworkManager, what the active profile says first);
/// returns the paths written and removed and what to tell the manager, or
/// an error naming the file, or saying why the setting can only be live.
pub fn persist(
    roots: &Roots,
    detected: &Detected,
    name: &str,
    index: u32,
    mac: &str,
    wanted: &Wanted,
) -> Result<Persisted, Error> {
    check_name(name)?;
    let mac = check_mac(mac)?;
    check_wanted(name, wanted)?;
    match detected {
        Detected::Networkd { network_file } => {
            networkd::persist(roots, network_file.as_deref(), name, index, &mac, wanted)
        }
        Detected::Ifupdown => ifupdown::persist(roots, name, &mac, wanted),
        Detected::NetworkManager { connection_uuid } => {
            networkmanager::persist(roots, connection_uuid.as_deref(), name, &mac, wanted)
        }
        Detected::None => Err(Error::new(format!(
            "no network manager the agent can configure runs {name}"
        ))),
    }
}

/// Remove everything the agent persisted for this interface (kernel index
/// `index`): back to the guest's own configuration. The files of every
/// manager are looked for, whatever `detected` says, so that a change of
/// manager leaves none behind; the reload is that of the detected manager
/// when it had files, else of the first that had.
pub fn forget(
    roots: &Roots,
    detected: &Detected,
    name: &str,
    index: u32,
    mac: &str,
) -> Result<Persisted, Error> {
    check_name(name)?;
    let mac = check_mac(mac)?;
    let active = match detected {
        Detected::NetworkManager { connection_uuid } => connection_uuid.as_deref(),
        _ => None,
    };
    let parts = [
        (Manager::Networkd, networkd::forget(roots, index, &mac)?),
        (Manager::Ifupdown, ifupdown::forget(roots, name)?),
        (
            Manager::NetworkManager,
            networkmanager::forget(roots, active, name, &mac)?,
        ),
    ];
    let mut done = Persisted::default();
    let mut notes = Vec::new();
    let mut reloads = Vec::new();
    for (manager, part) in parts {
        notes.extend(part.note);
        done.written.extend(part.written);
        done.removed.extend(part.removed);
        if part.reload != Reload::Nothing {
            reloads.push((manager, part.reload));
        }
    }
    if !notes.is_empty() {
        done.note = Some(notes.join("; "));
    }
    let first = reloads.first().map(|(_, r)| r.clone());
    done.reload = reloads
        .into_iter()
        .find(|(m, _)| Some(*m) == detected.manager())
        .map(|(_, r)| r)
        .or(first)
        .unwrap_or_default();
    Ok(done)
}

/// Refuse an interface name that could not be the kernel's, or that could
/// do harm in a path or a configuration file: only `[A-Za-z0-9_.:-]`, 1 to
/// 15 bytes, not `.` or `..`.
fn check_name(name: &str) -> Result<(), Error> {
    let valid = !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(Error::new(format!(
            "refusing the interface name {name:?}: not 1 to 15 of A-Z a-z 0-9 _ . : -"
        )))
    }
}

/// Check an Ethernet MAC address (`xx:xx:xx:xx:xx:xx`, hex digits) and
/// return it in lower case, the form written in files.
fn check_mac(mac: &str) -> Result<String, Error> {
    let bytes = mac.as_bytes();
    let valid = bytes.len() == 17
        && bytes.iter().enumerate().all(|(i, b)| {
            if i % 3 == 2 {
                *b == b':'
            } else {
                b.is_ascii_hexdigit()
            }
        });
    if valid {
        Ok(mac.to_ascii_lowercase())
    } else {
        Err(Error::new(format!(
            "refusing the MAC address {mac:?}: not six hex pairs separated by colons"
        )))
    }
}

/// Refuse a prefix length beyond the family's.
fn check_wanted(name: &str, wanted: &Wanted) -> Result<(), Error> {
    if let Some(V4::Static(s)) = &wanted.v4 {
        if s.prefix > 32 {
            return Err(Error::new(format!(
                "refusing {}/{} for {name}: an IPv4 prefix is at most 32",
                s.address, s.prefix
            )));
        }
    }
    if let Some(V6::Static(s)) = &wanted.v6 {
        if s.prefix > 128 {
            return Err(Error::new(format!(
                "refusing {}/{} for {name}: an IPv6 prefix is at most 128",
                s.address, s.prefix
            )));
        }
    }
    Ok(())
}

/// The prefix of the line of every file the agent writes that names the
/// interface it is for (`# interface: <name> <mac>`): how the agent finds
/// its files again.
const INTERFACE_LINE: &str = "# interface: ";

/// The comment at the top of every file the agent writes: who wrote it,
/// for which interface, and when it goes away.
fn header(name: &str, mac: &str, removed_when: &str) -> String {
    format!(
        "# Written by xen-guest-agent from dom0's static IP setting for the interface\n\
         # {name}, MAC {mac}.\n\
         # Removed when {removed_when};\n\
         # rewritten at dom0's next setting: edits here do not last.\n\
         {INTERFACE_LINE}{name} {mac}\n"
    )
}

/// The MAC address a file of the agent's is for, from its header (the
/// comment lines it starts with).
fn header_mac(text: &str) -> Option<&str> {
    let line = text
        .lines()
        .take_while(|l| l.starts_with('#'))
        .find_map(|l| l.strip_prefix(INTERFACE_LINE))?;
    line.split_whitespace().nth(1)
}

/// A path as it may appear in a comment: control characters (a newline
/// would end the comment) shown as `?`.
fn comment_safe(path: &Path) -> String {
    path.display()
        .to_string()
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// The text of a file, or `None` when there is none.
fn read_optional(path: &Path) -> Result<Option<String>, Error> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(format!("cannot read {}", path.display()), e)),
    }
}

/// The names in a directory that are UTF-8, sorted; none when it does not
/// exist.
fn list_dir(dir: &Path) -> Result<Vec<String>, Error> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(format!("cannot list {}", dir.display()), e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(format!("cannot list {}", dir.display()), e))?;
        if let Ok(name) = entry.file_name().into_string() {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// The error of a failed write in `dir`, with what to do when the agent's
/// unit keeps the file system read-only.
fn write_error(what: String, dir: &Path, e: io::Error) -> Error {
    let read_only = e.raw_os_error() == Some(libc::EROFS);
    let err = Error::io(what, e);
    if read_only {
        err.hint(format!(
            "add {} to ReadWritePaths= of the agent's systemd unit",
            dir.display()
        ))
    } else {
        err
    }
}

/// Replace `path` with `contents` atomically (a temp file in the same
/// directory, fsync, rename, fsync of the directory), mode 0644, creating
/// missing directories 0755. Returns whether anything changed: a file that
/// already holds `contents` with that mode is left alone.
pub(crate) fn write_atomic(path: &Path, contents: &str) -> Result<bool, Error> {
    write_atomic_mode(path, contents, 0o644)
}

/// [`write_atomic`] with the file mode `mode` (regardless of the umask).
pub(crate) fn write_atomic_mode(path: &Path, contents: &str, mode: u32) -> Result<bool, Error> {
    let same_mode = fs::symlink_metadata(path)
        .is_ok_and(|m| m.file_type().is_file() && m.permissions().mode() & 0o7777 == mode);
    if same_mode {
        if let Ok(old) = fs::read(path) {
            if old == contents.as_bytes() {
                return Ok(false);
            }
        }
    }
    let (Some(dir), Some(file_name)) = (path.parent(), path.file_name()) else {
        return Err(Error::new(format!(
            "cannot write {}: no file name",
            path.display()
        )));
    };
    create_dirs(dir)?;
    // A dot file: neither networkd (`*.network`, `*.conf`), ifupdown
    // (`source dir/*`, `source-directory`) nor NetworkManager (hidden
    // files) reads it while it exists.
    let tmp = dir.join(format!(".{}.xga-tmp", file_name.to_string_lossy()));
    let _ = fs::remove_file(&tmp);
    let written = (|| -> io::Result<()> {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        // The mode regardless of the umask.
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.write_all(contents.as_bytes())?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(write_error(
            format!("cannot write {}", path.display()),
            dir,
            e,
        ));
    }
    sync_dir(dir)?;
    Ok(true)
}

/// Create `dir` and its missing parents, mode 0755 each.
fn create_dirs(dir: &Path) -> Result<(), Error> {
    let missing: Vec<&Path> = dir.ancestors().take_while(|d| !d.exists()).collect();
    for d in missing.into_iter().rev() {
        let parent = d.parent().unwrap_or(Path::new("/"));
        let created = fs::DirBuilder::new()
            .mode(0o755)
            .create(d)
            .and_then(|()| fs::set_permissions(d, fs::Permissions::from_mode(0o755)));
        match created {
            Ok(()) => sync_dir(parent)?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(write_error(
                    format!("cannot create {}", d.display()),
                    parent,
                    e,
                ))
            }
        }
    }
    Ok(())
}

/// Make a directory's entries durable (after a rename, a creation or a
/// removal in it).
fn sync_dir(dir: &Path) -> Result<(), Error> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(format!("cannot sync {}", dir.display()), e))
}

/// Remove the file `path`; whether there was one.
fn remove(path: &Path) -> Result<bool, Error> {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => {
            let dir = path.parent().unwrap_or(Path::new("/"));
            return Err(write_error(
                format!("cannot remove {}", path.display()),
                dir,
                e,
            ));
        }
    }
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(true)
}
