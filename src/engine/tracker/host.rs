//! Rivulet's tracker inside the engine: started, moved or stopped as the settings say, serving
//! the torrents the session has loaded (or any, when open).

use std::net::IpAddr;

use crate::ids::InfoHash;
use crate::tracker::server::{Access, AllowList, RunningTracker, TrackerConfig};

/// The tracker part of the engine's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackerSettings {
    pub port: u16,
    /// Serve any info hash, not only the loaded torrents.
    pub open: bool,
}

/// What the snapshot says of the tracker.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum TrackerHostState {
    #[default]
    Off,
    Running {
        port: u16,
        torrents: usize,
        peers: usize,
    },
    Failed(String),
}

#[derive(Default)]
pub(crate) struct TrackerHost {
    settings: Option<TrackerSettings>,
    running: Option<RunningTracker>,
    error: Option<String>,
    loaded: AllowList,
}

impl TrackerHost {
    pub fn allow(&self, id: InfoHash) {
        self.loaded.insert(id);
    }

    pub fn disallow(&self, id: &InfoHash) {
        self.loaded.remove(id);
    }

    /// Starts, restarts or stops the tracker (or retries one that failed to start); true when
    /// something changed.
    pub async fn apply(&mut self, settings: Option<TrackerSettings>, bind: IpAddr) -> bool {
        if settings == self.settings && self.error.is_none() {
            return false;
        }
        self.settings = settings;
        if let Some(old) = self.running.take() {
            old.stop().await;
        }
        self.error = None;
        if let Some(s) = settings {
            let access = if s.open {
                Access::Open
            } else {
                Access::Listed(self.loaded.clone())
            };
            match RunningTracker::start(TrackerConfig::new(bind, s.port, access)).await {
                Ok(tracker) => self.running = Some(tracker),
                Err(e) => {
                    tracing::warn!(error = %e, "tracker not started");
                    self.error = Some(e.to_string());
                }
            }
        }
        true
    }

    pub fn state(&self) -> TrackerHostState {
        match (&self.running, &self.error) {
            (Some(t), _) => {
                let (torrents, peers) = t.swarms().size();
                TrackerHostState::Running {
                    port: t.addr().port(),
                    torrents,
                    peers,
                }
            }
            (None, Some(e)) => TrackerHostState::Failed(e.clone()),
            (None, None) => TrackerHostState::Off,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Changing a setting restarts the tracker on the same port: the old sockets are closed
    /// before the new ones bind.
    #[tokio::test]
    async fn restarts_on_the_same_port() {
        // Below the ephemeral range (32768 and up), so that no socket another test binds to
        // port 0 can take the port while the tracker restarts.
        let free = |port: u16| {
            std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
                && std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok()
        };
        let port = std::iter::repeat_with(|| rand::random_range(20_000..30_000))
            .take(100)
            .find(|p| free(*p))
            .expect("a free port below the ephemeral range");
        let ip = IpAddr::from([127, 0, 0, 1]);
        let mut host = TrackerHost::default();
        assert!(
            host.apply(Some(TrackerSettings { port, open: false }), ip)
                .await
        );
        assert!(matches!(host.state(), TrackerHostState::Running { port: p, .. } if p == port));
        assert!(
            host.apply(Some(TrackerSettings { port, open: true }), ip)
                .await
        );
        assert!(
            matches!(host.state(), TrackerHostState::Running { port: p, .. } if p == port),
            "{:?}",
            host.state()
        );
        assert!(host.apply(None, ip).await);
        assert_eq!(host.state(), TrackerHostState::Off);
    }
}
