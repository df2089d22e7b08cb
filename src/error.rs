//! The agent's one error type: what failed, on which object, why, and what
//! to do about it, so that every fatal message can be acted upon.

use std::fmt;

/// A failure, with its context.
#[derive(Debug)]
pub struct Error {
    /// What failed, naming the object (`cannot read /proc/meminfo`).
    what: String,
    /// The underlying error, if any.
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
    /// What the user can do about it.
    hint: Option<String>,
}

impl Error {
    /// A failure described by `what` alone.
    pub fn new(what: impl Into<String>) -> Error {
        Error {
            what: what.into(),
            source: None,
            hint: None,
        }
    }

    /// `what` failed because of `source`.
    pub fn io(
        what: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Error {
        Error {
            what: what.into(),
            source: Some(Box::new(source)),
            hint: None,
        }
    }

    /// Add what the user can do about it.
    pub fn hint(mut self, hint: impl Into<String>) -> Error {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.what)?;
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "; {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_says_what_why_and_what_to_do() {
        let e = Error::io(
            "cannot open /dev/xen/xenbus",
            std::io::Error::from_raw_os_error(libc::ENOENT),
        )
        .hint("load the xen_xenbus module");
        assert_eq!(
            e.to_string(),
            "cannot open /dev/xen/xenbus: No such file or directory (os error 2); load the \
             xen_xenbus module"
        );
        assert_eq!(Error::new("plain").to_string(), "plain");
    }
}
