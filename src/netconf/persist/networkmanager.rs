//! NetworkManager, which has one connection profile active on a device at a
//! time: at boot, of the profiles that may autoconnect there, the one of
//! highest `autoconnect-priority` (then the one used last).
//!
//! Rule: dom0's setting is a profile of the agent's own, the keyfile
//! `/etc/NetworkManager/system-connections/xen-guest-agent-<mac>.nmconnection`
//! (mode 0600: NetworkManager ignores a keyfile others may read), bound to
//! the interface's name and MAC, `autoconnect-priority=100` so that it wins
//! at the next boot over the guest's own profiles (0 unless set), which are
//! never edited. A family dom0 leaves out takes the section of the profile
//! active on the device (a keyfile in /run, /etc or /usr/lib, found by its
//! UUID), else what the agent set before, else `method=auto`; an active
//! profile that is no keyfile but an ifcfg-rh file cannot be copied: an
//! error says so. One on no disk at all is taken for NetworkManager's
//! in-memory default ("Wired connection 1" before NetworkManager 1.20, which
//! keeps it in /run since): DHCP and autoconf, so `method=auto`. The profile
//! is removed when nothing of dom0's is static and the guest's profile
//! already does the DHCP/autoconf dom0 asks for: that one applies again.
//!
//! Nothing here talks to NetworkManager: [`Persisted::reload`] says what to
//! reload and activate.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::networkd::{parse_state, state_lines};
use super::{
    comment_safe, header, list_dir, read_optional, remove, write_atomic_mode, Detected, Persisted,
    Reload, Roots,
};
use crate::netconf::{Static, Wanted, V4, V6};
use crate::Error;

/// NetworkManager's keyfile directory below /etc and /run.
const PROFILES: &str = "NetworkManager/system-connections";

/// Its read-only directory of the distribution's profiles.
const LIB_PROFILES: &str = "/usr/lib/NetworkManager/system-connections";

/// The ifcfg-rh plugin's directory below /etc.
const IFCFG: &str = "sysconfig/network-scripts";

/// The keyfiles' extension (required outside /etc).
const EXTENSION: &str = ".nmconnection";

/// What the name of the agent's profile has before the MAC.
const PREFIX: &str = "xen-guest-agent-";

/// The UUID of the agent's profiles, but for the MAC's 12 hex digits: an
/// RFC 9562 version 8 ("custom") layout, see [`uuid`].
const UUID_PREFIX: &str = "5ca1ab1e-0000-8000-8000-";

/// The agent's profile's `autoconnect-priority` (NetworkManager's range is
/// -999..=999, 0 by default).
const PRIORITY: u32 = 100;

/// The mode of the agent's profile: NetworkManager ignores a keyfile that
/// its group or others may read.
const MODE: u32 = 0o600;

/// When the agent's profile goes away (its header says it).
const REMOVED_WHEN: &str = "dom0 asks for DHCP/autoconf back or the setting is cleared";

/// The header line naming the guest's profile the agent's replaces, to
/// activate again when it goes.
const GUEST_LINE: &str = "# guest profile: ";

/// NetworkManager's state of the device of kernel index `index`
/// (`/run/NetworkManager/devices/<index>`, a keyfile: `[device]`,
/// `managed=`, `connection-uuid=`): [`Detected::NetworkManager`] when it
/// says `managed=true` (NetworkManager writes it for every device it
/// manages), [`Detected::None`] otherwise (`managed=false`: unmanaged by
/// the user; no `managed=`: unmanaged by its configuration); `None` when
/// there is no state.
pub(super) fn detect(roots: &Roots, index: u32) -> Option<Detected> {
    let path = roots
        .run
        .join("NetworkManager/devices")
        .join(index.to_string());
    let text = fs::read_to_string(path).ok()?;
    let managed = value(&text, "device", "managed").and_then(|v| parse_bool(&v));
    if managed != Some(true) {
        return Some(Detected::None);
    }
    let connection_uuid = value(&text, "device", "connection-uuid").filter(|u| valid_uuid(u));
    Some(Detected::NetworkManager { connection_uuid })
}

/// Write the agent's profile for `wanted` (with, for the families left out,
/// what the active profile or the agent's previous setting says), or remove
/// it when the guest's own profile does what is left; `active` is the
/// profile active on the device.
pub(super) fn persist(
    roots: &Roots,
    active: Option<&str>,
    name: &str,
    mac: &str,
    wanted: &Wanted,
) -> Result<Persisted, Error> {
    let active = active.filter(|a| valid_uuid(a));
    let path = ours(roots, mac);
    let own_uuid = uuid(mac);
    let mine = read_optional(&path)?;
    let previous = mine.as_deref().map(parse_state).unwrap_or_default();
    let active_is_ours = active.is_some_and(|a| a.eq_ignore_ascii_case(&own_uuid));
    let guest_active = active.filter(|_| !active_is_ours);
    let source = match (guest_active, &mine) {
        (Some(uuid), _) => Source::Guest(uuid, find(roots, uuid)?),
        (None, Some(text)) if active_is_ours => Source::Ours(text),
        _ => Source::Nothing,
    };
    let v4 = family(
        "ipv4",
        wanted.v4.as_ref().map(v4_section),
        previous.v4.as_ref().map(v4_section),
        &source,
        name,
    );
    let v6 = family(
        "ipv6",
        wanted.v6.as_ref().map(v6_section),
        previous.v6.as_ref().map(v6_section),
        &source,
        name,
    );
    // What the header records: dom0's setting, the families copied aside.
    let recorded = Wanted {
        v4: match v4.1 {
            From::Dom0 => wanted.v4.clone(),
            From::Before => previous.v4.clone(),
            From::Other => None,
        },
        v6: match v6.1 {
            From::Dom0 => wanted.v6.clone(),
            From::Before => previous.v6.clone(),
            From::Other => None,
        },
    };
    let guest = guest_active
        .map(str::to_string)
        .or_else(|| mine.as_deref().and_then(guest_line));

    // The guest's profile, that applies again without the agent's.
    let returning = match (&source, &guest) {
        (Source::Guest(_, found), _) => Some(found.clone()),
        (_, Some(uuid)) => Some(find(roots, uuid)?),
        _ => None,
    };
    let does_auto = |group: &str| match &returning {
        Some(Found::Keyfile { text, .. }) => {
            value(text, group, "method").is_none_or(|m| m == "auto")
        }
        // Not known: back to it is what dom0 asks for.
        _ => true,
    };
    let needed = match &recorded.v4 {
        Some(V4::Static(_)) => true,
        Some(V4::Dhcp) => !does_auto("ipv4"),
        None => false,
    } || match &recorded.v6 {
        Some(V6::Static(_)) => true,
        Some(V6::Autoconf) => !does_auto("ipv6"),
        None => false,
    };

    let mut done = Persisted::default();
    if !needed {
        if mine.is_some() && remove(&path)? {
            done.removed.push(path);
            removed(&mut done, name, guest);
        }
        return Ok(done);
    }
    // A section that cannot be copied matters only now.
    let (v4, v6) = (v4.0?, v6.0?);
    let text = profile_text(
        name,
        mac,
        &recorded,
        guest.as_deref(),
        [v4.as_deref(), v6.as_deref()],
    );
    if write_atomic_mode(&path, &text, MODE)? {
        done.written.push(path);
        done.note = Some(format!(
            "NetworkManager applies it when it activates the profile: at boot, or after \
             `nmcli connection reload` and `nmcli connection up {own_uuid}`"
        ));
        done.reload = Reload::NetworkManager {
            uuid: own_uuid,
            interface: name.to_string(),
        };
    }
    Ok(done)
}

/// Remove the agent's profile for `mac`; `active` is the profile active on
/// the device, if known.
pub(super) fn forget(
    roots: &Roots,
    active: Option<&str>,
    name: &str,
    mac: &str,
) -> Result<Persisted, Error> {
    let path = ours(roots, mac);
    let mut done = Persisted::default();
    let Some(text) = read_optional(&path)? else {
        return Ok(done);
    };
    let own_uuid = uuid(mac);
    let guest = active
        .filter(|a| valid_uuid(a) && !a.eq_ignore_ascii_case(&own_uuid))
        .map(str::to_string)
        .or_else(|| guest_line(&text));
    if remove(&path)? {
        done.removed.push(path);
        removed(&mut done, name, guest);
    }
    Ok(done)
}

/// The note and the reload of a removal of the agent's profile, the guest's
/// `guest` to activate again.
fn removed(done: &mut Persisted, name: &str, guest: Option<String>) {
    done.note = Some(match &guest {
        Some(g) => format!(
            "NetworkManager stops using it after `nmcli connection reload` and \
             `nmcli connection up {g}`"
        ),
        None => "NetworkManager stops using it after `nmcli connection reload`".to_string(),
    });
    done.reload = Reload::NetworkManager {
        uuid: guest.unwrap_or_default(),
        interface: name.to_string(),
    };
}

/// The agent's profile for `mac` (lower case, with colons).
fn ours(roots: &Roots, mac: &str) -> PathBuf {
    roots
        .etc
        .join(PROFILES)
        .join(format!("{PREFIX}{}{EXTENSION}", bare_mac(mac)))
}

/// The UUID of the agent's profile for `mac`: [`UUID_PREFIX`] and the MAC's
/// 12 hex digits. Unique enough: a guest has one profile of the agent's per
/// MAC and its interfaces have distinct MACs; the fixed first 20 digits,
/// with version 8 where random UUIDs (NetworkManager's own) have 4 and
/// name-based ones 3 or 5, cannot be those of another profile but by
/// design; and the agent finds its profile by reading it.
pub(super) fn uuid(mac: &str) -> String {
    format!("{UUID_PREFIX}{}", bare_mac(mac))
}

/// A MAC address as 12 lower-case hex digits.
fn bare_mac(mac: &str) -> String {
    mac.chars()
        .filter(char::is_ascii_hexdigit)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Whether a UUID read from NetworkManager's files may be used in a
/// comment, a message and a D-Bus call: 1 to 64 of `A-Z a-z 0-9 -`.
fn valid_uuid(uuid: &str) -> bool {
    (1..=64).contains(&uuid.len()) && uuid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// The guest's profile a profile of the agent's replaces, from its header.
fn guest_line(text: &str) -> Option<String> {
    text.lines()
        .take_while(|l| l.starts_with('#'))
        .find_map(|l| l.strip_prefix(GUEST_LINE))
        .map(str::trim)
        .filter(|u| valid_uuid(u))
        .map(str::to_string)
}

/// A boolean as NetworkManager reads one.
fn parse_bool(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Some(true),
        "false" | "no" | "off" | "0" => Some(false),
        _ => None,
    }
}

/// Where a profile is, found by its UUID.
#[derive(Clone)]
enum Found {
    /// A keyfile, and its text.
    Keyfile { path: PathBuf, text: String },
    /// A file of the ifcfg-rh plugin.
    Ifcfg(PathBuf),
    /// On no disk the agent knows of.
    Nowhere,
}

/// The profile a family left out is copied from.
enum Source<'a> {
    /// The guest's profile active on the device: its UUID, where it is.
    Guest(&'a str, Found),
    /// The agent's own is active: its text.
    Ours(&'a str),
    /// No profile is active (or none known).
    Nothing,
}

/// Where a family of the agent's profile comes from.
#[derive(Clone, Copy)]
enum From {
    /// dom0's setting now.
    Dom0,
    /// What the agent set before.
    Before,
    /// A copy, or `method=auto`: not recorded.
    Other,
}

/// The section `group` (`ipv4`, `ipv6`) of the agent's profile, if any (or
/// why it cannot be copied), and where it comes from: dom0's setting
/// (`wanted`), else the active profile's section, else the agent's previous
/// setting (`previous`), else `method=auto`.
fn family(
    group: &str,
    wanted: Option<String>,
    previous: Option<String>,
    source: &Source<'_>,
    name: &str,
) -> (Result<Option<String>, Error>, From) {
    if wanted.is_some() {
        return (Ok(wanted), From::Dom0);
    }
    if let Source::Guest(uuid, Found::Keyfile { path, text }) = source {
        let copied = section(text, group, false).map(|s| {
            format!(
                "# Copied from {} (profile {uuid}), active before.\n{s}",
                comment_safe(path)
            )
        });
        return (Ok(copied), From::Other);
    }
    if previous.is_some() {
        return (Ok(previous), From::Before);
    }
    let result = match source {
        Source::Ours(text) => Ok(section(text, group, true)),
        Source::Guest(uuid, Found::Ifcfg(path)) => Err(Error::new(format!(
            "the active NetworkManager profile {uuid} of {name} is not a keyfile but {}, \
             whose {group} settings the agent cannot copy",
            comment_safe(path)
        ))
        .hint(format!(
            "have dom0 set {group} too, or convert the profile to a keyfile \
             (`nmcli connection migrate {uuid}`)"
        ))),
        _ => Ok(Some(format!("[{group}]\nmethod=auto\n"))),
    };
    (result, From::Other)
}

/// The `[ipv4]` section of dom0's IPv4 setting.
fn v4_section(v: &V4) -> String {
    match v {
        V4::Static(s) => static_section("ipv4", s),
        V4::Dhcp => "[ipv4]\nmethod=auto\n".to_string(),
    }
}

/// The `[ipv6]` section of dom0's IPv6 setting.
fn v6_section(v: &V6) -> String {
    match v {
        V6::Static(s) => static_section("ipv6", s),
        V6::Autoconf => "[ipv6]\nmethod=auto\n".to_string(),
    }
}

/// A section of a static setting, its address and gateway as
/// NetworkManager writes them (`address1=a/p`, `gateway=g`; it reads the
/// older `address1=a/p,g` too).
fn static_section<A: std::fmt::Display>(group: &str, s: &Static<A>) -> String {
    let mut text = format!(
        "[{group}]\nmethod=manual\naddress1={}/{}\n",
        s.address, s.prefix
    );
    if let Some(g) = &s.gateway {
        text += &format!("gateway={g}\n");
    }
    text
}

/// The agent's profile.
fn profile_text(
    name: &str,
    mac: &str,
    recorded: &Wanted,
    guest: Option<&str>,
    sections: [Option<&str>; 2],
) -> String {
    let mut s = header(name, mac, REMOVED_WHEN);
    s += &state_lines(recorded);
    if let Some(g) = guest {
        s += &format!("{GUEST_LINE}{g}\n");
    }
    s += &format!(
        "\n[connection]\n\
         id=xen-guest-agent {name}\n\
         uuid={}\n\
         type=ethernet\n\
         interface-name={name}\n\
         autoconnect=true\n\
         autoconnect-priority={PRIORITY}\n\
         \n[ethernet]\n\
         mac-address={}\n",
        uuid(mac),
        mac.to_ascii_uppercase()
    );
    for section in sections.into_iter().flatten() {
        s += "\n";
        s += section;
    }
    s
}

/// Find the profile of UUID `uuid`: a keyfile of NetworkManager's (in its
/// order: /run, /etc, /usr/lib), else an ifcfg-rh file.
fn find(roots: &Roots, uuid: &str) -> Result<Found, Error> {
    let dirs = [
        (roots.run.join(PROFILES), true),
        (roots.etc.join(PROFILES), false),
        (PathBuf::from(LIB_PROFILES), true),
    ];
    for (dir, extension) in dirs {
        for file in list_dir(&dir)? {
            if ignored(&file, extension) {
                continue;
            }
            let path = dir.join(&file);
            if !path.is_file() {
                continue;
            }
            let Some(text) = read_lossy(&path)? else {
                continue;
            };
            if value(&text, "connection", "uuid").is_some_and(|u| u.eq_ignore_ascii_case(uuid)) {
                return Ok(Found::Keyfile { path, text });
            }
        }
    }
    let dir = roots.etc.join(IFCFG);
    for file in list_dir(&dir)? {
        if !file.starts_with("ifcfg-") {
            continue;
        }
        let path = dir.join(&file);
        let Some(text) = read_lossy(&path)? else {
            continue;
        };
        let has = text.lines().any(|l| {
            l.trim()
                .strip_prefix("UUID=")
                .map(|v| v.trim().trim_matches(|c| c == '"' || c == '\''))
                .is_some_and(|v| v.eq_ignore_ascii_case(uuid))
        });
        if has {
            return Ok(Found::Ifcfg(path));
        }
    }
    Ok(Found::Nowhere)
}

/// Whether NetworkManager's keyfile plugin ignores the file `name`: hidden,
/// without `.nmconnection` where that is required (outside /etc), else a
/// backup, a temporary file (mkstemp's `.XXXXXX`), a certificate or a key.
pub(super) fn ignored(name: &str, extension_required: bool) -> bool {
    if name.is_empty() || name.starts_with('.') {
        return true;
    }
    if extension_required {
        return !(name.len() > EXTENSION.len() && name.ends_with(EXTENSION));
    }
    let lower = name.to_ascii_lowercase();
    let mkstemp = name
        .rsplit_once('.')
        .is_some_and(|(_, s)| s.len() == 6 && s.bytes().all(|b| b.is_ascii_alphanumeric()));
    name.ends_with('~')
        || mkstemp
        || (lower.len() > 4 && (lower.ends_with(".pem") || lower.ends_with(".der")))
}

/// A file's text (invalid UTF-8 replaced), `None` when it is gone.
fn read_lossy(path: &Path) -> Result<Option<String>, Error> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(format!("cannot read {}", path.display()), e)),
    }
}

/// What a line of a keyfile (GLib's key file format) says.
enum Line<'a> {
    /// `[group]`.
    Group(&'a str),
    /// `key=value`, trimmed.
    Entry(&'a str, &'a str),
    /// A blank line, a comment, or something GLib would refuse.
    Other,
}

/// One line of a keyfile.
fn line(raw: &str) -> Line<'_> {
    let t = raw.trim();
    if t.is_empty() || t.starts_with('#') {
        Line::Other
    } else if let Some(g) = t.strip_prefix('[').and_then(|g| g.strip_suffix(']')) {
        Line::Group(g)
    } else if let Some((k, v)) = t.split_once('=') {
        Line::Entry(k.trim(), v.trim())
    } else {
        Line::Other
    }
}

/// The value of `key` in `group` of a keyfile: the last one.
fn value(text: &str, group: &str, key: &str) -> Option<String> {
    let mut current = None;
    let mut found = None;
    for raw in text.lines() {
        match line(raw) {
            Line::Group(g) => current = Some(g),
            Line::Entry(k, v) if current == Some(group) && k == key => found = Some(v),
            _ => {}
        }
    }
    found.map(str::to_string)
}

/// The first section `group` of a keyfile as written: its `[group]` line
/// and the lines up to the next section, but for the blank lines and
/// comments that end it (those are the next section's); with
/// `with_comment`, the comment lines just before it too.
fn section(text: &str, group: &str, with_comment: bool) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines
        .iter()
        .position(|l| matches!(line(l), Line::Group(g) if g == group))?;
    let mut end = lines[start + 1..]
        .iter()
        .position(|l| matches!(line(l), Line::Group(_)))
        .map_or(lines.len(), |i| start + 1 + i);
    while end > start + 1 && matches!(line(lines[end - 1]), Line::Other) {
        end -= 1;
    }
    let mut first = start;
    if with_comment {
        while first > 0 && lines[first - 1].trim_start().starts_with('#') {
            first -= 1;
        }
    }
    let mut s = String::new();
    for l in &lines[first..end] {
        s += l;
        s += "\n";
    }
    Some(s)
}
