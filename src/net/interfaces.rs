//! The system's network interfaces and their addresses (`getifaddrs` through `if-addrs`):
//! whether an interface is up and which addresses it has, and the global IPv6 address BEP 7
//! announces.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use if_addrs::{IfAddr, Interface};

/// The IPv4 and IPv6 address of interface `name`, counting only addresses of a running
/// interface (IPv6 link-local ones cannot be bound without a scope and are left out);
/// `None` when it has neither: it is down, or gone.
pub(super) fn addresses_of(name: &str) -> io::Result<Option<(Option<Ipv4Addr>, Option<Ipv6Addr>)>> {
    let running: Vec<Interface> = if_addrs::get_if_addrs()?
        .into_iter()
        .filter(|i| i.name == name && i.is_oper_up())
        .collect();
    let v4 = running.iter().find_map(|i| match &i.addr {
        IfAddr::V4(a) => Some(a.ip),
        IfAddr::V6(_) => None,
    });
    let v6 = running.iter().find_map(|i| match &i.addr {
        IfAddr::V6(a) if !is_link_local(&a.ip) => Some(a.ip),
        _ => None,
    });
    Ok((v4.is_some() || v6.is_some()).then_some((v4, v6)))
}

/// Whether `ip` is an address of a running interface.
pub(super) fn has_address(ip: IpAddr) -> io::Result<bool> {
    Ok(if_addrs::get_if_addrs()?
        .iter()
        .any(|i| i.ip() == ip && i.is_oper_up()))
}

/// This machine's global IPv6 address, if it has one: what BEP 7's `ipv6=` tells a tracker
/// reached over IPv4, so that IPv6 peers can find us too.
pub fn public_ipv6() -> Option<Ipv6Addr> {
    let interfaces = if_addrs::get_if_addrs().ok()?;
    interfaces.iter().find_map(|i| match &i.addr {
        IfAddr::V6(a) if i.is_oper_up() && is_global_ipv6(&a.ip) => Some(a.ip),
        _ => None,
    })
}

fn is_link_local(ip: &Ipv6Addr) -> bool {
    ip.segments()[0] & 0xffc0 == 0xfe80
}

/// Global unicast (2000::/3) and not the documentation prefix.
pub fn is_global_ipv6(ip: &Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    first & 0xe000 == 0x2000 && !(first == 0x2001 && ip.segments()[1] == 0x0db8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_global_unicast_addresses_are_announced() {
        let global: Ipv6Addr = "2a01:4f8::1".parse().unwrap();
        assert!(is_global_ipv6(&global));
        for other in [
            "::1",
            "fe80::1",
            "fd00::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:1.2.3.4",
        ] {
            assert!(!is_global_ipv6(&other.parse().unwrap()), "{other}");
        }
        assert!(is_link_local(&"fe80::1".parse().unwrap()));
        assert!(!is_link_local(&global));
    }

    #[test]
    fn loopback_is_a_running_interface_with_its_address() {
        // `lo` may be down in a fresh namespace; where it is up, 127.0.0.1 is its address.
        if let Some((v4, _)) = addresses_of("lo").unwrap() {
            assert_eq!(v4, Some(Ipv4Addr::LOCALHOST));
            assert!(has_address(Ipv4Addr::LOCALHOST.into()).unwrap());
        }
        assert_eq!(addresses_of("rvnosuch0").unwrap(), None);
    }
}
