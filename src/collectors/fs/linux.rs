//! Linux: the mount table of the agent's mount namespace,
//! `/proc/self/mountinfo`, which also signals every mount and unmount to
//! `poll` (`POLLERR|POLLPRI`), propagated ones included (a systemd
//! service's namespace receives the host's mounts).

use std::fs::File;
use std::io::{self, Read};

use super::Mount;

/// The mount table, and the file that signals its changes.
pub const MOUNTINFO: &str = "/proc/self/mountinfo";

/// Most bytes of the mount table read: a host with tens of thousands of
/// mounts has a few MiB; what is beyond is not reported.
const MAX_TABLE: u64 = 16 << 20;

/// The mount table now.
pub fn mounts() -> io::Result<Vec<Mount>> {
    let file = File::open(MOUNTINFO)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot open {MOUNTINFO}: {e}")))?;
    let mut text = Vec::new();
    file.take(MAX_TABLE)
        .read_to_end(&mut text)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot read {MOUNTINFO}: {e}")))?;
    let mut table = parse_mountinfo(&String::from_utf8_lossy(&text));
    for m in table.iter_mut().filter(|m| m.source == "/dev/root") {
        if let Some(name) = device_name(m.dev) {
            m.source = format!("/dev/{name}");
        }
    }
    Ok(table)
}

/// The kernel's name of block device `dev` (`xvda1`), from sysfs: the
/// root filesystem mounted by the kernel itself is `/dev/root` in the mount
/// table, which tells dom0 nothing.
fn device_name((major, minor): (u64, u64)) -> Option<String> {
    let uevent = std::fs::read_to_string(format!("/sys/dev/block/{major}:{minor}/uevent")).ok()?;
    uevent
        .lines()
        .find_map(|l| l.strip_prefix("DEVNAME="))
        .filter(|n| !n.is_empty() && !n.split('/').any(|c| c == ".."))
        .map(str::to_owned)
}

/// The entries of a `mountinfo` text (proc(5)): `id parent major:minor root
/// mount-point options [optional...] - type source super-options`. Lines
/// that do not parse are skipped.
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Mount> {
    let mut fields = line.split(' ');
    let (_id, _parent) = (fields.next()?, fields.next()?);
    let (major, minor) = fields.next()?.split_once(':')?;
    let dev = (major.parse().ok()?, minor.parse().ok()?);
    let root = unescape(fields.next()?);
    let mount_point = unescape(fields.next()?);
    let _options = fields.next()?;
    // Optional fields (shared:N, master:N...) up to the separator.
    fields.find(|f| *f == "-")?;
    let fstype = unescape(fields.next()?);
    let source = unescape(fields.next()?);
    (!mount_point.is_empty() && !fstype.is_empty()).then_some(Mount {
        dev,
        root,
        mount_point,
        fstype,
        source,
    })
}

/// A field with the kernel's octal escapes (`\040` for a space, `\011`,
/// `\012`, `\134`) decoded; anything else is kept as it is.
fn unescape(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            if let Ok(byte) = u8::try_from(v) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_kernel_example_and_escapes() {
        let text =
            "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n\
                    25 1 0:22 / /mnt/with\\040space rw shared:1 master:2 - tmpfs tmpfs rw\n\
                    garbage line\n\
                    26 1 8:1 / / rw - ext4 /dev/sda1 rw\n";
        let m = parse_mountinfo(text);
        assert_eq!(m.len(), 3);
        assert_eq!(
            m[0],
            Mount {
                dev: (98, 0),
                root: "/mnt1".into(),
                mount_point: "/mnt2".into(),
                fstype: "ext3".into(),
                source: "/dev/root".into(),
            }
        );
        assert_eq!(m[1].mount_point, "/mnt/with space");
        assert_eq!(m[1].dev, (0, 22));
        assert_eq!(m[2].source, "/dev/sda1");
    }

    #[test]
    fn odd_escapes_are_kept() {
        assert_eq!(unescape("a\\134b"), "a\\b");
        assert_eq!(unescape("a\\9zz"), "a\\9zz");
        assert_eq!(unescape("end\\04"), "end\\04");
        assert_eq!(unescape("\\777"), "\\777");
        assert_eq!(unescape("tab\\011"), "tab\t");
    }

    #[test]
    fn lines_without_separator_or_device_are_skipped() {
        assert!(parse_mountinfo("1 2 8:1 / / rw ext4 /dev/x rw").is_empty());
        assert!(parse_mountinfo("1 2 x:1 / / rw - ext4 /dev/x rw").is_empty());
        assert!(parse_mountinfo("1 2 8:1 / / rw -").is_empty());
    }

    #[test]
    fn the_real_table_parses() {
        let m = mounts().expect("mountinfo");
        assert!(m.iter().any(|m| m.mount_point == "/"), "{m:?}");
    }
}
