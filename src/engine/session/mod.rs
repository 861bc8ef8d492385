//! [`Session`]: the engine's front door. It runs on a tokio runtime in its own thread, owns the
//! listen socket and every torrent actor, takes [`Command`]s, and publishes a
//! [`SessionSnapshot`] (at most ten times a second) and [`Event`]s, calling the front end's
//! wake-up callback whenever there is something new.

mod actor;
mod inbound;
mod network;
mod queue;
mod removals;

pub use queue::QueueSettings;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::Duration;

use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio::sync::watch;

use super::command::Command;
use super::config::{LiveSettings, SessionConfig};
use super::creator::Creations;
use super::limiter::RateLimiter;
use super::snapshot::{Event, SessionSnapshot};
use super::tracker::host::TrackerHost;
use crate::ids::PeerId;
use crate::net::{Listeners, Reach};
use crate::storage::FilePool;
use crate::storage::disk::Disk;
use crate::tracker::TrackerClient;
use actor::{SessionActor, SessionInbox};
use removals::Removals;

const DISK_READS: usize = 16;

/// Called by the engine when a new snapshot or event is ready (a GUI requests a repaint).
pub type Waker = Arc<dyn Fn() + Send + Sync>;

/// The session could not start.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("cannot create the state folder {0}: {1}")]
    StateDir(PathBuf, std::io::Error),
    #[error("cannot listen on port {0}: {1}")]
    Listen(u16, std::io::Error),
    #[error("cannot start the engine: {0}")]
    Runtime(String),
}

/// The front end's side of a running session.
pub struct SessionHandle {
    commands: UnboundedSender<Command>,
    snapshots: watch::Receiver<Arc<SessionSnapshot>>,
    events: UnboundedReceiver<Event>,
    thread: Option<std::thread::JoinHandle<()>>,
    listen_port: u16,
}

impl SessionHandle {
    /// Sends a command; never blocks.
    pub fn send(&self, command: Command) {
        let _ = self.commands.send(command);
    }

    /// The latest snapshot; never blocks.
    pub fn snapshot(&self) -> Arc<SessionSnapshot> {
        self.snapshots.borrow().clone()
    }

    /// A receiver that can await the next snapshot.
    pub fn watch(&self) -> watch::Receiver<Arc<SessionSnapshot>> {
        self.snapshots.clone()
    }

    /// The next event if one is waiting; never blocks.
    pub fn try_event(&mut self) -> Option<Event> {
        self.events.try_recv().ok()
    }

    /// Waits for the next event (for async callers such as the CLI).
    pub async fn next_event(&mut self) -> Option<Event> {
        self.events.recv().await
    }

    pub fn listen_port(&self) -> u16 {
        self.listen_port
    }

    /// Stops every torrent (trackers get `stopped`, resume data is saved) and waits for the
    /// engine thread to end.
    pub fn shutdown(mut self) {
        self.send(Command::Shutdown);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for SessionHandle {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = self.commands.send(Command::Shutdown);
            let _ = thread.join();
        }
    }
}

pub struct Session;

impl Session {
    /// Starts the engine on its own thread.
    pub fn start(
        config: SessionConfig,
        waker: Option<Waker>,
    ) -> Result<SessionHandle, SessionError> {
        // Thousands of files and sockets need more than the usual 1,024 descriptors.
        let limit = crate::storage::raise_open_file_limit();
        tracing::debug!(?limit, "open-file limit");
        std::fs::create_dir_all(&config.state_dir)
            .map_err(|e| SessionError::StateDir(config.state_dir.clone(), e))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(
                std::thread::available_parallelism()
                    .map_or(2, |n| n.get())
                    .min(4),
            )
            .thread_name("rivulet-engine")
            .enable_all()
            .build()
            .map_err(|e| SessionError::Runtime(e.to_string()))?;
        let reach = config.bind.resolve_or_down();
        let listeners = {
            let _inside = runtime.enter();
            listen(&reach, config.listen_port)?
        };
        let listen_port = listeners
            .as_ref()
            .map_or(config.listen_port, Listeners::port);
        let trackers = TrackerClient::new().map_err(|e| SessionError::Runtime(e.to_string()))?;
        trackers.set_reach(&reach);
        let (commands_tx, commands) = mpsc::unbounded_channel();
        let (events_tx, events) = mpsc::unbounded_channel();
        let (snapshot_tx, snapshots) = watch::channel(Arc::new(SessionSnapshot {
            listen_port,
            ..Default::default()
        }));
        let (torrent_events_tx, torrent_events) = mpsc::unbounded_channel();
        let (inbound_tx, inbound) = mpsc::unbounded_channel();
        let (created_tx, created) = mpsc::unbounded_channel();
        let (removals_ended_tx, removals_ended) = mpsc::unbounded_channel();
        let (fetched_tx, fetched) = mpsc::unbounded_channel();
        let config_for_live = config.clone();
        let live = Arc::new(LiveSettings::new(listen_port, reach, &config_for_live));
        live.set_utp(listeners.as_ref().map(|l| l.utp().clone()));
        let actor = SessionActor {
            down_limit: Arc::new(RateLimiter::new(config.download_limit)),
            up_limit: Arc::new(RateLimiter::new(config.upload_limit)),
            config,
            torrents: HashMap::new(),
            keys: Default::default(),
            order: Vec::new(),
            events: events_tx,
            torrent_events_tx,
            inbound_tx,
            dirty: Arc::new(AtomicBool::new(true)),
            snapshot_tx,
            waker,
            our_id: PeerId::generate(),
            trackers,
            disk: Disk::new(config_for_live.disk_write_budget, DISK_READS),
            files: Arc::new(FilePool::new(config_for_live.max_open_files)),
            next_key: Arc::new(AtomicU64::new(1)),
            listen_port,
            live,
            download_dir: config_for_live.download_dir.clone(),
            free_space: None,
            tracker_host: TrackerHost::default(),
            creations: Creations::default(),
            created_tx,
            removals: Removals::new(removals_ended_tx),
            magnets: HashSet::new(),
            fetched_tx,
            fetch_stops: HashMap::new(),
            dht_routers: Vec::new(),
            dht_socket: None,
            port_mapper: None,
            queue: queue::Queue::default(),
        };
        let thread = std::thread::Builder::new()
            .name("rivulet-session".into())
            .spawn(move || {
                let inbox = SessionInbox {
                    commands,
                    torrent_events,
                    inbound,
                    created,
                    removals_ended,
                    fetched,
                };
                runtime.block_on(actor.run(inbox, listeners));
                runtime.shutdown_timeout(Duration::from_secs(1));
            })
            .map_err(|e| SessionError::Runtime(e.to_string()))?;
        Ok(SessionHandle {
            commands: commands_tx,
            snapshots,
            events,
            thread: Some(thread),
            listen_port,
        })
    }
}

/// Listens where `reach` says on the preferred port, or the next free one of the ten after
/// it; nowhere while the binding is down.
pub(super) fn listen(reach: &Reach, port: u16) -> Result<Option<Listeners>, SessionError> {
    if reach.down().is_some() {
        return Ok(None);
    }
    Listeners::bind(&reach.listen_ips(), port)
        .map(Some)
        .map_err(|e| SessionError::Listen(port, e))
}
