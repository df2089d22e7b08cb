//! OpenStack's XenServer guest-agent protocol end to end: dom0's side is
//! tests/openstack/nova-client.sh (written from the protocol; the
//! xenstore-* commands on the test xenstored's dom0 socket), or requests
//! written by hand; the agent runs in a network namespace and a UTS
//! namespace of its own, its system files under a throwaway root.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::*;

const CLIENT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/openstack/nova-client.sh"
);
const MAC0: &str = "00:16:3e:00:00:00";

/// A throwaway root: `etc/shadow` as Debian has it (root's password
/// locked), `root/.ssh/` without keys.
fn system_root(t: &Scenario) -> PathBuf {
    let root = t.sysfs.with_extension("root");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::create_dir_all(root.join("root/.ssh")).unwrap();
    let shadow = root.join("etc/shadow");
    std::fs::write(
        &shadow,
        "root:*:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n\
         debian:$6$abc$x:19000:0:99999:7:::\n",
    )
    .unwrap();
    std::fs::set_permissions(&shadow, std::fs::Permissions::from_mode(0o640)).unwrap();
    std::fs::write(root.join("etc/hostname"), "before\n").unwrap();
    // An odd mode (the VM tier's guest has 0755): kept.
    std::fs::set_permissions(
        root.join("etc/hostname"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    root
}

/// The agent allowing `allow`, in a UTS namespace whose host name is
/// `before`; no system bus (never the machine's).
fn agent_allowing(t: &Scenario, root: &Path, allow: &str) -> Agent {
    let root_arg = root.to_str().unwrap().to_string();
    let bus = format!("unix:path={}", root.join("no-bus").display());
    let args = ["--allow", allow, "--system-root", &root_arg];
    let mut agent =
        t.agent_in_own_uts_with_env("before", &args, &[("DBUS_SYSTEM_BUS_ADDRESS", &bus)]);
    agent.assert_running();
    agent
}

/// Run the nova client; its lines.
fn nova(t: &Scenario, args: &[&str]) -> Vec<String> {
    let dom0 = t.xs.dom0_socket_path().expect("a dom0 socket");
    let out = Command::new("bash")
        .arg(CLIENT)
        .args(["--home", &t.xs.home(), "--domid", &t.xs.domid().to_string()])
        .args(args)
        .env("XENSTORED_PATH", dom0)
        .output()
        .expect("bash");
    let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert!(
        out.status.success(),
        "nova-client.sh {args:?}: {lines:#?}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    lines
}

/// root's hash in `shadow`.
fn root_hash(root: &Path) -> String {
    let text = std::fs::read_to_string(root.join("etc/shadow")).unwrap();
    let line = text.lines().find(|l| l.starts_with("root:")).unwrap();
    line.split(':').nth(1).unwrap().to_string()
}

/// Whether `hash` is SHA-512 crypt of `password` (`openssl passwd -6`
/// with its salt).
fn crypt_matches(hash: &str, password: &str) -> bool {
    let Some(salt) = hash.strip_prefix("$6$").and_then(|r| r.split('$').next()) else {
        return false;
    };
    let out = Command::new("openssl")
        .args(["passwd", "-6", "-salt", salt, password])
        .output()
        .expect("openssl");
    String::from_utf8_lossy(&out.stdout).trim() == hash
}

fn host_name(agent: &Agent) -> String {
    let out = Command::new("nsenter")
        .args(["-t", &agent.pid().to_string(), "-u", "hostname"])
        .output()
        .expect("nsenter");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Write a request as dom0 does; wait for its answer (`(rc, message)`) and
/// check the request is gone.
fn call(t: &Scenario, id: &str, request: &str) -> (String, String) {
    t.xs.write(&format!("data/host/{id}"), request).unwrap();
    wait_reply(t, id)
}

fn wait_reply(t: &Scenario, id: &str) -> (String, String) {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(reply) = t.xs.read(&format!("data/guest/{id}")) {
            let v: serde_json::Value = serde_json::from_str(&reply).expect("a JSON answer");
            assert!(
                !t.xs.exists(&format!("data/host/{id}")),
                "{id}: answered, the request still there"
            );
            return (
                v["returncode"]
                    .as_str()
                    .expect("a string returncode")
                    .into(),
                v["message"].as_str().expect("a string message").into(),
            );
        }
        assert!(Instant::now() < deadline, "no answer to {id}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
#[ignore = "needs root (network namespaces): tests/run.sh runs it, or run as root with --include-ignored"]
fn novas_first_boot_sets_the_password_the_keys_the_network_and_the_host_name() {
    let Some(t) = Scenario::with_dom0_socket(
        "novas_first_boot_sets_the_password_the_keys_the_network_and_the_host_name",
    ) else {
        return;
    };
    t.add_vif(0);
    let root = system_root(&t);
    let mut agent = agent_allowing(&t, &root, "password,injectfile,resetnetwork");
    let keys = root.with_extension("keys");
    std::fs::write(&keys, "ssh-ed25519 AAAAC3Nza test@nova\n").unwrap();
    let inject = format!("/root/.ssh/authorized_keys={}", keys.display());
    let lines = nova(
        &t,
        &[
            "--password",
            "S3cret-pa55",
            "--inject",
            &inject,
            "--mac",
            &MAC0.to_uppercase(),
            "--ip",
            "192.0.2.10",
            "--gateway",
            "192.0.2.1",
            "--hostname",
            "web-1",
        ],
    );
    assert_eq!(lines[0], format!("version 0 {}", env!("CARGO_PKG_VERSION")));
    assert_eq!(
        lines[1],
        "features 0 version,features,keyinit,password,injectfile,resetnetwork"
    );
    assert!(lines[2].starts_with("keyinit D0 "), "{lines:?}");
    assert_eq!(lines[3], "password 0 ");
    assert!(lines[4].starts_with("injectfile 0 "), "{lines:?}");
    assert!(
        lines[5].starts_with("resetnetwork 0 ipv4 static 192.0.2.10/24 via 192.0.2.1 for MAC 00:16:3e:00:00:00: done on eth0"),
        "{lines:?}"
    );
    assert!(lines[5].ends_with("; host name web-1: done"), "{lines:?}");
    // What the guest's administrator sees.
    let hash = root_hash(&root);
    assert!(crypt_matches(&hash, "S3cret-pa55"), "{hash}");
    let shadow = std::fs::read_to_string(root.join("etc/shadow")).unwrap();
    assert!(shadow.ends_with("daemon:*:19000:0:99999:7:::\ndebian:$6$abc$x:19000:0:99999:7:::\n"));
    let meta = std::fs::metadata(root.join("etc/shadow")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o640);
    let authorized = root.join("root/.ssh/authorized_keys");
    assert_eq!(
        std::fs::read_to_string(&authorized).unwrap(),
        "ssh-ed25519 AAAAC3Nza test@nova\n"
    );
    assert_eq!(
        std::fs::metadata(&authorized).unwrap().permissions().mode() & 0o7777,
        0o600
    );
    let out = Command::new("ip")
        .args([
            "-n", &t.netns, "-4", "-o", "addr", "show", "dev", "eth0", "scope", "global",
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("inet 192.0.2.10/24"));
    assert_eq!(host_name(&agent), "web-1");
    assert_eq!(
        std::fs::read_to_string(root.join("etc/hostname")).unwrap(),
        "web-1\n"
    );
    assert_eq!(
        std::fs::metadata(root.join("etc/hostname"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o755
    );
    // One audit line per command; the password never in the log.
    assert_eq!(agent.count("OpenStack command data/host/"), 6);
    assert!(!agent.stderr().join("\n").contains("S3cret-pa55"));
    agent.assert_running();
}

// (At most 5 commands a test, but the one above: the rate limit's burst.)
#[test]
#[ignore = "needs root (network namespaces): tests/run.sh runs it, or run as root with --include-ignored"]
fn a_controller_with_a_newer_openssl_and_keys_injected_again() {
    let Some(t) =
        Scenario::with_dom0_socket("a_controller_with_a_newer_openssl_and_keys_injected_again")
    else {
        return;
    };
    let root = system_root(&t);
    std::fs::write(
        root.join("root/.ssh/authorized_keys"),
        "ssh-rsa OLD old@nova\n",
    )
    .unwrap();
    let mut agent = agent_allowing(&t, &root, "password,injectfile");
    // OpenSSL >= 1.1's key derivation (SHA-256); the keys again: the old
    // file kept as a backup.
    let keys = root.with_extension("keys");
    std::fs::write(&keys, "ssh-ed25519 AAAAC3Nzb second@nova\n").unwrap();
    let inject = format!("/root/.ssh/authorized_keys={}", keys.display());
    let lines = nova(
        &t,
        &[
            "--password",
            "n3w one",
            "--md",
            "sha256",
            "--inject",
            &inject,
        ],
    );
    assert_eq!(
        lines[1],
        "features 0 version,features,keyinit,password,injectfile"
    );
    assert_eq!(lines[3], "password 0 ");
    assert!(crypt_matches(&root_hash(&root), "n3w one"));
    assert!(
        lines[4].starts_with(
            "injectfile 0 wrote /root/.ssh/authorized_keys (the old one kept as \
             /root/.ssh/authorized_keys."
        ),
        "{lines:?}"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("root/.ssh/authorized_keys")).unwrap(),
        "ssh-ed25519 AAAAC3Nzb second@nova\n"
    );
    let backups: Vec<String> = std::fs::read_dir(root.join("root/.ssh"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("authorized_keys.") && n.ends_with(".bak"))
        .collect();
    assert_eq!(backups.len(), 1, "{backups:?}");
    let backup = root.join("root/.ssh").join(&backups[0]);
    assert_eq!(
        std::fs::read_to_string(backup).unwrap(),
        "ssh-rsa OLD old@nova\n"
    );
    assert!(!agent.stderr().join("\n").contains("n3w one"));
    agent.assert_running();
}

#[test]
#[ignore = "needs root (network namespaces): tests/run.sh runs it, or run as root with --include-ignored"]
fn commands_not_allowed_or_unknown_are_answered_404() {
    let Some(t) = Scenario::new("commands_not_allowed_or_unknown_are_answered_404") else {
        return;
    };
    let root = system_root(&t);
    let shadow_before = std::fs::read_to_string(root.join("etc/shadow")).unwrap();
    // Waiting before the agent starts: answered at start.
    t.xs.write(
        "data/host/early",
        r#"{"name": "version", "value": "agent"}"#,
    )
    .unwrap();
    let mut agent = agent_allowing(&t, &root, "injectfile");
    assert_eq!(wait_reply(&t, "early").0, "0");
    let features = call(&t, "f", r#"{"name": "features", "value": ""}"#);
    assert_eq!(
        features,
        ("0".into(), "version,features,keyinit,injectfile".into())
    );
    let (rc, msg) = call(
        &t,
        "p",
        r#"{"name": "password", "value": "gIq+uERe9fym4j3G4kECBg=="}"#,
    );
    assert_eq!(rc, "404");
    assert!(msg.contains("not allowed"), "{msg}");
    assert_eq!(
        call(&t, "u", r#"{"name": "agentupdate", "value": "http://x,y"}"#).0,
        "404"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("etc/shadow")).unwrap(),
        shadow_before
    );
    agent.assert_running();
}

#[test]
#[ignore = "needs root (network namespaces): tests/run.sh runs it, or run as root with --include-ignored"]
fn malformed_requests_are_answered_500() {
    let Some(t) = Scenario::new("malformed_requests_are_answered_500") else {
        return;
    };
    let root = system_root(&t);
    let mut agent = agent_allowing(&t, &root, "injectfile");
    for (id, bad) in [
        ("j", "{"),
        ("n", r#"{"value": "x"}"#),
        ("k", r#"{"name": "keyinit"}"#),
        ("s", r#"["version"]"#),
    ] {
        let (rc, msg) = call(&t, id, bad);
        assert_eq!(rc, "500", "{bad}: {msg}");
        assert!(msg.starts_with("malformed request"), "{bad}: {msg}");
    }
    // keyinit with a key out of the group.
    let (rc, msg) = call(&t, "kb", r#"{"name": "keyinit", "value": "0"}"#);
    assert_eq!(rc, "500");
    assert!(msg.starts_with("invalid public key"), "{msg}");
    agent.assert_running();
}

#[test]
#[ignore = "needs root (network namespaces): tests/run.sh runs it, or run as root with --include-ignored"]
fn files_off_the_list_and_untrusted_requests_are_refused() {
    let Some(t) = Scenario::new("files_off_the_list_and_untrusted_requests_are_refused") else {
        return;
    };
    let root = system_root(&t);
    let shadow_before = std::fs::read_to_string(root.join("etc/shadow")).unwrap();
    let mut agent = agent_allowing(&t, &root, "injectfile");
    // A path not on the list, one escaping through "..", not base64.
    let b64 = |s: &str| {
        let out = Command::new("base64")
            .arg("-w0")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin.take().unwrap().write_all(s.as_bytes())?;
                c.wait_with_output()
            })
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    for (id, value) in [
        ("i1", b64("/etc/passwd,evil::0:0::/:/bin/sh\n")),
        ("i2", b64("/root/.ssh/../../etc/passwd,x")),
        ("i3", "not base64!".to_string()),
    ] {
        let (rc, msg) = call(
            &t,
            id,
            &format!(r#"{{"name": "injectfile", "value": "{value}"}}"#),
        );
        assert_eq!(rc, "500", "{id}: {msg}");
    }
    assert!(!root.join("etc/passwd").exists());
    assert_eq!(
        std::fs::read_to_string(root.join("etc/shadow")).unwrap(),
        shadow_before
    );
    // A request a third domain could write: refused, not run.
    // (Written under a directory a third domain can write: the node
    // inherits it.)
    t.xs.set_perms("data/host", "n5,b7").unwrap();
    t.xs.write("data/host/t", r#"{"name": "version", "value": ""}"#)
        .unwrap();
    let (rc, msg) = wait_reply(&t, "t");
    assert_eq!(rc, "500");
    assert!(msg.contains("domain other than dom0"), "{msg}");
    agent.assert_running();
}

#[test]
#[ignore = "needs root (network namespaces): tests/run.sh runs it, or run as root with --include-ignored"]
fn password_needs_a_key_exchange_first() {
    let Some(t) = Scenario::new("password_needs_a_key_exchange_first") else {
        return;
    };
    let root = system_root(&t);
    let mut agent = agent_allowing(&t, &root, "password");
    let (rc, msg) = call(
        &t,
        "p",
        r#"{"name": "password", "value": "gIq+uERe9fym4j3G4kECBg=="}"#,
    );
    assert_eq!(
        (rc.as_str(), msg.as_str()),
        ("500", "Password without key exchange")
    );
    let (rc, _) = call(
        &t,
        "k",
        r#"{"name": "keyinit", "value": "128492706489454800633959484585958"}"#,
    );
    assert_eq!(rc, "D0");
    // Encrypted with another secret: refused, root's password unchanged.
    let (rc, msg) = call(
        &t,
        "p2",
        r#"{"name": "password", "value": "gIq+uERe9fym4j3G4kECBg=="}"#,
    );
    assert_eq!(
        (rc.as_str(), msg.as_str()),
        ("500", "Invalid password data received")
    );
    assert_eq!(root_hash(&root), "*");
    agent.assert_running();
}

#[test]
#[ignore = "needs root (network namespaces): tests/run.sh runs it, or run as root with --include-ignored"]
fn without_an_openstack_command_allowed_data_host_is_not_read() {
    let Some(t) = Scenario::new("without_an_openstack_command_allowed_data_host_is_not_read")
    else {
        return;
    };
    t.xs.write("data/host/x", r#"{"name": "version", "value": "agent"}"#)
        .unwrap();
    let mut agent = t.agent(&[]);
    agent.wait_log("first complete publication done", WAIT);
    assert!(t.xs.exists("data/host/x"));
    assert!(!t.xs.exists("data/guest/x"));
    assert!(!t.xs.watches().iter().any(|w| w.path.ends_with("data/host")));
    agent.assert_running();
}
