//! Creating a .torrent from a file or a folder (the first seeder's step), hashing on all cores.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use sha1::{Digest, Sha1};

use crate::bencode::Value;
use crate::sync::MutexExt;

#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// Tracker URLs; each becomes its own tier.
    pub trackers: Vec<String>,
    /// Piece length in bytes; chosen from the total size when `None`.
    pub piece_length: Option<u64>,
    pub private: bool,
    pub comment: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("{0} holds no data to share")]
    Empty(PathBuf),
    #[error("piece length {0} must be a power of two between 16 KiB and 64 MiB")]
    BadPieceLength(u64),
    #[error("{0}: the name is not valid UTF-8")]
    BadName(PathBuf),
    #[error("cancelled")]
    Cancelled,
}

struct SourceFile {
    path: PathBuf,
    /// Path components under the torrent's folder (empty for a single-file torrent).
    parts: Vec<String>,
    length: u64,
    offset: u64,
}

/// Shared with whoever watches a creation: bytes hashed of the total, and a cancel switch.
#[derive(Debug, Default)]
pub struct CreateProgress {
    pub hashed: AtomicU64,
    /// Known once the files have been listed.
    pub total: AtomicU64,
    pub cancel: AtomicBool,
}

/// Picks a piece length for `total` bytes: about 1,500 pieces, between 16 KiB and 16 MiB.
pub fn auto_piece_length(total: u64) -> u64 {
    (total / 1500)
        .next_power_of_two()
        .clamp(16 * 1024, 16 * 1024 * 1024)
}

/// Builds the bencoded .torrent for `source`, reporting to and obeying `progress`.
pub fn create_torrent(
    source: &Path,
    options: &CreateOptions,
    progress: &CreateProgress,
) -> Result<Vec<u8>, CreateError> {
    let name = source
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| CreateError::BadName(source.to_path_buf()))?
        .to_string();
    let meta = std::fs::metadata(source).map_err(|e| CreateError::Io(source.to_path_buf(), e))?;
    let mut files = Vec::new();
    if meta.is_dir() {
        collect_files(source, &mut Vec::new(), &mut files)?;
        files.sort_by(|a, b| a.parts.cmp(&b.parts));
    } else {
        files.push(SourceFile {
            path: source.to_path_buf(),
            parts: Vec::new(),
            length: meta.len(),
            offset: 0,
        });
    }
    let mut total = 0;
    for f in &mut files {
        f.offset = total;
        total += f.length;
    }
    if total == 0 {
        return Err(CreateError::Empty(source.to_path_buf()));
    }
    progress.total.store(total, Ordering::Relaxed);
    let piece_length = match options.piece_length {
        Some(p) if !(16 * 1024..=64 * 1024 * 1024).contains(&p) || !p.is_power_of_two() => {
            return Err(CreateError::BadPieceLength(p));
        }
        Some(p) => p,
        None => auto_piece_length(total),
    };
    let pieces = hash_pieces(
        &files,
        total,
        piece_length,
        &progress.hashed,
        &progress.cancel,
    )?;

    let bytes = |s: &str| Value::Bytes(s.as_bytes().to_vec());
    let mut info = BTreeMap::new();
    info.insert(b"name".to_vec(), bytes(&name));
    info.insert(b"piece length".to_vec(), Value::Int(piece_length as i64));
    info.insert(b"pieces".to_vec(), Value::Bytes(pieces));
    if options.private {
        info.insert(b"private".to_vec(), Value::Int(1));
    }
    if meta.is_dir() {
        let list = files
            .iter()
            .map(|f| {
                let mut d = BTreeMap::new();
                d.insert(b"length".to_vec(), Value::Int(f.length as i64));
                d.insert(
                    b"path".to_vec(),
                    Value::List(f.parts.iter().map(|p| bytes(p)).collect()),
                );
                Value::Dict(d)
            })
            .collect();
        info.insert(b"files".to_vec(), Value::List(list));
    } else {
        info.insert(b"length".to_vec(), Value::Int(total as i64));
    }
    let mut top = BTreeMap::new();
    if let Some(first) = options.trackers.first() {
        top.insert(b"announce".to_vec(), bytes(first));
    }
    if options.trackers.len() > 1 {
        let tiers = options
            .trackers
            .iter()
            .map(|t| Value::List(vec![bytes(t)]))
            .collect();
        top.insert(b"announce-list".to_vec(), Value::List(tiers));
    }
    if let Some(comment) = &options.comment {
        top.insert(b"comment".to_vec(), bytes(comment));
    }
    top.insert(
        b"created by".to_vec(),
        bytes(concat!("Rivulet ", env!("CARGO_PKG_VERSION"))),
    );
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    top.insert(b"creation date".to_vec(), Value::Int(now as i64));
    top.insert(b"info".to_vec(), Value::Dict(info));
    Ok(Value::Dict(top).encode())
}

fn collect_files(
    dir: &Path,
    parts: &mut Vec<String>,
    out: &mut Vec<SourceFile>,
) -> Result<(), CreateError> {
    let entries = std::fs::read_dir(dir).map_err(|e| CreateError::Io(dir.to_path_buf(), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| CreateError::Io(dir.to_path_buf(), e))?;
        let path = entry.path();
        let kind = entry
            .file_type()
            .map_err(|e| CreateError::Io(path.clone(), e))?;
        let name = entry
            .file_name()
            .into_string()
            .map_err(|_| CreateError::BadName(path.clone()))?;
        parts.push(name);
        if kind.is_dir() {
            collect_files(&path, parts, out)?;
        } else if kind.is_file() {
            let length = entry
                .metadata()
                .map_err(|e| CreateError::Io(path.clone(), e))?
                .len();
            out.push(SourceFile {
                path,
                parts: parts.clone(),
                length,
                offset: 0,
            });
        }
        // Symlinks and special files are left out.
        parts.pop();
    }
    Ok(())
}

/// SHA-1 of every piece, computed by one thread per core.
fn hash_pieces(
    files: &[SourceFile],
    total: u64,
    piece_length: u64,
    hashed: &AtomicU64,
    cancel: &AtomicBool,
) -> Result<Vec<u8>, CreateError> {
    let count = total.div_ceil(piece_length) as usize;
    let hashes = Mutex::new(vec![[0u8; 20]; count]);
    let next = AtomicU64::new(0);
    let failure = Mutex::new(None);
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let mut open: HashMap<usize, File> = HashMap::new();
                let mut buf = Vec::new();
                loop {
                    let piece = next.fetch_add(1, Ordering::Relaxed) as usize;
                    if piece >= count || cancel.load(Ordering::Relaxed) {
                        return;
                    }
                    let start = piece as u64 * piece_length;
                    let len = piece_length.min(total - start);
                    buf.resize(len as usize, 0);
                    if let Err(e) = read_span(files, &mut open, start, &mut buf) {
                        *failure.locked() = Some(e);
                        cancel.store(true, Ordering::Relaxed);
                        return;
                    }
                    let digest: [u8; 20] = Sha1::digest(&buf).into();
                    if let Some(slot) = hashes.locked().get_mut(piece) {
                        *slot = digest;
                    }
                    hashed.fetch_add(len, Ordering::Relaxed);
                }
            });
        }
    });
    if let Some(e) = failure.into_data() {
        return Err(e);
    }
    if cancel.load(Ordering::Relaxed) {
        return Err(CreateError::Cancelled);
    }
    Ok(hashes.into_data().concat())
}

fn read_span(
    files: &[SourceFile],
    open: &mut HashMap<usize, File>,
    offset: u64,
    buf: &mut [u8],
) -> Result<(), CreateError> {
    let mut done = 0usize;
    let first = files.partition_point(|f| f.offset + f.length <= offset);
    for (i, f) in files.iter().enumerate().skip(first) {
        if done == buf.len() {
            break;
        }
        if f.length == 0 {
            continue;
        }
        let at = offset + done as u64 - f.offset;
        let n = ((f.length - at) as usize).min(buf.len() - done);
        let file = match open.entry(i) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(File::open(&f.path).map_err(|e| CreateError::Io(f.path.clone(), e))?)
            }
        };
        read_exact_at(file, &mut buf[done..done + n], at)
            .map_err(|e| CreateError::Io(f.path.clone(), e))?;
        done += n;
    }
    // Each thread takes pieces in increasing order: a file that ends within this piece is
    // never read by it again. Closing it keeps a few files open, not thousands.
    let end = offset + buf.len() as u64;
    open.retain(|&i, _| files.get(i).is_some_and(|f| f.offset + f.length > end));
    Ok(())
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(windows)]
fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        let n = file.seek_read(buf, offset)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf = &mut buf[n..];
        offset += n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metainfo::Metainfo;

    #[test]
    fn creates_a_multi_file_torrent_that_parses_back() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("folder");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("a.bin"), vec![1u8; 40_000]).unwrap();
        std::fs::write(root.join("empty"), b"").unwrap();
        std::fs::write(root.join("sub/b.bin"), vec![2u8; 30_000]).unwrap();
        let options = CreateOptions {
            trackers: vec!["http://127.0.0.1:1/announce".into()],
            piece_length: Some(16384),
            ..Default::default()
        };
        let progress = CreateProgress::default();
        let bytes = create_torrent(&root, &options, &progress).unwrap();
        assert_eq!(
            progress.hashed.load(Ordering::Relaxed),
            progress.total.load(Ordering::Relaxed)
        );
        let meta = Metainfo::from_bytes(&bytes).unwrap();
        assert_eq!(meta.total_length, 70_000);
        assert_eq!(progress.hashed.load(Ordering::Relaxed), 70_000);
        assert_eq!(meta.files.len(), 3);
        assert_eq!(meta.files[2].path, PathBuf::from("folder/sub/b.bin"));
        let mut all = vec![1u8; 40_000];
        all.extend(vec![2u8; 30_000]);
        let expected: [u8; 20] = Sha1::digest(&all[16384..32768]).into();
        assert_eq!(meta.piece_hash(1).unwrap(), expected);
        let last: [u8; 20] = Sha1::digest(&all[65536..]).into();
        assert_eq!(meta.piece_hash(4).unwrap(), last);
    }

    #[test]
    fn refuses_empty_sources_and_odd_piece_lengths() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("zero");
        std::fs::write(&file, b"").unwrap();
        let no = CreateProgress::default();
        assert!(matches!(
            create_torrent(&file, &CreateOptions::default(), &no),
            Err(CreateError::Empty(_))
        ));
        std::fs::write(&file, b"x").unwrap();
        let odd = CreateOptions {
            piece_length: Some(1000),
            ..Default::default()
        };
        assert!(matches!(
            create_torrent(&file, &odd, &no),
            Err(CreateError::BadPieceLength(1000))
        ));
    }

    #[test]
    fn auto_piece_length_scales() {
        assert_eq!(auto_piece_length(1), 16 * 1024);
        assert_eq!(auto_piece_length(1 << 30), 1 << 20);
        assert_eq!(auto_piece_length(1 << 50), 16 << 20);
    }
}
