//! Serving a peer: its requests queue as (index, begin, length); blocks are read from disk in
//! windows and handed to the writer task at most [`WRITE_AHEAD_BLOCKS`] at a time. Every
//! request is answered: its block, a BEP 6 `reject`, or BEP 3's silence while choked.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::{Bytes, BytesMut};
use tokio::sync::Notify;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinHandle;

use super::{
    Connection, HARD_REQUEST_LIMIT, MAX_QUEUED_REQUESTS, PeerError, PeerStats, READ_CHUNK,
    READ_WINDOW, WRITE_AHEAD_BLOCKS,
};
use crate::engine::limiter::RateLimiter;
use crate::engine::shared::TorrentShared;
use crate::wire::{BLOCK_LEN, BlockRef, Message};

impl Connection {
    /// Queues a request, or says no: every request is answered, by its block, by a `reject`
    /// (BEP 6), or, for a peer without the fast extension, by the silence BEP 3 prescribes for
    /// requests while choked or for pieces we never said we have.
    pub(super) fn on_request(&mut self, block: BlockRef) -> Result<(), PeerError> {
        let piece_len = self.shared.meta.piece_len(block.index);
        let valid_range = block.index < self.shared.meta.piece_count()
            && block.length > 0
            && block.length <= BLOCK_LEN
            && block.begin as u64 + block.length as u64 <= piece_len;
        if !valid_range {
            return Err(PeerError::Protocol("request outside the piece"));
        }
        let choked = self.am_choking && !self.allowed_fast_out.contains(&block.index);
        let full = self.requests.len() >= MAX_QUEUED_REQUESTS;
        if choked || full || !self.shared.picker().have().get(block.index) {
            if self.extensions.fast {
                self.send(Message::Reject(block));
            } else if choked {
                // BEP 3: requests while choked are dropped, and the peer knows it.
            } else if !self.shared.picker().have().get(block.index) {
                return Err(PeerError::Protocol("request for a piece we do not have"));
            } else if self.requests.len() >= HARD_REQUEST_LIMIT {
                return Err(PeerError::RequestFlood);
            } else {
                // It was told our queue's size and cannot be refused: queue it anyway.
                self.requests.push_back(block);
                self.serve_requests();
            }
            return Ok(());
        }
        self.requests.push_back(block);
        self.serve_requests();
        Ok(())
    }

    /// Answers queued requests from the read window, starting a disk read when it runs dry;
    /// pauses while the writer has [`WRITE_AHEAD_BLOCKS`] blocks to write.
    pub(super) fn serve_requests(&mut self) {
        while let Some(&block) = self.requests.front() {
            if self.unsent.pieces.load(Ordering::Relaxed) >= WRITE_AHEAD_BLOCKS {
                break;
            }
            if let Some((index, start, data)) = &self.read_cache
                && *index == block.index
                && block.begin >= *start
                && (block.begin + block.length) as usize <= *start as usize + data.len()
            {
                let from = (block.begin - start) as usize;
                // A copy, so a slow reader cannot pin whole read windows in memory.
                let slice = Bytes::copy_from_slice(&data[from..from + block.length as usize]);
                self.requests.pop_front();
                self.send(Message::Piece {
                    index: block.index,
                    begin: block.begin,
                    data: slice,
                });
                continue;
            }
            if self.reading.is_none() {
                let start = block.begin - block.begin % READ_WINDOW;
                let piece_len = self.shared.meta.piece_len(block.index);
                // The window always covers the block, even one that crosses a window edge.
                let end = (start + READ_WINDOW).max(block.begin + block.length) as u64;
                let len = (end.min(piece_len) - start as u64) as usize;
                let offset = block.index as u64 * self.shared.meta.piece_length + start as u64;
                let disk = self.shared.disk.clone();
                let storage = self.shared.storage();
                let index = block.index;
                self.reading = Some(tokio::spawn(async move {
                    disk.read(storage, offset, len)
                        .await
                        .map(|data| (index, start, data))
                }));
            }
            break;
        }
    }
}

pub(super) async fn wait_for<T>(
    handle: &mut Option<JoinHandle<T>>,
) -> Result<T, tokio::task::JoinError> {
    match handle {
        Some(h) => h.await,
        None => std::future::pending().await,
    }
}

/// What a connection has handed its writer and the writer has not written yet.
#[derive(Default)]
pub(super) struct Unsent {
    /// Piece messages: serving pauses at [`WRITE_AHEAD_BLOCKS`].
    pub(super) pieces: AtomicUsize,
    /// Messages of every kind: the peer is dropped past [`MAX_UNSENT_MESSAGES`].
    pub(super) messages: AtomicUsize,
    /// Signalled each time the writer has written a batch.
    pub(super) room: Notify,
}

/// Encodes queued messages, batching small ones, and writes them; uploads pass the global limit.
pub(super) async fn write_loop(
    mut writer: super::transport::PeerWriter,
    mut queue: UnboundedReceiver<Message>,
    up_limit: Arc<RateLimiter>,
    stats: Arc<PeerStats>,
    shared: Arc<TorrentShared>,
    unsent: Arc<Unsent>,
) -> std::io::Result<()> {
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    while let Some(first) = queue.recv().await {
        let mut next = Some(first);
        while let Some(message) = next.take() {
            if let Message::Piece { data, .. } = &message {
                shared.torrent_up_limit.acquire(data.len()).await;
                up_limit.acquire(data.len()).await;
                stats
                    .uploaded
                    .fetch_add(data.len() as u64, Ordering::Relaxed);
                shared.add_uploaded(data.len() as u64);
                unsent.pieces.fetch_sub(1, Ordering::Relaxed);
            }
            unsent.messages.fetch_sub(1, Ordering::Relaxed);
            message.encode(&mut buf);
            if buf.len() < 128 * 1024 {
                next = queue.try_recv().ok();
            }
        }
        writer.send(&mut buf).await?;
        buf.clear();
        unsent.room.notify_one();
    }
    Ok(())
}
