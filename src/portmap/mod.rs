//! Port mapping at the home gateway, so that peers can reach our listen port (TCP) and DHT
//! (UDP): the [`PortMapper`] handle and the task that maps, renews and finally removes the
//! mapping, through UPnP IGD or else NAT-PMP.

mod config;
mod error;
mod gateway;
mod natpmp;
mod status;
mod upnp;

use std::future::Future;
use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::time::Duration;

use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

pub use config::{PortMapperConfig, UpnpTarget};
use error::MapError;
pub use status::{MappingProtocol, MappingStatus};

/// How long removing the mappings may take when stopping.
const STOP_BUDGET: Duration = Duration::from_secs(2);

/// The shortest wait between renewals, whatever lease a gateway grants.
const MIN_RENEW: Duration = Duration::from_secs(1);

/// The longest lease UPnP IGD 2 allows (a week); NAT-PMP gateways cap theirs anyway.
const MAX_LEASE_SECS: u32 = 7 * 24 * 60 * 60;

/// NAT-PMP's port on the gateway (RFC 6886).
const NATPMP_PORT: u16 = 5351;

/// A running port mapper. [`PortMapper::stop`] removes the mapping; dropping the handle
/// instead aborts the task and leaves the mapping to expire with its lease.
pub struct PortMapper {
    // Declared first so that a drop aborts the task before the stop channel closes.
    task: AbortOnDrop,
    stop: oneshot::Sender<()>,
    status: watch::Receiver<MappingStatus>,
}

impl PortMapper {
    /// Starts mapping `config.port` in a task on the current tokio runtime.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn spawn(config: PortMapperConfig) -> PortMapper {
        let (status_sender, status) = watch::channel(MappingStatus::Searching);
        let (stop, stopped) = oneshot::channel();
        let task = AbortOnDrop(tokio::spawn(run(config, status_sender, stopped)));
        PortMapper { task, stop, status }
    }

    /// The current status, updated on every change; it closes when the task ends.
    pub fn status(&self) -> watch::Receiver<MappingStatus> {
        self.status.clone()
    }

    /// Removes the mapping (giving up after about two seconds) and ends the task.
    pub async fn stop(self) {
        let PortMapper { mut task, stop, .. } = self;
        // An error means the task is already gone.
        let _ = stop.send(());
        let margin = Duration::from_millis(500);
        if tokio::time::timeout(STOP_BUDGET + margin, &mut task.0)
            .await
            .is_err()
        {
            tracing::warn!("the port mapper did not stop in time");
        }
    }
}

/// Aborts the task when dropped.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Maps, keeps the mapping while it renews, and starts over when that fails, until stopped.
async fn run(
    config: PortMapperConfig,
    status: watch::Sender<MappingStatus>,
    mut stop: oneshot::Receiver<()>,
) {
    while let Some(attempt) = until_stopped(&mut stop, map(&config)).await {
        match attempt {
            Ok(mapping) => {
                tracing::info!("port mapping: {}", mapping.status());
                if hold(mapping, &status, &mut stop).await.is_break() {
                    return;
                }
            }
            Err(e) => {
                tracing::info!(
                    "port {} not mapped: {e}; next try in {:?}",
                    config.port,
                    config.retry_after
                );
                publish(
                    &status,
                    MappingStatus::Failed {
                        reason: e.to_string(),
                    },
                );
                if until_stopped(&mut stop, tokio::time::sleep(config.retry_after))
                    .await
                    .is_none()
                {
                    return;
                }
            }
        }
    }
}

/// Renews `mapping` until a renewal fails (`Continue`: map again) or the mapper is stopped
/// (`Break`, after removing the mapping).
async fn hold(
    mut mapping: Mapping,
    status: &watch::Sender<MappingStatus>,
    stop: &mut oneshot::Receiver<()>,
) -> ControlFlow<()> {
    loop {
        publish(status, mapping.status());
        let renewal = until_stopped(stop, async {
            tokio::time::sleep(mapping.renew_after()).await;
            mapping.renew().await
        });
        match renewal.await {
            Some(Ok(())) => tracing::debug!("port mapping renewed"),
            Some(Err(e)) => {
                tracing::warn!("port mapping renewal failed: {e}; mapping again");
                return ControlFlow::Continue(());
            }
            None => {
                if tokio::time::timeout(STOP_BUDGET, mapping.remove())
                    .await
                    .is_err()
                {
                    tracing::warn!("the gateway did not confirm the removal in time");
                }
                return ControlFlow::Break(());
            }
        }
    }
}

/// Runs `work` unless the stop signal (or the handle's drop) comes first.
async fn until_stopped<F: Future>(stop: &mut oneshot::Receiver<()>, work: F) -> Option<F::Output> {
    tokio::select! {
        output = work => Some(output),
        _ = stop => None,
    }
}

/// Sends `new` to the watchers unless it is what they already have.
fn publish(status: &watch::Sender<MappingStatus>, new: MappingStatus) {
    status.send_if_modified(|current| {
        let changed = *current != new;
        *current = new;
        changed
    });
}

/// One attempt: UPnP first, then NAT-PMP.
async fn map(config: &PortMapperConfig) -> Result<Mapping, MapError> {
    if config.port == 0 {
        return Err(MapError::NoPort);
    }
    let lease = u32::try_from(config.lease.as_secs())
        .unwrap_or(u32::MAX)
        .clamp(1, MAX_LEASE_SECS);
    let (source, timeout) = (config.source, config.discovery_timeout);
    let upnp = match upnp::map(config.upnp, source, config.port, lease, timeout).await {
        Ok(mapping) => return Ok(Mapping::Upnp(mapping)),
        Err(e) => e,
    };
    let natpmp_gateway = config
        .natpmp_gateway
        .or_else(|| gateway::default_gateway().map(|ip| SocketAddr::from((ip, NATPMP_PORT))));
    let natpmp = match natpmp_gateway {
        Some(at) => match natpmp::map(at, source, config.port, lease, timeout).await {
            Ok(mapping) => return Ok(Mapping::NatPmp(mapping)),
            Err(e) => e,
        },
        None => MapError::NoGateway,
    };
    tracing::debug!("UPnP: {upnp}; NAT-PMP: {natpmp}");
    Err(upnp.or(natpmp))
}

/// A mapping held through one of the protocols.
enum Mapping {
    Upnp(upnp::UpnpMapping),
    NatPmp(natpmp::NatPmpMapping),
}

impl Mapping {
    fn status(&self) -> MappingStatus {
        match self {
            Mapping::Upnp(mapping) => mapping.status(),
            Mapping::NatPmp(mapping) => mapping.status(),
        }
    }

    fn renew_after(&self) -> Duration {
        let renew_after = match self {
            Mapping::Upnp(mapping) => mapping.renew_after(),
            Mapping::NatPmp(mapping) => mapping.renew_after(),
        };
        renew_after.max(MIN_RENEW)
    }

    async fn renew(&mut self) -> Result<(), MapError> {
        match self {
            Mapping::Upnp(mapping) => mapping.renew().await,
            Mapping::NatPmp(mapping) => mapping.renew().await,
        }
    }

    async fn remove(&mut self) {
        match self {
            Mapping::Upnp(mapping) => mapping.remove().await,
            Mapping::NatPmp(mapping) => mapping.remove().await,
        }
    }
}
