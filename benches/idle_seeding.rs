//! A thousand seeding torrents with no peers: what they cost the engine while nothing
//! happens. Each torrent is one small file, checked, seeding, announced to a Rivulet tracker
//! on loopback (in this process, with the usual 30-minute interval). Measured over 30 s: the
//! process's CPU (the engine's threads and the tracker's; this thread only sleeps) and its
//! resident memory.
//!
//!     cargo bench --bench idle_seeding
//!
//! Targets (issue "Scale and durability"): idle CPU under 1 % of one core, RSS at most
//! 150 MiB. The benchmark exits with an error when a target is missed.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use rivulet::engine::{TorrentState, TrackerStatus, TrackersSummary};
use rivulet::tracker::server::{Access, RunningTracker, TrackerConfig};

const TORRENTS: usize = 1000;
const FILE_SIZE: usize = 48 * 1024;
const IDLE_SECONDS: u64 = 30;
const IDLE_TARGET_PERCENT: f64 = 1.0;
const RSS_TARGET_MIB: f64 = 150.0;

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let config = TrackerConfig::new([127, 0, 0, 1].into(), 0, Access::Open);
    let tracker = runtime
        .block_on(RunningTracker::start(config))
        .expect("tracker");
    let url = tracker.http_url("127.0.0.1");
    // The tracker's tasks run on this runtime, driven by a thread of their own.
    let (stop_tracker, stopped) = tokio::sync::oneshot::channel::<()>();
    let tracker_thread = std::thread::spawn(move || {
        runtime.block_on(async move {
            let _ = stopped.await;
            drop(tracker);
        })
    });
    let data = tempfile::tempdir().expect("temp dir");
    let state = tempfile::tempdir().expect("temp dir");
    let session = common::session(state.path(), 0);
    let started = Instant::now();
    for i in 0..TORRENTS {
        let path = data.path().join(format!("seed-{i:04}.bin"));
        std::fs::write(&path, common::data(FILE_SIZE, i as u64 + 1)).expect("payload");
        common::add(
            &session,
            &common::torrent_for(&path, 16384, &url),
            data.path(),
            true,
        );
    }
    let announced = |t: &rivulet::engine::TorrentSnapshot| {
        matches!(
            t.tracker_status,
            TrackersSummary::Tracker(TrackerStatus::Working { .. })
        )
    };
    while {
        let s = session.snapshot();
        s.torrents.len() < TORRENTS
            || !s
                .torrents
                .iter()
                .all(|t| t.state == TorrentState::Seeding && announced(t))
    } {
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "the torrents did not all check, seed and announce within 3 minutes"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    println!(
        "{TORRENTS} torrents of {} KiB checked, seeding and announced in {:.1} s",
        FILE_SIZE / 1024,
        started.elapsed().as_secs_f64()
    );
    // Let the start-up's resume saves, checks and announces finish.
    std::thread::sleep(Duration::from_secs(5));

    let (cpu0, wall0) = (common::process_cpu_seconds(), Instant::now());
    std::thread::sleep(Duration::from_secs(IDLE_SECONDS));
    let idle = (common::process_cpu_seconds() - cpu0) / wall0.elapsed().as_secs_f64() * 100.0;
    let rss = common::process_rss_mib();
    println!(
        "idle {IDLE_SECONDS} s, {TORRENTS} seeding torrents, no peers: {idle:.2} % of one core, RSS {rss:.1} MiB"
    );

    let mut missed = Vec::new();
    if idle > IDLE_TARGET_PERCENT {
        missed.push(format!("idle {idle:.2} % > {IDLE_TARGET_PERCENT} %"));
    }
    if rss > RSS_TARGET_MIB {
        missed.push(format!("RSS {rss:.1} MiB > {RSS_TARGET_MIB} MiB"));
    }
    session.shutdown();
    let _ = stop_tracker.send(());
    let _ = tracker_thread.join();
    if !missed.is_empty() {
        eprintln!("idle_seeding: FAILED: {}", missed.join("; "));
        std::process::exit(1);
    }
    println!(
        "idle_seeding: targets met (idle < {IDLE_TARGET_PERCENT} %, RSS <= {RSS_TARGET_MIB} MiB)"
    );
}
