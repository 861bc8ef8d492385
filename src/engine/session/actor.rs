//! [`SessionActor`]: the session's task on the engine's runtime. It accepts inbound peers and
//! routes them by info hash, carries out [`Command`]s, adds and restores torrents, applies
//! settings, and gathers the torrents' snapshots into the published [`SessionSnapshot`].

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio::sync::{oneshot, watch};

use super::Waker;
use super::inbound::{Handshaken, Handshakes};
use super::removals::Removals;
use crate::engine::command::EngineSettings;
use crate::engine::command::{AddMagnet, AddSource, AddTorrent, Command, QueueMove};
use crate::engine::config::{LiveSettings, SessionConfig};
use crate::engine::creator::{Created, Creations};
use crate::engine::goals::GoalAction;
use crate::engine::limiter::RateLimiter;
use crate::engine::magnet::{self, Fetched, MagnetParams};
use crate::engine::outcome::{AddError, TorrentError};
use crate::engine::peer::TorrentKeys;
use crate::engine::resume;
use crate::engine::snapshot::{Event, SessionSnapshot, TorrentSnapshot, TorrentState};
use crate::engine::torrent::{self, TorrentCommand, TorrentEvent, TorrentHandle, TorrentParams};
use crate::engine::tracker::host::TrackerHost;
use crate::engine::wanted::DownloadPlan;
use crate::ids::{InfoHash, PeerId};
use crate::magnet::MagnetLink;
use crate::metainfo::{Metainfo, TorrentFileError, read_torrent_file};
use crate::net::Listeners;
use crate::storage::FilePool;
use crate::storage::disk::Disk;
use crate::sync::MutexExt;
use crate::tracker::TrackerClient;

const SNAPSHOT_EVERY: Duration = Duration::from_millis(100);
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(4);
const FREE_SPACE_EVERY: Duration = Duration::from_secs(5);
/// How often the queue looks at which torrents may run.
const QUEUE_EVERY: Duration = Duration::from_secs(1);

pub(super) struct SessionActor {
    pub(super) config: SessionConfig,
    pub(super) torrents: HashMap<InfoHash, TorrentHandle>,
    /// Torrents in queue order (the order they were added, as the user moved them); saved as
    /// the state folder's `queue` file.
    pub(super) order: Vec<InfoHash>,
    pub(super) events: UnboundedSender<Event>,
    pub(super) torrent_events_tx: UnboundedSender<Event>,
    pub(super) inbound_tx: UnboundedSender<Handshaken>,
    pub(super) dirty: Arc<AtomicBool>,
    pub(super) snapshot_tx: watch::Sender<Arc<SessionSnapshot>>,
    pub(super) waker: Option<Waker>,
    pub(super) our_id: PeerId,
    pub(super) trackers: TrackerClient,
    pub(super) disk: Disk,
    pub(super) files: Arc<FilePool>,
    pub(super) down_limit: Arc<RateLimiter>,
    pub(super) up_limit: Arc<RateLimiter>,
    pub(super) next_key: Arc<AtomicU64>,
    pub(super) listen_port: u16,
    pub(super) live: Arc<LiveSettings>,
    /// The folder whose free space is reported, and the last reading.
    pub(super) download_dir: Option<PathBuf>,
    pub(super) free_space: Option<u64>,
    pub(super) tracker_host: TrackerHost,
    pub(super) creations: Creations,
    pub(super) created_tx: UnboundedSender<Created>,
    /// Torrents being removed: a re-add is parked until the old actor has ended.
    pub(super) removals: Removals,
    /// The entries of `torrents` that are magnet links still without a running torrent.
    pub(super) magnets: HashSet<InfoHash>,
    pub(super) fetched_tx: UnboundedSender<Fetched>,
    /// The `stopped` announces of fetches whose torrent waits for the front end's confirm.
    pub(super) fetch_stops: HashMap<InfoHash, oneshot::Receiver<()>>,
    /// The routers the running DHT node was started with.
    pub(super) dht_routers: Vec<String>,
    /// The uTP socket the DHT node shares (its id), while one runs.
    pub(super) dht_socket: Option<u64>,
    /// What encrypted handshakes are matched against: every torrent and magnet link here.
    pub(super) keys: TorrentKeys,
    /// The listen port's mapping at the router, while port mapping is on.
    pub(super) port_mapper: Option<super::network::MappedPort>,
    pub(super) queue: super::queue::Queue,
}

/// What reaches the session loop: commands from the front end, and reports from its tasks.
pub(super) struct SessionInbox {
    pub commands: UnboundedReceiver<Command>,
    pub torrent_events: UnboundedReceiver<Event>,
    pub inbound: UnboundedReceiver<Handshaken>,
    pub created: UnboundedReceiver<Created>,
    pub removals_ended: UnboundedReceiver<InfoHash>,
    pub fetched: UnboundedReceiver<Fetched>,
}

/// What a torrent that takes over from a magnet link's fetch starts with.
#[derive(Default)]
struct Handover {
    peers: Vec<SocketAddr>,
    after_stop: Option<oneshot::Receiver<()>>,
    added_at: Option<u64>,
    /// The magnet link's BEP 53 `so`: the files to download (a new torrent only).
    select_only: Option<Vec<std::ops::RangeInclusive<u32>>>,
}

impl SessionActor {
    pub(super) async fn run(mut self, inbox: SessionInbox, mut listeners: Option<Listeners>) {
        let SessionInbox {
            mut commands,
            mut torrent_events,
            mut inbound,
            mut created,
            mut removals_ended,
            mut fetched,
        } = inbox;
        self.log_listening(listeners.as_ref());
        let mut free_space_tick = tokio::time::interval(FREE_SPACE_EVERY);
        let mut network_tick = tokio::time::interval(super::network::CHECK_EVERY);
        let (tracker, ip) = (self.config.tracker, self.config.bind.server_ip());
        self.tracker_host.apply(tracker, ip).await;
        self.apply_dht().await;
        self.apply_lsd();
        self.apply_port_mapping().await;
        if self.config.restore_saved {
            self.restore().await;
        }
        let handshakes = Handshakes::default();
        let mut tick = tokio::time::interval(SNAPSHOT_EVERY);
        let mut queue_tick = tokio::time::interval(QUEUE_EVERY);
        loop {
            tokio::select! {
                command = commands.recv() => match command {
                    Some(Command::Shutdown) | None => break,
                    Some(Command::ApplySettings(settings)) => {
                        self.apply(settings, &mut listeners).await;
                        self.run_queue().await;
                    }
                    Some(command) => self.handle(command).await,
                },
                Some(event) = torrent_events.recv() => self.emit(event),
                Some(done) = created.recv() => self.on_created(done).await,
                Some(id) = removals_ended.recv() => {
                    if let Some(parked) = self.removals.ended(id) {
                        self.handle(parked).await;
                    }
                }
                Some(done) = fetched.recv() => self.on_fetched(done).await,
                accepted = super::network::accept(listeners.as_ref()) => match accepted {
                    Ok((stream, addr)) => {
                        let policy = self.live.encryption();
                        handshakes.accept(stream, addr, &self.keys, policy, self.inbound_tx.clone());
                    }
                    // Out of file descriptors and the like: do not spin on a listener that stays ready.
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                Some((stream, addr, handshake)) = inbound.recv() => {
                    if let Some(t) = self.torrents.get(&handshake.info_hash) {
                        self.live.inbound.arrived();
                        let _ = t.events.send(TorrentEvent::Handshaken { stream, addr, handshake, inbound: true });
                    }
                }
                _ = tick.tick() => self.publish(),
                _ = queue_tick.tick() => self.run_queue().await,
                _ = free_space_tick.tick() => self.measure_free_space().await,
                _ = network_tick.tick() => self.check_network(&mut listeners).await,
            }
        }
        self.shutdown().await;
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

    /// Queues or starts torrents as the queue's slots say, and stops those that reached
    /// their seeding goal.
    async fn run_queue(&mut self) {
        let snapshots: Vec<Arc<TorrentSnapshot>> = self
            .order
            .iter()
            .filter(|id| !self.magnets.contains(id))
            .filter_map(|id| self.torrents.get(id))
            .map(|t| t.snapshot.locked().clone())
            .collect();
        let list: Vec<&TorrentSnapshot> = snapshots.iter().map(Arc::as_ref).collect();
        for (id, queued) in self.queue.decide(&self.config.queue, &list, Instant::now()) {
            self.tell(id, TorrentCommand::SetQueued(queued));
        }
        self.check_goals(&list);
    }

    fn remove(&mut self, id: InfoHash, delete_data: bool) {
        if self.removals.unpark(&id) {
            self.emit(Event::Removed { id });
        }
        self.magnets.remove(&id);
        self.fetch_stops.remove(&id);
        if let Some(t) = self.torrents.remove(&id) {
            self.keys.remove(&id);
            self.order.retain(|o| *o != id);
            self.tracker_host.disallow(&id);
            let (done, removed) = oneshot::channel();
            let _ = t
                .commands
                .send(TorrentCommand::Remove { delete_data, done });
            self.removals.started(id, removed);
            self.dirty.store(true, Ordering::Relaxed);
            self.emit(Event::Removed { id });
        }
    }

    /// Pauses or removes the seeding torrents that reached their seeding goal.
    fn check_goals(&mut self, torrents: &[&TorrentSnapshot]) {
        let now = SystemTime::now();
        let global = self.config.seed_goals;
        let reached: Vec<(InfoHash, String, String)> = torrents
            .iter()
            .filter(|t| t.state == TorrentState::Seeding)
            .filter_map(|t| {
                let why = t.goals.reached(&global, t.ratio, t.seeding_time(now))?;
                Some((t.id, t.name.clone(), why))
            })
            .collect();
        for (id, name, why) in reached {
            tracing::info!(torrent = %name, %why, action = ?global.action, "seeding goal reached");
            match global.action {
                GoalAction::Pause => self.tell(id, TorrentCommand::Pause),
                GoalAction::Remove => self.remove(id, false),
            }
        }
    }

    /// Moves torrents in the queue, keeping their order among themselves, and saves it.
    async fn move_in_queue(&mut self, ids: Vec<InfoHash>, to: QueueMove) {
        let moving = |id: &InfoHash| ids.contains(id);
        match to {
            QueueMove::Top | QueueMove::Bottom => {
                let (mut picked, rest): (Vec<_>, Vec<_>) =
                    self.order.iter().copied().partition(|id| moving(id));
                self.order = if to == QueueMove::Top {
                    picked.extend(rest);
                    picked
                } else {
                    let mut rest = rest;
                    rest.extend(picked);
                    rest
                };
            }
            QueueMove::Up => {
                for i in 1..self.order.len() {
                    if moving(&self.order[i]) && !moving(&self.order[i - 1]) {
                        self.order.swap(i, i - 1);
                    }
                }
            }
            QueueMove::Down => {
                for i in (0..self.order.len().saturating_sub(1)).rev() {
                    if moving(&self.order[i]) && !moving(&self.order[i + 1]) {
                        self.order.swap(i, i + 1);
                    }
                }
            }
        }
        self.dirty.store(true, Ordering::Relaxed);
        self.save_queue().await;
        self.run_queue().await;
    }

    async fn save_queue(&self) {
        let (dir, order) = (self.config.state_dir.clone(), self.order.clone());
        let saved = tokio::task::spawn_blocking(move || resume::save_queue(&dir, &order)).await;
        if let Ok(Err(e)) = saved {
            tracing::warn!(error = %e, "could not save the queue order");
        }
    }

    fn publish(&mut self) {
        let tracker = self.tracker_host.state();
        let creating = self.creations.snapshots();
        let dht = self.live.dht().map(|d| d.stats());
        let port_mapping = self.port_mapper.as_ref().map(|m| m.status());
        self.live
            .inbound
            .set_port_mapping(port_mapping.as_ref().map(ToString::to_string));
        let unchanged = {
            let last = self.snapshot_tx.borrow();
            last.tracker == tracker
                && last.creating == creating
                && last.dht == dht
                && last.port_mapping == port_mapping
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
            dht,
            network_down: self.live.reach().down().map(str::to_string),
            port_mapping,
        };
        self.snapshot_tx.send_replace(Arc::new(snapshot));
        self.wake();
    }

    async fn handle(&mut self, command: Command) {
        match command {
            Command::Add(add) => self.add(add, None, Handover::default()).await,
            Command::AddMagnet(add) => self.add_magnet(add).await,
            Command::Pause(id) => self.tell(id, TorrentCommand::Pause),
            Command::Resume(id) => self.tell(id, TorrentCommand::Resume),
            Command::SetSeeding(id, on) => self.tell(id, TorrentCommand::SetSeeding(on)),
            Command::SetFilePriority {
                id,
                files,
                priority,
            } => self.tell(id, TorrentCommand::SetFilePriority(files, priority)),
            Command::SetSequential(id, on) => self.tell(id, TorrentCommand::SetSequential(on)),
            Command::SetFirstLastFirst(id, on) => {
                self.tell(id, TorrentCommand::SetFirstLastFirst(on))
            }
            Command::ForceStart(id, on) => {
                self.tell(id, TorrentCommand::SetForced(on));
                if on {
                    self.tell(id, TorrentCommand::SetQueued(false));
                }
            }
            Command::MoveInQueue(ids, to) => self.move_in_queue(ids, to).await,
            Command::SetSeedGoals(id, goals) => self.tell(id, TorrentCommand::SetGoals(goals)),
            Command::MoveData { id, to } => self.tell(id, TorrentCommand::MoveData(to)),
            Command::SetSpeedLimits { id, down, up } => {
                self.tell(id, TorrentCommand::SetSpeedLimits { down, up })
            }
            Command::AddPeers(id, peers) => self.tell(id, TorrentCommand::AddPeers(peers)),
            Command::AddTracker(id, url) => match crate::engine::validate_tracker_url(&url) {
                Ok(()) => self.tell(id, TorrentCommand::AddTracker(url)),
                Err(e) => tracing::warn!(%url, error = %e, "tracker not added"),
            },
            Command::RemoveTracker(id, url) => self.tell(id, TorrentCommand::RemoveTracker(url)),
            Command::Remove { id, delete_data } => self.remove(id, delete_data),
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
                        plan: DownloadPlan::default(),
                    };
                    self.add(add, None, Handover::default()).await;
                }
            }
            Err(error) => self.emit(Event::CreateFailed {
                job: request.job,
                error,
            }),
        }
    }

    /// Applies settings: a new port or binding moves the listen sockets.
    async fn apply(&mut self, settings: EngineSettings, listeners: &mut Option<Listeners>) {
        let new_port = settings.listen_port != self.config.listen_port;
        let new_binding = settings.bind != self.config.bind;
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
        self.live.set_encryption(config.encryption);
        self.live.set_transport(config.transport);
        self.files.set_capacity(config.max_open_files);
        if self
            .tracker_host
            .apply(config.tracker, config.bind.server_ip())
            .await
        {
            self.dirty.store(true, Ordering::Relaxed);
        }
        if settings.download_dir != self.download_dir {
            self.download_dir = settings.download_dir;
            self.measure_free_space().await;
        }
        if new_port && !new_binding {
            self.move_port(settings.listen_port, listeners);
        }
        if new_binding {
            let reach = self.config.bind.resolve_or_down();
            self.listen_port = settings.listen_port;
            self.network_changed(reach, listeners).await;
        } else {
            self.apply_lsd();
            self.apply_dht().await;
            self.apply_port_mapping().await;
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

    /// Adds a torrent. `restored` carries the resume data of a torrent reloaded at start;
    /// `handover` what a magnet link's fetch found. A torrent whose magnet link is in the
    /// list takes the link's place.
    async fn add(
        &mut self,
        mut add: AddTorrent,
        restored: Option<resume::ResumeData>,
        handover: Handover,
    ) {
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
        let mut handover = handover;
        if let Some(ranges) = handover.select_only.take() {
            add.plan = DownloadPlan::selected(&meta, &ranges);
        }
        if self.magnets.remove(&id) {
            // Its magnet link gives way: the fetch ends (its actor writes nothing more).
            if let Some(link) = self.torrents.remove(&id) {
                let (done, _) = oneshot::channel();
                let _ = link.commands.send(TorrentCommand::Shutdown(done));
            }
            handover.after_stop = handover.after_stop.or(self.fetch_stops.remove(&id));
            let dir = self.config.state_dir.clone();
            let _ = tokio::task::spawn_blocking(move || resume::remove_magnet(&dir, id)).await;
        }
        if self.torrents.contains_key(&id) || self.removals.is_parked(&id) {
            return self.emit(Event::Duplicate {
                id,
                name: meta.name.clone(),
            });
        }
        if self.removals.is_removing(&id) {
            // Its old actor is still stopping: it may delete the old files and forget the
            // old state; the new copy starts once it has ended.
            let parked = Command::Add(AddTorrent {
                source: AddSource::Bytes(bytes),
                ..add
            });
            if self.removals.park(id, parked) {
                tracing::info!(%id, "added again while its removal ends; it starts after");
            }
            return;
        }
        let state_dir = self.config.state_dir.clone();
        let resume = match restored {
            Some(r) => Some(r),
            None => {
                let (dir, save) = (state_dir.clone(), bytes.clone());
                // What a restart needs to find this torrent again, claiming no data yet: a
                // kill before its first save (a long check) does not lose it.
                let first = resume::ResumeData {
                    save_dir: add.save_dir.clone(),
                    paused: add.paused,
                    seeding: add.seed,
                    plan: add.plan.clone(),
                    forced: false,
                    goals: Default::default(),
                    seeding_secs: 0,
                    speed_limits: (0, 0),
                    have: vec![0; meta.piece_count().div_ceil(8) as usize],
                    stamps: Vec::new(),
                    downloaded: 0,
                    uploaded: 0,
                    added_at: handover.added_at.unwrap_or_else(now_unix),
                    trackers: None,
                };
                let loaded = tokio::task::spawn_blocking(move || {
                    if let Err(e) = resume::save_torrent(&dir, id, &save) {
                        tracing::warn!(error = %e, "could not save the torrent file");
                    }
                    let loaded = resume::load(&dir, id);
                    if !matches!(loaded, Ok(Some(_)))
                        && let Err(e) = resume::save(&dir, id, &first)
                    {
                        tracing::warn!(error = %e, "could not save resume data");
                    }
                    loaded
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
        let added_at = resume
            .as_ref()
            .map(|r| r.added_at)
            .or(handover.added_at)
            .unwrap_or_else(now_unix);
        let plan = resume.as_ref().map_or(add.plan, |r| r.plan.clone());
        let forced = resume.as_ref().is_some_and(|r| r.forced);
        let goals = resume.as_ref().map(|r| r.goals).unwrap_or_default();
        let speed_limits = resume.as_ref().map_or((0, 0), |r| r.speed_limits);
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
            files: self.files.clone(),
            disk: self.disk.clone(),
            down_limit: self.down_limit.clone(),
            up_limit: self.up_limit.clone(),
            next_key: self.next_key.clone(),
            session_events: self.torrent_events_tx.clone(),
            dirty: self.dirty.clone(),
            peers: handover.peers,
            after_stop: handover.after_stop,
            plan,
            queued: self.config.queue.enabled && !forced,
            forced,
            goals,
            speed_limits,
        });
        self.torrents.insert(id, handle);
        self.keys.insert(id);
        // A torrent that took its magnet link's place keeps the link's place in the list.
        if !self.order.contains(&id) {
            self.order.push(id);
        }
        self.tracker_host.allow(id);
        self.dirty.store(true, Ordering::Relaxed);
        self.emit(Event::Added {
            id,
            name: meta.name.clone(),
        });
    }

    /// Adds a magnet link: its actor fetches the metadata, then the torrent takes its place.
    async fn add_magnet(&mut self, add: AddMagnet) {
        let link = match MagnetLink::parse(&add.uri) {
            Ok(link) => link,
            Err(e) => {
                return self.emit(Event::AddFailed {
                    source: "the magnet link".into(),
                    error: e.into(),
                });
            }
        };
        let id = link.info_hash;
        let name = link.name.clone().unwrap_or_else(|| id.to_hex());
        if self.torrents.contains_key(&id) || self.removals.is_parked(&id) {
            return self.emit(Event::Duplicate { id, name });
        }
        if self.removals.is_removing(&id) {
            if self.removals.park(id, Command::AddMagnet(add)) {
                tracing::info!(%id, "added again while its removal ends; it starts after");
            }
            return;
        }
        let saved = resume::SavedMagnet {
            uri: add.uri,
            save_dir: add.save_dir,
            paused: add.paused,
            seeding: add.seed,
            confirm: add.confirm,
            added_at: now_unix(),
            trackers: None,
        };
        let (dir, keep) = (self.config.state_dir.clone(), saved.clone());
        let _ = tokio::task::spawn_blocking(move || {
            if let Err(e) = resume::save_magnet(&dir, id, &keep) {
                tracing::warn!(error = %e, "could not save the magnet link");
            }
        })
        .await;
        self.start_magnet(link, saved, None);
        self.emit(Event::Added { id, name });
    }

    fn start_magnet(
        &mut self,
        link: MagnetLink,
        saved: resume::SavedMagnet,
        fetched: Option<Vec<u8>>,
    ) {
        let id = link.info_hash;
        let handle = magnet::spawn(MagnetParams {
            link,
            saved,
            fetched,
            state_dir: self.config.state_dir.clone(),
            our_id: self.our_id,
            trackers: self.trackers.clone(),
            live: self.live.clone(),
            next_key: self.next_key.clone(),
            fetched_tx: self.fetched_tx.clone(),
            dirty: self.dirty.clone(),
        });
        self.torrents.insert(id, handle);
        self.keys.insert(id);
        self.magnets.insert(id);
        if !self.order.contains(&id) {
            self.order.push(id);
        }
        self.tracker_host.allow(id);
        self.dirty.store(true, Ordering::Relaxed);
    }

    /// A magnet link's metadata is in: the torrent starts, or waits for the front end's
    /// confirm; metadata that is not a usable torrent ends the link.
    async fn on_fetched(&mut self, done: Fetched) {
        let Fetched {
            id,
            torrent,
            name,
            saved,
            peers,
            announced_stop,
            took,
        } = done;
        if !self.magnets.contains(&id) {
            // Removed, or replaced by its .torrent, meanwhile.
            return;
        }
        let bytes = match torrent {
            Ok(bytes) => bytes,
            Err(e) => {
                self.magnets.remove(&id);
                self.torrents.remove(&id);
                self.keys.remove(&id);
                self.order.retain(|o| *o != id);
                self.tracker_host.disallow(&id);
                self.dirty.store(true, Ordering::Relaxed);
                let dir = self.config.state_dir.clone();
                let _ = tokio::task::spawn_blocking(move || resume::remove(&dir, id)).await;
                self.emit(Event::Removed { id });
                return self.emit(Event::AddFailed {
                    source: format!("the metadata of {name}"),
                    error: AddError::TorrentFile(e.into()),
                });
            }
        };
        self.emit(Event::MetadataFetched { id, name, took });
        let select_only = MagnetLink::parse(&saved.uri)
            .ok()
            .and_then(|link| link.select_only);
        if saved.confirm {
            if let Some(stop) = announced_stop {
                self.fetch_stops.insert(id, stop);
            }
            return self.emit(Event::ConfirmAdd {
                id,
                torrent: Arc::new(bytes),
                save_dir: saved.save_dir,
                paused: saved.paused,
                seed: saved.seeding,
                select_only,
            });
        }
        let add = AddTorrent {
            source: AddSource::Bytes(bytes),
            save_dir: saved.save_dir,
            paused: saved.paused,
            seed: saved.seeding,
            plan: DownloadPlan::default(),
        };
        let handover = Handover {
            peers,
            after_stop: announced_stop,
            added_at: Some(saved.added_at),
            select_only,
        };
        self.add(add, None, handover).await;
    }

    /// Reloads every torrent saved in the state folder, as it was.
    async fn restore(&mut self) {
        let dir = self.config.state_dir.clone();
        let saved = tokio::task::spawn_blocking(move || {
            let queue = resume::load_queue(&dir);
            let mut saved = resume::saved_torrents(&dir)
                .into_iter()
                .map(|id| {
                    let magnet = resume::load_magnet(&dir, id);
                    (id, magnet, resume::load(&dir, id))
                })
                .collect::<Vec<_>>();
            // In queue order; those the queue file does not list (added since it was last
            // saved) after, as they were added.
            saved.sort_by_key(|(id, magnet, loaded)| {
                let position = queue.iter().position(|q| q == id).unwrap_or(usize::MAX);
                let added_at = match (magnet, loaded) {
                    (Ok(Some(m)), _) => m.added_at,
                    (_, Ok(Some(r))) => r.added_at,
                    _ => u64::MAX,
                };
                (position, added_at, *id)
            });
            saved
        })
        .await
        .unwrap_or_default();
        for (id, magnet, loaded) in saved {
            let path = resume::torrent_path(&self.config.state_dir, id);
            match magnet {
                Ok(Some(magnet)) => {
                    self.restore_magnet(id, magnet, path).await;
                    continue;
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(%id, error = %e, "a saved magnet link is damaged"),
            }
            match loaded {
                Ok(Some(r)) => {
                    let add = AddTorrent {
                        source: AddSource::Path(path),
                        save_dir: r.save_dir.clone(),
                        paused: r.paused,
                        seed: r.seeding,
                        plan: r.plan.clone(),
                    };
                    self.add(add, Some(r), Handover::default()).await;
                }
                Ok(None) | Err(_) => {
                    // Lost, with its backup: the torrent stays, rechecked in the default
                    // download folder (where it most likely is), as Transmission does.
                    self.emit(Event::Error {
                        id,
                        error: TorrentError::ResumeDamaged,
                    });
                    let Some(dir) = self.download_dir.clone() else {
                        tracing::warn!(%id, "no usable resume data and no download folder; the torrent is not restored");
                        continue;
                    };
                    tracing::warn!(%id, dir = %dir.display(), "no usable resume data; rechecking the torrent in the download folder");
                    let add = AddTorrent {
                        source: AddSource::Path(path),
                        save_dir: dir,
                        paused: false,
                        seed: true,
                        plan: DownloadPlan::default(),
                    };
                    self.add(add, None, Handover::default()).await;
                }
            }
        }
    }

    /// Restores a magnet link: fetching again, waiting for the front end's confirm with the
    /// metadata it had (`.torrent` saved), or started as the torrent it was about to become.
    async fn restore_magnet(&mut self, id: InfoHash, magnet: resume::SavedMagnet, path: PathBuf) {
        let link = match MagnetLink::parse(&magnet.uri) {
            Ok(link) if link.info_hash == id => link,
            _ => {
                tracing::warn!(%id, "a saved magnet link does not parse; it is not restored");
                return;
            }
        };
        let torrent = tokio::task::spawn_blocking(move || read_torrent_file(&path))
            .await
            .ok()
            .and_then(Result::ok)
            .filter(|(_, meta)| meta.info_hash == id)
            .map(|(bytes, _)| bytes);
        match torrent {
            None => self.start_magnet(link, magnet, None),
            Some(bytes) if magnet.confirm => {
                self.start_magnet(link, magnet, Some(bytes));
            }
            Some(bytes) => {
                // Fetched, and stopped before the torrent started.
                let add = AddTorrent {
                    source: AddSource::Bytes(bytes),
                    save_dir: magnet.save_dir,
                    paused: magnet.paused,
                    seed: magnet.seeding,
                    plan: DownloadPlan::default(),
                };
                self.magnets.insert(id);
                let handover = Handover {
                    added_at: Some(magnet.added_at),
                    select_only: link.select_only,
                    ..Handover::default()
                };
                self.add(add, None, handover).await;
            }
        }
    }

    async fn shutdown(&mut self) {
        if let Some(mapped) = self.port_mapper.take() {
            mapped.stop().await;
        }
        if let Some(dht) = self.live.dht() {
            self.live.set_dht(None);
            dht.shutdown().await;
        }
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
