//! The live half of a network change: addresses and default routes set on
//! the interface at once (Linux: rtnetlink).
//!
//! One [`Live`] holds a netlink route socket of its own for requests; each
//! operation reads the interface's state and changes what differs, so that
//! applying a setting twice is harmless. Elsewhere than on Linux every
//! operation fails and says so.

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub use linux::Live;

#[cfg(not(target_os = "linux"))]
mod other;
#[cfg(not(target_os = "linux"))]
pub use other::Live;

/// An interface as netlink names it: what [`Live::link_by_mac`] finds and
/// the other operations act on (by index; the name is for messages).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// The kernel's interface index.
    pub index: u32,
    /// Its name (not UTF-8 bytes replaced).
    pub name: String,
    /// Its MAC, lower case `aa:bb:cc:dd:ee:ff`.
    pub mac: String,
}

#[cfg(all(test, target_os = "linux"))]
mod tests;
