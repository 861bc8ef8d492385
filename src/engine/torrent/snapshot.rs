//! A torrent's [`TorrentSnapshot`], made by pure functions from what the actor gathers, and
//! published to the session only when it changed.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::bitfield::Bitfield;
use crate::engine::goals::TorrentGoals;
use crate::engine::outcome::TrackersSummary;
use crate::engine::rate::RateMeter;
use crate::engine::roster::PeerBook;
use crate::engine::snapshot::{
    FileProgress, PeerSnapshot, SourceSnapshot, TorrentSnapshot, TorrentState, TrackerSnapshot,
};
use crate::engine::wanted::{DownloadPlan, FilePriority};
use crate::metainfo::Metainfo;
use crate::sync::MutexExt;

/// Everything a snapshot is made of, at one moment.
pub(super) struct Parts<'a> {
    pub meta: &'a Metainfo,
    pub save_dir: PathBuf,
    pub added_at: u64,
    pub state: TorrentState,
    pub paused: bool,
    pub seeding: bool,
    pub queued: bool,
    pub forced: bool,
    pub goals: TorrentGoals,
    pub speed_limits: (u64, u64),
    pub seeding_banked: Duration,
    pub seeding_since: Option<SystemTime>,
    /// Connected to the swarm: rates and the next announce are shown.
    pub active: bool,
    pub have: Bitfield,
    pub have_bytes: u64,
    /// Bytes of the wanted pieces, and of those verified.
    pub wanted: (u64, u64),
    pub plan: &'a DownloadPlan,
    pub pieces_in_progress: Vec<u32>,
    pub downloaded: u64,
    pub uploaded: u64,
    pub down_rate: u64,
    pub up_rate: u64,
    pub peers: Vec<PeerSnapshot>,
    pub connected_seeds: u32,
    pub swarm: (Option<u32>, Option<u32>),
    pub tracker_status: TrackersSummary,
    pub trackers: Vec<TrackerSnapshot>,
    pub sources: Vec<SourceSnapshot>,
    pub next_announce: Option<SystemTime>,
    pub files: Vec<FileProgress>,
}

pub(super) fn build(p: Parts<'_>) -> TorrentSnapshot {
    let meta = p.meta;
    // Once every wanted piece is in, nothing is downloaded: the meter's decay is not shown.
    let done = matches!(p.state, TorrentState::Seeding | TorrentState::Finished);
    let (down_rate, up_rate) = match (p.active, done) {
        (true, false) => (p.down_rate, p.up_rate),
        (true, true) => (0, p.up_rate),
        (false, _) => (0, 0),
    };
    let (wanted_size, wanted_verified) = p.wanted;
    let left = wanted_size.saturating_sub(wanted_verified);
    TorrentSnapshot {
        id: meta.info_hash,
        name: meta.name.clone(),
        save_dir: p.save_dir,
        total_size: meta.total_length,
        piece_length: meta.piece_length,
        piece_count: meta.piece_count(),
        verified_bytes: p.have_bytes,
        wanted_size,
        wanted_verified,
        progress: if wanted_size == 0 {
            1.0
        } else {
            wanted_verified as f32 / wanted_size as f32
        },
        state: p.state,
        paused: p.paused,
        seeding_enabled: p.seeding,
        queued: p.queued,
        forced: p.forced,
        goals: p.goals,
        down_limit: p.speed_limits.0,
        up_limit: p.speed_limits.1,
        seeding_banked: p.seeding_banked,
        seeding_since: p.seeding_since,
        sequential: p.plan.sequential,
        first_last_first: p.plan.first_last_first,
        down_rate,
        up_rate,
        downloaded: p.downloaded,
        uploaded: p.uploaded,
        // As qBittorrent: what a torrent seeded from the start (nothing downloaded) shares
        // counts against the data it has.
        ratio: match p.downloaded.max(p.have_bytes) {
            0 => 0.0,
            base => p.uploaded as f32 / base as f32,
        },
        eta: (down_rate > 0 && left > 0).then(|| Duration::from_secs(left / down_rate)),
        connected_seeds: p.connected_seeds,
        connected_peers: (p.peers.len() as u32).saturating_sub(p.connected_seeds),
        swarm_seeders: p.swarm.0,
        swarm_leechers: p.swarm.1,
        tracker_status: p.tracker_status,
        next_announce: p.next_announce.filter(|_| p.active),
        trackers: p.trackers,
        sources: p.sources,
        peers: p.peers,
        files: p.files,
        pieces: p.have,
        pieces_in_progress: p.pieces_in_progress,
        availability: Vec::new(),
        findings: Vec::new(),
        added_at: p.added_at,
        comment: meta.comment.clone(),
        created_by: meta.created_by.clone(),
    }
}

/// Verified bytes of each file a user sees (no padding), from the verified pieces.
pub(super) fn file_progress(meta: &Metainfo, have: &Bitfield) -> Vec<FileProgress> {
    meta.visible_files()
        .map(|f| {
            let mut verified = 0;
            if f.length > 0 {
                let first = f.offset / meta.piece_length;
                let last = (f.offset + f.length - 1) / meta.piece_length;
                for piece in first..=last {
                    if u32::try_from(piece).is_ok_and(|i| have.get(i)) {
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
                priority: FilePriority::Normal,
            }
        })
        .collect()
}

/// qBittorrent-style flags: D/d we download / want to, U/u we upload / they want to,
/// I incoming, E encrypted (MSE with RC4), P over uTP.
fn flags(book: &PeerBook) -> String {
    let s = &book.stats;
    let load = |b: &AtomicBool| b.load(Ordering::Relaxed);
    let downloading = !load(&s.peer_choking) && load(&s.am_interested);
    [
        (downloading, 'D'),
        (!downloading && load(&s.am_interested), 'd'),
        (!load(&s.am_choking), 'U'),
        (load(&s.am_choking) && load(&s.peer_interested), 'u'),
        (book.inbound, 'I'),
        (load(&s.encrypted), 'E'),
        (load(&s.utp), 'P'),
    ]
    .into_iter()
    .filter_map(|(on, c)| on.then_some(c))
    .collect()
}

/// The connected peers, by address.
pub(crate) fn peer_snapshots<'a>(
    books: impl Iterator<Item = &'a PeerBook>,
    piece_count: u32,
) -> Vec<PeerSnapshot> {
    let count = piece_count.max(1) as f32;
    let mut peers: Vec<PeerSnapshot> = books
        .map(|p| PeerSnapshot {
            addr: p.addr,
            client: p.client_name(),
            flags: flags(p),
            utp: p.stats.utp.load(Ordering::Relaxed),
            down_rate: p.down.rate(),
            up_rate: p.up.rate(),
            progress: p.stats.pieces.load(Ordering::Relaxed) as f32 / count,
        })
        .collect();
    peers.sort_by_key(|p| p.addr);
    peers
}

/// Where the torrent's snapshot is published, with the torrent-wide rates and the per-file
/// progress (recomputed only when the verified pieces change).
pub(super) struct Publisher {
    slot: Arc<Mutex<Arc<TorrentSnapshot>>>,
    /// Raised whenever the snapshot changes.
    dirty: Arc<AtomicBool>,
    pub down: RateMeter,
    pub up: RateMeter,
    files: Option<(u32, Vec<FileProgress>)>,
}

impl Publisher {
    /// Rates count from these totals (those of the resume data).
    pub fn new(downloaded: u64, uploaded: u64, dirty: Arc<AtomicBool>) -> Self {
        Self {
            down: RateMeter::new(downloaded),
            up: RateMeter::new(uploaded),
            slot: Arc::default(),
            dirty,
            files: None,
        }
    }

    pub fn restart_rates(&mut self, downloaded: u64, uploaded: u64) {
        self.down = RateMeter::new(downloaded);
        self.up = RateMeter::new(uploaded);
    }

    pub fn slot(&self) -> Arc<Mutex<Arc<TorrentSnapshot>>> {
        self.slot.clone()
    }

    /// Per-file progress for these verified pieces (from the cache while their count
    /// holds) and each file's priority.
    pub fn files(
        &mut self,
        meta: &Metainfo,
        have: &Bitfield,
        plan: &DownloadPlan,
    ) -> Vec<FileProgress> {
        let count = have.count_ones();
        let mut files = match &self.files {
            Some((cached, files)) if *cached == count => files.clone(),
            _ => {
                let files = file_progress(meta, have);
                self.files = Some((count, files.clone()));
                files
            }
        };
        for (i, f) in files.iter_mut().enumerate() {
            f.priority = plan.priority(i);
        }
        files
    }

    pub fn publish(&mut self, snapshot: TorrentSnapshot) {
        let mut slot = self.slot.locked();
        if **slot != snapshot {
            *slot = Arc::new(snapshot);
            self.dirty.store(true, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::engine::peer::PeerStats;
    use crate::ids::PeerId;

    /// Files of 1,000 and 3,000 bytes in 1 KiB pieces: piece 0 holds file a and 24 bytes of b.
    fn meta() -> Metainfo {
        crate::metainfo::tests::two_files_meta(1000, 3000, 1024)
    }

    static PLAN: DownloadPlan = DownloadPlan {
        priorities: Vec::new(),
        sequential: true,
        first_last_first: false,
    };

    fn parts(meta: &Metainfo, have: Bitfield) -> Parts<'_> {
        Parts {
            wanted: (4000, 16),
            plan: &PLAN,
            meta,
            save_dir: "/downloads".into(),
            added_at: 1,
            state: TorrentState::Downloading,
            paused: false,
            seeding: true,
            queued: false,
            forced: false,
            goals: Default::default(),
            speed_limits: (0, 0),
            seeding_banked: Duration::ZERO,
            seeding_since: None,
            active: true,
            have_bytes: 16,
            have,
            pieces_in_progress: vec![1],
            downloaded: 200,
            uploaded: 100,
            down_rate: 8,
            up_rate: 3,
            peers: Vec::new(),
            connected_seeds: 0,
            swarm: (Some(1), Some(2)),
            tracker_status: TrackersSummary::NoTrackers,
            trackers: Vec::new(),
            sources: Vec::new(),
            next_announce: Some(SystemTime::UNIX_EPOCH),
            files: Vec::new(),
        }
    }

    #[test]
    fn files_count_the_verified_bytes_of_the_pieces_they_share() {
        let meta = meta();
        let mut have = Bitfield::new(meta.piece_count());
        have.set(0);
        let files = file_progress(&meta, &have);
        assert_eq!(files[0].verified_bytes, 1000);
        assert_eq!(files[1].verified_bytes, 24);
        have.set(3);
        let files = file_progress(&meta, &have);
        assert_eq!(
            files[1].verified_bytes,
            24 + 928,
            "the last piece is 928 bytes long"
        );
    }

    #[test]
    fn rates_eta_and_ratio_follow_the_counters() {
        let meta = meta();
        let s = build(parts(&meta, Bitfield::new(meta.piece_count())));
        assert_eq!(s.down_rate, 8);
        assert_eq!(s.eta, Some(Duration::from_secs((4000 - 16) / 8)));
        assert_eq!(s.ratio, 0.5);
        assert_eq!(s.progress, 16.0 / 4000.0);
        assert_eq!(s.next_announce, Some(SystemTime::UNIX_EPOCH));
        assert!(s.sequential && !s.first_last_first);
        let seeding = build(Parts {
            state: TorrentState::Seeding,
            ..parts(&meta, Bitfield::new(meta.piece_count()))
        });
        assert_eq!(
            (seeding.down_rate, seeding.up_rate),
            (0, 3),
            "a finished torrent's download rate is 0 at once"
        );

        // With a file skipped, progress and the ETA count the wanted data alone.
        let skipping = build(Parts {
            wanted: (1024, 512),
            ..parts(&meta, Bitfield::new(meta.piece_count()))
        });
        assert_eq!(skipping.progress, 0.5);
        assert_eq!(skipping.eta, Some(Duration::from_secs(512 / 8)));
        assert_eq!(skipping.verified_bytes, 16);

        let stopped = build(Parts {
            active: false,
            ..parts(&meta, Bitfield::new(meta.piece_count()))
        });
        assert_eq!(
            (stopped.down_rate, stopped.up_rate, stopped.eta),
            (0, 0, None)
        );
        assert_eq!(stopped.next_announce, None);
    }

    #[test]
    fn peer_flags_say_who_downloads_and_uploads() {
        let book = PeerBook::new(
            SocketAddr::from(([127, 0, 0, 1], 5)),
            PeerId(*b"-RV0100-abcdefghijkl"),
            Arc::new(PeerStats::default()),
            true,
        );
        book.stats.am_interested.store(true, Ordering::Relaxed);
        book.stats.peer_interested.store(true, Ordering::Relaxed);
        assert_eq!(flags(&book), "duI");
        book.stats.peer_choking.store(false, Ordering::Relaxed);
        book.stats.am_choking.store(false, Ordering::Relaxed);
        assert_eq!(flags(&book), "DUI");
        book.stats.pieces.store(1, Ordering::Relaxed);
        let shown = peer_snapshots([&book].into_iter(), 3);
        assert_eq!(shown[0].client, "Rivulet 0.1");
        assert_eq!(shown[0].progress, 1.0 / 3.0);
    }

    #[test]
    fn publishing_the_same_snapshot_raises_nothing() {
        let meta = meta();
        let dirty = Arc::new(AtomicBool::new(false));
        let first = build(parts(&meta, Bitfield::new(meta.piece_count())));
        let mut publisher = Publisher::new(0, 0, dirty.clone());
        publisher.publish(first.clone());
        assert!(dirty.swap(false, Ordering::Relaxed));
        publisher.publish(first.clone());
        assert!(!dirty.load(Ordering::Relaxed));
        publisher.publish(TorrentSnapshot {
            uploaded: 101,
            ..first
        });
        assert!(dirty.load(Ordering::Relaxed));
        assert_eq!(publisher.slot().locked().uploaded, 101);
    }
}
