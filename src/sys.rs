//! The few operating-system calls several modules need, each written once.

use std::io;
use std::os::fd::AsRawFd;

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// Register a descriptor we own with tokio's reactor.
pub fn register<T: AsRawFd>(fd: T, interest: Interest) -> io::Result<AsyncFd<T>> {
    // `with_interest` is deprecated since tokio 1.54 for descriptors that
    // may close under it; ours are owned by `T` and close with it, and this
    // keeps older tokio releases (distributions') usable.
    #[allow(deprecated)]
    AsyncFd::with_interest(fd, interest)
}

/// Wait until `fd` is readable, then `read(2)` it once into `buf`: the
/// bytes read, or the error of the read (a spurious readiness is waited
/// out). For descriptors the kernel fills whole (`timerfd`, `signalfd`):
/// when `buf` was filled, the readiness is cleared, since one read took
/// everything and the reactor reports the next event anew.
pub async fn read_whole<T: AsRawFd>(fd: &AsyncFd<T>, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        let mut guard = fd.readable().await?;
        // SAFETY: `buf` is writable for its length.
        let n = unsafe { libc::read(fd.get_ref().as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            let n = n as usize;
            if n == buf.len() {
                guard.clear_ready();
            }
            return Ok(n);
        }
        let e = io::Error::last_os_error();
        match e.kind() {
            io::ErrorKind::WouldBlock => guard.clear_ready(),
            io::ErrorKind::Interrupted => {}
            _ => {
                // The error is the event (ECANCELED on a timerfd): the
                // descriptor is drained by it.
                guard.clear_ready();
                return Err(e);
            }
        }
    }
}

/// A kernel file that signals its own changes to `poll` (Linux:
/// `/proc/sys/kernel/hostname` at every `sethostname`, `/proc/self/mountinfo`
/// at every mount and unmount, as `POLLERR|POLLPRI`). Registered with the
/// runtime's reactor, it costs nothing between changes. The file is also
/// readable from the start, so the first wakeup may be the registration
/// rather than a change: callers read again and compare.
pub struct ChangeWatch {
    #[cfg(target_os = "linux")]
    fd: AsyncFd<std::fs::File>,
}

impl ChangeWatch {
    /// Watch `path` from now on; `Unsupported` where the kernel has no such
    /// signal (FreeBSD).
    pub fn open(path: &str) -> io::Result<Self> {
        #[cfg(target_os = "linux")]
        {
            let file = std::fs::File::open(path)
                .map_err(|e| io::Error::new(e.kind(), format!("cannot open {path}: {e}")))?;
            Ok(ChangeWatch {
                fd: register(file, Interest::READABLE)?,
            })
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = path;
            Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "this kernel has no file that signals such changes",
            ))
        }
    }

    /// Wait for the next change (or a spurious wakeup).
    pub async fn changed(&mut self) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        {
            let mut guard = self.fd.readable_mut().await?;
            guard.clear_ready();
            Ok(())
        }
        #[cfg(not(target_os = "linux"))]
        std::future::pending().await
    }
}

/// The raw value of a sysctl, read by name into `buf`: the bytes the
/// kernel wrote. A missing name is `NotFound` (ENOENT). The error names the
/// sysctl.
#[cfg(target_os = "freebsd")]
pub fn sysctl<'b>(name: &std::ffi::CStr, buf: &'b mut [u8]) -> io::Result<&'b [u8]> {
    let mut len: libc::size_t = buf.len();
    // SAFETY: `buf` is writable for `len` bytes, which the kernel updates
    // to the size it wrote; no new value is set (null, 0).
    let rc = unsafe {
        libc::sysctlbyname(
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            &mut len,
            std::ptr::null(),
            0,
        )
    };
    if rc != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("sysctl {name:?}: {e}")));
    }
    Ok(&buf[..len.min(buf.len())])
}

/// A string sysctl (NUL-terminated by the kernel), read by name.
#[cfg(target_os = "freebsd")]
pub fn sysctl_string(name: &std::ffi::CStr) -> io::Result<String> {
    let mut buf = [0u8; 256];
    let bytes = sysctl(name, &mut buf)?;
    let text = bytes.split(|&b| b == 0).next().unwrap_or_default();
    Ok(String::from_utf8_lossy(text).into_owned())
}

/// Fails when this process lacks `CAP_NET_ADMIN` in its effective set
/// (Linux: `CapEff` in `/proc/self/status`), which changing addresses and
/// routes needs. Where that cannot be read, or elsewhere, the kernel's
/// refusal will say it later.
pub fn check_net_admin() -> Result<(), crate::Error> {
    #[cfg(target_os = "linux")]
    {
        const CAP_NET_ADMIN: u32 = 12;
        let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
            return Ok(());
        };
        let effective = status
            .lines()
            .find_map(|l| l.strip_prefix("CapEff:"))
            .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok());
        if let Some(caps) = effective {
            if caps & (1 << CAP_NET_ADMIN) == 0 {
                return Err(crate::Error::new(
                    "this process lacks the CAP_NET_ADMIN capability",
                ));
            }
        }
    }
    Ok(())
}

/// Fill `buf` from the kernel's random source: getrandom(2), or
/// /dev/urandom where that system call is missing (Linux before 3.17, as
/// CentOS 7's, where the portable binary runs; FreeBSD before 12).
pub fn random_bytes(buf: &mut [u8]) -> io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        let rest = &mut buf[filled..];
        // SAFETY: the pointer and length are those of `rest`, a live
        // slice the call may write.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        match usize::try_from(n) {
            Ok(n) => filled += n,
            Err(_) => {
                let e = io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EINTR) => continue,
                    Some(libc::ENOSYS) => return urandom(rest),
                    _ => return Err(random_error("getrandom", e)),
                }
            }
        }
    }
    Ok(())
}

fn urandom(buf: &mut [u8]) -> io::Result<()> {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(buf))
        .map_err(|e| random_error("/dev/urandom", e))
}

fn random_error(source: &str, e: io::Error) -> io::Error {
    io::Error::new(
        e.kind(),
        format!("cannot read random bytes ({source}): {e}"),
    )
}
