//! The virtualisation mode (PV, PVH or HVM) and which PV drivers the guest
//! runs, as its kernel tells it (rfc `data/virtualization/...`): dom0
//! knows the domain's type, this tells it what the guest's kernel made of
//! it. Never guessed from `uname` strings. Detected once, at start.

use std::path::{Path, PathBuf};

use futures::stream;

use super::EventStream;
use crate::state::Event;

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub use linux::detect;

#[cfg(not(target_os = "linux"))]
mod other;
#[cfg(not(target_os = "linux"))]
pub use other::detect;

/// One event with the mode, detected when the stream is first polled,
/// from the sysfs tree at `sysfs` (`--sysfs`) and `/proc`; none when the
/// kernel does not tell (not a Xen guest, or too old a kernel: logged).
pub fn stream(sysfs: PathBuf) -> EventStream {
    Box::pin(stream::iter(
        std::iter::once_with(move || {
            let mode = detect(&sysfs, Path::new("/proc"));
            match mode {
                Some(m) => log::info!(
                    "virtualization mode: {}, PV drivers: net {}, block {}",
                    m.mode.name(),
                    u8::from(m.pv_net),
                    u8::from(m.pv_block)
                ),
                None => log::info!(
                    "virtualization mode unknown (not a Xen guest, or the kernel does not say)"
                ),
            }
            mode.map(Event::Mode)
        })
        .flatten(),
    ))
}
