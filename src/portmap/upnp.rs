//! UPnP IGD: find the gateway by SSDP, map the port for TCP and UDP, renew it, remove it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::Duration;

use igd_next::aio::Gateway;
use igd_next::aio::tokio::{Tokio, search_gateway};
use igd_next::{AddPortError, PortMappingProtocol, RequestError, SearchOptions};

use super::MappingStatus;
use super::config::UpnpTarget;
use super::error::MapError;
use super::status::MappingProtocol;

const PROTOCOLS: [PortMappingProtocol; 2] = [PortMappingProtocol::TCP, PortMappingProtocol::UDP];

/// How the mappings are labelled in the router's table.
const DESCRIPTION: &str = "Rivulet";

/// A port mapped for TCP and UDP at a UPnP gateway.
pub(super) struct UpnpMapping {
    gateway: Gateway<Tokio>,
    /// Where the gateway forwards to: this machine's address towards it, and the port.
    internal: SocketAddr,
    /// Seconds asked for; 0 (permanent) if the gateway accepts nothing else.
    lease: u32,
    /// Half the lease first asked for, also when the mapping became permanent.
    renew_after: Duration,
    external_ip: Option<IpAddr>,
}

/// Finds a gateway and maps `port` (outside and inside) for TCP and UDP for `lease` seconds.
/// The search and requests leave from `source` (unspecified: any address).
pub(super) async fn map(
    target: UpnpTarget,
    source: Ipv4Addr,
    port: u16,
    lease: u32,
    timeout: Duration,
) -> Result<UpnpMapping, MapError> {
    let gateway = search_gateway(search_options(target, source, timeout))
        .await
        .map_err(|e| {
            tracing::debug!("no UPnP gateway: {e}");
            MapError::NoGateway
        })?;
    tracing::debug!("UPnP gateway at {gateway}");
    let internal = SocketAddr::new(local_ip_towards(gateway.addr, source)?, port);
    let mut mapping = UpnpMapping {
        gateway,
        internal,
        lease,
        renew_after: Duration::from_secs(lease.into()) / 2,
        external_ip: None,
    };
    mapping.add().await?;
    mapping.external_ip = mapping.external_ip().await;
    Ok(mapping)
}

impl UpnpMapping {
    pub(super) fn status(&self) -> MappingStatus {
        MappingStatus::Mapped {
            via: MappingProtocol::Upnp,
            external_port: self.internal.port(),
            external_ip: self.external_ip,
        }
    }

    pub(super) fn renew_after(&self) -> Duration {
        self.renew_after
    }

    /// Adds both mappings again, which extends their leases.
    pub(super) async fn renew(&mut self) -> Result<(), MapError> {
        self.add().await?;
        self.external_ip = self.external_ip().await;
        Ok(())
    }

    pub(super) async fn remove(&self) {
        self.remove_each(&PROTOCOLS).await;
    }

    /// Adds TCP then UDP; on a refusal, removes what was added so nothing is left half-mapped.
    async fn add(&mut self) -> Result<(), MapError> {
        for (added, protocol) in PROTOCOLS.into_iter().enumerate() {
            let result = match self.add_one(protocol, self.lease).await {
                Err(AddPortError::OnlyPermanentLeasesSupported) if self.lease != 0 => {
                    tracing::debug!("the UPnP gateway only takes permanent mappings");
                    self.lease = 0;
                    self.add_one(protocol, 0).await
                }
                result => result,
            };
            if let Err(e) = result {
                self.remove_each(&PROTOCOLS[..added]).await;
                return Err(refusal(e));
            }
        }
        Ok(())
    }

    async fn add_one(&self, protocol: PortMappingProtocol, lease: u32) -> Result<(), AddPortError> {
        let port = self.internal.port();
        self.gateway
            .add_port(protocol, port, self.internal, lease, DESCRIPTION)
            .await
    }

    async fn remove_each(&self, protocols: &[PortMappingProtocol]) {
        let port = self.internal.port();
        for &protocol in protocols {
            match self.gateway.remove_port(protocol, port).await {
                Ok(()) => tracing::debug!("removed the UPnP mapping of {protocol} port {port}"),
                Err(e) => tracing::warn!(
                    "could not remove the UPnP mapping of {protocol} port {port}: {e}"
                ),
            }
        }
    }

    async fn external_ip(&self) -> Option<IpAddr> {
        self.gateway
            .get_external_ip()
            .await
            .inspect_err(|e| {
                tracing::debug!("the UPnP gateway did not give its external address: {e}")
            })
            .ok()
    }
}

fn search_options(target: UpnpTarget, source: Ipv4Addr, timeout: Duration) -> SearchOptions {
    let mut options = SearchOptions::default();
    options.bind_addr = (source, 0).into();
    options.timeout = Some(timeout);
    options.single_search_timeout = Some(timeout);
    if let UpnpTarget::Unicast(addr) = target {
        options.broadcast_address = addr;
        options.allowed_gateway_ips = vec![addr.ip()];
        if addr.is_ipv6() {
            options.bind_addr = (Ipv6Addr::UNSPECIFIED, 0).into();
        }
    }
    options
}

/// This machine's address on the way to `gateway`: a UDP socket's after `connect`, which picks
/// the route without sending anything.
fn local_ip_towards(gateway: SocketAddr, source: Ipv4Addr) -> std::io::Result<IpAddr> {
    let any: IpAddr = match gateway {
        SocketAddr::V4(_) => source.into(),
        SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    let socket = UdpSocket::bind((any, 0))?;
    socket.connect(gateway)?;
    Ok(socket.local_addr()?.ip())
}

/// The status bar's words for a failed AddPortMapping (UPnP error codes in brackets).
fn refusal(error: AddPortError) -> MapError {
    let reason = match error {
        AddPortError::RequestError(RequestError::ErrorCode(code, text)) => {
            format!("{text} ({code})")
        }
        AddPortError::RequestError(other) => return MapError::BadAnswer(other.to_string()),
        AddPortError::ActionNotAuthorized => "not authorized (606)".into(),
        AddPortError::PortInUse => "the port is mapped to another device (718)".into(),
        AddPortError::SamePortValuesRequired => "the ports must be the same (724)".into(),
        AddPortError::OnlyPermanentLeasesSupported => "only permanent mappings (725)".into(),
        AddPortError::DescriptionTooLong => "description too long (605)".into(),
        AddPortError::ExternalPortZeroInvalid | AddPortError::InternalPortZeroInvalid => {
            "port 0".into()
        }
    };
    MapError::Refused(reason)
}
