//! Where xenstore is and how bytes get there: the xenstored socket, or the
//! guest kernel's xenbus device, opened non-blocking and waited on by the
//! event loop.
//!
//! The connection goes where libxenstore 4.17's `xs_open` goes, so that
//! both reach the same xenstored: `XENSTORED_PATH` when set; else the
//! xenstored socket, `$XENSTORED_RUNDIR/socket` (default
//! `/var/run/xenstored/socket`, which exists in dom0); else the guest
//! kernel's xenbus device. A path that is a socket is connected to,
//! anything else is opened as the device.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use super::wire::{HEADER_LEN, PAYLOAD_MAX};

/// The guest kernel's xenbus device, as libxenstore picks it: the first
/// that exists, else the last.
#[cfg(target_os = "linux")]
const DEVICES: &[&str] = &["/dev/xen/xenbus", "/proc/xen/xenbus"];
#[cfg(target_os = "freebsd")]
const DEVICES: &[&str] = &["/dev/xen/xenstore"];
#[cfg(not(any(target_os = "linux", target_os = "freebsd")))]
const DEVICES: &[&str] = &["/dev/xen/xenbus"];

/// xenstored's run directory when `XENSTORED_RUNDIR` is not set
/// (libxenstore's built-in `XEN_RUN_STORED`).
const RUNDIR: &str = "/var/run/xenstored";

/// Where xenstore is, in the order tried.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Places {
    socket: PathBuf,
    device: PathBuf,
}

impl Places {
    /// As libxenstore finds them, from `XENSTORED_PATH` and
    /// `XENSTORED_RUNDIR`.
    pub fn from_env() -> Self {
        Self::from_vars(
            std::env::var_os("XENSTORED_PATH").map(PathBuf::from),
            std::env::var_os("XENSTORED_RUNDIR").map(PathBuf::from),
        )
    }

    /// As libxenstore finds them, given the values of `XENSTORED_PATH`
    /// and `XENSTORED_RUNDIR`.
    pub fn from_vars(path: Option<PathBuf>, rundir: Option<PathBuf>) -> Self {
        if let Some(path) = path {
            return Places {
                socket: path.clone(),
                device: path,
            };
        }
        let device = DEVICES
            .iter()
            .copied()
            .find(|d| Path::new(d).exists())
            .or(DEVICES.last().copied())
            .unwrap_or("/dev/xen/xenbus");
        Places {
            socket: rundir
                .unwrap_or_else(|| PathBuf::from(RUNDIR))
                .join("socket"),
            device: PathBuf::from(device),
        }
    }

    /// What is tried, for logs: `/var/run/xenstored/socket, else
    /// /dev/xen/xenbus`.
    pub fn describe(&self) -> String {
        if self.socket == self.device {
            self.socket.display().to_string()
        } else {
            format!("{}, else {}", self.socket.display(), self.device.display())
        }
    }

    /// Open the first that works, and say which it is; else say why
    /// neither did.
    pub(super) async fn open(&self) -> Result<(Channel, PathBuf), String> {
        let socket_failed = match Channel::open(&self.socket).await {
            Ok(c) => return Ok((c, self.socket.clone())),
            Err(e) => format!("{}: {e}", self.socket.display()),
        };
        if self.device == self.socket {
            return Err(socket_failed);
        }
        match Channel::open(&self.device).await {
            Ok(c) => Ok((c, self.device.clone())),
            Err(e) => Err(format!("{socket_failed}; {}: {e}", self.device.display())),
        }
    }
}

/// A connection to xenstore: the xenstored socket or the xenbus device.
pub(super) enum Channel {
    Socket(UnixStream),
    Device(File),
}

impl Channel {
    /// Open `path` non-blocking: connect to it if it is a socket, open it
    /// as the device otherwise.
    async fn open(path: &Path) -> io::Result<Channel> {
        if std::fs::metadata(path)?.file_type().is_socket() {
            let stream = tokio::net::UnixStream::connect(path).await?;
            Ok(Channel::Socket(stream.into_std()?))
        } else {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(path)?;
            Ok(Channel::Device(file))
        }
    }

    /// The xenbus device: one message per `write` (the Linux driver acts
    /// on the first message of a write and drops the rest of it), and a
    /// refused request may come back as the `write`'s error.
    pub(super) fn is_device(&self) -> bool {
        matches!(self, Channel::Device(_))
    }

    /// The largest payload this transport takes: the Linux and FreeBSD
    /// drivers buffer a request, header included, in 4096 bytes.
    pub(super) fn payload_max(&self) -> usize {
        match self {
            Channel::Socket(_) => PAYLOAD_MAX,
            Channel::Device(_) => PAYLOAD_MAX - HEADER_LEN,
        }
    }

    pub(super) fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Channel::Socket(s) => (&mut &*s).read(buf),
            Channel::Device(f) => (&mut &*f).read(buf),
        }
    }

    pub(super) fn write(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Channel::Socket(s) => (&mut &*s).write(buf),
            Channel::Device(f) => (&mut &*f).write(buf),
        }
    }
}

impl AsRawFd for Channel {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            Channel::Socket(s) => s.as_raw_fd(),
            Channel::Device(f) => f.as_raw_fd(),
        }
    }
}

/// Register a channel with the reactor, for reading only: with writing too,
/// every request would wake the agent once more when xenstored takes it
/// off the socket (a wakeup for nothing); a write that would block is
/// rare and retried after a pause instead (see `Client::send`).
pub(super) fn register(channel: Channel) -> io::Result<AsyncFd<Channel>> {
    crate::sys::register(channel, Interest::READABLE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_follow_libxenstore() {
        let p = Places::from_vars(Some("/tmp/xs.sock".into()), Some("/elsewhere".into()));
        assert_eq!(p.socket, PathBuf::from("/tmp/xs.sock"));
        assert_eq!(p.device, PathBuf::from("/tmp/xs.sock"));
        assert_eq!(p.describe(), "/tmp/xs.sock");
        let p = Places::from_vars(None, None);
        assert_eq!(p.socket, PathBuf::from("/var/run/xenstored/socket"));
        assert!(DEVICES.contains(&p.device.to_str().unwrap()));
        assert!(p
            .describe()
            .starts_with("/var/run/xenstored/socket, else /"));
        let p = Places::from_vars(None, Some("/run/xs".into()));
        assert_eq!(p.socket, PathBuf::from("/run/xs/socket"));
    }

    #[tokio::test]
    async fn nothing_there_says_what_was_tried() {
        let dir = std::env::temp_dir().join(format!("xga-native-none-{}", std::process::id()));
        let p = Places::from_vars(None, Some(dir.clone()));
        let p = Places {
            device: dir.join("xenbus"),
            ..p
        };
        let e = p.open().await.err().expect("nothing to open");
        assert!(e.contains(&format!("{}/socket: ", dir.display())), "{e}");
        assert!(e.contains(&format!("; {}/xenbus: ", dir.display())), "{e}");
    }
}
