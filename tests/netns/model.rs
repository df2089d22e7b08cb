//! The interfaces as a reader of the agent's JSON lines sees them, and as
//! `ip -j` shows them, in one comparable shape.

use std::collections::BTreeMap;

use serde_json::Value;

/// One interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Iface {
    pub name: String,
    pub mac: Option<String>,
    pub master: Option<u64>,
    pub up: bool,
    /// Address → (prefix, sorted flag names).
    pub addrs: BTreeMap<String, (u64, Vec<String>)>,
}

/// What only the agent knows (not comparable with `ip`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub kind: String,
    pub vif: Option<u64>,
}

/// Interfaces by index.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Model {
    pub ifaces: BTreeMap<u64, Iface>,
    pub identity: BTreeMap<u64, Identity>,
    /// The last `host-name` line: host and domain.
    pub host_name: Option<(String, Option<String>)>,
    /// Filesystems by mount point, from the `filesystem-*` lines.
    pub filesystems: BTreeMap<String, Fs>,
}

/// One filesystem as the `filesystem-*` lines tell it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fs {
    pub fstype: String,
    pub device: String,
    pub total: u64,
    pub used: u64,
    pub available: u64,
}

impl Model {
    /// Apply one JSON line of the stdout publisher. Panics on lines a
    /// reader could not apply (an address before its link).
    pub fn apply(&mut self, line: &str) {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("bad JSON {line:?}: {e}"));
        let change = v["change"].as_str().expect("change");
        let index = || v["index"].as_u64().expect("index");
        match change {
            "link-added" | "link-changed" => {
                let index = index();
                let addrs = self
                    .ifaces
                    .remove(&index)
                    .map(|i| i.addrs)
                    .unwrap_or_default();
                if change == "link-added" {
                    assert!(addrs.is_empty(), "link-added for a known link: {line}");
                }
                self.ifaces.insert(
                    index,
                    Iface {
                        name: v["name"].as_str().expect("name").to_string(),
                        mac: v["mac"].as_str().map(str::to_string),
                        master: v["master"].as_u64(),
                        up: v["up"].as_bool().expect("up"),
                        addrs,
                    },
                );
                self.identity.insert(
                    index,
                    Identity {
                        kind: v["kind"].as_str().expect("kind").to_string(),
                        vif: v["vif"].as_u64(),
                    },
                );
            }
            "link-removed" => {
                let i = self
                    .ifaces
                    .remove(&index())
                    .unwrap_or_else(|| panic!("unknown link: {line}"));
                assert!(
                    i.addrs.is_empty(),
                    "link removed before its addresses: {line}"
                );
                self.identity.remove(&index());
            }
            "address-added" | "address-changed" | "address-removed" => {
                let i = self
                    .ifaces
                    .get_mut(&index())
                    .unwrap_or_else(|| panic!("address of an unknown link: {line}"));
                let addr = v["address"].as_str().expect("address").to_string();
                if change == "address-removed" {
                    assert!(
                        i.addrs.remove(&addr).is_some(),
                        "unknown address removed: {line}"
                    );
                } else {
                    let mut flags: Vec<String> = v["flags"]
                        .as_array()
                        .expect("flags")
                        .iter()
                        .map(|f| f.as_str().expect("flag").to_string())
                        .collect();
                    flags.sort();
                    let prev = i
                        .addrs
                        .insert(addr, (v["prefix"].as_u64().expect("prefix"), flags));
                    assert_eq!(prev.is_some(), change == "address-changed", "{line}");
                }
            }
            "filesystem-added" | "filesystem-changed" | "filesystem-removed" => {
                let at = v["mount_point"].as_str().expect("mount_point").to_owned();
                let fs = Fs {
                    fstype: v["type"].as_str().expect("type").to_owned(),
                    device: v["device"].as_str().expect("device").to_owned(),
                    total: v["total_bytes"].as_u64().expect("total_bytes"),
                    used: v["used_bytes"].as_u64().expect("used_bytes"),
                    available: v["available_bytes"].as_u64().expect("available_bytes"),
                };
                let known = if change == "filesystem-removed" {
                    self.filesystems.remove(&at).is_some()
                } else {
                    self.filesystems.insert(at, fs).is_some()
                };
                assert_eq!(known, change != "filesystem-added", "{line}");
            }
            "host-name" => {
                let host = v["host"].as_str().expect("host").to_owned();
                let domain = v["domain"].as_str().map(str::to_owned);
                self.host_name = Some((host, domain));
            }
            _ => {}
        }
    }

    /// The model of `ip -j addr show` output.
    pub fn from_ip(json: &str) -> Model {
        let list: Vec<Value> = serde_json::from_str(json).expect("ip -j output");
        let index_of: BTreeMap<&str, u64> = list
            .iter()
            .map(|i| {
                (
                    i["ifname"].as_str().unwrap(),
                    i["ifindex"].as_u64().unwrap(),
                )
            })
            .collect();
        let mut m = Model::default();
        for i in &list {
            let mut addrs = BTreeMap::new();
            for a in i["addr_info"].as_array().into_iter().flatten() {
                let Some(local) = a["local"].as_str() else {
                    continue;
                };
                let mut flags: Vec<String> = [
                    "secondary",
                    "temporary",
                    "tentative",
                    "dadfailed",
                    "deprecated",
                ]
                .iter()
                .filter(|f| a[**f].as_bool() == Some(true))
                .map(|f| f.to_string())
                .collect();
                flags.sort();
                addrs.insert(local.to_string(), (a["prefixlen"].as_u64().unwrap(), flags));
            }
            let flags = i["flags"].as_array().unwrap();
            m.ifaces.insert(
                i["ifindex"].as_u64().unwrap(),
                Iface {
                    name: i["ifname"].as_str().unwrap().to_string(),
                    mac: i["address"].as_str().map(str::to_string),
                    master: i["master"].as_str().map(|n| index_of[n]),
                    up: flags.iter().any(|f| f == "UP"),
                    addrs,
                },
            );
        }
        m
    }

    /// The interface called `name`.
    pub fn by_name(&self, name: &str) -> Option<(u64, &Iface)> {
        self.ifaces
            .iter()
            .find(|(_, i)| i.name == name)
            .map(|(k, i)| (*k, i))
    }

    /// The same interfaces without address flags (for collectors that
    /// cannot see them).
    pub fn without_flags(&self) -> Model {
        let mut m = self.clone();
        for i in m.ifaces.values_mut() {
            for a in i.addrs.values_mut() {
                a.1.clear();
            }
        }
        m.identity.clear();
        m.host_name = None;
        m.filesystems.clear();
        m
    }

    /// Only what `ip` can show too.
    pub fn comparable(&self) -> Model {
        let mut m = self.clone();
        m.identity.clear();
        m.host_name = None;
        m.filesystems.clear();
        m
    }
}
