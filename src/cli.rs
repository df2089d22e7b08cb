//! Command line: every choice a user can make, with its documentation.
//!
//! The definition is also what the man page and shell completions are
//! generated from (see `xtask/`), so `--help`, the man page and the README
//! describe the same options.

use std::path::PathBuf;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, ValueEnum};

/// Where the collected facts go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PublisherKind {
    /// xenstore, where dom0's toolstack reads them (needs a Xen guest).
    #[cfg(feature = "xenstore")]
    Xenstore,
    /// Standard output, one line per change: for debugging outside Xen.
    Stdout,
}

/// The layout of what is written to xenstore.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Schema {
    /// What XAPI, xenopsd, squeezed and Xen Orchestra read (`data/os_*`,
    /// `attr/vif/<id>/ipv4/<n>`, `attr/PVAddons`, `control/feature-balloon`).
    Std,
    /// The structured, versioned tree under `data/` (`data/os`, `data/net`...).
    Rfc,
}

/// How the xenstore publisher talks to xenstore.
#[cfg(feature = "xenstore")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum XenstoreBackend {
    /// libxenstore where it can be loaded, else the native client.
    Auto,
    /// The agent's own xenstore client: needs no library, one thread.
    Native,
    /// The system's libxenstore (loaded at run time, or linked in).
    #[cfg(feature = "libxenstore")]
    Libxenstore,
}

/// How the stdout publisher prints changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One readable line per change.
    Text,
    /// One JSON object per line (for scripts and tests).
    Json,
}

/// Which network collector runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Network {
    /// Follow the kernel's netlink events (Linux): changes are seen at once.
    #[cfg(all(feature = "net_netlink", target_os = "linux"))]
    Netlink,
    /// Poll the interface list every --poll-interval (portable).
    #[cfg(feature = "net_pnet")]
    Pnet,
    /// Do not collect network facts.
    None,
}

/// Which mounted filesystems are reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Filesystems {
    /// Those that store data on a device (ext4, xfs, btrfs...): what the
    /// guest's disks hold.
    Disks,
    /// Also memory filesystems (tmpfs, ramfs): every local one, as `df -l`.
    Local,
    /// None: do not collect filesystems.
    None,
}

impl Filesystems {
    /// What the collector is asked for, or nothing.
    pub fn which(self) -> Option<crate::collectors::fs::Which> {
        use crate::collectors::fs::Which;
        match self {
            Filesystems::Disks => Some(Which::Disks),
            Filesystems::Local => Some(Which::Local),
            Filesystems::None => None,
        }
    }
}

impl Network {
    /// The best collector compiled in.
    pub fn default_choice() -> Self {
        #[cfg(all(feature = "net_netlink", target_os = "linux"))]
        return Network::Netlink;
        #[cfg(all(
            not(all(feature = "net_netlink", target_os = "linux")),
            feature = "net_pnet"
        ))]
        return Network::Pnet;
        #[cfg(not(any(
            all(feature = "net_netlink", target_os = "linux"),
            feature = "net_pnet"
        )))]
        return Network::None;
    }
}

impl PublisherKind {
    /// xenstore when compiled in, else stdout.
    pub fn default_choice() -> Self {
        #[cfg(feature = "xenstore")]
        return PublisherKind::Xenstore;
        #[cfg(not(feature = "xenstore"))]
        return PublisherKind::Stdout;
    }
}

/// Log verbosity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    /// Only errors.
    Error,
    /// Errors and warnings.
    Warn,
    /// Also what the agent does (the default).
    Info,
    /// Also every change and xenstore operation.
    Debug,
    /// Everything, including every collector event.
    Trace,
}

impl From<LogLevel> for log::LevelFilter {
    fn from(l: LogLevel) -> Self {
        match l {
            LogLevel::Error => log::LevelFilter::Error,
            LogLevel::Warn => log::LevelFilter::Warn,
            LogLevel::Info => log::LevelFilter::Info,
            LogLevel::Debug => log::LevelFilter::Debug,
            LogLevel::Trace => log::LevelFilter::Trace,
        }
    }
}

/// Xen guest agent: publishes the guest's OS, kernel, memory and network
/// addresses in xenstore, where dom0's toolstack (XAPI, Xen Orchestra, xl
/// scripts) reads them.
#[derive(Clone, Debug, Parser)]
#[command(name = "xen-guest-agent", version, about, long_about = None)]
pub struct Cli {
    /// Log to standard error instead of syslog.
    #[arg(short = 's', long)]
    pub stderr: bool,

    /// Log level (RUST_LOG, when set, takes precedence and may name modules).
    #[arg(short = 'l', long, value_enum, default_value = "info")]
    pub loglevel: LogLevel,

    /// Where to publish.
    #[arg(long, value_enum, default_value_t = PublisherKind::default_choice())]
    pub publisher: PublisherKind,

    /// xenstore layout to publish.
    #[arg(long, value_enum, env = "XENSTORE_SCHEMA", default_value = "std")]
    pub schema: Schema,

    /// With the xenstore publisher: print the xenstore operations the schema
    /// would make on standard output instead of connecting to xenstore.
    #[arg(long)]
    pub dry_run: bool,

    /// How to talk to xenstore: `auto` uses libxenstore where it can be
    /// loaded and the agent's own client where it cannot.
    #[cfg(feature = "xenstore")]
    #[arg(long, value_enum, env = "XENSTORE_BACKEND", default_value = "auto")]
    pub xenstore_backend: XenstoreBackend,

    /// Seconds xenstored may take to answer: past them the connection is
    /// taken as gone, opened again, and everything reconciled (with
    /// libxenstore, whose calls cannot be given up, the stuck call is left
    /// to its thread and a new one connects).
    #[cfg(feature = "xenstore")]
    #[arg(long, value_name = "SECONDS", default_value = "20", value_parser = seconds)]
    pub xenstore_timeout: Duration,

    /// Seconds the first publication may take: past them the agent tells
    /// the service manager it is ready anyway (and goes on trying), and
    /// --oneshot fails.
    #[arg(long, value_name = "SECONDS", default_value = "30", value_parser = seconds)]
    pub publish_timeout: Duration,

    /// Output format of the stdout publisher.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,

    /// Network collector.
    #[arg(long, value_enum, default_value_t = Network::default_choice())]
    pub network: Network,

    /// Seconds between two memory samples (a change is published only when
    /// a value changed).
    #[arg(long, value_name = "SECONDS", default_value = "60", value_parser = seconds)]
    pub memory_interval: Duration,

    /// Seconds between two polls of the interface list (pnet collector).
    #[cfg(feature = "net_pnet")]
    #[arg(long, value_name = "SECONDS", default_value = "60", value_parser = seconds)]
    pub poll_interval: Duration,

    /// Most addresses published per interface and address family (xenstore
    /// has a per-domain node quota); the rest are logged once and skipped.
    #[arg(long, value_name = "N", default_value = "32", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub max_addresses: u32,

    /// Mounted filesystems to report with their space (never network or
    /// FUSE ones, whose statvfs can block; never proc, sysfs, overlay...).
    #[arg(long, value_enum, default_value = "disks")]
    pub filesystems: Filesystems,

    /// Most filesystems published (xenstore has a per-domain node quota);
    /// the rest are logged once and skipped.
    #[arg(long, value_name = "N", default_value = "16", value_parser = clap::value_parser!(u32).range(1..=256))]
    pub max_filesystems: u32,

    /// Do not write control/feature-balloon (for guests without a balloon
    /// driver: its presence tells squeezed it may balloon the guest).
    #[arg(long)]
    pub no_feature_balloon: bool,

    /// Let dom0 ask this guest to do something (a comma-separated list; none
    /// by default). `static-ip`: XAPI's static IP setting (`xe
    /// vif-configure-ipv4`/`-ipv6`, Linux only): dom0 may then set a VIF's
    /// addresses and default gateways, or switch it back to DHCP/autoconf,
    /// at once and, through systemd-networkd or ifupdown, lastingly; the
    /// agent advertises control/feature-static-ip-setting while it runs.
    /// Needs CAP_NET_ADMIN (the systemd drop-in
    /// xen-guest-agent-static-ip.conf grants it). `password`, `injectfile`,
    /// `resetnetwork`: OpenStack's XenServer guest-agent protocol (nova's
    /// commands in data/host/, answered in data/guest/, Linux only): dom0 may
    /// then set root's password, write the files --inject-path lists, set
    /// the VIFs' addresses from vm-data/networking and the host name from
    /// vm-data/hostname (drop-in xen-guest-agent-openstack.conf).
    #[cfg(feature = "xenstore")]
    #[arg(long, value_enum, value_delimiter = ',', value_name = "REQUESTS")]
    pub allow: Vec<crate::requests::Allow>,

    /// A file OpenStack's `injectfile` may write (repeat the option for
    /// several; an absolute path; the default is the only one otherwise).
    #[cfg(feature = "xenstore")]
    #[arg(
        long,
        value_name = "PATH",
        default_value = "/root/.ssh/authorized_keys"
    )]
    pub inject_path: Vec<PathBuf>,

    /// Root under which the requests read and write the system's files
    /// (DIR/etc/systemd/network, DIR/run/systemd/netif,
    /// DIR/etc/network/interfaces, DIR/etc/shadow, DIR/etc/hostname, the
    /// injected files...); for tests and containers.
    #[cfg(feature = "xenstore")]
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub system_root: PathBuf,

    /// Collect once, publish once, and exit (for scripts and tests).
    #[arg(long)]
    pub oneshot: bool,

    /// Root of the sysfs tree used to identify VIFs and bridges and the
    /// virtualization mode (Linux); for tests and containers.
    #[arg(long, value_name = "DIR", default_value = "/sys")]
    pub sysfs: PathBuf,
}

/// Longest period accepted: a day. Beyond it no sampling is meaningful,
/// and a deadline far enough ahead would overflow the clock.
const MAX_SECONDS: u64 = 86_400;

/// A whole number of seconds, at least 1 (a zero period would spin), at
/// most [`MAX_SECONDS`].
fn seconds(s: &str) -> Result<Duration, String> {
    match s.parse::<u64>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) if n > MAX_SECONDS => Err(format!("must be at most {MAX_SECONDS} (a day)")),
        Ok(n) => Ok(Duration::from_secs(n)),
        Err(_) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            Err(format!("must be at most {MAX_SECONDS} (a day)"))
        }
        Err(_) => Err(format!("`{s}` is not a whole number of seconds")),
    }
}

impl Cli {
    /// The command line of this process; exits with a message (status 2)
    /// when it is wrong, as clap does.
    pub fn from_env() -> Cli {
        Self::try_from_args(std::env::args_os()).unwrap_or_else(|e| e.exit())
    }

    /// Parse `args` (the program name first) and refuse options given on
    /// the command line that do not apply to what was chosen: an option
    /// that silently does nothing misleads whoever wrote it. (Values from
    /// the environment are defaults for whatever runs, and are not
    /// refused.)
    pub fn try_from_args<I, T>(args: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let mut command = Cli::command();
        let matches = command.try_get_matches_from_mut(args)?;
        let cli = Cli::from_arg_matches(&matches)?;
        cli.check_applies(&matches)
            .map_err(|msg| command.error(clap::error::ErrorKind::ArgumentConflict, msg))?;
        Ok(cli)
    }

    fn check_applies(&self, matches: &ArgMatches) -> Result<(), String> {
        let given = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
        let refuse =
            |options: &[(&str, &str)], why: &str| match options.iter().find(|(id, _)| given(id)) {
                Some((_, option)) => Err(format!("{option} applies only {why}")),
                None => Ok(()),
            };
        if self.publisher == PublisherKind::Stdout {
            refuse(
                &[
                    ("dry_run", "--dry-run"),
                    ("schema", "--schema"),
                    ("max_addresses", "--max-addresses"),
                    ("max_filesystems", "--max-filesystems"),
                    ("no_feature_balloon", "--no-feature-balloon"),
                    #[cfg(feature = "xenstore")]
                    ("xenstore_backend", "--xenstore-backend"),
                    #[cfg(feature = "xenstore")]
                    ("xenstore_timeout", "--xenstore-timeout"),
                    #[cfg(feature = "xenstore")]
                    ("allow", "--allow"),
                ],
                "to the xenstore publisher (--publisher xenstore)",
            )?;
        } else {
            #[cfg(feature = "xenstore")]
            if self.dry_run {
                refuse(
                    &[
                        ("xenstore_backend", "--xenstore-backend"),
                        ("xenstore_timeout", "--xenstore-timeout"),
                        ("allow", "--allow"),
                    ],
                    "when connecting to xenstore (a dry run connects to none)",
                )?;
            }
            #[cfg(feature = "xenstore")]
            if self.oneshot {
                refuse(
                    &[("allow", "--allow")],
                    "to a running agent (--oneshot exits before dom0 could ask anything)",
                )?;
            }
            refuse(
                &[("format", "--format")],
                "to the stdout publisher (--publisher stdout; --dry-run prints xenstore operations)",
            )?;
        }
        if self.filesystems == Filesystems::None {
            refuse(
                &[("max_filesystems", "--max-filesystems")],
                "when filesystems are reported (--filesystems disks or local)",
            )?;
        }
        #[cfg(feature = "net_pnet")]
        if self.network != Network::Pnet {
            refuse(
                &[("poll_interval", "--poll-interval")],
                "to the pnet collector (--network pnet)",
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn intervals_must_be_positive_integers() {
        assert!(Cli::try_parse_from(["x", "--memory-interval", "0"]).is_err());
        assert!(Cli::try_parse_from(["x", "--memory-interval", "1.5"]).is_err());
        let c = Cli::try_parse_from(["x", "--memory-interval", "5"]).unwrap();
        assert_eq!(c.memory_interval, Duration::from_secs(5));
    }
}
