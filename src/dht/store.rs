//! What a DHT node keeps for others: the peers announced to it per info hash (bounded, and
//! forgotten after [`PEER_TTL`]), and the write tokens it hands out with `get_peers` answers
//! (a hash of the asker's IP and a secret that changes every [`TOKEN_ROTATION`]; a token made
//! with the secret before is still accepted, as BEP 5 asks).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use sha1::{Digest, Sha1};

/// An announced peer is forgotten after this (BEP 5 suggests 30 minutes).
pub const PEER_TTL: Duration = Duration::from_secs(30 * 60);
pub const TOKEN_ROTATION: Duration = Duration::from_secs(5 * 60);
/// Peers kept per info hash, and info hashes kept.
pub const MAX_PEERS_PER_HASH: usize = 100;
pub const MAX_HASHES: usize = 5_000;
/// Peers returned in one answer.
pub const PEERS_PER_ANSWER: usize = 50;

#[derive(Default)]
pub struct PeerStore {
    swarms: HashMap<[u8; 20], Vec<(SocketAddr, Instant)>>,
}

impl PeerStore {
    /// Records an announce; false when the store is full of other torrents.
    pub fn announce(&mut self, info_hash: [u8; 20], peer: SocketAddr, now: Instant) -> bool {
        if !self.swarms.contains_key(&info_hash) && self.swarms.len() >= MAX_HASHES {
            self.expire(now);
            if self.swarms.len() >= MAX_HASHES {
                return false;
            }
        }
        let peers = self.swarms.entry(info_hash).or_default();
        if let Some(entry) = peers.iter_mut().find(|(p, _)| *p == peer) {
            entry.1 = now;
        } else if peers.len() < MAX_PEERS_PER_HASH {
            peers.push((peer, now));
        } else if let Some(oldest) = peers.iter_mut().min_by_key(|(_, at)| *at) {
            // The oldest gives way.
            *oldest = (peer, now);
        }
        true
    }

    /// Up to [`PEERS_PER_ANSWER`] live peers of `info_hash`, of the asker's family.
    pub fn peers(&self, info_hash: &[u8; 20], v6: bool, now: Instant) -> Vec<SocketAddr> {
        self.swarms
            .get(info_hash)
            .map(|peers| {
                peers
                    .iter()
                    .filter(|(p, at)| p.is_ipv6() == v6 && now.duration_since(*at) < PEER_TTL)
                    .rev()
                    .take(PEERS_PER_ANSWER)
                    .map(|(p, _)| *p)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Forgets peers older than [`PEER_TTL`], and torrents left with none.
    pub fn expire(&mut self, now: Instant) {
        self.swarms.retain(|_, peers| {
            peers.retain(|(_, at)| now.duration_since(*at) < PEER_TTL);
            !peers.is_empty()
        });
    }

    /// (torrents, peers) held.
    pub fn counts(&self) -> (usize, usize) {
        (self.swarms.len(), self.swarms.values().map(Vec::len).sum())
    }
}

pub struct Tokens {
    secret: [u8; 16],
    previous: [u8; 16],
    rotated: Instant,
}

impl Tokens {
    pub fn new(now: Instant) -> Self {
        Self {
            secret: rand::random(),
            previous: rand::random(),
            rotated: now,
        }
    }

    fn make(secret: &[u8; 16], ip: IpAddr) -> Vec<u8> {
        let mut h = Sha1::new();
        h.update(secret);
        match ip.to_canonical() {
            IpAddr::V4(v4) => h.update(v4.octets()),
            IpAddr::V6(v6) => h.update(v6.octets()),
        }
        h.finalize()[..8].to_vec()
    }

    /// Changes the secret when [`TOKEN_ROTATION`] has passed.
    pub fn rotate(&mut self, now: Instant) {
        if now.duration_since(self.rotated) >= TOKEN_ROTATION {
            self.previous = self.secret;
            self.secret = rand::random();
            self.rotated = now;
        }
    }

    pub fn token_for(&self, ip: IpAddr) -> Vec<u8> {
        Self::make(&self.secret, ip)
    }

    pub fn is_valid(&self, token: &[u8], ip: IpAddr) -> bool {
        token == Self::make(&self.secret, ip) || token == Self::make(&self.previous, ip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_belong_to_an_address_and_outlive_one_rotation() {
        let now = Instant::now();
        let mut tokens = Tokens::new(now);
        let ip: IpAddr = "127.0.0.2".parse().unwrap();
        let token = tokens.token_for(ip);
        assert!(tokens.is_valid(&token, ip));
        assert!(!tokens.is_valid(&token, "127.0.0.3".parse().unwrap()));
        assert!(!tokens.is_valid(b"forged", ip));
        tokens.rotate(now + TOKEN_ROTATION);
        assert!(
            tokens.is_valid(&token, ip),
            "the previous secret still counts"
        );
        tokens.rotate(now + 2 * TOKEN_ROTATION);
        assert!(
            !tokens.is_valid(&token, ip),
            "two rotations later it does not"
        );
    }

    #[test]
    fn the_store_is_bounded_and_forgets() {
        let now = Instant::now();
        let mut store = PeerStore::default();
        for i in 0..(MAX_PEERS_PER_HASH as u16 + 20) {
            store.announce([1; 20], SocketAddr::from(([10, 0, 0, 1], i + 1)), now);
        }
        assert_eq!(store.counts(), (1, MAX_PEERS_PER_HASH));
        assert_eq!(store.peers(&[1; 20], false, now).len(), PEERS_PER_ANSWER);
        assert!(store.peers(&[1; 20], true, now).is_empty(), "no IPv6 peers");
        for h in 1..MAX_HASHES {
            let mut hash = [0u8; 20];
            hash[..8].copy_from_slice(&(h as u64).to_be_bytes());
            assert!(store.announce(hash, "10.0.0.2:1".parse().unwrap(), now));
        }
        assert!(
            !store.announce([9; 20], "10.0.0.2:1".parse().unwrap(), now),
            "full"
        );
        let later = now + PEER_TTL;
        assert!(store.peers(&[1; 20], false, later).is_empty());
        assert!(
            store.announce([9; 20], "10.0.0.2:1".parse().unwrap(), later),
            "expired room"
        );
        assert_eq!(store.counts(), (1, 1));
    }
}
