use super::*;

const MS: Duration = Duration::from_millis(1);

/// A schedule past its start: connected, SR-IOV read, model 1 reconciled.
fn running(t0: Instant) -> Schedule {
    let mut s = Schedule::new(t0);
    assert_eq!(s.next(t0), Next::Run(Step::Connect));
    s.done(Outcome::Connected, t0);
    assert_eq!(s.next(t0), check(false, true));
    s.done(checked(true, false), t0);
    s.model(1);
    assert_eq!(s.next(t0), Next::Run(Step::Reconcile));
    s.done(Outcome::Committed { refused: false }, t0);
    assert_eq!(s.written(), 1);
    s
}

fn check(tree: bool, sriov: bool) -> Next {
    Next::Run(Step::Check { tree, sriov })
}

fn checked(intact: bool, sriov_changed: bool) -> Outcome {
    Outcome::Checked {
        intact,
        sriov_changed,
    }
}

#[test]
fn start_connects_reads_sriov_then_waits_for_a_model_and_reconciles_it() {
    let t0 = Instant::now();
    let mut s = Schedule::new(t0);
    assert_eq!(s.next(t0), Next::Run(Step::Connect));
    s.done(Outcome::Connected, t0);
    assert_eq!(s.next(t0), check(false, true));
    s.done(checked(true, false), t0);
    // No model yet: nothing to write, the periodic check is the deadline.
    assert_eq!(s.next(t0), Next::Wait(Some(t0 + CHECK_AFTER)));
    s.model(1);
    assert_eq!(s.next(t0), Next::Run(Step::Reconcile));
    s.done(Outcome::Committed { refused: false }, t0);
    assert_eq!(s.written(), 1);
    assert_eq!(s.next(t0), Next::Wait(Some(t0 + CHECK_AFTER)));
}

#[test]
fn a_lost_connection_is_reopened_with_growing_backoff_then_reconciled() {
    let t0 = Instant::now();
    let mut s = Schedule::new(t0);
    s.model(1);
    let mut now = t0;
    let mut pauses = Vec::new();
    for _ in 0..4 {
        assert_eq!(s.next(now), Next::Run(Step::Connect));
        s.done(Outcome::Lost, now);
        let Next::Wait(Some(at)) = s.next(now) else {
            panic!("no reconnection scheduled")
        };
        pauses.push(at - now);
        now = at;
    }
    assert_eq!(pauses, [250 * MS, 500 * MS, 1000 * MS, 2000 * MS]);
    // Opening is not enough to count as back: it must work.
    assert_eq!(s.next(now), Next::Run(Step::Connect));
    s.done(Outcome::Connected, now);
    assert_eq!(s.next(now), check(false, true));
    s.done(Outcome::Lost, now);
    assert_eq!(s.next(now), Next::Wait(Some(now + 4000 * MS)));
    now += 4000 * MS;
    assert_eq!(s.next(now), Next::Run(Step::Connect));
    s.done(Outcome::Connected, now);
    s.next(now);
    s.done(checked(true, false), now);
    assert_eq!(s.next(now), Next::Run(Step::Reconcile));
    s.done(Outcome::Committed { refused: false }, now);
    // Back for real: the next loss starts the backoff again.
    s.lost(now);
    assert_eq!(s.next(now), Next::Wait(Some(now + 250 * MS)));
}

#[test]
fn a_watch_and_a_model_together_check_the_tree_before_publishing() {
    // The resume race: the new domain's watch and a change set (DHCP
    // renewal, DAD after the thaw) arrive together.
    let t0 = Instant::now();
    let mut s = running(t0);
    s.model(2);
    s.watch(true, false);
    assert_eq!(s.next(t0), check(true, false));
    s.done(checked(false, false), t0);
    assert_eq!(s.next(t0), Next::Run(Step::Reconcile));
    s.done(Outcome::Committed { refused: false }, t0);
    assert_eq!(s.written(), 2);
}

#[test]
fn a_publish_that_finds_another_tree_turns_into_a_reconcile() {
    // The model won the race: the transaction's canary tells.
    let t0 = Instant::now();
    let mut s = running(t0);
    s.model(2);
    assert_eq!(s.next(t0), Next::Run(Step::Publish));
    s.watch(true, false); // fired while the publish ran
    s.done(Outcome::Mismatch, t0);
    assert_eq!(s.written(), 1, "nothing was committed");
    // The pending reconciliation makes the check pointless.
    assert_eq!(s.next(t0), Next::Run(Step::Reconcile));
    s.done(Outcome::Committed { refused: false }, t0);
    assert_eq!(s.written(), 2);
    assert_eq!(s.next(t0), Next::Wait(Some(t0 + CHECK_AFTER)));
}

#[test]
fn the_periodic_check_counts_from_the_last_proof_that_the_tree_is_there() {
    let t0 = Instant::now();
    let mut s = running(t0);
    // A change set every 30 s proves the tree each time: no check needed.
    for n in 1..=4u32 {
        let now = t0 + Duration::from_secs(30) * n;
        assert_eq!(
            s.next(now),
            Next::Wait(Some(now - Duration::from_secs(30) + CHECK_AFTER))
        );
        s.model(u64::from(n) + 1);
        assert_eq!(s.next(now), Next::Run(Step::Publish));
        s.done(Outcome::Committed { refused: false }, now);
    }
    // Then idle: checked 60 s after the last commit, and again 60 s later.
    let last = t0 + Duration::from_secs(120);
    assert_eq!(
        s.next(last + CHECK_AFTER - MS),
        Next::Wait(Some(last + CHECK_AFTER))
    );
    assert_eq!(s.next(last + CHECK_AFTER), check(true, true));
    s.done(checked(true, false), last + CHECK_AFTER);
    assert_eq!(
        s.next(last + CHECK_AFTER),
        Next::Wait(Some(last + CHECK_AFTER * 2))
    );
    // A change set that writes nothing proves nothing.
    s.model(9);
    assert_eq!(s.next(last + CHECK_AFTER), Next::Run(Step::Publish));
    s.done(Outcome::Unchanged, last + CHECK_AFTER + MS);
    assert_eq!(s.written(), 9);
    assert_eq!(
        s.next(last + CHECK_AFTER * 2),
        check(true, true),
        "the check was not pushed back by a publish that sent nothing"
    );
}

#[test]
fn conflicts_are_retried_soon_then_later_and_models_wait() {
    let t0 = Instant::now();
    let mut s = running(t0);
    s.model(2);
    let mut now = t0;
    let mut holds = Vec::new();
    for _ in 1..MAX_TRIES {
        assert_eq!(s.next(now), Next::Run(Step::Publish));
        s.done(Outcome::Conflict, now);
        s.model(s.handed() + 1); // newer models wait for the retry
        let Next::Wait(Some(at)) = s.next(now) else {
            panic!("no retry scheduled")
        };
        holds.push(at - now);
        now = at;
    }
    assert_eq!(holds, [10, 20, 40, 80, 160, 320, 640].map(|m| m * MS));
    assert_eq!(s.next(now), Next::Run(Step::Publish));
    s.done(Outcome::Conflict, now);
    assert_eq!(s.next(now), Next::Wait(Some(now + Duration::from_secs(1))));
    now += Duration::from_secs(1);
    assert_eq!(s.next(now), Next::Run(Step::Publish));
    s.done(Outcome::Committed { refused: false }, now);
    assert_eq!(s.written(), s.handed(), "the newest model was written");
}

#[test]
fn a_refused_commit_is_not_a_conflict_and_is_tried_later() {
    let t0 = Instant::now();
    let mut s = running(t0);
    s.model(2);
    assert_eq!(s.next(t0), Next::Run(Step::Publish));
    s.done(Outcome::Refused, t0);
    assert_eq!(s.next(t0), Next::Wait(Some(t0 + Duration::from_secs(1))));
    let t1 = t0 + Duration::from_secs(1);
    assert_eq!(s.next(t1), Next::Run(Step::Publish));
    s.done(Outcome::Refused, t1);
    assert_eq!(s.next(t1), Next::Wait(Some(t1 + Duration::from_secs(2))));
    // A watch ends the pause: something changed.
    s.watch(true, false);
    assert_eq!(s.next(t1), check(true, false));
}

#[test]
fn nodes_over_a_quota_are_tried_again_and_newer_models_go_first() {
    let t0 = Instant::now();
    let mut s = running(t0);
    s.model(2);
    assert_eq!(s.next(t0), Next::Run(Step::Publish));
    s.done(Outcome::Committed { refused: true }, t0);
    assert_eq!(s.written(), 2);
    let retry = t0 + Duration::from_secs(1);
    assert_eq!(s.next(t0), Next::Wait(Some(retry)));
    s.model(3);
    assert_eq!(s.next(t0), Next::Run(Step::Publish), "a model waited");
    s.done(Outcome::Committed { refused: true }, t0 + MS);
    assert_eq!(
        s.next(t0 + MS),
        Next::Wait(Some(t0 + MS + Duration::from_secs(2)))
    );
    let t2 = t0 + MS + Duration::from_secs(2);
    assert_eq!(
        s.next(t2),
        Next::Run(Step::Publish),
        "no retry without a model"
    );
    s.done(Outcome::Committed { refused: false }, t2);
    assert_eq!(s.next(t2), Next::Wait(Some(t2 + CHECK_AFTER)));
}

#[test]
fn new_sriov_announcements_render_the_tree_again_without_a_new_model() {
    let t0 = Instant::now();
    let mut s = running(t0);
    s.watch(false, true);
    assert_eq!(s.next(t0), check(false, true));
    s.done(checked(true, true), t0);
    assert_eq!(s.next(t0), Next::Run(Step::Publish));
    s.done(Outcome::Committed { refused: false }, t0);
    assert_eq!(s.next(t0), Next::Wait(Some(t0 + CHECK_AFTER)));
}

#[test]
fn a_connection_lost_during_a_publish_reconciles_the_newest_model() {
    let t0 = Instant::now();
    let mut s = running(t0);
    s.model(2);
    assert_eq!(s.next(t0), Next::Run(Step::Publish));
    s.done(Outcome::Lost, t0);
    s.model(3);
    let t1 = t0 + 250 * MS;
    assert_eq!(s.next(t1), Next::Run(Step::Connect));
    s.done(Outcome::Connected, t1);
    assert_eq!(s.next(t1), check(false, true));
    s.done(checked(true, false), t1);
    assert_eq!(s.next(t1), Next::Run(Step::Reconcile));
    s.done(Outcome::Committed { refused: false }, t1);
    assert_eq!(s.written(), 3);
}

#[test]
fn a_clock_jump_checks_the_tree() {
    let t0 = Instant::now();
    let mut s = running(t0);
    s.clock_jumped();
    assert_eq!(s.next(t0), check(true, false));
    s.done(checked(true, false), t0);
    assert_eq!(s.next(t0), Next::Wait(Some(t0 + CHECK_AFTER)));
}
