//! Prints the probe transcript (tests/common/probe.rs) of a xenstored, as
//! the guest sees it: run inside a real Xen guest (default
//! `/dev/xen/xenbus`) to record C xenstored's behaviour, or against any
//! socket (`conformance PATH`, or `XENSTORED_PATH`).

#[path = "../tests/common/probe.rs"]
mod probe;

fn main() {
    let path = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("XENSTORED_PATH").ok())
        .unwrap_or_else(|| "/dev/xen/xenbus".to_string());
    let mut c = match test_xenstored::Client::connect(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("conformance: cannot open {path}: {e}");
            std::process::exit(2);
        }
    };
    for line in probe::run(&mut c, std::time::Duration::from_millis(300)) {
        println!("{line}");
    }
}
