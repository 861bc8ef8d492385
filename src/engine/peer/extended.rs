//! BEP 10's extended messages on a connection: the ids we receive them under, what a peer's
//! extension handshake says it speaks, serving our metadata (BEP 9 `ut_metadata`) and the
//! peer exchange both ways (BEP 11 `ut_pex`).
//!
//! A private torrent (BEP 27) speaks neither: its peers come from its trackers alone, and its
//! info dictionary is not handed out (as libtorrent does).

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Connection, PeerError};
use crate::engine::snapshot::PeerSource;
use crate::engine::torrent::TorrentEvent;
use crate::wire::metadata::{METADATA_PIECE_LEN, MetadataMessage, UT_METADATA, piece_len};
use crate::wire::pex::{MAX_PEX_PEERS, PexMessage, UT_PEX};
use crate::wire::{ExtensionHandshake, Message};

/// The id we receive `ut_metadata` messages under (libtorrent's choice too).
pub(crate) const UT_METADATA_ID: u8 = 2;
/// The id we receive `ut_pex` messages under.
pub(crate) const UT_PEX_ID: u8 = 1;
/// A peer's `ut_pex` messages closer together than this are dropped unread, and ours are
/// never closer (BEP 11 asks for one a minute; a little slack for timers).
const PEX_MIN_GAP: Duration = Duration::from_secs(45);

/// The `m` dictionary of our extension handshake.
pub(crate) fn our_messages(private: bool) -> BTreeMap<String, u8> {
    if private {
        return BTreeMap::new();
    }
    BTreeMap::from([
        (UT_METADATA.to_string(), UT_METADATA_ID),
        (UT_PEX.to_string(), UT_PEX_ID),
    ])
}

/// The ids a peer wants our extended messages under, from its extension handshake.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct PeerMessages {
    pub ut_metadata: Option<u8>,
    pub ut_pex: Option<u8>,
}

impl PeerMessages {
    pub fn of(handshake: &ExtensionHandshake) -> Self {
        Self {
            ut_metadata: handshake.messages.get(UT_METADATA).copied(),
            ut_pex: handshake.messages.get(UT_PEX).copied(),
        }
    }
}

/// The peers a connection has told its peer about, and makes the next `ut_pex` message from
/// the torrent's current list: what is new is `added`, what left is `dropped`, at most
/// [`MAX_PEX_PEERS`] of each (the rest waits for the next message). The first message goes
/// as soon as the peer's extension handshake says it speaks `ut_pex` (as libtorrent does),
/// the next ones at most once a minute.
#[derive(Debug, Default)]
pub(crate) struct PexSent {
    told: HashSet<SocketAddr>,
    /// The torrent's latest list, kept until it can be sent.
    latest: Option<Arc<Vec<(SocketAddr, u8)>>>,
    last_sent: Option<Instant>,
}

impl PexSent {
    /// The message for `current` (the torrent's peers with their flags), leaving out the
    /// peer itself; `None` when nothing changed.
    pub fn next(&mut self, current: &[(SocketAddr, u8)], peer: SocketAddr) -> Option<PexMessage> {
        let now: HashSet<SocketAddr> = current
            .iter()
            .map(|(a, _)| *a)
            .filter(|a| *a != peer)
            .collect();
        let added: Vec<(SocketAddr, u8)> = current
            .iter()
            .filter(|(a, _)| *a != peer && !self.told.contains(a))
            .take(MAX_PEX_PEERS)
            .copied()
            .collect();
        let dropped: Vec<SocketAddr> = self
            .told
            .iter()
            .filter(|a| !now.contains(a))
            .take(MAX_PEX_PEERS)
            .copied()
            .collect();
        for (a, _) in &added {
            self.told.insert(*a);
        }
        for a in &dropped {
            self.told.remove(a);
        }
        let message = PexMessage { added, dropped };
        (!message.is_empty()).then_some(message)
    }
}

impl Connection {
    /// An extended message other than the handshake, under one of our ids.
    pub(super) fn on_extended(&mut self, id: u8, payload: &[u8]) -> Result<(), PeerError> {
        if self.shared.meta.private {
            // We offered nothing: a private torrent's peer has no business sending these.
            return Ok(());
        }
        match id {
            UT_METADATA_ID => self.on_metadata_message(payload),
            UT_PEX_ID => self.on_pex(payload),
            _ => Ok(()),
        }
    }

    /// Serves a piece of our info dictionary, or rejects a piece past its end.
    fn on_metadata_message(&mut self, payload: &[u8]) -> Result<(), PeerError> {
        let message = MetadataMessage::decode(payload)?;
        let MetadataMessage::Request { piece } = message else {
            // Data or a reject for something we never ask a torrent's peers for.
            return Ok(());
        };
        let Some(their_id) = self.peer_messages.ut_metadata else {
            return Err(PeerError::Protocol(
                "ut_metadata request without the extension",
            ));
        };
        let info = self.shared.meta.info_bytes.clone();
        let total_size = info.len() as u64;
        let reply = match piece_len(total_size, piece) {
            Some(len) => {
                let start = piece as usize * METADATA_PIECE_LEN;
                MetadataMessage::Data {
                    piece,
                    total_size,
                    data: info.get(start..start + len).unwrap_or_default().to_vec(),
                }
            }
            None => MetadataMessage::Reject { piece },
        };
        self.send(Message::Extended {
            id: their_id,
            payload: reply.encode().into(),
        });
        Ok(())
    }

    /// Peers from a peer's `ut_pex` message go to the torrent's list of addresses.
    fn on_pex(&mut self, payload: &[u8]) -> Result<(), PeerError> {
        let now = Instant::now();
        if self
            .last_pex_in
            .is_some_and(|at| now.duration_since(at) < PEX_MIN_GAP)
        {
            return Ok(());
        }
        self.last_pex_in = Some(now);
        let message = PexMessage::decode(payload)?;
        let peers: Vec<SocketAddr> = message.added.into_iter().map(|(a, _)| a).collect();
        if !peers.is_empty() {
            let _ = self.shared.events.send(TorrentEvent::PeersFound {
                source: PeerSource::Pex,
                peers,
            });
        }
        Ok(())
    }

    /// Takes the torrent's current peers, and tells the peer what changed since our last
    /// message when one may be sent (its extension handshake is in, and a minute has passed).
    pub(super) fn send_pex(&mut self, current: Option<Arc<Vec<(SocketAddr, u8)>>>) {
        if let Some(current) = current {
            self.pex_sent.latest = Some(current);
        }
        let Some(their_id) = self.peer_messages.ut_pex else {
            return;
        };
        let now = Instant::now();
        if self
            .pex_sent
            .last_sent
            .is_some_and(|at| now.duration_since(at) < PEX_MIN_GAP)
        {
            return;
        }
        let Some(latest) = self.pex_sent.latest.clone() else {
            return;
        };
        if let Some(message) = self.pex_sent.next(&latest, self.addr) {
            self.pex_sent.last_sent = Some(now);
            self.send(Message::Extended {
                id: their_id,
                payload: message.encode().into(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(n: u8) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, n], 6881))
    }

    #[test]
    fn pex_sends_changes_only_and_never_the_peer_itself() {
        let mut sent = PexSent::default();
        let first = sent
            .next(&[(addr(1), 0), (addr(2), 2), (addr(9), 0)], addr(9))
            .unwrap();
        assert_eq!(first.added, vec![(addr(1), 0), (addr(2), 2)]);
        assert!(first.dropped.is_empty());
        assert_eq!(
            sent.next(&[(addr(1), 0), (addr(2), 2)], addr(9)),
            None,
            "nothing changed"
        );
        let second = sent.next(&[(addr(2), 2), (addr(3), 0)], addr(9)).unwrap();
        assert_eq!(second.added, vec![(addr(3), 0)]);
        assert_eq!(second.dropped, vec![addr(1)]);
    }

    #[test]
    fn pex_sends_at_most_fifty_and_the_rest_later() {
        let mut sent = PexSent::default();
        let many: Vec<(SocketAddr, u8)> = (0..80u16)
            .map(|i| (SocketAddr::from(([10, 1, (i >> 8) as u8, i as u8], 1)), 0))
            .collect();
        let first = sent.next(&many, addr(250)).unwrap();
        assert_eq!(first.added.len(), MAX_PEX_PEERS);
        let second = sent.next(&many, addr(250)).unwrap();
        assert_eq!(second.added.len(), 30, "the rest follow");
        let mut all: Vec<SocketAddr> = first
            .added
            .iter()
            .chain(&second.added)
            .map(|p| p.0)
            .collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 80);
    }

    #[test]
    fn private_torrents_offer_no_extended_messages() {
        assert!(our_messages(true).is_empty());
        let public = our_messages(false);
        assert_eq!(public.get(UT_METADATA), Some(&UT_METADATA_ID));
        assert_eq!(public.get(UT_PEX), Some(&UT_PEX_ID));
    }
}
