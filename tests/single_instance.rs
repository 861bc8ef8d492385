//! Double-clicking a .torrent while Rivulet runs: the second `rivulet X.torrent` hands its
//! files to the running window over the instance socket and exits 0; the window adds them.

mod common;

use std::process::Command as Process;
use std::time::{Duration, Instant};

use common::fakes::{FakeDesktop, FakeEngine};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use rivulet::engine::Command;
use rivulet::gui::{RivuletApp, Settings};
use rivulet::instance::{self, Claim};

const BIN: &str = env!("CARGO_BIN_EXE_rivulet");

#[test]
fn second_instance_hands_files_to_the_running_window() {
    let runtime = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    for name in ["one.bin", "two.bin"] {
        std::fs::write(work.path().join(name), common::data(30_000, 7)).unwrap();
        let torrent = common::torrent_for(
            &work.path().join(name),
            16384,
            "http://127.0.0.1:1/announce",
        );
        std::fs::write(work.path().join(format!("{name}.torrent")), torrent).unwrap();
    }

    // The running instance: the app, listening where `rivulet` looks for it.
    let socket = runtime.path().join("rivulet/instance.sock");
    let Claim::Primary(listener) = instance::claim(&socket, &[]).unwrap() else {
        panic!("first instance")
    };
    let engine = FakeEngine::default();
    let settings = Settings {
        download_dir: work.path().join("downloads"),
        ..Settings::default()
    };
    let app = RivuletApp::new(
        Box::new(engine.clone()),
        Box::new(FakeDesktop::default()),
        settings,
        None,
    );
    let tx = app.external_sender();
    listener.serve(
        move |args| {
            let _ = tx.send(args);
        },
        |_| String::new(),
    );
    let mut harness = Harness::builder()
        .with_size(egui::vec2(1200.0, 800.0))
        .build_ui_state(|ui, app: &mut RivuletApp| app.show(ui), app);
    harness.run_steps(2);

    // The second start, with relative paths as a file manager may pass them.
    let status = Process::new(BIN)
        .current_dir(work.path())
        .args(["one.bin.torrent", "two.bin.torrent"])
        .env("XDG_RUNTIME_DIR", runtime.path())
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .status()
        .unwrap();
    assert!(status.success(), "the second instance exits 0: {status}");

    let start = Instant::now();
    while harness.query_by_label("1 of 2").is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the running window never showed the files"
        );
        std::thread::sleep(Duration::from_millis(10));
        harness.step();
    }
    harness.get_by_label("Add all").click();
    harness.run_steps(2);
    let added = engine
        .take()
        .into_iter()
        .filter(|c| matches!(c, Command::Add(_)))
        .count();
    assert_eq!(added, 2);
}

#[test]
fn stale_socket_from_a_crashed_instance_does_not_block_start_up() {
    let runtime = tempfile::tempdir().unwrap();
    let socket = runtime.path().join("rivulet/instance.sock");
    std::fs::create_dir_all(socket.parent().unwrap()).unwrap();
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    assert!(socket.exists(), "a crashed instance left its socket behind");
    // With no display the window cannot open; what matters is that this start became the
    // instance instead of waiting on, or handing over to, the dead one.
    let start = Instant::now();
    let out = Process::new(BIN)
        .arg("/nonexistent/file.torrent")
        .env("XDG_RUNTIME_DIR", runtime.path())
        .env("HOME", runtime.path())
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(start.elapsed() < Duration::from_secs(10));
    assert!(!stderr.contains("handed over"), "{stderr}");
    assert!(stderr.contains("cannot open the window"), "{stderr}");
}
