//! Local service discovery (BEP 14) inside a network namespace that has only `lo` (see
//! `common::netns`), so no multicast leaves the machine: two sessions on their own addresses,
//! with no tracker and no DHT, find each other and the download completes; a private torrent
//! is never announced.

mod common;

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use common::netns::in_loopback_namespace;
use common::*;
use rivulet::create::{CreateOptions, CreateProgress, create_torrent};
use rivulet::engine::{PeerSource, Session, SessionConfig, SessionHandle, TorrentState};
use rivulet::lsd::{Announce, GROUP, PORT};
use rivulet::metainfo::Metainfo;

fn lsd_session(state: &Path, host: u8) -> SessionHandle {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let mut config = SessionConfig::with_state_dir(state.to_path_buf());
    config.restore_saved = false;
    config.bind = rivulet::net::Binding::Address(Ipv4Addr::new(127, 0, 0, host).into());
    config.listen_port = 6881;
    config.lsd = true;
    Session::start(config, None).unwrap()
}

fn torrent(dir: &Path, private: bool) -> (Vec<u8>, Metainfo) {
    write_files(dir, &[("local.bin", 200_000)]);
    let options = CreateOptions {
        piece_length: Some(32 * 1024),
        private,
        ..Default::default()
    };
    let bytes =
        create_torrent(&dir.join("local.bin"), &options, &CreateProgress::default()).unwrap();
    let meta = Metainfo::from_bytes(&bytes).unwrap();
    (bytes, meta)
}

#[test]
fn two_sessions_find_each_other_on_the_local_network() {
    if !in_loopback_namespace("two_sessions_find_each_other_on_the_local_network") {
        return;
    }
    // A listener on the group, sharing the port as every LSD client does, sees what is
    // announced.
    let watcher = {
        use socket2::{Domain, Socket, Type};
        let socket = Socket::new(Domain::IPV4, Type::DGRAM, None).unwrap();
        socket.set_reuse_address(true).unwrap();
        socket.set_reuse_port(true).unwrap();
        socket
            .bind(&SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, PORT).into())
            .unwrap();
        UdpSocket::from(socket)
    };
    watcher
        .join_multicast_v4(&GROUP, &Ipv4Addr::new(127, 0, 0, 1))
        .unwrap();
    let seed_dir = tempfile::tempdir().unwrap();
    let (public, meta) = torrent(seed_dir.path(), false);
    let private_dir = tempfile::tempdir().unwrap();
    let (private, private_meta) = torrent(private_dir.path(), true);

    let seed_state = tempfile::tempdir().unwrap();
    let seeder = lsd_session(seed_state.path(), 2);
    add(&seeder, &public, seed_dir.path(), true);
    add(&seeder, &private, private_dir.path(), true);
    let (state, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let leecher = lsd_session(state.path(), 3);
    add(&leecher, &public, out.path(), true);
    let start = Instant::now();
    let t = wait_for(&leecher, Duration::from_secs(30), "the download", |t| {
        t.state == TorrentState::Seeding
    });
    println!("found through LSD and downloaded in {:?}", start.elapsed());
    assert_same_tree(seed_dir.path(), out.path());
    // Whoever started second was announced to the first, which dialled it.
    let lsd_peers = |t: &rivulet::engine::TorrentSnapshot| {
        t.sources
            .iter()
            .find(|s| s.source == PeerSource::Lsd)
            .map_or(0, |s| s.peers)
    };
    let seeding = seeder.snapshot();
    let seeder_side = seeding
        .torrents
        .iter()
        .find(|t| t.id == meta.info_hash)
        .unwrap();
    assert!(
        lsd_peers(&t) + lsd_peers(seeder_side) >= 1,
        "the peers came from LSD"
    );

    // What went out on the group: the public torrent, never the private one.
    {
        // What came before does not count.
        watcher
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        while watcher.recv_from(&mut [0u8; 1500]).is_ok() {}
        watcher
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        // Re-register by pausing and resuming: each start announces at once.
        for session in [&seeder] {
            for id in [meta.info_hash, private_meta.info_hash] {
                session.send(rivulet::engine::Command::Pause(id));
                session.send(rivulet::engine::Command::Resume(id));
            }
        }
        let mut seen = Vec::new();
        let mut buf = [0u8; 1500];
        let until = Instant::now() + Duration::from_secs(3);
        while Instant::now() < until {
            if let Ok((n, _)) = watcher.recv_from(&mut buf)
                && let Ok(a) = Announce::parse(&buf[..n])
            {
                seen.extend(a.info_hashes);
            }
        }
        assert!(
            seen.contains(&meta.info_hash),
            "the public torrent is announced"
        );
        assert!(
            !seen.contains(&private_meta.info_hash),
            "a private torrent is never announced"
        );
    }
}
