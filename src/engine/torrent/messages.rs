//! What goes into a torrent actor and what the session holds of it: [`TorrentEvent`]s from
//! its peers, the disk and its tracker tasks; [`TorrentCommand`]s from the session; the
//! [`TorrentParams`] it starts with; the [`TorrentHandle`] the session keeps.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crate::engine::peer::PeerStream;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::oneshot;

use crate::bitfield::Bitfield;
use crate::engine::config::LiveSettings;
use crate::engine::goals::TorrentGoals;
use crate::engine::limiter::RateLimiter;
use crate::engine::outcome::TorrentError;
use crate::engine::picker::PeerKey;
use crate::engine::resume::ResumeData;
use crate::engine::snapshot::{Event, PeerSource, TorrentSnapshot};
use crate::engine::tracker::announcer::TrackerUpdate;
use crate::engine::tracker::scraper::ScrapeUpdate;
use crate::engine::wanted::{DownloadPlan, FilePriority};
use crate::ids::PeerId;
use crate::metainfo::Metainfo;
use crate::storage::disk::{Disk, PieceOutcome};
use crate::storage::{FilePool, FileStamp, Storage};
use crate::tracker::TrackerClient;
use crate::wire::Handshake;

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
        stream: PeerStream,
        addr: SocketAddr,
        handshake: Handshake,
        inbound: bool,
    },
    ConnectFailed {
        addr: SocketAddr,
    },
    /// Addresses from a source other than the trackers: a peer's `ut_pex` (BEP 11), the
    /// DHT (BEP 5), local discovery (BEP 14).
    PeersFound {
        source: PeerSource,
        peers: Vec<SocketAddr>,
    },
    /// A DHT search ended.
    DhtSearchDone,
    /// An announce to this tracker is on its way.
    TrackerUpdating(String),
    Tracker(TrackerUpdate),
    Scraped(ScrapeUpdate),
    NextAnnounce(SystemTime),
    /// The save folder could not be prepared.
    StorageFailed(TorrentError),
    /// Data we have verified could not be read back (a file deleted or truncated): recheck.
    DataMissing(String),
    CheckDone {
        have: Bitfield,
        cancelled: bool,
    },
    ResumeStamped(Vec<Option<FileStamp>>),
    /// A move of the data ended: the new folder and its storage, or why it failed (the data
    /// is then where it was).
    Moved(Result<(PathBuf, Arc<Storage>), TorrentError>),
}

/// Orders from the session.
pub(crate) enum TorrentCommand {
    Pause,
    Resume,
    SetSeeding(bool),
    /// Files (numbered as users see them) and their new priority.
    SetFilePriority(Vec<usize>, FilePriority),
    SetSequential(bool),
    SetFirstLastFirst(bool),
    /// The session's queue has no slot for it (true), or now has one.
    SetQueued(bool),
    /// Force-started: the queue leaves it running.
    SetForced(bool),
    SetGoals(TorrentGoals),
    /// The torrent's own rate limits, bytes per second (0: none).
    SetSpeedLimits {
        down: u64,
        up: u64,
    },
    /// Moves the data to this folder.
    MoveData(PathBuf),
    /// Addresses to dial, from the user.
    AddPeers(Vec<SocketAddr>),
    /// The network went down (with why), or is up (`None`) after coming back or moving to
    /// other addresses.
    Network(Option<String>),
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
    /// The session's open files.
    pub files: Arc<FilePool>,
    pub disk: Disk,
    pub down_limit: Arc<RateLimiter>,
    pub up_limit: Arc<RateLimiter>,
    pub next_key: Arc<AtomicU64>,
    pub session_events: UnboundedSender<Event>,
    /// Raised whenever the snapshot changes.
    pub dirty: Arc<AtomicBool>,
    /// Addresses to dial at once (those a magnet link's fetch found).
    pub peers: Vec<SocketAddr>,
    /// The `stopped` announces of a magnet link's fetch, which our `started` waits for.
    pub after_stop: Option<oneshot::Receiver<()>>,
    /// Which files, and in which order (the resume data's, or the add's).
    pub plan: DownloadPlan,
    /// Starts queued (the session's queue is on: it gives the slot) or not.
    pub queued: bool,
    /// Force-started (the resume data's).
    pub forced: bool,
    /// Its own seeding goals (the resume data's).
    pub goals: TorrentGoals,
    /// Its own rate limits, bytes per second (0: none).
    pub speed_limits: (u64, u64),
}

/// The session's handle on a running torrent actor.
pub(crate) struct TorrentHandle {
    pub commands: UnboundedSender<TorrentCommand>,
    pub events: UnboundedSender<TorrentEvent>,
    pub snapshot: Arc<Mutex<Arc<TorrentSnapshot>>>,
}
