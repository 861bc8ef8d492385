//! The swarm doctor on loopback: each finding appears when its situation is created, with the
//! right evidence, and goes when the cause does; a healthy download and its seeding show no
//! warning.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::slow_disk::SlowDisk;
use common::*;
use rivulet::engine::{
    Command, DoctorSettings, Finding, FindingKind, QueueSettings, SessionHandle, Severity,
    TorrentSnapshot, TorrentState,
};
use rivulet::ids::InfoHash;
use rivulet::metainfo::Metainfo;

const PIECE: u64 = 64 * 1024;

/// The doctor as the tests want it: a cause shows after one second.
fn quick() -> DoctorSettings {
    DoctorSettings {
        settle: Duration::from_secs(1),
        ..DoctorSettings::default()
    }
}

fn doctor_session(state: &Path, doctor: DoctorSettings) -> SessionHandle {
    session_configured(state, |config| config.doctor = doctor)
}

fn find(t: &TorrentSnapshot, kind: FindingKind) -> Option<&Finding> {
    t.findings.iter().find(|f| f.kind == kind)
}

/// Waits for the finding `kind` on torrent `id`, and returns it.
fn wait_for_finding(session: &SessionHandle, id: InfoHash, kind: FindingKind) -> Finding {
    let t = wait_for_id(
        session,
        id,
        Duration::from_secs(30),
        &format!("the finding {kind:?}"),
        |t| find(t, kind).is_some(),
    );
    find(&t, kind).cloned().unwrap()
}

fn wait_until_gone(
    session: &SessionHandle,
    id: InfoHash,
    kind: FindingKind,
) -> Arc<TorrentSnapshot> {
    wait_for_id(
        session,
        id,
        Duration::from_secs(30),
        &format!("the finding {kind:?} to go"),
        |t| find(t, kind).is_none(),
    )
}

/// A torrent of one file of `len` bytes under a fresh folder, announcing to `tracker`.
fn one_file(len: usize, tracker: &str) -> (tempfile::TempDir, Vec<u8>, InfoHash) {
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), &[("film.bin", len)]);
    let torrent = torrent_for(&dir.path().join("film.bin"), PIECE, tracker);
    let id = Metainfo::from_bytes(&torrent).unwrap().info_hash;
    (dir, torrent, id)
}

/// A tracker URL where nothing listens.
fn dead_tracker() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}/announce")
}

fn listen_addr(session: &SessionHandle) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], session.snapshot().listen_port))
}

#[test]
fn a_dead_tracker_means_no_peers_until_one_is_added() {
    let tracker = dead_tracker();
    let (seed_dir, torrent, id) = one_file(256 * 1024, &tracker);
    let state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let leecher = doctor_session(state.path(), quick());
    add(&leecher, &torrent, out.path(), false);

    let found = wait_for_finding(&leecher, id, FindingKind::NoPeers);
    assert_eq!(found.severity, Severity::Error);
    assert_eq!(found.message, "No peers known: its only tracker failed");
    assert!(
        found
            .evidence
            .iter()
            .any(|e| e.contains(&tracker) && e.contains("tracker unreachable")),
        "{:?}",
        found.evidence
    );

    let (_seeder_state, seeder) = start_seeder(&torrent, seed_dir.path(), 0);
    leecher.send(Command::AddPeers(id, vec![listen_addr(&seeder)]));
    let t = wait_until_gone(&leecher, id, FindingKind::NoPeers);
    assert!(!t.peers.is_empty() || t.progress == 1.0, "{t:?}");
}

#[test]
fn a_magnet_link_with_no_one_to_ask_says_so() {
    let tracker = dead_tracker();
    let (_dir, _torrent, id) = one_file(64 * 1024, &tracker);
    let state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let session = doctor_session(state.path(), quick());
    session.send(Command::AddMagnet(rivulet::engine::AddMagnet {
        uri: format!("magnet:?xt=urn:btih:{}&tr={tracker}", id.to_hex()),
        save_dir: out.path().to_path_buf(),
        paused: false,
        seed: false,
        confirm: false,
    }));
    let found = wait_for_finding(&session, id, FindingKind::NoPeers);
    let t = session.snapshot();
    assert_eq!(t.torrents[0].state, TorrentState::FetchingMetadata);
    assert_eq!(found.message, "No peers known: its only tracker failed");
}

#[test]
fn a_tracker_that_refuses_the_torrent_is_quoted_until_it_is_removed() {
    let tracker = refusing_tracker("unregistered torrent");
    let (_dir, torrent, id) = one_file(64 * 1024, &tracker);
    let state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let leecher = doctor_session(state.path(), quick());
    add(&leecher, &torrent, out.path(), false);

    let found = wait_for_finding(&leecher, id, FindingKind::TrackerRefused);
    assert_eq!(found.message, "The only tracker says: unregistered torrent");
    assert_eq!(
        found.evidence,
        vec![format!("{tracker} says: unregistered torrent")]
    );
    leecher.send(Command::RemoveTracker(id, tracker));
    wait_until_gone(&leecher, id, FindingKind::TrackerRefused);
}

#[test]
fn a_seeder_that_leaves_at_88_percent_leaves_pieces_nobody_has() {
    let tracker = TestTracker::start();
    let (seed_dir, torrent, id) = one_file(4 << 20, &tracker.url);
    let (seeder_state, seeder) = start_seeder(&torrent, seed_dir.path(), 1 << 20);
    let state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let leecher = doctor_session(state.path(), quick());
    add(&leecher, &torrent, out.path(), false);
    wait_for_id(&leecher, id, Duration::from_secs(30), "88%", |t| {
        t.progress >= 0.88
    });
    seeder.shutdown();
    drop(seeder_state);

    // Once the seeder is gone (the finding may have come earlier only if the map is wrong).
    let t = wait_for_id(
        &leecher,
        id,
        Duration::from_secs(30),
        "the seeder gone and the gap found",
        |t| t.peers.is_empty() && find(t, FindingKind::PiecesUnavailable).is_some(),
    );
    let found = find(&t, FindingKind::PiecesUnavailable).cloned().unwrap();
    assert!(t.progress < 1.0, "{t:?}");
    assert_eq!(found.severity, Severity::Error);
    // The message names the missing pieces: the first one is the first piece not verified.
    let first_missing = (0..t.piece_count).find(|&i| !t.pieces.get(i)).unwrap();
    assert!(
        found.message.starts_with("No one has piece"),
        "{}",
        found.message
    );
    assert!(
        found.message.contains(&format!(" {first_missing}")),
        "piece {first_missing} missing: {}",
        found.message
    );
    assert!(
        found.message.contains("no seed has been seen for"),
        "{}",
        found.message
    );
    let missing = t.piece_count - t.pieces.count_ones();
    assert!(
        found.evidence[0].starts_with(&format!("{missing} piece")),
        "{missing} missing: {:?}",
        found.evidence
    );

    // A seeder comes back: the pieces are there again, and the download finishes.
    let (_back_state, back) = start_seeder(&torrent, seed_dir.path(), 0);
    leecher.send(Command::AddPeers(id, vec![listen_addr(&back)]));
    wait_for_id(&leecher, id, Duration::from_secs(30), "completion", |t| {
        t.progress == 1.0 && find(t, FindingKind::PiecesUnavailable).is_none()
    });
}

/// A peer that has every piece and never unchokes, until `unchoke` is raised.
fn stingy_peer(info_hash: InfoHash, pieces: u32, unchoke: Arc<AtomicBool>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let Ok((mut stream, _)) = listener.accept() else {
            return;
        };
        let mut theirs = [0u8; 68];
        if stream.read_exact(&mut theirs).is_err() {
            return;
        }
        let mut hello = handshake(&info_hash.0, b"-XX0001-stingystingy");
        let bytes = pieces.div_ceil(8) as usize;
        let mut bitfield = vec![0xffu8; bytes];
        if let Some(last) = bitfield.last_mut() {
            *last = 0xff << (bytes as u32 * 8 - pieces);
        }
        hello.extend_from_slice(&(1 + bytes as u32).to_be_bytes());
        hello.push(5);
        hello.extend_from_slice(&bitfield);
        stream.write_all(&hello).unwrap();
        let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
        let mut sink = [0u8; 4096];
        let mut unchoked = false;
        loop {
            match stream.read(&mut sink) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => return,
            }
            if !unchoked && unchoke.load(Ordering::Relaxed) {
                unchoked = true;
                if stream.write_all(&[0, 0, 0, 1, 1]).is_err() {
                    return;
                }
            }
        }
    });
    addr
}

#[test]
fn a_peer_that_never_unchokes_is_named_until_it_does() {
    let (_dir, torrent, id) = one_file(1 << 20, &dead_tracker());
    let meta = Metainfo::from_bytes(&torrent).unwrap();
    let unchoke = Arc::new(AtomicBool::new(false));
    let stingy = stingy_peer(id, meta.piece_count(), unchoke.clone());
    let state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let leecher = doctor_session(state.path(), quick());
    add(&leecher, &torrent, out.path(), false);
    leecher.send(Command::AddPeers(id, vec![stingy]));

    let found = wait_for_finding(&leecher, id, FindingKind::AllChoking);
    assert_eq!(found.severity, Severity::Warning);
    assert_eq!(found.message, "Connected to 1 peer, all choking us");
    assert!(
        found
            .evidence
            .iter()
            .any(|e| e.contains(&stingy.to_string()) && e.contains("choking you")),
        "{:?}",
        found.evidence
    );
    unchoke.store(true, Ordering::Relaxed);
    wait_until_gone(&leecher, id, FindingKind::AllChoking);
}

#[test]
fn our_own_download_limit_is_named_until_it_is_lifted() {
    let tracker = TestTracker::start();
    let (seed_dir, torrent, id) = one_file(8 << 20, &tracker.url);
    let (_seeder_state, _seeder) = start_seeder(&torrent, seed_dir.path(), 1 << 20);
    let state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let leecher = doctor_session(state.path(), quick());
    add(&leecher, &torrent, out.path(), false);
    leecher.send(Command::SetSpeedLimits {
        id,
        down: 128 * 1024,
        up: 0,
    });

    let found = wait_for_finding(&leecher, id, FindingKind::DownloadLimit);
    assert_eq!(found.severity, Severity::Info);
    assert_eq!(
        found.message,
        "Limited by your own download limit (128.0 KiB/s)"
    );
    assert!(
        found
            .evidence
            .contains(&"The torrent's own limit (General tab)".to_string())
    );
    leecher.send(Command::SetSpeedLimits { id, down: 0, up: 0 });
    let t = wait_until_gone(&leecher, id, FindingKind::DownloadLimit);
    assert_eq!(
        t.state,
        TorrentState::Downloading,
        "the finding went with the limit, not with the download"
    );
}

#[test]
fn slow_peers_are_named_until_they_speed_up() {
    let tracker = TestTracker::start();
    let (seed_dir, torrent, id) = one_file(2 << 20, &tracker.url);
    let (_seeder_state, seeder) = start_seeder(&torrent, seed_dir.path(), 24 * 1024);
    let state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let leecher = doctor_session(state.path(), quick());
    add(&leecher, &torrent, out.path(), false);

    let found = wait_for_finding(&leecher, id, FindingKind::SlowPeers);
    assert_eq!(found.severity, Severity::Info);
    assert!(
        found.message.starts_with("Peers are slow: the best gives "),
        "{}",
        found.message
    );
    let seeder_port = seeder.snapshot().listen_port;
    seeder.send(Command::ApplySettings(engine_settings(
        seeder_port,
        rivulet::net::Binding::Address([127, 0, 0, 1].into()),
    )));
    wait_until_gone(&leecher, id, FindingKind::SlowPeers);
}

#[test]
fn no_incoming_connection_says_the_port_may_be_closed_until_one_comes() {
    let (seed_dir, torrent, id) = one_file(256 * 1024, &dead_tracker());
    let state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let leecher = doctor_session(
        state.path(),
        DoctorSettings {
            inbound_silence: Duration::from_secs(2),
            ..quick()
        },
    );
    add(&leecher, &torrent, out.path(), false);

    let found = wait_for_finding(&leecher, id, FindingKind::NoInbound);
    let port = leecher.snapshot().listen_port;
    assert_eq!(found.severity, Severity::Warning);
    assert_eq!(
        found.message,
        format!(
            "Nobody can connect to you: no incoming connection in 2s; your port {port} may be closed"
        )
    );
    assert!(
        found
            .evidence
            .contains(&"No incoming connection since Rivulet started".to_string())
    );
    assert!(found.evidence.contains(&"Port mapping: off".to_string()));

    // A seeder dials in: an incoming connection (slow, so the finding goes while the
    // download is still under way, not because it ended).
    let (_seeder_state, seeder) = start_seeder(&torrent, seed_dir.path(), 16 * 1024);
    seeder.send(Command::AddPeers(id, vec![listen_addr(&leecher)]));
    let t = wait_until_gone(&leecher, id, FindingKind::NoInbound);
    assert_eq!(t.state, TorrentState::Downloading, "{t:?}");
}

#[test]
fn seeding_to_nobody_is_said_until_a_leecher_comes() {
    let tracker = TestTracker::start();
    let (seed_dir, torrent, id) = one_file(2 << 20, &tracker.url);
    let seeder_state = tempfile::tempdir().unwrap();
    let seeder = doctor_session(seeder_state.path(), quick());
    add(&seeder, &torrent, seed_dir.path(), true);

    let found = wait_for_finding(&seeder, id, FindingKind::NoLeechers);
    assert_eq!(found.severity, Severity::Info);
    assert_eq!(found.message, "Seeding, but no one is downloading");
    assert!(
        found
            .evidence
            .contains(&"Connected to 0 peers, none downloading".to_string())
    );

    let state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let leecher = session(state.path(), 0);
    add(&leecher, &torrent, out.path(), false);
    leecher.send(Command::SetSpeedLimits {
        id,
        down: 256 * 1024,
        up: 0,
    });
    let t = wait_until_gone(&seeder, id, FindingKind::NoLeechers);
    assert!(!t.peers.is_empty(), "{t:?}");
}

#[test]
fn a_queued_torrent_says_so_until_it_gets_a_slot() {
    let state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let session = session_configured(state.path(), |config| {
        config.doctor = quick();
        config.queue = QueueSettings {
            enabled: true,
            max_downloads: 1,
            max_seeds: 1,
        };
    });
    let (_a_dir, first, first_id) = one_file(64 * 1024, &dead_tracker());
    let (_b_dir, second, second_id) = one_file(96 * 1024, &dead_tracker());
    add(&session, &first, out.path(), false);
    wait_for_id(
        &session,
        first_id,
        Duration::from_secs(20),
        "the first to run",
        |t| t.state == TorrentState::Downloading,
    );
    add(&session, &second, out.path(), false);

    let found = wait_for_finding(&session, second_id, FindingKind::Queued);
    assert_eq!(found.severity, Severity::Info);
    assert!(
        found.message.starts_with("Paused by the queue"),
        "{}",
        found.message
    );
    session.send(Command::Pause(first_id));
    let t = wait_until_gone(&session, second_id, FindingKind::Queued);
    assert_ne!(t.state, TorrentState::Queued);
}

#[test]
fn a_torrent_added_paused_waits_for_its_recheck_until_resumed() {
    let tracker = TestTracker::start();
    let (seed_dir, torrent, id) = one_file(256 * 1024, &tracker.url);
    let state = tempfile::tempdir().unwrap();
    let session = doctor_session(state.path(), quick());
    session.send(Command::Add(rivulet::engine::AddTorrent {
        source: rivulet::engine::AddSource::Bytes(torrent.clone()),
        save_dir: seed_dir.path().to_path_buf(),
        paused: true,
        seed: true,
        plan: Default::default(),
    }));
    let found = wait_for_finding(&session, id, FindingKind::WaitingForCheck);
    assert_eq!(found.severity, Severity::Info);
    assert_eq!(
        found.message,
        "Waiting for a recheck: what is on disk is checked when it is resumed"
    );
    session.send(Command::Resume(id));
    let t = wait_until_gone(&session, id, FindingKind::WaitingForCheck);
    assert!(!t.paused, "{t:?}");
    wait_for_id(
        &session,
        id,
        Duration::from_secs(20),
        "the data checked",
        |t| t.state == TorrentState::Seeding,
    );
}

#[test]
fn a_slow_disk_is_named_until_it_speeds_up() {
    const NAME: &str = "a_slow_disk_is_named_until_it_speeds_up";
    // Each 64 KiB piece takes 250 ms to write: 256 KiB/s, an eighth of what the seeder sends.
    let Some(disk) = SlowDisk::mount(Duration::from_millis(250), NAME) else {
        return;
    };
    let tracker = TestTracker::start();
    let (seed_dir, torrent, id) = one_file(8 << 20, &tracker.url);
    let (_seeder_state, _seeder) = start_seeder(&torrent, seed_dir.path(), 2 << 20);
    let state = tempfile::tempdir().unwrap();
    let leecher = session_configured(state.path(), |config| {
        config.doctor = DoctorSettings {
            disk_wait: Duration::from_millis(100),
            ..quick()
        };
        // Eight pieces fill the write queue, so the wait shows within seconds.
        config.disk_write_budget = 8 * PIECE;
    });
    add(&leecher, &torrent, disk.path(), false);

    let found = wait_for_finding(&leecher, id, FindingKind::DiskBound);
    assert_eq!(found.severity, Severity::Warning);
    let waited: u64 = found
        .message
        .strip_prefix("Limited by the disk: writes wait ")
        .and_then(|rest| rest.strip_suffix(" ms"))
        .and_then(|ms| ms.parse().ok())
        .unwrap_or_else(|| panic!("{}", found.message));
    assert!(
        (100..=2000).contains(&waited),
        "a piece waits about one slow write, not {waited} ms"
    );
    assert!(
        found.evidence[0].starts_with("Pieces wait for room in the write queue"),
        "{:?}",
        found.evidence
    );
    assert!(found.evidence[1].starts_with("Downloading at "));
    assert!(
        find(&leecher.snapshot().torrents[0], FindingKind::SlowPeers).is_none(),
        "the disk, not the peers, is named"
    );

    disk.set_delay(Duration::ZERO);
    let t = wait_until_gone(&leecher, id, FindingKind::DiskBound);
    assert_eq!(
        t.state,
        TorrentState::Downloading,
        "the finding went with the slow disk, not with the download"
    );
    wait_for_id(&leecher, id, Duration::from_secs(60), "the download", |t| {
        t.progress == 1.0
    });
    assert_eq!(
        std::fs::read(disk.path().join("film.bin")).unwrap(),
        std::fs::read(seed_dir.path().join("film.bin")).unwrap(),
        "what went through the slow disk is the torrent's data"
    );
}

#[test]
fn a_healthy_download_and_its_seeding_show_no_warning() {
    let tracker = TestTracker::start();
    let (seed_dir, torrent, id) = one_file(6 << 20, &tracker.url);
    let seeder_state = tempfile::tempdir().unwrap();
    let seeder = session_configured(seeder_state.path(), |config| {
        config.doctor = quick();
        config.upload_limit = 2 << 20;
    });
    add(&seeder, &torrent, seed_dir.path(), true);
    wait_for(&seeder, Duration::from_secs(20), "the seeder", |t| {
        t.state == TorrentState::Seeding
    });
    let state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let leecher = doctor_session(state.path(), quick());
    add(&leecher, &torrent, out.path(), false);

    let start = Instant::now();
    let mut done_at = None;
    let mut looks = 0;
    while done_at.is_none_or(|at: Instant| at.elapsed() < Duration::from_secs(3)) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the download took too long"
        );
        for (who, session) in [("leecher", &leecher), ("seeder", &seeder)] {
            for t in session.snapshot().torrents.iter().filter(|t| t.id == id) {
                looks += 1;
                if let Some(f) = t.worst_finding() {
                    panic!("the {who} shows a warning in a healthy swarm: {f:?}");
                }
                if who == "leecher" && t.progress == 1.0 && done_at.is_none() {
                    done_at = Some(Instant::now());
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = done_at.unwrap().duration_since(start);
    assert!(
        took > Duration::from_secs(2),
        "the download ({took:?}) must outlast the doctor's settling time to prove anything"
    );
    assert!(looks > 200, "{looks} looks");
}
