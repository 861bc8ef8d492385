//! The command line over the engine: exit codes, `create`/`info`, and a download that is
//! killed with SIGKILL and run again.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_rivulet");

#[test]
fn bad_torrent_is_one_clear_line_and_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.torrent");
    std::fs::write(
        &bad,
        b"d4:infod6:lengthi5e4:name1:x12:piece lengthi0e6:pieces20:aaaaaaaaaaaaaaaaaaaaee",
    )
    .unwrap();
    let out = Command::new(BIN).arg("info").arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("bad.torrent") && stderr.contains("piece length"),
        "{stderr}"
    );

    let missing = Command::new(BIN)
        .args(["download", "/nonexistent.torrent", "-o"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    let usage = Command::new(BIN)
        .args(["download", "--no-such-flag"])
        .output()
        .unwrap();
    assert_eq!(usage.status.code(), Some(2));
}

#[test]
fn create_then_info() {
    let dir = tempfile::tempdir().unwrap();
    write_files(
        dir.path(),
        &[("folder/a.bin", 50_000), ("folder/b/c.bin", 10)],
    );
    let torrent = dir.path().join("folder.torrent");
    let created = Command::new(BIN)
        .args(["create"])
        .arg(dir.path().join("folder"))
        .arg("-o")
        .arg(&torrent)
        .args([
            "--tracker",
            "http://127.0.0.1:6969/announce",
            "--piece-length",
            "16384",
            "--comment",
            "hi",
        ])
        .output()
        .unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let info = Command::new(BIN)
        .arg("info")
        .arg(&torrent)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&info.stdout);
    assert!(text.contains("name: folder"), "{text}");
    assert!(text.contains("pieces: 4 x 16.0 KiB"), "{text}");
    assert!(
        text.contains("  1: folder/b/c.bin"),
        "files are numbered: {text}"
    );
    assert!(text.contains("comment: hi"), "{text}");
    let meta = rivulet::metainfo::Metainfo::from_bytes(&std::fs::read(&torrent).unwrap()).unwrap();
    assert!(text.contains(&format!("info hash: {}", meta.info_hash)));
}

/// `download --only` takes the files `info` numbers, and nothing else; a number past the
/// torrent's files is a clear error.
#[test]
fn download_only_some_files_sequentially() {
    let tracker = TestTracker::start();
    let dir = tempfile::tempdir().unwrap();
    write_files(
        dir.path(),
        &[
            ("set/a.bin", 40_000),
            ("set/b.bin", 100_000),
            ("set/c.bin", 30_000),
        ],
    );
    let torrent = dir.path().join("set.torrent");
    std::fs::write(
        &torrent,
        torrent_for(&dir.path().join("set"), 16384, &tracker.url),
    )
    .unwrap();
    let seeded = std::fs::read(&torrent).unwrap();
    let (_seed_state, _seeder) = start_seeder(&seeded, dir.path(), 0);
    let info = Command::new(BIN)
        .arg("info")
        .arg(&torrent)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&info.stdout);
    assert!(text.contains("  2: set/c.bin"), "{text}");

    let out = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let download = |only: &str| {
        Command::new(BIN)
            .arg("download")
            .arg(&torrent)
            .arg("-o")
            .arg(out.path())
            .args(["--only", only, "--sequential"])
            .args(["--port", "0", "--bind", "127.0.0.1", "--state-dir"])
            .arg(state.path())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut past = download("0,3");
    let status = wait_exit(&mut past, Duration::from_secs(10), "--only 0,3");
    assert_eq!(status.code(), Some(2));
    let mut stderr = String::new();
    std::io::Read::read_to_string(past.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("there is no file 3"), "{stderr}");

    let mut child = download("0,2");
    wait_success(
        &mut child,
        Duration::from_secs(60),
        "the download of files 0 and 2",
    );
    for f in ["set/a.bin", "set/c.bin"] {
        assert_eq!(
            std::fs::read(out.path().join(f)).unwrap(),
            std::fs::read(dir.path().join(f)).unwrap(),
            "{f}"
        );
    }
    assert!(
        !out.path().join("set/b.bin").exists(),
        "file 1 was not chosen"
    );
}

/// `rivulet seed`, stopped (SIGTERM, as Ctrl-C), says exactly how much it uploaded.
#[test]
fn seed_stopped_says_what_it_uploaded() {
    const SIZE: usize = 300_000;
    let tracker = TestTracker::start();
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), &[("album.flac", SIZE)]);
    let torrent_bytes = torrent_for(&dir.path().join("album.flac"), 16384, &tracker.url);
    let torrent = dir.path().join("album.torrent");
    std::fs::write(&torrent, &torrent_bytes).unwrap();
    let seed_state = tempfile::tempdir().unwrap();
    let mut seeder = Command::new(BIN)
        .arg("seed")
        .arg(&torrent)
        .arg(dir.path())
        .args(["--port", "0", "--bind", "127.0.0.1", "--state-dir"])
        .arg(seed_state.path())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let leecher = session(state.path(), 0);
    add(&leecher, &torrent_bytes, out.path(), false);
    wait_for(&leecher, Duration::from_secs(30), "the download", |t| {
        t.progress == 1.0
    });
    // The seeder's next snapshot counts the last block.
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: kill has no memory preconditions; the pid is our child's.
    unsafe { libc::kill(seeder.id() as i32, libc::SIGTERM) };
    let status = wait_exit(&mut seeder, Duration::from_secs(10), "the stopped seeder");
    assert_eq!(status.code(), Some(130));
    let mut stderr = String::new();
    std::io::Read::read_to_string(seeder.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("album.flac: stopped; downloaded 0 B (0 bytes), uploaded "),
        "{stderr}"
    );
    let uploaded: usize = last
        .rsplit_once('(')
        .and_then(|(_, bytes)| bytes.strip_suffix(" bytes)"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{last}"));
    assert!(
        (SIZE..SIZE + 16384 * 4).contains(&uploaded),
        "the seeder uploaded the file once: {uploaded} bytes"
    );
}

/// `rivulet info 'magnet:?…'` prints what the link holds without fetching; a bad link is a
/// clear error and exit code 2.
#[test]
fn info_reads_a_magnet_link() {
    let info = |link: &str| Command::new(BIN).arg("info").arg(link).output().unwrap();
    let out = info(
        "magnet:?xt=urn:btih:ZHQVOY7XELZD5GFCTXWN7LRUDOMNKMCW&dn=Big+Buck+Bunny\
         &tr=udp%3A%2F%2Ftracker.example%3A80&x.pe=10.0.0.1:6881&so=0,2-4&xl=276134947",
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for line in [
        "name: Big Buck Bunny",
        "info hash: c9e15763f722f23e98a29decdfae341b98d53056",
        "size: 263.3 MiB (276134947 bytes)",
        "tracker tier 1: udp://tracker.example:80",
        "peer: 10.0.0.1:6881",
        "files chosen: 0,2-4",
    ] {
        assert!(text.contains(line), "{line:?} in {text}");
    }
    // A reader that stops early (`| head -n 1`) ends it quietly.
    let mut child = Command::new(BIN)
        .arg("info")
        .arg("magnet:?xt=urn:btih:ZHQVOY7XELZD5GFCTXWN7LRUDOMNKMCW&tr=udp%3A%2F%2Fa.example%3A1&tr=udp%3A%2F%2Fb.example%3A1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("panicked"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bad = info("magnet:?xt=urn:btmh:1220abcd");
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&bad.stderr)
            .contains("BitTorrent v2-only magnet links are not supported yet")
    );
}

#[test]
fn download_killed_and_run_again_resumes() {
    let tracker = TestTracker::start();
    let seed_dir = tempfile::tempdir().unwrap();
    let total = 5 << 20;
    std::fs::write(seed_dir.path().join("movie.bin"), data(total, 11)).unwrap();
    let torrent_bytes = torrent_for(&seed_dir.path().join("movie.bin"), 32 * 1024, &tracker.url);
    let (_seeder_state, seeder) = start_seeder(&torrent_bytes, seed_dir.path(), 1 << 20);

    let work = tempfile::tempdir().unwrap();
    let torrent = work.path().join("movie.torrent");
    std::fs::write(&torrent, &torrent_bytes).unwrap();
    let out = work.path().join("out");
    let state = work.path().join("state");
    let download = || {
        let mut c = Command::new(BIN);
        c.arg("download").arg(&torrent).arg("-o").arg(&out);
        // The seeder (a library session) speaks TCP only: dialling uTP first would spend
        // the 2.5 s before the kill waiting 3 s for a uTP answer.
        c.args([
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
            "--transport",
            "tcp",
            "--state-dir",
        ])
        .arg(&state);
        c.stdout(Stdio::null()).stderr(Stdio::null());
        c
    };
    let mut first = download().spawn().unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    first.kill().unwrap(); // SIGKILL
    let status = first.wait().unwrap();
    assert!(!status.success(), "the first run was killed mid-download");
    let sent_before = seeder.snapshot().torrents[0].uploaded;
    assert!(
        sent_before > (total / 4) as u64 && sent_before < total as u64,
        "killed mid-way: {sent_before}"
    );

    let mut second = download().spawn().unwrap();
    wait_success(&mut second, Duration::from_secs(60), "the second run");
    assert_same_tree(seed_dir.path(), &out);
    let sent = seeder.snapshot().torrents[0].uploaded;
    assert!(
        sent <= total as u64 + (1 << 20),
        "verified pieces were not sent again: {sent} bytes for {total}"
    );
}

/// `--remove-tracker` and `--add-tracker` edit the torrent's trackers for the download, and
/// `rivulet scrape` reports each tracker's counts.
#[test]
fn download_with_edited_trackers_and_scrape() {
    use rivulet::tracker::server::{Access, RunningTracker, TrackerConfig};
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let config = TrackerConfig::new([127, 0, 0, 1].into(), 0, Access::Open);
    let tracker = runtime.block_on(RunningTracker::start(config)).unwrap();
    let good = tracker.http_url("127.0.0.1");
    let dead_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = format!("http://127.0.0.1:{dead_port}/announce");

    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), &[("clip.mov", 200_000)]);
    let seeded = torrent_for(&dir.path().join("clip.mov"), 16384, &good);
    let (_seed_state, _seeder) = start_seeder(&seeded, dir.path(), 0);
    let files = tempfile::tempdir().unwrap();
    let with_dead = files.path().join("dead.torrent");
    std::fs::write(
        &with_dead,
        torrent_for(&dir.path().join("clip.mov"), 16384, &dead),
    )
    .unwrap();

    let out = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .arg("download")
        .arg(&with_dead)
        .arg("-o")
        .arg(out.path())
        .args(["--port", "0", "--bind", "127.0.0.1", "--state-dir"])
        .arg(state.path())
        .args(["--remove-tracker", &dead, "--add-tracker", &good])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("the download did not finish");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success());
    assert_same_tree(dir.path(), out.path());

    let seeded_file = files.path().join("seeded.torrent");
    std::fs::write(&seeded_file, &seeded).unwrap();
    let scrape = Command::new(BIN)
        .arg("scrape")
        .arg(&seeded_file)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&scrape.stdout);
    assert_eq!(scrape.status.code(), Some(0), "{text}");
    assert!(
        text.contains(&format!("{good}: 1 seeders, 0 leechers, 1 completed")),
        "{text}"
    );
    let scrape = Command::new(BIN)
        .arg("scrape")
        .arg(&with_dead)
        .output()
        .unwrap();
    assert_eq!(scrape.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&scrape.stdout).contains("unreachable"));

    let bad = Command::new(BIN)
        .arg("download")
        .arg(&with_dead)
        .arg("-o")
        .arg(out.path())
        .args(["--add-tracker", "gopher://x"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2), "a bad tracker URL is bad input");
}

/// Pieces of `content` whose bytes are already right in `file` (a piece reaches the disk only
/// once its hash matched).
fn pieces_on_disk(file: &std::path::Path, content: &[u8], piece: usize) -> usize {
    let on_disk = std::fs::read(file).unwrap_or_default();
    content
        .chunks(piece)
        .enumerate()
        .filter(|(i, want)| on_disk.get(i * piece..i * piece + want.len()) == Some(want))
        .count()
}

/// The seeder's upload total once it has stopped moving (snapshots lag a few hundred ms).
fn settled_upload(seeder: &rivulet::engine::SessionHandle) -> u64 {
    let mut last = seeder.snapshot().torrents[0].uploaded;
    loop {
        std::thread::sleep(Duration::from_millis(600));
        let now = seeder.snapshot().torrents[0].uploaded;
        if now == last {
            return now;
        }
        last = now;
    }
}

/// SIGKILLs `child` the moment it starts a resume save in `dir` (inotify: a file named after
/// the resume file created or written), so that the kill lands while the save is being
/// written. Returns whether a save began within `within`.
fn kill_at_next_resume_save(
    child: &mut std::process::Child,
    dir: &std::path::Path,
    within: Duration,
) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).unwrap();
    // SAFETY: plain inotify calls on a descriptor owned here and closed below; the buffer
    // outlives every read into it.
    unsafe {
        let fd = libc::inotify_init1(libc::IN_CLOEXEC);
        assert!(fd >= 0);
        assert!(libc::inotify_add_watch(fd, path.as_ptr(), libc::IN_CREATE | libc::IN_MODIFY) >= 0);
        let deadline = Instant::now() + within;
        let mut seen = false;
        let mut buf = [0u8; 4096];
        while !seen {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                break;
            };
            let mut poll = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            if libc::poll(&mut poll, 1, left.as_millis() as i32 + 1) <= 0 {
                continue;
            }
            let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
            let mut at = 0usize;
            while n > 0 && at + 16 <= n as usize {
                let len = u32::from_ne_bytes(buf[at + 12..at + 16].try_into().unwrap()) as usize;
                let name = String::from_utf8_lossy(&buf[at + 16..at + 16 + len]);
                if name.contains(".resume") {
                    libc::kill(child.id() as i32, libc::SIGKILL);
                    seen = true;
                }
                at += 16 + len;
            }
        }
        libc::close(fd);
        seen
    }
}

/// Waits for `child` to exit successfully within `within`.
fn wait_success(child: &mut std::process::Child, within: Duration, what: &str) {
    let status = wait_exit(child, within, what);
    assert!(status.success(), "{what}: {status}");
}

fn wait_exit(
    child: &mut std::process::Child,
    within: Duration,
    what: &str,
) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(start.elapsed() < within, "{what} did not finish");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `rivulet download` SIGKILLed again and again: at set amounts of verified data (an eighth of
/// the torrent, a quarter, ...), at the moment it writes its resume file, and after its resume
/// file was truncated or replaced by garbage (both reported, then rechecked). Each run may
/// lose only what it had in flight: the seeder sends each run at most two pieces more than the
/// pieces that run adds to the disk, and the final data is whole. Were verified pieces
/// fetched again after a restart, a run would cost many pieces more.
#[test]
fn download_killed_at_set_progress_and_mid_save_resends_at_most_two_pieces_per_kill() {
    const PIECE: usize = 1 << 20;
    const TOTAL: usize = 16 << 20;
    let tracker = TestTracker::start();
    let seed_dir = tempfile::tempdir().unwrap();
    let content = data(TOTAL, 17);
    std::fs::write(seed_dir.path().join("disk.img"), &content).unwrap();
    let torrent_bytes = torrent_for(
        &seed_dir.path().join("disk.img"),
        PIECE as u64,
        &tracker.url,
    );
    let meta = rivulet::metainfo::Metainfo::from_bytes(&torrent_bytes).unwrap();
    // 1 MiB/s: the pipeline holds about a second of data, one piece.
    let (_seeder_state, seeder) = start_seeder(&torrent_bytes, seed_dir.path(), 1 << 20);

    let work = tempfile::tempdir().unwrap();
    let torrent = work.path().join("disk.torrent");
    std::fs::write(&torrent, &torrent_bytes).unwrap();
    let (out, state) = (work.path().join("out"), work.path().join("state"));
    let file = out.join("disk.img");
    let torrents_dir = state.join("torrents");
    let resume = torrents_dir.join(format!("{}.resume", meta.info_hash.to_hex()));
    let download = || {
        let mut c = Command::new(BIN);
        c.arg("download").arg(&torrent).arg("-o").arg(&out);
        c.args(["--bind", "127.0.0.1", "--port", "0", "--state-dir"])
            .arg(&state);
        c.stdout(Stdio::null()).stderr(Stdio::piped());
        c
    };

    let (mut sent, mut on_disk) = (settled_upload(&seeder), 0);
    let mut kills = 0;
    let (mut mid_save_kills, mut damaged_reports) = (0, 0);
    // Checks one killed run: what it cost against what it added.
    let mut account = |child: std::process::Child, what: &str| {
        let stderr =
            String::from_utf8_lossy(&child.wait_with_output().unwrap().stderr).into_owned();
        if stderr.contains("damaged resume data") {
            damaged_reports += 1;
        }
        let sent_now = settled_upload(&seeder);
        let on_disk_now = pieces_on_disk(&file, &content, PIECE);
        let added = on_disk_now.saturating_sub(on_disk) * PIECE;
        let resent = (sent_now - sent).saturating_sub(added as u64);
        println!(
            "{what}: {} pieces on disk, {} KiB sent, {} KiB of it lost",
            on_disk_now,
            (sent_now - sent) >> 10,
            resent >> 10
        );
        assert!(
            on_disk_now >= on_disk,
            "{what}: pieces on disk went from {on_disk} to {on_disk_now}"
        );
        assert!(
            resent <= 2 * PIECE as u64,
            "{what}: {resent} bytes sent and not kept (more than two pieces)"
        );
        (sent, on_disk) = (sent_now, on_disk_now);
    };

    for eighth in 1..=7 {
        match eighth {
            4 => {
                let bytes = std::fs::read(&resume).unwrap();
                std::fs::write(&resume, &bytes[..bytes.len() / 2]).unwrap();
            }
            6 => std::fs::write(&resume, b"\x00garbage\xff").unwrap(),
            _ => {}
        }
        let mut child = download().spawn().unwrap();
        let target = TOTAL / PIECE * eighth / 8;
        let start = Instant::now();
        while pieces_on_disk(&file, &content, PIECE) < target {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "no progress to {eighth}/8"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        if matches!(eighth, 4 | 6) {
            // Long enough to have read (and reported) its damaged resume file, even when the
            // data on disk is already past the target.
            std::thread::sleep(Duration::from_millis(1500).saturating_sub(start.elapsed()));
        }
        child.kill().unwrap(); // SIGKILL
        kills += 1;
        account(child, &format!("killed at {eighth}/8"));
        if eighth % 3 == 0 {
            // Every restart checks the files it finds changed, then saves: kill it there,
            // until one kill lands before the save's rename (its temporary file is left). The
            // window is short (a few milliseconds on an idle disk; about one kill in four lands
            // in it), hence up to 40 tries.
            // A restart that finds the files as its resume data says saves nothing at once:
            // killed after 3 s anyway (a kill at any moment), its new pieces make the next
            // restart check and save.
            for attempt in 1..=40 {
                let mut child = download().spawn().unwrap();
                let at_save =
                    kill_at_next_resume_save(&mut child, &torrents_dir, Duration::from_secs(3));
                if !at_save {
                    child.kill().unwrap();
                }
                kills += 1;
                account(
                    child,
                    &format!("killed while saving (attempt {attempt}, at a save: {at_save})"),
                );
                let leftovers = std::fs::read_dir(&torrents_dir)
                    .unwrap()
                    .filter_map(Result::ok)
                    .filter(|e| {
                        let name = e.file_name().to_string_lossy().into_owned();
                        name.contains(".resume.") && name.ends_with(".tmp")
                    })
                    .count();
                if leftovers > mid_save_kills {
                    mid_save_kills = leftovers;
                    break;
                }
            }
        }
    }
    assert_eq!(
        damaged_reports, 2,
        "the truncated and the garbage resume file were reported"
    );
    assert!(
        mid_save_kills >= 2,
        "kills landed in the middle of a resume save ({mid_save_kills})"
    );

    let mut last = download().spawn().unwrap();
    wait_success(&mut last, Duration::from_secs(60), "the last run");
    assert_same_tree(seed_dir.path(), &out);
    let total_sent = settled_upload(&seeder);
    println!(
        "after {kills} kills: {} KiB sent for {} KiB",
        total_sent >> 10,
        TOTAL >> 10
    );
    assert!(
        total_sent - sent <= (TOTAL - on_disk * PIECE + 2 * PIECE) as u64,
        "the last run fetched only what was missing"
    );
}

/// `rivulet doctor` watches a torrent and prints what holds it back (exit code 1 for a warning
/// or an error, 0 otherwise); `download` prints a finding as it appears.
#[test]
fn doctor_and_download_say_what_holds_a_torrent_back() {
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), &[("film.bin", 200_000)]);
    let doctor = |torrent: &std::path::Path, data: &std::path::Path| {
        let state = tempfile::tempdir().unwrap();
        Command::new(BIN)
            .arg("doctor")
            .arg(torrent)
            .arg("-o")
            .arg(data)
            .args([
                "--for",
                "4",
                "--port",
                "0",
                "--bind",
                "127.0.0.1",
                "--no-dht",
            ])
            .arg("--state-dir")
            .arg(state.path())
            .env("XDG_RUNTIME_DIR", state.path())
            .output()
            .unwrap()
    };

    // A tracker nobody answers, and no other source: nothing can start.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}/announce", dead.local_addr().unwrap());
    drop(dead);
    let stalled = dir.path().join("stalled.torrent");
    std::fs::write(
        &stalled,
        torrent_for(&dir.path().join("film.bin"), 16384, &dead_url),
    )
    .unwrap();
    let empty = tempfile::tempdir().unwrap();
    let out = doctor(&stalled, empty.path());
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(report.starts_with("film.bin: Downloading 0.0%"), "{report}");
    assert!(
        report.contains("  error: No peers known: its only tracker failed\n"),
        "{report}"
    );
    assert!(
        report.contains(&format!("      - Tracker {dead_url}: tracker unreachable")),
        "{report}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("film.bin: error: No peers known"),
        "the finding is printed as it appears: {stderr}"
    );

    // Complete data and a working tracker: seeding to nobody is no warning.
    let tracker = TestTracker::start();
    let healthy = dir.path().join("healthy.torrent");
    std::fs::write(
        &healthy,
        torrent_for(&dir.path().join("film.bin"), 16384, &tracker.url),
    )
    .unwrap();
    let out = doctor(&healthy, dir.path());
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{report}");
    assert!(report.starts_with("film.bin: Seeding 100.0%"), "{report}");
    assert!(
        report.contains("  info: Seeding, but no one is downloading"),
        "{report}"
    );

    // `download` prints a finding once, when it appears.
    let refusing = dir.path().join("refused.torrent");
    std::fs::write(
        &refusing,
        torrent_for(
            &dir.path().join("film.bin"),
            16384,
            &refusing_tracker("unregistered torrent"),
        ),
    )
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .arg("download")
        .arg(&refusing)
        .arg("-o")
        .arg(empty.path())
        .args([
            "--port",
            "0",
            "--bind",
            "127.0.0.1",
            "--no-dht",
            "--state-dir",
        ])
        .arg(state.path())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let start = Instant::now();
    let mut lines = Vec::new();
    while start.elapsed() < Duration::from_secs(8) {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
            lines.push(line);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let said = lines
        .iter()
        .filter(|l| l.contains("film.bin: warning: The only tracker says: unregistered torrent"))
        .count();
    assert_eq!(
        said, 1,
        "printed once, though the tracker keeps refusing: {lines:#?}"
    );
}
