use super::*;

use std::ffi::{c_char, CStr, CString};
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicUsize, Ordering};

// The system's crypt(3) checks the hashes: libxcrypt on glibc systems
// (libcrypt), musl's own in its libc.
#[cfg_attr(target_env = "gnu", link(name = "crypt"))]
extern "C" {
    fn crypt(key: *const c_char, salt: *const c_char) -> *mut c_char;
}

/// crypt(3)'s hash of `password` with the salt (and parameters) of
/// `setting`; crypt's buffer is shared by the whole process.
fn system_crypt(password: &str, setting: &str) -> Option<String> {
    static CRYPT: Mutex<()> = Mutex::new(());
    let _one = CRYPT.lock().unwrap_or_else(|p| p.into_inner());
    let (key, salt) = (CString::new(password).ok()?, CString::new(setting).ok()?);
    // SAFETY: two NUL-terminated strings; the result is copied out while
    // the lock keeps other threads off crypt's static buffer.
    let out = unsafe { crypt(key.as_ptr(), salt.as_ptr()) };
    if out.is_null() {
        return None;
    }
    // SAFETY: crypt returns a NUL-terminated string.
    let out = unsafe { CStr::from_ptr(out) }.to_str().ok()?.to_string();
    // Failures: NULL, or "*0"/"*1" (libxcrypt), never a `$6$` string.
    out.starts_with("$6$").then_some(out)
}

/// Whether `hash` is SHA-512 crypt with a 16-character salt, the default
/// rounds, and crypt(3) finds `password` in it.
fn verifies(hash: &str, password: &str) -> bool {
    let parts: Vec<&str> = hash.split('$').collect();
    parts.len() == 4
        && parts[0].is_empty()
        && parts[1] == "6"
        && parts[2].len() == 16
        && parts[2].bytes().all(|b| ALPHABET.contains(&b))
        && parts[3].len() == 86
        && system_crypt(password, hash).as_deref() == Some(hash)
}

struct Root(PathBuf);

impl Root {
    fn new(shadow: &str) -> Root {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "xga-shadow-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("etc")).unwrap();
        fs::write(dir.join(SHADOW), shadow).unwrap();
        Root(dir)
    }

    fn shadow(&self) -> String {
        fs::read_to_string(self.0.join(SHADOW)).unwrap()
    }

    /// Field 2 of `user`'s line.
    fn hash_of(&self, user: &str) -> String {
        let text = self.shadow();
        let line = text
            .lines()
            .find(|l| l.split(':').next() == Some(user))
            .unwrap();
        line.split(':').nth(1).unwrap().to_string()
    }

    fn no_nshadow(&self) -> bool {
        !self.0.join(NEW).exists()
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn days() -> String {
    today().unwrap().to_string()
}

/// `text` with `user`'s fields 2 and 3 as set today with `hash`.
fn expected(text: &str, line: &str, hash: &str, with_date: bool) -> String {
    let mut fields: Vec<String> = line.split(':').map(String::from).collect();
    fields[1] = hash.to_string();
    if with_date {
        fields[2] = days();
    }
    text.replacen(line, &fields.join(":"), 1)
}

const DEBIAN: &str = "\
root:$y$j9T$abcdefghijklmnopqrstu.$ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmno:19700:0:99999:7:::
daemon:*:19700:0:99999:7:::
bin:*:19700:0:99999:7:::
sys:*:19700:0:99999:7:::
sync:*:19700:0:99999:7:::
games:*:19700:0:99999:7:::
man:*:19700:0:99999:7:::
nobody:*:19700:0:99999:7:::
systemd-network:!*:19700::::::
messagebus:!:19700::::::
sshd:!:19700::::::
debian:$6$0123456789abcdef$ZYXWVUTSRQPONMLKJIHGFEDCBAzyxwvutsrqponmlkjihgfedcba0123456789./ZYXWVUTSRQPONMLKJIHGFEDCBA:19700:0:99999:7:::
";

#[test]
fn the_hash_is_crypt3s_sha512_for_known_salts() {
    // The reference: the system's crypt(3) with the same salt.
    for (password, salt) in [
        ("Hello world!", "saltstringsaltst"),
        ("a", "................"),
        ("pässwörd with spaces and :colons:", "zzzzzzzzzzzzzzzz"),
        (&"x".repeat(MAX_PASSWORD), "0123456789abcdef"),
    ] {
        let ours = hash_with_salt(password.as_bytes(), salt.as_bytes()).unwrap();
        let theirs = system_crypt(password, &format!("$6${salt}$")).unwrap();
        assert_eq!(*ours, theirs, "{password:?}");
    }
}

#[test]
fn every_password_gets_a_new_salt() {
    let a = hash(b"same").unwrap();
    let b = hash(b"same").unwrap();
    assert_ne!(*a, *b);
    assert!(verifies(&a, "same") && verifies(&b, "same"));
}

#[test]
fn a_typical_debian_file_changes_in_roots_fields_2_and_3_only() {
    let root = Root::new(DEBIAN);
    set_password(&root.0, "root", "n0va-s3cret").unwrap();
    let hash = root.hash_of("root");
    assert!(verifies(&hash, "n0va-s3cret"), "{hash}");
    assert!(!verifies(&hash, "wrong"));
    let line = DEBIAN.lines().next().unwrap();
    assert_eq!(root.shadow(), expected(DEBIAN, line, &hash, true));
    assert!(root.no_nshadow());
    // The lock file is lckpwdf's: 0600.
    let lock = fs::metadata(root.0.join(LOCK_FILE)).unwrap();
    assert_eq!(lock.mode() & 0o7777, 0o600);
}

#[test]
fn another_user_on_the_last_line_without_a_trailing_newline() {
    let text = DEBIAN.trim_end_matches('\n');
    let root = Root::new(text);
    set_password(&root.0, "debian", "pw").unwrap();
    let hash = root.hash_of("debian");
    assert!(verifies(&hash, "pw"));
    let line = text.lines().last().unwrap();
    let after = root.shadow();
    assert_eq!(after, expected(text, line, &hash, true));
    assert!(!after.ends_with('\n'));
}

#[test]
fn locked_accounts_are_unlocked_with_the_new_password() {
    for old in ["!", "!$6$0123456789abcdef$xyz", "*", "!*", ""] {
        let text = format!("# managed by hand\n\nroot:{old}:19000:0:99999:7:::\n\n");
        let root = Root::new(&text);
        set_password(&root.0, "root", "unlocked").unwrap();
        let hash = root.hash_of("root");
        assert!(verifies(&hash, "unlocked"), "{old:?}");
        assert_eq!(
            root.shadow(),
            format!(
                "# managed by hand\n\nroot:{hash}:{}:0:99999:7:::\n\n",
                days()
            )
        );
    }
}

#[test]
fn comments_blank_lines_and_odd_lines_are_kept_byte_for_byte() {
    let text = "# comment: root:not-this\n\n+::::::::\n#root:x:1:2:3:4:5:6:\nroot2:*:1:::::\n\
                weird line without colons\r\nroot:old:1:2:3:4:5:6:7:extra:fields\nroot:second:1::::::\n";
    let root = Root::new(text);
    set_password(&root.0, "root", "pw").unwrap();
    let hash = root.hash_of("root");
    let want = text.replacen(
        "root:old:1:2:3:4:5:6:7:extra:fields",
        &format!("root:{hash}:{}:2:3:4:5:6:7:extra:fields", days()),
        1,
    );
    // Only the first line of the user (the one login reads) changes.
    assert_eq!(root.shadow(), want);
    assert!(verifies(&hash, "pw"));
}

#[test]
fn fewer_fields_than_nine_stay_fewer() {
    for (line, want_date) in [
        ("root:old", false),
        ("root:old:", true),
        ("root:old:1", true),
        ("root:old:1:2:3", true),
    ] {
        let text = format!("bin:*:1:::::\n{line}\n");
        let root = Root::new(&text);
        set_password(&root.0, "root", "pw").unwrap();
        let hash = root.hash_of("root");
        assert_eq!(
            root.shadow(),
            expected(&text, line, &hash, want_date),
            "{line}"
        );
        assert_eq!(
            root.shadow().lines().nth(1).unwrap().split(':').count(),
            line.split(':').count()
        );
    }
}

#[test]
fn a_line_without_a_password_field_is_refused() {
    let root = Root::new("root\n");
    let e = set_password(&root.0, "root", "pw").unwrap_err();
    assert!(matches!(e, ShadowError::Malformed { .. }), "{e}");
    assert!(e.to_string().contains("no password field"), "{e}");
    assert_eq!(root.shadow(), "root\n");
    assert!(root.no_nshadow());
}

#[test]
fn an_absent_user_is_an_error_and_the_file_is_untouched() {
    let root = Root::new(DEBIAN);
    let before = fs::metadata(root.0.join(SHADOW)).unwrap();
    for user in ["alice", "roo", "root:", "oot"] {
        let e = set_password(&root.0, user, "pw").unwrap_err();
        if user.contains(':') {
            assert!(matches!(e, ShadowError::BadUser { .. }), "{e}");
        } else {
            assert!(matches!(e, ShadowError::NoUser { .. }), "{e}");
            assert!(e.to_string().contains("/etc/shadow"), "{e}");
        }
    }
    assert_eq!(root.shadow(), DEBIAN);
    let after = fs::metadata(root.0.join(SHADOW)).unwrap();
    assert_eq!(before.ino(), after.ino());
    assert!(root.no_nshadow());
}

#[test]
fn bad_users_and_passwords_are_refused_before_anything_is_read() {
    let root = Root::new(DEBIAN);
    for user in ["", "a:b", "a\nb", "a\0b"] {
        let e = set_password(&root.0, user, "pw").unwrap_err();
        assert!(matches!(e, ShadowError::BadUser { .. }), "{user:?}: {e}");
    }
    let long = "p".repeat(MAX_PASSWORD + 1);
    for password in ["", "a\nb", "trailing\n", "a\rb", "a\0b", &long] {
        let e = set_password(&root.0, "root", password).unwrap_err();
        assert!(matches!(e, ShadowError::BadPassword { .. }), "{e}");
        assert!(!e.to_string().contains(password) || password.is_empty());
    }
    assert_eq!(root.shadow(), DEBIAN);
    assert!(!root.0.join(LOCK_FILE).exists());
}

#[test]
fn too_long_a_line_or_too_large_a_file_is_refused() {
    let long = format!("root:x:1::::::\nbin:{}:1::::::\n", "y".repeat(MAX_LINE));
    let root = Root::new(&long);
    let e = set_password(&root.0, "root", "pw").unwrap_err();
    assert!(e.to_string().contains("line 2"), "{e}");
    assert_eq!(root.shadow(), long);

    let mut big = String::from("root:x:1::::::\n");
    while big.len() as u64 <= MAX_FILE {
        big.push_str("# padding padding padding padding padding padding padding\n");
    }
    let root = Root::new(&big);
    let e = set_password(&root.0, "root", "pw").unwrap_err();
    assert!(matches!(e, ShadowError::Malformed { .. }), "{e}");
    assert!(e.to_string().contains("bytes"), "{e}");
    assert_eq!(root.shadow(), big);
    assert!(root.no_nshadow());
}

#[test]
fn the_mode_and_owner_are_kept() {
    let uid = unsafe { libc::geteuid() };
    // A group other than the primary one: shadow (42) as root, else a
    // supplementary group of the test's, else the primary one.
    let gid = if uid == 0 {
        42
    } else {
        let mut groups: [libc::gid_t; 64] = [0; 64];
        let n = unsafe { libc::getgroups(64, groups.as_mut_ptr()) };
        let primary = unsafe { libc::getegid() };
        groups[..n.max(0) as usize]
            .iter()
            .copied()
            .find(|&g| g != primary)
            .unwrap_or(primary)
    };
    let mut modes = vec![0o640, 0o600];
    if uid == 0 {
        // Fedora's and RHEL's: only root reads it, through its capability.
        modes.push(0o000);
    }
    for mode in modes {
        let root = Root::new(DEBIAN);
        let path = root.0.join(SHADOW);
        std::os::unix::fs::chown(&path, Some(uid), Some(gid)).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        set_password(&root.0, "root", "pw").unwrap();
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(meta.mode() & 0o7777, mode);
        assert_eq!((meta.uid(), meta.gid()), (uid, gid));
        assert!(verifies(&root.hash_of("root"), "pw"));
    }
}

#[test]
fn a_stale_nshadow_is_replaced_and_none_is_left_after_a_failure() {
    let root = Root::new(DEBIAN);
    fs::write(root.0.join(NEW), "left by a crash").unwrap();
    set_password(&root.0, "root", "pw").unwrap();
    assert!(root.no_nshadow());
    let after = root.shadow();

    for step in ["write", "rename"] {
        FAULT.with(|f| f.set(Some(step)));
        let e = set_password(&root.0, "root", "other");
        FAULT.with(|f| f.set(None));
        let e = e.unwrap_err();
        assert!(e.to_string().contains("test failure"), "{e}");
        assert!(e.to_string().contains("shadow"), "{e}");
        assert_eq!(root.shadow(), after, "{step}");
        assert!(root.no_nshadow(), "{step}");
    }
}

#[test]
fn a_missing_or_symlinked_shadow_file_is_refused() {
    let root = Root::new(DEBIAN);
    fs::remove_file(root.0.join(SHADOW)).unwrap();
    let e = set_password(&root.0, "root", "pw").unwrap_err();
    assert!(matches!(e, ShadowError::Io { .. }), "{e}");
    assert!(e.to_string().contains("etc/shadow"), "{e}");

    fs::write(root.0.join("etc/real"), DEBIAN).unwrap();
    std::os::unix::fs::symlink("real", root.0.join(SHADOW)).unwrap();
    let e = set_password(&root.0, "root", "pw").unwrap_err();
    assert!(e.to_string().contains("symbolic link"), "{e}");
    assert_eq!(fs::read_to_string(root.0.join("etc/real")).unwrap(), DEBIAN);
    assert!(root.no_nshadow());
}

/// Taken by each test that forks a [`Holder`], for as long as it lives: a
/// child forked meanwhile would inherit the other's release pipe and keep
/// it open.
static FORKS: Mutex<()> = Mutex::new(());

fn one_fork_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    FORKS.lock().unwrap_or_else(|p| p.into_inner())
}

/// Hold lckpwdf's lock in a child process until `release` is closed.
struct Holder {
    pid: libc::pid_t,
    release: libc::c_int,
}

impl Holder {
    fn start(lock: &Path) -> Holder {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(lock)
            .unwrap();
        let (mut ready, mut release) = ([0; 2], [0; 2]);
        assert_eq!(unsafe { libc::pipe(ready.as_mut_ptr()) }, 0);
        assert_eq!(unsafe { libc::pipe(release.as_mut_ptr()) }, 0);
        // SAFETY: the child only makes async-signal-safe calls (fcntl,
        // write, read, _exit).
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            unsafe {
                // Its copies of the parent's ends: the release pipe's
                // write end must be the parent's alone.
                libc::close(ready[0]);
                libc::close(release[1]);
                let ok = record_lock(&file, true).is_ok();
                libc::write(ready[1], [u8::from(ok)].as_ptr().cast(), 1);
                let mut b = [0u8; 1];
                libc::read(release[0], b.as_mut_ptr().cast(), 1);
                libc::_exit(0);
            }
        }
        unsafe {
            libc::close(ready[1]);
            libc::close(release[0]);
        }
        let mut b = [0u8; 1];
        assert_eq!(unsafe { libc::read(ready[0], b.as_mut_ptr().cast(), 1) }, 1);
        assert_eq!(b[0], 1, "the child could not take the lock");
        unsafe { libc::close(ready[0]) };
        Holder {
            pid,
            release: release[1],
        }
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        unsafe {
            libc::close(self.release);
            libc::waitpid(self.pid, std::ptr::null_mut(), 0);
        }
    }
}

#[test]
fn a_lock_held_by_another_process_is_waited_for_then_given_up() {
    let _serial = one_fork_at_a_time();
    let root = Root::new(DEBIAN);
    let holder = Holder::start(&root.0.join(LOCK_FILE));
    let start = Instant::now();
    let wait = Duration::from_millis(400);
    let e = set_password_waiting(&root.0, "root", "pw", wait).unwrap_err();
    let took = start.elapsed();
    assert!(matches!(e, ShadowError::Busy { .. }), "{e}");
    assert!(e.to_string().contains(".pwd.lock"), "{e}");
    assert!(e.to_string().contains("try again"), "{e}");
    assert!(
        took >= wait && took < wait + Duration::from_secs(2),
        "{took:?}"
    );
    assert_eq!(root.shadow(), DEBIAN);
    assert!(root.no_nshadow());
    // Released: the next try goes through.
    drop(holder);
    set_password_waiting(&root.0, "root", "pw", wait).unwrap();
    assert!(verifies(&root.hash_of("root"), "pw"));
}

#[test]
fn a_lock_released_during_the_wait_is_taken() {
    let _serial = one_fork_at_a_time();
    let root = Root::new(DEBIAN);
    let holder = Holder::start(&root.0.join(LOCK_FILE));
    let release = thread::spawn(move || {
        thread::sleep(Duration::from_millis(200));
        drop(holder);
    });
    set_password_waiting(&root.0, "root", "pw", Duration::from_secs(10)).unwrap();
    release.join().unwrap();
    assert!(verifies(&root.hash_of("root"), "pw"));
}

/// Linux: an open file description lock, in this very process, conflicts
/// with the record lock as another process's would.
#[cfg(target_os = "linux")]
#[test]
fn a_lock_held_through_another_open_file_description_is_waited_for() {
    let root = Root::new(DEBIAN);
    let other = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(root.0.join(LOCK_FILE))
        .unwrap();
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    assert_eq!(
        unsafe { libc::fcntl(other.as_raw_fd(), libc::F_OFD_SETLK, &fl) },
        0
    );
    let e = set_password_waiting(&root.0, "root", "pw", Duration::from_millis(200)).unwrap_err();
    assert!(matches!(e, ShadowError::Busy { .. }), "{e}");
    assert_eq!(root.shadow(), DEBIAN);
    drop(other);
    set_password_waiting(&root.0, "root", "pw", Duration::from_millis(200)).unwrap();
}

#[test]
fn the_edit_alone() {
    let h = "$6$s$h";
    assert_eq!(
        &edit(b"a:1:2\nroot:x:3:4\n", "root", h, Some(9)).unwrap()[..],
        b"a:1:2\nroot:$6$s$h:9:4\n"
    );
    assert_eq!(
        &edit(b"root:x:3:4", "root", h, None).unwrap()[..],
        b"root:$6$s$h::4"
    );
    assert_eq!(
        &edit(b"root:x", "root", h, Some(9)).unwrap()[..],
        b"root:$6$s$h"
    );
    assert_eq!(edit(b"", "root", h, Some(9)).unwrap_err(), Edit::NoUser);
    assert_eq!(edit(b"\n\n", "root", h, Some(9)).unwrap_err(), Edit::NoUser);
}
