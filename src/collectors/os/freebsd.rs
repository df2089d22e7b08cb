//! FreeBSD: the version is the kernel's release from `uname(2)`
//! (`14.1-RELEASE-p3`), read without running `freebsd-version` or any
//! other program.
//!
//! The kernel's patch level can lag the userland's (a userland-only
//! security fix does not bump it); that only shows in the name, as the
//! major and minor versions are the same for both.

use std::path::Path;

use super::os_info;
use crate::collectors::kernel;
use crate::state::OsInfo;

/// Identify the running FreeBSD. `_root` is there for the same signature
/// as on Linux: FreeBSD's version lives in the kernel, not in a file.
pub fn detect(_root: &Path) -> OsInfo {
    match kernel::read() {
        Ok(k) => from_release(&k.release),
        Err(e) => {
            log::warn!("cannot read the FreeBSD release (uname): {e}");
            from_release("")
        }
    }
}

/// `14.1-RELEASE-p3` → version `14.1`, major `14`, minor `1`, name
/// `FreeBSD 14.1-RELEASE-p3`. The branch (`RELEASE`, `STABLE`, `CURRENT`)
/// and patch level stay in the name.
fn from_release(release: &str) -> OsInfo {
    let release = release.trim();
    let version = release.split('-').next().unwrap_or_default();
    let name = format!("FreeBSD {release}");
    os_info("freebsd", version, name.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(release: &str) -> [String; 5] {
        let os = from_release(release);
        [os.distro, os.version, os.major, os.minor, os.name]
    }

    #[test]
    fn releases() {
        assert_eq!(
            fields("14.1-RELEASE-p3"),
            ["freebsd", "14.1", "14", "1", "FreeBSD 14.1-RELEASE-p3"]
        );
        assert_eq!(
            fields("13.2-RELEASE"),
            ["freebsd", "13.2", "13", "2", "FreeBSD 13.2-RELEASE"]
        );
        assert_eq!(
            fields("15.0-CURRENT"),
            ["freebsd", "15.0", "15", "0", "FreeBSD 15.0-CURRENT"]
        );
        assert_eq!(fields("14"), ["freebsd", "14", "14", "0", "FreeBSD 14"]);
        assert_eq!(fields(""), ["freebsd", "", "", "", "FreeBSD"]);
        assert_eq!(fields("-p3"), ["freebsd", "", "", "", "FreeBSD -p3"]);
    }

    #[test]
    fn detect_names_freebsd_whatever_the_kernel() {
        // On Linux this reads a Linux release: only the shape is checked.
        let os = detect(Path::new("/"));
        assert_eq!(os.distro, "freebsd");
        assert!(os.name.starts_with("FreeBSD "));
    }
}
