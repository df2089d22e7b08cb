//! The rtnetlink requests [`super::Live`] sends, and the replies it reads.
//!
//! Requests are laid out as `ip` lays them out (the unit tests compare the
//! bytes); replies are parsed in place and bounds checked: a malformed
//! message is a [`Malformed`], never a panic.
//!
//! The constants are the kernel's ABI (include/uapi/linux/{netlink,
//! rtnetlink,if_link,if_addr}.h), spelled out because the `libc` crate does
//! not carry all of them on every architecture.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const RTM_NEWLINK: u16 = 16;
pub const RTM_GETLINK: u16 = 18;
pub const RTM_NEWADDR: u16 = 20;
pub const RTM_DELADDR: u16 = 21;
pub const RTM_GETADDR: u16 = 22;
pub const RTM_NEWROUTE: u16 = 24;
pub const RTM_DELROUTE: u16 = 25;
pub const RTM_GETROUTE: u16 = 26;

pub const NLM_F_REQUEST: u16 = 0x1;
pub const NLM_F_ACK: u16 = 0x4;
/// Set on dump replies when the table changed during the dump.
pub const NLM_F_DUMP_INTR: u16 = 0x10;
pub const NLM_F_DUMP: u16 = 0x300;
pub const NLM_F_REPLACE: u16 = 0x100;
pub const NLM_F_CREATE: u16 = 0x400;
/// On an `NLMSG_ERROR`: only the header of the request is echoed.
const NLM_F_CAPPED: u16 = 0x100;
/// On an `NLMSG_ERROR`: extended-ack attributes follow the echo.
const NLM_F_ACK_TLVS: u16 = 0x200;
/// The kernel's explanation of an error, a NUL-terminated string.
const NLMSGERR_ATTR_MSG: u16 = 1;

const NLMSG_HDRLEN: usize = 16;
const NLA_HDRLEN: usize = 4;
const NLA_TYPE_MASK: u16 = 0x3fff;

pub const AF_UNSPEC: u8 = 0;
pub const AF_INET: u8 = 2;
pub const AF_INET6: u8 = 10;

const IFINFOMSG_LEN: usize = 16;
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_LINK: u16 = 5;
const IFLA_MASTER: u16 = 10;
const IFLA_EXT_MASK: u16 = 29;
const IFLA_LINK_NETNSID: u16 = 37;
/// Leave statistics out of link replies: they are most of each message.
const RTEXT_FILTER_SKIP_STATS: u32 = 1 << 3;
pub const IFF_UP: u32 = 0x1;
pub const IFF_LOOPBACK: u32 = 0x8;

const IFADDRMSG_LEN: usize = 8;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;

const RTMSG_LEN: usize = 12;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_PRIORITY: u16 = 6;
const RTA_TABLE: u16 = 15;
const RTA_VIA: u16 = 18;
pub const RT_TABLE_MAIN: u8 = 254;
pub const RTPROT_STATIC: u8 = 4;
pub const RT_SCOPE_UNIVERSE: u8 = 0;
const RT_SCOPE_NOWHERE: u8 = 255;
pub const RTN_UNSPEC: u8 = 0;
pub const RTN_UNICAST: u8 = 1;

/// Why a reply could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

/// The address family of `addr`.
pub fn family(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => AF_INET,
        IpAddr::V6(_) => AF_INET6,
    }
}

/// One request being built: header, fixed part, attributes.
struct Request(Vec<u8>);

impl Request {
    fn new(kind: u16, flags: u16, seq: u32, fixed: &[u8]) -> Request {
        let mut b = Vec::with_capacity(96);
        b.extend_from_slice(&0u32.to_ne_bytes()); // length, set by done()
        b.extend_from_slice(&kind.to_ne_bytes());
        b.extend_from_slice(&flags.to_ne_bytes());
        b.extend_from_slice(&seq.to_ne_bytes());
        b.extend_from_slice(&0u32.to_ne_bytes()); // to the kernel
        b.extend_from_slice(fixed);
        Request(b)
    }

    fn attr(mut self, kind: u16, value: &[u8]) -> Request {
        // Our attributes are a few bytes long.
        let len = (NLA_HDRLEN + value.len()) as u16;
        self.0.extend_from_slice(&len.to_ne_bytes());
        self.0.extend_from_slice(&kind.to_ne_bytes());
        self.0.extend_from_slice(value);
        self.0.resize(align4(self.0.len()), 0);
        self
    }

    fn ip(self, kind: u16, addr: IpAddr) -> Request {
        match addr {
            IpAddr::V4(a) => self.attr(kind, &a.octets()),
            IpAddr::V6(a) => self.attr(kind, &a.octets()),
        }
    }

    fn done(mut self) -> Vec<u8> {
        let len = self.0.len() as u32;
        self.0[0..4].copy_from_slice(&len.to_ne_bytes());
        self.0
    }
}

fn ifaddrmsg(family: u8, prefix: u8, index: u32) -> [u8; IFADDRMSG_LEN] {
    let mut h = [family, prefix, 0, RT_SCOPE_UNIVERSE, 0, 0, 0, 0];
    h[4..].copy_from_slice(&index.to_ne_bytes());
    h
}

fn ifinfomsg(index: u32, flags: u32, change: u32) -> [u8; IFINFOMSG_LEN] {
    let mut h = [0; IFINFOMSG_LEN];
    h[4..8].copy_from_slice(&index.to_ne_bytes());
    h[8..12].copy_from_slice(&flags.to_ne_bytes());
    h[12..16].copy_from_slice(&change.to_ne_bytes());
    h
}

/// `rtmsg` of a default route in the main table.
fn rtmsg(family: u8, tos: u8, protocol: u8, scope: u8, kind: u8) -> [u8; RTMSG_LEN] {
    [
        family,
        0, // dst_len: the default route
        0, // src_len
        tos,
        RT_TABLE_MAIN,
        protocol,
        scope,
        kind,
        0,
        0,
        0,
        0, // flags
    ]
}

/// A dump of links (`RTM_GETLINK`, without statistics), or of the
/// addresses or routes of one family (`RTM_GETADDR`, `RTM_GETROUTE`).
pub fn dump(kind: u16, family: u8, seq: u32) -> Vec<u8> {
    let flags = NLM_F_REQUEST | NLM_F_DUMP;
    match kind {
        RTM_GETLINK => Request::new(kind, flags, seq, &ifinfomsg(0, 0, 0))
            .attr(IFLA_EXT_MASK, &RTEXT_FILTER_SKIP_STATS.to_ne_bytes())
            .done(),
        RTM_GETADDR => Request::new(kind, flags, seq, &ifaddrmsg(family, 0, 0)).done(),
        _ => Request::new(kind, flags, seq, &[family, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).done(),
    }
}

/// One link (`RTM_GETLINK` by index): its flags, acknowledged.
pub fn get_link(index: u32, seq: u32) -> Vec<u8> {
    Request::new(
        RTM_GETLINK,
        NLM_F_REQUEST | NLM_F_ACK,
        seq,
        &ifinfomsg(index, 0, 0),
    )
    .attr(IFLA_EXT_MASK, &RTEXT_FILTER_SKIP_STATS.to_ne_bytes())
    .done()
}

/// Set `IFF_UP` on a link and change nothing else (`ip link set up`).
pub fn set_up(index: u32, seq: u32) -> Vec<u8> {
    Request::new(
        RTM_NEWLINK,
        NLM_F_REQUEST | NLM_F_ACK,
        seq,
        &ifinfomsg(index, IFF_UP, IFF_UP),
    )
    .done()
}

/// Add `addr/prefix`, or make an existing one permanent (`ip addr
/// replace`): a static address must not keep the lifetime a DHCP client
/// gave it.
pub fn new_address(index: u32, addr: IpAddr, prefix: u8, seq: u32) -> Vec<u8> {
    Request::new(
        RTM_NEWADDR,
        NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE,
        seq,
        &ifaddrmsg(family(addr), prefix, index),
    )
    .ip(IFA_LOCAL, addr)
    .ip(IFA_ADDRESS, addr)
    .done()
}

/// Remove an address (`ip addr del`): `local` is the interface's, `peer`
/// the other end on a point-to-point link, else `local` again.
pub fn del_address(index: u32, local: IpAddr, peer: IpAddr, prefix: u8, seq: u32) -> Vec<u8> {
    Request::new(
        RTM_DELADDR,
        NLM_F_REQUEST | NLM_F_ACK,
        seq,
        &ifaddrmsg(family(local), prefix, index),
    )
    .ip(IFA_LOCAL, local)
    .ip(IFA_ADDRESS, peer)
    .done()
}

/// Make the default route of the main table go via `gateway` on the link
/// (`ip route replace default via <gateway> dev <link> proto static`).
pub fn replace_default_route(index: u32, gateway: IpAddr, seq: u32) -> Vec<u8> {
    Request::new(
        RTM_NEWROUTE,
        NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE,
        seq,
        &rtmsg(
            family(gateway),
            0,
            RTPROT_STATIC,
            RT_SCOPE_UNIVERSE,
            RTN_UNICAST,
        ),
    )
    .ip(RTA_GATEWAY, gateway)
    .attr(RTA_OIF, &index.to_ne_bytes())
    .done()
}

/// Which default route of the main table to remove: the kernel removes
/// the first one that matches every field given (`None`, 0: any).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteMatch {
    pub family: u8,
    pub tos: u8,
    pub protocol: u8,
    pub kind: u8,
    pub oif: u32,
    pub gateway: Option<IpAddr>,
    pub priority: Option<u32>,
}

/// Remove a default route (`ip route del default [via ...] dev ...`).
pub fn del_default_route(m: &RouteMatch, seq: u32) -> Vec<u8> {
    let mut r = Request::new(
        RTM_DELROUTE,
        NLM_F_REQUEST | NLM_F_ACK,
        seq,
        &rtmsg(m.family, m.tos, m.protocol, RT_SCOPE_NOWHERE, m.kind),
    );
    if let Some(g) = m.gateway {
        r = r.ip(RTA_GATEWAY, g);
    }
    r = r.attr(RTA_OIF, &m.oif.to_ne_bytes());
    if let Some(p) = m.priority {
        r = r.attr(RTA_PRIORITY, &p.to_ne_bytes());
    }
    r.done()
}

/// One netlink message of a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message<'a> {
    /// `nlmsg_type`.
    pub kind: u16,
    /// `nlmsg_flags`.
    pub flags: u16,
    /// `nlmsg_seq`: the request's.
    pub seq: u32,
    /// `nlmsg_pid`: our port.
    pub port: u32,
    /// What follows the header.
    pub payload: &'a [u8],
}

/// The messages of a datagram; an error, then nothing, when its framing
/// is broken.
pub fn messages(datagram: &[u8]) -> impl Iterator<Item = Result<Message<'_>, Malformed>> {
    let mut rest = datagram;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let len = rest.get(0..4).map(|b| u32_at(b, 0) as usize);
        match len {
            Some(len) if len >= NLMSG_HDRLEN && len <= rest.len() => {
                let m = Message {
                    kind: u16_at(rest, 4),
                    flags: u16_at(rest, 6),
                    seq: u32_at(rest, 8),
                    port: u32_at(rest, 12),
                    payload: &rest[NLMSG_HDRLEN..len],
                };
                rest = rest.get(align4(len)..).unwrap_or(&[]);
                Some(Ok(m))
            }
            _ => {
                rest = &[];
                Some(Err(Malformed("a truncated netlink message")))
            }
        }
    })
}

/// What an `NLMSG_ERROR` says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ack {
    /// 0 for success, else a negative errno.
    pub code: i32,
    /// The kernel's explanation (extended ack), if it gave one.
    pub text: Option<String>,
}

/// Parse an `NLMSG_ERROR` with the message's `flags`. The echo of the
/// request is the whole request, or only its header when the kernel says
/// so (`NLM_F_CAPPED`); the explanation follows it. An explanation that
/// cannot be read is left out: the code is what counts.
pub fn ack(flags: u16, payload: &[u8]) -> Result<Ack, Malformed> {
    let code = payload
        .get(0..4)
        .map(|b| u32_at(b, 0) as i32)
        .ok_or(Malformed("a truncated acknowledgement"))?;
    let mut text = None;
    if flags & NLM_F_ACK_TLVS != 0 {
        let echoed = payload
            .get(4..4 + NLMSG_HDRLEN)
            .map(|h| u32_at(h, 0) as usize);
        let tlvs = echoed.and_then(|len| {
            let skip = if flags & NLM_F_CAPPED != 0 {
                NLMSG_HDRLEN
            } else {
                align4(len)
            };
            payload.get(4 + skip..)
        });
        for a in attributes(tlvs.unwrap_or(&[])) {
            match a {
                Ok((NLMSGERR_ATTR_MSG, value)) => {
                    let s = String::from_utf8_lossy(c_string(value)).into_owned();
                    text = Some(s).filter(|s| !s.is_empty());
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    }
    Ok(Ack { code, text })
}

/// The status of an `NLMSG_DONE`: negative when the dump broke off.
pub fn done_status(payload: &[u8]) -> i32 {
    payload.get(0..4).map_or(0, |b| u32_at(b, 0) as i32)
}

/// What an `RTM_NEWLINK` says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkMsg {
    /// Interface index.
    pub index: u32,
    /// `IFF_*` flags.
    pub flags: u32,
    /// `IFLA_IFNAME` without its NUL.
    pub name: Vec<u8>,
    /// `IFLA_ADDRESS`, when the link has a hardware address.
    pub mac: Option<Vec<u8>>,
    /// `IFLA_MASTER`: the bridge or bond the link is a port of.
    pub master: Option<u32>,
    /// `IFLA_LINK`: the link it sits on (VLAN, macvlan) or its peer (veth).
    pub link: Option<u32>,
    /// `IFLA_LINK_NETNSID`: [`LinkMsg::link`] is in another namespace.
    pub link_elsewhere: bool,
}

/// Parse an `RTM_NEWLINK`; `None` for another family than `AF_UNSPEC`
/// (bridge port messages).
pub fn link(payload: &[u8]) -> Result<Option<LinkMsg>, Malformed> {
    if payload.len() < IFINFOMSG_LEN {
        return Err(Malformed("a truncated link message"));
    }
    if payload[0] != AF_UNSPEC {
        return Ok(None);
    }
    let mut l = LinkMsg {
        index: u32_at(payload, 4),
        flags: u32_at(payload, 8),
        ..Default::default()
    };
    let mut name = None;
    for a in attributes(&payload[IFINFOMSG_LEN..]) {
        match a? {
            (IFLA_IFNAME, v) => name = Some(c_string(v).to_vec()),
            (IFLA_ADDRESS, v) if !v.is_empty() => l.mac = Some(v.to_vec()),
            (IFLA_MASTER, v) => l.master = Some(u32_of(v)?).filter(|&m| m != 0),
            (IFLA_LINK, v) => l.link = Some(u32_of(v)?).filter(|&m| m != 0),
            (IFLA_LINK_NETNSID, _) => l.link_elsewhere = true,
            _ => {}
        }
    }
    l.name = name.ok_or(Malformed("a link without a name"))?;
    Ok(Some(l))
}

/// What an `RTM_NEWADDR` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddrMsg {
    /// Interface index.
    pub index: u32,
    /// Prefix length.
    pub prefix: u8,
    /// `RT_SCOPE_*`.
    pub scope: u8,
    /// The interface's address (`IFA_LOCAL`, else `IFA_ADDRESS`).
    pub local: IpAddr,
    /// `IFA_ADDRESS`: the peer on a point-to-point link, else `local`.
    pub peer: IpAddr,
}

/// Parse an `RTM_NEWADDR`; `None` for another family than `family`.
pub fn address(family: u8, payload: &[u8]) -> Result<Option<AddrMsg>, Malformed> {
    if payload.len() < IFADDRMSG_LEN {
        return Err(Malformed("a truncated address message"));
    }
    if payload[0] != family {
        return Ok(None);
    }
    let (mut local, mut peer) = (None, None);
    for a in attributes(&payload[IFADDRMSG_LEN..]) {
        match a? {
            (IFA_LOCAL, v) => local = Some(ip(family, v)?),
            (IFA_ADDRESS, v) => peer = Some(ip(family, v)?),
            _ => {}
        }
    }
    let local = local
        .or(peer)
        .ok_or(Malformed("an address message without an address"))?;
    let prefix = payload[1];
    if prefix > max_prefix(local) {
        return Err(Malformed("an address with an impossible prefix"));
    }
    Ok(Some(AddrMsg {
        index: u32_at(payload, 4),
        prefix,
        scope: payload[3],
        local,
        peer: peer.unwrap_or(local),
    }))
}

/// What an `RTM_NEWROUTE` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteMsg {
    pub family: u8,
    pub dst_len: u8,
    pub tos: u8,
    /// `RTA_TABLE` when present (tables above 255), else the header's.
    pub table: u32,
    pub protocol: u8,
    /// `RTN_*`.
    pub kind: u8,
    /// `RTA_OIF`: absent on multipath routes and nexthop objects.
    pub oif: Option<u32>,
    pub gateway: Option<IpAddr>,
    pub priority: Option<u32>,
    /// `RTA_VIA`: a gateway of another family.
    pub via: bool,
}

impl RouteMsg {
    /// A default route of the main table through link `index` that names
    /// its own next hop (not multipath, not a nexthop object, no gateway
    /// of another family).
    pub fn is_default_through(&self, index: u32) -> bool {
        self.dst_len == 0
            && self.table == u32::from(RT_TABLE_MAIN)
            && self.kind == RTN_UNICAST
            && self.oif == Some(index)
            && !self.via
    }
}

/// Parse an `RTM_NEWROUTE`; `None` for another family than `family`.
pub fn route(family: u8, payload: &[u8]) -> Result<Option<RouteMsg>, Malformed> {
    if payload.len() < RTMSG_LEN {
        return Err(Malformed("a truncated route message"));
    }
    if payload[0] != family {
        return Ok(None);
    }
    let mut r = RouteMsg {
        family,
        dst_len: payload[1],
        tos: payload[3],
        table: u32::from(payload[4]),
        protocol: payload[5],
        kind: payload[7],
        oif: None,
        gateway: None,
        priority: None,
        via: false,
    };
    for a in attributes(&payload[RTMSG_LEN..]) {
        match a? {
            (RTA_TABLE, v) => r.table = u32_of(v)?,
            (RTA_OIF, v) => r.oif = Some(u32_of(v)?),
            (RTA_GATEWAY, v) => r.gateway = Some(ip(family, v)?),
            (RTA_PRIORITY, v) => r.priority = Some(u32_of(v)?),
            (RTA_VIA, _) => r.via = true,
            _ => {}
        }
    }
    Ok(Some(r))
}

/// The longest prefix of `addr`'s family.
pub fn max_prefix(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

fn ip(family: u8, value: &[u8]) -> Result<IpAddr, Malformed> {
    let bad = Malformed("an address of the wrong length");
    match family {
        AF_INET => <[u8; 4]>::try_from(value)
            .map(|b| IpAddr::V4(Ipv4Addr::from(b)))
            .map_err(|_| bad),
        _ => <[u8; 16]>::try_from(value)
            .map(|b| IpAddr::V6(Ipv6Addr::from(b)))
            .map_err(|_| bad),
    }
}

fn u32_of(value: &[u8]) -> Result<u32, Malformed> {
    if value.len() == 4 {
        Ok(u32_at(value, 0))
    } else {
        Err(Malformed("a 32-bit attribute of the wrong length"))
    }
}

/// The `(type, value)` of each attribute; an error, then nothing, for one
/// that claims more bytes than there are. Fewer than a header's worth of
/// bytes at the end is padding.
fn attributes(mut buf: &[u8]) -> impl Iterator<Item = Result<(u16, &[u8]), Malformed>> {
    std::iter::from_fn(move || {
        let header = buf.get(0..NLA_HDRLEN)?;
        let len = usize::from(u16_at(header, 0));
        if len < NLA_HDRLEN || len > buf.len() {
            buf = &[];
            return Some(Err(Malformed("a truncated netlink attribute")));
        }
        let item = (u16_at(header, 2) & NLA_TYPE_MASK, &buf[NLA_HDRLEN..len]);
        buf = buf.get(align4(len)..).unwrap_or(&[]);
        Some(Ok(item))
    })
}

/// A string attribute up to its first NUL.
fn c_string(value: &[u8]) -> &[u8] {
    value.split(|&b| b == 0).next().unwrap_or(value)
}

fn align4(len: usize) -> usize {
    (len + 3) & !3
}

/// Callers check that `b` holds `at + 2` bytes.
fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}

/// Callers check that `b` holds `at + 4` bytes.
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
