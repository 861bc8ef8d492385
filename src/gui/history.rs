//! Speed history for the Speed tab: one sample a second, the last five minutes, for the session
//! and for each torrent.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use crate::engine::SessionSnapshot;
use crate::ids::InfoHash;

const SAMPLES: usize = 300;

/// (seconds since start, down B/s, up B/s)
pub type Sample = [f64; 3];

pub struct SpeedHistory {
    start: Instant,
    last: Option<Instant>,
    session: VecDeque<Sample>,
    torrents: HashMap<InfoHash, VecDeque<Sample>>,
}

impl Default for SpeedHistory {
    fn default() -> Self {
        Self {
            start: Instant::now(),
            last: None,
            session: VecDeque::new(),
            torrents: HashMap::new(),
        }
    }
}

impl SpeedHistory {
    /// Records a sample when a second has passed since the last one.
    pub fn record(&mut self, snapshot: &SessionSnapshot) {
        if self.last.is_some_and(|l| l.elapsed().as_secs_f64() < 1.0) {
            return;
        }
        self.last = Some(Instant::now());
        let t = self.start.elapsed().as_secs_f64();
        push(
            &mut self.session,
            [t, snapshot.down_rate as f64, snapshot.up_rate as f64],
        );
        for torrent in &snapshot.torrents {
            let active = torrent.down_rate > 0 || torrent.up_rate > 0;
            if active || self.torrents.contains_key(&torrent.id) {
                let samples = self.torrents.entry(torrent.id).or_default();
                push(
                    samples,
                    [t, torrent.down_rate as f64, torrent.up_rate as f64],
                );
            }
        }
        self.torrents
            .retain(|id, _| snapshot.torrents.iter().any(|t| t.id == *id));
    }

    pub fn session(&self) -> &VecDeque<Sample> {
        &self.session
    }

    pub fn torrent(&self, id: &InfoHash) -> Option<&VecDeque<Sample>> {
        self.torrents.get(id)
    }
}

fn push(samples: &mut VecDeque<Sample>, sample: Sample) {
    if samples.len() == SAMPLES {
        samples.pop_front();
    }
    samples.push_back(sample);
}
