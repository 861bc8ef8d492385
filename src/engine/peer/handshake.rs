//! Meeting a peer: the 68-byte handshake (dialling out, or reading an inbound one) over the
//! peer stream (plain or encrypted, see [`super::transport`]), then what we tell it first (our
//! pieces, BEP 10's extension handshake, BEP 6's allowed-fast pieces) and what we take from its
//! extension handshake.

use std::net::SocketAddr;

use bytes::Bytes;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc::UnboundedSender;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::transport::PeerStream;
use super::{
    Connection, HANDSHAKE_TIMEOUT, MAX_PIPELINE, MAX_QUEUED_REQUESTS, PeerError, PeerMessages,
    our_messages,
};
use crate::engine::config::LiveSettings;
use crate::engine::torrent::TorrentEvent;
use crate::ids::{InfoHash, PeerId};
use crate::wire::{
    ALLOWED_FAST_COUNT, EXTENSION_HANDSHAKE_ID, ExtensionHandshake, HANDSHAKE_LEN, Handshake,
    Message, allowed_fast_set,
};

/// Reads the 68-byte handshake a peer opens with.
pub(crate) async fn read_handshake(stream: &mut PeerStream) -> Result<Handshake, PeerError> {
    let mut buf = [0u8; HANDSHAKE_LEN];
    tokio::time::timeout(HANDSHAKE_TIMEOUT, stream.reader.read_exact(&mut buf))
        .await
        .map_err(|_| PeerError::Timeout)??;
    Ok(Handshake::decode(&buf)?)
}

/// Dials `addr` (encrypted or not, and from which address, as `live` says) and exchanges
/// handshakes; gives the peer's id and what it speaks.
pub(crate) async fn connect(
    addr: SocketAddr,
    info_hash: InfoHash,
    our_id: PeerId,
    live: &LiveSettings,
) -> Result<(PeerStream, Handshake), PeerError> {
    let mut stream = PeerStream::dial(addr, &info_hash, live).await?;
    stream
        .send(&mut Handshake::new(info_hash, our_id).encode())
        .await?;
    let theirs = read_handshake(&mut stream).await?;
    if theirs.info_hash != info_hash {
        return Err(PeerError::WrongInfoHash);
    }
    if theirs.peer_id == our_id {
        return Err(PeerError::SelfConnection);
    }
    Ok((stream, theirs))
}

/// Dials `addr` on a task of its own; the handshaken connection, or the failure, is reported
/// to `events` (a torrent's or a magnet fetch's).
pub(crate) fn dial(
    addr: SocketAddr,
    info_hash: InfoHash,
    our_id: PeerId,
    live: Arc<LiveSettings>,
    events: UnboundedSender<TorrentEvent>,
) {
    tokio::spawn(async move {
        let event = match connect(addr, info_hash, our_id, &live).await {
            Ok((stream, handshake)) => TorrentEvent::Handshaken {
                stream,
                addr,
                handshake,
                inbound: false,
            },
            Err(e) => {
                tracing::debug!(%addr, error = %e, "connect failed");
                TorrentEvent::ConnectFailed { addr }
            }
        };
        let _ = events.send(event);
    });
}

impl Connection {
    /// What we tell a peer first: our pieces, our extension handshake, and the pieces it may
    /// fetch while we choke it.
    pub(super) fn introduce(&mut self, addr: SocketAddr, listen_port: u16) {
        let have = self.shared.picker().have().clone();
        if self.extensions.fast && have.is_full() {
            self.send(Message::HaveAll);
        } else if have.count_ones() > 0 {
            self.send(Message::Bitfield(Bytes::copy_from_slice(have.as_bytes())));
        } else if self.extensions.fast {
            self.send(Message::HaveNone);
        }
        if self.extensions.extension_protocol {
            let meta = &self.shared.meta;
            let ours = ExtensionHandshake {
                messages: our_messages(meta.private),
                metadata_size: (!meta.private).then_some(meta.info_bytes.len() as u64),
                ..our_extension_handshake(addr, listen_port)
            };
            self.send(Message::Extended {
                id: EXTENSION_HANDSHAKE_ID,
                payload: ours.encode().into(),
            });
        }
        if self.extensions.dht
            && let Some(dht) = &self.dht
        {
            self.send(Message::Port(dht.local_addr().port()));
        }
        if self.extensions.fast {
            let meta = &self.shared.meta;
            self.allowed_fast_out = allowed_fast_set(
                addr.ip(),
                &meta.info_hash,
                meta.piece_count(),
                ALLOWED_FAST_COUNT,
            )
            .into_iter()
            .filter(|&i| have.get(i))
            .collect();
            for index in self.allowed_fast_out.clone() {
                self.send(Message::AllowedFast(index));
            }
        }
    }

    pub(super) fn on_extension_handshake(&mut self, payload: &[u8]) -> Result<(), PeerError> {
        let theirs = ExtensionHandshake::decode(payload)?;
        // A queue of 0 would mean "send nothing", which no client means: it is ignored.
        if let Some(queue) = theirs.request_queue.filter(|&q| q > 0) {
            self.peer_queue = (queue as usize).min(MAX_PIPELINE);
        }
        if let Some(port) = theirs.listen_port {
            self.stats.listen_port.store(port, Ordering::Relaxed);
        }
        self.peer_messages = PeerMessages::of(&theirs);
        if !self.shared.meta.private {
            // Our first `ut_pex` message goes now, if the torrent's list came already.
            self.send_pex(None);
        }
        if let Some(client) = theirs.client.filter(|c| !c.is_empty()) {
            let _ = self.stats.client.set(client);
        }
        Ok(())
    }
}

/// What every extension handshake of ours says: who we are, the requests we queue, our port,
/// and the address we see the peer at. The caller adds the messages it speaks.
pub(crate) fn our_extension_handshake(peer: SocketAddr, listen_port: u16) -> ExtensionHandshake {
    ExtensionHandshake {
        client: Some(format!("Rivulet {}", env!("CARGO_PKG_VERSION"))),
        request_queue: Some(MAX_QUEUED_REQUESTS as u32),
        listen_port: Some(listen_port).filter(|&p| p != 0),
        your_ip: Some(peer.ip().to_canonical()),
        ..Default::default()
    }
}
