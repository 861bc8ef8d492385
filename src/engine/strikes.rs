//! [`Strikes`]: who sent data that failed its hash check, kept by IP address, so that a peer
//! cannot shed its record by reconnecting (or from another port), and a verdict that arrives
//! after the peer hung up still counts.
//!
//! A failed piece gives each of its contributors strikes (two if it was the only one, one if
//! it shared the piece); a piece that passes counts as good for each contributor. An address is
//! banned once it has [`BAN_AT_STRIKES`] strikes and at least one strike for every two good
//! pieces: a peer that corrupts one piece in three is banned, an honest one that happened to
//! share a few pieces with a liar is not.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;

use super::picker::PeerKey;

pub const BAN_AT_STRIKES: u32 = 4;
/// Addresses of departed connections remembered for verdicts still to come.
const REMEMBERED_CONNECTIONS: usize = 4096;

#[derive(Debug, Default, Clone, Copy)]
struct Record {
    strikes: u32,
    good: u32,
}

#[derive(Debug, Default)]
pub(crate) struct Strikes {
    records: HashMap<IpAddr, Record>,
    banned: HashSet<IpAddr>,
    /// Address of each connection key, newest last, kept after the connection closes.
    addresses: HashMap<PeerKey, IpAddr>,
    order: VecDeque<PeerKey>,
}

impl Strikes {
    /// Remembers the address behind a connection key.
    pub fn connected(&mut self, key: PeerKey, ip: IpAddr) {
        if self.addresses.insert(key, ip.to_canonical()).is_none() {
            self.order.push_back(key);
        }
        while self.order.len() > REMEMBERED_CONNECTIONS {
            if let Some(old) = self.order.pop_front() {
                self.addresses.remove(&old);
            }
        }
    }

    pub fn is_banned(&self, ip: IpAddr) -> bool {
        self.banned.contains(&ip.to_canonical())
    }

    /// A piece these connections sent passed its check.
    pub fn piece_passed(&mut self, contributors: &[PeerKey]) {
        for ip in self.ips(contributors) {
            let record = self.records.entry(ip).or_default();
            record.good = record.good.saturating_add(1);
        }
    }

    /// A piece these connections sent failed its check; returns the addresses banned by it.
    pub fn piece_failed(&mut self, contributors: &[PeerKey]) -> Vec<IpAddr> {
        let ips = self.ips(contributors);
        let weight = if ips.len() == 1 { 2 } else { 1 };
        let mut newly_banned = Vec::new();
        for ip in ips {
            let record = self.records.entry(ip).or_default();
            record.strikes = record.strikes.saturating_add(weight);
            let guilty =
                record.strikes >= BAN_AT_STRIKES && record.strikes.saturating_mul(2) >= record.good;
            if guilty && self.banned.insert(ip) {
                newly_banned.push(ip);
            }
        }
        newly_banned
    }

    /// The distinct addresses behind some connection keys.
    fn ips(&self, keys: &[PeerKey]) -> Vec<IpAddr> {
        let mut ips: Vec<IpAddr> = keys
            .iter()
            .filter_map(|k| self.addresses.get(k).copied())
            .collect();
        ips.sort_unstable();
        ips.dedup();
        ips
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    #[test]
    fn a_peer_alone_on_two_bad_pieces_is_banned() {
        let mut s = Strikes::default();
        s.connected(1, ip(2));
        assert!(s.piece_failed(&[1]).is_empty());
        assert_eq!(s.piece_failed(&[1]), vec![ip(2)]);
        assert!(s.is_banned(ip(2)));
        assert!(!s.is_banned(ip(3)));
    }

    #[test]
    fn strikes_follow_the_address_across_connections_and_hang_ups() {
        let mut s = Strikes::default();
        // Each connection sends one bad piece and hangs up before the verdict; the keys are
        // new each time, the address is not.
        for key in 1..=2 {
            s.connected(key, ip(2));
        }
        s.piece_failed(&[1]);
        assert_eq!(s.piece_failed(&[2]), vec![ip(2)]);
        let mapped: IpAddr = "::ffff:127.0.0.2".parse().unwrap();
        assert!(
            s.is_banned(mapped),
            "IPv4-mapped addresses are the same peer"
        );
    }

    #[test]
    fn one_bad_piece_in_three_is_banned() {
        let mut s = Strikes::default();
        s.connected(1, ip(2));
        let mut banned_after = None;
        for piece in 0..30 {
            if piece % 3 == 2 {
                if !s.piece_failed(&[1]).is_empty() {
                    banned_after = Some(piece);
                    break;
                }
            } else {
                s.piece_passed(&[1]);
            }
        }
        assert_eq!(banned_after, Some(5), "banned at its second bad piece");
    }

    #[test]
    fn an_honest_peer_sharing_a_few_bad_pieces_is_not_banned() {
        let mut s = Strikes::default();
        s.connected(1, ip(2)); // the liar
        s.connected(2, ip(3)); // honest
        for _ in 0..20 {
            s.piece_passed(&[2]);
        }
        for _ in 0..4 {
            s.piece_failed(&[1, 2]);
        }
        assert!(s.is_banned(ip(2)));
        assert!(!s.is_banned(ip(3)), "4 strikes against 20 good pieces");
    }

    #[test]
    fn remembers_a_bounded_number_of_connections() {
        let mut s = Strikes::default();
        for key in 0..(REMEMBERED_CONNECTIONS as u64 + 10) {
            s.connected(key, ip(9));
        }
        assert_eq!(s.addresses.len(), REMEMBERED_CONNECTIONS);
        assert!(!s.addresses.contains_key(&0));
    }
}
