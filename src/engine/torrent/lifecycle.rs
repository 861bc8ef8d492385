//! A torrent's life cycle: the states it can be in, what moves it between them, and what the
//! actor must do next. Pure bookkeeping: the actor carries out the [`Step`]s (checking on the
//! blocking pool, starting the announcer, disconnecting peers) and reports back.
//!
//! The user's wishes, `paused` and `seeding`, are kept beside the state, and the session's
//! queue (`queued`: no slot for it now); together with "complete" (every wanted piece is in)
//! they decide whether the torrent should be connected to its swarm.
//!
//! | state | meaning | leaves for |
//! |---|---|---|
//! | `ConfirmingResume` | at start, resume data exists: the files' sizes and mtimes are compared with it | `Stopped` if they match, `NeedsCheck` if not |
//! | `NeedsCheck` | what is on disk is unknown | `Checking` unless paused |
//! | `Checking` | verifying the data on disk, piece by piece | `Stopped` when done; `NeedsCheck` when cancelled by a pause |
//! | `Stopped` | data known, nothing running (paused, queued, or complete and not seeding) | `Active` when wanted |
//! | `Active` | connected to the swarm: downloading, or seeding once complete | `Stopping` on pause, on completion without seeding, on lost data (marked: a check follows) or a disk error |
//! | `Stopping` | peers disconnected, trackers told, writes in flight drained | `Stopped`; `NeedsCheck` if data went missing; `Failed` on a disk error |
//! | `Failed` | a disk error; stays until the user resumes | `Stopped` on resume, or `NeedsCheck` if the data was not known (the error came during a check, or data went missing) |
//!
//! A move of the data ("set location", `moving`) keeps the torrent out of the swarm (an active
//! one stops first) until the files are in their new folder.
//!
//! Remove and shutdown end the actor from any state, after the same stop.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use tokio::sync::mpsc::UnboundedSender;

use crate::engine::outcome::TorrentError;
use crate::engine::snapshot::TorrentState;
use crate::engine::tracker::announcer::AnnounceSignal;
use crate::storage::relocate::MoveProgress;

/// A check of the data on disk, running on the blocking pool.
#[derive(Clone, Default)]
pub(super) struct CheckJob {
    /// Pieces checked so far.
    pub progress: Arc<AtomicU32>,
    pub cancel: Arc<AtomicBool>,
}

pub(super) enum State {
    ConfirmingResume,
    NeedsCheck,
    Checking(CheckJob),
    Stopped,
    Active {
        /// The announcer's signal channel, when the torrent has trackers.
        announcer: Option<UnboundedSender<AnnounceSignal>>,
        /// Verified data went missing: check once stopped.
        lost: bool,
    },
    Stopping {
        /// Check once stopped: verified data went missing.
        recheck: bool,
    },
    Failed {
        error: TorrentError,
        /// Data went missing after the failure: check before going on.
        recheck: bool,
    },
}

/// What the actor should do to bring the torrent where it ought to be.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Step {
    Nothing,
    StartCheck,
    CancelCheck,
    Activate,
    Stop,
}

pub(super) struct Lifecycle {
    state: State,
    paused: bool,
    seeding: bool,
    /// Waiting for a slot in the session's queue.
    queued: bool,
    /// The data is being moved to another folder.
    moving: Option<Arc<MoveProgress>>,
    /// Why the network cannot be used (the bound interface is down): the swarm waits.
    offline: Option<String>,
}

impl Lifecycle {
    /// A torrent with resume data starts by confirming it; one without, by a check.
    pub fn new(paused: bool, seeding: bool, has_resume: bool) -> Self {
        let state = if has_resume {
            State::ConfirmingResume
        } else {
            State::NeedsCheck
        };
        Self {
            state,
            paused,
            seeding,
            queued: false,
            moving: None,
            offline: None,
        }
    }

    pub fn is_moving(&self) -> bool {
        self.moving.is_some()
    }

    pub fn set_moving(&mut self, moving: Option<Arc<MoveProgress>>) {
        self.moving = moving;
    }

    pub fn queued(&self) -> bool {
        self.queued
    }

    pub fn set_queued(&mut self, queued: bool) {
        self.queued = queued;
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    pub fn paused(&self) -> bool {
        self.paused
    }

    pub fn seeding(&self) -> bool {
        self.seeding
    }

    fn wants_swarm(&self, complete: bool) -> bool {
        !self.paused
            && !self.queued
            && self.moving.is_none()
            && self.offline.is_none()
            && (!complete || self.seeding)
    }

    /// What to do now, given whether every piece is verified.
    pub fn next_step(&self, complete: bool) -> Step {
        match &self.state {
            State::NeedsCheck if !self.paused && self.moving.is_none() => Step::StartCheck,
            State::Checking(job) if self.paused && !job.cancel.load(Ordering::Relaxed) => {
                Step::CancelCheck
            }
            State::Stopped if self.wants_swarm(complete) => Step::Activate,
            State::Active { .. } if !self.wants_swarm(complete) => Step::Stop,
            _ => Step::Nothing,
        }
    }

    pub fn set_paused(&mut self, paused: bool) {
        self.paused = paused;
        if !paused && let State::Failed { recheck, .. } = self.state {
            self.state = if recheck {
                State::NeedsCheck
            } else {
                State::Stopped
            };
        }
    }

    /// The network went down (with why), or came back (`None`).
    pub fn set_offline(&mut self, offline: Option<String>) {
        self.offline = offline;
    }

    pub fn set_seeding(&mut self, seeding: bool) {
        self.seeding = seeding;
    }

    /// The resume data's stamps were compared with the files.
    pub fn resume_confirmed(&mut self, files_unchanged: bool) {
        if matches!(self.state, State::ConfirmingResume) {
            self.state = if files_unchanged {
                State::Stopped
            } else {
                State::NeedsCheck
            };
        }
    }

    pub fn check_started(&mut self, job: CheckJob) {
        self.state = State::Checking(job);
    }

    /// The check ended; a cancelled one leaves the data unknown.
    pub fn check_done(&mut self, cancelled: bool) {
        if matches!(self.state, State::Checking(_)) {
            self.state = if cancelled {
                State::NeedsCheck
            } else {
                State::Stopped
            };
        }
    }

    pub fn activated(&mut self, announcer: Option<UnboundedSender<AnnounceSignal>>) {
        self.state = State::Active {
            announcer,
            lost: false,
        };
    }

    /// Begins a stop: returns the announcer to tell when the torrent was active.
    pub fn begin_stop(&mut self) -> Option<Option<UnboundedSender<AnnounceSignal>>> {
        match std::mem::replace(&mut self.state, State::Stopping { recheck: false }) {
            State::Active { announcer, lost } => {
                self.state = State::Stopping { recheck: lost };
                Some(announcer)
            }
            other => {
                self.state = other;
                None
            }
        }
    }

    /// The stop finished. What happened during it (data lost, a disk error) is kept.
    pub fn stopped(&mut self) {
        if let State::Stopping { recheck } = self.state {
            self.state = if recheck {
                State::NeedsCheck
            } else {
                State::Stopped
            };
        }
    }

    /// Verified data is gone: from now on the pieces are unknown, and a check follows the
    /// stop (or the user's resume, after an error).
    pub fn data_missing(&mut self) {
        match &mut self.state {
            State::Stopped => self.state = State::NeedsCheck,
            State::Active { lost: flag, .. }
            | State::Stopping { recheck: flag }
            | State::Failed { recheck: flag, .. } => *flag = true,
            State::ConfirmingResume | State::NeedsCheck | State::Checking(_) => {}
        }
    }

    pub fn fail(&mut self, error: TorrentError) {
        let recheck = !self.data_known();
        self.state = State::Failed { error, recheck };
    }

    pub fn is_active(&self) -> bool {
        matches!(self.state, State::Active { .. })
    }

    /// Checking, active or moving: the actor ticks often.
    pub fn is_busy(&self) -> bool {
        matches!(self.state, State::Active { .. } | State::Checking(_)) || self.moving.is_some()
    }

    pub fn announcer(&self) -> Option<&UnboundedSender<AnnounceSignal>> {
        match &self.state {
            State::Active { announcer, .. } => announcer.as_ref(),
            _ => None,
        }
    }

    /// Whether the verified pieces are known (checked, or resume data confirmed), so that
    /// they may be saved as such.
    pub fn data_known(&self) -> bool {
        match &self.state {
            State::ConfirmingResume | State::NeedsCheck | State::Checking(_) => false,
            State::Active { lost: flag, .. }
            | State::Stopping { recheck: flag }
            | State::Failed { recheck: flag, .. } => !flag,
            State::Stopped => true,
        }
    }

    /// The state as front ends show it.
    pub fn shown(&self, complete: bool, piece_count: u32) -> TorrentState {
        match &self.state {
            State::Failed { error, .. } => TorrentState::Error(error.clone()),
            State::Checking(job) => TorrentState::Checking(
                job.progress.load(Ordering::Relaxed) as f32 / piece_count.max(1) as f32,
            ),
            _ if let Some(progress) = &self.moving => TorrentState::Moving(progress.fraction()),
            _ if self.paused => TorrentState::Paused,
            State::Stopped | State::Stopping { .. } if self.queued => TorrentState::Queued,
            State::Stopped | State::Stopping { .. } if !complete || self.seeding => {
                match &self.offline {
                    Some(reason) => TorrentState::Offline(reason.clone()),
                    None if complete => TorrentState::Seeding,
                    None => TorrentState::Downloading,
                }
            }
            // (While resume data is confirmed, the torrent shows what it will most likely be.)
            State::NeedsCheck => TorrentState::Checking(0.0),
            _ if !complete => TorrentState::Downloading,
            _ if self.seeding => TorrentState::Seeding,
            _ => TorrentState::Finished,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk_full() -> TorrentError {
        TorrentError::DiskFull("/data".into())
    }

    #[test]
    fn a_new_torrent_checks_then_downloads() {
        let mut life = Lifecycle::new(false, true, false);
        assert_eq!(life.shown(false, 10), TorrentState::Checking(0.0));
        assert_eq!(life.next_step(false), Step::StartCheck);
        let job = CheckJob::default();
        life.check_started(job.clone());
        job.progress.store(5, Ordering::Relaxed);
        assert_eq!(life.shown(false, 10), TorrentState::Checking(0.5));
        assert_eq!(life.next_step(false), Step::Nothing);
        assert!(!life.data_known());
        life.check_done(false);
        assert!(life.data_known());
        assert_eq!(life.next_step(false), Step::Activate);
        life.activated(None);
        assert_eq!(life.shown(false, 10), TorrentState::Downloading);
        assert_eq!(
            life.next_step(false),
            Step::Nothing,
            "seeding when complete"
        );
        assert_eq!(life.shown(true, 10), TorrentState::Seeding);
    }

    #[test]
    fn a_queued_torrent_leaves_the_swarm_and_says_queued_until_its_slot_comes() {
        let mut life = Lifecycle::new(false, true, true);
        life.resume_confirmed(true);
        life.activated(None);
        life.set_queued(true);
        assert_eq!(life.next_step(false), Step::Stop);
        life.begin_stop();
        life.stopped();
        assert_eq!(life.shown(false, 10), TorrentState::Queued);
        assert_eq!(life.next_step(false), Step::Nothing);
        life.set_paused(true);
        assert_eq!(
            life.shown(false, 10),
            TorrentState::Paused,
            "a pause shows first"
        );
        life.set_paused(false);
        life.set_queued(false);
        assert_eq!(life.next_step(false), Step::Activate);
    }

    #[test]
    fn resume_data_is_trusted_only_once_confirmed() {
        let mut life = Lifecycle::new(false, true, true);
        assert!(!life.data_known());
        assert_eq!(life.next_step(false), Step::Nothing);
        life.resume_confirmed(true);
        assert_eq!(life.next_step(false), Step::Activate);

        let mut changed = Lifecycle::new(false, true, true);
        changed.resume_confirmed(false);
        assert_eq!(changed.next_step(false), Step::StartCheck);
    }

    #[test]
    fn pausing_cancels_a_check_and_resuming_restarts_it() {
        let mut life = Lifecycle::new(false, true, false);
        let job = CheckJob::default();
        life.check_started(job.clone());
        life.set_paused(true);
        assert_eq!(life.next_step(false), Step::CancelCheck);
        job.cancel.store(true, Ordering::Relaxed);
        assert_eq!(life.next_step(false), Step::Nothing, "cancel sent once");
        assert_eq!(life.shown(false, 10), TorrentState::Checking(0.0));
        life.check_done(true);
        assert_eq!(life.shown(false, 10), TorrentState::Paused);
        assert_eq!(life.next_step(false), Step::Nothing);
        life.set_paused(false);
        assert_eq!(life.next_step(false), Step::StartCheck);
    }

    #[test]
    fn completion_without_seeding_stops() {
        let mut life = Lifecycle::new(false, false, true);
        life.resume_confirmed(true);
        life.activated(None);
        assert_eq!(life.next_step(false), Step::Nothing);
        assert_eq!(life.next_step(true), Step::Stop);
        assert!(life.begin_stop().is_some());
        assert!(
            life.begin_stop().is_none(),
            "a stop in progress is not restarted"
        );
        life.stopped();
        assert_eq!(life.shown(true, 10), TorrentState::Finished);
        assert_eq!(life.next_step(true), Step::Nothing);
        life.set_seeding(true);
        assert_eq!(life.next_step(true), Step::Activate);
    }

    #[test]
    fn pausing_an_active_torrent_stops_it() {
        let mut life = Lifecycle::new(false, true, true);
        life.resume_confirmed(true);
        life.activated(None);
        life.set_paused(true);
        assert_eq!(life.next_step(false), Step::Stop);
        life.begin_stop();
        life.stopped();
        assert_eq!(life.shown(false, 10), TorrentState::Paused);
        assert_eq!(life.next_step(false), Step::Nothing);
    }

    #[test]
    fn lost_data_during_a_stop_leads_to_a_check() {
        let mut life = Lifecycle::new(false, true, true);
        life.resume_confirmed(true);
        life.activated(None);
        life.begin_stop();
        life.data_missing();
        life.stopped();
        assert!(!life.data_known());
        assert_eq!(life.next_step(true), Step::StartCheck);

        let mut active = Lifecycle::new(false, true, true);
        active.resume_confirmed(true);
        active.activated(None);
        active.data_missing();
        assert!(
            !active.data_known(),
            "nothing is saved as verified from here on"
        );
        active.begin_stop();
        assert!(!active.data_known());
        active.stopped();
        assert_eq!(active.next_step(true), Step::StartCheck);
    }

    #[test]
    fn a_disk_error_during_a_check_still_needs_the_check() {
        let mut life = Lifecycle::new(false, true, false);
        life.check_started(CheckJob::default());
        life.fail(disk_full());
        assert!(!life.data_known());
        life.check_done(true);
        life.set_paused(false);
        assert_eq!(life.next_step(false), Step::StartCheck);
    }

    #[test]
    fn the_swarm_waits_while_the_network_is_down() {
        let mut life = Lifecycle::new(false, true, false);
        life.check_started(CheckJob::default());
        life.check_done(false);
        assert_eq!(life.next_step(false), Step::Activate);
        life.activated(None);
        life.set_offline(Some("network interface wg0 is down".into()));
        assert_eq!(life.next_step(false), Step::Stop);
        assert!(life.begin_stop().is_some());
        life.stopped();
        assert_eq!(life.next_step(false), Step::Nothing);
        assert_eq!(
            life.shown(false, 10),
            TorrentState::Offline("network interface wg0 is down".into())
        );
        // Paused shows as paused, whatever the network.
        life.set_paused(true);
        assert_eq!(life.shown(false, 10), TorrentState::Paused);
        life.set_paused(false);
        life.set_offline(None);
        assert_eq!(life.next_step(false), Step::Activate);
        assert_eq!(life.shown(true, 10), TorrentState::Seeding);
    }

    #[test]
    fn a_disk_error_holds_until_resumed() {
        let mut life = Lifecycle::new(false, true, true);
        life.resume_confirmed(true);
        life.activated(None);
        life.begin_stop();
        life.fail(disk_full());
        life.stopped();
        assert_eq!(life.shown(false, 10), TorrentState::Error(disk_full()));
        assert_eq!(life.next_step(false), Step::Nothing);
        assert!(life.data_known());
        life.data_missing();
        assert!(!life.data_known());
        life.set_paused(false);
        assert_eq!(life.next_step(false), Step::StartCheck);

        let mut plain = Lifecycle::new(false, true, true);
        plain.resume_confirmed(true);
        plain.fail(disk_full());
        plain.set_paused(false);
        assert_eq!(plain.next_step(false), Step::Activate);
    }
}
