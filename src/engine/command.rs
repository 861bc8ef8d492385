//! What front ends ask of the engine.

use std::path::PathBuf;

use super::creator::CreateTorrent;
use super::goals::{SeedGoals, TorrentGoals};
use super::session::QueueSettings;
use super::tracker::host::TrackerSettings;
use super::wanted::{DownloadPlan, FilePriority};
use crate::ids::InfoHash;

/// Where a torrent to add comes from.
#[derive(Debug, Clone)]
pub enum AddSource {
    Path(PathBuf),
    Bytes(Vec<u8>),
}

#[derive(Debug, Clone)]
pub struct AddTorrent {
    pub source: AddSource,
    pub save_dir: PathBuf,
    pub paused: bool,
    /// Keep seeding once complete.
    pub seed: bool,
    /// Which files, and in which order.
    pub plan: DownloadPlan,
}

/// A magnet link to add: its metadata is fetched from peers first.
#[derive(Debug, Clone)]
pub struct AddMagnet {
    /// The `magnet:?…` link as given.
    pub uri: String,
    pub save_dir: PathBuf,
    pub paused: bool,
    /// Keep seeding once complete.
    pub seed: bool,
    /// Once the metadata is in, wait for the front end ([`Event::ConfirmAdd`]: it adds the
    /// torrent, or removes the link) instead of starting at once.
    ///
    /// [`Event::ConfirmAdd`]: super::snapshot::Event::ConfirmAdd
    pub confirm: bool,
}

/// A request to the engine; sent over the session's command channel and never blocks.
#[derive(Debug, Clone)]
pub enum Command {
    /// Adds a .torrent. One whose magnet link is in the list takes the link's place.
    Add(AddTorrent),
    AddMagnet(AddMagnet),
    Pause(InfoHash),
    Resume(InfoHash),
    SetSeeding(InfoHash, bool),
    /// Sets the priority of a torrent's files (numbered as `TorrentSnapshot::files`).
    SetFilePriority {
        id: InfoHash,
        files: Vec<usize>,
        priority: FilePriority,
    },
    /// Pieces in order, for playing while downloading.
    SetSequential(InfoHash, bool),
    /// The first and last pieces of each wanted file first, for previews.
    SetFirstLastFirst(InfoHash, bool),
    /// Runs the torrent whatever the queue says (on), or puts it back in the queue (off).
    ForceStart(InfoHash, bool),
    /// A torrent's own seeding goals.
    SetSeedGoals(InfoHash, TorrentGoals),
    /// A torrent's own rate limits, bytes per second (0: none), beside the session's.
    SetSpeedLimits {
        id: InfoHash,
        down: u64,
        up: u64,
    },
    /// Moves a torrent's data to another folder (its save folder from then on).
    MoveData {
        id: InfoHash,
        to: PathBuf,
    },
    /// Moves torrents in the queue (their order is kept among themselves).
    MoveInQueue(Vec<InfoHash>, QueueMove),
    /// Peers to try for a torrent (or a magnet link), as if a tracker had named them.
    AddPeers(InfoHash, Vec<std::net::SocketAddr>),
    /// Adds a tracker URL (as a tier of its own) to a torrent.
    AddTracker(InfoHash, String),
    RemoveTracker(InfoHash, String),
    Remove {
        id: InfoHash,
        delete_data: bool,
    },
    /// Makes a .torrent (and seeds it, if asked); progress shows in the snapshot.
    CreateTorrent(CreateTorrent),
    /// Stops the creation with this job number.
    CancelCreate(u64),
    /// Applies new settings to the running session.
    ApplySettings(EngineSettings),
    Shutdown,
}

/// The settings that can change while the session runs.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineSettings {
    pub listen_port: u16,
    pub max_peers_per_torrent: usize,
    pub upload_slots: usize,
    /// Bytes per second; 0 is unlimited.
    pub download_limit: u64,
    pub upload_limit: u64,
    /// Files open at once across every torrent.
    pub max_open_files: usize,
    /// The folder whose free space the snapshot reports.
    pub download_dir: Option<PathBuf>,
    /// Run Rivulet's tracker, or not.
    pub tracker: Option<TrackerSettings>,
    /// Run a DHT node bootstrapping from these routers (`host:port`), or none.
    pub dht: Option<Vec<String>>,
    /// Run local service discovery (BEP 14).
    pub lsd: bool,
    /// Message stream encryption, dialling and accepting.
    pub encryption: crate::mse::EncryptionPolicy,
    /// The address or network interface every peer, tracker and DHT socket uses.
    pub bind: crate::net::Binding,
    /// Map the listen port at the home router (UPnP IGD or NAT-PMP).
    pub port_mapping: bool,
    /// Which transports peers are dialled over.
    pub transport: crate::net::TransportMode,
    /// How many torrents download and seed at once.
    pub queue: QueueSettings,
    /// When seeding torrents stop.
    pub seed_goals: SeedGoals,
}

/// Where to move torrents in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueMove {
    Up,
    Down,
    Top,
    Bottom,
}
