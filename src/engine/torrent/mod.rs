//! The actor that runs one torrent. It owns the torrent's components and carries out what they
//! decide:
//! - [`lifecycle`]: the states a torrent can be in and what moves it between them (read its
//!   module doc first);
//! - the [`PeerRoster`] (`engine::roster`): connections, addresses to dial, bans, choking
//!   rounds;
//! - [`snapshot`]: the [`TorrentSnapshot`] front ends see, built by pure functions;
//! - [`saving`]: resume data, saved when it changed;
//! - the tracker list, the announcer and the scraper, from `engine::tracker`.
//!
//! The actor's own code: this file (the loop, commands, events, ticks), [`transitions`]
//! (carrying out the life cycle's steps) and [`peering`] (dialling, admitting, choking).
//!
//! Peer connections, the disk and the tracker tasks report through [`TorrentEvent`]s; the
//! session drives it with [`TorrentCommand`]s (see [`messages`]).

pub(crate) mod health;
mod lifecycle;
mod messages;
mod peering;
mod saving;
mod snapshot;
mod sources;
mod transitions;

pub(crate) use messages::{TorrentCommand, TorrentEvent, TorrentHandle, TorrentParams};
pub(crate) use snapshot::peer_snapshots;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio::sync::oneshot;

use self::health::Health;
use self::lifecycle::Lifecycle;
use self::saving::{Record, ResumeSaver};
use self::snapshot::{Parts, Publisher};
use self::sources::PeerSources;
use super::doctor::{self, Facts, Finding, LimitFacts, Unavailable};
use super::limiter::RateLimiter;
use super::outcome::TorrentError;
use super::peer::PeerCommand;
use super::picker::{PeerKey, Picker};
use super::resume;
use super::roster::PeerRoster;
use super::shared::TorrentShared;
use super::snapshot::Event;
use super::tracker::announcer::AnnounceSignal;
use super::tracker::list::TrackerList;
use super::tracker::scraper::Scraper;
use super::wanted::DownloadPlan;
use crate::bitfield::Bitfield;
use crate::storage::Storage;
use crate::storage::disk::PieceOutcome;
use crate::storage::relocate::{self, MoveProgress};
use crate::sync::RwLockExt;

const TICK: Duration = Duration::from_millis(200);
/// The longest a quiet torrent (active, no peers, nothing moving) sleeps: nothing in its
/// snapshot changes by itself, so it wakes only for its chores (a save, a look at its
/// files, an address to dial once its back-off ends), for events and for commands.
const QUIET_SLEEP: Duration = Duration::from_secs(30);
/// How often a complete torrent looks at (a share of) its files to see they are still whole;
/// a quiet one, which serves nobody, less often.
const FILES_CHECK_EVERY: Duration = Duration::from_secs(10);
const QUIET_FILES_CHECK_EVERY: Duration = Duration::from_secs(60);
/// How often peers are told about the torrent's other peers (BEP 11: once a minute).
const PEX_EVERY: Duration = Duration::from_secs(60);

/// The actor's channels.
struct Inbox {
    commands: UnboundedReceiver<TorrentCommand>,
    events: UnboundedReceiver<TorrentEvent>,
    /// For tasks the actor starts, to report back.
    events_tx: UnboundedSender<TorrentEvent>,
}

/// The torrent's trackers: the list and its statuses, the scraper, and the `stopped`
/// announces of the last announcer, which the next `started` (and shutdown) waits for.
struct Trackers {
    list: TrackerList,
    _scraper: Scraper,
    next_announce: Option<SystemTime>,
    last_stopping: Option<oneshot::Receiver<()>>,
}

/// Once-a-second chores.
struct Chores {
    last_second: Instant,
    last_files_check: Instant,
    /// The first file the next look at the files starts from.
    files_cursor: usize,
    /// A look at the files is running (one at a time).
    files_check_running: Arc<AtomicBool>,
    last_pex: Instant,
}

/// How long the torrent has seeded (active with every wanted piece), over its life.
#[derive(Default)]
struct SeedingClock {
    banked: Duration,
    since: Option<(Instant, SystemTime)>,
}

impl SeedingClock {
    /// Starts or stops the clock as the torrent seeds or not.
    fn set(&mut self, seeding: bool) {
        match (seeding, self.since) {
            (true, None) => self.since = Some((Instant::now(), SystemTime::now())),
            (false, Some((at, _))) => {
                self.banked += at.elapsed();
                self.since = None;
            }
            _ => {}
        }
    }

    fn total(&self) -> Duration {
        self.banked + self.since.map_or(Duration::ZERO, |(at, _)| at.elapsed())
    }
}

struct Torrent {
    shared: Arc<TorrentShared>,
    seeding_clock: SeedingClock,
    params: TorrentParams,
    inbox: Inbox,
    life: Lifecycle,
    roster: PeerRoster,
    trackers: Trackers,
    saver: ResumeSaver,
    publisher: Publisher,
    chores: Chores,
    sources: PeerSources,
    health: Health,
}

/// Builds the torrent's shared state and starts its actor.
pub(crate) fn spawn(mut params: TorrentParams) -> TorrentHandle {
    let (commands_tx, commands) = mpsc::unbounded_channel();
    let (events_tx, events) = mpsc::unbounded_channel();
    let meta = params.meta.clone();
    let mut picker = Picker::new(
        meta.piece_count(),
        meta.piece_length,
        meta.total_length,
        params.piece_buffer_budget,
    );
    picker.set_plan(params.plan.piece_priorities(&meta), params.plan.sequential);
    let resume = params.resume.take();
    let (downloaded, uploaded) = resume
        .as_ref()
        .map_or((0, 0), |r| (r.downloaded, r.uploaded));
    let seeding_clock = SeedingClock {
        banked: Duration::from_secs(resume.as_ref().map_or(0, |r| r.seeding_secs)),
        since: None,
    };
    // Resume data that parses is trusted only if the files are as it recorded (ResumeStamped).
    let usable = resume.as_ref().is_some_and(|r| {
        Bitfield::from_bytes(&r.have, meta.piece_count())
            .map(|have| picker.set_have(have))
            .is_ok()
    });
    let shared = Arc::new(TorrentShared {
        meta: meta.clone(),
        our_id: params.our_id,
        storage: RwLock::new(Arc::new(Storage::new(
            &meta,
            &params.save_dir,
            params.files.clone(),
        ))),
        disk: params.disk.clone(),
        picker: Mutex::new(picker),
        peers: Mutex::new(Default::default()),
        events: events_tx.clone(),
        down_limit: params.down_limit.clone(),
        up_limit: params.up_limit.clone(),
        torrent_down_limit: RateLimiter::new(params.speed_limits.0),
        torrent_up_limit: RateLimiter::new(params.speed_limits.1),
        downloaded: AtomicU64::new(downloaded),
        uploaded: AtomicU64::new(uploaded),
    });
    let list = TrackerList::new(
        meta.trackers(),
        resume.as_ref().and_then(|r| r.trackers.clone()),
    );
    let scraper = Scraper::spawn(
        params.trackers.clone(),
        meta.info_hash,
        list.watch_urls(),
        events_tx.clone(),
    );
    let mut life = Lifecycle::new(params.paused, params.seeding, usable);
    life.set_queued(params.queued);
    life.set_offline(params.live.reach().down().map(str::to_string));
    let mut roster = PeerRoster::default();
    roster.learn(&params.peers, params.live.listen_addr());
    let saver = ResumeSaver::new(
        params.state_dir.clone(),
        meta.info_hash,
        meta.piece_count(),
        resume,
    );
    let mut torrent = Torrent {
        inbox: Inbox {
            commands,
            events,
            events_tx: events_tx.clone(),
        },
        life,
        roster,
        trackers: Trackers {
            list,
            _scraper: scraper,
            next_announce: None,
            // A magnet link's fetch said `stopped`: our `started` comes after.
            last_stopping: params.after_stop.take(),
        },
        saver,
        publisher: Publisher::new(downloaded, uploaded, params.dirty.clone()),
        chores: Chores {
            last_second: Instant::now(),
            // Spread over the interval: torrents added together do not look all at once.
            last_files_check: Instant::now()
                .checked_sub(Duration::from_millis(rand::random_range(0..10_000)))
                .unwrap_or_else(Instant::now),
            files_cursor: 0,
            files_check_running: Arc::new(AtomicBool::new(false)),
            last_pex: Instant::now(),
        },
        sources: PeerSources::new(Instant::now()),
        health: Health::default(),
        shared,
        seeding_clock,
        params,
    };
    torrent.publish_snapshot();
    let snapshot = torrent.publisher.slot();
    tokio::spawn(torrent.run());
    TorrentHandle {
        commands: commands_tx,
        events: events_tx,
        snapshot,
    }
}

impl Torrent {
    async fn run(mut self) {
        // Skipped files are parked before anything is written (and a wanted file's bytes
        // left in the parts file by a change cut short go back to it).
        if let Err(e) = self.park_skipped_files(&self.params.plan).await {
            self.fail(e).await;
        }
        if matches!(self.life.state(), lifecycle::State::ConfirmingResume) {
            // Resume data is trusted only if every file has the size and mtime it recorded.
            let storage = self.shared.storage();
            let events = self.inbox.events_tx.clone();
            tokio::task::spawn_blocking(move || {
                let _ = events.send(TorrentEvent::ResumeStamped(storage.stamps()));
            });
        } else {
            self.advance().await;
        }
        if !self.life.is_busy() {
            // A new torrent that waits (added paused) is saved now, so a restart restores it.
            self.save_if_changed().await;
        }
        let mut next_tick = tokio::time::Instant::now();
        loop {
            tokio::select! {
                command = self.inbox.commands.recv() => {
                    let Some(command) = command else { return };
                    if !self.handle_command(command).await {
                        return;
                    }
                    if !self.life.is_busy() {
                        // No tick comes to save it later.
                        self.save_if_changed().await;
                    }
                    self.publish_snapshot();
                    next_tick = next_tick.min(self.next_tick());
                }
                Some(event) = self.inbox.events.recv() => {
                    self.handle_event(event).await;
                    if !self.life.is_busy() {
                        // No tick comes to save it later.
                        self.save_if_changed().await;
                    }
                    // A busy torrent's next tick publishes it.
                    if !self.life.is_busy() || self.is_quiet() {
                        self.publish_snapshot();
                    }
                    // A quiet torrent that has peers now ticks often again.
                    next_tick = next_tick.min(self.next_tick());
                }
                // Only a checking or active torrent ticks: a stopped one has nothing that
                // changes by itself, and publishes when a command or an event changes it, so
                // a thousand paused torrents never wake; a quiet one ticks once a second.
                _ = tokio::time::sleep_until(next_tick), if self.life.is_busy() => {
                    self.on_tick().await;
                    next_tick = self.next_tick();
                }
            }
        }
    }

    /// Every wanted piece is verified (the torrent's "Done").
    fn is_finished(&self) -> bool {
        self.shared.picker().is_finished()
    }

    /// Tells the storage which files are skipped (their share of pieces goes to the parts
    /// file; one wanted again takes its bytes back), on the blocking pool.
    async fn park_skipped_files(&self, plan: &DownloadPlan) -> Result<(), TorrentError> {
        let storage = self.shared.storage();
        let skipped = plan.skipped_files(&self.shared.meta);
        match tokio::task::spawn_blocking(move || storage.set_skipped(&skipped)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(TorrentError::from(&e)),
            Err(e) => Err(TorrentError::Io {
                path: self.params.save_dir.clone(),
                message: e.to_string(),
            }),
        }
    }

    /// Changes which files are wanted or the order pieces come in; it takes effect at once:
    /// the picker, the peers' interest, and (once every wanted piece is in) completion.
    /// The plan changes only once the storage has taken it (a file wanted again has its
    /// bytes back from the parts file), so a failure leaves the old one in force.
    async fn change_plan(&mut self, change: impl FnOnce(&mut DownloadPlan, usize)) {
        let mut plan = self.params.plan.clone();
        change(&mut plan, self.shared.meta.visible_files().count());
        if plan == self.params.plan {
            return;
        }
        if self.life.is_moving() {
            let error = TorrentError::Io {
                path: self.params.save_dir.clone(),
                message: "cannot change the files while the data is moved; try again after".into(),
            };
            let _ = self.params.session_events.send(Event::Error {
                id: self.shared.meta.info_hash,
                error,
            });
            return;
        }
        let meta = self.shared.meta.clone();
        if plan.skipped_files(&meta) != self.params.plan.skipped_files(&meta)
            && let Err(e) = self.park_skipped_files(&plan).await
        {
            return self.fail(e).await;
        }
        self.params.plan = plan;
        let was_finished = self.is_finished();
        self.shared.picker().set_plan(
            self.params.plan.piece_priorities(&meta),
            self.params.plan.sequential,
        );
        for link in self.shared.peers().values() {
            let _ = link.tx.send(PeerCommand::WantedChanged);
        }
        self.saver.changed();
        if !was_finished && self.is_finished() && self.life.data_known() {
            self.on_complete().await;
        } else {
            self.advance().await;
        }
    }

    /// Active with no peer connected or being dialled and no bytes moving: nothing in its
    /// snapshot changes by itself.
    fn is_quiet(&self) -> bool {
        self.life.is_active()
            && self.roster.is_empty()
            && self.publisher.down.rate() == 0
            && self.publisher.up.rate() == 0
    }

    /// Carries out a command; returns false when the actor should end.
    async fn handle_command(&mut self, command: TorrentCommand) -> bool {
        match command {
            TorrentCommand::Pause => {
                self.life.set_paused(true);
                self.saver.changed();
                self.advance().await;
                self.save_if_changed().await;
            }
            TorrentCommand::Resume => {
                self.life.set_paused(false);
                self.saver.changed();
                self.advance().await;
            }
            TorrentCommand::SetSeeding(on) => {
                self.life.set_seeding(on);
                self.saver.changed();
                self.advance().await;
            }
            TorrentCommand::SetFilePriority(files, priority) => {
                self.change_plan(|plan, count| plan.set_priority(count, &files, priority))
                    .await;
            }
            TorrentCommand::SetSequential(on) => {
                self.change_plan(|plan, _| plan.sequential = on).await;
            }
            TorrentCommand::SetFirstLastFirst(on) => {
                self.change_plan(|plan, _| plan.first_last_first = on).await;
            }
            TorrentCommand::SetQueued(queued) => {
                if queued != self.life.queued() {
                    self.life.set_queued(queued);
                    self.advance().await;
                }
            }
            TorrentCommand::SetForced(on) => {
                self.params.forced = on;
                self.saver.changed();
            }
            TorrentCommand::SetSpeedLimits { down, up } => {
                self.params.speed_limits = (down, up);
                self.shared.torrent_down_limit.set_rate(down);
                self.shared.torrent_up_limit.set_rate(up);
                self.saver.changed();
            }
            TorrentCommand::MoveData(to) => self.move_data(to).await,
            TorrentCommand::SetGoals(goals) => {
                self.params.goals = goals;
                self.saver.changed();
            }
            TorrentCommand::Network(offline) => {
                // Down, or moved to other addresses: connections made from the old ones end,
                // and the swarm starts again from the new ones (if up).
                if self.life.is_active() {
                    self.stop().await;
                }
                self.life.set_offline(offline);
                self.advance().await;
            }
            TorrentCommand::AddPeers(peers) => {
                self.roster.learn(&peers, self.params.live.listen_addr());
                if self.life.is_active() {
                    self.connect_more();
                }
            }
            TorrentCommand::AddTracker(url) => {
                if self.trackers.list.add(url) {
                    self.trackers_changed().await;
                }
            }
            TorrentCommand::RemoveTracker(url) => {
                if self.trackers.list.remove(&url) {
                    self.trackers_changed().await;
                }
            }
            TorrentCommand::Remove { delete_data, done } => {
                self.finish_move().await;
                self.stop().await;
                let storage = self.shared.storage();
                let (state_dir, id) = (self.params.state_dir.clone(), self.shared.meta.info_hash);
                let _ = tokio::task::spawn_blocking(move || {
                    resume::remove(&state_dir, id);
                    if delete_data {
                        storage.delete_files();
                    }
                })
                .await;
                let _ = done.send(());
                return false;
            }
            TorrentCommand::Shutdown(done) => {
                self.finish_move().await;
                self.stop().await;
                self.save_resume().await;
                if let Some(wait) = self.trackers.last_stopping.take() {
                    let _ = wait.await;
                }
                let _ = done.send(());
                return false;
            }
        }
        true
    }

    /// Moves the data to `to` on the blocking pool, once the torrent has left its swarm; it
    /// shows `Moving` with its progress meanwhile, and goes on from the new folder.
    async fn move_data(&mut self, to: PathBuf) {
        if to == self.params.save_dir || self.life.is_moving() {
            return;
        }
        if matches!(self.life.state(), lifecycle::State::Checking(_)) {
            let error = TorrentError::Io {
                path: to,
                message: "cannot move while the data is checked; try again once it is done".into(),
            };
            let _ = self.params.session_events.send(Event::Error {
                id: self.shared.meta.info_hash,
                error,
            });
            return;
        }
        let progress = Arc::new(MoveProgress::default());
        self.life.set_moving(Some(progress.clone()));
        self.advance().await;
        let (storage, from) = (self.shared.storage(), self.params.save_dir.clone());
        let (meta, pool) = (self.shared.meta.clone(), self.params.files.clone());
        let events = self.inbox.events_tx.clone();
        tracing::info!(torrent = %meta.name, from = %from.display(), to = %to.display(), "moving the data");
        tokio::task::spawn_blocking(move || {
            // A piece still on its way to the disk fails from here on and is picked again.
            storage.retire();
            let files = storage.existing_files();
            drop(storage);
            let moved = relocate::move_files(&files, &from, &to, &progress)
                .map(|()| (to.clone(), Arc::new(Storage::new(&meta, &to, pool))));
            let _ = events.send(TorrentEvent::Moved(
                moved.map_err(|e| TorrentError::from(&e)),
            ));
        });
    }

    /// Waits for a move of the data to end (before a shutdown or a removal).
    async fn finish_move(&mut self) {
        while self.life.is_moving() {
            match self.inbox.events.recv().await {
                Some(event) => self.handle_event(event).await,
                None => return,
            }
        }
    }

    /// Tells the announcer about an edited tracker list, and saves it.
    async fn trackers_changed(&mut self) {
        let tiers = self.trackers.list.tiers().to_vec();
        if let Some(announcer) = self.life.announcer() {
            let _ = announcer.send(AnnounceSignal::SetTiers(tiers));
        } else if self.life.is_active() && !tiers.is_empty() {
            // An active torrent that had no trackers gets an announcer by restarting.
            self.stop().await;
            self.advance().await;
        }
        self.saver.changed();
        self.save_resume().await;
    }

    /// Boxed because it recurses: a stop drains writes by handling the events that report
    /// them, and some events stop the torrent.
    fn handle_event(
        &mut self,
        event: TorrentEvent,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            match event {
                TorrentEvent::PeerClosed {
                    key,
                    reason,
                    both_seeds,
                } => {
                    self.shared.peers().remove(&key);
                    if let Some(book) = self.roster.closed(key, both_seeds, Instant::now()) {
                        tracing::debug!(torrent = %self.shared.meta.name, addr = %book.addr, reason, "peer closed");
                    }
                }
                TorrentEvent::PeerInterest { key, interested } => {
                    if interested {
                        self.unchoke_if_slot_free(key);
                    }
                }
                TorrentEvent::PieceDone {
                    index,
                    outcome,
                    contributors,
                    buffer,
                } => {
                    self.shared.picker().recycle(buffer);
                    self.on_piece_done(index, outcome, contributors).await
                }
                TorrentEvent::Handshaken {
                    stream,
                    addr,
                    handshake,
                    inbound,
                } => self.admit(stream, addr, &handshake, inbound),
                TorrentEvent::ConnectFailed { addr } => {
                    self.roster.dial_failed(addr, Instant::now());
                }
                TorrentEvent::PeersFound { source, peers } => {
                    // BEP 27: a private torrent's peers come from its trackers alone.
                    if !self.shared.meta.private {
                        self.sources.found(source, peers.len());
                        self.roster.learn(&peers, self.params.live.listen_addr());
                        if self.life.is_active() {
                            self.connect_more();
                        }
                    }
                }
                TorrentEvent::Tracker(update) => {
                    self.roster
                        .learn(&update.peers, self.params.live.listen_addr());
                    self.trackers.list.on_announce(&update);
                    // New peers are dialled now, not at the next one-second tick.
                    if !update.peers.is_empty() && self.life.is_active() {
                        self.connect_more();
                    }
                }
                TorrentEvent::DhtSearchDone => self.sources.dht_done(),
                TorrentEvent::TrackerUpdating(url) => self.trackers.list.on_updating(&url),
                TorrentEvent::Scraped(update) => self.trackers.list.on_scrape(&update),
                TorrentEvent::NextAnnounce(at) => self.trackers.next_announce = Some(at),
                TorrentEvent::DataMissing(message) => {
                    if self.life.data_known() && !self.life.is_moving() {
                        tracing::warn!(torrent = %self.shared.meta.name, %message, "data went missing; rechecking");
                        // Marked first: nothing saved during the stop claims the lost pieces.
                        self.life.data_missing();
                        self.stop().await;
                        self.advance().await;
                    }
                }
                TorrentEvent::StorageFailed(error) => self.fail(error).await,
                TorrentEvent::CheckDone { have, cancelled } => {
                    if !cancelled {
                        tracing::info!(torrent = %self.shared.meta.name, pieces = have.count_ones(), "check finished");
                        self.shared.picker().set_have(have);
                    }
                    self.life.check_done(cancelled);
                    if !cancelled {
                        self.saver.changed();
                        self.save_resume().await;
                    }
                    self.advance().await;
                }
                TorrentEvent::Moved(moved) => {
                    match moved {
                        Ok((to, storage)) => {
                            *self.shared.storage.write_locked() = storage;
                            self.params.save_dir = to;
                            self.life.set_moving(None);
                            if let Err(e) = self.park_skipped_files(&self.params.plan).await {
                                self.fail(e).await;
                            }
                            self.saver.changed();
                            self.save_resume().await;
                        }
                        Err(error) => {
                            tracing::warn!(torrent = %self.shared.meta.name, %error, "the data could not be moved");
                            // The old folder's storage takes writes again.
                            let storage = Storage::new(
                                &self.shared.meta,
                                &self.params.save_dir,
                                self.params.files.clone(),
                            );
                            *self.shared.storage.write_locked() = Arc::new(storage);
                            self.life.set_moving(None);
                            if let Err(e) = self.park_skipped_files(&self.params.plan).await {
                                self.fail(e).await;
                            }
                            let _ = self.params.session_events.send(Event::Error {
                                id: self.shared.meta.info_hash,
                                error,
                            });
                        }
                    }
                    self.advance().await;
                }
                TorrentEvent::ResumeStamped(stamps) => {
                    let unchanged = stamps == self.saver.loaded_stamps();
                    if !unchanged {
                        tracing::info!(torrent = %self.shared.meta.name, "files changed since last run; rechecking");
                    }
                    self.life.resume_confirmed(unchanged);
                    self.advance().await;
                }
            }
        })
    }

    async fn on_piece_done(
        &mut self,
        index: u32,
        outcome: PieceOutcome,
        contributors: Vec<PeerKey>,
    ) {
        match outcome {
            PieceOutcome::Written => {
                let completed = {
                    let mut picker = self.shared.picker();
                    let was_finished = picker.is_finished();
                    picker.piece_verified(index, true);
                    !was_finished && picker.is_finished()
                };
                self.roster.piece_passed(&contributors);
                for link in self.shared.peers().values() {
                    let _ = link.tx.send(PeerCommand::Have(index));
                }
                self.saver.changed();
                if completed {
                    self.on_complete().await;
                }
            }
            PieceOutcome::HashMismatch => {
                self.shared.picker().piece_verified(index, false);
                tracing::warn!(torrent = %self.shared.meta.name, index, "piece failed its hash check");
                let (banned, drop) = self.roster.piece_failed(&contributors);
                for ip in banned {
                    tracing::warn!(torrent = %self.shared.meta.name, %ip, "banning an address that sent bad data");
                }
                let links = self.shared.peers();
                for key in drop {
                    if let Some(link) = links.get(&key) {
                        let _ = link.tx.send(PeerCommand::Disconnect);
                    }
                }
            }
            // Written through the storage of a folder the data is leaving: picked again.
            PieceOutcome::WriteFailed(crate::storage::StorageError::Moved(_)) => {
                self.shared.picker().piece_verified(index, false);
            }
            PieceOutcome::WriteFailed(e) => {
                self.shared.picker().piece_verified(index, false);
                self.fail(TorrentError::from(&e)).await;
            }
        }
    }

    async fn on_complete(&mut self) {
        tracing::info!(torrent = %self.shared.meta.name, "download complete");
        self.shared.picker().free_spare_buffers();
        // Trackers count complete copies: one with files skipped is not one.
        if let Some(announcer) = self.life.announcer()
            && self.shared.picker().is_complete()
        {
            let _ = announcer.send(AnnounceSignal::Completed);
        }
        self.save_resume().await;
        let _ = self.params.session_events.send(Event::Completed {
            id: self.shared.meta.info_hash,
            name: self.shared.meta.name.clone(),
        });
        self.advance().await;
    }

    async fn on_tick(&mut self) {
        let now = Instant::now();
        let quiet = self.is_quiet();
        if now.duration_since(self.chores.last_second) >= Duration::from_secs(1) {
            self.chores.last_second = now;
            self.publisher
                .down
                .update(self.shared.downloaded.load(Ordering::Relaxed));
            self.publisher
                .up
                .update(self.shared.uploaded.load(Ordering::Relaxed));
            self.roster.measure();
            if self.life.is_active() {
                self.connect_more();
                self.choke_round(now);
                if now.duration_since(self.chores.last_pex) >= PEX_EVERY {
                    self.chores.last_pex = now;
                    self.exchange_peers();
                }
                self.search_dht(now);
                let files_every = if quiet {
                    QUIET_FILES_CHECK_EVERY
                } else {
                    FILES_CHECK_EVERY
                };
                if self.shared.picker().is_complete()
                    && now.duration_since(self.chores.last_files_check) >= files_every
                {
                    self.chores.last_files_check = now;
                    self.check_files_whole();
                }
            }
            if self.saver.due(now) {
                self.save_resume().await;
            }
        }
        // A quiet torrent ticks only for its chores (the doctor's findings among them), so
        // its snapshot is rebuilt then.
        self.publish_snapshot();
    }

    /// When the next tick is due: after [`TICK`], or for a quiet torrent its next chore.
    fn next_tick(&self) -> tokio::time::Instant {
        let wait = if self.is_quiet() {
            self.quiet_sleep()
        } else {
            TICK
        };
        tokio::time::Instant::now() + wait
    }

    /// How long a quiet torrent may sleep: until its next chore, at most [`QUIET_SLEEP`].
    fn quiet_sleep(&self) -> Duration {
        let now = Instant::now();
        let live = &self.params.live;
        let complete = self.shared.picker().is_complete();
        let chores = [
            complete.then(|| self.chores.last_files_check + QUIET_FILES_CHECK_EVERY),
            self.saver.due_at(),
            self.roster.next_dial_at(self.is_finished(), now),
            (!self.shared.meta.private && self.params.live.dht().is_some())
                .then(|| self.sources.next_dht()),
            self.health.next_settled(live.doctor.settle, now),
            Some(live.inbound.silent_at(live.doctor.inbound_silence)).filter(|at| *at > now),
        ];
        let until = chores
            .into_iter()
            .flatten()
            .fold(now + QUIET_SLEEP, Instant::min);
        until.saturating_duration_since(now).max(TICK)
    }

    async fn save_if_changed(&mut self) {
        if self.saver.is_changed() {
            self.save_resume().await;
        }
    }

    async fn save_resume(&mut self) {
        if self.life.is_moving() {
            // The files are between two folders: the save after the move records them.
            return;
        }
        let have = self
            .life
            .data_known()
            .then(|| self.shared.picker().have().clone());
        let record = Record {
            save_dir: self.params.save_dir.clone(),
            paused: self.life.paused(),
            seeding: self.life.seeding(),
            have,
            downloaded: self.shared.downloaded.load(Ordering::Relaxed),
            uploaded: self.shared.uploaded.load(Ordering::Relaxed),
            added_at: self.params.added_at,
            trackers: self.trackers.list.saved(),
            plan: self.params.plan.clone(),
            forced: self.params.forced,
            goals: self.params.goals,
            seeding_secs: self.seeding_clock.total().as_secs(),
            speed_limits: self.params.speed_limits,
        };
        self.saver.save(self.shared.storage(), record).await;
    }

    fn snapshot(&mut self) -> super::snapshot::TorrentSnapshot {
        let meta = self.shared.meta.clone();
        let active = self.life.is_active();
        let (have, have_bytes, wanted, finished, pieces_in_progress, availability, unavailable) = {
            let picker = self.shared.picker();
            let finished = picker.is_finished();
            (
                picker.have().clone(),
                picker.have_bytes(),
                picker.wanted_bytes(),
                finished,
                picker.in_progress(),
                match active {
                    true => picker
                        .availability()
                        .iter()
                        .map(|&a| u16::try_from(a).unwrap_or(u16::MAX))
                        .collect(),
                    false => Vec::new(),
                },
                match active && !finished {
                    true => health::unavailable(&picker),
                    false => Unavailable::default(),
                },
            )
        };
        let connected_seeds = self
            .roster
            .books()
            .filter(|p| p.stats.is_seed.load(Ordering::Relaxed))
            .count() as u32;
        let mut snapshot = snapshot::build(Parts {
            meta: &meta,
            save_dir: self.params.save_dir.clone(),
            added_at: self.params.added_at,
            state: self.life.shown(finished, meta.piece_count()),
            paused: self.life.paused(),
            seeding: self.life.seeding(),
            queued: self.life.queued(),
            forced: self.params.forced,
            goals: self.params.goals,
            speed_limits: self.params.speed_limits,
            seeding_banked: self.seeding_clock.banked,
            seeding_since: self.seeding_clock.since.map(|(_, at)| at),
            active: self.life.is_active(),
            files: self.publisher.files(&meta, &have, &self.params.plan),
            plan: &self.params.plan,
            have,
            have_bytes,
            wanted,
            pieces_in_progress,
            downloaded: self.shared.downloaded.load(Ordering::Relaxed),
            uploaded: self.shared.uploaded.load(Ordering::Relaxed),
            down_rate: self.publisher.down.rate(),
            up_rate: self.publisher.up.rate(),
            peers: snapshot::peer_snapshots(self.roster.books(), meta.piece_count()),
            connected_seeds,
            swarm: self.trackers.list.swarm,
            tracker_status: self.trackers.list.summary(),
            trackers: self.trackers.list.entries().to_vec(),
            sources: self
                .sources
                .snapshot(meta.private, self.params.live.dht().is_some()),
            next_announce: self.trackers.next_announce,
        });
        snapshot.availability = availability;
        snapshot.findings = self.diagnose(&snapshot, finished, &unavailable);
        snapshot
    }

    /// What the swarm doctor finds now (those findings whose cause has held long enough).
    fn diagnose(
        &mut self,
        snapshot: &super::snapshot::TorrentSnapshot,
        finished: bool,
        unavailable: &Unavailable,
    ) -> Vec<Finding> {
        let now = Instant::now();
        let active = self.life.is_active();
        let peers = health::peer_facts(self.roster.books());
        self.health.observe(active, &peers, now);
        let live = &self.params.live;
        let inbound = live.inbound.facts(live.listen_port.load(Ordering::Relaxed));
        let shared = &self.shared;
        let facts = Facts {
            state: &snapshot.state,
            finished,
            active,
            needs_check: self.life.paused()
                && matches!(self.life.state(), lifecycle::State::NeedsCheck),
            trackers: &snapshot.trackers,
            sources: &snapshot.sources,
            known_addresses: self.roster.known_count(),
            peers: &peers,
            ever_connected: self.health.ever_connected(),
            unavailable,
            last_seed: self.health.last_seed(now),
            swarm: (snapshot.swarm_seeders, snapshot.swarm_leechers),
            down_rate: snapshot.down_rate,
            up_rate: snapshot.up_rate,
            down_limit: limit_facts(&shared.torrent_down_limit, &shared.down_limit),
            up_limit: limit_facts(&shared.torrent_up_limit, &shared.up_limit),
            disk_wait: shared.disk.write_wait(),
            inbound: &inbound,
        };
        let found = doctor::diagnose(&facts, &live.doctor);
        self.health.settle(found, live.doctor.settle, now)
    }

    fn publish_snapshot(&mut self) {
        let seeding = self.life.is_active() && self.is_finished();
        self.seeding_clock.set(seeding);
        let snapshot = self.snapshot();
        self.publisher.publish(snapshot);
    }
}

/// A limit of ours (the torrent's own first, then the session's) that made transfers wait in
/// the last two seconds.
fn limit_facts(own: &RateLimiter, session: &RateLimiter) -> Option<LimitFacts> {
    const WINDOW: Duration = Duration::from_secs(2);
    if own.throttled_within(WINDOW) {
        Some(LimitFacts {
            rate: own.rate(),
            own: true,
        })
    } else {
        session.throttled_within(WINDOW).then(|| LimitFacts {
            rate: session.rate(),
            own: false,
        })
    }
}
