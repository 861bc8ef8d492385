//! [`TorrentShared`]: the live state of one torrent that its peer connections share.
//!
//! Lock order: `peers` before `picker` is never needed; each lock is taken alone, held only for
//! in-memory work, and never across an `.await`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use tokio::sync::mpsc::UnboundedSender;

use super::limiter::RateLimiter;
use super::peer::PeerLink;
use super::picker::{PeerKey, Picker};
use super::torrent::TorrentEvent;
use crate::ids::PeerId;
use crate::metainfo::Metainfo;
use crate::storage::Storage;
use crate::storage::disk::Disk;
use crate::sync::{MutexExt, RwLockExt};

pub(crate) struct TorrentShared {
    pub meta: Arc<Metainfo>,
    pub our_id: PeerId,
    /// Replaced only while the torrent is stopped (a move of its data).
    pub storage: RwLock<Arc<Storage>>,
    pub disk: Disk,
    pub picker: Mutex<Picker>,
    pub peers: Mutex<HashMap<PeerKey, PeerLink>>,
    pub events: UnboundedSender<TorrentEvent>,
    /// The session's limits, shared by every torrent.
    pub down_limit: Arc<RateLimiter>,
    pub up_limit: Arc<RateLimiter>,
    /// This torrent's own limits (0: none).
    pub torrent_down_limit: RateLimiter,
    pub torrent_up_limit: RateLimiter,
    /// Payload bytes received and sent since the torrent was added (resume data included).
    pub downloaded: AtomicU64,
    pub uploaded: AtomicU64,
}

impl TorrentShared {
    pub fn storage(&self) -> Arc<Storage> {
        self.storage.read_locked().clone()
    }

    pub fn picker(&self) -> MutexGuard<'_, Picker> {
        self.picker.locked()
    }

    pub fn peers(&self) -> MutexGuard<'_, HashMap<PeerKey, PeerLink>> {
        self.peers.locked()
    }

    pub fn add_downloaded(&self, n: u64) {
        self.downloaded.fetch_add(n, Ordering::Relaxed);
    }

    pub fn add_uploaded(&self, n: u64) {
        self.uploaded.fetch_add(n, Ordering::Relaxed);
    }
}
