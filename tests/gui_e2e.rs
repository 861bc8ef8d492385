//! The desktop app over a real engine: a .torrent dropped on the window and added through the
//! dialog downloads to completion from a seeder on loopback; closed to the tray, the app goes
//! on seeding, and Quit stops it with `stopped` sent to the tracker.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::fakes::{Dropped, FakeDesktop, FakeTray};
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
    config.bind = rivulet::net::Binding::Address(std::net::Ipv4Addr::LOCALHOST.into());
    config.listen_port = 0;
    let engine = Session::start(config, None).unwrap();
    let settings = Settings {
        download_dir: downloads.path().to_path_buf(),
        listen_port: 0,
        seed_when_done: false,
        // Never a public router from a test or a benchmark.
        dht_enabled: false,
        // The app's engine stays on loopback and never looks for a router.
        port_mapping: false,
        network_interface: "127.0.0.1".into(),
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

/// Closing the window with close-to-tray on hides it and leaves the engine seeding: a leecher
/// still downloads the whole torrent from it. Quit in the tray menu closes the window for good,
/// and the app ends within 3 s with `stopped` sent: the tracker's scrape no longer counts it.
#[test]
fn closed_to_the_tray_it_keeps_seeding_and_quit_stops_it() {
    use rivulet::gui::tray::TrayAction;
    use rivulet::tracker::server::{Access, RunningTracker, TrackerConfig};
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let config = TrackerConfig::new([127, 0, 0, 1].into(), 0, Access::Open);
    let tracker = runtime.block_on(RunningTracker::start(config)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), &[("talk.webm", 3_000_000)]);
    let torrent = torrent_for(
        &dir.path().join("talk.webm"),
        64 * 1024,
        &tracker.http_url("127.0.0.1"),
    );
    let id = rivulet::metainfo::Metainfo::from_bytes(&torrent)
        .unwrap()
        .info_hash;
    let seeders = || tracker.swarms().scrape(&[id])[0].1.complete;

    let gui_state = tempfile::tempdir().unwrap();
    let engine = session(gui_state.path(), 0);
    add(&engine, &torrent, dir.path(), true);
    let settings = Settings {
        close_to_tray: true,
        dht_enabled: false,
        // The app's engine stays on loopback and never looks for a router.
        port_mapping: false,
        network_interface: "127.0.0.1".into(),
        lsd_enabled: false,
        ..Settings::default()
    };
    let desktop = FakeDesktop::default();
    let mut app = RivuletApp::new(Box::new(engine), Box::new(desktop), settings, None);
    let (tray, pending) = FakeTray::hosted();
    app.attach_tray(pending);
    let mut harness = Harness::builder()
        .with_size(egui::vec2(1200.0, 800.0))
        .build_ui_state(|ui, app: &mut RivuletApp| app.show(ui), app);
    let start = Instant::now();
    while seeders() == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the app never announced as a seeder: {:?}",
            harness.state().snapshot().torrents.first()
        );
        harness.step();
        std::thread::sleep(Duration::from_millis(20));
    }

    let commands = common::window::close_window(&mut harness);
    assert!(
        commands.contains(&egui::ViewportCommand::CancelClose)
            && commands.contains(&egui::ViewportCommand::Visible(false)),
        "closing hides the window instead: {commands:?}"
    );
    assert!(!harness.state().window_visible());
    harness.step();
    assert!(
        !tray.shown.lock().unwrap().last().unwrap().window_visible,
        "the tray's menu offers to show the window again"
    );

    // Nothing draws while hidden; the engine goes on by itself.
    let leecher_state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let leecher = session(leecher_state.path(), 0);
    add(&leecher, &torrent, out.path(), false);
    wait_for(
        &leecher,
        Duration::from_secs(60),
        "the leecher to download from the hidden app",
        |t| t.state == TorrentState::Finished,
    );
    assert_same_tree(dir.path(), out.path());
    drop(leecher);

    tray.click(TrayAction::Quit);
    harness.step();
    assert!(harness.state().quitting());
    let commands = common::window::window_commands(&harness);
    assert!(
        commands.contains(&egui::ViewportCommand::Close)
            && !commands.contains(&egui::ViewportCommand::CancelClose),
        "Quit closes the window: {commands:?}"
    );
    assert_eq!(seeders(), 1, "still seeding until the window is gone");
    // eframe drops the app once the window has closed; that stops the engine.
    let quit = Instant::now();
    drop(harness);
    let took = quit.elapsed();
    assert!(took < Duration::from_secs(3), "quitting took {took:?}");
    assert_eq!(seeders(), 0, "the tracker heard `stopped`");
    runtime.block_on(tracker.stop());
}
