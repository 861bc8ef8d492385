//! The tracker's UDP side (BEP 15): connect, announce and scrape. Connection ids are keyed
//! hashes of the client's IP address and the minute, so nothing is stored per client. (The IP
//! only, not the port: clients may send each request from a new socket.)

use std::hash::BuildHasher;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::net::UdpSocket;

use super::swarms::{Announce, DEFAULT_NUMWANT, MAX_NUMWANT, Refusal, Swarms};
use crate::ids::{InfoHash, PeerId};
use crate::tracker::AnnounceEvent;
use crate::tracker::client::udp::{
    ACTION_ANNOUNCE, ACTION_CONNECT, ACTION_ERROR, ACTION_SCRAPE, MAX_SCRAPE, PROTOCOL_ID,
};

const ANNOUNCE_LEN: usize = 98;
/// Largest announce reply sent, so that it is never fragmented (IPv6's minimum MTU less
/// headers) and fits a 2 KiB receive buffer.
const MAX_REPLY: usize = 1200;

pub(super) async fn serve(socket: UdpSocket, swarms: Arc<Swarms>) {
    let ids = ConnectionIds::default();
    let mut buf = vec![0u8; 2048];
    loop {
        let (n, from) = match socket.recv_from(&mut buf).await {
            Ok(received) => received,
            Err(e) => {
                tracing::debug!(error = %e, "tracker UDP receive failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        if let Some(reply) = buf.get(..n).and_then(|p| handle(p, from, &swarms, &ids)) {
            let _ = socket.send_to(&reply, from).await;
        }
    }
}

/// Connection ids valid for one to two minutes, derived from a per-run secret.
#[derive(Default)]
pub struct ConnectionIds(std::collections::hash_map::RandomState);

impl ConnectionIds {
    fn id(&self, from: SocketAddr, minute: u64) -> u64 {
        self.0.hash_one((from.ip(), minute))
    }

    fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() / 60)
    }

    fn issue(&self, from: SocketAddr) -> u64 {
        self.id(from, Self::now())
    }

    fn valid(&self, from: SocketAddr, id: u64) -> bool {
        let now = Self::now();
        id == self.id(from, now) || id == self.id(from, now.saturating_sub(1))
    }
}

fn be_u32(p: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(p.get(at..at + 4)?.try_into().ok()?))
}

fn be_u64(p: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(p.get(at..at + 8)?.try_into().ok()?))
}

fn twenty(p: &[u8], at: usize) -> Option<[u8; 20]> {
    p.get(at..at + 20)?.try_into().ok()
}

/// The reply to one datagram; `None` for datagrams too short to answer.
pub fn handle(
    packet: &[u8],
    from: SocketAddr,
    swarms: &Swarms,
    ids: &ConnectionIds,
) -> Option<Vec<u8>> {
    let connection_id = be_u64(packet, 0)?;
    let action = be_u32(packet, 8)?;
    let transaction = be_u32(packet, 12)?;
    let mut reply = Vec::with_capacity(64);
    let result = match action {
        ACTION_CONNECT if connection_id == PROTOCOL_ID => {
            reply.extend_from_slice(&ACTION_CONNECT.to_be_bytes());
            reply.extend_from_slice(&transaction.to_be_bytes());
            reply.extend_from_slice(&ids.issue(from).to_be_bytes());
            return Some(reply);
        }
        _ if !ids.valid(from, connection_id) => Err(Refusal::BadConnectionId),
        ACTION_ANNOUNCE => announce(packet, from, swarms, transaction, &mut reply),
        ACTION_SCRAPE => scrape(packet, swarms, transaction, &mut reply),
        _ => Err(Refusal::UnknownRequest),
    };
    if let Err(refusal) = result {
        reply.clear();
        reply.extend_from_slice(&ACTION_ERROR.to_be_bytes());
        reply.extend_from_slice(&transaction.to_be_bytes());
        reply.extend_from_slice(refusal.to_string().as_bytes());
    }
    Some(reply)
}

fn announce(
    p: &[u8],
    from: SocketAddr,
    swarms: &Swarms,
    transaction: u32,
    reply: &mut Vec<u8>,
) -> Result<(), Refusal> {
    if p.len() < ANNOUNCE_LEN {
        return Err(Refusal::Invalid("announce packet"));
    }
    let short = Refusal::Invalid("announce packet");
    let event = match be_u32(p, 80).ok_or(short.clone())? {
        0 => AnnounceEvent::None,
        1 => AnnounceEvent::Completed,
        2 => AnnounceEvent::Started,
        3 => AnnounceEvent::Stopped,
        _ => return Err(Refusal::Invalid("event")),
    };
    let numwant = match be_u32(p, 92).ok_or(short.clone())? as i32 {
        n if n < 0 => DEFAULT_NUMWANT,
        n => (n as usize).min(MAX_NUMWANT),
    };
    let port = p.get(96..98).map(|b| u16::from_be_bytes([b[0], b[1]]));
    let port = port.filter(|&p| p != 0).ok_or(Refusal::Invalid("port"))?;
    let ip = match from.ip() {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(from.ip(), IpAddr::V4),
        v4 => v4,
    };
    let request = Announce {
        info_hash: InfoHash(twenty(p, 16).ok_or(short.clone())?),
        peer_id: PeerId(twenty(p, 36).ok_or(short.clone())?),
        addr: SocketAddr::new(ip, port),
        downloaded: be_u64(p, 56).ok_or(short.clone())?,
        left: be_u64(p, 64).ok_or(short.clone())?,
        uploaded: be_u64(p, 72).ok_or(short)?,
        event,
        numwant,
    };
    let answer = swarms.announce(&request)?;
    reply.extend_from_slice(&ACTION_ANNOUNCE.to_be_bytes());
    reply.extend_from_slice(&transaction.to_be_bytes());
    reply.extend_from_slice(&(answer.interval.as_secs() as u32).to_be_bytes());
    reply.extend_from_slice(&answer.incomplete.to_be_bytes());
    reply.extend_from_slice(&answer.complete.to_be_bytes());
    // One address family per reply: the asker's; as many peers as fit.
    let entry = if ip.is_ipv4() { 6 } else { 18 };
    let room = (MAX_REPLY - reply.len()) / entry;
    let same_family = answer
        .peers
        .iter()
        .filter(|(_, a)| a.is_ipv4() == ip.is_ipv4());
    for (_, addr) in same_family.take(room) {
        match addr.ip() {
            IpAddr::V4(v4) => reply.extend_from_slice(&v4.octets()),
            IpAddr::V6(v6) => reply.extend_from_slice(&v6.octets()),
        }
        reply.extend_from_slice(&addr.port().to_be_bytes());
    }
    Ok(())
}

fn scrape(p: &[u8], swarms: &Swarms, transaction: u32, reply: &mut Vec<u8>) -> Result<(), Refusal> {
    let ids: Vec<InfoHash> = p
        .get(16..)
        .unwrap_or_default()
        .chunks_exact(20)
        .take(MAX_SCRAPE)
        .filter_map(|c| c.try_into().ok().map(InfoHash))
        .collect();
    if ids.is_empty() {
        return Err(Refusal::Missing("info_hash"));
    }
    reply.extend_from_slice(&ACTION_SCRAPE.to_be_bytes());
    reply.extend_from_slice(&transaction.to_be_bytes());
    for (_, counts) in swarms.scrape(&ids) {
        reply.extend_from_slice(&counts.complete.to_be_bytes());
        reply.extend_from_slice(&counts.downloaded.to_be_bytes());
        reply.extend_from_slice(&counts.incomplete.to_be_bytes());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracker::{AnnounceRequest, UdpTracker};

    fn swarms() -> Swarms {
        Swarms::open_for_tests()
    }

    fn connect(ids: &ConnectionIds, s: &Swarms, from: SocketAddr) -> u64 {
        let mut p = PROTOCOL_ID.to_be_bytes().to_vec();
        p.extend_from_slice(&ACTION_CONNECT.to_be_bytes());
        p.extend_from_slice(&7u32.to_be_bytes());
        let reply = handle(&p, from, s, ids).unwrap();
        assert_eq!(be_u32(&reply, 0), Some(ACTION_CONNECT));
        assert_eq!(be_u32(&reply, 4), Some(7));
        be_u64(&reply, 8).unwrap()
    }

    fn error_text(reply: &[u8]) -> String {
        assert_eq!(be_u32(reply, 0), Some(ACTION_ERROR));
        String::from_utf8_lossy(&reply[8..]).into_owned()
    }

    #[test]
    fn connection_ids_are_checked() {
        let (ids, s) = (ConnectionIds::default(), swarms());
        let from: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let id = connect(&ids, &s, from);
        assert!(ids.valid(from, id));
        assert!(ids.valid("127.0.0.1:5001".parse().unwrap(), id));
        assert!(!ids.valid("127.0.0.2:5000".parse().unwrap(), id));
        let mut p = (id ^ 1).to_be_bytes().to_vec();
        p.extend_from_slice(&ACTION_SCRAPE.to_be_bytes());
        p.extend_from_slice(&1u32.to_be_bytes());
        p.extend_from_slice(&[1; 20]);
        assert_eq!(
            error_text(&handle(&p, from, &s, &ids).unwrap()),
            "bad connection id"
        );
        assert_eq!(handle(&p[..10], from, &s, &ids), None);
    }

    #[test]
    fn short_and_unknown_requests_get_errors() {
        let (ids, s) = (ConnectionIds::default(), swarms());
        let from: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let id = connect(&ids, &s, from);
        let mut p = id.to_be_bytes().to_vec();
        p.extend_from_slice(&ACTION_ANNOUNCE.to_be_bytes());
        p.extend_from_slice(&1u32.to_be_bytes());
        p.extend_from_slice(&[0; 40]);
        assert_eq!(
            error_text(&handle(&p, from, &s, &ids).unwrap()),
            "invalid announce packet"
        );
        p[8..12].copy_from_slice(&9u32.to_be_bytes());
        assert_eq!(
            error_text(&handle(&p, from, &s, &ids).unwrap()),
            "unknown request"
        );
    }

    /// A reply holds at most what fits in one unfragmented datagram, however many peers asked.
    #[test]
    fn replies_fit_one_datagram() {
        let ids = ConnectionIds::default();
        let s = crate::tracker::server::swarms::tests::crowded();
        let from: SocketAddr = "127.0.0.1:999".parse().unwrap();
        let id = connect(&ids, &s, from);
        let mut p = id.to_be_bytes().to_vec();
        p.extend_from_slice(&ACTION_ANNOUNCE.to_be_bytes());
        p.extend_from_slice(&1u32.to_be_bytes());
        p.extend_from_slice(&[1; 20]);
        p.extend_from_slice(&[9; 20]);
        p.extend_from_slice(&[0; 8]);
        p.extend_from_slice(&5u64.to_be_bytes()); // left
        p.extend_from_slice(&[0; 8]);
        p.extend_from_slice(&2u32.to_be_bytes());
        p.extend_from_slice(&[0; 8]);
        p.extend_from_slice(&200i32.to_be_bytes());
        p.extend_from_slice(&999u16.to_be_bytes());
        let reply = handle(&p, from, &s, &ids).unwrap();
        assert_eq!(be_u32(&reply, 0), Some(ACTION_ANNOUNCE));
        assert!(reply.len() <= MAX_REPLY, "{}", reply.len());
        assert_eq!((reply.len() - 20) / 6, (MAX_REPLY - 20) / 6);
    }

    /// Rivulet's own UDP client against the server, on loopback: announce, then scrape.
    #[tokio::test]
    async fn rivulet_client_announces_and_scrapes() {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let url = format!("udp://{}/announce", socket.local_addr().unwrap());
        let s = Arc::new(swarms());
        tokio::spawn(serve(socket, s.clone()));
        let client = UdpTracker::default();
        let mut seeder = crate::tracker::sample_request();
        seeder.left = 0;
        seeder.port = 7000;
        client.announce(&url, &seeder).await.unwrap();
        let leecher = AnnounceRequest {
            port: 7001,
            left: 5,
            ..crate::tracker::sample_request()
        };
        let reply = client.announce(&url, &leecher).await.unwrap();
        assert_eq!(reply.peers, vec!["127.0.0.1:7000".parse().unwrap()]);
        assert_eq!((reply.complete, reply.incomplete), (Some(1), Some(1)));
        let counts = client
            .scrape(&url, &[seeder.info_hash, InfoHash([9; 20])])
            .await
            .unwrap();
        assert_eq!((counts[0].complete, counts[0].incomplete), (1, 1));
        assert_eq!(counts[1], Default::default());
    }
}
