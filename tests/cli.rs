//! The command line over the engine: exit codes, `create`/`info`, and a download that is
//! killed with SIGKILL and run again.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_rivulet");

#[test]
fn bad_torrent_is_one_clear_line_and_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.torrent");
    std::fs::write(
        &bad,
        b"d4:infod6:lengthi5e4:name1:x12:piece lengthi0e6:pieces20:aaaaaaaaaaaaaaaaaaaaee",
    )
    .unwrap();
    let out = Command::new(BIN).arg("info").arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("bad.torrent") && stderr.contains("piece length"),
        "{stderr}"
    );

    let missing = Command::new(BIN)
        .args(["download", "/nonexistent.torrent", "-o"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    let usage = Command::new(BIN)
        .args(["download", "--no-such-flag"])
        .output()
        .unwrap();
    assert_eq!(usage.status.code(), Some(2));
}

#[test]
fn create_then_info() {
    let dir = tempfile::tempdir().unwrap();
    write_files(
        dir.path(),
        &[("folder/a.bin", 50_000), ("folder/b/c.bin", 10)],
    );
    let torrent = dir.path().join("folder.torrent");
    let created = Command::new(BIN)
        .args(["create"])
        .arg(dir.path().join("folder"))
        .arg("-o")
        .arg(&torrent)
        .args([
            "--tracker",
            "http://127.0.0.1:6969/announce",
            "--piece-length",
            "16384",
            "--comment",
            "hi",
        ])
        .output()
        .unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let info = Command::new(BIN)
        .arg("info")
        .arg(&torrent)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&info.stdout);
    assert!(text.contains("name: folder"), "{text}");
    assert!(text.contains("pieces: 4 x 16.0 KiB"), "{text}");
    assert!(text.contains("folder/b/c.bin"), "{text}");
    assert!(text.contains("comment: hi"), "{text}");
    let meta = rivulet::metainfo::Metainfo::from_bytes(&std::fs::read(&torrent).unwrap()).unwrap();
    assert!(text.contains(&format!("info hash: {}", meta.info_hash)));
}

#[test]
fn download_killed_and_run_again_resumes() {
    let tracker = TestTracker::start();
    let seed_dir = tempfile::tempdir().unwrap();
    let total = 5 << 20;
    std::fs::write(seed_dir.path().join("movie.bin"), data(total, 11)).unwrap();
    let torrent_bytes = torrent_for(&seed_dir.path().join("movie.bin"), 32 * 1024, &tracker.url);
    let (_seeder_state, seeder) = start_seeder(&torrent_bytes, seed_dir.path(), 1 << 20);

    let work = tempfile::tempdir().unwrap();
    let torrent = work.path().join("movie.torrent");
    std::fs::write(&torrent, &torrent_bytes).unwrap();
    let out = work.path().join("out");
    let state = work.path().join("state");
    let download = || {
        let mut c = Command::new(BIN);
        c.arg("download").arg(&torrent).arg("-o").arg(&out);
        c.args(["--bind", "127.0.0.1", "--port", "0", "--state-dir"])
            .arg(&state);
        c.stdout(Stdio::null()).stderr(Stdio::null());
        c
    };
    let mut first = download().spawn().unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    first.kill().unwrap(); // SIGKILL
    let status = first.wait().unwrap();
    assert!(!status.success(), "the first run was killed mid-download");
    let sent_before = seeder.snapshot().torrents[0].uploaded;
    assert!(
        sent_before > (total / 4) as u64 && sent_before < total as u64,
        "killed mid-way: {sent_before}"
    );

    let start = Instant::now();
    let mut second = download().spawn().unwrap();
    loop {
        if let Some(status) = second.try_wait().unwrap() {
            assert!(status.success());
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "second run did not finish"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_same_tree(seed_dir.path(), &out);
    let sent = seeder.snapshot().torrents[0].uploaded;
    assert!(
        sent <= total as u64 + (1 << 20),
        "verified pieces were not sent again: {sent} bytes for {total}"
    );
}

/// `--remove-tracker` and `--add-tracker` edit the torrent's trackers for the download, and
/// `rivulet scrape` reports each tracker's counts.
#[test]
fn download_with_edited_trackers_and_scrape() {
    use rivulet::tracker::server::{Access, RunningTracker, TrackerConfig};
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let config = TrackerConfig::new([127, 0, 0, 1].into(), 0, Access::Open);
    let tracker = runtime.block_on(RunningTracker::start(config)).unwrap();
    let good = tracker.http_url("127.0.0.1");
    let dead_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = format!("http://127.0.0.1:{dead_port}/announce");

    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), &[("clip.mov", 200_000)]);
    let seeded = torrent_for(&dir.path().join("clip.mov"), 16384, &good);
    let (_seed_state, _seeder) = start_seeder(&seeded, dir.path(), 0);
    let files = tempfile::tempdir().unwrap();
    let with_dead = files.path().join("dead.torrent");
    std::fs::write(
        &with_dead,
        torrent_for(&dir.path().join("clip.mov"), 16384, &dead),
    )
    .unwrap();

    let out = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .arg("download")
        .arg(&with_dead)
        .arg("-o")
        .arg(out.path())
        .args(["--port", "0", "--bind", "127.0.0.1", "--state-dir"])
        .arg(state.path())
        .args(["--remove-tracker", &dead, "--add-tracker", &good])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("the download did not finish");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success());
    assert_same_tree(dir.path(), out.path());

    let seeded_file = files.path().join("seeded.torrent");
    std::fs::write(&seeded_file, &seeded).unwrap();
    let scrape = Command::new(BIN)
        .arg("scrape")
        .arg(&seeded_file)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&scrape.stdout);
    assert_eq!(scrape.status.code(), Some(0), "{text}");
    assert!(
        text.contains(&format!("{good}: 1 seeders, 0 leechers, 1 completed")),
        "{text}"
    );
    let scrape = Command::new(BIN)
        .arg("scrape")
        .arg(&with_dead)
        .output()
        .unwrap();
    assert_eq!(scrape.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&scrape.stdout).contains("unreachable"));

    let bad = Command::new(BIN)
        .arg("download")
        .arg(&with_dead)
        .arg("-o")
        .arg(out.path())
        .args(["--add-tracker", "gopher://x"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2), "a bad tracker URL is bad input");
}

/// `rivulet download` killed with SIGKILL at 20 moments (pseudo-random, seeded), with its resume
/// file truncated before one restart and replaced by garbage before another: every restart
/// rechecks or resumes, the final data verifies, and what was verified before a kill is not
/// sent again (the seeder's upload total stays near the torrent's size).
#[test]
fn download_survives_twenty_kills_and_damaged_resume_files() {
    let tracker = TestTracker::start();
    let seed_dir = tempfile::tempdir().unwrap();
    let total: u64 = 8 << 20;
    std::fs::write(seed_dir.path().join("disk.img"), data(total as usize, 17)).unwrap();
    let torrent_bytes = torrent_for(&seed_dir.path().join("disk.img"), 32 * 1024, &tracker.url);
    let meta = rivulet::metainfo::Metainfo::from_bytes(&torrent_bytes).unwrap();
    let (_seeder_state, seeder) = start_seeder(&torrent_bytes, seed_dir.path(), 512 << 10);

    let work = tempfile::tempdir().unwrap();
    let torrent = work.path().join("disk.torrent");
    std::fs::write(&torrent, &torrent_bytes).unwrap();
    let (out, state) = (work.path().join("out"), work.path().join("state"));
    let resume = state
        .join("torrents")
        .join(format!("{}.resume", meta.info_hash.to_hex()));
    let download = || {
        let mut c = Command::new(BIN);
        c.arg("download").arg(&torrent).arg("-o").arg(&out);
        c.args(["--bind", "127.0.0.1", "--port", "0", "--state-dir"])
            .arg(&state);
        c.stdout(Stdio::null()).stderr(Stdio::piped());
        c
    };
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut kills = 0;
    let mut damaged_reports = 0;
    for round in 0..20 {
        match round {
            10 if resume.exists() => {
                let bytes = std::fs::read(&resume).unwrap();
                std::fs::write(&resume, &bytes[..bytes.len() / 2]).unwrap();
            }
            15 if resume.exists() => std::fs::write(&resume, b"\x00garbage\xff").unwrap(),
            _ => {}
        }
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        // After damaging the resume file, give the run time to read it and say so.
        let delay = match round {
            10 | 15 => Duration::from_millis(2500),
            _ => Duration::from_millis(300 + rng % 900),
        };
        let mut child = download().spawn().unwrap();
        std::thread::sleep(delay);
        let finished = child.try_wait().unwrap().is_some();
        if !finished {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        if stderr.contains("damaged resume data") {
            damaged_reports += 1;
        }
        if finished {
            break; // the download ended before this kill
        }
    }
    assert!(kills >= 15, "most runs were killed mid-download ({kills})");
    assert_eq!(
        damaged_reports, 2,
        "both damaged resume files were reported"
    );

    let start = Instant::now();
    let mut last = download().spawn().unwrap();
    loop {
        if let Some(status) = last.try_wait().unwrap() {
            assert!(status.success());
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "the last run did not finish"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_same_tree(seed_dir.path(), &out);
    let sent = seeder.snapshot().torrents[0].uploaded;
    let wasted = sent.saturating_sub(total);
    println!("after {kills} kills: {sent} bytes sent for {total} ({wasted} sent again)");
    // Only what was in flight at each kill may come again: at most a minimal pipeline (16
    // blocks of 16 KiB) a kill. Re-sending verified pieces would cost megabytes.
    assert!(wasted <= kills * (256 << 10), "{wasted} bytes sent again");
}
