//! The DHT with a thousand torrents: what announcing 1,000 seeding torrents costs in
//! bandwidth and memory. Runs in a network namespace with only `lo` (it starts itself again
//! under `unshare -rn`): a loopback DHT of 30 Rivulet nodes on 127.0.0.10–39, and one session
//! on 127.0.0.2 seeding 1,000 one-file torrents without trackers, its DHT bootstrapping from
//! the first node. Over [`MEASURE_SECONDS`] from the moment every torrent seeds it reports
//! the session's DHT bytes sent and received per second, its routing table, the announces
//! the network holds, and the process's peak RSS (the 30 nodes included).
//!
//!     cargo bench --bench dht_load

#[path = "../tests/common/mod.rs"]
mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use rivulet::create::{CreateOptions, CreateProgress, create_torrent};
use rivulet::dht::{Dht, DhtConfig};
use rivulet::engine::{Session, SessionConfig, TorrentState};

const TORRENTS: usize = 1000;
const NODES: u8 = 30;
const MEASURE_SECONDS: u64 = 120;

fn main() {
    if !common::netns::inside() {
        let exe = std::env::current_exe().expect("the bench's path");
        let status = std::process::Command::new("unshare")
            .arg("-rn")
            .arg(exe)
            .env("RIVULET_TEST_IN_NAMESPACE", "1")
            .status();
        match status {
            Ok(s) => std::process::exit(s.code().unwrap_or(1)),
            Err(e) => {
                eprintln!("dht_load: skipped: no network namespace of its own ({e})");
                return;
            }
        }
    }
    assert!(common::netns::in_loopback_namespace("dht_load"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let node_addr = |i: u8| SocketAddr::from((Ipv4Addr::new(127, 0, 0, 10 + i), 6881));
    let nodes: Vec<Dht> = (0..NODES)
        .map(|i| {
            runtime
                .block_on(Dht::start(DhtConfig {
                    bind: node_addr(i),
                    bootstrap: vec![node_addr(0).to_string()],
                    state_file: None,
                }))
                .expect("a node")
        })
        .collect();

    let data = tempfile::tempdir().expect("temp dir");
    let state = tempfile::tempdir().expect("temp dir");
    let mut config = SessionConfig::with_state_dir(state.path().to_path_buf());
    config.restore_saved = false;
    config.bind = rivulet::net::Binding::Address(Ipv4Addr::new(127, 0, 0, 2).into());
    config.listen_port = 6881;
    config.dht = Some(vec![node_addr(0).to_string()]);
    let session = Session::start(config, None).expect("session");
    let options = CreateOptions {
        piece_length: Some(16384),
        ..Default::default()
    };
    for i in 0..TORRENTS {
        let path = data.path().join(format!("seed-{i:04}.bin"));
        std::fs::write(&path, common::data(16 * 1024, i as u64 + 1)).expect("payload");
        let torrent = create_torrent(&path, &options, &CreateProgress::default()).expect("torrent");
        common::add(&session, &torrent, data.path(), true);
    }
    let started = Instant::now();
    while {
        let s = session.snapshot();
        s.torrents.len() < TORRENTS || !s.torrents.iter().all(|t| t.state == TorrentState::Seeding)
    } {
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "not all seeding"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let dht = |s: &rivulet::engine::SessionSnapshot| s.dht.clone().expect("the DHT runs");
    let before = dht(&session.snapshot());
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(MEASURE_SECONDS));
    let after = dht(&session.snapshot());
    let secs = t0.elapsed().as_secs_f64();
    let stored: usize = nodes.iter().map(|n| n.stats().peers).sum();
    println!(
        "{TORRENTS} torrents, {NODES}-node loopback DHT, {MEASURE_SECONDS} s after all seeded:"
    );
    println!(
        "  session DHT sent {:.0} B/s, received {:.0} B/s; {} nodes ({} good); {} lookups waiting or running",
        (after.bytes_out - before.bytes_out) as f64 / secs,
        (after.bytes_in - before.bytes_in) as f64 / secs,
        after.nodes,
        after.good_nodes,
        after.lookups,
    );
    println!("  announces held by the network: {stored} (of {TORRENTS} torrents × up to 8 nodes)");
    println!(
        "  process RSS (30 nodes and the session): {:.1} MiB",
        common::process_rss_mib()
    );
    session.shutdown();
}
