//! Whole swarms on loopback: a test tracker, Rivulet seeders and leechers.

mod common;

use std::time::{Duration, Instant};

use common::*;
use rivulet::engine::{Command, TorrentState};
use rivulet::metainfo::Metainfo;

const PIECE: u64 = 32 * 1024;

/// Awkward sizes: a zero-length file, one smaller than a block, a short last piece, a file
/// spanning many pieces.
const FILES: &[(&str, usize)] = &[
    ("album/empty.txt", 0),
    ("album/tiny.nfo", 100),
    ("album/cd1/track01.flac", 700_000),
    ("album/cd1/track02.flac", 16_385),
    ("album/cover.jpg", 45_001),
];

#[test]
fn one_seeder_three_leechers_multi_file() {
    let tracker = TestTracker::start();
    let seed_dir = tempfile::tempdir().unwrap();
    write_files(seed_dir.path(), FILES);
    let torrent = torrent_for(&seed_dir.path().join("album"), PIECE, &tracker.url);
    let meta = Metainfo::from_bytes(&torrent).unwrap();
    assert_eq!(meta.files.len(), 5);

    let (_seeder_state, _seeder) = start_seeder(&torrent, seed_dir.path(), 0);

    let leechers: Vec<_> = (0..3)
        .map(|_| {
            let state = tempfile::tempdir().unwrap();
            let out = tempfile::tempdir().unwrap();
            let s = session(state.path(), 0);
            add(&s, &torrent, out.path(), true);
            (state, out, s)
        })
        .collect();
    for (_, out, s) in &leechers {
        let t = wait_for(s, Duration::from_secs(60), "leecher to finish", |t| {
            t.state == TorrentState::Seeding
        });
        assert_eq!(t.verified_bytes, meta.total_length);
        assert!(t.files.iter().all(|f| f.verified_bytes == f.length));
        assert_same_tree(seed_dir.path(), out.path());
        assert!(
            out.path().join("album/empty.txt").exists(),
            "zero-length files are created"
        );
    }
    let port = leechers[0].2.listen_port();
    let events = tracker.events(port);
    assert_eq!(events.first().map(String::as_str), Some("started"));
    assert!(events.iter().any(|e| e == "completed"), "{events:?}");
    let (_, _, first) = leechers.into_iter().next().unwrap();
    first.shutdown();
    assert!(
        tracker.events(port).iter().any(|e| e == "stopped"),
        "stopped is sent on shutdown"
    );
}

#[test]
fn pause_and_resume_mid_download() {
    let tracker = TestTracker::start();
    let seed_dir = tempfile::tempdir().unwrap();
    std::fs::write(seed_dir.path().join("big.bin"), data(3 << 20, 9)).unwrap();
    let torrent = torrent_for(&seed_dir.path().join("big.bin"), PIECE, &tracker.url);
    let (_seeder_state, _seeder) = start_seeder(&torrent, seed_dir.path(), 1 << 20);

    let state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let leecher = session(state.path(), 0);
    add(&leecher, &torrent, out.path(), false);
    let t = wait_for(&leecher, Duration::from_secs(30), "some progress", |t| {
        t.progress > 0.2
    });
    leecher.send(Command::Pause(t.id));
    let paused = wait_for(&leecher, Duration::from_secs(10), "paused", |t| {
        t.state == TorrentState::Paused
    });
    assert!(paused.progress < 1.0);
    std::thread::sleep(Duration::from_millis(1500));
    let still = wait_for(&leecher, Duration::from_secs(1), "paused", |_| true);
    assert_eq!(
        still.verified_bytes, paused.verified_bytes,
        "nothing arrives while paused"
    );
    assert!(
        tracker
            .events(leecher.listen_port())
            .iter()
            .any(|e| e == "stopped")
    );
    leecher.send(Command::Resume(t.id));
    wait_for(&leecher, Duration::from_secs(30), "finished", |t| {
        t.state == TorrentState::Finished
    });
    assert_same_tree(seed_dir.path(), out.path());
}

#[test]
fn restart_resumes_without_downloading_verified_pieces_again() {
    let tracker = TestTracker::start();
    let seed_dir = tempfile::tempdir().unwrap();
    let total = 4 << 20;
    std::fs::write(seed_dir.path().join("data.bin"), data(total, 5)).unwrap();
    let torrent = torrent_for(&seed_dir.path().join("data.bin"), PIECE, &tracker.url);
    let (_seeder_state, _seeder) = start_seeder(&torrent, seed_dir.path(), 2 << 20);

    let state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let first = session(state.path(), 0);
    add(&first, &torrent, out.path(), false);
    wait_for(&first, Duration::from_secs(30), "40%", |t| {
        t.progress >= 0.4
    });
    first.shutdown();

    let second = session(state.path(), 0);
    add(&second, &torrent, out.path(), false);
    let resumed = wait_for(&second, Duration::from_secs(10), "resume data", |t| {
        t.verified_bytes > 0
    });
    let before = resumed.downloaded;
    let verified = resumed.verified_bytes;
    assert!(
        verified >= total as u64 * 2 / 5,
        "verified pieces survive the restart: {verified}"
    );
    let done = wait_for(&second, Duration::from_secs(30), "finished", |t| {
        t.state == TorrentState::Finished
    });
    let received = done.downloaded - before;
    let missing = total as u64 - verified;
    assert!(
        received <= missing + 8 * PIECE,
        "received {received} bytes for {missing} missing"
    );
    assert_same_tree(seed_dir.path(), out.path());
}

#[test]
fn restored_session_keeps_torrents_and_their_states() {
    let tracker = TestTracker::start();
    let seed_dir = tempfile::tempdir().unwrap();
    std::fs::write(seed_dir.path().join("kept.bin"), data(300_000, 2)).unwrap();
    let torrent = torrent_for(&seed_dir.path().join("kept.bin"), PIECE, &tracker.url);
    let state = tempfile::tempdir().unwrap();
    let first = session_with_state(state.path(), true);
    add(&first, &torrent, seed_dir.path(), true);
    let seeding = wait_for(&first, Duration::from_secs(20), "seeding", |t| {
        t.state == TorrentState::Seeding
    });
    first.send(Command::Pause(seeding.id));
    wait_for(&first, Duration::from_secs(10), "paused", |t| {
        t.state == TorrentState::Paused
    });
    first.shutdown();

    let second = session_with_state(state.path(), true);
    let restored = wait_for(&second, Duration::from_secs(10), "restored", |t| {
        t.verified_bytes > 0
    });
    assert_eq!(restored.id, seeding.id);
    assert_eq!(restored.state, TorrentState::Paused);
    assert_eq!(
        restored.verified_bytes, 300_000,
        "no recheck or download needed"
    );
    assert_eq!(restored.save_dir, seed_dir.path());
    second.send(Command::Resume(restored.id));
    wait_for(&second, Duration::from_secs(10), "seeding again", |t| {
        t.state == TorrentState::Seeding
    });
}

/// Removing a torrent and adding it straight back: the old actor's clean-up (which deletes the
/// saved .torrent and resume data) must not take the new one's files with it.
#[test]
fn removed_and_added_again_survives_a_restart() {
    let tracker = TestTracker::start();
    let seed_dir = tempfile::tempdir().unwrap();
    std::fs::write(seed_dir.path().join("again.bin"), data(200_000, 4)).unwrap();
    let torrent = torrent_for(&seed_dir.path().join("again.bin"), PIECE, &tracker.url);
    let id = Metainfo::from_bytes(&torrent).unwrap().info_hash;
    let state = tempfile::tempdir().unwrap();
    let first = session_with_state(state.path(), true);
    add(&first, &torrent, seed_dir.path(), true);
    wait_for(&first, Duration::from_secs(20), "seeding", |t| {
        t.state == TorrentState::Seeding
    });
    first.send(Command::Remove {
        id,
        delete_data: false,
    });
    // Gone from the snapshot first, so "seeding again" is the new torrent's, not the old one's.
    let start = Instant::now();
    while !first.snapshot().torrents.is_empty() {
        assert!(start.elapsed() < Duration::from_secs(10), "never removed");
        std::thread::sleep(Duration::from_millis(20));
    }
    add(&first, &torrent, seed_dir.path(), true);
    wait_for(&first, Duration::from_secs(20), "seeding again", |t| {
        t.state == TorrentState::Seeding
    });
    first.shutdown();

    let second = session_with_state(state.path(), true);
    let restored = wait_for(&second, Duration::from_secs(10), "restored", |t| {
        t.state == TorrentState::Seeding
    });
    assert_eq!(restored.id, id);
    assert!(
        seed_dir.path().join("again.bin").exists(),
        "the data was kept"
    );
}

/// A torrent added paused (never started, its data not yet checked) has its resume file at
/// once: were the app killed now, the next start would restore it, paused.
#[test]
fn a_torrent_added_paused_is_saved_at_once() {
    let tracker = TestTracker::start();
    let src = tempfile::tempdir().unwrap();
    write_files(src.path(), &[("one.bin", 100_000)]);
    let torrent = torrent_for(&src.path().join("one.bin"), 16384, &tracker.url);
    let id = Metainfo::from_bytes(&torrent).unwrap().info_hash;
    let (state, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let session = session_with_state(state.path(), true);
    session.send(Command::Add(rivulet::engine::AddTorrent {
        source: rivulet::engine::AddSource::Bytes(torrent),
        save_dir: out.path().to_path_buf(),
        paused: true,
        seed: true,
        plan: Default::default(),
    }));
    let resume = state
        .path()
        .join("torrents")
        .join(format!("{}.resume", id.to_hex()));
    let start = Instant::now();
    while !resume.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "no resume file 3 s after adding a paused torrent"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Not shut down: a kill. The next session restores it as it was.
    std::mem::forget(session);
    let again = session_with_state(state.path(), true);
    let t = wait_for(
        &again,
        Duration::from_secs(10),
        "the restored torrent",
        |t| t.id == id,
    );
    assert!(t.paused, "restored paused");
}

/// A saved torrent whose resume data is damaged or gone stays in the list and is rechecked:
/// with the version before it when that one is sound (same save folder), else in the default
/// download folder.
#[test]
fn a_torrent_whose_resume_data_is_lost_stays_listed_and_is_rechecked() {
    let tracker = TestTracker::start();
    let (seed_dir, download_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let content = data(300_000, 9);
    std::fs::write(seed_dir.path().join("kept.bin"), &content).unwrap();
    let torrent = torrent_for(&seed_dir.path().join("kept.bin"), PIECE, &tracker.url);
    let id = Metainfo::from_bytes(&torrent).unwrap().info_hash;
    let state = tempfile::tempdir().unwrap();
    let start = |state: &std::path::Path| {
        let mut config = rivulet::engine::SessionConfig::with_state_dir(state.to_path_buf());
        config.bind = rivulet::net::Binding::Address(std::net::Ipv4Addr::LOCALHOST.into());
        config.listen_port = 0;
        config.download_dir = Some(download_dir.path().to_path_buf());
        rivulet::engine::Session::start(config, None).unwrap()
    };
    let first = start(state.path());
    add(&first, &torrent, seed_dir.path(), true);
    wait_for(&first, Duration::from_secs(20), "seeding", |t| {
        t.state == TorrentState::Seeding
    });
    // Saved after its check and at shutdown: the first save becomes the backup.
    first.shutdown();

    let torrents = state.path().join("torrents");
    let resume = torrents.join(format!("{}.resume", id.to_hex()));
    std::fs::write(&resume, b"\x00garbage\xff").unwrap();
    let second = start(state.path());
    let t = wait_for(
        &second,
        Duration::from_secs(20),
        "restored from the backup",
        |t| t.state == TorrentState::Seeding,
    );
    assert_eq!(t.save_dir, seed_dir.path(), "the backup's save folder");
    second.shutdown();

    // Both versions gone: the default download folder, where a copy of the data waits.
    std::fs::remove_file(&resume).unwrap();
    let _ = std::fs::remove_file(torrents.join(format!("{}.resume.bak", id.to_hex())));
    std::fs::write(download_dir.path().join("kept.bin"), &content).unwrap();
    let third = start(state.path());
    let t = wait_for(
        &third,
        Duration::from_secs(20),
        "rechecked in the download folder",
        |t| t.state == TorrentState::Seeding,
    );
    assert_eq!(t.save_dir, download_dir.path());
    assert_eq!(
        t.verified_bytes,
        content.len() as u64,
        "found by the recheck"
    );
    assert_eq!(third.snapshot().torrents.len(), 1);
}
