//! The stdout publisher: one line per change, readable text or JSON.
//!
//! For debugging outside Xen and for tests: the JSON lines carry every fact
//! of the model, so a reader can rebuild the agent's view exactly.

use std::fmt::Write as _;
use std::io::{self, Write};

use crate::cli::Format;
use crate::state::{Address, Change, Kind, Link};

/// Prints change sets on standard output.
pub struct Stdout {
    format: Format,
    out: io::BufWriter<io::Stdout>,
}

impl Stdout {
    /// A publisher printing in `format`.
    pub fn new(format: Format) -> Self {
        Stdout {
            format,
            out: io::BufWriter::new(io::stdout()),
        }
    }

    /// Print one change set, then flush it so that readers see it at once.
    pub fn publish(&mut self, changes: &[Change]) -> io::Result<()> {
        let mut line = String::new();
        for change in changes {
            line.clear();
            match self.format {
                Format::Text => text(&mut line, change),
                Format::Json => json(&mut line, change),
            }
            line.push('\n');
            self.out.write_all(line.as_bytes())?;
        }
        self.out.flush()
    }

    /// Everything is written by the time `publish` returns.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// `kind` as a word, and the VIF id when there is one.
fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Vif(_) => "vif",
        Kind::Bridge => "bridge",
        Kind::Bond => "bond",
        Kind::Loopback => "loopback",
        Kind::Other => "other",
    }
}

/// A value for the text format: bare when it is one plain word, quoted with
/// Rust-style escapes otherwise (names may hold spaces or odd bytes).
fn word(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\' && c != '=')
    {
        s.to_string()
    } else {
        format!("{s:?}")
    }
}

fn text_link(out: &mut String, l: &Link) {
    let _ = write!(
        out,
        " index={} name={} mac={} kind={}",
        l.index,
        word(&l.name),
        l.mac.as_deref().unwrap_or("-"),
        kind_name(l.kind)
    );
    if let Kind::Vif(id) = l.kind {
        let _ = write!(out, " vif={id}");
    }
    match l.master {
        Some(m) => {
            let _ = write!(out, " master={m}");
        }
        None => out.push_str(" master=-"),
    }
    out.push_str(if l.up { " up" } else { " down" });
}

fn text_addr(out: &mut String, l: &Link, addr: &std::net::IpAddr, a: &Address) {
    let _ = write!(
        out,
        " index={} name={} address={addr}/{}",
        l.index,
        word(&l.name),
        a.prefix
    );
    let flags = a.flags.names();
    if !flags.is_empty() {
        let _ = write!(out, " flags={}", flags.join(","));
    }
}

/// The readable line of one change.
fn text(out: &mut String, change: &Change) {
    match change {
        Change::Os(os) => {
            let _ = write!(
                out,
                "os distro={} version={} major={} minor={} name={}",
                word(&os.distro),
                word(&os.version),
                word(&os.major),
                word(&os.minor),
                word(&os.name)
            );
        }
        Change::Kernel(k) => {
            let _ = write!(
                out,
                "kernel sysname={} release={} machine={} version={}",
                word(&k.sysname),
                word(&k.release),
                word(&k.machine),
                word(&k.version)
            );
        }
        Change::Memory(m) => {
            let _ = write!(
                out,
                "memory total_kib={} available_kib={}",
                m.total_kib, m.available_kib
            );
        }
        Change::LinkAdded(l) => {
            out.push_str("link-added");
            text_link(out, l);
        }
        Change::LinkChanged { old, new } => {
            out.push_str("link-changed");
            text_link(out, new);
            if old.name != new.name {
                let _ = write!(out, " old_name={}", word(&old.name));
            }
        }
        Change::LinkRemoved(l) => {
            out.push_str("link-removed");
            text_link(out, l);
        }
        Change::AddressAdded { link, addr, info } => {
            out.push_str("address-added");
            text_addr(out, link, addr, info);
        }
        Change::AddressChanged {
            link, addr, new, ..
        } => {
            out.push_str("address-changed");
            text_addr(out, link, addr, new);
        }
        Change::AddressRemoved { link, addr, info } => {
            out.push_str("address-removed");
            text_addr(out, link, addr, info);
        }
    }
}

/// A JSON string literal.
fn js(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `,"key":"value"`
fn jfield(out: &mut String, key: &str, value: &str) {
    let _ = write!(out, ",\"{key}\":");
    js(out, value);
}

fn json_link(out: &mut String, l: &Link) {
    let _ = write!(out, ",\"index\":{}", l.index);
    jfield(out, "name", &l.name);
    match &l.mac {
        Some(m) => jfield(out, "mac", m),
        None => out.push_str(",\"mac\":null"),
    }
    jfield(out, "kind", kind_name(l.kind));
    match l.kind {
        Kind::Vif(id) => {
            let _ = write!(out, ",\"vif\":{id}");
        }
        _ => out.push_str(",\"vif\":null"),
    }
    match l.master {
        Some(m) => {
            let _ = write!(out, ",\"master\":{m}");
        }
        None => out.push_str(",\"master\":null"),
    }
    let _ = write!(out, ",\"up\":{}", l.up);
}

fn json_addr(out: &mut String, l: &Link, addr: &std::net::IpAddr, a: &Address) {
    let _ = write!(out, ",\"index\":{}", l.index);
    jfield(out, "name", &l.name);
    jfield(out, "address", &addr.to_string());
    let _ = write!(out, ",\"prefix\":{},\"flags\":[", a.prefix);
    for (i, f) in a.flags.names().iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        js(out, f);
    }
    out.push(']');
}

/// The JSON object of one change: `{"change": <what>, ...facts}`.
fn json(out: &mut String, change: &Change) {
    let (what, rest): (&str, &dyn Fn(&mut String)) = match change {
        Change::Os(os) => ("os", &|o: &mut String| {
            jfield(o, "distro", &os.distro);
            jfield(o, "name", &os.name);
            jfield(o, "version", &os.version);
            jfield(o, "major", &os.major);
            jfield(o, "minor", &os.minor);
        }),
        Change::Kernel(k) => ("kernel", &|o: &mut String| {
            jfield(o, "sysname", &k.sysname);
            jfield(o, "release", &k.release);
            jfield(o, "version", &k.version);
            jfield(o, "machine", &k.machine);
        }),
        Change::Memory(m) => ("memory", &|o: &mut String| {
            let _ = write!(
                o,
                ",\"total_kib\":{},\"available_kib\":{}",
                m.total_kib, m.available_kib
            );
        }),
        Change::LinkAdded(l) => ("link-added", &|o: &mut String| json_link(o, l)),
        Change::LinkChanged { old, new } => ("link-changed", &|o: &mut String| {
            json_link(o, new);
            jfield(o, "old_name", &old.name);
        }),
        Change::LinkRemoved(l) => ("link-removed", &|o: &mut String| json_link(o, l)),
        Change::AddressAdded { link, addr, info } => ("address-added", &|o: &mut String| {
            json_addr(o, link, addr, info)
        }),
        Change::AddressChanged {
            link, addr, new, ..
        } => ("address-changed", &|o: &mut String| {
            json_addr(o, link, addr, new)
        }),
        Change::AddressRemoved { link, addr, info } => ("address-removed", &|o: &mut String| {
            json_addr(o, link, addr, info)
        }),
    };
    out.push_str("{\"change\":");
    js(out, what);
    rest(out);
    out.push('}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{AddrFlags, MemoryInfo, OsInfo};

    fn link() -> Link {
        Link {
            index: 3,
            name: "eth 0\"".into(),
            mac: Some("00:16:3e:00:00:01".into()),
            kind: Kind::Vif(1),
            master: Some(7),
            up: true,
        }
    }

    fn both(c: &Change) -> (String, serde_json::Value) {
        let (mut t, mut j) = (String::new(), String::new());
        text(&mut t, c);
        json(&mut j, c);
        (t, serde_json::from_str(&j).expect(&j))
    }

    #[test]
    fn link_lines() {
        let (t, j) = both(&Change::LinkAdded(link()));
        assert_eq!(
            t,
            r#"link-added index=3 name="eth 0\"" mac=00:16:3e:00:00:01 kind=vif vif=1 master=7 up"#
        );
        assert_eq!(
            j,
            serde_json::json!({"change":"link-added","index":3,"name":"eth 0\"",
                "mac":"00:16:3e:00:00:01","kind":"vif","vif":1,"master":7,"up":true})
        );
    }

    #[test]
    fn address_lines() {
        let c = Change::AddressAdded {
            link: link(),
            addr: "2001:db8::1".parse().unwrap(),
            info: Address {
                prefix: 64,
                flags: AddrFlags {
                    temporary: true,
                    ..Default::default()
                },
            },
        };
        let (t, j) = both(&c);
        assert_eq!(
            t,
            r#"address-added index=3 name="eth 0\"" address=2001:db8::1/64 flags=temporary"#
        );
        assert_eq!(j["address"], "2001:db8::1");
        assert_eq!(j["prefix"], 64);
        assert_eq!(j["flags"], serde_json::json!(["temporary"]));
    }

    #[test]
    fn os_and_memory_lines() {
        let os = OsInfo {
            distro: "debian".into(),
            name: "Debian GNU/Linux 12 (bookworm)".into(),
            version: "12.5".into(),
            major: "12".into(),
            minor: "5".into(),
        };
        let (t, j) = both(&Change::Os(os));
        assert_eq!(
            t,
            r#"os distro=debian version=12.5 major=12 minor=5 name="Debian GNU/Linux 12 (bookworm)""#
        );
        assert_eq!(j["name"], "Debian GNU/Linux 12 (bookworm)");
        let (t, j) = both(&Change::Memory(MemoryInfo {
            total_kib: 2048,
            available_kib: 1024,
        }));
        assert_eq!(t, "memory total_kib=2048 available_kib=1024");
        assert_eq!(j["available_kib"], 1024);
    }

    #[test]
    fn control_characters_are_escaped_in_json() {
        let mut l = link();
        l.name = "a\u{1}b".into();
        let (_, j) = both(&Change::LinkRemoved(l));
        assert_eq!(j["name"], "a\u{1}b");
    }
}
