//! Choking: which interested peers get one of the upload slots.
//!
//! Tit-for-tat: while downloading, the peers that give us the most; while seeding, the peers
//! that take the most (they spread the data fastest). One slot rotates among the rest
//! (the optimistic unchoke), so newcomers get a chance to prove themselves.

use std::collections::HashSet;

use rand::seq::IndexedRandom;

use super::picker::PeerKey;

#[derive(Debug, Clone, Copy)]
pub struct Candidate {
    pub key: PeerKey,
    pub interested: bool,
    /// Download rate from the peer (leeching) or upload rate to it (seeding).
    pub rate: u64,
}

/// Picks the peers to unchoke: the best `slots - 1` by rate, plus the optimistic one, which is
/// kept if still interested or drawn anew when `rotate` is set.
pub fn choose(
    candidates: &[Candidate],
    slots: usize,
    optimistic: &mut Option<PeerKey>,
    rotate: bool,
) -> HashSet<PeerKey> {
    let mut interested: Vec<&Candidate> = candidates.iter().filter(|c| c.interested).collect();
    interested.sort_by_key(|c| std::cmp::Reverse(c.rate));
    let regular = slots.saturating_sub(1);
    let mut unchoked: HashSet<PeerKey> = interested.iter().take(regular).map(|c| c.key).collect();
    let rest: Vec<PeerKey> = interested.iter().skip(regular).map(|c| c.key).collect();
    let keep = optimistic.filter(|k| rest.contains(k));
    *optimistic = if rotate || keep.is_none() {
        rest.choose(&mut rand::rng()).copied()
    } else {
        keep
    };
    if let Some(k) = optimistic {
        unchoked.insert(*k);
    }
    // Unused regular slots go to whoever is left.
    for k in rest {
        if unchoked.len() >= slots {
            break;
        }
        unchoked.insert(k);
    }
    unchoked
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(key: PeerKey, interested: bool, rate: u64) -> Candidate {
        Candidate {
            key,
            interested,
            rate,
        }
    }

    #[test]
    fn best_rates_win_and_one_slot_is_optimistic() {
        let peers = [
            c(1, true, 10),
            c(2, true, 50),
            c(3, true, 40),
            c(4, true, 30),
            c(5, true, 1),
            c(6, false, 99),
        ];
        let mut optimistic = None;
        let chosen = choose(&peers, 4, &mut optimistic, true);
        assert_eq!(chosen.len(), 4);
        assert!(chosen.contains(&2) && chosen.contains(&3) && chosen.contains(&4));
        assert!(!chosen.contains(&6), "not interested peers stay choked");
        let o = optimistic.unwrap();
        assert!(o == 1 || o == 5);
        assert!(chosen.contains(&o));
    }

    #[test]
    fn optimistic_rotates_through_everyone() {
        let peers: Vec<Candidate> = (0..10).map(|k| c(k, true, 100 - k)).collect();
        let mut seen = HashSet::new();
        let mut optimistic = None;
        for _ in 0..200 {
            choose(&peers, 4, &mut optimistic, true);
            seen.insert(optimistic.unwrap());
        }
        assert_eq!(seen.len(), 7, "every peer outside the top 3 gets its turn");
    }

    #[test]
    fn free_slots_are_filled() {
        let peers = [c(1, true, 0), c(2, true, 0)];
        let mut optimistic = None;
        assert_eq!(choose(&peers, 4, &mut optimistic, false).len(), 2);
    }
}
