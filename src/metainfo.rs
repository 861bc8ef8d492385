//! Metainfo (.torrent) files: parsing, validation and the info hash.
//!
//! The info hash is SHA-1 over the exact bytes of the `info` dictionary as they appear in the
//! file, so keys Rivulet does not know still give the right hash. Every file path is checked and
//! made safe here, once: the rest of Rivulet can join a [`FileEntry::path`] onto a save folder
//! without ever leaving it.

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;
use serde_bytes::ByteBuf;
use sha1::{Digest, Sha1};

use crate::bencode::{self, DecodeError};
use crate::ids::InfoHash;

/// Smallest and largest piece length Rivulet accepts.
pub const MIN_PIECE_LENGTH: u64 = 1024;
pub const MAX_PIECE_LENGTH: u64 = 64 * 1024 * 1024;
/// Most files one torrent may list.
pub const MAX_FILES: usize = 1_000_000;
/// Longest file name component most file systems hold, in bytes.
const MAX_COMPONENT_BYTES: usize = 255;

/// Largest .torrent file read: far above any real one (a 64 MiB piece list describes a
/// petabyte), small enough that reading it cannot hurt.
pub const MAX_TORRENT_FILE: u64 = 64 * 1024 * 1024;

/// What is wrong with a metainfo file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetainfoError {
    #[error(transparent)]
    Bencode(#[from] DecodeError),
    #[error("not a torrent file: {0}")]
    Structure(String),
    #[error("not a torrent file: there is no `info` dictionary")]
    MissingInfo,
    #[error("invalid piece length {0} (must be between 1 KiB and 64 MiB)")]
    BadPieceLength(i64),
    #[error("`pieces` is {0} bytes long, which is not a multiple of 20")]
    PiecesNotMultipleOf20(usize),
    #[error("the torrent lists {listed} piece hashes but its {total} bytes need {needed}")]
    PieceCountMismatch {
        listed: usize,
        needed: u64,
        total: u64,
    },
    #[error("invalid file length {0}")]
    BadLength(i64),
    #[error("the torrent holds no data")]
    Empty,
    #[error("the torrent gives both `length` and `files`, or neither")]
    AmbiguousLayout,
    #[error("unsafe file path {0:?}: {1}")]
    UnsafePath(String, &'static str),
    #[error("the file path {0:?} appears twice")]
    DuplicatePath(String),
    #[error("too many files ({0})")]
    TooManyFiles(usize),
    #[error("BitTorrent v2-only torrents are not supported yet")]
    V2Only,
    #[error("the symbolic link {0:?} carries data, which BEP 47 does not allow")]
    SymlinkWithData(String),
}

/// Why a .torrent file could not be loaded. The message leaves the file's name to the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TorrentFileError {
    #[error("cannot read it: {0}")]
    Unreadable(String),
    #[error("it is a folder, not a .torrent file")]
    Folder,
    #[error("it is too large to be a torrent ({0} bytes)")]
    TooLarge(u64),
    #[error(transparent)]
    Invalid(#[from] MetainfoError),
}

/// Reads and parses a .torrent file, refusing folders and files over [`MAX_TORRENT_FILE`].
/// Blocking: front ends call it on a helper thread, the engine on its blocking pool.
pub fn read_torrent_file(path: &std::path::Path) -> Result<(Vec<u8>, Metainfo), TorrentFileError> {
    use std::io::Read;
    let unreadable = |e: std::io::Error| TorrentFileError::Unreadable(e.to_string());
    let file = std::fs::File::open(path).map_err(unreadable)?;
    let stat = file.metadata().map_err(unreadable)?;
    if stat.is_dir() {
        return Err(TorrentFileError::Folder);
    }
    if stat.len() > MAX_TORRENT_FILE {
        return Err(TorrentFileError::TooLarge(stat.len()));
    }
    // Read at most one byte past the cap, in case the file grows while it is read.
    let mut bytes = Vec::with_capacity(stat.len() as usize);
    file.take(MAX_TORRENT_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() as u64 > MAX_TORRENT_FILE {
        return Err(TorrentFileError::TooLarge(bytes.len() as u64));
    }
    let meta = Metainfo::from_bytes(&bytes)?;
    Ok((bytes, meta))
}

/// One file of a torrent, as laid out in the torrent's byte stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Relative, sanitised path under the save folder (starts with the torrent's name for a
    /// multi-file torrent).
    pub path: PathBuf,
    pub length: u64,
    /// Where the file starts in the concatenation of all files.
    pub offset: u64,
    pub attr: FileAttr,
}

impl FileEntry {
    /// Whether the file exists on disk: padding files and symbolic links never do.
    pub fn is_on_disk(&self) -> bool {
        !self.attr.pad && !self.attr.symlink
    }
}

/// A file's BEP 47 attributes (the `attr` string: `p`, `x`, `h`, `l`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileAttr {
    /// Padding (`p`): zeros that align the next file to a piece. Never created on disk, read
    /// and hashed as zeros, shown nowhere; its path may repeat.
    pub pad: bool,
    /// Executable (`x`): created with the executable bits.
    pub executable: bool,
    /// Hidden (`h`): on Linux a name's leading dot already says so.
    pub hidden: bool,
    /// A symbolic link (`l`): never created (a link could point outside the save folder).
    pub symlink: bool,
}

impl FileAttr {
    fn parse(attr: Option<&[u8]>) -> Self {
        let has = |c: u8| attr.is_some_and(|a| a.contains(&c));
        Self {
            pad: has(b'p'),
            executable: has(b'x'),
            hidden: has(b'h'),
            symlink: has(b'l'),
        }
    }
}

/// A parsed and validated torrent.
#[derive(Debug, Clone)]
pub struct Metainfo {
    pub info_hash: InfoHash,
    /// The sanitised name: the file name of a single-file torrent, the folder of a multi-file one.
    pub name: String,
    pub announce: Option<String>,
    /// Tiers of tracker URLs (BEP 12).
    pub announce_list: Vec<Vec<String>>,
    pub piece_length: u64,
    /// The exact bytes of the `info` dictionary: what the info hash is taken over, and what
    /// peers fetching a magnet link's metadata are served (BEP 9).
    pub info_bytes: Arc<[u8]>,
    /// Where the piece hashes lie in `info_bytes` (20 bytes a piece).
    pieces: Range<usize>,
    pub files: Vec<FileEntry>,
    pub total_length: u64,
    pub private: bool,
    pub multi_file: bool,
    pub comment: Option<String>,
    pub created_by: Option<String>,
    pub creation_date: Option<i64>,
}

#[derive(Deserialize)]
struct RawTorrent {
    announce: Option<ByteBuf>,
    #[serde(rename = "announce-list")]
    announce_list: Option<Vec<Vec<ByteBuf>>>,
    comment: Option<ByteBuf>,
    #[serde(rename = "created by")]
    created_by: Option<ByteBuf>,
    #[serde(rename = "creation date")]
    creation_date: Option<i64>,
    info: RawInfo,
}

#[derive(Deserialize)]
struct RawInfo {
    name: ByteBuf,
    #[serde(rename = "name.utf-8")]
    name_utf8: Option<ByteBuf>,
    #[serde(rename = "piece length")]
    piece_length: i64,
    /// Absent in a v2-only torrent.
    pieces: Option<ByteBuf>,
    length: Option<i64>,
    files: Option<Vec<RawFile>>,
    private: Option<i64>,
    attr: Option<ByteBuf>,
    #[serde(rename = "meta version")]
    meta_version: Option<i64>,
}

#[derive(Deserialize)]
struct RawFile {
    length: i64,
    path: Vec<ByteBuf>,
    #[serde(rename = "path.utf-8")]
    path_utf8: Option<Vec<ByteBuf>>,
    attr: Option<ByteBuf>,
}

impl Metainfo {
    /// Parses and validates the bytes of a .torrent file.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MetainfoError> {
        let (_, info_span) = bencode::decode_with_span(bytes, b"info")?;
        let info_span = info_span.ok_or(MetainfoError::MissingInfo)?;
        let info_bytes = bytes.get(info_span).ok_or(MetainfoError::MissingInfo)?;
        let raw: RawTorrent = serde_bencode::from_bytes(bytes)
            .map_err(|e| MetainfoError::Structure(e.to_string()))?;
        Self::from_raw(raw, info_bytes)
    }

    /// The .torrent file made of an info dictionary fetched from peers (a magnet link's) and
    /// the link's trackers, one tier each, with its parsed form: the same strict checks as any
    /// .torrent file.
    pub fn from_info(
        info_bytes: &[u8],
        trackers: &[String],
    ) -> Result<(Vec<u8>, Self), MetainfoError> {
        let mut file = Vec::with_capacity(info_bytes.len() + 256);
        let mut entries = Vec::new();
        if let Some(first) = trackers.first() {
            entries.push(("announce", bencode::Value::Bytes(first.as_bytes().to_vec())));
            let tiers = trackers
                .iter()
                .map(|t| bencode::Value::List(vec![bencode::Value::Bytes(t.as_bytes().to_vec())]))
                .collect();
            entries.push(("announce-list", bencode::Value::List(tiers)));
        }
        // The outer dictionary's keys sort before `info`, so the file is the encoded entries
        // with the info bytes, untouched, appended as the last one.
        let outer = bencode::Value::dict(entries).encode();
        file.extend_from_slice(outer.get(..outer.len() - 1).unwrap_or_default());
        file.extend_from_slice(b"4:info");
        file.extend_from_slice(info_bytes);
        file.push(b'e');
        let meta = Self::from_bytes(&file)?;
        Ok((file, meta))
    }

    fn from_raw(raw: RawTorrent, info_bytes: &[u8]) -> Result<Self, MetainfoError> {
        let info_hash = InfoHash(Sha1::digest(info_bytes).into());
        let info = raw.info;
        if !(MIN_PIECE_LENGTH as i64..=MAX_PIECE_LENGTH as i64).contains(&info.piece_length) {
            return Err(MetainfoError::BadPieceLength(info.piece_length));
        }
        let piece_length = info.piece_length as u64;
        // A hybrid torrent (v1 and v2) is read as the v1 torrent it also is.
        let pieces = match info.pieces {
            Some(pieces) => pieces,
            None if info.meta_version == Some(2) => return Err(MetainfoError::V2Only),
            None => return Err(MetainfoError::Structure("there is no `pieces` list".into())),
        };
        if !pieces.len().is_multiple_of(20) {
            return Err(MetainfoError::PiecesNotMultipleOf20(pieces.len()));
        }
        // The hashes are read where they lie in the info bytes: the string's last bytes.
        let (_, pieces_span) = bencode::decode_with_span(info_bytes, b"pieces")?;
        let pieces_span = pieces_span
            .and_then(|s| Some(s.end.checked_sub(pieces.len())?..s.end))
            .ok_or_else(|| MetainfoError::Structure("there is no `pieces` list".into()))?;
        let piece_count = pieces.len() / 20;

        let name_bytes = info.name_utf8.as_deref().unwrap_or(&info.name);
        let name = safe_component(name_bytes)?;

        let (multi_file, layout): (bool, Vec<(PathBuf, i64, FileAttr)>) =
            match (info.length, info.files) {
                (Some(length), None) => (
                    false,
                    vec![(
                        PathBuf::from(&name),
                        length,
                        FileAttr::parse(info.attr.as_deref().map(|a| a.as_slice())),
                    )],
                ),
                (None, Some(files)) => {
                    if files.len() > MAX_FILES {
                        return Err(MetainfoError::TooManyFiles(files.len()));
                    }
                    let mut layout = Vec::with_capacity(files.len());
                    for file in files {
                        let parts = file.path_utf8.as_ref().unwrap_or(&file.path);
                        if parts.is_empty() {
                            return Err(MetainfoError::UnsafePath(String::new(), "empty path"));
                        }
                        let mut path = PathBuf::from(&name);
                        for part in parts {
                            path.push(safe_component(part)?);
                        }
                        layout.push((
                            path,
                            file.length,
                            FileAttr::parse(file.attr.as_deref().map(|a| a.as_slice())),
                        ));
                    }
                    (true, layout)
                }
                _ => return Err(MetainfoError::AmbiguousLayout),
            };

        let mut files = Vec::with_capacity(layout.len());
        let mut seen = std::collections::HashSet::with_capacity(layout.len());
        let mut offset: u64 = 0;
        for (path, length, attr) in layout {
            if !(0..=(1i64 << 50)).contains(&length) {
                return Err(MetainfoError::BadLength(length));
            }
            if attr.symlink && length > 0 {
                return Err(MetainfoError::SymlinkWithData(path.display().to_string()));
            }
            // Padding files share paths (`.pad/16384` again and again); nothing is made of them.
            if !attr.pad && !seen.insert(path.clone()) {
                return Err(MetainfoError::DuplicatePath(path.display().to_string()));
            }
            files.push(FileEntry {
                path,
                length: length as u64,
                offset,
                attr,
            });
            offset += length as u64;
        }
        let total_length = offset;
        if total_length == 0 {
            return Err(MetainfoError::Empty);
        }
        let needed = total_length.div_ceil(piece_length);
        if needed != piece_count as u64 {
            return Err(MetainfoError::PieceCountMismatch {
                listed: piece_count,
                needed,
                total: total_length,
            });
        }

        let text = |b: Option<ByteBuf>| b.map(|b| String::from_utf8_lossy(&b).into_owned());
        let announce_list = raw
            .announce_list
            .unwrap_or_default()
            .into_iter()
            .map(|tier| {
                tier.into_iter()
                    .map(|u| String::from_utf8_lossy(&u).into_owned())
                    .collect::<Vec<_>>()
            })
            .filter(|tier| !tier.is_empty())
            .collect();
        Ok(Self {
            info_hash,
            name,
            announce: text(raw.announce),
            announce_list,
            piece_length,
            info_bytes: info_bytes.into(),
            pieces: pieces_span,
            files,
            total_length,
            private: info.private == Some(1),
            multi_file,
            comment: text(raw.comment),
            created_by: text(raw.created_by),
            creation_date: raw.creation_date,
        })
    }

    /// The files a user sees and gets on disk: every file but padding and symbolic links.
    pub fn visible_files(&self) -> impl Iterator<Item = &FileEntry> {
        self.files.iter().filter(|f| f.is_on_disk())
    }

    /// Bytes of the files a user gets (the torrent's data without its padding).
    pub fn content_length(&self) -> u64 {
        self.visible_files().map(|f| f.length).sum()
    }

    pub fn piece_count(&self) -> u32 {
        (self.pieces.len() / 20) as u32
    }

    /// The SHA-1 of piece `index`, if there is such a piece.
    pub fn piece_hash(&self, index: u32) -> Option<[u8; 20]> {
        let start = self.pieces.start.checked_add(index as usize * 20)?;
        let end = start + 20;
        if end > self.pieces.end {
            return None;
        }
        self.info_bytes.get(start..end)?.try_into().ok()
    }

    /// The length of piece `index` (the last one may be short).
    pub fn piece_len(&self, index: u32) -> u64 {
        let start = index as u64 * self.piece_length;
        (self.total_length - start.min(self.total_length)).min(self.piece_length)
    }

    /// Every tracker URL, tier by tier: `announce-list` when present, else `announce`.
    pub fn trackers(&self) -> Vec<Vec<String>> {
        if !self.announce_list.is_empty() {
            self.announce_list.clone()
        } else {
            self.announce.iter().map(|a| vec![a.clone()]).collect()
        }
    }
}

/// Checks one path component from a torrent and makes it something the OS can hold.
fn safe_component(raw: &[u8]) -> Result<String, MetainfoError> {
    let text = String::from_utf8_lossy(raw).into_owned();
    if text.is_empty() {
        return Err(MetainfoError::UnsafePath(text, "empty path component"));
    }
    if text == "." || text == ".." {
        return Err(MetainfoError::UnsafePath(text, "relative path component"));
    }
    if text.contains('/') || text.contains('\\') {
        return Err(MetainfoError::UnsafePath(
            text,
            "path separator inside a name",
        ));
    }
    if text.contains('\0') {
        return Err(MetainfoError::UnsafePath(text, "NUL byte inside a name"));
    }
    Ok(sanitize_for_os(text))
}

/// Replaces what the OS cannot hold in a file name and shortens over-long names, keeping the
/// extension.
fn sanitize_for_os(mut name: String) -> String {
    if cfg!(windows) {
        name = name
            .chars()
            .map(|c| {
                if c.is_control() || "<>:\"|?*".contains(c) {
                    '_'
                } else {
                    c
                }
            })
            .collect();
        let trimmed = name.trim_end_matches(['.', ' ']).to_string();
        name = if trimmed.is_empty() {
            "_".to_string()
        } else {
            trimmed
        };
        let stem = name
            .split('.')
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        const RESERVED: [&str; 22] = [
            "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7",
            "COM8", "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
        ];
        if RESERVED.contains(&stem.as_str()) {
            name.insert(0, '_');
        }
    }
    if name.len() > MAX_COMPONENT_BYTES {
        let ext = name
            .rfind('.')
            .map(|i| name[i..].to_string())
            .filter(|e| e.len() <= 16)
            .unwrap_or_default();
        let mut keep = MAX_COMPONENT_BYTES - ext.len();
        while !name.is_char_boundary(keep) {
            keep -= 1;
        }
        name.truncate(keep);
        name.push_str(&ext);
    }
    name
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::bencode::Value;

    pub fn dict(entries: Vec<(&str, Value)>) -> Value {
        Value::dict(entries)
    }

    fn bytes(s: &str) -> Value {
        Value::Bytes(s.as_bytes().to_vec())
    }

    #[test]
    fn torrent_files_are_read_with_one_cap() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("a.torrent");
        std::fs::write(&good, multi_file(vec![vec!["a"]])).unwrap();
        let (bytes, meta) = read_torrent_file(&good).unwrap();
        assert_eq!(
            meta.info_hash,
            Metainfo::from_bytes(&bytes).unwrap().info_hash
        );

        assert!(matches!(
            read_torrent_file(dir.path()),
            Err(TorrentFileError::Folder)
        ));
        let big = dir.path().join("big.torrent");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(MAX_TORRENT_FILE + 1)
            .unwrap();
        assert!(matches!(
            read_torrent_file(&big),
            Err(TorrentFileError::TooLarge(n)) if n == MAX_TORRENT_FILE + 1
        ));
        assert!(matches!(
            read_torrent_file(&dir.path().join("missing.torrent")),
            Err(TorrentFileError::Unreadable(_))
        ));
        let junk = dir.path().join("junk.torrent");
        std::fs::write(&junk, b"not bencode").unwrap();
        assert!(matches!(
            read_torrent_file(&junk),
            Err(TorrentFileError::Invalid(_))
        ));
    }

    /// A torrent of two files, `a` and `b`, of these lengths.
    pub fn two_files_meta(first: i64, second: i64, piece_length: i64) -> Metainfo {
        let file = |name: &str, length| {
            dict(vec![
                ("length", Value::Int(length)),
                ("path", Value::List(vec![bytes(name)])),
            ])
        };
        let pieces = ((first + second) as u64).div_ceil(piece_length as u64) as usize;
        let info = dict(vec![
            ("name", bytes("two")),
            ("piece length", Value::Int(piece_length)),
            ("pieces", Value::Bytes(vec![0; 20 * pieces])),
            (
                "files",
                Value::List(vec![file("a", first), file("b", second)]),
            ),
        ]);
        Metainfo::from_bytes(&dict(vec![("info", info)]).encode()).unwrap()
    }

    fn multi_file(paths: Vec<Vec<&str>>) -> Vec<u8> {
        let files = paths
            .into_iter()
            .map(|p| {
                dict(vec![
                    ("length", Value::Int(10)),
                    ("path", Value::List(p.into_iter().map(bytes).collect())),
                ])
            })
            .collect::<Vec<_>>();
        let n = files.len();
        let info = dict(vec![
            ("name", bytes("top")),
            ("piece length", Value::Int(16384)),
            (
                "pieces",
                Value::Bytes(vec![0; 20 * (n * 10).div_ceil(16384)]),
            ),
            ("files", Value::List(files)),
        ]);
        dict(vec![
            ("announce", bytes("http://127.0.0.1:1/announce")),
            ("info", info),
        ])
        .encode()
    }

    #[test]
    fn parses_multi_file_layout() {
        let m = Metainfo::from_bytes(&multi_file(vec![vec!["a"], vec!["sub", "b"]])).unwrap();
        assert!(m.multi_file);
        assert_eq!(m.total_length, 20);
        assert_eq!(m.files[1].path, PathBuf::from("top/sub/b"));
        assert_eq!(m.files[1].offset, 10);
        assert_eq!(m.piece_len(0), 20);
    }

    #[test]
    fn info_hash_covers_unknown_keys() {
        let info = dict(vec![
            ("name", bytes("f")),
            ("piece length", Value::Int(16384)),
            ("pieces", Value::Bytes(vec![1; 20])),
            ("length", Value::Int(5)),
            ("source", bytes("somewhere")),
        ]);
        let expected: [u8; 20] = Sha1::digest(info.encode()).into();
        let m = Metainfo::from_bytes(&dict(vec![("info", info)]).encode()).unwrap();
        assert_eq!(m.info_hash.0, expected);
    }

    #[test]
    fn rejects_unsafe_paths() {
        for bad in [
            vec![".."],
            vec!["a", ".."],
            vec![""],
            vec!["/etc"],
            vec!["a/b"],
            vec!["x\0y"],
            vec!["..\\x"],
        ] {
            let err = Metainfo::from_bytes(&multi_file(vec![bad.clone()])).unwrap_err();
            assert!(
                matches!(err, MetainfoError::UnsafePath(..)),
                "{bad:?}: {err}"
            );
        }
        let err = Metainfo::from_bytes(&multi_file(vec![vec!["a"], vec!["a"]])).unwrap_err();
        assert!(matches!(err, MetainfoError::DuplicatePath(_)));
    }

    #[test]
    fn shortens_overlong_names() {
        let long = format!("{}.mkv", "x".repeat(400));
        let m = Metainfo::from_bytes(&multi_file(vec![vec![&long]])).unwrap();
        let name = m.files[0].path.file_name().unwrap().to_str().unwrap();
        assert_eq!(name.len(), 255);
        assert!(name.ends_with(".mkv"));
    }

    #[test]
    fn rejects_bad_pieces_and_lengths() {
        let make = |pieces: usize, length: i64, piece_length: i64| {
            let info = dict(vec![
                ("name", bytes("f")),
                ("piece length", Value::Int(piece_length)),
                ("pieces", Value::Bytes(vec![1; pieces])),
                ("length", Value::Int(length)),
            ]);
            Metainfo::from_bytes(&dict(vec![("info", info)]).encode())
        };
        assert!(matches!(
            make(21, 5, 16384),
            Err(MetainfoError::PiecesNotMultipleOf20(21))
        ));
        assert!(matches!(
            make(40, 5, 16384),
            Err(MetainfoError::PieceCountMismatch { .. })
        ));
        assert!(matches!(
            make(20, 5, 0),
            Err(MetainfoError::BadPieceLength(0))
        ));
        assert!(matches!(
            make(20, -5, 16384),
            Err(MetainfoError::BadLength(-5))
        ));
        assert!(matches!(make(0, 0, 16384), Err(MetainfoError::Empty)));
        assert!(matches!(
            Metainfo::from_bytes(b"d4:spami1ee"),
            Err(MetainfoError::MissingInfo)
        ));
        assert!(matches!(
            Metainfo::from_bytes(b"d4:info"),
            Err(MetainfoError::Bencode(_))
        ));
    }

    /// A multi-file torrent of `(path, length, attr)` entries with 16 KiB pieces.
    pub fn with_attrs(files: &[(&[&str], i64, &str)]) -> Vec<u8> {
        let total: i64 = files.iter().map(|f| f.1).sum();
        let files = files
            .iter()
            .map(|(path, length, attr)| {
                let mut entry = vec![
                    ("length", Value::Int(*length)),
                    ("path", Value::List(path.iter().map(|p| bytes(p)).collect())),
                ];
                if !attr.is_empty() {
                    entry.push(("attr", bytes(attr)));
                }
                dict(entry)
            })
            .collect();
        let info = dict(vec![
            ("name", bytes("top")),
            ("piece length", Value::Int(16384)),
            (
                "pieces",
                Value::Bytes(vec![0; 20 * (total as usize).div_ceil(16384)]),
            ),
            ("files", Value::List(files)),
        ]);
        dict(vec![("info", info)]).encode()
    }

    #[test]
    fn reads_bep47_attributes_and_repeated_padding_paths() {
        let m = Metainfo::from_bytes(&with_attrs(&[
            (&["a.bin"], 1000, ""),
            (&[".pad", "15384"], 15384, "p"),
            (&["run.sh"], 16384, "xh"),
            (&[".pad", "15384"], 15384, "p"),
            (&["last"], 10, ""),
        ]))
        .unwrap();
        assert_eq!(m.files.len(), 5, "padding keeps its place in the layout");
        assert!(m.files[1].attr.pad && !m.files[1].is_on_disk());
        assert!(m.files[2].attr.executable && m.files[2].attr.hidden);
        assert_eq!(m.files[4].offset, 48152);
        let visible: Vec<_> = m.visible_files().map(|f| f.path.clone()).collect();
        assert_eq!(
            visible,
            ["top/a.bin", "top/run.sh", "top/last"].map(PathBuf::from)
        );
        assert_eq!(m.content_length(), 17394);

        let err =
            Metainfo::from_bytes(&with_attrs(&[(&["a"], 10, ""), (&["a"], 10, "")])).unwrap_err();
        assert!(
            matches!(err, MetainfoError::DuplicatePath(_)),
            "only padding may repeat"
        );
        let err = Metainfo::from_bytes(&with_attrs(&[(&["link"], 10, "l")])).unwrap_err();
        assert!(matches!(err, MetainfoError::SymlinkWithData(_)));
        let m =
            Metainfo::from_bytes(&with_attrs(&[(&["link"], 0, "l"), (&["a"], 10, "")])).unwrap();
        assert_eq!(
            m.visible_files().count(),
            1,
            "a symbolic link is never created"
        );
    }

    #[test]
    fn refuses_v2_only_torrents_by_name() {
        let info = dict(vec![
            ("name", bytes("v2")),
            ("piece length", Value::Int(16384)),
            ("meta version", Value::Int(2)),
            ("file tree", dict(vec![])),
        ]);
        let err = Metainfo::from_bytes(&dict(vec![("info", info)]).encode()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "BitTorrent v2-only torrents are not supported yet"
        );
    }
}
