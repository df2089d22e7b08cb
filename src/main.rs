//! The `xen-guest-agent` daemon: parse the command line, set up logging,
//! the collectors and the publisher, and run the event loop.

use std::process::ExitCode;

use xen_guest_agent::cli::{Cli, PublisherKind};
use xen_guest_agent::publishers::{stdout::Stdout, Publisher};
use xen_guest_agent::{agent, collectors, logging, service, Error};

fn main() -> ExitCode {
    let cli = Cli::from_env();
    logging::init(cli.stderr, cli.loglevel.into());
    // One thread is all this workload needs: collectors and the xenstore
    // client wait on the kernel. Only the libxenstore backend's blocking
    // calls have a thread of their own ("xenstore"). Nothing uses tokio's
    // blocking pool: the cap only keeps an accidental use from growing
    // threads.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(1)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fatal(&Error::io("cannot start the runtime", e), cli.stderr),
    };
    let to_stderr = cli.stderr;
    let result = runtime.block_on(run(cli));
    // Nothing may keep the process from exiting (dropping the runtime
    // would wait for blocking tasks; a hung xenstore call on the
    // publisher's own thread ends with the process anyway).
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fatal(&e, to_stderr),
    }
}

/// Report an error that stops the agent where the user will see it: in the
/// log, and also on stderr when the log is syslog.
fn fatal(e: &Error, logged_to_stderr: bool) -> ExitCode {
    log::error!("{e}");
    if !logged_to_stderr {
        eprintln!("xen-guest-agent: {e}");
    }
    ExitCode::FAILURE
}

async fn run(cli: Cli) -> Result<(), Error> {
    log::info!("xen-guest-agent {} starting", env!("CARGO_PKG_VERSION"));
    let stop =
        service::stop_signals().map_err(|e| Error::io("cannot catch SIGTERM and SIGINT", e))?;
    let mut publisher = match cli.publisher {
        PublisherKind::Stdout => Publisher::Stdout(Stdout::new(cli.format)),
        #[cfg(feature = "xenstore")]
        PublisherKind::Xenstore => {
            Publisher::Xenstore(xen_guest_agent::publishers::xenstore::Xenstore::new(&cli)?)
        }
    };
    let config = collectors::Config {
        memory_interval: cli.memory_interval,
        #[cfg(feature = "net_pnet")]
        poll_interval: cli.poll_interval,
        network: cli.network,
        filesystems: cli.filesystems.which(),
        sysfs: cli.sysfs.clone(),
        oneshot: cli.oneshot,
    };
    let options = agent::Options {
        publish_timeout: cli.publish_timeout,
        oneshot: cli.oneshot,
    };
    #[cfg(feature = "xenstore")]
    let requests = xen_guest_agent::requests::Requests::start(&cli)?;
    let result = agent::run(collectors::start(&config), &mut publisher, stop, options).await;
    #[cfg(feature = "xenstore")]
    if let Some(requests) = requests {
        requests.stop().await;
    }
    result
}
