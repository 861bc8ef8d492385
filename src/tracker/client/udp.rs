//! Announcing to a UDP tracker (BEP 15): connect, then announce, each retransmitted after
//! 15·2ⁿ seconds (n bounded), with connection ids reused for up to a minute.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;

use super::{AnnounceResponse, TrackerError};
use crate::ids::InfoHash;
use crate::net::Reach;
use crate::sync::MutexExt;
use crate::tracker::{AnnounceEvent, AnnounceRequest, SwarmCounts};

/// The magic number of a connect request.
pub(crate) const PROTOCOL_ID: u64 = 0x417_2710_1980;
pub(crate) const ACTION_CONNECT: u32 = 0;
pub(crate) const ACTION_ANNOUNCE: u32 = 1;
pub(crate) const ACTION_SCRAPE: u32 = 2;
pub(crate) const ACTION_ERROR: u32 = 3;
/// Info hashes one UDP scrape may carry (BEP 15: about 74 fit in a packet).
pub(crate) const MAX_SCRAPE: usize = 74;
/// BEP 15 allows n up to 8 (over an hour); Rivulet stops after 15+30+60+120 s.
const MAX_RETRIES: u32 = 3;
const CONNECTION_ID_LIFETIME: Duration = Duration::from_secs(60);

/// A UDP tracker client; one per session, so connection ids are shared by every torrent.
pub struct UdpTracker {
    base_timeout: Duration,
    connections: Mutex<HashMap<SocketAddr, (u64, Instant)>>,
    /// Where requests leave from.
    reach: Mutex<Reach>,
}

impl Default for UdpTracker {
    fn default() -> Self {
        Self::with_base_timeout(Duration::from_secs(15))
    }
}

impl UdpTracker {
    /// A client whose first retransmission comes after `base` (BEP 15: 15 s).
    pub fn with_base_timeout(base: Duration) -> Self {
        Self {
            base_timeout: base,
            connections: Mutex::new(HashMap::new()),
            reach: Mutex::new(Reach::Any),
        }
    }

    /// Requests leave from the address `reach` gives from now on; none while it is down.
    pub fn set_reach(&self, reach: Reach) {
        *self.reach.locked() = reach;
    }

    pub async fn announce(
        &self,
        url: &str,
        req: &AnnounceRequest,
    ) -> Result<AnnounceResponse, TrackerError> {
        let (body, ipv6) = self
            .request(url, ACTION_ANNOUNCE, |connection_id, transaction| {
                announce_packet(connection_id, transaction, req)
            })
            .await?;
        parse_udp_announce_response(&body, ipv6)
    }

    /// Seeders, completed and leechers of each torrent (at most [`MAX_SCRAPE`] at once).
    pub async fn scrape(
        &self,
        url: &str,
        ids: &[InfoHash],
    ) -> Result<Vec<SwarmCounts>, TrackerError> {
        let ids = &ids[..ids.len().min(MAX_SCRAPE)];
        let (body, _) = self
            .request(url, ACTION_SCRAPE, |connection_id, transaction| {
                let mut p = Vec::with_capacity(16 + 20 * ids.len());
                p.extend_from_slice(&connection_id.to_be_bytes());
                p.extend_from_slice(&ACTION_SCRAPE.to_be_bytes());
                p.extend_from_slice(&transaction.to_be_bytes());
                for id in ids {
                    p.extend_from_slice(&id.0);
                }
                p
            })
            .await?;
        let counts: Vec<SwarmCounts> = body
            .chunks_exact(12)
            .map(|c| {
                let field = |i: usize| u32::from_be_bytes([c[i], c[i + 1], c[i + 2], c[i + 3]]);
                SwarmCounts {
                    complete: field(0),
                    downloaded: field(4),
                    incomplete: field(8),
                }
            })
            .collect();
        if counts.len() != ids.len() {
            return Err(TrackerError::BadResponse(format!(
                "scrape answered {} of {} torrents",
                counts.len(),
                ids.len()
            )));
        }
        Ok(counts)
    }

    /// Connects if needed, then sends the packet `build` makes from a connection id and a
    /// transaction id; returns the reply body and whether the tracker is on IPv6.
    async fn request(
        &self,
        url: &str,
        action: u32,
        build: impl Fn(u64, u32) -> Vec<u8>,
    ) -> Result<(Vec<u8>, bool), TrackerError> {
        let reach = self.reach.locked().clone();
        let (tracker, source) = resolve(url, &reach).await?;
        let bind: SocketAddr = match (source, tracker.is_ipv4()) {
            (Some(ip), _) => (ip, 0).into(),
            (None, true) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            (None, false) => (Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let socket = UdpSocket::bind(bind).await.map_err(unreachable)?;
        socket.connect(tracker).await.map_err(unreachable)?;
        let connection_id = self.connection_id(&socket, tracker).await?;
        let transaction: u32 = rand::random();
        let packet = build(connection_id, transaction);
        let body = self.exchange(&socket, &packet, transaction, action).await;
        if body.is_err() {
            // The id may have been dropped by the tracker: connect afresh next time.
            self.forget(tracker);
        }
        Ok((body?, tracker.is_ipv6()))
    }

    async fn connection_id(
        &self,
        socket: &UdpSocket,
        tracker: SocketAddr,
    ) -> Result<u64, TrackerError> {
        if let Some((id, at)) = self.lock().get(&tracker).copied()
            && at.elapsed() < CONNECTION_ID_LIFETIME
        {
            return Ok(id);
        }
        let transaction: u32 = rand::random();
        let mut packet = Vec::with_capacity(16);
        packet.extend_from_slice(&PROTOCOL_ID.to_be_bytes());
        packet.extend_from_slice(&ACTION_CONNECT.to_be_bytes());
        packet.extend_from_slice(&transaction.to_be_bytes());
        let body = self
            .exchange(socket, &packet, transaction, ACTION_CONNECT)
            .await?;
        let id = body
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes);
        let id = id.ok_or_else(|| TrackerError::BadResponse("short connect response".into()))?;
        self.lock().insert(tracker, (id, Instant::now()));
        Ok(id)
    }

    fn forget(&self, tracker: SocketAddr) {
        self.lock().remove(&tracker);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, (u64, Instant)>> {
        self.connections.locked()
    }

    /// Sends `packet` until a reply with our transaction id arrives; returns what follows the
    /// 8-byte header.
    async fn exchange(
        &self,
        socket: &UdpSocket,
        packet: &[u8],
        transaction: u32,
        action: u32,
    ) -> Result<Vec<u8>, TrackerError> {
        let mut buf = vec![0u8; 2048];
        for attempt in 0..=MAX_RETRIES {
            socket.send(packet).await.map_err(unreachable)?;
            let deadline = tokio::time::Instant::now() + self.base_timeout * 2u32.pow(attempt);
            loop {
                let received = tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await;
                let Ok(received) = received else { break };
                let n = received.map_err(unreachable)?;
                let Some(reply) = buf.get(..n) else { continue };
                match parse_header(reply) {
                    Some((a, t)) if t == transaction && a == action => {
                        return Ok(reply[8..].to_vec());
                    }
                    Some((ACTION_ERROR, t)) if t == transaction => {
                        return Err(TrackerError::Failure(
                            String::from_utf8_lossy(&reply[8..]).into_owned(),
                        ));
                    }
                    // Late replies to earlier attempts, or garbage: keep waiting.
                    _ => {}
                }
            }
        }
        Err(TrackerError::Unreachable(format!(
            "no answer after {} tries",
            MAX_RETRIES + 1
        )))
    }
}

fn unreachable(e: std::io::Error) -> TrackerError {
    TrackerError::Unreachable(e.to_string())
}

/// `udp://host:port/announce` → the tracker's address.
/// `udp://host:port/announce` → the first of the tracker's addresses that `reach` can send
/// to, and the source address to send from.
async fn resolve(url: &str, reach: &Reach) -> Result<(SocketAddr, Option<IpAddr>), TrackerError> {
    let rest = url
        .strip_prefix("udp://")
        .ok_or_else(|| TrackerError::UnsupportedUrl(url.into()))?;
    let host_port = rest.split(['/', '?']).next().unwrap_or_default();
    let addrs = tokio::net::lookup_host(host_port)
        .await
        .map_err(|e| TrackerError::Unreachable(format!("cannot resolve {host_port}: {e}")))?;
    let mut last_error = TrackerError::Unreachable(format!("{host_port} has no address"));
    for addr in addrs {
        match reach.source_for(addr.ip()) {
            Ok(source) => return Ok((addr, source)),
            Err(e) => last_error = unreachable(e),
        }
    }
    Err(last_error)
}

fn parse_header(reply: &[u8]) -> Option<(u32, u32)> {
    let action = u32::from_be_bytes(reply.get(0..4)?.try_into().ok()?);
    let transaction = u32::from_be_bytes(reply.get(4..8)?.try_into().ok()?);
    Some((action, transaction))
}

fn announce_packet(connection_id: u64, transaction: u32, req: &AnnounceRequest) -> Vec<u8> {
    let event: u32 = match req.event {
        AnnounceEvent::None => 0,
        AnnounceEvent::Completed => 1,
        AnnounceEvent::Started => 2,
        AnnounceEvent::Stopped => 3,
    };
    let mut p = Vec::with_capacity(98);
    p.extend_from_slice(&connection_id.to_be_bytes());
    p.extend_from_slice(&ACTION_ANNOUNCE.to_be_bytes());
    p.extend_from_slice(&transaction.to_be_bytes());
    p.extend_from_slice(&req.info_hash.0);
    p.extend_from_slice(&req.peer_id.0);
    p.extend_from_slice(&req.downloaded.to_be_bytes());
    p.extend_from_slice(&req.left.to_be_bytes());
    p.extend_from_slice(&req.uploaded.to_be_bytes());
    p.extend_from_slice(&event.to_be_bytes());
    p.extend_from_slice(&0u32.to_be_bytes()); // IP: the sender's
    p.extend_from_slice(&req.key.to_be_bytes());
    p.extend_from_slice(&req.numwant.to_be_bytes());
    p.extend_from_slice(&req.port.to_be_bytes());
    p
}

/// A UDP announce reply after its 8-byte header: interval, leechers, seeders, then 6-byte
/// (IPv4) or 18-byte (IPv6) peers.
pub fn parse_udp_announce_response(
    body: &[u8],
    ipv6: bool,
) -> Result<AnnounceResponse, TrackerError> {
    let field = |i: usize| {
        body.get(i * 4..i * 4 + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_be_bytes)
    };
    let (Some(interval), Some(leechers), Some(seeders)) = (field(0), field(1), field(2)) else {
        return Err(TrackerError::BadResponse("short announce response".into()));
    };
    let peers = body.get(12..).unwrap_or_default();
    let size = if ipv6 { 18 } else { 6 };
    if !peers.len().is_multiple_of(size) {
        return Err(TrackerError::BadResponse(format!(
            "{} bytes of peers",
            peers.len()
        )));
    }
    let peers = peers
        .chunks_exact(size)
        .map(|c| {
            let (ip, port) = c.split_at(size - 2);
            let ip = match <[u8; 16]>::try_from(ip) {
                Ok(v6) => IpAddr::V6(Ipv6Addr::from(v6)),
                Err(_) => IpAddr::V4(Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3])),
            };
            SocketAddr::new(ip, u16::from_be_bytes([port[0], port[1]]))
        })
        .filter(|a| a.port() != 0)
        .collect();
    Ok(AnnounceResponse {
        interval: Duration::from_secs(u64::from(interval).clamp(15, 3 * 3600)),
        min_interval: None,
        peers,
        complete: Some(seeders),
        incomplete: Some(leechers),
        warning: None,
        tracker_id: None,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    /// A scripted tracker on loopback that ignores the first `drop` datagrams; returns its URL,
    /// how many datagrams it saw and how many connects it answered.
    async fn fake_tracker(
        drop: u32,
        error: Option<&'static str>,
    ) -> (String, Arc<AtomicU32>, Arc<AtomicU32>) {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let url = format!("udp://{}/announce", socket.local_addr().unwrap());
        let seen = Arc::new(AtomicU32::new(0));
        let connects = Arc::new(AtomicU32::new(0));
        let (seen2, connects2) = (seen.clone(), connects.clone());
        tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            loop {
                let Ok((n, from)) = socket.recv_from(&mut buf).await else {
                    return;
                };
                if seen2.fetch_add(1, Ordering::Relaxed) < drop {
                    continue;
                }
                let packet = &buf[..n];
                let transaction = &packet[12..16];
                let action = u32::from_be_bytes(packet[8..12].try_into().unwrap());
                let mut reply = Vec::new();
                if let Some(message) = error {
                    reply.extend_from_slice(&ACTION_ERROR.to_be_bytes());
                    reply.extend_from_slice(transaction);
                    reply.extend_from_slice(message.as_bytes());
                } else if action == ACTION_CONNECT {
                    connects2.fetch_add(1, Ordering::Relaxed);
                    reply.extend_from_slice(&ACTION_CONNECT.to_be_bytes());
                    reply.extend_from_slice(transaction);
                    reply.extend_from_slice(&42u64.to_be_bytes());
                } else {
                    assert_eq!(n, 98, "announce packets are 98 bytes");
                    assert_eq!(
                        &packet[..8],
                        &42u64.to_be_bytes(),
                        "the connection id is used"
                    );
                    reply.extend_from_slice(&ACTION_ANNOUNCE.to_be_bytes());
                    reply.extend_from_slice(transaction);
                    for v in [1800u32, 5, 3] {
                        reply.extend_from_slice(&v.to_be_bytes());
                    }
                    reply.extend_from_slice(&[127, 0, 0, 1, 0x1a, 0xe1]);
                }
                let _ = socket.send_to(&reply, from).await;
            }
        });
        (url, seen, connects)
    }

    #[tokio::test]
    async fn announces_and_reuses_the_connection_id() {
        let (url, _, connects) = fake_tracker(0, None).await;
        let client = UdpTracker::with_base_timeout(Duration::from_millis(100));
        let r = client
            .announce(&url, &crate::tracker::sample_request())
            .await
            .unwrap();
        assert_eq!(r.interval, Duration::from_secs(1800));
        assert_eq!((r.complete, r.incomplete), (Some(3), Some(5)));
        assert_eq!(r.peers, vec!["127.0.0.1:6881".parse().unwrap()]);
        client
            .announce(&url, &crate::tracker::sample_request())
            .await
            .unwrap();
        assert_eq!(
            connects.load(Ordering::Relaxed),
            1,
            "the id is reused within a minute"
        );
    }

    #[tokio::test]
    async fn lost_datagrams_are_sent_again_on_the_bep_schedule() {
        let (url, seen, _) = fake_tracker(2, None).await;
        let client = UdpTracker::with_base_timeout(Duration::from_millis(100));
        let start = Instant::now();
        client
            .announce(&url, &crate::tracker::sample_request())
            .await
            .unwrap();
        // Lost: connect (waited 100 ms), connect again (200 ms); then both answered.
        assert_eq!(seen.load(Ordering::Relaxed), 4);
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_millis(300) && waited < Duration::from_secs(2),
            "{waited:?}"
        );
    }

    #[tokio::test]
    async fn errors_and_silence_are_reported() {
        let (url, _, _) = fake_tracker(0, Some("torrent not registered")).await;
        let client = UdpTracker::with_base_timeout(Duration::from_millis(20));
        let err = client
            .announce(&url, &crate::tracker::sample_request())
            .await
            .unwrap_err();
        assert!(
            matches!(err, TrackerError::Failure(ref m) if m == "torrent not registered"),
            "{err}"
        );
        let (silent, seen, _) = fake_tracker(u32::MAX, None).await;
        let err = client
            .announce(&silent, &crate::tracker::sample_request())
            .await
            .unwrap_err();
        assert!(matches!(err, TrackerError::Unreachable(_)), "{err}");
        assert_eq!(
            seen.load(Ordering::Relaxed),
            MAX_RETRIES + 1,
            "bounded retransmissions"
        );
    }

    #[test]
    fn parses_ipv6_peers_and_rejects_short_bodies() {
        let mut body = Vec::new();
        for v in [60u32, 0, 1] {
            body.extend_from_slice(&v.to_be_bytes());
        }
        let mut peer = [0u8; 18];
        peer[15] = 1;
        peer[17] = 80;
        body.extend_from_slice(&peer);
        let r = parse_udp_announce_response(&body, true).unwrap();
        assert_eq!(r.peers, vec!["[::1]:80".parse().unwrap()]);
        assert!(parse_udp_announce_response(&body[..10], false).is_err());
        body.push(0);
        assert!(
            parse_udp_announce_response(&body, false).is_err(),
            "19 bytes of peers are no whole peers"
        );
        assert!(parse_udp_announce_response(&body, true).is_err());
    }
}
