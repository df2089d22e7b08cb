//! XAPI's static IP setting (`xe vif-configure-ipv4`/`-ipv6`): what
//! xenopsd writes under `xenserver/device/vif/<devid>/static-ip-setting/`
//! (SR-IOV VFs: `net-sriov-vf/<devid>/`), read strictly into a
//! [`Setting`], and the answer the agent writes back.
//!
//! Only what the contract allows parses: `enabled` `0` (leave IPv4 alone),
//! `1` (static, `address` = `a.b.c.d/prefix`, optional `gateway`), `2`
//! (DHCP), and the same for IPv6 (`enabled6`, `2` = autoconf). Anything
//! else is an [`Invalid`] request, refused as a whole.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::netconf::{Static, Wanted, V4, V6};
use crate::publishers::xenstore::native::Perm;

mod apply;
mod reload;
pub use apply::Apply;

/// Where xenopsd puts the settings of plain VIFs and of SR-IOV VFs.
pub const ROOTS: [&str; 2] = ["xenserver/device/vif", "xenserver/device/net-sriov-vf"];

/// The directory of one device's setting, under its root and id.
pub const DIR: &str = "static-ip-setting";

/// The leaves of a request, in the order [`Raw::values`] holds them.
pub const LEAVES: [&str; 7] = [
    "mac", "enabled", "address", "gateway", "enabled6", "address6", "gateway6",
];

/// Longest value read as part of a request: the longest valid one is an
/// IPv6 CIDR (43 bytes); anything longer is refused unread past this.
pub const MAX_VALUE: usize = 64;

/// The answer codes written in `error-code` (XAPI never reads them: they
/// are for people and scripts; `101` is the Windows agent's).
pub mod code {
    /// Done (`error-msg` may still say what was not made lasting).
    pub const DONE: &str = "0";
    /// The request does not parse: nothing was changed.
    pub const INVALID: &str = "1";
    /// The request's nodes are writable by another domain than dom0 and
    /// the guest: not trusted, nothing was changed.
    pub const UNTRUSTED: &str = "2";
    /// Applying failed (the kernel refused): see `error-msg`.
    pub const FAILED: &str = "3";
    /// No interface of the guest has that MAC.
    pub const NO_INTERFACE: &str = "101";
}

/// The values of one device's leaves as read (`None`: absent).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Raw {
    /// In [`LEAVES`] order.
    pub values: [Option<String>; 7],
}

impl Raw {
    fn get(&self, leaf: &str) -> Option<&str> {
        let i = LEAVES.iter().position(|l| *l == leaf)?;
        self.values[i].as_deref()
    }

    /// Whether the request asks for anything (`enabled` or `enabled6` is
    /// set to something other than `0`): only then is it parsed, checked
    /// and answered. xenopsd writes `0` at every plug.
    pub fn pending(&self) -> bool {
        [self.get("enabled"), self.get("enabled6")]
            .iter()
            .any(|v| !matches!(v, None | Some("0")))
    }
}

/// A valid request: the interface (by MAC), and what each family becomes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting {
    /// Lower case `aa:bb:cc:dd:ee:ff`.
    pub mac: String,
    /// IPv4 and IPv6; `None` leaves a family alone.
    pub wanted: Wanted,
}

/// Why a request is refused as invalid: one sentence for `error-msg`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid(pub String);

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn invalid(what: impl Into<String>) -> Invalid {
    Invalid(what.into())
}

/// Parse a pending request; every field present is checked, and one
/// problem refuses all of it.
pub fn parse(raw: &Raw) -> Result<Setting, Invalid> {
    for (leaf, value) in LEAVES.iter().zip(&raw.values) {
        if let Some(v) = value {
            if v.len() > MAX_VALUE {
                return Err(invalid(format!("{leaf} is too long ({} bytes)", v.len())));
            }
            if v.trim() != v || v.chars().any(|c| c.is_control()) {
                return Err(invalid(format!(
                    "{leaf} has white space or control characters: {v:?}"
                )));
            }
        }
    }
    let mac = parse_mac(raw.get("mac").ok_or_else(|| invalid("mac is missing"))?)?;
    let v4 = match family(raw, "enabled", "address", "gateway")? {
        Mode::Leave => None,
        Mode::Static(address, gateway) => Some(V4::Static(static_of(address, gateway, v4_of)?)),
        Mode::Dynamic => Some(V4::Dhcp),
    };
    let v6 = match family(raw, "enabled6", "address6", "gateway6")? {
        Mode::Leave => None,
        Mode::Static(address, gateway) => Some(V6::Static(static_of(address, gateway, v6_of)?)),
        Mode::Dynamic => Some(V6::Autoconf),
    };
    Ok(Setting {
        mac,
        wanted: Wanted { v4, v6 },
    })
}

/// What `enabled` (or `enabled6`) asks for, with the leaves it needs.
enum Mode<'a> {
    Leave,
    Static(&'a str, Option<&'a str>),
    Dynamic,
}

fn family<'a>(
    raw: &'a Raw,
    enabled: &str,
    address: &str,
    gateway: &str,
) -> Result<Mode<'a>, Invalid> {
    let (a, g) = (raw.get(address), raw.get(gateway));
    let mode = match raw.get(enabled) {
        // Acknowledged (removed) or never asked: the address nodes stay as
        // xenopsd wrote them, and mean nothing now.
        None => return Ok(Mode::Leave),
        Some("1") => {
            let a = a.ok_or_else(|| {
                invalid(format!("{enabled} is 1 (static) but {address} is missing"))
            })?;
            return Ok(Mode::Static(a, g.filter(|g| !g.is_empty())));
        }
        Some("0") => Mode::Leave,
        Some("2") => Mode::Dynamic,
        Some(other) => {
            return Err(invalid(format!(
                "{enabled} is {other:?}: expected 0 (leave alone), 1 (static) or 2 (dynamic)"
            )))
        }
    };
    // xenopsd removes them with any other mode: their presence means the
    // request is not what it seems.
    for (leaf, value) in [(address, a), (gateway, g)] {
        if value.is_some() {
            return Err(invalid(format!(
                "{leaf} is set but {enabled} is not 1 (static)"
            )));
        }
    }
    Ok(mode)
}

/// `aa:bb:cc:dd:ee:ff`, any case, into lower case.
pub(crate) fn parse_mac(s: &str) -> Result<String, Invalid> {
    let parts: Vec<&str> = s.split(':').collect();
    let ok = parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()));
    if !ok {
        return Err(invalid(format!(
            "mac {s:?} is not a MAC address (aa:bb:cc:dd:ee:ff)"
        )));
    }
    Ok(s.to_ascii_lowercase())
}

/// An IPv4 `address/prefix` and gateway, checked as dom0's static IP
/// setting is (for OpenStack's `resetnetwork`).
pub(crate) fn static_v4(cidr: &str, gateway: Option<&str>) -> Result<Static<Ipv4Addr>, Invalid> {
    static_of(cidr, gateway, v4_of)
}

/// An IPv6 `address/prefix` and gateway, checked likewise.
pub(crate) fn static_v6(cidr: &str, gateway: Option<&str>) -> Result<Static<Ipv6Addr>, Invalid> {
    static_of(cidr, gateway, v6_of)
}

/// An address of the family `A` out of text.
type Of<A> = fn(&str) -> Option<A>;

fn v4_of(s: &str) -> Option<Ipv4Addr> {
    s.parse().ok()
}

fn v6_of(s: &str) -> Option<Ipv6Addr> {
    s.parse().ok()
}

/// `address/prefix` and the gateway, checked: a unicast address, a prefix
/// that leaves room for hosts, a gateway of the same family on the link.
fn static_of<A>(cidr: &str, gateway: Option<&str>, of: Of<A>) -> Result<Static<A>, Invalid>
where
    A: Copy + Into<IpAddr> + fmt::Display + PartialEq,
{
    let (text, prefix) = cidr.split_once('/').ok_or_else(|| {
        invalid(format!(
            "address {cidr:?} has no prefix length (a.b.c.d/24)"
        ))
    })?;
    let address = of(text).ok_or_else(|| {
        invalid(format!(
            "address {cidr:?}: {text:?} is not an address of the family"
        ))
    })?;
    let bits: u8 = if address.into().is_ipv4() { 32 } else { 128 };
    let prefix: u8 = match prefix.parse() {
        Ok(p) if (1..=bits).contains(&p) && prefix.bytes().all(|b| b.is_ascii_digit()) => p,
        _ => {
            return Err(invalid(format!(
                "address {cidr:?}: the prefix length must be 1 to {bits}"
            )))
        }
    };
    unicast(address.into()).map_err(|why| invalid(format!("address {address} is {why}")))?;
    let gateway = match gateway {
        None => None,
        Some(g) => {
            let gw = of(g).ok_or_else(|| {
                invalid(format!(
                    "gateway {g:?} is not an address of the address's family"
                ))
            })?;
            unicast(gw.into()).map_err(|why| invalid(format!("gateway {gw} is {why}")))?;
            if gw == address {
                return Err(invalid(format!("gateway {gw} is the address itself")));
            }
            if !on_link(address.into(), prefix, gw.into()) {
                return Err(invalid(format!(
                    "gateway {gw} is not on the link of {address}/{prefix}"
                )));
            }
            Some(gw)
        }
    };
    Ok(Static {
        address,
        prefix,
        gateway,
    })
}

/// Why `a` cannot be an interface's address or a next hop, if it cannot.
fn unicast(a: IpAddr) -> Result<(), &'static str> {
    if a.is_unspecified() {
        return Err("unspecified");
    }
    if a.is_loopback() {
        return Err("a loopback address");
    }
    if a.is_multicast() {
        return Err("a multicast address");
    }
    if let IpAddr::V4(v4) = a {
        if v4.is_broadcast() {
            return Err("the broadcast address");
        }
    }
    Ok(())
}

/// Whether `gateway` is reachable on the link of `address/prefix`: in its
/// prefix, or (IPv6) link-local, as routers usually are.
fn on_link(address: IpAddr, prefix: u8, gateway: IpAddr) -> bool {
    match (address, gateway) {
        (IpAddr::V4(a), IpAddr::V4(g)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(a) & mask == u32::from(g) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(g)) => {
            let link_local = g.segments()[0] & 0xffc0 == 0xfe80;
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            link_local || u128::from(a) & mask == u128::from(g) & mask
        }
        _ => false,
    }
}

/// Whether a domain other than dom0 and the guest (`own`) could write a
/// node with these permissions: its owner, its default access (the first
/// entry's) and every listed domain. Such a request cannot be trusted as
/// dom0's. An empty list (no permissions known) is not trusted either.
pub fn writable_by_others(perms: &[Perm], own: u32) -> bool {
    let Some(first) = perms.first() else {
        return true;
    };
    let trusted = |d: u32| d == 0 || d == own;
    !trusted(first.domid) || first.write || perms[1..].iter().any(|p| p.write && !trusted(p.domid))
}

/// One line describing a setting, for the audit log and `error-msg`s:
/// `ipv4 static 192.0.2.10/24 via 192.0.2.1, ipv6 autoconf`.
pub fn describe(wanted: &Wanted) -> String {
    fn one<A: fmt::Display>(family: &str, s: &Static<A>) -> String {
        match &s.gateway {
            Some(g) => format!("{family} static {}/{} via {g}", s.address, s.prefix),
            None => format!("{family} static {}/{} (no gateway)", s.address, s.prefix),
        }
    }
    let mut parts = Vec::new();
    match &wanted.v4 {
        Some(V4::Static(s)) => parts.push(one("ipv4", s)),
        Some(V4::Dhcp) => parts.push("ipv4 dhcp".to_string()),
        None => {}
    }
    match &wanted.v6 {
        Some(V6::Static(s)) => parts.push(one("ipv6", s)),
        Some(V6::Autoconf) => parts.push("ipv6 autoconf".to_string()),
        None => {}
    }
    if parts.is_empty() {
        "nothing".to_string()
    } else {
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests;
