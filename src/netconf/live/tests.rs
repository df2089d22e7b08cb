//! The requests' bytes, the replies' parsing, the choice of a link by MAC
//! and the wording of errors, without a kernel.
//!
//! The expected requests are what `ip` (iproute2 6.x) sent for the same
//! command, captured with `strace -e trace=sendmsg -e write=3` (sequence
//! number 0x6b107f8c, interface index 3): little-endian bytes.

use std::net::IpAddr;

use super::linux::wire::{self, LinkMsg, Malformed};
use super::linux::{check_prefix, choose, error, mac_string, Failure, Refused, CAP_HINT};
use super::Link;

const SEQ: u32 = 0x6b10_7f8c;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// `ip addr replace 192.0.2.10/24 dev v0`
#[test]
#[cfg(target_endian = "little")]
fn new_address_v4_is_what_ip_sends() {
    #[rustfmt::skip]
    let ip_sent = [
        0x28, 0x00, 0x00, 0x00, 0x14, 0x00, 0x05, 0x05, 0x8c, 0x7f, 0x10, 0x6b, 0x00, 0x00, 0x00, 0x00,
        0x02, 0x18, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x08, 0x00, 0x02, 0x00, 0xc0, 0x00, 0x02, 0x0a,
        0x08, 0x00, 0x01, 0x00, 0xc0, 0x00, 0x02, 0x0a,
    ];
    assert_eq!(wire::new_address(3, ip("192.0.2.10"), 24, SEQ), ip_sent);
}

/// `ip addr del 192.0.2.10/24 dev v0`
#[test]
#[cfg(target_endian = "little")]
fn del_address_v4_is_what_ip_sends() {
    #[rustfmt::skip]
    let ip_sent = [
        0x28, 0x00, 0x00, 0x00, 0x15, 0x00, 0x05, 0x00, 0x8c, 0x7f, 0x10, 0x6b, 0x00, 0x00, 0x00, 0x00,
        0x02, 0x18, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x08, 0x00, 0x02, 0x00, 0xc0, 0x00, 0x02, 0x0a,
        0x08, 0x00, 0x01, 0x00, 0xc0, 0x00, 0x02, 0x0a,
    ];
    let a = ip("192.0.2.10");
    assert_eq!(wire::del_address(3, a, a, 24, SEQ), ip_sent);
}

/// `ip route replace default via 192.0.2.1 dev v0 proto static`
#[test]
#[cfg(target_endian = "little")]
fn new_route_v4_is_what_ip_sends() {
    #[rustfmt::skip]
    let ip_sent = [
        0x2c, 0x00, 0x00, 0x00, 0x18, 0x00, 0x05, 0x05, 0x8c, 0x7f, 0x10, 0x6b, 0x00, 0x00, 0x00, 0x00,
        0x02, 0x00, 0x00, 0x00, 0xfe, 0x04, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x08, 0x00, 0x05, 0x00,
        0xc0, 0x00, 0x02, 0x01, 0x08, 0x00, 0x04, 0x00, 0x03, 0x00, 0x00, 0x00,
    ];
    assert_eq!(
        wire::replace_default_route(3, ip("192.0.2.1"), SEQ),
        ip_sent
    );
}

/// `ip route del default via 192.0.2.1 dev v0`: any protocol, scope and
/// type. (What [`super::Live::remove_v4`] sends names RTPROT_STATIC.)
#[test]
#[cfg(target_endian = "little")]
fn del_route_v4_is_what_ip_sends() {
    #[rustfmt::skip]
    let ip_sent = [
        0x2c, 0x00, 0x00, 0x00, 0x19, 0x00, 0x05, 0x00, 0x8c, 0x7f, 0x10, 0x6b, 0x00, 0x00, 0x00, 0x00,
        0x02, 0x00, 0x00, 0x00, 0xfe, 0x00, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x08, 0x00, 0x05, 0x00,
        0xc0, 0x00, 0x02, 0x01, 0x08, 0x00, 0x04, 0x00, 0x03, 0x00, 0x00, 0x00,
    ];
    let mut m = wire::RouteMatch {
        family: wire::AF_INET,
        tos: 0,
        protocol: 0,
        kind: wire::RTN_UNSPEC,
        oif: 3,
        gateway: Some(ip("192.0.2.1")),
        priority: None,
    };
    assert_eq!(wire::del_default_route(&m, SEQ), ip_sent);
    // A dumped route is named by its metric too: RTA_PRIORITY last.
    m.priority = Some(100);
    m.protocol = wire::RTPROT_STATIC;
    let b = wire::del_default_route(&m, SEQ);
    assert_eq!(b.len(), ip_sent.len() + 8);
    assert_eq!(b[0], 0x34);
    assert_eq!(b[21], wire::RTPROT_STATIC);
    assert_eq!(b[44..], [0x08, 0x00, 0x06, 0x00, 100, 0, 0, 0]);
}

/// `ip -6 addr replace 2001:db8::10/64 dev v0` and `ip -6 addr del ...`
#[test]
#[cfg(target_endian = "little")]
fn addresses_v6_are_what_ip_sends() {
    #[rustfmt::skip]
    let mut ip_sent = vec![
        0x40, 0x00, 0x00, 0x00, 0x14, 0x00, 0x05, 0x05, 0x8c, 0x7f, 0x10, 0x6b, 0x00, 0x00, 0x00, 0x00,
        0x0a, 0x40, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x14, 0x00, 0x02, 0x00, 0x20, 0x01, 0x0d, 0xb8,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x14, 0x00, 0x01, 0x00,
        0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
    ];
    let a = ip("2001:db8::10");
    assert_eq!(wire::new_address(3, a, 64, SEQ), ip_sent);
    // The deletion: RTM_DELADDR, NLM_F_REQUEST | NLM_F_ACK, else the same.
    ip_sent[4] = 0x15;
    ip_sent[7] = 0x00;
    assert_eq!(wire::del_address(3, a, a, 64, SEQ), ip_sent);
}

/// `ip -6 route replace default via 2001:db8::1 dev v0 proto static`,
/// but for the `RTA_DST ::` that `ip` adds (a zero-length destination has
/// no bits to give).
#[test]
#[cfg(target_endian = "little")]
fn new_route_v6_is_what_ip_sends_without_its_rta_dst() {
    #[rustfmt::skip]
    let ip_sent = [
        0x4c, 0x00, 0x00, 0x00, 0x18, 0x00, 0x05, 0x05, 0x8c, 0x7f, 0x10, 0x6b, 0x00, 0x00, 0x00, 0x00,
        0x0a, 0x00, 0x00, 0x00, 0xfe, 0x04, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x01, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x14, 0x00, 0x05, 0x00, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x04, 0x00, 0x03, 0x00, 0x00, 0x00,
    ];
    let mut expected = ip_sent[..28].to_vec();
    expected[0] = 0x4c - 20;
    expected.extend_from_slice(&ip_sent[48..]);
    assert_eq!(
        wire::replace_default_route(3, ip("2001:db8::1"), SEQ),
        expected
    );
}

/// `ip link set v0 up`
#[test]
#[cfg(target_endian = "little")]
fn set_up_is_what_ip_sends() {
    #[rustfmt::skip]
    let ip_sent = [
        0x20, 0x00, 0x00, 0x00, 0x10, 0x00, 0x05, 0x00, 0x8c, 0x7f, 0x10, 0x6b, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
    ];
    assert_eq!(wire::set_up(3, SEQ), ip_sent);
}

#[test]
fn dumps_and_link_requests() {
    let d = wire::dump(wire::RTM_GETADDR, wire::AF_INET6, 9);
    assert_eq!(d.len(), 16 + 8);
    assert_eq!(d[16], wire::AF_INET6);
    let m = wire::messages(&d).next().unwrap().unwrap();
    assert_eq!((m.kind, m.flags, m.seq), (wire::RTM_GETADDR, 0x301, 9));
    let d = wire::dump(wire::RTM_GETROUTE, wire::AF_INET, 9);
    assert_eq!((d.len(), d[16]), (16 + 12, wire::AF_INET));
    // Links without their statistics (IFLA_EXT_MASK).
    assert_eq!(wire::dump(wire::RTM_GETLINK, 0, 9).len(), 16 + 16 + 8);
    let g = wire::get_link(7, 9);
    let m = wire::messages(&g).next().unwrap().unwrap();
    assert_eq!((m.kind, m.flags), (wire::RTM_GETLINK, 0x5));
    assert_eq!(m.payload[4..8], 7u32.to_ne_bytes());
}

/// The error the kernel sent `ip addr add 192.0.2.10/24 dev v0` when the
/// address was there: -EEXIST, the whole request echoed, then its
/// explanation (extended ack).
#[test]
#[cfg(target_endian = "little")]
fn an_error_ack_with_the_kernels_explanation() {
    #[rustfmt::skip]
    let kernel_sent = [
        0x60, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x02, 0x3b, 0x80, 0x10, 0x6b, 0x58, 0x08, 0x00, 0x00,
        0xef, 0xff, 0xff, 0xff, 0x28, 0x00, 0x00, 0x00, 0x14, 0x00, 0x05, 0x06, 0x3b, 0x80, 0x10, 0x6b,
        0x00, 0x00, 0x00, 0x00, 0x02, 0x18, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x08, 0x00, 0x02, 0x00,
        0xc0, 0x00, 0x02, 0x0a, 0x08, 0x00, 0x01, 0x00, 0xc0, 0x00, 0x02, 0x0a, 0x23, 0x00, 0x01, 0x00,
        0x69, 0x70, 0x76, 0x34, 0x3a, 0x20, 0x41, 0x64, 0x64, 0x72, 0x65, 0x73, 0x73, 0x20, 0x61, 0x6c,
        0x72, 0x65, 0x61, 0x64, 0x79, 0x20, 0x61, 0x73, 0x73, 0x69, 0x67, 0x6e, 0x65, 0x64, 0x00, 0x00,
    ];
    let m: Vec<_> = wire::messages(&kernel_sent).collect();
    assert_eq!(m.len(), 1);
    let m = m[0].unwrap();
    assert_eq!(
        (m.kind, m.seq, m.port),
        (wire::NLMSG_ERROR, 0x6b10_803b, 0x858)
    );
    let ack = wire::ack(m.flags, m.payload).unwrap();
    assert_eq!(ack.code, -libc::EEXIST);
    assert_eq!(ack.text.as_deref(), Some("ipv4: Address already assigned"));
    // The same with only the header echoed (NETLINK_CAP_ACK, which the
    // socket asks for).
    let mut capped = kernel_sent[..16 + 4 + 16].to_vec();
    capped.extend_from_slice(&kernel_sent[16 + 4 + 40..]);
    capped[0] = capped.len() as u8;
    capped[6] = 0x00;
    capped[7] = 0x03; // NLM_F_CAPPED | NLM_F_ACK_TLVS
    let m = wire::messages(&capped).next().unwrap().unwrap();
    assert_eq!(wire::ack(m.flags, m.payload).unwrap(), ack);
    // An explanation that cannot be read is left out.
    let mut broken = kernel_sent;
    broken[60] = 0xff;
    let m = wire::messages(&broken).next().unwrap().unwrap();
    let a = wire::ack(m.flags, m.payload).unwrap();
    assert_eq!((a.code, a.text), (-libc::EEXIST, None));
}

/// Builds an `NLMSG_ERROR` of `code` echoing a 16-byte header only.
fn ack_message(code: i32, seq: u32) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&36u32.to_ne_bytes());
    b.extend_from_slice(&wire::NLMSG_ERROR.to_ne_bytes());
    b.extend_from_slice(&0x100u16.to_ne_bytes());
    b.extend_from_slice(&seq.to_ne_bytes());
    b.extend_from_slice(&77u32.to_ne_bytes());
    b.extend_from_slice(&code.to_ne_bytes());
    b.extend_from_slice(&[0; 16]);
    b
}

#[test]
fn acks_and_errors() {
    let ok = ack_message(0, 5);
    let m = wire::messages(&ok).next().unwrap().unwrap();
    assert_eq!((m.kind, m.seq, m.port), (wire::NLMSG_ERROR, 5, 77));
    assert_eq!(
        wire::ack(m.flags, m.payload),
        Ok(wire::Ack {
            code: 0,
            text: None
        })
    );
    let refused = ack_message(-libc::EPERM, 6);
    let m = wire::messages(&refused).next().unwrap().unwrap();
    assert_eq!(wire::ack(m.flags, m.payload).unwrap().code, -libc::EPERM);
}

#[test]
fn truncated_replies_are_errors() {
    let ok = ack_message(0, 5);
    // The datagram ends inside the message.
    for cut in [1, 4, 15, 35] {
        let r: Vec<_> = wire::messages(&ok[..cut]).collect();
        assert_eq!(r, vec![Err(Malformed("a truncated netlink message"))]);
    }
    // A message too short for its error code.
    let mut short = ok[..18].to_vec();
    short[0] = 18;
    let m = wire::messages(&short).next().unwrap().unwrap();
    assert_eq!(
        wire::ack(m.flags, m.payload),
        Err(Malformed("a truncated acknowledgement"))
    );
    // A length below the header's, or zero: no endless loop.
    let mut zero = ok.clone();
    zero[..4].copy_from_slice(&0u32.to_ne_bytes());
    assert_eq!(wire::messages(&zero).count(), 1);
    assert!(wire::messages(&zero).next().unwrap().is_err());
    // Truncated fixed parts and attributes of dumped objects.
    assert!(wire::link(&[0; 15]).is_err());
    assert!(wire::address(wire::AF_INET, &[2, 24, 0]).is_err());
    assert!(wire::route(wire::AF_INET, &[2; 11]).is_err());
    let mut a = vec![wire::AF_INET, 24, 0, 0, 3, 0, 0, 0];
    a.extend_from_slice(&[12, 0, 2, 0, 192, 0, 2, 1]); // claims 12 bytes, has 8
    assert!(wire::address(wire::AF_INET, &a).is_err());
}

fn addr_payload(family: u8, prefix: u8, scope: u8, attrs: &[(u16, &[u8])]) -> Vec<u8> {
    let mut p = vec![family, prefix, 0, scope, 3, 0, 0, 0];
    p[4..8].copy_from_slice(&3u32.to_ne_bytes());
    for (kind, value) in attrs {
        p.extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
        p.extend_from_slice(&kind.to_ne_bytes());
        p.extend_from_slice(value);
        while p.len() % 4 != 0 {
            p.push(0);
        }
    }
    p
}

#[test]
fn addresses_are_read_with_their_peer_and_scope() {
    let p = addr_payload(
        wire::AF_INET,
        32,
        0,
        &[(1, &[10, 0, 0, 2]), (2, &[10, 0, 0, 1]), (3, b"ppp0\0")],
    );
    let a = wire::address(wire::AF_INET, &p).unwrap().unwrap();
    assert_eq!(
        (a.index, a.prefix, a.scope, a.local, a.peer),
        (3, 32, 0, ip("10.0.0.1"), ip("10.0.0.2"))
    );
    // Another family: not ours.
    assert_eq!(wire::address(wire::AF_INET6, &p), Ok(None));
    // IPv6: IFA_ADDRESS alone, link scope.
    let v6 = ip("fe80::1");
    let IpAddr::V6(o) = v6 else { unreachable!() };
    let p = addr_payload(wire::AF_INET6, 64, 253, &[(1, &o.octets())]);
    let a = wire::address(wire::AF_INET6, &p).unwrap().unwrap();
    assert_eq!((a.local, a.peer, a.scope), (v6, v6, 253));
    // Odd lengths and prefixes are errors.
    for p in [
        addr_payload(wire::AF_INET, 24, 0, &[(2, &[10, 0, 0])]),
        addr_payload(wire::AF_INET, 33, 0, &[(2, &[10, 0, 0, 1])]),
        addr_payload(wire::AF_INET, 24, 0, &[(3, b"eth0\0")]),
    ] {
        assert!(wire::address(wire::AF_INET, &p).is_err(), "{p:?}");
    }
}

#[test]
fn routes_are_read() {
    // default via 192.0.2.1 dev #3 proto dhcp metric 100, table main
    let mut p = vec![wire::AF_INET, 0, 0, 0, 254, 16, 0, 1, 0, 0, 0, 0];
    for (kind, value) in [
        (15u16, 254u32.to_ne_bytes().to_vec()),
        (5, vec![192, 0, 2, 1]),
        (6, 100u32.to_ne_bytes().to_vec()),
        (4, 3u32.to_ne_bytes().to_vec()),
    ] {
        p.extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
        p.extend_from_slice(&kind.to_ne_bytes());
        p.extend_from_slice(&value);
    }
    let r = wire::route(wire::AF_INET, &p).unwrap().unwrap();
    assert_eq!(r.gateway, Some(ip("192.0.2.1")));
    assert_eq!((r.priority, r.oif, r.protocol), (Some(100), Some(3), 16));
    assert!(r.is_default_through(3));
    assert!(!r.is_default_through(4));
    // Not the default route; another table (RTA_TABLE wins); multipath.
    let mut q = p.clone();
    q[1] = 24;
    assert!(!wire::route(wire::AF_INET, &q)
        .unwrap()
        .unwrap()
        .is_default_through(3));
    let mut q = p.clone();
    q[16..20].copy_from_slice(&1000u32.to_ne_bytes());
    assert!(!wire::route(wire::AF_INET, &q)
        .unwrap()
        .unwrap()
        .is_default_through(3));
    let q = p[..p.len() - 8].to_vec(); // no RTA_OIF
    assert!(!wire::route(wire::AF_INET, &q)
        .unwrap()
        .unwrap()
        .is_default_through(3));
    // A gateway of the wrong length.
    let mut q = p.clone();
    q[20..22].copy_from_slice(&6u16.to_ne_bytes());
    assert!(wire::route(wire::AF_INET, &q).is_err());
}

fn link(index: u32, name: &str, mac: [u8; 6], master: Option<u32>, on: Option<u32>) -> LinkMsg {
    LinkMsg {
        index,
        flags: wire::IFF_UP,
        name: name.as_bytes().to_vec(),
        mac: Some(mac.to_vec()),
        master,
        link: on,
        link_elsewhere: false,
    }
}

const MAC: [u8; 6] = [0x02, 0x16, 0x3e, 0xaa, 0x0b, 0x01];
const OTHER: [u8; 6] = [0x02, 0x16, 0x3e, 0xaa, 0x0b, 0x02];

#[test]
fn link_messages_are_read() {
    let mut p = vec![0u8, 0, 1, 0];
    p.extend_from_slice(&7u32.to_ne_bytes());
    p.extend_from_slice(&(wire::IFF_UP | 0x1000).to_ne_bytes());
    p.extend_from_slice(&0u32.to_ne_bytes());
    for (kind, value) in [
        (3u16, b"eth0\0\0\0\0".to_vec()),
        (1, MAC.to_vec()),
        (10, 2u32.to_ne_bytes().to_vec()),
        (5, 4u32.to_ne_bytes().to_vec()),
    ] {
        p.extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
        p.extend_from_slice(&kind.to_ne_bytes());
        p.extend_from_slice(&value);
        while p.len() % 4 != 0 {
            p.push(0);
        }
    }
    let l = wire::link(&p).unwrap().unwrap();
    assert_eq!(l, link(7, "eth0", MAC, Some(2), Some(4)).with_flags(0x1001));
    // Bridge port messages are not about links.
    p[0] = 7;
    assert_eq!(wire::link(&p), Ok(None));
    // A nameless link is malformed.
    assert!(wire::link(&[0u8; 16]).is_err());
}

trait WithFlags {
    fn with_flags(self, flags: u32) -> Self;
}

impl WithFlags for LinkMsg {
    fn with_flags(mut self, flags: u32) -> Self {
        self.flags = flags;
        self
    }
}

#[test]
fn macs_are_lower_case() {
    assert_eq!(mac_string(&MAC), "02:16:3e:aa:0b:01");
    assert_eq!(mac_string(&[]), "");
}

#[test]
fn the_link_of_a_mac() {
    let found = |links: &[LinkMsg], mac: &str| choose(links, mac).map(|l| l.map(|l| l.name));
    let eth0 = link(2, "eth0", MAC, None, None);
    // Any case; the answer in lower case; none for another MAC.
    let l = choose(std::slice::from_ref(&eth0), "02:16:3E:AA:0B:01").unwrap();
    assert_eq!(
        l,
        Some(Link {
            index: 2,
            name: "eth0".into(),
            mac: "02:16:3e:aa:0b:01".into()
        })
    );
    assert_eq!(
        found(std::slice::from_ref(&eth0), "02:16:3e:aa:0b:99").unwrap(),
        None
    );
    // Loopback never matches.
    let lo = link(1, "lo", [0; 6], None, None).with_flags(wire::IFF_LOOPBACK);
    assert_eq!(found(&[lo], "00:00:00:00:00:00").unwrap(), None);
    // A bridge with its port's MAC, and a VLAN on the bridge: the bridge.
    let port = link(2, "eth0", MAC, Some(5), None);
    let br0 = link(5, "br0", MAC, None, None);
    let vlan = link(6, "br0.10", MAC, None, Some(5));
    let links = [port.clone(), br0, vlan];
    assert_eq!(
        found(&links, "02:16:3e:aa:0b:01").unwrap().as_deref(),
        Some("br0")
    );
    // A VLAN on a port whose bridge has another MAC: the port is named.
    let br0 = link(5, "br0", OTHER, None, None);
    let vlan = link(6, "eth0.10", MAC, None, Some(2));
    let e = found(&[port.clone(), br0, vlan], "02:16:3e:aa:0b:01").unwrap_err();
    assert!(e.to_string().starts_with("eth0 is a port of br0: "), "{e}");
    // A VLAN on a link in another namespace is a link of its own.
    let mut vlan = link(6, "eth0.10", MAC, None, Some(2));
    vlan.link_elsewhere = true;
    assert_eq!(
        found(&[vlan, port], "02:16:3e:aa:0b:01")
            .unwrap()
            .as_deref(),
        Some("eth0.10")
    );
    // Two free links: ambiguous. A veth pair pointing at each other
    // counts as two.
    let a = link(3, "a", MAC, None, Some(4));
    let b = link(4, "b", MAC, None, Some(3));
    let e = found(&[a, b], "02:16:3e:aa:0b:01").unwrap_err();
    assert!(e.to_string().contains("several interfaces"), "{e}");
    assert!(e.to_string().contains("(a, b)"), "{e}");
}

/// The C library's text for `errno` (glibc's and musl's differ).
fn os(errno: i32) -> std::io::Error {
    std::io::Error::from_raw_os_error(errno)
}

#[test]
fn errors_name_the_operation_and_hint_at_the_capability() {
    let e = error(
        "cannot add 192.0.2.10/24 to eth0".into(),
        Failure::Refused(Refused {
            errno: libc::EPERM,
            text: None,
        }),
    );
    assert_eq!(
        e.to_string(),
        format!(
            "cannot add 192.0.2.10/24 to eth0: {}; {CAP_HINT}",
            os(libc::EPERM)
        )
    );
    assert!(CAP_HINT.contains("CAP_NET_ADMIN") && CAP_HINT.contains("--allow static-ip"));
    // A socket refused the same way gets the hint too.
    let e = error(
        "cannot list the network interfaces".into(),
        Failure::Socket(std::io::Error::from_raw_os_error(libc::EPERM)),
    );
    assert!(e.to_string().ends_with(CAP_HINT));
    // The kernel's explanation follows the errno; no hint.
    let e = error(
        "cannot set the route default via 10.9.9.9 dev eth0".into(),
        Failure::Refused(Refused {
            errno: libc::ENETUNREACH,
            text: Some("Nexthop has invalid gateway".into()),
        }),
    );
    assert_eq!(
        e.to_string(),
        format!(
            "cannot set the route default via 10.9.9.9 dev eth0: {}: Nexthop has invalid gateway",
            os(libc::ENETUNREACH)
        )
    );
    let e = error("cannot bring eth0 up".into(), Failure::Timeout);
    assert_eq!(
        e.to_string(),
        "cannot bring eth0 up: no answer from the kernel within 5s"
    );
    let e = error(
        "cannot list the IPv4 addresses of eth0".into(),
        Failure::Malformed(Malformed("a truncated address message")),
    );
    assert_eq!(
        e.to_string(),
        "cannot list the IPv4 addresses of eth0: malformed netlink reply (a truncated address \
         message)"
    );
}

#[test]
fn prefixes_too_long_are_refused_before_the_kernel_sees_them() {
    let eth0 = Link {
        index: 2,
        name: "eth0".into(),
        mac: String::new(),
    };
    assert!(check_prefix("add", "to", &eth0, ip("192.0.2.1"), 32).is_ok());
    assert!(check_prefix("add", "to", &eth0, ip("2001:db8::1"), 128).is_ok());
    let e = check_prefix("add", "to", &eth0, ip("192.0.2.1"), 33).unwrap_err();
    assert_eq!(
        e.to_string(),
        "cannot add 192.0.2.1/33 to eth0: an IPv4 prefix is at most 32 bits long"
    );
    assert!(check_prefix("remove", "from", &eth0, ip("2001:db8::1"), 129).is_err());
}

#[test]
fn open_outside_a_tokio_runtime_is_an_error_not_a_panic() {
    match super::Live::open() {
        Ok(_) => panic!("opened without a runtime"),
        Err(e) => assert!(
            e.to_string()
                .starts_with("cannot open a netlink route socket: "),
            "{e}"
        ),
    }
}
