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
    /// Applies new settings to the running session.
    ApplySettings(EngineSettings),
    Shutdown,
}

/// The settings that can change while the session runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineSettings {
    pub listen_port: u16,
    pub max_peers_per_torrent: usize,
    pub upload_slots: usize,
    /// Bytes per second; 0 is unlimited.
    pub download_limit: u64,
    pub upload_limit: u64,
    /// The folder whose free space the snapshot reports.
    pub download_dir: Option<PathBuf>,
}
