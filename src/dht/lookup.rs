//! [`Lookup`]: one iterative search of the DHT (BEP 5) for the nodes closest to a target, and
//! for `get_peers`, the peers they know. Pure bookkeeping: which nodes to ask next, what their
//! answers add, when the search is over.
//!
//! At most [`ALPHA`] queries are in flight; a query unanswered for [`QUERY_TIMEOUT`] counts as
//! failed; the search ends when the [`K`] closest nodes not failed have all answered, when no
//! node is left to ask, or after [`LOOKUP_TIMEOUT`]. At most [`MAX_CANDIDATES`] of the closest
//! nodes heard of are kept.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::id::NodeId;
use super::krpc::NodeInfo;
use super::routing::K;

/// Queries in flight at once.
pub const ALPHA: usize = 4;
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(1);
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(15);
/// Nodes kept as candidates, closest first.
pub const MAX_CANDIDATES: usize = 64;
/// Peers collected by one lookup.
const MAX_PEERS: usize = 1000;

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Fresh,
    Asked(Instant),
    /// It answered, with this token when it gave one.
    Answered(Option<Vec<u8>>),
    Failed,
}

#[derive(Debug)]
struct Candidate {
    info: NodeInfo,
    state: State,
}

pub struct Lookup {
    target: NodeId,
    candidates: BTreeMap<[u8; 20], Candidate>,
    started: Instant,
    peers: HashSet<SocketAddr>,
}

impl Lookup {
    pub fn new(target: NodeId, seeds: impl IntoIterator<Item = NodeInfo>, now: Instant) -> Self {
        let mut lookup = Self {
            target,
            candidates: BTreeMap::new(),
            started: now,
            peers: HashSet::new(),
        };
        lookup.add_nodes(seeds);
        lookup
    }

    pub fn target(&self) -> NodeId {
        self.target
    }

    fn add_nodes(&mut self, nodes: impl IntoIterator<Item = NodeInfo>) {
        for info in nodes {
            let distance = self.target.distance(&info.id);
            self.candidates.entry(distance).or_insert(Candidate {
                info,
                state: State::Fresh,
            });
        }
        while self.candidates.len() > MAX_CANDIDATES {
            self.candidates.pop_last();
        }
    }

    fn in_flight(&self, now: Instant) -> usize {
        self.candidates
            .values()
            .filter(|c| matches!(c.state, State::Asked(at) if now < at + QUERY_TIMEOUT))
            .count()
    }

    /// Nodes to ask now (marked asked): the closest not asked yet, up to [`ALPHA`] in flight.
    pub fn next_queries(&mut self, now: Instant) -> Vec<NodeInfo> {
        if self.is_done(now) {
            return Vec::new();
        }
        let room = ALPHA.saturating_sub(self.in_flight(now));
        let mut chosen = Vec::new();
        for c in self.candidates.values_mut() {
            if chosen.len() >= room {
                break;
            }
            if c.state == State::Fresh {
                c.state = State::Asked(now);
                chosen.push(c.info);
            }
        }
        chosen
    }

    /// Queries unanswered for [`QUERY_TIMEOUT`] fail; returns the nodes that did.
    pub fn expire(&mut self, now: Instant) -> Vec<NodeInfo> {
        let mut failed = Vec::new();
        for c in self.candidates.values_mut() {
            if matches!(c.state, State::Asked(at) if now >= at + QUERY_TIMEOUT) {
                c.state = State::Failed;
                failed.push(c.info);
            }
        }
        failed
    }

    /// `from` answered with closer `nodes`, maybe `peers` and a `token`. Returns the peers not
    /// seen before in this lookup.
    pub fn answered(
        &mut self,
        from: NodeInfo,
        nodes: Vec<NodeInfo>,
        peers: &[SocketAddr],
        token: Option<Vec<u8>>,
    ) -> Vec<SocketAddr> {
        let distance = self.target.distance(&from.id);
        match self.candidates.get_mut(&distance) {
            Some(c) if c.info.addr == from.addr => c.state = State::Answered(token),
            // Another node with that id: its answer adds its nodes only.
            Some(_) => {}
            // A router asked for this lookup: it answered, and may be announced to.
            None => {
                self.candidates.insert(
                    distance,
                    Candidate {
                        info: from,
                        state: State::Answered(token),
                    },
                );
            }
        }
        self.add_nodes(nodes);
        let mut new = Vec::new();
        for p in peers {
            if self.peers.len() < MAX_PEERS && self.peers.insert(*p) {
                new.push(*p);
            }
        }
        new
    }

    /// The node at `addr` did not answer (or answered with an error).
    pub fn failed(&mut self, addr: SocketAddr) {
        for c in self.candidates.values_mut() {
            if c.info.addr == addr && matches!(c.state, State::Asked(_)) {
                c.state = State::Failed;
            }
        }
    }

    /// Over: the [`K`] closest nodes that did not fail have all answered, or none is left to
    /// ask or waiting, or [`LOOKUP_TIMEOUT`] passed.
    pub fn is_done(&self, now: Instant) -> bool {
        if now.duration_since(self.started) >= LOOKUP_TIMEOUT {
            return true;
        }
        let mut closest = self
            .candidates
            .values()
            .filter(|c| c.state != State::Failed)
            .take(K)
            .peekable();
        if closest.peek().is_none() {
            return true;
        }
        closest.all(|c| matches!(c.state, State::Answered(_)))
    }

    /// Past [`LOOKUP_TIMEOUT`].
    pub fn timed_out(&self, now: Instant) -> bool {
        now.duration_since(self.started) >= LOOKUP_TIMEOUT
    }

    /// The closest nodes that answered with a token, for `announce_peer`.
    pub fn announce_to(&self) -> Vec<(NodeInfo, Vec<u8>)> {
        self.candidates
            .values()
            .filter_map(|c| match &c.state {
                State::Answered(Some(token)) => Some((c.info, token.clone())),
                _ => None,
            })
            .take(K)
            .collect()
    }

    /// Nodes that answered, closest first.
    pub fn answered_nodes(&self) -> usize {
        self.candidates
            .values()
            .filter(|c| matches!(c.state, State::Answered(_)))
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(first: u8, host: u8) -> NodeInfo {
        let mut id = [0u8; 20];
        id[0] = first;
        NodeInfo {
            id: NodeId(id),
            addr: SocketAddr::from(([127, 0, 0, host], 6881)),
        }
    }

    #[test]
    fn asks_the_closest_first_and_at_most_alpha_at_once() {
        let now = Instant::now();
        let seeds: Vec<NodeInfo> = (1..=10).map(|i| node(i * 10, i)).collect();
        let mut lookup = Lookup::new(NodeId([0; 20]), seeds, now);
        let first = lookup.next_queries(now);
        assert_eq!(first.len(), ALPHA);
        assert_eq!(first[0], node(10, 1), "the closest first");
        assert!(lookup.next_queries(now).is_empty(), "ALPHA in flight");
        // One answers with a closer node: it is asked next.
        let closer = node(1, 50);
        let peers = lookup.answered(
            first[0],
            vec![closer],
            &["10.0.0.1:1".parse().unwrap()],
            Some(b"t".to_vec()),
        );
        assert_eq!(peers.len(), 1);
        assert_eq!(lookup.next_queries(now), vec![closer]);
        assert_eq!(lookup.announce_to(), vec![(first[0], b"t".to_vec())]);
    }

    #[test]
    fn silence_fails_and_the_lookup_ends() {
        let now = Instant::now();
        let mut lookup = Lookup::new(NodeId([0; 20]), vec![node(1, 1), node(2, 2)], now);
        let asked = lookup.next_queries(now);
        assert_eq!(asked.len(), 2);
        assert!(!lookup.is_done(now));
        let later = now + QUERY_TIMEOUT;
        assert_eq!(lookup.expire(later).len(), 2);
        assert!(lookup.is_done(later), "nobody left to ask");
        let fresh = Lookup::new(NodeId([0; 20]), vec![node(1, 1)], now);
        assert!(fresh.is_done(now + LOOKUP_TIMEOUT), "15 s at most");
    }

    #[test]
    fn done_once_the_k_closest_answered() {
        let now = Instant::now();
        let seeds: Vec<NodeInfo> = (1..=12).map(|i| node(i, i)).collect();
        let mut lookup = Lookup::new(NodeId([0; 20]), seeds, now);
        let mut answered = 0;
        while !lookup.is_done(now) {
            let asked = lookup.next_queries(now);
            assert!(!asked.is_empty());
            for n in asked {
                lookup.answered(n, Vec::new(), &[], None);
                answered += 1;
            }
        }
        assert_eq!(answered, K, "the four farther ones were never needed");
    }
}
