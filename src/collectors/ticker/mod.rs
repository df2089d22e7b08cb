//! A periodic tick for the collectors that sample (memory, interface
//! polling), so that an idle agent wakes once per period: on Linux a
//! periodic `timerfd` (tokio's timer wheel costs 3 wakeups per 60 s expiry:
//! bench/ANALYSIS.md), elsewhere tokio's interval. The first tick is
//! immediate and needs no timer; ticks missed while busy collapse into one.

use std::time::Duration;

use tokio::time::{Instant, Interval, MissedTickBehavior};

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
use linux as os;

#[cfg(not(target_os = "linux"))]
mod other;
#[cfg(not(target_os = "linux"))]
use other as os;

/// Shortest period accepted: a zero period would spin (and disarms a
/// `timerfd`). The command line already refuses zero.
const MIN_PERIOD: Duration = Duration::from_millis(1);

/// Ticks every `period`, the first one at once.
pub struct Ticker {
    period: Duration,
    clock: Clock,
}

enum Clock {
    /// Nothing armed yet: the next tick is the immediate first one.
    Start,
    /// The system's periodic timer.
    Os(os::Timer),
    /// tokio's interval, when the system's timer could not be had.
    Tokio(Interval),
}

impl Ticker {
    /// A ticker with the given period (at least [`MIN_PERIOD`]). Nothing is
    /// armed before the first tick, so this may be called outside the
    /// runtime.
    pub fn new(period: Duration) -> Self {
        Ticker {
            period: period.max(MIN_PERIOD),
            clock: Clock::Start,
        }
    }

    /// The next tick: at once the first time, then one per period from the
    /// second call on.
    pub async fn tick(&mut self) {
        loop {
            match &mut self.clock {
                Clock::Start => {
                    // Armed now, when the first tick is taken: the period is
                    // counted from the first sample.
                    self.clock = match os::Timer::new(self.period) {
                        Ok(t) => Clock::Os(t),
                        Err(e) => self.fallback(&e),
                    };
                    return;
                }
                Clock::Os(timer) => match timer.wait().await {
                    Ok(()) => return,
                    Err(e) => self.clock = self.fallback(&e),
                },
                Clock::Tokio(interval) => {
                    interval.tick().await;
                    return;
                }
            }
        }
    }

    /// tokio's interval, after the system's timer failed (which it does not
    /// but for lack of file descriptors or memory): more wakeups, same ticks.
    fn fallback(&self, e: &std::io::Error) -> Clock {
        log::warn!("periodic timer unavailable ({e}); using the runtime's timer instead");
        Clock::Tokio(tokio_interval(self.period))
    }
}

/// tokio's interval whose first tick is one period from now.
fn tokio_interval(period: Duration) -> Interval {
    let mut i = tokio::time::interval_at(Instant::now() + period, period);
    i.set_missed_tick_behavior(MissedTickBehavior::Skip);
    i
}

#[cfg(test)]
mod tests;
