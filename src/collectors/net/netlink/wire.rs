//! The rtnetlink messages the collector reads and writes, parsed in place.
//!
//! Only the fields the agent needs are read, straight from the datagram,
//! without allocating: per-event cost stays in the nanoseconds, and an
//! interface name that is not UTF-8 (the kernel allows any byte but `/`,
//! `:`, NUL and white space) is just bytes here. Everything is bounds
//! checked: a malformed message is skipped, never trusted.
//!
//! The constants are the kernel's ABI (include/uapi/linux/{netlink,
//! rtnetlink,if_link,if_addr}.h), spelled out because the `libc` crate does
//! not carry all of them on every architecture.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::state::{AddrFlags, Address};

pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const NLMSG_OVERRUN: u16 = 4;
pub const RTM_NEWLINK: u16 = 16;
pub const RTM_DELLINK: u16 = 17;
pub const RTM_GETLINK: u16 = 18;
pub const RTM_NEWADDR: u16 = 20;
pub const RTM_DELADDR: u16 = 21;
pub const RTM_GETADDR: u16 = 22;

/// Multicast groups (bind(2) bitmask): links, IPv4 and IPv6 addresses.
pub const RTMGRP_LINK: u32 = 0x1;
pub const RTMGRP_IPV4_IFADDR: u32 = 0x10;
pub const RTMGRP_IPV6_IFADDR: u32 = 0x100;

const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
/// Set on dump replies when the table changed during the dump: the dump
/// may have skipped entries.
pub const NLM_F_DUMP_INTR: u16 = 0x10;
const NLMSG_HDRLEN: usize = 16;
const NLA_HDRLEN: usize = 4;
const NLA_TYPE_MASK: u16 = 0x3fff;

const AF_UNSPEC: u8 = 0;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;

const IFINFOMSG_LEN: usize = 16;
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MASTER: u16 = 10;
const IFLA_LINKINFO: u16 = 18;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_EXT_MASK: u16 = 29;
/// Leave statistics out of link dumps: they are most of each message.
const RTEXT_FILTER_SKIP_STATS: u32 = 1 << 3;
pub const IFF_UP: u32 = 0x1;
pub const IFF_LOOPBACK: u32 = 0x8;

const IFADDRMSG_LEN: usize = 8;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_FLAGS: u16 = 8;
/// IPv4: not the primary address. IPv6: the same bit is `IFA_F_TEMPORARY`.
const IFA_F_SECONDARY: u32 = 0x01;
const IFA_F_DADFAILED: u32 = 0x08;
const IFA_F_DEPRECATED: u32 = 0x20;
const IFA_F_TENTATIVE: u32 = 0x40;

/// One netlink message of a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message<'a> {
    /// `nlmsg_type`.
    pub kind: u16,
    /// `nlmsg_flags`.
    pub flags: u16,
    /// `nlmsg_seq`: ours for dump replies.
    pub seq: u32,
    /// `nlmsg_pid`: our port for dump replies, the requester's for
    /// notifications.
    pub port: u32,
    /// What follows the header.
    pub payload: &'a [u8],
}

/// The messages of a datagram. Yields `Err(())` once and stops when the
/// framing is broken (then what follows is lost: the caller resyncs).
pub fn messages(datagram: &[u8]) -> impl Iterator<Item = Result<Message<'_>, ()>> {
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
                Some(Err(()))
            }
        }
    })
}

/// The error code of an `NLMSG_ERROR` payload (0 is an acknowledgement),
/// or the status of an `NLMSG_DONE` (negative when the dump broke off).
pub fn error_code(payload: &[u8]) -> Option<i32> {
    payload.get(0..4).map(|b| u32_at(b, 0) as i32)
}

/// A dump request (`RTM_GETLINK` or `RTM_GETADDR`) for every family.
pub fn dump_request(out: &mut Vec<u8>, kind: u16, seq: u32) {
    out.clear();
    let body: &[u8] = match kind {
        RTM_GETLINK => &[0; IFINFOMSG_LEN],
        _ => &[0; IFADDRMSG_LEN],
    };
    let attr_len = if kind == RTM_GETLINK { 8 } else { 0 };
    let len = NLMSG_HDRLEN + body.len() + attr_len;
    out.extend_from_slice(&(len as u32).to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    out.extend_from_slice(&seq.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes());
    out.extend_from_slice(body);
    if attr_len > 0 {
        out.extend_from_slice(&8u16.to_ne_bytes());
        out.extend_from_slice(&IFLA_EXT_MASK.to_ne_bytes());
        out.extend_from_slice(&RTEXT_FILTER_SKIP_STATS.to_ne_bytes());
    }
}

/// What an `RTM_NEWLINK` says, borrowed from the datagram.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkMsg<'a> {
    /// Interface index.
    pub index: u32,
    /// `IFF_*` flags.
    pub flags: u32,
    /// `IFLA_IFNAME` without its NUL: any bytes.
    pub name: &'a [u8],
    /// `IFLA_ADDRESS`, when the link has a hardware address.
    pub mac: Option<&'a [u8]>,
    /// `IFLA_MASTER`.
    pub master: Option<u32>,
    /// `IFLA_LINKINFO`/`IFLA_INFO_KIND` (`bridge`, `bond`, `veth`...).
    pub info_kind: Option<&'a [u8]>,
}

/// The index of a link message (`RTM_NEWLINK` or `RTM_DELLINK`), or `None`
/// when it is not about a network interface as a whole: `AF_BRIDGE`
/// messages are about bridge *ports* (an `RTM_DELLINK` of that family means
/// "left the bridge", not "gone"), and are ignored.
pub fn link_index(payload: &[u8]) -> Option<u32> {
    if *payload.first()? != AF_UNSPEC || payload.len() < IFINFOMSG_LEN {
        return None;
    }
    Some(u32_at(payload, 4))
}

/// Parse an `RTM_NEWLINK` (see [`link_index`] for what is skipped); a
/// message without a name is malformed.
pub fn link(payload: &[u8]) -> Option<LinkMsg<'_>> {
    let index = link_index(payload)?;
    let mut l = LinkMsg {
        index,
        flags: u32_at(payload, 8),
        ..Default::default()
    };
    let mut name = None;
    for (kind, value) in attributes(&payload[IFINFOMSG_LEN..]) {
        match kind {
            IFLA_IFNAME => name = Some(c_string(value)),
            IFLA_ADDRESS if !value.is_empty() => l.mac = Some(value),
            IFLA_MASTER if value.len() == 4 => {
                l.master = Some(u32_at(value, 0)).filter(|&m| m != 0)
            }
            IFLA_LINKINFO => {
                l.info_kind = attributes(value)
                    .find(|(k, _)| *k == IFLA_INFO_KIND)
                    .map(|(_, v)| c_string(v));
            }
            _ => {}
        }
    }
    l.name = name?;
    Some(l)
}

/// What an `RTM_NEWADDR` or `RTM_DELADDR` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddrMsg {
    /// Interface index.
    pub index: u32,
    /// The local address.
    pub addr: IpAddr,
    /// Prefix length and flags.
    pub info: Address,
}

/// Parse an address message; `None` for families other than IPv4 and IPv6
/// and for malformed messages.
///
/// The address is `IFA_LOCAL` when present (on a point-to-point link
/// `IFA_ADDRESS` is the peer), else `IFA_ADDRESS`, as `ip addr` shows it.
/// Flags come from the 32-bit `IFA_FLAGS` when present (the header's 8 bits
/// cannot hold the newer ones), else from the header.
pub fn address(payload: &[u8]) -> Option<AddrMsg> {
    if payload.len() < IFADDRMSG_LEN {
        return None;
    }
    let family = payload[0];
    let prefix = payload[1];
    let mut flags = u32::from(payload[2]);
    let index = u32_at(payload, 4);
    let (mut local, mut address) = (None, None);
    for (kind, value) in attributes(&payload[IFADDRMSG_LEN..]) {
        match kind {
            IFA_LOCAL => local = ip(family, value),
            IFA_ADDRESS => address = ip(family, value),
            IFA_FLAGS if value.len() == 4 => flags = u32_at(value, 0),
            _ => {}
        }
    }
    let addr = local.or(address)?;
    let max_prefix = if addr.is_ipv4() { 32 } else { 128 };
    if prefix > max_prefix {
        return None;
    }
    Some(AddrMsg {
        index,
        addr,
        info: Address {
            prefix,
            flags: addr_flags(addr.is_ipv6(), flags),
        },
    })
}

/// The kernel's `IFA_F_*` bits, as far as the agent cares.
pub fn addr_flags(ipv6: bool, f: u32) -> AddrFlags {
    AddrFlags {
        secondary: !ipv6 && f & IFA_F_SECONDARY != 0,
        temporary: ipv6 && f & IFA_F_SECONDARY != 0,
        tentative: f & IFA_F_TENTATIVE != 0,
        dadfailed: f & IFA_F_DADFAILED != 0,
        deprecated: f & IFA_F_DEPRECATED != 0,
    }
}

fn ip(family: u8, value: &[u8]) -> Option<IpAddr> {
    match family {
        AF_INET => <[u8; 4]>::try_from(value)
            .ok()
            .map(|b| IpAddr::V4(Ipv4Addr::from(b))),
        AF_INET6 => <[u8; 16]>::try_from(value)
            .ok()
            .map(|b| IpAddr::V6(Ipv6Addr::from(b))),
        _ => None,
    }
}

/// The `(type, value)` of each attribute; stops at the first malformed one.
fn attributes(mut buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        let len = usize::from(u16_at(buf.get(0..4)?, 0));
        if len < NLA_HDRLEN || len > buf.len() {
            return None;
        }
        let item = (u16_at(buf, 2) & NLA_TYPE_MASK, &buf[NLA_HDRLEN..len]);
        buf = buf.get(align4(len)..).unwrap_or(&[]);
        Some(item)
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

#[cfg(test)]
pub mod tests {
    use super::*;

    /// Builds netlink messages the way the kernel lays them out.
    #[derive(Default)]
    pub struct Builder(pub Vec<u8>);

    impl Builder {
        /// Start a message; finish it with [`Builder::end`].
        pub fn begin(mut self, kind: u16, seq: u32, port: u32, header: &[u8]) -> Self {
            self.0.extend_from_slice(&0u32.to_ne_bytes()); // length, set by end()
            self.0.extend_from_slice(&kind.to_ne_bytes());
            self.0.extend_from_slice(&0u16.to_ne_bytes());
            self.0.extend_from_slice(&seq.to_ne_bytes());
            self.0.extend_from_slice(&port.to_ne_bytes());
            self.0.extend_from_slice(header);
            self
        }

        pub fn attr(mut self, kind: u16, value: &[u8]) -> Self {
            self.0
                .extend_from_slice(&((NLA_HDRLEN + value.len()) as u16).to_ne_bytes());
            self.0.extend_from_slice(&kind.to_ne_bytes());
            self.0.extend_from_slice(value);
            while self.0.len() % 4 != 0 {
                self.0.push(0);
            }
            self
        }

        /// Set the length of the last message begun.
        pub fn end(mut self) -> Self {
            let mut start = 0;
            while start < self.0.len() {
                let len = u32_at(&self.0, start) as usize;
                if len == 0 {
                    break;
                }
                start += align4(len);
            }
            let len = (self.0.len() - start) as u32;
            self.0[start..start + 4].copy_from_slice(&len.to_ne_bytes());
            self
        }
    }

    pub fn ifinfomsg(family: u8, index: u32, flags: u32) -> Vec<u8> {
        let mut h = vec![family, 0, 1, 0];
        h.extend_from_slice(&index.to_ne_bytes());
        h.extend_from_slice(&flags.to_ne_bytes());
        h.extend_from_slice(&0u32.to_ne_bytes());
        h
    }

    pub fn ifaddrmsg(family: u8, prefix: u8, flags: u8, index: u32) -> Vec<u8> {
        let mut h = vec![family, prefix, flags, 0];
        h.extend_from_slice(&index.to_ne_bytes());
        h
    }

    /// An `RTM_NEWLINK` as the kernel sends it for a veth in a bridge.
    pub fn newlink(index: u32, name: &[u8], master: Option<u32>, info_kind: &[u8]) -> Vec<u8> {
        let mut name0 = name.to_vec();
        name0.push(0);
        let mut kind0 = info_kind.to_vec();
        kind0.push(0);
        let linkinfo = Builder::default().attr(IFLA_INFO_KIND, &kind0).0;
        let mut b = Builder::default()
            .begin(
                RTM_NEWLINK,
                0,
                0,
                &ifinfomsg(AF_UNSPEC, index, IFF_UP | 0x1000),
            )
            .attr(IFLA_IFNAME, &name0)
            .attr(4, &1500u32.to_ne_bytes()) // IFLA_MTU, ignored
            .attr(IFLA_ADDRESS, &[0x00, 0x16, 0x3e, 0xAA, 0x0b, 0x01])
            .attr(IFLA_LINKINFO | 0x8000, &linkinfo);
        if let Some(m) = master {
            b = b.attr(IFLA_MASTER, &m.to_ne_bytes());
        }
        b.end().0
    }

    #[test]
    fn link_message() {
        let buf = newlink(7, b"\xffab\xc3\xa9", Some(3), b"veth");
        let msgs: Vec<_> = messages(&buf).collect();
        assert_eq!(msgs.len(), 1);
        let m = msgs[0].unwrap();
        assert_eq!((m.kind, m.seq, m.port), (RTM_NEWLINK, 0, 0));
        let l = link(m.payload).unwrap();
        assert_eq!(l.index, 7);
        assert_eq!(l.name, b"\xffab\xc3\xa9");
        assert_eq!(l.flags & IFF_UP, IFF_UP);
        assert_eq!(l.mac, Some(&[0x00, 0x16, 0x3e, 0xAA, 0x0b, 0x01][..]));
        assert_eq!(l.master, Some(3));
        assert_eq!(l.info_kind, Some(&b"veth"[..]));
        assert_eq!(link_index(m.payload), Some(7));
    }

    #[test]
    fn bridge_port_messages_are_not_about_links() {
        let buf = Builder::default()
            .begin(RTM_DELLINK, 0, 0, &ifinfomsg(7 /* AF_BRIDGE */, 4, 0))
            .attr(IFLA_IFNAME, b"veth0\0")
            .end()
            .0;
        let m = messages(&buf).next().unwrap().unwrap();
        assert_eq!(link_index(m.payload), None);
        assert_eq!(link(m.payload), None);
    }

    #[test]
    fn link_without_name_or_truncated_is_skipped() {
        let buf = Builder::default()
            .begin(RTM_NEWLINK, 0, 0, &ifinfomsg(AF_UNSPEC, 4, 0))
            .end()
            .0;
        let m = messages(&buf).next().unwrap().unwrap();
        assert_eq!(link(m.payload), None);
        assert_eq!(link(&[0; 8]), None);
        // An attribute claiming more than there is ends the attributes.
        let mut p = ifinfomsg(AF_UNSPEC, 4, 0);
        p.extend_from_slice(&[8, 0, 3, 0, b'a', 0, 0, 0, 200, 0, 1, 0]);
        assert_eq!(link(&p).map(|l| l.name), Some(&b"a"[..]));
    }

    #[test]
    fn ipv4_address_uses_local() {
        let buf = Builder::default()
            .begin(RTM_NEWADDR, 0, 0, &ifaddrmsg(AF_INET, 24, 0x01, 5))
            .attr(IFA_ADDRESS, &[10, 0, 0, 254])
            .attr(IFA_LOCAL, &[10, 0, 0, 1])
            .attr(3, b"eth0\0") // IFA_LABEL
            .end()
            .0;
        let m = messages(&buf).next().unwrap().unwrap();
        let a = address(m.payload).unwrap();
        assert_eq!(a.index, 5);
        assert_eq!(a.addr, "10.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(a.info.prefix, 24);
        assert!(a.info.flags.secondary && !a.info.flags.temporary);
    }

    #[test]
    fn ipv6_flags_prefer_the_32_bit_attribute() {
        let v6 = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        // Header says tentative; IFA_FLAGS (authoritative) says temporary,
        // deprecated, and a high bit the header cannot hold.
        let buf = Builder::default()
            .begin(RTM_NEWADDR, 0, 0, &ifaddrmsg(AF_INET6, 64, 0x40, 2))
            .attr(IFA_ADDRESS, &v6)
            .attr(IFA_FLAGS, &(0x01u32 | 0x20 | 0x200).to_ne_bytes())
            .end()
            .0;
        let a = address(messages(&buf).next().unwrap().unwrap().payload).unwrap();
        assert_eq!(a.addr, "2001:db8::1".parse::<IpAddr>().unwrap());
        assert_eq!(
            a.info.flags,
            AddrFlags {
                temporary: true,
                deprecated: true,
                ..Default::default()
            }
        );
        // Without IFA_FLAGS, the header's.
        let buf = Builder::default()
            .begin(RTM_NEWADDR, 0, 0, &ifaddrmsg(AF_INET6, 64, 0x40 | 0x08, 2))
            .attr(IFA_ADDRESS, &v6)
            .end()
            .0;
        let a = address(messages(&buf).next().unwrap().unwrap().payload).unwrap();
        assert!(a.info.flags.tentative && a.info.flags.dadfailed && !a.info.flags.temporary);
    }

    #[test]
    fn flags_mapping() {
        assert_eq!(addr_flags(false, 0), AddrFlags::default());
        assert!(addr_flags(false, IFA_F_SECONDARY).secondary);
        assert!(!addr_flags(false, IFA_F_SECONDARY).temporary);
        assert!(addr_flags(true, IFA_F_SECONDARY).temporary);
        assert!(!addr_flags(true, IFA_F_SECONDARY).secondary);
        assert!(addr_flags(true, IFA_F_TENTATIVE).tentative);
        assert!(addr_flags(true, IFA_F_DADFAILED).dadfailed);
        assert!(addr_flags(true, IFA_F_DEPRECATED).deprecated);
        // nodad, optimistic, permanent, noprefixroute...: not our business.
        assert_eq!(
            addr_flags(true, 0x02 | 0x04 | 0x80 | 0x200),
            AddrFlags::default()
        );
    }

    #[test]
    fn odd_addresses_are_skipped() {
        // Wrong length for the family, unknown family, absurd prefix.
        for (family, prefix, value) in [
            (AF_INET, 24, &[10, 0, 0][..]),
            (AF_INET6, 64, &[10, 0, 0, 1][..]),
            (44, 8, &[1][..]),
            (AF_INET, 33, &[10, 0, 0, 1][..]),
        ] {
            let buf = Builder::default()
                .begin(RTM_NEWADDR, 0, 0, &ifaddrmsg(family, prefix, 0, 2))
                .attr(IFA_ADDRESS, value)
                .end()
                .0;
            assert_eq!(
                address(messages(&buf).next().unwrap().unwrap().payload),
                None
            );
        }
        assert_eq!(address(&[2, 24, 0]), None);
    }

    #[test]
    fn framing() {
        let mut buf = newlink(1, b"lo", None, b"");
        buf.extend(
            Builder::default()
                .begin(NLMSG_DONE, 9, 77, &0u32.to_ne_bytes())
                .end()
                .0,
        );
        let kinds: Vec<_> = messages(&buf)
            .map(|m| m.map(|m| (m.kind, m.seq, m.port)))
            .collect();
        assert_eq!(
            kinds,
            vec![Ok((RTM_NEWLINK, 0, 0)), Ok((NLMSG_DONE, 9, 77))]
        );
        // A length beyond the datagram: an error, then nothing.
        let mut bad = buf.clone();
        bad[0] = 0xff;
        bad[1] = 0xff;
        let r: Vec<_> = messages(&bad).collect();
        assert_eq!(r, vec![Err(())]);
        // A truncated tail.
        let r: Vec<_> = messages(&buf[..buf.len() - 2]).collect();
        assert_eq!(r.len(), 2);
        assert!(r[0].is_ok() && r[1].is_err());
        assert_eq!(messages(&[]).count(), 0);
    }

    #[test]
    fn dump_requests() {
        let mut out = Vec::new();
        dump_request(&mut out, RTM_GETLINK, 5);
        assert_eq!(out.len(), 16 + 16 + 8);
        let m = messages(&out).next().unwrap().unwrap();
        assert_eq!((m.kind, m.seq, m.port), (RTM_GETLINK, 5, 0));
        assert_eq!(u16_at(&out, 6), NLM_F_REQUEST | NLM_F_DUMP);
        dump_request(&mut out, RTM_GETADDR, 6);
        assert_eq!(out.len(), 16 + 8);
        assert_eq!(u32_at(&out, 0), 24);
    }
}
