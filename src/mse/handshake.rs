//! The MSE exchange over any byte stream, both sides:
//!
//! ```text
//! A → B  Ya, PadA
//! B → A  Yb, PadB
//! A → B  HASH('req1', S), HASH('req2', SKEY) xor HASH('req3', S),
//!        ENCRYPT(VC, crypto_provide, len(PadC), PadC, len(IA)), ENCRYPT(IA)
//! B → A  ENCRYPT(VC, crypto_select, len(PadD), PadD), then the payload stream
//! ```
//!
//! Memory is bounded: at most the 96-byte key, 512 bytes of padding, the fixed fields and 1,024
//! bytes of initial payload are ever held. Neither side waits forever on its own: callers run
//! it under the handshake's deadline.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use rc4::StreamCipher;

use super::keys::{Ciphers, KEY_LEN, KeyPair, req1, req2, req3, xor};
use super::{MseError, PLAINTEXT, RC4};
use crate::ids::InfoHash;

/// Padding is at most this long, each way.
pub const MAX_PAD: usize = 512;
/// The verification constant: eight zeros, encrypted.
const VC: [u8; 8] = [0; 8];
/// Initial payload above this is refused (a BitTorrent handshake is 68 bytes).
const MAX_INITIAL_PAYLOAD: usize = 1024;
/// Bytes read from the socket at a time while looking for a marker.
const READ_STEP: usize = 256;

/// A finished exchange.
pub struct Established {
    /// The RC4 streams when RC4 was selected; `None`: the rest of the connection is plaintext.
    pub ciphers: Option<Ciphers>,
    /// Payload bytes that arrived with the handshake (the peer's initial payload, and whatever
    /// followed), already decrypted.
    pub received: Vec<u8>,
}

/// Dials' side: offers `offer` (`RC4`, `PLAINTEXT` or both) for the torrent `info_hash`.
pub async fn initiate<S>(
    stream: &mut S,
    info_hash: &InfoHash,
    offer: u32,
) -> Result<Established, MseError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let keys = KeyPair::generate();
    let mut hello = keys.public.to_vec();
    hello.extend_from_slice(&random_pad());
    stream.write_all(&hello).await?;

    let mut theirs = [0u8; KEY_LEN];
    stream.read_exact(&mut theirs).await?;
    let secret = keys.shared_secret(&theirs)?;
    let mut ciphers = Ciphers::new(&secret, info_hash, true)?;
    let mut out = Vec::with_capacity(40 + 16);
    out.extend_from_slice(&req1(&secret));
    out.extend_from_slice(&xor(&req2(info_hash), &req3(&secret)));
    let mut fields = Vec::with_capacity(16);
    fields.extend_from_slice(&VC);
    fields.extend_from_slice(&offer.to_be_bytes());
    fields.extend_from_slice(&0u16.to_be_bytes()); // len(PadC)
    fields.extend_from_slice(&0u16.to_be_bytes()); // len(IA): our handshake follows instead
    ciphers.encrypt.apply_keystream(&mut fields);
    out.extend_from_slice(&fields);
    stream.write_all(&out).await?;

    // The receiver's VC, encrypted, ends its padding.
    let marker = {
        let mut vc = VC;
        Ciphers::new(&secret, info_hash, true)?
            .decrypt
            .apply_keystream(&mut vc);
        vc
    };
    let mut buf = Buffer::default();
    let start = buf.find(stream, &marker, MAX_PAD).await?;
    buf.skip(start);
    let mut head = buf.take(stream, VC.len() + 4 + 2).await?;
    ciphers.decrypt.apply_keystream(&mut head);
    let selected = u32::from_be_bytes([head[8], head[9], head[10], head[11]]);
    let pad_len = usize::from(u16::from_be_bytes([head[12], head[13]]));
    if pad_len > MAX_PAD {
        return Err(MseError::PadTooLong(pad_len));
    }
    if (selected != RC4 && selected != PLAINTEXT) || selected & offer == 0 {
        return Err(MseError::BadSelection(selected));
    }
    let mut pad = buf.take(stream, pad_len).await?;
    ciphers.decrypt.apply_keystream(&mut pad);
    Ok(finish(ciphers, selected, Vec::new(), buf.rest()))
}

/// The receiving side, after `first` (bytes already read, which were not a plain BitTorrent
/// handshake). `lookup` names the torrent whose `HASH('req2', info hash)` this is; `allow` is
/// what may be selected (RC4 is chosen when offered and allowed).
pub async fn respond<S>(
    stream: &mut S,
    first: &[u8],
    lookup: impl Fn(&[u8; 20]) -> Option<InfoHash>,
    allow: u32,
) -> Result<(Established, InfoHash), MseError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut buf = Buffer::default();
    buf.data.extend_from_slice(first);
    let theirs: [u8; KEY_LEN] = buf
        .take(stream, KEY_LEN)
        .await?
        .try_into()
        .map_err(|_| MseError::BadPublicKey)?;
    let keys = KeyPair::generate();
    let secret = keys.shared_secret(&theirs)?;
    let mut hello = keys.public.to_vec();
    hello.extend_from_slice(&random_pad());
    stream.write_all(&hello).await?;

    let start = buf.find(stream, &req1(&secret), MAX_PAD).await?;
    buf.skip(start + 20);
    let masked: [u8; 20] = buf
        .take(stream, 20)
        .await?
        .try_into()
        .map_err(|_| MseError::UnknownTorrent)?;
    let info_hash = lookup(&xor(&masked, &req3(&secret))).ok_or(MseError::UnknownTorrent)?;
    let mut ciphers = Ciphers::new(&secret, &info_hash, false)?;

    let mut head = buf.take(stream, VC.len() + 4 + 2).await?;
    ciphers.decrypt.apply_keystream(&mut head);
    if head[..8] != VC {
        return Err(MseError::BadVerification);
    }
    let offered = u32::from_be_bytes([head[8], head[9], head[10], head[11]]);
    let pad_len = usize::from(u16::from_be_bytes([head[12], head[13]]));
    if pad_len > MAX_PAD {
        return Err(MseError::PadTooLong(pad_len));
    }
    let mut pad_and_len = buf.take(stream, pad_len + 2).await?;
    ciphers.decrypt.apply_keystream(&mut pad_and_len);
    let ia_len = usize::from(u16::from_be_bytes([
        pad_and_len[pad_len],
        pad_and_len[pad_len + 1],
    ]));
    if ia_len > MAX_INITIAL_PAYLOAD {
        return Err(MseError::PayloadTooLong(ia_len));
    }
    let mut initial = buf.take(stream, ia_len).await?;
    ciphers.decrypt.apply_keystream(&mut initial);

    let selected = if offered & allow & RC4 != 0 {
        RC4
    } else if offered & allow & PLAINTEXT != 0 {
        PLAINTEXT
    } else {
        return Err(MseError::NoCommonMethod {
            offered,
            allowed: allow,
        });
    };
    let mut reply = Vec::with_capacity(16);
    reply.extend_from_slice(&VC);
    reply.extend_from_slice(&selected.to_be_bytes());
    reply.extend_from_slice(&0u16.to_be_bytes()); // len(PadD)
    ciphers.encrypt.apply_keystream(&mut reply);
    stream.write_all(&reply).await?;
    Ok((finish(ciphers, selected, initial, buf.rest()), info_hash))
}

/// The outcome: the ciphers if RC4 was selected, and the payload that came early (already
/// plain `initial`, then the raw `rest`, decrypted when RC4 goes on).
fn finish(mut ciphers: Ciphers, selected: u32, initial: Vec<u8>, mut rest: Vec<u8>) -> Established {
    let mut received = initial;
    if selected == RC4 {
        ciphers.decrypt.apply_keystream(&mut rest);
        received.extend_from_slice(&rest);
        Established {
            ciphers: Some(ciphers),
            received,
        }
    } else {
        received.extend_from_slice(&rest);
        Established {
            ciphers: None,
            received,
        }
    }
}

fn random_pad() -> Vec<u8> {
    let mut pad = vec![0u8; rand::random_range(0..=MAX_PAD)];
    rand::fill(&mut pad[..]);
    pad
}

/// Bytes read but not yet used, with reads bounded by what the handshake may need.
#[derive(Default)]
struct Buffer {
    data: Vec<u8>,
}

impl Buffer {
    /// Reads until `marker` appears within `pad + marker.len()` bytes of the start; gives its
    /// offset.
    async fn find<S: AsyncRead + Unpin>(
        &mut self,
        stream: &mut S,
        marker: &[u8],
        pad: usize,
    ) -> Result<usize, MseError> {
        let limit = pad + marker.len();
        loop {
            if let Some(at) = self
                .data
                .windows(marker.len())
                .take(pad + 1)
                .position(|w| w == marker)
            {
                return Ok(at);
            }
            if self.data.len() >= limit {
                return Err(MseError::NoSync);
            }
            self.read_some(stream, limit - self.data.len()).await?;
        }
    }

    /// The next `n` bytes, reading what is missing.
    async fn take<S: AsyncRead + Unpin>(
        &mut self,
        stream: &mut S,
        n: usize,
    ) -> Result<Vec<u8>, MseError> {
        while self.data.len() < n {
            self.read_some(stream, n - self.data.len()).await?;
        }
        let rest = self.data.split_off(n);
        Ok(std::mem::replace(&mut self.data, rest))
    }

    fn skip(&mut self, n: usize) {
        self.data.drain(..n.min(self.data.len()));
    }

    fn rest(self) -> Vec<u8> {
        self.data
    }

    /// Reads at most `want` bytes (and at most [`READ_STEP`]); end of stream is an error.
    async fn read_some<S: AsyncRead + Unpin>(
        &mut self,
        stream: &mut S,
        want: usize,
    ) -> Result<(), MseError> {
        let mut chunk = [0u8; READ_STEP];
        let want = want.clamp(1, READ_STEP);
        let n = stream.read(&mut chunk[..want]).await?;
        if n == 0 {
            return Err(MseError::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
        self.data.extend_from_slice(&chunk[..n]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mse::EncryptionPolicy;
    use std::time::{Duration, Instant};
    use tokio::io::duplex;

    const TORRENT: InfoHash = InfoHash([7; 20]);

    fn lookup(masked: &[u8; 20]) -> Option<InfoHash> {
        (*masked == req2(&TORRENT)).then_some(TORRENT)
    }

    /// Both sides over an in-memory pipe.
    async fn exchange(
        offer: u32,
        allow: u32,
    ) -> (
        Result<Established, MseError>,
        Result<(Established, InfoHash), MseError>,
    ) {
        let (mut a, mut b) = duplex(64 * 1024);
        let initiator = tokio::spawn(async move { initiate(&mut a, &TORRENT, offer).await });
        let mut first = [0u8; 20];
        b.read_exact(&mut first).await.unwrap();
        let responded = respond(&mut b, &first, lookup, allow).await;
        drop(b); // a refusal closes the connection, as the engine does
        (initiator.await.unwrap(), responded)
    }

    #[tokio::test]
    async fn every_pair_of_policies_agrees_or_refuses() {
        for dialler in EncryptionPolicy::ALL {
            for listener in EncryptionPolicy::ALL {
                let (Some(offer), Some(allow)) = (dialler.offer(), listener.accept()) else {
                    continue; // no MSE at all: a plain handshake (tested by the engine)
                };
                let (ri, rr) = exchange(offer, allow).await;
                let common = offer & allow;
                if common == 0 {
                    assert!(rr.is_err() && ri.is_err(), "{dialler:?} → {listener:?}");
                    continue;
                }
                let (i, (r, ih)) = (ri.unwrap(), rr.unwrap());
                assert_eq!(ih, TORRENT);
                let rc4 = common & RC4 != 0;
                assert_eq!(i.ciphers.is_some(), rc4, "{dialler:?} → {listener:?}");
                assert_eq!(r.ciphers.is_some(), rc4, "{dialler:?} → {listener:?}");
                if let (Some(mut ic), Some(mut rc)) = (i.ciphers, r.ciphers) {
                    let mut message = *b"interested";
                    ic.encrypt.apply_keystream(&mut message);
                    assert_ne!(&message, b"interested");
                    rc.decrypt.apply_keystream(&mut message);
                    assert_eq!(&message, b"interested");
                    let mut reply = *b"unchoke";
                    rc.encrypt.apply_keystream(&mut reply);
                    ic.decrypt.apply_keystream(&mut reply);
                    assert_eq!(&reply, b"unchoke");
                }
            }
        }
    }

    #[tokio::test]
    async fn an_unknown_torrent_is_refused() {
        let (mut a, mut b) = duplex(64 * 1024);
        let other = InfoHash([9; 20]);
        let dial = tokio::spawn(async move { initiate(&mut a, &other, RC4).await.is_err() });
        let mut first = [0u8; 20];
        b.read_exact(&mut first).await.unwrap();
        let answer = respond(&mut b, &first, lookup, RC4).await;
        assert!(matches!(answer, Err(MseError::UnknownTorrent)));
        drop(b);
        assert!(dial.await.unwrap(), "the dialler sees the refusal");
    }

    /// Garbage, a truncated handshake, a 10 MiB pad and silence: each ends within the deadline
    /// a caller sets, having read at most the bounded amount.
    #[tokio::test]
    async fn hostile_handshakes_end_within_the_deadline() {
        let deadline = Duration::from_secs(2);
        let cases: Vec<(&str, Vec<u8>, bool)> = vec![
            (
                "garbage",
                (0..4096u32).map(|i| (i * 7 + 3) as u8).collect(),
                true,
            ),
            ("truncated", KeyPair::generate().public[..50].to_vec(), true),
            (
                "a 10 MiB pad",
                {
                    let mut v = KeyPair::generate().public.to_vec();
                    v.resize(10 * 1024 * 1024, 0x5a);
                    v
                },
                true,
            ),
            ("silence", KeyPair::generate().public.to_vec(), false),
        ];
        for (name, bytes, close) in cases {
            let (mut a, mut b) = duplex(16 * 1024 * 1024);
            let writer = tokio::spawn(async move {
                let _ = a.write_all(&bytes).await;
                if !close {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                }
                drop(a);
            });
            let started = Instant::now();
            let mut first = [0u8; 20];
            let result = tokio::time::timeout(deadline, async {
                b.read_exact(&mut first).await?;
                respond(&mut b, &first, lookup, RC4 | PLAINTEXT)
                    .await
                    .map(|_| ())
                    .map_err(|e| std::io::Error::other(e.to_string()))
            })
            .await;
            assert!(
                !matches!(result, Ok(Ok(()))),
                "{name}: a hostile handshake was accepted"
            );
            assert!(
                started.elapsed() < deadline + Duration::from_millis(500),
                "{name}: took {:?}",
                started.elapsed()
            );
            writer.abort();
        }
    }

    #[tokio::test]
    async fn initial_payload_and_early_bytes_arrive_decrypted() {
        // A receiver gets the initiator's handshake as IA, as libtorrent sends it.
        let (mut a, mut b) = duplex(64 * 1024);
        let dial = tokio::spawn(async move {
            let keys = KeyPair::generate();
            a.write_all(&keys.public).await.unwrap();
            let mut theirs = [0u8; KEY_LEN];
            a.read_exact(&mut theirs).await.unwrap();
            let secret = keys.shared_secret(&theirs).unwrap();
            let mut c = Ciphers::new(&secret, &TORRENT, true).unwrap();
            let mut out = req1(&secret).to_vec();
            out.extend_from_slice(&xor(&req2(&TORRENT), &req3(&secret)));
            let mut fields = VC.to_vec();
            fields.extend_from_slice(&RC4.to_be_bytes());
            fields.extend_from_slice(&3u16.to_be_bytes());
            fields.extend_from_slice(&[1, 2, 3]);
            fields.extend_from_slice(&5u16.to_be_bytes());
            fields.extend_from_slice(b"hello");
            fields.extend_from_slice(b" world");
            c.encrypt.apply_keystream(&mut fields);
            out.extend_from_slice(&fields);
            a.write_all(&out).await.unwrap();
            a
        });
        let mut first = [0u8; 20];
        b.read_exact(&mut first).await.unwrap();
        let (done, ih) = respond(&mut b, &first, lookup, RC4).await.unwrap();
        let _a = dial.await.unwrap();
        assert_eq!(ih, TORRENT);
        assert!(done.ciphers.is_some());
        assert!(
            b"hello world".starts_with(&done.received),
            "{:?}",
            String::from_utf8_lossy(&done.received)
        );
        assert!(done.received.starts_with(b"hello"));
    }
}
