//! Disk faults: a save folder that fills up (a small tmpfs) errors only its torrent, in plain
//! words, and Resume after freeing space continues without downloading again; data deleted or
//! truncated under a seeder is found by a recheck instead of being served.
//!
//! The tmpfs needs `mount`: the full-disk test runs as root (as CI does), or, for anyone else,
//! again in a user and mount namespace of its own (`unshare -Urm`, where the user is root of
//! its own mounts). Where neither can be had it says that it was skipped, and why. The
//! truncated-data test runs for everyone.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command as Process;
use std::time::Duration;

use common::*;
use rivulet::engine::{Command, TorrentError, TorrentState};
use rivulet::metainfo::Metainfo;

const PIECE: u64 = 32 * 1024;

/// A tmpfs of a given size, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// A tmpfs, when running as root. Otherwise `None`, once the test `name` has run again in
    /// a user and mount namespace of its own (its result is this run's), or a line said why
    /// it could not.
    fn mount(size_kib: u64, name: &str) -> Option<Self> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            common::netns::run_again_under_unshare(
                "-Urm",
                name,
                "root, or unshare(1) with unprivileged user namespaces \
                 (kernel.unprivileged_userns_clone), to mount a tmpfs",
            );
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let status = Process::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_kib}k"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("mount(8) runs");
        assert!(status.success(), "mount -t tmpfs failed, as root");
        Some(Self { dir })
    }

    fn resize(&self, size_kib: u64) {
        // With the type and source given, as a remount inside a user namespace needs.
        let status = Process::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("remount,size={size_kib}k"),
                "tmpfs",
            ])
            .arg(self.dir.path())
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Process::new("umount").arg(self.dir.path()).status();
    }
}

fn seeded(dir: &Path, name: &str, size: usize, seed: u64, tracker: &str) -> (PathBuf, Vec<u8>) {
    let path = dir.join(name);
    std::fs::write(&path, data(size, seed)).unwrap();
    let torrent = torrent_for(&path, PIECE, tracker);
    (path, torrent)
}

#[test]
fn a_full_disk_errors_only_its_torrent_and_resume_continues() {
    let Some(tmpfs) = Tmpfs::mount(
        3 * 1024,
        "a_full_disk_errors_only_its_torrent_and_resume_continues",
    ) else {
        return;
    };
    let tracker = TestTracker::start();
    let src = tempfile::tempdir().unwrap();
    let big_size = 6 << 20;
    let (_, big) = seeded(src.path(), "big.bin", big_size, 1, &tracker.url);
    let (_, small) = seeded(src.path(), "small.bin", 600_000, 2, &tracker.url);
    let (_big_state, big_seeder) = start_seeder(&big, src.path(), 0);
    let (_small_state, _small_seeder) = start_seeder(&small, src.path(), 0);
    let (big_id, small_id) = (
        Metainfo::from_bytes(&big).unwrap().info_hash,
        Metainfo::from_bytes(&small).unwrap().info_hash,
    );

    let elsewhere = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let leecher = session(state.path(), 0);
    add(&leecher, &big, tmpfs.path(), false);
    add(&leecher, &small, elsewhere.path(), false);

    let t = wait_for_id(
        &leecher,
        big_id,
        Duration::from_secs(60),
        "the disk to fill",
        |t| matches!(t.state, TorrentState::Error(_)),
    );
    let TorrentState::Error(error) = &t.state else {
        unreachable!()
    };
    assert!(matches!(error, TorrentError::DiskFull(_)), "{error}");
    let had = t.verified_bytes;
    assert!(
        had > 0 && had < big_size as u64,
        "some pieces were written: {had}"
    );
    wait_for_id(
        &leecher,
        small_id,
        Duration::from_secs(60),
        "the other torrent",
        |t| t.state == TorrentState::Finished,
    );

    tmpfs.resize(16 * 1024);
    leecher.send(Command::Resume(big_id));
    let t = wait_for_id(
        &leecher,
        big_id,
        Duration::from_secs(60),
        "the resumed download",
        |t| t.state == TorrentState::Finished,
    );
    assert_eq!(t.verified_bytes, big_size as u64);
    assert!(
        std::fs::read(tmpfs.path().join("big.bin")).unwrap()
            == std::fs::read(src.path().join("big.bin")).unwrap(),
        "the data is whole"
    );
    std::thread::sleep(Duration::from_millis(1500)); // the seeder's snapshot catches up
    let sent = big_seeder.snapshot().torrents[0].uploaded;
    println!("disk full: {had} bytes verified before the error; {sent} sent for {big_size}");
    // Verified pieces are kept across the error; only what was in flight comes again.
    assert!(
        sent <= big_size as u64 + (2 << 20),
        "{sent} bytes sent for {big_size}"
    );
    drop(leecher);
}

#[test]
fn data_truncated_or_deleted_under_a_seeder_is_rechecked_not_served() {
    let tracker = TestTracker::start();
    let src = tempfile::tempdir().unwrap();
    let size = 1 << 20;
    let (path, torrent) = seeded(src.path(), "video.bin", size, 7, &tracker.url);
    let id = Metainfo::from_bytes(&torrent).unwrap().info_hash;
    let (_seed_state, seeder) = start_seeder(&torrent, src.path(), 0);

    // Half the file goes away under the seeder.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(size as u64 / 2)
        .unwrap();
    let (state, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let leecher = session(state.path(), 0);
    add(&leecher, &torrent, out.path(), false);
    let t = wait_for_id(
        &seeder,
        id,
        Duration::from_secs(30),
        "the seeder's recheck",
        |t| t.state == TorrentState::Downloading,
    );
    assert_eq!(
        t.verified_bytes,
        size as u64 / 2,
        "only the half still there counts"
    );
    // The leecher gets the half that exists, all of it verified, and nothing else.
    let t = wait_for_id(&leecher, id, Duration::from_secs(30), "the half", |t| {
        t.verified_bytes == size as u64 / 2
    });
    assert_eq!(t.state, TorrentState::Downloading);
    // What went over the wire: the seeder sent no byte of the missing half (no zeros, no
    // stale cache), and the leecher holds exactly the source's first half.
    std::thread::sleep(Duration::from_secs(2)); // anything still on its way arrives
    let half = size as u64 / 2;
    let sent = seeder.snapshot().torrents[0].uploaded;
    let received = leecher.snapshot().torrents[0].downloaded;
    println!("truncated seeder: {sent} bytes sent, {received} received, {half} exist");
    assert!(
        sent <= half,
        "the seeder sent {sent} bytes; only {half} exist"
    );
    assert!(received <= half, "the leecher received {received} bytes");
    let original = data(size, 7);
    let got = std::fs::read(out.path().join("video.bin")).unwrap();
    assert_eq!(
        got.get(..half as usize),
        Some(&original[..half as usize]),
        "the leecher's first half is the source's"
    );

    // A file deleted under another seeder (still complete): its periodic look at its files
    // (every 60 s while it has no peers; the first one 50 to 60 s after it starts) finds it gone, and the recheck leaves nothing to
    // serve.
    let (path, torrent) = seeded(src.path(), "audio.bin", 300_000, 8, &tracker.url);
    let id = Metainfo::from_bytes(&torrent).unwrap().info_hash;
    let (_state2, second) = start_seeder(&torrent, src.path(), 0);
    std::fs::remove_file(&path).unwrap();
    let t = wait_for_id(
        &second,
        id,
        Duration::from_secs(75),
        "the recheck of a deleted file",
        |t| t.state == TorrentState::Downloading,
    );
    assert_eq!(t.verified_bytes, 0);
}
