//! A user's password set in the shadow file without forking `passwd` or
//! `chpasswd`: what nova's `password` command means (`passwd root`).
//!
//! The edit is the one shadow-utils makes, under the same lock
//! (lckpwdf(3): a record lock on `/etc/.pwd.lock`, waited for at most
//! [`LOCK_WAIT`]): only the user's password (field 2) and date of last
//! change (field 3, days since 1970) are replaced, every other byte of the
//! file is kept. The new file (`/etc/nshadow`, with the old one's mode and
//! owner) is made durable and renamed over the old one, so that a crash
//! leaves one file or the other, never a mix.
//!
//! The hash is SHA-512 crypt (`$6$`, the default 5000 rounds, a
//! 16-character salt from the kernel's random source), which every Linux PAM reads. A
//! locked account (`!` before the hash) is unlocked: `passwd` does the same
//! when it sets a password, and nova's operator asks for a password to log
//! in with.
//!
//! Linux's file: FreeBSD keeps passwords in `/etc/master.passwd` and the
//! databases pwd_mkdb(8) builds from it, which this does not edit.
//!
//! Blocking (the lock is polled): call it from `spawn_blocking`.

use super::fault;
#[cfg(test)]
use super::FAULT;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, TryLockError};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use zeroize::{Zeroize, Zeroizing};

/// How long another program (`passwd`, `vipw`, `useradd`) may hold the
/// lock before the change is given up: lckpwdf(3)'s own bound.
pub const LOCK_WAIT: Duration = Duration::from_secs(15);

/// Largest shadow file edited: far above any real one, it bounds what is
/// read into memory.
pub const MAX_FILE: u64 = 1 << 20;

/// Longest line of the shadow file accepted (a SHA-512 line is about 130
/// bytes): a longer one means the file is not what it seems.
pub const MAX_LINE: usize = 4096;

/// Longest password accepted: the shortest any crypt(3) checks at login,
/// musl's (libxcrypt, on glibc systems, refuses 512 bytes and more, as
/// PAM's answers end there too): a longer one could never log in.
pub const MAX_PASSWORD: usize = 256;

/// lckpwdf(3)'s lock file, the shadow file and the new one, under the root.
const LOCK_FILE: &str = "etc/.pwd.lock";
const SHADOW: &str = "etc/shadow";
const NEW: &str = "etc/nshadow";

/// How often a held lock is tried again.
const POLL: Duration = Duration::from_millis(50);

/// The salt's and the hash's characters (crypt(3)'s base64 alphabet).
const ALPHABET: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Keeps two of the agent's own threads apart: the record lock is the
/// process's, so it would not.
static IN_PROCESS: Mutex<()> = Mutex::new(());

/// Why the password was not set.
#[derive(Debug)]
pub enum ShadowError {
    /// The user name cannot be in a shadow file (empty, or with `:`, a
    /// newline or a NUL).
    BadUser {
        /// The name asked for.
        user: String,
    },
    /// The password is empty, too long, or holds a character no login
    /// prompt takes.
    BadPassword {
        /// What is wrong with it (never the password itself).
        why: &'static str,
    },
    /// Another program held the lock for the whole wait.
    Busy {
        /// The lock file.
        lock: PathBuf,
        /// How long it was waited for.
        waited: Duration,
    },
    /// The user has no line in the shadow file.
    NoUser {
        /// The name asked for.
        user: String,
        /// The shadow file.
        file: PathBuf,
    },
    /// The shadow file cannot be edited safely as it is.
    Malformed {
        /// The shadow file.
        file: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// A system call failed.
    Io {
        /// What was being done (`cannot read`).
        what: &'static str,
        /// On which file.
        file: PathBuf,
        /// Why.
        source: io::Error,
    },
}

impl fmt::Display for ShadowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShadowError::BadUser { user } => write!(
                f,
                "cannot set the password of {user:?}: not a name a shadow file can hold \
                 (empty, or with ':', a newline or a NUL); ask for an existing user"
            ),
            ShadowError::BadPassword { why } => {
                write!(f, "refused the new password: {why}; send another one")
            }
            ShadowError::Busy { lock, waited } => write!(
                f,
                "cannot lock {}: another program (passwd, vipw, useradd...) held it for {} s; \
                 nothing was changed, try again once it is done",
                lock.display(),
                waited.as_secs_f32()
            ),
            ShadowError::NoUser { user, file } => write!(
                f,
                "no user {user:?} in {}: nothing was changed; create the user first or ask for \
                 an existing one",
                file.display()
            ),
            ShadowError::Malformed { file, why } => write!(
                f,
                "cannot edit {}: {why}; nothing was changed, fix the file by hand (vipw -s)",
                file.display()
            ),
            ShadowError::Io { what, file, source } => {
                write!(f, "{what} {}: {source}", file.display())?;
                if source.raw_os_error() == Some(libc::EROFS) {
                    f.write_str(
                        "; make /etc writable for the agent (ReadWritePaths= of its unit)",
                    )?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ShadowError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ShadowError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Set `user`'s password in `<root>/etc/shadow` (root: `/`; tests: a
/// temporary directory) as `passwd` would, waiting at most [`LOCK_WAIT`]
/// for the lock. Nothing is changed on any error. The caller owns
/// `password` and wipes it; the buffers here that held the hash or the
/// file are wiped (zeroize), though not the hashing crate's own stack.
pub fn set_password(root: &Path, user: &str, password: &str) -> Result<(), ShadowError> {
    set_password_waiting(root, user, password, LOCK_WAIT)
}

/// [`set_password`] with the lock's bound as a parameter (tests).
fn set_password_waiting(
    root: &Path,
    user: &str,
    password: &str,
    wait: Duration,
) -> Result<(), ShadowError> {
    check_user(user)?;
    check_password(password)?;
    let hash = hash(password.as_bytes())?;
    let _lock = Lock::take(&root.join(LOCK_FILE), wait)?;
    let shadow = root.join(SHADOW);
    let (old, meta) = read(&shadow)?;
    let new = edit(&old, user, &hash, today()).map_err(|e| match e {
        Edit::NoUser => ShadowError::NoUser {
            user: user.to_string(),
            file: shadow.clone(),
        },
        Edit::Malformed(why) => ShadowError::Malformed {
            file: shadow.clone(),
            why,
        },
    })?;
    replace(root, &shadow, &new, &meta)
}

fn check_user(user: &str) -> Result<(), ShadowError> {
    if user.is_empty() || user.bytes().any(|b| matches!(b, b':' | b'\n' | b'\0')) {
        return Err(ShadowError::BadUser {
            user: user.to_string(),
        });
    }
    Ok(())
}

fn check_password(password: &str) -> Result<(), ShadowError> {
    let why = if password.is_empty() {
        "it is empty (anyone could log in)"
    } else if password.len() > MAX_PASSWORD {
        "it is longer than crypt(3) takes at login (256 bytes: musl's bound)"
    } else if password.bytes().any(|b| matches!(b, b'\0' | b'\n' | b'\r')) {
        "it holds a NUL, newline or carriage return, which no login prompt takes"
    } else {
        return Ok(());
    };
    Err(ShadowError::BadPassword { why })
}

/// SHA-512 crypt of `password` with a new random salt, in crypt(3)'s
/// format (`$6$<salt>$<86 characters>`).
fn hash(password: &[u8]) -> Result<Zeroizing<String>, ShadowError> {
    let mut random = Zeroizing::new([0u8; 16]);
    crate::sys::random_bytes(&mut random[..]).map_err(|source| ShadowError::Io {
        what: "cannot draw a salt from",
        file: PathBuf::from("the kernel's random source"),
        source,
    })?;
    // 256 is a multiple of 64: each character is uniform.
    let salt: Zeroizing<Vec<u8>> = Zeroizing::new(
        random
            .iter()
            .map(|b| ALPHABET[usize::from(b & 63)])
            .collect(),
    );
    hash_with_salt(password, &salt)
}

/// SHA-512 crypt of `password` with `salt` (16 characters of
/// [`ALPHABET`]), in crypt(3)'s format.
fn hash_with_salt(password: &[u8], salt: &[u8]) -> Result<Zeroizing<String>, ShadowError> {
    // Refused only for a salt over 16 bytes or rounds out of range.
    let digest = Zeroizing::new(
        sha_crypt::sha512_crypt(password, salt, &sha_crypt::Sha512Params::default()).map_err(
            |_| ShadowError::BadPassword {
                why: "SHA-512 crypt refused the salt",
            },
        )?,
    );
    let mut out = Zeroizing::new(String::with_capacity(3 + salt.len() + 1 + 86));
    out.push_str("$6$");
    out.extend(salt.iter().map(|&b| char::from(b)));
    out.push('$');
    // crypt(3)'s order: byte i with i + 21 and i + 42, rotated by i mod 3,
    // as a 24-bit number written low 6 bits first; then the last byte.
    for i in 0..21 {
        let mut s = [digest[i], digest[i + 21], digest[i + 42]];
        let r = i % 3;
        let mut w =
            (u32::from(s[r]) << 16) | (u32::from(s[(r + 1) % 3]) << 8) | u32::from(s[(r + 2) % 3]);
        for _ in 0..4 {
            out.push(char::from(ALPHABET[(w & 63) as usize]));
            w >>= 6;
        }
        w.zeroize();
        s.zeroize();
    }
    let mut w = u32::from(digest[63]);
    for _ in 0..2 {
        out.push(char::from(ALPHABET[(w & 63) as usize]));
        w >>= 6;
    }
    Ok(out)
}

/// Days since 1970 for field 3; `None` (the field left empty, aging off,
/// as `passwd` does) when the clock says 1970-01-01 or before: 0 would
/// mean "change the password at the next login".
fn today() -> Option<u64> {
    let days = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs() / 86_400;
    (days > 0).then_some(days)
}

/// lckpwdf(3)'s lock, held until dropped.
struct Lock {
    file: File,
    _in_process: std::sync::MutexGuard<'static, ()>,
}

impl Lock {
    /// Take the lock at `path` (created 0600), trying every [`POLL`] for
    /// at most `wait`, never blocking longer.
    fn take(path: &Path, wait: Duration) -> Result<Lock, ShadowError> {
        let deadline = Instant::now() + wait;
        let busy = || ShadowError::Busy {
            lock: path.to_path_buf(),
            waited: wait,
        };
        let in_process = loop {
            match IN_PROCESS.try_lock() {
                Ok(guard) => break guard,
                Err(TryLockError::Poisoned(p)) => break p.into_inner(),
                Err(TryLockError::WouldBlock) => {}
            }
            pause(deadline).ok_or_else(busy)?;
        };
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .map_err(|source| ShadowError::Io {
                what: "cannot open the lock file",
                file: path.to_path_buf(),
                source,
            })?;
        loop {
            match record_lock(&file, true) {
                Ok(()) => {
                    return Ok(Lock {
                        file,
                        _in_process: in_process,
                    })
                }
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::EAGAIN | libc::EACCES | libc::EINTR)
                    ) => {}
                Err(source) => {
                    return Err(ShadowError::Io {
                        what: "cannot lock",
                        file: path.to_path_buf(),
                        source,
                    })
                }
            }
            pause(deadline).ok_or_else(busy)?;
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Closing the file releases it too; this says so at once.
        let _ = record_lock(&self.file, false);
    }
}

/// Sleep one [`POLL`] (less at the end); `None` once `deadline` passed.
fn pause(deadline: Instant) -> Option<()> {
    let left = deadline.checked_duration_since(Instant::now())?;
    if left.is_zero() {
        return None;
    }
    thread::sleep(POLL.min(left));
    Some(())
}

/// `F_SETLK` of a write lock (or an unlock) on the whole file: lckpwdf(3)'s
/// lock, without its `F_SETLKW` and alarm.
// F_WRLCK and F_UNLCK are c_int on Linux, c_short on FreeBSD.
#[allow(clippy::unnecessary_cast)]
fn record_lock(file: &File, lock: bool) -> io::Result<()> {
    // SAFETY: a plain C struct, all zeroes is valid (start 0, length 0:
    // the whole file).
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = if lock { libc::F_WRLCK } else { libc::F_UNLCK } as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    // SAFETY: `fl` is a valid flock for F_SETLK and outlives the call.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLK, &fl) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The shadow file's bytes and metadata (a regular file, at most
/// [`MAX_FILE`]).
fn read(shadow: &Path) -> Result<(Zeroizing<Vec<u8>>, fs::Metadata), ShadowError> {
    let io = |what, source| ShadowError::Io {
        what,
        file: shadow.to_path_buf(),
        source,
    };
    let malformed = |why: String| ShadowError::Malformed {
        file: shadow.to_path_buf(),
        why,
    };
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(shadow)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP | libc::EMLINK) => {
                malformed("it is a symbolic link (replacing it would break the link)".into())
            }
            _ => io("cannot open", e),
        })?;
    let meta = file.metadata().map_err(|e| io("cannot stat", e))?;
    if !meta.is_file() {
        return Err(malformed("not a regular file".into()));
    }
    if meta.len() > MAX_FILE {
        return Err(malformed(format!(
            "{} bytes, more than the {MAX_FILE} edited",
            meta.len()
        )));
    }
    // One buffer of the announced size and a byte more, wiped at the end:
    // no growth leaves copies behind.
    let len = meta.len() as usize;
    let mut buf = Zeroizing::new(vec![0u8; len + 1]);
    let mut got = 0;
    while got < buf.len() {
        match file.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io("cannot read", e)),
        }
    }
    if got != len {
        return Err(malformed(
            "it changed while it was read (a program that ignores the lock?)".into(),
        ));
    }
    buf.truncate(len);
    Ok((buf, meta))
}

/// Why the file was not edited.
#[derive(Debug, PartialEq, Eq)]
enum Edit {
    NoUser,
    Malformed(String),
}

/// `old` with the first line of `user` given `hash` (field 2) and `today`
/// (field 3, when the line has one: the old two-field form stays so);
/// every other byte as it was.
fn edit(
    old: &[u8],
    user: &str,
    hash: &str,
    today: Option<u64>,
) -> Result<Zeroizing<Vec<u8>>, Edit> {
    let mut new = Zeroizing::new(Vec::with_capacity(old.len() + hash.len() + 32));
    let mut found = false;
    for (n, line) in old.split(|&b| b == b'\n').enumerate() {
        if n > 0 {
            new.push(b'\n');
        }
        if line.len() > MAX_LINE {
            return Err(Edit::Malformed(format!(
                "line {} is {} bytes long, more than {MAX_LINE}",
                n + 1,
                line.len()
            )));
        }
        let mut fields = line.split(|&b| b == b':');
        if found || fields.next() != Some(user.as_bytes()) {
            new.extend_from_slice(line);
            continue;
        }
        found = true;
        if fields.next().is_none() {
            return Err(Edit::Malformed(format!(
                "line {} (user {user:?}) has no password field",
                n + 1
            )));
        }
        new.extend_from_slice(user.as_bytes());
        new.push(b':');
        new.extend_from_slice(hash.as_bytes());
        if fields.next().is_some() {
            new.push(b':');
            if let Some(days) = today {
                new.extend_from_slice(days.to_string().as_bytes());
            }
            for field in fields {
                new.push(b':');
                new.extend_from_slice(field);
            }
        }
    }
    if found {
        Ok(new)
    } else {
        Err(Edit::NoUser)
    }
}

/// Write `new` as `<root>/etc/nshadow` (the old file's mode and owner),
/// make it durable, rename it over `shadow`, make the rename durable. On
/// an error nshadow is removed and shadow is as it was.
fn replace(root: &Path, shadow: &Path, new: &[u8], meta: &fs::Metadata) -> Result<(), ShadowError> {
    let tmp = root.join(NEW);
    let io = |what, file: &Path, source| ShadowError::Io {
        what,
        file: file.to_path_buf(),
        source,
    };
    // Left by a writer that died: the lock is ours, nobody writes it now.
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io("cannot remove the stale", &tmp, e)),
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)
        .map_err(|e| io("cannot create", &tmp, e))?;
    let guard = RemoveOnDrop(&tmp);
    file.write_all(new)
        .and_then(|()| fault("write"))
        .map_err(|e| io("cannot write", &tmp, e))?;
    // The owner first: a chown clears set-id bits a chmod would have set.
    std::os::unix::fs::fchown(&file, Some(meta.uid()), Some(meta.gid()))
        .map_err(|e| io("cannot give the old owner to", &tmp, e))?;
    file.set_permissions(fs::Permissions::from_mode(meta.mode() & 0o7777))
        .map_err(|e| io("cannot give the old mode to", &tmp, e))?;
    file.sync_all().map_err(|e| io("cannot sync", &tmp, e))?;
    drop(file);
    fault("rename")
        .and_then(|()| fs::rename(&tmp, shadow))
        .map_err(|e| io("cannot rename nshadow over", shadow, e))?;
    std::mem::forget(guard);
    let dir = root.join("etc");
    File::open(&dir).and_then(|d| d.sync_all()).map_err(|e| {
        io(
            "the password is set, but cannot sync the directory",
            &dir,
            e,
        )
    })
}

/// Removes a file unless forgotten: no nshadow is left after an error.
struct RemoveOnDrop<'a>(&'a Path);

impl Drop for RemoveOnDrop<'_> {
    fn drop(&mut self) {
        let _ = fs::remove_file(self.0);
    }
}

#[cfg(test)]
mod tests;
