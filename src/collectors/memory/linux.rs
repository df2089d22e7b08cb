//! Linux: `/proc/meminfo`, read synchronously (a procfs read does not
//! block, and `tokio::fs` would start threads). The file stays open and
//! each sample is one `pread` at offset 0 (procfs renders the file afresh
//! for a read at offset 0) into a buffer kept between samples: one syscall
//! per sample instead of four (open, read, read to the end, close).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::state::MemoryInfo;

const MEMINFO: &str = "/proc/meminfo";

/// One read: `/proc/meminfo` is about 1.5 KiB. A read that does not fill
/// it got the whole file: procfs (like a regular file) returns all it has
/// up to the size asked.
const CHUNK: usize = 8 * 1024;

/// Most bytes read, for a file larger than one chunk.
const MAX_READ: usize = 64 * 1024;

/// Reads `/proc/meminfo`, keeping the file open and reusing its buffer.
pub struct Reader {
    path: PathBuf,
    /// Open since the last successful read; reopened after a failure.
    file: Option<File>,
    buf: Vec<u8>,
}

impl Reader {
    pub fn new() -> Self {
        Self::at(Path::new(MEMINFO))
    }

    fn at(path: &Path) -> Self {
        Reader {
            path: path.to_owned(),
            file: None,
            buf: Vec::new(),
        }
    }

    /// One sample from `/proc/meminfo`.
    pub fn read(&mut self) -> io::Result<MemoryInfo> {
        let with_path = |e: io::Error, path: &Path| {
            io::Error::new(e.kind(), format!("{}: {e}", path.display()))
        };
        if let Err(e) = self.read_file() {
            self.file = None;
            return Err(with_path(e, &self.path));
        }
        let text = match std::str::from_utf8(&self.buf) {
            Ok(s) => s.into(),
            Err(_) => String::from_utf8_lossy(&self.buf),
        };
        parse_meminfo(&text).map_err(|e| with_path(e, &self.path))
    }

    /// The whole file (up to [`MAX_READ`]) into `buf`.
    fn read_file(&mut self) -> io::Result<()> {
        let file = match &mut self.file {
            Some(f) => f,
            None => self.file.insert(File::open(&self.path)?),
        };
        self.buf.clear();
        loop {
            let len = self.buf.len();
            self.buf.resize(len + CHUNK, 0);
            match file.read_at(&mut self.buf[len..], len as u64) {
                Ok(n) => {
                    self.buf.truncate(len + n);
                    if n < CHUNK || self.buf.len() >= MAX_READ {
                        self.buf.truncate(MAX_READ);
                        return Ok(());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => self.buf.truncate(len),
                Err(e) => return Err(e),
            }
        }
    }
}

/// Total and available memory from the text of `/proc/meminfo`:
/// `MemTotal`, and `MemAvailable`, or `MemFree` on kernels before 3.14
/// which lack it (as xe-guest-utilities does). Values are in `kB`, which
/// procfs means as KiB. Other lines are ignored; a missing `MemTotal`, a
/// missing `MemAvailable` and `MemFree`, or a value that is not a number of
/// kB (or overflows 64 bits) is an `InvalidData` error.
pub fn parse_meminfo(text: &str) -> io::Result<MemoryInfo> {
    let (mut total, mut available, mut free) = (None, None, None);
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        match key {
            "MemTotal" => total = Some(value),
            "MemAvailable" => available = Some(value),
            "MemFree" => free = Some(value),
            _ => {}
        }
    }
    let total = total.ok_or_else(|| invalid("no MemTotal".into()))?;
    let (key, available) = match (available, free) {
        (Some(v), _) => ("MemAvailable", v),
        (None, Some(v)) => ("MemFree", v),
        (None, None) => return Err(invalid("neither MemAvailable nor MemFree".into())),
    };
    Ok(MemoryInfo {
        total_kib: kib("MemTotal", total)?,
        available_kib: kib(key, available)?,
    })
}

/// `   16303932 kB` → 16303932.
fn kib(key: &str, value: &str) -> io::Result<u64> {
    let mut words = value.split_whitespace();
    let number = words.next().and_then(|n| n.parse().ok());
    match (number, words.next(), words.next()) {
        (Some(n), Some("kB") | None, None) => Ok(n),
        _ => {
            let shown: String = value.trim().chars().take(40).collect();
            Err(invalid(format!("{key}: not a number of kB: {shown:?}")))
        }
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

#[cfg(test)]
mod tests;
