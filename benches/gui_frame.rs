//! The desktop app with 1,000 torrents loaded (most paused) on a real engine: frame time of
//! the UI (layout and tessellation, as eframe does before handing triangles to the GPU) and the
//! whole process's idle CPU.
//!
//!     cargo bench --bench gui_frame
//!
//! Targets (issue "Desktop app"): under 4 ms per frame, under 1 % CPU when idle.

#[allow(dead_code)]
#[path = "../tests/common/fakes.rs"]
mod fakes;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use rivulet::bencode::Value;
use rivulet::engine::{AddSource, AddTorrent, Command, Session, SessionConfig};
use rivulet::gui::{RivuletApp, Settings};

const TORRENTS: usize = 1000;
const ACTIVE: usize = 20;
const FRAMES: usize = 300;
const IDLE_SECONDS: u64 = 10;

/// A torrent of 64 KiB whose data exists nowhere (it stays paused or downloading).
fn torrent(i: usize) -> Vec<u8> {
    let mut info = BTreeMap::new();
    info.insert(
        b"name".to_vec(),
        Value::Bytes(format!("torrent-{i:04}.bin").into_bytes()),
    );
    info.insert(b"piece length".to_vec(), Value::Int(16384));
    info.insert(b"length".to_vec(), Value::Int(65536));
    let pieces: Vec<u8> = (0..80)
        .map(|b| (b as u8).wrapping_mul(31).wrapping_add(i as u8))
        .collect();
    let mut pieces = pieces;
    pieces[..8].copy_from_slice(&(i as u64).to_be_bytes());
    info.insert(b"pieces".to_vec(), Value::Bytes(pieces));
    let mut top = BTreeMap::new();
    top.insert(b"info".to_vec(), Value::Dict(info));
    Value::Dict(top).encode()
}

fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of /proc/PID/stat (11 and 12 after the name).
    (ticks(11) + ticks(12)) / 100.0
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let state = tempfile::tempdir().expect("temp dir");
    let downloads = tempfile::tempdir().expect("temp dir");
    let mut config = SessionConfig::with_state_dir(state.path().to_path_buf());
    config.listen_ip = std::net::Ipv4Addr::LOCALHOST.into();
    config.listen_port = 0;
    let session = Session::start(config, None).expect("session");
    for i in 0..TORRENTS {
        session.send(Command::Add(AddTorrent {
            source: AddSource::Bytes(torrent(i)),
            save_dir: downloads.path().to_path_buf(),
            paused: i >= ACTIVE,
            seed: true,
        }));
    }
    let start = Instant::now();
    while session.snapshot().torrents.len() < TORRENTS {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "torrents were not added"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let settings = Settings {
        download_dir: downloads.path().to_path_buf(),
        listen_port: 0,
        ..Settings::default()
    };
    let app = RivuletApp::new(
        Box::new(session),
        Box::new(fakes::FakeDesktop::default()),
        settings,
        None,
    );
    let mut harness = Harness::builder()
        .with_size(egui::vec2(1280.0, 800.0))
        .build_ui_state(|ui, app: &mut RivuletApp| app.show(ui), app);
    harness.run_steps(10);
    harness.get_by_label("torrent-0005.bin").click();
    harness.run_steps(5);

    let mut frames = Vec::with_capacity(FRAMES);
    for frame in 0..FRAMES {
        if frame % 50 == 25 {
            // Re-sort every so often: the column header is the topmost "Name".
            let header = harness
                .get_all_by_label("Name")
                .min_by(|a, b| a.rect().top().total_cmp(&b.rect().top()))
                .expect("the Name header");
            header.click();
        }
        let t = Instant::now();
        harness.step();
        let shapes = harness.output().shapes.clone();
        let ppp = harness.output().pixels_per_point;
        let _ = harness.ctx.tessellate(shapes, ppp);
        frames.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    frames.sort_by(f64::total_cmp);
    println!(
        "frame time with {TORRENTS} torrents ({ACTIVE} active): median {:.2} ms, p95 {:.2} ms, max {:.2} ms",
        percentile(&frames, 0.5),
        percentile(&frames, 0.95),
        frames[frames.len() - 1]
    );

    // Idle: like eframe, draw only when egui or the engine asks for it.
    let (cpu0, wall0) = (cpu_seconds(), Instant::now());
    let mut drawn = 0;
    while wall0.elapsed() < Duration::from_secs(IDLE_SECONDS) {
        if harness.ctx.has_requested_repaint() {
            harness.step();
            drawn += 1;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let cpu = cpu_seconds() - cpu0;
    println!(
        "idle for {IDLE_SECONDS} s: {:.2} % of one core ({cpu:.2} s CPU, {drawn} frames drawn)",
        cpu / wall0.elapsed().as_secs_f64() * 100.0
    );
}
