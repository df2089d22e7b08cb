//! A fixed sequence of guest requests whose answers tell how a xenstored
//! behaves (errors, permissions, watches, transactions, limits). Run as a
//! guest against C xenstored (examples/conformance.rs, inside the xenvm
//! harness) and against this server (tests/conformance.rs): the transcripts
//! must match. Domain-specific values are normalized (`D` for the domid).

use std::collections::BTreeSet;
use std::time::Duration;

use test_xenstored::{Client, MsgType};

/// Runs the probe as the guest; returns `key: answer` lines. `settle` is
/// how long to wait for watch events that may come.
pub fn run(c: &mut Client, settle: Duration) -> Vec<String> {
    let mut p = Probe {
        c,
        out: Vec::new(),
        domid: String::new(),
        settle,
    };
    p.all();
    p.out
}

struct Probe<'a> {
    c: &'a mut Client,
    out: Vec<String>,
    domid: String,
    settle: Duration,
}

impl Probe<'_> {
    fn norm(&self, s: &str) -> String {
        let home = format!("/local/domain/{}", self.domid);
        let s = s.replace(&home, "/local/domain/D");
        // permission entries such as n5, r5
        let mut v: Vec<String> = Vec::new();
        for part in s.split(' ') {
            let t = part.trim_matches(|c| c == '[' || c == ']' || c == ',' || c == '"');
            if t.len() > 1 && "nrwb".contains(&t[..1]) && t[1..] == self.domid {
                v.push(part.replace(t, &format!("{}D", &t[..1])));
            } else {
                v.push(part.to_string());
            }
        }
        v.join(" ")
    }

    fn line(&mut self, key: &str, value: String) {
        let l = format!("{key}: {}", self.norm(&value));
        self.out.push(l);
    }

    fn res<T: std::fmt::Debug>(&mut self, key: &str, r: Result<T, String>) {
        let v = match r {
            Ok(v) => format!("ok {v:?}"),
            Err(e) => format!("err {e}"),
        };
        self.line(key, v);
    }

    fn events(&mut self, key: &str) {
        let mut ev = Vec::new();
        while let Some(e) = self.c.next_event(self.settle) {
            ev.push(format!("{} {}", e.path, e.token));
        }
        self.line(key, format!("events {ev:?}"));
    }

    fn all(&mut self) {
        let domid = self.c.read("domid");
        self.domid = domid.clone().unwrap_or_default();
        self.res("read domid", domid.map(|_| "D"));
        let _ = self.c.rm("data/probe");
        let _ = self.c.mkdir("data/probe");
        let d = self.domid.parse().unwrap_or(0);
        let r = self.c.get_domain_path(d);
        self.res("get_domain_path", r);
        self.reads();
        self.perms();
        self.writes();
        self.rms();
        self.set_perms();
        self.watches();
        self.transactions();
        self.others();
        self.limits();
        let _ = self.c.rm("data/probe");
    }

    fn reads(&mut self) {
        for p in [
            "",
            "nonexistent",
            "data/probe/none/deeper",
            "/local/domain/0/name",
            "/local/domain/0/nonexistent",
            "/",
            "/local",
            "/local/domain",
            "/vm",
            "vm",
        ] {
            let r = self
                .c
                .read(p)
                .map(|v| if p == "vm" { "/vm/UUID".into() } else { v });
            self.res(&format!("read {p:?}"), r);
        }
        let r = self.c.directory("control");
        self.res("directory control", r);
        let r = self
            .c
            .directory(&format!("/local/domain/{}", self.domid))
            .map(|v| v.into_iter().collect::<BTreeSet<String>>());
        let want: BTreeSet<String> = [
            "vm", "name", "cpu", "memory", "device", "control", "data", "drivers", "feature",
            "attr", "error", "domid", "store", "console",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let r = r.map(|have| want.difference(&have).cloned().collect::<Vec<_>>());
        self.res("directory home lacks", r);
        let r = self.c.directory("device/vif/0").map(|v| {
            let want = ["backend", "backend-id", "state", "handle", "mac"];
            want.iter().all(|w| v.iter().any(|x| x == w))
        });
        self.res("directory device/vif/0 has the basics", r);
    }

    fn perms(&mut self) {
        for p in [
            "",
            "data",
            "attr",
            "feature",
            "drivers",
            "error",
            "control",
            "control/shutdown",
            "control/feature-poweroff",
            "control/sysrq",
            "control/platform-feature-xs_reset_watches",
            "device",
            "device/vif",
            "device/vif/0",
            "device/vif/0/mac",
            "device/vif/0/backend",
            "device/suspend/event-channel",
            "domid",
            "vm",
            "name",
            "memory/target",
            "/local/domain/0",
        ] {
            let path = if p.is_empty() {
                format!("/local/domain/{}", self.domid)
            } else {
                p.to_string()
            };
            let r = self.c.get_perms(&path);
            self.res(&format!("get_perms {p:?}"), r);
        }
        let r = self.c.read("device/vif/0/backend");
        if let Ok(be) = r {
            let r = self.c.get_perms(&be);
            self.res("get_perms backend", r);
            let r = self.c.read(&format!("{be}/frontend-id")).map(|_| ());
            self.res("read backend frontend-id", r);
        }
    }

    fn writes(&mut self) {
        let r = self.c.write("foo", "1");
        self.res("write foo", r);
        let r = self.c.write("control/feature-balloon", "1");
        self.res("write control/feature-balloon", r);
        let r = self.c.write("/local/domain/0/foo", "1");
        self.res("write /local/domain/0/foo", r);
        let r = self.c.write("data/probe/x", "1");
        self.res("write data/probe/x", r);
        let r = self.c.get_perms("data/probe/x");
        self.res("get_perms data/probe/x", r);
        let r = self.c.write("data/probe/a/b/c", "v");
        self.res("write data/probe/a/b/c", r);
        for p in ["data/probe/a", "data/probe/a/b"] {
            let r = self.c.get_perms(p);
            self.res(&format!("get_perms {p}"), r);
            let r = self.c.read(p);
            self.res(&format!("read {p}"), r);
        }
        let r = self.c.mkdir("data/probe/x");
        self.res("mkdir existing", r);
        let r = self.c.read("data/probe/x");
        self.res("read after mkdir existing", r);
        let r = self.c.mkdir("data/probe/m");
        self.res("mkdir new", r);
        let r = self.c.read("data/probe/m");
        self.res("read after mkdir new", r);
        let r = self.c.mkdir("control");
        self.res("mkdir control", r);
        let r = self.c.write("control/shutdown", "");
        self.res("write control/shutdown", r);
        let r = self.c.write("data/probe/empty", "");
        self.res("write empty value", r);
        for p in [
            "data/probe/bad path",
            "data/probe//x",
            "data/probe/x/",
            "data/probe/\u{e9}",
            "data/probe/a.b",
            "data/probe/a:b",
            "data/probe/a@b",
            "/probe-root",
        ] {
            let r = self.c.write(p, "1");
            self.res(&format!("write {p:?}"), r);
        }
    }

    fn rms(&mut self) {
        for p in [
            "data/probe/nonexistent",
            "data/probe/no/such",
            "data/probe/a",
            "data/probe/a/b/c",
            "control",
            "foo",
            "/local/domain/0/nonexistent",
            "/local/domain/0",
            "/",
        ] {
            let r = self.c.rm(p);
            self.res(&format!("rm {p:?}"), r);
        }
        let r = self.c.read("data/probe/a/b/c");
        self.res("read removed", r);
    }

    fn set_perms(&mut self) {
        let d = self.domid.clone();
        let cases: Vec<(&str, Vec<String>)> = vec![
            ("data/probe/x", vec![format!("n{d}"), "r0".into()]),
            ("data/probe/x", vec![format!("b{d}")]),
            ("data/probe/x", vec!["n0".into()]),
            ("data/probe/x", vec![format!("n{d}"), "z1".into()]),
            ("data/probe/x", vec![]),
            ("control", vec![format!("n{d}")]),
            ("control/shutdown", vec![format!("n{d}")]),
        ];
        for (p, perms) in cases {
            let list: Vec<&str> = perms.iter().map(String::as_str).collect();
            let r = self.c.set_perms(p, &list);
            let key = self.norm(&format!("set_perms {p} {}", perms.join(" ")));
            self.res(&key, r);
        }
        let r = self.c.get_perms("data/probe/x");
        self.res("get_perms after set_perms", r);
    }

    fn watches(&mut self) {
        let _ = self.c.pending_events();
        let r = self.c.watch("data/probe/w", "tok1");
        self.res("watch data/probe/w (missing)", r);
        self.events("  events");
        let r = self.c.write("data/probe/w/child", "1");
        self.res("write data/probe/w/child", r);
        self.events("  events");
        let r = self.c.write("data/probe/w/child", "1");
        self.res("write data/probe/w/child same value", r);
        self.events("  events");
        let r = self.c.write("data/probe/other", "1");
        self.res("write data/probe/other", r);
        self.events("  events");
        let r = self.c.watch("/local/domain/0", "tok2");
        self.res("watch /local/domain/0", r);
        self.events("  events");
        let r = self.c.watch("@releaseDomain", "tok3");
        self.res("watch @releaseDomain", r);
        self.events("  events");
        let r = self.c.watch("data/probe/w/child", "tok4");
        self.res("watch data/probe/w/child", r);
        self.events("  events");
        let r = self.c.rm("data/probe/w");
        self.res("rm data/probe/w", r);
        self.events("  events");
        let r = self.c.unwatch("data/probe/w", "tok1");
        self.res("unwatch", r);
        let r = self.c.write("data/probe/w", "1");
        self.res("write after unwatch", r);
        self.events("  events");
        for (p, t) in [("/local/domain/0", "tok2"), ("@releaseDomain", "tok3")] {
            let _ = self.c.unwatch(p, t);
        }
        let _ = self.c.unwatch("data/probe/w/child", "tok4");
        let r = self.c.watch("data/probe/bad path", "tok5");
        self.res("watch invalid path", r);
    }

    fn transactions(&mut self) {
        let r = self.c.transaction_start();
        self.res("tx start", r.clone().map(|_| "id"));
        if let Ok(t) = r {
            let r = self.c.write_tx(t, "data/probe/t1", "a");
            self.res("tx write", r);
            let r = self.c.read("data/probe/t1");
            self.res("read outside tx", r);
            let r = self.c.read_tx(t, "data/probe/t1");
            self.res("read inside tx", r);
            let r = self.c.transaction_end(t, true);
            self.res("tx commit", r);
            let r = self.c.read("data/probe/t1");
            self.res("read after commit", r);
        }
        if let Ok(t) = self.c.transaction_start() {
            let r = self.c.read_tx(t, "data/probe/t2");
            self.res("conflict: tx read missing", r);
            let _ = self.c.write("data/probe/t2", "x");
            let _ = self.c.write_tx(t, "data/probe/t3", "y");
            let r = self.c.transaction_end(t, true);
            self.res("conflict: commit after outside create", r);
            let r = self.c.read("data/probe/t3");
            self.res("conflict: read t3", r);
        }
        let _ = self.c.write("data/probe/s/seed", "1");
        if let Ok(t) = self.c.transaction_start() {
            let _ = self.c.write_tx(t, "data/probe/s/a", "1");
            let _ = self.c.write("data/probe/s/b", "1");
            let r = self.c.transaction_end(t, true);
            self.res("sibling: commit after outside sibling create", r);
        }
        let _ = self.c.write("data/probe/u/seed", "1");
        let _ = self.c.write("data/probe/v/seed", "1");
        if let Ok(t) = self.c.transaction_start() {
            let _ = self.c.write_tx(t, "data/probe/u/seed", "2");
            let _ = self.c.write("data/probe/v/seed", "2");
            let r = self.c.transaction_end(t, true);
            self.res("unrelated: commit after outside write elsewhere", r);
        }
        let _ = self.c.watch("data/probe/tw", "tokT");
        let _ = self.c.next_event(self.settle);
        if let Ok(t) = self.c.transaction_start() {
            let _ = self.c.write_tx(t, "data/probe/tw/x", "1");
            let _ = self.c.write_tx(t, "data/probe/tw/y", "1");
            self.events("tx watch before commit");
            let r = self.c.transaction_end(t, true);
            self.res("tx watch commit", r);
            self.events("tx watch after commit");
        }
        let _ = self.c.unwatch("data/probe/tw", "tokT");
        if let Ok(t) = self.c.transaction_start() {
            let _ = self.c.write_tx(t, "data/probe/ab", "1");
            let r = self.c.transaction_end(t, false);
            self.res("tx abort", r);
            let r = self.c.read("data/probe/ab");
            self.res("read after abort", r);
        }
        if let Ok(t) = self.c.transaction_start() {
            let r = self.c.call(MsgType::TransactionEnd, t, &["X"]);
            self.res("tx end bad arg", r);
            let r = self.c.transaction_end(t, false);
            self.res("tx end after bad arg", r);
        }
    }

    fn others(&mut self) {
        let r = self
            .c
            .call(MsgType::DirectoryPart, 0, &["control", "0"])
            .map(|v| {
                let s = String::from_utf8_lossy(&v).into_owned();
                let rest = s.split_once('\0').map(|x| x.1).unwrap_or("");
                format!("GEN\\0{}", rest.replace('\0', "\\0"))
            });
        self.res("directory_part control 0", r);
        let r = self.c.call(MsgType::GetDomainPath, 0, &["x"]);
        self.res("get_domain_path x", r);
        for (ty, args) in [
            (MsgType::Control, vec!["print", "x"]),
            (MsgType::IsDomainIntroduced, vec!["0"]),
            (MsgType::Introduce, vec!["9", "1", "1"]),
            (MsgType::Release, vec!["9"]),
            (MsgType::Resume, vec!["9"]),
            (MsgType::SetTarget, vec!["9", "8"]),
        ] {
            let r = self.c.call(ty, 0, &args);
            self.res(&format!("{ty}"), r);
        }
    }

    fn limits(&mut self) {
        // value size: a leaf with one permission entry
        for n in [2000, 2014, 2015, 2016, 2017, 2019, 2020, 2048] {
            let r = self.c.write(&format!("data/probe/s{n}"), &"v".repeat(n));
            self.res(&format!("write value of {n} bytes"), r);
        }
        // path length below the home
        let base = "data/probe/L";
        let mut p = base.to_string();
        while p.len() + 100 <= 2048 {
            p.push('/');
            p.push_str(&"a".repeat(99));
        }
        let last = 2048 - p.len() - 1;
        let p2048 = format!("{p}/{}", "b".repeat(last));
        let r = self.c.write(&p2048, "1");
        self.res("write relative path of 2048 bytes", r);
        let r = self.c.write(&format!("{p2048}c"), "1");
        self.res("write relative path of 2049 bytes", r);
        let _ = self.c.rm(base);
        // children of one node: the parent's record grows
        let mut fail = None;
        for i in 0..700 {
            if let Err(e) = self.c.write(&format!("data/probe/d/n{i:03}"), "") {
                fail = Some(format!("child #{i} {e}"));
                break;
            }
        }
        self.line("many children", format!("{fail:?}"));
        let _ = self.c.rm("data/probe/d");
        // node quota
        let home = format!("/local/domain/{}", self.domid);
        let owned = self.owned(&home);
        let mut fail = None;
        let mut made = 0;
        'outer: for i in 0..30 {
            for j in 0..60 {
                let p = format!("data/probe/q/{i}/{j}");
                let before = self.c.read(&format!("data/probe/q/{i}")).is_ok() as usize
                    + self.c.read("data/probe/q").is_ok() as usize;
                match self.c.write(&p, "") {
                    Ok(()) => made += 1 + (2 - before.min(2)),
                    Err(e) => {
                        fail = Some(e);
                        break 'outer;
                    }
                }
            }
        }
        self.line("quota error", format!("{fail:?}"));
        self.line("quota owned at failure", format!("{}", owned + made));
        let _ = self.c.rm("data/probe/q");
    }

    /// Nodes the guest owns below its home (that it can see).
    fn owned(&mut self, p: &str) -> usize {
        let own = format!("n{}", self.domid);
        let mut n = 0;
        if self
            .c
            .get_perms(p)
            .is_ok_and(|v| v.first().is_some_and(|f| *f == own))
        {
            n += 1;
        }
        if let Ok(children) = self.c.directory(p) {
            for ch in children {
                n += self.owned(&format!("{p}/{ch}"));
            }
        }
        n
    }
}
