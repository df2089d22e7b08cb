//! FreeBSD: sysctl, no child process and no file.
//!
//! - total: `hw.physmem`, the physical memory the kernel can use (bytes);
//! - available: (`vm.stats.vm.v_free_count` + `v_inactive_count` +
//!   `v_cache_count` where it still exists) × the page size.
//!
//! Free pages are available at once, inactive pages are clean or
//! reclaimable without paging out what is in use, and the cache queue (gone
//! since FreeBSD 12, where the sysctl reads 0 or is absent) was reusable
//! immediately: together they are what Linux calls `MemAvailable` and what
//! tools like psutil report as available. Laundry pages (dirty, must be
//! written to swap first) and wired or active pages are not counted.

use std::ffi::CStr;
use std::io;

use crate::state::MemoryInfo;

/// Reads the memory sysctls.
pub struct Reader;

impl Reader {
    pub fn new() -> Self {
        Reader
    }

    /// One sample.
    pub fn read(&mut self) -> io::Result<MemoryInfo> {
        let total = sysctl_uint(c"hw.physmem")?;
        let page_size = sysctl_uint(c"hw.pagesize")?;
        let free = sysctl_uint(c"vm.stats.vm.v_free_count")?;
        let inactive = sysctl_uint(c"vm.stats.vm.v_inactive_count")?;
        let cache = match sysctl_uint(c"vm.stats.vm.v_cache_count") {
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
            other => other?,
        };
        let pages = free.saturating_add(inactive).saturating_add(cache);
        Ok(MemoryInfo {
            total_kib: total / 1024,
            available_kib: pages.saturating_mul(page_size) / 1024,
        })
    }
}

/// An unsigned integer sysctl of 4 bytes (`u_int`, `int`) or 8 (`u_long`
/// on 64-bit), read by name. A missing name is `NotFound` (ENOENT).
fn sysctl_uint(name: &CStr) -> io::Result<u64> {
    let mut buf = [0u8; 8];
    match *crate::sys::sysctl(name, &mut buf)? {
        [a, b, c, d] => Ok(u64::from(u32::from_ne_bytes([a, b, c, d]))),
        [a, b, c, d, e, f, g, h] => Ok(u64::from_ne_bytes([a, b, c, d, e, f, g, h])),
        ref other => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("sysctl {name:?}: unexpected size {}", other.len()),
        )),
    }
}
