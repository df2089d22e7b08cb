//! Linux: `/proc/sys/kernel/hostname` signals every change of the host
//! name to `poll` (`POLLERR|POLLPRI`, and readable), in every UTS namespace
//! (a change in another one is a spurious wakeup: the name is read again
//! and found the same). Registered with the runtime's reactor, it costs
//! nothing while the name does not change.

use std::fs::File;
use std::io;

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// The file the kernel signals host name changes on.
const HOSTNAME: &str = "/proc/sys/kernel/hostname";

/// Wakes up when the host name may have changed.
pub struct Watch {
    fd: AsyncFd<File>,
}

impl Watch {
    /// Watch the host name from now on.
    pub fn new() -> io::Result<Self> {
        let file = File::open(HOSTNAME)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot open {HOSTNAME}: {e}")))?;
        // The file is readable from the start: the first wakeup may be
        // that, not a change (the name is read again and found the same).
        let fd = crate::sys::register(file, Interest::READABLE)?;
        Ok(Watch { fd })
    }

    /// Wait for the next change (or a spurious wakeup).
    pub async fn changed(&mut self) -> io::Result<()> {
        let mut guard = self.fd.readable_mut().await?;
        guard.clear_ready();
        Ok(())
    }
}
