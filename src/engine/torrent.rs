//! The actor that runs one torrent: checking, connecting to peers, choking, announcing,
//! verifying finished pieces, saving resume data, and publishing its snapshot.
//!
//! It owns the torrent's life cycle. Peer connections and the disk report to it through
//! [`TorrentEvent`]s; the session drives it with [`TorrentCommand`]s.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::net::TcpStream;
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio::sync::oneshot;

use super::choker::{self, Candidate};
use super::config::LiveSettings;
use super::limiter::RateLimiter;
use super::peer::{self, Connected, PeerCommand, PeerLink, PeerStats};
use super::picker::{PeerKey, Picker};
use super::rate::RateMeter;
use super::resume::{self, ResumeData};
use super::shared::TorrentShared;
use super::snapshot::{Event, FileProgress, PeerSnapshot, TorrentSnapshot, TorrentState};
use super::strikes::Strikes;
use super::tracker::announcer::{AnnounceSignal, Announcer, TrackerUpdate};
use super::tracker::list::TrackerList;
use super::tracker::scraper::{ScrapeUpdate, Scraper};
use crate::bitfield::Bitfield;
use crate::ids::PeerId;
use crate::metainfo::Metainfo;
use crate::storage::disk::{Disk, PieceOutcome};
use crate::storage::{Storage, check};
use crate::tracker::{AnnounceEvent, TrackerClient};
use crate::wire::Handshake;

const TICK: Duration = Duration::from_millis(200);
const IDLE_TICK: Duration = Duration::from_secs(30);
const CHOKE_EVERY: Duration = Duration::from_secs(10);
const OPTIMISTIC_EVERY: Duration = Duration::from_secs(30);
const SAVE_EVERY: Duration = Duration::from_secs(10);
/// How often a complete torrent checks that its files are still whole.
const FILES_CHECK_EVERY: Duration = Duration::from_secs(10);
const MAX_HALF_OPEN: usize = 8;
/// How long a stop may wait for writes in flight.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(3);

/// Reports from peers, the disk, the tracker loop and the checker.
pub(crate) enum TorrentEvent {
    PeerClosed {
        key: PeerKey,
        reason: String,
        /// We and the peer both have everything: no use dialling it again while complete.
        both_seeds: bool,
    },
    PeerInterest {
        key: PeerKey,
        interested: bool,
    },
    PieceDone {
        index: u32,
        outcome: PieceOutcome,
        contributors: Vec<PeerKey>,
        /// The piece's buffer, back for reuse.
        buffer: Vec<u8>,
    },
    Handshaken {
        stream: TcpStream,
        addr: SocketAddr,
        handshake: Handshake,
        inbound: bool,
    },
    ConnectFailed {
        addr: SocketAddr,
    },
    /// An announce to this tracker is on its way.
    TrackerUpdating(String),
    Tracker(TrackerUpdate),
    Scraped(ScrapeUpdate),
    NextAnnounce(SystemTime),
    /// The save folder could not be prepared.
    StorageFailed(String),
    /// Data we have verified could not be read back (a file deleted or truncated): recheck.
    DataMissing(String),
    CheckDone {
        have: Bitfield,
        cancelled: bool,
    },
    ResumeStamped(Vec<Option<crate::storage::FileStamp>>),
}

/// Orders from the session.
pub(crate) enum TorrentCommand {
    Pause,
    Resume,
    SetSeeding(bool),
    AddTracker(String),
    RemoveTracker(String),
    Remove {
        delete_data: bool,
        done: oneshot::Sender<()>,
    },
    Shutdown(oneshot::Sender<()>),
}

/// What the session needs to start a torrent.
pub(crate) struct TorrentParams {
    pub meta: Arc<Metainfo>,
    pub save_dir: PathBuf,
    pub paused: bool,
    pub seeding: bool,
    pub resume: Option<ResumeData>,
    pub added_at: u64,
    pub state_dir: PathBuf,
    pub our_id: PeerId,
    pub trackers: TrackerClient,
    pub live: Arc<LiveSettings>,
    pub piece_buffer_budget: u64,
    pub disk: Disk,
    pub down_limit: Arc<RateLimiter>,
    pub up_limit: Arc<RateLimiter>,
    pub next_key: Arc<AtomicU64>,
    pub session_events: UnboundedSender<Event>,
    /// Raised whenever the snapshot changes.
    pub dirty: Arc<AtomicBool>,
}

/// The session's handle on a running torrent actor.
pub(crate) struct TorrentHandle {
    pub commands: UnboundedSender<TorrentCommand>,
    pub events: UnboundedSender<TorrentEvent>,
    pub snapshot: Arc<Mutex<Arc<TorrentSnapshot>>>,
}

/// The torrent's own record of a connection.
struct PeerBook {
    addr: SocketAddr,
    peer_id: PeerId,
    stats: Arc<PeerStats>,
    down: RateMeter,
    up: RateMeter,
    inbound: bool,
}

#[derive(Default)]
struct KnownPeer {
    failures: u32,
    next_try: Option<Instant>,
    /// Learned to be a seed while we were one too: not worth dialling when complete.
    seed: bool,
}

enum Phase {
    Idle,
    Checking {
        progress: Arc<AtomicU32>,
        cancel: Arc<AtomicBool>,
    },
    Active {
        announcer: Option<UnboundedSender<AnnounceSignal>>,
    },
}

struct Torrent {
    shared: Arc<TorrentShared>,
    params: TorrentParams,
    commands: UnboundedReceiver<TorrentCommand>,
    events: UnboundedReceiver<TorrentEvent>,
    events_tx: UnboundedSender<TorrentEvent>,
    snapshot: Arc<Mutex<Arc<TorrentSnapshot>>>,
    paused: bool,
    seeding: bool,
    error: Option<String>,
    phase: Phase,
    needs_check: bool,
    /// Resume data is on trial until `ResumeStamped` says the files are as it recorded.
    awaiting_stamps: bool,
    /// Inside `stop()`: nothing may start again (a piece finishing while writes drain).
    stopping: bool,
    /// Done when the last announcer has sent its `stopped` announces.
    announcer_stopping: Option<oneshot::Receiver<()>>,
    peers: HashMap<PeerKey, PeerBook>,
    known: HashMap<SocketAddr, KnownPeer>,
    connecting: HashSet<SocketAddr>,
    /// Bad data and bans, by IP address.
    strikes: Strikes,
    /// Our own listen addresses, found by connecting to ourselves.
    own_addrs: HashSet<SocketAddr>,
    optimistic: Option<PeerKey>,
    last_choke: Instant,
    last_optimistic: Instant,
    last_second: Instant,
    last_save: Instant,
    last_files_check: Instant,
    /// A look at the files is running (one at a time).
    files_check_running: Arc<AtomicBool>,
    resume_dirty: bool,
    trackers: TrackerList,
    _scraper: Scraper,
    next_announce: Option<SystemTime>,
    down: RateMeter,
    up: RateMeter,
    file_progress: (u32, Vec<FileProgress>),
    was_complete: bool,
}

/// Builds the torrent's shared state and starts its actor.
pub(crate) fn spawn(params: TorrentParams) -> TorrentHandle {
    let (commands_tx, commands) = mpsc::unbounded_channel();
    let (events_tx, events) = mpsc::unbounded_channel();
    let meta = params.meta.clone();
    let storage = Arc::new(Storage::new(&meta, &params.save_dir));
    let mut picker = Picker::new(
        meta.piece_count(),
        meta.piece_length,
        meta.total_length,
        params.piece_buffer_budget,
    );
    let mut needs_check = true;
    let (downloaded, uploaded) = params
        .resume
        .as_ref()
        .map_or((0, 0), |r| (r.downloaded, r.uploaded));
    if let Some(resume) = &params.resume
        && let Ok(have) = Bitfield::from_bytes(&resume.have, meta.piece_count())
    {
        // Trusted only if the files are as they were; `ResumeStamped` decides.
        picker.set_have(have);
        needs_check = false;
    }
    let shared = Arc::new(TorrentShared {
        meta: meta.clone(),
        our_id: params.our_id,
        storage,
        disk: params.disk.clone(),
        picker: Mutex::new(picker),
        peers: Mutex::new(HashMap::new()),
        events: events_tx.clone(),
        down_limit: params.down_limit.clone(),
        up_limit: params.up_limit.clone(),
        downloaded: AtomicU64::new(downloaded),
        uploaded: AtomicU64::new(uploaded),
    });
    let placeholder = Arc::new(empty_snapshot(&meta, &params));
    let snapshot = Arc::new(Mutex::new(placeholder));
    let was_complete = shared.picker().is_complete();
    let saved_trackers = params.resume.as_ref().and_then(|r| r.trackers.clone());
    let trackers = TrackerList::new(meta.trackers(), saved_trackers);
    let scraper = Scraper::spawn(
        params.trackers.clone(),
        meta.info_hash,
        trackers.watch_urls(),
        events_tx.clone(),
    );
    let torrent = Torrent {
        shared: shared.clone(),
        commands,
        events,
        events_tx: events_tx.clone(),
        snapshot: snapshot.clone(),
        paused: params.paused,
        seeding: params.seeding,
        error: None,
        phase: Phase::Idle,
        needs_check,
        awaiting_stamps: !needs_check,
        stopping: false,
        announcer_stopping: None,
        peers: HashMap::new(),
        known: HashMap::new(),
        connecting: HashSet::new(),
        strikes: Strikes::default(),
        own_addrs: HashSet::new(),
        optimistic: None,
        last_choke: Instant::now(),
        last_optimistic: Instant::now(),
        last_second: Instant::now(),
        last_save: Instant::now(),
        last_files_check: Instant::now(),
        files_check_running: Arc::new(AtomicBool::new(false)),
        resume_dirty: true,
        trackers,
        _scraper: scraper,
        next_announce: None,
        down: RateMeter::new(downloaded),
        up: RateMeter::new(uploaded),
        file_progress: (u32::MAX, Vec::new()),
        was_complete,
        params,
    };
    tokio::spawn(torrent.run());
    TorrentHandle {
        commands: commands_tx,
        events: events_tx,
        snapshot,
    }
}

fn empty_snapshot(meta: &Metainfo, params: &TorrentParams) -> TorrentSnapshot {
    TorrentSnapshot {
        id: meta.info_hash,
        name: meta.name.clone(),
        save_dir: params.save_dir.clone(),
        total_size: meta.total_length,
        piece_length: meta.piece_length,
        piece_count: meta.piece_count(),
        verified_bytes: 0,
        progress: 0.0,
        state: TorrentState::Checking(0.0),
        paused: params.paused,
        seeding_enabled: params.seeding,
        down_rate: 0,
        up_rate: 0,
        downloaded: 0,
        uploaded: 0,
        ratio: 0.0,
        eta: None,
        connected_seeds: 0,
        connected_peers: 0,
        swarm_seeders: None,
        swarm_leechers: None,
        tracker_status: String::new(),
        next_announce: None,
        trackers: Vec::new(),
        peers: Vec::new(),
        files: Vec::new(),
        pieces: Vec::new(),
        pieces_in_progress: Vec::new(),
        added_at: params.added_at,
        comment: meta.comment.clone(),
        created_by: meta.created_by.clone(),
    }
}

impl Torrent {
    async fn run(mut self) {
        if !self.needs_check {
            // Resume data is trusted only if every file has the size and mtime it recorded.
            let storage = self.shared.storage.clone();
            let events = self.events_tx.clone();
            tokio::task::spawn_blocking(move || {
                let _ = events.send(TorrentEvent::ResumeStamped(storage.stamps()));
            });
        } else {
            self.reconcile();
        }
        let mut next_tick = tokio::time::Instant::now();
        loop {
            tokio::select! {
                command = self.commands.recv() => {
                    let Some(command) = command else { return };
                    if !self.handle_command(command).await {
                        return;
                    }
                    self.publish_snapshot();
                }
                Some(event) = self.events.recv() => {
                    self.handle_event(event).await;
                    if matches!(self.phase, Phase::Idle) {
                        self.publish_snapshot();
                    }
                }
                _ = tokio::time::sleep_until(next_tick) => {
                    self.on_tick().await;
                    next_tick = tokio::time::Instant::now() + self.tick_period();
                }
            }
        }
    }

    /// Active torrents refresh often; stopped ones rarely (a thousand paused torrents cost
    /// next to nothing), and still publish at once when a command or event changes them.
    fn tick_period(&self) -> Duration {
        if matches!(self.phase, Phase::Idle) {
            IDLE_TICK
        } else {
            TICK
        }
    }

    /// Carries out a command; returns false when the actor should end.
    async fn handle_command(&mut self, command: TorrentCommand) -> bool {
        match command {
            TorrentCommand::Pause => {
                self.paused = true;
                self.stop().await;
                self.resume_dirty = true;
                self.save_resume().await;
            }
            TorrentCommand::Resume => {
                self.paused = false;
                self.error = None;
                self.resume_dirty = true;
                self.reconcile();
            }
            TorrentCommand::SetSeeding(on) => {
                self.seeding = on;
                self.resume_dirty = true;
                self.reconcile_or_stop().await;
            }
            TorrentCommand::AddTracker(url) => {
                if self.trackers.add(url) {
                    self.trackers_changed().await;
                }
            }
            TorrentCommand::RemoveTracker(url) => {
                if self.trackers.remove(&url) {
                    self.trackers_changed().await;
                }
            }
            TorrentCommand::Remove { delete_data, done } => {
                self.stop().await;
                let storage = self.shared.storage.clone();
                let (state_dir, id) = (self.params.state_dir.clone(), self.shared.meta.info_hash);
                let _ = tokio::task::spawn_blocking(move || {
                    resume::remove(&state_dir, id);
                    if delete_data {
                        storage.delete_files();
                    }
                })
                .await;
                let _ = done.send(());
                return false;
            }
            TorrentCommand::Shutdown(done) => {
                self.stop().await;
                self.save_resume().await;
                if let Some(wait) = self.announcer_stopping.take() {
                    let _ = wait.await;
                }
                let _ = done.send(());
                return false;
            }
        }
        true
    }

    /// Tells the announcer about an edited tracker list, and saves it.
    async fn trackers_changed(&mut self) {
        match &self.phase {
            Phase::Active { announcer: Some(a) } => {
                let _ = a.send(AnnounceSignal::SetTiers(self.trackers.tiers().to_vec()));
            }
            // An active torrent that had no trackers gets an announcer by restarting.
            Phase::Active { announcer: None } if !self.trackers.tiers().is_empty() => {
                self.stop().await;
                self.reconcile();
            }
            _ => {}
        }
        self.resume_dirty = true;
        self.save_resume().await;
    }

    fn is_complete(&self) -> bool {
        self.shared.picker().is_complete()
    }

    fn should_be_active(&self) -> bool {
        !self.paused
            && self.error.is_none()
            && !self.needs_check
            && (!self.is_complete() || self.seeding)
    }

    /// Starts checking or activity when the torrent should be doing them.
    fn reconcile(&mut self) {
        if !matches!(self.phase, Phase::Idle)
            || self.paused
            || self.error.is_some()
            || self.awaiting_stamps
            || self.stopping
        {
            return;
        }
        if self.needs_check {
            self.start_check();
        } else if self.should_be_active() {
            self.activate();
        }
    }

    async fn reconcile_or_stop(&mut self) {
        if matches!(self.phase, Phase::Active { .. }) && !self.should_be_active() {
            self.stop().await;
            self.save_resume().await;
        } else {
            self.reconcile();
        }
    }

    fn start_check(&mut self) {
        let progress = Arc::new(AtomicU32::new(0));
        let cancel = Arc::new(AtomicBool::new(false));
        self.phase = Phase::Checking {
            progress: progress.clone(),
            cancel: cancel.clone(),
        };
        let meta = self.shared.meta.clone();
        let storage = self.shared.storage.clone();
        let events = self.events_tx.clone();
        tokio::task::spawn_blocking(move || {
            let have = check::check_existing(&meta, &storage, &progress, &cancel);
            let _ = events.send(TorrentEvent::CheckDone {
                have,
                cancelled: cancel.load(Ordering::Relaxed),
            });
        });
    }

    fn activate(&mut self) {
        // Folders and zero-length files (no piece write creates those), off the async workers.
        let (storage, events) = (self.shared.storage.clone(), self.events_tx.clone());
        tokio::task::spawn_blocking(move || {
            if let Err(e) = storage.create_empty_files() {
                let _ = events.send(TorrentEvent::StorageFailed(e.user_message()));
            }
        });
        let tiers = self.trackers.tiers().to_vec();
        let announcer = if tiers.is_empty() {
            None
        } else {
            let (tx, rx) = mpsc::unbounded_channel();
            let first_event = AnnounceEvent::Started;
            tokio::spawn(
                Announcer {
                    shared: self.shared.clone(),
                    trackers: self.params.trackers.clone(),
                    tiers,
                    live: self.params.live.clone(),
                    signals: rx,
                    events: self.events_tx.clone(),
                    first_event,
                    after_stop: self.announcer_stopping.take(),
                }
                .run(),
            );
            Some(tx)
        };
        self.phase = Phase::Active { announcer };
        tracing::info!(torrent = %self.shared.meta.name, "started");
    }

    /// Stops all activity: `stopped` to the trackers, peers disconnected, writes drained.
    /// The announcer sends `stopped` on its own; what to await for it is kept in
    /// `announcer_stopping`, for shutdown and for the next announcer's `started`.
    async fn stop(&mut self) {
        match std::mem::replace(&mut self.phase, Phase::Idle) {
            Phase::Checking { cancel, progress } => {
                cancel.store(true, Ordering::Relaxed);
                self.phase = Phase::Checking { cancel, progress };
                // CheckDone will arrive and find the torrent stopped.
            }
            Phase::Active { announcer } => {
                let stopped = announcer.map(|a| {
                    let (done, wait) = oneshot::channel();
                    let _ = a.send(AnnounceSignal::Stop(done));
                    wait
                });
                for link in self.shared.peers().values() {
                    let _ = link.tx.send(PeerCommand::Disconnect);
                }
                self.stopping = true;
                self.drain_writes().await;
                self.stopping = false;
                self.shared.picker().discard_partials();
                if stopped.is_some() {
                    self.announcer_stopping = stopped;
                }
            }
            Phase::Idle => {}
        }
    }

    /// Waits (bounded) until every piece handed to the disk has been reported.
    async fn drain_writes(&mut self) {
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        while self.shared.picker().verifying_count() > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.events.recv()).await {
                Ok(Some(event)) => self.handle_event(event).await,
                _ => break,
            }
        }
    }

    fn fail(&mut self, message: String) {
        tracing::warn!(torrent = %self.shared.meta.name, %message, "torrent error");
        self.error = Some(message.clone());
        let _ = self.params.session_events.send(Event::Error {
            id: self.shared.meta.info_hash,
            message,
        });
    }

    fn handle_event(
        &mut self,
        event: TorrentEvent,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            match event {
                TorrentEvent::PeerClosed {
                    key,
                    reason,
                    both_seeds,
                } => self.on_peer_closed(key, &reason, both_seeds),
                TorrentEvent::PeerInterest { key, interested } => {
                    if interested {
                        self.unchoke_if_slot_free(key);
                    }
                }
                TorrentEvent::PieceDone {
                    index,
                    outcome,
                    contributors,
                    buffer,
                } => {
                    self.shared.picker().recycle(buffer);
                    self.on_piece_done(index, outcome, contributors).await
                }
                TorrentEvent::Handshaken {
                    stream,
                    addr,
                    handshake,
                    inbound,
                } => {
                    if !inbound {
                        self.connecting.remove(&addr);
                    }
                    self.admit(stream, addr, &handshake, inbound);
                }
                TorrentEvent::ConnectFailed { addr } => {
                    self.connecting.remove(&addr);
                    let known = self.known.entry(addr).or_default();
                    known.failures += 1;
                    let backoff = Duration::from_secs(10 * 2u64.pow(known.failures.min(8)));
                    known.next_try = Some(Instant::now() + backoff);
                }
                TorrentEvent::Tracker(update) => {
                    for addr in &update.peers {
                        if addr.port() == self.params.live.listen_port()
                            && (addr.ip().is_loopback() || addr.ip().is_unspecified())
                        {
                            continue; // that is us
                        }
                        self.known.entry(*addr).or_default();
                    }
                    self.trackers.on_announce(&update);
                    // New peers are dialled now, not at the next one-second tick.
                    if !update.peers.is_empty() && matches!(self.phase, Phase::Active { .. }) {
                        self.connect_more();
                    }
                }
                TorrentEvent::TrackerUpdating(url) => self.trackers.on_updating(&url),
                TorrentEvent::Scraped(update) => self.trackers.on_scrape(&update),
                TorrentEvent::NextAnnounce(at) => self.next_announce = Some(at),
                TorrentEvent::DataMissing(message) => {
                    if !self.needs_check {
                        tracing::warn!(torrent = %self.shared.meta.name, %message, "data went missing; rechecking");
                        self.needs_check = true;
                        self.stop().await;
                        self.reconcile();
                    }
                }
                TorrentEvent::StorageFailed(message) => {
                    self.fail(message);
                    self.stop().await;
                }
                TorrentEvent::CheckDone { have, cancelled } => {
                    self.phase = Phase::Idle;
                    if !cancelled {
                        tracing::info!(torrent = %self.shared.meta.name, pieces = have.count_ones(), "check finished");
                        self.shared.picker().set_have(have);
                        self.needs_check = false;
                        self.was_complete = self.is_complete();
                        self.resume_dirty = true;
                        self.save_resume().await;
                    }
                    self.reconcile();
                }
                TorrentEvent::ResumeStamped(stamps) => {
                    let recorded = self
                        .params
                        .resume
                        .as_ref()
                        .map(|r| r.stamps.clone())
                        .unwrap_or_default();
                    if stamps != recorded {
                        tracing::info!(torrent = %self.shared.meta.name, "files changed since last run; rechecking");
                        self.needs_check = true;
                    }
                    self.awaiting_stamps = false;
                    self.reconcile();
                }
            }
        })
    }

    fn admit(&mut self, stream: TcpStream, addr: SocketAddr, handshake: &Handshake, inbound: bool) {
        let peer_id = handshake.peer_id;
        let duplicate = self.peers.values().any(|p| p.peer_id == peer_id);
        let full = self.peers.len() >= self.params.live.max_peers();
        let slot = (!full && !duplicate)
            .then(|| self.params.live.take_connection())
            .flatten();
        if !matches!(self.phase, Phase::Active { .. })
            || self.strikes.is_banned(addr.ip())
            || self.own_addrs.contains(&addr)
            || peer_id == self.shared.our_id
            || duplicate
            || slot.is_none()
        {
            if peer_id == self.shared.our_id {
                self.own_addrs.insert(addr);
            } else if !inbound {
                // Turned away (a duplicate, or no room): do not dial it again at once.
                self.known.entry(addr).or_default().next_try =
                    Some(Instant::now() + Duration::from_secs(60));
            }
            return;
        }
        let key = self.params.next_key.fetch_add(1, Ordering::Relaxed);
        self.strikes.connected(key, addr.ip());
        let (tx, commands) = mpsc::unbounded_channel();
        let stats = Arc::new(PeerStats::default());
        self.shared.peers().insert(
            key,
            PeerLink {
                tx,
                stats: stats.clone(),
            },
        );
        self.peers.insert(
            key,
            PeerBook {
                addr,
                peer_id,
                stats: stats.clone(),
                down: RateMeter::new(0),
                up: RateMeter::new(0),
                inbound,
            },
        );
        if !inbound {
            let known = self.known.entry(addr).or_default();
            known.failures = 0;
            known.next_try = None;
        }
        tracing::debug!(torrent = %self.shared.meta.name, %addr, inbound, "peer connected");
        let connected = Connected {
            key,
            stream,
            addr,
            capabilities: handshake.capabilities(),
            listen_port: self.params.live.listen_port(),
            reply_handshake: inbound,
            commands,
            stats,
        };
        let shared = self.shared.clone();
        tokio::spawn(async move {
            peer::run(shared, connected).await;
            drop(slot);
        });
    }

    fn on_peer_closed(&mut self, key: PeerKey, reason: &str, both_seeds: bool) {
        self.shared.peers().remove(&key);
        if let Some(book) = self.peers.remove(&key) {
            tracing::debug!(torrent = %self.shared.meta.name, addr = %book.addr, reason, "peer closed");
            // An inbound peer's address has its ephemeral port: nothing to dial later.
            if !book.inbound {
                let known = self.known.entry(book.addr).or_default();
                known.seed |= both_seeds;
                known.next_try = Some(Instant::now() + Duration::from_secs(30));
            }
        }
        if self.optimistic == Some(key) {
            self.optimistic = None;
        }
    }

    async fn on_piece_done(
        &mut self,
        index: u32,
        outcome: PieceOutcome,
        contributors: Vec<PeerKey>,
    ) {
        match outcome {
            PieceOutcome::Written => {
                self.shared.picker().piece_verified(index, true);
                self.strikes.piece_passed(&contributors);
                for link in self.shared.peers().values() {
                    let _ = link.tx.send(PeerCommand::Have(index));
                }
                self.resume_dirty = true;
                if self.is_complete() && !self.was_complete {
                    self.on_complete().await;
                }
            }
            PieceOutcome::HashMismatch => {
                self.shared.picker().piece_verified(index, false);
                tracing::warn!(torrent = %self.shared.meta.name, index, "piece failed its hash check");
                for ip in self.strikes.piece_failed(&contributors) {
                    tracing::warn!(torrent = %self.shared.meta.name, %ip, "banning an address that sent bad data");
                    let links = self.shared.peers();
                    for (key, book) in &self.peers {
                        if book.addr.ip().to_canonical() == ip
                            && let Some(link) = links.get(key)
                        {
                            let _ = link.tx.send(PeerCommand::Disconnect);
                        }
                    }
                }
            }
            PieceOutcome::WriteFailed(e) => {
                self.shared.picker().piece_verified(index, false);
                self.fail(e.user_message());
                self.stop().await;
            }
        }
    }

    async fn on_complete(&mut self) {
        self.was_complete = true;
        tracing::info!(torrent = %self.shared.meta.name, "download complete");
        if let Phase::Active { announcer: Some(a) } = &self.phase {
            let _ = a.send(AnnounceSignal::Completed);
        }
        self.save_resume().await;
        let _ = self.params.session_events.send(Event::Completed {
            id: self.shared.meta.info_hash,
            name: self.shared.meta.name.clone(),
        });
        self.reconcile_or_stop().await;
    }

    async fn on_tick(&mut self) {
        let now = Instant::now();
        if now.duration_since(self.last_second) >= Duration::from_secs(1) {
            self.last_second = now;
            self.down
                .update(self.shared.downloaded.load(Ordering::Relaxed));
            self.up.update(self.shared.uploaded.load(Ordering::Relaxed));
            for book in self.peers.values_mut() {
                book.down
                    .update(book.stats.downloaded.load(Ordering::Relaxed));
                book.up.update(book.stats.uploaded.load(Ordering::Relaxed));
            }
            if matches!(self.phase, Phase::Active { .. }) {
                self.connect_more();
                let rotate = now.duration_since(self.last_optimistic) >= OPTIMISTIC_EVERY;
                if rotate || now.duration_since(self.last_choke) >= CHOKE_EVERY {
                    self.run_choker(rotate);
                }
            }
            if matches!(self.phase, Phase::Active { .. })
                && self.is_complete()
                && now.duration_since(self.last_files_check) >= FILES_CHECK_EVERY
            {
                self.last_files_check = now;
                self.check_files_whole();
            }
            if self.resume_dirty && now.duration_since(self.last_save) >= SAVE_EVERY {
                self.save_resume().await;
            }
        }
        self.publish_snapshot();
    }

    /// A seeder's files deleted or truncated underneath it: found by a stat of each file (on
    /// the blocking pool), then a recheck.
    fn check_files_whole(&self) {
        if self.files_check_running.swap(true, Ordering::Relaxed) {
            return;
        }
        let (storage, events) = (self.shared.storage.clone(), self.events_tx.clone());
        let running = self.files_check_running.clone();
        tokio::task::spawn_blocking(move || {
            if let Some(problem) = storage.missing_or_short() {
                let _ = events.send(TorrentEvent::DataMissing(problem));
            }
            running.store(false, Ordering::Relaxed);
        });
    }

    fn connect_more(&mut self) {
        let complete = self.is_complete();
        let now = Instant::now();
        let connected: HashSet<SocketAddr> = self.peers.values().map(|p| p.addr).collect();
        let mut budget = self
            .params
            .live
            .max_peers()
            .saturating_sub(self.peers.len() + self.connecting.len())
            .min(MAX_HALF_OPEN.saturating_sub(self.connecting.len()))
            .min(self.params.live.connections_free());
        let candidates: Vec<SocketAddr> = self
            .known
            .iter()
            .filter(|(addr, k)| {
                let busy = connected.contains(addr) || self.connecting.contains(addr);
                let unwanted = self.strikes.is_banned(addr.ip())
                    || self.own_addrs.contains(addr)
                    || (complete && k.seed);
                !busy && !unwanted && k.next_try.is_none_or(|t| t <= now)
            })
            .map(|(addr, _)| *addr)
            .collect();
        for addr in candidates {
            if budget == 0 {
                break;
            }
            budget -= 1;
            self.connecting.insert(addr);
            let events = self.events_tx.clone();
            let (info_hash, our_id) = (self.shared.meta.info_hash, self.shared.our_id);
            tokio::spawn(async move {
                let event = match peer::connect(addr, info_hash, our_id).await {
                    Ok((stream, handshake)) => TorrentEvent::Handshaken {
                        stream,
                        addr,
                        handshake,
                        inbound: false,
                    },
                    Err(e) => {
                        tracing::debug!(%addr, error = %e, "connect failed");
                        TorrentEvent::ConnectFailed { addr }
                    }
                };
                let _ = events.send(event);
            });
        }
    }

    fn unchoke_if_slot_free(&mut self, key: PeerKey) {
        let peers = self.shared.peers();
        let unchoked = peers
            .values()
            .filter(|l| !l.stats.am_choking.load(Ordering::Relaxed))
            .count();
        if unchoked < self.params.live.upload_slots()
            && let Some(link) = peers.get(&key)
        {
            let _ = link.tx.send(PeerCommand::Unchoke);
        }
    }

    fn run_choker(&mut self, rotate: bool) {
        let seeding = self.is_complete();
        let candidates: Vec<Candidate> = self
            .peers
            .iter()
            .map(|(&key, book)| Candidate {
                key,
                interested: book.stats.peer_interested.load(Ordering::Relaxed),
                rate: if seeding {
                    book.up.rate()
                } else {
                    book.down.rate()
                },
            })
            .collect();
        let unchoke = choker::choose(
            &candidates,
            self.params.live.upload_slots(),
            &mut self.optimistic,
            rotate,
        );
        for (key, link) in self.shared.peers().iter() {
            let command = if unchoke.contains(key) {
                PeerCommand::Unchoke
            } else {
                PeerCommand::Choke
            };
            let _ = link.tx.send(command);
        }
        self.last_choke = Instant::now();
        if rotate {
            self.last_optimistic = self.last_choke;
        }
    }

    /// Saves the torrent's state. Always, so that it is restored after a restart; but the
    /// verified pieces only once they are known (checked, or resume data confirmed): until then
    /// what was saved before is kept, or nothing is claimed, and the next start rechecks.
    async fn save_resume(&mut self) {
        self.last_save = Instant::now();
        self.resume_dirty = false;
        let trusted = !self.needs_check && !self.awaiting_stamps;
        let (have, kept_stamps) = match (&self.params.resume, trusted) {
            (_, true) => (self.shared.picker().have().as_bytes().to_vec(), None),
            (Some(old), false) => (old.have.clone(), Some(old.stamps.clone())),
            (None, false) => (
                Bitfield::new(self.shared.meta.piece_count())
                    .as_bytes()
                    .to_vec(),
                Some(Vec::new()),
            ),
        };
        let data = ResumeData {
            save_dir: self.params.save_dir.clone(),
            paused: self.paused,
            seeding: self.seeding,
            have,
            stamps: Vec::new(),
            downloaded: self.shared.downloaded.load(Ordering::Relaxed),
            uploaded: self.shared.uploaded.load(Ordering::Relaxed),
            added_at: self.params.added_at,
            trackers: self.trackers.saved(),
        };
        let storage = self.shared.storage.clone();
        let state_dir = self.params.state_dir.clone();
        let id = self.shared.meta.info_hash;
        let saved = tokio::task::spawn_blocking(move || {
            let data = ResumeData {
                stamps: kept_stamps.unwrap_or_else(|| storage.stamps()),
                ..data
            };
            resume::save(&state_dir, id, &data)
        })
        .await;
        if let Ok(Err(e)) = saved {
            tracing::warn!(error = %e, "could not save resume data");
        }
    }

    fn state(&self) -> TorrentState {
        if let Some(e) = &self.error {
            return TorrentState::Error(e.clone());
        }
        if let Phase::Checking { progress, .. } = &self.phase {
            let count = self.shared.meta.piece_count().max(1);
            return TorrentState::Checking(progress.load(Ordering::Relaxed) as f32 / count as f32);
        }
        if self.paused {
            return TorrentState::Paused;
        }
        if self.needs_check {
            return TorrentState::Checking(0.0);
        }
        match (self.is_complete(), self.seeding) {
            (true, true) => TorrentState::Seeding,
            (true, false) => TorrentState::Finished,
            (false, _) => TorrentState::Downloading,
        }
    }

    fn publish_snapshot(&mut self) {
        let meta = &self.shared.meta;
        let (have_bytes, pieces, have_count, pieces_in_progress) = {
            let picker = self.shared.picker();
            (
                picker.have_bytes(),
                picker.have().as_bytes().to_vec(),
                picker.have().count_ones(),
                picker.in_progress(),
            )
        };
        if self.file_progress.0 != have_count {
            self.file_progress = (have_count, file_progress(meta, &pieces));
        }
        let downloaded = self.shared.downloaded.load(Ordering::Relaxed);
        let uploaded = self.shared.uploaded.load(Ordering::Relaxed);
        let active = matches!(self.phase, Phase::Active { .. });
        let (down_rate, up_rate) = if active {
            (self.down.rate(), self.up.rate())
        } else {
            (0, 0)
        };
        let left = meta.total_length - have_bytes;
        let seeds = self
            .peers
            .values()
            .filter(|p| p.stats.is_seed.load(Ordering::Relaxed))
            .count() as u32;
        let snapshot = TorrentSnapshot {
            id: meta.info_hash,
            name: meta.name.clone(),
            save_dir: self.params.save_dir.clone(),
            total_size: meta.total_length,
            piece_length: meta.piece_length,
            piece_count: meta.piece_count(),
            verified_bytes: have_bytes,
            progress: have_bytes as f32 / meta.total_length.max(1) as f32,
            state: self.state(),
            paused: self.paused,
            seeding_enabled: self.seeding,
            down_rate,
            up_rate,
            downloaded,
            uploaded,
            ratio: if downloaded > 0 {
                uploaded as f32 / downloaded as f32
            } else {
                0.0
            },
            eta: (down_rate > 0 && left > 0).then(|| Duration::from_secs(left / down_rate)),
            connected_seeds: seeds,
            connected_peers: self.peers.len() as u32 - seeds,
            swarm_seeders: self.trackers.swarm.0,
            swarm_leechers: self.trackers.swarm.1,
            tracker_status: self.trackers.status_line(),
            next_announce: self.next_announce.filter(|_| active),
            trackers: self.trackers.entries().to_vec(),
            peers: self.peer_snapshots(),
            pieces_in_progress,
            files: self.file_progress.1.clone(),
            pieces,
            added_at: self.params.added_at,
            comment: meta.comment.clone(),
            created_by: meta.created_by.clone(),
        };
        let mut slot = self.snapshot.lock().unwrap_or_else(|p| p.into_inner());
        if **slot != snapshot {
            *slot = Arc::new(snapshot);
            self.params.dirty.store(true, Ordering::Relaxed);
        }
    }

    fn peer_snapshots(&self) -> Vec<PeerSnapshot> {
        let count = self.shared.meta.piece_count().max(1) as f32;
        let mut peers: Vec<PeerSnapshot> = self
            .peers
            .values()
            .map(|p| {
                let s = &p.stats;
                let flag = |on: bool, c: char| if on { Some(c) } else { None };
                let downloading = !s.peer_choking.load(Ordering::Relaxed)
                    && s.am_interested.load(Ordering::Relaxed);
                let flags: String = [
                    flag(downloading, 'D'),
                    flag(!downloading && s.am_interested.load(Ordering::Relaxed), 'd'),
                    flag(!s.am_choking.load(Ordering::Relaxed), 'U'),
                    flag(
                        s.am_choking.load(Ordering::Relaxed)
                            && s.peer_interested.load(Ordering::Relaxed),
                        'u',
                    ),
                    flag(p.inbound, 'I'),
                ]
                .into_iter()
                .flatten()
                .collect();
                PeerSnapshot {
                    addr: p.addr,
                    client: s
                        .client
                        .get()
                        .cloned()
                        .unwrap_or_else(|| p.peer_id.client()),
                    flags,
                    down_rate: p.down.rate(),
                    up_rate: p.up.rate(),
                    progress: s.pieces.load(Ordering::Relaxed) as f32 / count,
                }
            })
            .collect();
        peers.sort_by_key(|p| p.addr);
        peers
    }
}

/// Verified bytes of each file, from the bitfield of verified pieces.
fn file_progress(meta: &Metainfo, have: &[u8]) -> Vec<FileProgress> {
    let has = |i: u64| {
        have.get((i / 8) as usize)
            .is_some_and(|b| b & (0x80 >> (i % 8)) != 0)
    };
    meta.files
        .iter()
        .map(|f| {
            let mut verified = 0;
            if f.length > 0 {
                let first = f.offset / meta.piece_length;
                let last = (f.offset + f.length - 1) / meta.piece_length;
                for piece in first..=last {
                    if has(piece) {
                        let start = (piece * meta.piece_length).max(f.offset);
                        let end = ((piece + 1) * meta.piece_length).min(f.offset + f.length);
                        verified += end - start;
                    }
                }
            }
            FileProgress {
                path: f.path.clone(),
                length: f.length,
                verified_bytes: verified,
            }
        })
        .collect()
}
