//! A minimal D-Bus client: method calls with basic-typed arguments on the
//! system bus, to tell systemd-networkd and NetworkManager to take the
//! files the agent wrote.
//!
//! Written from the D-Bus specification (wire format, SASL EXTERNAL)
//! rather than with zbus: measured, zbus adds 839 KB and 24 crates to a
//! minimal tokio program (+69 % on the agent's binary; bench/ANALYSIS.md),
//! for the four calls the agent makes. Every exchange is bounded by
//! [`TIMEOUT`]: a wedged bus never holds up the agent's one thread.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::net::UnixStream;

use crate::error::Error;

/// How long a connection or a call may take.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// Where the system bus listens unless `DBUS_SYSTEM_BUS_ADDRESS` says.
const SYSTEM_BUS: &str = "/run/dbus/system_bus_socket";

/// Largest message accepted (the specification allows 128 MiB; the
/// replies the agent reads are a few hundred bytes).
const MAX_MESSAGE: usize = 1 << 20;

const METHOD_CALL: u8 = 1;
const METHOD_RETURN: u8 = 2;
const ERROR: u8 = 3;

/// A method call's argument: the basic types the agent sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arg<'a> {
    /// `s`
    Str(&'a str),
    /// `o`
    Path(&'a str),
    /// `i`
    I32(i32),
    /// `u`
    U32(u32),
    /// `b`
    Bool(bool),
}

/// A reply's value; replies' values of other types are not read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// `s`
    Str(String),
    /// `o`
    Path(String),
    /// `i`
    I32(i32),
    /// `u`
    U32(u32),
    /// `b`
    Bool(bool),
}

/// An authenticated connection to a bus.
#[derive(Debug)]
pub struct Bus {
    stream: UnixStream,
    /// Where, for messages.
    place: PathBuf,
    serial: u32,
    timeout: Duration,
}

impl Bus {
    /// The system bus: `DBUS_SYSTEM_BUS_ADDRESS` when it is a
    /// `unix:path=` address, else `/run/dbus/system_bus_socket`.
    pub async fn system() -> Result<Bus, Error> {
        let path = std::env::var("DBUS_SYSTEM_BUS_ADDRESS")
            .ok()
            .and_then(|a| {
                a.split(';')
                    .find_map(|a| a.strip_prefix("unix:path=").map(|p| p.to_string()))
            })
            .map(|p| p.split(',').next().unwrap_or_default().to_string())
            .unwrap_or_else(|| SYSTEM_BUS.to_string());
        Bus::connect(Path::new(&path)).await
    }

    /// The bus listening on the unix socket `path`.
    pub async fn connect(path: &Path) -> Result<Bus, Error> {
        Bus::connect_within(path, TIMEOUT).await
    }

    /// [`Bus::connect`], every exchange bounded by `timeout`.
    pub async fn connect_within(path: &Path, timeout: Duration) -> Result<Bus, Error> {
        let what = || {
            format!(
                "cannot connect to the D-Bus system bus at {}",
                path.display()
            )
        };
        let stream = tokio::time::timeout(timeout, UnixStream::connect(path))
            .await
            .map_err(|_| Error::new(format!("{}: timed out", what())))?
            .map_err(|e| Error::io(what(), e))?;
        let mut bus = Bus {
            stream,
            place: path.to_path_buf(),
            serial: 0,
            timeout,
        };
        tokio::time::timeout(timeout, bus.authenticate())
            .await
            .map_err(|_| Error::new(format!("{}: authentication timed out", what())))??;
        bus.call(
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "Hello",
            &[],
        )
        .await?;
        Ok(bus)
    }

    /// SASL EXTERNAL with our uid, then BEGIN.
    async fn authenticate(&mut self) -> Result<(), Error> {
        // SAFETY: getuid cannot fail.
        let uid = unsafe { libc::getuid() }.to_string();
        let hex: String = uid.bytes().map(|b| format!("{b:02x}")).collect();
        let fail = |e: std::io::Error| {
            Error::io(
                format!("D-Bus authentication at {}", self.place.display()),
                e,
            )
        };
        let hello = format!("\0AUTH EXTERNAL {hex}\r\n");
        write_all(&self.stream, hello.as_bytes())
            .await
            .map_err(fail)?;
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while !line.ends_with(b"\r\n") {
            if line.len() > 512 {
                return Err(Error::new(
                    "D-Bus authentication: the bus's answer is too long",
                ));
            }
            let n = read_some(&self.stream, &mut byte).await.map_err(fail)?;
            if n == 0 {
                return Err(Error::new(
                    "D-Bus authentication: the bus closed the connection",
                ));
            }
            line.push(byte[0]);
        }
        if !line.starts_with(b"OK ") {
            return Err(Error::new(format!(
                "D-Bus authentication refused: {}",
                String::from_utf8_lossy(&line).trim_end()
            )));
        }
        write_all(&self.stream, b"BEGIN\r\n").await.map_err(fail)
    }

    /// Call `member` of `interface` on the object `path` of
    /// `destination`; the reply's values (of the basic types), or an
    /// error with the bus's error name and message.
    pub async fn call(
        &mut self,
        destination: &str,
        path: &str,
        interface: &str,
        member: &str,
        args: &[Arg<'_>],
    ) -> Result<Vec<Value>, Error> {
        let what = format!("D-Bus call {interface}.{member} of {destination}");
        self.serial = self.serial.wrapping_add(1).max(1);
        let message = encode_call(self.serial, destination, path, interface, member, args)
            .map_err(|e| Error::new(format!("{what}: {e}")))?;
        let serial = self.serial;
        let timeout = self.timeout;
        let exchange = async {
            write_all(&self.stream, &message)
                .await
                .map_err(|e| Error::io(what.clone(), e))?;
            loop {
                let reply = self
                    .read_message()
                    .await
                    .map_err(|e| Error::new(format!("{what}: {e}")))?;
                let parsed =
                    parse_message(&reply).map_err(|e| Error::new(format!("{what}: {e}")))?;
                if parsed.reply_serial != Some(serial) {
                    continue; // a signal, or NameAcquired after Hello
                }
                return match parsed.kind {
                    METHOD_RETURN => Ok(parsed.values),
                    ERROR => {
                        let text = match parsed.values.first() {
                            Some(Value::Str(s)) => format!(": {s}"),
                            _ => String::new(),
                        };
                        Err(Error::new(format!(
                            "{what}: {}{text}",
                            parsed.error_name.unwrap_or_default()
                        )))
                    }
                    _ => continue,
                };
            }
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(r) => r,
            Err(_) => Err(Error::new(format!("{what}: no answer within {timeout:?}"))),
        }
    }

    /// One whole message.
    async fn read_message(&mut self) -> Result<Vec<u8>, String> {
        let mut head = [0u8; 16];
        read_exact(&self.stream, &mut head)
            .await
            .map_err(|e| format!("reading a message: {e}"))?;
        let total = message_len(&head)?;
        let mut message = head.to_vec();
        message.resize(total, 0);
        read_exact(&self.stream, &mut message[16..])
            .await
            .map_err(|e| format!("reading a message: {e}"))?;
        Ok(message)
    }
}

/// Write all of `buf` (tokio's `io-util` helpers, for these three loops,
/// are not worth their code).
async fn write_all(stream: &UnixStream, mut buf: &[u8]) -> std::io::Result<()> {
    while !buf.is_empty() {
        stream.writable().await?;
        match stream.try_write(buf) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Read what is there (at least a byte; 0 at the end).
async fn read_some(stream: &UnixStream, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        stream.readable().await?;
        match stream.try_read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
}

/// Fill `buf`, or fail at the end of the stream.
async fn read_exact(stream: &UnixStream, mut buf: &mut [u8]) -> std::io::Result<()> {
    while !buf.is_empty() {
        match read_some(stream, buf).await? {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            n => buf = &mut buf[n..],
        }
    }
    Ok(())
}

/// A message's whole length from its first 16 bytes.
fn message_len(head: &[u8; 16]) -> Result<usize, String> {
    let big = match head[0] {
        b'l' => false,
        b'B' => true,
        other => return Err(format!("not a D-Bus message (endianness byte {other:#x})")),
    };
    let u32_at = |at: usize| {
        let b = [head[at], head[at + 1], head[at + 2], head[at + 3]];
        if big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    };
    let body = u32_at(4) as usize;
    let fields = u32_at(12) as usize;
    let total = align(16 + fields, 8)
        .checked_add(body)
        .filter(|&t| t <= MAX_MESSAGE)
        .ok_or_else(|| format!("a message of more than {MAX_MESSAGE} bytes"))?;
    Ok(total)
}

fn align(n: usize, to: usize) -> usize {
    n.div_ceil(to) * to
}

/// Little-endian marshalling into a message buffer.
struct Writer(Vec<u8>);

impl Writer {
    fn pad(&mut self, to: usize) {
        while self.0.len() % to != 0 {
            self.0.push(0);
        }
    }
    fn u32(&mut self, v: u32) {
        self.pad(4);
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn string(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.0.extend_from_slice(s.as_bytes());
        self.0.push(0);
    }
    fn signature(&mut self, s: &str) {
        self.0.push(s.len() as u8);
        self.0.extend_from_slice(s.as_bytes());
        self.0.push(0);
    }
    /// A header field: `(y v)` with a string-like value of type `kind`.
    fn field(&mut self, code: u8, kind: char, value: &str) {
        self.pad(8);
        self.0.push(code);
        self.signature(&kind.to_string());
        match kind {
            'g' => self.signature(value),
            _ => self.string(value),
        }
    }
    fn arg(&mut self, arg: &Arg<'_>) {
        match *arg {
            Arg::Str(s) | Arg::Path(s) => self.string(s),
            Arg::I32(v) => self.u32(v as u32),
            Arg::U32(v) => self.u32(v),
            Arg::Bool(b) => self.u32(u32::from(b)),
        }
    }
}

/// A METHOD_CALL message, or why its arguments cannot be sent.
pub(crate) fn encode_call(
    serial: u32,
    destination: &str,
    path: &str,
    interface: &str,
    member: &str,
    args: &[Arg<'_>],
) -> Result<Vec<u8>, String> {
    check_path(path)?;
    for s in [destination, interface, member] {
        check_string(s)?;
    }
    let mut signature = String::new();
    let mut body = Writer(Vec::new());
    for arg in args {
        match arg {
            Arg::Str(s) => {
                check_string(s)?;
                signature.push('s');
            }
            Arg::Path(p) => {
                check_path(p)?;
                signature.push('o');
            }
            Arg::I32(_) => signature.push('i'),
            Arg::U32(_) => signature.push('u'),
            Arg::Bool(_) => signature.push('b'),
        }
        body.arg(arg);
    }
    let mut fields = Writer(Vec::new());
    // Offsets count from the message's start: the fields begin at 16,
    // 8-aligned, so aligning within `fields` is aligning in the message.
    fields.field(1, 'o', path);
    fields.field(2, 's', interface);
    fields.field(3, 's', member);
    fields.field(6, 's', destination);
    if !signature.is_empty() {
        fields.field(8, 'g', &signature);
    }
    let mut m = Writer(Vec::with_capacity(16 + fields.0.len() + 8 + body.0.len()));
    m.0.extend_from_slice(&[b'l', METHOD_CALL, 0, 1]);
    m.0.extend_from_slice(&(body.0.len() as u32).to_le_bytes());
    m.0.extend_from_slice(&serial.to_le_bytes());
    m.0.extend_from_slice(&(fields.0.len() as u32).to_le_bytes());
    m.0.extend_from_slice(&fields.0);
    m.pad(8);
    m.0.extend_from_slice(&body.0);
    Ok(m.0)
}

/// A string the bus takes: no NUL, at most 255 bytes for names.
fn check_string(s: &str) -> Result<(), String> {
    if s.contains('\0') {
        return Err(format!("{s:?} has a NUL byte"));
    }
    if s.len() > 4096 {
        return Err(format!("a string of {} bytes", s.len()));
    }
    Ok(())
}

/// An object path: `/`, or `/`-separated non-empty `[A-Za-z0-9_]` parts.
fn check_path(p: &str) -> Result<(), String> {
    let ok = p == "/"
        || (p.starts_with('/')
            && !p.ends_with('/')
            && p[1..].split('/').all(|e| {
                !e.is_empty() && e.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            }));
    if ok {
        Ok(())
    } else {
        Err(format!("{p:?} is not an object path"))
    }
}

/// What the agent reads of a message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Parsed {
    pub kind: u8,
    pub reply_serial: Option<u32>,
    pub error_name: Option<String>,
    /// The body's leading values of basic types.
    pub values: Vec<Value>,
}

/// Bounds-checked reading of either endianness.
struct Reader<'a> {
    b: &'a [u8],
    at: usize,
    big: bool,
}

impl Reader<'_> {
    fn align(&mut self, to: usize) -> Result<(), String> {
        let at = align(self.at, to);
        if at > self.b.len() {
            return Err("truncated message".into());
        }
        self.at = at;
        Ok(())
    }
    fn bytes(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.b.len());
        let end = end.ok_or("truncated message")?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.bytes(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, String> {
        self.align(4)?;
        let b = self.bytes(4)?;
        let b = [b[0], b[1], b[2], b[3]];
        Ok(if self.big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }
    fn string(&mut self) -> Result<String, String> {
        let n = self.u32()? as usize;
        let s = String::from_utf8_lossy(self.bytes(n)?).into_owned();
        self.bytes(1)?; // NUL
        Ok(s)
    }
    fn signature(&mut self) -> Result<String, String> {
        let n = self.u8()? as usize;
        let s = String::from_utf8_lossy(self.bytes(n)?).into_owned();
        self.bytes(1)?;
        Ok(s)
    }
    /// One value of the basic type `t`, or `None` for another type.
    fn value(&mut self, t: u8) -> Result<Option<Value>, String> {
        Ok(Some(match t {
            b's' => Value::Str(self.string()?),
            b'o' => Value::Path(self.string()?),
            b'g' => Value::Str(self.signature()?),
            b'i' => Value::I32(self.u32()? as i32),
            b'u' => Value::U32(self.u32()?),
            b'b' => Value::Bool(self.u32()? != 0),
            b'y' => Value::U32(u32::from(self.u8()?)),
            _ => return Ok(None),
        }))
    }
}

/// Read a whole message (as [`Bus`] reads them).
pub(crate) fn parse_message(m: &[u8]) -> Result<Parsed, String> {
    let head: &[u8; 16] = m
        .get(..16)
        .and_then(|h| h.try_into().ok())
        .ok_or("truncated message")?;
    let total = message_len(head)?;
    if m.len() < total {
        return Err("truncated message".into());
    }
    let mut r = Reader {
        b: &m[..total],
        at: 12,
        big: m[0] == b'B',
    };
    let kind = m[1];
    let fields_len = r.u32()? as usize;
    let fields_end = 16 + fields_len;
    let (mut reply_serial, mut error_name, mut signature) = (None, None, String::new());
    while r.at < fields_end {
        r.align(8)?;
        if r.at >= fields_end {
            break;
        }
        let code = r.u8()?;
        let sig = r.signature()?;
        let value = match sig.as_bytes() {
            [t] => r.value(*t)?,
            _ => None,
        };
        let Some(value) = value else {
            return Err(format!("header field {code} of type {sig:?}"));
        };
        match (code, value) {
            (4, Value::Str(s)) => error_name = Some(s),
            (5, Value::U32(v)) => reply_serial = Some(v),
            (8, Value::Str(s)) => signature = s,
            _ => {}
        }
    }
    r.at = fields_end;
    r.align(8)?;
    let mut values = Vec::new();
    for t in signature.bytes() {
        match r.value(t)? {
            Some(v) => values.push(v),
            None => break, // a container: not needed by the agent
        }
    }
    Ok(Parsed {
        kind,
        reply_serial,
        error_name,
        values,
    })
}

#[cfg(test)]
mod tests;
