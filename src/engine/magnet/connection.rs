//! One connection of a magnet link's metadata fetch: the handshake is done; this says what we
//! speak (BEP 10, with `ut_metadata` and `ut_pex`), reads the peer's extension handshake,
//! sends the metadata requests the fetch asks for, and reports data, rejects and exchanged
//! peers. There are no pieces yet: the peer's bitfield and haves are read and left aside, and
//! a block we never asked for ends the connection.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

use crate::engine::peer::{
    PeerError, PeerMessages, PeerStream, PeerWriter, UT_METADATA_ID, UT_PEX_ID,
    our_extension_handshake, our_messages,
};
use crate::engine::picker::PeerKey;
use crate::wire::metadata::MetadataMessage;
use crate::wire::pex::PexMessage;
use crate::wire::{
    Capabilities, EXTENSION_HANDSHAKE_ID, ExtensionHandshake, Handshake, Message, decode_frame,
};

/// The peer's extension handshake must come within this.
const EXTENSION_TIMEOUT: Duration = Duration::from_secs(10);
/// A peer silent for this long is dropped.
const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
const KEEPALIVE_EVERY: Duration = Duration::from_secs(60);
/// One write may take this long before the peer counts as gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(20);
/// Largest frame read before the metadata is known: a bitfield of 16 million pieces.
const MAX_FRAME: usize = 2 * 1024 * 1024;

/// Orders from the fetch to one connection.
#[derive(Debug)]
pub(crate) enum FetchCommand {
    Request(u32),
    Disconnect,
}

/// Reports from the connections to the fetch.
#[derive(Debug)]
pub(crate) enum FetchEvent {
    /// The peer's extension handshake came: the size of the metadata it offers (`None` when it
    /// offers none) and the port it listens on.
    Ready {
        key: PeerKey,
        metadata_size: Option<u64>,
        listen_port: Option<u16>,
        client: Option<String>,
    },
    Data {
        key: PeerKey,
        piece: u32,
        total_size: u64,
        data: Vec<u8>,
    },
    Rejected {
        key: PeerKey,
        piece: u32,
    },
    /// Addresses learned: from a peer's `ut_pex` message, or the link's host names resolved.
    Peers(Vec<SocketAddr>),
    Closed {
        key: PeerKey,
        reason: String,
        /// It broke the protocol (not to be dialled again during the fetch).
        misbehaved: bool,
    },
}

/// A connection whose handshake is done, for a metadata fetch.
pub(crate) struct FetchPeer {
    pub key: PeerKey,
    pub stream: PeerStream,
    pub addr: SocketAddr,
    /// An inbound peer still waits for our handshake: this one.
    pub reply_handshake: Option<Handshake>,
    pub capabilities: Capabilities,
    pub listen_port: u16,
}

/// Runs the connection until it ends, then reports why.
pub(crate) async fn run(
    peer: FetchPeer,
    commands: UnboundedReceiver<FetchCommand>,
    events: UnboundedSender<FetchEvent>,
) {
    let key = peer.key;
    let result = serve(peer, commands, &events).await;
    let misbehaved = matches!(
        result,
        Err(PeerError::Protocol(_)
            | PeerError::Wire(_)
            | PeerError::Extension(_)
            | PeerError::Metadata(_)
            | PeerError::Pex(_))
    );
    let reason = match result {
        Ok(()) => "closed".to_string(),
        Err(e) => e.to_string(),
    };
    let _ = events.send(FetchEvent::Closed {
        key,
        reason,
        misbehaved,
    });
}

async fn serve(
    peer: FetchPeer,
    mut commands: UnboundedReceiver<FetchCommand>,
    events: &UnboundedSender<FetchEvent>,
) -> Result<(), PeerError> {
    let FetchPeer {
        key,
        stream,
        addr,
        reply_handshake,
        capabilities,
        listen_port,
    } = peer;
    let common = Capabilities::RIVULET.common(capabilities);
    if !common.extension_protocol {
        return Err(PeerError::Protocol(
            "it does not speak the extension protocol, so it cannot send metadata",
        ));
    }
    let PeerStream {
        mut reader,
        mut writer,
        ..
    } = stream;
    let mut out = BytesMut::new();
    if let Some(handshake) = reply_handshake {
        out.extend_from_slice(&handshake.encode());
    }
    if common.fast {
        Message::HaveNone.encode(&mut out);
    }
    let ours = ExtensionHandshake {
        messages: our_messages(false),
        ..our_extension_handshake(addr, listen_port)
    };
    Message::Extended {
        id: EXTENSION_HANDSHAKE_ID,
        payload: ours.encode().into(),
    }
    .encode(&mut out);
    write(&mut writer, &mut out).await?;

    let mut theirs: Option<PeerMessages> = None;
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let started = tokio::time::Instant::now();
    let mut last_received = started;
    let mut last_sent = started;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            read = reader.read_buf(&mut buf) => {
                if read? == 0 {
                    return Ok(());
                }
                last_received = tokio::time::Instant::now();
                while let Some(message) = decode_frame(&mut buf, MAX_FRAME)? {
                    match message {
                        Message::Extended { id: EXTENSION_HANDSHAKE_ID, payload } => {
                            let handshake = ExtensionHandshake::decode(&payload)?;
                            let messages = PeerMessages::of(&handshake);
                            theirs = Some(messages);
                            let _ = events.send(FetchEvent::Ready {
                                key,
                                metadata_size: messages
                                    .ut_metadata
                                    .and(handshake.metadata_size),
                                listen_port: handshake.listen_port,
                                client: handshake.client,
                            });
                        }
                        Message::Extended { id: UT_METADATA_ID, payload } => {
                            let message = MetadataMessage::decode(&payload)?;
                            match message {
                                MetadataMessage::Data { piece, total_size, data } => {
                                    let _ = events.send(FetchEvent::Data { key, piece, total_size, data });
                                }
                                MetadataMessage::Reject { piece } => {
                                    let _ = events.send(FetchEvent::Rejected { key, piece });
                                }
                                // We have no metadata to give yet.
                                MetadataMessage::Request { piece } => {
                                    if let Some(id) = theirs.and_then(|t| t.ut_metadata) {
                                        Message::Extended {
                                            id,
                                            payload: MetadataMessage::Reject { piece }.encode().into(),
                                        }
                                        .encode(&mut out);
                                    }
                                }
                            }
                        }
                        Message::Extended { id: UT_PEX_ID, payload } => {
                            let message = PexMessage::decode(&payload)?;
                            let peers: Vec<SocketAddr> =
                                message.added.into_iter().map(|(a, _)| a).collect();
                            if !peers.is_empty() {
                                let _ = events.send(FetchEvent::Peers(peers));
                            }
                        }
                        Message::Piece { .. } => {
                            return Err(PeerError::Protocol("sent a block nobody asked for"));
                        }
                        // Pieces, interest and choking mean nothing before the metadata.
                        _ => {}
                    }
                }
                if !out.is_empty() {
                    write(&mut writer, &mut out).await?;
                    last_sent = tokio::time::Instant::now();
                }
            }
            command = commands.recv() => match command {
                Some(FetchCommand::Request(piece)) => {
                    let Some(id) = theirs.and_then(|t| t.ut_metadata) else {
                        continue;
                    };
                    Message::Extended {
                        id,
                        payload: MetadataMessage::Request { piece }.encode().into(),
                    }
                    .encode(&mut out);
                    write(&mut writer, &mut out).await?;
                    last_sent = tokio::time::Instant::now();
                }
                Some(FetchCommand::Disconnect) | None => return Err(PeerError::Disconnected),
            },
            _ = tick.tick() => {
                let now = tokio::time::Instant::now();
                if theirs.is_none() && now.duration_since(started) > EXTENSION_TIMEOUT {
                    return Err(PeerError::Protocol("no extension handshake"));
                }
                if now.duration_since(last_received) > IDLE_TIMEOUT {
                    return Err(PeerError::Timeout);
                }
                if now.duration_since(last_sent) > KEEPALIVE_EVERY {
                    Message::KeepAlive.encode(&mut out);
                    write(&mut writer, &mut out).await?;
                    last_sent = now;
                }
            }
        }
    }
}

/// Writes what `out` holds, and empties it.
async fn write(writer: &mut PeerWriter, out: &mut BytesMut) -> Result<(), PeerError> {
    tokio::time::timeout(WRITE_TIMEOUT, writer.send(&mut out[..]))
        .await
        .map_err(|_| PeerError::Timeout)??;
    out.clear();
    Ok(())
}
