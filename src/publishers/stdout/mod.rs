//! The stdout publisher: one line per change, readable text or JSON.
//!
//! For debugging outside Xen and for tests: the JSON lines carry every fact
//! of the model, so a reader can rebuild the agent's view exactly. A change
//! set is written with one `write`, so that readers see it whole.

use std::fmt;
use std::io::{self, Write};
use std::net::IpAddr;

use serde_json::{json, Value};

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
    buf: Vec<u8>,
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
            buf: Vec::new(),
            generation: 0,
        }
    }

    /// Print one change set, written at once so that readers see it whole;
    /// returns how many change sets were printed.
    pub fn publish(&mut self, changes: &[Change]) -> io::Result<u64> {
        for change in changes {
            match self.format {
                Format::Text => writeln!(self.buf, "{}", Text(change))?,
                Format::Json => {
                    serde_json::to_writer(&mut self.buf, &json_of(change))?;
                    self.buf.push(b'\n');
                }
            }
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
        let result = self.out.write_all(&self.buf);
        self.buf.clear();
        if self.buf.capacity() > 2 * WRITE_AT {
            self.buf.shrink_to(WRITE_AT);
        }
        result
    }
}

/// `kind` as a word.
fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Vif(_) => "vif",
        Kind::Bridge => "bridge",
        Kind::Bond => "bond",
        Kind::Loopback => "loopback",
        Kind::Other => "other",
    }
}

/// What a change is, as the lines name it.
fn what(change: &Change) -> &'static str {
    match change {
        Change::Os(_) => "os",
        Change::Kernel(_) => "kernel",
        Change::Memory(_) => "memory",
        Change::HostName(_) => "host-name",
        Change::Mode(_) => "mode",
        Change::FilesystemAdded(_) => "filesystem-added",
        Change::FilesystemChanged { .. } => "filesystem-changed",
        Change::FilesystemRemoved(_) => "filesystem-removed",
        Change::LinkAdded(_) => "link-added",
        Change::LinkChanged { .. } => "link-changed",
        Change::LinkRemoved(_) => "link-removed",
        Change::AddressAdded { .. } => "address-added",
        Change::AddressChanged { .. } => "address-changed",
        Change::AddressRemoved { .. } => "address-removed",
    }
}

/// A value of the text format: bare when it is one plain word, quoted with
/// Rust-style escapes otherwise (names may hold spaces or odd bytes).
struct Word<'a>(&'a str);

impl fmt::Display for Word<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plain = !self.0.is_empty()
            && self
                .0
                .bytes()
                .all(|c| c.is_ascii_graphic() && c != b'"' && c != b'\\' && c != b'=');
        if plain {
            f.write_str(self.0)
        } else {
            write!(f, "{:?}", self.0)
        }
    }
}

/// The link facts of a text line.
struct TextLink<'a>(&'a Link);

impl fmt::Display for TextLink<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let l = self.0;
        write!(
            f,
            " index={} name={} mac={} kind={}",
            l.index,
            Word(&l.name),
            l.mac.as_deref().unwrap_or("-"),
            kind_name(l.kind)
        )?;
        if let Kind::Vif(id) = l.kind {
            write!(f, " vif={id}")?;
        }
        match l.master {
            Some(m) => write!(f, " master={m}")?,
            None => f.write_str(" master=-")?,
        }
        f.write_str(if l.up { " up" } else { " down" })
    }
}

/// The address facts of a text line.
struct TextAddress<'a>(&'a Link, &'a IpAddr, &'a Address);

impl fmt::Display for TextAddress<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (l, addr, a) = (self.0, self.1, self.2);
        write!(
            f,
            " index={} name={} address={addr}/{}",
            l.index,
            Word(&l.name),
            a.prefix
        )?;
        let flags = a.flags.names();
        if !flags.is_empty() {
            write!(f, " flags={}", flags.join(","))?;
        }
        Ok(())
    }
}

/// The readable line of one change.
struct Text<'a>(&'a Change);

impl fmt::Display for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(what(self.0))?;
        match self.0 {
            Change::Os(os) => write!(
                f,
                " distro={} version={} major={} minor={} name={}",
                Word(&os.distro),
                Word(&os.version),
                Word(&os.major),
                Word(&os.minor),
                Word(&os.name)
            ),
            Change::Kernel(k) => write!(
                f,
                " sysname={} release={} machine={} version={}",
                Word(&k.sysname),
                Word(&k.release),
                Word(&k.machine),
                Word(&k.version)
            ),
            Change::Memory(m) => write!(
                f,
                " total_kib={} available_kib={}",
                m.total_kib, m.available_kib
            ),
            Change::HostName(h) => write!(
                f,
                " host={} domain={}",
                Word(&h.host),
                h.domain.as_deref().map_or(Word("-"), Word)
            ),
            Change::Mode(m) => write!(
                f,
                " mode={} pv_net={} pv_block={}",
                m.mode.name(),
                u8::from(m.pv_net),
                u8::from(m.pv_block)
            ),
            Change::FilesystemAdded(fs)
            | Change::FilesystemRemoved(fs)
            | Change::FilesystemChanged { new: fs, .. } => write!(
                f,
                " mount_point={} type={} device={} total_bytes={} used_bytes={} available_bytes={}",
                Word(&fs.mount_point),
                Word(&fs.fstype),
                Word(&fs.device),
                fs.total_bytes,
                fs.used_bytes,
                fs.available_bytes
            ),
            Change::LinkAdded(l) | Change::LinkRemoved(l) => TextLink(l).fmt(f),
            Change::LinkChanged { old, new } => {
                TextLink(new).fmt(f)?;
                if old.name != new.name {
                    write!(f, " old_name={}", Word(&old.name))?;
                }
                Ok(())
            }
            Change::AddressAdded { link, addr, info }
            | Change::AddressRemoved { link, addr, info }
            | Change::AddressChanged {
                link,
                addr,
                new: info,
                ..
            } => TextAddress(link, addr, info).fmt(f),
        }
    }
}

fn json_link(l: &Link) -> Value {
    json!({
        "index": l.index,
        "name": l.name,
        "mac": l.mac,
        "kind": kind_name(l.kind),
        "vif": l.kind.vif(),
        "master": l.master,
        "up": l.up,
    })
}

/// The JSON object of one change: `{"change": <what>, ...facts}`.
fn json_of(change: &Change) -> Value {
    let mut v = match change {
        Change::Os(os) => json!({
            "distro": os.distro,
            "name": os.name,
            "version": os.version,
            "major": os.major,
            "minor": os.minor,
        }),
        Change::Kernel(k) => json!({
            "sysname": k.sysname,
            "release": k.release,
            "version": k.version,
            "machine": k.machine,
        }),
        Change::Memory(m) => json!({
            "total_kib": m.total_kib,
            "available_kib": m.available_kib,
        }),
        Change::HostName(h) => json!({
            "host": h.host,
            "domain": h.domain,
        }),
        Change::Mode(m) => json!({
            "mode": m.mode.name(),
            "pv_net": m.pv_net,
            "pv_block": m.pv_block,
        }),
        Change::FilesystemAdded(fs)
        | Change::FilesystemRemoved(fs)
        | Change::FilesystemChanged { new: fs, .. } => json!({
            "mount_point": fs.mount_point,
            "type": fs.fstype,
            "device": fs.device,
            "total_bytes": fs.total_bytes,
            "used_bytes": fs.used_bytes,
            "available_bytes": fs.available_bytes,
        }),
        Change::LinkAdded(l) | Change::LinkRemoved(l) => json_link(l),
        Change::LinkChanged { old, new } => {
            let mut v = json_link(new);
            v["old_name"] = json!(old.name);
            v
        }
        Change::AddressAdded { link, addr, info }
        | Change::AddressRemoved { link, addr, info }
        | Change::AddressChanged {
            link,
            addr,
            new: info,
            ..
        } => json!({
            "index": link.index,
            "name": link.name,
            "address": addr.to_string(),
            "prefix": info.prefix,
            "flags": info.flags.names(),
        }),
    };
    v["change"] = json!(what(change));
    v
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
        (Text(c).to_string(), json_of(c))
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
    fn filesystem_lines() {
        use crate::state::Filesystem;
        let fs = Filesystem {
            mount_point: "/mnt/a b".into(),
            fstype: "ext4".into(),
            device: "/dev/xvdb1".into(),
            total_bytes: 1000,
            used_bytes: 600,
            available_bytes: 350,
        };
        let (t, j) = both(&Change::FilesystemAdded(fs.clone()));
        assert_eq!(
            t,
            r#"filesystem-added mount_point="/mnt/a b" type=ext4 device=/dev/xvdb1 total_bytes=1000 used_bytes=600 available_bytes=350"#
        );
        assert_eq!(
            j,
            serde_json::json!({"change":"filesystem-added","mount_point":"/mnt/a b","type":"ext4",
                "device":"/dev/xvdb1","total_bytes":1000,"used_bytes":600,"available_bytes":350})
        );
        let mut new = fs.clone();
        new.available_bytes = 1;
        let (t, _) = both(&Change::FilesystemChanged {
            old: fs.clone(),
            new,
        });
        assert!(
            t.starts_with("filesystem-changed ") && t.ends_with(" available_bytes=1"),
            "{t}"
        );
        let (t, j) = both(&Change::FilesystemRemoved(fs));
        assert!(t.starts_with("filesystem-removed mount_point="), "{t}");
        assert_eq!(j["change"], "filesystem-removed");
    }

    #[test]
    fn host_name_and_mode_lines() {
        use crate::state::{GuestMode, HostName, VirtMode};
        let (t, j) = both(&Change::HostName(HostName {
            host: "vm-42".into(),
            domain: Some("lab.example".into()),
        }));
        assert_eq!(t, "host-name host=vm-42 domain=lab.example");
        assert_eq!(
            j,
            serde_json::json!({"change":"host-name","host":"vm-42","domain":"lab.example"})
        );
        let (t, j) = both(&Change::HostName(HostName {
            host: "vm-42".into(),
            domain: None,
        }));
        assert_eq!(t, "host-name host=vm-42 domain=-");
        assert_eq!(j["domain"], serde_json::Value::Null);
        let (t, j) = both(&Change::Mode(GuestMode {
            mode: VirtMode::Pvh,
            pv_net: true,
            pv_block: false,
        }));
        assert_eq!(t, "mode mode=pvh pv_net=1 pv_block=0");
        assert_eq!(
            j,
            serde_json::json!({"change":"mode","mode":"pvh","pv_net":true,"pv_block":false})
        );
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
            let (text_line, json_line) = both(&change);
            assert_eq!(text_line, t);
            assert_eq!(
                json_line,
                serde_json::from_str::<serde_json::Value>(j).unwrap()
            );
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
