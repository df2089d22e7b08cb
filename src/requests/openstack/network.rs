//! `resetnetwork`: nova's `vm-data/networking/<MAC without colons>` (JSON)
//! and `vm-data/hostname`, as settings for the static IP applier.

use serde_json::Value;

use crate::netconf::{Wanted, V4, V6};
use crate::requests::static_ip::{self, Invalid, Setting};

/// Where nova puts one entry per VIF.
pub const NETWORKING: &str = "vm-data/networking";

/// Where nova puts the instance's host name.
pub const HOSTNAME: &str = "vm-data/hostname";

/// Longest entry read (nova's are a few hundred bytes).
pub const MAX_ENTRY: usize = 4096;

/// Longest host name the kernel takes (`HOST_NAME_MAX`).
const HOST_NAME_MAX: usize = 64;

/// One VIF's entry: what the applier does, and what it leaves out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    /// The interface (by MAC) and what each family becomes.
    pub setting: Setting,
    /// Fields given but not applied (`routes`, `dns`), for the answer.
    pub ignored: Vec<&'static str>,
}

fn invalid(what: String) -> Invalid {
    Invalid(what)
}

/// Parse the entry `key` (the MAC without colons, any case) of
/// `vm-data/networking`. Every field used is checked; one problem refuses
/// the interface. No address of a family leaves that family alone; the
/// agent sets one address per family and interface, as dom0's static IP
/// setting does.
pub fn parse(key: &str, text: &str) -> Result<Interface, Invalid> {
    if text.len() > MAX_ENTRY {
        return Err(invalid(format!(
            "{key}: {} bytes, over {MAX_ENTRY}",
            text.len()
        )));
    }
    let mac = mac_of_key(key)?;
    let json: Value =
        serde_json::from_str(text).map_err(|e| invalid(format!("{key}: not JSON ({e})")))?;
    let obj = json
        .as_object()
        .ok_or_else(|| invalid(format!("{key}: not a JSON object")))?;
    if let Some(m) = obj.get("mac") {
        let m = m
            .as_str()
            .ok_or_else(|| invalid(format!("{key}: \"mac\" is not a string")))?;
        if static_ip::parse_mac(m)? != mac {
            return Err(invalid(format!("{key}: \"mac\" {m:?} is another MAC")));
        }
    }
    let v4 = match one(obj, key, "ips")? {
        None => None,
        Some(ip) => {
            let address = text_of(ip, key, "ips", "ip")?;
            let mask = text_of(ip, key, "ips", "netmask")?;
            let prefix = prefix_of_mask(mask)
                .ok_or_else(|| invalid(format!("{key}: netmask {mask:?} is not a netmask")))?;
            let gateway = gateway(ip, obj, "gateway", key)?;
            let s = static_ip::static_v4(&format!("{address}/{prefix}"), gateway)
                .map_err(|e| invalid(format!("{key}: {e}")))?;
            Some(V4::Static(s))
        }
    };
    let v6 = match one(obj, key, "ip6s")? {
        None => None,
        Some(ip) => {
            let address = text_of(ip, key, "ip6s", "ip")?;
            let prefix = match ip.get("netmask") {
                Some(Value::Number(n)) => n.as_u64(),
                Some(Value::String(s)) if s.bytes().all(|b| b.is_ascii_digit()) => s.parse().ok(),
                _ => None,
            }
            .ok_or_else(|| invalid(format!("{key}: ip6s: netmask is not a prefix length")))?;
            let gateway = gateway(ip, obj, "gateway_v6", key)?;
            let s = static_ip::static_v6(&format!("{address}/{prefix}"), gateway)
                .map_err(|e| invalid(format!("{key}: {e}")))?;
            Some(V6::Static(s))
        }
    };
    let mut ignored = Vec::new();
    for field in ["routes", "dns"] {
        if obj
            .get(field)
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
        {
            ignored.push(field);
        }
    }
    Ok(Interface {
        setting: Setting {
            mac,
            wanted: Wanted { v4, v6 },
        },
        ignored,
    })
}

/// `aabbccddeeff` (any case) as `aa:bb:cc:dd:ee:ff`.
fn mac_of_key(key: &str) -> Result<String, Invalid> {
    if key.len() != 12 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid(format!(
            "{key:?} is not a MAC address without colons"
        )));
    }
    let pairs: Vec<&str> = (0..6).map(|i| &key[2 * i..2 * i + 2]).collect();
    static_ip::parse_mac(&pairs.join(":"))
}

/// The one enabled entry of the list `field`, if any.
fn one<'a>(
    obj: &'a serde_json::Map<String, Value>,
    key: &str,
    field: &str,
) -> Result<Option<&'a Value>, Invalid> {
    let list = match obj.get(field) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(list)) => list,
        Some(_) => return Err(invalid(format!("{key}: {field:?} is not a list"))),
    };
    let enabled: Vec<&Value> = list
        .iter()
        .filter(|ip| !matches!(ip.get("enabled"), Some(Value::String(s)) if s == "0"))
        .collect();
    match enabled.as_slice() {
        [] => Ok(None),
        [ip] if ip.is_object() => Ok(Some(ip)),
        [_] => Err(invalid(format!(
            "{key}: {field} has an entry that is not an object"
        ))),
        many => Err(invalid(format!(
            "{key}: {field} has {} addresses; the agent sets one per family and interface",
            many.len()
        ))),
    }
}

fn text_of<'a>(ip: &'a Value, key: &str, list: &str, field: &str) -> Result<&'a str, Invalid> {
    ip.get(field).and_then(Value::as_str).ok_or_else(|| {
        invalid(format!(
            "{key}: {list}: {field:?} is missing or not a string"
        ))
    })
}

/// The entry's own gateway, else the interface's (`gateway`,
/// `gateway_v6`); empty or null is none.
fn gateway<'a>(
    ip: &'a Value,
    obj: &'a serde_json::Map<String, Value>,
    top: &str,
    key: &str,
) -> Result<Option<&'a str>, Invalid> {
    for v in [ip.get("gateway"), obj.get(top)].into_iter().flatten() {
        match v {
            Value::Null => {}
            Value::String(s) if s.is_empty() => {}
            Value::String(s) => return Ok(Some(s)),
            _ => return Err(invalid(format!("{key}: a gateway is not a string"))),
        }
    }
    Ok(None)
}

/// `255.255.255.0` as `24`; a mask with holes is none.
fn prefix_of_mask(mask: &str) -> Option<u8> {
    let m = u32::from(mask.parse::<std::net::Ipv4Addr>().ok()?);
    let prefix = m.leading_ones();
    (m.checked_shl(prefix).unwrap_or(0) == 0).then_some(prefix as u8)
}

/// `vm-data/hostname` as the host name to set: a plain value, or a JSON
/// string (nova's live path writes values JSON-encoded); letters, digits,
/// `-` and `.`, labels of 1 to 63, at most 64 bytes.
pub fn hostname(text: &str) -> Result<String, Invalid> {
    let name = match serde_json::from_str::<Value>(text) {
        Ok(Value::String(s)) => s,
        _ => text.trim().to_string(),
    };
    let ok = !name.is_empty()
        && name.len() <= HOST_NAME_MAX
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if ok {
        Ok(name)
    } else {
        Err(invalid(format!(
            "host name {name:?} is not a valid host name (letters, digits, '-', '.'; at most {HOST_NAME_MAX} bytes)"
        )))
    }
}

#[cfg(test)]
mod tests;
