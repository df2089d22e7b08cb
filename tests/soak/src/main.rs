//! The chaos soak of xen-guest-agent (issue 14): the release agent with
//! the xenstore publisher against the test xenstored, in a network
//! namespace of its own with a fake VIF sysfs, under every action and
//! fault at once, at random and overlapping; after each quiet period the
//! tree is compared with what the contract derives from the kernel's real
//! state, the op log and the slots are checked, and the agent must not
//! grow. See tests/soak/README.md.

mod actions;
mod agent;
mod driver;
mod expect;
mod faults;
mod figures;
mod host;
mod kernel;
mod oplog;
mod rng;
mod slots;
mod tree;
mod world;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use clap::Parser;

use driver::{Config, Soak, Toolstack, INTERRUPTED};

/// Exit code of a run that could not run (not root): as automake's "skipped".
const SKIPPED: i32 = 77;

#[derive(Parser, Debug)]
#[command(
    name = "soak",
    about = "Chaos soak of xen-guest-agent: every fault at once, the xenstore tree checked against \
             the kernel's real state after each quiet period",
    after_help = "Needs root (network namespaces). Exit status: 0 passed, 1 a check failed (the seed \
                  and the actions since the last good check are printed), 2 bad usage, 77 skipped \
                  (not root; under CI=true that is a failure, 1)."
)]
struct Cli {
    /// The agent binary [default: this workspace's target/release/xen-guest-agent, built if missing]
    #[arg(long, value_name = "PATH")]
    agent: Option<PathBuf>,
    /// An argument for the agent, repeated for each (`--agent-arg=--schema=rfc`); the tree
    /// expected follows `--schema`, `--max-addresses` and `--no-feature-balloon`
    #[arg(long = "agent-arg", value_name = "ARG", allow_hyphen_values = true)]
    agent_args: Vec<String>,
    /// How long to run, in minutes (fractions allowed)
    #[arg(long, value_name = "M", default_value = "2")]
    minutes: f64,
    /// The seed of the sequence of actions (replays it) [default: a fresh one, printed]
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    /// The longest the agent may take to settle once the driver pauses, in seconds (its longest
    /// backoff is 60 s)
    #[arg(long, value_name = "S", default_value = "90")]
    quiet_secs: u64,
    /// Write the figures (actions and faults by kind, checks, convergence, resources, crashes,
    /// stale or missing nodes) to FILE, as JSON
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Go on after a failed check (count every failure instead of stopping at the first)
    #[arg(long)]
    keep_going: bool,
    /// Leave these actions or faults out (comma-separated names; --list shows them)
    #[arg(long, value_name = "NAMES", value_delimiter = ',')]
    without: Vec<String>,
    /// Only these actions and faults (comma-separated names), for triage
    #[arg(
        long,
        value_name = "NAMES",
        value_delimiter = ',',
        conflicts_with = "without"
    )]
    only: Vec<String>,
    /// The toolstack dom0 behaves as [default: chosen by the seed]
    #[arg(long, value_enum)]
    toolstack: Option<ToolstackArg>,
    /// Where a failure's agent log and xenstore requests are written [default: $TMPDIR/xga-soak]
    #[arg(long, value_name = "DIR")]
    log_dir: Option<PathBuf>,
    /// Append every line the agents log to FILE (each start marked)
    #[arg(long, value_name = "FILE")]
    agent_log: Option<PathBuf>,
    /// Print every action as it happens
    #[arg(short, long)]
    verbose: bool,
    /// List the names of the actions and faults, and exit
    #[arg(long)]
    list: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum ToolstackArg {
    /// XAPI on oxenstored
    Xapi,
    /// libxl on C xenstored
    Libxl,
}

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::Relaxed);
}

/// The command line with `--seed` set to `seed`.
fn replay(seed: u64) -> String {
    let mut out = Vec::new();
    let mut args = std::env::args().peekable();
    while let Some(a) = args.next() {
        if a == "--seed" {
            args.next();
        } else if !a.starts_with("--seed=") {
            out.push(if a.contains(' ') { format!("'{a}'") } else { a });
        }
    }
    out.insert(1.min(out.len()), format!("--seed {seed}"));
    out.join(" ")
}

fn main() {
    let cli = Cli::parse();
    if cli.list {
        for n in driver::all_names() {
            println!("{n}");
        }
        return;
    }
    let known = driver::all_names();
    if let Some(bad) = cli
        .without
        .iter()
        .chain(&cli.only)
        .find(|w| !known.contains(&w.as_str()))
    {
        eprintln!("soak: {bad}: no such action or fault (see --list)");
        std::process::exit(2);
    }
    let without: std::collections::BTreeSet<String> = if cli.only.is_empty() {
        cli.without.iter().cloned().collect()
    } else {
        known
            .iter()
            .filter(|n| !cli.only.iter().any(|o| o == *n))
            .map(|n| n.to_string())
            .collect()
    };
    // SAFETY: plain syscall.
    if unsafe { libc::geteuid() } != 0 {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
        eprintln!(
            "soak: {}: it needs root (network namespaces, the agent's netlink buffer)",
            if ci {
                "cannot run under CI=true"
            } else {
                "skipped"
            }
        );
        std::process::exit(if ci { 1 } else { SKIPPED });
    }
    if !(cli.minutes > 0.0 && cli.minutes.is_finite()) {
        eprintln!("soak: --minutes {}: must be a positive number", cli.minutes);
        std::process::exit(2);
    }
    let seed = cli.seed.unwrap_or_else(rng::Rng::fresh_seed);
    eprintln!("soak: seed {seed} (replay: {})", replay(seed));
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic.
        unsafe {
            libc::signal(
                sig,
                on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
            )
        };
    }
    let cfg = Config {
        agent: cli.agent,
        agent_args: cli.agent_args,
        seed,
        duration: Duration::from_secs_f64(cli.minutes * 60.0),
        quiet: Duration::from_secs(cli.quiet_secs),
        keep_going: cli.keep_going,
        without,
        toolstack: cli.toolstack.map(|t| match t {
            ToolstackArg::Xapi => Toolstack::Xapi,
            ToolstackArg::Libxl => Toolstack::Libxl,
        }),
        log_dir: cli
            .log_dir
            .unwrap_or_else(|| std::env::temp_dir().join("xga-soak")),
        agent_log: cli.agent_log,
        verbose: cli.verbose,
        replay: replay(seed),
    };
    let code = {
        let mut soak = match Soak::new(cfg) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("soak: cannot set up: {e}");
                std::process::exit(1);
            }
        };
        let result = soak.run();
        eprintln!(
            "soak: {}: {}",
            if result.is_ok() { "passed" } else { "FAILED" },
            soak.summary()
        );
        if let Some(path) = &cli.json {
            let text = serde_json::to_string_pretty(&soak.json(&result)).unwrap_or_default();
            if let Err(e) = std::fs::write(path, text + "\n") {
                eprintln!("soak: cannot write {path:?}: {e}");
            }
        }
        i32::from(result.is_err())
    };
    std::process::exit(code);
}
