//! Changing the guest's network configuration when dom0 asks for it (the
//! static IP setting): at once through netlink ([`live`]), and across
//! reboots through the configuration of the network manager the guest runs
//! ([`persist`]).
//!
//! Only Linux is supported; elsewhere [`live`] says so.

use std::net::{Ipv4Addr, Ipv6Addr};

pub mod dbus;
pub mod live;
pub mod persist;

/// A static address of one family: `address/prefix`, and the default
/// gateway through it, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Static<A> {
    /// The interface's address.
    pub address: A,
    /// Its prefix length (0..=32, 0..=128).
    pub prefix: u8,
    /// The default route's next hop, on the same link.
    pub gateway: Option<A>,
}

/// What IPv4 on an interface should become.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum V4 {
    /// This address (and gateway), and no other global IPv4 address.
    Static(Static<Ipv4Addr>),
    /// Addresses from DHCP (the network manager's DHCP client).
    Dhcp,
}

/// What IPv6 on an interface should become.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum V6 {
    /// This address (and gateway), and no other global IPv6 address.
    Static(Static<Ipv6Addr>),
    /// Addresses from router advertisements (SLAAC, or DHCPv6 when the
    /// router says so).
    Autoconf,
}

/// What one interface should become; `None` leaves a family as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Wanted {
    /// IPv4.
    pub v4: Option<V4>,
    /// IPv6.
    pub v6: Option<V6>,
}
