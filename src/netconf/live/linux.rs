//! The live half on Linux: rtnetlink requests on one socket of our own.
//!
//! Every change is one request with `NLM_F_ACK`; the kernel's answer is
//! matched by sequence number, and a request that gets none within
//! [`TIMEOUT`] fails, so that nothing can stall the agent's one thread.
//! Each operation reads what is there first (a dump) and changes only
//! what differs, which makes it idempotent.

pub(super) mod wire;

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use netlink_sys::{protocols::NETLINK_ROUTE, AsyncSocket, AsyncSocketExt, SocketAddr, TokioSocket};

use super::Link;
use crate::netconf::Static;
use crate::Error;

/// How long the kernel may take to answer one request (a dump included).
/// It answers at once; only a broken socket could take longer.
pub(super) const TIMEOUT: Duration = Duration::from_secs(5);

/// Size of one read: the kernel never sends a datagram above 32 KiB.
const DATAGRAM: usize = 64 << 10;

/// A dump interrupted by changes (`NLM_F_DUMP_INTR`) is made again, up to
/// this many times in all.
const DUMP_TRIES: usize = 3;

/// What the user can do about `EPERM`.
pub(super) const CAP_HINT: &str = "the agent needs CAP_NET_ADMIN for --allow static-ip (the \
                                   systemd drop-in startup/xen-guest-agent-static-ip.conf \
                                   grants it)";

/// Errors that mean "already gone" to a removal: no such address, route,
/// table or link.
const GONE: [i32; 4] = [libc::EADDRNOTAVAIL, libc::ESRCH, libc::ENOENT, libc::ENODEV];

/// A route socket for requests, and the sequence number of the last one.
pub struct Live {
    socket: TokioSocket,
    /// Our port id, in the kernel's answers.
    port: u32,
    seq: u32,
    /// One datagram, reused.
    buf: Vec<u8>,
}

/// Why a request failed, before it is put in the words of its operation.
#[derive(Debug)]
pub(super) enum Failure {
    /// The kernel refused it.
    Refused(Refused),
    /// The socket failed.
    Socket(io::Error),
    /// No answer within [`TIMEOUT`].
    Timeout,
    /// The answer could not be read.
    Malformed(wire::Malformed),
    /// The tables kept changing during a dump.
    Interrupted,
}

impl From<wire::Malformed> for Failure {
    fn from(m: wire::Malformed) -> Self {
        Failure::Malformed(m)
    }
}

impl Failure {
    fn errno(&self) -> Option<i32> {
        match self {
            Failure::Refused(r) => Some(r.errno),
            Failure::Socket(e) => e.raw_os_error(),
            _ => None,
        }
    }

    fn is_gone(&self) -> bool {
        self.errno().is_some_and(|e| GONE.contains(&e))
    }
}

/// The kernel's refusal: an errno, and its explanation when it gave one.
#[derive(Debug)]
pub(super) struct Refused {
    pub errno: i32,
    pub text: Option<String>,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", io::Error::from_raw_os_error(self.errno))?;
        if let Some(t) = &self.text {
            write!(f, ": {t}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Refused {}

/// `f` in the words of the operation `what` ("cannot add 192.0.2.10/24 to
/// eth0"), with the capability hint on `EPERM`.
pub(super) fn error(what: String, f: Failure) -> Error {
    let eperm = f.errno() == Some(libc::EPERM);
    let e = match f {
        Failure::Refused(r) => Error::io(what, r),
        Failure::Socket(e) => Error::io(what, e),
        Failure::Timeout => Error::new(format!(
            "{what}: no answer from the kernel within {TIMEOUT:?}"
        )),
        Failure::Malformed(m) => Error::new(format!("{what}: malformed netlink reply ({})", m.0)),
        Failure::Interrupted => Error::new(format!(
            "{what}: the kernel's tables kept changing during {DUMP_TRIES} dumps"
        )),
    };
    if eperm {
        e.hint(CAP_HINT)
    } else {
        e
    }
}

/// `IPv4` or `IPv6`, for messages.
fn family_name(addr: IpAddr) -> &'static str {
    if addr.is_ipv4() {
        "IPv4"
    } else {
        "IPv6"
    }
}

/// An `ip route`-like description of a default route through `link`.
fn describe(link: &Link, gateway: Option<IpAddr>, priority: Option<u32>) -> String {
    let mut s = String::from("default");
    if let Some(g) = gateway {
        s.push_str(&format!(" via {g}"));
    }
    s.push_str(&format!(" dev {}", link.name));
    if let Some(p) = priority {
        s.push_str(&format!(" metric {p}"));
    }
    s
}

/// `aa:bb:cc:dd:ee:ff`, whatever the length of the hardware address.
pub(super) fn mac_string(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Which of the dumped links carrying `mac` is the interface (see
/// [`Live::link_by_mac`] for the rule).
pub(super) fn choose(links: &[wire::LinkMsg], mac: &str) -> Result<Option<Link>, Error> {
    let mac = mac.to_ascii_lowercase();
    let name = |index: u32| {
        links
            .iter()
            .find(|l| l.index == index)
            .map_or_else(|| format!("index {index}"), |l| lossy(&l.name))
    };
    let carriers: Vec<&wire::LinkMsg> = links
        .iter()
        .filter(|l| l.flags & wire::IFF_LOOPBACK == 0)
        .filter(|l| l.mac.as_deref().is_some_and(|m| mac_string(m) == mac))
        .collect();
    // A link on top of another carrier (VLAN, ipvlan...) is not the one;
    // two that point at each other (a veth pair) both stay.
    let on_another = |l: &wire::LinkMsg| {
        l.link.is_some_and(|lower| {
            !l.link_elsewhere
                && lower != l.index
                && carriers
                    .iter()
                    .any(|c| c.index == lower && c.link != Some(l.index))
        })
    };
    let free: Vec<&&wire::LinkMsg> = carriers
        .iter()
        .filter(|l| l.master.is_none() && !on_another(l))
        .collect();
    match free.as_slice() {
        [] => match carriers.iter().find(|l| l.master.is_some()) {
            None => Ok(None),
            Some(port) => {
                let master = port.master.map(name).unwrap_or_default();
                Err(Error::new(format!(
                    "{} is a port of {master}: an address on it would not be used, and \
                     {master} does not carry the MAC {mac}",
                    lossy(&port.name)
                )))
            }
        },
        [one] => Ok(Some(Link {
            index: one.index,
            name: lossy(&one.name),
            mac,
        })),
        several => Err(Error::new(format!(
            "several interfaces carry the MAC {mac} ({}): which one to configure is ambiguous",
            several
                .iter()
                .map(|l| lossy(&l.name))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

fn lossy(name: &[u8]) -> String {
    String::from_utf8_lossy(name).into_owned()
}

impl Live {
    /// Open a `NETLINK_ROUTE` socket for requests (no multicast groups),
    /// non-blocking on the current tokio runtime (outside one, an error).
    pub fn open() -> Result<Live, Error> {
        let what = "cannot open a netlink route socket";
        // The socket registers with the runtime's reactor, which panics
        // when there is none.
        tokio::runtime::Handle::try_current().map_err(|e| Error::io(what, e))?;
        let mut socket = TokioSocket::new(NETLINK_ROUTE).map_err(|e| Error::io(what, e))?;
        let s = socket.socket_mut();
        let addr = s.bind_auto().map_err(|e| Error::io(what, e))?;
        // The kernel's explanations of errors, and refusals that do not
        // echo the whole request; older kernels have neither.
        let _ = s.set_ext_ack(true);
        let _ = s.set_cap_ack(true);
        Ok(Live {
            socket,
            port: addr.port_number(),
            seq: 0,
            buf: Vec::new(),
        })
    }

    /// The interface whose MAC is `mac` (`aa:bb:cc:dd:ee:ff`, compared
    /// case-insensitively); `Ok(None)` when none has it.
    ///
    /// Several links can carry one MAC: a bridge or bond takes its port's,
    /// a VLAN its parent's. The rule: loopback never matches; a port (a
    /// link with a master) is not the interface, nor is a link on top of
    /// another link that carries the MAC. One link left is the answer;
    /// none left but a port is an error naming the port and its master
    /// (the address would belong on the master, which has another MAC);
    /// several left is an error too (ambiguous).
    pub async fn link_by_mac(&mut self, mac: &str) -> Result<Option<Link>, Error> {
        let links = self
            .dump(wire::RTM_GETLINK, wire::AF_UNSPEC, |kind, payload| {
                Ok(match kind {
                    wire::RTM_NEWLINK => wire::link(payload)?,
                    _ => None,
                })
            })
            .await
            .map_err(|f| error("cannot list the network interfaces".into(), f))?;
        choose(&links, mac)
    }

    /// Make IPv4 on `link` exactly `want`: its address (made permanent if
    /// it was there), no other global IPv4 address on the link (host and
    /// link scope ones stay), and the main table's default route through
    /// the link via `want.gateway`, or none without one. The link is
    /// brought up first if it is down (a route needs it up).
    pub async fn apply_v4(&mut self, link: &Link, want: &Static<Ipv4Addr>) -> Result<(), Error> {
        self.apply(
            link,
            want.address.into(),
            want.prefix,
            want.gateway.map(IpAddr::from),
        )
        .await
    }

    /// The same for IPv6: other global addresses go, link-local ones
    /// (fe80::/10) stay; the address goes through duplicate address
    /// detection as usual (tentative for a moment).
    pub async fn apply_v6(&mut self, link: &Link, want: &Static<Ipv6Addr>) -> Result<(), Error> {
        self.apply(
            link,
            want.address.into(),
            want.prefix,
            want.gateway.map(IpAddr::from),
        )
        .await
    }

    /// Undo an IPv4 setting made earlier: remove `had`'s address and, with
    /// a gateway, the static default route through `link` via it. What is
    /// already gone (the link too) is success.
    pub async fn remove_v4(&mut self, link: &Link, had: &Static<Ipv4Addr>) -> Result<(), Error> {
        self.remove(
            link,
            had.address.into(),
            had.prefix,
            had.gateway.map(IpAddr::from),
        )
        .await
    }

    /// The same for IPv6.
    pub async fn remove_v6(&mut self, link: &Link, had: &Static<Ipv6Addr>) -> Result<(), Error> {
        self.remove(
            link,
            had.address.into(),
            had.prefix,
            had.gateway.map(IpAddr::from),
        )
        .await
    }

    async fn apply(
        &mut self,
        link: &Link,
        address: IpAddr,
        prefix: u8,
        gateway: Option<IpAddr>,
    ) -> Result<(), Error> {
        check_prefix("add", "to", link, address, prefix)?;
        self.bring_up(link).await?;
        let present = self.addresses(link, address).await?;
        // IPv6 knows an address by itself, whatever its prefix: the same
        // address with another prefix would make the addition a mere
        // update of it. Removed first.
        for a in present
            .iter()
            .filter(|a| a.local == address && a.prefix != prefix)
        {
            self.delete_address(link, a.local, a.peer, a.prefix).await?;
        }
        self.add_address(link, address, prefix).await?;
        let mut removed = false;
        for a in present.iter().filter(|a| {
            a.local != address && a.scope == wire::RT_SCOPE_UNIVERSE && !is_link_local(a.local)
        }) {
            self.delete_address(link, a.local, a.peer, a.prefix).await?;
            removed = true;
        }
        // Removing an IPv4 primary address removes its secondaries too
        // (unless promote_secondaries is set): ours may have been one.
        if removed && address.is_ipv4() {
            self.add_address(link, address, prefix).await?;
        }
        self.default_route(link, address, gateway).await
    }

    async fn remove(
        &mut self,
        link: &Link,
        address: IpAddr,
        prefix: u8,
        gateway: Option<IpAddr>,
    ) -> Result<(), Error> {
        check_prefix("remove", "from", link, address, prefix)?;
        if let Some(g) = gateway {
            let m = wire::RouteMatch {
                family: wire::family(address),
                tos: 0,
                protocol: wire::RTPROT_STATIC,
                kind: wire::RTN_UNSPEC,
                oif: link.index,
                gateway: Some(g),
                priority: None,
            };
            self.delete_route(link, &m).await?;
        }
        self.delete_address(link, address, address, prefix).await
    }

    /// Set `IFF_UP` on `link` when it is not.
    async fn bring_up(&mut self, link: &Link) -> Result<(), Error> {
        let mut flags = None;
        self.request(
            |seq| wire::get_link(link.index, seq),
            |kind, payload| {
                if kind == wire::RTM_NEWLINK {
                    if let Some(l) = wire::link(payload)? {
                        flags = Some(l.flags);
                    }
                }
                Ok(())
            },
        )
        .await
        .map_err(|f| {
            error(
                format!(
                    "cannot read the state of {} (index {})",
                    link.name, link.index
                ),
                f,
            )
        })?;
        let flags = flags.ok_or_else(|| {
            error(
                format!("cannot read the state of {}", link.name),
                Failure::Malformed(wire::Malformed("no link in the answer")),
            )
        })?;
        if flags & wire::IFF_UP != 0 {
            return Ok(());
        }
        self.request(|seq| wire::set_up(link.index, seq), ignore)
            .await
            .map_err(|f| error(format!("cannot bring {} up", link.name), f))
    }

    /// The addresses of `like`'s family on `link`.
    async fn addresses(&mut self, link: &Link, like: IpAddr) -> Result<Vec<wire::AddrMsg>, Error> {
        let family = wire::family(like);
        self.dump(wire::RTM_GETADDR, family, |kind, payload| {
            Ok(match kind {
                wire::RTM_NEWADDR => {
                    wire::address(family, payload)?.filter(|a| a.index == link.index)
                }
                _ => None,
            })
        })
        .await
        .map_err(|f| {
            error(
                format!(
                    "cannot list the {} addresses of {}",
                    family_name(like),
                    link.name
                ),
                f,
            )
        })
    }

    async fn add_address(&mut self, link: &Link, addr: IpAddr, prefix: u8) -> Result<(), Error> {
        match self
            .request(
                |seq| wire::new_address(link.index, addr, prefix, seq),
                ignore,
            )
            .await
        {
            Err(f) if f.errno() != Some(libc::EEXIST) => Err(error(
                format!("cannot add {addr}/{prefix} to {}", link.name),
                f,
            )),
            _ => Ok(()),
        }
    }

    async fn delete_address(
        &mut self,
        link: &Link,
        local: IpAddr,
        peer: IpAddr,
        prefix: u8,
    ) -> Result<(), Error> {
        match self
            .request(
                |seq| wire::del_address(link.index, local, peer, prefix, seq),
                ignore,
            )
            .await
        {
            Err(f) if !f.is_gone() => Err(error(
                format!("cannot remove {local}/{prefix} from {}", link.name),
                f,
            )),
            _ => Ok(()),
        }
    }

    /// The main table's default route through `link` via `gateway`, and no
    /// other through that link (via another gateway, or none).
    async fn default_route(
        &mut self,
        link: &Link,
        like: IpAddr,
        gateway: Option<IpAddr>,
    ) -> Result<(), Error> {
        if let Some(g) = gateway {
            self.request(
                |seq| wire::replace_default_route(link.index, g, seq),
                ignore,
            )
            .await
            .map_err(|f| {
                error(
                    format!("cannot set the route {}", describe(link, Some(g), None)),
                    f,
                )
            })?;
        }
        let family = wire::family(like);
        let routes = self
            .dump(wire::RTM_GETROUTE, family, |kind, payload| {
                Ok(match kind {
                    wire::RTM_NEWROUTE => {
                        wire::route(family, payload)?.filter(|r| r.is_default_through(link.index))
                    }
                    _ => None,
                })
            })
            .await
            .map_err(|f| {
                error(
                    format!(
                        "cannot list the {} routes of {}",
                        family_name(like),
                        link.name
                    ),
                    f,
                )
            })?;
        for r in routes.iter().filter(|r| r.gateway != gateway) {
            let m = wire::RouteMatch {
                family,
                tos: r.tos,
                protocol: r.protocol,
                kind: r.kind,
                oif: link.index,
                gateway: r.gateway,
                priority: r.priority,
            };
            self.delete_route(link, &m).await?;
        }
        Ok(())
    }

    async fn delete_route(&mut self, link: &Link, m: &wire::RouteMatch) -> Result<(), Error> {
        match self
            .request(|seq| wire::del_default_route(m, seq), ignore)
            .await
        {
            Err(f) if !f.is_gone() => Err(error(
                format!(
                    "cannot remove the route {}",
                    describe(link, m.gateway, m.priority)
                ),
                f,
            )),
            _ => Ok(()),
        }
    }

    /// A dump: what `parse` makes of each of its messages, when it makes
    /// something. Made again when the kernel says the tables changed
    /// meanwhile.
    async fn dump<T>(
        &mut self,
        kind: u16,
        family: u8,
        parse: impl Fn(u16, &[u8]) -> Result<Option<T>, Failure>,
    ) -> Result<Vec<T>, Failure> {
        let mut tries = 1;
        loop {
            let mut items = Vec::new();
            let result = self
                .exchange(
                    |seq| wire::dump(kind, family, seq),
                    true,
                    |k, p| {
                        items.extend(parse(k, p)?);
                        Ok(())
                    },
                )
                .await;
            match result {
                Err(Failure::Interrupted) if tries < DUMP_TRIES => tries += 1,
                Err(f) => return Err(f),
                Ok(()) => return Ok(items),
            }
        }
    }

    /// One acknowledged request, built by `build` with its sequence
    /// number; `each` sees the messages that come before the ack.
    async fn request(
        &mut self,
        build: impl FnOnce(u32) -> Vec<u8>,
        each: impl FnMut(u16, &[u8]) -> Result<(), Failure>,
    ) -> Result<(), Failure> {
        self.exchange(build, false, each).await
    }

    /// Send the request `build` makes with the next sequence number, and
    /// read until its answer: the ack, or the end of a dump.
    async fn exchange(
        &mut self,
        build: impl FnOnce(u32) -> Vec<u8>,
        dump: bool,
        mut each: impl FnMut(u16, &[u8]) -> Result<(), Failure>,
    ) -> Result<(), Failure> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let request = build(seq);
        let Live {
            socket, port, buf, ..
        } = self;
        let port = *port;
        let exchange = async {
            let sent = socket
                .send_to(&request, &SocketAddr::new(0, 0))
                .await
                .map_err(Failure::Socket)?;
            if sent != request.len() {
                return Err(Failure::Socket(io::Error::from(io::ErrorKind::WriteZero)));
            }
            let mut interrupted = false;
            loop {
                buf.clear();
                buf.reserve(DATAGRAM);
                let from = socket.recv_from(buf).await.map_err(Failure::Socket)?;
                if from.port_number() != 0 {
                    continue; // not from the kernel
                }
                for m in wire::messages(buf) {
                    let m = m?;
                    // A late answer to an earlier request that timed out.
                    if m.seq != seq || m.port != port {
                        continue;
                    }
                    interrupted |= m.flags & wire::NLM_F_DUMP_INTR != 0;
                    match m.kind {
                        wire::NLMSG_ERROR => {
                            let ack = wire::ack(m.flags, m.payload)?;
                            return refused(ack.code, ack.text);
                        }
                        wire::NLMSG_DONE if dump => {
                            refused(wire::done_status(m.payload), None)?;
                            return if interrupted {
                                Err(Failure::Interrupted)
                            } else {
                                Ok(())
                            };
                        }
                        kind => each(kind, m.payload)?,
                    }
                }
            }
        };
        tokio::time::timeout(TIMEOUT, exchange)
            .await
            .unwrap_or(Err(Failure::Timeout))
    }
}

/// Success for 0, else the kernel's refusal.
fn refused(code: i32, text: Option<String>) -> Result<(), Failure> {
    if code == 0 {
        Ok(())
    } else {
        Err(Failure::Refused(Refused {
            errno: code.saturating_neg(),
            text,
        }))
    }
}

/// For requests whose answer is the ack alone.
fn ignore(_: u16, _: &[u8]) -> Result<(), Failure> {
    Ok(())
}

fn is_link_local(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(_) => false,
        IpAddr::V6(a) => a.segments()[0] & 0xffc0 == 0xfe80,
    }
}

/// A prefix longer than the family allows is refused before the kernel
/// sees it.
pub(super) fn check_prefix(
    verb: &str,
    to: &str,
    link: &Link,
    address: IpAddr,
    prefix: u8,
) -> Result<(), Error> {
    let max = wire::max_prefix(address);
    if prefix > max {
        return Err(Error::new(format!(
            "cannot {verb} {address}/{prefix} {to} {}: an {} prefix is at most {max} bits long",
            link.name,
            family_name(address)
        )));
    }
    Ok(())
}
