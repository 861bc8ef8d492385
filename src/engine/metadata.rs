//! [`MetadataFetch`]: assembling a torrent's info dictionary from peers (BEP 9), for a torrent
//! added by magnet link. Pure bookkeeping: which piece to ask which peer for, what to do with
//! data, rejects and silence, and the SHA-1 check of the whole against the info hash.
//!
//! Several peers are asked at once, one piece each at a time; a piece not answered within
//! [`REQUEST_TIMEOUT`] or rejected is asked of another peer. A peer that sends a piece it was
//! not asked for, or data of the wrong size, is to be dropped. When the assembled dictionary
//! does not hash to the info hash, every piece is fetched again. A set from one peer names
//! that peer (to be dropped). A set from several cannot tell the liar from the honest, so
//! none is blamed, and from then on each set is fetched whole from one peer ("solo"): the
//! next bad one names its sender.

use std::time::{Duration, Instant};

use sha1::{Digest, Sha1};

use crate::engine::picker::PeerKey;
use crate::ids::InfoHash;
use crate::wire::metadata::{MAX_METADATA_SIZE, piece_count, piece_len};

/// How long a piece request may go unanswered before another peer is asked.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a peer is to be dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataFault {
    #[error("sent metadata piece {0}, which it was not asked for")]
    Unasked(u32),
    #[error("says the metadata is {said} bytes, where {known} are known")]
    SizeMismatch { said: u64, known: u64 },
    #[error("offers metadata of {0} bytes, over the cap")]
    TooLarge(u64),
}

/// What finished data amounted to.
#[derive(Debug, PartialEq, Eq)]
pub enum Assembled {
    /// More pieces are due.
    Pending,
    /// The whole dictionary, hashing to the info hash.
    Done(Vec<u8>),
    /// The pieces did not hash to the info hash, and are being fetched again. The peer that
    /// sent them all, when one did: it lied.
    BadHash(Option<PeerKey>),
}

struct Piece {
    data: Option<Vec<u8>>,
    /// Who sent the data held.
    from: Option<PeerKey>,
    /// Asked of this peer at this time.
    asked: Option<(PeerKey, Instant)>,
}

pub struct MetadataFetch {
    info_hash: InfoHash,
    size: Option<u64>,
    pieces: Vec<Piece>,
    /// Each set comes from one peer (after a bad set from several).
    solo: bool,
}

impl MetadataFetch {
    pub fn new(info_hash: InfoHash) -> Self {
        Self {
            info_hash,
            size: None,
            pieces: Vec::new(),
            solo: false,
        }
    }

    /// The size in bytes, once a peer has said it.
    pub fn size(&self) -> Option<u64> {
        self.size
    }

    /// Pieces held so far, and pieces in all (0 while the size is unknown).
    pub fn progress(&self) -> (u32, u32) {
        let held = self.pieces.iter().filter(|p| p.data.is_some()).count() as u32;
        (held, self.pieces.len() as u32)
    }

    /// A peer's `metadata_size` (from its extension handshake). The first one sets the size;
    /// a peer that disagrees with it is at fault.
    pub fn peer_size(&mut self, size: u64) -> Result<(), MetadataFault> {
        if size == 0 || size > MAX_METADATA_SIZE {
            return Err(MetadataFault::TooLarge(size));
        }
        match self.size {
            Some(known) if known != size => Err(MetadataFault::SizeMismatch { said: size, known }),
            Some(_) => Ok(()),
            None => {
                self.size = Some(size);
                self.pieces = (0..piece_count(size))
                    .map(|_| Piece {
                        data: None,
                        from: None,
                        asked: None,
                    })
                    .collect();
                Ok(())
            }
        }
    }

    /// The next piece to ask `peer` for, if any: one held by nobody and asked of nobody (or
    /// asked too long ago); never a second one while `peer` has one outstanding. Marks it
    /// asked.
    pub fn next_request(&mut self, peer: PeerKey, now: Instant) -> Option<u32> {
        let outstanding = self.pieces.iter().any(|p| {
            p.data.is_none()
                && matches!(p.asked, Some((k, at)) if k == peer && now < at + REQUEST_TIMEOUT)
        });
        if outstanding {
            return None;
        }
        if self.solo && !self.may_take_over(peer, now) {
            return None;
        }
        let index = self.pieces.iter().position(|p| {
            p.data.is_none() && p.asked.is_none_or(|(_, at)| now >= at + REQUEST_TIMEOUT)
        })?;
        self.pieces[index].asked = Some((peer, now));
        Some(index as u32)
    }

    /// In solo mode, whether `peer` may fetch the set: nobody else is being asked, and any
    /// pieces another peer sent are dropped (it stalled, or left).
    fn may_take_over(&mut self, peer: PeerKey, now: Instant) -> bool {
        let others_asked = self.pieces.iter().any(|p| {
            p.data.is_none()
                && matches!(p.asked, Some((k, at)) if k != peer && now < at + REQUEST_TIMEOUT)
        });
        if others_asked {
            return false;
        }
        if self
            .pieces
            .iter()
            .any(|p| p.from.is_some_and(|k| k != peer))
        {
            self.clear();
        }
        true
    }

    fn clear(&mut self) {
        for p in &mut self.pieces {
            *p = Piece {
                data: None,
                from: None,
                asked: None,
            };
        }
    }

    /// `peer` rejected `piece`: it may be asked of another peer at once.
    pub fn rejected(&mut self, peer: PeerKey, piece: u32) {
        if let Some(p) = self.pieces.get_mut(piece as usize)
            && p.asked.is_some_and(|(k, _)| k == peer)
        {
            p.asked = None;
        }
    }

    /// `peer` is gone: what it was asked for is free again.
    pub fn peer_gone(&mut self, peer: PeerKey) {
        for p in &mut self.pieces {
            if p.data.is_none() && p.asked.is_some_and(|(k, _)| k == peer) {
                p.asked = None;
            }
        }
    }

    /// `peer` sent `piece` of `total_size` bytes (already checked for its length by the
    /// wire). Data for a piece it was not asked for is a fault.
    pub fn data(
        &mut self,
        peer: PeerKey,
        piece: u32,
        total_size: u64,
        data: Vec<u8>,
    ) -> Result<Assembled, MetadataFault> {
        if let Some(known) = self.size
            && known != total_size
        {
            return Err(MetadataFault::SizeMismatch {
                said: total_size,
                known,
            });
        }
        let Some(p) = self.pieces.get_mut(piece as usize) else {
            return Err(MetadataFault::Unasked(piece));
        };
        if p.asked.is_none_or(|(k, _)| k != peer)
            || p.data.is_some()
            || self.size.and_then(|s| piece_len(s, piece)) != Some(data.len())
        {
            return Err(MetadataFault::Unasked(piece));
        }
        p.data = Some(data);
        p.from = Some(peer);
        if self.pieces.iter().any(|p| p.data.is_none()) {
            return Ok(Assembled::Pending);
        }
        let whole: Vec<u8> = self
            .pieces
            .iter()
            .flat_map(|p| p.data.iter().flatten().copied())
            .collect();
        if <[u8; 20]>::from(Sha1::digest(&whole)) == self.info_hash.0 {
            return Ok(Assembled::Done(whole));
        }
        let mut senders: Vec<PeerKey> = self.pieces.iter().filter_map(|p| p.from).collect();
        senders.sort_unstable();
        senders.dedup();
        self.clear();
        let liar = match senders.as_slice() {
            [one] => Some(*one),
            _ => {
                self.solo = true;
                None
            }
        };
        Ok(Assembled::BadHash(liar))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::metadata::METADATA_PIECE_LEN;

    fn info(len: usize) -> (Vec<u8>, InfoHash) {
        let bytes: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        let hash = InfoHash(Sha1::digest(&bytes).into());
        (bytes, hash)
    }

    fn piece(bytes: &[u8], i: u32) -> Vec<u8> {
        let start = i as usize * METADATA_PIECE_LEN;
        bytes[start..(start + METADATA_PIECE_LEN).min(bytes.len())].to_vec()
    }

    #[test]
    fn pieces_from_several_peers_assemble_and_verify() {
        let (bytes, hash) = info(40_000);
        let mut fetch = MetadataFetch::new(hash);
        let now = Instant::now();
        assert_eq!(fetch.next_request(1, now), None, "size unknown");
        fetch.peer_size(40_000).unwrap();
        assert_eq!(fetch.progress(), (0, 3));
        assert_eq!(fetch.next_request(1, now), Some(0));
        assert_eq!(fetch.next_request(1, now), None, "one at a time per peer");
        assert_eq!(fetch.next_request(2, now), Some(1));
        assert_eq!(fetch.next_request(3, now), Some(2));
        assert_eq!(
            fetch.data(2, 1, 40_000, piece(&bytes, 1)),
            Ok(Assembled::Pending)
        );
        assert_eq!(
            fetch.data(3, 2, 40_000, piece(&bytes, 2)),
            Ok(Assembled::Pending)
        );
        assert_eq!(
            fetch.data(1, 0, 40_000, piece(&bytes, 0)),
            Ok(Assembled::Done(bytes))
        );
    }

    #[test]
    fn rejects_timeouts_and_departures_free_a_piece_for_another_peer() {
        let (_, hash) = info(20_000);
        let mut fetch = MetadataFetch::new(hash);
        fetch.peer_size(20_000).unwrap();
        let now = Instant::now();
        assert_eq!(fetch.next_request(1, now), Some(0));
        assert_eq!(fetch.next_request(2, now), Some(1));
        assert_eq!(fetch.next_request(3, now), None, "both asked");
        fetch.rejected(1, 0);
        assert_eq!(fetch.next_request(3, now), Some(0), "rejected: asked again");
        fetch.peer_gone(2);
        assert_eq!(fetch.next_request(4, now), Some(1), "its peer left");
        let later = now + REQUEST_TIMEOUT;
        assert_eq!(fetch.next_request(5, later), Some(0), "unanswered too long");
    }

    #[test]
    fn hostile_peers_are_faulted_and_a_bad_set_is_fetched_again() {
        let (bytes, hash) = info(20_000);
        let mut fetch = MetadataFetch::new(hash);
        assert_eq!(
            fetch.peer_size(1 << 31),
            Err(MetadataFault::TooLarge(1 << 31))
        );
        fetch.peer_size(20_000).unwrap();
        assert!(matches!(
            fetch.peer_size(30_000),
            Err(MetadataFault::SizeMismatch { .. })
        ));
        let now = Instant::now();
        assert_eq!(
            fetch.data(9, 0, 20_000, piece(&bytes, 0)),
            Err(MetadataFault::Unasked(0)),
            "never asked"
        );
        assert_eq!(fetch.next_request(1, now), Some(0));
        assert_eq!(
            fetch.data(1, 5, 20_000, vec![0; 10]),
            Err(MetadataFault::Unasked(5)),
            "out of range"
        );
        assert_eq!(fetch.next_request(2, now), Some(1));
        assert_eq!(
            fetch.data(1, 0, 20_000, piece(&bytes, 0)),
            Ok(Assembled::Pending)
        );
        let mut forged = piece(&bytes, 1);
        forged[0] ^= 1;
        assert_eq!(
            fetch.data(2, 1, 20_000, forged.clone()),
            Ok(Assembled::BadHash(None)),
            "two senders: which one lied cannot be told"
        );
        assert_eq!(fetch.progress(), (0, 2), "everything is fetched again");

        // From now on a set comes from one peer: the liar is found by its own set.
        assert_eq!(fetch.next_request(2, now), Some(0));
        assert_eq!(fetch.next_request(1, now), None, "peer 2 has the set");
        assert_eq!(
            fetch.data(2, 0, 20_000, piece(&bytes, 0)),
            Ok(Assembled::Pending)
        );
        assert_eq!(fetch.next_request(2, now), Some(1));
        assert_eq!(
            fetch.data(2, 1, 20_000, forged),
            Ok(Assembled::BadHash(Some(2)))
        );
        assert_eq!(fetch.next_request(1, now), Some(0));
        assert_eq!(
            fetch.data(1, 0, 20_000, piece(&bytes, 0)),
            Ok(Assembled::Pending)
        );
        // A peer that stalls with the set loses it to another.
        let later = now + REQUEST_TIMEOUT;
        assert_eq!(fetch.next_request(1, now), Some(1));
        assert_eq!(fetch.next_request(3, later), Some(0), "peer 1 stalled");
        assert_eq!(fetch.progress(), (0, 2), "its pieces are dropped");
        assert_eq!(
            fetch.data(3, 0, 20_000, piece(&bytes, 0)),
            Ok(Assembled::Pending)
        );
        assert_eq!(fetch.next_request(3, later), Some(1));
        assert_eq!(
            fetch.data(3, 1, 20_000, piece(&bytes, 1)),
            Ok(Assembled::Done(bytes))
        );
    }
}
