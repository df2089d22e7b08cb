//! Appending values to a line without `core::fmt` and without allocating:
//! the stdout publisher renders a line per change, and formatting through
//! `write!`, `to_string` and a char-by-char escaper was a third of the
//! agent's instructions per netlink event.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `n` in decimal.
pub fn uint(out: &mut String, n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut n = n;
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend(digits[at..].iter().map(|&d| char::from(d)));
}

/// `n` in lowercase hexadecimal, without leading zeros.
fn hex(out: &mut String, n: u16) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut started = false;
    for shift in [12, 8, 4, 0] {
        let d = (n >> shift) & 0xf;
        if d != 0 || started || shift == 0 {
            started = true;
            out.push(char::from(DIGITS[usize::from(d)]));
        }
    }
}

/// An address as `std`'s `Display` writes it.
pub fn ip(out: &mut String, addr: &IpAddr) {
    match addr {
        IpAddr::V4(a) => ipv4(out, a),
        IpAddr::V6(a) => ipv6(out, a),
    }
}

/// `a.b.c.d`.
fn ipv4(out: &mut String, a: &Ipv4Addr) {
    for (i, octet) in a.octets().into_iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        uint(out, octet.into());
    }
}

/// RFC 5952 text, exactly as `std` writes it: lowercase hexadecimal
/// groups without leading zeros, the longest run of two or more zero groups
/// (the first of equally long ones) as `::`, and IPv4-mapped addresses as
/// `::ffff:a.b.c.d`.
fn ipv6(out: &mut String, a: &Ipv6Addr) {
    if let Some(v4) = a.to_ipv4_mapped() {
        out.push_str("::ffff:");
        return ipv4(out, &v4);
    }
    let groups = a.segments();
    // The longest run of zero groups: (start, length).
    let (mut best, mut run) = ((0, 0), (0, 0));
    for (i, &g) in groups.iter().enumerate() {
        if g != 0 {
            run = (i + 1, 0);
            continue;
        }
        run.1 += 1;
        if run.1 > best.1 {
            best = run;
        }
    }
    let list = |out: &mut String, groups: &[u16]| {
        for (i, &g) in groups.iter().enumerate() {
            if i > 0 {
                out.push(':');
            }
            hex(out, g);
        }
    };
    if best.1 > 1 {
        list(out, &groups[..best.0]);
        out.push_str("::");
        list(out, &groups[best.0 + best.1..]);
    } else {
        list(out, &groups);
    }
}

/// A JSON string literal: runs of bytes that need no escape are copied at
/// once.
pub fn json_string(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    let mut plain = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        // Escaped bytes are ASCII: `i` is a character boundary.
        out.push_str(&s[plain..i]);
        if escape.is_empty() {
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        } else {
            out.push_str(escape);
        }
        plain = i + 1;
    }
    out.push_str(&s[plain..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(f: impl FnOnce(&mut String)) -> String {
        let mut s = String::from("~");
        f(&mut s);
        s
    }

    #[test]
    fn integers() {
        for n in [0, 1, 9, 10, 99, 100, 4096, u64::from(u32::MAX), u64::MAX] {
            assert_eq!(with(|s| uint(s, n)), format!("~{n}"));
        }
    }

    /// A small deterministic generator (xorshift), for many addresses.
    fn numbers(mut x: u64) -> impl Iterator<Item = u64> {
        std::iter::repeat_with(move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        })
    }

    #[test]
    fn addresses_are_written_as_std_writes_them() {
        let mut addrs: Vec<IpAddr> = [
            "0.0.0.0",
            "255.255.255.255",
            "10.0.0.1",
            "::",
            "::1",
            "1::",
            "::ffff:10.0.0.1",
            "::ffff:0.0.0.0",
            "::10.0.0.1",
            "64:ff9b::192.0.2.33",
            "fe80::1",
            "2001:db8::1:0:0:1",
            "2001:db8:0:0:1:0:0:1",
            "2001:0:0:1::1",
            "1:0:1:0:1:0:1:0",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        ]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
        // Every pattern of zero and non-zero groups, with varied values.
        let mut values = numbers(0x9e3779b97f4a7c15);
        for pattern in 0u16..256 {
            let mut groups = [0u16; 8];
            for (i, g) in groups.iter_mut().enumerate() {
                if pattern & (1 << i) != 0 {
                    // Short and long groups, never zero.
                    let shift = values.next().unwrap() % 16;
                    *g = (values.next().unwrap() as u16 >> shift).max(1);
                }
            }
            addrs.push(Ipv6Addr::from(groups).into());
        }
        for v in numbers(42).take(2000) {
            addrs.push(Ipv4Addr::from(v as u32).into());
            let wide = u128::from(v) << 64 | u128::from(v.rotate_left(17));
            addrs.push(Ipv6Addr::from(wide).into());
            addrs.push(Ipv6Addr::from(wide & 0xffff_0000_ffff_0000_0000_ffff_0000_ffff).into());
        }
        for a in &addrs {
            assert_eq!(with(|s| ip(s, a)), format!("~{a}"), "{a:?}");
        }
    }

    #[test]
    fn json_strings() {
        for s in [
            "",
            "eth0",
            "a\"b\\c",
            "\n\r\t",
            "\u{1}x\u{1f}",
            "é\u{fffd}日本",
            "\"",
            "end\\",
            "\u{7f}",
        ] {
            let out = with(|o| json_string(o, s));
            let back: String = serde_json::from_str(&out[1..]).expect(&out);
            assert_eq!(back, s);
        }
        assert_eq!(with(|o| json_string(o, "a\u{1}")), "~\"a\\u0001\"");
        assert_eq!(with(|o| json_string(o, "\u{1b}[")), "~\"\\u001b[\"");
    }
}
