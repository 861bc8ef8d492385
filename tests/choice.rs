//! Choosing what to download and in which order, on loopback: skipped files, priorities changed
//! while running, sequential order.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use rivulet::engine::{
    AddSource, AddTorrent, Command, DownloadPlan, FilePriority, SessionHandle, TorrentState,
};
use rivulet::metainfo::Metainfo;

const PIECE: u64 = 32 * 1024;

/// Three files whose boundaries fall inside pieces: the middle one shares its first and last
/// pieces with its neighbours.
const FILES: &[(&str, usize)] = &[
    ("show/e01.mkv", 100_000),
    ("show/e02.mkv", 300_000),
    ("show/e03.mkv", 90_000),
];

fn add_with(session: &SessionHandle, torrent: &[u8], save_dir: &Path, plan: DownloadPlan) {
    session.send(Command::Add(AddTorrent {
        source: AddSource::Bytes(torrent.to_vec()),
        save_dir: save_dir.to_path_buf(),
        paused: false,
        seed: false,
        plan,
    }));
}

fn same_file(a: &Path, b: &Path) {
    assert!(
        std::fs::read(a).unwrap() == std::fs::read(b).unwrap(),
        "{} differs from {}",
        b.display(),
        a.display()
    );
}

#[test]
fn a_skipped_file_is_never_created_survives_a_restart_and_completes_when_wanted_again() {
    let tracker = TestTracker::start();
    let seed_dir = tempfile::tempdir().unwrap();
    write_files(seed_dir.path(), FILES);
    let torrent = torrent_for(&seed_dir.path().join("show"), PIECE, &tracker.url);
    let meta = Metainfo::from_bytes(&torrent).unwrap();
    let (_seeder_state, _seeder) = start_seeder(&torrent, seed_dir.path(), 0);

    let state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let leecher = session_with_state(state.path(), true);
    let plan = DownloadPlan {
        priorities: vec![FilePriority::Normal, FilePriority::Skip, FilePriority::High],
        ..Default::default()
    };
    add_with(&leecher, &torrent, out.path(), plan);
    let done = wait_for(&leecher, Duration::from_secs(30), "the wanted files", |t| {
        t.state == TorrentState::Finished
    });
    // Wanted: pieces 0–3 (e01, and the start of e02 in piece 3) and 12–14 (the end of e02
    // in piece 12, and e03).
    let wanted_pieces = [0u32, 1, 2, 3, 12, 13, 14];
    let wanted: u64 = wanted_pieces.iter().map(|&i| meta.piece_len(i)).sum();
    assert_eq!((done.wanted_size, done.wanted_verified), (wanted, wanted));
    assert_eq!(done.progress, 1.0);
    assert_eq!(done.verified_bytes, wanted);
    assert!(done.total_size > wanted);
    assert!(
        done.downloaded <= wanted + PIECE,
        "only the wanted pieces come: {} bytes for {wanted}",
        done.downloaded
    );
    let priorities: Vec<FilePriority> = done.files.iter().map(|f| f.priority).collect();
    assert_eq!(
        priorities,
        vec![FilePriority::Normal, FilePriority::Skip, FilePriority::High]
    );
    same_file(
        &seed_dir.path().join("show/e01.mkv"),
        &out.path().join("show/e01.mkv"),
    );
    same_file(
        &seed_dir.path().join("show/e03.mkv"),
        &out.path().join("show/e03.mkv"),
    );
    assert!(
        !out.path().join("show/e02.mkv").exists(),
        "the skipped file is never created"
    );
    let parts = out
        .path()
        .join(format!(".{}.parts", meta.info_hash.to_hex()));
    assert!(parts.exists(), "the shared pieces' other bytes are kept");

    // A restart keeps the choice and the pieces, and downloads nothing.
    leecher.shutdown();
    let leecher = session_with_state(state.path(), true);
    let restored = wait_for(&leecher, Duration::from_secs(10), "restored", |t| {
        t.state == TorrentState::Finished
    });
    assert_eq!(restored.verified_bytes, wanted);
    assert_eq!(restored.files[1].priority, FilePriority::Skip);
    assert!(!out.path().join("show/e02.mkv").exists());

    // Wanted again: only its own pieces come, and the parts file gives back the rest.
    let before = restored.downloaded;
    leecher.send(Command::SetFilePriority {
        id: meta.info_hash,
        files: vec![1],
        priority: FilePriority::Normal,
    });
    let whole = wait_for(
        &leecher,
        Duration::from_secs(30),
        "the whole torrent",
        |t| t.state == TorrentState::Finished && t.verified_bytes == meta.total_length,
    );
    let missing = meta.total_length - wanted;
    let received = whole.downloaded - before;
    assert!(
        received <= missing + PIECE,
        "received {received} bytes for {missing} missing"
    );
    assert_same_tree(seed_dir.path(), out.path());
    assert!(!parts.exists(), "nothing left in the parts file");
    leecher.shutdown();
}

#[test]
fn sequential_order_completes_pieces_from_the_start() {
    let tracker = TestTracker::start();
    let seed_dir = tempfile::tempdir().unwrap();
    let pieces = 96u32;
    std::fs::write(
        seed_dir.path().join("movie.mkv"),
        data((pieces as u64 * PIECE) as usize, 3),
    )
    .unwrap();
    let torrent = torrent_for(&seed_dir.path().join("movie.mkv"), PIECE, &tracker.url);
    // Slow enough to watch the order: about 40 pieces a second.
    let (_seeder_state, _seeder) = start_seeder(&torrent, seed_dir.path(), 40 * PIECE);

    let state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let leecher = session(state.path(), 0);
    let plan = DownloadPlan {
        sequential: true,
        ..Default::default()
    };
    add_with(&leecher, &torrent, out.path(), plan);
    // At every look, the pieces we have lie at the start: none further than two windows of
    // eight pieces past the count we have, but for the ten a choked peer may fetch from the
    // seeder's BEP 6 allowed-fast set before it is unchoked.
    let mut looks = 0;
    let mut most_ahead = 0;
    wait_for(
        &leecher,
        Duration::from_secs(30),
        "finished in order",
        |t| {
            let have: Vec<u32> = t.pieces.ones().collect();
            let frontier = have.len() as u32 + 16;
            let ahead: Vec<u32> = have.iter().copied().filter(|&i| i >= frontier).collect();
            looks += 1;
            most_ahead = most_ahead.max(ahead.len());
            assert!(
                ahead.len() <= 10,
                "pieces {ahead:?} came with only {} pieces in: {have:?}",
                have.len()
            );
            assert!(t.sequential);
            t.state == TorrentState::Finished
        },
    );
    assert!(looks >= 20, "the download was watched {looks} times");
    assert_same_tree(seed_dir.path(), out.path());
    eprintln!("sequential: at most {most_ahead} pieces ahead over {looks} looks");
}

#[test]
fn a_queue_of_two_downloads_runs_six_torrents_two_at_a_time_in_queue_order() {
    let tracker = TestTracker::start();
    let seed_dir = tempfile::tempdir().unwrap();
    let torrents: Vec<Vec<u8>> = (0..6)
        .map(|i| {
            let name = format!("part{i}.bin");
            std::fs::write(seed_dir.path().join(&name), data(3 << 20, i + 10)).unwrap();
            torrent_for(&seed_dir.path().join(&name), 256 * 1024, &tracker.url)
        })
        .collect();
    let ids: Vec<_> = torrents
        .iter()
        .map(|t| Metainfo::from_bytes(t).unwrap().info_hash)
        .collect();
    // One seeder session for all six, at 8 MiB/s in all: a pair takes about a second.
    let seeder_state = tempfile::tempdir().unwrap();
    let seeder = session(seeder_state.path(), 8 << 20);
    for t in &torrents {
        add(&seeder, t, seed_dir.path(), true);
    }
    for &id in &ids {
        wait_for_id(&seeder, id, Duration::from_secs(20), "seeding", |t| {
            t.state == TorrentState::Seeding
        });
    }

    let state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let leecher = session(state.path(), 0);
    leecher.send(Command::ApplySettings(rivulet::engine::EngineSettings {
        queue: rivulet::engine::QueueSettings {
            enabled: true,
            max_downloads: 2,
            max_seeds: 5,
        },
        ..engine_settings(
            leecher.listen_port(),
            rivulet::net::Binding::Address(std::net::Ipv4Addr::LOCALHOST.into()),
        )
    }));
    for t in &torrents {
        leecher.send(Command::Add(AddTorrent {
            source: AddSource::Bytes(t.clone()),
            save_dir: out.path().to_path_buf(),
            paused: true,
            seed: false,
            plan: DownloadPlan::default(),
        }));
    }
    for &id in &ids {
        wait_for_id(&leecher, id, Duration::from_secs(10), "added", |t| {
            t.state == TorrentState::Paused
        });
    }
    // The last to the top of the queue, then all resumed: 5, 0, 1, 2, 3, 4.
    leecher.send(Command::MoveInQueue(
        vec![ids[5]],
        rivulet::engine::QueueMove::Top,
    ));
    let start = std::time::Instant::now();
    while leecher.snapshot().torrents.first().map(|t| t.id) != Some(ids[5]) {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the move never showed"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    for &id in &ids {
        leecher.send(Command::Resume(id));
    }
    let expected: Vec<usize> = vec![5, 0, 1, 2, 3, 4];
    let mut started: Vec<usize> = Vec::new();
    let mut most_at_once = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let snapshot = leecher.snapshot();
        let listed: Vec<_> = snapshot.torrents.iter().map(|t| t.id).collect();
        assert_eq!(
            listed[0], ids[5],
            "the session lists torrents in queue order"
        );
        let mut running = 0;
        for t in snapshot.torrents.iter() {
            let i = ids.iter().position(|&id| id == t.id).unwrap();
            let moving = t.state == TorrentState::Downloading || t.verified_bytes > 0;
            if t.state == TorrentState::Downloading {
                running += 1;
            }
            if moving && !started.contains(&i) {
                started.push(i);
            }
        }
        most_at_once = most_at_once.max(running);
        assert!(running <= 2, "{running} downloading at once");
        if snapshot
            .torrents
            .iter()
            .all(|t| t.state == TorrentState::Finished)
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not all finished: started {started:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(most_at_once, 2);
    // Two start together: their order within a pair is the one of their first snapshot.
    for pair in started.chunks(2).zip(expected.chunks(2)) {
        let (mut got, mut want) = (pair.0.to_vec(), pair.1.to_vec());
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got, want, "started in the order {started:?}");
    }
    for i in 0..6 {
        same_file(
            &seed_dir.path().join(format!("part{i}.bin")),
            &out.path().join(format!("part{i}.bin")),
        );
    }
}

#[test]
fn seeding_goals_pause_at_the_ratio_and_after_the_seeding_time() {
    let tracker = TestTracker::start();
    let seed_dir = tempfile::tempdir().unwrap();
    std::fs::write(seed_dir.path().join("shared.bin"), data(1 << 20, 21)).unwrap();
    std::fs::write(seed_dir.path().join("alone.bin"), data(100_000, 22)).unwrap();
    let shared = torrent_for(&seed_dir.path().join("shared.bin"), PIECE, &tracker.url);
    let alone = torrent_for(&seed_dir.path().join("alone.bin"), PIECE, &tracker.url);
    let (shared_id, alone_id) = (
        Metainfo::from_bytes(&shared).unwrap().info_hash,
        Metainfo::from_bytes(&alone).unwrap().info_hash,
    );

    // The seeder stops at ratio 1 (the session's goal); `alone` has its own: 3 s of seeding.
    let seeder_state = tempfile::tempdir().unwrap();
    let seeder = session(seeder_state.path(), 0);
    seeder.send(Command::ApplySettings(rivulet::engine::EngineSettings {
        seed_goals: rivulet::engine::SeedGoals {
            ratio: Some(1.0),
            ..Default::default()
        },
        ..engine_settings(
            seeder.listen_port(),
            rivulet::net::Binding::Address(std::net::Ipv4Addr::LOCALHOST.into()),
        )
    }));
    add(&seeder, &shared, seed_dir.path(), true);
    add(&seeder, &alone, seed_dir.path(), true);
    seeder.send(Command::SetSeedGoals(
        alone_id,
        rivulet::engine::TorrentGoals {
            seeding_time: rivulet::engine::Limit::Value(Duration::from_secs(3)),
            ..Default::default()
        },
    ));
    let seeding = wait_for_id(&seeder, alone_id, Duration::from_secs(10), "seeding", |t| {
        t.state == TorrentState::Seeding
    });
    let seeding_at = std::time::Instant::now();
    assert_eq!(
        seeding.goals.seeding_time,
        rivulet::engine::Limit::Value(Duration::from_secs(3))
    );
    let paused = wait_for_id(
        &seeder,
        alone_id,
        Duration::from_secs(10),
        "the time goal",
        |t| t.state == TorrentState::Paused,
    );
    let waited = seeding_at.elapsed();
    assert!(
        waited >= Duration::from_millis(2500),
        "paused after {waited:?} of seeding"
    );
    assert!(paused.seeding_time(std::time::SystemTime::now()) >= Duration::from_millis(2900));
    let before = wait_for_id(&seeder, shared_id, Duration::from_secs(5), "seeding", |t| {
        t.state == TorrentState::Seeding
    });
    assert_eq!(before.ratio, 0.0, "nothing shared yet: still seeding");

    let state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let leecher = session(state.path(), 0);
    add(&leecher, &shared, out.path(), false);
    wait_for(&leecher, Duration::from_secs(30), "downloaded", |t| {
        t.state == TorrentState::Finished
    });
    let stopped = wait_for_id(
        &seeder,
        shared_id,
        Duration::from_secs(10),
        "the ratio goal",
        |t| t.state == TorrentState::Paused,
    );
    assert!(stopped.ratio >= 1.0, "paused at ratio {}", stopped.ratio);
}

#[test]
fn a_torrents_own_download_limit_holds_its_rate() {
    let tracker = TestTracker::start();
    let seed_dir = tempfile::tempdir().unwrap();
    let size = 2 << 20;
    std::fs::write(seed_dir.path().join("limited.bin"), data(size, 31)).unwrap();
    let torrent = torrent_for(&seed_dir.path().join("limited.bin"), PIECE, &tracker.url);
    let id = Metainfo::from_bytes(&torrent).unwrap().info_hash;
    let (_seeder_state, _seeder) = start_seeder(&torrent, seed_dir.path(), 0);

    let state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let leecher = session(state.path(), 0);
    leecher.send(Command::Add(AddTorrent {
        source: AddSource::Bytes(torrent.clone()),
        save_dir: out.path().to_path_buf(),
        paused: true,
        seed: false,
        plan: DownloadPlan::default(),
    }));
    leecher.send(Command::SetSpeedLimits {
        id,
        down: 512 * 1024,
        up: 0,
    });
    wait_for(&leecher, Duration::from_secs(10), "the limit", |t| {
        t.down_limit == 512 * 1024
    });
    let start = std::time::Instant::now();
    leecher.send(Command::Resume(id));
    wait_for(&leecher, Duration::from_secs(30), "finished", |t| {
        t.state == TorrentState::Finished
    });
    let took = start.elapsed().as_secs_f64();
    let rate = size as f64 / took / 1024.0;
    assert!(
        (380.0..=560.0).contains(&rate),
        "{rate:.0} KiB/s under a 512 KiB/s limit ({took:.1} s)"
    );
}

/// Moves a seeding torrent's data to `to`, and checks a leecher then gets it from there.
fn move_and_seed_from(to_parent: &Path) {
    let tracker = TestTracker::start();
    let seed_dir = tempfile::tempdir().unwrap();
    write_files(seed_dir.path(), FILES);
    let torrent = torrent_for(&seed_dir.path().join("show"), PIECE, &tracker.url);
    let id = Metainfo::from_bytes(&torrent).unwrap().info_hash;
    let original = tempfile::tempdir().unwrap();
    write_files(original.path(), FILES);
    let state = tempfile::tempdir().unwrap();
    let seeder = session_with_state(state.path(), true);
    add(&seeder, &torrent, original.path(), true);
    wait_for(&seeder, Duration::from_secs(20), "seeding", |t| {
        t.state == TorrentState::Seeding
    });
    let to = to_parent.join("moved here");
    seeder.send(Command::MoveData { id, to: to.clone() });
    let moved = wait_for(&seeder, Duration::from_secs(20), "moved", |t| {
        t.state == TorrentState::Seeding && t.save_dir == to
    });
    assert_eq!(
        moved.verified_bytes, moved.total_size,
        "nothing rechecked or lost"
    );
    assert_same_tree(seed_dir.path(), &to);
    assert!(
        !original.path().join("show").exists(),
        "the old folder is gone"
    );

    let out = tempfile::tempdir().unwrap();
    let leecher_state = tempfile::tempdir().unwrap();
    let leecher = session(leecher_state.path(), 0);
    add(&leecher, &torrent, out.path(), false);
    wait_for(
        &leecher,
        Duration::from_secs(30),
        "downloaded from the new folder",
        |t| t.state == TorrentState::Finished,
    );
    assert_same_tree(seed_dir.path(), out.path());

    // A restart finds it in its new folder.
    seeder.shutdown();
    let seeder = session_with_state(state.path(), true);
    let restored = wait_for(&seeder, Duration::from_secs(20), "restored", |t| {
        t.state == TorrentState::Seeding
    });
    assert_eq!(restored.save_dir, to);
    seeder.shutdown();
}

#[test]
fn set_location_moves_the_data_and_seeds_from_there() {
    let dir = tempfile::tempdir().unwrap();
    move_and_seed_from(dir.path());
}

#[test]
fn set_location_moves_across_file_systems() {
    let Ok(shm) = tempfile::tempdir_in("/dev/shm") else {
        eprintln!("skipped: no /dev/shm, another file system to move to");
        return;
    };
    move_and_seed_from(shm.path());
}
