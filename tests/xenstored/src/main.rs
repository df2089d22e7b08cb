//! `test-xenstored`: the test xenstored as a program, for manual use and
//! benchmarks. It prints the tree (as `xenstore-ls -p` would) on SIGUSR1
//! and when it ends (SIGINT, SIGTERM).

use std::process::ExitCode;

use test_xenstored::{Errno, OpLogExt, Server};

const USAGE: &str = "\
usage: test-xenstored --socket PATH [--domid N] [--dom0-socket PATH]
                      [--node-quota N] [--equota] [--feature-balloon]

A xenstored for tests: the xenstore wire protocol on unix sockets, with the
tree libxl 4.17 makes for a PV guest.

  --socket PATH       the guest socket: clients act as domain N, unprivileged
                      (XENSTORED_PATH=PATH xenstore-ls ~ ...)
  --domid N           the guest's domain id (default 1)
  --dom0-socket PATH  a second socket whose clients act as privileged dom0
  --node-quota N      nodes the guest may own (default 1000)
  --equota            answer a full quota with EQUOTA (oxenstored) instead of
                      ENOSPC (C xenstored)
  --feature-balloon   pre-create control/feature-balloon guest-writable (XAPI)

SIGUSR1 prints the tree on stdout; SIGINT or SIGTERM print it and exit.";

struct Args {
    socket: String,
    dom0_socket: Option<String>,
    domid: u32,
    node_quota: Option<usize>,
    equota: bool,
    feature_balloon: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut socket = None;
    let mut a = Args {
        socket: String::new(),
        dom0_socket: None,
        domid: 1,
        node_quota: None,
        equota: false,
        feature_balloon: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--socket" => socket = Some(value("--socket")?),
            "--dom0-socket" => a.dom0_socket = Some(value("--dom0-socket")?),
            "--domid" => {
                let v = value("--domid")?;
                a.domid = v.parse().map_err(|_| format!("bad --domid {v:?}"))?;
            }
            "--node-quota" => {
                let v = value("--node-quota")?;
                a.node_quota = Some(v.parse().map_err(|_| format!("bad --node-quota {v:?}"))?);
            }
            "--equota" => a.equota = true,
            "--feature-balloon" => a.feature_balloon = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    a.socket = socket.ok_or("--socket is required")?;
    Ok(a)
}

/// Blocks the signals we wait for, in this thread and (by inheritance) in
/// every server thread, so that `sigwait` receives them.
fn block_signals() -> libc::sigset_t {
    // SAFETY: plain libc signal-set manipulation on a local set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGINT, libc::SIGTERM, libc::SIGUSR1, libc::SIGHUP] {
            libc::sigaddset(&mut set, s);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

fn wait_signal(set: &libc::sigset_t) -> i32 {
    let mut sig = 0;
    // SAFETY: `set` is a valid signal set; `sig` a valid out-pointer.
    unsafe { libc::sigwait(set, &mut sig) };
    sig
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("test-xenstored: {e}\n\n{USAGE}");
            return ExitCode::from(64);
        }
    };
    let set = block_signals();
    let mut b = Server::builder().socket(&args.socket).domid(args.domid);
    if let Some(d) = &args.dom0_socket {
        b = b.dom0_socket(d);
    }
    let mut limits = test_xenstored::Limits::default();
    if let Some(n) = args.node_quota {
        limits.node_quota = n;
    }
    if args.equota {
        limits.quota_errno = Errno::EQUOTA;
    }
    let server = match b.limits(limits).start() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("test-xenstored: cannot listen on {}: {e}", args.socket);
            return ExitCode::FAILURE;
        }
    };
    if args.feature_balloon {
        server.precreate_feature_balloon();
    }
    eprintln!(
        "test-xenstored: domain {} on {}{}",
        args.domid,
        args.socket,
        args.dom0_socket
            .as_deref()
            .map(|d| format!(", dom0 on {d}"))
            .unwrap_or_default()
    );
    loop {
        let sig = wait_signal(&set);
        print!("{}", server.dump("/"));
        if sig == libc::SIGUSR1 {
            continue;
        }
        let counts: Vec<String> = server
            .ops()
            .counts()
            .iter()
            .map(|(k, n)| format!("{k}={n}"))
            .collect();
        eprintln!("test-xenstored: requests: {}", counts.join(" "));
        return ExitCode::SUCCESS;
    }
}
