//! A periodic tick for the collectors that sample (memory, interface
//! polling), made so that an idle agent wakes once per period.
//!
//! tokio's timers (`tokio::time::interval`, `sleep`) live in a
//! hierarchical wheel: for a 60 s deadline the runtime parks until the
//! start of the coarse slot that holds it, then cascades through finer
//! levels, which costs 3 wakeups per expiry (55.8 s, 2.57 s, 36 ms in
//! bench/ANALYSIS.md), and registering the next deadline from inside the
//! loop wakes the runtime once more through its eventfd. On Linux a
//! periodic `timerfd` (CLOCK_MONOTONIC) polled by tokio's reactor wakes the
//! thread exactly once per period. Other systems keep tokio's interval.
//!
//! The first tick is immediate and involves no timer at all: a collector
//! samples at once on start (a tokio timer, even an elapsed one, completes
//! only at the next millisecond tick of the wheel, which delayed the first
//! publication by up to 1 ms). Ticks missed while the agent was stopped or
//! busy collapse into one.

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
mod tests {
    use std::time::Instant;

    use futures::FutureExt;

    use super::*;

    /// A runtime without tokio's time driver: a tick that went through
    /// tokio's timers would panic here ("timers are disabled").
    #[cfg(target_os = "linux")]
    fn runtime_without_timers() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .unwrap()
    }

    #[tokio::test]
    async fn first_tick_is_immediate() {
        let mut t = Ticker::new(Duration::from_secs(3600));
        assert!(t.tick().now_or_never().is_some(), "first tick waits");
        assert!(t.tick().now_or_never().is_none(), "second tick is at once");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn linux_ticks_need_no_tokio_timer() {
        let mut t = Ticker::new(Duration::from_secs(3600));
        runtime_without_timers().block_on(async {
            assert!(t.tick().now_or_never().is_some(), "first tick waits");
            assert!(t.tick().now_or_never().is_none(), "second tick is at once");
        });
        assert!(
            matches!(t.clock, Clock::Os(_)),
            "fell back to tokio's timer"
        );
    }

    /// Runs `f` on a runtime without tokio's timers, in a thread of its
    /// own, failing after a deadline instead of hanging.
    #[cfg(target_os = "linux")]
    fn without_timers_within<T: Send + 'static>(
        f: impl FnOnce(&mut tokio::runtime::Runtime) -> T + Send + 'static,
    ) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f(&mut runtime_without_timers()));
        });
        rx.recv_timeout(Duration::from_secs(10))
            .expect("ticks did not come within 10 s")
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn ticks_come_from_the_system_timer_once_per_period() {
        let period = Duration::from_millis(20);
        let (elapsed, on_os_timer) = without_timers_within(move |rt| {
            rt.block_on(async {
                let mut t = Ticker::new(period);
                let start = Instant::now();
                for _ in 0..4 {
                    t.tick().await;
                }
                (start.elapsed(), matches!(t.clock, Clock::Os(_)))
            })
        });
        assert!(on_os_timer, "fell back to tokio's timer");
        // Four ticks, the first immediate: three periods at least.
        assert!(elapsed >= period * 3, "{elapsed:?}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn missed_ticks_collapse_into_one() {
        let period = Duration::from_millis(10);
        runtime_without_timers().block_on(async {
            let mut t = Ticker::new(period);
            t.tick().await;
            // Busy for several periods: one tick is due, not five.
            std::thread::sleep(period * 5);
            t.tick().await;
            // Let the reactor look again: nothing more is due.
            for _ in 0..3 {
                tokio::task::yield_now().await;
            }
            assert!(t.tick().now_or_never().is_none(), "more than one tick");
        });
    }

    #[tokio::test]
    async fn tokio_fallback_ticks_after_one_period() {
        let period = Duration::from_millis(20);
        let mut t = Ticker::new(period);
        t.clock = Clock::Tokio(tokio_interval(period));
        let start = Instant::now();
        t.tick().await;
        t.tick().await;
        assert!(start.elapsed() >= period * 2, "{:?}", start.elapsed());
    }

    #[test]
    fn zero_period_is_clamped() {
        assert_eq!(Ticker::new(Duration::ZERO).period, MIN_PERIOD);
    }
}
