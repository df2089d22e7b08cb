//! Systems without `timerfd`: tokio's interval.

use std::io;
use std::time::Duration;

use tokio::time::Interval;

/// A periodic timer.
pub struct Timer(Interval);

impl Timer {
    /// A timer expiring every `period`, the first time one period from now.
    pub fn new(period: Duration) -> io::Result<Self> {
        Ok(Timer(super::tokio_interval(period)))
    }

    /// Wait for the next expiry.
    pub async fn wait(&mut self) -> io::Result<()> {
        self.0.tick().await;
        Ok(())
    }
}
