//! The tracker's memory: per info hash, every peer's address, id, progress and last contact.
//! Caps bound it (torrents, peers per torrent); peers silent for two intervals expire (two of
//! libtorrent's five minutes at least: it comes back no sooner, whatever the tracker asks).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use rand::seq::IteratorRandom;

use crate::ids::{InfoHash, PeerId};
use crate::sync::{MutexExt, RwLockExt};
use crate::tracker::{AnnounceEvent, SwarmCounts};

/// libtorrent (hence qBittorrent and Deluge) announces at most every five minutes, whatever
/// interval the tracker asks for (its `min_announce_interval`): a peer is kept for two of
/// these at least, or a seeder would vanish from a tracker with a short interval.
const CLIENT_MIN_INTERVAL: Duration = Duration::from_secs(300);

/// Peers handed out when the client does not say how many it wants.
pub const DEFAULT_NUMWANT: usize = 50;
/// Peers handed out at most, whatever the client asks.
pub const MAX_NUMWANT: usize = 200;

/// Which torrents the tracker serves.
#[derive(Debug, Clone)]
pub enum Access {
    /// Any info hash (an open tracker).
    Open,
    /// Only the listed info hashes (by default, the torrents Rivulet itself has loaded).
    Listed(AllowList),
}

/// A shared, changeable set of info hashes the tracker serves.
#[derive(Debug, Clone, Default)]
pub struct AllowList(Arc<RwLock<HashSet<InfoHash>>>);

impl AllowList {
    pub fn insert(&self, id: InfoHash) {
        self.0.write_locked().insert(id);
    }

    pub fn remove(&self, id: &InfoHash) {
        self.0.write_locked().remove(id);
    }

    pub fn contains(&self, id: &InfoHash) -> bool {
        self.0.read_locked().contains(id)
    }
}

/// How much the tracker keeps and how often peers should come back.
#[derive(Debug, Clone)]
pub struct Limits {
    pub interval: Duration,
    pub max_torrents: usize,
    pub max_peers_per_torrent: usize,
}

/// One announce, already checked for well-formedness.
#[derive(Debug, Clone)]
pub struct Announce {
    pub info_hash: InfoHash,
    pub peer_id: PeerId,
    /// The address the peer accepts connections on: its source IP and the port it gave.
    pub addr: SocketAddr,
    pub uploaded: u64,
    pub downloaded: u64,
    pub left: u64,
    pub event: AnnounceEvent,
    pub numwant: usize,
}

/// The tracker's answer to an announce.
#[derive(Debug, Clone)]
pub struct AnnounceReply {
    pub interval: Duration,
    pub min_interval: Duration,
    pub complete: u32,
    pub incomplete: u32,
    pub peers: Vec<(PeerId, SocketAddr)>,
}

/// Why an announce was turned away; the text goes back as the `failure reason`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("missing {0}")]
    Missing(&'static str),
    #[error("{0} must be 20 bytes")]
    BadLength(&'static str),
    #[error("invalid {0}")]
    Invalid(&'static str),
    #[error("torrent not tracked here")]
    NotTracked,
    #[error("tracker is full")]
    Full,
    #[error("bad connection id")]
    BadConnectionId,
    #[error("unknown request")]
    UnknownRequest,
}

struct Peer {
    peer_id: PeerId,
    uploaded: u64,
    downloaded: u64,
    left: u64,
    last_seen: Instant,
}

#[derive(Default)]
struct Swarm {
    peers: HashMap<SocketAddr, Peer>,
    completed: u32,
}

impl Swarm {
    fn counts(&self) -> SwarmCounts {
        let complete = self.peers.values().filter(|p| p.left == 0).count();
        SwarmCounts {
            complete: complete as u32,
            downloaded: self.completed,
            incomplete: (self.peers.len() - complete) as u32,
        }
    }
}

/// Every swarm the tracker knows.
pub struct Swarms {
    swarms: Mutex<HashMap<InfoHash, Swarm>>,
    limits: Limits,
    access: Access,
}

impl Swarms {
    pub fn new(limits: Limits, access: Access) -> Self {
        Self {
            swarms: Mutex::new(HashMap::new()),
            limits,
            access,
        }
    }

    pub fn interval(&self) -> Duration {
        self.limits.interval
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<InfoHash, Swarm>> {
        self.swarms.locked()
    }

    fn serves(&self, id: &InfoHash) -> bool {
        match &self.access {
            Access::Open => true,
            Access::Listed(list) => list.contains(id),
        }
    }

    /// Records an announce and picks peers for the answer: a random sample of the others
    /// (only leechers for a seeder, which has nothing to gain from other seeds).
    pub fn announce(&self, a: &Announce) -> Result<AnnounceReply, Refusal> {
        if !self.serves(&a.info_hash) {
            return Err(Refusal::NotTracked);
        }
        let mut swarms = self.lock();
        if !swarms.contains_key(&a.info_hash) {
            if a.event == AnnounceEvent::Stopped {
                return Ok(self.reply(&Swarm::default(), a));
            }
            if swarms.len() >= self.limits.max_torrents {
                return Err(Refusal::Full);
            }
        }
        let swarm = swarms.entry(a.info_hash).or_default();
        if a.event == AnnounceEvent::Stopped {
            swarm.peers.remove(&a.addr);
            let reply = self.reply(swarm, a);
            // An empty swarm is forgotten (as expiry does), its counts with it.
            if swarm.peers.is_empty() {
                swarms.remove(&a.info_hash);
            }
            return Ok(reply);
        }
        let was_leeching = swarm.peers.get(&a.addr).is_some_and(|p| p.left > 0);
        if a.event == AnnounceEvent::Completed && a.left == 0 && was_leeching {
            swarm.completed = swarm.completed.saturating_add(1);
        }
        let known = swarm.peers.contains_key(&a.addr);
        if known || swarm.peers.len() < self.limits.max_peers_per_torrent {
            swarm.peers.insert(
                a.addr,
                Peer {
                    peer_id: a.peer_id,
                    uploaded: a.uploaded,
                    downloaded: a.downloaded,
                    left: a.left,
                    last_seen: Instant::now(),
                },
            );
        }
        Ok(self.reply(swarm, a))
    }

    fn reply(&self, swarm: &Swarm, a: &Announce) -> AnnounceReply {
        let counts = swarm.counts();
        let seeding = a.left == 0;
        let peers = swarm
            .peers
            .iter()
            .filter(|(addr, p)| **addr != a.addr && !(seeding && p.left == 0))
            .map(|(addr, p)| (p.peer_id, *addr))
            .choose_multiple(&mut rand::rng(), a.numwant.min(MAX_NUMWANT));
        AnnounceReply {
            interval: self.limits.interval,
            min_interval: self.limits.interval / 2,
            complete: counts.complete,
            incomplete: counts.incomplete,
            peers,
        }
    }

    /// Counts for each info hash asked about (zeros for one not known).
    pub fn scrape(&self, ids: &[InfoHash]) -> Vec<(InfoHash, SwarmCounts)> {
        let swarms = self.lock();
        ids.iter()
            .map(|id| (*id, swarms.get(id).map(Swarm::counts).unwrap_or_default()))
            .collect()
    }

    /// Forgets peers not heard from in two intervals (two of [`CLIENT_MIN_INTERVAL`] at
    /// least), and swarms left empty.
    pub fn expire(&self) {
        self.expire_at(Instant::now());
    }

    fn expire_at(&self, now: Instant) {
        let ttl = self.limits.interval.max(CLIENT_MIN_INTERVAL) * 2;
        let mut swarms = self.lock();
        for swarm in swarms.values_mut() {
            swarm
                .peers
                .retain(|_, p| now.saturating_duration_since(p.last_seen) < ttl);
        }
        swarms.retain(|_, s| !s.peers.is_empty());
    }

    /// An open tracker with a 60 s interval and room for 10 torrents of 10 peers.
    #[cfg(test)]
    pub(crate) fn open_for_tests() -> Self {
        Self::new(
            Limits {
                interval: Duration::from_secs(60),
                max_torrents: 10,
                max_peers_per_torrent: 10,
            },
            Access::Open,
        )
    }

    /// Torrents and peers tracked now.
    pub fn size(&self) -> (usize, usize) {
        let swarms = self.lock();
        (swarms.len(), swarms.values().map(|s| s.peers.len()).sum())
    }

    /// What a peer last reported, for tests and diagnostics: (peer id, uploaded, downloaded, left).
    pub fn peer(&self, id: &InfoHash, addr: SocketAddr) -> Option<(PeerId, u64, u64, u64)> {
        let swarms = self.lock();
        let p = swarms.get(id)?.peers.get(&addr)?;
        Some((p.peer_id, p.uploaded, p.downloaded, p.left))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn swarms(access: Access) -> Swarms {
        Swarms::new(
            Limits {
                interval: Duration::from_millis(50),
                max_torrents: 2,
                max_peers_per_torrent: 3,
            },
            access,
        )
    }

    /// An announce of info hash `[hash; 20]` from 127.0.0.1:`port`.
    pub(crate) fn announce(hash: u8, port: u16, left: u64, event: AnnounceEvent) -> Announce {
        Announce {
            info_hash: InfoHash([hash; 20]),
            peer_id: PeerId([port as u8; 20]),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            uploaded: 1,
            downloaded: 2,
            left,
            event,
            numwant: DEFAULT_NUMWANT,
        }
    }

    #[test]
    fn peers_see_each_other_but_not_themselves() {
        let s = swarms(Access::Open);
        s.announce(&announce(1, 1000, 0, AnnounceEvent::Started))
            .unwrap();
        let reply = s
            .announce(&announce(1, 1001, 5, AnnounceEvent::Started))
            .unwrap();
        assert_eq!(
            reply.peers,
            vec![(PeerId([0xe8; 20]), "127.0.0.1:1000".parse().unwrap())]
        );
        assert_eq!((reply.complete, reply.incomplete), (1, 1));
        assert_eq!(
            s.peer(&InfoHash([1; 20]), "127.0.0.1:1001".parse().unwrap()),
            Some((PeerId([0xe9; 20]), 1, 2, 5))
        );
    }

    #[test]
    fn seeders_are_not_sent_to_seeders() {
        let s = swarms(Access::Open);
        s.announce(&announce(1, 1000, 0, AnnounceEvent::Started))
            .unwrap();
        let reply = s
            .announce(&announce(1, 1001, 0, AnnounceEvent::Started))
            .unwrap();
        assert!(reply.peers.is_empty());
        assert_eq!(reply.complete, 2);
    }

    #[test]
    fn completed_counts_once_and_stopped_removes() {
        let s = swarms(Access::Open);
        s.announce(&announce(1, 1000, 5, AnnounceEvent::Started))
            .unwrap();
        s.announce(&announce(1, 1000, 0, AnnounceEvent::Completed))
            .unwrap();
        s.announce(&announce(1, 1000, 0, AnnounceEvent::Completed))
            .unwrap();
        let counts = s.scrape(&[InfoHash([1; 20])])[0].1;
        assert_eq!(
            counts,
            SwarmCounts {
                complete: 1,
                downloaded: 1,
                incomplete: 0
            }
        );
        s.announce(&announce(1, 1000, 0, AnnounceEvent::Stopped))
            .unwrap();
        let counts = s.scrape(&[InfoHash([1; 20])])[0].1;
        assert_eq!(
            counts,
            SwarmCounts::default(),
            "an empty swarm is forgotten"
        );
        assert_eq!(s.size(), (0, 0));
    }

    #[test]
    fn caps_bound_torrents_and_peers() {
        let s = swarms(Access::Open);
        s.announce(&announce(1, 1000, 5, AnnounceEvent::Started))
            .unwrap();
        s.announce(&announce(2, 1000, 5, AnnounceEvent::Started))
            .unwrap();
        assert_eq!(
            s.announce(&announce(3, 1000, 5, AnnounceEvent::Started))
                .unwrap_err(),
            Refusal::Full
        );
        for port in 2000..2010 {
            s.announce(&announce(1, port, 5, AnnounceEvent::None))
                .unwrap();
        }
        assert_eq!(s.size(), (2, 4));
    }

    #[test]
    fn listed_access_serves_only_listed_torrents() {
        let list = AllowList::default();
        let s = swarms(Access::Listed(list.clone()));
        assert_eq!(
            s.announce(&announce(1, 1000, 5, AnnounceEvent::Started))
                .unwrap_err(),
            Refusal::NotTracked
        );
        list.insert(InfoHash([1; 20]));
        assert!(
            s.announce(&announce(1, 1000, 5, AnnounceEvent::Started))
                .is_ok()
        );
        list.remove(&InfoHash([1; 20]));
        assert_eq!(
            s.announce(&announce(1, 1000, 5, AnnounceEvent::None))
                .unwrap_err(),
            Refusal::NotTracked
        );
    }

    #[test]
    fn silent_peers_expire_after_two_intervals() {
        let s = Swarms::new(
            Limits {
                interval: Duration::from_secs(3600),
                max_torrents: 2,
                max_peers_per_torrent: 3,
            },
            Access::Open,
        );
        s.announce(&announce(1, 1000, 5, AnnounceEvent::Started))
            .unwrap();
        let now = Instant::now();
        s.expire_at(now + Duration::from_secs(7199));
        assert_eq!(s.size(), (1, 1));
        s.expire_at(now + Duration::from_secs(7201));
        assert_eq!(s.size(), (0, 0));
    }

    #[test]
    fn a_peer_back_every_five_minutes_stays_listed_whatever_the_interval() {
        // A 50 ms interval; libtorrent comes back after 300 s all the same.
        let s = swarms(Access::Open);
        s.announce(&announce(1, 1000, 0, AnnounceEvent::Started))
            .unwrap();
        let now = Instant::now();
        s.expire_at(now + Duration::from_secs(301));
        assert_eq!(s.size(), (1, 1), "the seeder is still listed");
        s.expire_at(now + Duration::from_secs(601));
        assert_eq!(s.size(), (0, 0), "gone after two of its intervals");
    }

    /// One open swarm of 300 leechers on ports 1000 to 1299.
    pub(crate) fn crowded() -> Swarms {
        let s = Swarms::new(
            Limits {
                interval: Duration::from_secs(60),
                max_torrents: 1,
                max_peers_per_torrent: 500,
            },
            Access::Open,
        );
        for port in 1000..1300 {
            s.announce(&announce(1, port, 5, AnnounceEvent::Started))
                .unwrap();
        }
        s
    }

    #[test]
    fn numwant_bounds_the_sample() {
        let s = crowded();
        let mut a = announce(1, 999, 5, AnnounceEvent::None);
        a.numwant = 10;
        assert_eq!(s.announce(&a).unwrap().peers.len(), 10);
        a.numwant = 10_000;
        assert_eq!(s.announce(&a).unwrap().peers.len(), MAX_NUMWANT);
    }
}
