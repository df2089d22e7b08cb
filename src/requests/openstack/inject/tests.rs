use super::*;

use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicUsize, Ordering};

struct Root(PathBuf);

impl Root {
    fn new() -> Root {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "xga-inject-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Root(dir)
    }

    fn at(&self, path: &str) -> PathBuf {
        self.0.join(path.trim_start_matches('/'))
    }

    /// Every name in the directory of `path`, sorted.
    fn names_beside(&self, path: &str) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.at(path).parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn allowed() -> Vec<PathBuf> {
    vec![PathBuf::from(AUTHORIZED_KEYS)]
}

fn b64(s: &[u8]) -> String {
    let mut buf = vec![0u8; Base64::encoded_len(s)];
    Base64::encode(s, &mut buf).unwrap().to_string()
}

#[test]
fn a_value_is_split_at_its_first_comma() {
    let (path, contents) =
        parse(&b64(b"/root/.ssh/authorized_keys,ssh-ed25519 AAAA a,b,c\n")).unwrap();
    assert_eq!(path, PathBuf::from(AUTHORIZED_KEYS));
    assert_eq!(contents, b"ssh-ed25519 AAAA a,b,c\n");

    let (path, contents) = parse(&b64(b"/etc/motd,")).unwrap();
    assert_eq!(path, PathBuf::from("/etc/motd"));
    assert!(contents.is_empty());

    // Binary contents, and whitespace around the value.
    let (_, contents) = parse(&format!(" {}\n", b64(b"/a,\0\xff,\n"))).unwrap();
    assert_eq!(contents, b"\0\xff,\n");
}

#[test]
fn malformed_values_are_refused_with_what_is_wrong() {
    for bad in ["", "not base64!", "L2E=L2E=", "L2Esx", "L2Esx===", "L2Esxw"] {
        assert!(
            matches!(
                parse(bad),
                Err(InjectError::NotBase64 | InjectError::NoComma)
            ),
            "{bad:?}"
        );
    }
    assert!(matches!(parse("not base64!"), Err(InjectError::NotBase64)));
    let e = parse(&b64(b"/root/.ssh/authorized_keys")).unwrap_err();
    assert!(matches!(e, InjectError::NoComma), "{e}");
    assert!(e.to_string().contains("no comma"), "{e}");
    assert!(matches!(parse(&b64(b"")), Err(InjectError::NoComma)));

    for (path, why) in [
        ("", "empty"),
        ("root/.ssh/authorized_keys", "relative"),
        ("./x", "relative"),
        ("/root/../etc/shadow", "'..'"),
        ("/root/./x", "'.'"),
        ("/root//x", "empty component"),
        ("/root/.ssh/", "empty component"),
        ("/", "empty component"),
        ("/a\0b", "NUL"),
    ] {
        let value = b64(format!("{path},contents").as_bytes());
        match parse(&value) {
            Err(e @ InjectError::BadPath { .. }) => {
                assert!(e.to_string().contains(why), "{path:?}: {e}")
            }
            other => panic!("{path:?}: {other:?}"),
        }
    }
    let long_name = format!("/{},x", "n".repeat(256));
    assert!(matches!(
        parse(&b64(long_name.as_bytes())),
        Err(InjectError::BadPath { .. })
    ));
    let long_path = format!("{},x", "/n".repeat(2100));
    assert!(matches!(
        parse(&b64(long_path.as_bytes())),
        Err(InjectError::BadPath { .. })
    ));
}

#[test]
fn contents_over_a_mebibyte_are_refused() {
    let mut value = b"/a,".to_vec();
    value.resize(3 + MAX_CONTENTS, b'k');
    let (_, contents) = parse(&b64(&value)).unwrap();
    assert_eq!(contents.len(), MAX_CONTENTS);
    value.push(b'k');
    let e = parse(&b64(&value)).unwrap_err();
    assert!(matches!(e, InjectError::TooLarge { .. }), "{e}");
    // Far too large: refused before decoding.
    let huge = "A".repeat(4 * MAX_CONTENTS);
    assert!(matches!(parse(&huge), Err(InjectError::TooLarge { .. })));
    let root = Root::new();
    let e = write(&root.0, &allowed(), Path::new(AUTHORIZED_KEYS), &value).unwrap_err();
    assert!(matches!(e, InjectError::TooLarge { .. }), "{e}");
}

#[test]
fn a_new_file_is_0600_in_new_0700_directories() {
    let root = Root::new();
    let keys = b"ssh-ed25519 AAAAC3 nova\n";
    let done = write(&root.0, &allowed(), Path::new(AUTHORIZED_KEYS), keys).unwrap();
    assert_eq!(done.path, root.at(AUTHORIZED_KEYS));
    assert_eq!(done.backup, None);
    assert_eq!(done.created, vec![root.at("/root"), root.at("/root/.ssh")]);
    assert_eq!(fs::read(&done.path).unwrap(), keys);
    assert_eq!(fs::metadata(&done.path).unwrap().mode() & 0o7777, 0o600);
    for dir in &done.created {
        assert_eq!(fs::metadata(dir).unwrap().mode() & 0o7777, 0o700);
    }
    assert_eq!(root.names_beside(AUTHORIZED_KEYS), ["authorized_keys"]);
}

#[test]
fn empty_contents_make_an_empty_file() {
    let root = Root::new();
    let done = write(&root.0, &allowed(), Path::new(AUTHORIZED_KEYS), b"").unwrap();
    assert_eq!(fs::read(&done.path).unwrap(), b"");
}

#[test]
fn a_replaced_file_keeps_its_mode_and_owner_and_a_backup() {
    let root = Root::new();
    let path = root.at(AUTHORIZED_KEYS);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, "old key\n").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    let uid = unsafe { libc::geteuid() };
    let gid = if uid == 0 {
        42
    } else {
        unsafe { libc::getegid() }
    };
    std::os::unix::fs::chown(&path, Some(uid), Some(gid)).unwrap();
    let old_ino = fs::metadata(&path).unwrap().ino();

    let done = write(
        &root.0,
        &allowed(),
        Path::new(AUTHORIZED_KEYS),
        b"new key\n",
    )
    .unwrap();
    assert_eq!(done.path, path);
    assert!(done.created.is_empty());
    assert_eq!(fs::read(&path).unwrap(), b"new key\n");
    let meta = fs::metadata(&path).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o644);
    assert_eq!((meta.uid(), meta.gid()), (uid, gid));

    let backup = done.backup.unwrap();
    assert_eq!(fs::read(&backup).unwrap(), b"old key\n");
    // The old file itself, not a copy.
    assert_eq!(fs::metadata(&backup).unwrap().ino(), old_ino);
    let name = backup.file_name().unwrap().to_str().unwrap();
    let secs = name
        .strip_prefix("authorized_keys.")
        .and_then(|s| s.strip_suffix(".bak"))
        .unwrap();
    assert!(secs.parse::<u64>().unwrap() > 1_600_000_000, "{name}");

    // Again within the same second: another backup name.
    let again = write(&root.0, &allowed(), Path::new(AUTHORIZED_KEYS), b"newer\n").unwrap();
    let second = again.backup.unwrap();
    assert_ne!(second, backup);
    assert_eq!(fs::read(&second).unwrap(), b"new key\n");
    assert_eq!(fs::read(&backup).unwrap(), b"old key\n");
    assert_eq!(root.names_beside(AUTHORIZED_KEYS).len(), 3);
}

#[test]
fn a_path_not_allowed_is_refused() {
    let root = Root::new();
    for path in [
        "/etc/shadow",
        "/root/.ssh/authorized_keys2",
        "/root/.ssh/../.ssh/authorized_keys",
        "/root//.ssh/authorized_keys",
        "root/.ssh/authorized_keys",
    ] {
        let e = write(&root.0, &allowed(), Path::new(path), b"x").unwrap_err();
        assert!(
            matches!(
                e,
                InjectError::NotAllowed { .. } | InjectError::BadPath { .. }
            ),
            "{path}: {e}"
        );
    }
    let e = write(&root.0, &allowed(), Path::new("/etc/shadow"), b"x").unwrap_err();
    assert!(e.to_string().contains("/etc/shadow is not a path"), "{e}");
    let e = write(&root.0, &[], Path::new(AUTHORIZED_KEYS), b"x").unwrap_err();
    assert!(matches!(e, InjectError::NotAllowed { .. }), "{e}");
    assert!(!root.at("/root").exists() && !root.at("/etc").exists());
}

#[test]
fn a_symlinked_ssh_directory_is_refused_and_its_target_untouched() {
    let root = Root::new();
    let elsewhere = root.at("/elsewhere");
    fs::create_dir_all(&elsewhere).unwrap();
    fs::write(elsewhere.join("authorized_keys"), "theirs\n").unwrap();
    fs::create_dir_all(root.at("/root")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, root.at("/root/.ssh")).unwrap();

    let e = write(&root.0, &allowed(), Path::new(AUTHORIZED_KEYS), b"ours\n").unwrap_err();
    match &e {
        InjectError::Symlink { path } => assert_eq!(path, &root.at("/root/.ssh")),
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("symbolic link"), "{e}");
    assert_eq!(
        fs::read(elsewhere.join("authorized_keys")).unwrap(),
        b"theirs\n"
    );
    assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 1);

    // A symlinked /root too, and a dangling one.
    let root = Root::new();
    fs::create_dir_all(root.at("/real/.ssh")).unwrap();
    std::os::unix::fs::symlink("real", root.at("/root")).unwrap();
    let e = write(&root.0, &allowed(), Path::new(AUTHORIZED_KEYS), b"ours\n").unwrap_err();
    assert!(matches!(e, InjectError::Symlink { .. }), "{e}");
    assert_eq!(fs::read_dir(root.at("/real/.ssh")).unwrap().count(), 0);
    fs::remove_file(root.at("/root")).unwrap();
    std::os::unix::fs::symlink("nowhere", root.at("/root")).unwrap();
    let e = write(&root.0, &allowed(), Path::new(AUTHORIZED_KEYS), b"ours\n").unwrap_err();
    assert!(matches!(e, InjectError::Symlink { .. }), "{e}");
    assert!(!root.at("/nowhere").exists());
}

#[test]
fn a_symlink_as_the_file_is_refused() {
    let root = Root::new();
    fs::create_dir_all(root.at("/root/.ssh")).unwrap();
    fs::create_dir_all(root.at("/etc")).unwrap();
    fs::write(root.at("/etc/shadow"), "root:x:1::::::\n").unwrap();
    std::os::unix::fs::symlink("../../etc/shadow", root.at(AUTHORIZED_KEYS)).unwrap();
    let e = write(&root.0, &allowed(), Path::new(AUTHORIZED_KEYS), b"ours\n").unwrap_err();
    match &e {
        InjectError::Symlink { path } => assert_eq!(path, &root.at(AUTHORIZED_KEYS)),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        fs::read(root.at("/etc/shadow")).unwrap(),
        b"root:x:1::::::\n"
    );
    assert!(fs::symlink_metadata(root.at(AUTHORIZED_KEYS))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(root.names_beside(AUTHORIZED_KEYS), ["authorized_keys"]);
}

#[test]
fn other_kinds_of_files_on_the_way_are_refused() {
    let root = Root::new();
    fs::write(root.at("/root"), "a file, not a directory").unwrap();
    let e = write(&root.0, &allowed(), Path::new(AUTHORIZED_KEYS), b"x").unwrap_err();
    assert!(matches!(e, InjectError::NotDirectory { .. }), "{e}");

    let root = Root::new();
    fs::create_dir_all(root.at(AUTHORIZED_KEYS)).unwrap();
    let e = write(&root.0, &allowed(), Path::new(AUTHORIZED_KEYS), b"x").unwrap_err();
    assert!(matches!(e, InjectError::NotFile { .. }), "{e}");
    assert_eq!(root.names_beside(AUTHORIZED_KEYS), ["authorized_keys"]);
}

#[test]
fn a_failed_rename_leaves_the_old_file_and_nothing_else() {
    let root = Root::new();
    let path = root.at(AUTHORIZED_KEYS);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, "old\n").unwrap();
    FAULT.with(|f| f.set(Some("rename")));
    let e = write(&root.0, &allowed(), Path::new(AUTHORIZED_KEYS), b"new\n");
    FAULT.with(|f| f.set(None));
    let e = e.unwrap_err();
    assert!(e.to_string().contains("test failure"), "{e}");
    assert!(e.to_string().contains("authorized_keys"), "{e}");
    assert_eq!(fs::read(&path).unwrap(), b"old\n");
    assert_eq!(root.names_beside(AUTHORIZED_KEYS), ["authorized_keys"]);
}

#[test]
fn parse_then_write() {
    let root = Root::new();
    let (path, contents) = parse(&b64(b"/root/.ssh/authorized_keys,ssh-rsa AAAAB3 x,y\n")).unwrap();
    let done = write(&root.0, &allowed(), &path, &contents).unwrap();
    assert_eq!(fs::read(done.path).unwrap(), b"ssh-rsa AAAAB3 x,y\n");
}

#[test]
fn inject_paths_on_the_command_line_are_checked_as_requests_are() {
    let paths = |l: &[&str]| l.iter().map(PathBuf::from).collect::<Vec<_>>();
    assert!(check_allowed(&paths(&[AUTHORIZED_KEYS, "/home/u/.ssh/authorized_keys"])).is_ok());
    for bad in [
        "root/.ssh/authorized_keys",
        "/root/../etc/passwd",
        "/root/./x",
        "/root//x",
        "/root/.ssh/",
        "/",
    ] {
        let e = check_allowed(&paths(&[AUTHORIZED_KEYS, bad]))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(&format!(
                "--inject-path {bad}: not a path a request can name: "
            )),
            "{e}"
        );
    }
}
