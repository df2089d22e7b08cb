//! Noticing a wall-clock jump, which is what a resumed guest sees: a
//! `timerfd` armed on `CLOCK_REALTIME` with `TFD_TIMER_CANCEL_ON_SET`
//! becomes readable (its read fails with `ECANCELED`) whenever the clock
//! is set discontinuously, by the kernel after a resume or by an
//! administrator. xe-guest-utilities uses the same device.

#[cfg(target_os = "linux")]
mod imp {
    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    use tokio::io::unix::AsyncFd;

    /// A wall-clock jump detector.
    pub struct ClockJumps {
        fd: AsyncFd<OwnedFd>,
    }

    impl ClockJumps {
        /// Arm the detector.
        pub fn new() -> io::Result<Self> {
            // SAFETY: plain syscall; a new descriptor or -1.
            let raw = unsafe {
                libc::timerfd_create(libc::CLOCK_REALTIME, libc::TFD_NONBLOCK | libc::TFD_CLOEXEC)
            };
            if raw < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: a descriptor we just opened and own.
            let fd = unsafe { OwnedFd::from_raw_fd(raw) };
            arm(&fd)?;
            Ok(ClockJumps {
                fd: crate::sys::register(fd, tokio::io::Interest::READABLE)?,
            })
        }

        /// Wait for the next jump.
        pub async fn jumped(&mut self) -> io::Result<()> {
            // ECANCELED: the clock was set. (Expiry is impossible: the
            // timer is armed at the end of time.) Re-arm for the next.
            match crate::sys::read_whole(&self.fd, &mut [0u8; 8]).await {
                Err(e) if e.raw_os_error() != Some(libc::ECANCELED) => return Err(e),
                _ => {}
            }
            arm(self.fd.get_ref())
        }
    }

    /// Arm the timer at the far future, cancelled when the clock is set.
    fn arm(fd: &OwnedFd) -> io::Result<()> {
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: libc::time_t::MAX,
                tv_nsec: 0,
            },
        };
        // SAFETY: valid descriptor and itimerspec.
        let r = unsafe {
            libc::timerfd_settime(
                fd.as_raw_fd(),
                libc::TFD_TIMER_ABSTIME | libc::TFD_TIMER_CANCEL_ON_SET,
                &spec,
                std::ptr::null_mut(),
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use std::io;

    /// No wall-clock jump detection on this system: watches alone notice a
    /// resume.
    pub struct ClockJumps;

    impl ClockJumps {
        /// Unsupported here.
        pub fn new() -> io::Result<Self> {
            Err(io::Error::from(io::ErrorKind::Unsupported))
        }

        /// Never resolves.
        pub async fn jumped(&mut self) -> io::Result<()> {
            std::future::pending().await
        }
    }
}

pub use imp::ClockJumps;
