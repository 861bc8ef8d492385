//! Carrying out the life cycle's steps (see [`lifecycle`](super::lifecycle)): checks on the
//! blocking pool, activity (the announcer), stops that drain the writes in flight, errors,
//! and the watch on a complete torrent's files.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::TorrentEvent;
use super::lifecycle::{self, CheckJob, Step};
use crate::engine::outcome::TorrentError;
use crate::engine::peer::PeerCommand;
use crate::engine::snapshot::Event;
use crate::engine::tracker::announcer::{AnnounceSignal, Announcer};
use crate::storage::check;
use crate::tracker::AnnounceEvent;

/// How long a stop may wait for writes in flight.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(3);
/// Files looked at by one check that a complete torrent's files are whole: a torrent of
/// thousands of files is covered over several checks, not all at once.
const FILES_PER_LOOK: usize = 256;

impl super::Torrent {
    /// Takes the step the life cycle asks for: a check, activity, or a stop.
    pub(super) async fn advance(&mut self) {
        match self.life.next_step(self.is_finished()) {
            Step::Nothing => {}
            Step::StartCheck => self.start_check(),
            Step::CancelCheck | Step::Stop => {
                self.stop().await;
                self.save_resume().await;
            }
            Step::Activate => self.activate(),
        }
    }

    pub(super) fn start_check(&mut self) {
        let job = CheckJob::default();
        self.life.check_started(job.clone());
        let meta = self.shared.meta.clone();
        let storage = self.shared.storage();
        let events = self.inbox.events_tx.clone();
        tokio::task::spawn_blocking(move || {
            let have = check::check_existing(&meta, &storage, &job.progress, &job.cancel);
            let _ = events.send(TorrentEvent::CheckDone {
                have,
                cancelled: job.cancel.load(Ordering::Relaxed),
            });
        });
    }

    pub(super) fn activate(&mut self) {
        // Folders and zero-length files (no piece write creates those), off the async workers.
        let (storage, events) = (self.shared.storage(), self.inbox.events_tx.clone());
        tokio::task::spawn_blocking(move || {
            if let Err(e) = storage.create_empty_files() {
                let _ = events.send(TorrentEvent::StorageFailed(TorrentError::from(&e)));
            }
        });
        let tiers = self.trackers.list.tiers().to_vec();
        let announcer = (!tiers.is_empty()).then(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(
                Announcer {
                    stats: self.shared.clone(),
                    trackers: self.params.trackers.clone(),
                    tiers,
                    live: self.params.live.clone(),
                    signals: rx,
                    events: self.inbox.events_tx.clone(),
                    first_event: AnnounceEvent::Started,
                    after_stop: self.trackers.last_stopping.take(),
                }
                .run(),
            );
            tx
        });
        self.life.activated(announcer);
        self.sources.restarted(std::time::Instant::now());
        self.register_lsd();
        // Rates count from now: no ghost of the rate before a pause.
        self.publisher.restart_rates(
            self.shared.downloaded.load(Ordering::Relaxed),
            self.shared.uploaded.load(Ordering::Relaxed),
        );
        tracing::info!(torrent = %self.shared.meta.name, "started");
    }

    /// Stops all activity: a check is cancelled; an active torrent sends `stopped` to its
    /// trackers, disconnects its peers and drains its writes. The announcer sends `stopped`
    /// on its own; what to await for it is kept for shutdown and for the next `started`.
    pub(super) async fn stop(&mut self) {
        if let lifecycle::State::Checking(job) = self.life.state() {
            // CheckDone will arrive and find the torrent stopped.
            job.cancel.store(true, Ordering::Relaxed);
            return;
        }
        let Some(announcer) = self.life.begin_stop() else {
            return;
        };
        self.sources.lsd_stopped();
        if let Some(announcer) = announcer {
            let (done, wait) = oneshot::channel();
            let _ = announcer.send(AnnounceSignal::Stop(done));
            self.trackers.last_stopping = Some(wait);
        }
        self.roster.stopping();
        for link in self.shared.peers().values() {
            let _ = link.tx.send(PeerCommand::Disconnect);
        }
        self.drain_writes().await;
        {
            let mut picker = self.shared.picker();
            picker.discard_partials();
            picker.free_spare_buffers();
        }
        self.life.stopped();
    }

    /// Waits (bounded) until every piece handed to the disk has been reported.
    pub(super) async fn drain_writes(&mut self) {
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        while self.shared.picker().verifying_count() > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.inbox.events.recv()).await {
                Ok(Some(event)) => self.handle_event(event).await,
                _ => break,
            }
        }
    }

    /// Stops the torrent with an error, until the user resumes it.
    pub(super) async fn fail(&mut self, error: TorrentError) {
        tracing::warn!(torrent = %self.shared.meta.name, %error, "torrent error");
        let _ = self.params.session_events.send(Event::Error {
            id: self.shared.meta.info_hash,
            error: error.clone(),
        });
        self.stop().await;
        self.life.fail(error);
    }

    /// A seeder's files deleted or truncated underneath it: found by a stat of each file (on
    /// the blocking pool, [`FILES_PER_LOOK`] files a time, in turn), then a recheck.
    pub(super) fn check_files_whole(&mut self) {
        if self
            .chores
            .files_check_running
            .swap(true, Ordering::Relaxed)
        {
            return;
        }
        let (storage, events) = (self.shared.storage(), self.inbox.events_tx.clone());
        let running = self.chores.files_check_running.clone();
        let start = self.chores.files_cursor;
        let end = (start + FILES_PER_LOOK).min(storage.file_count());
        self.chores.files_cursor = if end >= storage.file_count() { 0 } else { end };
        tokio::task::spawn_blocking(move || {
            if let Some(problem) = storage.missing_or_short(start..end) {
                let _ = events.send(TorrentEvent::DataMissing(problem));
            }
            running.store(false, Ordering::Relaxed);
        });
    }
}
