//! Systems other than Linux: FreeBSD runs as an HVM or PVH guest, and no
//! sysctl tells one from the other (`kern.vm_guest` says `xen` for both),
//! so no mode is reported rather than a guess.

use std::path::Path;

use crate::state::GuestMode;

/// Nothing known.
pub fn detect(_sysfs: &Path, _proc: &Path) -> Option<GuestMode> {
    None
}
