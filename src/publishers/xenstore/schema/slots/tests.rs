use super::*;
use std::cell::RefCell;
use std::fmt;

/// Log lines emitted on this thread, for tests that check what the log
/// says (each test runs on its own thread).
pub(crate) fn captured_log() -> Vec<String> {
    capture::install();
    capture::LINES.with(|l| l.borrow().clone())
}

/// Start capturing log lines on this thread (drops earlier ones).
pub(crate) fn capture_log() -> bool {
    let ok = capture::install();
    capture::LINES.with(|l| l.borrow_mut().clear());
    ok
}

mod capture {
    use super::*;
    use log::{Log, Metadata, Record};

    thread_local! {
        pub static LINES: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    }

    struct Capture;

    impl Log for Capture {
        fn enabled(&self, _: &Metadata) -> bool {
            true
        }
        fn log(&self, record: &Record) {
            LINES.with(|l| {
                l.borrow_mut()
                    .push(format!("{} {}", record.level(), record.args()))
            });
        }
        fn flush(&self) {}
    }

    static LOGGER: Capture = Capture;

    /// Whether the capture logger is the process logger.
    pub fn install() -> bool {
        static INSTALLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *INSTALLED.get_or_init(|| {
            let ok = log::set_logger(&LOGGER).is_ok();
            if ok {
                log::set_max_level(log::LevelFilter::Trace);
            }
            ok
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key(u32);

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "attr/vif/{}/ipv4", self.0)
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn ips(list: &[&str]) -> Vec<IpAddr> {
    let mut v: Vec<IpAddr> = list.iter().map(|s| ip(s)).collect();
    v.sort();
    v
}

fn table(slots: &[Option<IpAddr>]) -> Vec<String> {
    slots
        .iter()
        .map(|s| s.map_or("-".into(), |a| a.to_string()))
        .collect()
}

#[test]
fn new_addresses_fill_from_zero_primary_first() {
    let mut s = Slots::new();
    let t = s.assign(
        &Key(0),
        &ips(&["10.0.0.9", "10.0.0.1", "10.0.0.5"]),
        Some(ip("10.0.0.5")),
        32,
    );
    assert_eq!(table(t), ["10.0.0.5", "10.0.0.1", "10.0.0.9"]);
}

#[test]
fn addresses_keep_their_slot_and_freed_slots_are_reused() {
    let mut s = Slots::new();
    let k = Key(0);
    s.assign(&k, &ips(&["10.0.0.1", "10.0.0.2", "10.0.0.3"]), None, 32);
    let t = s.assign(&k, &ips(&["10.0.0.1", "10.0.0.3"]), None, 32);
    assert_eq!(table(t), ["10.0.0.1", "-", "10.0.0.3"]);
    let t = s.assign(
        &k,
        &ips(&["10.0.0.1", "10.0.0.3", "10.0.0.7", "10.0.0.0"]),
        None,
        32,
    );
    assert_eq!(table(t), ["10.0.0.1", "10.0.0.0", "10.0.0.3", "10.0.0.7"]);
}

#[test]
fn primary_reclaims_slot_zero_only_when_free() {
    let mut s = Slots::new();
    let k = Key(0);
    // 10.0.0.1 came first; the primary arrives later, slot 0 is taken.
    s.assign(&k, &ips(&["10.0.0.1"]), Some(ip("10.0.0.1")), 32);
    let t = s.assign(
        &k,
        &ips(&["10.0.0.1", "10.0.0.2"]),
        Some(ip("10.0.0.2")),
        32,
    );
    assert_eq!(
        table(t),
        ["10.0.0.1", "10.0.0.2"],
        "slot 0 is not taken away"
    );
    // Slot 0 frees up: the primary moves there, its old slot is free.
    let t = s.assign(
        &k,
        &ips(&["10.0.0.2", "10.0.0.3"]),
        Some(ip("10.0.0.2")),
        32,
    );
    assert_eq!(table(t), ["10.0.0.2", "10.0.0.3"]);
    // A primary that is not present (filtered out) claims nothing.
    let t = s.assign(&k, &ips(&["10.0.0.3"]), Some(ip("10.0.0.2")), 32);
    assert_eq!(table(t), ["-", "10.0.0.3"]);
}

#[test]
fn cap_skips_the_rest_and_logs_once_until_it_stops() {
    let capturing = capture_log();
    let mut s = Slots::new();
    let k = Key(3);
    let many = ips(&["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"]);
    for _ in 0..3 {
        let t = s.assign(&k, &many, None, 2);
        assert_eq!(table(t), ["10.0.0.1", "10.0.0.2"]);
        assert!(s.capped(&k));
    }
    // Back under the cap: no more capping, and capping again is logged.
    s.assign(&k, &many[..2], None, 2);
    assert!(!s.capped(&k));
    s.assign(&k, &many, None, 2);
    // Another key caps independently.
    s.assign(&Key(4), &many, None, 3);
    if capturing {
        let log = captured_log();
        assert_eq!(log.len(), 3, "{log:?}");
        assert_eq!(
            log[0],
            "WARN attr/vif/3/ipv4: 4 addresses, publishing 2 (--max-addresses); \
             the other 2 are skipped while there are too many"
        );
        assert!(log[2].starts_with("WARN attr/vif/4/ipv4: 4 addresses, publishing 3"));
    } else {
        println!("log capture unavailable (another logger installed): log lines not checked");
    }
}

#[test]
fn seeds_apply_at_first_render_of_their_key() {
    let mut s = Slots::new();
    s.seed(Key(0), 3, ip("10.0.0.3"));
    s.seed(Key(0), 1, ip("10.0.0.1"));
    s.seed(Key(0), 5, ip("10.0.0.1")); // duplicate: the lower slot wins
    s.seed(Key(0), 3, ip("10.0.0.9")); // slot taken: ignored
    s.seed(Key(0), 4, ip("10.0.0.4")); // gone by the first render
    s.seed(Key(1), 0, ip("10.0.1.1")); // key not rendered at first
                                       // A render without Key(1) leaves its seeds dormant.
    let t = s.assign(
        &Key(0),
        &ips(&["10.0.0.1", "10.0.0.3", "10.0.0.8"]),
        None,
        32,
    );
    assert_eq!(table(t), ["10.0.0.8", "10.0.0.1", "-", "10.0.0.3"]);
    s.end_render();
    let t = s.assign(&Key(1), &ips(&["10.0.1.0", "10.0.1.1"]), None, 32);
    assert_eq!(table(t), ["10.0.1.1", "10.0.1.0"]);
    // Dropped seeds do not come back.
    let t = s.assign(
        &Key(0),
        &ips(&["10.0.0.1", "10.0.0.3", "10.0.0.8", "10.0.0.4"]),
        None,
        32,
    );
    assert_eq!(table(t), ["10.0.0.8", "10.0.0.1", "10.0.0.4", "10.0.0.3"]);
}

#[test]
fn seeds_above_the_cap_are_dropped() {
    let mut s = Slots::new();
    s.seed(Key(0), 7, ip("10.0.0.7"));
    let t = s.assign(&Key(0), &ips(&["10.0.0.7"]), None, 4);
    assert_eq!(table(t), ["10.0.0.7"]);
}

#[test]
fn keys_not_rendered_are_forgotten() {
    let mut s = Slots::new();
    s.assign(&Key(0), &ips(&["10.0.0.1", "10.0.0.2"]), None, 32);
    s.end_render();
    s.end_render(); // Key(0) not assigned in this render: forgotten
    let t = s.assign(&Key(0), &ips(&["10.0.0.2"]), None, 32);
    assert_eq!(table(t), ["10.0.0.2"]);
}

#[test]
fn slot_numbers_are_canonical_integers() {
    assert_eq!(parse_slot("0", 10), Some(0));
    assert_eq!(parse_slot("9", 10), Some(9));
    for bad in [
        "",
        "10",
        "01",
        "-1",
        "+1",
        "1a",
        " 1",
        "a",
        "99999999999999999999999",
    ] {
        assert_eq!(parse_slot(bad, 10), None, "{bad:?}");
    }
}

/// A small deterministic generator (no dependency for tests).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn invariants_hold_through_random_churn() {
    let cap = 6;
    let pool: Vec<IpAddr> = (1..=12).map(|i| ip(&format!("10.0.0.{i}"))).collect();
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut s = Slots::new();
    let k = Key(0);
    let mut present: Vec<IpAddr> = Vec::new();
    let mut before: Vec<Option<IpAddr>> = Vec::new();
    let mut saw_capping = false;
    let mut saw_primary_move = false;

    for round in 0..1000 {
        // Add or remove one to three addresses.
        for _ in 0..=rng.below(3) {
            let a = pool[rng.below(pool.len() as u64) as usize];
            match present.binary_search(&a) {
                Ok(i) => {
                    present.remove(i);
                }
                Err(i) => present.insert(i, a),
            }
        }
        // The primary is sometimes absent, sometimes any present one.
        let primary = match rng.below(4) {
            0 => None,
            _ if present.is_empty() => None,
            _ => Some(present[rng.below(present.len() as u64) as usize]),
        };
        let after = s.assign(&k, &present, primary, cap).to_vec();
        let ctx = format!("round {round}: present {present:?} primary {primary:?} before {before:?} after {after:?}");
        let slot_of =
            |t: &[Option<IpAddr>], a: &IpAddr| t.iter().position(|s| s.as_ref() == Some(a));
        let published: Vec<IpAddr> = after.iter().flatten().copied().collect();

        // Never more than the cap, never a trailing empty slot.
        assert!(after.len() <= cap, "{ctx}");
        assert!(after.last().is_none_or(Option::is_some), "{ctx}");
        // Only present addresses, each in one slot.
        for a in &published {
            assert!(present.contains(a), "{ctx}");
            assert_eq!(
                after.iter().filter(|s| s.as_ref() == Some(a)).count(),
                1,
                "{ctx}"
            );
        }
        // Everything is published unless every slot is full.
        if published.len() < cap {
            assert_eq!(published.len(), present.len(), "{ctx}");
        } else {
            saw_capping |= present.len() > cap;
        }
        // The primary holds slot 0 whenever slot 0 could be its own.
        if let Some(p) = primary {
            let zero = after.first().copied().flatten();
            assert!(
                zero.is_some(),
                "slot 0 free while the primary exists: {ctx}"
            );
            let zero_was_kept = zero.is_some_and(|z| z != p && slot_of(&before, &z) == Some(0));
            assert!(zero == Some(p) || zero_was_kept, "{ctx}");
        }
        // A present address never moves, except the primary into slot 0.
        for (old, a) in before.iter().enumerate() {
            let Some(a) = a else { continue };
            if let Some(new) = slot_of(&after, a) {
                if new != old {
                    assert!(Some(*a) == primary && new == 0, "{a} moved: {ctx}");
                    saw_primary_move = true;
                }
            } else {
                assert!(!present.contains(a), "{a} dropped while present: {ctx}");
            }
        }
        // Newcomers took the lowest free slots: nothing free below them.
        for (slot, a) in after.iter().enumerate() {
            let Some(a) = a else { continue };
            if slot_of(&before, a).is_none() && !(Some(*a) == primary && slot == 0) {
                assert!(
                    after[..slot].iter().all(Option::is_some),
                    "{a} not lowest: {ctx}"
                );
            }
        }
        before = after;
    }
    assert!(saw_capping, "the churn should exercise the cap");
    assert!(
        saw_primary_move,
        "the churn should exercise the primary move"
    );
}
