//! The stdout publisher: one line per change, readable text or JSON.
//!
//! For debugging outside Xen and for tests: the JSON lines carry every fact
//! of the model, so a reader can rebuild the agent's view exactly.
//!
//! A change set is rendered into one buffer, kept between change sets, and
//! written with one `write`: a netlink event costs one syscall here, and
//! no allocation once the buffer has grown to a change set's size.

mod push;

use std::fmt::Write as _;
use std::io::{self, Write};

use crate::cli::Format;
use crate::state::{Address, Change, Kind, Link};

/// The buffer is written out whenever it holds this much (a change set of
/// thousands of changes, at start with many interfaces), so that it stays
/// small.
const WRITE_AT: usize = 32 * 1024;

/// Prints change sets on standard output (or `W`, in tests).
pub struct Stdout<W = io::Stdout> {
    format: Format,
    out: W,
    /// The lines not written yet.
    buf: String,
    /// Change sets printed.
    generation: u64,
}

impl Stdout {
    /// A publisher printing in `format`.
    pub fn new(format: Format) -> Self {
        Stdout::with_output(format, io::stdout())
    }
}

impl<W: Write> Stdout<W> {
    fn with_output(format: Format, out: W) -> Self {
        Stdout {
            format,
            out,
            buf: String::new(),
            generation: 0,
        }
    }

    /// Print one change set, written at once so that readers see it whole;
    /// returns how many change sets were printed.
    pub fn publish(&mut self, changes: &[Change]) -> io::Result<u64> {
        for change in changes {
            match self.format {
                Format::Text => text(&mut self.buf, change),
                Format::Json => json(&mut self.buf, change),
            }
            self.buf.push('\n');
            if self.buf.len() >= WRITE_AT {
                self.write_out()?;
            }
        }
        self.write_out()?;
        self.out.flush()?;
        self.generation += 1;
        Ok(self.generation)
    }

    /// Write the buffer (standard output is line buffered: whole lines go
    /// straight through, in one `write` when the pipe takes them).
    fn write_out(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let result = self.out.write_all(self.buf.as_bytes());
        self.buf.clear();
        if self.buf.capacity() > 2 * WRITE_AT {
            self.buf.shrink_to(WRITE_AT);
        }
        result
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
fn word(out: &mut String, s: &str) {
    if !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_graphic() && c != b'"' && c != b'\\' && c != b'=')
    {
        out.push_str(s);
    } else {
        let _ = write!(out, "{s:?}");
    }
}

/// ` key=value` for the text format.
fn tword(out: &mut String, key: &str, value: &str) {
    out.push(' ');
    out.push_str(key);
    out.push('=');
    word(out, value);
}

/// ` key=n` for the text format.
fn tuint(out: &mut String, key: &str, n: u64) {
    out.push(' ');
    out.push_str(key);
    out.push('=');
    push::uint(out, n);
}

fn text_link(out: &mut String, l: &Link) {
    tuint(out, "index", l.index.into());
    tword(out, "name", &l.name);
    out.push_str(" mac=");
    out.push_str(l.mac.as_deref().unwrap_or("-"));
    out.push_str(" kind=");
    out.push_str(kind_name(l.kind));
    if let Kind::Vif(id) = l.kind {
        tuint(out, "vif", id.into());
    }
    match l.master {
        Some(m) => tuint(out, "master", m.into()),
        None => out.push_str(" master=-"),
    }
    out.push_str(if l.up { " up" } else { " down" });
}

fn text_addr(out: &mut String, l: &Link, addr: &std::net::IpAddr, a: &Address) {
    tuint(out, "index", l.index.into());
    tword(out, "name", &l.name);
    out.push_str(" address=");
    push::ip(out, addr);
    out.push('/');
    push::uint(out, a.prefix.into());
    for (i, f) in a.flags.names().iter().enumerate() {
        out.push_str(if i == 0 { " flags=" } else { "," });
        out.push_str(f);
    }
}

/// The readable line of one change.
fn text(out: &mut String, change: &Change) {
    match change {
        Change::Os(os) => {
            out.push_str("os");
            tword(out, "distro", &os.distro);
            tword(out, "version", &os.version);
            tword(out, "major", &os.major);
            tword(out, "minor", &os.minor);
            tword(out, "name", &os.name);
        }
        Change::Kernel(k) => {
            out.push_str("kernel");
            tword(out, "sysname", &k.sysname);
            tword(out, "release", &k.release);
            tword(out, "machine", &k.machine);
            tword(out, "version", &k.version);
        }
        Change::Memory(m) => {
            out.push_str("memory");
            tuint(out, "total_kib", m.total_kib);
            tuint(out, "available_kib", m.available_kib);
        }
        Change::LinkAdded(l) => {
            out.push_str("link-added");
            text_link(out, l);
        }
        Change::LinkChanged { old, new } => {
            out.push_str("link-changed");
            text_link(out, new);
            if old.name != new.name {
                tword(out, "old_name", &old.name);
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

/// `,"key":` for the JSON format.
fn jkey(out: &mut String, key: &str) {
    out.push_str(",\"");
    out.push_str(key);
    out.push_str("\":");
}

/// `,"key":"value"`
fn jfield(out: &mut String, key: &str, value: &str) {
    jkey(out, key);
    push::json_string(out, value);
}

/// `,"key":n`
fn juint(out: &mut String, key: &str, n: u64) {
    jkey(out, key);
    push::uint(out, n);
}

/// `,"key":n` or `,"key":null`
fn jopt(out: &mut String, key: &str, n: Option<u32>) {
    match n {
        Some(n) => juint(out, key, n.into()),
        None => {
            jkey(out, key);
            out.push_str("null");
        }
    }
}

fn json_link(out: &mut String, l: &Link) {
    juint(out, "index", l.index.into());
    jfield(out, "name", &l.name);
    match &l.mac {
        Some(m) => jfield(out, "mac", m),
        None => out.push_str(",\"mac\":null"),
    }
    jfield(out, "kind", kind_name(l.kind));
    jopt(out, "vif", l.kind.vif());
    jopt(out, "master", l.master);
    out.push_str(if l.up {
        ",\"up\":true"
    } else {
        ",\"up\":false"
    });
}

fn json_addr(out: &mut String, l: &Link, addr: &std::net::IpAddr, a: &Address) {
    juint(out, "index", l.index.into());
    jfield(out, "name", &l.name);
    // An address needs no escaping.
    jkey(out, "address");
    out.push('"');
    push::ip(out, addr);
    out.push('"');
    juint(out, "prefix", a.prefix.into());
    out.push_str(",\"flags\":[");
    for (i, f) in a.flags.names().iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push::json_string(out, f);
    }
    out.push(']');
}

/// The JSON object of one change: `{"change": <what>, ...facts}`.
fn json(out: &mut String, change: &Change) {
    let what = match change {
        Change::Os(_) => "os",
        Change::Kernel(_) => "kernel",
        Change::Memory(_) => "memory",
        Change::LinkAdded(_) => "link-added",
        Change::LinkChanged { .. } => "link-changed",
        Change::LinkRemoved(_) => "link-removed",
        Change::AddressAdded { .. } => "address-added",
        Change::AddressChanged { .. } => "address-changed",
        Change::AddressRemoved { .. } => "address-removed",
    };
    out.push_str("{\"change\":\"");
    out.push_str(what);
    out.push('"');
    match change {
        Change::Os(os) => {
            jfield(out, "distro", &os.distro);
            jfield(out, "name", &os.name);
            jfield(out, "version", &os.version);
            jfield(out, "major", &os.major);
            jfield(out, "minor", &os.minor);
        }
        Change::Kernel(k) => {
            jfield(out, "sysname", &k.sysname);
            jfield(out, "release", &k.release);
            jfield(out, "version", &k.version);
            jfield(out, "machine", &k.machine);
        }
        Change::Memory(m) => {
            juint(out, "total_kib", m.total_kib);
            juint(out, "available_kib", m.available_kib);
        }
        Change::LinkAdded(l) | Change::LinkRemoved(l) => json_link(out, l),
        Change::LinkChanged { old, new } => {
            json_link(out, new);
            jfield(out, "old_name", &old.name);
        }
        Change::AddressAdded { link, addr, info }
        | Change::AddressRemoved { link, addr, info }
        | Change::AddressChanged {
            link,
            addr,
            new: info,
            ..
        } => json_addr(out, link, addr, info),
    }
    out.push('}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{AddrFlags, KernelInfo, MemoryInfo, OsInfo};

    impl Address {
        fn default_for_tests() -> Self {
            Address {
                prefix: 0,
                flags: AddrFlags::default(),
            }
        }
    }

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
    fn every_change_has_its_line() {
        let mut renamed = link();
        renamed.name = "lan0".into();
        renamed.mac = None;
        renamed.kind = Kind::Other;
        renamed.master = None;
        renamed.up = false;
        let v4 = "10.0.0.1".parse().unwrap();
        let info = Address {
            prefix: 24,
            flags: AddrFlags {
                secondary: true,
                deprecated: true,
                ..Default::default()
            },
        };
        let cases = [
            (
                Change::LinkChanged {
                    old: link(),
                    new: renamed.clone(),
                },
                "link-changed index=3 name=lan0 mac=- kind=other master=- down old_name=\"eth 0\\\"\"",
                r#"{"change":"link-changed","index":3,"name":"lan0","mac":null,"kind":"other","vif":null,"master":null,"up":false,"old_name":"eth 0\""}"#,
            ),
            (
                Change::LinkRemoved(renamed.clone()),
                "link-removed index=3 name=lan0 mac=- kind=other master=- down",
                r#"{"change":"link-removed","index":3,"name":"lan0","mac":null,"kind":"other","vif":null,"master":null,"up":false}"#,
            ),
            (
                Change::AddressChanged {
                    link: renamed.clone(),
                    addr: v4,
                    old: Address::default_for_tests(),
                    new: info,
                },
                "address-changed index=3 name=lan0 address=10.0.0.1/24 flags=secondary,deprecated",
                r#"{"change":"address-changed","index":3,"name":"lan0","address":"10.0.0.1","prefix":24,"flags":["secondary","deprecated"]}"#,
            ),
            (
                Change::AddressRemoved {
                    link: renamed,
                    addr: "::ffff:192.0.2.1".parse().unwrap(),
                    info: Address::default_for_tests(),
                },
                "address-removed index=3 name=lan0 address=::ffff:192.0.2.1/0",
                r#"{"change":"address-removed","index":3,"name":"lan0","address":"::ffff:192.0.2.1","prefix":0,"flags":[]}"#,
            ),
            (
                Change::Kernel(KernelInfo {
                    sysname: "Linux".into(),
                    release: "6.1.0-18-amd64".into(),
                    version: "#1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01)".into(),
                    machine: "x86_64".into(),
                }),
                r##"kernel sysname=Linux release=6.1.0-18-amd64 machine=x86_64 version="#1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01)""##,
                r##"{"change":"kernel","sysname":"Linux","release":"6.1.0-18-amd64","version":"#1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01)","machine":"x86_64"}"##,
            ),
        ];
        for (change, t, j) in cases {
            let (mut text_line, mut json_line) = (String::new(), String::new());
            text(&mut text_line, &change);
            json(&mut json_line, &change);
            assert_eq!(text_line, t);
            assert_eq!(json_line, j);
        }
    }

    /// Records each `write` it is given.
    #[derive(Default)]
    struct Writes(Vec<Vec<u8>>);

    impl Write for Writes {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.push(buf.to_vec());
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn memory(kib: u64) -> Change {
        Change::Memory(MemoryInfo {
            total_kib: kib,
            available_kib: kib,
        })
    }

    #[test]
    fn a_change_set_is_one_write() {
        let mut p = Stdout::with_output(Format::Json, Writes::default());
        p.publish(&[memory(1), Change::LinkAdded(link()), memory(2)])
            .unwrap();
        p.publish(&[]).unwrap();
        p.publish(&[memory(3)]).unwrap();
        let writes: Vec<String> = p
            .out
            .0
            .iter()
            .map(|w| String::from_utf8(w.clone()).unwrap())
            .collect();
        assert_eq!(writes.len(), 2, "{writes:?}");
        assert_eq!(writes[0].lines().count(), 3);
        assert!(writes[0].ends_with("\n") && writes[1].ends_with("\n"));
        assert!(writes[1].contains("\"total_kib\":3"));
    }

    #[test]
    fn a_huge_change_set_is_written_in_pieces_of_whole_lines() {
        let mut p = Stdout::with_output(Format::Text, Writes::default());
        let changes: Vec<Change> = (0..10_000).map(memory).collect();
        p.publish(&changes).unwrap();
        let writes = &p.out.0;
        assert!(writes.len() > 1);
        assert!(writes
            .iter()
            .all(|w| w.len() < WRITE_AT + 100 && w.ends_with(b"\n")));
        let all: Vec<u8> = writes.concat();
        assert_eq!(all.split(|&b| b == b'\n').count() - 1, 10_000);
        assert!(p.buf.capacity() <= 2 * WRITE_AT);
    }

    #[test]
    fn control_characters_are_escaped_in_json() {
        let mut l = link();
        l.name = "a\u{1}b".into();
        let (_, j) = both(&Change::LinkRemoved(l));
        assert_eq!(j["name"], "a\u{1}b");
    }
}
