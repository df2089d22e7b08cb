//! Linux: stop signals from a `signalfd`.
//!
//! tokio's signal handling installs handlers that write to a socket pair,
//! and its stop future is a watch channel per signal: setting that up was
//! a socket pair, four `rt_sigaction` and tens of thousands of instructions
//! at start, and polling the future cost ~700 instructions on every pass
//! of the agent's loop, that is on every netlink event. A `signalfd` is one
//! descriptor the reactor watches, polled for the price of a readiness
//! check.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// See [`super::stop_signals`].
pub fn stop_signals() -> io::Result<impl std::future::Future<Output = ()>> {
    // SAFETY: an empty set, filled with two valid signal numbers.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        set
    };
    // Blocked, the signals wait in the signalfd instead of running their
    // default action (ending the process).
    // SAFETY: a valid set; the old mask is not wanted.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    // SAFETY: a valid set; a new descriptor or -1.
    let raw = unsafe { libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a descriptor we just opened and own.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // `with_interest` is deprecated since tokio 1.54 for descriptors that
    // may close under it; an `OwnedFd` cannot, and this keeps older tokio
    // releases (distributions') usable.
    #[allow(deprecated)]
    let fd = AsyncFd::with_interest(fd, Interest::READABLE)?;
    Ok(async move {
        match next_signal(&fd).await {
            Ok(signo) if signo == libc::SIGTERM as u32 => log::debug!("SIGTERM"),
            Ok(_) => log::debug!("SIGINT"),
            // Only when the runtime shuts down; stopping is right then.
            Err(e) => log::debug!("stop signals: {e}"),
        }
    })
}

/// The number of the next signal read from the signalfd.
async fn next_signal(fd: &AsyncFd<OwnedFd>) -> io::Result<u32> {
    loop {
        let mut guard = fd.readable().await?;
        // SAFETY: plain old data, filled by the kernel.
        let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::signalfd_siginfo>();
        // SAFETY: reading at most `size` bytes into `info`.
        let n = unsafe {
            libc::read(
                fd.get_ref().as_raw_fd(),
                (&mut info as *mut libc::signalfd_siginfo).cast(),
                size,
            )
        };
        if n == size as isize {
            return Ok(info.ssi_signo);
        }
        let e = io::Error::last_os_error();
        match e.kind() {
            io::ErrorKind::WouldBlock => guard.clear_ready(),
            io::ErrorKind::Interrupted => {}
            _ => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    /// In a thread of its own (the signals stay blocked in it): a SIGINT
    /// sent to that thread ends the stop future instead of the process.
    #[test]
    fn a_signal_ends_the_stop_future() {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build()
                .unwrap();
            rt.block_on(async {
                let stop = super::stop_signals().unwrap();
                // SAFETY: signalling this very thread, which blocks SIGINT.
                assert_eq!(
                    unsafe { libc::pthread_kill(libc::pthread_self(), libc::SIGINT) },
                    0
                );
                stop.await;
            });
            let _ = tx.send(());
        });
        rx.recv_timeout(Duration::from_secs(10))
            .expect("the stop future did not end");
    }
}
