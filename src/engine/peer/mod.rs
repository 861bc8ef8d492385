//! One peer connection: the handshake, then a loop that reads messages, asks for blocks,
//! serves blocks, and obeys the torrent's choke/unchoke/have/cancel commands.
//!
//! Writing happens on a separate task fed by a channel, so the reading loop never blocks on a
//! slow socket and two peers uploading to each other cannot deadlock.
//!
//! Serving: every request from an unchoked peer is answered with its block, or with a BEP 6
//! `reject` when the peer speaks the fast extension; a peer without it is told our queue's
//! size (BEP 10 `reqq`) and is dropped, never silently ignored, if it keeps more in flight than
//! we accept. The queue holds (index, begin, length) only; block data is read from disk in
//! windows and handed to the writer at most [`WRITE_AHEAD_BLOCKS`] at a time.

mod download;
mod extended;
mod handshake;
mod transport;
mod upload;

pub(crate) use extended::{PeerMessages, UT_METADATA_ID, UT_PEX_ID, our_messages};

pub(crate) use handshake::{dial, our_extension_handshake, read_handshake};
pub(crate) use transport::{PeerStream, PeerWriter, TorrentKeys};
use upload::{Unsent, wait_for, write_loop};

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio::task::JoinHandle;

use super::picker::PeerKey;
use super::rate::RateMeter;
use super::shared::TorrentShared;
use super::torrent::TorrentEvent;
use crate::bitfield::{Bitfield, BitfieldError};
use crate::storage::StorageError;
use crate::wire::{
    BLOCK_LEN, BlockRef, Capabilities, EXTENSION_HANDSHAKE_ID, ExtensionError, Handshake, Message,
    WireError, decode_frame, max_frame_len,
};

pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A peer silent for this long is dropped.
const IDLE_TIMEOUT: Duration = Duration::from_secs(150);
const KEEPALIVE_EVERY: Duration = Duration::from_secs(60);
/// Requests not answered for this long go back to the picker.
const SNUB_TIMEOUT: Duration = Duration::from_secs(20);
/// Requests a peer may keep queued with us, told to it as BEP 10 `reqq`. Past it, a peer with
/// the fast extension gets `reject`s.
pub const MAX_QUEUED_REQUESTS: usize = 500;
/// A peer without the fast extension cannot be refused a request: it is dropped when it keeps
/// this many queued, four times what it was told.
const HARD_REQUEST_LIMIT: usize = 4 * MAX_QUEUED_REQUESTS;
/// Blocks handed to the writer and not yet written; serving waits while this many are.
const WRITE_AHEAD_BLOCKS: usize = 64;
/// Messages of any kind waiting for the writer; a peer that makes us queue more (rejects for
/// requests it keeps sending, and never reading) is dropped.
const MAX_UNSENT_MESSAGES: usize = 8 * MAX_QUEUED_REQUESTS;
/// Blocks a peer may send that nobody asked for before it is dropped...
const MAX_UNWANTED_BLOCKS: u32 = 200;
/// ...a count that forgets this many a second, so stray blocks spread over a long transfer
/// never add up to a flood.
const UNWANTED_DECAY_PER_TICK: u32 = 10;
/// Blocks we gave up on (cancelled, or dropped on a choke) remembered so that their late
/// arrival is not counted as unwanted.
const MAX_ABANDONED: usize = 2 * MAX_PIPELINE;
/// Requests kept in flight to a peer that did not say how many it accepts (no BEP 10 `reqq`).
const DEFAULT_PEER_QUEUE: usize = 250;
/// Pieces a peer may offer us as allowed fast that we keep.
const MAX_ALLOWED_FAST_IN: usize = 64;
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
    #[error("peer keeps more than {HARD_REQUEST_LIMIT} requests queued")]
    RequestFlood,
    #[error("peer does not read what it asks for")]
    NotReading,
    #[error("bad extension handshake: {0}")]
    Extension(#[from] ExtensionError),
    #[error("bad ut_metadata message: {0}")]
    Metadata(#[from] crate::wire::metadata::MetadataError),
    #[error("bad ut_pex message: {0}")]
    Pex(#[from] crate::wire::pex::PexError),
    #[error("disk: {0}")]
    Disk(#[from] StorageError),
    #[error("encryption: {0}")]
    Encryption(#[from] crate::mse::MseError),
}

/// Orders from the torrent to one connection.
#[derive(Debug)]
pub(crate) enum PeerCommand {
    Choke,
    Unchoke,
    Have(u32),
    Cancel(BlockRef),
    /// The torrent's peers (listen addresses and `ut_pex` flags), for the peer exchange.
    Pex(Arc<Vec<(SocketAddr, u8)>>),
    /// Which pieces are wanted changed (file priorities, order): interest and requests are
    /// looked at again.
    WantedChanged,
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
    /// The client's own name from its extension handshake (`v`), if it sent one.
    pub client: std::sync::OnceLock<String>,
    /// The port it listens on, from its extension handshake (`p`); 0 while unknown.
    pub listen_port: AtomicU16,
    /// RC4 (MSE) runs under the connection.
    pub encrypted: AtomicBool,
    /// The connection runs over uTP (else TCP).
    pub utp: AtomicBool,
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
            client: std::sync::OnceLock::new(),
            listen_port: AtomicU16::new(0),
            encrypted: AtomicBool::new(false),
            utp: AtomicBool::new(false),
        }
    }
}

/// The torrent's handle on one connection.
pub(crate) struct PeerLink {
    pub tx: UnboundedSender<PeerCommand>,
    pub stats: Arc<PeerStats>,
}

/// A connection whose handshake is done, ready to run.
pub(crate) struct Connected {
    pub key: PeerKey,
    pub stream: PeerStream,
    pub addr: SocketAddr,
    /// What the peer's handshake said it speaks.
    pub capabilities: Capabilities,
    /// Our listen port, told to the peer in the extension handshake.
    pub listen_port: u16,
    /// The session's DHT node, if one runs: its port is sent, and the peer's is added.
    pub dht: Option<crate::dht::Dht>,
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
    addr: SocketAddr,
    out: UnboundedSender<Message>,
    /// What the writer has yet to write.
    unsent: Arc<Unsent>,
    /// Extensions both sides speak.
    extensions: Capabilities,
    /// Requests we keep in flight to this peer at most (its `reqq`).
    peer_queue: usize,
    /// The extended messages the peer speaks, and their ids.
    peer_messages: PeerMessages,
    /// What our `ut_pex` messages told the peer so far.
    pex_sent: extended::PexSent,
    /// When the peer's last `ut_pex` message was read.
    last_pex_in: Option<Instant>,
    /// The DHT node, until the peer's `port` message has been used.
    dht: Option<crate::dht::Dht>,
    /// Pieces we offered as allowed fast: served even while we choke the peer.
    allowed_fast_out: Vec<u32>,
    /// Pieces the peer allows us to fetch while it chokes us.
    allowed_fast_in: HashSet<u32>,
    /// Blocks we asked for and then gave up on; their late arrival is no offence.
    abandoned: HashSet<BlockRef>,
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
            addr,
            capabilities,
            listen_port,
            reply_handshake,
            mut commands,
            stats,
            dht,
        } = c;
        let PeerStream {
            mut reader,
            mut writer,
            encrypted,
            utp,
        } = stream;
        stats.encrypted.store(encrypted, Ordering::Relaxed);
        stats.utp.store(utp, Ordering::Relaxed);
        if reply_handshake {
            writer
                .send(&mut Handshake::new(shared.meta.info_hash, shared.our_id).encode())
                .await?;
        }
        let (out, out_rx) = mpsc::unbounded_channel();
        let unsent = Arc::new(Unsent::default());
        let writer_task = tokio::spawn(write_loop(
            writer,
            out_rx,
            shared.up_limit.clone(),
            stats.clone(),
            shared.clone(),
            unsent.clone(),
        ));
        let piece_count = shared.meta.piece_count();
        let mut conn = Connection {
            key,
            stats,
            addr,
            out,
            unsent,
            extensions: Capabilities::RIVULET.common(capabilities),
            peer_queue: DEFAULT_PEER_QUEUE,
            peer_messages: PeerMessages::default(),
            pex_sent: extended::PexSent::default(),
            last_pex_in: None,
            dht,
            allowed_fast_out: Vec::new(),
            allowed_fast_in: HashSet::new(),
            abandoned: HashSet::new(),
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
        conn.introduce(addr, listen_port);
        let result = conn.run_loop(&mut reader, &mut commands).await;
        conn.cleanup();
        writer_task.abort();
        result
    }

    async fn run_loop(
        &mut self,
        reader: &mut transport::PeerReader,
        commands: &mut UnboundedReceiver<PeerCommand>,
    ) -> Result<(), PeerError> {
        let mut buf = BytesMut::with_capacity(READ_CHUNK);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let unsent = self.unsent.clone();
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
                    if self.unsent.messages.load(Ordering::Relaxed) > MAX_UNSENT_MESSAGES {
                        return Err(PeerError::NotReading);
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
                                let _ = self.shared.events.send(TorrentEvent::DataMissing(e.to_string()));
                            }
                            return Err(e.into());
                        }
                        Err(_) => return Err(PeerError::Disconnected),
                    }
                    self.serve_requests();
                }
                _ = unsent.room.notified(), if !self.requests.is_empty() => self.serve_requests(),
                _ = tick.tick() => self.on_tick()?,
            }
        }
    }

    fn send(&mut self, message: Message) {
        if matches!(message, Message::Piece { .. }) {
            self.unsent.pieces.fetch_add(1, Ordering::Relaxed);
        }
        self.unsent.messages.fetch_add(1, Ordering::Relaxed);
        self.last_sent = Instant::now();
        let _ = self.out.send(message);
    }

    async fn handle_message(&mut self, message: Message) -> Result<(), PeerError> {
        match message {
            Message::KeepAlive | Message::Unknown(_) | Message::Suggest(_) => {}
            Message::Port(port) => {
                // BEP 5: the peer's DHT node, pinged and kept if it answers (once a connection).
                if self.extensions.dht
                    && port != 0
                    && let Some(dht) = self.dht.take()
                {
                    dht.add_node(SocketAddr::new(self.addr.ip(), port));
                }
            }
            Message::Choke => {
                self.peer_choking = true;
                self.stats.peer_choking.store(true, Ordering::Relaxed);
                // BEP 3: a choke discards our requests. With BEP 6 it does not: the peer rejects
                // each one it drops, and serves the rest (allowed fast pieces).
                if !self.extensions.fast {
                    let released: Vec<BlockRef> = self.outstanding.drain().collect();
                    self.abandon(&released);
                    self.shared.picker().release(self.key, released);
                }
                self.last_block_at = Instant::now();
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
                let theirs = Bitfield::from_bytes(&bits, self.peer_has.len())?;
                self.merge_pieces(&theirs)?;
            }
            Message::HaveAll | Message::HaveNone if !self.extensions.fast => {
                return Err(PeerError::Protocol(
                    "have all / have none without the fast extension",
                ));
            }
            Message::HaveAll => self.merge_pieces(&Bitfield::full(self.peer_has.len()))?,
            Message::HaveNone => self.merge_pieces(&Bitfield::new(self.peer_has.len()))?,
            Message::Request(block) => self.on_request(block)?,
            Message::Cancel(block) => {
                let queued = self.requests.len();
                self.requests.retain(|r| *r != block);
                // BEP 6: a cancelled request is answered too, by the block or by a reject.
                if self.extensions.fast && self.requests.len() < queued {
                    self.send(Message::Reject(block));
                }
            }
            Message::Reject(block) => {
                // A reject for a block we never asked for (or gave up on) changes nothing.
                if self.extensions.fast && self.outstanding.remove(&block) {
                    self.shared.picker().release(self.key, [block]);
                }
            }
            Message::AllowedFast(index) => {
                if self.extensions.fast
                    && index < self.peer_has.len()
                    && self.allowed_fast_in.len() < MAX_ALLOWED_FAST_IN
                    && self.allowed_fast_in.insert(index)
                {
                    self.request_blocks();
                }
            }
            Message::Extended { id, payload } => {
                if !self.extensions.extension_protocol {
                    return Ok(());
                }
                if id == EXTENSION_HANDSHAKE_ID {
                    self.on_extension_handshake(&payload)?;
                } else {
                    self.on_extended(id, &payload)?;
                }
            }
            Message::Piece { index, begin, data } => self.on_piece(index, begin, data).await?,
        }
        Ok(())
    }

    /// Adds the pieces of a bitfield or `have all` to what the peer has. BEP 3 wants the
    /// bitfield first, but some clients (aria2) send it later, after they got pieces; merge it
    /// with what `have` messages already told us.
    fn merge_pieces(&mut self, theirs: &Bitfield) -> Result<(), PeerError> {
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

    fn handle_command(&mut self, command: PeerCommand) -> Result<(), PeerError> {
        match command {
            PeerCommand::Choke if !self.am_choking => {
                self.am_choking = true;
                self.stats.am_choking.store(true, Ordering::Relaxed);
                self.send(Message::Choke);
                if self.extensions.fast {
                    // BEP 6: every request dropped by the choke is rejected; allowed fast
                    // pieces are still served.
                    let (keep, dropped): (VecDeque<BlockRef>, VecDeque<BlockRef>) = self
                        .requests
                        .drain(..)
                        .partition(|r| self.allowed_fast_out.contains(&r.index));
                    self.requests = keep;
                    for block in dropped {
                        self.send(Message::Reject(block));
                    }
                } else {
                    self.requests.clear();
                }
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
                    self.abandon(&[block]);
                    self.send(Message::Cancel(block));
                }
            }
            PeerCommand::Pex(peers) => self.send_pex(Some(peers)),
            PeerCommand::WantedChanged => {
                let wanted = self.shared.picker().wants_any_of(&self.peer_has);
                self.set_interested(wanted);
                self.request_blocks();
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
        self.unwanted_blocks = self.unwanted_blocks.saturating_sub(UNWANTED_DECAY_PER_TICK);
        if !self.outstanding.is_empty() && now.duration_since(self.last_block_at) > SNUB_TIMEOUT {
            // Snubbed: the blocks go to other peers, and this one is told it need not send them.
            let released: Vec<BlockRef> = self.outstanding.drain().collect();
            for &block in &released {
                self.send(Message::Cancel(block));
            }
            self.abandon(&released);
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
