//! Torrents that try to write outside their folder: `..`, absolute paths, empty components,
//! over-long names, names that differ only in case, and a symlink planted in the save folder
//! beforehand. Nothing outside the save folder changes (checked byte for byte), the unsafe
//! torrents are refused with a reason, and the legitimate odd names download intact.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use rivulet::bencode::Value;
use rivulet::engine::{Event, SessionHandle, TorrentError, TorrentState};
use rivulet::metainfo::Metainfo;
use sha1::{Digest, Sha1};

const PIECE: usize = 16 * 1024;

/// A multi-file torrent built by hand, so that it can hold what `create` never makes.
fn raw_torrent(name: &str, files: &[(Vec<&str>, Vec<u8>)], tracker: &str) -> Vec<u8> {
    let all: Vec<u8> = files.iter().flat_map(|(_, d)| d.clone()).collect();
    let pieces: Vec<u8> = all
        .chunks(PIECE)
        .flat_map(|c| <[u8; 20]>::from(Sha1::digest(c)))
        .collect();
    let list = files
        .iter()
        .map(|(path, d)| {
            Value::dict([
                ("length", Value::Int(d.len() as i64)),
                (
                    "path",
                    Value::List(
                        path.iter()
                            .map(|p| Value::Bytes(p.as_bytes().to_vec()))
                            .collect(),
                    ),
                ),
            ])
        })
        .collect();
    let info = Value::dict([
        ("name", Value::Bytes(name.as_bytes().to_vec())),
        ("piece length", Value::Int(PIECE as i64)),
        ("pieces", Value::Bytes(pieces)),
        ("files", Value::List(list)),
    ]);
    Value::dict([
        ("announce", Value::Bytes(tracker.as_bytes().to_vec())),
        ("info", info),
    ])
    .encode()
}

/// Every entry under `root` except `skip`: path → file bytes, link target, or a folder mark.
fn tree(root: &Path, skip: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path == skip {
                continue;
            }
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let rel = path.strip_prefix(root).unwrap().to_path_buf();
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).unwrap();
                out.insert(rel, format!("link → {}", target.display()).into_bytes());
            } else if meta.is_dir() {
                out.insert(rel, b"folder".to_vec());
                stack.push(path);
            } else {
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

fn next_add_result(session: &mut SessionHandle) -> Result<(), String> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        match session.try_event() {
            Some(Event::Added { .. }) => return Ok(()),
            Some(Event::AddFailed { error, .. }) => return Err(error.to_string()),
            Some(_) => {}
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    panic!("no answer to an add");
}

#[test]
fn nothing_is_written_outside_the_save_folder() {
    let tracker = TestTracker::start();
    let jail = tempfile::tempdir().unwrap();
    let save = jail.path().join("save");
    let outside = jail.path().join("outside");
    std::fs::create_dir_all(&save).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("cover.jpg"), b"the user's own picture").unwrap();
    std::fs::write(jail.path().join("neighbor.txt"), b"next door").unwrap();
    // Planted before the download: the torrent's folder is a link to elsewhere.
    std::os::unix::fs::symlink(&outside, save.join("album")).unwrap();
    let before = tree(jail.path(), &save);

    let state = tempfile::tempdir().unwrap();
    let mut leecher = session(state.path(), 0);
    let refused = [
        (
            "dotdot",
            vec![vec!["..", "..", "neighbor.txt"]],
            "relative path component",
        ),
        ("absolute", vec![vec!["/etc/evil"]], "path separator"),
        ("empty", vec![vec!["", "x"]], "empty path component"),
        ("..", vec![vec!["x"]], "relative path component"),
        ("/tmp/abs", vec![vec!["x"]], "path separator"),
    ];
    for (name, paths, reason) in &refused {
        let files: Vec<_> = paths.iter().map(|p| (p.clone(), data(5000, 1))).collect();
        add(
            &leecher,
            &raw_torrent(name, &files, &tracker.url),
            &save,
            false,
        );
        let message = next_add_result(&mut leecher).unwrap_err();
        assert!(message.contains(reason), "{name}: {message}");
    }

    // Odd but legitimate names: both spellings of one name, and a 300-byte name (shortened to
    // the file system's 255).
    let long = format!("{}.txt", "n".repeat(296));
    let odd_files = vec![
        (vec!["Readme.txt"], data(20_000, 2)),
        (vec!["README.txt"], data(30_000, 3)),
        (vec![long.as_str()], data(10_000, 4)),
    ];
    let odd = raw_torrent("mixed", &odd_files, &tracker.url);
    let odd_meta = Metainfo::from_bytes(&odd).unwrap();
    let seed_dir = tempfile::tempdir().unwrap();
    for (file, (_, bytes)) in odd_meta.files.iter().zip(&odd_files) {
        let path = seed_dir.path().join(&file.path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
    let (_odd_state, _odd_seeder) = start_seeder(&odd, seed_dir.path(), 0);

    // Into the planted link: refused by the storage layer.
    let linked = raw_torrent(
        "album",
        &[(vec!["cover.jpg"], data(40_000, 5))],
        &tracker.url,
    );
    let link_seed = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(link_seed.path().join("album")).unwrap();
    std::fs::write(link_seed.path().join("album/cover.jpg"), data(40_000, 5)).unwrap();
    let (_link_state, _link_seeder) = start_seeder(&linked, link_seed.path(), 0);

    add(&leecher, &odd, &save, false);
    next_add_result(&mut leecher).unwrap();
    add(&leecher, &linked, &save, false);
    next_add_result(&mut leecher).unwrap();
    let start = Instant::now();
    loop {
        let snapshot = leecher.snapshot();
        let state = |name: &str| {
            snapshot
                .torrents
                .iter()
                .find(|t| t.name == name)
                .map(|t| t.state.clone())
        };
        let odd_done = state("mixed") == Some(TorrentState::Finished);
        let link_state = state("album");
        if odd_done && matches!(link_state, Some(TorrentState::Error(_))) {
            let Some(TorrentState::Error(error)) = link_state else {
                unreachable!()
            };
            assert!(
                matches!(error, TorrentError::OutsideSaveFolder(_)),
                "{error}"
            );
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{:?}",
            snapshot.torrents
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    for (file, (_, bytes)) in odd_meta.files.iter().zip(&odd_files) {
        assert!(
            std::fs::read(save.join(&file.path)).unwrap() == *bytes,
            "{}",
            file.path.display()
        );
    }
    drop(leecher);
    assert_eq!(
        tree(jail.path(), &save),
        before,
        "nothing outside the save folder changed"
    );
    let inside: Vec<_> = tree(&save, Path::new("")).into_keys().collect();
    let mut expected = vec![PathBuf::from("album"), PathBuf::from("mixed")];
    expected.extend(odd_meta.files.iter().map(|f| f.path.clone()));
    expected.sort();
    assert_eq!(
        inside, expected,
        "only the odd torrent's files were written"
    );
}

/// The tree comparison every download test ends with sees a file too many, not only a file
/// missing or different.
#[test]
#[should_panic(expected = "extra files")]
fn the_tree_comparison_sees_an_extra_file() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for dir in [a.path(), b.path()] {
        std::fs::write(dir.join("same.bin"), b"same bytes").unwrap();
    }
    std::fs::write(b.path().join("stray.bin"), b"not in the torrent").unwrap();
    assert_same_tree(a.path(), b.path());
}
