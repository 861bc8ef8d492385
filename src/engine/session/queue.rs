//! The queue: how many torrents download and seed at once, and which. Torrents are taken in the
//! session's order (the user moves them up and down); the first `max_downloads` unfinished ones
//! download, the first `max_seeds` finished ones seed, the rest wait as *Queued*. As in
//! libtorrent, a slow torrent (below 2 KiB/s a minute after it started) does not hold a slot,
//! so the next one starts too; a force-started torrent ignores the queue and takes no slot.
//! Paused, checking, failed and offline torrents, and magnet links still fetching metadata,
//! are left alone.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::engine::snapshot::{TorrentSnapshot, TorrentState};
use crate::ids::InfoHash;

/// Below this rate (bytes per second, either way as the torrent's role is), a torrent that has
/// run for [`GRACE`] does not count against the limits (libtorrent's `inactive_down_rate`).
const SLOW_RATE: u64 = 2048;
const GRACE: Duration = Duration::from_secs(60);

/// How many torrents run at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueSettings {
    /// Off: every torrent runs.
    pub enabled: bool,
    pub max_downloads: usize,
    pub max_seeds: usize,
}

impl Default for QueueSettings {
    /// libtorrent's limits, on (the library's `SessionConfig` turns it off).
    fn default() -> Self {
        Self {
            enabled: true,
            max_downloads: 3,
            max_seeds: 5,
        }
    }
}

/// When each running torrent last started running (for the grace a slow one gets).
#[derive(Default)]
pub(super) struct Queue {
    running_since: HashMap<InfoHash, Instant>,
}

impl Queue {
    /// Which torrents must change: `(id, queued)` for each whose queued flag is wrong now.
    /// `torrents` is in queue order.
    pub fn decide(
        &mut self,
        settings: &QueueSettings,
        torrents: &[&TorrentSnapshot],
        now: Instant,
    ) -> Vec<(InfoHash, bool)> {
        let (mut downloads, mut seeds) = (0, 0);
        let mut changes = Vec::new();
        for t in torrents {
            let Some(finished) = role(t) else {
                self.running_since.remove(&t.id);
                // A checking torrent keeps its place (it waits once checked); one finished
                // and not seeding needs no slot.
                if t.state == TorrentState::Queued {
                    changes.push((t.id, false));
                }
                continue;
            };
            let (slots, taken) = if finished {
                (settings.max_seeds, &mut seeds)
            } else {
                (settings.max_downloads, &mut downloads)
            };
            let queued = settings.enabled && !t.forced && *taken >= slots;
            if queued {
                self.running_since.remove(&t.id);
            } else {
                let since = *self.running_since.entry(t.id).or_insert(now);
                let rate = if finished { t.up_rate } else { t.down_rate };
                let slow = now.duration_since(since) >= GRACE && rate < SLOW_RATE;
                if !t.forced && !slow {
                    *taken += 1;
                }
            }
            if queued != t.queued {
                changes.push((t.id, queued));
            }
        }
        let listed: std::collections::HashSet<InfoHash> = torrents.iter().map(|t| t.id).collect();
        self.running_since.retain(|id, _| listed.contains(id));
        changes
    }
}

/// Whether the torrent takes part in the queue, and in which role: `Some(true)` to seed,
/// `Some(false)` to download, `None` for a torrent the queue leaves alone.
fn role(t: &TorrentSnapshot) -> Option<bool> {
    let finished = t.wanted_verified >= t.wanted_size;
    match t.state {
        TorrentState::Downloading | TorrentState::Seeding | TorrentState::Queued if !t.paused => {
            (!finished || t.seeding_enabled).then_some(finished)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn torrent(n: u8, state: TorrentState, finished: bool) -> TorrentSnapshot {
        TorrentSnapshot {
            id: InfoHash([n; 20]),
            state,
            seeding_enabled: true,
            wanted_size: 100,
            wanted_verified: if finished { 100 } else { 10 },
            down_rate: 1 << 20,
            up_rate: 1 << 20,
            ..Default::default()
        }
    }

    fn apply(list: &mut [TorrentSnapshot], changes: &[(InfoHash, bool)]) {
        for (id, queued) in changes {
            let t = list.iter_mut().find(|t| t.id == *id).unwrap();
            t.queued = *queued;
            if *queued {
                t.state = TorrentState::Queued;
            } else if t.state == TorrentState::Queued {
                t.state = if t.wanted_verified >= t.wanted_size {
                    TorrentState::Seeding
                } else {
                    TorrentState::Downloading
                };
            }
        }
    }

    fn queued(list: &[TorrentSnapshot]) -> Vec<u8> {
        list.iter()
            .filter(|t| t.queued)
            .map(|t| t.id.0[0])
            .collect()
    }

    #[test]
    fn downloads_and_seeds_have_slots_of_their_own_taken_in_queue_order() {
        let settings = QueueSettings {
            enabled: true,
            max_downloads: 2,
            max_seeds: 1,
        };
        let mut list: Vec<_> = (1..=4)
            .map(|n| torrent(n, TorrentState::Downloading, false))
            .chain((5..=6).map(|n| torrent(n, TorrentState::Seeding, true)))
            .collect();
        let mut queue = Queue::default();
        let now = Instant::now();
        let changes = queue.decide(&settings, &list.iter().collect::<Vec<_>>(), now);
        apply(&mut list, &changes);
        assert_eq!(queued(&list), vec![3, 4, 6]);

        // The first finishes and seeds: the third downloads; the fifth keeps its seed slot.
        list[0].wanted_verified = 100;
        list[0].state = TorrentState::Seeding;
        let changes = queue.decide(&settings, &list.iter().collect::<Vec<_>>(), now);
        apply(&mut list, &changes);
        assert_eq!(queued(&list), vec![4, 5, 6]);

        // Paused and force-started torrents take no slot.
        list[1].paused = true;
        list[1].state = TorrentState::Paused;
        list[5].forced = true;
        let changes = queue.decide(&settings, &list.iter().collect::<Vec<_>>(), now);
        apply(&mut list, &changes);
        assert_eq!(queued(&list), vec![5]);

        // Off: everything runs.
        let off = QueueSettings {
            enabled: false,
            ..settings
        };
        let changes = queue.decide(&off, &list.iter().collect::<Vec<_>>(), now);
        apply(&mut list, &changes);
        assert!(queued(&list).is_empty());
    }

    #[test]
    fn a_slow_download_stops_holding_its_slot_after_a_minute() {
        let settings = QueueSettings {
            enabled: true,
            max_downloads: 1,
            max_seeds: 1,
        };
        let mut list: Vec<_> = (1..=2)
            .map(|n| torrent(n, TorrentState::Downloading, false))
            .collect();
        list[0].down_rate = 100;
        let mut queue = Queue::default();
        let start = Instant::now();
        let changes = queue.decide(&settings, &list.iter().collect::<Vec<_>>(), start);
        apply(&mut list, &changes);
        assert_eq!(queued(&list), vec![2], "slow, but within its first minute");
        let later = start + GRACE;
        let changes = queue.decide(&settings, &list.iter().collect::<Vec<_>>(), later);
        apply(&mut list, &changes);
        assert!(queued(&list).is_empty(), "the slow one no longer counts");
    }
}
