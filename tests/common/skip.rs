//! What a test that cannot run here does: says why and skips, or, under
//! `CI=true`, fails (CI must run every test).

/// `test` cannot run, because of `why`: under `CI=true` this panics;
/// otherwise it prints the reason, and the caller returns.
pub fn cannot_run(test: &str, why: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test} cannot run: {why} (CI=true: a test that cannot run fails)");
    }
    eprintln!("skipping {test}: {why}");
}

/// Whether this process is root; when not, [`cannot_run`].
pub fn root(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        cannot_run(test, "needs root (network namespaces)");
    }
    root
}
