//! Scale: a torrent of 2,000 files created, seeded, downloaded and checked again under an
//! open-file limit of 256 descriptors, far fewer than its files: the session's file pool keeps
//! at most a share of the limit open, closing the least recently used, and creation keeps only
//! the files it is reading open.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_rivulet");
const FILES: usize = 2000;

/// Runs `rivulet download` with its open-file limit at 256; returns whether it succeeded and
/// what it printed.
fn download_under_256(
    torrent: &std::path::Path,
    out: &std::path::Path,
    state: &std::path::Path,
) -> (bool, String) {
    let script = "ulimit -n 256 && exec \"$0\" \"$@\"";
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(BIN)
        .arg("download")
        .arg(torrent)
        .arg("-o")
        .arg(out)
        .args(["--bind", "127.0.0.1", "--port", "0", "--state-dir"])
        .arg(state)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(180) {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = child.wait_with_output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Lowers this test process's open-file limit, soft and hard, to `n` (this binary holds one
/// test, so nothing else shares it): the in-process creation and seeder run under it too.
fn limit_open_files(n: u64) {
    let limit = libc::rlimit {
        rlim_cur: n,
        rlim_max: n,
    };
    // SAFETY: setrlimit reads a plain struct we own.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);
}

#[test]
fn two_thousand_files_under_an_open_file_limit_of_256() {
    limit_open_files(256);
    let tracker = TestTracker::start();
    let src = tempfile::tempdir().unwrap();
    let root = src.path().join("many");
    let files: Vec<(String, usize)> = (0..FILES)
        .map(|i| {
            (
                format!("many/d{:02}/f{i:04}.bin", i / 100),
                1000 + (i * 37) % 3000,
            )
        })
        .collect();
    let listed: Vec<(&str, usize)> = files.iter().map(|(p, n)| (p.as_str(), *n)).collect();
    write_files(src.path(), &listed);
    let torrent_bytes = torrent_for(&root, 16 * 1024, &tracker.url);
    let (_seeder_state, seeder) = start_seeder(&torrent_bytes, src.path(), 0);

    let work = tempfile::tempdir().unwrap();
    let torrent = work.path().join("many.torrent");
    std::fs::write(&torrent, &torrent_bytes).unwrap();
    let out = work.path().join("out");
    let (ok, stderr) = download_under_256(&torrent, &out, &work.path().join("state"));
    assert!(ok, "the download failed under ulimit -n 256:\n{stderr}");
    assert!(!stderr.contains("Too many open files"), "{stderr}");
    assert_same_tree(src.path(), &out);
    std::thread::sleep(Duration::from_secs(1));
    let sent = seeder.snapshot().torrents[0].uploaded;

    // A fresh state: the data on disk is checked, found whole, and nothing is fetched again.
    let (ok, stderr) = download_under_256(&torrent, &out, &work.path().join("state2"));
    assert!(ok, "the recheck failed under ulimit -n 256:\n{stderr}");
    std::thread::sleep(Duration::from_secs(1));
    let sent_again = seeder.snapshot().torrents[0].uploaded - sent;
    println!(
        "{FILES} files under ulimit -n 256: {sent} bytes sent, {sent_again} more for the recheck"
    );
    assert_eq!(sent_again, 0, "the recheck fetched data that was on disk");
}
