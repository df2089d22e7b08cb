//! The server's state behind one lock: the tree, connections with their
//! watches, transactions, faults to inject and the operation log. Requests
//! are handled here, whole, under the lock.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::net::UnixStream;
use std::sync::mpsc::Sender;
use std::time::Duration;

use crate::domain::{self, DomainConfig, NodeSpec};
use crate::oplog::{ConnId, OpRecord, Origin};
use crate::ops::{Caller, Change, Ctx, Limits, Touched};
use crate::path;
use crate::perms::{Access, Perms};
use crate::tree::Tree;
use crate::wire::{self, Errno, Header, MsgType};

/// Which socket a connection came in on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The guest socket: acts as the (unprivileged) guest domain.
    Guest,
    /// The dom0 socket: acts as privileged dom0.
    Dom0,
}

/// A registered watch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Watch {
    /// The path as the client gave it (relative ones are re-resolved when
    /// the guest gets a new domain).
    pub given: String,
    /// The resolved path (or `@special` name).
    pub path: String,
    /// The client's token.
    pub token: String,
    /// Bytes stripped from event paths: the home prefix for relative
    /// watches, so events come back relative too.
    strip: usize,
}

impl Watch {
    fn new(given: &str, token: &str, home: &str) -> Watch {
        let path = path::canonicalize(given, home);
        let strip = if path == given { 0 } else { home.len() + 1 };
        Watch {
            given: given.to_string(),
            path,
            token: token.to_string(),
            strip,
        }
    }

    fn event(&self, changed: &str) -> Vec<u8> {
        let p = changed.get(self.strip..).unwrap_or(changed);
        let payload = wire::join_args(&[p, &self.token]);
        wire::encode(MsgType::WatchEvent as u32, 0, 0, &payload)
    }
}

/// What a connection's writer thread does next.
pub enum Out {
    /// Send these bytes.
    Bytes(Vec<u8>),
    /// Close the connection (after what was queued before).
    Close,
}

struct Conn {
    role: Role,
    outbox: Sender<Out>,
    stream: UnixStream,
    watches: Vec<Watch>,
}

struct Transaction {
    conn: ConnId,
    tree: Tree,
    touched: Touched,
    changes: Vec<Change>,
    /// Fails at commit (the guest got a new domain meanwhile).
    doomed: bool,
}

/// Faults to inject.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Requests from the guest about a path at or below a prefix fail with
    /// the errno. Relative prefixes follow the guest's current home.
    pub failing_paths: Vec<(String, Errno)>,
    /// So many next commits fail with `EAGAIN`.
    pub eagain_commits: u32,
    /// Every node creation by the guest fails with the quota error.
    pub quota_exceeded: bool,
    /// Delay before each request is handled.
    pub reply_delay: Duration,
    /// How the next reply to a guest (or every one, when the flag is set)
    /// is spoiled.
    pub corruption: Option<(Corruption, bool)>,
    /// Replies to the guest are not sent (requests are still applied).
    pub swallow_replies: bool,
}

/// How a reply to the guest is spoiled, for clients' fault handling
/// ([`crate::Server::corrupt_next_reply`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Corruption {
    /// A header announcing a payload over 4096 bytes (garbage), and
    /// nothing after it; the connection stays open.
    Garbage,
    /// The first half of the header, then the connection is closed.
    TruncatedHeader,
    /// A header announcing 0xffffffff bytes of payload; the connection
    /// stays open.
    HugeLength,
    /// The reply, with a request id the client never used (its own plus
    /// 0x40000000).
    UnknownRequestId,
    /// The reply, with a type that is neither the request's nor
    /// `XS_ERROR` (`XS_DIRECTORY`, or `XS_READ` for a directory).
    WrongType,
    /// The header and half of the payload, then the connection is closed
    /// (an empty payload is announced as one byte, and not sent).
    HalfPayload,
}

impl Corruption {
    /// Every kind, for tests that try them all.
    pub const ALL: [Corruption; 6] = [
        Corruption::Garbage,
        Corruption::TruncatedHeader,
        Corruption::HugeLength,
        Corruption::UnknownRequestId,
        Corruption::WrongType,
        Corruption::HalfPayload,
    ];

    /// What the client gets instead of `reply` (one whole message), and
    /// whether the connection is closed after it.
    fn apply(self, mut reply: Vec<u8>) -> (Vec<u8>, bool) {
        let set = |m: &mut Vec<u8>, field: usize, v: u32| {
            m[4 * field..4 * field + 4].copy_from_slice(&v.to_ne_bytes())
        };
        let word = |m: &[u8], field: usize| {
            u32::from_ne_bytes([
                m[4 * field],
                m[4 * field + 1],
                m[4 * field + 2],
                m[4 * field + 3],
            ])
        };
        match self {
            Corruption::Garbage => {
                reply.truncate(wire::HEADER_LEN);
                set(&mut reply, 3, wire::PAYLOAD_MAX as u32 + 1);
                (reply, false)
            }
            Corruption::TruncatedHeader => {
                reply.truncate(wire::HEADER_LEN / 2);
                (reply, true)
            }
            Corruption::HugeLength => {
                reply.truncate(wire::HEADER_LEN);
                set(&mut reply, 3, u32::MAX);
                (reply, false)
            }
            Corruption::UnknownRequestId => {
                let id = word(&reply, 1).wrapping_add(0x4000_0000);
                set(&mut reply, 1, id);
                (reply, false)
            }
            Corruption::WrongType => {
                let ty = if word(&reply, 0) == MsgType::Directory as u32 {
                    MsgType::Read
                } else {
                    MsgType::Directory
                };
                set(&mut reply, 0, ty as u32);
                (reply, false)
            }
            Corruption::HalfPayload => {
                let len = reply.len() - wire::HEADER_LEN;
                if len == 0 {
                    set(&mut reply, 3, 1);
                }
                reply.truncate(wire::HEADER_LEN + len / 2);
                (reply, true)
            }
        }
    }
}

/// The state.
pub struct Store {
    pub tree: Tree,
    pub domain: DomainConfig,
    pub limits: Limits,
    pub faults: Faults,
    conns: BTreeMap<ConnId, Conn>,
    transactions: HashMap<u32, Transaction>,
    next_tx: u32,
    pub log: Vec<OpRecord>,
    next_seq: u64,
}

/// Summary of a watch, for tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchInfo {
    /// The connection holding it.
    pub conn: ConnId,
    /// Whether that connection is on the guest socket.
    pub guest: bool,
    /// The resolved path.
    pub path: String,
    /// The token.
    pub token: String,
}

/// What a request produced besides its reply.
struct Outcome {
    reply: Result<Vec<u8>, Errno>,
    path: Option<String>,
    value: Option<String>,
    changed: bool,
    /// Messages for the requester after the reply (the first watch event).
    after: Vec<Vec<u8>>,
}

impl Outcome {
    fn new(path: Option<String>) -> Outcome {
        Outcome {
            reply: Err(Errno::EINVAL),
            path,
            value: None,
            changed: false,
            after: Vec::new(),
        }
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const OK: &[u8] = b"OK\0";

impl Store {
    /// A tree with the base nodes and the guest's skeleton.
    pub fn new(domain: DomainConfig, limits: Limits) -> Store {
        let mut s = Store {
            tree: Tree::new(Perms::new(0, Access::None)),
            domain,
            limits,
            faults: Faults::default(),
            conns: BTreeMap::new(),
            transactions: HashMap::new(),
            next_tx: 1,
            log: Vec::new(),
            next_seq: 0,
        };
        s.install(domain::base(), None);
        s.install(domain::skeleton(&s.domain), None);
        s
    }

    /// The guest's home.
    pub fn home(&self) -> String {
        path::domain_path(self.domain.domid)
    }

    fn caller(&self, role: Role) -> Caller {
        match role {
            Role::Guest => Caller {
                domid: self.domain.domid,
                privileged: false,
                home: self.home(),
            },
            Role::Dom0 => Caller {
                domid: 0,
                privileged: true,
                home: path::domain_path(0),
            },
        }
    }

    /// The test API acts as dom0 but resolves relative paths in the guest's
    /// home, which is what tests want to look at.
    pub fn api_caller(&self) -> Caller {
        Caller {
            domid: 0,
            privileged: true,
            home: self.home(),
        }
    }

    // ---------------------------------------------------------- connections

    pub fn add_conn(&mut self, id: ConnId, role: Role, outbox: Sender<Out>, stream: UnixStream) {
        self.conns.insert(
            id,
            Conn {
                role,
                outbox,
                stream,
                watches: Vec::new(),
            },
        );
    }

    pub fn has_conn(&self, id: ConnId) -> bool {
        self.conns.contains_key(&id)
    }

    /// Forgets a connection, its watches and transactions, and shuts its
    /// socket down so that its threads end.
    pub fn remove_conn(&mut self, id: ConnId) {
        if let Some(c) = self.conns.remove(&id) {
            let _ = c.stream.shutdown(std::net::Shutdown::Both);
        }
        self.transactions.retain(|_, t| t.conn != id);
    }

    pub fn conn_ids(&self) -> Vec<ConnId> {
        self.conns.keys().copied().collect()
    }

    pub fn watches(&self) -> Vec<WatchInfo> {
        self.conns
            .iter()
            .flat_map(|(id, c)| {
                c.watches.iter().map(move |w| WatchInfo {
                    conn: *id,
                    guest: c.role == Role::Guest,
                    path: w.path.clone(),
                    token: w.token.clone(),
                })
            })
            .collect()
    }

    pub fn open_transactions(&self) -> usize {
        self.transactions.len()
    }

    fn send(&self, id: ConnId, msg: Vec<u8>) {
        if let Some(c) = self.conns.get(&id) {
            let _ = c.outbox.send(Out::Bytes(msg));
        }
    }

    /// Sends the reply to a request, spoiled or swallowed as the faults
    /// say for the guest's connections.
    fn reply(&mut self, id: ConnId, role: Role, msg: Vec<u8>) {
        if role != Role::Guest {
            return self.send(id, msg);
        }
        if self.faults.swallow_replies {
            return;
        }
        let Some((corruption, every)) = self.faults.corruption else {
            return self.send(id, msg);
        };
        if !every {
            self.faults.corruption = None;
        }
        let (msg, close) = corruption.apply(msg);
        self.send(id, msg);
        if close {
            if let Some(c) = self.conns.get(&id) {
                let _ = c.outbox.send(Out::Close);
            }
        }
    }

    /// Sends a watch event to every guest connection, whatever their
    /// watches.
    pub fn spurious_event(&self, path: &str, token: &str) {
        let payload = wire::join_args(&[path, token]);
        let msg = wire::encode(MsgType::WatchEvent as u32, 0, 0, &payload);
        for c in self.conns.values().filter(|c| c.role == Role::Guest) {
            let _ = c.outbox.send(Out::Bytes(msg.clone()));
        }
    }

    // -------------------------------------------------------------- watches

    /// Sends the watch events for `changes` to every connection that may
    /// see them (except, with `only`, to connections of another role).
    fn fire(&self, changes: &[Change], only: Option<Role>) {
        for ch in changes {
            for c in self.conns.values() {
                if only.is_some_and(|r| r != c.role) {
                    continue;
                }
                let who = self.caller(c.role);
                let visible =
                    who.privileged || ch.readers.iter().any(|p| p.rights(who.domid, false).read);
                if !visible {
                    continue;
                }
                for w in &c.watches {
                    let hit = if ch.exact || path::is_special(&ch.path) {
                        w.path == ch.path
                    } else {
                        !path::is_special(&w.path) && path::is_within(&ch.path, &w.path)
                    };
                    if hit {
                        let _ = c.outbox.send(Out::Bytes(w.event(&ch.path)));
                    }
                }
            }
        }
    }

    // ------------------------------------------------------------- requests

    /// Handles one request from a connection: replies, fires watches, logs.
    pub fn handle(&mut self, conn: ConnId, hdr: Header, payload: &[u8]) {
        let Some(role) = self.conns.get(&conn).map(|c| c.role) else {
            return;
        };
        let who = self.caller(role);
        let kind = MsgType::from_u32(hdr.ty);
        let mut out = match kind {
            Some(k) => self.dispatch(conn, role, &who, k, hdr.tx_id, payload),
            None => {
                let mut o = Outcome::new(None);
                o.reply = Err(Errno::ENOSYS);
                o
            }
        };
        let (ty, payload) = match &out.reply {
            Ok(p) => (hdr.ty, p.clone()),
            Err(e) => (MsgType::Error as u32, wire::join_args(&[e.name()])),
        };
        self.reply(
            conn,
            role,
            wire::encode(ty, hdr.req_id, hdr.tx_id, &payload),
        );
        for m in std::mem::take(&mut out.after) {
            self.send(conn, m);
        }
        let origin = match role {
            Role::Guest => Origin::Guest(conn),
            Role::Dom0 => Origin::Dom0(conn),
        };
        self.record(origin, who.domid, kind, hdr.tx_id, out);
    }

    fn record(&mut self, origin: Origin, domid: u32, kind: Option<MsgType>, tx: u32, out: Outcome) {
        self.log.push(OpRecord {
            seq: self.next_seq,
            origin,
            domid,
            kind,
            path: out.path,
            value: out.value,
            tx,
            result: out.reply.map(|_| ()),
            changed: out.changed,
        });
        self.next_seq += 1;
    }

    fn failing(&self, role: Role, path: &str) -> Option<Errno> {
        if role != Role::Guest {
            return None;
        }
        let home = self.home();
        self.faults
            .failing_paths
            .iter()
            .find(|(prefix, _)| path::is_within(path, &path::canonicalize(prefix, &home)))
            .map(|(_, e)| *e)
    }

    fn dispatch(
        &mut self,
        conn: ConnId,
        role: Role,
        who: &Caller,
        kind: MsgType,
        tx: u32,
        payload: &[u8],
    ) -> Outcome {
        let args = wire::split_args(payload);
        let first = args.first().map(|a| text(a)).unwrap_or_default();
        let takes_path = matches!(
            kind,
            MsgType::Read
                | MsgType::Write
                | MsgType::Mkdir
                | MsgType::Rm
                | MsgType::Directory
                | MsgType::DirectoryPart
                | MsgType::GetPerms
                | MsgType::SetPerms
                | MsgType::Watch
                | MsgType::Unwatch
        );
        if !takes_path {
            return self.dispatch_other(conn, who, kind, tx, &args);
        }
        let full = path::canonicalize(&first, &who.home);
        let mut out = Outcome::new(Some(full.clone()));
        if !payload.contains(&0) {
            return out;
        }
        let special_ok = matches!(kind, MsgType::Watch | MsgType::Unwatch);
        if let Err(e) = path::validate(&full, who.privileged, special_ok) {
            out.reply = Err(e);
            return out;
        }
        if let Some(e) = self.failing(role, &full) {
            out.reply = Err(e);
            return out;
        }
        match kind {
            MsgType::Watch | MsgType::Unwatch => {
                let token = args.get(1).map(|t| text(t));
                out.value = token.clone();
                let Some(token) = token else {
                    return out;
                };
                if kind == MsgType::Watch {
                    self.watch(conn, who, &first, &token, &mut out);
                } else {
                    self.unwatch(conn, who, &first, &token, &mut out);
                }
                out
            }
            _ => {
                self.node_op(conn, who, kind, tx, &full, payload, &args, &mut out);
                out
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn node_op(
        &mut self,
        conn: ConnId,
        who: &Caller,
        kind: MsgType,
        tx: u32,
        full: &str,
        payload: &[u8],
        args: &[&[u8]],
        out: &mut Outcome,
    ) {
        let mut txn = if tx == 0 {
            None
        } else {
            match self.transactions.remove(&tx) {
                Some(t) if t.conn == conn => Some(t),
                Some(t) => {
                    self.transactions.insert(tx, t);
                    out.reply = Err(Errno::ENOENT);
                    return;
                }
                None => {
                    out.reply = Err(Errno::ENOENT);
                    return;
                }
            }
        };
        let mut scratch_touched = Touched::new();
        let mut live_changes = Vec::new();
        let (tree, touched, changes) = match &mut txn {
            Some(t) => (&mut t.tree, &mut t.touched, &mut t.changes),
            None => (&mut self.tree, &mut scratch_touched, &mut live_changes),
        };
        let mut ctx = Ctx {
            tree,
            who,
            limits: &self.limits,
            quota_exceeded: self.faults.quota_exceeded,
            touched,
            changes,
        };
        let ok = |b: bool| (OK.to_vec(), b);
        let r: Result<(Vec<u8>, bool), Errno> = match kind {
            MsgType::Read => ctx.read(full).map(|v| (v, false)),
            MsgType::GetPerms => ctx.get_perms(full).map(|p| (p.to_wire(), false)),
            MsgType::Directory => ctx.directory(full).map(|v| (v, false)),
            MsgType::DirectoryPart => match args.get(1).and_then(|o| text(o).parse().ok()) {
                Some(off) => ctx.directory_part(full, off).map(|v| (v, false)),
                None => Err(Errno::EINVAL),
            },
            MsgType::Write => {
                let at = payload
                    .iter()
                    .position(|b| *b == 0)
                    .unwrap_or(payload.len());
                let value = &payload[(at + 1).min(payload.len())..];
                out.value = Some(text(value));
                ctx.write(full, value).map(ok)
            }
            MsgType::Mkdir => ctx.mkdir(full).map(ok),
            MsgType::Rm => ctx.rm(full).map(ok),
            MsgType::SetPerms => {
                let list: Vec<String> = args[1..].iter().map(|a| text(a)).collect();
                match Perms::parse(&list) {
                    Ok(p) => {
                        out.value = Some(p.to_string());
                        ctx.set_perms(full, p).map(ok)
                    }
                    Err(e) => {
                        out.value = Some(list.join(","));
                        Err(e)
                    }
                }
            }
            _ => Err(Errno::ENOSYS),
        };
        match r {
            Ok((reply, changed)) => {
                out.reply = Ok(reply);
                out.changed = changed;
            }
            Err(e) => out.reply = Err(e),
        }
        match txn {
            Some(t) => {
                self.transactions.insert(tx, t);
            }
            None => self.fire(&live_changes, None),
        }
    }

    fn watch(&mut self, conn: ConnId, who: &Caller, given: &str, token: &str, out: &mut Outcome) {
        let limit = self.limits.watches_per_conn;
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let w = Watch::new(given, token, &who.home);
        if c.watches
            .iter()
            .any(|x| x.path == w.path && x.token == w.token)
        {
            out.reply = Err(Errno::EEXIST);
            return;
        }
        if !who.privileged && c.watches.len() >= limit {
            out.reply = Err(Errno::E2BIG);
            return;
        }
        // C xenstored fires every new watch once, right after the reply.
        out.after.push(w.event(&w.path));
        c.watches.push(w);
        out.reply = Ok(OK.to_vec());
    }

    fn unwatch(&mut self, conn: ConnId, who: &Caller, given: &str, token: &str, out: &mut Outcome) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let full = path::canonicalize(given, &who.home);
        let before = c.watches.len();
        c.watches.retain(|w| !(w.path == full && w.token == token));
        out.reply = if c.watches.len() < before {
            Ok(OK.to_vec())
        } else {
            Err(Errno::ENOENT)
        };
    }

    fn dispatch_other(
        &mut self,
        conn: ConnId,
        who: &Caller,
        kind: MsgType,
        tx: u32,
        args: &[&[u8]],
    ) -> Outcome {
        let mut out = Outcome::new(None);
        let first = args.first().map(|a| text(a));
        match kind {
            MsgType::GetDomainPath => {
                out.path = first.clone();
                // C xenstored reads the domid with atoi(): garbage is 0.
                out.reply = match first.as_deref() {
                    Some(arg) => Ok(wire::join_args(&[path::domain_path(atoi(arg))])),
                    None => Err(Errno::EINVAL),
                };
            }
            MsgType::TransactionStart => {
                let open = self
                    .transactions
                    .values()
                    .filter(|t| t.conn == conn)
                    .count();
                out.reply = if tx != 0 {
                    Err(Errno::EBUSY)
                } else if !who.privileged && open >= self.limits.transactions_per_conn {
                    Err(Errno::ENOSPC)
                } else {
                    let id = self.next_tx;
                    self.next_tx = self.next_tx.checked_add(1).unwrap_or(1);
                    self.transactions.insert(
                        id,
                        Transaction {
                            conn,
                            tree: self.tree.transaction_copy(),
                            touched: Touched::new(),
                            changes: Vec::new(),
                            doomed: false,
                        },
                    );
                    out.value = Some(id.to_string());
                    Ok(wire::join_args(&[id.to_string()]))
                };
            }
            MsgType::TransactionEnd => {
                out.value = first.clone();
                out.reply = self.transaction_end(conn, tx, first.as_deref());
                out.changed = out.reply.is_ok() && first.as_deref() == Some("T");
            }
            MsgType::ResetWatches => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.watches.clear();
                }
                self.transactions.retain(|_, t| t.conn != conn);
                out.reply = Ok(OK.to_vec());
            }
            MsgType::Introduce
            | MsgType::Release
            | MsgType::IsDomainIntroduced
            | MsgType::Resume
            | MsgType::SetTarget
            | MsgType::Control => {
                // Privileged requests: a guest gets EACCES as from C
                // xenstored; dom0 gets ENOSYS (not implemented here).
                out.value = first;
                out.reply = Err(if who.privileged {
                    Errno::ENOSYS
                } else {
                    Errno::EACCES
                });
            }
            _ => out.reply = Err(Errno::EINVAL),
        }
        out
    }

    fn transaction_end(
        &mut self,
        conn: ConnId,
        tx: u32,
        arg: Option<&str>,
    ) -> Result<Vec<u8>, Errno> {
        let commit = match arg {
            Some("T") => true,
            Some("F") => false,
            _ => return Err(Errno::EINVAL),
        };
        match self.transactions.get(&tx) {
            Some(t) if t.conn == conn => {}
            _ => return Err(Errno::ENOENT),
        }
        let Some(t) = self.transactions.remove(&tx) else {
            return Err(Errno::ENOENT);
        };
        if !commit {
            return Ok(OK.to_vec());
        }
        if self.faults.eagain_commits > 0 {
            self.faults.eagain_commits -= 1;
            return Err(Errno::EAGAIN);
        }
        let conflict = t
            .touched
            .iter()
            .any(|(p, generation)| self.tree.get(p).map(|n| n.generation) != *generation);
        if t.doomed || conflict {
            return Err(Errno::EAGAIN);
        }
        for p in t.tree.dirty() {
            self.tree.adopt(p, t.tree.get(p));
        }
        self.fire(&t.changes, None);
        Ok(OK.to_vec())
    }

    // ------------------------------------------------------------ test API

    /// Runs a node operation for the test API (as dom0) and logs it.
    pub fn api<T>(
        &mut self,
        kind: MsgType,
        path: &str,
        value: Option<String>,
        f: impl FnOnce(&mut Ctx<'_>, &str) -> Result<(T, bool), Errno>,
    ) -> Result<T, Errno> {
        let who = self.api_caller();
        let full = path::canonicalize(path, &who.home);
        let r = path::validate(&full, true, false).and_then(|()| {
            let mut touched = Touched::new();
            let mut changes = Vec::new();
            let mut ctx = Ctx {
                tree: &mut self.tree,
                who: &who,
                limits: &self.limits,
                quota_exceeded: false,
                touched: &mut touched,
                changes: &mut changes,
            };
            let r = f(&mut ctx, &full);
            self.fire(&changes, None);
            r
        });
        let mut out = Outcome::new(Some(full));
        out.value = value;
        out.changed = matches!(r, Ok((_, true)));
        out.reply = r.as_ref().map(|_| Vec::new()).map_err(|e| *e);
        self.record(Origin::Api, 0, Some(kind), 0, out);
        r.map(|(v, _)| v)
    }

    /// Creates or overwrites nodes as the toolstack does, missing parents
    /// inheriting their parent's permissions, and fires watches (only on
    /// connections of role `only`, if given).
    pub fn install(&mut self, specs: Vec<NodeSpec>, only: Option<Role>) {
        let who = self.api_caller();
        let mut touched = Touched::new();
        let mut changes = Vec::new();
        for (p, value, perms) in specs {
            let mut ctx = Ctx {
                tree: &mut self.tree,
                who: &who,
                limits: &self.limits,
                quota_exceeded: false,
                touched: &mut touched,
                changes: &mut changes,
            };
            let before = ctx.changes.len();
            if ctx.write(&p, value.as_bytes()).is_ok() {
                let _ = ctx.set_perms(&p, perms);
            }
            // One event per node is enough: keep the last one, which knows
            // both the inherited and the final permissions.
            let n = changes.len();
            if n > before + 1 {
                changes.drain(before..n - 1);
            }
        }
        self.fire(&changes, only);
    }

    /// Removes a subtree as the toolstack does, firing watches (only on
    /// connections of role `only`, if given).
    pub fn remove(&mut self, p: &str, only: Option<Role>) {
        let who = self.api_caller();
        let mut touched = Touched::new();
        let mut changes = Vec::new();
        let mut ctx = Ctx {
            tree: &mut self.tree,
            who: &who,
            limits: &self.limits,
            quota_exceeded: false,
            touched: &mut touched,
            changes: &mut changes,
        };
        let _ = ctx.rm(p);
        self.fire(&changes, only);
    }

    /// The guest becomes a new domain (save/restore, migration): its old
    /// home and backends go, a fresh skeleton comes, open transactions of
    /// the guest fail at commit, and the guest's watches (re-registered by
    /// its kernel on resume) fire once, under the new home.
    pub fn new_domain(&mut self, domid: u32) {
        let old = self.domain.domid;
        for t in self.transactions.values_mut() {
            if self
                .conns
                .get(&t.conn)
                .is_some_and(|c| c.role == Role::Guest)
            {
                t.doomed = true;
            }
        }
        self.remove(&path::domain_path(old), Some(Role::Dom0));
        self.remove(
            &format!("/local/domain/0/backend/vif/{old}"),
            Some(Role::Dom0),
        );
        self.fire(&[special("@releaseDomain")], Some(Role::Dom0));
        self.domain.domid = domid;
        let home = self.home();
        self.install(domain::skeleton(&self.domain), Some(Role::Dom0));
        self.fire(&[special("@introduceDomain")], Some(Role::Dom0));
        for c in self.conns.values_mut().filter(|c| c.role == Role::Guest) {
            for w in &mut c.watches {
                *w = Watch::new(&w.given, &w.token, &home);
                let _ = c.outbox.send(Out::Bytes(w.event(&w.path)));
            }
        }
    }
}

/// C's `atoi`: leading decimal digits, 0 if none.
fn atoi(s: &str) -> u32 {
    let digits: String = s
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().unwrap_or(0)
}

fn special(name: &str) -> Change {
    Change {
        path: name.to_string(),
        exact: true,
        readers: Vec::new(),
    }
}
