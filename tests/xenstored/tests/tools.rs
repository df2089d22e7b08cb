//! The real libxenstore and xenstore-utils tools against the server,
//! through `XENSTORED_PATH`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use test_xenstored::{Errno, MsgType, OpLogExt, Server};

const T: Duration = Duration::from_secs(10);

/// Whether xenstore-utils is installed; tests skip (with a message) if not.
fn have_tools() -> bool {
    let ok = Command::new("xenstore-read")
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !ok {
        eprintln!("SKIP: xenstore-utils not installed (apt-get install xenstore-utils)");
    }
    ok
}

fn run(socket: &Path, args: &[&str]) -> Output {
    let (cmd, rest) = args.split_first().unwrap();
    Command::new(cmd)
        .args(rest)
        .env("XENSTORED_PATH", socket)
        .output()
        .unwrap()
}

/// Runs a tool that must succeed; returns its stdout.
fn ok(socket: &Path, args: &[&str]) -> String {
    let out = run(socket, args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn spawn(socket: &Path, args: &[&str]) -> (Child, mpsc::Receiver<String>) {
    let (cmd, rest) = args.split_first().unwrap();
    let mut child = Command::new(cmd)
        .args(rest)
        .env("XENSTORED_PATH", socket)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

fn server() -> Server {
    Server::builder().domid(5).start().unwrap()
}

#[test]
fn tools_read_write_list_exists_rm() {
    if !have_tools() {
        return;
    }
    let xs = server();
    let g = xs.socket_path();
    assert_eq!(ok(g, &["xenstore-read", "name"]), "domU\n");
    ok(
        g,
        &[
            "xenstore-write",
            "data/os_name",
            "Debian GNU/Linux 12",
            "data/x",
            "1",
        ],
    );
    assert_eq!(xs.read("data/os_name").unwrap(), "Debian GNU/Linux 12");
    assert_eq!(
        ok(g, &["xenstore-read", "data/os_name"]),
        "Debian GNU/Linux 12\n"
    );
    assert_eq!(ok(g, &["xenstore-list", "data"]), "os_name\nx\n");
    assert!(run(g, &["xenstore-exists", "data/x"]).status.success());
    assert!(!run(g, &["xenstore-exists", "data/y"]).status.success());
    ok(g, &["xenstore-rm", "data/x"]);
    assert!(!xs.exists("data/x"));
    let ls = ok(g, &["xenstore-ls", "-p", "/local/domain/5/control"]);
    assert!(ls.contains("shutdown = \"\""), "{ls}");
    assert!(ls.contains("(n5)"), "{ls}");
    assert!(!run(g, &["xenstore-read", "/local/domain/0/name"])
        .status
        .success());
    assert!(!run(g, &["xenstore-ls", "/"]).status.success());
}

#[test]
fn dom0_sees_the_tree_with_permissions() {
    if !have_tools() {
        return;
    }
    let xs = server();
    let d = xs.dom0_socket_path().unwrap();
    ok(
        xs.socket_path(),
        &["xenstore-write", "attr/vif/0/ipv4/0", "10.0.0.2"],
    );
    let ls = ok(d, &["xenstore-ls", "-p", "/local/domain/5"]);
    for want in [
        "name = \"domU\"",
        "(n0,r5)",
        "mac = \"00:16:3e:5e:00:01\"",
        "(n5,r0)",
        "ipv4 = \"\"",
        "0 = \"10.0.0.2\"",
    ] {
        assert!(ls.contains(want), "{want:?} missing in:\n{ls}");
    }
    assert_eq!(
        ok(d, &["xenstore-read", "/local/domain/0/name"]),
        "Domain-0\n"
    );
}

#[test]
fn chmod_and_permission_denial() {
    if !have_tools() {
        return;
    }
    let xs = server();
    let g = xs.socket_path();
    let d = xs.dom0_socket_path().unwrap();
    // libxl leaves control/ read-only to the guest...
    let out = run(g, &["xenstore-write", "control/feature-balloon", "1"]);
    assert!(!out.status.success());
    let last = xs.ops().of_kind(MsgType::Write).last().unwrap().result;
    assert_eq!(last, Err(Errno::EACCES));
    // ...XAPI pre-creates feature-balloon guest-writable.
    ok(
        d,
        &[
            "xenstore-write",
            "/local/domain/5/control/feature-balloon",
            "",
        ],
    );
    ok(
        d,
        &[
            "xenstore-chmod",
            "/local/domain/5/control/feature-balloon",
            "n5",
            "r0",
        ],
    );
    ok(g, &["xenstore-write", "control/feature-balloon", "1"]);
    assert_eq!(xs.perms("control/feature-balloon").unwrap(), "n5,r0");
    // The guest may change the permissions of what it owns, not give it away.
    ok(g, &["xenstore-write", "data/p", "1"]);
    ok(g, &["xenstore-chmod", "data/p", "n5", "r0"]);
    assert_eq!(xs.perms("data/p").unwrap(), "n5,r0");
    assert!(!run(g, &["xenstore-chmod", "data/p", "n0"]).status.success());
    assert!(!run(g, &["xenstore-chmod", "control", "n5"])
        .status
        .success());
}

#[test]
fn watch_tool_sees_writes() {
    if !have_tools() {
        return;
    }
    let xs = server();
    let (mut child, lines) = spawn(xs.socket_path(), &["xenstore-watch", "-n", "2", "data"]);
    assert!(
        xs.wait_for(T, |v| v.watches().len() == 1),
        "watch registered"
    );
    assert_eq!(
        lines.recv_timeout(T).unwrap(),
        "data",
        "fires on registration"
    );
    ok(xs.socket_path(), &["xenstore-write", "data/w", "1"]);
    assert_eq!(lines.recv_timeout(T).unwrap(), "data/w");
    assert!(child.wait().unwrap().success());
}

#[test]
fn tools_retry_injected_eagain() {
    if !have_tools() {
        return;
    }
    let xs = server();
    xs.fail_next_commits(3);
    // Several nodes: xenstore-write uses a transaction (not for just one).
    ok(
        xs.socket_path(),
        &["xenstore-write", "data/t", "v", "data/u", "w"],
    );
    assert_eq!(xs.read("data/t").unwrap(), "v");
    let ends: Vec<_> = xs
        .ops()
        .of_kind(MsgType::TransactionEnd)
        .iter()
        .map(|o| o.result)
        .collect();
    assert_eq!(
        ends,
        [
            Err(Errno::EAGAIN),
            Err(Errno::EAGAIN),
            Err(Errno::EAGAIN),
            Ok(())
        ]
    );
    assert_eq!(xs.ops().of_kind(MsgType::Write).len(), 8);
}

#[test]
fn dropped_connections_and_restart() {
    if !have_tools() {
        return;
    }
    let xs = server();
    let (mut child, lines) = spawn(xs.socket_path(), &["xenstore-watch", "data"]);
    assert!(xs.wait_for(T, |v| v.watches().len() == 1));
    assert_eq!(lines.recv_timeout(T).unwrap(), "data");
    xs.drop_connections();
    assert!(xs.wait_for(T, |v| v.connections() == 0 && v.watches().is_empty()));
    // The watch is gone: a write reaches nobody. (xenstore-watch itself
    // does not notice a lost connection; the agent must.)
    ok(
        xs.socket_path(),
        &["xenstore-write", "data/after-drop", "1"],
    );
    child.kill().unwrap();
    child.wait().unwrap();

    xs.restart().unwrap();
    assert_eq!(
        ok(xs.socket_path(), &["xenstore-read", "data/after-drop"]),
        "1\n"
    );
    xs.stop();
    assert!(!run(xs.socket_path(), &["xenstore-read", "domid"])
        .status
        .success());
    xs.start().unwrap();
    assert_eq!(ok(xs.socket_path(), &["xenstore-read", "domid"]), "5\n");
}
