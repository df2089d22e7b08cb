//! Stop signals through tokio's signal handling (systems without
//! `signalfd`).

use std::io;

use tokio::signal::unix::{signal, SignalKind};

/// See [`super::stop_signals`].
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
