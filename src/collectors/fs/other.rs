//! FreeBSD: the mount table from `getmntinfo(3)` (without waiting on
//! network filesystems: `MNT_NOWAIT`). The kernel signals no mount to
//! `poll`: the table is read again at every sample.

use std::ffi::CStr;
use std::io;

use super::Mount;

/// No file signals mounts here: the mount table is read at each sample.
pub const SIGNAL: &str = "the mount table";

/// The mount table now.
pub fn mounts() -> io::Result<Vec<Mount>> {
    let mut list: *mut libc::statfs = std::ptr::null_mut();
    // SAFETY: getmntinfo points `list` at a buffer of its own (valid until
    // the next call, on this thread only) and returns how many entries.
    let n = unsafe { libc::getmntinfo(&mut list, libc::MNT_NOWAIT) };
    if n <= 0 || list.is_null() {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `n` initialised entries at `list`.
    let entries = unsafe { std::slice::from_raw_parts(list, n as usize) };
    let text = |chars: &[libc::c_char]| {
        // SAFETY: the kernel NUL-terminates these fixed-size fields.
        unsafe { CStr::from_ptr(chars.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    };
    Ok(entries
        .iter()
        .map(|e| Mount {
            dev: fsid(&e.f_fsid),
            root: "/".into(),
            mount_point: text(&e.f_mntonname),
            fstype: text(&e.f_fstypename),
            source: text(&e.f_mntfromname),
        })
        .collect())
}

/// The filesystem id as two numbers: `fsid_t` is `int32_t val[2]` in
/// `<sys/mount.h>`, a private field in the libc crate.
fn fsid(id: &libc::fsid_t) -> (u64, u64) {
    const _: () = assert!(std::mem::size_of::<libc::fsid_t>() == 8);
    // SAFETY: same size, and any bit pattern is a valid [i32; 2].
    let [a, b] =
        unsafe { std::ptr::read_unaligned((id as *const libc::fsid_t).cast::<[i32; 2]>()) };
    (a as u32 as u64, b as u32 as u64)
}
