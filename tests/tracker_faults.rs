//! Trackers that fail in every way an HTTP tracker can: each failure is a clear status on the
//! torrent, a torrent whose only tracker fails backs off, and a working tracker in a later tier
//! still brings the peers that finish the download.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use common::*;
use rivulet::create::{CreateOptions, CreateProgress, create_torrent};
use rivulet::engine::{TorrentState, TrackerStatus};
use rivulet::tracker::TrackerError;
use rivulet::tracker::server::{Access, RunningTracker, TrackerConfig};

/// An HTTP server whose first path segment picks a failure; counts announces per segment.
struct FaultyTracker {
    base: String,
    hits: Arc<Mutex<HashMap<String, u32>>>,
    /// What `flaky` hands out on its first announce (then it fails with HTTP 500).
    flaky_peer: Arc<Mutex<Option<std::net::SocketAddr>>>,
}

impl FaultyTracker {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let hits: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
        let flaky_peer: Arc<Mutex<Option<std::net::SocketAddr>>> = Arc::default();
        let (counter, location, peer) = (hits.clone(), base.clone(), flaky_peer.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let (counter, location, peer) = (counter.clone(), location.clone(), peer.clone());
                std::thread::spawn(move || answer(stream, &counter, &location, &peer));
            }
        });
        Self {
            base,
            hits,
            flaky_peer,
        }
    }

    fn url(&self, fault: &str) -> String {
        format!("{}/{fault}/announce", self.base)
    }

    fn hits(&self, fault: &str) -> u32 {
        self.hits.lock().unwrap().get(fault).copied().unwrap_or(0)
    }
}

fn answer(
    mut stream: TcpStream,
    hits: &Mutex<HashMap<String, u32>>,
    base: &str,
    flaky_peer: &Mutex<Option<std::net::SocketAddr>>,
) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let Some(head) = common::read_request_head(&mut stream) else {
        return;
    };
    let head = String::from_utf8_lossy(&head).into_owned();
    let fault = head.split('/').nth(1).unwrap_or_default().to_string();
    if head.contains("/announce") {
        *hits.lock().unwrap().entry(fault.clone()).or_default() += 1;
    }
    let ok = |body: &[u8]| {
        let mut r = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        r.extend_from_slice(body);
        r
    };
    let first = hits.lock().unwrap().get(&fault).copied() == Some(1);
    let reply = match fault.as_str() {
        "flaky" if first => {
            let Some(std::net::SocketAddr::V4(peer)) = *flaky_peer.lock().unwrap() else {
                return;
            };
            let mut body = b"d8:intervali15e5:peers6:".to_vec();
            body.extend_from_slice(&peer.ip().octets());
            body.extend_from_slice(&peer.port().to_be_bytes());
            body.push(b'e');
            ok(&body)
        }
        "status500" | "only500" | "flaky" => {
            b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec()
        }
        "garbage" => ok(b"<html>not bencode</html>"),
        "failure" => ok(b"d14:failure reason20:torrent is forbiddene"),
        "redirect" => format!(
            "HTTP/1.1 302 Found\r\nLocation: {base}/redirect/announce\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .into_bytes(),
        "hang" => {
            // A response that never ends: headers, a little body, then silence.
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nd8:inter");
            std::thread::sleep(Duration::from_secs(40));
            return;
        }
        "huge" => {
            let size = 3 << 20;
            let _ = stream
                .write_all(format!("HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n").as_bytes());
            let chunk = vec![b'x'; 64 << 10];
            for _ in 0..size / chunk.len() {
                if stream.write_all(&chunk).is_err() {
                    return;
                }
            }
            return;
        }
        _ => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec(),
    };
    let _ = stream.write_all(&reply);
}

fn torrent(path: &std::path::Path, trackers: Vec<String>) -> Vec<u8> {
    let options = CreateOptions {
        trackers,
        piece_length: Some(16 * 1024),
        ..Default::default()
    };
    create_torrent(path, &options, &CreateProgress::default()).unwrap()
}

#[test]
fn every_tracker_fault_is_a_clear_status_and_later_tiers_still_work() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let config = TrackerConfig::new(Ipv4Addr::LOCALHOST.into(), 0, Access::Open);
    let working = runtime.block_on(RunningTracker::start(config)).unwrap();
    let working_url = working.http_url("127.0.0.1");
    let faulty = FaultyTracker::start();
    let closed_port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();

    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), &[("report.pdf", 150_000)]);
    let file = dir.path().join("report.pdf");
    let (_seed_state, _seeder) =
        start_seeder(&torrent(&file, vec![working_url.clone()]), dir.path(), 0);

    let faults: Vec<(String, &str)> = vec![
        (
            format!("http://127.0.0.1:{closed_port}/announce"),
            "connection failed",
        ),
        (faulty.url("status500"), "tracker answered HTTP 500"),
        (faulty.url("garbage"), "tracker response is invalid"),
        (faulty.url("failure"), "tracker said: torrent is forbidden"),
        (faulty.url("redirect"), "too many redirects"),
        (faulty.url("huge"), "larger than"),
        (faulty.url("hang"), "timed out"),
    ];
    let leechers: Vec<_> = faults
        .iter()
        .map(|(url, _)| {
            let (state, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
            let s = session(state.path(), 0);
            // Seeding once done, so the announces go on and each fault shows in time (a
            // finished torrent that stops cuts a hanging announce short).
            add(
                &s,
                &torrent(&file, vec![url.clone(), working_url.clone()]),
                out.path(),
                true,
            );
            (state, out, s)
        })
        .collect();

    // A torrent whose only tracker fails backs off instead of hammering it.
    let (lonely_state, lonely_out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let lonely = session(lonely_state.path(), 0);
    add(
        &lonely,
        &torrent(&file, vec![faulty.url("only500")]),
        lonely_out.path(),
        false,
    );
    let t = wait_for(&lonely, Duration::from_secs(10), "the first failure", |t| {
        t.trackers
            .first()
            .is_some_and(|tr| tr.last_announce.is_some())
    });
    let next = t
        .next_announce
        .and_then(|n| n.duration_since(SystemTime::now()).ok());
    assert!(
        next.is_some_and(|n| n > Duration::from_secs(20)),
        "backoff: next announce in {next:?}"
    );
    let first_failure = Instant::now();
    assert_eq!(faulty.hits("only500"), 1);
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(
        faulty.hits("only500"),
        1,
        "no retry before the backoff ends"
    );

    for ((url, expected), (_, out, s)) in faults.iter().zip(&leechers) {
        // The `completed` announce goes to every tracker again: wait for both verdicts (a
        // hanging tracker takes the 20 s timeout each time).
        let status = |t: &rivulet::engine::TorrentSnapshot, url: &str| {
            t.trackers
                .iter()
                .find(|tr| tr.url == url)
                .map(|tr| tr.status.to_string())
                .unwrap_or_default()
        };
        wait_for(
            s,
            Duration::from_secs(90),
            "the download past a failing tracker",
            |t| {
                t.state == TorrentState::Seeding
                    && status(t, url).contains(expected)
                    && status(t, &working_url) == "working"
            },
        );
        assert_same_tree(dir.path(), out.path());
    }
    // 35 s after the first failure the 30 s backoff has passed once, and the next (60 s) has
    // not: a constant 30 s backoff would have asked twice more by 65 s, so look again then.
    std::thread::sleep(Duration::from_secs(35).saturating_sub(first_failure.elapsed()));
    assert_eq!(faulty.hits("only500"), 2, "one retry after the backoff");
    std::thread::sleep(Duration::from_secs(65).saturating_sub(first_failure.elapsed()));
    assert_eq!(
        faulty.hits("only500"),
        2,
        "the second wait (60 s) is longer than the first"
    );
}

/// A tracker that answers once and then fails: the peers it gave keep the download going.
#[test]
fn known_peers_keep_working_when_the_tracker_fails_later() {
    let faulty = FaultyTracker::start();
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), &[("lecture.mp4", 1_200_000)]);
    let file = dir.path().join("lecture.mp4");
    // The seeder needs no tracker (the leecher dials it), and it is slow, so the download
    // outlasts the tracker's 15 s interval.
    let (_seed_state, seeder) = start_seeder(
        &torrent(&file, vec![faulty.url("none")]),
        dir.path(),
        48 << 10,
    );
    *faulty.flaky_peer.lock().unwrap() = Some(([127, 0, 0, 1], seeder.listen_port()).into());

    let (state, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let leecher = session(state.path(), 0);
    add(
        &leecher,
        &torrent(&file, vec![faulty.url("flaky")]),
        out.path(),
        false,
    );
    wait_for(&leecher, Duration::from_secs(90), "the download", |t| {
        t.state == TorrentState::Finished
    });
    assert_same_tree(dir.path(), out.path());
    assert!(faulty.hits("flaky") >= 2, "the tracker was asked again");
    // Its last answer (the `completed` announce may still be on its way) is the failure.
    wait_for(
        &leecher,
        Duration::from_secs(10),
        "the tracker's failure",
        |t| t.trackers[0].status == TrackerStatus::Failed(TrackerError::HttpStatus(500)),
    );
}
