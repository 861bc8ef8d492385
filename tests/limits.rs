//! Limits: a 30-peer swarm of `rivulet` processes on loopback (one seeder, 29 leechers) plus a
//! greedy peer that sends 1,000 requests and never reads, with each process's peak memory
//! reported; and the session-wide connection cap under 300 inbound connections.

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use rivulet::engine::{Session, SessionConfig, TorrentState};
use rivulet::metainfo::Metainfo;

const BIN: &str = env!("CARGO_BIN_EXE_rivulet");

fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

struct Killed(Vec<Child>);

impl Drop for Killed {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn thirty_peer_swarm_memory() {
    let tracker = TestTracker::start();
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let size = 8 << 20;
    std::fs::write(src.join("data.bin"), data(size, 31)).unwrap();
    let torrent_bytes = torrent_for(&src.join("data.bin"), 64 * 1024, &tracker.url);
    let meta = Metainfo::from_bytes(&torrent_bytes).unwrap();
    let torrent = work.path().join("t.torrent");
    std::fs::write(&torrent, &torrent_bytes).unwrap();
    let run = |args: &[&str], dir: &std::path::Path, state: &std::path::Path| {
        Command::new(BIN)
            .arg(args[0])
            .arg(&torrent)
            .args(&args[1..])
            .arg(dir)
            .args(["--bind", "127.0.0.1", "--port", "0", "--state-dir"])
            .arg(state)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut procs = Killed(vec![run(&["seed"], &src, &work.path().join("s0"))]);
    let seeder_pid = procs.0[0].id();
    // Wait for the seeder to announce, so every leecher finds it at once.
    let start = Instant::now();
    while tracker.log.lock().unwrap().is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the seeder never announced"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let outs: Vec<_> = (1..30)
        .map(|i| {
            let out = work.path().join(format!("out{i}"));
            procs.0.push(run(
                &["download", "--seed", "-o"],
                &out,
                &work.path().join(format!("s{i}")),
            ));
            out
        })
        .collect();

    // A greedy peer: 1,000 requests at the seeder, and it never reads an answer.
    let seeder_port = loop {
        let log = tracker.log.lock().unwrap().clone();
        if let Some(a) = log.iter().find(|a| a.left == 0) {
            break a.port;
        }
        drop(log);
        std::thread::sleep(Duration::from_millis(20));
    };
    // It speaks BEP 6, so the seeder serves its allowed-fast pieces even while choking it (it
    // never says it is interested, so it stays choked): it reads up to the tenth `allowed fast`, then
    // sends 1,000 requests for those pieces' blocks (500 fill the queue we announce, 500 are
    // rejected) and reads nothing more. It is as much as a peer that reads nothing can hold
    // without being dropped: a few thousand more rejects waiting for it would end it (see
    // `tests/peer_wire.rs`).
    let mut greedy = TcpStream::connect(("127.0.0.1", seeder_port)).unwrap();
    let mut hello = handshake(&meta.info_hash.0, b"-XX0001-greedygreedy");
    hello[27] |= 0x04; // fast extension
    greedy.write_all(&hello).unwrap();
    let mut theirs = [0u8; 68];
    greedy.read_exact(&mut theirs).unwrap();
    greedy
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut allowed = Vec::new();
    while allowed.len() < 10 {
        let mut len = [0u8; 4];
        greedy.read_exact(&mut len).unwrap();
        let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
        greedy.read_exact(&mut body).unwrap();
        if body.first() == Some(&17) {
            allowed.push(u32::from_be_bytes(body[1..5].try_into().unwrap()));
        }
    }
    // Not interested: it is never unchoked, so only the allowed-fast rule can serve it.
    let mut requests = Vec::new();
    for i in 0..1000u32 {
        let piece = allowed[i as usize % allowed.len()];
        let begin = (i / allowed.len() as u32) % 4 * 16384;
        requests.extend_from_slice(&[0, 0, 0, 13, 6]);
        requests.extend_from_slice(&piece.to_be_bytes());
        requests.extend_from_slice(&begin.to_be_bytes());
        requests.extend_from_slice(&16384u32.to_be_bytes());
    }
    greedy.write_all(&requests).unwrap();

    let deadline = Instant::now() + Duration::from_secs(120);
    for out in &outs {
        let file = out.join("data.bin");
        while std::fs::read(&file).ok().map(|d| d.len()) != Some(size)
            || std::fs::read(&file).unwrap() != std::fs::read(src.join("data.bin")).unwrap()
        {
            assert!(
                Instant::now() < deadline,
                "{} did not finish",
                out.display()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let seeder_rss = peak_rss_kib(seeder_pid);
    let mut leechers: Vec<u64> = procs.0[1..].iter().map(|c| peak_rss_kib(c.id())).collect();
    leechers.sort();
    println!(
        "30-peer swarm, 8 MiB: seeder peak RSS {} MiB (with a greedy peer holding 1,000 \
         requests); leechers' peak RSS median {} MiB, max {} MiB",
        seeder_rss / 1024,
        leechers[leechers.len() / 2] / 1024,
        leechers[leechers.len() - 1] / 1024
    );
    // The greedy peer was really served and kept: reading now, it finds a block for each of
    // the 500 requests the seeder queued and a reject for each of the rest. The seeder's
    // memory stayed bounded all the same.
    greedy
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let (mut blocks, mut rejects) = (0, 0);
    let mut len = [0u8; 4];
    let still_open = loop {
        if let Err(e) = greedy.read_exact(&mut len) {
            break matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            );
        }
        let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
        if greedy.read_exact(&mut body).is_err() {
            break false;
        }
        match body.first() {
            Some(7) if body.len() == 9 + 16384 => blocks += 1,
            Some(16) => rejects += 1,
            _ => {}
        }
    };
    println!("greedy peer: {blocks} blocks and {rejects} rejects for its 1,000 requests");
    assert!(still_open, "the greedy peer is kept while it reads nothing");
    assert!(
        blocks >= 10,
        "the greedy peer's allowed-fast requests were served ({blocks} blocks, {rejects} rejects)"
    );
    assert!(seeder_rss < 48 * 1024, "seeder peak RSS {seeder_rss} KiB");
    assert!(leechers.iter().all(|&r| r < 64 * 1024), "{leechers:?}");
}

#[test]
fn the_session_wide_connection_cap_holds() {
    let tracker = TestTracker::start();
    let src = tempfile::tempdir().unwrap();
    write_files(src.path(), &[("a.bin", 100_000), ("b.bin", 100_000)]);
    let a = torrent_for(&src.path().join("a.bin"), 16384, &tracker.url);
    let b = torrent_for(&src.path().join("b.bin"), 16384, &tracker.url);
    let state = tempfile::tempdir().unwrap();
    let mut config = SessionConfig::with_state_dir(state.path().to_path_buf());
    config.restore_saved = false;
    config.bind = rivulet::net::Binding::Address(Ipv4Addr::LOCALHOST.into());
    config.listen_port = 0;
    config.max_connections = 20;
    let seeder = Session::start(config, None).unwrap();
    add(&seeder, &a, src.path(), true);
    add(&seeder, &b, src.path(), true);
    let start = Instant::now();
    while seeder
        .snapshot()
        .torrents
        .iter()
        .filter(|t| t.state == TorrentState::Seeding)
        .count()
        < 2
    {
        assert!(start.elapsed() < Duration::from_secs(20));
        std::thread::sleep(Duration::from_millis(20));
    }
    let hashes = [
        Metainfo::from_bytes(&a).unwrap().info_hash.0,
        Metainfo::from_bytes(&b).unwrap().info_hash.0,
    ];
    let conns: Vec<TcpStream> = (0..300u32)
        .filter_map(|i| {
            let mut s = TcpStream::connect(("127.0.0.1", seeder.listen_port())).ok()?;
            let mut id = *b"-XX0001-cap000000000";
            id[12..16].copy_from_slice(&i.to_be_bytes());
            s.write_all(&handshake(&hashes[i as usize % 2], &id)).ok()?;
            Some(s)
        })
        .collect();
    let mut most = 0;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        let connected: u32 = seeder
            .snapshot()
            .torrents
            .iter()
            .map(|t| t.connected_peers + t.connected_seeds)
            .sum();
        most = most.max(connected);
        assert!(connected <= 20, "{connected} connections, cap 20");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(most, 20, "the cap is reached, not exceeded");
    drop(conns);
}
