use super::*;

#[test]
fn major_and_minor_as_written() {
    let os = os_info("ubuntu", "22.04.4", "Ubuntu");
    assert_eq!((&*os.major, &*os.minor), ("22", "04"));
    let os = os_info("fedora", "40", "Fedora");
    assert_eq!((&*os.major, &*os.minor), ("40", "0"));
    let os = os_info("x", "10.0~beta1", "x");
    assert_eq!((&*os.major, &*os.minor), ("10", "0"));
    let os = os_info("x", "10.~", "x");
    assert_eq!((&*os.major, &*os.minor), ("10", "0"));
}

#[test]
fn no_number_gives_no_major_and_no_minor() {
    for v in ["", "rolling", ".5", "trixie/sid"] {
        let os = os_info("arch", v, "Arch Linux");
        assert_eq!((&*os.major, &*os.minor), ("", ""), "{v:?}");
    }
}

#[test]
fn fields_are_cleaned_and_capped() {
    let os = os_info("x", " 1.2\n", &format!("A\x1b[31mB\t{}", "n".repeat(1000)));
    assert_eq!(os.version, "1.2");
    assert!(os.name.starts_with("A[31mBn"));
    assert_eq!(os.name.chars().count(), MAX_FIELD);
}

#[test]
fn stream_reports_this_system_once() {
    use futures::{FutureExt, StreamExt};
    let events: Vec<Event> = stream().collect().now_or_never().unwrap();
    assert!(matches!(&events[..], [Event::Os(os)] if !os.distro.is_empty() && !os.name.is_empty()));
}
