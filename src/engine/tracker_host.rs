//! Rivulet's tracker inside the engine: started, moved or stopped as the settings say, serving
//! the torrents the session has loaded (or any, when open).

use std::net::IpAddr;

use crate::ids::InfoHash;
use crate::tracker_server::{Access, AllowList, RunningTracker, TrackerConfig};

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

    /// Starts, restarts or stops the tracker; true when something changed.
    pub async fn apply(&mut self, settings: Option<TrackerSettings>, bind: IpAddr) -> bool {
        if settings == self.settings {
            return false;
        }
        self.settings = settings;
        self.running = None;
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
