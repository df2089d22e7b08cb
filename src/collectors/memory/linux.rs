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
mod tests {
    use super::*;

    /// From a 6.1 kernel, abridged.
    const MEMINFO_6_1: &str = "\
MemTotal:        2014736 kB
MemFree:          190592 kB
MemAvailable:    1541832 kB
Buffers:           94628 kB
Cached:          1309040 kB
SwapCached:            0 kB
Active:           593912 kB
HugePages_Total:       0
Hugepagesize:       2048 kB
DirectMap1G:           0 kB
";

    /// A 3.10 kernel before MemAvailable (RHEL 7.0 did have it backported;
    /// 3.2 did not).
    const MEMINFO_3_2: &str = "\
MemTotal:        1025024 kB
MemFree:          612340 kB
Buffers:           24012 kB
Cached:           301220 kB
";

    fn mem(total_kib: u64, available_kib: u64) -> MemoryInfo {
        MemoryInfo {
            total_kib,
            available_kib,
        }
    }

    fn error(text: &str) -> String {
        let e = parse_meminfo(text).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        e.to_string()
    }

    #[test]
    fn normal() {
        assert_eq!(parse_meminfo(MEMINFO_6_1).unwrap(), mem(2014736, 1541832));
    }

    #[test]
    fn without_mem_available_uses_mem_free() {
        assert_eq!(parse_meminfo(MEMINFO_3_2).unwrap(), mem(1025024, 612340));
    }

    #[test]
    fn mem_available_wins_wherever_it_is() {
        let text = "MemAvailable: 5 kB\nMemTotal: 10 kB\nMemFree: 1 kB\n";
        assert_eq!(parse_meminfo(text).unwrap(), mem(10, 5));
    }

    #[test]
    fn missing_fields() {
        assert_eq!(error("MemFree: 1 kB\nMemAvailable: 2 kB\n"), "no MemTotal");
        assert_eq!(
            error("MemTotal: 10 kB\n"),
            "neither MemAvailable nor MemFree"
        );
        assert_eq!(error(""), "no MemTotal");
        // Names are case-sensitive and exact, as the kernel writes them.
        assert_eq!(
            error("memtotal: 1 kB\nMemTotal2: 1 kB\n MemTotal: 1 kB\n"),
            "no MemTotal"
        );
    }

    #[test]
    fn garbage() {
        assert_eq!(
            error("MemTotal: lots kB\nMemFree: 1 kB\n"),
            r#"MemTotal: not a number of kB: "lots kB""#
        );
        assert!(error("MemTotal: 10 MB\nMemFree: 1 kB\n").contains("not a number of kB"));
        assert!(error("MemTotal: 10 kB extra\nMemFree: 1 kB\n").contains("not a number"));
        assert!(error("MemTotal: -10 kB\nMemFree: 1 kB\n").contains("not a number"));
        assert!(error("MemTotal: 10 kB\nMemAvailable:\n").contains("MemAvailable"));
        let long = format!("MemTotal: {}\nMemFree: 1 kB\n", "x".repeat(10_000));
        assert!(
            error(&long).len() < 100,
            "the message quotes a bounded excerpt"
        );
        // Binary noise around valid lines is ignored.
        let text = "\u{fffd}\0\x01garbage\nMemTotal: 10 kB\n::::\nMemFree: 1 kB\n";
        assert_eq!(parse_meminfo(text).unwrap(), mem(10, 1));
    }

    #[test]
    fn huge_values() {
        let max = u64::MAX;
        let text = format!("MemTotal: {max} kB\nMemAvailable: {max} kB\n");
        assert_eq!(parse_meminfo(&text).unwrap(), mem(max, max));
        // One more does not fit: an error, not a wrap or a panic.
        let text = "MemTotal: 18446744073709551616 kB\nMemFree: 1 kB\n";
        assert!(error(text).contains("not a number"));
        let text = format!("MemTotal: {} kB\nMemFree: 1 kB\n", "9".repeat(5000));
        assert!(error(&text).contains("not a number"));
    }

    #[test]
    fn no_unit_is_accepted() {
        assert_eq!(
            parse_meminfo("MemTotal: 10\nMemFree: 1\n").unwrap(),
            mem(10, 1)
        );
    }

    #[test]
    fn reads_a_file_kept_open_and_reuses_the_buffer() {
        let dir = std::env::temp_dir().join(format!("xga-meminfo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("meminfo");
        std::fs::write(&path, MEMINFO_6_1).unwrap();
        let mut r = Reader::at(&path);
        assert_eq!(r.read().unwrap(), mem(2014736, 1541832));
        // Rewritten in place (as procfs renders it anew): read again
        // through the same descriptor.
        std::fs::write(&path, MEMINFO_3_2).unwrap();
        assert_eq!(r.read().unwrap(), mem(1025024, 612340));
        assert!(r.file.is_some());
        // A huge file is read up to the cap only.
        let mut big = MEMINFO_6_1.as_bytes().to_vec();
        big.resize(32 << 20, b'\n');
        std::fs::write(&path, &big).unwrap();
        assert_eq!(r.read().unwrap(), mem(2014736, 1541832));
        assert_eq!(r.buf.len(), MAX_READ);
        // A file of exactly one chunk, then shorter again.
        let mut chunk = MEMINFO_3_2.as_bytes().to_vec();
        chunk.resize(CHUNK, b'\n');
        std::fs::write(&path, &chunk).unwrap();
        assert_eq!(r.read().unwrap(), mem(1025024, 612340));
        assert_eq!(r.buf.len(), CHUNK);
        std::fs::write(&path, MEMINFO_6_1).unwrap();
        assert_eq!(r.read().unwrap(), mem(2014736, 1541832));
        assert_eq!(r.buf.len(), MEMINFO_6_1.len());
        // No such file: an error naming it.
        let mut missing = Reader::at(&dir.join("missing"));
        let e = missing.read().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(e.to_string().contains("missing"), "{e}");
        assert!(missing.file.is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn reads_this_system() {
        let m = Reader::new().read().unwrap();
        assert!(m.total_kib > 0 && m.available_kib <= m.total_kib, "{m:?}");
    }
}
