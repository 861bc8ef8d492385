//! Carrying out the [`PeerRoster`](crate::engine::roster::PeerRoster)'s decisions: dialling the
//! addresses it picks, admitting handshaken peers into connection tasks, and choking rounds.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::engine::peer::PeerStream;
use tokio::sync::mpsc;

use super::TorrentEvent;
use crate::engine::peer::{self, Connected, PeerCommand, PeerLink, PeerStats};
use crate::engine::picker::PeerKey;
use crate::engine::roster::PeerBook;
use crate::engine::snapshot::PeerSource;
use crate::wire::{Handshake, pex};

impl super::Torrent {
    pub(super) fn admit(
        &mut self,
        stream: PeerStream,
        addr: SocketAddr,
        handshake: &Handshake,
        inbound: bool,
    ) {
        let now = Instant::now();
        if !self.life.is_active() {
            self.roster.refused(addr, inbound, now);
            return;
        }
        let admitted = self.roster.admit(
            addr,
            handshake.peer_id,
            self.shared.our_id,
            inbound,
            self.params.live.max_peers(),
            now,
        );
        if let Err(refusal) = admitted {
            tracing::debug!(%addr, ?refusal, "peer turned away");
            return;
        }
        let Some(slot) = self.params.live.take_connection() else {
            self.roster.refused(addr, inbound, now);
            return;
        };
        let key = self.params.next_key.fetch_add(1, Ordering::Relaxed);
        let (tx, commands) = mpsc::unbounded_channel();
        // A new peer hears of the others at once (once its extension handshake is in).
        if let Some(peers) = self.pex_list() {
            let _ = tx.send(PeerCommand::Pex(peers));
        }
        let stats = Arc::new(PeerStats::default());
        self.shared.peers().insert(
            key,
            PeerLink {
                tx,
                stats: stats.clone(),
            },
        );
        self.roster.connected(
            key,
            PeerBook::new(addr, handshake.peer_id, stats.clone(), inbound),
        );
        tracing::debug!(torrent = %self.shared.meta.name, %addr, inbound, "peer connected");
        let connected = Connected {
            key,
            stream,
            addr,
            capabilities: handshake.capabilities(),
            listen_port: self.params.live.listen_port(),
            reply_handshake: inbound,
            commands,
            stats,
            dht: self.params.live.dht(),
        };
        let shared = self.shared.clone();
        tokio::spawn(async move {
            peer::run(shared, connected).await;
            drop(slot);
        });
    }

    /// Dials the peers the roster picks.
    pub(super) fn connect_more(&mut self) {
        let dial = self.roster.pick_dials(
            Instant::now(),
            self.is_finished(),
            self.params.live.max_peers(),
            self.params.live.connections_free(),
        );
        for addr in dial {
            let (info_hash, our_id) = (self.shared.meta.info_hash, self.shared.our_id);
            peer::dial(
                addr,
                info_hash,
                our_id,
                self.params.live.clone(),
                self.inbox.events_tx.clone(),
            );
        }
    }

    /// Tells every peer that speaks `ut_pex` about the others (each connection sends only
    /// what changed since its last message). Never for a private torrent (BEP 27).
    pub(super) fn exchange_peers(&self) {
        let Some(peers) = self.pex_list() else {
            return;
        };
        for link in self.shared.peers().values() {
            let _ = link.tx.send(PeerCommand::Pex(peers.clone()));
        }
    }

    /// The torrent's peers as `ut_pex` gives them (listen addresses and flags); `None` for a
    /// private torrent.
    fn pex_list(&self) -> Option<Arc<Vec<(SocketAddr, u8)>>> {
        if self.shared.meta.private {
            return None;
        }
        let peers: Vec<(SocketAddr, u8)> = self
            .roster
            .books()
            .filter_map(|book| {
                // An inbound peer is reachable at its listen port, if it told us one.
                let addr = if book.inbound {
                    match book.stats.listen_port.load(Ordering::Relaxed) {
                        0 => return None,
                        port => SocketAddr::new(book.addr.ip(), port),
                    }
                } else {
                    book.addr
                };
                let mut flags = 0;
                if book.stats.is_seed.load(Ordering::Relaxed) {
                    flags |= pex::FLAG_SEED;
                }
                if !book.inbound {
                    flags |= pex::FLAG_REACHABLE;
                }
                Some((addr, flags))
            })
            .collect();
        Some(Arc::new(peers))
    }

    /// Searches the DHT for peers (and announces our port there) when a search is due; the
    /// peers found arrive as events. Never for a private torrent.
    pub(super) fn search_dht(&mut self, now: Instant) {
        if self.shared.meta.private {
            return;
        }
        let Some(dht) = self.params.live.dht() else {
            return;
        };
        if !self.sources.dht_due(now) {
            return;
        }
        let mut found = dht.get_peers(
            self.shared.meta.info_hash.0,
            Some(self.params.live.listen_port()),
        );
        let events = self.inbox.events_tx.clone();
        tokio::spawn(async move {
            while let Some(peers) = found.recv().await {
                let _ = events.send(TorrentEvent::PeersFound {
                    source: PeerSource::Dht,
                    peers,
                });
            }
            let _ = events.send(TorrentEvent::DhtSearchDone);
        });
    }

    /// Registers with local discovery (BEP 14) while active; the peers it finds arrive as
    /// events. Never for a private torrent.
    pub(super) fn register_lsd(&mut self) {
        if self.shared.meta.private {
            return;
        }
        let Some(lsd) = self.params.live.lsd() else {
            return;
        };
        let mut found = lsd.register(self.shared.meta.info_hash, self.params.live.listen_port());
        let events = self.inbox.events_tx.clone();
        let task = tokio::spawn(async move {
            while let Some(peer) = found.recv().await {
                let _ = events.send(TorrentEvent::PeersFound {
                    source: PeerSource::Lsd,
                    peers: vec![peer],
                });
            }
        });
        self.sources.lsd_started(task.abort_handle());
    }

    pub(super) fn unchoke_if_slot_free(&mut self, key: PeerKey) {
        let peers = self.shared.peers();
        let unchoked = peers
            .values()
            .filter(|l| !l.stats.am_choking.load(Ordering::Relaxed))
            .count();
        if unchoked < self.params.live.upload_slots()
            && let Some(link) = peers.get(&key)
        {
            let _ = link.tx.send(PeerCommand::Unchoke);
        }
    }

    /// Runs a choking round when one is due: unchokes the peers the roster picks, chokes
    /// the rest.
    pub(super) fn choke_round(&mut self, now: Instant) {
        let slots = self.params.live.upload_slots();
        if let Some(unchoke) = self.roster.choke_round(now, self.is_finished(), slots) {
            for (key, link) in self.shared.peers().iter() {
                let _ = link.tx.send(if unchoke.contains(key) {
                    PeerCommand::Unchoke
                } else {
                    PeerCommand::Choke
                });
            }
        }
    }
}
