//! [`PeerRoster`]: a torrent's peers (or those of a magnet link's metadata fetch). The connections it has, the addresses it knows and when
//! each may be dialled again, its own addresses, strikes and bans, and the choking rounds.
//!
//! Pure bookkeeping: the actor asks it whom to dial, whom to admit, whom to unchoke and whom to
//! drop, and does the dialling and the telling itself.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::engine::choker::{self, Candidate};
use crate::engine::peer::PeerStats;
use crate::engine::picker::PeerKey;
use crate::engine::rate::RateMeter;
use crate::engine::strikes::Strikes;
use crate::ids::PeerId;

/// Outbound handshakes in progress at once, per torrent.
pub(crate) const MAX_HALF_OPEN: usize = 8;
const CHOKE_EVERY: Duration = Duration::from_secs(10);
const OPTIMISTIC_EVERY: Duration = Duration::from_secs(30);
/// A peer that hung up is not dialled again before this.
const REDIAL_AFTER_CLOSE: Duration = Duration::from_secs(30);
/// A peer turned away (a duplicate, or no room) is not dialled again before this.
const REDIAL_AFTER_REFUSAL: Duration = Duration::from_secs(60);
/// Addresses kept per torrent (as libtorrent's `max_peerlist_size`); past it, those that
/// failed most, then the oldest, are forgotten.
pub(crate) const MAX_KNOWN: usize = 3000;

/// The torrent's record of one connection.
pub(crate) struct PeerBook {
    pub addr: SocketAddr,
    pub peer_id: PeerId,
    pub stats: Arc<PeerStats>,
    pub down: RateMeter,
    pub up: RateMeter,
    pub inbound: bool,
}

impl PeerBook {
    /// The client's name: what it says in its extension handshake, else what its peer id
    /// tells.
    pub fn client_name(&self) -> String {
        self.stats
            .client
            .get()
            .cloned()
            .unwrap_or_else(|| self.peer_id.client())
    }

    pub fn new(addr: SocketAddr, peer_id: PeerId, stats: Arc<PeerStats>, inbound: bool) -> Self {
        Self {
            addr,
            peer_id,
            stats,
            down: RateMeter::new(0),
            up: RateMeter::new(0),
            inbound,
        }
    }
}

#[derive(Default)]
struct KnownPeer {
    /// When it was learned, in the roster's count of addresses learned.
    learned: u64,
    failures: u32,
    next_try: Option<Instant>,
    /// Learned to be a seed while we were one too: not worth dialling when complete.
    seed: bool,
}

/// Why a handshaken peer is not admitted.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    Banned,
    /// It is us (we dialled our own listen address).
    Ourselves,
    /// The same peer id is already connected.
    Duplicate,
    /// The torrent has its fill of peers.
    Full,
}

#[derive(Default)]
pub(crate) struct PeerRoster {
    peers: HashMap<PeerKey, PeerBook>,
    known: HashMap<SocketAddr, KnownPeer>,
    /// Addresses learned so far (numbers [`KnownPeer::learned`]).
    learned: u64,
    connecting: HashSet<SocketAddr>,
    strikes: Strikes,
    /// Our own listen addresses, found by connecting to ourselves.
    own_addrs: HashSet<SocketAddr>,
    optimistic: Option<PeerKey>,
    last_choke: Option<Instant>,
    last_optimistic: Option<Instant>,
    /// Connections we are closing because the torrent stops: dialled again at once.
    closing_to_stop: HashSet<PeerKey>,
}

impl PeerRoster {
    pub fn books(&self) -> impl Iterator<Item = &PeerBook> {
        self.peers.values()
    }

    pub fn book(&self, key: PeerKey) -> Option<&PeerBook> {
        self.peers.get(&key)
    }

    /// Every address known, those of dialled connections first: what a torrent that takes
    /// over from a magnet link's fetch dials.
    pub fn addresses(&self) -> Vec<SocketAddr> {
        let mut seen = HashSet::new();
        self.peers
            .values()
            .filter(|b| !b.inbound)
            .map(|b| b.addr)
            .chain(self.known.keys().copied())
            .filter(|a| seen.insert(*a))
            .collect()
    }

    /// Not to be dialled again before `until` (a peer that misbehaved).
    pub fn shun(&mut self, addr: SocketAddr, until: Instant) {
        self.known.entry(addr).or_default().next_try = Some(until);
    }

    /// Addresses known (connected or not).
    pub fn known_count(&self) -> usize {
        self.known.len()
    }

    /// No peer connected, none being dialled.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty() && self.connecting.is_empty()
    }

    /// Addresses from a tracker (or PEX, the DHT, the user), except our own listen address
    /// `own` (any loopback address with its port, when it listens on all). At most
    /// [`MAX_KNOWN`] are kept.
    pub fn learn(&mut self, addrs: &[SocketAddr], own: SocketAddr) {
        for addr in addrs {
            // Listening on every address, any loopback one with our port is us.
            let local = addr.ip().is_loopback() || addr.ip().is_unspecified();
            let ours = addr.port() == own.port()
                && (addr.ip() == own.ip() || (own.ip().is_unspecified() && local));
            if !ours && !self.known.contains_key(addr) {
                self.learned += 1;
                let learned = self.learned;
                self.known.insert(
                    *addr,
                    KnownPeer {
                        learned,
                        ..KnownPeer::default()
                    },
                );
            }
        }
        self.forget_beyond(MAX_KNOWN);
    }

    /// Forgets addresses beyond `keep`: those that failed most first, then the oldest; never
    /// one connected or being dialled.
    fn forget_beyond(&mut self, keep: usize) {
        let excess = self.known.len().saturating_sub(keep);
        if excess == 0 {
            return;
        }
        let connected: HashSet<SocketAddr> = self.peers.values().map(|p| p.addr).collect();
        let mut candidates: Vec<(u32, u64, SocketAddr)> = self
            .known
            .iter()
            .filter(|(addr, _)| !connected.contains(addr) && !self.connecting.contains(addr))
            .map(|(addr, k)| (k.failures, k.learned, *addr))
            .collect();
        // Most failures first; among equals, the earliest learned.
        candidates.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        for (_, _, addr) in candidates.into_iter().take(excess) {
            self.known.remove(&addr);
        }
    }

    /// Picks addresses to dial now and marks them as connecting: not connected, not banned,
    /// not ours, not a seed when we are complete, past their back-off; within `max_peers`,
    /// [`MAX_HALF_OPEN`] and the session's free connections.
    pub fn pick_dials(
        &mut self,
        now: Instant,
        complete: bool,
        max_peers: usize,
        connections_free: usize,
    ) -> Vec<SocketAddr> {
        let budget = max_peers
            .saturating_sub(self.peers.len() + self.connecting.len())
            .min(MAX_HALF_OPEN.saturating_sub(self.connecting.len()))
            .min(connections_free);
        if budget == 0 || self.known.is_empty() {
            return Vec::new();
        }
        let connected: HashSet<SocketAddr> = self.peers.values().map(|p| p.addr).collect();
        let chosen: Vec<SocketAddr> = self
            .known
            .iter()
            .filter(|(addr, k)| {
                let busy = connected.contains(addr) || self.connecting.contains(addr);
                let unwanted = self.strikes.is_banned(addr.ip())
                    || self.own_addrs.contains(addr)
                    || (complete && k.seed);
                !busy && !unwanted && k.next_try.is_none_or(|t| t <= now)
            })
            .map(|(addr, _)| *addr)
            .take(budget)
            .collect();
        self.connecting.extend(&chosen);
        chosen
    }

    /// When the next address may be dialled (`now` if one may be already), if any is worth it.
    pub fn next_dial_at(&self, complete: bool, now: Instant) -> Option<Instant> {
        self.known
            .iter()
            .filter(|(addr, k)| {
                !(self.strikes.is_banned(addr.ip())
                    || self.own_addrs.contains(addr)
                    || (complete && k.seed))
            })
            .map(|(_, k)| k.next_try.unwrap_or(now))
            .min()
    }

    /// A dial failed: back off 20 s, doubling with each failure up to about an hour and a half.
    pub fn dial_failed(&mut self, addr: SocketAddr, now: Instant) {
        self.connecting.remove(&addr);
        let known = self.known.entry(addr).or_default();
        known.failures += 1;
        known.next_try = Some(now + Duration::from_secs(10 * 2u64.pow(known.failures.min(8))));
    }

    /// Decides whether a handshaken peer may join. A refused dialled peer waits before it is
    /// dialled again; our own address is remembered and never dialled again.
    pub fn admit(
        &mut self,
        addr: SocketAddr,
        peer_id: PeerId,
        our_id: PeerId,
        inbound: bool,
        max_peers: usize,
        now: Instant,
    ) -> Result<(), Refusal> {
        if !inbound {
            self.connecting.remove(&addr);
        }
        let refusal = if peer_id == our_id {
            self.own_addrs.insert(addr);
            return Err(Refusal::Ourselves);
        } else if self.strikes.is_banned(addr.ip()) || self.own_addrs.contains(&addr) {
            Refusal::Banned
        } else if self.peers.values().any(|p| p.peer_id == peer_id) {
            Refusal::Duplicate
        } else if self.peers.len() >= max_peers {
            Refusal::Full
        } else {
            return Ok(());
        };
        self.refused(addr, inbound, now);
        Err(refusal)
    }

    /// A peer was turned away after the roster admitted it (no session-wide slot).
    pub fn refused(&mut self, addr: SocketAddr, inbound: bool, now: Instant) {
        if !inbound {
            self.connecting.remove(&addr);
            self.known.entry(addr).or_default().next_try = Some(now + REDIAL_AFTER_REFUSAL);
        }
    }

    /// Records an admitted connection.
    pub fn connected(&mut self, key: PeerKey, book: PeerBook) {
        self.strikes.connected(key, book.addr.ip());
        if !book.inbound {
            let known = self.known.entry(book.addr).or_default();
            known.failures = 0;
            known.next_try = None;
        }
        self.peers.insert(key, book);
    }

    /// The torrent stops: every connection now open is being closed by us, and its peer did
    /// nothing to wait for.
    pub fn stopping(&mut self) {
        self.closing_to_stop.extend(self.peers.keys().copied());
    }

    /// A connection ended. A dialled peer may be dialled again later (never, while complete,
    /// if both sides were seeds), at once if we closed it to stop; an inbound one's address
    /// has an ephemeral port: forgotten.
    pub fn closed(&mut self, key: PeerKey, both_seeds: bool, now: Instant) -> Option<PeerBook> {
        let by_stop = self.closing_to_stop.remove(&key);
        if self.optimistic == Some(key) {
            self.optimistic = None;
        }
        let book = self.peers.remove(&key)?;
        if !book.inbound {
            let known = self.known.entry(book.addr).or_default();
            known.seed |= both_seeds;
            // A peer shunned while connected stays shunned.
            let redial = if by_stop {
                now
            } else {
                now + REDIAL_AFTER_CLOSE
            };
            known.next_try = Some(known.next_try.map_or(redial, |t| t.max(redial)));
        }
        Some(book)
    }

    pub fn piece_passed(&mut self, contributors: &[PeerKey]) {
        self.strikes.piece_passed(contributors);
    }

    /// A piece failed its check: strikes for its contributors. Returns the addresses banned
    /// by it and the connections from them, to drop.
    pub fn piece_failed(&mut self, contributors: &[PeerKey]) -> (Vec<IpAddr>, Vec<PeerKey>) {
        let banned = self.strikes.piece_failed(contributors);
        let drop = self
            .peers
            .iter()
            .filter(|(_, book)| banned.contains(&book.addr.ip().to_canonical()))
            .map(|(key, _)| *key)
            .collect();
        (banned, drop)
    }

    /// Updates every connection's rates from its counters; once a second.
    pub fn measure(&mut self) {
        for book in self.peers.values_mut() {
            book.down
                .update(book.stats.downloaded.load(Ordering::Relaxed));
            book.up.update(book.stats.uploaded.load(Ordering::Relaxed));
        }
    }

    /// When a choking round is due (every 10 s, and a new optimistic peer every 30 s), the
    /// peers to unchoke: ranked by what they give us, or when seeding by what they take.
    pub fn choke_round(
        &mut self,
        now: Instant,
        seeding: bool,
        slots: usize,
    ) -> Option<HashSet<PeerKey>> {
        let due =
            |last: Option<Instant>, every| last.is_none_or(|t| now.duration_since(t) >= every);
        let rotate = due(self.last_optimistic, OPTIMISTIC_EVERY);
        if !rotate && !due(self.last_choke, CHOKE_EVERY) {
            return None;
        }
        let candidates: Vec<Candidate> = self
            .peers
            .iter()
            .map(|(&key, book)| Candidate {
                key,
                interested: book.stats.peer_interested.load(Ordering::Relaxed),
                rate: if seeding {
                    book.up.rate()
                } else {
                    book.down.rate()
                },
            })
            .collect();
        self.last_choke = Some(now);
        if rotate {
            self.last_optimistic = Some(now);
        }
        Some(choker::choose(
            &candidates,
            slots,
            &mut self.optimistic,
            rotate,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Listening on every address at PORT.
    fn own() -> SocketAddr {
        SocketAddr::from(([0, 0, 0, 0], PORT))
    }

    const PORT: u16 = 6881;

    fn addr(last: u8, port: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, last], port))
    }

    fn id(n: u8) -> PeerId {
        PeerId([n; 20])
    }

    fn book(addr: SocketAddr, n: u8, inbound: bool) -> PeerBook {
        PeerBook::new(addr, id(n), Arc::new(PeerStats::default()), inbound)
    }

    #[test]
    fn our_own_listen_port_is_not_learned() {
        let mut roster = PeerRoster::default();
        let ours = SocketAddr::from(([127, 0, 0, 1], PORT));
        roster.learn(&[ours, addr(1, PORT)], own());
        assert_eq!(
            roster.pick_dials(Instant::now(), false, 50, 500),
            vec![addr(1, PORT)]
        );
    }

    #[test]
    fn known_addresses_are_capped_forgetting_the_failed_then_the_oldest() {
        let mut roster = PeerRoster::default();
        let many = |from: u32, n: u32| -> Vec<SocketAddr> {
            (from..from + n)
                .map(|i| SocketAddr::from(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], PORT)))
                .collect()
        };
        let first = many(0, MAX_KNOWN as u32);
        roster.learn(&first, own());
        let now = Instant::now();
        // One that keeps failing, one connected, one being dialled.
        roster.dial_failed(first[100], now);
        let connected = first[1];
        roster.connected(1, book(connected, 1, false));
        roster.connecting.insert(first[2]);
        roster.learn(&many(MAX_KNOWN as u32, 5), own());
        assert_eq!(roster.known.len(), MAX_KNOWN);
        assert!(
            !roster.known.contains_key(&first[100]),
            "the failed one goes first"
        );
        for kept in [connected, first[2], first[6]] {
            assert!(roster.known.contains_key(&kept), "{kept} is kept");
        }
        for oldest in [first[0], first[3], first[4], first[5]] {
            assert!(
                !roster.known.contains_key(&oldest),
                "{oldest} was the oldest"
            );
        }
        assert!(
            many(MAX_KNOWN as u32, 5)
                .iter()
                .all(|a| roster.known.contains_key(a))
        );
    }

    #[test]
    fn dialling_respects_the_half_open_cap_and_the_limits() {
        let mut roster = PeerRoster::default();
        let addrs: Vec<_> = (1..=20).map(|i| addr(i, PORT)).collect();
        roster.learn(&addrs, own());
        let now = Instant::now();
        assert_eq!(roster.pick_dials(now, false, 50, 500).len(), MAX_HALF_OPEN);
        assert!(
            roster.pick_dials(now, false, 50, 500).is_empty(),
            "all half-open slots taken"
        );

        let mut tight = PeerRoster::default();
        tight.learn(&addrs, own());
        assert_eq!(tight.pick_dials(now, false, 3, 500).len(), 3);
        let mut no_room = PeerRoster::default();
        no_room.learn(&addrs, own());
        assert_eq!(no_room.pick_dials(now, false, 50, 2).len(), 2);
    }

    #[test]
    fn failed_dials_back_off_doubling() {
        let mut roster = PeerRoster::default();
        let a = addr(1, PORT);
        roster.learn(&[a], own());
        let t0 = Instant::now();
        assert_eq!(roster.pick_dials(t0, false, 50, 500), vec![a]);
        roster.dial_failed(a, t0);
        assert!(
            roster
                .pick_dials(t0 + Duration::from_secs(19), false, 50, 500)
                .is_empty()
        );
        assert_eq!(
            roster.pick_dials(t0 + Duration::from_secs(20), false, 50, 500),
            vec![a]
        );
        roster.dial_failed(a, t0);
        assert!(
            roster
                .pick_dials(t0 + Duration::from_secs(39), false, 50, 500)
                .is_empty()
        );
        assert_eq!(
            roster.pick_dials(t0 + Duration::from_secs(40), false, 50, 500),
            vec![a]
        );
    }

    #[test]
    fn admission_refuses_ourselves_duplicates_and_a_full_torrent() {
        let mut roster = PeerRoster::default();
        let now = Instant::now();
        let us = addr(9, PORT);
        assert_eq!(
            roster.admit(us, id(0), id(0), false, 50, now),
            Err(Refusal::Ourselves)
        );
        roster.learn(&[us], own());
        assert!(
            roster.pick_dials(now, false, 50, 500).is_empty(),
            "never dial ourselves"
        );

        assert_eq!(
            roster.admit(addr(1, PORT), id(1), id(0), false, 50, now),
            Ok(())
        );
        roster.connected(1, book(addr(1, PORT), 1, false));
        assert_eq!(
            roster.admit(addr(2, PORT), id(1), id(0), false, 50, now),
            Err(Refusal::Duplicate)
        );
        assert_eq!(
            roster.admit(addr(3, PORT), id(3), id(0), true, 1, now),
            Err(Refusal::Full)
        );
        // The refused dialled peer waits a minute; the connected one is not dialled at all.
        roster.learn(&[addr(1, PORT)], own());
        assert!(
            roster
                .pick_dials(now + Duration::from_secs(59), false, 50, 500)
                .is_empty()
        );
        assert_eq!(
            roster.pick_dials(now + Duration::from_secs(60), false, 50, 500),
            vec![addr(2, PORT)]
        );
    }

    #[test]
    fn closed_peers_wait_and_seeds_are_skipped_when_complete() {
        let mut roster = PeerRoster::default();
        let now = Instant::now();
        roster.connected(1, book(addr(1, PORT), 1, false));
        roster.connected(2, book(addr(2, 50_000), 2, true));
        assert!(roster.closed(1, true, now).is_some());
        assert!(roster.closed(2, false, now).is_some());
        assert!(roster.closed(2, false, now).is_none(), "closed once");
        assert_eq!(roster.books().count(), 0);
        let later = now + REDIAL_AFTER_CLOSE;
        assert!(
            roster.pick_dials(later, true, 50, 500).is_empty(),
            "a seed, and we are one"
        );
        assert_eq!(
            roster.pick_dials(later, false, 50, 500),
            vec![addr(1, PORT)],
            "the inbound peer's ephemeral port is not dialled"
        );
    }

    #[test]
    fn peers_we_closed_to_stop_are_dialled_again_at_once() {
        let mut roster = PeerRoster::default();
        let now = Instant::now();
        roster.connected(1, book(addr(1, PORT), 1, false));
        roster.stopping();
        roster.connected(2, book(addr(2, PORT), 2, false));
        roster.closed(1, false, now);
        roster.closed(2, false, now);
        assert_eq!(
            roster.pick_dials(now, false, 50, 500),
            vec![addr(1, PORT)],
            "closed by our stop: at once; closed otherwise: after the redial delay"
        );
    }

    #[test]
    fn bad_pieces_ban_an_address_and_drop_its_connections() {
        let mut roster = PeerRoster::default();
        let now = Instant::now();
        let liar = addr(1, PORT);
        roster.connected(1, book(liar, 1, false));
        roster.connected(2, book(SocketAddr::new(liar.ip(), 7000), 2, true));
        roster.connected(3, book(addr(3, PORT), 3, false));
        let mut banned = Vec::new();
        for _ in 0..2 {
            let (ips, drop) = roster.piece_failed(&[1]);
            if !ips.is_empty() {
                banned = drop;
            }
        }
        banned.sort();
        assert_eq!(
            banned,
            vec![1, 2],
            "both connections from the banned address"
        );
        assert_eq!(
            roster.admit(SocketAddr::new(liar.ip(), 9), id(7), id(0), true, 50, now),
            Err(Refusal::Banned)
        );
        roster.closed(1, false, now);
        assert!(
            roster
                .pick_dials(now + Duration::from_secs(3600), false, 50, 500)
                .is_empty(),
            "a banned address is never dialled"
        );
    }

    #[test]
    fn choking_rounds_come_every_ten_seconds() {
        let mut roster = PeerRoster::default();
        let now = Instant::now();
        for n in 1..=3 {
            let b = book(addr(n, PORT), n, false);
            b.stats.peer_interested.store(true, Ordering::Relaxed);
            roster.connected(u64::from(n), b);
        }
        let first = roster
            .choke_round(now, true, 4)
            .expect("the first round is due at once");
        assert_eq!(first.len(), 3, "three interested peers, four slots");
        assert!(
            roster
                .choke_round(now + Duration::from_secs(9), true, 4)
                .is_none()
        );
        let next = roster
            .choke_round(now + Duration::from_secs(10), true, 2)
            .unwrap();
        assert_eq!(next.len(), 2);
    }
}
