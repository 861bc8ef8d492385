//! Downloading from a peer: interest, a pipeline of requests sized to its rate and capped by
//! its `reqq`, blocks received into the picker, and blocks given up on.

use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::Bytes;

use super::{Connection, MAX_ABANDONED, MAX_UNWANTED_BLOCKS, PeerCommand, PeerError};
use crate::bitfield::Bitfield;
use crate::engine::picker::BlockOutcome;
use crate::engine::torrent::TorrentEvent;
use crate::storage::disk::PieceOutcome;
use crate::wire::{BlockRef, Message};

impl Connection {
    /// Remembers blocks we stopped waiting for, so that their late arrival is not held against
    /// the peer.
    pub(super) fn abandon(&mut self, blocks: &[BlockRef]) {
        if self.abandoned.len() + blocks.len() > MAX_ABANDONED {
            self.abandoned.clear();
        }
        self.abandoned.extend(blocks.iter().copied());
    }

    pub(super) fn set_interested(&mut self, interested: bool) {
        if interested != self.am_interested {
            self.am_interested = interested;
            self.stats
                .am_interested
                .store(interested, Ordering::Relaxed);
            self.send(if interested {
                Message::Interested
            } else {
                Message::NotInterested
            });
        }
    }

    pub(super) async fn on_piece(
        &mut self,
        index: u32,
        begin: u32,
        data: Bytes,
    ) -> Result<(), PeerError> {
        let block = BlockRef {
            index,
            begin,
            length: data.len() as u32,
        };
        if !self.outstanding.remove(&block) {
            if self.abandoned.remove(&block) {
                return Ok(()); // late, after we gave up on it: no use, and no offence
            }
            self.unwanted_blocks += 1;
            if self.unwanted_blocks > MAX_UNWANTED_BLOCKS {
                return Err(PeerError::UnwantedFlood);
            }
            return Ok(());
        }
        self.shared.torrent_down_limit.acquire(data.len()).await;
        self.shared.down_limit.acquire(data.len()).await;
        self.last_block_at = Instant::now();
        self.stats
            .downloaded
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        self.shared.add_downloaded(data.len() as u64);
        let outcome = self.shared.picker().on_block(self.key, block, &data);
        if let BlockOutcome::Stored { cancel, complete } = outcome {
            if !cancel.is_empty() {
                let peers = self.shared.peers();
                for key in cancel {
                    if let Some(link) = peers.get(&key) {
                        let _ = link.tx.send(PeerCommand::Cancel(block));
                    }
                }
            }
            if let Some(piece) = complete {
                let len = piece.data.len() as u64;
                let slot = self.shared.disk.reserve_write(len).await;
                let meta = &self.shared.meta;
                let Some(expected) = meta.piece_hash(piece.index) else {
                    return Err(PeerError::Protocol("piece index out of range"));
                };
                let events = self.shared.events.clone();
                let (index, contributors) = (piece.index, piece.contributors);
                self.shared.disk.verify_and_write(
                    slot,
                    self.shared.storage(),
                    index as u64 * meta.piece_length,
                    piece.data,
                    expected,
                    move |outcome: PieceOutcome, buffer| {
                        let _ = events.send(TorrentEvent::PieceDone {
                            index,
                            outcome,
                            contributors,
                            buffer,
                        });
                    },
                );
            }
        }
        self.request_blocks();
        Ok(())
    }

    /// Tops the pipeline of requests up to its target depth, never past the peer's queue.
    /// While the peer chokes us, only pieces it allowed fast are asked for.
    pub(super) fn request_blocks(&mut self) {
        if !self.am_interested || (self.peer_choking && self.allowed_fast_in.is_empty()) {
            return;
        }
        let depth = self.pipeline.min(self.peer_queue);
        let free = depth.saturating_sub(self.outstanding.len());
        // Ask in batches so the picker is not locked for every single block.
        if free < (depth / 4).max(1) && !self.outstanding.is_empty() {
            return;
        }
        let mut picked = Vec::with_capacity(free);
        if self.peer_choking {
            let mut allowed = Bitfield::new(self.peer_has.len());
            for &i in &self.allowed_fast_in {
                if self.peer_has.get(i) {
                    allowed.set(i);
                }
            }
            self.shared
                .picker()
                .pick(self.key, &allowed, free, &mut picked);
        } else {
            self.shared
                .picker()
                .pick(self.key, &self.peer_has, free, &mut picked);
        }
        for block in picked {
            if self.outstanding.insert(block) {
                self.send(Message::Request(block));
            }
        }
    }
}
