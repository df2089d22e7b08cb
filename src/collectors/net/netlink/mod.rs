//! The event-driven network collector: the kernel's rtnetlink notifications.
//!
//! One netlink socket, subscribed to link and address changes *before* the
//! first dump, so that nothing falls between the dump and the events: the
//! links and addresses are dumped into one complete [`Event::Interfaces`],
//! and the notifications that arrived meanwhile are applied after it (each
//! one states the newest fact about its object, so they converge).
//!
//! Notifications are multicast: the kernel does not wait for us, and when
//! the socket's receive buffer is full it drops them and the next read
//! fails with `ENOBUFS`. Then, as after any other loss of sync (a broken
//! datagram, a socket error, a stalled dump), the collector logs once,
//! dumps again (reopening the socket when it failed) and sends a new
//! complete snapshot, which the state diffs. It never ends, except in
//! `oneshot` mode after the first snapshot.
//!
//! The few fields needed are read in place ([`wire`]) rather than through
//! `rtnetlink`/`netlink-packet-route`, which drop interfaces whose name is
//! not UTF-8 and end their stream silently on errors (README, Architecture).

mod wire;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ffi::OsStr;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures::stream;
use netlink_sys::{protocols::NETLINK_ROUTE, AsyncSocket, AsyncSocketExt, SocketAddr, TokioSocket};

use super::vif;
use crate::collectors::{Config, EventStream};
use crate::state::{Event, Interface, Kind, Link};

/// Kernel memory the socket may hold while the agent is busy: ten times the
/// usual default, room for about 2,000 notifications. Set with
/// `SO_RCVBUFFORCE` (the agent runs as root) so that `rmem_max` does not cap
/// it; the kernel doubles it for its bookkeeping. It costs nothing while
/// the agent keeps up.
const RECEIVE_BUFFER: libc::c_int = 1 << 20;

/// Size of one read: the kernel never sends a datagram above 32 KiB.
const DATAGRAM: usize = 64 << 10;

/// Most datagrams discarded before a dump: more than a receive buffer
/// holds; a bound for a storm that never lets the queue empty (then no
/// notification was lost, as the socket was not congested).
const DRAIN_MAX: usize = 1 << 16;

/// A dump that makes no progress for this long is abandoned (the socket is
/// reopened).
const DUMP_STALL: Duration = Duration::from_secs(10);

/// First and longest wait before reopening a socket that failed.
const RETRY_MIN: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(60);

/// Up to this many links to identify are probed one by one; more, after
/// one listing of the virtual interfaces (see [`Links::identify_dumped`]).
const LIST_FROM: usize = 5;

/// First and longest pause before dumping again after an interrupted dump.
const INTERRUPTED_MIN: Duration = Duration::from_millis(10);
const INTERRUPTED_MAX: Duration = Duration::from_secs(1);

/// Trouble is logged as a warning at most this often (then at debug level,
/// with a count in the next warning).
const WARN_EVERY: Duration = Duration::from_secs(600);

/// The collector's stream of events.
pub fn stream(config: &Config) -> EventStream {
    let collector = Collector {
        oneshot: config.oneshot,
        links: Links {
            sysfs: config.sysfs.clone(),
            known: HashMap::new(),
        },
        socket: None,
        buf: Vec::new(),
        pending: VecDeque::new(),
        seq: 0,
        resync: true,
        finished: false,
        retry: RETRY_MIN,
        interrupted: INTERRUPTED_MIN,
        warned: None,
        quiet: 0,
    };
    // Boxed: the state moves in and out of the stream with every event, a
    // pointer rather than the whole collector.
    Box::pin(stream::unfold(Box::new(collector), |mut c| async move {
        c.next().await.map(|e| (e, c))
    }))
}

/// Why the events stopped matching the kernel's state.
#[derive(Debug)]
enum Trouble {
    /// The receive buffer overflowed: notifications were lost.
    Overflow,
    /// The interfaces changed during a dump (`NLM_F_DUMP_INTR`): dump
    /// again on the same socket, after a short pause (a storm of changes
    /// would interrupt every dump).
    Interrupted,
    /// A datagram could not be parsed, or a dump failed or stalled (the
    /// socket is reopened).
    LostSync(String),
    /// The socket failed (it is reopened).
    Socket(io::Error),
}

impl From<io::Error> for Trouble {
    fn from(e: io::Error) -> Self {
        if e.raw_os_error() == Some(libc::ENOBUFS) {
            Trouble::Overflow
        } else {
            Trouble::Socket(e)
        }
    }
}

struct Collector {
    oneshot: bool,
    links: Links,
    socket: Option<Socket>,
    /// One datagram, reused (also for requests).
    buf: Vec<u8>,
    /// Events translated from the last datagram(s), in kernel order.
    pending: VecDeque<Event>,
    /// Sequence number of the last dump request.
    seq: u32,
    /// A complete dump is due.
    resync: bool,
    /// `oneshot` mode delivered its snapshot.
    finished: bool,
    /// Wait before the next reopening.
    retry: Duration,
    /// Wait before dumping again after an interrupted dump.
    interrupted: Duration,
    /// When trouble was last logged as a warning, and how many were logged
    /// quietly since.
    warned: Option<Instant>,
    quiet: u32,
}

impl Collector {
    /// The next event; `None` only in `oneshot` mode.
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            if self.finished {
                return None;
            }
            if self.socket.is_none() {
                match Socket::open() {
                    Ok(s) => {
                        self.socket = Some(s);
                        self.resync = true;
                    }
                    Err(e) => {
                        self.trouble(Trouble::Socket(e)).await;
                        continue;
                    }
                }
            }
            let result = if self.resync {
                match self.dump().await {
                    Ok(interfaces) => return Some(Event::Interfaces(interfaces)),
                    Err(t) => Err(t),
                }
            } else {
                self.receive(None).await
            };
            if let Err(t) = result {
                self.trouble(t).await;
            }
        }
    }

    /// Dump links then addresses into one complete snapshot, keeping the
    /// notifications that arrive meanwhile in `pending`, to follow it.
    async fn dump(&mut self) -> Result<Vec<Interface>, Trouble> {
        // Whatever was not delivered yet is older than the dump.
        self.pending.clear();
        if self.socket.as_ref().is_some_and(|s| s.used) {
            self.drain()?;
        }
        let mut dump = Dump::default();
        let mut overflowed = false;
        for request in [wire::RTM_GETLINK, wire::RTM_GETADDR] {
            let socket = self.socket.as_ref().ok_or_else(closed)?;
            self.seq = self.seq.wrapping_add(1);
            dump.seq = self.seq;
            dump.port = socket.port;
            dump.done = false;
            wire::dump_request(&mut self.buf, request, self.seq);
            socket.io.send_to(&self.buf, &SocketAddr::new(0, 0)).await?;
            if let Some(s) = &mut self.socket {
                s.used = true;
            }
            while !dump.done {
                match tokio::time::timeout(DUMP_STALL, self.receive(Some(&mut dump))).await {
                    Ok(Ok(())) => {}
                    // The dump goes on; notifications were lost meanwhile.
                    Ok(Err(Trouble::Overflow)) => overflowed = true,
                    Ok(Err(t)) => return Err(t),
                    Err(_) => {
                        return Err(Trouble::LostSync(format!(
                            "no reply to a netlink dump for {DUMP_STALL:?}"
                        )));
                    }
                }
            }
            match dump.error {
                None => {}
                Some(code) if code == -libc::EINTR => return Err(Trouble::Interrupted),
                Some(code) => {
                    return Err(Trouble::LostSync(format!(
                        "the kernel did not complete a netlink dump: {}",
                        io::Error::from_raw_os_error(code.wrapping_neg())
                    )))
                }
            }
            if request == wire::RTM_GETLINK {
                // Forget links that are gone (their removal may have been
                // lost); ones created since will be identified again.
                self.links
                    .known
                    .retain(|i, _| dump.interfaces.contains_key(i));
                self.links.identify_dumped(&mut dump);
            }
        }
        log::debug!(
            "netlink dump: {} interfaces, {} events meanwhile",
            dump.interfaces.len(),
            self.pending.len()
        );
        if self.oneshot {
            self.finished = true;
            self.pending.clear();
            self.socket = None;
        } else if overflowed {
            // The snapshot is sound, the notifications that follow it are
            // not: another round.
            self.pending.clear();
            self.note(&Trouble::Overflow);
        } else {
            self.retry = RETRY_MIN;
        }
        self.interrupted = INTERRUPTED_MIN;
        self.resync = overflowed;
        Ok(dump.interfaces.into_values().collect())
    }

    /// Discard what the socket holds, so that every notification after
    /// this point is delivered or reported lost.
    ///
    /// This is what makes a resync converge. After an overflow the kernel
    /// marks the socket congested and *silently* drops notifications until
    /// its queue is empty; the `ENOBUFS` is reported before the queued
    /// notifications are read, which are older than the loss. Applied after
    /// a fresh dump they would undo it, and the newer notifications that
    /// would have corrected them were dropped. Once the queue is empty the
    /// socket is no longer congested, and the next loss is reported again.
    /// Reading stops at the first empty read: no more than the receive
    /// buffer held (nothing is queued while congested) and, in the normal
    /// case, a few datagrams.
    fn drain(&mut self) -> Result<(), Trouble> {
        let socket = self.socket.as_ref().ok_or_else(closed)?;
        for _ in 0..DRAIN_MAX {
            self.buf.clear();
            self.buf.reserve(DATAGRAM);
            match socket
                .io
                .socket_ref()
                .recv(&mut self.buf, libc::MSG_DONTWAIT)
            {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {}
                Err(e) => return Err(Trouble::Socket(e)),
            }
        }
        Ok(())
    }

    /// Read one datagram; its notifications go to `pending`, its dump
    /// replies to `dump`.
    async fn receive(&mut self, dump: Option<&mut Dump>) -> Result<(), Trouble> {
        let socket = self.socket.as_ref().ok_or_else(closed)?;
        self.buf.clear();
        self.buf.reserve(DATAGRAM);
        let from = socket.io.recv_from(&mut self.buf).await?;
        if from.port_number() != 0 {
            return Ok(()); // not from the kernel
        }
        process(&self.buf, &mut self.links, &mut self.pending, dump)
    }

    /// Log `t` (once in a while), then get ready to resync: at once after
    /// an overflow, else with a new socket after a growing delay.
    async fn trouble(&mut self, t: Trouble) {
        self.pending.clear();
        if let Trouble::Interrupted = t {
            log::debug!("a netlink dump was interrupted by changes; dumping again");
            self.resync = true;
            tokio::time::sleep(self.interrupted).await;
            self.interrupted = (self.interrupted * 2).min(INTERRUPTED_MAX);
            return;
        }
        self.note(&t);
        if self.oneshot {
            log::error!("no network facts collected (--oneshot does not retry)");
            self.finished = true;
            self.socket = None;
            return;
        }
        self.resync = true;
        // After an overflow the socket is sound; anything else may recur
        // with it (a datagram we cannot read), so start afresh, not at once.
        if !matches!(t, Trouble::Overflow) {
            self.socket = None;
        }
        if self.socket.is_none() {
            // Reopening at once could spin on a persistent failure.
            tokio::time::sleep(self.retry).await;
            self.retry = (self.retry * 2).min(RETRY_MAX);
        }
    }

    fn note(&mut self, t: &Trouble) {
        let what = match t {
            Trouble::Overflow => {
                "netlink notifications were lost (receive buffer full)".to_string()
            }
            Trouble::LostSync(why) => why.clone(),
            Trouble::Interrupted => "a netlink dump was interrupted".to_string(),
            Trouble::Socket(e) => format!("netlink socket error: {e}"),
        };
        if self.warned.is_some_and(|at| at.elapsed() < WARN_EVERY) {
            self.quiet += 1;
            log::debug!("{what}; resynchronising");
        } else {
            let quiet = std::mem::take(&mut self.quiet);
            let more = if quiet > 0 {
                format!(" ({quiet} more such events since the last warning)")
            } else {
                String::new()
            };
            log::warn!("{what}; resynchronising with a full dump{more}");
            self.warned = Some(Instant::now());
        }
    }
}

fn closed() -> Trouble {
    Trouble::Socket(io::Error::from(io::ErrorKind::NotConnected))
}

/// A dump in progress.
#[derive(Default)]
struct Dump {
    seq: u32,
    port: u32,
    done: bool,
    error: Option<i32>,
    interfaces: BTreeMap<u32, Interface>,
    /// Links of the dump to identify once it is complete, with their names
    /// as the kernel gave them.
    unidentified: Vec<(u32, Box<[u8]>)>,
}

/// Sort the messages of one datagram: replies to our dump go into `dump`,
/// notifications become events in `pending`. Messages that are not ours to
/// read (other families, bridge ports, malformed) are skipped.
fn process(
    datagram: &[u8],
    links: &mut Links,
    pending: &mut VecDeque<Event>,
    mut dump: Option<&mut Dump>,
) -> Result<(), Trouble> {
    for m in wire::messages(datagram) {
        let m = m.map_err(|()| Trouble::LostSync("malformed netlink datagram".into()))?;
        if let Some(d) = dump
            .as_deref_mut()
            .filter(|d| d.seq == m.seq && d.port == m.port)
        {
            if m.flags & wire::NLM_F_DUMP_INTR != 0 {
                // Not a snapshot: see NLM_F_DUMP_INTR. Finish reading it,
                // then dump again.
                d.error.get_or_insert(-libc::EINTR);
            }
            match m.kind {
                wire::NLMSG_DONE => {
                    d.done = true;
                    if let Some(code) = wire::error_code(m.payload).filter(|&c| c < 0) {
                        d.error.get_or_insert(code);
                    }
                }
                wire::NLMSG_ERROR => {
                    d.done = true;
                    d.error = wire::error_code(m.payload)
                        .filter(|&c| c != 0)
                        .or(Some(-libc::EIO));
                }
                wire::RTM_NEWLINK => {
                    if let Some(l) = wire::link(m.payload) {
                        let link = links.dumped_link(&l, &mut d.unidentified);
                        d.interfaces.insert(link.index, Interface::new(link));
                    }
                }
                wire::RTM_NEWADDR => {
                    // An address whose link the link dump did not have: the
                    // link is newer, and its notifications are in `pending`.
                    if let Some(a) = wire::address(m.payload) {
                        if let Some(i) = d.interfaces.get_mut(&a.index) {
                            i.addresses.insert(a.addr, a.info);
                        }
                    }
                }
                _ => {}
            }
            continue;
        }
        let event = match m.kind {
            wire::RTM_NEWLINK => wire::link(m.payload).map(|l| Event::LinkUpdated(links.link(&l))),
            wire::RTM_DELLINK => wire::link_index(m.payload).map(|index| {
                links.known.remove(&index);
                Event::LinkRemoved(index)
            }),
            wire::RTM_NEWADDR => wire::address(m.payload).map(|a| Event::AddressUpdated {
                index: a.index,
                addr: a.addr,
                info: a.info,
            }),
            wire::RTM_DELADDR => wire::address(m.payload).map(|a| Event::AddressRemoved {
                index: a.index,
                addr: a.addr,
            }),
            wire::NLMSG_OVERRUN => return Err(Trouble::Overflow),
            _ => None,
        };
        if let Some(e) = event {
            pending.push_back(e);
        }
    }
    Ok(())
}

/// Turns link messages into [`Link`]s, identifying each interface once.
struct Links {
    sysfs: PathBuf,
    /// What each interface was identified as, under which name: it is
    /// identified again only when it is new or renamed.
    known: HashMap<u32, Known>,
}

struct Known {
    name: Box<[u8]>,
    kind: Kind,
}

impl Links {
    /// The link of a notification, identified at once when it is new or
    /// renamed.
    fn link(&mut self, m: &wire::LinkMsg) -> Link {
        let kind = match self.cached(m) {
            Some(kind) => kind,
            None => {
                let name = OsStr::from_bytes(m.name);
                let kind = vif::identify_link(&self.sysfs, name, m.info_kind);
                self.remember(m.index, m.name.into(), kind);
                kind
            }
        };
        new_link(m, kind)
    }

    /// The link of a dump reply. One new or renamed is noted in
    /// `unidentified` and, meanwhile, has the kind its link kind gives;
    /// [`Links::identify_dumped`] settles it.
    fn dumped_link(&mut self, m: &wire::LinkMsg, unidentified: &mut Vec<(u32, Box<[u8]>)>) -> Link {
        let kind = self.cached(m).unwrap_or_else(|| {
            unidentified.push((m.index, m.name.into()));
            vif::by_link_kind(m.info_kind)
        });
        new_link(m, kind)
    }

    /// Identify the links of a complete link dump that are not known yet.
    ///
    /// The interfaces without a device are listed once, after the dump
    /// (see [`vif::VirtualInterfaces`]), so that a dump of many virtual
    /// links reads one directory instead of probing each link. After the
    /// dump, not before: a name the list shows as virtual was that
    /// device's when the list was read, so when the dumped link with that
    /// name is another device, it was renamed after the dump, and its
    /// rename notification (which follows the dump) identifies it again.
    fn identify_dumped(&mut self, dump: &mut Dump) {
        // Listing costs about as many syscalls as probing five links.
        let virtual_interfaces = if dump.unidentified.len() > LIST_FROM {
            vif::VirtualInterfaces::list(&self.sysfs)
        } else {
            vif::VirtualInterfaces::default()
        };
        for (index, name) in std::mem::take(&mut dump.unidentified) {
            let Some(link) = dump.interfaces.get_mut(&index).map(|i| &mut i.link) else {
                continue;
            };
            let os_name = OsStr::from_bytes(&name);
            if !virtual_interfaces.contains(os_name) {
                if let Some(id) = vif::vif_id(&self.sysfs, os_name) {
                    link.kind = Kind::Vif(id);
                }
            }
            self.remember(index, name, link.kind);
        }
    }

    /// The kind of a loopback link, or of one identified under the same
    /// name.
    fn cached(&self, m: &wire::LinkMsg) -> Option<Kind> {
        if m.flags & wire::IFF_LOOPBACK != 0 {
            return Some(Kind::Loopback);
        }
        self.known
            .get(&m.index)
            .filter(|k| *k.name == *m.name)
            .map(|k| k.kind)
    }

    fn remember(&mut self, index: u32, name: Box<[u8]>, kind: Kind) {
        self.known.insert(index, Known { name, kind });
    }
}

fn new_link(m: &wire::LinkMsg, kind: Kind) -> Link {
    Link {
        index: m.index,
        name: String::from_utf8_lossy(m.name).into_owned(),
        mac: m.mac.map(mac),
        kind,
        master: m.master,
        up: m.flags & wire::IFF_UP != 0,
    }
}

/// `aa:bb:cc:dd:ee:ff`, whatever the length of the hardware address.
fn mac(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    s
}

/// The netlink socket and its port id (our address, in dump replies).
struct Socket {
    io: TokioSocket,
    port: u32,
    /// A dump was asked on it. A socket just opened needs no draining
    /// before its first dump: nothing was lost on it, so the notifications
    /// it holds are followed by every later one, and applied after the
    /// dump they converge.
    used: bool,
}

impl Socket {
    /// A socket subscribed to link and address changes, with a large
    /// receive buffer.
    fn open() -> io::Result<Self> {
        let mut io = TokioSocket::new(NETLINK_ROUTE)?;
        let s = io.socket_mut();
        s.bind(&SocketAddr::new(
            0,
            wire::RTMGRP_LINK | wire::RTMGRP_IPV4_IFADDR | wire::RTMGRP_IPV6_IFADDR,
        ))?;
        set_receive_buffer(s.as_raw_fd());
        let mut addr = SocketAddr::new(0, 0);
        s.get_address(&mut addr)?;
        Ok(Socket {
            io,
            port: addr.port_number(),
            used: false,
        })
    }
}

/// `SO_RCVBUFFORCE` (not capped by `net.core.rmem_max`, needs
/// `CAP_NET_ADMIN`, which the shipped unit does not grant), else
/// `SO_RCVBUF`. Says once what was obtained when it is less: a burst
/// beyond the buffer costs a full re-dump, nothing is lost.
fn set_receive_buffer(fd: std::os::fd::RawFd) {
    let set = |option| {
        // SAFETY: a valid socket, an int option value and its size.
        unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                option,
                (&RECEIVE_BUFFER as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            ) == 0
        }
    };
    if set(SO_RCVBUFFORCE) {
        return;
    }
    let forced = io::Error::last_os_error();
    set(libc::SO_RCVBUF);
    let mut size: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: a valid socket, an int and its size.
    let read = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&mut size as *mut libc::c_int).cast(),
            &mut len,
        )
    } == 0;
    // The kernel reports twice what it grants the data (bookkeeping).
    static SAID: std::sync::Once = std::sync::Once::new();
    SAID.call_once(|| {
        log::info!(
            "netlink receive buffer: {} KiB of the {} KiB asked for (SO_RCVBUFFORCE: {forced}; \
             capped by net.core.rmem_max): a burst of changes beyond it costs a full re-dump, \
             nothing is lost",
            if read { size / 2 / 1024 } else { 0 },
            RECEIVE_BUFFER / 1024
        );
    });
}

/// Not in `libc` for every Linux target; 33 on all but MIPS, SPARC, PA-RISC
/// and Alpha (where the attempt fails harmlessly and `SO_RCVBUF` is used).
const SO_RCVBUFFORCE: libc::c_int = 33;

#[cfg(test)]
mod tests;
