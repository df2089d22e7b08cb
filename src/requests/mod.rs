//! Host-to-guest requests: what dom0 asks the guest to do, each kind only
//! when the administrator allowed it (`--allow`).
//!
//! The [`Requests`] task has a xenstore connection of its own (the agent's
//! own client: it needs `XS_GET_PERMS`), so that a request never holds up
//! the publication of the guest's facts. It watches where dom0 writes
//! requests, reads each one in a transaction (a consistent snapshot, with
//! the nodes' permissions), handles it, answers in the protocol's result
//! nodes and acknowledges it in a second transaction that first checks the
//! request is still the one handled (a newer one is handled next). What is
//! there at start is handled at start. Each request is logged in one audit
//! line. At most [`BURST`] requests are applied at once, then one every
//! [`REFILL`]; the rest wait in xenstore.
//!
//! While it runs it advertises what it handles (XAPI:
//! `control/feature-static-ip-setting`), again after a resume or migration
//! (a new domain), and withdraws it when the agent stops.
//!
//! Two protocols share the task, its rate limit and its audit: XAPI's
//! static IP setting ([`static_ip`]) and OpenStack's guest-agent commands
//! ([`openstack`]: `data/host/<id>`, answered once in `data/guest/<id>`).

pub mod openstack;
pub mod static_ip;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::cli::Cli;
use crate::error::Error;
use crate::publishers::xenstore::native::{Client, Errno, Lost, Places, Reply, Request};
use static_ip::{code, Raw, Setting, DIR, LEAVES, ROOTS};

/// What dom0 may ask of the guest (`--allow`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Allow {
    /// XAPI's static IP setting (`xe vif-configure-ipv4`/`-ipv6`): set a
    /// VIF's address and gateway, or back to DHCP/autoconf (Linux; needs
    /// CAP_NET_ADMIN, see the unit's drop-in).
    StaticIp,
    /// OpenStack's `password`: set root's password (`/etc/shadow`).
    Password,
    /// OpenStack's `injectfile`: write one of the `--inject-path` files.
    Injectfile,
    /// OpenStack's `resetnetwork`: the VIFs' addresses from
    /// `vm-data/networking`, the host name from `vm-data/hostname`.
    Resetnetwork,
}

/// The node that tells XAPI (and Xen Orchestra, XenCenter) that static
/// IP settings are handled.
pub const FEATURE_STATIC_IP: &str = "control/feature-static-ip-setting";

/// Watched to notice a new domain (resume, restore, migration): as the
/// publisher does.
const DOMAIN_ID: &str = "unique-domain-id";

/// Requests applied at once at most.
pub const BURST: u32 = 5;

/// After a burst, one request more per this.
pub const REFILL: Duration = Duration::from_secs(6);

/// How long to let a burst of watch events settle before reading: one
/// VIF plug writes seven nodes, each firing the watch.
const SETTLE: Duration = Duration::from_millis(100);

/// Retries of a transaction that conflicted.
const RETRIES: usize = 5;

/// The running request task.
pub struct Requests {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Requests {
    /// Start handling what `allowed` lists (nothing: `None`, no task, no
    /// connection). Fails when an allowed kind cannot work here (another
    /// operating system, no CAP_NET_ADMIN), for the agent to exit with
    /// what to do.
    pub fn start(cli: &Cli) -> Result<Option<Requests>, Error> {
        let static_ip = cli.allow.contains(&Allow::StaticIp);
        let openstack = openstack::Commands::new(&cli.allow, &cli.system_root, &cli.inject_path);
        if !static_ip && openstack.is_none() {
            return Ok(None);
        }
        if cli.allow.contains(&Allow::Password) && !cfg!(target_os = "linux") {
            return Err(Error::new(
                "--allow password: setting root's password is supported on Linux only",
            )
            .hint("leave password out of --allow"));
        }
        if cli.allow.contains(&Allow::Injectfile) {
            openstack::inject::check_allowed(&cli.inject_path)?;
        }
        let resetnetwork = openstack
            .as_ref()
            .is_some_and(openstack::Commands::reset_network_allowed);
        let net = if static_ip || resetnetwork {
            Some(static_ip::Apply::new(&cli.system_root)?)
        } else {
            None
        };
        if static_ip {
            log::info!(
                "handling dom0's static IP settings (--allow static-ip): advertising \
                 {FEATURE_STATIC_IP}"
            );
        }
        if let Some(o) = &openstack {
            log::info!(
                "handling OpenStack's guest-agent commands in {} (--allow): {}",
                openstack::REQUESTS,
                o.features()
            );
        }
        let (stop, stopped) = oneshot::channel();
        let task = Task {
            places: Places::from_env(),
            timeout: cli.xenstore_timeout,
            client: None,
            own_domid: None,
            domid_warned: false,
            flag: Flag::Unwritten,
            handled: BTreeMap::new(),
            bucket: Bucket::new(Instant::now()),
            static_ip,
            net,
            openstack,
            os_handled: BTreeMap::new(),
            root: cli.system_root.clone(),
            down_logged: false,
        };
        Ok(Some(Requests {
            stop,
            task: tokio::spawn(task.run(stopped)),
        }))
    }

    /// Withdraw the advertisement and stop (bounded: the agent is
    /// stopping).
    pub async fn stop(self) {
        let _ = self.stop.send(());
        if tokio::time::timeout(Duration::from_secs(3), self.task)
            .await
            .is_err()
        {
            log::warn!("requests: could not withdraw {FEATURE_STATIC_IP} in time");
        }
    }
}

/// The advertisement's state on this connection's domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flag {
    Unwritten,
    Written,
    /// Refused (xl: `control/` is read-only to the guest); not tried again
    /// until a new domain.
    Denied,
}

/// A request handled, by its directory: not handled again while it reads
/// the same.
struct Handled {
    raw: Raw,
    code: &'static str,
    msg: String,
    /// The acknowledgement could not be written: do not try at every event.
    ack_failed: bool,
}

/// An OpenStack command handled, by its id: answered the same again, never
/// run again, while `data/host/<id>` holds the same request.
struct OsHandled {
    /// A hash of the request (not the request: it may hold a password).
    hash: u64,
    answer: openstack::protocol::Answer,
    ack_failed: bool,
}

/// A token bucket: [`BURST`] at once, one more per [`REFILL`].
struct Bucket {
    tokens: u32,
    since: Instant,
}

impl Bucket {
    fn new(now: Instant) -> Bucket {
        Bucket {
            tokens: BURST,
            since: now,
        }
    }

    /// Take a token, or say when one will be there.
    fn take(&mut self, now: Instant) -> Result<(), Instant> {
        while self.tokens < BURST && now >= self.since + REFILL {
            self.tokens += 1;
            self.since += REFILL;
        }
        if self.tokens == BURST {
            self.since = now;
        }
        if self.tokens == 0 {
            return Err(self.since + REFILL);
        }
        self.tokens -= 1;
        Ok(())
    }
}

/// What woke the task.
enum Wake {
    Stop,
    Event(Result<String, Lost>),
    Scan,
}

struct Task {
    places: Places,
    timeout: Duration,
    client: Option<Client>,
    /// The guest's domain id (`domid`), to tell dom0's nodes from a third
    /// domain's.
    own_domid: Option<u32>,
    /// That `domid` could not be read was said (until it can).
    domid_warned: bool,
    flag: Flag,
    handled: BTreeMap<String, Handled>,
    bucket: Bucket,
    /// XAPI's static IP setting is allowed.
    static_ip: bool,
    /// The network applier (static IP setting, `resetnetwork`).
    net: Option<static_ip::Apply>,
    /// OpenStack's commands, when one is allowed.
    openstack: Option<openstack::Commands>,
    os_handled: BTreeMap<String, OsHandled>,
    /// Where the system's files are (`--system-root`).
    root: PathBuf,
    down_logged: bool,
}

impl Task {
    async fn run(mut self, mut stop: oneshot::Receiver<()>) {
        let mut backoff = Duration::from_secs(1);
        let mut scan_at: Option<Instant> = None;
        loop {
            if self.client.is_none() {
                match self.connect().await {
                    Ok(()) => {
                        backoff = Duration::from_secs(1);
                        scan_at = Some(Instant::now());
                    }
                    Err(e) => {
                        self.lost(e);
                        tokio::select! {
                            _ = &mut stop => break,
                            _ = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(30));
                        continue;
                    }
                }
            }
            let wake = {
                let Some(client) = self.client.as_mut() else {
                    continue;
                };
                tokio::select! {
                    _ = &mut stop => Wake::Stop,
                    e = client.next_event() => Wake::Event(e.map(|e| e.token)),
                    _ = sleep_until(scan_at) => Wake::Scan,
                }
            };
            let result = match wake {
                Wake::Stop => break,
                Wake::Event(Ok(token)) => {
                    scan_at.get_or_insert(Instant::now() + SETTLE);
                    if token == "domain" {
                        self.new_domain().await
                    } else {
                        Ok(())
                    }
                }
                Wake::Event(Err(e)) => Err(e),
                Wake::Scan => match self.scan().await {
                    Ok(next) => {
                        scan_at = next;
                        Ok(())
                    }
                    Err(e) => Err(e),
                },
            };
            if let Err(e) = result {
                self.lost(e);
            }
        }
        self.withdraw().await;
    }

    /// Connect, watch, learn the domain id, advertise.
    async fn connect(&mut self) -> Result<(), Lost> {
        let mut client = Client::connect(&self.places).await?;
        let mut watches = vec![Request::Watch {
            path: DOMAIN_ID,
            token: "domain",
        }];
        if self.static_ip {
            watches.push(Request::Watch {
                path: ROOTS[0],
                token: "vif",
            });
            watches.push(Request::Watch {
                path: ROOTS[1],
                token: "vf",
            });
        }
        if self.openstack.is_some() {
            watches.push(Request::Watch {
                path: openstack::REQUESTS,
                token: "openstack",
            });
        }
        watches.push(Request::Read {
            tx: 0,
            path: "domid",
        });
        let answers = client.batch(&watches, self.deadline()).await?;
        for (request, answer) in watches.iter().zip(&answers) {
            if let (Request::Watch { path, .. }, Err(e)) = (request, answer) {
                log::warn!("requests: cannot watch {path} ({e}): requests wait for the next event");
            }
        }
        self.client = Some(client);
        self.learn_domid(answers.last());
        if std::mem::take(&mut self.down_logged) {
            log::info!("requests: xenstore connection is back");
        }
        Ok(())
    }

    fn deadline(&self) -> Instant {
        Instant::now() + self.timeout
    }

    async fn batch(&mut self, requests: &[Request<'_>]) -> Result<Vec<Result<Reply, Errno>>, Lost> {
        let deadline = self.deadline();
        match self.client.as_mut() {
            Some(c) => c.batch(requests, deadline).await,
            None => Err(Lost::new("not connected to xenstore")),
        }
    }

    fn lost(&mut self, e: Lost) {
        self.client = None;
        if self.flag == Flag::Denied {
            self.flag = Flag::Unwritten;
        }
        if std::mem::replace(&mut self.down_logged, true) {
            log::debug!("requests: xenstore connection still failing: {e}");
        } else {
            log::warn!("requests: xenstore connection failed ({e}); retrying with backoff");
        }
    }

    /// The domain id from `domid`'s answer: who "this guest" is in the
    /// requests' permissions.
    fn learn_domid(&mut self, answer: Option<&Result<Reply, Errno>>) {
        let domid = match answer {
            Some(Ok(Reply::Value(v))) => v.trim().parse().ok(),
            _ => None,
        };
        if domid.is_some() {
            self.domid_warned = false;
        } else if !std::mem::replace(&mut self.domid_warned, true) {
            log::warn!(
                "requests: cannot read this domain's id (domid): every request is refused \
                 until it can be told from another domain's"
            );
        }
        self.own_domid = domid;
    }

    /// Maybe a new domain (resume, restore, migration: the domain watch
    /// fired): its id may have changed, and it has no advertisement.
    async fn new_domain(&mut self) -> Result<(), Lost> {
        let answers = self
            .batch(&[Request::Read {
                tx: 0,
                path: "domid",
            }])
            .await?;
        self.learn_domid(answers.first());
        if self.static_ip {
            self.advertise().await?;
        }
        Ok(())
    }

    /// Write the advertisement if it is not there (a new domain has none).
    async fn advertise(&mut self) -> Result<(), Lost> {
        let answers = self
            .batch(&[Request::Read {
                tx: 0,
                path: FEATURE_STATIC_IP,
            }])
            .await?;
        if matches!(answers.first(), Some(Ok(Reply::Value(v))) if v == "1") {
            self.flag = Flag::Written;
            return Ok(());
        }
        if self.flag == Flag::Denied {
            return Ok(());
        }
        let answers = self
            .batch(&[Request::Write {
                tx: 0,
                path: FEATURE_STATIC_IP,
                value: "1",
            }])
            .await?;
        match answers.first() {
            Some(Ok(_)) => {
                log::debug!("requests: wrote {FEATURE_STATIC_IP} = 1");
                self.flag = Flag::Written;
            }
            Some(Err(e)) if matches!(e.0, libc::EACCES | libc::EPERM | libc::EROFS) => {
                log::info!(
                    "requests: {FEATURE_STATIC_IP}: permission denied, as is normal under \
                     xl/libxl (control/ is read-only to the guest there); requests are still \
                     handled"
                );
                self.flag = Flag::Denied;
            }
            other => log::warn!("requests: cannot write {FEATURE_STATIC_IP}: {other:?}"),
        }
        Ok(())
    }

    /// Remove the advertisement: the agent stops handling requests.
    async fn withdraw(&mut self) {
        if self.flag != Flag::Written {
            return;
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        if let Some(client) = self.client.as_mut() {
            let rm = [Request::Remove {
                tx: 0,
                path: FEATURE_STATIC_IP,
            }];
            match client.batch(&rm, deadline).await {
                Ok(_) => log::info!("requests: withdrew {FEATURE_STATIC_IP}"),
                Err(e) => log::warn!("requests: cannot withdraw {FEATURE_STATIC_IP}: {e}"),
            }
        }
    }

    /// Handle every pending request; when the rate limit stops it, when to
    /// go on.
    async fn scan(&mut self) -> Result<Option<Instant>, Lost> {
        if self.static_ip {
            if let Some(at) = self.scan_static_ip().await? {
                return Ok(Some(at));
            }
        }
        if self.openstack.is_some() {
            return self.scan_openstack().await;
        }
        Ok(None)
    }

    /// Handle every pending static IP setting.
    async fn scan_static_ip(&mut self) -> Result<Option<Instant>, Lost> {
        if self.flag == Flag::Unwritten {
            self.advertise().await?;
        }
        let lists = [
            Request::Directory {
                tx: 0,
                path: ROOTS[0],
            },
            Request::Directory {
                tx: 0,
                path: ROOTS[1],
            },
        ];
        let answers = self.batch(&lists).await?;
        let mut dirs = Vec::new();
        for (root, answer) in ROOTS.iter().zip(answers) {
            if let Ok(Reply::Children(ids)) = answer {
                dirs.extend(ids.into_iter().map(|id| format!("{root}/{id}/{DIR}")));
            }
        }
        self.handled.retain(|dir, _| dirs.contains(dir));
        for dir in dirs {
            let Some((raw, trusted)) = self.snapshot(&dir).await? else {
                continue;
            };
            if !raw.pending() {
                self.handled.remove(&dir);
                continue;
            }
            if let Some(h) = self.handled.get(&dir) {
                if h.raw == raw {
                    if !h.ack_failed {
                        let (code, msg) = (h.code, h.msg.clone());
                        log::debug!("requests: {dir}: seen again, answered as before");
                        self.answer(&dir, &raw, code, &msg).await?;
                    }
                    continue;
                }
            }
            if let Err(at) = self.bucket.take(Instant::now()) {
                log::debug!("requests: rate limit reached; going on at {at:?}");
                return Ok(Some(at));
            }
            let (code, msg) = self.handle(&dir, &raw, trusted).await;
            self.answer(&dir, &raw, code, &msg).await?;
        }
        Ok(None)
    }

    /// The request under `dir` read in one transaction, with whether only
    /// dom0 and the guest can write it; `None` when it is not there.
    async fn snapshot(&mut self, dir: &str) -> Result<Option<(Raw, bool)>, Lost> {
        let paths: Vec<String> = LEAVES.iter().map(|l| format!("{dir}/{l}")).collect();
        for _ in 0..RETRIES {
            let start = self.batch(&[Request::TransactionStart]).await?;
            let tx = match start.first() {
                Some(Ok(Reply::Transaction(tx))) => *tx,
                other => {
                    log::debug!("requests: cannot start a transaction: {other:?}");
                    return Ok(None);
                }
            };
            let mut requests = vec![Request::GetPerms { tx, path: dir }];
            for path in &paths {
                requests.push(Request::Read { tx, path });
                requests.push(Request::GetPerms { tx, path });
            }
            requests.push(Request::TransactionEnd { tx, commit: true });
            let mut answers = self.batch(&requests).await?.into_iter();
            let own = self.own_domid;
            let trusted_perms = |a: Option<Result<Reply, Errno>>| match (a, own) {
                (Some(Ok(Reply::Perms(p))), Some(own)) => !static_ip::writable_by_others(&p, own),
                (Some(Err(Errno::ENOENT)), _) => true,
                _ => false,
            };
            let dir_answer = answers.next();
            if matches!(dir_answer, Some(Err(Errno::ENOENT))) {
                return Ok(None);
            }
            let mut trusted = trusted_perms(dir_answer);
            let mut raw = Raw::default();
            for value in raw.values.iter_mut() {
                *value = match answers.next() {
                    Some(Ok(Reply::Value(v))) => Some(v),
                    _ => None,
                };
                trusted &= trusted_perms(answers.next());
            }
            match answers.next() {
                Some(Ok(_)) => return Ok(Some((raw, trusted))),
                Some(Err(Errno::EAGAIN)) => continue,
                other => {
                    log::debug!("requests: reading {dir}: {other:?}");
                    return Ok(None);
                }
            }
        }
        Ok(None)
    }

    /// Check, parse and apply one request; its answer.
    async fn handle(&mut self, dir: &str, raw: &Raw, trusted: bool) -> (&'static str, String) {
        let (code, msg) = if !trusted {
            let msg = "refused: these nodes can be written by a domain other than dom0 \
                       and this guest (check their permissions)"
                .to_string();
            (code::UNTRUSTED, msg)
        } else {
            match static_ip::parse(raw) {
                Err(why) => (code::INVALID, format!("refused: {why}")),
                Ok(setting) => self.apply(dir, &setting).await,
            }
        };
        let audit = format!("static IP setting {dir}: {msg}");
        if code == code::DONE {
            log::info!("{audit}");
        } else {
            log::warn!("{audit} (error-code {code})");
        }
        self.handled.insert(
            dir.to_string(),
            Handled {
                raw: raw.clone(),
                code,
                msg: msg.clone(),
                ack_failed: false,
            },
        );
        (code, msg)
    }

    async fn apply(&mut self, _dir: &str, setting: &Setting) -> (&'static str, String) {
        let what = static_ip::describe(&setting.wanted);
        let Some(net) = self.net.as_mut() else {
            return (code::FAILED, "no network applier".to_string());
        };
        match net.apply(setting).await {
            Ok(note) => (
                code::DONE,
                format!("{what} for MAC {}: done{note}", setting.mac),
            ),
            Err((code, why)) => (code, format!("{what} for MAC {}: {why}", setting.mac)),
        }
    }

    /// Write the answer and remove `enabled`/`enabled6`, if the request is
    /// still the one handled.
    async fn answer(&mut self, dir: &str, raw: &Raw, code: &str, msg: &str) -> Result<(), Lost> {
        let paths: Vec<String> = LEAVES.iter().map(|l| format!("{dir}/{l}")).collect();
        let (code_path, msg_path) = (format!("{dir}/error-code"), format!("{dir}/error-msg"));
        let msg = truncate(msg);
        for _ in 0..RETRIES {
            let start = self.batch(&[Request::TransactionStart]).await?;
            let Some(Ok(Reply::Transaction(tx))) = start.first().cloned() else {
                return Ok(());
            };
            let reads: Vec<Request> = paths
                .iter()
                .map(|path| Request::Read { tx, path })
                .collect();
            let answers = self.batch(&reads).await?;
            let mut now = Raw::default();
            for (value, answer) in now.values.iter_mut().zip(answers) {
                if let Ok(Reply::Value(v)) = answer {
                    *value = Some(v);
                }
            }
            if now != *raw {
                // A newer request: the next scan handles it.
                self.batch(&[Request::TransactionEnd { tx, commit: false }])
                    .await?;
                return Ok(());
            }
            let mut writes = vec![
                Request::Write {
                    tx,
                    path: &code_path,
                    value: code,
                },
                Request::Write {
                    tx,
                    path: &msg_path,
                    value: msg,
                },
            ];
            for (i, leaf) in LEAVES.iter().enumerate() {
                if matches!(*leaf, "enabled" | "enabled6") && raw.values[i].is_some() {
                    writes.push(Request::Remove {
                        tx,
                        path: &paths[i],
                    });
                }
            }
            writes.push(Request::TransactionEnd { tx, commit: true });
            let answers = self.batch(&writes).await?;
            match answers.last() {
                Some(Ok(_)) => {
                    if let Some(e) = answers.iter().find_map(|a| a.as_ref().err()) {
                        self.ack_failed(dir, &format!("{e}"));
                    }
                    return Ok(());
                }
                Some(Err(Errno::EAGAIN)) => continue,
                other => {
                    self.ack_failed(dir, &format!("{other:?}"));
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    fn ack_failed(&mut self, dir: &str, why: &str) {
        if let Some(h) = self.handled.get_mut(dir) {
            if !std::mem::replace(&mut h.ack_failed, true) {
                log::warn!(
                    "requests: {dir}: cannot write the answer or remove enabled/enabled6 ({why}); \
                     the request is not handled again while it stays the same"
                );
            }
        }
    }
}

/// `error-msg` within xenstore's value limit.
fn truncate(msg: &str) -> &str {
    let mut end = msg.len().min(1024);
    while !msg.is_char_boundary(end) {
        end -= 1;
    }
    &msg[..end]
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests;
