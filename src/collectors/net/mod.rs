//! Network interfaces: links, their Xen identity, and their addresses.
//!
//! Two collectors report the same facts (see [`crate::state::Interface`]):
//! `netlink` follows the kernel's events on Linux, `pnet` polls the
//! interface list anywhere. Both identify VIFs the same way ([`vif`]).

use super::{Config, EventStream};
use crate::cli::Network;

#[cfg(all(feature = "net_netlink", target_os = "linux"))]
mod netlink;
#[cfg(feature = "net_pnet")]
mod pnet;
#[cfg(any(feature = "net_netlink", feature = "net_pnet"))]
pub mod vif;

/// The configured network collector, if any.
pub fn stream(config: &Config) -> Option<EventStream> {
    match config.network {
        #[cfg(all(feature = "net_netlink", target_os = "linux"))]
        Network::Netlink => Some(netlink::stream(config)),
        #[cfg(feature = "net_pnet")]
        Network::Pnet => Some(pnet::stream(config)),
        Network::None => None,
    }
}
