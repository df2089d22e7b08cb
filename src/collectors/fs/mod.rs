//! Mounted filesystems and their space (std `data/volumes`, rfc `data/fs`):
//! what `df` shows, from the mount table and `statvfs(3)`, never a forked
//! program.
//!
//! Mounts and unmounts are seen at once where the kernel signals them
//! (Linux: `/proc/self/mountinfo` wakes `poll`); free space is sampled on
//! the memory timer's beat, so an idle agent wakes no more often than
//! before, and an event is sent only when something changed. Without a
//! signal (FreeBSD) the mount table is read again at every beat.
//!
//! What is reported ([`select`]): one entry per filesystem (bind mounts and
//! btrfs subvolumes of one filesystem are one), at the mount point that is
//! visible (a mount covered by another at the same place is not reachable,
//! its space could not be measured), without pseudo filesystems (proc,
//! sysfs, cgroup...), container layers (overlay), read-only images
//! (squashfs) and, with `--filesystems disks` (the default), memory ones
//! (tmpfs). Never network or FUSE filesystems: `statvfs` on a hard NFS
//! mount whose server is gone, or on a stuck FUSE daemon, blocks for ever,
//! and the agent has one thread.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use futures::stream;
use tokio::sync::watch;

use super::EventStream;
use crate::state::{Event, Filesystem};

use crate::sys::ChangeWatch as Watch;

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub use linux::parse_mountinfo;
#[cfg(target_os = "linux")]
use linux::{mounts, MOUNTINFO as SIGNAL};

#[cfg(not(target_os = "linux"))]
mod other;
#[cfg(not(target_os = "linux"))]
use other::{mounts, SIGNAL};

/// Which filesystems are reported (`--filesystems`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    /// Those that store data on a device.
    Disks,
    /// Also memory filesystems (tmpfs, ramfs): every local one.
    Local,
}

/// One line of the mount table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    /// The filesystem's identity (Linux: the `major:minor` of its
    /// superblock), shared by every mount of it.
    pub dev: (u64, u64),
    /// Which directory of the filesystem is mounted (`/` but for binds).
    pub root: String,
    /// Where.
    pub mount_point: String,
    /// Filesystem type.
    pub fstype: String,
    /// What is mounted (the device).
    pub source: String,
}

/// Kernel and system filesystems that hold no user data (Linux and FreeBSD
/// names), container layers and read-only images.
const PSEUDO: &[&str] = &[
    "autofs",
    "binfmt_misc",
    "bpf",
    "cgroup",
    "cgroup2",
    "configfs",
    "debugfs",
    "devpts",
    "devtmpfs",
    "efivarfs",
    "fusectl",
    "hugetlbfs",
    "mqueue",
    "nsfs",
    "proc",
    "pstore",
    "rpc_pipefs",
    "securityfs",
    "selinuxfs",
    "sysfs",
    "tracefs",
    "xenfs",
    "nfsd",
    "overlay",
    "aufs",
    "squashfs",
    "devfs",
    "fdescfs",
    "procfs",
    "linprocfs",
    "linsysfs",
    "mqueuefs",
    "nullfs",
];

/// Network and userspace filesystems: `statvfs` may block for ever.
const REMOTE: &[&str] = &[
    "nfs",
    "nfs4",
    "cifs",
    "smb3",
    "smbfs",
    "ncpfs",
    "ceph",
    "glusterfs",
    "9p",
    "afs",
    "lustre",
    "davfs",
    "fuse",
    "fuseblk",
    "fusefs",
];

/// Filesystems in memory (`rootfs`: an initramfs kept as the root).
const MEMORY: &[&str] = &["tmpfs", "ramfs", "rootfs"];

/// Whether a filesystem of type `fstype` may be reported under `which`.
fn wanted(fstype: &str, which: Which) -> bool {
    let base = fstype.split('.').next().unwrap_or(fstype);
    if PSEUDO.contains(&base) || REMOTE.contains(&base) {
        return false;
    }
    which == Which::Local || !MEMORY.contains(&base)
}

/// The mounts to measure among the mount table's `entries` (in mount
/// order): only the visible mount at each mount point (the last one), of a
/// wanted type, one per filesystem (the mount of its root directory
/// before a bind of a subdirectory, then the shortest mount point), sorted
/// by mount point.
pub fn select(entries: Vec<Mount>, which: Which) -> Vec<Mount> {
    let mut top: std::collections::BTreeMap<String, Mount> = Default::default();
    for m in entries {
        top.insert(m.mount_point.clone(), m);
    }
    let mut by_dev: std::collections::BTreeMap<(u64, u64), Mount> = Default::default();
    for m in top.into_values().filter(|m| wanted(&m.fstype, which)) {
        let better = |old: &Mount| {
            let rank = |m: &Mount| (m.root != "/", m.mount_point.len());
            rank(&m) < rank(old)
        };
        match by_dev.get(&m.dev) {
            Some(old) if !better(old) => {}
            _ => {
                by_dev.insert(m.dev, m);
            }
        }
    }
    let mut chosen: Vec<Mount> = by_dev.into_values().collect();
    chosen.sort_by(|a, b| a.mount_point.cmp(&b.mount_point));
    chosen
}

/// The space of the filesystem mounted at `path`, or `None` for a
/// filesystem without blocks (a pseudo filesystem `select` did not know).
fn measure(m: &Mount) -> io::Result<Option<Filesystem>> {
    let path = CString::new(Path::new(&m.mount_point).as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in the mount point"))?;
    // SAFETY: a valid C string and a zeroed, writable statvfs.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    #[allow(clippy::unnecessary_cast)] // the field types differ between systems
    let (blocks, free, avail, unit) = (
        st.f_blocks as u64,
        st.f_bfree as u64,
        st.f_bavail as u64,
        st.f_frsize as u64,
    );
    if blocks == 0 {
        return Ok(None);
    }
    Ok(Some(Filesystem {
        mount_point: m.mount_point.clone(),
        fstype: m.fstype.clone(),
        device: m.source.clone(),
        total_bytes: blocks.saturating_mul(unit),
        used_bytes: blocks.saturating_sub(free).saturating_mul(unit),
        available_bytes: avail.saturating_mul(unit),
    }))
}

/// Measures the selected mounts and decides what to log about them.
struct Survey {
    which: Which,
    mounts: Vec<Mount>,
    /// Reading the mount table failed last time (and that was logged).
    table_failing: bool,
    /// The last list sent.
    last: Option<Vec<Filesystem>>,
}

impl Survey {
    /// Read the mount table again; on failure the mounts known stay.
    fn reread(&mut self, table: io::Result<Vec<Mount>>) {
        match table {
            Ok(entries) => {
                if self.table_failing {
                    log::info!("filesystems: the mount table is readable again");
                    self.table_failing = false;
                }
                self.mounts = select(entries, self.which);
            }
            Err(e) if !self.table_failing => {
                self.table_failing = true;
                log::warn!(
                    "filesystems: cannot read the mount table: {e} (logged once until it works again)"
                );
            }
            Err(_) => {}
        }
    }

    /// The filesystems now, when they differ from the last list sent. A
    /// mount that cannot be measured (unmounted meanwhile, not reachable
    /// from the agent's namespace) is left out.
    fn measure(&mut self) -> Option<Vec<Filesystem>> {
        let now: Vec<Filesystem> = self
            .mounts
            .iter()
            .filter_map(|m| match measure(m) {
                Ok(f) => f,
                Err(e) => {
                    log::debug!("filesystems: cannot measure {}: {e}", m.mount_point);
                    None
                }
            })
            .collect();
        if self.last.as_ref() == Some(&now) {
            return None;
        }
        if self.last.as_ref().map(|l| mount_points(l)) != Some(mount_points(&now)) {
            log::info!("filesystems: {}", mount_points(&now).join(" "));
        }
        self.last = Some(now.clone());
        Some(now)
    }
}

fn mount_points(list: &[Filesystem]) -> Vec<&str> {
    list.iter().map(|f| f.mount_point.as_str()).collect()
}

/// The filesystems at once, then after every mount or unmount and at every
/// `beat` (the memory timer) when their space changed; `oneshot`: the first
/// list only. Nothing is read before the stream is first polled.
pub fn stream(which: Which, beat: watch::Receiver<()>, oneshot: bool) -> EventStream {
    let beat = Some(beat);
    let survey = Survey {
        which,
        mounts: Vec::new(),
        table_failing: false,
        last: None,
    };
    Box::pin(stream::unfold(
        (survey, None::<Watch>, beat, true),
        move |(mut survey, mut watch, mut beat, first)| async move {
            if first {
                survey.reread(mounts());
                let now = survey.measure().unwrap_or_default();
                if !oneshot {
                    watch = match Watch::open(SIGNAL) {
                        Ok(w) => Some(w),
                        Err(e) => {
                            log::info!("filesystems: mounts are seen at each sample only ({e})");
                            None
                        }
                    };
                }
                return Some((Event::Filesystems(now), (survey, watch, beat, false)));
            }
            if oneshot {
                return None;
            }
            loop {
                let seen = tokio::select! {
                    r = change_of(&mut watch) => Some(r),
                    () = beat_of(&mut beat) => None,
                };
                let table_changed = match seen {
                    Some(Ok(())) => true,
                    Some(Err(e)) => {
                        log::warn!(
                            "filesystems: mounts are no longer seen at once ({e}); at each sample only"
                        );
                        watch = None;
                        true
                    }
                    // Without a signal, a mount is seen at the next sample.
                    None => watch.is_none(),
                };
                if table_changed {
                    survey.reread(mounts());
                }
                if let Some(now) = survey.measure() {
                    return Some((Event::Filesystems(now), (survey, watch, beat, false)));
                }
            }
        },
    ))
}

/// The next signal of a mount table change; never without a watch.
async fn change_of(watch: &mut Option<Watch>) -> io::Result<()> {
    match watch {
        Some(w) => w.changed().await,
        None => std::future::pending().await,
    }
}

/// The next beat of the memory timer; never once it is gone (only mounts
/// are seen then).
async fn beat_of(beat: &mut Option<watch::Receiver<()>>) {
    if let Some(b) = beat {
        if b.changed().await.is_ok() {
            return;
        }
        *beat = None;
    }
    std::future::pending().await
}

#[cfg(test)]
mod tests;
