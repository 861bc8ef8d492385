//! uTP between Rivulet sessions on loopback: a download over uTP only (the Peers tab says so
//! on both sides), and one through a relay that loses, delays and reorders datagrams.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use common::udp_relay::{Impairment, UdpRelay};
use common::*;
use rivulet::engine::{Command, Session, SessionConfig, SessionHandle, TorrentState};
use rivulet::metainfo::Metainfo;
use rivulet::net::TransportMode;

fn session_dialling(state: &Path, transport: TransportMode, upload_limit: u64) -> SessionHandle {
    let mut config = SessionConfig::with_state_dir(state.to_path_buf());
    config.restore_saved = false;
    config.bind = rivulet::net::Binding::Address(Ipv4Addr::LOCALHOST.into());
    config.listen_port = 0;
    config.transport = transport;
    config.upload_limit = upload_limit;
    Session::start(config, None).unwrap()
}

/// A seeder accepting uTP (uploading at most `upload_limit` B/s, 0: no limit), with `len`
/// bytes in one file; returns it, its torrent and the folders to keep.
fn utp_seeder(
    len: usize,
    upload_limit: u64,
) -> (SessionHandle, Vec<u8>, tempfile::TempDir, tempfile::TempDir) {
    let data = tempfile::tempdir().unwrap();
    write_files(data.path(), &[("film.mkv", len)]);
    let torrent = torrent_for(
        &data.path().join("film.mkv"),
        256 * 1024,
        "http://127.0.0.1:1/announce",
    );
    let state = tempfile::tempdir().unwrap();
    let seeder = session_dialling(state.path(), TransportMode::UtpFirst, upload_limit);
    add(&seeder, &torrent, data.path(), true);
    wait_for(
        &seeder,
        Duration::from_secs(30),
        "the seeder's check",
        |t| t.state == TorrentState::Seeding,
    );
    (seeder, torrent, data, state)
}

/// Downloads `torrent` over uTP only from `peer`, checking that every peer it sees is on
/// uTP, and calling `each` at every poll; returns the leecher's folder and the time taken.
fn download_over_utp(
    torrent: &[u8],
    peer: SocketAddr,
    limit: Duration,
    mut each: impl FnMut(),
) -> (tempfile::TempDir, Duration) {
    let id = Metainfo::from_bytes(torrent).unwrap().info_hash;
    let state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let leech = session_dialling(state.path(), TransportMode::UtpOnly, 0);
    add(&leech, torrent, out.path(), false);
    leech.send(Command::AddPeers(id, vec![peer]));
    let started = Instant::now();
    let mut saw_peer = false;
    wait_for(&leech, limit, "the download over uTP", |t| {
        each();
        assert!(
            t.peers.iter().all(|p| p.utp && p.flags.contains('P')),
            "a peer not on uTP: {:?}",
            t.peers
        );
        saw_peer |= !t.peers.is_empty();
        t.state == TorrentState::Finished
    });
    assert!(saw_peer);
    (out, started.elapsed())
}

#[test]
fn a_download_over_utp_only_completes_and_both_sides_show_utp() {
    // Limited to last a few seconds, so that both sides' snapshots show the connection.
    let (seeder, torrent, data, _state) = utp_seeder(16 << 20, 6 << 20);
    let seed_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, seeder.listen_port()));
    let mut seen = None;
    let (out, took) = download_over_utp(&torrent, seed_addr, Duration::from_secs(60), || {
        if let Some(p) = seeder
            .snapshot()
            .torrents
            .first()
            .and_then(|t| t.peers.first())
        {
            seen = Some(p.clone());
        }
    });
    assert_same_tree(data.path(), out.path());
    let seen = seen.expect("the seeder saw its leecher");
    assert!(seen.utp && seen.flags.contains('I'), "{seen:?}");
    eprintln!("16 MiB over uTP on loopback, seeder limited to 6 MiB/s, in {took:?}");
}

#[test]
fn a_download_over_a_lossy_reordering_link_verifies() {
    let (seeder, torrent, data, _state) = utp_seeder(6 << 20, 0);
    let seed_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, seeder.listen_port()));
    // 2% loss each way, 20-30 ms each way, 1% held back 30 ms more: reordered.
    let relay = UdpRelay::start(seed_addr, Impairment::lossy()).unwrap();
    let (out, took) = download_over_utp(&torrent, relay.addr(), Duration::from_secs(120), || {});
    assert_same_tree(data.path(), out.path());
    let stats = relay.stats();
    assert!(
        stats.to_target.dropped > 0 && stats.to_client.dropped > 0,
        "{stats:?}"
    );
    eprintln!("6 MiB through the lossy relay in {took:?}: {stats:?}");
}
