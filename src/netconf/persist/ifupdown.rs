//! Debian's ifupdown, which brings up every `iface <name> inet|inet6` stanza
//! it reads: a stanza of the agent's would add to the interface's own, not
//! replace it.
//!
//! Rule: dom0's setting is the agent's own file
//! `/etc/network/interfaces.d/xen-guest-agent-<name>`, which
//! /etc/network/interfaces must include (`source`, `source-directory`); it
//! has a stanza of a family only when no other file has one for the
//! interface (the administrator's is never edited: an error says where it
//! is), and `allow-hotplug <name>` unless another file brings it up.

use std::fmt::Display;
use std::path::{Path, PathBuf};

use super::{header, list_dir, read_optional, remove, write_atomic, Persisted, Roots};
use crate::netconf::{Static, Wanted, V4, V6};
use crate::Error;

/// What the name of the agent's file has before the interface's.
const PREFIX: &str = "xen-guest-agent-";

/// How deep `source` lines may nest (against loops through symbolic links).
const MAX_DEPTH: usize = 16;

/// When the agent's file goes away (its header says it).
const REMOVED_WHEN: &str = "dom0 clears the setting";

/// When a change of the agent's file takes effect.
pub(super) fn note(name: &str) -> String {
    format!("ifupdown applies it at the next `ifup {name}` (at boot)")
}

/// `/etc/network/interfaces`.
fn interfaces(roots: &Roots) -> PathBuf {
    roots.etc.join("network/interfaces")
}

/// The agent's file for the interface `name`.
fn ours(roots: &Roots, name: &str) -> PathBuf {
    roots
        .etc
        .join("network/interfaces.d")
        .join(format!("{PREFIX}{name}"))
}

/// ifupdown, when /etc/network/interfaces exists and its state lists the
/// interface, or its files have a stanza or an `auto`/`allow-` line for it.
pub(super) fn detect(roots: &Roots, name: &str) -> bool {
    if !interfaces(roots).is_file() {
        return false;
    }
    if ifstate_lists(roots, name) {
        return true;
    }
    Config::load(roots).is_ok_and(|c| c.knows(name))
}

/// Whether ifupdown's state says it brought the interface up:
/// `/run/network/ifstate` (`<name>=<logical name>` lines), or the file of
/// the interface alone of ifupdown 0.8, `/run/network/ifstate.<name>`.
fn ifstate_lists(roots: &Roots, name: &str) -> bool {
    let run = roots.run.join("network");
    let listed = std::fs::read_to_string(run.join("ifstate")).is_ok_and(|t| {
        t.lines()
            .any(|l| l.split('=').next().map(str::trim) == Some(name))
    });
    listed
        || std::fs::read_to_string(run.join(format!("ifstate.{name}")))
            .is_ok_and(|t| !t.trim().is_empty())
}

/// Write the agent's file for `wanted` (with the stanzas it has of the
/// families left out), or remove it when it has nothing left to say.
pub(super) fn persist(
    roots: &Roots,
    name: &str,
    mac: &str,
    wanted: &Wanted,
) -> Result<Persisted, Error> {
    let top = interfaces(roots);
    if !top.is_file() {
        return Err(Error::new(format!(
            "cannot configure {name} with ifupdown: there is no {}",
            top.display()
        )));
    }
    let config = Config::load(roots)?;
    let ours = ours(roots, name);
    let mut mine = Config::default();
    mine.read(roots, &ours, 0)?;
    // The administrator's stanzas come from `config`, the agent's from its
    // file, whether included or not.
    let v4 = decide(
        name,
        wanted.v4.as_ref().map(|v| v4_stanza(name, v)),
        config.stanza(name, "inet", |f| f != ours),
        mine.stanza(name, "inet", |_| true),
        &ours,
    )?;
    let v6 = decide(
        name,
        wanted.v6.as_ref().map(|v| v6_stanza(name, v)),
        config.stanza(name, "inet6", |f| f != ours),
        mine.stanza(name, "inet6", |_| true),
        &ours,
    )?;

    let mut done = Persisted::default();
    if v4.is_none() && v6.is_none() {
        if remove(&ours)? {
            done.removed.push(ours);
            done.note = Some(note(name));
        }
        return Ok(done);
    }
    if !config.includes(&ours) {
        return Err(Error::new(format!(
            "{} does not include {}: no `source` or `source-directory` line reads it",
            top.display(),
            ours.display()
        ))
        .hint(
            "add `source /etc/network/interfaces.d/*` to /etc/network/interfaces \
             (source-directory reads only names of letters, digits, - and _)",
        ));
    }
    let brought_up = config.up.iter().any(|(file, n)| n == name && *file != ours);
    let mut text = header(name, mac, REMOVED_WHEN);
    if !brought_up {
        text += &format!("allow-hotplug {name}\n");
    }
    for stanza in [v4, v6].into_iter().flatten() {
        text += "\n";
        text += &stanza;
    }
    if write_atomic(&ours, &text)? {
        done.written.push(ours);
        done.note = Some(note(name));
    }
    Ok(done)
}

/// Remove the agent's file for the interface.
pub(super) fn forget(roots: &Roots, name: &str) -> Result<Persisted, Error> {
    let ours = ours(roots, name);
    let mut done = Persisted::default();
    if remove(&ours)? {
        done.removed.push(ours);
        done.note = Some(note(name));
    }
    Ok(done)
}

/// The stanza of one family the agent's file gets, from what dom0 wants
/// (the stanza's text, and its method when dynamic), the administrator's
/// stanza of the family and the agent's.
fn decide(
    name: &str,
    wanted: Option<(String, Option<&str>)>,
    theirs: Option<&Stanza>,
    mine: Option<&Stanza>,
    ours: &Path,
) -> Result<Option<String>, Error> {
    match (wanted, theirs) {
        // Their stanza says it already.
        (Some((_, Some(method))), Some(t)) if t.method == method => Ok(None),
        (Some(_), Some(t)) => Err(Error::new(format!(
            "{name} is configured in {} line {}: applied live only",
            t.file.display(),
            t.line
        ))
        .hint(format!(
            "to let dom0 set it, move that stanza to {}, which the agent rewrites, or remove it",
            ours.display()
        ))),
        (Some((text, _)), None) => Ok(Some(text)),
        // Left as it is: theirs, now that there is one, else the agent's.
        (None, Some(_)) => Ok(None),
        (None, None) => Ok(mine.map(|s| s.text.clone())),
    }
}

/// The IPv4 stanza, and its method when dynamic.
fn v4_stanza(name: &str, v: &V4) -> (String, Option<&'static str>) {
    match v {
        V4::Static(s) => (
            format!("iface {name} inet static\n{}", static_options(s)),
            None,
        ),
        V4::Dhcp => (format!("iface {name} inet dhcp\n"), Some("dhcp")),
    }
}

/// The IPv6 stanza, and its method when dynamic.
fn v6_stanza(name: &str, v: &V6) -> (String, Option<&'static str>) {
    match v {
        V6::Static(s) => (
            format!("iface {name} inet6 static\n{}", static_options(s)),
            None,
        ),
        V6::Autoconf => (format!("iface {name} inet6 auto\n"), Some("auto")),
    }
}

/// `address` and `gateway` of a static stanza.
fn static_options<A: Display>(s: &Static<A>) -> String {
    let mut o = format!("\taddress {}/{}\n", s.address, s.prefix);
    if let Some(g) = &s.gateway {
        o += &format!("\tgateway {g}\n");
    }
    o
}

/// An `iface` stanza.
struct Stanza {
    /// The file it is in.
    file: PathBuf,
    /// The line of its `iface` line.
    line: usize,
    /// The (logical) interface.
    name: String,
    /// `inet`, `inet6`...
    family: String,
    /// `static`, `dhcp`, `auto`...
    method: String,
    /// Its lines, options indented by a tab.
    text: String,
}

/// A `source` (files) or `source-directory` (directories) line.
enum Include {
    Files(Pattern),
    Directories(Pattern),
}

/// What ifupdown's files say, as far as the agent needs.
#[derive(Default)]
struct Config {
    /// Every `iface` stanza.
    stanzas: Vec<Stanza>,
    /// The interfaces `auto`, `allow-auto` and `allow-hotplug` lines bring
    /// up, with the file of the line.
    up: Vec<(PathBuf, String)>,
    /// Every `source` and `source-directory` line.
    includes: Vec<Include>,
    /// The files read (ifupdown reads a file once).
    seen: Vec<PathBuf>,
}

impl Config {
    /// /etc/network/interfaces and the files it includes.
    fn load(roots: &Roots) -> Result<Config, Error> {
        let mut c = Config::default();
        c.read(roots, &interfaces(roots), 0)?;
        Ok(c)
    }

    /// The first stanza of `family` for the interface in a file `file`
    /// accepts.
    fn stanza(&self, name: &str, family: &str, file: impl Fn(&Path) -> bool) -> Option<&Stanza> {
        self.stanzas
            .iter()
            .find(|s| s.name == name && s.family == family && file(&s.file))
    }

    /// Whether a stanza or an `auto`/`allow-` line names the interface.
    fn knows(&self, name: &str) -> bool {
        self.stanzas.iter().any(|s| s.name == name) || self.up.iter().any(|(_, n)| n == name)
    }

    /// Whether a `source` or `source-directory` line reads `path`.
    fn includes(&self, path: &Path) -> bool {
        self.includes.iter().any(|i| match i {
            Include::Files(p) => p.matches(path),
            Include::Directories(p) => {
                path.parent().is_some_and(|d| p.matches(d))
                    && path
                        .file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(directory_name)
            }
        })
    }

    /// Read the file `path` (a missing one is no error, as for ifupdown),
    /// `depth` includes deep.
    fn read(&mut self, roots: &Roots, path: &Path, depth: usize) -> Result<(), Error> {
        if self.seen.iter().any(|p| p == path) {
            return Ok(());
        }
        self.seen.push(path.to_path_buf());
        let Some(text) = read_optional(path)? else {
            return Ok(());
        };
        let dir = path.parent().unwrap_or(Path::new("/"));
        let mut current: Option<usize> = None;
        for (number, line) in logical_lines(&text) {
            let mut words = line.split_whitespace();
            let Some(first) = words.next() else {
                continue;
            };
            let rest: Vec<&str> = words.collect();
            if first == "iface" {
                current = None;
                if let Some(n) = rest.first() {
                    current = Some(self.stanzas.len());
                    self.stanzas.push(Stanza {
                        file: path.to_path_buf(),
                        line: number,
                        name: n.to_string(),
                        family: rest.get(1).unwrap_or(&"").to_string(),
                        method: rest.get(2).unwrap_or(&"").to_string(),
                        text: format!("{line}\n"),
                    });
                }
                continue;
            }
            let include = first == "source" || is_source_directory(first);
            if include || is_keyword(first) {
                current = None;
            }
            if first == "auto" || first == "allow-auto" || first == "allow-hotplug" {
                let file = path.to_path_buf();
                self.up
                    .extend(rest.iter().map(|n| (file.clone(), n.to_string())));
            } else if include {
                if depth >= MAX_DEPTH {
                    return Err(Error::new(format!(
                        "{} line {number}: `{first}` nested more than {MAX_DEPTH} deep",
                        path.display()
                    )));
                }
                for word in rest {
                    let pattern = Pattern::new(roots, dir, word);
                    if first == "source" {
                        for file in pattern.expand() {
                            if file.is_file() {
                                self.read(roots, &file, depth + 1)?;
                            }
                        }
                        self.includes.push(Include::Files(pattern));
                    } else {
                        for d in pattern.expand() {
                            if !d.is_dir() {
                                continue;
                            }
                            for name in list_dir(&d)? {
                                if directory_name(&name) {
                                    self.read(roots, &d.join(name), depth + 1)?;
                                }
                            }
                        }
                        self.includes.push(Include::Directories(pattern));
                    }
                }
            } else if let Some(i) = current {
                self.stanzas[i].text += &format!("\t{line}\n");
            }
        }
        Ok(())
    }
}

/// The words that end a stanza, apart from `iface` and the includes.
fn is_keyword(word: &str) -> bool {
    matches!(
        word,
        "mapping" | "auto" | "no-auto-down" | "no-scripts" | "rename"
    ) || (word.len() > "allow-".len() && word.starts_with("allow-"))
}

/// `source-directory`, which ifupdown also takes shortened down to
/// `source-dir`.
fn is_source_directory(word: &str) -> bool {
    word.starts_with("source-dir") && "source-directory".starts_with(word)
}

/// A name `source-directory` reads (as run-parts: letters, digits, `_`, `-`).
fn directory_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The lines of an interfaces file as ifupdown reads them, with the number
/// of their first line: comment lines (`#` first) left out, a line ending
/// in `\` joined with the next, leading and trailing blanks trimmed.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut physical = text.lines().enumerate();
    while let Some((i, l)) = physical.next() {
        let l = l.trim_start();
        if l.starts_with('#') {
            continue;
        }
        let mut line = l.to_string();
        while line.ends_with('\\') {
            line.pop();
            match physical.next() {
                Some((_, next)) => line.push_str(next),
                None => break,
            }
        }
        out.push((i + 1, line.trim_end().to_string()));
    }
    out
}

/// A path pattern of a `source` line (shell wildcards): the directory its
/// leading components without wildcards name, under the roots, and the
/// components after.
struct Pattern {
    base: PathBuf,
    rest: Vec<String>,
}

impl Pattern {
    /// `pattern` as written in a file of the directory `dir` (relative
    /// patterns are relative to it).
    fn new(roots: &Roots, dir: &Path, pattern: &str) -> Pattern {
        let parts: Vec<&str> = pattern.split('/').filter(|p| !p.is_empty()).collect();
        let literal = parts
            .iter()
            .take_while(|p| !p.contains(['*', '?', '[']))
            .count();
        let leading: PathBuf = parts[..literal].iter().collect();
        let base = if pattern.starts_with('/') {
            roots.resolve(&Path::new("/").join(leading))
        } else {
            dir.join(leading)
        };
        Pattern {
            base,
            rest: parts[literal..].iter().map(|p| p.to_string()).collect(),
        }
    }

    /// The paths that exist and match, sorted.
    fn expand(&self) -> Vec<PathBuf> {
        let mut found = vec![self.base.clone()];
        for part in &self.rest {
            let mut next = Vec::new();
            for dir in &found {
                for name in list_dir(dir).unwrap_or_default() {
                    if fnmatch(part, &name) {
                        next.push(dir.join(name));
                    }
                }
            }
            found = next;
        }
        found.sort();
        found
    }

    /// Whether `path` (existing or not) matches.
    fn matches(&self, path: &Path) -> bool {
        let Ok(rel) = path.strip_prefix(&self.base) else {
            return false;
        };
        let names: Vec<&str> = rel.iter().filter_map(|c| c.to_str()).collect();
        names.len() == self.rest.len()
            && rel.iter().count() == names.len()
            && self.rest.iter().zip(&names).all(|(p, n)| fnmatch(p, n))
    }
}

/// Whether a file name matches one component of a shell pattern (`*`, `?`,
/// `[...]`, `\`); a leading `.` must be matched by one.
pub(super) fn fnmatch(pattern: &str, name: &str) -> bool {
    if name.starts_with('.') && !pattern.starts_with('.') {
        return false;
    }
    let (p, n) = (pattern.as_bytes(), name.as_bytes());
    let (mut pi, mut ni) = (0, 0);
    // Where the last `*` was, and the name's position it matched up to.
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        let step = match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, ni));
                pi += 1;
                continue;
            }
            Some(b'?') => Some(1),
            Some(b'[') => match bracket(&p[pi..], n[ni]) {
                Some((true, len)) => Some(len),
                Some((false, _)) => None,
                None => (n[ni] == b'[').then_some(1),
            },
            Some(b'\\') if pi + 1 < p.len() => (p[pi + 1] == n[ni]).then_some(2),
            Some(c) => (*c == n[ni]).then_some(1),
            None => None,
        };
        match (step, star) {
            (Some(len), _) => {
                pi += len;
                ni += 1;
            }
            (None, Some((sp, sn))) => {
                star = Some((sp, sn + 1));
                pi = sp + 1;
                ni = sn + 1;
            }
            (None, None) => return false,
        }
    }
    p[pi.min(p.len())..].iter().all(|c| *c == b'*')
}

/// A bracket expression at the start of `p` against `c`: whether it
/// matches, and its length; `None` when it is not closed.
fn bracket(p: &[u8], c: u8) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(p.get(i), Some(b'!' | b'^'));
    if negate {
        i += 1;
    }
    let start = i;
    let mut matched = false;
    loop {
        let first = *p.get(i)?;
        if first == b']' && i > start {
            return Some((matched != negate, i + 1));
        }
        match (p.get(i + 1), p.get(i + 2)) {
            (Some(b'-'), Some(&last)) if last != b']' => {
                matched |= first <= c && c <= last;
                i += 3;
            }
            _ => {
                matched |= first == c;
                i += 1;
            }
        }
    }
}
