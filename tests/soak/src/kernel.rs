//! The kernel's real state of the namespace, from `ip -j -d addr show`,
//! plus what the fake sysfs says about each interface: the truth the
//! agent's tree is compared with.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::Value;

use crate::world::World;

/// What an interface is, as the kernel and the fake sysfs say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A Xen VIF (fake sysfs), with its id.
    Vif(u32),
    /// `info_kind` bridge.
    Bridge,
    /// The loopback interface.
    Loopback,
    /// Anything else (veths that are not VIFs).
    Other,
}

/// One address, with the flags that decide whether dom0 is shown it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Addr {
    pub ip: IpAddr,
    pub prefix: u8,
    pub secondary: bool,
    pub tentative: bool,
    pub dadfailed: bool,
}

impl Addr {
    /// Tentative and DAD-failed IPv6 addresses are not reported
    /// (docs/xenstore-schema.md).
    pub fn reportable(&self) -> bool {
        !self.tentative && !self.dadfailed
    }
}

/// One interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub mac: Option<String>,
    pub kind: Kind,
    /// The master's interface index.
    pub master: Option<u32>,
    /// Addresses in the order the kernel lists them.
    pub addrs: Vec<Addr>,
}

impl Link {
    /// The primary IPv4: the one the kernel does not mark secondary (the
    /// driver gives every interface one subnet, so there is one).
    pub fn primary_ipv4(&self) -> Option<IpAddr> {
        let v4 = || self.addrs.iter().filter(|a| a.ip.is_ipv4());
        v4().find(|a| !a.secondary)
            .or_else(|| v4().next())
            .map(|a| a.ip)
    }
}

/// Every interface of the namespace, by index.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Kernel {
    pub links: BTreeMap<u32, Link>,
}

impl Kernel {
    /// The state now.
    pub fn read(world: &World) -> Result<Kernel, String> {
        let json = world.ip(&["-j", "-d", "addr", "show"])?;
        Kernel::parse(&json, |name| world.vif_of(name))
    }

    /// Parse `ip -j -d addr show`; `vif_of` tells the VIF id of a name.
    pub fn parse(json: &str, vif_of: impl Fn(&str) -> Option<u32>) -> Result<Kernel, String> {
        let all: Value =
            serde_json::from_str(json).map_err(|e| format!("ip -j addr: {e}: {json:.200}"))?;
        let list = all.as_array().ok_or("ip -j addr: not a list")?;
        let mut names = BTreeMap::new();
        let mut links = BTreeMap::new();
        for l in list {
            let index = l["ifindex"].as_u64().ok_or("ip -j addr: no ifindex")? as u32;
            let name = l["ifname"].as_str().ok_or("ip -j addr: no ifname")?;
            names.insert(name.to_string(), index);
            let loopback = l["link_type"] == "loopback"
                || l["flags"]
                    .as_array()
                    .is_some_and(|f| f.iter().any(|x| x == "LOOPBACK"));
            let kind = if loopback {
                Kind::Loopback
            } else if let Some(id) = vif_of(name) {
                Kind::Vif(id)
            } else if l["linkinfo"]["info_kind"] == "bridge" {
                Kind::Bridge
            } else {
                Kind::Other
            };
            let mut addrs = Vec::new();
            for a in l["addr_info"].as_array().into_iter().flatten() {
                let (Some(local), Some(prefix)) = (a["local"].as_str(), a["prefixlen"].as_u64())
                else {
                    continue;
                };
                let ip: IpAddr = local
                    .parse()
                    .map_err(|e| format!("ip -j addr: {local}: {e}"))?;
                let flag = |f: &str| a[f].as_bool().unwrap_or(false);
                addrs.push(Addr {
                    ip,
                    prefix: prefix as u8,
                    secondary: flag("secondary"),
                    tentative: flag("tentative"),
                    dadfailed: flag("dadfailed"),
                });
            }
            links.insert(
                index,
                (
                    Link {
                        index,
                        name: name.to_string(),
                        mac: l["address"].as_str().map(str::to_ascii_lowercase),
                        kind,
                        master: None,
                        addrs,
                    },
                    l["master"].as_str().map(str::to_string),
                ),
            );
        }
        Ok(Kernel {
            links: links
                .into_values()
                .map(|(mut link, master)| {
                    link.master = master.and_then(|m| names.get(&m).copied());
                    (link.index, link)
                })
                .collect(),
        })
    }

    /// The interface named `name`.
    pub fn by_name(&self, name: &str) -> Option<&Link> {
        self.links.values().find(|l| l.name == name)
    }

    /// `link` and the bridges above it (an enslaved VIF's addresses are on
    /// its master), innermost first; a loop ends the chain.
    pub fn chain<'a>(&'a self, link: &'a Link) -> Vec<&'a Link> {
        let mut chain = vec![link];
        let mut current = link;
        while let Some(master) = current.master.and_then(|m| self.links.get(&m)) {
            if master.kind != Kind::Bridge || chain.iter().any(|l| l.index == master.index) {
                break;
            }
            chain.push(master);
            current = master;
        }
        chain
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"[
      {"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP"],"link_type":"loopback",
       "address":"00:00:00:00:00:00","addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8}]},
      {"ifindex":3,"link":"peer0","ifname":"eth0","flags":["UP"],"master":"br0",
       "link_type":"ether","address":"00:16:3E:00:00:01","linkinfo":{"info_kind":"veth"},
       "addr_info":[
         {"family":"inet","local":"10.0.0.2","prefixlen":24},
         {"family":"inet","local":"10.0.0.3","prefixlen":24,"secondary":true},
         {"family":"inet6","local":"2001:db8::1","prefixlen":64,"tentative":true},
         {"family":"inet6","local":"2001:db8::2","prefixlen":64,"nodad":true,"deprecated":true}]},
      {"ifindex":4,"ifname":"br0","flags":["UP"],"link_type":"ether",
       "address":"00:16:3e:00:00:01","linkinfo":{"info_kind":"bridge"},"addr_info":[]}
    ]"#;

    #[test]
    fn ip_json_gives_kinds_masters_and_flags() {
        let k = Kernel::parse(SAMPLE, |n| (n == "eth0").then_some(7)).unwrap();
        assert_eq!(k.links[&1].kind, Kind::Loopback);
        let eth0 = k.by_name("eth0").unwrap();
        assert_eq!(eth0.kind, Kind::Vif(7));
        assert_eq!(eth0.master, Some(4));
        assert_eq!(eth0.mac.as_deref(), Some("00:16:3e:00:00:01"));
        assert_eq!(eth0.primary_ipv4(), Some("10.0.0.2".parse().unwrap()));
        assert!(!eth0.addrs[2].reportable());
        assert!(eth0.addrs[3].reportable(), "deprecated is still reported");
        assert_eq!(k.links[&4].kind, Kind::Bridge);
        let chain: Vec<u32> = k.chain(eth0).iter().map(|l| l.index).collect();
        assert_eq!(chain, [3, 4]);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(Kernel::parse("{", |_| None).is_err());
        assert!(Kernel::parse("{}", |_| None).is_err());
        assert!(Kernel::parse(r#"[{"ifname":"x"}]"#, |_| None).is_err());
    }
}
