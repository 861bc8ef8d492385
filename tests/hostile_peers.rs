//! Hostile peers: one that answers every request with garbage (banned; the data stays right),
//! ones that break the protocol in every other way (dropped), requests a seeder must refuse,
//! and floods of connections and half-open handshakes. In every case the real download
//! completes and nothing panics; peak memory is printed (`-- --nocapture`).

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use rivulet::engine::TorrentState;
use rivulet::metainfo::Metainfo;

const PIECE: u64 = 32 * 1024;

struct FakePeer {
    addr: SocketAddr,
    /// Connections that asked for blocks (the seeder connects too, but asks for nothing).
    leeching_connections: Arc<AtomicU32>,
    garbage_blocks: Arc<AtomicU32>,
    closed_at: Arc<Mutex<Option<Instant>>>,
}

/// What a fake peer sends for a block.
#[derive(Clone)]
enum Serves {
    /// Garbage for every block.
    Garbage,
    /// The real data, except garbage in pieces whose index is a multiple of 3.
    OneBadPieceInThree(Arc<Vec<u8>>),
}

/// Listens on 127.0.0.2 (its own address: bans are by IP, and the honest peers are on
/// 127.0.0.1) and answers every block requested as `serves` says.
fn corrupt_peer(info_hash: [u8; 20], piece_count: u32, serves: Serves) -> FakePeer {
    let listener = TcpListener::bind("127.0.0.2:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let leeching_connections = Arc::new(AtomicU32::new(0));
    let garbage_blocks = Arc::new(AtomicU32::new(0));
    let closed_at = Arc::new(Mutex::new(None));
    let (c, g, closed) = (
        leeching_connections.clone(),
        garbage_blocks.clone(),
        closed_at.clone(),
    );
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let (c, g, closed, serves) = (c.clone(), g.clone(), closed.clone(), serves.clone());
            std::thread::spawn(move || {
                let before = g.load(Ordering::Relaxed);
                let _ = serve_garbage(stream, info_hash, piece_count, &serves, &g, &c);
                if g.load(Ordering::Relaxed) > before {
                    *closed.lock().unwrap() = Some(Instant::now());
                }
            });
        }
    });
    FakePeer {
        addr,
        leeching_connections,
        garbage_blocks,
        closed_at,
    }
}

fn serve_garbage(
    mut s: TcpStream,
    info_hash: [u8; 20],
    piece_count: u32,
    serves: &Serves,
    blocks: &AtomicU32,
    leeching: &AtomicU32,
) -> std::io::Result<()> {
    let mut asked = false;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut hs = [0u8; 68];
    s.read_exact(&mut hs)?;
    let mut reply = vec![19u8];
    reply.extend_from_slice(b"BitTorrent protocol");
    reply.extend_from_slice(&[0; 8]);
    reply.extend_from_slice(&info_hash);
    reply.extend_from_slice(b"-XX0001-garbagegarba");
    let bitfield_len = (piece_count as usize).div_ceil(8);
    let mut bits = vec![0xffu8; bitfield_len];
    let spare = bitfield_len * 8 - piece_count as usize;
    if let Some(last) = bits.last_mut() {
        *last &= 0xffu8 << spare;
    }
    reply.extend_from_slice(&(1 + bitfield_len as u32).to_be_bytes());
    reply.push(5);
    reply.extend_from_slice(&bits);
    reply.extend_from_slice(&[0, 0, 0, 1, 1]); // unchoke
    s.write_all(&reply)?;
    loop {
        let mut len = [0u8; 4];
        s.read_exact(&mut len)?;
        let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
        s.read_exact(&mut body)?;
        if body.first() == Some(&6) && body.len() == 13 {
            if !asked {
                asked = true;
                leeching.fetch_add(1, Ordering::Relaxed);
            }
            let word = |i: usize| u32::from_be_bytes(body[i..i + 4].try_into().unwrap());
            let (index, begin, length) = (word(1), word(5), word(9));
            let mut msg = (9 + length).to_be_bytes().to_vec();
            msg.push(7);
            msg.extend_from_slice(&body[1..9]);
            match serves {
                Serves::OneBadPieceInThree(content) if index % 3 != 0 => {
                    let at = index as usize * PIECE as usize + begin as usize;
                    msg.extend_from_slice(&content[at..at + length as usize]);
                }
                _ => {
                    msg.extend(std::iter::repeat_n(0xAB, length as usize));
                    blocks.fetch_add(1, Ordering::Relaxed);
                }
            }
            s.write_all(&msg)?;
        }
    }
}

#[test]
fn corrupt_peer_is_banned_and_download_is_intact() {
    let tracker = TestTracker::start();
    let seed_dir = tempfile::tempdir().unwrap();
    std::fs::write(seed_dir.path().join("file.bin"), data(2 << 20, 3)).unwrap();
    let torrent = torrent_for(&seed_dir.path().join("file.bin"), PIECE, &tracker.url);
    let meta = Metainfo::from_bytes(&torrent).unwrap();
    let fake = corrupt_peer(meta.info_hash.0, meta.piece_count(), Serves::Garbage);
    tracker.inject(meta.info_hash, fake.addr);

    // A slow seeder (48 KiB/s: about 40 s for the file), so the download is still going when
    // the ban is 35 s old: past the 30 s after which a closed peer may be dialled again, and
    // past two re-announces (each hands out the banned address again).
    let (_seeder_state, _seeder) = start_seeder(&torrent, seed_dir.path(), 48 << 10);

    let state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let leecher = session(state.path(), 0);
    add(&leecher, &torrent, out.path(), false);
    let deadline = Instant::now() + Duration::from_secs(30);
    let closed = loop {
        if let Some(at) = *fake.closed_at.lock().unwrap() {
            break at;
        }
        assert!(
            Instant::now() < deadline,
            "the corrupt peer was not dropped"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    std::thread::sleep(Duration::from_secs(35).saturating_sub(closed.elapsed()));
    let t = leecher.snapshot().torrents[0].clone();
    assert_eq!(
        t.state,
        TorrentState::Downloading,
        "still downloading 35 s on"
    );
    assert_eq!(
        fake.leeching_connections.load(Ordering::Relaxed),
        1,
        "a banned peer is not dialled again"
    );
    wait_for(&leecher, Duration::from_secs(90), "download", |t| {
        t.state == TorrentState::Finished
    });
    assert_same_tree(seed_dir.path(), out.path());
}

/// A peer that corrupts one piece in three (and serves the others right, fast) is banned by
/// its address while the download goes on, and never dialled again.
#[test]
fn peer_corrupting_one_piece_in_three_is_banned_while_downloading() {
    let tracker = TestTracker::start();
    let seed_dir = tempfile::tempdir().unwrap();
    let content = data(4 << 20, 13);
    std::fs::write(seed_dir.path().join("file.bin"), &content).unwrap();
    let torrent = torrent_for(&seed_dir.path().join("file.bin"), PIECE, &tracker.url);
    let meta = Metainfo::from_bytes(&torrent).unwrap();
    let fake = corrupt_peer(
        meta.info_hash.0,
        meta.piece_count(),
        Serves::OneBadPieceInThree(Arc::new(content)),
    );
    tracker.inject(meta.info_hash, fake.addr);
    // The honest seeder is slow (512 KiB/s): the download takes seconds after the ban.
    let (_seeder_state, _seeder) = start_seeder(&torrent, seed_dir.path(), 512 << 10);

    let state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let leecher = session(state.path(), 0);
    add(&leecher, &torrent, out.path(), false);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if fake.closed_at.lock().unwrap().is_some() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the corrupt peer was never dropped"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The snapshot lags by up to a fifth of a second: look again after that.
    std::thread::sleep(Duration::from_millis(500));
    let at_ban = leecher.snapshot().torrents[0].clone();
    println!(
        "dropped after {} garbage blocks, at {:.0}% done half a second later",
        fake.garbage_blocks.load(Ordering::Relaxed),
        at_ban.progress * 100.0
    );
    assert_eq!(
        at_ban.state,
        TorrentState::Downloading,
        "banned while the download went on"
    );
    wait_for(&leecher, Duration::from_secs(60), "download", |t| {
        t.state == TorrentState::Finished
    });
    assert_same_tree(seed_dir.path(), out.path());
    assert_eq!(
        fake.leeching_connections.load(Ordering::Relaxed),
        1,
        "a banned address is not dialled again"
    );
}

/// A request that crosses one of the seeder's 256 KiB read windows is answered (it once made
/// the seeder re-read the same window forever).
#[test]
fn unaligned_request_across_a_read_window_is_served() {
    let tracker = TestTracker::start();
    let seed_dir = tempfile::tempdir().unwrap();
    let content = data(1 << 20, 21);
    std::fs::write(seed_dir.path().join("big.bin"), &content).unwrap();
    let torrent = torrent_for(&seed_dir.path().join("big.bin"), 512 * 1024, &tracker.url);
    let meta = Metainfo::from_bytes(&torrent).unwrap();
    let (_state, seeder) = start_seeder(&torrent, seed_dir.path(), 0);

    let mut s = TcpStream::connect(("127.0.0.1", seeder.listen_port())).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut hello = vec![19u8];
    hello.extend_from_slice(b"BitTorrent protocol");
    hello.extend_from_slice(&[0; 8]);
    hello.extend_from_slice(&meta.info_hash.0);
    hello.extend_from_slice(b"-XX0001-leecherleech");
    s.write_all(&hello).unwrap();
    let mut theirs = [0u8; 68];
    s.read_exact(&mut theirs).unwrap();
    s.write_all(&[0, 0, 0, 1, 2]).unwrap(); // interested
    let (begin, length) = (262_143u32, 16_384u32);
    let mut requested = false;
    loop {
        let mut len = [0u8; 4];
        s.read_exact(&mut len).unwrap();
        let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
        s.read_exact(&mut body).unwrap();
        match body.first() {
            Some(1) if !requested => {
                let mut request = vec![0, 0, 0, 13, 6, 0, 0, 0, 1];
                request.extend_from_slice(&begin.to_be_bytes());
                request.extend_from_slice(&length.to_be_bytes());
                s.write_all(&request).unwrap();
                requested = true;
            }
            Some(7) => {
                assert_eq!(&body[1..9], &[0, 0, 0, 1, 0, 3, 255, 255]);
                let at = 512 * 1024 + begin as usize;
                assert!(
                    body[9..] == content[at..at + length as usize],
                    "the right bytes"
                );
                return;
            }
            _ => {}
        }
    }
}

/// One message frame.
fn frame(id: u8, payload: &[u8]) -> Vec<u8> {
    let mut m = (1 + payload.len() as u32).to_be_bytes().to_vec();
    m.push(id);
    m.extend_from_slice(payload);
    m
}

/// Reads frames until the peer closes the connection (true) or `within` passes (false);
/// returns whether it closed and the ids of the messages seen.
fn read_until_closed(s: &mut TcpStream, within: Duration) -> (bool, Vec<u8>) {
    let deadline = Instant::now() + within;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (false, seen);
        }
        s.set_read_timeout(Some(left)).unwrap();
        let mut len = [0u8; 4];
        match s.read_exact(&mut len) {
            Ok(()) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return (false, seen);
            }
            Err(_) => return (true, seen),
        }
        let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
        if s.read_exact(&mut body).is_err() {
            return (true, seen);
        }
        if let Some(&id) = body.first() {
            seen.push(id);
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Misbehaviour {
    WrongInfoHash,
    HugeLengthPrefix,
    ShortBitfield,
    SpareBitsSet,
    UnrequestedBlock,
    HaveFlood,
    HaveOutOfRange,
}

/// How soon after its misbehaviour a peer must be dropped.
const QUICK_DROP: Duration = Duration::from_secs(3);

/// A listening peer that misbehaves at once; the flag is raised when a connection to it is
/// hung up on within [`QUICK_DROP`] of the misbehaviour. A finished download also hangs up on
/// every peer, but seconds later: that does not count.
fn misbehaving_peer(
    kind: Misbehaviour,
    info_hash: [u8; 20],
    pieces: u32,
) -> (SocketAddr, Arc<AtomicU32>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let dropped = Arc::new(AtomicU32::new(0));
    let flag = dropped.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            let flag = flag.clone();
            std::thread::spawn(move || {
                let mut theirs = [0u8; 68];
                if s.read_exact(&mut theirs).is_err() {
                    return;
                }
                let hash = if kind == Misbehaviour::WrongInfoHash {
                    [0xEE; 20]
                } else {
                    info_hash
                };
                // A peer id of its own: a second connection with one already connected would
                // be refused as a duplicate, which is not the drop under test.
                let mut id = *b"-XX0001-misbehaving!";
                id[19] = b'a' + kind as u8;
                let mut out = handshake(&hash, &id);
                let full = (pieces as usize).div_ceil(8);
                match kind {
                    Misbehaviour::WrongInfoHash => {}
                    Misbehaviour::HugeLengthPrefix => {
                        out.extend_from_slice(&(1u32 << 31).to_be_bytes())
                    }
                    Misbehaviour::ShortBitfield => out.extend(frame(5, &vec![0xff; full - 1])),
                    Misbehaviour::SpareBitsSet => out.extend(frame(5, &vec![0xff; full])),
                    Misbehaviour::UnrequestedBlock => {
                        out.extend(frame(1, &[])); // unchoke
                        let mut piece = vec![0, 0, 0, 0, 0, 0, 0, 0];
                        piece.extend(std::iter::repeat_n(0x5A, 16384));
                        for _ in 0..300 {
                            out.extend(frame(7, &piece));
                        }
                    }
                    Misbehaviour::HaveFlood => {
                        for i in 0..100_000u32 {
                            out.extend(frame(4, &(i % pieces).to_be_bytes()));
                        }
                    }
                    Misbehaviour::HaveOutOfRange => out.extend(frame(4, &pieces.to_be_bytes())),
                }
                // Hung up on: either while we were still writing (a long flood), or after.
                let cut_short = s.write_all(&out).is_err();
                let sent = Instant::now();
                if cut_short
                    || read_until_closed(&mut s, Duration::from_secs(60)).0
                        && sent.elapsed() < QUICK_DROP
                {
                    flag.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    (addr, dropped)
}

/// The test process's peak resident memory, from /proc.
fn peak_rss() -> String {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:").map(|v| v.trim().to_string()))
        .unwrap_or_else(|| "unknown".into())
}

/// Peers that break the protocol are dropped (the ones whose breach is certain) within 3 s of
/// the breach, while the download goes on; one that floods valid `have`s does no harm, and the
/// real seeder still delivers the right data. Each misbehaving peer has a peer id of its own,
/// and the torrent has spare bits in its bitfield's last byte.
#[test]
fn protocol_breakers_are_dropped_and_the_download_completes() {
    let tracker = TestTracker::start();
    let seed_dir = tempfile::tempdir().unwrap();
    // 69 pieces: the last byte of a bitfield has three spare bits.
    let size = (2 << 20) + 5 * PIECE as usize;
    std::fs::write(seed_dir.path().join("file.bin"), data(size, 5)).unwrap();
    let torrent = torrent_for(&seed_dir.path().join("file.bin"), PIECE, &tracker.url);
    let meta = Metainfo::from_bytes(&torrent).unwrap();
    assert_eq!(meta.piece_count() % 8, 5);
    let kinds = [
        Misbehaviour::WrongInfoHash,
        Misbehaviour::HugeLengthPrefix,
        Misbehaviour::ShortBitfield,
        Misbehaviour::SpareBitsSet,
        Misbehaviour::UnrequestedBlock,
        Misbehaviour::HaveFlood,
        Misbehaviour::HaveOutOfRange,
    ];
    let peers: Vec<_> = kinds
        .iter()
        .map(|&k| {
            let (addr, dropped) = misbehaving_peer(k, meta.info_hash.0, meta.piece_count());
            tracker.inject(meta.info_hash, addr);
            (k, dropped)
        })
        .collect();
    // A slow seeder (256 KiB/s: about 8 s for the file), so the drops are seen while the
    // download goes on, not when a finished torrent closes every connection.
    let (_seeder_state, _seeder) = start_seeder(&torrent, seed_dir.path(), 256 << 10);

    let (state, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let leecher = session(state.path(), 0);
    add(&leecher, &torrent, out.path(), false);
    let must_drop = [
        Misbehaviour::WrongInfoHash,
        Misbehaviour::HugeLengthPrefix,
        Misbehaviour::ShortBitfield,
        Misbehaviour::SpareBitsSet,
        Misbehaviour::UnrequestedBlock,
        Misbehaviour::HaveOutOfRange,
    ];
    let start = Instant::now();
    loop {
        let pending: Vec<Misbehaviour> = peers
            .iter()
            .filter(|(kind, dropped)| {
                must_drop.contains(kind) && dropped.load(Ordering::Relaxed) == 0
            })
            .map(|(kind, _)| *kind)
            .collect();
        let state = leecher.snapshot().torrents.first().map(|t| t.state.clone());
        if pending.is_empty() {
            // (The torrent may not be in the lagging snapshot yet: certainly not finished.)
            assert_ne!(state, Some(TorrentState::Finished), "dropped mid-download");
            break;
        }
        assert_ne!(
            state,
            Some(TorrentState::Finished),
            "finished before dropping {pending:?}"
        );
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{pending:?} not dropped"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    wait_for(&leecher, Duration::from_secs(60), "download", |t| {
        t.state == TorrentState::Finished
    });
    assert_same_tree(seed_dir.path(), out.path());
    println!(
        "protocol breakers: peak RSS of the test process {}",
        peak_rss()
    );
}

/// Raises this process's open-file limit to its hard limit (the floods below need about 1,500).
fn raise_fd_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid rlimit for getrlimit/setrlimit to read and write.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// The seeder refuses a request past a piece's end (drops the peer) and ignores one sent while
/// choked; the leecher, meanwhile, takes 500 idle connections and 100 half-open handshakes
/// (slowloris) at once, closes the half-open ones, and finishes its download.
#[test]
fn bad_requests_and_connection_floods() {
    raise_fd_limit();
    let tracker = TestTracker::start();
    let seed_dir = tempfile::tempdir().unwrap();
    std::fs::write(seed_dir.path().join("file.bin"), data(2 << 20, 9)).unwrap();
    let torrent = torrent_for(&seed_dir.path().join("file.bin"), PIECE, &tracker.url);
    let meta = Metainfo::from_bytes(&torrent).unwrap();
    let hash = meta.info_hash.0;
    let (_seeder_state, seeder) = start_seeder(&torrent, seed_dir.path(), 512 << 10);

    // Past the end of the last piece, once unchoked: dropped.
    let mut past_end = TcpStream::connect(("127.0.0.1", seeder.listen_port())).unwrap();
    past_end
        .write_all(&handshake(&hash, b"-XX0001-pastendpaste"))
        .unwrap();
    let mut theirs = [0u8; 68];
    past_end.read_exact(&mut theirs).unwrap();
    past_end.write_all(&frame(2, &[])).unwrap(); // interested
    let start = Instant::now();
    loop {
        let (closed, seen) = read_until_closed(&mut past_end, Duration::from_millis(500));
        assert!(!closed, "dropped before misbehaving");
        if seen.contains(&1) {
            break; // unchoked
        }
        assert!(start.elapsed() < Duration::from_secs(15), "never unchoked");
    }
    let last = meta.piece_count() - 1;
    let mut request = last.to_be_bytes().to_vec();
    request.extend_from_slice(&(meta.piece_len(last) as u32).to_be_bytes());
    request.extend_from_slice(&16384u32.to_be_bytes());
    past_end.write_all(&frame(6, &request)).unwrap();
    let (closed, seen) = read_until_closed(&mut past_end, Duration::from_secs(5));
    assert!(
        closed && !seen.contains(&7),
        "a request past the end drops the peer"
    );

    // While choked (never interested): ignored, no data sent.
    let mut choked = TcpStream::connect(("127.0.0.1", seeder.listen_port())).unwrap();
    choked
        .write_all(&handshake(&hash, b"-XX0001-chokedchoked"))
        .unwrap();
    choked.read_exact(&mut theirs).unwrap();
    choked
        .write_all(&frame(6, &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 64, 0]))
        .unwrap();
    let (_, seen) = read_until_closed(&mut choked, Duration::from_secs(2));
    assert!(!seen.contains(&7), "no block for a choked peer");

    let (state, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let leecher = session(state.path(), 0);
    add(&leecher, &torrent, out.path(), false);
    wait_for(&leecher, Duration::from_secs(30), "the first piece", |t| {
        t.verified_bytes > 0
    });
    let port = leecher.listen_port();
    let idle: Vec<TcpStream> = (0..500u32)
        .filter_map(|i| {
            let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
            let mut id = *b"-XX0001-flood0000000";
            id[12..16].copy_from_slice(&i.to_be_bytes());
            let _ = s.write_all(&handshake(&hash, &id));
            Some(s)
        })
        .collect();
    let mut half_open: Vec<TcpStream> = (0..100)
        .filter_map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
            let _ = s.write_all(&[19, b'B', b'i', b't']);
            Some(s)
        })
        .collect();
    assert_eq!(idle.len(), 500);
    wait_for(&leecher, Duration::from_secs(60), "the download", |t| {
        t.state == TorrentState::Finished
    });
    assert_same_tree(seed_dir.path(), out.path());
    for s in &mut half_open {
        let (closed, _) = read_until_closed(s, Duration::from_secs(15));
        assert!(
            closed,
            "a half-open handshake is closed after the handshake timeout"
        );
    }
    println!("floods: peak RSS of the test process {}", peak_rss());
    drop(idle);
}

/// Dials `target` from the local address `from` (any of 127.0.0.0/8 is ours on loopback).
fn dial_from(from: [u8; 4], target: SocketAddr) -> TcpStream {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    let stream = runtime
        .block_on(async {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind(SocketAddr::from((from, 0)))?;
            socket.connect(target).await?.into_std()
        })
        .unwrap();
    stream.set_nonblocking(false).unwrap();
    stream
}

/// 96 connections from 12 addresses that send four bytes of a handshake and then nothing
/// hold more than the session's 64 places for pending handshakes. A real peer that connects
/// afterwards is answered within a second: the connection that waited longest gives way to
/// it. Every half-open connection is closed: those that gave way early, every other one at
/// the 10 s handshake timeout (10 ± 1 s after it opened).
#[test]
fn a_real_peer_gets_in_while_half_open_handshakes_hold_every_place() {
    const HALF_OPEN: usize = 96;
    const PLACES: usize = 64;
    raise_fd_limit();
    let tracker = TestTracker::start();
    let seed_dir = tempfile::tempdir().unwrap();
    std::fs::write(seed_dir.path().join("file.bin"), data(1 << 20, 4)).unwrap();
    let torrent = torrent_for(&seed_dir.path().join("file.bin"), PIECE, &tracker.url);
    let hash = Metainfo::from_bytes(&torrent).unwrap().info_hash.0;
    let (_state, seeder) = start_seeder(&torrent, seed_dir.path(), 0);
    let target = SocketAddr::from(([127, 0, 0, 1], seeder.listen_port()));

    let watchers: Vec<_> = (0..HALF_OPEN)
        .map(|i| {
            let mut stream = dial_from([127, 0, 0, 2 + (i / 8) as u8], target);
            stream.write_all(&[19, b'B', b'i', b't']).unwrap();
            let opened = Instant::now();
            // The time from opening to the seeder's close.
            std::thread::spawn(move || {
                let deadline = Duration::from_secs(15);
                stream.set_read_timeout(Some(deadline)).unwrap();
                let mut buf = [0u8; 64];
                while matches!(stream.read(&mut buf), Ok(n) if n > 0) {}
                opened.elapsed()
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(1));

    let asked = Instant::now();
    let mut real = TcpStream::connect(target).unwrap();
    real.write_all(&handshake(&hash, b"-XX0001-realpeer0001"))
        .unwrap();
    real.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut theirs = [0u8; 68];
    real.read_exact(&mut theirs)
        .expect("the seeder answers a real peer's handshake");
    let answered = asked.elapsed();
    assert!(
        answered < Duration::from_secs(1),
        "handshake answered in {answered:?}"
    );
    assert_eq!(
        &theirs[28..48],
        &hash,
        "the seeder's handshake names the torrent"
    );

    let lifetimes: Vec<Duration> = watchers.into_iter().map(|w| w.join().unwrap()).collect();
    let gave_way = lifetimes
        .iter()
        .filter(|d| **d < Duration::from_secs(9))
        .count();
    let timed_out = lifetimes
        .iter()
        .filter(|d| (Duration::from_secs(9)..=Duration::from_secs(11)).contains(*d))
        .count();
    assert_eq!(
        gave_way + timed_out,
        HALF_OPEN,
        "every half-open connection closed by 11 s: {lifetimes:?}"
    );
    assert!(
        gave_way <= HALF_OPEN - PLACES + 1,
        "only as many gave way as needed ({gave_way}): {lifetimes:?}"
    );
    println!(
        "half-open: {gave_way} gave way, {timed_out} timed out; real peer answered in {answered:?}"
    );
}

/// A slow but honest peer: it unchokes, never answers in time, and its blocks trickle in
/// unasked (one every 100 ms for 25 s: 250, more than the 200 unwanted blocks that make a
/// flood, but spread out). The leecher gives up on its requests after 20 s *with* a `cancel`
/// for each, and keeps the connection: stray blocks spread over time are forgotten.
#[test]
fn a_slow_honest_peer_is_cancelled_not_dropped() {
    let tracker = TestTracker::start();
    let seed_dir = tempfile::tempdir().unwrap();
    let content = data(2 << 20, 17);
    std::fs::write(seed_dir.path().join("file.bin"), &content).unwrap();
    let torrent = torrent_for(&seed_dir.path().join("file.bin"), PIECE, &tracker.url);
    let meta = Metainfo::from_bytes(&torrent).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    tracker.inject(meta.info_hash, listener.local_addr().unwrap());
    let (info_hash, pieces) = (meta.info_hash.0, meta.piece_count());

    let state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let leecher = session(state.path(), 0);
    add(&leecher, &torrent, out.path(), false);

    let (mut s, _) = listener.accept().unwrap();
    let mut hs = [0u8; 68];
    s.read_exact(&mut hs).unwrap();
    s.write_all(&handshake(&info_hash, b"-XX0001-slowslowslow"))
        .unwrap();
    let bitfield_len = (pieces as usize).div_ceil(8);
    let mut hello = (1 + bitfield_len as u32).to_be_bytes().to_vec();
    hello.push(5);
    hello.extend(std::iter::repeat_n(0xffu8, bitfield_len)); // 64 pieces: no spare bits
    hello.extend_from_slice(&[0, 0, 0, 1, 1]); // unchoke
    s.write_all(&hello).unwrap();

    // Read what the leecher sends: its requests and, later, its cancels.
    let (requests, cancels) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let closed = Arc::new(Mutex::new(None::<Instant>));
    let mut reader = s.try_clone().unwrap();
    let (r, c, cl) = (requests.clone(), cancels.clone(), closed.clone());
    std::thread::spawn(move || {
        loop {
            let mut len = [0u8; 4];
            if reader.read_exact(&mut len).is_err() {
                break;
            }
            let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
            if reader.read_exact(&mut body).is_err() {
                break;
            }
            match body.first() {
                Some(6) => r.fetch_add(1, Ordering::Relaxed),
                Some(8) => c.fetch_add(1, Ordering::Relaxed),
                _ => 0,
            };
        }
        *cl.lock().unwrap() = Some(Instant::now());
    });
    // 250 blocks nobody asked for: 8 KiB at the start of each piece, which no request of
    // whole 16 KiB blocks matches.
    let start = Instant::now();
    for i in 0..250u32 {
        let index = i % pieces;
        let at = index as usize * PIECE as usize;
        let mut msg = (9 + 8192u32).to_be_bytes().to_vec();
        msg.push(7);
        msg.extend_from_slice(&index.to_be_bytes());
        msg.extend_from_slice(&0u32.to_be_bytes());
        msg.extend_from_slice(&content[at..at + 8192]);
        if s.write_all(&msg).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    println!(
        "after {:?}: {} requests, {} cancels",
        start.elapsed(),
        requests.load(Ordering::Relaxed),
        cancels.load(Ordering::Relaxed)
    );
    assert!(
        closed.lock().unwrap().is_none(),
        "the slow peer was dropped"
    );
    assert!(requests.load(Ordering::Relaxed) > 0);
    assert!(
        cancels.load(Ordering::Relaxed) > 0,
        "the snubbed requests were cancelled"
    );
}
