//! What front ends ask of the engine.

use std::path::PathBuf;

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
}

/// A request to the engine; sent over the session's command channel and never blocks.
#[derive(Debug, Clone)]
pub enum Command {
    Add(AddTorrent),
    Pause(InfoHash),
    Resume(InfoHash),
    SetSeeding(InfoHash, bool),
    Remove {
        id: InfoHash,
        delete_data: bool,
    },
    /// Global limits in bytes per second; 0 is unlimited.
    SetRateLimits {
        download: u64,
        upload: u64,
    },
    Shutdown,
}
