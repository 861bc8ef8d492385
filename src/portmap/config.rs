//! What the port mapper maps, for how long, and where it looks for gateways.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

/// Settings for [`super::PortMapper::spawn`]; [`PortMapperConfig::new`] gives the defaults.
#[derive(Clone, Debug)]
pub struct PortMapperConfig {
    /// The port mapped for TCP and UDP, the same number inside and outside.
    pub port: u16,
    /// The lease asked for; it is renewed at half its length.
    pub lease: Duration,
    /// The wait after a failed attempt before the next one.
    pub retry_after: Duration,
    /// How long each protocol may take to find a gateway.
    pub discovery_timeout: Duration,
    /// Where the UPnP search is sent.
    pub upnp: UpnpTarget,
    /// The NAT-PMP gateway; `None` means the default route's gateway on port 5351.
    pub natpmp_gateway: Option<SocketAddr>,
    /// The local address searches and requests leave from (the bound interface's);
    /// unspecified: any.
    pub source: Ipv4Addr,
}

impl PortMapperConfig {
    /// Map `port` with a one-hour lease, retry every five minutes, search the usual places.
    pub fn new(port: u16) -> Self {
        Self {
            port,
            lease: Duration::from_secs(60 * 60),
            retry_after: Duration::from_secs(5 * 60),
            // Gateways may wait up to the 3 s "MX" of the SSDP search before answering.
            discovery_timeout: Duration::from_secs(5),
            upnp: UpnpTarget::Multicast,
            natpmp_gateway: None,
            source: Ipv4Addr::UNSPECIFIED,
        }
    }
}

/// Where the UPnP search for an Internet Gateway Device goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpnpTarget {
    /// SSDP multicast to 239.255.255.250:1900. Devices on loopback are not trusted.
    Multicast,
    /// A search sent to this address alone; the device it names at that IP is trusted, even on
    /// loopback.
    Unicast(SocketAddr),
}
