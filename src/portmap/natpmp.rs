//! NAT-PMP (RFC 6886): map the port for TCP and UDP at the gateway, renew it, remove it.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use natpmp::{MappingResponse, NatpmpAsync, Protocol, Response, new_natpmp_async_with};
use tokio::net::UdpSocket;
use tokio::time::Instant;

use super::MappingStatus;
use super::error::MapError;
use super::status::MappingProtocol;

/// The first wait for an answer; it doubles on each resend (RFC 6886 section 3.1).
const FIRST_WAIT: Duration = Duration::from_millis(250);

/// A port mapped for TCP and UDP at a NAT-PMP gateway.
pub(super) struct NatPmpMapping {
    client: Client,
    /// The lease asked for at each renewal.
    lease: u32,
    external_port: u16,
    external_ip: Ipv4Addr,
    /// The shorter of the two lifetimes the gateway granted.
    granted: Duration,
}

/// Asks `gateway` for its external address, then maps `port` for TCP and UDP for `lease` seconds.
/// Requests leave from `source` (unspecified: any address).
pub(super) async fn map(
    gateway: SocketAddr,
    source: Ipv4Addr,
    port: u16,
    lease: u32,
    timeout: Duration,
) -> Result<NatPmpMapping, MapError> {
    let mut client = Client::connect(gateway, source, port, timeout).await?;
    let external_ip = client.external_ip().await?;
    let mut mapping = NatPmpMapping {
        client,
        lease,
        external_port: port,
        external_ip,
        granted: Duration::ZERO,
    };
    mapping.add().await?;
    Ok(mapping)
}

impl NatPmpMapping {
    pub(super) fn status(&self) -> MappingStatus {
        MappingStatus::Mapped {
            via: MappingProtocol::NatPmp,
            external_port: self.external_port,
            external_ip: Some(self.external_ip.into()),
        }
    }

    /// Half the granted lifetime, when the gateway should hear from us again.
    pub(super) fn renew_after(&self) -> Duration {
        self.granted / 2
    }

    /// Asks for both mappings again, suggesting the external port we hold.
    pub(super) async fn renew(&mut self) -> Result<(), MapError> {
        self.external_ip = self.client.external_ip().await?;
        self.add().await
    }

    /// Deletes both mappings: a request with a lifetime of 0 and no suggested port.
    pub(super) async fn remove(&mut self) {
        for protocol in [Protocol::TCP, Protocol::UDP] {
            match self.client.request(protocol, 0, 0).await {
                Ok(_) => tracing::debug!(
                    "removed the NAT-PMP mapping of {protocol:?} port {}",
                    self.client.port
                ),
                Err(e) => tracing::warn!(
                    "could not remove the NAT-PMP mapping of {protocol:?} port {}: {e}",
                    self.client.port
                ),
            }
        }
    }

    /// Maps TCP, then UDP on the external port TCP got; undoes TCP if UDP is refused.
    async fn add(&mut self) -> Result<(), MapError> {
        let tcp = self
            .client
            .request(Protocol::TCP, self.external_port, self.lease)
            .await?;
        let tcp_port = external_port(&tcp)?;
        let udp = match self
            .client
            .request(Protocol::UDP, tcp_port, self.lease)
            .await
        {
            Ok(udp) => udp,
            Err(e) => {
                if let Err(undo) = self.client.request(Protocol::TCP, 0, 0).await {
                    tracing::debug!("could not undo the NAT-PMP TCP mapping: {undo}");
                }
                return Err(e);
            }
        };
        if udp.public_port() != tcp_port {
            tracing::warn!(
                "NAT-PMP mapped TCP to port {tcp_port} but UDP to {}",
                udp.public_port()
            );
        }
        self.external_port = tcp_port;
        self.granted = (*tcp.lifetime()).min(*udp.lifetime());
        Ok(())
    }
}

/// The external port of a mapping; 0 only answers a deletion.
fn external_port(mapping: &MappingResponse) -> Result<u16, MapError> {
    match mapping.public_port() {
        0 => Err(MapError::BadAnswer("NAT-PMP mapped to port 0".into())),
        port => Ok(port),
    }
}

/// Requests to one gateway, resent until answered or the timeout ends.
struct Client {
    natpmp: NatpmpAsync<UdpSocket>,
    /// Our port, the internal port of every mapping.
    port: u16,
    timeout: Duration,
}

#[derive(Clone, Copy)]
enum Request {
    ExternalIp,
    Map {
        protocol: Protocol,
        external_port: u16,
        lease: u32,
    },
}

impl Client {
    async fn connect(
        gateway: SocketAddr,
        source: Ipv4Addr,
        port: u16,
        timeout: Duration,
    ) -> Result<Client, MapError> {
        let SocketAddr::V4(gateway) = gateway else {
            return Err(MapError::NoGateway);
        };
        let socket = UdpSocket::bind((source, 0)).await?;
        socket.connect(gateway).await?;
        Ok(Client {
            natpmp: new_natpmp_async_with(socket, *gateway.ip()),
            port,
            timeout,
        })
    }

    async fn external_ip(&mut self) -> Result<Ipv4Addr, MapError> {
        self.exchange(Request::ExternalIp, |response| match response {
            Response::Gateway(gateway) => Some(*gateway.public_address()),
            Response::TCP(_) | Response::UDP(_) => None,
        })
        .await
    }

    /// Maps our port for `lease` seconds (0 deletes), suggesting `external_port` (0: any).
    async fn request(
        &mut self,
        protocol: Protocol,
        external_port: u16,
        lease: u32,
    ) -> Result<MappingResponse, MapError> {
        let port = self.port;
        let request = Request::Map {
            protocol,
            external_port,
            lease,
        };
        self.exchange(request, move |response| match (protocol, response) {
            (Protocol::TCP, Response::TCP(mapping)) | (Protocol::UDP, Response::UDP(mapping))
                if mapping.private_port() == port =>
            {
                Some(mapping)
            }
            _ => None,
        })
        .await
    }

    /// Sends `request` and waits for the first answer `pick` takes (answers to other or
    /// earlier requests are skipped), resending with a doubling wait.
    async fn exchange<T>(
        &mut self,
        request: Request,
        pick: impl Fn(Response) -> Option<T>,
    ) -> Result<T, MapError> {
        let deadline = Instant::now() + self.timeout;
        let mut wait = FIRST_WAIT;
        loop {
            if let Err(e) = self.send(request).await {
                tracing::debug!("NAT-PMP send: {e}");
            }
            let until = (Instant::now() + wait).min(deadline);
            if let Ok(answer) = tokio::time::timeout_at(until, self.answer(&pick)).await {
                return answer;
            }
            if until >= deadline {
                return Err(MapError::NoGateway);
            }
            wait = wait.saturating_mul(2);
        }
    }

    async fn send(&mut self, request: Request) -> natpmp::Result<()> {
        match request {
            Request::ExternalIp => self.natpmp.send_public_address_request().await,
            Request::Map {
                protocol,
                external_port,
                lease,
            } => {
                self.natpmp
                    .send_port_mapping_request(protocol, self.port, external_port, lease)
                    .await
            }
        }
    }

    async fn answer<T>(&self, pick: &impl Fn(Response) -> Option<T>) -> Result<T, MapError> {
        loop {
            let response = self
                .natpmp
                .read_response_or_retry()
                .await
                .map_err(|e| match e {
                    // Receiving failed again and again: nothing reachable there.
                    natpmp::Error::NATPMP_ERR_RECVFROM => MapError::NoGateway,
                    refused => MapError::Refused(refused.to_string()),
                })?;
            match pick(response) {
                Some(answer) => return Ok(answer),
                None => {
                    tracing::debug!("skipping a NAT-PMP answer to another request: {response:?}")
                }
            }
        }
    }
}
