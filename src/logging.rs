//! Logging to syslog (the default for a service) or to standard error.
//!
//! A small `log::Log` of our own: a level filter (`--loglevel`, or
//! `RUST_LOG` through env_filter) and two sinks are all the agent needs.

use std::ffi::CString;
use std::io::Write;

use log::{Level, LevelFilter, Log, Metadata, Record};

/// Where log lines go.
enum Sink {
    Syslog,
    Stderr,
}

struct Logger {
    filter: env_filter::Filter,
    sink: Sink,
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        self.filter.enabled(metadata)
    }

    fn log(&self, record: &Record) {
        if !self.filter.matches(record) {
            return;
        }
        match self.sink {
            Sink::Stderr => {
                // One write per line: stderr is unbuffered, and a line in
                // pieces costs a syscall each and interleaves with others.
                let line = format!(
                    "[{} {}] {}\n",
                    record.level(),
                    record.target(),
                    record.args()
                );
                let _ = std::io::stderr().write_all(line.as_bytes());
            }
            Sink::Syslog => {
                let priority = match record.level() {
                    Level::Error => libc::LOG_ERR,
                    Level::Warn => libc::LOG_WARNING,
                    Level::Info => libc::LOG_INFO,
                    Level::Debug | Level::Trace => libc::LOG_DEBUG,
                };
                // Interior NULs cannot cross the C API: show them escaped.
                let text = record.args().to_string().replace('\0', "\\0");
                if let Ok(msg) = CString::new(text) {
                    // SAFETY: "%s" with one valid NUL-terminated string.
                    unsafe { libc::syslog(priority, c"%s".as_ptr(), msg.as_ptr()) };
                }
            }
        }
    }

    fn flush(&self) {}
}

/// Install the process logger. `RUST_LOG`, when set and valid, overrides
/// `level`; an invalid `RUST_LOG` is reported and ignored.
pub fn init(to_stderr: bool, level: LevelFilter) {
    let mut builder = env_filter::Builder::new();
    builder.filter_level(level);
    let mut rust_log_error = None;
    // A blank RUST_LOG (an easy line to leave in /etc/default) counts as
    // unset: parsed, it would turn every log line off.
    if let Some(spec) = std::env::var("RUST_LOG")
        .ok()
        .filter(|s| !s.trim().is_empty())
    {
        let mut b = env_filter::Builder::new();
        match b.try_parse(&spec) {
            Ok(_) => builder = b,
            Err(e) => rust_log_error = Some(format!("ignoring RUST_LOG={spec:?}: {e}")),
        }
    }
    let filter = builder.build();
    let sink = if to_stderr {
        Sink::Stderr
    } else {
        // SAFETY: the identifier is a static C string, as openlog requires
        // (it keeps the pointer).
        unsafe {
            libc::openlog(
                c"xen-guest-agent".as_ptr(),
                libc::LOG_PID | libc::LOG_NDELAY,
                libc::LOG_DAEMON,
            )
        };
        Sink::Syslog
    };
    log::set_max_level(filter.filter());
    // Only fails when a logger is already set, which would be a bug in main.
    let _ = log::set_boxed_logger(Box::new(Logger { filter, sink }));
    if let Some(e) = rust_log_error {
        log::warn!("{e}");
    }
}
