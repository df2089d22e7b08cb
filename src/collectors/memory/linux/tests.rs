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
