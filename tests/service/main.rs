//! The agent as a service manager sees it: readiness after the first
//! complete publication, a clean exit on SIGTERM and SIGINT, clear errors
//! for bad options. Needs no root and no Xen (stdout publisher).

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const AGENT: &str = env!("CARGO_BIN_EXE_xen-guest-agent");
const WAIT: Duration = Duration::from_secs(30);

/// The agent with the stdout publisher and no network collector, its stderr
/// log lines delivered on a channel.
fn start(extra_env: &[(&str, &std::path::Path)]) -> (Child, mpsc::Receiver<String>) {
    let mut cmd = Command::new(AGENT);
    cmd.args(["--publisher", "stdout", "--network", "none", "-s"])
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("agent starts");
    let stderr = child.stderr.take().expect("stderr piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// Wait for a log line containing `text`.
fn wait_log(rx: &mpsc::Receiver<String>, text: &str) {
    let deadline = Instant::now() + WAIT;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) if line.contains(text) => return,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    panic!("no log line containing {text:?} within {WAIT:?}");
}

fn wait_exit(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "agent did not exit within {WAIT:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stops_cleanly_on(signal: libc::c_int) {
    let (mut child, log) = start(&[]);
    wait_log(&log, "first complete publication done");
    // SAFETY: signalling our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
    let status = wait_exit(&mut child);
    assert!(status.success(), "exit status {status:?}");
    wait_log(&log, "stopping");
}

#[test]
fn sigterm_stops_the_agent_cleanly() {
    stops_cleanly_on(libc::SIGTERM);
}

#[test]
fn sigint_stops_the_agent_cleanly() {
    stops_cleanly_on(libc::SIGINT);
}

#[test]
fn readiness_is_notified_after_the_first_publication() {
    let dir = std::env::temp_dir().join(format!("xga-service-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sock_path = dir.join("notify");
    let _ = std::fs::remove_file(&sock_path);
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(WAIT)).unwrap();
    let (mut child, log) = start(&[("NOTIFY_SOCKET", &sock_path)]);
    let mut buf = [0u8; 256];
    let n = sock.recv(&mut buf).expect("READY=1 within the deadline");
    assert_eq!(
        std::str::from_utf8(&buf[..n]).unwrap(),
        "READY=1\nSTATUS=Publishing"
    );
    wait_log(&log, "first complete publication done");
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(wait_exit(&mut child).success());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_options_are_refused_with_a_message() {
    let out = Command::new(AGENT)
        .args(["--publisher", "stdout", "--memory-interval", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--memory-interval"), "{err}");
    assert!(err.contains("at least 1"), "{err}");
}

#[test]
fn oneshot_prints_the_initial_state_and_exits() {
    let out = Command::new(AGENT)
        .args([
            "--publisher",
            "stdout",
            "--format",
            "json",
            "--network",
            "none",
            "--oneshot",
            "-s",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let kinds: Vec<String> = stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["change"].to_string())
        .collect();
    // Then this machine's filesystems, whatever they are (none when its
    // root is a container's overlay).
    assert_eq!(
        kinds[..4],
        ["\"os\"", "\"kernel\"", "\"memory\"", "\"host-name\""],
        "{stdout}"
    );
    assert!(
        kinds[4..].iter().all(|k| k == "\"filesystem-added\""),
        "{stdout}"
    );
}

/// The virtualization mode line, from the sysfs tree given with `--sysfs`
/// (which applies without a network collector too: the mode is read there).
#[test]
fn oneshot_reports_the_mode_the_sysfs_tree_tells() {
    let sys = std::env::temp_dir().join(format!("xga-service-sysfs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&sys);
    std::fs::create_dir_all(sys.join("hypervisor")).unwrap();
    std::fs::write(sys.join("hypervisor/type"), "xen\n").unwrap();
    std::fs::write(sys.join("hypervisor/guest_type"), "HVM\n").unwrap();
    std::fs::create_dir_all(sys.join("bus/xen/devices/vif-0/driver")).unwrap();
    std::fs::create_dir_all(sys.join("bus/xen/devices/vbd-768")).unwrap();
    let out = Command::new(AGENT)
        .args([
            "--publisher",
            "stdout",
            "--network",
            "none",
            "--oneshot",
            "-s",
        ])
        .arg("--sysfs")
        .arg(&sys)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&sys);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout
            .lines()
            .any(|l| l == "mode mode=hvm pv_net=1 pv_block=0"),
        "{stdout}"
    );
}

/// The agent's exit status and standard error for `args`.
fn run_with(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    // --oneshot: an agent that wrongly accepts the options ends anyway.
    let mut cmd = Command::new(AGENT);
    cmd.args(args)
        .arg("--oneshot")
        .env_remove("RUST_LOG")
        .env_remove("XENSTORE_SCHEMA");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_blank_rust_log_is_taken_as_unset() {
    // `RUST_LOG=` is an easy line to leave in /etc/default/xen-guest-agent:
    // it must not silence the log.
    let args = ["--publisher", "stdout", "--network", "none", "-s"];
    for blank in ["", " "] {
        let (code, err) = run_with(
            &[&args[..], &["-l", "debug"]].concat(),
            &[("RUST_LOG", blank)],
        );
        assert_eq!(code, Some(0), "{err}");
        assert!(
            err.contains("[DEBUG "),
            "RUST_LOG={blank:?} silenced the log:\n{err}"
        );
        assert!(
            !err.contains("RUST_LOG"),
            "a blank RUST_LOG is not worth a warning:\n{err}"
        );
    }
}

#[test]
fn options_that_do_not_apply_are_refused_with_the_reason() {
    let cases: &[(&[&str], &str)] = &[
        (&["--publisher", "stdout", "--dry-run"], "--dry-run"),
        (&["--publisher", "stdout", "--schema", "rfc"], "--schema"),
        (
            &["--publisher", "stdout", "--max-addresses", "4"],
            "--max-addresses",
        ),
        (
            &["--publisher", "stdout", "--no-feature-balloon"],
            "--no-feature-balloon",
        ),
        #[cfg(feature = "xenstore")]
        (&["--dry-run", "--format", "json"], "--format"),
    ];
    for (args, option) in cases {
        let (code, err) = run_with(args, &[]);
        assert_eq!(code, Some(2), "{args:?} accepted:\n{err}");
        assert!(
            err.contains(option),
            "{args:?}: the error does not name {option}:\n{err}"
        );
        assert!(
            err.contains("only"),
            "{args:?}: the error does not say why:\n{err}"
        );
    }
    // The environment's defaults (the unit's /etc/default file) are not
    // errors when debugging with the stdout publisher.
    let (code, err) = run_with(
        &["--publisher", "stdout", "--network", "none", "-s"],
        &[("XENSTORE_SCHEMA", "rfc")],
    );
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn huge_intervals_are_refused_not_overflowed() {
    for option in ["--memory-interval", "--poll-interval"] {
        let (code, err) = run_with(
            &["--publisher", "stdout", option, "18446744073709551615"],
            &[],
        );
        if err.contains("unexpected argument") {
            continue; // --poll-interval exists only with the pnet collector
        }
        assert_eq!(code, Some(2), "{option}: {err}");
        assert!(err.contains("at most"), "{option}: {err}");
    }
}

#[test]
fn a_fatal_error_is_printed_once_with_stderr_logging() {
    // A publisher that cannot publish at all: standard output refusing
    // writes is fatal for the stdout publisher.
    let out = Command::new(AGENT)
        .args([
            "--publisher",
            "stdout",
            "--network",
            "none",
            "--oneshot",
            "-s",
        ])
        .env_remove("RUST_LOG")
        .stdout(std::fs::File::create("/dev/full").unwrap()) // writes fail: ENOSPC
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let fatal: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("cannot publish"))
        .collect();
    assert_eq!(fatal.len(), 1, "printed {} times:\n{err}", fatal.len());
}

/// The xenstore publisher pointed at a xenstored that is not there.
#[cfg(feature = "xenstore")]
fn unreachable_xenstore(args: &[&str]) -> Command {
    let mut cmd = Command::new(AGENT);
    cmd.args(["--publisher", "xenstore", "--network", "none", "-s"])
        .args(["--publish-timeout", "1"])
        .args(args)
        .env("XENSTORED_PATH", "/nonexistent/xenstored.sock")
        .env_remove("RUST_LOG")
        .env_remove("XENSTORE_SCHEMA");
    cmd
}

#[cfg(feature = "xenstore")]
#[test]
fn readiness_without_xenstore_comes_after_the_timeout_and_says_so() {
    let dir = std::env::temp_dir().join(format!("xga-service-nx-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sock_path = dir.join("notify");
    let _ = std::fs::remove_file(&sock_path);
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(WAIT)).unwrap();
    let started = Instant::now();
    let mut child = unreachable_xenstore(&[])
        .env("NOTIFY_SOCKET", &sock_path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 256];
    let n = sock.recv(&mut buf).expect("READY=1 within the deadline");
    let elapsed = started.elapsed();
    let message = std::str::from_utf8(&buf[..n]).unwrap();
    assert!(message.starts_with("READY=1\nSTATUS=Waiting"), "{message}");
    // Not before the first publication could have been complete: at the
    // timeout (1 s), give or take a start-up.
    assert!(
        elapsed >= Duration::from_millis(900),
        "READY after {elapsed:?}"
    );
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = wait_exit(&mut child);
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(status.success(), "{err}");
    assert!(
        err.contains("the first publication is not complete after 1s"),
        "{err}"
    );
    assert!(!err.contains("first complete publication done"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(feature = "xenstore")]
#[test]
fn oneshot_fails_when_its_publication_does_not_complete() {
    let out = unreachable_xenstore(&["--oneshot"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("the publication did not complete within 1s"),
        "{err}"
    );
    assert!(
        err.contains("xenstore connection failed"),
        "no reason given: {err}"
    );
}

#[test]
fn oneshot_always_says_its_publication_is_complete() {
    // The collectors end at once in --oneshot: the loop must still see the
    // first publication through (it once left that to chance).
    for run in 0..20 {
        let (code, err) = run_with(&["--publisher", "stdout", "--network", "none", "-s"], &[]);
        assert_eq!(code, Some(0), "{err}");
        assert!(
            err.contains("first complete publication done"),
            "run {run}: not said:\n{err}"
        );
    }
}

/// The shipped unit must not give the agent a UTS namespace of its own
/// (`ProtectHostname=yes`): a host name changed after the start would never
/// be seen (packaging/test.sh checks it under a running systemd too).
#[test]
fn the_shipped_unit_shares_the_host_name_with_the_guest() {
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/startup/xen-guest-agent.service"
    ))
    .expect("read the unit");
    let protected: Vec<&str> = unit
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("ProtectHostname="))
        .filter(|l| {
            !matches!(
                &l["ProtectHostname=".len()..],
                "" | "no" | "false" | "0" | "off"
            )
        })
        .collect();
    assert!(
        protected.is_empty(),
        "the unit hides host name changes: {protected:?}"
    );
}
