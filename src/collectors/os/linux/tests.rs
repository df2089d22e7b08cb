//! The corpus in `tests/data/os/<case>/` (one directory per system, laid
//! out like its root) and a few broken systems made on the fly.

use std::path::{Path, PathBuf};

use super::*;

fn corpus(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/os")
        .join(case)
}

/// distro, version, major, minor, name: what dom0 is shown.
type Expected = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
);

#[rustfmt::skip]
const CORPUS: &[(&str, Expected)] = &[
    // Release file more precise than VERSION_ID.
    ("debian12",            ("debian", "12.5", "12", "5", "Debian GNU/Linux 12 (bookworm)")),
    ("debian-testing",      ("debian", "", "", "", "Debian GNU/Linux trixie/sid")),
    // VERSION more precise than VERSION_ID; debian_version never wins.
    ("ubuntu2204",          ("ubuntu", "22.04.4", "22", "04", "Ubuntu 22.04.4 LTS")),
    ("ubuntu2404",          ("ubuntu", "24.04", "24", "04", "Ubuntu 24.04 LTS")),
    ("rhel93",              ("rhel", "9.3", "9", "3", "Red Hat Enterprise Linux 9.3 (Plow)")),
    ("rocky9",              ("rocky", "9.4", "9", "4", "Rocky Linux 9.4 (Blue Onyx)")),
    ("almalinux89",         ("almalinux", "8.9", "8", "9", "AlmaLinux 8.9 (Midnight Oncilla)")),
    ("centos7",             ("centos", "7.9.2009", "7", "9", "CentOS Linux 7 (Core)")),
    ("centos-stream9",      ("centos", "9", "9", "0", "CentOS Stream 9")),
    // Only /usr/lib/os-release.
    ("fedora40",            ("fedora", "40", "40", "0", "Fedora Linux 40 (Server Edition)")),
    ("oracle8",             ("oracle", "8.9", "8", "9", "Oracle Linux Server 8.9")),
    ("sles15sp5",           ("sles", "15.5", "15", "5", "SUSE Linux Enterprise Server 15 SP5")),
    ("opensuse-leap155",    ("opensuse-leap", "15.5", "15", "5", "openSUSE Leap 15.5")),
    ("opensuse-tumbleweed", ("opensuse-tumbleweed", "20240607", "20240607", "0", "openSUSE Tumbleweed")),
    ("alpine",              ("alpine", "3.19.1", "3", "19", "Alpine Linux v3.19")),
    ("arch",                ("arch", "", "", "", "Arch Linux")),
    ("gentoo",              ("gentoo", "2.15", "2", "15", "Gentoo Linux")),
    ("nixos",               ("nixos", "24.05", "24", "05", "NixOS 24.05 (Uakari)")),
    ("amazon2",             ("amzn", "2", "2", "0", "Amazon Linux 2")),
    ("amazon2023",          ("amzn", "2023.4.20240611", "2023", "4", "Amazon Linux 2023.4.20240611")),
    // No os-release: release files.
    ("legacy-centos6",      ("centos", "6.10", "6", "10", "CentOS release 6.10 (Final)")),
    ("legacy-rhel5",        ("rhel", "5.11", "5", "11", "Red Hat Enterprise Linux Server release 5.11 (Tikanga)")),
    ("legacy-oracle6",      ("oracle", "6.10", "6", "10", "Oracle Linux Server release 6.10")),
    ("legacy-sles11sp4",    ("sles", "11.4", "11", "4", "SUSE Linux Enterprise Server 11 (x86_64)")),
    ("legacy-opensuse132",  ("opensuse", "13.2", "13", "2", "openSUSE 13.2 (x86_64)")),
    ("legacy-lsb",          ("ubuntu", "14.04.6", "14", "04", "Ubuntu 14.04.6 LTS")),
    ("legacy-debian8",      ("debian", "8.11", "8", "11", "Debian 8.11")),
    // Broken systems.
    ("empty-root",          ("unknown", "", "", "", "Linux")),
    ("empty-files",         ("debian", "", "", "", "Debian")),
    ("malformed-os-release", ("debian", "12.7", "12", "7",
                             r#"Debian "quoted" $HOME \ \x 'single'concatenated bare"#)),
    ("os-release-without-id", ("unknown", "3.1", "3", "1", "Mystery Linux 3.1 (Foo)")),
    ("os-release-without-id-redhat", ("centos", "7.9.2009", "7", "9", "CentOS Linux release 7.9.2009 (Core)")),
    ("unknown-redhat-derivative", ("unknown", "7.9", "7", "9", "CloudLinux release 7.9 (Boris Yegorov)")),
    // /etc/os-release wins over /usr/lib/os-release.
    ("etc-and-usr-lib",     ("ubuntu", "24.04", "24", "04", "from etc")),
    // No PRETTY_NAME: NAME and VERSION; VERSION and the release file refine 9.
    ("name-fallbacks",      ("rhel", "9.4", "9", "4", "Red Hat Enterprise Linux 9.4 (Plow)")),
    // A release file that contradicts os-release is not more precise.
    ("stale-debian-version", ("debian", "12", "12", "0", "Debian GNU/Linux 12 (bookworm)")),
];

fn fields(os: &OsInfo) -> Expected {
    // Leak to compare with the static table: tests only.
    let s = |v: &String| -> &'static str { Box::leak(v.clone().into_boxed_str()) };
    (
        s(&os.distro),
        s(&os.version),
        s(&os.major),
        s(&os.minor),
        s(&os.name),
    )
}

#[test]
fn corpus_systems_are_identified() {
    let mut failures = Vec::new();
    for (case, expected) in CORPUS {
        let root = corpus(case);
        assert!(root.is_dir(), "corpus case {case} is missing");
        let got = fields(&detect(&root));
        if got != *expected {
            failures.push(format!(
                "{case}:\n  expected {expected:?}\n  got      {got:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_corpus_case_is_in_the_table() {
    for entry in std::fs::read_dir(corpus("")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(
            CORPUS.iter().any(|(c, _)| *c == name),
            "tests/data/os/{name} has no expected result"
        );
    }
}

/// A scratch root, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("xga-os-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("etc")).unwrap();
        std::fs::create_dir_all(dir.join("usr/lib")).unwrap();
        Scratch(dir)
    }

    fn write(&self, path: &str, content: impl AsRef<[u8]>) {
        std::fs::write(self.0.join(path), content).unwrap();
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn missing_root_is_unknown() {
    let os = detect(Path::new("/nonexistent/xen-guest-agent/root"));
    assert_eq!(fields(&os), ("unknown", "", "", "", "Linux"));
}

#[test]
fn root_that_is_a_file_is_unknown() {
    let s = Scratch::new("file-root");
    s.write("etc/notadir", "x");
    let os = detect(&s.0.join("etc/notadir"));
    assert_eq!(os.distro, "unknown");
}

#[test]
fn directory_in_place_of_os_release_falls_back_to_usr_lib() {
    let s = Scratch::new("dir");
    std::fs::create_dir(s.0.join("etc/os-release")).unwrap();
    s.write("usr/lib/os-release", "ID=fedora\nVERSION_ID=40\n");
    let os = detect(&s.0);
    assert_eq!(fields(&os), ("fedora", "40", "40", "0", "Linux"));
}

#[test]
fn fifo_does_not_block() {
    let s = Scratch::new("fifo");
    let fifo = std::ffi::CString::new(
        s.0.join("etc/os-release")
            .into_os_string()
            .into_encoded_bytes(),
    )
    .unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    s.write("etc/debian_version", "12.5\n");
    // Would hang forever in open(2) without O_NONBLOCK.
    let os = detect(&s.0);
    assert_eq!(fields(&os), ("debian", "12.5", "12", "5", "Debian 12.5"));
}

#[test]
fn relative_symlink_is_followed() {
    let s = Scratch::new("symlink");
    s.write("usr/lib/os-release", "ID=arch\nPRETTY_NAME='Arch Linux'\n");
    std::os::unix::fs::symlink("../usr/lib/os-release", s.0.join("etc/os-release")).unwrap();
    assert_eq!(fields(&detect(&s.0)), ("arch", "", "", "", "Arch Linux"));
}

#[test]
fn huge_files_are_read_up_to_the_cap() {
    let s = Scratch::new("huge");
    // Identification at the start of a 16 MiB file.
    let mut big = b"ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian\"\n".to_vec();
    big.resize(16 << 20, b'x');
    s.write("etc/os-release", &big);
    // A 16 MiB line in the release file.
    let mut line = b"12.".to_vec();
    line.resize(16 << 20, b'9');
    s.write("etc/debian_version", &line);
    let os = detect(&s.0);
    assert_eq!(
        (&*os.distro, &*os.major, &*os.name),
        ("debian", "12", "Debian")
    );
    assert!(
        os.version.len() <= super::super::MAX_FIELD,
        "version is capped"
    );
    assert!(os.minor.len() < super::super::MAX_FIELD);

    // Identification past the cap is not seen.
    let mut big = vec![b'#'; 1 << 20];
    big.extend_from_slice(b"\nID=debian\n");
    s.write("etc/os-release", &big);
    std::fs::remove_file(s.0.join("etc/debian_version")).unwrap();
    assert_eq!(detect(&s.0).distro, "unknown");
}

#[test]
fn binary_garbage_is_harmless() {
    let s = Scratch::new("binary");
    let garbage: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    for f in [
        "etc/os-release",
        "etc/redhat-release",
        "etc/SuSE-release",
        "etc/lsb-release",
    ] {
        s.write(f, &garbage);
    }
    let os = detect(&s.0);
    assert_eq!(os.distro, "unknown");
    assert!(os.name.chars().all(|c| !c.is_control()));
}

#[test]
fn ids_are_mapped_to_xe_guest_utilities_words() {
    for (raw, id) in [
        ("ol", "oracle"),
        ("\"OL\"", "oracle"),
        ("OracleServer", "oracle"),
        ("EnterpriseEnterpriseServer", "oracle"),
        ("rhel", "rhel"),
        ("RedHatEnterpriseServer", "rhel"),
        ("RedHatEnterpriseWorkstation", "rhel"),
        ("sles", "sles"),
        ("sles_sap", "sles"),
        ("SUSE", "sles"),
        ("SUSE LINUX", "sles"),
        ("sled", "sled"),
        ("openSUSE project", "opensuse"),
        ("opensuse-leap", "opensuse-leap"),
        ("opensuse-tumbleweed", "opensuse-tumbleweed"),
        ("Scientific", "scientific"),
        ("ScientificSL", "scientific"),
        ("Ubuntu", "ubuntu"),
        ("Debian", "debian"),
        ("CentOS", "centos"),
        ("AlmaLinux", "almalinux"),
        ("Rocky", "rocky"),
        ("amzn", "amzn"),
        ("LinuxMint", "linuxmint"),
        ("Déb/ian!", "dbian"),
    ] {
        assert_eq!(canonical_id(raw).as_deref(), Some(id), "{raw:?}");
    }
    assert_eq!(canonical_id(""), None);
    assert_eq!(canonical_id(" \"!\" "), None);
}

#[test]
fn os_release_quoting() {
    for (raw, value) in [
        ("plain", "plain"),
        ("\"double quoted\"", "double quoted"),
        ("'single \\ quoted \"'", "single \\ quoted \""),
        (r#""a \"b\" \$c \`d\` \\e \f""#, r#"a "b" $c `d` \e \f"#),
        (r"bare\ escaped\$", "bare escaped$"),
        ("\"con\"'cat'enated", "concatenated"),
        ("\"unterminated", "unterminated"),
        ("'", ""),
        ("\\", ""),
        ("\"\\", "\\"),
        ("", ""),
    ] {
        assert_eq!(unquote(raw), value, "{raw:?}");
    }
}

#[test]
fn version_helpers() {
    assert!(extends("12", "12.5"));
    assert!(extends("", "8"));
    assert!(extends("22.04", "22.04.4"));
    assert!(!extends("12", "12"));
    assert!(!extends("12", "11.9"));
    assert!(!extends("12", "120.1"));
    assert!(!extends("22.04", "22.4.1"));
    assert_eq!(
        leading_version("7.9.2009 (Core)").as_deref(),
        Some("7.9.2009")
    );
    assert_eq!(leading_version("15-SP5").as_deref(), Some("15"));
    assert_eq!(leading_version("12."), Some("12".into()));
    assert_eq!(leading_version("trixie/sid"), None);
    assert_eq!(
        after_release("CentOS Stream release 9").as_deref(),
        Some("9")
    );
    assert_eq!(after_release("Fedora release"), None);
    assert_eq!(after_release("no such word 9"), None);
    assert_eq!(
        first_version("Ubuntu 14.04.6 LTS").as_deref(),
        Some("14.04.6")
    );
}
