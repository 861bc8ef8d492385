//! The tracker loop of one active torrent: `started`, re-announces on the tracker's interval,
//! `completed`, and `stopped` when the torrent stops. Trackers are tried tier by tier (BEP 12);
//! when every tier fails, the torrent is tracker-less until the next round, which backs off
//! exponentially while the peers already known are kept.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio::sync::oneshot;

use super::config::LiveSettings;
use super::shared::TorrentShared;
use super::torrent::TorrentEvent;
use crate::tracker::{AnnounceEvent, AnnounceRequest, AnnounceResponse, TrackerClient};

/// How long a final `stopped` announce may take.
const STOP_TIMEOUT: Duration = Duration::from_secs(2);
const PEERS_WANTED: u32 = 50;

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
    /// "working", or what went wrong.
    pub status: String,
    pub ok: bool,
    pub peers: Vec<SocketAddr>,
    pub seeders: Option<u32>,
    pub leechers: Option<u32>,
    pub next_announce: Option<SystemTime>,
}

pub(crate) struct Announcer {
    pub shared: Arc<TorrentShared>,
    pub trackers: TrackerClient,
    /// Tracker URLs, tier by tier; a tracker that answers moves to the front of its tier.
    pub tiers: Vec<Vec<String>>,
    pub live: Arc<LiveSettings>,
    pub signals: UnboundedReceiver<AnnounceSignal>,
    pub events: UnboundedSender<TorrentEvent>,
    pub first_event: AnnounceEvent,
}

impl Announcer {
    pub async fn run(mut self) {
        let key: u32 = rand::random();
        let mut tracker_id = None;
        let mut event = self.first_event;
        let mut failures = 0u32;
        let mut last_good: Option<String> = None;
        loop {
            let request = self.request(event, key, tracker_id.clone());
            let wait = match self.announce_any(&request).await {
                Some((url, response)) => {
                    failures = 0;
                    last_good = Some(url);
                    if response.tracker_id.is_some() {
                        tracker_id = response.tracker_id.clone();
                    }
                    event = AnnounceEvent::None;
                    response.interval
                }
                None => {
                    failures += 1;
                    Duration::from_secs(15 * 2u64.pow(failures.min(7)))
                        .min(Duration::from_secs(1800))
                }
            };
            self.report_next_announce(SystemTime::now() + wait);
            let deadline = tokio::time::Instant::now() + wait;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep_until(deadline) => break,
                    signal = self.signals.recv() => match signal {
                        Some(AnnounceSignal::Completed) => {
                            event = AnnounceEvent::Completed;
                            break;
                        }
                        Some(AnnounceSignal::SetTiers(tiers)) => {
                            self.tiers = tiers;
                            let listed = |url: &String| self.tiers.iter().flatten().any(|t| t == url);
                            let kept = failures == 0 && last_good.as_ref().is_some_and(listed);
                            if !kept {
                                // The working tracker is gone, or none worked: try the new list
                                // now. A removed tracker hears `stopped`; a pending `completed`
                                // is still sent.
                                if last_good.as_ref().is_some_and(|url| !listed(url)) {
                                    self.stop(last_good.take(), key, tracker_id.take()).await;
                                }
                                failures = 0;
                                if event != AnnounceEvent::Completed {
                                    event = AnnounceEvent::Started;
                                }
                                break;
                            }
                        }
                        Some(AnnounceSignal::Stop(done)) => {
                            self.stop(last_good, key, tracker_id).await;
                            let _ = done.send(());
                            return;
                        }
                        None => {
                            self.stop(last_good, key, tracker_id).await;
                            return;
                        }
                    },
                }
            }
        }
    }

    async fn stop(&self, last_good: Option<String>, key: u32, tracker_id: Option<String>) {
        if let Some(url) = last_good {
            let request = self.request(AnnounceEvent::Stopped, key, tracker_id);
            let _ =
                tokio::time::timeout(STOP_TIMEOUT, self.trackers.announce(&url, &request)).await;
        }
    }

    fn request(
        &self,
        event: AnnounceEvent,
        key: u32,
        tracker_id: Option<String>,
    ) -> AnnounceRequest {
        let left = self.shared.meta.total_length - self.shared.picker().have_bytes();
        AnnounceRequest {
            info_hash: self.shared.meta.info_hash,
            peer_id: self.shared.our_id,
            port: self.live.listen_port(),
            uploaded: self.shared.uploaded.load(Ordering::Relaxed),
            downloaded: self.shared.downloaded.load(Ordering::Relaxed),
            left,
            event,
            numwant: if event == AnnounceEvent::Stopped {
                0
            } else {
                PEERS_WANTED
            },
            key,
            tracker_id,
        }
    }

    /// Tries the trackers tier by tier; the first that answers wins and moves to the front of
    /// its tier (BEP 12). Every tracker tried reports its own status.
    async fn announce_any(
        &mut self,
        request: &AnnounceRequest,
    ) -> Option<(String, AnnounceResponse)> {
        for tier in 0..self.tiers.len() {
            for i in 0..self.tiers[tier].len() {
                let url = self.tiers[tier][i].clone();
                let _ = self.events.send(TorrentEvent::TrackerUpdating(url.clone()));
                match self.trackers.announce(&url, request).await {
                    Ok(response) => {
                        let winner = self.tiers[tier].remove(i);
                        self.tiers[tier].insert(0, winner);
                        let status = match &response.warning {
                            Some(w) => format!("working (warning: {w})"),
                            None => "working".to_string(),
                        };
                        self.report(TrackerUpdate {
                            url: url.clone(),
                            status,
                            ok: true,
                            peers: response.peers.clone(),
                            seeders: response.complete,
                            leechers: response.incomplete,
                            next_announce: Some(SystemTime::now() + response.interval),
                        });
                        return Some((url, response));
                    }
                    Err(e) => {
                        tracing::debug!(%url, error = %e, "announce failed");
                        self.report(TrackerUpdate {
                            url,
                            status: e.to_string(),
                            ok: false,
                            peers: Vec::new(),
                            seeders: None,
                            leechers: None,
                            next_announce: None,
                        });
                    }
                }
            }
        }
        None
    }

    fn report(&self, update: TrackerUpdate) {
        let _ = self.events.send(TorrentEvent::Tracker(update));
    }

    fn report_next_announce(&self, at: SystemTime) {
        let _ = self.events.send(TorrentEvent::NextAnnounce(at));
    }
}
