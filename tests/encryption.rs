//! Message stream encryption between Rivulet peers on loopback: every pair of policies either
//! downloads (with RC4 when both can, in the clear when one side will not encrypt) or, where
//! one requires encryption and the other refuses it, never connects.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use common::*;
use rivulet::engine::{Command, Session, SessionConfig, SessionHandle, TorrentState};
use rivulet::metainfo::Metainfo;
use rivulet::mse::EncryptionPolicy;

fn session_with(
    state: &std::path::Path,
    policy: EncryptionPolicy,
    upload_limit: u64,
) -> SessionHandle {
    let mut config = SessionConfig::with_state_dir(state.to_path_buf());
    config.restore_saved = false;
    config.bind = rivulet::net::Binding::Address(Ipv4Addr::LOCALHOST.into());
    config.listen_port = 0;
    config.upload_limit = upload_limit;
    config.encryption = policy;
    Session::start(config, None).unwrap()
}

/// What one leecher saw of its seeder.
#[derive(Debug, PartialEq)]
enum Seen {
    /// Finished; `encrypted` if the seeder's connection ever carried RC4.
    Downloaded { encrypted: bool },
    /// No connection in the time allowed.
    NeverConnected,
}

fn run_pair(seeder: EncryptionPolicy, leecher: EncryptionPolicy, expect_connection: bool) -> Seen {
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), &[("lecture.ogv", 2 * 1024 * 1024)]);
    let torrent = torrent_for(
        &dir.path().join("lecture.ogv"),
        32 * 1024,
        "http://127.0.0.1:1/announce",
    );
    let id = Metainfo::from_bytes(&torrent).unwrap().info_hash;
    let seed_state = tempfile::tempdir().unwrap();
    let seed = session_with(seed_state.path(), seeder, 1024 * 1024);
    add(&seed, &torrent, dir.path(), true);
    wait_for(&seed, Duration::from_secs(20), "the seeder's check", |t| {
        t.state == TorrentState::Seeding
    });
    let seed_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, seed.listen_port()));

    let leech_state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let leech = session_with(leech_state.path(), leecher, 0);
    add(&leech, &torrent, out.path(), false);
    leech.send(Command::AddPeers(id, vec![seed_addr]));
    let start = Instant::now();
    let limit = if expect_connection { 30 } else { 4 };
    let mut encrypted = false;
    loop {
        let snapshot = leech.snapshot();
        if let Some(t) = snapshot.torrents.first() {
            encrypted |= t.peers.iter().any(|p| p.flags.contains('E'));
            if t.state == TorrentState::Finished {
                assert_same_tree(dir.path(), out.path());
                return Seen::Downloaded { encrypted };
            }
            assert!(
                expect_connection || t.peers.is_empty(),
                "{seeder:?} → {leecher:?} connected: {:?}",
                t.peers
            );
        }
        if start.elapsed() > Duration::from_secs(limit) {
            return Seen::NeverConnected;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn every_pair_of_policies() {
    use EncryptionPolicy::*;
    let cases = [
        (Prefer, Prefer, Seen::Downloaded { encrypted: true }),
        (Prefer, Require, Seen::Downloaded { encrypted: true }),
        (Require, Prefer, Seen::Downloaded { encrypted: true }),
        (Require, Require, Seen::Downloaded { encrypted: true }),
        // The leecher's encrypted handshake is refused; it dials again in the clear.
        (Disabled, Prefer, Seen::Downloaded { encrypted: false }),
        (Prefer, Disabled, Seen::Downloaded { encrypted: false }),
        (Disabled, Disabled, Seen::Downloaded { encrypted: false }),
        (Require, Disabled, Seen::NeverConnected),
        (Disabled, Require, Seen::NeverConnected),
    ];
    let runs: Vec<_> = cases
        .into_iter()
        .map(|(seeder, leecher, expected)| {
            let connects = expected != Seen::NeverConnected;
            let run = std::thread::spawn(move || run_pair(seeder, leecher, connects));
            (seeder, leecher, expected, run)
        })
        .collect();
    for (seeder, leecher, expected, run) in runs {
        let seen = run.join().unwrap();
        assert_eq!(seen, expected, "seeder {seeder:?}, leecher {leecher:?}");
    }
}
