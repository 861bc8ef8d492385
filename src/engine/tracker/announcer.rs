//! The tracker loop of one active torrent: `started`, re-announces on the tracker's interval,
//! `completed`, and `stopped` when the torrent stops.
//!
//! Every tracker of every tier is announced to at once, each on its own task, as qBittorrent
//! does with libtorrent's "announce to all trackers and tiers": peers arrive from the first
//! tracker that answers, and a silent tracker (a dead UDP one retries for minutes) never holds
//! the others up. A round succeeds when any tracker answers; its interval sets the next round.
//! When every tracker fails, the next round backs off exponentially while the peers already
//! known are kept. A tracker whose announce is still on its way is skipped by later rounds.
//!
//! Stopping sends a pending `completed`, gives the announces in flight [`STOP_TIMEOUT`] to
//! answer and cuts the rest short, then tells every tracker that answered `stopped` (bounded
//! by the same timeout); the next announcer of the torrent waits for that, so a `stopped` never
//! arrives after the next `started`. Upload and download totals count from
//! this announcer's `started`, as libtorrent and Transmission report them.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::engine::config::LiveSettings;
use crate::engine::outcome::TrackerStatus;
use crate::engine::shared::TorrentShared;
use crate::engine::torrent::TorrentEvent;
use crate::ids::{InfoHash, PeerId};
use crate::tracker::{
    AnnounceEvent, AnnounceRequest, AnnounceResponse, TrackerClient, TrackerError,
};

/// How long the final `stopped` announces may take.
const STOP_TIMEOUT: Duration = Duration::from_secs(2);
const PEERS_WANTED: u32 = 50;
const MAX_BACKOFF: Duration = Duration::from_secs(1800);

pub(crate) enum AnnounceSignal {
    Completed,
    /// The user edited the tracker list.
    SetTiers(Vec<Vec<String>>),
    Stop(oneshot::Sender<()>),
}

/// What the torrent learns from one announce to one tracker.
#[derive(Debug, Clone)]
pub(crate) struct TrackerUpdate {
    pub url: String,
    pub status: TrackerStatus,
    pub peers: Vec<SocketAddr>,
    pub seeders: Option<u32>,
    pub leechers: Option<u32>,
    pub next_announce: Option<SystemTime>,
}

/// What announces say about the torrent: who we are, and our totals.
pub(crate) trait AnnounceStats: Send + Sync {
    fn info_hash(&self) -> InfoHash;
    fn peer_id(&self) -> PeerId;
    fn uploaded(&self) -> u64;
    fn downloaded(&self) -> u64;
    /// Bytes still to download.
    fn left(&self) -> u64;
}

impl AnnounceStats for TorrentShared {
    fn info_hash(&self) -> InfoHash {
        self.meta.info_hash
    }

    fn peer_id(&self) -> PeerId {
        self.our_id
    }

    fn uploaded(&self) -> u64 {
        self.uploaded.load(Ordering::Relaxed)
    }

    fn downloaded(&self) -> u64 {
        self.downloaded.load(Ordering::Relaxed)
    }

    fn left(&self) -> u64 {
        self.meta.total_length - self.picker().have_bytes()
    }
}

pub(crate) struct Announcer {
    pub stats: Arc<dyn AnnounceStats>,
    pub trackers: TrackerClient,
    /// Tracker URLs, tier by tier.
    pub tiers: Vec<Vec<String>>,
    pub live: Arc<LiveSettings>,
    pub signals: UnboundedReceiver<AnnounceSignal>,
    pub events: UnboundedSender<TorrentEvent>,
    pub first_event: AnnounceEvent,
    /// The previous announcer's `stopped` announces, to wait for before `started`.
    pub after_stop: Option<oneshot::Receiver<()>>,
}

/// One announce's outcome, from its task.
struct Answer {
    url: String,
    event: AnnounceEvent,
    round: u64,
    result: Result<AnnounceResponse, TrackerError>,
}

/// The loop's state between signals and answers.
struct Rounds {
    event: AnnounceEvent,
    key: u32,
    tracker_id: Option<String>,
    /// The current round's number; answers of older rounds still report, but decide nothing.
    round: u64,
    /// Announces of the current round still on their way.
    pending: usize,
    /// Whether a tracker answered in the current round.
    answered: bool,
    failures: u32,
    next_round: Instant,
    /// Trackers with an announce on its way.
    busy: HashSet<String>,
    /// Trackers that answered since `started`: they hear `stopped`.
    working: HashSet<String>,
    /// Totals when this announcer started.
    base_uploaded: u64,
    base_downloaded: u64,
}

impl Announcer {
    pub async fn run(mut self) {
        if let Some(previous) = self.after_stop.take() {
            let _ = previous.await;
        }
        let mut rounds = Rounds {
            event: self.first_event,
            key: rand::random(),
            tracker_id: None,
            round: 0,
            pending: 0,
            answered: false,
            failures: 0,
            next_round: Instant::now(),
            busy: HashSet::new(),
            working: HashSet::new(),
            base_uploaded: self.stats.uploaded(),
            base_downloaded: self.stats.downloaded(),
        };
        let mut in_flight: JoinSet<Answer> = JoinSet::new();
        loop {
            // A round that has not been answered yet runs to its end before the next starts.
            let may_start = rounds.pending == 0 || rounds.answered;
            tokio::select! {
                _ = tokio::time::sleep_until(rounds.next_round), if may_start => {
                    self.start_round(&mut rounds, &mut in_flight);
                }
                Some(joined) = in_flight.join_next(), if !in_flight.is_empty() => {
                    if let Ok(answer) = joined {
                        self.on_answer(&mut rounds, answer);
                    }
                }
                signal = self.signals.recv() => match signal {
                    Some(AnnounceSignal::Completed) => {
                        rounds.event = AnnounceEvent::Completed;
                        rounds.next_round = Instant::now();
                    }
                    Some(AnnounceSignal::SetTiers(tiers)) => self.set_tiers(&mut rounds, tiers),
                    Some(AnnounceSignal::Stop(done)) => {
                        self.stop(&mut rounds, &mut in_flight).await;
                        let _ = done.send(());
                        return;
                    }
                    None => {
                        self.stop(&mut rounds, &mut in_flight).await;
                        return;
                    }
                },
            }
        }
    }

    /// Announces to every tracker not already busy.
    fn start_round(&self, rounds: &mut Rounds, in_flight: &mut JoinSet<Answer>) {
        rounds.round += 1;
        rounds.answered = false;
        rounds.pending = 0;
        let request = self.request(rounds, rounds.event);
        for url in self.tiers.iter().flatten() {
            if !rounds.busy.insert(url.clone()) {
                continue;
            }
            rounds.pending += 1;
            let _ = self.events.send(TorrentEvent::TrackerUpdating(url.clone()));
            let (client, url, request, round) = (
                self.trackers.clone(),
                url.clone(),
                request.clone(),
                rounds.round,
            );
            in_flight.spawn(async move {
                let result = client.announce(&url, &request).await;
                Answer {
                    url,
                    event: request.event,
                    round,
                    result,
                }
            });
        }
        // Until a tracker answers, the next round is a back-off away.
        rounds.next_round = Instant::now() + backoff(rounds.failures + 1);
        if rounds.pending == 0 {
            rounds.failures += 1;
        }
        self.report_next_announce(rounds.next_round);
    }

    fn on_answer(&self, rounds: &mut Rounds, answer: Answer) {
        rounds.busy.remove(&answer.url);
        let current = answer.round == rounds.round;
        if current {
            rounds.pending = rounds.pending.saturating_sub(1);
        }
        match answer.result {
            Ok(response) => {
                self.report(TrackerUpdate {
                    url: answer.url.clone(),
                    status: TrackerStatus::Working {
                        warning: response.warning.clone(),
                    },
                    peers: response.peers.clone(),
                    seeders: response.complete,
                    leechers: response.incomplete,
                    next_announce: Some(SystemTime::now() + response.interval),
                });
                if self.tiers.iter().flatten().any(|u| *u == answer.url) {
                    rounds.working.insert(answer.url);
                }
                if response.tracker_id.is_some() {
                    rounds.tracker_id = response.tracker_id;
                }
                // The event reached a tracker; later announces carry none.
                if answer.event == rounds.event {
                    rounds.event = AnnounceEvent::None;
                }
                if current && !rounds.answered {
                    rounds.answered = true;
                    rounds.failures = 0;
                    rounds.next_round = Instant::now() + response.interval;
                    self.report_next_announce(rounds.next_round);
                }
            }
            Err(e) => {
                tracing::debug!(url = %answer.url, error = %e, "announce failed");
                self.report(TrackerUpdate {
                    url: answer.url,
                    status: TrackerStatus::Failed(e),
                    peers: Vec::new(),
                    seeders: None,
                    leechers: None,
                    next_announce: None,
                });
                if current && rounds.pending == 0 && !rounds.answered {
                    rounds.failures += 1;
                    rounds.next_round = Instant::now() + backoff(rounds.failures);
                    self.report_next_announce(rounds.next_round);
                }
            }
        }
    }

    /// Takes an edited tracker list: removed trackers that answered hear `stopped`; when none
    /// of the working ones is left, the new list is tried at once (a pending `completed` is
    /// still sent).
    fn set_tiers(&mut self, rounds: &mut Rounds, tiers: Vec<Vec<String>>) {
        self.tiers = tiers;
        let listed: HashSet<&String> = self.tiers.iter().flatten().collect();
        let removed: Vec<String> = rounds
            .working
            .iter()
            .filter(|url| !listed.contains(url))
            .cloned()
            .collect();
        rounds.working.retain(|url| listed.contains(url));
        if !removed.is_empty() {
            let request = self.request(rounds, AnnounceEvent::Stopped);
            let client = self.trackers.clone();
            tokio::spawn(async move { stop_all(&client, removed, &request).await });
        }
        if rounds.working.is_empty() {
            rounds.failures = 0;
            if rounds.event != AnnounceEvent::Completed {
                rounds.event = AnnounceEvent::Started;
            }
            rounds.next_round = Instant::now();
        }
    }

    /// Ends the announcer: a `completed` not yet sent goes out first, announces on their way
    /// get [`STOP_TIMEOUT`] to answer (the rest are cut short and say so), then every tracker
    /// that answered, or whose announce was cut short (it may have arrived), hears `stopped`.
    async fn stop(&self, rounds: &mut Rounds, in_flight: &mut JoinSet<Answer>) {
        if rounds.event == AnnounceEvent::Completed {
            self.start_round(rounds, in_flight);
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        while let Ok(Some(joined)) = tokio::time::timeout_at(deadline, in_flight.join_next()).await
        {
            if let Ok(answer) = joined {
                self.on_answer(rounds, answer);
            }
        }
        in_flight.abort_all();
        for url in &rounds.busy {
            self.report(TrackerUpdate {
                url: url.clone(),
                status: TrackerStatus::CutShort,
                peers: Vec::new(),
                seeders: None,
                leechers: None,
                next_announce: None,
            });
        }
        let request = self.request(rounds, AnnounceEvent::Stopped);
        let urls = rounds.working.union(&rounds.busy).cloned().collect();
        stop_all(&self.trackers, urls, &request).await;
    }

    fn request(&self, rounds: &Rounds, event: AnnounceEvent) -> AnnounceRequest {
        let since_start = |total: u64, base: u64| total.saturating_sub(base);
        AnnounceRequest {
            info_hash: self.stats.info_hash(),
            peer_id: self.stats.peer_id(),
            port: self.live.listen_port(),
            uploaded: since_start(self.stats.uploaded(), rounds.base_uploaded),
            downloaded: since_start(self.stats.downloaded(), rounds.base_downloaded),
            left: self.stats.left(),
            event,
            numwant: if event == AnnounceEvent::Stopped {
                0
            } else {
                PEERS_WANTED
            },
            key: rounds.key,
            tracker_id: rounds.tracker_id.clone(),
            ipv6: self.live.public_ipv6(),
        }
    }

    fn report(&self, update: TrackerUpdate) {
        let _ = self.events.send(TorrentEvent::Tracker(update));
    }

    fn report_next_announce(&self, at: Instant) {
        let wait = at.saturating_duration_since(Instant::now());
        let _ = self
            .events
            .send(TorrentEvent::NextAnnounce(SystemTime::now() + wait));
    }
}

/// Sends `stopped` to each tracker at once, all within [`STOP_TIMEOUT`].
async fn stop_all(client: &TrackerClient, urls: Vec<String>, request: &AnnounceRequest) {
    let mut stops = JoinSet::new();
    for url in urls {
        let (client, request) = (client.clone(), request.clone());
        stops.spawn(async move { client.announce(&url, &request).await });
    }
    let _ = tokio::time::timeout(STOP_TIMEOUT, stops.join_all()).await;
}

/// The wait after `failures` rounds in a row with no tracker answering: 30 s, doubling, at
/// most half an hour.
fn backoff(failures: u32) -> Duration {
    Duration::from_secs(15 * 2u64.pow(failures.min(7))).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_half_an_hour() {
        assert_eq!(backoff(1), Duration::from_secs(30));
        assert_eq!(backoff(2), Duration::from_secs(60));
        assert_eq!(backoff(20), MAX_BACKOFF);
    }
}
