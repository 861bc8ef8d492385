//! What the engine tells its front ends: snapshots of every torrent, and events.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::creator::CreationSnapshot;
use super::doctor::{Finding, Severity};
use super::goals::TorrentGoals;
use super::outcome::{AddError, CreateFailure, TorrentError, TrackerStatus, TrackersSummary};
use super::tracker::host::TrackerHostState;
use super::wanted::FilePriority;
use crate::bitfield::Bitfield;
use crate::ids::InfoHash;

/// Where a torrent is in its life.
#[derive(Debug, Clone, PartialEq)]
pub enum TorrentState {
    /// A magnet link whose metadata is being fetched from peers.
    FetchingMetadata,
    /// A magnet link's metadata is in; the front end is asked whether to add the torrent.
    MetadataReceived,
    /// Verifying data already on disk; the fraction done.
    Checking(f32),
    Downloading,
    Seeding,
    /// Complete and not seeding.
    Finished,
    Paused,
    /// Waiting for a slot: the session runs only so many downloads and seeds at once.
    Queued,
    /// Its data is being moved to another folder; the fraction done.
    Moving(f32),
    /// Waiting for the network: the text says why ("network interface wg0 is down").
    Offline(String),
    Error(TorrentError),
}

/// Before anything is known, a torrent is about to be checked.
impl Default for TorrentState {
    fn default() -> Self {
        TorrentState::Checking(0.0)
    }
}

impl TorrentState {
    pub fn label(&self) -> &'static str {
        match self {
            TorrentState::FetchingMetadata => "Fetching metadata",
            TorrentState::MetadataReceived => "Metadata received",
            TorrentState::Checking(_) => "Checking",
            TorrentState::Downloading => "Downloading",
            TorrentState::Seeding => "Seeding",
            TorrentState::Finished => "Finished",
            TorrentState::Paused => "Paused",
            TorrentState::Queued => "Queued",
            TorrentState::Moving(_) => "Moving",
            TorrentState::Offline(_) => "Offline",
            TorrentState::Error(_) => "Error",
        }
    }
}

/// Download progress of one file of a torrent.
#[derive(Debug, Clone, PartialEq)]
pub struct FileProgress {
    pub path: PathBuf,
    pub length: u64,
    pub verified_bytes: u64,
    pub priority: FilePriority,
}

/// One connected peer.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerSnapshot {
    pub addr: SocketAddr,
    /// The client, decoded from its peer id.
    pub client: String,
    /// qBittorrent-style flags: D/d we download / want to, U/u we upload / they want to,
    /// I incoming connection, E encrypted (RC4), P over uTP.
    pub flags: String,
    /// Whether the connection runs over uTP (else TCP).
    pub utp: bool,
    pub down_rate: u64,
    pub up_rate: u64,
    /// Their share of the torrent, 0.0 to 1.0.
    pub progress: f32,
}

/// One tracker of a torrent.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackerSnapshot {
    pub url: String,
    pub tier: usize,
    pub status: TrackerStatus,
    pub seeders: Option<u32>,
    pub leechers: Option<u32>,
    /// Times the torrent was downloaded completely, by the tracker's scrape.
    pub completed: Option<u32>,
    pub last_announce: Option<SystemTime>,
    pub next_announce: Option<SystemTime>,
}

/// Where peers come from besides trackers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerSource {
    /// The DHT (BEP 5).
    Dht,
    /// Peer exchange (BEP 11).
    Pex,
    /// Local service discovery (BEP 14).
    Lsd,
}

impl PeerSource {
    pub fn label(&self) -> &'static str {
        match self {
            PeerSource::Dht => "DHT",
            PeerSource::Pex => "PEX",
            PeerSource::Lsd => "LSD",
        }
    }
}

/// What a source is doing for a torrent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceState {
    /// Turned off in the settings (or not built yet).
    Off,
    /// BEP 27: a private torrent takes peers from its trackers alone.
    Private,
    /// On; no search running.
    Working,
    /// A search is running.
    Searching,
}

impl std::fmt::Display for SourceState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SourceState::Off => "off",
            SourceState::Private => "off: private torrent",
            SourceState::Working => "working",
            SourceState::Searching => "searching",
        })
    }
}

/// One source of peers of a torrent, as the Trackers tab lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSnapshot {
    pub source: PeerSource,
    pub state: SourceState,
    /// Addresses it gave since the torrent started.
    pub peers: u32,
}

/// Everything a front end shows about one torrent, at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TorrentSnapshot {
    pub id: InfoHash,
    pub name: String,
    pub save_dir: PathBuf,
    pub total_size: u64,
    pub piece_length: u64,
    pub piece_count: u32,
    pub verified_bytes: u64,
    /// Bytes of the pieces wanted (those of skipped files left out; all when none is), and
    /// of those verified.
    pub wanted_size: u64,
    pub wanted_verified: u64,
    /// Of the wanted data, 0.0 to 1.0.
    pub progress: f32,
    pub state: TorrentState,
    pub paused: bool,
    /// Keep seeding once complete.
    pub seeding_enabled: bool,
    /// Waiting for a slot in the session's queue (shown as `Queued` unless paused).
    pub queued: bool,
    /// Force-started: runs whatever the queue says.
    pub forced: bool,
    /// Its own seeding goals.
    pub goals: TorrentGoals,
    /// Its own rate limits, bytes per second (0: none).
    pub down_limit: u64,
    pub up_limit: u64,
    /// Time seeded before `seeding_since`, and since when it seeds (while it does).
    pub seeding_banked: Duration,
    pub seeding_since: Option<SystemTime>,
    /// Pieces in order (rarest first within a small window).
    pub sequential: bool,
    /// The first and last pieces of each wanted file first.
    pub first_last_first: bool,
    /// Bytes per second.
    pub down_rate: u64,
    pub up_rate: u64,
    /// Payload bytes over the torrent's whole life.
    pub downloaded: u64,
    pub uploaded: u64,
    pub ratio: f32,
    pub eta: Option<Duration>,
    pub connected_seeds: u32,
    pub connected_peers: u32,
    pub swarm_seeders: Option<u32>,
    pub swarm_leechers: Option<u32>,
    pub tracker_status: TrackersSummary,
    pub next_announce: Option<SystemTime>,
    pub trackers: Vec<TrackerSnapshot>,
    /// DHT, PEX and LSD.
    pub sources: Vec<SourceSnapshot>,
    pub peers: Vec<PeerSnapshot>,
    pub files: Vec<FileProgress>,
    /// The verified pieces.
    pub pieces: Bitfield,
    /// Pieces with blocks on the way.
    pub pieces_in_progress: Vec<u32>,
    /// How many connected peers have each piece (while it runs; empty when stopped).
    pub availability: Vec<u16>,
    /// What the swarm doctor found, most important first.
    pub findings: Vec<Finding>,
    pub added_at: u64,
    pub comment: Option<String>,
    pub created_by: Option<String>,
}

impl TorrentSnapshot {
    /// The most serious finding at or above `Warning`, if any: what the table flags (the
    /// findings come most important first).
    pub fn worst_finding(&self) -> Option<&Finding> {
        self.findings
            .iter()
            .find(|f| f.severity >= Severity::Warning)
    }

    /// How long it has seeded over its life, at `now`.
    pub fn seeding_time(&self, now: SystemTime) -> Duration {
        self.seeding_banked
            + self
                .seeding_since
                .and_then(|since| now.duration_since(since).ok())
                .unwrap_or_default()
    }

    /// The torrent's magnet link: its info hash, name, size and trackers.
    pub fn magnet_link(&self) -> crate::magnet::MagnetLink {
        let mut trackers: Vec<String> = Vec::new();
        for t in &self.trackers {
            if !trackers.contains(&t.url) {
                trackers.push(t.url.clone());
            }
        }
        crate::magnet::MagnetLink {
            info_hash: self.id,
            name: Some(self.name.clone()),
            trackers,
            peers: Vec::new(),
            select_only: None,
            // Unknown (0) while a magnet link's metadata is fetched.
            exact_length: (self.total_size > 0).then_some(self.total_size),
        }
    }
}

/// The state of the whole session.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionSnapshot {
    pub torrents: Vec<Arc<TorrentSnapshot>>,
    pub listen_port: u16,
    pub down_rate: u64,
    pub up_rate: u64,
    /// Free space in the default download folder.
    pub free_space: Option<u64>,
    /// Rivulet's own tracker.
    pub tracker: TrackerHostState,
    /// Torrents being created.
    pub creating: Vec<CreationSnapshot>,
    /// The DHT node, while one runs.
    pub dht: Option<crate::dht::DhtStats>,
    /// Why the network cannot be used, while the bound interface is down.
    pub network_down: Option<String>,
    /// The listen port's mapping at the router, while port mapping is on.
    pub port_mapping: Option<crate::portmap::MappingStatus>,
}

/// Things that happened, for notifications and scripts.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Added {
        id: InfoHash,
        name: String,
    },
    /// Adding failed; `source` names the file (or "data").
    AddFailed {
        source: String,
        error: AddError,
    },
    /// The torrent was already in the session.
    Duplicate {
        id: InfoHash,
        name: String,
    },
    Completed {
        id: InfoHash,
        name: String,
    },
    /// A magnet link's metadata arrived, `took` after the fetch started.
    MetadataFetched {
        id: InfoHash,
        name: String,
        took: Duration,
    },
    /// A magnet link added with `confirm` has its metadata: the front end shows the torrent
    /// (its .torrent bytes) and answers with `Command::Add` (the torrent takes the link's
    /// place) or `Command::Remove`.
    ConfirmAdd {
        id: InfoHash,
        torrent: Arc<Vec<u8>>,
        save_dir: PathBuf,
        paused: bool,
        seed: bool,
        /// The link's BEP 53 `so`: the files it selects, to pre-select them.
        select_only: Option<Vec<std::ops::RangeInclusive<u32>>>,
    },
    Error {
        id: InfoHash,
        error: TorrentError,
    },
    Removed {
        id: InfoHash,
    },
    /// A .torrent was created and saved at `path`.
    Created {
        job: u64,
        path: PathBuf,
    },
    CreateFailed {
        job: u64,
        error: CreateFailure,
    },
}
