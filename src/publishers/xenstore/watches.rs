//! The publisher's xenstore watches, without libxenstore: a connection of
//! our own, non-blocking, waited on by the event loop, that registers the
//! watches and reports their firings.
//!
//! Why not libxenstore's watches: the shared library starts a reader
//! thread per connection as soon as a watch is registered (a thread for
//! the life of the agent, for events that come a few times a year), and
//! the static `libxenstore.a` has no reader thread at all, so there a
//! watch event that arrives while a request waits for its reply breaks
//! the connection. A watch needs nothing but a connection, one request
//! per watch and reading what comes back: that is this module, and the
//! libxenstore connection only ever makes requests.
//!
//! The connection goes where libxenstore 4.17's `xs_open` goes, so that
//! both reach the same xenstored: `XENSTORED_PATH` when set; else the
//! xenstored socket, `$XENSTORED_RUNDIR/socket` (default
//! `/var/run/xenstored/socket`, which exists in dom0); else the guest
//! kernel's xenbus device. A path that is a socket is connected to,
//! anything else is opened as the device (it polls, and reads without
//! blocking when opened `O_NONBLOCK`).
//!
//! Watches fire once when registered, and again when the guest kernel
//! registers its watches again after a resume (restore, migration): that
//! is how the publisher notices a new domain. A lost connection
//! (xenstored restarted, garbage on the wire) is opened again with
//! backoff, the watches registered again, and a re-check is reported:
//! events may have been missed meanwhile.

use std::fmt::Display;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::time::Instant;

use super::wire::{self, Decoder, Message, XS_ERROR, XS_WATCH};
use super::worker::{DOMAIN_ID, SRIOV_VFS};

/// What the publisher should look at again.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Due {
    /// Whether our tree is still there (a new domain after a resume?).
    pub check_tree: bool,
    /// dom0's SR-IOV announcements.
    pub refresh_sriov: bool,
}

impl Due {
    /// Both: after events may have been missed.
    pub const ALL: Due = Due {
        check_tree: true,
        refresh_sriov: true,
    };

    fn any(self) -> bool {
        self.check_tree || self.refresh_sriov
    }

    fn or(self, other: Due) -> Due {
        Due {
            check_tree: self.check_tree || other.check_tree,
            refresh_sriov: self.refresh_sriov || other.refresh_sriov,
        }
    }
}

/// One watch: its request id is its index in [`WATCHES`] plus one.
struct Watch {
    path: &'static str,
    token: &'static str,
    fires: Due,
}

/// The publisher's watches.
const WATCHES: [Watch; 2] = [
    Watch {
        path: DOMAIN_ID,
        token: "domain",
        fires: Due {
            check_tree: true,
            refresh_sriov: false,
        },
    },
    Watch {
        path: SRIOV_VFS,
        token: "sriov",
        fires: Due {
            check_tree: false,
            refresh_sriov: true,
        },
    },
];

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

/// First pause before opening a lost connection again; it doubles up to
/// [`BACKOFF_MAX`] while the connection stays away.
const BACKOFF_MIN: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

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

    fn from_vars(path: Option<PathBuf>, rundir: Option<PathBuf>) -> Self {
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

    /// Open the first that works.
    async fn open(&self) -> io::Result<Channel> {
        match Channel::open(&self.socket).await {
            Ok(c) => Ok(c),
            Err(_) if self.device != self.socket => Channel::open(&self.device)
                .await
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", self.device.display()))),
            Err(e) => Err(io::Error::new(
                e.kind(),
                format!("{}: {e}", self.socket.display()),
            )),
        }
    }
}

/// A connection to xenstore: the xenstored socket or the xenbus device.
enum Channel {
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

    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Channel::Socket(s) => (&mut &*s).read(buf),
            Channel::Device(f) => (&mut &*f).read(buf),
        }
    }

    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Channel::Socket(s) => (&mut &*s).write(buf),
            Channel::Device(f) => (&mut &*f).write(buf),
        }
    }

    /// Send one message now, or fail: a fresh connection whose queue is
    /// already full is as good as broken. One message per call: the
    /// xenbus device takes one message per `write` and drops what follows
    /// it in the same `write`.
    fn send(&self, mut msg: &[u8]) -> io::Result<()> {
        while !msg.is_empty() {
            match self.write(msg) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => msg = &msg[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Err(io::Error::other("xenstore takes no requests"))
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
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

/// The watch connection and what it reported.
pub struct Watches {
    places: Places,
    conn: Option<AsyncFd<Channel>>,
    decoder: Decoder,
    /// Reported at the next [`Watches::next`].
    due: Due,
    /// When to open a lost connection again.
    retry_at: Option<Instant>,
    backoff: Duration,
    backoff_min: Duration,
    /// Watches were registered before: registering them again reports a
    /// re-check.
    registered_before: bool,
    /// The loss of the connection was logged already.
    down_logged: bool,
    /// A refused watch was logged already (per watch).
    refused_logged: [bool; WATCHES.len()],
    /// The descriptor cannot be waited on here: no watches, for the life
    /// of the process (the publisher's periodic check is what is left).
    unsupported: bool,
}

impl Watches {
    /// Watches on the xenstore at `places`; nothing is opened before the
    /// first [`Watches::next`].
    pub fn new(places: Places) -> Self {
        Watches {
            places,
            conn: None,
            decoder: Decoder::default(),
            due: Due::default(),
            retry_at: None,
            backoff: BACKOFF_MIN,
            backoff_min: BACKOFF_MIN,
            registered_before: false,
            down_logged: false,
            refused_logged: [false; WATCHES.len()],
            unsupported: false,
        }
    }

    /// Wait until something is due: a watch fired, or the watches were
    /// registered again after a lost connection. Keeps the connection up
    /// meanwhile. Cancel-safe: everything lives in `self` between awaits.
    pub async fn next(&mut self) -> Due {
        loop {
            if self.due.any() {
                return std::mem::take(&mut self.due);
            }
            if self.unsupported {
                return std::future::pending().await;
            }
            let Some(conn) = &self.conn else {
                if let Some(at) = self.retry_at {
                    tokio::time::sleep_until(at).await;
                }
                self.open().await;
                continue;
            };
            match fill(conn, &mut self.decoder).await {
                Ok(()) => {
                    if let Err(e) = self.dispatch() {
                        self.lost(e);
                    }
                }
                Err(e) => self.lost(e),
            }
        }
    }

    /// Open the connection and register the watches.
    async fn open(&mut self) {
        let chan = match self.places.open().await {
            Ok(c) => c,
            Err(e) => return self.lost(e),
        };
        let conn = match super::register(chan) {
            Ok(c) => c,
            Err(e) => {
                log::warn!(
                    "cannot wait for xenstore watch events here ({e}): a resume, migration or \
                     SR-IOV change is noticed by the periodic check only"
                );
                self.unsupported = true;
                return;
            }
        };
        for (i, w) in WATCHES.iter().enumerate() {
            let request = wire::encode(XS_WATCH, i as u32 + 1, &[w.path, w.token]);
            if let Err(e) = conn.get_ref().send(&request) {
                return self.lost(e);
            }
        }
        self.conn = Some(conn);
        self.decoder.clear();
        self.retry_at = None;
        if self.down_logged {
            log::info!("xenstore watches are back");
            self.down_logged = false;
        }
        if std::mem::replace(&mut self.registered_before, true) {
            log::debug!("xenstore watches registered again: checking what they watch");
            self.due = Due::ALL;
        }
    }

    /// Act on the messages that arrived.
    fn dispatch(&mut self) -> Result<(), wire::Malformed> {
        while let Some(msg) = self.decoder.message()? {
            match msg {
                Message::Event { path, token } => {
                    log::debug!(
                        "xenstore watch fired: {} ({})",
                        String::from_utf8_lossy(path),
                        String::from_utf8_lossy(token)
                    );
                    if let Some(w) = WATCHES.iter().find(|w| w.token.as_bytes() == token) {
                        self.due = self.due.or(w.fires);
                    }
                }
                Message::Reply {
                    kind,
                    req_id,
                    payload,
                } => {
                    let watch = (req_id as usize)
                        .checked_sub(1)
                        .and_then(|i| WATCHES.get(i).map(|w| (i, w.path)));
                    match (kind, watch) {
                        (XS_WATCH, Some((_, path))) => {
                            // xenstore answers: the connection works.
                            self.backoff = self.backoff_min;
                            log::debug!("watching xenstore node {path}");
                        }
                        (XS_ERROR, Some((i, path))) => {
                            self.backoff = self.backoff_min;
                            if !std::mem::replace(&mut self.refused_logged[i], true) {
                                log::warn!(
                                    "xenstore node {path}: cannot watch it ({}): a resume or \
                                     migration may be noticed late",
                                    wire::error_name(payload)
                                );
                            }
                        }
                        _ => log::debug!(
                            "ignoring a xenstore message of type {kind} (request {req_id})"
                        ),
                    }
                }
            }
        }
        Ok(())
    }

    /// The connection is gone (or never came): try again later.
    fn lost(&mut self, e: impl Display) {
        self.conn = None;
        self.decoder.clear();
        self.retry_at = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
        if std::mem::replace(&mut self.down_logged, true) {
            log::debug!("xenstore watch connection still failing: {e}");
        } else {
            log::warn!(
                "xenstore watch connection failed ({e}); retrying with backoff (meanwhile a \
                 resume, migration or SR-IOV change may be noticed late)"
            );
        }
    }
}

/// Read what is there (at least one byte) into the decoder.
async fn fill(conn: &AsyncFd<Channel>, decoder: &mut Decoder) -> io::Result<()> {
    loop {
        let mut ready = conn.readable().await?;
        let space = decoder.space();
        if space.is_empty() {
            // Cannot be: a message always fits once complete ones are taken.
            return Err(io::Error::other("xenstore message too long"));
        }
        match ready.try_io(|c| c.get_ref().read(space)) {
            Ok(Ok(0)) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "xenstore closed the connection",
                ))
            }
            Ok(Ok(n)) => {
                decoder.filled(n);
                return Ok(());
            }
            Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
            Ok(Err(e)) => return Err(e),
            // Nothing after all: readiness was cleared, wait again.
            Err(_would_block) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;
    use std::sync::mpsc;

    use super::super::wire::{HEADER_LEN, XS_WATCH_EVENT};

    const DOMAIN: Due = Due {
        check_tree: true,
        refresh_sriov: false,
    };
    const SRIOV: Due = Due {
        check_tree: false,
        refresh_sriov: true,
    };

    #[test]
    fn places_follow_libxenstore() {
        let p = Places::from_vars(Some("/tmp/xs.sock".into()), Some("/elsewhere".into()));
        assert_eq!(p.socket, PathBuf::from("/tmp/xs.sock"));
        assert_eq!(p.device, PathBuf::from("/tmp/xs.sock"));
        let p = Places::from_vars(None, None);
        assert_eq!(p.socket, PathBuf::from("/var/run/xenstored/socket"));
        assert!(DEVICES.contains(&p.device.to_str().unwrap()));
        let p = Places::from_vars(None, Some("/run/xs".into()));
        assert_eq!(p.socket, PathBuf::from("/run/xs/socket"));
    }

    fn message(kind: u32, req_id: u32, payload: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        for field in [kind, req_id, 0, payload.len() as u32] {
            m.extend_from_slice(&field.to_ne_bytes());
        }
        m.extend_from_slice(payload);
        m
    }

    /// Read one request: (type, req_id, payload).
    fn request(c: &mut UnixStream) -> (u32, u32, Vec<u8>) {
        let mut h = [0u8; HEADER_LEN];
        c.read_exact(&mut h).unwrap();
        let f = |i: usize| u32::from_ne_bytes(h[4 * i..4 * i + 4].try_into().unwrap());
        let mut payload = vec![0; f(3) as usize];
        c.read_exact(&mut payload).unwrap();
        (f(0), f(1), payload)
    }

    /// Accept a connection and check that it registers both watches.
    fn accept_watches(l: &UnixListener) -> UnixStream {
        let (mut c, _) = l.accept().unwrap();
        assert_eq!(
            request(&mut c),
            (XS_WATCH, 1, b"unique-domain-id\0domain\0".to_vec())
        );
        assert_eq!(
            request(&mut c),
            (
                XS_WATCH,
                2,
                b"xenserver/device/net-sriov-vf\0sriov\0".to_vec()
            )
        );
        c
    }

    /// Write `bytes` in small pieces, each a read of its own if the
    /// client is quick.
    fn dribble(c: &mut UnixStream, bytes: &[u8]) {
        for piece in bytes.chunks(5) {
            c.write_all(piece).unwrap();
            c.flush().unwrap();
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    async fn next(w: &mut Watches) -> Due {
        tokio::time::timeout(Duration::from_secs(10), w.next())
            .await
            .expect("something due within 10 s")
    }

    #[tokio::test]
    async fn watches_fire_and_survive_eof_garbage_and_refusals() {
        let dir = std::env::temp_dir().join(format!("xga-watches-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let sock = dir.join("xs.sock");
        let listener = UnixListener::bind(&sock).unwrap();
        // The test's side tells the fake xenstored when to go on.
        let (go, wait) = mpsc::channel::<()>();
        let server = std::thread::spawn(move || {
            // 1: replies in pieces, events among them, a foreign message.
            let mut c = accept_watches(&listener);
            let mut out = message(XS_WATCH, 1, b"OK\0");
            out.extend(message(XS_WATCH_EVENT, 0, b"unique-domain-id\0domain\0"));
            out.extend(message(2, 99, b"a read we never made"));
            out.extend(message(XS_ERROR, 2, b"EACCES\0"));
            dribble(&mut c, &out);
            wait.recv().unwrap();
            dribble(
                &mut c,
                &message(
                    XS_WATCH_EVENT,
                    0,
                    b"xenserver/device/net-sriov-vf/1\0sriov\0",
                ),
            );
            wait.recv().unwrap();
            // Someone else's token: nothing due; then EOF.
            c.write_all(&message(XS_WATCH_EVENT, 0, b"x\0theirs\0"))
                .unwrap();
            drop(c);
            // 2: registered again; then garbage (a length beyond the limit).
            let mut c = accept_watches(&listener);
            c.write_all(&message(XS_WATCH, 1, b"OK\0")).unwrap();
            let mut bad = message(XS_WATCH, 2, b"OK\0");
            bad[12..16].copy_from_slice(&5000u32.to_ne_bytes());
            c.write_all(&bad).unwrap();
            // 3: registered again, kept open.
            let c = accept_watches(&listener);
            wait.recv().unwrap();
            drop(c);
        });
        let mut w = Watches::new(Places::from_vars(Some(sock), None));
        w.backoff_min = Duration::from_millis(10);
        w.backoff = w.backoff_min;
        assert_eq!(next(&mut w).await, DOMAIN);
        go.send(()).unwrap();
        assert_eq!(next(&mut w).await, SRIOV);
        assert!(w.refused_logged[1], "the refused watch was noted");
        go.send(()).unwrap();
        // EOF: opened again, registered again, a re-check is due.
        assert_eq!(next(&mut w).await, Due::ALL);
        // Garbage: the same.
        assert_eq!(next(&mut w).await, Due::ALL);
        assert!(w.conn.is_some());
        go.send(()).unwrap();
        server.join().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_missing_xenstore_is_retried_with_growing_backoff() {
        let missing = std::env::temp_dir().join("xga-watches-no-such-socket");
        let mut w = Watches::new(Places::from_vars(Some(missing), None));
        w.backoff_min = Duration::from_millis(1);
        w.backoff = w.backoff_min;
        let pending = tokio::time::timeout(Duration::from_millis(100), w.next()).await;
        assert!(pending.is_err(), "nothing due without a connection");
        assert!(w.down_logged);
        assert!(w.backoff > Duration::from_millis(8), "{:?}", w.backoff);
        assert!(w.conn.is_none());
    }
}
