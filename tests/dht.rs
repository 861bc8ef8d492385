//! The DHT (BEP 5) on a loopback network of 30 nodes, each on its own address in 127.0.0.0/8,
//! inside a network namespace that has only `lo` (see `common::netns`): nothing here can
//! reach, or even resolve, a public router.
//!
//! A trackerless torrent is found and downloaded by a node that knows one router only, and
//! so is a magnet link with neither trackers nor peers; a restarted node answers from its
//! saved routing table without a word to the router; a flood of queries from one address is
//! answered only within the per-address limit, while others are still served. Cold
//! bootstrap and warm start times are printed (`-- --nocapture`).

mod common;

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use common::netns::in_loopback_namespace;
use common::*;
use rivulet::create::{CreateOptions, CreateProgress, create_torrent};
use rivulet::dht::{Dht, DhtConfig};
use rivulet::engine::{
    AddMagnet, Command, PeerSource, Session, SessionConfig, SessionHandle, TorrentState,
};
use rivulet::metainfo::Metainfo;

const PORT: u16 = 6881;
/// The router every node bootstraps from.
const ROUTER: &str = "127.0.0.10:6881";

fn addr(host: u8) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::new(127, 0, 0, host), PORT))
}

fn runtime() -> tokio::runtime::Runtime {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Bare DHT nodes on 127.0.0.10 and up, each bootstrapping from the first.
fn network(rt: &tokio::runtime::Runtime, count: u8) -> Vec<Dht> {
    (0..count)
        .map(|i| {
            rt.block_on(Dht::start(DhtConfig {
                bind: addr(10 + i),
                bootstrap: vec![ROUTER.into()],
                state_file: None,
            }))
            .unwrap()
        })
        .collect()
}

/// A session on 127.0.0.`host` with a DHT node bootstrapping from `router`.
fn dht_session(state: &Path, host: u8, router: &str) -> SessionHandle {
    let mut config = SessionConfig::with_state_dir(state.to_path_buf());
    config.restore_saved = false;
    config.bind = rivulet::net::Binding::Address(Ipv4Addr::new(127, 0, 0, host).into());
    config.listen_port = PORT;
    config.dht = Some(vec![router.to_string()]);
    Session::start(config, None).unwrap()
}

/// Waits until a DHT search from `probe` finds `peer` for `info_hash`.
fn wait_announced(
    rt: &tokio::runtime::Runtime,
    probe: &Dht,
    info_hash: [u8; 20],
    peer: SocketAddr,
) {
    let start = Instant::now();
    loop {
        let mut found = probe.get_peers(info_hash, None);
        let seen = rt.block_on(async {
            while let Some(batch) = found.recv().await {
                if batch.contains(&peer) {
                    return true;
                }
            }
            false
        });
        if seen {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{peer} was never announced"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn trackerless(dir: &Path) -> (Vec<u8>, Metainfo) {
    write_files(dir, &[("show/a.bin", 300_000), ("show/b.bin", 70_001)]);
    let options = CreateOptions {
        piece_length: Some(32 * 1024),
        ..Default::default()
    };
    let torrent = create_torrent(&dir.join("show"), &options, &CreateProgress::default()).unwrap();
    let meta = Metainfo::from_bytes(&torrent).unwrap();
    (torrent, meta)
}

#[test]
fn a_trackerless_torrent_and_a_bare_magnet_are_found_through_the_dht() {
    if !in_loopback_namespace("a_trackerless_torrent_and_a_bare_magnet_are_found_through_the_dht") {
        return;
    }
    let rt = runtime();
    let nodes = network(&rt, 28);
    // Cold bootstrap: a new node's time to 8 good nodes.
    let start = Instant::now();
    let fresh = rt
        .block_on(Dht::start(DhtConfig {
            bind: addr(60),
            bootstrap: vec![ROUTER.into()],
            state_file: None,
        }))
        .unwrap();
    while fresh.stats().good_nodes < 8 {
        assert!(start.elapsed() < Duration::from_secs(30), "no 8 good nodes");
        std::thread::sleep(Duration::from_millis(20));
    }
    println!("cold bootstrap to 8 good nodes: {:?}", start.elapsed());

    let seed_dir = tempfile::tempdir().unwrap();
    let (torrent, meta) = trackerless(seed_dir.path());
    let seed_state = tempfile::tempdir().unwrap();
    let seeder = dht_session(seed_state.path(), 2, ROUTER);
    add(&seeder, &torrent, seed_dir.path(), true);
    wait_for(&seeder, Duration::from_secs(20), "the seeder", |t| {
        t.state == TorrentState::Seeding
    });
    wait_announced(&rt, &nodes[5], meta.info_hash.0, addr(2));

    // A leecher that knows one other node only.
    let (state, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let leecher = dht_session(state.path(), 3, "127.0.0.20:6881");
    add(&leecher, &torrent, out.path(), true);
    let t = wait_for(
        &leecher,
        Duration::from_secs(60),
        "the trackerless download",
        |t| t.state == TorrentState::Seeding,
    );
    assert_same_tree(seed_dir.path(), out.path());
    let dht = t
        .sources
        .iter()
        .find(|s| s.source == PeerSource::Dht)
        .unwrap();
    assert!(dht.peers >= 1, "the DHT gave the seeder: {dht:?}");

    // A magnet link with neither trackers nor peers.
    let (state, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let fetcher = dht_session(state.path(), 4, "127.0.0.30:6881");
    fetcher.send(Command::AddMagnet(AddMagnet {
        uri: format!("magnet:?xt=urn:btih:{}", meta.info_hash.to_hex()),
        save_dir: out.path().to_path_buf(),
        paused: false,
        seed: true,
        confirm: false,
    }));
    wait_for(
        &fetcher,
        Duration::from_secs(60),
        "the magnet's download",
        |t| t.state == TorrentState::Seeding,
    );
    assert_same_tree(seed_dir.path(), out.path());
    for session in [leecher, fetcher, seeder] {
        session.shutdown();
    }
    drop(nodes);
}

#[test]
fn a_restarted_node_answers_from_its_saved_table_without_the_router() {
    if !in_loopback_namespace("a_restarted_node_answers_from_its_saved_table_without_the_router") {
        return;
    }
    let rt = runtime();
    let _nodes = network(&rt, 20);
    // A router that only counts what reaches it, on an address of its own.
    let counter = UdpSocket::bind(addr(99)).unwrap();
    counter.set_nonblocking(true).unwrap();
    let state = tempfile::tempdir().unwrap();
    let file = state.path().join("dht.dat");
    let config = |router: &str| DhtConfig {
        bind: addr(70),
        bootstrap: vec![router.into()],
        state_file: Some(file.clone()),
    };
    let first = rt.block_on(Dht::start(config(ROUTER))).unwrap();
    let start = Instant::now();
    while first.stats().good_nodes < 8 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "never bootstrapped"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    rt.block_on(first.shutdown());
    assert!(file.exists(), "the table was saved");

    // Warm start: the router it is given now never hears from it.
    let start = Instant::now();
    let second = rt.block_on(Dht::start(config("127.0.0.99:6881"))).unwrap();
    let mut found = second.get_peers([0x42; 20], None);
    rt.block_on(async { while found.recv().await.is_some() {} });
    let warm = start.elapsed();
    println!("warm start to a finished get_peers: {warm:?}");
    while second.stats().good_nodes < 8 {
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            second.stats()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(warm < Duration::from_secs(2), "{warm:?}");
    let mut buf = [0u8; 1500];
    assert!(
        counter.recv_from(&mut buf).is_err(),
        "the restarted node asked the router"
    );
}

#[test]
fn a_query_flood_from_one_address_is_cut_and_others_are_still_answered() {
    if !in_loopback_namespace("a_query_flood_from_one_address_is_cut_and_others_are_still_answered")
    {
        return;
    }
    let rt = runtime();
    let node = rt
        .block_on(Dht::start(DhtConfig {
            bind: addr(10),
            bootstrap: Vec::new(),
            state_file: None,
        }))
        .unwrap();
    let flooder = UdpSocket::bind(addr(50)).unwrap();
    let ping = b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe";
    let start = Instant::now();
    for _ in 0..10_000 {
        let _ = flooder.send_to(ping, addr(10));
    }
    let sent_in = start.elapsed();
    flooder
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut answers = 0;
    let mut buf = [0u8; 1500];
    while flooder.recv_from(&mut buf).is_ok() {
        answers += 1;
    }
    println!("10,000 pings in {sent_in:?}: {answers} answered");
    let seconds = sent_in.as_secs() as u32 + 2;
    assert!(
        answers <= 50 * seconds,
        "{answers} answers to one address in {sent_in:?}"
    );
    assert!(answers > 0, "the first ones are answered");
    let other = UdpSocket::bind(addr(51)).unwrap();
    other
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    other.send_to(ping, addr(10)).unwrap();
    assert!(
        other.recv_from(&mut buf).is_ok(),
        "another address is answered"
    );
    assert!(node.stats().bytes_out < 20_000, "{:?}", node.stats());
}

#[test]
fn the_port_message_goes_both_ways_and_a_bad_token_is_refused() {
    if !in_loopback_namespace("the_port_message_goes_both_ways_and_a_bad_token_is_refused") {
        return;
    }
    use std::io::{Read, Write};
    // A seeder whose DHT node has no router.
    let dir = tempfile::tempdir().unwrap();
    let (torrent, meta) = trackerless(dir.path());
    let state = tempfile::tempdir().unwrap();
    let seeder = dht_session(state.path(), 2, "127.0.0.1:1");
    add(&seeder, &torrent, dir.path(), true);
    wait_for(&seeder, Duration::from_secs(20), "the seeder", |t| {
        t.state == TorrentState::Seeding
    });
    // A peer that says it runs a DHT node, on this UDP socket.
    let node = UdpSocket::bind(addr(9)).unwrap();
    node.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // From the node's address, so that the `port` message names it.
    let mut peer: std::net::TcpStream = {
        use socket2::{Domain, Socket, Type};
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        socket
            .bind(&SocketAddr::from((Ipv4Addr::new(127, 0, 0, 9), 0)).into())
            .unwrap();
        socket.connect(&addr(2).into()).unwrap();
        socket.into()
    };
    peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut hello = handshake(&meta.info_hash.0, b"-XX0001-dhtportpeer1");
    hello[27] |= 0x01; // BEP 5
    peer.write_all(&hello).unwrap();
    let mut theirs = [0u8; 68];
    peer.read_exact(&mut theirs).unwrap();
    assert_eq!(theirs[27] & 0x01, 0x01, "Rivulet says it runs a DHT node");
    // Rivulet's `port` message (id 9) names its DHT port.
    let start = Instant::now();
    let port = loop {
        let mut len = [0u8; 4];
        peer.read_exact(&mut len).unwrap();
        let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
        peer.read_exact(&mut body).unwrap();
        if body.first() == Some(&9) {
            break u16::from_be_bytes([body[1], body[2]]);
        }
        assert!(start.elapsed() < Duration::from_secs(5), "no port message");
    };
    assert_eq!(port, PORT);
    // Ours: Rivulet's node pings the one it names.
    let mut message = 3u32.to_be_bytes().to_vec();
    message.push(9);
    message.extend_from_slice(&PORT.to_be_bytes());
    peer.write_all(&message).unwrap();
    let mut buf = [0u8; 1500];
    let (n, from) = node
        .recv_from(&mut buf)
        .expect("a ping from Rivulet's node");
    assert_eq!(from, addr(2));
    let ping = rivulet::dht::krpc::Message::decode(&buf[..n]).unwrap();
    assert!(matches!(
        ping.body,
        rivulet::dht::krpc::Body::Query {
            query: rivulet::dht::krpc::Query::Ping,
            ..
        }
    ));
    // An announce with a token Rivulet never gave is refused with error 203.
    let forged = b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:porti6881e5:token6:forgede1:q13:announce_peer1:t2:bb1:y1:qe";
    node.send_to(forged, addr(2)).unwrap();
    let answer = loop {
        let (n, _) = node.recv_from(&mut buf).expect("an answer to the announce");
        let m = rivulet::dht::krpc::Message::decode(&buf[..n]).unwrap();
        if m.transaction == b"bb" {
            break m;
        }
    };
    assert!(
        matches!(
            answer.body,
            rivulet::dht::krpc::Body::Error { code: 203, .. }
        ),
        "{answer:?}"
    );
    seeder.shutdown();
}
