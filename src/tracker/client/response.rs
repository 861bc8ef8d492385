//! Decoding an HTTP tracker's announce response (BEP 3, compact peers of BEP 23) and scrape
//! response (BEP 48).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use super::TrackerError;
use crate::bencode::{self, Value};
use crate::ids::InfoHash;
use crate::tracker::SwarmCounts;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnounceResponse {
    pub interval: Duration,
    pub min_interval: Option<Duration>,
    pub peers: Vec<SocketAddr>,
    /// Seeders in the swarm.
    pub complete: Option<u32>,
    /// Leechers in the swarm.
    pub incomplete: Option<u32>,
    pub warning: Option<String>,
    pub tracker_id: Option<String>,
}

/// Shortest and longest re-announce interval honoured, whatever the tracker says.
const MIN_INTERVAL: u64 = 15;
const MAX_INTERVAL: u64 = 3 * 3600;

/// The body as a dictionary, or the tracker's `failure reason` as an error.
fn decode_dict(body: &[u8]) -> Result<Value, TrackerError> {
    let value = bencode::decode(body).map_err(|e| TrackerError::BadResponse(e.to_string()))?;
    if value.as_dict().is_none() {
        return Err(TrackerError::BadResponse("not a dictionary".into()));
    }
    if let Some(reason) = value.get("failure reason") {
        let text = reason
            .as_bytes()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        return Err(TrackerError::Failure(text));
    }
    Ok(value)
}

/// The counts of each of `ids`, in order; a torrent the tracker leaves out counts as empty.
pub fn parse_scrape_response(
    body: &[u8],
    ids: &[InfoHash],
) -> Result<Vec<SwarmCounts>, TrackerError> {
    let value = decode_dict(body)?;
    let files = value
        .get("files")
        .and_then(Value::as_dict)
        .ok_or_else(|| TrackerError::BadResponse("no `files` dictionary".into()))?;
    Ok(ids
        .iter()
        .map(|id| {
            let entry = files.get(&id.0[..]);
            let count = |key: &str| {
                entry
                    .and_then(|e| e.get(key))
                    .and_then(Value::as_int)
                    .and_then(|n| u32::try_from(n).ok())
                    .unwrap_or(0)
            };
            SwarmCounts {
                complete: count("complete"),
                downloaded: count("downloaded"),
                incomplete: count("incomplete"),
            }
        })
        .collect())
}

pub fn parse_announce_response(body: &[u8]) -> Result<AnnounceResponse, TrackerError> {
    let value = decode_dict(body)?;
    let seconds = |key: &str| {
        value
            .get(key)
            .and_then(Value::as_int)
            .map(|s| Duration::from_secs(s.clamp(0, MAX_INTERVAL as i64) as u64))
    };
    let interval = seconds("interval")
        .ok_or_else(|| TrackerError::BadResponse("no interval".into()))?
        .max(Duration::from_secs(MIN_INTERVAL));
    let count = |key: &str| {
        value
            .get(key)
            .and_then(Value::as_int)
            .and_then(|n| u32::try_from(n).ok())
    };
    let text = |key: &str| {
        value
            .get(key)
            .and_then(Value::as_bytes)
            .map(|b| String::from_utf8_lossy(b).into_owned())
    };

    let mut peers = match value.get("peers") {
        None => Vec::new(),
        Some(Value::Bytes(compact)) => compact_peers_v4(compact)?,
        Some(Value::List(list)) => list.iter().filter_map(dict_peer).collect(),
        Some(_) => {
            return Err(TrackerError::BadResponse(
                "`peers` is neither a string nor a list".into(),
            ));
        }
    };
    if let Some(Value::Bytes(compact6)) = value.get("peers6") {
        peers.extend(compact_peers_v6(compact6)?);
    }
    Ok(AnnounceResponse {
        interval,
        min_interval: seconds("min interval"),
        peers,
        complete: count("complete"),
        incomplete: count("incomplete"),
        warning: text("warning message"),
        tracker_id: text("tracker id"),
    })
}

fn compact_peers_v4(bytes: &[u8]) -> Result<Vec<SocketAddr>, TrackerError> {
    if !bytes.len().is_multiple_of(6) {
        return Err(TrackerError::BadResponse(format!(
            "compact peers of {} bytes",
            bytes.len()
        )));
    }
    Ok(bytes
        .chunks_exact(6)
        .map(|c| {
            let ip = Ipv4Addr::new(c[0], c[1], c[2], c[3]);
            SocketAddr::new(IpAddr::V4(ip), u16::from_be_bytes([c[4], c[5]]))
        })
        .filter(|a| a.port() != 0)
        .collect())
}

fn compact_peers_v6(bytes: &[u8]) -> Result<Vec<SocketAddr>, TrackerError> {
    if !bytes.len().is_multiple_of(18) {
        return Err(TrackerError::BadResponse(format!(
            "compact IPv6 peers of {} bytes",
            bytes.len()
        )));
    }
    Ok(bytes
        .chunks_exact(18)
        .map(|c| {
            let mut ip = [0u8; 16];
            ip.copy_from_slice(&c[..16]);
            SocketAddr::new(
                IpAddr::V6(Ipv6Addr::from(ip)),
                u16::from_be_bytes([c[16], c[17]]),
            )
        })
        .filter(|a| a.port() != 0)
        .collect())
}

/// One peer of the dictionary form; entries that do not parse are skipped.
fn dict_peer(peer: &Value) -> Option<SocketAddr> {
    let ip: IpAddr = peer.get("ip")?.as_str()?.parse().ok()?;
    let port = u16::try_from(peer.get("port")?.as_int()?)
        .ok()
        .filter(|&p| p != 0)?;
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_compact_peers_and_counts() {
        let body = b"d8:completei3e10:incompletei5e8:intervali1800e12:min intervali60e5:peers12:\x7f\x00\x00\x01\x1a\xe1\x7f\x00\x00\x02\x1a\xe2e";
        let r = parse_announce_response(body).unwrap();
        assert_eq!(r.interval, Duration::from_secs(1800));
        assert_eq!(r.min_interval, Some(Duration::from_secs(60)));
        assert_eq!(r.complete, Some(3));
        assert_eq!(r.incomplete, Some(5));
        assert_eq!(
            r.peers,
            vec![
                "127.0.0.1:6881".parse().unwrap(),
                "127.0.0.2:6882".parse().unwrap()
            ]
        );
    }

    #[test]
    fn parses_dict_peers() {
        let body = b"d8:intervali900e5:peersld2:ip9:127.0.0.17:peer id20:aaaaaaaaaaaaaaaaaaaa4:porti7000eed2:ip3:bad4:porti1eeee";
        let r = parse_announce_response(body).unwrap();
        assert_eq!(r.peers, vec!["127.0.0.1:7000".parse().unwrap()]);
    }

    #[test]
    fn reports_failure_reason_and_bad_bodies() {
        let r = parse_announce_response(b"d14:failure reason12:unregisterede");
        assert!(matches!(r, Err(TrackerError::Failure(ref m)) if m == "unregistered"));
        assert!(matches!(
            parse_announce_response(b"<html>"),
            Err(TrackerError::BadResponse(_))
        ));
        assert!(matches!(
            parse_announce_response(b"d5:peers0:e"),
            Err(TrackerError::BadResponse(_))
        ));
        assert!(matches!(
            parse_announce_response(b"d8:intervali1e5:peers5:abcdee"),
            Err(TrackerError::BadResponse(_))
        ));
    }

    #[test]
    fn parses_scrape_counts_in_the_order_asked() {
        let body = b"d5:filesd20:\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01d8:completei4e10:downloadedi9e10:incompletei2eeee";
        let ids = [InfoHash([2; 20]), InfoHash([1; 20])];
        let counts = parse_scrape_response(body, &ids).unwrap();
        assert_eq!(counts[0], SwarmCounts::default());
        assert_eq!(
            counts[1],
            SwarmCounts {
                complete: 4,
                downloaded: 9,
                incomplete: 2
            }
        );
        assert!(matches!(
            parse_scrape_response(b"d14:failure reason4:nopee", &ids),
            Err(TrackerError::Failure(ref m)) if m == "nope"
        ));
        assert!(parse_scrape_response(b"de", &ids).is_err());
    }

    #[test]
    fn clamps_tiny_intervals() {
        let r = parse_announce_response(b"d8:intervali1ee").unwrap();
        assert_eq!(r.interval, Duration::from_secs(MIN_INTERVAL));
    }
}
