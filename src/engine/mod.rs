//! The engine: sessions, torrents, peers, choking, trackers, resume data.
//!
//! Front ends talk to it only through [`SessionHandle`]: [`Command`]s in, [`SessionSnapshot`]s
//! and [`Event`]s out, plus a wake-up callback. Nothing here knows about any GUI toolkit.

mod choker;
mod command;
mod config;
mod creator;
mod doctor;
mod goals;
mod limiter;
mod magnet;
pub mod metadata;
mod outcome;
mod peer;
mod picker;
mod rate;
mod resume;
mod roster;
mod session;
mod shared;
mod snapshot;
mod strikes;
mod torrent;
mod tracker;
mod wanted;

pub use command::{AddMagnet, AddSource, AddTorrent, Command, EngineSettings, QueueMove};
pub use config::{PUBLIC_DHT_ROUTERS, SessionConfig};
pub use creator::{CreateTorrent, CreationSnapshot};
pub use doctor::{DoctorSettings, Finding, FindingKind, Severity, finding_text, report};
pub use goals::{GoalAction, Limit, SeedGoals, TorrentGoals};
pub use outcome::{AddError, CreateFailure, TorrentError, TrackerStatus, TrackersSummary};
pub use resume::{copy_saved, find_saved, write_atomically};
pub use session::{QueueSettings, Session, SessionError, SessionHandle, Waker};
pub use snapshot::{
    Event, FileProgress, PeerSnapshot, PeerSource, SessionSnapshot, SourceSnapshot, SourceState,
    TorrentSnapshot, TorrentState, TrackerSnapshot,
};
pub use tracker::host::{TrackerHostState, TrackerSettings};
pub use tracker::list::{TrackerUrlError, validate_tracker_url};
pub use wanted::{DownloadPlan, FilePriority};
