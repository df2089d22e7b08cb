use super::*;

#[test]
fn the_bucket_lets_a_burst_through_then_one_per_refill() {
    let t0 = Instant::now();
    let mut b = Bucket::new(t0);
    for _ in 0..BURST {
        assert_eq!(b.take(t0), Ok(()));
    }
    assert_eq!(b.take(t0), Err(t0 + REFILL));
    assert_eq!(b.take(t0 + REFILL / 2), Err(t0 + REFILL));
    assert_eq!(b.take(t0 + REFILL), Ok(()));
    assert_eq!(b.take(t0 + REFILL), Err(t0 + 2 * REFILL));
    // A long quiet time refills it, never beyond the burst.
    let later = t0 + 100 * REFILL;
    for _ in 0..BURST {
        assert_eq!(b.take(later), Ok(()));
    }
    assert!(b.take(later).is_err());
}

#[test]
fn error_messages_are_cut_within_the_value_limit_on_a_character() {
    assert_eq!(truncate("short"), "short");
    let long = "é".repeat(1000);
    let cut = truncate(&long);
    assert!(cut.len() <= 1024 && cut.chars().all(|c| c == 'é'));
}
