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
    let mut buf = [0u8; 64];
    let n = sock.recv(&mut buf).expect("READY=1 within the deadline");
    assert_eq!(&buf[..n], b"READY=1");
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
    assert_eq!(kinds, ["\"os\"", "\"kernel\"", "\"memory\""], "{stdout}");
}
