//! Kernel identity, from `uname(2)`: the same on Linux and FreeBSD.

use std::ffi::CStr;

use futures::stream;

use super::EventStream;
use crate::state::{Event, KernelInfo};

/// The running kernel; it cannot change while the agent runs.
pub fn read() -> std::io::Result<KernelInfo> {
    // SAFETY: utsname is plain old data; uname fills it or fails.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut u) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let field = |f: &[libc::c_char]| {
        // SAFETY: uname NUL-terminates every field within its array.
        unsafe { CStr::from_ptr(f.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    };
    Ok(KernelInfo {
        sysname: field(&u.sysname),
        release: field(&u.release),
        version: field(&u.version),
        machine: field(&u.machine),
    })
}

/// One event with the kernel identity (none if uname fails, which it does
/// not on a working system; the failure is logged).
pub fn stream() -> EventStream {
    Box::pin(stream::iter(match read() {
        Ok(k) => Some(Event::Kernel(k)),
        Err(e) => {
            log::error!("cannot identify the kernel (uname): {e}");
            None
        }
    }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_this_kernel() {
        let k = super::read().unwrap();
        assert_eq!(
            k.sysname,
            if cfg!(target_os = "linux") {
                "Linux"
            } else {
                "FreeBSD"
            }
        );
        assert!(!k.release.is_empty() && !k.machine.is_empty());
    }
}
