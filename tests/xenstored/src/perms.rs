//! Node permissions, as xenstore defines them: the first entry names the
//! owner (who may do anything) and the access of every domain not listed;
//! later entries give the access of one domain each. Privileged callers
//! (dom0) bypass them.

use std::fmt;

use crate::wire::Errno;

/// What one permission entry grants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// `n`: nothing.
    None,
    /// `r`: read.
    Read,
    /// `w`: write.
    Write,
    /// `b`: read and write.
    Both,
}

impl Access {
    fn letter(self) -> char {
        match self {
            Access::None => 'n',
            Access::Read => 'r',
            Access::Write => 'w',
            Access::Both => 'b',
        }
    }

    fn can_read(self) -> bool {
        matches!(self, Access::Read | Access::Both)
    }

    fn can_write(self) -> bool {
        matches!(self, Access::Write | Access::Both)
    }
}

/// One entry: `<letter><domid>`, e.g. `r5`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Perm {
    /// The domain the entry is about.
    pub domid: u32,
    /// What it grants.
    pub access: Access,
}

impl Perm {
    /// Parses `n0`, `r5`, `w5`, `b5`.
    pub fn parse(s: &str) -> Result<Perm, Errno> {
        let mut chars = s.chars();
        let access = match chars.next() {
            Some('n') => Access::None,
            Some('r') => Access::Read,
            Some('w') => Access::Write,
            Some('b') => Access::Both,
            _ => return Err(Errno::EINVAL),
        };
        let digits = chars.as_str();
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Errno::EINVAL);
        }
        let domid = digits.parse().map_err(|_| Errno::EINVAL)?;
        Ok(Perm { domid, access })
    }
}

impl fmt::Display for Perm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.access.letter(), self.domid)
    }
}

/// What a caller may do with a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Rights {
    /// May read the value, list children, get permissions.
    pub read: bool,
    /// May write, create children, remove.
    pub write: bool,
    /// May change the permissions.
    pub owner: bool,
}

/// A node's permission list; never empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Perms(Vec<Perm>);

impl Perms {
    /// Owned by `owner`, others get `others`.
    pub fn new(owner: u32, others: Access) -> Perms {
        Perms(vec![Perm {
            domid: owner,
            access: others,
        }])
    }

    /// Adds an entry for one domain.
    pub fn with(mut self, domid: u32, access: Access) -> Perms {
        self.0.push(Perm { domid, access });
        self
    }

    /// Parses a list such as `["n0", "r5"]`; empty lists are invalid.
    pub fn parse<S: AsRef<str>>(list: &[S]) -> Result<Perms, Errno> {
        if list.is_empty() {
            return Err(Errno::EINVAL);
        }
        list.iter()
            .map(|s| Perm::parse(s.as_ref()))
            .collect::<Result<Vec<_>, _>>()
            .map(Perms)
    }

    /// Parses the `xenstore-ls -p` form, `n0,r5` (also accepts spaces).
    pub fn parse_list(s: &str) -> Result<Perms, Errno> {
        let parts: Vec<&str> = s
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|p| !p.is_empty())
            .collect();
        Perms::parse(&parts)
    }

    /// The entries, owner first.
    pub fn entries(&self) -> &[Perm] {
        &self.0
    }

    /// The owning domain.
    pub fn owner(&self) -> u32 {
        self.0[0].domid
    }

    /// Replaces the owner, keeping the default access and the other entries
    /// (what C xenstored does to nodes an unprivileged domain creates).
    pub fn set_owner(&mut self, domid: u32) {
        self.0[0].domid = domid;
    }

    /// The rights of `domid`: owner gets all, then the first entry naming
    /// it, else the default (`perm_for_conn` in C xenstored).
    pub fn rights(&self, domid: u32, privileged: bool) -> Rights {
        if privileged || self.owner() == domid {
            return Rights {
                read: true,
                write: true,
                owner: true,
            };
        }
        let access = self.0[1..]
            .iter()
            .find(|p| p.domid == domid)
            .unwrap_or(&self.0[0])
            .access;
        Rights {
            read: access.can_read(),
            write: access.can_write(),
            owner: false,
        }
    }

    /// The `XS_GET_PERMS` reply: each entry NUL-terminated.
    pub fn to_wire(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for p in &self.0 {
            out.extend_from_slice(p.to_string().as_bytes());
            out.push(0);
        }
        out
    }

    /// Size of the entries in C xenstored's node record (8 bytes each),
    /// which counts toward the node size limit.
    pub fn record_len(&self) -> usize {
        8 * self.0.len()
    }
}

/// The `xenstore-ls -p` form: `n0,r5`.
impl fmt::Display for Perms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_format() {
        let p = Perms::parse(&["n0", "r5"]).unwrap();
        assert_eq!(p.to_string(), "n0,r5");
        assert_eq!(p.to_wire(), b"n0\0r5\0");
        assert_eq!(Perms::parse_list("n5 r0").unwrap().to_string(), "n5,r0");
        for bad in ["", "x1", "r", "r-1", "r1a"] {
            assert_eq!(Perm::parse(bad), Err(Errno::EINVAL), "{bad:?}");
        }
        assert_eq!(Perms::parse::<&str>(&[]), Err(Errno::EINVAL));
    }

    #[test]
    fn rights() {
        let home = Perms::new(0, Access::None).with(5, Access::Read);
        assert!(home.rights(5, false).read);
        assert!(!home.rights(5, false).write);
        assert!(!home.rights(6, false).read);
        assert!(home.rights(6, true).write);
        let guest = Perms::new(5, Access::None);
        assert!(guest.rights(5, false).owner);
        let vif = Perms::new(5, Access::None).with(0, Access::Read);
        assert!(!vif.rights(7, false).read);
        let open = Perms::new(0, Access::Both);
        assert!(open.rights(7, false).write);
        assert!(!open.rights(7, false).owner);
    }
}
