//! Persistence: each torrent's .torrent file and resume data under the state folder, and
//! each magnet link whose torrent is not running yet (`.magnet`: the link and how it was
//! added), written atomically (temporary file, fsync, rename), so a crash leaves the old or
//! the new version.
//! The resume file's previous version is kept beside it (`.resume.bak`, a hard link), and
//! read when the current one is missing or damaged.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::bencode::{self, Value};
use crate::engine::goals::{Limit, TorrentGoals};
use crate::engine::wanted::{DownloadPlan, FilePriority};
use crate::ids::InfoHash;
use crate::storage::FileStamp;

/// What a restart needs to carry on where a torrent was.
#[derive(Debug, Clone, PartialEq)]
pub struct ResumeData {
    pub save_dir: PathBuf,
    pub paused: bool,
    pub seeding: bool,
    /// Wire-format bitfield of verified pieces.
    pub have: Vec<u8>,
    /// Size and mtime of each file when `have` was written.
    pub stamps: Vec<Option<FileStamp>>,
    pub downloaded: u64,
    pub uploaded: u64,
    pub added_at: u64,
    /// The tracker tiers as the user edited them; `None` while they are the torrent's own.
    pub trackers: Option<Vec<Vec<String>>>,
    /// File priorities and download order.
    pub plan: DownloadPlan,
    /// Force-started: the queue leaves it running.
    pub forced: bool,
    /// The torrent's own seeding goals, and how long it has seeded.
    pub goals: TorrentGoals,
    pub seeding_secs: u64,
    /// Its own rate limits, bytes per second (0: none).
    pub speed_limits: (u64, u64),
}

/// A magnet link added and not yet running as a torrent: fetching its metadata, or (with
/// `confirm`) waiting for the front end to confirm the add.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedMagnet {
    pub uri: String,
    pub save_dir: PathBuf,
    pub paused: bool,
    pub seeding: bool,
    /// The front end asks the user once the metadata is in.
    pub confirm: bool,
    pub added_at: u64,
    /// The tracker tiers as the user edited them; `None` while they are the link's own.
    pub trackers: Option<Vec<Vec<String>>>,
}

/// Resume data could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    #[error("cannot read {0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("resume file {0} is damaged: {1}")]
    Damaged(PathBuf, String),
}

fn torrents_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("torrents")
}

pub fn torrent_path(state_dir: &Path, id: InfoHash) -> PathBuf {
    torrents_dir(state_dir).join(format!("{}.torrent", id.to_hex()))
}

fn resume_path(state_dir: &Path, id: InfoHash) -> PathBuf {
    torrents_dir(state_dir).join(format!("{}.resume", id.to_hex()))
}

fn magnet_path(state_dir: &Path, id: InfoHash) -> PathBuf {
    torrents_dir(state_dir).join(format!("{}.magnet", id.to_hex()))
}

fn backup_path(state_dir: &Path, id: InfoHash) -> PathBuf {
    torrents_dir(state_dir).join(format!("{}.resume.bak", id.to_hex()))
}

/// A torrent saved in `state_dir`: its .torrent bytes and the folder its data is in.
pub fn find_saved(state_dir: &Path, id: InfoHash) -> Option<(Vec<u8>, PathBuf)> {
    let torrent = std::fs::read(torrent_path(state_dir, id)).ok()?;
    let save_dir = load(state_dir, id).ok()??.save_dir;
    Some((torrent, save_dir))
}

/// Copies a saved torrent's .torrent and resume file from the state folder `from` to `to`: a
/// session there knows its data without a recheck, and changes nothing in `from`.
pub fn copy_saved(from: &Path, to: &Path, id: InfoHash) -> std::io::Result<()> {
    std::fs::create_dir_all(torrents_dir(to))?;
    std::fs::copy(torrent_path(from, id), torrent_path(to, id))?;
    match std::fs::copy(resume_path(from, id), resume_path(to, id)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Writes `bytes` to `path` so that readers see either the old or the new content.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    // A temporary name of its own per write: `x.torrent` and `x.resume` (or two saves of
    // one file) written at once never share one.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let unique = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}-{unique}.tmp", std::process::id()));
    let tmp = path.with_file_name(name);
    let written = fs::File::create(&tmp)
        .and_then(|mut file| {
            file.write_all(bytes)?;
            file.sync_all()
        })
        .and_then(|()| fs::rename(&tmp, path));
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written?;
    // The rename itself survives a power cut once the folder is synced.
    if let Some(dir) = path.parent()
        && let Ok(dir) = fs::File::open(dir)
    {
        let _ = dir.sync_all();
    }
    Ok(())
}

pub fn save_torrent(state_dir: &Path, id: InfoHash, bytes: &[u8]) -> std::io::Result<()> {
    write_atomically(&torrent_path(state_dir, id), bytes)
}

/// Saves resume data; the version it replaces becomes the backup (best effort: a file system
/// without hard links keeps no backup).
pub fn save(state_dir: &Path, id: InfoHash, data: &ResumeData) -> std::io::Result<()> {
    let (path, backup) = (resume_path(state_dir, id), backup_path(state_dir, id));
    if path.exists() {
        let _ = fs::remove_file(&backup);
        let _ = fs::hard_link(&path, &backup);
    }
    write_atomically(&path, &encode(data))
}

/// Loads a torrent's resume data: `Ok(None)` when there is none. When the current version is
/// missing or damaged and the previous one is sound, the previous one is returned (its file
/// stamps will not match, so the data is checked; its save folder and settings are kept).
pub fn load(state_dir: &Path, id: InfoHash) -> Result<Option<ResumeData>, ResumeError> {
    match load_file(resume_path(state_dir, id)) {
        Ok(Some(data)) => Ok(Some(data)),
        current => match load_file(backup_path(state_dir, id)) {
            Ok(Some(previous)) => {
                if let Err(e) = &current {
                    tracing::warn!(error = %e, "damaged resume data; using the version before it");
                }
                Ok(Some(previous))
            }
            _ => current,
        },
    }
}

fn load_file(path: PathBuf) -> Result<Option<ResumeData>, ResumeError> {
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ResumeError::Io(path, e)),
    };
    decode(&bytes)
        .map(Some)
        .map_err(|why| ResumeError::Damaged(path, why))
}

pub fn save_magnet(state_dir: &Path, id: InfoHash, magnet: &SavedMagnet) -> std::io::Result<()> {
    let int = |b: bool| Value::Int(b.into());
    let mut entries = vec![
        ("uri", Value::Bytes(magnet.uri.as_bytes().to_vec())),
        (
            "save_dir",
            Value::Bytes(magnet.save_dir.to_string_lossy().into_owned().into_bytes()),
        ),
        ("paused", int(magnet.paused)),
        ("seeding", int(magnet.seeding)),
        ("confirm", int(magnet.confirm)),
        (
            "added_at",
            Value::Int(magnet.added_at.min(i64::MAX as u64) as i64),
        ),
    ];
    if let Some(tiers) = &magnet.trackers {
        entries.push(("trackers", encode_tiers(tiers)));
    }
    write_atomically(&magnet_path(state_dir, id), &Value::dict(entries).encode())
}

/// A saved magnet link: `Ok(None)` when there is none.
pub fn load_magnet(state_dir: &Path, id: InfoHash) -> Result<Option<SavedMagnet>, ResumeError> {
    let path = magnet_path(state_dir, id);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ResumeError::Io(path, e)),
    };
    let decoded = (|| {
        let v = bencode::decode(&bytes).map_err(|e| e.to_string())?;
        let text = |k: &str| v.get(k).and_then(Value::as_str).ok_or(format!("no {k}"));
        let int = |k: &str| {
            v.get(k)
                .and_then(Value::as_int)
                .filter(|n| *n >= 0)
                .ok_or(format!("no {k}"))
        };
        Ok::<_, String>(SavedMagnet {
            uri: text("uri")?.to_owned(),
            save_dir: text("save_dir")?.into(),
            paused: int("paused")? != 0,
            seeding: int("seeding")? != 0,
            confirm: int("confirm")? != 0,
            added_at: int("added_at")? as u64,
            trackers: v.get("trackers").map(decode_tiers).transpose()?,
        })
    })();
    decoded
        .map(Some)
        .map_err(|why| ResumeError::Damaged(path, why))
}

fn queue_path(state_dir: &Path) -> PathBuf {
    state_dir.join("queue")
}

/// Saves the queue order: one info hash (hex) a line.
pub fn save_queue(state_dir: &Path, order: &[InfoHash]) -> std::io::Result<()> {
    let text: String = order.iter().map(|id| id.to_hex() + "\n").collect();
    write_atomically(&queue_path(state_dir), text.as_bytes())
}

/// The saved queue order (lines that are not info hashes are skipped); empty if none.
pub fn load_queue(state_dir: &Path) -> Vec<InfoHash> {
    fs::read_to_string(queue_path(state_dir))
        .map(|text| text.lines().filter_map(InfoHash::from_hex).collect())
        .unwrap_or_default()
}

/// Forgets a saved magnet link (its torrent took its place).
pub fn remove_magnet(state_dir: &Path, id: InfoHash) {
    let _ = fs::remove_file(magnet_path(state_dir, id));
}

/// Forgets a torrent: its .torrent copy, its resume data, and its magnet link.
pub fn remove(state_dir: &Path, id: InfoHash) {
    let _ = fs::remove_file(magnet_path(state_dir, id));
    let _ = fs::remove_file(torrent_path(state_dir, id));
    let _ = fs::remove_file(resume_path(state_dir, id));
    let _ = fs::remove_file(backup_path(state_dir, id));
}

/// The torrents saved in the state folder, and the magnet links: each id once.
pub fn saved_torrents(state_dir: &Path) -> Vec<InfoHash> {
    let Ok(entries) = fs::read_dir(torrents_dir(state_dir)) else {
        return Vec::new();
    };
    let mut ids: Vec<InfoHash> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let hex = name
                .strip_suffix(".torrent")
                .or_else(|| name.strip_suffix(".magnet"))?;
            InfoHash::from_hex(hex)
        })
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

fn encode_tiers(tiers: &[Vec<String>]) -> Value {
    Value::List(
        tiers
            .iter()
            .map(|tier| {
                let urls = tier.iter().map(|u| Value::Bytes(u.as_bytes().to_vec()));
                Value::List(urls.collect())
            })
            .collect(),
    )
}

fn decode_tiers(tiers: &Value) -> Result<Vec<Vec<String>>, String> {
    tiers
        .as_list()
        .ok_or("bad trackers")?
        .iter()
        .map(|tier| {
            tier.as_list()
                .ok_or("bad trackers")?
                .iter()
                .map(|u| u.as_str().map(str::to_owned).ok_or("bad trackers"))
                .collect::<Result<Vec<_>, _>>()
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(str::to_owned)
}

fn encode(d: &ResumeData) -> Vec<u8> {
    let int = |n: u64| Value::Int(n.min(i64::MAX as u64) as i64);
    let stamps = d
        .stamps
        .iter()
        .map(|s| match s {
            Some(s) => Value::List(vec![
                int(s.length),
                Value::Bytes(s.mtime_ns.to_string().into_bytes()),
            ]),
            None => Value::List(vec![]),
        })
        .collect();
    let mut entries: Vec<(&str, Value)> = vec![
        (
            "save_dir",
            Value::Bytes(d.save_dir.to_string_lossy().into_owned().into_bytes()),
        ),
        ("paused", int(d.paused as u64)),
        ("seeding", int(d.seeding as u64)),
        ("have", Value::Bytes(d.have.clone())),
        ("stamps", Value::List(stamps)),
        ("downloaded", int(d.downloaded)),
        ("uploaded", int(d.uploaded)),
        ("added_at", int(d.added_at)),
    ];
    if let Some(tiers) = &d.trackers {
        entries.push(("trackers", encode_tiers(tiers)));
    }
    if !d.plan.priorities.is_empty() {
        let codes = d.plan.priorities.iter().map(|p| int(p.code().into()));
        entries.push(("file_priorities", Value::List(codes.collect())));
    }
    entries.push(("sequential", int(d.plan.sequential as u64)));
    entries.push(("first_last_first", int(d.plan.first_last_first as u64)));
    entries.push(("forced", int(d.forced as u64)));
    entries.push(("seeding_secs", int(d.seeding_secs)));
    entries.push(("down_limit", int(d.speed_limits.0)));
    entries.push(("up_limit", int(d.speed_limits.1)));
    // A goal's entry: absent for the session's, -1 for none, else the value (ratio × 1000).
    let limit = |l: Option<u64>| Value::Int(l.map_or(-1, |v| v.min(i64::MAX as u64) as i64));
    match d.goals.ratio {
        Limit::Global => {}
        Limit::Unlimited => entries.push(("goal_ratio_milli", limit(None))),
        Limit::Value(r) => entries.push(("goal_ratio_milli", limit(Some((r * 1000.0) as u64)))),
    }
    match d.goals.seeding_time {
        Limit::Global => {}
        Limit::Unlimited => entries.push(("goal_seconds", limit(None))),
        Limit::Value(t) => entries.push(("goal_seconds", limit(Some(t.as_secs())))),
    }
    Value::dict(entries).encode()
}

fn decode(bytes: &[u8]) -> Result<ResumeData, String> {
    let v = bencode::decode(bytes).map_err(|e| e.to_string())?;
    let int = |k: &str| {
        v.get(k)
            .and_then(Value::as_int)
            .filter(|n| *n >= 0)
            .map(|n| n as u64)
            .ok_or(format!("no {k}"))
    };
    let save_dir = v
        .get("save_dir")
        .and_then(Value::as_str)
        .ok_or("no save_dir")?
        .into();
    let have = v
        .get("have")
        .and_then(Value::as_bytes)
        .ok_or("no have")?
        .to_vec();
    let stamps = v
        .get("stamps")
        .and_then(Value::as_list)
        .ok_or("no stamps")?
        .iter()
        .map(|s| match s.as_list() {
            Some([len, mtime]) => {
                let length = len.as_int().filter(|n| *n >= 0).ok_or("bad stamp")? as u64;
                let mtime_ns = mtime
                    .as_str()
                    .and_then(|t| t.parse().ok())
                    .ok_or("bad stamp")?;
                Ok(Some(FileStamp { length, mtime_ns }))
            }
            Some([]) => Ok(None),
            _ => Err("bad stamp"),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let trackers = v.get("trackers").map(decode_tiers).transpose()?;
    let priorities = match v.get("file_priorities") {
        None => Vec::new(),
        Some(list) => list
            .as_list()
            .ok_or("bad file_priorities")?
            .iter()
            .map(|p| {
                p.as_int()
                    .and_then(|n| u8::try_from(n).ok())
                    .and_then(FilePriority::from_code)
                    .ok_or("bad file priority")
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    let flag = |k: &str| v.get(k).and_then(Value::as_int).is_some_and(|n| n != 0);
    let count = |k: &str| {
        v.get(k)
            .and_then(Value::as_int)
            .map_or(0, |n| n.max(0) as u64)
    };
    let goal = |k: &str| -> Result<Limit<u64>, String> {
        match v.get(k).map(|g| g.as_int()) {
            None => Ok(Limit::Global),
            Some(Some(-1)) => Ok(Limit::Unlimited),
            Some(Some(n)) if n >= 0 => Ok(Limit::Value(n as u64)),
            Some(_) => Err(format!("bad {k}")),
        }
    };
    Ok(ResumeData {
        trackers,
        plan: DownloadPlan {
            priorities,
            sequential: flag("sequential"),
            first_last_first: flag("first_last_first"),
        },
        forced: flag("forced"),
        seeding_secs: count("seeding_secs"),
        speed_limits: (count("down_limit"), count("up_limit")),
        goals: TorrentGoals {
            ratio: goal("goal_ratio_milli")?.map(|n| n as f32 / 1000.0),
            seeding_time: goal("goal_seconds")?.map(std::time::Duration::from_secs),
        },
        save_dir,
        paused: int("paused")? != 0,
        seeding: int("seeding")? != 0,
        have,
        stamps,
        downloaded: int("downloaded")?,
        uploaded: int("uploaded")?,
        added_at: int("added_at")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ResumeData {
        ResumeData {
            save_dir: "/tmp/x".into(),
            paused: true,
            seeding: false,
            have: vec![0xf0],
            stamps: vec![
                Some(FileStamp {
                    length: 5,
                    mtime_ns: 123_456_789_012_345_678,
                }),
                None,
            ],
            downloaded: 10,
            uploaded: 20,
            added_at: 1_700_000_000,
            plan: DownloadPlan {
                priorities: vec![FilePriority::Skip, FilePriority::High],
                sequential: true,
                first_last_first: false,
            },
            forced: true,
            goals: TorrentGoals {
                ratio: Limit::Value(1.5),
                seeding_time: Limit::Unlimited,
            },
            seeding_secs: 99,
            speed_limits: (1000, 0),
            trackers: Some(vec![
                vec!["udp://a.example:80/announce".into()],
                vec![
                    "http://b.example/announce".into(),
                    "http://c.example/announce".into(),
                ],
            ]),
        }
    }

    #[test]
    fn round_trips_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let id = InfoHash([3; 20]);
        save(dir.path(), id, &sample()).unwrap();
        save_torrent(dir.path(), id, b"d4:infoe").unwrap();
        assert_eq!(load(dir.path(), id).unwrap(), Some(sample()));
        assert_eq!(saved_torrents(dir.path()), vec![id]);
        let leftovers = fs::read_dir(dir.path().join("torrents")).unwrap().count();
        assert_eq!(
            leftovers, 2,
            "no temporary files are left behind (one save: no backup yet)"
        );
        remove(dir.path(), id);
        assert_eq!(load(dir.path(), id).unwrap(), None);
    }

    #[test]
    fn magnet_links_round_trip_and_are_listed_once() {
        let dir = tempfile::tempdir().unwrap();
        let id = InfoHash([6; 20]);
        let magnet = SavedMagnet {
            uri: format!("magnet:?xt=urn:btih:{}", id.to_hex()),
            save_dir: "/downloads".into(),
            paused: false,
            seeding: true,
            confirm: true,
            added_at: 1_700_000_000,
            trackers: Some(vec![vec!["http://t.example/announce".into()]]),
        };
        save_magnet(dir.path(), id, &magnet).unwrap();
        assert_eq!(load_magnet(dir.path(), id).unwrap(), Some(magnet));
        assert_eq!(saved_torrents(dir.path()), vec![id]);
        save_torrent(dir.path(), id, b"d4:infoe").unwrap();
        assert_eq!(saved_torrents(dir.path()), vec![id], "listed once");
        fs::write(magnet_path(dir.path(), id), b"d3:urii1ee").unwrap();
        assert!(matches!(
            load_magnet(dir.path(), id),
            Err(ResumeError::Damaged(..))
        ));
        remove(dir.path(), id);
        assert_eq!(load_magnet(dir.path(), id).unwrap(), None);
        assert!(saved_torrents(dir.path()).is_empty());
    }

    #[test]
    fn damaged_resume_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let id = InfoHash([4; 20]);
        save(dir.path(), id, &sample()).unwrap();
        let path = resume_path(dir.path(), id);
        let bytes = fs::read(&path).unwrap();
        fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        assert!(matches!(
            load(dir.path(), id),
            Err(ResumeError::Damaged(..))
        ));
        fs::write(&path, b"garbage").unwrap();
        assert!(matches!(
            load(dir.path(), id),
            Err(ResumeError::Damaged(..))
        ));
    }

    #[test]
    fn the_queue_order_round_trips_and_junk_lines_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load_queue(dir.path()).is_empty());
        let order = vec![InfoHash([3; 20]), InfoHash([1; 20])];
        save_queue(dir.path(), &order).unwrap();
        assert_eq!(load_queue(dir.path()), order);
        fs::write(
            queue_path(dir.path()),
            "zz\n0303030303030303030303030303030303030303\n",
        )
        .unwrap();
        assert_eq!(load_queue(dir.path()), vec![InfoHash([3; 20])]);
    }

    #[test]
    fn the_version_before_stands_in_for_a_damaged_or_missing_one() {
        let dir = tempfile::tempdir().unwrap();
        let id = InfoHash([5; 20]);
        let first = sample();
        let second = ResumeData {
            downloaded: 99,
            ..sample()
        };
        save(dir.path(), id, &first).unwrap();
        save(dir.path(), id, &second).unwrap();
        assert_eq!(load(dir.path(), id).unwrap(), Some(second));
        let path = resume_path(dir.path(), id);
        fs::write(&path, b"\x00garbage").unwrap();
        assert_eq!(
            load(dir.path(), id).unwrap(),
            Some(first.clone()),
            "damaged"
        );
        fs::remove_file(&path).unwrap();
        assert_eq!(load(dir.path(), id).unwrap(), Some(first), "missing");
        remove(dir.path(), id);
        assert_eq!(load(dir.path(), id).unwrap(), None, "both forgotten");
    }
}
