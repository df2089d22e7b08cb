//! Living as a system service: stop signals and readiness notification.

use std::io;

use tokio::signal::unix::{signal, SignalKind};

/// A future that resolves on the first SIGTERM or SIGINT.
///
/// The signals are caught from the moment this returns, so that one that
/// arrives during start-up is not lost. Must be called within the tokio
/// runtime.
pub fn stop_signals() -> io::Result<impl std::future::Future<Output = ()>> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => log::debug!("SIGTERM"),
            _ = int.recv() => log::debug!("SIGINT"),
        }
    })
}

/// Tell the service manager something (systemd `Type=notify`: `READY=1`,
/// `STATUS=...` on `$NOTIFY_SOCKET`). Does nothing when not started by
/// such a manager. Failures are logged, never fatal: the manager then times
/// the service out and says so itself.
pub fn notify(message: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    if let Err(e) = send_notify(&path, message.as_bytes()) {
        log::warn!("cannot notify the service manager on {path:?}: {e}");
    }
}

fn send_notify(path: &std::ffi::OsStr, msg: &[u8]) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::net::UnixDatagram;

    let sock = UnixDatagram::unbound()?;
    let bytes = path.as_bytes();
    match bytes.first() {
        // An abstract socket (Linux): '@' stands for the leading NUL.
        #[cfg(target_os = "linux")]
        Some(b'@') => {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(&bytes[1..])?;
            sock.send_to_addr(msg, &addr)?;
        }
        Some(b'/') => {
            sock.send_to(msg, path)?;
        }
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not an absolute path nor an abstract socket name",
            ))
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixDatagram;

    #[test]
    fn readiness_reaches_a_path_socket() {
        let dir = std::env::temp_dir().join(format!("xga-notify-{}", std::process::id()));
        let _ = std::fs::remove_file(&dir);
        let server = UnixDatagram::bind(&dir).unwrap();
        super::send_notify(dir.as_os_str(), b"READY=1").unwrap();
        let mut buf = [0u8; 16];
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
        let _ = std::fs::remove_file(&dir);
    }

    #[test]
    fn relative_socket_names_are_refused() {
        assert!(super::send_notify("relative".as_ref(), b"READY=1").is_err());
    }
}
