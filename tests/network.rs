//! Where sessions listen and dial from: IPv6 end to end (a tracker on `::1` answering with
//! `peers6`), one port taking peers of both families, and binding to a network interface that
//! goes away and comes back. The last two run in a network namespace of their own (see
//! `common::netns`), so nothing leaves the machine and the interface can be made and removed.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::Command as Process;
use std::time::{Duration, Instant};

use common::netns::in_loopback_namespace;
use common::*;
use rivulet::create::{CreateOptions, CreateProgress, create_torrent};
use rivulet::engine::{Command, TorrentState};
use rivulet::metainfo::Metainfo;
use rivulet::net::Binding;
use rivulet::tracker::server::{Access, RunningTracker, TrackerConfig};

/// Whether this machine can listen on `::1`.
fn has_ipv6_loopback() -> bool {
    std::net::TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).is_ok()
}

/// A seeder and a leecher both on `::1`, meeting through Rivulet's tracker on `::1`: the
/// tracker lists the seeder in `peers6`, the leecher dials it over IPv6 and the download
/// completes.
#[test]
fn a_swarm_on_ipv6_meets_through_peers6() {
    if !has_ipv6_loopback() {
        eprintln!("skipped a_swarm_on_ipv6_meets_through_peers6: no IPv6 loopback here");
        return;
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let config = TrackerConfig::new(Ipv6Addr::LOCALHOST.into(), 0, Access::Open);
    let tracker = runtime.block_on(RunningTracker::start(config)).unwrap();
    let url = tracker.http_url("[::1]");

    let data = tempfile::tempdir().unwrap();
    write_files(data.path(), &[("six.bin", 2 * 1024 * 1024)]);
    let torrent = torrent_for(&data.path().join("six.bin"), 64 * 1024, &url);
    let seed_state = tempfile::tempdir().unwrap();
    let six = Binding::Address(Ipv6Addr::LOCALHOST.into());
    let seeder = session_bound(seed_state.path(), six.clone(), 512 * 1024);
    add(&seeder, &torrent, data.path(), true);
    wait_for(&seeder, Duration::from_secs(20), "the seeder", |t| {
        t.state == TorrentState::Seeding
    });

    let leech_state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let leecher = session_bound(leech_state.path(), six, 0);
    add(&leecher, &torrent, out.path(), false);
    let downloading = wait_for(&leecher, Duration::from_secs(30), "an IPv6 peer", |t| {
        !t.peers.is_empty()
    });
    let peer = downloading.peers[0].addr;
    assert_eq!(peer.ip(), IpAddr::from(Ipv6Addr::LOCALHOST), "{peer}");
    assert_eq!(peer.port(), seeder.listen_port());
    wait_for(&leecher, Duration::from_secs(60), "the download", |t| {
        t.progress >= 1.0
    });
    assert_same_tree(data.path(), out.path());
}

/// A session bound to any address listens on one port for IPv4 and IPv6: a leecher on
/// 127.0.0.1 and one on ::1 both download from it.
#[test]
fn one_port_serves_peers_of_both_families() {
    if !in_loopback_namespace("one_port_serves_peers_of_both_families") {
        return;
    }
    if !has_ipv6_loopback() {
        eprintln!("skipped one_port_serves_peers_of_both_families: no IPv6 loopback here");
        return;
    }
    let data = tempfile::tempdir().unwrap();
    write_files(data.path(), &[("both.bin", 1024 * 1024)]);
    let options = CreateOptions {
        piece_length: Some(64 * 1024),
        ..Default::default()
    };
    let torrent = create_torrent(
        &data.path().join("both.bin"),
        &options,
        &CreateProgress::default(),
    )
    .unwrap();
    let seed_state = tempfile::tempdir().unwrap();
    let seeder = session_bound(seed_state.path(), Binding::Any, 0);
    add(&seeder, &torrent, data.path(), true);
    wait_for(&seeder, Duration::from_secs(20), "the seeder", |t| {
        t.state == TorrentState::Seeding
    });
    let id = Metainfo::from_bytes(&torrent).unwrap().info_hash;
    let port = seeder.listen_port();
    for ip in [
        IpAddr::from(Ipv4Addr::LOCALHOST),
        Ipv6Addr::LOCALHOST.into(),
    ] {
        let state = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        let leecher = session_bound(state.path(), Binding::Address(ip), 0);
        add(&leecher, &torrent, out.path(), false);
        leecher.send(Command::AddPeers(id, vec![SocketAddr::new(ip, port)]));
        wait_for(&leecher, Duration::from_secs(30), "the download", |t| {
            t.progress >= 1.0
        });
        assert_same_tree(data.path(), out.path());
    }
}

/// Makes interface `name` with `address` (a dummy one, or one end of a veth pair where this
/// kernel has no dummy interfaces), up.
fn add_interface(name: &str, address: &str) {
    let dummy = ip(&["link", "add", name, "type", "dummy"]);
    if !dummy {
        let peer = format!("{name}p");
        assert!(ip(&[
            "link", "add", name, "type", "veth", "peer", "name", &peer
        ]));
        assert!(ip(&["link", "set", &peer, "up"]));
    }
    assert!(ip(&["addr", "add", address, "dev", name]));
    assert!(ip(&["link", "set", name, "up"]));
}

fn ip(args: &[&str]) -> bool {
    Process::new("ip")
        .args(args)
        .status()
        .is_ok_and(|s| s.success())
}

/// A leecher bound to interface `rv0`: when the interface is removed, its connections end,
/// its torrent shows "network interface rv0 is down" and nothing more arrives (nothing falls
/// back to another interface); when it is back, the download resumes and completes.
#[test]
fn a_torrent_waits_while_its_interface_is_down() {
    if !in_loopback_namespace("a_torrent_waits_while_its_interface_is_down") {
        return;
    }
    if !ip(&["-V"]) {
        eprintln!("skipped a_torrent_waits_while_its_interface_is_down: no ip(8) here");
        return;
    }
    add_interface("rvseed", "10.98.0.1/24");
    add_interface("rv0", "10.99.0.1/24");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let config = TrackerConfig::new(Ipv4Addr::new(10, 98, 0, 1).into(), 0, Access::Open);
    let tracker = runtime.block_on(RunningTracker::start(config)).unwrap();
    let url = tracker.http_url("10.98.0.1");

    let data = tempfile::tempdir().unwrap();
    write_files(data.path(), &[("vpn.bin", 4 * 1024 * 1024)]);
    let torrent = torrent_for(&data.path().join("vpn.bin"), 64 * 1024, &url);
    let seed_state = tempfile::tempdir().unwrap();
    let seeder = session_bound(
        seed_state.path(),
        Binding::Interface("rvseed".into()),
        512 * 1024,
    );
    add(&seeder, &torrent, data.path(), true);
    wait_for(&seeder, Duration::from_secs(20), "the seeder", |t| {
        t.state == TorrentState::Seeding
    });

    let leech_state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let leecher = session_bound(leech_state.path(), Binding::Interface("rv0".into()), 0);
    add(&leecher, &torrent, out.path(), false);
    let connected = wait_for(&leecher, Duration::from_secs(30), "a peer over rv0", |t| {
        !t.peers.is_empty() && t.progress > 0.05
    });
    assert!(connected.progress < 0.9, "the download must still be going");
    assert_eq!(
        connected.peers[0].addr.ip(),
        IpAddr::from(Ipv4Addr::new(10, 98, 0, 1))
    );

    assert!(ip(&["link", "del", "rv0"]));
    let reason = "network interface rv0 is down";
    let offline = wait_for(
        &leecher,
        Duration::from_secs(10),
        "the torrent to wait",
        |t| t.state == TorrentState::Offline(reason.into()) && t.peers.is_empty(),
    );
    assert_eq!(leecher.snapshot().network_down.as_deref(), Some(reason));
    std::thread::sleep(Duration::from_secs(3));
    let later = wait_for(&leecher, Duration::from_secs(1), "the torrent", |_| true);
    assert_eq!(later.state, TorrentState::Offline(reason.into()));
    assert_eq!(
        later.verified_bytes, offline.verified_bytes,
        "nothing arrives while the interface is down"
    );
    assert!(later.peers.is_empty());

    let start = Instant::now();
    add_interface("rv0", "10.99.0.1/24");
    wait_for(
        &leecher,
        Duration::from_secs(60),
        "the download to resume",
        |t| t.progress >= 1.0,
    );
    assert!(leecher.snapshot().network_down.is_none());
    eprintln!("completed {:?} after rv0 came back", start.elapsed());
    assert_same_tree(data.path(), out.path());
}

/// A new binding from the settings ends the connections made from the old address, and the
/// download goes on from the new one.
#[test]
fn a_new_binding_moves_the_connections() {
    let data = tempfile::tempdir().unwrap();
    write_files(data.path(), &[("moved.bin", 2 * 1024 * 1024)]);
    let torrent = torrent_for(&data.path().join("moved.bin"), 64 * 1024, "");
    let (_seed_state, seeder) = start_seeder(&torrent, data.path(), 256 * 1024);
    let id = Metainfo::from_bytes(&torrent).unwrap().info_hash;
    let seeder_addr = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), seeder.listen_port());
    let from = |host: u8| IpAddr::from(Ipv4Addr::new(127, 0, 0, host));

    let state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let leecher = session_bound(state.path(), Binding::Address(from(2)), 0);
    add(&leecher, &torrent, out.path(), false);
    leecher.send(Command::AddPeers(id, vec![seeder_addr]));
    wait_for(
        &seeder,
        Duration::from_secs(20),
        "the leecher from .2",
        |t| t.peers.iter().any(|p| p.addr.ip() == from(2)),
    );

    leecher.send(Command::ApplySettings(engine_settings(
        leecher.listen_port(),
        Binding::Address(from(3)),
    )));
    let moved = wait_for(
        &seeder,
        Duration::from_secs(20),
        "the leecher from .3",
        |t| !t.peers.is_empty() && t.peers.iter().all(|p| p.addr.ip() == from(3)),
    );
    assert!(moved.peers.iter().all(|p| p.addr.ip() != from(2)));
    wait_for(&leecher, Duration::from_secs(60), "the download", |t| {
        t.progress >= 1.0
    });
    assert_same_tree(data.path(), out.path());
}
