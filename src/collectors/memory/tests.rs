use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Instant;

use futures::{FutureExt, StreamExt};

use super::*;

fn mem(total_kib: u64) -> MemoryInfo {
    MemoryInfo {
        total_kib,
        available_kib: total_kib / 2,
    }
}

/// A beat nobody listens to.
fn beat() -> watch::Sender<()> {
    watch::channel(()).0
}

fn err() -> io::Result<MemoryInfo> {
    Err(io::Error::other("scripted failure"))
}

/// A reader playing `script`, then succeeding with `mem(0)` forever;
/// also returns how many reads were made.
fn scripted(
    script: Vec<io::Result<MemoryInfo>>,
) -> (impl FnMut() -> io::Result<MemoryInfo>, Rc<RefCell<usize>>) {
    let mut script = VecDeque::from(script);
    let reads = Rc::new(RefCell::new(0));
    let counter = reads.clone();
    let read = move || {
        *counter.borrow_mut() += 1;
        script.pop_front().unwrap_or_else(|| Ok(mem(0)))
    };
    (read, reads)
}

#[test]
fn failures_are_logged_once_until_recovery() {
    let (read, _) = scripted(vec![
        Ok(mem(1)),
        err(),
        err(),
        err(),
        Ok(mem(2)),
        Ok(mem(3)),
        err(),
        err(),
    ]);
    let mut s = Sampler {
        read,
        failing: false,
    };
    let mut lines = Vec::new();
    for _ in 0..8 {
        let r = (s.read)();
        lines.push(match s.log(&r) {
            None => "-",
            Some(Ok(())) => "recovered",
            Some(Err(_)) => "failed",
        });
    }
    assert_eq!(
        lines,
        ["-", "failed", "-", "-", "recovered", "-", "failed", "-"]
    );
}

#[test]
fn failure_at_start_is_logged() {
    let (read, _) = scripted(vec![err(), err(), Ok(mem(1))]);
    let mut s = Sampler {
        read,
        failing: false,
    };
    assert_eq!(s.sample(), None);
    assert!(s.failing);
    assert_eq!(s.sample(), None);
    assert_eq!(s.sample(), Some(mem(1)));
    assert!(!s.failing);
}

#[test]
fn oneshot_gives_one_sample_then_ends() {
    let (read, reads) = scripted(vec![Ok(mem(7))]);
    let events: Vec<Event> = sampled(Duration::from_secs(3600), true, beat(), read)
        .collect()
        .now_or_never()
        .expect("oneshot does not wait for the timer");
    assert_eq!(events, [Event::Memory(mem(7))]);
    assert_eq!(*reads.borrow(), 1);
}

#[test]
fn oneshot_failure_ends_without_sample() {
    let (read, _) = scripted(vec![err()]);
    let events: Vec<Event> = sampled(Duration::from_secs(1), true, beat(), read)
        .collect()
        .now_or_never()
        .unwrap();
    assert!(events.is_empty());
}

#[tokio::test]
async fn first_sample_is_immediate() {
    let (read, _) = scripted(vec![Ok(mem(5))]);
    let mut s = sampled(Duration::from_secs(3600), false, beat(), read);
    let first = tokio::time::timeout(Duration::from_secs(5), s.next()).await;
    assert_eq!(first.unwrap(), Some(Event::Memory(mem(5))));
    // The next one waits for the interval.
    assert!(s.next().now_or_never().is_none());
}

#[tokio::test]
async fn failures_are_skipped_and_the_stream_goes_on() {
    let (read, reads) = scripted(vec![
        Ok(mem(1)),
        err(),
        err(),
        Ok(mem(2)),
        err(),
        Ok(mem(3)),
    ]);
    let interval = Duration::from_millis(10);
    let start = Instant::now();
    let events: Vec<Event> = tokio::time::timeout(
        Duration::from_secs(10),
        sampled(interval, false, beat(), read).take(4).collect(),
    )
    .await
    .expect("samples keep coming");
    assert_eq!(
        events,
        [mem(1), mem(2), mem(3), mem(0)].map(Event::Memory),
        "failed reads publish nothing"
    );
    assert_eq!(*reads.borrow(), 7);
    // Seven ticks, the first immediate: at least six periods.
    assert!(start.elapsed() >= interval * 6);
}

#[tokio::test]
async fn every_tick_but_the_first_beats_even_when_the_read_fails() {
    let (read, _) = scripted(vec![Ok(mem(1)), err(), Ok(mem(2))]);
    let (beat, mut heard) = watch::channel(());
    let mut s = sampled(Duration::from_millis(10), false, beat, read);
    assert_eq!(s.next().await, Some(Event::Memory(mem(1))));
    assert!(
        !heard.has_changed().unwrap(),
        "no beat for the first sample"
    );
    // The failed read's tick and the next one.
    assert_eq!(s.next().await, Some(Event::Memory(mem(2))));
    assert!(heard.has_changed().unwrap());
    heard.mark_unchanged();
    assert_eq!(s.next().await, Some(Event::Memory(mem(0))));
    assert!(heard.has_changed().unwrap());
}

#[tokio::test]
async fn zero_interval_does_not_panic() {
    let (read, _) = scripted(vec![]);
    let events: Vec<Event> = tokio::time::timeout(
        Duration::from_secs(10),
        sampled(Duration::ZERO, false, beat(), read)
            .take(3)
            .collect(),
    )
    .await
    .unwrap();
    assert_eq!(events.len(), 3);
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn samples_this_system() {
    let mut s = stream(Duration::from_secs(3600), false, beat());
    let first = tokio::time::timeout(Duration::from_secs(5), s.next())
        .await
        .unwrap();
    let Some(Event::Memory(m)) = first else {
        panic!("no sample: {first:?}")
    };
    assert!(
        m.total_kib > 0 && m.available_kib > 0 && m.available_kib <= m.total_kib,
        "{m:?}"
    );
}
