//! A peer that answers every request with garbage: the download still completes with the right
//! data, and the peer is banned (its connection is closed and never reopened).

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

/// Listens on loopback and serves garbage for every block requested.
fn corrupt_peer(info_hash: [u8; 20], piece_count: u32) -> FakePeer {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
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
            let (c, g, closed) = (c.clone(), g.clone(), closed.clone());
            std::thread::spawn(move || {
                let before = g.load(Ordering::Relaxed);
                let _ = serve_garbage(stream, info_hash, piece_count, &g, &c);
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
            let length = u32::from_be_bytes(body[9..13].try_into().unwrap());
            let mut msg = (9 + length).to_be_bytes().to_vec();
            msg.push(7);
            msg.extend_from_slice(&body[1..9]);
            msg.extend(std::iter::repeat_n(0xAB, length as usize));
            s.write_all(&msg)?;
            blocks.fetch_add(1, Ordering::Relaxed);
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
    let fake = corrupt_peer(meta.info_hash.0, meta.piece_count());
    tracker.inject(meta.info_hash, fake.addr);

    let (_seeder_state, _seeder) = start_seeder(&torrent, seed_dir.path(), 1 << 20);

    let state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let leecher = session(state.path(), 0);
    add(&leecher, &torrent, out.path(), false);
    wait_for(&leecher, Duration::from_secs(60), "download", |t| {
        t.state == TorrentState::Finished
    });
    let finished = Instant::now();
    assert_same_tree(seed_dir.path(), out.path());
    assert!(
        fake.garbage_blocks.load(Ordering::Relaxed) > 0,
        "the corrupt peer was asked for blocks"
    );
    let closed = fake
        .closed_at
        .lock()
        .unwrap()
        .expect("the corrupt peer was disconnected");
    assert!(
        closed <= finished,
        "it was dropped before the download ended"
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        fake.leeching_connections.load(Ordering::Relaxed),
        1,
        "a banned peer is not dialled again"
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
