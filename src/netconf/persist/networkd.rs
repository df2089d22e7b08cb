//! systemd-networkd, which applies to a link only the first `.network` file
//! that matches it (in the order of the files' names), with its drop-ins.
//!
//! Rule: a drop-in `/etc/systemd/network/<file>.d/90-xen-guest-agent.conf`
//! to the link's own file when that file matches this interface alone
//! (`Name=`, `MACAddress=`) and has no static address or gateway of a family
//! dom0 sets (a drop-in can only add those); otherwise a copy of the file and
//! its drop-ins matching only this MAC and name, without them, named
//! `<stem>-xen-guest-agent-<mac>.network`: it sorts just before
//! `<stem>.network` (`-` < `.`), so networkd matches it first.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::{
    comment_safe, header, header_mac, list_dir, read_optional, remove, sync_dir, write_atomic,
    Detected, Persisted, Reload, Roots,
};
use crate::netconf::{Static, Wanted, V4, V6};
use crate::Error;

/// When a change of networkd's files takes effect.
pub(super) const NOTE: &str =
    "systemd-networkd applies it at its next start or after `networkctl reload`";

/// The name of the agent's drop-in in `<file>.d/`: late, so that it
/// overrides the administrator's drop-ins.
const DROPIN: &str = "90-xen-guest-agent.conf";

/// What the name of a replacement has between the stem of the file it
/// replaces and the MAC address.
const TAG: &str = "-xen-guest-agent-";

/// When the agent's files go away (their header says it).
const REMOVED_WHEN: &str = "dom0 asks for DHCP/autoconf back or the setting is cleared";

/// The header lines that record the setting a file makes, so that a family
/// dom0 leaves out later keeps it.
const V4_LINE: &str = "# ipv4: ";
const V6_LINE: &str = "# ipv6: ";

/// networkd's directories below /etc and /run, in its order of priority.
const LIB_DIRS: [&str; 3] = [
    "/usr/local/lib/systemd/network",
    "/usr/lib/systemd/network",
    "/lib/systemd/network",
];

/// networkd, when its state file of the link says it manages it.
pub(super) fn detect(roots: &Roots, index: u32) -> Option<Detected> {
    let path = roots
        .run
        .join("systemd/netif/links")
        .join(index.to_string());
    let text = fs::read_to_string(path).ok()?;
    let admin = env_value(&text, "ADMIN_STATE")?;
    if admin.is_empty() || admin == "unmanaged" {
        return None;
    }
    let network_file = env_value(&text, "NETWORK_FILE")
        .filter(|f| !f.is_empty())
        .map(PathBuf::from);
    Some(Detected::Networkd { network_file })
}

/// Whether systemd-networkd runs (its state file is there) but has not yet
/// decided about link `index` (no state of the link, or `pending`,
/// `initialized`): at boot the agent may handle dom0's setting before
/// networkd has matched the link with its `.network` file.
pub(super) fn settling(roots: &Roots, index: u32) -> bool {
    if !roots.run.join("systemd/netif/state").is_file() {
        return false;
    }
    let path = roots
        .run
        .join("systemd/netif/links")
        .join(index.to_string());
    match fs::read_to_string(path) {
        Err(_) => true,
        Ok(text) => matches!(
            env_value(&text, "ADMIN_STATE").as_deref(),
            None | Some("" | "pending" | "initialized")
        ),
    }
}

/// Write the drop-in or the replacement that makes `wanted` (with what the
/// agent set before for the families left out) last, and remove the agent's
/// other files for `mac`; the link's kernel index is `index`.
pub(super) fn persist(
    roots: &Roots,
    network_file: Option<&Path>,
    name: &str,
    index: u32,
    mac: &str,
    wanted: &Wanted,
) -> Result<Persisted, Error> {
    let Some(network_file) = network_file else {
        return Err(Error::new(format!(
            "systemd-networkd names no .network file for {name}"
        ))
        .hint("it is still configuring the link, or no file matches it: retry later"));
    };
    let dir = roots.etc.join("systemd/network");
    let ours = our_files(&dir, mac)?;
    let original = original(roots, network_file)?;
    let base = file_name(&original)?.to_string();
    let stem = &base[..base.len() - ".network".len()];
    let sources = sources(roots, &original, &base)?;
    let o = Original::read(&sources);

    let current = roots.resolve(network_file);
    let previous = match ours.iter().find(|p| **p == current).or(ours.first()) {
        Some(p) => read_optional(p)?
            .map(|t| parse_state(&t))
            .unwrap_or_default(),
        None => Wanted::default(),
    };
    let w = o.needed(Wanted {
        v4: wanted.v4.clone().or(previous.v4),
        v6: wanted.v6.clone().or(previous.v6),
    });

    let target = if w.v4.is_none() && w.v6.is_none() {
        None
    } else if o.alone(name, mac) && !o.conflicts(&w) {
        let path = dir.join(format!("{base}.d")).join(DROPIN);
        Some((path, dropin_text(name, mac, &w, o.dhcp)))
    } else {
        let path = dir.join(format!("{stem}{TAG}{}.network", bare_mac(mac)));
        let text = replacement_text(name, mac, &w, o.dhcp, &original, &sources);
        Some((path, text))
    };

    let mut done = Persisted::default();
    if let Some((path, text)) = &target {
        if write_atomic(path, text)? {
            done.written.push(path.clone());
        }
    }
    for path in &ours {
        if target.as_ref().is_none_or(|(t, _)| t != path) {
            remove_ours(path, &mut done)?;
        }
    }
    if !done.is_empty() {
        done.note = Some(NOTE.to_string());
        done.reload = Reload::Networkd { index };
    }
    Ok(done)
}

/// Remove every file the agent wrote for `mac` (the link of kernel index
/// `index`).
pub(super) fn forget(roots: &Roots, index: u32, mac: &str) -> Result<Persisted, Error> {
    let mut done = Persisted::default();
    for path in our_files(&roots.etc.join("systemd/network"), mac)? {
        remove_ours(&path, &mut done)?;
    }
    if !done.is_empty() {
        done.note = Some(NOTE.to_string());
        done.reload = Reload::Networkd { index };
    }
    Ok(done)
}

/// The value of `key` in a systemd state file (`KEY=value`, the value maybe
/// quoted, with C escapes): the last assignment.
fn env_value(text: &str, key: &str) -> Option<String> {
    let mut found = None;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            if k.trim() == key {
                found = Some(unquote(v.trim()));
            }
        }
    }
    found
}

/// A state file's value without its quotes and escapes.
fn unquote(value: &str) -> String {
    let b = value.as_bytes();
    let inner = match b {
        [q @ (b'"' | b'\''), .., last] if q == last => &b[1..b.len() - 1],
        _ => b,
    };
    let mut out = Vec::with_capacity(inner.len());
    let mut i = 0;
    while i < inner.len() {
        let c = inner[i];
        i += 1;
        if c != b'\\' || i == inner.len() {
            out.push(c);
            continue;
        }
        let e = inner[i];
        i += 1;
        let hex = inner
            .get(i..i + 2)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (e, hex) {
            (b'x', Some(byte)) => {
                out.push(byte);
                i += 2;
            }
            (b'n', _) => out.push(b'\n'),
            (b't', _) => out.push(b'\t'),
            _ => out.push(e),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// networkd's directories of `.network` files, in its order of priority.
fn network_dirs(roots: &Roots) -> Vec<PathBuf> {
    let mut dirs = vec![
        roots.etc.join("systemd/network"),
        roots.run.join("systemd/network"),
    ];
    dirs.extend(LIB_DIRS.iter().map(PathBuf::from));
    dirs
}

/// The name of a `.network` file, checked for use in a file name and a
/// comment.
fn file_name(path: &Path) -> Result<&str, Error> {
    path.file_name()
        .and_then(|n| n.to_str())
        .filter(|n| {
            n.len() > ".network".len() && n.ends_with(".network") && !n.contains(char::is_control)
        })
        .ok_or_else(|| Error::new(format!("{}: not a .network file", comment_safe(path))))
}

/// The stem of the file a replacement of the agent's stands for, from the
/// replacement's name `<stem>-xen-guest-agent-<12 hex digits>.network`.
fn replaced_stem(name: &str) -> Option<&str> {
    let s = name.strip_suffix(".network")?;
    let i = s.rfind(TAG)?;
    let mac = &s[i + TAG.len()..];
    (mac.len() == 12 && mac.bytes().all(|b| b.is_ascii_hexdigit())).then_some(&s[..i])
}

/// The file whose settings the link has apart from the agent's: its network
/// file, or, when that is a replacement of the agent's, the file it stands
/// for, looked up by name as networkd does (the administrator may have
/// copied it to /etc since).
fn original(roots: &Roots, network_file: &Path) -> Result<PathBuf, Error> {
    let name = file_name(network_file)?;
    let Some(stem) = replaced_stem(name) else {
        return Ok(roots.resolve(network_file));
    };
    let wanted = format!("{stem}.network");
    network_dirs(roots)
        .into_iter()
        .map(|d| d.join(&wanted))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            Error::new(format!(
                "{} stands for {wanted}, which is in none of networkd's directories",
                comment_safe(network_file)
            ))
            .hint(format!(
                "restore {wanted}, or have dom0 clear the setting and run `networkctl reload`"
            ))
        })
}

/// One file of the link's configuration, as read.
struct Source {
    /// Where it is.
    path: PathBuf,
    /// What it says.
    text: String,
}

/// The original file and its drop-ins other than the agent's, in networkd's
/// order (drop-ins by name, one of a name in the directory of highest
/// priority): the configuration the agent's file amends.
fn sources(roots: &Roots, original: &Path, base: &str) -> Result<Vec<Source>, Error> {
    let text = read_optional(original)?.ok_or_else(|| {
        Error::new(format!(
            "cannot read {}: no such file",
            comment_safe(original)
        ))
    })?;
    let mut out = vec![Source {
        path: original.to_path_buf(),
        text,
    }];
    let mut dirs = network_dirs(roots);
    if let Some(parent) = original.parent() {
        if !dirs.iter().any(|d| d == parent) {
            dirs.push(parent.to_path_buf());
        }
    }
    let mut dropins = BTreeMap::new();
    for dir in dirs {
        let d = dir.join(format!("{base}.d"));
        for name in list_dir(&d)? {
            if name.ends_with(".conf") && name != DROPIN {
                let path = d.join(&name);
                dropins.entry(name).or_insert(path);
            }
        }
    }
    for path in dropins.into_values() {
        if let Some(text) = read_optional(&path)? {
            out.push(Source { path, text });
        }
    }
    Ok(out)
}

/// Every file the agent wrote for `mac` in `dir` (/etc/systemd/network):
/// its drop-ins (found by their header) and its replacements (by name).
fn our_files(dir: &Path, mac: &str) -> Result<Vec<PathBuf>, Error> {
    let suffix = format!("{TAG}{}.network", bare_mac(mac));
    let mut found = Vec::new();
    for name in list_dir(dir)? {
        if name.ends_with(&suffix) {
            found.push(dir.join(&name));
        } else if name.ends_with(".network.d") {
            let path = dir.join(&name).join(DROPIN);
            if let Some(text) = read_optional(&path)? {
                if header_mac(&text) == Some(mac) {
                    found.push(path);
                }
            }
        }
    }
    Ok(found)
}

/// Remove a file of the agent's, and its drop-in directory if that is left
/// empty.
fn remove_ours(path: &Path, done: &mut Persisted) -> Result<(), Error> {
    if remove(path)? {
        done.removed.push(path.to_path_buf());
    }
    if path.file_name().is_some_and(|n| n == DROPIN) {
        if let Some(d) = path.parent() {
            // Fails, as it should, when other drop-ins are left.
            if fs::remove_dir(d).is_ok() {
                done.removed.push(d.to_path_buf());
                if let Some(parent) = d.parent() {
                    sync_dir(parent)?;
                }
            }
        }
    }
    Ok(())
}

/// A MAC address as 12 lower-case hex digits, however it was written.
fn bare_mac(mac: &str) -> String {
    mac.chars()
        .filter(char::is_ascii_hexdigit)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// One logical line of a unit-style file.
struct Line<'a> {
    /// Its text, continuation lines and newline included.
    raw: &'a str,
    /// What it says.
    item: Item<'a>,
}

/// What a line of a unit-style file says.
enum Item<'a> {
    /// A blank line, a comment, or something networkd ignores.
    Other,
    /// `[Section]`.
    Section(&'a str),
    /// `Key=value`, trimmed, continuations joined.
    Assign(String, String),
}

/// The logical lines of a unit-style file (a line ending in `\` continues
/// on the next).
fn lines(text: &str) -> Vec<Line<'_>> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let first = &rest[..rest.find('\n').map_or(rest.len(), |i| i + 1)];
        let t = first.trim();
        let (len, item) = if t.is_empty() || t.starts_with('#') || t.starts_with(';') {
            (first.len(), Item::Other)
        } else if t.starts_with('[') && t.ends_with(']') {
            (first.len(), Item::Section(t[1..t.len() - 1].trim()))
        } else {
            let mut len = 0;
            let mut logical = String::new();
            loop {
                let l = rest[len..].find('\n').map_or(rest.len() - len, |i| i + 1);
                let piece = rest[len..len + l].trim_end();
                len += l;
                match piece.strip_suffix('\\') {
                    Some(p) if len < rest.len() => {
                        logical.push_str(p);
                        logical.push(' ');
                    }
                    _ => {
                        logical.push_str(piece);
                        break;
                    }
                }
            }
            let item = match logical.split_once('=') {
                Some((k, v)) => Item::Assign(k.trim().to_string(), v.trim().to_string()),
                None => Item::Other,
            };
            (len, item)
        };
        out.push(Line {
            raw: &rest[..len],
            item,
        });
        rest = &rest[len..];
    }
    out
}

/// An address family.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    V4,
    V6,
}

/// The family of an address value (`a`, `a/p`); `None` for networkd's
/// special values (`_dhcp4`, `_ipv6ra`).
fn family(value: &str) -> Option<Family> {
    let address = value.split_once('/').map_or(value, |(a, _)| a).trim();
    match address.parse::<IpAddr>().ok()? {
        IpAddr::V4(_) => Some(Family::V4),
        IpAddr::V6(_) => Some(Family::V6),
    }
}

/// Whether `w` sets the family `f`.
fn sets(w: &Wanted, f: Family) -> bool {
    match f {
        Family::V4 => w.v4.is_some(),
        Family::V6 => w.v6.is_some(),
    }
}

/// The families `DHCP=` enables.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Dhcp {
    v4: bool,
    v6: bool,
}

impl Dhcp {
    /// A `DHCP=` value; `None` for one networkd would ignore.
    fn parse(value: &str) -> Option<Dhcp> {
        let (v4, v6) = match value.to_ascii_lowercase().as_str() {
            "ipv4" | "v4" => (true, false),
            "ipv6" | "v6" => (false, true),
            "both" => (true, true),
            "" | "none" => (false, false),
            other => {
                let b = parse_bool(other)?;
                (b, b)
            }
        };
        Some(Dhcp { v4, v6 })
    }

    /// As a `DHCP=` value.
    fn as_str(self) -> &'static str {
        match (self.v4, self.v6) {
            (true, true) => "yes",
            (true, false) => "ipv4",
            (false, true) => "ipv6",
            (false, false) => "no",
        }
    }
}

/// A systemd boolean.
fn parse_bool(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "yes" | "y" | "true" | "t" | "on" => Some(true),
        "0" | "no" | "n" | "false" | "f" | "off" => Some(false),
        _ => None,
    }
}

/// What the agent needs to know of the link's own configuration.
#[derive(Default)]
struct Original {
    /// `DHCP=`, the last one.
    dhcp: Dhcp,
    /// `IPv6AcceptRA=`, the last one, if any.
    accept_ra: Option<bool>,
    /// A static IPv4 address or gateway (`[Network]`, `[Address]`).
    static4: bool,
    /// A static IPv6 address or gateway.
    static6: bool,
    /// `[Match] Name=`.
    names: Vec<String>,
    /// `[Match] MACAddress=`.
    macs: Vec<String>,
    /// `[Match] PermanentMACAddress=`.
    permanent_macs: Vec<String>,
}

impl Original {
    /// Read the file and its drop-ins, in order.
    fn read(sources: &[Source]) -> Original {
        let mut o = Original::default();
        for source in sources {
            let mut section = "";
            for line in lines(&source.text) {
                match line.item {
                    Item::Section(s) => section = s,
                    Item::Assign(k, v) => o.assign(section, &k, &v),
                    Item::Other => {}
                }
            }
        }
        o
    }

    /// One assignment of the configuration.
    fn assign(&mut self, section: &str, key: &str, value: &str) {
        match (section, key) {
            ("Network", "DHCP") => {
                if let Some(d) = Dhcp::parse(value) {
                    self.dhcp = d;
                }
            }
            ("Network", "IPv6AcceptRA") => {
                self.accept_ra = if value.is_empty() {
                    None
                } else {
                    parse_bool(value).or(self.accept_ra)
                };
            }
            ("Network", "Address" | "Gateway") | ("Address", "Address") => match family(value) {
                Some(Family::V4) => self.static4 = true,
                Some(Family::V6) => self.static6 = true,
                None => {}
            },
            ("Match", "Name") => list(&mut self.names, value),
            ("Match", "MACAddress") => list(&mut self.macs, value),
            ("Match", "PermanentMACAddress") => list(&mut self.permanent_macs, value),
            _ => {}
        }
    }

    /// Whether the file matches this interface alone, so that a drop-in to
    /// it reaches no other.
    fn alone(&self, name: &str, mac: &str) -> bool {
        let one_mac = |l: &[String]| l.len() == 1 && bare_mac(&l[0]) == bare_mac(mac);
        (self.names.len() == 1 && self.names[0] == name)
            || one_mac(&self.macs)
            || one_mac(&self.permanent_macs)
    }

    /// Whether the file has static addresses a drop-in setting `w` would
    /// have to remove.
    fn conflicts(&self, w: &Wanted) -> bool {
        (self.static4 && sets(w, Family::V4)) || (self.static6 && sets(w, Family::V6))
    }

    /// `w` without the dynamic families the file already configures so:
    /// nothing to write for those.
    fn needed(&self, w: Wanted) -> Wanted {
        let dhcp4 = self.dhcp.v4 && !self.static4;
        let ra = self.accept_ra != Some(false) && !self.static6;
        Wanted {
            v4: w.v4.filter(|v| !(*v == V4::Dhcp && dhcp4)),
            v6: w.v6.filter(|v| !(*v == V6::Autoconf && ra)),
        }
    }
}

/// A list setting of `[Match]`: an empty value empties it.
fn list(l: &mut Vec<String>, value: &str) {
    if value.is_empty() {
        l.clear();
    } else {
        l.extend(value.split_whitespace().map(str::to_string));
    }
}

/// The header lines recording `w`.
pub(super) fn state_lines(w: &Wanted) -> String {
    let mut s = String::new();
    match &w.v4 {
        Some(V4::Static(st)) => s += &format!("{V4_LINE}static {}\n", describe(st)),
        Some(V4::Dhcp) => s += &format!("{V4_LINE}dhcp\n"),
        None => {}
    }
    match &w.v6 {
        Some(V6::Static(st)) => s += &format!("{V6_LINE}static {}\n", describe(st)),
        Some(V6::Autoconf) => s += &format!("{V6_LINE}autoconf\n"),
        None => {}
    }
    s
}

/// `a/p`, and ` gateway g` if any.
fn describe<A: Display>(st: &Static<A>) -> String {
    match &st.gateway {
        Some(g) => format!("{}/{} gateway {g}", st.address, st.prefix),
        None => format!("{}/{}", st.address, st.prefix),
    }
}

/// The setting a file of the agent's makes, from its header.
pub(super) fn parse_state(text: &str) -> Wanted {
    let mut w = Wanted::default();
    for line in text.lines().take_while(|l| l.starts_with('#')) {
        if let Some(v) = line.strip_prefix(V4_LINE) {
            w.v4 = match v.trim() {
                "dhcp" => Some(V4::Dhcp),
                s => parse_static(s).map(V4::Static),
            };
        } else if let Some(v) = line.strip_prefix(V6_LINE) {
            w.v6 = match v.trim() {
                "autoconf" => Some(V6::Autoconf),
                s => parse_static(s).map(V6::Static),
            };
        }
    }
    w
}

/// `static a/p [gateway g]`.
fn parse_static<A: FromStr>(s: &str) -> Option<Static<A>> {
    let mut words = s.split_whitespace();
    if words.next()? != "static" {
        return None;
    }
    let (address, prefix) = words.next()?.split_once('/')?;
    let gateway = match (words.next(), words.next(), words.next()) {
        (None, _, _) => None,
        (Some("gateway"), Some(g), None) => Some(g.parse().ok()?),
        _ => return None,
    };
    Some(Static {
        address: address.parse().ok()?,
        prefix: prefix.parse().ok()?,
        gateway,
    })
}

/// dom0's setting as a `[Network]` section, `DHCP=` computed from the
/// file's own (`dhcp`).
fn network_section(dhcp: Dhcp, w: &Wanted) -> String {
    let mut dhcp = dhcp;
    match &w.v4 {
        Some(V4::Static(_)) => dhcp.v4 = false,
        Some(V4::Dhcp) => dhcp.v4 = true,
        None => {}
    }
    if let Some(V6::Static(_)) = &w.v6 {
        dhcp.v6 = false;
    }
    let mut s = format!("[Network]\nDHCP={}\n", dhcp.as_str());
    match &w.v6 {
        Some(V6::Static(_)) => s += "IPv6AcceptRA=no\n",
        Some(V6::Autoconf) => s += "IPv6AcceptRA=yes\n",
        None => {}
    }
    if let Some(V4::Static(st)) = &w.v4 {
        push_static(&mut s, st);
    }
    if let Some(V6::Static(st)) = &w.v6 {
        push_static(&mut s, st);
    }
    s
}

/// `Address=` and `Gateway=` of a static setting.
fn push_static<A: Display>(s: &mut String, st: &Static<A>) {
    *s += &format!("Address={}/{}\n", st.address, st.prefix);
    if let Some(g) = &st.gateway {
        *s += &format!("Gateway={g}\n");
    }
}

/// The drop-in's text.
fn dropin_text(name: &str, mac: &str, w: &Wanted, dhcp: Dhcp) -> String {
    format!(
        "{}{}\n{}",
        header(name, mac, REMOVED_WHEN),
        state_lines(w),
        network_section(dhcp, w)
    )
}

/// The replacement's text: the original and its drop-ins without their
/// `[Match]` and the static addresses of the families `w` sets, matching
/// this interface alone, dom0's setting last.
fn replacement_text(
    name: &str,
    mac: &str,
    w: &Wanted,
    dhcp: Dhcp,
    original: &Path,
    sources: &[Source],
) -> String {
    let mut s = header(name, mac, REMOVED_WHEN);
    s += &state_lines(w);
    s += "# A copy of the file below and its drop-ins, for this interface alone: a\n\
          # drop-in to that file would reach the other interfaces it matches, or\n\
          # could not remove its static addresses. Its [Match] is this interface's,\n\
          # the addresses and gateways of the families dom0 sets are left out, and\n\
          # dom0's setting comes last.\n";
    s += &format!("# replaces: {}\n", comment_safe(original));
    s += &format!("\n[Match]\nMACAddress={mac}\nName={name}\n");
    for source in sources {
        s += &format!("\n# {}\n", comment_safe(&source.path));
        s += &filtered(&source.text, w);
    }
    s += "\n";
    s += &network_section(dhcp, w);
    s
}

/// A file's text without its `[Match]` sections and the static addresses
/// and gateways of the families `w` sets (`[Network] Address=, Gateway=`,
/// whole `[Address]` sections).
fn filtered(text: &str, w: &Wanted) -> String {
    let mut out = String::new();
    let mut section_text = String::new();
    let mut section = "";
    let mut keep = true;
    for line in lines(text) {
        match &line.item {
            Item::Section(s) => {
                if keep {
                    out.push_str(&section_text);
                }
                section_text.clear();
                section = *s;
                keep = *s != "Match";
            }
            Item::Assign(k, v) => {
                let dropped = family(v).is_some_and(|f| sets(w, f));
                match (section, k.as_str()) {
                    ("Network", "Address" | "Gateway") if dropped => continue,
                    ("Address", "Address") if dropped => keep = false,
                    _ => {}
                }
            }
            Item::Other => {}
        }
        section_text.push_str(line.raw);
        if !line.raw.ends_with('\n') {
            section_text.push('\n');
        }
    }
    if keep {
        out.push_str(&section_text);
    }
    out
}
