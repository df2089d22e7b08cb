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
