//! The torrent's side of the swarm doctor (`engine::doctor`): the facts only time tells
//! (since when it is active, when a seed was last connected, since when each finding's cause
//! has held) and the facts read from the actor's parts.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::engine::doctor::{Finding, FindingKind, PeerFacts, Unavailable};
use crate::engine::picker::Picker;
use crate::engine::roster::PeerBook;

#[derive(Default)]
pub(crate) struct Health {
    ever_connected: bool,
    last_seed: Option<Instant>,
    /// When each finding's cause was first seen, while it holds.
    causes: HashMap<FindingKind, Instant>,
}

impl Health {
    /// Notes what only time tells; a torrent that stops forgets it all.
    pub fn observe(&mut self, active: bool, peers: &[PeerFacts], now: Instant) {
        if !active {
            *self = Self::default();
            return;
        }
        self.ever_connected |= !peers.is_empty();
        if peers.iter().any(|p| p.seed) {
            self.last_seed = Some(now);
        }
    }

    pub fn ever_connected(&self) -> bool {
        self.ever_connected
    }

    /// How long ago a seed was last connected (`None`: not since the torrent started).
    pub fn last_seed(&self, now: Instant) -> Option<Duration> {
        self.last_seed.map(|at| now.duration_since(at))
    }

    /// The findings to show: those whose cause need not settle, and the others once their
    /// cause has held for `settle`. A cause that is gone is forgotten at once.
    pub fn settle(&mut self, found: Vec<Finding>, settle: Duration, now: Instant) -> Vec<Finding> {
        self.causes
            .retain(|kind, _| found.iter().any(|f| f.kind == *kind));
        found
            .into_iter()
            .filter(|f| {
                let since = *self.causes.entry(f.kind).or_insert(now);
                !f.kind.settles() || now.duration_since(since) >= settle
            })
            .collect()
    }

    /// When the first cause still settling (not shown yet) will have held long enough.
    pub fn next_settled(&self, settle: Duration, now: Instant) -> Option<Instant> {
        self.causes
            .iter()
            .filter(|(kind, _)| kind.settles())
            .map(|(_, since)| *since + settle)
            .filter(|at| *at > now)
            .min()
    }
}

/// The connected peers, as the doctor sees them.
pub(crate) fn peer_facts<'a>(books: impl Iterator<Item = &'a PeerBook>) -> Vec<PeerFacts> {
    books
        .map(|p| PeerFacts {
            addr: p.addr,
            client: p.client_name(),
            has_wanted: p.stats.am_interested.load(Ordering::Relaxed),
            choking_us: p.stats.peer_choking.load(Ordering::Relaxed),
            down_rate: p.down.rate(),
            seed: p.stats.is_seed.load(Ordering::Relaxed),
        })
        .collect()
}

/// The wanted pieces still missing that no connected peer has.
pub(super) fn unavailable(picker: &Picker) -> Unavailable {
    let ranges =
        crate::engine::doctor::unavailable_ranges(picker.wanted_missing(), picker.availability());
    let (mut pieces, mut bytes) = (0, 0);
    for piece in ranges.iter().flat_map(|r| r.clone()) {
        pieces += 1;
        bytes += picker.piece_len(piece);
    }
    Unavailable {
        ranges,
        pieces,
        bytes,
        wanted_bytes: picker.wanted_bytes().0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::doctor::Severity;

    fn finding(kind: FindingKind) -> Finding {
        Finding {
            kind,
            severity: Severity::Warning,
            message: String::new(),
            evidence: Vec::new(),
        }
    }

    #[test]
    fn a_finding_shows_once_its_cause_has_held_and_goes_with_it() {
        let mut health = Health::default();
        let start = Instant::now();
        let settle = Duration::from_secs(30);
        let found = || {
            vec![
                finding(FindingKind::AllChoking),
                finding(FindingKind::Queued),
            ]
        };
        let shown = health.settle(found(), settle, start);
        assert_eq!(
            shown,
            vec![finding(FindingKind::Queued)],
            "the queue needs no settling"
        );
        assert_eq!(health.next_settled(settle, start), Some(start + settle));
        let later = start + Duration::from_secs(31);
        assert_eq!(health.settle(found(), settle, later).len(), 2);
        assert_eq!(
            health.next_settled(settle, later),
            None,
            "nothing left to wake for: a shown finding does not bring back the fast tick"
        );
        assert!(health.settle(Vec::new(), settle, later).is_empty());
        assert_eq!(
            health
                .settle(found(), settle, later + Duration::from_secs(1))
                .len(),
            1,
            "a cause that went away starts again"
        );
    }

    #[test]
    fn a_stopped_torrent_forgets_its_seeds() {
        let mut health = Health::default();
        let now = Instant::now();
        let seed = PeerFacts {
            addr: ([127, 0, 0, 1], 1).into(),
            client: "x".into(),
            has_wanted: true,
            choking_us: false,
            down_rate: 0,
            seed: true,
        };
        health.observe(true, &[seed], now);
        assert!(health.ever_connected());
        assert_eq!(health.last_seed(now), Some(Duration::ZERO));
        health.observe(false, &[], now);
        assert!(!health.ever_connected());
        assert_eq!(health.last_seed(now), None);
    }
}
