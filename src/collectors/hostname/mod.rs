//! The host name, for XAPI's `VM_guest_metrics` host name (std
//! `data/host_name_dns` and `data/domain`) and rfc `data/os/host-name`.
//!
//! The name is the kernel's (`gethostname(2)`), read at start and again
//! whenever the kernel says it changed (Linux: `/proc/sys/kernel/hostname`
//! signals every `sethostname(2)` to `poll`, so `hostname` and
//! `hostnamectl` are seen at once without any timer; other systems have no
//! such signal and report it once). The DNS domain of a short name is
//! found in the guest's own files, never through NSS or a resolver call:
//! the portable static build has neither ([`domain_for`]).

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use futures::stream;

use super::EventStream;
use crate::state::{Event, HostName};

use crate::sys::ChangeWatch as Watch;

/// The file Linux signals host name changes on (in every UTS namespace: a
/// change in another one is a spurious wakeup, the name is read again and
/// found the same).
const HOSTNAME: &str = "/proc/sys/kernel/hostname";

/// Most bytes read from `/etc/hosts` or `/etc/resolv.conf`: both are a few
/// lines; anything larger is not worth a megabyte of the agent's memory.
const MAX_FILE: u64 = 1 << 20;

/// Longest DNS name (RFC 1035): a longer "domain" is not one.
const MAX_NAME: usize = 253;

/// The host name at start, then after every change the kernel signals
/// (`oneshot`: the first only). `etc` is the directory holding `hosts` and
/// `resolv.conf` (`/etc`). Nothing is read or registered before the stream
/// is first polled (on the runtime).
pub fn stream(etc: PathBuf, oneshot: bool) -> EventStream {
    Box::pin(stream::unfold(
        (None::<Watch>, etc, None::<HostName>),
        move |(watch, etc, last)| async move {
            let Some(last) = last else {
                let first = read(&etc);
                log_name(&first);
                return Some((Event::HostName(first.clone()), (None, etc, Some(first))));
            };
            // Registered right after the first read: the file is reported
            // readable once at registration, so a change in between is read
            // at the first wakeup.
            let mut watch = match watch {
                Some(w) => w,
                None if oneshot => return None,
                None => match Watch::open(HOSTNAME) {
                    Ok(w) => w,
                    // Expected where the kernel has no signal (FreeBSD).
                    Err(e) if e.kind() == std::io::ErrorKind::Unsupported => {
                        log::info!("host name changes will not be seen ({e}): published once");
                        return None;
                    }
                    Err(e) => {
                        log::warn!("host name changes will not be seen ({e}): published once");
                        return None;
                    }
                },
            };
            loop {
                if let Err(e) = watch.changed().await {
                    log::warn!("host name changes are no longer seen: {e}");
                    return None;
                }
                let now = read(&etc);
                if now != last {
                    log_name(&now);
                    return Some((Event::HostName(now.clone()), (Some(watch), etc, Some(now))));
                }
            }
        },
    ))
}

fn log_name(h: &HostName) {
    match &h.domain {
        Some(d) => log::info!("host name: {:?} (domain {d})", h.host),
        None => log::info!("host name: {:?} (no DNS domain known)", h.host),
    }
}

/// The kernel's host name and its domain, from the files under `etc`.
pub fn read(etc: &Path) -> HostName {
    let name = match kernel_host_name() {
        Ok(n) => n,
        Err(e) => {
            log::warn!("cannot read the host name: {e}");
            String::new()
        }
    };
    resolve(
        &name,
        || small_file(&etc.join("hosts")),
        || small_file(&etc.join("resolv.conf")),
    )
}

/// `gethostname(2)`; the kernel's unset name `(none)` is no name.
fn kernel_host_name() -> io::Result<String> {
    let mut buf = [0u8; 256];
    // SAFETY: `buf` is writable for its length; the name is NUL-terminated
    // when it fits, and the last byte stays 0 whatever happens.
    if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len() - 1) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]).trim().to_owned();
    Ok(if name == "(none)" {
        String::new()
    } else {
        name
    })
}

/// A file's text, at most [`MAX_FILE`] bytes; a missing or unreadable
/// file is empty (it just tells nothing).
fn small_file(path: &Path) -> String {
    let mut text = Vec::new();
    match File::open(path).and_then(|f| f.take(MAX_FILE).read_to_end(&mut text)) {
        Ok(_) => String::from_utf8_lossy(&text).into_owned(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(e) => {
            log::debug!("cannot read {}: {e}", path.display());
            String::new()
        }
    }
}

/// Split the kernel's host name into host and domain. A name with dots is
/// a fully qualified one: its first label is the host, the rest the
/// domain, and no file is read. For a short name, the domain is
/// [`domain_for`] it, from the `hosts` and `resolv.conf` texts given.
pub fn resolve(
    name: &str,
    hosts: impl FnOnce() -> String,
    resolv_conf: impl FnOnce() -> String,
) -> HostName {
    let name = name.trim_matches('.');
    match name.split_once('.') {
        Some((host, domain)) => HostName {
            host: host.to_owned(),
            domain: valid_domain(domain),
        },
        None => HostName {
            host: name.to_owned(),
            domain: if name.is_empty() {
                None
            } else {
                domain_for(name, &hosts(), &resolv_conf())
            },
        },
    }
}

/// The DNS domain of the short host name `host`, as `hostname -d` finds it
/// through the usual `hosts: files dns` order, without NSS: the first
/// `/etc/hosts` line naming `host` decides (its canonical name, the first
/// one, is `host.<domain>`, as Debian's installer writes `127.0.1.1
/// vm-42.lab.example vm-42`; or it is not and there is no domain); with no
/// such line, the resolver's local domain from `resolv.conf`, computed as
/// glibc's `res_init` does (the last `domain` or `search` line wins, and
/// `search` gives its first entry), which DNS would complete the name with.
/// Not `/proc/sys/kernel/domainname`: that is the NIS domain, unrelated to
/// DNS.
pub fn domain_for(host: &str, hosts: &str, resolv_conf: &str) -> Option<String> {
    for line in hosts.lines() {
        let line = line.split('#').next().unwrap_or_default();
        let mut fields = line.split_whitespace();
        let (Some(_addr), Some(canonical)) = (fields.next(), fields.next()) else {
            continue;
        };
        let named = std::iter::once(canonical)
            .chain(fields)
            .any(|n| n.eq_ignore_ascii_case(host));
        if !named {
            continue;
        }
        let canonical = canonical.trim_end_matches('.');
        return match canonical.split_once('.') {
            Some((h, domain)) if h.eq_ignore_ascii_case(host) => valid_domain(domain),
            _ => None,
        };
    }
    let mut local = None;
    for line in resolv_conf.lines() {
        let mut fields = line.split_whitespace();
        match fields.next() {
            Some("domain") | Some("search") => local = fields.next(),
            _ => {}
        }
    }
    local.and_then(valid_domain)
}

/// `domain` when it is a DNS name (labels of letters, digits, `-` and `_`,
/// 1 to 63 bytes each, at most [`MAX_NAME`] in all), without its trailing
/// dot; the root (`.`) and anything else are no domain.
fn valid_domain(domain: &str) -> Option<String> {
    let domain = domain.trim_end_matches('.');
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    (!domain.is_empty() && domain.len() <= MAX_NAME && domain.split('.').all(label_ok))
        .then(|| domain.to_owned())
}

#[cfg(test)]
mod tests;
