//! The default route's gateway (from `/proc/net/route`), where NAT-PMP requests go.

use std::net::Ipv4Addr;

/// Route flags (`linux/route.h`): the route is up and goes through a gateway.
const RTF_UP: u16 = 0x1;
const RTF_GATEWAY: u16 = 0x2;

/// The IPv4 gateway of the default route, if the kernel reports one.
pub(super) fn default_gateway() -> Option<Ipv4Addr> {
    let routes = std::fs::read_to_string("/proc/net/route")
        .inspect_err(|e| tracing::debug!("cannot read /proc/net/route: {e}"))
        .ok()?;
    parse_default_gateway(&routes)
}

/// The gateway of the default route with the lowest metric; lines that do not parse are skipped.
fn parse_default_gateway(routes: &str) -> Option<Ipv4Addr> {
    routes
        .lines()
        .filter_map(parse_default_route)
        .min_by_key(|&(_, metric)| metric)
        .map(|(gateway, _)| gateway)
}

/// A line's `(gateway, metric)` if it is a default route that is up and has a gateway.
/// Columns: Iface Destination Gateway Flags RefCnt Use Metric Mask ...
fn parse_default_route(line: &str) -> Option<(Ipv4Addr, u32)> {
    let mut fields = line.split_whitespace();
    let _iface = fields.next()?;
    let destination = hex_address(fields.next()?)?;
    let gateway = hex_address(fields.next()?)?;
    let flags = u16::from_str_radix(fields.next()?, 16).ok()?;
    let metric = fields.nth(2)?.parse().ok()?;
    let mask = hex_address(fields.next()?)?;
    let is_default = destination.is_unspecified() && mask.is_unspecified();
    let usable =
        flags & (RTF_UP | RTF_GATEWAY) == RTF_UP | RTF_GATEWAY && !gateway.is_unspecified();
    (is_default && usable).then_some((gateway, metric))
}

/// The kernel prints each address as the hex of its in-memory (network order) bytes read as a
/// native integer, so turning it back into native bytes gives the octets in order.
fn hex_address(field: &str) -> Option<Ipv4Addr> {
    if field.len() != 8 || !field.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(field, 16)
        .ok()
        .map(|raw| Ipv4Addr::from(raw.to_ne_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str =
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT";

    /// A route line as the kernel writes it, for this machine's byte order.
    fn line(
        iface: &str,
        dest: [u8; 4],
        gateway: [u8; 4],
        flags: u16,
        metric: u32,
        mask: [u8; 4],
    ) -> String {
        let hex = |octets: [u8; 4]| format!("{:08X}", u32::from_ne_bytes(octets));
        format!(
            "{iface}\t{}\t{}\t{flags:04X}\t0\t0\t{metric}\t{}\t0\t0\t0",
            hex(dest),
            hex(gateway),
            hex(mask)
        )
    }

    #[test]
    fn finds_the_default_route() {
        let table = [
            HEADER.to_string(),
            line("eth0", [0; 4], [192, 168, 1, 1], 0x3, 100, [0; 4]),
            line(
                "eth0",
                [192, 168, 1, 0],
                [0; 4],
                0x1,
                100,
                [255, 255, 255, 0],
            ),
        ]
        .join("\n");
        assert_eq!(
            parse_default_gateway(&table),
            Some(Ipv4Addr::new(192, 168, 1, 1))
        );
    }

    #[test]
    fn reads_the_kernels_little_endian_text() {
        if cfg!(target_endian = "little") {
            let table = format!(
                "{HEADER}\nwlan0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0\n"
            );
            assert_eq!(
                parse_default_gateway(&table),
                Some(Ipv4Addr::new(192, 168, 1, 1))
            );
        }
    }

    #[test]
    fn prefers_the_lowest_metric() {
        let table = [
            line("wlan0", [0; 4], [10, 0, 0, 1], 0x3, 600, [0; 4]),
            line("eth0", [0; 4], [192, 168, 1, 1], 0x3, 100, [0; 4]),
        ]
        .join("\n");
        assert_eq!(
            parse_default_gateway(&table),
            Some(Ipv4Addr::new(192, 168, 1, 1))
        );
    }

    #[test]
    fn ignores_routes_that_are_down_direct_or_not_default() {
        let table = [
            line("eth0", [0; 4], [192, 168, 1, 1], 0x2, 100, [0; 4]),
            line("tun0", [0; 4], [0; 4], 0x1, 50, [0; 4]),
            line(
                "eth0",
                [10, 0, 0, 0],
                [192, 168, 1, 1],
                0x3,
                10,
                [255, 0, 0, 0],
            ),
        ]
        .join("\n");
        assert_eq!(parse_default_gateway(&table), None);
    }

    #[test]
    fn skips_bad_lines() {
        let table = [
            "".to_string(),
            "garbage".to_string(),
            "eth0\t00000000\tZZZZZZZZ\t0003\t0\t0\t100\t00000000".to_string(),
            "eth0\t00000000\t0101A8C0\t0003\t0\t0".to_string(),
            "eth0\t0\t0101A8C0\t0003\t0\t0\t100\t00000000".to_string(),
            "eth0\t00000000\t0101A8C0\t0003\t0\t0\t-1\t00000000".to_string(),
            "eth0\t00000000\t+101A8C0\t0003\t0\t0\t0\t00000000".to_string(),
            "eth0 ☃ 00000000".to_string(),
            line("eth1", [0; 4], [172, 16, 0, 1], 0x3, 0, [0; 4]),
        ]
        .join("\n");
        assert_eq!(
            parse_default_gateway(&table),
            Some(Ipv4Addr::new(172, 16, 0, 1))
        );
        assert_eq!(parse_default_gateway(HEADER), None);
        assert_eq!(parse_default_gateway(""), None);
    }
}
