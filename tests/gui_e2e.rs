//! The desktop app over a real engine: a .torrent dropped on the window and added through the
//! dialog downloads to completion from a seeder on loopback.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::fakes::{Dropped, FakeDesktop};
use common::*;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use rivulet::engine::{Session, SessionConfig, TorrentState};
use rivulet::gui::{RivuletApp, Settings};

#[test]
fn gui_drives_a_real_download_to_completion() {
    let tracker = TestTracker::start();
    let seed_dir = tempfile::tempdir().unwrap();
    write_files(
        seed_dir.path(),
        &[
            ("show/ep1.mkv", 600_000),
            ("show/ep2.mkv", 300_001),
            ("show/info.nfo", 99),
        ],
    );
    let torrent = torrent_for(&seed_dir.path().join("show"), 32 * 1024, &tracker.url);
    let torrent_file = seed_dir.path().join("show.torrent");
    std::fs::write(&torrent_file, &torrent).unwrap();
    let (_seeder_state, _seeder) = start_seeder(&torrent, seed_dir.path(), 0);

    let gui_state = tempfile::tempdir().unwrap();
    let downloads = tempfile::tempdir().unwrap();
    let mut config = SessionConfig::with_state_dir(gui_state.path().to_path_buf());
    config.listen_ip = std::net::Ipv4Addr::LOCALHOST.into();
    config.listen_port = 0;
    let engine = Session::start(config, None).unwrap();
    let settings = Settings {
        download_dir: downloads.path().to_path_buf(),
        listen_port: 0,
        seed_when_done: false,
        // Never a public router from a test or a benchmark.
        dht_enabled: false,
        lsd_enabled: false,
        ..Settings::default()
    };
    let app = RivuletApp::new(
        Box::new(engine),
        Box::new(FakeDesktop::default()),
        settings,
        None,
    );
    let mut harness = Harness::builder()
        .with_size(egui::vec2(1200.0, 800.0))
        .build_ui_state(|ui, app: &mut RivuletApp| app.show(ui), app);

    harness
        .input_mut()
        .dropped_files
        .push(Arc::new(Dropped(torrent_file)));
    let start = Instant::now();
    while harness.query_by_label("Add").is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the add dialog never opened"
        );
        std::thread::sleep(Duration::from_millis(10));
        harness.step();
    }
    harness.get_by_label("Add").click();
    harness.run_steps(2);
    loop {
        harness.step();
        let done = harness
            .state()
            .snapshot()
            .torrents
            .first()
            .is_some_and(|t| t.state == TorrentState::Finished);
        if done {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "download did not finish: {:?}",
            harness.state().snapshot().torrents.first()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        harness.query_by_label("Finished").is_some(),
        "the row shows the state"
    );
    assert_same_tree(
        seed_dir.path().join("show").as_path(),
        downloads.path().join("show").as_path(),
    );
}
