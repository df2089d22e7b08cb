//! The portable network collector: polls the interface list (getifaddrs,
//! through `pnet_datalink`) every `--poll-interval` and sends it whole; the
//! state diffs it against what was published. For systems without netlink
//! (FreeBSD) and as a fallback.
//!
//! What it cannot see: address flags (getifaddrs has none, so a tentative
//! IPv6 address is reported as soon as it exists), and changes that come
//! and go between two polls. Bridge, bond and master come from sysfs on
//! Linux.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use futures::stream;
use pnet_datalink::NetworkInterface;

use super::vif;
use crate::collectors::ticker::Ticker;
use crate::collectors::{Config, EventStream};
use crate::state::{AddrFlags, Address, Event, Interface, Kind, Link};

/// The collector's stream: one complete `Event::Interfaces` per poll.
pub fn stream(config: &Config) -> EventStream {
    let poller = Poller {
        sysfs: config.sysfs.clone(),
        known: HashMap::new(),
    };
    let oneshot = config.oneshot;
    // The first tick is at once: the initial state.
    let ticker = Ticker::new(config.poll_interval);
    Box::pin(stream::unfold(
        (poller, ticker, true),
        move |(mut p, mut ticker, first)| async move {
            if oneshot && !first {
                return None;
            }
            ticker.tick().await;
            Some((Event::Interfaces(p.poll()), (p, ticker, false)))
        },
    ))
}

/// What `poll` remembers between polls.
struct Poller {
    sysfs: PathBuf,
    /// Kind of each interface by index, with the name it was identified
    /// under: an interface is identified again only when new or renamed.
    known: HashMap<u32, (String, Kind)>,
}

impl Poller {
    /// The interfaces as they are now.
    fn poll(&mut self) -> Vec<Interface> {
        let list = pnet_datalink::interfaces();
        // getifaddrs may race with a removal or a rename: if_nametoindex
        // then yields 0, and the interface is left for the next poll.
        let list: Vec<&NetworkInterface> = list.iter().filter(|i| i.index != 0).collect();
        let mut interfaces = Vec::with_capacity(list.len());
        for iface in &list {
            let link = self.link(iface, &list);
            let mut i = Interface::new(link);
            for net in &iface.ips {
                i.addresses.insert(
                    net.ip(),
                    Address {
                        prefix: net.prefix(),
                        flags: AddrFlags::default(),
                    },
                );
            }
            interfaces.push(i);
        }
        self.known
            .retain(|index, _| list.iter().any(|i| i.index == *index));
        interfaces
    }

    fn link(&mut self, iface: &NetworkInterface, all: &[&NetworkInterface]) -> Link {
        // pnet builds the name with from_utf8_unchecked: look at its bytes
        // only, and make a valid string of them here.
        let raw = OsStr::from_bytes(iface.name.as_bytes());
        let name = String::from_utf8_lossy(iface.name.as_bytes()).into_owned();
        let kind = if iface.flags & libc::IFF_LOOPBACK as u32 != 0 {
            Kind::Loopback
        } else {
            match self.known.get(&iface.index) {
                Some((n, kind)) if *n == name => *kind,
                _ => {
                    let kind = vif::identify(&self.sysfs, raw);
                    self.known.insert(iface.index, (name.clone(), kind));
                    kind
                }
            }
        };
        let master = vif::master(&self.sysfs, raw).and_then(|m| {
            all.iter()
                .find(|i| i.name.as_bytes() == m.as_bytes())
                .map(|i| i.index)
        });
        Link {
            index: iface.index,
            name,
            mac: iface.mac.map(|m| m.to_string()),
            kind,
            master,
            up: iface.flags & libc::IFF_UP as u32 != 0,
        }
    }
}
