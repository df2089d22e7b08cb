//! Linux: the distribution, from os-release and the distributions' own
//! release files, read below a filesystem root (`/`, or a test corpus).
//!
//! Order, as precise as the system knows:
//! 1. `/etc/os-release`, else `/usr/lib/os-release` (the first one that can
//!    be read): its `ID` gives the distribution and `VERSION_ID` the
//!    version. A more precise version then wins when it *extends* that one
//!    (same leading components, more of them): the first number in
//!    `VERSION` (Ubuntu `22.04.4 LTS` over `22.04`), then the
//!    distribution's own release file (Debian's `/etc/debian_version`
//!    `12.5` over `12`, CentOS 7's `/etc/redhat-release` `7.9.2009` over
//!    `7`). Ubuntu's `debian_version` (`bookworm/sid`) is never consulted:
//!    it is not Ubuntu's own file, and it has no number anyway.
//! 2. Without a usable `ID`, the legacy release files, in the order of
//!    xe-guest-utilities' `xe-linux-distribution`: `/etc/oracle-release`,
//!    `/etc/enterprise-release`, `/etc/centos-release`,
//!    `/etc/redhat-release`, `/etc/SuSE-release`, `/etc/lsb-release`,
//!    `/etc/debian_version`.
//! 3. Nothing identifies the distribution: [`UNKNOWN`], named and versioned
//!    after what os-release said, else after the first line of
//!    `/etc/redhat-release` or `/etc/system-release` (a derivative not in
//!    the table: `CloudLinux release 7.9`), else `Linux` without a version.
//!
//! Distribution ids (`data/os_distro`) follow xe-guest-utilities, whose
//! ids XAPI, XenCenter and Xen Orchestra have always been shown: the
//! lowercase os-release `ID` (or `lsb_release` id) as is, except:
//!
//! | os-release `ID` / lsb `DISTRIB_ID` (lowercased, blanks dropped) | id |
//! |---|---|
//! | `ol`, `oracle`, `oracleserver`, `enterpriseenterpriseserver` | `oracle` |
//! | `rhel`, `redhat`, `redhatenterprise*` | `rhel` |
//! | `sles`, `sles_sap`, `suse`, `suselinux` | `sles` |
//! | `opensuse`, `opensuseproject` | `opensuse` |
//! | `scientific`, `scientificsl`, `scientificfermi` | `scientific` |
//! | `rockylinux` | `rocky` |
//! | anything else (`debian`, `ubuntu`, `centos`, `rocky`, `almalinux`, `fedora`, `sled`, `opensuse-leap`, `opensuse-tumbleweed`, `amzn`, `alpine`, `arch`, `gentoo`, `nixos`...) | unchanged |
//!
//! and, for release files without os-release: `Red Hat` → `rhel`,
//! `CentOS` → `centos`, `Rocky` → `rocky`, `AlmaLinux` → `almalinux`,
//! `Oracle` or `Enterprise Linux Enterprise` → `oracle`, `Scientific Linux`
//! → `scientific`, `Fedora` → `fedora`; SUSE Linux Enterprise Server /
//! Desktop → `sles` / `sled`, `openSUSE` → `opensuse`.
//!
//! openSUSE Leap and Tumbleweed keep their os-release ids
//! (`opensuse-leap`, `opensuse-tumbleweed`), which is what
//! xe-guest-utilities' os-release path writes; only pre-os-release openSUSE
//! is `opensuse`.
//!
//! Every file is read through [`read_text`]: at most [`MAX_READ`] bytes, regular
//! files only, never blocking, anything unreadable treated as absent.

use std::fs::OpenOptions;
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::os_info;
use crate::state::OsInfo;

/// The distribution id when nothing identifies the system: the word
/// xe-guest-utilities writes for what it could not find, so dom0's tools
/// have seen it for years, and a present key is safer for XAPI's consumers
/// than a missing one (they look keys up in `os_version` by name).
pub const UNKNOWN: &str = "unknown";

/// Most bytes read from one file. Real release files are well under 1 KiB;
/// this bounds the memory a broken or hostile file can cost.
const MAX_READ: u64 = 64 * 1024;

/// Identify the distribution installed below `root` (`/` on a live
/// system). Never fails: what cannot be read counts as absent, and a system
/// nothing identifies is [`UNKNOWN`].
///
/// Symbolic links are followed as the kernel does, so an absolute link
/// below a test root points outside it; the real `/etc/os-release` is a
/// relative link.
pub fn detect(root: &Path) -> OsInfo {
    let release = ["etc/os-release", "usr/lib/os-release"]
        .iter()
        .find_map(|p| read_text(&root.join(p)))
        .map(|text| OsRelease::parse(&text))
        .unwrap_or_default();
    if let Some(distro) = canonical_id(&release.id) {
        return from_os_release(root, &distro, &release);
    }
    if let Some(r) = legacy_release(root) {
        return os_info(&r.distro, &r.version, &r.name);
    }
    let name = release.name();
    if !name.is_empty() {
        return os_info(UNKNOWN, &release.version_id, &name);
    }
    // A release file names the system even when it is not in the table.
    match ["etc/redhat-release", "etc/system-release"]
        .iter()
        .filter_map(|f| read_text(&root.join(f)))
        .map(|text| first_line(&text))
        .find(|line| !line.is_empty())
    {
        Some(line) => os_info(UNKNOWN, &after_release(&line).unwrap_or_default(), &line),
        None => os_info(UNKNOWN, "", "Linux"),
    }
}

/// The os-release fields that matter here (os-release(5)).
#[derive(Debug, Default)]
struct OsRelease {
    id: String,
    name: String,
    version: String,
    version_id: String,
    pretty_name: String,
}

impl OsRelease {
    fn parse(text: &str) -> Self {
        let [id, name, version, version_id, pretty_name] =
            pick(text, ["ID", "NAME", "VERSION", "VERSION_ID", "PRETTY_NAME"]);
        OsRelease {
            id,
            name,
            version,
            version_id,
            pretty_name,
        }
    }

    /// `PRETTY_NAME`, else `NAME` and `VERSION`; empty when neither.
    fn name(&self) -> String {
        if !self.pretty_name.trim().is_empty() {
            return self.pretty_name.clone();
        }
        format!("{} {}", self.name.trim(), self.version.trim())
            .trim()
            .to_owned()
    }
}

/// An os-release `ID` or lsb `DISTRIB_ID` in xe-guest-utilities' words
/// (see the table in the module documentation); `None` when empty.
fn canonical_id(raw: &str) -> Option<String> {
    let id: String = raw
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .take(64)
        .collect();
    let mapped = match id.as_str() {
        "" => return None,
        "ol" | "oracle" | "oracleserver" | "enterpriseenterpriseserver" => "oracle",
        "rhel" | "redhat" => "rhel",
        s if s.starts_with("redhatenterprise") => "rhel",
        "sles" | "sles_sap" | "suse" | "suselinux" => "sles",
        "opensuse" | "opensuseproject" => "opensuse",
        "scientific" | "scientificsl" | "scientificfermi" => "scientific",
        "rockylinux" => "rocky",
        _ => return Some(id),
    };
    Some(mapped.to_owned())
}

/// Identity from os-release, its version refined as described in the
/// module documentation.
fn from_os_release(root: &Path, distro: &str, release: &OsRelease) -> OsInfo {
    let own = own_release(root, distro);
    let mut version = release.version_id.trim().to_owned();
    let candidates = [
        first_version(&release.version),
        own.as_ref().map(|r| r.version.clone()),
    ];
    for candidate in candidates.into_iter().flatten() {
        if extends(&version, &candidate) {
            version = candidate;
        }
    }
    let mut name = release.name();
    if name.is_empty() {
        name = own.map(|r| r.name).unwrap_or_else(|| "Linux".into());
    }
    os_info(distro, &version, &name)
}

/// What a distribution's own release file says.
#[derive(Debug)]
struct Release {
    distro: String,
    /// Empty when the file has no number (`trixie/sid`).
    version: String,
    name: String,
}

/// The release file of `distro` itself, when it has a version.
fn own_release(root: &Path, distro: &str) -> Option<Release> {
    let files: &[&str] = match distro {
        "debian" => return debian_release(root).filter(|r| !r.version.is_empty()),
        "sles" | "sled" | "opensuse" => {
            return suse_release(root).filter(|r| r.distro == distro && !r.version.is_empty())
        }
        "rhel" | "scientific" => &["etc/redhat-release"],
        "centos" => &["etc/centos-release", "etc/redhat-release"],
        "rocky" => &["etc/rocky-release", "etc/redhat-release"],
        "almalinux" => &["etc/almalinux-release", "etc/redhat-release"],
        "oracle" => &["etc/oracle-release"],
        "fedora" => &["etc/fedora-release"],
        // Amazon Linux: "Amazon Linux release 2023.4.20240611 (Amazon Linux)".
        "amzn" => {
            let line = first_line(&read_text(&root.join("etc/system-release"))?);
            let version = after_release(&line)?;
            return Some(Release {
                distro: distro.into(),
                version,
                name: line,
            });
        }
        _ => return None,
    };
    files
        .iter()
        .filter_map(|f| redhat_release(root, f))
        .find(|r| r.distro == distro && !r.version.is_empty())
}

/// Identity from release files alone (systems older than os-release).
fn legacy_release(root: &Path) -> Option<Release> {
    [
        "etc/oracle-release",
        "etc/enterprise-release",
        "etc/centos-release",
        "etc/redhat-release",
    ]
    .iter()
    .find_map(|f| redhat_release(root, f))
    .or_else(|| suse_release(root))
    .or_else(|| lsb_release(root))
    .or_else(|| debian_release(root))
}

/// A Red Hat family release file: `CentOS release 6.10 (Final)`. `None`
/// when absent or from a distribution not in the table.
fn redhat_release(root: &Path, file: &str) -> Option<Release> {
    let line = first_line(&read_text(&root.join(file))?);
    let distro = [
        ("Oracle", "oracle"),
        ("Enterprise Linux Enterprise", "oracle"),
        ("CentOS", "centos"),
        ("Rocky", "rocky"),
        ("AlmaLinux", "almalinux"),
        ("Scientific Linux", "scientific"),
        ("Fedora", "fedora"),
        ("Red Hat", "rhel"),
    ]
    .iter()
    .find(|(word, _)| line.contains(word))?
    .1;
    Some(Release {
        distro: distro.into(),
        version: after_release(&line).unwrap_or_default(),
        name: line,
    })
}

/// `/etc/SuSE-release` (SLE up to 12, openSUSE up to 42):
/// ```text
/// SUSE Linux Enterprise Server 11 (x86_64)
/// VERSION = 11
/// PATCHLEVEL = 4
/// ```
fn suse_release(root: &Path) -> Option<Release> {
    let text = read_text(&root.join("etc/SuSE-release"))?;
    let line = first_line(&text);
    let lower = line.to_ascii_lowercase();
    let distro = if lower.contains("opensuse") {
        "opensuse"
    } else if lower.contains("suse linux enterprise desktop") {
        "sled"
    } else if lower.contains("suse linux enterprise") || lower.contains("sles") {
        "sles"
    } else {
        return None;
    };
    let (mut version, mut patchlevel) = (String::new(), String::new());
    for l in text.lines() {
        match l.split_once('=').map(|(k, v)| (k.trim(), v.trim())) {
            Some(("VERSION", v)) => version = leading_version(v).unwrap_or_default(),
            Some(("PATCHLEVEL", v)) => patchlevel = leading_version(v).unwrap_or_default(),
            _ => {}
        }
    }
    if !version.is_empty() && !version.contains('.') && !patchlevel.is_empty() {
        version = format!("{version}.{patchlevel}");
    }
    Some(Release {
        distro: distro.into(),
        version,
        name: line,
    })
}

/// `/etc/lsb-release` (`DISTRIB_ID`, `DISTRIB_RELEASE`,
/// `DISTRIB_DESCRIPTION`), read as a file: `lsb_release` is a program.
fn lsb_release(root: &Path) -> Option<Release> {
    let text = read_text(&root.join("etc/lsb-release"))?;
    let [id, release, description] = pick(
        &text,
        ["DISTRIB_ID", "DISTRIB_RELEASE", "DISTRIB_DESCRIPTION"],
    );
    let distro = canonical_id(&id)?;
    let mut version = leading_version(&release).unwrap_or_default();
    // "Ubuntu 14.04.6 LTS" is more precise than DISTRIB_RELEASE=14.04.
    if let Some(v) = first_version(&description).filter(|v| extends(&version, v)) {
        version = v;
    }
    let name = if description.trim().is_empty() {
        format!("{} {}", id.trim(), release.trim())
    } else {
        description
    };
    Some(Release {
        distro,
        version,
        name,
    })
}

/// `/etc/debian_version`: `12.5`, or `trixie/sid` on testing (no number).
fn debian_release(root: &Path) -> Option<Release> {
    let line = first_line(&read_text(&root.join("etc/debian_version"))?);
    Some(Release {
        distro: "debian".into(),
        version: leading_version(&line).unwrap_or_default(),
        name: format!("Debian {line}").trim().to_owned(),
    })
}

/// Whether `candidate` says the same as `base`, more precisely: `base`'s
/// components are the first ones of `candidate` (`12` → `12.5`), or `base`
/// is empty.
fn extends(base: &str, candidate: &str) -> bool {
    if base.is_empty() {
        return !candidate.is_empty();
    }
    let mut more = candidate.split('.');
    base.split('.').all(|b| more.next() == Some(b)) && more.next().is_some()
}

/// The version number `s` starts with (`7.9.2009` of `7.9.2009 (Core)`).
fn leading_version(s: &str) -> Option<String> {
    let s = s.trim_start();
    if !s.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    Some(s[..end].trim_end_matches('.').to_owned())
}

/// The first word that is a version number (`22.04.4` of
/// `Ubuntu 22.04.4 LTS`).
fn first_version(s: &str) -> Option<String> {
    s.split_whitespace().find_map(leading_version)
}

/// The version after the word `release` (`CentOS Linux release 7.9.2009`).
fn after_release(line: &str) -> Option<String> {
    let mut words = line.split_whitespace();
    words.find(|w| w.eq_ignore_ascii_case("release"))?;
    leading_version(words.next()?)
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().trim().to_owned()
}

/// The values of `keys` in a shell-style assignment file (os-release,
/// lsb-release); empty strings for keys not set. The last assignment wins,
/// as when the file is sourced.
fn pick<const N: usize>(text: &str, keys: [&str; N]) -> [String; N] {
    let mut values: [String; N] = std::array::from_fn(|_| String::new());
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let Some((key, raw)) = line.split_once('=') else {
            continue; // blank or garbage
        };
        if let Some(i) = keys.iter().position(|k| *k == key.trim_end()) {
            values[i] = unquote(raw.trim());
        }
    }
    values
}

/// The value of one os-release assignment, quoted as os-release(5) allows:
/// `'single'` (literal), `"double"` (where `\` escapes `"`, `\`, `$` and
/// `` ` ``) or bare (where `\` escapes anything), concatenated as in a
/// shell. Lenient like systemd's parser: an unterminated quote runs to the
/// end of the line, and blanks inside a bare value are kept.
fn unquote(raw: &str) -> String {
    #[derive(Clone, Copy, PartialEq)]
    enum Quote {
        None,
        Single,
        Double,
    }
    let mut out = String::with_capacity(raw.len());
    let mut quote = Quote::None;
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Quote::None, '\'') => quote = Quote::Single,
            (Quote::None, '"') => quote = Quote::Double,
            (Quote::Single, '\'') | (Quote::Double, '"') => quote = Quote::None,
            (Quote::None, '\\') => out.extend(chars.next()),
            (Quote::Double, '\\') => match chars.next() {
                Some(e @ ('"' | '\\' | '$' | '`')) => out.push(e),
                Some(e) => {
                    out.push('\\');
                    out.push(e);
                }
                None => out.push('\\'),
            },
            (_, c) => out.push(c),
        }
    }
    out
}

/// A small text file, or `None` when it is absent or cannot be read (the
/// latter logged: it is odd and worth a line).
fn read_text(path: &Path) -> Option<String> {
    match read_capped(path) {
        Ok(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            None
        }
        Err(e) => {
            log::warn!("cannot read {}: {e}", path.display());
            None
        }
    }
}

/// At most [`MAX_READ`] bytes of a regular file. `O_NONBLOCK` makes opening
/// a FIFO return at once instead of waiting for a writer forever.
fn read_capped(path: &Path) -> io::Result<Vec<u8>> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    // Room for the whole file and the read that sees its end: two reads,
    // where an empty vector made `read_to_end` start with 32 bytes and
    // double (six reads for a 267-byte os-release).
    let room = meta.len().min(MAX_READ) as usize + 1;
    let mut bytes = Vec::with_capacity(room);
    file.take(MAX_READ).read_to_end(&mut bytes)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests;
