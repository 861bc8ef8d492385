//! [`PeerSources`]: a torrent's sources of peers besides its trackers (the DHT, PEX, LSD):
//! when the next DHT search is due, whether one runs, and how many addresses each gave, for
//! the Trackers tab. A private torrent (BEP 27) uses none of them.

use std::time::{Duration, Instant};

use crate::engine::snapshot::{PeerSource, SourceSnapshot, SourceState};

/// How often an active torrent searches the DHT for peers (and announces itself there).
pub(super) const DHT_EVERY: Duration = Duration::from_secs(15 * 60);

pub(super) struct PeerSources {
    next_dht: Instant,
    dht_searching: bool,
    found: [(PeerSource, u32); 3],
    /// The task that brings the peers local discovery finds, while registered.
    lsd: Option<tokio::task::AbortHandle>,
}

impl PeerSources {
    pub fn new(now: Instant) -> Self {
        Self {
            next_dht: now,
            dht_searching: false,
            found: [
                (PeerSource::Dht, 0),
                (PeerSource::Pex, 0),
                (PeerSource::Lsd, 0),
            ],
            lsd: None,
        }
    }

    /// Registered with local discovery through this task (ended when the torrent stops).
    pub fn lsd_started(&mut self, task: tokio::task::AbortHandle) {
        self.lsd_stopped();
        self.lsd = Some(task);
    }

    pub fn lsd_stopped(&mut self) {
        if let Some(task) = self.lsd.take() {
            task.abort();
        }
    }

    /// A (re)started torrent searches at once.
    pub fn restarted(&mut self, now: Instant) {
        self.next_dht = now;
    }

    /// Whether a DHT search should start now; if so, it is marked running and the next one
    /// scheduled.
    pub fn dht_due(&mut self, now: Instant) -> bool {
        if self.dht_searching || now < self.next_dht {
            return false;
        }
        self.dht_searching = true;
        self.next_dht = now + DHT_EVERY;
        true
    }

    pub fn dht_done(&mut self) {
        self.dht_searching = false;
    }

    /// When the next DHT search is due (for a quiet torrent's sleep).
    pub fn next_dht(&self) -> Instant {
        self.next_dht
    }

    pub fn found(&mut self, source: PeerSource, count: usize) {
        if let Some((_, n)) = self.found.iter_mut().find(|(s, _)| *s == source) {
            *n = n.saturating_add(count as u32);
        }
    }

    pub fn snapshot(&self, private: bool, dht_on: bool) -> Vec<SourceSnapshot> {
        self.found
            .iter()
            .map(|&(source, peers)| {
                let state = if private {
                    SourceState::Private
                } else {
                    match source {
                        PeerSource::Dht if !dht_on => SourceState::Off,
                        PeerSource::Dht if self.dht_searching => SourceState::Searching,
                        PeerSource::Lsd if self.lsd.is_none() => SourceState::Off,
                        _ => SourceState::Working,
                    }
                };
                SourceSnapshot {
                    source,
                    state,
                    peers,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn searches_at_start_then_every_fifteen_minutes() {
        let now = Instant::now();
        let mut sources = PeerSources::new(now);
        assert!(sources.dht_due(now));
        assert!(!sources.dht_due(now), "one at a time");
        sources.dht_done();
        assert!(!sources.dht_due(now + Duration::from_secs(60)));
        assert!(sources.dht_due(now + DHT_EVERY));
        sources.dht_done();
        sources.restarted(now + DHT_EVERY);
        assert!(
            sources.dht_due(now + DHT_EVERY),
            "a restart searches at once"
        );
    }

    #[test]
    fn a_private_torrent_shows_every_source_off() {
        let mut sources = PeerSources::new(Instant::now());
        sources.found(PeerSource::Pex, 3);
        let public = sources.snapshot(false, true);
        assert_eq!(public[1].peers, 3);
        assert_eq!(public[0].state, SourceState::Working);
        assert!(
            sources
                .snapshot(true, true)
                .iter()
                .all(|s| s.state == SourceState::Private)
        );
        assert_eq!(sources.snapshot(false, false)[0].state, SourceState::Off);
    }
}
