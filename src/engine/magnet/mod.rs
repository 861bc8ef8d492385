//! A torrent added by magnet link, before its metadata is known: the actor that fetches the
//! info dictionary from peers (BEP 9), then hands the torrent to the session.
//!
//! It announces to the link's trackers, dials the peers they (and the link's `x.pe`, and
//! other peers' `ut_pex`) name, and accepts inbound peers for the info hash. Each connection
//! ([`connection`]) says what the peer offers; [`MetadataFetch`] decides which piece to ask
//! whom, and checks the whole against the info hash. A peer that offers a size over the cap,
//! sends what it was not asked, or took part in a set that failed the hash is dropped and not
//! dialled again during the fetch.
//!
//! Once the metadata is in, it is parsed by the same strict parser as any .torrent file
//! (`Metainfo::from_info`), saved in the state folder (a restart never fetches it again), and
//! reported as [`Fetched`]: the session starts the torrent, or, for a link added to be
//! confirmed, the actor waits in [`TorrentState::MetadataReceived`] until the front end adds
//! the torrent or removes the link. Pause, resume, tracker edits, remove and shutdown work
//! throughout.

mod connection;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::engine::peer::PeerStream;
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio::sync::oneshot;

use self::connection::{FetchCommand, FetchEvent, FetchPeer};
use super::config::LiveSettings;
use super::doctor::{self, Facts, Finding, Unavailable};
use super::metadata::{Assembled, MetadataFetch};
use super::peer::PeerStats;
use super::picker::PeerKey;
use super::resume::{self, SavedMagnet};
use super::roster::{PeerBook, PeerRoster};
use super::snapshot::{TorrentSnapshot, TorrentState};
use super::torrent::health::{self, Health};
use super::torrent::{TorrentCommand, TorrentEvent, TorrentHandle};
use super::tracker::announcer::{AnnounceSignal, AnnounceStats, Announcer};
use super::tracker::list::TrackerList;
use crate::ids::{InfoHash, PeerId};
use crate::magnet::{MagnetLink, PeerAddress};
use crate::metainfo::{Metainfo, MetainfoError};
use crate::sync::MutexExt;
use crate::tracker::{AnnounceEvent, TrackerClient};
use crate::wire::Handshake;

const TICK: Duration = Duration::from_secs(1);
/// A peer that rejected a piece is not asked again for this long.
const AFTER_REJECT: Duration = Duration::from_secs(5);
/// A peer that misbehaved is not dialled again for this long.
const SHUN_FOR: Duration = Duration::from_secs(3600);
/// What announces say is left while the size is unknown (libtorrent's choice: a tracker
/// counts the peer as a leecher).
const UNKNOWN_LEFT: u64 = 16 * 1024;
/// While no peer is connected, the DHT is searched again this often.
const DHT_RETRY: Duration = Duration::from_secs(60);

/// What the session needs to start a magnet link's fetch.
pub(crate) struct MagnetParams {
    pub link: MagnetLink,
    pub saved: SavedMagnet,
    /// The .torrent, when its metadata was fetched before a restart and awaits confirmation.
    pub fetched: Option<Vec<u8>>,
    pub state_dir: PathBuf,
    pub our_id: PeerId,
    pub trackers: TrackerClient,
    pub live: Arc<LiveSettings>,
    pub next_key: Arc<AtomicU64>,
    pub fetched_tx: UnboundedSender<Fetched>,
    /// Raised whenever the snapshot changes.
    pub dirty: Arc<AtomicBool>,
}

/// A magnet link's metadata is in (or cannot be used).
pub(crate) struct Fetched {
    pub id: InfoHash,
    /// The .torrent made of the metadata and the link's trackers, or why it is refused.
    pub torrent: Result<Vec<u8>, MetainfoError>,
    pub name: String,
    /// The link as it is now (paused and seeding as the user left them).
    pub saved: SavedMagnet,
    /// Addresses of the swarm, to dial at once.
    pub peers: Vec<SocketAddr>,
    /// The `stopped` announces of the fetch; the torrent's `started` waits for them.
    pub announced_stop: Option<oneshot::Receiver<()>>,
    /// From the start of the fetch to the metadata checked.
    pub took: Duration,
}

/// Where the fetch is.
enum Phase {
    Fetching,
    /// The metadata is in; waiting for the front end (a link added to be confirmed).
    Received,
}

/// Announce totals of a torrent whose size is unknown.
struct FetchStats {
    info_hash: InfoHash,
    our_id: PeerId,
    left: u64,
}

impl AnnounceStats for FetchStats {
    fn info_hash(&self) -> InfoHash {
        self.info_hash
    }
    fn peer_id(&self) -> PeerId {
        self.our_id
    }
    fn uploaded(&self) -> u64 {
        0
    }
    fn downloaded(&self) -> u64 {
        0
    }
    fn left(&self) -> u64 {
        self.left
    }
}

struct Link {
    commands: UnboundedSender<FetchCommand>,
    /// The peer said how big the metadata is: it may be asked.
    offers: bool,
    /// Not asked again before this (it rejected a piece).
    rested_until: Option<Instant>,
}

struct MagnetActor {
    params: MagnetParams,
    id: InfoHash,
    name: String,
    phase: Phase,
    fetch: MetadataFetch,
    roster: PeerRoster,
    links: HashMap<PeerKey, Link>,
    /// Peers that misbehaved: not dialled again, nor handed to the torrent.
    shunned: HashSet<SocketAddr>,
    list: TrackerList,
    next_announce: Option<SystemTime>,
    announcer: Option<UnboundedSender<AnnounceSignal>>,
    last_stopping: Option<oneshot::Receiver<()>>,
    commands: UnboundedReceiver<TorrentCommand>,
    events: UnboundedReceiver<TorrentEvent>,
    events_tx: UnboundedSender<TorrentEvent>,
    fetch_events: UnboundedReceiver<FetchEvent>,
    fetch_events_tx: UnboundedSender<FetchEvent>,
    snapshot: Arc<Mutex<Arc<TorrentSnapshot>>>,
    started: Instant,
    /// When the DHT was last searched.
    last_search: Instant,
    /// The task bringing local discovery's peers, while registered.
    lsd: Option<tokio::task::AbortHandle>,
    /// The network is down (the bound interface is gone): the fetch waits, as when paused.
    offline: bool,
    /// The swarm doctor's record (no peers to fetch from...).
    health: Health,
}

/// Starts the actor of a magnet link.
pub(crate) fn spawn(params: MagnetParams) -> TorrentHandle {
    let (commands_tx, commands) = mpsc::unbounded_channel();
    let (events_tx, events) = mpsc::unbounded_channel();
    let (fetch_events_tx, fetch_events) = mpsc::unbounded_channel();
    let link = &params.link;
    let id = link.info_hash;
    let name = link.name.clone().unwrap_or_else(|| id.to_hex());
    let tiers = link.trackers.iter().map(|t| vec![t.clone()]).collect();
    let mut roster = PeerRoster::default();
    let peers: Vec<SocketAddr> = link
        .peers
        .iter()
        .filter_map(|p| match p {
            PeerAddress::Ip(addr) => Some(*addr),
            PeerAddress::Host { .. } => None,
        })
        .collect();
    roster.learn(&peers, params.live.listen_addr());
    let phase = if params.fetched.is_some() {
        Phase::Received
    } else {
        Phase::Fetching
    };
    let mut actor = MagnetActor {
        id,
        name,
        phase,
        fetch: MetadataFetch::new(id),
        roster,
        links: HashMap::new(),
        shunned: HashSet::new(),
        list: TrackerList::new(tiers, params.saved.trackers.clone()),
        next_announce: None,
        announcer: None,
        last_stopping: None,
        commands,
        events,
        events_tx: events_tx.clone(),
        fetch_events,
        fetch_events_tx,
        snapshot: Arc::default(),
        started: Instant::now(),
        last_search: Instant::now(),
        lsd: None,
        offline: params.live.reach().down().is_some(),
        health: Health::default(),
        params,
    };
    actor.publish();
    let snapshot = actor.snapshot.clone();
    tokio::spawn(actor.run());
    TorrentHandle {
        commands: commands_tx,
        events: events_tx,
        snapshot,
    }
}

impl MagnetActor {
    async fn run(mut self) {
        if let Some(torrent) = self.params.fetched.take() {
            // Fetched before a restart, still to be confirmed: the session asks again.
            self.report(Ok(torrent));
        } else {
            self.activate();
        }
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                command = self.commands.recv() => {
                    let Some(command) = command else { return };
                    if !self.on_command(command).await {
                        return;
                    }
                }
                Some(event) = self.events.recv() => self.on_event(event),
                Some(event) = self.fetch_events.recv() => {
                    if self.on_fetch_event(event).await {
                        return;
                    }
                }
                // A paused link, or one waiting for the front end, never wakes by itself.
                _ = tick.tick(), if self.is_active() => self.on_tick(),
            }
            self.publish();
        }
    }

    fn is_active(&self) -> bool {
        matches!(self.phase, Phase::Fetching) && !self.params.saved.paused && !self.offline
    }

    /// Starts announcing and dialling, unless paused or done.
    fn activate(&mut self) {
        if !self.is_active() || self.announcer.is_some() {
            return;
        }
        self.started = Instant::now();
        let tiers = self.list.tiers().to_vec();
        if !tiers.is_empty() {
            let (tx, rx) = mpsc::unbounded_channel();
            let announcer = Announcer {
                stats: Arc::new(FetchStats {
                    info_hash: self.id,
                    our_id: self.params.our_id,
                    left: self.params.link.exact_length.unwrap_or(UNKNOWN_LEFT),
                }),
                trackers: self.params.trackers.clone(),
                tiers,
                live: self.params.live.clone(),
                signals: rx,
                events: self.events_tx.clone(),
                first_event: AnnounceEvent::Started,
                after_stop: self.last_stopping.take(),
            };
            tokio::spawn(announcer.run());
            self.announcer = Some(tx);
        }
        self.resolve_hosts();
        self.search_dht();
        self.register_lsd();
        self.connect_more();
    }

    /// Registers with local discovery while fetching; the peers found are dialled.
    fn register_lsd(&mut self) {
        let Some(lsd) = self.params.live.lsd() else {
            return;
        };
        let mut found = lsd.register(self.id, self.params.live.listen_port());
        let events = self.fetch_events_tx.clone();
        let task = tokio::spawn(async move {
            while let Some(peer) = found.recv().await {
                let _ = events.send(FetchEvent::Peers(vec![peer]));
            }
        });
        if let Some(old) = self.lsd.replace(task.abort_handle()) {
            old.abort();
        }
    }

    /// Asks the DHT for the swarm's peers (and announces us there), if a DHT node runs: a
    /// link without trackers or peers is found this way alone.
    fn search_dht(&self) {
        let Some(dht) = self.params.live.dht() else {
            return;
        };
        let mut found = dht.get_peers(self.id.0, Some(self.params.live.listen_port()));
        let events = self.fetch_events_tx.clone();
        tokio::spawn(async move {
            while let Some(peers) = found.recv().await {
                let _ = events.send(FetchEvent::Peers(peers));
            }
        });
    }

    /// Looks up the link's `x.pe` peers given by host name; their addresses are dialled.
    fn resolve_hosts(&self) {
        for peer in &self.params.link.peers {
            let PeerAddress::Host { name, port } = peer else {
                continue;
            };
            let (host, events) = (format!("{name}:{port}"), self.fetch_events_tx.clone());
            tokio::spawn(async move {
                match tokio::net::lookup_host(&host).await {
                    Ok(addrs) => {
                        let _ = events.send(FetchEvent::Peers(addrs.collect()));
                    }
                    Err(e) => {
                        tracing::debug!(%host, error = %e, "cannot resolve a peer of the magnet link")
                    }
                }
            });
        }
    }

    /// Stops announcing (the trackers hear `stopped`) and drops every peer.
    fn deactivate(&mut self) {
        if let Some(announcer) = self.announcer.take() {
            let (done, stopped) = oneshot::channel();
            let _ = announcer.send(AnnounceSignal::Stop(done));
            self.last_stopping = Some(stopped);
        }
        self.roster.stopping();
        for link in self.links.values() {
            let _ = link.commands.send(FetchCommand::Disconnect);
        }
        if let Some(lsd) = self.lsd.take() {
            lsd.abort();
        }
        self.next_announce = None;
    }

    /// Carries out a command; false when the actor should end.
    async fn on_command(&mut self, command: TorrentCommand) -> bool {
        match command {
            TorrentCommand::Pause => {
                self.params.saved.paused = true;
                self.deactivate();
                self.save().await;
            }
            TorrentCommand::Resume => {
                self.params.saved.paused = false;
                self.save().await;
                self.activate();
            }
            TorrentCommand::SetSeeding(on) => {
                self.params.saved.seeding = on;
                self.save().await;
            }
            // No files before the metadata: the link's `so` or the add dialog chooses them.
            TorrentCommand::SetFilePriority(..)
            | TorrentCommand::SetSequential(_)
            | TorrentCommand::SetFirstLastFirst(_) => {}
            // The queue holds torrents, not metadata fetches.
            TorrentCommand::SetQueued(_)
            | TorrentCommand::SetForced(_)
            | TorrentCommand::SetGoals(_)
            | TorrentCommand::SetSpeedLimits { .. }
            | TorrentCommand::MoveData(_) => {}
            TorrentCommand::AddPeers(peers) => {
                self.roster.learn(&peers, self.params.live.listen_addr());
                self.connect_more();
            }
            // While the network is down the fetch waits; it starts again (from wherever the
            // binding now is) when it is back.
            TorrentCommand::Network(offline) => {
                self.deactivate();
                self.offline = offline.is_some();
                self.activate();
            }
            TorrentCommand::AddTracker(url) => {
                if self.list.add(url) {
                    self.trackers_changed().await;
                }
            }
            TorrentCommand::RemoveTracker(url) => {
                if self.list.remove(&url) {
                    self.trackers_changed().await;
                }
            }
            TorrentCommand::Remove { done, .. } => {
                // There is no data yet: only the saved link (and any fetched .torrent) goes.
                self.deactivate();
                self.wait_for_stop().await;
                let (dir, id) = (self.params.state_dir.clone(), self.id);
                let _ = tokio::task::spawn_blocking(move || resume::remove(&dir, id)).await;
                let _ = done.send(());
                return false;
            }
            TorrentCommand::Shutdown(done) => {
                self.deactivate();
                self.wait_for_stop().await;
                let _ = done.send(());
                return false;
            }
        }
        true
    }

    async fn wait_for_stop(&mut self) {
        if let Some(stopped) = self.last_stopping.take() {
            let _ = stopped.await;
        }
    }

    async fn trackers_changed(&mut self) {
        self.params.saved.trackers = self.list.saved();
        self.save().await;
        let tiers = self.list.tiers().to_vec();
        match &self.announcer {
            Some(announcer) => {
                let _ = announcer.send(AnnounceSignal::SetTiers(tiers));
            }
            None if self.is_active() => self.activate(),
            None => {}
        }
    }

    fn on_event(&mut self, event: TorrentEvent) {
        match event {
            TorrentEvent::Handshaken {
                stream,
                addr,
                handshake,
                inbound,
            } => self.admit(stream, addr, &handshake, inbound),
            TorrentEvent::ConnectFailed { addr } => self.roster.dial_failed(addr, Instant::now()),
            TorrentEvent::Tracker(update) => {
                self.roster
                    .learn(&update.peers, self.params.live.listen_addr());
                self.list.on_announce(&update);
                self.connect_more();
            }
            TorrentEvent::TrackerUpdating(url) => self.list.on_updating(&url),
            TorrentEvent::NextAnnounce(at) => self.next_announce = Some(at),
            // The rest are a running torrent's.
            _ => {}
        }
    }

    /// Handles a connection's report; true when the actor should end (the torrent was handed
    /// to the session).
    async fn on_fetch_event(&mut self, event: FetchEvent) -> bool {
        let now = Instant::now();
        match event {
            FetchEvent::Ready {
                key,
                metadata_size,
                listen_port,
                client,
            } => {
                if let Some(book) = self.roster.book(key) {
                    if let Some(client) = client {
                        let _ = book.stats.client.set(client);
                    }
                    // An inbound peer's listen address: the torrent may dial it later.
                    if book.inbound
                        && let Some(port) = listen_port
                    {
                        let addr = SocketAddr::new(book.addr.ip(), port);
                        self.roster.learn(&[addr], self.params.live.listen_addr());
                    }
                }
                let Some(size) = metadata_size else {
                    // It has no metadata to give (or does not speak ut_metadata).
                    self.drop_peer(key, None);
                    return false;
                };
                match self.fetch.peer_size(size) {
                    Ok(()) => {
                        if let Some(link) = self.links.get_mut(&key) {
                            link.offers = true;
                        }
                        self.ask(now);
                    }
                    Err(fault) => self.drop_peer(key, Some(fault.to_string())),
                }
            }
            FetchEvent::Data {
                key,
                piece,
                total_size,
                data,
            } => match self.fetch.data(key, piece, total_size, data) {
                Ok(Assembled::Pending) => self.ask(now),
                Ok(Assembled::Done(info)) => return self.fetched(info).await,
                Ok(Assembled::BadHash(liar)) => {
                    tracing::warn!(magnet = %self.name, "fetched metadata does not match the info hash; fetching it again");
                    if let Some(key) = liar {
                        self.drop_peer(key, Some("sent metadata that failed the hash".into()));
                    }
                    self.ask(now);
                }
                Err(fault) => {
                    self.drop_peer(key, Some(fault.to_string()));
                    self.ask(now);
                }
            },
            FetchEvent::Rejected { key, piece } => {
                self.fetch.rejected(key, piece);
                if let Some(link) = self.links.get_mut(&key) {
                    link.rested_until = Some(now + AFTER_REJECT);
                }
                self.ask(now);
            }
            FetchEvent::Peers(peers) => {
                self.roster.learn(&peers, self.params.live.listen_addr());
                self.connect_more();
            }
            FetchEvent::Closed {
                key,
                reason,
                misbehaved,
            } => {
                if misbehaved {
                    self.drop_peer(key, Some(reason.clone()));
                }
                self.links.remove(&key);
                self.fetch.peer_gone(key);
                if let Some(book) = self.roster.closed(key, false, now) {
                    tracing::debug!(magnet = %self.name, addr = %book.addr, reason, "peer closed");
                }
                self.ask(now);
                self.connect_more();
            }
        }
        false
    }

    /// Drops a peer; one that misbehaved (`why`) is not dialled again during the fetch.
    fn drop_peer(&mut self, key: PeerKey, why: Option<String>) {
        if let Some(link) = self.links.get(&key) {
            let _ = link.commands.send(FetchCommand::Disconnect);
        }
        if let Some(why) = why
            && let Some(book) = self.roster.book(key)
        {
            tracing::info!(magnet = %self.name, addr = %book.addr, %why, "dropping a peer");
            // An inbound peer's address is an ephemeral port: nothing to avoid dialling.
            if !book.inbound {
                let addr = book.addr;
                self.roster.shun(addr, Instant::now() + SHUN_FOR);
                self.shunned.insert(addr);
            }
        }
    }

    /// Asks every peer that offers metadata and is not busy for the next piece due.
    fn ask(&mut self, now: Instant) {
        if !self.is_active() {
            return;
        }
        for (&key, link) in &mut self.links {
            if !link.offers || link.rested_until.is_some_and(|t| now < t) {
                continue;
            }
            link.rested_until = None;
            if let Some(piece) = self.fetch.next_request(key, now) {
                let _ = link.commands.send(FetchCommand::Request(piece));
            }
        }
    }

    fn on_tick(&mut self) {
        if self.is_active() {
            // Requests that timed out go to other peers; new addresses are dialled.
            let now = Instant::now();
            self.ask(now);
            self.connect_more();
            // Nobody to ask: the DHT is searched again, once a minute.
            if self.links.is_empty() && now.duration_since(self.last_search) >= DHT_RETRY {
                self.last_search = now;
                self.search_dht();
            }
        }
    }

    fn admit(
        &mut self,
        stream: PeerStream,
        addr: SocketAddr,
        handshake: &Handshake,
        inbound: bool,
    ) {
        let now = Instant::now();
        if !self.is_active() {
            self.roster.refused(addr, inbound, now);
            return;
        }
        let live = &self.params.live;
        if let Err(refusal) = self.roster.admit(
            addr,
            handshake.peer_id,
            self.params.our_id,
            inbound,
            live.max_peers(),
            now,
        ) {
            tracing::debug!(%addr, ?refusal, "peer turned away");
            return;
        }
        let Some(slot) = live.take_connection() else {
            self.roster.refused(addr, inbound, now);
            return;
        };
        let key = self.params.next_key.fetch_add(1, Ordering::Relaxed);
        let (tx, commands) = mpsc::unbounded_channel();
        self.roster.connected(
            key,
            PeerBook::new(
                addr,
                handshake.peer_id,
                Arc::new(PeerStats::default()),
                inbound,
            ),
        );
        self.links.insert(
            key,
            Link {
                commands: tx,
                offers: false,
                rested_until: None,
            },
        );
        let peer = FetchPeer {
            key,
            stream,
            addr,
            reply_handshake: inbound.then(|| Handshake::new(self.id, self.params.our_id)),
            capabilities: handshake.capabilities(),
            listen_port: live.listen_port(),
        };
        let events = self.fetch_events_tx.clone();
        tokio::spawn(async move {
            connection::run(peer, commands, events).await;
            drop(slot);
        });
    }

    fn connect_more(&mut self) {
        if !self.is_active() {
            return;
        }
        let live = &self.params.live;
        let dial = self.roster.pick_dials(
            Instant::now(),
            false,
            live.max_peers(),
            live.connections_free(),
        );
        for addr in dial {
            crate::engine::peer::dial(
                addr,
                self.id,
                self.params.our_id,
                live.clone(),
                self.events_tx.clone(),
            );
        }
    }

    /// The metadata is in and matches the info hash: made into a .torrent, saved, and
    /// reported. True when the actor ends (the session takes the torrent over).
    async fn fetched(&mut self, info: Vec<u8>) -> bool {
        let took = self.started.elapsed();
        tracing::info!(magnet = %self.name, bytes = info.len(), ?took, "metadata fetched");
        let trackers = self.params.link.trackers.clone();
        let made = tokio::task::spawn_blocking(move || Metainfo::from_info(&info, &trackers))
            .await
            .unwrap_or_else(|e| Err(MetainfoError::Structure(e.to_string())));
        let torrent = match made {
            Ok((bytes, meta)) => {
                self.name = meta.name;
                let (dir, id, save) = (self.params.state_dir.clone(), self.id, bytes.clone());
                let _ = tokio::task::spawn_blocking(move || {
                    if let Err(e) = resume::save_torrent(&dir, id, &save) {
                        tracing::warn!(error = %e, "could not save the fetched torrent");
                    }
                })
                .await;
                Ok(bytes)
            }
            Err(e) => Err(e),
        };
        let confirm = self.params.saved.confirm && torrent.is_ok();
        self.phase = Phase::Received;
        self.deactivate();
        if confirm {
            self.report(torrent);
            return false;
        }
        self.report_with(torrent, took);
        true
    }

    fn report(&mut self, torrent: Result<Vec<u8>, MetainfoError>) {
        self.report_with(torrent, self.started.elapsed());
    }

    fn report_with(&mut self, torrent: Result<Vec<u8>, MetainfoError>, took: Duration) {
        let mut peers = self.roster.addresses();
        peers.retain(|a| !self.shunned.contains(a));
        let _ = self.params.fetched_tx.send(Fetched {
            id: self.id,
            torrent,
            name: self.name.clone(),
            saved: self.params.saved.clone(),
            peers,
            announced_stop: self.last_stopping.take(),
            took,
        });
    }

    async fn save(&self) {
        let (dir, id, saved) = (
            self.params.state_dir.clone(),
            self.id,
            self.params.saved.clone(),
        );
        let _ = tokio::task::spawn_blocking(move || {
            if let Err(e) = resume::save_magnet(&dir, id, &saved) {
                tracing::warn!(error = %e, "could not save the magnet link");
            }
        })
        .await;
    }

    fn publish(&mut self) {
        let state = match self.phase {
            Phase::Received => TorrentState::MetadataReceived,
            Phase::Fetching if self.params.saved.paused => TorrentState::Paused,
            Phase::Fetching => TorrentState::FetchingMetadata,
        };
        let saved = &self.params.saved;
        let mut snapshot = TorrentSnapshot {
            id: self.id,
            name: self.name.clone(),
            save_dir: saved.save_dir.clone(),
            state,
            paused: saved.paused,
            seeding_enabled: saved.seeding,
            connected_peers: self.links.len() as u32,
            tracker_status: self.list.summary(),
            trackers: self.list.entries().to_vec(),
            next_announce: self.next_announce,
            swarm_seeders: self.list.swarm.0,
            swarm_leechers: self.list.swarm.1,
            peers: crate::engine::torrent::peer_snapshots(self.roster.books(), 0),
            added_at: saved.added_at,
            ..Default::default()
        };
        snapshot.findings = self.diagnose(&snapshot);
        let mut slot = self.snapshot.locked();
        if **slot != snapshot {
            *slot = Arc::new(snapshot);
            self.params.dirty.store(true, Ordering::Relaxed);
        }
    }

    /// What the swarm doctor finds while the metadata is fetched: mostly, no peers to fetch
    /// it from, and why.
    fn diagnose(&mut self, snapshot: &TorrentSnapshot) -> Vec<Finding> {
        let now = Instant::now();
        let active = self.is_active();
        let peers = health::peer_facts(self.roster.books());
        self.health.observe(active, &peers, now);
        let live = &self.params.live;
        let inbound = live.inbound.facts(live.listen_port.load(Ordering::Relaxed));
        let facts = Facts {
            state: &snapshot.state,
            finished: false,
            active,
            needs_check: false,
            trackers: &snapshot.trackers,
            sources: &snapshot.sources,
            known_addresses: self.roster.known_count(),
            peers: &peers,
            // No pieces yet: nothing can be missing from the swarm.
            ever_connected: false,
            unavailable: &Unavailable::default(),
            last_seed: None,
            swarm: (snapshot.swarm_seeders, snapshot.swarm_leechers),
            down_rate: 0,
            up_rate: 0,
            down_limit: None,
            up_limit: None,
            disk_wait: Duration::ZERO,
            inbound: &inbound,
        };
        let found = doctor::diagnose(&facts, &live.doctor);
        self.health.settle(found, live.doctor.settle, now)
    }
}
