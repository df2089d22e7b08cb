use std::process::{Child, Command, Stdio};

use super::*;

#[test]
fn a_method_call_is_marshalled_as_the_specification_says() {
    let m = encode_call(
        2,
        "org.freedesktop.network1",
        "/org/freedesktop/network1",
        "org.freedesktop.network1.Manager",
        "ReconfigureLink",
        &[Arg::I32(3)],
    )
    .unwrap();
    // Fixed header: little endian, METHOD_CALL, no flags, version 1, body
    // of 4 bytes, serial 2.
    assert_eq!(&m[..12], &[b'l', 1, 0, 1, 4, 0, 0, 0, 2, 0, 0, 0]);
    // The body is 8-aligned after the fields, and is the int32 3.
    assert_eq!(m.len() % 8, 4);
    assert_eq!(&m[m.len() - 4..], &[3, 0, 0, 0]);
    // The first field: PATH (1), signature "o", the path.
    assert_eq!(&m[16..20], &[1, 1, b'o', 0]);
    assert_eq!(&m[20..24], &(25u32).to_le_bytes());
    assert_eq!(&m[24..49], b"/org/freedesktop/network1");
    // Read back by the parser (as a peer would): the signature field.
    let parsed = parse_message(&m).unwrap();
    assert_eq!(parsed.kind, METHOD_CALL);
    assert_eq!(parsed.values, vec![Value::I32(3)]);
}

#[test]
fn mixed_arguments_are_aligned() {
    let m = encode_call(
        7,
        "d.e",
        "/",
        "i.f",
        "M",
        &[
            Arg::Str("ab"),
            Arg::I32(-1),
            Arg::Path("/x/y"),
            Arg::Bool(true),
            Arg::U32(9),
        ],
    )
    .unwrap();
    let parsed = parse_message(&m).unwrap();
    assert_eq!(
        parsed.values,
        vec![
            Value::Str("ab".into()),
            Value::I32(-1),
            Value::Path("/x/y".into()),
            Value::Bool(true),
            Value::U32(9)
        ]
    );
}

#[test]
fn invalid_arguments_are_refused_before_sending() {
    assert!(encode_call(1, "d", "no-slash", "i", "m", &[]).is_err());
    assert!(encode_call(1, "d", "/a//b", "i", "m", &[]).is_err());
    assert!(encode_call(1, "d", "/a/", "i", "m", &[]).is_err());
    assert!(encode_call(1, "d", "/a-b", "i", "m", &[]).is_err());
    assert!(encode_call(1, "d", "/", "i", "m", &[Arg::Str("a\0b")]).is_err());
    assert!(encode_call(1, "d", "/", "i", "m", &[Arg::Path("x")]).is_err());
}

/// A METHOD_RETURN or ERROR, big endian when `big`.
fn reply(kind: u8, big: bool, reply_serial: u32, error: Option<&str>, body: &[Value]) -> Vec<u8> {
    let u32b = |v: u32| {
        if big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let pad = |b: &mut Vec<u8>, to: usize| {
        while b.len() % to != 0 {
            b.push(0);
        }
    };
    let mut sig = String::new();
    let mut bodyb = Vec::new();
    for v in body {
        match v {
            Value::Str(s) | Value::Path(s) => {
                sig.push(if matches!(v, Value::Str(_)) { 's' } else { 'o' });
                pad(&mut bodyb, 4);
                bodyb.extend_from_slice(&u32b(s.len() as u32));
                bodyb.extend_from_slice(s.as_bytes());
                bodyb.push(0);
            }
            Value::Bool(b) => {
                sig.push('b');
                pad(&mut bodyb, 4);
                bodyb.extend_from_slice(&u32b(u32::from(*b)));
            }
            _ => unimplemented!(),
        }
    }
    // Fields start at offset 16 of the message: build them in place.
    let mut m = vec![if big { b'B' } else { b'l' }, kind, 0, 1];
    m.extend_from_slice(&[0; 12]);
    m.extend_from_slice(&[5, 1, b'u', 0]);
    m.extend_from_slice(&u32b(reply_serial));
    if let Some(e) = error {
        pad(&mut m, 8);
        m.extend_from_slice(&[4, 1, b's', 0]);
        m.extend_from_slice(&u32b(e.len() as u32));
        m.extend_from_slice(e.as_bytes());
        m.push(0);
    }
    if !sig.is_empty() {
        pad(&mut m, 8);
        m.extend_from_slice(&[8, 1, b'g', 0, sig.len() as u8]);
        m.extend_from_slice(sig.as_bytes());
        m.push(0);
    }
    let fields_len = m.len() - 16;
    pad(&mut m, 8);
    m.extend_from_slice(&bodyb);
    m[4..8].copy_from_slice(&u32b(bodyb.len() as u32));
    m[8..12].copy_from_slice(&u32b(99));
    m[12..16].copy_from_slice(&u32b(fields_len as u32));
    m
}

#[test]
fn replies_of_either_endianness_parse() {
    for big in [false, true] {
        let m = reply(
            METHOD_RETURN,
            big,
            5,
            None,
            &[Value::Path("/org/x/1".into())],
        );
        let p = parse_message(&m).unwrap();
        assert_eq!((p.kind, p.reply_serial), (METHOD_RETURN, Some(5)));
        assert_eq!(p.values, vec![Value::Path("/org/x/1".into())]);
        let m = reply(
            ERROR,
            big,
            6,
            Some("org.freedesktop.DBus.Error.AccessDenied"),
            &[Value::Str("no".into())],
        );
        let p = parse_message(&m).unwrap();
        assert_eq!(
            p.error_name.as_deref(),
            Some("org.freedesktop.DBus.Error.AccessDenied")
        );
        assert_eq!(p.values, vec![Value::Str("no".into())]);
    }
}

#[test]
fn truncated_or_garbage_messages_are_errors_not_panics() {
    let m = reply(METHOD_RETURN, false, 5, None, &[Value::Str("hello".into())]);
    for n in 0..m.len() {
        assert!(parse_message(&m[..n]).is_err(), "{n} bytes");
    }
    let mut bad = m.clone();
    bad[0] = b'x';
    assert!(parse_message(&bad).is_err());
    let mut huge = m.clone();
    huge[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(parse_message(&huge).is_err());
    // A string length pointing past the end.
    let mut long = m;
    let at = long.len() - 10;
    long[at..at + 4].copy_from_slice(&1000u32.to_le_bytes());
    assert!(parse_message(&long).is_err());
}

/// A private dbus-daemon on a socket of its own, or `None` (with the
/// reason printed; under CI=true, a failure) when there is none.
struct Daemon {
    child: Child,
    dir: PathBuf,
}

impl Daemon {
    fn start() -> Option<Daemon> {
        let dir = std::env::temp_dir().join(format!("xga-dbus-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let address = format!("unix:path={}", dir.join("bus").display());
        let child = Command::new("dbus-daemon")
            .args([
                "--session",
                "--nofork",
                "--nopidfile",
                "--address",
                &address,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let Ok(child) = child else {
            let why = "dbus-daemon is not installed (tests/run.sh deps installs it)";
            println!("SKIPPED: {why}");
            assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "{why}");
            return None;
        };
        let d = Daemon { child, dir };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !d.dir.join("bus").exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "dbus-daemon did not listen"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        Some(d)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn calls_to_a_real_dbus_daemon_return_values_and_errors() {
    let Some(d) = Daemon::start() else { return };
    runtime().block_on(async {
        let mut bus = Bus::connect(&d.dir.join("bus")).await.unwrap();
        const DBUS: (&str, &str, &str) = (
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
        );
        let id = bus
            .call(DBUS.0, DBUS.1, DBUS.2, "GetId", &[])
            .await
            .unwrap();
        assert!(
            matches!(&id[..], [Value::Str(s)] if s.len() == 32),
            "{id:?}"
        );
        let owner = bus
            .call(
                DBUS.0,
                DBUS.1,
                DBUS.2,
                "GetNameOwner",
                &[Arg::Str("org.freedesktop.DBus")],
            )
            .await
            .unwrap();
        assert_eq!(owner, vec![Value::Str("org.freedesktop.DBus".into())]);
        let has = bus
            .call(
                DBUS.0,
                DBUS.1,
                DBUS.2,
                "NameHasOwner",
                &[Arg::Str("com.example.Nobody")],
            )
            .await
            .unwrap();
        assert_eq!(has, vec![Value::Bool(false)]);
        let e = bus
            .call(
                DBUS.0,
                DBUS.1,
                DBUS.2,
                "GetNameOwner",
                &[Arg::Str("com.example.Nobody")],
            )
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("org.freedesktop.DBus.Error.NameHasNoOwner"),
            "{e}"
        );
        // Every argument type, well-formed (the daemon would drop a
        // malformed message): refused for its signature, not dropped.
        let args = [
            Arg::Path("/a/b"),
            Arg::I32(-3),
            Arg::U32(7),
            Arg::Bool(true),
            Arg::Str("x"),
        ];
        let e = bus
            .call(DBUS.0, DBUS.1, DBUS.2, "GetNameOwner", &args)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("org.freedesktop.DBus.Error"), "{e}");
        // Still connected.
        bus.call(DBUS.0, DBUS.1, DBUS.2, "GetId", &[])
            .await
            .unwrap();
    });
}

#[test]
fn a_bus_that_does_not_answer_times_out_and_a_missing_one_is_an_error() {
    let dir = std::env::temp_dir().join(format!("xga-dbus-silent-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bus");
    runtime().block_on(async {
        let e = Bus::connect(&path).await.unwrap_err().to_string();
        assert!(e.contains("cannot connect to the D-Bus system bus"), "{e}");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 256];
            let _ = read_some(&s, &mut buf).await;
            let _ = &mut s;
            // Never answers the authentication.
            tokio::time::sleep(Duration::from_secs(30)).await;
        });
        let t0 = std::time::Instant::now();
        let e = Bus::connect_within(&path, Duration::from_millis(200))
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("timed out"), "{e}");
        assert!(t0.elapsed() < Duration::from_secs(5));
        server.abort();
    });
    let _ = std::fs::remove_dir_all(&dir);
}
