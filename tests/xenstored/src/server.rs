//! Sockets and threads: one acceptor per socket, and per connection a
//! reader (which handles requests under the store lock) and a writer (which
//! sends replies and watch events in the order the store queued them, so a
//! client that does not read never blocks the server).

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::domain::{self, DomainConfig};
use crate::oplog::{ConnId, OpRecord};
use crate::ops::Limits;
use crate::path;
use crate::perms::Perms;
use crate::store::{Corruption, Out, Role, Store, WatchInfo};
use crate::wire::{self, Errno, MsgType};

/// Configures and starts a [`Server`].
#[derive(Clone, Debug)]
pub struct Builder {
    socket: Option<PathBuf>,
    dom0_socket: Option<PathBuf>,
    domain: DomainConfig,
    limits: Limits,
}

impl Default for Builder {
    fn default() -> Builder {
        Builder {
            socket: None,
            dom0_socket: None,
            domain: DomainConfig::new(1),
            limits: Limits::default(),
        }
    }
}

impl Builder {
    /// The guest socket. Without it, the server makes a private temporary
    /// directory holding `guest.sock` and `dom0.sock`, removed on drop.
    pub fn socket(mut self, path: impl Into<PathBuf>) -> Builder {
        self.socket = Some(path.into());
        self
    }

    /// A dom0 socket (privileged). Implied without [`Builder::socket`].
    pub fn dom0_socket(mut self, path: impl Into<PathBuf>) -> Builder {
        self.dom0_socket = Some(path.into());
        self
    }

    /// The guest's domid (default 1).
    pub fn domid(mut self, domid: u32) -> Builder {
        self.domain.domid = domid;
        self
    }

    /// Everything about the guest (name, UUID, memory, VIFs).
    pub fn domain(mut self, domain: DomainConfig) -> Builder {
        self.domain = domain;
        self
    }

    /// Limits and quotas.
    pub fn limits(mut self, limits: Limits) -> Builder {
        self.limits = limits;
        self
    }

    /// The per-domain node quota (default 1000).
    pub fn node_quota(mut self, nodes: usize) -> Builder {
        self.limits.node_quota = nodes;
        self
    }

    /// Binds the sockets and starts serving.
    pub fn start(self) -> io::Result<Server> {
        let (guest, dom0, temp_dir) = match self.socket {
            Some(s) => (s, self.dom0_socket, None),
            None => {
                let dir = make_temp_dir()?;
                let dom0 = self.dom0_socket.unwrap_or_else(|| dir.join("dom0.sock"));
                (dir.join("guest.sock"), Some(dom0), Some(dir))
            }
        };
        let inner = Arc::new(Inner {
            store: Mutex::new(Store::new(self.domain, self.limits)),
            changed: Condvar::new(),
            guest_socket: guest,
            dom0_socket: dom0,
            acceptors: Mutex::new(Vec::new()),
            threads: Mutex::new(Vec::new()),
            next_conn: AtomicU64::new(1),
        });
        let server = Server { inner, temp_dir };
        server.start()?;
        Ok(server)
    }
}

fn make_temp_dir() -> io::Result<PathBuf> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let dir =
        std::env::temp_dir().join(format!("test-xenstored-{}-{n}-{nanos}", std::process::id()));
    fs::create_dir_all(&dir)?;
    Ok(dir)
}

struct Acceptor {
    socket: PathBuf,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

struct Inner {
    store: Mutex<Store>,
    /// Notified after every request and every change, for `wait_for`.
    changed: Condvar,
    guest_socket: PathBuf,
    dom0_socket: Option<PathBuf>,
    acceptors: Mutex<Vec<Acceptor>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    next_conn: AtomicU64,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Store> {
        // A panic in a test thread must not hide the tree from the others.
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn serve(self: &Arc<Self>, stream: UnixStream, role: Role) -> io::Result<()> {
        let id = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel::<Out>();
        let mut writer = stream.try_clone()?;
        let mut reader = stream.try_clone()?;
        self.lock().add_conn(id, role, tx, stream);
        self.changed.notify_all();
        let w = thread::Builder::new()
            .name(format!("xs-write-{id}"))
            .spawn(move || {
                for out in rx {
                    match out {
                        Out::Bytes(msg) => {
                            if wire::write_message(&mut writer, &msg).is_err() {
                                break;
                            }
                        }
                        // The reader sees the end too, and forgets the
                        // connection.
                        Out::Close => {
                            let _ = writer.shutdown(std::net::Shutdown::Both);
                            break;
                        }
                    }
                }
            })?;
        let inner = Arc::clone(self);
        let r = thread::Builder::new()
            .name(format!("xs-read-{id}"))
            .spawn(move || {
                // Ends on EOF, on an error, or on an oversized payload
                // (the client is dropped, as C xenstored does).
                while let Ok(Some((hdr, payload))) = wire::read_message(&mut reader) {
                    let delay = inner.lock().faults.reply_delay;
                    if !delay.is_zero() {
                        thread::sleep(delay);
                    }
                    let mut store = inner.lock();
                    if !store.has_conn(id) {
                        break;
                    }
                    store.handle(id, hdr, &payload);
                    drop(store);
                    inner.changed.notify_all();
                }
                inner.lock().remove_conn(id);
                inner.changed.notify_all();
            })?;
        let mut threads = self.threads.lock().unwrap_or_else(|e| e.into_inner());
        threads.retain(|t| !t.is_finished());
        threads.push(w);
        threads.push(r);
        Ok(())
    }
}

fn accept_loop(inner: Arc<Inner>, listener: UnixListener, role: Role, stop: Arc<AtomicBool>) {
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        match stream {
            Ok(s) => {
                if let Err(e) = inner.serve(s, role) {
                    eprintln!("test-xenstored: cannot serve a connection: {e}");
                }
            }
            Err(e) => {
                eprintln!("test-xenstored: accept: {e}");
                thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// A running test xenstored. Dropping it stops it and removes its sockets.
///
/// The API acts as dom0 (privileged), resolves relative paths in the
/// guest's home, fires watches and is logged like requests (with
/// [`crate::Origin::Api`]).
pub struct Server {
    inner: Arc<Inner>,
    temp_dir: Option<PathBuf>,
}

/// A read-only look at the server's state, for [`Server::wait_for`].
pub struct View<'a>(&'a Store);

impl View<'_> {
    /// The value of a node (relative paths are in the guest's home).
    pub fn read(&self, p: &str) -> Option<String> {
        let full = path::canonicalize(p, &self.0.home());
        self.0
            .tree
            .get(&full)
            .map(|n| String::from_utf8_lossy(&n.value).into_owned())
    }

    /// Whether a node exists.
    pub fn exists(&self, p: &str) -> bool {
        self.0.tree.contains(&path::canonicalize(p, &self.0.home()))
    }

    /// The operation log since the last reset.
    pub fn ops(&self) -> &[OpRecord] {
        &self.0.log
    }

    /// Number of client connections.
    pub fn connections(&self) -> usize {
        self.0.conn_ids().len()
    }

    /// Every registered watch.
    pub fn watches(&self) -> Vec<WatchInfo> {
        self.0.watches()
    }
}

/// One node in [`Server::tree`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeInfo {
    /// The value (lossy UTF-8).
    pub value: String,
    /// Permissions as `xenstore-ls -p` shows them: `n0,r5`.
    pub perms: String,
}

impl Server {
    /// A builder with the defaults: domid 1, libxl's skeleton, temporary
    /// guest and dom0 sockets, C xenstored's limits.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// Starts a server with the defaults and the given domid.
    pub fn start_default(domid: u32) -> io::Result<Server> {
        Server::builder().domid(domid).start()
    }

    fn lock(&self) -> MutexGuard<'_, Store> {
        self.inner.lock()
    }

    /// Runs `f` on the store, then wakes waiters.
    fn with<T>(&self, f: impl FnOnce(&mut Store) -> T) -> T {
        let r = f(&mut self.lock());
        self.inner.changed.notify_all();
        r
    }

    // ---------------------------------------------------------- lifecycle

    /// The guest socket: give it to clients as `XENSTORED_PATH`.
    pub fn socket_path(&self) -> &Path {
        &self.inner.guest_socket
    }

    /// The dom0 socket, if any.
    pub fn dom0_socket_path(&self) -> Option<&Path> {
        self.inner.dom0_socket.as_deref()
    }

    /// Whether the sockets are listening.
    pub fn is_running(&self) -> bool {
        !self
            .inner
            .acceptors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }

    /// Binds the sockets again after [`Server::stop`] (the tree is kept).
    pub fn start(&self) -> io::Result<()> {
        let mut acceptors = self
            .inner
            .acceptors
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if !acceptors.is_empty() {
            return Ok(());
        }
        let sockets = std::iter::once((self.inner.guest_socket.clone(), Role::Guest))
            .chain(self.inner.dom0_socket.clone().map(|p| (p, Role::Dom0)));
        for (socket, role) in sockets {
            let _ = fs::remove_file(&socket);
            let listener = UnixListener::bind(&socket)?;
            let stop = Arc::new(AtomicBool::new(false));
            let inner = Arc::clone(&self.inner);
            let flag = Arc::clone(&stop);
            let thread = thread::Builder::new()
                .name("xs-accept".into())
                .spawn(move || accept_loop(inner, listener, role, flag))?;
            acceptors.push(Acceptor {
                socket,
                stop,
                thread,
            });
        }
        Ok(())
    }

    /// Stops listening, drops every connection (their watches and
    /// transactions are gone) and removes the socket files. The tree stays.
    pub fn stop(&self) {
        let acceptors: Vec<Acceptor> = self
            .inner
            .acceptors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
            .collect();
        for a in acceptors {
            a.stop.store(true, Ordering::SeqCst);
            // Wake the blocking accept() so that it sees the flag.
            let _ = UnixStream::connect(&a.socket);
            let _ = a.thread.join();
            let _ = fs::remove_file(&a.socket);
        }
        self.drop_connections();
        let threads: Vec<JoinHandle<()>> = self
            .inner
            .threads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
            .collect();
        for t in threads {
            let _ = t.join();
        }
    }

    /// A xenstored restart: stop, then listen again on the same sockets
    /// with the same tree. Clients must reconnect and re-register watches.
    pub fn restart(&self) -> io::Result<()> {
        self.stop();
        self.start()
    }

    /// Closes every client connection now (the server keeps listening).
    pub fn drop_connections(&self) {
        self.with(|s| {
            for id in s.conn_ids() {
                s.remove_conn(id);
            }
        });
    }

    // ------------------------------------------------------------- faults

    /// Every request of the guest about `prefix` or below fails with
    /// `EACCES` (relative prefixes are in the guest's home).
    pub fn deny(&self, prefix: &str) {
        self.fail_path(prefix, Errno::EACCES);
    }

    /// Every request of the guest about `prefix` or below fails with `errno`.
    pub fn fail_path(&self, prefix: &str, errno: Errno) {
        self.with(|s| s.faults.failing_paths.push((prefix.to_string(), errno)));
    }

    /// Removes every [`Server::deny`] and [`Server::fail_path`].
    pub fn clear_failing_paths(&self) {
        self.with(|s| s.faults.failing_paths.clear());
    }

    /// The next `n` transaction commits fail with `EAGAIN` (and are
    /// discarded), whatever they did.
    pub fn fail_next_commits(&self, n: u32) {
        self.with(|s| s.faults.eagain_commits = n);
    }

    /// Commits still to fail from [`Server::fail_next_commits`].
    pub fn pending_commit_failures(&self) -> u32 {
        self.lock().faults.eagain_commits
    }

    /// While on, every node creation by the guest fails with the quota
    /// error, as if the guest owned too many nodes.
    pub fn set_quota_exceeded(&self, on: bool) {
        self.with(|s| s.faults.quota_exceeded = on);
    }

    /// Changes the per-domain node quota.
    pub fn set_node_quota(&self, nodes: usize) {
        self.with(|s| s.limits.node_quota = nodes);
    }

    /// Each request waits `delay` before it is handled (a slow xenstored).
    pub fn set_reply_delay(&self, delay: Duration) {
        self.with(|s| s.faults.reply_delay = delay);
    }

    /// The next reply to a guest connection (whichever gets one first) is
    /// spoiled as `how` says; the request itself is applied. Replies to
    /// dom0 connections are never spoiled.
    pub fn corrupt_next_reply(&self, how: Corruption) {
        self.with(|s| s.faults.corruption = Some((how, false)));
    }

    /// Every reply to the guest's connections is spoiled as `how` says,
    /// until [`Server::clear_corruption`].
    pub fn corrupt_replies(&self, how: Corruption) {
        self.with(|s| s.faults.corruption = Some((how, true)));
    }

    /// Replies are sent as they are again (a pending
    /// [`Server::corrupt_next_reply`] is forgotten too).
    pub fn clear_corruption(&self) {
        self.with(|s| s.faults.corruption = None);
    }

    /// The spoiling still to come: `Some((how, every))`, `None` once a
    /// [`Server::corrupt_next_reply`] was used.
    pub fn pending_corruption(&self) -> Option<(Corruption, bool)> {
        self.lock().faults.corruption
    }

    /// While on, the guest's requests are applied (and logged, and fire
    /// watches) but get no reply, as from a hung xenstored. Watch events
    /// still come.
    pub fn swallow_replies(&self, on: bool) {
        self.with(|s| s.faults.swallow_replies = on);
    }

    /// Sends an `XS_WATCH_EVENT` for `path` with `token` to every guest
    /// connection, whether or not it has such a watch (a client must
    /// ignore tokens it does not know).
    pub fn spurious_watch_event(&self, path: &str, token: &str) {
        self.with(|s| s.spurious_event(path, token));
    }

    /// The guest becomes domain `domid`, as after save/restore or
    /// migration: its home is rebuilt from the libxl skeleton (everything
    /// the guest wrote is gone, as are extra nodes such as
    /// `control/feature-balloon`), its open transactions fail with
    /// `EAGAIN`, and each of its watches fires once (relative watches now
    /// in the new home), as when the guest kernel re-registers them on
    /// resume. Connections stay open.
    pub fn new_domain(&self, domid: u32) {
        self.with(|s| s.new_domain(domid));
    }

    // ------------------------------------------------------------ domain

    /// The guest's current domid.
    pub fn domid(&self) -> u32 {
        self.lock().domain.domid
    }

    /// The guest's home, `/local/domain/<domid>`.
    pub fn home(&self) -> String {
        self.lock().home()
    }

    /// Adds a VIF (frontend in the guest's `device/vif/<id>`, backend in
    /// dom0), as a hotplug does; kept across [`Server::new_domain`].
    pub fn add_vif(&self, id: u32, mac: &str) {
        self.with(|s| {
            s.domain.vifs.retain(|(i, _)| *i != id);
            s.domain.vifs.push((id, mac.to_string()));
            let specs = domain::vif(s.domain.domid, id, mac);
            s.install(specs, None);
        });
    }

    /// Removes a VIF, as an unplug does.
    pub fn remove_vif(&self, id: u32) {
        self.with(|s| {
            s.domain.vifs.retain(|(i, _)| *i != id);
            let d = s.domain.domid;
            s.remove(&format!("/local/domain/{d}/device/vif/{id}"), None);
            s.remove(&format!("/local/domain/0/backend/vif/{d}/{id}"), None);
        });
    }

    /// Announces an SR-IOV VF as XAPI does
    /// (`xenserver/device/net-sriov-vf/<id>/mac`, plus a guest-writable
    /// `xenserver/attr`).
    pub fn add_sriov_vf(&self, id: u32, mac: &str) {
        self.with(|s| {
            let specs = domain::sriov_vf(s.domain.domid, id, mac);
            s.install(specs, None);
        });
    }

    /// Pre-creates `control/feature-balloon` guest-writable, as XAPI does
    /// (libxl does not: then the guest's write fails with `EACCES`).
    pub fn precreate_feature_balloon(&self) {
        self.with(|s| {
            let spec = domain::feature_balloon(s.domain.domid);
            s.install(vec![spec], None);
        });
    }

    /// Writes `unique-domain-id` in the guest's home, as XAPI does for
    /// every new domain.
    pub fn set_unique_domain_id(&self, id: &str) -> Result<(), Errno> {
        self.write("unique-domain-id", id)
    }

    // ----------------------------------------------------- dom0 node API

    /// Reads a node's value.
    pub fn read(&self, p: &str) -> Option<String> {
        let r = self.with(|s| s.api(MsgType::Read, p, None, |c, f| c.read(f).map(|v| (v, false))));
        r.ok().map(|v| String::from_utf8_lossy(&v).into_owned())
    }

    /// Whether a node exists (not logged).
    pub fn exists(&self, p: &str) -> bool {
        let s = self.lock();
        s.tree.contains(&path::canonicalize(p, &s.home()))
    }

    /// Writes a node (creating missing parents), firing watches.
    pub fn write(&self, p: &str, value: &str) -> Result<(), Errno> {
        self.with(|s| {
            s.api(MsgType::Write, p, Some(value.to_string()), |c, f| {
                c.write(f, value.as_bytes()).map(|ch| ((), ch))
            })
        })
    }

    /// Creates an empty node if missing.
    pub fn mkdir(&self, p: &str) -> Result<(), Errno> {
        self.with(|s| {
            s.api(MsgType::Mkdir, p, None, |c, f| {
                c.mkdir(f).map(|ch| ((), ch))
            })
        })
    }

    /// Removes a subtree.
    pub fn rm(&self, p: &str) -> Result<(), Errno> {
        self.with(|s| s.api(MsgType::Rm, p, None, |c, f| c.rm(f).map(|ch| ((), ch))))
    }

    /// Sets permissions, given as `xenstore-ls -p` shows them (`n5,r0`) or
    /// as `xenstore-chmod` takes them (`n5 r0`).
    pub fn set_perms(&self, p: &str, perms: &str) -> Result<(), Errno> {
        let parsed = Perms::parse_list(perms)?;
        self.with(|s| {
            s.api(MsgType::SetPerms, p, Some(parsed.to_string()), |c, f| {
                c.set_perms(f, parsed).map(|ch| ((), ch))
            })
        })
    }

    /// A node's permissions as `n5,r0`.
    pub fn perms(&self, p: &str) -> Option<String> {
        let s = self.lock();
        let full = path::canonicalize(p, &s.home());
        s.tree.get(&full).map(|n| n.perms.to_string())
    }

    /// A node's children, in creation order.
    pub fn directory(&self, p: &str) -> Option<Vec<String>> {
        let s = self.lock();
        let full = path::canonicalize(p, &s.home());
        s.tree.get(&full).map(|n| n.children.clone())
    }

    // ------------------------------------------------------ observability

    /// Every node at or below `p` with value and permissions, by absolute
    /// path (`"/"` for the whole tree).
    pub fn tree(&self, p: &str) -> BTreeMap<String, NodeInfo> {
        let s = self.lock();
        let root = path::canonicalize(p, &s.home());
        s.tree
            .paths()
            .into_iter()
            .filter(|k| path::is_within(k, &root))
            .filter_map(|k| {
                s.tree.get(k).map(|n| {
                    let info = NodeInfo {
                        value: String::from_utf8_lossy(&n.value).into_owned(),
                        perms: n.perms.to_string(),
                    };
                    (k.clone(), info)
                })
            })
            .collect()
    }

    /// The subtree at `p` as `xenstore-ls -p` prints it (children indented
    /// one space per level, in creation order), the node itself first.
    pub fn dump(&self, p: &str) -> String {
        let s = self.lock();
        let root = path::canonicalize(p, &s.home());
        let mut out = String::new();
        dump_node(&s, &root, &root, 0, &mut out);
        out
    }

    /// The operation log since the last [`Server::reset_ops`].
    pub fn ops(&self) -> Vec<OpRecord> {
        self.lock().log.clone()
    }

    /// Empties the operation log.
    pub fn reset_ops(&self) {
        self.with(|s| s.log.clear());
    }

    /// Number of logged requests of each type.
    pub fn op_counts(&self) -> BTreeMap<MsgType, usize> {
        use crate::oplog::OpLogExt;
        self.lock().log.counts()
    }

    /// Number of client connections.
    pub fn connections(&self) -> usize {
        self.lock().conn_ids().len()
    }

    /// Ids of the connections, oldest first.
    pub fn connection_ids(&self) -> Vec<ConnId> {
        self.lock().conn_ids()
    }

    /// Every registered watch.
    pub fn watches(&self) -> Vec<WatchInfo> {
        self.lock().watches()
    }

    /// Number of open transactions.
    pub fn open_transactions(&self) -> usize {
        self.lock().open_transactions()
    }

    /// Waits until `cond` holds (checked now and after every request or
    /// change), at most `timeout`. Returns whether it held.
    pub fn wait_for(&self, timeout: Duration, mut cond: impl FnMut(&View<'_>) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut s = self.lock();
        loop {
            if cond(&View(&s)) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            s = self
                .inner
                .changed
                .wait_timeout(s, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Waits until node `p` has `value`.
    pub fn wait_value(&self, p: &str, value: &str, timeout: Duration) -> bool {
        self.wait_for(timeout, |v| v.read(p).as_deref() == Some(value))
    }

    /// Waits until node `p` exists.
    pub fn wait_exists(&self, p: &str, timeout: Duration) -> bool {
        self.wait_for(timeout, |v| v.exists(p))
    }

    /// Waits until there are `n` client connections.
    pub fn wait_connections(&self, n: usize, timeout: Duration) -> bool {
        self.wait_for(timeout, |v| v.connections() == n)
    }
}

fn escape(value: &[u8]) -> String {
    let mut s = String::new();
    for &b in value {
        match b {
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(b as char),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    s
}

fn dump_node(s: &Store, root: &str, p: &str, depth: usize, out: &mut String) {
    let Some(n) = s.tree.get(p) else {
        return;
    };
    let name = if p == root { p } else { path::basename(p) };
    out.push_str(&format!(
        "{:depth$}{name} = \"{}\"   ({})\n",
        "",
        escape(&n.value),
        n.perms
    ));
    for c in &n.children {
        dump_node(s, root, &path::join(p, c), depth + 1, out);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
        if let Some(dir) = &self.temp_dir {
            let _ = fs::remove_dir_all(dir);
        }
    }
}
