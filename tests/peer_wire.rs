//! The peer wire protocol against peers spoken by hand (raw sockets), so each test sees exactly
//! what Rivulet sends: seeding to peers that keep many requests in flight (every request is
//! answered, with its block or a BEP 6 reject, within seconds); the BEP 10 extension handshake
//! and our queue; hostile extension messages dropped or ignored, never fatal to anything but
//! their peer; a leecher facing a fast-extension seeder, and a seeder that vanishes mid-piece.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::*;
use rivulet::bencode;
use rivulet::metainfo::Metainfo;

const PIECE: u64 = 256 * 1024;
const BLOCK: u32 = 16 * 1024;
/// Reserved bytes with the extension protocol (BEP 10) and fast extension (BEP 6) bits.
const FAST_AND_EXTENDED: [u8; 8] = [0, 0, 0, 0, 0, 0x10, 0, 0x04];
const PLAIN: [u8; 8] = [0; 8];

const CHOKE: u8 = 0;
const UNCHOKE: u8 = 1;
const INTERESTED: u8 = 2;
const BITFIELD: u8 = 5;
const REQUEST: u8 = 6;
const PIECE_MSG: u8 = 7;
const HAVE_ALL: u8 = 14;
const REJECT: u8 = 16;
const ALLOWED_FAST: u8 = 17;
const EXTENDED: u8 = 20;

/// One side of a connection, spoken by hand.
struct RawPeer {
    stream: TcpStream,
}

impl RawPeer {
    /// Dials `addr` and exchanges handshakes; returns the peer and the reserved bytes it sent.
    fn dial(addr: SocketAddr, info_hash: &[u8; 20], reserved: [u8; 8]) -> (Self, [u8; 8]) {
        let stream = TcpStream::connect(addr).unwrap();
        let mut peer = RawPeer { stream };
        let theirs = peer.handshake(info_hash, reserved);
        (peer, theirs)
    }

    fn handshake(&mut self, info_hash: &[u8; 20], reserved: [u8; 8]) -> [u8; 8] {
        // A new peer id for every connection: the seeder refuses a second one with the same.
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let mut id = *b"-XX0001-rawpeer00000";
        let n = format!("{:05}", NEXT.fetch_add(1, Ordering::Relaxed) % 100_000);
        id[15..].copy_from_slice(n.as_bytes());
        let mut hello = handshake(info_hash, &id);
        hello[20..28].copy_from_slice(&reserved);
        self.stream.write_all(&hello).unwrap();
        let mut theirs = [0u8; 68];
        self.stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        self.stream.read_exact(&mut theirs).unwrap();
        theirs[20..28].try_into().unwrap()
    }

    fn send(&mut self, id: u8, payload: &[u8]) {
        let mut frame = (1 + payload.len() as u32).to_be_bytes().to_vec();
        frame.push(id);
        frame.extend_from_slice(payload);
        self.stream.write_all(&frame).unwrap();
    }

    fn send_block_message(&mut self, id: u8, index: u32, begin: u32, length: u32) {
        let mut payload = index.to_be_bytes().to_vec();
        payload.extend_from_slice(&begin.to_be_bytes());
        payload.extend_from_slice(&length.to_be_bytes());
        self.send(id, &payload);
    }

    /// The next message (id and payload), skipping keep-alives; `None` when the connection
    /// closed or nothing came before `deadline`.
    fn next(&mut self, deadline: Instant) -> Option<(u8, Vec<u8>)> {
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            self.stream
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .ok()?;
            let mut len = [0u8; 4];
            self.stream.read_exact(&mut len).ok()?;
            let len = u32::from_be_bytes(len) as usize;
            if len == 0 {
                continue;
            }
            let mut body = vec![0u8; len];
            self.stream.read_exact(&mut body).ok()?;
            let id = body.remove(0);
            return Some((id, body));
        }
    }

    /// Answers requests with the real bytes of `content` for up to a minute, or hangs up at the
    /// request after `stop_after` blocks.
    fn serve(&mut self, content: &[u8], piece: u64, stop_after: Option<usize>) {
        let mut served = 0;
        let far = Instant::now() + Duration::from_secs(60);
        while let Some((id, payload)) = self.next(far) {
            if id != REQUEST || payload.len() != 12 {
                continue;
            }
            if stop_after.is_some_and(|n| served >= n) {
                return;
            }
            let word = |i: usize| u32::from_be_bytes(payload[i..i + 4].try_into().unwrap());
            let (index, begin, length) = (word(0), word(4), word(8));
            let at = (index as u64 * piece + begin as u64) as usize;
            let mut body = index.to_be_bytes().to_vec();
            body.extend_from_slice(&begin.to_be_bytes());
            body.extend_from_slice(&content[at..at + length as usize]);
            self.send(PIECE_MSG, &body);
            served += 1;
        }
    }

    /// Reads until a message with `id` arrives; panics after 10 s.
    fn wait_for(&mut self, id: u8) -> Vec<u8> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Some((got, payload)) = self.next(deadline) {
            if got == id {
                return payload;
            }
        }
        panic!("no message {id} within 10 s");
    }

    /// Whether the other side closed the connection within `within`.
    fn closed_within(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            let _ = self
                .stream
                .set_read_timeout(Some(Duration::from_millis(200)));
            let mut buf = [0u8; 64 * 1024];
            match self.stream.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return true,
            }
        }
        false
    }
}

fn block_at(i: u32) -> (u32, u32) {
    let per_piece = (PIECE / BLOCK as u64) as u32;
    (i / per_piece, (i % per_piece) * BLOCK)
}

/// A seeder of 16 MiB (64 pieces of 256 KiB, 1,024 blocks); returns its address too.
struct Seeder {
    _tracker: TestTracker,
    _dir: tempfile::TempDir,
    _state: tempfile::TempDir,
    session: rivulet::engine::SessionHandle,
    content: Vec<u8>,
    meta: Metainfo,
    addr: SocketAddr,
}

fn seeder() -> Seeder {
    let tracker = TestTracker::start();
    let dir = tempfile::tempdir().unwrap();
    let content = data(16 << 20, 77);
    std::fs::write(dir.path().join("file.bin"), &content).unwrap();
    let torrent = torrent_for(&dir.path().join("file.bin"), PIECE, &tracker.url);
    let meta = Metainfo::from_bytes(&torrent).unwrap();
    let (state, session) = start_seeder(&torrent, dir.path(), 0);
    let port = session.snapshot().listen_port;
    Seeder {
        _tracker: tracker,
        _dir: dir,
        _state: state,
        session,
        content,
        meta,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
    }
}

/// What became of a burst of requests.
#[derive(Debug, Default)]
struct Answers {
    blocks: usize,
    rejects: usize,
    wrong: usize,
}

/// Sends interested, waits for the unchoke, sends `count` requests at once, and collects the
/// answers for up to 5 s (or until all came).
fn burst(peer: &mut RawPeer, s: &Seeder, count: u32) -> (Answers, Duration) {
    peer.send(INTERESTED, &[]);
    peer.wait_for(UNCHOKE);
    let mut requests = Vec::new();
    for i in 0..count {
        let (index, begin) = block_at(i);
        requests.extend_from_slice(&13u32.to_be_bytes());
        requests.push(REQUEST);
        for v in [index, begin, BLOCK] {
            requests.extend_from_slice(&v.to_be_bytes());
        }
    }
    peer.stream.write_all(&requests).unwrap();
    let start = Instant::now();
    let deadline = start + Duration::from_secs(5);
    let mut answers = Answers::default();
    while answers.blocks + answers.rejects < count as usize {
        let Some((id, payload)) = peer.next(deadline) else {
            break;
        };
        match id {
            PIECE_MSG => {
                let index = u32::from_be_bytes(payload[0..4].try_into().unwrap());
                let begin = u32::from_be_bytes(payload[4..8].try_into().unwrap());
                let at = (index as u64 * PIECE + begin as u64) as usize;
                if s.content.get(at..at + BLOCK as usize) == Some(&payload[8..]) {
                    answers.blocks += 1;
                } else {
                    answers.wrong += 1;
                }
            }
            REJECT => answers.rejects += 1,
            CHOKE => panic!("choked during the burst"),
            _ => {}
        }
    }
    (answers, start.elapsed())
}

#[test]
fn a_peer_without_extensions_gets_all_500_blocks() {
    let s = seeder();
    let (mut peer, reserved) = RawPeer::dial(s.addr, &s.meta.info_hash.0, PLAIN);
    assert_eq!(
        reserved,
        [0, 0, 0, 0, 0, 0x10, 0, 0x05],
        "Rivulet announces BEP 10, BEP 6 and BEP 5 (a DHT node)"
    );
    // No fast extension: a bitfield, never have-all.
    let bits = peer.wait_for(BITFIELD);
    assert!(bits.iter().all(|&b| b == 0xff));
    let (answers, took) = burst(&mut peer, &s, 500);
    println!("500 requests, no extensions: {answers:?} in {took:?}");
    assert_eq!(answers.blocks, 500, "{answers:?}");
    assert_eq!(answers.wrong, 0);
}

#[test]
fn a_fast_peer_gets_a_block_or_a_reject_for_each_of_600_requests() {
    let s = seeder();
    let (mut peer, _) = RawPeer::dial(s.addr, &s.meta.info_hash.0, FAST_AND_EXTENDED);
    let deadline = Instant::now() + Duration::from_secs(10);
    let (mut have_all, mut reqq, mut allowed_fast) = (false, None, 0);
    while reqq.is_none() || allowed_fast < 10 {
        let Some((id, payload)) = peer.next(deadline) else {
            break;
        };
        match id {
            HAVE_ALL => have_all = true,
            BITFIELD => panic!("a seeder speaking BEP 6 sends have all, not a bitfield"),
            ALLOWED_FAST => allowed_fast += 1,
            EXTENDED => {
                assert_eq!(payload[0], 0, "the extension handshake comes first");
                let dict = bencode::decode(&payload[1..]).unwrap();
                reqq = dict.get("reqq").and_then(|v| v.as_int());
                assert!(
                    dict.get("v")
                        .and_then(|v| v.as_str())
                        .unwrap()
                        .starts_with("Rivulet")
                );
                assert!(dict.get("m").and_then(|m| m.as_dict()).is_some());
                assert_eq!(
                    dict.get("yourip").and_then(|v| v.as_bytes()),
                    Some(&[127u8, 0, 0, 1][..])
                );
            }
            _ => {}
        }
    }
    assert!(have_all, "no have all");
    assert_eq!(reqq, Some(500), "the extension handshake tells our queue");
    assert_eq!(
        allowed_fast, 10,
        "ten allowed fast pieces for a choked newcomer"
    );
    let (answers, took) = burst(&mut peer, &s, 600);
    println!("600 requests, fast extension: {answers:?} in {took:?}");
    assert_eq!(answers.blocks + answers.rejects, 600, "{answers:?}");
    assert!(answers.blocks >= 500, "{answers:?}");
    assert_eq!(answers.wrong, 0);
}

#[test]
fn three_greedy_peers_at_once_each_get_every_block() {
    let s = seeder();
    let results: Vec<(Answers, Duration)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..3)
            .map(|_| {
                scope.spawn(|| {
                    let (mut peer, _) = RawPeer::dial(s.addr, &s.meta.info_hash.0, PLAIN);
                    burst(&mut peer, &s, 500)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (answers, took) in &results {
        println!("one of three peers: {answers:?} in {took:?}");
        assert_eq!(answers.blocks, 500, "{answers:?}");
    }
}

#[test]
fn allowed_fast_pieces_are_served_while_choked() {
    let s = seeder();
    let (mut peer, _) = RawPeer::dial(s.addr, &s.meta.info_hash.0, FAST_AND_EXTENDED);
    let index = u32::from_be_bytes(peer.wait_for(ALLOWED_FAST).try_into().unwrap());
    let not_allowed = (0..s.meta.piece_count()).find(|&i| i != index).unwrap();
    // Not interested, so never unchoked: one request of an allowed piece, one of another.
    peer.send_block_message(REQUEST, not_allowed, 0, BLOCK);
    peer.send_block_message(REQUEST, index, 0, BLOCK);
    let deadline = Instant::now() + Duration::from_secs(5);
    let (mut served, mut rejected) = (None, None);
    while served.is_none() || rejected.is_none() {
        let Some((id, payload)) = peer.next(deadline) else {
            break;
        };
        let piece = payload
            .get(0..4)
            .map(|b| u32::from_be_bytes(b.try_into().unwrap()));
        match id {
            PIECE_MSG => served = piece,
            REJECT => rejected = piece,
            UNCHOKE => panic!("unchoked without being interested"),
            _ => {}
        }
    }
    assert_eq!(served, Some(index));
    assert_eq!(rejected, Some(not_allowed));
}

/// Sends an extension handshake with `payload` (after id 0) and tells whether the connection
/// still serves a request afterwards.
fn still_served_after_extension_handshake(s: &Seeder, dict: &[u8]) -> bool {
    let (mut peer, _) = RawPeer::dial(s.addr, &s.meta.info_hash.0, FAST_AND_EXTENDED);
    let mut payload = vec![0u8];
    payload.extend_from_slice(dict);
    peer.send(EXTENDED, &payload);
    peer.send(INTERESTED, &[]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut unchoked = false;
    while let Some((id, _)) = peer.next(deadline) {
        if id == UNCHOKE && !unchoked {
            unchoked = true;
            peer.send_block_message(REQUEST, 1, 0, BLOCK);
        }
        if id == PIECE_MSG {
            return true;
        }
    }
    false
}

#[test]
fn odd_request_queues_are_ignored_and_a_huge_handshake_drops_only_its_peer() {
    let s = seeder();
    assert!(still_served_after_extension_handshake(&s, b"d4:reqqi0ee"));
    assert!(still_served_after_extension_handshake(
        &s,
        b"d4:reqqi4294967296ee"
    ));
    assert!(still_served_after_extension_handshake(
        &s,
        b"d4:reqqi-5e1:v3:\xff\xfe\x00e"
    ));
    // An extended message id nobody registered is ignored.
    assert!(still_served_after_extension_handshake(&s, b"de"));
    // Not a dictionary: that peer is dropped.
    let (mut bad, _) = RawPeer::dial(s.addr, &s.meta.info_hash.0, FAST_AND_EXTENDED);
    bad.send(EXTENDED, b"\x00li1ee");
    assert!(
        bad.closed_within(Duration::from_secs(5)),
        "a list as handshake"
    );
    // 10 MiB of extension handshake: dropped at the frame's length, before it is read.
    let (mut huge, _) = RawPeer::dial(s.addr, &s.meta.info_hash.0, FAST_AND_EXTENDED);
    let mut frame = (10u32 << 20).to_be_bytes().to_vec();
    frame.extend_from_slice(&[EXTENDED, 0, b'd']);
    huge.stream.write_all(&frame).unwrap();
    assert!(huge.closed_within(Duration::from_secs(5)), "a 10 MiB frame");
    // Have all without the fast extension is a protocol error.
    let (mut plain, _) = RawPeer::dial(s.addr, &s.meta.info_hash.0, PLAIN);
    plain.send(HAVE_ALL, &[]);
    assert!(
        plain.closed_within(Duration::from_secs(5)),
        "have all without BEP 6"
    );
    // The seeder is unharmed.
    assert!(still_served_after_extension_handshake(&s, b"d4:reqqi10ee"));
    assert_eq!(
        s.session.snapshot().torrents[0].state,
        rivulet::engine::TorrentState::Seeding
    );
}

/// A hand-written seeder for a leecher to find: it speaks BEP 6 and 10, says `have all` to a
/// leecher that has nothing yet, rejects a block nobody asked for, then serves real data.
#[test]
fn a_leecher_takes_have_all_and_stray_rejects_from_a_fast_seeder() {
    let tracker = TestTracker::start();
    let dir = tempfile::tempdir().unwrap();
    let content = data(4 << 20, 5);
    std::fs::write(dir.path().join("file.bin"), &content).unwrap();
    let torrent = torrent_for(&dir.path().join("file.bin"), PIECE, &tracker.url);
    let meta = Metainfo::from_bytes(&torrent).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    tracker.inject(meta.info_hash, listener.local_addr().unwrap());
    let info_hash = meta.info_hash.0;
    let served = content.clone();
    std::thread::spawn(move || {
        let Ok((stream, _)) = listener.accept() else {
            return;
        };
        let mut peer = RawPeer { stream };
        peer.handshake(&info_hash, FAST_AND_EXTENDED);
        peer.send(HAVE_ALL, &[]);
        peer.send(EXTENDED, b"\x00d4:reqqi4294967296e1:v8:handmadee");
        peer.send_block_message(REJECT, 3, 0, BLOCK); // never requested
        peer.send(UNCHOKE, &[]);
        peer.serve(&served, PIECE, None);
    });
    let state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let leecher = session(state.path(), 0);
    add(&leecher, &torrent, out.path(), false);
    wait_for(&leecher, Duration::from_secs(60), "the download", |t| {
        t.state == rivulet::engine::TorrentState::Finished
    });
    assert_eq!(std::fs::read(out.path().join("file.bin")).unwrap(), content);
}

/// Serves the pieces in `has` with their real data (or only `stop_after` blocks, then hangs
/// up); with `unchoke_when` it stays choking until that flag is set.
fn partial_seeder(
    listener: TcpListener,
    info_hash: [u8; 20],
    content: std::sync::Arc<Vec<u8>>,
    piece: u64,
    has: Vec<u32>,
    stop_after: Option<usize>,
    unchoke_when: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
) {
    std::thread::spawn(move || {
        let Ok((stream, _)) = listener.accept() else {
            return;
        };
        let mut peer = RawPeer { stream };
        peer.handshake(&info_hash, PLAIN);
        let pieces = content.len().div_ceil(piece as usize);
        let mut bits = vec![0u8; pieces.div_ceil(8)];
        for &i in &has {
            bits[i as usize / 8] |= 0x80 >> (i % 8);
        }
        peer.send(BITFIELD, &bits);
        if let Some(flag) = unchoke_when {
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        peer.send(UNCHOKE, &[]);
        peer.serve(&content, piece, stop_after);
    });
}

/// 16 MiB pieces, a 24 MiB buffer budget: one piece at a time. The only peer with piece 0
/// sends half of it and vanishes; the only peer with piece 1 unchokes after that. Piece 0's
/// half-filled buffer must not hold the budget: piece 1 is fetched and verified.
#[test]
fn a_piece_abandoned_mid_way_does_not_stall_the_download() {
    const BIG: u64 = 16 << 20;
    let tracker = TestTracker::start();
    let dir = tempfile::tempdir().unwrap();
    let content = std::sync::Arc::new(data(2 * BIG as usize, 9));
    std::fs::write(dir.path().join("big.bin"), content.as_slice()).unwrap();
    let torrent = torrent_for(&dir.path().join("big.bin"), BIG, &tracker.url);
    let meta = Metainfo::from_bytes(&torrent).unwrap();
    let vanishing = TcpListener::bind("127.0.0.1:0").unwrap();
    let late = TcpListener::bind("127.0.0.1:0").unwrap();
    tracker.inject(meta.info_hash, vanishing.local_addr().unwrap());
    tracker.inject(meta.info_hash, late.local_addr().unwrap());
    let half = (BIG / 2 / BLOCK as u64) as usize;
    let gone = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    partial_seeder(
        vanishing,
        meta.info_hash.0,
        content.clone(),
        BIG,
        vec![0],
        Some(half),
        None,
    );
    partial_seeder(
        late,
        meta.info_hash.0,
        content.clone(),
        BIG,
        vec![1],
        None,
        Some(gone.clone()),
    );

    let state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let leecher = session(state.path(), 0);
    add(&leecher, &torrent, out.path(), false);
    wait_for(
        &leecher,
        Duration::from_secs(30),
        "a part of piece 0",
        |t| t.downloaded >= BIG / 4,
    );
    gone.store(true, Ordering::Relaxed);
    let t = wait_for(&leecher, Duration::from_secs(30), "piece 1 verified", |t| {
        t.verified_bytes >= BIG
    });
    assert_eq!(
        t.verified_bytes, BIG,
        "piece 1, from the peer that came later"
    );
}

/// A BEP 6 peer that floods requests while never reading: each one earns a reject that it
/// does not read, so the rejects would pile up in memory. Once the socket's buffers are full
/// and thousands wait, the peer is dropped; the seeder serves others as before.
#[test]
fn a_peer_that_floods_requests_and_never_reads_is_dropped() {
    let s = seeder();
    let (peer, _) = RawPeer::dial(s.addr, &s.meta.info_hash.0, FAST_AND_EXTENDED);
    let mut writer = peer.stream.try_clone().unwrap();
    let mut burst = Vec::with_capacity(17 * 10_000);
    for i in 0..10_000u32 {
        let (index, begin) = block_at(i % 1024);
        burst.extend_from_slice(&13u32.to_be_bytes());
        burst.push(REQUEST);
        for v in [index, begin, BLOCK] {
            burst.extend_from_slice(&v.to_be_bytes());
        }
    }
    let sent = std::thread::spawn(move || {
        let start = Instant::now();
        let mut bursts = 0;
        // Up to 2 million requests (26 MiB) over at most 60 s; a write fails once dropped.
        while bursts < 200 && start.elapsed() < Duration::from_secs(60) {
            if writer.write_all(&burst).is_err() {
                return (bursts, true);
            }
            bursts += 1;
        }
        (bursts, false)
    });
    let (bursts, dropped) = sent.join().unwrap();
    println!("dropped after {} requests sent", bursts * 10_000);
    assert!(
        dropped,
        "still connected after {} requests",
        bursts * 10_000
    );
    assert!(still_served_after_extension_handshake(&s, b"de"));
}

#[test]
fn a_seeder_serves_its_metadata_and_rejects_pieces_past_the_end() {
    let s = seeder();
    let (mut peer, reserved) = RawPeer::dial(s.addr, &s.meta.info_hash.0, FAST_AND_EXTENDED);
    assert_eq!(reserved[5] & 0x10, 0x10, "the seeder speaks BEP 10");
    // We take ut_metadata messages under id 3.
    let mut hello = vec![0u8];
    hello.extend_from_slice(b"d1:md11:ut_metadatai3eee");
    peer.send(EXTENDED, &hello);
    let theirs = loop {
        let payload = peer.wait_for(EXTENDED);
        if payload.first() == Some(&0) {
            break bencode::decode(&payload[1..]).unwrap();
        }
    };
    let info = s.meta.info_bytes.clone();
    assert_eq!(
        theirs.get("metadata_size").and_then(bencode::Value::as_int),
        Some(info.len() as i64)
    );
    let id = theirs
        .get("m")
        .and_then(|m| m.get("ut_metadata"))
        .and_then(bencode::Value::as_int)
        .expect("ut_metadata offered") as u8;

    let ask = |peer: &mut RawPeer, piece: i64| {
        let mut request = vec![id];
        request.extend_from_slice(
            &bencode::Value::dict([
                ("msg_type", bencode::Value::Int(0)),
                ("piece", bencode::Value::Int(piece)),
            ])
            .encode(),
        );
        peer.send(EXTENDED, &request);
        loop {
            let payload = peer.wait_for(EXTENDED);
            if payload.first() == Some(&3) {
                let (dict, used) = bencode::decode_prefix(&payload[1..]).unwrap();
                return (dict, payload[1 + used..].to_vec());
            }
        }
    };
    let (data, bytes) = ask(&mut peer, 0);
    assert_eq!(
        data.get("msg_type").and_then(bencode::Value::as_int),
        Some(1)
    );
    assert_eq!(
        data.get("total_size").and_then(bencode::Value::as_int),
        Some(info.len() as i64)
    );
    assert_eq!(
        bytes,
        &info[..info.len().min(16384)],
        "the exact info bytes"
    );
    let (reject, rest) = ask(&mut peer, 99);
    assert_eq!(
        reject.get("msg_type").and_then(bencode::Value::as_int),
        Some(2),
        "a piece past the end is rejected"
    );
    assert_eq!(
        reject.get("piece").and_then(bencode::Value::as_int),
        Some(99)
    );
    assert!(rest.is_empty());
}
