//! A full check of data already on disk (issue 18's goal 4), through the engine as a user
//! meets it: a torrent added over its complete data, timed from `Add` to `Seeding`, with a
//! fresh session (no resume data) each time. Two layouts of the same total:
//!   one file     1 GiB, 1 MiB pieces;
//!   small files  10,000 files of about 105 KiB in 100 folders, 1 MiB pieces (most pieces span
//!                ten files).
//! The data is read once before timing, so it is in the page cache: what is measured is
//! hashing, reading and the engine, not the disk. Each layout is checked BENCH_RUNS times (3),
//! alternating; prints each run, the medians, the process's CPU per wall second during the
//! checks (how many cores did the work), and the two targets:
//!   one file      ≤ 0.5 s
//!   small files   ≤ 2× the one file's median
//!
//!     cargo bench --bench recheck
//!
//! BENCH_SIZE_MIB sets the total (default 1024). The data is deleted at the end.

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use rivulet::engine::TorrentState;

const SMALL_FILES: usize = 10_000;
const PIECE: u64 = 1 << 20;

fn main() {
    let total_mib: usize = env_number("BENCH_SIZE_MIB", 1024);
    let runs: usize = env_number("BENCH_RUNS", 3);
    let total = total_mib << 20;
    let work = tempfile::tempdir().expect("temp dir");
    let one = work.path().join("one");
    let small = work.path().join("small");
    let tracker = "http://127.0.0.1:9/announce";

    std::fs::create_dir_all(&one).expect("folder");
    std::fs::write(one.join("disc.iso"), common::data(total, 1)).expect("payload");
    let one_torrent = common::torrent_for(&one.join("disc.iso"), PIECE, tracker);
    let bytes = common::data(total, 2);
    let per_file = total.div_ceil(SMALL_FILES);
    for (i, chunk) in bytes.chunks(per_file).enumerate() {
        let folder = small.join("photos").join(format!("{:02}", i % 100));
        std::fs::create_dir_all(&folder).expect("folder");
        std::fs::write(folder.join(format!("img-{i:05}.jpg")), chunk).expect("payload");
    }
    drop(bytes);
    let small_torrent = common::torrent_for(&small.join("photos"), PIECE, tracker);
    let files = count_files(&small);
    println!(
        "recheck: {total_mib} MiB as one file, and as {files} files under one folder, 1 MiB pieces, in the page cache"
    );

    let mut times = [Vec::new(), Vec::new()];
    let mut cores = [Vec::new(), Vec::new()];
    for run in 1..=runs {
        let order = if run % 2 == 1 { [0, 1] } else { [1, 0] };
        for which in order {
            let (name, torrent, dir) = match which {
                0 => ("one file", &one_torrent, &one),
                _ => ("small files", &small_torrent, &small),
            };
            warm(dir);
            let (took, used) = check(torrent, dir);
            println!(
                "  {name:11} run {run}: {:.3} s, {used:.2} cores busy",
                took.as_secs_f64()
            );
            times[which].push(took.as_secs_f64());
            cores[which].push(used);
        }
    }
    let one_median = median(&mut times[0]);
    let small_median = median(&mut times[1]);
    let ratio = small_median / one_median;
    println!(
        "one file     median {one_median:.3} s, {:.2} cores busy, target <= 0.5 s: {}",
        median(&mut cores[0]),
        verdict(one_median <= 0.5)
    );
    println!(
        "small files  median {small_median:.3} s, {:.2} cores busy, {ratio:.2}x the one file, target <= 2x: {}",
        median(&mut cores[1]),
        verdict(ratio <= 2.0)
    );
}

/// Adds `torrent` over its complete data in `dir` to a fresh session and waits until it
/// seeds. Returns the time taken and the CPU seconds per wall second meanwhile.
fn check(torrent: &[u8], dir: &Path) -> (Duration, f64) {
    let state = tempfile::tempdir().expect("temp dir");
    let session = common::session(state.path(), 0);
    let cpu = common::process_cpu_seconds();
    let started = Instant::now();
    common::add(&session, torrent, dir, true);
    loop {
        let snapshot = session.snapshot();
        match snapshot.torrents.first().map(|t| &t.state) {
            Some(TorrentState::Seeding) => break,
            Some(TorrentState::Error(e)) => panic!("the check failed: {e}"),
            Some(TorrentState::Downloading) => panic!("the check found pieces missing"),
            _ => {}
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the check took over 2 minutes"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let took = started.elapsed();
    let used = (common::process_cpu_seconds() - cpu) / took.as_secs_f64();
    session.shutdown();
    (took, used)
}

/// Reads every file under `dir`, so the check that follows finds it in the page cache.
fn warm(dir: &Path) {
    let mut buf = vec![0; 1 << 20];
    for entry in walk(dir) {
        let mut file = std::fs::File::open(entry).expect("open");
        while file.read(&mut buf).expect("read") > 0 {}
    }
}

fn count_files(dir: &Path) -> usize {
    walk(dir).len()
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(folder).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                folders.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn verdict(met: bool) -> &'static str {
    if met { "PASS" } else { "FAIL" }
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
