//! [`RoutingTable`]: the nodes a DHT node knows, filed in k-buckets by how many leading bits
//! their id shares with ours (BEP 5), [`K`] a bucket, so at most 160 × 8 nodes.
//!
//! A node is *good* when it answered us within [`GOOD_FOR`], *questionable* after that, and
//! *bad* once [`BAD_AFTER`] queries in a row went unanswered. A full bucket takes a new node
//! only in place of a bad one; otherwise the caller is given its least recently seen
//! questionable node to ping, which turns bad (and is replaced later) if it stays silent.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::id::NodeId;
use super::krpc::NodeInfo;

/// Nodes per bucket.
pub const K: usize = 8;
/// A node that answered within this is good.
pub const GOOD_FOR: Duration = Duration::from_secs(15 * 60);
/// Unanswered queries in a row that make a node bad.
pub const BAD_AFTER: u32 = 2;
/// A bucket nothing happened in for this long is refreshed.
pub const REFRESH_AFTER: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Clone)]
struct Entry {
    info: NodeInfo,
    last_answer: Option<Instant>,
    last_seen: Instant,
    failures: u32,
}

impl Entry {
    fn is_bad(&self) -> bool {
        self.failures >= BAD_AFTER
    }

    fn is_good(&self, now: Instant) -> bool {
        !self.is_bad()
            && self
                .last_answer
                .is_some_and(|t| now.duration_since(t) < GOOD_FOR)
    }
}

/// What became of a node offered to the table.
#[derive(Debug, PartialEq, Eq)]
pub enum Insert {
    Added,
    Updated,
    /// Its bucket is full of nodes that are not bad: ping this one, the least recently seen
    /// questionable node (if any), to make room if it is gone.
    Full(Option<NodeInfo>),
    /// Our own id, or an address no node has.
    Refused,
}

pub struct RoutingTable {
    own: NodeId,
    buckets: Vec<Vec<Entry>>,
    /// When each bucket last changed or was refreshed.
    touched: Vec<Instant>,
}

impl RoutingTable {
    pub fn new(own: NodeId) -> Self {
        let now = Instant::now();
        Self {
            own,
            buckets: vec![Vec::new(); 160],
            touched: vec![now; 160],
        }
    }

    pub fn own_id(&self) -> NodeId {
        self.own
    }

    fn bucket_of(&self, id: &NodeId) -> Option<usize> {
        let prefix = self.own.common_prefix(id);
        (prefix < 160).then_some(prefix)
    }

    /// A node answered a query of ours (`answered`), or queried us.
    pub fn seen(&mut self, info: NodeInfo, answered: bool, now: Instant) -> Insert {
        let Some(b) = self.bucket_of(&info.id) else {
            return Insert::Refused;
        };
        if info.addr.port() == 0 || info.addr.ip().is_unspecified() {
            return Insert::Refused;
        }
        let bucket = &mut self.buckets[b];
        if let Some(e) = bucket.iter_mut().find(|e| e.info.id == info.id) {
            // A node that moved keeps its place only when it proves it answers there.
            if e.info.addr != info.addr && !answered {
                return Insert::Updated;
            }
            e.info.addr = info.addr;
            e.last_seen = now;
            if answered {
                e.last_answer = Some(now);
                e.failures = 0;
            }
            self.touched[b] = now;
            return Insert::Updated;
        }
        let entry = Entry {
            info,
            last_answer: answered.then_some(now),
            last_seen: now,
            failures: 0,
        };
        if bucket.len() < K {
            bucket.push(entry);
            self.touched[b] = now;
            return Insert::Added;
        }
        if let Some(bad) = bucket.iter_mut().find(|e| e.is_bad()) {
            *bad = entry;
            self.touched[b] = now;
            return Insert::Added;
        }
        let stale = bucket
            .iter()
            .filter(|e| !e.is_good(now))
            .min_by_key(|e| e.last_seen)
            .map(|e| e.info);
        Insert::Full(stale)
    }

    /// A query to the node at `addr` went unanswered.
    pub fn failed(&mut self, addr: SocketAddr) {
        for e in self.buckets.iter_mut().flatten() {
            if e.info.addr == addr {
                e.failures += 1;
            }
        }
    }

    /// The `n` known nodes closest to `target` that are not bad, closest first, of the
    /// address family `v6` says (any when `None`).
    pub fn closest(&self, target: &NodeId, n: usize, v6: Option<bool>) -> Vec<NodeInfo> {
        let mut all: Vec<&Entry> = self
            .buckets
            .iter()
            .flatten()
            .filter(|e| !e.is_bad())
            .filter(|e| v6.is_none_or(|v6| e.info.addr.is_ipv6() == v6))
            .collect();
        all.sort_by_key(|e| target.distance(&e.info.id));
        all.into_iter().take(n).map(|e| e.info).collect()
    }

    pub fn len(&self) -> usize {
        self.buckets.iter().map(Vec::len).sum()
    }

    pub fn good(&self, now: Instant) -> usize {
        self.buckets
            .iter()
            .flatten()
            .filter(|e| e.is_good(now))
            .count()
    }

    /// Every node, for saving: good ones first.
    pub fn nodes(&self, now: Instant) -> Vec<NodeInfo> {
        let mut all: Vec<&Entry> = self
            .buckets
            .iter()
            .flatten()
            .filter(|e| !e.is_bad())
            .collect();
        all.sort_by_key(|e| !e.is_good(now));
        all.into_iter().map(|e| e.info).collect()
    }

    /// Questionable nodes not seen for a while, to ping (at most `n`).
    pub fn to_ping(&self, now: Instant, n: usize) -> Vec<NodeInfo> {
        self.buckets
            .iter()
            .flatten()
            .filter(|e| !e.is_bad() && !e.is_good(now))
            .filter(|e| now.duration_since(e.last_seen) > GOOD_FOR)
            .take(n)
            .map(|e| e.info)
            .collect()
    }

    /// Ids to look up to refresh buckets that nothing touched for [`REFRESH_AFTER`]: one in
    /// each such bucket up to the deepest that holds nodes. Marks them refreshed.
    pub fn refresh_targets(&mut self, now: Instant) -> Vec<NodeId> {
        let deepest = self
            .buckets
            .iter()
            .rposition(|b| !b.is_empty())
            .unwrap_or(0);
        let mut targets = Vec::new();
        for b in 0..=deepest {
            if now.duration_since(self.touched[b]) >= REFRESH_AFTER {
                self.touched[b] = now;
                targets.push(self.own.random_at(b));
            }
        }
        targets
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(own: &NodeId, prefix: usize, n: u8) -> NodeInfo {
        NodeInfo {
            id: own.random_at(prefix),
            addr: SocketAddr::from(([127, 0, 0, n], 6881)),
        }
    }

    #[test]
    fn a_full_bucket_takes_a_node_only_in_place_of_a_bad_one() {
        let own = NodeId::random();
        let mut table = RoutingTable::new(own);
        let now = Instant::now();
        let nodes: Vec<NodeInfo> = (0..K as u8).map(|n| node(&own, 0, n + 1)).collect();
        for n in &nodes {
            assert_eq!(table.seen(*n, true, now), Insert::Added);
        }
        let newcomer = node(&own, 0, 99);
        assert_eq!(
            table.seen(newcomer, true, now),
            Insert::Full(None),
            "all good"
        );
        let later = now + GOOD_FOR;
        assert!(
            matches!(table.seen(newcomer, true, later), Insert::Full(Some(_))),
            "questionable ones are offered for a ping"
        );
        for _ in 0..BAD_AFTER {
            table.failed(nodes[3].addr);
        }
        assert_eq!(table.seen(newcomer, true, later), Insert::Added);
        assert_eq!(table.len(), K);
        assert!(table.closest(&newcomer.id, 1, None).contains(&newcomer));
        assert_eq!(
            table.seen(
                NodeInfo {
                    id: own,
                    ..newcomer
                },
                true,
                now
            ),
            Insert::Refused
        );
    }

    #[test]
    fn closest_is_by_xor_distance_and_skips_bad_nodes() {
        let own = NodeId([0; 20]);
        let mut table = RoutingTable::new(own);
        let now = Instant::now();
        let near = NodeInfo {
            id: NodeId([0x01; 20]),
            addr: "127.0.0.2:1".parse().unwrap(),
        };
        let far = NodeInfo {
            id: NodeId([0xf0; 20]),
            addr: "127.0.0.3:1".parse().unwrap(),
        };
        table.seen(far, true, now);
        table.seen(near, true, now);
        assert_eq!(table.closest(&NodeId([0; 20]), 8, None), vec![near, far]);
        table.failed(near.addr);
        table.failed(near.addr);
        assert_eq!(table.closest(&NodeId([0; 20]), 8, None), vec![far]);
        assert_eq!(table.good(now), 1);
    }

    #[test]
    fn untouched_buckets_are_refreshed() {
        let own = NodeId::random();
        let mut table = RoutingTable::new(own);
        let now = Instant::now();
        table.seen(node(&own, 3, 1), true, now);
        assert!(table.refresh_targets(now).is_empty());
        let later = now + REFRESH_AFTER;
        let targets = table.refresh_targets(later);
        assert_eq!(targets.len(), 4, "buckets 0 to 3");
        assert!(
            targets
                .iter()
                .enumerate()
                .all(|(b, t)| own.common_prefix(t) == b)
        );
        assert!(table.refresh_targets(later).is_empty(), "marked refreshed");
    }
}
