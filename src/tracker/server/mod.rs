//! Rivulet's own tracker: HTTP announce and scrape (BEP 3, 23, 48) and UDP announce and scrape
//! (BEP 15) on the same port number, over one bounded in-memory [`Swarms`] store. Runs headless
//! (`rivulet tracker`) or inside the app's engine.

mod http;
mod ip_slots;
mod swarms;
mod udp;

pub use http::answer as answer_http_request;
pub use swarms::{Access, AllowList, Limits, Refusal, Swarms};
pub use udp::{ConnectionIds, handle as answer_udp_datagram};

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;

/// How to run the tracker.
#[derive(Debug, Clone)]
pub struct TrackerConfig {
    pub bind: IpAddr,
    /// 0 picks a free port (the same number for TCP and UDP).
    pub port: u16,
    pub limits: Limits,
    pub access: Access,
}

impl TrackerConfig {
    /// Defaults for a tracker on `port`: a 30-minute interval, 10 000 torrents of up to 1 000
    /// peers (about 100 MiB at most), serving `access`.
    pub fn new(bind: IpAddr, port: u16, access: Access) -> Self {
        Self {
            bind,
            port,
            limits: Limits {
                interval: Duration::from_secs(1800),
                max_torrents: 10_000,
                max_peers_per_torrent: 1_000,
            },
            access,
        }
    }
}

/// The tracker could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot run the tracker on {addr} ({protocol}): {source}")]
pub struct TrackerServerError {
    addr: SocketAddr,
    protocol: &'static str,
    source: std::io::Error,
}

/// A running tracker; it stops when dropped.
pub struct RunningTracker {
    addr: SocketAddr,
    swarms: Arc<Swarms>,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningTracker {
    /// Binds TCP and UDP on one port number and starts serving (on the current tokio runtime).
    pub async fn start(config: TrackerConfig) -> Result<Self, TrackerServerError> {
        let (tcp, udp) = bind(config.bind, config.port).await?;
        let addr = tcp.local_addr().map_err(|source| TrackerServerError {
            addr: SocketAddr::new(config.bind, config.port),
            protocol: "TCP",
            source,
        })?;
        let swarms = Arc::new(Swarms::new(config.limits, config.access));
        let sweep_every =
            (swarms.interval() / 2).clamp(Duration::from_millis(100), Duration::from_secs(60));
        let sweeper = swarms.clone();
        let tasks = vec![
            tokio::spawn(http::serve(tcp, swarms.clone())),
            tokio::spawn(udp::serve(udp, swarms.clone())),
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(sweep_every);
                loop {
                    tick.tick().await;
                    sweeper.expire();
                }
            }),
        ];
        tracing::info!(%addr, "tracker listening (HTTP and UDP)");
        Ok(Self {
            addr,
            swarms,
            tasks,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The HTTP announce URL for `host`.
    pub fn http_url(&self, host: &str) -> String {
        format!("http://{host}:{}/announce", self.addr.port())
    }

    pub fn swarms(&self) -> &Arc<Swarms> {
        &self.swarms
    }
}

impl RunningTracker {
    /// Stops serving and waits until the sockets are closed, so the port can be bound again.
    pub async fn stop(mut self) {
        for task in self.tasks.drain(..) {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for RunningTracker {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// TCP and UDP sockets on the same port; with port 0, tries a few free TCP ports until the
/// same UDP port is free too.
async fn bind(ip: IpAddr, port: u16) -> Result<(TcpListener, UdpSocket), TrackerServerError> {
    let error = |protocol, addr, source| TrackerServerError {
        addr,
        protocol,
        source,
    };
    let tries = if port == 0 { 20 } else { 1 };
    let mut last = None;
    for _ in 0..tries {
        let wanted = SocketAddr::new(ip, port);
        let tcp = TcpListener::bind(wanted)
            .await
            .map_err(|e| error("TCP", wanted, e))?;
        let actual = tcp.local_addr().map_err(|e| error("TCP", wanted, e))?;
        match UdpSocket::bind(actual).await {
            Ok(udp) => return Ok((tcp, udp)),
            Err(e) => last = Some(error("UDP", actual, e)),
        }
    }
    Err(last.unwrap_or_else(|| {
        error(
            "UDP",
            SocketAddr::new(ip, port),
            std::io::Error::other("no port"),
        )
    }))
}
