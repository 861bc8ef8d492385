//! [`Session`]: the engine's front door. It runs on a tokio runtime in its own thread, owns the
//! listen socket and every torrent actor, takes [`Command`]s, and publishes a
//! [`SessionSnapshot`] (at most ten times a second) and [`Event`]s, calling the front end's
//! wake-up callback whenever there is something new.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio::sync::{Semaphore, oneshot, watch};

use super::command::EngineSettings;
use super::command::{AddSource, AddTorrent, Command};
use super::config::{LiveSettings, SessionConfig};
use super::creator::{Created, Creations};
use super::limiter::RateLimiter;
use super::outcome::{AddError, TorrentError};
use super::peer;
use super::resume;
use super::snapshot::{Event, SessionSnapshot};
use super::torrent::{self, TorrentCommand, TorrentEvent, TorrentHandle, TorrentParams};
use super::tracker::host::TrackerHost;
use crate::ids::{InfoHash, PeerId};
use crate::metainfo::{Metainfo, TorrentFileError, read_torrent_file};
use crate::storage::disk::Disk;
use crate::sync::MutexExt;
use crate::tracker::TrackerClient;

const SNAPSHOT_EVERY: Duration = Duration::from_millis(100);
/// Handshakes that may be pending on inbound connections at once.
const MAX_PENDING_HANDSHAKES: usize = 64;
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(4);
/// Bytes of finished pieces that may wait for hashing and writing, session-wide.
const DISK_WRITE_BUDGET: u64 = 16 * 1024 * 1024;
const DISK_READS: usize = 16;
const FREE_SPACE_EVERY: Duration = Duration::from_secs(5);
/// How long a re-add waits for the removal of the same torrent to finish.
const REMOVE_WAIT: Duration = Duration::from_secs(10);

/// Called by the engine when a new snapshot or event is ready (a GUI requests a repaint).
pub type Waker = Arc<dyn Fn() + Send + Sync>;

/// The session could not start.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("cannot create the state folder {0}: {1}")]
    StateDir(PathBuf, std::io::Error),
    #[error("cannot listen on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
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
        let listener = runtime.block_on(bind(&config))?;
        let listen_port = listener
            .local_addr()
            .map(|a| a.port())
            .unwrap_or(config.listen_port);
        let trackers = TrackerClient::new().map_err(|e| SessionError::Runtime(e.to_string()))?;
        let (commands_tx, commands) = mpsc::unbounded_channel();
        let (events_tx, events) = mpsc::unbounded_channel();
        let (snapshot_tx, snapshots) = watch::channel(Arc::new(SessionSnapshot {
            listen_port,
            ..Default::default()
        }));
        let (torrent_events_tx, torrent_events) = mpsc::unbounded_channel();
        let (inbound_tx, inbound) = mpsc::unbounded_channel();
        let (created_tx, created) = mpsc::unbounded_channel();
        let config_for_live = config.clone();
        let actor = SessionActor {
            down_limit: Arc::new(RateLimiter::new(config.download_limit)),
            up_limit: Arc::new(RateLimiter::new(config.upload_limit)),
            config,
            torrents: HashMap::new(),
            order: Vec::new(),
            events: events_tx,
            torrent_events_tx,
            inbound_tx,
            dirty: Arc::new(AtomicBool::new(true)),
            snapshot_tx,
            waker,
            our_id: PeerId::generate(),
            trackers,
            disk: Disk::new(DISK_WRITE_BUDGET, DISK_READS),
            next_key: Arc::new(AtomicU64::new(1)),
            listen_port,
            live: Arc::new(LiveSettings::new(listen_port, &config_for_live)),
            download_dir: None,
            free_space: None,
            tracker_host: TrackerHost::default(),
            creations: Creations::default(),
            created_tx,
            removing: HashMap::new(),
        };
        let thread = std::thread::Builder::new()
            .name("rivulet-session".into())
            .spawn(move || {
                runtime.block_on(actor.run(commands, torrent_events, inbound, created, listener));
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

/// Binds the preferred port, or the next free one of the ten after it.
async fn bind(config: &SessionConfig) -> Result<TcpListener, SessionError> {
    let first = SocketAddr::new(config.listen_ip, config.listen_port);
    let mut last_error = None;
    let tries = if config.listen_port == 0 { 1 } else { 10 };
    for offset in 0..tries {
        let addr = SocketAddr::new(config.listen_ip, config.listen_port.saturating_add(offset));
        match TcpListener::bind(addr).await {
            Ok(listener) => return Ok(listener),
            Err(e) => last_error = Some(e),
        }
    }
    Err(SessionError::Listen(
        first,
        last_error.unwrap_or_else(|| std::io::Error::other("no port")),
    ))
}

struct SessionActor {
    config: SessionConfig,
    torrents: HashMap<InfoHash, TorrentHandle>,
    /// Torrents in the order they were added.
    order: Vec<InfoHash>,
    events: UnboundedSender<Event>,
    torrent_events_tx: UnboundedSender<Event>,
    inbound_tx: UnboundedSender<(TcpStream, SocketAddr, crate::wire::Handshake)>,
    dirty: Arc<AtomicBool>,
    snapshot_tx: watch::Sender<Arc<SessionSnapshot>>,
    waker: Option<Waker>,
    our_id: PeerId,
    trackers: TrackerClient,
    disk: Disk,
    down_limit: Arc<RateLimiter>,
    up_limit: Arc<RateLimiter>,
    next_key: Arc<AtomicU64>,
    listen_port: u16,
    live: Arc<LiveSettings>,
    /// The folder whose free space is reported, and the last reading.
    download_dir: Option<PathBuf>,
    free_space: Option<u64>,
    tracker_host: TrackerHost,
    creations: Creations,
    created_tx: UnboundedSender<Created>,
    /// Torrents being removed: a re-add waits until the old actor has deleted its files.
    removing: HashMap<InfoHash, oneshot::Receiver<()>>,
}

impl SessionActor {
    async fn run(
        mut self,
        mut commands: UnboundedReceiver<Command>,
        mut torrent_events: UnboundedReceiver<Event>,
        mut inbound: UnboundedReceiver<(TcpStream, SocketAddr, crate::wire::Handshake)>,
        mut created: UnboundedReceiver<Created>,
        mut listener: TcpListener,
    ) {
        tracing::info!(port = self.listen_port, "listening for peers");
        let mut free_space_tick = tokio::time::interval(FREE_SPACE_EVERY);
        let (tracker, ip) = (self.config.tracker, self.config.listen_ip);
        self.tracker_host.apply(tracker, ip).await;
        if self.config.restore_saved {
            self.restore().await;
        }
        let handshakes = Arc::new(Semaphore::new(MAX_PENDING_HANDSHAKES));
        let mut tick = tokio::time::interval(SNAPSHOT_EVERY);
        loop {
            tokio::select! {
                command = commands.recv() => match command {
                    Some(Command::Shutdown) | None => break,
                    Some(Command::ApplySettings(settings)) => {
                        if let Some(rebound) = self.apply(settings).await {
                            listener = rebound;
                        }
                    }
                    Some(command) => self.handle(command).await,
                },
                Some(event) = torrent_events.recv() => self.emit(event),
                Some(done) = created.recv() => self.on_created(done).await,
                accepted = listener.accept() => match accepted {
                    Ok((stream, addr)) => self.accept(stream, addr, handshakes.clone()),
                    // Out of file descriptors and the like: do not spin on a listener that stays ready.
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                Some((stream, addr, handshake)) = inbound.recv() => {
                    if let Some(t) = self.torrents.get(&handshake.info_hash) {
                        let _ = t.events.send(TorrentEvent::Handshaken { stream, addr, handshake, inbound: true });
                    }
                }
                _ = tick.tick() => self.publish(),
                _ = free_space_tick.tick() => self.measure_free_space().await,
            }
        }
        self.shutdown().await;
    }

    fn accept(&self, mut stream: TcpStream, addr: SocketAddr, handshakes: Arc<Semaphore>) {
        let Ok(permit) = handshakes.try_acquire_owned() else {
            return;
        };
        let inbound = self.inbound_tx.clone();
        tokio::spawn(async move {
            if let Ok(handshake) = peer::read_handshake(&mut stream).await {
                let _ = inbound.send((stream, addr, handshake));
            }
            drop(permit);
        });
    }

    fn emit(&self, event: Event) {
        let _ = self.events.send(event);
        self.wake();
    }

    fn wake(&self) {
        if let Some(w) = &self.waker {
            w();
        }
    }

    fn publish(&mut self) {
        let tracker = self.tracker_host.state();
        let creating = self.creations.snapshots();
        let unchanged = {
            let last = self.snapshot_tx.borrow();
            last.tracker == tracker && last.creating == creating
        };
        if !self.dirty.swap(false, Ordering::Relaxed) && unchanged {
            return;
        }
        let torrents: Vec<_> = self
            .order
            .iter()
            .filter_map(|id| self.torrents.get(id))
            .map(|t| t.snapshot.locked().clone())
            .collect();
        let snapshot = SessionSnapshot {
            down_rate: torrents.iter().map(|t| t.down_rate).sum(),
            up_rate: torrents.iter().map(|t| t.up_rate).sum(),
            torrents,
            listen_port: self.listen_port,
            free_space: self.free_space,
            tracker,
            creating,
        };
        self.snapshot_tx.send_replace(Arc::new(snapshot));
        self.wake();
    }

    async fn handle(&mut self, command: Command) {
        match command {
            Command::Add(add) => self.add(add, None).await,
            Command::Pause(id) => self.tell(id, TorrentCommand::Pause),
            Command::Resume(id) => self.tell(id, TorrentCommand::Resume),
            Command::SetSeeding(id, on) => self.tell(id, TorrentCommand::SetSeeding(on)),
            Command::AddTracker(id, url) => match super::validate_tracker_url(&url) {
                Ok(()) => self.tell(id, TorrentCommand::AddTracker(url)),
                Err(e) => tracing::warn!(%url, error = %e, "tracker not added"),
            },
            Command::RemoveTracker(id, url) => self.tell(id, TorrentCommand::RemoveTracker(url)),
            Command::Remove { id, delete_data } => {
                if let Some(t) = self.torrents.remove(&id) {
                    self.order.retain(|o| *o != id);
                    self.tracker_host.disallow(&id);
                    let (done, removed) = oneshot::channel();
                    let _ = t
                        .commands
                        .send(TorrentCommand::Remove { delete_data, done });
                    self.removing.retain(|_, r| {
                        matches!(r.try_recv(), Err(oneshot::error::TryRecvError::Empty))
                    });
                    self.removing.insert(id, removed);
                    self.dirty.store(true, Ordering::Relaxed);
                    self.emit(Event::Removed { id });
                }
            }
            Command::CreateTorrent(request) => {
                self.creations.start(request, self.created_tx.clone());
            }
            Command::CancelCreate(job) => self.creations.cancel(job),
            Command::ApplySettings(_) | Command::Shutdown => {}
        }
    }

    /// A creation ended: report it, and seed the new torrent if asked.
    async fn on_created(&mut self, done: Created) {
        let Created { request, result } = done;
        self.creations.finish(request.job);
        self.dirty.store(true, Ordering::Relaxed);
        match result {
            Ok((bytes, save_dir)) => {
                self.emit(Event::Created {
                    job: request.job,
                    path: request.output.clone(),
                });
                // The data is where it was found: the torrent's folder is the source's parent.
                if request.seed {
                    let add = AddTorrent {
                        source: AddSource::Bytes(bytes),
                        save_dir,
                        paused: false,
                        seed: true,
                    };
                    self.add(add, None).await;
                }
            }
            Err(error) => self.emit(Event::CreateFailed {
                job: request.job,
                error,
            }),
        }
    }

    /// Applies settings; returns the new listener when the listen port changed.
    async fn apply(&mut self, settings: EngineSettings) -> Option<TcpListener> {
        self.config.apply_settings(&settings);
        let config = &self.config;
        self.down_limit.set_rate(config.download_limit);
        self.up_limit.set_rate(config.upload_limit);
        self.live
            .max_peers
            .store(config.max_peers_per_torrent, Ordering::Relaxed);
        self.live
            .upload_slots
            .store(config.upload_slots, Ordering::Relaxed);
        if self
            .tracker_host
            .apply(config.tracker, config.listen_ip)
            .await
        {
            self.dirty.store(true, Ordering::Relaxed);
        }
        if settings.download_dir != self.download_dir {
            self.download_dir = settings.download_dir;
            self.measure_free_space().await;
        }
        if settings.listen_port == self.listen_port {
            return None;
        }
        match bind(&self.config).await {
            Ok(listener) => {
                self.listen_port = listener
                    .local_addr()
                    .map_or(settings.listen_port, |a| a.port());
                self.live
                    .listen_port
                    .store(self.listen_port, Ordering::Relaxed);
                self.dirty.store(true, Ordering::Relaxed);
                tracing::info!(port = self.listen_port, "listening for peers");
                Some(listener)
            }
            Err(e) => {
                tracing::warn!(error = %e, "keeping the old listen port");
                None
            }
        }
    }

    async fn measure_free_space(&mut self) {
        let Some(dir) = self.download_dir.clone() else {
            return;
        };
        let free = tokio::task::spawn_blocking(move || free_space(&dir))
            .await
            .ok()
            .flatten();
        if free != self.free_space {
            self.free_space = free;
            self.dirty.store(true, Ordering::Relaxed);
        }
    }

    fn tell(&self, id: InfoHash, command: TorrentCommand) {
        if let Some(t) = self.torrents.get(&id) {
            let _ = t.commands.send(command);
        }
    }

    /// Adds a torrent. `restored` carries the resume data of a torrent reloaded at start.
    async fn add(&mut self, add: AddTorrent, restored: Option<resume::ResumeData>) {
        let source_name = match &add.source {
            AddSource::Path(p) => p.display().to_string(),
            AddSource::Bytes(_) => "torrent data".to_string(),
        };
        let (bytes, meta) = match load(add.source).await {
            Ok((bytes, meta)) => (bytes, Arc::new(meta)),
            Err(error) => {
                return self.emit(Event::AddFailed {
                    source: source_name,
                    error,
                });
            }
        };
        let id = meta.info_hash;
        if self.torrents.contains_key(&id) {
            return self.emit(Event::Duplicate {
                id,
                name: meta.name.clone(),
            });
        }
        if let Some(removed) = self.removing.remove(&id) {
            // Its old actor is still stopping: let it delete the old files before ours are saved.
            let _ = tokio::time::timeout(REMOVE_WAIT, removed).await;
        }
        let state_dir = self.config.state_dir.clone();
        let resume = match restored {
            Some(r) => Some(r),
            None => {
                let (dir, save) = (state_dir.clone(), bytes.clone());
                let loaded = tokio::task::spawn_blocking(move || {
                    if let Err(e) = resume::save_torrent(&dir, id, &save) {
                        tracing::warn!(error = %e, "could not save the torrent file");
                    }
                    resume::load(&dir, id)
                })
                .await
                .unwrap_or(Ok(None));
                match loaded {
                    Ok(r) => r.filter(|r| r.save_dir == add.save_dir),
                    Err(e) => {
                        tracing::warn!(error = %e, "ignoring damaged resume data; the data will be rechecked");
                        None
                    }
                }
            }
        };
        let added_at = resume.as_ref().map_or_else(now_unix, |r| r.added_at);
        let handle = torrent::spawn(TorrentParams {
            meta: meta.clone(),
            save_dir: add.save_dir,
            paused: add.paused,
            seeding: add.seed,
            resume,
            added_at,
            state_dir,
            our_id: self.our_id,
            trackers: self.trackers.clone(),
            live: self.live.clone(),
            piece_buffer_budget: self.config.piece_buffer_budget,
            disk: self.disk.clone(),
            down_limit: self.down_limit.clone(),
            up_limit: self.up_limit.clone(),
            next_key: self.next_key.clone(),
            session_events: self.torrent_events_tx.clone(),
            dirty: self.dirty.clone(),
        });
        self.torrents.insert(id, handle);
        self.order.push(id);
        self.tracker_host.allow(id);
        self.dirty.store(true, Ordering::Relaxed);
        self.emit(Event::Added {
            id,
            name: meta.name.clone(),
        });
    }

    /// Reloads every torrent saved in the state folder, as it was.
    async fn restore(&mut self) {
        let dir = self.config.state_dir.clone();
        let saved = tokio::task::spawn_blocking(move || {
            resume::saved_torrents(&dir)
                .into_iter()
                .map(|id| (id, resume::load(&dir, id)))
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        for (id, loaded) in saved {
            let path = resume::torrent_path(&self.config.state_dir, id);
            match loaded {
                Ok(Some(r)) => {
                    let add = AddTorrent {
                        source: AddSource::Path(path),
                        save_dir: r.save_dir.clone(),
                        paused: r.paused,
                        seed: r.seeding,
                    };
                    self.add(add, Some(r)).await;
                }
                Ok(None) | Err(_) => {
                    tracing::warn!(%id, "no usable resume data; the torrent is not restored");
                    self.emit(Event::Error {
                        id,
                        error: TorrentError::ResumeDamaged,
                    });
                }
            }
        }
    }

    async fn shutdown(&mut self) {
        let mut waits = Vec::new();
        for t in self.torrents.values() {
            let (done, wait) = oneshot::channel();
            if t.commands.send(TorrentCommand::Shutdown(done)).is_ok() {
                waits.push(wait);
            }
        }
        let _ = tokio::time::timeout(SHUTDOWN_TIMEOUT, async {
            for w in waits {
                let _ = w.await;
            }
        })
        .await;
        self.dirty.store(true, Ordering::Relaxed);
        self.publish();
    }
}

/// Reads and parses a torrent on the blocking pool (parsing hashes the `info` bytes).
async fn load(source: AddSource) -> Result<(Vec<u8>, Metainfo), AddError> {
    tokio::task::spawn_blocking(move || match source {
        AddSource::Bytes(bytes) => {
            let meta = Metainfo::from_bytes(&bytes).map_err(TorrentFileError::from)?;
            Ok((bytes, meta))
        }
        AddSource::Path(path) => Ok(read_torrent_file(&path)?),
    })
    .await
    .map_err(|_| AddError::Interrupted)?
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Bytes free for an unprivileged user on the file system holding `dir`.
#[cfg(unix)]
fn free_space(dir: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    // The folder may not exist yet: measure the nearest folder that does.
    let dir = dir.ancestors().find(|d| d.exists())?;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is a valid NUL-terminated string and `stat` a writable statvfs.
    let rc = unsafe { libc::statvfs(path.as_ptr(), &mut stat) };
    (rc == 0).then(|| stat.f_bavail as u64 * stat.f_frsize as u64)
}

#[cfg(not(unix))]
fn free_space(_dir: &std::path::Path) -> Option<u64> {
    None
}
