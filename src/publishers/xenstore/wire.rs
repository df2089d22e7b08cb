//! xenstore's wire format (`xen/io/xs_wire.h`), as much of it as a
//! watch-only client needs: encoding `XS_WATCH` requests, and cutting the
//! byte stream that comes back into replies and watch events.
//!
//! Every message is a header of four native-endian `u32` (type, request
//! id, transaction id, payload length) and a payload of at most
//! [`PAYLOAD_MAX`] bytes, NUL-terminated strings in practice. Nothing
//! guarantees that a read returns whole messages (the xenbus device hands
//! out what fits in the caller's buffer), so the [`Decoder`] keeps what
//! arrived until a message is complete.

use std::fmt;

/// Bytes of a message header.
pub const HEADER_LEN: usize = 16;

/// The largest payload xenstored sends or takes (`XENSTORE_PAYLOAD_MAX`).
pub const PAYLOAD_MAX: usize = 4096;

/// Register a watch: payload `path\0token\0`, reply `OK\0`.
pub const XS_WATCH: u32 = 4;

/// A watch fired: payload `path\0token\0`.
pub const XS_WATCH_EVENT: u32 = 15;

/// The reply to a failed request: payload the error's name (`EACCES\0`).
pub const XS_ERROR: u32 = 16;

/// One request: the header, then each string NUL-terminated. The strings
/// are the caller's constants (no NUL inside, far below [`PAYLOAD_MAX`]).
pub fn encode(kind: u32, req_id: u32, strings: &[&str]) -> Vec<u8> {
    let len: usize = strings.iter().map(|s| s.len() + 1).sum();
    debug_assert!(len <= PAYLOAD_MAX && strings.iter().all(|s| !s.contains('\0')));
    let mut out = Vec::with_capacity(HEADER_LEN + len);
    for field in [kind, req_id, 0, len as u32] {
        out.extend_from_slice(&field.to_ne_bytes());
    }
    for s in strings {
        out.extend_from_slice(s.as_bytes());
        out.push(0);
    }
    out
}

/// A message from xenstore, borrowed from the [`Decoder`]'s buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Message<'a> {
    /// A watch fired: the path that changed and the watch's token.
    Event { path: &'a [u8], token: &'a [u8] },
    /// Anything else: the reply to a request (or a message of a type we
    /// never asked for, which the caller ignores).
    Reply {
        kind: u32,
        req_id: u32,
        payload: &'a [u8],
    },
}

/// The stream cannot be cut into messages any more: the connection must
/// be opened afresh.
#[derive(Debug, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed message from xenstore: {}", self.0)
    }
}

impl std::error::Error for Malformed {}

/// Reassembles messages from reads of any size. One buffer for the life
/// of the client, the size of the largest message: a message never needs
/// more, and nothing is allocated per message.
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
    /// Forget everything (a new connection).
    pub fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }

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
        let (kind, req_id, len) = (field(0), field(1), field(3) as usize);
        if len > PAYLOAD_MAX {
            return Err(Malformed("payload longer than 4096 bytes"));
        }
        if have.len() < HEADER_LEN + len {
            return Ok(None);
        }
        let at = self.start + HEADER_LEN;
        self.start = at + len;
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
            _ => Err(Malformed("watch event without path and token")),
        }
    }
}

/// The error name of an `XS_ERROR` payload (`EACCES`), for messages.
pub fn error_name(payload: &[u8]) -> String {
    let name = payload.split(|&b| b == 0).next().unwrap_or_default();
    String::from_utf8_lossy(name).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(kind: u32, req_id: u32, payload: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        for field in [kind, req_id, 0, payload.len() as u32] {
            m.extend_from_slice(&field.to_ne_bytes());
        }
        m.extend_from_slice(payload);
        m
    }

    /// A decoded message, owned: (type, req_id, payload or path, token).
    type Owned = (u32, u32, Vec<u8>, Vec<u8>);

    /// Feed `bytes` in reads of `chunk` bytes; collect what comes out.
    fn decode(bytes: &[u8], chunk: usize) -> Result<Vec<Owned>, Malformed> {
        let mut d = Decoder::default();
        let mut out = Vec::new();
        for piece in bytes.chunks(chunk) {
            let space = d.space();
            assert!(space.len() >= piece.len(), "room for any read");
            space[..piece.len()].copy_from_slice(piece);
            d.filled(piece.len());
            while let Some(m) = d.message()? {
                out.push(match m {
                    Message::Event { path, token } => {
                        (XS_WATCH_EVENT, 0, path.to_vec(), token.to_vec())
                    }
                    Message::Reply {
                        kind,
                        req_id,
                        payload,
                    } => (kind, req_id, payload.to_vec(), Vec::new()),
                });
            }
        }
        Ok(out)
    }

    #[test]
    fn a_watch_request_is_header_and_nul_terminated_strings() {
        let m = encode(XS_WATCH, 2, &["unique-domain-id", "domain"]);
        assert_eq!(m, message(XS_WATCH, 2, b"unique-domain-id\0domain\0"));
    }

    #[test]
    fn messages_survive_reads_of_any_size() {
        let mut stream = message(XS_WATCH, 1, b"OK\0");
        stream.extend(message(XS_WATCH_EVENT, 0, b"unique-domain-id\0domain\0"));
        stream.extend(message(XS_ERROR, 2, b"EACCES\0"));
        stream.extend(message(XS_WATCH_EVENT, 0, b"a/b\0sriov\0"));
        let expected = vec![
            (XS_WATCH, 1, b"OK\0".to_vec(), vec![]),
            (
                XS_WATCH_EVENT,
                0,
                b"unique-domain-id".to_vec(),
                b"domain".to_vec(),
            ),
            (XS_ERROR, 2, b"EACCES\0".to_vec(), vec![]),
            (XS_WATCH_EVENT, 0, b"a/b".to_vec(), b"sriov".to_vec()),
        ];
        for chunk in [1, 2, 3, 7, 16, 17, 100, stream.len()] {
            assert_eq!(
                decode(&stream, chunk).unwrap(),
                expected,
                "reads of {chunk}"
            );
        }
    }

    #[test]
    fn an_incomplete_message_waits_for_the_rest() {
        let full = message(XS_WATCH_EVENT, 0, b"p\0t\0");
        let mut d = Decoder::default();
        d.space()[..full.len() - 1].copy_from_slice(&full[..full.len() - 1]);
        d.filled(full.len() - 1);
        assert_eq!(d.message(), Ok(None));
        d.space()[0] = 0;
        d.filled(1);
        assert_eq!(
            d.message(),
            Ok(Some(Message::Event {
                path: b"p",
                token: b"t"
            }))
        );
        assert_eq!(d.message(), Ok(None));
    }

    #[test]
    fn the_largest_message_fits_and_a_longer_one_is_refused() {
        let big = vec![b'x'; PAYLOAD_MAX];
        let ok = decode(&message(99, 7, &big), 1000).unwrap();
        assert_eq!(ok, vec![(99, 7, big, vec![])]);
        // A length that cannot be (garbage, or a stream out of step).
        let mut bad = message(XS_WATCH, 1, b"OK\0");
        bad[12..16].copy_from_slice(&(PAYLOAD_MAX as u32 + 1).to_ne_bytes());
        assert!(decode(&bad, 3).is_err());
        assert!(decode(&[0xff; 64], 64).is_err());
    }

    #[test]
    fn foreign_message_types_are_handed_over_as_replies() {
        // Types a watch-only client never asked for (a read's reply, a
        // type from the future): framed, not fatal; the caller ignores them.
        let mut stream = message(2, 77, b"value");
        stream.extend(message(0xffff, 0, b""));
        stream.extend(message(XS_WATCH_EVENT, 0, b"p\0t\0"));
        let got = decode(&stream, 5).unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!((got[0].0, got[0].1), (2, 77));
        assert_eq!((got[1].0, got[1].2.len()), (0xffff, 0));
        assert_eq!(got[2].3, b"t");
    }

    #[test]
    fn short_watch_events_are_malformed() {
        for payload in [&b""[..], b"path", b"path\0", b"path\0token"] {
            let got = decode(&message(XS_WATCH_EVENT, 0, payload), 64);
            assert!(got.is_err(), "{payload:?}: {got:?}");
        }
        // An empty token is still a token (never ours: ignored upstream).
        let got = decode(&message(XS_WATCH_EVENT, 0, b"p\0\0"), 64).unwrap();
        assert_eq!(got[0].3, b"");
    }

    #[test]
    fn error_names_are_read_up_to_the_nul() {
        assert_eq!(error_name(b"EACCES\0"), "EACCES");
        assert_eq!(error_name(b"E2BIG"), "E2BIG");
        assert_eq!(error_name(b""), "");
    }
}
