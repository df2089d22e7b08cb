//! Applying a valid [`Setting`]: at once through netlink, then lastingly
//! through the network manager that runs the interface.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{code, Setting};
use crate::error::Error;
use crate::netconf::live::{Link, Live};
use crate::netconf::persist::{self, Detected, Roots};
use crate::netconf::{Static, Wanted, V4, V6};

/// The applier, with what it set on each interface (by MAC): "back to
/// DHCP" undoes only the agent's own static settings.
pub struct Apply {
    live: Live,
    roots: Roots,
    /// The last setting applied per MAC, family by family.
    applied: BTreeMap<String, Wanted>,
}

/// How long to wait for a network manager still deciding about the
/// interface (systemd-networkd at boot) before choosing how to persist.
const SETTLE_WAIT: Duration = Duration::from_secs(15);

/// A failure: its `error-code` and what to say.
pub type Failure = (&'static str, String);

impl Apply {
    /// Open the netlink socket and check the agent may change the network;
    /// the network managers' files are under `root`.
    pub fn new(root: &std::path::Path) -> Result<Apply, Error> {
        let live = Live::open()?;
        crate::sys::check_net_admin().map_err(|e| {
            e.hint(
                "--allow static-ip changes addresses and routes, which needs CAP_NET_ADMIN: \
                 install the systemd drop-in xen-guest-agent-static-ip.conf (see the README), \
                 or run the agent as root with its capabilities",
            )
        })?;
        Ok(Apply {
            live,
            roots: Roots {
                etc: root.join("etc"),
                run: root.join("run"),
            },
            applied: BTreeMap::new(),
        })
    }

    /// Apply `setting`; on success, a note for the answer (`""`, or what
    /// was not made lasting).
    pub async fn apply(&mut self, setting: &Setting) -> Result<String, Failure> {
        let link = match self.live.link_by_mac(&setting.mac).await {
            Ok(Some(link)) => link,
            Ok(None) => {
                return Err((
                    code::NO_INTERFACE,
                    "no interface of the guest has this MAC".to_string(),
                ))
            }
            Err(e) => return Err((code::FAILED, e.to_string())),
        };
        let before = self.applied.get(&setting.mac).cloned().unwrap_or_default();
        let mut after = before.clone();
        let mut changed = false;
        if let Some(v4) = &setting.wanted.v4 {
            if before.v4.as_ref() != Some(v4) {
                self.live_v4(&link, before.v4.as_ref(), v4).await?;
                after.v4 = Some(v4.clone());
                changed = true;
            }
        }
        if let Some(v6) = &setting.wanted.v6 {
            if before.v6.as_ref() != Some(v6) {
                self.live_v6(&link, before.v6.as_ref(), v6).await?;
                after.v6 = Some(v6.clone());
                changed = true;
            }
        }
        self.applied.insert(setting.mac.clone(), after.clone());
        if !changed {
            return Ok(format!(" on {} (already so: nothing changed)", link.name));
        }
        Ok(format!(
            " on {}{}",
            link.name,
            self.persist(&link, &after).await
        ))
    }

    async fn live_v4(&mut self, link: &Link, before: Option<&V4>, v4: &V4) -> Result<(), Failure> {
        let failed = |e: Error| (code::FAILED, e.to_string());
        if let Some(V4::Static(old)) = before {
            if !matches!(v4, V4::Static(new) if new.address == old.address && new.prefix == old.prefix)
            {
                self.live.remove_v4(link, old).await.map_err(failed)?;
            }
        }
        match v4 {
            V4::Static(s) => self.live.apply_v4(link, s).await.map_err(failed),
            V4::Dhcp => Ok(()),
        }
    }

    async fn live_v6(&mut self, link: &Link, before: Option<&V6>, v6: &V6) -> Result<(), Failure> {
        let failed = |e: Error| (code::FAILED, e.to_string());
        if let Some(V6::Static(old)) = before {
            if !matches!(v6, V6::Static(new) if same(new, old)) {
                self.live.remove_v6(link, old).await.map_err(failed)?;
            }
        }
        match v6 {
            V6::Static(s) => self.live.apply_v6(link, s).await.map_err(failed),
            V6::Autoconf => Ok(()),
        }
    }

    /// Make `wanted` last through the interface's network manager, and
    /// have the manager take it; what the answer says about it.
    async fn persist(&mut self, link: &Link, wanted: &Wanted) -> String {
        let since = tokio::time::Instant::now();
        while persist::settling(&self.roots, link.index) && since.elapsed() < SETTLE_WAIT {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let detected = persist::detect(&self.roots, &link.name, link.index);
        if detected == Detected::None {
            let any_static = matches!(wanted.v4, Some(V4::Static(_)))
                || matches!(wanted.v6, Some(V6::Static(_)));
            let unmanaged = "no network manager the agent can configure runs this interface";
            return if any_static {
                format!(
                    "; applied at once only: {unmanaged}, so it lasts until it reconfigures the \
                     interface or the next reboot"
                )
            } else {
                format!("; {unmanaged}: DHCP and autoconf are up to the guest's own configuration")
            };
        }
        let persisted = match persist::persist(
            &self.roots,
            &detected,
            &link.name,
            link.index,
            &link.mac,
            wanted,
        ) {
            Ok(p) => p,
            Err(e) => return format!("; applied at once, but not made lasting: {e}"),
        };
        let mut s = String::new();
        if !persisted.written.is_empty() {
            s.push_str(&format!("; lasting through {}", paths(&persisted.written)));
        }
        if !persisted.removed.is_empty() {
            s.push_str(&format!("; removed {}", paths(&persisted.removed)));
        }
        if let Some(note) = &persisted.note {
            s.push_str(&format!(" ({note})"));
        }
        s + &super::reload::take(&persisted.reload).await
    }
}

/// Paths for a message.
fn paths(list: &[std::path::PathBuf]) -> String {
    list.iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn same<A: PartialEq>(a: &Static<A>, b: &Static<A>) -> bool {
    a.address == b.address && a.prefix == b.prefix
}
