//! xenstore's wire format (`xen/include/public/io/xs_wire.h`): requests
//! encoded with their limits checked, replies parsed, and the byte stream
//! that comes back cut into messages.
//!
//! Every message is a header of four native-endian `u32` (type, request
//! id, transaction id, payload length) and a payload of at most
//! [`PAYLOAD_MAX`] bytes, NUL-terminated strings in practice. Nothing
//! guarantees that a read returns whole messages (the xenbus device hands
//! out what fits in the caller's buffer), so the [`Decoder`] keeps what
//! arrived until a message is complete.

use std::fmt;
use std::io::{self, Write as _};

/// Bytes of a message header.
pub const HEADER_LEN: usize = 16;

/// The largest payload xenstored sends or takes (`XENSTORE_PAYLOAD_MAX`).
pub const PAYLOAD_MAX: usize = 4096;

/// The longest absolute path (`XENSTORE_ABS_PATH_MAX`).
pub const ABS_PATH_MAX: usize = 3072;

/// The longest path below a domain's home, for a guest
/// (`XENSTORE_REL_PATH_MAX`).
pub const REL_PATH_MAX: usize = 2048;

/// Message types (`enum xsd_sockmsg_type`).
pub const XS_DIRECTORY: u32 = 1;
pub const XS_READ: u32 = 2;
pub const XS_GET_PERMS: u32 = 3;
pub const XS_WATCH: u32 = 4;
pub const XS_UNWATCH: u32 = 5;
pub const XS_TRANSACTION_START: u32 = 6;
pub const XS_TRANSACTION_END: u32 = 7;
pub const XS_GET_DOMAIN_PATH: u32 = 10;
pub const XS_WRITE: u32 = 11;
pub const XS_RM: u32 = 13;
/// A watch fired: payload `path\0token\0`.
pub const XS_WATCH_EVENT: u32 = 15;
/// The reply to a failed request: payload the error's name (`EACCES\0`).
pub const XS_ERROR: u32 = 16;

/// Xen's name of a message type, for messages.
pub fn type_name(kind: u32) -> String {
    let name = match kind {
        XS_DIRECTORY => "XS_DIRECTORY",
        XS_READ => "XS_READ",
        XS_GET_PERMS => "XS_GET_PERMS",
        XS_WATCH => "XS_WATCH",
        XS_UNWATCH => "XS_UNWATCH",
        XS_TRANSACTION_START => "XS_TRANSACTION_START",
        XS_TRANSACTION_END => "XS_TRANSACTION_END",
        XS_GET_DOMAIN_PATH => "XS_GET_DOMAIN_PATH",
        XS_WRITE => "XS_WRITE",
        XS_RM => "XS_RM",
        XS_WATCH_EVENT => "XS_WATCH_EVENT",
        XS_ERROR => "XS_ERROR",
        other => return format!("type {other}"),
    };
    name.to_string()
}

/// A transaction id; 0 outside any transaction.
pub type TxId = u32;

/// One request, borrowing its strings from the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request<'a> {
    /// A node's value: [`Reply::Value`].
    Read { tx: TxId, path: &'a str },
    /// A node's children: [`Reply::Children`].
    Directory { tx: TxId, path: &'a str },
    /// Write a node, creating its parents: [`Reply::Done`].
    Write {
        tx: TxId,
        path: &'a str,
        value: &'a str,
    },
    /// Remove a node and its children: [`Reply::Done`].
    Remove { tx: TxId, path: &'a str },
    /// A node's permissions: [`Reply::Perms`].
    GetPerms { tx: TxId, path: &'a str },
    /// A new transaction: [`Reply::Transaction`].
    TransactionStart,
    /// Commit (or abandon) a transaction: [`Reply::Done`]; `EAGAIN` when
    /// it conflicted and nothing of it was applied.
    TransactionEnd { tx: TxId, commit: bool },
    /// Watch a node (or an `@` event): [`Reply::Done`], then a first
    /// event at once.
    Watch { path: &'a str, token: &'a str },
    /// Stop watching: [`Reply::Done`].
    Unwatch { path: &'a str, token: &'a str },
    /// A domain's home (`/local/domain/<domid>`): [`Reply::Value`].
    GetDomainPath { domid: u32 },
}

impl Request<'_> {
    /// The message type, which the reply carries too.
    pub fn kind(&self) -> u32 {
        match self {
            Request::Read { .. } => XS_READ,
            Request::Directory { .. } => XS_DIRECTORY,
            Request::Write { .. } => XS_WRITE,
            Request::Remove { .. } => XS_RM,
            Request::GetPerms { .. } => XS_GET_PERMS,
            Request::TransactionStart => XS_TRANSACTION_START,
            Request::TransactionEnd { .. } => XS_TRANSACTION_END,
            Request::Watch { .. } => XS_WATCH,
            Request::Unwatch { .. } => XS_UNWATCH,
            Request::GetDomainPath { .. } => XS_GET_DOMAIN_PATH,
        }
    }

    /// The transaction it belongs to.
    pub fn tx(&self) -> TxId {
        match *self {
            Request::Read { tx, .. }
            | Request::Directory { tx, .. }
            | Request::Write { tx, .. }
            | Request::Remove { tx, .. }
            | Request::GetPerms { tx, .. }
            | Request::TransactionEnd { tx, .. } => tx,
            _ => 0,
        }
    }

    /// Append the message to `out`, or refuse it as xenstored would:
    /// `EINVAL` for an invalid path or token, `E2BIG` for a payload over
    /// `payload_max`. Nothing is appended when it is refused.
    pub fn encode(&self, req_id: u32, payload_max: usize, out: &mut Vec<u8>) -> Result<(), Errno> {
        let start = out.len();
        out.extend_from_slice(&[0; HEADER_LEN]);
        let checked = self.payload(out).and_then(|()| {
            let len = out.len() - start - HEADER_LEN;
            if len > payload_max {
                Err(Errno::E2BIG)
            } else {
                Ok(len)
            }
        });
        let len = match checked {
            Ok(len) => len,
            Err(e) => {
                out.truncate(start);
                return Err(e);
            }
        };
        let fields = [self.kind(), req_id, self.tx(), len as u32];
        for (i, field) in fields.iter().enumerate() {
            out[start + 4 * i..start + 4 * i + 4].copy_from_slice(&field.to_ne_bytes());
        }
        Ok(())
    }

    /// Append the payload, checking paths and tokens.
    fn payload(&self, out: &mut Vec<u8>) -> Result<(), Errno> {
        let mut string = |s: &str| {
            out.extend_from_slice(s.as_bytes());
            out.push(0);
        };
        match *self {
            Request::Read { path, .. }
            | Request::Directory { path, .. }
            | Request::Remove { path, .. }
            | Request::GetPerms { path, .. } => {
                check_path(path, false)?;
                string(path);
            }
            Request::Write { path, value, .. } => {
                check_path(path, false)?;
                string(path);
                // The value is not terminated: it is the rest of the payload.
                out.extend_from_slice(value.as_bytes());
            }
            Request::TransactionStart => string(""),
            Request::TransactionEnd { commit, .. } => string(if commit { "T" } else { "F" }),
            Request::Watch { path, token } | Request::Unwatch { path, token } => {
                check_path(path, true)?;
                if token.contains('\0') {
                    return Err(Errno::EINVAL);
                }
                string(path);
                string(token);
            }
            Request::GetDomainPath { domid } => {
                // Cannot fail: a Vec takes any write.
                let _ = write!(out, "{domid}\0");
            }
        }
        Ok(())
    }
}

/// Whether xenstored would take `path` from a guest (C xenstored's
/// `is_valid_nodename`): `[A-Za-z0-9-/_@]`, no `//`, no trailing `/`,
/// at most [`REL_PATH_MAX`] bytes below a home and [`ABS_PATH_MAX`] in
/// all; `@` names only for watches.
pub fn check_path(path: &str, watch: bool) -> Result<(), Errno> {
    let chars = path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'/' | b'_' | b'@'));
    let shape = if path.starts_with('@') {
        watch
    } else {
        !path.is_empty() && !path.contains("//") && (path == "/" || !path.ends_with('/'))
    };
    let below_home = match path.strip_prefix('/') {
        Some(_) => path.len() - home_prefix_len(path),
        None => path.len(),
    };
    if chars && shape && path.len() <= ABS_PATH_MAX && below_home <= REL_PATH_MAX {
        Ok(())
    } else {
        Err(Errno::EINVAL)
    }
}

/// Length of a leading `/local/domain/<domid>/`, 0 when there is none.
fn home_prefix_len(path: &str) -> usize {
    const HOMES: &str = "/local/domain/";
    let Some(rest) = path.strip_prefix(HOMES) else {
        return 0;
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits > 0 && rest.as_bytes().get(digits) == Some(&b'/') {
        HOMES.len() + digits + 1
    } else {
        0
    }
}

/// A successful request's outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// Done (write, remove, transaction end, watch, unwatch).
    Done,
    /// A node's value (lossy UTF-8), or a domain's path.
    Value(String),
    /// A node's children, by name.
    Children(Vec<String>),
    /// A node's permissions, owner first.
    Perms(Vec<Perm>),
    /// A new transaction's id.
    Transaction(TxId),
}

/// The reply to a request of type `kind`, from its payload; `Err` says
/// what is wrong with it.
pub fn parse_reply(kind: u32, payload: &[u8]) -> Result<Reply, String> {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    // `a\0b\0`: the strings; an empty payload has none.
    let strings = || {
        let body = payload.strip_suffix(b"\0").unwrap_or(payload);
        body.split(|&b| b == 0).filter(move |_| !body.is_empty())
    };
    match kind {
        XS_READ => Ok(Reply::Value(text(payload))),
        XS_GET_DOMAIN_PATH => Ok(Reply::Value(text(strings().next().unwrap_or_default()))),
        XS_DIRECTORY => Ok(Reply::Children(strings().map(text).collect())),
        XS_GET_PERMS => {
            let perms = strings()
                .map(|s| Perm::parse(s).ok_or_else(|| format!("permission {:?}", text(s))))
                .collect::<Result<Vec<_>, _>>()?;
            if perms.is_empty() {
                return Err("no permissions".to_string());
            }
            Ok(Reply::Perms(perms))
        }
        XS_TRANSACTION_START => match std::str::from_utf8(strings().next().unwrap_or_default())
            .ok()
            .and_then(|s| s.parse::<TxId>().ok())
        {
            Some(id) if id != 0 => Ok(Reply::Transaction(id)),
            _ => Err(format!("transaction id {:?}", text(payload))),
        },
        _ => Ok(Reply::Done),
    }
}

/// One entry of a node's permissions, as xenstore writes them (`n5`,
/// `r0`, `w3`, `b2`); the first entry is the owner's, and its rights are
/// everyone else's default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Perm {
    /// The domain.
    pub domid: u32,
    /// May read.
    pub read: bool,
    /// May write.
    pub write: bool,
}

impl Perm {
    fn parse(s: &[u8]) -> Option<Perm> {
        let (&letter, digits) = s.split_first()?;
        let (read, write) = match letter {
            b'n' => (false, false),
            b'r' => (true, false),
            b'w' => (false, true),
            b'b' => (true, true),
            _ => return None,
        };
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let domid = std::str::from_utf8(digits).ok()?.parse().ok()?;
        Some(Perm { domid, read, write })
    }
}

impl fmt::Display for Perm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let letter = match (self.read, self.write) {
            (false, false) => 'n',
            (true, false) => 'r',
            (false, true) => 'w',
            (true, true) => 'b',
        };
        write!(f, "{letter}{}", self.domid)
    }
}

/// An error xenstored answered (or that the client answered for it), as
/// the system's `errno`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Errno(pub i32);

/// The error names xenstored sends (`xsd_errors` in `xs_wire.h`).
const ERRORS: [(&str, i32); 16] = [
    ("EINVAL", libc::EINVAL),
    ("EACCES", libc::EACCES),
    ("EEXIST", libc::EEXIST),
    ("EISDIR", libc::EISDIR),
    ("ENOENT", libc::ENOENT),
    ("ENOMEM", libc::ENOMEM),
    ("ENOSPC", libc::ENOSPC),
    ("EIO", libc::EIO),
    ("ENOTEMPTY", libc::ENOTEMPTY),
    ("ENOSYS", libc::ENOSYS),
    ("EROFS", libc::EROFS),
    ("EBUSY", libc::EBUSY),
    ("EAGAIN", libc::EAGAIN),
    ("EISCONN", libc::EISCONN),
    ("E2BIG", libc::E2BIG),
    ("EPERM", libc::EPERM),
];

impl Errno {
    /// Invalid request (also any error name we do not know).
    pub const EINVAL: Errno = Errno(libc::EINVAL);
    /// Permission denied.
    pub const EACCES: Errno = Errno(libc::EACCES);
    /// No such node or transaction.
    pub const ENOENT: Errno = Errno(libc::ENOENT);
    /// The transaction conflicted: nothing of it was applied.
    pub const EAGAIN: Errno = Errno(libc::EAGAIN);
    /// Over a size limit.
    pub const E2BIG: Errno = Errno(libc::E2BIG);
    /// Over a quota.
    pub const ENOSPC: Errno = Errno(libc::ENOSPC);

    /// The error of an `XS_ERROR` payload (`EACCES\0`). A name xenstored
    /// does not define (oxenstored's `EQUOTA`) is `EINVAL`, as libxenstore
    /// takes it.
    pub fn from_name(payload: &[u8]) -> Errno {
        let name = payload.split(|&b| b == 0).next().unwrap_or_default();
        ERRORS
            .iter()
            .find(|(n, _)| n.as_bytes() == name)
            .map_or(Errno::EINVAL, |&(_, code)| Errno(code))
    }

    /// xenstore's name for it, if it has one.
    pub fn name(self) -> Option<&'static str> {
        ERRORS.iter().find(|(_, c)| *c == self.0).map(|(n, _)| *n)
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "{}", io::Error::from_raw_os_error(self.0)),
        }
    }
}

impl std::error::Error for Errno {}

impl From<Errno> for io::Error {
    fn from(e: Errno) -> io::Error {
        io::Error::from_raw_os_error(e.0)
    }
}

/// A message from xenstore, borrowed from the [`Decoder`]'s buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Message<'a> {
    /// A watch fired: the path that changed and the watch's token.
    Event { path: &'a [u8], token: &'a [u8] },
    /// Anything else: the reply to a request (or garbage, for the caller
    /// to refuse).
    Reply {
        kind: u32,
        req_id: u32,
        payload: &'a [u8],
    },
}

/// The stream cannot be cut into messages any more: the connection must
/// be opened afresh.
#[derive(Debug, PartialEq, Eq)]
pub struct Malformed(pub String);

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed message: {}", self.0)
    }
}

/// Reassembles messages from reads of any size. One buffer for the life
/// of the connection, the size of the largest message: a message never
/// needs more, and nothing is allocated per message.
pub struct Decoder {
    buf: Box<[u8]>,
    /// Where the first unconsumed byte is.
    start: usize,
    /// Where the bytes read so far end.
    end: usize,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder {
            buf: vec![0; HEADER_LEN + PAYLOAD_MAX].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }
}

impl Decoder {
    /// Where the next read goes. Never empty once every complete message
    /// was taken with [`Decoder::message`]: an incomplete one always fits.
    pub fn space(&mut self) -> &mut [u8] {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        &mut self.buf[self.end..]
    }

    /// `n` bytes were read into [`Decoder::space`].
    pub fn filled(&mut self, n: usize) {
        self.end = (self.end + n).min(self.buf.len());
    }

    /// Bytes held of a message not complete yet.
    pub fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// The next complete message, if one arrived.
    pub fn message(&mut self) -> Result<Option<Message<'_>>, Malformed> {
        let have = &self.buf[self.start..self.end];
        let Some(header) = have.get(..HEADER_LEN) else {
            return Ok(None);
        };
        let field = |i: usize| {
            let mut b = [0; 4];
            b.copy_from_slice(&header[4 * i..4 * i + 4]);
            u32::from_ne_bytes(b)
        };
        let (kind, req_id, len) = (field(0), field(1), field(3));
        if len as usize > PAYLOAD_MAX {
            return Err(Malformed(format!(
                "a header announcing {len} bytes of payload (at most {PAYLOAD_MAX})"
            )));
        }
        if have.len() < HEADER_LEN + len as usize {
            return Ok(None);
        }
        let at = self.start + HEADER_LEN;
        self.start = at + len as usize;
        let payload = &self.buf[at..self.start];
        if kind != XS_WATCH_EVENT {
            return Ok(Some(Message::Reply {
                kind,
                req_id,
                payload,
            }));
        }
        // `path\0token\0`: two NUL-terminated strings (anything after
        // them is ignored).
        let terminated =
            payload.last() == Some(&0) && payload.iter().filter(|&&b| b == 0).count() >= 2;
        let mut strings = payload.split(|&b| b == 0);
        match (terminated, strings.next(), strings.next()) {
            (true, Some(path), Some(token)) => Ok(Some(Message::Event { path, token })),
            _ => Err(Malformed("a watch event without path and token".into())),
        }
    }
}

#[cfg(test)]
mod tests;
