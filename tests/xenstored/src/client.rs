//! A small raw xenstore client for tests: one request at a time, watch
//! events queued aside. It talks to a unix socket (this server, or C
//! xenstored's) or to a xenbus device file (`/dev/xen/xenbus` in a guest).
//!
//! Requests return the reply, or the error name the server sent (`"EACCES"`)
//! as `Err`; I/O problems are `Err("io: ...")`.

use std::collections::VecDeque;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use crate::wire::{self, Header, MsgType};

/// What a request returns: the reply or the error name.
pub type XsResult<T> = Result<T, String>;

/// How long a request waits for its reply.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

enum Incoming {
    Msg(Header, Vec<u8>),
    Closed,
}

/// A watch event: the path that changed (relative if the watch was) and
/// the watch's token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// The changed path.
    pub path: String,
    /// The token given to `watch`.
    pub token: String,
}

/// A raw client.
pub struct Client {
    writer: Box<dyn Write + Send>,
    rx: Receiver<Incoming>,
    events: VecDeque<Event>,
    next_req: u32,
    closed: bool,
}

fn io_err(e: impl std::fmt::Display) -> String {
    format!("io: {e}")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl Client {
    /// Connects to a xenstored socket, or opens a xenbus device file.
    pub fn connect(path: impl AsRef<Path>) -> io::Result<Client> {
        let path = path.as_ref();
        if std::fs::metadata(path)?.file_type().is_socket() {
            let s = UnixStream::connect(path)?;
            let r = s.try_clone()?;
            Ok(Client::from_parts(Box::new(r), Box::new(s)))
        } else {
            let f = OpenOptions::new().read(true).write(true).open(path)?;
            let r = f.try_clone()?;
            Ok(Client::from_parts(Box::new(r), Box::new(f)))
        }
    }

    fn from_parts(mut reader: Box<dyn io::Read + Send>, writer: Box<dyn Write + Send>) -> Client {
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || loop {
            match wire::read_message(&mut reader) {
                Ok(Some((h, p))) => {
                    if tx.send(Incoming::Msg(h, p)).is_err() {
                        break;
                    }
                }
                _ => {
                    let _ = tx.send(Incoming::Closed);
                    break;
                }
            }
        });
        Client {
            writer,
            rx,
            events: VecDeque::new(),
            next_req: 1,
            closed: false,
        }
    }

    fn take(&mut self, m: Incoming) -> Option<(Header, Vec<u8>)> {
        match m {
            Incoming::Closed => {
                self.closed = true;
                None
            }
            Incoming::Msg(h, p) if h.ty == MsgType::WatchEvent as u32 => {
                let args = wire::split_args(&p);
                self.events.push_back(Event {
                    path: args.first().map(|a| text(a)).unwrap_or_default(),
                    token: args.get(1).map(|a| text(a)).unwrap_or_default(),
                });
                None
            }
            Incoming::Msg(h, p) => Some((h, p)),
        }
    }

    /// Sends raw bytes (for malformed or oversized messages).
    pub fn send_raw(&mut self, bytes: &[u8]) -> XsResult<()> {
        self.writer.write_all(bytes).map_err(io_err)?;
        self.writer.flush().map_err(io_err)
    }

    /// Sends a request of raw type `ty` and waits for its reply.
    pub fn call_raw(&mut self, ty: u32, tx: u32, payload: &[u8]) -> XsResult<Vec<u8>> {
        let req = self.next_req;
        self.next_req = self.next_req.wrapping_add(1);
        self.send_raw(&wire::encode(ty, req, tx, payload))?;
        let deadline = Instant::now() + REPLY_TIMEOUT;
        loop {
            if self.closed {
                return Err(io_err("connection closed"));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let m = match self.rx.recv_timeout(left) {
                Ok(m) => m,
                Err(RecvTimeoutError::Timeout) => return Err(io_err("no reply")),
                Err(RecvTimeoutError::Disconnected) => return Err(io_err("connection closed")),
            };
            let Some((h, p)) = self.take(m) else {
                continue;
            };
            if h.req_id != req {
                continue;
            }
            if h.ty == MsgType::Error as u32 {
                return Err(text(&p).trim_end_matches('\0').to_string());
            }
            return Ok(p);
        }
    }

    /// Sends a request made of NUL-terminated `args` in transaction `tx`.
    pub fn call(&mut self, ty: MsgType, tx: u32, args: &[&str]) -> XsResult<Vec<u8>> {
        self.call_raw(ty as u32, tx, &wire::join_args(args))
    }

    /// `XS_READ` in transaction `tx` (0: none).
    pub fn read_tx(&mut self, tx: u32, path: &str) -> XsResult<String> {
        self.call(MsgType::Read, tx, &[path]).map(|v| text(&v))
    }

    /// `XS_READ`.
    pub fn read(&mut self, path: &str) -> XsResult<String> {
        self.read_tx(0, path)
    }

    /// `XS_WRITE` in transaction `tx`.
    pub fn write_tx(&mut self, tx: u32, path: &str, value: &str) -> XsResult<()> {
        let mut p = wire::join_args(&[path]);
        p.extend_from_slice(value.as_bytes());
        self.call_raw(MsgType::Write as u32, tx, &p).map(|_| ())
    }

    /// `XS_WRITE`.
    pub fn write(&mut self, path: &str, value: &str) -> XsResult<()> {
        self.write_tx(0, path, value)
    }

    /// `XS_MKDIR`.
    pub fn mkdir(&mut self, path: &str) -> XsResult<()> {
        self.call(MsgType::Mkdir, 0, &[path]).map(|_| ())
    }

    /// `XS_RM` in transaction `tx`.
    pub fn rm_tx(&mut self, tx: u32, path: &str) -> XsResult<()> {
        self.call(MsgType::Rm, tx, &[path]).map(|_| ())
    }

    /// `XS_RM`.
    pub fn rm(&mut self, path: &str) -> XsResult<()> {
        self.rm_tx(0, path)
    }

    /// `XS_DIRECTORY`.
    pub fn directory(&mut self, path: &str) -> XsResult<Vec<String>> {
        let v = self.call(MsgType::Directory, 0, &[path])?;
        Ok(wire::split_args(&v).into_iter().map(text).collect())
    }

    /// `XS_GET_PERMS`, as `["n0", "r5"]`.
    pub fn get_perms(&mut self, path: &str) -> XsResult<Vec<String>> {
        let v = self.call(MsgType::GetPerms, 0, &[path])?;
        Ok(wire::split_args(&v).into_iter().map(text).collect())
    }

    /// `XS_SET_PERMS` with entries such as `"n5"`, `"r0"`.
    pub fn set_perms(&mut self, path: &str, perms: &[&str]) -> XsResult<()> {
        let mut args = vec![path];
        args.extend_from_slice(perms);
        self.call(MsgType::SetPerms, 0, &args).map(|_| ())
    }

    /// `XS_WATCH`. C xenstored fires the watch once right away: see
    /// [`Client::next_event`].
    pub fn watch(&mut self, path: &str, token: &str) -> XsResult<()> {
        self.call(MsgType::Watch, 0, &[path, token]).map(|_| ())
    }

    /// `XS_UNWATCH`.
    pub fn unwatch(&mut self, path: &str, token: &str) -> XsResult<()> {
        self.call(MsgType::Unwatch, 0, &[path, token]).map(|_| ())
    }

    /// `XS_RESET_WATCHES`.
    pub fn reset_watches(&mut self) -> XsResult<()> {
        self.call(MsgType::ResetWatches, 0, &[""]).map(|_| ())
    }

    /// `XS_TRANSACTION_START`; returns the transaction id.
    pub fn transaction_start(&mut self) -> XsResult<u32> {
        let v = self.call(MsgType::TransactionStart, 0, &[""])?;
        text(&v)
            .trim_end_matches('\0')
            .parse()
            .map_err(|e| format!("bad transaction id: {e}"))
    }

    /// `XS_TRANSACTION_END`: commit (`true`) or abort.
    pub fn transaction_end(&mut self, tx: u32, commit: bool) -> XsResult<()> {
        let arg = if commit { "T" } else { "F" };
        self.call(MsgType::TransactionEnd, tx, &[arg]).map(|_| ())
    }

    /// `XS_GET_DOMAIN_PATH`.
    pub fn get_domain_path(&mut self, domid: u32) -> XsResult<String> {
        let v = self.call(MsgType::GetDomainPath, 0, &[&domid.to_string()])?;
        Ok(text(&v).trim_end_matches('\0').to_string())
    }

    /// The next watch event, waiting at most `timeout`.
    pub fn next_event(&mut self, timeout: Duration) -> Option<Event> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(e) = self.events.pop_front() {
                return Some(e);
            }
            if self.closed {
                return None;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(m) => {
                    self.take(m);
                }
                Err(_) => return None,
            }
        }
    }

    /// Events already received, without waiting.
    pub fn pending_events(&mut self) -> Vec<Event> {
        while let Ok(m) = self.rx.try_recv() {
            self.take(m);
        }
        self.events.drain(..).collect()
    }

    /// Waits until the server closes the connection (at most `timeout`).
    pub fn wait_closed(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while !self.closed {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(m) => {
                    self.take(m);
                }
                Err(RecvTimeoutError::Disconnected) => return true,
                Err(RecvTimeoutError::Timeout) => return false,
            }
        }
        true
    }
}
