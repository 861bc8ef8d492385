//! The tracker's HTTP side: `GET /announce` and `GET /scrape` (BEP 3, BEP 23 compact peers,
//! BEP 7 `peers6`, BEP 48 scrape) on a small, bounded HTTP/1.1 reader with keep-alive.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::ip_slots::{IpSlot, IpSlots};
use super::swarms::{Announce, AnnounceReply, DEFAULT_NUMWANT, MAX_NUMWANT, Refusal, Swarms};
use crate::bencode::Value;
use crate::ids::{InfoHash, PeerId};
use crate::tracker::{AnnounceEvent, SwarmCounts};

/// Longest request head accepted.
const MAX_REQUEST: usize = 8 * 1024;
/// Connections served at once; more are closed at once.
const MAX_CONNECTIONS: usize = 512;
/// Connections one address may hold, so that one host cannot take every slot (a newcomer
/// takes the place of an idle one).
const MAX_CONNECTIONS_PER_IP: usize = 16;
/// How long a keep-alive connection may sit idle between requests.
const IDLE_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a request head may take to arrive, once it has started.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Info hashes one scrape may ask about.
const MAX_SCRAPE: usize = 100;

/// Serves connections until the task is aborted, which also ends every connection (they
/// live in this task's `JoinSet`).
pub(super) async fn serve(listener: TcpListener, swarms: Arc<Swarms>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let per_ip = IpSlots::new(MAX_CONNECTIONS_PER_IP);
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        match listener.accept().await {
            Ok((stream, peer)) => {
                // Over a cap, the connection is closed at once rather than left waiting.
                let Ok(permit) = slots.clone().try_acquire_owned() else {
                    continue;
                };
                let Some(ip_slot) = per_ip.take(peer.ip()) else {
                    continue;
                };
                let swarms = swarms.clone();
                connections.spawn(async move {
                    let _ = tokio::time::timeout(
                        IDLE_TIMEOUT * 20,
                        serve_connection(stream, peer, &swarms, &ip_slot),
                    )
                    .await;
                    drop((permit, ip_slot));
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "tracker accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn serve_connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    swarms: &Swarms,
    slot: &IpSlot,
) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    loop {
        // Idle time between requests is allowed; a request, once begun, must arrive in time.
        let mut head_deadline = (!buf.is_empty()).then(|| Instant::now() + HEAD_TIMEOUT);
        let head_end = loop {
            if let Some(end) = find_head_end(&buf) {
                break end;
            }
            if buf.len() >= MAX_REQUEST {
                let body = failure("request too large");
                return respond(
                    &mut stream,
                    "431 Request Header Fields Too Large",
                    &body,
                    false,
                )
                .await;
            }
            let mut chunk = [0u8; 2048];
            let wait = head_deadline.map_or(IDLE_TIMEOUT, |d| {
                d.saturating_duration_since(Instant::now())
            });
            let read = tokio::time::timeout(wait, stream.read(&mut chunk));
            let read = if head_deadline.is_some() {
                read.await
            } else {
                // Between requests: a newcomer from this address may take the place.
                match slot.while_idle(read).await {
                    Some(read) => read,
                    None => return Ok(()),
                }
            };
            let n = match read {
                Ok(read) => read?,
                Err(_) => return Ok(()),
            };
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
            head_deadline.get_or_insert_with(|| Instant::now() + HEAD_TIMEOUT);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        buf.drain(..head_end + 4);
        let keep_alive = wants_keep_alive(&head) && !slot.evicted();
        let (status, body) = answer(&head, peer.ip(), swarms);
        respond(&mut stream, status, &body, keep_alive).await?;
        if !keep_alive {
            return Ok(());
        }
    }
}

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n")
}

/// HTTP/1.1 keeps the connection unless told otherwise; HTTP/1.0 closes unless asked.
fn wants_keep_alive(head: &str) -> bool {
    let mut lines = head.lines();
    let http11 = lines.next().is_some_and(|l| l.ends_with("HTTP/1.1"));
    let connection = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("connection"))
        .map(|(_, value)| value.trim().to_ascii_lowercase());
    match connection.as_deref() {
        Some("close") => false,
        Some("keep-alive") => true,
        _ => http11,
    }
}

async fn respond(
    stream: &mut TcpStream,
    status: &str,
    body: &[u8],
    keep_alive: bool,
) -> std::io::Result<()> {
    let connection = if keep_alive { "keep-alive" } else { "close" };
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: {connection}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    stream.write_all(&out).await
}

/// The status line and bencoded body for one request head (the text before the blank line).
pub fn answer(head: &str, source: IpAddr, swarms: &Swarms) -> (&'static str, Vec<u8>) {
    let target = head
        .lines()
        .next()
        .and_then(|line| line.strip_prefix("GET "))
        .and_then(|rest| rest.split(' ').next());
    let Some(target) = target else {
        return ("405 Method Not Allowed", failure("only GET is supported"));
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let params = parse_query(query);
    let body = match path {
        "/announce" => match parse_announce(&params, source) {
            Ok(request) => match swarms.announce(&request.announce) {
                Ok(reply) => announce_body(&reply, &request),
                Err(refusal) => failure(&refusal.to_string()),
            },
            Err(refusal) => failure(&refusal.to_string()),
        },
        "/scrape" => match scrape_ids(&params) {
            Ok(ids) => scrape_body(&swarms.scrape(&ids)),
            Err(refusal) => failure(&refusal.to_string()),
        },
        _ => return ("404 Not Found", failure("unknown path")),
    };
    ("200 OK", body)
}

fn failure(reason: &str) -> Vec<u8> {
    Value::dict([("failure reason", Value::Bytes(reason.as_bytes().to_vec()))]).encode()
}

/// A query string as decoded (name, value) pairs; values are raw bytes (info hashes are binary).
fn parse_query(query: &str) -> Vec<(String, Vec<u8>)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (
                String::from_utf8_lossy(&crate::percent::decode(name)).into_owned(),
                crate::percent::decode(value),
            )
        })
        .collect()
}

struct HttpAnnounce {
    announce: Announce,
    compact: bool,
    no_peer_id: bool,
}

fn param<'a>(params: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_slice())
}

fn number<T: std::str::FromStr>(
    params: &[(String, Vec<u8>)],
    name: &'static str,
) -> Result<Option<T>, Refusal> {
    param(params, name)
        .map(|v| {
            std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or(Refusal::Invalid(name))
        })
        .transpose()
}

fn twenty_bytes(params: &[(String, Vec<u8>)], name: &'static str) -> Result<[u8; 20], Refusal> {
    param(params, name)
        .ok_or(Refusal::Missing(name))?
        .try_into()
        .map_err(|_| Refusal::BadLength(name))
}

fn parse_announce(params: &[(String, Vec<u8>)], source: IpAddr) -> Result<HttpAnnounce, Refusal> {
    let info_hash = InfoHash(twenty_bytes(params, "info_hash")?);
    let peer_id = PeerId(twenty_bytes(params, "peer_id")?);
    let port: u16 = number(params, "port")?.ok_or(Refusal::Missing("port"))?;
    if port == 0 {
        return Err(Refusal::Invalid("port"));
    }
    let event = match param(params, "event") {
        // BEP 21's `paused` (a partial seed) is a regular announce here.
        None | Some(b"") | Some(b"empty") | Some(b"paused") => AnnounceEvent::None,
        Some(b"started") => AnnounceEvent::Started,
        Some(b"completed") => AnnounceEvent::Completed,
        Some(b"stopped") => AnnounceEvent::Stopped,
        Some(_) => return Err(Refusal::Invalid("event")),
    };
    let source = match source {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(source, IpAddr::V4),
        v4 => v4,
    };
    Ok(HttpAnnounce {
        announce: Announce {
            info_hash,
            peer_id,
            addr: SocketAddr::new(source, port),
            uploaded: number(params, "uploaded")?.unwrap_or(0),
            downloaded: number(params, "downloaded")?.unwrap_or(0),
            left: number(params, "left")?.ok_or(Refusal::Missing("left"))?,
            event,
            numwant: number::<usize>(params, "numwant")?
                .unwrap_or(DEFAULT_NUMWANT)
                .min(MAX_NUMWANT),
        },
        compact: param(params, "compact") != Some(b"0"),
        no_peer_id: param(params, "no_peer_id") == Some(b"1"),
    })
}

fn announce_body(reply: &AnnounceReply, request: &HttpAnnounce) -> Vec<u8> {
    let mut entries = vec![
        ("interval", Value::Int(reply.interval.as_secs() as i64)),
        (
            "min interval",
            Value::Int(reply.min_interval.as_secs() as i64),
        ),
        ("complete", Value::Int(reply.complete.into())),
        ("incomplete", Value::Int(reply.incomplete.into())),
    ];
    if request.compact {
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        for (_, addr) in &reply.peers {
            match addr.ip() {
                IpAddr::V4(ip) => v4.extend_from_slice(&ip.octets()),
                IpAddr::V6(ip) => v6.extend_from_slice(&ip.octets()),
            }
            let out = if addr.is_ipv4() { &mut v4 } else { &mut v6 };
            out.extend_from_slice(&addr.port().to_be_bytes());
        }
        entries.push(("peers", Value::Bytes(v4)));
        if !v6.is_empty() {
            entries.push(("peers6", Value::Bytes(v6)));
        }
    } else {
        let peers = reply
            .peers
            .iter()
            .map(|(id, addr)| {
                let mut peer = vec![
                    ("ip", Value::Bytes(addr.ip().to_string().into_bytes())),
                    ("port", Value::Int(addr.port().into())),
                ];
                if !request.no_peer_id {
                    peer.push(("peer id", Value::Bytes(id.0.to_vec())));
                }
                Value::dict(peer)
            })
            .collect();
        entries.push(("peers", Value::List(peers)));
    }
    Value::dict(entries).encode()
}

fn scrape_ids(params: &[(String, Vec<u8>)]) -> Result<Vec<InfoHash>, Refusal> {
    let ids: Vec<InfoHash> = params
        .iter()
        .filter(|(name, _)| name == "info_hash")
        .map(|(_, v)| {
            <[u8; 20]>::try_from(v.as_slice())
                .map(InfoHash)
                .map_err(|_| Refusal::BadLength("info_hash"))
        })
        .take(MAX_SCRAPE)
        .collect::<Result<_, _>>()?;
    if ids.is_empty() {
        // A full scrape would list every torrent: not offered.
        return Err(Refusal::Missing("info_hash"));
    }
    Ok(ids)
}

fn scrape_body(counts: &[(InfoHash, SwarmCounts)]) -> Vec<u8> {
    let files = counts
        .iter()
        .map(|(id, c)| {
            (
                id.0.to_vec(),
                Value::dict([
                    ("complete", Value::Int(c.complete.into())),
                    ("downloaded", Value::Int(c.downloaded.into())),
                    ("incomplete", Value::Int(c.incomplete.into())),
                ]),
            )
        })
        .collect();
    Value::dict([("files", Value::Dict(files))]).encode()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracker::parse_announce_response;

    fn swarms() -> Swarms {
        Swarms::open_for_tests()
    }

    fn get(swarms: &Swarms, target: &str, port: u8) -> Vec<u8> {
        let head = format!("GET {target} HTTP/1.1\r\nHost: x");
        answer(&head, IpAddr::from([127, 0, 0, port]), swarms).1
    }

    const HASH: &str = "%01%01%01%01%01%01%01%01%01%01%01%01%01%01%01%01%01%01%01%01";

    #[test]
    fn announces_answer_with_the_other_peers() {
        let s = swarms();
        let first = format!(
            "/announce?info_hash={HASH}&peer_id=AAAAAAAAAAAAAAAAAAAA&port=7000&left=0&event=started"
        );
        get(&s, &first, 1);
        let second = format!(
            "/announce?info_hash={HASH}&peer_id=BBBBBBBBBBBBBBBBBBBB&port=7001&left=9&compact=1"
        );
        let reply = parse_announce_response(&get(&s, &second, 2)).unwrap();
        assert_eq!(reply.peers, vec!["127.0.0.1:7000".parse().unwrap()]);
        assert_eq!((reply.complete, reply.incomplete), (Some(1), Some(1)));
        assert_eq!(reply.interval, Duration::from_secs(60));
        assert_eq!(reply.min_interval, Some(Duration::from_secs(30)));

        let dicts = format!(
            "/announce?info_hash={HASH}&peer_id=BBBBBBBBBBBBBBBBBBBB&port=7001&left=9&compact=0"
        );
        let body = crate::bencode::decode(&get(&s, &dicts, 2)).unwrap();
        let peer = &body.get("peers").unwrap().as_list().unwrap()[0];
        assert_eq!(
            peer.get("peer id").unwrap().as_bytes(),
            Some(&b"AAAAAAAAAAAAAAAAAAAA"[..])
        );
        assert_eq!(peer.get("ip").unwrap().as_str(), Some("127.0.0.1"));
        assert_eq!(peer.get("port").unwrap().as_int(), Some(7000));
    }

    #[test]
    fn malformed_announces_get_failure_reasons() {
        let s = swarms();
        let cases = [
            (
                "/announce?peer_id=AAAAAAAAAAAAAAAAAAAA&port=1&left=0",
                "missing info_hash",
            ),
            (
                "/announce?info_hash=short&peer_id=AAAAAAAAAAAAAAAAAAAA&port=1&left=0",
                "info_hash must be 20 bytes",
            ),
            (
                &format!("/announce?info_hash={HASH}&port=1&left=0"),
                "missing peer_id",
            ),
            (
                &format!("/announce?info_hash={HASH}&peer_id=AAAA&port=1&left=0"),
                "peer_id must be 20 bytes",
            ),
            (
                &format!(
                    "/announce?info_hash={HASH}&peer_id=AAAAAAAAAAAAAAAAAAAA&port=99999&left=0"
                ),
                "invalid port",
            ),
            (
                &format!("/announce?info_hash={HASH}&peer_id=AAAAAAAAAAAAAAAAAAAA&left=0"),
                "missing port",
            ),
            (
                &format!("/announce?info_hash={HASH}&peer_id=AAAAAAAAAAAAAAAAAAAA&port=1&left=x"),
                "invalid left",
            ),
            (
                &format!(
                    "/announce?info_hash={HASH}&peer_id=AAAAAAAAAAAAAAAAAAAA&port=1&left=0&event=dance"
                ),
                "invalid event",
            ),
            ("/scrape", "missing info_hash"),
            ("/elsewhere", "unknown path"),
        ];
        for (target, reason) in cases {
            let body = get(&s, target, 1);
            let value = crate::bencode::decode(&body).unwrap();
            assert_eq!(
                value.get("failure reason").unwrap().as_str(),
                Some(reason),
                "{target}"
            );
        }
        assert_eq!(
            answer("POST / HTTP/1.1", IpAddr::from([127, 0, 0, 1]), &s).0,
            "405 Method Not Allowed"
        );
    }

    #[test]
    fn scrape_reports_counts_per_hash() {
        let s = swarms();
        get(
            &s,
            &format!("/announce?info_hash={HASH}&peer_id=AAAAAAAAAAAAAAAAAAAA&port=7000&left=0"),
            1,
        );
        let body = get(
            &s,
            &format!(
                "/scrape?info_hash={HASH}&info_hash=%02%02%02%02%02%02%02%02%02%02%02%02%02%02%02%02%02%02%02%02"
            ),
            1,
        );
        let value = crate::bencode::decode(&body).unwrap();
        let files = value.get("files").unwrap().as_dict().unwrap();
        assert_eq!(
            files[&vec![1u8; 20]].get("complete").unwrap().as_int(),
            Some(1)
        );
        assert_eq!(
            files[&vec![2u8; 20]].get("incomplete").unwrap().as_int(),
            Some(0)
        );
    }

    /// The HTTP side serving a fresh open tracker on a loopback port.
    async fn start_serving() -> (SocketAddr, tokio::task::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        (addr, tokio::spawn(serve(listener, Arc::new(swarms()))))
    }

    /// How many of `streams` the server has closed (each is given 300 ms to say).
    async fn closed(streams: &mut [TcpStream]) -> usize {
        let mut closed = 0;
        for s in streams {
            let mut byte = [0u8; 1];
            let read = tokio::time::timeout(Duration::from_millis(300), s.read(&mut byte)).await;
            if matches!(read, Ok(Ok(0)) | Ok(Err(_))) {
                closed += 1;
            }
        }
        closed
    }

    /// Sends an announce for port `port` on `stream` (kept alive) and returns the reply's body.
    async fn announce_over(stream: &mut TcpStream, port: u16) -> Vec<u8> {
        let request = format!(
            "GET /announce?info_hash={HASH}&peer_id=AAAAAAAAAAAAAAAAA{:03}&port={port}&left=1&compact=1 HTTP/1.1\r\nHost: x\r\n\r\n",
            port % 1000
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut got = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(end) = find_head_end(&got) {
                let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap();
                if got.len() >= end + 4 + length {
                    return got[end + 4..end + 4 + length].to_vec();
                }
            }
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "closed before the whole reply");
            got.extend_from_slice(&chunk[..n]);
        }
    }

    /// Clients on one address that keep their connections alive: one over the cap is served,
    /// and one of the idle ones gives way to it.
    #[tokio::test]
    async fn a_newcomer_over_the_cap_takes_the_place_of_an_idle_connection() {
        let (addr, task) = start_serving().await;
        let mut kept = Vec::new();
        for i in 0..MAX_CONNECTIONS_PER_IP {
            let mut s = TcpStream::connect(addr).await.unwrap();
            announce_over(&mut s, 7000 + i as u16).await;
            kept.push(s);
        }
        let mut newcomer = TcpStream::connect(addr).await.unwrap();
        let reply = parse_announce_response(&announce_over(&mut newcomer, 8000).await).unwrap();
        assert_eq!(
            reply.peers.len(),
            10,
            "the newcomer is answered, with peers"
        );
        assert_eq!(closed(&mut kept).await, 1, "one idle connection gave way");
        task.abort();
    }

    /// One address cannot hold more than its share of connections: each one over the cap
    /// takes the place of an idle one (these send nothing), so the cap holds.
    #[tokio::test]
    async fn connections_per_address_are_capped() {
        let (addr, task) = start_serving().await;
        let mut streams = Vec::new();
        for _ in 0..MAX_CONNECTIONS_PER_IP + 4 {
            streams.push(TcpStream::connect(addr).await.unwrap());
        }
        assert_eq!(closed(&mut streams).await, 4);
        task.abort();
    }

    #[test]
    fn keep_alive_follows_the_http_version() {
        assert!(wants_keep_alive("GET / HTTP/1.1\r\nHost: x"));
        assert!(!wants_keep_alive("GET / HTTP/1.1\r\nConnection: close"));
        assert!(!wants_keep_alive("GET / HTTP/1.0"));
        assert!(wants_keep_alive("GET / HTTP/1.0\r\nconnection: Keep-Alive"));
    }
}
