//! Xenstore node paths: resolution of relative paths and the validity rules
//! of C xenstored (`is_valid_nodename`).

use crate::wire::{Errno, ABS_PATH_MAX, REL_PATH_MAX};

/// The home of a domain, where its relative paths resolve.
pub fn domain_path(domid: u32) -> String {
    format!("/local/domain/{domid}")
}

/// Resolves `path` as C xenstored does: absolute paths and special `@...`
/// names stay, anything else is relative to `home`.
pub fn canonicalize(path: &str, home: &str) -> String {
    if path.starts_with('/') || path.starts_with('@') {
        path.to_string()
    } else {
        format!("{home}/{path}")
    }
}

/// Whether a watch path names an event rather than a node.
pub fn is_special(path: &str) -> bool {
    path.starts_with('@')
}

/// Checks a canonical path. Unprivileged callers are limited to
/// [`REL_PATH_MAX`] bytes below any domain's home; everyone to
/// [`ABS_PATH_MAX`]. Special `@names` are allowed only for watches.
pub fn validate(path: &str, privileged: bool, allow_special: bool) -> Result<(), Errno> {
    let valid_chars = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'/' | b'_' | b'@'))
    };
    if allow_special && is_special(path) {
        return if valid_chars(path) && path.len() <= ABS_PATH_MAX {
            Ok(())
        } else {
            Err(Errno::EINVAL)
        };
    }
    if !path.starts_with('/')
        || (path.ends_with('/') && path != "/")
        || path.contains("//")
        || !valid_chars(path)
        || path.len() > ABS_PATH_MAX
    {
        return Err(Errno::EINVAL);
    }
    if !privileged && path.len() - home_prefix_len(path) > REL_PATH_MAX {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

/// Length of a leading `/local/domain/<domid>/`, 0 when there is none.
fn home_prefix_len(path: &str) -> usize {
    let Some(rest) = path.strip_prefix("/local/domain/") else {
        return 0;
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits > 0 && rest.as_bytes().get(digits) == Some(&b'/') {
        "/local/domain/".len() + digits + 1
    } else {
        0
    }
}

/// The parent of a canonical path; `None` for `/`.
pub fn parent(path: &str) -> Option<&str> {
    if path == "/" {
        return None;
    }
    match path.rfind('/') {
        Some(0) => Some("/"),
        Some(i) => Some(&path[..i]),
        None => None,
    }
}

/// The last component of a canonical path.
pub fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Joins a parent path and a child name.
pub fn join(parent: &str, child: &str) -> String {
    if parent == "/" {
        format!("/{child}")
    } else {
        format!("{parent}/{child}")
    }
}

/// Whether `path` is `ancestor` or below it.
pub fn is_within(path: &str, ancestor: &str) -> bool {
    if ancestor == "/" {
        return path.starts_with('/');
    }
    path == ancestor
        || (path.starts_with(ancestor) && path.as_bytes().get(ancestor.len()) == Some(&b'/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolution() {
        let home = domain_path(5);
        assert_eq!(canonicalize("data/x", &home), "/local/domain/5/data/x");
        assert_eq!(canonicalize("/vm", &home), "/vm");
        assert_eq!(canonicalize("@releaseDomain", &home), "@releaseDomain");
    }

    #[test]
    fn validity() {
        for bad in ["", "x", "/a/", "/a//b", "/a b", "/a.b", "/é"] {
            assert_eq!(validate(bad, true, false), Err(Errno::EINVAL), "{bad:?}");
        }
        for good in ["/", "/a", "/local/domain/5/data/x-y_z@1"] {
            assert_eq!(validate(good, false, false), Ok(()), "{good:?}");
        }
        assert_eq!(validate("@releaseDomain", true, false), Err(Errno::EINVAL));
        assert_eq!(validate("@releaseDomain", true, true), Ok(()));
        let long = format!("/local/domain/5/{}", "a".repeat(REL_PATH_MAX));
        assert_eq!(validate(&long, false, false), Ok(()));
        let longer = format!("{long}b");
        assert_eq!(validate(&longer, false, false), Err(Errno::EINVAL));
        assert_eq!(validate(&longer, true, false), Ok(()));
    }

    #[test]
    fn structure() {
        assert_eq!(parent("/"), None);
        assert_eq!(parent("/local"), Some("/"));
        assert_eq!(parent("/local/domain"), Some("/local"));
        assert_eq!(basename("/local/domain"), "domain");
        assert_eq!(join("/", "local"), "/local");
        assert!(is_within("/a/b", "/a"));
        assert!(is_within("/a", "/a"));
        assert!(!is_within("/ab", "/a"));
        assert!(is_within("/ab", "/"));
    }
}
