//! The xenstore wire protocol (Xen's `xs_wire.h`): a 16-byte header of four
//! native-endian `u32` (type, request id, transaction id, payload length)
//! followed by at most 4096 bytes of payload, usually NUL-terminated strings.

use std::fmt;
use std::io::{self, Read, Write};

/// Size of `struct xsd_sockmsg`.
pub const HEADER_LEN: usize = 16;
/// `XENSTORE_PAYLOAD_MAX`: a client sending more is disconnected.
pub const PAYLOAD_MAX: usize = 4096;
/// `XENSTORE_ABS_PATH_MAX`.
pub const ABS_PATH_MAX: usize = 3072;
/// `XENSTORE_REL_PATH_MAX`: the longest path below a domain's home.
pub const REL_PATH_MAX: usize = 2048;

/// Message types (`enum xsd_sockmsg_type`), named as in Xen.
#[allow(missing_docs)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MsgType {
    Control = 0,
    Directory = 1,
    Read = 2,
    GetPerms = 3,
    Watch = 4,
    Unwatch = 5,
    TransactionStart = 6,
    TransactionEnd = 7,
    Introduce = 8,
    Release = 9,
    GetDomainPath = 10,
    Write = 11,
    Mkdir = 12,
    Rm = 13,
    SetPerms = 14,
    WatchEvent = 15,
    Error = 16,
    IsDomainIntroduced = 17,
    Resume = 18,
    SetTarget = 19,
    ResetWatches = 21,
    DirectoryPart = 22,
}

impl MsgType {
    /// Every known type, for iteration (e.g. printing counters).
    pub const ALL: [MsgType; 22] = [
        MsgType::Control,
        MsgType::Directory,
        MsgType::Read,
        MsgType::GetPerms,
        MsgType::Watch,
        MsgType::Unwatch,
        MsgType::TransactionStart,
        MsgType::TransactionEnd,
        MsgType::Introduce,
        MsgType::Release,
        MsgType::GetDomainPath,
        MsgType::Write,
        MsgType::Mkdir,
        MsgType::Rm,
        MsgType::SetPerms,
        MsgType::WatchEvent,
        MsgType::Error,
        MsgType::IsDomainIntroduced,
        MsgType::Resume,
        MsgType::SetTarget,
        MsgType::ResetWatches,
        MsgType::DirectoryPart,
    ];

    /// The type for a header's `type` field, if it is a known one.
    pub fn from_u32(v: u32) -> Option<MsgType> {
        MsgType::ALL.iter().copied().find(|t| *t as u32 == v)
    }

    /// Xen's name, e.g. `XS_WRITE`.
    pub fn name(self) -> &'static str {
        match self {
            MsgType::Control => "XS_CONTROL",
            MsgType::Directory => "XS_DIRECTORY",
            MsgType::Read => "XS_READ",
            MsgType::GetPerms => "XS_GET_PERMS",
            MsgType::Watch => "XS_WATCH",
            MsgType::Unwatch => "XS_UNWATCH",
            MsgType::TransactionStart => "XS_TRANSACTION_START",
            MsgType::TransactionEnd => "XS_TRANSACTION_END",
            MsgType::Introduce => "XS_INTRODUCE",
            MsgType::Release => "XS_RELEASE",
            MsgType::GetDomainPath => "XS_GET_DOMAIN_PATH",
            MsgType::Write => "XS_WRITE",
            MsgType::Mkdir => "XS_MKDIR",
            MsgType::Rm => "XS_RM",
            MsgType::SetPerms => "XS_SET_PERMS",
            MsgType::WatchEvent => "XS_WATCH_EVENT",
            MsgType::Error => "XS_ERROR",
            MsgType::IsDomainIntroduced => "XS_IS_DOMAIN_INTRODUCED",
            MsgType::Resume => "XS_RESUME",
            MsgType::SetTarget => "XS_SET_TARGET",
            MsgType::ResetWatches => "XS_RESET_WATCHES",
            MsgType::DirectoryPart => "XS_DIRECTORY_PART",
        }
    }
}

impl fmt::Display for MsgType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Error names a xenstored sends in an `XS_ERROR` reply (`xsd_errors` in
/// `xs_wire.h`), plus `EQUOTA`, which oxenstored (XenServer, XCP-ng) sends
/// for quota errors and which libxenstore turns into `EINVAL`.
#[allow(missing_docs, clippy::upper_case_acronyms)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Errno {
    EINVAL,
    EACCES,
    EEXIST,
    EISDIR,
    ENOENT,
    ENOMEM,
    ENOSPC,
    EIO,
    ENOTEMPTY,
    ENOSYS,
    EROFS,
    EBUSY,
    EAGAIN,
    EISCONN,
    E2BIG,
    EPERM,
    EQUOTA,
}

impl Errno {
    /// The name as sent on the wire (without the trailing NUL).
    pub fn name(self) -> &'static str {
        match self {
            Errno::EINVAL => "EINVAL",
            Errno::EACCES => "EACCES",
            Errno::EEXIST => "EEXIST",
            Errno::EISDIR => "EISDIR",
            Errno::ENOENT => "ENOENT",
            Errno::ENOMEM => "ENOMEM",
            Errno::ENOSPC => "ENOSPC",
            Errno::EIO => "EIO",
            Errno::ENOTEMPTY => "ENOTEMPTY",
            Errno::ENOSYS => "ENOSYS",
            Errno::EROFS => "EROFS",
            Errno::EBUSY => "EBUSY",
            Errno::EAGAIN => "EAGAIN",
            Errno::EISCONN => "EISCONN",
            Errno::E2BIG => "E2BIG",
            Errno::EPERM => "EPERM",
            Errno::EQUOTA => "EQUOTA",
        }
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A message header, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Raw type: may be unknown, which the server answers with an error.
    pub ty: u32,
    /// Echoed in the reply so that the client can match it.
    pub req_id: u32,
    /// Transaction id, 0 outside transactions.
    pub tx_id: u32,
    /// Payload length.
    pub len: u32,
}

impl Header {
    /// Decodes the 16 header bytes.
    pub fn decode(b: &[u8; HEADER_LEN]) -> Header {
        let word = |i: usize| u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        Header {
            ty: word(0),
            req_id: word(4),
            tx_id: word(8),
            len: word(12),
        }
    }
}

/// Encodes one whole message.
pub fn encode(ty: u32, req_id: u32, tx_id: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    for word in [ty, req_id, tx_id, payload.len() as u32] {
        out.extend_from_slice(&word.to_ne_bytes());
    }
    out.extend_from_slice(payload);
    out
}

/// Reads one message. `Ok(None)` is a clean end of stream between messages;
/// a payload longer than [`PAYLOAD_MAX`] is an `InvalidData` error (the
/// server then drops the client, as C xenstored does).
pub fn read_message(r: &mut impl Read) -> io::Result<Option<(Header, Vec<u8>)>> {
    let mut hdr = [0u8; HEADER_LEN];
    let mut got = 0;
    while got < HEADER_LEN {
        match r.read(&mut hdr[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let header = Header::decode(&hdr);
    if header.len as usize > PAYLOAD_MAX {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("payload of {} bytes exceeds {PAYLOAD_MAX}", header.len),
        ));
    }
    let mut payload = vec![0u8; header.len as usize];
    r.read_exact(&mut payload)?;
    Ok(Some((header, payload)))
}

/// Writes one message.
pub fn write_message(w: &mut impl Write, msg: &[u8]) -> io::Result<()> {
    w.write_all(msg)?;
    w.flush()
}

/// Splits a payload into its NUL-terminated strings; bytes after the last
/// NUL are returned as a final, unterminated element.
pub fn split_args(payload: &[u8]) -> Vec<&[u8]> {
    if payload.is_empty() {
        return Vec::new();
    }
    let mut out: Vec<&[u8]> = payload.split(|b| *b == 0).collect();
    if payload.last() == Some(&0) {
        out.pop();
    }
    out
}

/// Joins strings into a payload, each NUL-terminated.
pub fn join_args<S: AsRef<[u8]>>(args: &[S]) -> Vec<u8> {
    let mut out = Vec::new();
    for a in args {
        out.extend_from_slice(a.as_ref());
        out.push(0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip() {
        let msg = encode(MsgType::Write as u32, 7, 3, b"a\0b");
        let mut r = &msg[..];
        let (h, p) = read_message(&mut r).unwrap().unwrap();
        assert_eq!((h.ty, h.req_id, h.tx_id, h.len), (11, 7, 3, 3));
        assert_eq!(p, b"a\0b");
        assert!(read_message(&mut r).unwrap().is_none());
    }

    #[test]
    fn oversized_payload_is_invalid() {
        let mut msg = encode(MsgType::Write as u32, 1, 0, b"");
        msg[12..16].copy_from_slice(&(PAYLOAD_MAX as u32 + 1).to_ne_bytes());
        let err = read_message(&mut &msg[..]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn args_split_and_join() {
        assert_eq!(split_args(b"a\0bc\0"), vec![&b"a"[..], b"bc"]);
        assert_eq!(split_args(b"a\0value"), vec![&b"a"[..], b"value"]);
        assert_eq!(split_args(b""), Vec::<&[u8]>::new());
        assert_eq!(join_args(&["n0", "r5"]), b"n0\0r5\0");
        assert_eq!(MsgType::from_u32(21), Some(MsgType::ResetWatches));
        assert_eq!(MsgType::from_u32(20), None);
    }
}
