//! One peer connection: the handshake, then a loop that reads messages, asks for blocks,
//! serves blocks, and obeys the torrent's choke/unchoke/have/cancel commands.
//!
//! Writing happens on a separate task fed by a channel, so the reading loop never blocks on a
//! slow socket and two peers uploading to each other cannot deadlock.

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio::task::JoinHandle;

use super::limiter::RateLimiter;
use super::picker::{BlockOutcome, PeerKey};
use super::rate::RateMeter;
use super::shared::TorrentShared;
use super::torrent::TorrentEvent;
use crate::bitfield::{Bitfield, BitfieldError};
use crate::ids::{InfoHash, PeerId};
use crate::storage::StorageError;
use crate::storage::disk::PieceOutcome;
use crate::wire::{
    BLOCK_LEN, BlockRef, HANDSHAKE_LEN, Handshake, Message, WireError, decode_frame, max_frame_len,
};

pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A peer silent for this long is dropped.
const IDLE_TIMEOUT: Duration = Duration::from_secs(150);
const KEEPALIVE_EVERY: Duration = Duration::from_secs(60);
/// Requests not answered for this long go back to the picker.
const SNUB_TIMEOUT: Duration = Duration::from_secs(20);
/// Requests a peer may have queued with us; more are ignored.
const MAX_QUEUED_REQUESTS: usize = 250;
/// Blocks a peer may send that nobody asked for before it is dropped.
const MAX_UNWANTED_BLOCKS: u32 = 200;
const MIN_PIPELINE: usize = 16;
const MAX_PIPELINE: usize = 500;
/// Room kept free in the receive buffer, so one read takes what the socket holds.
const READ_CHUNK: usize = 256 * 1024;
/// Reads for uploading fetch this much of a piece at once.
const READ_WINDOW: u32 = 256 * 1024;

/// Part of a piece read for uploading: (piece, offset in the piece, bytes).
type ReadWindow = (u32, u32, Bytes);

/// Why a connection ended.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error(transparent)]
    Bitfield(#[from] BitfieldError),
    #[error("peer broke the protocol: {0}")]
    Protocol(&'static str),
    #[error("timed out")]
    Timeout,
    #[error("handshake for another torrent")]
    WrongInfoHash,
    #[error("connected to ourselves")]
    SelfConnection,
    #[error("disconnected by us")]
    Disconnected,
    #[error("both sides are seeds")]
    BothSeeds,
    #[error("peer sent too many blocks nobody asked for")]
    UnwantedFlood,
    #[error("disk: {0}")]
    Disk(#[from] StorageError),
}

/// Orders from the torrent to one connection.
#[derive(Debug)]
pub(crate) enum PeerCommand {
    Choke,
    Unchoke,
    Have(u32),
    Cancel(BlockRef),
    Disconnect,
}

/// Counters and flags of a connection that the torrent reads for choking and snapshots.
#[derive(Debug)]
pub(crate) struct PeerStats {
    pub downloaded: AtomicU64,
    pub uploaded: AtomicU64,
    pub peer_interested: AtomicBool,
    pub am_choking: AtomicBool,
    pub peer_choking: AtomicBool,
    pub am_interested: AtomicBool,
    pub is_seed: AtomicBool,
    pub pieces: AtomicU32,
}

impl Default for PeerStats {
    fn default() -> Self {
        Self {
            downloaded: AtomicU64::new(0),
            uploaded: AtomicU64::new(0),
            peer_interested: AtomicBool::new(false),
            am_choking: AtomicBool::new(true),
            peer_choking: AtomicBool::new(true),
            am_interested: AtomicBool::new(false),
            is_seed: AtomicBool::new(false),
            pieces: AtomicU32::new(0),
        }
    }
}

/// The torrent's handle on one connection.
pub(crate) struct PeerLink {
    pub tx: UnboundedSender<PeerCommand>,
    pub stats: Arc<PeerStats>,
}

/// Reads the 68-byte handshake a peer opens with.
pub(crate) async fn read_handshake(stream: &mut TcpStream) -> Result<Handshake, PeerError> {
    let mut buf = [0u8; HANDSHAKE_LEN];
    tokio::time::timeout(HANDSHAKE_TIMEOUT, stream.read_exact(&mut buf))
        .await
        .map_err(|_| PeerError::Timeout)??;
    Ok(Handshake::decode(&buf)?)
}

/// Dials `addr` and exchanges handshakes.
pub(crate) async fn connect(
    addr: SocketAddr,
    info_hash: InfoHash,
    our_id: PeerId,
) -> Result<(TcpStream, PeerId), PeerError> {
    let mut stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| PeerError::Timeout)??;
    stream.set_nodelay(true)?;
    stream
        .write_all(&Handshake::new(info_hash, our_id).encode())
        .await?;
    let theirs = read_handshake(&mut stream).await?;
    if theirs.info_hash != info_hash {
        return Err(PeerError::WrongInfoHash);
    }
    if theirs.peer_id == our_id {
        return Err(PeerError::SelfConnection);
    }
    Ok((stream, theirs.peer_id))
}

/// A connection whose handshake is done, ready to run.
pub(crate) struct Connected {
    pub key: PeerKey,
    pub stream: TcpStream,
    /// Inbound connections still owe the peer our handshake.
    pub reply_handshake: bool,
    pub commands: UnboundedReceiver<PeerCommand>,
    pub stats: Arc<PeerStats>,
}

/// Runs a connection to its end, then tells the torrent.
pub(crate) async fn run(shared: Arc<TorrentShared>, c: Connected) {
    let key = c.key;
    let result = Connection::start(shared.clone(), c).await;
    let both_seeds = matches!(result, Err(PeerError::BothSeeds));
    let reason = match result {
        Ok(()) => "closed".to_string(),
        Err(e) => e.to_string(),
    };
    let _ = shared.events.send(TorrentEvent::PeerClosed {
        key,
        reason,
        both_seeds,
    });
}

struct Connection {
    shared: Arc<TorrentShared>,
    key: PeerKey,
    stats: Arc<PeerStats>,
    out: UnboundedSender<Message>,
    /// Piece messages handed to the writer and not yet written.
    writer_backlog: Arc<AtomicUsize>,
    peer_has: Bitfield,
    peer_choking: bool,
    am_interested: bool,
    am_choking: bool,
    /// Blocks we asked for and have not received.
    outstanding: HashSet<BlockRef>,
    last_block_at: Instant,
    pipeline: usize,
    down_meter: RateMeter,
    unwanted_blocks: u32,
    /// Requests the peer queued with us.
    requests: VecDeque<BlockRef>,
    read_cache: Option<(u32, u32, Bytes)>,
    reading: Option<JoinHandle<Result<ReadWindow, StorageError>>>,
    last_received: Instant,
    last_sent: Instant,
    max_frame: usize,
}

impl Connection {
    async fn start(shared: Arc<TorrentShared>, c: Connected) -> Result<(), PeerError> {
        let Connected {
            key,
            stream,
            reply_handshake,
            mut commands,
            stats,
        } = c;
        stream.set_nodelay(true)?;
        let (mut reader, mut writer) = stream.into_split();
        if reply_handshake {
            writer
                .write_all(&Handshake::new(shared.meta.info_hash, shared.our_id).encode())
                .await?;
        }
        let (out, out_rx) = mpsc::unbounded_channel();
        let writer_backlog = Arc::new(AtomicUsize::new(0));
        let writer_task = tokio::spawn(write_loop(
            writer,
            out_rx,
            shared.up_limit.clone(),
            stats.clone(),
            shared.clone(),
            writer_backlog.clone(),
        ));
        let piece_count = shared.meta.piece_count();
        let mut conn = Connection {
            key,
            stats,
            out,
            writer_backlog,
            peer_has: Bitfield::new(piece_count),
            peer_choking: true,
            am_interested: false,
            am_choking: true,
            outstanding: HashSet::new(),
            last_block_at: Instant::now(),
            pipeline: 32,
            down_meter: RateMeter::new(0),
            unwanted_blocks: 0,
            requests: VecDeque::new(),
            read_cache: None,
            reading: None,
            last_received: Instant::now(),
            last_sent: Instant::now(),
            max_frame: max_frame_len(piece_count),
            shared,
        };
        let have = conn.shared.picker().have().clone();
        if have.count_ones() > 0 {
            conn.send(Message::Bitfield(Bytes::copy_from_slice(have.as_bytes())));
        }
        let result = conn.run_loop(&mut reader, &mut commands).await;
        conn.cleanup();
        writer_task.abort();
        result
    }

    async fn run_loop(
        &mut self,
        reader: &mut tokio::net::tcp::OwnedReadHalf,
        commands: &mut UnboundedReceiver<PeerCommand>,
    ) -> Result<(), PeerError> {
        let mut buf = BytesMut::with_capacity(READ_CHUNK);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                read = reader.read_buf(&mut buf) => {
                    if read? == 0 {
                        return Ok(());
                    }
                    self.last_received = Instant::now();
                    while let Some(message) = decode_frame(&mut buf, self.max_frame)? {
                        self.handle_message(message).await?;
                    }
                    if buf.capacity() - buf.len() < READ_CHUNK / 4 {
                        buf.reserve(READ_CHUNK);
                    }
                }
                command = commands.recv() => match command {
                    Some(command) => self.handle_command(command)?,
                    None => return Err(PeerError::Disconnected),
                },
                loaded = wait_for(&mut self.reading) => {
                    self.reading = None;
                    match loaded {
                        Ok(Ok(window)) => self.read_cache = Some(window),
                        Ok(Err(e)) => {
                            if e.is_missing_data() {
                                // The data we said we have is gone or short: never serve it.
                                let _ = self.shared.events.send(TorrentEvent::DataMissing(e.user_message()));
                            }
                            return Err(e.into());
                        }
                        Err(_) => return Err(PeerError::Disconnected),
                    }
                    self.serve_requests();
                }
                _ = tick.tick() => self.on_tick()?,
            }
        }
    }

    fn send(&mut self, message: Message) {
        if matches!(message, Message::Piece { .. }) {
            self.writer_backlog.fetch_add(1, Ordering::Relaxed);
        }
        self.last_sent = Instant::now();
        let _ = self.out.send(message);
    }

    async fn handle_message(&mut self, message: Message) -> Result<(), PeerError> {
        match message {
            Message::KeepAlive | Message::Port(_) | Message::Unknown(_) => {}
            Message::Choke => {
                self.peer_choking = true;
                self.stats.peer_choking.store(true, Ordering::Relaxed);
                let released: Vec<BlockRef> = self.outstanding.drain().collect();
                self.shared.picker().release(self.key, released);
            }
            Message::Unchoke => {
                self.peer_choking = false;
                self.stats.peer_choking.store(false, Ordering::Relaxed);
                self.last_block_at = Instant::now();
                self.request_blocks();
            }
            Message::Interested | Message::NotInterested => {
                let interested = matches!(message, Message::Interested);
                // Repeats change nothing: only a change reaches the torrent.
                if self
                    .stats
                    .peer_interested
                    .swap(interested, Ordering::Relaxed)
                    != interested
                {
                    let _ = self.shared.events.send(TorrentEvent::PeerInterest {
                        key: self.key,
                        interested,
                    });
                }
            }
            Message::Have(index) => {
                if index >= self.peer_has.len() {
                    return Err(PeerError::Protocol("have for a piece that does not exist"));
                }
                if self.peer_has.set(index) {
                    let wanted = {
                        let mut picker = self.shared.picker();
                        picker.add_have(index);
                        picker.wants(index)
                    };
                    self.peer_pieces_changed()?;
                    if wanted && !self.am_interested {
                        self.set_interested(true);
                    }
                    self.request_blocks();
                }
            }
            Message::Bitfield(bits) => {
                // BEP 3 wants the bitfield first, but some clients (aria2) send it later, after
                // they got pieces; merge it with what `have` messages already told us.
                let theirs = Bitfield::from_bytes(&bits, self.peer_has.len())?;
                let new: Vec<u32> = theirs.ones().filter(|&i| !self.peer_has.get(i)).collect();
                let wanted = {
                    let mut picker = self.shared.picker();
                    for &i in &new {
                        self.peer_has.set(i);
                        picker.add_have(i);
                    }
                    picker.wants_any_of(&self.peer_has)
                };
                self.peer_pieces_changed()?;
                self.set_interested(wanted);
                self.request_blocks();
            }
            Message::Request(block) => self.on_request(block)?,
            Message::Cancel(block) => self.requests.retain(|r| *r != block),
            Message::Piece { index, begin, data } => self.on_piece(index, begin, data).await?,
        }
        Ok(())
    }

    fn peer_pieces_changed(&mut self) -> Result<(), PeerError> {
        self.stats
            .pieces
            .store(self.peer_has.count_ones(), Ordering::Relaxed);
        let seed = self.peer_has.is_full();
        self.stats.is_seed.store(seed, Ordering::Relaxed);
        if seed && self.shared.picker().is_complete() {
            return Err(PeerError::BothSeeds);
        }
        Ok(())
    }

    fn set_interested(&mut self, interested: bool) {
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

    fn on_request(&mut self, block: BlockRef) -> Result<(), PeerError> {
        if self.am_choking {
            return Ok(()); // BEP 3: requests while choked are dropped
        }
        let piece_len = self.shared.meta.piece_len(block.index);
        let valid_range = block.index < self.shared.meta.piece_count()
            && block.length > 0
            && block.length <= BLOCK_LEN
            && block.begin as u64 + block.length as u64 <= piece_len;
        if !valid_range {
            return Err(PeerError::Protocol("request outside the piece"));
        }
        if !self.shared.picker().have().get(block.index) {
            return Ok(()); // we do not have it (yet); ignore
        }
        if self.requests.len() + self.writer_backlog.load(Ordering::Relaxed) >= MAX_QUEUED_REQUESTS
        {
            return Ok(());
        }
        self.requests.push_back(block);
        self.serve_requests();
        Ok(())
    }

    /// Answers queued requests from the read window, starting a disk read when it runs dry.
    fn serve_requests(&mut self) {
        while let Some(&block) = self.requests.front() {
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
                let storage = self.shared.storage.clone();
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

    async fn on_piece(&mut self, index: u32, begin: u32, data: Bytes) -> Result<(), PeerError> {
        let block = BlockRef {
            index,
            begin,
            length: data.len() as u32,
        };
        if !self.outstanding.remove(&block) {
            self.unwanted_blocks += 1;
            if self.unwanted_blocks > MAX_UNWANTED_BLOCKS {
                return Err(PeerError::UnwantedFlood);
            }
            return Ok(());
        }
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
                let Some(expected) = meta.piece_hashes.get(piece.index as usize).copied() else {
                    return Err(PeerError::Protocol("piece index out of range"));
                };
                let events = self.shared.events.clone();
                let (index, contributors) = (piece.index, piece.contributors);
                self.shared.disk.verify_and_write(
                    slot,
                    self.shared.storage.clone(),
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

    /// Tops the pipeline of requests up to its target depth.
    fn request_blocks(&mut self) {
        if self.peer_choking || !self.am_interested {
            return;
        }
        let free = self.pipeline.saturating_sub(self.outstanding.len());
        // Ask in batches so the picker is not locked for every single block.
        if free < (self.pipeline / 4).max(1) && !self.outstanding.is_empty() {
            return;
        }
        let mut picked = Vec::with_capacity(free);
        self.shared
            .picker()
            .pick(self.key, &self.peer_has, free, &mut picked);
        for block in picked {
            if self.outstanding.insert(block) {
                self.send(Message::Request(block));
            }
        }
    }

    fn handle_command(&mut self, command: PeerCommand) -> Result<(), PeerError> {
        match command {
            PeerCommand::Choke if !self.am_choking => {
                self.am_choking = true;
                self.stats.am_choking.store(true, Ordering::Relaxed);
                self.requests.clear();
                self.send(Message::Choke);
            }
            PeerCommand::Unchoke if self.am_choking => {
                self.am_choking = false;
                self.stats.am_choking.store(false, Ordering::Relaxed);
                self.send(Message::Unchoke);
            }
            PeerCommand::Choke | PeerCommand::Unchoke => {}
            PeerCommand::Have(index) => {
                if !self.peer_has.get(index) {
                    self.send(Message::Have(index));
                }
            }
            PeerCommand::Cancel(block) => {
                if self.outstanding.remove(&block) {
                    self.send(Message::Cancel(block));
                }
            }
            PeerCommand::Disconnect => return Err(PeerError::Disconnected),
        }
        Ok(())
    }

    fn on_tick(&mut self) -> Result<(), PeerError> {
        let now = Instant::now();
        if now.duration_since(self.last_received) > IDLE_TIMEOUT {
            return Err(PeerError::Timeout);
        }
        if now.duration_since(self.last_sent) > KEEPALIVE_EVERY {
            self.send(Message::KeepAlive);
        }
        // Size the pipeline to about a second of this peer's rate.
        let rate = self
            .down_meter
            .update(self.stats.downloaded.load(Ordering::Relaxed));
        self.pipeline = (rate as usize / BLOCK_LEN as usize).clamp(MIN_PIPELINE, MAX_PIPELINE);
        if !self.outstanding.is_empty() && now.duration_since(self.last_block_at) > SNUB_TIMEOUT {
            let released: Vec<BlockRef> = self.outstanding.drain().collect();
            self.shared.picker().release(self.key, released);
            self.pipeline = MIN_PIPELINE;
            self.last_block_at = now;
        }
        let (complete, wanted) = {
            let picker = self.shared.picker();
            (
                picker.is_complete(),
                self.am_interested && picker.wants_any_of(&self.peer_has),
            )
        };
        if complete && self.peer_has.is_full() {
            return Err(PeerError::BothSeeds);
        }
        if self.am_interested && !wanted {
            self.set_interested(false);
        }
        self.request_blocks();
        Ok(())
    }

    /// Gives back what this connection held: requested blocks and its share of availability.
    fn cleanup(&mut self) {
        let mut picker = self.shared.picker();
        picker.release(self.key, self.outstanding.drain());
        picker.remove_availability(&self.peer_has);
    }
}

async fn wait_for<T>(handle: &mut Option<JoinHandle<T>>) -> Result<T, tokio::task::JoinError> {
    match handle {
        Some(h) => h.await,
        None => std::future::pending().await,
    }
}

/// Encodes queued messages, batching small ones, and writes them; uploads pass the global limit.
async fn write_loop(
    mut writer: OwnedWriteHalf,
    mut queue: UnboundedReceiver<Message>,
    up_limit: Arc<RateLimiter>,
    stats: Arc<PeerStats>,
    shared: Arc<TorrentShared>,
    backlog: Arc<AtomicUsize>,
) -> std::io::Result<()> {
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    while let Some(first) = queue.recv().await {
        let mut next = Some(first);
        while let Some(message) = next.take() {
            if let Message::Piece { data, .. } = &message {
                up_limit.acquire(data.len()).await;
                stats
                    .uploaded
                    .fetch_add(data.len() as u64, Ordering::Relaxed);
                shared.add_uploaded(data.len() as u64);
                backlog.fetch_sub(1, Ordering::Relaxed);
            }
            message.encode(&mut buf);
            if buf.len() < 128 * 1024 {
                next = queue.try_recv().ok();
            }
        }
        writer.write_all(&buf).await?;
        buf.clear();
    }
    Ok(())
}
