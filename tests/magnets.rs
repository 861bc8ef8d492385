//! Magnet links (BEP 9) and peer exchange (BEP 11) on loopback: a link fetches its metadata
//! from a Rivulet seeder and downloads; a link added to be confirmed waits for the front end;
//! links are paused, restored after a restart and removed while they fetch; hostile peers
//! offering metadata are dropped and the fetch completes from an honest one; a leecher learns
//! a peer it was never told of through PEX, except on a private torrent.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::*;
use rivulet::bencode::Value;
use rivulet::create::{CreateOptions, CreateProgress, create_torrent};
use rivulet::engine::{AddMagnet, Command, Event, SessionHandle, TorrentState};
use rivulet::ids::InfoHash;
use rivulet::magnet::{MagnetLink, PeerAddress};
use rivulet::metainfo::Metainfo;
use sha1::{Digest, Sha1};

const PIECE: u64 = 16 * 1024;

const FILES: &[(&str, usize)] = &[
    ("show/e01.mkv", 300_000),
    ("show/e02.mkv", 250_001),
    ("show/notes.txt", 1_000),
];

fn magnet(info_hash: InfoHash, name: &str, trackers: &[&str], peers: &[SocketAddr]) -> String {
    MagnetLink {
        info_hash,
        name: Some(name.into()),
        trackers: trackers.iter().map(|t| t.to_string()).collect(),
        peers: peers.iter().map(|p| PeerAddress::Ip(*p)).collect(),
        select_only: None,
        exact_length: None,
    }
    .to_string()
}

fn add_magnet(session: &SessionHandle, uri: &str, save_dir: &Path, confirm: bool) {
    session.send(Command::AddMagnet(AddMagnet {
        uri: uri.to_string(),
        save_dir: save_dir.to_path_buf(),
        paused: false,
        seed: true,
        confirm,
    }));
}

/// Waits for the first event `pick` takes.
fn wait_event<T>(
    session: &mut SessionHandle,
    timeout: Duration,
    what: &str,
    pick: impl Fn(Event) -> Option<T>,
) -> T {
    let start = Instant::now();
    while start.elapsed() < timeout {
        match session.try_event() {
            Some(event) => {
                if let Some(found) = pick(event) {
                    return found;
                }
            }
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    panic!("timed out waiting for {what}");
}

fn seeded_torrent(tracker: &str) -> (tempfile::TempDir, Vec<u8>, Metainfo) {
    let seed_dir = tempfile::tempdir().unwrap();
    write_files(seed_dir.path(), FILES);
    let torrent = torrent_for(&seed_dir.path().join("show"), PIECE, tracker);
    let meta = Metainfo::from_bytes(&torrent).unwrap();
    (seed_dir, torrent, meta)
}

#[test]
fn a_magnet_link_fetches_its_metadata_then_downloads_and_a_restart_does_not_fetch_again() {
    let tracker = TestTracker::start();
    let (seed_dir, torrent, meta) = seeded_torrent(&tracker.url);
    let (_seeder_state, _seeder) = start_seeder(&torrent, seed_dir.path(), 0);

    let state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut leecher = session_with_state(state.path(), true);
    let link = magnet(meta.info_hash, "the show", &[&tracker.url], &[]);
    add_magnet(&leecher, &link, out.path(), false);
    let took = wait_event(
        &mut leecher,
        Duration::from_secs(20),
        "the metadata",
        |e| match e {
            Event::MetadataFetched { id, name, took } if id == meta.info_hash => {
                assert_eq!(name, "show", "the torrent's own name replaces the link's");
                Some(took)
            }
            _ => None,
        },
    );
    println!("metadata from one Rivulet seeder in {took:?}");
    let t = wait_for(&leecher, Duration::from_secs(60), "the download", |t| {
        t.state == TorrentState::Seeding
    });
    assert_eq!(t.total_size, meta.total_length);
    assert_eq!(
        leecher.snapshot().torrents.len(),
        1,
        "the torrent took the link's place"
    );
    assert_same_tree(seed_dir.path(), out.path());
    let saved = state
        .path()
        .join("torrents")
        .join(format!("{}.torrent", meta.info_hash.to_hex()));
    let fetched = Metainfo::from_bytes(&std::fs::read(&saved).unwrap()).unwrap();
    assert_eq!(fetched.info_hash, meta.info_hash);
    assert_eq!(fetched.trackers(), vec![vec![tracker.url.clone()]]);
    assert!(
        !saved.with_extension("magnet").exists(),
        "the link is forgotten once its torrent runs"
    );
    leecher.shutdown();

    // Restarted: the torrent is back as a torrent, its data verified, nothing fetched.
    let restarted = session_with_state(state.path(), true);
    let t = wait_for(
        &restarted,
        Duration::from_secs(20),
        "the restored torrent",
        |t| t.state == TorrentState::Seeding,
    );
    assert_eq!(t.id, meta.info_hash);
    assert_eq!(t.name, "show");
}

#[test]
fn a_link_added_to_be_confirmed_waits_for_the_front_end_and_keeps_its_place() {
    let tracker = TestTracker::start();
    let (seed_dir, torrent, meta) = seeded_torrent(&tracker.url);
    let (_seeder_state, _seeder) = start_seeder(&torrent, seed_dir.path(), 0);

    let state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut leecher = session_with_state(state.path(), false);
    // Another torrent first: the link's row is second, and stays second.
    let other_dir = tempfile::tempdir().unwrap();
    write_files(other_dir.path(), &[("other.bin", 40_000)]);
    let other = torrent_for(&other_dir.path().join("other.bin"), PIECE, &tracker.url);
    add(&leecher, &other, other_dir.path(), true);
    let link = magnet(meta.info_hash, "the show", &[&tracker.url], &[]);
    add_magnet(&leecher, &link, out.path(), true);
    let (bytes, save_dir) =
        wait_event(
            &mut leecher,
            Duration::from_secs(20),
            "the confirm",
            |e| match e {
                Event::ConfirmAdd {
                    id,
                    torrent,
                    save_dir,
                    ..
                } if id == meta.info_hash => Some((torrent, save_dir)),
                _ => None,
            },
        );
    assert_eq!(save_dir, out.path());
    let parsed = Metainfo::from_bytes(&bytes).unwrap();
    assert_eq!(parsed.info_hash, meta.info_hash);
    wait_for_id(
        &leecher,
        meta.info_hash,
        Duration::from_secs(5),
        "the row to wait for the user",
        |t| t.state == TorrentState::MetadataReceived,
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !out.path().join("show").exists(),
        "nothing is downloaded before the front end confirms"
    );

    // The front end confirms (the user may have chosen another folder).
    add(&leecher, &bytes, out.path(), true);
    wait_for_id(
        &leecher,
        meta.info_hash,
        Duration::from_secs(60),
        "the download",
        |t| t.state == TorrentState::Seeding,
    );
    let ids: Vec<InfoHash> = leecher.snapshot().torrents.iter().map(|t| t.id).collect();
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[1], meta.info_hash, "the torrent kept the link's place");
    assert_same_tree(seed_dir.path(), out.path());
}

#[test]
fn a_fetching_link_pauses_survives_a_restart_and_is_removed() {
    // A link nobody can answer: it fetches for ever.
    let nobody = TcpListener::bind("127.0.0.1:0").unwrap();
    let id = InfoHash([0x5a; 20]);
    let link = magnet(id, "nowhere", &[], &[nobody.local_addr().unwrap()]);
    let state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut session = session_with_state(state.path(), true);
    add_magnet(&session, &link, out.path(), false);
    let t = wait_for(&session, Duration::from_secs(5), "the link's row", |t| {
        t.state == TorrentState::FetchingMetadata
    });
    assert_eq!(t.name, "nowhere");
    assert_eq!(t.magnet_link().info_hash, id);
    add_magnet(&session, &link, out.path(), false);
    wait_event(&mut session, Duration::from_secs(5), "the duplicate", |e| {
        matches!(e, Event::Duplicate { id: d, .. } if d == id).then_some(())
    });
    session.send(Command::Pause(id));
    wait_for(&session, Duration::from_secs(5), "the pause", |t| {
        t.state == TorrentState::Paused && t.paused && t.connected_peers == 0
    });
    session.shutdown();

    let session = session_with_state(state.path(), true);
    let t = wait_for(&session, Duration::from_secs(5), "the restored link", |t| {
        t.id == id
    });
    assert_eq!(t.state, TorrentState::Paused, "restored as it was left");
    assert_eq!(t.save_dir, out.path());
    session.send(Command::Resume(id));
    wait_for(&session, Duration::from_secs(5), "the resume", |t| {
        t.state == TorrentState::FetchingMetadata
    });
    session.send(Command::Remove {
        id,
        delete_data: true,
    });
    let start = Instant::now();
    while !session.snapshot().torrents.is_empty() {
        assert!(start.elapsed() < Duration::from_secs(5), "not removed");
        std::thread::sleep(Duration::from_millis(20));
    }
    session.shutdown();
    let session = session_with_state(state.path(), true);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        session.snapshot().torrents.is_empty(),
        "a removed link stays removed"
    );
}

/// How a fake peer answers metadata requests.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Offer {
    /// The right pieces, after a pause before its extension handshake.
    Honest,
    /// Pieces of the right size whose whole fails the info hash.
    WrongData,
    /// Says in its handshake that the metadata is 2³¹ bytes.
    HugeSize,
    /// Answers with data whose `total_size` is 2³¹.
    HugeTotalSize,
    /// Answers with a piece past the end.
    OutOfRange,
    /// Answers with another piece than the one asked.
    Unasked,
}

struct FakeMetadataPeer {
    addr: SocketAddr,
    connections: Arc<AtomicU32>,
    answered: Arc<AtomicU32>,
    /// Rivulet closed a connection to it.
    dropped: Arc<AtomicBool>,
}

/// A peer on 127.0.0.`host` that offers `info` as `offer` says.
fn fake_metadata_peer(
    host: u8,
    info: Arc<Vec<u8>>,
    hash: InfoHash,
    offer: Offer,
) -> FakeMetadataPeer {
    let listener = TcpListener::bind(("127.0.0.".to_string() + &host.to_string(), 0)).unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicU32::new(0));
    let answered = Arc::new(AtomicU32::new(0));
    let dropped = Arc::new(AtomicBool::new(false));
    let (c, a, d) = (connections.clone(), answered.clone(), dropped.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            c.fetch_add(1, Ordering::Relaxed);
            let (info, a, d) = (info.clone(), a.clone(), d.clone());
            std::thread::spawn(move || {
                if serve_metadata(stream, &info, hash, offer, &a).is_err() {
                    d.store(true, Ordering::Relaxed);
                }
            });
        }
    });
    FakeMetadataPeer {
        addr,
        connections,
        answered,
        dropped,
    }
}

/// The id the fake wants `ut_metadata` messages under.
const FAKE_UT_METADATA: u8 = 3;

fn send_extended(stream: &mut TcpStream, id: u8, payload: &[u8]) -> std::io::Result<()> {
    let mut frame = ((payload.len() + 2) as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&[20, id]);
    frame.extend_from_slice(payload);
    stream.write_all(&frame)
}

fn data_message(piece: u32, total_size: u64, data: &[u8]) -> Vec<u8> {
    let mut payload = Value::dict([
        ("msg_type", Value::Int(1)),
        ("piece", Value::Int(piece.into())),
        ("total_size", Value::Int(total_size as i64)),
    ])
    .encode();
    payload.extend_from_slice(data);
    payload
}

/// Serves one connection until Rivulet closes it (an error is returned then).
fn serve_metadata(
    mut stream: TcpStream,
    info: &[u8],
    hash: InfoHash,
    offer: Offer,
    answered: &AtomicU32,
) -> std::io::Result<()> {
    let mut theirs = [0u8; 68];
    stream.read_exact(&mut theirs)?;
    let mut id = *b"-FK0001-metadatafake";
    id[19] = b'a' + offer as u8; // one peer id per fake peer
    let mut hello = handshake(&hash.0, &id);
    hello[25] |= 0x10; // BEP 10
    stream.write_all(&hello)?;
    if offer == Offer::Honest {
        // The dishonest peers have the first go.
        std::thread::sleep(Duration::from_millis(1500));
    }
    let size = if offer == Offer::HugeSize {
        1u64 << 31
    } else {
        info.len() as u64
    };
    let ours = Value::dict([
        (
            "m",
            Value::dict([("ut_metadata", Value::Int(FAKE_UT_METADATA.into()))]),
        ),
        ("metadata_size", Value::Int(size as i64)),
    ])
    .encode();
    send_extended(&mut stream, 0, &ours)?;
    let pieces = info.len().div_ceil(16384) as u32;
    loop {
        let mut len = [0u8; 4];
        stream.read_exact(&mut len)?;
        let mut frame = vec![0u8; u32::from_be_bytes(len) as usize];
        stream.read_exact(&mut frame)?;
        if frame.len() < 2 || frame[0] != 20 || frame[1] != FAKE_UT_METADATA {
            continue;
        }
        let request = rivulet::bencode::decode(&frame[2..]).unwrap();
        assert_eq!(request.get("msg_type").and_then(Value::as_int), Some(0));
        let piece = request.get("piece").and_then(Value::as_int).unwrap() as u32;
        let slice = |p: u32| {
            let start = p as usize * 16384;
            info[start..(start + 16384).min(info.len())].to_vec()
        };
        let reply = match offer {
            Offer::Honest | Offer::HugeSize => data_message(piece, size, &slice(piece)),
            Offer::WrongData => {
                let mut forged = slice(piece);
                forged[0] ^= 0xff;
                data_message(piece, size, &forged)
            }
            Offer::HugeTotalSize => data_message(piece, 1 << 31, &slice(piece)),
            Offer::OutOfRange => data_message(pieces + 5, size, &slice(0)),
            Offer::Unasked => {
                let other = if piece == 0 { 1 } else { 0 };
                data_message(other, size, &slice(other))
            }
        };
        send_extended(&mut stream, 2, &reply)?;
        answered.fetch_add(1, Ordering::Relaxed);
    }
}

/// An info dictionary of 11 metadata pieces: a 128 MiB file in 16 KiB pieces.
fn big_info() -> Vec<u8> {
    let pieces = 8192usize;
    let hashes: Vec<u8> = (0..pieces * 20).map(|i| (i * 31 % 251) as u8).collect();
    Value::dict([
        ("length", Value::Int((pieces * 16384) as i64)),
        ("name", Value::Bytes(b"big.bin".to_vec())),
        ("piece length", Value::Int(16384)),
        ("pieces", Value::Bytes(hashes)),
    ])
    .encode()
}

#[test]
fn hostile_metadata_is_refused_its_peers_dropped_and_the_fetch_completes() {
    let info = Arc::new(big_info());
    assert!(info.len() > 10 * 16384);
    let hash = InfoHash(Sha1::digest(info.as_slice()).into());
    let offers = [
        Offer::WrongData,
        Offer::HugeSize,
        Offer::HugeTotalSize,
        Offer::OutOfRange,
        Offer::Unasked,
        Offer::Honest,
    ];
    let peers: Vec<(Offer, FakeMetadataPeer)> = offers
        .iter()
        .enumerate()
        .map(|(i, &o)| (o, fake_metadata_peer(2 + i as u8, info.clone(), hash, o)))
        .collect();
    let addrs: Vec<SocketAddr> = peers.iter().map(|(_, p)| p.addr).collect();

    let state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut session = session(state.path(), 0);
    add_magnet(
        &session,
        &magnet(hash, "big", &[], &addrs),
        out.path(),
        false,
    );
    wait_event(&mut session, Duration::from_secs(30), "the metadata", |e| {
        matches!(e, Event::MetadataFetched { id, .. } if id == hash).then_some(())
    });
    let t = wait_for(&session, Duration::from_secs(10), "the torrent", |t| {
        t.total_size == 128 << 20
    });
    assert_eq!(t.name, "big.bin");
    for (offer, peer) in &peers {
        if *offer == Offer::Honest {
            assert!(
                peer.answered.load(Ordering::Relaxed) >= 1,
                "the honest peer served"
            );
            continue;
        }
        assert!(
            peer.dropped.load(Ordering::Relaxed),
            "{offer:?}: the peer was dropped"
        );
    }
    // A dropped peer is not dialled again, nor handed to the torrent.
    std::thread::sleep(Duration::from_secs(1));
    for (offer, peer) in &peers {
        if *offer != Offer::Honest {
            assert_eq!(
                peer.connections.load(Ordering::Relaxed),
                1,
                "{offer:?}: dialled once"
            );
        }
    }
    session.shutdown();
}

/// A seeds (no tracker, uploading slowly), B leeches from A (told A's address), C is told
/// only B's while B still downloads: with PEX, C learns A from B and connects to it; on a
/// private torrent it never does.
fn three_peers(private: bool) -> bool {
    let seed_dir = tempfile::tempdir().unwrap();
    write_files(seed_dir.path(), FILES);
    let options = CreateOptions {
        trackers: Vec::new(),
        piece_length: Some(PIECE),
        private,
        ..Default::default()
    };
    let torrent = create_torrent(
        &seed_dir.path().join("show"),
        &options,
        &CreateProgress::default(),
    )
    .unwrap();
    let meta = Metainfo::from_bytes(&torrent).unwrap();
    let (_a_state, a) = start_seeder(&torrent, seed_dir.path(), 100_000);
    let a_addr: SocketAddr = ([127, 0, 0, 1], a.listen_port()).into();

    let (b_state, b_out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let b = session(b_state.path(), 0);
    add(&b, &torrent, b_out.path(), true);
    b.send(Command::AddPeers(meta.info_hash, vec![a_addr]));
    wait_for(&b, Duration::from_secs(30), "B to download from A", |t| {
        t.peers.iter().any(|p| p.addr == a_addr) && t.verified_bytes > 0
    });
    let b_addr: SocketAddr = ([127, 0, 0, 1], b.listen_port()).into();

    let (c_state, c_out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let c = session(c_state.path(), 0);
    add(&c, &torrent, c_out.path(), true);
    c.send(Command::AddPeers(meta.info_hash, vec![b_addr]));
    let mut seen_a = false;
    wait_for(&c, Duration::from_secs(30), "C to finish", |t| {
        seen_a |= t.peers.iter().any(|p| p.addr == a_addr);
        t.state == TorrentState::Seeding
    });
    assert_same_tree(seed_dir.path(), c_out.path());
    seen_a
}

#[test]
fn a_leecher_learns_a_peer_through_pex_and_uses_it() {
    assert!(three_peers(false), "C never connected to A");
}

#[test]
fn a_private_torrent_neither_sends_nor_takes_pex() {
    assert!(!three_peers(true), "C learned A on a private torrent");
}

/// A peer sends a seeder a `ut_pex` message naming a listener: does the seeder dial it?
fn dials_a_peer_named_by_pex(private: bool) -> bool {
    let seed_dir = tempfile::tempdir().unwrap();
    write_files(seed_dir.path(), &[("one.bin", 50_000)]);
    let options = CreateOptions {
        piece_length: Some(PIECE),
        private,
        ..Default::default()
    };
    let torrent = create_torrent(
        &seed_dir.path().join("one.bin"),
        &options,
        &CreateProgress::default(),
    )
    .unwrap();
    let meta = Metainfo::from_bytes(&torrent).unwrap();
    let (_state, seeder) = start_seeder(&torrent, seed_dir.path(), 0);

    let named = TcpListener::bind("127.0.0.9:0").unwrap();
    named.set_nonblocking(true).unwrap();
    let named_addr = named.local_addr().unwrap();
    let mut peer = TcpStream::connect(("127.0.0.1", seeder.listen_port())).unwrap();
    let mut hello = handshake(&meta.info_hash.0, b"-FK0001-pexsenderabc");
    hello[25] |= 0x10; // BEP 10
    peer.write_all(&hello).unwrap();
    let mut theirs = [0u8; 68];
    peer.read_exact(&mut theirs).unwrap();
    let ours = Value::dict([("m", Value::dict([("ut_pex", Value::Int(1))]))]).encode();
    send_extended(&mut peer, 0, &ours).unwrap();
    let mut compact = match named_addr.ip() {
        std::net::IpAddr::V4(ip) => ip.octets().to_vec(),
        std::net::IpAddr::V6(_) => unreachable!("bound on IPv4"),
    };
    compact.extend_from_slice(&named_addr.port().to_be_bytes());
    // Sent under the id Rivulet offers for `ut_pex` on a public torrent (1), whatever it said.
    let pex = Value::dict([("added", Value::Bytes(compact))]).encode();
    send_extended(&mut peer, 1, &pex).unwrap();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(3) {
        if named.accept().is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn pex_from_a_peer_is_taken_on_a_public_torrent_only() {
    assert!(
        dials_a_peer_named_by_pex(false),
        "the public torrent ignored PEX"
    );
    assert!(
        !dials_a_peer_named_by_pex(true),
        "the private torrent took PEX"
    );
}
