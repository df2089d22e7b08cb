//! nova's `injectfile` command: a file written into the guest, its value
//! the base64 of `<path>,<contents>` (split at the first comma: a path
//! has none, the contents may).
//!
//! Only a path the administrator allowed is written (the caller owns the
//! list; [`AUTHORIZED_KEYS`] is the expected default), and only through
//! real directories: every existing component is opened without following
//! a symbolic link, from the root down (`openat`), so a link planted in
//! `~/.ssh` cannot redirect the write. The file is replaced atomically (a
//! temporary file in the same directory, renamed over it) with the old
//! one's mode and owner, and the old one is kept as `<name>.<seconds>.bak`.
//!
//! Blocking (file system calls): call it from `spawn_blocking`.

use super::fault;
#[cfg(test)]
use super::FAULT;
use std::ffi::{CStr, CString, OsStr};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use base64ct::{Base64, Encoding};

/// The path expected in the caller's allowed list by default: root's SSH
/// keys, what nova's injected files are for.
pub const AUTHORIZED_KEYS: &str = "/root/.ssh/authorized_keys";

/// Largest contents written: far above any key file, it bounds what is
/// decoded into memory.
pub const MAX_CONTENTS: usize = 1 << 20;

/// Longest path (`PATH_MAX` less its NUL) and component (`NAME_MAX`).
const MAX_PATH: usize = 4095;
const MAX_NAME: usize = 255;

/// A directory created on the way: only its owner (the agent's user,
/// root) enters it, as sshd wants for `~/.ssh`.
const DIR_MODE: u32 = 0o700;

/// A new file's mode (an old file's is kept).
const FILE_MODE: u32 = 0o600;

/// `st_mode`'s file types, the same on Linux and FreeBSD.
const S_IFMT: u32 = 0o170_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFREG: u32 = 0o100_000;
const S_IFDIR: u32 = 0o040_000;

/// What was done, for the answer and the audit line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written {
    /// The file written, under the root.
    pub path: PathBuf,
    /// The old file under its backup name, when there was one.
    pub backup: Option<PathBuf>,
    /// Directories created on the way (mode 0700), outermost first.
    pub created: Vec<PathBuf>,
}

/// Why the file was not written.
#[derive(Debug)]
pub enum InjectError {
    /// The value is not standard, padded base64.
    NotBase64,
    /// The decoded value has no comma between the path and the contents.
    NoComma,
    /// The path is not absolute and lexically normal.
    BadPath {
        /// The path as sent (lossy UTF-8).
        path: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The contents (or the whole value) are over [`MAX_CONTENTS`].
    TooLarge {
        /// Their length in bytes (of the value when still encoded).
        len: usize,
    },
    /// The path is not in the allowed list.
    NotAllowed {
        /// The path asked for.
        path: PathBuf,
    },
    /// An existing component of the path is a symbolic link.
    Symlink {
        /// The link, under the root.
        path: PathBuf,
    },
    /// An existing component before the last is not a directory.
    NotDirectory {
        /// It, under the root.
        path: PathBuf,
    },
    /// The file exists but is not a regular file.
    NotFile {
        /// It, under the root.
        path: PathBuf,
    },
    /// A system call failed.
    Io {
        /// What was being done (`cannot create`).
        what: &'static str,
        /// On which file or directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

impl fmt::Display for InjectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InjectError::NotBase64 => f.write_str(
                "injectfile: the value is not base64 (standard alphabet, padded); nothing was \
                 written, send base64 of \"<path>,<contents>\"",
            ),
            InjectError::NoComma => f.write_str(
                "injectfile: the decoded value has no comma; nothing was written, send base64 \
                 of \"<path>,<contents>\"",
            ),
            InjectError::BadPath { path, why } => write!(
                f,
                "injectfile: refused the path {path:?}: {why}; nothing was written, send an \
                 absolute path without '.', '..' or empty components"
            ),
            InjectError::TooLarge { len } => write!(
                f,
                "injectfile: {len} bytes, more than the {MAX_CONTENTS} written; nothing was \
                 written, send a smaller file"
            ),
            InjectError::NotAllowed { path } => write!(
                f,
                "injectfile: {} is not a path the agent may write; nothing was written, the \
                 guest's administrator can allow it",
                path.display()
            ),
            InjectError::Symlink { path } => write!(
                f,
                "injectfile: {} is a symbolic link, not followed; nothing was written, replace \
                 it by a real directory or file",
                path.display()
            ),
            InjectError::NotDirectory { path } => write!(
                f,
                "injectfile: {} is not a directory; nothing was written, remove or rename it",
                path.display()
            ),
            InjectError::NotFile { path } => write!(
                f,
                "injectfile: {} is not a regular file; nothing was written, remove or rename it",
                path.display()
            ),
            InjectError::Io { what, path, source } => {
                write!(f, "injectfile: {what} {}: {source}", path.display())?;
                if source.raw_os_error() == Some(libc::EROFS) {
                    f.write_str(
                        "; make the directory writable for the agent (ReadWritePaths= of its \
                         unit)",
                    )?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for InjectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            InjectError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The path and contents of an `injectfile` value (base64 of
/// `<path>,<contents>`), checked: an absolute, lexically normal path
/// and at most [`MAX_CONTENTS`] bytes (empty contents are a valid file).
pub fn parse(b64: &str) -> Result<(PathBuf, Vec<u8>), InjectError> {
    let b64 = b64.trim_matches(|c: char| c.is_ascii_whitespace());
    // Bounded before decoding: the longest path, the comma, the contents.
    if b64.len() > (MAX_PATH + 1 + MAX_CONTENTS).div_ceil(3) * 4 {
        return Err(InjectError::TooLarge { len: b64.len() });
    }
    let mut buf = vec![0u8; b64.len() / 4 * 3 + 3];
    let value = Base64::decode(b64, &mut buf).map_err(|_| InjectError::NotBase64)?;
    let comma = value
        .iter()
        .position(|&b| b == b',')
        .ok_or(InjectError::NoComma)?;
    let (path, contents) = (&value[..comma], &value[comma + 1..]);
    check_path(path).map_err(|why| InjectError::BadPath {
        path: String::from_utf8_lossy(path).into_owned(),
        why,
    })?;
    if contents.len() > MAX_CONTENTS {
        return Err(InjectError::TooLarge {
            len: contents.len(),
        });
    }
    Ok((PathBuf::from(OsStr::from_bytes(path)), contents.to_vec()))
}

/// Why `path` is not absolute and lexically normal, if it is not.
fn check_path(path: &[u8]) -> Result<(), &'static str> {
    if path.is_empty() {
        return Err("it is empty");
    }
    if path.contains(&0) {
        return Err("it holds a NUL byte");
    }
    let Some(rest) = path.strip_prefix(b"/") else {
        return Err("it is relative");
    };
    if path.len() > MAX_PATH {
        return Err("it is longer than PATH_MAX");
    }
    for component in rest.split(|&b| b == b'/') {
        match component {
            b"" => return Err("it has an empty component ('//', a trailing '/', or no name)"),
            b"." | b".." => return Err("it has a '.' or '..' component"),
            c if c.len() > MAX_NAME => return Err("a component is longer than NAME_MAX"),
            _ => {}
        }
    }
    Ok(())
}

/// `--inject-path`: each a path [`parse`] would take from a request
/// (absolute, no `.`, `..`, `//` or trailing `/`), or the agent refuses to
/// start, saying which.
pub fn check_allowed(paths: &[PathBuf]) -> Result<(), crate::Error> {
    for p in paths {
        check_path(p.as_os_str().as_bytes()).map_err(|why| {
            crate::Error::new(format!(
                "--inject-path {}: not a path a request can name: {why}",
                p.display()
            ))
            .hint("write it absolute and plain, e.g. /root/.ssh/authorized_keys")
        })?;
    }
    Ok(())
}

/// Write `contents` as `<root><path>` (root: `/`; tests: a temporary
/// directory) when `path` is exactly one of `allowed`, through real
/// directories only (missing ones created 0700, owned by the agent's user),
/// atomically, with the old file's mode and owner (else 0600) and the old
/// file kept as `<name>.<unix seconds>.bak` (a hard link made before the
/// rename: the old file stays in place, readable by sshd, until the
/// rename replaces it at once). On an error the file is as it was.
pub fn write(
    root: &Path,
    allowed: &[PathBuf],
    path: &Path,
    contents: &[u8],
) -> Result<Written, InjectError> {
    let bytes = path.as_os_str().as_bytes();
    check_path(bytes).map_err(|why| InjectError::BadPath {
        path: path.to_string_lossy().into_owned(),
        why,
    })?;
    if contents.len() > MAX_CONTENTS {
        return Err(InjectError::TooLarge {
            len: contents.len(),
        });
    }
    if !allowed.iter().any(|a| a.as_os_str() == path.as_os_str()) {
        return Err(InjectError::NotAllowed {
            path: path.to_path_buf(),
        });
    }
    let mut components: Vec<&[u8]> = bytes[1..].split(|&b| b == b'/').collect();
    let Some(name) = components.pop() else {
        return Err(InjectError::BadPath {
            path: path.to_string_lossy().into_owned(),
            why: "it has no file name",
        });
    };

    let mut here = root.to_path_buf();
    let mut dir = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(root)
        .map_err(|source| io_error("cannot open the root directory", &here, source))?;
    let mut created = Vec::new();
    for component in components {
        let c = c_name(component, path)?;
        here.push(OsStr::from_bytes(component));
        dir = match open_dir(&dir, &c) {
            Ok(d) => d,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                let d = make_dir(&dir, &c, &here)?;
                created.push(here.clone());
                d
            }
            Err(e) => return Err(refusal(&dir, &c, &here, e, "cannot open the directory")),
        };
    }

    let c = c_name(name, path)?;
    here.push(OsStr::from_bytes(name));
    let old = match lstat_at(&dir, &c) {
        Ok(st) => match mode_of(&st) & S_IFMT {
            S_IFREG => Some(st),
            S_IFLNK => return Err(InjectError::Symlink { path: here }),
            _ => return Err(InjectError::NotFile { path: here }),
        },
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => None,
        Err(e) => return Err(io_error("cannot inspect", &here, e)),
    };

    let (tmp_name, mut file) = create_temp(&dir, &here)?;
    let tmp = Unlink {
        dir: &dir,
        name: tmp_name,
    };
    let shown_tmp = here.with_file_name(OsStr::from_bytes(tmp.name.to_bytes()));
    file.write_all(contents)
        .map_err(|e| io_error("cannot write", &shown_tmp, e))?;
    if let Some(st) = &old {
        std::os::unix::fs::fchown(&file, Some(st.st_uid), Some(st.st_gid))
            .map_err(|e| io_error("cannot give the old file's owner to", &shown_tmp, e))?;
    }
    let mode = old.as_ref().map_or(FILE_MODE, |st| mode_of(st) & 0o7777);
    file.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(|e| io_error("cannot set the mode of", &shown_tmp, e))?;
    file.sync_all()
        .map_err(|e| io_error("cannot sync", &shown_tmp, e))?;
    drop(file);

    let backup = match old {
        Some(_) => Some(link_backup(&dir, &c, name, &here)?),
        None => None,
    };
    let renamed = fault("rename").and_then(|()| {
        // SAFETY: two NUL-terminated names relative to an open directory.
        cvt(unsafe {
            libc::renameat(
                dir.as_raw_fd(),
                tmp.name.as_ptr(),
                dir.as_raw_fd(),
                c.as_ptr(),
            )
        })
    });
    if let Err(e) = renamed {
        return Err(io_error("cannot rename the new file over", &here, e));
    }
    std::mem::forget(tmp);
    let backup = backup.map(|b| {
        let shown = here.with_file_name(OsStr::from_bytes(b.name.to_bytes()));
        std::mem::forget(b);
        shown
    });
    dir.sync_all().map_err(|e| {
        io_error(
            "the file is written, but cannot sync its directory",
            here.parent().unwrap_or(root),
            e,
        )
    })?;
    Ok(Written {
        path: here,
        backup,
        created,
    })
}

fn io_error(what: &'static str, path: &Path, source: io::Error) -> InjectError {
    InjectError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// A component as a C string (checked to hold no NUL).
fn c_name(component: &[u8], path: &Path) -> Result<CString, InjectError> {
    CString::new(component).map_err(|_| InjectError::BadPath {
        path: path.to_string_lossy().into_owned(),
        why: "it holds a NUL byte",
    })
}

/// `-1` to the call's error.
fn cvt(r: libc::c_int) -> io::Result<()> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `openat` relative to `dir`, close-on-exec.
fn open_at(dir: &File, name: &CStr, flags: libc::c_int, mode: u32) -> io::Result<File> {
    let mode: libc::c_uint = mode;
    // SAFETY: a NUL-terminated name relative to an open directory; the
    // mode is read only with O_CREAT.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            flags | libc::O_CLOEXEC,
            mode,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new descriptor, owned by nothing else.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// The directory `name` in `dir`, never through a symbolic link.
fn open_dir(dir: &File, name: &CStr) -> io::Result<File> {
    open_at(
        dir,
        name,
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
        0,
    )
}

/// `lstat` of `name` in `dir`.
fn lstat_at(dir: &File, name: &CStr) -> io::Result<libc::stat> {
    // SAFETY: a plain C struct, filled by the call.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated name relative to an open directory, and a
    // stat buffer that outlives the call.
    cvt(unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            name.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })?;
    Ok(st)
}

/// `st_mode` as a `u32` (a `u16` on FreeBSD, a `u32` on Linux).
#[allow(clippy::unnecessary_cast)]
fn mode_of(st: &libc::stat) -> u32 {
    st.st_mode as u32
}

/// Why `name` in `dir` could not be opened as a directory: a symbolic
/// link or another file when it is one, else the call's error.
fn refusal(dir: &File, name: &CStr, path: &Path, e: io::Error, what: &'static str) -> InjectError {
    match lstat_at(dir, name).map(|st| mode_of(&st) & S_IFMT) {
        Ok(S_IFLNK) => InjectError::Symlink {
            path: path.to_path_buf(),
        },
        Ok(t) if t != S_IFDIR => InjectError::NotDirectory {
            path: path.to_path_buf(),
        },
        _ => io_error(what, path, e),
    }
}

/// Create the directory `name` in `dir` (mode 0700 whatever the umask),
/// made durable, and open it.
fn make_dir(dir: &File, name: &CStr, path: &Path) -> Result<File, InjectError> {
    // SAFETY: a NUL-terminated name relative to an open directory.
    match cvt(unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), 0o700) }) {
        Ok(()) => {}
        // Made meanwhile: opened below like any other.
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
        Err(e) => return Err(io_error("cannot create the directory", path, e)),
    }
    let new = open_dir(dir, name).map_err(|e| refusal(dir, name, path, e, "cannot open"))?;
    new.set_permissions(fs::Permissions::from_mode(DIR_MODE))
        .map_err(|e| io_error("cannot set the mode of", path, e))?;
    dir.sync_all()
        .map_err(|e| io_error("cannot sync the parent of", path, e))?;
    Ok(new)
}

/// A new temporary file in `dir` (0600, never through a link), its name.
fn create_temp(dir: &File, target: &Path) -> Result<(CString, File), InjectError> {
    let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW;
    let mut last = None;
    for n in 0..100 {
        let name = format!(".xga-inject-{}-{n}.tmp", std::process::id());
        let c = c_name(name.as_bytes(), target)?;
        match open_at(dir, &c, flags, FILE_MODE) {
            Ok(f) => return Ok((c, f)),
            // Left by an earlier run that died: another name.
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => last = Some(e),
            Err(e) => return Err(io_error("cannot create a temporary file beside", target, e)),
        }
    }
    Err(io_error(
        "cannot create a temporary file beside",
        target,
        last.unwrap_or_else(|| io::Error::from_raw_os_error(libc::EEXIST)),
    ))
}

/// A hard link to the file `name` as `<name>.<unix seconds>.bak` (then
/// `.1.bak`, `.2.bak`... within the same second), removed on drop unless
/// forgotten.
fn link_backup<'a>(
    dir: &'a File,
    c: &CStr,
    name: &[u8],
    target: &Path,
) -> Result<Unlink<'a>, InjectError> {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut last = None;
    for n in 0..100 {
        let mut backup = name.to_vec();
        backup.extend_from_slice(
            if n == 0 {
                format!(".{secs}.bak")
            } else {
                format!(".{secs}.{n}.bak")
            }
            .as_bytes(),
        );
        let b = c_name(&backup, target)?;
        // SAFETY: two NUL-terminated names relative to an open directory;
        // flags 0: a link to the entry itself, never followed.
        let linked = cvt(unsafe {
            libc::linkat(dir.as_raw_fd(), c.as_ptr(), dir.as_raw_fd(), b.as_ptr(), 0)
        });
        match linked {
            Ok(()) => return Ok(Unlink { dir, name: b }),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => last = Some(e),
            Err(e) => return Err(io_error("cannot keep a backup (hard link) of", target, e)),
        }
    }
    Err(io_error(
        "cannot keep a backup (hard link) of",
        target,
        last.unwrap_or_else(|| io::Error::from_raw_os_error(libc::EEXIST)),
    ))
}

/// A name in a directory, removed on drop unless forgotten: no temporary
/// file or stray backup is left after an error.
struct Unlink<'a> {
    dir: &'a File,
    name: CString,
}

impl Drop for Unlink<'_> {
    fn drop(&mut self) {
        // SAFETY: a NUL-terminated name relative to an open directory.
        unsafe { libc::unlinkat(self.dir.as_raw_fd(), self.name.as_ptr(), 0) };
    }
}

#[cfg(test)]
mod tests;
