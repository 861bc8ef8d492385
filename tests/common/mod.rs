//! Helpers shared by the integration tests: a minimal HTTP tracker, data generators, and
//! sessions on loopback.
#![allow(dead_code)]

pub mod fakes;
pub mod netns;
pub mod shaped_link;
pub mod slow_disk;
pub mod udp_relay;
pub mod window;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rivulet::create::{CreateOptions, CreateProgress, create_torrent};
use rivulet::engine::{
    AddSource, AddTorrent, Command, Session, SessionConfig, SessionHandle, TorrentSnapshot,
};
use rivulet::ids::InfoHash;

/// One announce the tracker received.
#[derive(Debug, Clone)]
pub struct Announce {
    pub info_hash: Vec<u8>,
    pub port: u16,
    pub event: Option<String>,
    pub left: u64,
    pub downloaded: u64,
    pub uploaded: u64,
}

/// A minimal HTTP tracker on 127.0.0.1: remembers peers per info hash and returns the others
/// in compact form.
pub struct TestTracker {
    pub url: String,
    pub log: Arc<Mutex<Vec<Announce>>>,
    peers: Arc<Mutex<HashMap<Vec<u8>, Vec<SocketAddr>>>>,
    stop: Arc<AtomicBool>,
}

impl TestTracker {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}/announce", listener.local_addr().unwrap());
        let log = Arc::new(Mutex::new(Vec::new()));
        let peers: Arc<Mutex<HashMap<Vec<u8>, Vec<SocketAddr>>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (log2, peers2, stop2) = (log.clone(), peers.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        let _ = stream.set_nonblocking(false);
                        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                        serve(&mut stream, &log2, &peers2);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Self {
            url,
            log,
            peers,
            stop,
        }
    }

    /// Adds a peer to the swarm as if it had announced.
    pub fn inject(&self, info_hash: InfoHash, addr: SocketAddr) {
        self.peers
            .lock()
            .unwrap()
            .entry(info_hash.0.to_vec())
            .or_default()
            .push(addr);
    }

    pub fn events(&self, port: u16) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|a| a.port == port)
            .filter_map(|a| a.event.clone())
            .collect()
    }
}

impl Drop for TestTracker {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

fn serve(
    stream: &mut std::net::TcpStream,
    log: &Mutex<Vec<Announce>>,
    peers: &Mutex<HashMap<Vec<u8>, Vec<SocketAddr>>>,
) {
    let Some(request) = read_request_head(stream) else {
        return;
    };
    let line = String::from_utf8_lossy(&request)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    let query = line
        .split(' ')
        .nth(1)
        .and_then(|p| p.split_once('?'))
        .map(|(_, q)| q.to_string())
        .unwrap_or_default();
    let mut params: HashMap<String, Vec<u8>> = HashMap::new();
    for pair in query.split('&') {
        if let Some((k, v)) = pair.split_once('=') {
            params.insert(k.to_string(), percent_decode(v));
        }
    }
    let text = |k: &str| {
        params
            .get(k)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    };
    let info_hash = params.get("info_hash").cloned().unwrap_or_default();
    let port: u16 = text("port").and_then(|p| p.parse().ok()).unwrap_or(0);
    let event = text("event");
    let number = |k: &str| text(k).and_then(|l| l.parse().ok()).unwrap_or(0);
    log.lock().unwrap().push(Announce {
        info_hash: info_hash.clone(),
        port,
        event: event.clone(),
        left: number("left"),
        downloaded: number("downloaded"),
        uploaded: number("uploaded"),
    });
    let me = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut swarms = peers.lock().unwrap();
    let swarm = swarms.entry(info_hash).or_default();
    if event.as_deref() == Some("stopped") {
        swarm.retain(|a| *a != me);
    } else if !swarm.contains(&me) {
        swarm.push(me);
    }
    let mut compact = Vec::new();
    for peer in swarm.iter().filter(|a| **a != me) {
        if let SocketAddr::V4(v4) = peer {
            compact.extend_from_slice(&v4.ip().octets());
            compact.extend_from_slice(&v4.port().to_be_bytes());
        }
    }
    let mut body = format!("d8:intervali2e5:peers{}:", compact.len()).into_bytes();
    body.extend_from_slice(&compact);
    body.push(b'e');
    let mut response = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    response.extend_from_slice(&body);
    let _ = stream.write_all(&response);
}

fn percent_decode(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

/// A tracker that answers every announce with a failure reason.
pub fn refusing_tracker(reason: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/announce", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = read_request_head(&mut stream);
            let body = format!("d14:failure reason{}:{reason}e", reason.len());
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

/// Reads an HTTP request up to the end of its head (`None`: the peer closed or went quiet
/// first).
pub fn read_request_head(stream: &mut impl Read) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut buf = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    Some(head)
}

/// Deterministic pseudo-random bytes.
pub fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407)
        | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Writes `files` (relative path, length) under `root`, with deterministic content.
pub fn write_files(root: &Path, files: &[(&str, usize)]) {
    for (i, (path, len)) in files.iter().enumerate() {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, data(*len, i as u64 + 1)).unwrap();
    }
}

/// A torrent for the file or folder at `path`, announcing to `tracker`.
pub fn torrent_for(path: &Path, piece_length: u64, tracker: &str) -> Vec<u8> {
    let options = CreateOptions {
        trackers: vec![tracker.to_string()],
        piece_length: Some(piece_length),
        ..Default::default()
    };
    create_torrent(path, &options, &CreateProgress::default()).unwrap()
}

/// A session listening on 127.0.0.1 with its state in `state_dir`.
pub fn session(state_dir: &Path, upload_limit: u64) -> SessionHandle {
    session_bound(
        state_dir,
        rivulet::net::Binding::Address(Ipv4Addr::LOCALHOST.into()),
        upload_limit,
    )
}

/// A session bound to `bind` (on a port of the system's choice) with its state in
/// `state_dir`.
pub fn session_bound(
    state_dir: &Path,
    bind: rivulet::net::Binding,
    upload_limit: u64,
) -> SessionHandle {
    session_configured(state_dir, |config| {
        config.bind = bind;
        config.upload_limit = upload_limit;
    })
}

/// A session listening on 127.0.0.1 (a port of the system's choice) with its state in
/// `state_dir`, restoring nothing, configured further by `edit`.
pub fn session_configured(
    state_dir: &Path,
    edit: impl FnOnce(&mut SessionConfig),
) -> SessionHandle {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let mut config = SessionConfig::with_state_dir(state_dir.to_path_buf());
    config.restore_saved = false;
    config.bind = rivulet::net::Binding::Address(Ipv4Addr::LOCALHOST.into());
    config.listen_port = 0;
    edit(&mut config);
    Session::start(config, None).unwrap()
}

pub fn add(session: &SessionHandle, torrent: &[u8], save_dir: &Path, seed: bool) {
    session.send(Command::Add(AddTorrent {
        source: AddSource::Bytes(torrent.to_vec()),
        save_dir: save_dir.to_path_buf(),
        paused: false,
        seed,
        plan: Default::default(),
    }));
}

/// A session seeding `torrent` from `data_dir` (upload limited to `upload_limit` B/s, 0 for
/// none), once it has verified the data. Keep the returned folder alive with the session.
pub fn start_seeder(
    torrent: &[u8],
    data_dir: &Path,
    upload_limit: u64,
) -> (tempfile::TempDir, SessionHandle) {
    let state = tempfile::tempdir().unwrap();
    let seeder = session(state.path(), upload_limit);
    add(&seeder, torrent, data_dir, true);
    wait_for(
        &seeder,
        Duration::from_secs(20),
        "the seeder to verify its data",
        |t| t.state == rivulet::engine::TorrentState::Seeding,
    );
    (state, seeder)
}

/// Polls the session's first torrent until `done` holds, or panics after `timeout`.
pub fn wait_for(
    session: &SessionHandle,
    timeout: Duration,
    what: &str,
    done: impl FnMut(&TorrentSnapshot) -> bool,
) -> Arc<TorrentSnapshot> {
    poll_torrent(session, timeout, what, |ts| ts.first(), done)
}

/// Polls the session's torrent `id` until `done` holds, or panics after `timeout`.
pub fn wait_for_id(
    session: &SessionHandle,
    id: InfoHash,
    timeout: Duration,
    what: &str,
    done: impl FnMut(&TorrentSnapshot) -> bool,
) -> Arc<TorrentSnapshot> {
    poll_torrent(
        session,
        timeout,
        what,
        |ts| ts.iter().find(|t| t.id == id),
        done,
    )
}

fn poll_torrent(
    session: &SessionHandle,
    timeout: Duration,
    what: &str,
    pick: impl Fn(&[Arc<TorrentSnapshot>]) -> Option<&Arc<TorrentSnapshot>>,
    mut done: impl FnMut(&TorrentSnapshot) -> bool,
) -> Arc<TorrentSnapshot> {
    let start = Instant::now();
    loop {
        let snapshot = session.snapshot();
        if let Some(t) = pick(&snapshot.torrents)
            && done(t)
        {
            return t.clone();
        }
        if start.elapsed() > timeout {
            panic!(
                "timed out waiting for {what}: {:?}",
                pick(&snapshot.torrents)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A session on 127.0.0.1 with its state in `state_dir`, restoring what is saved there if
/// `restore` (as the desktop app does).
pub fn session_with_state(state_dir: &Path, restore: bool) -> SessionHandle {
    let mut config = SessionConfig::with_state_dir(state_dir.to_path_buf());
    config.restore_saved = restore;
    config.bind = rivulet::net::Binding::Address(Ipv4Addr::LOCALHOST.into());
    config.listen_port = 0;
    Session::start(config, None).unwrap()
}

/// Our side of a BitTorrent handshake.
pub fn handshake(info_hash: &[u8; 20], peer_id: &[u8; 20]) -> Vec<u8> {
    let mut hello = vec![19u8];
    hello.extend_from_slice(b"BitTorrent protocol");
    hello.extend_from_slice(&[0; 8]);
    hello.extend_from_slice(info_hash);
    hello.extend_from_slice(peer_id);
    hello
}

/// Asserts that `a` and `b` hold the same files with the same bytes: none missing, none extra.
pub fn assert_same_tree(a: &Path, b: &Path) {
    let relative = |root: &Path| -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = walk(root)
            .into_iter()
            .map(|p| p.strip_prefix(root).unwrap().to_path_buf())
            .collect();
        files.sort();
        files
    };
    let (in_a, in_b) = (relative(a), relative(b));
    let extra: Vec<&PathBuf> = in_b.iter().filter(|p| !in_a.contains(p)).collect();
    assert!(
        extra.is_empty(),
        "extra files under {}: {extra:?}",
        b.display()
    );
    for entry in walk(a) {
        let rel = entry.strip_prefix(a).unwrap();
        let other = b.join(rel);
        assert!(other.exists(), "{} is missing", other.display());
        assert!(
            std::fs::read(&entry).unwrap() == std::fs::read(&other).unwrap(),
            "{} differs",
            rel.display()
        );
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p))
        } else {
            out.push(p)
        }
    }
    out
}

/// This process's user and system CPU time, in seconds (from /proc).
pub fn process_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of /proc/PID/stat (11 and 12 after the name).
    (ticks(11) + ticks(12)) / 100.0
}

/// This process's resident memory now, in MiB (from /proc).
pub fn process_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

/// The settings a test session applies: its port, the binding, and everything else off
/// (no DHT, LSD, tracker, port mapping or limits).
pub fn engine_settings(
    listen_port: u16,
    bind: rivulet::net::Binding,
) -> rivulet::engine::EngineSettings {
    rivulet::engine::EngineSettings {
        listen_port,
        max_peers_per_torrent: 50,
        upload_slots: 4,
        download_limit: 0,
        upload_limit: 0,
        max_open_files: rivulet::storage::DEFAULT_OPEN_FILES,
        download_dir: None,
        tracker: None,
        dht: None,
        lsd: false,
        encryption: Default::default(),
        bind,
        port_mapping: false,
        transport: rivulet::net::TransportMode::TcpOnly,
        queue: rivulet::engine::QueueSettings {
            enabled: false,
            ..Default::default()
        },
        seed_goals: Default::default(),
    }
}
