//! Operating system identity: which distribution, which version, in the
//! words dom0 expects (docs/xenstore-schema.md, xe-guest-utilities
//! conventions: `data/os_distro`, `os_majorver`, `os_minorver`, `os_name`).
//!
//! Detection reads a few small files (Linux) or calls `uname(2)` (FreeBSD);
//! it never runs a child process. The OS cannot change while the agent
//! runs, so the stream reports it once.

use std::path::Path;

use futures::stream;

use super::EventStream;
use crate::state::{Event, OsInfo};

#[cfg(not(target_os = "freebsd"))]
mod linux;
#[cfg(not(target_os = "freebsd"))]
pub use linux::detect;

// Compiled in Linux test builds too: its parsing is pure and tested there.
#[cfg(any(target_os = "freebsd", test))]
mod freebsd;
#[cfg(target_os = "freebsd")]
pub use freebsd::detect;

/// Longest name or version kept: a name is for display, and a xenstore node
/// holds at most 2048 bytes; anything longer is a broken file.
const MAX_FIELD: usize = 256;

/// One event with the OS identity, detected when the stream is first
/// polled (so that starting the collectors does no I/O).
pub fn stream() -> EventStream {
    Box::pin(stream::iter(std::iter::once_with(|| {
        let os = detect(Path::new("/"));
        log::info!(
            "OS: {} {} ({}); major {:?}, minor {:?}",
            os.distro,
            os.version,
            os.name,
            os.major,
            os.minor
        );
        Event::Os(os)
    })))
}

/// Build the identity from its distribution id, precise version and name,
/// deriving the major and minor versions the way dom0 reads them.
///
/// Major and minor are the leading digits of the first two dot-separated
/// components, kept as written (`22.04` gives `22` and `04`, which is what
/// XAPI and Xen Orchestra have always been shown). When there is a major but
/// no minor, the minor is `0`; when the version is unknown (Arch, Debian
/// testing) both are empty, so that no number is invented: publishers leave
/// such nodes out.
fn os_info(distro: &str, version: &str, name: &str) -> OsInfo {
    let version = clean(version);
    let mut parts = version.split('.').map(leading_digits);
    let major = parts.next().unwrap_or_default();
    let minor = match parts.next() {
        _ if major.is_empty() => "",
        Some(m) if !m.is_empty() => m,
        _ => "0",
    };
    OsInfo {
        distro: distro.to_owned(),
        name: clean(name),
        major: major.to_owned(),
        minor: minor.to_owned(),
        version,
    }
}

/// The digits a version component starts with (`04`, `5` of `5-beta`).
fn leading_digits(s: &str) -> &str {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    &s[..end]
}

/// Trimmed, without control characters, at most [`MAX_FIELD`] characters:
/// release files are free text, and a stray escape sequence or a megabyte
/// line must not reach dom0 or a terminal.
fn clean(s: &str) -> String {
    s.trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_FIELD)
        .collect()
}

#[cfg(test)]
mod tests;
