//! Which addresses an outbound fetch may connect to: public unicast only.
//!
//! RFC 6890 (and the IANA special-purpose registries it set up) lists the
//! blocks that are not the public Internet: this host, private networks,
//! shared address space, link-local (cloud metadata at 169.254.169.254),
//! documentation, benchmarking, multicast, reserved. A URL a client chose
//! must not make this server reach any of them (server-side request
//! forgery). IPv6 forms that embed an IPv4 address (IPv4-mapped,
//! IPv4-compatible, NAT64, 6to4, Teredo) are refused whole: whatever IPv4
//! address they carry is not checked twice.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address is refused: the RFC 6890 block it falls in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0} is a special-use address ({1})")]
pub(crate) struct SpecialUse(pub IpAddr, pub &'static str);

/// `Ok` when `ip` is a public unicast address, or (`allow_loopback`, a
/// test-only setting) a loopback one.
pub(crate) fn check(ip: IpAddr, allow_loopback: bool) -> Result<(), SpecialUse> {
    let block = match ip {
        IpAddr::V4(v4) => v4_block(v4),
        IpAddr::V6(v6) => v6_block(v6),
    };
    match block {
        None => Ok(()),
        Some("loopback") if allow_loopback => Ok(()),
        Some(name) => Err(SpecialUse(ip, name)),
    }
}

fn v4_block(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (0, _, _) => "this network, RFC 1122",
        (10, _, _) => "private, RFC 1918",
        (100, 64..=127, _) => "shared address space, RFC 6598",
        (127, _, _) => "loopback",
        (169, 254, _) => "link-local, RFC 3927",
        (172, 16..=31, _) => "private, RFC 1918",
        (192, 0, 0) => "IETF protocol assignments, RFC 6890",
        (192, 0, 2) => "documentation, RFC 5737",
        (192, 88, 99) => "6to4 relay anycast, RFC 7526",
        (192, 168, _) => "private, RFC 1918",
        (198, 18..=19, _) => "benchmarking, RFC 2544",
        (198, 51, 100) => "documentation, RFC 5737",
        (203, 0, 113) => "documentation, RFC 5737",
        (224..=239, _, _) => "multicast, RFC 5771",
        (240..=255, _, _) => "reserved or broadcast, RFC 1112",
        _ => return None,
    })
}

fn v6_block(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    if ip.is_loopback() {
        return Some("loopback");
    }
    if ip.is_unspecified() {
        return Some("unspecified, RFC 4291");
    }
    Some(match s {
        [0, 0, 0, 0, 0, 0xffff, _, _] => "IPv4-mapped, RFC 4291",
        [0, 0, 0, 0, 0, 0, _, _] => "IPv4-compatible, RFC 4291",
        [0x64, 0xff9b, ..] => "NAT64, RFC 6052 / RFC 8215",
        [0x100, 0, 0, 0, ..] => "discard-only, RFC 6666",
        [0x2001, 0..=0x1ff, ..] => "IETF protocol assignments (Teredo, ...), RFC 2928",
        [0x2001, 0xdb8, ..] => "documentation, RFC 3849",
        [0x2002, ..] => "6to4, RFC 3056",
        [0x3fff, 0..=0x0fff, ..] => "documentation, RFC 9637",
        [x, ..] if x & 0xfe00 == 0xfc00 => "unique local, RFC 4193",
        [x, ..] if x & 0xffc0 == 0xfe80 => "link-local, RFC 4291",
        [x, ..] if x & 0xffc0 == 0xfec0 => "site-local, RFC 3879",
        [x, ..] if x & 0xff00 == 0xff00 => "multicast, RFC 4291",
        // Only 2000::/3 is allocated as global unicast (RFC 4291 §2.4).
        [x, ..] if x & 0xe000 != 0x2000 => "not global unicast, RFC 4291",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(s: &str) -> bool {
        check(s.parse().unwrap(), false).is_err()
    }

    #[test]
    fn special_use_addresses_are_refused() {
        for a in [
            "0.0.0.0",
            "10.1.2.3",
            "100.64.0.1",
            "127.0.0.1",
            "127.255.0.9",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:8.8.8.8",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2001::1",
            "2001:db8::1",
            "2002:a9fe:a9fe::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "100::1",
            "4000::1",
        ] {
            assert!(refused(a), "{a} must be refused");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for a in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "2a00:1450::1",
        ] {
            assert!(!refused(a), "{a} is public");
        }
    }

    #[test]
    fn the_test_setting_allows_loopback_and_nothing_else() {
        assert!(check("127.0.0.1".parse().unwrap(), true).is_ok());
        assert!(check("::1".parse().unwrap(), true).is_ok());
        for a in ["::ffff:127.0.0.1", "10.0.0.1", "169.254.169.254", "0.0.0.0"] {
            assert!(check(a.parse().unwrap(), true).is_err(), "{a}");
        }
    }
}
