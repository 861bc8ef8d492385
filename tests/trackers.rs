//! Trackers end to end on loopback: tiers that fail over (BEP 12), scrape, trackers added and
//! removed, Rivulet's own tracker inside the engine serving a torrent created and seeded in one
//! command.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use common::*;
use rivulet::create::{CreateOptions, CreateProgress, create_torrent};
use rivulet::engine::{
    Command, CreateFailure, CreateTorrent, EngineSettings, Event, SessionHandle, TorrentState,
    TrackerHostState, TrackerSettings, TrackerStatus, TrackersSummary,
};
use rivulet::ids::{InfoHash, PeerId};
use rivulet::metainfo::Metainfo;
use rivulet::tracker::server::{Access, RunningTracker, TrackerConfig};
use rivulet::tracker::{AnnounceEvent, AnnounceRequest, TrackerClient, TrackerError};

const PIECE: u64 = 16 * 1024;

/// Rivulet's tracker on 127.0.0.1, open, with a short interval; the runtime serves it.
fn own_tracker() -> (tokio::runtime::Runtime, RunningTracker) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut config = TrackerConfig::new(Ipv4Addr::LOCALHOST.into(), 0, Access::Open);
    config.limits.interval = Duration::from_secs(2);
    let tracker = runtime.block_on(RunningTracker::start(config)).unwrap();
    (runtime, tracker)
}

/// A port nothing listens on (TCP and UDP): connections and datagrams are refused.
fn dead_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn torrent(path: &std::path::Path, trackers: Vec<String>) -> Vec<u8> {
    let options = CreateOptions {
        trackers,
        piece_length: Some(PIECE),
        ..Default::default()
    };
    create_torrent(path, &options, &CreateProgress::default()).unwrap()
}

/// A `started` announce of a new peer on `port` with `left` bytes to go.
fn started(info_hash: InfoHash, port: u16, left: u64) -> AnnounceRequest {
    AnnounceRequest {
        info_hash,
        peer_id: PeerId::generate(),
        port,
        uploaded: 0,
        downloaded: 0,
        left,
        event: AnnounceEvent::Started,
        numwant: 10,
        key: 1,
        tracker_id: None,
        ipv6: None,
    }
}

/// Waits for an event matching `pick`, skipping others.
fn wait_event<T>(
    session: &mut SessionHandle,
    timeout: Duration,
    mut pick: impl FnMut(Event) -> Option<T>,
) -> T {
    let start = Instant::now();
    while start.elapsed() < timeout {
        while let Some(event) = session.try_event() {
            if let Some(found) = pick(event) {
                return found;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out waiting for an event");
}

#[test]
fn dead_tiers_fall_through_to_a_working_one() {
    let (_rt, tracker) = own_tracker();
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), &[("movie.mkv", 300_000)]);
    let dead_http = format!("http://127.0.0.1:{}/announce", dead_port());
    let dead_udp = format!("udp://127.0.0.1:{}/announce", dead_port());
    let working = tracker.http_url("127.0.0.1");
    let bytes = torrent(
        &dir.path().join("movie.mkv"),
        vec![dead_http.clone(), dead_udp.clone(), working.clone()],
    );
    let (_seed_state, _seeder) = start_seeder(&bytes, dir.path(), 0);

    let (state, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let leecher = session(state.path(), 0);
    add(&leecher, &bytes, out.path(), false);
    let t = wait_for(&leecher, Duration::from_secs(60), "the download", |t| {
        t.state == TorrentState::Finished
    });
    assert_same_tree(dir.path(), out.path());
    let status = |url: &str| {
        let tr = t.trackers.iter().find(|tr| tr.url == url).unwrap();
        (tr.tier, tr.status.clone())
    };
    let (tier, dead) = status(&dead_http);
    assert_eq!(tier, 0);
    let unreachable =
        |s: &TrackerStatus| matches!(s, TrackerStatus::Failed(TrackerError::Unreachable(_)));
    assert!(unreachable(&dead), "{dead}");
    let (tier, dead) = status(&dead_udp);
    assert_eq!(tier, 1);
    assert!(unreachable(&dead), "{dead}");
    let working_status = TrackerStatus::Working { warning: None };
    assert_eq!(status(&working), (2, working_status.clone()));
    assert_eq!(t.tracker_status, TrackersSummary::Tracker(working_status));
}

/// Three UDP trackers that never answer (each would retry for minutes) sit in the tiers
/// ahead of a working one: the first peers still arrive within 5 s.
#[test]
fn silent_trackers_ahead_do_not_delay_the_first_peers() {
    let tracker = TestTracker::start();
    let silent: Vec<std::net::UdpSocket> = (0..3)
        .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    let mut urls: Vec<String> = silent
        .iter()
        .map(|s| format!("udp://{}/announce", s.local_addr().unwrap()))
        .collect();
    urls.push(tracker.url.clone());
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), &[("a.bin", 300_000)]);
    let bytes = torrent(&dir.path().join("a.bin"), urls);
    let (_seed_state, _seeder) = start_seeder(&bytes, dir.path(), 0);
    let (state, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let leecher = session(state.path(), 0);
    let start = Instant::now();
    add(&leecher, &bytes, out.path(), false);
    wait_for(&leecher, Duration::from_secs(5), "the first peer", |t| {
        t.connected_peers + t.connected_seeds > 0 || t.state == TorrentState::Finished
    });
    println!(
        "first peer after {:?} behind three silent UDP trackers",
        start.elapsed()
    );
    wait_for(&leecher, Duration::from_secs(30), "the download", |t| {
        t.state == TorrentState::Finished
    });
}

/// Pausing while an announce to a silent tracker is in flight takes effect at once, the
/// tracker that answered hears `stopped`, and the `stopped` comes before the next `started`.
#[test]
fn pause_cancels_a_round_in_flight_and_stopped_precedes_the_next_started() {
    let tracker = TestTracker::start();
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let urls = vec![
        format!("udp://{}/announce", silent.local_addr().unwrap()),
        tracker.url.clone(),
    ];
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), &[("a.bin", 100_000)]);
    let bytes = torrent(&dir.path().join("a.bin"), urls);
    let (state, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let s = session(state.path(), 0);
    add(&s, &bytes, out.path(), false);
    let port = s.listen_port();
    let id = wait_for(&s, Duration::from_secs(10), "the torrent", |_| true).id;
    for round in 0..3 {
        let deadline = Instant::now() + Duration::from_secs(10);
        while tracker.events(port).len() < 2 * round + 1 {
            assert!(
                Instant::now() < deadline,
                "announces: {:?}",
                tracker.events(port)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        s.send(Command::Pause(id));
        let paused = Instant::now();
        wait_for(&s, Duration::from_secs(2), "the pause", |t| {
            t.state == TorrentState::Paused
        });
        assert!(paused.elapsed() < Duration::from_secs(2));
        s.send(Command::Resume(id));
        wait_for(&s, Duration::from_secs(5), "the resume", |t| {
            t.state != TorrentState::Paused
        });
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while tracker.events(port).len() < 7 {
        assert!(
            Instant::now() < deadline,
            "announces: {:?}",
            tracker.events(port)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        tracker.events(port),
        [
            "started", "stopped", "started", "stopped", "started", "stopped", "started"
        ],
        "every stopped arrives before the next started"
    );
}

/// The totals sent to a tracker count from this session's `started`, as libtorrent and
/// Transmission send them: after a pause and a resume, `started` says 0 downloaded, though the
/// torrent downloaded the whole file before.
#[test]
fn announced_totals_count_from_started() {
    let tracker = TestTracker::start();
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), &[("a.bin", 300_000)]);
    let bytes = torrent(&dir.path().join("a.bin"), vec![tracker.url.clone()]);
    let (_seed_state, _seeder) = start_seeder(&bytes, dir.path(), 0);
    let (state, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let s = session(state.path(), 0);
    add(&s, &bytes, out.path(), true);
    let id = wait_for(&s, Duration::from_secs(30), "the download", |t| {
        t.state == TorrentState::Seeding
    })
    .id;
    let port = s.listen_port();
    let announces = |event: &str| -> Vec<(u64, u64)> {
        tracker
            .log
            .lock()
            .unwrap()
            .iter()
            .filter(|a| a.port == port && a.event.as_deref() == Some(event))
            .map(|a| (a.downloaded, a.uploaded))
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while announces("completed").is_empty() {
        assert!(Instant::now() < deadline, "no completed announce");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        announces("completed")[0].0 >= 300_000,
        "{:?}",
        announces("completed")
    );
    s.send(Command::Pause(id));
    wait_for(&s, Duration::from_secs(5), "the pause", |t| {
        t.state == TorrentState::Paused
    });
    s.send(Command::Resume(id));
    let deadline = Instant::now() + Duration::from_secs(10);
    while announces("started").len() < 2 {
        assert!(Instant::now() < deadline, "no second started");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        announces("stopped")[0].0 >= 300_000,
        "{:?}",
        announces("stopped")
    );
    assert_eq!(announces("started")[1], (0, 0), "a new session's totals");
}

#[test]
fn every_tier_failing_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), &[("a.bin", 50_000)]);
    let bytes = torrent(
        &dir.path().join("a.bin"),
        vec![
            format!("http://127.0.0.1:{}/announce", dead_port()),
            format!("udp://127.0.0.1:{}/announce", dead_port()),
        ],
    );
    let (state, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let s = session(state.path(), 0);
    add(&s, &bytes, out.path(), false);
    let t = wait_for(&s, Duration::from_secs(20), "both trackers to fail", |t| {
        !t.trackers.is_empty() && t.trackers.iter().all(|tr| tr.last_announce.is_some())
    });
    assert!(
        matches!(t.tracker_status, TrackersSummary::NoneWorks(_)),
        "{}",
        t.tracker_status
    );
}

#[test]
fn scrape_shows_the_swarm_of_a_paused_torrent() {
    let (_rt, tracker) = own_tracker();
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), &[("set/a.bin", 70_000), ("set/b.bin", 1_000)]);
    let bytes = torrent(&dir.path().join("set"), vec![tracker.http_url("127.0.0.1")]);
    let (_seed_state, _seeder) = start_seeder(&bytes, dir.path(), 0);
    let id = Metainfo::from_bytes(&bytes).unwrap().info_hash;
    let start = Instant::now();
    while tracker.swarms().scrape(&[id])[0].1.complete == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the seeder never announced"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    let (state, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let s = session(state.path(), 0);
    s.send(Command::Add(rivulet::engine::AddTorrent {
        source: rivulet::engine::AddSource::Bytes(bytes.clone()),
        save_dir: out.path().to_path_buf(),
        paused: true,
        seed: false,
        plan: Default::default(),
    }));
    let t = wait_for(&s, Duration::from_secs(10), "a scrape", |t| {
        t.swarm_seeders == Some(1)
    });
    assert_eq!(t.state, TorrentState::Paused);
    assert_eq!(t.connected_peers + t.connected_seeds, 0);
    assert_eq!(t.trackers[0].seeders, Some(1));
    assert_eq!(t.trackers[0].leechers, Some(0));
    assert_eq!(t.trackers[0].completed, Some(0));
    assert_eq!(
        t.trackers[0].status,
        TrackerStatus::NotContacted,
        "a paused torrent does not announce"
    );
}

#[test]
fn trackers_added_and_removed_are_used_and_kept() {
    let (_rt, tracker) = own_tracker();
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), &[("doc.pdf", 120_000)]);
    let url = tracker.http_url("127.0.0.1");
    let with_tracker = torrent(&dir.path().join("doc.pdf"), vec![url.clone()]);
    let (_seed_state, _seeder) = start_seeder(&with_tracker, dir.path(), 0);

    // The same info dictionary without trackers: the same torrent, but no way to find peers.
    let bare = torrent(&dir.path().join("doc.pdf"), Vec::new());
    let id = Metainfo::from_bytes(&bare).unwrap().info_hash;
    assert_eq!(id, Metainfo::from_bytes(&with_tracker).unwrap().info_hash);
    let (state, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let leecher = session_with_state(state.path(), false);
    add(&leecher, &bare, out.path(), true);
    let t = wait_for(&leecher, Duration::from_secs(10), "the torrent", |t| {
        t.state == TorrentState::Downloading
    });
    assert_eq!(t.tracker_status, TrackersSummary::NoTrackers);

    leecher.send(Command::AddTracker(id, url.clone()));
    leecher.send(Command::AddTracker(id, "not a tracker".into()));
    let t = wait_for(&leecher, Duration::from_secs(60), "the download", |t| {
        t.state == TorrentState::Seeding
    });
    assert_same_tree(dir.path(), out.path());
    assert_eq!(t.trackers.len(), 1, "invalid URLs are refused");
    assert_eq!(t.trackers[0].url, url);

    let other = format!("udp://127.0.0.1:{}/announce", dead_port());
    leecher.send(Command::AddTracker(id, other.clone()));
    leecher.send(Command::RemoveTracker(id, url.clone()));
    wait_for(&leecher, Duration::from_secs(10), "the edit", |t| {
        t.trackers.len() == 1 && t.trackers[0].url == other
    });
    leecher.shutdown();

    let again = session_with_state(state.path(), true);
    let t = wait_for(
        &again,
        Duration::from_secs(10),
        "the restored torrent",
        |t| t.state == TorrentState::Seeding,
    );
    let urls: Vec<_> = t.trackers.iter().map(|t| t.url.as_str()).collect();
    assert_eq!(urls, vec![other.as_str()], "edits survive a restart");
}

/// The one-drop path: the engine runs Rivulet's tracker, creates a torrent announcing to it,
/// seeds it at once, and a second peer downloads it. The tracker serves only loaded torrents.
#[test]
fn created_torrent_is_seeded_through_the_engines_tracker() {
    let state = tempfile::tempdir().unwrap();
    let mut host = session_with_state(state.path(), false);
    host.send(Command::ApplySettings(EngineSettings {
        tracker: Some(TrackerSettings {
            port: 0,
            open: false,
        }),
        ..engine_settings(
            host.listen_port(),
            rivulet::net::Binding::Address(std::net::Ipv4Addr::LOCALHOST.into()),
        )
    }));
    let start = Instant::now();
    let port = loop {
        if let TrackerHostState::Running { port, .. } = host.snapshot().tracker {
            break port;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the tracker did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let url = format!("http://127.0.0.1:{port}/announce");

    let data = tempfile::tempdir().unwrap();
    write_files(
        data.path(),
        &[("share/notes.txt", 5_000), ("share/pics/p.png", 90_000)],
    );
    let output = data.path().join("share.torrent");
    host.send(Command::CreateTorrent(CreateTorrent {
        job: 1,
        source: data.path().join("share"),
        output: output.clone(),
        options: CreateOptions {
            trackers: vec![url.clone()],
            piece_length: Some(PIECE),
            ..Default::default()
        },
        seed: true,
    }));
    let created = wait_event(&mut host, Duration::from_secs(20), |e| match e {
        Event::Created { job: 1, path } => Some(path),
        Event::CreateFailed { error, .. } => panic!("creation failed: {error}"),
        _ => None,
    });
    assert_eq!(created, output);
    wait_for(&host, Duration::from_secs(20), "seeding", |t| {
        t.state == TorrentState::Seeding
    });

    let bytes = std::fs::read(&output).unwrap();
    let (lstate, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let leecher = session(lstate.path(), 0);
    add(&leecher, &bytes, out.path(), false);
    wait_for(&leecher, Duration::from_secs(60), "the download", |t| {
        t.state == TorrentState::Finished
    });
    assert_same_tree(&data.path().join("share"), &out.path().join("share"));

    // Not an open tracker: a torrent Rivulet has not loaded is refused.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let request = started(InfoHash([7; 20]), 1000, 1);
    let refused = runtime.block_on(TrackerClient::new().unwrap().announce(&url, &request));
    assert!(
        matches!(&refused, Err(TrackerError::Failure(m)) if m == "torrent not tracked here"),
        "{refused:?}"
    );
}

#[test]
fn creation_can_be_cancelled() {
    let state = tempfile::tempdir().unwrap();
    let mut host = session_with_state(state.path(), false);
    let data = tempfile::tempdir().unwrap();
    let big = data.path().join("big.img");
    // 8 GiB of holes: listing is instant, hashing would take minutes.
    std::fs::File::create(&big)
        .unwrap()
        .set_len(8 << 30)
        .unwrap();
    host.send(Command::CreateTorrent(CreateTorrent {
        job: 5,
        source: big,
        output: data.path().join("big.torrent"),
        options: CreateOptions::default(),
        seed: true,
    }));
    let start = Instant::now();
    while host.snapshot().creating.iter().all(|c| c.hashed == 0) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "hashing never started"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let creating = host.snapshot().creating.clone();
    assert_eq!((creating[0].job, creating[0].total), (5, 8 << 30));
    host.send(Command::CancelCreate(5));
    let error = wait_event(&mut host, Duration::from_secs(20), |e| match e {
        Event::CreateFailed { job: 5, error } => Some(error),
        Event::Created { .. } => panic!("created despite the cancel"),
        _ => None,
    });
    assert_eq!(error, CreateFailure::Cancelled);
    assert!(!data.path().join("big.torrent").exists());
    assert!(host.snapshot().torrents.is_empty());
}

/// `rivulet tracker` under load: 10,000 HTTP announces over keep-alive connections plus 2,000
/// over UDP, from 1,000 torrents of 10 peers, all answered without a failure.
#[test]
fn tracker_serves_ten_thousand_announces() {
    use std::io::{BufRead, BufReader, Read, Write};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_rivulet"))
        .args(["tracker", "--open", "--port", "0", "--bind", "127.0.0.1"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr: SocketAddr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));

    let hex = |b: &[u8]| b.iter().map(|x| format!("%{x:02x}")).collect::<String>();
    // 1,000 swarms; announce `n` goes to swarm n % 1000 from port 1024 + n / 1000, so each
    // swarm gets 10 distinct HTTP peers (5 seeds, 5 leechers) and 2 UDP ones (seeds).
    let swarm_hash = |k: u32| {
        let mut h = [7u8; 20];
        h[..4].copy_from_slice(&k.to_be_bytes());
        h
    };
    let peers_returned = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let started = Instant::now();
    let http_threads: Vec<_> = (0..8u32)
        .map(|thread| {
            let peers_returned = peers_returned.clone();
            std::thread::spawn(move || {
                let mut stream = std::net::TcpStream::connect(addr).unwrap();
                stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                for i in 0..1250u32 {
                    let n = thread * 1250 + i;
                    let info_hash = swarm_hash(n % 1000);
                    let peer_id = [b'p'; 16].iter().copied().chain(n.to_be_bytes()).collect::<Vec<u8>>();
                    let request = format!(
                        "GET /announce?info_hash={}&peer_id={}&port={}&uploaded=0&downloaded=0&left={}&compact=1 HTTP/1.1\r\nHost: x\r\n\r\n",
                        hex(&info_hash),
                        hex(&peer_id),
                        1024 + n / 1000,
                        (n / 1000) % 2
                    );
                    stream.write_all(request.as_bytes()).unwrap();
                    let mut length = 0;
                    loop {
                        let mut header = String::new();
                        reader.read_line(&mut header).unwrap();
                        if header == "\r\n" {
                            break;
                        }
                        if let Some(v) = header.strip_prefix("Content-Length: ") {
                            length = v.trim().parse().unwrap();
                        }
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).unwrap();
                    let value = rivulet::bencode::decode(&body).unwrap();
                    assert!(value.get("failure reason").is_none(), "{value:?}");
                    assert!(value.get("interval").is_some());
                    let peers = value.get("peers").and_then(|p| p.as_bytes()).unwrap();
                    assert!(peers.len().is_multiple_of(6) && peers.len() / 6 < 12, "{value:?}");
                    peers_returned.fetch_add(peers.len() as u64 / 6, std::sync::atomic::Ordering::Relaxed);
                }
            })
        })
        .collect();
    let udp = std::thread::spawn(move || {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        socket.connect(addr).unwrap();
        let mut buf = [0u8; 2048];
        let mut connect = 0x41727101980u64.to_be_bytes().to_vec();
        connect.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 9]);
        socket.send(&connect).unwrap();
        let n = socket.recv(&mut buf).unwrap();
        assert_eq!(n, 16);
        let connection_id = buf[8..16].to_vec();
        for i in 0..2000u32 {
            let mut p = connection_id.clone();
            p.extend_from_slice(&1u32.to_be_bytes());
            p.extend_from_slice(&i.to_be_bytes());
            p.extend_from_slice(&swarm_hash(i % 1000));
            p.extend_from_slice(&[b'u'; 16]);
            p.extend_from_slice(&i.to_be_bytes());
            p.extend_from_slice(&[0; 24]); // downloaded, left (a seed), uploaded
            p.extend_from_slice(&2u32.to_be_bytes()); // started
            p.extend_from_slice(&[0; 8]); // ip, key
            p.extend_from_slice(&(-1i32).to_be_bytes());
            p.extend_from_slice(&(3000 + (i / 1000) as u16).to_be_bytes());
            socket.send(&p).unwrap();
            let n = socket.recv(&mut buf).unwrap();
            assert!(n >= 20, "short reply");
            assert_eq!(
                &buf[0..8],
                &[&1u32.to_be_bytes()[..], &i.to_be_bytes()[..]].concat()[..]
            );
        }
    });
    for t in http_threads {
        t.join().unwrap();
    }
    udp.join().unwrap();
    let elapsed = started.elapsed();
    // Every swarm holds its 12 distinct peers: a new leecher is given all of them, and the
    // scrape counts them.
    for k in [0u32, 1, 2, 499, 998, 999] {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let request = format!(
            "GET /announce?info_hash={}&peer_id=-XX0001-newcomer0000&port=9999&uploaded=0&downloaded=0&left=5&compact=1&numwant=50 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            hex(&swarm_hash(k))
        );
        stream.write_all(request.as_bytes()).unwrap();
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response);
        let at = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let value = rivulet::bencode::decode(&response[at..]).unwrap();
        let peers = value.get("peers").and_then(|p| p.as_bytes()).unwrap();
        assert_eq!(peers.len() / 6, 12, "swarm {k}: {value:?}");
        assert_eq!(
            value.get("complete").and_then(|v| v.as_int()),
            Some(7),
            "swarm {k}"
        );
        assert_eq!(
            value.get("incomplete").and_then(|v| v.as_int()),
            Some(6),
            "swarm {k}"
        );
    }
    let returned = peers_returned.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        returned > 10_000,
        "HTTP replies listed only {returned} peers in all"
    );
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
    let peak = status
        .lines()
        .find(|l| l.starts_with("VmHWM"))
        .unwrap_or("VmHWM: unknown")
        .to_string();
    println!(
        "tracker load: 12000 announces to 1000 swarms of 12 peers in {:.2} s ({:.0}/s), \
         {returned} peers listed in HTTP replies, tracker peak memory {}",
        elapsed.as_secs_f64(),
        12000.0 / elapsed.as_secs_f64(),
        peak.trim_start_matches("VmHWM:").trim()
    );
    let _ = child.kill();
    let _ = child.wait();
    assert!(elapsed < Duration::from_secs(60));
}

/// BEP 15 over a lossy path: a relay in front of Rivulet's tracker drops the first two
/// datagrams and delivers the first reply only after the client's timeout. The client (with
/// the 15 s base shortened to 100 ms) retransmits on the 15·2ⁿ schedule, ignores the late
/// reply, and gets its answer.
#[test]
fn udp_announces_survive_lost_and_late_datagrams() {
    use rivulet::tracker::UdpTracker;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    use tokio::net::UdpSocket;

    let (runtime, tracker) = own_tracker();
    let server = tracker.addr();
    let sent = Arc::new(AtomicU32::new(0));
    let (reply, elapsed) = runtime.block_on(async {
        let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let back = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let front_addr = front.local_addr().unwrap();
        let counter = sent.clone();
        let relay = tokio::spawn(async move {
            let (mut client, mut replies) = (None, 0u32);
            let (mut buf, mut back_buf) = (vec![0u8; 2048], vec![0u8; 2048]);
            loop {
                tokio::select! {
                    Ok((n, from)) = front.recv_from(&mut buf) => {
                        client = Some(from);
                        if counter.fetch_add(1, Ordering::Relaxed) >= 2 {
                            back.send_to(&buf[..n], server).await.unwrap();
                        }
                    }
                    Ok(n) = back.recv(&mut back_buf) => {
                        replies += 1;
                        let (front, datagram, to) = (front.clone(), back_buf[..n].to_vec(), client.unwrap());
                        let delay = if replies == 1 { 500 } else { 0 };
                        tokio::spawn(async move {
                            tokio::time::sleep(Duration::from_millis(delay)).await;
                            let _ = front.send_to(&datagram, to).await;
                        });
                    }
                }
            }
        });
        let client = UdpTracker::with_base_timeout(Duration::from_millis(100));
        let request = started(InfoHash([3; 20]), 4242, 0);
        let start = Instant::now();
        let url = format!("udp://{front_addr}/announce");
        let reply = client.announce(&url, &request).await;
        let elapsed = start.elapsed();
        relay.abort();
        (reply, elapsed)
    });
    let reply = reply.unwrap();
    assert_eq!(reply.complete, Some(1), "the tracker counted the announce");
    // Connect: lost at 0 ms and 100 ms, answered late after 300 ms, resent at 700 ms and
    // answered; then one announce.
    assert_eq!(sent.load(std::sync::atomic::Ordering::Relaxed), 5);
    assert!(
        elapsed >= Duration::from_millis(700) && elapsed < Duration::from_millis(1500),
        "{elapsed:?}"
    );
}
