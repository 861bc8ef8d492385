//! [`ResumeSaver`]: when and what a torrent saves of itself, so that a restart resumes it as
//! it was. Saved at most every [`SAVE_EVERY`] while something changed, and at once on pause,
//! completion, a finished check, tracker edits and shutdown; written atomically on the
//! blocking pool. A save that claims pieces first makes the files written since the last one
//! durable (`fdatasync`), so a power cut never leaves resume data claiming bytes the disk lost.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::bitfield::Bitfield;
use crate::engine::resume::{self, ResumeData};
use crate::ids::InfoHash;
use crate::storage::{FileStamp, Storage};

/// Why a save did not happen (it is tried again at the next one).
#[derive(Debug, thiserror::Error)]
enum SaveError {
    #[error("the downloaded data could not be made durable: {0}")]
    Sync(crate::storage::StorageError),
    #[error(transparent)]
    Write(std::io::Error),
}

pub(super) const SAVE_EVERY: Duration = Duration::from_secs(10);

/// What the torrent is now, as the resume file records it.
pub(super) struct Record {
    pub save_dir: PathBuf,
    pub paused: bool,
    pub seeding: bool,
    /// The verified pieces, once known (checked, or resume data confirmed).
    pub have: Option<Bitfield>,
    pub downloaded: u64,
    pub uploaded: u64,
    pub added_at: u64,
    pub trackers: Option<Vec<Vec<String>>>,
    pub plan: crate::engine::wanted::DownloadPlan,
    pub forced: bool,
    pub goals: crate::engine::goals::TorrentGoals,
    pub seeding_secs: u64,
    pub speed_limits: (u64, u64),
}

pub(super) struct ResumeSaver {
    state_dir: PathBuf,
    id: InfoHash,
    piece_count: u32,
    /// What was loaded at start: until the data is known, its pieces and stamps are kept.
    loaded: Option<ResumeData>,
    last_save: Instant,
    dirty: bool,
}

impl ResumeSaver {
    pub fn new(
        state_dir: PathBuf,
        id: InfoHash,
        piece_count: u32,
        loaded: Option<ResumeData>,
    ) -> Self {
        Self {
            // A torrent restored from its resume file has nothing new to save yet.
            dirty: loaded.is_none(),
            state_dir,
            id,
            piece_count,
            loaded,
            last_save: Instant::now(),
        }
    }

    /// File stamps recorded in the loaded resume data.
    pub fn loaded_stamps(&self) -> Vec<Option<FileStamp>> {
        self.loaded
            .as_ref()
            .map(|r| r.stamps.clone())
            .unwrap_or_default()
    }

    pub fn changed(&mut self) {
        self.dirty = true;
    }

    pub fn is_changed(&self) -> bool {
        self.dirty
    }

    /// When a save falls due, if something changed.
    pub fn due_at(&self) -> Option<Instant> {
        self.dirty.then(|| self.last_save + SAVE_EVERY)
    }

    pub fn due(&self, now: Instant) -> bool {
        self.dirty && now.duration_since(self.last_save) >= SAVE_EVERY
    }

    /// Saves `record`. Verified pieces are claimed only when known: until then what was
    /// loaded is kept (or nothing is claimed), and the next start checks.
    pub async fn save(&mut self, storage: Arc<Storage>, record: Record) {
        self.last_save = Instant::now();
        self.dirty = false;
        let (have, kept_stamps) = match (record.have, &self.loaded) {
            (Some(have), _) => (have.as_bytes().to_vec(), None),
            (None, Some(old)) => (old.have.clone(), Some(old.stamps.clone())),
            (None, None) => (
                Bitfield::new(self.piece_count).as_bytes().to_vec(),
                Some(Vec::new()),
            ),
        };
        let data = ResumeData {
            save_dir: record.save_dir,
            paused: record.paused,
            seeding: record.seeding,
            have,
            stamps: Vec::new(),
            downloaded: record.downloaded,
            uploaded: record.uploaded,
            added_at: record.added_at,
            trackers: record.trackers,
            plan: record.plan,
            forced: record.forced,
            goals: record.goals,
            seeding_secs: record.seeding_secs,
            speed_limits: record.speed_limits,
        };
        let (state_dir, id) = (self.state_dir.clone(), self.id);
        let saved = tokio::task::spawn_blocking(move || {
            let stamps = match kept_stamps {
                Some(kept) => kept,
                None => {
                    // Every piece claimed below was written before this point: its bytes reach
                    // the disk before the claim does.
                    storage.sync_written().map_err(SaveError::Sync)?;
                    storage.stamps()
                }
            };
            resume::save(&state_dir, id, &ResumeData { stamps, ..data }).map_err(SaveError::Write)
        })
        .await;
        if let Ok(Err(e)) = saved {
            tracing::warn!(error = %e, "could not save resume data");
            self.dirty = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metainfo::tests::two_files_meta;

    fn record(have: Option<Bitfield>) -> Record {
        Record {
            save_dir: "/downloads".into(),
            paused: true,
            seeding: false,
            have,
            downloaded: 5,
            uploaded: 6,
            added_at: 7,
            trackers: None,
            plan: Default::default(),
            forced: false,
            goals: Default::default(),
            seeding_secs: 0,
            speed_limits: (0, 0),
        }
    }

    #[test]
    fn saves_come_at_most_every_ten_seconds_while_changed() {
        let meta = two_files_meta(1000, 3000, 1024);
        let mut saver = ResumeSaver::new("/state".into(), meta.info_hash, 4, None);
        assert!(saver.is_changed(), "a new torrent has never been saved");
        let now = Instant::now();
        assert!(!saver.due(now), "not before ten seconds");
        assert!(saver.due(now + SAVE_EVERY));
        saver.dirty = false;
        assert!(!saver.due(now + SAVE_EVERY), "nothing changed");
        saver.changed();
        assert!(saver.is_changed() && saver.due(now + SAVE_EVERY));
    }

    #[tokio::test]
    async fn unknown_data_keeps_what_was_loaded_and_known_data_replaces_it() {
        let dir = tempfile::tempdir().unwrap();
        let meta = two_files_meta(1000, 3000, 1024);
        let storage = Arc::new(Storage::new(&meta, dir.path(), Arc::default()));
        let loaded = ResumeData {
            save_dir: dir.path().into(),
            paused: false,
            seeding: true,
            have: vec![0b1010_0000],
            stamps: vec![None, None],
            downloaded: 1,
            uploaded: 2,
            added_at: 3,
            trackers: None,
            plan: Default::default(),
            forced: false,
            goals: Default::default(),
            seeding_secs: 0,
            speed_limits: (0, 0),
        };
        let state = dir.path().join("state");
        let mut saver = ResumeSaver::new(state.clone(), meta.info_hash, 4, Some(loaded));
        saver.save(storage.clone(), record(None)).await;
        let saved = resume::load(&state, meta.info_hash).unwrap().unwrap();
        assert_eq!(saved.have, vec![0b1010_0000], "the loaded pieces are kept");
        assert_eq!(
            (saved.paused, saved.downloaded),
            (true, 5),
            "the rest is new"
        );
        assert!(!saver.is_changed());

        let mut have = Bitfield::new(4);
        have.set(3);
        saver.save(storage, record(Some(have))).await;
        let saved = resume::load(&state, meta.info_hash).unwrap().unwrap();
        assert_eq!(saved.have, vec![0b0001_0000]);

        let mut fresh = ResumeSaver::new(state.clone(), meta.info_hash, 4, None);
        let storage = Arc::new(Storage::new(&meta, dir.path(), Arc::default()));
        fresh.save(storage, record(None)).await;
        let saved = resume::load(&state, meta.info_hash).unwrap().unwrap();
        assert_eq!(saved.have, vec![0], "nothing is claimed before a check");
    }

    /// A model of the page cache: a file's bytes survive a power cut only as they were at its
    /// last sync; a file never synced keeps its size but reads back as zeros.
    #[derive(Clone, Default)]
    struct PageCache(Arc<std::sync::Mutex<std::collections::HashMap<PathBuf, Vec<u8>>>>);

    impl PageCache {
        fn syncer(&self) -> crate::storage::Syncer {
            let durable = self.0.clone();
            Arc::new(move |path, _file| {
                durable
                    .lock()
                    .unwrap()
                    .insert(path.to_path_buf(), std::fs::read(path)?);
                Ok(())
            })
        }

        fn power_cut(&self, paths: &[PathBuf]) {
            let durable = self.0.lock().unwrap();
            for path in paths {
                let Ok(length) = std::fs::metadata(path).map(|m| m.len()) else {
                    continue;
                };
                let mut survived = durable.get(path).cloned().unwrap_or_default();
                survived.resize(length as usize, 0);
                std::fs::write(path, survived).unwrap();
            }
        }
    }

    #[tokio::test]
    async fn resume_data_claims_only_pieces_a_power_cut_cannot_take_back() {
        let dir = tempfile::tempdir().unwrap();
        let meta = two_files_meta(3000, 5000, 1024);
        let cache = PageCache::default();
        let storage =
            Arc::new(Storage::new(&meta, dir.path(), Arc::default()).with_syncer(cache.syncer()));
        let piece = |i: u32| vec![i as u8 + 1; meta.piece_len(i) as usize];
        let mut saver = ResumeSaver::new(dir.path().join("state"), meta.info_hash, 8, None);
        let mut have = Bitfield::new(8);
        // Pieces 0-2 lie in `a` and `b`; 5 only in `b`. A save claims them.
        for i in [0, 1, 2, 5] {
            storage.write(i as u64 * 1024, &piece(i)).unwrap();
            have.set(i);
        }
        saver
            .save(storage.clone(), record(Some(have.clone())))
            .await;
        // Written after that save, never claimed: lost in the power cut.
        for i in [3, 6] {
            storage.write(i as u64 * 1024, &piece(i)).unwrap();
        }
        let paths: Vec<PathBuf> = meta
            .files
            .iter()
            .map(|f| dir.path().join(&f.path))
            .collect();
        cache.power_cut(&paths);

        let saved = resume::load(&dir.path().join("state"), meta.info_hash)
            .unwrap()
            .unwrap();
        assert_eq!(saved.have, have.as_bytes(), "the saved pieces are claimed");
        let storage = Storage::new(&meta, dir.path(), Arc::default());
        for i in (0..8).filter(|&i| have.get(i)) {
            let mut back = vec![0; meta.piece_len(i) as usize];
            storage.read(i as u64 * 1024, &mut back).unwrap();
            assert_eq!(back, piece(i), "claimed piece {i} survived the power cut");
        }
    }
}
