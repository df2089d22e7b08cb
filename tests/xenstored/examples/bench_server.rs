//! The test xenstored driven from a script, for the benchmark suite
//! (`bench/`): `cargo build --release -p test-xenstored --example
//! bench_server`, then
//!
//! ```text
//! bench_server --socket PATH [--domid N]
//! ```
//!
//! serves the guest socket like `test-xenstored` and answers one command per
//! line of standard input with one line on standard output, so that a
//! benchmark can count the requests the agent makes per change (the binary
//! only prints totals when it exits, and cannot tell unchanged writes):
//!
//! - `reset`: forget the operations logged so far → `ok`
//! - `counts`: the guest's requests since the last reset →
//!   `{"total":N,"kinds":{"WRITE":N,...},"unchanged_writes":N,"unchanged":["path",...],"failed":N}`
//! - `wait-exists PATH SECS`, `wait-absent PATH SECS`,
//!   `wait-value PATH VALUE SECS` → `true` or `false`
//! - `read PATH` → the value as a JSON string, or `null`
//! - `tree PATH` → `{"abs/path":"value",...}` of every node at or below PATH
//! - `quit` (or end of input) → exits.

use std::io::{BufRead, Write};
use std::time::Duration;

use test_xenstored::{OpLogExt, Server};

fn main() {
    let mut socket = None;
    let mut domid = 1u32;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--socket" => socket = args.next(),
            "--domid" => domid = args.next().and_then(|v| v.parse().ok()).unwrap_or(1),
            other => {
                eprintln!("bench_server: unknown argument {other:?}");
                std::process::exit(64);
            }
        }
    }
    let Some(socket) = socket else {
        eprintln!("usage: bench_server --socket PATH [--domid N]");
        std::process::exit(64);
    };
    let xs = Server::builder()
        .socket(&socket)
        .domid(domid)
        .start()
        .expect("cannot start the test xenstored");
    let stdin = std::io::stdin();
    let mut out = std::io::stdout().lock();
    // Announce readiness: the socket is listening.
    writeln!(out, "ready").unwrap();
    out.flush().unwrap();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        let words: Vec<&str> = line.split_whitespace().collect();
        let secs = |s: &str| Duration::from_secs_f64(s.parse().unwrap_or(10.0));
        let reply = match words.as_slice() {
            ["reset"] => {
                xs.reset_ops();
                "ok".to_string()
            }
            ["counts"] => counts(&xs),
            ["wait-exists", p, t] => xs.wait_exists(p, secs(t)).to_string(),
            ["wait-absent", p, t] => xs.wait_for(secs(t), |v| !v.exists(p)).to_string(),
            ["wait-value", p, v, t] => xs.wait_value(p, v, secs(t)).to_string(),
            ["read", p] => xs.read(p).map_or("null".to_string(), |v| js(&v)),
            ["tree", p] => {
                let items: Vec<String> = xs
                    .tree(p)
                    .iter()
                    .map(|(k, n)| format!("{}:{}", js(k), js(&n.value)))
                    .collect();
                format!("{{{}}}", items.join(","))
            }
            ["quit"] => break,
            _ => format!("error: unknown command {line:?}"),
        };
        writeln!(out, "{reply}").unwrap();
        out.flush().unwrap();
    }
}

/// The guest's requests since the last reset, as one JSON object.
fn counts(xs: &Server) -> String {
    let ops = xs.ops();
    let guest: Vec<_> = ops.by_guest().into_iter().cloned().collect();
    let kinds: Vec<String> = guest
        .counts()
        .iter()
        .map(|(k, n)| format!("{}:{n}", js(&k.to_string())))
        .collect();
    let unchanged: Vec<String> = guest
        .unchanged_writes()
        .iter()
        .map(|o| js(o.path.as_deref().unwrap_or("?")))
        .collect();
    let failed = guest.iter().filter(|o| o.result.is_err()).count();
    format!(
        "{{\"total\":{},\"kinds\":{{{}}},\"unchanged_writes\":{},\"unchanged\":[{}],\"failed\":{failed}}}",
        guest.len(),
        kinds.join(","),
        unchanged.len(),
        unchanged.iter().take(20).cloned().collect::<Vec<_>>().join(",")
    )
}

/// A JSON string literal.
fn js(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}
