//! Linux: a periodic `timerfd` on `CLOCK_MONOTONIC`, polled by tokio's
//! reactor, so that each period costs one wakeup of the thread and one
//! `read`.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// An armed periodic timer.
pub struct Timer {
    fd: AsyncFd<OwnedFd>,
}

impl Timer {
    /// A timer expiring every `period` (not zero: that would disarm it),
    /// the first time one period from now.
    pub fn new(period: Duration) -> io::Result<Self> {
        // SAFETY: plain syscall; a new descriptor or -1.
        let raw = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a descriptor we just opened and own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let every = timespec(period);
        let spec = libc::itimerspec {
            it_interval: every,
            it_value: every,
        };
        // SAFETY: valid descriptor and itimerspec; no old value wanted.
        if unsafe { libc::timerfd_settime(fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let fd = crate::sys::register(fd, Interest::READABLE)?;
        Ok(Timer { fd })
    }

    /// Wait for the next expiry (or expiries: several missed ones count as
    /// one: one read takes them all).
    pub async fn wait(&mut self) -> io::Result<()> {
        crate::sys::read_whole(&self.fd, &mut [0u8; 8])
            .await
            .map(drop)
    }
}

/// `period` as a `timespec`, never zero, saturating at the largest one.
fn timespec(period: Duration) -> libc::timespec {
    let (tv_sec, tv_nsec) = match libc::time_t::try_from(period.as_secs()) {
        // Below 10^9: fits every `c_long`.
        Ok(s) => (s, period.subsec_nanos() as libc::c_long),
        Err(_) => (libc::time_t::MAX, 0),
    };
    libc::timespec {
        tv_sec,
        tv_nsec: if tv_sec == 0 && tv_nsec == 0 {
            1
        } else {
            tv_nsec
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timespecs() {
        let t = timespec(Duration::from_millis(1500));
        assert_eq!((t.tv_sec, t.tv_nsec), (1, 500_000_000));
        let t = timespec(Duration::ZERO);
        assert_eq!((t.tv_sec, t.tv_nsec), (0, 1));
        let t = timespec(Duration::from_secs(u64::MAX));
        assert_eq!((t.tv_sec, t.tv_nsec), (libc::time_t::MAX, 0));
    }

    #[tokio::test]
    async fn a_huge_period_arms_and_does_not_expire() {
        use futures::FutureExt;
        let mut t = Timer::new(Duration::from_secs(u64::MAX)).unwrap();
        assert!(t.wait().now_or_never().is_none());
    }
}
