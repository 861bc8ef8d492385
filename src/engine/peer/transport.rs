//! The byte stream under the peer protocol: a TCP or uTP connection ([`Transport`]), plain or
//! RC4-encrypted after an MSE handshake, split into a reading and a writing half that the
//! connection's tasks own.
//!
//! Dialling tries MSE first or not as the [`EncryptionPolicy`] says (and dials again in the
//! clear when a `Prefer` handshake fails); an inbound connection is told apart by its first 20
//! bytes: a plain BitTorrent handshake starts with `\x13BitTorrent protocol`.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};

use rc4::{Rc4, StreamCipher};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, ReadBuf};

use super::{HANDSHAKE_TIMEOUT, PeerError};
use crate::engine::config::LiveSettings;
use crate::ids::InfoHash;
use crate::mse::EncryptionPolicy;
use crate::mse::handshake::{Established, initiate, respond};
use crate::mse::keys::req2;
use crate::net::{Transport, TransportReader, TransportWriter};
use crate::sync::RwLockExt;

/// The start of every plain BitTorrent handshake.
const PLAIN_START: &[u8; 20] = b"\x13BitTorrent protocol";

/// A connection to a peer, before it is split between the reader loop and the writer task.
pub(crate) struct PeerStream {
    pub reader: PeerReader,
    pub writer: PeerWriter,
    /// Whether RC4 runs under the peer protocol.
    pub encrypted: bool,
    /// Whether the connection runs over uTP (else TCP).
    pub utp: bool,
}

impl PeerStream {
    fn new(transport: Transport, established: Option<Established>) -> Self {
        let utp = transport.is_utp();
        let (read, write) = transport.into_split();
        let (ciphers, received) = match established {
            Some(e) => (e.ciphers, e.received),
            None => (None, Vec::new()),
        };
        // Boxed: a cipher's state is 258 bytes, and streams travel in events.
        let (decrypt, encrypt) = match ciphers {
            Some(c) => (Some(Box::new(c.decrypt)), Some(Box::new(c.encrypt))),
            None => (None, None),
        };
        Self {
            encrypted: encrypt.is_some(),
            utp,
            reader: PeerReader {
                half: read,
                cipher: decrypt,
                early: received,
                early_at: 0,
            },
            writer: PeerWriter {
                half: write,
                cipher: encrypt,
            },
        }
    }

    /// A plain connection whose first bytes were already read.
    fn plain_with(transport: Transport, read: Vec<u8>) -> Self {
        Self::new(
            transport,
            Some(Established {
                ciphers: None,
                received: read,
            }),
        )
    }

    /// Dials `addr` for `info_hash` as `live` says: over TCP or uTP, from the bound address,
    /// MSE first (and, with `Prefer`, a plain connection again if the peer would not have
    /// it), or plain.
    pub async fn dial(
        addr: SocketAddr,
        info_hash: &InfoHash,
        live: &LiveSettings,
    ) -> Result<Self, PeerError> {
        let policy = live.encryption();
        let Some(offer) = policy.offer() else {
            return Ok(Self::new(connect(addr, live).await?, None));
        };
        let mut transport = connect(addr, live).await?;
        let attempt = tokio::time::timeout(
            HANDSHAKE_TIMEOUT,
            initiate(&mut transport, info_hash, offer),
        )
        .await;
        match attempt {
            Ok(Ok(established)) => Ok(Self::new(transport, Some(established))),
            Ok(Err(e)) if policy == EncryptionPolicy::Prefer => {
                tracing::debug!(%addr, error = %e, "encrypted handshake failed; dialling in the clear");
                Ok(Self::new(connect(addr, live).await?, None))
            }
            Ok(Err(e)) => Err(PeerError::Encryption(e)),
            Err(_) => Err(PeerError::Timeout),
        }
    }

    /// Takes an inbound connection as `policy` says: a plain handshake, or the receiving side
    /// of MSE for one of the torrents in `keys`. Runs under the handshake's deadline.
    pub async fn accept(
        mut transport: Transport,
        keys: &TorrentKeys,
        policy: EncryptionPolicy,
    ) -> Result<Self, PeerError> {
        let exchange = async {
            let mut first = [0u8; 20];
            transport.read_exact(&mut first).await?;
            if &first == PLAIN_START {
                return if policy.accepts_plain() {
                    Ok(None)
                } else {
                    Err(PeerError::Protocol(
                        "a plain handshake, and encryption is required",
                    ))
                };
            }
            let Some(allow) = policy.accept() else {
                return Err(PeerError::Protocol(
                    "an encrypted handshake, and encryption is off",
                ));
            };
            let (established, _) = respond(&mut transport, &first, |m| keys.find(m), allow)
                .await
                .map_err(PeerError::Encryption)?;
            Ok(Some(established))
        };
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, exchange).await {
            Ok(Ok(None)) => Ok(Self::plain_with(transport, PLAIN_START.to_vec())),
            Ok(Ok(Some(established))) => Ok(Self::new(transport, Some(established))),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(PeerError::Timeout),
        }
    }

    /// Writes `bytes` (encrypted in place first when RC4 runs).
    pub async fn send(&mut self, bytes: &mut [u8]) -> io::Result<()> {
        self.writer.send(bytes).await
    }
}

/// A TCP or uTP connection to `addr`, as the session's transport setting says.
async fn connect(addr: SocketAddr, live: &LiveSettings) -> Result<Transport, PeerError> {
    let source = live.reach().source_for(addr.ip())?;
    let utp = live.utp();
    let dialled = live
        .dialer
        .dial(
            addr,
            source,
            live.transport(),
            utp.as_ref(),
            HANDSHAKE_TIMEOUT,
        )
        .await;
    dialled.map_err(|e| match e.kind() {
        io::ErrorKind::TimedOut => PeerError::Timeout,
        _ => PeerError::Io(e),
    })
}

/// The reading half: decrypts what arrives, after handing out what came with the handshake.
pub(crate) struct PeerReader {
    half: TransportReader,
    cipher: Option<Box<Rc4>>,
    /// Payload read during the handshake, already plain.
    early: Vec<u8>,
    early_at: usize,
}

impl AsyncRead for PeerReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(early) = this.early.get(this.early_at..)
            && !early.is_empty()
        {
            let n = early.len().min(buf.remaining());
            buf.put_slice(&early[..n]);
            this.early_at += n;
            if this.early_at == this.early.len() {
                this.early = Vec::new();
                this.early_at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.half).poll_read(cx, buf);
        if let (Poll::Ready(Ok(())), Some(cipher)) = (&polled, &mut this.cipher) {
            cipher.apply_keystream(&mut buf.filled_mut()[before..]);
        }
        polled
    }
}

/// The writing half: encrypts in place, then writes.
pub(crate) struct PeerWriter {
    half: TransportWriter,
    cipher: Option<Box<Rc4>>,
}

impl PeerWriter {
    /// Writes all of `bytes`, encrypting them in place first when RC4 runs. Once called, the
    /// bytes belong to the stream: a write cut short leaves the connection unusable, as a
    /// failed write does anyway.
    pub async fn send(&mut self, bytes: &mut [u8]) -> io::Result<()> {
        if let Some(cipher) = &mut self.cipher {
            cipher.apply_keystream(bytes);
        }
        self.half.write_all(bytes).await
    }
}

/// Which torrent an encrypted handshake names: `HASH('req2', info hash)` of every torrent and
/// magnet link of the session, kept in step by the session as they come and go.
#[derive(Clone, Default)]
pub(crate) struct TorrentKeys(Arc<RwLock<HashMap<[u8; 20], InfoHash>>>);

impl TorrentKeys {
    pub fn insert(&self, info_hash: InfoHash) {
        self.0.write_locked().insert(req2(&info_hash), info_hash);
    }

    pub fn remove(&self, info_hash: &InfoHash) {
        self.0.write_locked().remove(&req2(info_hash));
    }

    fn find(&self, masked: &[u8; 20]) -> Option<InfoHash> {
        self.0.read_locked().get(masked).copied()
    }
}
